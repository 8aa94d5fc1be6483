// SPDX-License-Identifier: MIT
/* host/ctl.c: the control socket: a UNIX socket speaking one JSON object per line. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include <ovc/ctl.h>
#include <ovc/export.h>
#include "host/ctl-internal.h"
#include "host/host-internal.h"

/* Requests: one table, each with the fields it accepts beside "id" and "req". */

struct reply {
	json_t *o;		/* the reply object being built */
	const char *code;	/* set on failure */
	char msg[256];
};

typedef int (*req_fn)(struct ovc_host *host, json_t *req, struct reply *r);

OVC_PRINTF(3, 4)
static int fail(struct reply *r, const char *code, const char *fmt, ...)
{
	va_list ap;

	r->code = code;
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
	return -1;
}

static json_t *ju(uint64_t v)
{
	return json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* An optional string field; -1 (reply filled) when present but not a string. */
static int opt_string(json_t *req, const char *key, const char **out, struct reply *r)
{
	json_t *v = json_object_get(req, key);

	*out = NULL;
	if (!v)
		return 0;
	if (!json_is_string(v))
		return fail(r, "bad-type", "\"%s\" must be a string", key);
	*out = json_string_value(v);
	return 0;
}

/* Called with host->lock held. */
static struct ovc_vm *find_vm_locked(struct ovc_host *host, const char *name)
{
	struct ovc_vm *vm;

	cds_list_for_each_entry(vm, &host->vms, node) {
		if (!strcmp(vm->name, name))
			return vm;
	}
	return NULL;
}

static json_t *host_mem_json(const struct ovc_host_mem_snap *h)
{
	json_t *o = json_object();

	json_object_set_new(o, "total_bytes", ju(h->total_bytes));
	json_object_set_new(o, "free_bytes", ju(h->free_bytes));
	json_object_set_new(o, "available_bytes", ju(h->available_bytes));
	json_object_set_new(o, "swap_total_bytes", ju(h->swap_total_bytes));
	json_object_set_new(o, "swap_free_bytes", ju(h->swap_free_bytes));
	json_object_set_new(o, "state", json_string(ovc__mem_state_name(ovc__mem_state(h))));
	if (h->psi_valid)
		json_object_set_new(o, "psi_some_avg10", json_real(h->psi_some_avg10));
	return o;
}

static int req_status(struct ovc_host *host, json_t *req, struct reply *r)
{
	const struct ovc_stats_snapshot *s;
	struct ovc_host_mem_snap mem;
	uint64_t sums[OVC_PAGE_NR_STATES] = { 0 }, ram = 0, host_bytes = 0;
	double used = 0;
	unsigned int i, k, nvcpus = 0;
	json_t *t;

	json_object_set_new(r->o, "protocol", json_integer(OVC_CTL_PROTOCOL));
	json_object_set_new(r->o, "ticks", ju(ovc_host_ticks(host)));
	json_object_set_new(r->o, "ncpus", json_integer(host->ncpus));
	json_object_set_new(r->o, "nvms", json_integer(ovc_host_vm_count(host)));
	s = ovc_stats_read_lock(host);
	if (s) {
		mem = s->host;
		json_object_set_new(r->o, "seq", ju(s->seq));
		json_object_set_new(r->o, "interval_ns", ju(s->interval_ns));
		for (i = 0; i < s->nvms; i++) {
			for (k = 0; k < OVC_PAGE_NR_STATES; k++)
				sums[k] += s->vms[i].mem.pages[k];
			ram += s->vms[i].mem.ram_bytes;
			host_bytes += s->vms[i].mem.host_bytes;
			nvcpus += s->vms[i].nvcpus;
			used += s->vms[i].used_pct;
		}
	}
	ovc_stats_read_unlock(host);
	/* Before the first tick the host's memory is read now. */
	if (!s && ovc_host_read_meminfo(&mem))
		memset(&mem, 0, sizeof(mem));
	if (!s)
		json_object_set_new(r->o, "seq", json_integer(0));
	json_object_set_new(r->o, "host", host_mem_json(&mem));
	t = json_object();
	json_object_set_new(t, "ram_bytes", ju(ram));
	json_object_set_new(t, "host_bytes", ju(host_bytes));
	for (k = 0; k < OVC_PAGE_NR_STATES; k++) {
		char key[32];

		snprintf(key, sizeof(key), "%s_bytes", ovc_page_state_name((int)k));
		json_object_set_new(t, key, ju(sums[k] << OVC_PAGE_SHIFT));
	}
	json_object_set_new(t, "vcpus", json_integer(nvcpus));
	json_object_set_new(t, "used_pct", json_real(used));
	json_object_set_new(r->o, "vms_total", t);
	return 0;
}

static json_t *vm_row(const struct ovc_vm_snap *v)
{
	json_t *o = json_object();

	json_object_set_new(o, "name", json_string(v->name));
	json_object_set_new(o, "id", ju(v->id));
	json_object_set_new(o, "ram_bytes", ju(v->mem.ram_bytes));
	json_object_set_new(o, "resident_bytes", ju(v->mem.pages[OVC_PAGE_RESIDENT] << OVC_PAGE_SHIFT));
	json_object_set_new(o, "zero_bytes", ju(v->mem.pages[OVC_PAGE_ZERO] << OVC_PAGE_SHIFT));
	json_object_set_new(o, "ballooned_bytes", ju(v->mem.pages[OVC_PAGE_BALLOONED] << OVC_PAGE_SHIFT));
	json_object_set_new(o, "shared_bytes", ju(v->mem.pages[OVC_PAGE_SHARED] << OVC_PAGE_SHIFT));
	json_object_set_new(o, "compressed_bytes", ju(v->mem.pages[OVC_PAGE_COMPRESSED] << OVC_PAGE_SHIFT));
	json_object_set_new(o, "swapped_bytes", ju(v->mem.pages[OVC_PAGE_SWAPPED] << OVC_PAGE_SHIFT));
	json_object_set_new(o, "wss_bytes", v->wss.valid ? ju(v->wss.active_bytes) : json_null());
	json_object_set_new(o, "mem_target_bytes", ju(v->targets.mem_target_bytes));
	json_object_set_new(o, "balloon_target_bytes",
			    v->has_balloon ? ju(v->balloon.target_pages << OVC_PAGE_SHIFT) : json_null());
	json_object_set_new(o, "vcpus", json_integer(v->nvcpus));
	json_object_set_new(o, "faults_per_sec", json_real(v->faults_per_sec));
	json_object_set_new(o, "used_pct", json_real(v->used_pct));
	json_object_set_new(o, "rdy_pct", json_real(v->rdy_pct));
	return o;
}

static int req_vm_list(struct ovc_host *host, json_t *req, struct reply *r)
{
	const struct ovc_stats_snapshot *s;
	json_t *vms = json_array();
	unsigned int i;

	s = ovc_stats_read_lock(host);
	if (s) {
		for (i = 0; i < s->nvms; i++)
			json_array_append_new(vms, vm_row(&s->vms[i]));
		json_object_set_new(r->o, "seq", ju(s->seq));
	}
	ovc_stats_read_unlock(host);
	if (!s) {
		json_decref(vms);
		return fail(r, "unavailable", "no statistics yet (the host has not ticked)");
	}
	json_object_set_new(r->o, "vms", vms);
	return 0;
}

static json_t *tun_json(const struct ovc_tunable *t, union ovc_tun_val v)
{
	switch (t->type) {
	case OVC_TUN_U64:
	case OVC_TUN_BYTES:
		return ju(v.u);
	case OVC_TUN_DOUBLE:
		return json_real(v.d);
	case OVC_TUN_BOOL:
		return json_boolean(v.b);
	}
	return json_null();
}

/* Every knob of @scope @vm has, into @out. Called with host->lock held. */
static void get_all_locked(struct ovc_host *host, struct ovc_vm *vm, json_t *out)
{
	struct ovc_tun_ctx c = { .host = host, .vm = vm };
	union ovc_tun_val v;
	size_t i;

	for (i = 0; i < ovc__ntunables; i++) {
		const struct ovc_tunable *t = &ovc__tunables[i];

		if ((t->scope == OVC_TUN_VM) != !!vm)
			continue;
		if (!t->get(&c, &v))
			json_object_set_new(out, t->key, tun_json(t, v));
	}
}

static int req_vm_show(struct ovc_host *host, json_t *req, struct reply *r)
{
	const struct ovc_stats_snapshot *s;
	const struct ovc_vm_snap *v;
	struct ovc_vm *vm;
	const char *name;
	json_t *tun;

	if (opt_string(req, "vm", &name, r))
		return -1;
	if (!name)
		return fail(r, "bad-request", "\"vm\" is required");
	tun = json_object();
	pthread_mutex_lock(&host->lock);
	vm = find_vm_locked(host, name);
	if (vm)
		get_all_locked(host, vm, tun);
	pthread_mutex_unlock(&host->lock);
	if (!vm) {
		json_decref(tun);
		return fail(r, "unknown-vm", "no VM named '%s'", name);
	}
	json_object_set_new(r->o, "tunables", tun);
	s = ovc_stats_read_lock(host);
	v = s ? ovc_stats_find_vm(s, name) : NULL;
	/* A VM younger than the last tick has no statistics yet. */
	json_object_set_new(r->o, "vm", v ? ovc__vm_snap_json(v) : json_null());
	ovc_stats_read_unlock(host);
	return 0;
}

/*
 * Resolve "vm" for get/set: the VM for per-VM knobs, none for host-wide.
 * Called with host->lock held; fills @r and returns -1 on error.
 */
static int resolve_vm_locked(struct ovc_host *host, const char *name, struct ovc_vm **vm,
			     struct reply *r)
{
	*vm = NULL;
	if (!name)
		return 0;
	*vm = find_vm_locked(host, name);
	if (!*vm)
		return fail(r, "unknown-vm", "no VM named '%s'", name);
	return 0;
}

static int scope_ok(const struct ovc_tunable *t, struct ovc_vm *vm, struct reply *r)
{
	if (t->scope == OVC_TUN_VM && !vm)
		return fail(r, "bad-request", "%s is per VM: name the VM with \"vm\"", t->key);
	if (t->scope == OVC_TUN_HOST && vm)
		return fail(r, "bad-request", "%s is host-wide: give no \"vm\"", t->key);
	return 0;
}

static int errno_fail(struct reply *r, const struct ovc_tunable *t, int err, const char *why)
{
	if (err == -ENODEV)
		return fail(r, "unavailable", "%s: %s", t->key, why ? why : "not available");
	if (err == -ENOMEM)
		return fail(r, "internal", "%s: out of memory", t->key);
	return fail(r, "refused", "%s: %s", t->key, why ? why : strerror(-err));
}

static int req_get(struct ovc_host *host, json_t *req, struct reply *r)
{
	json_t *keys = json_object_get(req, "keys"), *vals, *k;
	struct ovc_tun_ctx c = { .host = host };
	const char *name;
	union ovc_tun_val v;
	size_t i;
	int ret = 0;

	if (opt_string(req, "vm", &name, r))
		return -1;
	if (keys && !json_is_array(keys))
		return fail(r, "bad-type", "\"keys\" must be an array of strings");
	json_array_foreach(keys, i, k) {
		if (!json_is_string(k))
			return fail(r, "bad-type", "\"keys\" must be an array of strings");
		if (!ovc__tunable_find(json_string_value(k)))
			return fail(r, "unknown-key", "no tunable '%s' (see \"tunables\")",
				    json_string_value(k));
	}
	vals = json_object();
	pthread_mutex_lock(&host->lock);
	if (resolve_vm_locked(host, name, &c.vm, r)) {
		ret = -1;
		goto out;
	}
	if (!keys) {
		get_all_locked(host, c.vm, vals);
		goto out;
	}
	json_array_foreach(keys, i, k) {
		const struct ovc_tunable *t = ovc__tunable_find(json_string_value(k));
		int err;

		if (scope_ok(t, c.vm, r)) {
			ret = -1;
			goto out;
		}
		c.why = NULL;
		err = t->get(&c, &v);
		if (err) {
			ret = errno_fail(r, t, err, c.why);
			goto out;
		}
		json_object_set_new(vals, t->key, tun_json(t, v));
	}
out:
	pthread_mutex_unlock(&host->lock);
	if (ret)
		json_decref(vals);
	else
		json_object_set_new(r->o, "values", vals);
	return ret;
}

/* A JSON value as knob @t's type, range-checked. */
static int parse_value(const struct ovc_tunable *t, json_t *j, union ovc_tun_val *v,
		       struct reply *r)
{
	switch (t->type) {
	case OVC_TUN_U64:
	case OVC_TUN_BYTES:
		if (json_is_integer(j)) {
			if (json_integer_value(j) < 0)
				return fail(r, "out-of-range", "%s must be %llu-%llu (got %lld)", t->key,
					    (unsigned long long)t->umin, (unsigned long long)t->umax,
					    (long long)json_integer_value(j));
			v->u = (uint64_t)json_integer_value(j);
		} else if (t->type == OVC_TUN_BYTES && json_is_string(j)) {
			if (ovc_size_parse(json_string_value(j), &v->u))
				return fail(r, "bad-type", "%s: '%.64s' is not a size (e.g. 512M, 1.5G)",
					    t->key, json_string_value(j));
		} else {
			return fail(r, "bad-type", "%s wants %s", t->key,
				    t->type == OVC_TUN_BYTES ? "a size (bytes or \"512M\")" :
				    "an integer");
		}
		if (v->u < t->umin || v->u > t->umax)
			return fail(r, "out-of-range", "%s must be %llu-%llu (got %llu)", t->key,
				    (unsigned long long)t->umin, (unsigned long long)t->umax,
				    (unsigned long long)v->u);
		return 0;
	case OVC_TUN_DOUBLE:
		if (!json_is_number(j))
			return fail(r, "bad-type", "%s wants a number", t->key);
		v->d = json_number_value(j);
		if (!isfinite(v->d) || v->d < t->dmin || v->d > t->dmax)
			return fail(r, "out-of-range", "%s must be %g-%g (got %g)", t->key,
				    t->dmin, t->dmax, v->d);
		return 0;
	case OVC_TUN_BOOL:
		if (!json_is_boolean(j))
			return fail(r, "bad-type", "%s wants true or false", t->key);
		v->b = json_is_true(j);
		return 0;
	}
	return fail(r, "internal", "%s: unknown type", t->key);
}

#define SET_MAX_KEYS 32

static int req_set(struct ovc_host *host, json_t *req, struct reply *r)
{
	json_t *values = json_object_get(req, "values"), *j, *out;
	const struct ovc_tunable *keys[SET_MAX_KEYS];
	union ovc_tun_val vals[SET_MAX_KEYS];
	struct ovc_tun_ctx c = { .host = host };
	const char *name, *key, *why;
	unsigned int n = 0, i;
	int ret = -1, err;

	if (opt_string(req, "vm", &name, r))
		return -1;
	if (!values)
		return fail(r, "bad-request", "\"values\" is required: {\"key\": value, ...}");
	if (!json_is_object(values))
		return fail(r, "bad-type", "\"values\" must be an object of key: value");
	if (json_object_size(values) == 0)
		return fail(r, "bad-request", "\"values\" is empty");
	if (json_object_size(values) > SET_MAX_KEYS)
		return fail(r, "bad-request", "at most %d keys per request", SET_MAX_KEYS);
	/* Types and ranges first: nothing is locked, nothing changes. */
	json_object_foreach(values, key, j) {
		keys[n] = ovc__tunable_find(key);
		if (!keys[n])
			return fail(r, "unknown-key", "no tunable '%.64s' (see \"tunables\")", key);
		if (parse_value(keys[n], j, &vals[n], r))
			return -1;
		n++;
	}
	pthread_mutex_lock(&host->lock);
	if (resolve_vm_locked(host, name, &c.vm, r))
		goto out;
	if (c.vm)
		c.policy = c.vm->policy;
	for (i = 0; i < n; i++) {
		if (scope_ok(keys[i], c.vm, r))
			goto out;
		c.why = NULL;
		err = keys[i]->check ? keys[i]->check(&c, vals[i]) : 0;
		if (err) {
			errno_fail(r, keys[i], err, c.why);
			goto out;
		}
	}
	if (c.policy_dirty) {
		/* ovc_vm_set_policy() under the lock we hold: checked and admitted. */
		if (ovc__vm_set_policy_locked(c.vm, &c.policy, &why)) {
			fail(r, "refused", "%s", why);
			goto out;
		}
		ovc__info(&host->log, "vm %s: policy changed through the control socket", c.vm->name);
	}
	for (i = 0; i < n; i++) {
		if (!keys[i]->set)
			continue;
		c.why = NULL;
		err = keys[i]->set(&c, vals[i]);
		if (err) {
			/* Checked above: a setter failing now is the mechanism's own refusal. */
			errno_fail(r, keys[i], err, c.why);
			goto out;
		}
	}
	out = json_object();
	for (i = 0; i < n; i++) {
		union ovc_tun_val now;

		c.why = NULL;
		if (!keys[i]->get(&c, &now))
			json_object_set_new(out, keys[i]->key, tun_json(keys[i], now));
	}
	json_object_set_new(r->o, "values", out);
	ret = 0;
out:
	pthread_mutex_unlock(&host->lock);
	return ret;
}

static int req_tunables(struct ovc_host *host, json_t *req, struct reply *r)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < ovc__ntunables; i++) {
		const struct ovc_tunable *t = &ovc__tunables[i];
		json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "key", t->key,
				      "type", ovc__tun_type_name(t->type),
				      "scope", t->scope == OVC_TUN_VM ? "vm" : "host",
				      "help", t->help);

		if (t->type == OVC_TUN_U64 || t->type == OVC_TUN_BYTES) {
			json_object_set_new(o, "min", ju(t->umin));
			json_object_set_new(o, "max", ju(t->umax));
		} else if (t->type == OVC_TUN_DOUBLE) {
			json_object_set_new(o, "min", json_real(t->dmin));
			json_object_set_new(o, "max", json_real(t->dmax));
		}
		json_array_append_new(a, o);
	}
	json_object_set_new(r->o, "tunables", a);
	return 0;
}

