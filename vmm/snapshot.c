// SPDX-License-Identifier: MIT
/* vmm/snapshot.c: --save and --restore: the machine state (vCPUs, irqchip, serial, reports) beside libovc's RAM image. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/vmm.h"

#define SAVED_MAGIC	0x5643564f	/* "OVCV" */
#define SAVED_VERSION	1
#define MSR_IA32_TSC	0x10

/* One vCPU as KVM sees it; restored in this order (KVM's own advice). */
struct saved_vcpu {
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_xsave xsave;
	struct kvm_xcrs xcrs;
	uint64_t tsc;
	struct kvm_lapic_state lapic;
	struct kvm_mp_state mp;
	struct kvm_vcpu_events events;
};

/* The application blob of the RAM image: everything of the VM that is not RAM. */
struct saved_vm {
	uint32_t magic;
	uint32_t version;
	uint32_t nvcpus;
	uint32_t nreports;
	uint64_t mem;
	uint64_t corrupt_reports;
	struct kvm_irqchip chips[3];	/* PIC master, PIC slave, IOAPIC */
	struct {
		uint8_t ier, lcr, mcr, scr, dll, dlm;
	} serial;
	struct vmm_report reports[OVC_GUEST_REPORT_MAX];
	struct saved_vcpu vcpus[OVC_GUEST_MAX_VCPUS];
};

static int get_msr(int fd, uint32_t index, uint64_t *val)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e;
	} m = { .h.nmsrs = 1, .e.index = index };

	if (ioctl(fd, KVM_GET_MSRS, &m) != 1)
		return -EIO;
	*val = m.e.data;
	return 0;
}

static int set_msr(int fd, uint32_t index, uint64_t val)
{
	struct {
		struct kvm_msrs h;
		struct kvm_msr_entry e;
	} m = { .h.nmsrs = 1, .e.index = index, .e.data = val };

	return ioctl(fd, KVM_SET_MSRS, &m) == 1 ? 0 : -EIO;
}

/* Finish what the last exit left pending (an IN's data), then read the vCPU. */
static int save_vcpu(struct vmm_vcpu *v, struct saved_vcpu *s, const char **what)
{
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_RELEASE);
	if (ioctl(v->fd, KVM_RUN, 0) == 0 || (errno != EINTR && errno != EAGAIN)) {
		*what = "KVM_RUN (completing the last exit)";
		__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_RELEASE);
		return errno ? -errno : -EIO;
	}
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_RELEASE);
#define GET(req, field) do { \
		if (ioctl(v->fd, req, &s->field) < 0) { *what = #req; return -errno; } \
	} while (0)
	GET(KVM_GET_SREGS, sregs);
	GET(KVM_GET_REGS, regs);
	GET(KVM_GET_XSAVE, xsave);
	GET(KVM_GET_XCRS, xcrs);
	GET(KVM_GET_LAPIC, lapic);
	GET(KVM_GET_MP_STATE, mp);
	GET(KVM_GET_VCPU_EVENTS, events);
#undef GET
	if (get_msr(v->fd, MSR_IA32_TSC, &s->tsc)) {
		*what = "KVM_GET_MSRS (TSC)";
		return -EIO;
	}
	return 0;
}

static int restore_vcpu(struct vmm_vcpu *v, const struct saved_vcpu *s, const char **what)
{
#define SET(req, field) do { \
		if (ioctl(v->fd, req, &s->field) < 0) { *what = #req; return -errno; } \
	} while (0)
	SET(KVM_SET_SREGS, sregs);
	SET(KVM_SET_REGS, regs);
	SET(KVM_SET_XSAVE, xsave);
	SET(KVM_SET_XCRS, xcrs);
	if (set_msr(v->fd, MSR_IA32_TSC, s->tsc)) {
		*what = "KVM_SET_MSRS (TSC)";
		return -EIO;
	}
	SET(KVM_SET_LAPIC, lapic);
	SET(KVM_SET_MP_STATE, mp);
	SET(KVM_SET_VCPU_EVENTS, events);
#undef SET
	return 0;
}

