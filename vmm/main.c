// SPDX-License-Identifier: MIT
/* vmm/main.c: ovc-vmm: run several KVM VMs on libovc RAM until they finish, then summarize. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "vmm/vmm.h"

static void on_kick(int sig)
{
	(void)sig;	/* only interrupts KVM_RUN and ppoll */
}

static void ovc_log(void *opaque, int level, const char *msg)
{
	(void)opaque;
	fprintf(stderr, "ovc: %s%s\n", level <= OVC_LOG_ERR ? "error: " :
		level <= OVC_LOG_WARN ? "warning: " : "", msg);
}

static unsigned int running_vms(struct vmm *vmm)
{
	unsigned int i, n = 0;

	for (i = 0; i < vmm->nvms; i++)
		n += vmm_vm_running(vmm->vms[i]);
	return n;
}

/* Wait for a VM to stop, a signal, or @deadline_ns (0: none). Return the signal or 0. */
static int wait_event(struct vmm *vmm, int sfd, uint64_t deadline_ns)
{
	struct pollfd p[2] = {
		{ .fd = vmm->done_fd, .events = POLLIN },
		{ .fd = sfd, .events = POLLIN },
	};
	struct signalfd_siginfo si;
	uint64_t now = vmm_now_ns(), drain;
	int timeout = 50;	/* resident limits and samples want a short beat */

	if (deadline_ns) {
		if (now >= deadline_ns)
			return 0;
		if ((deadline_ns - now) / 1000000 < (uint64_t)timeout)
			timeout = (int)((deadline_ns - now) / 1000000) + 1;
	}
	if (poll(p, 2, timeout) <= 0)
		return 0;
	if (p[0].revents && read(vmm->done_fd, &drain, sizeof(drain)) < 0) {
		/* drained by an earlier read */
	}
	if (p[1].revents && read(sfd, &si, sizeof(si)) == sizeof(si))
		return (int)si.ssi_signo;
	return 0;
}

/*
 * Serve the control socket. A path given with --ctl must work; the default
 * one may be taken by another ovc-vmm or not writable: then a warning.
 */
static int start_ctl(struct vmm *vmm)
{
	const char *path = vmm->opts->ctl;
	char def[108];

	if (path && !strcmp(path, "off"))
		return 0;
	if (!path) {
		if (ovc_ctl_default_path(def, sizeof(def), "ovc-vmm"))
			return 0;
		path = def;
	}
	vmm->ctl = ovc_ctl_start(vmm->host, path, NULL);
	if (!vmm->ctl) {
		fprintf(stderr, "ovc-vmm: %s: no control socket at %s: %s\n",
			vmm->opts->ctl ? "error" : "warning", path, strerror(errno));
		return vmm->opts->ctl ? -1 : 0;
	}
	fprintf(stderr, "ovc-vmm: control socket at %s (memctl -s %s status)\n", path, path);
	return 0;
}

/*
 * Run until every guest exits; at --seconds or on SIGINT/SIGTERM ask the
 * guests to finish, give them --grace seconds, then stop what is left.
 */
/* The host's page-sharing scanner, when any VM asked for dedup=. */
static int setup_dedup(struct vmm *vmm)
{
	const struct vmm_opts *o = vmm->opts;
	struct ovc_dedup_config cfg;
	unsigned int i;
	int ret;

	for (i = 0; i < o->nvms && !o->vms[i].dedup; i++)
		;
	if (i == o->nvms)
		return 0;
	ovc_dedup_config_init(&cfg);
	if (o->dedup_budget)
		cfg.cpu_permille = o->dedup_budget;
	ret = ovc_host_dedup_setup(vmm->host, &cfg, true);
	if (ret)
		fprintf(stderr, "ovc-vmm: page sharing (dedup=): %s\n", strerror(-ret));
	return ret;
}

static void run(struct vmm *vmm, int sfd)
{
	const struct vmm_opts *o = vmm->opts;
	uint64_t start = vmm_now_ns(), deadline = 0, grace_end = 0;
	bool forced = false;
	unsigned int i;
	int sig;

	if (o->seconds > 0)
		deadline = start + (uint64_t)(o->seconds * 1e9);
	while (running_vms(vmm)) {
		for (i = 0; i < vmm->nvms; i++) {
			vmm_balloon_schedule(vmm->vms[i], (double)(vmm_now_ns() - start) / 1e9);
			vmm_vm_enforce_resident(vmm->vms[i]);
			vmm_vm_sample(vmm->vms[i]);
			vmm_vm_restore_progress(vmm->vms[i]);
		}
		sig = wait_event(vmm, sfd, grace_end ? grace_end : deadline);
		if (sig && grace_end) {
			forced = true;	/* a second signal: stop now */
			break;
		}
		if (!grace_end && o->save && (sig || (deadline && vmm_now_ns() >= deadline))) {
			/* Pause here and write the VMs out instead of letting them finish. */
			for (i = 0; i < vmm->nvms; i++)
				vmm_vm_save(vmm->vms[i], o->save);
			break;
		}
		if (!grace_end && (sig || (deadline && vmm_now_ns() >= deadline))) {
			if (sig)
				fprintf(stderr, "ovc-vmm: %s: asking the guests to finish (again to stop now)\n",
					strsignal(sig));
			for (i = 0; i < vmm->nvms; i++)
				vmm_vm_request_stop(vmm->vms[i]);
			grace_end = vmm_now_ns() + (uint64_t)(o->grace * 1e9) + 1;
		} else if (grace_end && vmm_now_ns() >= grace_end) {
			break;
		}
	}
	for (i = 0; i < vmm->nvms; i++) {
		if (forced)
			vmm_vm_finish(vmm->vms[i], VM_CRASHED, 3, "stopped by a second signal");
		else
			vmm_vm_finish(vmm->vms[i], VM_CRASHED, 3,
				      "did not finish within %g s of being asked", o->grace);
	}
}

