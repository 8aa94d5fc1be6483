// SPDX-License-Identifier: MIT
/* bench/harness.c: the run, its results and JSON, the settings-restore stack and signals. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "harness-internal.h"

#define RESTORE_MAX 64

static const int term_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
static const int crash_signals[] = { SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL };

enum rkind { R_FILE, R_SWAPOFF, R_UNLINK, R_RMDIR, R_CHILD, R_FN };

/*
 * One thing to put back. Plain data, so that the crash handler can undo it
 * with async-signal-safe calls only; @live is set last when pushing.
 */
struct rentry {
	enum rkind kind;
	char path[PATH_MAX];
	char saved[256];
	pid_t pid;
	int (*fn)(void *arg);
	void *arg;
	volatile sig_atomic_t live;
};

struct ovcb {
	char scenario[64];
	const char *json_path;
	const char *plot_path;
	unsigned int seconds;
	pid_t pid;			/* only this process restores */
	int sfd;			/* signalfd of term_signals */
	int stop_sig;
	bool bad_key;
	bool gnuplot_missing;
	json_t *params, *metrics, *ratios;
	bool ok;
	sigset_t old_mask;
	struct sigaction old_crash[sizeof(crash_signals) / sizeof(crash_signals[0])];
	/* The restore stack; the crash handler reads it. */
	struct rentry stack[RESTORE_MAX];
	volatile sig_atomic_t depth;
	volatile sig_atomic_t restoring;
};

/* The one run of this process, for the crash handler only. */
static struct ovcb *crash_run;

/* snprintf() where cutting short is fine. */
OVC_PRINTF(3, 4) void ovcb__strf(char *buf, size_t size, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(buf, size, f, ap);
	va_end(ap);
}

static void say(const char *s)
{
	(void)!write(STDERR_FILENO, s, strlen(s));
}

static void nap_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int ovcb_write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, s, strlen(s)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

int ovcb_read_str(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	return 0;
}

uint64_t ovcb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/*
 * Undo one entry. @in_crash: from the crash handler, where R_FN entries are
 * skipped (they may not be async-signal-safe). Return: 0 or -1.
 */
static int undo(struct rentry *e, bool in_crash)
{
	int i;

	switch (e->kind) {
	case R_FILE:
		return ovcb_write_str(e->path, e->saved) ? -1 : 0;
	case R_SWAPOFF:
		return swapoff(e->path) && errno != EINVAL ? -1 : 0;
	case R_UNLINK:
		return unlink(e->path) && errno != ENOENT ? -1 : 0;
	case R_RMDIR:
		/* An exited task may hold the cgroup for a moment. */
		for (i = 0; i < 100; i++) {
			if (!rmdir(e->path) || errno == ENOENT)
				return 0;
			if (errno != EBUSY)
				return -1;
			nap_ms(20);
		}
		return -1;
	case R_CHILD:
		kill(e->pid, SIGKILL);
		while (waitpid(e->pid, NULL, 0) < 0 && errno == EINTR)
			;
		return 0;
	case R_FN:
		return in_crash ? -1 : e->fn(e->arg) ? -1 : 0;
	}
	return -1;
}

static const char *kind_name(enum rkind k)
{
	static const char *const n[] = { "setting", "swapoff", "unlink", "rmdir", "child", "restore" };

	return n[k];
}

/* Undo entries down to @mark; failed ones stay. Return: how many failed. */
static int unwind(struct ovcb *b, unsigned int mark, bool in_crash)
{
	int failed = 0, i;

	if (getpid() != b->pid || b->restoring)
		return 0;
	b->restoring = 1;
	for (i = (int)b->depth - 1; i >= (int)mark; i--) {
		struct rentry *e = &b->stack[i];

		if (!e->live)
			continue;
		if (undo(e, in_crash)) {
			failed++;
			say("ovc-bench: could not restore ");
			say(kind_name(e->kind));
			say(" ");
			say(e->path);
			say(": put it back by hand\n");
			continue;
		}
		e->live = 0;
	}
	/* Drop the undone top of the stack. */
	while (b->depth > (sig_atomic_t)mark && !b->stack[b->depth - 1].live)
		b->depth--;
	b->restoring = 0;
	return failed;
}

