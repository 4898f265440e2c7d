// The exports' forwards (override.c, cxx_operators.c): each is a naked function holding one
// jump, so the arguments stay in their registers and the callee returns straight to the caller.
// (A C body would get a frame-pointer prologue, which SwiftPM forces on: four instructions on
// every malloc and free.)
#ifndef BUDDY_FORWARD_H
#define BUDDY_FORWARD_H

#define FORWARD(signature, target) \
    __attribute__((naked, visibility("default"))) signature { __asm__("jmp " #target "@PLT"); }

// A jump past the @_cdecl thunk, straight to the Swift function the thunk jumps to (each thunk
// is one jump: for a pointer or integer in and out, Swift's calling convention is C's). Two
// taken jumps and a frame-pointer prologue less on every call. `target` is the function's
// mangled name (CSemantics.swift, FastPaths.swift): a changed signature changes the name, and
// the link fails rather than call the wrong thing.
#define FORWARD_SWIFT(signature, target) \
    __attribute__((naked, visibility("default"))) signature { __asm__("jmp \"" target "\"@PLT"); }

#define SWIFT_MALLOC "$e19BuddyMallocEmbedded12buddy_mallocySvSgSiF"
#define SWIFT_FREE "$e19BuddyMallocEmbedded10buddy_freeyySvSgF"

#endif
