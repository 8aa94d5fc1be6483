// SPDX-License-Identifier: MIT
/* guest/virtiotest.c: drives a virtio-mmio entropy device end to end, checking the transport. */

/*
 * virtiotest - a virtio-mmio transport test on the VMM's entropy device
 *
 * Args (boot->args, "key=value" separated by spaces or commas):
 *   rounds=N        buffers to request (default 64)
 *   bytes=N         bytes per buffer, 1 .. 1 MiB (default 256)
 *   event-idx=on|off  negotiate VIRTIO_F_EVENT_IDX when offered (default on)
 *   indirect=on|off   negotiate VIRTIO_F_INDIRECT_DESC when offered and post
 *                   every buffer through an indirect table (default off)
 *   seconds=N       keep requesting buffers, past rounds=, until N seconds
 *                   have passed; 0 = stop after rounds= (default 0). The
 *                   guest never waits for boot->stop, but gives up cleanly
 *                   (not a failure) when it is set.
 *
 * Only vCPU 0 works; the others return at once.
 *
 * 1. Probe every window of boot->virtio_mmio_base/count: MagicValue,
 *    Version 2, DeviceID (0 is a placeholder and skipped silently),
 *    VendorID. A window with a bad magic or version is a failure.
 * 2. On the first entropy device (DeviceID 4): reset, ACKNOWLEDGE, DRIVER,
 *    negotiate (VERSION_1 plus the transport features asked for; the device
 *    must offer no device-specific bits, the entropy device has none),
 *    FEATURES_OK, queue 0 "requestq" of min(QueueNumMax, 64) entries,
 *    DRIVER_OK; Status must then read exactly 0x0f and InterruptStatus 0.
 * 3. Each round posts one device-writable buffer (odd rounds: the same
 *    bytes as two chained segments in separate pages; the first segment
 *    straddles a page boundary), kicks, and waits for both the used entry
 *    and an interrupt on the device's vector. Checks: InterruptStatus has
 *    the used-buffer bit (then ACKed), the used id is the posted head,
 *    0 < len <= the buffer, the guard bytes after each segment are intact,
 *    and (for len >= 8) the bytes are not all zero and differ from the
 *    previous buffer's.
 * 4. A batch fills the whole queue (min(bytes, 512) per buffer) with one
 *    kick: adding one more must fail with -ENOSPC; every buffer must come
 *    back used with a valid length and intact guards, with at least one
 *    interrupt. Not counted in rng_rounds / rng_bytes.
 * 5. Two 32-bit reads at unaligned offsets must return, and leave
 *    MagicValue and Status as they were.
 * 6. A second initialisation writes QueueNum = 3 (not a power of two) and
 *    sets DRIVER_OK: bad_queue_refused = 1 if QueueReady did not stick,
 *    DRIVER_OK did not stick, or DEVICE_NEEDS_RESET came up (which, with
 *    DRIVER_OK set, must come with a configuration change interrupt).
 *    Accepting it is reported, not failed: the spec only says queue sizes
 *    are powers of two. The driver then sets FAILED.
 * 7. A final reset: Status, QueueReady and InterruptStatus must read 0.
 *
 * Reports (ADD, from vCPU 0): virtio_devices, rng_rounds, rng_bytes, irqs
 * (interrupts on the device's vector, whole run), kicks and kicks_suppressed
 * (whole run), errors, bad_queue_refused.
 * Exit code: 0, 1 on any failure (one serial line each), 2 for bad arguments.
 */
#include "rt/rt.h"
#include "rt/virtio.h"

#define PROG		"virtiotest"
#define VT_QUEUE_MAX	64
#define VT_WAIT_MS	5000	/* per round: generous, the host may be loaded */
#define VT_RESET_MS	1000
#define VT_GUARD	64	/* canary bytes after each segment */
#define VT_GUARD_BYTE	0xa5
#define VT_MIN_CHECK	8	/* below this, all-zero or equal bytes may be chance */
#define VT_LOG_MAX	16	/* failure lines printed; the rest are only counted */
#define VT_BYTES_MAX	(1ULL << 20)
#define VT_STRADDLE	32	/* first segment bytes before a page boundary */
#define VT_BAD_QNUM	3
#define VT_BATCH_BYTES	512	/* per buffer in the batch test */
#define VT_STATUS_LIVE	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | \
			 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK)
