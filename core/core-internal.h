/* SPDX-License-Identifier: MIT */
/* core/: guest RAM, the page table, transitions and the fault engine (internal API). */
#ifndef OVC_CORE_INTERNAL_H
#define OVC_CORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <ovc/common.h>
#include <ovc/core.h>

/* ------------------------------------------------------------------------ */
/* Shared helpers */

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#define OVC_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The one way to die on a broken invariant (never on bad input). */
#define OVC_BUG(...) ovc__bug(__FILE__, __func__, __LINE__, __VA_ARGS__)
__attribute__((noreturn)) OVC_PRINTF(4, 5)
void ovc__bug(const char *file, const char *func, int line, const char *fmt, ...);

/**
 * struct ovc_log - a log sink, owned by the host and borrowed by everything
 * below it. Immutable after creation.
 */
struct ovc_log {
	ovc_log_fn fn;
	void *opaque;
	int level;
};

OVC_PRINTF(3, 4)
void ovc__log(const struct ovc_log *log, int level, const char *fmt, ...);

#define ovc__err(log, ...) ovc__log((log), OVC_LOG_ERR, __VA_ARGS__)
#define ovc__warn(log, ...) ovc__log((log), OVC_LOG_WARN, __VA_ARGS__)
#define ovc__info(log, ...) ovc__log((log), OVC_LOG_INFO, __VA_ARGS__)
#define ovc__dbg(log, ...) ovc__log((log), OVC_LOG_DEBUG, __VA_ARGS__)

uint64_t ovc__now_ns(void);

/* CPU time a thread of this process has run, by tid (0 if it is gone). */
uint64_t ovc__thread_cpu_ns(pid_t tid);

/*
 * Log2 latency histograms: bucket i counts times in [2^i, 2^(i+1)) ns, the
 * last bucket everything above. The quantile interpolates inside a bucket;
 * 0 when the histogram is empty, @q clamped to [0, 1].
 */
unsigned int ovc__hist_bucket(uint64_t ns, unsigned int nbuckets);
uint64_t ovc__hist_quantile_ns(const uint64_t *hist, unsigned int nbuckets, double q);

/* Whether a page (OVC_PAGE_SIZE bytes, 8-byte aligned) holds only zeros. */
bool ovc__page_is_zero(const void *page);

