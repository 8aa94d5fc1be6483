/* SPDX-License-Identifier: MIT */
/* guest/rt/virtio.h: a small guest-side virtio-mmio (version 2) driver with split virtqueues. */
#ifndef OVC_GUEST_VIRTIO_H
#define OVC_GUEST_VIRTIO_H

#include "rt.h"

/*
 * Written from the virtio 1.x specification: "Virtio Over MMIO" for the
 * transport, "Split Virtqueues" for the rings, "Device Initialization" for
 * the status handshake. Only the modern interface (Version 2, VIRTIO_F_VERSION_1)
 * is driven; legacy (Version 1) windows are refused.
 *
 * Everything here runs at CPL3 on one vCPU at a time: nothing is locked,
 * and a struct virtio_dev or struct virtq must not be shared between vCPUs
 * without the caller's own lock.
 *
 * x86 is little-endian, like every virtio 1.x field, so ring and register
 * values are used as they are.
 *
 * Errors are negative numbers with errno's values (the guests have no libc,
 * hence the VIRTIO_E* names); virtio_strerror() names them. No call waits
 * without a timeout.
 */

/* ---- error codes: returned negated ---- */

#define VIRTIO_ENOENT		2	/* a valid window with DeviceID 0 (placeholder) */
#define VIRTIO_EIO		5	/* the device refused a step (FEATURES_OK, DRIVER_OK) */
#define VIRTIO_EAGAIN		11	/* nothing used yet */
#define VIRTIO_ENOMEM		12	/* the bump allocator ran out */
#define VIRTIO_EBUSY		16	/* the queue was already live (QueueReady != 0) */
#define VIRTIO_ENODEV		19	/* no virtio window (bad MagicValue), or no such queue */
#define VIRTIO_EINVAL		22	/* a bad argument */
#define VIRTIO_ENOSPC		28	/* not enough free descriptors */
#define VIRTIO_EPROTO		71	/* the device broke the protocol (bad used id, status) */
#define VIRTIO_ENOTSUP		95	/* a Version or feature set this driver cannot use */
#define VIRTIO_ETIMEDOUT	110	/* the device did not answer in time */
#define VIRTIO_ECANCELED	125	/* boot->stop was set while waiting */

/* virtio_strerror() - a short name for @err (negative or positive). */
const char *virtio_strerror(int err);

/* ---- the MMIO register file (spec: "MMIO Device Register Layout") ---- */

#define VIRTIO_MMIO_WINDOW		0x1000	/* one window per device, abi.h */
#define VIRTIO_MMIO_MAGIC		0x74726976	/* "virt" */
#define VIRTIO_MMIO_VERSION_MODERN	2

#define VIRTIO_MMIO_MAGIC_VALUE		0x000	/* R */
#define VIRTIO_MMIO_VERSION		0x004	/* R */
#define VIRTIO_MMIO_DEVICE_ID		0x008	/* R */
#define VIRTIO_MMIO_VENDOR_ID		0x00c	/* R */
#define VIRTIO_MMIO_DEVICE_FEATURES	0x010	/* R */
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL	0x014	/* W */
#define VIRTIO_MMIO_DRIVER_FEATURES	0x020	/* W */
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL	0x024	/* W */
#define VIRTIO_MMIO_QUEUE_SEL		0x030	/* W */
#define VIRTIO_MMIO_QUEUE_NUM_MAX	0x034	/* R */
#define VIRTIO_MMIO_QUEUE_NUM		0x038	/* W */
#define VIRTIO_MMIO_QUEUE_READY		0x044	/* RW */
#define VIRTIO_MMIO_QUEUE_NOTIFY	0x050	/* W */
#define VIRTIO_MMIO_INTERRUPT_STATUS	0x060	/* R */
#define VIRTIO_MMIO_INTERRUPT_ACK	0x064	/* W */
#define VIRTIO_MMIO_STATUS		0x070	/* RW */
#define VIRTIO_MMIO_QUEUE_DESC_LOW	0x080	/* W */
#define VIRTIO_MMIO_QUEUE_DESC_HIGH	0x084	/* W */
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW	0x090	/* W */
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH	0x094	/* W */
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW	0x0a0	/* W */
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH	0x0a4	/* W */
#define VIRTIO_MMIO_CONFIG_GENERATION	0x0fc	/* R */
#define VIRTIO_MMIO_CONFIG		0x100	/* device-specific, to the window's end */

