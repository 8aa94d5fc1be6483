// SPDX-License-Identifier: MIT
/* pager/zstore.c: the compressed tier: LZ4 pages in size-class slabs, checksummed, oldest first. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include <lz4.h>
#include <urcu/list.h>
#include <xxhash.h>

#include "pager/zstore.h"

/* Size classes: 64-byte steps up to round_up(max_csize, 64). */
#define CLASS_SHIFT 6
#define MAX_CLASSES (OVC_PAGE_SIZE >> CLASS_SHIFT)

/* Entry table: blocks of 1024 entries behind a directory fixed at creation. */
#define BLOCK_SHIFT 10
#define BLOCK_ENTRIES (1U << BLOCK_SHIFT)
#define BLOCK_BYTES (BLOCK_ENTRIES * sizeof(struct zentry))

#define PAGE_UP(x) (((x) + OVC_PAGE_SIZE - 1) & ~(uint64_t)(OVC_PAGE_SIZE - 1))

/* Handle: index + 1 in the low IDX_BITS, the entry's generation above. */
#define IDX_BITS 28
#define IDX_MASK ((1ULL << IDX_BITS) - 1)
#define GEN_MASK 0xffffU
#define MAX_DIR (1U << (IDX_BITS - BLOCK_SHIFT))

_Static_assert(IDX_BITS + 16 == OVC_ZSTORE_HANDLE_BITS, "handle layout");
_Static_assert((1ULL << OVC_ZSTORE_HANDLE_BITS) - 1 <= OVC_PTE_PAYLOAD_MAX,
	       "every handle fits the page-table payload");

/*
 * struct zchunk - one 64 KiB slab chunk of one class. Under its class's lock;
 * @mem and @cls are fixed while the chunk serves a class, so a loader reads
 * them without the lock.
 */
struct zchunk {
	uint8_t *mem;			/* OVC_ZSTORE_CHUNK_BYTES, mmap'd */
	struct cds_list_head node;	/* class partial/full list, or nothing in the pool */
	uint32_t touched;		/* bytes of @mem ever written, whole pages */
	uint16_t cls;
	uint16_t used;			/* slots handed out */
	uint16_t fresh;			/* slots [fresh, nslots) never handed out */
	uint16_t free_head;		/* freed slot + 1; links live in the slots */
};

/*
 * struct zentry - one stored page. Fields under z->lock; @tag is also read
 * lock-free by loads (see the header).
 */
struct zentry {
	struct ovc_ram *ram;		/* owner given to put, or NULL */
	uint64_t gfn;
	uint64_t sum;			/* XXH3-64 of the original page */
	uint64_t put_ns;
	struct zchunk *chunk;		/* NULL while free */
	uint32_t older, newer;		/* FIFO links (index + 1); @newer links the free list */
	_Atomic uint32_t tag;		/* ATOMIC: generation << 1 | live */
	uint16_t slot;
	uint16_t csize;
};

_Static_assert(sizeof(struct zentry) == 56, "entry metadata stays at 56 bytes");
_Static_assert(BLOCK_BYTES % OVC_PAGE_SIZE == 0, "table pages never straddle blocks");

#define TAG_LIVE 1U

/*
 * struct zclass - one size class. @lock protects the lists and the chunks on
 * them; nests inside z->lock, outside z->pool_lock.
 */
struct zclass {
	pthread_mutex_t lock;
	unsigned int size;		/* slot bytes */
	unsigned int nslots;		/* slots per chunk */
	struct cds_list_head partial;	/* chunks with a free slot */
	struct cds_list_head full;
} __attribute__((aligned(64)));		/* no false sharing between class locks */

struct ovc_zstore {
	const struct ovc_log *log;
	uint64_t cap;			/* 0: none */
	unsigned int max_csize;
	int accel;
	unsigned int nclasses;
	struct zclass *classes;

	pthread_mutex_t lock;		/* protects the table, the FIFO, entries; outermost */
	_Atomic(struct zentry *) *dir;	/* ATOMIC slots: release when a block is added */
	uint32_t ndir;			/* directory size in blocks, fixed */
	uint32_t nblocks;
	uint32_t nalloc;		/* table high-water: entries ever handed out */
	uint64_t table_touched;		/* bytes of the table ever written, whole pages */
	uint32_t free_head;		/* free entry index + 1 */
	uint32_t oldest, newest;	/* FIFO ends, index + 1 */

