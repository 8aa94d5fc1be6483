/* SPDX-License-Identifier: MIT */
/* Per-VM shares, reservations and limits: what the schedulers divide the host by. */
#ifndef OVC_POLICY_H
#define OVC_POLICY_H

#include <stdint.h>
#include <ovc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ovc_vm;

/** Shares a VM gets by default, for memory and for CPU (ESX's "normal"). */
#define OVC_SHARES_DEFAULT 1000
/** Most shares a VM may hold (ESX allows up to 1,000,000 custom shares). */
#define OVC_SHARES_MAX 1000000

/**
 * struct ovc_vm_policy - how much of the host a VM may have
 * @mem_shares: relative claim on host memory (1–OVC_SHARES_MAX)
 * @mem_reservation_bytes: never reclaimed below this many resident bytes
 * @mem_limit_bytes: never more resident than this; 0 for no limit (the
 *	VM's RAM size)
 * @cpu_shares: relative claim on host CPU (1–OVC_SHARES_MAX)
 * @cpu_reservation: CPU always available to the VM, in physical CPUs
 *	(1.5 = one and a half cores)
 * @cpu_limit: most CPU the VM may use, in physical CPUs; 0 for no limit
 *	(its vCPU count)
 *
 * Fill with ovc_vm_policy_init() first so fields added later get defaults.
 */
struct ovc_vm_policy {
	uint64_t mem_shares;
	uint64_t mem_reservation_bytes;
	uint64_t mem_limit_bytes;
	uint64_t cpu_shares;
	double cpu_reservation;
	double cpu_limit;
};

/**
 * ovc_vm_policy_init() - the defaults: normal shares, no reservation, no limit
 * @p: filled
 *
 * Context: any thread.
 */
OVC_EXPORT void ovc_vm_policy_init(struct ovc_vm_policy *p);

/**
 * ovc_vm_policy_check() - whether a policy is self-consistent
 * @p: the policy
 *
 * Shares in range, limits not below reservations, CPU values finite and
 * non-negative. Capacity (reservations of all VMs against the host) is the
 * schedulers' admission check, not this one.
 *
 * Return: 0, or -EINVAL with a static reason in @why (may be NULL).
 * Context: any thread; pure function.
 */
OVC_EXPORT int ovc_vm_policy_check(const struct ovc_vm_policy *p, const char **why);

/**
 * ovc_vm_set_policy() - change a VM's shares, reservations and limits
 * @vm: the VM
 * @p: the new policy, checked with ovc_vm_policy_check()
 *
 * Takes effect from the next tick.
 *
 * Return: 0, -EINVAL (nothing changed; a log line says why), or -ENOSPC
 * (nothing changed) when the VMs' memory reservations would exceed the memory
 * scheduler's budget (while it is on) or their CPU reservations the CPU
 * scheduler's capacity (the host's CPUs when it is off).
 * Context: any thread; takes the host lock.
 */
OVC_EXPORT int ovc_vm_set_policy(struct ovc_vm *vm, const struct ovc_vm_policy *p);

/**
 * ovc_vm_get_policy() - a VM's current policy
 * @vm: the VM
 * @p: filled
 *
 * Return: 0 or -EINVAL. Context: any thread; takes the host lock.
 */
OVC_EXPORT int ovc_vm_get_policy(struct ovc_vm *vm, struct ovc_vm_policy *p);

#ifdef __cplusplus
}
#endif

#endif /* OVC_POLICY_H */
