// SPDX-License-Identifier: MIT
/* pager/swapfile.c: the swap store: 4 KiB slots in an unlinked, preallocated file; batched io_uring or thread-pool I/O; checksums and optional AEAD. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <liburing.h>
#include <sodium.h>
#include <xxhash.h>

#include "pager/swapfile.h"

#define SLOT_SIZE OVC_PAGE_SIZE
#define NONCE_MAX crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
#define KEY_BYTES crypto_aead_xchacha20poly1305_ietf_KEYBYTES

_Static_assert(crypto_aead_aes256gcm_ABYTES == TAG_BYTES, "one tag size");
_Static_assert(crypto_aead_aes256gcm_NPUBBYTES <= NONCE_MAX, "nonces fit");
_Static_assert(crypto_aead_aes256gcm_KEYBYTES == KEY_BYTES, "one key size");
_Static_assert(crypto_aead_aes256gcm_NPUBBYTES == 12, "AES-GCM nonce is prefix(4) + counter(8)");

/* The request result a request has before the kernel or a worker saw it. */
#define RES_UNSUBMITTED INT_MIN

/* Tries of a submission the kernel answers with EAGAIN/EBUSY before giving up. */
#define SUBMIT_TRIES 1000

/* Per-slot secrets of an encrypted slot; kept in memory only. */
struct slot_crypt {
	uint8_t nonce[NONCE_MAX];
	uint8_t tag[TAG_BYTES];
};

/*
 * Key material, in sodium_malloc()ed memory (guard pages, mlocked, wiped by
 * sodium_free()), read-only once set up.
 */
struct swap_key {
	crypto_aead_aes256gcm_state aes;	/* expanded AES key; 16-byte aligned */
	uint8_t key[KEY_BYTES];
	uint8_t nonce_prefix[4];		/* AES-GCM: random per store */
};

struct swap_ctx;

/* One slot read or write, in flight in a context. */
struct swap_req {
	struct swap_req *next;		/* in the pool's queue, under pool.lock */
	struct swap_ctx *ctx;
	uint64_t slot;
	void *buf;			/* what the I/O reads into / writes from */
	bool write;
	bool fixed;			/* buf is in the context's registered bounce area */
	int inject;			/* enum ovc_swapfile_fault applied on completion, or -1 */
	unsigned int idx;		/* the caller's page index */
	int res;			/* bytes, or -errno; RES_UNSUBMITTED */
	uint64_t ns;			/* submission to completion */
};

/*
 * struct swap_ctx - everything one thread needs to do one batch of I/O: an
 * io_uring ring (IO_URING) or a way into the worker pool (IO_THREADS), and
 * queue_depth requests, bounce buffers and slot numbers.
 *
 * @lock makes its holder the context's only user for one whole operation
 * (prepare, submit, wait, reap): io_uring rings are not thread-safe, and the
 * bounce buffers belong to the I/O in flight. A thread picks a free context
 * (trylock) starting from one chosen by its thread id, so up to io_contexts
 * threads do I/O at once; only when all are busy does it wait. Lock order:
 * ctx.lock -> slot_lock, ctx.lock -> pool.lock, ctx.lock -> done_lock.
 */
struct swap_ctx {
	struct ovc_swapfile *s;
	pthread_mutex_t lock;		/* owner of everything below for one operation */
	struct io_uring ring;
	bool has_ring;
	bool fixed_bufs;		/* bounce area registered with the ring */
	uint8_t *bounce;		/* queue_depth slots, page aligned */
	struct swap_req *reqs;		/* queue_depth */
	uint64_t *slots;		/* queue_depth: slots allocated for a write */

	/* Pool completions: workers count down, the owner waits. Leaf lock. */
	pthread_mutex_t done_lock;	/* protects pending */
	pthread_cond_t done_cond;
	unsigned int pending;
};

/*
 * The thread pool of IO_THREADS: workers take requests from a FIFO, do the
 * pread/pwrite and count down the request's context. pool.lock protects the
 * queue and @stop; nothing is taken inside it.
 */
struct swap_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct swap_req *head;
	struct swap_req **tail;
	bool stop;
	pthread_t *threads;
	unsigned int nthreads;
};

/*
 * struct ovc_swapfile - the store.
 *
 * Locks, outermost first:
 *
 *   swap_ctx.lock  (one I/O context, held for one whole batch or load)
 *     -> slot_lock       (allocator; leaf)
 *     -> swap_pool.lock  (worker queue; leaf)
 *     -> swap_ctx.done_lock (pool completions; leaf)
 *
 * The three inner locks are never held together. release/drop take only
 * slot_lock, so freeing a slot never waits for I/O. Pool workers take
 * pool.lock, drop it, do the I/O, then take their request's done_lock.
 * Configuration, the file descriptor, the key and the arrays' addresses are
 * immutable after creation.
 */
struct ovc_swapfile {
	const struct ovc_log *log;
	int fd;
	uint64_t nslots;
	unsigned int qd;
	enum ovc_swapfile_io io;
	enum ovc_swapfile_cipher cipher;	/* AUTO when not encrypting */
	bool direct;
	bool encrypt;

	/*
	 * Slot allocator: a bitmap (bit set = slot in use; the bits past
	 * @nslots of the last word are set for good) with a next-fit cursor.
	 * slot_lock protects the cursor and every change of the bitmap and
	 * @used; the bitmap is read lock-free (a load's sanity check), hence
	 * atomic words. Leaf lock, short holds.
	 */
	pthread_mutex_t slot_lock;
	_Atomic uint64_t *bitmap;	/* ATOMIC; written under slot_lock */
	uint64_t nwords;
	uint64_t cursor;		/* under slot_lock */
	_Atomic uint64_t used;		/* ATOMIC; written under slot_lock */

	/* Per-slot metadata, sparse (MAP_NORESERVE): see the header. */
	uint64_t *sums;			/* xxh3 of the plaintext */
	size_t sums_bytes;
	struct slot_crypt *crypt;	/* when encrypting */
	size_t crypt_bytes;
	size_t bitmap_bytes;

	struct swap_key *key;		/* inside key_mem, aligned */
	void *key_mem;			/* sodium_malloc() */
	_Atomic uint64_t nonce_ctr;	/* ATOMIC: AES-GCM nonces */

