// SPDX-License-Identifier: MIT
/* core/fault.c: the fault engine: handler threads serving the VMs' userfaultfds. */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <urcu/urcu-memb.h>

#include "core/core-internal.h"
#include "core/uffd.h"

#define ENGINE_MAX_RAMS 4096
#define ENGINE_STOP_KEY UINT64_MAX
#define MSGS_PER_READ 16
#define READS_PER_WAKEUP 8

/**
 * struct ovc_fault_engine - handler threads on one epoll set of userfaultfds.
 *
 * @lock protects slot allocation and epoll registration. @slots are RCU
 * pointers: a handler looks its RAM up by slot inside a read-side section, so
 * a detached RAM is never touched after ovc__fault_engine_detach() returns.
 */
struct ovc_fault_engine {
	const struct ovc_log *log;
	int epfd;
	int stopfd;
	pthread_mutex_t lock;		/* protects slot allocation, nattached */
	unsigned int nattached;
	struct ovc_ram *slots[ENGINE_MAX_RAMS];	/* RCU */
	unsigned int nthreads;
	pthread_t threads[];
};

static void count(struct ovc_ram *ram, enum ovc_fault_kind kind, uint64_t t0)
{
	atomic_fetch_add_explicit(&ram->faults[kind], 1, memory_order_relaxed);
	if (t0) {
		unsigned int b = ovc__hist_bucket(ovc__now_ns() - t0, OVC_FAULT_HIST_BUCKETS);

		atomic_fetch_add_explicit(&ram->fault_ns_hist[b], 1, memory_order_relaxed);
	}
}

/* Return true when the page now refuses every access. */
static bool poison_page(struct ovc_ram *ram, uintptr_t addr)
{
	/* Woken by the caller once the entry says POISONED. */
	struct uffdio_poison p = {
		.range = { .start = addr, .len = OVC_PAGE_SIZE },
		/* Woken by the caller once the entry says POISONED. */
		.mode = UFFDIO_POISON_MODE_DONTWAKE,
	};
	int ret = ovc__uffd_ioctl(ram, UFFDIO_POISON, &p);

	if (ret)
		ovc__err(ram->log, "fault: cannot poison page at %#lx (%s): its accessor will fault again",
			 (unsigned long)addr, strerror(-ret));
	return !ret;
}

/*
 * A missing fault on a page the table says is resident: usually a second
 * message for a page another handler just served. Called with the page BUSY
 * (so no transition can punch it meanwhile); drops BUSY.
 */
static void missing_on_resident(struct ovc_ram *ram, struct ovc_region *rg,
				uintptr_t addr, uint64_t gfn, uint64_t e, uint64_t t0)
{
	int ret = ovc__uffd_place(ram, addr, NULL);

	ovc__pte_unlock(ram, rg, gfn, e);
	if (ret == -EEXIST) {
		count(ram, OVC_FAULT_SPURIOUS, 0);
		ovc__uffd_wake(ram, addr, OVC_PAGE_SIZE);
		return;
	}
	/* Its memory was taken behind ovc's back (hole punched outside ovc). */
	ovc__err(ram->log, "fault: resident gfn 0x%llx was missing from guest RAM (%s); zero-filled",
		 (unsigned long long)gfn, ret ? strerror(-ret) : "removed outside ovc");
	count(ram, OVC_FAULT_ERROR, t0);
	ovc__uffd_wake(ram, addr, OVC_PAGE_SIZE);
}

#define LOAD_EAGAIN_TRIES 10

/* A few quick retries; a store that stays busy is retried by a new fault. */
static int load_with_retry(struct ovc_ram *ram, uint64_t gfn, uint64_t e, void *buf)
{
	int ret, tries = 0;

	while ((ret = ovc__ram_store_load(ram, gfn, e, buf)) == -EAGAIN &&
	       ++tries < LOAD_EAGAIN_TRIES)
		usleep(100);
	return ret;
}

