/* SPDX-License-Identifier: MIT */
/* ovc/memsched.h: the memory scheduler: who gets how much RAM, and how it is taken back. */
#ifndef OVC_MEMSCHED_H
#define OVC_MEMSCHED_H

#include <stdbool.h>
#include <stdint.h>

#include <ovc/common.h>
#include <ovc/stats.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ovc_host;

/**
 * enum ovc_mem_state - how short of free memory the host is
 * @OVC_MEM_HIGH: enough; nothing is reclaimed, balloons may deflate
 * @OVC_MEM_SOFT: reclaim with balloons (the pager only where a VM has no
 *	working balloon)
 * @OVC_MEM_HARD: balloons and the pager
 * @OVC_MEM_LOW: the pager for everything above target, at the boosted rate;
 *	VMs above target are flagged OVC_MEMSCHED_OVER_TARGET
 *
 * A state is entered when free memory falls below its threshold and left
 * (one step up per tick) only when free memory reaches the threshold of the
 * state above it: each band between two thresholds is the hysteresis.
 */
enum ovc_mem_state {
	OVC_MEM_HIGH = 0,
	OVC_MEM_SOFT,
	OVC_MEM_HARD,
	OVC_MEM_LOW,
	OVC_MEM_NR_STATES
};

/**
 * struct ovc_memsched_config - the memory scheduler's knobs
 * @budget_bytes: host memory ovc may use for guest RAM (resident pages and
 *	the compressed tiers); required, at least 1 MiB
 * @idle_tax: τ, the idle memory tax (0.0–0.99; 0.75): an idle page costs
 *	its VM 1/(1-τ) times what an active page costs
 * @high_frac: free memory (share of the budget) the plan keeps (0.06)
 * @soft_frac: below this SOFT (0.04)
 * @hard_frac: below this HARD (0.02)
 * @low_frac: below this LOW (0.01); high > soft > hard > low > 0
 * @follow_host: also count as used what the host lacks: free memory is at
 *	most the snapshot's MemAvailable when it has one (true)
 * @demand_headroom: a VM's demand is max(resident, active) times
 *	1 + this (0.10; 0–4)
 * @deadband_frac: a target change smaller than this share of the VM's RAM
 *	is ignored (0.05, the standard error of a 100-page working-set
 *	sample; 0–0.5)
 * @deadband_min_bytes: and never smaller than this (4 MiB)
 * @target_step_frac: most a target may fall per tick, as a share of the
 *	VM's RAM (0.10; 0.001–1); rises are bounded by the budget only
 * @balloon_rate_bytes: most a balloon target moves per VM per tick (64 MiB)
 * @page_rate_bytes: most the pager is asked per VM per tick (32 MiB)
 * @page_rate_total_bytes: most the pager is asked per tick, all VMs
 *	(256 MiB; at least @page_rate_bytes)
 * @low_boost: pager rates are multiplied by this in LOW (2.0; 1–16)
 * @dwell_ticks: after a balloon moved one way it does not move the other
 *	way for this many ticks, unless the VM's demand grows (5; ≤ 1000)
 * @grow_hold_ticks: a VM seen growing is spared reclaim for this many
 *	ticks after the last sign (5; 1–1000)
 * @grow_frac: resident memory rising by this share of the VM's RAM in one
 *	tick, or the working set exceeding the resident memory by this much
 *	(and by twice the estimate's standard error), is growth (0.02; 0.001–1)
 * @pagein_rate: page-ins per second at or above this are growth (256)
 * @fault_rate_min: served faults per second at or above this, and twice
 *	the previous tick's, are growth (1000)
 *
 * Fill with ovc_memsched_config_init() first, then change what you need.
 */
struct ovc_memsched_config {
	uint64_t budget_bytes;
	double idle_tax;
	double high_frac;
	double soft_frac;
	double hard_frac;
	double low_frac;
	bool follow_host;
	double demand_headroom;
	double deadband_frac;
	uint64_t deadband_min_bytes;
	double target_step_frac;
	uint64_t balloon_rate_bytes;
	uint64_t page_rate_bytes;
	uint64_t page_rate_total_bytes;
	double low_boost;
	unsigned int dwell_ticks;
	unsigned int grow_hold_ticks;
	double grow_frac;
	double pagein_rate;
	double fault_rate_min;
};

