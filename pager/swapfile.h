/* SPDX-License-Identifier: MIT */
/* pager/swapfile.h: the swap store: checksummed, optionally encrypted 4 KiB slots in a per-VM swap file (internal API). */
#ifndef OVC_PAGER_SWAPFILE_H
#define OVC_PAGER_SWAPFILE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core-internal.h"

/*
 * The swap store keeps guest pages in 4 KiB slots of one preallocated file
 * per store (ESX's per-VM .vswp), created unlinked (O_TMPFILE, else mkstemp +
 * unlink) so nothing outlives the process. A slot's handle is slot + 1: never
 * 0, always within OVC_PTE_PAYLOAD_MAX, so it goes straight into a page-table
 * entry. The on-disk slot holds exactly 4096 bytes (plaintext, or ciphertext
 * of the same size); the xxh3 checksum of the plaintext and, when encrypting,
 * the nonce and the AEAD tag live only in memory, so a slot stays one aligned
 * O_DIRECT block and the file alone reveals and proves nothing.
 *
 * Synchronization:
 *
 *  operation                    | thread(s)                  | locks taken (in this order)
 *  -----------------------------+----------------------------+------------------------------
 *  ovc__swapfile_write()        | the pager's (one or more)  | an I/O context, slot_lock
 *  ovc__swapfile_read()         | the pager's (prefetch)     | an I/O context
 *  ovc__swapfile_ops.load       | fault-engine threads, many | an I/O context
 *  ovc__swapfile_ops.release,   | fault-engine threads and   | slot_lock
 *  ovc__swapfile_drop()         | the pager's                |
 *  ovc__swapfile_get_stats()    | any                        | none (counters are atomic)
 *  ovc__swapfile_inject()       | any (tests)                | none
 *
 * A handle's slot metadata is written by the writer before the handle is
 * returned and read by loaders after they got the handle from a page-table
 * entry: the entry's release/acquire orders them. Loading or releasing a
 * handle concurrently with its own release is the caller's bug (the page's
 * BUSY bit excludes it).
 */

struct ovc_swapfile;

enum ovc_swapfile_io {
	OVC_SWAPFILE_IO_AUTO,		/* io_uring when the kernel allows it, else threads */
	OVC_SWAPFILE_IO_URING,		/* io_uring or fail (ENOSYS, EPERM, ...) */
	OVC_SWAPFILE_IO_THREADS,	/* a pool of pread/pwrite worker threads */
};

enum ovc_swapfile_cipher {
	OVC_SWAPFILE_CIPHER_AUTO,	/* AES-256-GCM where the CPU has AES-NI + PCLMUL, else XChaCha20 */
	OVC_SWAPFILE_CIPHER_XCHACHA20,	/* crypto_aead_xchacha20poly1305_ietf, random 192-bit nonces */
	OVC_SWAPFILE_CIPHER_AES256GCM,	/* crypto_aead_aes256gcm, 96-bit nonce: random prefix + counter */
};

/**
 * struct ovc_swapfile_config - how a swap store is set up
 * @dir: directory of the swap file (must exist); the file is never visible
 *	under a name for long: O_TMPFILE, else mkstemp + unlink; mode 0600
 * @bytes: file size, a non-zero multiple of OVC_PAGE_SIZE; preallocated
 *	with fallocate() at creation (ENOSPC when the filesystem can't)
 * @direct: O_DIRECT I/O, so swapped pages don't linger in the page cache
 *	(default true); silently buffered when the filesystem refuses O_DIRECT
 *	(ovc__swapfile_get_stats() says which)
 * @io: the I/O backend (default OVC_SWAPFILE_IO_AUTO)
 * @queue_depth: I/Os in flight per submission, 1-4096 (default 64); larger
 *	batches are submitted in chunks of this size
 * @io_contexts: I/O contexts (an io_uring ring or a pool client, with
 *	queue_depth bounce buffers each), 1-64 (default 4): as many threads
 *	as this do I/O at once without waiting for each other
 * @pool_threads: worker threads of OVC_SWAPFILE_IO_THREADS, 1-64 (default 4)
 * @encrypt: encrypt every slot with a per-store random key that exists only
 *	in locked memory (default false)
 * @cipher: the AEAD when encrypting (default OVC_SWAPFILE_CIPHER_AUTO)
 *
 * Fill with ovc__swapfile_config_init() first.
 */