int main(int argc, char **argv)
{
	struct ovc_host_config cfg;
	struct vmm_opts opts;
	struct vmm vmm = { .opts = &opts, .kvm_fd = -1, .done_fd = -1 };
	struct sigaction sa;
	sigset_t block;
	unsigned int i;
	int ret, sfd = -1, status = 3;

	ret = vmm_parse_args(argc, argv, &opts, stderr);
	if (ret)
		return ret > 0 ? 0 : 2;

	vmm.kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vmm.kvm_fd < 0) {
		fprintf(stderr, "ovc-vmm: cannot open /dev/kvm: %s\n", strerror(errno));
		return 3;
	}
	/* SIGUSR1 only kicks vCPU threads out of KVM_RUN; the others go to a signalfd. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_kick;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	sfd = signalfd(-1, &block, SFD_CLOEXEC);
	vmm.done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sfd < 0 || vmm.done_fd < 0) {
		fprintf(stderr, "ovc-vmm: signalfd/eventfd: %s\n", strerror(errno));
		goto out;
	}

	ovc_host_config_init(&cfg);
	cfg.fault_threads = opts.fault_threads;
	cfg.log_fn = ovc_log;
	cfg.log_level = OVC_LOG_WARN;
	if (opts.cpusched)
		cfg.tick_ms = 100;	/* demand measured and budgets set ten times a second */
	else if (opts.memsched)
		cfg.tick_ms = 250;	/* targets follow working sets sampled every few seconds */
	vmm.host = ovc_host_new(&cfg);
	if (!vmm.host) {
		fprintf(stderr, "ovc-vmm: ovc_host_new: %s\n", strerror(errno));
		goto out;
	}
	if (opts.cpusched) {
		struct ovc_cpusched_config cs;

		ovc_cpusched_config_init(&cs);
		cs.backend = opts.cpusched;
		ret = ovc_host_set_cpusched(vmm.host, &cs);
		if (ret) {
			fprintf(stderr, "ovc-vmm: --cpusched %s: %s\n", opts.cpusched, strerror(-ret));
			goto out_vms;
		}
	}
	ret = setup_dedup(&vmm);
	if (ret)
		goto out_vms;
	if (opts.memsched) {
		struct ovc_memsched_config ms;

		ovc_thread_register();	/* the main loop reads the snapshots */
		ovc_memsched_config_init(&ms);
		ms.budget_bytes = opts.host_mem;
		ret = ovc_host_set_memsched(vmm.host, &ms);
		if (ret) {
			fprintf(stderr, "ovc-vmm: --memsched: %s\n", strerror(-ret));
			goto out_vms;
		}
	}
	for (i = 0; i < opts.nvms; i++) {
		vmm.vms[i] = vmm_vm_new(&vmm, &opts.vms[i], i);
		if (!vmm.vms[i])
			goto out_vms;
		vmm.nvms++;
	}
	if (start_ctl(&vmm))
		goto out_vms;
	for (i = 0; i < vmm.nvms; i++) {
		if (!opts.quiet)
			vmm_print_start(vmm.vms[i], stdout);
		if (vmm_vm_start(vmm.vms[i]))
			break;
	}
	/* A VM that failed to start stops the rest: none of them is left waited for. */
	for (; i < vmm.nvms; i++)
		vmm_vm_finish(vmm.vms[i], VM_CRASHED, 3, "not started");
	for (i = 0; i < vmm.nvms && opts.restore; i++) {
		if (!opts.quiet && vmm.vms[i]->started_ns)
			printf("vm %s: restored from %s: running %.1f ms after the restore began\n",
			       opts.vms[i].name, opts.restore,
			       (double)(vmm.vms[i]->started_ns - vmm.vms[i]->restore_t0) / 1e6);
	}
	fflush(stdout);
	run(&vmm, sfd);

	status = 0;
	for (i = 0; i < vmm.nvms; i++) {
		vmm_vm_join(vmm.vms[i]);
		if (!opts.quiet)
			vmm_print_result(vmm.vms[i], stdout);
		if (!vmm_vm_ok(vmm.vms[i]))
			status = 1;
		if (opts.save && vmm.vms[i]->state != VM_SAVED) {
			fprintf(stderr, "ovc-vmm: vm %s: not saved to %s: it ended before the save\n",
				opts.vms[i].name, opts.save);
			status = 1;
		}
	}
	if (opts.json && vmm_write_json(&vmm, opts.json)) {
		fprintf(stderr, "ovc-vmm: cannot write %s\n", opts.json);
		status = status ? status : 1;
	}
out_vms:
	/* No request may find a VM being torn down. */
	ovc_ctl_stop(vmm.ctl);
	for (i = 0; i < vmm.nvms; i++) {
		if (vmm_vm_destroy(vmm.vms[i]))
			fprintf(stderr, "ovc-vmm: vm %s: not torn down cleanly\n", opts.vms[i].name);
	}
	if (vmm.host && ovc_host_destroy(vmm.host))
		fprintf(stderr, "ovc-vmm: host not torn down cleanly\n");
	if (vmm.host && opts.memsched)
		ovc_thread_unregister();
out:
	if (sfd >= 0)
		close(sfd);
	if (vmm.done_fd >= 0)
		close(vmm.done_fd);
	close(vmm.kvm_fd);
	return status;
}
