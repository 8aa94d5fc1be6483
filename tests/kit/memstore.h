/* SPDX-License-Identifier: MIT */
/* tests/kit/memstore.h: an in-memory page store behind struct ovc_store_ops, for tests and benches. */
#ifndef OVC_KIT_MEMSTORE_H
#define OVC_KIT_MEMSTORE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core-internal.h"

struct memstore;

/* A store of up to @capacity pages. NULL with errno set. */
struct memstore *memstore_new(uint64_t capacity);
void memstore_destroy(struct memstore *ms);

/* Keep a copy of @src; the handle goes into the page's entry. 0 or -ENOSPC. */
int memstore_save(struct memstore *ms, const void *src, uint64_t *handle);
/* Free a handle that never made it into an entry (failed commit). */
void memstore_drop(struct memstore *ms, uint64_t handle);
/* Pages held now. */
uint64_t memstore_used(struct memstore *ms);
/* Flip one byte of a stored page so its checksum fails (for error tests). */
void memstore_corrupt(struct memstore *ms, uint64_t handle);
/* Make the next @n loads fail with @err (0 stops it). */
void memstore_fail_loads(struct memstore *ms, unsigned int n, int err);

extern const struct ovc_store_ops memstore_ops;

#endif /* OVC_KIT_MEMSTORE_H */
