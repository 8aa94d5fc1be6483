// SPDX-License-Identifier: MIT
/* tests/test-snapshot.c: save a VM's RAM to an image and restore it lazily: every state, races, damage. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <ovc/snapshot.h>
#include "host/host-internal.h"
#include "tests/kit/sigbus.h"

#define PAGE OVC_PAGE_SIZE
#define WORDS (PAGE / sizeof(uint64_t))

static struct ovc_host *host;
static char dir[64];
static char img[128];

static void setup(void)
{
	struct ovc_host_config cfg;

	ovc_host_config_init(&cfg);
	cfg.log_level = 0;	/* bad images and lost pages log on purpose */
	host = ovc_host_new(&cfg);
	cr_assert_not_null(host);
	snprintf(dir, sizeof(dir), "/tmp/ovc-test-snapshot-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(img, sizeof(img), "%s/vm.img", dir);
}

static void teardown(void)
{
	char p[160];

	if (host)
		cr_assert_eq(ovc_host_destroy(host), 0);
	unlink(img);
	snprintf(p, sizeof(p), "%s/other.img", dir);
	unlink(p);
	rmdir(dir);
}

TestSuite(snapshot, .init = setup, .fini = teardown, .timeout = 120);

/* Contents of page @page at version @ver: never all zero. */
static void fill(uint64_t *w, uint64_t page, uint64_t ver)
{
	uint64_t x = (page + 1) * 0x9e3779b97f4a7c15ULL ^ (ver << 32), i;

	for (i = 0; i < WORDS; i++) {
		if (page % 3 == 0 || (page >= 250 && page < 300)) {
			w[i] = 0x2020202065676170ULL ^ (page << 8) ^ ver ^ (i % 7);	/* compressible */
		} else {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			w[i] = x;
		}
	}
}

static bool holds(const uint64_t *w, uint64_t page, uint64_t ver)
{
	uint64_t want[WORDS];

	fill(want, page, ver);
	return !memcmp(w, want, PAGE);
}

static struct ovc_vm *make_vm(const char *name, uint64_t npages, uint64_t **base)
{
	struct ovc_vm *vm = ovc_vm_new(host, name);
	void *hva;

	cr_assert_not_null(vm);
	cr_assert_eq(ovc_vm_add_ram(vm, 0, npages * PAGE, &hva), 0);
	*base = hva;
	return vm;
}

static int state_of(struct ovc_vm *vm, uint64_t page)
{
	return ovc_vm_page_state(vm, page * PAGE, NULL);
}

/* Put page @gfn (not resident) into @state with a transition. */
static void set_state(struct ovc_vm *vm, uint64_t gfn, unsigned int state, uint64_t handle)
{
	struct ovc_xact x;

	cr_assert_eq(ovc__xact_begin(&x, vm->ram, gfn, 1, OVC_XACT_WAIT), 0);
	ovc__xact_set(&x, 0, state, handle, NULL);
	cr_assert_eq(ovc__xact_commit(&x), 0);
}

static void write_pages(uint64_t *base, uint64_t from, uint64_t n, uint64_t ver)
{
	uint64_t i;

	for (i = from; i < from + n; i++)
		fill(base + i * WORDS, i, ver);
}

static void check_pages(uint64_t *base, uint64_t from, uint64_t n, uint64_t ver)
{
	uint64_t i;

	for (i = from; i < from + n; i++)
		cr_assert(holds(base + i * WORDS, i, ver), "page %llu differs", (unsigned long long)i);
}

static void check_zero(uint64_t *base, uint64_t from, uint64_t n)
{
	uint64_t i;

	for (i = from; i < from + n; i++)
		cr_assert(ovc__page_is_zero(base + i * WORDS), "page %llu not zero",
			  (unsigned long long)i);
}