/* Feature bits 0-23 belong to the device type; the entropy device defines none. */
#define VT_DEVICE_BITS	((1ULL << 24) - 1)

static const char *const onoff[] = { "off", "on", NULL };

struct vt {
	struct ovc_guest_boot *boot;
	struct virtio_dev dev;
	struct virtq vq;
	struct virtio_heap heap;
	uint64_t bytes;
	bool indirect;		/* post through indirect tables */
	uint8_t *seg[2];	/* the two segment areas, each followed by VT_GUARD */
	uint8_t *cur, *prev;	/* this and the previous buffer, reassembled */
	uint32_t prev_len;
	uint64_t rounds, rng_bytes, errors;
	bool stopped;		/* boot->stop ended the rounds early */
};

static __attribute__((format(printf, 2, 3))) void fail(struct vt *t, const char *fmt, ...)
{
	char buf[200];
	va_list ap;

	if (t->errors++ < VT_LOG_MAX) {
		va_start(ap, fmt);
		rt_vsnprintf(buf, sizeof(buf), fmt, ap);
		va_end(ap);
		rt_printf(PROG ": FAIL: %s\n", buf);
	} else if (t->errors == VT_LOG_MAX + 1) {
		rt_printf(PROG ": further failures are only counted\n");
	}
}

/* Probe every window; keep the first entropy device. Return the device count. */
static unsigned int probe_all(struct vt *t, bool *found)
{
	const struct ovc_guest_boot *boot = t->boot;
	unsigned int i, n = 0;
	struct virtio_dev d;
	int ret;

	*found = false;
	rt_printf(PROG ": %u virtio-mmio windows at %#lx, irq base %u\n",
		  boot->virtio_mmio_count, (unsigned long)boot->virtio_mmio_base,
		  boot->virtio_irq_base);
	for (i = 0; i < boot->virtio_mmio_count; i++) {
		ret = virtio_probe(&d, boot, i);
		if (ret == -VIRTIO_ENOENT)
			continue;	/* a placeholder: the spec says ignore, no error */
		if (ret == -VIRTIO_EINVAL) {
			fail(t, "boot block: window %u of %u at %#lx, irq base %u out of bounds",
			     i, boot->virtio_mmio_count,
			     (unsigned long)boot->virtio_mmio_base, boot->virtio_irq_base);
			break;
		}
		if (ret) {
			/* Re-read only what virtio_probe() read before it gave up. */
			fail(t, "window %u at %#lx: %s (%s %#x)", i, (unsigned long)d.base,
			     virtio_strerror(ret), ret == -VIRTIO_ENODEV ? "magic" : "version",
			     virtio_read(&d, ret == -VIRTIO_ENODEV ? VIRTIO_MMIO_MAGIC_VALUE :
							      VIRTIO_MMIO_VERSION));
			continue;
		}
		n++;
		rt_printf(PROG ": window %u at %#lx: device %u vendor %#x vector %#x\n",
			  i, (unsigned long)d.base, d.device_id, d.vendor_id, d.vector);
		if (d.device_id == VIRTIO_ID_ENTROPY && !*found) {
			t->dev = d;
			*found = true;
		}
	}
	return n;
}

