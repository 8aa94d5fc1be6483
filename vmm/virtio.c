// SPDX-License-Identifier: MIT
/* vmm/virtio.c: ovc-vmm's virtio-mmio devices: windows, irqfd interrupts, an entropy device, the balloon. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <unistd.h>

#include "vmm/vmm.h"

#define VIRTIO_ID_RNG		4
#define RNG_QUEUE_SIZE		256

/*
 * The entropy device (virtio 1.x, 5.4): one request queue of device-writable
 * buffers, filled with bytes from getrandom(). Called inside the transport,
 * under the device's lock.
 */
static void rng_notify(void *opaque, struct ovc_virtq *vq)
{
	struct vmm_virtio *dev = opaque;
	struct ovc_virtq_elem elem;
	unsigned int i;
	int got;

	while ((got = ovc_virtq_pop(vq, &elem)) > 0) {
		uint32_t written = 0;

		for (i = 0; i < elem.nin; i++) {
			ssize_t n;

			/* The kick signal may land mid-copy: the device must give at least a byte. */
			do
				n = getrandom(elem.in[i].iov_base, elem.in[i].iov_len, 0);
			while (n < 0 && errno == EINTR);
			if (n < 0)
				break;
			written += (uint32_t)n;
			if ((size_t)n < elem.in[i].iov_len)
				break;
		}
		dev->bytes += written;
		if (ovc_virtq_push(vq, &elem, written))
			break;
	}
	ovc_virtq_notify(vq);
}

static const struct ovc_virtio_device_ops rng_ops = {
	.device_id = VIRTIO_ID_RNG,
	.vendor_id = 0x0076636f,	/* "ovc" */
	.features = OVC_VIRTIO_FEATURE(OVC_VIRTIO_F_RING_EVENT_IDX) |
		    OVC_VIRTIO_FEATURE(OVC_VIRTIO_F_INDIRECT_DESC),
	.num_queues = 1,
	.queue_max_size = RNG_QUEUE_SIZE,
	.config_size = 0,
	.queue_notify = rng_notify,
};

/* The transport raises the interrupt: the irqfd, and wake a vCPU idling in the VMM. */
static void raise_irq(void *opaque)
{
	struct vmm_virtio *dev = opaque;
	uint64_t one = 1;
	unsigned int i;

	if (write(dev->irq_fd, &one, sizeof(one)) < 0)
		dev->irq_errors++;
	for (i = 0; i < dev->vm->spec->vcpus; i++) {
		if (write(dev->vm->vcpus[i].wake_fd, &one, sizeof(one)) < 0) {
			/* a wake-up is pending anyway */
		}
	}
}

/* The balloon brings its own transport and lock; the VMM only routes to it. */
static int add_balloon(struct vmm_vm *vm, struct vmm_virtio *dev)
{
	struct ovc_balloon_config cfg;
	int ret;

	if (vm->balloon) {
		ret = -EEXIST;
		goto err;
	}
	ovc_balloon_config_init(&cfg);
	if (vm->vmm->opts->balloon_step)
		cfg.step_bytes = vm->vmm->opts->balloon_step;
	dev->balloon = ovc_vm_add_balloon(vm->ovc, &cfg);
	if (!dev->balloon) {
		ret = -errno;
		goto err;
	}
	ret = ovc_balloon_mmio(dev->balloon, raise_irq, dev);
	if (ret) {
		ovc_balloon_remove(dev->balloon);
		goto err;
	}
	vm->balloon = dev->balloon;
	vm->ndevs++;
	return 0;
err:
	close(dev->irq_fd);
	return ret;
}

/* Apply the --vm balloon=...@T steps that are due. Called from the main thread. */
void vmm_balloon_schedule(struct vmm_vm *vm, double elapsed)
{
	const struct vmm_vm_spec *spec = vm->spec;

	while (vm->balloon && vm->balloon_next < spec->nballoon &&
	       spec->balloon[vm->balloon_next].at <= elapsed) {
		uint64_t bytes = spec->balloon[vm->balloon_next].bytes;

		if (!bytes)
			bytes = (uint64_t)(spec->balloon[vm->balloon_next].fraction *
					   (double)spec->mem);
		ovc_balloon_set_target(vm->balloon, bytes);
		vm->balloon_next++;
	}
}

/**
 * vmm_virtio_add() - put a device in the next virtio-mmio window of @vm
 * @vm: the VM, RAM added, irqchip created
 * @kind: "rng"
 *
 * The window is OVC_GUEST_VIRTIO_MMIO + n * 4 KiB, the interrupt IOAPIC pin
 * OVC_GUEST_VIRTIO_IRQ + n, delivered through a KVM irqfd. Called from the
 * main thread before the vCPUs run. Return: 0 or -errno.
 */