/* ------------------------------------------------------------------------ */
/*
 * Page-table entry: one per 4 KiB guest page, 64 bits, accessed only with
 * atomics.
 *
 *   63                                12 11  9  8  7  6  5  4  3  2    0
 *  +------------------------------------+-----+--+--+--+--+--+--+-------+
 *  |            payload (52 bits)       |rsvd |S |R |P |A |W |B | state |
 *  +------------------------------------+-----+--+--+--+--+--+--+-------+
 *
 *  state    enum ovc_page_state. ZERO is 0: an entry never written is a hole.
 *  B BUSY   a transition (or the fault engine resolving a fault) owns the page.
 *  W WAITERS someone waits for BUSY to clear: a faulting thread parked in the
 *           kernel (woken with UFFDIO_WAKE) or a thread in futex_wait on the
 *           entry's low 32 bits (woken with FUTEX_WAKE).
 *  A ACCESSED the page was used since a reader last cleared the bit: set by
 *           the fault engine on every fault it serves (a page brought back
 *           is in use), cleared by the pager's CLOCK hand (atomic AND, no
 *           BUSY needed: it is a hint).
 *  P POISONED the store lost the contents; the guest mapping holds a poison
 *           marker (every access SIGBUS / -EHWPOISON) until a transition
 *           gives the page new contents or state, which clears the marker.
 *  R ARMED  the page's next access must fault: on a RESIDENT page whose BUSY
 *           is clear, the guest mapping of the page is zapped (its contents
 *           stay in the memfd), so the next access is a MINOR fault that the
 *           engine resolves in place with UFFDIO_CONTINUE, setting ACCESSED
 *           and clearing ARMED and SAMPLED. Set only under BUSY (arming,
 *           transitions); any served fault clears it. A transition maps armed
 *           pages again at begin (so its reads through the mapping never
 *           fault) and zaps those that end RESIDENT and ARMED before it drops
 *           BUSY: the bit survives transitions.
 *  S SAMPLED the working-set sampler armed the page and it has not been
 *           touched since: set with ARMED by the sampler, cleared by any
 *           served fault, by the sampler itself (a hint, atomic AND).
 *           Independent of ACCESSED, which the pager's CLOCK hand clears.
 *  payload  the owning store's handle for COMPRESSED, SWAPPED, SHARED, IMAGE
 *           (slot, tier entry, pool page); 0 otherwise.
 *
 * Synchronization (who may do what to an entry):
 *
 *  operation                     | requires            | how
 *  ------------------------------+---------------------+---------------------------------
 *  read state (stats, policy)    | nothing             | relaxed load; may be stale
 *  take BUSY                     | BUSY clear          | CAS old -> old|BUSY (acquire)
 *  set WAITERS                   | BUSY set            | CAS old -> old|WAITERS
 *  change state/payload          | holding BUSY        | store (release) by the holder only
 *  drop BUSY                     | holding BUSY        | exchange (release) to the new
 *                                |                     | entry; if W was set: UFFDIO_WAKE
 *                                |                     | the page and FUTEX_WAKE the entry
 *  write the page's contents     | RESIDENT, no BUSY   | the guest, directly
 *  read the page's contents      | RESIDENT            | anyone; under BUSY + write-protect
 *                                |                     | they are stable
 *
 * Order: a transition takes BUSY, then write-protects the page in the guest
 * mapping (UFFDIO_WRITEPROTECT flushes TLBs, so no writer is left), copies or
 * compares, punches the hole, publishes the new entry and drops BUSY, then
 * wakes. A fault engine thread never waits for BUSY: it sets WAITERS and drops
 * the fault message; the faulting thread stays parked in the kernel until the
 * holder's wake, then faults again and is served from the new state.
 * Several pages are always taken in ascending order, so OVC_XACT_WAIT cannot
 * deadlock.
 */
#define OVC_PTE_STATE_MASK 0x7ULL
#define OVC_PTE_BUSY (1ULL << 3)
#define OVC_PTE_WAITERS (1ULL << 4)
#define OVC_PTE_ACCESSED (1ULL << 5)
#define OVC_PTE_POISONED (1ULL << 6)
#define OVC_PTE_ARMED (1ULL << 7)
#define OVC_PTE_SAMPLED (1ULL << 8)
/* Reference-tracking bits a transition carries from the old entry to the new. */
#define OVC_PTE_REF_BITS (OVC_PTE_ACCESSED | OVC_PTE_ARMED | OVC_PTE_SAMPLED)
#define OVC_PTE_PAYLOAD_SHIFT 12
#define OVC_PTE_PAYLOAD_MAX ((1ULL << (64 - OVC_PTE_PAYLOAD_SHIFT)) - 1)

static inline unsigned int ovc__pte_state(uint64_t e)
{
	return (unsigned int)(e & OVC_PTE_STATE_MASK);
}

static inline uint64_t ovc__pte_payload(uint64_t e)
{
	return e >> OVC_PTE_PAYLOAD_SHIFT;
}

static inline uint64_t ovc__pte_make(unsigned int state, uint64_t payload)
{
	return ((uint64_t)state & OVC_PTE_STATE_MASK) |
	       (payload << OVC_PTE_PAYLOAD_SHIFT);
}

/* ------------------------------------------------------------------------ */
/* Stores: where non-resident contents live (pager tiers, sharing pool). */

struct ovc_ram;

/**
 * struct ovc_store_ops - a store of page contents, called by the fault engine
 *
 * One store may be registered per non-resident state (COMPRESSED, SWAPPED,
 * SHARED, IMAGE) of a RAM object. The entry's payload is the store's handle.
 */