/* Initialise the entropy device and its requestq; false if it is unusable. */
static bool rng_setup(struct vt *t, bool want_event_idx, bool want_indirect)
{
	struct virtio_dev *dev = &t->dev;
	uint64_t wanted = 0, offered;
	uint32_t status, isr, num_max;
	int ret;

	if (want_event_idx)
		wanted |= VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX);
	if (want_indirect)
		wanted |= VIRTIO_FEATURE(VIRTIO_F_INDIRECT_DESC);
	ret = virtio_init(dev, wanted, VT_RESET_MS);
	if (ret) {
		fail(t, "init: %s (status %#x, device features %#lx)", virtio_strerror(ret),
		     virtio_status(dev), (unsigned long)dev->device_features);
		return false;
	}
	offered = dev->device_features;
	rt_printf(PROG ": features offered %#lx, negotiated %#lx\n",
		  (unsigned long)offered, (unsigned long)dev->features);
	if (offered & VT_DEVICE_BITS)
		fail(t, "entropy device offers device-specific features %#lx (none are defined)",
		     (unsigned long)(offered & VT_DEVICE_BITS));
	if (want_event_idx && !(offered & VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX)))
		rt_printf(PROG ": note: EVENT_IDX not offered, using the flags\n");
	if (want_indirect && !(offered & VIRTIO_FEATURE(VIRTIO_F_INDIRECT_DESC)))
		rt_printf(PROG ": note: INDIRECT_DESC not offered, posting direct chains\n");
	t->indirect = dev->features & VIRTIO_FEATURE(VIRTIO_F_INDIRECT_DESC);

	ret = virtq_setup(&t->vq, dev, 0, VT_QUEUE_MAX, &t->heap);
	if (ret) {
		fail(t, "requestq setup: %s", virtio_strerror(ret));
		virtio_fail(dev);
		return false;
	}
	/* QueueSel is still 0: QueueNumMax may be read at any time. */
	num_max = virtio_read(dev, VIRTIO_MMIO_QUEUE_NUM_MAX);
	rt_printf(PROG ": requestq: QueueNumMax %u, size %u, rings at %#lx %#lx %#lx\n",
		  num_max, t->vq.num, (unsigned long)(uintptr_t)t->vq.desc,
		  (unsigned long)(uintptr_t)t->vq.avail, (unsigned long)(uintptr_t)t->vq.used);

	ret = virtio_driver_ok(dev);
	status = virtio_status(dev);
	if (ret) {
		fail(t, "DRIVER_OK refused: status %#x", status);
		virtio_fail(dev);
		return false;
	}
	if (status != VT_STATUS_LIVE)
		fail(t, "status %#x after DRIVER_OK, expected %#x", status, VT_STATUS_LIVE);
	isr = virtio_read(dev, VIRTIO_MMIO_INTERRUPT_STATUS);
	if (isr) {
		fail(t, "InterruptStatus %#x before any buffer was posted", isr);
		virtio_irq_ack(dev, isr);
	}
	rt_printf(PROG ": device live, config generation %u\n", virtio_config_generation(dev));
	return true;
}

/* Fill a segment with zeros and its guard with canaries. */
static void seg_prepare(uint8_t *p, uint32_t len)
{
	memset(p, 0, len);
	memset(p + len, VT_GUARD_BYTE, VT_GUARD);
}

static bool guard_intact(const uint8_t *p, uint32_t len)
{
	unsigned int i;

	for (i = 0; i < VT_GUARD; i++)
		if (p[len + i] != VT_GUARD_BYTE)
			return false;
	return true;
}

