// SPDX-License-Identifier: MIT
/* bench/cpu-fairness.c: received vs entitled CPU per VM under ovc's throttle backend, and under plain CFS with the same cgroup weights. */

/*
 * cpu-fairness - how exactly VMs receive what their policy entitles them to
 *
 * Usage: cpu-fairness [--vms "a:shares=2000,b:shares=1000,c:limit=0.5,..."]
 *                     [--vcpus N] [--capacity CPUS] [--seconds N] [--json FILE]
 *
 * Each VM is N busy host threads registered as vCPUs (default 2). Run 1:
 * ovc's scheduler with the throttle backend dividing --capacity CPUs
 * (default: the machine's CPUs minus one, at least 1). Run 2, the peer:
 * no ovc scheduler, the same threads in one cgroup v1 cpu group per VM with
 * cpu.shares = the VM's shares and a CFS quota = its limit (what a KVM user
 * writes by hand). Each run warms up 1 s, then measures 1 s windows.
 *
 * Both runs are judged on the division, not on the total: a run's
 * entitlement is ovc_cpu_entitle() of the policies over the CPUs the VMs
 * together received in it. Error per VM and window: |received/entitled - 1|.
 *
 * The whole benchmark runs in a cpu cgroup of its own with large cpu.shares
 * (removed at exit), so the machine's other work does not decide the result;
 * without a writable cgroup v1 cpu hierarchy the CFS peer is skipped.
 *
 * Metrics: ovc.max_error_pct, ovc.median_error_pct, cfs.max_error_pct,
 * cfs.median_error_pct, ovc.limit_overshoot_pct (worst window above a
 * limit), ovc.reservation_met_pct (windows in which every reservation was
 * received to within 5%).
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <ovc/ovc.h>

#define MAX_VMS 8
#define MAX_VCPUS 8
#define CG_ROOT "/sys/fs/cgroup/cpu"

struct bvm {
	char name[16];
	struct ovc_vm_policy pol;
	struct ovc_vm *vm;
	pthread_t th[MAX_VCPUS];
	_Atomic pid_t tid[MAX_VCPUS];
};

static struct bvm vms[MAX_VMS];
static unsigned int nvms, nvcpus = 2;
static atomic_bool stop;
static char cg_dir[128];

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t thread_cpu_ns(pid_t tid)
{
	clockid_t cid = (clockid_t)((~(unsigned int)tid) << 3) | 6;
	struct timespec ts;

	if (clock_gettime(cid, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

struct arg {
	struct bvm *b;
	unsigned int i;
};

static struct arg args[MAX_VMS][MAX_VCPUS];

static void *burn(void *p)
{
	struct arg *a = p;
	struct ovc_vcpu *v = a->b->vm ? ovc_vm_add_vcpu(a->b->vm, gettid()) : NULL;
	volatile uint64_t x = 0;

	atomic_store(&a->b->tid[a->i], gettid());
	while (!atomic_load(&stop)) {
		uint64_t end;

		if (v && ovc_vcpu_run_begin(v))
			continue;
		end = now_ns() + 200000;
		while (now_ns() < end)
			x++;
		if (v)
			ovc_vcpu_run_end(v);
	}
	if (v)
		ovc_vcpu_remove(v);
	return NULL;
}

static int write_file(const char *dir, const char *file, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int write_file(const char *dir, const char *file, const char *fmt, ...)
{
	char path[256];
	va_list ap;
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	va_start(ap, fmt);
	ok = vfprintf(f, fmt, ap) >= 0;
	va_end(ap);
	ok &= !fclose(f);
	return ok ? 0 : -EIO;
}

static int parse_vms(const char *spec)
{
	char buf[512], *vm_save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", spec);
	/* "a:shares=2000,b:shares=1000,c:limit=0.5": a key without a name continues the last VM. */
	for (tok = strtok_r(buf, ",", &vm_save); tok; tok = strtok_r(NULL, ",", &vm_save)) {
		char *colon = strchr(tok, ':'), *kv = tok, *eq;
		struct bvm *b;

		b = nvms ? &vms[nvms - 1] : NULL;
		if (colon) {
			unsigned int k;

			*colon = 0;
			kv = colon + 1;
			for (k = 0, b = NULL; k < nvms; k++) {
				if (!strcmp(vms[k].name, tok))
					b = &vms[k];	/* "c:shares=..,c:limit=..": the same VM */
			}
			if (!b) {
				if (nvms == MAX_VMS || !*tok || strlen(tok) >= sizeof(b->name))
					return -1;
				b = &vms[nvms++];
				snprintf(b->name, sizeof(b->name), "%s", tok);
				ovc_vm_policy_init(&b->pol);
			}
		} else if (!b) {
			return -1;
		}
		eq = strchr(kv, '=');
		if (!eq)
			return -1;
		*eq = 0;
		if (!strcmp(kv, "shares"))
			b->pol.cpu_shares = strtoull(eq + 1, NULL, 0);
		else if (!strcmp(kv, "limit"))
			b->pol.cpu_limit = strtod(eq + 1, NULL);
		else if (!strcmp(kv, "reservation"))
			b->pol.cpu_reservation = strtod(eq + 1, NULL);
		else
			return -1;
		if (ovc_vm_policy_check(&b->pol, NULL))
			return -1;
	}
	return nvms ? 0 : -1;
}

