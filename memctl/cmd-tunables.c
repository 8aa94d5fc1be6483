// SPDX-License-Identifier: MIT
/* memctl/cmd-tunables.c: memctl tunables: every knob the host offers. */
#include <string.h>

#include <ovc/ctl.h>

#include "memctl.h"

int mc_cmd_tunables(struct memctl *m, int argc, char **argv)
{
	json_t *r, *t;
	char range[48], lo[16], hi[16];
	size_t i;
	int ret;

	if (argc != 1)
		return mc_usage(mc_find("tunables"));
	ret = mc_call(m, json_pack("{s:s}", "req", "tunables"), &r);
	if (ret != MC_OK || m->json) {
		if (ret == MC_OK)
			mc_print_json(r);
		json_decref(r);
		return ret;
	}
	printf("%-18s %-8s %-5s %-14s %s\n", "KEY", "TYPE", "SCOPE", "RANGE", "WHAT");
	json_array_foreach(json_object_get(r, "tunables"), i, t) {
		const char *type = mc_str(t, "type");

		if (!json_object_get(t, "min"))
			snprintf(range, sizeof(range), "on/off");
		else if (!strcmp(type, "size"))
			snprintf(range, sizeof(range), "%s-%s", mc_size(lo, t, "min"), mc_size(hi, t, "max"));
		else
			snprintf(range, sizeof(range), "%g-%g", mc_dbl(t, "min"), mc_dbl(t, "max"));
		printf("%-18s %-8s %-5s %-14s %s\n", mc_str(t, "key"), type, mc_str(t, "scope"),
		       range, mc_str(t, "help"));
	}
	json_decref(r);
	return MC_OK;
}
