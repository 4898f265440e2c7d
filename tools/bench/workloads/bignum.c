/* bignum: arbitrary-precision arithmetic with immutable heap numbers.
 *
 * Models cfrac-style programs (bignum factoring, computer algebra,
 * interpreters with boxed integers): every arithmetic result is a fresh
 * heap object of 8..200 B, most of them dead a few steps later, a few kept
 * for the whole run, and temporaries made and dropped inside one operation
 * (a quotient before its leading zero limbs are trimmed, a sum whose carry
 * limb stayed zero). A number is a 4-byte header (magic and limb count)
 * and 1..49 32-bit limbs; arithmetic is modulo 2^(32*len), where each
 * result's length is capped at a log-uniform 1..49 limbs so sizes spread
 * over 8..200 B with small ones most frequent.
 *
 * 16 working registers and a table of 512 long-lived numbers; each step
 * adds, multiplies, divides by a small number, truncates or scales, and
 * replaces a register with the result; every 64 steps a table entry is
 * replaced by a copy of a register. Every number's header is checked when
 * it is read and before it is freed, and the printed checksum (over every
 * result and the final state) must be the same under every allocator.
 *
 * usage: bignum [steps=1500000] [seed=1]
 */
#include "common.h"

#define NUM_MAX 49u
#define NUM_MAGIC 0x5eed4200u
#define REGS 16
#define TABLE 512

typedef struct { uint32_t hdr; uint32_t limb[]; } num_t;

static void corrupt(const num_t *x)
{
    fprintf(stderr, "bignum: CORRUPTION: number %p header %08x\n", (const void *)x,
            x->hdr);
    exit(3);
}

static inline unsigned num_len(const num_t *x)
{
    unsigned len = x->hdr & 0xffu;
    if ((x->hdr & ~0xffu) != NUM_MAGIC || len == 0 || len > NUM_MAX) corrupt(x);
    return len;
}

static inline num_t *num_alloc(unsigned len)
{
    num_t *x = xmalloc(sizeof(num_t) + 4u * len);
    x->hdr = NUM_MAGIC | len;
    return x;
}

static inline void num_free(num_t *x)
{
    num_len(x);
    x->hdr = 0;
    free(x);
}

static inline unsigned umin(unsigned a, unsigned b) { return a < b ? a : b; }
static inline unsigned umax(unsigned a, unsigned b) { return a > b ? a : b; }

/* Drops leading zero limbs: a new, shorter copy, and the old one freed. */
static num_t *num_trim(num_t *x)
{
    unsigned len = num_len(x), k = len;
    while (k > 1 && x->limb[k - 1] == 0) k--;
    if (k == len) return x;
    num_t *y = num_alloc(k);
    for (unsigned i = 0; i < k; i++) y->limb[i] = x->limb[i];
    num_free(x);
    return y;
}

static num_t *num_add(const num_t *a, const num_t *b, unsigned cap)
{
    unsigned la = num_len(a), lb = num_len(b);
    unsigned len = umin(umax(la, lb) + 1, cap);
    num_t *r = num_alloc(len);
    uint64_t carry = 0;
    for (unsigned i = 0; i < len; i++) {
        uint64_t s = carry;
        if (i < la) s += a->limb[i];
        if (i < lb) s += b->limb[i];
        r->limb[i] = (uint32_t)s;
        carry = s >> 32;
    }
    return num_trim(r);
}

static num_t *num_mul(const num_t *a, const num_t *b, unsigned cap)
{
    unsigned la = num_len(a), lb = num_len(b);
    unsigned len = umin(la + lb, cap);
    num_t *r = num_alloc(len);
    for (unsigned i = 0; i < len; i++) r->limb[i] = 0;
    for (unsigned i = 0; i < la && i < len; i++) {
        uint64_t carry = 0;
        for (unsigned j = 0; j < lb && i + j < len; j++) {
            uint64_t t = (uint64_t)a->limb[i] * b->limb[j] + r->limb[i + j] + carry;
            r->limb[i + j] = (uint32_t)t;
            carry = t >> 32;
        }
        if (i + lb < len) r->limb[i + lb] = (uint32_t)carry;
    }
    return num_trim(r);
}

