// SPDX-License-Identifier: MIT
/* tests/test-balloon.c: the virtio-balloon device end to end, driven by a fake guest driver through ovc's own transport. */
#include <endian.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <ovc/ovc.h>
#include "balloon/balloon-internal.h"
#include "host/host-internal.h"
#include "tests/kit/vring.h"

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)
#define PAGE OVC_PAGE_SIZE

/* Long enough for a loaded sanitizer build, short next to the test timeout. */
#define SETTLE_MS 5000

/* Registers beyond tests/kit/vring.h's. */
#define R_NUM_PAGES 0x100
#define R_ACTUAL 0x104

#define ST_ACK OVC_VIRTIO_STATUS_ACKNOWLEDGE
#define ST_DRIVER OVC_VIRTIO_STATUS_DRIVER
#define ST_FEATURES_OK OVC_VIRTIO_STATUS_FEATURES_OK
#define ST_DRIVER_OK OVC_VIRTIO_STATUS_DRIVER_OK
#define ST_NEEDS_RESET OVC_VIRTIO_STATUS_NEEDS_RESET
#define ST_RUNNING (ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK)

#define F(bit) OVC_VIRTIO_FEATURE(bit)
#define F_VERSION_1 F(OVC_VIRTIO_F_VERSION_1)
#define F_EVENT_IDX F(OVC_VIRTIO_F_RING_EVENT_IDX)
#define F_INDIRECT F(OVC_VIRTIO_F_INDIRECT_DESC)
#define F_TELL F(OVC_BALLOON_F_MUST_TELL_HOST)
#define F_STATS F(OVC_BALLOON_F_STATS_VQ)
#define F_OOM F(OVC_BALLOON_F_DEFLATE_ON_OOM)
#define F_REPORT F(OVC_BALLOON_F_PAGE_REPORTING)
#define TRANSPORT_F (F_VERSION_1 | F_EVENT_IDX | F_INDIRECT)
#define ALL_F (OVC_BALLOON_FEATURES_DEFAULT | TRANSPORT_F)

#define D_NEXT 1
#define D_WRITE 2
#define D_INDIRECT 4

/* Queue indices with every feature negotiated. */
#define Q_INFLATE 0
#define Q_DEFLATE 1
#define Q_STATS 2
#define Q_REPORT 3
#define NQ 4

/*
 * Guest RAM: 64 MiB at gpa 0. Pages below RING_GPA are the ones tests
 * balloon; everything the driver needs (rings, indirect tables, PFN and
 * statistics buffers) lives above it and is never ballooned.
 */
#define RAM_SIZE (64 * MiB)
#define RAM_PAGES (RAM_SIZE / PAGE)
#define RING_GPA (48 * MiB)
#define BALLOON_PAGES (RING_GPA / PAGE)
#define QSIZE 128
#define QUEUE_GPA(q) (RING_GPA + (uint64_t)(q) * 0x40000)
#define DESC_GPA(q) QUEUE_GPA(q)
#define AVAIL_GPA(q) (QUEUE_GPA(q) + 0x1000)
#define USED_GPA(q) (QUEUE_GPA(q) + 0x2000)
#define ITABLE_GPA(q) (QUEUE_GPA(q) + 0x4000)	/* up to 0x3c000: 15360 descriptors */
#define BUF_GPA (RING_GPA + 2 * MiB)		/* PFN lists, up to 8 MiB */
#define STATS_GPA (RING_GPA + 12 * MiB)		/* statistics buffers, 4 KiB apart */

struct log_capture {
	pthread_mutex_t lock;
	unsigned int per_level[8];
};

static struct log_capture logs = { .lock = PTHREAD_MUTEX_INITIALIZER };
static struct ovc_host *host;
static struct ovc_vm *vm;
static struct ovc_balloon *bln;
static uint8_t *ram;
static atomic_uint irqs;

/* The fake driver's side of each queue. */
struct drv_queue {
	uint16_t avail_idx;
};

static struct drv_queue dq[NQ];
static uint64_t negotiated;

/* ------------------------------------------------------------------------ */
/* Fixture */

static void capture_log(void *opaque, int level, const char *msg)
{
	struct log_capture *lc = opaque;

	(void)msg;
	pthread_mutex_lock(&lc->lock);
	if (level >= 0 && level < 8)
		lc->per_level[level]++;
	pthread_mutex_unlock(&lc->lock);
}

static unsigned int log_count(int level)
{
	unsigned int n;

	pthread_mutex_lock(&logs.lock);
	n = logs.per_level[level];
	pthread_mutex_unlock(&logs.lock);
	return n;
}

static void count_irq(void *opaque)
{
	atomic_fetch_add((atomic_uint *)opaque, 1);
}

/* A host ticking every 10 ms and a VM with RAM; the balloon comes per test. */
static void setup(void)
{
	struct ovc_host_config cfg;
	void *hva;

	ovc_host_config_init(&cfg);
	cfg.tick_ms = 10;
	cfg.log_fn = capture_log;
	cfg.log_opaque = &logs;
	cfg.log_level = OVC_LOG_DEBUG;
	host = ovc_host_new(&cfg);
	cr_assert_not_null(host, "ovc_host_new: %s", strerror(errno));
	vm = ovc_vm_new(host, "bvm");
	cr_assert_not_null(vm, "ovc_vm_new: %s", strerror(errno));
	cr_assert_eq(ovc_vm_add_ram(vm, 0, RAM_SIZE, &hva), 0);
	ram = hva;
	atomic_store(&irqs, 0);
	memset(dq, 0, sizeof(dq));
	negotiated = 0;
}

/*
 * Criterion 2.4 ignores assertions failing in .fini (Snaipe/Criterion#211),
 * so each test ends by calling this itself; .fini calls it again to free
 * what a failed test left behind.
 */
static void finish(void)
{
	if (bln) {
		cr_assert_eq(ovc_balloon_remove(bln), 0);
		bln = NULL;
	}
	if (vm) {
		cr_assert_eq(ovc_vm_destroy(vm), 0);
		vm = NULL;
	}
	if (host) {
		cr_assert_eq(ovc_host_destroy(host), 0);
		host = NULL;
	}
}

static void teardown(void)
{
	finish();
}

TestSuite(balloon, .init = setup, .fini = teardown, .timeout = 60);

