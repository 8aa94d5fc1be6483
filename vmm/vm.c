// SPDX-License-Identifier: MIT
/* vmm/vm.c: one KVM VM on libovc RAM: creation, start, stop, and its end state. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/kit/chaos.h"
#include "vmm/vmm.h"

#define KVM_TSS_GPA	0xfffbd000ULL	/* where VMX keeps its real-mode TSS; out of our way */

static int add_ram(struct vmm_vm *vm)
{
	uint64_t mem = vm->spec->mem;
	struct kvm_userspace_memory_region r = { 0 };
	void *hva;
	int ret;

	vm->low_size = mem < OVC_GUEST_LOW_RAM_END ? mem : OVC_GUEST_LOW_RAM_END;
	vm->high_size = mem - vm->low_size;
	ret = ovc_vm_add_ram(vm->ovc, 0, vm->low_size, &hva);
	if (ret)
		return ret;
	vm->low = hva;
	r.slot = 0;
	r.memory_size = vm->low_size;
	r.userspace_addr = (uintptr_t)hva;
	if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
		return -errno;
	if (!vm->high_size)
		return 0;
	ret = ovc_vm_add_ram(vm->ovc, OVC_GUEST_HIGH_RAM, vm->high_size, &hva);
	if (ret)
		return ret;
	vm->high = hva;
	r.slot = 1;
	r.guest_phys_addr = OVC_GUEST_HIGH_RAM;
	r.memory_size = vm->high_size;
	r.userspace_addr = (uintptr_t)hva;
	return ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &r) < 0 ? -errno : 0;
}

static int create_vcpu(struct vmm_vm *vm, unsigned int i)
{
	struct vmm_vcpu *v = &vm->vcpus[i];
	int size, ret;

	v->vm = vm;
	v->index = i;
	v->fd = ioctl(vm->fd, KVM_CREATE_VCPU, i);
	if (v->fd < 0)
		return -errno;
	size = ioctl(vm->vmm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size <= 0)
		return -errno;
	v->run_size = (size_t)size;
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		return -errno;
	}
	v->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (v->wake_fd < 0)
		return -errno;
	ret = vmm_boot_vcpu(vm, v);
	if (ret)
		return ret;
	if (i == 0 && !vm->vmm->opts->restore) {
		struct ovc_guest_boot *boot = vmm_gpa(vm, OVC_GUEST_BOOT_GPA, sizeof(*boot));
		int khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);

		boot->tsc_khz = khz > 0 ? (uint64_t)khz : 0;
	}
	return 0;
}

static void vm_error(struct vmm_vm *vm, const char *what, int err)
{
	fprintf(stderr, "ovc-vmm: vm %s: %s: %s\n", vm->spec->name, what, strerror(-err));
}

/* A store lost a page: the VM cannot go on. Called from a fault-engine thread. */
static void fatal_page(void *opaque, uint64_t gfn, int err)
{
	struct vmm_vm *vm = opaque;

	vmm_vm_finish(vm, VM_CRASHED, 3, "guest page %#llx lost: %s",
		      (unsigned long long)gfn, strerror(-err));
}

static int add_pager(struct vmm_vm *vm)
{
	const struct vmm_opts *o = vm->vmm->opts;
	struct ovc_pager_config cfg;

	ovc_pager_config_init(&cfg);
	cfg.zip_cap_bytes = vm->spec->zip;
	cfg.swap_dir = o->swap_dir ? o->swap_dir : o->log_dir;
	cfg.swap_bytes = vm->spec->mem;
	vm->pager = ovc_vm_add_pager(vm->ovc, &cfg);
	return vm->pager ? 0 : -errno;
}

/**
 * vmm_vm_new() - create a VM: libovc RAM, KVM VM and vCPUs, the guest loaded
 * @vmm: the VMM
 * @spec: its --vm
 * @index: its position on the command line
 *
 * Called from the main thread. Prints one line on failure.
 * Return: the VM, or NULL (everything undone).
 */
struct vmm_vm *vmm_vm_new(struct vmm *vmm, const struct vmm_vm_spec *spec, unsigned int index)
{
	char err[512];
	struct vmm_vm *vm;
	unsigned int i;
	int ret;

	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return NULL;
	vm->vmm = vmm;
	vm->spec = spec;
	vm->index = index;
	vm->fd = -1;
	for (i = 0; i < OVC_GUEST_MAX_VCPUS; i++) {
		vm->vcpus[i].fd = -1;
		vm->vcpus[i].wake_fd = -1;
	}
	pthread_mutex_init(&vm->lock, NULL);

