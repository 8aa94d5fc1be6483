// SPDX-License-Identifier: MIT
/* tests/fuzz/fuzz-balloon.c: libFuzzer target: a hostile guest driving the virtio-balloon through ovc_balloon_mmio_access(). */
/*
 * One host and one VM (8 MiB at gpa 0 and 1 MiB right after it, so guest
 * buffers can straddle two ranges) live for the whole run. Each input gets
 * a fresh balloon, configured by the input's first bytes, on RAM put back
 * to all-ZERO pages, and then drives it with a byte code: register reads
 * and writes of any offset and width, descriptors, avail ring entries, PFN
 * lists and raw bytes written anywhere in guest RAM, notifications,
 * manager ticks, targets, host-side page accesses. Shortcuts (a whole
 * handshake, a whole request) let the fuzzer reach deep states quickly.
 *
 * The device must never crash, hang, corrupt memory outside guest RAM
 * (ASan), hit undefined behaviour (UBSan, fatal), or break its invariants
 * (checked after every input). The one thing held back is the amount of
 * work: a guest can legitimately make one notification process up to
 * 256 chains of 1 GiB of PFNs each (see long_request_stalls_host in
 * tests/test-balloon.c), so a notification whose rings add up to more
 * than WORK_BUDGET bytes of buffers is not delivered.
 *
 * FUZZ_BALLOON_SEEDS=<dir> makes the binary write its seed inputs to <dir>
 * and exit: that is how tests/fuzz/corpus/ was made.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <ovc/ovc.h>
#include "balloon/balloon-internal.h"
#include "host/host-internal.h"
#include "tests/kit/vring.h"

#define MiB (1ULL << 20)
#define PAGE OVC_PAGE_SIZE

#define LO_SIZE (8 * MiB)
#define HI_GPA LO_SIZE
#define HI_SIZE (1 * MiB)
#define RAM_TOTAL (LO_SIZE + HI_SIZE)
#define RAM_PAGES (RAM_TOTAL / PAGE)

/* Where the shortcuts put things (the byte code may point anywhere). */
#define RING_GPA (6 * MiB)
#define QUEUE_GPA(q) (RING_GPA + (uint64_t)(q) * 0x4000)	/* desc, +0x1000 avail, +0x2000 used */
#define ITABLE_GPA(q) (RING_GPA + 0x10000 + (uint64_t)(q) * 0x1000)
#define DATA_GPA (RING_GPA + 0x20000)
#define DATA_SIZE (LO_SIZE - DATA_GPA + HI_SIZE)	/* runs on into the upper range */

#define NQ 4
#define WORK_BUDGET (4 * MiB)
#define CHAIN_MAX OVC_VIRTQ_CHAIN_MAX_BYTES

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz-balloon: %s:%d: %s\n", __FILE__,  \
				__LINE__, #cond);                              \
			abort();                                               \
		}                                                              \
	} while (0)

static struct ovc_host *host;
static struct ovc_vm *vm;
static uint8_t *lo, *hi;
static unsigned long irqs;

/* The current input's balloon and what the shortcuts believe about its queues. */
static struct ovc_balloon *bln;
static uint16_t qsize[NQ], avail_shadow[NQ];

/* ------------------------------------------------------------------------ */
/* The input */

struct input {
	const uint8_t *p;
	size_t left;
};

static uint64_t take(struct input *in, unsigned int bytes)
{
	uint64_t v = 0;
	unsigned int i;

	for (i = 0; i < bytes && in->left; i++, in->left--)
		v |= (uint64_t)*in->p++ << (8 * i);
	return v;
}

#define take8(in) ((uint8_t)take(in, 1))
#define take16(in) ((uint16_t)take(in, 2))
#define take32(in) ((uint32_t)take(in, 4))
#define take64(in) take(in, 8)

/* ------------------------------------------------------------------------ */
/* Guest RAM */

