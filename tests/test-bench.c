// SPDX-License-Identifier: MIT
/* tests/test-bench.c: ovc-bench's harness: the JSON schema, the restore stack and signals, and cheap scenarios run end to end. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "harness.h"

#ifndef OVC_BENCH_PATH
#error "OVC_BENCH_PATH must name the ovc-bench binary"
#endif

extern char **environ;

static const char *valid_doc =
	"{\"scenario\": \"x\", \"machine\": {\"cpus\": 2, \"memory\": 1024, \"kernel\": \"6\"},"
	" \"params\": {\"pages\": 3}, \"metrics\": {\"ovc.pagein_zip.p50_us\": 1.5,"
	" \"kernel_swap.rand.access_mb_per_s\": 2}, \"ratios\": {\"pagein_zip_p50_vs_zswap\": 0.5},"
	" \"ok\": true}";

static json_t *doc(void)
{
	json_t *d = json_loads(valid_doc, 0, NULL);

	cr_assert_not_null(d);
	return d;
}

static bool check(json_t *d, char *err, size_t size)
{
	bool ok = ovcb_schema_check(d, err, size);

	json_decref(d);
	return ok;
}

Test(bench, schema_accepts_a_valid_document)
{
	char err[200] = "";

	cr_assert(check(doc(), err, sizeof(err)), "%s", err);
}

Test(bench, schema_rejects_what_breaks_it)
{
	static const char *const bad_metrics[] = {
		"pagein_p50_us",		/* no system */
		"ovc.pagein",			/* no unit */
		"ovc.pagein.p50",		/* no unit in the last part */
		"ovc.Pagein_us",		/* upper case */
		"ovc..p50_us",
		"ovc.p50_",
	};
	char err[200];
	json_t *d;
	size_t i;

	for (i = 0; i < sizeof(bad_metrics) / sizeof(bad_metrics[0]); i++) {
		d = doc();
		json_object_set_new(json_object_get(d, "metrics"), bad_metrics[i], json_real(1));
		cr_expect_not(check(d, err, sizeof(err)), "metric %s accepted", bad_metrics[i]);
	}
	d = doc();
	json_object_set_new(json_object_get(d, "metrics"), "ovc.x_us", json_string("1"));
	cr_expect_not(check(d, err, sizeof(err)), "a string metric accepted");
	d = doc();
	json_object_set_new(json_object_get(d, "ratios"), "pagein_faster", json_real(1));
	cr_expect_not(check(d, err, sizeof(err)), "a ratio without _vs_ accepted");
	d = doc();
	json_object_del(d, "ok");
	cr_expect_not(check(d, err, sizeof(err)));
	cr_expect(strstr(err, "ok") != NULL, "%s", err);
	d = doc();
	json_object_set_new(d, "ok", json_string("yes"));
	cr_expect_not(check(d, err, sizeof(err)));
	d = doc();
	json_object_del(json_object_get(d, "machine"), "kernel");
	cr_expect_not(check(d, err, sizeof(err)));
	d = doc();
	json_object_set_new(d, "extra", json_true());
	cr_expect_not(check(d, err, sizeof(err)));
	cr_expect_not(ovcb_schema_check(NULL, err, sizeof(err)));
}

/* A scratch file standing in for a sysfs setting. */
static void scratch(char *path, size_t size, const char *contents)
{
	int fd;

	snprintf(path, size, "/tmp/ovc-test-bench-XXXXXX");
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, contents, strlen(contents)), (ssize_t)strlen(contents));
	close(fd);
}

static void expect_contents(const char *path, const char *want)
{
	char got[64];

	cr_assert_eq(ovcb_read_str(path, got, sizeof(got)), 0);
	cr_expect_str_eq(got, want);
}

Test(bench, restore_stack_puts_settings_back_last_in_first_out)
{
	char a[64], c[64];
	struct ovcb *b = ovcb_new("test", NULL, NULL, 0);
	unsigned int mark;

	cr_assert_not_null(b);
	scratch(a, sizeof(a), "old\n");
	scratch(c, sizeof(c), "3\n");
	cr_assert_eq(ovcb_setting_write(b, a, "new"), 0);
	cr_assert_eq(ovcb_setting_write(b, a, "newer"), 0);	/* the first value is kept */
	expect_contents(a, "newer");
	mark = ovcb_restore_mark(b);
	cr_assert_eq(ovcb_setting_write(b, c, "0"), 0);
	cr_assert_eq(ovcb_setting_write(b, c, "0"), 0);		/* unchanged: nothing pushed */
	expect_contents(c, "0");
	cr_assert_eq(ovcb_restore_to(b, mark), 0);		/* only what came after the mark */
	expect_contents(c, "3");
	expect_contents(a, "newer");
	cr_assert_eq(ovcb_setting_write(b, a, "again"), 0);
	cr_assert_eq(ovcb_destroy(b), 0);
	expect_contents(a, "old");
	unlink(a);
	unlink(c);
}

