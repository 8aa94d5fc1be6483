/* SPDX-License-Identifier: MIT */
/* tests/kit/vring.h: what a test's virtio driver writes into guest memory, little-endian. */
#ifndef OVC_KIT_VRING_H
#define OVC_KIT_VRING_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

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
