// SPDX-License-Identifier: MIT
/* bench/scn-balloon-rate.c: how fast a guest's balloon gives 1 GiB back, and the host side's own rate. */
#include <errno.h>
#include <getopt.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "scenarios.h"

#ifndef OVC_VMM_PATH
#error "OVC_VMM_PATH must name the ovc-vmm binary"
#endif

#define GiB (1ULL << 30)

const char ovcb_scn_balloon_rate_help[] =
"how fast a guest's balloon gives 1 GiB back, and the host side's own rate\n"
"options: [--runs N]\n"
"Boots one ovc-vmm VM (memtouch with its balloon driver), asks its balloon\n"
"for 1 GiB, and reports the median over N runs (default 3) of the time until\n"
"the guest said it holds 1 GiB (ovc.balloon_reclaim_1gib_s) and of the host's\n"
"own processing rate for the inflated pages (ovc.balloon_host_gib_per_s).\n"
"No peer: nothing else balloons a KVM guest on this machine (\"ok\" is false).\n"
"Needs /dev/kvm.\n";

/* One VM run; fills the two figures. Return 0 or -1 (one line printed). */
static int one_run(struct ovcb *ob, const char *dir, double *reclaim_s, double *host_gib_s)
{
	char json_path[256];
	char *argv[] = {
		OVC_VMM_PATH, "--quiet",
		/*
		 * 2 GiB (the balloon may hold 65%), a small working set: the rest
		 * is the pool, written once by the guest first (about 20 s here).
		 */
		"--vm", "name=bal,mem=2G,vcpus=1,guest=memtouch,devices=balloon,"
			"balloon=1G@24,args=balloon=on size=5%",
		"--balloon-step", "1G", "--seconds", "28",
		"--log-dir", (char *)dir, "--json", json_path, NULL,
	};
	json_t *root, *b;
	json_error_t jerr;
	json_int_t settle, inflate_ns, inflated;
	int ret;

	snprintf(json_path, sizeof(json_path), "%s/summary.json", dir);
	ret = ovcb_spawn_wait(ob, argv, false);
	if (ret == -EINTR)
		return ret;
	if (ret) {
		fprintf(stderr, "balloon-rate: ovc-vmm failed (%s); see %s\n",
			ret < 0 ? strerror(-ret) : "exit status", dir);
		return -EIO;
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
		return -EIO;
	}
	*reclaim_s = (double)settle / 1e9;
	*host_gib_s = (double)inflated * 4096 / (double)GiB / ((double)inflate_ns / 1e9);
	return 0;
}

int ovcb_scn_balloon_rate(struct ovcb *b, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "runs", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	double reclaim[16], host[16];
	char dir[] = "/tmp/ovc-balloon-rate-XXXXXX";
	unsigned int runs = 3, i;
	int c, ret;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			runs = (unsigned int)strtoul(optarg, NULL, 10);
			if (runs < 1 || runs > 16) {
				fprintf(stderr, "balloon-rate: --runs must be 1 to 16\n");
				return 2;
			}
			break;
		case 'h':
			printf("%s", ovcb_scn_balloon_rate_help);
			return 0;
		default:
			return 2;
		}
	}
	ovcb_param_int(b, "runs", runs);
	ovcb_param_str(b, "vm", "2G memtouch balloon=on");
	if (access("/dev/kvm", R_OK | W_OK)) {
		printf("balloon-rate: skipped: no usable /dev/kvm (%s)\n", strerror(errno));
		ovcb_param_str(b, "skipped", "no usable /dev/kvm");
		return 0;
	}
	if (!mkdtemp(dir)) {
		perror("balloon-rate: mkdtemp");
		return -errno;
	}
	for (i = 0; i < runs; i++) {
		if ((ret = one_run(b, dir, &reclaim[i], &host[i])))
			return ret;
		printf("run %u: 1 GiB reclaimed in %.3f s; host side %.2f GiB/s\n", i + 1,
		       reclaim[i], host[i]);
	}
	ovcb_metric(b, "ovc.balloon_reclaim_1gib_s", ovcb_median(reclaim, runs));
	ovcb_metric(b, "ovc.balloon_host_gib_per_s", ovcb_median(host, runs));
	printf("median: 1 GiB reclaimed in %.3f s (goal < 0.5 s); host side %.2f GiB/s (goal >= 4)\n",
	       ovcb_median(reclaim, runs), ovcb_median(host, runs));
	/* No peer: nothing else balloons a KVM guest on this machine to compare with. */
	ovcb_set_ok(b, false);
	return 0;
}
