// SPDX-License-Identifier: MIT
/* guest/rt/balloon.c: virtio-balloon inflate/deflate, statistics and page reporting over a pool. */
#include "balloon.h"

#define LOG_MAX		16	/* failure lines on serial per balloon; the rest are counted */
#define NOTE_MAX	48	/* informational lines (target changes, first events) */
#define POLL_BUFFERS	64	/* inflate/deflate buffers per balloon_poll(): 64 MiB of pages */
#define QSIZE_PFN	4	/* one buffer in flight per queue is all we use */
#define QSIZE_STATS	2	/* the spec allows one stats buffer available at a time */
#define GEN_RETRIES	64
#define IRQ_GRACE_MS	50	/* how late a config interrupt may trail its change */
#define RANGE_BYTES	((uint64_t)BALLOON_REPORT_RANGE * PAGE_SIZE)

static __attribute__((format(printf, 2, 3))) void bfail(struct balloon *bd, const char *fmt, ...)
{
	char buf[200];
	va_list ap;

	if (bd->errors++ < LOG_MAX) {
		va_start(ap, fmt);
		rt_vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
		rt_printf("balloon: FAIL: %s\n", buf);
	} else if (bd->errors == LOG_MAX + 1) {
		rt_printf("balloon: further failures are only counted\n");
	}
}

static __attribute__((format(printf, 2, 3))) void bnote(struct balloon *bd, const char *fmt, ...)
{
	char buf[200];
	va_list ap;

	if (bd->noted++ >= NOTE_MAX)
		return;
	va_start(ap, fmt);
	rt_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	rt_printf("balloon: %s\n", buf);
}

static inline bool stopped(const struct balloon *bd)
{
	return bd->dev->stop && *bd->dev->stop;
}

/* ---- bitmaps over pool page indices; bits past pool_pages stay 0 ---- */

static inline bool bit_test(const uint64_t *m, uint64_t i)
{
	return m[i / 64] >> (i % 64) & 1;
}

static inline void bit_set(uint64_t *m, uint64_t i)
{
	m[i / 64] |= 1ULL << (i % 64);
}

static inline void bit_clear(uint64_t *m, uint64_t i)
{
	m[i / 64] &= ~(1ULL << (i % 64));
}

/* The lowest set bit at or above @i, or @n if there is none. */
static uint64_t next_set(const uint64_t *m, uint64_t n, uint64_t i)
{
	uint64_t w, word, words = (n + 63) / 64;

	if (i >= n)
		return n;
	w = i / 64;
	word = m[w] & (~0ULL << (i % 64));
	for (;;) {
		if (word)
			return MIN(w * 64 + (uint64_t)__builtin_ctzll(word), n);
		if (++w >= words)
			return n;
		word = m[w];
	}
}

/* The highest set bit below @i, or @n if there is none. */
static uint64_t prev_set(const uint64_t *m, uint64_t n, uint64_t i)
{
	uint64_t w, word;

	if (!i)
		return n;
	i = MIN(i, n) - 1;
	w = i / 64;
	word = m[w] & (~0ULL >> (63 - i % 64));
	for (;;) {
		if (word)
			return w * 64 + 63 - (uint64_t)__builtin_clzll(word);
		if (!w)
			return n;
		word = m[--w];
	}
}

/*
 * The guests link without libgcc and are built for baseline x86-64 (no
 * POPCNT), where __builtin_popcountll() is a libgcc call: count by hand.
 */
static inline uint64_t popcount64(uint64_t x)
{
	x -= (x >> 1) & 0x5555555555555555ULL;
	x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (x * 0x0101010101010101ULL) >> 56;
}

static uint64_t popcount(const uint64_t *m, uint64_t words)
{
	uint64_t i, n = 0;

	for (i = 0; i < words; i++)
		n += popcount64(m[i]);
	return n;
}

static inline uint64_t page_pa(const struct balloon *bd, uint64_t idx)
{
	return bd->pool_start + idx * PAGE_SIZE;
}

static inline uint64_t pfn_idx(const struct balloon *bd, uint32_t pfn)
{
	return ((uint64_t)pfn << VIRTIO_BALLOON_PFN_SHIFT) / PAGE_SIZE -
	       bd->pool_start / PAGE_SIZE;
}

/* ---- interrupts and config ---- */

/*
 * Read InterruptStatus and acknowledge what it shows. Interrupts here only
 * end idle waits early; the work is found by polling. Acknowledging keeps
 * the edge-triggered line able to fire again, and the config bit is kept
 * to check that every num_pages change came with a notification.
 */