/* The balloon with @cfg (NULL: defaults) behind ovc's transport. */
static void add_balloon(const struct ovc_balloon_config *cfg)
{
	bln = ovc_vm_add_balloon(vm, cfg);
	cr_assert_not_null(bln, "ovc_vm_add_balloon: %s", strerror(errno));
	cr_assert_eq(ovc_balloon_mmio(bln, count_irq, &irqs), 0);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * Criterion runs each parameterized test in a re-executed child where the
 * binary sits at another address, so a pointer inside a parameter is stale
 * there. The case tables are file-scope; the parameters are indices.
 */
#define CASE_INDICES(table)                                                    \
	do {                                                                   \
		static unsigned int idx[OVC_ARRAY_SIZE(table)];                \
		for (unsigned int i = 0; i < OVC_ARRAY_SIZE(table); i++)       \
			idx[i] = i;                                            \
		return cr_make_param_array(unsigned int, idx, OVC_ARRAY_SIZE(table)); \
	} while (0)

/* ------------------------------------------------------------------------ */
/* Guest memory, seen from the driver */

static uint8_t *G(uint64_t gpa)
{
	cr_assert_lt(gpa, RAM_SIZE, "gpa 0x%llx is not guest RAM", (unsigned long long)gpa);
	return ram + gpa;
}

static void put16(uint64_t gpa, uint16_t v)
{
	vring_put16(G(gpa), v);
}

static void put32(uint64_t gpa, uint32_t v)
{
	vring_put32(G(gpa), v);
}

static uint16_t get16(uint64_t gpa)
{
	return vring_get16(G(gpa));
}

static uint32_t get32(uint64_t gpa)
{
	return vring_get32(G(gpa));
}

static void put_desc_at(uint64_t table, unsigned int i, uint64_t addr, uint32_t len,
			uint16_t flags, uint16_t next)
{
	vring_put_desc(G(table + 16ULL * i), addr, len, flags, next);
}

/* Page contents the tests recognise: a tag at both ends, zeros between. */
static uint64_t tag(uint64_t page)
{
	return 0x62616c6cULL << 32 | page;
}

static void write_page(uint64_t page, uint64_t val)
{
	volatile uint64_t *p = (volatile uint64_t *)(ram + page * PAGE);

	p[0] = val;
	p[PAGE / sizeof(*p) - 1] = ~val;
}

static bool page_holds(uint64_t page, uint64_t val)
{
	volatile uint64_t *p = (volatile uint64_t *)(ram + page * PAGE);

	return p[0] == val && p[PAGE / sizeof(*p) - 1] == ~val && p[1] == 0;
}

static bool page_is_zero(uint64_t page)
{
	volatile uint64_t *p = (volatile uint64_t *)(ram + page * PAGE);
	size_t i;

	for (i = 0; i < PAGE / sizeof(*p); i++) {
		if (p[i])
			return false;
	}
	return true;
}

static int state(uint64_t page)
{
	return ovc_vm_page_state(vm, page * PAGE, NULL);
}

static struct ovc_mem_stats mem_stats(void)
{
	struct ovc_mem_stats st;

	cr_assert_eq(ovc_vm_get_mem_stats(vm, &st), 0);
	return st;
}

static struct ovc_balloon_stats bstats(void)
{
	struct ovc_balloon_stats st;

	cr_assert_eq(ovc_balloon_get_stats(bln, &st), 0);
	return st;
}

static struct ovc_virtio_stats vstats(void)
{
	struct ovc_virtio_stats st;

	cr_assert_eq(ovc_virtio_mmio_get_stats(ovc_balloon_transport(bln), &st), 0);
	return st;
}

/* Every transport counter of guest misbehaviour, summed: 0 on a clean run. */
static uint64_t transport_bad(void)
{
	struct ovc_virtio_stats st = vstats();

	return st.bad_register_access + st.bad_status + st.features_refused +
	       st.bad_queue_config + st.bad_avail_idx + st.bad_desc_index + st.chain_loop +
	       st.chain_too_long + st.desc_out_of_ram + st.desc_straddle + st.bad_chain +
	       st.bad_indirect + st.queue_broken;
}

/* Every balloon counter of guest misbehaviour, summed. */
static uint64_t device_bad(const struct ovc_balloon_stats *st)
{
	return st->bad_pfn + st->dup_pfn + st->bad_deflate + st->misaligned + st->bad_requests;
}

/* ------------------------------------------------------------------------ */
/* The fake driver */

static uint32_t rd(uint64_t off)
{
	uint32_t v = 0xdeadbeef;

	cr_assert_eq(ovc_balloon_mmio_access(bln, off, &v, 4, false), 0);
	return le32toh(v);
}

static void wr(uint64_t off, uint32_t v)
{
	v = htole32(v);
	cr_assert_eq(ovc_balloon_mmio_access(bln, off, &v, 4, true), 0);
}

static uint64_t device_features(void)
{
	uint64_t f;

	wr(R_DEV_FEAT_SEL, 0);
	f = rd(R_DEV_FEAT);
	wr(R_DEV_FEAT_SEL, 1);
	return f | (uint64_t)rd(R_DEV_FEAT) << 32;
}

static unsigned int queues_for(uint64_t f)
{
	return 2 + !!(f & F_STATS) + !!(f & F_REPORT);
}

/* Reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK; true if accepted. */
static bool negotiate(uint64_t f)
{
	wr(R_STATUS, 0);
	wr(R_STATUS, ST_ACK);
	wr(R_STATUS, ST_ACK | ST_DRIVER);
	wr(R_DRV_FEAT_SEL, 0);
	wr(R_DRV_FEAT, (uint32_t)f);
	wr(R_DRV_FEAT_SEL, 1);
	wr(R_DRV_FEAT, (uint32_t)(f >> 32));
	wr(R_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	return (rd(R_STATUS) & ST_FEATURES_OK) != 0;
}

static void queue_setup(unsigned int q)
{
	memset(G(QUEUE_GPA(q)), 0, 0x4000);
	dq[q].avail_idx = 0;
	wr(R_QUEUE_SEL, q);
	cr_assert_geq(rd(R_QUEUE_NUM_MAX), QSIZE);
	wr(R_QUEUE_NUM, QSIZE);
	wr(R_QUEUE_DESC, (uint32_t)DESC_GPA(q));
	wr(R_QUEUE_DESC + 4, 0);
	wr(R_QUEUE_DRIVER, (uint32_t)AVAIL_GPA(q));
	wr(R_QUEUE_DRIVER + 4, 0);
	wr(R_QUEUE_DEVICE, (uint32_t)USED_GPA(q));
	wr(R_QUEUE_DEVICE + 4, 0);
	wr(R_QUEUE_READY, 1);
	cr_assert_eq(rd(R_QUEUE_READY), 1, "queue %u not ready", q);
}

/* The whole handshake, every queue @f gives the device ready. */
static void start(uint64_t f)
{
	unsigned int q;

	cr_assert(negotiate(f), "features 0x%llx refused", (unsigned long long)f);
	for (q = 0; q < queues_for(f); q++)
		queue_setup(q);
	wr(R_STATUS, ST_RUNNING);
	cr_assert_eq(rd(R_STATUS), ST_RUNNING);
	negotiated = f;
	/* Fault the first buffer pages in now, so they do not show in a test's counts. */
	memset(G(BUF_GPA), 0, 64 * KiB);
	memset(G(STATS_GPA), 0, 16 * KiB);
}

static uint16_t used_idx(unsigned int q)
{
	return get16(USED_GPA(q) + 2);
}

static uint32_t used_id(unsigned int q, uint16_t i)
{
	return get32(USED_GPA(q) + 4 + 8 * (i % QSIZE));
}

static uint32_t used_len(unsigned int q, uint16_t i)
{
	return get32(USED_GPA(q) + 4 + 8 * (i % QSIZE) + 4);
}

/* One buffer of a chain: where, how long, and whether the device may write it. */
struct seg {
	uint64_t gpa;
	uint32_t len;
	bool write;
};

/*
 * Make the chain of @segs available on queue @q with head @head: direct
 * descriptors head, head + 1, ... or, with @indirect, one descriptor
 * pointing at a table at ITABLE_GPA(q) + @head * 0x100 (tables of more than
 * 16 entries must use head 0). Under EVENT_IDX the driver asks for an
 * interrupt on every used buffer.
 */
static void post(unsigned int q, uint16_t head, const struct seg *segs, unsigned int n,
		 bool indirect)
{
	uint64_t table = ITABLE_GPA(q) + (uint64_t)head * 0x100;
	unsigned int i;

	for (i = 0; i < n; i++) {
		uint16_t flags = (uint16_t)((i + 1 < n ? D_NEXT : 0) | (segs[i].write ? D_WRITE : 0));

		if (indirect)
			put_desc_at(table, i, segs[i].gpa, segs[i].len, flags, (uint16_t)(i + 1));
		else
			put_desc_at(DESC_GPA(q), head + i, segs[i].gpa, segs[i].len, flags,
				    (uint16_t)(head + i + 1));
	}
	if (indirect)
		put_desc_at(DESC_GPA(q), head, table, 16 * n, D_INDIRECT, 0);
	put16(AVAIL_GPA(q) + 4 + 2 * (dq[q].avail_idx % QSIZE), head);
	dq[q].avail_idx++;
	if (negotiated & F_EVENT_IDX)
		put16(AVAIL_GPA(q) + 4 + 2 * QSIZE, used_idx(q));
	__atomic_thread_fence(__ATOMIC_RELEASE);
	put16(AVAIL_GPA(q) + 2, dq[q].avail_idx);
}

static void kick(unsigned int q)
{
	wr(R_QUEUE_NOTIFY, q);
}

/* Post, kick, and check the device gave the chain back (it works synchronously). */
static void submit(unsigned int q, const struct seg *segs, unsigned int n, bool indirect)
{
	uint16_t before = used_idx(q);

	post(q, 0, segs, n, indirect);
	kick(q);
	cr_assert_eq(used_idx(q), (uint16_t)(before + 1), "queue %u: chain not returned", q);
	cr_assert_eq(used_id(q, before), 0);
	cr_assert_eq(used_len(q, before), 0, "the balloon writes nothing back");
}

static void put_pfns(uint64_t gpa, const uint32_t *pfn, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		put32(gpa + 4ULL * i, pfn[i]);
}

/* One request of @n PFNs in one buffer on queue @q. */
static void pfn_request(unsigned int q, const uint32_t *pfn, unsigned int n)
{
	struct seg s = { .gpa = BUF_GPA, .len = 4 * n };

	put_pfns(BUF_GPA, pfn, n);
	submit(q, &s, 1, false);
}

static void inflate(const uint32_t *pfn, unsigned int n)
{
	pfn_request(Q_INFLATE, pfn, n);
}

static void deflate(const uint32_t *pfn, unsigned int n)
{
	pfn_request(Q_DEFLATE, pfn, n);
}

static void inflate_range(uint32_t first, unsigned int n)
{
	uint32_t *pfn = malloc(n * sizeof(*pfn));
	unsigned int i;

	cr_assert_not_null(pfn);
	for (i = 0; i < n; i++)
		pfn[i] = first + i;
	inflate(pfn, n);
	free(pfn);
}

/* A free page report of [gpa, gpa + len) on queue @q. */
static void report_range(unsigned int q, uint64_t gpa, uint32_t len)
{
	struct seg s = { .gpa = gpa, .len = len };

	submit(q, &s, 1, false);
}

/* Assert @cond, polling until SETTLE_MS: the fault engine and the manager lag a little. */
#define ASSERT_SOON(cond, ...)                                                 \
	do {                                                                   \
		uint64_t deadline_ = now_ms() + SETTLE_MS;                     \
		while (!(cond) && now_ms() < deadline_)                        \
			sleep_ms(1);                                           \
		cr_assert(cond, "" __VA_ARGS__);                               \
	} while (0)

/* ------------------------------------------------------------------------ */
/* Registers, features, configuration space */

Test(balloon, handshake)
{
	struct ovc_balloon_stats st;
	unsigned int q;

	add_balloon(NULL);
	cr_assert_eq(rd(R_MAGIC), 0x74726976);
	cr_assert_eq(rd(R_VERSION), 2);
	cr_assert_eq(rd(R_DEVICE_ID), 5);
	cr_assert_eq(rd(R_VENDOR_ID), ovc_balloon_virtio_ops.vendor_id);
	cr_assert_eq(device_features(), ALL_F, "offered 0x%llx",
		     (unsigned long long)device_features());
	cr_assert_eq(device_features(),
		     F_VERSION_1 | F_TELL | F_STATS | F_OOM | F_REPORT | F_EVENT_IDX | F_INDIRECT);
	for (q = 0; q < NQ; q++) {
		wr(R_QUEUE_SEL, q);
		cr_assert_geq(rd(R_QUEUE_NUM_MAX), QSIZE, "queue %u", q);
		cr_assert_eq(rd(R_QUEUE_READY), 0);
	}
	wr(R_QUEUE_SEL, NQ);
	cr_assert_eq(rd(R_QUEUE_NUM_MAX), 0, "four queues only");
	cr_assert_eq(rd(R_STATUS), 0);
	cr_assert_eq(rd(R_CONFIG_GEN), 0);

	/* Nothing negotiated before DRIVER_OK. */
	cr_assert(negotiate(ALL_F));
	cr_assert_eq(bstats().features, 0);
	for (q = 0; q < NQ; q++)
		queue_setup(q);
	wr(R_STATUS, ST_RUNNING);
	cr_assert_eq(rd(R_STATUS), ST_RUNNING);
	st = bstats();
	cr_assert_eq(st.features, ALL_F);
	cr_assert_eq(st.num_pages, 0);
	cr_assert_eq(st.actual_pages, 0);
	cr_assert_eq(st.target_pages, 0);
	cr_assert_eq(device_bad(&st), 0);
	cr_assert_eq(transport_bad(), 0);
	cr_assert_eq(rd(R_ISR), 0);

	/* A reset forgets the features. */
	wr(R_STATUS, 0);
	cr_assert_eq(bstats().features, 0);
	cr_assert_eq(vstats().resets, 2);
	finish();
}

struct feature_case {
	uint64_t offered;	/* config features */
	uint64_t wanted;	/* what the driver asks for */
	bool ok;
};

static const struct feature_case feature_cases[] = {
	{ 0, F_VERSION_1, true },
	{ 0, F_VERSION_1 | F_STATS, false },
	{ F_STATS, F_VERSION_1 | F_STATS | F_INDIRECT, true },
	{ F_STATS, F_VERSION_1 | F_REPORT, false },
	{ F_TELL | F_OOM, F_VERSION_1 | F_TELL | F_OOM | F_EVENT_IDX, true },
	{ OVC_BALLOON_FEATURES_DEFAULT, ALL_F, true },
	{ OVC_BALLOON_FEATURES_DEFAULT, ALL_F | F(OVC_BALLOON_F_FREE_PAGE_HINT), false },
	{ OVC_BALLOON_FEATURES_DEFAULT, ALL_F | F(OVC_BALLOON_F_PAGE_POISON), false },
	{ OVC_BALLOON_FEATURES_DEFAULT, OVC_BALLOON_FEATURES_DEFAULT, false },	/* no VERSION_1 */
};

ParameterizedTestParameters(balloon, features)
{
	CASE_INDICES(feature_cases);
}

/* The configuration's features are what the device offers, plus the transport's own. */
ParameterizedTest(unsigned int *i, balloon, features)
{
	const struct feature_case *c = &feature_cases[*i];
	struct ovc_balloon_config cfg;

	ovc_balloon_config_init(&cfg);
	cfg.features = c->offered;
	add_balloon(&cfg);
	cr_assert_eq(device_features(), c->offered | TRANSPORT_F);
	cr_assert_eq(negotiate(c->wanted), c->ok, "case %u", *i);
	cr_assert_eq(vstats().features_refused, c->ok ? 0 : 1);
	if (c->ok) {
		start(c->wanted);
		cr_assert_eq(bstats().features, c->wanted);
	}
	finish();
}

Test(balloon, config_space)
{
	struct ovc_balloon_stats st;
	uint64_t v64;
	uint16_t v16;
	uint8_t v8;

	add_balloon(NULL);
	start(ALL_F);
	cr_assert_eq(rd(R_NUM_PAGES), 0);
	cr_assert_eq(rd(R_ACTUAL), 0);

	/* `actual` is the driver's: whole, in halves, bytewise. */
	wr(R_ACTUAL, 0x12345678);
	cr_assert_eq(rd(R_ACTUAL), 0x12345678);
	cr_assert_eq(bstats().actual_pages, 0x12345678);
	v16 = htole16(0xabcd);
	cr_assert_eq(ovc_balloon_mmio_access(bln, R_ACTUAL + 2, &v16, 2, true), 0);
	cr_assert_eq(rd(R_ACTUAL), 0xabcd5678);
	v8 = 0x11;
	cr_assert_eq(ovc_balloon_mmio_access(bln, R_ACTUAL, &v8, 1, true), 0);
	cr_assert_eq(rd(R_ACTUAL), 0xabcd5611);
	cr_assert_eq(ovc_balloon_mmio_access(bln, R_ACTUAL + 3, &v8, 1, false), 0);
	cr_assert_eq(v8, 0xab);
	cr_assert_eq(ovc_balloon_mmio_access(bln, R_NUM_PAGES, &v64, 8, false), 0);
	cr_assert_eq(le64toh(v64), 0xabcd561100000000ULL, "num_pages 0, then actual");
	st = bstats();
	cr_assert_eq(st.actual_pages, 0xabcd5611);
	cr_assert_eq(st.bad_requests, 0);

	/* num_pages is the device's: writes are ignored and counted. */
	wr(R_NUM_PAGES, 1234);
	cr_assert_eq(rd(R_NUM_PAGES), 0);
	v16 = 0xffff;
	cr_assert_eq(ovc_balloon_mmio_access(bln, R_NUM_PAGES + 2, &v16, 2, true), 0);
	v64 = htole64(0x0000000500000007ULL);
	cr_assert_eq(ovc_balloon_mmio_access(bln, R_NUM_PAGES, &v64, 8, true), 0);
	cr_assert_eq(rd(R_NUM_PAGES), 0);
	cr_assert_eq(rd(R_ACTUAL), 0xabcd5611, "an 8-byte write over num_pages is ignored whole");
	st = bstats();
	cr_assert_eq(st.bad_requests, 3);
	cr_assert_eq(st.num_pages, 0);
	cr_assert_eq(st.actual_pages, 0xabcd5611);

	/* Past the 8 bytes of config space: the transport refuses. */
	cr_assert_eq(rd(0x108), 0);
	wr(0x108, 1);
	cr_assert_eq(ovc_balloon_mmio_access(bln, R_ACTUAL, &v64, 8, false), 0);
	cr_assert_eq(v64, 0);
	cr_assert_eq(vstats().bad_register_access, 3);
	cr_assert_eq(bstats().bad_requests, 3);

	/* Caller bugs. */
	cr_assert_eq(ovc_balloon_mmio_access(bln, R_ACTUAL, &v64, 3, false), -EINVAL);
	cr_assert_eq(ovc_balloon_mmio_access(bln, R_ACTUAL, NULL, 4, false), -EINVAL);
	cr_assert_eq(ovc_balloon_mmio_access(NULL, R_ACTUAL, &v64, 4, false), -EINVAL);
	finish();
}

/* ------------------------------------------------------------------------ */
/* Inflate and deflate */

Test(balloon, inflate_deflate)
{
	static const uint32_t pfns[] = { 100, 101, 102, 103, 104, 105, 106, 107,
					 300, 7, 2000, 2001, 2002, 999, 4, 5 };
	const unsigned int n = OVC_ARRAY_SIZE(pfns);
	struct ovc_mem_stats before, after;
	struct ovc_balloon_stats st;
	uint64_t freed;
	unsigned int i;
	uint32_t touched_pfn = pfns[9];

	add_balloon(NULL);
	start(ALL_F);
	for (i = 0; i < n; i++)
		write_page(pfns[i], tag(pfns[i]));
	/* Neighbours that must keep their contents. */
	write_page(99, tag(99));
	write_page(108, tag(108));
	write_page(6, tag(6));
	for (i = 0; i < n; i++)
		cr_assert_eq(state(pfns[i]), OVC_PAGE_RESIDENT);
	before = mem_stats();

	inflate(pfns, n);
	after = mem_stats();
	st = bstats();
	for (i = 0; i < n; i++)
		cr_assert_eq(state(pfns[i]), OVC_PAGE_BALLOONED, "pfn %u", pfns[i]);
	cr_assert_eq(st.inflated, n);
	cr_assert_eq(st.ballooned_pages, n);
	cr_assert_gt(st.inflate_ns, 0);
	cr_assert_eq(st.deflate_ns, 0);
	cr_assert_eq(after.pages[OVC_PAGE_BALLOONED], n);
	cr_assert_eq(after.pages[OVC_PAGE_RESIDENT], before.pages[OVC_PAGE_RESIDENT] - n);
	freed = before.host_bytes - after.host_bytes;
	cr_assert_geq(freed, (n - 1) * PAGE, "only %llu bytes released",
		      (unsigned long long)freed);
	cr_assert_leq(freed, (n + 1) * PAGE, "%llu bytes released", (unsigned long long)freed);
	cr_assert_eq(device_bad(&st), 0);
	cr_assert_eq(transport_bad(), 0);
	cr_assert(page_holds(99, tag(99)));
	cr_assert(page_holds(108, tag(108)));
	cr_assert(page_holds(6, tag(6)));
	/* The used buffer raised the interrupt. */
	cr_assert_geq(atomic_load(&irqs), 1);
	cr_assert(rd(R_ISR) & OVC_VIRTIO_INT_USED);
	wr(R_ISR_ACK, OVC_VIRTIO_INT_USED);
	cr_assert_eq(rd(R_ISR) & OVC_VIRTIO_INT_USED, 0);

	/* The host (or a vCPU) reading a ballooned page gets zeros, counted. */
	cr_assert(page_is_zero(touched_pfn));
	ASSERT_SOON(bstats().touched == 1);
	cr_assert_eq(mem_stats().faults[OVC_FAULT_BALLOONED], 1);
	cr_assert_eq(state(touched_pfn), OVC_PAGE_RESIDENT, "a touched page is the guest's again");
	cr_assert_eq(bstats().ballooned_pages, n - 1);

	/* Deflate: ballooned pages come back as zero pages. */
	deflate(pfns, n);
	st = bstats();
	cr_assert_eq(st.deflated, n - 1);
	cr_assert_gt(st.deflate_ns, 0);
	cr_assert_eq(st.bad_deflate, 1, "the touched page was not ballooned any more");
	cr_assert_eq(st.ballooned_pages, 0);
	for (i = 0; i < n; i++) {
		if (pfns[i] == touched_pfn)
			continue;
		cr_assert_eq(state(pfns[i]), OVC_PAGE_ZERO, "pfn %u", pfns[i]);
		cr_assert(page_is_zero(pfns[i]));
	}
	cr_assert(page_holds(99, tag(99)));
	cr_assert_eq(st.touched, 1, "deflated pages are not balloon touches");
	cr_assert_eq(transport_bad(), 0);
	finish();
}

/* Pages that never held anything (ZERO) balloon too; no memory moves. */
Test(balloon, inflate_zero_pages)
{
	struct ovc_mem_stats before;

	add_balloon(NULL);
	start(ALL_F);
	before = mem_stats();
	inflate_range(1000, 600);	/* more than one transition's worth */
	cr_assert_eq(bstats().inflated, 600);
	cr_assert_eq(mem_stats().pages[OVC_PAGE_BALLOONED], 600);
	cr_assert_eq(mem_stats().host_bytes, before.host_bytes);
	cr_assert_eq(state(999), OVC_PAGE_ZERO);
	cr_assert_eq(state(1000), OVC_PAGE_BALLOONED);
	cr_assert_eq(state(1599), OVC_PAGE_BALLOONED);
	cr_assert_eq(state(1600), OVC_PAGE_ZERO);
	finish();
}

/*
 * A hole punch that fails leaves the pages resident with their contents:
 * the request still goes back (the guest cannot be told), the pages are
 * not counted as inflated, and the error is logged.
 */
Test(balloon, inflate_punch_fails)
{
	struct ovc_balloon_stats st;
	unsigned int errs;
	uint32_t p;

	add_balloon(NULL);
	start(ALL_F);
	for (p = 400; p < 404; p++)
		write_page(p, tag(p));
	errs = log_count(OVC_LOG_ERR);
	atomic_store(&vm->ram->inject_punch_errno, EIO);
	atomic_store(&vm->ram->inject_punch_count, 1);
	inflate_range(400, 4);
	st = bstats();
	cr_assert_eq(st.inflated, 0);
	cr_assert_eq(st.ballooned_pages, 0);
	cr_assert_eq(device_bad(&st), 0);
	cr_assert_geq(log_count(OVC_LOG_ERR), errs + 1);
	for (p = 400; p < 404; p++) {
		cr_assert_eq(state(p), OVC_PAGE_RESIDENT);
		cr_assert(page_holds(p, tag(p)));
	}
	cr_assert_eq(mem_stats().busy_pages, 0);
	/* The next try works. */
	inflate_range(400, 4);
	cr_assert_eq(bstats().inflated, 4);
	cr_assert_eq(state(403), OVC_PAGE_BALLOONED);
	finish();
}

/* VERSION_1 alone: no indirect, no EVENT_IDX, no statistics, no reporting. */
Test(balloon, minimal_driver)
{
	struct ovc_balloon_stats st;
	uint32_t pfn = 42;

	add_balloon(NULL);
	write_page(pfn, tag(pfn));
	start(F_VERSION_1);
	inflate(&pfn, 1);
	cr_assert_eq(state(pfn), OVC_PAGE_BALLOONED);
	deflate(&pfn, 1);
	cr_assert_eq(state(pfn), OVC_PAGE_ZERO);

	/* Queues 2 and 3 have no role: their buffers are refused but returned. */
	queue_setup(2);
	queue_setup(3);
	pfn = 43;
	write_page(pfn, tag(pfn));
	pfn_request(2, &pfn, 1);
	pfn_request(3, &pfn, 1);
	cr_assert(page_holds(pfn, tag(pfn)));
	st = bstats();
	cr_assert_eq(st.bad_requests, 2);
	cr_assert_eq(st.inflated, 1);
	cr_assert_eq(st.deflated, 1);
	cr_assert_eq(transport_bad(), 0);
	finish();
}

/* A notification before DRIVER_OK is served once the driver is ready. */
Test(balloon, early_kick)
{
	uint32_t pfn = 77;
	struct seg s = { .gpa = BUF_GPA, .len = 4 };

	add_balloon(NULL);
	cr_assert(negotiate(ALL_F));
	queue_setup(Q_INFLATE);
	queue_setup(Q_DEFLATE);
	queue_setup(Q_STATS);
	queue_setup(Q_REPORT);
	put_pfns(BUF_GPA, &pfn, 1);
	post(Q_INFLATE, 0, &s, 1, false);
	kick(Q_INFLATE);
	cr_assert_eq(used_idx(Q_INFLATE), 0);
	cr_assert_eq(state(pfn), OVC_PAGE_ZERO);
	wr(R_STATUS, ST_RUNNING);
	cr_assert_eq(used_idx(Q_INFLATE), 1);
	cr_assert_eq(state(pfn), OVC_PAGE_BALLOONED);
	finish();
}

/* ------------------------------------------------------------------------ */
/* Hostile PFN lists */

#define MAX_CASE_PFNS 8

struct pfn_case {
	unsigned int queue;
	unsigned int n;
	uint32_t pfn[MAX_CASE_PFNS];
	uint64_t inflated, deflated, bad_pfn, dup_pfn, bad_deflate;
	/* Pages ballooned before the request. */
	unsigned int npre;
	uint32_t pre[MAX_CASE_PFNS];
};

static const struct pfn_case pfn_cases[] = {
	/* Out of RAM: the page after the last, far beyond, the largest PFN. */
	{ Q_INFLATE, 1, { RAM_PAGES }, .bad_pfn = 1 },
	{ Q_INFLATE, 1, { 0xffffffff }, .bad_pfn = 1 },
	{ Q_INFLATE, 4, { 10, 0xffffffff, 11, 0x80000000 }, .inflated = 2, .bad_pfn = 2 },
	{ Q_DEFLATE, 2, { 0xffffffff, RAM_PAGES + 5 }, .bad_pfn = 2 },
	/* The same PFN twice in one request, and a run repeated. */
	{ Q_INFLATE, 2, { 20, 20 }, .inflated = 1, .dup_pfn = 1 },
	{ Q_INFLATE, 6, { 30, 31, 32, 30, 31, 32 }, .inflated = 3, .dup_pfn = 3 },
	{ Q_INFLATE, 4, { 33, 34, 34, 35 }, .inflated = 3, .dup_pfn = 1 },
	/* Already ballooned. */
	{ Q_INFLATE, 3, { 40, 41, 42 }, .inflated = 2, .dup_pfn = 1, .npre = 1, .pre = { 41 } },
	/* Deflating what is not ballooned. */
	{ Q_DEFLATE, 1, { 50 }, .bad_deflate = 1 },
	{ Q_DEFLATE, 3, { 50, 51, 52 }, .deflated = 1, .bad_deflate = 2, .npre = 1, .pre = { 51 } },
	{ Q_DEFLATE, 2, { 53, 53 }, .deflated = 1, .bad_deflate = 1, .npre = 1, .pre = { 53 } },
	/* Descending and wrapping sequences are not runs. */
	{ Q_INFLATE, 3, { 62, 61, 60 }, .inflated = 3 },
	{ Q_INFLATE, 3, { 0xfffffffe, 0xffffffff, 0 }, .inflated = 1, .bad_pfn = 2 },
	/* A run that leaves RAM halfway. */
	{ Q_INFLATE, 4, { RAM_PAGES - 2, RAM_PAGES - 1, RAM_PAGES, RAM_PAGES + 1 },
	  .bad_pfn = 2, .inflated = 2 },
};

ParameterizedTestParameters(balloon, hostile_pfns)
{
	CASE_INDICES(pfn_cases);
}

/*
 * Each bad PFN is counted where it belongs and changes nothing; the good
 * ones in the same request still apply; the device keeps working.
 */
ParameterizedTest(unsigned int *i, balloon, hostile_pfns)
{
	const struct pfn_case *c = &pfn_cases[*i];
	struct ovc_balloon_stats st;
	struct ovc_mem_stats ms;
	uint64_t expect_ballooned;
	uint32_t good = 3000;
	unsigned int k;

	add_balloon(NULL);
	start(ALL_F);
	/* Content everywhere it could be lost (but never in the ring area). */
	for (k = 0; k < c->n; k++) {
		if (c->pfn[k] < BALLOON_PAGES)
			write_page(c->pfn[k], tag(c->pfn[k]));
	}
	write_page(good, tag(good));
	if (c->npre)
		inflate(c->pre, c->npre);
	st = bstats();
	cr_assert_eq(st.inflated, c->npre);

	pfn_request(c->queue, c->pfn, c->n);
	st = bstats();
	cr_assert_eq(st.inflated - c->npre, c->inflated, "case %u: inflated %llu", *i,
		     (unsigned long long)st.inflated);
	cr_assert_eq(st.deflated, c->deflated, "case %u", *i);
	cr_assert_eq(st.bad_pfn, c->bad_pfn, "case %u", *i);
	cr_assert_eq(st.dup_pfn, c->dup_pfn, "case %u", *i);
	cr_assert_eq(st.bad_deflate, c->bad_deflate, "case %u", *i);
	cr_assert_eq(st.misaligned, 0);
	cr_assert_eq(st.bad_requests, 0);
	expect_ballooned = c->npre + c->inflated - c->deflated;
	ms = mem_stats();
	cr_assert_eq(ms.pages[OVC_PAGE_BALLOONED], expect_ballooned, "case %u", *i);
	cr_assert_eq(ms.faults[OVC_FAULT_BALLOONED], 0);
	for (k = 0; k < c->n; k++) {
		int s;

		if (c->pfn[k] >= RAM_PAGES) {
			cr_assert_eq(ovc_vm_page_state(vm, (uint64_t)c->pfn[k] * PAGE, NULL), -EINVAL);
			continue;
		}
		s = state(c->pfn[k]);
		if (c->queue == Q_INFLATE)
			cr_assert_eq(s, OVC_PAGE_BALLOONED, "case %u pfn %u", *i, c->pfn[k]);
		else if (s != OVC_PAGE_ZERO)	/* deflated, or never ballooned */
			cr_assert(page_holds(c->pfn[k], tag(c->pfn[k])), "case %u pfn %u: %s",
				  *i, c->pfn[k], ovc_page_state_name(s));
	}
	cr_assert_eq(transport_bad(), 0);
	cr_assert(page_holds(good, tag(good)));

	/* Still working. */
	inflate(&good, 1);
	cr_assert_eq(state(good), OVC_PAGE_BALLOONED);
	deflate(&good, 1);
	cr_assert_eq(state(good), OVC_PAGE_ZERO);
	finish();
}

/*
 * The readable buffers of a request are one stream of le32 PFNs: a PFN may
 * straddle two buffers (the driver chooses the framing); a request that
 * ends inside a PFN counts once as misaligned, its whole PFNs still apply.
 */
Test(balloon, misaligned_buffers)
{
	struct seg s[3];
	struct ovc_balloon_stats st;

	add_balloon(NULL);
	start(ALL_F);
	write_page(200, tag(200));
	write_page(201, tag(201));
	put32(BUF_GPA, 200);
	put32(BUF_GPA + 4, 201);

	/* Three bytes: not even one PFN. */
	s[0] = (struct seg){ .gpa = BUF_GPA, .len = 3 };
	submit(Q_INFLATE, s, 1, false);
	st = bstats();
	cr_assert_eq(st.misaligned, 1);
	cr_assert_eq(st.inflated, 0);
	cr_assert(page_holds(200, tag(200)));

	/* A PFN split across two buffers is one PFN. */
	s[0] = (struct seg){ .gpa = BUF_GPA, .len = 2 };
	s[1] = (struct seg){ .gpa = BUF_GPA + 2, .len = 2 };
	submit(Q_INFLATE, s, 2, false);
	st = bstats();
	cr_assert_eq(st.misaligned, 1);
	cr_assert_eq(st.inflated, 1);
	cr_assert_eq(state(200), OVC_PAGE_BALLOONED);

	/* 1 + 3 bytes make PFN 201; two more bytes are cut short. */
	s[0] = (struct seg){ .gpa = BUF_GPA + 4, .len = 1 };
	s[1] = (struct seg){ .gpa = BUF_GPA + 5, .len = 3 };
	s[2] = (struct seg){ .gpa = BUF_GPA, .len = 2 };
	submit(Q_INFLATE, s, 3, true);
	st = bstats();
	cr_assert_eq(st.misaligned, 2);
	cr_assert_eq(st.inflated, 2);
	cr_assert_eq(state(201), OVC_PAGE_BALLOONED);

	/* An empty buffer is harmless. */
	s[0] = (struct seg){ .gpa = BUF_GPA, .len = 0 };
	submit(Q_DEFLATE, s, 1, false);
	st = bstats();
	cr_assert_eq(st.misaligned, 2);
	cr_assert_eq(st.deflated, 0);
	cr_assert_eq(st.bad_requests, 0);
	cr_assert_eq(transport_bad(), 0);

	/* Misaligned on deflate as well: PFN 200 and one stray byte. */
	s[0] = (struct seg){ .gpa = BUF_GPA, .len = 5 };
	submit(Q_DEFLATE, s, 1, false);
	st = bstats();
	cr_assert_eq(st.misaligned, 3);
	cr_assert_eq(st.deflated, 1);
	cr_assert_eq(state(200), OVC_PAGE_ZERO);
	cr_assert_eq(state(201), OVC_PAGE_BALLOONED);
	finish();
}

/* Inflate and deflate buffers are device-readable only. */
Test(balloon, writable_buffers_refused)
{
	struct seg s[2];
	struct ovc_balloon_stats st;
	uint32_t pfn = 300;

	add_balloon(NULL);
	start(ALL_F);
	write_page(pfn, tag(pfn));
	put_pfns(BUF_GPA, &pfn, 1);

	s[0] = (struct seg){ .gpa = BUF_GPA, .len = 4, .write = true };
	submit(Q_INFLATE, s, 1, false);
	s[0] = (struct seg){ .gpa = BUF_GPA, .len = 4 };
	s[1] = (struct seg){ .gpa = BUF_GPA + 0x100, .len = 4, .write = true };
	submit(Q_INFLATE, s, 2, false);
	submit(Q_INFLATE, s, 2, true);
	st = bstats();
	cr_assert_eq(st.bad_requests, 3);
	cr_assert_eq(st.inflated, 0);
	cr_assert(page_holds(pfn, tag(pfn)));
	cr_assert_eq(get32(BUF_GPA), pfn, "the device wrote nothing");

	/* Deflate alike; then a proper request works. */
	inflate(&pfn, 1);
	s[0] = (struct seg){ .gpa = BUF_GPA, .len = 4, .write = true };
	submit(Q_DEFLATE, s, 1, false);
	st = bstats();
	cr_assert_eq(st.bad_requests, 4);
	cr_assert_eq(state(pfn), OVC_PAGE_BALLOONED);
	deflate(&pfn, 1);
	cr_assert_eq(state(pfn), OVC_PAGE_ZERO);
	cr_assert_eq(transport_bad(), 0);
	finish();
}

/* What the device should do with a PFN list, for comparison. */
struct pfn_model {
	uint8_t ballooned[RAM_PAGES];
	uint64_t inflated, deflated, bad_pfn, dup_pfn, bad_deflate;
};

static void model_apply(struct pfn_model *m, const uint32_t *pfn, size_t n, bool inflating)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (pfn[i] >= RAM_PAGES) {
			m->bad_pfn++;
		} else if (inflating) {
			if (m->ballooned[pfn[i]]) {
				m->dup_pfn++;
			} else {
				m->ballooned[pfn[i]] = 1;
				m->inflated++;
			}
		} else if (m->ballooned[pfn[i]]) {
			m->ballooned[pfn[i]] = 0;
			m->deflated++;
		} else {
			m->bad_deflate++;
		}
	}
}

