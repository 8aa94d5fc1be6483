// SPDX-License-Identifier: MIT
/* balloon/virtqueue.c: split virtqueues (virtio 1.x), device side, and the guest memory map they use. */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "balloon/balloon-internal.h"

/* Split ring layout (virtio 1.x, "Split Virtqueues"). All fields little-endian. */
#define DESC_SIZE 16
#define DESC_F_NEXT 1
#define DESC_F_WRITE 2
#define DESC_F_INDIRECT 4
#define AVAIL_F_NO_INTERRUPT 1

#define AVAIL_FLAGS 0
#define AVAIL_IDX 2
#define AVAIL_RING(i) (4 + 2 * (size_t)(i))	/* ring[size] is used_event */
#define USED_IDX 2
#define USED_RING(i) (4 + 8 * (size_t)(i))	/* ring[size] is avail_event */

/* What the spec demands of the driver's ring addresses ("Virtqueue Part Alignment"). */
#define DESC_ALIGN 16
#define AVAIL_ALIGN 2
#define USED_ALIGN 4

static size_t desc_bytes(unsigned int size)
{
	return DESC_SIZE * (size_t)size;
}

static size_t avail_bytes(unsigned int size)
{
	return 6 + 2 * (size_t)size;
}

static size_t used_bytes(unsigned int size)
{
	return 6 + 8 * (size_t)size;
}

/* ------------------------------------------------------------------------ */
/* Guest memory map */

int ovc__virtio_memmap_init(struct ovc__virtio_memmap *map, const struct ovc_virtio_mem *mem)
{
	unsigned int i, j;

	if (!mem->regions || mem->nregions == 0 || mem->nregions > OVC_VIRTIO_MAX_REGIONS)
		return -EINVAL;
	for (i = 0; i < mem->nregions; i++) {
		const struct ovc_guest_region *r = &mem->regions[i];

		if (r->size == 0 || !r->hva)
			return -EINVAL;
		if (r->gpa + (r->size - 1) < r->gpa)
			return -EINVAL;
		if ((uintptr_t)r->hva + (r->size - 1) < (uintptr_t)r->hva)
			return -EINVAL;
		/*
		 * Ring fields are read with aligned atomics: the host address
		 * of an aligned gpa must be aligned too. KVM's page-aligned
		 * memory slots always are.
		 */
		if (((uintptr_t)r->hva - (uintptr_t)r->gpa) % DESC_ALIGN)
			return -EINVAL;
		/* Insertion sort by gpa: a handful of regions. */
		for (j = i; j > 0 && map->r[j - 1].gpa > r->gpa; j--)
			map->r[j] = map->r[j - 1];
		map->r[j] = *r;
	}
	map->n = mem->nregions;
	for (i = 1; i < map->n; i++) {
		if (map->r[i - 1].gpa + (map->r[i - 1].size - 1) >= map->r[i].gpa)
			return -EINVAL;
	}
	return 0;
}

static const struct ovc_guest_region *find_region(const struct ovc__virtio_memmap *map,
						  uint64_t gpa)
{
	unsigned int i;

	for (i = 0; i < map->n; i++) {
		if (gpa >= map->r[i].gpa && gpa - map->r[i].gpa < map->r[i].size)
			return &map->r[i];
	}
	return NULL;
}

void *ovc__virtio_gpa_to_hva(const struct ovc__virtio_memmap *map, uint64_t gpa,
			     uint64_t len, enum ovc__gpa_error *why)
{
	const struct ovc_guest_region *r = find_region(map, gpa);
	uint64_t off, last;

	if (!r) {
		*why = OVC_GPA_OUT_OF_RAM;
		return NULL;
	}
	off = gpa - r->gpa;
	if (len > r->size - off) {
		*why = OVC_GPA_OUT_OF_RAM;
		last = gpa + (len - 1);
		if (last < gpa)
			return NULL;
		/* All RAM, but in several regions that abut in guest-physical space? */
		for (; r + 1 < map->r + map->n && r[1].gpa == r->gpa + r->size; r++) {
			if (last - r[1].gpa < r[1].size) {
				*why = OVC_GPA_STRADDLE;
				break;
			}
		}
		return NULL;
	}
	*why = OVC_GPA_OK;
	return (uint8_t *)r->hva + off;
}

