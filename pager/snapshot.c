// SPDX-License-Identifier: MIT
/* pager/snapshot.c: save a VM's RAM to an image file; restore it lazily (image store and streaming thread). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include <ovc/snapshot.h>
#include "host/host-internal.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the image format is little-endian; this build writes host order"
#endif

/*
 * The image (version 1), all integers little-endian:
 *
 *   [0, 4096)            header: struct img_header, zero-padded
 *   [table_off, ...)     one struct img_entry per guest page, ranges in order
 *   [data_off, ...)      ndata pages of contents, 4 KiB each, in page order
 *   [app_off, +app_len)  the application blob
 *
 * An entry's word holds the kind in its low 8 bits (IMG_ZERO, IMG_DATA,
 * IMG_BALLOONED) and, for IMG_DATA, the slot above them; slots are given in
 * page order, so slot k is the k-th data page. Its sum is the xxh3 of the
 * page's contents. The header carries the xxh3 of the table, of the blob, and
 * of its own bytes before header_sum.
 */
#define IMG_MAGIC "OVCIMAGE"
#define IMG_VERSION 1
#define IMG_HEADER_BYTES 4096
#define IMG_ZERO 0
#define IMG_DATA 1
#define IMG_BALLOONED 2
#define RUN OVC_XACT_MAX_PAGES	/* pages per save transition */
#define STREAM_RUN 64		/* pages per streaming transition: faults wait at most this */
#define PF_WINDOW 32		/* pages streamed right after a first-touch fault */
#define TABLE_CHUNK 4096	/* entries read at a time while verifying */

struct img_region {
	uint64_t gpa;
	uint64_t size;
};

struct img_header {
	char magic[8];
	uint32_t version;
	uint32_t page_size;
	uint32_t nregions;
	uint32_t flags;
	uint64_t npages;
	uint64_t ndata;
	uint64_t table_off;
	uint64_t data_off;
	uint64_t app_off;
	uint64_t app_len;
	uint64_t table_sum;
	uint64_t app_sum;
	struct img_region regions[OVC_VM_RAM_RANGES_MAX];
	uint64_t header_sum;		/* xxh3 of the bytes above */
};

struct img_entry {
	uint64_t word;
	uint64_t sum;
};

_Static_assert(sizeof(struct img_header) <= IMG_HEADER_BYTES, "header fits its page");
_Static_assert(sizeof(struct img_entry) == 16, "entries are packed");

/**
 * struct ovc_snap - a lazy restore: the image store and its streaming thread
 *
 * Locks: @lock protects @stop, @hint*, @done; the counters are ATOMIC; @fd
 * and @sums are immutable while pages are IMAGE and freed by the streaming
 * thread only once none is left (loads happen only on IMAGE pages).
 */
struct ovc_snap {
	struct ovc_ram *ram;
	const struct ovc_log *log;
	int fd;
	uint64_t data_off;
	uint64_t npages, ndata;
	uint64_t *sums;			/* per slot */
	uint8_t *bad;			/* per slot: found corrupt by the streamer (its own) */
	uint64_t t0;

	pthread_t thread;
	bool running;			/* the thread was started (joined at stop) */
	pthread_mutex_t lock;		/* protects the fields below */
	pthread_cond_t cond;
	bool stop;
	bool done;			/* the thread has ended */
	bool has_hint;
	uint64_t hint;			/* last first-touch fault */

	_Atomic int64_t remaining;	/* ATOMIC: pages still IMAGE */
	_Atomic uint64_t released, streamed, prefetched, csum_fail, resident_ns;	/* ATOMIC */
	_Atomic bool open;		/* ATOMIC */

	struct ovc_xact x;		/* the streaming thread's */
	uint64_t *buf;			/* STREAM_RUN pages */
};

static uint64_t align_page(uint64_t v)
{
	return (v + OVC_PAGE_SIZE - 1) & ~((uint64_t)OVC_PAGE_SIZE - 1);
}

/*
 * The whole of @len at @off, read or written: 0, -EIO at end of file (an
 * image shorter than it says) or when nothing more can be written, or -errno.
 */
static int io_all(int fd, void *buf, size_t len, uint64_t off, bool write)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = write ? pwrite(fd, p, len, (off_t)off) : pread(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
	return io_all(fd, (void *)buf, len, off, true);
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	return io_all(fd, buf, len, off, false);
}

/* ------------------------------------------------------------------------ */
/* Save */

struct saver {
	struct ovc_ram *ram;
	const struct ovc_log *log;
	int fd;
	uint64_t data_off, table_off;
	uint64_t idx, slot;
	XXH3_state_t *ts;
	struct ovc_xact *x;
	uint64_t *buf;			/* RUN pages */
	struct img_entry *ent;		/* RUN entries */
	struct ovc_save_stats st;
};

