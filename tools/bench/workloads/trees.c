/* trees: build and tear down complete binary trees of small nodes.
 *
 * Models allocation-heavy tree building (the binary-trees benchmark of
 * garbage-collector fame; parsers' syntax trees, DOMs, ordered maps): one
 * long-lived tree of depth `max` stays up for the whole run while, for
 * depth d = 4, 6, ..., max, 2^(max - d + 4) trees of depth d are built
 * (malloc per 24-byte node: two children and a value), walked, and freed
 * bottom-up. Shallow trees are many and short, deep ones few and large, so
 * the same number of nodes (2^(max+5)) goes through each depth. A "stretch"
 * tree of depth max + 1 comes first. Each node's value is checked on the
 * walk and before it is freed; the printed node counts and checksums must be
 * the same under every allocator. With several threads, the trees of each
 * depth are shared out between them (node counts and sums do not change).
 *
 * usage: trees [threads=1] [max=16]
 */
#include "common.h"
#include <pthread.h>

typedef struct node { struct node *l, *r; uint64_t v; } node_t;

#define MIN_DEPTH 4

static inline uint64_t node_val(uint64_t seed, uint64_t pos)
{
    return (seed ^ (pos * 0x9E3779B97F4A7C15ull)) + pos;
}

static node_t *build(int depth, uint64_t seed, uint64_t pos)
{
    node_t *n = xmalloc(sizeof *n);
    n->v = node_val(seed, pos);
    if (depth > 0) {
        n->l = build(depth - 1, seed, 2 * pos);
        n->r = build(depth - 1, seed, 2 * pos + 1);
    } else {
        n->l = n->r = NULL;
    }
    return n;
}

static void bad_node(const node_t *n, uint64_t want)
{
    fprintf(stderr, "trees: CORRUPTION: node %p value %016llx, expected %016llx\n",
            (const void *)n, (unsigned long long)n->v, (unsigned long long)want);
    exit(3);
}

/* Counts the nodes and adds their values into *sum. */
static uint64_t walk(const node_t *n, uint64_t seed, uint64_t pos, uint64_t *sum)
{
    uint64_t want = node_val(seed, pos);
    if (n->v != want) bad_node(n, want);
    *sum += n->v;
    if (!n->l) return 1;
    return 1 + walk(n->l, seed, 2 * pos, sum) + walk(n->r, seed, 2 * pos + 1, sum);
}

static void drop(node_t *n, uint64_t seed, uint64_t pos)
{
    if (n->l) {
        drop(n->l, seed, 2 * pos);
        drop(n->r, seed, 2 * pos + 1);
    }
    uint64_t want = node_val(seed, pos);
    if (n->v != want) bad_node(n, want);
    free(n);
}

static int T, MAX;
static uint64_t depth_nodes[64], depth_sum[64];

static void *worker(void *arg)
{
    long id = (long)(intptr_t)arg;
    for (int d = MIN_DEPTH; d <= MAX; d += 2) {
        long iters = 1L << (MAX - d + MIN_DEPTH);
        uint64_t nodes = 0, sum = 0;
        for (long i = id; i < iters; i += T) {
            uint64_t seed = ((uint64_t)d << 32) | (uint64_t)i;
            node_t *t = build(d, seed, 1);
            nodes += walk(t, seed, 1, &sum);
            drop(t, seed, 1);
        }
        __atomic_fetch_add(&depth_nodes[d], nodes, __ATOMIC_RELAXED);
        __atomic_fetch_add(&depth_sum[d], sum, __ATOMIC_RELAXED);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    bench_name = "trees";
    T = (int)arg_long(argc, argv, 1, 1);
    MAX = (int)arg_long(argc, argv, 2, 16);
    if (T < 1) T = 1;
    if (MAX < MIN_DEPTH + 1) MAX = MIN_DEPTH + 1;
    if (MAX > 26) MAX = 26;

    uint64_t sum = 0;
    node_t *stretch = build(MAX + 1, 7, 1);
    uint64_t n = walk(stretch, 7, 1, &sum);
    drop(stretch, 7, 1);
    printf("stretch tree of depth %d: %llu nodes, sum %016llx\n", MAX + 1,
           (unsigned long long)n, (unsigned long long)sum);

    node_t *longlived = build(MAX, 11, 1);
    pthread_t *th = xcalloc((size_t)T, sizeof *th);
    for (long t = 0; t < T; t++)
        if (pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t)) {
            fprintf(stderr, "trees: pthread_create failed\n");
            return 2;
        }
    for (long t = 0; t < T; t++) pthread_join(th[t], NULL);
    free(th);
    for (int d = MIN_DEPTH; d <= MAX; d += 2)
        printf("%ld trees of depth %d: %llu nodes, sum %016llx\n",
               1L << (MAX - d + MIN_DEPTH), d, (unsigned long long)depth_nodes[d],
               (unsigned long long)depth_sum[d]);
    sum = 0;
    n = walk(longlived, 11, 1, &sum);
    drop(longlived, 11, 1);
    printf("long-lived tree of depth %d: %llu nodes, sum %016llx\n", MAX,
           (unsigned long long)n, (unsigned long long)sum);
    return 0;
}