/* InterruptStatus / InterruptACK bits; the others are undefined and ignored. */
#define VIRTIO_MMIO_INT_VRING		0x1	/* used buffer notification */
#define VIRTIO_MMIO_INT_CONFIG		0x2	/* configuration change notification */
#define VIRTIO_MMIO_INT_MASK		0x3

/* Device status bits (spec: "Device Status Field"). */
#define VIRTIO_STATUS_ACKNOWLEDGE	0x01
#define VIRTIO_STATUS_DRIVER		0x02
#define VIRTIO_STATUS_DRIVER_OK		0x04
#define VIRTIO_STATUS_FEATURES_OK	0x08
#define VIRTIO_STATUS_NEEDS_RESET	0x40
#define VIRTIO_STATUS_FAILED		0x80

/* Transport feature bits this driver knows (bit numbers). */
#define VIRTIO_F_INDIRECT_DESC		28
#define VIRTIO_F_EVENT_IDX		29
#define VIRTIO_F_VERSION_1		32
#define VIRTIO_FEATURE(bit)		(1ULL << (bit))

/* Device IDs (spec: "Device Types"). */
#define VIRTIO_ID_ENTROPY		4
#define VIRTIO_ID_BALLOON		5	/* the traditional memory balloon */

/* ---- split virtqueue layout (spec: "Split Virtqueues") ---- */

#define VIRTQ_DESC_F_NEXT		1
#define VIRTQ_DESC_F_WRITE		2
#define VIRTQ_DESC_F_INDIRECT		4
#define VIRTQ_AVAIL_F_NO_INTERRUPT	1
#define VIRTQ_USED_F_NO_NOTIFY		1

#define VIRTQ_MAX_SIZE			32768	/* largest split queue size */
#define VIRTQ_DESC_ALIGN		16
#define VIRTQ_AVAIL_ALIGN		2
#define VIRTQ_USED_ALIGN		4
#define VIRTQ_INDIRECT_MAX		8	/* descriptors per indirect table */

struct virtq_desc {
	uint64_t addr;		/* guest-physical (== virtual here) */
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* Followed by used_event (uint16_t) when VIRTIO_F_EVENT_IDX is negotiated. */
struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];
};

struct virtq_used_elem {
	uint32_t id;		/* head of the used descriptor chain */
	uint32_t len;		/* bytes the device wrote into it */
};

/* Followed by avail_event (uint16_t) when VIRTIO_F_EVENT_IDX is negotiated. */
struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[];
};

_Static_assert(sizeof(struct virtq_desc) == 16, "virtq_desc is 16 bytes");
_Static_assert(sizeof(struct virtq_used_elem) == 8, "virtq_used_elem is 8 bytes");

/* ---- barriers ---- */

/*
 * The device is a VMM thread on another host CPU reading and writing guest
 * RAM. x86 (TSO) never reorders a store with an older store, nor a load with
 * an older load, so the write barrier (descriptors and ring entries before
 * avail->idx) and the read barrier (used->idx before the used entry it
 * covers) only have to stop the compiler. A store followed by a load of
 * another location *can* pass on x86 (the store buffer), so the full barrier
 * between publishing avail->idx and reading avail_event / used->flags, and
 * between writing used_event and re-reading used->idx, is a real MFENCE.
 * MMIO register accesses trap to the VMM, and a VM exit drains the store
 * buffer, so ring stores are visible before the QueueNotify write lands.
 */
static inline void virtio_wmb(void)
{
	__asm__ volatile("" : : : "memory");
}

static inline void virtio_rmb(void)
{
	__asm__ volatile("" : : : "memory");
}

