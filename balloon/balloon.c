// SPDX-License-Identifier: MIT
/* balloon/balloon.c: the virtio-balloon device: inflate, deflate, statistics, free page reporting, and its controller. */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "balloon/balloon-internal.h"

#define PFN_BATCH	1024	/* PFNs taken from one buffer at a time */
#define STATS_MAX	64	/* entries read from one statistics buffer */
#define STAT_ENTRY	10	/* le16 tag + le64 value, packed */
#define CONFIG_SIZE	8	/* le32 num_pages, le32 actual */
#define NUM_QUEUES	4	/* inflateq, deflateq, then statsq / reporting_vq */
#define QUEUE_SIZE	256

static const char *const stat_names[OVC_BALLOON_S_NR] = {
	"swap-in", "swap-out", "major-faults", "minor-faults", "free-memory",
	"total-memory", "available-memory", "disk-caches", "hugetlb-allocations",
	"hugetlb-failures", "oom-kills", "alloc-stalls", "async-scans",
	"direct-scans", "async-reclaims", "direct-reclaims",
};

OVC_EXPORT const char *ovc_balloon_stat_name(int tag)
{
	return tag >= 0 && tag < OVC_BALLOON_S_NR ? stat_names[tag] : "unknown";
}

OVC_EXPORT void ovc_balloon_config_init(struct ovc_balloon_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->features = OVC_BALLOON_FEATURES_DEFAULT;
	cfg->max_fraction = 0.65;
	cfg->step_bytes = 64ULL << 20;
	cfg->stall_ms = 10000;
	cfg->stats_period_ms = 1000;
}

/* The role of queue @index under the negotiated features. Called with b->lock held. */
static enum ovc__balloon_queue queue_role(struct ovc_balloon *b, unsigned int index)
{
	unsigned int next = 2;

	if (index == 0)
		return OVC__BQ_INFLATE;
	if (index == 1)
		return OVC__BQ_DEFLATE;
	if (b->features & OVC_VIRTIO_FEATURE(OVC_BALLOON_F_STATS_VQ)) {
		if (index == next)
			return OVC__BQ_STATS;
		next++;
	}
	if ((b->features & OVC_VIRTIO_FEATURE(OVC_BALLOON_F_PAGE_REPORTING)) && index == next)
		return OVC__BQ_REPORTING;
	return OVC__BQ_NONE;
}

/*
 * Move the run [gfn, gfn + n) of one range: @inflate makes pages BALLOONED
 * (punched), otherwise BALLOONED pages become ZERO; @report makes any page but
 * a ballooned one ZERO. Returns pages changed. Called with b->lock held.
 */
static uint64_t move_run(struct ovc_balloon *b, uint64_t gfn, unsigned int n,
			 enum ovc__balloon_queue q)
{
	struct ovc_xact *x = &b->xact;
	uint64_t changed = 0;
	unsigned int i;

	if (ovc__xact_begin(x, b->ram, gfn, n, OVC_XACT_WAIT)) {
		b->ctr.xact_errors += n;
		return 0;
	}
	for (i = 0; i < n; i++) {
		unsigned int st = ovc__pte_state(ovc__xact_old(x, i));

		switch (q) {
		case OVC__BQ_INFLATE:
			if (st == OVC_PAGE_BALLOONED)
				b->ctr.dup_pfn++;
			else
				ovc__xact_set(x, i, OVC_PAGE_BALLOONED, 0, NULL);
			break;
		case OVC__BQ_DEFLATE:
			if (st == OVC_PAGE_BALLOONED)
				ovc__xact_set(x, i, OVC_PAGE_ZERO, 0, NULL);
			else
				b->ctr.bad_deflate++;
			break;
		default:	/* reporting: the guest does not care what the page held */
			if (st != OVC_PAGE_BALLOONED && st != OVC_PAGE_ZERO)
				ovc__xact_set(x, i, OVC_PAGE_ZERO, 0, NULL);
			break;
		}
	}
	ovc__xact_commit(x);
	for (i = 0; i < n; i++) {
		if (x->new_e[i] == x->old[i])
			continue;
		if (x->failed[i])
			b->ctr.xact_errors++;
		else
			changed++;
	}
	return changed;
}

