/* objects: C++ objects through operator new and delete, the shape of peer-bench's alloc-test
 * (random sizes, random lifetimes, per thread) in C++'s idiom. Each thread keeps a table of
 * LIVE objects; each step destroys a random one (through its base class: the deleting
 * destructor calls the sized operator delete) and creates another of a random kind:
 *
 *   node     new Node<W>: 16, 32, 56, 88 or 128 bytes of words, checked at destruction
 *   array    new unsigned char[n], n log-uniform in 16..1024, pattern-filled and checked
 *   text     std::string of 16..256 characters (on the heap), checked
 *   numbers  std::vector<uint32_t> grown by push_back to 1..96 elements: its reallocations
 *            are new and sized delete
 *
 * Every kind is equally likely. Nothing crosses threads.
 *
 * usage: objects THREADS LIVE STEPS [seed=1]
 * Output: "objects ok threads=T steps=S checksum=X", the same under every allocator for the
 * same arguments (the suite compares it); a corrupted object prints CORRUPTION and exits 3.
 */
#include "common.h"

#include <pthread.h>
#include <string>
#include <vector>

namespace {

struct Object {
    virtual ~Object() = default;
    /* Checks the object's contents; a hash of them. */
    virtual uint64_t check() const = 0;
};

[[noreturn]] void corrupted(const void *p, const char *what)
{
    fprintf(stderr, "objects: CORRUPTION: %s at %p\n", what, p);
    exit(3);
}

template <size_t W>
struct Node final : Object {
    uint64_t word[W]; /* the tag, then words derived from it */
    explicit Node(uint64_t tag)
    {
        word[0] = tag;
        for (size_t i = 1; i < W; i++) word[i] = splitmix64(tag + i);
    }
    uint64_t check() const override
    {
        for (size_t i = 1; i < W; i++)
            if (word[i] != splitmix64(word[0] + i)) corrupted(this, "node");
        return word[0] ^ W;
    }
};

struct Array final : Object {
    size_t n;
    uint64_t tag;
    unsigned char *bytes;
    Array(size_t n, uint64_t tag) : n(n), tag(tag), bytes(new unsigned char[n])
    {
        pat_fill(bytes, n, tag);
    }
    ~Array() override { delete[] bytes; }
    uint64_t check() const override
    {
        pat_check(bytes, n, tag);
        return tag + n;
    }
};

struct Text final : Object {
    std::string text;
    Text(size_t n, uint64_t tag) : text(n, (char)('a' + tag % 26)) { text[n / 2] = 'Z'; }
    uint64_t check() const override
    {
        size_t n = text.size();
        char c = text[0];
        for (size_t i = 0; i < n; i++)
            if (text[i] != (i == n / 2 ? 'Z' : c)) corrupted(this, "text");
        return n * 131 + (uint64_t)c;
    }
};

struct Numbers final : Object {
    std::vector<uint32_t> numbers;
    Numbers(size_t n, uint64_t tag)
    {
        for (size_t i = 0; i < n; i++) numbers.push_back((uint32_t)(tag + i * 7));
    }
    uint64_t check() const override
    {
        uint32_t first = numbers[0];
        for (size_t i = 1; i < numbers.size(); i++)
            if (numbers[i] != (uint32_t)(first + i * 7)) corrupted(this, "numbers");
        return first + numbers.size();
    }
};

Object *make(rng_t *r)
{
    uint64_t tag = rng_next(r);
    switch (rng_below(r, 8)) {
    case 0: return new Node<1>(tag);
    case 1: return new Node<3>(tag);
    case 2: return rng_below(r, 2) ? static_cast<Object *>(new Node<6>(tag)) : new Node<10>(tag);
    case 3: return new Node<15>(tag);
    case 4:
    case 5: return new Array(rng_log_uniform(r, 16, 1024), tag);
    case 6: return new Text(rng_range(r, 16, 256), tag);
    default: return new Numbers(rng_range(r, 1, 96), tag);
    }
}

struct Worker {
    pthread_t thread;
    long live, steps;
    uint64_t seed, checksum;
};

void *run(void *arg)
{
    Worker *w = static_cast<Worker *>(arg);
    rng_t r;
    rng_seed(&r, w->seed);
    std::vector<Object *> table((size_t)w->live);
    for (Object *&o : table) o = make(&r);
    uint64_t sum = 0;
    for (long s = 0; s < w->steps; s++) {
        Object *&o = table[rng_below(&r, (uint64_t)w->live)];
        sum = sum * 31 + o->check();
        delete o;
        o = make(&r);
    }
    for (Object *o : table) {
        sum = sum * 31 + o->check();
        delete o;
    }
    w->checksum = sum;
    return nullptr;
}

} // namespace

int main(int argc, char **argv)
{
    bench_name = "objects";
    long threads = arg_long(argc, argv, 1, 1), live = arg_long(argc, argv, 2, 2000),
         steps = arg_long(argc, argv, 3, 1000000), seed = arg_long(argc, argv, 4, 1);
    if (threads < 1 || live < 1 || steps < 0) {
        fprintf(stderr, "usage: objects THREADS LIVE STEPS [seed]\n");
        return 2;
    }
    std::vector<Worker> workers((size_t)threads);
    for (long t = 0; t < threads; t++) {
        workers[t] = Worker{{}, live, steps, (uint64_t)seed * 1000003u + (uint64_t)t, 0};
        if (pthread_create(&workers[t].thread, nullptr, run, &workers[t]) != 0) {
            fprintf(stderr, "objects: pthread_create failed\n");
            return 2;
        }
    }
    uint64_t checksum = 0;
    for (Worker &w : workers) {
        pthread_join(w.thread, nullptr);
        checksum ^= w.checksum;
    }
    printf("objects ok threads=%ld steps=%ld checksum=%016llx\n", threads, steps, (unsigned long long)checksum);
    return 0;
}