/* Whether every page of the run is ZERO or BALLOONED; fills their entries if so. */
static bool all_holes(struct saver *s, uint64_t gfn, unsigned int n)
{
	struct ovc_region *rg = ovc__ram_region_gfn(s->ram, gfn);
	uint64_t zero = 0, balloon = 0;
	unsigned int i;

	for (i = 0; i < n; i++) {
		uint64_t e = atomic_load_explicit(&rg->pt[gfn - rg->gfn0 + i], memory_order_acquire);

		if (e & (OVC_PTE_BUSY | OVC_PTE_POISONED))
			return false;
		if (ovc__pte_state(e) == OVC_PAGE_ZERO) {
			s->ent[i].word = IMG_ZERO;
			zero++;
		} else if (ovc__pte_state(e) == OVC_PAGE_BALLOONED) {
			s->ent[i].word = IMG_BALLOONED;
			balloon++;
		} else {
			return false;
		}
		s->ent[i].sum = 0;
	}
	s->st.zero_pages += zero;
	s->st.ballooned_pages += balloon;
	return true;
}

/* Save one run of pages taken with a transition; the pages are left as they were. */
static int save_run(struct saver *s, uint64_t gfn, unsigned int n)
{
	struct ovc_xact *x = s->x;
	unsigned int i, k = 0;
	uint64_t slot0 = s->slot;
	int ret;

	/*
	 * A run of holes needs no transition: with the writers stopped (the
	 * save's contract) only ovc moves pages, and no move gives a hole
	 * contents. A run that has anything else is taken whole.
	 */
	if (all_holes(s, gfn, n))
		goto write_table;
	ret = ovc__xact_begin(x, s->ram, gfn, n, OVC_XACT_WAIT);
	if (ret) {
		ovc__err(s->log, "save: cannot take gfn 0x%llx+%u: %s",
			 (unsigned long long)gfn, n, strerror(-ret));
		return ret;
	}
	for (i = 0; i < n; i++) {
		uint64_t e = ovc__xact_old(x, i);
		uint64_t *dst = s->buf + (size_t)k * (OVC_PAGE_SIZE / 8);
		unsigned int st = ovc__pte_state(e);

		if (e & OVC_PTE_POISONED) {
			ovc__err(s->log, "save: gfn 0x%llx is lost (poisoned); no image written",
				 (unsigned long long)(gfn + i));
			ret = -EIO;
			break;
		}
		s->ent[i].word = IMG_ZERO;
		s->ent[i].sum = 0;
		if (st == OVC_PAGE_ZERO) {
			s->st.zero_pages++;
			continue;
		}
		if (st == OVC_PAGE_BALLOONED) {
			s->ent[i].word = IMG_BALLOONED;
			s->st.ballooned_pages++;
			continue;
		}
		if (st == OVC_PAGE_RESIDENT) {
			/* Write-protected by the transition: stable. */
			memcpy(dst, ovc__xact_hva(x, i), OVC_PAGE_SIZE);
		} else {
			ret = ovc__ram_store_peek(s->ram, gfn + i, e, dst);
			if (ret) {
				ovc__err(s->log, "save: contents of gfn 0x%llx (%s) cannot be read: %s; no image written",
					 (unsigned long long)(gfn + i), ovc_page_state_name((int)st),
					 strerror(-ret));
				ret = -EIO;
				break;
			}
		}
		if (ovc__page_is_zero(dst)) {
			s->st.zero_pages++;
			continue;
		}
		s->ent[i].word = IMG_DATA | (s->slot << 8);
		s->ent[i].sum = XXH3_64bits(dst, OVC_PAGE_SIZE);
		s->slot++;
		k++;
	}
	ovc__xact_abort(x);
	if (ret)
		return ret;
	if (k) {
		ret = pwrite_all(s->fd, s->buf, (size_t)k * OVC_PAGE_SIZE,
				 s->data_off + slot0 * OVC_PAGE_SIZE);
		if (ret)
			return ret;
	}
write_table:
	ret = pwrite_all(s->fd, s->ent, (size_t)n * sizeof(*s->ent),
			 s->table_off + s->idx * sizeof(*s->ent));
	if (ret)
		return ret;
	XXH3_64bits_update(s->ts, s->ent, (size_t)n * sizeof(*s->ent));
	s->idx += n;
	s->st.data_pages += k;
	return 0;
}