static bool all_zero(const uint8_t *p, uint32_t len)
{
	uint32_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

/* Check one used buffer of @len bytes over segments of @s1 and @s2 bytes. */
static void check_buffer(struct vt *t, uint64_t r, uint32_t len, uint32_t s1, uint32_t s2)
{
	uint32_t n = MIN(len, s1 + s2), cmp;
	uint8_t *tmp;

	if (!len || len > s1 + s2)
		fail(t, "round %lu: used len %u, buffer holds %u", (unsigned long)r, len, s1 + s2);
	if (!guard_intact(t->seg[0], s1) || (s2 && !guard_intact(t->seg[1], s2)))
		fail(t, "round %lu: the device wrote past a segment's end", (unsigned long)r);

	/* The device fills from the first writable segment onwards. */
	memcpy(t->cur, t->seg[0], MIN(n, s1));
	if (n > s1)
		memcpy(t->cur + s1, t->seg[1], n - s1);
	if (n >= VT_MIN_CHECK && all_zero(t->cur, n))
		fail(t, "round %lu: %u bytes, all zero", (unsigned long)r, n);
	cmp = MIN(n, t->prev_len);
	if (cmp >= VT_MIN_CHECK && !memcmp(t->cur, t->prev, cmp))
		fail(t, "round %lu: the same %u bytes as the previous buffer",
		     (unsigned long)r, cmp);

	tmp = t->prev;
	t->prev = t->cur;
	t->cur = tmp;
	t->prev_len = n;
}

/* One request; false when the rounds must end (the device is stuck, or stop). */
static bool rng_round(struct vt *t, uint64_t r)
{
	struct virtio_dev *dev = &t->dev;
	struct virtq *vq = &t->vq;
	bool chained = (r & 1) && t->bytes >= 2;
	uint32_t s1 = chained ? (uint32_t)(t->bytes / 2) : (uint32_t)t->bytes;
	uint32_t s2 = chained ? (uint32_t)t->bytes - s1 : 0, len = 0, isr;
	struct virtq_seg segs[2] = {
		{ (uintptr_t)t->seg[0], s1 },
		{ (uintptr_t)t->seg[1], s2 },
	};
	uint64_t irq0;
	int head, id, ret;

	seg_prepare(t->seg[0], s1);
	if (chained)
		seg_prepare(t->seg[1], s2);

	irq0 = virtio_irq_count(dev);
	head = virtq_add(vq, segs, 0, chained ? 2 : 1, t->indirect ? VIRTQ_ADD_INDIRECT : 0);
	if (head < 0) {
		fail(t, "round %lu: add: %s", (unsigned long)r, virtio_strerror(head));
		return false;
	}
	virtq_kick(vq);

	ret = virtq_wait(vq, irq0, VIRTQ_WAIT_USED | VIRTQ_WAIT_IRQ, VT_WAIT_MS);
	if (ret == -VIRTIO_ECANCELED) {
		t->stopped = true;
		return false;
	}
	if (ret) {
		fail(t, "round %lu: %s waiting: used idx %u (consumed %u), irqs %lu -> %lu, "
		     "avail_event %u, used flags %#x, InterruptStatus %#x, status %#x",
		     (unsigned long)r, virtio_strerror(ret), vq->used->idx, vq->last_used,
		     (unsigned long)irq0, (unsigned long)virtio_irq_count(dev),
		     *vq->avail_event, vq->used->flags,
		     virtio_read(dev, VIRTIO_MMIO_INTERRUPT_STATUS), virtio_status(dev));
		return false;
	}

	/* The spec's order: read what caused the interrupt, handle it, ACK it. */
	isr = virtio_irq_status(dev);
	if (!(isr & VIRTIO_MMIO_INT_VRING))
		fail(t, "round %lu: interrupt taken but InterruptStatus is %#x",
		     (unsigned long)r, isr);
	id = virtq_get(vq, &len);
	virtio_irq_ack(dev, isr);
	if (id < 0) {
		fail(t, "round %lu: get: %s", (unsigned long)r, virtio_strerror(id));
		return false;
	}
	if (id != head)
		fail(t, "round %lu: used id %d, posted head %d", (unsigned long)r, id, head);
	check_buffer(t, r, len, s1, s2);
	t->rounds++;
	t->rng_bytes += len;
	return true;
}

static void rng_run(struct vt *t, uint64_t rounds, uint64_t seconds)
{
	uint64_t end = seconds ? rdtsc() + ns_to_tsc(seconds * NSEC_PER_SEC) : 0, r;
	uint8_t *area;

	/*
	 * Segment 0 starts VT_STRADDLE bytes before a page boundary, so the
	 * device has to follow a buffer across pages; segment 1 sits pages
	 * away from it.
	 */
	area = virtio_heap_alloc(&t->heap, PAGE_SIZE + t->bytes + VT_GUARD, PAGE_SIZE);
	t->seg[1] = virtio_heap_alloc(&t->heap, t->bytes + VT_GUARD, PAGE_SIZE);
	t->cur = virtio_heap_alloc(&t->heap, t->bytes, 64);
	t->prev = virtio_heap_alloc(&t->heap, t->bytes, 64);
	if (!area || !t->seg[1] || !t->cur || !t->prev) {
		fail(t, "no room for %lu-byte buffers below %#lx", (unsigned long)t->bytes,
		     (unsigned long)t->heap.end);
		return;
	}
	t->seg[0] = area + PAGE_SIZE - VT_STRADDLE;

	for (r = 0;; r++) {
		if (r >= rounds && (!end || rdtsc() >= end))
			break;
		if (t->boot->stop) {
			t->stopped = true;
			break;
		}
		if (!rng_round(t, r))
			break;
	}
	if (t->stopped)
		rt_printf(PROG ": boot->stop: ending after %lu rounds\n", (unsigned long)t->rounds);
}

/*
 * Fill the whole queue with one kick: many chains in flight at once, the
 * free list, -VIRTIO_ENOSPC when full, several used entries per interrupt.
 * Direct: single descriptors (two-descriptor chains would not fit num of
 * them); indirect: every other buffer is a two-segment table.
 */
static void batch_test(struct vt *t)
{
	struct virtio_dev *dev = &t->dev;
	struct virtq *vq = &t->vq;
	uint32_t bsz = (uint32_t)MIN(t->bytes, VT_BATCH_BYTES), stride = bsz + VT_GUARD;
	uint32_t s1, len, isr, got = 0, i, n = vq->num;
	uint32_t used_len[VT_QUEUE_MAX];	/* by buffer; UINT32_MAX: not used yet */
	int buf_of[VT_QUEUE_MAX];		/* by head: the buffer it carries */
	uint64_t irq0, kicks0 = vq->kicks;
	struct virtq_seg segs[2];
	uint8_t *area, *p;
	int head, id, ret;
	bool two;

	area = virtio_heap_alloc(&t->heap, (uint64_t)stride * n, 64);
	if (!area) {
		fail(t, "batch: no room for %u buffers", n);
		return;
	}
	for (i = 0; i < VT_QUEUE_MAX; i++) {
		used_len[i] = UINT32_MAX;
		buf_of[i] = -1;
	}
	irq0 = virtio_irq_count(dev);
	for (i = 0; i < n; i++) {
		p = area + (size_t)i * stride;
		two = t->indirect && (i & 1) && bsz >= 2;
		s1 = two ? bsz / 2 : bsz;
		seg_prepare(p, bsz);
		segs[0] = (struct virtq_seg){ (uintptr_t)p, s1 };
		segs[1] = (struct virtq_seg){ (uintptr_t)p + s1, bsz - s1 };
		head = virtq_add(vq, segs, 0, two ? 2 : 1, t->indirect ? VIRTQ_ADD_INDIRECT : 0);
		if (head < 0) {
			fail(t, "batch: add %u of %u: %s", i, n, virtio_strerror(head));
			return;
		}
		buf_of[head] = (int)i;
	}
	segs[0] = (struct virtq_seg){ (uintptr_t)area, bsz };
	head = virtq_add(vq, segs, 0, 1, t->indirect ? VIRTQ_ADD_INDIRECT : 0);
	if (head != -VIRTIO_ENOSPC)
		fail(t, "batch: add to a full queue returned %d, expected -ENOSPC", head);
	virtq_kick(vq);

	while (got < n) {
		ret = virtq_wait(vq, irq0, VIRTQ_WAIT_USED, VT_WAIT_MS);
		if (ret == -VIRTIO_ECANCELED) {
			t->stopped = true;
			return;
		}
		if (ret) {
			fail(t, "batch: %s after %u of %u used", virtio_strerror(ret), got, n);
			return;
		}
		while ((id = virtq_get(vq, &len)) >= 0) {
			got++;
			/* virtq_get() already refused ids that were not in flight. */
			if (buf_of[id] < 0) {
				fail(t, "batch: used id %d was never posted", id);
				continue;
			}
			used_len[buf_of[id]] = len;
			if (!len || len > bsz)
				fail(t, "batch: used len %u, buffer holds %u", len, bsz);
		}
		if (id != -VIRTIO_EAGAIN) {
			fail(t, "batch: get: %s", virtio_strerror(id));
			return;
		}
	}
	ret = virtq_wait(vq, irq0, VIRTQ_WAIT_IRQ, VT_WAIT_MS);
	if (ret)
		fail(t, "batch: no interrupt for %u used buffers: %s", n, virtio_strerror(ret));
	isr = virtio_irq_status(dev);
	virtio_irq_ack(dev, isr);
	for (i = 0; i < n; i++) {
		p = area + (size_t)i * stride;
		len = MIN(used_len[i], bsz);
		if (used_len[i] == UINT32_MAX)
			fail(t, "batch: buffer %u never came back", i);
		else if (!guard_intact(p, bsz))
			fail(t, "batch: buffer %u: written past its end", i);
		else if (len >= VT_MIN_CHECK && all_zero(p, len))
			fail(t, "batch: buffer %u: %u bytes, all zero", i, len);
	}
	rt_printf(PROG ": batch: %u buffers, %lu interrupts, %lu kicks\n", n,
		  (unsigned long)(virtio_irq_count(dev) - irq0),
		  (unsigned long)(vq->kicks - kicks0));
}

/* Unaligned reads are outside the spec's rules; they just must not hurt. */
static void unaligned_test(struct vt *t)
{
	struct virtio_dev *dev = &t->dev;
	uint32_t status = virtio_status(dev), a, b;

	a = mmio_read32(dev->base + VIRTIO_MMIO_MAGIC_VALUE + 2);
	b = mmio_read32(dev->base + VIRTIO_MMIO_STATUS + 1);
	rt_printf(PROG ": unaligned reads at +0x2 and +0x71 returned %#x %#x\n", a, b);
	if (virtio_read(dev, VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC)
		fail(t, "MagicValue changed after unaligned reads");
	if (virtio_status(dev) != status)
		fail(t, "status %#x -> %#x after unaligned reads", status, virtio_status(dev));
}

/* Return 1 if the device refused a queue of VT_BAD_QNUM entries, 0 if it took it. */
static uint64_t bad_queue_test(struct vt *t)
{
	struct virtio_dev *dev = &t->dev;
	uint32_t ready, status, isr;
	bool refused;
	void *d, *a, *u;
	int ret;

	ret = virtio_reset(dev, VT_RESET_MS);
	if (ret) {
		fail(t, "reset before the bad-queue test: %s (status %#x)",
		     virtio_strerror(ret), virtio_status(dev));
		return 0;
	}
	/* By hand, not virtq_setup(): the library refuses a size like this. */
	virtio_add_status(dev, VIRTIO_STATUS_ACKNOWLEDGE);
	virtio_add_status(dev, VIRTIO_STATUS_DRIVER);
	(void)virtio_read_device_features(dev);
	virtio_write(dev, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	virtio_write(dev, VIRTIO_MMIO_DRIVER_FEATURES, 0);
	virtio_write(dev, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	virtio_write(dev, VIRTIO_MMIO_DRIVER_FEATURES,
		     (uint32_t)(VIRTIO_FEATURE(VIRTIO_F_VERSION_1) >> 32));
	virtio_add_status(dev, VIRTIO_STATUS_FEATURES_OK);
	if (!(virtio_status(dev) & VIRTIO_STATUS_FEATURES_OK)) {
		fail(t, "bad-queue test: FEATURES_OK refused for VERSION_1 alone (status %#x)",
		     virtio_status(dev));
		return 0;
	}
	virtio_write(dev, VIRTIO_MMIO_QUEUE_SEL, 0);
	ready = virtio_read(dev, VIRTIO_MMIO_QUEUE_READY);
	if (ready)
		fail(t, "QueueReady %u after a reset", ready);

	/* Real, zeroed rings big enough for 4 entries: whatever the device does stays in them. */
	d = virtio_heap_alloc(&t->heap, 16 * 4, VIRTQ_DESC_ALIGN);
	a = virtio_heap_alloc(&t->heap, 6 + 2 * 4, VIRTQ_AVAIL_ALIGN);
	u = virtio_heap_alloc(&t->heap, 6 + 8 * 4, VIRTQ_USED_ALIGN);
	if (!d || !a || !u) {
		fail(t, "bad-queue test: out of ring memory");
		return 0;
	}
	virtio_queue_program(dev, VT_BAD_QNUM, d, a, u);
	virtio_write(dev, VIRTIO_MMIO_QUEUE_READY, 1);
	ready = virtio_read(dev, VIRTIO_MMIO_QUEUE_READY);

	virtio_add_status(dev, VIRTIO_STATUS_DRIVER_OK);
	status = virtio_status(dev);
	isr = virtio_irq_status(dev);
	refused = !ready || !(status & VIRTIO_STATUS_DRIVER_OK) ||
		  (status & VIRTIO_STATUS_NEEDS_RESET);
	rt_printf(PROG ": QueueNum %u: QueueReady reads %u, status %#x, InterruptStatus %#x: %s\n",
		  VT_BAD_QNUM, ready, status, isr, refused ? "refused" : "accepted");
	if (!refused)
		rt_printf(PROG ": note: the device accepted a queue size that is not a power of two\n");
	/* The spec: NEEDS_RESET while DRIVER_OK is set comes with a config change notification. */
	if ((status & VIRTIO_STATUS_NEEDS_RESET) && (status & VIRTIO_STATUS_DRIVER_OK) &&
	    !(isr & VIRTIO_MMIO_INT_CONFIG))
		fail(t, "DEVICE_NEEDS_RESET without a configuration change notification");
	if (isr)
		virtio_irq_ack(dev, isr);
	/* Give up on it the way a driver would; the final reset must clear this. */
	virtio_fail(dev);
	return refused;
}

static void final_reset_test(struct vt *t)
{
	struct virtio_dev *dev = &t->dev;
	uint32_t ready, isr;
	int ret;

	ret = virtio_reset(dev, VT_RESET_MS);
	if (ret) {
		fail(t, "final reset: %s (status %#x)", virtio_strerror(ret), virtio_status(dev));
		return;
	}
	/* The spec: a reset clears InterruptStatus and every queue's QueueReady. */
	virtio_write(dev, VIRTIO_MMIO_QUEUE_SEL, 0);
	ready = virtio_read(dev, VIRTIO_MMIO_QUEUE_READY);
	isr = virtio_read(dev, VIRTIO_MMIO_INTERRUPT_STATUS);
	if (ready)
		fail(t, "QueueReady %u after the final reset", ready);
	if (isr)
		fail(t, "InterruptStatus %#x after the final reset", isr);
	rt_printf(PROG ": final reset: status %#x\n", virtio_status(dev));
}

int guest_main(unsigned int vcpu, struct ovc_guest_boot *boot)
{
	uint64_t rounds = 64, bytes = 256, event_idx = 1, indirect = 0, seconds = 0;
	const struct rt_arg args[] = {
		{ "rounds", RT_ARG_U64, &rounds, NULL, 1ULL << 32 },
		{ "bytes", RT_ARG_U64, &bytes, NULL, VT_BYTES_MAX },
		{ "event-idx", RT_ARG_CHOICE, &event_idx, onoff },
		{ "indirect", RT_ARG_CHOICE, &indirect, onoff },
		{ "seconds", RT_ARG_U64, &seconds, NULL, 1ULL << 32 },
	};
	struct vt t = { .boot = boot };
	uint64_t irq_start = 0, refused = 0;
	unsigned int devices;
	bool found;

	if (vcpu != 0)
		return 0;
	if (rt_parse_args(PROG, boot->args, args, ARRAY_SIZE(args), true))
		return 2;
	if (!bytes) {
		rt_printf(PROG ": bad value '0' for argument 'bytes'\n");
		return 2;
	}
	t.bytes = bytes;
	rt_printf(PROG ": rounds=%lu bytes=%lu event-idx=%s indirect=%s seconds=%lu\n",
		  (unsigned long)rounds, (unsigned long)bytes, onoff[event_idx],
		  onoff[indirect], (unsigned long)seconds);
	/* Only this vCPU runs, so the whole heap is ours for rings and buffers. */
	virtio_heap_init(&t.heap, OVC_GUEST_HEAP, boot->heap_end);

	devices = probe_all(&t, &found);
	report("virtio_devices", OVC_GUEST_REPORT_ADD, devices);
	if (!found) {
		fail(&t, "no entropy device (DeviceID %u) among %u devices",
		     VIRTIO_ID_ENTROPY, devices);
		report("errors", OVC_GUEST_REPORT_ADD, t.errors);
		return 1;
	}
	irq_start = virtio_irq_count(&t.dev);

	if (rng_setup(&t, event_idx, indirect)) {
		rng_run(&t, rounds, seconds);
		if (!t.stopped && !t.errors)
			batch_test(&t);
	}
	unaligned_test(&t);
	refused = bad_queue_test(&t);
	final_reset_test(&t);

	report("rng_rounds", OVC_GUEST_REPORT_ADD, t.rounds);
	report("rng_bytes", OVC_GUEST_REPORT_ADD, t.rng_bytes);
	report("irqs", OVC_GUEST_REPORT_ADD, virtio_irq_count(&t.dev) - irq_start);
	report("kicks", OVC_GUEST_REPORT_ADD, t.vq.kicks);
	report("kicks_suppressed", OVC_GUEST_REPORT_ADD, t.vq.kicks_suppressed);
	report("bad_queue_refused", OVC_GUEST_REPORT_ADD, refused);

	if (!t.stopped && !t.errors && t.rounds < rounds)
		fail(&t, "only %lu of %lu rounds done", (unsigned long)t.rounds,
		     (unsigned long)rounds);
	report("errors", OVC_GUEST_REPORT_ADD, t.errors);
	rt_printf(PROG ": %s: devices=%u rounds=%lu bytes=%lu irqs=%lu kicks=%lu "
		  "suppressed=%lu bad_queue_refused=%lu errors=%lu\n",
		  t.errors ? "FAILED" : "ok", devices, (unsigned long)t.rounds,
		  (unsigned long)t.rng_bytes,
		  (unsigned long)(virtio_irq_count(&t.dev) - irq_start),
		  (unsigned long)t.vq.kicks, (unsigned long)t.vq.kicks_suppressed,
		  (unsigned long)refused, (unsigned long)t.errors);
	return t.errors ? 1 : 0;
}
