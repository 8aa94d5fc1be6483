/* SPDX-License-Identifier: MIT */
/* vmm/vmm.h: ovc-vmm, the reference KVM VMM on libovc: its objects and their files. */
#ifndef OVC_VMM_H
#define OVC_VMM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <linux/kvm.h>

#include <ovc/ovc.h>
#include "guest/abi.h"
#include "tests/kit/chaos.h"

#define VMM_MAX_VMS		16
#define VMM_VM_RAM_MIN		(4ULL << 20)
#define VMM_VM_RAM_MAX		(64ULL << 30)	/* page directories the boot layout has room for */
#define VMM_OVERCOMMIT_MAX	4		/* VMs may total this many times --host-mem */
#define VMM_MAX_DEVICES		8		/* virtio-mmio windows per VM */
#define VMM_BALLOON_STEPS	16		/* balloon=...@T entries per VM */

struct vmm;
struct vmm_vm;
struct saved_vm;

static inline uint64_t vmm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/** struct vmm_vm_spec - one --vm option, parsed */
struct vmm_vm_spec {
	char name[64];
	uint64_t mem;
	unsigned int vcpus;
	char guest[256];		/* a name in the guest directory, or a path */
	char guest_path[4096];		/* the file it names */
	char args[OVC_GUEST_ARGS_MAX];
	char devices[VMM_MAX_DEVICES][16];	/* devices=rng+rng: virtio devices in order */
	unsigned int ndevices;
	struct {
		double at;			/* seconds after start */
		uint64_t bytes;			/* balloon target then */
		double fraction;		/* or this share of mem, when bytes is 0 */
	} balloon[VMM_BALLOON_STEPS];		/* balloon=50%@2+0%@8 */
	unsigned int nballoon;
	uint64_t zip;				/* pager: compressed tier cap (0: no pager) */
	uint64_t resident;			/* pager: keep at most this much resident */
	unsigned int wss_ms;			/* working-set sampling period (0: off) */
	uint64_t cpu_shares;			/* 0: the default */
	double cpu_reservation;			/* physical CPUs */
	double cpu_limit;			/* physical CPUs, 0: none */
	bool dedup;				/* dedup=: the scanner shares its pages */
	char dedup_group[OVC_DEDUP_GROUP_MAX + 1];	/* its share group ("": its own) */
};

/** struct vmm_opts - the command line */
struct vmm_opts {
	struct vmm_vm_spec vms[VMM_MAX_VMS];
	unsigned int nvms;
	uint64_t host_mem;
	const char *log_dir;
	const char *json;
	const char *guest_dir;
	double seconds;			/* 0: until every VM exits */
	double grace;			/* how long a stopping guest may take */
	uint64_t chaos_rate;		/* 0: no chaos */
	uint64_t seed;
	unsigned int fault_threads;
	uint64_t balloon_step;		/* 0: libovc's default */
	const char *swap_dir;		/* where pagers put swap files */
	const char *save;		/* --save: image written at the end of the run */
	const char *restore;		/* --restore: image the VM starts from */
	const char *ctl;		/* --ctl: NULL for the default, "off" */
	const char *cpusched;		/* CPU scheduler backend, NULL: no scheduler */
	unsigned int dedup_budget;	/* scanner CPU, thousandths of a core (0: default) */
	bool quiet;
	bool memsched;			/* --memsched: the memory scheduler, budget host_mem */
};

/** struct vmm_serial - a write-only 16550 at 0x3f8, logged to a file */
struct vmm_serial {
	pthread_mutex_t lock;		/* protects everything below */
	FILE *out;
	uint8_t ier, lcr, mcr, scr, dll, dlm;
	uint64_t bytes;
};