static void take_irq(struct balloon *bd)
{
	uint32_t isr = virtio_irq_status(bd->dev);

	if (!isr)
		return;
	if (isr & VIRTIO_MMIO_INT_CONFIG) {
		bd->config_irqs++;
		bd->config_irq_seen = true;
	}
	virtio_irq_ack(bd->dev, isr);
}

/* num_pages and the ConfigGeneration it was read under. */
static int read_num_pages(struct balloon *bd, uint32_t *val, uint32_t *gen)
{
	uint64_t addr = bd->dev->base + VIRTIO_MMIO_CONFIG + VIRTIO_BALLOON_CFG_NUM_PAGES;
	uint32_t before, after;
	unsigned int tries;

	/* The spec's loop: retry until the generation is the same on both sides. */
	for (tries = 0; tries < GEN_RETRIES; tries++) {
		before = virtio_config_generation(bd->dev);
		*val = mmio_read32(addr);
		after = virtio_config_generation(bd->dev);
		if (before == after) {
			*gen = after;
			return 0;
		}
	}
	bfail(bd, "ConfigGeneration changed during %u reads of num_pages in a row", GEN_RETRIES);
	return -VIRTIO_EIO;
}

/*
 * Read the target and check the device's side of a change: the spec asks for
 * a new ConfigGeneration whenever the config changes, and a configuration
 * change notification (InterruptStatus bit 1) with it.
 */
static int read_target(struct balloon *bd)
{
	uint32_t val, gen;
	int ret;

	/* InterruptStatus first: a change's notification is set before we read the change. */
	take_irq(bd);
	ret = read_num_pages(bd, &val, &gen);
	if (ret)
		return ret;

	if (bd->unexplained) {
		if (bd->config_irq_seen) {
			bd->unexplained = 0;
		} else if (rdtsc() - bd->unexplained_tsc >
			   ns_to_tsc(IRQ_GRACE_MS * NSEC_PER_MSEC) && bd->unexplained++ == 1) {
			bfail(bd, "num_pages changed to %u without a configuration change "
			      "notification (InterruptStatus bit 1) within %u ms",
			      bd->num_pages, IRQ_GRACE_MS);
		}
	}
	if (val != bd->num_pages) {
		bd->config_changes++;
		if (gen == bd->gen)
			bfail(bd, "num_pages %u -> %u but ConfigGeneration stayed %u",
			      bd->num_pages, val, gen);
		bnote(bd, "target %u -> %u pages (%lu MiB); balloon %lu, pool free %lu",
		      bd->num_pages, val, (unsigned long)((uint64_t)val * PAGE_SIZE >> 20),
		      (unsigned long)bd->nr_ballooned, (unsigned long)bd->nr_free);
		if (!bd->config_irq_seen && !bd->unexplained) {
			/* The interrupt may trail the change by a little: check later. */
			bd->unexplained = 1;
			bd->unexplained_tsc = rdtsc();
		}
		bd->num_pages = val;
		bd->num_pages_max = MAX(bd->num_pages_max, val);
	}
	bd->gen = gen;
	bd->config_irq_seen = false;
	return 0;
}

/* The spec: update actual once the device acknowledged a change of the balloon. */
static int write_actual(struct balloon *bd)
{
	uint32_t v = (uint32_t)bd->nr_ballooned, back;
	int ret;

	ret = virtio_config_write32(bd->dev, VIRTIO_BALLOON_CFG_ACTUAL, v);
	if (ret) {
		bfail(bd, "writing actual: %s", virtio_strerror(ret));
		return ret;
	}
	bd->actual = v;
	/* actual is the driver's field: it must read back as written. */
	back = mmio_read32(bd->dev->base + VIRTIO_MMIO_CONFIG + VIRTIO_BALLOON_CFG_ACTUAL);
	if (back != v) {
		bfail(bd, "actual reads %u after writing %u", back, v);
		return -VIRTIO_EPROTO;
	}
	return 0;
}

/* ---- buffers: one in flight per queue ---- */

/* Take @op's buffer off @vq's used ring if the device has used it. */
static int op_get(struct balloon *bd, struct virtq *vq, struct balloon_op *op,
		  const char *what, bool writable)
{
	uint32_t len = 0;
	int id;

	id = virtq_get(vq, &len);
	if (id == -VIRTIO_EAGAIN)
		return id;
	if (id < 0) {
		bfail(bd, "%s: used ring: %s", what, virtio_strerror(id));
		return id;
	}
	if (id != op->head) {
		/* Only one buffer is ever in flight here, so virtq_get() vouches for id. */
		bfail(bd, "%s: used id %d, the buffer in flight is %d", what, id, op->head);
		return -VIRTIO_EPROTO;
	}
	op->busy = false;
	/*
	 * len counts bytes written into the buffer; these buffers (unless
	 * @writable) have nothing the device may write, and the spec has the
	 * device write at least len bytes before it marks the buffer used.
	 */
	if (len && !writable)
		bfail(bd, "%s: used len %u for a device-readable buffer", what, len);
	return 0;
}

