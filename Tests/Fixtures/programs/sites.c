/* Allocation sites at known lines, for buddy-report's tests (SymbolizeTests, LeakTests): run it
   under libBuddyMalloc.so with BUDDY_PROFILE_SAMPLE and the report's sites are these. The tests
   find each site's line by its SITE comment. Built with -g, static functions kept out of line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An allocator wrapper, as git's or gcc's: buddy-report skips it by default. */
__attribute__((noinline)) static void *xmalloc(size_t n) {
    void *p = malloc(n); /* SITE xmalloc */
    if (p == NULL) abort();
    return p;
}

/* 20000 blocks of 48 bytes, live at exit: 960000 bytes. */
__attribute__((noinline)) static char *make_name(int i) {
    char *s = xmalloc(48); /* SITE make_name */
    snprintf(s, 48, "name-%d", i);
    return s;
}

/* One block of 160000 bytes, live at exit. */
__attribute__((noinline)) static char **keep_names(int count) {
    char **names = xmalloc(sizeof(char *) * (size_t)count); /* SITE keep_names */
    for (int i = 0; i < count; i++) names[i] = make_name(i);
    return names;
}

/* 2000 blocks of 4096 bytes, each freed at once: never live at exit. */
__attribute__((noinline)) static void churn(void) {
    for (int i = 0; i < 2000; i++) {
        char *p = xmalloc(4096); /* SITE churn */
        p[0] = 1;
        free(p);
    }
}

/* One block of 20 MiB (above the maximum block), live at exit. */
__attribute__((noinline)) static void *hold_big(void) {
    void *big = malloc(20u << 20); /* SITE hold_big */
    if (big != NULL) memset(big, 1, 4096);
    return big;
}

int main(void) {
    char **names = keep_names(20000);
    churn();
    void *big = hold_big();
    /* Keep both live until exit. */
    printf("%p %p %s\n", (void *)names, big, names[19999]);
    return 0;
}