	vm->ovc = ovc_vm_new(vmm->host, spec->name);
	if (!vm->ovc) {
		vm_error(vm, "ovc_vm_new", -errno);
		goto err;
	}
	/* Before any page can be lost: a restore's stream checks pages at once. */
	ovc_vm_set_fatal_handler(vm->ovc, fatal_page, vm);
	if (spec->cpu_shares || spec->cpu_reservation > 0 || spec->cpu_limit > 0) {
		struct ovc_vm_policy p;

		ovc_vm_get_policy(vm->ovc, &p);
		if (spec->cpu_shares)
			p.cpu_shares = spec->cpu_shares;
		p.cpu_reservation = spec->cpu_reservation;
		p.cpu_limit = spec->cpu_limit;
		ret = ovc_vm_set_policy(vm->ovc, &p);
		if (ret) {
			vm_error(vm, "CPU policy", ret);
			goto err;
		}
	}
	vm->fd = ioctl(vmm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->fd < 0) {
		vm_error(vm, "KVM_CREATE_VM", -errno);
		goto err;
	}
	if (ioctl(vm->fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_GPA) < 0 ||
	    ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		vm_error(vm, "KVM irqchip", -errno);
		goto err;
	}
	ret = add_ram(vm);
	if (ret) {
		vm_error(vm, "guest RAM", ret);
		goto err;
	}
	/* A restored guest is in its RAM image, boot structures and all. */
	if (vmm->opts->restore)
		ret = vmm_vm_restore_ram(vm, vmm->opts->restore, err, sizeof(err));
	else
		ret = vmm_load_guest(vm, spec->guest_path, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "ovc-vmm: vm %s: %s\n", spec->name, err);
		goto err;
	}
	ret = vmm->opts->restore ? 0 : vmm_setup_irqchip(vm);
	if (ret) {
		vm_error(vm, "IOAPIC", ret);
		goto err;
	}
	for (i = 0; i < spec->ndevices; i++) {
		ret = vmm_virtio_add(vm, spec->devices[i]);
		if (ret) {
			vm_error(vm, spec->devices[i], ret);
			goto err;
		}
	}
	if (!vmm->opts->restore)
		((struct ovc_guest_boot *)vmm_gpa(vm, OVC_GUEST_BOOT_GPA,
						   sizeof(struct ovc_guest_boot)))->virtio_mmio_count =
			vm->ndevs;
	for (i = 0; i < spec->vcpus; i++) {
		ret = create_vcpu(vm, i);
		if (ret) {
			vm_error(vm, "vCPU set-up", ret);
			goto err;
		}
	}
	if (spec->zip) {
		ret = add_pager(vm);
		if (ret) {
			vm_error(vm, "pager", ret);
			goto err;
		}
	}
	if (spec->wss_ms) {
		ret = ovc_vm_set_wss_sampling(vm->ovc, spec->wss_ms, 0);
		if (ret) {
			vm_error(vm, "working-set sampling", ret);
			goto err;
		}
	}
	if (spec->dedup) {
		ret = ovc_vm_set_dedup(vm->ovc, true);
		if (!ret && spec->dedup_group[0])
			ret = ovc_vm_set_dedup_group(vm->ovc, spec->dedup_group);
		if (ret) {
			vm_error(vm, "page sharing", ret);
			goto err;
		}
	}
	snprintf(vm->serial_path, sizeof(vm->serial_path), "%s/%s.serial.log",
		 vmm->opts->log_dir, spec->name);
	ret = vmm_serial_init(&vm->serial, vm->serial_path);
	if (ret) {
		fprintf(stderr, "ovc-vmm: vm %s: cannot open %s: %s\n", spec->name,
			vm->serial_path, strerror(-ret));
		goto err;
	}
	if (vm->restored) {
		ret = vmm_vm_restore_cpus(vm, err, sizeof(err));
		if (ret) {
			fprintf(stderr, "ovc-vmm: vm %s: %s\n", spec->name, err);
			goto err;
		}
	}
	return vm;
err:
	vmm_vm_destroy(vm);
	return NULL;
}

/*
 * The VM's resident limit: reclaim what is over it. Until the memory
 * scheduler sets targets, this is ovc-vmm's own policy. Main thread.
 */
void vmm_vm_enforce_resident(struct vmm_vm *vm)
{
	uint64_t limit = vm->spec->resident >> OVC_PAGE_SHIFT;
	struct ovc_mem_stats st;
	int64_t n;

	if (!vm->pager || !limit)
		return;
	ovc_vm_get_mem_stats(vm->ovc, &st);
	if (st.pages[OVC_PAGE_RESIDENT] <= limit)
		return;
	/* A little below the limit, so the guest gets some room before the next pass. */
	n = ovc_pager_reclaim(vm->pager, st.pages[OVC_PAGE_RESIDENT] - limit + limit / 32, NULL);
	if (n > 0)
		vm->pager_made += (uint64_t)n;
}

