// SPDX-License-Identifier: MIT
/* core/util.c: logging, the bug trap, clocks and names shared by the library. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/core-internal.h"

void ovc__bug(const char *file, const char *func, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ovc: BUG at %s:%d in %s(): ", file, line, func);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void ovc__log(const struct ovc_log *log, int level, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (log && level > log->level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (log && log->fn)
		log->fn(log->opaque, level, line);
	else
		fprintf(stderr, "ovc: %s\n", line);
}

uint64_t ovc__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t ovc__thread_cpu_ns(pid_t tid)
{
	/* The kernel's MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED). */
	clockid_t cid = (clockid_t)((~(unsigned int)tid) << 3) | 6;
	struct timespec ts;

	if (clock_gettime(cid, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

bool ovc__page_is_zero(const void *page)
{
	const uint64_t *w = page;
	size_t i;

	for (i = 0; i < OVC_PAGE_SIZE / sizeof(*w); i++) {
		if (w[i])
			return false;
	}
	return true;
}

OVC_EXPORT const char *ovc_page_state_name(int state)
{
	static const char *const names[OVC_PAGE_NR_STATES] = {
		[OVC_PAGE_ZERO] = "zero",
		[OVC_PAGE_RESIDENT] = "resident",
		[OVC_PAGE_BALLOONED] = "ballooned",
		[OVC_PAGE_SHARED] = "shared",
		[OVC_PAGE_COMPRESSED] = "compressed",
		[OVC_PAGE_SWAPPED] = "swapped",
		[OVC_PAGE_IMAGE] = "image",
	};

	if (state < 0 || state >= OVC_PAGE_NR_STATES)
		return "invalid";
	return names[state];
}

OVC_EXPORT const char *ovc_fault_kind_name(int kind)
{
	static const char *const names[OVC_FAULT_NR_KINDS] = {
		[OVC_FAULT_ZERO] = "zero",
		[OVC_FAULT_BALLOONED] = "ballooned",
		[OVC_FAULT_STORE] = "store",
		[OVC_FAULT_WP] = "wp",
		[OVC_FAULT_WAIT] = "wait",
		[OVC_FAULT_SPURIOUS] = "spurious",
		[OVC_FAULT_ERROR] = "error",
		[OVC_FAULT_MINOR] = "minor",
	};

	if (kind < 0 || kind >= OVC_FAULT_NR_KINDS)
		return "invalid";
	return names[kind];
}

unsigned int ovc__hist_bucket(uint64_t ns, unsigned int nbuckets)
{
	unsigned int b = ns ? 63u - (unsigned int)__builtin_clzll(ns) : 0;

	return b < nbuckets ? b : nbuckets - 1;
}

uint64_t ovc__hist_quantile_ns(const uint64_t *hist, unsigned int nbuckets, double q)
{
	uint64_t total = 0, seen = 0;
	double rank;
	unsigned int i;

	for (i = 0; i < nbuckets; i++)
		total += hist[i];
	if (!total)
		return 0;
	q = q < 0.0 ? 0.0 : q > 1.0 ? 1.0 : q;
	rank = q * (double)total;
	for (i = 0; i < nbuckets; i++) {
		if (hist[i] && (double)(seen + hist[i]) >= rank) {
			double lo = (double)(1ULL << i);

			return (uint64_t)(lo + (rank - (double)seen) / (double)hist[i] * lo);
		}
		seen += hist[i];
	}
	return 1ULL << (nbuckets - 1);
}

OVC_EXPORT uint64_t ovc_mem_stats_fault_quantile_ns(const struct ovc_mem_stats *st,
						    double q)
{
	return st ? ovc__hist_quantile_ns(st->fault_ns_hist, OVC_FAULT_HIST_BUCKETS, q) : 0;
}
