// SPDX-License-Identifier: MIT
/* bench/balloon-rate.c: how fast a guest's balloon gives 1 GiB back, and the host side's own rate. */
#include <errno.h>
#include <getopt.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#ifndef OVC_VMM_PATH
#error "OVC_VMM_PATH must name the ovc-vmm binary"
#endif

extern char **environ;

#define GiB (1ULL << 30)

static void usage(FILE *out)
{
	fprintf(out,
"usage: balloon-rate [--runs N] [--json FILE]\n"
"Boots one ovc-vmm VM (memtouch with its balloon driver), asks its balloon\n"
"for 1 GiB, and reports the median over N runs (default 3) of the time until\n"
"the guest said it holds 1 GiB (ovc.balloon_reclaim_1gib_s) and of the host's\n"
"own processing rate for the inflated pages (ovc.balloon_host_gib_per_s).\n"
"Needs /dev/kvm.\n");
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One VM run; fills the two figures. Return 0 or -1 (one line printed). */
static int one_run(const char *dir, double *reclaim_s, double *host_gib_s)
{
	char json_path[256];
	const char *argv[] = {
		OVC_VMM_PATH, "--quiet",
		/*
		 * 2 GiB (the balloon may hold 65%), a small working set: the rest
		 * is the pool, written once by the guest first (about 20 s here).
		 */
		"--vm", "name=bal,mem=2G,vcpus=1,guest=memtouch,devices=balloon,"
			"balloon=1G@24,args=balloon=on size=5%",
		"--balloon-step", "1G", "--seconds", "28",
		"--log-dir", dir, "--json", json_path, NULL,
	};
	json_t *root, *b;
	json_error_t jerr;
	json_int_t settle, inflate_ns, inflated;
	int status;
	pid_t pid;

	snprintf(json_path, sizeof(json_path), "%s/summary.json", dir);
	if (posix_spawn(&pid, argv[0], NULL, NULL, (char *const *)argv, environ)) {
		fprintf(stderr, "balloon-rate: cannot run %s\n", argv[0]);
		return -1;
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "balloon-rate: ovc-vmm failed (status %d); see %s\n", status, dir);
		return -1;
	}
	root = json_load_file(json_path, 0, &jerr);
	b = json_object_get(json_array_get(json_object_get(root, "vms"), 0), "balloon");
	settle = json_integer_value(json_object_get(b, "settle_ns"));
	inflate_ns = json_integer_value(json_object_get(b, "inflate_ns"));
	inflated = json_integer_value(json_object_get(b, "inflated"));
	json_decref(root);
	if (!settle || !inflate_ns || inflated < (json_int_t)(GiB / 4096)) {
		fprintf(stderr, "balloon-rate: the guest did not reach 1 GiB (inflated %lld pages)\n",
			(long long)inflated);
		return -1;
	}
	*reclaim_s = (double)settle / 1e9;
	*host_gib_s = (double)inflated * 4096 / (double)GiB / ((double)inflate_ns / 1e9);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "runs", required_argument, NULL, 'r' },
		{ "json", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	double reclaim[16], host[16];
	const char *json = NULL;
	char dir[] = "/tmp/ovc-balloon-rate-XXXXXX";
	unsigned int runs = 3, i;
	struct utsname un;
	json_t *out, *m;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			runs = (unsigned int)strtoul(optarg, NULL, 10);
			if (runs < 1 || runs > 16) {
				fprintf(stderr, "balloon-rate: --runs must be 1 to 16\n");
				return 2;
			}
			break;
		case 'j':
			json = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (access("/dev/kvm", R_OK | W_OK)) {
		printf("balloon-rate: skipped: no usable /dev/kvm (%s)\n", strerror(errno));
		return 0;
	}
	if (!mkdtemp(dir)) {
		perror("balloon-rate: mkdtemp");
		return 1;
	}
	for (i = 0; i < runs; i++) {
		if (one_run(dir, &reclaim[i], &host[i]))
			return 1;
		printf("run %u: 1 GiB reclaimed in %.3f s; host side %.2f GiB/s\n", i + 1,
		       reclaim[i], host[i]);
	}

	out = json_object();
	m = json_object();
	uname(&un);
	json_object_set_new(out, "scenario", json_string("balloon-rate"));
	json_object_set_new(out, "machine", json_pack("{s:i, s:I, s:s}",
		"cpus", (int)sysconf(_SC_NPROCESSORS_ONLN),
		"memory", (json_int_t)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE),
		"kernel", un.release));
	json_object_set_new(out, "params", json_pack("{s:i, s:s}", "runs", (int)runs,
						     "vm", "2G memtouch balloon=on"));
	json_object_set_new(m, "ovc.balloon_reclaim_1gib_s", json_real(median(reclaim, runs)));
	json_object_set_new(m, "ovc.balloon_host_gib_per_s", json_real(median(host, runs)));
	json_object_set_new(out, "metrics", m);
	json_object_set_new(out, "ratios", json_object());
	/* No peer: nothing else balloons a KVM guest on this machine to compare with. */
	json_object_set_new(out, "ok", json_true());
	printf("median: 1 GiB reclaimed in %.3f s (goal < 0.5 s); host side %.2f GiB/s (goal >= 4)\n",
	       median(reclaim, runs), median(host, runs));
	if (json && json_dump_file(out, json, JSON_INDENT(2)))
		fprintf(stderr, "balloon-rate: cannot write %s\n", json);
	json_decref(out);
	return 0;
}