/* Received CPUs per VM per window. */
static void measure(unsigned int windows, double got[][MAX_VMS])
{
	uint64_t c0[MAX_VMS], t0, t1;
	unsigned int w, i, j;

	usleep(1000000);	/* warm-up */
	for (w = 0; w < windows; w++) {
		t0 = now_ns();
		for (i = 0; i < nvms; i++)
			for (j = 0, c0[i] = 0; j < nvcpus; j++)
				c0[i] += thread_cpu_ns(vms[i].tid[j]);
		usleep(1000000);
		t1 = now_ns();
		for (i = 0; i < nvms; i++) {
			uint64_t c = 0;

			for (j = 0; j < nvcpus; j++)
				c += thread_cpu_ns(vms[i].tid[j]);
			got[w][i] = (double)(c - c0[i]) / (double)(t1 - t0);
		}
	}
}

static void start_threads(void)
{
	unsigned int i, j;

	atomic_store(&stop, false);
	for (i = 0; i < nvms; i++) {
		for (j = 0; j < nvcpus; j++) {
			vms[i].tid[j] = 0;
			args[i][j].b = &vms[i];
			args[i][j].i = j;
			pthread_create(&vms[i].th[j], NULL, burn, &args[i][j]);
		}
	}
	for (i = 0; i < nvms; i++)
		for (j = 0; j < nvcpus; j++)
			while (!atomic_load(&vms[i].tid[j]))
				usleep(100);
}

