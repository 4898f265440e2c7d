// Overwrites its environment strings in place before exiting, as setproctitle does (redis,
// postgres): the allocator must still find where BUDDY_REPORT asked for the report.
#include <stdlib.h>
#include <string.h>
extern char **environ;
int main(void) {
    free(malloc(100));
    for (char **e = environ; *e; e++) memset(*e, 'x', strlen(*e));
    return 0;
}
