// SPDX-License-Identifier: MIT
/* tests/test-swapfile.c: the swap store: round trips, batches, faults, corruption, concurrency, and a VM swapping through it. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <ovc/ovc.h>
#include "host/host-internal.h"
#include "pager/swapfile.h"
#include "tests/kit/sigbus.h"

#define PAGE OVC_PAGE_SIZE
#define PLAIN (-1)			/* cipher of a mode: no encryption */

/* ------------------------------------------------------------------------ */
/* Fixture: a fresh directory per test, which must be empty again at the end. */

static char dir[64];
static _Atomic unsigned int log_errors;

static void count_log(void *opaque, int level, const char *msg)
{
	if (level <= OVC_LOG_ERR)
		atomic_fetch_add(&log_errors, 1);
}

static const struct ovc_log test_log = { .fn = count_log, .level = OVC_LOG_DEBUG };

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/ovc-swapfile-XXXXXX");
	cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	atomic_store(&log_errors, 0);
}

static void teardown(void)
{
	if (dir[0])
		cr_expect_eq(rmdir(dir), 0, "the swap file left a name behind in %s: %s", dir,
			     strerror(errno));
}

TestSuite(swapfile, .init = setup, .fini = teardown, .timeout = 60);

/* One way to set up a store; no pointers, so Criterion can copy it. */
struct mode {
	int io;		/* enum ovc_swapfile_io */
	int direct;
	int cipher;	/* enum ovc_swapfile_cipher, or PLAIN */
};

static struct ovc_swapfile *make(struct mode m, uint64_t slots)
{
	struct ovc_swapfile_config cfg;
	struct ovc_swapfile *s;

	ovc__swapfile_config_init(&cfg);
	cfg.dir = dir;
	cfg.bytes = slots * PAGE;
	cfg.io = (enum ovc_swapfile_io)m.io;
	cfg.direct = m.direct;
	cfg.encrypt = m.cipher != PLAIN;
	cfg.cipher = m.cipher == PLAIN ? OVC_SWAPFILE_CIPHER_AUTO :
					 (enum ovc_swapfile_cipher)m.cipher;
	s = ovc__swapfile_new(&test_log, &cfg);
	if (!s && errno == EOPNOTSUPP && m.cipher == OVC_SWAPFILE_CIPHER_AES256GCM)
		cr_skip_test("AES-256-GCM is not available on this CPU");
	cr_assert_not_null(s, "ovc__swapfile_new: %s", strerror(errno));
	return s;
}

static struct ovc_swapfile_stats stats(struct ovc_swapfile *s)
{
	struct ovc_swapfile_stats st;

	ovc__swapfile_get_stats(s, &st);
	return st;
}

static uint64_t used(struct ovc_swapfile *s)
{
	return stats(s).slots_used;
}

/* Page contents that name their id: any mix-up or bit flip shows. */
static void pattern(void *p, uint64_t id)
{
	uint64_t *w = p, x = id * 0x9E3779B97F4A7C15ULL + 1;
	unsigned int i;

	for (i = 0; i < PAGE / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x;
	}
	w[0] = id;
}

static bool pattern_ok(const void *p, uint64_t id)
{
	uint64_t want[PAGE / 8];

	pattern(want, id);
	return !memcmp(p, want, PAGE);
}

