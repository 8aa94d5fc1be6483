// SPDX-License-Identifier: MIT
/* examples/snapshot.c: save a VM's RAM to an image, restore it into another VM lazily, check it. */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ovc/ovc.h>

#define RAM_SIZE (32ULL << 20)
#define RAM_PAGES (RAM_SIZE / OVC_PAGE_SIZE)

int main(void)
{
	struct ovc_host_config cfg;
	struct ovc_save_stats ss;
	struct ovc_restore_stats rs;
	struct ovc_host *host;
	struct ovc_vm *src, *dst;
	char path[] = "/tmp/ovc-example-snapshot-XXXXXX", state[64] = "", back[64];
	void *a, *b;
	uint64_t page, bad = 0;
	size_t len;
	int fd, ret = 1;

	ovc_host_config_init(&cfg);
	host = ovc_host_new(&cfg);
	if (!host)
		return 1;
	src = ovc_vm_new(host, "src");
	dst = ovc_vm_new(host, "dst");
	if (!src || !dst || ovc_vm_add_ram(src, 0, RAM_SIZE, &a) ||
	    ovc_vm_add_ram(dst, 0, RAM_SIZE, &b))
		goto out;
	/* Half the pages written, half never touched (they cost nothing in the image). */
	for (page = 0; page < RAM_PAGES; page += 2)
		((uint64_t *)a)[page * OVC_PAGE_SIZE / 8] = page * 0x9e3779b97f4a7c15ULL + 1;

	fd = mkstemp(path);
	if (fd < 0)
		goto out;
	close(fd);
	/* The VMM's own state (vCPU registers...) travels in the same file. */
	snprintf(state, sizeof(state), "rip=0x100000");
	if (ovc_vm_save(src, path, state, strlen(state) + 1, &ss))
		goto out_unlink;
	printf("saved %" PRIu64 " pages (%" PRIu64 " with contents) in %.1f ms, %" PRIu64 " bytes\n",
	       ss.pages, ss.data_pages, ss.ns / 1e6, ss.file_bytes);

	/* Returns once every page has its state; contents load on touch and in the background. */
	if (ovc_vm_restore(dst, path, back, sizeof(back), &len))
		goto out_unlink;
	printf("restored: application state '%s'\n", back);
	for (page = 0; page < RAM_PAGES; page++) {
		uint64_t want = page % 2 ? 0 : page * 0x9e3779b97f4a7c15ULL + 1;

		bad += ((uint64_t *)b)[page * OVC_PAGE_SIZE / 8] != want;
	}
	ovc_vm_restore_wait(dst, -1);
	ovc_vm_restore_get_stats(dst, &rs);
	printf("%" PRIu64 " pages read on touch, %" PRIu64 " streamed, resident after %.1f ms; "
	       "%" PRIu64 " pages differ\n", rs.lazy, rs.streamed, rs.resident_ns / 1e6, bad);
	ret = bad != 0;
out_unlink:
	unlink(path);
out:
	if (src && ovc_vm_destroy(src))
		ret = 1;
	if (dst && ovc_vm_destroy(dst))
		ret = 1;
	if (ovc_host_destroy(host))
		ret = 1;
	return ret;
}
