/* SPDX-License-Identifier: MIT */
/* ovc/cpusched.h: vCPU scheduling: demand, entitlement, admission, NUMA placement, enforcement. */
#ifndef OVC_CPUSCHED_H
#define OVC_CPUSCHED_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <ovc/common.h>
#include <ovc/policy.h>
#include <ovc/stats.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ovc_host;

/** Default scheduling period of the throttle backend (budgets refill each period). */
#define OVC_CPU_THROTTLE_PERIOD_MS 20
/** Default rebalance period of the placement, and the imbalance that triggers it. */
#define OVC_CPU_REBALANCE_MS 2000
#define OVC_CPU_IMBALANCE_PCT 10.0

/**
 * struct ovc_cpusched_config - how the CPU scheduler runs
 * @backend: "auto", "cgroup2", "cgroup1", "affinity", "throttle" or "none"
 *	(compute and publish entitlements only); auto tries cgroup2, cgroup1,
 *	throttle in that order
 * @cgroup_root: for the cgroup backends, the directory under which ovc makes
 *	its own sub-cgroup per VM (NULL: /sys/fs/cgroup/unified or
 *	/sys/fs/cgroup for v2, /sys/fs/cgroup/cpu and /sys/fs/cgroup/cpuset
 *	for v1); for v1 @cgroup_root is the cpu hierarchy and
 *	@cgroup_cpuset_root the cpuset one
 * @cgroup_cpuset_root: cgroup v1 cpuset hierarchy (NULL: /sys/fs/cgroup/cpuset;
 *	"" to leave cpusets alone)
 * @topology_xml: hwloc XML topology to place on (NULL: the real machine)
 * @capacity: physical CPUs to divide among VMs; 0 for the snapshot's ncpus
 * @demand_headroom: fraction added to a VM's measured demand before it bounds
 *	the entitlement, so a VM can be seen to grow (default 0.05)
 * @demand_decay: what is left of a VM's old demand after one second when its
 *	new demand is lower (0: the last tick only; default 0.001): demand rises
 *	in one tick and falls geometrically, whatever the tick period
 * @throttle_period_ms: budget period of the throttle backend
 * @rebalance_ms: shortest time between two placement rebalances
 * @imbalance_pct: node load spread (percent of a node's capacity) that
 *	triggers a rebalance
 * @place: place VMs on NUMA nodes and vCPUs on cores (cpusets or affinity)
 * @bind_memory: bind each VM's RAM to its home node with mbind()
 *
 * Fill with ovc_cpusched_config_init() first.
 */
struct ovc_cpusched_config {
	const char *backend;
	const char *cgroup_root;
	const char *cgroup_cpuset_root;
	const char *topology_xml;
	double capacity;
	double demand_headroom;
	double demand_decay;
	unsigned int throttle_period_ms;
	unsigned int rebalance_ms;
	double imbalance_pct;
	bool place;
	bool bind_memory;
};

/**
 * ovc_cpusched_config_init() - the defaults
 * @cfg: filled
 *
 * Context: any thread.
 */
OVC_EXPORT void ovc_cpusched_config_init(struct ovc_cpusched_config *cfg);

/* ------------------------------------------------------------------------ */
/* Pure functions: entitlement from demand and policy. */

/**
 * struct ovc_cpu_claim - one VM's claim on the host's CPUs, in physical CPUs
 * @shares: relative weight for what is above reservations (> 0)
 * @reservation: guaranteed when demanded
 * @limit: never more than this (> 0: resolve "no limit" to the vCPU count)
 * @demand: what the VM would use now if it could
 */
struct ovc_cpu_claim {
	double shares;
	double reservation;
	double limit;
	double demand;
};

/**
 * ovc_cpu_entitle() - divide @capacity by weighted max-min fair water-filling
 * @claims: @n claims
 * @n: number of claims
 * @capacity: physical CPUs to divide (>= 0)
 * @entitled: @n results, in physical CPUs
 *
 * Each VM i gets clamp(L * shares_i, lo_i, hi_i), with hi_i = min(limit_i,
 * demand_i) and lo_i = min(reservation_i, hi_i), for the one level L at which
 * the sum is @capacity (or everyone gets hi_i when that sums to less). So
 * surplus above reservations goes by shares, and what a VM does not demand
 * goes to the others. Reservations that exceed @capacity (admission was
 * skipped) are scaled down proportionally.
 *
 * Return: 0, or -EINVAL for a bad argument (NaN, negative, zero shares).
 * Context: any thread; pure function, O(n log n).
 */
