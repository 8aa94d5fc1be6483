/* SPDX-License-Identifier: MIT */
/* Live statistics: one immutable snapshot of the host per tick, read lock-free. */
#ifndef OVC_STATS_H
#define OVC_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <ovc/common.h>
#include <ovc/core.h>
#include <ovc/balloon.h>
#include <ovc/pager.h>
#include <ovc/policy.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ovc_host;
struct ovc_vm;

/**
 * struct ovc_host_mem_snap - the host's memory, from /proc/meminfo and PSI
 * @total_bytes: MemTotal
 * @free_bytes: MemFree
 * @available_bytes: MemAvailable
 * @swap_total_bytes: SwapTotal
 * @swap_free_bytes: SwapFree
 * @psi_valid: the kernel offers /proc/pressure/memory
 * @psi_some_avg10: percentage of the last 10 s some task stalled on memory
 * @psi_full_avg10: percentage of the last 10 s all tasks stalled on memory
 */
struct ovc_host_mem_snap {
	uint64_t total_bytes;
	uint64_t free_bytes;
	uint64_t available_bytes;
	uint64_t swap_total_bytes;
	uint64_t swap_free_bytes;
	bool psi_valid;
	double psi_some_avg10;
	double psi_full_avg10;
};

/**
 * struct ovc_vcpu_snap - one vCPU thread over the last tick
 * @index: the vCPU's index in its VM
 * @tid: its thread id
 * @run_ns: time inside KVM_RUN (the VMM's hooks), cumulative
 * @halt_ns: time the guest was idle (the VMM's hooks), cumulative
 * @cpu_ns: time on a CPU (schedstat field 1), cumulative
 * @wait_ns: time runnable but waiting for a CPU (schedstat field 2), cumulative
 * @throttled_ns: time the enforcement backend held the vCPU back, cumulative
 * @halts: idle periods, cumulative
 * @used_pct: %USED over the last tick: @cpu_ns delta per wall time (100 = one
 *	physical CPU)
 * @rdy_pct: %RDY over the last tick: @wait_ns delta per wall time
 * @halt_pct: share of the last tick the guest was idle
 * @schedstat_valid: @cpu_ns and @wait_ns could be read (the thread lives and
 *	the kernel has schedstats)
 */
struct ovc_vcpu_snap {
	unsigned int index;
	pid_t tid;
	uint64_t run_ns;
	uint64_t halt_ns;
	uint64_t cpu_ns;
	uint64_t wait_ns;
	uint64_t throttled_ns;
	uint64_t halts;
	double used_pct;
	double rdy_pct;
	double halt_pct;
	bool schedstat_valid;
};

/**
 * struct ovc_wss_snap - a VM's working-set estimate
 * @valid: at least one sampling period has finished
 * @period_ns: the sampling period
 * @sampled: pages sampled in the last finished period
 * @touched: of those, pages the guest touched during the period
 * @fast: fast-moving average of the active fraction (0.0–1.0)
 * @slow: slow-moving average of the active fraction
 * @active_frac: the estimate: the larger of @fast, @slow and the last period
 * @active_bytes: @active_frac times the VM's RAM
 * @periods: sampling periods finished
 * @last: the estimate of the last finished period alone
 *
 * The estimator is described in docs/stats.md ("Working-set estimation").
 */
struct ovc_wss_snap {
	bool valid;
	uint64_t period_ns;
	uint64_t sampled;
	uint64_t touched;
	double fast;
	double slow;
	double active_frac;
	uint64_t active_bytes;
	uint64_t periods;
	double last;
};

/** Working-set sampling defaults: ESX's 100 pages every 30 s. */
#define OVC_WSS_PERIOD_MS_DEFAULT 30000
#define OVC_WSS_SAMPLES_DEFAULT 100

