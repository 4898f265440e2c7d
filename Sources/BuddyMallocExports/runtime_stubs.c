// The static Swift runtime's CommandLine.cpp fills `CommandLine.arguments` for programs written
// in Swift: its constructor reads /proc/self/maps in every process the library is loaded into,
// to find the stack's argv. The library never reads CommandLine, so it defines the object's two
// entry points itself, and the linker leaves the object (and its constructor) out: one open and
// four reads of /proc/self/maps fewer per process, which the kernel builds anew each time.
// (Neither is exported: exports.map names the libc names only.)

char **_swift_stdlib_getUnsafeArgvArgc(int *outArgLen);
void _swift_stdlib_overrideUnsafeArgvArgc(char **argv, int argc);

char **_swift_stdlib_getUnsafeArgvArgc(int *outArgLen) {
    static char *empty[1] = {0};
    *outArgLen = 0;
    return empty;
}

void _swift_stdlib_overrideUnsafeArgvArgc(char **argv, int argc) {
    (void)argv;
    (void)argc;
}