/* Wait until the device used @op's buffer, then take it. */
static int op_wait(struct balloon *bd, struct virtq *vq, struct balloon_op *op,
		   const char *what, bool writable)
{
	int ret;

	ret = virtq_wait(vq, 0, VIRTQ_WAIT_USED, BALLOON_WAIT_MS);
	take_irq(bd);
	if (ret) {
		if (ret != -VIRTIO_ECANCELED)
			bfail(bd, "%s: %s waiting for the device to use a buffer of %u "
			      "(used idx %u, consumed %u, status %#x)", what,
			      virtio_strerror(ret), op->n, vq->used->idx, vq->last_used,
			      virtio_status(bd->dev));
		return ret;
	}
	return op_get(bd, vq, op, what, writable);
}

static void inflate_done(struct balloon *bd)
{
	uint32_t i;

	for (i = 0; i < bd->inflate_op.n; i++)
		bit_set(bd->balloon_map, pfn_idx(bd, bd->inflate_pfns[i]));
	bd->nr_ballooned += bd->inflate_op.n;
	bd->nr_inflight -= bd->inflate_op.n;
	bd->inflated += bd->inflate_op.n;
}

static void deflate_done(struct balloon *bd)
{
	uint64_t idx;
	uint32_t i;

	for (i = 0; i < bd->deflate_op.n; i++) {
		idx = pfn_idx(bd, bd->deflate_pfns[i]);
		bit_set(bd->free_map, idx);
		bd->alloc_hint = MIN(bd->alloc_hint, idx);
	}
	bd->nr_ballooned -= bd->deflate_op.n;
	bd->nr_free += bd->deflate_op.n;
	bd->deflated += bd->deflate_op.n;
	if (bd->deflate_op.oom)
		bd->oom_deflated += bd->deflate_op.n;
}

static void report_done(struct balloon *bd)
{
	uint64_t idx, end;
	uint32_t i;

	for (i = 0; i < bd->report_op.n; i++) {
		idx = (bd->report_segs[i].addr - bd->pool_start) / PAGE_SIZE;
		end = idx + bd->report_segs[i].len / PAGE_SIZE;
		for (; idx < end; idx++) {
			bit_set(bd->free_map, idx);
			bit_set(bd->reported_map, idx);
		}
	}
	bd->nr_free += bd->report_op.pages;
	bd->nr_inflight -= bd->report_op.pages;
	bd->reported += bd->report_op.pages;
	bd->gstats.async_reclaim += bd->report_op.pages;
}

/*
 * The stats buffer: the same twelve statistics every time, as the spec asks.
 * 12 entries are 120 bytes, a multiple of both 10 (the entry size) and 6,
 * which the spec's driver requirement literally demands of the buffer size
 * (a leftover from an older 6-byte entry; a device may check either).
 */
static void stats_fill(struct balloon *bd)
{
	const struct balloon_guest_stats *s = &bd->gstats;
	const struct { uint16_t tag; uint64_t val; } tab[BALLOON_NR_STATS] = {
		{ VIRTIO_BALLOON_S_MAJFLT, s->majflt },
		{ VIRTIO_BALLOON_S_MINFLT, s->minflt },
		{ VIRTIO_BALLOON_S_MEMFREE, s->memfree },
		{ VIRTIO_BALLOON_S_MEMTOT, s->memtot },
		{ VIRTIO_BALLOON_S_AVAIL, s->avail },
		{ VIRTIO_BALLOON_S_CACHES, s->caches },
		{ VIRTIO_BALLOON_S_OOM_KILL, s->oom_kills },
		{ VIRTIO_BALLOON_S_ALLOC_STALL, s->alloc_stall },
		{ VIRTIO_BALLOON_S_ASYNC_SCAN, s->async_scan },
		{ VIRTIO_BALLOON_S_DIRECT_SCAN, s->direct_scan },
		{ VIRTIO_BALLOON_S_ASYNC_RECLAIM, s->async_reclaim },
		{ VIRTIO_BALLOON_S_DIRECT_RECLAIM, s->direct_reclaim },
	};
	unsigned int i;

	_Static_assert(BALLOON_NR_STATS * sizeof(struct virtio_balloon_stat) % 6 == 0,
		       "stats buffer size must be a multiple of 6 (spec) and of 10");
	for (i = 0; i < BALLOON_NR_STATS; i++) {
		bd->stats_buf[i].tag = tab[i].tag;
		bd->stats_buf[i].val = tab[i].val;
	}
}

