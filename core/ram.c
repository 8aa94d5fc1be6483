// SPDX-License-Identifier: MIT
/* core/ram.c: guest RAM ranges (memfd + mapping + sparse page table) and the VM's userfaultfd. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/core-internal.h"
#include "core/uffd.h"
#include "core/uffd.h"

_Static_assert(sizeof(_Atomic uint64_t) == 8, "page-table entry is 8 bytes");
_Static_assert(OVC_PAGE_NR_STATES <= OVC_PTE_STATE_MASK + 1, "states fit the entry");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
	       "futex waits on the entry's low 32 bits");

static int open_uffd(const struct ovc_log *log)
{
	int fd, dev;

	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0)
		return fd;
	if (errno != EPERM)
		return -errno;
	/* Refused by vm.unprivileged_userfaultfd: /dev/userfaultfd may be open to us. */
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		ovc__err(log, "userfaultfd refused (need CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=1 or access to /dev/userfaultfd)");
		return -EPERM;
	}
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		fd = -errno;
	close(dev);
	return fd;
}

struct ovc_ram *ovc__ram_new(const struct ovc_log *log)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_MINOR_SHMEM,
	};
	struct ovc_ram *ram;
	int ret;

	ram = calloc(1, sizeof(*ram));
	if (!ram)
		return NULL;
	ram->log = log;
	ram->engine_slot = -1;
	ret = open_uffd(log);
	if (ret < 0)
		goto err_free;
	ram->uffd = ret;
	ram->minor = true;
	if (ioctl(ram->uffd, UFFDIO_API, &api) < 0) {
		/* Without minor faults pages cannot be armed; everything else works. */
		close(ram->uffd);
		ret = open_uffd(log);
		if (ret < 0)
			goto err_free;
		ram->uffd = ret;
		ram->minor = false;
		api.api = UFFD_API;
		api.features = UFFD_FEATURE_WP_HUGETLBFS_SHMEM;
		if (ioctl(ram->uffd, UFFDIO_API, &api) < 0) {
			ret = -errno;
			ovc__err(log, "userfaultfd: write-protect of shared memory is not supported by this kernel (%s)",
				 strerror(-ret));
			goto err_close_uffd;
		}
		ovc__info(log, "userfaultfd: no minor faults on shared memory; pages cannot be armed for reference tracking");
	}
	ram->uffd_features = api.features;
	ret = pthread_mutex_init(&ram->lock, NULL);
	if (ret) {
		ret = -ret;
		goto err_close_uffd;
	}
	/* Only shared pages need it (to see a copy-on-write): optional. */
	ram->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	return ram;

err_close_uffd:
	close(ram->uffd);
err_free:
	free(ram);
	errno = -ret;
	return NULL;
}