static int save_ram(struct saver *s, struct img_header *h, const void *app, size_t app_len)
{
	unsigned int r, nr = atomic_load_explicit(&s->ram->nregions, memory_order_acquire);
	uint64_t off;
	int ret;

	memset(h, 0, sizeof(*h));
	memcpy(h->magic, IMG_MAGIC, sizeof(h->magic));
	h->version = IMG_VERSION;
	h->page_size = OVC_PAGE_SIZE;
	h->nregions = nr;
	for (r = 0; r < nr; r++) {
		h->regions[r].gpa = s->ram->regions[r].gpa;
		h->regions[r].size = s->ram->regions[r].size;
		h->npages += s->ram->regions[r].npages;
	}
	s->table_off = IMG_HEADER_BYTES;
	s->data_off = align_page(s->table_off + h->npages * sizeof(struct img_entry));
	for (r = 0; r < nr; r++) {
		const struct ovc_region *rg = &s->ram->regions[r];

		for (off = 0; off < rg->npages; off += RUN) {
			unsigned int n = rg->npages - off < RUN ? (unsigned int)(rg->npages - off) : RUN;

			ret = save_run(s, rg->gfn0 + off, n);
			if (ret)
				return ret;
		}
	}
	h->ndata = s->slot;
	h->table_off = s->table_off;
	h->data_off = s->data_off;
	h->table_sum = XXH3_64bits_digest(s->ts);
	h->app_off = s->data_off + h->ndata * OVC_PAGE_SIZE;
	h->app_len = app_len;
	h->app_sum = XXH3_64bits(app_len ? app : "", app_len);
	if (app_len) {
		ret = pwrite_all(s->fd, app, app_len, h->app_off);
		if (ret)
			return ret;
	}
	h->header_sum = XXH3_64bits(h, offsetof(struct img_header, header_sum));
	s->st.pages = h->npages;
	s->st.file_bytes = h->app_off + app_len;
	/* A file shorter than the table says would be refused: make it exact. */
	if (ftruncate(s->fd, (off_t)s->st.file_bytes) < 0)
		return -errno;
	return pwrite_all(s->fd, h, sizeof(*h), 0);
}

OVC_EXPORT int ovc_vm_save(struct ovc_vm *vm, const char *path, const void *app,
			   size_t app_len, struct ovc_save_stats *st)
{
	struct saver s = { 0 };
	struct img_header *h = NULL;
	char *tmp = NULL;
	uint64_t t0 = ovc__now_ns();
	int ret;

	if (!vm || !path || !*path || (app_len && !app) || app_len > OVC_SNAPSHOT_APP_MAX)
		return -EINVAL;
	s.ram = vm->ram;
	s.log = &vm->host->log;
	s.fd = -1;
	if (asprintf(&tmp, "%s.XXXXXX", path) < 0) {
		tmp = NULL;
		return -ENOMEM;
	}
	s.x = calloc(1, sizeof(*s.x));
	s.buf = aligned_alloc(OVC_PAGE_SIZE, (size_t)RUN * OVC_PAGE_SIZE);
	s.ent = calloc(RUN, sizeof(*s.ent));
	h = calloc(1, IMG_HEADER_BYTES);
	s.ts = XXH3_createState();
	if (!s.x || !s.buf || !s.ent || !h || !s.ts) {
		ret = -ENOMEM;
		goto out;
	}
	XXH3_64bits_reset(s.ts);
	s.fd = mkostemp(tmp, O_CLOEXEC);
	if (s.fd < 0) {
		ret = -errno;
		ovc__err(s.log, "save: cannot create %s: %s", tmp, strerror(-ret));
		goto out;
	}
	ret = save_ram(&s, h, app, app_len);
	if (!ret && fsync(s.fd) < 0)
		ret = -errno;
	if (ret) {
		if (ret != -EIO)
			ovc__err(s.log, "save: writing %s: %s", tmp, strerror(-ret));
		goto err_unlink;
	}
	if (close(s.fd) < 0) {
		s.fd = -1;
		ret = -errno;
		goto err_unlink;
	}
	s.fd = -1;
	if (rename(tmp, path) < 0) {
		ret = -errno;
		ovc__err(s.log, "save: rename to %s: %s", path, strerror(-ret));
		goto err_unlink;
	}
	s.st.ns = ovc__now_ns() - t0;
	if (st)
		*st = s.st;
	goto out;

err_unlink:
	unlink(tmp);
out:
	if (s.fd >= 0)
		close(s.fd);
	XXH3_freeState(s.ts);
	free(h);
	free(s.ent);
	free(s.buf);
	free(s.x);
	free(tmp);
	return ret;
}

/* ------------------------------------------------------------------------ */
/* The image store: IMAGE pages, read on first touch */

