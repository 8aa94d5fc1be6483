// SPDX-License-Identifier: MIT
/* vmm/opts.c: ovc-vmm's command line: --vm specs, sizes, and the one-line errors for bad input. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/vmm.h"

void vmm_usage(FILE *out)
{
	fprintf(out,
"usage: ovc-vmm --vm SPEC [--vm SPEC ...] [options]\n"
"\n"
"Runs KVM virtual machines whose RAM is owned by libovc. Each VM runs a\n"
"freestanding test guest at CPL3 and logs its serial port to a file.\n"
"\n"
"  --vm name=N,mem=SIZE,vcpus=C,guest=G[,args=\"...\"][,devices=D+D...]\n"
"       [,balloon=T@S+T@S...]\n"
"        one VM (up to %d): N is 1-63 characters of [A-Za-z0-9_.-]; SIZE a\n"
"        multiple of 2M between 4M and 64G (suffixes K, M, G, T; 1.5G is\n"
"        fine); C from 1 to %d (default 1); G is memtouch, dupfill, cpuburn or\n"
"        a path to a guest ELF; args is handed to the guest (quote it when it\n"
"        holds commas); devices are virtio-mmio devices at 0xd0000000 + n*4K,\n"
"        interrupt pin 5 + n: rng (entropy), balloon (virtio-balloon, at most\n"
"        one); balloon= sets the balloon's target T (50%% of mem, or 256M) S\n"
"        seconds after start. zip=SIZE gives the VM a pager whose compressed\n"
"        tier may use SIZE (plus a swap file in --swap-dir); resident=SIZE\n"
"        keeps at most SIZE of its RAM resident through that pager. wss=MS\n"
"        estimates its working set by sampling 100 pages every MS ms.\n"
"        cpu.shares=N, cpu.reservation=CPUS, cpu.limit=CPUS set the VM's CPU\n"
"        policy (CPUS in physical CPUs, 1.5 = one and a half; see --cpusched).\n"
"        dedup=GROUP lets the host's page-sharing scanner share the VM's pages\n"
"        with the VMs of share group GROUP (1-63 characters of A-Za-z0-9_.-);\n"
"        dedup=on shares them only within the VM itself; zero pages are\n"
"        reclaimed either way (default off).\n"
"  --host-mem SIZE     memory ovc may give to guest RAM (default: the machine's\n"
"                      RAM); VMs may total up to %dx it (overcommit)\n"
"  --seconds N         run N seconds, then ask every guest to finish (default:\n"
"                      until every guest exits)\n"
"  --grace N           seconds a guest may take to finish once asked (default 30)\n"
"  --log-dir DIR       where each VM's serial log NAME.serial.log goes (default .)\n"
"  --json FILE         write a JSON summary of every VM at exit ('-': stdout)\n"
"  --chaos RATE        test option: move about RATE random pages per second per\n"
"                      VM through libovc's page transitions (stores in memory)\n"
"  --seed N            seed for guests and chaos (default 1)\n"
"  --fault-threads N   libovc fault-engine threads (default 2)\n"
"  --balloon-step SIZE the most a balloon's target moves per tick (1 s; default 64M)\n"
"  --swap-dir DIR      where pagers' swap files go (default: --log-dir)\n"
"  --save FILE         at the end of the run (--seconds, or SIGINT/SIGTERM) pause\n"
"                      the VM and write it (RAM, vCPUs, irqchip) to FILE, then\n"
"                      exit; one --vm, no virtio devices\n"
"  --restore FILE      start the VM from FILE (its RAM loads lazily) instead of\n"
"                      booting its guest; the --vm must match the saved one\n"
"  --cpusched B        schedule vCPUs by shares, reservations and limits, enforced\n"
"                      by backend B: auto, cgroup2, cgroup1, affinity, throttle or\n"
"                      none (ovc ticks every 100 ms then)\n"
"  --dedup-budget PM   CPU the page-sharing scanner may use, in thousandths of\n"
"                      one core, 1 to 1000 (default 20; only with dedup=)\n"
"  --memsched          let the memory scheduler share --host-mem among the VMs:\n"
"                      shares per active page with the idle tax, balloons then\n"
"                      pagers take memory back (ovc ticks every 250 ms; VMs\n"
"                      want devices=balloon, zip= and wss=; no balloon= or\n"
"                      resident= then)\n"
"  --guest-dir DIR     where guests are looked up by name\n"
"  --ctl PATH          serve the control socket (memctl) at PATH; 'off' for none\n"
"                      (default $XDG_RUNTIME_DIR/ovc/ovc-vmm.sock, or\n"
"                      /run/ovc/ovc-vmm.sock; skipped with a warning if taken)\n"
"  --quiet             no per-VM lines on stdout\n"
"  --help              this text\n"
"\n"
"Exit status: 0 every guest finished cleanly; 1 a guest failed, crashed or\n"
"reported lost memory; 2 bad command line; 3 the VMs could not be set up.\n",
		VMM_MAX_VMS, OVC_GUEST_MAX_VCPUS, VMM_OVERCOMMIT_MAX);
}

int vmm_parse_size(const char *s, uint64_t *out)
{
	/* One grammar for sizes across ovc: 512M, 1.5G, 4KiB, 4096. */
	return ovc_size_parse(s, out);
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > 63)
		return false;
	for (i = 0; i < n; i++) {
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
			return false;
	}
	return true;
}

