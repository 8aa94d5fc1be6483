// SPDX-License-Identifier: MIT
/* tests/test-virtio.c: the virtio-mmio transport and split virtqueues against a fake guest. */
#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <ovc/ovc.h>
#include "balloon/balloon-internal.h"
#include "tests/kit/vring.h"

#define KiB (1ULL << 10)
#define MiB (1ULL << 20)

/* Registers beyond tests/kit/vring.h's. */
#define R_SHM_SEL 0x0ac
#define R_SHM_LEN_LOW 0x0b0
#define R_CONFIG 0x100

#define ST_ACK OVC_VIRTIO_STATUS_ACKNOWLEDGE
#define ST_DRIVER OVC_VIRTIO_STATUS_DRIVER
#define ST_FEATURES_OK OVC_VIRTIO_STATUS_FEATURES_OK
#define ST_DRIVER_OK OVC_VIRTIO_STATUS_DRIVER_OK
#define ST_NEEDS_RESET OVC_VIRTIO_STATUS_NEEDS_RESET
#define ST_FAILED OVC_VIRTIO_STATUS_FAILED
#define ST_RUNNING (ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK)

#define F_VERSION_1 OVC_VIRTIO_FEATURE(OVC_VIRTIO_F_VERSION_1)
#define F_EVENT_IDX OVC_VIRTIO_FEATURE(OVC_VIRTIO_F_RING_EVENT_IDX)
#define F_INDIRECT OVC_VIRTIO_FEATURE(OVC_VIRTIO_F_INDIRECT_DESC)
/* Two device-specific bits of the dummy device. */
#define F_DEV_A (1ULL << 0)
#define F_DEV_B (1ULL << 2)
#define DEV_FEATURES (F_DEV_A | F_DEV_B)

#define D_NEXT 1
#define D_WRITE 2
#define D_INDIRECT 4

/*
 * Fake guest RAM: A and B are adjacent in guest-physical space (but not in
 * the host), C sits alone, D is large and never touched (for the byte limit).
 */
#define A_GPA 0x10000000ULL
#define A_SIZE (1 * MiB)
#define B_GPA (A_GPA + A_SIZE)
#define B_SIZE (64 * KiB)
#define C_GPA 0x40000000ULL
#define C_SIZE (64 * KiB)
#define D_GPA 0x100000000ULL
#define D_SIZE (768 * MiB)
#define HOLE_GPA 0x20000000ULL

/* Queue 0 of the fake driver, and where its buffers go. */
#define QSIZE 8
#define QMAX 16
#define DESC_GPA (A_GPA + 0x0000)
#define AVAIL_GPA (A_GPA + 0x1000)
#define USED_GPA (A_GPA + 0x2000)
#define Q1_DESC_GPA (A_GPA + 0x3000)
#define Q1_AVAIL_GPA (A_GPA + 0x4000)
#define Q1_USED_GPA (A_GPA + 0x5000)
#define ITABLE_GPA (A_GPA + 0x8000)
#define ITABLE2_GPA (A_GPA + 0x9000)
#define BUF_GPA (A_GPA + 0x10000)

#define CONFIG_SIZE 16

struct region_mem {
	void *a, *b, *c, *d;
};

/* The dummy device: records what the transport asks of it. */
struct dummy {
	uint8_t config[CONFIG_SIZE];
	unsigned int config_reads, config_writes;
	unsigned int driver_ok_calls;
	uint64_t driver_ok_features;
	int driver_ok_ret;
	unsigned int resets;
	unsigned int notify_calls;
	bool manual;			/* don't pop in queue_notify */
	int last_pop;
	unsigned int popped;
	struct ovc_virtq_elem elems[4];
	uint32_t written[4];
};

static struct region_mem ram;
static struct ovc_guest_region regions[4];
static struct dummy dev;
static unsigned int irqs;
static struct ovc_virtio_mmio *m;

/* ------------------------------------------------------------------------ */
/* Fake guest memory */

static void *gpa_hva(uint64_t gpa)
{
	unsigned int i;

	for (i = 0; i < OVC_ARRAY_SIZE(regions); i++) {
		if (gpa >= regions[i].gpa && gpa - regions[i].gpa < regions[i].size)
			return (uint8_t *)regions[i].hva + (gpa - regions[i].gpa);
	}
	cr_assert_fail("gpa 0x%llx is not fake RAM", (unsigned long long)gpa);
	return NULL;
}

static void put16(uint64_t gpa, uint16_t v)
{
	vring_put16(gpa_hva(gpa), v);
}

static uint16_t get16(uint64_t gpa)
{
	return vring_get16(gpa_hva(gpa));
}

static uint32_t get32(uint64_t gpa)
{
	return vring_get32(gpa_hva(gpa));
}

/* A descriptor in any table: the ring's (DESC_GPA) or an indirect one. */
static void put_desc_at(uint64_t table, unsigned int i, uint64_t addr, uint32_t len,
			uint16_t flags, uint16_t next)
{
	vring_put_desc(gpa_hva(table + 16ULL * i), addr, len, flags, next);
}

static void put_desc(unsigned int i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	put_desc_at(DESC_GPA, i, addr, len, flags, next);
}

/* The driver's side of queue 0. */
static uint16_t drv_avail_idx;

static void avail_add(uint16_t head)
{
	put16(AVAIL_GPA + 4 + 2 * (drv_avail_idx % QSIZE), head);
	drv_avail_idx++;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	put16(AVAIL_GPA + 2, drv_avail_idx);
}

static void set_avail_idx(uint16_t idx)
{
	drv_avail_idx = idx;
	put16(AVAIL_GPA + 2, idx);
}

static void set_avail_flags(uint16_t flags)
{
	put16(AVAIL_GPA, flags);
}

static void set_used_event(uint16_t v)
{
	put16(AVAIL_GPA + 4 + 2 * QSIZE, v);
}

static uint16_t used_idx(void)
{
	return get16(USED_GPA + 2);
}

static uint32_t used_id(unsigned int i)
{
	return get32(USED_GPA + 4 + 8 * (i % QSIZE));
}

static uint32_t used_len(unsigned int i)
{
	return get32(USED_GPA + 4 + 8 * (i % QSIZE) + 4);
}

static uint16_t avail_event(void)
{
	return get16(USED_GPA + 4 + 8 * QSIZE);
}

/* ------------------------------------------------------------------------ */
/* The dummy device */

static void dummy_config_read(void *opaque, uint32_t offset, void *buf, uint32_t len)
{
	struct dummy *d = opaque;

	cr_assert_leq(offset + len, CONFIG_SIZE);
	memcpy(buf, d->config + offset, len);
	d->config_reads++;
}

static void dummy_config_write(void *opaque, uint32_t offset, const void *buf, uint32_t len)
{
	struct dummy *d = opaque;

	cr_assert_leq(offset + len, CONFIG_SIZE);
	memcpy(d->config + offset, buf, len);
	d->config_writes++;
}

static int dummy_driver_ok(void *opaque, uint64_t features)
{
	struct dummy *d = opaque;

	d->driver_ok_calls++;
	d->driver_ok_features = features;
	return d->driver_ok_ret;
}

/* Pop everything; fill each writable buffer with 0xab; push; notify. */
static void dummy_queue_notify(void *opaque, struct ovc_virtq *vq)
{
	struct dummy *d = opaque;
	struct ovc_virtq_elem e;
	unsigned int i;
	uint32_t written;
	int ret;

	d->notify_calls++;
	if (d->manual)
		return;
	for (;;) {
		ret = ovc_virtq_pop(vq, &e);
		d->last_pop = ret;
		if (ret <= 0)
			break;
		written = 0;
		for (i = 0; i < e.nin; i++) {
			memset(e.in[i].iov_base, 0xab, e.in[i].iov_len);
			written += (uint32_t)e.in[i].iov_len;
		}
		if (d->popped < OVC_ARRAY_SIZE(d->elems)) {
			d->elems[d->popped] = e;
			d->written[d->popped] = written;
		}
		d->popped++;
		cr_assert_eq(ovc_virtq_push(vq, &e, written), 0);
	}
	ovc_virtq_notify(vq);
}

static void dummy_reset(void *opaque)
{
	struct dummy *d = opaque;

	d->resets++;
}

static const struct ovc_virtio_device_ops dummy_ops = {
	.device_id = 5,
	.vendor_id = 0x4f5643,
	.features = DEV_FEATURES,
	.num_queues = 2,
	.queue_max_size = QMAX,
	.config_size = CONFIG_SIZE,
	.config_read = dummy_config_read,
	.config_write = dummy_config_write,
	.driver_ok = dummy_driver_ok,
	.queue_notify = dummy_queue_notify,
	.reset = dummy_reset,
};

static void count_irq(void *opaque)
{
	unsigned int *n = opaque;

	(*n)++;
}

/* ------------------------------------------------------------------------ */
/* Fixture */

static void *alloc_ram(size_t size)
{
	void *p = aligned_alloc(4096, size);

	cr_assert_not_null(p);
	memset(p, 0, size);
	return p;
}