/*
 * Put the settings back, then hand the signal to whoever had it before (the
 * default action, or a sanitizer's report): a fault returns to the faulting
 * instruction, which faults again into that handler; SIGABRT is raised again.
 */
static void on_crash(int sig)
{
	struct ovcb *b = crash_run;
	size_t i;

	if (!b || getpid() != b->pid) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	unwind(b, 0, true);
	for (i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++)
		if (crash_signals[i] == sig)
			sigaction(sig, &b->old_crash[i], NULL);
	if (sig == SIGABRT)
		raise(sig);
}

/* Push an entry; @fill completes it. The entry goes live only once complete. */
static struct rentry *push(struct ovcb *b, enum rkind kind, const char *path)
{
	struct rentry *e;

	if (b->depth >= RESTORE_MAX) {
		fprintf(stderr, "ovc-bench: the restore stack is full (%d)\n", RESTORE_MAX);
		return NULL;
	}
	e = &b->stack[b->depth];
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	ovcb__strf(e->path, sizeof(e->path), "%s", path ? path : "");
	b->depth++;
	return e;
}

static void go_live(struct rentry *e)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	e->live = 1;
}

unsigned int ovcb_restore_mark(const struct ovcb *b)
{
	return (unsigned int)b->depth;
}

int ovcb_restore_to(struct ovcb *b, unsigned int mark)
{
	return unwind(b, mark, false) ? -EIO : 0;
}

static struct rentry *find_file(struct ovcb *b, const char *path)
{
	int i;

	for (i = 0; i < (int)b->depth; i++)
		if (b->stack[i].live && b->stack[i].kind == R_FILE && !strcmp(b->stack[i].path, path))
			return &b->stack[i];
	return NULL;
}

int ovcb_setting_write(struct ovcb *b, const char *path, const char *value)
{
	char cur[256];
	struct rentry *e;
	int ret;

	if ((ret = ovcb_read_str(path, cur, sizeof(cur))))
		return ret;
	if (!strcmp(cur, value))
		return 0;
	if (!find_file(b, path)) {
		e = push(b, R_FILE, path);
		if (!e)
			return -ENOSPC;
		ovcb__strf(e->saved, sizeof(e->saved), "%s", cur);
		go_live(e);
	}
	return ovcb_write_str(path, value);
}

/* A swap file of @pages pages with a version-1 header (what mkswap writes). */
static int make_swapfile(const char *path, uint64_t pages, bool zero_fill)
{
	static uint8_t hdr[OVC_PAGE_SIZE] __attribute__((aligned(4096)));
	uint32_t info[3] = { 1, (uint32_t)(pages - 1), 0 };	/* version, last_page, nr_badpages */
	uint64_t off;
	int fd, ret = 0;

	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(hdr, 0, sizeof(hdr));
	if (zero_fill) {
		/* No unwritten extents at all, for filesystems whose swapon wants that. */
		for (off = 0; off < pages * OVC_PAGE_SIZE && !ret; off += OVC_PAGE_SIZE)
			if (pwrite(fd, hdr, OVC_PAGE_SIZE, (off_t)off) != (ssize_t)OVC_PAGE_SIZE)
				ret = -EIO;
	} else if (fallocate(fd, 0, 0, (off_t)(pages * OVC_PAGE_SIZE))) {
		ret = -errno;
	}
	memcpy(hdr + 1024, info, sizeof(info));
	memcpy(hdr + OVC_PAGE_SIZE - 10, "SWAPSPACE2", 10);
	if (!ret && pwrite(fd, hdr, OVC_PAGE_SIZE, 0) != (ssize_t)OVC_PAGE_SIZE)
		ret = -EIO;
	if (!ret && fsync(fd))
		ret = -errno;
	close(fd);
	return ret;
}