static void model_check(const struct pfn_model *m)
{
	struct ovc_balloon_stats st = bstats();
	uint64_t p, n = 0;

	cr_assert_eq(st.inflated, m->inflated, "inflated %llu, model %llu",
		     (unsigned long long)st.inflated, (unsigned long long)m->inflated);
	cr_assert_eq(st.deflated, m->deflated);
	cr_assert_eq(st.bad_pfn, m->bad_pfn);
	cr_assert_eq(st.dup_pfn, m->dup_pfn);
	cr_assert_eq(st.bad_deflate, m->bad_deflate);
	for (p = 0; p < RAM_PAGES; p++) {
		cr_assert_eq(state(p) == OVC_PAGE_BALLOONED, m->ballooned[p], "pfn %llu",
			     (unsigned long long)p);
		n += m->ballooned[p];
	}
	cr_assert_eq(st.ballooned_pages, n);
}

/*
 * 100k PFNs in one indirect chain of 50 buffers, then 100k in one buffer:
 * a permutation of the balloonable pages with repeats, bad PFNs sprinkled
 * in, runs and scattered pages.
 */
Test(balloon, huge_requests, .timeout = 120)
{
	enum { N = 100000, SEGS = 50 };
	struct pfn_model *m = calloc(1, sizeof(*m));
	uint32_t *pfn = malloc(N * sizeof(*pfn));
	struct seg s[SEGS];
	uint64_t t0;
	unsigned int i;

	cr_assert_not_null(m);
	cr_assert_not_null(pfn);
	add_balloon(NULL);
	start(ALL_F);
	for (i = 0; i < N; i++) {
		if (i % 997 == 0)
			pfn[i] = i % 2 ? 0xffffffff : RAM_PAGES + i;
		else if (i < 12000)
			pfn[i] = i;	/* runs, across transition and batch boundaries */
		else
			pfn[i] = (uint32_t)(((uint64_t)i * 7919) % BALLOON_PAGES);
	}
	put_pfns(BUF_GPA, pfn, N);
	for (i = 0; i < SEGS; i++)
		s[i] = (struct seg){ .gpa = BUF_GPA + (uint64_t)i * (N / SEGS) * 4,
				     .len = (N / SEGS) * 4 };
	t0 = now_ms();
	submit(Q_INFLATE, s, SEGS, true);
	cr_log_info("inflate of %u PFNs: %llu ms", N, (unsigned long long)(now_ms() - t0));
	model_apply(m, pfn, N, true);
	model_check(m);
	cr_assert_gt(m->dup_pfn, 10000);

	/* Deflate in one direct buffer, in another order. */
	for (i = 0; i < N; i++)
		pfn[i] = (uint32_t)(((uint64_t)(N - 1 - i) * 104729) % (BALLOON_PAGES + 64));
	t0 = now_ms();
	pfn_request(Q_DEFLATE, pfn, N);
	cr_log_info("deflate of %u PFNs: %llu ms", N, (unsigned long long)(now_ms() - t0));
	model_apply(m, pfn, N, false);
	model_check(m);
	cr_assert_eq(transport_bad(), 0);
	free(pfn);
	free(m);
	finish();
}