/** struct vmm_vcpu - one vCPU: its KVM fd, its thread, its exits */
struct vmm_vcpu {
	struct vmm_vm *vm;
	unsigned int index;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool started;
	struct ovc_vcpu *ovc;		/* registered by the thread itself */
	int wake_fd;			/* eventfd: ends an idle wait early */
	_Atomic bool stop;		/* ATOMIC: leave the run loop */
	/* counted by the vCPU thread only */
	uint64_t exits, io_exits, mmio_exits, idle_calls, unknown_io;
	struct ovc_guest_report report;	/* scratch for one REPORT */
	struct ovc_vcpu_stats final;	/* ovc's view, taken as the thread ends */
	uint64_t cpu_ns;		/* the thread's CPU time, taken as it ends */
};

/** struct vmm_virtio - one virtio-mmio device of a VM */
struct vmm_virtio {
	struct vmm_vm *vm;
	const char *kind;
	uint64_t gpa;			/* its 4 KiB window */
	unsigned int pin;		/* IOAPIC pin = KVM GSI */
	int irq_fd;			/* the KVM irqfd */
	pthread_mutex_t lock;		/* serializes the transport: one vCPU at a time */
	struct ovc_virtio_mmio *mmio;		/* NULL for the balloon: it owns its transport */
	struct ovc_balloon *balloon;
	struct ovc_guest_region regions[2];
	struct ovc_virtio_mem mem;
	uint64_t bytes;			/* device work (rng: bytes given), under @lock */
	uint64_t irq_errors;		/* under @lock */
};

enum vmm_vm_state {
	VM_RUNNING = 0,
	VM_EXITED,			/* the guest wrote EXIT */
	VM_CRASHED,			/* exception, triple fault, KVM error */
	VM_SAVED,			/* paused and written to --save */
};

/** struct vmm_report - a named counter a guest sent */
struct vmm_report {
	char name[OVC_GUEST_REPORT_NAME];
	uint64_t value;
};

struct vmm_vm {
	struct vmm *vmm;
	const struct vmm_vm_spec *spec;
	unsigned int index;
	struct ovc_vm *ovc;
	int fd;
	uint8_t *low;			/* RAM [0, low_size) */
	uint64_t low_size;
	uint8_t *high;			/* RAM [4 GiB, 4 GiB + high_size) */
	uint64_t high_size;
	uint64_t entry, vectors;
	struct vmm_serial serial;
	char serial_path[4096];
	struct vmm_vcpu vcpus[OVC_GUEST_MAX_VCPUS];
	struct vmm_virtio devs[VMM_MAX_DEVICES];
	unsigned int ndevs;
	struct ovc_balloon *balloon;		/* the devs[] entry's, if any */
	uint64_t host_bytes_max;		/* sampled by the main thread */
	uint64_t ballooned_max;			/* pages, sampled likewise */
	uint64_t host_bytes_at_ballooned_max;
	struct ovc_pager *pager;
	uint64_t pager_made;			/* pages the resident limit reclaimed */
	uint64_t resident_max;			/* pages, sampled */
	struct ovc_wss_snap wss;		/* the last estimate before the guest was asked to stop */
	double wss_sum;				/* of its periods' own estimates, likewise */
	uint64_t wss_periods;
	double wss_history[64];			/* the first periods' own estimates */
	unsigned int balloon_next;		/* next spec->balloon step to apply */
	struct chaos *chaos;
	struct chaos_result chaos_res;	/* when chaos stopped */
	uint64_t started_ns, ended_ns;
	struct ovc_save_stats saved;		/* --save: what was written */
	struct saved_vm *restored;		/* --restore: the machine state read */
	uint64_t restore_t0;			/* when the restore began */
	bool resident_reported;			/* the fully-resident line was printed */
	/* --memsched, sampled by the main thread while the guest runs: */
	uint64_t ms_target, ms_target_max;	/* the scheduler's memory target */
	uint64_t ms_held, ms_held_max;		/* resident plus compressed bytes */
	uint64_t ms_samples;			/* seconds recorded in the histories */
	uint64_t ms_next_ns;			/* when the next history entry is due */
	uint64_t ms_target_history[128];	/* one a second */
	uint64_t ms_held_history[128];