static uint8_t *hva_of(uint64_t gpa, uint64_t len)
{
	if (gpa < LO_SIZE && len <= LO_SIZE - gpa)
		return lo + gpa;
	if (gpa >= HI_GPA && gpa - HI_GPA < HI_SIZE && len <= HI_SIZE - (gpa - HI_GPA))
		return hi + (gpa - HI_GPA);
	return NULL;
}

/* Driver writes: only whole bytes inside one range; anything else is dropped. */
static void mem_write(uint64_t gpa, const void *src, size_t len)
{
	uint8_t *p = hva_of(gpa, len);

	if (p)
		memcpy(p, src, len);
}

static void put16(uint64_t gpa, uint16_t v)
{
	uint8_t b[2];

	vring_put16(b, v);
	mem_write(gpa, b, sizeof(b));
}

static void put32(uint64_t gpa, uint32_t v)
{
	uint8_t b[4];

	vring_put32(b, v);
	mem_write(gpa, b, sizeof(b));
}

static void put_desc(uint64_t table, unsigned int i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	uint8_t d[16];

	vring_put_desc(d, addr, len, flags, next);
	mem_write(table + 16ULL * i, d, sizeof(d));
}

/* Every page back to ZERO, so that an input finds the RAM it would on its own. */
static void ram_reset(void)
{
	struct ovc_xact *x = malloc(sizeof(*x));
	uint64_t gfn = 0;

	CHECK(x);
	while (gfn < RAM_PAGES) {
		uint64_t limit;
		unsigned int n = 0, i;

		while (gfn < RAM_PAGES &&
		       ovc_vm_page_state(vm, gfn * PAGE, NULL) == OVC_PAGE_ZERO)
			gfn++;
		/* A run may not cross from one range into the next. */
		limit = gfn < HI_GPA / PAGE ? HI_GPA / PAGE : RAM_PAGES;
		while (gfn + n < limit && n < OVC_XACT_MAX_PAGES &&
		       ovc_vm_page_state(vm, (gfn + n) * PAGE, NULL) != OVC_PAGE_ZERO)
			n++;
		if (!n)
			continue;
		CHECK(ovc__xact_begin(x, vm->ram, gfn, n, OVC_XACT_WAIT) == 0);
		for (i = 0; i < n; i++)
			ovc__xact_set(x, i, OVC_PAGE_ZERO, 0, NULL);
		CHECK(ovc__xact_commit(x) == 0);
		gfn += n;
	}
	free(x);
}

/* ------------------------------------------------------------------------ */
/* The work a notification could cause, bounded from above */

static uint64_t desc_len(const uint8_t *d)
{
	uint32_t l;

	memcpy(&l, d + 8, 4);
	return le32toh(l);
}

static uint64_t chain_bound(const struct ovc_virtq *vq)
{
	uint64_t sum = 0;
	unsigned int i, j;

	for (i = 0; i < vq->size && sum < CHAIN_MAX; i++) {
		const uint8_t *d = vq->desc + 16 * i;
		uint16_t flags;
		uint64_t addr;

		memcpy(&flags, d + 12, 2);
		memcpy(&addr, d, 8);
		if (!(le16toh(flags) & 4)) {
			sum += desc_len(d);
			continue;
		}
		{
			uint64_t tlen = desc_len(d);
			const uint8_t *t = hva_of(le64toh(addr), tlen);

			/* Past 2 * OVC_VIRTQ_ELEM_MAX_SEGS buffers a chain is refused unread. */
			for (j = 0; t && j < tlen / 16 && j <= 2 * OVC_VIRTQ_ELEM_MAX_SEGS &&
				    sum < CHAIN_MAX; j++)
				sum += desc_len(t + 16 * j);
		}
	}
	return sum < CHAIN_MAX ? sum : CHAIN_MAX;
}

/* Bytes of buffers every ready queue's pending chains could hand the device. */
static bool within_budget(void)
{
	struct ovc_virtio_mmio *m = ovc_balloon_transport(bln);
	uint64_t total = 0;
	unsigned int q;

	for (q = 0; q < NQ; q++) {
		struct ovc_virtq *vq = ovc_virtio_mmio_queue(m, q);
		uint16_t idx, pending;

		if (!vq || !vq->ready || vq->broken)
			continue;
		memcpy(&idx, vq->avail + 2, 2);
		pending = (uint16_t)(le16toh(idx) - vq->last_avail);
		if (pending > vq->size)
			continue;	/* the queue breaks before any work */
		total += pending * chain_bound(vq);
		if (total > WORK_BUDGET)
			return false;
	}
	return true;
}

