/* SPDX-License-Identifier: MIT */
/* stats/: building and publishing snapshots (internal API for host/). */
#ifndef OVC_STATS_INTERNAL_H
#define OVC_STATS_INTERNAL_H

#include <stdint.h>
#include <ovc/stats.h>

/*
 * struct ovc_stats - the publisher of one host's snapshots.
 *
 * Synchronization:
 *
 *   operation                 | caller            | protection
 *   --------------------------+-------------------+---------------------------
 *   ovc__stats_alloc()        | manager thread    | none (private until publish)
 *   ovc__stats_publish()      | manager thread    | single writer; rcu_assign_pointer
 *   ovc__stats_latest()       | manager thread    | single writer owns the pointer
 *   ovc_stats_read_lock()     | registered thread | RCU read-side section
 *   ovc_stats_get()/_put()    | registered / any  | RCU + reference count
 *
 * The previous snapshot's publisher reference is dropped with call_rcu(); the
 * memory goes when the last reference does.
 */
struct ovc_stats;

/* Create the publisher. Return NULL with errno ENOMEM. */
struct ovc_stats *ovc__stats_new(void);

/*
 * Unpublish and drop the publisher's reference after a grace period.
 * Called from any thread once the manager thread has stopped.
 */
void ovc__stats_destroy(struct ovc_stats *st);

/*
 * A blank snapshot with room for @nvms VMs and @nvcpus vCPUs in all, zeroed.
 * Return NULL (ENOMEM).
 */
struct ovc_stats_snapshot *ovc__stats_alloc(unsigned int nvms, unsigned int nvcpus);

/* Writable views of a snapshot being built (before publish). */
struct ovc_vm_snap *ovc__stats_vm(struct ovc_stats_snapshot *s, unsigned int i);
struct ovc_vcpu_snap *ovc__stats_vcpu_pool(struct ovc_stats_snapshot *s);

/* Free a snapshot that was never published. */
void ovc__stats_discard(struct ovc_stats_snapshot *s);

/*
 * Fill the derived fields of @s (rates, percentages, host memory, seq,
 * interval) from the previous snapshot, then publish it. @s->at_ns and the raw
 * counters must be filled. Called from the manager thread only.
 */
void ovc__stats_publish(struct ovc_stats *st, struct ovc_stats_snapshot *s);

/* The last published snapshot, for its single writer (no RCU needed). */
const struct ovc_stats_snapshot *ovc__stats_latest(struct ovc_stats *st);

/* Published-snapshot pointer, for ovc_stats_read_lock() (RCU deref). */
const struct ovc_stats_snapshot *ovc__stats_deref(struct ovc_stats *st);

/*
 * Take a reference on @s (may be NULL). Called inside an RCU read-side
 * section, where the publisher's reference is still held.
 */
const struct ovc_stats_snapshot *ovc__stats_ref(const struct ovc_stats_snapshot *s);

/* Read /proc/self/task/@tid/schedstat. Return 0 or a negative errno. */
int ovc__schedstat_read(pid_t tid, uint64_t *cpu_ns, uint64_t *wait_ns);

/* export.c: snapshots as jansson objects, for the control socket. */
struct json_t;

/* One VM's entry, as in the "stats" reply. Return a new reference or NULL. */
struct json_t *ovc__vm_snap_json(const struct ovc_vm_snap *v);

/* The snapshot (only @vm's entry if not NULL). NULL with errno ENOENT, ENOMEM. */
struct json_t *ovc__stats_json(const struct ovc_stats_snapshot *s, const char *vm);

/* ESX's free-memory states, by the share of host memory available. */
enum ovc__mem_state {
	OVC__MEM_HIGH,		/* 6 % or more available */
	OVC__MEM_SOFT,		/* 4 % or more */
	OVC__MEM_HARD,		/* 2 % or more */
	OVC__MEM_LOW,		/* below 2 % */
};

enum ovc__mem_state ovc__mem_state(const struct ovc_host_mem_snap *h);
const char *ovc__mem_state_name(enum ovc__mem_state st);

#endif /* OVC_STATS_INTERNAL_H */
