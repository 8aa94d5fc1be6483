// SPDX-License-Identifier: MIT
/* bench/snapshot.c: time to save a VM's RAM by share of zero pages, and lazy restore: time to run vs time to resident. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <ovc/ovc.h>

#define PAGE OVC_PAGE_SIZE
#define MAX_RUNS 9

struct opts {
	uint64_t mem;
	unsigned int runs;
	const char *dir;
	const char *json;
	unsigned int zero_pcts[8];
	unsigned int nzero;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* (100 - zero_pct)% of the pages get data (half compressible text, half random), spread evenly. */
static void fill(uint8_t *mem, uint64_t npages, unsigned int zero_pct)
{
	uint64_t i, j, s = 88172645463325252ULL;

	for (i = 0; i < npages; i++) {
		uint64_t *w = (uint64_t *)(mem + i * PAGE);

		if (i * 7919 % 100 < zero_pct)
			continue;
		for (j = 0; j < PAGE / 8; j++)
			w[j] = i & 1 ? rnd(&s) : 0x2020202065676170ULL ^ (i << 8) ^ (j % 7);
	}
}

static struct ovc_vm *new_vm(struct ovc_host *host, const char *name, uint64_t mem, void **hva)
{
	struct ovc_vm *vm = ovc_vm_new(host, name);

	if (!vm || ovc_vm_add_ram(vm, 0, mem, hva)) {
		fprintf(stderr, "snapshot: cannot create a VM of %" PRIu64 " MiB\n", mem >> 20);
		exit(1);
	}
	return vm;
}

