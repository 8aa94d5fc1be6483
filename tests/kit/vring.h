/* SPDX-License-Identifier: MIT */
/* tests/kit/vring.h: what a test's virtio driver writes into guest memory, little-endian. */
#ifndef OVC_KIT_VRING_H
#define OVC_KIT_VRING_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

/* virtio-mmio registers (layout version 2), as a driver sees them. */
#define R_MAGIC	0x000
#define R_VERSION	0x004
#define R_DEVICE_ID	0x008
#define R_VENDOR_ID	0x00c
#define R_DEV_FEAT	0x010
#define R_DEV_FEAT_SEL	0x014
#define R_DRV_FEAT	0x020
#define R_DRV_FEAT_SEL	0x024
#define R_QUEUE_SEL	0x030
#define R_QUEUE_NUM_MAX	0x034
#define R_QUEUE_NUM	0x038
#define R_QUEUE_READY	0x044
#define R_QUEUE_NOTIFY	0x050
#define R_ISR	0x060
#define R_ISR_ACK	0x064
#define R_STATUS	0x070
#define R_QUEUE_DESC	0x080
#define R_QUEUE_DRIVER	0x090
#define R_QUEUE_DEVICE	0x0a0
#define R_CONFIG_GEN	0x0fc

/* Byte-wise, so any alignment a test chooses (or a fuzzer picks) is fine. */
static inline void vring_put16(void *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

static inline void vring_put32(void *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static inline uint16_t vring_get16(const void *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static inline uint32_t vring_get32(const void *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

/* One 16-byte split-ring descriptor: addr, len, flags, next. */
static inline void vring_put_desc(void *p, uint64_t addr, uint32_t len, uint16_t flags,
				  uint16_t next)
{
	uint8_t *d = p;
	uint64_t a = htole64(addr);

	memcpy(d, &a, sizeof(a));
	vring_put32(d + 8, len);
	vring_put16(d + 12, flags);
	vring_put16(d + 14, next);
}

#endif /* OVC_KIT_VRING_H */
