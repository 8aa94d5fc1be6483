// SPDX-License-Identifier: MIT
/* tests/test-zstore.c: the compressed tier: round trips, limits, corruption, age order, threads, a real VM. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <lz4.h>

#include "core/core-internal.h"
#include "host/host-internal.h"
#include "pager/zstore.h"

/* What a page holds; the pager sends all-zero pages to ZERO, the store still takes them. */
enum kind {
	K_TEXT,		/* words and spaces: ~2-3x */
	K_RAMP,		/* a 256-byte period: very compressible */
	K_SPARSE,	/* zeros with a few random words */
	K_RECORDS,	/* 64-byte structs: pointers, small ints, names */
	K_ZERO,
	K_RANDOM,	/* incompressible */
	K_NR,
};

struct fix {
	struct ovc_log log;
	struct ovc_zstore *z;
};

static struct fix f;

static void quiet(void *opaque, int level, const char *msg)
{
}

static void setup(void)
{
	memset(&f, 0, sizeof(f));
	f.log.fn = quiet;
	f.log.level = OVC_LOG_DEBUG;
	f.z = ovc__zstore_new(&f.log, NULL);
	cr_assert_not_null(f.z, "ovc__zstore_new: %s", strerror(errno));
}

static void teardown(void)
{
	ovc__zstore_destroy(f.z);
}

TestSuite(zstore, .init = setup, .fini = teardown, .timeout = 60);

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static const char *const words[] = {
	"the", "guest", "page", "memory", "kernel", "static", "return", "int",
	"struct", "while", "for", "if", "else", "void", "const", "unsigned",
	"of", "and", "to", "a", "in", "is", "that", "with", "lorem", "ipsum",
	"dolor", "sit", "amet", "consectetur", "adipiscing", "elit",
};

/* One log-like line: fixed templates, varying numbers and words. */
static int text_line(char *line, size_t size, uint64_t *s)
{
	unsigned int a = (unsigned int)(rnd(s) % 60), b = (unsigned int)(rnd(s) % 1000);
	unsigned int c = (unsigned int)(rnd(s) % 100000);
	const char *w = words[rnd(s) % OVC_ARRAY_SIZE(words)];

	switch (rnd(s) % 5) {
	case 0:
		return snprintf(line, size, "2024-05-01 12:%02u:%03u INFO  worker: request for %s served in %u us\n", a, b, w, c);
	case 1:
		return snprintf(line, size, "2024-05-01 12:%02u:%03u DEBUG cache: %s miss, fetched block %u\n", a, b, w, c);
	case 2:
		return snprintf(line, size, "2024-05-01 12:%02u:%03u WARN  pool: %s slow, queue depth %u\n", a, b, w, c);
	case 3:
		return snprintf(line, size, "\tif (n > %u && k < %u) return %s(%u);\n", a, b, w, c);
	default:
		return snprintf(line, size, "The %02u quick brown foxes (%u) jumped over the %s dog %u times.\n", a, b, w, c);
	}
}

static void fill_page(void *dst, enum kind k, uint64_t seed)
{
	uint8_t *p = dst;
	uint64_t s = seed * 0x9E3779B97F4A7C15ULL + (uint64_t)k + 1;
	unsigned int b, i;

	switch (k) {
	case K_TEXT:
		/* Log lines: fixed templates, varying numbers and words. */
		for (b = 0; b < OVC_PAGE_SIZE;) {
			char line[160];
			int len;

			len = text_line(line, sizeof(line), &s);
			for (i = 0; i < (unsigned int)len && b < OVC_PAGE_SIZE; i++)
				p[b++] = (uint8_t)line[i];
		}
		break;
	case K_RAMP:
		for (b = 0; b < OVC_PAGE_SIZE; b++)
			p[b] = (uint8_t)(seed + b * 7);
		break;
	case K_SPARSE:
		memset(p, 0, OVC_PAGE_SIZE);
		for (i = 0; i < 16; i++) {
			uint64_t v = rnd(&s);

			memcpy(p + (rnd(&s) % (OVC_PAGE_SIZE / 8)) * 8, &v, 8);
		}
		break;
	case K_RECORDS:
		for (b = 0; b < OVC_PAGE_SIZE; b += 64) {
			uint64_t rec[8] = {
				0x00007f3a00000000ULL | (rnd(&s) & 0xfffff0),	/* a heap pointer */
				seed * 64 + b / 64,				/* an id */
				rnd(&s) % 4096,					/* a length */
				0x00007f3a00000000ULL | (rnd(&s) & 0xfffff0),
				rnd(&s) & 3,					/* flags */
				0, 0, 0,
			};
			const char *w = words[rnd(&s) % OVC_ARRAY_SIZE(words)];

			memcpy((char *)&rec[5], w, strlen(w) < 24 ? strlen(w) : 24);
			memcpy(p + b, rec, sizeof(rec));
		}
		break;
	case K_ZERO:
		memset(p, 0, OVC_PAGE_SIZE);
		break;
	case K_RANDOM:
	default:
		for (b = 0; b < OVC_PAGE_SIZE; b += 8) {
			uint64_t v = rnd(&s);

			memcpy(p + b, &v, 8);
		}
		break;
	}
}

/* Distinct owners for a shared tier; the store only compares them. */
static struct ovc_ram *fake_ram(unsigned int i)
{
	static char owners[8];

	return (struct ovc_ram *)(void *)&owners[i];
}

static void stats(struct ovc_zstore *z, struct ovc_zstore_stats *st)
{
	memset(st, 0xff, sizeof(*st));
	ovc__zstore_get_stats(z, st);
}

static void check_load(struct ovc_zstore *z, struct ovc_ram *ram, uint64_t gfn,
		       uint64_t h, enum kind k, uint64_t seed)
{
	uint8_t want[OVC_PAGE_SIZE], got[OVC_PAGE_SIZE];

	fill_page(want, k, seed);
	memset(got, 0xee, sizeof(got));
	cr_assert_eq(ovc__zstore_load(z, ram, gfn, h, got), 0, "load of gfn %llu",
		     (unsigned long long)gfn);
	cr_assert(memcmp(want, got, OVC_PAGE_SIZE) == 0, "contents of gfn %llu (kind %d)",
		  (unsigned long long)gfn, k);
}