/* ------------------------------------------------------------------------ */
/* Device access */

static void irq(void *opaque)
{
	(*(unsigned long *)opaque)++;
}

/* One guest access; false when the input is over budget and should stop. */
static bool access_mmio(uint64_t off, uint64_t val, unsigned int len, bool is_write)
{
	uint64_t data = htole64(val);
	bool valid = len == 1 || len == 2 || len == 4 || len == 8;
	int ret;

	if (is_write && len == 4 && (off == R_QUEUE_NOTIFY || off == R_STATUS) &&
	    !within_budget())
		return false;
	ret = ovc_balloon_mmio_access(bln, off, &data, len, is_write);
	CHECK(ret == (valid ? 0 : -EINVAL));
	return true;
}

static bool wr(uint64_t off, uint32_t v)
{
	return access_mmio(off, v, 4, true);
}

static uint32_t rd(uint64_t off)
{
	uint32_t v = 0;

	CHECK(ovc_balloon_mmio_access(bln, off, &v, 4, false) == 0);
	return le32toh(v);
}

/*
 * The whole handshake, queues of @size: the features of @f the device
 * offers (plus VERSION_1), or with @raw exactly @f, which it may refuse.
 */
static bool handshake(uint64_t f, uint16_t size, bool raw)
{
	unsigned int q;

	if (!wr(R_STATUS, 0))
		return false;
	if (!raw) {
		uint64_t offered;

		wr(R_DEV_FEAT_SEL, 0);
		offered = rd(R_DEV_FEAT);
		wr(R_DEV_FEAT_SEL, 1);
		offered |= (uint64_t)rd(R_DEV_FEAT) << 32;
		f = (f & offered) | OVC_VIRTIO_FEATURE(OVC_VIRTIO_F_VERSION_1);
	}
	wr(R_STATUS, 1);
	wr(R_STATUS, 3);
	wr(R_DRV_FEAT_SEL, 0);
	wr(R_DRV_FEAT, (uint32_t)f);
	wr(R_DRV_FEAT_SEL, 1);
	wr(R_DRV_FEAT, (uint32_t)(f >> 32));
	wr(R_STATUS, 0xb);
	for (q = 0; q < NQ; q++) {
		uint64_t base = QUEUE_GPA(q);

		memset(hva_of(base, 0x3000), 0, 0x3000);
		qsize[q] = size;
		avail_shadow[q] = 0;
		wr(R_QUEUE_SEL, q);
		wr(R_QUEUE_NUM, size);
		wr(R_QUEUE_DESC, (uint32_t)base);
		wr(R_QUEUE_DESC + 4, 0);
		wr(R_QUEUE_DRIVER, (uint32_t)(base + 0x1000));
		wr(R_QUEUE_DRIVER + 4, 0);
		wr(R_QUEUE_DEVICE, (uint32_t)(base + 0x2000));
		wr(R_QUEUE_DEVICE + 4, 0);
		wr(R_QUEUE_READY, 1);
	}
	return wr(R_STATUS, 0xf);
}

static void avail_add(unsigned int q, uint16_t head)
{
	uint16_t size = qsize[q] ? qsize[q] : 1;

	put16(QUEUE_GPA(q) + 0x1000 + 4 + 2 * (avail_shadow[q] % size), head);
	avail_shadow[q]++;
	put16(QUEUE_GPA(q) + 0x1000 + 2, avail_shadow[q]);
}

/* ------------------------------------------------------------------------ */
/* The byte code */

