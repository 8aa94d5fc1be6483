// SPDX-License-Identifier: MIT
/* stats/procfs.c: the host's memory and the vCPU threads' scheduler statistics. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stats/stats-internal.h"

/* Read a small procfs file whole. Return bytes read or a negative errno. */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
	ssize_t n, total = 0;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while ((size_t)total < size - 1) {
		n = read(fd, buf + total, size - 1 - (size_t)total);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			close(fd);
			return ret;
		}
		if (n == 0)
			break;
		total += n;
	}
	close(fd);
	buf[total] = '\0';
	return total;
}

static uint64_t meminfo_field(const char *text, const char *key)
{
	const char *p = strstr(text, key);
	unsigned long long kib;

	/* Keys are at line starts; "MemFree:" must not match "SwapFree:" etc. */
	while (p && p != text && p[-1] != '\n')
		p = strstr(p + 1, key);
	if (!p || sscanf(p + strlen(key), " %llu", &kib) != 1)
		return 0;
	return (uint64_t)kib * 1024;
}

OVC_EXPORT int ovc_host_read_meminfo(struct ovc_host_mem_snap *out)
{
	char buf[8192];
	const char *some;
	ssize_t n;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	n = read_small("/proc/meminfo", buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	out->total_bytes = meminfo_field(buf, "MemTotal:");
	out->free_bytes = meminfo_field(buf, "MemFree:");
	out->available_bytes = meminfo_field(buf, "MemAvailable:");
	out->swap_total_bytes = meminfo_field(buf, "SwapTotal:");
	out->swap_free_bytes = meminfo_field(buf, "SwapFree:");

	/* "some avg10=0.00 avg60=... \nfull avg10=0.00 ..." */
	if (read_small("/proc/pressure/memory", buf, sizeof(buf)) > 0) {
		const char *full = strstr(buf, "full avg10=");

		some = strstr(buf, "some avg10=");
		if (some && sscanf(some, "some avg10=%lf", &out->psi_some_avg10) == 1) {
			out->psi_valid = true;
			if (full)
				sscanf(full, "full avg10=%lf", &out->psi_full_avg10);
		}
	}
	return 0;
}

int ovc__schedstat_read(pid_t tid, uint64_t *cpu_ns, uint64_t *wait_ns)
{
	unsigned long long run, wait;
	char path[64], buf[128];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/schedstat", (int)tid);
	n = read_small(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	if (sscanf(buf, "%llu %llu", &run, &wait) != 2)
		return -EIO;
	*cpu_ns = run;
	*wait_ns = wait;
	return 0;
}
