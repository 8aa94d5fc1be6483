// SPDX-License-Identifier: MIT
/* balloon/virtio-mmio.c: the virtio-mmio transport (register layout version 2), device side. */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "balloon/balloon-internal.h"

/* Register offsets (virtio 1.x, "MMIO Device Register Layout"). */
enum {
	REG_MAGIC = 0x000,
	REG_VERSION = 0x004,
	REG_DEVICE_ID = 0x008,
	REG_VENDOR_ID = 0x00c,
	REG_DEVICE_FEATURES = 0x010,
	REG_DEVICE_FEATURES_SEL = 0x014,
	REG_DRIVER_FEATURES = 0x020,
	REG_DRIVER_FEATURES_SEL = 0x024,
	REG_QUEUE_SEL = 0x030,
	REG_QUEUE_NUM_MAX = 0x034,
	REG_QUEUE_NUM = 0x038,
	REG_QUEUE_READY = 0x044,
	REG_QUEUE_NOTIFY = 0x050,
	REG_INTERRUPT_STATUS = 0x060,
	REG_INTERRUPT_ACK = 0x064,
	REG_STATUS = 0x070,
	REG_QUEUE_DESC_LOW = 0x080,
	REG_QUEUE_DESC_HIGH = 0x084,
	REG_QUEUE_DRIVER_LOW = 0x090,
	REG_QUEUE_DRIVER_HIGH = 0x094,
	REG_QUEUE_DEVICE_LOW = 0x0a0,
	REG_QUEUE_DEVICE_HIGH = 0x0a4,
	REG_SHM_SEL = 0x0ac,
	REG_SHM_LEN_LOW = 0x0b0,
	REG_SHM_LEN_HIGH = 0x0b4,
	REG_SHM_BASE_LOW = 0x0b8,
	REG_SHM_BASE_HIGH = 0x0bc,
	REG_CONFIG_GENERATION = 0x0fc,
};

#define MMIO_MAGIC 0x74726976	/* "virt" */
#define MMIO_VERSION 2

/* What the transport implements on behalf of every device. */
#define TRANSPORT_FEATURES                                                     \
	(OVC_VIRTIO_FEATURE(OVC_VIRTIO_F_VERSION_1) |                          \
	 OVC_VIRTIO_FEATURE(OVC_VIRTIO_F_RING_EVENT_IDX) |                     \
	 OVC_VIRTIO_FEATURE(OVC_VIRTIO_F_INDIRECT_DESC))
/* Feature bits 24–41 are the transport's (virtio 1.x, 6). */
#define TRANSPORT_FEATURE_RANGE (((1ULL << 42) - 1) & ~((1ULL << 24) - 1))

#define STATUS_DRIVER_BITS                                                     \
	(OVC_VIRTIO_STATUS_ACKNOWLEDGE | OVC_VIRTIO_STATUS_DRIVER |            \
	 OVC_VIRTIO_STATUS_FEATURES_OK | OVC_VIRTIO_STATUS_DRIVER_OK |         \
	 OVC_VIRTIO_STATUS_FAILED)

/*
 * One virtio-mmio device. Everything but t.stats belongs to the caller's
 * serialization (one thread at a time; see include/ovc/virtio.h).
 */
struct ovc_virtio_mmio {
	struct ovc__virtio_transport t;
	const struct ovc_virtio_device_ops *ops;
	void *dev;
	ovc_virtio_irq_fn irq;
	void *irq_opaque;

	uint64_t offered;		/* DeviceFeatures, all 64 bits */
	uint32_t device_features_sel;
	uint32_t driver_features_sel;
	uint64_t driver_features;	/* as written so far */
	bool driver_features_beyond;	/* a bit above 63 was written */
	uint32_t queue_sel;
	uint32_t isr;			/* InterruptStatus */
	uint32_t config_generation;

	unsigned int nq;
	struct ovc_virtq vqs[];
};

static struct ovc_virtio_mmio *to_mmio(struct ovc__virtio_transport *t)
{
	return container_of(t, struct ovc_virtio_mmio, t);
}