static int req_stats(struct ovc_host *host, json_t *req, struct reply *r)
{
	const struct ovc_stats_snapshot *s;
	const char *name;
	json_t *o = NULL;
	int err = 0;

	if (opt_string(req, "vm", &name, r))
		return -1;
	s = ovc_stats_read_lock(host);
	if (s) {
		o = ovc__stats_json(s, name);
		err = o ? 0 : errno;
	}
	ovc_stats_read_unlock(host);
	if (!s)
		return fail(r, "unavailable", "no statistics yet (the host has not ticked)");
	if (err == ENOENT)
		return fail(r, "unknown-vm", "no VM named '%s' in the last snapshot", name);
	if (!o)
		return fail(r, "internal", "out of memory");
	json_object_set_new(r->o, "stats", o);
	return 0;
}

static int req_metrics(struct ovc_host *host, json_t *req, struct reply *r)
{
	const struct ovc_stats_snapshot *s;
	char *text = NULL;
	size_t len = 0;

	s = ovc_stats_read_lock(host);
	if (s)
		text = ovc_stats_format_prometheus(s, &len);
	ovc_stats_read_unlock(host);
	if (!s)
		return fail(r, "unavailable", "no statistics yet (the host has not ticked)");
	if (!text)
		return fail(r, "internal", "out of memory");
	json_object_set_new(r->o, "text", json_stringn(text, len));
	free(text);
	return 0;
}