struct ovc_swapfile_config {
	const char *dir;
	uint64_t bytes;
	bool direct;
	enum ovc_swapfile_io io;
	unsigned int queue_depth;
	unsigned int io_contexts;
	unsigned int pool_threads;
	bool encrypt;
	enum ovc_swapfile_cipher cipher;
};

#define OVC_SWAPFILE_QUEUE_DEPTH_MAX 4096
#define OVC_SWAPFILE_CONTEXTS_MAX 64
#define OVC_SWAPFILE_THREADS_MAX 64
#define OVC_SWAPFILE_HIST_BUCKETS 40	/* bucket i counts I/Os of [2^i, 2^(i+1)) ns */

/**
 * struct ovc_swapfile_stats - a store's counters, each read atomically
 * @slots_total: slots in the file
 * @slots_used: slots holding a page now
 * @writes: pages stored; @bytes_written their bytes
 * @reads: pages read back and verified (loads and batched reads); @bytes_read
 * @write_batches: ovc__swapfile_write() calls; @read_batches: ovc__swapfile_read() calls
 * @write_enospc: pages refused for want of a free slot
 * @io_errors: reads and writes that failed or came back short
 * @checksum_errors: reads whose checksum or AEAD tag did not verify
 * @write_ns, @read_ns: summed per-page time from submission to completion as
 *	its waiter saw it (with io_uring a batch's pages complete together: each
 *	counts the batch's time; the pool times each pread/pwrite)
 * @write_hist, @read_hist: the same times, per page, by log2(ns)
 * @io: the backend in use (URING or THREADS, never AUTO)
 * @direct: O_DIRECT in use
 * @encrypt: encryption on; @cipher: the AEAD (AUTO when off)
 */
struct ovc_swapfile_stats {
	uint64_t slots_total;
	uint64_t slots_used;
	uint64_t writes;
	uint64_t reads;
	uint64_t bytes_written;
	uint64_t bytes_read;
	uint64_t write_batches;
	uint64_t read_batches;
	uint64_t write_enospc;
	uint64_t io_errors;
	uint64_t checksum_errors;
	uint64_t write_ns;
	uint64_t read_ns;
	uint64_t write_hist[OVC_SWAPFILE_HIST_BUCKETS];
	uint64_t read_hist[OVC_SWAPFILE_HIST_BUCKETS];
	enum ovc_swapfile_io io;
	bool direct;
	bool encrypt;
	enum ovc_swapfile_cipher cipher;
};

/* Faults tests inject; each armed count is consumed one page at a time. */
enum ovc_swapfile_fault {
	OVC_SWAPFILE_WRITE_EIO,		/* the page's write completes with -EIO */
	OVC_SWAPFILE_WRITE_SHORT,	/* the page's write comes back half done */
	OVC_SWAPFILE_WRITE_ENOSPC,	/* no slot for the page */
	OVC_SWAPFILE_READ_EIO,		/* the page's read (load or batched) fails */
	OVC_SWAPFILE_CORRUPT,		/* the page is written with one byte flipped */
	OVC_SWAPFILE_NR_FAULTS,
};

/* Defaults: see struct ovc_swapfile_config. */
void ovc__swapfile_config_init(struct ovc_swapfile_config *cfg);

/**
 * ovc__swapfile_new() - create a swap store and its file
 * @log: where errors go; borrowed for the store's lifetime
 * @cfg: the configuration
 *
 * Pair with ovc__swapfile_destroy().
 * Return: the store, or NULL with errno set: EINVAL for a bad @cfg, ENOENT /
 * ENOTDIR / EACCES for @dir, ENOSPC when the file can't be preallocated,
 * EOPNOTSUPP for AES-256-GCM on a CPU without it, or the errno of io_uring
 * setup (forced URING), thread creation or memory allocation.
 * Context: any thread; starts the pool's threads for IO_THREADS.
 */
struct ovc_swapfile *ovc__swapfile_new(const struct ovc_log *log,
				       const struct ovc_swapfile_config *cfg);