int ovcb_swapfile_on(struct ovcb *b, const char *dir, uint64_t pages, char *path, size_t size)
{
	struct rentry *u, *s;
	struct statfs sf;
	int fd, ret, pass;

	if (pages < 16 || pages > UINT32_MAX)
		return -EINVAL;
	if (statfs(dir, &sf))
		return -errno;
	if (sf.f_type == 0x01021994 /* TMPFS_MAGIC */)
		return -EOPNOTSUPP;
	ovcb__strf(path, size, "%s/ovc-bench-swap-%d-%u", dir, (int)getpid(),
		   (unsigned int)b->depth);
	u = push(b, R_UNLINK, path);
	if (!u)
		return -ENOSPC;
	/* Never an existing file: it could be someone's swap. */
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		b->depth--;
		return ret;
	}
	close(fd);
	go_live(u);
	s = push(b, R_SWAPOFF, path);
	if (!s)
		return -ENOSPC;
	go_live(s);
	/* Some filesystems refuse unwritten extents: then write every block, once. */
	for (pass = 0, ret = -EINVAL; pass < 2 && ret; pass++) {
		ret = make_swapfile(path, pages, pass == 1);
		if (!ret && swapon(path, SWAP_FLAG_PREFER | SWAP_FLAG_PRIO_MASK))
			ret = -errno;
	}
	return ret;
}