void ovc__ram_destroy(struct ovc_ram *ram)
{
	unsigned int i, n;

	if (!ram)
		return;
	n = atomic_load_explicit(&ram->nregions, memory_order_acquire);
	for (i = 0; i < n; i++) {
		struct ovc_region *rg = &ram->regions[i];

		munmap(rg->hva, rg->size);
		munmap((void *)rg->pt, rg->pt_bytes);
		close(rg->memfd);
	}
	close(ram->uffd);
	if (ram->pagemap_fd >= 0)
		close(ram->pagemap_fd);
	pthread_mutex_destroy(&ram->lock);
	free(ram);
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Called with ram->lock held. */
static int check_range(struct ovc_ram *ram, uint64_t gpa, uint64_t size)
{
	unsigned int i, n = atomic_load_explicit(&ram->nregions, memory_order_relaxed);

	if (size == 0) {
		ovc__err(ram->log, "add_ram: size is zero");
		return -EINVAL;
	}
	if ((gpa | size) & (OVC_PAGE_SIZE - 1)) {
		ovc__err(ram->log, "add_ram: gpa 0x%llx size 0x%llx not aligned to %lu bytes",
			 (unsigned long long)gpa, (unsigned long long)size, OVC_PAGE_SIZE);
		return -EINVAL;
	}
	if (gpa >= OVC_GPA_LIMIT || size > OVC_GPA_LIMIT - gpa) {
		ovc__err(ram->log, "add_ram: range 0x%llx+0x%llx ends beyond the 52-bit guest-physical space",
			 (unsigned long long)gpa, (unsigned long long)size);
		return -EINVAL;
	}
	if (n >= OVC_VM_RAM_RANGES_MAX) {
		ovc__err(ram->log, "add_ram: already %u ranges, the most a VM may have", n);
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		struct ovc_region *rg = &ram->regions[i];

		if (ranges_overlap(gpa, size, rg->gpa, rg->size)) {
			ovc__err(ram->log, "add_ram: range 0x%llx+0x%llx overlaps 0x%llx+0x%llx",
				 (unsigned long long)gpa, (unsigned long long)size,
				 (unsigned long long)rg->gpa, (unsigned long long)rg->size);
			return -EINVAL;
		}
	}
	if (size > OVC_VM_RAM_MAX - ram->total_bytes) {
		ovc__err(ram->log, "add_ram: %llu bytes would take the VM past its %llu-byte limit",
			 (unsigned long long)size, (unsigned long long)OVC_VM_RAM_MAX);
		return -ENOMEM;
	}
	return 0;
}

int ovc__ram_add_range(struct ovc_ram *ram, uint64_t gpa, uint64_t size, void **hva)
{
	struct uffdio_register reg;
	struct ovc_region *rg;
	unsigned int n;
	void *p;
	int ret;

	if (!ram || !hva)
		return -EINVAL;
	pthread_mutex_lock(&ram->lock);
	ret = check_range(ram, gpa, size);
	if (ret)
		goto out;

	n = atomic_load_explicit(&ram->nregions, memory_order_relaxed);
	rg = &ram->regions[n];
	memset(rg, 0, sizeof(*rg));
	rg->gpa = gpa;
	rg->size = size;
	rg->npages = size >> OVC_PAGE_SHIFT;
	rg->gfn0 = gpa >> OVC_PAGE_SHIFT;

	rg->memfd = memfd_create("ovc-guest-ram", MFD_CLOEXEC);
	if (rg->memfd < 0) {
		ret = -errno;
		ovc__err(ram->log, "add_ram: memfd_create: %s", strerror(-ret));
		goto out;
	}
	if (ftruncate(rg->memfd, (off_t)size) < 0) {
		ret = -errno;
		ovc__err(ram->log, "add_ram: ftruncate %llu: %s",
			 (unsigned long long)size, strerror(-ret));
		goto err_close_memfd;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
		 rg->memfd, 0);
	if (p == MAP_FAILED) {
		ret = -errno;
		ovc__err(ram->log, "add_ram: mmap %llu bytes: %s",
			 (unsigned long long)size, strerror(-ret));
		goto err_close_memfd;
	}
	rg->hva = p;
	/* A forked child must not inherit guest RAM or its userfaults. */
	madvise(rg->hva, size, MADV_DONTFORK);
	/*
	 * Pages move one by one: a huge page collapsed by khugepaged would hide
	 * 4 KiB hole punches from the fault engine.
	 */
	madvise(rg->hva, size, MADV_NOHUGEPAGE);

	/* Sparse: untouched entries are the kernel's zero page, i.e. ZERO. */
	rg->pt_bytes = rg->npages * sizeof(uint64_t);
	p = mmap(NULL, rg->pt_bytes, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		ret = -errno;
		ovc__err(ram->log, "add_ram: page table of %llu entries: %s",
			 (unsigned long long)rg->npages, strerror(-ret));
		goto err_unmap_ram;
	}
	rg->pt = p;

	memset(&reg, 0, sizeof(reg));
	reg.range.start = (uintptr_t)rg->hva;
	reg.range.len = size;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP;
	if (ram->minor)
		reg.mode |= UFFDIO_REGISTER_MODE_MINOR;
	if (ioctl(ram->uffd, UFFDIO_REGISTER, &reg) < 0) {
		ret = -errno;
		ovc__err(ram->log, "add_ram: userfaultfd register (missing+wp%s): %s",
			 ram->minor ? "+minor" : "", strerror(-ret));
		goto err_unmap_pt;
	}

	__atomic_store_n(&ram->total_bytes, ram->total_bytes + size, __ATOMIC_RELAXED);
	atomic_fetch_add_explicit(&ram->pages[OVC_PAGE_ZERO], rg->npages,
				  memory_order_relaxed);
	/* Publish: lock-free lookups see a complete region. */
	atomic_store_explicit(&ram->nregions, n + 1, memory_order_release);
	*hva = rg->hva;
	ret = 0;
	goto out;

err_unmap_pt:
	munmap((void *)rg->pt, rg->pt_bytes);
err_unmap_ram:
	munmap(rg->hva, size);
err_close_memfd:
	close(rg->memfd);
out:
	pthread_mutex_unlock(&ram->lock);
	return ret;
}

int ovc__ram_set_store(struct ovc_ram *ram, unsigned int state,
		       const struct ovc_store_ops *ops, void *opaque)
{
	if (!ram || (state != OVC_PAGE_COMPRESSED && state != OVC_PAGE_SWAPPED &&
		     state != OVC_PAGE_SHARED && state != OVC_PAGE_IMAGE))
		return -EINVAL;
	if (ops && (!ops->load || !ops->release))
		return -EINVAL;
	pthread_mutex_lock(&ram->lock);
	/* Handlers read ops and opaque without a lock: never swap a store in use. */
	if (ram->stores[state].ops &&
	    atomic_load_explicit(&ram->pages[state], memory_order_relaxed)) {
		pthread_mutex_unlock(&ram->lock);
		return -EBUSY;
	}
	ram->stores[state].opaque = opaque;
	__atomic_store_n(&ram->stores[state].ops, ops, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&ram->lock);
	return 0;
}

void ovc__ram_set_fatal(struct ovc_ram *ram, ovc_fatal_fn fn, void *opaque)
{
	pthread_mutex_lock(&ram->lock);
	ram->fatal_fn = fn;
	ram->fatal_opaque = opaque;
	pthread_mutex_unlock(&ram->lock);
}

struct ovc_region *ovc__ram_region_gfn(struct ovc_ram *ram, uint64_t gfn)
{
	unsigned int i, n = atomic_load_explicit(&ram->nregions, memory_order_acquire);

	for (i = 0; i < n; i++) {
		struct ovc_region *rg = &ram->regions[i];

		if (gfn >= rg->gfn0 && gfn - rg->gfn0 < rg->npages)
			return rg;
	}
	return NULL;
}

struct ovc_region *ovc__ram_region_hva(struct ovc_ram *ram, uintptr_t hva)
{
	unsigned int i, n = atomic_load_explicit(&ram->nregions, memory_order_acquire);

	for (i = 0; i < n; i++) {
		struct ovc_region *rg = &ram->regions[i];

		if (hva >= (uintptr_t)rg->hva && hva - (uintptr_t)rg->hva < rg->size)
			return rg;
	}
	return NULL;
}

_Atomic uint64_t *ovc__ram_pte(struct ovc_ram *ram, uint64_t gfn)
{
	struct ovc_region *rg = ovc__ram_region_gfn(ram, gfn);

	return rg ? &rg->pt[gfn - rg->gfn0] : NULL;
}

void ovc__pte_account(struct ovc_ram *ram, uint64_t old, uint64_t new_e)
{
	unsigned int os = ovc__pte_state(old), ns = ovc__pte_state(new_e);

	if (os == ns)
		return;
	atomic_fetch_sub_explicit(&ram->pages[os], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&ram->pages[ns], 1, memory_order_relaxed);
}

int ovc__uffd_wake(struct ovc_ram *ram, uintptr_t start, size_t len)
{
	struct uffdio_range r = { .start = start, .len = len };

	return ioctl(ram->uffd, UFFDIO_WAKE, &r) < 0 ? -errno : 0;
}

int ovc__uffd_ioctl(struct ovc_ram *ram, unsigned long req, void *arg)
{
	int tries = 0;

	/* EAGAIN: the mm is changing under us (mremap/fork); it settles. */
	while (ioctl(ram->uffd, req, arg) < 0) {
		if (errno != EAGAIN || ++tries > 1000)
			return -errno;
		sched_yield();
	}
	return 0;
}

static int uffd_wp_mode(struct ovc_ram *ram, uintptr_t start, size_t len, __u64 mode)
{
	struct uffdio_writeprotect w = {
		.range = { .start = start, .len = len },
		.mode = mode,
	};

	return ovc__uffd_ioctl(ram, UFFDIO_WRITEPROTECT, &w);
}

int ovc__uffd_place(struct ovc_ram *ram, uintptr_t addr, const void *src)
{
	struct uffdio_zeropage z = {
		.range = { .start = addr, .len = OVC_PAGE_SIZE },
		.mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE,
	};
	struct uffdio_copy c = {
		.dst = addr,
		.src = (uintptr_t)src,
		.len = OVC_PAGE_SIZE,
		.mode = UFFDIO_COPY_MODE_DONTWAKE,
	};

	return src ? ovc__uffd_ioctl(ram, UFFDIO_COPY, &c) :
		     ovc__uffd_ioctl(ram, UFFDIO_ZEROPAGE, &z);
}

int ovc__uffd_wp(struct ovc_ram *ram, uintptr_t start, size_t len, bool wp)
{
	return uffd_wp_mode(ram, start, len, wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0);
}

int ovc__uffd_unwp_nowake(struct ovc_ram *ram, uintptr_t start, size_t len)
{
	return uffd_wp_mode(ram, start, len, UFFDIO_WRITEPROTECT_MODE_DONTWAKE);
}

void ovc__pte_unlock(struct ovc_ram *ram, struct ovc_region *rg, uint64_t gfn,
		     uint64_t new_e)
{
	_Atomic uint64_t *pte = &rg->pt[gfn - rg->gfn0];
	uint64_t old;

	new_e &= ~(OVC_PTE_BUSY | OVC_PTE_WAITERS);
	old = atomic_exchange_explicit(pte, new_e, memory_order_acq_rel);
	if (!(old & OVC_PTE_BUSY))
		OVC_BUG("gfn 0x%llx unlocked while not busy (entry 0x%llx)",
			(unsigned long long)gfn, (unsigned long long)old);
	atomic_fetch_sub_explicit(&ram->busy_pages, 1, memory_order_relaxed);
	if (old & OVC_PTE_WAITERS) {
		ovc__uffd_wake(ram, (uintptr_t)ovc__region_hva(rg, gfn), OVC_PAGE_SIZE);
		syscall(SYS_futex, (uint32_t *)pte, FUTEX_WAKE_PRIVATE, INT_MAX,
			NULL, NULL, 0);
	}
}

int ovc__ram_punch(struct ovc_ram *ram, struct ovc_region *rg, uint64_t gfn,
		   uint64_t npages)
{
	unsigned int left = atomic_load_explicit(&ram->inject_punch_count,
						 memory_order_relaxed);

	while (left) {
		if (atomic_compare_exchange_weak_explicit(&ram->inject_punch_count, &left,
							  left - 1, memory_order_relaxed,
							  memory_order_relaxed))
			return -atomic_load_explicit(&ram->inject_punch_errno,
						     memory_order_relaxed);
	}
	if (fallocate(rg->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)((gfn - rg->gfn0) << OVC_PAGE_SHIFT),
		      (off_t)(npages << OVC_PAGE_SHIFT)) < 0)
		return -errno;
	return 0;
}