enum op {
	OP_WRITE32,	/* u8 offset/4, u32 value */
	OP_READ32,	/* u8 offset/4 */
	OP_ACCESS,	/* u16 offset, u8 width code|write, u64 value */
	OP_DESC,	/* u8 queue (4: indirect tables), u8 index, u8 mode, addr, len, flags, next */
	OP_AVAIL,	/* u8 queue, u16 head */
	OP_AVAIL_RAW,	/* u8 queue|field, u16 value */
	OP_MEM,		/* u24 gpa, u8 n, n bytes */
	OP_PFNS,	/* u16 offset/4, u8 n, u32 base, u8 stride (0x80: n u32 from input) */
	OP_NOTIFY,	/* u8 queue (any value) */
	OP_TICK,
	OP_TARGET,	/* u32 pages */
	OP_HANDSHAKE,	/* u32 features, u8 size code|raw */
	OP_SUBMIT,	/* u8 queue, u8 kind, u8 head, per buffer: u16 offset/4, u16 len */
	OP_STATS,	/* u8 entries, per entry: u8 tag, u32 value */
	OP_TOUCH,	/* u16 page, u8 write, u64 value */
	OP_QUERY,
	OP_NR
};

static bool op_desc(struct input *in)
{
	unsigned int q = take8(in) % (NQ + 1), i = take8(in), mode = take8(in);
	uint64_t table = q < NQ ? QUEUE_GPA(q) : ITABLE_GPA(0), addr;
	uint32_t len;
	uint16_t flags, next;

	addr = mode & 1 ? take64(in) : DATA_GPA + 4ULL * take16(in);
	len = mode & 2 ? take32(in) : take16(in);
	flags = mode & 4 ? take16(in) : take8(in) & 7;
	next = mode & 8 ? take16(in) : take8(in);
	put_desc(table, i, addr, len, flags, next);
	return true;
}

static bool op_avail_raw(struct input *in)
{
	unsigned int v = take8(in), q = v % NQ, field = (v / NQ) % 3;
	uint16_t val = take16(in);
	uint64_t avail = QUEUE_GPA(q) + 0x1000;

	if (field == 0)
		put16(avail, val);				/* flags */
	else if (field == 1)
		put16(avail + 2, avail_shadow[q] = val);	/* idx */
	else
		put16(avail + 4 + 2ULL * (qsize[q] ? qsize[q] : 256), val);	/* used_event */
	return true;
}

static bool op_mem(struct input *in)
{
	uint64_t gpa = take(in, 3) % RAM_TOTAL;
	uint8_t buf[64];
	unsigned int n = take8(in) % (sizeof(buf) + 1), i;

	for (i = 0; i < n; i++)
		buf[i] = take8(in);
	mem_write(gpa, buf, n);
	return true;
}

static bool op_pfns(struct input *in)
{
	uint64_t gpa = DATA_GPA + 4ULL * take16(in);
	unsigned int n = take8(in), i;
	uint32_t base = take32(in);
	int8_t stride = (int8_t)take8(in);

	for (i = 0; i < n; i++)
		put32(gpa + 4ULL * i, stride == INT8_MIN ? take32(in) : base + (uint32_t)(stride * (int)i));
	return true;
}

static bool op_submit(struct input *in)
{
	unsigned int q = take8(in) % NQ, kind = take8(in), head = take8(in);
	unsigned int n = 1 + kind % 4, i;
	bool indirect = kind & 0x10;
	uint16_t size = qsize[q] ? qsize[q] : 1;

	head %= size;
	for (i = 0; i < n; i++) {
		uint64_t gpa = DATA_GPA + 4ULL * take16(in);
		uint32_t len = take16(in);
		uint16_t flags = (uint16_t)((i + 1 < n ? 1 : 0) | (kind & (0x20 << i) ? 2 : 0));

		if (indirect)
			put_desc(ITABLE_GPA(q), i, gpa, len, flags, (uint16_t)(i + 1));
		else
			put_desc(QUEUE_GPA(q), (head + i) % size, gpa, len, flags,
				 (uint16_t)((head + i + 1) % size));
	}
	if (indirect)
		put_desc(QUEUE_GPA(q), head, ITABLE_GPA(q), 16 * n, 4, 0);
	avail_add(q, (uint16_t)head);
	return wr(R_QUEUE_NOTIFY, q);
}