static inline void virtio_mb(void)
{
	__asm__ volatile("mfence" : : : "memory");
}

/* ---- volatile MMIO accessors ---- */

/*
 * One plain MOV per access, in inline assembly so that the compiler can
 * neither merge, split nor turn it into a read-modify-write instruction:
 * the VMM decodes the faulting instruction, and the spec asks for 32-bit
 * aligned accesses to the control registers.
 */
static inline uint32_t mmio_read32(uint64_t addr)
{
	uint32_t v;

	__asm__ volatile("movl %1, %0"
			 : "=r"(v) : "m"(*(const volatile uint32_t *)(uintptr_t)addr)
			 : "memory");
	return v;
}

static inline uint16_t mmio_read16(uint64_t addr)
{
	uint16_t v;

	__asm__ volatile("movw %1, %0"
			 : "=r"(v) : "m"(*(const volatile uint16_t *)(uintptr_t)addr)
			 : "memory");
	return v;
}

static inline uint8_t mmio_read8(uint64_t addr)
{
	uint8_t v;

	__asm__ volatile("movb %1, %0"
			 : "=q"(v) : "m"(*(const volatile uint8_t *)(uintptr_t)addr)
			 : "memory");
	return v;
}

static inline void mmio_write32(uint64_t addr, uint32_t v)
{
	__asm__ volatile("movl %1, %0"
			 : "=m"(*(volatile uint32_t *)(uintptr_t)addr) : "r"(v)
			 : "memory");
}

/* ---- a bump allocator for ring memory ---- */

/**
 * struct virtio_heap - hands out zeroed, aligned pieces of [@next, @end)
 * @next: first free guest-physical byte
 * @end: end of the region
 *
 * Never frees: the guests set their devices up once. Pair with nothing.
 */
struct virtio_heap {
	uint64_t next;
	uint64_t end;
};

/* virtio_heap_init() - use the identity-mapped RAM [@start, @end) for allocations. */
void virtio_heap_init(struct virtio_heap *h, uint64_t start, uint64_t end);

/**
 * virtio_heap_alloc() - carve @size bytes aligned to @align from @h
 * @align: a power of two
 *
 * Return: the zeroed memory (its address is also its guest-physical
 * address), or NULL if @h is exhausted or @align is not a power of two.
 */
void *virtio_heap_alloc(struct virtio_heap *h, uint64_t size, uint64_t align)
	__attribute__((warn_unused_result));

/* ---- a device ---- */

/**
 * struct virtio_dev - one virtio-mmio window
 * @base: guest-physical address of the window
 * @index: window number, 0 .. boot->virtio_mmio_count - 1
 * @vector: IDT vector of its interrupt (irq_count[@vector] counts them)
 * @device_id: DeviceID (0: a placeholder window)
 * @vendor_id: VendorID
 * @device_features: what the device offered (read by virtio_init())
 * @features: what was negotiated (valid once virtio_init() returned 0)
 * @stop: boot->stop; virtq_wait() gives up with -VIRTIO_ECANCELED once it is set
 *
 * The rest is private to virtio.c.
 */
struct virtio_dev {
	uint64_t base;
	unsigned int index;
	unsigned int vector;
	uint32_t device_id;
	uint32_t vendor_id;
	uint64_t device_features;
	uint64_t features;
	const volatile uint32_t *stop;

	/* private */
	uint32_t driver_status;		/* the bits this driver set since the last reset */
};

static inline uint32_t virtio_read(const struct virtio_dev *d, uint32_t reg)
{
	return mmio_read32(d->base + reg);
}

static inline void virtio_write(const struct virtio_dev *d, uint32_t reg, uint32_t v)
{
	mmio_write32(d->base + reg, v);
}

