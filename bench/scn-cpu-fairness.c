// SPDX-License-Identifier: MIT
/* bench/scn-cpu-fairness.c: received vs entitled CPU per VM under ovc's throttle backend, and under plain CFS with the same cgroup weights. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ovc/ovc.h>

#include "core/core-internal.h"
#include "harness.h"
#include "scenarios.h"

#define MAX_VMS 8
#define MAX_VCPUS 8
#define MAX_WINDOWS 64

const char ovcb_scn_cpu_fairness_help[] =
"received vs entitled CPU per VM: ovc's throttle backend vs plain CFS weights\n"
"options: [--vms \"a:shares=2000,b:shares=1000,c:limit=0.5,...\"] [--vcpus N]\n"
"         [--capacity CPUS]   (--seconds: measured 1 s windows, default 5)\n"
"Each VM is N busy host threads registered as vCPUs (default 2); keys are\n"
"shares, reservation and limit (CPUs); a key without a name continues the\n"
"last VM. Run 1: ovc's scheduler with the throttle backend dividing\n"
"--capacity CPUs (default: the machine's CPUs minus one, at least 1).\n"
"Run 2, the peer: no ovc scheduler, the same threads in one cgroup v1 cpu\n"
"group per VM with cpu.shares = its shares and a CFS quota = its limit.\n"
"Each run warms up 1 s, then measures 1 s windows. Both are judged on the\n"
"division of what the VMs received together (ovc_cpu_entitle() of the\n"
"policies over it); error per VM and window: |received/entitled - 1|.\n"
"The run sits in a cpu cgroup of its own with large cpu.shares (removed at\n"
"the end); without a writable cgroup v1 cpu hierarchy the CFS peer is\n"
"skipped (\"ok\" is false).\n"
"Metrics: ovc.max_error_pct, ovc.median_error_pct, cfs.max_error_pct,\n"
"cfs.median_error_pct, ovc.limit_overshoot_pct (worst window above a\n"
"limit), ovc.reservation_met_pct (windows in which every reservation was\n"
"received to within 5%). --plot: received vs entitled per VM (bars).\n";

struct fvm {
	char name[16];
	struct ovc_vm_policy pol;
	struct ovc_vm *vm;
	pthread_t th[MAX_VCPUS];
	_Atomic pid_t tid[MAX_VCPUS];
};

struct fair;

struct burner {
	struct fair *f;
	struct fvm *v;
	unsigned int i;
};

struct fair {
	struct fvm vms[MAX_VMS];
	struct burner args[MAX_VMS][MAX_VCPUS];
	unsigned int nvms, nvcpus;
	atomic_bool stop;
	char cg[256];		/* the run's cpu group, "" without one */
	char sub[MAX_VMS][300];	/* the CFS peer's groups */
};

static void *burn(void *p)
{
	struct burner *a = p;
	struct ovc_vcpu *v = a->v->vm ? ovc_vm_add_vcpu(a->v->vm, gettid()) : NULL;
	volatile uint64_t x = 0;

	atomic_store(&a->v->tid[a->i], gettid());
	while (!atomic_load(&a->f->stop)) {
		uint64_t end;

		if (v && ovc_vcpu_run_begin(v))
			continue;
		end = ovcb_now_ns() + 200000;
		while (ovcb_now_ns() < end)
			x++;
		if (v)
			ovc_vcpu_run_end(v);
	}
	if (v)
		ovc_vcpu_remove(v);
	return NULL;
}