static void wait_restored(struct ovc_vm *vm)
{
	struct ovc_restore_stats rs;

	cr_assert_eq(ovc_vm_restore_wait(vm, 60000), 0);
	cr_assert_eq(ovc_vm_restore_get_stats(vm, &rs), 0);
	cr_assert_eq(rs.remaining, 0);
	cr_assert_eq(rs.image_open, 0);
	cr_assert_eq(rs.streaming, 0);
	cr_assert_gt(rs.resident_ns, 0);
	cr_assert_eq(rs.lazy + rs.streamed, rs.data_pages);
	cr_assert_eq(rs.checksum_failures, 0);
}


/*
 * A sharing pool for the test: SHARED pages are mapped from a file, so the
 * store says where each page lives (backing). Handles are 1-based slots.
 */
struct pool {
	int fd;
	uint64_t next;
};

static int pool_load(void *opaque, struct ovc_ram *ram, uint64_t gfn, uint64_t handle, void *dst)
{
	struct pool *pl = opaque;

	return pread(pl->fd, dst, PAGE, (off_t)((handle - 1) * PAGE)) == PAGE ? 0 : -EIO;
}

static void pool_release(void *opaque, struct ovc_ram *ram, uint64_t gfn, uint64_t handle)
{
}

static int pool_backing(void *opaque, uint64_t handle, int *fd, uint64_t *off)
{
	struct pool *pl = opaque;

	*fd = pl->fd;
	*off = (handle - 1) * PAGE;
	return 0;
}

static const struct ovc_store_ops pool_ops = {
	.load = pool_load,
	.release = pool_release,
	.backing = pool_backing,
};

static uint64_t pool_save(struct pool *pl, const void *page)
{
	uint64_t h = ++pl->next;

	cr_assert_eq(pwrite(pl->fd, page, PAGE, (off_t)((h - 1) * PAGE)), PAGE);
	return h;
}

/*
 * Pages 0..99 resident data, 100..149 resident but zero, 150..199 holes,
 * 200..249 ballooned, 250..299 in the compressed tier, 300..349 swapped,
 * 350..399 in a SHARED store: every state saved, and back after restore.
 */