struct ovc_store_ops {
	/*
	 * load - copy the page's contents into @dst (OVC_PAGE_SIZE bytes).
	 * Called from a fault-engine thread (or a transition of the owning
	 * mechanism) with the page BUSY held by the caller; may block on I/O.
	 * Return 0, -EAGAIN to be retried shortly, or another negative errno
	 * when the contents are lost or corrupt (a fatal guest-memory error for
	 * this page: the page is poisoned, never silently zero-filled).
	 */
	int (*load)(void *opaque, struct ovc_ram *ram, uint64_t gfn,
		    uint64_t handle, void *dst);
	/*
	 * release - the page no longer refers to @handle: its contents are in
	 * guest RAM again (after a successful load) or were replaced by a
	 * transition. Called with the page BUSY held by the caller. Must not
	 * fail.
	 */
	void (*release)(void *opaque, struct ovc_ram *ram, uint64_t gfn,
			uint64_t handle);
	/*
	 * peek - optional: like load, for a reader that is not the guest (a
	 * save), so the store keeps none of the bookkeeping it keeps for faults
	 * (prefetch patterns). NULL: load is used. Same context and returns.
	 */
	int (*peek)(void *opaque, struct ovc_ram *ram, uint64_t gfn,
		    uint64_t handle, void *dst);
	/*
	 * backing - where @handle's page lives, for stores whose pages are
	 * mapped into the guest (SHARED only; NULL for the others): the file
	 * and the byte offset of the page in it. The page must not change
	 * while a guest page refers to it. Called with the page BUSY.
	 */
	int (*backing)(void *opaque, uint64_t handle, int *fd, uint64_t *off);
};

/* ovc_fatal_fn is public: see <ovc/core.h>. */

/* ------------------------------------------------------------------------ */
/* Guest RAM */

/**
 * struct ovc_region - one guest RAM range: memfd, mapping and page table.
 * Immutable after it is published in ram->regions; freed with the RAM.
 */
struct ovc_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t npages;
	uint64_t gfn0;			/* gpa >> OVC_PAGE_SHIFT */
	int memfd;
	uint8_t *hva;			/* MAP_SHARED, registered with the uffd */
	_Atomic uint64_t *pt;		/* npages entries, MAP_NORESERVE: sparse */
	size_t pt_bytes;
};

struct ovc_store_slot {
	const struct ovc_store_ops *ops;
	void *opaque;
};

/**
 * struct ovc_ram - a VM's guest memory: its ranges, one userfaultfd, counters.
 *
 * Locking: @lock serializes ovc__ram_add_range() and store registration; the
 * regions array is append-only and published by a release store of
 * @nregions, so lookups take no lock. Counters are ATOMIC.
 */
struct ovc_ram {
	const struct ovc_log *log;
	int uffd;
	uint64_t uffd_features;
	int pagemap_fd;			/* /proc/self/pagemap, -1 if unreadable */
	pthread_mutex_t lock;		/* protects adding regions and stores */

	struct ovc_region regions[OVC_VM_RAM_RANGES_MAX];
	_Atomic unsigned int nregions;	/* ATOMIC: release when a region is ready */
	uint64_t total_bytes;		/* written under @lock, read ATOMIC */

	struct ovc_store_slot stores[OVC_PAGE_NR_STATES]; /* under @lock, read racily */

	ovc_fatal_fn fatal_fn;
	void *fatal_opaque;

	/* MINOR registration done: pages can be armed (immutable after creation). */
	bool minor;

	/* Fault-engine bookkeeping, owned by the engine. */
	int engine_slot;

	/* Test hook: make the next N hole punches fail with this errno. */
	_Atomic int inject_punch_errno;		/* ATOMIC */
	_Atomic unsigned int inject_punch_count; /* ATOMIC */

	/* Counters, all ATOMIC (relaxed). */
	_Atomic uint64_t pages[OVC_PAGE_NR_STATES];
	_Atomic uint64_t busy_pages;
	_Atomic uint64_t faults[OVC_FAULT_NR_KINDS];
	_Atomic uint64_t fault_ns_hist[OVC_FAULT_HIST_BUCKETS];
	_Atomic uint64_t xact_committed;
	_Atomic uint64_t xact_aborted;
	_Atomic uint64_t store_errors;
	_Atomic uint64_t cow_breaks;	/* SHARED pages a write took back */
};