static int write_at(const char *dir, const char *file, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int write_at(const char *dir, const char *file, const char *fmt, ...)
{
	char path[400], val[64];
	va_list ap;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	return ovcb_write_str(path, val);
}

/* "a:shares=2000,b:shares=1000,c:limit=0.5": a key without a name continues the last VM. */
static int parse_vms(struct fair *f, const char *spec)
{
	char buf[512], *save = NULL, *tok;

	if (strlen(spec) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", spec);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(tok, ':'), *kv = tok, *eq, *end;
		struct fvm *v = f->nvms ? &f->vms[f->nvms - 1] : NULL;

		if (colon) {
			unsigned int k;

			*colon = 0;
			kv = colon + 1;
			for (k = 0, v = NULL; k < f->nvms; k++)
				if (!strcmp(f->vms[k].name, tok))
					v = &f->vms[k];	/* "c:shares=..,c:limit=..": the same VM */
			if (!v) {
				if (f->nvms == MAX_VMS || !*tok || strlen(tok) >= sizeof(v->name) ||
				    strspn(tok, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(tok))
					return -1;
				v = &f->vms[f->nvms++];
				snprintf(v->name, sizeof(v->name), "%s", tok);
				ovc_vm_policy_init(&v->pol);
			}
		} else if (!v) {
			return -1;
		}
		eq = strchr(kv, '=');
		if (!eq || !eq[1])
			return -1;
		*eq = 0;
		errno = 0;
		if (!strcmp(kv, "shares"))
			v->pol.cpu_shares = strtoull(eq + 1, &end, 0);
		else if (!strcmp(kv, "limit"))
			v->pol.cpu_limit = strtod(eq + 1, &end);
		else if (!strcmp(kv, "reservation"))
			v->pol.cpu_reservation = strtod(eq + 1, &end);
		else
			return -1;
		if (*end || errno || ovc_vm_policy_check(&v->pol, NULL))
			return -1;
	}
	return f->nvms ? 0 : -1;
}

/* Received CPUs per VM per window, after a 1 s warm-up. Return: 0 or -EINTR. */
static int measure(struct ovcb *b, struct fair *f, unsigned int windows, double got[][MAX_VMS])
{
	uint64_t c0[MAX_VMS], t0, t1;
	unsigned int w, i, j;

	if (ovcb_sleep_ms(b, 1000))
		return -EINTR;
	for (w = 0; w < windows; w++) {
		t0 = ovcb_now_ns();
		for (i = 0; i < f->nvms; i++)
			for (j = 0, c0[i] = 0; j < f->nvcpus; j++)
				c0[i] += ovc__thread_cpu_ns(f->vms[i].tid[j]);
		if (ovcb_sleep_ms(b, 1000))
			return -EINTR;
		t1 = ovcb_now_ns();
		for (i = 0; i < f->nvms; i++) {
			uint64_t c = 0;

			for (j = 0; j < f->nvcpus; j++)
				c += ovc__thread_cpu_ns(f->vms[i].tid[j]);
			got[w][i] = (double)(c - c0[i]) / (double)(t1 - t0);
		}
	}
	return 0;
}

static int start_threads(struct fair *f)
{
	unsigned int i, j;

	atomic_store(&f->stop, false);
	for (i = 0; i < f->nvms; i++) {
		for (j = 0; j < f->nvcpus; j++) {
			struct burner *a = &f->args[i][j];
			int ret;

			f->vms[i].tid[j] = 0;
			a->f = f;
			a->v = &f->vms[i];
			a->i = j;
			ret = pthread_create(&f->vms[i].th[j], NULL, burn, a);
			if (ret) {
				/* Join what started. */
				atomic_store(&f->stop, true);
				while (j--)
					pthread_join(f->vms[i].th[j], NULL);
				while (i--)
					for (j = 0; j < f->nvcpus; j++)
						pthread_join(f->vms[i].th[j], NULL);
				return -ret;
			}
		}
	}
	for (i = 0; i < f->nvms; i++)
		for (j = 0; j < f->nvcpus; j++)
			while (!atomic_load(&f->vms[i].tid[j]))
				usleep(100);
	return 0;
}

static void stop_threads(struct fair *f)
{
	unsigned int i, j;

	atomic_store(&f->stop, true);
	for (i = 0; i < f->nvms; i++)
		for (j = 0; j < f->nvcpus; j++)
			pthread_join(f->vms[i].th[j], NULL);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

struct verdict {
	double max_err, med_err, overshoot, res_met;
	double got[MAX_VMS], ent[MAX_VMS];	/* means over the windows */
};

/* Errors of one run, judged on the division of what the VMs received together. */
static void judge(const struct fair *f, unsigned int windows, double got[][MAX_VMS],
		  struct verdict *r)
{
	struct ovc_cpu_claim c[MAX_VMS];
	double ent[MAX_VMS], errs[MAX_WINDOWS * MAX_VMS], total;
	unsigned int w, i, n = 0, met = 0;

	memset(r, 0, sizeof(*r));
	for (w = 0; w < windows; w++) {
		bool all_met = true;

		for (i = 0, total = 0; i < f->nvms; i++) {
			const struct ovc_vm_policy *p = &f->vms[i].pol;

			total += got[w][i];
			c[i].shares = (double)p->cpu_shares;
			c[i].reservation = p->cpu_reservation;
			c[i].limit = p->cpu_limit > 0 ? p->cpu_limit : f->nvcpus;
			c[i].demand = f->nvcpus;
		}
		ovc_cpu_entitle(c, f->nvms, total, ent);
		for (i = 0; i < f->nvms; i++) {
			const struct ovc_vm_policy *p = &f->vms[i].pol;
			double e = ent[i] > 0 ? fabs(got[w][i] / ent[i] - 1.0) * 100 : 0;

			errs[n++] = e;
			r->max_err = fmax(r->max_err, e);
			r->got[i] += got[w][i] / windows;
			r->ent[i] += ent[i] / windows;
			if (p->cpu_limit > 0)
				r->overshoot = fmax(r->overshoot, (got[w][i] / p->cpu_limit - 1.0) * 100);
			if (p->cpu_reservation > 0 && got[w][i] < p->cpu_reservation * 0.95)
				all_met = false;
		}
		met += all_met;
	}
	qsort(errs, n, sizeof(double), cmp_d);
	r->med_err = errs[n / 2];
	r->res_met = 100.0 * met / windows;
}

/* Every thread of the process back to the root group (restore entry: runs before the rmdirs). */
static int cg_leave(void *arg)
{
	char root[256];
	struct dirent *de;
	DIR *d;
	int ret = 0;

	if (ovcb_cgroup_root("cpu", root, sizeof(root)))
		return -ENOENT;
	d = opendir("/proc/self/task");
	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && write_at(root, "tasks", "%s\n", de->d_name))
			ret = -EIO;
	closedir(d);
	(void)arg;
	return ret;
}

/* The run's own cpu group, the main thread in it (threads started later inherit it). */
static bool cg_enter(struct ovcb *b, struct fair *f)
{
	int ret = ovcb_cgroup_new(b, "cpu", "ovc-bench-cpufair", f->cg, sizeof(f->cg));

	if (!ret)
		ret = ovcb_restore_fn(b, "cpu-fairness: threads back to the root cpu group",
				      cg_leave, NULL);
	if (!ret)
		ret = write_at(f->cg, "cpu.shares", "262144\n");
	if (!ret)
		ret = write_at(f->cg, "tasks", "%d\n", (int)gettid());
	if (ret) {
		fprintf(stderr, "cpu-fairness: no writable cgroup v1 cpu hierarchy (%s): no CFS "
			"peer, and the machine's other work shares the CPUs\n", strerror(-ret));
		f->cg[0] = 0;
		return false;
	}
	return true;
}

/* The peer: plain CFS, one group per VM with its shares and its limit as a quota. */
static int run_cfs(struct ovcb *b, struct fair *f, unsigned int windows, double got[][MAX_VMS])
{
	unsigned int i, j;
	int ret;

	/* The groups are made and registered before any thread joins them. */
	for (i = 0; i < f->nvms; i++) {
		char name[64];

		snprintf(name, sizeof(name), "%s/%s", strrchr(f->cg, '/') + 1, f->vms[i].name);
		ret = ovcb_cgroup_new(b, "cpu", name, f->sub[i], sizeof(f->sub[i]));
		if (ret)
			return ret;
		ret = write_at(f->sub[i], "cpu.shares", "%llu\n",
			       (unsigned long long)f->vms[i].pol.cpu_shares);
		if (!ret)
			ret = write_at(f->sub[i], "cpu.cfs_quota_us", "%lld\n",
				       f->vms[i].pol.cpu_limit > 0 ?
				       (long long)llround(f->vms[i].pol.cpu_limit * 100000) : -1LL);
		if (ret)
			return ret;
	}
	ret = start_threads(f);
	if (ret)
		return ret;
	for (i = 0; i < f->nvms && !ret; i++)
		for (j = 0; j < f->nvcpus && !ret; j++)
			ret = write_at(f->sub[i], "tasks", "%d\n", (int)f->vms[i].tid[j]);
	if (!ret)
		ret = measure(b, f, windows, got);
	stop_threads(f);
	return ret;
}

static int run_ovc(struct ovcb *b, struct fair *f, double capacity, unsigned int windows,
		   double got[][MAX_VMS])
{
	struct ovc_cpusched_config cfg;
	struct ovc_host_config hc;
	struct ovc_host *host;
	unsigned int i;
	int ret;

	ovc_host_config_init(&hc);
	hc.tick_ms = 100;
	hc.log_level = OVC_LOG_WARN;
	host = ovc_host_new(&hc);
	if (!host)
		return -errno;
	ovc_cpusched_config_init(&cfg);
	cfg.backend = "throttle";
	cfg.capacity = capacity;
	cfg.place = false;
	ret = ovc_host_set_cpusched(host, &cfg);
	for (i = 0; i < f->nvms && !ret; i++) {
		f->vms[i].vm = ovc_vm_new(host, f->vms[i].name);
		if (!f->vms[i].vm)
			ret = -errno;
		else
			ret = ovc_vm_set_policy(f->vms[i].vm, &f->vms[i].pol);
		if (ret)
			fprintf(stderr, "cpu-fairness: VM %s refused: %s (reservations over "
				"capacity?)\n", f->vms[i].name, strerror(-ret));
	}
	if (!ret)
		ret = start_threads(f);
	if (!ret) {
		ret = measure(b, f, windows, got);
		stop_threads(f);
	}
	for (i = 0; i < f->nvms; i++) {
		if (f->vms[i].vm && ovc_vm_destroy(f->vms[i].vm) && !ret)
			ret = -EIO;
		f->vms[i].vm = NULL;
	}
	if (ovc_host_destroy(host) && !ret)
		ret = -EIO;
	return ret;
}

static void report(struct ovcb *b, const char *sys, const struct verdict *r,
		   bool limits)
{
	ovcb_metricf(b, r->max_err, "%s.max_error_pct", sys);
	ovcb_metricf(b, r->med_err, "%s.median_error_pct", sys);
	printf("%s: max error %.2f%%, median %.2f%%", sys, r->max_err, r->med_err);
	if (limits) {
		ovcb_metric(b, "ovc.limit_overshoot_pct", r->overshoot);
		ovcb_metric(b, "ovc.reservation_met_pct", r->res_met);
		printf(", limit overshoot %.2f%%, reservations met %.0f%% of windows", r->overshoot,
		       r->res_met);
	}
	printf("\n");
}

int ovcb_scn_cpu_fairness(struct ovcb *b, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vms", required_argument, NULL, 'v' },
		{ "vcpus", required_argument, NULL, 'n' },
		{ "capacity", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *spec = "a:shares=2000,b:shares=1000,c:shares=1000,c:limit=0.4";
	double ovc_got[MAX_WINDOWS][MAX_VMS], cfs_got[MAX_WINDOWS][MAX_VMS], capacity = 0;
	struct verdict ov, cv;
	unsigned int windows = ovcb_seconds(b, 5), i, w;
	bool have_cfs;
	struct fair *f;
	char *end;
	int c, ret;

	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->nvcpus = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'v':
			spec = optarg;
			break;
		case 'n':
			f->nvcpus = (unsigned int)strtoul(optarg, &end, 10);
			if (*end || !f->nvcpus || f->nvcpus > MAX_VCPUS) {
				fprintf(stderr, "cpu-fairness: --vcpus must be 1 to %d\n", MAX_VCPUS);
				ret = 2;
				goto out;
			}
			break;
		case 'c':
			capacity = strtod(optarg, &end);
			if (*end || !(capacity > 0) || capacity > 4096) {
				fprintf(stderr, "cpu-fairness: --capacity must be a positive number of CPUs\n");
				ret = 2;
				goto out;
			}
			break;
		case 'h':
			printf("%s", ovcb_scn_cpu_fairness_help);
			ret = 0;
			goto out;
		default:
			ret = 2;
			goto out;
		}
	}
	if (parse_vms(f, spec)) {
		fprintf(stderr, "cpu-fairness: bad --vms '%s' (name:shares=N|limit=CPUS|"
			"reservation=CPUS,..., at most %d VMs)\n", spec, MAX_VMS);
		ret = 2;
		goto out;
	}
	if (windows > MAX_WINDOWS) {
		fprintf(stderr, "cpu-fairness: --seconds must be 1 to %d\n", MAX_WINDOWS);
		ret = 2;
		goto out;
	}
	if (!capacity)
		capacity = fmax(1.0, (double)sysconf(_SC_NPROCESSORS_ONLN) - 1);
	ovcb_param_str(b, "vms", spec);
	ovcb_param_int(b, "vcpus", f->nvcpus);
	ovcb_param_real(b, "capacity", capacity);
	ovcb_param_int(b, "windows", windows);
	ovcb_param_str(b, "backend", "throttle");

	have_cfs = cg_enter(b, f);

	/* Run 1: ovc, throttle backend. */
	ret = run_ovc(b, f, capacity, windows, ovc_got);
	if (ret)
		goto out;
	judge(f, windows, ovc_got, &ov);

	/* Run 2: plain CFS with the same weights and limits, threads in groups by hand. */
	if (have_cfs) {
		ret = run_cfs(b, f, windows, cfs_got);
		if (ret)
			goto out;
		judge(f, windows, cfs_got, &cv);
	}

	for (w = 0; w < windows; w++) {
		printf("window %u:", w);
		for (i = 0; i < f->nvms; i++)
			printf(" %s ovc %.3f", f->vms[i].name, ovc_got[w][i]);
		for (i = 0; have_cfs && i < f->nvms; i++)
			printf(" %s cfs %.3f", f->vms[i].name, cfs_got[w][i]);
		printf("\n");
	}
	report(b, "ovc", &ov, true);
	if (have_cfs) {
		report(b, "cfs", &cv, false);
		ovcb_ratio(b, "max_error_vs_cfs", ov.max_err, cv.max_err);
	}
	ovcb_set_ok(b, have_cfs);

	if (ovcb_plot_enabled(b)) {
		const char *groups[MAX_VMS];
		struct ovcb_series s[4] = {
			{ "ovc received", ov.got, f->nvms },
			{ "ovc entitled", ov.ent, f->nvms },
			{ "CFS received", cv.got, f->nvms },
			{ "CFS entitled", cv.ent, f->nvms },
		};

		for (i = 0; i < f->nvms; i++)
			groups[i] = f->vms[i].name;
		ovcb_plot_bars(b, NULL, "CPU received vs entitled per VM (mean of the windows)",
			       "CPUs", groups, f->nvms, s, have_cfs ? 4 : 2);
	}
	ret = 0;
out:
	free(f);
	return ret;
}