OVC_EXPORT int ovc_cpu_entitle(const struct ovc_cpu_claim *claims, unsigned int n,
			       double capacity, double *entitled);

/**
 * ovc_cpu_vcpu_demand() - one vCPU's demand over the last tick, in physical CPUs
 * @prev: the vCPU in the previous snapshot (NULL: none)
 * @cur: the vCPU now
 * @interval_ns: wall time between the two snapshots
 *
 * Run time plus ready (runqueue wait) time plus the time enforcement held it
 * back, per wall time, from nanosecond counters (never sampled), at most the
 * time the vCPU was not halted (an idle guest that wakes to poll and waits
 * for a CPU meanwhile is not demanding). Without schedstat, time inside KVM_RUN stands in for run
 * plus ready time. At most 1.0.
 *
 * Context: any thread; pure function.
 */
OVC_EXPORT double ovc_cpu_vcpu_demand(const struct ovc_vcpu_snap *prev,
				      const struct ovc_vcpu_snap *cur, uint64_t interval_ns);

/**
 * struct ovc_cpu_vm_plan - what the scheduler decided for one VM
 * @id: the VM's id in the snapshot
 * @nvcpus: its vCPUs
 * @demand: smoothed demand, physical CPUs
 * @entitled: entitlement, physical CPUs
 * @shares: @id's cpu_shares
 * @reservation: cpu_reservation
 * @limit: cpu_limit resolved (the vCPU count when none)
 * @home_node: NUMA node index (logical) the VM is placed on, -1 if unplaced
 */
struct ovc_cpu_vm_plan {
	uint64_t id;
	unsigned int nvcpus;
	double demand;
	double entitled;
	double shares;
	double reservation;
	double limit;
	int home_node;
};

/**
 * struct ovc_cpu_plan - the scheduler's decision for every VM of a snapshot
 * @capacity: physical CPUs divided
 * @nvms: entries in @vms (the snapshot's VMs, same order)
 * @vms: the VMs
 * @cap: allocated entries of @vms (owned by the plan)
 */
struct ovc_cpu_plan {
	double capacity;
	unsigned int nvms;
	struct ovc_cpu_vm_plan *vms;
	unsigned int cap;
};

/**
 * ovc_cpu_plan_compute() - entitlements for a snapshot
 * @prev: the previous snapshot (NULL on the first tick: demand is then the
 *	vCPU count, until measured)
 * @cur: the snapshot to plan for
 * @prev_plan: the plan made for @prev (NULL: none), for demand smoothing and
 *	sticky home nodes
 * @cfg: the configuration (capacity, headroom, decay)
 * @out: the plan, reused across calls (start zeroed; free with
 *	ovc_cpu_plan_fini())
 *
 * Demand per VM is the sum of ovc_cpu_vcpu_demand() over its vCPUs, smoothed
 * as @cfg says; entitlement is ovc_cpu_entitle() of the policies in @cur.
 * VMs are matched between snapshots by id. @out's home nodes are copied from
 * @prev_plan; placement is ovc_cpu_place().
 *
 * Return: 0, -EINVAL, -ENOMEM (@out unchanged).
 * Context: any thread; pure function of its arguments.
 */
OVC_EXPORT int ovc_cpu_plan_compute(const struct ovc_stats_snapshot *prev,
				    const struct ovc_stats_snapshot *cur,
				    const struct ovc_cpu_plan *prev_plan,
				    const struct ovc_cpusched_config *cfg,
				    struct ovc_cpu_plan *out);

/**
 * ovc_cpu_plan_fini() - free a plan's entries
 * @plan: the plan (zeroed afterwards)
 */
OVC_EXPORT void ovc_cpu_plan_fini(struct ovc_cpu_plan *plan);

/**
 * ovc_cpu_admit() - whether a VM's CPU reservation fits the host
 * @snap: the VMs there are (the VM named @name is counted with @p instead of
 *	its snapshot policy)
 * @capacity: physical CPUs
 * @name: the VM the policy is for
 * @p: its new policy
 * @why: a static reason when refused (may be NULL)
 *
 * Return: 0, -ENOSPC when the reservations would exceed @capacity, -EINVAL.
 * Context: any thread; pure function.
 */
OVC_EXPORT int ovc_cpu_admit(const struct ovc_stats_snapshot *snap, double capacity,
			     const char *name, const struct ovc_vm_policy *p, const char **why);

/* ------------------------------------------------------------------------ */
/* Placement on a hwloc topology. */

