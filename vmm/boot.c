// SPDX-License-Identifier: MIT
/* vmm/boot.c: load a guest ELF and set up 64-bit long mode so the guest starts at CPL3. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/vmm.h"

/* The boot layout of guest/abi.h, the parts only the VMM writes. */
#define PML4_GPA	0x2000ULL
#define PDPT_GPA	0x3000ULL
#define PT0_GPA		0x4000ULL
#define IDT_GPA		0x5000ULL
#define PD_GPA		0x10000ULL
#define PD_MAX		64
#define CPU_BLOCK_GPA	0x60000ULL
#define CPU_BLOCK_SIZE	0x4000ULL
#define RING0_STACK_GPA	0xa0000ULL
#define RING0_STACK_SIZE 0x2000ULL

/* GDT slots; the TSS descriptor takes two. */
#define SEL_KCODE	0x08
#define SEL_KDATA	0x10
#define SEL_UCODE32	0x18
#define SEL_UDATA	0x20
#define SEL_UCODE64	0x28
#define SEL_TSS		0x30
#define GDT_ENTRIES	8

#define TSS_BASE_SIZE	104
#define TSS_IOMAP_BYTES	8192	/* one bit per port, 0 = allowed */
#define TSS_LIMIT	(TSS_BASE_SIZE + TSS_IOMAP_BYTES)	/* + the 0xff terminator */
#define TSS_OFFSET	0x100	/* inside the vCPU block, after the GDT */

#define PTE_P		0x1ULL
#define PTE_RW		0x2ULL
#define PTE_US		0x4ULL
#define PTE_PWT		0x8ULL
#define PTE_PCD		0x10ULL
#define PTE_PS		0x80ULL

#define CR0_PE		0x1ULL
#define CR0_MP		0x2ULL
#define CR0_ET		0x10ULL
#define CR0_NE		0x20ULL
#define CR0_WP		0x10000ULL
#define CR0_PG		0x80000000ULL
#define CR4_PAE		0x20ULL
#define CR4_OSFXSR	0x200ULL
#define CR4_OSXMMEXCPT	0x400ULL
#define EFER_SCE	0x1ULL
#define EFER_LME	0x100ULL
#define EFER_LMA	0x400ULL
#define RFLAGS_IF	0x200ULL
#define RFLAGS_RSVD	0x2ULL

#define GiB		(1ULL << 30)
#define MiB2		(2ULL << 20)

void *vmm_gpa(struct vmm_vm *vm, uint64_t gpa, uint64_t len)
{
	if (gpa <= vm->low_size && len <= vm->low_size - gpa)
		return vm->low + gpa;
	if (gpa >= OVC_GUEST_HIGH_RAM && gpa - OVC_GUEST_HIGH_RAM <= vm->high_size &&
	    len <= vm->high_size - (gpa - OVC_GUEST_HIGH_RAM))
		return vm->high + (gpa - OVC_GUEST_HIGH_RAM);
	return NULL;
}

static void fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static bool is_ram(struct vmm_vm *vm, uint64_t gpa)
{
	return vmm_gpa(vm, gpa, 1) != NULL;
}