Test(snapshot, round_trip_every_state)
{
	const uint64_t n = 512;
	struct ovc_save_stats ss;
	struct ovc_restore_stats rs;
	struct ovc_pager_config pc;
	struct pool pl = { .fd = memfd_create("test-pool", MFD_CLOEXEC) };
	uint64_t *a, *b, i, h;
	struct ovc_vm *va = make_vm("a", n, &a), *vb = make_vm("b", n, &b);
	struct ovc_pager *p;
	struct ovc_pager_stats pst;
	char app[] = "vcpu state", back[64];
	size_t back_len = 0;

	ovc_pager_config_init(&pc);
	pc.swap_dir = dir;
	pc.swap_bytes = 1 << 20;
	p = ovc_vm_add_pager(va, &pc);
	cr_assert_not_null(p);
	cr_assert_geq(pl.fd, 0);
	cr_assert_eq(ftruncate(pl.fd, 64 * PAGE), 0);
	cr_assert_eq(ovc__ram_set_store(va->ram, OVC_PAGE_SHARED, &pool_ops, &pl), 0);

	write_pages(a, 0, 100, 1);
	write_pages(a, 250, 150, 1);
	memset(a + 100 * WORDS, 0, 50 * PAGE);
	for (i = 200; i < 250; i++)
		set_state(va, i, OVC_PAGE_BALLOONED, 0);
	/* 250..349 out through the pager: compressible ones to the tier, the others to disk. */
	{
		struct ovc_xact x;

		/* The tier takes what compresses; force a known split instead. */
		for (i = 300; i < 350; i++) {
			uint64_t handles[1];
			int errs[1];
			const void *pg[1] = { a + i * WORDS };

			cr_assert_eq(ovc__xact_begin(&x, va->ram, i, 1, OVC_XACT_WAIT), 0);
			(void)!ovc__swapfile_write(p->swap, pg, 1, handles, errs);
			cr_assert_eq(errs[0], 0);
			ovc__xact_set(&x, 0, OVC_PAGE_SWAPPED, handles[0], NULL);
			cr_assert_eq(ovc__xact_commit(&x), 0);
		}
		for (i = 250; i < 300; i++) {
			cr_assert_eq(ovc__xact_begin(&x, va->ram, i, 1, OVC_XACT_WAIT), 0);
			cr_assert_eq(ovc__zstore_put_ram(p->zip, va->ram, i, ovc__xact_hva(&x, 0), &h), 0);
			ovc__xact_set(&x, 0, OVC_PAGE_COMPRESSED, h, NULL);
			cr_assert_eq(ovc__xact_commit(&x), 0);
		}
		for (i = 350; i < 400; i++) {
			cr_assert_eq(ovc__xact_begin(&x, va->ram, i, 1, OVC_XACT_WAIT), 0);
			h = pool_save(&pl, ovc__xact_hva(&x, 0));
			ovc__xact_set(&x, 0, OVC_PAGE_SHARED, h, NULL);
			cr_assert_eq(ovc__xact_commit(&x), 0);
		}
	}
	cr_assert_eq(state_of(va, 0), OVC_PAGE_RESIDENT);
	cr_assert_eq(state_of(va, 260), OVC_PAGE_COMPRESSED);
	cr_assert_eq(state_of(va, 310), OVC_PAGE_SWAPPED);
	cr_assert_eq(state_of(va, 360), OVC_PAGE_SHARED);

	cr_assert_eq(ovc_vm_save(va, img, app, sizeof(app), &ss), 0);
	cr_assert_eq(ss.pages, n);
	cr_assert_eq(ss.data_pages, 100 + 150);
	cr_assert_eq(ss.ballooned_pages, 50);
	cr_assert_eq(ss.zero_pages, n - 250 - 50);
	/* Zero and ballooned pages cost a table entry, not a page. */
	cr_assert_eq(ss.file_bytes, 4096 + n * 16 + 250 * PAGE + sizeof(app));
	/* The save changed nothing. */
	cr_assert_eq(state_of(va, 260), OVC_PAGE_COMPRESSED);
	cr_assert_eq(state_of(va, 310), OVC_PAGE_SWAPPED);
	cr_assert_eq(state_of(va, 360), OVC_PAGE_SHARED);
	cr_assert_eq(state_of(va, 220), OVC_PAGE_BALLOONED);
	/* Not even through the pager's prefetcher (it only follows the guest's faults). */
	usleep(100000);
	for (i = 300; i < 350; i++)
		cr_assert_eq(state_of(va, i), OVC_PAGE_SWAPPED, "page %llu", (unsigned long long)i);
	cr_assert_eq(ovc_pager_get_stats(p, &pst), 0);
	cr_assert_eq(pst.prefetched, 0);

	cr_assert_eq(ovc_vm_restore(vb, img, back, sizeof(back), &back_len), 0);
	cr_assert_eq(back_len, sizeof(app));
	cr_assert_str_eq(back, app);
	cr_assert_eq(ovc_vm_restore_get_stats(vb, &rs), 0);
	cr_assert_eq(rs.data_pages, 250);
	cr_assert_eq(state_of(vb, 120), OVC_PAGE_ZERO);
	cr_assert_eq(state_of(vb, 160), OVC_PAGE_ZERO);
	cr_assert_eq(state_of(vb, 220), OVC_PAGE_BALLOONED);
	check_pages(b, 0, 100, 1);
	check_zero(b, 100, 100);
	check_pages(b, 250, 150, 1);
	wait_restored(vb);
	check_pages(b, 0, 100, 1);
	check_pages(b, 250, 150, 1);
	cr_assert_eq(state_of(vb, 220), OVC_PAGE_BALLOONED);
	cr_assert_eq(ovc_vm_destroy(va), 0);
	cr_assert_eq(ovc_vm_destroy(vb), 0);
	close(pl.fd);
}