static void snap_hint(struct ovc_snap *s, uint64_t gfn)
{
	pthread_mutex_lock(&s->lock);
	s->hint = gfn;
	s->has_hint = true;
	pthread_mutex_unlock(&s->lock);
}

/* Read and verify one stored page. 0, -EBADMSG on a checksum mismatch, or -errno. */
static int snap_read_page(struct ovc_snap *s, uint64_t gfn, uint64_t slot, void *dst)
{
	int ret;

	if (slot >= s->ndata)
		return -EINVAL;
	ret = pread_all(s->fd, dst, OVC_PAGE_SIZE, s->data_off + slot * OVC_PAGE_SIZE);
	if (ret) {
		ovc__err(s->log, "restore: reading gfn 0x%llx from the image: %s",
			 (unsigned long long)gfn, strerror(-ret));
		return ret;
	}
	if (XXH3_64bits(dst, OVC_PAGE_SIZE) != s->sums[slot]) {
		atomic_fetch_add_explicit(&s->csum_fail, 1, memory_order_relaxed);
		ovc__err(s->log, "restore: gfn 0x%llx: checksum mismatch in the image",
			 (unsigned long long)gfn);
		return -EBADMSG;
	}
	return 0;
}

/* Called from a fault-engine thread (or a save), the page BUSY. */
static int snap_load(void *opaque, struct ovc_ram *ram, uint64_t gfn, uint64_t slot, void *dst)
{
	struct ovc_snap *s = opaque;
	int ret;

	(void)ram;
	ret = snap_read_page(s, gfn, slot, dst);
	if (ret)
		return ret;
	snap_hint(s, gfn);
	return 0;
}

/* A save of a VM still restoring: no prefetch hint. */
static int snap_peek(void *opaque, struct ovc_ram *ram, uint64_t gfn, uint64_t slot, void *dst)
{
	(void)ram;
	return snap_read_page(opaque, gfn, slot, dst);
}

/* The page left IMAGE (loaded, streamed, or replaced); called with it BUSY. */
static void snap_release(void *opaque, struct ovc_ram *ram, uint64_t gfn, uint64_t slot)
{
	struct ovc_snap *s = opaque;

	(void)ram;
	(void)gfn;
	(void)slot;
	atomic_fetch_add_explicit(&s->released, 1, memory_order_relaxed);
	if (atomic_fetch_sub_explicit(&s->remaining, 1, memory_order_acq_rel) == 1)
		atomic_store_explicit(&s->resident_ns, ovc__now_ns() - s->t0 ? : 1,
				      memory_order_relaxed);
}

static const struct ovc_store_ops snap_ops = {
	.load = snap_load,
	.release = snap_release,
	.peek = snap_peek,
};

/* ------------------------------------------------------------------------ */
/* The streaming thread */

static bool is_image(struct ovc_ram *ram, uint64_t gfn)
{
	_Atomic uint64_t *pte = ovc__ram_pte(ram, gfn);
	uint64_t e;

	if (!pte)
		return false;
	e = atomic_load_explicit(pte, memory_order_relaxed);
	return ovc__pte_state(e) == OVC_PAGE_IMAGE && !(e & OVC_PTE_POISONED);
}

/*
 * Bring in the IMAGE pages of [gfn, gfn + n) (inside one range, n <=
 * STREAM_RUN) that are still there once taken; consecutive slots are read
 * with one pread. Return the pages made resident.
 */