/* Start chaos (when asked) and the vCPU threads. Called from the main thread. */
int vmm_vm_start(struct vmm_vm *vm)
{
	const struct vmm_opts *o = vm->vmm->opts;
	unsigned int i;
	int ret;

	if (o->chaos_rate) {
		vm->chaos = chaos_start(vm->ovc, o->chaos_rate, o->seed * 7919 + vm->index);
		if (!vm->chaos) {
			ret = -errno;
			vm_error(vm, "chaos", ret);
			vmm_vm_finish(vm, VM_CRASHED, 3, "not started: chaos: %s", strerror(-ret));
			return ret;
		}
	}
	vm->started_ns = vmm_now_ns();
	atomic_store(&vm->running_vcpus, vm->spec->vcpus);
	for (i = 0; i < vm->spec->vcpus; i++) {
		ret = -pthread_create(&vm->vcpus[i].thread, NULL, vmm_vcpu_thread, &vm->vcpus[i]);
		if (ret) {
			vm_error(vm, "vCPU thread", ret);
			atomic_fetch_sub(&vm->running_vcpus, vm->spec->vcpus - i);
			vmm_vm_finish(vm, VM_CRASHED, 3, "cannot start vCPU %u", i);
			return ret;
		}
		vm->vcpus[i].started = true;
	}
	return 0;
}

bool vmm_vm_running(struct vmm_vm *vm)
{
	bool r;

	pthread_mutex_lock(&vm->lock);
	r = vm->state == VM_RUNNING;
	pthread_mutex_unlock(&vm->lock);
	return r;
}

/*
 * --memsched: the scheduler's target for the VM and what it holds (resident
 * plus compressed), from the last snapshot, while the guest runs; a history
 * entry a second. Main thread (registered for snapshot reads).
 */
static void sample_memsched(struct vmm_vm *vm)
{
	const struct ovc_guest_boot *boot = vmm_gpa(vm, OVC_GUEST_BOOT_GPA, sizeof(*boot));
	const struct ovc_stats_snapshot *snap;
	const struct ovc_vm_snap *v;
	uint64_t now = vmm_now_ns();

	if (!vmm_vm_running(vm) || __atomic_load_n(&boot->stop, __ATOMIC_ACQUIRE))
		return;
	snap = ovc_stats_read_lock(vm->vmm->host);
	v = snap ? ovc_stats_find_vm(snap, vm->spec->name) : NULL;
	if (v && v->targets.mem_target_bytes) {
		vm->ms_target = v->targets.mem_target_bytes;
		vm->ms_held = v->mem.pages[OVC_PAGE_RESIDENT] * OVC_PAGE_SIZE +
			      (v->has_pager ? v->pager.zip_bytes : 0);
		if (vm->ms_target > vm->ms_target_max)
			vm->ms_target_max = vm->ms_target;
		if (vm->ms_held > vm->ms_held_max)
			vm->ms_held_max = vm->ms_held;
		if (now >= vm->ms_next_ns) {
			if (vm->ms_samples < sizeof(vm->ms_target_history) / sizeof(vm->ms_target_history[0])) {
				vm->ms_target_history[vm->ms_samples] = vm->ms_target;
				vm->ms_held_history[vm->ms_samples] = vm->ms_held;
				vm->ms_samples++;
			}
			vm->ms_next_ns = now + 1000000000ULL;
		}
	}
	ovc_stats_read_unlock(vm->vmm->host);
}

/* How much host memory the VM's RAM holds, and the balloon's size, now. Main thread. */
void vmm_vm_sample(struct vmm_vm *vm)
{
	struct ovc_mem_stats st;

	ovc_vm_get_mem_stats(vm->ovc, &st);
	if (st.host_bytes > vm->host_bytes_max)
		vm->host_bytes_max = st.host_bytes;
	if (st.pages[OVC_PAGE_RESIDENT] > vm->resident_max)
		vm->resident_max = st.pages[OVC_PAGE_RESIDENT];
	if (st.pages[OVC_PAGE_BALLOONED] > vm->ballooned_max) {
		vm->ballooned_max = st.pages[OVC_PAGE_BALLOONED];
		vm->host_bytes_at_ballooned_max = st.host_bytes;
	}
	if (vm->spec->wss_ms) {
		const struct ovc_guest_boot *boot = vmm_gpa(vm, OVC_GUEST_BOOT_GPA, sizeof(*boot));
		struct ovc_wss_snap w;

		/* Periods of the run itself: not the final sweep once asked to stop. */
		if (vmm_vm_running(vm) && !__atomic_load_n(&boot->stop, __ATOMIC_ACQUIRE) &&
		    !ovc_vm_get_wss(vm->ovc, &w) && w.valid && w.periods > vm->wss.periods) {
			vm->wss_sum += w.last;
			if (vm->wss_periods < (sizeof(vm->wss_history) / sizeof(vm->wss_history[0])))
				vm->wss_history[vm->wss_periods] = w.last;
			vm->wss_periods++;
			vm->wss = w;
		}
	}
	if (vm->vmm->opts->memsched)
		sample_memsched(vm);
}