/* Drop the image from the page cache: restores read it from the disk. */
static void drop_cache(const char *path)
{
	int fd = open(path, O_RDONLY);

	if (fd >= 0) {
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
}

struct reader {
	uint8_t *mem;
	uint64_t npages;
	_Atomic bool stop;
	uint64_t first_ns;	/* the first page read, from the start of the restore */
	uint64_t t0;
	uint64_t touches;
};

/* A guest-like reader: random pages from the moment the restore returns. */
static void *read_random(void *arg)
{
	struct reader *r = arg;
	uint64_t s = 0x2545f4914f6cdd1dULL;
	volatile uint64_t sink = 0;

	sink += *(volatile uint64_t *)(r->mem + (rnd(&s) % r->npages) * PAGE);
	r->first_ns = now_ns() - r->t0;
	while (!atomic_load(&r->stop)) {
		sink += *(volatile uint64_t *)(r->mem + (rnd(&s) % r->npages) * PAGE);
		r->touches++;
	}
	(void)sink;
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "mem", required_argument, NULL, 'm' },
		{ "runs", required_argument, NULL, 'r' },
		{ "dir", required_argument, NULL, 'd' },
		{ "json", required_argument, NULL, 'j' },
		{ "zero", required_argument, NULL, 'z' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .mem = 1ULL << 30, .runs = 3, .dir = "/tmp",
			  .zero_pcts = { 0, 50, 90 }, .nzero = 3 };
	struct ovc_host_config hc;
	struct ovc_host *host;
	json_t *root = json_object(), *saves = json_array(), *restores = json_array();
	char img[4096];
	unsigned int z, k;
	int c;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'm': o.mem = strtoull(optarg, NULL, 0) << 20; break;
		case 'r': o.runs = (unsigned int)atoi(optarg); break;
		case 'd': o.dir = optarg; break;
		case 'j': o.json = optarg; break;
		case 'z':
			o.nzero = 0;
			for (char *t = strtok(optarg, ","); t && o.nzero < 8; t = strtok(NULL, ","))
				o.zero_pcts[o.nzero++] = (unsigned int)atoi(t);
			break;
		default:
			fprintf(stderr, "usage: snapshot [--mem MiB] [--runs N] [--dir DIR] "
				"[--zero P,P,...] [--json FILE]\n");
			return 2;
		}
	}
	if (!o.mem || o.mem % PAGE || !o.runs || o.runs > MAX_RUNS) {
		fprintf(stderr, "snapshot: --mem must be a whole number of MiB, --runs 1 to %d\n",
			MAX_RUNS);
		return 2;
	}
	snprintf(img, sizeof(img), "%s/ovc-bench-snapshot.%d.img", o.dir, (int)getpid());
	ovc_host_config_init(&hc);
	hc.log_level = OVC_LOG_ERR;
	host = ovc_host_new(&hc);
	if (!host) {
		perror("ovc_host_new");
		return 1;
	}
	printf("snapshot: %" PRIu64 " MiB of guest RAM, image in %s, %u runs (medians)\n",
	       o.mem >> 20, o.dir, o.runs);
	for (z = 0; z < o.nzero; z++) {
		uint64_t save_ns[MAX_RUNS], first[MAX_RUNS], resident[MAX_RUNS];
		uint64_t first_t[MAX_RUNS], resident_t[MAX_RUNS], lazy_t[MAX_RUNS];
		struct ovc_save_stats ss = { 0 };
		json_t *js = json_object(), *jr = json_object();
		void *hva, *hvb;
		struct ovc_vm *va = new_vm(host, "src", o.mem, &hva);

		fill(hva, o.mem / PAGE, o.zero_pcts[z]);
		for (k = 0; k < o.runs; k++) {
			int ret = ovc_vm_save(va, img, NULL, 0, &ss);

			if (ret) {
				fprintf(stderr, "snapshot: save: %s\n", strerror(-ret));
				return 1;
			}
			save_ns[k] = ss.ns;
		}
		if (ovc_vm_destroy(va))
			fprintf(stderr, "snapshot: vm not torn down cleanly\n");
		printf("save    zero %3u%%: %7.1f ms  (%" PRIu64 " of %" PRIu64 " pages stored, "
		       "%.0f MiB file, %.0f MiB/s of RAM)\n", o.zero_pcts[z],
		       (double)median(save_ns, o.runs) / 1e6, ss.data_pages, ss.pages,
		       (double)ss.file_bytes / (1 << 20),
		       (double)o.mem / (1 << 20) / ((double)median(save_ns, o.runs) / 1e9));
		json_object_set_new(js, "zero_pct", json_integer(o.zero_pcts[z]));
		json_object_set_new(js, "save_ms", json_real((double)median(save_ns, o.runs) / 1e6));
		json_object_set_new(js, "file_bytes", json_integer((json_int_t)ss.file_bytes));
		json_object_set_new(js, "data_pages", json_integer((json_int_t)ss.data_pages));
		json_array_append_new(saves, js);

		for (k = 0; k < o.runs; k++) {
			struct ovc_restore_stats rs;
			struct ovc_vm *vb = new_vm(host, "dst", o.mem, &hvb);
			uint64_t t0;

			/* Alone: the stream brings everything in. */
			drop_cache(img);
			t0 = now_ns();
			if (ovc_vm_restore(vb, img, NULL, 0, NULL)) {
				fprintf(stderr, "snapshot: restore failed\n");
				return 1;
			}
			/* What a VMM waits before its vCPUs may run. */
			first[k] = now_ns() - t0;
			ovc_vm_restore_wait(vb, -1);
			ovc_vm_restore_get_stats(vb, &rs);
			resident[k] = rs.resident_ns;
			if (ovc_vm_destroy(vb))
				fprintf(stderr, "snapshot: vm not torn down cleanly\n");
		}
		for (k = 0; k < o.runs; k++) {
			struct ovc_restore_stats rs;
			struct ovc_vm *vb = new_vm(host, "dst", o.mem, &hvb);
			struct reader rd = { .mem = hvb, .npages = o.mem / PAGE };
			pthread_t th;

			/* With a reader touching random pages as soon as it may. */
			drop_cache(img);
			rd.t0 = now_ns();
			if (ovc_vm_restore(vb, img, NULL, 0, NULL)) {
				fprintf(stderr, "snapshot: restore failed\n");
				return 1;
			}
			pthread_create(&th, NULL, read_random, &rd);
			ovc_vm_restore_wait(vb, -1);
			atomic_store(&rd.stop, true);
			pthread_join(th, NULL);
			ovc_vm_restore_get_stats(vb, &rs);
			first_t[k] = rd.first_ns;
			resident_t[k] = rs.resident_ns;
			lazy_t[k] = rs.lazy;
			if (ovc_vm_destroy(vb))
				fprintf(stderr, "snapshot: vm not torn down cleanly\n");
		}
		printf("restore zero %3u%%: running after %6.1f ms, resident after %7.1f ms alone; "
		       "with a random reader: first read %6.2f ms, resident %7.1f ms, %" PRIu64
		       " pages by touch\n", o.zero_pcts[z], (double)median(first, o.runs) / 1e6,
		       (double)median(resident, o.runs) / 1e6, (double)median(first_t, o.runs) / 1e6,
		       (double)median(resident_t, o.runs) / 1e6, median(lazy_t, o.runs));
		json_object_set_new(jr, "zero_pct", json_integer(o.zero_pcts[z]));
		json_object_set_new(jr, "first_instruction_ms",
				    json_real((double)median(first, o.runs) / 1e6));
		json_object_set_new(jr, "resident_ms", json_real((double)median(resident, o.runs) / 1e6));
		json_object_set_new(jr, "reader_first_read_ms",
				    json_real((double)median(first_t, o.runs) / 1e6));
		json_object_set_new(jr, "reader_resident_ms",
				    json_real((double)median(resident_t, o.runs) / 1e6));
		json_object_set_new(jr, "reader_lazy_pages", json_integer((json_int_t)median(lazy_t, o.runs)));
		json_array_append_new(restores, jr);
		unlink(img);
	}
	json_object_set_new(root, "mem_bytes", json_integer((json_int_t)o.mem));
	json_object_set_new(root, "save", saves);
	json_object_set_new(root, "restore", restores);
	if (o.json)
		json_dump_file(root, o.json, JSON_INDENT(2));
	json_decref(root);
	if (ovc_host_destroy(host))
		fprintf(stderr, "snapshot: host not torn down cleanly\n");
	return 0;
}
