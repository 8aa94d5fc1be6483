// SPDX-License-Identifier: MIT
/* memctl/cmd-metrics.c: memctl metrics: the statistics in Prometheus text format. */
#include "memctl.h"

int mc_cmd_metrics(struct memctl *m, int argc, char **argv)
{
	json_t *r;
	int ret;

	if (argc != 1)
		return mc_usage(mc_find("metrics"));
	ret = mc_call(m, json_pack("{s:s}", "req", "metrics"), &r);
	if (ret == MC_OK) {
		if (m->json)
			mc_print_json(r);
		else
			fputs(mc_str(r, "text"), stdout);
	}
	json_decref(r);
	return ret;
}