/* Ask the guest to finish: it polls boot->stop. Called from the main thread. */
void vmm_vm_request_stop(struct vmm_vm *vm)
{
	struct ovc_guest_boot *boot = vmm_gpa(vm, OVC_GUEST_BOOT_GPA, sizeof(*boot));
	unsigned int i;

	/* A VM that ended may have lost pages: its RAM is not touched again. */
	if (!vmm_vm_running(vm))
		return;
	__atomic_store_n(&boot->stop, 1, __ATOMIC_RELEASE);
	for (i = 0; i < vm->spec->vcpus; i++) {
		uint64_t one = 1;

		if (write(vm->vcpus[i].wake_fd, &one, sizeof(one)) < 0) {
			/* the counter is full: a wake-up is pending anyway */
		}
	}
}

/* Make every vCPU thread leave its run loop. Called from any thread. */
void vmm_vm_halt_vcpus(struct vmm_vm *vm)
{
	unsigned int i;

	for (i = 0; i < vm->spec->vcpus; i++) {
		atomic_store(&vm->vcpus[i].stop, true);
		if (vm->vcpus[i].started)
			vmm_vcpu_kick(&vm->vcpus[i]);
	}
}

/**
 * vmm_vm_finish() - record how a VM ended (the first call wins) and stop its vCPUs
 * @vm: the VM
 * @state: VM_EXITED or VM_CRASHED
 * @code: the guest's exit code (or the VMM's for a crash)
 * @fmt: why, for the summary
 *
 * Called from a vCPU thread (EXIT, PANIC, KVM errors) or the main thread.
 */
void vmm_vm_finish(struct vmm_vm *vm, enum vmm_vm_state state, int code, const char *fmt, ...)
{
	va_list ap;
	bool first;

	pthread_mutex_lock(&vm->lock);
	first = vm->state == VM_RUNNING;
	if (first) {
		vm->state = state;
		vm->exit_code = code;
		vm->ended_ns = vmm_now_ns();
		va_start(ap, fmt);
		vsnprintf(vm->why, sizeof(vm->why), fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&vm->lock);
	if (first) {
		uint64_t one = 1;

		vmm_vm_halt_vcpus(vm);
		if (write(vm->vmm->done_fd, &one, sizeof(one)) < 0) {
			/* the main thread also polls with a timeout */
		}
	}
}

/* Stop and join the vCPU threads, then chaos. Called from the main thread. */
void vmm_vm_join(struct vmm_vm *vm)
{
	unsigned int i;

	vmm_vm_halt_vcpus(vm);
	for (i = 0; i < OVC_GUEST_MAX_VCPUS; i++) {
		if (vm->vcpus[i].started) {
			pthread_join(vm->vcpus[i].thread, NULL);
			vm->vcpus[i].started = false;
		}
	}
	if (vm->chaos)
		chaos_stop(vm->chaos, &vm->chaos_res);
	if (!vm->ended_ns)
		vm->ended_ns = vmm_now_ns();
}

/* Join what still runs and free everything. Called from the main thread. */
int vmm_vm_destroy(struct vmm_vm *vm)
{
	unsigned int i;
	int ret = 0;

	if (!vm)
		return 0;
	vmm_vm_join(vm);
	/* Devices first: the balloon's controller may still raise an interrupt. */
	vmm_virtio_remove_all(vm);
	for (i = 0; i < OVC_GUEST_MAX_VCPUS; i++) {
		struct vmm_vcpu *v = &vm->vcpus[i];

		if (v->run)
			munmap(v->run, v->run_size);
		if (v->fd >= 0)
			close(v->fd);
		if (v->wake_fd >= 0)
			close(v->wake_fd);
	}
	if (vm->fd >= 0)
		close(vm->fd);
	if (vm->ovc && ovc_vm_destroy(vm->ovc))
		ret = -EBUSY;
	chaos_destroy(vm->chaos);
	vmm_serial_fini(&vm->serial);
	pthread_mutex_destroy(&vm->lock);
	free(vm->restored);
	free(vm);
	return ret;
}