static int req_requests(struct ovc_host *host, json_t *req, struct reply *r);

static const struct {
	const char *name;
	req_fn fn;
	const char *args[3];	/* fields accepted besides "id" and "req" */
	const char *help;
} requests[] = {
	{ "status", req_status, { NULL }, "the host: memory, its state, totals over the VMs" },
	{ "vm.list", req_vm_list, { NULL }, "one summary row per VM" },
	{ "vm.show", req_vm_show, { "vm" }, "one VM: its statistics and its tunables" },
	{ "get", req_get, { "vm", "keys" }, "tunables' values (all of the VM's, or \"keys\")" },
	{ "set", req_set, { "vm", "values" }, "change tunables, all or none" },
	{ "tunables", req_tunables, { NULL }, "every tunable: key, type, range, help" },
	{ "stats", req_stats, { "vm" }, "the last statistics snapshot (one VM's with \"vm\")" },
	{ "metrics", req_metrics, { NULL }, "the snapshot in Prometheus text format" },
	{ "requests", req_requests, { NULL }, "this list" },
};

static int req_requests(struct ovc_host *host, json_t *req, struct reply *r)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < OVC_ARRAY_SIZE(requests); i++)
		json_array_append_new(a, json_pack("{s:s,s:s}", "req", requests[i].name,
						   "help", requests[i].help));
	json_object_set_new(r->o, "requests", a);
	return 0;
}