static void raise_irq(struct ovc_virtio_mmio *m, uint32_t why)
{
	m->isr |= why;
	ovc__virtio_count(&m->t, interrupts);
	m->irq(m->irq_opaque);
}

static void used_interrupt(struct ovc__virtio_transport *t, struct ovc_virtq *vq)
{
	raise_irq(to_mmio(t), OVC_VIRTIO_INT_USED);
}

static void config_interrupt(struct ovc__virtio_transport *t)
{
	raise_irq(to_mmio(t), OVC_VIRTIO_INT_CONFIG);
}

static const struct ovc__virtio_transport_ops mmio_transport_ops = {
	.used_interrupt = used_interrupt,
	.config_interrupt = config_interrupt,
};

static int check_ops(const struct ovc_virtio_device_ops *ops)
{
	uint16_t qmax = ops->queue_max_size;

	if (ops->device_id == 0)
		return -EINVAL;
	if (ops->num_queues < 1 || ops->num_queues > OVC_VIRTIO_MAX_QUEUES)
		return -EINVAL;
	if (qmax == 0 || qmax > OVC_VIRTQ_MAX_SIZE || (qmax & (qmax - 1)))
		return -EINVAL;
	if (ops->config_size > OVC_VIRTIO_CONFIG_MAX)
		return -EINVAL;
	if (ops->config_size && !ops->config_read)
		return -EINVAL;
	if (ops->features & TRANSPORT_FEATURE_RANGE & ~TRANSPORT_FEATURES)
		return -EINVAL;
	return 0;
}

OVC_EXPORT struct ovc_virtio_mmio *
ovc_virtio_mmio_new(const struct ovc_virtio_device_ops *ops, void *dev_opaque,
		    const struct ovc_virtio_mem *mem, ovc_virtio_irq_fn irq,
		    void *irq_opaque)
{
	struct ovc_virtio_mmio *m;
	unsigned int i;
	int ret;

	if (!ops || !mem || !irq) {
		errno = EINVAL;
		return NULL;
	}
	ret = check_ops(ops);
	if (ret < 0) {
		errno = -ret;
		return NULL;
	}
	m = calloc(1, sizeof(*m) + ops->num_queues * sizeof(m->vqs[0]));
	if (!m)
		return NULL;
	ret = ovc__virtio_memmap_init(&m->t.mem, mem);
	if (ret < 0)
		goto err_free;
	m->t.ops = &mmio_transport_ops;
	m->ops = ops;
	m->dev = dev_opaque;
	m->irq = irq;
	m->irq_opaque = irq_opaque;
	m->offered = ops->features | TRANSPORT_FEATURES;
	m->nq = ops->num_queues;
	for (i = 0; i < m->nq; i++)
		ovc__virtq_init(&m->vqs[i], &m->t, i, ops->queue_max_size);
	return m;

err_free:
	free(m);
	errno = -ret;
	return NULL;
}

OVC_EXPORT void ovc_virtio_mmio_destroy(struct ovc_virtio_mmio *m)
{
	free(m);
}

OVC_EXPORT struct ovc_virtq *ovc_virtio_mmio_queue(struct ovc_virtio_mmio *m,
						   unsigned int index)
{
	if (!m || index >= m->nq)
		return NULL;
	return &m->vqs[index];
}

OVC_EXPORT int ovc_virtio_mmio_get_stats(const struct ovc_virtio_mmio *m,
					 struct ovc_virtio_stats *st)
{
	if (!m || !st)
		return -EINVAL;
	ovc__virtio_stats_read(&m->t, st);
	return 0;
}

OVC_EXPORT void ovc_virtio_mmio_config_changed(struct ovc_virtio_mmio *m)
{
	if (!m)
		return;
	m->config_generation++;
	if (m->t.status & OVC_VIRTIO_STATUS_DRIVER_OK)
		raise_irq(m, OVC_VIRTIO_INT_CONFIG);
}

static void bad_access(struct ovc_virtio_mmio *m)
{
	ovc__virtio_count(&m->t, bad_register_access);
}

/* The selected queue, or NULL (counted) when QueueSel names none. */
static struct ovc_virtq *selected_queue(struct ovc_virtio_mmio *m)
{
	if (m->queue_sel >= m->nq) {
		bad_access(m);
		return NULL;
	}
	return &m->vqs[m->queue_sel];
}