/* Identity map: RAM and the device hole [3 GiB, 4 GiB), all reachable from CPL3. */
static int build_page_tables(struct vmm_vm *vm)
{
	uint64_t *pml4 = vmm_gpa(vm, PML4_GPA, OVC_PAGE_SIZE);
	uint64_t *pdpt = vmm_gpa(vm, PDPT_GPA, OVC_PAGE_SIZE);
	uint64_t *pt0 = vmm_gpa(vm, PT0_GPA, OVC_PAGE_SIZE);
	uint64_t top = vm->high_size ? OVC_GUEST_HIGH_RAM + vm->high_size : 4 * GiB;
	unsigned int ngb = (unsigned int)((top + GiB - 1) / GiB), g, i;

	if (ngb > PD_MAX)
		return -E2BIG;
	pml4[0] = PDPT_GPA | PTE_P | PTE_RW | PTE_US;
	for (g = 0; g < ngb; g++) {
		uint64_t *pd = vmm_gpa(vm, PD_GPA + g * OVC_PAGE_SIZE, OVC_PAGE_SIZE);

		pdpt[g] = (PD_GPA + g * OVC_PAGE_SIZE) | PTE_P | PTE_RW | PTE_US;
		for (i = 0; i < 512; i++) {
			uint64_t gpa = g * GiB + i * MiB2;

			if (gpa >= OVC_GUEST_LOW_RAM_END && gpa < OVC_GUEST_HIGH_RAM)
				pd[i] = gpa | PTE_P | PTE_RW | PTE_US | PTE_PS | PTE_PCD | PTE_PWT;
			else if (is_ram(vm, gpa))
				pd[i] = gpa | PTE_P | PTE_RW | PTE_US | PTE_PS;
		}
	}
	/* The first 2 MiB in 4 KiB pages, so that page 0 stays unmapped. */
	((uint64_t *)vmm_gpa(vm, PD_GPA, OVC_PAGE_SIZE))[0] = PT0_GPA | PTE_P | PTE_RW | PTE_US;
	for (i = 1; i < 512; i++)
		pt0[i] = ((uint64_t)i << 12) | PTE_P | PTE_RW | PTE_US;
	return 0;
}

static uint64_t gdt_entry(uint64_t base, uint32_t limit, uint16_t flags)
{
	return ((base & 0xff000000ULL) << 32) | ((uint64_t)(flags & 0xf0ff) << 40) |
	       ((uint64_t)(limit & 0xf0000) << 32) | ((base & 0xffffff) << 16) |
	       (limit & 0xffff);
}

static void build_idt(struct vmm_vm *vm, const uint64_t *handlers)
{
	uint64_t *idt = vmm_gpa(vm, IDT_GPA, 256 * 16);
	unsigned int v;

	for (v = 0; v < 256; v++) {
		uint64_t h = handlers[v];

		if (!h) {
			idt[v * 2] = idt[v * 2 + 1] = 0;	/* not present: #NP, then #DF */
			continue;
		}
		/* 64-bit interrupt gate, DPL 0: only the CPU raises these. */
		idt[v * 2] = (h & 0xffff) | ((uint64_t)SEL_KCODE << 16) |
			     (0x8eULL << 40) | (((h >> 16) & 0xffff) << 48);
		idt[v * 2 + 1] = h >> 32;
	}
}

static void build_cpu_block(struct vmm_vm *vm, unsigned int i)
{
	uint64_t block = CPU_BLOCK_GPA + i * CPU_BLOCK_SIZE, tss = block + TSS_OFFSET;
	uint64_t *gdt = vmm_gpa(vm, block, GDT_ENTRIES * 8);
	uint8_t *t = vmm_gpa(vm, tss, TSS_LIMIT + 1);
	uint64_t rsp0 = RING0_STACK_GPA + (i + 1) * RING0_STACK_SIZE;

	gdt[0] = 0;
	gdt[1] = gdt_entry(0, 0xfffff, 0xa09b);	/* kernel code, 64-bit */
	gdt[2] = gdt_entry(0, 0xfffff, 0xc093);	/* kernel data */
	gdt[3] = gdt_entry(0, 0xfffff, 0xc0fb);	/* user code, 32-bit (sysret layout) */
	gdt[4] = gdt_entry(0, 0xfffff, 0xc0f3);	/* user data */
	gdt[5] = gdt_entry(0, 0xfffff, 0xa0fb);	/* user code, 64-bit */
	gdt[6] = gdt_entry(tss, TSS_LIMIT, 0x008b);	/* 64-bit TSS, busy */
	gdt[7] = tss >> 32;

	/* RSP0 for interrupts taken at CPL3; an all-zero I/O bitmap opens every port. */
	memset(t, 0, TSS_LIMIT + 1);
	memcpy(t + 4, &rsp0, sizeof(rsp0));
	t[102] = TSS_BASE_SIZE & 0xff;
	t[103] = TSS_BASE_SIZE >> 8;
	t[TSS_LIMIT] = 0xff;
}