/* A VM still restoring (IMAGE pages) saves through the image store; two ranges. */
Test(snapshot, save_while_restoring_two_ranges)
{
	const uint64_t n = 4096;
	struct ovc_vm *va = ovc_vm_new(host, "a"), *vb = ovc_vm_new(host, "b"),
		      *vc = ovc_vm_new(host, "c");
	void *ha, *ha2, *hb, *hb2, *hc, *hc2;
	char other[160];

	snprintf(other, sizeof(other), "%s/other.img", dir);
	cr_assert_eq(ovc_vm_add_ram(va, 0, n * PAGE, &ha), 0);
	cr_assert_eq(ovc_vm_add_ram(va, 1ULL << 32, 64 * PAGE, &ha2), 0);
	cr_assert_eq(ovc_vm_add_ram(vb, 0, n * PAGE, &hb), 0);
	cr_assert_eq(ovc_vm_add_ram(vb, 1ULL << 32, 64 * PAGE, &hb2), 0);
	cr_assert_eq(ovc_vm_add_ram(vc, 0, n * PAGE, &hc), 0);
	cr_assert_eq(ovc_vm_add_ram(vc, 1ULL << 32, 64 * PAGE, &hc2), 0);
	write_pages(ha, 0, n, 3);
	write_pages(ha2, 0, 64, 4);

	cr_assert_eq(ovc_vm_save(va, img, NULL, 0, NULL), 0);
	cr_assert_eq(ovc_vm_restore(vb, img, NULL, 0, NULL), 0);
	/* Right away, while the stream runs: IMAGE pages are read through the store. */
	cr_assert_eq(ovc_vm_save(vb, other, NULL, 0, NULL), 0);
	cr_assert_eq(ovc_vm_restore(vc, other, NULL, 0, NULL), 0);
	check_pages(hc, 0, n, 3);
	check_pages(hc2, 0, 64, 4);
	wait_restored(vc);
	wait_restored(vb);
	check_pages(hb, 0, n, 3);
	check_pages(hb2, 0, 64, 4);
	/* A second restore once the first is over replaces the VM's RAM again. */
	write_pages(hb, 0, 16, 9);
	cr_assert_eq(ovc_vm_restore(vb, other, NULL, 0, NULL), 0);
	check_pages(hb, 0, n, 3);
	wait_restored(vb);
	cr_assert_eq(ovc_vm_destroy(va), 0);
	cr_assert_eq(ovc_vm_destroy(vb), 0);
	cr_assert_eq(ovc_vm_destroy(vc), 0);
}