/*
 * More buffers in one chain than the transport takes: the queue breaks, the
 * device needs a reset, nothing happened to the pages, and a reset recovers.
 */
Test(balloon, chain_too_long)
{
	enum { SEGS = OVC_VIRTQ_ELEM_MAX_SEGS + 1 };
	struct seg s[SEGS];
	uint32_t pfn = 500;
	unsigned int i;

	add_balloon(NULL);
	start(ALL_F);
	write_page(pfn, tag(pfn));
	put_pfns(BUF_GPA, &pfn, 1);
	for (i = 0; i < SEGS; i++)
		s[i] = (struct seg){ .gpa = BUF_GPA, .len = 4 };
	post(Q_INFLATE, 0, s, SEGS, true);
	kick(Q_INFLATE);
	cr_assert_eq(used_idx(Q_INFLATE), 0);
	cr_assert_eq(rd(R_STATUS), ST_RUNNING | ST_NEEDS_RESET);
	cr_assert(rd(R_ISR) & OVC_VIRTIO_INT_CONFIG);
	cr_assert_eq(vstats().chain_too_long, 1);
	cr_assert(page_holds(pfn, tag(pfn)));
	cr_assert_eq(bstats().inflated, 0);

	start(ALL_F);
	inflate(&pfn, 1);
	cr_assert_eq(state(pfn), OVC_PAGE_BALLOONED);
	finish();
}