/* Fill and add the stats buffer; make it available unless @defer (before DRIVER_OK). */
static int stats_post(struct balloon *bd, bool defer)
{
	struct virtq_seg seg = {
		(uintptr_t)bd->stats_buf,
		BALLOON_NR_STATS * sizeof(struct virtio_balloon_stat),
	};
	int head;

	stats_fill(bd);
	head = virtq_add(&bd->statsq, &seg, 1, 0, 0);
	if (head < 0) {
		bfail(bd, "statsq: add: %s", virtio_strerror(head));
		return head;
	}
	bd->stats_op = (struct balloon_op){ .busy = true, .head = head, .n = 1 };
	if (!defer)
		virtq_kick(&bd->statsq);
	return 0;
}

/*
 * Complete whatever the device has used, without waiting. A used stats
 * buffer is the device asking for statistics: refill it and give it back
 * at once, so there is always exactly one available.
 */
static void reap(struct balloon *bd)
{
	if (bd->inflate_op.busy && virtq_used_pending(&bd->inflateq) &&
	    !op_get(bd, &bd->inflateq, &bd->inflate_op, "inflateq", false)) {
		inflate_done(bd);
		write_actual(bd);
	}
	if (bd->deflate_op.busy && virtq_used_pending(&bd->deflateq) &&
	    !op_get(bd, &bd->deflateq, &bd->deflate_op, "deflateq", false)) {
		deflate_done(bd);
		write_actual(bd);
	}
	if (bd->report_op.busy && virtq_used_pending(&bd->reportq) &&
	    !op_get(bd, &bd->reportq, &bd->report_op, "reporting_vq", bd->report_writable))
		report_done(bd);
	if (bd->stats_op.busy && virtq_used_pending(&bd->statsq) &&
	    !op_get(bd, &bd->statsq, &bd->stats_op, "statsq", false) &&
	    !stats_post(bd, false))
		bd->stats_updates++;
}

/* ---- inflate and deflate ---- */

/* Give up to @want free pages, highest first, to the device. Return pages or an error. */
static int inflate_batch(struct balloon *bd, uint32_t want)
{
	struct virtq_seg seg;
	uint64_t idx = bd->pool_pages;
	uint32_t n = 0, i;
	int head, ret;

	/*
	 * From the top of the pool down, while allocations come from the
	 * bottom up: the balloon stays a contiguous run at the top, which
	 * the host can give back in whole huge pages.
	 */
	while (n < want) {
		idx = prev_set(bd->free_map, bd->pool_pages, idx);
		if (idx >= bd->pool_pages)
			break;
		bit_clear(bd->free_map, idx);
		bit_clear(bd->reported_map, idx);
		bd->inflate_pfns[n++] = (uint32_t)(page_pa(bd, idx) >> VIRTIO_BALLOON_PFN_SHIFT);
	}
	if (!n)
		return 0;
	bd->nr_free -= n;
	bd->nr_inflight += n;

	seg = (struct virtq_seg){ (uintptr_t)bd->inflate_pfns, n * sizeof(uint32_t) };
	head = virtq_add(&bd->inflateq, &seg, 1, 0, 0);
	if (head < 0) {
		for (i = 0; i < n; i++)
			bit_set(bd->free_map, pfn_idx(bd, bd->inflate_pfns[i]));
		bd->nr_free += n;
		bd->nr_inflight -= n;
		bfail(bd, "inflateq: add: %s", virtio_strerror(head));
		return head;
	}
	bd->inflate_op = (struct balloon_op){ .busy = true, .head = head, .n = n, .pages = n };
	virtq_kick(&bd->inflateq);
	/* The pages are the device's from here: the spec forbids touching them. */
	ret = op_wait(bd, &bd->inflateq, &bd->inflate_op, "inflateq", false);
	if (ret)
		return ret;
	inflate_done(bd);
	ret = write_actual(bd);
	return ret ? ret : (int)n;
}