int vmm_virtio_add(struct vmm_vm *vm, const char *kind)
{
	struct vmm_virtio *dev;
	struct kvm_irqfd irqfd = { 0 };
	const struct ovc_virtio_device_ops *ops;
	unsigned int n = vm->ndevs;

	if (!strcmp(kind, "rng"))
		ops = &rng_ops;
	else if (!strcmp(kind, "balloon"))
		ops = NULL;
	else
		return -ENODEV;
	if (n >= VMM_MAX_DEVICES)
		return -ENOSPC;
	dev = &vm->devs[n];
	memset(dev, 0, sizeof(*dev));
	dev->vm = vm;
	dev->kind = kind;
	dev->gpa = OVC_GUEST_VIRTIO_MMIO + (uint64_t)n * 0x1000;
	dev->pin = OVC_GUEST_VIRTIO_IRQ + n;
	pthread_mutex_init(&dev->lock, NULL);
	dev->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (dev->irq_fd < 0)
		return -errno;
	irqfd.fd = (uint32_t)dev->irq_fd;
	irqfd.gsi = dev->pin;
	if (ioctl(vm->fd, KVM_IRQFD, &irqfd) < 0) {
		int ret = -errno;

		close(dev->irq_fd);
		return ret;
	}
	dev->regions[0] = (struct ovc_guest_region){ 0, vm->low_size, vm->low };
	dev->mem.regions = dev->regions;
	dev->mem.nregions = 1;
	if (vm->high_size) {
		dev->regions[1] = (struct ovc_guest_region){ OVC_GUEST_HIGH_RAM, vm->high_size,
							     vm->high };
		dev->mem.nregions = 2;
	}
	if (!ops)
		return add_balloon(vm, dev);
	dev->mmio = ovc_virtio_mmio_new(ops, dev, &dev->mem, raise_irq, dev);
	if (!dev->mmio) {
		int ret = -errno;

		close(dev->irq_fd);
		return ret;
	}
	vm->ndevs++;
	return 0;
}

/*
 * An MMIO exit: the device whose window holds @gpa answers. Return false when
 * no device is there. Called from a vCPU thread; takes the device's lock.
 */
bool vmm_virtio_mmio(struct vmm_vm *vm, uint64_t gpa, uint8_t *data, unsigned int len,
		     bool is_write)
{
	struct vmm_virtio *dev;
	uint64_t off;
	unsigned int n;

	if (gpa < OVC_GUEST_VIRTIO_MMIO)
		return false;
	n = (unsigned int)((gpa - OVC_GUEST_VIRTIO_MMIO) / 0x1000);
	if (n >= vm->ndevs)
		return false;
	dev = &vm->devs[n];
	off = gpa - dev->gpa;
	if (dev->balloon) {
		if (ovc_balloon_mmio_access(dev->balloon, off, data, len, is_write) && !is_write)
			memset(data, 0, len);
		return true;
	}
	pthread_mutex_lock(&dev->lock);
	if (is_write) {
		ovc_virtio_mmio_write(dev->mmio, off, data, len);
	} else if (ovc_virtio_mmio_read(dev->mmio, off, data, len)) {
		memset(data, 0, len);
	}
	pthread_mutex_unlock(&dev->lock);
	return true;
}

/* Detach the irqfds and free the devices. Called from the main thread, vCPUs stopped. */
void vmm_virtio_remove_all(struct vmm_vm *vm)
{
	unsigned int i;

	for (i = 0; i < vm->ndevs; i++) {
		struct vmm_virtio *dev = &vm->devs[i];
		struct kvm_irqfd irqfd = {
			.fd = (uint32_t)dev->irq_fd,
			.gsi = dev->pin,
			.flags = KVM_IRQFD_FLAG_DEASSIGN,
		};

		if (vm->fd >= 0)
			ioctl(vm->fd, KVM_IRQFD, &irqfd);
		if (dev->balloon)
			ovc_balloon_remove(dev->balloon);
		ovc_virtio_mmio_destroy(dev->mmio);
		close(dev->irq_fd);
		pthread_mutex_destroy(&dev->lock);
	}
	vm->ndevs = 0;
	vm->balloon = NULL;
}

/* The device's transport counters, for the summary. */
void vmm_virtio_stats(struct vmm_virtio *dev, struct ovc_virtio_stats *st)
{
	ovc_virtio_mmio_get_stats(dev->balloon ? ovc_balloon_transport(dev->balloon) : dev->mmio,
				  st);
}