/*
 * A guest may balloon the very pages its rings and PFN list live in: the
 * device reads and writes them afterwards like any guest access (zero
 * pages, counted as touches) and keeps working once the driver starts over.
 */
Test(balloon, guest_balloons_its_rings)
{
	uint32_t pfn[] = { DESC_GPA(Q_INFLATE) / PAGE, AVAIL_GPA(Q_INFLATE) / PAGE,
			   USED_GPA(Q_INFLATE) / PAGE, BUF_GPA / PAGE, 7 };
	struct ovc_balloon_stats st;

	add_balloon(NULL);
	start(ALL_F);
	write_page(7, tag(7));
	/* The used entry lands in a fresh zero page: the request still comes back. */
	inflate(pfn, OVC_ARRAY_SIZE(pfn));
	st = bstats();
	cr_assert_eq(st.inflated, OVC_ARRAY_SIZE(pfn));
	cr_assert_eq(device_bad(&st), 0);
	cr_assert_eq(state(7), OVC_PAGE_BALLOONED);
	ASSERT_SOON(bstats().touched >= 1, "the device's used-ring write is a touch");
	cr_assert_eq(state(USED_GPA(Q_INFLATE) / PAGE), OVC_PAGE_RESIDENT);

	/* The driver sees its rings zeroed; it starts over and all is well. */
	start(ALL_F);
	pfn[0] = 8;
	write_page(8, tag(8));
	inflate(pfn, 1);
	cr_assert_eq(state(8), OVC_PAGE_BALLOONED);
	deflate((const uint32_t[]){ 7, 8 }, 2);
	cr_assert_eq(bstats().deflated, 2);
	finish();
}

/*
 * A VM with two RAM ranges: PFNs, buffers and reports in either; a run of
 * PFNs that leaves the first range stops there. RAM added after the
 * transport is made is not seen by the transport but its PFNs still balloon.
 */
Test(balloon, two_ranges)
{
	const uint64_t hi_gpa = 4ULL << 30, hi_size = 4 * MiB;
	const uint32_t hi = (uint32_t)(hi_gpa / PAGE);
	uint32_t pfn[] = { RAM_PAGES - 1, RAM_PAGES, hi - 1, hi, hi + 1, hi + 1024 };
	struct ovc_balloon_stats st;
	uint8_t *hi_hva;
	void *hva;

	cr_assert_eq(ovc_vm_add_ram(vm, hi_gpa, hi_size, &hva), 0);
	hi_hva = hva;
	add_balloon(NULL);
	start(ALL_F);
	memset(hi_hva + 4 * PAGE, 0x5a, PAGE);

	/* The PFN list itself in the upper range. */
	put_pfns(BUF_GPA, pfn, OVC_ARRAY_SIZE(pfn));
	memcpy(hi_hva + 64 * PAGE, G(BUF_GPA), sizeof(pfn));
	submit(Q_INFLATE, &(struct seg){ .gpa = hi_gpa + 64 * PAGE, .len = sizeof(pfn) }, 1, false);
	st = bstats();
	cr_assert_eq(st.inflated, 3);
	cr_assert_eq(st.bad_pfn, 3);
	cr_assert_eq(ovc_vm_page_state(vm, hi_gpa, NULL), OVC_PAGE_BALLOONED);
	cr_assert_eq(ovc_vm_page_state(vm, hi_gpa + PAGE, NULL), OVC_PAGE_BALLOONED);
	cr_assert_eq(state(RAM_PAGES - 1), OVC_PAGE_BALLOONED);

	/* A report in the upper range. */
	report_range(Q_REPORT, hi_gpa + 4 * PAGE, 2 * PAGE);
	cr_assert_eq(ovc_vm_page_state(vm, hi_gpa + 4 * PAGE, NULL), OVC_PAGE_ZERO);
	cr_assert_eq(bstats().reported_pages, 1);

	/* A buffer across the end of the lower range is out of RAM for the transport. */
	post(Q_DEFLATE, 0, &(struct seg){ .gpa = RAM_SIZE - 4, .len = 8 }, 1, false);
	kick(Q_DEFLATE);
	cr_assert_eq(vstats().desc_out_of_ram, 1);
	cr_assert_eq(bstats().deflated, 0);

	/* RAM added now: its PFNs balloon, though the transport cannot reach it. */
	start(ALL_F);
	cr_assert_eq(ovc_vm_add_ram(vm, 8ULL << 30, 1 * MiB, &hva), 0);
	pfn[0] = (uint32_t)((8ULL << 30) / PAGE);
	inflate(pfn, 1);
	cr_assert_eq(ovc_vm_page_state(vm, 8ULL << 30, NULL), OVC_PAGE_BALLOONED);
	finish();
}

/*
 * A guest's long request must not stall the host. The guest decides how
 * long a request is: one chain may carry OVC_VIRTQ_CHAIN_MAX_BYTES (1 GiB)
 * of PFNs, 256M of them, and a ring 256 chains. The manager runs every
 * VM's ovc__balloon_tick() with the host lock held; when the device kept
 * b->lock for a whole request and the tick waited for it, one VM's request
 * stalled the manager (every VM's tick, every tick hook) and everything
 * else that takes the host lock (ovc_vm_new/destroy, ovc_host_vm_count...)
 * for as long as it ran: this test measured ovc_host_vm_count() blocked
 * 1347 ms behind a 1396 ms request. Now the device takes b->lock one PFN
 * batch at a time and the tick only tries it (config-change interrupts
 * raised by whoever holds the transport on its way out).
 *
 * Here a request of 128 MiB of PFNs (Linux sends at most 256 per buffer)
 * runs on a "vCPU" thread while this thread uses the host and the balloon.
 */
struct vcpu_request {
	struct seg segs[8];
	uint64_t ms;
};

static void *vcpu_request_thread(void *arg)
{
	struct vcpu_request *r = arg;
	uint64_t t0 = now_ms();

	/* Like a vCPU in an MMIO exit; no Criterion assertions off the main thread. */
	post(Q_INFLATE, 0, r->segs, OVC_ARRAY_SIZE(r->segs), true);
	(void)ovc_balloon_mmio_access(bln, R_QUEUE_NOTIFY, &(uint32_t){ htole32(Q_INFLATE) }, 4,
				      true);
	r->ms = now_ms() - t0;
	return NULL;
}

/* How long @call took, in ms. */
#define TIMED(call)                                                            \
	do {                                                                   \
		uint64_t t0_ = now_ms();                                       \
		call;                                                          \
		took = now_ms() - t0_;                                         \
		worst = took > worst ? took : worst;                           \
	} while (0)

Test(balloon, long_request_does_not_stall_host, .timeout = 120)
{
	struct ovc_balloon_stats st;
	struct vcpu_request r;
	uint64_t took = 0, worst = 0, ticks, ticks_during, p;
	pthread_t thr;
	unsigned int i;

	add_balloon(NULL);
	start(ALL_F);
	/* 16 MiB of PFN 5, read eight times over: 32M PFNs. */
	for (p = 0; p < 16 * MiB; p += 4)
		put32(32 * MiB + p, 5);
	for (i = 0; i < OVC_ARRAY_SIZE(r.segs); i++)
		r.segs[i] = (struct seg){ .gpa = 32 * MiB, .len = 16 * MiB };
	cr_assert_eq(pthread_create(&thr, NULL, vcpu_request_thread, &r), 0);
	sleep_ms(50);
	ticks = ovc_host_ticks(host);
	TIMED(cr_assert_eq(ovc_host_vm_count(host), 1));
	TIMED(cr_assert_eq(ovc_balloon_get_stats(bln, &st), 0));
	TIMED(cr_assert_eq(ovc_balloon_set_target(bln, 4 * MiB), 0));
	sleep_ms(200);
	ticks_during = ovc_host_ticks(host) - ticks;
	TIMED(cr_assert_eq(ovc_host_vm_count(host), 1));
	cr_assert_eq(pthread_join(thr, NULL), 0);
	cr_log_info("request: %llu ms; the host's users waited at most %llu ms; %llu ticks in 200 ms",
		    (unsigned long long)r.ms, (unsigned long long)worst,
		    (unsigned long long)ticks_during);
	cr_assert_eq(used_idx(Q_INFLATE), 1);
	cr_assert_eq(bstats().inflated, 1);
	cr_assert_eq(bstats().dup_pfn, 32 * MiB - 1);
	/* The target set meanwhile reached the guest, with its interrupt. */
	ASSERT_SOON(rd(R_NUM_PAGES) == 1024);
	cr_assert(rd(R_ISR) & OVC_VIRTIO_INT_CONFIG);
	if (r.ms < 400)
		cr_skip_test("the request took only %llu ms: inconclusive",
			     (unsigned long long)r.ms);
	cr_assert_lt(worst, 100, "a guest's balloon request held up the host for %llu ms "
		     "(request %llu ms)", (unsigned long long)worst, (unsigned long long)r.ms);
	cr_assert_geq(ticks_during, 5, "the manager ticked %llu times in 200 ms",
		      (unsigned long long)ticks_during);
	finish();
}

/* ------------------------------------------------------------------------ */
/* Free page reporting */

static void report_test(uint64_t features, unsigned int q)
{
	struct ovc_mem_stats before, after;
	struct ovc_balloon_stats st;
	uint64_t p, freed;
	uint32_t bal = 1010;

	add_balloon(NULL);
	start(features);
	for (p = 1000; p < 1040; p++)
		write_page(p, tag(p));
	inflate(&bal, 1);
	before = mem_stats();

	/* Pages 1008-1023 (one ballooned), as a page-aligned range. */
	report_range(q, 1008 * PAGE, 16 * PAGE);
	after = mem_stats();
	st = bstats();
	cr_assert_eq(st.reported_pages, 15);
	cr_assert_eq(st.misaligned, 0);
	for (p = 1008; p < 1024; p++)
		cr_assert_eq(state(p), p == bal ? OVC_PAGE_BALLOONED : OVC_PAGE_ZERO,
			     "pfn %llu", (unsigned long long)p);
	cr_assert_eq(state(1007), OVC_PAGE_RESIDENT);
	cr_assert_eq(state(1024), OVC_PAGE_RESIDENT);
	cr_assert(page_holds(1007, tag(1007)));
	cr_assert(page_holds(1024, tag(1024)));
	freed = before.host_bytes - after.host_bytes;
	cr_assert_geq(freed, 14 * PAGE, "%llu bytes released", (unsigned long long)freed);
	cr_assert_leq(freed, 16 * PAGE, "%llu bytes released", (unsigned long long)freed);
	cr_assert_eq(after.pages[OVC_PAGE_BALLOONED], 1);
	/* Reported pages read back as zeros, not as balloon touches. */
	cr_assert(page_is_zero(1009));
	cr_assert_eq(bstats().touched, 0);

	/* Not page aligned, not whole pages, empty: counted, ignored. */
	report_range(q, 1030 * PAGE + 512, PAGE);
	report_range(q, 1030 * PAGE, PAGE + 4);
	report_range(q, 1030 * PAGE, PAGE / 2);
	report_range(q, 1030 * PAGE, 0);
	st = bstats();
	cr_assert_eq(st.misaligned, 4);
	cr_assert_eq(st.reported_pages, 15);
	for (p = 1025; p < 1040; p++)
		cr_assert(page_holds(p, tag(p)), "pfn %llu", (unsigned long long)p);

	/* Reporting zero pages changes nothing. */
	report_range(q, 2000 * PAGE, 8 * PAGE);
	cr_assert_eq(bstats().reported_pages, 15);
	cr_assert_eq(transport_bad(), 0);

	/*
	 * Linux posts its reports device-writable (virtqueue_add_inbuf); the
	 * specification names no direction, so both are ranges.
	 */
	{
		struct seg s[2] = {
			{ .gpa = 1030 * PAGE, .len = PAGE },
			{ .gpa = 1032 * PAGE, .len = 2 * PAGE, .write = true },
		};

		submit(q, &s[1], 1, false);
		submit(q, s, 2, false);
		st = bstats();
		cr_assert_eq(st.bad_requests, 0);
		cr_assert_eq(st.reported_pages, 18);
		cr_assert_eq(state(1030), OVC_PAGE_ZERO);
		cr_assert_eq(state(1031), OVC_PAGE_RESIDENT);
		cr_assert_eq(state(1032), OVC_PAGE_ZERO);
		cr_assert_eq(state(1033), OVC_PAGE_ZERO);
		cr_assert(page_holds(1031, tag(1031)));
		cr_assert(page_holds(1034, tag(1034)));
	}
}

