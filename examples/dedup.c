// SPDX-License-Identifier: MIT
/* examples/dedup.c: share a VM's identical pages, then watch a write take one back. */
#include <stdio.h>
#include <string.h>

#include <ovc/ovc.h>

#define PAGES 256

int main(void)
{
	struct ovc_host_config hc;
	struct ovc_dedup_stats st;
	struct ovc_host *host;
	struct ovc_vm *vm;
	unsigned char *ram;
	void *hva;
	int i, ret = 1;

	ovc_host_config_init(&hc);
	host = ovc_host_new(&hc);
	if (!host)
		return 1;
	vm = ovc_vm_new(host, "example");
	if (!vm || ovc_vm_add_ram(vm, 0, PAGES * 4096, &hva))
		goto out;
	ram = hva;
	/* Half the pages hold one of four contents, a quarter are zero, the rest unique. */
	for (i = 0; i < PAGES; i++) {
		memset(ram + i * 4096, 0, 4096);
		if (i < PAGES / 2)
			memset(ram + i * 4096, 'a' + i % 4, 4096);
		else if (i >= PAGES / 4 * 3)
			snprintf((char *)ram + i * 4096, 4096, "unique page %d", i);
	}
	/* No thread: scan from here (a VMM would pass true and let it run). */
	if (ovc_host_dedup_setup(host, NULL, false) || ovc_vm_set_dedup(vm, true))
		goto out;
	ovc_host_dedup_scan(host, PAGES);	/* first look: remember the hashes */
	ovc_host_dedup_scan(host, PAGES);	/* unchanged since: share them */
	ovc_vm_get_dedup_stats(vm, &st);
	printf("zero %llu, sharing %llu, saved %llu KiB, VMAs %llu\n",
	       (unsigned long long)st.zero, (unsigned long long)st.sharing,
	       (unsigned long long)st.saved_bytes / 1024, (unsigned long long)st.vmas);
	ram[0] = 'z';				/* a write breaks that page's share only */
	ovc_vm_get_dedup_stats(vm, &st);
	printf("after a write: sharing %llu, copy-on-write breaks %llu, page 4 still '%c'\n",
	       (unsigned long long)st.sharing, (unsigned long long)st.cow_breaks, ram[4 * 4096]);
	ret = st.cow_breaks == 1 && ram[4 * 4096] == 'a' ? 0 : 1;
out:
	if (vm && ovc_vm_destroy(vm))
		ret = 1;
	if (ovc_host_destroy(host))
		ret = 1;
	return ret;
}
