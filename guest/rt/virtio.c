// SPDX-License-Identifier: MIT
/* guest/rt/virtio.c: virtio-mmio probing, status handshake, feature negotiation, split virtqueues. */
#include "virtio.h"

/* Status polls after a reset write: a few reads, then idle between them. */
#define RESET_SPINS		16
#define RESET_IDLE_US		100
/* The longest single idle_us() in a wait, so boot->stop is seen within ~1 ms. */
#define WAIT_IDLE_US		1000
/* ConfigGeneration retries before a config read gives up. */
#define CONFIG_RETRIES		64

const char *virtio_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case 0:			return "success";
	case VIRTIO_ENOENT:	return "placeholder device (DeviceID 0)";
	case VIRTIO_EIO:	return "device refused the step";
	case VIRTIO_EAGAIN:	return "nothing used yet";
	case VIRTIO_ENOMEM:	return "out of ring memory";
	case VIRTIO_EBUSY:	return "queue already ready";
	case VIRTIO_ENODEV:	return "no such device or queue";
	case VIRTIO_EINVAL:	return "invalid argument";
	case VIRTIO_ENOSPC:	return "no free descriptors";
	case VIRTIO_EPROTO:	return "device broke the protocol";
	case VIRTIO_ENOTSUP:	return "unsupported version or features";
	case VIRTIO_ETIMEDOUT:	return "timed out";
	case VIRTIO_ECANCELED:	return "stopped (boot->stop)";
	default:		return "unknown error";
	}
}

static uint64_t deadline_after_ms(uint32_t ms)
{
	return rdtsc() + ns_to_tsc((uint64_t)ms * NSEC_PER_MSEC);
}

/* ---- bump allocator ---- */

void virtio_heap_init(struct virtio_heap *h, uint64_t start, uint64_t end)
{
	h->next = start;
	h->end = end > start ? end : start;
}

void *virtio_heap_alloc(struct virtio_heap *h, uint64_t size, uint64_t align)
{
	uint64_t start;

	if (!align || (align & (align - 1)))
		return NULL;
	start = (h->next + align - 1) & ~(align - 1);
	if (start < h->next || start > h->end || size > h->end - start)
		return NULL;
	h->next = start + size;
	/* The spec asks for zeroed rings; fresh RAM may have been used before. */
	memset((void *)(uintptr_t)start, 0, size);
	return (void *)(uintptr_t)start;
}

/* ---- device ---- */

