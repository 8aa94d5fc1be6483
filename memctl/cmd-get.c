// SPDX-License-Identifier: MIT
/* memctl/cmd-get.c: memctl get NAME [KEY...]: a VM's tunables. */
#include "memctl.h"

int mc_cmd_get(struct memctl *m, int argc, char **argv)
{
	json_t *req, *r, *vals, *x;
	const char *key;
	int i, ret;

	if (argc < 2)
		return mc_usage(mc_find("get"));
	req = json_pack("{s:s,s:s}", "req", "get", "vm", argv[1]);
	if (argc > 2) {
		json_t *keys = json_array();

		for (i = 2; i < argc; i++)
			json_array_append_new(keys, json_string(argv[i]));
		json_object_set_new(req, "keys", keys);
	}
	ret = mc_call(m, req, &r);
	if (ret != MC_OK || m->json) {
		if (ret == MC_OK)
			mc_print_json(r);
		json_decref(r);
		return ret;
	}
	vals = json_object_get(r, "values");
	json_object_foreach(vals, key, x) {
		printf("%s=", key);
		mc_print_value(stdout, key, x);
		printf("\n");
	}
	json_decref(r);
	return MC_OK;
}
