// SPDX-License-Identifier: MIT
/* guest/rt/entry.c: image header, CPL3 entry, exit protocol and the ring-0 vector stubs. */
#include "rt.h"

/*
 * Ring 0 is emulated instruction by instruction under PVM (thousands of times
 * slower than native), so the stubs below are a handful of instructions and
 * never call C. They run on the TSS ring-0 stack of the interrupted vCPU.
 *
 * Exceptions 0-31: write the vector to OVC_PORT_PANIC and halt. Nothing is
 * pushed before the OUT, so the VMM finds the CPU's exception frame at the
 * ring-0 RSP of the exit: [error code,] RIP, CS, RFLAGS, RSP, SS, with an
 * error code for vectors 8, 10-14, 17, 21, 29 and 30. RAX and RDX hold the
 * vector and the port, their pre-exception values are lost.
 *
 * Vectors 32-255: count in irq_count[], EOI the xAPIC, IRETQ; only RAX is
 * used, and saved. IRETQ restores RFLAGS, so the LOCK INC may clobber them.
 * Each stub fills exactly STUB_SIZE bytes so the table can be built with
 * arithmetic instead of 256 labels.
 */
#define STR_(x)		#x
#define STR(x)		STR_(x)

#define STUB_SIZE	32
#define LAPIC_EOI	0xfee000b0

_Static_assert(OVC_GUEST_LAPIC + 0xb0 == LAPIC_EOI, "EOI address out of sync with abi.h");
_Static_assert(OVC_PORT_PANIC == 0x514, "PANIC port out of sync with abi.h");

volatile uint64_t irq_count[256] __attribute__((aligned(64)));

__asm__(
	"	.pushsection .text.vectors, \"ax\", @progbits\n"
	"	.p2align 5\n"
	"exc_stubs:\n"
	"	.set vec, 0\n"
	"	.rept 32\n"
	"0:	movl	$vec, %eax\n"
	"	movw	$" STR(OVC_PORT_PANIC) ", %dx\n"
	"	outl	%eax, %dx\n"
	"1:	hlt\n"
	"	jmp	1b\n"
	/* .org fails the build if a stub outgrows its slot. */
	"	.org	0b + " STR(STUB_SIZE) ", 0xcc\n"
	"	.set vec, vec + 1\n"
	"	.endr\n"
	"\n"
	"irq_stubs:\n"
	"	.rept 224\n"
	"0:	lock incq irq_count + 8 * vec(%rip)\n"
	"	pushq	%rax\n"
	"	movabsq	$" STR(LAPIC_EOI) ", %rax\n"
	"	movl	$0, (%rax)\n"
	"	popq	%rax\n"
	"	iretq\n"
	"	.org	0b + " STR(STUB_SIZE) ", 0xcc\n"
	"	.set vec, vec + 1\n"
	"	.endr\n"
	"	.popsection\n"
	"\n"
	"	.pushsection .rodata.vectors, \"a\", @progbits\n"
	"	.p2align 3\n"
	"	.globl	vector_table\n"
	"vector_table:\n"
	"	.set vec, 0\n"
	"	.rept 32\n"
	"	.quad	exc_stubs + " STR(STUB_SIZE) " * vec\n"
	"	.set vec, vec + 1\n"
	"	.endr\n"
	"	.rept 224\n"
	"	.quad	irq_stubs + " STR(STUB_SIZE) " * (vec - 32)\n"
	"	.set vec, vec + 1\n"
	"	.endr\n"
	"	.popsection\n"
	"\n"
	/*
	 * RSP is 16-byte aligned at entry, so the CALL leaves it exactly as
	 * the SysV ABI expects at rt_start()'s first instruction.
	 */
	"	.pushsection .text.start, \"ax\", @progbits\n"
	"	.globl	_start\n"
	"	.type	_start, @function\n"
	"_start:\n"
	"	xorl	%ebp, %ebp\n"
	"	cld\n"
	"	call	rt_start\n"
	"	ud2\n"
	"	.size	_start, . - _start\n"
	"	.popsection\n");

extern const uint64_t vector_table[256];
void _start(void);
__attribute__((noreturn, used)) void rt_start(uint64_t vcpu, struct ovc_guest_boot *boot);

__attribute__((section(".ovc_header"), used))
static const struct ovc_guest_header header = {
	.magic = OVC_GUEST_HEADER_MAGIC,
	.version = OVC_GUEST_ABI_VERSION,
	.flags = 0,
	.entry = (uint64_t)(uintptr_t)_start,
	.vectors = (uint64_t)(uintptr_t)vector_table,
};

uint64_t rt_tsc_khz;

static uint32_t vcpus_done;	/* ATOMIC: vCPUs back from guest_main() */
static uint32_t exit_code;	/* ATOMIC: the largest value they returned */

/* Sleep for good: the VMM ends the VM once the last vCPU has written EXIT. */
static __attribute__((noreturn)) void park(void)
{
	for (;;)
		idle_us(1000000);
}

static bool boot_ok(uint64_t vcpu, const struct ovc_guest_boot *boot)
{
	if (boot->magic != OVC_GUEST_BOOT_MAGIC ||
	    boot->version != OVC_GUEST_ABI_VERSION) {
		rt_printf("guest: bad boot block (magic %#lx version %u)\n",
			  (unsigned long)boot->magic, boot->version);
		return false;
	}
	if (!boot->nr_vcpus || boot->nr_vcpus > OVC_GUEST_MAX_VCPUS ||
	    vcpu >= boot->nr_vcpus || vcpu != rt_vcpu()) {
		rt_printf("guest: bad vcpu %lu of %u (stack says %u)\n",
			  (unsigned long)vcpu, boot->nr_vcpus, rt_vcpu());
		return false;
	}
	if (!boot->tsc_khz) {
		rt_printf("guest: boot block has no tsc_khz\n");
		return false;
	}
	return true;
}

void rt_start(uint64_t vcpu, struct ovc_guest_boot *boot)
{
	uint32_t ret, old;

	if (!boot_ok(vcpu, boot)) {
		/*
		 * Exit code 3: the VMM broke the boot protocol. Any vCPU may
		 * see it (a wrong RSP, say), and the others would wait forever
		 * for it to return, so it ends the VM itself.
		 */
		outl(OVC_PORT_EXIT, 3);
		park();
	}
	/* Every vCPU stores the same value; nobody reads it before their own store. */
	rt_tsc_khz = boot->tsc_khz;

	ret = (uint32_t)guest_main((unsigned int)vcpu, boot);

	old = __atomic_load_n(&exit_code, __ATOMIC_RELAXED);
	while (ret > old &&
	       !__atomic_compare_exchange_n(&exit_code, &old, ret, false,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	/* The ACQ_REL add orders every vCPU's exit_code update before the EXIT. */
	if (__atomic_add_fetch(&vcpus_done, 1, __ATOMIC_ACQ_REL) == boot->nr_vcpus)
		outl(OVC_PORT_EXIT, __atomic_load_n(&exit_code, __ATOMIC_RELAXED));
	park();
}