	struct swap_ctx *ctx;
	unsigned int nctx;
	struct swap_pool pool;

	_Atomic unsigned int inject[OVC_SWAPFILE_NR_FAULTS];	/* ATOMIC */

	/* Counters, all ATOMIC (relaxed). */
	_Atomic uint64_t writes, reads, bytes_written, bytes_read;
	_Atomic uint64_t write_batches, read_batches, write_enospc;
	_Atomic uint64_t io_errors, checksum_errors;
	_Atomic uint64_t write_ns, read_ns;
	_Atomic uint64_t write_hist[OVC_SWAPFILE_HIST_BUCKETS];
	_Atomic uint64_t read_hist[OVC_SWAPFILE_HIST_BUCKETS];
};

/* ------------------------------------------------------------------------ */
/* Small helpers */

#define count_add(field, v) atomic_fetch_add_explicit(&(field), (v), memory_order_relaxed)

static bool aligned(const void *p)
{
	return ((uintptr_t)p & (SLOT_SIZE - 1)) == 0;
}

/* Consume one armed fault; true when this page gets it. */
static bool take_fault(struct ovc_swapfile *s, enum ovc_swapfile_fault f)
{
	unsigned int left = atomic_load_explicit(&s->inject[f], memory_order_relaxed);

	while (left) {
		if (atomic_compare_exchange_weak_explicit(&s->inject[f], &left, left - 1,
							  memory_order_relaxed,
							  memory_order_relaxed))
			return true;
	}
	return false;
}

static void *map_sparse(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* ------------------------------------------------------------------------ */
/* Slot allocator */

/* Allocate up to @n slots into @out; return how many (fewer: the file is full). */
static unsigned int slots_alloc(struct ovc_swapfile *s, uint64_t *out, unsigned int n)
{
	uint64_t used, w;
	unsigned int got = 0;

	pthread_mutex_lock(&s->slot_lock);
	used = atomic_load_explicit(&s->used, memory_order_relaxed);
	w = s->cursor;
	/* The count says a free bit exists, so the scan ends. */
	while (got < n && used + got < s->nslots) {
		uint64_t bits = atomic_load_explicit(&s->bitmap[w], memory_order_relaxed);
		unsigned int b;

		if (bits == ~0ULL) {
			w = w + 1 == s->nwords ? 0 : w + 1;
			continue;
		}
		b = (unsigned int)__builtin_ctzll(~bits);
		atomic_store_explicit(&s->bitmap[w], bits | (1ULL << b), memory_order_relaxed);
		out[got++] = w * 64 + b;
	}
	s->cursor = w;
	atomic_store_explicit(&s->used, used + got, memory_order_relaxed);
	pthread_mutex_unlock(&s->slot_lock);
	return got;
}

static void slot_free(struct ovc_swapfile *s, uint64_t slot)
{
	uint64_t bit = 1ULL << (slot % 64), bits;

	pthread_mutex_lock(&s->slot_lock);
	bits = atomic_load_explicit(&s->bitmap[slot / 64], memory_order_relaxed);
	if (!(bits & bit))
		OVC_BUG("swapfile: slot %llu freed twice", (unsigned long long)slot);
	atomic_store_explicit(&s->bitmap[slot / 64], bits & ~bit, memory_order_relaxed);
	atomic_store_explicit(&s->used, atomic_load_explicit(&s->used, memory_order_relaxed) - 1,
			      memory_order_relaxed);
	pthread_mutex_unlock(&s->slot_lock);
}

static bool slot_in_use(struct ovc_swapfile *s, uint64_t slot)
{
	return atomic_load_explicit(&s->bitmap[slot / 64], memory_order_relaxed) &
	       (1ULL << (slot % 64));
}

/* The slot of @handle, or -EINVAL / -ENOENT (free). */
static int64_t handle_slot(struct ovc_swapfile *s, uint64_t handle)
{
	if (handle == 0 || handle > s->nslots)
		return -EINVAL;
	if (!slot_in_use(s, handle - 1))
		return -ENOENT;
	return (int64_t)(handle - 1);
}

/* ------------------------------------------------------------------------ */
/* Encryption */

static void slot_ad(uint64_t slot, uint8_t ad[8])
{
	unsigned int i;

	/* The slot number is authenticated: a ciphertext moved to another slot fails. */
	for (i = 0; i < 8; i++)
		ad[i] = (uint8_t)(slot >> (8 * i));
}

static void encrypt_page(struct ovc_swapfile *s, uint64_t slot, const void *src, void *dst)
{
	struct slot_crypt *m = &s->crypt[slot];
	unsigned long long taglen;
	uint8_t ad[8];

	slot_ad(slot, ad);
	if (s->cipher == OVC_SWAPFILE_CIPHER_AES256GCM) {
		/*
		 * 96-bit nonces: a random per-store prefix and a counter. Never
		 * repeats under one key, unlike random 96-bit nonces, whose
		 * collision odds pass 2^-32 after 2^32 writes (16 TiB).
		 */
		uint64_t ctr = atomic_fetch_add_explicit(&s->nonce_ctr, 1, memory_order_relaxed);

		memcpy(m->nonce, s->key->nonce_prefix, 4);
		memcpy(m->nonce + 4, &ctr, 8);
		crypto_aead_aes256gcm_encrypt_detached_afternm(dst, m->tag, &taglen, src,
							       SLOT_SIZE, ad, sizeof(ad),
							       NULL, m->nonce, &s->key->aes);
	} else {
		randombytes_buf(m->nonce, NONCE_MAX);
		crypto_aead_xchacha20poly1305_ietf_encrypt_detached(dst, m->tag, &taglen, src,
								    SLOT_SIZE, ad, sizeof(ad),
								    NULL, m->nonce,
								    s->key->key);
	}
}

/* 0, or -1 when the tag does not verify. */
static int decrypt_page(struct ovc_swapfile *s, uint64_t slot, const void *src, void *dst)
{
	const struct slot_crypt *m = &s->crypt[slot];
	uint8_t ad[8];

	slot_ad(slot, ad);
	if (s->cipher == OVC_SWAPFILE_CIPHER_AES256GCM)
		return crypto_aead_aes256gcm_decrypt_detached_afternm(dst, NULL, src, SLOT_SIZE,
								      m->tag, ad, sizeof(ad),
								      m->nonce, &s->key->aes);
	return crypto_aead_xchacha20poly1305_ietf_decrypt_detached(dst, NULL, src, SLOT_SIZE,
								   m->tag, ad, sizeof(ad),
								   m->nonce, s->key->key);
}

static int key_setup(struct ovc_swapfile *s, enum ovc_swapfile_cipher want)
{
	size_t align = 64;

	if (sodium_init() < 0) {
		ovc__err(s->log, "swapfile: libsodium failed to initialize");
		return -ENOSYS;
	}
	if (want == OVC_SWAPFILE_CIPHER_AUTO)
		want = crypto_aead_aes256gcm_is_available() ? OVC_SWAPFILE_CIPHER_AES256GCM :
							      OVC_SWAPFILE_CIPHER_XCHACHA20;
	if (want == OVC_SWAPFILE_CIPHER_AES256GCM && !crypto_aead_aes256gcm_is_available()) {
		ovc__err(s->log, "swapfile: AES-256-GCM needs AES-NI and PCLMUL, which this CPU lacks");
		return -EOPNOTSUPP;
	}
	s->cipher = want;
	/* sodium_malloc() only promises 8-byte alignment; the AES state needs 16. */
	s->key_mem = sodium_malloc(sizeof(struct swap_key) + align);
	if (!s->key_mem)
		return -ENOMEM;
	s->key = (struct swap_key *)(((uintptr_t)s->key_mem + align - 1) & ~(uintptr_t)(align - 1));
	crypto_aead_xchacha20poly1305_ietf_keygen(s->key->key);
	randombytes_buf(s->key->nonce_prefix, sizeof(s->key->nonce_prefix));
	if (want == OVC_SWAPFILE_CIPHER_AES256GCM)
		crypto_aead_aes256gcm_beforenm(&s->key->aes, s->key->key);
	/* Nothing writes it again: a stray write faults instead of changing the key. */
	sodium_mprotect_readonly(s->key_mem);
	return 0;
}

/* ------------------------------------------------------------------------ */
/* I/O: synchronous, thread pool, io_uring */

static void sync_io(struct ovc_swapfile *s, struct swap_req *r)
{
	off_t off = (off_t)(r->slot * SLOT_SIZE);
	uint64_t t0 = ovc__now_ns();
	ssize_t ret;

	do {
		ret = r->write ? pwrite(s->fd, r->buf, SLOT_SIZE, off) :
				 pread(s->fd, r->buf, SLOT_SIZE, off);
	} while (ret < 0 && errno == EINTR);
	r->res = ret < 0 ? -errno : (int)ret;
	r->ns = ovc__now_ns() - t0;
}

static void *pool_worker(void *arg)
{
	struct ovc_swapfile *s = arg;
	struct swap_pool *p = &s->pool;

	for (;;) {
		struct swap_req *r;
		struct swap_ctx *c;

		pthread_mutex_lock(&p->lock);
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		r = p->head;
		if (!r) {	/* stopping, and the queue is empty */
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		p->head = r->next;
		if (!p->head)
			p->tail = &p->head;
		pthread_mutex_unlock(&p->lock);

		sync_io(s, r);
		/* The request may be reused as soon as pending hits 0: touch it no more. */
		c = r->ctx;
		pthread_mutex_lock(&c->done_lock);
		if (--c->pending == 0)
			pthread_cond_signal(&c->done_cond);
		pthread_mutex_unlock(&c->done_lock);
	}
}

/* Called with c->lock held. */
static void pool_run(struct swap_ctx *c, unsigned int n)
{
	struct ovc_swapfile *s = c->s;
	struct swap_pool *p = &s->pool;
	unsigned int i;

	pthread_mutex_lock(&c->done_lock);
	c->pending = n;
	pthread_mutex_unlock(&c->done_lock);

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < n; i++) {
		c->reqs[i].ctx = c;
		c->reqs[i].next = NULL;
		*p->tail = &c->reqs[i];
		p->tail = &c->reqs[i].next;
	}
	if (n == 1)
		pthread_cond_signal(&p->cond);
	else
		pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);

	pthread_mutex_lock(&c->done_lock);
	while (c->pending)
		pthread_cond_wait(&c->done_cond, &c->done_lock);
	pthread_mutex_unlock(&c->done_lock);
}