/**
 * vmm_vm_save() - pause a running VM and write it to @path
 * @vm: the VM
 * @path: the image (libovc's RAM image with this VM's machine state inside)
 *
 * Stops and joins the vCPU threads, completes their last exits, reads their
 * registers, the irqchip and the serial port, and saves RAM with
 * ovc_vm_save() while nothing runs. The VM ends in VM_SAVED (exit code 0) or,
 * when anything fails, VM_CRASHED with the reason. Called from the main thread.
 * Return: 0 or -errno.
 */
int vmm_vm_save(struct vmm_vm *vm, const char *path)
{
	struct ovc_save_stats st;
	struct saved_vm *s;
	const char *what = NULL;
	unsigned int i;
	int ret = 0;

	/* First, so that the vCPUs stopping do not read as a crash. */
	vmm_vm_finish(vm, VM_SAVED, 0, "saving to %s", path);
	pthread_mutex_lock(&vm->lock);
	if (vm->state != VM_SAVED)
		ret = -ECANCELED;
	pthread_mutex_unlock(&vm->lock);
	if (ret) {
		fprintf(stderr, "ovc-vmm: vm %s: not saved: it had already ended (%s)\n",
			vm->spec->name, vm->why);
		return ret;
	}
	vmm_vm_join(vm);
	s = calloc(1, sizeof(*s));
	if (!s) {
		ret = -ENOMEM;
		what = "memory";
		goto out;
	}
	s->magic = SAVED_MAGIC;
	s->version = SAVED_VERSION;
	s->nvcpus = vm->spec->vcpus;
	s->mem = vm->spec->mem;
	for (i = 0; i < vm->spec->vcpus && !ret; i++)
		ret = save_vcpu(&vm->vcpus[i], &s->vcpus[i], &what);
	for (i = 0; i < 3 && !ret; i++) {
		s->chips[i].chip_id = i;
		if (ioctl(vm->fd, KVM_GET_IRQCHIP, &s->chips[i]) < 0) {
			ret = -errno;
			what = "KVM_GET_IRQCHIP";
		}
	}
	if (ret)
		goto out;
	pthread_mutex_lock(&vm->serial.lock);
	s->serial.ier = vm->serial.ier;
	s->serial.lcr = vm->serial.lcr;
	s->serial.mcr = vm->serial.mcr;
	s->serial.scr = vm->serial.scr;
	s->serial.dll = vm->serial.dll;
	s->serial.dlm = vm->serial.dlm;
	pthread_mutex_unlock(&vm->serial.lock);
	pthread_mutex_lock(&vm->lock);
	s->nreports = vm->nreports;
	memcpy(s->reports, vm->reports, sizeof(s->reports));
	pthread_mutex_unlock(&vm->lock);
	s->corrupt_reports = atomic_load(&vm->corrupt_reports);

	ret = ovc_vm_save(vm->ovc, path, s, sizeof(*s), &st);
	if (ret) {
		what = "ovc_vm_save";
		goto out;
	}
	vm->saved = st;
	if (!vm->vmm->opts->quiet)
		printf("vm %s: saved to %s: %" PRIu64 " pages, %" PRIu64 " stored, %" PRIu64
		       " zero, %" PRIu64 " ballooned, %.1f MiB in %.1f ms\n", vm->spec->name, path,
		       st.pages, st.data_pages, st.zero_pages, st.ballooned_pages,
		       (double)st.file_bytes / (1 << 20), (double)st.ns / 1e6);
out:
	pthread_mutex_lock(&vm->lock);
	if (ret) {
		vm->state = VM_CRASHED;
		vm->exit_code = 3;
		snprintf(vm->why, sizeof(vm->why), "not saved: %s: %s", what, strerror(-ret));
	} else {
		snprintf(vm->why, sizeof(vm->why), "saved to %s", path);
	}
	pthread_mutex_unlock(&vm->lock);
	if (ret)
		fprintf(stderr, "ovc-vmm: vm %s: %s\n", vm->spec->name, vm->why);
	free(s);
	return ret;
}