int ovc__uffd_continue(struct ovc_ram *ram, uintptr_t addr, bool wp)
{
	struct uffdio_continue c = {
		.range = { .start = addr, .len = OVC_PAGE_SIZE },
		.mode = UFFDIO_CONTINUE_MODE_DONTWAKE | (wp ? OVC_UFFDIO_CONTINUE_MODE_WP : 0),
	};

	return ovc__uffd_ioctl(ram, UFFDIO_CONTINUE, &c);
}

int ovc__ram_zap(struct ovc_ram *ram, uintptr_t addr, size_t len)
{
	(void)ram;
	/* MAP_SHARED: only the page-table entries go; the memfd keeps the pages. */
	return madvise((void *)addr, len, MADV_DONTNEED) < 0 ? -errno : 0;
}

int ovc__ram_arm(struct ovc_ram *ram, uint64_t gfn, unsigned int flags)
{
	uint64_t bits = OVC_PTE_ARMED | (flags & OVC_ARM_SAMPLE ? OVC_PTE_SAMPLED : 0);
	struct ovc_region *rg;
	_Atomic uint64_t *pte;
	uint64_t e;
	int ret;

	if (!ram->minor)
		return -EOPNOTSUPP;
	rg = ovc__ram_region_gfn(ram, gfn);
	if (!rg)
		return -EINVAL;
	pte = &rg->pt[gfn - rg->gfn0];
	e = atomic_load_explicit(pte, memory_order_relaxed);
	do {
		if (e & OVC_PTE_BUSY)
			return -EBUSY;
		if (ovc__pte_state(e) != OVC_PAGE_RESIDENT)
			return -ENOENT;
	} while (!atomic_compare_exchange_weak_explicit(pte, &e, e | OVC_PTE_BUSY,
							memory_order_acquire,
							memory_order_relaxed));
	atomic_fetch_add_explicit(&ram->busy_pages, 1, memory_order_relaxed);
	/* BUSY keeps transitions out: nobody reads the page through the mapping now. */
	ret = ovc__ram_zap(ram, (uintptr_t)ovc__region_hva(rg, gfn), OVC_PAGE_SIZE);
	ovc__pte_unlock(ram, rg, gfn, ret ? e : e | bits);
	return ret;
}

