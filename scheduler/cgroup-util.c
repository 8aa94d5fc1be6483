// SPDX-License-Identifier: MIT
/* scheduler/cgroup-util.c: cgroupfs file access shared by the enforcement backends. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "scheduler/sched-internal.h"

void ovc__why(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!why || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
}

bool ovc__cg_is_cgroupfs(const char *dir)
{
	struct statfs st;

	if (statfs(dir, &st))
		return false;
	return st.f_type == CGROUP_SUPER_MAGIC || st.f_type == CGROUP2_SUPER_MAGIC;
}

int ovc__cg_write(const char *dir, const char *file, bool append, const char *fmt, ...)
{
	char path[512], buf[512];
	va_list ap;
	ssize_t n;
	int fd, ret = 0, len;

	va_start(ap, fmt);
	len = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (len < 0 || (size_t)len >= sizeof(buf))
		return -EINVAL;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CLOEXEC | (append ? O_APPEND : O_TRUNC));
	if (fd < 0 && errno == ENOENT && !ovc__cg_is_cgroupfs(dir))
		fd = open(path, O_WRONLY | O_CLOEXEC | O_CREAT | (append ? O_APPEND : O_TRUNC), 0644);
	if (fd < 0)
		return -errno;
	/* Look-alike files hold one value per line, as reading cgroupfs shows them. */
	if (!ovc__cg_is_cgroupfs(dir) && (size_t)len + 1 < sizeof(buf))
		buf[len++] = '\n';
	n = write(fd, buf, (size_t)len);
	if (n < 0)
		ret = -errno;
	else if (n != len)
		ret = -EIO;
	close(fd);
	return ret;
}

int ovc__cg_read(const char *dir, const char *file, char *buf, size_t len)
{
	char path[512];
	ssize_t n;
	int fd;

	if (!len)
		return -EINVAL;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = 0;
	return 0;
}

int ovc__cg_rmdir(const char *dir)
{
	char path[768];
	struct dirent *de;
	DIR *d;

	if (!rmdir(dir))
		return 0;
	if (errno != ENOTEMPTY && errno != EEXIST)
		return -errno;
	if (ovc__cg_is_cgroupfs(dir))
		return -ENOTEMPTY;	/* threads or child groups still inside */
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (de->d_type != DT_REG)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
	return rmdir(dir) ? -errno : 0;
}

int ovc__cg_of_thread(pid_t tid, const char *controller, char *buf, size_t len)
{
	char path[64], line[1024];
	int ret = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/cgroup", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *c1 = strchr(line, ':'), *c2, *tok, *save = NULL;
		bool match = false;

		if (!c1 || !(c2 = strchr(c1 + 1, ':')))
			continue;
		*c2 = 0;
		line[strcspn(line, ":")] = 0;
		if (!controller) {
			match = !strcmp(line, "0") && c1 + 1 == c2;
		} else {
			for (tok = strtok_r(c1 + 1, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
				match |= !strcmp(tok, controller);
		}
		if (!match)
			continue;
		c2[1 + strcspn(c2 + 1, "\n")] = 0;
		snprintf(buf, len, "%s", c2 + 1);
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

void ovc__cpulist(const int *cpus, char *buf, size_t len)
{
	size_t off = 0;
	unsigned int i = 0;

	buf[0] = 0;
	while (cpus && cpus[i] >= 0 && off < len) {
		unsigned int j = i;

		while (cpus[j + 1] == cpus[j] + 1)
			j++;
		if (j > i)
			off += (size_t)snprintf(buf + off, len - off, "%s%d-%d", off ? "," : "", cpus[i], cpus[j]);
		else
			off += (size_t)snprintf(buf + off, len - off, "%s%d", off ? "," : "", cpus[i]);
		i = j + 1;
	}
}

struct ovc__cg_vm *ovc__cg_vm_get(struct ovc__cg_vm ***vms, unsigned int *n, uint64_t id,
				  bool create)
{
	struct ovc__cg_vm **a, *e;
	unsigned int i;

	for (i = 0; i < *n; i++) {
		if ((*vms)[i]->id == id)
			return (*vms)[i];
	}
	if (!create)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	a = realloc(*vms, sizeof(*a) * (*n + 1));
	if (!a) {
		free(e);
		return NULL;
	}
	e->id = id;
	a[(*n)++] = e;
	*vms = a;
	return e;
}

void ovc__cg_vm_drop(struct ovc__cg_vm **vms, unsigned int *n, struct ovc__cg_vm *e)
{
	unsigned int i;

	for (i = 0; i < *n; i++) {
		if (vms[i] == e) {
			vms[i] = vms[--(*n)];
			break;
		}
	}
	free(e);
}

bool ovc__tid_in(const struct ovc_cpu_enforce_vm *vm, pid_t tid)
{
	unsigned int i;

	for (i = 0; i < vm->nvcpus; i++) {
		if (vm->tids[i] == tid)
			return true;
	}
	return false;
}