/* Copy @v (@len bytes) into @dst of @cap; false when it does not fit. */
static bool copy_value(char *dst, size_t cap, const char *v, size_t len)
{
	if (len >= cap)
		return false;
	memcpy(dst, v, len);
	dst[len] = '\0';
	return true;
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 10);
	if (errno || *end || *out > max)
		return -EINVAL;
	return 0;
}

/* devices=rng+rng: virtio devices, one window each, in order. */
static int parse_devices(const char *val, struct vmm_vm_spec *vm, FILE *err)
{
	static const char *const known[] = { "rng", "balloon" };
	const char *p = val;

	vm->ndevices = 0;
	while (*p) {
		size_t len = strcspn(p, "+");
		unsigned int k;

		for (k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
			if (strlen(known[k]) == len && !strncmp(p, known[k], len))
				break;
		}
		if (k == sizeof(known) / sizeof(known[0])) {
			fprintf(err, "ovc-vmm: --vm: unknown device '%.*s' (rng, balloon)\n",
				(int)len, p);
			return -EINVAL;
		}
		if (vm->ndevices == VMM_MAX_DEVICES) {
			fprintf(err, "ovc-vmm: --vm: at most %d devices\n", VMM_MAX_DEVICES);
			return -EINVAL;
		}
		snprintf(vm->devices[vm->ndevices++], sizeof(vm->devices[0]), "%s", known[k]);
		p += len;
		if (*p == '+')
			p++;
	}
	return 0;
}

/* balloon=50%@2+256M@5+0%@8: balloon targets over time (share of mem or a size). */
static int parse_balloon(const char *val, struct vmm_vm_spec *vm, FILE *err)
{
	const char *p = val;
	char item[64], *at, *end;

	vm->nballoon = 0;
	while (*p) {
		size_t len = strcspn(p, "+");

		if (vm->nballoon == VMM_BALLOON_STEPS || len >= sizeof(item))
			goto bad;
		memcpy(item, p, len);
		item[len] = '\0';
		at = strchr(item, '@');
		if (!at)
			goto bad;
		*at++ = '\0';
		errno = 0;
		vm->balloon[vm->nballoon].at = strtod(at, &end);
		if (errno || end == at || *end || vm->balloon[vm->nballoon].at < 0)
			goto bad;
		len = strlen(item);
		if (len && item[len - 1] == '%') {
			item[len - 1] = '\0';
			vm->balloon[vm->nballoon].fraction = strtod(item, &end) / 100;
			vm->balloon[vm->nballoon].bytes = 0;
			if (end == item || *end || vm->balloon[vm->nballoon].fraction < 0 ||
			    vm->balloon[vm->nballoon].fraction > 1)
				goto bad;
		} else if (vmm_parse_size(item, &vm->balloon[vm->nballoon].bytes)) {
			goto bad;
		}
		vm->nballoon++;
		p += strcspn(p, "+");
		if (*p == '+')
			p++;
	}
	return 0;
bad:
	fprintf(err, "ovc-vmm: --vm: bad balloon schedule '%s' (e.g. 50%%@2+0%%@8)\n", val);
	return -EINVAL;
}

/*
 * name=a,mem=512M,vcpus=2,guest=memtouch,args="x=1,y=2": values run to the
 * next comma unless they start with a double quote.
 */