static int count_calls(void *arg)
{
	(*(int *)arg)++;
	return 0;
}

Test(bench, a_termination_signal_stops_the_run_and_restores)
{
	struct ovcb *b = ovcb_new("test", NULL, NULL, 0);
	int calls = 0, status;
	char a[64];
	pid_t pid;

	cr_assert_not_null(b);
	scratch(a, sizeof(a), "Y\n");
	cr_assert_eq(ovcb_setting_write(b, a, "N"), 0);
	cr_assert_eq(ovcb_restore_fn(b, "count", count_calls, &calls), 0);
	cr_expect_not(ovcb_stopping(b));
	cr_expect_eq(ovcb_sleep_ms(b, 1), 0);

	/* A child that would outlive us is killed and reaped once a stop comes. */
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		pause();
		_exit(0);
	}
	kill(getpid(), SIGTERM);	/* blocked: it waits in the signalfd */
	cr_expect_eq(ovcb_waitpid(b, pid, &status), -EINTR);
	cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	cr_expect(ovcb_stopping(b));
	cr_expect_eq(ovcb_stop_signal(b), SIGTERM);
	cr_expect_eq(ovcb_sleep_ms(b, 1000), -EINTR);
	expect_contents(a, "N");
	cr_assert_eq(ovcb_destroy(b), 0);
	expect_contents(a, "Y");
	cr_expect_eq(calls, 1);
	unlink(a);
}

Test(bench, a_crash_restores_settings_before_dying)
{
	int status;
	char a[64];
	pid_t pid;

	scratch(a, sizeof(a), "lzo\n");
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct ovcb *b = ovcb_new("test", NULL, NULL, 0);

		if (!b || ovcb_setting_write(b, a, "lz4"))
			_exit(1);
		abort();
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "status %d", status);
	expect_contents(a, "lzo");
	unlink(a);
}

