/* SPDX-License-Identifier: MIT */
/* bench/harness.h: what every ovc-bench scenario shares: results, the settings-restore stack, signals, plots. */
#ifndef OVC_BENCH_HARNESS_H
#define OVC_BENCH_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include <ovc/common.h>

/*
 * One run of one scenario. Everything a scenario reports or changes goes
 * through it; all functions are for the main thread unless said otherwise
 * (worker threads and forked children never call into the harness).
 */
struct ovcb;

/**
 * typedef ovcb_run_fn - a scenario's body
 * @b: the run (--json, --plot and --seconds already taken out of argv)
 * @argc, @argv: the scenario's own options; argv[0] is its name; getopt is
 *	reset before the call
 *
 * Return: 0 when it measured what it could (peers that could not run are
 * reported through ovcb_set_ok() and metrics left out), 2 for a usage error,
 * -EINTR when ovcb_stopping() said so, another negative errno on failure.
 * The harness restores every registered setting after it returns, whatever
 * it returned.
 */
typedef int (*ovcb_run_fn)(struct ovcb *b, int argc, char **argv);

/**
 * struct ovcb_scenario - one row of ovc-bench's table
 * @name: what `ovc-bench run` takes
 * @fn: its body
 * @help: usage text; its first line is what `ovc-bench list` prints
 */
struct ovcb_scenario {
	const char *name;
	ovcb_run_fn fn;
	const char *help;
};

/* ---- the run ---- */

/**
 * ovcb_new() - start a run: blocks the termination signals into a signalfd
 * @scenario: the scenario's name (copied into the JSON)
 * @json: where ovcb_finish() writes the JSON (NULL: nowhere)
 * @plot: the PNG path plots derive from (NULL: plots are skipped)
 * @seconds: --seconds (0: the scenario's default)
 *
 * Call before any thread or child exists: SIGINT, SIGTERM, SIGHUP and SIGQUIT
 * stay blocked in every thread and are read only by ovcb_stopping() and the
 * waits below, so restores always run on the main thread. Crash signals
 * (SIGSEGV, SIGABRT...) undo the file, swap, cgroup and child entries from a
 * handler before dying. Pair with ovcb_destroy(). Return: NULL with errno.
 */
struct ovcb *ovcb_new(const char *scenario, const char *json, const char *plot,
		      unsigned int seconds);

/**
 * ovcb_destroy() - restore everything still registered, free the run
 * @b: the run (NULL: nothing)
 *
 * Return: 0, or -EIO when some setting could not be put back (said on stderr).
 */
int ovcb_destroy(struct ovcb *b);

/** ovcb_seconds() - --seconds, or @dflt when it was not given */
unsigned int ovcb_seconds(const struct ovcb *b, unsigned int dflt);

/** ovcb_plot_enabled() - whether --plot was given */
bool ovcb_plot_enabled(const struct ovcb *b);

/**
 * ovcb_stopping() - has SIGINT/SIGTERM/SIGHUP/SIGQUIT arrived?
 * @b: the run
 *
 * Cheap (one non-blocking read of the signalfd); call it in every loop that
 * can last more than a fraction of a second, and return -EINTR when true.
 */
bool ovcb_stopping(struct ovcb *b);

/** ovcb_stop_signal() - the termination signal received, 0 when none */
int ovcb_stop_signal(const struct ovcb *b);

/** ovcb_sleep_ms() - sleep, waking early for a stop. Return: 0 or -EINTR */
int ovcb_sleep_ms(struct ovcb *b, unsigned int ms);

/**
 * ovcb_waitpid() - wait for child @pid, killing it (SIGKILL) on a stop
 * @b: the run
 * @pid: a child
 * @status: its wait status
 *
 * Return: 0, -EINTR after a stop (the child reaped), or -errno of waitpid.
 */
int ovcb_waitpid(struct ovcb *b, pid_t pid, int *status);

/**
 * ovcb_spawn_wait() - run a program (PATH searched), wait for it like ovcb_waitpid()
 * @b: the run
 * @argv: NULL-terminated
 * @quiet: its stdout and stderr go to /dev/null
 *
 * Return: its exit status (0..255), -EINTR, or -errno (-ENOENT: no such program).
 */
int ovcb_spawn_wait(struct ovcb *b, char *const argv[], bool quiet);

/* ---- results ---- */

/** ovcb_param_int()/_real()/_str()/_json() - one entry of "params" (set_new: @v is stolen) */
void ovcb_param_int(struct ovcb *b, const char *key, int64_t v);
void ovcb_param_real(struct ovcb *b, const char *key, double v);
void ovcb_param_str(struct ovcb *b, const char *key, const char *v);
void ovcb_param_json(struct ovcb *b, const char *key, json_t *v);

