/* SPDX-License-Identifier: MIT */
/* virtio 1.x device side: the virtio-mmio transport (layout version 2) and split virtqueues. */
#ifndef OVC_VIRTIO_H
#define OVC_VIRTIO_H

#include <stdint.h>
#include <sys/uio.h>
#include <ovc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Threading, for everything in this header except ovc_virtio_mmio_get_stats():
 * one thread at a time calls into a given transport and its queues. Usually
 * that is the vCPU thread that took the MMIO exit (the device's callbacks run
 * inside ovc_virtio_mmio_read()/_write() on that thread and pop, push and
 * notify from there). A device that also works from another thread must hold
 * one lock of its own around every call into the transport, its queues, and
 * the VMM's MMIO dispatch to it. The library takes no lock here.
 *
 * Everything the guest writes (registers, rings, descriptors) is untrusted:
 * bad input is ignored or rejected and counted in struct ovc_virtio_stats,
 * never trusted and never fatal to the process.
 */

/** Size of the register window a VMM maps per device; config space starts at 0x100. */
#define OVC_VIRTIO_MMIO_WINDOW 0x200
#define OVC_VIRTIO_MMIO_CONFIG 0x100
/** Largest device-specific config space that fits the window. */
#define OVC_VIRTIO_CONFIG_MAX (OVC_VIRTIO_MMIO_WINDOW - OVC_VIRTIO_MMIO_CONFIG)

/* Feature bits the transport itself implements (virtio 1.x numbering). */
#define OVC_VIRTIO_F_INDIRECT_DESC 28
#define OVC_VIRTIO_F_RING_EVENT_IDX 29
#define OVC_VIRTIO_F_VERSION_1 32
#define OVC_VIRTIO_FEATURE(bit) (1ULL << (bit))

/* Device status bits, as read from the Status register. */
#define OVC_VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define OVC_VIRTIO_STATUS_DRIVER 0x02
#define OVC_VIRTIO_STATUS_DRIVER_OK 0x04
#define OVC_VIRTIO_STATUS_FEATURES_OK 0x08
#define OVC_VIRTIO_STATUS_NEEDS_RESET 0x40
#define OVC_VIRTIO_STATUS_FAILED 0x80

/* InterruptStatus bits. */
#define OVC_VIRTIO_INT_USED 0x1
#define OVC_VIRTIO_INT_CONFIG 0x2

/** Limits: queues per device, regions of guest RAM, descriptors per queue. */
#define OVC_VIRTIO_MAX_QUEUES 64
#define OVC_VIRTIO_MAX_REGIONS 64
#define OVC_VIRTQ_MAX_SIZE 32768

/**
 * OVC_VIRTQ_ELEM_MAX_SEGS - buffers per direction in one element. A chain
 * with more device-readable (or more device-writable) buffers is rejected as
 * too long; Linux's balloon and free page reporting use at most 32.
 */
#define OVC_VIRTQ_ELEM_MAX_SEGS 64
/** OVC_VIRTQ_CHAIN_MAX_BYTES - a chain whose buffers add up to more is rejected. */
#define OVC_VIRTQ_CHAIN_MAX_BYTES (1ULL << 30)

struct ovc_virtio_mmio;
struct ovc_virtq;

/**
 * struct ovc_guest_region - one range of guest RAM as the device sees it
 * @gpa: guest-physical start
 * @size: bytes, non-zero
 * @hva: where the range is mapped in the VMM, for @size bytes
 */
struct ovc_guest_region {
	uint64_t gpa;
	uint64_t size;
	void *hva;
};

/**
 * struct ovc_virtio_mem - the guest RAM a device may touch
 * @regions: 1 to OVC_VIRTIO_MAX_REGIONS non-overlapping ranges, each with
 *	its hva congruent to its gpa modulo 16 (page-aligned KVM memory slots
 *	always are); copied by ovc_virtio_mmio_new(), so the array need not
 *	outlive the call (the mappings must outlive the transport). Guest RAM
 *	added later is not seen.
 * @nregions: how many
 *
 * Rings and buffers must each lie inside one region: a buffer that runs
 * from one region into the next is rejected even when the two are adjacent
 * in guest-physical space, because they need not be adjacent in the VMM.
 */
struct ovc_virtio_mem {
	const struct ovc_guest_region *regions;
	unsigned int nregions;
};