static uint64_t stream_taken(struct ovc_snap *s, uint64_t gfn, unsigned int n)
{
	struct ovc_xact *x = &s->x;
	uint64_t slots[STREAM_RUN], made = 0;
	bool want[STREAM_RUN];
	unsigned int i, j;

	if (ovc__xact_begin(x, s->ram, gfn, n, OVC_XACT_WAIT))
		return 0;
	for (i = 0; i < n; i++) {
		uint64_t e = ovc__xact_old(x, i);

		slots[i] = ovc__pte_payload(e);
		want[i] = ovc__pte_state(e) == OVC_PAGE_IMAGE && !(e & OVC_PTE_POISONED) &&
			  slots[i] < s->ndata && !s->bad[slots[i]];
	}
	for (i = 0; i < n; i = j) {
		uint8_t *dst = (uint8_t *)s->buf + (size_t)i * OVC_PAGE_SIZE;
		int ret;

		if (!want[i]) {
			j = i + 1;
			continue;
		}
		for (j = i + 1; j < n && want[j] && slots[j] == slots[j - 1] + 1; j++)
			;
		ret = pread_all(s->fd, dst, (size_t)(j - i) * OVC_PAGE_SIZE,
				s->data_off + slots[i] * OVC_PAGE_SIZE);
		if (ret) {
			ovc__err(s->log, "restore: streaming gfn 0x%llx+%u: %s; left for the fault",
				 (unsigned long long)(gfn + i), j - i, strerror(-ret));
			while (i < j)
				want[i++] = false;
		}
	}
	for (i = 0; i < n; i++) {
		const void *p = (uint8_t *)s->buf + (size_t)i * OVC_PAGE_SIZE;

		if (!want[i])
			continue;
		if (XXH3_64bits(p, OVC_PAGE_SIZE) != s->sums[slots[i]]) {
			/* Lost: reported now, poisoned when touched; never zero. */
			atomic_fetch_add_explicit(&s->csum_fail, 1, memory_order_relaxed);
			s->bad[slots[i]] = 1;
			ovc__err(s->log, "restore: gfn 0x%llx: checksum mismatch in the image",
				 (unsigned long long)(gfn + i));
			if (s->ram->fatal_fn)
				s->ram->fatal_fn(s->ram->fatal_opaque, gfn + i, -EBADMSG);
			continue;
		}
		ovc__xact_set(x, i, OVC_PAGE_RESIDENT, 0, p);
		made++;
	}
	if (!made) {
		ovc__xact_abort(x);
		return 0;
	}
	ovc__xact_commit(x);
	for (i = 0; i < n; i++) {
		if (x->new_e[i] != x->old[i] && x->failed[i])
			made--;
	}
	return made;
}

/* Stream the IMAGE pages of [gfn, gfn + n), one range, in runs of IMAGE pages. */
static uint64_t stream_range(struct ovc_snap *s, uint64_t gfn, uint64_t n)
{
	uint64_t made = 0, i = 0;

	while (i < n) {
		uint64_t a, b;

		while (i < n && !is_image(s->ram, gfn + i))
			i++;
		a = i;
		while (i < n && i - a < STREAM_RUN && is_image(s->ram, gfn + i))
			i++;
		b = i;
		if (b > a)
			made += stream_taken(s, gfn + a, (unsigned int)(b - a));
	}
	return made;
}

/* Stream the pages after the last first-touch fault, if one came. */
static void stream_hint(struct ovc_snap *s)
{
	struct ovc_region *rg;
	uint64_t gfn, n, made;
	bool has;

	pthread_mutex_lock(&s->lock);
	has = s->has_hint;
	gfn = s->hint + 1;
	s->has_hint = false;
	pthread_mutex_unlock(&s->lock);
	if (!has)
		return;
	rg = ovc__ram_region_gfn(s->ram, gfn);
	if (!rg)
		return;
	n = rg->gfn0 + rg->npages - gfn;
	made = stream_range(s, gfn, n < PF_WINDOW ? n : PF_WINDOW);
	atomic_fetch_add_explicit(&s->streamed, made, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->prefetched, made, memory_order_relaxed);
}

static bool should_stop(struct ovc_snap *s)
{
	bool stop;

	pthread_mutex_lock(&s->lock);
	stop = s->stop;
	pthread_mutex_unlock(&s->lock);
	return stop;
}

