/* SPDX-License-Identifier: MIT */
/* bench/content.h: deterministic page contents shared by every system a scenario compares. */
#ifndef OVC_BENCH_CONTENT_H
#define OVC_BENCH_CONTENT_H

#include <stdbool.h>
#include <stdint.h>

#include <ovc/common.h>

/* Of 16 pages: 5 text-like, 3 log lines, 2 binary records, 2 sparse, 4 random. */
enum ovcb_kind { OVCB_KIND_TEXT, OVCB_KIND_LOG, OVCB_KIND_DATA, OVCB_KIND_SPARSE,
		 OVCB_KIND_RANDOM, OVCB_KIND_NR };

extern const char *const ovcb_kind_names[OVCB_KIND_NR];

/** ovcb_splitmix() - the next value of a splitmix64 sequence whose state is @s */
uint64_t ovcb_splitmix(uint64_t *s);

/** ovcb_page_kind() - what page @i holds */
enum ovcb_kind ovcb_page_kind(uint64_t i);

/**
 * ovcb_fill_page() - write page @i's contents (OVC_PAGE_SIZE bytes) at @p
 *
 * Text and log pages compress 2-2.5x with LZ4, records about 3x, sparse
 * pages 20x or more, random ones not at all; no page is all zero. Thread-safe.
 */
void ovcb_fill_page(uint8_t *p, uint64_t i);

/** ovcb_page_ok() - does @p hold page @i's contents? */
bool ovcb_page_ok(const uint8_t *p, uint64_t i);

#endif