/**
 * ovcb_metric() - one entry of "metrics"
 * @b: the run
 * @key: "<system>.<measure>_<unit>", e.g. "ovc.pagein_zip.p50_us",
 *	"kernel_swap.rand.access_mb_per_s": system and measure in [a-z0-9_.],
 *	the unit after the last '_' of the last dotted part
 * @v: the figure; NaN and infinities are left out
 *
 * A malformed key is a bug in the scenario: it is said on stderr and
 * dropped, and ovcb_finish() then fails.
 */
void ovcb_metric(struct ovcb *b, const char *key, double v);

/** ovcb_metricf() - ovcb_metric() with a printf-formatted key */
OVC_PRINTF(3, 4) void ovcb_metricf(struct ovcb *b, double v, const char *fmt, ...);

/**
 * ovcb_ratio() - one entry of "ratios": @ours / @peer
 * @b: the run
 * @name: "<what>_vs_<peer>", e.g. "pagein_zip_p50_vs_zswap"
 * @ours, @peer: the two figures; nothing is recorded unless both are finite
 *	and @peer is not 0
 *
 * Return: the ratio, or NaN when not recorded.
 */
double ovcb_ratio(struct ovcb *b, const char *name, double ours, double peer);

/** ovcb_set_ok() - "ok": true when the scenario ran its peer(s) too */
void ovcb_set_ok(struct ovcb *b, bool ok);

/**
 * ovcb_finish() - print the metrics and ratios, write the JSON (when --json)
 * @b: the run
 *
 * The document is checked with ovcb_schema_check() before it is written.
 * Return: 0, -EINVAL (schema: said on stderr), or -errno of writing.
 */
int ovcb_finish(struct ovcb *b);

/**
 * ovcb_schema_check() - does @root follow the ovc-bench JSON schema?
 * @root: a parsed document
 * @err: the first problem, one line (may be NULL)
 * @size: of @err
 *
 * The schema is docs/BENCHMARKS.md's. Return: true when it does.
 */
bool ovcb_schema_check(const json_t *root, char *err, size_t size);

/* ---- the settings-restore stack ---- */

/*
 * Every system setting a scenario changes is registered *before* it is
 * changed; entries are undone last-in first-out by ovcb_restore_to(),
 * ovcb_destroy() (normal exit, failure, or a stop signal) and, except
 * ovcb_restore_fn() entries, by the crash handler.
 */

/**
 * ovcb_setting_write() - write @value to a sysfs/procfs file, first saving what it holds
 * @b: the run
 * @path: e.g. "/sys/module/zswap/parameters/enabled", "/proc/sys/vm/page-cluster"
 * @value: the new value
 *
 * The first value seen for @path is the one put back. Writing what it
 * already holds changes (and registers) nothing. Return: 0 or -errno.
 */
int ovcb_setting_write(struct ovcb *b, const char *path, const char *value);

/**
 * ovcb_swapfile_on() - a swap file of @pages pages in @dir, swapped on at top priority
 * @b: the run
 * @dir: not tmpfs
 * @pages: its size in pages
 * @path: the file's name is written here
 * @size: of @path
 *
 * Never reuses an existing file. Registers its unlink and its swapoff.
 * Return: 0 or -errno.
 */
int ovcb_swapfile_on(struct ovcb *b, const char *dir, uint64_t pages, char *path, size_t size);

/**
 * ovcb_cgroup_new() - a new cgroup v1 directory under @controller's hierarchy
 * @b: the run
 * @controller: "memory", "cpu"...
 * @name: the directory's name (made unique with the pid)
 * @path: its full path is written here
 * @size: of @path
 *
 * Registers its removal (retried while tasks leave it). Return: 0, -ENOENT
 * (the controller is not mounted as cgroup v1), or -errno.
 */
int ovcb_cgroup_new(struct ovcb *b, const char *controller, const char *name, char *path,
		    size_t size);

/** ovcb_child_track() - register child @pid: killed (SIGKILL) and reaped on restore. Return: 0 or -ENOSPC */
int ovcb_child_track(struct ovcb *b, pid_t pid);

/** ovcb_child_untrack() - the child was reaped by the caller: forget it */
void ovcb_child_untrack(struct ovcb *b, pid_t pid);

/**
 * ovcb_restore_fn() - register a restore of your own
 * @b: the run
 * @what: what it undoes (said when it fails)
 * @fn: returns 0 or -errno; runs on the main thread only (not on a crash)
 * @arg: for @fn; must live until the entry ran
 *
 * Return: 0 or -ENOSPC.
 */
