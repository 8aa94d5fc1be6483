// SPDX-License-Identifier: MIT
/* vmm/vcpu.c: a vCPU thread: KVM_RUN, the libovc hooks around it, and the guest's exits. */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/vmm.h"

#define IDLE_MAX_US		1000000	/* longest single idle wait */
#define CORRUPT_LOG_MAX		10	/* corruption lines per VM on stderr */
#define RING0_STACK_GPA		0xa0000ULL
#define RING0_STACK_SIZE	0x2000ULL

static const char *const exc_names[32] = {
	"#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow",
	"#BR bound range", "#UD invalid opcode", "#NM device not available",
	"#DF double fault", "coprocessor overrun", "#TS invalid TSS",
	"#NP segment not present", "#SS stack fault", "#GP general protection",
	"#PF page fault", "reserved", "#MF x87 error", "#AC alignment check",
	"#MC machine check", "#XM SIMD error", "#VE virtualization",
	"#CP control protection",
};

/* Wake the vCPU wherever it is: in KVM_RUN, about to enter it, or idle. */
void vmm_vcpu_kick(struct vmm_vcpu *v)
{
	uint64_t one = 1;

	if (v->run)
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELEASE);
	if (write(v->wake_fd, &one, sizeof(one)) < 0) {
		/* already signalled */
	}
	pthread_kill(v->thread, SIGUSR1);
}

/* libovc's CPU throttle: leave KVM_RUN so ovc_vcpu_run_begin() can hold the vCPU back. */
static void throttle_kick(void *opaque)
{
	struct vmm_vcpu *v = opaque;

	if (v->run)
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELEASE);
	pthread_kill(v->thread, SIGUSR1);
}

/* The guest's HLT: sleep until @us pass, an interrupt is due, or the VMM stops it. */
static void idle(struct vmm_vcpu *v, uint64_t us)
{
	struct pollfd p = { .fd = v->wake_fd, .events = POLLIN };
	struct timespec ts;
	uint64_t drain;

	if (us > IDLE_MAX_US)
		us = IDLE_MAX_US;
	ts.tv_sec = (time_t)(us / 1000000);
	ts.tv_nsec = (long)(us % 1000000) * 1000;
	v->idle_calls++;
	ovc_vcpu_halt_begin(v->ovc);
	if (!atomic_load_explicit(&v->stop, memory_order_relaxed) && ppoll(&p, 1, &ts, NULL) > 0) {
		if (read(v->wake_fd, &drain, sizeof(drain)) < 0) {
			/* a racing reader emptied it */
		}
	}
	ovc_vcpu_halt_end(v->ovc);
}

static void panic(struct vmm_vcpu *v, uint32_t vector)
{
	struct vmm_vm *vm = v->vm;
	uint64_t top = RING0_STACK_GPA + (v->index + 1) * RING0_STACK_SIZE;
	const uint64_t *frame = vmm_gpa(vm, top - 48, 48);
	struct kvm_sregs sregs;
	uint64_t rip = 0, err = 0;

	/* The CPU aligns RSP0 to 16 and pushes SS, RSP, RFLAGS, CS, RIP (and an error code). */
	if (frame) {
		rip = frame[1];
		err = frame[0];
	}
	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		memset(&sregs, 0, sizeof(sregs));
	vmm_vm_finish(vm, VM_CRASHED, 128 + (int)(vector & 0xff),
		      "vCPU %u: guest exception %u (%s) at rip %#" PRIx64 ", error %#" PRIx64
		      ", cr2 %#llx", v->index, vector,
		      vector < 32 && exc_names[vector] ? exc_names[vector] : "interrupt",
		      rip, err, (unsigned long long)sregs.cr2);
}

static bool report_name_ok(const char *n)
{
	size_t i;

	for (i = 0; i < OVC_GUEST_REPORT_NAME; i++) {
		if (!n[i])
			return i > 0;
		if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '_'))
			return false;
	}
	return false;
}

/* A guest's named counter. The guest is not trusted: bad reports are dropped. */
static void report(struct vmm_vcpu *v, uint32_t gpa)
{
	struct vmm_vm *vm = v->vm;
	const struct ovc_guest_report *src = vmm_gpa(vm, gpa, sizeof(*src));
	struct ovc_guest_report *r = &v->report;
	unsigned int i;

	if (!src)
		return;
	memcpy(r, src, sizeof(*r));	/* once: the guest may change it meanwhile */
	if (!report_name_ok(r->name) || r->op > OVC_GUEST_REPORT_SET)
		return;
	pthread_mutex_lock(&vm->lock);
	for (i = 0; i < vm->nreports; i++) {
		if (!strcmp(vm->reports[i].name, r->name))
			break;
	}
	if (i == vm->nreports && i < OVC_GUEST_REPORT_MAX) {
		memcpy(vm->reports[i].name, r->name, sizeof(r->name));
		vm->reports[i].value = 0;
		vm->nreports++;
	}
	if (i < vm->nreports) {
		if (r->op == OVC_GUEST_REPORT_SET)
			vm->reports[i].value = r->value;
		else
			vm->reports[i].value += r->value;
	}
	pthread_mutex_unlock(&vm->lock);
}

static void corrupt(struct vmm_vcpu *v, uint32_t pfn)
{
	struct vmm_vm *vm = v->vm;
	uint64_t n = atomic_fetch_add(&vm->corrupt_reports, 1);

	if (n < CORRUPT_LOG_MAX)
		fprintf(stderr, "ovc-vmm: vm %s: guest found page %#" PRIx32 " (gpa %#" PRIx64
			") corrupt\n", vm->spec->name, pfn, (uint64_t)pfn << OVC_PAGE_SHIFT);
}