/* Page-aligned scratch: @n pages plus one, so that base + 8 is misaligned. */
static uint8_t *scratch(unsigned int n)
{
	void *p = mmap(NULL, (size_t)(n + 1) * PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(p, MAP_FAILED);
	return p;
}

static void scratch_free(uint8_t *p, unsigned int n)
{
	munmap(p, (size_t)(n + 1) * PAGE);
}

static int load(struct ovc_swapfile *s, uint64_t handle, void *dst)
{
	return ovc__swapfile_ops.load(s, NULL, 0, handle, dst);
}

static void release(struct ovc_swapfile *s, uint64_t handle)
{
	ovc__swapfile_ops.release(s, NULL, 0, handle);
}

/* Write pages with ids id0.. from @buf (@n pages at @stride); all must succeed. */
static void write_ok(struct ovc_swapfile *s, uint8_t *buf, unsigned int n, uint64_t id0,
		     uint64_t *handles)
{
	const void *pages[256];
	int errs[256];
	unsigned int i;

	cr_assert_leq(n, 256);
	for (i = 0; i < n; i++) {
		pattern(buf + (size_t)i * PAGE, id0 + i);
		pages[i] = buf + (size_t)i * PAGE;
	}
	cr_assert_eq(ovc__swapfile_write(s, pages, n, handles, errs), 0);
	for (i = 0; i < n; i++)
		cr_assert_eq(errs[i], 0);
}

/* ------------------------------------------------------------------------ */
/* Round trips in every mode */

static struct mode all_modes[] = {
	{ OVC_SWAPFILE_IO_URING, 1, PLAIN },
	{ OVC_SWAPFILE_IO_URING, 0, PLAIN },
	{ OVC_SWAPFILE_IO_THREADS, 1, PLAIN },
	{ OVC_SWAPFILE_IO_THREADS, 0, PLAIN },
	{ OVC_SWAPFILE_IO_URING, 1, OVC_SWAPFILE_CIPHER_XCHACHA20 },
	{ OVC_SWAPFILE_IO_URING, 0, OVC_SWAPFILE_CIPHER_AES256GCM },
	{ OVC_SWAPFILE_IO_THREADS, 1, OVC_SWAPFILE_CIPHER_AES256GCM },
	{ OVC_SWAPFILE_IO_THREADS, 0, OVC_SWAPFILE_CIPHER_XCHACHA20 },
	{ OVC_SWAPFILE_IO_URING, 1, OVC_SWAPFILE_CIPHER_AES256GCM },
	{ OVC_SWAPFILE_IO_THREADS, 1, OVC_SWAPFILE_CIPHER_XCHACHA20 },
	{ OVC_SWAPFILE_IO_AUTO, 1, OVC_SWAPFILE_CIPHER_AUTO },
};

ParameterizedTestParameters(swapfile, round_trip)
{
	return cr_make_param_array(struct mode, all_modes, OVC_ARRAY_SIZE(all_modes));
}

ParameterizedTest(struct mode *m, swapfile, round_trip)
{
	static const unsigned int sizes[] = { 1, 2, 7, 63, 64, 65, 128, 256 };
	struct ovc_swapfile *s = make(*m, 1024);
	uint8_t *src = scratch(256), *dst = scratch(256);
	uint64_t handles[256], id = 0, total = 0, bucketed = 0;
	struct ovc_swapfile_stats st;
	unsigned int b, i, j;

	for (b = 0; b < OVC_ARRAY_SIZE(sizes); b++) {
		unsigned int n = sizes[b];
		/* Odd batches come from and go to misaligned buffers: bounce path. */
		uint8_t *from = b & 1 ? src + 8 : src, *to = b & 1 ? dst : dst + 8;
		void *dsts[256];
		int errs[256];

		write_ok(s, from, n, id, handles);
		cr_assert_eq(used(s), n);
		for (i = 0; i < n; i++) {
			cr_assert_neq(handles[i], 0);
			cr_assert_leq(handles[i], OVC_PTE_PAYLOAD_MAX);
			for (j = 0; j < i; j++)
				cr_assert_neq(handles[i], handles[j]);
		}
		/* Scribble over the sources: what comes back must come from the file. */
		memset(from, 0xee, (size_t)n * PAGE);
		memset(to, 0, (size_t)n * PAGE);
		/* First half one load at a time, the rest in one batched read. */
		for (i = 0; i < n / 2; i++)
			cr_assert_eq(load(s, handles[i], to + (size_t)i * PAGE), 0);
		for (i = n / 2; i < n; i++)
			dsts[i - n / 2] = to + (size_t)i * PAGE;
		cr_assert_eq(ovc__swapfile_read(s, handles + n / 2, dsts, n - n / 2, errs), 0);
		for (i = 0; i < n; i++)
			cr_assert(pattern_ok(to + (size_t)i * PAGE, id + i),
				  "batch %u page %u came back wrong", n, i);
		for (i = 0; i < n; i++)
			release(s, handles[i]);
		cr_assert_eq(used(s), 0);
		id += n;
		total += n;
	}

	st = stats(s);
	cr_assert_eq(st.slots_total, 1024);
	cr_assert_eq(st.writes, total);
	cr_assert_eq(st.reads, total);
	cr_assert_eq(st.bytes_written, total * PAGE);
	cr_assert_eq(st.bytes_read, total * PAGE);
	cr_assert_eq(st.write_batches, OVC_ARRAY_SIZE(sizes));
	cr_assert_eq(st.read_batches, OVC_ARRAY_SIZE(sizes));
	cr_assert_eq(st.io_errors, 0);
	cr_assert_eq(st.checksum_errors, 0);
	cr_assert_eq(st.direct, (bool)m->direct, "tmpfs and ext4 both take O_DIRECT here");
	cr_assert_eq(st.encrypt, m->cipher != PLAIN);
	if (m->io == OVC_SWAPFILE_IO_AUTO)
		cr_assert_eq(st.io, OVC_SWAPFILE_IO_URING, "the probe finds io_uring here");
	else
		cr_assert_eq(st.io, m->io);
	if (m->cipher > OVC_SWAPFILE_CIPHER_AUTO)
		cr_assert_eq(st.cipher, m->cipher);
	else if (m->cipher == OVC_SWAPFILE_CIPHER_AUTO)
		cr_assert_neq(st.cipher, OVC_SWAPFILE_CIPHER_AUTO, "auto resolves to a cipher");
	for (i = 0; i < OVC_SWAPFILE_HIST_BUCKETS; i++)
		bucketed += st.write_hist[i];
	cr_assert_eq(bucketed, total);
	cr_assert_gt(ovc__swapfile_hist_quantile_ns(st.read_hist, 0.5), 0);
	cr_assert_gt(st.write_ns, 0);
	cr_assert_eq(atomic_load(&log_errors), 0);

	scratch_free(src, 256);
	scratch_free(dst, 256);
	ovc__swapfile_destroy(s);
}

/* ------------------------------------------------------------------------ */
/* Slots running out, injected faults */

static struct mode backends[] = {
	{ OVC_SWAPFILE_IO_URING, 1, PLAIN },
	{ OVC_SWAPFILE_IO_THREADS, 1, PLAIN },
	{ OVC_SWAPFILE_IO_URING, 1, OVC_SWAPFILE_CIPHER_XCHACHA20 },
	{ OVC_SWAPFILE_IO_THREADS, 0, OVC_SWAPFILE_CIPHER_AES256GCM },
};

ParameterizedTestParameters(swapfile, exhaustion)
{
	return cr_make_param_array(struct mode, backends, OVC_ARRAY_SIZE(backends));
}

ParameterizedTest(struct mode *m, swapfile, exhaustion)
{
	struct ovc_swapfile *s = make(*m, 16);
	uint8_t *buf = scratch(20), *out = scratch(1);
	const void *pages[20];
	uint64_t handles[20];
	int errs[20];
	unsigned int i, ok = 0;

	for (i = 0; i < 20; i++) {
		pattern(buf + i * PAGE, i);
		pages[i] = buf + i * PAGE;
	}
	cr_assert_eq(ovc__swapfile_write(s, pages, 20, handles, errs), -ENOSPC);
	for (i = 0; i < 20; i++) {
		if (!errs[i]) {
			ok++;
			cr_assert_eq(load(s, handles[i], out), 0);
			cr_assert(pattern_ok(out, i));
		} else {
			cr_assert_eq(errs[i], -ENOSPC);
			cr_assert_eq(handles[i], 0);
		}
	}
	cr_assert_eq(ok, 16, "the others in the batch are stored");
	cr_assert_eq(used(s), 16);
	cr_assert_eq(stats(s).write_enospc, 4);

	/* Three freed slots take three of the four refused pages. */
	for (i = 0; i < 3; i++)
		ovc__swapfile_drop(s, handles[i]);
	cr_assert_eq(ovc__swapfile_write(s, pages + 16, 4, handles + 16, errs + 16), -ENOSPC);
	for (i = 16, ok = 0; i < 20; i++)
		ok += errs[i] == 0;
	cr_assert_eq(ok, 3);
	cr_assert_eq(errs[19], -ENOSPC, "slots go to the batch in order");
	cr_assert_eq(used(s), 16);
	for (i = 3; i < 19; i++) {
		cr_assert_eq(load(s, handles[i], out), 0);
		cr_assert(pattern_ok(out, i));
		release(s, handles[i]);
	}
	cr_assert_eq(used(s), 0);
	cr_assert_eq(stats(s).io_errors, 0);
	scratch_free(buf, 20);
	scratch_free(out, 1);
	ovc__swapfile_destroy(s);
}

struct fault_case {
	struct mode m;
	int fault;		/* enum ovc_swapfile_fault, injected on a write */
	unsigned int count;
	int err;		/* what those pages get */
};

static struct fault_case write_faults[] = {
	{ { OVC_SWAPFILE_IO_URING, 1, PLAIN }, OVC_SWAPFILE_WRITE_EIO, 3, -EIO },
	{ { OVC_SWAPFILE_IO_THREADS, 1, PLAIN }, OVC_SWAPFILE_WRITE_EIO, 3, -EIO },
	{ { OVC_SWAPFILE_IO_URING, 1, PLAIN }, OVC_SWAPFILE_WRITE_SHORT, 2, -EIO },
	{ { OVC_SWAPFILE_IO_THREADS, 0, OVC_SWAPFILE_CIPHER_XCHACHA20 }, OVC_SWAPFILE_WRITE_SHORT, 2, -EIO },
	{ { OVC_SWAPFILE_IO_URING, 1, OVC_SWAPFILE_CIPHER_AES256GCM }, OVC_SWAPFILE_WRITE_ENOSPC, 4, -ENOSPC },
	{ { OVC_SWAPFILE_IO_THREADS, 1, PLAIN }, OVC_SWAPFILE_WRITE_ENOSPC, 10, -ENOSPC },
};

ParameterizedTestParameters(swapfile, injected_write_faults)
{
	return cr_make_param_array(struct fault_case, write_faults, OVC_ARRAY_SIZE(write_faults));
}

ParameterizedTest(struct fault_case *fc, swapfile, injected_write_faults)
{
	struct ovc_swapfile *s = make(fc->m, 64);
	uint8_t *buf = scratch(10), *out = scratch(1);
	const void *pages[10];
	uint64_t handles[10];
	struct ovc_swapfile_stats st;
	int errs[10];
	unsigned int i, failed = 0;

	for (i = 0; i < 10; i++) {
		pattern(buf + i * PAGE, i);
		pages[i] = buf + i * PAGE;
	}
	ovc__swapfile_inject(s, (enum ovc_swapfile_fault)fc->fault, fc->count);
	cr_assert_eq(ovc__swapfile_write(s, pages, 10, handles, errs), fc->err);
	for (i = 0; i < 10; i++) {
		if (errs[i]) {
			cr_assert_eq(errs[i], fc->err);
			cr_assert_eq(handles[i], 0);
			failed++;
			continue;
		}
		cr_assert_eq(load(s, handles[i], out), 0);
		cr_assert(pattern_ok(out, i));
	}
	cr_assert_eq(failed, fc->count);
	st = stats(s);
	cr_assert_eq(st.slots_used, 10 - fc->count, "failed pages hold no slot");
	cr_assert_eq(st.writes, 10 - fc->count);
	if (fc->err == -EIO) {
		cr_assert_eq(st.io_errors, fc->count);
		cr_assert_gt(atomic_load(&log_errors), 0, "the failure was logged");
	} else {
		cr_assert_eq(st.write_enospc, fc->count);
	}

	/* Spent: the next batch goes through whole. */
	for (i = 0; i < 10; i++) {
		if (!errs[i])
			release(s, handles[i]);
	}
	cr_assert_eq(ovc__swapfile_write(s, pages, 10, handles, errs), 0);
	for (i = 0; i < 10; i++)
		release(s, handles[i]);
	cr_assert_eq(used(s), 0);
	scratch_free(buf, 10);
	scratch_free(out, 1);
	ovc__swapfile_destroy(s);
}

ParameterizedTestParameters(swapfile, injected_read_eio)
{
	return cr_make_param_array(struct mode, backends, OVC_ARRAY_SIZE(backends));
}

ParameterizedTest(struct mode *m, swapfile, injected_read_eio)
{
	struct ovc_swapfile *s = make(*m, 64);
	uint8_t *buf = scratch(8), *out = scratch(8);
	uint64_t handles[8];
	void *dsts[8];
	int errs[8];
	unsigned int i;

	write_ok(s, buf, 8, 100, handles);
	ovc__swapfile_inject(s, OVC_SWAPFILE_READ_EIO, 1);
	cr_assert_eq(load(s, handles[0], out), -EIO, "an I/O error is never a zero page");
	cr_assert_eq(stats(s).io_errors, 1);
	cr_assert_eq(load(s, handles[0], out), 0, "the slot itself is intact");
	cr_assert(pattern_ok(out, 100));

	for (i = 0; i < 8; i++)
		dsts[i] = out + i * PAGE;
	ovc__swapfile_inject(s, OVC_SWAPFILE_READ_EIO, 2);
	cr_assert_eq(ovc__swapfile_read(s, handles, dsts, 8, errs), -EIO);
	cr_assert_eq(errs[0], -EIO);
	cr_assert_eq(errs[1], -EIO);
	for (i = 2; i < 8; i++) {
		cr_assert_eq(errs[i], 0);
		cr_assert(pattern_ok(dsts[i], 100 + i));
	}
	cr_assert_eq(stats(s).io_errors, 3);
	cr_assert_eq(stats(s).checksum_errors, 0);
	for (i = 0; i < 8; i++)
		release(s, handles[i]);
	cr_assert_eq(used(s), 0);
	scratch_free(buf, 8);
	scratch_free(out, 8);
	ovc__swapfile_destroy(s);
}

/* ------------------------------------------------------------------------ */
/* Corruption: checksums and AEAD tags */

static struct mode crypt_modes[] = {
	{ OVC_SWAPFILE_IO_URING, 1, PLAIN },
	{ OVC_SWAPFILE_IO_THREADS, 0, PLAIN },
	{ OVC_SWAPFILE_IO_URING, 1, OVC_SWAPFILE_CIPHER_XCHACHA20 },
	{ OVC_SWAPFILE_IO_THREADS, 1, OVC_SWAPFILE_CIPHER_XCHACHA20 },
	{ OVC_SWAPFILE_IO_URING, 1, OVC_SWAPFILE_CIPHER_AES256GCM },
	{ OVC_SWAPFILE_IO_THREADS, 0, OVC_SWAPFILE_CIPHER_AES256GCM },
};

ParameterizedTestParameters(swapfile, corrupt_on_disk)
{
	return cr_make_param_array(struct mode, crypt_modes, OVC_ARRAY_SIZE(crypt_modes));
}

/* Bytes flipped in the file, behind the store's back. */
ParameterizedTest(struct mode *m, swapfile, corrupt_on_disk)
{
	struct ovc_swapfile *s = make(*m, 64);
	uint8_t *buf = scratch(4), *out = scratch(4);
	uint64_t handles[4];
	void *dsts[4];
	int errs[4];
	unsigned int i;

	write_ok(s, buf, 4, 7, handles);
	cr_assert_eq(ovc__swapfile_corrupt_slot(s, handles[1]), 0);
	cr_assert_eq(load(s, handles[1], out), -EIO);
	cr_assert_eq(stats(s).checksum_errors, 1);
	cr_assert_eq(stats(s).io_errors, 0);
	for (i = 0; i < 4; i++)
		dsts[i] = out + i * PAGE;
	cr_assert_eq(ovc__swapfile_read(s, handles, dsts, 4, errs), -EIO);
	cr_assert_eq(errs[1], -EIO);
	cr_assert_eq(errs[0] | errs[2] | errs[3], 0, "neighbours are fine");
	cr_assert(pattern_ok(dsts[2], 9));
	cr_assert_eq(stats(s).checksum_errors, 2);

	/* The slot is still the page's until released; then it is reused cleanly. */
	cr_assert_eq(used(s), 4);
	for (i = 0; i < 4; i++)
		release(s, handles[i]);
	write_ok(s, buf, 4, 50, handles);
	for (i = 0; i < 4; i++) {
		cr_assert_eq(load(s, handles[i], out), 0);
		cr_assert(pattern_ok(out, 50 + i));
		release(s, handles[i]);
	}
	cr_assert_eq(used(s), 0);
	cr_assert_eq(ovc__swapfile_corrupt_slot(s, handles[0]), -EINVAL, "a free slot");
	scratch_free(buf, 4);
	scratch_free(out, 4);
	ovc__swapfile_destroy(s);
}

ParameterizedTestParameters(swapfile, injected_corruption)
{
	return cr_make_param_array(struct mode, crypt_modes, OVC_ARRAY_SIZE(crypt_modes));
}

/* A page written with a flipped byte (the disk lied): the write succeeds, the load doesn't. */
ParameterizedTest(struct mode *m, swapfile, injected_corruption)
{
	struct ovc_swapfile *s = make(*m, 64);
	uint8_t *buf = scratch(3), *out = scratch(1);
	uint64_t handles[3];
	unsigned int i;

	ovc__swapfile_inject(s, OVC_SWAPFILE_CORRUPT, 1);
	write_ok(s, buf, 3, 0, handles);
	cr_assert_eq(load(s, handles[0], out), -EIO);
	cr_assert_eq(stats(s).checksum_errors, 1);
	for (i = 1; i < 3; i++) {
		cr_assert_eq(load(s, handles[i], out), 0);
		cr_assert(pattern_ok(out, i));
	}
	for (i = 0; i < 3; i++)
		release(s, handles[i]);
	cr_assert_eq(used(s), 0);
	scratch_free(buf, 3);
	scratch_free(out, 1);
	ovc__swapfile_destroy(s);
}

/* ------------------------------------------------------------------------ */
/* Concurrency: a pager thread writes while fault-engine-like threads load and release */

#define CONC_PAGES 20000
#define CONC_BATCH 32
#define CONC_LOADERS 3
#define CONC_QUEUE 1024

struct conc {
	struct ovc_swapfile *s;
	pthread_mutex_t lock;		/* protects the queue and done */
	pthread_cond_t cond;
	uint64_t q_handle[CONC_QUEUE], q_id[CONC_QUEUE];
	unsigned int head, tail, len;
	bool done;
	_Atomic uint64_t loaded, bad, enospc_retries;
};

static void conc_push(struct conc *c, uint64_t handle, uint64_t id)
{
	pthread_mutex_lock(&c->lock);
	while (c->len == CONC_QUEUE)
		pthread_cond_wait(&c->cond, &c->lock);
	c->q_handle[c->tail] = handle;
	c->q_id[c->tail] = id;
	c->tail = (c->tail + 1) % CONC_QUEUE;
	c->len++;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* Pop up to @max entries; 0 when the writer is done and the queue empty. */
static unsigned int conc_pop(struct conc *c, uint64_t *h, uint64_t *id, unsigned int max)
{
	unsigned int n = 0;

	pthread_mutex_lock(&c->lock);
	while (!c->len && !c->done)
		pthread_cond_wait(&c->cond, &c->lock);
	while (c->len && n < max) {
		h[n] = c->q_handle[c->head];
		id[n++] = c->q_id[c->head];
		c->head = (c->head + 1) % CONC_QUEUE;
		c->len--;
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return n;
}

static void *conc_writer(void *arg)
{
	struct conc *c = arg;
	uint8_t *buf = aligned_alloc(PAGE, CONC_BATCH * PAGE);
	uint64_t id = 0;

	while (id < CONC_PAGES) {
		const void *pages[CONC_BATCH];
		uint64_t handles[CONC_BATCH], ids[CONC_BATCH];
		int errs[CONC_BATCH];
		unsigned int i, n = 0;

		for (; n < CONC_BATCH && id < CONC_PAGES; n++, id++) {
			pattern(buf + n * PAGE, id);
			pages[n] = buf + n * PAGE;
			ids[n] = id;
		}
		/* Full file: wait for the loaders to free slots, write the rest again. */
		while (n) {
			unsigned int left = 0;

			/* 0 promises every page stored; the errors are per page. */
			if (ovc__swapfile_write(c->s, pages, n, handles, errs) == 0 && errs[0])
				atomic_fetch_add(&c->bad, 1);
			for (i = 0; i < n; i++) {
				if (!errs[i]) {
					conc_push(c, handles[i], ids[i]);
				} else if (errs[i] == -ENOSPC) {
					pages[left] = pages[i];
					ids[left++] = ids[i];
				} else {
					atomic_fetch_add(&c->bad, 1);
				}
			}
			if (left) {
				atomic_fetch_add(&c->enospc_retries, 1);
				usleep(200);
			}
			n = left;
		}
	}
	pthread_mutex_lock(&c->lock);
	c->done = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	free(buf);
	return NULL;
}

static void *conc_loader(void *arg)
{
	struct conc *c = arg;
	uint8_t *buf = malloc(8 * PAGE + 8), *out = buf + 8;	/* misaligned on purpose */
	uint64_t h[8], id[8];
	unsigned int n, i;

	while ((n = conc_pop(c, h, id, 8))) {
		void *dsts[8];
		int errs[8];

		/* One by one as faults would, or all at once as prefetch would. */
		if (n > 4) {
			for (i = 0; i < n; i++)
				dsts[i] = out + i * PAGE;
			if (ovc__swapfile_read(c->s, h, dsts, n, errs))
				atomic_fetch_add(&c->bad, 1);
		} else {
			for (i = 0; i < n; i++) {
				if (load(c->s, h[i], out + i * PAGE))
					atomic_fetch_add(&c->bad, 1);
			}
		}
		for (i = 0; i < n; i++) {
			if (!pattern_ok(out + i * PAGE, id[i]))
				atomic_fetch_add(&c->bad, 1);
			release(c->s, h[i]);
		}
		atomic_fetch_add(&c->loaded, n);
	}
	free(buf);
	return NULL;
}

static struct mode conc_modes[] = {
	{ OVC_SWAPFILE_IO_URING, 1, PLAIN },
	{ OVC_SWAPFILE_IO_THREADS, 1, PLAIN },
	{ OVC_SWAPFILE_IO_URING, 1, OVC_SWAPFILE_CIPHER_AES256GCM },
	{ OVC_SWAPFILE_IO_THREADS, 1, OVC_SWAPFILE_CIPHER_XCHACHA20 },
};

ParameterizedTestParameters(swapfile, concurrent_load_release)
{
	return cr_make_param_array(struct mode, conc_modes, OVC_ARRAY_SIZE(conc_modes));
}

ParameterizedTest(struct mode *m, swapfile, concurrent_load_release, .timeout = 120)
{
	static struct conc c;
	pthread_t writer, loaders[CONC_LOADERS];
	struct ovc_swapfile_stats st;
	unsigned int i;

	memset(&c, 0, sizeof(c));
	pthread_mutex_init(&c.lock, NULL);
	pthread_cond_init(&c.cond, NULL);
	/* Fewer slots than pages in flight: slots are freed and reused under load. */
	c.s = make(*m, 512);
	for (i = 0; i < CONC_LOADERS; i++)
		cr_assert_eq(pthread_create(&loaders[i], NULL, conc_loader, &c), 0);
	cr_assert_eq(pthread_create(&writer, NULL, conc_writer, &c), 0);
	pthread_join(writer, NULL);
	for (i = 0; i < CONC_LOADERS; i++)
		pthread_join(loaders[i], NULL);

	st = stats(c.s);
	cr_assert_eq(atomic_load(&c.bad), 0);
	cr_assert_eq(atomic_load(&c.loaded), CONC_PAGES);
	cr_assert_eq(st.slots_used, 0);
	cr_assert_eq(st.writes, CONC_PAGES);
	cr_assert_eq(st.reads, CONC_PAGES);
	cr_assert_eq(st.io_errors, 0);
	cr_assert_eq(st.checksum_errors, 0);
	cr_log_info("%s: %llu ENOSPC retries, write p50 %llu ns, read p50 %llu ns",
		    ovc__swapfile_io_name(st.io), (unsigned long long)atomic_load(&c.enospc_retries),
		    (unsigned long long)ovc__swapfile_hist_quantile_ns(st.write_hist, 0.5),
		    (unsigned long long)ovc__swapfile_hist_quantile_ns(st.read_hist, 0.5));
	ovc__swapfile_destroy(c.s);
}

/* ------------------------------------------------------------------------ */
/* Slots come back; misuse is caught */

Test(swapfile, drop_and_release_free_slots)
{
	struct mode m = { OVC_SWAPFILE_IO_AUTO, 1, PLAIN };
	struct ovc_swapfile *s = make(m, 200);
	uint8_t *buf = scratch(100);
	uint64_t handles[100];
	unsigned int i;

	write_ok(s, buf, 100, 0, handles);
	cr_assert_eq(used(s), 100);
	for (i = 0; i < 50; i++)
		ovc__swapfile_drop(s, handles[i]);
	cr_assert_eq(used(s), 50);
	for (i = 50; i < 100; i++)
		release(s, handles[i]);
	cr_assert_eq(used(s), 0);
	cr_assert_eq(load(s, handles[3], buf), -ENOENT, "a freed slot is not read");
	cr_assert_eq(load(s, 0, buf), -EINVAL);
	cr_assert_eq(load(s, 201, buf), -EINVAL);
	/* Every slot can be taken again, and the allocator wraps around. */
	for (i = 0; i < 4; i++) {
		uint64_t more[50];
		unsigned int j;

		write_ok(s, buf, 50, 1000, more);
		for (j = 0; j < 50; j++)
			ovc__swapfile_drop(s, more[j]);
	}
	cr_assert_eq(used(s), 0);
	scratch_free(buf, 100);
	ovc__swapfile_destroy(s);
}

Test(swapfile, double_drop_is_a_bug, .signal = SIGABRT)
{
	struct mode m = { OVC_SWAPFILE_IO_THREADS, 1, PLAIN };
	struct ovc_swapfile *s = make(m, 8);
	uint8_t *buf = scratch(1);
	uint64_t h;

	write_ok(s, buf, 1, 0, &h);
	/* The abort skips the fixture's teardown: the nameless file needs no directory. */
	cr_assert_eq(rmdir(dir), 0);
	dir[0] = '\0';
	ovc__swapfile_drop(s, h);
	ovc__swapfile_drop(s, h);
}

Test(swapfile, destroy_with_slots_in_use)
{
	struct mode m = { OVC_SWAPFILE_IO_URING, 1, OVC_SWAPFILE_CIPHER_XCHACHA20 };
	struct ovc_swapfile *s = make(m, 64);
	uint8_t *buf = scratch(10);
	uint64_t handles[10];

	write_ok(s, buf, 10, 0, handles);
	ovc__swapfile_destroy(s);	/* no leak (ASan), no name left (fixture) */
	ovc__swapfile_destroy(NULL);
	scratch_free(buf, 10);
}

Test(swapfile, bad_arguments)
{
	struct mode m = { OVC_SWAPFILE_IO_THREADS, 1, PLAIN };
	struct ovc_swapfile *s = make(m, 8);
	uint8_t *buf = scratch(1);
	const void *pages[2] = { buf, NULL };
	uint64_t h[2];
	int errs[2];
	void *dst[1] = { buf };

	cr_assert_eq(ovc__swapfile_write(NULL, pages, 1, h, errs), -EINVAL);
	cr_assert_eq(ovc__swapfile_write(s, pages, 2, h, errs), -EINVAL);
	cr_assert_eq(ovc__swapfile_write(s, pages, 1, NULL, errs), -EINVAL);
	cr_assert_eq(ovc__swapfile_write(s, pages, 0, h, errs), 0);
	cr_assert_eq(ovc__swapfile_read(s, NULL, dst, 1, errs), -EINVAL);
	h[0] = 0;
	cr_assert_eq(ovc__swapfile_read(s, h, dst, 1, errs), -EINVAL);
	cr_assert_eq(errs[0], -EINVAL);
	cr_assert_eq(stats(s).write_batches, 0);
	scratch_free(buf, 1);
	ovc__swapfile_destroy(s);
}

/* ------------------------------------------------------------------------ */
/* Creation */

static struct ovc_swapfile *try_new(const char *d, uint64_t bytes)
{
	struct ovc_swapfile_config cfg;

	ovc__swapfile_config_init(&cfg);
	cfg.dir = d;
	cfg.bytes = bytes;
	return ovc__swapfile_new(&test_log, &cfg);
}

Test(swapfile, missing_directory)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/does-not-exist", dir);
	errno = 0;
	cr_assert_null(try_new(path, 1 << 20));
	cr_assert_eq(errno, ENOENT);
	cr_assert_gt(atomic_load(&log_errors), 0);
}

Test(swapfile, directory_is_a_file)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/plain-file", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fclose(f);
	errno = 0;
	cr_assert_null(try_new(path, 1 << 20));
	cr_assert_eq(errno, ENOTDIR);
	cr_assert_eq(unlink(path), 0);
}

Test(swapfile, bad_config)
{
	struct ovc_swapfile_config cfg;

	errno = 0;
	cr_assert_null(ovc__swapfile_new(&test_log, NULL));
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(try_new(NULL, 1 << 20));
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(try_new(dir, 0));
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(try_new(dir, PAGE + 1));
	cr_assert_eq(errno, EINVAL);
	ovc__swapfile_config_init(&cfg);
	cfg.dir = dir;
	cfg.bytes = 1 << 20;
	cfg.queue_depth = 0;
	cr_assert_null(ovc__swapfile_new(&test_log, &cfg));
	cr_assert_eq(errno, EINVAL);
	cfg.queue_depth = 64;
	cfg.io_contexts = OVC_SWAPFILE_CONTEXTS_MAX + 1;
	cr_assert_null(ovc__swapfile_new(&test_log, &cfg));
	cr_assert_eq(errno, EINVAL);
	cfg.io_contexts = 4;
	cfg.io = (enum ovc_swapfile_io)7;
	cr_assert_null(ovc__swapfile_new(&test_log, &cfg));
	cr_assert_eq(errno, EINVAL);
}

Test(swapfile, no_room_on_the_filesystem)
{
	struct statvfs vfs;
	uint64_t bytes;

	cr_assert_eq(statvfs(dir, &vfs), 0);
	/* Twice what is free, rounded to pages: refused before writing a block. */
	bytes = ((uint64_t)vfs.f_bavail * vfs.f_frsize * 2 + (1ULL << 30)) & ~(uint64_t)(PAGE - 1);
	errno = 0;
	cr_assert_null(try_new(dir, bytes));
	cr_assert_eq(errno, ENOSPC);
}

Test(swapfile, config_defaults)
{
	struct ovc_swapfile_config cfg;

	ovc__swapfile_config_init(&cfg);
	cr_assert(cfg.direct);
	cr_assert_eq(cfg.io, OVC_SWAPFILE_IO_AUTO);
	cr_assert_eq(cfg.queue_depth, 64);
	cr_assert_not(cfg.encrypt);
	cr_assert_str_eq(ovc__swapfile_io_name(OVC_SWAPFILE_IO_THREADS), "threads");
	cr_assert_str_eq(ovc__swapfile_cipher_name(OVC_SWAPFILE_CIPHER_AES256GCM), "aes256gcm");
}

/* ------------------------------------------------------------------------ */
/* The SWAPPED store of a real VM: transitions out, faults back in */

#define VM_PAGES 128
#define VM_GPA 0x100000ULL
#define VM_GFN(i) ((VM_GPA >> OVC_PAGE_SHIFT) + (i))

/* Touch @p from a thread of its own; true when the access raised SIGBUS. */
static bool touch_raises_sigbus(void *p)
{
	int r = sigbus_probe(p);

	cr_assert_geq(r, 0, "SIGBUS probe: %s", strerror(-r));
	return r == 1;
}

/*
 * What the pager does: take pages [first, first+n) through a transition,
 * write them in one batch, and move those stored to SWAPPED; a page whose
 * write failed stays RESIDENT. Return how many were swapped.
 */
static unsigned int swap_out(struct ovc_ram *ram, struct ovc_swapfile *s,
			     unsigned int first, unsigned int n)
{
	struct ovc_xact x;
	const void *pages[OVC_XACT_MAX_PAGES];
	uint64_t handles[OVC_XACT_MAX_PAGES];
	int errs[OVC_XACT_MAX_PAGES];
	unsigned int i, swapped = 0;
	int ret;

	cr_assert_eq(ovc__xact_begin(&x, ram, VM_GFN(first), n, 0), 0);
	for (i = 0; i < n; i++) {
		cr_assert_eq(ovc__pte_state(ovc__xact_old(&x, i)), OVC_PAGE_RESIDENT);
		pages[i] = ovc__xact_hva(&x, i);
	}
	ret = ovc__swapfile_write(s, pages, n, handles, errs);
	for (i = 0; i < n; i++) {
		cr_assert(errs[i] == 0 || ret != 0);
		if (errs[i])
			continue;
		ovc__xact_set(&x, i, OVC_PAGE_SWAPPED, handles[i], NULL);
		swapped++;
	}
	if (ovc__xact_commit(&x)) {
		for (i = 0; i < n; i++) {
			if (!errs[i] && x.failed[i]) {
				ovc__swapfile_drop(s, handles[i]);
				swapped--;
			}
		}
	}
	return swapped;
}

static int page_state(struct ovc_vm *vm, unsigned int i)
{
	return ovc_vm_page_state(vm, VM_GPA + (uint64_t)i * PAGE, NULL);
}

static struct mode vm_modes[] = {
	{ OVC_SWAPFILE_IO_URING, 1, PLAIN },
	{ OVC_SWAPFILE_IO_THREADS, 1, OVC_SWAPFILE_CIPHER_XCHACHA20 },
	{ OVC_SWAPFILE_IO_URING, 0, OVC_SWAPFILE_CIPHER_AES256GCM },
};

ParameterizedTestParameters(swapfile, vm_swaps_out_and_faults_back)
{
	return cr_make_param_array(struct mode, vm_modes, OVC_ARRAY_SIZE(vm_modes));
}

ParameterizedTest(struct mode *m, swapfile, vm_swaps_out_and_faults_back, .timeout = 60)
{
	struct ovc_host_config hcfg;
	struct ovc_mem_stats ms;
	struct ovc_swapfile *s;
	struct ovc_host *host;
	struct ovc_vm *vm;
	struct ovc_ram *ram;
	uint8_t *mem;
	void *hva;
	unsigned int i, resident = 0;
	uint64_t h;

	ovc_host_config_init(&hcfg);
	hcfg.log_fn = count_log;
	hcfg.log_level = OVC_LOG_DEBUG;
	host = ovc_host_new(&hcfg);
	cr_assert_not_null(host, "ovc_host_new: %s", strerror(errno));
	vm = ovc_vm_new(host, "swapvm");
	cr_assert_not_null(vm);
	cr_assert_eq(ovc_vm_add_ram(vm, VM_GPA, VM_PAGES * PAGE, &hva), 0);
	mem = hva;
	ram = ovc__vm_ram(vm);
	s = make(*m, 256);
	cr_assert_eq(ovc__ram_set_store(ram, OVC_PAGE_SWAPPED, &ovc__swapfile_ops, s), 0);

	for (i = 0; i < VM_PAGES; i++)
		pattern(mem + (size_t)i * PAGE, i);	/* zero faults: all RESIDENT */

	/* 64 pages out in one transition and one write batch. */
	cr_assert_eq(swap_out(ram, s, 0, 64), 64);
	for (i = 0; i < 64; i++)
		cr_assert_eq(page_state(vm, i), OVC_PAGE_SWAPPED);
	cr_assert_eq(used(s), 64);
	cr_assert_eq(ovc_vm_get_mem_stats(vm, &ms), 0);
	cr_assert_eq(ms.pages[OVC_PAGE_SWAPPED], 64);
	cr_assert_leq(ms.host_bytes, (VM_PAGES - 64) * PAGE, "the guest memory was released");

	/* Back in through the mapping: fault -> load -> UFFDIO_COPY -> release. */
	for (i = 0; i < 64; i++)
		cr_assert(pattern_ok(mem + (size_t)i * PAGE, i), "page %u", i);
	for (i = 0; i < 64; i++)
		cr_assert_eq(page_state(vm, i), OVC_PAGE_RESIDENT);
	cr_assert_eq(used(s), 0, "every slot released by the fault engine");
	cr_assert_eq(ovc_vm_get_mem_stats(vm, &ms), 0);
	cr_assert_eq(ms.faults[OVC_FAULT_STORE], 64);
	cr_assert_eq(stats(s).reads, 64);

	/* Faults of the store leave pages RESIDENT and intact. */
	ovc__swapfile_inject(s, OVC_SWAPFILE_WRITE_EIO, 2);
	ovc__swapfile_inject(s, OVC_SWAPFILE_WRITE_SHORT, 1);
	ovc__swapfile_inject(s, OVC_SWAPFILE_WRITE_ENOSPC, 1);
	cr_assert_eq(swap_out(ram, s, 64, 16), 12);
	for (i = 64; i < 80; i++)
		resident += page_state(vm, i) == OVC_PAGE_RESIDENT;
	cr_assert_eq(resident, 4);
	cr_assert_eq(used(s), 12, "failed writes hold no slot");
	cr_assert_eq(stats(s).io_errors, 3);
	for (i = 64; i < 80; i++) {
		cr_assert(pattern_ok(mem + (size_t)i * PAGE, i), "page %u", i);
		((volatile uint8_t *)mem)[(size_t)i * PAGE + 8] = (uint8_t)i;	/* writable */
	}
	cr_assert_eq(used(s), 0);

	/* A slot corrupted on disk: the page is poisoned, never zero-filled. */
	cr_assert_eq(swap_out(ram, s, 100, 1), 1);
	h = ovc__pte_payload(atomic_load(ovc__ram_pte(ram, VM_GFN(100))));
	cr_assert_eq(ovc__swapfile_corrupt_slot(s, h), 0);
	cr_assert(touch_raises_sigbus(mem + 100 * PAGE), "the access was refused, not served zeros");
	cr_assert_eq(page_state(vm, 100), OVC_PAGE_SWAPPED);
	cr_assert_eq(stats(s).checksum_errors, 1);
	cr_assert_eq(used(s), 1, "the slot is kept for the record");
	cr_assert(pattern_ok(mem + 101 * PAGE, 101), "neighbours are unaffected");

	cr_assert_eq(ovc_vm_destroy(vm), 0);
	ovc__swapfile_destroy(s);
	cr_assert_eq(ovc_host_destroy(host), 0);
}