int ovcb_restore_fn(struct ovcb *b, const char *what, int (*fn)(void *arg), void *arg);

/** ovcb_restore_mark() - the stack's depth now, for ovcb_restore_to() */
unsigned int ovcb_restore_mark(const struct ovcb *b);

/**
 * ovcb_restore_to() - undo everything registered since @mark (LIFO)
 *
 * For settings that should hold only during part of a run (zswap only while
 * the zswap peer runs). Return: 0 or -EIO (some entry failed; it stays on the
 * stack and is retried by ovcb_destroy()).
 */
int ovcb_restore_to(struct ovcb *b, unsigned int mark);

/* ---- system helpers for the kernel peers ---- */

/** ovcb_read_str() - a small file's contents, trailing blanks cut. Return: 0 or -errno */
int ovcb_read_str(const char *path, char *buf, size_t size);

/** ovcb_write_str() - write @s to @path (async-signal-safe). Return: 0 or -errno */
int ovcb_write_str(const char *path, const char *s);

/** ovcb_cgroup_root() - the mount point of cgroup v1 @controller. Return: 0 or -ENOENT */
int ovcb_cgroup_root(const char *controller, char *out, size_t size);

/** Where zswap's parameters live. */
#define OVCB_ZSWAP_DIR "/sys/module/zswap/parameters/"

/**
 * ovcb_swap_peer_missing() - why the kernel swap/zswap peers cannot run here
 * @memcg_root: set to the cgroup v1 memory mount point when they can
 * @size: its size
 *
 * Return: NULL when they can (root, zswap, a memory cgroup), else a reason.
 */
const char *ovcb_swap_peer_missing(char *memcg_root, size_t size);

/** ovcb_vmstat() - one counter of /proc/vmstat, -1 when absent */
int64_t ovcb_vmstat(const char *key);

/** ovcb_crypto_has() - does the kernel's crypto API hold algorithm @name now? */
bool ovcb_crypto_has(const char *name);

/** ovcb_now_ns() - CLOCK_MONOTONIC in nanoseconds */
uint64_t ovcb_now_ns(void);

/** ovcb_median() - median of @v (sorted in place); NaN when @n is 0 */
double ovcb_median(double *v, size_t n);

/** ovcb_quantile_u64() - quantile @q of @v (sorted in place); 0 when @n is 0 */
uint64_t ovcb_quantile_u64(uint64_t *v, size_t n, double q);

/* ---- plots (gnuplot, PNG) ---- */

/**
 * struct ovcb_series - one line, one stacked layer or one set of bars
 * @label: its legend entry
 * @v: its values (a CDF's samples in any order; a time series' values at the
 *	shared times; bars: one per group)
 * @n: how many values
 */
struct ovcb_series {
	const char *label;
	const double *v;
	size_t n;
};

/*
 * Each plot function writes a data file and a gnuplot script into a
 * temporary directory, runs gnuplot on it and prints the PNG's path. The
 * PNG is --plot's path when @suffix is NULL, else "<base>-<suffix>.png"
 * (several charts from one run). With no --plot they do nothing and return
 * 0; a missing gnuplot is said once and returns -ENOENT (the run goes on).
 */

/**
 * ovcb_plot_cdf() - cumulative distributions, one line per series
 * @logx: logarithmic x axis (latencies)
 * Return: 0 or -errno.
 */
int ovcb_plot_cdf(struct ovcb *b, const char *suffix, const char *title, const char *xlabel,
		  const struct ovcb_series *s, unsigned int nseries, bool logx);

/**
 * ovcb_plot_timeseries() - values over time, lines or stacked areas
 * @t: the times (seconds), @npoints of them; every series has @npoints values
 * @stacked: stacked areas (memory by state), else lines (CPU received vs entitled)
 * Return: 0 or -errno.
 */
int ovcb_plot_timeseries(struct ovcb *b, const char *suffix, const char *title,
			 const char *ylabel, const double *t, size_t npoints,
			 const struct ovcb_series *s, unsigned int nseries, bool stacked);

/**
 * ovcb_plot_bars() - clustered bars: one cluster per group, one bar per series
 * @groups: @ngroups names; every series has @ngroups values
 * Return: 0 or -errno.
 */
int ovcb_plot_bars(struct ovcb *b, const char *suffix, const char *title, const char *ylabel,
		   const char *const *groups, size_t ngroups, const struct ovcb_series *s,
		   unsigned int nseries);

#endif /* OVC_BENCH_HARNESS_H */
