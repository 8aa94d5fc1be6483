// SPDX-License-Identifier: MIT
/* host/host-dedup.c: the public page-sharing API on hosts and VMs. */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "host/host-internal.h"

OVC_EXPORT int ovc_host_dedup_setup(struct ovc_host *host, const struct ovc_dedup_config *cfg,
				    bool start_thread)
{
	struct ovc_dedup *d;
	int ret = 0;

	if (!host)
		return -EINVAL;
	pthread_mutex_lock(&host->lock);
	if (host->dedup) {
		ret = -EEXIST;
		goto out;
	}
	d = ovc__dedup_new(&host->log, cfg, start_thread);
	if (!d)
		ret = -errno;
	else
		host->dedup = d;
out:
	pthread_mutex_unlock(&host->lock);
	return ret;
}

static struct ovc_dedup *host_dedup(struct ovc_host *host)
{
	struct ovc_dedup *d;

	pthread_mutex_lock(&host->lock);
	d = host->dedup;
	pthread_mutex_unlock(&host->lock);
	return d;
}

OVC_EXPORT int ovc_host_dedup_set_cpu_budget(struct ovc_host *host, unsigned int permille)
{
	struct ovc_dedup *d;

	if (!host)
		return -EINVAL;
	d = host_dedup(host);
	if (!d)
		return -ENOENT;
	return ovc__dedup_set_cpu_budget(d, permille);
}

OVC_EXPORT int64_t ovc_host_dedup_scan(struct ovc_host *host, uint64_t max_pages)
{
	struct ovc_dedup *d;

	if (!host)
		return -EINVAL;
	d = host_dedup(host);
	if (!d)
		return -ENOENT;
	return ovc__dedup_scan(d, max_pages);
}

OVC_EXPORT int ovc_vm_set_dedup(struct ovc_vm *vm, bool on)
{
	struct ovc_host *host;
	int ret = 0;

	if (!vm)
		return -EINVAL;
	host = vm->host;
	pthread_mutex_lock(&host->lock);
	if (!host->dedup) {
		ret = -ENOENT;
		goto out;
	}
	if (!vm->dedup) {
		if (!on)
			goto out;
		vm->dedup = ovc__dedup_join(host->dedup, vm->ram);
		if (!vm->dedup) {
			ret = -errno;
			ovc__err(&host->log, "vm %s: cannot share pages: %s", vm->name, strerror(-ret));
			goto out;
		}
	}
	ovc__dedup_enable(vm->dedup, on);
out:
	pthread_mutex_unlock(&host->lock);
	return ret;
}

static bool good_group_name(const char *g)
{
	size_t i, n = strlen(g);

	if (n < 1 || n > OVC_DEDUP_GROUP_MAX)
		return false;
	for (i = 0; i < n; i++) {
		if (!isgraph((unsigned char)g[i]))
			return false;
	}
	return true;
}

OVC_EXPORT int ovc_vm_set_dedup_group(struct ovc_vm *vm, const char *group)
{
	struct ovc_dedup_member *m;

	if (!vm)
		return -EINVAL;
	if (group && !good_group_name(group)) {
		ovc__err(&vm->host->log, "vm %s: share group name must be 1 to %d printable characters without spaces",
			 vm->name, OVC_DEDUP_GROUP_MAX);
		return -EINVAL;
	}
	pthread_mutex_lock(&vm->host->lock);
	m = vm->dedup;
	pthread_mutex_unlock(&vm->host->lock);
	if (!m)
		return -ENOENT;
	/* The member lives as long as the VM; the caller owns the VM. */
	return ovc__dedup_set_group(m, group);
}

OVC_EXPORT int ovc_vm_get_dedup_stats(struct ovc_vm *vm, struct ovc_dedup_stats *st)
{
	struct ovc_dedup_member *m;

	if (!vm || !st)
		return -EINVAL;
	pthread_mutex_lock(&vm->host->lock);
	m = vm->dedup;
	pthread_mutex_unlock(&vm->host->lock);
	if (!m)
		memset(st, 0, sizeof(*st));
	else
		ovc__dedup_get_stats(m, st);
	return 0;
}