static void serve_from_store(struct ovc_ram *ram, struct ovc_region *rg, uint64_t gfn,
			     uintptr_t addr, uint64_t e, void *buf, uint64_t t0)
{
	int ret = load_with_retry(ram, gfn, e, buf);

	if (ret == -EAGAIN) {
		/* Contents intact but not available yet: the woken thread faults again. */
		ovc__pte_unlock(ram, rg, gfn, e);
		count(ram, OVC_FAULT_WAIT, 0);
		ovc__uffd_wake(ram, addr, OVC_PAGE_SIZE);
		return;
	}
	if (ret) {
		atomic_fetch_add_explicit(&ram->store_errors, 1, memory_order_relaxed);
		ovc__err(ram->log, "fault: contents of gfn 0x%llx (%s) lost: %s; page poisoned",
			 (unsigned long long)gfn,
			 ovc_page_state_name((int)ovc__pte_state(e)), strerror(-ret));
		count(ram, OVC_FAULT_ERROR, t0);
		/* The VMM learns why before its vCPU sees the poisoned page. */
		if (ram->fatal_fn)
			ram->fatal_fn(ram->fatal_opaque, gfn, ret);
		/* Never silently zero: the entry and the stored copy stay. */
		if (poison_page(ram, addr))
			ovc__pte_unlock(ram, rg, gfn, e | OVC_PTE_POISONED);
		else
			ovc__pte_unlock(ram, rg, gfn, e);
		ovc__uffd_wake(ram, addr, OVC_PAGE_SIZE);
		return;
	}
	ret = ovc__uffd_place(ram, addr, buf);
	if (ret) {
		ovc__err(ram->log, "fault: copy into gfn 0x%llx: %s; page stays %s",
			 (unsigned long long)gfn, strerror(-ret),
			 ovc_page_state_name((int)ovc__pte_state(e)));
		ovc__pte_unlock(ram, rg, gfn, e);
		count(ram, OVC_FAULT_ERROR, t0);
		ovc__uffd_wake(ram, addr, OVC_PAGE_SIZE);
		return;
	}
	ovc__ram_store_release(ram, gfn, e);
	ovc__pte_account(ram, e, OVC_PAGE_RESIDENT);
	ovc__pte_unlock(ram, rg, gfn, ovc__pte_make(OVC_PAGE_RESIDENT, 0) |
				      OVC_PTE_ACCESSED);
	count(ram, OVC_FAULT_STORE, t0);
	/* Woken only now, so a resumed thread finds table and counters true. */
	ovc__uffd_wake(ram, addr, OVC_PAGE_SIZE);
}

/*
 * A write to a shared page: the page gets its own copy back in the VM's
 * memfd and mapping (copy-on-write by the engine, so the table stays true),
 * then the writer goes on. Called with the page BUSY; drops it.
 */
static void break_share(struct ovc_ram *ram, struct ovc_region *rg, uint64_t gfn,
			uintptr_t addr, uint64_t e, void *buf, uint64_t t0)
{
	int ret;

	/* Reading the pool page through the guest mapping: it is write-protected. */
	memcpy(buf, (const void *)addr, OVC_PAGE_SIZE);
	ret = ovc__ram_map_own(ram, rg, gfn, 1, buf);
	if (ret) {
		/* Still shared and intact; the writer faults again. */
		ovc__err(ram->log, "fault: break share of gfn 0x%llx: %s",
			 (unsigned long long)gfn, strerror(-ret));
		ovc__pte_unlock(ram, rg, gfn, e);
		count(ram, OVC_FAULT_ERROR, t0);
		ovc__uffd_wake(ram, addr, OVC_PAGE_SIZE);
		return;
	}
	ovc__ram_store_release(ram, gfn, e);
	atomic_fetch_add_explicit(&ram->cow_breaks, 1, memory_order_relaxed);
	ovc__pte_account(ram, e, OVC_PAGE_RESIDENT);
	ovc__pte_unlock(ram, rg, gfn, ovc__pte_make(OVC_PAGE_RESIDENT, 0) |
				      OVC_PTE_ACCESSED);
	count(ram, OVC_FAULT_WP, t0);
	ovc__uffd_wake(ram, addr, OVC_PAGE_SIZE);
}

static void serve_zero(struct ovc_ram *ram, struct ovc_region *rg, uint64_t gfn,
		       uintptr_t addr, uint64_t e, uint64_t t0)
{
	enum ovc_fault_kind kind = ovc__pte_state(e) == OVC_PAGE_BALLOONED ?
				   OVC_FAULT_BALLOONED : OVC_FAULT_ZERO;
	int ret = ovc__uffd_place(ram, addr, NULL);

	if (ret && ret != -EEXIST) {
		ovc__err(ram->log, "fault: zero page for gfn 0x%llx: %s",
			 (unsigned long long)gfn, strerror(-ret));
		ovc__pte_unlock(ram, rg, gfn, e);
		count(ram, OVC_FAULT_ERROR, t0);
		ovc__uffd_wake(ram, addr, OVC_PAGE_SIZE);
		return;
	}
	ovc__pte_account(ram, e, OVC_PAGE_RESIDENT);
	ovc__pte_unlock(ram, rg, gfn, ovc__pte_make(OVC_PAGE_RESIDENT, 0) |
				      OVC_PTE_ACCESSED);
	count(ram, kind, t0);
	ovc__uffd_wake(ram, addr, OVC_PAGE_SIZE);
}