	pthread_mutex_t pool_lock;	/* protects pool/npool; a leaf */
	struct zchunk *pool[OVC_ZSTORE_POOL_CHUNKS];
	unsigned int npool;

	/* Written by put, release and drop. */
	_Atomic uint64_t bytes_used __attribute__((aligned(64))); /* ATOMIC: reserved against @cap */
	_Atomic uint64_t entries;	/* ATOMIC */
	_Atomic uint64_t stored_bytes;	/* ATOMIC */
	_Atomic uint64_t chunks;	/* ATOMIC */
	_Atomic uint64_t puts;		/* ATOMIC */
	_Atomic uint64_t releases;	/* ATOMIC */
	_Atomic uint64_t rejected_e2big; /* ATOMIC */
	_Atomic uint64_t rejected_cap;	/* ATOMIC */
	_Atomic uint64_t rejected_nomem; /* ATOMIC */

	/* Touched by loads only: their own cache line. */
	_Atomic uint64_t loads __attribute__((aligned(64))); /* ATOMIC */
	_Atomic uint64_t checksum_errors; /* ATOMIC */
	_Atomic unsigned int fail_loads; /* ATOMIC: test hook */
	_Atomic int fail_err;		/* ATOMIC */
};

static void ctr_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static void ctr_sub(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_sub_explicit(c, n, memory_order_relaxed);
}

/* Take @n bytes of the cap; false when they do not fit. Never overshoots. */
static bool reserve(struct ovc_zstore *z, uint64_t n)
{
	uint64_t cur = atomic_load_explicit(&z->bytes_used, memory_order_relaxed);

	if (!z->cap) {
		ctr_add(&z->bytes_used, n);
		return true;
	}
	do {
		if (n > z->cap || cur > z->cap - n)
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&z->bytes_used, &cur, cur + n,
							memory_order_relaxed,
							memory_order_relaxed));
	return true;
}

static uint8_t *slot_ptr(const struct ovc_zstore *z, const struct zchunk *ch,
			 unsigned int slot)
{
	return ch->mem + (size_t)slot * z->classes[ch->cls].size;
}

/* ------------------------------------------------------------------------ */
/* Slab */

