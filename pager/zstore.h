/* SPDX-License-Identifier: MIT */
/* pager/zstore.h: the compressed tier, an LZ4 page store on a size-class slab (internal API). */
#ifndef OVC_PAGER_ZSTORE_H
#define OVC_PAGER_ZSTORE_H

#include <stdint.h>

#include "core/core-internal.h"

/*
 * The compressed tier keeps guest pages LZ4-compressed in host RAM, ESX-style:
 * a page is compressed before it would go to disk, and kept only when it
 * shrinks to max_csize bytes or less. One zstore may serve one VM or every VM
 * of a host; each entry remembers the struct ovc_ram it belongs to.
 *
 * Memory. Compressed pages live in slots of size classes 64, 128, ...,
 * round_up(max_csize, 64) bytes, carved from 64 KiB chunks obtained with
 * mmap(2); a chunk serves one class, hands out slots it never used in order
 * and freed ones from a free list threaded through them. A chunk that
 * empties goes to a small pool of spare chunks (up to
 * OVC_ZSTORE_POOL_CHUNKS, reused by any class) and beyond that back to the
 * kernel. Entry metadata (56 bytes a page) sits in a table of 1024-entry
 * blocks, also mmap'd, that only grows; handles are table indexes, recycled
 * LIFO.
 *
 * @bytes_used is the host RAM the tier holds, counted to the page: every
 * page of a chunk or of the table from the moment the tier first writes to
 * it (reserved against the cap before the write), chunk headers, the
 * directory slots in use and the zstore itself. So it covers payload,
 * per-entry metadata and slab waste (rounding to the class, free slots,
 * spare chunks), and never exceeds @cap_bytes.
 *
 * Handles. bits 0..27: table index + 1 (never 0); bits 28..43: the entry's
 * generation, bumped when the entry is freed, so a stale handle is refused
 * instead of naming another page. Always below 2^44, inside
 * OVC_PTE_PAYLOAD_MAX.
 *
 * Age. Entries sit on one FIFO list in put order; ovc__zstore_coldest()
 * reads its oldest end. Pages that come back (load + release) leave the list,
 * so the FIFO holds exactly the pages still compressed, oldest first.
 *
 * Locks, in nesting order (never taken the other way):
 *   z->lock       the entry table (allocation, free list, table growth), the
 *                 FIFO list and every entry's fields. Held O(1) by put,
 *                 release and drop; O(max) by coldest; O(entries) by purge.
 *   class->lock   one per size class: its chunk lists, slot free lists and
 *                 the chunks' use counts. put takes it without z->lock.
 *   z->pool_lock  the spare-chunk pool; a leaf.
 * Counters and the cap reservation are ATOMIC.
 *
 * Synchronization table:
 *
 *  operation    | thread                         | takes
 *  -------------+--------------------------------+-------------------------------
 *  put          | pager (any number of threads)  | class lock, then z->lock (not nested)
 *  drop         | pager                          | z->lock, then class lock (not nested)
 *  coldest      | pager                          | z->lock
 *  purge        | VM teardown                    | z->lock > class locks
 *  load (ops)   | fault engine, pager transition | nothing: lock-free (see below)
 *  release (ops)| fault engine, transition commit| z->lock, then class lock (not nested)
 *  stats        | any                            | nothing (relaxed atomics)
 *
 * Loads take no lock: the caller holds the page BUSY, so the handle in its
 * entry can be neither released nor reused while it decompresses (release
 * and drop are only called by a BUSY holder or before the handle is
 * published). The entry and its slot were written before put returned, and
 * the page-table entry's release/acquire publishes them to the loader.
 * Table blocks never move, so the lookup is two atomic loads. Loads of
 * different pages therefore never wait for each other or for puts.
 */