int virtio_probe(struct virtio_dev *dev, const struct ovc_guest_boot *boot,
		 unsigned int index)
{
	uint64_t base = boot->virtio_mmio_base;
	uint64_t vector = OVC_GUEST_VEC_IRQ0 + (uint64_t)boot->virtio_irq_base + index;

	memset(dev, 0, sizeof(*dev));
	dev->stop = &boot->stop;
	/*
	 * Only touch what abi.h calls the device hole: a bad boot block must
	 * not make us write to RAM, the IOAPIC or the LAPIC.
	 */
	if (index >= boot->virtio_mmio_count || base % VIRTIO_MMIO_WINDOW ||
	    base < OVC_GUEST_LOW_RAM_END || base >= OVC_GUEST_IOAPIC ||
	    boot->virtio_mmio_count > (OVC_GUEST_IOAPIC - base) / VIRTIO_MMIO_WINDOW ||
	    vector >= ARRAY_SIZE(irq_count))
		return -VIRTIO_EINVAL;

	dev->base = base + (uint64_t)index * VIRTIO_MMIO_WINDOW;
	dev->index = index;
	dev->vector = (unsigned int)vector;

	/* The spec's order: MagicValue and Version, then DeviceID, then the rest. */
	if (virtio_read(dev, VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC)
		return -VIRTIO_ENODEV;
	if (virtio_read(dev, VIRTIO_MMIO_VERSION) != VIRTIO_MMIO_VERSION_MODERN)
		return -VIRTIO_ENOTSUP;
	dev->device_id = virtio_read(dev, VIRTIO_MMIO_DEVICE_ID);
	if (!dev->device_id)
		return -VIRTIO_ENOENT;
	dev->vendor_id = virtio_read(dev, VIRTIO_MMIO_VENDOR_ID);
	return 0;
}

void virtio_add_status(struct virtio_dev *dev, uint32_t bits)
{
	dev->driver_status |= bits;
	virtio_write(dev, VIRTIO_MMIO_STATUS, dev->driver_status);
}

void virtio_fail(struct virtio_dev *dev)
{
	virtio_add_status(dev, VIRTIO_STATUS_FAILED);
}

int virtio_reset(struct virtio_dev *dev, uint32_t timeout_ms)
{
	uint64_t deadline = deadline_after_ms(timeout_ms);
	unsigned int spins = 0;

	dev->driver_status = 0;
	virtio_write(dev, VIRTIO_MMIO_STATUS, 0);
	/* The spec: wait for Status to read 0 before initialising again. */
	while (virtio_status(dev) != 0) {
		if (rdtsc() >= deadline)
			return -VIRTIO_ETIMEDOUT;
		if (++spins > RESET_SPINS)
			idle_us(RESET_IDLE_US);
	}
	return 0;
}

uint64_t virtio_read_device_features(struct virtio_dev *dev)
{
	uint64_t lo, hi;

	/* DeviceFeaturesSel must be written before every DeviceFeatures read. */
	virtio_write(dev, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	lo = virtio_read(dev, VIRTIO_MMIO_DEVICE_FEATURES);
	virtio_write(dev, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	hi = virtio_read(dev, VIRTIO_MMIO_DEVICE_FEATURES);
	return hi << 32 | lo;
}

int virtio_init(struct virtio_dev *dev, uint64_t wanted, uint32_t timeout_ms)
{
	int ret;

	dev->features = 0;
	ret = virtio_reset(dev, timeout_ms);
	if (ret)
		return ret;
	virtio_add_status(dev, VIRTIO_STATUS_ACKNOWLEDGE);
	virtio_add_status(dev, VIRTIO_STATUS_DRIVER);

	dev->device_features = virtio_read_device_features(dev);
	/* Version 2 windows are modern devices: no VERSION_1, no driver. */
	if (!(dev->device_features & VIRTIO_FEATURE(VIRTIO_F_VERSION_1))) {
		virtio_fail(dev);
		return -VIRTIO_ENOTSUP;
	}
	dev->features = (dev->device_features & wanted) |
			VIRTIO_FEATURE(VIRTIO_F_VERSION_1);

	virtio_write(dev, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	virtio_write(dev, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)dev->features);
	virtio_write(dev, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	virtio_write(dev, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(dev->features >> 32));

	virtio_add_status(dev, VIRTIO_STATUS_FEATURES_OK);
	if (!(virtio_status(dev) & VIRTIO_STATUS_FEATURES_OK)) {
		virtio_fail(dev);
		return -VIRTIO_EIO;
	}
	return 0;
}

int virtio_driver_ok(struct virtio_dev *dev)
{
	uint32_t status;

	virtio_add_status(dev, VIRTIO_STATUS_DRIVER_OK);
	status = virtio_status(dev);
	if (!(status & VIRTIO_STATUS_DRIVER_OK) || (status & VIRTIO_STATUS_NEEDS_RESET))
		return -VIRTIO_EIO;
	return 0;
}

/* One pass over the config range, each field with accesses of its own width. */
static void config_copy(const struct virtio_dev *dev, uint32_t offset, uint8_t *buf,
			uint32_t len)
{
	uint64_t addr = dev->base + VIRTIO_MMIO_CONFIG + offset;
	uint32_t v32[2];
	uint16_t v16;
	uint32_t i;

	if (len == 8 && !(offset % 4)) {
		/* The spec: 64-bit fields as two aligned 32-bit reads. */
		v32[0] = mmio_read32(addr);
		v32[1] = mmio_read32(addr + 4);
		memcpy(buf, v32, 8);
	} else if (len == 4 && !(offset % 4)) {
		v32[0] = mmio_read32(addr);
		memcpy(buf, v32, 4);
	} else if (len == 2 && !(offset % 2)) {
		v16 = mmio_read16(addr);
		memcpy(buf, &v16, 2);
	} else {
		for (i = 0; i < len; i++)
			buf[i] = mmio_read8(addr + i);
	}
}

int virtio_config_read(const struct virtio_dev *dev, uint32_t offset, void *buf,
		       uint32_t len)
{
	const uint32_t size = VIRTIO_MMIO_WINDOW - VIRTIO_MMIO_CONFIG;
	uint32_t before, after;
	unsigned int tries;

	if (!buf || !len || offset >= size || len > size - offset)
		return -VIRTIO_EINVAL;
	for (tries = 0; tries < CONFIG_RETRIES; tries++) {
		before = virtio_config_generation(dev);
		config_copy(dev, offset, buf, len);
		after = virtio_config_generation(dev);
		if (before == after)
			return 0;
	}
	return -VIRTIO_EIO;
}

int virtio_config_write32(const struct virtio_dev *dev, uint32_t offset, uint32_t val)
{
	const uint32_t size = VIRTIO_MMIO_WINDOW - VIRTIO_MMIO_CONFIG;

	if (offset % 4 || offset >= size || size - offset < 4)
		return -VIRTIO_EINVAL;
	mmio_write32(dev->base + VIRTIO_MMIO_CONFIG + offset, val);
	return 0;
}

/* ---- split virtqueues ---- */

void virtio_queue_program(struct virtio_dev *dev, uint32_t num, const volatile void *desc,
			  const volatile void *avail, const volatile void *used)
{
	uint64_t d = (uintptr_t)desc, a = (uintptr_t)avail, u = (uintptr_t)used;

	virtio_write(dev, VIRTIO_MMIO_QUEUE_NUM, num);
	virtio_write(dev, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)d);
	virtio_write(dev, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(d >> 32));
	virtio_write(dev, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)a);
	virtio_write(dev, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(a >> 32));
	virtio_write(dev, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)u);
	virtio_write(dev, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(u >> 32));
}

int virtq_setup(struct virtq *vq, struct virtio_dev *dev, uint16_t index,
		uint16_t max_num, struct virtio_heap *heap)
{
	uint32_t status, num_max, num;
	unsigned int i;

	if (!vq || !dev || !heap || !max_num)
		return -VIRTIO_EINVAL;
	/* Queues are set up between FEATURES_OK and DRIVER_OK. */
	status = virtio_status(dev);
	if (!(status & VIRTIO_STATUS_FEATURES_OK) || (status & VIRTIO_STATUS_DRIVER_OK))
		return -VIRTIO_EINVAL;

	memset(vq, 0, sizeof(*vq));
	virtio_write(dev, VIRTIO_MMIO_QUEUE_SEL, index);
	if (virtio_read(dev, VIRTIO_MMIO_QUEUE_READY))
		return -VIRTIO_EBUSY;
	num_max = virtio_read(dev, VIRTIO_MMIO_QUEUE_NUM_MAX);
	if (!num_max)
		return -VIRTIO_ENODEV;
	num = MIN(MIN(num_max, (uint32_t)max_num), (uint32_t)VIRTQ_MAX_SIZE);
	/* A split queue's size is a power of two: round down. */
	while (num & (num - 1))
		num &= num - 1;

	vq->dev = dev;
	vq->index = index;
	vq->num = (uint16_t)num;
	vq->event_idx = dev->features & VIRTIO_FEATURE(VIRTIO_F_EVENT_IDX);
	vq->indirect = dev->features & VIRTIO_FEATURE(VIRTIO_F_INDIRECT_DESC);

	/*
	 * The spec's minimum alignments (16, 2, 4), packed back to back: the
	 * device must not assume page-aligned rings in the modern layout.
	 * The trailing 2 bytes of avail and used are used_event/avail_event.
	 */
	vq->desc = virtio_heap_alloc(heap, 16ULL * num, VIRTQ_DESC_ALIGN);
	vq->avail = virtio_heap_alloc(heap, 6 + 2ULL * num, VIRTQ_AVAIL_ALIGN);
	vq->used = virtio_heap_alloc(heap, 6 + 8ULL * num, VIRTQ_USED_ALIGN);
	vq->free_next = virtio_heap_alloc(heap, 2ULL * num, 2);
	vq->chain_len = virtio_heap_alloc(heap, 2ULL * num, 2);
	vq->chain_last = virtio_heap_alloc(heap, 2ULL * num, 2);
	if (vq->indirect)
		vq->ind_tables = virtio_heap_alloc(heap,
				sizeof(struct virtq_desc) * VIRTQ_INDIRECT_MAX * num,
				VIRTQ_DESC_ALIGN);
	if (!vq->desc || !vq->avail || !vq->used || !vq->free_next ||
	    !vq->chain_len || !vq->chain_last || (vq->indirect && !vq->ind_tables))
		return -VIRTIO_ENOMEM;
	vq->used_event = &vq->avail->ring[num];
	vq->avail_event = (volatile uint16_t *)&vq->used->ring[num];

	for (i = 0; i < num; i++)
		vq->free_next[i] = (uint16_t)(i + 1 < num ? i + 1 : 0);
	vq->free_head = 0;
	vq->num_free = (uint16_t)num;
	/*
	 * avail->flags stays 0 (interrupts wanted); used->flags starts 0 as the
	 * spec asks (the allocator zeroed it); used_event 0 asks for an
	 * interrupt at the first used buffer.
	 */

	virtio_queue_program(dev, num, vq->desc, vq->avail, vq->used);
	/* The rings are written (zeroed) before the device may look at them. */
	virtio_wmb();
	virtio_write(dev, VIRTIO_MMIO_QUEUE_READY, 1);
	if (virtio_read(dev, VIRTIO_MMIO_QUEUE_READY) != 1)
		return -VIRTIO_EIO;
	return 0;
}

static int add_indirect(struct virtq *vq, const struct virtq_seg *segs,
			unsigned int n_out, unsigned int n)
{
	struct virtq_desc *tbl;
	uint16_t head;
	unsigned int i;

	if (!vq->indirect)
		return -VIRTIO_ENOTSUP;
	if (n > VIRTQ_INDIRECT_MAX)
		return -VIRTIO_EINVAL;
	if (!vq->num_free)
		return -VIRTIO_ENOSPC;

	head = vq->free_head;
	vq->free_head = vq->free_next[head];
	vq->num_free--;

	/* Each head owns one table, so a table is never reused while in flight. */
	tbl = vq->ind_tables + (size_t)head * VIRTQ_INDIRECT_MAX;
	for (i = 0; i < n; i++) {
		tbl[i].addr = segs[i].addr;
		tbl[i].len = segs[i].len;
		tbl[i].flags = (uint16_t)((i >= n_out ? VIRTQ_DESC_F_WRITE : 0) |
					  (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
		tbl[i].next = (uint16_t)(i + 1 < n ? i + 1 : 0);
	}
	/* INDIRECT alone: never with NEXT, and WRITE would be ignored anyway. */
	vq->desc[head].addr = (uintptr_t)tbl;
	vq->desc[head].len = (uint32_t)(n * sizeof(struct virtq_desc));
	vq->desc[head].flags = VIRTQ_DESC_F_INDIRECT;
	vq->desc[head].next = 0;
	vq->chain_len[head] = 1;
	vq->chain_last[head] = head;
	return head;
}

static int add_direct(struct virtq *vq, const struct virtq_seg *segs,
		      unsigned int n_out, unsigned int n)
{
	uint16_t head, d, last = 0;
	unsigned int i;

	/* A chain may not be longer than the queue size. */
	if (n > vq->num)
		return -VIRTIO_EINVAL;
	if (n > vq->num_free)
		return -VIRTIO_ENOSPC;

	/* Take the first n of the free list; free_next already links them. */
	head = d = vq->free_head;
	for (i = 0; i < n; i++) {
		vq->desc[d].addr = segs[i].addr;
		vq->desc[d].len = segs[i].len;
		vq->desc[d].flags = (uint16_t)((i >= n_out ? VIRTQ_DESC_F_WRITE : 0) |
					       (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
		vq->desc[d].next = i + 1 < n ? vq->free_next[d] : 0;
		last = d;
		d = vq->free_next[d];
	}
	vq->free_head = d;
	vq->num_free = (uint16_t)(vq->num_free - n);
	vq->chain_len[head] = (uint16_t)n;
	vq->chain_last[head] = last;
	return head;
}

int virtq_add(struct virtq *vq, const struct virtq_seg *segs, unsigned int n_out,
	      unsigned int n_in, unsigned int flags)
{
	unsigned int n = n_out + n_in, i;
	uint64_t total = 0;
	int head;

	if (!vq || !segs || !n || n < n_out || (flags & ~VIRTQ_ADD_INDIRECT))
		return -VIRTIO_EINVAL;
	for (i = 0; i < n; i++) {
		if (!segs[i].len)
			return -VIRTIO_EINVAL;
		total += segs[i].len;
	}
	/* The spec caps a chain at 2^32 bytes in total. */
	if (total > UINT32_MAX)
		return -VIRTIO_EINVAL;

	head = flags & VIRTQ_ADD_INDIRECT ? add_indirect(vq, segs, n_out, n) :
					    add_direct(vq, segs, n_out, n);
	if (head < 0)
		return head;
	vq->avail->ring[vq->avail_next & (vq->num - 1)] = (uint16_t)head;
	vq->avail_next++;
	return head;
}

/*
 * The event-index test from the spec: notify if the index the other side
 * asked about (@event) lies in the range of entries just published,
 * [@old, @new), all modulo 2^16.
 */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

bool virtq_kick(struct virtq *vq)
{
	uint16_t old_idx = vq->avail_published, new_idx = vq->avail_next;
	bool notify;

	if (old_idx == new_idx)
		return false;
	/* Descriptors and ring entries before the index that exposes them. */
	virtio_wmb();
	vq->avail->idx = new_idx;
	vq->avail_published = new_idx;
	/* The index store before the suppression loads, or a kick is lost. */
	virtio_mb();
	if (vq->event_idx)
		notify = need_event(*vq->avail_event, new_idx, old_idx);
	else
		notify = !(vq->used->flags & VIRTQ_USED_F_NO_NOTIFY);
	if (notify) {
		virtio_write(vq->dev, VIRTIO_MMIO_QUEUE_NOTIFY, vq->index);
		vq->kicks++;
	} else {
		vq->kicks_suppressed++;
	}
	return notify;
}

int virtq_get(struct virtq *vq, uint32_t *len)
{
	uint16_t used_idx = vq->used->idx;
	uint32_t id, n;

	if (used_idx == vq->last_used)
		return -VIRTIO_EAGAIN;
	/* used->idx before the entries it covers. */
	virtio_rmb();
	/* More used than could ever have been in flight: a broken device. */
	if ((uint16_t)(used_idx - vq->last_used) > vq->num)
		return -VIRTIO_EPROTO;

	id = vq->used->ring[vq->last_used & (vq->num - 1)].id;
	n = vq->used->ring[vq->last_used & (vq->num - 1)].len;
	/* Consume the entry even when it is bad, so the next one can be read. */
	vq->last_used++;
	if (vq->event_idx)
		*vq->used_event = vq->last_used;
	if (id >= vq->num || !vq->chain_len[id])
		return -VIRTIO_EPROTO;

	vq->free_next[vq->chain_last[id]] = vq->free_head;
	vq->free_head = (uint16_t)id;
	vq->num_free = (uint16_t)(vq->num_free + vq->chain_len[id]);
	vq->chain_len[id] = 0;
	if (len)
		*len = n;
	return (int)id;
}

int virtq_wait(struct virtq *vq, uint64_t irq_seen, unsigned int what,
	       uint32_t timeout_ms)
{
	uint64_t deadline = deadline_after_ms(timeout_ms), now, us;
	bool done;

	if (!vq || !what || (what & ~(VIRTQ_WAIT_USED | VIRTQ_WAIT_IRQ)))
		return -VIRTIO_EINVAL;
	for (;;) {
		done = true;
		if (what & VIRTQ_WAIT_USED)
			done &= virtq_used_pending(vq);
		if (what & VIRTQ_WAIT_IRQ)
			done &= virtio_irq_count(vq->dev) > irq_seen;
		if (done) {
			virtio_rmb();
			return 0;
		}
		if (vq->dev->stop && *vq->dev->stop)
			return -VIRTIO_ECANCELED;
		now = rdtsc();
		if (now >= deadline)
			return -VIRTIO_ETIMEDOUT;
		/*
		 * Halt rather than spin: the device is a host thread that may
		 * want this CPU, and the VMM wakes us when it interrupts.
		 */
		us = tsc_to_ns(deadline - now) / NSEC_PER_USEC;
		idle_us((uint32_t)MIN(MAX(us, 1), WAIT_IDLE_US));
	}
}