/*
 * ovc__ram_new - create a VM's guest memory with its userfaultfd.
 * Returns NULL with errno set. Pair with ovc__ram_destroy(), after the RAM
 * is detached from the fault engine.
 */
struct ovc_ram *ovc__ram_new(const struct ovc_log *log);
void ovc__ram_destroy(struct ovc_ram *ram);

/* Add a range; see ovc_vm_add_ram() for the rules. Takes ram->lock. */
int ovc__ram_add_range(struct ovc_ram *ram, uint64_t gpa, uint64_t size,
		       void **hva);

/*
 * Register the store for non-resident @state, before any page enters that
 * state. -EBUSY when a store is registered and pages still use it. Takes
 * ram->lock.
 */
int ovc__ram_set_store(struct ovc_ram *ram, unsigned int state,
		       const struct ovc_store_ops *ops, void *opaque);

/* Register the fatal guest-memory error callback (before vCPUs run). */
void ovc__ram_set_fatal(struct ovc_ram *ram, ovc_fatal_fn fn, void *opaque);

/* Lock-free lookups; NULL when outside the RAM. */
struct ovc_region *ovc__ram_region_gfn(struct ovc_ram *ram, uint64_t gfn);
struct ovc_region *ovc__ram_region_hva(struct ovc_ram *ram, uintptr_t hva);

/* The entry of @gfn (NULL when outside the RAM). */
_Atomic uint64_t *ovc__ram_pte(struct ovc_ram *ram, uint64_t gfn);

/* Host address of @gfn in the guest mapping; the region must contain it. */
static inline uint8_t *ovc__region_hva(struct ovc_region *rg, uint64_t gfn)
{
	return rg->hva + ((gfn - rg->gfn0) << OVC_PAGE_SHIFT);
}

void ovc__ram_get_stats(struct ovc_ram *ram, struct ovc_mem_stats *st);

/* Entry helpers used by transitions and the fault engine (core only). */
void ovc__pte_account(struct ovc_ram *ram, uint64_t old, uint64_t new_e);
void ovc__pte_unlock(struct ovc_ram *ram, struct ovc_region *rg, uint64_t gfn,
		     uint64_t new_e);
/* A userfaultfd ioctl, retried while the kernel answers EAGAIN. 0 or -errno. */
int ovc__uffd_ioctl(struct ovc_ram *ram, unsigned long req, void *arg);
/*
 * Put a zero page (@src NULL) or a copy of @src into the hole at @addr; the
 * page is BUSY. Nobody is woken: the caller publishes the entry first.
 */
int ovc__uffd_place(struct ovc_ram *ram, uintptr_t addr, const void *src);
int ovc__uffd_wp(struct ovc_ram *ram, uintptr_t start, size_t len, bool wp);
int ovc__uffd_wake(struct ovc_ram *ram, uintptr_t start, size_t len);
int ovc__uffd_unwp_nowake(struct ovc_ram *ram, uintptr_t start, size_t len);
int ovc__ram_punch(struct ovc_ram *ram, struct ovc_region *rg, uint64_t gfn,
		   uint64_t npages);
/*
 * Map a resident page's memfd contents in place (UFFDIO_CONTINUE, no wake),
 * write-protected with @wp. Return 0, -EEXIST (already mapped) or an errno.
 */
int ovc__uffd_continue(struct ovc_ram *ram, uintptr_t addr, bool wp);
/* Zap [addr, addr+len) of the guest mapping, keeping the memfd's pages; BUSY held. */
int ovc__ram_zap(struct ovc_ram *ram, uintptr_t addr, size_t len);

/* Whether minor faults work here (the kernel has UFFD_FEATURE_MINOR_SHMEM). */
static inline bool ovc__ram_can_arm(const struct ovc_ram *ram)
{
	return ram->minor;
}

enum ovc_arm_flags {
	OVC_ARM_SAMPLE = 1 << 0,	/* also set SAMPLED: the sampler's pages */
};