/* Take up to @want pages, lowest first, back from the device. Return pages or an error. */
static int deflate_batch(struct balloon *bd, uint32_t want, bool oom)
{
	struct virtq_seg seg;
	uint64_t idx = 0;
	uint32_t n = 0, i;
	int head, ret;

	/*
	 * Only acknowledged pages are in balloon_map: the spec forbids
	 * deflating a page before its inflate was acknowledged.
	 */
	while (n < want) {
		idx = next_set(bd->balloon_map, bd->pool_pages, idx);
		if (idx >= bd->pool_pages)
			break;
		bit_clear(bd->balloon_map, idx);
		bd->deflate_pfns[n++] = (uint32_t)(page_pa(bd, idx) >> VIRTIO_BALLOON_PFN_SHIFT);
		idx++;
	}
	if (!n)
		return 0;

	seg = (struct virtq_seg){ (uintptr_t)bd->deflate_pfns, n * sizeof(uint32_t) };
	head = virtq_add(&bd->deflateq, &seg, 1, 0, 0);
	if (head < 0) {
		for (i = 0; i < n; i++)
			bit_set(bd->balloon_map, pfn_idx(bd, bd->deflate_pfns[i]));
		bfail(bd, "deflateq: add: %s", virtio_strerror(head));
		return head;
	}
	bd->deflate_op = (struct balloon_op){ .busy = true, .oom = oom, .head = head, .n = n,
					      .pages = n };
	virtq_kick(&bd->deflateq);
	/*
	 * With MUST_TELL_HOST the pages may not be used before the device
	 * acknowledged; without it they could be, but waiting costs little
	 * here and keeps one rule for both.
	 */
	ret = op_wait(bd, &bd->deflateq, &bd->deflate_op, "deflateq", false);
	if (ret)
		return ret;
	deflate_done(bd);
	ret = write_actual(bd);
	return ret ? ret : (int)n;
}

/* ---- public ---- */

uint64_t balloon_meta_size(uint64_t pool_bytes)
{
	uint64_t words = (pool_bytes / PAGE_SIZE + 63) / 64;

	/* Three bitmaps, two PFN arrays, rings of four queues, slack for alignment. */
	return 3 * (words * 8 + 64) + 2 * BALLOON_PFNS_MAX * 4 + 64 * 1024;
}

int balloon_find(struct virtio_dev *dev, const struct ovc_guest_boot *boot)
{
	unsigned int i;

	for (i = 0; i < boot->virtio_mmio_count; i++)
		if (!virtio_probe(dev, boot, i) && dev->device_id == VIRTIO_ID_BALLOON)
			return 0;
	return -VIRTIO_ENODEV;
}

