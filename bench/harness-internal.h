/* SPDX-License-Identifier: MIT */
/* bench/harness-internal.h: what the harness's own files share (plots, formatting). */
#ifndef OVC_BENCH_HARNESS_INTERNAL_H
#define OVC_BENCH_HARNESS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <ovc/common.h>

struct ovcb;

/* snprintf() where cutting short is fine. */
OVC_PRINTF(3, 4) void ovcb__strf(char *buf, size_t size, const char *f, ...);
/* --plot's path, NULL when not given. */
const char *ovcb__plot_base(const struct ovcb *b);
/* Set once gnuplot was found missing, so it is said once. */
bool *ovcb__gnuplot_missing(struct ovcb *b);

#endif