/*
 * A minor fault: the page's contents are in the memfd but not mapped (it was
 * armed). Map them again in place and record the reference. Called with the
 * page BUSY; drops BUSY.
 */
static void serve_minor(struct ovc_ram *ram, struct ovc_region *rg, uint64_t gfn,
			uintptr_t addr, uint64_t e, uint64_t t0)
{
	int ret;

	if (ovc__pte_state(e) != OVC_PAGE_RESIDENT) {
		/* Stale: the page left since; the retry faults as missing. */
		ovc__pte_unlock(ram, rg, gfn, e);
		count(ram, OVC_FAULT_SPURIOUS, 0);
		ovc__uffd_wake(ram, addr, OVC_PAGE_SIZE);
		return;
	}
	ret = ovc__uffd_continue(ram, addr, false);
	if (ret && ret != -EEXIST) {
		ovc__err(ram->log, "fault: map armed gfn 0x%llx again: %s",
			 (unsigned long long)gfn, strerror(-ret));
		ovc__pte_unlock(ram, rg, gfn, e);
		count(ram, OVC_FAULT_ERROR, t0);
		ovc__uffd_wake(ram, addr, OVC_PAGE_SIZE);
		return;
	}
	ovc__pte_unlock(ram, rg, gfn, (e & ~(OVC_PTE_ARMED | OVC_PTE_SAMPLED)) |
				      OVC_PTE_ACCESSED);
	count(ram, ret ? OVC_FAULT_SPURIOUS : OVC_FAULT_MINOR, ret ? 0 : t0);
	ovc__uffd_wake(ram, addr, OVC_PAGE_SIZE);
}

/*
 * A minor fault on a page under a transition: its contents are in the memfd
 * but its mapping is new (a shared page's own mapping put back) or zapped. The
 * transition's holder may itself be the reader (a compare through the
 * mapping), so waiting for BUSY could wait forever. Map the page
 * write-protected instead, without touching the entry: reads go on, a write
 * still faults and waits for the transition as any other. A punch or remap by
 * the holder takes the mapping away again. Return true when served.
 */
static bool map_under_transition(struct ovc_ram *ram, uintptr_t addr)
{
	int ret = ovc__uffd_continue(ram, addr, true);

	if (ret && ret != -EEXIST)
		return false;	/* gone meanwhile: wait for the holder as usual */
	count(ram, OVC_FAULT_SPURIOUS, 0);
	ovc__uffd_wake(ram, addr, OVC_PAGE_SIZE);
	return true;
}