static int ring_init(struct swap_ctx *c)
{
	struct ovc_swapfile *s = c->s;
	struct io_uring_params p;
	struct io_uring_probe *probe;
	struct iovec iov;
	int ret;

	memset(&p, 0, sizeof(p));
	/* Completions are reaped only inside io_uring_enter(): no IPIs needed. */
	p.flags = IORING_SETUP_COOP_TASKRUN;
	ret = io_uring_queue_init_params(s->qd, &c->ring, &p);
	if (ret == -EINVAL) {	/* before 5.19 */
		memset(&p, 0, sizeof(p));
		ret = io_uring_queue_init_params(s->qd, &c->ring, &p);
	}
	if (ret < 0)
		return ret;
	probe = io_uring_get_probe_ring(&c->ring);
	if (!probe || !io_uring_opcode_supported(probe, IORING_OP_READ) ||
	    !io_uring_opcode_supported(probe, IORING_OP_WRITE)) {
		if (probe)
			io_uring_free_probe(probe);
		io_uring_queue_exit(&c->ring);
		return -EOPNOTSUPP;
	}
	io_uring_free_probe(probe);
	c->has_ring = true;
	/* Registered bounce buffers skip pinning pages per I/O; optional. */
	iov.iov_base = c->bounce;
	iov.iov_len = (size_t)s->qd * SLOT_SIZE;
	c->fixed_bufs = io_uring_register_buffers(&c->ring, &iov, 1) == 0;
	return 0;
}

static void ring_fini(struct swap_ctx *c)
{
	if (!c->has_ring)
		return;
	io_uring_queue_exit(&c->ring);
	c->has_ring = false;
	c->fixed_bufs = false;
}

