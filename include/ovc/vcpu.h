/* SPDX-License-Identifier: MIT */
/* ovc/vcpu.h: the VMM's vCPU threads, registered so ovc can see run, halt and exit time. */
#ifndef OVC_VCPU_H
#define OVC_VCPU_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <ovc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ovc_vm;
struct ovc_vcpu;

/** Most vCPUs one VM may register. */
#define OVC_VM_VCPUS_MAX 256

/**
 * struct ovc_vcpu_stats - what ovc has seen of one vCPU thread
 * @index: the vCPU's index in its VM (order of registration, lowest free)
 * @tid: the thread id the VMM registered
 * @run_ns: time inside KVM_RUN (between ovc_vcpu_run_begin() and _end())
 * @halt_ns: time the guest was idle (between ovc_vcpu_halt_begin() and _end())
 * @runs: KVM_RUN calls
 * @halts: idle periods
 * @running: 1 while inside KVM_RUN, 2 while halted, 0 otherwise
 * @throttled_ns: time the CPU scheduler held the vCPU back
 */
struct ovc_vcpu_stats {
	unsigned int index;
	pid_t tid;
	uint64_t run_ns;
	uint64_t halt_ns;
	uint64_t runs;
	uint64_t halts;
	unsigned int running;
	uint64_t throttled_ns;
};

/**
 * ovc_vm_add_vcpu() - register a vCPU thread of @vm
 * @vm: the VM
 * @tid: the thread's id (gettid()); ovc reads its scheduler statistics and
 *	may later place or throttle it
 *
 * Called from any thread; takes the host lock. Pair with ovc_vcpu_remove();
 * ovc_vm_destroy() refuses with -EBUSY while vCPUs are registered.
 *
 * Return: the vCPU, or NULL with errno set: EINVAL (bad argument), EEXIST
 * (@tid already registered in this VM), ENOSPC (OVC_VM_VCPUS_MAX reached),
 * ENOMEM.
 */
OVC_EXPORT struct ovc_vcpu *ovc_vm_add_vcpu(struct ovc_vm *vm, pid_t tid);

/**
 * ovc_vcpu_remove() - unregister a vCPU (its thread has stopped running guest code)
 * @vcpu: from ovc_vm_add_vcpu()
 *
 * Called from any thread once the vCPU thread no longer calls the hooks
 * below. Return: 0 or -EINVAL.
 */
OVC_EXPORT int ovc_vcpu_remove(struct ovc_vcpu *vcpu);

/**
 * ovc_vcpu_run_begin() - the vCPU thread is about to enter KVM_RUN
 * @vcpu: the calling thread's vCPU
 *
 * Called only from the vCPU's own thread, no lock held, paired with
 * ovc_vcpu_run_end() after KVM_RUN returns. This is where the CPU
 * scheduler holds a throttled vCPU back, so the VMM must not take locks its
 * other threads need around it.
 *
 * While the CPU scheduler's throttle backend has the vCPU over its budget,
 * the call waits here until the budget refills (the wait is added to the
 * vCPU's throttled time), ovc_vcpu_wake() is called, or 100 ms pass.
 *
 * Return: 0 to enter the guest, -EAGAIN when the wait ended without the
 * budget refilling (check whether the vCPU should stop, then call again), or another negative errno (-EINVAL: @vcpu
 * is NULL) when the VMM must not enter.
 */
OVC_EXPORT int ovc_vcpu_run_begin(struct ovc_vcpu *vcpu);

/**
 * ovc_vcpu_run_end() - KVM_RUN returned (any exit reason)
 * @vcpu: the calling thread's vCPU
 *
 * Called only from the vCPU's own thread, after ovc_vcpu_run_begin().
 */
OVC_EXPORT void ovc_vcpu_run_end(struct ovc_vcpu *vcpu);

/**
 * ovc_vcpu_halt_begin() - the guest went idle (a HLT exit, or a guest's idle call)
 * @vcpu: the calling thread's vCPU
 *
 * Called only from the vCPU's own thread, outside KVM_RUN, paired with
 * ovc_vcpu_halt_end() when the VMM resumes it.
 */
OVC_EXPORT void ovc_vcpu_halt_begin(struct ovc_vcpu *vcpu);

/**
 * ovc_vcpu_halt_end() - the idle vCPU was woken
 * @vcpu: the calling thread's vCPU
 */
OVC_EXPORT void ovc_vcpu_halt_end(struct ovc_vcpu *vcpu);

/**
 * typedef ovc_vcpu_kick_fn - make a vCPU thread leave KVM_RUN soon
 * @opaque: the pointer given to ovc_vcpu_set_kick()
 *
 * Called from an ovc thread (the CPU scheduler's pacer) with ovc locks
 * held: it must not block or call back into ovc. A VMM sets
 * kvm_run->immediate_exit and signals the thread, so KVM_RUN returns and the
 * thread calls ovc_vcpu_run_begin() again, where it is held back.
 */
typedef void (*ovc_vcpu_kick_fn)(void *opaque);

/**
 * ovc_vcpu_set_kick() - how ovc gets a throttled vCPU out of the guest
 * @vcpu: the vCPU
 * @fn: the kick (NULL: none; the vCPU is then held back only when it next
 *	calls ovc_vcpu_run_begin())
 * @opaque: passed to @fn
 *
 * Called from any thread. Return: 0 or -EINVAL.
 */
OVC_EXPORT int ovc_vcpu_set_kick(struct ovc_vcpu *vcpu, ovc_vcpu_kick_fn fn, void *opaque);

/**
 * ovc_vcpu_may_run() - whether the vCPU is within its CPU budget now
 * @vcpu: the vCPU
 *
 * Lock-free; what ovc_vcpu_run_begin() checks before holding the thread back.
 * Return: true when it may enter the guest (or @vcpu is NULL).
 */
OVC_EXPORT bool ovc_vcpu_may_run(struct ovc_vcpu *vcpu);

/**
 * ovc_vcpu_wake() - end a wait inside ovc_vcpu_run_begin() early
 * @vcpu: the vCPU
 *
 * For a VMM that stops or interrupts the vCPU: a thread held back returns
 * -EAGAIN from ovc_vcpu_run_begin() at once. Called from any thread.
 */
OVC_EXPORT void ovc_vcpu_wake(struct ovc_vcpu *vcpu);

/**
 * ovc_vcpu_get_stats() - copy out a vCPU's counters
 * @vcpu: the vCPU
 * @st: filled in; a time interval still open is counted up to now
 *
 * Called from any thread; lock-free. Return: 0 or -EINVAL.
 */
OVC_EXPORT int ovc_vcpu_get_stats(struct ovc_vcpu *vcpu, struct ovc_vcpu_stats *st);

/**
 * ovc_vm_vcpu_count() - how many vCPUs @vm has registered
 * @vm: the VM
 *
 * Takes the host lock.
 */
OVC_EXPORT unsigned int ovc_vm_vcpu_count(struct ovc_vm *vm);

#ifdef __cplusplus
}
#endif

#endif /* OVC_VCPU_H */