#define PM_PRESENT (1ULL << 63)
#define PM_FILE (1ULL << 61)	/* file page or shared anonymous: not a private copy */

static int register_range(struct ovc_ram *ram, uintptr_t addr, size_t len, __u64 mode)
{
	struct uffdio_register reg = {
		.range = { .start = addr, .len = len },
		.mode = mode,
	};

	return ioctl(ram->uffd, UFFDIO_REGISTER, &reg) < 0 ? -errno : 0;
}

int ovc__ram_map_own(struct ovc_ram *ram, struct ovc_region *rg, uint64_t gfn,
		     unsigned int npages, const void *fill)
{
	uint8_t *addr = ovc__region_hva(rg, gfn);
	off_t off = (off_t)((gfn - rg->gfn0) << OVC_PAGE_SHIFT);
	size_t len = (size_t)npages << OVC_PAGE_SHIFT;
	void *p;
	int ret;

	if (fill && pwrite(rg->memfd, fill, len, off) != (ssize_t)len)
		return errno ? -errno : -EIO;
	/* The same flags as the range's mapping: the kernel merges it back in. */
	p = mmap(addr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE | MAP_FIXED,
		 rg->memfd, off);
	if (p == MAP_FAILED)
		return -errno;
	madvise(p, len, MADV_DONTFORK);
	madvise(p, len, MADV_NOHUGEPAGE);
	ret = register_range(ram, (uintptr_t)p, len, UFFDIO_REGISTER_MODE_MISSING |
			     UFFDIO_REGISTER_MODE_WP |
			     (ram->minor ? UFFDIO_REGISTER_MODE_MINOR : 0));
	/* The contents are in place either way: only faults would go unserved. */
	if (ret)
		ovc__err(ram->log, "remap gfn 0x%llx+%u: userfaultfd register: %s",
			 (unsigned long long)gfn, npages, strerror(-ret));
	return 0;
}