/* Spare empty chunks kept for reuse (any class), counted in bytes_used. */
#define OVC_ZSTORE_POOL_CHUNKS 4
#define OVC_ZSTORE_CHUNK_BYTES (64U * 1024)
/* The smallest cap accepted: one table block and a few chunks. */
#define OVC_ZSTORE_MIN_CAP (256ULL * 1024)
#define OVC_ZSTORE_DEFAULT_MAX_CSIZE 2048U
/* Handles stay below this (see above); checked at build time against the PTE. */
#define OVC_ZSTORE_HANDLE_BITS 44

struct ovc_zstore;

/**
 * struct ovc_zstore_config - how a compressed tier is set up
 * @cap_bytes: host RAM the tier may hold (compressed data, slab waste and
 *	metadata, see bytes_used); 0 for no cap, else at least
 *	OVC_ZSTORE_MIN_CAP
 * @max_csize: a page that compresses to more bytes than this is refused
 *	with -E2BIG (it belongs on disk); 0 for OVC_ZSTORE_DEFAULT_MAX_CSIZE,
 *	at most OVC_PAGE_SIZE
 * @acceleration: LZ4_compress_fast's acceleration, 0 for 1 (best ratio);
 *	at most 65537
 */
struct ovc_zstore_config {
	uint64_t cap_bytes;
	unsigned int max_csize;
	unsigned int acceleration;
};

/**
 * struct ovc_zstore_stats - what the tier holds and has done
 * @entries: pages held now
 * @stored_bytes: their compressed size in bytes (payload only)
 * @bytes_used: host RAM held: chunks, entry table, headers (never above the cap)
 * @cap_bytes: the cap (0: none)
 * @chunks: 64 KiB slab chunks held, spare ones included
 * @puts: pages stored
 * @loads: successful loads
 * @releases: entries freed by release, drop or purge
 * @rejected_e2big: puts refused because the page compressed to > max_csize
 * @rejected_cap: puts refused with -ENOSPC (cap or handle space)
 * @rejected_nomem: puts refused with -ENOMEM
 * @checksum_errors: loads refused with -EIO (bad checksum or LZ4 stream)
 *
 * Compression ratio of what is held: entries * OVC_PAGE_SIZE / stored_bytes;
 * the RAM actually saved: entries * OVC_PAGE_SIZE - bytes_used.
 */
struct ovc_zstore_stats {
	uint64_t entries;
	uint64_t stored_bytes;
	uint64_t bytes_used;
	uint64_t cap_bytes;
	uint64_t chunks;
	uint64_t puts;
	uint64_t loads;
	uint64_t releases;
	uint64_t rejected_e2big;
	uint64_t rejected_cap;
	uint64_t rejected_nomem;
	uint64_t checksum_errors;
};

/**
 * struct ovc_zstore_victim - one of the oldest entries, for eviction
 * @ram: the RAM given to put (NULL from ovc__zstore_put())
 * @gfn: the guest page
 * @handle: its handle, as found in the page's entry while it is COMPRESSED
 * @put_ns: ovc__now_ns() when it was stored
 * @csize: its compressed size
 */
struct ovc_zstore_victim {
	struct ovc_ram *ram;
	uint64_t gfn;
	uint64_t handle;
	uint64_t put_ns;
	unsigned int csize;
};

/*
 * ovc__zstore_new - create a compressed tier.
 * @log: borrowed for the tier's lifetime
 * @cfg: NULL for the defaults (no cap, 2048 bytes, acceleration 1)
 * Returns NULL with errno set: EINVAL for a bad config, ENOMEM.
 * Pair with ovc__zstore_destroy().
 */
struct ovc_zstore *ovc__zstore_new(const struct ovc_log *log,
				   const struct ovc_zstore_config *cfg);

/*
 * ovc__zstore_destroy - free the tier and every page still in it. Nothing
 * may refer to its handles any more (the RAMs are gone or purged). NULL is
 * fine.
 */
void ovc__zstore_destroy(struct ovc_zstore *z);