static void setup(void)
{
	struct ovc_virtio_mem mem = { .regions = regions, .nregions = 4 };

	ram.a = alloc_ram(A_SIZE);
	ram.b = alloc_ram(B_SIZE);
	ram.c = alloc_ram(C_SIZE);
	/* Never touched: descriptors only point into it. */
	ram.d = mmap(NULL, D_SIZE, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	cr_assert_neq(ram.d, MAP_FAILED);
	/* Out of gpa order on purpose: the transport sorts. */
	regions[0] = (struct ovc_guest_region){ .gpa = C_GPA, .size = C_SIZE, .hva = ram.c };
	regions[1] = (struct ovc_guest_region){ .gpa = A_GPA, .size = A_SIZE, .hva = ram.a };
	regions[2] = (struct ovc_guest_region){ .gpa = B_GPA, .size = B_SIZE, .hva = ram.b };
	regions[3] = (struct ovc_guest_region){ .gpa = D_GPA, .size = D_SIZE, .hva = ram.d };
	memset(&dev, 0, sizeof(dev));
	for (unsigned int i = 0; i < CONFIG_SIZE; i++)
		dev.config[i] = (uint8_t)(0x10 + i);
	irqs = 0;
	drv_avail_idx = 0;
	m = ovc_virtio_mmio_new(&dummy_ops, &dev, &mem, count_irq, &irqs);
	cr_assert_not_null(m, "ovc_virtio_mmio_new: %s", strerror(errno));
}

static void teardown(void)
{
	ovc_virtio_mmio_destroy(m);
	m = NULL;
	free(ram.a);
	free(ram.b);
	free(ram.c);
	if (ram.d && ram.d != MAP_FAILED)
		munmap(ram.d, D_SIZE);
	memset(&ram, 0, sizeof(ram));
}

TestSuite(virtio, .init = setup, .fini = teardown, .timeout = 30);

/*
 * Criterion runs each parameterized test in a re-executed child where the
 * binary sits at another address, so a pointer inside a parameter (a name,
 * a function) is stale there. The case tables below are file-scope; the
 * parameters are indices into them.
 */
#define CASE_INDICES(table)                                                    \
	do {                                                                   \
		static unsigned int idx[OVC_ARRAY_SIZE(table)];                \
		for (unsigned int i = 0; i < OVC_ARRAY_SIZE(table); i++)       \
			idx[i] = i;                                            \
		return cr_make_param_array(unsigned int, idx, OVC_ARRAY_SIZE(table)); \
	} while (0)

/* ------------------------------------------------------------------------ */
/* The fake driver */

static uint32_t rd(uint64_t off)
{
	uint32_t v = 0xdeadbeef;

	cr_assert_eq(ovc_virtio_mmio_read(m, off, &v, 4), 0);
	return le32toh(v);
}

static void wr(uint64_t off, uint32_t v)
{
	v = htole32(v);
	cr_assert_eq(ovc_virtio_mmio_write(m, off, &v, 4), 0);
}

static struct ovc_virtio_stats stats(void)
{
	struct ovc_virtio_stats st;

	cr_assert_eq(ovc_virtio_mmio_get_stats(m, &st), 0);
	return st;
}

/* Every counter of guest misbehaviour, summed: 0 on a clean run. */
static uint64_t bad_total(void)
{
	struct ovc_virtio_stats st = stats();

	return st.bad_register_access + st.bad_status + st.features_refused +
	       st.bad_queue_config + st.bad_avail_idx + st.bad_desc_index + st.chain_loop +
	       st.chain_too_long + st.desc_out_of_ram + st.desc_straddle + st.bad_chain +
	       st.bad_indirect + st.queue_broken;
}

static void write_features(uint64_t f)
{
	wr(R_DRV_FEAT_SEL, 0);
	wr(R_DRV_FEAT, (uint32_t)f);
	wr(R_DRV_FEAT_SEL, 1);
	wr(R_DRV_FEAT, (uint32_t)(f >> 32));
}

/* Reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK; true if accepted. */
static bool negotiate(uint64_t f)
{
	wr(R_STATUS, 0);
	wr(R_STATUS, ST_ACK);
	wr(R_STATUS, ST_ACK | ST_DRIVER);
	write_features(f);
	wr(R_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	return (rd(R_STATUS) & ST_FEATURES_OK) != 0;
}

static void queue_config(unsigned int q, uint32_t num, uint64_t desc, uint64_t avail, uint64_t used)
{
	wr(R_QUEUE_SEL, q);
	wr(R_QUEUE_NUM, num);
	wr(R_QUEUE_DESC, (uint32_t)desc);
	wr(R_QUEUE_DESC + 4, (uint32_t)(desc >> 32));
	wr(R_QUEUE_DRIVER, (uint32_t)avail);
	wr(R_QUEUE_DRIVER + 4, (uint32_t)(avail >> 32));
	wr(R_QUEUE_DEVICE, (uint32_t)used);
	wr(R_QUEUE_DEVICE + 4, (uint32_t)(used >> 32));
	wr(R_QUEUE_READY, 1);
}

static void setup_queue0(void)
{
	queue_config(0, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA);
	cr_assert_eq(rd(R_QUEUE_READY), 1);
}

/* The whole handshake with queue 0 ready. */
static void start(uint64_t f)
{
	cr_assert(negotiate(f), "features 0x%llx refused", (unsigned long long)f);
	setup_queue0();
	wr(R_STATUS, ST_RUNNING);
	cr_assert_eq(rd(R_STATUS), ST_RUNNING);
}

#define ALL_FEATURES (DEV_FEATURES | F_VERSION_1 | F_EVENT_IDX | F_INDIRECT)
#define PLAIN_FEATURES (F_VERSION_1 | F_INDIRECT)

static void kick(unsigned int q)
{
	wr(R_QUEUE_NOTIFY, q);
}

static uint8_t *buf(uint64_t off)
{
	return gpa_hva(BUF_GPA + off);
}

/* ------------------------------------------------------------------------ */
/* Registers and the handshake */

Test(virtio, registers)
{
	wr(R_DEV_FEAT_SEL, 0);
	cr_assert_eq(rd(R_MAGIC), 0x74726976);
	cr_assert_eq(rd(R_VERSION), 2);
	cr_assert_eq(rd(R_DEVICE_ID), 5);
	cr_assert_eq(rd(R_VENDOR_ID), 0x4f5643);
	cr_assert_eq(rd(R_DEV_FEAT), (uint32_t)(DEV_FEATURES | F_EVENT_IDX | F_INDIRECT));
	wr(R_DEV_FEAT_SEL, 1);
	cr_assert_eq(rd(R_DEV_FEAT), 1, "VERSION_1 is bit 32");
	wr(R_DEV_FEAT_SEL, 2);
	cr_assert_eq(rd(R_DEV_FEAT), 0);
	wr(R_DEV_FEAT_SEL, 0xffffffff);
	cr_assert_eq(rd(R_DEV_FEAT), 0);
	for (unsigned int q = 0; q < 2; q++) {
		wr(R_QUEUE_SEL, q);
		cr_assert_eq(rd(R_QUEUE_NUM_MAX), QMAX);
		cr_assert_eq(rd(R_QUEUE_READY), 0);
	}
	wr(R_QUEUE_SEL, 2);
	cr_assert_eq(rd(R_QUEUE_NUM_MAX), 0, "no queue 2");
	cr_assert_eq(rd(R_STATUS), 0);
	cr_assert_eq(rd(R_ISR), 0);
	cr_assert_eq(rd(R_CONFIG_GEN), 0);
	wr(R_SHM_SEL, 0);
	cr_assert_eq(rd(R_SHM_LEN_LOW), 0xffffffff, "no shared memory region");
	cr_assert_eq(bad_total(), 0);
	cr_assert_eq(ovc_virtio_mmio_queue(m, 2), NULL);
	cr_assert_eq(ovc_virtq_index(ovc_virtio_mmio_queue(m, 1)), 1);
}

Test(virtio, handshake)
{
	struct ovc_virtio_stats st;

	start(ALL_FEATURES);
	cr_assert_eq(dev.driver_ok_calls, 1);
	cr_assert_eq(dev.driver_ok_features, ALL_FEATURES);
	cr_assert_eq(dev.resets, 1, "the driver's first reset");
	st = stats();
	cr_assert_eq(st.resets, 1);
	cr_assert_eq(st.interrupts, 0);
	cr_assert_eq(bad_total(), 0);
	/* Rewriting the same status is harmless. */
	wr(R_STATUS, ST_RUNNING);
	cr_assert_eq(dev.driver_ok_calls, 1);
	cr_assert_eq(bad_total(), 0);
	/* FAILED may be set at any point. */
	wr(R_STATUS, ST_RUNNING | ST_FAILED);
	cr_assert_eq(rd(R_STATUS), ST_RUNNING | ST_FAILED);
}

Test(virtio, minimal_features)
{
	start(F_VERSION_1);
	cr_assert_eq(dev.driver_ok_features, F_VERSION_1);
	cr_assert_eq(bad_total(), 0);
}

struct feature_case {
	const char *what;
	uint64_t features;
	uint32_t beyond;	/* written with DriverFeaturesSel 2 */
};

static const struct feature_case feature_cases[] = {
	{ "no VERSION_1", DEV_FEATURES },
	{ "nothing", 0 },
	{ "device bit not offered", F_VERSION_1 | (1ULL << 5) },
	{ "transport bit not offered (RING_PACKED)", F_VERSION_1 | (1ULL << 34) },
	{ "high bit not offered", F_VERSION_1 | (1ULL << 63) },
	{ "bit above 63", F_VERSION_1, 1 },
};

ParameterizedTestParameters(virtio, features_refused)
{
	CASE_INDICES(feature_cases);
}

ParameterizedTest(unsigned int *i, virtio, features_refused)
{
	const struct feature_case *c = &feature_cases[*i];
	struct ovc_virtio_stats st;

	wr(R_STATUS, 0);
	wr(R_STATUS, ST_ACK);
	wr(R_STATUS, ST_ACK | ST_DRIVER);
	write_features(c->features);
	wr(R_DRV_FEAT_SEL, 2);
	wr(R_DRV_FEAT, c->beyond);
	wr(R_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
	cr_assert_eq(rd(R_STATUS), ST_ACK | ST_DRIVER, "%s: FEATURES_OK kept", c->what);
	st = stats();
	cr_assert_eq(st.features_refused, 1, "%s", c->what);

	/* Nothing further works without FEATURES_OK. */
	queue_config(0, QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA);
	cr_assert_eq(rd(R_QUEUE_READY), 0);
	wr(R_STATUS, ST_RUNNING);
	cr_assert_eq(rd(R_STATUS) & (ST_DRIVER_OK | ST_FEATURES_OK), 0);
	cr_assert_eq(dev.driver_ok_calls, 0);
	st = stats();
	cr_assert_eq(st.bad_queue_config, 1);
	cr_assert_geq(st.bad_status, 1);

	/* A reset and an honest driver recover. */
	start(PLAIN_FEATURES);
	cr_assert_eq(dev.driver_ok_calls, 1);
}

Test(virtio, status_order)
{
	struct ovc_virtio_stats st;

	wr(R_STATUS, ST_DRIVER);		/* without ACKNOWLEDGE */
	cr_assert_eq(rd(R_STATUS), 0);
	wr(R_STATUS, ST_ACK);
	wr(R_STATUS, ST_ACK | ST_FEATURES_OK);	/* without DRIVER */
	cr_assert_eq(rd(R_STATUS), ST_ACK);
	wr(R_STATUS, ST_ACK | ST_DRIVER);
	wr(R_STATUS, ST_ACK);			/* clears DRIVER */
	cr_assert_eq(rd(R_STATUS), ST_ACK | ST_DRIVER);
	wr(R_STATUS, ST_ACK | ST_DRIVER | 0x10);	/* unknown bit */
	cr_assert_eq(rd(R_STATUS), ST_ACK | ST_DRIVER);
	wr(R_STATUS, 0x100 | ST_ACK | ST_DRIVER);	/* beyond the byte */
	cr_assert_eq(rd(R_STATUS), ST_ACK | ST_DRIVER);
	wr(R_STATUS, ST_ACK | ST_DRIVER | ST_DRIVER_OK);	/* without FEATURES_OK */
	cr_assert_eq(rd(R_STATUS), ST_ACK | ST_DRIVER);
	cr_assert_eq(dev.driver_ok_calls, 0);
	/* The driver cannot set DEVICE_NEEDS_RESET either. */
	wr(R_STATUS, ST_ACK | ST_DRIVER | ST_NEEDS_RESET);
	cr_assert_eq(rd(R_STATUS), ST_ACK | ST_DRIVER);
	st = stats();
	cr_assert_eq(st.bad_status, 6);
	cr_assert_eq(st.bad_register_access, 0);
}

Test(virtio, features_fixed_after_features_ok)
{
	cr_assert(negotiate(PLAIN_FEATURES));
	wr(R_DRV_FEAT_SEL, 0);
	wr(R_DRV_FEAT, 0xffffffff);
	cr_assert_eq(stats().bad_register_access, 1);
	setup_queue0();
	wr(R_STATUS, ST_RUNNING);
	cr_assert_eq(dev.driver_ok_features, PLAIN_FEATURES);
}

Test(virtio, driver_ok_error_needs_reset)
{
	dev.driver_ok_ret = -EIO;
	cr_assert(negotiate(PLAIN_FEATURES));
	setup_queue0();
	wr(R_STATUS, ST_RUNNING);
	cr_assert_eq(rd(R_STATUS), ST_RUNNING | ST_NEEDS_RESET);
	cr_assert_eq(rd(R_ISR), OVC_VIRTIO_INT_CONFIG);
	cr_assert_eq(irqs, 1);
	/* Stopped: a notification reaches nobody. */
	put_desc(0, BUF_GPA, 64, 0, 0);
	avail_add(0);
	kick(0);
	cr_assert_eq(dev.notify_calls, 0);
	cr_assert_eq(stats().notifies_ignored, 1);
	cr_assert_eq(used_idx(), 0);
	/* A reset clears it. */
	dev.driver_ok_ret = 0;
	drv_avail_idx = 0;
	memset(gpa_hva(AVAIL_GPA), 0, 0x1000);
	start(PLAIN_FEATURES);
	cr_assert_eq(rd(R_ISR), 0);
}

/* ------------------------------------------------------------------------ */
/* Queues */

Test(virtio, queue_setup)
{
	struct ovc_virtq *vq = ovc_virtio_mmio_queue(m, 0);

	cr_assert(negotiate(PLAIN_FEATURES));
	setup_queue0();
	cr_assert_eq(vq->size, QSIZE);
	cr_assert_eq(vq->desc, gpa_hva(DESC_GPA));
	cr_assert_eq(vq->avail, gpa_hva(AVAIL_GPA));
	cr_assert_eq(vq->used, gpa_hva(USED_GPA));
	/* Configuration is frozen while ready. */
	wr(R_QUEUE_NUM, 4);
	wr(R_QUEUE_DESC, (uint32_t)ITABLE_GPA);
	cr_assert_eq(stats().bad_register_access, 2);
	cr_assert_eq(vq->num, QSIZE);
	cr_assert_eq(vq->desc_gpa, DESC_GPA);
	/* Writing 1 again is a no-op. */
	wr(R_QUEUE_READY, 1);
	cr_assert_eq(rd(R_QUEUE_READY), 1);
	/* Disable, reconfigure, enable. */
	wr(R_QUEUE_READY, 0);
	cr_assert_eq(rd(R_QUEUE_READY), 0);
	queue_config(0, QMAX, Q1_DESC_GPA, Q1_AVAIL_GPA, Q1_USED_GPA);
	cr_assert_eq(rd(R_QUEUE_READY), 1);
	cr_assert_eq(vq->size, QMAX);
	/* The second queue, with the smallest size. */
	queue_config(1, 1, DESC_GPA, AVAIL_GPA, USED_GPA);
	cr_assert_eq(rd(R_QUEUE_READY), 1);
	cr_assert_eq(stats().bad_register_access, 2);
	cr_assert_eq(stats().bad_queue_config, 0);
}

Test(virtio, queue_num_defaults_to_max)
{
	cr_assert(negotiate(PLAIN_FEATURES));
	wr(R_QUEUE_SEL, 1);
	wr(R_QUEUE_DESC, (uint32_t)Q1_DESC_GPA);
	wr(R_QUEUE_DRIVER, (uint32_t)Q1_AVAIL_GPA);
	wr(R_QUEUE_DEVICE, (uint32_t)Q1_USED_GPA);
	wr(R_QUEUE_READY, 1);
	cr_assert_eq(rd(R_QUEUE_READY), 1);
	cr_assert_eq(ovc_virtio_mmio_queue(m, 1)->size, QMAX);
}

Test(virtio, pop_push_direct)
{
	start(PLAIN_FEATURES);
	memcpy(buf(0), "hello", 5);
	put_desc(0, BUF_GPA, 5, 0, 0);
	put_desc(1, BUF_GPA + 0x100, 32, D_WRITE, 0);
	avail_add(0);
	avail_add(1);
	kick(0);

	cr_assert_eq(dev.notify_calls, 1);
	cr_assert_eq(dev.popped, 2);
	cr_assert_eq(dev.last_pop, 0);
	cr_assert_eq(dev.elems[0].head, 0);
	cr_assert_eq(dev.elems[0].nout, 1);
	cr_assert_eq(dev.elems[0].nin, 0);
	cr_assert_eq(dev.elems[0].out[0].iov_base, buf(0));
	cr_assert_eq(dev.elems[0].out[0].iov_len, 5);
	cr_assert_eq(memcmp(dev.elems[0].out[0].iov_base, "hello", 5), 0);
	cr_assert_eq(dev.elems[1].head, 1);
	cr_assert_eq(dev.elems[1].nout, 0);
	cr_assert_eq(dev.elems[1].nin, 1);
	cr_assert_eq(dev.elems[1].in[0].iov_base, buf(0x100));
	cr_assert_eq(buf(0x100)[31], 0xab);
	cr_assert_eq(buf(0x100)[32], 0);

	cr_assert_eq(used_idx(), 2);
	cr_assert_eq(used_id(0), 0);
	cr_assert_eq(used_len(0), 0);
	cr_assert_eq(used_id(1), 1);
	cr_assert_eq(used_len(1), 32);
	cr_assert_eq(rd(R_ISR), OVC_VIRTIO_INT_USED);
	cr_assert_eq(irqs, 1);
	cr_assert_eq(stats().notifies, 1);
	cr_assert_eq(stats().interrupts, 1);
	cr_assert_eq(bad_total(), 0);
}

Test(virtio, pop_push_chained)
{
	start(PLAIN_FEATURES);
	put_desc(3, BUF_GPA, 16, D_NEXT, 5);
	put_desc(5, BUF_GPA + 0x100, 8, D_NEXT, 1);
	put_desc(1, BUF_GPA + 0x200, 100, D_WRITE | D_NEXT, 7);
	put_desc(7, BUF_GPA + 0x300, 28, D_WRITE, 0);
	avail_add(3);
	kick(0);

	cr_assert_eq(dev.popped, 1);
	cr_assert_eq(dev.elems[0].head, 3);
	cr_assert_eq(dev.elems[0].nout, 2);
	cr_assert_eq(dev.elems[0].nin, 2);
	cr_assert_eq(dev.elems[0].out[0].iov_base, buf(0));
	cr_assert_eq(dev.elems[0].out[1].iov_base, buf(0x100));
	cr_assert_eq(dev.elems[0].out[1].iov_len, 8);
	cr_assert_eq(dev.elems[0].in[0].iov_base, buf(0x200));
	cr_assert_eq(dev.elems[0].in[1].iov_base, buf(0x300));
	cr_assert_eq(used_idx(), 1);
	cr_assert_eq(used_id(0), 3);
	cr_assert_eq(used_len(0), 128);
	cr_assert_eq(bad_total(), 0);
}

Test(virtio, pop_push_indirect)
{
	start(PLAIN_FEATURES);
	/* Misaligned on purpose: indirect tables need no alignment. */
	put_desc_at(ITABLE_GPA + 4, 0, BUF_GPA, 10, D_NEXT, 2);
	put_desc_at(ITABLE_GPA + 4, 2, BUF_GPA + 0x100, 20, D_WRITE | D_NEXT, 1);
	put_desc_at(ITABLE_GPA + 4, 1, BUF_GPA + 0x200, 30, D_WRITE, 0);
	/* WRITE on the indirect descriptor itself means nothing. */
	put_desc(2, ITABLE_GPA + 4, 3 * 16, D_INDIRECT | D_WRITE, 0);
	avail_add(2);
	/* A direct chain ending in an indirect table. */
	put_desc_at(ITABLE2_GPA, 0, BUF_GPA + 0x300, 4, D_WRITE, 0);
	put_desc(4, BUF_GPA + 0x400, 8, D_NEXT, 6);
	put_desc(6, ITABLE2_GPA, 16, D_INDIRECT, 0);
	avail_add(4);
	kick(0);

	cr_assert_eq(dev.popped, 2);
	cr_assert_eq(dev.elems[0].head, 2);
	cr_assert_eq(dev.elems[0].nout, 1);
	cr_assert_eq(dev.elems[0].nin, 2);
	cr_assert_eq(dev.elems[0].out[0].iov_base, buf(0));
	cr_assert_eq(dev.elems[0].in[0].iov_base, buf(0x100));
	cr_assert_eq(dev.elems[0].in[1].iov_base, buf(0x200));
	cr_assert_eq(dev.elems[0].in[1].iov_len, 30);
	cr_assert_eq(dev.elems[1].head, 4);
	cr_assert_eq(dev.elems[1].nout, 1);
	cr_assert_eq(dev.elems[1].nin, 1);
	cr_assert_eq(used_idx(), 2);
	cr_assert_eq(used_len(0), 50);
	cr_assert_eq(used_len(1), 4);
	cr_assert_eq(bad_total(), 0);
}

Test(virtio, zero_length_buffer)
{
	start(PLAIN_FEATURES);
	put_desc(0, BUF_GPA, 0, 0, 0);
	avail_add(0);
	kick(0);
	cr_assert_eq(dev.popped, 1);
	cr_assert_eq(dev.elems[0].out[0].iov_len, 0);
	cr_assert_eq(bad_total(), 0);
}

Test(virtio, ring_wraps)
{
	start(PLAIN_FEATURES);
	put_desc(0, BUF_GPA, 8, D_WRITE, 0);
	/* Round the ring many times, and across the 16-bit wrap of the indices. */
	for (unsigned int i = 0; i < 65536 + 3; i++) {
		avail_add(0);
		kick(0);
	}
	cr_assert_eq(dev.popped, 65536 + 3);
	cr_assert_eq(used_idx(), 3);
	cr_assert_eq(used_len(2), 8);
	cr_assert_eq(bad_total(), 0);
}

Test(virtio, interrupt_status)
{
	start(PLAIN_FEATURES);
	put_desc(0, BUF_GPA, 8, D_WRITE, 0);
	avail_add(0);
	kick(0);
	cr_assert_eq(rd(R_ISR), OVC_VIRTIO_INT_USED);
	cr_assert_eq(irqs, 1);
	wr(R_ISR_ACK, OVC_VIRTIO_INT_CONFIG);	/* not the bit that is set */
	cr_assert_eq(rd(R_ISR), OVC_VIRTIO_INT_USED);
	wr(R_ISR_ACK, OVC_VIRTIO_INT_USED);
	cr_assert_eq(rd(R_ISR), 0);

	/* VIRTQ_AVAIL_F_NO_INTERRUPT suppresses, without EVENT_IDX. */
	set_avail_flags(1);
	avail_add(0);
	kick(0);
	cr_assert_eq(used_idx(), 2);
	cr_assert_eq(rd(R_ISR), 0);
	cr_assert_eq(irqs, 1);
	cr_assert_eq(stats().interrupts_suppressed, 1);
	set_avail_flags(0);
	avail_add(0);
	kick(0);
	cr_assert_eq(irqs, 2);

	/* A notify with nothing pushed raises nothing. */
	ovc_virtq_notify(ovc_virtio_mmio_queue(m, 0));
	cr_assert_eq(irqs, 2);

	/* Config change: bit 1 and a new generation. */
	ovc_virtio_mmio_config_changed(m);
	cr_assert_eq(rd(R_ISR), OVC_VIRTIO_INT_USED | OVC_VIRTIO_INT_CONFIG);
	cr_assert_eq(rd(R_CONFIG_GEN), 1);
	cr_assert_eq(irqs, 3);
	wr(R_ISR_ACK, 3);
	cr_assert_eq(rd(R_ISR), 0);
}

Test(virtio, event_idx)
{
	start(ALL_FEATURES);
	put_desc(0, BUF_GPA, 8, D_WRITE, 0);

	/* The first used buffer always interrupts. */
	avail_add(0);
	kick(0);
	cr_assert_eq(irqs, 1);
	cr_assert_eq(avail_event(), 1, "asks to be told of avail idx 1 on");

	/* The driver wants an interrupt once entry 3 is used. */
	set_used_event(3);
	avail_add(0);
	kick(0);
	cr_assert_eq(used_idx(), 2);
	cr_assert_eq(irqs, 1);
	avail_add(0);
	kick(0);
	cr_assert_eq(used_idx(), 3);
	cr_assert_eq(irqs, 1);
	avail_add(0);
	kick(0);
	cr_assert_eq(used_idx(), 4);
	cr_assert_eq(irqs, 2, "used idx went past used_event 3");
	cr_assert_eq(stats().interrupts_suppressed, 2);
	cr_assert_eq(avail_event(), 4);

	/* Batches: one interrupt for several buffers. */
	set_used_event(4);
	avail_add(0);
	avail_add(0);
	avail_add(0);
	kick(0);
	cr_assert_eq(used_idx(), 7);
	cr_assert_eq(irqs, 3);
	cr_assert_eq(avail_event(), 7);
	cr_assert_eq(bad_total(), 0);
}

Test(virtio, event_idx_buffer_added_while_empty)
{
	struct ovc_virtq *vq;
	struct ovc_virtq_elem e, none;

	start(ALL_FEATURES);
	dev.manual = true;
	vq = ovc_virtio_mmio_queue(m, 0);
	put_desc(0, BUF_GPA, 8, D_WRITE, 0);
	cr_assert_eq(ovc_virtq_pop(vq, &none), 0);
	cr_assert_eq(avail_event(), 0);
	avail_add(0);
	cr_assert_eq(ovc_virtq_pop(vq, &e), 1);
	cr_assert_eq(avail_event(), 1);
	cr_assert_eq(ovc_virtq_pop(vq, &none), 0);
	cr_assert_eq(ovc_virtq_push(vq, &e, 8), 0);
	ovc_virtq_notify(vq);
	cr_assert_eq(irqs, 1);
}

Test(virtio, notify_before_driver_ok)
{
	cr_assert(negotiate(PLAIN_FEATURES));
	setup_queue0();
	put_desc(0, BUF_GPA, 8, D_WRITE, 0);
	avail_add(0);
	kick(0);
	cr_assert_eq(dev.notify_calls, 0);
	wr(R_STATUS, ST_RUNNING);
	cr_assert_eq(dev.notify_calls, 1, "delivered after DRIVER_OK");
	cr_assert_eq(dev.popped, 1);
	cr_assert_eq(used_idx(), 1);
	cr_assert_eq(stats().notifies, 1);
}

Test(virtio, not_ready_queue)
{
	struct ovc_virtq_elem e;

	start(PLAIN_FEATURES);
	kick(1);
	cr_assert_eq(dev.notify_calls, 0);
	cr_assert_eq(stats().notifies_ignored, 1);
	cr_assert_eq(ovc_virtq_pop(ovc_virtio_mmio_queue(m, 1), &e), 0);
}

/* ------------------------------------------------------------------------ */
/* Config space */

Test(virtio, config_space)
{
	uint8_t b[8];
	uint64_t v8;
	uint32_t v4;
	uint16_t v2;

	cr_assert_eq(ovc_virtio_mmio_read(m, R_CONFIG + 3, b, 1), 0);
	cr_assert_eq(b[0], 0x13);
	cr_assert_eq(ovc_virtio_mmio_read(m, R_CONFIG + 2, &v2, 2), 0);
	cr_assert_eq(le16toh(v2), 0x1312);
	cr_assert_eq(ovc_virtio_mmio_read(m, R_CONFIG + 4, &v4, 4), 0);
	cr_assert_eq(le32toh(v4), 0x17161514);
	cr_assert_eq(ovc_virtio_mmio_read(m, R_CONFIG + 8, &v8, 8), 0);
	cr_assert_eq(le64toh(v8), 0x1f1e1d1c1b1a1918ULL);
	/* Unaligned, but inside: fine. */
	cr_assert_eq(ovc_virtio_mmio_read(m, R_CONFIG + 13, &v2, 2), 0);
	cr_assert_eq(le16toh(v2), 0x1e1d);
	cr_assert_eq(ovc_virtio_mmio_read(m, R_CONFIG + 15, b, 1), 0);
	cr_assert_eq(b[0], 0x1f);
	cr_assert_eq(dev.config_reads, 6);
	cr_assert_eq(bad_total(), 0);

	/* Past the end: zeros, counted, the device not asked. */
	memset(b, 0x55, sizeof(b));
	cr_assert_eq(ovc_virtio_mmio_read(m, R_CONFIG + 15, b, 2), 0);
	cr_assert_eq(b[0], 0);
	cr_assert_eq(b[1], 0);
	cr_assert_eq(ovc_virtio_mmio_read(m, R_CONFIG + 12, &v8, 8), 0);
	cr_assert_eq(v8, 0);
	cr_assert_eq(ovc_virtio_mmio_read(m, R_CONFIG + CONFIG_SIZE, &v4, 4), 0);
	cr_assert_eq(dev.config_reads, 6);
	cr_assert_eq(stats().bad_register_access, 3);

	/* Writes go to the device inside, nowhere outside. */
	v4 = htole32(0xa1a2a3a4);
	cr_assert_eq(ovc_virtio_mmio_write(m, R_CONFIG + 8, &v4, 4), 0);
	cr_assert_eq(dev.config[8], 0xa4);
	cr_assert_eq(dev.config[11], 0xa1);
	cr_assert_eq(ovc_virtio_mmio_write(m, R_CONFIG + 14, &v4, 4), 0);
	cr_assert_eq(dev.config[14], 0x1e);
	cr_assert_eq(dev.config_writes, 1);
	cr_assert_eq(stats().bad_register_access, 4);

	/* Generation moves with changes, no interrupt before DRIVER_OK. */
	ovc_virtio_mmio_config_changed(m);
	cr_assert_eq(rd(R_CONFIG_GEN), 1);
	cr_assert_eq(rd(R_ISR), 0);
	cr_assert_eq(irqs, 0);
}

Test(virtio, config_write_without_method)
{
	static const struct ovc_virtio_device_ops ro_ops = {
		.device_id = 5,
		.num_queues = 1,
		.queue_max_size = 4,
		.config_size = 8,
		.config_read = dummy_config_read,
	};
	struct ovc_virtio_mem mem = { .regions = regions, .nregions = 4 };
	struct ovc_virtio_mmio *ro;
	struct ovc_virtio_stats st;
	uint32_t v = 1;

	ro = ovc_virtio_mmio_new(&ro_ops, &dev, &mem, count_irq, &irqs);
	cr_assert_not_null(ro);
	cr_assert_eq(ovc_virtio_mmio_write(ro, R_CONFIG, &v, 4), 0);
	cr_assert_eq(ovc_virtio_mmio_get_stats(ro, &st), 0);
	cr_assert_eq(st.bad_register_access, 1);
	cr_assert_eq(dev.config_writes, 0);
	ovc_virtio_mmio_destroy(ro);
}

/* ------------------------------------------------------------------------ */
/* Reset */

Test(virtio, reset)
{
	struct ovc_virtq *vq = ovc_virtio_mmio_queue(m, 0);
	struct ovc_virtq_elem e;

	start(ALL_FEATURES);
	put_desc(0, BUF_GPA, 8, D_WRITE, 0);
	avail_add(0);
	kick(0);
	ovc_virtio_mmio_config_changed(m);
	cr_assert_eq(rd(R_ISR), 3);
	/* One element held by the device across the reset. */
	dev.manual = true;
	avail_add(0);
	cr_assert_eq(ovc_virtq_pop(vq, &e), 1);

	wr(R_STATUS, 0);
	cr_assert_eq(dev.resets, 2);
	cr_assert_eq(rd(R_STATUS), 0);
	cr_assert_eq(rd(R_ISR), 0);
	wr(R_QUEUE_SEL, 0);
	cr_assert_eq(rd(R_QUEUE_READY), 0);
	cr_assert_eq(vq->num, QMAX);
	cr_assert_eq(vq->desc_gpa, 0);
	cr_assert_eq(ovc_virtq_push(vq, &e, 0), -ESTALE);
	cr_assert_eq(ovc_virtq_pop(vq, &e), 0);

	/* A fresh ring, the other features: works from index 0 again. */
	memset(gpa_hva(AVAIL_GPA), 0, 0x1000);
	memset(gpa_hva(USED_GPA), 0, 0x1000);
	drv_avail_idx = 0;
	dev.manual = false;
	start(PLAIN_FEATURES);
	cr_assert_eq(dev.driver_ok_features, PLAIN_FEATURES);
	cr_assert_eq(ovc_virtq_push(vq, &e, 0), -ESTALE, "still stale after re-enable");
	avail_add(0);
	kick(0);
	cr_assert_eq(used_idx(), 1);
	cr_assert_eq(bad_total(), 0);
}

Test(virtio, queue_disable_makes_elements_stale)
{
	struct ovc_virtq *vq = ovc_virtio_mmio_queue(m, 0);
	struct ovc_virtq_elem e;

	start(PLAIN_FEATURES);
	dev.manual = true;
	put_desc(0, BUF_GPA, 8, D_WRITE, 0);
	avail_add(0);
	cr_assert_eq(ovc_virtq_pop(vq, &e), 1);
	wr(R_QUEUE_SEL, 0);
	wr(R_QUEUE_READY, 0);
	cr_assert_eq(ovc_virtq_push(vq, &e, 0), -ESTALE);
	cr_assert_eq(used_idx(), 0);
}

/* ------------------------------------------------------------------------ */
/* API misuse by the VMM or the device */

Test(virtio, api_arguments)
{
	struct ovc_virtq *vq = ovc_virtio_mmio_queue(m, 0);
	struct ovc_virtio_stats st;
	struct ovc_virtq_elem e;
	uint8_t b[16];

	cr_assert_eq(ovc_virtio_mmio_read(NULL, 0, b, 4), -EINVAL);
	cr_assert_eq(ovc_virtio_mmio_read(m, 0, NULL, 4), -EINVAL);
	cr_assert_eq(ovc_virtio_mmio_read(m, 0, b, 3), -EINVAL);
	cr_assert_eq(ovc_virtio_mmio_read(m, 0, b, 16), -EINVAL);
	cr_assert_eq(ovc_virtio_mmio_read(m, 0, b, 0), -EINVAL);
	cr_assert_eq(ovc_virtio_mmio_write(NULL, 0, b, 4), -EINVAL);
	cr_assert_eq(ovc_virtio_mmio_write(m, 0, NULL, 4), -EINVAL);
	cr_assert_eq(ovc_virtio_mmio_write(m, 0x70, b, 5), -EINVAL);
	cr_assert_eq(ovc_virtio_mmio_get_stats(NULL, &st), -EINVAL);
	cr_assert_eq(ovc_virtio_mmio_get_stats(m, NULL), -EINVAL);
	cr_assert_eq(ovc_virtq_pop(NULL, &e), -EINVAL);
	cr_assert_eq(ovc_virtq_pop(vq, NULL), -EINVAL);
	cr_assert_eq(ovc_virtq_push(NULL, &e, 0), -EINVAL);
	cr_assert_eq(ovc_virtq_push(vq, NULL, 0), -EINVAL);
	ovc_virtq_notify(NULL);
	ovc_virtio_mmio_config_changed(NULL);
	ovc_virtio_mmio_destroy(NULL);
	cr_assert_eq(ovc_virtq_index(NULL), 0);
	cr_assert_eq(ovc_virtio_mmio_queue(NULL, 0), NULL);
	cr_assert_eq(bad_total(), 0);

	/* The device pushing what it may not. */
	start(PLAIN_FEATURES);
	dev.manual = true;
	put_desc(0, BUF_GPA, 8, D_WRITE, 0);
	avail_add(0);
	cr_assert_eq(ovc_virtq_pop(vq, &e), 1);
	cr_assert_eq(ovc_virtq_push(vq, &e, 9), -EINVAL, "more than the buffer holds");
	cr_assert_eq(ovc_virtq_push(vq, &e, 8), 0);
	cr_assert_eq(ovc_virtq_push(vq, &e, 8), -EINVAL, "more pushes than pops");
	e.head = QSIZE;
	cr_assert_eq(ovc_virtq_push(vq, &e, 0), -EINVAL);
	cr_assert_eq(used_idx(), 1);
}

struct new_case {
	const char *what;
	int ops;		/* 0: dummy_ops, 1: NULL, 2: bad_ops[k] */
	unsigned int k;
	int mem;		/* 0: good, 1: NULL, 2: bad_regions[k] */
	bool no_irq;
};

static const struct ovc_virtio_device_ops bad_ops[] = {
	{ .device_id = 0, .num_queues = 1, .queue_max_size = 4 },
	{ .device_id = 5, .num_queues = 0, .queue_max_size = 4 },
	{ .device_id = 5, .num_queues = OVC_VIRTIO_MAX_QUEUES + 1, .queue_max_size = 4 },
	{ .device_id = 5, .num_queues = 1, .queue_max_size = 0 },
	{ .device_id = 5, .num_queues = 1, .queue_max_size = 12 },
	{ .device_id = 5, .num_queues = 1, .queue_max_size = 65535 },
	{ .device_id = 5, .num_queues = 1, .queue_max_size = 4, .config_size = 8 },
	{ .device_id = 5, .num_queues = 1, .queue_max_size = 4, .config_size = 0x101,
	  .config_read = dummy_config_read },
	{ .device_id = 5, .num_queues = 1, .queue_max_size = 4, .features = 1ULL << 34 },
	{ .device_id = 5, .num_queues = 1, .queue_max_size = 4, .features = 1ULL << 24 },
};

static uint8_t scratch[8192] __attribute__((aligned(4096)));

static const struct ovc_guest_region bad_regions[][2] = {
	{ { .gpa = 0x1000, .size = 0, .hva = scratch } },
	{ { .gpa = 0x1000, .size = 4096, .hva = NULL } },
	{ { .gpa = UINT64_MAX - 4095, .size = 8192, .hva = scratch } },
	{ { .gpa = 0x1000, .size = 4096, .hva = scratch + 8 } },
	{ { .gpa = 0x1000, .size = 8192, .hva = scratch },
	  { .gpa = 0x2000, .size = 4096, .hva = scratch } },
	{ { .gpa = 0x2000, .size = 4096, .hva = scratch },
	  { .gpa = 0x1000, .size = 4097, .hva = scratch } },
};

static const unsigned int bad_nregions[] = { 1, 1, 1, 1, 2, 2 };

static const struct new_case new_cases[] = {
	{ "NULL ops", .ops = 1 },
	{ "NULL mem", .mem = 1 },
	{ "NULL irq", .no_irq = true },
	{ "device id 0", .ops = 2, .k = 0 },
	{ "no queues", .ops = 2, .k = 1 },
	{ "too many queues", .ops = 2, .k = 2 },
	{ "queue max 0", .ops = 2, .k = 3 },
	{ "queue max not a power of 2", .ops = 2, .k = 4 },
	{ "queue max too big", .ops = 2, .k = 5 },
	{ "config without config_read", .ops = 2, .k = 6 },
	{ "config too big", .ops = 2, .k = 7 },
	{ "transport feature not implemented", .ops = 2, .k = 8 },
	{ "reserved transport feature", .ops = 2, .k = 9 },
	{ "empty region", .mem = 2, .k = 0 },
	{ "NULL hva", .mem = 2, .k = 1 },
	{ "region wraps", .mem = 2, .k = 2 },
	{ "hva not congruent with gpa", .mem = 2, .k = 3 },
	{ "regions overlap", .mem = 2, .k = 4 },
	{ "regions overlap by a byte", .mem = 2, .k = 5 },
	{ "no regions", .mem = 3 },
	{ "too many regions", .mem = 4 },
};

ParameterizedTestParameters(virtio, new_refuses)
{
	CASE_INDICES(new_cases);
}

ParameterizedTest(unsigned int *i, virtio, new_refuses)
{
	const struct new_case *c = &new_cases[*i];
	const struct ovc_virtio_device_ops *ops = &dummy_ops;
	struct ovc_virtio_mem mem = { .regions = regions, .nregions = 4 };
	const struct ovc_virtio_mem *memp = &mem;

	if (c->ops == 1)
		ops = NULL;
	else if (c->ops == 2)
		ops = &bad_ops[c->k];
	if (c->mem == 1) {
		memp = NULL;
	} else if (c->mem == 2) {
		mem.regions = bad_regions[c->k];
		mem.nregions = bad_nregions[c->k];
	} else if (c->mem == 3) {
		mem.nregions = 0;
	} else if (c->mem == 4) {
		mem.nregions = OVC_VIRTIO_MAX_REGIONS + 1;
	}
	errno = 0;
	cr_assert_null(ovc_virtio_mmio_new(ops, &dev, memp, c->no_irq ? NULL : count_irq, &irqs),
		       "%s: accepted", c->what);
	cr_assert_eq(errno, EINVAL, "%s", c->what);
}

/* ------------------------------------------------------------------------ */
/* Hostile guests: chains */

struct chain_case {
	const char *what;
	void (*build)(void);
	size_t counter;		/* offsetof(struct ovc_virtio_stats, ...) */
	uint64_t features;	/* 0: PLAIN_FEATURES */
};

static void build_head_out_of_range(void)
{
	put_desc(0, BUF_GPA, 8, 0, 0);
	avail_add(QSIZE);
}

static void build_head_way_out_of_range(void)
{
	avail_add(0xffff);
}

static void build_next_out_of_range(void)
{
	put_desc(0, BUF_GPA, 8, D_NEXT, QSIZE + 1);
	avail_add(0);
}

static void build_loop(void)
{
	put_desc(0, BUF_GPA, 8, D_NEXT, 1);
	put_desc(1, BUF_GPA, 8, D_NEXT, 0);
	avail_add(0);
}

static void build_self_loop(void)
{
	put_desc(5, BUF_GPA, 8, D_WRITE | D_NEXT, 5);
	avail_add(5);
}

/* Every descriptor once, then back to the second. */
static void build_longest_loop(void)
{
	for (unsigned int i = 0; i < QSIZE; i++)
		put_desc(i, BUF_GPA, 8, D_NEXT, (i + 1) % QSIZE ? i + 1 : 1);
	avail_add(0);
}

static void build_too_many_segs(void)
{
	for (unsigned int i = 0; i <= OVC_VIRTQ_ELEM_MAX_SEGS; i++)
		put_desc_at(ITABLE_GPA, i, BUF_GPA, 8, D_NEXT, i + 1);
	put_desc_at(ITABLE_GPA, OVC_VIRTQ_ELEM_MAX_SEGS + 1, BUF_GPA, 8, 0, 0);
	put_desc(0, ITABLE_GPA, 16 * (OVC_VIRTQ_ELEM_MAX_SEGS + 2), D_INDIRECT, 0);
	avail_add(0);
}

static void build_too_many_bytes(void)
{
	put_desc(0, D_GPA, 600 * MiB, D_NEXT, 1);
	put_desc(1, D_GPA + 100 * MiB, 600 * MiB, 0, 0);
	avail_add(0);
}

static void build_out_of_ram(void)
{
	put_desc(0, HOLE_GPA, 8, 0, 0);
	avail_add(0);
}

static void build_wraps(void)
{
	put_desc(0, 0xfffffffffffff000ULL, 0x2000, 0, 0);
	avail_add(0);
}

static void build_past_region_end(void)
{
	put_desc(0, C_GPA + C_SIZE - 16, 32, D_WRITE, 0);
	avail_add(0);
}

static void build_second_buffer_out_of_ram(void)
{
	put_desc(0, BUF_GPA, 8, D_NEXT, 1);
	put_desc(1, B_GPA + B_SIZE, 8, D_WRITE, 0);
	avail_add(0);
}

static void build_straddle(void)
{
	put_desc(0, A_GPA + A_SIZE - 16, 32, 0, 0);
	avail_add(0);
}

static void build_straddle_into_hole(void)
{
	put_desc(0, A_GPA + A_SIZE - 16, 16 + B_SIZE + 16, 0, 0);
	avail_add(0);
}

static void build_nested_indirect(void)
{
	put_desc_at(ITABLE2_GPA, 0, BUF_GPA, 8, 0, 0);
	put_desc_at(ITABLE_GPA, 0, ITABLE2_GPA, 16, D_INDIRECT, 0);
	put_desc(0, ITABLE_GPA, 16, D_INDIRECT, 0);
	avail_add(0);
}

static void build_indirect_with_next(void)
{
	put_desc_at(ITABLE_GPA, 0, BUF_GPA, 8, 0, 0);
	put_desc(0, ITABLE_GPA, 16, D_INDIRECT | D_NEXT, 1);
	put_desc(1, BUF_GPA, 8, 0, 0);
	avail_add(0);
}

static void build_indirect_len_odd(void)
{
	put_desc_at(ITABLE_GPA, 0, BUF_GPA, 8, 0, 0);
	put_desc(0, ITABLE_GPA, 24, D_INDIRECT, 0);
	avail_add(0);
}

static void build_indirect_len_zero(void)
{
	put_desc(0, ITABLE_GPA, 0, D_INDIRECT, 0);
	avail_add(0);
}

static void build_indirect_huge(void)
{
	put_desc(0, D_GPA, 16 * (OVC_VIRTQ_MAX_SIZE + 1), D_INDIRECT, 0);
	avail_add(0);
}

static void build_indirect_out_of_ram(void)
{
	put_desc(0, HOLE_GPA, 32, D_INDIRECT, 0);
	avail_add(0);
}

static void build_indirect_straddle(void)
{
	put_desc(0, A_GPA + A_SIZE - 16, 32, D_INDIRECT, 0);
	avail_add(0);
}

static void build_indirect_valid(void)
{
	put_desc_at(ITABLE_GPA, 0, BUF_GPA, 8, 0, 0);
	put_desc(0, ITABLE_GPA, 16, D_INDIRECT, 0);
	avail_add(0);
}

static void build_indirect_loop(void)
{
	put_desc_at(ITABLE_GPA, 0, BUF_GPA, 8, D_NEXT, 1);
	put_desc_at(ITABLE_GPA, 1, BUF_GPA, 8, D_NEXT, 0);
	put_desc(0, ITABLE_GPA, 32, D_INDIRECT, 0);
	avail_add(0);
}

static void build_indirect_next_out_of_range(void)
{
	put_desc_at(ITABLE_GPA, 0, BUF_GPA, 8, D_NEXT, 2);
	put_desc_at(ITABLE_GPA, 1, BUF_GPA, 8, 0, 0);
	put_desc(0, ITABLE_GPA, 32, D_INDIRECT, 0);
	avail_add(0);
}

static void build_indirect_buffer_out_of_ram(void)
{
	put_desc_at(ITABLE_GPA, 0, HOLE_GPA, 8, 0, 0);
	put_desc(0, ITABLE_GPA, 16, D_INDIRECT, 0);
	avail_add(0);
}

static void build_write_then_read(void)
{
	put_desc(0, BUF_GPA, 8, D_WRITE | D_NEXT, 1);
	put_desc(1, BUF_GPA + 8, 8, 0, 0);
	avail_add(0);
}

static void build_write_then_read_indirect(void)
{
	put_desc_at(ITABLE_GPA, 0, BUF_GPA, 8, D_NEXT, 1);
	put_desc_at(ITABLE_GPA, 1, BUF_GPA, 8, D_WRITE | D_NEXT, 2);
	put_desc_at(ITABLE_GPA, 2, BUF_GPA, 8, 0, 0);
	put_desc(0, ITABLE_GPA, 48, D_INDIRECT, 0);
	avail_add(0);
}

static void build_avail_jump(void)
{
	put_desc(0, BUF_GPA, 8, 0, 0);
	set_avail_idx(QSIZE + 1);
}

static void build_avail_backwards(void)
{
	set_avail_idx(0xffff);
}

/* The last good chain is popped, then the ring moves past the limit. */
static void build_avail_jump_later(void)
{
	put_desc(0, BUF_GPA, 8, 0, 0);
	avail_add(0);
	kick(0);
	cr_assert_eq(dev.popped, 1);
	set_avail_idx(1 + QSIZE + 1);
}

#define ST(field) offsetof(struct ovc_virtio_stats, field)

static const struct chain_case chain_cases[] = {
	{ "head index out of range", build_head_out_of_range, ST(bad_desc_index) },
	{ "head index 0xffff", build_head_way_out_of_range, ST(bad_desc_index) },
	{ "next index out of range", build_next_out_of_range, ST(bad_desc_index) },
	{ "loop of two", build_loop, ST(chain_loop) },
	{ "self loop", build_self_loop, ST(chain_loop) },
	{ "loop through the whole table", build_longest_loop, ST(chain_loop) },
	{ "too many buffers", build_too_many_segs, ST(chain_too_long) },
	{ "too many bytes", build_too_many_bytes, ST(chain_too_long) },
	{ "buffer in a hole", build_out_of_ram, ST(desc_out_of_ram) },
	{ "buffer wraps the address space", build_wraps, ST(desc_out_of_ram) },
	{ "buffer past the end of RAM", build_past_region_end, ST(desc_out_of_ram) },
	{ "second buffer in a hole", build_second_buffer_out_of_ram, ST(desc_out_of_ram) },
	{ "buffer straddles two regions", build_straddle, ST(desc_straddle) },
	{ "buffer across two regions into a hole", build_straddle_into_hole,
	  ST(desc_out_of_ram) },
	{ "nested indirect", build_nested_indirect, ST(bad_indirect) },
	{ "indirect with NEXT", build_indirect_with_next, ST(bad_indirect) },
	{ "indirect length not a multiple of 16", build_indirect_len_odd, ST(bad_indirect) },
	{ "indirect length 0", build_indirect_len_zero, ST(bad_indirect) },
	{ "indirect table too big", build_indirect_huge, ST(bad_indirect) },
	{ "indirect table in a hole", build_indirect_out_of_ram, ST(bad_indirect) },
	{ "indirect table straddles", build_indirect_straddle, ST(bad_indirect) },
	{ "indirect not negotiated", build_indirect_valid, ST(bad_indirect),
	  F_VERSION_1 | F_EVENT_IDX },
	{ "loop in an indirect table", build_indirect_loop, ST(chain_loop) },
	{ "next out of an indirect table", build_indirect_next_out_of_range,
	  ST(bad_desc_index) },
	{ "indirect buffer in a hole", build_indirect_buffer_out_of_ram, ST(desc_out_of_ram) },
	{ "writable before readable", build_write_then_read, ST(bad_chain) },
	{ "writable before readable, indirect", build_write_then_read_indirect,
	  ST(bad_chain) },
	{ "avail idx jumps", build_avail_jump, ST(bad_avail_idx) },
	{ "avail idx jumps (EVENT_IDX)", build_avail_jump, ST(bad_avail_idx),
	  ALL_FEATURES },
	{ "avail idx goes backwards", build_avail_backwards, ST(bad_avail_idx) },
	{ "avail idx jumps after a good chain", build_avail_jump_later, ST(bad_avail_idx) },
};

ParameterizedTestParameters(virtio, hostile_chain)
{
	CASE_INDICES(chain_cases);
}

static uint64_t counter(const struct ovc_virtio_stats *st, size_t off)
{
	uint64_t v;

	memcpy(&v, (const uint8_t *)st + off, sizeof(v));
	return v;
}

ParameterizedTest(unsigned int *i, virtio, hostile_chain)
{
	const struct chain_case *c = &chain_cases[*i];
	struct ovc_virtq *vq = ovc_virtio_mmio_queue(m, 0);
	struct ovc_virtio_stats st;
	struct ovc_virtq_elem e;
	uint16_t used_before;
	unsigned int popped;

	start(c->features ? c->features : PLAIN_FEATURES);
	c->build();
	popped = dev.popped;
	used_before = used_idx();
	irqs = 0;
	kick(0);

	st = stats();
	cr_assert_eq(counter(&st, c->counter), 1, "%s: not counted", c->what);
	cr_assert_eq(st.queue_broken, 1, "%s", c->what);
	cr_assert_eq(bad_total(), 2, "%s: counted elsewhere too", c->what);
	cr_assert_eq(dev.last_pop, -EIO, "%s", c->what);
	cr_assert_eq(dev.popped, popped, "%s: a bad chain reached the device", c->what);
	cr_assert_eq(used_idx(), used_before, "%s", c->what);
	cr_assert_eq(rd(R_STATUS), ST_RUNNING | ST_NEEDS_RESET, "%s", c->what);
	cr_assert_eq(rd(R_ISR) & OVC_VIRTIO_INT_CONFIG, OVC_VIRTIO_INT_CONFIG, "%s", c->what);
	cr_assert_eq(irqs, 1, "%s", c->what);

	/* Stays broken: nothing more reaches the device or the rings. */
	kick(0);
	cr_assert_eq(dev.notify_calls, popped ? 2 : 1);
	cr_assert_eq(ovc_virtq_pop(vq, &e), -EIO);
	cr_assert_eq(stats().queue_broken, 1);
	cr_assert_eq(stats().notifies_ignored, 1);

	/* Until the driver resets and starts over. */
	memset(gpa_hva(DESC_GPA), 0, 0x3000);
	drv_avail_idx = 0;
	start(PLAIN_FEATURES);
	put_desc(0, BUF_GPA, 8, D_WRITE, 0);
	avail_add(0);
	kick(0);
	cr_assert_eq(dev.last_pop, 0, "%s", c->what);
	cr_assert_eq(used_idx(), 1, "%s", c->what);
}

/* ------------------------------------------------------------------------ */
/* Hostile guests: queue configuration */

struct queue_case {
	const char *what;
	uint32_t num;
	uint64_t desc, avail, used;
	bool before_features_ok;
};

static const struct queue_case queue_cases[] = {
	{ "size 0", 0, DESC_GPA, AVAIL_GPA, USED_GPA },
	{ "size not a power of two", 3, DESC_GPA, AVAIL_GPA, USED_GPA },
	{ "size 12", 12, DESC_GPA, AVAIL_GPA, USED_GPA },
	{ "size above max", 2 * QMAX, DESC_GPA, AVAIL_GPA, USED_GPA },
	{ "size 65536", 65536, DESC_GPA, AVAIL_GPA, USED_GPA },
	{ "size 0xffffffff", 0xffffffff, DESC_GPA, AVAIL_GPA, USED_GPA },
	{ "desc misaligned", QSIZE, DESC_GPA + 8, AVAIL_GPA, USED_GPA },
	{ "avail misaligned", QSIZE, DESC_GPA, AVAIL_GPA + 1, USED_GPA },
	{ "used misaligned", QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA + 2 },
	{ "desc in a hole", QSIZE, HOLE_GPA, AVAIL_GPA, USED_GPA },
	{ "avail in a hole", QSIZE, DESC_GPA, HOLE_GPA, USED_GPA },
	{ "used in a hole", QSIZE, DESC_GPA, AVAIL_GPA, HOLE_GPA },
	{ "desc far beyond RAM", QSIZE, 0xdead00000000ULL, AVAIL_GPA, USED_GPA },
	{ "used runs past the end of RAM", QSIZE, DESC_GPA, AVAIL_GPA, C_GPA + C_SIZE - 64 },
	{ "avail straddles two regions", QSIZE, DESC_GPA, A_GPA + A_SIZE - 8, USED_GPA },
	{ "desc at the top of the address space", QSIZE, 0xfffffffffffffff0ULL, AVAIL_GPA,
	  USED_GPA },
	{ "before FEATURES_OK", QSIZE, DESC_GPA, AVAIL_GPA, USED_GPA, true },
};

ParameterizedTestParameters(virtio, hostile_queue)
{
	CASE_INDICES(queue_cases);
}

ParameterizedTest(unsigned int *i, virtio, hostile_queue)
{
	const struct queue_case *c = &queue_cases[*i];
	struct ovc_virtio_stats st;

	if (c->before_features_ok) {
		wr(R_STATUS, ST_ACK);
		wr(R_STATUS, ST_ACK | ST_DRIVER);
	} else {
		cr_assert(negotiate(PLAIN_FEATURES));
	}
	queue_config(0, c->num, c->desc, c->avail, c->used);
	cr_assert_eq(rd(R_QUEUE_READY), 0, "%s: accepted", c->what);
	st = stats();
	cr_assert_eq(st.bad_queue_config, 1, "%s", c->what);
	cr_assert_eq(bad_total(), 1, "%s", c->what);
	cr_assert_eq(rd(R_STATUS) & ST_NEEDS_RESET, ST_NEEDS_RESET, "%s", c->what);
	cr_assert_eq(irqs, 0, "no interrupt before DRIVER_OK");

	/* DRIVER_OK on a broken device: no start, but the driver is told. */
	if (!c->before_features_ok) {
		wr(R_STATUS, ST_RUNNING);
		cr_assert_eq(dev.driver_ok_calls, 0);
		cr_assert_eq(rd(R_ISR), OVC_VIRTIO_INT_CONFIG);
		cr_assert_eq(irqs, 1);
	}
	start(PLAIN_FEATURES);
	cr_assert_eq(dev.driver_ok_calls, 1);
}

/* ------------------------------------------------------------------------ */
/* Hostile guests: register accesses */

struct reg_case {
	const char *what;
	bool write;
	uint64_t offset;
	unsigned int len;
	uint64_t value;
};

static const struct reg_case reg_cases[] = {
	{ "2-byte read of a register", false, R_MAGIC, 2 },
	{ "1-byte read of a register", false, R_MAGIC + 1, 1 },
	{ "8-byte read of registers", false, R_MAGIC, 8 },
	{ "unaligned read", false, R_VERSION + 2, 4 },
	{ "1-byte status write", true, R_STATUS, 1, ST_ACK },
	{ "8-byte status write", true, R_STATUS, 8, ST_ACK },
	{ "unaligned status write", true, R_STATUS + 1, 4, ST_ACK },
	{ "read of write-only DeviceFeaturesSel", false, R_DEV_FEAT_SEL, 4 },
	{ "read of write-only QueueNotify", false, R_QUEUE_NOTIFY, 4 },
	{ "read of write-only QueueDescLow", false, R_QUEUE_DESC, 4 },
	{ "write of read-only MagicValue", true, R_MAGIC, 4, 0 },
	{ "write of read-only InterruptStatus", true, R_ISR, 4, 3 },
	{ "write of read-only ConfigGeneration", true, R_CONFIG_GEN, 4, 7 },
	{ "QueueReset, not offered", false, 0x0c0, 4 },
	{ "legacy QueuePFN", true, 0x040, 4, 1 },
	{ "hole in the register map", false, 0x0f8, 4 },
	{ "config read past config_size", false, R_CONFIG + CONFIG_SIZE, 4 },
	{ "config read across the end of the window", false, OVC_VIRTIO_MMIO_WINDOW - 1, 2 },
	{ "read past the window", false, OVC_VIRTIO_MMIO_WINDOW, 4 },
	{ "read at offset 2^64 - 1", false, UINT64_MAX, 1 },
	{ "read at offset 2^64 - 8", false, UINT64_MAX - 7, 8 },
	{ "config write past config_size", true, R_CONFIG + CONFIG_SIZE - 1, 2, 0xffff },
	{ "write at offset 2^64 - 4", true, UINT64_MAX - 3, 4, 1 },
	{ "QueueReady 2", true, R_QUEUE_READY, 4, 2 },
	{ "notify of a queue that does not exist", true, R_QUEUE_NOTIFY, 4, 99 },
};

ParameterizedTestParameters(virtio, hostile_register)
{
	CASE_INDICES(reg_cases);
}

ParameterizedTest(unsigned int *i, virtio, hostile_register)
{
	const struct reg_case *c = &reg_cases[*i];
	uint8_t before[16], after[16];
	uint64_t data = htole64(c->value);

	cr_assert(negotiate(PLAIN_FEATURES));
	memcpy(before, dev.config, sizeof(before));
	if (c->write) {
		cr_assert_eq(ovc_virtio_mmio_write(m, c->offset, &data, c->len), 0);
	} else {
		data = 0x5555555555555555ULL;
		cr_assert_eq(ovc_virtio_mmio_read(m, c->offset, &data, c->len), 0);
		cr_assert_eq(data & (c->len == 8 ? UINT64_MAX : (1ULL << (8 * c->len)) - 1), 0,
			     "%s: read 0x%llx", c->what, (unsigned long long)data);
	}
	cr_assert_eq(stats().bad_register_access, 1, "%s: not counted", c->what);
	cr_assert_eq(bad_total(), 1, "%s", c->what);
	cr_assert_eq(rd(R_STATUS), ST_ACK | ST_DRIVER | ST_FEATURES_OK, "%s", c->what);
	cr_assert_eq(rd(R_ISR), 0, "%s", c->what);
	memcpy(after, dev.config, sizeof(after));
	cr_assert_arr_eq(before, after, sizeof(before), "%s", c->what);
	cr_assert_eq(dev.notify_calls, 0);
	/* Still a working device. */
	setup_queue0();
	wr(R_STATUS, ST_RUNNING);
	cr_assert_eq(dev.driver_ok_calls, 1);
}

/* A queue register with QueueSel naming no queue. */
Test(virtio, queue_sel_out_of_range)
{
	cr_assert(negotiate(PLAIN_FEATURES));
	wr(R_QUEUE_SEL, 7);
	wr(R_QUEUE_NUM, 4);
	wr(R_QUEUE_DESC, 0);
	wr(R_QUEUE_READY, 1);
	cr_assert_eq(rd(R_QUEUE_READY), 0);
	cr_assert_eq(rd(R_QUEUE_NUM_MAX), 0);
	cr_assert_eq(stats().bad_register_access, 4);
	cr_assert_eq(rd(R_STATUS) & ST_NEEDS_RESET, 0);
}

/* A guest rewriting a descriptor after the device read it changes nothing we hold. */
Test(virtio, descriptor_read_once)
{
	struct ovc_virtq *vq = ovc_virtio_mmio_queue(m, 0);
	struct ovc_virtq_elem e;

	start(PLAIN_FEATURES);
	dev.manual = true;
	put_desc(0, BUF_GPA, 8, D_WRITE, 0);
	avail_add(0);
	cr_assert_eq(ovc_virtq_pop(vq, &e), 1);
	put_desc(0, HOLE_GPA, 0xffffffff, D_WRITE, 0);
	cr_assert_eq(e.in[0].iov_base, buf(0));
	cr_assert_eq(e.in[0].iov_len, 8);
	cr_assert_eq(ovc_virtq_push(vq, &e, 8), 0);
	cr_assert_eq(bad_total(), 0);
}
