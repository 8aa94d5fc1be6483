/* SPDX-License-Identifier: MIT */
/* ovc/snapshot.h: suspend a VM's RAM to an image file and resume it lazily from one. */
#ifndef OVC_SNAPSHOT_H
#define OVC_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include <ovc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ovc_vm;

/** Largest application blob (vCPU and device state) an image may carry. */
#define OVC_SNAPSHOT_APP_MAX (16U << 20)

/**
 * struct ovc_save_stats - what one ovc_vm_save() wrote
 * @pages: guest pages in the image (the whole RAM)
 * @data_pages: pages stored with their contents
 * @zero_pages: pages recorded as zero (holes, and resident pages found all zero)
 * @ballooned_pages: pages recorded as ballooned
 * @file_bytes: size of the image file
 * @ns: wall time of the save
 */
struct ovc_save_stats {
	uint64_t pages;
	uint64_t data_pages;
	uint64_t zero_pages;
	uint64_t ballooned_pages;
	uint64_t file_bytes;
	uint64_t ns;
};

/**
 * struct ovc_restore_stats - how a lazy restore is going
 * @pages: guest pages in the image
 * @data_pages: pages with contents in the image (they start as IMAGE)
 * @lazy: pages that left the image other than by the stream: read on first
 *	touch (or replaced by another transition)
 * @streamed: pages read by the streaming thread
 * @prefetched: of @streamed, pages taken right after a first-touch fault, ahead
 *	of the sweep (the streamer's own bounded prefetch)
 * @checksum_failures: pages whose stored checksum did not match (each one is
 *	reported to the VM's fatal handler, never turned into zeros)
 * @remaining: pages still IMAGE
 * @resident_ns: time from ovc_vm_restore() to the last IMAGE page in (0 until then)
 * @image_open: the image file is still open (pages remain, or a page is lost)
 * @streaming: the streaming thread is still running
 */
struct ovc_restore_stats {
	uint64_t pages;
	uint64_t data_pages;
	uint64_t lazy;
	uint64_t streamed;
	uint64_t prefetched;
	uint64_t checksum_failures;
	uint64_t remaining;
	uint64_t resident_ns;
	int image_open;
	int streaming;
};

/**
 * ovc_vm_save() - write a VM's whole RAM, with page states, to an image file
 * @vm: the VM
 * @path: the image; written to a temporary file in the same directory
 *	(mode 0600), synced, then renamed over @path, so @path is either the old
 *	file or a complete image
 * @app: an application blob stored with the RAM (ovc-vmm keeps its vCPU
 *	registers and device state there); NULL when @app_len is 0
 * @app_len: its length, at most OVC_SNAPSHOT_APP_MAX
 * @st: what was written (may be NULL)
 *
 * Every range is read in runs under a transition that waits for busy pages,
 * so pages moving between states meanwhile (pager, balloon, a restore still
 * streaming) are copied whole and left where they were. ZERO and BALLOONED
 * pages, and resident pages found all zero, cost a table entry only;
 * COMPRESSED, SWAPPED and IMAGE pages are read through their stores (their
 * checksums verified) and stored as data. Each stored page carries its own
 * xxh3 checksum. The format is in docs/pager.md.
 *
 * The image is consistent as a whole only if nothing writes guest RAM during
 * the save: stop (or pause) the VM's vCPUs and devices first. The pages are
 * never changed by a save.
 *
 * Return: 0; -EINVAL for bad arguments; -EIO when a page's contents are lost
 * (poisoned, or its store fails: nothing is written); or the errno of creating,
 * writing or syncing the file (then no file is left behind).
 * Context: any thread but a fault-engine thread; may take seconds per GiB.
 */
OVC_EXPORT OVC_MUST_CHECK int ovc_vm_save(struct ovc_vm *vm, const char *path,
					  const void *app, size_t app_len,
					  struct ovc_save_stats *st);

/**
 * ovc_vm_restore() - map a saved image as the VM's RAM, lazily
 * @vm: a VM whose RAM ranges are exactly those of the saved VM
 * @path: an image written by ovc_vm_save()
 * @app: where to copy the image's application blob (may be NULL if
 *	@app_cap is 0)
 * @app_cap: room at @app
 * @app_len: set to the blob's length (may be NULL)
 *
 * The header, the page table and the blob are verified first (magic, version,
 * checksums, that every range matches @vm's, that the file holds every page
 * it names); a bad image changes nothing. Then every page takes its saved
 * state: ZERO, BALLOONED, or IMAGE (its contents in the file), whatever it
 * held before (old contents are dropped). An IMAGE page is read on first
 * touch through the fault engine and its checksum verified; a streaming
 * thread reads the rest in the background with transitions (never racing a
 * fault), and after a first-touch fault it takes the next pages first. When
 * no IMAGE page is left the image is closed. A page whose checksum fails is
 * reported to the VM's fatal handler (ovc_vm_set_fatal_handler(), which may
 * then be called from the streaming thread as well) and, when touched,
 * poisoned: never a silent zero page.
 *
 * Return: 0; -EINVAL for bad arguments, an image that is not one, is
 * truncated, damaged, of another version or another RAM layout (one log
 * line says which); -EMSGSIZE when the blob does not fit @app_cap; -EBUSY
 * while a previous restore of @vm still has IMAGE pages; or the errno of
 * opening or reading the file. Nothing is changed when it fails, with one
 * exception: when a transition fails while the pages take their saved
 * states (a hole punch refused), its errno is returned, those pages keep
 * their old contents and the others are restored (logged).
 * Context: any thread but a fault-engine thread; start the vCPUs after it
 * returns.
 */
OVC_EXPORT OVC_MUST_CHECK int ovc_vm_restore(struct ovc_vm *vm, const char *path,
					     void *app, size_t app_cap, size_t *app_len);

/**
 * ovc_vm_restore_get_stats() - the counters of the VM's last restore
 * @vm: the VM
 * @st: filled in
 *
 * Return: 0; -ENOENT when the VM was never restored; -EINVAL.
 * Context: any thread.
 */
OVC_EXPORT int ovc_vm_restore_get_stats(struct ovc_vm *vm, struct ovc_restore_stats *st);

/**
 * ovc_vm_restore_wait() - wait until the streaming thread of the last restore ends
 * @vm: the VM
 * @timeout_ms: at most this long; negative: no limit
 *
 * The thread ends when every page is in, or when only lost pages remain.
 *
 * Return: 0; -ETIMEDOUT; -ENOENT when the VM was never restored; -EINVAL.
 * Context: any thread but a fault-engine thread.
 */
OVC_EXPORT int ovc_vm_restore_wait(struct ovc_vm *vm, int timeout_ms);

#ifdef __cplusplus
}
#endif

#endif /* OVC_SNAPSHOT_H */