/**
 * ovc__swapfile_destroy() - close the file (which has no name) and free the store
 * @s: the store, or NULL
 *
 * Slots still in use are simply gone. The key is wiped.
 * Context: no other call on @s may run or follow; the fault engine must no
 * longer reach it (detach its RAM or destroy the VM first).
 */
void ovc__swapfile_destroy(struct ovc_swapfile *s);

/**
 * ovc__swapfile_write() - store a batch of pages
 * @s: the store
 * @pages: @n pages of OVC_PAGE_SIZE bytes, any alignment; they must stay
 *	valid and unchanged until the call returns
 * @n: how many (any number; queue_depth at a time go into one submission)
 * @handles: set per stored page to its handle (non-zero, <= OVC_PTE_PAYLOAD_MAX)
 * @errs: set per page to 0 or a negative errno: -ENOSPC (no free slot),
 *	-EIO (failed or short write) or another errno of the write. A failed
 *	page holds no slot (its handle is 0).
 *
 * Return: 0 when every page was stored, else the first page's error;
 * -EINVAL (nothing done) for bad arguments.
 * Context: any thread; blocks until every write completed.
 */
OVC_MUST_CHECK int ovc__swapfile_write(struct ovc_swapfile *s,
				       const void *const *pages, unsigned int n,
				       uint64_t *handles, int *errs);

/**
 * ovc__swapfile_read() - read and verify a batch of slots (prefetch)
 * @s: the store
 * @handles: @n handles from ovc__swapfile_write(); they stay allocated
 * @dst: @n buffers of OVC_PAGE_SIZE bytes, any alignment
 * @n: how many
 * @errs: set per page to 0, -EIO (I/O error, short read, checksum or tag
 *	mismatch: contents lost), or -EINVAL / -ENOENT (bad or free handle)
 *
 * Return: 0 when every page was read, else the first page's error; -EINVAL
 * (nothing done) for bad arguments.
 * Context: any thread; blocks.
 */
OVC_MUST_CHECK int ovc__swapfile_read(struct ovc_swapfile *s, const uint64_t *handles,
				      void *const *dst, unsigned int n, int *errs);

/**
 * ovc__swapfile_drop() - free a slot no page-table entry refers to
 * @s: the store
 * @handle: a live handle (a freed or foreign one is a bug: OVC_BUG)
 *
 * Context: any thread; takes slot_lock.
 */
void ovc__swapfile_drop(struct ovc_swapfile *s, uint64_t handle);

/* Copy out the counters. Context: any thread, lock-free. */
void ovc__swapfile_get_stats(struct ovc_swapfile *s, struct ovc_swapfile_stats *st);

/* The q-quantile (0..1) of a latency histogram, in ns; 0 when empty. */
uint64_t ovc__swapfile_hist_quantile_ns(const uint64_t *hist, double q);

/* "uring", "threads" or "auto"; "xchacha20poly1305", "aes256gcm" or "none". */
const char *ovc__swapfile_io_name(enum ovc_swapfile_io io);
const char *ovc__swapfile_cipher_name(enum ovc_swapfile_cipher c);

/**
 * ovc__swapfile_inject() - test hook: make the next @count pages fail with @fault
 * @s: the store
 * @fault: what goes wrong
 * @count: how many pages (0 disarms)
 *
 * Context: any thread.
 */
void ovc__swapfile_inject(struct ovc_swapfile *s, enum ovc_swapfile_fault fault,
			  unsigned int count);

/**
 * ovc__swapfile_corrupt_slot() - test hook: flip bytes of a stored slot on disk
 * @s: the store
 * @handle: a live handle
 *
 * Return: 0, or -EINVAL for a bad handle, or the errno of the file I/O.
 * Context: any thread; not concurrently with a load of @handle.
 */
int ovc__swapfile_corrupt_slot(struct ovc_swapfile *s, uint64_t handle);

/*
 * The store behind OVC_PAGE_SWAPPED (opaque = the struct ovc_swapfile):
 * load reads, verifies (and decrypts) the slot, -EIO on any I/O error or
 * mismatch, never a zero page; release frees the slot.
 */
extern const struct ovc_store_ops ovc__swapfile_ops;

#endif /* OVC_PAGER_SWAPFILE_H */
