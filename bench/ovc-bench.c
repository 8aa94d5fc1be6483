// SPDX-License-Identifier: MIT
/* bench/ovc-bench.c: one front end for every benchmark scenario: list, help, run. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "scenarios.h"

static const struct ovcb_scenario scenarios[] = {
	{ "fault-latency", ovcb_scn_fault_latency, ovcb_scn_fault_latency_help },
	{ "pager-latency", ovcb_scn_pager_latency, ovcb_scn_pager_latency_help },
	{ "pager-throughput", ovcb_scn_pager_throughput, ovcb_scn_pager_throughput_help },
	{ "balloon-rate", ovcb_scn_balloon_rate, ovcb_scn_balloon_rate_help },
	{ "cpu-fairness", ovcb_scn_cpu_fairness, ovcb_scn_cpu_fairness_help },
	{ "cpusched-sim", ovcb_scn_cpusched_sim, ovcb_scn_cpusched_sim_help },
	{ "memsched-sim", ovcb_scn_memsched_sim, ovcb_scn_memsched_sim_help },
};

#define NSCN (sizeof(scenarios) / sizeof(scenarios[0]))

static void usage(FILE *out)
{
	fprintf(out,
"usage: ovc-bench list\n"
"       ovc-bench help SCENARIO\n"
"       ovc-bench run SCENARIO [--json FILE] [--plot FILE.png] [--seconds N]\n"
"                              [scenario options]\n"
"Runs one benchmark scenario against its peers (the kernel's mechanisms),\n"
"prints its figures and writes them as JSON (schema: docs/BENCHMARKS.md).\n"
"Every system setting a scenario changes is put back when it ends, fails,\n"
"or is stopped with Ctrl-C / SIGTERM.\n");
}

static const struct ovcb_scenario *find(const char *name)
{
	size_t i;

	for (i = 0; i < NSCN; i++)
		if (!strcmp(scenarios[i].name, name))
			return &scenarios[i];
	fprintf(stderr, "ovc-bench: no scenario '%s' (ovc-bench list)\n", name);
	return NULL;
}

static void list(void)
{
	size_t i;

	for (i = 0; i < NSCN; i++) {
		const char *h = scenarios[i].help, *nl = strchr(h, '\n');

		printf("%-18s %.*s\n", scenarios[i].name, (int)(nl ? nl - h : (long)strlen(h)), h);
	}
}

/* Take --json, --plot and --seconds out of argv; the rest is the scenario's. */
static int take_common(int *argc, char **argv, const char **json, const char **plot,
		       unsigned int *seconds)
{
	int i, o = 1;

	for (i = 1; i < *argc; i++) {
		const char *a = argv[i], *v = NULL;
		size_t n = 0;

		if (!strncmp(a, "--json", 6) || !strncmp(a, "--plot", 6) ||
		    !strncmp(a, "--seconds", 9)) {
			n = a[2] == 's' ? 9 : 6;
			if (a[n] == '=')
				v = a + n + 1;
			else if (a[n])
				n = 0;	/* --jsonx: the scenario's */
			else if (i + 1 < *argc)
				v = argv[++i];
		}
		if (!n) {
			argv[o++] = argv[i];
			continue;
		}
		if (!v || !*v) {
			fprintf(stderr, "ovc-bench: %.*s needs a value\n", (int)n, a);
			return -EINVAL;
		}
		if (a[2] == 'j') {
			*json = v;
		} else if (a[2] == 'p') {
			*plot = v;
		} else {
			char *end;
			unsigned long s = strtoul(v, &end, 10);

			if (*end || s < 1 || s > 86400) {
				fprintf(stderr, "ovc-bench: --seconds must be 1..86400\n");
				return -EINVAL;
			}
			*seconds = (unsigned int)s;
		}
	}
	argv[o] = NULL;
	*argc = o;
	return 0;
}

static int run(int argc, char **argv)
{
	const struct ovcb_scenario *s;
	const char *json = NULL, *plot = NULL;
	unsigned int seconds = 0;
	struct ovcb *b;
	int ret, sig, i;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	s = find(argv[1]);
	if (!s)
		return 2;
	argc--;
	argv++;
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("%s", s->help);
			return 0;
		}
	}
	if (take_common(&argc, argv, &json, &plot, &seconds))
		return 2;
	b = ovcb_new(s->name, json, plot, seconds);
	if (!b) {
		fprintf(stderr, "ovc-bench: %s\n", strerror(errno));
		return 1;
	}
	optind = 0;
	ret = s->fn(b, argc, argv);
	sig = ovcb_stop_signal(b);
	if (!ret && !sig)
		ret = ovcb_finish(b);
	if (ovcb_destroy(b))
		ret = ret ? ret : -EIO;
	if (sig) {
		fprintf(stderr, "ovc-bench: %s: stopped by %s; settings restored\n", s->name,
			strsignal(sig));
		return 128 + sig;
	}
	if (ret == 2)
		return 2;
	if (ret)
		fprintf(stderr, "ovc-bench: %s failed: %s\n", s->name, strerror(-ret));
	return ret ? 1 : 0;
}

int main(int argc, char **argv)
{
	const struct ovcb_scenario *s;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "list")) {
		list();
		return 0;
	}
	if (!strcmp(argv[1], "help")) {
		if (argc < 3) {
			usage(stdout);
			return 0;
		}
		s = find(argv[2]);
		if (!s)
			return 2;
		printf("%s", s->help);
		return 0;
	}
	if (!strcmp(argv[1], "run"))
		return run(argc - 1, argv + 1);
	fprintf(stderr, "ovc-bench: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