static int parse_vm(const char *spec, struct vmm_vm_spec *vm, FILE *err)
{
	bool have_name = false, have_mem = false, have_guest = false;
	const char *p = spec;
	char key[32], val[OVC_GUEST_ARGS_MAX];
	unsigned long long u;

	memset(vm, 0, sizeof(*vm));
	vm->vcpus = 1;
	while (*p) {
		const char *eq = strchr(p, '='), *v, *end;
		size_t klen, vlen;

		if (!eq || eq == p) {
			fprintf(err, "ovc-vmm: --vm '%s': expected key=value at '%s'\n", spec, p);
			return -EINVAL;
		}
		klen = (size_t)(eq - p);
		if (!copy_value(key, sizeof(key), p, klen)) {
			fprintf(err, "ovc-vmm: --vm '%s': unknown key '%.*s'\n", spec,
				(int)klen, p);
			return -EINVAL;
		}
		v = eq + 1;
		if (*v == '"') {
			end = strchr(v + 1, '"');
			if (!end) {
				fprintf(err, "ovc-vmm: --vm '%s': unterminated quote in %s\n",
					spec, key);
				return -EINVAL;
			}
			vlen = (size_t)(end - v - 1);
			v++;
			end++;
			if (*end && *end != ',') {
				fprintf(err, "ovc-vmm: --vm '%s': expected ',' after the quoted %s\n",
					spec, key);
				return -EINVAL;
			}
		} else {
			end = strchr(v, ',');
			if (!end)
				end = v + strlen(v);
			vlen = (size_t)(end - v);
		}
		if (!copy_value(val, sizeof(val), v, vlen)) {
			fprintf(err, "ovc-vmm: --vm '%s': value of %s is too long\n", spec, key);
			return -EINVAL;
		}
		p = *end ? end + 1 : end;

		if (!strcmp(key, "name")) {
			if (!valid_name(val)) {
				fprintf(err, "ovc-vmm: --vm: bad name '%s' (1-63 characters of A-Za-z0-9_.-)\n",
					val);
				return -EINVAL;
			}
			snprintf(vm->name, sizeof(vm->name), "%s", val);
			have_name = true;
		} else if (!strcmp(key, "mem")) {
			if (vmm_parse_size(val, &vm->mem)) {
				fprintf(err, "ovc-vmm: --vm: mem '%s' is not a size (e.g. 512M, 1.5G)\n",
					val);
				return -EINVAL;
			}
			have_mem = true;
		} else if (!strcmp(key, "vcpus")) {
			if (parse_uint(val, OVC_GUEST_MAX_VCPUS, &u) || u == 0) {
				fprintf(err, "ovc-vmm: --vm: vcpus '%s' must be 1 to %d\n", val,
					OVC_GUEST_MAX_VCPUS);
				return -EINVAL;
			}
			vm->vcpus = (unsigned int)u;
		} else if (!strcmp(key, "guest")) {
			if (!*val || !copy_value(vm->guest, sizeof(vm->guest), val, vlen)) {
				fprintf(err, "ovc-vmm: --vm: bad guest '%s'\n", val);
				return -EINVAL;
			}
			have_guest = true;
		} else if (!strcmp(key, "args")) {
			snprintf(vm->args, sizeof(vm->args), "%s", val);
		} else if (!strcmp(key, "devices")) {
			if (parse_devices(val, vm, err))
				return -EINVAL;
		} else if (!strcmp(key, "balloon")) {
			if (parse_balloon(val, vm, err))
				return -EINVAL;
		} else if (!strcmp(key, "wss")) {
			char *stop;
			unsigned long ms = strtoul(val, &stop, 10);

			if (stop == val || *stop || ms < 10 || ms > 3600000) {
				fprintf(err, "ovc-vmm: --vm: wss '%s' is not a period of 10 to 3600000 ms\n",
					val);
				return -EINVAL;
			}
			vm->wss_ms = (unsigned int)ms;
		} else if (!strcmp(key, "cpu.shares")) {
			if (parse_uint(val, OVC_SHARES_MAX, &u) || u == 0) {
				fprintf(err, "ovc-vmm: --vm: cpu.shares '%s' must be 1 to %d\n", val,
					OVC_SHARES_MAX);
				return -EINVAL;
			}
			vm->cpu_shares = u;
		} else if (!strcmp(key, "cpu.reservation") || !strcmp(key, "cpu.limit")) {
			double *to = key[4] == 'r' ? &vm->cpu_reservation : &vm->cpu_limit;
			char *e;

			errno = 0;
			*to = strtod(val, &e);
			if (errno || e == val || *e || !isfinite(*to) || *to < 0 || *to > 4096) {
				fprintf(err, "ovc-vmm: --vm: %s '%s' must be a number of CPUs from 0 to 4096\n",
					key, val);
				return -EINVAL;
			}
		} else if (!strcmp(key, "dedup")) {
			if (!strcmp(val, "off")) {
				vm->dedup = false;
				vm->dedup_group[0] = '\0';
			} else if (!strcmp(val, "on")) {
				vm->dedup = true;
				vm->dedup_group[0] = '\0';
			} else if (valid_name(val) && strlen(val) <= OVC_DEDUP_GROUP_MAX) {
				vm->dedup = true;
				snprintf(vm->dedup_group, sizeof(vm->dedup_group), "%s", val);
			} else {
				fprintf(err, "ovc-vmm: --vm: dedup '%s' must be on, off or a group name of 1-63 characters of A-Za-z0-9_.-\n",
					val);
				return -EINVAL;
			}
		} else if (!strcmp(key, "zip") || !strcmp(key, "resident")) {
			uint64_t *to = key[0] == 'z' ? &vm->zip : &vm->resident;

			if (vmm_parse_size(val, to) || *to < (1ULL << 20)) {
				fprintf(err, "ovc-vmm: --vm: %s '%s' is not a size of at least 1M\n",
					key, val);
				return -EINVAL;
			}
		} else {
			fprintf(err, "ovc-vmm: --vm '%s': unknown key '%s' (name, mem, vcpus, guest, args, devices, balloon, zip, resident, wss, cpu.shares, cpu.reservation, cpu.limit, dedup)\n",
				spec, key);
			return -EINVAL;
		}
	}
	if (!have_name || !have_mem || !have_guest) {
		fprintf(err, "ovc-vmm: --vm '%s': missing %s\n", spec,
			!have_name ? "name=" : !have_mem ? "mem=" : "guest=");
		return -EINVAL;
	}
	if (vm->resident && !vm->zip)
		vm->zip = 64ULL << 20;	/* a resident limit needs the pager */
	if (vm->mem < VMM_VM_RAM_MIN || vm->mem > VMM_VM_RAM_MAX || vm->mem % (2ULL << 20)) {
		fprintf(err, "ovc-vmm: --vm %s: mem must be a multiple of 2M from 4M to 64G\n",
			vm->name);
		return -EINVAL;
	}
	return 0;
}