/* ------------------------------------------------------------------------ */
/* Device status */

static void device_reset(struct ovc_virtio_mmio *m)
{
	unsigned int i;

	ovc__virtio_count(&m->t, resets);
	m->t.status = 0;
	m->t.features = 0;
	m->device_features_sel = 0;
	m->driver_features_sel = 0;
	m->driver_features = 0;
	m->driver_features_beyond = false;
	m->queue_sel = 0;
	m->isr = 0;
	for (i = 0; i < m->nq; i++)
		ovc__virtq_reset(&m->vqs[i]);
	/* After the queues: whatever the device pushes from here is refused. */
	if (m->ops->reset)
		m->ops->reset(m->dev);
}

static void deliver_notify(struct ovc_virtio_mmio *m, struct ovc_virtq *vq)
{
	ovc__virtio_count(&m->t, notifies);
	if (m->ops->queue_notify)
		m->ops->queue_notify(m->dev, vq);
}

static void driver_ok(struct ovc_virtio_mmio *m)
{
	unsigned int i;
	int ret = 0;

	if (m->t.status & OVC_VIRTIO_STATUS_NEEDS_RESET) {
		/* Broken before DRIVER_OK: say so now that the driver listens. */
		raise_irq(m, OVC_VIRTIO_INT_CONFIG);
		return;
	}
	if (m->ops->driver_ok)
		ret = m->ops->driver_ok(m->dev, m->t.features);
	if (ret < 0) {
		ovc__virtio_set_needs_reset(&m->t);
		return;
	}
	/* Notifications that came before DRIVER_OK: a driver may kick while setting up. */
	for (i = 0; i < m->nq && ovc__virtio_running(&m->t); i++) {
		struct ovc_virtq *vq = &m->vqs[i];

		if (vq->ready && vq->kick_pending) {
			vq->kick_pending = false;
			deliver_notify(m, vq);
		}
	}
}

/*
 * Accept FEATURES_OK only for what we offered, and only with VERSION_1
 * ("Device Initialization", "Reserved Feature Bits").
 */
static bool features_acceptable(const struct ovc_virtio_mmio *m)
{
	return !m->driver_features_beyond &&
	       !(m->driver_features & ~m->offered) &&
	       (m->driver_features & OVC_VIRTIO_FEATURE(OVC_VIRTIO_F_VERSION_1));
}

static void write_status(struct ovc_virtio_mmio *m, uint32_t v)
{
	uint8_t old = m->t.status, now, added;

	if (v == 0) {
		device_reset(m);
		return;
	}
	if (v & ~(uint32_t)(STATUS_DRIVER_BITS | OVC_VIRTIO_STATUS_NEEDS_RESET)) {
		ovc__virtio_count(&m->t, bad_status);
		return;
	}
	/* DEVICE_NEEDS_RESET is ours: the driver can neither set nor clear it. */
	now = (uint8_t)((v & STATUS_DRIVER_BITS) | (old & OVC_VIRTIO_STATUS_NEEDS_RESET));
	if (old & ~now) {
		/* Only a reset clears status bits ("Device Status Field"). */
		ovc__virtio_count(&m->t, bad_status);
		return;
	}
	added = now & ~old;
	if ((added & OVC_VIRTIO_STATUS_DRIVER) && !(now & OVC_VIRTIO_STATUS_ACKNOWLEDGE)) {
		ovc__virtio_count(&m->t, bad_status);
		return;
	}
	if (added & OVC_VIRTIO_STATUS_FEATURES_OK) {
		if (!(now & OVC_VIRTIO_STATUS_DRIVER)) {
			ovc__virtio_count(&m->t, bad_status);
			return;
		}
		if (features_acceptable(m)) {
			m->t.features = m->driver_features;
		} else {
			/* The driver reads Status back and gives up. */
			ovc__virtio_count(&m->t, features_refused);
			now &= (uint8_t)~OVC_VIRTIO_STATUS_FEATURES_OK;
		}
	}
	if ((added & OVC_VIRTIO_STATUS_DRIVER_OK) && !(now & OVC_VIRTIO_STATUS_FEATURES_OK)) {
		ovc__virtio_count(&m->t, bad_status);
		now &= (uint8_t)~OVC_VIRTIO_STATUS_DRIVER_OK;
	}
	m->t.status = now;
	if (now & ~old & OVC_VIRTIO_STATUS_DRIVER_OK)
		driver_ok(m);
}