int ovcb_cgroup_root(const char *controller, char *out, size_t size)
{
	char dev[256], dir[PATH_MAX], type[64], opts[512];
	FILE *f = fopen("/proc/mounts", "re");
	int found = 0;

	if (!f)
		return -errno;
	while (!found && fscanf(f, "%255s %4095s %63s %511s %*d %*d", dev, dir, type, opts) == 4) {
		char *tok, *save = NULL;

		if (strcmp(type, "cgroup"))
			continue;
		for (tok = strtok_r(opts, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			if (!strcmp(tok, controller)) {
				ovcb__strf(out, size, "%s", dir);
				found = 1;
			}
		}
	}
	fclose(f);
	return found ? 0 : -ENOENT;
}

int ovcb_cgroup_new(struct ovcb *b, const char *controller, const char *name, char *path,
		    size_t size)
{
	char root[PATH_MAX];
	struct rentry *e;
	int ret;

	if ((ret = ovcb_cgroup_root(controller, root, sizeof(root))))
		return ret;
	ovcb__strf(path, size, "%s/%s-%d", root, name, (int)getpid());
	e = push(b, R_RMDIR, path);
	if (!e)
		return -ENOSPC;
	if (mkdir(path, 0755)) {
		ret = -errno;
		b->depth--;
		return ret;
	}
	go_live(e);
	return 0;
}

int ovcb_child_track(struct ovcb *b, pid_t pid)
{
	struct rentry *e = push(b, R_CHILD, "");

	if (!e)
		return -ENOSPC;
	e->pid = pid;
	ovcb__strf(e->path, sizeof(e->path), "pid %d", (int)pid);
	go_live(e);
	return 0;
}

void ovcb_child_untrack(struct ovcb *b, pid_t pid)
{
	int i;

	for (i = (int)b->depth - 1; i >= 0; i--) {
		if (b->stack[i].live && b->stack[i].kind == R_CHILD && b->stack[i].pid == pid) {
			b->stack[i].live = 0;
			break;
		}
	}
	while (b->depth > 0 && !b->stack[b->depth - 1].live)
		b->depth--;
}

int ovcb_restore_fn(struct ovcb *b, const char *what, int (*fn)(void *arg), void *arg)
{
	struct rentry *e = push(b, R_FN, what);

	if (!e)
		return -ENOSPC;
	e->fn = fn;
	e->arg = arg;
	go_live(e);
	return 0;
}

/* ---- signals and waiting ---- */

static sigset_t term_set(void)
{
	sigset_t set;
	size_t i;

	sigemptyset(&set);
	for (i = 0; i < sizeof(term_signals) / sizeof(term_signals[0]); i++)
		sigaddset(&set, term_signals[i]);
	return set;
}

bool ovcb_stopping(struct ovcb *b)
{
	struct signalfd_siginfo si;

	if (b->stop_sig)
		return true;
	if (read(b->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		b->stop_sig = (int)si.ssi_signo;
		fprintf(stderr, "ovc-bench: %s: stopping, restoring settings\n",
			strsignal(b->stop_sig));
	}
	return b->stop_sig != 0;
}

int ovcb_stop_signal(const struct ovcb *b)
{
	return b->stop_sig;
}

/* Wait up to @ms for a stop signal. Return: true when one came. */
static bool wait_stop(struct ovcb *b, int ms)
{
	struct pollfd pfd = { .fd = b->sfd, .events = POLLIN };

	if (ovcb_stopping(b))
		return true;
	if (poll(&pfd, 1, ms) > 0)
		return ovcb_stopping(b);
	return false;
}

int ovcb_sleep_ms(struct ovcb *b, unsigned int ms)
{
	uint64_t end = ovcb_now_ns() + (uint64_t)ms * 1000000ULL, now;

	while ((now = ovcb_now_ns()) < end) {
		if (wait_stop(b, (int)((end - now + 999999) / 1000000)))
			return -EINTR;
	}
	return ovcb_stopping(b) ? -EINTR : 0;
}

int ovcb_waitpid(struct ovcb *b, pid_t pid, int *status)
{
	pid_t r;

	for (;;) {
		r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
		if (wait_stop(b, 10)) {
			kill(pid, SIGKILL);
			while (waitpid(pid, status, 0) < 0 && errno == EINTR)
				;
			return -EINTR;
		}
	}
}

extern char **environ;

int ovcb_spawn_wait(struct ovcb *b, char *const argv[], bool quiet)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none;
	int status, ret;
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	/* The child takes Ctrl-C as usual; we kill it on a stop anyway. */
	sigemptyset(&none);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
	if (quiet) {
		posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
		posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	}
	ret = -posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (ret)
		return ret;
	if (ovcb_child_track(b, pid)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -ENOSPC;
	}
	ret = ovcb_waitpid(b, pid, &status);
	ovcb_child_untrack(b, pid);
	if (ret)
		return ret;
	if (WIFEXITED(status))
		return WEXITSTATUS(status) == 127 ? -ENOENT : WEXITSTATUS(status);
	return -ECHILD;
}

/* ---- the run ---- */

struct ovcb *ovcb_new(const char *scenario, const char *json, const char *plot,
		      unsigned int seconds)
{
	struct ovcb *b = calloc(1, sizeof(*b));
	struct sigaction sa;
	sigset_t set = term_set();
	size_t i;

	if (!b)
		return NULL;
	ovcb__strf(b->scenario, sizeof(b->scenario), "%s", scenario);
	b->json_path = json;
	b->plot_path = plot;
	b->seconds = seconds;
	b->pid = getpid();
	b->params = json_object();
	b->metrics = json_object();
	b->ratios = json_object();
	if (!b->params || !b->metrics || !b->ratios)
		goto err;
	if (sigprocmask(SIG_BLOCK, &set, &b->old_mask))
		goto err;
	b->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (b->sfd < 0) {
		sigprocmask(SIG_SETMASK, &b->old_mask, NULL);
		goto err;
	}
	crash_run = b;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_crash;
	sigfillset(&sa.sa_mask);
	for (i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++)
		sigaction(crash_signals[i], &sa, &b->old_crash[i]);
	return b;
err:
	json_decref(b->params);
	json_decref(b->metrics);
	json_decref(b->ratios);
	free(b);
	return NULL;
}

int ovcb_destroy(struct ovcb *b)
{
	int failed;
	size_t i;

	if (!b)
		return 0;
	ovcb_stopping(b);	/* take a pending signal, so its name is said */
	failed = unwind(b, 0, false);
	for (i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++)
		sigaction(crash_signals[i], &b->old_crash[i], NULL);
	crash_run = NULL;
	close(b->sfd);
	sigprocmask(SIG_SETMASK, &b->old_mask, NULL);
	json_decref(b->params);
	json_decref(b->metrics);
	json_decref(b->ratios);
	free(b);
	return failed ? -EIO : 0;
}

unsigned int ovcb_seconds(const struct ovcb *b, unsigned int dflt)
{
	return b->seconds ? b->seconds : dflt;
}

bool ovcb_plot_enabled(const struct ovcb *b)
{
	return b->plot_path != NULL;
}

const char *ovcb__plot_base(const struct ovcb *b)
{
	return b->plot_path;
}

bool *ovcb__gnuplot_missing(struct ovcb *b)
{
	return &b->gnuplot_missing;
}

/* ---- results ---- */

void ovcb_param_json(struct ovcb *b, const char *key, json_t *v)
{
	json_object_set_new(b->params, key, v);
}

void ovcb_param_int(struct ovcb *b, const char *key, int64_t v)
{
	ovcb_param_json(b, key, json_integer((json_int_t)v));
}

void ovcb_param_real(struct ovcb *b, const char *key, double v)
{
	ovcb_param_json(b, key, json_real(v));
}

void ovcb_param_str(struct ovcb *b, const char *key, const char *v)
{
	ovcb_param_json(b, key, json_string(v ? v : ""));
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* "<system>.<measure>_<unit>": see ovcb_metric(). */
static bool metric_key_ok(const char *k)
{
	const char *dot = strchr(k, '.'), *last, *us;
	size_t i;

	if (!dot || dot == k)
		return false;
	for (i = 0; k[i]; i++)
		if (!name_char(k[i]) && k[i] != '.')
			return false;
	if (strstr(k, "..") || k[i - 1] == '.')
		return false;
	last = strrchr(k, '.') + 1;
	us = strrchr(last, '_');
	return us && us != last && us[1];
}

static bool ratio_name_ok(const char *k)
{
	const char *vs = strstr(k, "_vs_");
	size_t i;

	for (i = 0; k[i]; i++)
		if (!name_char(k[i]))
			return false;
	return vs && vs != k && vs[4];
}

void ovcb_metric(struct ovcb *b, const char *key, double v)
{
	if (!metric_key_ok(key)) {
		fprintf(stderr, "ovc-bench: metric name '%s' is not <system>.<measure>_<unit>\n", key);
		b->bad_key = true;
		return;
	}
	if (!isfinite(v))
		return;
	json_object_set_new(b->metrics, key, json_real(v));
}

void ovcb_metricf(struct ovcb *b, double v, const char *fmt, ...)
{
	char key[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(key, sizeof(key), fmt, ap);
	va_end(ap);
	ovcb_metric(b, key, v);
}

double ovcb_ratio(struct ovcb *b, const char *name, double ours, double peer)
{
	double r;

	if (!ratio_name_ok(name)) {
		fprintf(stderr, "ovc-bench: ratio name '%s' is not <what>_vs_<peer>\n", name);
		b->bad_key = true;
		return NAN;
	}
	if (!isfinite(ours) || !isfinite(peer) || peer == 0)
		return NAN;
	r = ours / peer;
	json_object_set_new(b->ratios, name, json_real(r));
	return r;
}

void ovcb_set_ok(struct ovcb *b, bool ok)
{
	b->ok = ok;
}

static bool is_number(const json_t *v)
{
	return json_is_integer(v) || json_is_real(v);
}

bool ovcb_schema_check(const json_t *root, char *err, size_t size)
{
	static const char *const keys[] = { "scenario", "machine", "params", "metrics", "ratios",
					    "ok" };
	const json_t *m, *v;
	const char *k;
	char dummy[8];
	size_t i;

	if (!err) {
		err = dummy;
		size = sizeof(dummy);
	}
	if (!json_is_object(root)) {
		ovcb__strf(err, size, "the document is not an object");
		return false;
	}
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (!json_object_get(root, keys[i])) {
			ovcb__strf(err, size, "no \"%s\"", keys[i]);
			return false;
		}
	}
	json_object_foreach((json_t *)root, k, v) {
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]) && strcmp(k, keys[i]); i++)
			;
		if (i == sizeof(keys) / sizeof(keys[0])) {
			ovcb__strf(err, size, "unknown key \"%s\"", k);
			return false;
		}
	}
	v = json_object_get(root, "scenario");
	if (!json_is_string(v) || !json_string_length(v)) {
		ovcb__strf(err, size, "\"scenario\" is not a non-empty string");
		return false;
	}
	m = json_object_get(root, "machine");
	if (!json_is_object(m) || !json_is_integer(json_object_get(m, "cpus")) ||
	    json_integer_value(json_object_get(m, "cpus")) < 1 ||
	    !json_is_integer(json_object_get(m, "memory")) ||
	    json_integer_value(json_object_get(m, "memory")) < 1 ||
	    !json_is_string(json_object_get(m, "kernel"))) {
		ovcb__strf(err, size,
			   "\"machine\" needs cpus (integer), memory (integer, bytes), kernel (string)");
		return false;
	}
	if (!json_is_object(json_object_get(root, "params"))) {
		ovcb__strf(err, size, "\"params\" is not an object");
		return false;
	}
	m = json_object_get(root, "metrics");
	if (!json_is_object(m)) {
		ovcb__strf(err, size, "\"metrics\" is not an object");
		return false;
	}
	json_object_foreach((json_t *)m, k, v) {
		if (!metric_key_ok(k) || !is_number(v)) {
			ovcb__strf(err, size,
				   "metric \"%s\": not \"<system>.<measure>_<unit>\": number", k);
			return false;
		}
	}
	m = json_object_get(root, "ratios");
	if (!json_is_object(m)) {
		ovcb__strf(err, size, "\"ratios\" is not an object");
		return false;
	}
	json_object_foreach((json_t *)m, k, v) {
		if (!ratio_name_ok(k) || !is_number(v)) {
			ovcb__strf(err, size, "ratio \"%s\": not \"<what>_vs_<peer>\": number", k);
			return false;
		}
	}
	if (!json_is_boolean(json_object_get(root, "ok"))) {
		ovcb__strf(err, size, "\"ok\" is not a boolean");
		return false;
	}
	return true;
}