static int find_guest(const char *guest_dir, const char *guest, char *path, size_t len)
{
	const char *dirs[3];
	char buf[PATH_MAX];
	unsigned int i, n = 0;

	if (strchr(guest, '/')) {
		snprintf(path, len, "%s", guest);
		return access(path, R_OK) ? -errno : 0;
	}
	if (guest_dir)
		dirs[n++] = guest_dir;
	dirs[n++] = OVC_GUEST_BUILD_DIR;
	dirs[n++] = OVC_GUEST_INSTALL_DIR;
	for (i = 0; i < n; i++) {
		snprintf(buf, sizeof(buf), "%s/%s.elf", dirs[i], guest);
		if (!access(buf, R_OK)) {
			snprintf(path, len, "%s", buf);
			return 0;
		}
	}
	return -ENOENT;
}

static uint64_t machine_ram(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);

	return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : 0;
}

static int parse_seconds(const char *opt, const char *s, double *out, FILE *err)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(*out) || *out < 0 || *out > 1e7) {
		fprintf(err, "ovc-vmm: %s '%s' is not a number of seconds\n", opt, s);
		return -EINVAL;
	}
	return 0;
}

enum {
	OPT_VM = 256, OPT_HOST_MEM, OPT_SECONDS, OPT_GRACE, OPT_LOG_DIR, OPT_JSON,
	OPT_CHAOS, OPT_SEED, OPT_FAULT_THREADS, OPT_GUEST_DIR, OPT_QUIET, OPT_HELP,
	OPT_BALLOON_STEP, OPT_SWAP_DIR, OPT_SAVE, OPT_RESTORE, OPT_CTL, OPT_CPUSCHED,
	OPT_DEDUP_BUDGET,
	OPT_MEMSCHED,
};

