/* SPDX-License-Identifier: MIT */
/* Stats snapshots as JSON and as Prometheus text exposition. */
#ifndef OVC_EXPORT_H
#define OVC_EXPORT_H

#include <stddef.h>
#include <ovc/common.h>
#include <ovc/stats.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * ovc_stats_format_json() - a snapshot as one line of JSON
 * @snap: the snapshot
 * @vm: only this VM's entry in "vms", or NULL for all
 *
 * The schema is in docs/PROTOCOL.md ("stats"): sizes in bytes, times in
 * nanoseconds, cumulative counters as they are, rates per second.
 *
 * Return: a malloc'd NUL-terminated string (free() it), or NULL with errno
 * EINVAL, ENOENT (no VM @vm) or ENOMEM.
 * Context: any thread; pure function of @snap (hold it with
 * ovc_stats_read_lock() or ovc_stats_get()).
 */
OVC_EXPORT char *ovc_stats_format_json(const struct ovc_stats_snapshot *snap, const char *vm);

/**
 * ovc_stats_format_prometheus() - a snapshot in Prometheus text format 0.0.4
 * @snap: the snapshot
 * @len: set to the text's length (may be NULL)
 *
 * One HELP and TYPE line per family; sizes in _bytes, times in _seconds,
 * cumulative counters named _total; VMs labelled vm="NAME", vCPUs
 * vcpu="N". Rates and percentages are left to the scraper (rate()).
 *
 * Return: a malloc'd NUL-terminated string (free() it), or NULL with errno.
 * Context: any thread; pure function of @snap.
 */
OVC_EXPORT char *ovc_stats_format_prometheus(const struct ovc_stats_snapshot *snap, size_t *len);

#ifdef __cplusplus
}
#endif

#endif /* OVC_EXPORT_H */