static int cmp_pfn(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Apply one list of PFNs. Sorted first, so that a driver handing pages out in
 * any order still gets whole runs moved in one transition each; a PFN twice
 * in the list is counted once as a duplicate. Called with b->lock held.
 */
static void apply_pfns(struct ovc_balloon *b, uint32_t *pfn, unsigned int n,
		       enum ovc__balloon_queue q)
{
	unsigned int i = 0, j, k;

	qsort(pfn, n, sizeof(*pfn), cmp_pfn);
	for (j = 0, k = 0; j < n; j++) {
		if (k && pfn[j] == pfn[k - 1]) {
			if (q == OVC__BQ_INFLATE)
				b->ctr.dup_pfn++;
			else
				b->ctr.bad_deflate++;
			continue;
		}
		pfn[k++] = pfn[j];
	}
	n = k;
	while (i < n) {
		uint64_t gfn = pfn[i];
		struct ovc_region *rg = ovc__ram_region_gfn(b->ram, gfn);
		unsigned int run = 1;
		uint64_t done;

		if (!rg) {
			b->ctr.bad_pfn++;
			i++;
			continue;
		}
		while (i + run < n && run < OVC_XACT_MAX_PAGES && pfn[i + run] == gfn + run &&
		       gfn + run < rg->gfn0 + rg->npages)
			run++;
		done = move_run(b, gfn, run, q);
		if (q == OVC__BQ_INFLATE)
			b->ctr.inflated += done;
		else
			b->ctr.deflated += done;
		i += run;
	}
}

/* Count one bad-input event. Takes b->lock. */
static void count_bad(struct ovc_balloon *b, uint64_t *ctr)
{
	pthread_mutex_lock(&b->lock);
	(*ctr)++;
	pthread_mutex_unlock(&b->lock);
}

/* A batch of PFNs under the lock, so readers and the controller get in between. */
static void apply_batch(struct ovc_balloon *b, uint32_t *pfn, unsigned int n,
			enum ovc__balloon_queue q)
{
	pthread_mutex_lock(&b->lock);
	apply_pfns(b, pfn, n, q);
	pthread_mutex_unlock(&b->lock);
}

/*
 * Inflate or deflate: device-readable buffers of le32 PFNs, read as one byte
 * stream (a PFN may straddle two descriptors: the driver chooses the
 * framing). Called under the transport's serialization, b->lock not held: a
 * long request takes it one batch at a time.
 */
static void pfn_request(struct ovc_balloon *b, const struct ovc_virtq_elem *e,
			enum ovc__balloon_queue q)
{
	uint32_t pfn[PFN_BATCH];
	uint8_t part[sizeof(uint32_t)];
	unsigned int s, n = 0, have = 0;
	size_t off;

	if (e->nin || !e->nout) {
		count_bad(b, &b->ctr.bad_requests);
		return;
	}
	for (s = 0; s < e->nout; s++) {
		const uint8_t *p = e->out[s].iov_base;
		size_t len = e->out[s].iov_len;

		/* One read of each byte: the guest may rewrite the buffer meanwhile. */
		for (off = 0; off < len;) {
			uint32_t v;

			if (!have && len - off >= sizeof(v)) {
				memcpy(&v, p + off, sizeof(v));	/* whole PFNs: the common case */
				off += sizeof(v);
			} else {
				part[have++] = p[off++];
				if (have < sizeof(part))
					continue;
				have = 0;
				memcpy(&v, part, sizeof(v));
			}
			pfn[n++] = le32toh(v);
			if (n == PFN_BATCH) {
				apply_batch(b, pfn, n, q);
				n = 0;
			}
		}
	}
	if (have)
		count_bad(b, &b->ctr.misaligned);	/* a PFN cut short */
	apply_batch(b, pfn, n, q);
}

/*
 * Free page reporting: page-aligned ranges of free guest memory. The
 * specification names no direction; Linux posts them device-writable, so
 * both directions are ranges.
 */
static void report_request(struct ovc_balloon *b, const struct ovc_virtq_elem *e)
{
	unsigned int s;

	if (!e->nin && !e->nout) {
		count_bad(b, &b->ctr.bad_requests);
		return;
	}
	for (s = 0; s < e->nout + e->nin; s++) {
		const struct iovec *iov = s < e->nout ? &e->out[s] : &e->in[s - e->nout];
		uintptr_t hva = (uintptr_t)iov->iov_base;
		size_t len = iov->iov_len;
		struct ovc_region *rg = ovc__ram_region_hva(b->ram, hva);
		uint64_t gfn, left;

		if (!rg || (hva | len) & (OVC_PAGE_SIZE - 1) || !len ||
		    hva + len > (uintptr_t)rg->hva + rg->size) {
			count_bad(b, &b->ctr.misaligned);
			continue;
		}
		gfn = rg->gfn0 + ((hva - (uintptr_t)rg->hva) >> OVC_PAGE_SHIFT);
		for (left = len >> OVC_PAGE_SHIFT; left;) {
			unsigned int n = left > OVC_XACT_MAX_PAGES ? OVC_XACT_MAX_PAGES :
				(unsigned int)left;

			pthread_mutex_lock(&b->lock);
			b->ctr.reported += move_run(b, gfn, n, OVC__BQ_REPORTING);
			pthread_mutex_unlock(&b->lock);
			gfn += n;
			left -= n;
		}
	}
}

/* A statistics buffer: keep the values and the buffer, to hand back as a request. */
static void stats_request(struct ovc_balloon *b, struct ovc_virtq *vq,
			  const struct ovc_virtq_elem *e)
{
	uint8_t buf[STATS_MAX * STAT_ENTRY];
	size_t n = 0, off;
	unsigned int s;

	if (e->nin) {
		b->ctr.bad_requests++;
		if (ovc_virtq_push(vq, e, 0) == 0)
			ovc_virtq_notify(vq);
		return;
	}
	for (s = 0; s < e->nout && n < sizeof(buf); s++) {
		size_t len = e->out[s].iov_len < sizeof(buf) - n ? e->out[s].iov_len :
			sizeof(buf) - n;

		memcpy(buf + n, e->out[s].iov_base, len);
		n += len;
	}
	if (n % STAT_ENTRY)
		b->ctr.misaligned++;
	for (off = 0; off + STAT_ENTRY <= n; off += STAT_ENTRY) {
		uint16_t tag;
		uint64_t val;

		memcpy(&tag, buf + off, sizeof(tag));
		memcpy(&val, buf + off + 2, sizeof(val));
		tag = le16toh(tag);
		if (tag >= OVC_BALLOON_S_NR)
			continue;	/* tags from a newer guest: ignored, as the spec asks */
		b->stats[tag] = le64toh(val);
		b->stats_valid |= 1U << tag;
	}
	b->stats_at_ns = ovc__now_ns();
	b->ctr.stats_updates++;
	/* A second buffer while one is held: return the older one. */
	if (b->stats_held && ovc_virtq_push(vq, &b->stats_elem, 0) == 0)
		ovc_virtq_notify(vq);
	b->stats_elem = *e;
	b->stats_held = true;
	b->stats_vq = vq;
}

static void balloon_notify(void *opaque, struct ovc_virtq *vq)
{
	struct ovc_balloon *b = opaque;
	enum ovc__balloon_queue q;
	struct ovc_virtq_elem *e = &b->elem;
	uint64_t t0;
	int got;

	pthread_mutex_lock(&b->lock);
	q = queue_role(b, ovc_virtq_index(vq));
	pthread_mutex_unlock(&b->lock);
	while ((got = ovc_virtq_pop(vq, e)) > 0) {
		switch (q) {
		case OVC__BQ_INFLATE:
		case OVC__BQ_DEFLATE:
			t0 = ovc__now_ns();
			pfn_request(b, e, q);
			pthread_mutex_lock(&b->lock);
			*(q == OVC__BQ_INFLATE ? &b->ctr.inflate_ns : &b->ctr.deflate_ns) +=
				ovc__now_ns() - t0;
			pthread_mutex_unlock(&b->lock);
			break;
		case OVC__BQ_REPORTING:
			report_request(b, e);
			break;
		case OVC__BQ_STATS:
			pthread_mutex_lock(&b->lock);
			stats_request(b, vq, e);
			pthread_mutex_unlock(&b->lock);
			continue;	/* held, not returned */
		default:
			count_bad(b, &b->ctr.bad_requests);
			break;
		}
		/* MUST_TELL_HOST: the buffer goes back only once the pages moved. */
		if (ovc_virtq_push(vq, e, 0))
			break;
	}
	ovc_virtq_notify(vq);
}

static void balloon_config_read(void *opaque, uint32_t offset, void *buf, uint32_t len)
{
	struct ovc_balloon *b = opaque;
	uint32_t cfg[2];

	pthread_mutex_lock(&b->lock);
	cfg[0] = htole32(b->num_pages);
	cfg[1] = htole32(b->actual);
	pthread_mutex_unlock(&b->lock);
	if (offset <= CONFIG_SIZE && len <= CONFIG_SIZE - offset)
		memcpy(buf, (uint8_t *)cfg + offset, len);
	else
		memset(buf, 0, len);
}

static void balloon_config_write(void *opaque, uint32_t offset, const void *buf, uint32_t len)
{
	struct ovc_balloon *b = opaque;
	uint32_t cfg[2];

	pthread_mutex_lock(&b->lock);
	/* Only `actual` is the driver's to write; num_pages is the device's. */
	if (offset < sizeof(uint32_t) || offset > CONFIG_SIZE || len > CONFIG_SIZE - offset) {
		b->ctr.bad_requests++;
	} else {
		cfg[1] = htole32(b->actual);
		memcpy((uint8_t *)cfg + offset, buf, len);
		b->actual = le32toh(cfg[1]);
		if (!b->settled && b->actual == b->num_pages && b->asked_ns) {
			b->settled = true;
			b->settle_ns = ovc__now_ns() - b->asked_ns;
		}
	}
	pthread_mutex_unlock(&b->lock);
}

static int balloon_driver_ok(void *opaque, uint64_t features)
{
	struct ovc_balloon *b = opaque;

	pthread_mutex_lock(&b->lock);
	b->features = features;
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static void balloon_reset(void *opaque)
{
	struct ovc_balloon *b = opaque;

	pthread_mutex_lock(&b->lock);
	b->features = 0;
	b->stats_held = false;	/* the transport already forgot the buffer */
	b->stats_vq = NULL;
	pthread_mutex_unlock(&b->lock);
}

OVC_EXPORT const struct ovc_virtio_device_ops ovc_balloon_virtio_ops = {
	.device_id = 5,
	.vendor_id = 0x0076636f,	/* "ovc" */
	.features = OVC_BALLOON_FEATURES_DEFAULT,
	.num_queues = NUM_QUEUES,
	.queue_max_size = QUEUE_SIZE,
	.config_size = CONFIG_SIZE,
	.config_read = balloon_config_read,
	.config_write = balloon_config_write,
	.driver_ok = balloon_driver_ok,
	.queue_notify = balloon_notify,
	.reset = balloon_reset,
};

struct ovc_balloon *ovc__balloon_new(struct ovc_ram *ram, const struct ovc_log *log,
				     const struct ovc_balloon_config *cfg, void *owner)
{
	struct ovc_balloon_config defaults;
	struct ovc_mem_stats st;
	struct ovc_balloon *b;

	if (!cfg) {
		ovc_balloon_config_init(&defaults);
		cfg = &defaults;
	}
	if (!(cfg->max_fraction >= 0 && cfg->max_fraction <= 1) ||
	    cfg->features & ~OVC_BALLOON_FEATURES_DEFAULT) {
		errno = EINVAL;
		return NULL;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->ram = ram;
	b->log = log;
	b->owner = owner;
	b->cfg = *cfg;
	b->ops = ovc_balloon_virtio_ops;
	b->ops.features = cfg->features;
	ovc__ram_get_stats(ram, &st);
	b->ram_pages = st.ram_bytes >> OVC_PAGE_SHIFT;
	b->moved_ns = ovc__now_ns();
	pthread_mutex_init(&b->tlock, NULL);
	pthread_mutex_init(&b->lock, NULL);
	return b;
}

void ovc__balloon_destroy(struct ovc_balloon *b)
{
	if (!b)
		return;
	ovc_virtio_mmio_destroy(b->mmio);
	pthread_mutex_destroy(&b->lock);
	pthread_mutex_destroy(&b->tlock);
	free(b);
}

/*
 * The configuration-change interrupt through our own transport. The manager
 * calls this with the host lock held, so it never waits for a vCPU busy in
 * the device: that vCPU raises it on its way out instead.
 */
static void mmio_config_changed(void *opaque)
{
	struct ovc_balloon *b = opaque;

	atomic_store(&b->notify_pending, true);
	if (pthread_mutex_trylock(&b->tlock))
		return;
	if (atomic_exchange(&b->notify_pending, false))
		ovc_virtio_mmio_config_changed(b->mmio);
	pthread_mutex_unlock(&b->tlock);
}

OVC_EXPORT int ovc_balloon_mmio(struct ovc_balloon *b, ovc_virtio_irq_fn irq, void *irq_opaque)
{
	struct ovc_virtio_mmio *m;
	unsigned int i, n;

	if (!b || !irq)
		return -EINVAL;
	if (b->mmio)
		return -EEXIST;
	n = atomic_load_explicit(&b->ram->nregions, memory_order_acquire);
	for (i = 0; i < n; i++) {
		b->regions[i].gpa = b->ram->regions[i].gpa;
		b->regions[i].size = b->ram->regions[i].size;
		b->regions[i].hva = b->ram->regions[i].hva;
	}
	b->mem.regions = b->regions;
	b->mem.nregions = n;
	m = ovc_virtio_mmio_new(&b->ops, b, &b->mem, irq, irq_opaque);
	if (!m)
		return -errno;
	/* The controller reads these on the manager thread. */
	pthread_mutex_lock(&b->tlock);
	pthread_mutex_lock(&b->lock);
	b->mmio = m;
	b->cfg.notify = mmio_config_changed;
	b->cfg.notify_opaque = b;
	pthread_mutex_unlock(&b->lock);
	pthread_mutex_unlock(&b->tlock);
	return 0;
}

OVC_EXPORT struct ovc_virtio_mmio *ovc_balloon_transport(struct ovc_balloon *b)
{
	return b ? b->mmio : NULL;
}

OVC_EXPORT int ovc_balloon_mmio_access(struct ovc_balloon *b, uint64_t offset, void *data,
				       unsigned int len, bool is_write)
{
	int ret;

	if (!b || !b->mmio || !data)
		return -EINVAL;
	pthread_mutex_lock(&b->tlock);
	if (is_write)
		ret = ovc_virtio_mmio_write(b->mmio, offset, data, len);
	else
		ret = ovc_virtio_mmio_read(b->mmio, offset, data, len);
	if (atomic_exchange(&b->notify_pending, false))
		ovc_virtio_mmio_config_changed(b->mmio);
	pthread_mutex_unlock(&b->tlock);
	return ret;
}

/* Move num_pages one step toward the target. Called with b->lock held. */
static bool step_toward_target(struct ovc_balloon *b, uint64_t now)
{
	uint64_t step = b->cfg.step_bytes >> OVC_PAGE_SHIFT;
	uint64_t cur = b->num_pages, to = b->target_pages;

	if (cur == to)
		return false;
	if (step == 0)
		step = 1;
	b->num_pages = (uint32_t)(to > cur ? (to - cur > step ? cur + step : to) :
				  (cur - to > step ? cur - step : to));
	b->moved_ns = now;	/* the guest gets stall_ms from each change */
	b->asked_ns = now;
	b->settled = false;
	return true;
}

OVC_EXPORT int ovc_balloon_set_target(struct ovc_balloon *b, uint64_t bytes)
{
	ovc_balloon_notify_fn notify;
	uint64_t cap, pages;
	void *notify_opaque;
	bool changed;

	if (!b)
		return -EINVAL;
	cap = (uint64_t)((double)b->ram_pages * b->cfg.max_fraction);
	pages = bytes >> OVC_PAGE_SHIFT;
	pthread_mutex_lock(&b->lock);
	b->target_pages = pages < cap ? pages : cap;
	if (b->target_pages > UINT32_MAX)
		b->target_pages = UINT32_MAX;
	/* The first step goes out now; the rest on the manager's ticks. */
	changed = step_toward_target(b, ovc__now_ns());
	notify = b->cfg.notify;
	notify_opaque = b->cfg.notify_opaque;
	pthread_mutex_unlock(&b->lock);
	if (changed && notify)
		notify(notify_opaque);
	return 0;
}

/*
 * ovc__balloon_tick() - one controller step: num_pages toward the target,
 * stall detection, and a statistics request when one is due. Called from the
 * manager thread with the host lock held.
 */
void ovc__balloon_tick(struct ovc_balloon *b, uint64_t now)
{
	ovc_balloon_notify_fn notify;
	bool changed, ask = false;
	void *notify_opaque;

	/* The host lock is held: never wait behind a guest's long request. */
	if (pthread_mutex_trylock(&b->lock))
		return;
	changed = step_toward_target(b, now);
	if (b->actual != b->last_actual) {
		b->last_actual = b->actual;
		b->moved_ns = now;
		b->stalled = false;
	} else if (b->actual == b->num_pages) {
		b->moved_ns = now;
		b->stalled = false;
	} else if (!b->stalled && now - b->moved_ns > (uint64_t)b->cfg.stall_ms * 1000000ULL) {
		b->stalled = true;
		b->ctr.stalls++;
		ovc__warn(b->log, "balloon: guest stalled at %u pages, asked for %u",
			  b->actual, b->num_pages);
	}
	if (b->stats_held && b->mmio && b->cfg.stats_period_ms &&
	    now - b->stats_asked_ns >= (uint64_t)b->cfg.stats_period_ms * 1000000ULL)
		ask = true;
	notify = b->cfg.notify;
	notify_opaque = b->cfg.notify_opaque;
	pthread_mutex_unlock(&b->lock);

	if ((changed || atomic_load(&b->notify_pending)) && notify)
		notify(notify_opaque);
	/* Handing the buffer back is the request for fresh statistics; next tick if busy. */
	if (ask && !pthread_mutex_trylock(&b->tlock)) {
		pthread_mutex_lock(&b->lock);
		if (b->stats_held && ovc_virtq_push(b->stats_vq, &b->stats_elem, 0) == 0)
			ovc_virtq_notify(b->stats_vq);
		b->stats_held = false;
		b->stats_asked_ns = now;
		pthread_mutex_unlock(&b->lock);
		pthread_mutex_unlock(&b->tlock);
	}
}

OVC_EXPORT int ovc_balloon_get_stats(struct ovc_balloon *b, struct ovc_balloon_stats *st)
{
	struct ovc_mem_stats ms;

	if (!b || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	ovc__ram_get_stats(b->ram, &ms);
	pthread_mutex_lock(&b->lock);
	st->target_pages = b->target_pages;
	st->num_pages = b->num_pages;
	st->actual_pages = b->actual;
	st->inflated = b->ctr.inflated;
	st->deflated = b->ctr.deflated;
	st->reported_pages = b->ctr.reported;
	st->bad_pfn = b->ctr.bad_pfn;
	st->dup_pfn = b->ctr.dup_pfn;
	st->bad_deflate = b->ctr.bad_deflate;
	st->misaligned = b->ctr.misaligned;
	st->bad_requests = b->ctr.bad_requests;
	st->stalled = b->stalled;
	st->stalls = b->ctr.stalls;
	st->stats_updates = b->ctr.stats_updates;
	st->stats_at_ns = b->stats_at_ns;
	st->stats_valid = b->stats_valid;
	memcpy(st->stats, b->stats, sizeof(st->stats));
	st->features = b->features;
	st->inflate_ns = b->ctr.inflate_ns;
	st->deflate_ns = b->ctr.deflate_ns;
	st->settle_ns = b->settled ? b->settle_ns : 0;
	st->move_errors = b->ctr.xact_errors;
	pthread_mutex_unlock(&b->lock);
	st->ballooned_pages = ms.pages[OVC_PAGE_BALLOONED];
	st->touched = ms.faults[OVC_FAULT_BALLOONED];
	return 0;
}
