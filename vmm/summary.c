// SPDX-License-Identifier: MIT
/* vmm/summary.c: what ovc-vmm prints per VM at start and at exit, and the JSON summary. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include <jansson.h>

#include "vmm/vmm.h"

static const char *const state_names[] = {
	[VM_RUNNING] = "running",
	[VM_EXITED] = "exited",
	[VM_CRASHED] = "crashed",
	[VM_SAVED] = "saved",
};

static void fmt_size(uint64_t b, char *buf, size_t len)
{
	if (b >= (1ULL << 30) && b % (1ULL << 30) == 0)
		snprintf(buf, len, "%" PRIu64 "G", b >> 30);
	else
		snprintf(buf, len, "%" PRIu64 "M", b >> 20);
}

void vmm_print_start(struct vmm_vm *vm, FILE *out)
{
	char mem[32];

	fmt_size(vm->spec->mem, mem, sizeof(mem));
	fprintf(out, "vm %s: %s RAM, %u vCPU%s, guest %s%s%s%s, serial %s\n", vm->spec->name,
		mem, vm->spec->vcpus, vm->spec->vcpus > 1 ? "s" : "", vm->spec->guest,
		vm->spec->args[0] ? " (" : "", vm->spec->args, vm->spec->args[0] ? ")" : "",
		vm->serial_path);
}

static uint64_t guest_report(struct vmm_vm *vm, const char *name, bool *found)
{
	unsigned int i;

	for (i = 0; i < vm->nreports; i++) {
		if (!strcmp(vm->reports[i].name, name)) {
			if (found)
				*found = true;
			return vm->reports[i].value;
		}
	}
	return 0;
}

/* A VM passed when its guest exited 0 (or it was saved) and nothing reported lost memory. */
static bool vm_ok(struct vmm_vm *vm)
{
	return (vm->state == VM_EXITED || vm->state == VM_SAVED) && vm->exit_code == 0 &&
	       atomic_load(&vm->corrupt_reports) == 0 && guest_report(vm, "corrupt", NULL) == 0;
}

void vmm_print_result(struct vmm_vm *vm, FILE *out)
{
	double secs = (double)(vm->ended_ns - vm->started_ns) / 1e9;
	struct ovc_mem_stats st;
	uint64_t faults = 0;
	int k;

	ovc_vm_get_mem_stats(vm->ovc, &st);
	for (k = 0; k < OVC_FAULT_NR_KINDS; k++)
		faults += st.faults[k];
	fprintf(out, "vm %s: %s: %s after %.1f s; %" PRIu64 " corruptions reported, %" PRIu64
		" faults served", vm->spec->name, vm_ok(vm) ? "ok" : "FAILED", vm->why, secs,
		atomic_load(&vm->corrupt_reports), faults);
	if (vm->chaos)
		fprintf(out, ", %" PRIu64 " chaos transitions", vm->chaos_res.transitions);
	fprintf(out, "\n");
	if (vm->nreports) {
		unsigned int i;

		fprintf(out, "vm %s: guest:", vm->spec->name);
		for (i = 0; i < vm->nreports; i++)
			fprintf(out, " %s=%" PRIu64, vm->reports[i].name, vm->reports[i].value);
		fprintf(out, "\n");
	}
}

bool vmm_vm_ok(struct vmm_vm *vm)
{
	return vm_ok(vm);
}

static json_t *mem_json(struct vmm_vm *vm)
{
	json_t *o = json_object(), *pages = json_object(), *faults = json_object();
	struct ovc_mem_stats st;
	int k;

	ovc_vm_get_mem_stats(vm->ovc, &st);
	for (k = 0; k < OVC_PAGE_NR_STATES; k++)
		json_object_set_new(pages, ovc_page_state_name(k), json_integer((json_int_t)st.pages[k]));
	for (k = 0; k < OVC_FAULT_NR_KINDS; k++)
		json_object_set_new(faults, ovc_fault_kind_name(k), json_integer((json_int_t)st.faults[k]));
	json_object_set_new(o, "pages", pages);
	json_object_set_new(o, "faults", faults);
	json_object_set_new(o, "fault_p50_ns",
			    json_integer((json_int_t)ovc_mem_stats_fault_quantile_ns(&st, 0.5)));
	json_object_set_new(o, "fault_p99_ns",
			    json_integer((json_int_t)ovc_mem_stats_fault_quantile_ns(&st, 0.99)));
	json_object_set_new(o, "transitions_committed",
			    json_integer((json_int_t)st.transitions_committed));
	json_object_set_new(o, "transitions_aborted",
			    json_integer((json_int_t)st.transitions_aborted));
	json_object_set_new(o, "store_errors", json_integer((json_int_t)st.store_errors));
	json_object_set_new(o, "host_bytes", json_integer((json_int_t)st.host_bytes));
	return o;
}