static int check_fields(json_t *req, size_t which, struct reply *r)
{
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach(req, key, v) {
		bool ok = !strcmp(key, "id") || !strcmp(key, "req");

		for (i = 0; !ok && i < OVC_ARRAY_SIZE(requests[which].args) &&
			    requests[which].args[i]; i++)
			ok = !strcmp(key, requests[which].args[i]);
		if (!ok)
			return fail(r, "bad-request", "\"%s\" takes no field \"%.64s\"",
				    requests[which].name, key);
	}
	return 0;
}

static json_t *dispatch(struct ovc_host *host, const char *line, size_t len)
{
	struct reply r = { .o = json_object() };
	json_error_t jerr;
	json_t *req, *id = NULL, *name;
	size_t i;

	if (!r.o)
		return NULL;
	/* "ok" first: a reader sees how it went before the rest. */
	json_object_set_new(r.o, "ok", json_true());
	req = json_loadb(line, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (!req) {
		fail(&r, "bad-json", "not JSON: %s at column %d", jerr.text, jerr.column);
		goto out;
	}
	if (!json_is_object(req)) {
		fail(&r, "bad-request", "a request is a JSON object: {\"req\": \"status\"}");
		goto out;
	}
	id = json_object_get(req, "id");
	if (id)
		json_object_set(r.o, "id", id);
	name = json_object_get(req, "req");
	if (!name || !json_is_string(name)) {
		fail(&r, "bad-request", "\"req\" must name a request (see \"requests\")");
		goto out;
	}
	for (i = 0; i < OVC_ARRAY_SIZE(requests); i++) {
		if (!strcmp(requests[i].name, json_string_value(name)))
			break;
	}
	if (i == OVC_ARRAY_SIZE(requests)) {
		fail(&r, "unknown-request", "no request '%.64s' (see \"requests\")",
		     json_string_value(name));
		goto out;
	}
	if (check_fields(req, i, &r))
		goto out;
	requests[i].fn(host, req, &r);
out:
	json_decref(req);
	if (r.code) {
		/* A failed handler's partial reply goes; only id and the error stay. */
		json_t *e = json_object();

		json_object_set_new(e, "ok", json_false());
		if (id)
			json_object_set(e, "id", id);
		json_object_set_new(e, "error", json_pack("{s:s,s:s}", "code", r.code,
							  "message", r.msg));
		json_decref(r.o);
		return e;
	}
	return r.o;
}

char *ovc__ctl_handle(struct ovc_host *host, const char *line, size_t len)
{
	json_t *o = dispatch(host, line, len);
	char *s;

	if (!o)
		return NULL;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

/* The server. */

struct client {
	int fd;
	char *in;		/* cfg.max_line bytes */
	size_t inlen;
	char *out;		/* replies not yet sent */
	size_t outlen, outoff, outcap;
	uint64_t last_ns;	/* last complete request or reply progress */
	bool closing;		/* close once @out is sent */
};

struct ovc_ctl {
	struct ovc_host *host;
	struct ovc_ctl_config cfg;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;		/* of the socket we bound, to remove only ours */
	ino_t ino;
	int lfd;
	int wake_fd;		/* eventfd: stop */
	pthread_t thread;
	struct client *clients;	/* cfg.max_clients slots, fd -1 when free */
	unsigned int nclients;
	uint64_t accept_after_ns;	/* out of fds: stop accepting until then */
	bool made_dir;			/* we made the socket's directory: remove it too */
};

OVC_EXPORT void ovc_ctl_config_init(struct ovc_ctl_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_clients = 32;
	cfg->max_line = 64 * 1024;
	cfg->max_output = 8 * 1024 * 1024;
	cfg->idle_ms = 300000;
}

static void client_close(struct ovc_ctl *ctl, struct client *c)
{
	close(c->fd);
	c->fd = -1;
	free(c->out);
	c->out = NULL;
	c->inlen = c->outlen = c->outoff = c->outcap = 0;
	c->closing = false;
	ctl->nclients--;
}

/* Queue @len bytes and a newline. Return -1 when the client holds too much unread. */
static int client_queue(struct ovc_ctl *ctl, struct client *c, const char *s, size_t len)
{
	size_t pending = c->outlen - c->outoff, need = pending + len + 1;

	if (need > ctl->cfg.max_output)
		return -1;
	if (c->outoff) {
		memmove(c->out, c->out + c->outoff, pending);
		c->outlen = pending;
		c->outoff = 0;
	}
	if (need > c->outcap) {
		size_t cap = c->outcap ? c->outcap : 4096;
		char *p;

		while (cap < need)
			cap *= 2;
		p = realloc(c->out, cap);
		if (!p)
			return -1;
		c->out = p;
		c->outcap = cap;
	}
	memcpy(c->out + c->outlen, s, len);
	c->out[c->outlen + len] = '\n';
	c->outlen += len + 1;
	return 0;
}

static const char *const oom_reply =
	"{\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";

static int client_request(struct ovc_ctl *ctl, struct client *c, char *line, size_t len)
{
	char *reply;
	int ret;

	if (len && line[len - 1] == '\r')
		len--;
	if (!len)
		return 0;	/* blank lines are allowed between requests */
	reply = ovc__ctl_handle(ctl->host, line, len);
	ret = reply ? client_queue(ctl, c, reply, strlen(reply)) :
		      client_queue(ctl, c, oom_reply, strlen(oom_reply));
	free(reply);
	c->last_ns = ovc__now_ns();
	return ret;
}

/* One-line error and close after it is sent (connection-level refusals). */
static void client_refuse(struct ovc_ctl *ctl, struct client *c, const char *code, const char *msg)
{
	char buf[256];
	int n;

	n = snprintf(buf, sizeof(buf), "{\"ok\":false,\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
		     code, msg);
	c->closing = true;
	c->inlen = 0;
	if (client_queue(ctl, c, buf, (size_t)n))
		client_close(ctl, c);
}

static void client_read(struct ovc_ctl *ctl, struct client *c)
{
	size_t start, i;
	ssize_t n;
	bool eof = false;

	n = recv(c->fd, c->in + c->inlen, ctl->cfg.max_line - c->inlen, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		client_close(ctl, c);
		return;
	}
	if (n == 0)
		eof = true;
	c->inlen += (size_t)n;
	start = 0;
	for (i = c->inlen - (size_t)n; i < c->inlen; i++) {
		if (c->in[i] != '\n')
			continue;
		if (client_request(ctl, c, c->in + start, i - start)) {
			client_close(ctl, c);
			return;
		}
		start = i + 1;
	}
	memmove(c->in, c->in + start, c->inlen - start);
	c->inlen -= start;
	if (eof) {
		/* A last request without its newline still counts. */
		if (c->inlen && client_request(ctl, c, c->in, c->inlen)) {
			client_close(ctl, c);
			return;
		}
		c->inlen = 0;
		c->closing = true;
	} else if (c->inlen == ctl->cfg.max_line) {
		char msg[96];

		snprintf(msg, sizeof(msg), "request line longer than %zu bytes", ctl->cfg.max_line);
		client_refuse(ctl, c, "line-too-long", msg);
	}
}

static void client_write(struct ovc_ctl *ctl, struct client *c)
{
	ssize_t n;

	while (c->outoff < c->outlen) {
		n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			client_close(ctl, c);
			return;
		}
		c->outoff += (size_t)n;
		c->last_ns = ovc__now_ns();
	}
	c->outoff = c->outlen = 0;
	if (c->closing)
		client_close(ctl, c);
}

static bool peer_allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
		return false;
	return cred.uid == 0 || cred.uid == geteuid();
}

