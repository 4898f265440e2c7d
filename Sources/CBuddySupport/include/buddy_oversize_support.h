// C support for blocks above the maximum block (Oversize.swift): each is its own mapping, and a
// side table in mapped memory (never Swift-allocated) records every live one. Allocation-free.
#ifndef BUDDY_OVERSIZE_SUPPORT_H
#define BUDDY_OVERSIZE_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
#include "buddy_support.h"

/// One live oversize block: the mapping starts at `base` (the pointer the program holds) and is
/// `bytes` long (whole pages: the usable size); `requested` is what the program asked for.
/// `pieces`: 0 for a block mapped whole (one mapping, which mremap can resize); else the block
/// was assembled from retained mappings (Oversize.swift, "Retained"), each still a mapping of its
/// own: bit 63 set, and the page offsets where the second, third and fourth pieces start in
/// bits 0-19, 20-39 and 40-59 (0: no such piece).
/// A retained entry uses the fields otherwise: `base` and `bytes` its mapping (moved aside),
/// `requested` when it was freed (monotonic ns), and `pieces` its tombstone: the address it had
/// in the program, held inaccessible (PROT_NONE, `bytes` long) while it is retained, or 0.
typedef struct buddy_oversize_entry {
    uint64_t base;
    uint64_t bytes;
    uint64_t requested;
    uint64_t pieces;
} buddy_oversize_entry;

/// Recently unmapped oversize blocks (base, bytes), to tell a double free or a use after free
/// of one from a pointer of glibc's.
#define BUDDY_OVERSIZE_FREED_RING 64
/// Freed oversize mappings kept for reuse at most.
#define BUDDY_OVERSIZE_RETAINED 32

/// The side table: `count` entries sorted by base, in a mapping of `capacity` entries. Every
/// field is written under `lock`; the figures are also read with atomic loads (reports).
typedef struct buddy_oversize_table {
    buddy_mutex lock;
    uint32_t pad_;
    buddy_oversize_entry *entries;
    uint64_t capacity;
    uint64_t count;
    uint64_t live_bytes, peak_bytes, peak_blocks;
    uint64_t freed_next;
    uint64_t freed[BUDDY_OVERSIZE_FREED_RING][2];
    /// Freed blocks kept mapped for reuse (Oversize.swift, "Retained"): `retained_count` entries
    /// (base, bytes, requested = when freed in monotonic ns), `retained_bytes` in all.
    uint64_t retained_count;
    uint64_t retained_bytes;
    buddy_oversize_entry retained[BUDDY_OVERSIZE_RETAINED];
} buddy_oversize_table;

extern buddy_oversize_table buddy_oversize;
static inline buddy_oversize_table *buddy_oversize_get(void) { return &buddy_oversize; }
/// The retained entries (Oversize.swift, "Retained").
static inline buddy_oversize_entry *buddy_oversize_retained(void) { return buddy_oversize.retained; }
/// Slot `i` (modulo the ring) of the freed ring: { base, bytes }.
static inline uint64_t *buddy_oversize_freed_slot(uint64_t i) { return buddy_oversize.freed[i % BUDDY_OVERSIZE_FREED_RING]; }

/// Fork handlers of the side table's lock (prepare: take it; parent: give it back; child: a
/// fresh lock). ProcessPool's atfork handlers call them.
/// Takes the table's lock unless this thread holds it (see buddy_fork_take): 1 when taken.
int buddy_oversize_fork_prepare(void);
void buddy_oversize_fork_parent(void);
void buddy_oversize_fork_child(void);

/// Maps `size` bytes (whole pages) of fresh, zeroed, private memory aligned to `alignment` (a
/// power of two, at least the page), committed like glibc's own mmapped chunks (no
/// MAP_NORESERVE), or returns NULL with errno ENOMEM.
void *buddy_os_map_fresh(size_t size, size_t alignment);
/// mremap: resizes the mapping at `base` from `old_size` to `new_size` bytes, moving it when
/// `may_move` and it cannot grow in place. NULL (and the mapping intact) on failure. Preserves errno.
void *buddy_os_remap(void *base, size_t old_size, size_t new_size, int may_move);
/// 1 when the page holding `address` is mapped (mincore), else 0. Preserves errno.
int buddy_os_is_mapped(const void *address);
/// mprotect: `size` bytes at `base` (whole pages) readable and writable (`writable` 1) or not
/// accessible at all (0: a guard page). 0 on success. Preserves errno.
int buddy_os_protect(void *base, size_t size, int writable);
/// Reserves `size` bytes of address space (PROT_NONE, nothing committed until made writable),
/// or returns NULL. Preserves errno.
void *buddy_os_reserve(size_t size);
/// mremap(MREMAP_MAYMOVE | MREMAP_FIXED): moves the `size` bytes at `from` (within one mapping)
/// to `to`, replacing what was there; their pages go with them (no copy, no fault) and `from`
/// becomes unmapped. 0 on success (else both ranges are intact). Preserves errno.
int buddy_os_move(void *from, size_t size, void *to);
/// Maps `size` bytes of inaccessible address space exactly at `at` (MAP_FIXED_NOREPLACE), which
/// must be unmapped: 0 on success, -1 when anything is there now. Preserves errno.
int buddy_os_tombstone(void *at, size_t size);

#endif
