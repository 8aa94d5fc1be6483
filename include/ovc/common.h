/* SPDX-License-Identifier: MIT */
/* Definitions shared by every public ovc header: export, attributes, logging. */
#ifndef OVC_COMMON_H
#define OVC_COMMON_H

#include <stdarg.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OVC_EXPORT __attribute__((visibility("default")))
#define OVC_MUST_CHECK __attribute__((warn_unused_result))
#define OVC_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))

/** Size of a guest page; the page table has one entry per page. */
#define OVC_PAGE_SHIFT 12
#define OVC_PAGE_SIZE (1UL << OVC_PAGE_SHIFT)

enum ovc_log_level {
	OVC_LOG_ERR = 3,
	OVC_LOG_WARN = 4,
	OVC_LOG_INFO = 6,
	OVC_LOG_DEBUG = 7,
};

/**
 * typedef ovc_log_fn - where the library's log lines go
 * @opaque: the pointer given with the function
 * @level: an enum ovc_log_level
 * @msg: one line, without a trailing newline
 *
 * Called from any library thread (fault engine, manager, the caller's own
 * threads); must be thread-safe and must not call back into ovc.
 */
typedef void (*ovc_log_fn)(void *opaque, int level, const char *msg);

#ifdef __cplusplus
}
#endif

#endif /* OVC_COMMON_H */