static int read_file(const char *path, uint8_t **buf, size_t *len)
{
	struct stat st;
	ssize_t n;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > (64 << 20)) {
		ret = -EINVAL;
		goto out;
	}
	*len = (size_t)st.st_size;
	*buf = malloc(*len ? *len : 1);
	if (!*buf) {
		ret = -ENOMEM;
		goto out;
	}
	n = read(fd, *buf, *len);
	if (n != (ssize_t)*len) {
		free(*buf);
		ret = n < 0 ? -errno : -EIO;
	}
out:
	close(fd);
	return ret;
}

static bool inside(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

/**
 * vmm_load_guest() - load a guest ELF into low RAM and build the boot structures
 * @vm: the VM, its RAM added
 * @path: the ELF file
 * @err, @errlen: one line on failure
 *
 * Every field of the file is checked: segments must lie inside the image
 * window, the header's entry and vector table inside the loaded image.
 * Called from the main thread before any vCPU runs. Return: 0 or -errno.
 */
int vmm_load_guest(struct vmm_vm *vm, const char *path, char *err, size_t errlen)
{
	const struct ovc_guest_header *hdr;
	struct ovc_guest_boot *boot;
	uint64_t lo = ~0ULL, hi = 0, handlers[256];
	const Elf64_Ehdr *eh;
	const Elf64_Phdr *ph;
	uint8_t *buf = NULL;
	unsigned int i;
	size_t len = 0;
	int ret;

	ret = read_file(path, &buf, &len);
	if (ret) {
		fail(err, errlen, "cannot read guest %s: %s", path, strerror(-ret));
		return ret;
	}
	ret = -ENOEXEC;
	eh = (const Elf64_Ehdr *)buf;
	if (len < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64 ||
	    eh->e_type != ET_EXEC || eh->e_phentsize != sizeof(*ph) ||
	    !inside(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(*ph), len)) {
		fail(err, errlen, "guest %s is not an x86-64 ELF executable", path);
		goto out;
	}
	ph = (const Elf64_Phdr *)(buf + eh->e_phoff);
	for (i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD || ph[i].p_memsz == 0)
			continue;
		if (ph[i].p_filesz > ph[i].p_memsz || !inside(ph[i].p_offset, ph[i].p_filesz, len) ||
		    ph[i].p_paddr < OVC_GUEST_IMAGE_GPA ||
		    !inside(ph[i].p_paddr - OVC_GUEST_IMAGE_GPA, ph[i].p_memsz,
			    OVC_GUEST_IMAGE_END - OVC_GUEST_IMAGE_GPA)) {
			fail(err, errlen, "guest %s: segment %u is outside [%#llx, %#llx)",
			     path, i, OVC_GUEST_IMAGE_GPA, OVC_GUEST_IMAGE_END);
			goto out;
		}
		memcpy(vm->low + ph[i].p_paddr, buf + ph[i].p_offset, ph[i].p_filesz);
		memset(vm->low + ph[i].p_paddr + ph[i].p_filesz, 0,
		       ph[i].p_memsz - ph[i].p_filesz);
		if (ph[i].p_paddr < lo)
			lo = ph[i].p_paddr;
		if (ph[i].p_paddr + ph[i].p_memsz > hi)
			hi = ph[i].p_paddr + ph[i].p_memsz;
	}
	hdr = (const struct ovc_guest_header *)(vm->low + OVC_GUEST_IMAGE_GPA);
	if (lo != OVC_GUEST_IMAGE_GPA || hi - lo < sizeof(*hdr) ||
	    hdr->magic != OVC_GUEST_HEADER_MAGIC) {
		fail(err, errlen, "guest %s has no ovc guest header at %#llx", path,
		     OVC_GUEST_IMAGE_GPA);
		goto out;
	}
	if (hdr->version != OVC_GUEST_ABI_VERSION || hdr->entry < lo || hdr->entry >= hi ||
	    hdr->vectors < lo || hdr->vectors + sizeof(handlers) > hi) {
		fail(err, errlen, "guest %s: header version %u, entry %#llx or vectors %#llx is wrong",
		     path, hdr->version, (unsigned long long)hdr->entry,
		     (unsigned long long)hdr->vectors);
		goto out;
	}
	memcpy(handlers, vm->low + hdr->vectors, sizeof(handlers));
	for (i = 0; i < 256; i++) {
		if (handlers[i] && (handlers[i] < lo || handlers[i] >= hi)) {
			fail(err, errlen, "guest %s: vector %u handler %#llx is outside the image",
			     path, i, (unsigned long long)handlers[i]);
			goto out;
		}
	}
	vm->entry = hdr->entry;
	vm->vectors = hdr->vectors;

	ret = build_page_tables(vm);
	if (ret) {
		fail(err, errlen, "cannot map %llu MiB of RAM",
		     (unsigned long long)((vm->low_size + vm->high_size) >> 20));
		goto out;
	}
	build_idt(vm, handlers);
	for (i = 0; i < vm->spec->vcpus; i++)
		build_cpu_block(vm, i);

	boot = vmm_gpa(vm, OVC_GUEST_BOOT_GPA, sizeof(*boot));
	memset(boot, 0, sizeof(*boot));
	boot->magic = OVC_GUEST_BOOT_MAGIC;
	boot->version = OVC_GUEST_ABI_VERSION;
	boot->nr_vcpus = vm->spec->vcpus;
	boot->vm_index = vm->index;
	boot->ram_bytes = vm->low_size + vm->high_size;
	boot->heap_end = vm->low_size;
	boot->high_ram_bytes = vm->high_size;
	boot->seed = vm->vmm->opts->seed * 1000003ULL + vm->index;
	boot->virtio_mmio_base = OVC_GUEST_VIRTIO_MMIO;
	boot->virtio_irq_base = OVC_GUEST_VIRTIO_IRQ;
	snprintf(boot->name, sizeof(boot->name), "%s", vm->spec->name);
	snprintf(boot->args, sizeof(boot->args), "%s", vm->spec->args);
	ret = 0;
out:
	free(buf);
	return ret;
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, uint8_t dpl, bool code64)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->type = type;
	s->present = 1;
	s->dpl = dpl;
	s->s = 1;
	s->l = code64;
	s->db = !code64;
	s->g = 1;
}