/**
 * ovc_vm_set_wss_sampling() - estimate @vm's working set by sampling
 * @vm: the VM
 * @period_ms: the sampling period (10 ms to 1 h; OVC_WSS_PERIOD_MS_DEFAULT),
 *	rounded up to the host's ticks; 0 stops sampling
 * @samples: resident pages sampled per period (1 to 65536; 0:
 *	OVC_WSS_SAMPLES_DEFAULT)
 *
 * Each period the manager thread arms @samples random resident pages so that
 * their next access faults once (a minor fault: contents stay in place), and
 * at the period's end counts how many were touched; the estimate (see
 * struct ovc_wss_snap) appears in each snapshot's per-VM @wss and through
 * ovc_vm_get_wss(). Setting it again restarts the estimate. Off until called.
 *
 * Return: 0; -EINVAL for a bad argument; -EOPNOTSUPP when the kernel has no
 * minor faults on shared memory (UFFD_FEATURE_MINOR_SHMEM); -ENOMEM, -ENOSPC
 * (no tick hook left).
 * Context: any thread but the manager thread (not from a tick); takes the
 * host lock.
 */
OVC_EXPORT int ovc_vm_set_wss_sampling(struct ovc_vm *vm, unsigned int period_ms,
				       unsigned int samples);

/**
 * ovc_vm_get_wss() - the VM's latest working-set estimate
 * @vm: the VM
 * @out: filled in (zero, @valid false, before the first finished period)
 *
 * Return: 0 or -EINVAL.
 * Context: any thread; takes the host lock.
 */
OVC_EXPORT int ovc_vm_get_wss(struct ovc_vm *vm, struct ovc_wss_snap *out);

/**
 * struct ovc_vm_targets - what the schedulers decided for a VM on the last tick
 * @mem_target_bytes: memory the VM is entitled to keep resident (0: none set)
 * @balloon_target_bytes: what the balloon was asked to hold
 * @reclaim_pages: pages the plan asked the pager to make non-resident
 * @cpu_entitled: CPU entitlement in physical CPUs (1.0 = one core)
 * @cpu_demand: estimated CPU demand in physical CPUs
 */
struct ovc_vm_targets {
	uint64_t mem_target_bytes;
	uint64_t balloon_target_bytes;
	uint64_t reclaim_pages;
	double cpu_entitled;
	double cpu_demand;
};

/**
 * struct ovc_vm_snap - one VM at the time of the snapshot
 * @name: the VM's name
 * @id: a number unique within the host for the VM's lifetime (names may be
 *	reused after a VM goes)
 * @mem: the core's page and fault counters
 * @faults_per_sec: served faults per second over the last tick
 * @pageins_per_sec: pages loaded from a store per second over the last tick
 * @pageouts_per_sec: pages the pager made non-resident per second
 * @has_balloon: @balloon holds the balloon's counters
 * @balloon: the balloon's counters
 * @has_pager: @pager holds the pager's counters
 * @pager: the pager's counters
 * @wss: the working-set estimate
 * @policy: the VM's shares, reservations and limits
 * @targets: the schedulers' last decisions
 * @nvcpus: entries in @vcpus
 * @vcpus: the VM's vCPUs, by index
 * @used_pct: sum of the vCPUs' %USED
 * @rdy_pct: sum of the vCPUs' %RDY
 */
struct ovc_vm_snap {
	char name[64];
	uint64_t id;
	struct ovc_mem_stats mem;
	double faults_per_sec;
	double pageins_per_sec;
	double pageouts_per_sec;
	bool has_balloon;
	struct ovc_balloon_stats balloon;
	bool has_pager;
	struct ovc_pager_stats pager;
	struct ovc_wss_snap wss;
	struct ovc_vm_policy policy;
	struct ovc_vm_targets targets;
	unsigned int nvcpus;
	const struct ovc_vcpu_snap *vcpus;
	double used_pct;
	double rdy_pct;
};

