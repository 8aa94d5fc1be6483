// SPDX-License-Identifier: MIT
/* examples/ram.c: give a VM 64 MiB of guest RAM, touch it like a vCPU, print its counters. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ovc/ovc.h>

#define RAM_SIZE (64ULL << 20)
#define RAM_PAGES (RAM_SIZE / OVC_PAGE_SIZE)
/* Touch one page in four, so the counters show both touched and untouched pages. */
#define STRIDE 4

struct vcpu {
	uint8_t *ram;
	uint64_t bad_pages;
};

/*
 * What a vCPU does to guest RAM: plain loads and stores at the host address
 * KVM was given. The first access to each page faults and ovc serves it.
 */
static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	uint64_t page;

	for (page = 0; page < RAM_PAGES; page += STRIDE) {
		volatile uint64_t *p = (volatile uint64_t *)(v->ram + page * OVC_PAGE_SIZE);

		p[0] = page;
		p[OVC_PAGE_SIZE / sizeof(*p) - 1] = ~page;
	}
	for (page = 0; page < RAM_PAGES; page += STRIDE) {
		volatile uint64_t *p = (volatile uint64_t *)(v->ram + page * OVC_PAGE_SIZE);

		if (p[0] != page || p[OVC_PAGE_SIZE / sizeof(*p) - 1] != ~page || p[1] != 0)
			v->bad_pages++;
	}
	return NULL;
}

static void print_stats(struct ovc_vm *vm, const struct ovc_mem_stats *st)
{
	int i;

	printf("%s: %" PRIu64 " MiB of RAM\n", ovc_vm_name(vm), st->ram_bytes >> 20);
	printf("  pages:\n");
	for (i = 0; i < OVC_PAGE_NR_STATES; i++)
		printf("    %-10s %8" PRIu64 "\n", ovc_page_state_name(i), st->pages[i]);
	printf("  faults:\n");
	for (i = 0; i < OVC_FAULT_NR_KINDS; i++)
		printf("    %-10s %8" PRIu64 "\n", ovc_fault_kind_name(i), st->faults[i]);
	printf("  fault service time p50: %" PRIu64 " ns\n",
	       ovc_mem_stats_fault_quantile_ns(st, 0.5));
}

int main(void)
{
	struct ovc_host_config cfg;
	struct vcpu v = { 0 };
	struct ovc_mem_stats st;
	struct ovc_host *host;
	struct ovc_vm *vm;
	int ret, status = EXIT_FAILURE;
	pthread_t thr;
	void *hva;

	ovc_host_config_init(&cfg);
	host = ovc_host_new(&cfg);
	if (!host) {
		fprintf(stderr, "ovc_host_new: %s\n", strerror(errno));
		return EXIT_FAILURE;
	}
	vm = ovc_vm_new(host, "example");
	if (!vm) {
		fprintf(stderr, "ovc_vm_new: %s\n", strerror(errno));
		goto out_destroy_host;
	}
	/* Guest-physical 0..64M; hva is what KVM_SET_USER_MEMORY_REGION would get. */
	ret = ovc_vm_add_ram(vm, 0, RAM_SIZE, &hva);
	if (ret) {
		fprintf(stderr, "ovc_vm_add_ram: %s\n", strerror(-ret));
		goto out_destroy_vm;
	}
	v.ram = hva;

	ret = pthread_create(&thr, NULL, vcpu_thread, &v);
	if (ret) {
		fprintf(stderr, "pthread_create: %s\n", strerror(ret));
		goto out_destroy_vm;
	}
	ret = pthread_join(thr, NULL);
	if (ret) {
		fprintf(stderr, "pthread_join: %s\n", strerror(ret));
		goto out_destroy_vm;
	}
	if (v.bad_pages) {
		fprintf(stderr, "%" PRIu64 " pages did not read back what was written\n",
			v.bad_pages);
		goto out_destroy_vm;
	}

	ret = ovc_vm_get_mem_stats(vm, &st);
	if (ret) {
		fprintf(stderr, "ovc_vm_get_mem_stats: %s\n", strerror(-ret));
		goto out_destroy_vm;
	}
	print_stats(vm, &st);
	ret = ovc_vm_page_state(vm, 0, NULL);
	if (ret < 0) {
		fprintf(stderr, "ovc_vm_page_state: %s\n", strerror(-ret));
		goto out_destroy_vm;
	}
	printf("  page at gpa 0x0: %s\n", ovc_page_state_name(ret));
	status = EXIT_SUCCESS;

out_destroy_vm:
	/* The vCPU thread has been joined: nothing touches the RAM any more. */
	ret = ovc_vm_destroy(vm);
	if (ret) {
		fprintf(stderr, "ovc_vm_destroy: %s\n", strerror(-ret));
		status = EXIT_FAILURE;
	}
out_destroy_host:
	ret = ovc_host_destroy(host);
	if (ret) {
		fprintf(stderr, "ovc_host_destroy: %s\n", strerror(-ret));
		status = EXIT_FAILURE;
	}
	return status;
}
