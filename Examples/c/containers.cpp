// The design document's example 9.3 in C++ on the C API: std::vector and std::map whose memory
// comes from a private pool, through a PoolAllocator<T>.
//
//   tools/pkgconfig.sh .build/release
//   c++ -o containers Examples/c/containers.cpp $(PKG_CONFIG_PATH=.build/release/pkgconfig pkg-config --cflags --libs buddymalloc)
//   ./containers
#include <buddy.h>
#include <malloc.h>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <new>
#include <vector>

// A standard allocator over a buddy pool: every allocation is a pool block aligned for T.
template <typename T>
class PoolAllocator {
public:
    using value_type = T;

    explicit PoolAllocator(buddy_pool *pool) noexcept : pool_(pool) {}
    template <typename U>
    PoolAllocator(const PoolAllocator<U> &other) noexcept : pool_(other.pool()) {}

    T *allocate(std::size_t n) {
        if (n > SIZE_MAX / sizeof(T)) throw std::bad_array_new_length();
        void *p = buddy_pool_alloc(pool_, n * sizeof(T), alignof(T));
        if (p == nullptr) throw std::bad_alloc();
        return static_cast<T *>(p);
    }

    void deallocate(T *p, std::size_t) noexcept {
        if (buddy_pool_free(pool_, p) != BUDDY_OK) std::abort(); // a container never frees a stranger's block
    }

    buddy_pool *pool() const noexcept { return pool_; }

private:
    buddy_pool *pool_;
};

template <typename T, typename U>
bool operator==(const PoolAllocator<T> &a, const PoolAllocator<U> &b) noexcept { return a.pool() == b.pool(); }
template <typename T, typename U>
bool operator!=(const PoolAllocator<T> &a, const PoolAllocator<U> &b) noexcept { return !(a == b); }

static void print_stats(buddy_pool *pool, const char *when) {
    struct buddy_pool_stats stats {};
    stats.version = BUDDY_POOL_STATS_VERSION;
    buddy_pool_stats(pool, &stats);
    std::printf("%s: %llu bytes in the pool, %llu allocated, %llu allocations, %llu frees\n", when,
                (unsigned long long)stats.total_bytes, (unsigned long long)stats.allocated_bytes,
                (unsigned long long)stats.allocations, (unsigned long long)stats.frees);
}

int main() {
    // MemoryPool pool(10 * 1024 * 1024);
    buddy_pool_config config = buddy_pool_config_default();
    config.initial_size = 10 << 20;
    buddy_pool *pool = buddy_pool_create(&config);
    if (pool == nullptr) return 1;
    {
        PoolAllocator<int> int_allocator(pool);
        std::vector<int, PoolAllocator<int>> vec(int_allocator);
        for (int i = 0; i < 100; ++i) vec.push_back(i * i);
        std::printf("vector size: %zu, capacity: %zu, vec[99] = %d\n", vec.size(), vec.capacity(), vec[99]);

        PoolAllocator<std::pair<const int, double>> map_allocator(pool);
        std::map<int, double, std::less<int>, PoolAllocator<std::pair<const int, double>>> map(std::less<int>(), map_allocator);
        for (int i = 0; i < 30; ++i) map[i] = i * 3.14;
        std::printf("map size: %zu, map[10] = %.2f\n", map.size(), map[10]);
        print_stats(pool, "with the containers");
    }
    print_stats(pool, "after they are gone");
    struct buddy_pool_stats stats {};
    stats.version = BUDDY_POOL_STATS_VERSION;
    buddy_pool_stats(pool, &stats);
    buddy_pool_destroy(pool);

    // The program's own malloc (operator new included) is the buddy pool as well.
    void *p = std::malloc(100);
    std::printf("malloc_usable_size(malloc(100)) = %zu\n", malloc_usable_size(p));
    bool ok = malloc_usable_size(p) == 128 && stats.allocated_bytes == 0 && stats.allocations > 30;
    std::free(p);
    std::printf("containers: %s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