/**
 * struct ovc_stats_snapshot - the host and its VMs at one tick
 * @seq: the tick that made it (1, 2, ...); never reused
 * @at_ns: CLOCK_MONOTONIC time it was taken
 * @interval_ns: time since the previous snapshot (0 for the first)
 * @fold_ns: how long taking it took
 * @host: the host's memory
 * @ncpus: CPUs the process may run on
 * @nvms: entries in @vms
 * @vms: the VMs, in creation order
 *
 * Immutable once published. Everything it points to lives as long as it does.
 */
struct ovc_stats_snapshot {
	uint64_t seq;
	uint64_t at_ns;
	uint64_t interval_ns;
	uint64_t fold_ns;
	struct ovc_host_mem_snap host;
	unsigned int ncpus;
	unsigned int nvms;
	const struct ovc_vm_snap *vms;
};

/**
 * ovc_thread_register() - let the calling thread read snapshots lock-free
 *
 * Snapshots are published with RCU; a thread that calls
 * ovc_stats_read_lock() must be registered first. Library threads (manager,
 * fault engine, control socket) are. Pair with ovc_thread_unregister() before
 * the thread exits.
 *
 * Context: any thread not yet registered; may wait for a grace period.
 */
OVC_EXPORT void ovc_thread_register(void);

/**
 * ovc_thread_unregister() - undo ovc_thread_register()
 *
 * Context: a registered thread outside any read-side section.
 */
OVC_EXPORT void ovc_thread_unregister(void);

/**
 * ovc_stats_read_lock() - the latest snapshot, for reading in place
 * @host: the host
 *
 * Enters an RCU read-side section: the snapshot stays valid until
 * ovc_stats_read_unlock(). Never blocks and never makes the publisher wait;
 * sections nest. Do not sleep or call back into ovc while inside.
 *
 * Return: the snapshot, or NULL before the first tick (or for a NULL @host);
 * call ovc_stats_read_unlock() either way.
 * Context: a thread registered with ovc_thread_register().
 */
OVC_EXPORT const struct ovc_stats_snapshot *ovc_stats_read_lock(struct ovc_host *host);

/**
 * ovc_stats_read_unlock() - leave the section ovc_stats_read_lock() entered
 * @host: the host given to ovc_stats_read_lock()
 */
OVC_EXPORT void ovc_stats_read_unlock(struct ovc_host *host);

/**
 * ovc_stats_get() - take a reference on the latest snapshot
 * @host: the host
 *
 * For readers that keep a snapshot across blocking calls. Pair with
 * ovc_stats_put().
 *
 * Return: the snapshot, or NULL (errno EAGAIN) before the first tick, or
 * EINVAL for a NULL @host.
 * Context: a thread registered with ovc_thread_register(); lock-free.
 */
OVC_EXPORT const struct ovc_stats_snapshot *ovc_stats_get(struct ovc_host *host);

/**
 * ovc_stats_put() - drop a reference from ovc_stats_get()
 * @snap: the snapshot (NULL is ignored)
 *
 * Context: any thread.
 */
OVC_EXPORT void ovc_stats_put(const struct ovc_stats_snapshot *snap);

/**
 * ovc_stats_find_vm() - a VM's entry in a snapshot, by name
 * @snap: the snapshot
 * @name: the VM's name
 *
 * Return: the entry (valid as long as @snap), or NULL.
 * Context: any thread; pure function.
 */
OVC_EXPORT const struct ovc_vm_snap *ovc_stats_find_vm(const struct ovc_stats_snapshot *snap,
						       const char *name);

/**
 * ovc_host_read_meminfo() - read the host's memory figures now
 * @out: filled from /proc/meminfo and /proc/pressure/memory
 *
 * Return: 0, -EINVAL, or the negative errno of reading /proc/meminfo.
 * Context: any thread; reads procfs.
 */
OVC_EXPORT int ovc_host_read_meminfo(struct ovc_host_mem_snap *out);

#ifdef __cplusplus
}
#endif

#endif /* OVC_STATS_H */