/* ------------------------------------------------------------------------ */
/* Round trips */

struct kind_case {
	int kind;
};

ParameterizedTestParameters(zstore, round_trip)
{
	static struct kind_case cases[] = {
		{ K_TEXT }, { K_RAMP }, { K_SPARSE }, { K_RECORDS }, { K_ZERO },
	};

	return cr_make_param_array(struct kind_case, cases, OVC_ARRAY_SIZE(cases));
}

ParameterizedTest(struct kind_case *c, zstore, round_trip)
{
	enum { N = 200 };
	uint8_t page[OVC_PAGE_SIZE];
	uint64_t h[N];
	struct ovc_zstore_stats st;
	unsigned int i;

	for (i = 0; i < N; i++) {
		fill_page(page, c->kind, i);
		cr_assert_eq(ovc__zstore_put(f.z, 1000 + i, page, &h[i]), 0, "put %u", i);
		cr_assert_neq(h[i], 0);
	}
	stats(f.z, &st);
	cr_assert_eq(st.entries, N);
	cr_assert_eq(st.puts, N);
	cr_assert_leq(st.stored_bytes, (uint64_t)N * OVC_ZSTORE_DEFAULT_MAX_CSIZE);
	cr_assert_gt(st.stored_bytes, 0);
	cr_assert_geq(st.bytes_used, st.stored_bytes + N * 56, "metadata is counted");
	cr_log_info("kind %d: ratio %.2f (payload), %.2f (host RAM)", c->kind,
		    (double)N * OVC_PAGE_SIZE / (double)st.stored_bytes,
		    (double)N * OVC_PAGE_SIZE / (double)st.bytes_used);
	for (i = 0; i < N; i++)
		check_load(f.z, NULL, 1000 + i, h[i], c->kind, i);
	for (i = 0; i < N; i++)		/* twice: a load does not consume */
		check_load(f.z, NULL, 1000 + i, h[i], c->kind, i);
	for (i = 0; i < N; i++)
		ovc__zstore_ops.release(f.z, NULL, 1000 + i, h[i]);
	stats(f.z, &st);
	cr_assert_eq(st.entries, 0);
	cr_assert_eq(st.stored_bytes, 0);
	cr_assert_eq(st.loads, 2 * N);
	cr_assert_eq(st.releases, N);
	cr_assert_eq(st.checksum_errors, 0);
}

Test(zstore, zero_page_takes_the_smallest_class)
{
	uint8_t page[OVC_PAGE_SIZE] = { 0 };
	struct ovc_zstore_stats st;
	uint64_t h;

	cr_assert_eq(ovc__zstore_put(f.z, 7, page, &h), 0);
	stats(f.z, &st);
	cr_assert_leq(st.stored_bytes, 64);
	cr_assert_eq(st.chunks, 1);
	check_load(f.z, NULL, 7, h, K_ZERO, 0);
	ovc__zstore_drop(f.z, h);
}

Test(zstore, mixed_kinds_interleaved)
{
	enum { N = 3000 };
	uint8_t page[OVC_PAGE_SIZE];
	static uint64_t h[N];
	struct ovc_zstore_stats st;
	unsigned int i;

	for (i = 0; i < N; i++) {
		fill_page(page, (enum kind)(i % K_ZERO), i);
		cr_assert_eq(ovc__zstore_put(f.z, i, page, &h[i]), 0);
	}
	for (i = 0; i < N; i += 2)	/* holes in every class */
		ovc__zstore_drop(f.z, h[i]);
	for (i = 0; i < N; i += 2) {
		fill_page(page, (enum kind)(i % K_ZERO), i + N);
		cr_assert_eq(ovc__zstore_put(f.z, i, page, &h[i]), 0);
	}
	for (i = 0; i < N; i++)
		check_load(f.z, NULL, i, h[i], (enum kind)(i % K_ZERO), i % 2 ? i : i + N);
	stats(f.z, &st);
	cr_assert_eq(st.entries, N);
	for (i = 0; i < N; i++)
		ovc__zstore_drop(f.z, h[i]);
}

/* ------------------------------------------------------------------------ */
/* Limits */

Test(zstore, incompressible_page_is_e2big)
{
	uint8_t page[OVC_PAGE_SIZE];
	struct ovc_zstore_stats before, st;
	uint64_t h = 12345;

	stats(f.z, &before);
	fill_page(page, K_RANDOM, 1);
	cr_assert_eq(ovc__zstore_put(f.z, 1, page, &h), -E2BIG);
	cr_assert_eq(h, 12345, "no handle on failure");
	stats(f.z, &st);
	cr_assert_eq(st.rejected_e2big, 1);
	cr_assert_eq(st.entries, 0);
	cr_assert_eq(st.puts, 0);
	cr_assert_eq(st.bytes_used, before.bytes_used, "nothing allocated for a rejected page");
}

/* max_csize is exact: a page of c compressed bytes fits max_csize c, not c - 1. */
Test(zstore, max_csize_boundary)
{
	struct ovc_zstore_config cfg = { 0 };
	char page[OVC_PAGE_SIZE], out[LZ4_COMPRESSBOUND(OVC_PAGE_SIZE)];
	struct ovc_zstore *z;
	int c;
	uint64_t h;

	/* Half random, half text: about 2.2 KiB compressed, above the default. */
	fill_page(page, K_RANDOM, 3);
	fill_page(out, K_TEXT, 3);
	memcpy(page + OVC_PAGE_SIZE / 2, out, OVC_PAGE_SIZE / 2);
	c = LZ4_compress_fast(page, out, (int)OVC_PAGE_SIZE, (int)sizeof(out), 1);
	cr_assert_gt(c, (int)OVC_ZSTORE_DEFAULT_MAX_CSIZE);
	cr_assert_eq(ovc__zstore_put(f.z, 1, page, &h), -E2BIG);

	cfg.max_csize = (unsigned int)c - 1;
	z = ovc__zstore_new(&f.log, &cfg);
	cr_assert_not_null(z);
	cr_assert_eq(ovc__zstore_put(z, 1, page, &h), -E2BIG);
	ovc__zstore_destroy(z);

	cfg.max_csize = (unsigned int)c;
	z = ovc__zstore_new(&f.log, &cfg);
	cr_assert_not_null(z);
	cr_assert_eq(ovc__zstore_put(z, 1, page, &h), 0);
	cr_assert_eq(ovc__zstore_load(z, NULL, 1, h, out), 0);
	cr_assert(memcmp(out, page, OVC_PAGE_SIZE) == 0);
	ovc__zstore_drop(z, h);
	ovc__zstore_destroy(z);
}