/* Run ovc-bench with @args; stdout to @out (NULL: /dev/null). Return: its wait status. */
static int run_bench(const char *const *args, const char *out, int term_after_ms)
{
	const char *argv[24] = { OVC_BENCH_PATH };
	posix_spawn_file_actions_t fa;
	int status, i;
	pid_t pid;

	for (i = 0; args[i]; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out ? out : "/dev/null",
					 O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_eq(posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ), 0);
	posix_spawn_file_actions_destroy(&fa);
	if (term_after_ms) {
		struct timespec ts = { term_after_ms / 1000, (term_after_ms % 1000) * 1000000L };

		nanosleep(&ts, NULL);
		kill(pid, SIGTERM);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return status;
}

static json_t *load_checked(const char *path, const char *scenario)
{
	json_error_t jerr;
	char err[200] = "";
	json_t *d = json_load_file(path, 0, &jerr);

	cr_assert_not_null(d, "%s: %s", path, jerr.text);
	cr_assert(ovcb_schema_check(d, err, sizeof(err)), "%s", err);
	cr_expect_str_eq(json_string_value(json_object_get(d, "scenario")), scenario);
	return d;
}

Test(bench, fault_latency_writes_valid_json_with_its_peer, .timeout = 60)
{
	char json[] = "/tmp/ovc-test-bench-json-XXXXXX";
	const char *args[] = { "run", "fault-latency", "--pages", "500", "--json", json, NULL };
	int fd = mkstemp(json), status;
	json_t *d, *m;

	cr_assert_geq(fd, 0);
	close(fd);
	status = run_bench(args, NULL, 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
	d = load_checked(json, "fault-latency");
	m = json_object_get(d, "metrics");
	cr_expect(json_real_value(json_object_get(m, "ovc.fault_zero.p50_us")) > 0);
	cr_expect(json_real_value(json_object_get(m, "kernel.fault_zero.p50_us")) > 0);
	cr_expect(json_is_real(json_object_get(json_object_get(d, "ratios"),
					       "fault_zero_p50_vs_kernel")));
	cr_expect(json_is_true(json_object_get(d, "ok")));
	cr_expect_eq(json_integer_value(json_object_get(json_object_get(d, "params"), "pages")),
		     500);
	json_decref(d);
	unlink(json);
}

Test(bench, pager_throughput_runs_small_without_peers, .timeout = 90)
{
	char json[] = "/tmp/ovc-test-bench-json-XXXXXX";
	const char *args[] = { "run", "pager-throughput", "--no-peers", "--mib", "8",
			       "--seconds", "1", "--dir", "/var/tmp", "--json", json, NULL };
	int fd = mkstemp(json), status;
	json_t *d, *m;

	cr_assert_geq(fd, 0);
	close(fd);
	status = run_bench(args, NULL, 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
	d = load_checked(json, "pager-throughput");
	m = json_object_get(d, "metrics");
	cr_expect(json_real_value(json_object_get(m, "ovc.seq.access_mb_per_s")) > 0);
	cr_expect(json_real_value(json_object_get(m, "ovc.rand.access_mb_per_s")) > 0);
	/* The sequential pass over 1.5x the limit misses on every page: it pages. */
	cr_expect(json_real_value(json_object_get(m, "ovc.seq.pagein_pages")) > 0);
	cr_expect(json_is_false(json_object_get(d, "ok")));
	cr_expect_eq(json_object_size(json_object_get(d, "ratios")), 0);
	json_decref(d);
	unlink(json);
}

Test(bench, memsched_sim_runs_small_with_valid_json, .timeout = 60)
{
	char json[] = "/tmp/ovc-test-bench-json-XXXXXX";
	const char *args[] = { "run", "memsched-sim", "--vms", "20", "--seconds", "30", "--quiet",
			       "--json", json, NULL };
	int fd = mkstemp(json), status;
	json_t *d, *m;

	cr_assert_geq(fd, 0);
	close(fd);
	status = run_bench(args, NULL, 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
	d = load_checked(json, "memsched-sim");
	m = json_object_get(d, "metrics");
	cr_expect(json_real_value(json_object_get(m, "ovc.mem_tick_ms")) > 0);
	cr_expect(json_is_real(json_object_get(m, "ovc.reservation_violations")));
	cr_expect_eq(json_real_value(json_object_get(m, "ovc.reservation_violations")), 0);
	cr_expect(json_real_value(json_object_get(m, "ovc.active_resident_pct")) > 0);
	cr_expect(json_real_value(json_object_get(m, "ovc.active_resident_pct")) <= 100);
	cr_expect_eq(json_integer_value(json_object_get(json_object_get(d, "params"), "ticks")),
		     30);
	cr_expect(json_is_false(json_object_get(d, "ok")));
	json_decref(d);
	unlink(json);
}

Test(bench, cpusched_sim_runs_small_with_valid_json, .timeout = 60)
{
	char json[] = "/tmp/ovc-test-bench-json-XXXXXX";
	const char *args[] = { "run", "cpusched-sim", "--vms", "40", "--ticks", "25",
			       "--json", json, NULL };
	int fd = mkstemp(json), status;
	json_t *d, *m;

	cr_assert_geq(fd, 0);
	close(fd);
	status = run_bench(args, NULL, 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
	d = load_checked(json, "cpusched-sim");
	m = json_object_get(d, "metrics");
	cr_expect(json_real_value(json_object_get(m, "ovc.cpu_tick_ms")) > 0);
	cr_expect(json_real_value(json_object_get(m, "ovc.cpu_place_ms")) > 0);
	cr_expect(json_real_value(json_object_get(m, "sim.capacity_used_pct")) > 0);
	cr_expect_eq(json_integer_value(json_object_get(json_object_get(d, "params"), "vms")), 40);
	json_decref(d);
	unlink(json);
}

Test(bench, sigterm_stops_a_scenario_promptly, .timeout = 60)
{
	const char *args[] = { "run", "pager-throughput", "--no-peers", "--mib", "8",
			       "--seconds", "50", "--dir", "/var/tmp", NULL };
	int status = run_bench(args, NULL, 1500);

	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGTERM, "status %d", status);
}

Test(bench, list_help_and_usage_errors)
{
	char out[] = "/tmp/ovc-test-bench-out-XXXXXX";
	const char *list[] = { "list", NULL };
	const char *help[] = { "help", "pager-throughput", NULL };
	const char *nosuch[] = { "run", "no-such-scenario", NULL };
	const char *badsec[] = { "run", "fault-latency", "--seconds", "0", NULL };
	int fd = mkstemp(out), status, lines = 0, found = 0;
	char line[256];
	FILE *f;

	cr_assert_geq(fd, 0);
	close(fd);
	status = run_bench(list, out, 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	f = fopen(out, "r");
	cr_assert_not_null(f);
	/* One line per scenario: its name, then a summary. */
	while (fgets(line, sizeof(line), f)) {
		char name[64], summary[64];

		cr_expect_eq(sscanf(line, "%63s %63s", name, summary), 2, "line: %s", line);
		found += !strcmp(name, "fault-latency") || !strcmp(name, "pager-latency") ||
			 !strcmp(name, "pager-throughput") || !strcmp(name, "balloon-rate") ||
			 !strcmp(name, "cpu-fairness") || !strcmp(name, "cpusched-sim") ||
			 !strcmp(name, "memsched-sim");
		lines++;
	}
	fclose(f);
	cr_expect_eq(found, 7, "%d of the seven scenarios listed", found);
	cr_expect_geq(lines, 7);
	status = run_bench(help, out, 0);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	status = run_bench(nosuch, NULL, 0);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 2);
	status = run_bench(badsec, NULL, 0);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 2);
	unlink(out);
}