/* Reap every completion there is now; return how many. */
static unsigned int ring_reap(struct swap_ctx *c, uint64_t t0)
{
	struct io_uring_cqe *cqe;
	unsigned int head, count = 0;
	uint64_t now = ovc__now_ns();

	io_uring_for_each_cqe(&c->ring, head, cqe) {
		struct swap_req *r = io_uring_cqe_get_data(cqe);

		r->res = cqe->res;
		r->ns = now - t0;
		count++;
	}
	io_uring_cq_advance(&c->ring, count);
	return count;
}

/* Called with c->lock held; n <= queue_depth and the ring is idle. */
static void ring_run(struct swap_ctx *c, unsigned int n)
{
	struct ovc_swapfile *s = c->s;
	unsigned int i, submitted = 0, done = 0, tries = 0;
	uint64_t t0;
	int ret = 0;

	for (i = 0; i < n; i++) {
		struct swap_req *r = &c->reqs[i];
		struct io_uring_sqe *sqe = io_uring_get_sqe(&c->ring);
		off_t off = (off_t)(r->slot * SLOT_SIZE);

		if (!sqe)
			OVC_BUG("swapfile: no free SQE for request %u of %u", i, n);
		if (r->fixed && r->write)
			io_uring_prep_write_fixed(sqe, s->fd, r->buf, SLOT_SIZE, off, 0);
		else if (r->fixed)
			io_uring_prep_read_fixed(sqe, s->fd, r->buf, SLOT_SIZE, off, 0);
		else if (r->write)
			io_uring_prep_write(sqe, s->fd, r->buf, SLOT_SIZE, off);
		else
			io_uring_prep_read(sqe, s->fd, r->buf, SLOT_SIZE, off);
		io_uring_sqe_set_data(sqe, r);
	}

	/* One io_uring_enter() submits the batch and waits for all of it. */
	t0 = ovc__now_ns();
	while (submitted < n) {
		ret = io_uring_submit_and_wait(&c->ring, n - done);
		if (ret > 0) {
			submitted += (unsigned int)ret;
			tries = 0;
			continue;
		}
		if ((ret && ret != -EAGAIN && ret != -EBUSY && ret != -EINTR) ||
		    ++tries > SUBMIT_TRIES)
			break;
		/* Resources short: let what is in flight finish, then try again. */
		if (submitted > done)
			done += ring_reap(c, t0);
		else
			sched_yield();
	}

	while (done < submitted) {
		struct io_uring_cqe *cqe;
		int r = io_uring_wait_cqe(&c->ring, &cqe);

		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -ETIME)
			/* Our CQ holds 2 * queue_depth: it cannot overflow. */
			OVC_BUG("swapfile: io_uring_wait_cqe: %s with I/O in flight",
				strerror(-r));
		done += ring_reap(c, t0);
	}

	if (submitted < n) {
		/*
		 * The kernel refused the rest, which still sit in the SQ: a
		 * new ring drops them, so no later submission sends stale
		 * requests. Without a ring the context does synchronous I/O.
		 */
		ovc__err(s->log, "swapfile: io_uring submission failed: %s; %u of %u I/Os not sent",
			 ret < 0 ? strerror(-ret) : "nothing submitted", n - submitted, n);
		for (i = 0; i < n; i++) {
			if (c->reqs[i].res == RES_UNSUBMITTED)
				c->reqs[i].res = ret < 0 ? ret : -EIO;
		}
		ring_fini(c);
		if (ring_init(c))
			ovc__err(s->log, "swapfile: io_uring ring lost; this context falls back to pread/pwrite");
	}
}

/*
 * Run requests c->reqs[0..n): fill each one's res and ns.
 * Called with c->lock held.
 */
static void ctx_run(struct swap_ctx *c, unsigned int n)
{
	struct ovc_swapfile *s = c->s;
	unsigned int i;

	if (!n)
		return;
	for (i = 0; i < n; i++)
		c->reqs[i].res = RES_UNSUBMITTED;
	if (s->io == OVC_SWAPFILE_IO_URING && c->has_ring) {
		ring_run(c, n);
		return;
	}
	/* One I/O is done in the caller: a pool hop would only add two wakeups. */
	if (s->io == OVC_SWAPFILE_IO_THREADS && n > 1) {
		pool_run(c, n);
		return;
	}
	for (i = 0; i < n; i++)
		sync_io(s, &c->reqs[i]);
}

/* Take a free I/O context; see struct swap_ctx. */
static struct swap_ctx *ctx_get(struct ovc_swapfile *s)
{
	uint64_t self = (uint64_t)(uintptr_t)pthread_self();
	unsigned int i, start;

	start = (unsigned int)(((self >> 12) * 0x9E3779B97F4A7C15ULL) >> 40) % s->nctx;
	for (i = 0; i < s->nctx; i++) {
		struct swap_ctx *c = &s->ctx[(start + i) % s->nctx];

		if (!pthread_mutex_trylock(&c->lock))
			return c;
	}
	pthread_mutex_lock(&s->ctx[start].lock);
	return &s->ctx[start];
}

static void ctx_put(struct swap_ctx *c)
{
	pthread_mutex_unlock(&c->lock);
}

static void *bounce_of(struct swap_ctx *c, unsigned int k)
{
	return c->bounce + (size_t)k * SLOT_SIZE;
}

/* ------------------------------------------------------------------------ */
/* Writes */

/* Prepare c->reqs[k] to write @src into @slot. Called with c->lock held. */
static void prep_write(struct ovc_swapfile *s, struct swap_ctx *c, unsigned int k,
		       const void *src, uint64_t slot)
{
	struct swap_req *r = &c->reqs[k];
	uint8_t *bounce = bounce_of(c, k);
	bool corrupt = take_fault(s, OVC_SWAPFILE_CORRUPT);

	r->slot = slot;
	r->write = true;
	r->inject = -1;
	s->sums[slot] = XXH3_64bits(src, SLOT_SIZE);
	if (s->encrypt) {
		encrypt_page(s, slot, src, bounce);
		r->buf = bounce;
	} else if (corrupt || (s->direct && !aligned(src))) {
		memcpy(bounce, src, SLOT_SIZE);
		r->buf = bounce;
	} else {
		/* Zero copy: O_DIRECT straight from the (page-aligned) guest page. */
		r->buf = (void *)src;
	}
	if (corrupt)	/* after the checksum and the tag: silent disk corruption */
		bounce[SLOT_SIZE / 2] ^= 0x5a;
	r->fixed = r->buf == bounce && c->fixed_bufs;
	if (take_fault(s, OVC_SWAPFILE_WRITE_EIO))
		r->inject = OVC_SWAPFILE_WRITE_EIO;
	else if (take_fault(s, OVC_SWAPFILE_WRITE_SHORT))
		r->inject = OVC_SWAPFILE_WRITE_SHORT;
}