/* Whether every page of the run maps the file page (none was copied on write). */
static int all_file_pages(struct ovc_ram *ram, uintptr_t addr, unsigned int npages)
{
	uint64_t pm[64];
	unsigned int i, n;

	for (; npages; npages -= n, addr += (uintptr_t)n << OVC_PAGE_SHIFT) {
		n = npages < 64 ? npages : 64;
		if (pread(ram->pagemap_fd, pm, n * sizeof(pm[0]),
			  (off_t)(addr / OVC_PAGE_SIZE * sizeof(pm[0]))) != (ssize_t)(n * sizeof(pm[0])))
			return errno ? -errno : -EIO;
		for (i = 0; i < n; i++) {
			if ((pm[i] & (PM_PRESENT | PM_FILE)) != (PM_PRESENT | PM_FILE))
				return -EAGAIN;
		}
	}
	return 0;
}

int ovc__ram_map_foreign(struct ovc_ram *ram, struct ovc_region *rg, uint64_t gfn,
			 unsigned int npages, int fd, uint64_t off)
{
	uint8_t *addr = ovc__region_hva(rg, gfn);
	size_t len = (size_t)npages << OVC_PAGE_SHIFT;
	uint8_t *copy;
	void *p;
	int ret, r;

	if (ram->pagemap_fd < 0)
		return -EOPNOTSUPP;
	p = mmap(addr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE | MAP_FIXED,
		 fd, (off_t)off);
	if (p == MAP_FAILED)
		return -errno;	/* nothing was replaced */
	/* Like guest RAM, never in a child. (Pages of a file: no huge page.) */
	madvise(p, len, MADV_DONTFORK);
	ret = register_range(ram, (uintptr_t)p, len, UFFDIO_REGISTER_MODE_WP);
	if (!ret && madvise(p, len, MADV_POPULATE_READ) < 0)
		ret = -errno;
	if (!ret)
		ret = ovc__uffd_wp(ram, (uintptr_t)p, len, true);
	if (!ret)
		ret = all_file_pages(ram, (uintptr_t)p, npages);
	if (!ret)
		return 0;
	/*
	 * Failed, or a writer came through before the protection: what the
	 * guest sees now is the truth (the pool pages, or private copies).
	 */
	copy = aligned_alloc(OVC_PAGE_SIZE, len);
	if (!copy)
		OVC_BUG("no memory to restore gfn 0x%llx+%u", (unsigned long long)gfn, npages);
	memcpy(copy, p, len);
	r = ovc__ram_map_own(ram, rg, gfn, npages, copy);
	free(copy);
	if (r)
		OVC_BUG("gfn 0x%llx+%u: cannot restore guest RAM mapping: %s",
			(unsigned long long)gfn, npages, strerror(-r));
	return ret;
}