static const struct option long_opts[] = {
	{ "vm", required_argument, NULL, OPT_VM },
	{ "host-mem", required_argument, NULL, OPT_HOST_MEM },
	{ "seconds", required_argument, NULL, OPT_SECONDS },
	{ "grace", required_argument, NULL, OPT_GRACE },
	{ "log-dir", required_argument, NULL, OPT_LOG_DIR },
	{ "json", required_argument, NULL, OPT_JSON },
	{ "chaos", required_argument, NULL, OPT_CHAOS },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "fault-threads", required_argument, NULL, OPT_FAULT_THREADS },
	{ "guest-dir", required_argument, NULL, OPT_GUEST_DIR },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "balloon-step", required_argument, NULL, OPT_BALLOON_STEP },
	{ "swap-dir", required_argument, NULL, OPT_SWAP_DIR },
	{ "save", required_argument, NULL, OPT_SAVE },
	{ "restore", required_argument, NULL, OPT_RESTORE },
	{ "ctl", required_argument, NULL, OPT_CTL },
	{ "cpusched", required_argument, NULL, OPT_CPUSCHED },
	{ "dedup-budget", required_argument, NULL, OPT_DEDUP_BUDGET },
	{ "memsched", no_argument, NULL, OPT_MEMSCHED },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

/* Return 0, 1 for --help (usage printed), or -EINVAL (one line printed to @err). */
int vmm_parse_args(int argc, char **argv, struct vmm_opts *o, FILE *err)
{
	uint64_t total = 0, machine = machine_ram();
	unsigned long long u;
	unsigned int i, j;
	int c;

	memset(o, 0, sizeof(*o));
	o->log_dir = ".";
	o->grace = 30;
	o->seed = 1;
	o->fault_threads = 2;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_VM:
			if (o->nvms == VMM_MAX_VMS) {
				fprintf(err, "ovc-vmm: at most %d --vm\n", VMM_MAX_VMS);
				return -EINVAL;
			}
			if (parse_vm(optarg, &o->vms[o->nvms], err))
				return -EINVAL;
			o->nvms++;
			break;
		case OPT_HOST_MEM:
			if (vmm_parse_size(optarg, &o->host_mem) || o->host_mem == 0) {
				fprintf(err, "ovc-vmm: --host-mem '%s' is not a size\n", optarg);
				return -EINVAL;
			}
			if (machine && o->host_mem > machine) {
				fprintf(err, "ovc-vmm: --host-mem %s is more than this machine's %llu MiB\n",
					optarg, (unsigned long long)(machine >> 20));
				return -EINVAL;
			}
			break;
		case OPT_SECONDS:
			if (parse_seconds("--seconds", optarg, &o->seconds, err))
				return -EINVAL;
			break;
		case OPT_GRACE:
			if (parse_seconds("--grace", optarg, &o->grace, err))
				return -EINVAL;
			break;
		case OPT_LOG_DIR:
			o->log_dir = optarg;
			break;
		case OPT_JSON:
			o->json = optarg;
			break;
		case OPT_CHAOS:
			if (parse_uint(optarg, 100000000ULL, &u) || u == 0) {
				fprintf(err, "ovc-vmm: --chaos '%s' must be 1 to 100000000 pages/s\n",
					optarg);
				return -EINVAL;
			}
			o->chaos_rate = u;
			break;
		case OPT_SEED:
			if (parse_uint(optarg, ~0ULL, &u)) {
				fprintf(err, "ovc-vmm: --seed '%s' is not a number\n", optarg);
				return -EINVAL;
			}
			o->seed = u;
			break;
		case OPT_FAULT_THREADS:
			if (parse_uint(optarg, 64, &u) || u == 0) {
				fprintf(err, "ovc-vmm: --fault-threads '%s' must be 1 to 64\n", optarg);
				return -EINVAL;
			}
			o->fault_threads = (unsigned int)u;
			break;
		case OPT_GUEST_DIR:
			o->guest_dir = optarg;
			break;
		case OPT_QUIET:
			o->quiet = true;
			break;
		case OPT_SWAP_DIR:
			o->swap_dir = optarg;
			break;
		case OPT_SAVE:
		case OPT_RESTORE:
			if (!*optarg) {
				fprintf(err, "ovc-vmm: --%s needs a file name\n",
					c == OPT_SAVE ? "save" : "restore");
				return -EINVAL;
			}
			*(c == OPT_SAVE ? &o->save : &o->restore) = optarg;
			break;
		case OPT_CTL:
			if (!*optarg) {
				fprintf(err, "ovc-vmm: --ctl takes a socket path or 'off'\n");
				return -EINVAL;
			}
			o->ctl = optarg;
			break;
		case OPT_CPUSCHED:
			if (strcmp(optarg, "auto") && strcmp(optarg, "cgroup2") &&
			    strcmp(optarg, "cgroup1") && strcmp(optarg, "affinity") &&
			    strcmp(optarg, "throttle") && strcmp(optarg, "none")) {
				fprintf(err, "ovc-vmm: --cpusched '%s' must be auto, cgroup2, cgroup1, affinity, throttle or none\n",
					optarg);
				return -EINVAL;
			}
			o->cpusched = optarg;
			break;
		case OPT_DEDUP_BUDGET:
			if (parse_uint(optarg, 1000, &u) || u == 0) {
				fprintf(err, "ovc-vmm: --dedup-budget '%s' must be 1 to 1000 thousandths of a core\n",
					optarg);
				return -EINVAL;
			}
			o->dedup_budget = (unsigned int)u;
			break;
		case OPT_MEMSCHED:
			o->memsched = true;
			break;
		case OPT_BALLOON_STEP:
			if (vmm_parse_size(optarg, &o->balloon_step) || o->balloon_step < 4096) {
				fprintf(err, "ovc-vmm: --balloon-step '%s' is not a size of at least 4K\n",
					optarg);
				return -EINVAL;
			}
			break;
		case OPT_HELP:
			vmm_usage(stdout);
			return 1;
		default:
			if (optopt && optopt < 256)
				fprintf(err, "ovc-vmm: unknown option '-%c' (see --help)\n", optopt);
			else
				fprintf(err, "ovc-vmm: unknown or incomplete option '%s' (see --help)\n",
					argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(err, "ovc-vmm: unexpected argument '%s' (see --help)\n", argv[optind]);
		return -EINVAL;
	}
	if (o->nvms == 0) {
		fprintf(err, "ovc-vmm: no --vm given (see --help)\n");
		return -EINVAL;
	}
	for (i = 0; i < o->nvms; i++) {
		for (j = 0; j < i; j++) {
			if (!strcmp(o->vms[i].name, o->vms[j].name)) {
				fprintf(err, "ovc-vmm: two VMs are named '%s'\n", o->vms[i].name);
				return -EINVAL;
			}
		}
		total += o->vms[i].mem;
		if (find_guest(o->guest_dir, o->vms[i].guest, o->vms[i].guest_path,
			       sizeof(o->vms[i].guest_path))) {
			fprintf(err, "ovc-vmm: vm %s: no guest '%s'%s\n", o->vms[i].name,
				o->vms[i].guest, strchr(o->vms[i].guest, '/') ? "" :
				" (memtouch, dupfill, cpuburn, or a path to an ELF)");
			return -EINVAL;
		}
	}
	if ((o->save || o->restore) && o->nvms != 1) {
		fprintf(err, "ovc-vmm: --save and --restore take exactly one --vm\n");
		return -EINVAL;
	}
	if ((o->save || o->restore) && o->vms[0].ndevices) {
		fprintf(err, "ovc-vmm: vm %s: --save/--restore: its virtio device '%s' keeps state that cannot be saved\n",
			o->vms[0].name, o->vms[0].devices[0]);
		return -EINVAL;
	}
	if ((o->save || o->restore) && o->chaos_rate) {
		fprintf(err, "ovc-vmm: --chaos cannot run with --save or --restore\n");
		return -EINVAL;
	}
	for (i = 0; i < o->nvms && !o->vms[i].dedup; i++)
		;
	if (o->dedup_budget && i == o->nvms) {
		fprintf(err, "ovc-vmm: --dedup-budget needs a --vm with dedup=\n");
		return -EINVAL;
	}
	if (!o->host_mem)
		o->host_mem = machine;
	for (i = 0; i < o->nvms; i++) {
		if (o->memsched && (o->vms[i].nballoon || o->vms[i].resident)) {
			fprintf(err, "ovc-vmm: vm %s: --memsched sets balloons and resident sizes itself; drop %s=\n",
				o->vms[i].name, o->vms[i].nballoon ? "balloon" : "resident");
			return -EINVAL;
		}
		if (o->memsched && (o->save || o->restore)) {
			fprintf(err, "ovc-vmm: --memsched cannot run with --save or --restore\n");
			return -EINVAL;
		}
		if (o->vms[i].zip && o->chaos_rate) {
			fprintf(err, "ovc-vmm: vm %s: --chaos brings its own stores; it cannot run with a pager\n",
				o->vms[i].name);
			return -EINVAL;
		}
	}
	if (o->host_mem && total > o->host_mem * VMM_OVERCOMMIT_MAX) {
		fprintf(err, "ovc-vmm: the VMs' RAM (%llu MiB) is more than %dx the host memory (%llu MiB)\n",
			(unsigned long long)(total >> 20), VMM_OVERCOMMIT_MAX,
			(unsigned long long)(o->host_mem >> 20));
		return -EINVAL;
	}
	return 0;
}