static void handle_fault(struct ovc_ram *ram, const struct uffd_msg *msg, void *buf)
{
	uintptr_t addr = (uintptr_t)msg->arg.pagefault.address & ~(OVC_PAGE_SIZE - 1);
	bool wp = msg->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP;
	bool minor = msg->arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_MINOR;
	uint64_t t0 = ovc__now_ns();
	struct ovc_region *rg;
	_Atomic uint64_t *pte;
	uint64_t gfn, e;

	rg = ovc__ram_region_hva(ram, addr);
	if (!rg) {
		ovc__err(ram->log, "fault: address %#lx is not guest RAM", (unsigned long)addr);
		count(ram, OVC_FAULT_ERROR, 0);
		ovc__uffd_wake(ram, addr, OVC_PAGE_SIZE);
		return;
	}
	gfn = rg->gfn0 + ((addr - (uintptr_t)rg->hva) >> OVC_PAGE_SHIFT);
	pte = &rg->pt[gfn - rg->gfn0];

	for (;;) {
		e = atomic_load_explicit(pte, memory_order_acquire);
		/*
		 * A SHARED page too: its transition (unshare_page) puts the own
		 * mapping back with the contents written to the memfd first and
		 * reads it back for its check while the entry still says SHARED.
		 * The pool's mapping is never registered for minor faults, so a
		 * minor fault there always means the own mapping is back.
		 */
		if ((e & OVC_PTE_BUSY) && minor &&
		    (ovc__pte_state(e) == OVC_PAGE_RESIDENT ||
		     ovc__pte_state(e) == OVC_PAGE_SHARED) &&
		    map_under_transition(ram, addr))
			return;
		if (e & OVC_PTE_BUSY) {
			/*
			 * Never wait here: mark the entry and drop the message.
			 * The faulting thread stays parked in the kernel until
			 * the holder's unlock wakes it; it then faults again.
			 */
			if (!(e & OVC_PTE_WAITERS) &&
			    !atomic_compare_exchange_weak_explicit(pte, &e, e | OVC_PTE_WAITERS,
								   memory_order_acq_rel,
								   memory_order_relaxed))
				continue;
			count(ram, OVC_FAULT_WAIT, 0);
			return;
		}
		if (wp && ovc__pte_state(e) != OVC_PAGE_RESIDENT &&
		    ovc__pte_state(e) != OVC_PAGE_SHARED) {
			/* Stale: the page left since; the retry faults as missing. */
			count(ram, OVC_FAULT_SPURIOUS, 0);
			ovc__uffd_wake(ram, addr, OVC_PAGE_SIZE);
			return;
		}
		if (atomic_compare_exchange_weak_explicit(pte, &e, e | OVC_PTE_BUSY,
							  memory_order_acquire,
							  memory_order_relaxed))
			break;
	}
	atomic_fetch_add_explicit(&ram->busy_pages, 1, memory_order_relaxed);

	if (minor) {
		serve_minor(ram, rg, gfn, addr, e, t0);
		return;
	}
	if (!wp && ovc__pte_state(e) == OVC_PAGE_RESIDENT) {
		missing_on_resident(ram, rg, addr, gfn, e, t0);
		return;
	}
	if (ovc__pte_state(e) == OVC_PAGE_SHARED) {
		break_share(ram, rg, gfn, addr, e, buf, t0);
		return;
	}
	if (wp) {
		/* Write-protect left over from a transition that has ended. */
		int ret = ovc__uffd_unwp_nowake(ram, addr, OVC_PAGE_SIZE);

		ovc__pte_unlock(ram, rg, gfn, e);
		if (ret)
			ovc__err(ram->log, "fault: un-write-protect gfn 0x%llx: %s",
				 (unsigned long long)gfn, strerror(-ret));
		count(ram, ret ? OVC_FAULT_ERROR : OVC_FAULT_WP, t0);
		ovc__uffd_wake(ram, addr, OVC_PAGE_SIZE);
		return;
	}

	switch (ovc__pte_state(e)) {
	case OVC_PAGE_ZERO:
	case OVC_PAGE_BALLOONED:
		serve_zero(ram, rg, gfn, addr, e, t0);
		break;
	default:
		serve_from_store(ram, rg, gfn, addr, e, buf, t0);
		break;
	}
}

/* Read and serve what @ram's userfaultfd holds; bounded so threads share. */
static void drain(struct ovc_ram *ram, void *buf)
{
	struct uffd_msg msgs[MSGS_PER_READ];
	int reads;

	for (reads = 0; reads < READS_PER_WAKEUP; reads++) {
		ssize_t n = read(ram->uffd, msgs, sizeof(msgs));
		size_t i;

		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				ovc__err(ram->log, "fault: read userfaultfd: %s", strerror(errno));
			return;
		}
		for (i = 0; i < (size_t)n / sizeof(msgs[0]); i++) {
			if (msgs[i].event == UFFD_EVENT_PAGEFAULT)
				handle_fault(ram, &msgs[i], buf);
		}
		if ((size_t)n < sizeof(msgs))
			return;
	}
}

static void *engine_thread(void *arg)
{
	struct ovc_fault_engine *eng = arg;
	void *buf;

	buf = aligned_alloc(OVC_PAGE_SIZE, OVC_PAGE_SIZE);
	if (!buf) {
		ovc__err(eng->log, "fault engine: no memory for a thread's page buffer");
		return NULL;
	}
	urcu_memb_register_thread();
	for (;;) {
		struct epoll_event evs[8];
		int i, n;

		n = epoll_wait(eng->epfd, evs, (int)OVC_ARRAY_SIZE(evs), -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ovc__err(eng->log, "fault engine: epoll_wait: %s", strerror(errno));
			break;
		}
		for (i = 0; i < n; i++) {
			struct ovc_ram *ram;

			if (evs[i].data.u64 == ENGINE_STOP_KEY)
				goto out;
			urcu_memb_read_lock();
			ram = rcu_dereference(eng->slots[evs[i].data.u64]);
			if (ram)
				drain(ram, buf);
			urcu_memb_read_unlock();
		}
	}
out:
	urcu_memb_unregister_thread();
	free(buf);
	return NULL;
}