/*
 * ovc__ram_arm - make resident page @gfn's next access fault, contents in place
 * @flags: OVC_ARM_SAMPLE to mark the page as sampled as well
 *
 * Takes BUSY without waiting, sets ARMED (and SAMPLED), zaps the page from the
 * guest mapping, drops BUSY. The next access is a MINOR fault: the engine maps
 * the page again and sets ACCESSED. ACCESSED itself is left alone.
 * Return 0; -EBUSY when the page is under a transition (skipped, nothing
 * done); -ENOENT when it is not RESIDENT; -EINVAL outside the RAM;
 * -EOPNOTSUPP without minor faults; or the zap's errno (the page is then left
 * unarmed).
 * Context: any thread but a fault-engine thread; never blocks on BUSY.
 */
int ovc__ram_arm(struct ovc_ram *ram, uint64_t gfn, unsigned int flags);

/*
 * Shared pages (dedup) are mapped over the guest range page by page:
 *
 * Both work on a run of @npages pages from @gfn (one mmap, one registration).
 *
 * ovc__ram_map_foreign - map the pages at @off of @fd MAP_PRIVATE over @gfn, registered
 * with the uffd for write-protection only and write-protected, so a write
 * faults to the engine (which breaks the share) and the kernel could at most
 * copy-on-write, never change @fd. The page is BUSY and write-protected in
 * its own mapping. A write that slipped in while the new mapping was not yet
 * protected is found (the page is anonymous): its contents are put back in
 * the memfd and the own mapping restored; -EAGAIN then. On any failure the
 * own mapping is back and the page's contents are the guest's.
 *
 * ovc__ram_map_own - put the range's own MAP_SHARED memfd mapping back over
 * @gfn, registered like the rest; with @fill the memfd page first gets those
 * contents (so no access ever sees a hole where a page should be).
 * Both: page BUSY, called by core only (transitions, fault engine).
 */
int ovc__ram_map_foreign(struct ovc_ram *ram, struct ovc_region *rg, uint64_t gfn,
			 unsigned int npages, int fd, uint64_t off);
int ovc__ram_map_own(struct ovc_ram *ram, struct ovc_region *rg, uint64_t gfn,
		     unsigned int npages, const void *fill);

/* ------------------------------------------------------------------------ */
/* Transitions: how every mechanism changes page states. */

#define OVC_XACT_MAX_PAGES 256

enum ovc_xact_flags {
	OVC_XACT_WAIT = 1 << 0,	/* wait for busy pages instead of -EBUSY */
	/*
	 * Armed pages are not mapped again at begin: the caller reads the run
	 * only with ovc__xact_read(), never at ovc__xact_hva(). Saves a
	 * syscall per armed page for callers that read few of them.
	 */
	OVC_XACT_NOMAP = 1 << 1,
};

/**
 * struct ovc_xact - one transition on a run of contiguous pages of one range.
 * Caller-embedded (on the stack is fine). Between begin and commit/abort the
 * pages are BUSY and, where resident, write-protected: their contents are
 * stable and readable at ovc__xact_hva().
 */
struct ovc_xact {
	struct ovc_ram *ram;
	struct ovc_region *rg;
	uint64_t gfn;
	unsigned int npages;
	unsigned int flags;
	bool wp;				/* write-protect was applied */
	uint64_t old[OVC_XACT_MAX_PAGES];	/* entries at begin, BUSY clear */
	uint64_t new_e[OVC_XACT_MAX_PAGES];	/* entries to commit */
	const void *fill[OVC_XACT_MAX_PAGES];	/* contents for -> RESIDENT */
	bool failed[OVC_XACT_MAX_PAGES];	/* left as it was by commit */
};

/*
 * ovc__xact_begin - take pages [gfn, gfn+npages) for a transition.
 * Takes BUSY on each page in ascending order, then write-protects the run
 * when any page of it is resident.
 * Return 0; -EINVAL for a run outside one range or too long; -EBUSY when a
 * page is busy and OVC_XACT_WAIT is not given (nothing is held then); or the
 * errno of the write-protect (nothing is held then).
 * Context: any thread but a fault-engine thread; must not touch the guest
 * mapping of non-resident pages of the run until commit/abort.
 */
OVC_MUST_CHECK int ovc__xact_begin(struct ovc_xact *x, struct ovc_ram *ram,
				   uint64_t gfn, unsigned int npages,
				   unsigned int flags);