/* ------------------------------------------------------------------------ */
/* Registers */

static uint32_t read_reg(struct ovc_virtio_mmio *m, uint64_t off)
{
	struct ovc_virtq *vq;

	switch (off) {
	case REG_MAGIC:
		return MMIO_MAGIC;
	case REG_VERSION:
		return MMIO_VERSION;
	case REG_DEVICE_ID:
		return m->ops->device_id;
	case REG_VENDOR_ID:
		return m->ops->vendor_id;
	case REG_DEVICE_FEATURES:
		if (m->device_features_sel > 1)
			return 0;
		return (uint32_t)(m->offered >> (32 * m->device_features_sel));
	case REG_QUEUE_NUM_MAX:
		/* 0 means "no such queue": not a bad access. */
		return m->queue_sel < m->nq ? m->vqs[m->queue_sel].max_size : 0;
	case REG_QUEUE_READY:
		vq = selected_queue(m);
		return vq ? vq->ready : 0;
	case REG_INTERRUPT_STATUS:
		return m->isr;
	case REG_STATUS:
		return m->t.status;
	case REG_SHM_LEN_LOW:
	case REG_SHM_LEN_HIGH:
	case REG_SHM_BASE_LOW:
	case REG_SHM_BASE_HIGH:
		/* No shared memory regions: every SHMSel reads as absent (-1). */
		return UINT32_MAX;
	case REG_CONFIG_GENERATION:
		return m->config_generation;
	default:
		/* Unknown, or write-only (the driver MUST NOT read those). */
		bad_access(m);
		return 0;
	}
}

/* Queue configuration may change only while the queue is not ready. */
static struct ovc_virtq *configurable_queue(struct ovc_virtio_mmio *m)
{
	struct ovc_virtq *vq = selected_queue(m);

	if (vq && vq->ready) {
		bad_access(m);
		return NULL;
	}
	return vq;
}

static void set_low(uint64_t *v, uint32_t lo)
{
	*v = (*v & 0xffffffff00000000ULL) | lo;
}

static void set_high(uint64_t *v, uint32_t hi)
{
	*v = (*v & 0xffffffffULL) | ((uint64_t)hi << 32);
}

static void write_queue_ready(struct ovc_virtio_mmio *m, uint32_t v)
{
	struct ovc_virtq *vq = selected_queue(m);

	if (!vq)
		return;
	if (v == 0) {
		ovc__virtq_disable(vq);
	} else if (v == 1) {
		if (!vq->ready)
			(void)ovc__virtq_enable(vq);	/* counted, and NEEDS_RESET, when refused */
	} else {
		bad_access(m);
	}
}

static void write_queue_notify(struct ovc_virtio_mmio *m, uint32_t v)
{
	struct ovc_virtq *vq;

	/* Without VIRTIO_F_NOTIFICATION_DATA the value is the queue index. */
	if (v >= m->nq) {
		bad_access(m);
		return;
	}
	vq = &m->vqs[v];
	if (!vq->ready || vq->broken || (m->t.status & OVC_VIRTIO_STATUS_NEEDS_RESET)) {
		ovc__virtio_count(&m->t, notifies_ignored);
		return;
	}
	if (!(m->t.status & OVC_VIRTIO_STATUS_DRIVER_OK)) {
		vq->kick_pending = true;
		return;
	}
	deliver_notify(m, vq);
}

