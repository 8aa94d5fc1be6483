// SPDX-License-Identifier: MIT
/* bench/ctl-latency.c: round trips through the control socket, per request kind, with N VMs. */
#include <errno.h>
#include <sched.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <ovc/ovc.h>

#define NVMS 16
#define VCPUS_PER_VM 2

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* A stand-in vCPU thread: idle until the pipe closes; its tid goes to @arg. */
static int stop_pipe[2];

static void *idle_vcpu(void *arg)
{
	char c;

	atomic_store((_Atomic pid_t *)arg, (pid_t)syscall(SYS_gettid));
	if (read(stop_pipe[0], &c, 1) < 0) {
		/* closed: done */
	}
	return NULL;
}

/* One request, one reply line; return the reply's length or -1. */
static ssize_t round_trip(FILE *f, const char *req, char **line, size_t *cap)
{
	if (fprintf(f, "%s\n", req) < 0 || fflush(f))
		return -1;
	return getline(line, cap, f);
}

int main(int argc, char **argv)
{
	static const char *const reqs[][2] = {
		{ "status", "{\"req\":\"status\"}" },
		{ "vm.list", "{\"req\":\"vm.list\"}" },
		{ "get", "{\"req\":\"get\",\"vm\":\"vm3\"}" },
		{ "set", "{\"req\":\"set\",\"vm\":\"vm3\",\"values\":{\"mem.shares\":2000,\"cpu.limit\":1.5}}" },
		{ "stats", "{\"req\":\"stats\"}" },
		{ "metrics", "{\"req\":\"metrics\"}" },
	};
	const unsigned int iters = 2000;
	bool json = argc > 1 && !strcmp(argv[1], "--json");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ovc_host_config cfg;
	struct ovc_host *host;
	struct ovc_vm *vm[NVMS];
	struct ovc_vcpu *vc[NVMS][VCPUS_PER_VM];
	pthread_t th[NVMS][VCPUS_PER_VM];
	struct ovc_ctl *ctl;
	double *t = calloc(iters, sizeof(*t));
	char *line = NULL;
	size_t cap = 0, r;
	unsigned int i, k;
	ssize_t n = 0;
	FILE *f;
	int fd;

	if (pipe(stop_pipe))
		return 1;
	ovc_host_config_init(&cfg);
	cfg.tick_ms = 100;
	cfg.log_level = OVC_LOG_WARN;	/* each set logs a line at info */
	host = ovc_host_new(&cfg);
	if (!host || !t) {
		fprintf(stderr, "ctl-latency: cannot create a host: %s\n", strerror(errno));
		return 1;
	}
	for (k = 0; k < NVMS; k++) {
		char name[8];

		snprintf(name, sizeof(name), "vm%u", k);
		vm[k] = ovc_vm_new(host, name);
		if (!vm[k])
			return 1;
		/* Stand-in vCPUs: live threads, so schedstat reads succeed. */
		for (i = 0; i < VCPUS_PER_VM; i++) {
			_Atomic pid_t tid = 0;

			if (pthread_create(&th[k][i], NULL, idle_vcpu, (void *)&tid))
				return 1;
			while (!atomic_load(&tid))
				sched_yield();
			vc[k][i] = ovc_vm_add_vcpu(vm[k], atomic_load(&tid));
			if (!vc[k][i])
				return 1;
		}
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/tmp/ovc-ctl-latency-%d.sock", (int)getpid());
	ctl = ovc_ctl_start(host, sa.sun_path, NULL);
	if (!ctl)
		return 1;
	while (ovc_host_ticks(host) < 2)
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) || !(f = fdopen(fd, "r+")))
		return 1;
	if (json)
		printf("{\"bench\":\"ctl-latency\",\"vms\":%d,\"vcpus\":%d,\"requests\":{", NVMS,
		       NVMS * VCPUS_PER_VM);
	else
		printf("%d VMs x %d vCPUs, %u round trips each: median / p99 in microseconds\n",
		       NVMS, VCPUS_PER_VM, iters);
	for (r = 0; r < sizeof(reqs) / sizeof(reqs[0]); r++) {
		for (i = 0; i < iters; i++) {
			double t0 = now_s();

			n = round_trip(f, reqs[r][1], &line, &cap);
			t[i] = (now_s() - t0) * 1e6;
			if (n <= 0 || !strstr(line, "\"ok\":true")) {
				fprintf(stderr, "ctl-latency: %s failed: %s\n", reqs[r][0], n > 0 ? line : "");
				return 1;
			}
		}
		qsort(t, iters, sizeof(*t), cmp_double);
		if (json)
			printf("%s\"%s\":{\"median_us\":%.1f,\"p99_us\":%.1f,\"reply_bytes\":%zd}",
			       r ? "," : "", reqs[r][0], t[iters / 2], t[iters * 99 / 100], n);
		else
			printf("  %-8s %8.1f %8.1f   (%zd-byte reply)\n", reqs[r][0], t[iters / 2],
			       t[iters * 99 / 100], n);
	}
	if (json)
		printf("}}\n");
	fclose(f);
	free(line);
	free(t);
	ovc_ctl_stop(ctl);
	for (k = 0; k < NVMS; k++) {
		for (i = 0; i < VCPUS_PER_VM; i++)
			ovc_vcpu_remove(vc[k][i]);
		if (ovc_vm_destroy(vm[k]))
			return 1;
	}
	close(stop_pipe[1]);
	for (k = 0; k < NVMS; k++)
		for (i = 0; i < VCPUS_PER_VM; i++)
			pthread_join(th[k][i], NULL);
	return ovc_host_destroy(host) ? 1 : 0;
}