static bool op_stats(struct input *in)
{
	unsigned int n = take8(in) % 80, i;
	uint64_t gpa = DATA_GPA + 0x10000;
	uint16_t size = qsize[2] ? qsize[2] : 1;
	uint16_t head = avail_shadow[2] % size;

	for (i = 0; i < n; i++) {
		uint16_t tag = htole16(take8(in) % 20);
		uint64_t val = htole64(take32(in));

		mem_write(gpa + 10ULL * i, &tag, 2);
		mem_write(gpa + 10ULL * i + 2, &val, 8);
	}
	put_desc(QUEUE_GPA(2), head, gpa, 10 * n, 0, 0);
	avail_add(2, head);
	return wr(R_QUEUE_NOTIFY, 2);
}

static bool op_touch(struct input *in)
{
	uint64_t page = take16(in) % RAM_PAGES, val;
	bool write = take8(in) & 1;
	uint8_t *p = hva_of(page * PAGE, PAGE);

	val = take64(in);
	if (write)
		memcpy(p, &val, sizeof(val));
	else
		*(volatile uint8_t *)p;
	return true;
}

static void check_invariants(void)
{
	struct ovc_balloon_stats st;
	struct ovc_virtio_stats vs;
	struct ovc_mem_stats ms;
	uint64_t sum = 0;
	int i;

	CHECK(ovc_balloon_get_stats(bln, &st) == 0);
	CHECK(ovc_virtio_mmio_get_stats(ovc_balloon_transport(bln), &vs) == 0);
	CHECK(ovc_vm_get_mem_stats(vm, &ms) == 0);
	for (i = 0; i < OVC_PAGE_NR_STATES; i++)
		sum += ms.pages[i];
	CHECK(sum == RAM_PAGES);
	CHECK(ms.busy_pages == 0);
	CHECK(st.ballooned_pages == ms.pages[OVC_PAGE_BALLOONED]);
	CHECK(st.target_pages <= RAM_PAGES);
	CHECK(st.num_pages <= RAM_PAGES);
	CHECK((st.stats_valid >> OVC_BALLOON_S_NR) == 0);
	CHECK(ms.faults[OVC_FAULT_ERROR] == 0);
}

