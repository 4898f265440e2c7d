/* prodcons: producer/consumer hand-off through a bounded queue.
 *
 * Models pipelines and message passing: P producer threads allocate
 * messages (16..4096 B, log-uniform), fill them and push them into a bounded
 * FIFO (mutex + condition variables); C consumer threads pop, verify and
 * free them. Every free is a remote free, and the allocating and freeing
 * threads never swap roles.
 *
 * usage: prodcons [producers=2] [consumers=2] [items=400000] [cap=1024] [seed=1]
 *        (items is per producer)
 */
#include "common.h"
#include <pthread.h>

typedef struct { void *p; uint32_t n; uint64_t tag; } msg_t;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    msg_t *buf;
    size_t cap, head, count;
    int wait_empty, wait_full;
    long producers_left;
} q = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
        PTHREAD_COND_INITIALIZER, NULL, 0, 0, 0, 0, 0, 0 };

static long ITEMS;
static uint64_t SEED;

static void q_push(msg_t m)
{
    pthread_mutex_lock(&q.mu);
    while (q.count == q.cap) {
        q.wait_full++;
        pthread_cond_wait(&q.not_full, &q.mu);
        q.wait_full--;
    }
    q.buf[(q.head + q.count) % q.cap] = m;
    q.count++;
    if (q.wait_empty) pthread_cond_signal(&q.not_empty);
    pthread_mutex_unlock(&q.mu);
}

/* returns 0 when the queue is drained and all producers are done */
static int q_pop(msg_t *m)
{
    pthread_mutex_lock(&q.mu);
    while (q.count == 0) {
        if (q.producers_left == 0) {
            pthread_mutex_unlock(&q.mu);
            return 0;
        }
        q.wait_empty++;
        pthread_cond_wait(&q.not_empty, &q.mu);
        q.wait_empty--;
    }
    *m = q.buf[q.head];
    q.head = (q.head + 1) % q.cap;
    q.count--;
    if (q.wait_full) pthread_cond_signal(&q.not_full);
    pthread_mutex_unlock(&q.mu);
    return 1;
}

static void *producer(void *arg)
{
    long id = (long)(intptr_t)arg;
    rng_t r;
    rng_seed(&r, SEED * 7919u + (uint64_t)id);
    uint64_t tagc = ((uint64_t)id + 1) << 40;
    for (long i = 0; i < ITEMS; i++) {
        msg_t m;
        m.n = (uint32_t)rng_log_uniform(&r, 16, 4096);
        m.p = xmalloc(m.n);
        m.tag = ++tagc;
        pat_fill(m.p, m.n, m.tag);
        q_push(m);
    }
    pthread_mutex_lock(&q.mu);
    if (--q.producers_left == 0) pthread_cond_broadcast(&q.not_empty);
    pthread_mutex_unlock(&q.mu);
    return NULL;
}

static long consumed_total;

static void *consumer(void *arg)
{
    (void)arg;
    long n = 0;
    msg_t m;
    while (q_pop(&m)) {
        pat_check(m.p, m.n, m.tag);
        free(m.p);
        n++;
    }
    __atomic_fetch_add(&consumed_total, n, __ATOMIC_RELAXED);
    return NULL;
}

int main(int argc, char **argv)
{
    bench_name = "prodcons";
    long P = arg_long(argc, argv, 1, 2);
    long C = arg_long(argc, argv, 2, 2);
    ITEMS = arg_long(argc, argv, 3, 400000);
    long cap = arg_long(argc, argv, 4, 1024);
    SEED = (uint64_t)arg_long(argc, argv, 5, 1);
    if (P < 1) P = 1;
    if (C < 1) C = 1;
    if (cap < 1) cap = 1;

    q.cap = (size_t)cap;
    q.buf = xcalloc(q.cap, sizeof(msg_t));
    q.producers_left = P;
    pthread_t *th = xcalloc((size_t)(P + C), sizeof *th);
    for (long i = 0; i < C; i++)
        if (pthread_create(&th[i], NULL, consumer, NULL)) return 2;
    for (long i = 0; i < P; i++)
        if (pthread_create(&th[C + i], NULL, producer, (void *)(intptr_t)i))
            return 2;
    for (long i = 0; i < P + C; i++) pthread_join(th[i], NULL);
    if (consumed_total != P * ITEMS) {
        fprintf(stderr, "prodcons: consumed %ld of %ld messages\n",
                consumed_total, P * ITEMS);
        return 3;
    }
    free(q.buf);
    free(th);
    printf("prodcons ok producers=%ld consumers=%ld items=%ld\n", P, C,
           P * ITEMS);
    return 0;
}