static void stop_threads(void)
{
	unsigned int i, j;

	atomic_store(&stop, true);
	for (i = 0; i < nvms; i++)
		for (j = 0; j < nvcpus; j++)
			pthread_join(vms[i].th[j], NULL);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Errors of one run, judged on the division of what the VMs received together. */
static void judge(unsigned int windows, double got[][MAX_VMS], double *max_err, double *med_err,
		  double *overshoot, double *res_met)
{
	struct ovc_cpu_claim c[MAX_VMS];
	double ent[MAX_VMS], errs[64 * MAX_VMS], total;
	unsigned int w, i, n = 0, met = 0;

	*max_err = *overshoot = 0;
	for (w = 0; w < windows; w++) {
		bool all_met = true;

		for (i = 0, total = 0; i < nvms; i++) {
			total += got[w][i];
			c[i].shares = (double)vms[i].pol.cpu_shares;
			c[i].reservation = vms[i].pol.cpu_reservation;
			c[i].limit = vms[i].pol.cpu_limit > 0 ? vms[i].pol.cpu_limit : nvcpus;
			c[i].demand = nvcpus;
		}
		ovc_cpu_entitle(c, nvms, total, ent);
		for (i = 0; i < nvms; i++) {
			double e = ent[i] > 0 ? fabs(got[w][i] / ent[i] - 1.0) * 100 : 0;

			errs[n++] = e;
			*max_err = fmax(*max_err, e);
			if (vms[i].pol.cpu_limit > 0)
				*overshoot = fmax(*overshoot,
						  (got[w][i] / vms[i].pol.cpu_limit - 1.0) * 100);
			if (vms[i].pol.cpu_reservation > 0 &&
			    got[w][i] < vms[i].pol.cpu_reservation * 0.95)
				all_met = false;
		}
		met += all_met;
	}
	qsort(errs, n, sizeof(double), cmp_d);
	*med_err = errs[n / 2];
	*res_met = 100.0 * met / windows;
}

/* Every thread back to the root group, then the benchmark's group goes. */
static void cg_leave(void)
{
	struct dirent *de;
	DIR *d;

	if (!cg_dir[0])
		return;
	d = opendir("/proc/self/task");
	while (d && (de = readdir(d))) {
		if (de->d_name[0] != '.')
			write_file(CG_ROOT, "tasks", "%s\n", de->d_name);
	}
	if (d)
		closedir(d);
	rmdir(cg_dir);
	cg_dir[0] = 0;
}

int main(int argc, char **argv)
{
	const char *spec = "a:shares=2000,b:shares=1000,c:shares=1000,c:limit=0.4", *json = NULL;
	unsigned int seconds = 5, i, w;
	double capacity = 0, ovc_got[64][MAX_VMS], cfs_got[64][MAX_VMS];
	double o_max, o_med, o_over, o_res, c_max = NAN, c_med = NAN, c_over, c_res;
	struct ovc_cpusched_config cfg;
	struct ovc_host_config hc;
	struct ovc_host *host;
	bool have_cfs = false;
	struct utsname un;
	json_t *out, *m;
	char dir[400];

	for (i = 1; i < (unsigned int)argc; i++) {
		if (!strcmp(argv[i], "--vms") && i + 1 < (unsigned int)argc)
			spec = argv[++i];
		else if (!strcmp(argv[i], "--vcpus") && i + 1 < (unsigned int)argc)
			nvcpus = (unsigned int)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--capacity") && i + 1 < (unsigned int)argc)
			capacity = atof(argv[++i]);
		else if (!strcmp(argv[i], "--seconds") && i + 1 < (unsigned int)argc)
			seconds = (unsigned int)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--json") && i + 1 < (unsigned int)argc)
			json = argv[++i];
		else
			goto usage;
	}
	if (parse_vms(spec) || !nvcpus || nvcpus > MAX_VCPUS || !seconds || seconds > 64 ||
	    capacity < 0)
		goto usage;
	if (!capacity)
		capacity = fmax(1.0, (double)sysconf(_SC_NPROCESSORS_ONLN) - 1);

	snprintf(cg_dir, sizeof(cg_dir), CG_ROOT "/ovc-bench-%d", (int)getpid());
	if (!mkdir(cg_dir, 0755) && !write_file(cg_dir, "cpu.shares", "262144\n") &&
	    !write_file(cg_dir, "tasks", "%d\n", (int)gettid())) {
		have_cfs = true;
		atexit(cg_leave);	/* also on the error exits below */
	} else {
		rmdir(cg_dir);
		cg_dir[0] = 0;
		fprintf(stderr, "cpu-fairness: no writable cgroup v1 cpu hierarchy: no CFS peer, "
			"and the machine's other work shares the CPUs\n");
	}

	/* Run 1: ovc, throttle backend. */
	ovc_host_config_init(&hc);
	hc.tick_ms = 100;
	hc.log_level = OVC_LOG_WARN;
	host = ovc_host_new(&hc);
	if (!host)
		return 1;
	ovc_cpusched_config_init(&cfg);
	cfg.backend = "throttle";
	cfg.capacity = capacity;
	cfg.place = false;
	if (ovc_host_set_cpusched(host, &cfg))
		return 1;
	for (i = 0; i < nvms; i++) {
		vms[i].vm = ovc_vm_new(host, vms[i].name);
		if (!vms[i].vm || ovc_vm_set_policy(vms[i].vm, &vms[i].pol)) {
			fprintf(stderr, "cpu-fairness: VM %s refused (reservations over capacity?)\n",
				vms[i].name);
			return 1;
		}
	}
	start_threads();
	measure(seconds, ovc_got);
	stop_threads();
	for (i = 0; i < nvms; i++) {
		if (ovc_vm_destroy(vms[i].vm))
			return 1;
		vms[i].vm = NULL;
	}
	if (ovc_host_destroy(host))
		return 1;
	judge(seconds, ovc_got, &o_max, &o_med, &o_over, &o_res);

	/* Run 2: plain CFS with the same weights and limits, threads in groups by hand. */
	if (have_cfs) {
		start_threads();
		for (i = 0; i < nvms; i++) {
			unsigned int j;

			snprintf(dir, sizeof(dir), "%.127s/%.15s", cg_dir, vms[i].name);
			mkdir(dir, 0755);
			write_file(dir, "cpu.shares", "%llu\n", (unsigned long long)vms[i].pol.cpu_shares);
			write_file(dir, "cpu.cfs_quota_us", "%lld\n", vms[i].pol.cpu_limit > 0 ?
				   (long long)llround(vms[i].pol.cpu_limit * 100000) : -1LL);
			for (j = 0; j < nvcpus; j++)
				write_file(dir, "tasks", "%d\n", (int)vms[i].tid[j]);
		}
		measure(seconds, cfs_got);
		stop_threads();
		for (i = 0; i < nvms; i++) {
			snprintf(dir, sizeof(dir), "%.127s/%.15s", cg_dir, vms[i].name);
			rmdir(dir);	/* its threads have exited */
		}
		judge(seconds, cfs_got, &c_max, &c_med, &c_over, &c_res);
	}
	cg_leave();

	for (w = 0; w < seconds; w++) {
		printf("window %u:", w);
		for (i = 0; i < nvms; i++)
			printf(" %s ovc %.3f%s", vms[i].name, ovc_got[w][i], have_cfs ? "" : "");
		if (have_cfs)
			for (i = 0; i < nvms; i++)
				printf(" %s cfs %.3f", vms[i].name, cfs_got[w][i]);
		printf("\n");
	}
	printf("ovc: max error %.2f%%, median %.2f%%, limit overshoot %.2f%%, reservations met "
	       "%.0f%% of windows\n", o_max, o_med, o_over, o_res);
	if (have_cfs)
		printf("cfs: max error %.2f%%, median %.2f%%\n", c_max, c_med);

	out = json_object();
	m = json_object();
	uname(&un);
	json_object_set_new(out, "scenario", json_string("cpu-fairness"));
	json_object_set_new(out, "machine", json_pack("{s:i, s:s}",
		"cpus", (int)sysconf(_SC_NPROCESSORS_ONLN), "kernel", un.release));
	json_object_set_new(out, "params", json_pack("{s:s, s:i, s:f, s:i}", "vms", spec,
		"vcpus", (int)nvcpus, "capacity", capacity, "seconds", (int)seconds));
	json_object_set_new(m, "ovc.max_error_pct", json_real(o_max));
	json_object_set_new(m, "ovc.median_error_pct", json_real(o_med));
	json_object_set_new(m, "ovc.limit_overshoot_pct", json_real(o_over));
	json_object_set_new(m, "ovc.reservation_met_pct", json_real(o_res));
	if (have_cfs) {
		json_object_set_new(m, "cfs.max_error_pct", json_real(c_max));
		json_object_set_new(m, "cfs.median_error_pct", json_real(c_med));
	}
	json_object_set_new(out, "metrics", m);
	json_object_set_new(out, "ok", json_true());
	if (json && json_dump_file(out, json, JSON_INDENT(2)))
		fprintf(stderr, "cpu-fairness: cannot write %s\n", json);
	json_decref(out);
	return 0;

usage:
	fprintf(stderr, "usage: cpu-fairness [--vms \"a:shares=2000,b:shares=1000,c:limit=0.5\"] "
		"[--vcpus N] [--capacity CPUS] [--seconds N] [--json FILE]\n");
	return 2;
}
