// The public C API's headers (include/buddy.h: private pools; include/buddy_stats.h: the process
// pool's statistics and reports) form the lowest layer, so that the support layer and the Swift
// modules above it can use their types without including upward. SwiftPM wants a source file
// in a C target: this one is empty on purpose.