struct ovc_topology;

/**
 * ovc_topology_load() - the machine's topology, or one from a hwloc XML file
 * @xml_path: NULL for the real machine
 *
 * Return: the topology, or NULL with errno set. Pair with ovc_topology_destroy().
 * Context: any thread.
 */
OVC_EXPORT struct ovc_topology *ovc_topology_load(const char *xml_path);

/** ovc_topology_destroy() - free a topology (NULL is ignored). */
OVC_EXPORT void ovc_topology_destroy(struct ovc_topology *topo);

/** ovc_topology_nodes() - NUMA nodes (at least 1). */
OVC_EXPORT unsigned int ovc_topology_nodes(const struct ovc_topology *topo);

/** ovc_topology_cores() - physical cores in node @node, or all for node -1. */
OVC_EXPORT unsigned int ovc_topology_cores(const struct ovc_topology *topo, int node);

/**
 * ovc_topology_node_os_index() - the OS number of logical node @node (for
 * mbind), or -1 when out of range
 */
OVC_EXPORT int ovc_topology_node_os_index(const struct ovc_topology *topo, unsigned int node);

/**
 * ovc_topology_core_cpu() - the OS CPU number of the first PU of core @core
 * (logical, over the machine), or -1
 */
OVC_EXPORT int ovc_topology_core_cpu(const struct ovc_topology *topo, unsigned int core);

/**
 * ovc_topology_core_node() - the logical node of core @core, or -1
 */
OVC_EXPORT int ovc_topology_core_node(const struct ovc_topology *topo, unsigned int core);

/**
 * struct ovc_cpu_placement - where every vCPU of a plan goes
 * @nvms: the plan's VMs
 * @vcpu_first: for VM i, its first entry in @vcpu_core
 * @nvcpus: total vCPUs
 * @vcpu_core: logical core per vCPU (ovc_topology_core_cpu() gives the CPU)
 * @node_load: entitled physical CPUs per node
 * @nnodes: entries in @node_load
 * @imbalance_pct: (max - min) node load in percent of a node's cores
 * @moved: VMs whose home node changed in this call
 * @cap_vms, @cap_vcpus: allocated (owned by the placement)
 */
struct ovc_cpu_placement {
	unsigned int nvms;
	unsigned int *vcpu_first;
	unsigned int nvcpus;
	unsigned int *vcpu_core;
	double *node_load;
	unsigned int nnodes;
	double imbalance_pct;
	unsigned int moved;
	unsigned int cap_vms, cap_vcpus;
};

/**
 * ovc_cpu_place() - home node per VM, and each vCPU on a core of it
 * @topo: the topology
 * @plan: the plan; home_node is read (sticky) and written
 * @rebalance: whether VMs may leave their home node (the caller paces this:
 *	every @cfg->rebalance_ms); new VMs are always placed
 * @imbalance_pct: moves happen only while nodes differ by at least this much
 * @out: the placement, reused across calls (start zeroed; free with
 *	ovc_cpu_placement_fini())
 *
 * New VMs go to the node with the lowest load per core; on a rebalance, VMs
 * move from the most to the least loaded node while that lowers the spread.
 * Within its node, each vCPU goes to the core with the least entitled load
 * (a VM's entitlement split evenly over its vCPUs).
 *
 * Return: 0, -EINVAL, -ENOMEM. Context: any thread; pure function.
 */
OVC_EXPORT int ovc_cpu_place(const struct ovc_topology *topo, struct ovc_cpu_plan *plan,
			     bool rebalance, double imbalance_pct,
			     struct ovc_cpu_placement *out);

/** ovc_cpu_placement_fini() - free a placement's arrays. */
OVC_EXPORT void ovc_cpu_placement_fini(struct ovc_cpu_placement *pl);

/* ------------------------------------------------------------------------ */
/* Enforcement backends. */

/**
 * struct ovc_cpu_enforce_vm - what a backend is asked to apply to one VM
 * @id: the VM's id
 * @name: its name
 * @nvcpus: entries in @tids and @cpus
 * @tids: its vCPU threads
 * @cpus: OS CPU per vCPU, or -1 (no placement)
 * @node_cpus: OS CPUs of its home node, -1 terminated, or NULL (no placement)
 * @shares: policy shares
 * @entitled: entitlement, physical CPUs
 * @reservation: policy reservation, physical CPUs
 * @limit: the policy's limit, physical CPUs (0: none)
 * @capacity: physical CPUs divided among all VMs (weights are relative to it)
 */