/* ------------------------------------------------------------------------ */
/* Transport-independent state */

void ovc__virtio_stats_read(const struct ovc__virtio_transport *t, struct ovc_virtio_stats *st)
{
	const uint64_t *src = (const uint64_t *)&t->stats;
	uint64_t *dst = (uint64_t *)st;
	size_t i;

	_Static_assert(sizeof(*st) % sizeof(uint64_t) == 0, "counters are all uint64_t");
	for (i = 0; i < sizeof(*st) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

void ovc__virtio_set_needs_reset(struct ovc__virtio_transport *t)
{
	if (t->status & OVC_VIRTIO_STATUS_NEEDS_RESET)
		return;
	t->status |= OVC_VIRTIO_STATUS_NEEDS_RESET;
	if (t->status & OVC_VIRTIO_STATUS_DRIVER_OK)
		t->ops->config_interrupt(t);
}

/* ------------------------------------------------------------------------ */
/* Guest-shared ring fields: every access is one atomic access, so that the
 * guest changing them concurrently is a value we check, never a torn read
 * the compiler may repeat. */

static uint16_t ring_load16(const uint8_t *p, int order)
{
	return le16toh(__atomic_load_n((const uint16_t *)p, order));
}

static void ring_store16(uint8_t *p, uint16_t v, int order)
{
	__atomic_store_n((uint16_t *)p, htole16(v), order);
}

static void ring_store32(uint8_t *p, uint32_t v)
{
	__atomic_store_n((uint32_t *)p, htole32(v), __ATOMIC_RELAXED);
}

/* A private copy of one descriptor: the guest may rewrite it at any time. */
struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static void read_desc(const uint8_t *p, struct desc *d)
{
	if (((uintptr_t)p & 7) == 0) {
		d->addr = le64toh(__atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED));
		d->len = le32toh(__atomic_load_n((const uint32_t *)(p + 8), __ATOMIC_RELAXED));
		d->flags = ring_load16(p + 12, __ATOMIC_RELAXED);
		d->next = ring_load16(p + 14, __ATOMIC_RELAXED);
	} else {
		/* Indirect tables need no alignment: copy bytewise, once. */
		const volatile uint8_t *v = p;
		uint8_t b[DESC_SIZE];
		uint64_t addr;
		uint32_t len;
		uint16_t flags, next;
		int i;

		for (i = 0; i < DESC_SIZE; i++)
			b[i] = v[i];
		memcpy(&addr, b, 8);
		memcpy(&len, b + 8, 4);
		memcpy(&flags, b + 12, 2);
		memcpy(&next, b + 14, 2);
		d->addr = le64toh(addr);
		d->len = le32toh(len);
		d->flags = le16toh(flags);
		d->next = le16toh(next);
	}
}

/* ------------------------------------------------------------------------ */
/* Queue lifetime */

void ovc__virtq_init(struct ovc_virtq *vq, struct ovc__virtio_transport *t,
		     unsigned int index, uint16_t max_size)
{
	memset(vq, 0, sizeof(*vq));
	vq->t = t;
	vq->index = index;
	vq->max_size = max_size;
	ovc__virtq_reset(vq);
}

static void unmap_rings(struct ovc_virtq *vq)
{
	vq->ready = false;
	vq->size = 0;
	vq->desc = vq->avail = vq->used = NULL;
	vq->inflight = 0;
	vq->kick_pending = false;
	vq->pushed = false;
	/* Elements popped so far can no longer be pushed. */
	vq->gen++;
}

void ovc__virtq_reset(struct ovc_virtq *vq)
{
	unmap_rings(vq);
	vq->num = vq->max_size;
	vq->desc_gpa = vq->avail_gpa = vq->used_gpa = 0;
	vq->broken = false;
}

void ovc__virtq_disable(struct ovc_virtq *vq)
{
	unmap_rings(vq);
}

static bool is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

static void *map_ring(struct ovc_virtq *vq, uint64_t gpa, size_t bytes, unsigned int align)
{
	enum ovc__gpa_error why;

	if (gpa % align)
		return NULL;
	return ovc__virtio_gpa_to_hva(&vq->t->mem, gpa, bytes, &why);
}

int ovc__virtq_enable(struct ovc_virtq *vq)
{
	struct ovc__virtio_transport *t = vq->t;
	uint8_t *desc = NULL, *avail = NULL, *used = NULL;
	bool ok;

	/* Queue format depends on the features, so they come first ("Device Initialization"). */
	ok = (t->status & OVC_VIRTIO_STATUS_FEATURES_OK) &&
	     !(t->status & OVC_VIRTIO_STATUS_NEEDS_RESET) &&
	     vq->num <= vq->max_size && is_pow2(vq->num);
	if (ok) {
		desc = map_ring(vq, vq->desc_gpa, desc_bytes(vq->num), DESC_ALIGN);
		avail = map_ring(vq, vq->avail_gpa, avail_bytes(vq->num), AVAIL_ALIGN);
		used = map_ring(vq, vq->used_gpa, used_bytes(vq->num), USED_ALIGN);
		ok = desc && avail && used;
	}
	if (!ok) {
		ovc__virtio_count(t, bad_queue_config);
		ovc__virtio_set_needs_reset(t);
		return -EINVAL;
	}
	unmap_rings(vq);
	vq->size = (uint16_t)vq->num;
	vq->desc = desc;
	vq->avail = avail;
	vq->used = used;
	/* Both sides count from 0; the device area is ours to start clean. */
	vq->last_avail = 0;
	vq->shadow_avail = 0;
	vq->used_idx = 0;
	ring_store16(used, 0, __ATOMIC_RELAXED);
	ring_store16(used + USED_IDX, 0, __ATOMIC_RELEASE);
	vq->signalled_valid = false;
	vq->ready = true;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Popping */

/* Why a chain was refused; each has its counter. */
enum chain_error {
	CHAIN_OK = 0,
	CHAIN_BAD_INDEX,
	CHAIN_LOOP,
	CHAIN_TOO_LONG,
	CHAIN_OUT_OF_RAM,
	CHAIN_STRADDLE,
	CHAIN_ORDER,
	CHAIN_BAD_INDIRECT,
};

static int mark_broken(struct ovc_virtq *vq)
{
	vq->broken = true;
	ovc__virtio_count(vq->t, queue_broken);
	ovc__virtio_set_needs_reset(vq->t);
	return -EIO;
}

static int chain_rejected(struct ovc_virtq *vq, enum chain_error err)
{
	struct ovc__virtio_transport *t = vq->t;

	switch (err) {
	case CHAIN_BAD_INDEX:
		ovc__virtio_count(t, bad_desc_index);
		break;
	case CHAIN_LOOP:
		ovc__virtio_count(t, chain_loop);
		break;
	case CHAIN_TOO_LONG:
		ovc__virtio_count(t, chain_too_long);
		break;
	case CHAIN_OUT_OF_RAM:
		ovc__virtio_count(t, desc_out_of_ram);
		break;
	case CHAIN_STRADDLE:
		ovc__virtio_count(t, desc_straddle);
		break;
	case CHAIN_ORDER:
		ovc__virtio_count(t, bad_chain);
		break;
	case CHAIN_BAD_INDIRECT:
		ovc__virtio_count(t, bad_indirect);
		break;
	case CHAIN_OK:
		OVC_BUG("chain refused without a reason");
	}
	return mark_broken(vq);
}

/*
 * Walk the chain at @head into @elem. Loops are caught by counting: a chain
 * cannot visit more descriptors than its table holds ("The Virtqueue
 * Descriptor Table"), and the
 * walk starts a new count in an indirect table, which is the end of the
 * chain in the ring (no NEXT beside INDIRECT) and cannot nest.
 */
static enum chain_error walk_chain(struct ovc_virtq *vq, uint16_t head,
				   struct ovc_virtq_elem *elem)
{
	const struct ovc__virtio_memmap *mem = &vq->t->mem;
	const uint8_t *table = vq->desc;
	uint32_t tsize = vq->size, idx = head, seen = 0;
	bool indirect = false, writable = false;
	enum ovc__gpa_error why;
	uint64_t total = 0;
	struct desc d;
	void *p;

	elem->nout = 0;
	elem->nin = 0;
	for (;;) {
		if (idx >= tsize)
			return CHAIN_BAD_INDEX;
		if (++seen > tsize)
			return CHAIN_LOOP;
		read_desc(table + (size_t)idx * DESC_SIZE, &d);

		if (d.flags & DESC_F_INDIRECT) {
			/* Its WRITE flag means nothing ("Indirect Descriptors"). */
			if (!ovc__virtio_has(vq->t, OVC_VIRTIO_F_INDIRECT_DESC) || indirect ||
			    (d.flags & DESC_F_NEXT) || d.len == 0 || d.len % DESC_SIZE ||
			    d.len / DESC_SIZE > OVC_VIRTQ_MAX_SIZE)
				return CHAIN_BAD_INDIRECT;
			p = ovc__virtio_gpa_to_hva(mem, d.addr, d.len, &why);
			if (!p)
				return CHAIN_BAD_INDIRECT;
			table = p;
			tsize = d.len / DESC_SIZE;
			idx = 0;
			seen = 0;
			indirect = true;
			continue;
		}

		p = ovc__virtio_gpa_to_hva(mem, d.addr, d.len, &why);
		if (!p)
			return why == OVC_GPA_STRADDLE ? CHAIN_STRADDLE : CHAIN_OUT_OF_RAM;
		if (d.flags & DESC_F_WRITE) {
			if (elem->nin == OVC_VIRTQ_ELEM_MAX_SEGS)
				return CHAIN_TOO_LONG;
			elem->in[elem->nin].iov_base = p;
			elem->in[elem->nin].iov_len = d.len;
			elem->nin++;
			writable = true;
		} else {
			/* Readable buffers come first ("The Virtqueue Descriptor Table"). */
			if (writable)
				return CHAIN_ORDER;
			if (elem->nout == OVC_VIRTQ_ELEM_MAX_SEGS)
				return CHAIN_TOO_LONG;
			elem->out[elem->nout].iov_base = p;
			elem->out[elem->nout].iov_len = d.len;
			elem->nout++;
		}
		total += d.len;
		if (total > OVC_VIRTQ_CHAIN_MAX_BYTES)
			return CHAIN_TOO_LONG;
		if (!(d.flags & DESC_F_NEXT))
			return CHAIN_OK;
		idx = d.next;
	}
}

/*
 * Read avail idx (acquire: the ring entries and descriptors it publishes are
 * read after it). A driver has at most size chains outstanding, so an index
 * further ahead (or behind) is a broken queue.
 */
static int read_avail_idx(struct ovc_virtq *vq)
{
	uint16_t idx = ring_load16(vq->avail + AVAIL_IDX, __ATOMIC_ACQUIRE);

	if ((uint16_t)(idx - vq->last_avail) > vq->size) {
		ovc__virtio_count(vq->t, bad_avail_idx);
		return mark_broken(vq);
	}
	vq->shadow_avail = idx;
	return 0;
}

/* EVENT_IDX: ask the driver to notify once it publishes past @idx. */
static void set_avail_event(struct ovc_virtq *vq, uint16_t idx)
{
	ring_store16(vq->used + USED_RING(vq->size), idx, __ATOMIC_RELAXED);
}

OVC_EXPORT int ovc_virtq_pop(struct ovc_virtq *vq, struct ovc_virtq_elem *elem)
{
	struct ovc__virtio_transport *t;
	enum chain_error err;
	bool event_idx;
	uint16_t head;
	int ret;

	if (!vq || !elem)
		return -EINVAL;
	t = vq->t;
	if (vq->broken || (t->status & OVC_VIRTIO_STATUS_NEEDS_RESET))
		return -EIO;
	if (!vq->ready || !ovc__virtio_running(t))
		return 0;
	event_idx = ovc__virtio_has(t, OVC_VIRTIO_F_RING_EVENT_IDX);

	if (vq->last_avail == vq->shadow_avail) {
		ret = read_avail_idx(vq);
		if (ret < 0)
			return ret;
	}
	if (vq->last_avail == vq->shadow_avail) {
		if (!event_idx)
			return 0;
		/*
		 * Publish avail_event, then look again: a driver that added a
		 * buffer before seeing it did not notify. The full
		 * barrier orders our store before the load of avail idx.
		 */
		set_avail_event(vq, vq->last_avail);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		ret = read_avail_idx(vq);
		if (ret < 0)
			return ret;
		if (vq->last_avail == vq->shadow_avail)
			return 0;
	}

	/* Ordered after the acquire load of avail idx that published it. */
	head = ring_load16(vq->avail + AVAIL_RING(vq->last_avail & (vq->size - 1)),
			   __ATOMIC_RELAXED);
	err = walk_chain(vq, head, elem);
	if (err != CHAIN_OK) {
		elem->nout = 0;
		elem->nin = 0;
		return chain_rejected(vq, err);
	}
	vq->last_avail++;
	if (event_idx)
		set_avail_event(vq, vq->last_avail);
	vq->inflight++;
	elem->head = head;
	elem->gen = vq->gen;
	return 1;
}

/* ------------------------------------------------------------------------ */
/* Pushing and notifying */

OVC_EXPORT int ovc_virtq_push(struct ovc_virtq *vq, const struct ovc_virtq_elem *elem,
			      uint32_t written)
{
	uint64_t writable = 0;
	uint8_t *ent;
	unsigned int i;

	if (!vq || !elem)
		return -EINVAL;
	if (vq->broken || (vq->t->status & OVC_VIRTIO_STATUS_NEEDS_RESET))
		return -EIO;
	if (!vq->ready || elem->gen != vq->gen)
		return -ESTALE;
	if (elem->head >= vq->size || vq->inflight == 0 || elem->nin > OVC_VIRTQ_ELEM_MAX_SEGS)
		return -EINVAL;
	for (i = 0; i < elem->nin; i++)
		writable += elem->in[i].iov_len;
	if (written > writable)
		return -EINVAL;

	ent = vq->used + USED_RING(vq->used_idx & (vq->size - 1));
	ring_store32(ent, elem->head);
	ring_store32(ent + 4, written);
	vq->used_idx++;
	/* Release: the entry (and the data the device wrote) before the index. */
	ring_store16(vq->used + USED_IDX, vq->used_idx, __ATOMIC_RELEASE);
	vq->inflight--;
	vq->pushed = true;
	return 0;
}

OVC_EXPORT void ovc_virtq_notify(struct ovc_virtq *vq)
{
	struct ovc__virtio_transport *t;
	uint16_t old, now, event;
	bool valid, need;

	if (!vq)
		return;
	t = vq->t;
	if (!vq->ready || vq->broken || !ovc__virtio_running(t) || !vq->pushed)
		return;
	/*
	 * Our used idx store must be visible before we read the driver's
	 * suppression state, or both sides may decide the other will act.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	old = vq->signalled_used;
	now = vq->used_idx;
	valid = vq->signalled_valid;
	vq->signalled_used = now;
	vq->signalled_valid = true;
	vq->pushed = false;

	if (ovc__virtio_has(t, OVC_VIRTIO_F_RING_EVENT_IDX)) {
		event = ring_load16(vq->avail + AVAIL_RING(vq->size), __ATOMIC_RELAXED);
		/* Did we just pass used_event? ("Used Buffer Notification Suppression") */
		need = !valid || (uint16_t)(now - event - 1) < (uint16_t)(now - old);
	} else {
		need = !(ring_load16(vq->avail + AVAIL_FLAGS, __ATOMIC_RELAXED) &
			 AVAIL_F_NO_INTERRUPT);
	}
	if (!need) {
		ovc__virtio_count(t, interrupts_suppressed);
		return;
	}
	t->ops->used_interrupt(t, vq);
}

OVC_EXPORT unsigned int ovc_virtq_index(const struct ovc_virtq *vq)
{
	return vq ? vq->index : 0;
}