/* Run one input against a fresh balloon. */
static void run(const uint8_t *data, size_t size)
{
	struct input in = { .p = data, .left = size };
	struct ovc_balloon_config cfg;
	uint8_t h0;

	ovc_balloon_config_init(&cfg);
	h0 = take8(&in);
	cfg.features = (h0 & 1 ? OVC_VIRTIO_FEATURE(OVC_BALLOON_F_MUST_TELL_HOST) : 0) |
		       (h0 & 2 ? OVC_VIRTIO_FEATURE(OVC_BALLOON_F_STATS_VQ) : 0) |
		       (h0 & 4 ? OVC_VIRTIO_FEATURE(OVC_BALLOON_F_DEFLATE_ON_OOM) : 0) |
		       (h0 & 8 ? OVC_VIRTIO_FEATURE(OVC_BALLOON_F_PAGE_REPORTING) : 0);
	cfg.max_fraction = take8(&in) / 255.0;
	cfg.step_bytes = (uint64_t)take8(&in) * 16 * PAGE;
	cfg.stall_ms = take8(&in);
	cfg.stats_period_ms = take8(&in);
	if (h0 & 0x80) {
		/* What the device must refuse. */
		struct ovc_balloon_config bad = cfg;

		bad.features |= OVC_VIRTIO_FEATURE(h0 & 0x40 ? OVC_BALLOON_F_FREE_PAGE_HINT :
						   OVC_BALLOON_F_PAGE_POISON);
		CHECK(!ovc_vm_add_balloon(vm, &bad) && errno == EINVAL);
		bad = cfg;
		bad.max_fraction = 1.0 + cfg.max_fraction + 1e-9;
		CHECK(!ovc_vm_add_balloon(vm, &bad) && errno == EINVAL);
	}

	ram_reset();
	irqs = 0;
	memset(qsize, 0, sizeof(qsize));
	memset(avail_shadow, 0, sizeof(avail_shadow));
	bln = ovc_vm_add_balloon(vm, &cfg);
	CHECK(bln);
	CHECK(ovc_balloon_mmio(bln, irq, &irqs) == 0);

	while (in.left) {
		bool go = true;

		switch (take8(&in) % OP_NR) {
		case OP_WRITE32: {
			uint64_t off = 4ULL * take8(&in);

			go = wr(off, take32(&in));
			break;
		}
		case OP_READ32:
			(void)rd(4ULL * take8(&in));
			break;
		case OP_ACCESS: {
			static const unsigned int widths[] = { 1, 2, 4, 8, 4, 4, 3, 0 };
			uint64_t off = take16(&in) & 0x3ff;
			uint8_t w = take8(&in);
			uint64_t val = take64(&in);

			go = access_mmio(off, val, widths[w % 8], w & 0x80);
			break;
		}
		case OP_DESC:
			go = op_desc(&in);
			break;
		case OP_AVAIL: {
			unsigned int q = take8(&in) % NQ;

			avail_add(q, take16(&in));
			break;
		}
		case OP_AVAIL_RAW:
			go = op_avail_raw(&in);
			break;
		case OP_MEM:
			go = op_mem(&in);
			break;
		case OP_PFNS:
			go = op_pfns(&in);
			break;
		case OP_NOTIFY:
			go = wr(R_QUEUE_NOTIFY, take8(&in));
			break;
		case OP_TICK:
			ovc__host_tick(host);
			break;
		case OP_TARGET:
			CHECK(ovc_balloon_set_target(bln, (uint64_t)take32(&in) * PAGE) == 0);
			break;
		case OP_HANDSHAKE: {
			uint32_t f = take32(&in);
			uint8_t code = take8(&in);

			go = handshake(((uint64_t)f & 0x3fffffff) | ((uint64_t)(f >> 30) << 32),
				       (uint16_t)(1u << (code % 10)), code & 0x80);
			break;
		}
		case OP_SUBMIT:
			go = op_submit(&in);
			break;
		case OP_STATS:
			go = op_stats(&in);
			break;
		case OP_TOUCH:
			go = op_touch(&in);
			break;
		case OP_QUERY:
			check_invariants();
			break;
		}
		if (!go)
			break;
	}
	check_invariants();
	CHECK(ovc_balloon_remove(bln) == 0);
	bln = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run(data, size);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Seeds */

struct seed {
	uint8_t b[512];
	size_t n;
};

static void emit(struct seed *s, uint64_t v, unsigned int bytes)
{
	unsigned int i;

	for (i = 0; i < bytes && s->n < sizeof(s->b); i++)
		s->b[s->n++] = (uint8_t)(v >> (8 * i));
}

static void seed_header(struct seed *s, uint8_t features, uint8_t stall, uint8_t period)
{
	s->n = 0;
	emit(s, features, 1);
	emit(s, 166, 1);	/* max_fraction 0.65 */
	emit(s, 16, 1);		/* step 1 MiB */
	emit(s, stall, 1);
	emit(s, period, 1);
}

static void seed_handshake(struct seed *s, uint32_t features, uint8_t size_code)
{
	emit(s, OP_HANDSHAKE, 1);
	emit(s, features, 4);
	emit(s, size_code, 1);
}

static void seed_pfns(struct seed *s, uint16_t off4, uint8_t n, uint32_t base, int8_t stride)
{
	emit(s, OP_PFNS, 1);
	emit(s, off4, 2);
	emit(s, n, 1);
	emit(s, base, 4);
	emit(s, (uint8_t)stride, 1);
}

static void seed_submit(struct seed *s, uint8_t q, uint8_t kind, uint8_t head,
			uint16_t off4, uint16_t len)
{
	unsigned int i;

	emit(s, OP_SUBMIT, 1);
	emit(s, q, 1);
	emit(s, kind, 1);
	emit(s, head, 1);
	for (i = 0; i < 1u + kind % 4; i++) {
		emit(s, off4 + 64 * i, 2);
		emit(s, len, 2);
	}
}

static void write_seed(const char *dir, const char *name, const struct seed *s)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	CHECK(f);
	CHECK(fwrite(s->b, 1, s->n, f) == s->n);
	CHECK(fclose(f) == 0);
}

