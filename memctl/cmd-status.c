// SPDX-License-Identifier: MIT
/* memctl/cmd-status.c: memctl status: the host's memory and what the VMs hold. */
#include <ovc/ctl.h>

#include "memctl.h"

int mc_cmd_status(struct memctl *m, int argc, char **argv)
{
	json_t *r, *h, *t;
	char a[16], b[16], c[16], d[16], e[16], f[16];
	uint64_t total;
	int ret;

	if (argc != 1)
		return mc_usage(mc_find("status"));
	ret = mc_call(m, json_pack("{s:s}", "req", "status"), &r);
	if (ret != MC_OK || m->json) {
		if (ret == MC_OK)
			mc_print_json(r);
		json_decref(r);
		return ret;
	}
	h = json_object_get(r, "host");
	t = json_object_get(r, "vms_total");
	total = mc_u64(h, "total_bytes");
	printf("host     %u CPUs, protocol %u, tick %llu, snapshot #%llu\n",
	       (unsigned int)mc_u64(r, "ncpus"), (unsigned int)mc_u64(r, "protocol"),
	       (unsigned long long)mc_u64(r, "ticks"), (unsigned long long)mc_u64(r, "seq"));
	printf("memory   %s total, %s free, %s available (%.0f%%), state %s\n",
	       mc_size(a, h, "total_bytes"), mc_size(b, h, "free_bytes"),
	       mc_size(c, h, "available_bytes"),
	       total ? 100.0 * (double)mc_u64(h, "available_bytes") / (double)total : 0.0,
	       mc_str(h, "state"));
	printf("swap     %s total, %s free", mc_size(a, h, "swap_total_bytes"),
	       mc_size(b, h, "swap_free_bytes"));
	if (json_object_get(h, "psi_some_avg10"))
		printf("; memory pressure (PSI some avg10) %.2f%%", mc_dbl(h, "psi_some_avg10"));
	printf("\n");
	printf("vms      %u VMs, %u vCPUs using %.0f%% CPU, %s RAM, %s held on the host\n",
	       (unsigned int)mc_u64(r, "nvms"), (unsigned int)mc_u64(t, "vcpus"),
	       mc_dbl(t, "used_pct"), mc_size(a, t, "ram_bytes"), mc_size(b, t, "host_bytes"));
	printf("         %s resident, %s zero, %s ballooned, %s shared, %s compressed, %s swapped\n",
	       mc_size(a, t, "resident_bytes"), mc_size(b, t, "zero_bytes"),
	       mc_size(c, t, "ballooned_bytes"), mc_size(d, t, "shared_bytes"),
	       mc_size(e, t, "compressed_bytes"), mc_size(f, t, "swapped_bytes"));
	json_decref(r);
	return MC_OK;
}