Test(balloon, report_free_pages)
{
	report_test(ALL_F, Q_REPORT);
	finish();
}

/* Without the statistics queue, reporting is queue 2 and queue 3 has no role. */
Test(balloon, report_without_stats)
{
	uint32_t pfn = 1035;

	report_test(F_VERSION_1 | F_REPORT, 2);
	queue_setup(3);
	write_page(pfn, tag(pfn));
	pfn_request(3, &pfn, 1);
	cr_assert_eq(bstats().bad_requests, 1);
	cr_assert(page_holds(pfn, tag(pfn)));
	finish();
}

/*
 * A reported range that leaves guest RAM never reaches the device: the
 * transport refuses the buffer and breaks the queue (so the balloon's own
 * "outside RAM" check cannot fire through ovc's transport).
 */
Test(balloon, report_outside_ram)
{
	add_balloon(NULL);
	start(ALL_F);
	write_page(BALLOON_PAGES - 1, tag(BALLOON_PAGES - 1));
	post(Q_REPORT, 0, &(struct seg){ .gpa = RAM_SIZE - PAGE, .len = 2 * PAGE }, 1, false);
	kick(Q_REPORT);
	cr_assert_eq(used_idx(Q_REPORT), 0);
	cr_assert_eq(vstats().desc_out_of_ram, 1);
	cr_assert_eq(rd(R_STATUS), ST_RUNNING | ST_NEEDS_RESET);
	cr_assert_eq(bstats().reported_pages, 0);
	cr_assert_eq(state(RAM_PAGES - 1), OVC_PAGE_ZERO);
	start(ALL_F);
	report_range(Q_REPORT, (BALLOON_PAGES - 1) * PAGE, PAGE);
	cr_assert_eq(state(BALLOON_PAGES - 1), OVC_PAGE_ZERO);
	cr_assert_eq(bstats().reported_pages, 1);
	finish();
}

/* ------------------------------------------------------------------------ */
/* Statistics */

#define UNKNOWN_TAG 99

/* A statistics buffer at STATS_GPA + @slot * 4 KiB: each tag in @tags with value base + tag. */
static uint32_t put_stats(unsigned int slot, const uint16_t *tags, unsigned int n, uint64_t base)
{
	uint64_t gpa = STATS_GPA + (uint64_t)slot * 0x1000;
	unsigned int i;

	for (i = 0; i < n; i++) {
		uint16_t t = htole16(tags[i]);
		uint64_t v = htole64(base + tags[i]);

		memcpy(G(gpa + 10 * i), &t, 2);
		memcpy(G(gpa + 10 * i + 2), &v, 8);
	}
	return 10 * n;
}

static unsigned int all_tags(uint16_t *tags)
{
	unsigned int i, n = 0;

	for (i = 0; i < OVC_BALLOON_S_NR; i++) {
		tags[n++] = (uint16_t)i;
		if (i == 7)
			tags[n++] = UNKNOWN_TAG;
	}
	return n;
}

/* Post a statistics buffer with head @slot and kick; the device keeps it. */
static void send_stats(unsigned int slot, const uint16_t *tags, unsigned int n, uint64_t base)
{
	struct seg s = { .gpa = STATS_GPA + (uint64_t)slot * 0x1000 };

	s.len = put_stats(slot, tags, n, base);
	post(Q_STATS, (uint16_t)slot, &s, 1, false);
	kick(Q_STATS);
}

static void check_all_stats(uint64_t base, uint64_t t0, uint64_t t1)
{
	struct ovc_balloon_stats st = bstats();
	unsigned int i;

	cr_assert_eq(st.stats_valid, (1U << OVC_BALLOON_S_NR) - 1, "valid 0x%x", st.stats_valid);
	for (i = 0; i < OVC_BALLOON_S_NR; i++)
		cr_assert_eq(st.stats[i], base + i, "%s", ovc_balloon_stat_name((int)i));
	cr_assert_geq(st.stats_at_ns, t0);
	cr_assert_leq(st.stats_at_ns, t1);
}

/* With no period the device keeps the buffer; a second one returns the first. */
Test(balloon, stats_held)
{
	struct ovc_balloon_config cfg;
	struct ovc_balloon_stats st;
	uint16_t tags[OVC_BALLOON_S_NR + 1];
	unsigned int n = all_tags(tags);
	uint64_t t0, t1, ticks;
	struct seg s;

	ovc_balloon_config_init(&cfg);
	cfg.stats_period_ms = 0;
	add_balloon(&cfg);
	start(ALL_F);
	cr_assert_eq(bstats().stats_at_ns, 0);

	t0 = now_ns();
	send_stats(0, tags, n, 1000);
	t1 = now_ns();
	check_all_stats(1000, t0, t1);
	st = bstats();
	cr_assert_eq(st.stats_updates, 1);
	cr_assert_eq(st.misaligned, 0);
	cr_assert_eq(st.bad_requests, 0);
	/* Held across ticks. */
	ticks = ovc_host_ticks(host);
	ASSERT_SOON(ovc_host_ticks(host) >= ticks + 5);
	cr_assert_eq(used_idx(Q_STATS), 0);

	/* A second buffer (head 1): the first comes back, the values move on. */
	send_stats(1, tags, n, 2000);
	cr_assert_eq(used_idx(Q_STATS), 1);
	cr_assert_eq(used_id(Q_STATS, 0), 0);
	cr_assert_eq(used_len(Q_STATS, 0), 0);
	check_all_stats(2000, t0, now_ns());
	cr_assert_eq(bstats().stats_updates, 2);

	/* A partial buffer updates what it has; the other values stay. */
	send_stats(0, (const uint16_t[]){ OVC_BALLOON_S_MEMFREE }, 1, 5000);
	cr_assert_eq(used_idx(Q_STATS), 2);
	st = bstats();
	cr_assert_eq(st.stats[OVC_BALLOON_S_MEMFREE], 5000 + OVC_BALLOON_S_MEMFREE);
	cr_assert_eq(st.stats[OVC_BALLOON_S_MEMTOT], 2000 + OVC_BALLOON_S_MEMTOT);

	/* A buffer cut inside an entry: the whole entries count, the cut is noted. */
	s = (struct seg){ .gpa = STATS_GPA + 0x1000 };
	s.len = put_stats(1, (const uint16_t[]){ OVC_BALLOON_S_SWAP_IN, OVC_BALLOON_S_SWAP_OUT },
			  2, 7000) - 3;
	post(Q_STATS, 1, &s, 1, false);
	kick(Q_STATS);
	st = bstats();
	cr_assert_eq(st.misaligned, 1);
	cr_assert_eq(st.stats[OVC_BALLOON_S_SWAP_IN], 7000);
	cr_assert_eq(st.stats[OVC_BALLOON_S_SWAP_OUT], 2000 + OVC_BALLOON_S_SWAP_OUT);

	/* A device-writable statistics buffer is refused and returned at once. */
	s = (struct seg){ .gpa = STATS_GPA + 0x2000, .len = 10, .write = true };
	post(Q_STATS, 2, &s, 1, false);
	kick(Q_STATS);
	cr_assert_eq(used_idx(Q_STATS), 4);
	cr_assert_eq(used_id(Q_STATS, 3), 2);
	cr_assert_eq(bstats().bad_requests, 1);
	cr_assert_eq(bstats().stats_updates, 4);
	cr_assert_eq(transport_bad(), 0);
	finish();
}

/* With a period, the device hands the buffer back to ask for fresh numbers. */
Test(balloon, stats_requested)
{
	struct ovc_balloon_config cfg;
	uint16_t tags[OVC_BALLOON_S_NR + 1];
	unsigned int n = all_tags(tags), round;
	uint64_t ticks;

	ovc_balloon_config_init(&cfg);
	cfg.stats_period_ms = 30;
	add_balloon(&cfg);
	start(ALL_F);
	for (round = 0; round < 3; round++) {
		uint64_t t0 = now_ns();

		send_stats(round % 2, tags, n, 100 * round);
		check_all_stats(100 * round, t0, now_ns());
		cr_assert_eq(bstats().stats_updates, round + 1);
		ticks = ovc_host_ticks(host);
		ASSERT_SOON(used_idx(Q_STATS) == round + 1,
			  "round %u: buffer not returned after %llu ticks", round,
			  (unsigned long long)(ovc_host_ticks(host) - ticks));
		cr_assert_eq(used_id(Q_STATS, (uint16_t)round), round % 2);
		cr_assert(rd(R_ISR) & OVC_VIRTIO_INT_USED);
		wr(R_ISR_ACK, OVC_VIRTIO_INT_USED);
	}
	/* Nothing held: nothing more comes back. */
	ticks = ovc_host_ticks(host);
	ASSERT_SOON(ovc_host_ticks(host) >= ticks + 5);
	cr_assert_eq(used_idx(Q_STATS), 3);
	cr_assert_eq(transport_bad(), 0);
	finish();
}

/* A reset drops the held buffer: nothing is pushed into the new rings. */
Test(balloon, stats_reset_drops_held)
{
	struct ovc_balloon_config cfg;
	uint16_t tags[OVC_BALLOON_S_NR + 1];
	unsigned int n = all_tags(tags);
	uint64_t ticks;

	ovc_balloon_config_init(&cfg);
	cfg.stats_period_ms = 20;
	add_balloon(&cfg);
	start(ALL_F);
	/* Hold the manager off while the buffer is sent and the device reset. */
	pthread_mutex_lock(&host->lock);
	send_stats(0, tags, n, 1);
	wr(R_STATUS, 0);
	pthread_mutex_unlock(&host->lock);
	ticks = ovc_host_ticks(host);
	ASSERT_SOON(ovc_host_ticks(host) >= ticks + 5);
	start(ALL_F);
	cr_assert_eq(used_idx(Q_STATS), 0);
	/* Still working after the reset. */
	send_stats(1, tags, n, 50);
	ASSERT_SOON(used_idx(Q_STATS) == 1);
	cr_assert_eq(used_id(Q_STATS, 0), 1);
	cr_assert_eq(bstats().stats[OVC_BALLOON_S_MEMFREE], 50 + OVC_BALLOON_S_MEMFREE);

	/* Removing the balloon with a buffer held is fine too. */
	send_stats(0, tags, n, 60);
	finish();
}

/* ------------------------------------------------------------------------ */
/* The controller */

/*
 * num_pages walks to the target in steps of step_bytes a tick, capped at
 * max_fraction of RAM; each change bumps ConfigGeneration and raises the
 * configuration-change interrupt.
 */