static void port_out(struct vmm_vcpu *v, uint16_t port, uint32_t val)
{
	switch (port) {
	case OVC_PORT_EXIT:
		vmm_vm_finish(v->vm, VM_EXITED, (int)val, "guest exited with %" PRIu32, val);
		break;
	case OVC_PORT_PANIC:
		panic(v, val);
		break;
	case OVC_PORT_HALT:
		idle(v, val);
		break;
	case OVC_PORT_REPORT:
		report(v, val);
		break;
	case OVC_PORT_CORRUPT:
		corrupt(v, val);
		break;
	default:
		v->unknown_io++;
		break;
	}
}

static void handle_io(struct vmm_vcpu *v)
{
	struct kvm_run *run = v->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool in = run->io.direction == KVM_EXIT_IO_IN;
	uint32_t i;

	v->io_exits++;
	for (i = 0; i < run->io.count; i++, data += run->io.size) {
		uint16_t port = run->io.port;

		if (port >= OVC_PORT_SERIAL && port < OVC_PORT_SERIAL + 8) {
			vmm_serial_io(&v->vm->serial, port - OVC_PORT_SERIAL, in, data);
			if (in && run->io.size > 1)
				memset(data + 1, 0, run->io.size - 1);
		} else if (in) {
			memset(data, 0xff, run->io.size);
			v->unknown_io++;
		} else {
			uint32_t val = 0;

			memcpy(&val, data, run->io.size < 4 ? run->io.size : 4);
			port_out(v, port, val);
		}
	}
}

static void handle_mmio(struct vmm_vcpu *v)
{
	struct kvm_run *run = v->run;
	unsigned int len = run->mmio.len <= sizeof(run->mmio.data) ? run->mmio.len : 0;

	v->mmio_exits++;
	if (len && vmm_virtio_mmio(v->vm, run->mmio.phys_addr, run->mmio.data, len,
				   run->mmio.is_write))
		return;
	/* Nothing lives there: reads see zeros, writes are dropped. */
	v->unknown_io++;
	if (!run->mmio.is_write)
		memset(run->mmio.data, 0, sizeof(run->mmio.data));
}

/* Return false when the VM cannot go on. */
static bool handle_exit(struct vmm_vcpu *v)
{
	struct kvm_run *run = v->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(v);
		return true;
	case KVM_EXIT_MMIO:
		handle_mmio(v);
		return true;
	case KVM_EXIT_HLT:
		idle(v, IDLE_MAX_US / 100);
		return true;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_SHUTDOWN:
		vmm_vm_finish(v->vm, VM_CRASHED, 3, "vCPU %u: triple fault", v->index);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		vmm_vm_finish(v->vm, VM_CRASHED, 3, "vCPU %u: KVM entry failed, reason %#llx",
			      v->index,
			      (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		vmm_vm_finish(v->vm, VM_CRASHED, 3, "vCPU %u: KVM internal error %u",
			      v->index, run->internal.suberror);
		return false;
	default:
		vmm_vm_finish(v->vm, VM_CRASHED, 3, "vCPU %u: unexpected KVM exit %u",
			      v->index, run->exit_reason);
		return false;
	}
}

/**
 * vmm_vcpu_thread() - run one vCPU until its VM stops
 * @arg: the struct vmm_vcpu
 *
 * Registers itself with libovc (ovc_vm_add_vcpu() with its own tid), brackets
 * every KVM_RUN with ovc_vcpu_run_begin()/_end() and every idle period with
 * ovc_vcpu_halt_begin()/_end(), and unregisters before it returns.
 */
void *vmm_vcpu_thread(void *arg)
{
	struct vmm_vcpu *v = arg;
	struct vmm_vm *vm = v->vm;
	struct timespec now;
	int r, err;

	v->ovc = ovc_vm_add_vcpu(vm->ovc, gettid());
	if (!v->ovc) {
		vmm_vm_finish(vm, VM_CRASHED, 3, "vCPU %u: cannot register with ovc: %s",
			      v->index, strerror(errno));
		goto out;
	}
	ovc_vcpu_set_kick(v->ovc, throttle_kick, v);
	while (!atomic_load_explicit(&v->stop, memory_order_acquire)) {
		r = ovc_vcpu_run_begin(v->ovc);
		if (r == -EAGAIN)
			continue;	/* still throttled: look at stop again */
		if (r)
			break;
		r = ioctl(v->fd, KVM_RUN, 0);
		err = errno;
		ovc_vcpu_run_end(v->ovc);
		__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_RELAXED);
		if (r < 0) {
			if (err == EINTR || err == EAGAIN)
				continue;
			vmm_vm_finish(vm, VM_CRASHED, 3, "vCPU %u: KVM_RUN: %s", v->index,
				      strerror(err));
			break;
		}
		v->exits++;
		if (!handle_exit(v))
			break;
	}
	ovc_vcpu_get_stats(v->ovc, &v->final);
	if (!clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now))
		v->cpu_ns = (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec;
	ovc_vcpu_set_kick(v->ovc, NULL, NULL);
	ovc_vcpu_remove(v->ovc);
out:
	if (atomic_fetch_sub(&vm->running_vcpus, 1) == 1)
		vmm_vm_finish(vm, VM_CRASHED, 3, "every vCPU stopped");
	return NULL;
}