/*
 * Restore the RAM of @vm from @path lazily and keep the machine state for
 * vmm_vm_restore_cpus(). Called from vmm_vm_new() after the RAM is added,
 * instead of loading the guest. One line in @err on failure.
 */
int vmm_vm_restore_ram(struct vmm_vm *vm, const char *path, char *err, size_t errlen)
{
	struct saved_vm *s = calloc(1, sizeof(*s));
	size_t len = 0;
	int ret;

	if (!s) {
		snprintf(err, errlen, "restore: out of memory");
		return -ENOMEM;
	}
	vm->restore_t0 = vmm_now_ns();
	ret = ovc_vm_restore(vm->ovc, path, s, sizeof(*s), &len);
	if (ret) {
		snprintf(err, errlen, "cannot restore %s: %s%s", path, strerror(-ret),
			 ret == -EINVAL || ret == -EMSGSIZE ?
			 " (not an ovc-vmm image of a VM like this one)" : "");
		free(s);
		return ret;
	}
	if (len != sizeof(*s) || s->magic != SAVED_MAGIC || s->version != SAVED_VERSION ||
	    s->nvcpus != vm->spec->vcpus || s->mem != vm->spec->mem ||
	    s->nreports > OVC_GUEST_REPORT_MAX) {
		snprintf(err, errlen, "%s was saved from a VM with another machine (%u vCPUs, %" PRIu64
			 " MiB; this one has %u, %" PRIu64 " MiB) or another ovc-vmm", path,
			 len == sizeof(*s) ? s->nvcpus : 0, len == sizeof(*s) ? s->mem >> 20 : 0,
			 vm->spec->vcpus, vm->spec->mem >> 20);
		free(s);
		return -EINVAL;
	}
	vm->restored = s;
	return 0;
}

/* Put the saved machine state into the new vCPUs and irqchip. Main thread, before start. */
int vmm_vm_restore_cpus(struct vmm_vm *vm, char *err, size_t errlen)
{
	struct saved_vm *s = vm->restored;
	const char *what = NULL;
	unsigned int i;
	int ret = 0;

	for (i = 0; i < 3 && !ret; i++) {
		if (ioctl(vm->fd, KVM_SET_IRQCHIP, &s->chips[i]) < 0) {
			ret = -errno;
			what = "KVM_SET_IRQCHIP";
		}
	}
	for (i = 0; i < vm->spec->vcpus && !ret; i++)
		ret = restore_vcpu(&vm->vcpus[i], &s->vcpus[i], &what);
	if (ret) {
		snprintf(err, errlen, "restoring the machine state: %s: %s", what, strerror(-ret));
		return ret;
	}
	vm->serial.ier = s->serial.ier;
	vm->serial.lcr = s->serial.lcr;
	vm->serial.mcr = s->serial.mcr;
	vm->serial.scr = s->serial.scr;
	vm->serial.dll = s->serial.dll;
	vm->serial.dlm = s->serial.dlm;
	vm->nreports = s->nreports;
	memcpy(vm->reports, s->reports, sizeof(vm->reports));
	atomic_store(&vm->corrupt_reports, s->corrupt_reports);
	return 0;
}

/* Once the restored RAM is all in: one line with how it got there. Main thread. */
void vmm_vm_restore_progress(struct vmm_vm *vm)
{
	struct ovc_restore_stats rs;

	if (!vm->restored || vm->resident_reported ||
	    ovc_vm_restore_get_stats(vm->ovc, &rs) || (!rs.resident_ns && rs.streaming))
		return;
	vm->resident_reported = true;
	if (vm->vmm->opts->quiet)
		return;
	if (rs.resident_ns)
		printf("vm %s: restored RAM fully resident %.1f ms after the restore began: %" PRIu64
		       " pages on first touch, %" PRIu64 " streamed (%" PRIu64 " right after a touch)\n",
		       vm->spec->name, (double)rs.resident_ns / 1e6, rs.lazy, rs.streamed,
		       rs.prefetched);
	else
		printf("vm %s: restored RAM: %" PRIu64 " pages could not be read (%" PRIu64
		       " checksum failures)\n", vm->spec->name, rs.remaining, rs.checksum_failures);
	fflush(stdout);
}