/* Write up to queue_depth pages with one submission; return the first error. */
static int write_chunk(struct ovc_swapfile *s, const void *const *pages, unsigned int n,
		       uint64_t *handles, int *errs)
{
	struct swap_ctx *c = ctx_get(s);
	unsigned int i, k, want = 0, got, used = 0, nreq = 0, nospc = 0, nerr = 0;
	int first = 0, last_err = 0;

	for (i = 0; i < n; i++) {
		handles[i] = 0;
		errs[i] = take_fault(s, OVC_SWAPFILE_WRITE_ENOSPC) ? -ENOSPC : 0;
		if (!errs[i])
			want++;
	}
	got = slots_alloc(s, c->slots, want);
	for (i = 0; i < n; i++) {
		if (!errs[i] && used == got)
			errs[i] = -ENOSPC;
		if (errs[i]) {
			nospc++;
			continue;
		}
		prep_write(s, c, nreq, pages[i], c->slots[used++]);
		c->reqs[nreq++].idx = i;
	}
	if (nospc)
		count_add(s->write_enospc, nospc);

	ctx_run(c, nreq);

	for (k = 0; k < nreq; k++) {
		struct swap_req *r = &c->reqs[k];
		int res = r->res;

		if (r->inject == OVC_SWAPFILE_WRITE_EIO && res == SLOT_SIZE)
			res = -EIO;
		else if (r->inject == OVC_SWAPFILE_WRITE_SHORT && res == SLOT_SIZE)
			res = SLOT_SIZE / 2;
		count_add(s->write_ns, r->ns);
		count_add(s->write_hist[ovc__hist_bucket(r->ns, OVC_SWAPFILE_HIST_BUCKETS)], 1);
		if (res == SLOT_SIZE) {
			handles[r->idx] = r->slot + 1;
			continue;
		}
		/* Short (the file is preallocated, so only a failing device) or failed. */
		errs[r->idx] = res < 0 ? res : -EIO;
		last_err = errs[r->idx];
		nerr++;
		slot_free(s, r->slot);
	}
	ctx_put(c);

	if (nreq - nerr) {
		count_add(s->writes, nreq - nerr);
		count_add(s->bytes_written, (uint64_t)(nreq - nerr) * SLOT_SIZE);
	}
	if (nerr) {
		count_add(s->io_errors, nerr);
		ovc__err(s->log, "swapfile: %u of %u page writes failed (%s); their pages stay where they were",
			 nerr, nreq, strerror(-last_err));
	}
	for (i = 0; i < n && !first; i++)
		first = errs[i];
	return first;
}

int ovc__swapfile_write(struct ovc_swapfile *s, const void *const *pages, unsigned int n,
			uint64_t *handles, int *errs)
{
	unsigned int off, i;
	int ret, first = 0;

	if (!s || (n && (!pages || !handles || !errs)))
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (!pages[i])
			return -EINVAL;
	}
	if (!n)
		return 0;
	count_add(s->write_batches, 1);
	for (off = 0; off < n; off += s->qd) {
		unsigned int chunk = n - off < s->qd ? n - off : s->qd;

		ret = write_chunk(s, pages + off, chunk, handles + off, errs + off);
		if (ret && !first)
			first = ret;
	}
	return first;
}

void ovc__swapfile_drop(struct ovc_swapfile *s, uint64_t handle)
{
	if (!s || handle == 0 || handle > s->nslots)
		OVC_BUG("swapfile: bad handle %llu", (unsigned long long)handle);
	slot_free(s, handle - 1);
}

/* ------------------------------------------------------------------------ */
/* Reads */

/* Check (and decrypt) what c->reqs[k] read into @dst. 0 or -EIO. */
static int finish_read(struct ovc_swapfile *s, struct swap_req *r, void *dst)
{
	int res = r->res;

	if (r->inject == OVC_SWAPFILE_READ_EIO && res == SLOT_SIZE)
		res = -EIO;
	count_add(s->read_ns, r->ns);
	count_add(s->read_hist[ovc__hist_bucket(r->ns, OVC_SWAPFILE_HIST_BUCKETS)], 1);
	if (res != SLOT_SIZE) {
		count_add(s->io_errors, 1);
		ovc__err(s->log, "swapfile: reading slot %llu: %s", (unsigned long long)r->slot,
			 res < 0 ? strerror(-res) : "short read");
		return -EIO;
	}
	if (s->encrypt) {
		if (decrypt_page(s, r->slot, r->buf, dst)) {
			count_add(s->checksum_errors, 1);
			ovc__err(s->log, "swapfile: slot %llu fails authentication: corrupt or tampered with",
				 (unsigned long long)r->slot);
			return -EIO;
		}
	} else if (r->buf != dst) {
		memcpy(dst, r->buf, SLOT_SIZE);
	}
	if (XXH3_64bits(dst, SLOT_SIZE) != s->sums[r->slot]) {
		count_add(s->checksum_errors, 1);
		ovc__err(s->log, "swapfile: slot %llu fails its checksum: corrupt",
			 (unsigned long long)r->slot);
		return -EIO;
	}
	count_add(s->reads, 1);
	count_add(s->bytes_read, SLOT_SIZE);
	return 0;
}

