// SPDX-License-Identifier: MIT
/* tests/kit/memstore.c: an in-memory, checksummed page store for tests and benches. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <xxhash.h>

#include "tests/kit/memstore.h"

struct memstore_slot {
	uint8_t *data;		/* OVC_PAGE_SIZE bytes, NULL when free */
	uint64_t sum;
};

struct memstore {
	pthread_mutex_t lock;	/* protects everything below */
	uint64_t capacity;
	uint64_t used;
	struct memstore_slot *slots;
	uint64_t *free;		/* stack of free slot numbers */
	uint64_t nfree;
	unsigned int fail_loads;
	int fail_err;
};

/* Handles are slot + 1 so that 0 never names a page. */
struct memstore *memstore_new(uint64_t capacity)
{
	struct memstore *ms = calloc(1, sizeof(*ms));
	uint64_t i;

	if (!ms)
		return NULL;
	ms->slots = calloc(capacity, sizeof(*ms->slots));
	ms->free = calloc(capacity, sizeof(*ms->free));
	if (!ms->slots || !ms->free) {
		free(ms->slots);
		free(ms->free);
		free(ms);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&ms->lock, NULL);
	ms->capacity = capacity;
	for (i = 0; i < capacity; i++)
		ms->free[i] = capacity - 1 - i;
	ms->nfree = capacity;
	return ms;
}

void memstore_destroy(struct memstore *ms)
{
	uint64_t i;

	if (!ms)
		return;
	for (i = 0; i < ms->capacity; i++)
		free(ms->slots[i].data);
	free(ms->slots);
	free(ms->free);
	pthread_mutex_destroy(&ms->lock);
	free(ms);
}

int memstore_save(struct memstore *ms, const void *src, uint64_t *handle)
{
	uint8_t *copy = malloc(OVC_PAGE_SIZE);
	uint64_t slot;

	if (!copy)
		return -ENOMEM;
	memcpy(copy, src, OVC_PAGE_SIZE);
	pthread_mutex_lock(&ms->lock);
	if (!ms->nfree) {
		pthread_mutex_unlock(&ms->lock);
		free(copy);
		return -ENOSPC;
	}
	slot = ms->free[--ms->nfree];
	ms->slots[slot].data = copy;
	ms->slots[slot].sum = XXH3_64bits(copy, OVC_PAGE_SIZE);
	ms->used++;
	pthread_mutex_unlock(&ms->lock);
	*handle = slot + 1;
	return 0;
}

void memstore_drop(struct memstore *ms, uint64_t handle)
{
	uint8_t *data;

	if (handle == 0 || handle > ms->capacity)
		OVC_BUG("memstore: bad handle %llu", (unsigned long long)handle);
	pthread_mutex_lock(&ms->lock);
	data = ms->slots[handle - 1].data;
	if (!data)
		OVC_BUG("memstore: handle %llu freed twice", (unsigned long long)handle);
	ms->slots[handle - 1].data = NULL;
	ms->free[ms->nfree++] = handle - 1;
	ms->used--;
	pthread_mutex_unlock(&ms->lock);
	free(data);
}

uint64_t memstore_used(struct memstore *ms)
{
	uint64_t n;

	pthread_mutex_lock(&ms->lock);
	n = ms->used;
	pthread_mutex_unlock(&ms->lock);
	return n;
}

void memstore_corrupt(struct memstore *ms, uint64_t handle)
{
	pthread_mutex_lock(&ms->lock);
	ms->slots[handle - 1].data[100] ^= 0x5a;
	pthread_mutex_unlock(&ms->lock);
}

void memstore_fail_loads(struct memstore *ms, unsigned int n, int err)
{
	pthread_mutex_lock(&ms->lock);
	ms->fail_loads = n;
	ms->fail_err = err;
	pthread_mutex_unlock(&ms->lock);
}

static int ms_load(void *opaque, struct ovc_ram *ram, uint64_t gfn, uint64_t handle,
		   void *dst)
{
	struct memstore *ms = opaque;
	int ret = 0;

	if (handle == 0 || handle > ms->capacity)
		return -EINVAL;
	pthread_mutex_lock(&ms->lock);
	if (ms->fail_loads) {
		ms->fail_loads--;
		ret = ms->fail_err;
		goto out;
	}
	if (!ms->slots[handle - 1].data) {
		ret = -ENOENT;
		goto out;
	}
	memcpy(dst, ms->slots[handle - 1].data, OVC_PAGE_SIZE);
	if (XXH3_64bits(dst, OVC_PAGE_SIZE) != ms->slots[handle - 1].sum)
		ret = -EBADMSG;
out:
	pthread_mutex_unlock(&ms->lock);
	return ret;
}

static void ms_release(void *opaque, struct ovc_ram *ram, uint64_t gfn, uint64_t handle)
{
	memstore_drop(opaque, handle);
}

const struct ovc_store_ops memstore_ops = {
	.load = ms_load,
	.release = ms_release,
};