struct toucher {
	uint64_t *base;
	uint64_t npages;
	uint64_t seed;
	uint64_t bad;
	pthread_mutex_t *locks;		/* per page: shadow version below */
	uint64_t *ver;
	bool write;
	_Atomic bool *stop;
	uint64_t touches;
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Reads (and writes) random pages against a shadow version, as a vCPU would. */
static void *touch(void *arg)
{
	struct toucher *t = arg;

	while (!atomic_load(t->stop)) {
		uint64_t i = rnd(&t->seed) % t->npages, *w = t->base + i * WORDS;

		pthread_mutex_lock(&t->locks[i]);
		if (!holds(w, i, t->ver[i]))
			t->bad++;
		if (t->write && rnd(&t->seed) % 4 == 0) {
			t->ver[i]++;
			fill(w, i, t->ver[i]);
		}
		pthread_mutex_unlock(&t->locks[i]);
		t->touches++;
	}
	return NULL;
}

static void race(bool write)
{
	const uint64_t n = 16384;
	struct toucher t[3];
	pthread_t th[3];
	pthread_mutex_t *locks = calloc(n, sizeof(*locks));
	uint64_t *ver = calloc(n, sizeof(*ver)), *a, *b, i, bad = 0;
	struct ovc_vm *va = make_vm("a", n, &a), *vb = make_vm("b", n, &b);
	struct ovc_restore_stats rs;
	_Atomic bool stop = false;
	unsigned int k;

	cr_assert(locks && ver);
	for (i = 0; i < n; i++) {
		pthread_mutex_init(&locks[i], NULL);
		ver[i] = 1;
	}
	write_pages(a, 0, n, 1);
	cr_assert_eq(ovc_vm_save(va, img, NULL, 0, NULL), 0);
	cr_assert_eq(ovc_vm_destroy(va), 0);

	cr_assert_eq(ovc_vm_restore(vb, img, NULL, 0, NULL), 0);
	for (k = 0; k < 3; k++) {
		t[k] = (struct toucher){ .base = b, .npages = n, .seed = 77 + k, .locks = locks,
					 .ver = ver, .write = write, .stop = &stop };
		cr_assert_eq(pthread_create(&th[k], NULL, touch, &t[k]), 0);
	}
	cr_assert_eq(ovc_vm_restore_wait(vb, 60000), 0);
	usleep(20000);
	atomic_store(&stop, true);
	for (k = 0; k < 3; k++) {
		pthread_join(th[k], NULL);
		bad += t[k].bad;
	}
	cr_assert_eq(bad, 0, "%llu pages read wrong", (unsigned long long)bad);
	for (i = 0; i < n; i++)
		cr_assert(holds(b + i * WORDS, i, ver[i]), "page %llu differs", (unsigned long long)i);
	cr_assert_eq(ovc_vm_restore_get_stats(vb, &rs), 0);
	cr_assert_eq(rs.lazy + rs.streamed, n);
	cr_assert_gt(rs.lazy, 0, "no page was read on first touch");
	cr_assert_gt(rs.streamed, 0, "no page was streamed");
	cr_assert_eq(rs.remaining, 0);
	cr_assert_eq(rs.image_open, 0);
	cr_log_info("lazy %llu streamed %llu (prefetched %llu) in %.1f ms",
		    (unsigned long long)rs.lazy, (unsigned long long)rs.streamed,
		    (unsigned long long)rs.prefetched, rs.resident_ns / 1e6);
	cr_assert_eq(ovc_vm_destroy(vb), 0);
	for (i = 0; i < n; i++)
		pthread_mutex_destroy(&locks[i]);
	free(locks);
	free(ver);
}

/* First-touch faults and the stream take the same pages at once; every read is right. */
Test(snapshot, lazy_faults_race_the_stream)
{
	race(false);
}

/* Restore while pages are read and rewritten (a shadow version per page, as the oracle). */
Test(snapshot, restore_under_concurrent_writers)
{
	race(true);
}

struct fatal_log {
	_Atomic unsigned int calls;
	_Atomic uint64_t gfn;
	_Atomic int err;
};

static void on_fatal(void *opaque, uint64_t gfn, int err)
{
	struct fatal_log *f = opaque;

	atomic_store(&f->gfn, gfn);
	atomic_store(&f->err, err);
	atomic_fetch_add(&f->calls, 1);
}

static void corrupt_slot(uint64_t slot, uint64_t npages)
{
	int fd = open(img, O_RDWR);
	uint64_t off = (4096 + npages * 16 + PAGE - 1) / PAGE * PAGE + slot * PAGE + 100;
	uint8_t c;

	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, &c, 1, (off_t)off), 1);
	c ^= 0x5a;
	cr_assert_eq(pwrite(fd, &c, 1, (off_t)off), 1);
	close(fd);
}

/* A damaged page in the image goes to the fatal handler and is poisoned: never zeros. */
Test(snapshot, corrupt_page_is_fatal_when_touched)
{
	const uint64_t n = 256;
	struct fatal_log f = { 0 };
	struct ovc_restore_stats rs;
	uint64_t *a, *b;
	struct ovc_vm *va = make_vm("a", n, &a), *vb = make_vm("b", n, &b);

	write_pages(a, 0, n, 1);
	cr_assert_eq(ovc_vm_save(va, img, NULL, 0, NULL), 0);
	corrupt_slot(40, n);
	cr_assert_eq(ovc_vm_set_fatal_handler(vb, on_fatal, &f), 0);
	cr_assert_eq(ovc_vm_restore(vb, img, NULL, 0, NULL), 0);
	/* Touched first: the fault engine reports and poisons it. */
	cr_assert_eq(sigbus_probe(b + 40 * WORDS), 1);
	cr_assert_geq(atomic_load(&f.calls), 1);
	cr_assert_eq(atomic_load(&f.gfn), 40);
	cr_assert_eq(atomic_load(&f.err), -EBADMSG);
	cr_assert_eq(ovc_vm_restore_wait(vb, 60000), 0);
	cr_assert_eq(ovc_vm_restore_get_stats(vb, &rs), 0);
	cr_assert_geq(rs.checksum_failures, 1);
	cr_assert_eq(rs.remaining, 1);
	cr_assert_eq(rs.image_open, 1);	/* the lost page keeps it */
	cr_assert_eq(state_of(vb, 40), OVC_PAGE_IMAGE);
	cr_assert_eq(sigbus_probe(b + 40 * WORDS), 1);
	check_pages(b, 0, 40, 1);
	check_pages(b, 41, n - 41, 1);
	/* The lost page cannot be saved either. */
	cr_assert_eq(ovc_vm_save(vb, img, NULL, 0, NULL), -EIO);
	cr_assert_eq(ovc_vm_destroy(va), 0);
	cr_assert_eq(ovc_vm_destroy(vb), 0);
}