static int set_cpuid(struct vmm_vm *vm, struct vmm_vcpu *vcpu)
{
	struct kvm_cpuid2 *cpuid;
	unsigned int n = 128, i;
	int ret;

	cpuid = calloc(1, sizeof(*cpuid) + n * sizeof(cpuid->entries[0]));
	if (!cpuid)
		return -ENOMEM;
	cpuid->nent = n;
	if (ioctl(vm->vmm->kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
		ret = -errno;
		goto out;
	}
	for (i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		/* Initial APIC id in leaf 1 and the x2APIC id in leaf 0xb. */
		if (e->function == 1)
			e->ebx = (e->ebx & 0x00ffffff) | (vcpu->index << 24);
		if (e->function == 0xb)
			e->edx = vcpu->index;
	}
	ret = ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid) < 0 ? -errno : 0;
out:
	free(cpuid);
	return ret;
}

/* LAPIC software-enabled, LINT0/LINT1 masked: interrupts come from the IOAPIC. */
static int set_lapic(struct vmm_vcpu *vcpu)
{
	struct kvm_lapic_state la;
	uint32_t v;

	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &la) < 0)
		return -errno;
	v = 0x1ff;		/* SVR: enabled, spurious vector 0xff */
	memcpy(la.regs + 0xf0, &v, 4);
	v = 0x10000;		/* masked */
	memcpy(la.regs + 0x350, &v, 4);
	memcpy(la.regs + 0x360, &v, 4);
	memcpy(la.regs + 0x320, &v, 4);	/* timer */
	return ioctl(vcpu->fd, KVM_SET_LAPIC, &la) < 0 ? -errno : 0;
}