static void write_seeds(const char *dir)
{
	const uint32_t all = 0x27 | 3u << 28 | 1u << 30;	/* device bits, INDIRECT, EVENT_IDX, VERSION_1 */
	struct seed s;

	mkdir(dir, 0755);

	/* Inflate a run and scattered pages, deflate them, touch one. */
	seed_header(&s, 0x0f, 200, 0);
	seed_handshake(&s, all, 8);
	emit(&s, OP_TOUCH, 1), emit(&s, 5, 2), emit(&s, 1, 1), emit(&s, 0x1122334455667788ULL, 8);
	seed_pfns(&s, 0, 16, 3, 1);
	seed_pfns(&s, 16, 8, 1000, 17);
	seed_submit(&s, 0, 1, 0, 0, 96);
	emit(&s, OP_TOUCH, 1), emit(&s, 1000, 2), emit(&s, 0, 1), emit(&s, 0, 8);
	seed_submit(&s, 1, 0x11, 3, 0, 64);
	emit(&s, OP_QUERY, 1);
	write_seed(dir, "inflate-deflate", &s);

	/* Hostile PFNs: out of RAM, duplicates, odd lengths, writable buffers. */
	seed_header(&s, 0x0f, 200, 0);
	seed_handshake(&s, all, 6);
	seed_pfns(&s, 0, 8, 0xfffffff8, 1);
	seed_pfns(&s, 8, 8, 2300, 1);
	seed_submit(&s, 0, 0x03, 0, 0, 33);
	seed_submit(&s, 0, 0x21, 5, 0, 64);
	seed_submit(&s, 1, 0x10, 9, 8, 30);
	write_seed(dir, "hostile-pfns", &s);

	/* Statistics, ticks, a target, `actual` following it. */
	seed_header(&s, 0x0f, 5, 1);
	seed_handshake(&s, all, 4);
	emit(&s, OP_STATS, 1), emit(&s, 17, 1);
	for (unsigned int i = 0; i < 17; i++)
		emit(&s, i == 16 ? 99 : i, 1), emit(&s, 1000 + i, 4);
	emit(&s, OP_TARGET, 1), emit(&s, 600, 4);
	emit(&s, OP_TICK, 1);
	emit(&s, OP_TICK, 1);
	emit(&s, OP_READ32, 1), emit(&s, 0x100 / 4, 1);
	emit(&s, OP_WRITE32, 1), emit(&s, 0x104 / 4, 1), emit(&s, 256, 4);
	emit(&s, OP_TICK, 1);
	emit(&s, OP_STATS, 1), emit(&s, 2, 1), emit(&s, 4, 1), emit(&s, 7, 4),
		emit(&s, 5, 1), emit(&s, 9, 4);
	emit(&s, OP_WRITE32, 1), emit(&s, 0x060 / 4 + 1, 1), emit(&s, 3, 4);
	write_seed(dir, "stats-controller", &s);

	/* Free page reporting, aligned and not, across the two ranges. */
	seed_header(&s, 0x0a, 200, 0);
	seed_handshake(&s, all, 5);
	emit(&s, OP_TOUCH, 1), emit(&s, 200, 2), emit(&s, 1, 1), emit(&s, 42, 8);
	emit(&s, OP_DESC, 1), emit(&s, 3, 1), emit(&s, 0, 1), emit(&s, 1 | 2, 1),
		emit(&s, 200 * PAGE, 8), emit(&s, 4 * PAGE, 4), emit(&s, 2, 1), emit(&s, 0, 1);
	emit(&s, OP_AVAIL, 1), emit(&s, 3, 1), emit(&s, 0, 2);
	emit(&s, OP_NOTIFY, 1), emit(&s, 3, 1);
	emit(&s, OP_DESC, 1), emit(&s, 3, 1), emit(&s, 1, 1), emit(&s, 1 | 2, 1),
		emit(&s, HI_GPA - PAGE, 8), emit(&s, 2 * PAGE, 4), emit(&s, 0, 1), emit(&s, 0, 1);
	emit(&s, OP_AVAIL, 1), emit(&s, 3, 1), emit(&s, 1, 2);
	emit(&s, OP_NOTIFY, 1), emit(&s, 3, 1);
	write_seed(dir, "report", &s);

	/* The handshake register by register, with wrong steps and odd widths. */
	seed_header(&s, 0x83, 200, 0);
	emit(&s, OP_WRITE32, 1), emit(&s, 0x070 / 4, 1), emit(&s, 1, 4);
	emit(&s, OP_WRITE32, 1), emit(&s, 0x070 / 4, 1), emit(&s, 0xf, 4);
	emit(&s, OP_WRITE32, 1), emit(&s, 0x070 / 4, 1), emit(&s, 3, 4);
	emit(&s, OP_WRITE32, 1), emit(&s, 0x024 / 4, 1), emit(&s, 1, 4);
	emit(&s, OP_WRITE32, 1), emit(&s, 0x020 / 4, 1), emit(&s, 1, 4);
	emit(&s, OP_WRITE32, 1), emit(&s, 0x070 / 4, 1), emit(&s, 0xb, 4);
	emit(&s, OP_WRITE32, 1), emit(&s, 0x030 / 4, 1), emit(&s, 0, 4);
	emit(&s, OP_WRITE32, 1), emit(&s, 0x038 / 4, 1), emit(&s, 16, 4);
	emit(&s, OP_WRITE32, 1), emit(&s, 0x080 / 4, 1), emit(&s, (uint32_t)RING_GPA, 4);
	emit(&s, OP_WRITE32, 1), emit(&s, 0x090 / 4, 1), emit(&s, (uint32_t)RING_GPA + 0x1000, 4);
	emit(&s, OP_WRITE32, 1), emit(&s, 0x0a0 / 4, 1), emit(&s, (uint32_t)RING_GPA + 0x2000, 4);
	emit(&s, OP_WRITE32, 1), emit(&s, 0x044 / 4, 1), emit(&s, 1, 4);
	emit(&s, OP_WRITE32, 1), emit(&s, 0x070 / 4, 1), emit(&s, 0xf, 4);
	emit(&s, OP_ACCESS, 1), emit(&s, 0x104, 2), emit(&s, 0x81, 1), emit(&s, 0xabcd, 8);
	emit(&s, OP_ACCESS, 1), emit(&s, 0x100, 2), emit(&s, 0x83, 1), emit(&s, 77, 8);
	emit(&s, OP_ACCESS, 1), emit(&s, 0x0fc, 2), emit(&s, 0x02, 1), emit(&s, 0, 8);
	write_seed(dir, "registers", &s);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct ovc_host_config cfg;
	void *hva;

	(void)argc;
	(void)argv;
	ovc_host_config_init(&cfg);
	cfg.fault_threads = 1;
	cfg.tick_ms = 60000;	/* ticks come from the input */
	cfg.log_level = getenv("FUZZ_BALLOON_LOG") ? OVC_LOG_DEBUG : 0;
	host = ovc_host_new(&cfg);
	CHECK(host);
	ovc_thread_register();	/* inputs run ticks by hand in this thread */
	vm = ovc_vm_new(host, "fuzz");
	CHECK(vm);
	CHECK(ovc_vm_add_ram(vm, 0, LO_SIZE, &hva) == 0);
	lo = hva;
	CHECK(ovc_vm_add_ram(vm, HI_GPA, HI_SIZE, &hva) == 0);
	hi = hva;
	if (getenv("FUZZ_BALLOON_SEEDS")) {
		write_seeds(getenv("FUZZ_BALLOON_SEEDS"));
		exit(0);
	}
	return 0;
}