Test(balloon, controller_steps)
{
	const uint32_t step = 256, cap = RAM_PAGES / 2;
	struct ovc_balloon_config cfg;
	struct ovc_balloon_stats st;
	uint32_t last = 0, seen = 0, gen0, np;
	uint64_t ticks0, irq0, deadline;

	ovc_balloon_config_init(&cfg);
	cfg.step_bytes = step * PAGE;
	cfg.max_fraction = 0.5;
	add_balloon(&cfg);
	start(ALL_F);
	gen0 = rd(R_CONFIG_GEN);
	irq0 = atomic_load(&irqs);

	ticks0 = ovc_host_ticks(host);
	cr_assert_eq(ovc_balloon_set_target(bln, RAM_SIZE + 12345), 0);
	st = bstats();
	cr_assert_eq(st.target_pages, cap, "target capped at half of RAM");
	/* The first step goes out at once, with its interrupt. */
	cr_assert_geq(rd(R_NUM_PAGES), step);
	cr_assert_geq(rd(R_CONFIG_GEN), gen0 + 1);
	cr_assert(rd(R_ISR) & OVC_VIRTIO_INT_CONFIG);
	cr_assert_eq(st.settle_ns, 0);
	deadline = now_ms() + SETTLE_MS;
	while (last < cap && now_ms() < deadline) {
		uint64_t ticks = ovc_host_ticks(host);

		np = rd(R_NUM_PAGES);
		cr_assert_geq(np, last, "num_pages went back: %u after %u", np, last);
		cr_assert_leq(np, cap);
		cr_assert_eq(np % step, 0, "num_pages %u is not a whole number of steps", np);
		/*
		 * One step from ovc_balloon_set_target(), one a tick; the tick
		 * counter moves after the balloon's step: allow one more.
		 */
		cr_assert_leq(np, step * (ticks - ticks0 + 2), "%u pages after %llu ticks", np,
			      (unsigned long long)(ticks - ticks0));
		if (np != last)
			seen++;
		last = np;
		sleep_ms(1);
	}
	cr_assert_eq(last, cap);
	cr_assert_geq(seen, 4, "only %u distinct steps seen", seen);
	cr_assert_geq(rd(R_CONFIG_GEN) - gen0, cap / step);
	cr_assert(rd(R_ISR) & OVC_VIRTIO_INT_CONFIG);
	cr_assert_geq(atomic_load(&irqs) - irq0, cap / step);
	wr(R_ISR_ACK, OVC_VIRTIO_INT_CONFIG);
	cr_assert_eq(rd(R_ISR) & OVC_VIRTIO_INT_CONFIG, 0);
	st = bstats();
	cr_assert_eq(st.num_pages, cap);
	/* The guest catches up: how long it took is kept. */
	cr_assert_eq(st.settle_ns, 0);
	wr(R_ACTUAL, cap);
	st = bstats();
	cr_assert_gt(st.settle_ns, 0);
	cr_assert_lt(st.settle_ns, (uint64_t)SETTLE_MS * 1000000);

	/* Down again, rounded to whole pages. */
	cr_assert_eq(ovc_balloon_set_target(bln, 3 * PAGE + PAGE - 1), 0);
	cr_assert_eq(bstats().target_pages, 3);
	ASSERT_SOON(rd(R_NUM_PAGES) == 3);
	cr_assert(rd(R_ISR) & OVC_VIRTIO_INT_CONFIG);
	/* Stays there: no more interrupts. */
	gen0 = rd(R_CONFIG_GEN);
	ticks0 = ovc_host_ticks(host);
	ASSERT_SOON(ovc_host_ticks(host) >= ticks0 + 5);
	cr_assert_eq(rd(R_CONFIG_GEN), gen0);
	cr_assert_eq(rd(R_NUM_PAGES), 3);
	cr_assert_eq(transport_bad(), 0);
	finish();
}

/* Before DRIVER_OK num_pages still moves, bumping ConfigGeneration, with no interrupt. */
Test(balloon, controller_before_driver_ok)
{
	add_balloon(NULL);
	cr_assert_eq(ovc_balloon_set_target(bln, 8 * MiB), 0);
	ASSERT_SOON(bstats().num_pages == 8 * MiB / PAGE);
	cr_assert_eq(rd(R_NUM_PAGES), 8 * MiB / PAGE);
	cr_assert_geq(rd(R_CONFIG_GEN), 1);
	cr_assert_eq(rd(R_ISR), 0);
	cr_assert_eq(atomic_load(&irqs), 0);
	start(ALL_F);
	cr_assert_eq(rd(R_NUM_PAGES), 8 * MiB / PAGE, "a reset keeps num_pages");
	finish();
}

struct cap_case {
	double fraction;
	uint64_t target;
	uint64_t expect_pages;
};

static const struct cap_case cap_cases[] = {
	{ 0.0, RAM_SIZE, 0 },
	{ 0.65, RAM_SIZE, (uint64_t)(RAM_PAGES * 0.65) },
	{ 0.65, 1 * MiB, 256 },
	{ 1.0, RAM_SIZE, RAM_PAGES },
	{ 1.0, UINT64_MAX, RAM_PAGES },
	{ 0.25, PAGE - 1, 0 },
};

ParameterizedTestParameters(balloon, target_cap)
{
	CASE_INDICES(cap_cases);
}

ParameterizedTest(unsigned int *i, balloon, target_cap)
{
	const struct cap_case *c = &cap_cases[*i];
	struct ovc_balloon_config cfg;

	ovc_balloon_config_init(&cfg);
	cfg.max_fraction = c->fraction;
	add_balloon(&cfg);
	cr_assert_eq(ovc_balloon_set_target(bln, c->target), 0);
	cr_assert_eq(bstats().target_pages, c->expect_pages, "case %u: %llu", *i,
		     (unsigned long long)bstats().target_pages);
	ASSERT_SOON(bstats().num_pages == c->expect_pages);
	finish();
}

/* A driver that never follows num_pages is marked stalled; moving clears it. */
Test(balloon, stall_detection)
{
	struct ovc_balloon_config cfg;
	struct ovc_balloon_stats st;
	unsigned int warns;
	uint64_t ticks;

	ovc_balloon_config_init(&cfg);
	cfg.stall_ms = 50;
	add_balloon(&cfg);
	start(ALL_F);
	/* At its target (0 = 0): never stalled. */
	ticks = ovc_host_ticks(host);
	ASSERT_SOON(ovc_host_ticks(host) >= ticks + 10);
	cr_assert_eq(bstats().stalls, 0);

	warns = log_count(OVC_LOG_WARN);
	cr_assert_eq(ovc_balloon_set_target(bln, 4 * MiB), 0);
	ASSERT_SOON(bstats().stalled);
	st = bstats();
	cr_assert_eq(st.stalls, 1);
	cr_assert_eq(st.num_pages, 1024);
	cr_assert_eq(log_count(OVC_LOG_WARN), warns + 1);
	/* Stalled once, counted once. */
	ticks = ovc_host_ticks(host);
	ASSERT_SOON(ovc_host_ticks(host) >= ticks + 10);
	cr_assert_eq(bstats().stalls, 1);

	/* Progress clears it... */
	wr(R_ACTUAL, 512);
	ASSERT_SOON(!bstats().stalled);
	cr_assert_eq(bstats().stalls, 1);
	/* ...until the guest sits still again. */
	ASSERT_SOON(bstats().stalled);
	cr_assert_eq(bstats().stalls, 2);
	/* At num_pages: not stalled, and it stays so. */
	wr(R_ACTUAL, 1024);
	ASSERT_SOON(!bstats().stalled);
	ticks = ovc_host_ticks(host);
	ASSERT_SOON(ovc_host_ticks(host) >= ticks + 15);
	st = bstats();
	cr_assert_not(st.stalled);
	cr_assert_eq(st.stalls, 2);
	cr_assert_eq(st.actual_pages, 1024);
	finish();
}

/* ------------------------------------------------------------------------ */
/* Lifetime and arguments */

Test(balloon, lifetime)
{
	struct ovc_balloon *other;
	uint32_t pfn = 9;

	add_balloon(NULL);
	start(ALL_F);
	write_page(pfn, tag(pfn));
	inflate(&pfn, 1);

	cr_assert_eq(ovc_vm_destroy(vm), -EBUSY);
	errno = 0;
	other = ovc_vm_add_balloon(vm, NULL);
	cr_assert_null(other);
	cr_assert_eq(errno, EEXIST);
	/* The refused second balloon did not disturb the first. */
	pfn = 10;
	inflate(&pfn, 1);
	cr_assert_eq(bstats().inflated, 2);

	cr_assert_eq(ovc_balloon_remove(bln), 0);
	bln = NULL;
	/* Ballooned pages stay ballooned; touching one is still counted. */
	cr_assert_eq(state(9), OVC_PAGE_BALLOONED);
	cr_assert(page_is_zero(10));
	ASSERT_SOON(mem_stats().faults[OVC_FAULT_BALLOONED] == 1);

	/* A new balloon can come; it starts from scratch. */
	add_balloon(NULL);
	cr_assert_eq(bstats().inflated, 0);
	cr_assert_eq(bstats().ballooned_pages, 1);
	cr_assert_eq(ovc_vm_destroy(vm), -EBUSY);
	cr_assert_eq(ovc_balloon_remove(bln), 0);
	bln = NULL;
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	vm = NULL;
	finish();
}

struct bad_config_case {
	double max_fraction;
	uint64_t features;
	bool was_bug;	/* accepted once: show what it did */
};

static const struct bad_config_case bad_config_cases[] = {
	{ 2.0, OVC_BALLOON_FEATURES_DEFAULT },
	{ 1.0000001, OVC_BALLOON_FEATURES_DEFAULT },
	{ -0.5, OVC_BALLOON_FEATURES_DEFAULT },
	{ INFINITY, OVC_BALLOON_FEATURES_DEFAULT },
	{ 0.5, F(OVC_BALLOON_F_FREE_PAGE_HINT) },
	{ 0.5, F(OVC_BALLOON_F_PAGE_POISON) | F_STATS },
	{ 0.5, F_VERSION_1 },
	{ 0.5, F_INDIRECT },
	{ 0.5, F(40) },
	{ 0.5, 1ULL << 63 },
	/*
	 * NaN passed a `< 0 || > 1` range check, and ovc_balloon_set_target()
	 * then converted RAM pages * NaN to uint64_t (undefined; on x86-64
	 * 2^63): no cap, a target of 4294967295 pages on a 16384-page VM.
	 */
	{ NAN, OVC_BALLOON_FEATURES_DEFAULT, true },
};

ParameterizedTestParameters(balloon, bad_config)
{
	CASE_INDICES(bad_config_cases);
}

ParameterizedTest(unsigned int *i, balloon, bad_config)
{
	const struct bad_config_case *c = &bad_config_cases[*i];
	struct ovc_balloon_config cfg;
	struct ovc_balloon *b;

	ovc_balloon_config_init(&cfg);
	cfg.max_fraction = c->max_fraction;
	cfg.features = c->features;
	errno = 0;
	b = ovc_vm_add_balloon(vm, &cfg);
	if (b && c->was_bug) {
		/* Show what the accepted configuration does before failing. */
		bln = b;
		cr_assert_eq(ovc_balloon_set_target(bln, UINT64_MAX), 0);
		cr_log_error("max_fraction NaN accepted: target %llu pages of %llu",
			     (unsigned long long)bstats().target_pages,
			     (unsigned long long)RAM_PAGES);
	}
	cr_assert_null(b, "case %u (max_fraction %g, features 0x%llx) accepted%s", *i,
		       c->max_fraction, (unsigned long long)c->features,
		       c->was_bug ? " [regression: NaN max_fraction]" : "");
	cr_assert_eq(errno, EINVAL);
	/* Nothing was attached: the VM has no balloon. */
	cr_assert_eq(ovc_vm_destroy(vm), 0);
	vm = NULL;
	finish();
}

/* The limits themselves are fine, and so is offering nothing. */
Test(balloon, edge_configs)
{
	static const double fractions[] = { 0.0, 1.0 };
	struct ovc_balloon_config cfg;
	unsigned int i;

	for (i = 0; i < OVC_ARRAY_SIZE(fractions); i++) {
		ovc_balloon_config_init(&cfg);
		cfg.max_fraction = fractions[i];
		cfg.features = 0;
		cfg.step_bytes = 0;	/* a page a tick */
		cfg.stall_ms = 0;
		cfg.stats_period_ms = 0;
		add_balloon(&cfg);
		cr_assert_eq(device_features(), TRANSPORT_F);
		start(F_VERSION_1);
		cr_assert_eq(ovc_balloon_set_target(bln, 3 * PAGE), 0);
		if (fractions[i] > 0)
			ASSERT_SOON(rd(R_NUM_PAGES) == 3);
		cr_assert_eq(ovc_balloon_remove(bln), 0);
		bln = NULL;
	}
	finish();
}