struct ovc_fault_engine *ovc__fault_engine_new(const struct ovc_log *log,
					       unsigned int nthreads)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = ENGINE_STOP_KEY };
	struct ovc_fault_engine *eng;
	unsigned int i;
	int ret;

	if (nthreads == 0 || nthreads > 64) {
		errno = EINVAL;
		return NULL;
	}
	eng = calloc(1, sizeof(*eng) + nthreads * sizeof(pthread_t));
	if (!eng)
		return NULL;
	eng->log = log;
	ret = pthread_mutex_init(&eng->lock, NULL);
	if (ret)
		goto err_free;
	eng->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (eng->epfd < 0) {
		ret = errno;
		goto err_mutex;
	}
	eng->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (eng->stopfd < 0) {
		ret = errno;
		goto err_close_epfd;
	}
	if (epoll_ctl(eng->epfd, EPOLL_CTL_ADD, eng->stopfd, &ev) < 0) {
		ret = errno;
		goto err_close_stopfd;
	}
	for (i = 0; i < nthreads; i++) {
		ret = pthread_create(&eng->threads[i], NULL, engine_thread, eng);
		if (ret)
			goto err_stop_threads;
		eng->nthreads++;
	}
	return eng;

err_stop_threads:
	eventfd_write(eng->stopfd, 1);
	for (i = 0; i < eng->nthreads; i++)
		pthread_join(eng->threads[i], NULL);
err_close_stopfd:
	close(eng->stopfd);
err_close_epfd:
	close(eng->epfd);
err_mutex:
	pthread_mutex_destroy(&eng->lock);
err_free:
	free(eng);
	errno = ret;
	return NULL;
}

void ovc__fault_engine_destroy(struct ovc_fault_engine *eng)
{
	unsigned int i;

	if (!eng)
		return;
	if (eng->nattached)
		OVC_BUG("fault engine destroyed with %u RAMs attached", eng->nattached);
	/* Level-triggered: every thread sees the stop event. */
	eventfd_write(eng->stopfd, 1);
	for (i = 0; i < eng->nthreads; i++)
		pthread_join(eng->threads[i], NULL);
	close(eng->stopfd);
	close(eng->epfd);
	pthread_mutex_destroy(&eng->lock);
	free(eng);
}

int ovc__fault_engine_attach(struct ovc_fault_engine *eng, struct ovc_ram *ram)
{
	struct epoll_event ev = { .events = EPOLLIN };
	unsigned int slot;
	int ret = -ENOSPC;

	pthread_mutex_lock(&eng->lock);
	if (ram->engine_slot >= 0) {
		ret = -EBUSY;
		goto out;
	}
	for (slot = 0; slot < ENGINE_MAX_RAMS; slot++) {
		if (!eng->slots[slot])
			break;
	}
	if (slot == ENGINE_MAX_RAMS)
		goto out;
	rcu_assign_pointer(eng->slots[slot], ram);
	ev.data.u64 = slot;
	if (epoll_ctl(eng->epfd, EPOLL_CTL_ADD, ram->uffd, &ev) < 0) {
		ret = -errno;
		rcu_assign_pointer(eng->slots[slot], NULL);
		pthread_mutex_unlock(&eng->lock);
		/* A stale event for this slot may have seen @ram: let it finish. */
		urcu_memb_synchronize_rcu();
		return ret;
	}
	ram->engine_slot = (int)slot;
	eng->nattached++;
	ret = 0;
out:
	pthread_mutex_unlock(&eng->lock);
	return ret;
}

void ovc__fault_engine_detach(struct ovc_fault_engine *eng, struct ovc_ram *ram)
{
	pthread_mutex_lock(&eng->lock);
	if (ram->engine_slot < 0) {
		pthread_mutex_unlock(&eng->lock);
		return;
	}
	epoll_ctl(eng->epfd, EPOLL_CTL_DEL, ram->uffd, NULL);
	rcu_assign_pointer(eng->slots[ram->engine_slot], NULL);
	ram->engine_slot = -1;
	eng->nattached--;
	pthread_mutex_unlock(&eng->lock);
	/* After this no handler is inside drain() for @ram. */
	urcu_memb_synchronize_rcu();
}