static void accept_clients(struct ovc_ctl *ctl)
{
	struct client *c = NULL;
	unsigned int i;
	int fd;

	for (;;) {
		fd = accept4(ctl->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			/* The connection stays queued: poll would wake at once, forever. */
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				ovc__warn(&ctl->host->log, "ctl: cannot accept: %s", strerror(errno));
				ctl->accept_after_ns = ovc__now_ns() + 100000000ULL;
			}
			return;
		}
		for (i = 0; i < ctl->cfg.max_clients; i++) {
			if (ctl->clients[i].fd < 0) {
				c = &ctl->clients[i];
				break;
			}
		}
		if (i == ctl->cfg.max_clients) {
			static const char busy[] = "{\"ok\":false,\"error\":{\"code\":\"busy\","
				"\"message\":\"too many clients connected\"}}\n";

			/* Best effort: one line into an empty socket buffer never blocks. */
			if (send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
				/* the client will see the close */
			}
			close(fd);
			ovc__warn(&ctl->host->log, "ctl: refused a client: %u connected",
				  ctl->nclients);
			continue;
		}
		c->fd = fd;
		c->inlen = c->outlen = c->outoff = 0;
		c->closing = false;
		c->last_ns = ovc__now_ns();
		ctl->nclients++;
		if (!peer_allowed(fd)) {
			ovc__warn(&ctl->host->log, "ctl: refused a client of another user");
			client_refuse(ctl, c, "denied", "only the host's user and root may connect");
		}
	}
}