struct cfg_case {
	uint64_t cap;
	unsigned int max_csize;
	unsigned int accel;
	bool ok;
};

ParameterizedTestParameters(zstore, config_validation)
{
	static struct cfg_case cases[] = {
		{ 0, 0, 0, true },
		{ OVC_ZSTORE_MIN_CAP, 0, 0, true },
		{ OVC_ZSTORE_MIN_CAP - 1, 0, 0, false },
		{ 1, 0, 0, false },
		{ 0, OVC_PAGE_SIZE, 0, true },
		{ 0, OVC_PAGE_SIZE + 1, 0, false },
		{ 0, 1, 0, true },
		{ 0, 0, 65537, true },
		{ 0, 0, 65538, false },
		{ 1ULL << 40, 3000, 8, true },
	};

	return cr_make_param_array(struct cfg_case, cases, OVC_ARRAY_SIZE(cases));
}

ParameterizedTest(struct cfg_case *c, zstore, config_validation)
{
	struct ovc_zstore_config cfg = {
		.cap_bytes = c->cap, .max_csize = c->max_csize, .acceleration = c->accel,
	};
	uint8_t page[OVC_PAGE_SIZE];
	struct ovc_zstore *z;
	enum kind k;
	uint64_t h;
	int ret;

	errno = 0;
	z = ovc__zstore_new(&f.log, &cfg);
	if (!c->ok) {
		cr_assert_null(z);
		cr_assert_eq(errno, EINVAL);
		return;
	}
	cr_assert_not_null(z, "%s", strerror(errno));
	/* At the highest acceleration LZ4 hardly looks for matches: only zeros shrink. */
	k = c->accel > 1000 ? K_ZERO : K_TEXT;
	fill_page(page, k, 9);
	ret = ovc__zstore_put(z, 9, page, &h);
	if (c->max_csize == 1) {
		cr_assert_eq(ret, -E2BIG);
	} else {
		cr_assert_eq(ret, 0);
		check_load(z, NULL, 9, h, k, 9);
		ovc__zstore_drop(z, h);
	}
	ovc__zstore_destroy(z);
}

Test(zstore, bad_arguments)
{
	uint8_t page[OVC_PAGE_SIZE] = { 0 };
	uint64_t h;

	cr_assert_eq(ovc__zstore_put(NULL, 1, page, &h), -EINVAL);
	cr_assert_eq(ovc__zstore_put(f.z, 1, NULL, &h), -EINVAL);
	cr_assert_eq(ovc__zstore_put(f.z, 1, page, NULL), -EINVAL);
	cr_assert_eq(ovc__zstore_load(f.z, NULL, 1, 1, NULL), -EINVAL);
	cr_assert_eq(ovc__zstore_coldest(f.z, NULL, 4), 0);
	ovc__zstore_destroy(NULL);
}

/* Fill a capped tier until it refuses; it never holds more than the cap. */
static unsigned int fill_to_cap(struct ovc_zstore *z, uint64_t cap, uint64_t *h,
				unsigned int max, uint64_t seed0)
{
	uint8_t page[OVC_PAGE_SIZE];
	struct ovc_zstore_stats st;
	unsigned int n = 0;
	int ret;

	for (;;) {
		cr_assert_lt(n, max, "the cap never bit");
		fill_page(page, (enum kind)(n % 4), seed0 + n);
		ret = ovc__zstore_put(z, n, page, &h[n]);
		stats(z, &st);
		cr_assert_leq(st.bytes_used, cap, "bytes_used %llu above the cap",
			      (unsigned long long)st.bytes_used);
		if (ret == -ENOSPC)
			return n;
		cr_assert_eq(ret, 0);
		n++;
	}
}

Test(zstore, cap_is_never_exceeded)
{
	struct ovc_zstore_config cfg = { .cap_bytes = OVC_ZSTORE_MIN_CAP };
	static uint64_t h[4096];
	uint8_t page[OVC_PAGE_SIZE];
	struct ovc_zstore_stats st;
	struct ovc_zstore *z;
	unsigned int n, i;

	z = ovc__zstore_new(&f.log, &cfg);
	cr_assert_not_null(z);
	n = fill_to_cap(z, cfg.cap_bytes, h, 4096, 0);
	cr_assert_gt(n, 100, "a 256 KiB tier holds a fair number of pages (%u)", n);
	stats(z, &st);
	cr_assert_eq(st.rejected_cap, 1);
	cr_assert_eq(st.entries, n);
	cr_log_info("256 KiB cap: %u pages, payload %llu, used %llu", n,
		    (unsigned long long)st.stored_bytes, (unsigned long long)st.bytes_used);
	/* Room comes back with a free slot of the right class. */
	ovc__zstore_drop(z, h[n - 4]);		/* kind (n - 4) % 4 == n % 4 */
	fill_page(page, (enum kind)(n % 4), 0 + n);
	cr_assert_eq(ovc__zstore_put(z, n, page, &h[n - 4]), 0);
	check_load(z, NULL, n, h[n - 4], (enum kind)(n % 4), n);
	for (i = 0; i < n; i++)
		if (i != n - 4)
			check_load(z, NULL, i, h[i], (enum kind)(i % 4), i);
	for (i = 0; i < n; i++)
		ovc__zstore_drop(z, h[i]);
	/* Emptied, the tier fills again to about the same point. */
	i = fill_to_cap(z, cfg.cap_bytes, h, 4096, 100000);
	cr_assert_geq(i + 64, n);
	while (i)
		ovc__zstore_drop(z, h[--i]);
	ovc__zstore_destroy(z);
}

/* The cap holds when several threads fill the tier at once. */
struct capper {
	struct ovc_zstore *z;
	unsigned int id;
	unsigned int stored;
	unsigned int refused;
};

