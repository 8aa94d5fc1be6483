// SPDX-License-Identifier: MIT
/*
 * tests/fuzz/fuzz-ctl.c: libFuzzer target for the control socket's request handler.
 *
 * Each input is one request line handed to ovc__ctl_handle() against a live
 * host with two VMs (one with a balloon and a vCPU) that ticks every 64
 * inputs. Whatever the bytes, the reply must be one JSON object with "ok",
 * an error must carry a code and a message, and the VMs' policies must stay
 * self-consistent (a refused "set" changes nothing).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <jansson.h>

#include <ovc/ovc.h>
#include "host/ctl-internal.h"
#include "host/host-internal.h"

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #x); abort(); } } while (0)

static struct ovc_host *host;
static struct ovc_vm *vms[2];
static unsigned long inputs;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ovc_vm_policy p;
	json_error_t jerr;
	json_t *r, *e;
	char *reply;
	int i;

	if (inputs++ % 64 == 0)
		ovc__host_tick(host);
	reply = ovc__ctl_handle(host, (const char *)data, size);
	CHECK(reply);
	CHECK(!strchr(reply, '\n'));	/* one line on the wire */
	r = json_loads(reply, 0, &jerr);
	CHECK(r && json_is_object(r));
	CHECK(json_is_boolean(json_object_get(r, "ok")));
	if (json_is_false(json_object_get(r, "ok"))) {
		e = json_object_get(r, "error");
		CHECK(json_is_string(json_object_get(e, "code")));
		CHECK(json_string_length(json_object_get(e, "message")) > 0);
	}
	json_decref(r);
	free(reply);
	for (i = 0; i < 2; i++) {
		CHECK(ovc_vm_get_policy(vms[i], &p) == 0);
		CHECK(ovc_vm_policy_check(&p, NULL) == 0);
	}
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct ovc_host_config cfg;
	void *hva;

	(void)argc;
	(void)argv;
	ovc_host_config_init(&cfg);
	cfg.fault_threads = 1;
	cfg.tick_ms = 60000;	/* ticks come with the inputs */
	cfg.log_level = 0;
	host = ovc_host_new(&cfg);
	CHECK(host);
	ovc_thread_register();
	vms[0] = ovc_vm_new(host, "a");
	vms[1] = ovc_vm_new(host, "b");
	CHECK(vms[0] && vms[1]);
	CHECK(ovc_vm_add_ram(vms[0], 0, 4 << 20, &hva) == 0);
	memset(hva, 1, 16 * 4096);
	CHECK(ovc_vm_add_ram(vms[1], 0, 2 << 20, &hva) == 0);
	CHECK(ovc_vm_add_balloon(vms[0], NULL));
	CHECK(ovc_vm_add_vcpu(vms[0], (pid_t)syscall(SYS_gettid)));
	ovc__host_tick(host);
	return 0;
}