/**
 * virtio_probe() - identify window @index of the boot block's virtio-mmio range
 * @dev: filled in (also on failure, as far as it got)
 *
 * Reads MagicValue and Version, then DeviceID, and VendorID only for a real
 * device, as the spec orders; touches nothing else.
 *
 * Return: 0 for a usable device; -VIRTIO_EINVAL if @index or the boot
 * block's window range or interrupt base is out of bounds; -VIRTIO_ENODEV
 * for a bad MagicValue; -VIRTIO_ENOTSUP for a Version other than 2;
 * -VIRTIO_ENOENT for DeviceID 0, which the spec says to skip silently.
 */
int virtio_probe(struct virtio_dev *dev, const struct ovc_guest_boot *boot,
		 unsigned int index) __attribute__((warn_unused_result));

/* virtio_status() - the Status register. */
static inline uint32_t virtio_status(const struct virtio_dev *d)
{
	return virtio_read(d, VIRTIO_MMIO_STATUS);
}

/*
 * virtio_add_status() - write the bits this driver set so far plus @bits:
 * the driver never clears a status bit except by a reset, and never echoes
 * back one the device set (DEVICE_NEEDS_RESET) or refused (FEATURES_OK).
 */
void virtio_add_status(struct virtio_dev *dev, uint32_t bits);

/* virtio_fail() - set FAILED: the driver gives up on the device until a reset. */
void virtio_fail(struct virtio_dev *dev);

/**
 * virtio_reset() - write 0 to Status and wait until it reads back 0
 * @timeout_ms: how long the device may take
 *
 * Does not give up on boot->stop: a reset is what a guest does on its way
 * out, and @timeout_ms bounds it.
 *
 * Return: 0 or -VIRTIO_ETIMEDOUT.
 */
int virtio_reset(struct virtio_dev *dev, uint32_t timeout_ms)
	__attribute__((warn_unused_result));

/* virtio_read_device_features() - all 64 offered feature bits, one select word at a time. */
uint64_t virtio_read_device_features(struct virtio_dev *dev);

/**
 * virtio_init() - reset, ACKNOWLEDGE, DRIVER, negotiate, FEATURES_OK
 * @wanted: optional feature bits the driver can use; those the device
 *	offers are accepted. VIRTIO_F_VERSION_1 is always required.
 * @timeout_ms: for the reset
 *
 * Leaves the device ready for virtq_setup() and then virtio_driver_ok().
 * On failure after the reset it sets FAILED.
 *
 * Return: 0 (@dev->features holds the result); -VIRTIO_ENOTSUP if the device
 * does not offer VIRTIO_F_VERSION_1; -VIRTIO_EIO if FEATURES_OK did not
 * stick (the device refused the subset); virtio_reset()'s errors.
 */
int virtio_init(struct virtio_dev *dev, uint64_t wanted, uint32_t timeout_ms)
	__attribute__((warn_unused_result));

/**
 * virtio_driver_ok() - set DRIVER_OK once the queues are set up
 *
 * Return: 0 if the status then shows DRIVER_OK and not DEVICE_NEEDS_RESET;
 * -VIRTIO_EIO otherwise (the device refused the set-up).
 */
int virtio_driver_ok(struct virtio_dev *dev) __attribute__((warn_unused_result));

/* virtio_irq_count() - interrupts taken so far on the device's vector. */
static inline uint64_t virtio_irq_count(const struct virtio_dev *d)
{
	return irq_count[d->vector];
}