static void *cap_worker(void *arg)
{
	struct capper *c = arg;
	uint8_t page[OVC_PAGE_SIZE];
	unsigned int i;
	uint64_t h;
	int ret;

	for (i = 0; i < 3000; i++) {
		fill_page(page, (enum kind)(i % 4), c->id * 100000 + i);
		ret = ovc__zstore_put(c->z, i, page, &h);
		if (ret == 0)
			c->stored++;
		else if (ret == -ENOSPC)
			c->refused++;
		else
			return (void *)1;
	}
	return NULL;
}

Test(zstore, cap_holds_under_concurrent_puts)
{
	struct ovc_zstore_config cfg = { .cap_bytes = 1 << 20 };
	struct capper c[4];
	pthread_t t[4];
	struct ovc_zstore_stats st;
	struct ovc_zstore *z;
	unsigned int i, stored = 0;
	void *r;

	z = ovc__zstore_new(&f.log, &cfg);
	cr_assert_not_null(z);
	for (i = 0; i < 4; i++) {
		c[i] = (struct capper){ .z = z, .id = i };
		cr_assert_eq(pthread_create(&t[i], NULL, cap_worker, &c[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		cr_assert_eq(pthread_join(t[i], &r), 0);
		cr_assert_null(r);
		stored += c[i].stored;
	}
	stats(z, &st);
	cr_assert_leq(st.bytes_used, cfg.cap_bytes);
	cr_assert_gt(st.rejected_cap, 0);
	cr_assert_eq(st.entries, stored);
	ovc__zstore_destroy(z);		/* frees what is still stored */
}

/* ------------------------------------------------------------------------ */
/* Errors */

Test(zstore, corruption_is_eio_never_zeroes)
{
	uint8_t page[OVC_PAGE_SIZE], got[OVC_PAGE_SIZE];
	struct ovc_zstore_stats st;
	unsigned int offs[] = { 0, 1, 17, 200, 511, 100000 }, i;
	uint64_t h;

	fill_page(page, K_TEXT, 5);
	cr_assert_eq(ovc__zstore_put(f.z, 5, page, &h), 0);
	for (i = 0; i < OVC_ARRAY_SIZE(offs); i++) {
		cr_assert_eq(ovc__zstore_corrupt(f.z, h, offs[i]), 0);
		memset(got, 0, sizeof(got));
		cr_assert_eq(ovc__zstore_load(f.z, NULL, 5, h, got), -EIO,
			     "corruption at %u went unnoticed", offs[i]);
		stats(f.z, &st);
		cr_assert_eq(st.checksum_errors, i + 1);
		/* Flipped back, the page is whole again: the hook was the only change. */
		cr_assert_eq(ovc__zstore_corrupt(f.z, h, offs[i]), 0);
		check_load(f.z, NULL, 5, h, K_TEXT, 5);
	}
	stats(f.z, &st);
	cr_assert_eq(st.loads, OVC_ARRAY_SIZE(offs));
	cr_assert_eq(st.entries, 1, "a corrupt entry stays until released");
	ovc__zstore_ops.release(f.z, NULL, 5, h);
	cr_assert_eq(ovc__zstore_corrupt(f.z, h, 0), -EINVAL);
}

Test(zstore, injected_load_failures)
{
	uint8_t page[OVC_PAGE_SIZE];
	uint64_t h;

	fill_page(page, K_RECORDS, 2);
	cr_assert_eq(ovc__zstore_put(f.z, 2, page, &h), 0);
	ovc__zstore_fail_loads(f.z, 2, -EAGAIN);
	cr_assert_eq(ovc__zstore_load(f.z, NULL, 2, h, page), -EAGAIN);
	cr_assert_eq(ovc__zstore_ops.load(f.z, NULL, 2, h, page), -EAGAIN);
	check_load(f.z, NULL, 2, h, K_RECORDS, 2);
	ovc__zstore_fail_loads(f.z, 5, -EIO);
	cr_assert_eq(ovc__zstore_load(f.z, NULL, 2, h, page), -EIO);
	ovc__zstore_fail_loads(f.z, 0, 0);
	check_load(f.z, NULL, 2, h, K_RECORDS, 2);
	ovc__zstore_drop(f.z, h);
}

Test(zstore, stale_and_foreign_handles_are_refused)
{
	struct ovc_ram *ram_a = fake_ram(0), *ram_b = fake_ram(1);
	uint8_t page[OVC_PAGE_SIZE];
	uint64_t h, h2, h3;

	fill_page(page, K_TEXT, 1);
	cr_assert_eq(ovc__zstore_put_ram(f.z, ram_a, 10, page, &h), 0);
	cr_assert_eq(ovc__zstore_load(f.z, ram_a, 11, h, page), -ESTALE, "another gfn");
	cr_assert_eq(ovc__zstore_load(f.z, ram_b, 10, h, page), -ESTALE, "another RAM");
	cr_assert_eq(ovc__zstore_load(f.z, ram_a, 10, 0, page), -EINVAL);
	cr_assert_eq(ovc__zstore_load(f.z, ram_a, 10, h + 1, page), -ESTALE, "never used");
	cr_assert_eq(ovc__zstore_load(f.z, ram_a, 10, h + (1ULL << 27), page), -EINVAL,
		     "beyond the table");
	cr_assert_eq(ovc__zstore_load(f.z, ram_a, 10, h | (1ULL << 44), page), -EINVAL);
	check_load(f.z, ram_a, 10, h, K_TEXT, 1);

	/* Freed and reused, the index comes back under a new generation. */
	ovc__zstore_ops.release(f.z, ram_a, 10, h);
	cr_assert_eq(ovc__zstore_load(f.z, ram_a, 10, h, page), -ESTALE);
	fill_page(page, K_TEXT, 1);
	cr_assert_eq(ovc__zstore_put_ram(f.z, ram_a, 10, page, &h2), 0);
	cr_assert_neq(h2, h);
	cr_assert_eq(h2 & ((1ULL << 28) - 1), h & ((1ULL << 28) - 1), "index reused LIFO");
	cr_assert_eq(ovc__zstore_load(f.z, ram_a, 10, h, page), -ESTALE);
	check_load(f.z, ram_a, 10, h2, K_TEXT, 1);
	/* A page stored without a RAM loads for any RAM (a tier serving one VM). */
	cr_assert_eq(ovc__zstore_put(f.z, 20, page, &h3), 0);
	check_load(f.z, ram_b, 20, h3, K_TEXT, 1);
	ovc__zstore_drop(f.z, h2);
	ovc__zstore_drop(f.z, h3);
}

Test(zstore, drop_of_a_stale_handle_is_a_bug, .signal = SIGABRT)
{
	uint8_t page[OVC_PAGE_SIZE] = { 1 };
	uint64_t h;

	cr_assert_eq(ovc__zstore_put(f.z, 1, page, &h), 0);
	ovc__zstore_drop(f.z, h);
	ovc__zstore_drop(f.z, h);
}

Test(zstore, release_of_another_page_is_a_bug, .signal = SIGABRT)
{
	uint8_t page[OVC_PAGE_SIZE] = { 1 };
	uint64_t h;

	cr_assert_eq(ovc__zstore_put(f.z, 1, page, &h), 0);
	ovc__zstore_ops.release(f.z, NULL, 2, h);
}

/* ------------------------------------------------------------------------ */
/* Memory */

static unsigned int put_mix(struct ovc_zstore *z, uint64_t *h, unsigned int n,
			    uint64_t seed0)
{
	uint8_t page[OVC_PAGE_SIZE];
	unsigned int i;

	for (i = 0; i < n; i++) {
		fill_page(page, (enum kind)(i % K_ZERO), seed0 + i);
		cr_assert_eq(ovc__zstore_put(z, i, page, &h[i]), 0);
	}
	return n;
}

Test(zstore, drop_and_release_return_memory)
{
	enum { N = 5000 };
	static uint64_t h[N];
	struct ovc_zstore_stats st0, st1, full, st;
	unsigned int i, round;

	stats(f.z, &st0);
	cr_assert_eq(st0.chunks, 0);
	cr_assert_gt(st0.bytes_used, 0, "the tier's own struct is counted");
	for (round = 0; round < 3; round++) {
		put_mix(f.z, h, N, round * N);
		stats(f.z, &full);
		cr_assert_eq(full.entries, N);
		cr_assert_gt(full.bytes_used, full.stored_bytes + (uint64_t)N * 56);
		for (i = 0; i < N; i++) {
			if (i % 2)
				ovc__zstore_drop(f.z, h[i]);
			else
				ovc__zstore_ops.release(f.z, NULL, i, h[i]);
		}
		stats(f.z, &st);
		cr_assert_eq(st.entries, 0);
		cr_assert_eq(st.stored_bytes, 0);
		cr_assert_leq(st.chunks, OVC_ZSTORE_POOL_CHUNKS, "empty chunks go back");
		if (round == 0) {
			st1 = st;
			/* Left: the entry table (5000 entries) and the spare chunks. */
			cr_assert_leq(st.bytes_used - st0.bytes_used,
				      N * 56 + OVC_PAGE_SIZE + 5 * 8 +
				      OVC_ZSTORE_POOL_CHUNKS * (OVC_ZSTORE_CHUNK_BYTES + 64));
		} else {
			cr_assert_eq(st.bytes_used, st1.bytes_used, "round %u: back to the baseline",
				     round);
			cr_assert_eq(st.chunks, st1.chunks);
		}
	}
}

/* host RAM counted = payload + 56 bytes of metadata a page + slab waste, and little more. */
Test(zstore, bytes_used_is_tight)
{
	enum { N = 20000 };
	static uint64_t h[N];
	struct ovc_zstore_stats st;
	uint64_t waste;
	unsigned int i;

	put_mix(f.z, h, N, 0);
	stats(f.z, &st);
	waste = st.bytes_used - st.stored_bytes - (uint64_t)N * 56;
	cr_log_info("%u pages: payload %llu, used %llu, waste %.1f bytes a page, ratio %.2f",
		    N, (unsigned long long)st.stored_bytes, (unsigned long long)st.bytes_used,
		    (double)waste / N, (double)N * OVC_PAGE_SIZE / (double)st.bytes_used);
	/* Under 64 bytes of rounding a page, plus one part-filled chunk per class. */
	cr_assert_lt(waste, (uint64_t)N * 64 + 32 * (OVC_ZSTORE_CHUNK_BYTES + 64) +
			    64 * 1024, "waste %llu", (unsigned long long)waste);
	for (i = 0; i < N; i++)
		ovc__zstore_drop(f.z, h[i]);
}

/* ------------------------------------------------------------------------ */
/* Age order */

Test(zstore, coldest_is_put_order)
{
	struct ovc_ram *ram_a = fake_ram(0);
	struct ovc_zstore_victim v[16];
	uint8_t page[OVC_PAGE_SIZE];
	uint64_t h[12];
	unsigned int i, n;

	cr_assert_eq(ovc__zstore_coldest(f.z, v, 16), 0, "empty");
	for (i = 0; i < 10; i++) {
		fill_page(page, K_TEXT, i);
		cr_assert_eq(ovc__zstore_put_ram(f.z, ram_a, 100 + i, page, &h[i]), 0);
	}
	n = ovc__zstore_coldest(f.z, v, 4);
	cr_assert_eq(n, 4);
	for (i = 0; i < 4; i++) {
		cr_assert_eq(v[i].gfn, 100 + i);
		cr_assert_eq(v[i].handle, h[i]);
		cr_assert_eq(v[i].ram, ram_a);
		cr_assert_gt(v[i].csize, 0);
		if (i)
			cr_assert_geq(v[i].put_ns, v[i - 1].put_ns);
	}
	cr_assert_eq(ovc__zstore_coldest(f.z, v, 4), 4, "listing removes nothing");
	cr_assert_eq(v[0].gfn, 100);

	ovc__zstore_ops.release(f.z, ram_a, 100, h[0]);		/* the oldest came back */
	ovc__zstore_drop(f.z, h[2]);
	fill_page(page, K_TEXT, 10);
	cr_assert_eq(ovc__zstore_put_ram(f.z, ram_a, 110, page, &h[10]), 0);
	n = ovc__zstore_coldest(f.z, v, 16);
	cr_assert_eq(n, 9);
	{
		const uint64_t want[] = { 101, 103, 104, 105, 106, 107, 108, 109, 110 };

		for (i = 0; i < n; i++)
			cr_assert_eq(v[i].gfn, want[i], "victim %u: gfn %llu", i,
				     (unsigned long long)v[i].gfn);
	}
	cr_assert_eq(v[8].handle, h[10]);
	cr_assert_eq(ovc__zstore_coldest(f.z, v, 0), 0);
	ovc__zstore_drop(f.z, h[10]);
	n = ovc__zstore_coldest(f.z, v, 16);
	cr_assert_eq(n, 8);
	for (i = 0; i < n; i++)
		ovc__zstore_ops.release(f.z, ram_a, v[i].gfn, v[i].handle);
	cr_assert_eq(ovc__zstore_coldest(f.z, v, 16), 0);
}

/* Listing the oldest costs O(max): 200k entries, 100k calls of 8 stay fast. */
Test(zstore, coldest_does_not_walk_everything, .timeout = 60)
{
	enum { N = 200000 };
	struct ovc_zstore_victim v[8];
	uint8_t page[OVC_PAGE_SIZE] = { 0 };
	static uint64_t h[N];
	uint64_t t0, ns;
	unsigned int i;

	for (i = 0; i < N; i++) {
		memcpy(page, &i, sizeof(i));
		cr_assert_eq(ovc__zstore_put(f.z, i, page, &h[i]), 0);
	}
	t0 = ovc__now_ns();
	for (i = 0; i < 100000; i++)
		cr_assert_eq(ovc__zstore_coldest(f.z, v, 8), 8);
	ns = ovc__now_ns() - t0;
	cr_log_info("coldest(8) with %u entries: %.0f ns", N, (double)ns / 100000);
	/* A walk of all entries would take ~100 µs a call. */
	cr_assert_lt(ns / 100000, 20000);
	cr_assert_eq(v[7].gfn, 7);
	for (i = 0; i < N; i++)
		ovc__zstore_drop(f.z, h[i]);
}

/* ------------------------------------------------------------------------ */
/* Handles */

Test(zstore, handles_fit_the_page_table_payload)
{
	enum { N = 5000 };
	static uint64_t h[N];
	uint8_t page[OVC_PAGE_SIZE];
	uint64_t prev, hh;
	unsigned int i, j;

	cr_assert_leq((1ULL << OVC_ZSTORE_HANDLE_BITS) - 1, OVC_PTE_PAYLOAD_MAX);
	put_mix(f.z, h, N, 0);
	for (i = 0; i < N; i++) {
		cr_assert_neq(h[i], 0);
		cr_assert_lt(h[i], 1ULL << OVC_ZSTORE_HANDLE_BITS);
		cr_assert_eq(ovc__pte_payload(ovc__pte_make(OVC_PAGE_COMPRESSED, h[i])), h[i]);
		for (j = i > 64 ? i - 64 : 0; j < i; j++)
			cr_assert_neq(h[i], h[j]);
	}
	/* One entry freed and reused 70000 times: its generation wraps, handles stay valid. */
	fill_page(page, K_TEXT, 0);
	prev = h[0];
	ovc__zstore_drop(f.z, h[0]);
	for (i = 0; i < 70000; i++) {
		cr_assert_eq(ovc__zstore_put(f.z, 0, page, &hh), 0);
		cr_assert_neq(hh, prev);
		cr_assert_neq(hh, 0);
		cr_assert_lt(hh, 1ULL << OVC_ZSTORE_HANDLE_BITS);
		prev = hh;
		if (i + 1 < 70000)
			ovc__zstore_drop(f.z, hh);
	}
	check_load(f.z, NULL, 0, hh, K_TEXT, 0);
	ovc__zstore_drop(f.z, hh);
	for (i = 1; i < N; i++)
		ovc__zstore_drop(f.z, h[i]);
}

/* ------------------------------------------------------------------------ */
/* Several VMs */

Test(zstore, several_rams_share_one_tier)
{
	struct ovc_ram *ram[2] = { fake_ram(0), fake_ram(1) };
	struct ovc_zstore_victim v[8];
	uint8_t page[OVC_PAGE_SIZE];
	struct ovc_zstore_stats st;
	uint64_t h[2][100];
	unsigned int i, r;

	for (i = 0; i < 100; i++) {
		for (r = 0; r < 2; r++) {	/* same gfns in both */
			fill_page(page, K_RECORDS, r * 1000 + i);
			cr_assert_eq(ovc__zstore_put_ram(f.z, ram[r], i, page, &h[r][i]), 0);
		}
	}
	cr_assert_eq(ovc__zstore_coldest(f.z, v, 4), 4);
	cr_assert_eq(v[0].ram, ram[0]);
	cr_assert_eq(v[1].ram, ram[1]);
	cr_assert_eq(v[1].gfn, 0);
	cr_assert_eq(ovc__zstore_load(f.z, ram[1], 3, h[0][3], page), -ESTALE);
	cr_assert_eq(ovc__zstore_purge(f.z, ram[0]), 100);
	stats(f.z, &st);
	cr_assert_eq(st.entries, 100);
	cr_assert_eq(ovc__zstore_load(f.z, ram[0], 3, h[0][3], page), -ESTALE);
	for (i = 0; i < 100; i++)
		check_load(f.z, ram[1], i, h[1][i], K_RECORDS, 1000 + i);
	cr_assert_eq(ovc__zstore_purge(f.z, ram[0]), 0);
	cr_assert_eq(ovc__zstore_purge(f.z, ram[1]), 100);
	stats(f.z, &st);
	cr_assert_eq(st.entries, 0);
	cr_assert_eq(st.stored_bytes, 0);
}

/* ------------------------------------------------------------------------ */
/* Threads */

#define WORKERS 4
#define LIVE 128

struct worker {
	struct ovc_zstore *z;
	struct ovc_ram *ram;
	unsigned int id;
	unsigned int ops;
	uint64_t puts, loads, enospc;
	const char *fail;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint8_t page[OVC_PAGE_SIZE], want[OVC_PAGE_SIZE];
	uint64_t h[LIVE] = { 0 }, seed[LIVE], s = w->id + 1, n = 0;
	unsigned int i, slot;
	int ret;

	for (i = 0; i < w->ops; i++) {
		slot = (unsigned int)(rnd(&s) % LIVE);
		if (!h[slot]) {
			seed[slot] = (uint64_t)w->id << 32 | n++;
			fill_page(page, (enum kind)(seed[slot] % K_ZERO), seed[slot]);
			ret = ovc__zstore_put_ram(w->z, w->ram, slot, page, &h[slot]);
			if (ret == -ENOSPC) {
				h[slot] = 0;
				w->enospc++;
				continue;
			}
			if (ret) {
				w->fail = "put";
				return NULL;
			}
			w->puts++;
			continue;
		}
		/* A fault: load, check, then release; sometimes only a pager drop. */
		if (rnd(&s) % 8) {
			if (ovc__zstore_ops.load(w->z, w->ram, slot, h[slot], page)) {
				w->fail = "load";
				return NULL;
			}
			fill_page(want, (enum kind)(seed[slot] % K_ZERO), seed[slot]);
			if (memcmp(page, want, OVC_PAGE_SIZE)) {
				w->fail = "contents";
				return NULL;
			}
			w->loads++;
			ovc__zstore_ops.release(w->z, w->ram, slot, h[slot]);
		} else {
			ovc__zstore_drop(w->z, h[slot]);
		}
		h[slot] = 0;
	}
	for (slot = 0; slot < LIVE; slot++)
		if (h[slot])
			ovc__zstore_ops.release(w->z, w->ram, slot, h[slot]);
	return NULL;
}

struct watcher {
	struct ovc_zstore *z;
	_Atomic bool stop;
	uint64_t cap;
	bool over;
	uint64_t polls;
};

/* The pager's view meanwhile: the oldest entries and the counters. */
static void *watcher_main(void *arg)
{
	struct watcher *w = arg;
	struct ovc_zstore_victim v[16];
	struct ovc_zstore_stats st;

	while (!atomic_load(&w->stop)) {
		ovc__zstore_coldest(w->z, v, 16);
		ovc__zstore_get_stats(w->z, &st);
		if (w->cap && st.bytes_used > w->cap)
			w->over = true;
		w->polls++;
		usleep(10);	/* a pager looks now and then, not in a spin */
	}
	return NULL;
}

static void run_workers(struct ovc_zstore *z, uint64_t cap, unsigned int ops)
{
	struct worker w[WORKERS];
	struct watcher wa = { .z = z, .cap = cap };
	pthread_t t[WORKERS], tw;
	struct ovc_zstore_stats st;
	uint64_t puts = 0, loads = 0, enospc = 0;
	unsigned int i;

	cr_assert_eq(pthread_create(&tw, NULL, watcher_main, &wa), 0);
	for (i = 0; i < WORKERS; i++) {
		/* Two workers per fake RAM: same gfns, different owners. */
		w[i] = (struct worker){ .z = z, .id = i, .ops = ops,
					.ram = fake_ram(i / 2) };
		cr_assert_eq(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (i = 0; i < WORKERS; i++) {
		cr_assert_eq(pthread_join(t[i], NULL), 0);
		cr_assert_null(w[i].fail, "worker %u: %s failed", i, w[i].fail);
		puts += w[i].puts;
		loads += w[i].loads;
		enospc += w[i].enospc;
	}
	atomic_store(&wa.stop, true);
	cr_assert_eq(pthread_join(tw, NULL), 0);
	cr_assert_not(wa.over, "bytes_used went above the cap");
	stats(z, &st);
	cr_log_info("%u threads: %llu puts, %llu loads, %llu refused, %llu watcher polls",
		    WORKERS, (unsigned long long)puts, (unsigned long long)loads,
		    (unsigned long long)enospc, (unsigned long long)wa.polls);
	cr_assert_eq(st.entries, 0);
	cr_assert_eq(st.stored_bytes, 0);
	cr_assert_eq(st.puts, puts);
	cr_assert_eq(st.loads, loads);
	cr_assert_eq(st.releases, puts);
	cr_assert_eq(st.checksum_errors, 0);
	cr_assert_leq(st.chunks, OVC_ZSTORE_POOL_CHUNKS);
	if (cap)
		cr_assert_eq(st.rejected_cap, enospc);
}

Test(zstore, concurrent_put_load_release, .timeout = 120)
{
	run_workers(f.z, 0, 40000);
}

Test(zstore, concurrent_under_a_tight_cap, .timeout = 120)
{
	struct ovc_zstore_config cfg = { .cap_bytes = OVC_ZSTORE_MIN_CAP };
	struct ovc_zstore *z = ovc__zstore_new(&f.log, &cfg);
	struct ovc_zstore_stats st;

	cr_assert_not_null(z);
	run_workers(z, cfg.cap_bytes, 40000);
	stats(z, &st);
	cr_assert_gt(st.rejected_cap, 0, "the workers' live set is above the cap");
	ovc__zstore_destroy(z);
}

/* ------------------------------------------------------------------------ */
/* As the COMPRESSED store of a real VM */

#define VM_GPA 0x100000ULL
#define VM_PAGES 64

static enum kind vm_kind(unsigned int i)
{
	return (enum kind)(i % 4);
}

struct vm_fix {
	struct ovc_host *host;
	struct ovc_vm *vm;
	struct ovc_ram *ram;
	uint8_t *hva;
	uint64_t gfn0;
};

static void vm_up(struct vm_fix *v)
{
	struct ovc_host_config cfg;
	struct ovc_xact x;
	uint64_t h;
	void *hva;
	unsigned int i;

	ovc_host_config_init(&cfg);
	cfg.log_fn = quiet;
	v->host = ovc_host_new(&cfg);
	cr_assert_not_null(v->host, "ovc_host_new: %s", strerror(errno));
	v->vm = ovc_vm_new(v->host, "ztier");
	cr_assert_not_null(v->vm, "ovc_vm_new: %s", strerror(errno));
	cr_assert_eq(ovc_vm_add_ram(v->vm, VM_GPA, VM_PAGES * OVC_PAGE_SIZE, &hva), 0);
	v->hva = hva;
	v->ram = ovc__vm_ram(v->vm);
	v->gfn0 = VM_GPA >> OVC_PAGE_SHIFT;
	cr_assert_eq(ovc__ram_set_store(v->ram, OVC_PAGE_COMPRESSED, &ovc__zstore_ops, f.z), 0);
	for (i = 0; i < VM_PAGES; i++)		/* zero faults, then resident */
		fill_page(v->hva + (size_t)i * OVC_PAGE_SIZE, vm_kind(i), i);

	/* One transition for the whole run, as the pager does it. */
	cr_assert_eq(ovc__xact_begin(&x, v->ram, v->gfn0, VM_PAGES, 0), 0);
	for (i = 0; i < VM_PAGES; i++) {
		cr_assert_eq(ovc__pte_state(ovc__xact_old(&x, i)), OVC_PAGE_RESIDENT);
		cr_assert_eq(ovc__zstore_put_ram(f.z, v->ram, v->gfn0 + i,
						 ovc__xact_hva(&x, i), &h), 0);
		ovc__xact_set(&x, i, OVC_PAGE_COMPRESSED, h, NULL);
	}
	cr_assert_eq(ovc__xact_commit(&x), 0);
}

static unsigned int vm_state(struct vm_fix *v, unsigned int i)
{
	return ovc__pte_state(atomic_load(ovc__ram_pte(v->ram, v->gfn0 + i)));
}

static void vm_down(struct vm_fix *v)
{
	cr_assert_eq(ovc_vm_destroy(v->vm), 0);
	cr_assert_eq(ovc_host_destroy(v->host), 0);
}

Test(zstore, vm_pages_compressed_then_faulted_back)
{
	uint8_t want[OVC_PAGE_SIZE], buf[OVC_PAGE_SIZE];
	struct ovc_zstore_stats st;
	struct ovc_mem_stats ms;
	struct vm_fix v;
	struct ovc_xact x;
	unsigned int i;

	vm_up(&v);
	ovc__ram_get_stats(v.ram, &ms);
	cr_assert_eq(ms.pages[OVC_PAGE_COMPRESSED], VM_PAGES);
	stats(f.z, &st);
	cr_assert_eq(st.entries, VM_PAGES);
	for (i = 0; i < VM_PAGES; i++)
		cr_assert_eq(vm_state(&v, i), OVC_PAGE_COMPRESSED);

	/* The pager's own read of a compressed page, under a transition. */
	cr_assert_eq(ovc__xact_begin(&x, v.ram, v.gfn0 + 5, 1, 0), 0);
	cr_assert_eq(ovc__ram_store_load(v.ram, v.gfn0 + 5, ovc__xact_old(&x, 0), buf), 0);
	fill_page(want, vm_kind(5), 5);
	cr_assert(memcmp(buf, want, OVC_PAGE_SIZE) == 0);
	/* A corrupt copy is refused, the page left as it was. */
	cr_assert_eq(ovc__zstore_corrupt(f.z, ovc__pte_payload(ovc__xact_old(&x, 0)), 40), 0);
	cr_assert_eq(ovc__ram_store_load(v.ram, v.gfn0 + 5, ovc__xact_old(&x, 0), buf), -EIO);
	cr_assert_eq(ovc__zstore_corrupt(f.z, ovc__pte_payload(ovc__xact_old(&x, 0)), 40), 0);
	ovc__xact_abort(&x);

	/* Read through the mapping: each first touch faults and loads. */
	for (i = 0; i < VM_PAGES; i++) {
		fill_page(want, vm_kind(i), i);
		cr_assert(memcmp(v.hva + (size_t)i * OVC_PAGE_SIZE, want, OVC_PAGE_SIZE) == 0,
			  "page %u", i);
		cr_assert_eq(vm_state(&v, i), OVC_PAGE_RESIDENT);
	}
	stats(f.z, &st);
	cr_assert_eq(st.entries, 0, "every copy released after its fault");
	cr_assert_eq(st.stored_bytes, 0);
	cr_assert_eq(st.loads, VM_PAGES + 1);
	cr_assert_eq(st.releases, VM_PAGES);
	cr_assert_eq(st.checksum_errors, 1);
	ovc__ram_get_stats(v.ram, &ms);
	cr_assert_eq(ms.pages[OVC_PAGE_COMPRESSED], 0);
	cr_assert_eq(ms.faults[OVC_FAULT_STORE], VM_PAGES);
	cr_assert_eq(ms.store_errors, 0);
	vm_down(&v);
}

/* Transitions between tiers release the tier's copy (COMPRESSED -> ZERO here). */
Test(zstore, vm_transition_out_of_the_tier_releases)
{
	struct ovc_zstore_stats st;
	struct vm_fix v;
	struct ovc_xact x;
	unsigned int i;

	vm_up(&v);
	cr_assert_eq(ovc__xact_begin(&x, v.ram, v.gfn0, VM_PAGES / 2, 0), 0);
	for (i = 0; i < VM_PAGES / 2; i++)
		ovc__xact_set(&x, i, OVC_PAGE_ZERO, 0, NULL);
	cr_assert_eq(ovc__xact_commit(&x), 0);
	stats(f.z, &st);
	cr_assert_eq(st.entries, VM_PAGES / 2);
	cr_assert_eq(v.hva[0], 0, "a zero page now");
	/* What stays compressed is reclaimed with the VM. */
	cr_assert_eq(ovc__zstore_purge(f.z, v.ram), VM_PAGES / 2);
	stats(f.z, &st);
	cr_assert_eq(st.entries, 0);
	cr_assert_leq(st.chunks, OVC_ZSTORE_POOL_CHUNKS);
	cr_assert_eq(ovc__ram_set_store(v.ram, OVC_PAGE_COMPRESSED, NULL, NULL), -EBUSY,
		     "the page table still says COMPRESSED");
	vm_down(&v);
}

/* The page whose compressed copy is corrupt is poisoned, never zero-filled. */
Test(zstore, vm_corrupt_page_is_poisoned, .signal = SIGBUS)
{
	struct vm_fix v;
	volatile uint8_t c;

	vm_up(&v);
	cr_assert_eq(ovc__zstore_corrupt(f.z, ovc__pte_payload(atomic_load(
					 ovc__ram_pte(v.ram, v.gfn0 + 3))), 64), 0);
	c = v.hva[3 * OVC_PAGE_SIZE];
	(void)c;
	cr_assert_fail("a corrupt page was read");
	vm_down(&v);
}