int balloon_init(struct balloon *bd, struct virtio_dev *dev, struct virtio_heap *heap,
		 uint64_t pool_start, uint64_t pool_end, uint64_t features_wanted)
{
	const uint64_t allowed = BALLOON_FEATURES_ALL | VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX);
	struct balloon_guest_stats gstats;
	uint32_t actual = 0;
	uint16_t q;
	uint64_t i;
	int ret;

	if (!bd || !dev || !heap || !pool_start || pool_start >= pool_end ||
	    pool_start % PAGE_SIZE || pool_end % PAGE_SIZE ||
	    (pool_end - 1) >> VIRTIO_BALLOON_PFN_SHIFT > UINT32_MAX ||
	    (features_wanted & ~allowed) ||
	    (heap->next < pool_end && heap->end > pool_start))
		return -VIRTIO_EINVAL;

	/* Statistics the caller filled in before init are what the first buffer says. */
	gstats = bd->gstats;
	memset(bd, 0, sizeof(*bd));
	bd->gstats = gstats;
	bd->dev = dev;
	bd->pool_start = pool_start;
	bd->pool_end = pool_end;
	bd->pool_pages = (pool_end - pool_start) / PAGE_SIZE;
	bd->words = (bd->pool_pages + 63) / 64;

	bd->free_map = virtio_heap_alloc(heap, bd->words * 8, 64);
	bd->balloon_map = virtio_heap_alloc(heap, bd->words * 8, 64);
	bd->reported_map = virtio_heap_alloc(heap, bd->words * 8, 64);
	bd->inflate_pfns = virtio_heap_alloc(heap, BALLOON_PFNS_MAX * sizeof(uint32_t), 64);
	bd->deflate_pfns = virtio_heap_alloc(heap, BALLOON_PFNS_MAX * sizeof(uint32_t), 64);
	bd->stats_buf = virtio_heap_alloc(heap, BALLOON_NR_STATS *
					  sizeof(struct virtio_balloon_stat), 64);
	bd->report_segs = virtio_heap_alloc(heap, BALLOON_REPORT_SG * sizeof(struct virtq_seg), 64);
	if (!bd->free_map || !bd->balloon_map || !bd->reported_map || !bd->inflate_pfns ||
	    !bd->deflate_pfns || !bd->stats_buf || !bd->report_segs)
		return -VIRTIO_ENOMEM;
	for (i = 0; i < bd->pool_pages / 64; i++)
		bd->free_map[i] = ~0ULL;
	if (bd->pool_pages % 64)
		bd->free_map[i] = (1ULL << (bd->pool_pages % 64)) - 1;
	bd->nr_free = bd->pool_pages;

	ret = virtio_init(dev, features_wanted, BALLOON_RESET_MS);
	if (ret)
		return ret;
	bd->must_tell_host = dev->features & VIRTIO_FEATURE(VIRTIO_BALLOON_F_MUST_TELL_HOST);
	bd->stats_vq = dev->features & VIRTIO_FEATURE(VIRTIO_BALLOON_F_STATS_VQ);
	bd->deflate_on_oom = dev->features & VIRTIO_FEATURE(VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
	bd->reporting = dev->features & VIRTIO_FEATURE(VIRTIO_BALLOON_F_PAGE_REPORTING);

	/*
	 * Queue numbering: 0 inflateq, 1 deflateq, then statsq only if
	 * STATS_VQ was negotiated, then reporting_vq only if PAGE_REPORTING
	 * was; a queue that does not exist takes no index (free_page_vq
	 * never does: FREE_PAGE_HINT is never negotiated). The spec's list
	 * gives fixed numbers 2, 3 and 4 with "only exists if"; Linux and the
	 * ovc-vmm device number the existing queues consecutively, as here.
	 */
	ret = virtq_setup(&bd->inflateq, dev, 0, QSIZE_PFN, heap);
	if (!ret)
		ret = virtq_setup(&bd->deflateq, dev, 1, QSIZE_PFN, heap);
	q = 2;
	if (!ret && bd->stats_vq) {
		ret = virtq_setup(&bd->statsq, dev, q++, QSIZE_STATS, heap);
		/* Initialisation step: add one (filled) buffer before DRIVER_OK... */
		if (!ret)
			ret = stats_post(bd, true);
	}
	if (!ret && bd->reporting)
		ret = virtq_setup(&bd->reportq, dev, q++, BALLOON_REPORT_SG, heap);
	if (ret)
		goto err_fail;

	ret = virtio_driver_ok(dev);
	if (ret)
		goto err_fail;
	bd->live = true;
	/* ...and make it available once the device runs. */
	if (bd->stats_vq)
		virtq_kick(&bd->statsq);

	ret = read_num_pages(bd, &bd->num_pages, &bd->gen);
	if (ret) {
		bd->live = false;
		goto err_fail;
	}
	bd->num_pages_max = bd->num_pages;
	take_irq(bd);
	bd->config_irq_seen = false;
	ret = virtio_config_read(dev, VIRTIO_BALLOON_CFG_ACTUAL, &actual, sizeof(actual));
	if (!ret && actual)
		bnote(bd, "note: actual reads %u right after a reset", actual);
	bnote(bd, "device at %#lx: features offered %#lx, negotiated %#lx; pool %lu pages "
	      "at %#lx; target %u pages", (unsigned long)dev->base,
	      (unsigned long)dev->device_features, (unsigned long)dev->features,
	      (unsigned long)bd->pool_pages, (unsigned long)pool_start, bd->num_pages);
	return 0;

err_fail:
	virtio_fail(dev);
	return ret;
}

int balloon_poll(struct balloon *bd)
{
	unsigned int buffers;
	int ret, moved = 0;

	if (!bd || !bd->live)
		return -VIRTIO_EINVAL;
	take_irq(bd);
	reap(bd);
	ret = read_target(bd);
	for (buffers = 0; !ret && buffers < POLL_BUFFERS && !stopped(bd); buffers++) {
		if (bd->nr_ballooned < bd->num_pages) {
			if (bd->inflate_op.busy || !bd->nr_free)
				break;
			ret = inflate_batch(bd, (uint32_t)MIN(bd->num_pages - bd->nr_ballooned,
							      BALLOON_PFNS_MAX));
		} else if (bd->nr_ballooned > bd->num_pages) {
			if (bd->deflate_op.busy)
				break;
			ret = deflate_batch(bd, (uint32_t)MIN(bd->nr_ballooned - bd->num_pages,
							      BALLOON_PFNS_MAX), false);
		} else {
			break;
		}
		if (ret <= 0)
			break;
		moved += ret;
		/* The host moves its target in steps: follow it between buffers. */
		ret = read_target(bd);
	}
	reap(bd);
	return ret < 0 ? ret : moved;
}