/**
 * struct ovc_virtio_device_ops - a device model plugged into a transport
 * @device_id: virtio device ID (5 for the balloon); 0 is refused
 * @vendor_id: VendorID register value
 * @features: the device's own feature bits. Must not contain transport bits
 *	(24–41) other than the three below. The transport always offers
 *	VIRTIO_F_VERSION_1 (and requires it from the driver),
 *	VIRTIO_F_RING_EVENT_IDX and VIRTIO_F_INDIRECT_DESC, so devices need not
 *	list them; the queues honour whichever the driver accepts.
 * @num_queues: 1 to OVC_VIRTIO_MAX_QUEUES
 * @queue_max_size: QueueNumMax of every queue: a power of two up to
 *	OVC_VIRTQ_MAX_SIZE
 * @config_size: bytes of device config space, up to OVC_VIRTIO_CONFIG_MAX
 * @config_read: fill @buf with @len (1, 2, 4 or 8) bytes of config space at
 *	@offset, little-endian; the transport has checked @offset + @len <=
 *	@config_size and zeroed @buf. Required when @config_size is non-zero.
 * @config_write: the driver wrote @len bytes at @offset (bounds checked, as
 *	above); the device decides which fields are writable. May be NULL:
 *	writes are then ignored and counted.
 * @driver_ok: the driver set DRIVER_OK with @features negotiated; the device
 *	starts. Return 0, or a negative errno to refuse: the transport then
 *	sets DEVICE_NEEDS_RESET. May pop from its queues. May be NULL.
 * @queue_notify: the driver notified @vq (only while DRIVER_OK is set and the
 *	device does not need reset; a notification that came earlier is
 *	delivered right after @driver_ok succeeds). The device pops until
 *	ovc_virtq_pop() returns 0 or an error, pushes, then ovc_virtq_notify().
 *	May be NULL.
 * @reset: the driver reset the device (Status 0). Drop every element popped
 *	so far: pushing one now fails with -ESTALE. May be NULL.
 *
 * Every method is called from the thread that called ovc_virtio_mmio_write()
 * (normally the vCPU thread that took the MMIO exit; ovc_virtio_mmio_read()
 * calls only @config_read), with the caller's serialization (see the top of
 * this header). Methods may call ovc_virtq_*() and
 * ovc_virtio_mmio_config_changed() but must not re-enter
 * ovc_virtio_mmio_read()/_write() or destroy the transport.
 */
struct ovc_virtio_device_ops {
	uint32_t device_id;
	uint32_t vendor_id;
	uint64_t features;
	unsigned int num_queues;
	uint16_t queue_max_size;
	uint32_t config_size;
	void (*config_read)(void *opaque, uint32_t offset, void *buf, uint32_t len);
	void (*config_write)(void *opaque, uint32_t offset, const void *buf, uint32_t len);
	int (*driver_ok)(void *opaque, uint64_t features);
	void (*queue_notify)(void *opaque, struct ovc_virtq *vq);
	void (*reset)(void *opaque);
};

/**
 * typedef ovc_virtio_irq_fn - raise the device's interrupt
 * @opaque: the pointer given with the function
 *
 * Edge-triggered: called once per event (a used-buffer notification the
 * driver did not suppress, a config change, DEVICE_NEEDS_RESET), typically
 * by writing 1 to a KVM irqfd. InterruptStatus tells the driver why.
 * Called from the thread calling into the transport; must not call back
 * into it.
 */
typedef void (*ovc_virtio_irq_fn)(void *opaque);

/**
 * struct ovc_virtio_stats - what the transport has seen, mostly rejected guest input
 * @bad_register_access: register access not 32-bit and aligned, unknown
 *	offset, read of a write-only or write of a read-only register, config
 *	access outside config space, queue register written while the queue is
 *	ready, features written after FEATURES_OK, notify of a missing queue
 * @bad_status: Status write that clears bits, sets unknown ones or skips a
 *	step (FEATURES_OK before DRIVER, DRIVER_OK before FEATURES_OK)
 * @features_refused: FEATURES_OK refused: unoffered bits or no VERSION_1
 * @bad_queue_config: QueueReady=1 refused: before FEATURES_OK, size not a
 *	power of two or above QueueNumMax, ring misaligned or not inside one
 *	region. The queue stays not ready and the device needs reset.
 * @bad_avail_idx: avail idx more than the queue size ahead of the device
 * @bad_desc_index: head or next index beyond the table (ring or indirect)
 * @chain_loop: a chain visiting more descriptors than its table holds
 * @chain_too_long: more than OVC_VIRTQ_ELEM_MAX_SEGS buffers in a direction
 *	or more than OVC_VIRTQ_CHAIN_MAX_BYTES in all
 * @desc_out_of_ram: a buffer not inside guest RAM (or wrapping around)
 * @desc_straddle: a buffer in RAM but across regions that abut in
 *	guest-physical space
 * @bad_chain: a device-readable buffer after a device-writable one
 * @bad_indirect: indirect descriptor not negotiated, nested, with NEXT, a
 *	table length of 0 or not a multiple of 16, or a table not inside RAM
 * @queue_broken: times a queue was marked broken by a bad ring or chain
 *	(bad_avail_idx through bad_indirect): the queue stops and the device
 *	needs reset
 * @notifies: queue notifications delivered to the device
 * @notifies_ignored: notifications while the device was not running
 * @interrupts: times the irq callback was called
 * @interrupts_suppressed: used-buffer notifications the driver suppressed
 *	(EVENT_IDX or VIRTQ_AVAIL_F_NO_INTERRUPT)
 * @resets: device resets by the driver
 */
