// The pages the library needs only while it is being loaded: its relocations. The dynamic
// linker reads all of .rela.dyn once (364 KB: the static Swift runtime's metadata is full of
// pointers) and never again, yet those pages stay in every process's resident set, a tenth of
// the library's fixed cost (README, "Limits"). The constructor hands them back: they are clean
// pages of a private file mapping, so MADV_DONTNEED only drops them from the page tables, and
// anything that read them again would fault them back in from the file.
#define _GNU_SOURCE
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

extern const ElfW(Ehdr) __ehdr_start __attribute__((visibility("hidden")));

void buddy_release_relocation_pages(void) {
    const ElfW(Ehdr) *header = &__ehdr_start;
    uintptr_t base = (uintptr_t)header;
    const ElfW(Phdr) *phdrs = (const ElfW(Phdr) *)(base + header->e_phoff);
    const ElfW(Phdr) *first = NULL, *dynamic = NULL;
    for (int i = 0; i < header->e_phnum; i++) {
        if (phdrs[i].p_type == PT_LOAD && first == NULL) first = &phdrs[i];
        if (phdrs[i].p_type == PT_DYNAMIC) dynamic = &phdrs[i];
    }
    // The ELF header is the first loaded byte, and the first segment holds the relocations,
    // read-only (a writable one could hold data the program changed).
    if (first == NULL || dynamic == NULL || first->p_vaddr != 0 || first->p_offset != 0 || (first->p_flags & PF_W)) return;
    uintptr_t rela = 0, size = 0;
    for (const ElfW(Dyn) *d = (const ElfW(Dyn) *)(base + dynamic->p_vaddr); d->d_tag != DT_NULL; d++) {
        if (d->d_tag == DT_RELA) rela = d->d_un.d_ptr;
        if (d->d_tag == DT_RELASZ) size = d->d_un.d_val;
    }
    if (rela == 0 || size == 0) return;
    if (rela < base) rela += base; // (glibc's loader rewrites the entry to an address; others may not)
    uintptr_t end = base + first->p_memsz;
    if (rela < base || rela + size > end) return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = (rela + page - 1) & ~(page - 1), to = (rela + size) & ~(page - 1);
    if (to > from) madvise((void *)from, to - from, MADV_DONTNEED);
}