int ovc__ram_store_load(struct ovc_ram *ram, uint64_t gfn, uint64_t e, void *dst)
{
	unsigned int st = ovc__pte_state(e);
	const struct ovc_store_ops *ops;

	if (st >= OVC_PAGE_NR_STATES)
		return -EINVAL;
	ops = __atomic_load_n(&ram->stores[st].ops, __ATOMIC_ACQUIRE);
	if (!ops)
		return -ENOENT;
	return ops->load(ram->stores[st].opaque, ram, gfn, ovc__pte_payload(e), dst);
}

int ovc__ram_store_peek(struct ovc_ram *ram, uint64_t gfn, uint64_t e, void *dst)
{
	unsigned int st = ovc__pte_state(e);
	const struct ovc_store_ops *ops;

	if (st >= OVC_PAGE_NR_STATES)
		return -EINVAL;
	ops = __atomic_load_n(&ram->stores[st].ops, __ATOMIC_ACQUIRE);
	if (!ops)
		return -ENOENT;
	return (ops->peek ? ops->peek : ops->load)(ram->stores[st].opaque, ram, gfn,
						   ovc__pte_payload(e), dst);
}

void ovc__ram_store_release(struct ovc_ram *ram, uint64_t gfn, uint64_t e)
{
	unsigned int st = ovc__pte_state(e);
	const struct ovc_store_ops *ops;

	if (st >= OVC_PAGE_NR_STATES)
		return;
	ops = __atomic_load_n(&ram->stores[st].ops, __ATOMIC_ACQUIRE);
	if (ops)
		ops->release(ram->stores[st].opaque, ram, gfn, ovc__pte_payload(e));
}

void ovc__ram_get_stats(struct ovc_ram *ram, struct ovc_mem_stats *st)
{
	unsigned int r, n;
	int i;

	memset(st, 0, sizeof(*st));
	st->ram_bytes = __atomic_load_n(&ram->total_bytes, __ATOMIC_RELAXED);
	for (i = 0; i < OVC_PAGE_NR_STATES; i++)
		st->pages[i] = atomic_load_explicit(&ram->pages[i], memory_order_relaxed);
	st->busy_pages = atomic_load_explicit(&ram->busy_pages, memory_order_relaxed);
	for (i = 0; i < OVC_FAULT_NR_KINDS; i++)
		st->faults[i] = atomic_load_explicit(&ram->faults[i], memory_order_relaxed);
	for (i = 0; i < OVC_FAULT_HIST_BUCKETS; i++)
		st->fault_ns_hist[i] = atomic_load_explicit(&ram->fault_ns_hist[i],
							    memory_order_relaxed);
	st->transitions_committed = atomic_load_explicit(&ram->xact_committed,
							 memory_order_relaxed);
	st->transitions_aborted = atomic_load_explicit(&ram->xact_aborted,
						       memory_order_relaxed);
	st->store_errors = atomic_load_explicit(&ram->store_errors, memory_order_relaxed);

	/* What the host really holds: the memfds' allocated blocks. */
	n = atomic_load_explicit(&ram->nregions, memory_order_acquire);
	for (r = 0; r < n; r++) {
		struct stat sb;

		if (!fstat(ram->regions[r].memfd, &sb))
			st->host_bytes += (uint64_t)sb.st_blocks * 512;
	}
}