struct ovc_virtio_stats {
	uint64_t bad_register_access;
	uint64_t bad_status;
	uint64_t features_refused;
	uint64_t bad_queue_config;
	uint64_t bad_avail_idx;
	uint64_t bad_desc_index;
	uint64_t chain_loop;
	uint64_t chain_too_long;
	uint64_t desc_out_of_ram;
	uint64_t desc_straddle;
	uint64_t bad_chain;
	uint64_t bad_indirect;
	uint64_t queue_broken;
	uint64_t notifies;
	uint64_t notifies_ignored;
	uint64_t interrupts;
	uint64_t interrupts_suppressed;
	uint64_t resets;
};

/**
 * ovc_virtio_mmio_new() - create a virtio-mmio transport for one device
 * @ops: the device; must outlive the transport
 * @dev_opaque: passed to every @ops method
 * @mem: the guest RAM the device may touch (the region array is copied)
 * @irq: raises the device's interrupt
 * @irq_opaque: passed to @irq
 *
 * The transport starts reset (Status 0). Pair with ovc_virtio_mmio_destroy().
 *
 * Return: the transport, or NULL with errno set: EINVAL for NULL @ops, @mem
 *	or @irq, bad @ops limits (see struct ovc_virtio_device_ops), no or too
 *	many regions, an empty, wrapping or overlapping region, a NULL hva or
 *	one not congruent with its gpa (see struct ovc_virtio_mem); ENOMEM.
 * Context: any thread.
 */
OVC_EXPORT struct ovc_virtio_mmio *
ovc_virtio_mmio_new(const struct ovc_virtio_device_ops *ops, void *dev_opaque,
		    const struct ovc_virtio_mem *mem, ovc_virtio_irq_fn irq,
		    void *irq_opaque);

/**
 * ovc_virtio_mmio_destroy() - free a transport
 * @m: the transport, or NULL
 *
 * Calls no device method; the device's queues are gone afterwards.
 * Context: the caller's serialization; nothing may be calling into @m.
 */
OVC_EXPORT void ovc_virtio_mmio_destroy(struct ovc_virtio_mmio *m);

/**
 * ovc_virtio_mmio_read() - serve a guest read of the device's MMIO window
 * @m: the transport
 * @offset: offset in the window (registers below 0x100, config space from 0x100)
 * @data: receives @len bytes, little-endian, as the guest will see them
 * @len: access width: 1, 2, 4 or 8
 *
 * Registers take 32-bit aligned accesses only; config space any width at
 * any offset inside config_size. Anything else reads as zeros and counts
 * in @bad_register_access.
 *
 * Return: 0 (also for a bad guest access: complete the exit with @data), or
 *	-EINVAL for NULL @m or @data or a bad @len.
 * Context: the vCPU thread that took the MMIO exit; the caller serializes.
 */
OVC_EXPORT int ovc_virtio_mmio_read(struct ovc_virtio_mmio *m, uint64_t offset,
				    void *data, unsigned int len);

/**
 * ovc_virtio_mmio_write() - serve a guest write to the device's MMIO window
 * @m: the transport
 * @offset: offset in the window
 * @data: @len bytes, little-endian, as the guest wrote them
 * @len: access width: 1, 2, 4 or 8
 *
 * May call the device's methods (config_write, driver_ok, queue_notify,
 * reset) and the irq callback before it returns. A bad guest access is
 * ignored and counted.
 *
 * Return: 0 (also for a bad guest access), or -EINVAL for NULL @m or @data
 *	or a bad @len.
 * Context: the vCPU thread that took the MMIO exit; the caller serializes.
 */
OVC_EXPORT int ovc_virtio_mmio_write(struct ovc_virtio_mmio *m, uint64_t offset,
				     const void *data, unsigned int len);

/**
 * ovc_virtio_mmio_config_changed() - tell the driver the config space changed
 * @m: the transport
 *
 * Bumps ConfigGeneration; once DRIVER_OK is set, also sets the
 * config-change bit in InterruptStatus and raises the interrupt.
 * Context: the caller's serialization (e.g. from a device method).
 */
OVC_EXPORT void ovc_virtio_mmio_config_changed(struct ovc_virtio_mmio *m);