static num_t *num_divsmall(const num_t *a, uint32_t d, uint32_t *rem)
{
    unsigned len = num_len(a);
    num_t *q = num_alloc(len);
    uint64_t r = 0;
    for (unsigned i = len; i-- > 0;) {
        uint64_t cur = (r << 32) | a->limb[i];
        q->limb[i] = (uint32_t)(cur / d);
        r = cur % d;
    }
    *rem = (uint32_t)r;
    return num_trim(q);
}

static num_t *num_scale(const num_t *a, uint32_t k, uint32_t add, unsigned cap)
{
    unsigned la = num_len(a), len = umin(la + 1, cap);
    num_t *r = num_alloc(len);
    uint64_t carry = add;
    for (unsigned i = 0; i < len; i++) {
        uint64_t t = (i < la ? (uint64_t)a->limb[i] * k : 0) + carry;
        r->limb[i] = (uint32_t)t;
        carry = t >> 32;
    }
    return num_trim(r);
}

static num_t *num_copy(const num_t *a, unsigned cap)
{
    unsigned len = umin(num_len(a), cap);
    num_t *r = num_alloc(len);
    for (unsigned i = 0; i < len; i++) r->limb[i] = a->limb[i];
    return r;
}

static num_t *num_random(rng_t *r, unsigned len)
{
    num_t *x = num_alloc(len);
    for (unsigned i = 0; i < len; i++) x->limb[i] = (uint32_t)rng_next(r) | 1u;
    return x;
}

static inline uint64_t fold(uint64_t h, const num_t *x)
{
    unsigned len = num_len(x);
    h = (h ^ len) * 0x100000001B3ull;
    h = (h ^ x->limb[0]) * 0x100000001B3ull;
    return (h ^ x->limb[len - 1]) * 0x100000001B3ull;
}

int main(int argc, char **argv)
{
    bench_name = "bignum";
    long steps = arg_long(argc, argv, 1, 1500000);
    uint64_t seed = (uint64_t)arg_long(argc, argv, 2, 1);
    rng_t r;
    rng_seed(&r, seed);
    num_t *reg[REGS], *table[TABLE];
    for (int i = 0; i < REGS; i++)
        reg[i] = num_random(&r, (unsigned)rng_log_uniform(&r, 1, 8));
    for (int i = 0; i < TABLE; i++)
        table[i] = num_random(&r, (unsigned)rng_log_uniform(&r, 1, NUM_MAX));
    uint64_t h = 0xcbf29ce484222325ull;
    for (long s = 0; s < steps; s++) {
        unsigned cap = (unsigned)rng_log_uniform(&r, 1, NUM_MAX);
        num_t *a = reg[rng_below(&r, REGS)];
        num_t *b = reg[rng_below(&r, REGS)];
        num_t *t = table[rng_below(&r, TABLE)];
        num_t *res;
        uint32_t rem = 0;
        switch (rng_below(&r, 8)) {
        case 0: case 1: res = num_add(a, b, cap); break;
        case 2: res = num_mul(a, b, cap); break;
        case 3: res = num_mul(a, t, cap); break;
        case 4:
            res = num_divsmall(a, (uint32_t)rng_range(&r, 3, 0xffffffffu), &rem);
            h = (h ^ rem) * 0x100000001B3ull;
            break;
        case 5: res = num_copy(a, (unsigned)rng_range(&r, 1, 6)); break;
        case 6: res = num_scale(a, (uint32_t)rng_next(&r), (uint32_t)s, cap); break;
        default: res = num_add(a, t, cap); break;
        }
        h = fold(h, res);
        unsigned dst = (unsigned)rng_below(&r, REGS);
        num_free(reg[dst]);
        reg[dst] = res;
        if (s % 64 == 63) {
            unsigned k = (unsigned)rng_below(&r, TABLE);
            num_free(table[k]);
            table[k] = num_copy(reg[rng_below(&r, REGS)], NUM_MAX);
        }
    }
    for (int i = 0; i < REGS; i++) {
        h = fold(h, reg[i]);
        num_free(reg[i]);
    }
    for (int i = 0; i < TABLE; i++) {
        h = fold(h, table[i]);
        num_free(table[i]);
    }
    printf("bignum ok steps=%ld checksum=%016llx\n", steps, (unsigned long long)h);
    return 0;
}
