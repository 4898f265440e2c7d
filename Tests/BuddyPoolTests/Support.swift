@_exported import TestSupport

/// Paths, programs and compilers for the pool tests (the examples, the C API through
/// pkg-config): TestSupport's Harness, under the name these tests use.
typealias Support = Harness