static json_t *devices_json(struct vmm_vm *vm)
{
	json_t *arr = json_array();
	unsigned int i;

	for (i = 0; i < vm->ndevs; i++) {
		struct vmm_virtio *dev = &vm->devs[i];
		json_t *d = json_object(), *t = json_object();
		struct ovc_virtio_stats st;

		vmm_virtio_stats(dev, &st);
#define STAT(f) json_object_set_new(t, #f, json_integer((json_int_t)st.f))
		STAT(bad_register_access);
		STAT(bad_status);
		STAT(features_refused);
		STAT(bad_queue_config);
		STAT(bad_avail_idx);
		STAT(bad_desc_index);
		STAT(chain_loop);
		STAT(chain_too_long);
		STAT(desc_out_of_ram);
		STAT(desc_straddle);
		STAT(bad_chain);
		STAT(bad_indirect);
		STAT(queue_broken);
		STAT(notifies);
		STAT(notifies_ignored);
		STAT(interrupts);
		STAT(interrupts_suppressed);
		STAT(resets);
#undef STAT
		json_object_set_new(d, "kind", json_string(dev->kind));
		json_object_set_new(d, "gpa", json_integer((json_int_t)dev->gpa));
		json_object_set_new(d, "irq_pin", json_integer(dev->pin));
		json_object_set_new(d, "bytes", json_integer((json_int_t)dev->bytes));
		json_object_set_new(d, "transport", t);
		json_array_append_new(arr, d);
	}
	return arr;
}

static json_t *balloon_json(struct ovc_balloon *b)
{
	json_t *o = json_object(), *stats = json_object();
	struct ovc_balloon_stats st;
	int k;

	ovc_balloon_get_stats(b, &st);
#define B(f) json_object_set_new(o, #f, json_integer((json_int_t)st.f))
	B(target_pages);
	B(num_pages);
	B(actual_pages);
	B(ballooned_pages);
	B(inflated);
	B(deflated);
	B(reported_pages);
	B(touched);
	B(bad_pfn);
	B(dup_pfn);
	B(bad_deflate);
	B(misaligned);
	B(bad_requests);
	B(stalls);
	B(stats_updates);
	B(features);
	B(inflate_ns);
	B(deflate_ns);
	B(settle_ns);
#undef B
	json_object_set_new(o, "stalled", json_boolean(st.stalled));
	for (k = 0; k < OVC_BALLOON_S_NR; k++) {
		if (st.stats_valid & (1U << k))
			json_object_set_new(stats, ovc_balloon_stat_name(k),
					    json_integer((json_int_t)st.stats[k]));
	}
	json_object_set_new(o, "guest_stats", stats);
	return o;
}

/* --save: what went into the image; --restore: how the RAM came back. */
static void snapshot_json(struct vmm_vm *vm, json_t *o)
{
	struct ovc_restore_stats rs;
	json_t *s;

	if (vm->state == VM_SAVED && vm->saved.pages) {
		s = json_object();
		json_object_set_new(s, "pages", json_integer((json_int_t)vm->saved.pages));
		json_object_set_new(s, "data_pages", json_integer((json_int_t)vm->saved.data_pages));
		json_object_set_new(s, "zero_pages", json_integer((json_int_t)vm->saved.zero_pages));
		json_object_set_new(s, "ballooned_pages",
				    json_integer((json_int_t)vm->saved.ballooned_pages));
		json_object_set_new(s, "file_bytes", json_integer((json_int_t)vm->saved.file_bytes));
		json_object_set_new(s, "ns", json_integer((json_int_t)vm->saved.ns));
		json_object_set_new(o, "saved", s);
	}
	if (!vm->restored || ovc_vm_restore_get_stats(vm->ovc, &rs))
		return;
	s = json_object();
	json_object_set_new(s, "first_instruction_ns",
			    json_integer((json_int_t)(vm->started_ns - vm->restore_t0)));
	json_object_set_new(s, "resident_ns", json_integer((json_int_t)rs.resident_ns));
	json_object_set_new(s, "data_pages", json_integer((json_int_t)rs.data_pages));
	json_object_set_new(s, "lazy", json_integer((json_int_t)rs.lazy));
	json_object_set_new(s, "streamed", json_integer((json_int_t)rs.streamed));
	json_object_set_new(s, "prefetched", json_integer((json_int_t)rs.prefetched));
	json_object_set_new(s, "checksum_failures",
			    json_integer((json_int_t)rs.checksum_failures));
	json_object_set_new(s, "remaining", json_integer((json_int_t)rs.remaining));
	json_object_set_new(o, "restore", s);
}