static int read_chunk(struct ovc_swapfile *s, const uint64_t *handles, void *const *dst,
		      unsigned int n, int *errs)
{
	struct swap_ctx *c = ctx_get(s);
	unsigned int i, k, nreq = 0;
	int first = 0;

	for (i = 0; i < n; i++) {
		int64_t slot = handle_slot(s, handles[i]);
		struct swap_req *r = &c->reqs[nreq];

		errs[i] = slot < 0 ? (int)slot : 0;
		if (errs[i]) {
			ovc__err(s->log, "swapfile: read of %s handle %llu",
				 slot == -ENOENT ? "free" : "bad", (unsigned long long)handles[i]);
			continue;
		}
		r->slot = (uint64_t)slot;
		r->write = false;
		r->idx = i;
		r->inject = take_fault(s, OVC_SWAPFILE_READ_EIO) ? OVC_SWAPFILE_READ_EIO : -1;
		if (s->encrypt || (s->direct && !aligned(dst[i])))
			r->buf = bounce_of(c, nreq);
		else
			r->buf = dst[i];
		r->fixed = r->buf != dst[i] && c->fixed_bufs;
		nreq++;
	}

	ctx_run(c, nreq);

	for (k = 0; k < nreq; k++) {
		struct swap_req *r = &c->reqs[k];

		errs[r->idx] = finish_read(s, r, dst[r->idx]);
	}
	ctx_put(c);
	for (i = 0; i < n && !first; i++)
		first = errs[i];
	return first;
}

int ovc__swapfile_read(struct ovc_swapfile *s, const uint64_t *handles, void *const *dst,
		       unsigned int n, int *errs)
{
	unsigned int off, i;
	int ret, first = 0;

	if (!s || (n && (!handles || !dst || !errs)))
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (!dst[i])
			return -EINVAL;
	}
	if (!n)
		return 0;
	count_add(s->read_batches, 1);
	for (off = 0; off < n; off += s->qd) {
		unsigned int chunk = n - off < s->qd ? n - off : s->qd;

		ret = read_chunk(s, handles + off, dst + off, chunk, errs + off);
		if (ret && !first)
			first = ret;
	}
	return first;
}

static int swap_load(void *opaque, struct ovc_ram *ram, uint64_t gfn, uint64_t handle,
		     void *dst)
{
	struct ovc_swapfile *s = opaque;
	int err;

	return read_chunk(s, &handle, &dst, 1, &err);
}

static void swap_release(void *opaque, struct ovc_ram *ram, uint64_t gfn, uint64_t handle)
{
	ovc__swapfile_drop(opaque, handle);
}

const struct ovc_store_ops ovc__swapfile_ops = {
	.load = swap_load,
	.release = swap_release,
};

/* ------------------------------------------------------------------------ */
/* The file */

