/* SPDX-License-Identifier: MIT */
/* The host and its VMs: the objects a VMM creates first. */
#ifndef OVC_HOST_H
#define OVC_HOST_H

#include <stddef.h>
#include <stdint.h>
#include <ovc/common.h>
#include <ovc/core.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ovc_host;
struct ovc_vm;

/**
 * struct ovc_host_config - how a host is set up
 * @fault_threads: fault-engine handler threads shared by all VMs (1–64)
 * @tick_ms: period of the manager thread's tick in milliseconds (10–60000)
 * @log_fn: where log lines go; NULL writes them to stderr
 * @log_opaque: passed to @log_fn
 * @log_level: lines above this enum ovc_log_level are dropped
 *
 * Fill with ovc_host_config_init() first, then change what you need, so that
 * fields added later get their defaults.
 */
struct ovc_host_config {
	unsigned int fault_threads;
	unsigned int tick_ms;
	ovc_log_fn log_fn;
	void *log_opaque;
	int log_level;
};

/**
 * ovc_host_config_init() - fill a host configuration with the defaults
 * @cfg: the configuration to fill
 *
 * Defaults: 2 fault threads, a 1000 ms tick, log to stderr at OVC_LOG_INFO.
 * Context: any thread.
 */
OVC_EXPORT void ovc_host_config_init(struct ovc_host_config *cfg);

/**
 * ovc_host_new() - create a host: the fault engine and the manager thread
 * @cfg: the configuration, or NULL for the defaults
 *
 * Several hosts may live in one process; they share nothing.
 * Pair with ovc_host_destroy().
 *
 * Return: the host, or NULL with errno set (EINVAL for a bad @cfg, ENOMEM,
 * or the errno of a failed thread or descriptor creation).
 * Context: any thread; starts library threads.
 */
OVC_EXPORT struct ovc_host *ovc_host_new(const struct ovc_host_config *cfg);

/**
 * ovc_host_destroy() - stop a host's threads and free it
 * @host: the host
 *
 * Return: 0, -EBUSY (nothing done) while VMs of the host are alive,
 * -EINVAL for NULL.
 * Context: any thread but the host's own; takes the host lock.
 */
OVC_EXPORT OVC_MUST_CHECK int ovc_host_destroy(struct ovc_host *host);

/**
 * ovc_host_ticks() - how many ticks the manager thread has run
 * @host: the host
 *
 * Return: the tick count (0 for NULL).
 * Context: any thread, lock-free.
 */
OVC_EXPORT uint64_t ovc_host_ticks(const struct ovc_host *host);

/**
 * ovc_host_vm_count() - how many VMs the host has
 * @host: the host
 *
 * Return: the count (0 for NULL).
 * Context: any thread; takes the host lock.
 */
OVC_EXPORT unsigned int ovc_host_vm_count(struct ovc_host *host);

/**
 * ovc_vm_new() - create a VM with no RAM yet
 * @host: the host
 * @name: a name unique within the host: 1–63 characters of [A-Za-z0-9_.-]
 *
 * Pair with ovc_vm_destroy().
 *
 * Return: the VM, or NULL with errno set: EINVAL for a bad name, EEXIST when
 * the name is taken, ENOMEM, or the errno of userfaultfd(2).
 * Context: any thread; takes the host lock.
 */
OVC_EXPORT struct ovc_vm *ovc_vm_new(struct ovc_host *host, const char *name);

/**
 * ovc_vm_destroy() - unmap a VM's RAM and free the VM
 * @vm: the VM
 *
 * The VMM must have stopped every thread that accesses the VM's RAM and
 * removed its vCPUs (ovc_vcpu_remove()).
 *
 * Return: 0, -EINVAL for NULL, or -EBUSY while vCPUs are registered.
 * Context: any thread; takes the host lock; waits for the fault engine to
 * let go of the VM (an RCU grace period).
 */
OVC_EXPORT OVC_MUST_CHECK int ovc_vm_destroy(struct ovc_vm *vm);

/**
 * ovc_vm_name() - a VM's name
 * @vm: the VM
 *
 * Return: the name, valid for the VM's lifetime.
 * Context: any thread.
 */
OVC_EXPORT const char *ovc_vm_name(const struct ovc_vm *vm);

/**
 * ovc_vm_add_ram() - give a VM a range of guest RAM owned by ovc
 * @vm: the VM
 * @gpa: guest-physical start, a multiple of OVC_PAGE_SIZE
 * @size: bytes, a non-zero multiple of OVC_PAGE_SIZE
 * @hva: set to the host address of the range, to hand to
 *	KVM_SET_USER_MEMORY_REGION and to the VMM's device models
 *
 * The RAM is a memfd mapped MAP_SHARED and registered with the VM's
 * userfaultfd; nothing is allocated up front (every page starts as
 * OVC_PAGE_ZERO), so terabytes of address space cost nothing until touched.
 * Every first touch, by a vCPU or any host thread, is served by the fault
 * engine.
 *
 * Return: 0; -EINVAL for a NULL @vm; -EINVAL (and a log line) for a NULL
 * @hva, a misaligned or empty range, one
 * that overlaps a range of this VM, ends beyond OVC_GPA_LIMIT, or a VM
 * that has OVC_VM_RAM_RANGES_MAX ranges; -ENOMEM when the VM would hold
 * more than OVC_VM_RAM_MAX bytes or memory runs out; or the errno of
 * memfd_create, mmap or userfaultfd registration.
 * Context: any thread; takes the VM's RAM lock. Safe while vCPUs run.
 */
OVC_EXPORT OVC_MUST_CHECK int ovc_vm_add_ram(struct ovc_vm *vm, uint64_t gpa,
					     uint64_t size, void **hva);

/**
 * ovc_vm_set_fatal_handler() - who learns that a guest page's contents are lost
 * @vm: the VM
 * @fn: called when a store cannot give a page back (checksum or decryption
 *	failure, I/O error); NULL for none
 * @opaque: passed to @fn
 *
 * The page is then poisoned: any access gets SIGBUS (a vCPU thread inside
 * KVM_RUN too). The handler runs first, so the VMM can stop the VM's vCPUs
 * and keep its own threads away from the page (see ovc_fatal_fn for what it
 * may do there).
 * Never a silent zero page.
 *
 * Return: 0 or -EINVAL. Context: any thread.
 */
OVC_EXPORT int ovc_vm_set_fatal_handler(struct ovc_vm *vm, ovc_fatal_fn fn, void *opaque);

/**
 * ovc_vm_get_mem_stats() - copy out a VM's memory counters
 * @vm: the VM
 * @st: filled with the counters
 *
 * Counters are read one by one without stopping the VM, so they are each
 * exact but not one atomic picture.
 *
 * Return: 0, or -EINVAL for NULL arguments.
 * Context: any thread, lock-free.
 */
OVC_EXPORT int ovc_vm_get_mem_stats(struct ovc_vm *vm, struct ovc_mem_stats *st);

/**
 * ovc_vm_page_state() - where one guest page's contents are now
 * @vm: the VM
 * @gpa: any guest-physical address in the page
 * @busy: set to 1 when the page is under a transition (may be NULL)
 *
 * Return: an enum ovc_page_state, or -EINVAL when @gpa is not in the VM's RAM.
 * Context: any thread, lock-free; the answer may be stale when it returns.
 */
OVC_EXPORT int ovc_vm_page_state(struct ovc_vm *vm, uint64_t gpa, int *busy);

#ifdef __cplusplus
}
#endif

#endif /* OVC_HOST_H */
