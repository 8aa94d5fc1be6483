// SPDX-License-Identifier: MIT
/* memctl/cmd-vm.c: memctl vm list / vm show NAME. */
#include <string.h>

#include <ovc/ctl.h>

#include "memctl.h"

static int vm_list(struct memctl *m)
{
	json_t *r, *vms, *v;
	char s[9][16];
	size_t i;
	int ret;

	ret = mc_call(m, json_pack("{s:s}", "req", "vm.list"), &r);
	if (ret != MC_OK || m->json) {
		if (ret == MC_OK)
			mc_print_json(r);
		json_decref(r);
		return ret;
	}
	vms = json_object_get(r, "vms");
	printf("%-16s %4s %7s %7s %7s %7s %7s %7s %7s %7s %7s %5s %6s %6s\n", "NAME", "ID", "MEMSZ",
	       "TARGET", "RESID", "WSS", "MCTLSZ", "SHRD", "ZERO", "ZIP", "SWCUR", "VCPUS",
	       "%USED", "%RDY");
	json_array_foreach(vms, i, v) {
		printf("%-16s %4llu %7s %7s %7s %7s %7s %7s %7s %7s %7s %5u %6.1f %6.1f\n",
		       mc_str(v, "name"), (unsigned long long)mc_u64(v, "id"),
		       mc_size(s[0], v, "ram_bytes"), mc_size(s[1], v, "mem_target_bytes"),
		       mc_size(s[2], v, "resident_bytes"), mc_size(s[3], v, "wss_bytes"),
		       mc_size(s[4], v, "ballooned_bytes"), mc_size(s[5], v, "shared_bytes"),
		       mc_size(s[6], v, "zero_bytes"), mc_size(s[7], v, "compressed_bytes"),
		       mc_size(s[8], v, "swapped_bytes"), (unsigned int)mc_u64(v, "vcpus"),
		       mc_dbl(v, "used_pct"), mc_dbl(v, "rdy_pct"));
	}
	if (!json_array_size(vms))
		printf("(no VMs)\n");
	json_decref(r);
	return MC_OK;
}

static void show_vm(json_t *v, json_t *tun)
{
	json_t *pages = json_object_get(v, "pages"), *faults = json_object_get(v, "faults");
	json_t *b = json_object_get(v, "balloon"), *p = json_object_get(v, "pager");
	json_t *w = json_object_get(v, "wss"), *t = json_object_get(v, "targets");
	json_t *vcpus = json_object_get(v, "vcpus"), *x;
	const char *key;
	char s[6][16];
	size_t i;

	printf("memory    %s RAM, %s held on the host\n", mc_size(s[0], v, "ram_bytes"),
	       mc_size(s[1], v, "host_bytes"));
	printf("pages    ");
	json_object_foreach(pages, key, x)
		printf(" %s %s", key, ovc_size_format(s[0], 16, mc_u64(pages, key) * 4096));
	printf("\nfaults   ");
	json_object_foreach(faults, key, x)
		printf(" %s %llu", key, (unsigned long long)mc_u64(faults, key));
	printf("\n          %.1f faults/s, %.1f pages in/s, %.1f pages out/s\n",
	       mc_dbl(v, "faults_per_sec"), mc_dbl(v, "pageins_per_sec"),
	       mc_dbl(v, "pageouts_per_sec"));
	printf("working   %s\n", json_is_true(json_object_get(w, "valid")) ?
	       mc_size(s[0], w, "active_bytes") : "not sampled yet");
	printf("targets   memory %s, balloon %s, reclaim %llu pages, CPU entitled %.2f of demand %.2f\n",
	       mc_size(s[0], t, "mem_target_bytes"), mc_size(s[1], t, "balloon_target_bytes"),
	       (unsigned long long)mc_u64(t, "reclaim_pages"), mc_dbl(t, "cpu_entitled"),
	       mc_dbl(t, "cpu_demand"));
	if (json_is_object(b))
		printf("balloon   target %s, guest holds %s, %s\n", mc_size(s[0], b, "target_bytes"),
		       mc_size(s[1], b, "actual_bytes"),
		       json_is_true(json_object_get(b, "stalled")) ?
		       "stalled (the guest does not follow)" : "following");
	else
		printf("balloon   none\n");
	if (json_is_object(p))
		printf("pager     %s compressed in %s, %s swapped, %llu pages reclaimed\n",
		       ovc_size_format(s[0], 16, mc_u64(p, "zip_pages") * 4096),
		       mc_size(s[1], p, "zip_bytes"),
		       ovc_size_format(s[2], 16, mc_u64(p, "swap_pages") * 4096),
		       (unsigned long long)mc_u64(p, "reclaimed_pages"));
	else
		printf("pager     none\n");
	printf("cpu       %.1f %%USED, %.1f %%RDY\n", mc_dbl(v, "used_pct"), mc_dbl(v, "rdy_pct"));
	json_array_foreach(vcpus, i, x)
		printf("  vcpu %-3llu tid %-7llu %6.1f %%USED %6.1f %%RDY %6.1f %%idle\n",
		       (unsigned long long)mc_u64(x, "index"), (unsigned long long)mc_u64(x, "tid"),
		       mc_dbl(x, "used_pct"), mc_dbl(x, "rdy_pct"), mc_dbl(x, "halt_pct"));
	(void)tun;
}

static int vm_show(struct memctl *m, const char *name)
{
	json_t *r, *v, *tun, *x;
	const char *key;
	int ret;

	ret = mc_call(m, json_pack("{s:s,s:s}", "req", "vm.show", "vm", name), &r);
	if (ret != MC_OK || m->json) {
		if (ret == MC_OK)
			mc_print_json(r);
		json_decref(r);
		return ret;
	}
	v = json_object_get(r, "vm");
	tun = json_object_get(r, "tunables");
	printf("vm        %s\n", name);
	if (json_is_object(v))
		show_vm(v, tun);
	else
		printf("          (no statistics until the next tick)\n");
	printf("tunables ");
	json_object_foreach(tun, key, x) {
		printf(" %s=", key);
		mc_print_value(stdout, key, x);
	}
	printf("\n");
	json_decref(r);
	return MC_OK;
}

int mc_cmd_vm(struct memctl *m, int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "list"))
		return vm_list(m);
	if (argc == 3 && !strcmp(argv[1], "show"))
		return vm_show(m, argv[2]);
	return mc_usage(mc_find("vm"));
}