static void *streamer(void *arg)
{
	struct ovc_snap *s = arg;
	unsigned int r, nr = atomic_load_explicit(&s->ram->nregions, memory_order_acquire);
	uint64_t off, made, pass_made;

	do {
		pass_made = 0;
		for (r = 0; r < nr; r++) {
			struct ovc_region *rg = &s->ram->regions[r];

			for (off = 0; off < rg->npages; off += STREAM_RUN) {
				uint64_t n = rg->npages - off < STREAM_RUN ? rg->npages - off :
					     STREAM_RUN;

				if (atomic_load_explicit(&s->remaining, memory_order_acquire) <= 0 ||
				    should_stop(s))
					goto out;
				stream_hint(s);
				made = stream_range(s, rg->gfn0 + off, n);
				atomic_fetch_add_explicit(&s->streamed, made, memory_order_relaxed);
				pass_made += made;
			}
		}
		/* Another pass only if this one did something: what is left is lost. */
	} while (pass_made && atomic_load_explicit(&s->remaining, memory_order_acquire) > 0);
out:
	if (atomic_load_explicit(&s->remaining, memory_order_acquire) <= 0 &&
	    atomic_load_explicit(&s->open, memory_order_relaxed)) {
		/* No IMAGE page is left, so no load can be running: close. */
		close(s->fd);
		s->fd = -1;
		atomic_store_explicit(&s->open, false, memory_order_relaxed);
	}
	pthread_mutex_lock(&s->lock);
	s->done = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

void ovc__snap_stop(struct ovc_snap *s)
{
	if (!s || !s->running)
		return;
	pthread_mutex_lock(&s->lock);
	s->stop = true;
	pthread_mutex_unlock(&s->lock);
	pthread_join(s->thread, NULL);
	s->running = false;
}

void ovc__snap_destroy(struct ovc_snap *s)
{
	if (!s)
		return;
	ovc__snap_stop(s);
	if (s->fd >= 0)
		close(s->fd);
	free(s->sums);
	free(s->bad);
	free(s->buf);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* ------------------------------------------------------------------------ */
/* Restore */

/* Check the header against the file and the VM's RAM; one log line says what is wrong. */
static int check_header(const struct ovc_log *log, struct ovc_ram *ram,
			const struct img_header *h, uint64_t file_bytes, const char *path)
{
	unsigned int r, nr = atomic_load_explicit(&ram->nregions, memory_order_acquire);
	uint64_t npages = 0;
	const char *why = NULL;

	if (memcmp(h->magic, IMG_MAGIC, sizeof(h->magic)))
		why = "not an ovc image";
	else if (h->header_sum != XXH3_64bits(h, offsetof(struct img_header, header_sum)))
		why = "header checksum mismatch";
	else if (h->version != IMG_VERSION)
		why = "unknown version";
	else if (h->page_size != OVC_PAGE_SIZE)
		why = "another page size";
	else if (h->nregions != nr || nr > OVC_VM_RAM_RANGES_MAX)
		why = "RAM layout differs (number of ranges)";
	if (!why) {
		for (r = 0; r < nr; r++) {
			if (h->regions[r].gpa != ram->regions[r].gpa ||
			    h->regions[r].size != ram->regions[r].size) {
				why = "RAM layout differs (a range's address or size)";
				break;
			}
			npages += ram->regions[r].npages;
		}
	}
	if (!why && (h->npages != npages || h->ndata > npages ||
		     h->table_off != IMG_HEADER_BYTES ||
		     h->data_off != align_page(h->table_off + npages * sizeof(struct img_entry)) ||
		     h->app_off != h->data_off + h->ndata * OVC_PAGE_SIZE ||
		     h->app_len > OVC_SNAPSHOT_APP_MAX))
		why = "inconsistent header";
	if (!why && file_bytes != h->app_off + h->app_len)
		why = file_bytes < h->app_off + h->app_len ? "truncated" : "trailing bytes";
	if (why) {
		ovc__err(log, "restore: %s: %s", path, why);
		return -EINVAL;
	}
	return 0;
}

/* Read and verify the table; fill kinds[] per page and sums[] per slot. */
static int read_table(struct ovc_snap *s, const struct img_header *h, uint8_t *kinds,
		      const char *path)
{
	struct img_entry *ent = malloc(TABLE_CHUNK * sizeof(*ent));
	XXH3_state_t *ts = XXH3_createState();
	uint64_t i, slot = 0;
	const char *why = NULL;
	int ret = 0;

	if (!ent || !ts) {
		ret = -ENOMEM;
		goto out;
	}
	XXH3_64bits_reset(ts);
	for (i = 0; i < h->npages && !why; ) {
		uint64_t n = h->npages - i < TABLE_CHUNK ? h->npages - i : TABLE_CHUNK, k;

		ret = pread_all(s->fd, ent, n * sizeof(*ent), h->table_off + i * sizeof(*ent));
		if (ret) {
			ovc__err(s->log, "restore: %s: reading the page table: %s", path,
				 strerror(-ret));
			goto out;
		}
		XXH3_64bits_update(ts, ent, n * sizeof(*ent));
		for (k = 0; k < n; k++, i++) {
			uint64_t kind = ent[k].word & 0xff;

			if (kind == IMG_DATA) {
				if (ent[k].word >> 8 != slot || slot >= h->ndata) {
					why = "page table damaged (slot)";
					break;
				}
				s->sums[slot++] = ent[k].sum;
			} else if ((kind != IMG_ZERO && kind != IMG_BALLOONED) || ent[k].word >> 8) {
				why = "page table damaged (kind)";
				break;
			}
			kinds[i] = (uint8_t)kind;
		}
	}
	if (!why && slot != h->ndata)
		why = "page table damaged (count)";
	if (!why && XXH3_64bits_digest(ts) != h->table_sum)
		why = "page table checksum mismatch";
	if (why) {
		ovc__err(s->log, "restore: %s: %s", path, why);
		ret = -EINVAL;
	}
out:
	XXH3_freeState(ts);
	free(ent);
	return ret;
}

/* Give every page its saved state; IMAGE pages counted in s->remaining first. */
static int convert(struct ovc_snap *s, const uint8_t *kinds)
{
	struct ovc_xact *x = &s->x;
	unsigned int r, nr = atomic_load_explicit(&s->ram->nregions, memory_order_acquire);
	uint64_t idx = 0, slot = 0, off;
	int ret = 0, rr;

	for (r = 0; r < nr; r++) {
		struct ovc_region *rg = &s->ram->regions[r];

		for (off = 0; off < rg->npages; off += RUN) {
			unsigned int n = rg->npages - off < RUN ? (unsigned int)(rg->npages - off) : RUN;
			unsigned int i, nimg = 0;

			rr = ovc__xact_begin(x, s->ram, rg->gfn0 + off, n, OVC_XACT_WAIT);
			if (rr) {
				ovc__err(s->log, "restore: cannot take gfn 0x%llx+%u: %s",
					 (unsigned long long)(rg->gfn0 + off), n, strerror(-rr));
				return rr;
			}
			for (i = 0; i < n; i++, idx++) {
				switch (kinds[idx]) {
				case IMG_DATA:
					ovc__xact_set(x, i, OVC_PAGE_IMAGE, slot++, NULL);
					nimg++;
					break;
				case IMG_BALLOONED:
					ovc__xact_set(x, i, OVC_PAGE_BALLOONED, 0, NULL);
					break;
				default:
					ovc__xact_set(x, i, OVC_PAGE_ZERO, 0, NULL);
					break;
				}
			}
			/* Before publishing: a fault may load and release at once. */
			atomic_fetch_add_explicit(&s->remaining, nimg, memory_order_acq_rel);
			rr = ovc__xact_commit(x);
			for (i = 0; i < n; i++) {
				if (x->failed[i] && ovc__pte_state(x->new_e[i]) == OVC_PAGE_IMAGE)
					atomic_fetch_sub_explicit(&s->remaining, 1,
								  memory_order_acq_rel);
			}
			if (rr && !ret) {
				ovc__err(s->log, "restore: some pages of gfn 0x%llx+%u kept their old contents: %s",
					 (unsigned long long)(rg->gfn0 + off), n, strerror(-rr));
				ret = rr;
			}
		}
	}
	return ret;
}

OVC_EXPORT int ovc_vm_restore(struct ovc_vm *vm, const char *path, void *app,
			      size_t app_cap, size_t *app_len)
{
	struct ovc_snap *s, *old;
	struct img_header *h = NULL;
	uint8_t *kinds = NULL;
	struct stat sb;
	int ret, busy = 0;

	if (!vm || !path || (app_cap && !app))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	h = calloc(1, IMG_HEADER_BYTES);
	if (!s || !h) {
		free(s);
		free(h);
		return -ENOMEM;
	}
	s->ram = vm->ram;
	s->log = &vm->host->log;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0) {
		ret = -errno;
		ovc__err(s->log, "restore: cannot open %s: %s", path, strerror(-ret));
		goto err;
	}
	if (fstat(s->fd, &sb) < 0) {
		ret = -errno;
		goto err;
	}
	if ((uint64_t)sb.st_size < sizeof(*h)) {
		ovc__err(s->log, "restore: %s: %s", path,
			 sb.st_size ? "truncated (no whole header)" : "empty file");
		ret = -EINVAL;
		goto err;
	}
	ret = pread_all(s->fd, h, sizeof(*h), 0);
	if (ret)
		goto err;
	ret = check_header(s->log, s->ram, h, (uint64_t)sb.st_size, path);
	if (ret)
		goto err;
	s->npages = h->npages;
	s->ndata = h->ndata;
	s->data_off = h->data_off;
	s->sums = malloc((h->ndata ? h->ndata : 1) * sizeof(*s->sums));
	s->bad = calloc(h->ndata ? h->ndata : 1, 1);
	s->buf = aligned_alloc(OVC_PAGE_SIZE, (size_t)STREAM_RUN * OVC_PAGE_SIZE);
	kinds = malloc(h->npages ? h->npages : 1);
	if (!s->sums || !s->bad || !s->buf || !kinds) {
		ret = -ENOMEM;
		goto err;
	}
	ret = read_table(s, h, kinds, path);
	if (ret)
		goto err;
	if (h->app_len > app_cap) {
		ovc__err(s->log, "restore: %s: its application state (%llu bytes) does not fit %zu",
			 path, (unsigned long long)h->app_len, app_cap);
		ret = -EMSGSIZE;
		goto err;
	}
	if (h->app_len) {
		ret = pread_all(s->fd, app, h->app_len, h->app_off);
		if (!ret && XXH3_64bits(app, h->app_len) != h->app_sum) {
			ovc__err(s->log, "restore: %s: application state checksum mismatch", path);
			ret = -EINVAL;
		}
		if (ret)
			goto err;
	} else if (h->app_sum != XXH3_64bits("", 0)) {
		ovc__err(s->log, "restore: %s: application state checksum mismatch", path);
		ret = -EINVAL;
		goto err;
	}

	/* The image is good. A previous restore must be over, its thread gone. */
	pthread_mutex_lock(&vm->host->lock);
	old = vm->snap;
	if (old && atomic_load_explicit(&old->remaining, memory_order_acquire) > 0)
		busy = 1;
	pthread_mutex_unlock(&vm->host->lock);
	if (busy) {
		ovc__err(s->log, "restore: %s: the previous restore of vm %s still has pages to read",
			 path, vm->name);
		ret = -EBUSY;
		goto err;
	}
	ovc__snap_stop(old);
	pthread_mutex_lock(&vm->host->lock);
	ret = ovc__ram_set_store(s->ram, OVC_PAGE_IMAGE, &snap_ops, s);
	if (!ret) {
		old = vm->snap;
		vm->snap = s;
	}
	pthread_mutex_unlock(&vm->host->lock);
	if (ret) {
		ovc__err(s->log, "restore: vm %s still has image pages: %s", vm->name,
			 strerror(-ret));
		goto err;
	}
	ovc__snap_destroy(old);
	if (app_len)
		*app_len = h->app_len;

	atomic_store_explicit(&s->open, true, memory_order_relaxed);
	s->t0 = ovc__now_ns();
	ret = convert(s, kinds);
	if (atomic_load_explicit(&s->remaining, memory_order_acquire) == 0)
		atomic_store_explicit(&s->resident_ns, ovc__now_ns() - s->t0 ? : 1,
				      memory_order_relaxed);
	if (pthread_create(&s->thread, NULL, streamer, s)) {
		/* Faults still read every page; only the background stream is missing. */
		ovc__warn(s->log, "restore: no streaming thread: pages load on first touch only");
		pthread_mutex_lock(&s->lock);
		s->done = true;
		pthread_mutex_unlock(&s->lock);
	} else {
		s->running = true;
	}
	free(kinds);
	free(h);
	return ret;

err:
	free(kinds);
	free(h);
	ovc__snap_destroy(s);
	return ret;
}

OVC_EXPORT int ovc_vm_restore_get_stats(struct ovc_vm *vm, struct ovc_restore_stats *st)
{
	struct ovc_snap *s;
	int64_t rem;

	if (!vm || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&vm->host->lock);
	s = vm->snap;
	if (s) {
		st->pages = s->npages;
		st->data_pages = s->ndata;
		/* Streamed pages are counted after their commit released them. */
		st->streamed = atomic_load_explicit(&s->streamed, memory_order_relaxed);
		st->lazy = atomic_load_explicit(&s->released, memory_order_relaxed);
		st->lazy = st->lazy > st->streamed ? st->lazy - st->streamed : 0;
		st->prefetched = atomic_load_explicit(&s->prefetched, memory_order_relaxed);
		st->checksum_failures = atomic_load_explicit(&s->csum_fail, memory_order_relaxed);
		rem = atomic_load_explicit(&s->remaining, memory_order_relaxed);
		st->remaining = rem > 0 ? (uint64_t)rem : 0;
		st->resident_ns = atomic_load_explicit(&s->resident_ns, memory_order_relaxed);
		st->image_open = atomic_load_explicit(&s->open, memory_order_relaxed);
		pthread_mutex_lock(&s->lock);
		st->streaming = !s->done;
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_unlock(&vm->host->lock);
	return s ? 0 : -ENOENT;
}

OVC_EXPORT int ovc_vm_restore_wait(struct ovc_vm *vm, int timeout_ms)
{
	struct ovc_snap *s;
	struct timespec ts;
	int ret = 0;

	if (!vm)
		return -EINVAL;
	/* vm->snap changes only in ovc_vm_restore(): not called alongside this. */
	pthread_mutex_lock(&vm->host->lock);
	s = vm->snap;
	pthread_mutex_unlock(&vm->host->lock);
	if (!s)
		return -ENOENT;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (timeout_ms >= 0) {
		ts.tv_sec += timeout_ms / 1000;
		ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&s->lock);
	while (!s->done && !ret) {
		if (timeout_ms < 0)
			pthread_cond_wait(&s->cond, &s->lock);
		else if (pthread_cond_timedwait(&s->cond, &s->lock, &ts) == ETIMEDOUT)
			ret = s->done ? 0 : -ETIMEDOUT;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}