static json_t *vm_json(struct vmm_vm *vm)
{
	json_t *o = json_object(), *vcpus = json_array(), *rep = json_object();
	unsigned int i;

	json_object_set_new(o, "name", json_string(vm->spec->name));
	json_object_set_new(o, "guest", json_string(vm->spec->guest));
	json_object_set_new(o, "args", json_string(vm->spec->args));
	json_object_set_new(o, "mem_bytes", json_integer((json_int_t)vm->spec->mem));
	json_object_set_new(o, "ok", json_boolean(vm_ok(vm)));
	json_object_set_new(o, "state", json_string(state_names[vm->state]));
	json_object_set_new(o, "exit_code", json_integer(vm->exit_code));
	json_object_set_new(o, "why", json_string(vm->why));
	json_object_set_new(o, "seconds",
			    json_real((double)(vm->ended_ns - vm->started_ns) / 1e9));
	json_object_set_new(o, "serial_log", json_string(vm->serial_path));
	json_object_set_new(o, "serial_bytes", json_integer((json_int_t)vm->serial.bytes));
	json_object_set_new(o, "corrupt_reports",
			    json_integer((json_int_t)atomic_load(&vm->corrupt_reports)));
	for (i = 0; i < vm->nreports; i++)
		json_object_set_new(rep, vm->reports[i].name,
				    json_integer((json_int_t)vm->reports[i].value));
	json_object_set_new(o, "guest_reports", rep);
	for (i = 0; i < vm->spec->vcpus; i++) {
		const struct vmm_vcpu *v = &vm->vcpus[i];
		json_t *c = json_object();

		json_object_set_new(c, "index", json_integer(i));
		json_object_set_new(c, "tid", json_integer(v->final.tid));
		json_object_set_new(c, "run_ns", json_integer((json_int_t)v->final.run_ns));
		json_object_set_new(c, "halt_ns", json_integer((json_int_t)v->final.halt_ns));
		json_object_set_new(c, "runs", json_integer((json_int_t)v->final.runs));
		json_object_set_new(c, "halts", json_integer((json_int_t)v->final.halts));
		json_object_set_new(c, "cpu_ns", json_integer((json_int_t)v->cpu_ns));
		json_object_set_new(c, "throttled_ns", json_integer((json_int_t)v->final.throttled_ns));
		json_object_set_new(c, "exits", json_integer((json_int_t)v->exits));
		json_object_set_new(c, "io_exits", json_integer((json_int_t)v->io_exits));
		json_object_set_new(c, "mmio_exits", json_integer((json_int_t)v->mmio_exits));
		json_object_set_new(c, "unknown_io", json_integer((json_int_t)v->unknown_io));
		json_array_append_new(vcpus, c);
	}
	json_object_set_new(o, "vcpus", vcpus);
	json_object_set_new(o, "mem", mem_json(vm));
	json_object_set_new(o, "host_bytes_max", json_integer((json_int_t)vm->host_bytes_max));
	json_object_set_new(o, "ballooned_max_pages", json_integer((json_int_t)vm->ballooned_max));
	json_object_set_new(o, "host_bytes_at_ballooned_max",
			    json_integer((json_int_t)vm->host_bytes_at_ballooned_max));
	json_object_set_new(o, "devices", devices_json(vm));
	snapshot_json(vm, o);
	if (vm->balloon)
		json_object_set_new(o, "balloon", balloon_json(vm->balloon));
	if (vm->pager) {
		struct ovc_pager_stats ps;
		json_t *pj = json_object();

		ovc_pager_get_stats(vm->pager, &ps);
#define P(f) json_object_set_new(pj, #f, json_integer((json_int_t)ps.f))
		P(reclaimed);
		P(zero);
		P(compressed);
		P(swapped);
		P(evicted);
		P(store_errors);
		P(zip_pages);
		P(zip_bytes);
		P(swap_pages);
#undef P
		json_object_set_new(pj, "resident_limit_pages",
				    json_integer((json_int_t)(vm->spec->resident >> OVC_PAGE_SHIFT)));
		json_object_set_new(pj, "resident_max_pages", json_integer((json_int_t)vm->resident_max));
		json_object_set_new(o, "pager", pj);
	}
	if (vm->spec->dedup) {
		struct ovc_dedup_stats ds;
		json_t *dj = json_object();

		ovc_vm_get_dedup_stats(vm->ovc, &ds);
		json_object_set_new(dj, "group", json_string(vm->spec->dedup_group[0] ?
							      vm->spec->dedup_group : ""));
#define D(f) json_object_set_new(dj, #f, json_integer((json_int_t)ds.f))
		D(scanned);
		D(unstable);
		D(zero);
		D(shared);
		D(sharing);
		D(saved_bytes);
		D(cow_breaks);
		D(busy);
		D(budget_stops);
		D(cpu_ns);
		D(vmas);
#undef D
		json_object_set_new(o, "dedup", dj);
	}
	if (vm->spec->wss_ms) {
		json_t *wj = json_object(), *hist;

		json_object_set_new(wj, "periods", json_integer((json_int_t)vm->wss.periods));
		json_object_set_new(wj, "sampled", json_integer((json_int_t)vm->wss.sampled));
		json_object_set_new(wj, "touched", json_integer((json_int_t)vm->wss.touched));
		json_object_set_new(wj, "last", json_real(vm->wss.last));
		json_object_set_new(wj, "fast", json_real(vm->wss.fast));
		json_object_set_new(wj, "slow", json_real(vm->wss.slow));
		json_object_set_new(wj, "active_frac", json_real(vm->wss.active_frac));
		json_object_set_new(wj, "active_bytes", json_integer((json_int_t)vm->wss.active_bytes));
		json_object_set_new(wj, "periods_seen", json_integer((json_int_t)vm->wss_periods));
		json_object_set_new(wj, "mean_last", json_real(vm->wss_periods ?
					vm->wss_sum / (double)vm->wss_periods : 0.0));
		hist = json_array();
		for (i = 0; i < vm->wss_periods && (size_t)i < (sizeof(vm->wss_history) / sizeof(vm->wss_history[0])); i++)
			json_array_append_new(hist, json_real(vm->wss_history[i]));
		json_object_set_new(wj, "history", hist);
		json_object_set_new(o, "wss", wj);
	}
	if (vm->vmm->opts->memsched) {
		json_t *mj = json_object(), *th = json_array(), *hh = json_array();

		json_object_set_new(mj, "target_bytes", json_integer((json_int_t)vm->ms_target));
		json_object_set_new(mj, "target_max_bytes", json_integer((json_int_t)vm->ms_target_max));
		json_object_set_new(mj, "held_bytes", json_integer((json_int_t)vm->ms_held));
		json_object_set_new(mj, "held_max_bytes", json_integer((json_int_t)vm->ms_held_max));
		for (i = 0; i < vm->ms_samples; i++) {
			json_array_append_new(th, json_integer((json_int_t)vm->ms_target_history[i]));
			json_array_append_new(hh, json_integer((json_int_t)vm->ms_held_history[i]));
		}
		json_object_set_new(mj, "target_history", th);
		json_object_set_new(mj, "held_history", hh);
		json_object_set_new(o, "memsched", mj);
	}
	if (vm->chaos) {
		json_t *c = json_object();

		json_object_set_new(c, "rate", json_integer((json_int_t)vm->vmm->opts->chaos_rate));
		json_object_set_new(c, "transitions",
				    json_integer((json_int_t)vm->chaos_res.transitions));
		json_object_set_new(c, "aborts", json_integer((json_int_t)vm->chaos_res.aborts));
		json_object_set_new(c, "busy", json_integer((json_int_t)vm->chaos_res.busy));
		json_object_set_new(o, "chaos", c);
	}
	return o;
}