/* Found by the stream before any touch: reported at once, still poisoned on touch. */
Test(snapshot, corrupt_page_found_by_the_stream)
{
	const uint64_t n = 256;
	struct fatal_log f = { 0 };
	struct ovc_restore_stats rs;
	uint64_t *a, *b;
	struct ovc_vm *va = make_vm("a", n, &a), *vb = make_vm("b", n, &b);

	write_pages(a, 0, n, 1);
	cr_assert_eq(ovc_vm_save(va, img, NULL, 0, NULL), 0);
	corrupt_slot(200, n);
	cr_assert_eq(ovc_vm_set_fatal_handler(vb, on_fatal, &f), 0);
	cr_assert_eq(ovc_vm_restore(vb, img, NULL, 0, NULL), 0);
	cr_assert_eq(ovc_vm_restore_wait(vb, 60000), 0);
	cr_assert_eq(atomic_load(&f.calls), 1);
	cr_assert_eq(atomic_load(&f.gfn), 200);
	cr_assert_eq(ovc_vm_restore_get_stats(vb, &rs), 0);
	cr_assert_eq(rs.checksum_failures, 1);
	cr_assert_eq(rs.streamed, n - 1);
	cr_assert_eq(sigbus_probe(b + 200 * WORDS), 1);
	cr_assert_eq(atomic_load(&f.calls), 2);
	check_pages(b, 0, 200, 1);
	cr_assert_eq(ovc_vm_destroy(va), 0);
	cr_assert_eq(ovc_vm_destroy(vb), 0);
}

static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static void *read_file(const char *path, size_t *len)
{
	struct stat sb;
	void *buf;
	int fd = open(path, O_RDONLY);

	cr_assert_geq(fd, 0);
	cr_assert_eq(fstat(fd, &sb), 0);
	buf = malloc((size_t)sb.st_size);
	cr_assert_eq(read(fd, buf, (size_t)sb.st_size), sb.st_size);
	close(fd);
	*len = (size_t)sb.st_size;
	return buf;
}

/* Restoring @path must fail with @want and leave vb exactly as it was. */
static void refused(struct ovc_vm *vb, uint64_t *b, uint64_t n, const char *path, int want)
{
	char app[64];
	struct ovc_restore_stats rs;

	cr_assert_eq(ovc_vm_restore(vb, path, app, sizeof(app), NULL), want, "%s", path);
	check_pages(b, 0, n, 7);
	cr_assert_eq(state_of(vb, 0), OVC_PAGE_RESIDENT);
	cr_assert_eq(ovc_vm_restore_get_stats(vb, &rs), -ENOENT);
}

