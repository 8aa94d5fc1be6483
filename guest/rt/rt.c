// SPDX-License-Identifier: MIT
/* guest/rt/rt.c: time, VMM reports, string functions, locks, barriers and page hashing. */
#include "rt.h"

uint64_t now_ns(void)
{
	return tsc_to_ns(rdtsc());
}

unsigned int rt_vcpu(void)
{
	uint64_t sp;

	__asm__("movq %%rsp, %0" : "=r"(sp));
	/* abi.h: vCPU n's stack is the OVC_GUEST_STACK_SIZE bytes below TOP - n * SIZE. */
	if (sp >= OVC_GUEST_STACK_TOP ||
	    sp < OVC_GUEST_STACK_TOP - OVC_GUEST_MAX_VCPUS * OVC_GUEST_STACK_SIZE)
		return 0;
	return (unsigned int)((OVC_GUEST_STACK_TOP - 1 - sp) / OVC_GUEST_STACK_SIZE);
}

/*
 * One buffer per vCPU: the VMM reads it during the OUT, so it is free again
 * when report() returns, and vCPUs never share one. Its address must fit the
 * 32-bit port value, which the image's place below 1.5 MiB guarantees.
 */
static struct ovc_guest_report report_buf[OVC_GUEST_MAX_VCPUS]
	__attribute__((aligned(64)));

void report(const char *name, uint32_t op, uint64_t value)
{
	struct ovc_guest_report *r = &report_buf[rt_vcpu()];
	size_t i;

	for (i = 0; i < sizeof(r->name) - 1 && name[i]; i++)
		r->name[i] = name[i];
	memset(r->name + i, 0, sizeof(r->name) - i);
	r->op = op;
	r->pad = 0;
	r->value = value;
	outl(OVC_PORT_REPORT, (uint32_t)(uintptr_t)r);
}

/*
 * The string functions use REP STOSB/MOVSB: short, fast on every CPU with
 * ERMS, and impossible for gcc to turn back into a call to themselves.
 */
void *memset(void *s, int c, size_t n)
{
	void *d = s;

	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return s;
}

void *memcpy(void *dst, const void *src, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
	return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if (!n || d <= s || d >= s + n)
		return memcpy(dst, src, n);
	/* Overlapping with dst above src: copy backwards, from the last byte. */
	d += n - 1;
	s += n - 1;
	__asm__ volatile("std\n\trep movsb\n\tcld"
			 : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return (unsigned char)*a - (unsigned char)*b;
}

void rt_spin_lock(struct rt_spinlock *l)
{
	while (__atomic_exchange_n(&l->locked, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&l->locked, __ATOMIC_RELAXED))
			cpu_relax();
}

void rt_spin_unlock(struct rt_spinlock *l)
{
	__atomic_store_n(&l->locked, 0, __ATOMIC_RELEASE);
}

void rt_barrier_wait(struct rt_barrier *b, unsigned int n)
{
	uint32_t gen = __atomic_load_n(&b->generation, __ATOMIC_ACQUIRE);
	uint64_t spins = 0;

	if (__atomic_add_fetch(&b->arrived, 1, __ATOMIC_ACQ_REL) == n) {
		__atomic_store_n(&b->arrived, 0, __ATOMIC_RELAXED);
		__atomic_add_fetch(&b->generation, 1, __ATOMIC_RELEASE);
		return;
	}
	/*
	 * A waiter may wait for a vCPU that the host has descheduled: after a
	 * short spin, give the physical CPU back through the HALT port. 50 us
	 * keeps the release latency small against the phases it separates.
	 */
	while (__atomic_load_n(&b->generation, __ATOMIC_ACQUIRE) == gen) {
		if (++spins < 10000)
			cpu_relax();
		else
			idle_us(50);
	}
}

static inline uint64_t rotl64(uint64_t x, unsigned int r)
{
	return (x << r) | (x >> (64 - r));
}

/*
 * Four lanes of multiply-rotate so consecutive words do not wait on one
 * another's multiply; the lanes and the length are folded through mix64().
 */
uint64_t hash_words(const uint64_t *w, size_t n)
{
	const uint64_t p = 0x9fb21c651e98df25ULL;
	uint64_t a = 0x736f6d6570736575ULL, b = 0x646f72616e646f6dULL;
	uint64_t c = 0x6c7967656e657261ULL, d = 0x7465646279746573ULL;
	size_t i;

	for (i = 0; i + 4 <= n; i += 4) {
		a = rotl64((a ^ w[i]) * p, 29);
		b = rotl64((b ^ w[i + 1]) * p, 29);
		c = rotl64((c ^ w[i + 2]) * p, 29);
		d = rotl64((d ^ w[i + 3]) * p, 29);
	}
	for (; i < n; i++)
		a = rotl64((a ^ w[i]) * p, 29);
	return mix64(a ^ rotl64(b, 16) ^ rotl64(c, 32) ^ rotl64(d, 48) ^ n);
}

void page_fill(void *page, uint64_t seed)
{
	uint64_t *w = page;
	size_t i;

	for (i = 0; i < PAGE_WORDS; i++)
		w[i] = gen_word(seed, i);
}

unsigned int page_check(const void *page, uint64_t seed, bool zero,
			unsigned int *first)
{
	const uint64_t *w = page;
	uint64_t diff = 0;
	unsigned int i, bad = 0;

	/* Fast path without branches: almost every page is intact. */
	if (zero) {
		for (i = 0; i < PAGE_WORDS; i++)
			diff |= w[i];
	} else {
		for (i = 0; i < PAGE_WORDS; i++)
			diff |= w[i] ^ gen_word(seed, i);
	}
	if (!diff)
		return 0;

	*first = PAGE_WORDS;
	for (i = 0; i < PAGE_WORDS; i++) {
		if (w[i] != (zero ? 0 : gen_word(seed, i))) {
			if (!bad)
				*first = i;
			bad++;
		}
	}
	/* The page changed between the passes: still call it corrupt. */
	if (!bad) {
		*first = 0;
		bad = 1;
	}
	return bad;
}