/* virtio_irq_status() - InterruptStatus, undefined bits masked off. */
static inline uint32_t virtio_irq_status(const struct virtio_dev *d)
{
	return virtio_read(d, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_MMIO_INT_MASK;
}

/* virtio_irq_ack() - write the handled events @bits to InterruptACK. */
static inline void virtio_irq_ack(const struct virtio_dev *d, uint32_t bits)
{
	virtio_write(d, VIRTIO_MMIO_INTERRUPT_ACK, bits & VIRTIO_MMIO_INT_MASK);
}

/* virtio_config_generation() - ConfigGeneration. */
static inline uint32_t virtio_config_generation(const struct virtio_dev *d)
{
	return virtio_read(d, VIRTIO_MMIO_CONFIG_GENERATION);
}

/**
 * virtio_config_read() - a consistent copy of device config bytes [@offset, +@len)
 *
 * A naturally aligned field of 1, 2, 4 or 8 bytes is read with accesses of its
 * width (8: two 32-bit reads), anything else byte by byte; the whole read is
 * repeated until ConfigGeneration is the same before and after it.
 *
 * Return: 0; -VIRTIO_EINVAL if the range leaves the window; -VIRTIO_EIO if
 * the generation kept changing.
 */
int virtio_config_read(const struct virtio_dev *dev, uint32_t offset, void *buf,
		       uint32_t len) __attribute__((warn_unused_result));

/**
 * virtio_config_write32() - write the naturally aligned 32-bit config field at @offset
 *
 * One 32-bit access, as the spec asks for a field of that width (the
 * balloon's @actual is the user). The device may change ConfigGeneration in
 * response; callers that read the field back use virtio_config_read().
 *
 * Return: 0; -VIRTIO_EINVAL if @offset is unaligned or leaves the window.
 */
int virtio_config_write32(const struct virtio_dev *dev, uint32_t offset, uint32_t val)
	__attribute__((warn_unused_result));

/* ---- split virtqueues ---- */

/**
 * struct virtq - the driver's side of one split virtqueue
 * @dev: the device it belongs to
 * @index: queue number (QueueSel, QueueNotify value)
 * @num: queue size, a power of two
 * @desc, @avail, @used: the three rings, in guest RAM
 * @used_event: in the avail ring, when @event_idx
 * @avail_event: in the used ring, when @event_idx
 * @event_idx: VIRTIO_F_EVENT_IDX was negotiated
 * @indirect: VIRTIO_F_INDIRECT_DESC was negotiated (@ind_tables is allocated)
 * @kicks: notifications sent by virtq_kick()
 * @kicks_suppressed: notifications virtq_kick() left out because the device
 *	asked for none (avail_event, or VIRTQ_USED_F_NO_NOTIFY)
 *
 * The rest is private to virtio.c.
 */
struct virtq {
	struct virtio_dev *dev;
	uint16_t index;
	uint16_t num;
	volatile struct virtq_desc *desc;
	volatile struct virtq_avail *avail;
	volatile struct virtq_used *used;
	volatile uint16_t *used_event;
	volatile uint16_t *avail_event;
	bool event_idx;
	bool indirect;
	uint64_t kicks;
	uint64_t kicks_suppressed;

	/* private */
	struct virtq_desc *ind_tables;	/* VIRTQ_INDIRECT_MAX per head */
	uint16_t *free_next;		/* free list links, driver memory only */
	uint16_t *chain_len;		/* descriptors held by each in-flight head; 0: free */
	uint16_t *chain_last;		/* last descriptor of each in-flight chain */
	uint16_t free_head;
	uint16_t num_free;
	uint16_t avail_next;		/* avail->idx once the next kick publishes */
	uint16_t avail_published;	/* avail->idx as last published */
	uint16_t last_used;		/* next used->ring entry to consume */
};

/**
 * virtio_queue_program() - write the selected queue's size and area addresses
 * @num: QueueNum
 * @desc, @avail, @used: the descriptor table, driver and device areas
 *
 * QueueSel must already name the queue; QueueReady is left to the caller.
 * Used by virtq_setup(), and by tests that hand the device a queue on purpose.
 */
void virtio_queue_program(struct virtio_dev *dev, uint32_t num, const volatile void *desc,
			  const volatile void *avail, const volatile void *used);

/**
 * virtq_setup() - allocate queue @index and hand it to the device
 * @max_num: the largest queue size wanted; the size is the largest power of
 *	two not above min(QueueNumMax, @max_num)
 * @heap: where the rings (and, with VIRTIO_F_INDIRECT_DESC, the indirect
 *	tables) come from
 *
 * Call after virtio_init() and before virtio_driver_ok(). Follows the MMIO
 * "Virtqueue Configuration" steps: QueueSel, QueueReady must read 0,
 * QueueNumMax, QueueNum, the three area addresses, QueueReady = 1.
 *
 * Return: 0; -VIRTIO_EINVAL (bad @max_num, or features not negotiated yet);
 * -VIRTIO_EBUSY if the queue was already ready; -VIRTIO_ENODEV if
 * QueueNumMax is 0; -VIRTIO_ENOMEM; -VIRTIO_EIO if QueueReady does not read
 * back 1.
 */
int virtq_setup(struct virtq *vq, struct virtio_dev *dev, uint16_t index,
		uint16_t max_num, struct virtio_heap *heap)
	__attribute__((warn_unused_result));

/* struct virtq_seg - one physically contiguous piece of a buffer. */
struct virtq_seg {
	uint64_t addr;
	uint32_t len;
};

#define VIRTQ_ADD_INDIRECT	0x1u	/* through an indirect table */

/**
 * virtq_add() - place one buffer: @n_out device-readable segments, then
 *	@n_in device-writable ones, from @segs
 * @flags: VIRTQ_ADD_INDIRECT or 0
 *
 * The buffer is only visible to the device after virtq_kick().
 *
 * Return: the head descriptor index (what virtq_get() returns for it);
 * -VIRTIO_EINVAL (no segments, a zero-length segment, more than 4 GiB, or
 * too many segments for the queue or an indirect table); -VIRTIO_ENOTSUP for
 * VIRTQ_ADD_INDIRECT without VIRTIO_F_INDIRECT_DESC; -VIRTIO_ENOSPC if the
 * descriptors are all in flight.
 */
int virtq_add(struct virtq *vq, const struct virtq_seg *segs, unsigned int n_out,
	      unsigned int n_in, unsigned int flags) __attribute__((warn_unused_result));

/**
 * virtq_kick() - publish what virtq_add() placed and notify the device
 *	unless it suppressed notifications (avail_event with
 *	VIRTIO_F_EVENT_IDX, VIRTQ_USED_F_NO_NOTIFY without)
 *
 * Ordering: a write barrier before the avail->idx store, a full barrier
 * between it and reading the suppression fields.
 *
 * Return: true if QueueNotify was written.
 */
bool virtq_kick(struct virtq *vq);

/* virtq_used_pending() - the device has used a buffer virtq_get() has not returned yet. */
static inline bool virtq_used_pending(const struct virtq *vq)
{
	return vq->used->idx != vq->last_used;
}

/**
 * virtq_get() - take the next used buffer and free its descriptors
 * @len: set to the bytes the device wrote
 *
 * With VIRTIO_F_EVENT_IDX, asks for an interrupt at the next used entry
 * (used_event); without it, the avail ring's flags stay 0 (interrupt always).
 *
 * Return: the buffer's head index; -VIRTIO_EAGAIN if none is used;
 * -VIRTIO_EPROTO if the device returned an id that is not in flight.
 */
int virtq_get(struct virtq *vq, uint32_t *len) __attribute__((warn_unused_result));

#define VIRTQ_WAIT_USED	0x1u	/* virtq_used_pending() */
#define VIRTQ_WAIT_IRQ	0x2u	/* virtio_irq_count() went past @irq_seen */

/**
 * virtq_wait() - wait until every condition in @what holds
 * @irq_seen: virtio_irq_count() taken before the kick, for VIRTQ_WAIT_IRQ
 * @timeout_ms: how long to wait at most
 *
 * Idles the vCPU through the HALT port between polls, at most a millisecond
 * at a time so boot->stop is seen; the VMM ends the idle early when it
 * raises an interrupt.
 *
 * Return: 0; -VIRTIO_ETIMEDOUT; -VIRTIO_ECANCELED once boot->stop is set;
 * -VIRTIO_EINVAL for an empty @what.
 */
int virtq_wait(struct virtq *vq, uint64_t irq_seen, unsigned int what,
	       uint32_t timeout_ms) __attribute__((warn_unused_result));

#endif /* OVC_GUEST_VIRTIO_H */