/* The next free, not yet reported page at or after @idx, or pool_pages. */
static uint64_t next_unreported(const struct balloon *bd, uint64_t idx)
{
	uint64_t w, word;

	while (idx < bd->pool_pages) {
		w = idx / 64;
		word = bd->free_map[w] & ~bd->reported_map[w] & (~0ULL << (idx % 64));
		if (word)
			return MIN(w * 64 + (uint64_t)__builtin_ctzll(word), bd->pool_pages);
		idx = (w + 1) * 64;
	}
	return bd->pool_pages;
}

int balloon_report_free(struct balloon *bd, uint64_t max_pages)
{
	unsigned int nsg, n, i;
	uint64_t idx, pa, lim, len, pages, total = 0;
	int head, ret;

	if (!bd || !bd->live)
		return -VIRTIO_EINVAL;
	if (!bd->reporting)
		return -VIRTIO_ENOTSUP;
	take_irq(bd);
	reap(bd);
	if (bd->report_op.busy)
		return -VIRTIO_EAGAIN;
	nsg = MIN(BALLOON_REPORT_SG, bd->reportq.num);

	idx = 0;
	while (total < max_pages && !stopped(bd)) {
		for (n = 0, pages = 0; n < nsg && total + pages < max_pages; n++) {
			idx = next_unreported(bd, idx);
			if (idx >= bd->pool_pages)
				break;
			/*
			 * A range runs while pages are free and unreported, up to
			 * the next 2 MiB boundary: large, aligned blocks are what
			 * the spec asks for and what the host can drop whole.
			 */
			pa = page_pa(bd, idx);
			lim = MIN((ALIGN_UP(pa + 1, RANGE_BYTES) - pa) / PAGE_SIZE,
				  max_pages - total - pages);
			for (len = 0; len < lim && idx + len < bd->pool_pages &&
				      bit_test(bd->free_map, idx + len) &&
				      !bit_test(bd->reported_map, idx + len); len++)
				bit_clear(bd->free_map, idx + len);
			bd->report_segs[n] = (struct virtq_seg){ pa, (uint32_t)(len * PAGE_SIZE) };
			pages += len;
			idx += len;
		}
		if (!n)
			break;
		bd->gstats.async_scan += pages;
		bd->nr_free -= pages;
		bd->nr_inflight += pages;

		/* One descriptor per range, all in one buffer. */
		head = bd->report_writable ? virtq_add(&bd->reportq, bd->report_segs, 0, n, 0) :
					     virtq_add(&bd->reportq, bd->report_segs, n, 0, 0);
		if (head < 0) {
			for (i = 0; i < n; i++)
				for (pa = bd->report_segs[i].addr;
				     pa < bd->report_segs[i].addr + bd->report_segs[i].len;
				     pa += PAGE_SIZE)
					bit_set(bd->free_map, (pa - bd->pool_start) / PAGE_SIZE);
			bd->nr_free += pages;
			bd->nr_inflight -= pages;
			bfail(bd, "reporting_vq: add %u ranges: %s", n, virtio_strerror(head));
			return head;
		}
		bd->report_op = (struct balloon_op){ .busy = true, .head = head, .n = n,
						     .pages = pages };
		virtq_kick(&bd->reportq);
		/* The spec: no use of reported pages until the device acknowledged. */
		ret = op_wait(bd, &bd->reportq, &bd->report_op, "reporting_vq",
			      bd->report_writable);
		if (ret)
			return ret;
		report_done(bd);
		total += pages;
	}
	return (int)MIN(total, (uint64_t)INT32_MAX);
}

/*
 * The pool is empty. The spec lets the driver take pages back when the
 * target is below the balloon's size; otherwise only with DEFLATE_ON_OOM
 * negotiated. (Its text says the driver MUST NOT use balloon pages without
 * DEFLATE_ON_OOM "when num_pages is less than or equal to" actual, which
 * contradicts the MAY just before it: read as "greater than or equal".)
 */
static void reclaim(struct balloon *bd)
{
	bool oom = false;
	uint64_t want;
	int ret;

	bd->gstats.alloc_stall++;
	if (!bd->live)
		return;
	take_irq(bd);
	reap(bd);
	if (bd->nr_free || bd->deflate_op.busy || read_target(bd))
		return;
	if (bd->nr_ballooned > bd->num_pages) {
		want = MIN(bd->nr_ballooned - bd->num_pages, BALLOON_PFNS_MAX);
	} else if (bd->deflate_on_oom && bd->nr_ballooned) {
		want = MIN(bd->nr_ballooned, BALLOON_OOM_PAGES);
		oom = true;
	} else {
		return;
	}
	bd->gstats.direct_scan += want;
	ret = deflate_batch(bd, (uint32_t)want, oom);
	if (ret > 0) {
		bd->gstats.direct_reclaim += (uint64_t)ret;
		/* The first one only: an allocation burst deflates in many steps. */
		if (oom && bd->oom_deflated == (uint64_t)ret)
			bnote(bd, "deflate on OOM: %d pages back (target %u, balloon %lu)", ret,
			      bd->num_pages, (unsigned long)bd->nr_ballooned);
	}
}