/* An unlinked file in @dir, mode 0600. fd or -errno. */
static int open_file(struct ovc_swapfile *s, const char *dir)
{
	char path[PATH_MAX];
	int fd, ret;

	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	ret = -errno;
	/* Filesystems without O_TMPFILE say EOPNOTSUPP; old kernels EISDIR. */
	if (ret != -EOPNOTSUPP && ret != -EISDIR && ret != -EINVAL) {
		ovc__err(s->log, "swapfile: cannot create a file in %s: %s", dir, strerror(-ret));
		return ret;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/ovc-swap-XXXXXX", dir) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		ovc__err(s->log, "swapfile: cannot create a file in %s: %s", dir, strerror(-ret));
		return ret;
	}
	/* Nameless from here on: nothing to clean up after a crash. */
	if (unlink(path) < 0 || fchmod(fd, 0600) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

static int preallocate(struct ovc_swapfile *s, uint64_t bytes)
{
	struct statvfs vfs;
	int ret;

	/*
	 * Refuse up front: a doomed fallocate() would first fill the disk.
	 * Filesystems without a size (ramfs) report no blocks at all.
	 */
	if (!fstatvfs(s->fd, &vfs) && vfs.f_frsize && vfs.f_blocks &&
	    (uint64_t)vfs.f_bavail < bytes / vfs.f_frsize) {
		ovc__err(s->log, "swapfile: %llu bytes wanted, %llu free on the filesystem",
			 (unsigned long long)bytes,
			 (unsigned long long)vfs.f_bavail * vfs.f_frsize);
		return -ENOSPC;
	}
	if (fallocate(s->fd, 0, 0, (off_t)bytes) == 0)
		return 0;
	ret = -errno;
	if (ret == -EOPNOTSUPP)		/* glibc writes the blocks instead */
		ret = -posix_fallocate(s->fd, 0, (off_t)bytes);
	if (ret)
		ovc__err(s->log, "swapfile: cannot preallocate %llu bytes: %s",
			 (unsigned long long)bytes, strerror(-ret));
	return ret;
}

/*
 * Switch to O_DIRECT and prove it with one aligned write and read of slot 0
 * (free, so harmless): some filesystems accept the flag and refuse the I/O.
 * Falls back to buffered I/O with a warning.
 */
static void try_direct(struct ovc_swapfile *s)
{
	int flags = fcntl(s->fd, F_GETFL);
	void *buf = NULL;
	bool ok = false;

	if (flags >= 0 && fcntl(s->fd, F_SETFL, flags | O_DIRECT) == 0 &&
	    !posix_memalign(&buf, SLOT_SIZE, SLOT_SIZE)) {
		memset(buf, 0, SLOT_SIZE);
		ok = pwrite(s->fd, buf, SLOT_SIZE, 0) == SLOT_SIZE &&
		     pread(s->fd, buf, SLOT_SIZE, 0) == SLOT_SIZE;
	}
	free(buf);
	if (ok) {
		s->direct = true;
		return;
	}
	ovc__warn(s->log, "swapfile: the filesystem refuses O_DIRECT (%s); using buffered I/O",
		  strerror(errno));
	if (flags >= 0)
		fcntl(s->fd, F_SETFL, flags & ~O_DIRECT);
	s->direct = false;
}

static int slots_setup(struct ovc_swapfile *s, uint64_t bytes)
{
	uint64_t tail;

	s->nslots = bytes / SLOT_SIZE;
	s->nwords = (s->nslots + 63) / 64;
	s->bitmap_bytes = s->nwords * sizeof(uint64_t);
	s->bitmap = map_sparse(s->bitmap_bytes);
	if (!s->bitmap)
		return -ENOMEM;
	/* Bits past the end are in use for good, so the allocator never sees them. */
	tail = s->nslots % 64;
	if (tail)
		atomic_store(&s->bitmap[s->nwords - 1], ~0ULL << tail);
	s->sums_bytes = s->nslots * sizeof(uint64_t);
	s->sums = map_sparse(s->sums_bytes);
	if (!s->sums)
		return -ENOMEM;
	if (s->encrypt) {
		s->crypt_bytes = s->nslots * sizeof(struct slot_crypt);
		s->crypt = map_sparse(s->crypt_bytes);
		if (!s->crypt)
			return -ENOMEM;
	}
	return 0;
}

static void ctx_fini(struct swap_ctx *c)
{
	ring_fini(c);
	if (c->bounce)
		munmap(c->bounce, (size_t)c->s->qd * SLOT_SIZE);
	free(c->reqs);
	free(c->slots);
	pthread_cond_destroy(&c->done_cond);
	pthread_mutex_destroy(&c->done_lock);
	pthread_mutex_destroy(&c->lock);
}

static int ctx_init(struct ovc_swapfile *s, struct swap_ctx *c)
{
	c->s = s;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->done_lock, NULL);
	pthread_cond_init(&c->done_cond, NULL);
	c->bounce = mmap(NULL, (size_t)s->qd * SLOT_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c->bounce == MAP_FAILED) {
		c->bounce = NULL;
		return -ENOMEM;
	}
	c->reqs = calloc(s->qd, sizeof(*c->reqs));
	c->slots = calloc(s->qd, sizeof(*c->slots));
	if (!c->reqs || !c->slots)
		return -ENOMEM;
	return 0;
}

static void pool_stop(struct ovc_swapfile *s)
{
	struct swap_pool *p = &s->pool;
	unsigned int i;

	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	p->nthreads = 0;
	free(p->threads);
	p->threads = NULL;
}

static int pool_start(struct ovc_swapfile *s, unsigned int nthreads)
{
	struct swap_pool *p = &s->pool;
	int ret;

	p->threads = calloc(nthreads, sizeof(*p->threads));
	if (!p->threads)
		return -ENOMEM;
	while (p->nthreads < nthreads) {
		ret = pthread_create(&p->threads[p->nthreads], NULL, pool_worker, s);
		if (ret) {
			ovc__err(s->log, "swapfile: cannot start I/O thread: %s", strerror(ret));
			return -ret;
		}
		p->nthreads++;
	}
	return 0;
}

/* Set up the I/O contexts, choosing the backend for AUTO. */
static int io_setup(struct ovc_swapfile *s, const struct ovc_swapfile_config *cfg)
{
	unsigned int i;
	int ret;

	s->ctx = calloc(cfg->io_contexts, sizeof(*s->ctx));
	if (!s->ctx)
		return -ENOMEM;
	s->io = cfg->io == OVC_SWAPFILE_IO_THREADS ? OVC_SWAPFILE_IO_THREADS :
						      OVC_SWAPFILE_IO_URING;
	for (i = 0; i < cfg->io_contexts; i++) {
		ret = ctx_init(s, &s->ctx[i]);
		s->nctx = i + 1;	/* ctx_fini() undoes a half-done ctx_init() */
		if (ret)
			return ret;
		if (s->io != OVC_SWAPFILE_IO_URING)
			continue;
		ret = ring_init(&s->ctx[i]);
		if (ret && i == 0 && cfg->io == OVC_SWAPFILE_IO_AUTO) {
			/* Probed: no io_uring here (disabled, seccomp, old kernel, memlock). */
			ovc__info(s->log, "swapfile: io_uring unavailable (%s); using I/O threads",
				  strerror(-ret));
			s->io = OVC_SWAPFILE_IO_THREADS;
			continue;
		}
		if (ret) {
			ovc__err(s->log, "swapfile: io_uring ring %u: %s", i, strerror(-ret));
			return ret;
		}
	}
	pthread_mutex_init(&s->pool.lock, NULL);
	pthread_cond_init(&s->pool.cond, NULL);
	s->pool.tail = &s->pool.head;
	if (s->io == OVC_SWAPFILE_IO_THREADS)
		return pool_start(s, cfg->pool_threads);
	return 0;
}

static void io_teardown(struct ovc_swapfile *s)
{
	unsigned int i;

	if (!s->ctx)
		return;
	if (s->pool.tail) {
		pool_stop(s);
		pthread_cond_destroy(&s->pool.cond);
		pthread_mutex_destroy(&s->pool.lock);
	}
	for (i = 0; i < s->nctx; i++)
		ctx_fini(&s->ctx[i]);
	free(s->ctx);
	s->ctx = NULL;
}

/* ------------------------------------------------------------------------ */
/* Lifetime */

void ovc__swapfile_config_init(struct ovc_swapfile_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->direct = true;
	cfg->io = OVC_SWAPFILE_IO_AUTO;
	cfg->queue_depth = 64;
	cfg->io_contexts = 4;
	cfg->pool_threads = 4;
	cfg->cipher = OVC_SWAPFILE_CIPHER_AUTO;
}

static int check_config(const struct ovc_log *log, const struct ovc_swapfile_config *cfg)
{
	if (!cfg || !cfg->dir || !cfg->dir[0]) {
		ovc__err(log, "swapfile: no directory given");
		return -EINVAL;
	}
	if (!cfg->bytes || cfg->bytes % SLOT_SIZE ||
	    cfg->bytes / SLOT_SIZE > OVC_PTE_PAYLOAD_MAX || cfg->bytes > (uint64_t)INT64_MAX) {
		ovc__err(log, "swapfile: size %llu is not a non-zero multiple of %lu bytes",
			 (unsigned long long)cfg->bytes, OVC_PAGE_SIZE);
		return -EINVAL;
	}
	if (!cfg->queue_depth || cfg->queue_depth > OVC_SWAPFILE_QUEUE_DEPTH_MAX ||
	    !cfg->io_contexts || cfg->io_contexts > OVC_SWAPFILE_CONTEXTS_MAX ||
	    !cfg->pool_threads || cfg->pool_threads > OVC_SWAPFILE_THREADS_MAX) {
		ovc__err(log, "swapfile: queue depth 1-%u, I/O contexts 1-%u, threads 1-%u",
			 OVC_SWAPFILE_QUEUE_DEPTH_MAX, OVC_SWAPFILE_CONTEXTS_MAX,
			 OVC_SWAPFILE_THREADS_MAX);
		return -EINVAL;
	}
	if ((unsigned int)cfg->io > OVC_SWAPFILE_IO_THREADS ||
	    (unsigned int)cfg->cipher > OVC_SWAPFILE_CIPHER_AES256GCM) {
		ovc__err(log, "swapfile: unknown I/O backend or cipher");
		return -EINVAL;
	}
	return 0;
}

struct ovc_swapfile *ovc__swapfile_new(const struct ovc_log *log,
				       const struct ovc_swapfile_config *cfg)
{
	struct ovc_swapfile *s;
	int ret;

	ret = check_config(log, cfg);
	if (ret) {
		errno = -ret;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->log = log;
	s->qd = cfg->queue_depth;
	s->encrypt = cfg->encrypt;
	pthread_mutex_init(&s->slot_lock, NULL);

	ret = open_file(s, cfg->dir);
	if (ret < 0)
		goto err_free;
	s->fd = ret;
	ret = preallocate(s, cfg->bytes);
	if (ret)
		goto err_close;
	if (cfg->direct)
		try_direct(s);
	ret = slots_setup(s, cfg->bytes);
	if (ret)
		goto err_unmap;
	if (s->encrypt) {
		ret = key_setup(s, cfg->cipher);
		if (ret)
			goto err_unmap;
	}
	ret = io_setup(s, cfg);
	if (ret)
		goto err_io;
	ovc__dbg(log, "swapfile: %llu slots in %s, %s I/O%s, %s",
		 (unsigned long long)s->nslots, cfg->dir, ovc__swapfile_io_name(s->io),
		 s->direct ? " (direct)" : "", ovc__swapfile_cipher_name(s->cipher));
	return s;

err_io:
	io_teardown(s);
	sodium_free(s->key_mem);
err_unmap:
	if (s->crypt)
		munmap(s->crypt, s->crypt_bytes);
	if (s->sums)
		munmap(s->sums, s->sums_bytes);
	if (s->bitmap)
		munmap((void *)s->bitmap, s->bitmap_bytes);
err_close:
	close(s->fd);
err_free:
	pthread_mutex_destroy(&s->slot_lock);
	free(s);
	errno = -ret;
	return NULL;
}

void ovc__swapfile_destroy(struct ovc_swapfile *s)
{
	if (!s)
		return;
	io_teardown(s);
	sodium_free(s->key_mem);	/* wipes the key */
	if (s->crypt)
		munmap(s->crypt, s->crypt_bytes);
	munmap(s->sums, s->sums_bytes);
	munmap((void *)s->bitmap, s->bitmap_bytes);
	close(s->fd);			/* nameless: its blocks go with it */
	pthread_mutex_destroy(&s->slot_lock);
	free(s);
}

/* ------------------------------------------------------------------------ */
/* Stats, names, test hooks */

void ovc__swapfile_get_stats(struct ovc_swapfile *s, struct ovc_swapfile_stats *st)
{
	unsigned int i;

	memset(st, 0, sizeof(*st));
	if (!s)
		return;
#define get(f) atomic_load_explicit(&s->f, memory_order_relaxed)
	st->slots_total = s->nslots;
	st->slots_used = get(used);
	st->writes = get(writes);
	st->reads = get(reads);
	st->bytes_written = get(bytes_written);
	st->bytes_read = get(bytes_read);
	st->write_batches = get(write_batches);
	st->read_batches = get(read_batches);
	st->write_enospc = get(write_enospc);
	st->io_errors = get(io_errors);
	st->checksum_errors = get(checksum_errors);
	st->write_ns = get(write_ns);
	st->read_ns = get(read_ns);
	for (i = 0; i < OVC_SWAPFILE_HIST_BUCKETS; i++) {
		st->write_hist[i] = get(write_hist[i]);
		st->read_hist[i] = get(read_hist[i]);
	}
#undef get
	st->io = s->io;
	st->direct = s->direct;
	st->encrypt = s->encrypt;
	st->cipher = s->cipher;
}

uint64_t ovc__swapfile_hist_quantile_ns(const uint64_t *hist, double q)
{
	return ovc__hist_quantile_ns(hist, OVC_SWAPFILE_HIST_BUCKETS, q);
}

const char *ovc__swapfile_io_name(enum ovc_swapfile_io io)
{
	switch (io) {
	case OVC_SWAPFILE_IO_AUTO:
		return "auto";
	case OVC_SWAPFILE_IO_URING:
		return "uring";
	case OVC_SWAPFILE_IO_THREADS:
		return "threads";
	}
	return "invalid";
}

const char *ovc__swapfile_cipher_name(enum ovc_swapfile_cipher c)
{
	switch (c) {
	case OVC_SWAPFILE_CIPHER_AUTO:
		return "none";
	case OVC_SWAPFILE_CIPHER_XCHACHA20:
		return "xchacha20poly1305";
	case OVC_SWAPFILE_CIPHER_AES256GCM:
		return "aes256gcm";
	}
	return "invalid";
}

void ovc__swapfile_inject(struct ovc_swapfile *s, enum ovc_swapfile_fault fault,
			  unsigned int count)
{
	if (!s || (unsigned int)fault >= OVC_SWAPFILE_NR_FAULTS)
		return;
	atomic_store_explicit(&s->inject[fault], count, memory_order_relaxed);
}

int ovc__swapfile_corrupt_slot(struct ovc_swapfile *s, uint64_t handle)
{
	off_t off;
	void *buf;
	int ret = 0;

	if (!s || handle_slot(s, handle) < 0)
		return -EINVAL;
	off = (off_t)((handle - 1) * SLOT_SIZE);
	if (posix_memalign(&buf, SLOT_SIZE, SLOT_SIZE))
		return -ENOMEM;
	if (pread(s->fd, buf, SLOT_SIZE, off) != SLOT_SIZE) {
		ret = errno ? -errno : -EIO;
		goto out;
	}
	((uint8_t *)buf)[100] ^= 0xff;
	((uint8_t *)buf)[SLOT_SIZE - 1] ^= 0x01;
	if (pwrite(s->fd, buf, SLOT_SIZE, off) != SLOT_SIZE)
		ret = errno ? -errno : -EIO;
out:
	free(buf);
	return ret;
}