/*
 * ovc__zstore_put_ram - compress one page and keep it.
 * @ram: the RAM the page belongs to; load and release check it (NULL: none)
 * @gfn: the guest page; load and release check it too
 * @page: OVC_PAGE_SIZE bytes, stable for the call
 * @handle: set to a non-zero handle below 2^OVC_ZSTORE_HANDLE_BITS on success
 * Return 0; -E2BIG when the page compresses to more than max_csize (send it
 * to disk); -ENOSPC when keeping it would take the tier over its cap;
 * -ENOMEM; -EINVAL for NULL arguments.
 * Context: any thread; compresses with no lock held, then takes a class lock
 * and z->lock in turn, briefly.
 */
OVC_MUST_CHECK int ovc__zstore_put_ram(struct ovc_zstore *z, struct ovc_ram *ram,
				       uint64_t gfn, const void *page,
				       uint64_t *handle);

/* ovc__zstore_put - ovc__zstore_put_ram() for a tier that serves one RAM. */
OVC_MUST_CHECK int ovc__zstore_put(struct ovc_zstore *z, uint64_t gfn,
				   const void *page, uint64_t *handle);

/*
 * ovc__zstore_load - decompress the page of @handle into @dst
 * (OVC_PAGE_SIZE bytes) and check it against the checksum of the original.
 * Return 0; -EIO (counted in checksum_errors) when the LZ4 stream or the
 * checksum is bad: @dst is garbage then, never hand it to the guest;
 * -EINVAL for a handle outside the table; -ESTALE for a handle that was
 * freed or belongs to another page or RAM; or an injected error.
 * Context: lock-free; the caller keeps @handle alive for the call (holds the
 * page BUSY, or owns a handle not yet published).
 */
OVC_MUST_CHECK int ovc__zstore_load(struct ovc_zstore *z, struct ovc_ram *ram,
				    uint64_t gfn, uint64_t handle, void *dst);

/*
 * ovc__zstore_drop - free an entry that never made it into a page-table
 * entry (failed commit) or that the caller owns otherwise. A bad or stale
 * handle is a broken invariant (OVC_BUG).
 * Context: any thread; takes z->lock, then the class lock.
 */
void ovc__zstore_drop(struct ovc_zstore *z, uint64_t handle);

/*
 * ovc__zstore_coldest - copy out up to @max of the oldest entries (put
 * order), oldest first, without removing them; the same entries come back
 * on the next call until they are released. Return how many.
 * The result is a snapshot: before acting on a victim the caller takes the
 * page BUSY and checks its entry is still COMPRESSED with this handle (the
 * generation in the handle makes that check exact).
 * Context: any thread; holds z->lock for O(max).
 */
unsigned int ovc__zstore_coldest(struct ovc_zstore *z, struct ovc_zstore_victim *out,
				 unsigned int max);

/*
 * ovc__zstore_purge - free every entry of @ram (a RAM being destroyed, whose
 * page table no longer counts). Return how many were freed.
 * Context: not concurrent with loads or releases of @ram; holds z->lock for
 * O(entries).
 */
uint64_t ovc__zstore_purge(struct ovc_zstore *z, struct ovc_ram *ram);

/* Copy out the counters (each exact, not one atomic picture). Lock-free. */
void ovc__zstore_get_stats(struct ovc_zstore *z, struct ovc_zstore_stats *st);

/* Test hook: make the next @n loads fail with @err (a negative errno; 0 stops). */
void ovc__zstore_fail_loads(struct ovc_zstore *z, unsigned int n, int err);

/*
 * Test hook: flip one byte (at @offset modulo the compressed size) of the
 * stored page of @handle, so its load must fail. Return 0, -EINVAL for a bad
 * handle. Context: not concurrent with a load of @handle.
 */
int ovc__zstore_corrupt(struct ovc_zstore *z, uint64_t handle, unsigned int offset);

/*
 * The store ops for ovc__ram_set_store(..., OVC_PAGE_COMPRESSED, ...), with
 * the zstore as opaque: load is ovc__zstore_load(); release frees the entry
 * (a bad or stale handle, or one of another page, is OVC_BUG).
 */
extern const struct ovc_store_ops ovc__zstore_ops;

#endif /* OVC_PAGER_ZSTORE_H */
