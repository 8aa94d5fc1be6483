// SPDX-License-Identifier: MIT
/* bench/ovc-oracle.c: run the integrity oracle at full count and print its figures. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/kit/oracle.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: ovc-oracle [--seconds S] [--min-accesses N] [--threads N] [--pages N]\n"
		"                  [--write-pct P] [--fault-threads N] [--no-chaos]\n"
		"                  [--chaos-rate PAGES_PER_S] [--seed N] [--json FILE]\n"
		"Runs host threads that verify versioned, self-checking guest pages while a\n"
		"chaos thread moves them through random transitions. Exit 0 only with corrupt 0.\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 0);
	return errno || end == s || *end ? -1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seconds", required_argument, NULL, 's' },
		{ "min-accesses", required_argument, NULL, 'a' },
		{ "threads", required_argument, NULL, 't' },
		{ "pages", required_argument, NULL, 'p' },
		{ "write-pct", required_argument, NULL, 'w' },
		{ "fault-threads", required_argument, NULL, 'f' },
		{ "no-chaos", no_argument, NULL, 'n' },
		{ "chaos-rate", required_argument, NULL, 'c' },
		{ "seed", required_argument, NULL, 'r' },
		{ "json", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ovc_host_config hcfg;
	struct oracle_config cfg;
	struct oracle_result res;
	const char *json = NULL;
	struct ovc_host *host;
	uint64_t v;
	int c, ret;

	oracle_config_init(&cfg);
	ovc_host_config_init(&hcfg);
	cfg.seconds = 20;
	cfg.min_accesses = 10000000;
	cfg.chaos_rate = 20000;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		if (c == 'n') {
			cfg.chaos = false;
			continue;
		}
		if (c == 'j') {
			json = optarg;
			continue;
		}
		if (c == '?' || parse_u64(optarg, &v)) {
			usage(stderr);
			return 2;
		}
		switch (c) {
		case 's': cfg.seconds = (double)v; break;
		case 'a': cfg.min_accesses = v; break;
		case 't': cfg.accessors = (unsigned int)v; break;
		case 'p': cfg.npages = v; break;
		case 'w': cfg.write_pct = (unsigned int)v; break;
		case 'f': hcfg.fault_threads = (unsigned int)v; break;
		case 'r': cfg.seed = v; break;
		case 'c': cfg.chaos_rate = v; break;
		}
	}
	host = ovc_host_new(&hcfg);
	if (!host) {
		fprintf(stderr, "ovc-oracle: cannot create host: %s\n", strerror(errno));
		return 1;
	}
	printf("oracle: %u accessors, %" PRIu64 " pages, chaos %s (%" PRIu64 " pages/s), >= %.0f s and >= %" PRIu64 " accesses\n",
	       cfg.accessors, cfg.npages, cfg.chaos ? "on" : "off", cfg.chaos_rate, cfg.seconds, cfg.min_accesses);
	fflush(stdout);
	ret = oracle_run(host, &cfg, &res);
	if (ovc_host_destroy(host))
		ret = ret ? ret : -EBUSY;
	if (ret) {
		fprintf(stderr, "ovc-oracle: %s\n", strerror(-ret));
		return 1;
	}
	oracle_print(&res, stdout);
	if (json) {
		FILE *f = fopen(json, "w");

		if (!f) {
			fprintf(stderr, "ovc-oracle: %s: %s\n", json, strerror(errno));
			return 1;
		}
		fprintf(f, "{\"scenario\":\"oracle\",\"metrics\":{\"ovc.accesses\":%" PRIu64
			",\"ovc.transitions\":%" PRIu64 ",\"ovc.corrupt\":%" PRIu64
			",\"ovc.accesses_per_s\":%.0f},\"ok\":%s}\n",
			res.accesses, res.transitions, res.corrupt,
			res.seconds > 0 ? (double)res.accesses / res.seconds : 0.0,
			res.corrupt || res.store_leaks ? "false" : "true");
		fclose(f);
	}
	return res.corrupt || res.store_leaks ? 1 : 0;
}
