/* SPDX-License-Identifier: MIT */
/* guest/rt/rt.h: the freestanding runtime shared by the ovc test guests. */
#ifndef OVC_GUEST_RT_H
#define OVC_GUEST_RT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../abi.h"

/*
 * Execution model (see abi.h): every vCPU enters guest_main() at CPL3 at the
 * same time, with interrupts on. Ring 0 is only reachable through the vector
 * stubs in entry.c; everything else, including all I/O, runs at CPL3. There
 * is no HLT here: idle_us() asks the VMM to halt us instead.
 */

#define PAGE_SHIFT	12
#define PAGE_SIZE	(1UL << PAGE_SHIFT)
#define PAGE_WORDS	(PAGE_SIZE / sizeof(uint64_t))

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define MIN(a, b)	((a) < (b) ? (a) : (b))
#define MAX(a, b)	((a) > (b) ? (a) : (b))
#define ALIGN_UP(x, a)	(((x) + (a) - 1) / (a) * (a))

#define NSEC_PER_USEC	1000ULL
#define NSEC_PER_MSEC	1000000ULL
#define NSEC_PER_SEC	1000000000ULL

/**
 * guest_main() - the workload, provided by each guest
 * @vcpu: this vCPU's index, 0 .. boot->nr_vcpus - 1
 * @boot: the VMM's boot block
 *
 * Runs on every vCPU at once. Must poll boot->stop at least every few
 * milliseconds and return once it is set.
 *
 * Return: 0 on success, 1 if the workload found a fault (corruption), 2 for
 * bad arguments. The VM's exit code is the largest value any vCPU returned.
 */
int guest_main(unsigned int vcpu, struct ovc_guest_boot *boot);

/* Per-vector interrupt counts, bumped by the ring-0 stubs for vectors 32-255. */
extern volatile uint64_t irq_count[256];

/* ---- CPU and port access: all legal at CPL3 here ---- */

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" : : : "memory");
}

/* ---- time ---- */

/* TSC ticks per millisecond (boot->tsc_khz), checked non-zero at entry. */
extern uint64_t rt_tsc_khz;

uint64_t now_ns(void);

static inline uint64_t ns_to_tsc(uint64_t ns)
{
	/* Split so that neither product overflows for any sane duration. */
	return ns / NSEC_PER_MSEC * rt_tsc_khz +
	       ns % NSEC_PER_MSEC * rt_tsc_khz / NSEC_PER_MSEC;
}

static inline uint64_t tsc_to_ns(uint64_t ticks)
{
	return ticks / rt_tsc_khz * NSEC_PER_MSEC +
	       ticks % rt_tsc_khz * NSEC_PER_MSEC / rt_tsc_khz;
}

/* ---- VMM ports ---- */

/*
 * idle_us() - halt this vCPU for up to @us microseconds. The VMM wakes it
 * early on an interrupt or at shutdown, not when boot->stop is set, so
 * callers that poll boot->stop keep @us to a few milliseconds.
 */
static inline void idle_us(uint32_t us)
{
	outl(OVC_PORT_HALT, us);
}

/* corrupt() - tell the VMM that the page at frame @pfn lost its contents. */
static inline void corrupt(uint64_t pfn)
{
	outl(OVC_PORT_CORRUPT, (uint32_t)pfn);
}

/*
 * report() - add to (OVC_GUEST_REPORT_ADD) or set (OVC_GUEST_REPORT_SET) the
 * VM counter @name ([a-z0-9_], at most 31 characters). Synchronous: the VMM
 * has consumed it when the call returns.
 */
void report(const char *name, uint32_t op, uint64_t value);

/* rt_vcpu() - the calling vCPU's index, derived from which CPL3 stack we run on. */
unsigned int rt_vcpu(void);

/* ---- serial console ---- */

int rt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int rt_snprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/*
 * rt_printf() - print to the 16550 at OVC_PORT_SERIAL. One call's output
 * (at most 255 bytes) is never interleaved with another vCPU's.
 */
void rt_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- string functions: gcc may emit calls to these ---- */

void *memset(void *s, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);

/* ---- synchronisation between vCPUs ---- */

struct rt_spinlock {
	uint32_t locked;	/* ATOMIC */
};