static json_t *machine(void)
{
	struct utsname un;

	uname(&un);
	return json_pack("{s:i, s:I, s:s}", "cpus", (int)sysconf(_SC_NPROCESSORS_ONLN),
			 "memory", (json_int_t)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE),
			 "kernel", un.release);
}

static void print_object(const char *title, json_t *o)
{
	const char *k;
	json_t *v;

	if (!json_object_size(o))
		return;
	printf("%s:\n", title);
	json_object_foreach(o, k, v)
		printf("  %-44s %12.4g\n", k, json_number_value(v));
}

int ovcb_finish(struct ovcb *b)
{
	char err[200];
	json_t *root;
	int ret = 0;

	if (b->seconds)
		ovcb_param_int(b, "seconds", b->seconds);
	root = json_pack("{s:s, s:o, s:O, s:O, s:O, s:b}", "scenario", b->scenario,
			 "machine", machine(), "params", b->params, "metrics", b->metrics,
			 "ratios", b->ratios, "ok", b->ok);
	if (!root)
		return -ENOMEM;
	printf("\n");
	print_object("metrics", b->metrics);
	print_object("ratios", b->ratios);
	printf("ok: %s\n", b->ok ? "true (peers ran)" : "false (peers did not all run)");
	if (b->bad_key || !ovcb_schema_check(root, err, sizeof(err))) {
		fprintf(stderr, "ovc-bench: %s: the results break the schema: %s\n", b->scenario,
			b->bad_key ? "a malformed metric or ratio name (above)" : err);
		ret = -EINVAL;
	} else if (b->json_path && json_dump_file(root, b->json_path, JSON_INDENT(2) | JSON_REAL_PRECISION(6))) {
		ret = -errno ? -errno : -EIO;
		fprintf(stderr, "ovc-bench: cannot write %s\n", b->json_path);
	} else if (b->json_path) {
		printf("json: %s\n", b->json_path);
	}
	json_decref(root);
	return ret;
}