Test(balloon, defaults_and_arguments)
{
	struct ovc_balloon_config cfg;
	struct ovc_balloon_stats st;
	uint32_t v;

	memset(&cfg, 0xa5, sizeof(cfg));
	ovc_balloon_config_init(&cfg);
	cr_assert_eq(cfg.features, OVC_BALLOON_FEATURES_DEFAULT);
	cr_assert_float_eq(cfg.max_fraction, 0.65, 1e-9);
	cr_assert_eq(cfg.step_bytes, 64 * MiB);
	cr_assert_eq(cfg.stall_ms, 10000);
	cr_assert_eq(cfg.stats_period_ms, 1000);
	cr_assert_null(cfg.notify);
	cr_assert_null(cfg.notify_opaque);
	ovc_balloon_config_init(NULL);

	cr_assert_str_eq(ovc_balloon_stat_name(OVC_BALLOON_S_SWAP_IN), "swap-in");
	cr_assert_str_eq(ovc_balloon_stat_name(OVC_BALLOON_S_DIRECT_RECLAIM), "direct-reclaims");
	cr_assert_str_eq(ovc_balloon_stat_name(OVC_BALLOON_S_NR), "unknown");
	cr_assert_str_eq(ovc_balloon_stat_name(-1), "unknown");
	cr_assert_str_eq(ovc_balloon_stat_name(UNKNOWN_TAG), "unknown");

	errno = 0;
	cr_assert_null(ovc_vm_add_balloon(NULL, NULL));
	cr_assert_eq(errno, EINVAL);
	cr_assert_eq(ovc_balloon_remove(NULL), -EINVAL);
	cr_assert_eq(ovc_balloon_set_target(NULL, 0), -EINVAL);
	cr_assert_eq(ovc_balloon_get_stats(NULL, &st), -EINVAL);
	cr_assert_null(ovc_balloon_transport(NULL));
	cr_assert_eq(ovc_balloon_mmio(NULL, count_irq, &irqs), -EINVAL);
	cr_assert_eq(ovc_balloon_mmio_access(NULL, 0, &v, 4, false), -EINVAL);

	bln = ovc_vm_add_balloon(vm, NULL);
	cr_assert_not_null(bln);
	cr_assert_eq(ovc_balloon_get_stats(bln, NULL), -EINVAL);
	/* No transport yet. */
	cr_assert_null(ovc_balloon_transport(bln));
	cr_assert_eq(ovc_balloon_mmio_access(bln, 0, &v, 4, false), -EINVAL);
	cr_assert_eq(ovc_balloon_mmio(bln, NULL, NULL), -EINVAL);
	cr_assert_eq(ovc_balloon_mmio(bln, count_irq, &irqs), 0);
	cr_assert_eq(ovc_balloon_mmio(bln, count_irq, &irqs), -EEXIST);
	cr_assert_not_null(ovc_balloon_transport(bln));
	cr_assert_eq(rd(R_DEVICE_ID), 5);
	finish();
}

/* A VM with no RAM cannot have a transport. */
Test(balloon, mmio_without_ram)
{
	struct ovc_vm *empty = ovc_vm_new(host, "empty");
	struct ovc_balloon *b;

	cr_assert_not_null(empty);
	b = ovc_vm_add_balloon(empty, NULL);
	cr_assert_not_null(b);
	cr_assert_eq(ovc_balloon_mmio(b, count_irq, &irqs), -EINVAL);
	cr_assert_null(ovc_balloon_transport(b));
	cr_assert_eq(ovc_balloon_remove(b), 0);
	cr_assert_eq(ovc_vm_destroy(empty), 0);
	finish();
}

/* ------------------------------------------------------------------------ */
/* Concurrency smoke */

#define TOUCH_PAGES 4096		/* the host thread's: pages [0, 4096) */
#define CYCLE_FIRST TOUCH_PAGES		/* the balloon's: [4096, 8192) */
#define CYCLE_PAGES 4096

struct toucher {
	atomic_bool stop;
	uint64_t version[TOUCH_PAGES];	/* last value written per page, 0: none */
	uint64_t reads, writes, errors;
	uint64_t first_bad;
};

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Like a vCPU: random reads and writes of its own pages, each checked. */
static void *toucher_thread(void *arg)
{
	struct toucher *t = arg;
	uint64_t seed = 0x9e3779b97f4a7c15ULL;

	while (!atomic_load_explicit(&t->stop, memory_order_relaxed)) {
		uint64_t r = xorshift(&seed), page = r % TOUCH_PAGES;

		if (r >> 32 & 1) {
			uint64_t v = tag(page) ^ (++t->writes << 20);

			write_page(page, v);
			t->version[page] = v;
		} else {
			bool ok = t->version[page] ? page_holds(page, t->version[page]) :
				page_is_zero(page);

			t->reads++;
			if (!ok && !t->errors++)
				t->first_bad = page;
		}
	}
	return NULL;
}

Test(balloon, concurrent_touch, .timeout = 120)
{
	struct toucher *t = calloc(1, sizeof(*t));
	uint32_t *pfn = malloc(CYCLE_PAGES * sizeof(*pfn));
	uint64_t seed = 12345, p, rounds = 0, inflated = 0, t_end;
	struct ovc_balloon_stats st;
	pthread_t thr;

	cr_assert_not_null(t);
	cr_assert_not_null(pfn);
	add_balloon(NULL);
	start(ALL_F);
	cr_assert_eq(pthread_create(&thr, NULL, toucher_thread, t), 0);

	t_end = now_ms() + 1500;
	while (now_ms() < t_end || rounds < 4) {
		uint32_t first = CYCLE_FIRST + (uint32_t)(xorshift(&seed) % (CYCLE_PAGES / 2));
		unsigned int n = 1 + (unsigned int)(xorshift(&seed) % (CYCLE_PAGES / 2)), i;

		/* Give the pages contents, balloon them (scattered and in runs), check, deflate. */
		for (i = 0; i < n; i++)
			write_page(first + i, tag(first + i));
		for (i = 0; i < n; i++)
			pfn[i] = rounds % 2 ? first + i : first + n - 1 - i;
		inflate(pfn, n);
		inflated += n;
		for (i = 0; i < n; i += 97)
			cr_assert_eq(state(first + i), OVC_PAGE_BALLOONED);
		deflate(pfn, n);
		for (i = 0; i < n; i += 89)
			cr_assert(page_is_zero(first + i));
		rounds++;
	}
	atomic_store(&t->stop, true);
	cr_assert_eq(pthread_join(thr, NULL), 0);
	cr_log_info("%llu rounds, %llu pages ballooned; toucher: %llu reads, %llu writes",
		    (unsigned long long)rounds, (unsigned long long)inflated,
		    (unsigned long long)t->reads, (unsigned long long)t->writes);
	cr_assert_eq(t->errors, 0, "%llu bad reads, first at page %llu",
		     (unsigned long long)t->errors, (unsigned long long)t->first_bad);
	cr_assert_gt(t->reads + t->writes, 1000);
	for (p = 0; p < TOUCH_PAGES; p++) {
		if (t->version[p])
			cr_assert(page_holds(p, t->version[p]), "page %llu", (unsigned long long)p);
		cr_assert_neq(state(p), OVC_PAGE_BALLOONED);
	}
	st = bstats();
	cr_assert_eq(st.inflated, inflated);
	cr_assert_eq(st.deflated, inflated);
	cr_assert_eq(device_bad(&st), 0);
	cr_assert_eq(st.ballooned_pages, 0);
	cr_assert_eq(st.touched, 0);
	free(pfn);
	free(t);
	finish();
}

/*
 * A guest racing its own balloon on the same pages (a driver bug): whatever
 * interleaving, a page holds the last word written to it or zeros, never
 * another page's data; nothing is left busy.
 */
struct racer {
	atomic_bool stop;
	uint64_t writes, lost, bad;
};

static void *racer_thread(void *arg)
{
	struct racer *r = arg;
	uint64_t seed = 0xfeedULL;

	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		uint64_t page = CYCLE_FIRST + xorshift(&seed) % 64, v = tag(page) ^ (++r->writes << 24);
		volatile uint64_t *w = (volatile uint64_t *)(ram + page * PAGE);
		uint64_t back;

		w[8] = v;
		back = w[8];
		if (back == 0)
			r->lost++;	/* punched between the write and the read */
		else if (back != v)
			r->bad++;
		if (w[0] || w[PAGE / 8 - 1])
			r->bad++;
	}
	return NULL;
}

Test(balloon, same_page_race, .timeout = 60)
{
	struct racer r = { 0 };
	struct ovc_balloon_stats st;
	uint64_t t_end, rounds = 0;
	pthread_t thr;

	add_balloon(NULL);
	start(ALL_F);
	cr_assert_eq(pthread_create(&thr, NULL, racer_thread, &r), 0);
	t_end = now_ms() + 700;
	while (now_ms() < t_end) {
		inflate_range(CYCLE_FIRST, 64);
		{
			uint32_t pf[64];

			for (unsigned int i = 0; i < 64; i++)
				pf[i] = CYCLE_FIRST + 63 - i;
			deflate(pf, 64);
		}
		rounds++;
	}
	atomic_store(&r.stop, true);
	cr_assert_eq(pthread_join(thr, NULL), 0);
	cr_log_info("%llu rounds; racer: %llu writes, %llu lost to the balloon",
		    (unsigned long long)rounds, (unsigned long long)r.writes,
		    (unsigned long long)r.lost);
	cr_assert_eq(r.bad, 0, "%llu foreign or stray words", (unsigned long long)r.bad);
	cr_assert_eq(mem_stats().busy_pages, 0);
	st = bstats();
	cr_assert_eq(st.bad_requests + st.misaligned + st.bad_pfn, 0);
	/* Each page was ballooned or found touched/already there: all accounted. */
	cr_assert_eq(st.inflated + st.dup_pfn, rounds * 64);
	cr_assert_eq(st.deflated + st.bad_deflate, rounds * 64);
	cr_assert_eq(transport_bad(), 0);
	finish();
}

/*
 * The manager ticks and a VMM reads statistics while the device works: a
 * second thread sets targets, reads stats and polls registers meanwhile.
 */
struct poller {
	struct ovc_balloon *b;
	atomic_bool stop;
	uint64_t loops;
	bool bad;
};

static void *poller_thread(void *arg)
{
	struct poller *p = arg;
	struct ovc_balloon_stats st;
	uint32_t v;

	while (!atomic_load(&p->stop)) {
		if (ovc_balloon_set_target(p->b, (p->loops % 64) * MiB) ||
		    ovc_balloon_get_stats(p->b, &st) ||
		    ovc_balloon_mmio_access(p->b, R_NUM_PAGES, &v, 4, false))
			p->bad = true;
		if (st.ballooned_pages > RAM_PAGES)
			p->bad = true;
		p->loops++;
	}
	return NULL;
}

Test(balloon, concurrent_control, .timeout = 60)
{
	struct poller p = { 0 };
	uint64_t t_end, rounds = 0;
	pthread_t thr;

	add_balloon(NULL);
	start(ALL_F);
	p.b = bln;
	cr_assert_eq(pthread_create(&thr, NULL, poller_thread, &p), 0);
	t_end = now_ms() + 500;
	while (now_ms() < t_end) {
		inflate_range(100, 300);
		wr(R_ACTUAL, rd(R_NUM_PAGES));
		rounds++;
		{
			uint32_t pf[300];

			for (unsigned int i = 0; i < 300; i++)
				pf[i] = 100 + i;
			deflate(pf, 300);
		}
	}
	atomic_store(&p.stop, true);
	cr_assert_eq(pthread_join(thr, NULL), 0);
	cr_assert_not(p.bad);
	cr_assert_gt(p.loops, 10);
	cr_assert_eq(bstats().inflated, rounds * 300);
	cr_assert_eq(bstats().deflated, rounds * 300);
	cr_assert_eq(transport_bad(), 0);
	finish();
}