/* Per-VM flags of a plan. */
/** dedup should scan this VM (it is above target): the call point for sharing */
#define OVC_MEMSCHED_SHARE		(1u << 0)
/** set the balloon to @balloon_target_bytes */
#define OVC_MEMSCHED_BALLOON		(1u << 1)
/** ask the pager for @reclaim_pages */
#define OVC_MEMSCHED_PAGE		(1u << 2)
/** the VM's demand is growing: no reclaim, memory flows back */
#define OVC_MEMSCHED_GROWING		(1u << 3)
/** its balloon is stalled: skipped, the rest fell through to the pager */
#define OVC_MEMSCHED_STALLED		(1u << 4)
/** it has no working balloon (none, no driver yet, or capped): skipped */
#define OVC_MEMSCHED_NO_BALLOON		(1u << 5)
/** it has no pager: paging skipped */
#define OVC_MEMSCHED_NO_PAGER		(1u << 6)
/** above target in LOW (ESX would block its vCPUs) */
#define OVC_MEMSCHED_OVER_TARGET	(1u << 7)
/** the guest deflated its balloon itself; the target follows it down */
#define OVC_MEMSCHED_GUEST_DEFLATE	(1u << 8)

/**
 * struct ovc_memsched_vm_plan - what the plan decided for one VM
 * @id: the VM's id (struct ovc_vm_snap.id)
 * @ram_bytes: its RAM
 * @resident_bytes: resident pages in the snapshot
 * @zip_bytes: host memory its compressed tier holds; what it holds is
 *	@resident_bytes + @zip_bytes, and that is what is held to the target
 * @active_bytes: the active memory used: the working-set estimate, or the
 *	resident size when the VM has none yet (wss.valid false)
 * @demand_bytes: what it could use now (first water-filling cap)
 * @min_bytes: its floor: the reservation, at most its RAM
 * @max_bytes: its ceiling: the limit, at most its RAM
 * @entitled_bytes: its share of the budget this tick (shares per active
 *	page with the idle tax, between @min_bytes and @max_bytes)
 * @target_bytes: @entitled_bytes after hysteresis and rate limits: what it
 *	may hold, resident or compressed (never below @min_bytes, never above
 *	@max_bytes)
 * @reclaim_bytes: memory this tick asks back from it (0 in HIGH)
 * @balloon_target_bytes: what its balloon should hold (valid with
 *	OVC_MEMSCHED_BALLOON; else the balloon's current target)
 * @reclaim_pages: pages for the pager (with OVC_MEMSCHED_PAGE)
 * @unmet_bytes: of @reclaim_bytes, what no mechanism could take this tick
 * @flags: OVC_MEMSCHED_*
 */
struct ovc_memsched_vm_plan {
	uint64_t id;
	uint64_t ram_bytes;
	uint64_t resident_bytes;
	uint64_t zip_bytes;
	uint64_t active_bytes;
	uint64_t demand_bytes;
	uint64_t min_bytes;
	uint64_t max_bytes;
	uint64_t entitled_bytes;
	uint64_t target_bytes;
	uint64_t reclaim_bytes;
	uint64_t balloon_target_bytes;
	uint64_t reclaim_pages;
	uint64_t unmet_bytes;
	unsigned int flags;
};

/**
 * struct ovc_memsched_vm_state - what one tick remembers of a VM for the next
 *
 * Opaque to callers: carried from one plan to the next.
 */
struct ovc_memsched_vm_state {
	uint64_t id;
	uint64_t target_bytes;
	uint64_t balloon_bytes;
	uint64_t balloon_actual_bytes;
	uint64_t balloon_deflated;
	uint64_t active_bytes;
	uint64_t resident_bytes;
	double faults_per_sec;
	int last_dir;
	unsigned int dwell;
	unsigned int grow_hold;
};