/* ---- small statistics ---- */

int64_t ovcb_vmstat(const char *key)
{
	char line[128];
	size_t kl = strlen(key);
	int64_t v = -1;
	FILE *f = fopen("/proc/vmstat", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, kl) && line[kl] == ' ') {
			v = strtoll(line + kl + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

bool ovcb_crypto_has(const char *name)
{
	FILE *f = fopen("/proc/crypto", "re");
	char line[256], want[128];
	bool found = false;

	if (!f)
		return false;
	ovcb__strf(want, sizeof(want), ": %s\n", name);
	while (!found && fgets(line, sizeof(line), f))
		found = !strncmp(line, "name", 4) && strstr(line, want);
	fclose(f);
	return found;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

double ovcb_median(double *v, size_t n)
{
	if (!n)
		return NAN;
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

uint64_t ovcb_quantile_u64(uint64_t *v, size_t n, double q)
{
	size_t i;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u64);
	i = (size_t)((double)n * q);
	return v[i < n ? i : n - 1];
}

const char *ovcb_swap_peer_missing(char *memcg_root, size_t size)
{
	if (geteuid() != 0)
		return "not root";
	if (access(OVCB_ZSWAP_DIR "enabled", W_OK))
		return "no zswap (/sys/module/zswap/parameters)";
	if (ovcb_cgroup_root("memory", memcg_root, size))
		return "no cgroup v1 memory controller mounted";
	return NULL;
}