/* The page's entry at begin (BUSY clear) and its state. */
static inline uint64_t ovc__xact_old(const struct ovc_xact *x, unsigned int i)
{
	return x->old[i];
}

/*
 * Where page i of the run is mapped; read it only if it was RESIDENT. Armed
 * pages were mapped again at begin: reading never faults.
 */
static inline const void *ovc__xact_hva(const struct ovc_xact *x, unsigned int i)
{
	return ovc__region_hva(x->rg, x->gfn + i);
}

/*
 * ovc__xact_read - copy page i's contents (it was RESIDENT at begin) into
 * @dst, OVC_PAGE_SIZE bytes. Works with or without OVC_XACT_NOMAP; an
 * unmapped armed page is read from the memfd. Return 0 or a negative errno.
 */
int ovc__xact_read(const struct ovc_xact *x, unsigned int i, void *dst);

/*
 * ovc__xact_set - what page i becomes at commit. @fill is required when a
 * non-resident page becomes RESIDENT (its contents, copied in atomically),
 * ignored otherwise. Pages not set stay as they were.
 */
void ovc__xact_set(struct ovc_xact *x, unsigned int i, unsigned int state,
		   uint64_t payload, const void *fill);

/*
 * ovc__xact_arm - page i, resident and staying resident, is armed at commit:
 * zapped from the guest mapping so that its next access is a MINOR fault
 * that sets ACCESSED. With @clear_accessed its ACCESSED bit is cleared in the
 * same commit (a CLOCK hand passing it). A no-op for a page that will not be
 * RESIDENT; without minor faults only ACCESSED is cleared.
 */
void ovc__xact_arm(struct ovc_xact *x, unsigned int i, bool clear_accessed);

/*
 * ovc__xact_commit - make the new entries true, drop BUSY, wake waiters.
 * Resident pages becoming non-resident are punched out of the memfd; pages
 * becoming resident are filled; resident pages staying resident are
 * write-enabled again. A resident page becoming SHARED gets its store's
 * backing page mapped over it (and stays write-protected); a SHARED page
 * leaving gets the own mapping back holding its contents first, and then
 * goes on as a resident page would. (A SHARED page bound for a non-resident
 * state that a writer reached in between ends RESIDENT with the write,
 * marked failed.) Return 0, or a negative errno when some pages could
 * not change: those are left exactly as they were (x->failed[i] is true,
 * their contents intact) and their new handle is the caller's to release.
 * Must not be called twice.
 */
int ovc__xact_commit(struct ovc_xact *x);

/* ovc__xact_abort - leave every page as it was at begin. */
void ovc__xact_abort(struct ovc_xact *x);

/* Load a non-resident page's contents from its store into @dst (BUSY held). */
int ovc__ram_store_load(struct ovc_ram *ram, uint64_t gfn, uint64_t e, void *dst);
/* The same through the store's peek (no fault-side bookkeeping) where it has one. */
int ovc__ram_store_peek(struct ovc_ram *ram, uint64_t gfn, uint64_t e, void *dst);
void ovc__ram_store_release(struct ovc_ram *ram, uint64_t gfn, uint64_t e);

/* ------------------------------------------------------------------------ */
/* Fault engine: a pool of threads serving the userfaultfds of many RAMs. */

struct ovc_fault_engine;

/* Start @nthreads handler threads. NULL with errno set. */
struct ovc_fault_engine *ovc__fault_engine_new(const struct ovc_log *log,
					       unsigned int nthreads);
/* Stop the threads; every RAM must have been detached. */
void ovc__fault_engine_destroy(struct ovc_fault_engine *eng);

/* Serve @ram's faults from now on. Return 0 or negative errno. */
int ovc__fault_engine_attach(struct ovc_fault_engine *eng, struct ovc_ram *ram);
/*
 * Stop serving @ram; when it returns no handler thread touches @ram any
 * more (waits for an RCU grace period). Context: not a handler thread.
 */
void ovc__fault_engine_detach(struct ovc_fault_engine *eng, struct ovc_ram *ram);

#endif /* OVC_CORE_INTERNAL_H */