Test(snapshot, bad_images_change_nothing)
{
	const uint64_t n = 64;
	uint64_t *a, *b, *c;
	struct ovc_vm *va = make_vm("a", n, &a), *vb = make_vm("b", n, &b),
		      *vc = make_vm("c", 2 * n, &c);
	uint8_t *buf, *bad;
	size_t len;
	char other[160], big[128];

	snprintf(other, sizeof(other), "%s/other.img", dir);
	write_pages(a, 0, n, 1);
	write_pages(b, 0, n, 7);
	memset(big, 'x', sizeof(big));
	cr_assert_eq(ovc_vm_save(va, img, big, sizeof(big), NULL), 0);
	buf = read_file(img, &len);
	bad = malloc(len);

	refused(vb, b, n, "/nonexistent/vm.img", -ENOENT);
	/* The blob does not fit the caller's buffer. */
	refused(vb, b, n, img, -EMSGSIZE);
	cr_assert_eq(ovc_vm_save(va, img, "ok", 2, NULL), 0);
	free(buf);
	buf = read_file(img, &len);
	bad = realloc(bad, len);

	write_file(other, buf, 0);
	refused(vb, b, n, other, -EINVAL);		/* empty */
	write_file(other, buf, 100);
	refused(vb, b, n, other, -EINVAL);		/* a piece of header */
	write_file(other, buf, len - 1);
	refused(vb, b, n, other, -EINVAL);		/* truncated */
	memcpy(bad, buf, len);
	bad[len - 1] ^= 1;
	write_file(other, bad, len);
	refused(vb, b, n, other, -EINVAL);		/* blob damaged */
	memset(bad, 0xa5, len);
	write_file(other, bad, len);
	refused(vb, b, n, other, -EINVAL);		/* garbage */
	memcpy(bad, buf, len);
	bad[8] = 2;					/* version: header checksum fails */
	write_file(other, bad, len);
	refused(vb, b, n, other, -EINVAL);
	memcpy(bad, buf, len);
	bad[4096 + 5 * 16] ^= 3;			/* a table entry's kind */
	write_file(other, bad, len);
	refused(vb, b, n, other, -EINVAL);
	memcpy(bad, buf, len);
	bad[4096 + 5 * 16 + 8] ^= 3;			/* a table entry's checksum */
	write_file(other, bad, len);
	refused(vb, b, n, other, -EINVAL);
	/* Another RAM layout. */
	write_pages(c, 0, 2 * n, 7);
	cr_assert_eq(ovc_vm_restore(vc, img, NULL, 16, NULL), -EINVAL);
	check_pages(c, 0, 2 * n, 7);
	/* Bad arguments. */
	cr_assert_eq(ovc_vm_restore(NULL, img, NULL, 0, NULL), -EINVAL);
	cr_assert_eq(ovc_vm_restore(vb, NULL, NULL, 0, NULL), -EINVAL);
	cr_assert_eq(ovc_vm_save(NULL, img, NULL, 0, NULL), -EINVAL);
	cr_assert_eq(ovc_vm_save(va, "", NULL, 0, NULL), -EINVAL);
	cr_assert_eq(ovc_vm_save(va, img, NULL, 5, NULL), -EINVAL);
	cr_assert_eq(ovc_vm_save(va, "/nonexistent/dir/vm.img", NULL, 0, NULL), -ENOENT);
	cr_assert_eq(ovc_vm_restore_wait(vb, 0), -ENOENT);
	/* And the good image still restores. */
	cr_assert_eq(ovc_vm_restore(vb, img, bad, len, NULL), 0);
	check_pages(b, 0, n, 1);
	wait_restored(vb);
	free(buf);
	free(bad);
	cr_assert_eq(ovc_vm_destroy(va), 0);
	cr_assert_eq(ovc_vm_destroy(vb), 0);
	cr_assert_eq(ovc_vm_destroy(vc), 0);
}

/* A VM destroyed in the middle of its restore stops the stream first. */
Test(snapshot, destroy_while_streaming)
{
	const uint64_t n = 32768;
	uint64_t *a, *b;
	struct ovc_vm *va = make_vm("a", n, &a), *vb = make_vm("b", n, &b);

	write_pages(a, 0, n, 1);
	cr_assert_eq(ovc_vm_save(va, img, NULL, 0, NULL), 0);
	cr_assert_eq(ovc_vm_restore(vb, img, NULL, 0, NULL), 0);
	check_pages(b, n - 10, 10, 1);
	cr_assert_eq(ovc_vm_destroy(vb), 0);
	cr_assert_eq(ovc_vm_destroy(va), 0);
}
