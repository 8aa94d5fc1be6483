// SPDX-License-Identifier: MIT
/* host/tunables.c: the registry of knobs the control socket gets and sets. */
#include <errno.h>
#include <string.h>

#include "core/core-internal.h"
#include "host/ctl-internal.h"
#include "host/host-internal.h"

/* Policy knobs: read the live policy, stage changes in ctx->policy. */
#define POLICY_U64(field)							\
static int get_##field(struct ovc_tun_ctx *c, union ovc_tun_val *out)		\
{										\
	out->u = c->vm->policy.field;						\
	return 0;								\
}										\
static int stage_##field(struct ovc_tun_ctx *c, union ovc_tun_val v)		\
{										\
	c->policy.field = v.u;							\
	c->policy_dirty = true;							\
	return 0;								\
}

#define POLICY_DOUBLE(field)							\
static int get_##field(struct ovc_tun_ctx *c, union ovc_tun_val *out)		\
{										\
	out->d = c->vm->policy.field;						\
	return 0;								\
}										\
static int stage_##field(struct ovc_tun_ctx *c, union ovc_tun_val v)		\
{										\
	c->policy.field = v.d;							\
	c->policy_dirty = true;							\
	return 0;								\
}

POLICY_U64(mem_shares)
POLICY_U64(mem_reservation_bytes)
POLICY_U64(mem_limit_bytes)
POLICY_U64(cpu_shares)
POLICY_DOUBLE(cpu_reservation)
POLICY_DOUBLE(cpu_limit)

static int balloon_target_get(struct ovc_tun_ctx *c, union ovc_tun_val *out)
{
	struct ovc_balloon_stats st;
	int ret;

	if (!c->vm->balloon) {
		c->why = "the VM has no balloon";
		return -ENODEV;
	}
	ret = ovc_balloon_get_stats(c->vm->balloon, &st);
	if (ret)
		return ret;
	out->u = st.target_pages << OVC_PAGE_SHIFT;
	return 0;
}

static int balloon_target_check(struct ovc_tun_ctx *c, union ovc_tun_val v)
{
	if (!c->vm->balloon) {
		c->why = "the VM has no balloon";
		return -ENODEV;
	}
	if (v.u > __atomic_load_n(&c->vm->ram->total_bytes, __ATOMIC_RELAXED)) {
		c->why = "balloon.target is larger than the VM's RAM";
		return -ERANGE;
	}
	return 0;
}

/*
 * The balloon's lock nests inside the host lock (as in the manager's tick);
 * the first step and the balloon's notify run now, the rest on the ticks.
 */
static int balloon_target_set(struct ovc_tun_ctx *c, union ovc_tun_val v)
{
	return ovc_balloon_set_target(c->vm->balloon, v.u);
}

/*
 * The table. Add a knob here (and nowhere else): the control socket, the
 * "tunables" reply, memctl set and memctl help all read it.
 */
const struct ovc_tunable ovc__tunables[] = {
	{ "mem.shares", OVC_TUN_U64, OVC_TUN_VM, .umin = 1, .umax = OVC_SHARES_MAX,
	  .get = get_mem_shares, .check = stage_mem_shares,
	  .help = "relative claim on host memory (normal 1000)" },
	{ "mem.reservation", OVC_TUN_BYTES, OVC_TUN_VM, .umax = 1ULL << 50,
	  .get = get_mem_reservation_bytes, .check = stage_mem_reservation_bytes,
	  .help = "memory never reclaimed from the VM" },
	{ "mem.limit", OVC_TUN_BYTES, OVC_TUN_VM, .umax = 1ULL << 50,
	  .get = get_mem_limit_bytes, .check = stage_mem_limit_bytes,
	  .help = "most memory the VM may hold resident (0: no limit)" },
	{ "cpu.shares", OVC_TUN_U64, OVC_TUN_VM, .umin = 1, .umax = OVC_SHARES_MAX,
	  .get = get_cpu_shares, .check = stage_cpu_shares,
	  .help = "relative claim on host CPU (normal 1000)" },
	{ "cpu.reservation", OVC_TUN_DOUBLE, OVC_TUN_VM, .dmin = 0, .dmax = 4096,
	  .get = get_cpu_reservation, .check = stage_cpu_reservation,
	  .help = "CPU always available to the VM, in physical CPUs (1.5: one and a half)" },
	{ "cpu.limit", OVC_TUN_DOUBLE, OVC_TUN_VM, .dmin = 0, .dmax = 4096,
	  .get = get_cpu_limit, .check = stage_cpu_limit,
	  .help = "most CPU the VM may use, in physical CPUs (0: no limit)" },
	{ "balloon.target", OVC_TUN_BYTES, OVC_TUN_VM, .umax = 1ULL << 50,
	  .get = balloon_target_get, .check = balloon_target_check, .set = balloon_target_set,
	  .help = "memory the balloon is asked to take from the guest" },
};

const size_t ovc__ntunables = OVC_ARRAY_SIZE(ovc__tunables);

const struct ovc_tunable *ovc__tunable_find(const char *key)
{
	size_t i;

	for (i = 0; i < ovc__ntunables; i++) {
		if (!strcmp(ovc__tunables[i].key, key))
			return &ovc__tunables[i];
	}
	return NULL;
}

const char *ovc__tun_type_name(enum ovc_tun_type t)
{
	switch (t) {
	case OVC_TUN_U64: return "integer";
	case OVC_TUN_BYTES: return "size";
	case OVC_TUN_DOUBLE: return "number";
	case OVC_TUN_BOOL: return "boolean";
	}
	return "unknown";
}