void rt_spin_lock(struct rt_spinlock *l);
void rt_spin_unlock(struct rt_spinlock *l);

/*
 * struct rt_barrier - a sense-reversing barrier for @n vCPUs. Zero-initialised
 * static storage is ready to use; every waiter must pass the same @n.
 */
struct rt_barrier {
	uint32_t arrived;	/* ATOMIC */
	uint32_t generation;	/* ATOMIC */
};

void rt_barrier_wait(struct rt_barrier *b, unsigned int n);

/* ---- pseudo-random numbers and hashing ---- */

/* splitmix64's finaliser: a cheap, well-mixing bijection on 64 bits. */
static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

#define GOLDEN64	0x9e3779b97f4a7c15ULL

/* The word at @index of the pseudo-random page content named by @seed. */
static inline uint64_t gen_word(uint64_t seed, uint64_t index)
{
	return mix64(seed + (index + 1) * GOLDEN64);
}

/* struct rng - splitmix64: one add and a mix per number, good enough here. */
struct rng {
	uint64_t state;
};

static inline void rng_seed(struct rng *r, uint64_t seed)
{
	r->state = mix64(seed ^ 0x6f76632d726e6721ULL);
}

static inline uint64_t rng_next(struct rng *r)
{
	r->state += GOLDEN64;
	return mix64(r->state);
}

/* A number in [0, n) (0 when n is 0), without a division. */
static inline uint64_t rng_below(struct rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* True with probability @pct percent. */
static inline bool rng_pct(struct rng *r, uint64_t pct)
{
	return rng_below(r, 100) < pct;
}

/* hash_words() - a 64-bit hash of @n words (four independent lanes). */
uint64_t hash_words(const uint64_t *w, size_t n);

/* page_hash() - hash_words() over one whole 4 KiB page. */
static inline uint64_t page_hash(const void *page)
{
	return hash_words(page, PAGE_WORDS);
}

/* page_fill() - fill a page with gen_word(@seed, 0..511). */
void page_fill(void *page, uint64_t seed);

/*
 * page_check() - compare a page with gen_word(@seed, ...), or with zeros when
 * @zero is set. Return the number of differing words (0: intact), and the
 * index of the first in *@first.
 */
unsigned int page_check(const void *page, uint64_t seed, bool zero,
			unsigned int *first);

/* ---- arguments: "key=value" separated by spaces or commas ---- */

enum rt_arg_type {
	RT_ARG_U64,	/* decimal or 0x hex */
	RT_ARG_SIZE,	/* bytes, K/M/G/T suffix (powers of 1024), or N% */
	RT_ARG_PCT,	/* 0..100, optional trailing % */
	RT_ARG_CHOICE,	/* one of @choices; stores its index */
};

/* struct rt_size - a size argument: @pct set means @pct percent of what is available. */
struct rt_size {
	uint64_t bytes;
	uint32_t pct;
};

/**
 * struct rt_arg - one accepted key
 * @val: uint64_t * (U64, PCT, CHOICE) or struct rt_size * (SIZE); holds
 *	the default on entry
 * @choices: NULL-terminated, for RT_ARG_CHOICE
 * @max: for RT_ARG_U64, the largest accepted value (0: no limit)
 */
struct rt_arg {
	const char *key;
	enum rt_arg_type type;
	void *val;
	const char *const *choices;
	uint64_t max;
};

/*
 * rt_parse_args() - parse @args against @tab. On an unknown key or a bad
 * value, print one line "<@prog>: unknown argument 'key'" (or "bad value")
 * if @verbose. Return 0 or 2, the exit code for bad arguments.
 */
int rt_parse_args(const char *prog, const char *args, const struct rt_arg *tab,
		  size_t n, bool verbose);

/* rt_size_resolve() - bytes of @s, given @avail bytes for a percentage or no size (0). */
uint64_t rt_size_resolve(const struct rt_size *s, uint64_t avail);

/* rt_fmt_size() - @bytes as "123M"-style text in @buf (exact, largest unit that divides). */
const char *rt_fmt_size(char *buf, size_t size, uint64_t bytes);

#endif /* OVC_GUEST_RT_H */