static void write_reg(struct ovc_virtio_mmio *m, uint64_t off, uint32_t v)
{
	struct ovc_virtq *vq;

	switch (off) {
	case REG_DEVICE_FEATURES_SEL:
		m->device_features_sel = v;
		return;
	case REG_DRIVER_FEATURES:
		if (m->t.status & OVC_VIRTIO_STATUS_FEATURES_OK) {
			/* Features are fixed once FEATURES_OK is accepted. */
			bad_access(m);
		} else if (m->driver_features_sel == 0) {
			set_low(&m->driver_features, v);
		} else if (m->driver_features_sel == 1) {
			set_high(&m->driver_features, v);
		} else if (v) {
			m->driver_features_beyond = true;
		}
		return;
	case REG_DRIVER_FEATURES_SEL:
		m->driver_features_sel = v;
		return;
	case REG_QUEUE_SEL:
		m->queue_sel = v;
		return;
	case REG_QUEUE_NUM:
		vq = configurable_queue(m);
		if (vq)
			vq->num = v;	/* checked when the queue is enabled */
		return;
	case REG_QUEUE_READY:
		write_queue_ready(m, v);
		return;
	case REG_QUEUE_NOTIFY:
		write_queue_notify(m, v);
		return;
	case REG_INTERRUPT_ACK:
		m->isr &= ~v;
		return;
	case REG_STATUS:
		write_status(m, v);
		return;
	case REG_QUEUE_DESC_LOW:
	case REG_QUEUE_DESC_HIGH:
	case REG_QUEUE_DRIVER_LOW:
	case REG_QUEUE_DRIVER_HIGH:
	case REG_QUEUE_DEVICE_LOW:
	case REG_QUEUE_DEVICE_HIGH: {
		uint64_t *gpa;

		vq = configurable_queue(m);
		if (!vq)
			return;
		gpa = off < REG_QUEUE_DRIVER_LOW ? &vq->desc_gpa :
		      off < REG_QUEUE_DEVICE_LOW ? &vq->avail_gpa : &vq->used_gpa;
		if (off & 4)
			set_high(gpa, v);
		else
			set_low(gpa, v);
		return;
	}
	case REG_SHM_SEL:
		return;	/* any region reads as absent */
	default:
		/* Unknown, or read-only. */
		bad_access(m);
		return;
	}
}

/* ------------------------------------------------------------------------ */
/* The MMIO window */

static bool valid_len(unsigned int len)
{
	return len == 1 || len == 2 || len == 4 || len == 8;
}

/* Offset into config space of an access wholly inside it, or -1. */
static int64_t config_offset(const struct ovc_virtio_mmio *m, uint64_t offset, unsigned int len)
{
	uint64_t off;

	if (offset < OVC_VIRTIO_MMIO_CONFIG)
		return -1;
	off = offset - OVC_VIRTIO_MMIO_CONFIG;
	if (off >= m->ops->config_size || len > m->ops->config_size - off)
		return -1;
	return (int64_t)off;
}

OVC_EXPORT int ovc_virtio_mmio_read(struct ovc_virtio_mmio *m, uint64_t offset,
				    void *data, unsigned int len)
{
	int64_t coff;
	uint32_t v;

	if (!m || !data || !valid_len(len))
		return -EINVAL;
	memset(data, 0, len);
	if (offset < OVC_VIRTIO_MMIO_CONFIG) {
		if (len != 4 || (offset & 3)) {
			bad_access(m);
			return 0;
		}
		v = htole32(read_reg(m, offset));
		memcpy(data, &v, 4);
		return 0;
	}
	coff = config_offset(m, offset, len);
	if (coff < 0) {
		bad_access(m);
		return 0;
	}
	m->ops->config_read(m->dev, (uint32_t)coff, data, len);
	return 0;
}

OVC_EXPORT int ovc_virtio_mmio_write(struct ovc_virtio_mmio *m, uint64_t offset,
				     const void *data, unsigned int len)
{
	int64_t coff;
	uint32_t v;

	if (!m || !data || !valid_len(len))
		return -EINVAL;
	if (offset < OVC_VIRTIO_MMIO_CONFIG) {
		if (len != 4 || (offset & 3)) {
			bad_access(m);
			return 0;
		}
		memcpy(&v, data, 4);
		write_reg(m, offset, le32toh(v));
		return 0;
	}
	coff = config_offset(m, offset, len);
	if (coff < 0 || !m->ops->config_write) {
		bad_access(m);
		return 0;
	}
	m->ops->config_write(m->dev, (uint32_t)coff, data, len);
	return 0;
}
