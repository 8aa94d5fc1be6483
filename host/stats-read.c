// SPDX-License-Identifier: MIT
/* host/stats-read.c: the lock-free snapshot read path, with liburcu's fast paths inlined. */
/*
 * _LGPL_SOURCE makes urcu-memb's read_lock/unlock inline (a TLS nesting
 * count and compiler barriers: the membarrier flavour puts the cost on the
 * writer); a snapshot read is then a few nanoseconds instead of three calls.
 */
#define _LGPL_SOURCE
#include <errno.h>

#include <urcu/urcu-memb.h>

#include "host/host-internal.h"

OVC_EXPORT const struct ovc_stats_snapshot *ovc_stats_read_lock(struct ovc_host *host)
{
	urcu_memb_read_lock();
	return host ? ovc__stats_deref(host->stats) : NULL;
}

OVC_EXPORT void ovc_stats_read_unlock(struct ovc_host *host)
{
	urcu_memb_read_unlock();
}

OVC_EXPORT const struct ovc_stats_snapshot *ovc_stats_get(struct ovc_host *host)
{
	const struct ovc_stats_snapshot *s;

	if (!host) {
		errno = EINVAL;
		return NULL;
	}
	urcu_memb_read_lock();
	s = ovc__stats_ref(ovc__stats_deref(host->stats));
	urcu_memb_read_unlock();
	if (!s)
		errno = EAGAIN;
	return s;
}
