// SPDX-License-Identifier: MIT
/* memctl/cmd-set.c: memctl set [NAME] KEY=VALUE...: change tunables, all or none. */
#include <string.h>

#include "memctl.h"

/* Send @values (consumed) for @vm (NULL: host-wide) and print what they are now. */
static int send_set(struct memctl *m, const char *vm, json_t *values)
{
	json_t *req = json_pack("{s:s,s:o}", "req", "set", "values", values), *r, *x;
	const char *key;
	int ret;

	if (vm)
		json_object_set_new(req, "vm", json_string(vm));
	ret = mc_call(m, req, &r);
	if (ret != MC_OK || m->json) {
		if (ret == MC_OK)
			mc_print_json(r);
		json_decref(r);
		return ret;
	}
	json_object_foreach(json_object_get(r, "values"), key, x) {
		printf("%s%s%s=", vm ? vm : "", vm ? ": " : "", key);
		mc_print_value(stdout, key, x);
		printf("\n");
	}
	json_decref(r);
	return MC_OK;
}

int mc_cmd_set(struct memctl *m, int argc, char **argv)
{
	const struct mc_cmd *cmd = mc_find("set");
	const char *vm = NULL;
	json_t *values;
	int i = 1;

	if (argc < 2)
		return mc_usage(cmd);
	if (!strchr(argv[1], '='))
		vm = argv[i++];
	if (i == argc)
		return mc_usage(cmd);
	values = json_object();
	for (; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (!eq || eq == argv[i] || !eq[1]) {
			fprintf(stderr, "memctl: set: '%s' is not KEY=VALUE\n", argv[i]);
			json_decref(values);
			return mc_usage(cmd);
		}
		*eq = '\0';
		if (json_object_get(values, argv[i])) {
			fprintf(stderr, "memctl: set: %s given twice\n", argv[i]);
			json_decref(values);
			return MC_USAGE;
		}
		json_object_set_new(values, argv[i], mc_value(eq + 1));
	}
	return send_set(m, vm, values);
}

int mc_cmd_balloon(struct memctl *m, int argc, char **argv)
{
	if (argc != 3)
		return mc_usage(mc_find("balloon"));
	return send_set(m, argv[1], json_pack("{s:s}", "balloon.target", argv[2]));
}