/**
 * struct ovc_memsched_state - what a plan hands to the next tick
 * @seq: the snapshot it was made from
 * @state: the free-memory state (enum ovc_mem_state)
 * @ticks: plans made so far in this chain
 * @nvms: entries in @vms, in snapshot order
 * @vms: per VM
 */
struct ovc_memsched_state {
	uint64_t seq;
	int state;
	uint64_t ticks;
	unsigned int nvms;
	struct ovc_memsched_vm_state *vms;
};

/**
 * struct ovc_memsched_plan - one tick's decisions
 * @state: the free-memory state (enum ovc_mem_state)
 * @budget_bytes: the budget, in whole pages
 * @used_bytes: resident guest memory plus compressed tiers
 * @free_bytes: budget minus used (bounded by MemAvailable with follow_host)
 * @alloc_bytes: what the targets may add up to: the budget less the free
 *	memory kept (high_frac), never less than the reservations
 * @target_sum_bytes: the targets added up (≤ @alloc_bytes ≤ budget)
 * @reclaim_goal_bytes: what reaching the high threshold needs
 * @balloon_bytes: inflation asked this tick, all VMs
 * @page_bytes: paging asked this tick, all VMs
 * @unmet_bytes: reclaim no mechanism could take
 * @reservations_over_budget: the reservations exceed the budget (admission
 *	refuses that; the plan then keeps every VM at its reservation)
 * @nvms: entries in @vms (the snapshot's VMs, same order)
 * @capacity: room in @vms and @next.vms (ovc_memsched_plan_reserve())
 * @vms: per VM
 * @next: pass as @prev to the next ovc_memsched_plan()
 */
struct ovc_memsched_plan {
	int state;
	uint64_t budget_bytes;
	uint64_t used_bytes;
	uint64_t free_bytes;
	uint64_t alloc_bytes;
	uint64_t target_sum_bytes;
	uint64_t reclaim_goal_bytes;
	uint64_t balloon_bytes;
	uint64_t page_bytes;
	uint64_t unmet_bytes;
	bool reservations_over_budget;
	unsigned int nvms;
	unsigned int capacity;
	struct ovc_memsched_vm_plan *vms;
	struct ovc_memsched_state next;
};

/**
 * ovc_memsched_config_init() - the defaults (budget 0: set it)
 * @cfg: filled
 *
 * Context: any thread.
 */
OVC_EXPORT void ovc_memsched_config_init(struct ovc_memsched_config *cfg);

/**
 * ovc_memsched_config_check() - whether a configuration is usable
 * @cfg: the configuration
 * @why: set to a static one-line reason when it is not (may be NULL)
 *
 * Return: 0 or -EINVAL. Context: any thread; pure function.
 */
OVC_EXPORT int ovc_memsched_config_check(const struct ovc_memsched_config *cfg,
					 const char **why);

/**
 * ovc_mem_state_name() - "high", "soft", "hard", "low"
 * @state: an enum ovc_mem_state
 *
 * Return: a static string, "invalid" otherwise.
 */
OVC_EXPORT const char *ovc_mem_state_name(int state);

/**
 * ovc_memsched_plan_init() - an empty plan
 * @plan: the plan
 *
 * Pair with ovc_memsched_plan_fini().
 */
OVC_EXPORT void ovc_memsched_plan_init(struct ovc_memsched_plan *plan);

/**
 * ovc_memsched_plan_reserve() - room for @nvms VMs
 * @plan: from ovc_memsched_plan_init()
 * @nvms: VMs the next snapshot has
 *
 * Return: 0, -EINVAL, -ENOMEM (the plan keeps its old room).
 * Context: any thread; allocates.
 */
OVC_EXPORT OVC_MUST_CHECK int ovc_memsched_plan_reserve(struct ovc_memsched_plan *plan,
							unsigned int nvms);

/**
 * ovc_memsched_plan_fini() - free what a plan holds
 * @plan: the plan (NULL is ignored)
 */
OVC_EXPORT void ovc_memsched_plan_fini(struct ovc_memsched_plan *plan);