/**
 * vmm_boot_vcpu() - put a vCPU at the guest's entry, in long mode at CPL3
 * @vm: the VM, guest loaded
 * @vcpu: its KVM fd open
 *
 * RDI = vCPU index, RSI = boot structure, RSP = its own stack, IF = 1.
 * Called from the main thread before the vCPU runs. Return: 0 or -errno.
 */
int vmm_boot_vcpu(struct vmm_vm *vm, struct vmm_vcpu *vcpu)
{
	uint64_t block = CPU_BLOCK_GPA + vcpu->index * CPU_BLOCK_SIZE;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int ret;

	ret = set_cpuid(vm, vcpu);
	if (ret)
		return ret;
	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	sregs.cr3 = PML4_GPA;
	sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
	sregs.efer = EFER_SCE | EFER_LME | EFER_LMA;
	seg(&sregs.cs, SEL_UCODE64 | 3, 0xb, 3, true);
	seg(&sregs.ss, SEL_UDATA | 3, 0x3, 3, false);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss;
	sregs.gdt.base = block;
	sregs.gdt.limit = GDT_ENTRIES * 8 - 1;
	sregs.idt.base = IDT_GPA;
	sregs.idt.limit = 256 * 16 - 1;
	memset(&sregs.tr, 0, sizeof(sregs.tr));
	sregs.tr.selector = SEL_TSS;
	sregs.tr.base = block + TSS_OFFSET;
	sregs.tr.limit = TSS_LIMIT;
	sregs.tr.type = 0xb;
	sregs.tr.present = 1;
	memset(&sregs.ldt, 0, sizeof(sregs.ldt));
	sregs.ldt.unusable = 1;
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	memset(&regs, 0, sizeof(regs));
	regs.rip = vm->entry;
	regs.rsp = OVC_GUEST_STACK_TOP - vcpu->index * OVC_GUEST_STACK_SIZE;
	regs.rdi = vcpu->index;
	regs.rsi = OVC_GUEST_BOOT_GPA;
	regs.rflags = RFLAGS_RSVD | RFLAGS_IF;
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	ret = set_lapic(vcpu);
	if (ret)
		return ret;
	/* With an in-kernel LAPIC, vCPUs other than 0 would wait for a SIPI. */
	return ioctl(vcpu->fd, KVM_SET_MP_STATE,
		     &(struct kvm_mp_state){ .mp_state = KVM_MP_STATE_RUNNABLE }) < 0 ? -errno : 0;
}

/**
 * vmm_setup_irqchip() - route the device IOAPIC pins to vectors 0x20 + pin
 * @vm: the VM, in-kernel irqchip created
 *
 * A CPL3 guest has no business programming the IOAPIC, so the VMM does it:
 * edge-triggered, fixed delivery to APIC 0, unmasked, for the device pins.
 * Return: 0 or -errno.
 */
int vmm_setup_irqchip(struct vmm_vm *vm)
{
	struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC };
	unsigned int pin;

	if (ioctl(vm->fd, KVM_GET_IRQCHIP, &chip) < 0)
		return -errno;
	for (pin = OVC_GUEST_VIRTIO_IRQ; pin < KVM_IOAPIC_NUM_PINS; pin++) {
		memset(&chip.chip.ioapic.redirtbl[pin], 0, sizeof(chip.chip.ioapic.redirtbl[pin]));
		chip.chip.ioapic.redirtbl[pin].fields.vector = OVC_GUEST_VEC_IRQ0 + pin;
		chip.chip.ioapic.redirtbl[pin].fields.dest_id = 0;
	}
	return ioctl(vm->fd, KVM_SET_IRQCHIP, &chip) < 0 ? -errno : 0;
}