struct ovc_cpu_enforce_vm {
	uint64_t id;
	const char *name;
	unsigned int nvcpus;
	const pid_t *tids;
	const int *cpus;
	const int *node_cpus;
	double shares;
	double entitled;
	double reservation;
	double limit;
	double capacity;
};

/**
 * struct ovc_cpu_enforce_ops - a way to make the kernel (or ovc) give VMs their entitlement
 * @name: "cgroup2", "cgroup1", "affinity", "throttle"
 * @probe: whether the backend can work with @cfg; on failure fills @why (one
 *	line, @len bytes). Called from any thread. Return 0 or negative errno.
 * @open: set up (make ovc's own cgroups, start threads); *@state is the
 *	backend's. Called once from the thread that configures the host. Return
 *	0 or negative errno with @why filled.
 * @apply: apply one VM's decision; called from the manager thread each tick
 *	with host->lock held (the vCPU threads cannot go meanwhile), so it must
 *	not block for long. Return 0 or negative errno (logged, not fatal).
 * @forget: the VM @id is gone (may be called for ids never applied); called
 *	like @apply. Must undo what @apply did for it.
 * @close: undo everything (remove ovc's cgroups after moving its threads
 *	back, restore affinities); called once with no lock held.
 */
struct ovc_cpu_enforce_ops {
	const char *name;
	int (*probe)(const struct ovc_cpusched_config *cfg, char *why, size_t len);
	int (*open)(const struct ovc_cpusched_config *cfg, struct ovc_host *host,
		    void **state, char *why, size_t len);
	int (*apply)(void *state, const struct ovc_cpu_enforce_vm *vm);
	void (*forget)(void *state, uint64_t id);
	void (*close)(void *state);
};

/*
 * The backends, for struct ovc_cpusched_config or ovc_cpu_enforce_find():
 * cgroup v2 (cpu.weight, cpu.max, cpuset.cpus), cgroup v1 (cpu.shares,
 * cfs_quota/period, cpuset.cpus), affinity (sched_setaffinity only,
 * unprivileged) and throttle (in-process: parks vCPUs over their budget and
 * kicks them out of KVM_RUN). Each method's context is on the struct above.
 */
OVC_EXPORT extern const struct ovc_cpu_enforce_ops ovc_cpu_enforce_cgroup2;
OVC_EXPORT extern const struct ovc_cpu_enforce_ops ovc_cpu_enforce_cgroup1;
OVC_EXPORT extern const struct ovc_cpu_enforce_ops ovc_cpu_enforce_affinity;
OVC_EXPORT extern const struct ovc_cpu_enforce_ops ovc_cpu_enforce_throttle;

/**
 * ovc_cpu_enforce_find() - a backend by name, with auto-detection
 * @cfg: the configuration (@cfg->backend: a name or "auto")
 * @why: for a refusal, one line saying why (@len bytes)
 *
 * Return: the backend, or NULL (errno ENOENT for an unknown name, or the
 * probe's error) with @why filled. "none" returns NULL with errno 0.
 * Context: any thread.
 */
OVC_EXPORT const struct ovc_cpu_enforce_ops *ovc_cpu_enforce_find(const struct ovc_cpusched_config *cfg,
								  char *why, size_t len);

/* ------------------------------------------------------------------------ */
/* The host's CPU scheduler. */

/**
 * ovc_host_set_cpusched() - schedule the host's vCPUs each tick
 * @host: the host
 * @cfg: the configuration (copied; NULL for defaults)
 *
 * Chooses the backend, loads the topology and registers a tick hook that
 * reads the snapshot, computes entitlements (ovc_cpu_plan_compute()), places
 * VMs (ovc_cpu_place()), writes each VM's targets.cpu_entitled and
 * targets.cpu_demand under the host lock, and applies them through the
 * backend. Undone by ovc_host_destroy(). Once per host.
 *
 * Return: 0, -EINVAL, -EALREADY, -ENOENT (unknown backend), or the backend's
 * error (a log line says why).
 * Context: any thread not holding host locks.
 */
OVC_EXPORT int ovc_host_set_cpusched(struct ovc_host *host, const struct ovc_cpusched_config *cfg);

/**
 * ovc_host_cpusched_backend() - the name of the backend in use ("none" if
 * no scheduler or no backend)
 */
OVC_EXPORT const char *ovc_host_cpusched_backend(struct ovc_host *host);

#ifdef __cplusplus
}
#endif

#endif /* OVC_CPUSCHED_H */
