/* SPDX-License-Identifier: MIT */
/* host/: the control socket's request handler and the tunable registry (internal API). */
#ifndef OVC_CTL_INTERNAL_H
#define OVC_CTL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ovc/ctl.h>
#include <ovc/policy.h>

struct ovc_host;
struct ovc_vm;

/*
 * The tunable registry: every knob "get" and "set" reach, in one table
 * (host/tunables.c, ovc__tunables[]). A subsystem adds a knob with one entry:
 *
 *	{ "dedup.budget", OVC_TUN_BYTES, OVC_TUN_VM, .umax = 1ULL << 40,
 *	  .get = dedup_budget_get, .set = dedup_budget_set,
 *	  .help = "..." },
 *
 * Values are parsed and range-checked by the table's type and range before
 * any setter runs; a request setting several keys checks them all (@check,
 * and the staged policy) before it changes anything, so a refused request
 * changes nothing.
 *
 * Every method is called from the control thread with host->lock held, which
 * keeps @vm alive; a method must not take host->lock nor wait for a guest.
 */
enum ovc_tun_type {
	OVC_TUN_U64,		/* a JSON integer within [umin, umax] */
	OVC_TUN_BYTES,		/* an integer or a size string ("512M") within [umin, umax] */
	OVC_TUN_DOUBLE,		/* a JSON number within [dmin, dmax] */
	OVC_TUN_BOOL,		/* true or false */
};

enum ovc_tun_scope {
	OVC_TUN_VM,		/* per VM: requests name a VM */
	OVC_TUN_HOST,		/* host-wide: requests name none; @vm is NULL */
};

union ovc_tun_val {
	uint64_t u;		/* OVC_TUN_U64, OVC_TUN_BYTES */
	double d;		/* OVC_TUN_DOUBLE */
	bool b;			/* OVC_TUN_BOOL */
};

/*
 * struct ovc_tun_ctx - one get or set request in progress
 * @host, @vm: what it is about (@vm NULL for host-wide knobs)
 * @policy: the VM's policy, staged: policy knobs change this copy and the
 *	request applies it once, through the policy check, after every key
 * @policy_dirty: a key changed @policy
 * @why: a static one-line reason a method refused
 */
struct ovc_tun_ctx {
	struct ovc_host *host;
	struct ovc_vm *vm;
	struct ovc_vm_policy policy;
	bool policy_dirty;
	const char *why;
};

/*
 * struct ovc_tunable - one knob
 * @key: "subsystem.name", lower case
 * @type, @scope: see above
 * @umin, @umax: range of OVC_TUN_U64 and OVC_TUN_BYTES values
 * @dmin, @dmax: range of OVC_TUN_DOUBLE values
 * @get: the current value. Return 0, or a negative errno with @ctx->why set
 *	(-ENODEV: the VM lacks the mechanism; the key is left out of "get all").
 * @check: optional; may refuse a value (negative errno, @ctx->why) before
 *	anything changes, and may stage it (policy knobs do).
 * @set: optional; applies the value once every key passed @check and the
 *	staged policy was applied. NULL for staged-only knobs.
 * @help: one line for "tunables" and memctl help
 */
struct ovc_tunable {
	const char *key;
	enum ovc_tun_type type;
	enum ovc_tun_scope scope;
	uint64_t umin, umax;
	double dmin, dmax;
	int (*get)(struct ovc_tun_ctx *ctx, union ovc_tun_val *out);
	int (*check)(struct ovc_tun_ctx *ctx, union ovc_tun_val v);
	int (*set)(struct ovc_tun_ctx *ctx, union ovc_tun_val v);
	const char *help;
};

extern const struct ovc_tunable ovc__tunables[];
extern const size_t ovc__ntunables;

/* The entry for @key, or NULL. */
const struct ovc_tunable *ovc__tunable_find(const char *key);

/* Name of a type for messages and the "tunables" reply. */
const char *ovc__tun_type_name(enum ovc_tun_type t);

/*
 * The request handler, without the socket: one request line (no newline) in,
 * one reply (a malloc'd JSON text without newline) out. Used by the server
 * thread and by the fuzzer. The calling thread must be registered with
 * ovc_thread_register(). Return NULL only when out of memory.
 */
char *ovc__ctl_handle(struct ovc_host *host, const char *line, size_t len);

#endif /* OVC_CTL_INTERNAL_H */