/* Every VM's summary, as {"vms": [...]}, to @path ('-': stdout). Return 0 or -errno. */
int vmm_write_json(struct vmm *vmm, const char *path)
{
	json_t *root = json_object(), *vms = json_array();
	unsigned int i;
	int ret = 0;

	if (!root || !vms)
		return -ENOMEM;
	for (i = 0; i < vmm->nvms; i++)
		json_array_append_new(vms, vm_json(vmm->vms[i]));
	json_object_set_new(root, "vms", vms);
	json_object_set_new(root, "host_mem_bytes", json_integer((json_int_t)vmm->opts->host_mem));
	if (vmm->opts->memsched) {
		struct ovc_memsched_status st;
		json_t *mj = json_object();

		if (!ovc_host_get_memsched(vmm->host, NULL, &st)) {
			json_object_set_new(mj, "state", json_string(ovc_mem_state_name(st.state)));
			json_object_set_new(mj, "ticks", json_integer((json_int_t)st.ticks));
			json_object_set_new(mj, "balloon_sets", json_integer((json_int_t)st.balloon_sets));
			json_object_set_new(mj, "paged", json_integer((json_int_t)st.paged));
			json_object_set_new(mj, "errors", json_integer((json_int_t)st.errors));
			json_object_set_new(mj, "plan_ns_max", json_integer((json_int_t)st.plan_ns_max));
		}
		json_object_set_new(root, "memsched", mj);
	}
	if (!strcmp(path, "-")) {
		if (json_dumpf(root, stdout, JSON_INDENT(2)) || fputc('\n', stdout) == EOF)
			ret = -EIO;
	} else if (json_dump_file(root, path, JSON_INDENT(2))) {
		ret = -EIO;
	}
	json_decref(root);
	return ret;
}