static void *ctl_thread(void *arg)
{
	struct ovc_ctl *ctl = arg;
	unsigned int max = ctl->cfg.max_clients, i, n;
	struct pollfd *p = calloc(max + 2, sizeof(*p));
	unsigned int *slot = calloc(max, sizeof(*slot));

	ovc_thread_register();
	for (;;) {
		uint64_t now, idle = (uint64_t)ctl->cfg.idle_ms * 1000000ULL;

		if (!p || !slot) {
			/* Out of memory at start: serve nothing until stopped. */
			struct pollfd w = { .fd = ctl->wake_fd, .events = POLLIN };

			poll(&w, 1, -1);
			break;
		}
		p[0] = (struct pollfd){ .fd = ctl->wake_fd, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = ctl->lfd,
					.events = ovc__now_ns() >= ctl->accept_after_ns ? POLLIN : 0 };
		n = 2;
		for (i = 0; i < max; i++) {
			struct client *c = &ctl->clients[i];

			if (c->fd < 0)
				continue;
			p[n].fd = c->fd;
			p[n].events = (c->closing ? 0 : POLLIN) |
				      (c->outlen > c->outoff ? POLLOUT : 0);
			p[n].revents = 0;
			slot[n - 2] = i;
			n++;
		}
		if (poll(p, n, 100) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break;
		for (i = 2; i < n; i++) {
			struct client *c = &ctl->clients[slot[i - 2]];

			if (c->fd != p[i].fd)
				continue;
			if (p[i].revents & POLLIN)
				client_read(ctl, c);
			if (c->fd >= 0 && (p[i].revents & POLLOUT))
				client_write(ctl, c);
			if (c->fd >= 0 && (p[i].revents & (POLLERR | POLLHUP | POLLNVAL)) &&
			    !(p[i].revents & POLLIN))
				client_close(ctl, c);
			/* A reply queued by this read goes out now if the socket takes it. */
			if (c->fd >= 0 && c->outlen > c->outoff)
				client_write(ctl, c);
			else if (c->fd >= 0 && c->closing && c->outlen == c->outoff)
				client_close(ctl, c);
		}
		if (p[1].revents & POLLIN)
			accept_clients(ctl);
		now = ovc__now_ns();
		for (i = 0; i < max; i++) {
			struct client *c = &ctl->clients[i];

			if (c->fd >= 0 && now - c->last_ns > idle) {
				ovc__info(&ctl->host->log, "ctl: dropped a client idle or not reading for %u ms",
					  ctl->cfg.idle_ms);
				client_close(ctl, c);
			}
		}
	}
	for (i = 0; i < max; i++) {
		if (ctl->clients[i].fd >= 0)
			client_close(ctl, &ctl->clients[i]);
	}
	free(p);
	free(slot);
	ovc_thread_unregister();
	return NULL;
}

/* @path's directory into @dir; false for none ("sock", "/sock"). */
static bool parent_of(const char *path, char *dir, size_t len)
{
	char *slash;

	snprintf(dir, len, "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return false;
	*slash = '\0';
	return true;
}

/* Make @path's parent directory if it is missing (one level, mode 0700). */
static int make_parent(struct ovc_ctl *ctl)
{
	char dir[sizeof(ctl->path)];

	if (!parent_of(ctl->path, dir, sizeof(dir)))
		return 0;
	if (!mkdir(dir, 0700))
		ctl->made_dir = true;
	else if (errno != EEXIST)
		return -errno;
	return 0;
}

/* Undo make_parent(): only an empty directory of our own goes. */
static void remove_parent(struct ovc_ctl *ctl)
{
	char dir[sizeof(ctl->path)];

	if (ctl->made_dir && parent_of(ctl->path, dir, sizeof(dir)))
		rmdir(dir);
}

/* Bind @path, replacing a stale socket nobody listens on. */
static int bind_socket(struct ovc_ctl *ctl, struct sockaddr_un *sa)
{
	struct stat st;
	int fd, ret;

	ret = make_parent(ctl);
	if (ret)
		return ret;
	if (!lstat(ctl->path, &st)) {
		if (!S_ISSOCK(st.st_mode))
			return -EEXIST;
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		ret = connect(fd, (struct sockaddr *)sa, sizeof(*sa));
		close(fd);
		if (!ret)
			return -EADDRINUSE;
		unlink(ctl->path);
	}
	ctl->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (ctl->lfd < 0)
		return -errno;
	if (bind(ctl->lfd, (struct sockaddr *)sa, sizeof(*sa))) {
		ret = -errno;
		goto err_close;
	}
	/* No listen() yet: until the mode is 0600 every connect is refused. */
	if (chmod(ctl->path, 0600) || lstat(ctl->path, &st)) {
		ret = -errno;
		goto err_unlink;
	}
	ctl->dev = st.st_dev;
	ctl->ino = st.st_ino;
	if (listen(ctl->lfd, 64)) {
		ret = -errno;
		goto err_unlink;
	}
	return 0;

err_unlink:
	unlink(ctl->path);
err_close:
	close(ctl->lfd);
	ctl->lfd = -1;
	remove_parent(ctl);
	return ret;
}

OVC_EXPORT struct ovc_ctl *ovc_ctl_start(struct ovc_host *host, const char *path,
					 const struct ovc_ctl_config *cfg)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ovc_ctl *ctl;
	unsigned int i;
	int ret;

	if (!host || !path || !*path) {
		errno = EINVAL;
		return NULL;
	}
	if (strlen(path) >= sizeof(sa.sun_path)) {
		ovc__err(&host->log, "ctl: socket path longer than %zu bytes", sizeof(sa.sun_path) - 1);
		errno = ENAMETOOLONG;
		return NULL;
	}
	ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return NULL;
	ctl->host = host;
	ctl->lfd = -1;
	if (cfg)
		ctl->cfg = *cfg;
	else
		ovc_ctl_config_init(&ctl->cfg);
	if (!ctl->cfg.max_clients || ctl->cfg.max_clients > 4096 || ctl->cfg.max_line < 64 ||
	    ctl->cfg.max_output < ctl->cfg.max_line || !ctl->cfg.idle_ms) {
		ovc__err(&host->log, "ctl: bad limits");
		ret = EINVAL;
		goto err_free;
	}
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
	memcpy(sa.sun_path, ctl->path, sizeof(sa.sun_path));
	ctl->clients = calloc(ctl->cfg.max_clients, sizeof(*ctl->clients));
	if (!ctl->clients) {
		ret = ENOMEM;
		goto err_free;
	}
	for (i = 0; i < ctl->cfg.max_clients; i++) {
		ctl->clients[i].fd = -1;
		ctl->clients[i].in = malloc(ctl->cfg.max_line);
		if (!ctl->clients[i].in) {
			ret = ENOMEM;
			goto err_free_clients;
		}
	}
	ctl->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ctl->wake_fd < 0) {
		ret = errno;
		goto err_free_clients;
	}
	ret = -bind_socket(ctl, &sa);
	if (ret) {
		ovc__err(&host->log, "ctl: cannot listen on %s: %s", ctl->path, strerror(ret));
		goto err_close_wake;
	}
	ret = pthread_create(&ctl->thread, NULL, ctl_thread, ctl);
	if (ret)
		goto err_close_socket;
	return ctl;

err_close_socket:
	unlink(ctl->path);
	close(ctl->lfd);
	remove_parent(ctl);
err_close_wake:
	close(ctl->wake_fd);
err_free_clients:
	for (i = 0; i < ctl->cfg.max_clients; i++)
		free(ctl->clients[i].in);
	free(ctl->clients);
err_free:
	free(ctl);
	errno = ret;
	return NULL;
}