uint64_t balloon_alloc_page(struct balloon *bd)
{
	uint64_t idx;

	if (!bd || !bd->free_map)
		return 0;
	if (!bd->nr_free)
		reclaim(bd);
	if (!bd->nr_free) {
		bd->alloc_failed++;
		return 0;
	}
	idx = next_set(bd->free_map, bd->pool_pages, bd->alloc_hint);
	if (idx >= bd->pool_pages) {
		bfail(bd, "pool: %lu pages counted free, none found from %lu",
		      (unsigned long)bd->nr_free, (unsigned long)bd->alloc_hint);
		bd->alloc_failed++;
		return 0;
	}
	bit_clear(bd->free_map, idx);
	bit_clear(bd->reported_map, idx);
	bd->nr_free--;
	bd->alloc_hint = idx + 1;
	return page_pa(bd, idx);
}

/* Is pool page @idx in a buffer the device still holds? */
static bool in_flight(const struct balloon *bd, uint64_t idx)
{
	uint64_t pa = page_pa(bd, idx);
	uint32_t pfn = (uint32_t)(pa >> VIRTIO_BALLOON_PFN_SHIFT), i;

	if (bd->inflate_op.busy)
		for (i = 0; i < bd->inflate_op.n; i++)
			if (bd->inflate_pfns[i] == pfn)
				return true;
	if (bd->deflate_op.busy)
		for (i = 0; i < bd->deflate_op.n; i++)
			if (bd->deflate_pfns[i] == pfn)
				return true;
	if (bd->report_op.busy)
		for (i = 0; i < bd->report_op.n; i++)
			if (pa >= bd->report_segs[i].addr &&
			    pa < bd->report_segs[i].addr + bd->report_segs[i].len)
				return true;
	return false;
}

int balloon_free_page(struct balloon *bd, uint64_t pa)
{
	uint64_t idx;

	if (!bd || !bd->free_map || pa < bd->pool_start || pa >= bd->pool_end ||
	    pa % PAGE_SIZE)
		return -VIRTIO_EINVAL;
	idx = (pa - bd->pool_start) / PAGE_SIZE;
	if (bit_test(bd->free_map, idx) || bit_test(bd->balloon_map, idx) || in_flight(bd, idx))
		return -VIRTIO_EINVAL;
	bit_set(bd->free_map, idx);
	bd->nr_free++;
	bd->alloc_hint = MIN(bd->alloc_hint, idx);
	return 0;
}

int balloon_finish(struct balloon *bd)
{
	if (!bd || !bd->live)
		return -VIRTIO_EINVAL;
	take_irq(bd);
	reap(bd);
	return write_actual(bd);
}

int balloon_check(struct balloon *bd)
{
	uint64_t nfree, nball, both = 0, stray = 0, deflating, inflight, i;

	if (!bd || !bd->free_map)
		return -VIRTIO_EINVAL;
	deflating = bd->deflate_op.busy ? bd->deflate_op.pages : 0;
	inflight = (bd->inflate_op.busy ? bd->inflate_op.pages : 0) +
		   (bd->report_op.busy ? bd->report_op.pages : 0);
	nfree = popcount(bd->free_map, bd->words);
	nball = popcount(bd->balloon_map, bd->words);
	for (i = 0; i < bd->words; i++) {
		both += popcount64(bd->free_map[i] & bd->balloon_map[i]);
		stray += popcount64(bd->reported_map[i] & ~bd->free_map[i]);
	}
	if (nfree != bd->nr_free || nball + deflating != bd->nr_ballooned ||
	    inflight != bd->nr_inflight || both || stray ||
	    bd->nr_free + bd->nr_ballooned + bd->nr_inflight > bd->pool_pages) {
		bfail(bd, "books: free %lu/%lu ballooned %lu+%lu/%lu in flight %lu/%lu, "
		      "free and ballooned %lu, reported but not free %lu",
		      (unsigned long)nfree, (unsigned long)bd->nr_free, (unsigned long)nball,
		      (unsigned long)deflating, (unsigned long)bd->nr_ballooned,
		      (unsigned long)inflight, (unsigned long)bd->nr_inflight,
		      (unsigned long)both, (unsigned long)stray);
		return -VIRTIO_EPROTO;
	}
	return 0;
}