/**
 * ovc_virtio_mmio_queue() - one of the device's queues
 * @m: the transport
 * @index: 0 to num_queues - 1
 *
 * For devices that pop or push outside queue_notify (in driver_ok, or from
 * a timer under their lock). The queue lives as long as the transport.
 *
 * Return: the queue, or NULL for a NULL @m or an @index out of range.
 * Context: any thread.
 */
OVC_EXPORT struct ovc_virtq *ovc_virtio_mmio_queue(struct ovc_virtio_mmio *m,
						   unsigned int index);

/**
 * ovc_virtio_mmio_get_stats() - copy out the transport's counters
 * @m: the transport
 * @st: filled with the counters
 *
 * Each counter is exact; together they are not one atomic picture.
 *
 * Return: 0, or -EINVAL for NULL arguments.
 * Context: any thread, lock-free.
 */
OVC_EXPORT int ovc_virtio_mmio_get_stats(const struct ovc_virtio_mmio *m,
					 struct ovc_virtio_stats *st);

/**
 * struct ovc_virtq_elem - one descriptor chain popped from a queue
 * @head: the chain's head index, reported back by ovc_virtq_push()
 * @nout: how many device-readable buffers, in @out
 * @nin: how many device-writable buffers, in @in
 * @out: device-readable buffers, in chain order
 * @in: device-writable buffers, in chain order
 * @gen: private: ties the element to the ring it came from
 *
 * The iovecs point into guest RAM and were bounds-checked against it when
 * popped. The guest can still change the bytes they point to at any time:
 * copy what you parse out of a buffer before checking it.
 * About 2 KiB: keep one per device rather than on small stacks.
 */
struct ovc_virtq_elem {
	uint16_t head;
	unsigned int nout, nin;
	struct iovec out[OVC_VIRTQ_ELEM_MAX_SEGS];
	struct iovec in[OVC_VIRTQ_ELEM_MAX_SEGS];
	uint32_t gen;
};

/**
 * ovc_virtq_pop() - take the next available descriptor chain
 * @vq: the queue
 * @elem: filled with the chain
 *
 * Each descriptor is read once into a private copy, and every rule of the
 * split virtqueue is checked; a chain that breaks one (see struct
 * ovc_virtio_stats) marks the queue broken and the device as needing reset
 * (DEVICE_NEEDS_RESET, with a config-change interrupt once DRIVER_OK is
 * set). With VIRTIO_F_RING_EVENT_IDX the queue asks the driver to notify
 * again once it adds past what has been popped.
 *
 * Return: 1 with @elem filled; 0 when the queue is empty, not ready or the
 *	device is not running (no DRIVER_OK); -EIO when the guest broke the
 *	queue now or before (until the driver resets the device); -EINVAL for
 *	NULL arguments.
 * Context: the caller's serialization (see the top of this header).
 */
OVC_EXPORT OVC_MUST_CHECK int ovc_virtq_pop(struct ovc_virtq *vq,
					    struct ovc_virtq_elem *elem);

/**
 * ovc_virtq_push() - give a chain back to the driver through the used ring
 * @vq: the queue
 * @elem: an element popped from @vq and not pushed yet
 * @written: bytes the device wrote into @elem's device-writable buffers
 *
 * Publishes the used entry (release order on the used index) but raises no
 * interrupt: call ovc_virtq_notify() after a batch.
 *
 * Return: 0; -EINVAL for NULL arguments, @written beyond the writable
 *	buffers, or more pushes than pops; -ESTALE for an element popped
 *	before a device reset or before the queue was re-enabled; -EIO when
 *	the queue is broken or the device needs reset (nothing is written).
 * Context: the caller's serialization.
 */
OVC_EXPORT int ovc_virtq_push(struct ovc_virtq *vq, const struct ovc_virtq_elem *elem,
			      uint32_t written);

/**
 * ovc_virtq_notify() - raise the used-buffer interrupt if the driver wants it
 * @vq: the queue
 *
 * Does nothing when nothing was pushed since the last call. Otherwise, after
 * a full memory barrier, asks the driver's used_event (EVENT_IDX) or its
 * VIRTQ_AVAIL_F_NO_INTERRUPT flag, and if wanted sets bit 0 of
 * InterruptStatus and calls the irq callback.
 * Context: the caller's serialization.
 */
OVC_EXPORT void ovc_virtq_notify(struct ovc_virtq *vq);

/**
 * ovc_virtq_index() - which queue of its device @vq is
 * @vq: the queue
 *
 * Return: the index (0 for NULL).
 * Context: any thread.
 */
OVC_EXPORT unsigned int ovc_virtq_index(const struct ovc_virtq *vq);

#ifdef __cplusplus
}
#endif

#endif /* OVC_VIRTIO_H */