OVC_EXPORT int ovc_ctl_stop(struct ovc_ctl *ctl)
{
	uint64_t one = 1;
	struct stat st;
	unsigned int i;

	if (!ctl)
		return 0;
	if (write(ctl->wake_fd, &one, sizeof(one)) != sizeof(one))
		OVC_BUG("ctl: cannot wake the control thread");
	pthread_join(ctl->thread, NULL);
	/* Only our own socket: another server may have replaced a path we lost. */
	if (!lstat(ctl->path, &st) && st.st_dev == ctl->dev && st.st_ino == ctl->ino)
		unlink(ctl->path);
	remove_parent(ctl);
	close(ctl->lfd);
	close(ctl->wake_fd);
	for (i = 0; i < ctl->cfg.max_clients; i++)
		free(ctl->clients[i].in);
	free(ctl->clients);
	free(ctl);
	return 0;
}

OVC_EXPORT const char *ovc_ctl_path(const struct ovc_ctl *ctl)
{
	return ctl ? ctl->path : NULL;
}

OVC_EXPORT int ovc_ctl_default_path(char *buf, size_t len, const char *name)
{
	const char *dir = getenv("XDG_RUNTIME_DIR");
	int n;

	if (!buf || !len || !name || !*name || strchr(name, '/'))
		return -EINVAL;
	if (dir && dir[0] == '/')
		n = snprintf(buf, len, "%s/ovc/%s.sock", dir, name);
	else
		n = snprintf(buf, len, "/run/ovc/%s.sock", name);
	if (n < 0 || (size_t)n >= len || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	return 0;
}

OVC_EXPORT int ovc_size_parse(const char *s, uint64_t *out)
{
	char *end;
	double v, mul = 1;

	if (!s || !out || (!(s[0] >= '0' && s[0] <= '9') && s[0] != '.'))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': mul = 1ULL << 10; end++; break;
	case 'm': case 'M': mul = 1ULL << 20; end++; break;
	case 'g': case 'G': mul = 1ULL << 30; end++; break;
	case 't': case 'T': mul = 1ULL << 40; end++; break;
	default: break;
	}
	if (mul > 1 && *end == 'i' && end[1] == 'B')
		end += 2;
	else if (*end == 'B')
		end++;
	if (*end || !isfinite(v) || v < 0 || v * mul >= 18446744073709551615.0)
		return -EINVAL;
	v *= mul;
	if (v != floor(v))
		return -EINVAL;
	*out = (uint64_t)v;
	return 0;
}

OVC_EXPORT char *ovc_size_format(char *buf, size_t len, uint64_t bytes)
{
	static const char units[] = "KMGTPE";
	double v = (double)bytes;
	int u = -1;

	if (!buf || !len)
		return buf;
	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%llu", (unsigned long long)bytes);
	else if (v >= 100 || v == floor(v))
		snprintf(buf, len, "%.0f%c", v, units[u]);
	else
		snprintf(buf, len, "%.1f%c", v, units[u]);
	return buf;
}
