/* SPDX-License-Identifier: MIT */
/* guest/abi.h: the boot protocol between ovc-vmm and its freestanding CPL3 test guests. */
#ifndef OVC_GUEST_ABI_H
#define OVC_GUEST_ABI_H

#include <stdint.h>

/*
 * Guest-physical layout. The VMM builds everything below 1 MiB (page tables,
 * IDT, one GDT + TSS + ring-0 stack per vCPU) and loads the guest's ELF image
 * at 1 MiB. The first page is left unmapped so a NULL dereference faults.
 *
 *   0x001000  struct ovc_guest_boot (read/write for the guest)
 *   0x002000  PML4, 0x3000 PDPT, 0x4000 the 4 KiB page table of the first 2 MiB
 *   0x005000  IDT (256 gates)
 *   0x010000  page directories, one per GiB mapped (at most 64)
 *   0x060000  per-vCPU block: GDT (64 bytes) + TSS with an I/O bitmap
 *   0x0a0000  per-vCPU ring-0 stacks
 *   0x100000  the guest image (struct ovc_guest_header at its start)
 *   0x180000  per-vCPU CPL3 stacks, OVC_GUEST_STACK_SIZE each, top down
 *   0x200000  OVC_GUEST_HEAP: the workload's memory, up to the end of RAM
 *
 * RAM is identity-mapped (user, writable) from 0 to its end; guest RAM above
 * 3 GiB is placed at 4 GiB and up, leaving [3 GiB, 4 GiB) to devices:
 * virtio-mmio windows at OVC_GUEST_VIRTIO_MMIO, the IOAPIC and the LAPIC.
 */
#define OVC_GUEST_BOOT_GPA	0x1000ULL
#define OVC_GUEST_IMAGE_GPA	0x100000ULL
#define OVC_GUEST_IMAGE_END	0x180000ULL
#define OVC_GUEST_STACK_TOP	0x200000ULL
#define OVC_GUEST_STACK_SIZE	0x10000ULL
#define OVC_GUEST_HEAP		0x200000ULL
#define OVC_GUEST_MAX_VCPUS	8
#define OVC_GUEST_LOW_RAM_END	0xc0000000ULL	/* RAM above this moves to 4 GiB */
#define OVC_GUEST_HIGH_RAM	0x100000000ULL
#define OVC_GUEST_VIRTIO_MMIO	0xd0000000ULL	/* 4 KiB window per device */
#define OVC_GUEST_VIRTIO_IRQ	5		/* first IOAPIC pin for devices */
#define OVC_GUEST_IOAPIC	0xfec00000ULL
#define OVC_GUEST_LAPIC		0xfee00000ULL

/*
 * I/O ports. A CPL3 guest cannot run HLT, CLI or STI; it reaches the VMM
 * through these ports (the TSS I/O bitmap opens them to ring 3) and the
 * 16550 UART at 0x3f8.
 *
 * EXIT    out32: the guest is done; the value is its exit code (0: success).
 * PANIC   out32: from a ring-0 exception stub; the value is the vector. The
 *         VMM reads the exception frame from the ring-0 stack and stops the VM.
 * HALT    out32: idle for up to the value in microseconds (the guest's HLT):
 *         the VMM counts it as halted time and wakes it early on an interrupt
 *         or at shutdown.
 * REPORT  out32: the guest-physical address of a struct ovc_guest_report;
 *         the VMM adds (or sets) the named counter in the VM's summary.
 * CORRUPT out32: the guest found a page whose contents were lost; the value
 *         is the page's frame number. Counted and logged by the VMM.
 */
#define OVC_PORT_SERIAL		0x3f8
#define OVC_PORT_EXIT		0x510
#define OVC_PORT_PANIC		0x514
#define OVC_PORT_HALT		0x518
#define OVC_PORT_REPORT		0x51c
#define OVC_PORT_CORRUPT	0x520

#define OVC_GUEST_BOOT_MAGIC	0x746f6f622d63766fULL	/* "ovc-boot" */
#define OVC_GUEST_HEADER_MAGIC	0x7473657567637630ULL	/* "0vcguest" */
#define OVC_GUEST_ABI_VERSION	1
#define OVC_GUEST_ARGS_MAX	1024

/* Interrupt vectors the guest runtime uses. */
#define OVC_GUEST_VEC_IRQ0	0x20	/* IOAPIC pin n arrives as 0x20 + n */

/**
 * struct ovc_guest_header - at the first byte of the image (1 MiB)
 * @magic: OVC_GUEST_HEADER_MAGIC
 * @version: OVC_GUEST_ABI_VERSION
 * @entry: CPL3 entry, void entry(uint64_t vcpu, struct ovc_guest_boot *boot):
 *	every vCPU starts there at once, with interrupts enabled
 * @vectors: guest address of 256 ring-0 handler addresses (uint64_t each),
 *	which the VMM puts in the IDT
 */
struct ovc_guest_header {
	uint64_t magic;
	uint32_t version;
	uint32_t flags;
	uint64_t entry;
	uint64_t vectors;
};

/**
 * struct ovc_guest_boot - what the VMM tells the guest (at OVC_GUEST_BOOT_GPA)
 * @stop: the VMM sets it to 1 when the guest should finish (final checks,
 *	then EXIT); the guest polls it
 * @ram_bytes: guest RAM in bytes (below 3 GiB: [0, ram); above: see
 *	@high_ram_bytes at OVC_GUEST_HIGH_RAM)
 * @heap_end: end of the low RAM the workload may use, from OVC_GUEST_HEAP
 * @tsc_khz: the TSC frequency, for rdtsc-based timing
 * @seed: per-VM seed (the VMM's --seed and the VM's index)
 * @args: the VM's args="..." string, NUL-terminated
 */
struct ovc_guest_boot {
	uint64_t magic;
	uint32_t version;
	uint32_t nr_vcpus;
	volatile uint32_t stop;
	uint32_t vm_index;
	uint64_t ram_bytes;
	uint64_t heap_end;
	uint64_t high_ram_bytes;
	uint64_t tsc_khz;
	uint64_t seed;
	uint64_t virtio_mmio_base;
	uint32_t virtio_mmio_count;
	uint32_t virtio_irq_base;
	char name[64];
	char args[OVC_GUEST_ARGS_MAX];
};

#define OVC_GUEST_REPORT_NAME	32
#define OVC_GUEST_REPORT_ADD	0	/* add @value to the counter */
#define OVC_GUEST_REPORT_SET	1	/* set the counter to @value */
#define OVC_GUEST_REPORT_MAX	32	/* distinct names per VM */

/**
 * struct ovc_guest_report - one named counter, sent through OVC_PORT_REPORT
 * @name: [a-z0-9_], NUL-terminated
 * @op: OVC_GUEST_REPORT_ADD or OVC_GUEST_REPORT_SET
 */
struct ovc_guest_report {
	char name[OVC_GUEST_REPORT_NAME];
	uint32_t op;
	uint32_t pad;
	uint64_t value;
};

#endif /* OVC_GUEST_ABI_H */