	pthread_mutex_t lock;		/* protects state, exit_code, why, reports */
	enum vmm_vm_state state;
	int exit_code;
	char why[256];
	struct vmm_report reports[OVC_GUEST_REPORT_MAX];
	unsigned int nreports;
	_Atomic uint64_t corrupt_reports;	/* ATOMIC */
	_Atomic unsigned int running_vcpus;	/* ATOMIC */
};

struct vmm {
	const struct vmm_opts *opts;
	int kvm_fd;
	struct ovc_host *host;
	struct vmm_vm *vms[VMM_MAX_VMS];
	unsigned int nvms;
	int done_fd;			/* eventfd: a VM stopped running */
	struct ovc_ctl *ctl;		/* the control socket, or NULL */
};

/* opts.c */
int vmm_parse_args(int argc, char **argv, struct vmm_opts *opts, FILE *err);
int vmm_parse_size(const char *s, uint64_t *out);
void vmm_usage(FILE *out);

/* serial.c */
int vmm_serial_init(struct vmm_serial *s, const char *path);
void vmm_serial_fini(struct vmm_serial *s);
void vmm_serial_io(struct vmm_serial *s, uint16_t off, bool in, uint8_t *data);

/* boot.c: loading the guest and the x86 long-mode set-up */
int vmm_load_guest(struct vmm_vm *vm, const char *path, char *err, size_t errlen);
int vmm_boot_vcpu(struct vmm_vm *vm, struct vmm_vcpu *vcpu);
int vmm_setup_irqchip(struct vmm_vm *vm);
void *vmm_gpa(struct vmm_vm *vm, uint64_t gpa, uint64_t len);

/* vm.c */
struct vmm_vm *vmm_vm_new(struct vmm *vmm, const struct vmm_vm_spec *spec, unsigned int index);
int vmm_vm_start(struct vmm_vm *vm);
void vmm_vm_request_stop(struct vmm_vm *vm);
void vmm_vm_halt_vcpus(struct vmm_vm *vm);
void vmm_vm_finish(struct vmm_vm *vm, enum vmm_vm_state state, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void vmm_vm_join(struct vmm_vm *vm);
int vmm_vm_destroy(struct vmm_vm *vm);
bool vmm_vm_running(struct vmm_vm *vm);
void vmm_vm_sample(struct vmm_vm *vm);
void vmm_vm_enforce_resident(struct vmm_vm *vm);

/* virtio.c */
int vmm_virtio_add(struct vmm_vm *vm, const char *kind);
bool vmm_virtio_mmio(struct vmm_vm *vm, uint64_t gpa, uint8_t *data, unsigned int len,
		     bool is_write);
void vmm_virtio_remove_all(struct vmm_vm *vm);
void vmm_virtio_stats(struct vmm_virtio *dev, struct ovc_virtio_stats *st);
void vmm_balloon_schedule(struct vmm_vm *vm, double elapsed);

/* vcpu.c */
void *vmm_vcpu_thread(void *arg);
void vmm_vcpu_kick(struct vmm_vcpu *vcpu);

/* snapshot.c: --save and --restore */
int vmm_vm_save(struct vmm_vm *vm, const char *path);
int vmm_vm_restore_ram(struct vmm_vm *vm, const char *path, char *err, size_t errlen);
int vmm_vm_restore_cpus(struct vmm_vm *vm, char *err, size_t errlen);
void vmm_vm_restore_progress(struct vmm_vm *vm);

/* summary.c */
void vmm_print_start(struct vmm_vm *vm, FILE *out);
void vmm_print_result(struct vmm_vm *vm, FILE *out);
int vmm_write_json(struct vmm *vmm, const char *path);
bool vmm_vm_ok(struct vmm_vm *vm);

#endif /* OVC_VMM_H */