/**
 * ovc_memsched_plan() - the memory scheduler: targets and reclaim for one tick
 * @cfg: the configuration (ovc_memsched_config_check() must pass)
 * @snap: the host's snapshot
 * @prev: the previous plan's @next (NULL for the first tick); may not be
 *	@out's own @next
 * @out: filled; room for @snap->nvms VMs (ovc_memsched_plan_reserve())
 *
 * Entitlement: the budget less the high free threshold is divided among
 * the VMs so that shares per cost are equal, where an active page costs 1
 * and an idle page k = 1/(1-τ) (Waldspurger, OSDI 2002), between each VM's
 * reservation and limit; first up to each VM's demand, then what is left
 * up to its limit. Targets then move with a dead band and rate limits; the
 * free-memory state chooses the actions: sharing, then balloons, then the
 * pager (compressed tier, then swap file). A VM without a balloon, with a
 * stalled or capped one, or without a pager is skipped for that mechanism.
 * docs/memsched.md has the formulas and a worked example.
 *
 * Pure: reads only its arguments, writes only @out, allocates nothing.
 *
 * Return: 0, -EINVAL (bad @cfg or arguments; @out unchanged), -ENOSPC
 * (@out too small).
 * Context: any thread.
 */
OVC_EXPORT OVC_MUST_CHECK int ovc_memsched_plan(const struct ovc_memsched_config *cfg,
						const struct ovc_stats_snapshot *snap,
						const struct ovc_memsched_state *prev,
						struct ovc_memsched_plan *out);

/**
 * struct ovc_memsched_status - the memory scheduler of a host, live
 * @enabled: ovc_host_set_memsched() turned it on
 * @state: the last plan's free-memory state (enum ovc_mem_state)
 * @ticks: plans applied
 * @plan_ns: how long the last plan took to make
 * @plan_ns_max: the longest so far
 * @apply_ns: how long the last plan took to apply (balloons, pager)
 * @used_bytes: @free_bytes: the last plan's view of the budget
 * @free_bytes: see @used_bytes
 * @balloon_sets: balloon targets set
 * @paged: pages the pager made non-resident on the plans' request
 * @errors: mechanism calls that failed (logged)
 */
struct ovc_memsched_status {
	bool enabled;
	int state;
	uint64_t ticks;
	uint64_t plan_ns;
	uint64_t plan_ns_max;
	uint64_t apply_ns;
	uint64_t used_bytes;
	uint64_t free_bytes;
	uint64_t balloon_sets;
	uint64_t paged;
	uint64_t errors;
};

/**
 * ovc_host_set_memsched() - turn the memory scheduler on, change it, or off
 * @host: the host
 * @cfg: the configuration; NULL turns the scheduler off (targets and
 *	balloons stay where they are)
 *
 * Each manager tick then reads the snapshot, makes a plan, writes each VM's
 * targets (struct ovc_vm_targets) and applies it: balloon targets, pager
 * reclaim. While it is on, ovc_vm_destroy() and ovc_balloon_remove() wait
 * for a tick in progress, and ovc_vm_set_policy() refuses reservations that
 * would add up to more than the budget (-ENOSPC).
 *
 * Return: 0; -EINVAL (bad @cfg: a log line says why, nothing changed);
 * -ENOSPC (the VMs' reservations already exceed the budget); -ENOMEM.
 * Context: any thread but the manager; waits for a tick in progress.
 */
OVC_EXPORT int ovc_host_set_memsched(struct ovc_host *host, const struct ovc_memsched_config *cfg);

/**
 * ovc_host_get_memsched() - the memory scheduler's configuration and status
 * @host: the host
 * @cfg: filled with the configuration in force (may be NULL)
 * @st: filled (may be NULL)
 *
 * Return: 0 or -EINVAL. Context: any thread; takes the host lock.
 */
OVC_EXPORT int ovc_host_get_memsched(struct ovc_host *host, struct ovc_memsched_config *cfg,
				     struct ovc_memsched_status *st);

#ifdef __cplusplus
}
#endif

#endif /* OVC_MEMSCHED_H */