/* A chunk for any class: a spare one, or a new one if the cap allows. */
static int chunk_get(struct ovc_zstore *z, struct zchunk **out)
{
	struct zchunk *ch = NULL;
	void *mem;

	pthread_mutex_lock(&z->pool_lock);
	if (z->npool)
		ch = z->pool[--z->npool];
	pthread_mutex_unlock(&z->pool_lock);
	if (ch) {
		*out = ch;
		return 0;
	}
	/* Only the header now; the chunk's pages are counted as they are first written. */
	if (!reserve(z, sizeof(*ch)))
		return -ENOSPC;
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		goto err_unreserve;
	mem = mmap(NULL, OVC_ZSTORE_CHUNK_BYTES, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		goto err_free;
	ch->mem = mem;
	ctr_add(&z->chunks, 1);
	*out = ch;
	return 0;

err_free:
	free(ch);
err_unreserve:
	ctr_sub(&z->bytes_used, sizeof(*ch));
	return -ENOMEM;
}

static void chunk_free(struct ovc_zstore *z, struct zchunk *ch)
{
	ctr_sub(&z->bytes_used, sizeof(*ch) + ch->touched);
	ctr_sub(&z->chunks, 1);
	munmap(ch->mem, OVC_ZSTORE_CHUNK_BYTES);
	free(ch);
}

/* An empty chunk goes to the spare pool, or back to the kernel. */
static void chunk_put(struct ovc_zstore *z, struct zchunk *ch)
{
	bool kept = false;

	pthread_mutex_lock(&z->pool_lock);
	if (z->npool < OVC_ZSTORE_POOL_CHUNKS) {
		z->pool[z->npool++] = ch;
		kept = true;
	}
	pthread_mutex_unlock(&z->pool_lock);
	if (!kept)
		chunk_free(z, ch);
}

/*
 * A slot of class @cls. Freed slots go first: chunks with some are kept at
 * the head of the partial list, chunks with only never-used slots behind
 * them. A never-used slot that reaches into pages the chunk has not written
 * yet reserves them first: bytes_used follows the pages the tier really
 * dirties, so small caps are honoured to the page.
 */
static int slot_alloc(struct ovc_zstore *z, unsigned int cls, struct zchunk **out,
		      unsigned int *slot)
{
	struct zclass *c = &z->classes[cls];
	struct zchunk *ch;
	uint64_t end;
	uint16_t next;
	int ret = 0;

	pthread_mutex_lock(&c->lock);
	if (cds_list_empty(&c->partial)) {
		ret = chunk_get(z, &ch);
		if (ret)
			goto out;
		ch->cls = (uint16_t)cls;
		ch->used = 0;
		ch->fresh = 0;
		ch->free_head = 0;
		cds_list_add(&ch->node, &c->partial);
	}
	ch = cds_list_first_entry(&c->partial, struct zchunk, node);
	if (ch->free_head) {
		*slot = ch->free_head - 1U;
		memcpy(&next, slot_ptr(z, ch, *slot), sizeof(next));
		ch->free_head = next;
	} else {
		end = (uint64_t)(ch->fresh + 1U) * c->size;
		if (end > ch->touched) {
			if (!reserve(z, PAGE_UP(end) - ch->touched)) {
				ret = -ENOSPC;
				if (!ch->used) {	/* do not keep an empty chunk on the list */
					cds_list_del(&ch->node);
					chunk_put(z, ch);
				}
				goto out;
			}
			ch->touched = (uint32_t)PAGE_UP(end);
		}
		*slot = ch->fresh++;
	}
	if (++ch->used == c->nslots) {
		cds_list_del(&ch->node);
		cds_list_add(&ch->node, &c->full);
	} else if (!ch->free_head && c->partial.prev != &ch->node) {
		cds_list_del(&ch->node);
		cds_list_add_tail(&ch->node, &c->partial);
	}
	*out = ch;
out:
	pthread_mutex_unlock(&c->lock);
	return ret;
}

static void slot_free(struct ovc_zstore *z, struct zchunk *ch, unsigned int slot)
{
	struct zclass *c = &z->classes[ch->cls];
	struct zchunk *empty = NULL;
	uint16_t next;

	pthread_mutex_lock(&c->lock);
	next = ch->free_head;
	memcpy(slot_ptr(z, ch, slot), &next, sizeof(next));
	ch->free_head = (uint16_t)(slot + 1);
	cds_list_del(&ch->node);
	if (--ch->used == 0)
		empty = ch;
	else			/* it has a freed slot now: to the front */
		cds_list_add(&ch->node, &c->partial);
	pthread_mutex_unlock(&c->lock);
	if (empty)
		chunk_put(z, empty);
}

/* ------------------------------------------------------------------------ */
/* Entry table */

/* Lock-free: blocks never move and are published with release. */
static struct zentry *entry_at(struct ovc_zstore *z, uint64_t idx)
{
	struct zentry *blk;

	if ((idx >> BLOCK_SHIFT) >= z->ndir)
		return NULL;
	blk = atomic_load_explicit(&z->dir[idx >> BLOCK_SHIFT], memory_order_acquire);
	return blk ? &blk[idx & (BLOCK_ENTRIES - 1)] : NULL;
}

static uint64_t make_handle(uint32_t idx, uint32_t tag)
{
	return ((uint64_t)(tag >> 1) << IDX_BITS) | ((uint64_t)idx + 1);
}

/* The live entry @handle names, or NULL. Lock-free (see the header). */
static struct zentry *lookup(struct ovc_zstore *z, uint64_t handle, uint32_t *idx)
{
	uint64_t i = handle & IDX_MASK;
	uint32_t want = (uint32_t)(((handle >> IDX_BITS) & GEN_MASK) << 1) | TAG_LIVE;
	struct zentry *e;

	if (!i || handle >> OVC_ZSTORE_HANDLE_BITS)
		return NULL;
	e = entry_at(z, i - 1);
	if (!e || atomic_load_explicit(&e->tag, memory_order_acquire) != want)
		return NULL;
	if (idx)
		*idx = (uint32_t)(i - 1);
	return e;
}

/*
 * A free entry index; the table grows a block at a time (mmap'd, so only
 * the pages entries were written to count). Called with z->lock held.
 */
static int entry_alloc(struct ovc_zstore *z, uint32_t *idx)
{
	uint64_t end;
	void *blk;

	if (z->free_head) {
		*idx = z->free_head - 1;
		z->free_head = entry_at(z, *idx)->newer;
		return 0;
	}
	if (z->nalloc >= IDX_MASK)
		return -ENOSPC;
	end = ((uint64_t)z->nalloc + 1) * sizeof(struct zentry);
	if (end > z->table_touched) {
		if (!reserve(z, PAGE_UP(end) - z->table_touched))
			return -ENOSPC;
		z->table_touched = PAGE_UP(end);
	}
	if (z->nalloc == z->nblocks * BLOCK_ENTRIES) {
		if (z->nblocks == z->ndir || !reserve(z, sizeof(void *)))
			return -ENOSPC;
		blk = mmap(NULL, BLOCK_BYTES, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (blk == MAP_FAILED) {
			ctr_sub(&z->bytes_used, sizeof(void *));
			return -ENOMEM;
		}
		atomic_store_explicit(&z->dir[z->nblocks], blk, memory_order_release);
		z->nblocks++;
	}
	*idx = z->nalloc++;
	return 0;
}

/* Unlink from the FIFO, bump the generation, free the index. Called with z->lock held. */
static void entry_free(struct ovc_zstore *z, uint32_t idx, struct zentry *e)
{
	uint32_t gen = atomic_load_explicit(&e->tag, memory_order_relaxed) >> 1;

	if (e->older)
		entry_at(z, e->older - 1)->newer = e->newer;
	else
		z->oldest = e->newer;
	if (e->newer)
		entry_at(z, e->newer - 1)->older = e->older;
	else
		z->newest = e->older;
	atomic_store_explicit(&e->tag, ((gen + 1) & GEN_MASK) << 1, memory_order_release);
	e->chunk = NULL;
	e->older = 0;
	e->newer = z->free_head;
	z->free_head = idx + 1;
}

/*
 * Take the entry of @handle out of the table and hand back its slot.
 * @check: also require @ram (unless the entry has none) and @gfn to match.
 * Return 0, or -ESTALE when @handle names no live entry (of that page).
 */
static int entry_take(struct ovc_zstore *z, uint64_t handle, bool check,
		      struct ovc_ram *ram, uint64_t gfn, struct zchunk **ch,
		      unsigned int *slot, unsigned int *csize)
{
	struct zentry *e;
	uint32_t idx;
	int ret = 0;

	pthread_mutex_lock(&z->lock);
	e = lookup(z, handle, &idx);
	if (!e || (check && (e->gfn != gfn || (e->ram && e->ram != ram)))) {
		ret = -ESTALE;
		goto out;
	}
	*ch = e->chunk;
	*slot = e->slot;
	*csize = e->csize;
	entry_free(z, idx, e);
out:
	pthread_mutex_unlock(&z->lock);
	return ret;
}

static void account_free(struct ovc_zstore *z, unsigned int csize)
{
	ctr_sub(&z->entries, 1);
	ctr_sub(&z->stored_bytes, csize);
	ctr_add(&z->releases, 1);
}

/* ------------------------------------------------------------------------ */

struct ovc_zstore *ovc__zstore_new(const struct ovc_log *log,
				   const struct ovc_zstore_config *cfg)
{
	struct ovc_zstore_config def = { 0 };
	struct ovc_zstore *z;
	unsigned int i;
	uint64_t max_entries;

	if (!cfg)
		cfg = &def;
	if ((cfg->cap_bytes && cfg->cap_bytes < OVC_ZSTORE_MIN_CAP) ||
	    cfg->max_csize > OVC_PAGE_SIZE || cfg->acceleration > 65537) {
		ovc__err(log, "zstore: bad config: cap %llu bytes (0 or at least %llu), max_csize %u (at most %lu), acceleration %u (at most 65537)",
			 (unsigned long long)cfg->cap_bytes, OVC_ZSTORE_MIN_CAP,
			 cfg->max_csize, OVC_PAGE_SIZE, cfg->acceleration);
		errno = EINVAL;
		return NULL;
	}
	z = aligned_alloc(64, sizeof(*z));
	if (!z)
		return NULL;
	memset(z, 0, sizeof(*z));
	z->log = log;
	z->cap = cfg->cap_bytes;
	z->max_csize = cfg->max_csize ? cfg->max_csize : OVC_ZSTORE_DEFAULT_MAX_CSIZE;
	z->accel = cfg->acceleration ? (int)cfg->acceleration : 1;
	z->nclasses = (z->max_csize + (1U << CLASS_SHIFT) - 1) >> CLASS_SHIFT;

	/* Every entry costs at least its metadata and one 64-byte slot. */
	max_entries = MAX_DIR * (uint64_t)BLOCK_ENTRIES;
	if (z->cap && z->cap / (sizeof(struct zentry) + 64) < max_entries)
		max_entries = z->cap / (sizeof(struct zentry) + 64);
	z->ndir = (uint32_t)((max_entries + BLOCK_ENTRIES - 1) / BLOCK_ENTRIES);

	z->classes = aligned_alloc(64, z->nclasses * sizeof(*z->classes));
	if (!z->classes)
		goto err_free_z;
	z->dir = calloc(z->ndir, sizeof(*z->dir));
	if (!z->dir)
		goto err_free_classes;
	memset(z->classes, 0, z->nclasses * sizeof(*z->classes));
	for (i = 0; i < z->nclasses; i++) {
		struct zclass *c = &z->classes[i];

		pthread_mutex_init(&c->lock, NULL);
		c->size = (i + 1) << CLASS_SHIFT;
		c->nslots = OVC_ZSTORE_CHUNK_BYTES / c->size;
		CDS_INIT_LIST_HEAD(&c->partial);
		CDS_INIT_LIST_HEAD(&c->full);
	}
	pthread_mutex_init(&z->lock, NULL);
	pthread_mutex_init(&z->pool_lock, NULL);
	/*
	 * The fixed part. The directory is calloc'd (untouched pages cost
	 * nothing) and counted slot by slot as blocks are added.
	 */
	atomic_init(&z->bytes_used, sizeof(*z) + z->nclasses * sizeof(*z->classes));
	return z;

err_free_classes:
	free(z->classes);
err_free_z:
	free(z);
	errno = ENOMEM;
	return NULL;
}

static void free_list(struct ovc_zstore *z, struct cds_list_head *head)
{
	struct zchunk *ch, *tmp;

	cds_list_for_each_entry_safe(ch, tmp, head, node)
		chunk_free(z, ch);
}

void ovc__zstore_destroy(struct ovc_zstore *z)
{
	unsigned int i;

	if (!z)
		return;
	for (i = 0; i < z->nclasses; i++) {
		free_list(z, &z->classes[i].partial);
		free_list(z, &z->classes[i].full);
		pthread_mutex_destroy(&z->classes[i].lock);
	}
	for (i = 0; i < z->npool; i++)
		chunk_free(z, z->pool[i]);
	for (i = 0; i < z->nblocks; i++)
		munmap(atomic_load_explicit(&z->dir[i], memory_order_relaxed), BLOCK_BYTES);
	free(z->dir);
	free(z->classes);
	pthread_mutex_destroy(&z->pool_lock);
	pthread_mutex_destroy(&z->lock);
	free(z);
}

/* Publish a filled slot as a new entry, newest in the FIFO. */
static int entry_insert(struct ovc_zstore *z, struct ovc_ram *ram, uint64_t gfn,
			uint64_t sum, struct zchunk *ch, unsigned int slot,
			unsigned int csize, uint64_t *handle)
{
	uint64_t now = ovc__now_ns();
	struct zentry *e;
	uint32_t idx, tag;
	int ret;

	pthread_mutex_lock(&z->lock);
	ret = entry_alloc(z, &idx);
	if (ret)
		goto out;
	e = entry_at(z, idx);
	e->ram = ram;
	e->gfn = gfn;
	e->sum = sum;
	e->put_ns = now;
	e->chunk = ch;
	e->slot = (uint16_t)slot;
	e->csize = (uint16_t)csize;
	e->older = z->newest;
	e->newer = 0;
	if (z->newest)
		entry_at(z, z->newest - 1)->newer = idx + 1;
	else
		z->oldest = idx + 1;
	z->newest = idx + 1;
	tag = atomic_load_explicit(&e->tag, memory_order_relaxed) | TAG_LIVE;
	atomic_store_explicit(&e->tag, tag, memory_order_release);
	*handle = make_handle(idx, tag);
out:
	pthread_mutex_unlock(&z->lock);
	return ret;
}

int ovc__zstore_put_ram(struct ovc_zstore *z, struct ovc_ram *ram, uint64_t gfn,
			const void *page, uint64_t *handle)
{
	char buf[OVC_PAGE_SIZE];	/* max_csize <= OVC_PAGE_SIZE */
	struct zchunk *ch;
	unsigned int slot;
	uint64_t sum;
	int csize, ret;

	if (!z || !page || !handle)
		return -EINVAL;
	/* A bounded output stops LZ4 as soon as the page cannot fit. */
	csize = LZ4_compress_fast(page, buf, (int)OVC_PAGE_SIZE, (int)z->max_csize,
				  z->accel);
	if (csize <= 0) {
		ctr_add(&z->rejected_e2big, 1);
		return -E2BIG;
	}
	sum = XXH3_64bits(page, OVC_PAGE_SIZE);
	ret = slot_alloc(z, ((unsigned int)csize - 1) >> CLASS_SHIFT, &ch, &slot);
	if (ret)
		goto err_count;
	memcpy(slot_ptr(z, ch, slot), buf, (size_t)csize);
	ret = entry_insert(z, ram, gfn, sum, ch, slot, (unsigned int)csize, handle);
	if (ret)
		goto err_free_slot;
	ctr_add(&z->entries, 1);
	ctr_add(&z->stored_bytes, (uint64_t)csize);
	ctr_add(&z->puts, 1);
	return 0;

err_free_slot:
	slot_free(z, ch, slot);
err_count:
	ctr_add(ret == -ENOSPC ? &z->rejected_cap : &z->rejected_nomem, 1);
	return ret;
}

int ovc__zstore_put(struct ovc_zstore *z, uint64_t gfn, const void *page,
		    uint64_t *handle)
{
	return ovc__zstore_put_ram(z, NULL, gfn, page, handle);
}

static bool take_injected(struct ovc_zstore *z, int *err)
{
	unsigned int n = atomic_load_explicit(&z->fail_loads, memory_order_relaxed);

	while (n) {
		if (atomic_compare_exchange_weak_explicit(&z->fail_loads, &n, n - 1,
							  memory_order_relaxed,
							  memory_order_relaxed)) {
			*err = atomic_load_explicit(&z->fail_err, memory_order_relaxed);
			return true;
		}
	}
	return false;
}

int ovc__zstore_load(struct ovc_zstore *z, struct ovc_ram *ram, uint64_t gfn,
		     uint64_t handle, void *dst)
{
	const struct zentry *e;
	const struct zchunk *ch;
	int n, err;

	if (!z || !dst)
		return -EINVAL;
	if (take_injected(z, &err))
		return err;
	if (!(handle & IDX_MASK) || handle >> OVC_ZSTORE_HANDLE_BITS ||
	    !entry_at(z, (handle & IDX_MASK) - 1)) {
		ovc__err(z->log, "zstore: load of gfn 0x%llx: handle 0x%llx outside the table",
			 (unsigned long long)gfn, (unsigned long long)handle);
		return -EINVAL;
	}
	e = lookup(z, handle, NULL);
	if (!e || e->gfn != gfn || (e->ram && e->ram != ram)) {
		ovc__err(z->log, "zstore: load of gfn 0x%llx: handle 0x%llx is stale or another page's",
			 (unsigned long long)gfn, (unsigned long long)handle);
		return -ESTALE;
	}
	ch = e->chunk;
	n = LZ4_decompress_safe((const char *)slot_ptr(z, ch, e->slot), dst,
				(int)e->csize, (int)OVC_PAGE_SIZE);
	if (n != (int)OVC_PAGE_SIZE || XXH3_64bits(dst, OVC_PAGE_SIZE) != e->sum) {
		ctr_add(&z->checksum_errors, 1);
		ovc__err(z->log, "zstore: gfn 0x%llx handle 0x%llx: %s",
			 (unsigned long long)gfn, (unsigned long long)handle,
			 n != (int)OVC_PAGE_SIZE ? "corrupt LZ4 stream" : "checksum mismatch");
		return -EIO;
	}
	ctr_add(&z->loads, 1);
	return 0;
}

void ovc__zstore_drop(struct ovc_zstore *z, uint64_t handle)
{
	struct zchunk *ch;
	unsigned int slot, csize;

	if (entry_take(z, handle, false, NULL, 0, &ch, &slot, &csize))
		OVC_BUG("zstore: drop of stale or bad handle 0x%llx",
			(unsigned long long)handle);
	slot_free(z, ch, slot);
	account_free(z, csize);
}

unsigned int ovc__zstore_coldest(struct ovc_zstore *z, struct ovc_zstore_victim *out,
				 unsigned int max)
{
	unsigned int n = 0;
	uint32_t i;

	if (!z || !out)
		return 0;
	pthread_mutex_lock(&z->lock);
	for (i = z->oldest; i && n < max; n++) {
		const struct zentry *e = entry_at(z, i - 1);

		out[n].ram = e->ram;
		out[n].gfn = e->gfn;
		out[n].handle = make_handle(i - 1, atomic_load_explicit(&e->tag,
									 memory_order_relaxed));
		out[n].put_ns = e->put_ns;
		out[n].csize = e->csize;
		i = e->newer;
	}
	pthread_mutex_unlock(&z->lock);
	return n;
}

uint64_t ovc__zstore_purge(struct ovc_zstore *z, struct ovc_ram *ram)
{
	uint64_t n = 0;
	uint32_t i, next;

	if (!z)
		return 0;
	pthread_mutex_lock(&z->lock);
	for (i = z->oldest; i; i = next) {
		struct zentry *e = entry_at(z, i - 1);
		struct zchunk *ch = e->chunk;
		unsigned int slot = e->slot, csize = e->csize;

		next = e->newer;
		if (e->ram != ram)
			continue;
		entry_free(z, i - 1, e);
		slot_free(z, ch, slot);		/* class lock nests inside z->lock */
		account_free(z, csize);
		n++;
	}
	pthread_mutex_unlock(&z->lock);
	return n;
}

void ovc__zstore_get_stats(struct ovc_zstore *z, struct ovc_zstore_stats *st)
{
	if (!z || !st)
		return;
#define LD(f) atomic_load_explicit(&z->f, memory_order_relaxed)
	st->entries = LD(entries);
	st->stored_bytes = LD(stored_bytes);
	st->bytes_used = LD(bytes_used);
	st->cap_bytes = z->cap;
	st->chunks = LD(chunks);
	st->puts = LD(puts);
	st->loads = LD(loads);
	st->releases = LD(releases);
	st->rejected_e2big = LD(rejected_e2big);
	st->rejected_cap = LD(rejected_cap);
	st->rejected_nomem = LD(rejected_nomem);
	st->checksum_errors = LD(checksum_errors);
#undef LD
}

void ovc__zstore_fail_loads(struct ovc_zstore *z, unsigned int n, int err)
{
	if (!z)
		return;
	atomic_store_explicit(&z->fail_err, err, memory_order_relaxed);
	atomic_store_explicit(&z->fail_loads, err ? n : 0, memory_order_relaxed);
}

int ovc__zstore_corrupt(struct ovc_zstore *z, uint64_t handle, unsigned int offset)
{
	struct zentry *e;
	int ret = 0;

	if (!z)
		return -EINVAL;
	pthread_mutex_lock(&z->lock);
	e = lookup(z, handle, NULL);
	if (!e) {
		ret = -EINVAL;
		goto out;
	}
	slot_ptr(z, e->chunk, e->slot)[offset % e->csize] ^= 0x5a;
out:
	pthread_mutex_unlock(&z->lock);
	return ret;
}

/* ------------------------------------------------------------------------ */
/* As the COMPRESSED store of RAM objects */

static int zs_load(void *opaque, struct ovc_ram *ram, uint64_t gfn, uint64_t handle,
		   void *dst)
{
	return ovc__zstore_load(opaque, ram, gfn, handle, dst);
}

static void zs_release(void *opaque, struct ovc_ram *ram, uint64_t gfn, uint64_t handle)
{
	struct ovc_zstore *z = opaque;
	struct zchunk *ch;
	unsigned int slot, csize;

	if (entry_take(z, handle, true, ram, gfn, &ch, &slot, &csize))
		OVC_BUG("zstore: release of gfn 0x%llx with stale or foreign handle 0x%llx",
			(unsigned long long)gfn, (unsigned long long)handle);
	slot_free(z, ch, slot);
	account_free(z, csize);
}

const struct ovc_store_ops ovc__zstore_ops = {
	.load = zs_load,
	.release = zs_release,
};
