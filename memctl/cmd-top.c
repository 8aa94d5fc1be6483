// SPDX-License-Identifier: MIT
/* memctl/cmd-top.c: memctl top: a live view of the VMs in esxtop's vocabulary, or CSV with -b. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curses.h>

#include <ovc/ctl.h>

#include "memctl.h"

#define MiB (1024.0 * 1024.0)

enum col_kind { SIZE, RATE, PCT };

/* The columns, in esxtop's names; vCPU rows fill only the CPU ones. */
enum {
	C_MEMSZ, C_TARGET, C_RESID, C_WSS, C_MCTLSZ, C_SHRD, C_ZERO, C_ZIP, C_SWCUR,
	C_SWR, C_SWW, C_FLT, C_USED, C_RDY, C_MLMTD, NCOLS
};

static const struct {
	const char *name;
	enum col_kind kind;
	bool vcpu;		/* meaningful on a vCPU row */
} cols[NCOLS] = {
	[C_MEMSZ] = { "MEMSZ", SIZE }, [C_TARGET] = { "TARGET", SIZE },
	[C_RESID] = { "RESID", SIZE }, [C_WSS] = { "WSS", SIZE },
	[C_MCTLSZ] = { "MCTLSZ", SIZE }, [C_SHRD] = { "SHRD", SIZE },
	[C_ZERO] = { "ZERO", SIZE }, [C_ZIP] = { "ZIP", SIZE },
	[C_SWCUR] = { "SWCUR", SIZE }, [C_SWR] = { "SWR/s", RATE },
	[C_SWW] = { "SWW/s", RATE }, [C_FLT] = { "FLT/s", RATE },
	[C_USED] = { "%USED", PCT, true }, [C_RDY] = { "%RDY", PCT, true },
	[C_MLMTD] = { "%MLMTD", PCT, true },
};

struct row {
	char name[64];
	int vcpu;		/* -1 for the VM's own row */
	double v[NCOLS];	/* NAN: not known */
};

struct top {
	struct memctl *m;
	double delay;
	long iterations;	/* < 0: until quit */
	bool batch, expand, reverse;
	int sort;		/* a column, or -1 for NAME */
	json_t *prev;		/* the previous "stats" object */
	json_t *cur;
	struct row *rows;
	size_t nrows, cap;
};

static struct row *add_row(struct top *t)
{
	struct row *r;
	int i;

	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 32;
		struct row *p = realloc(t->rows, cap * sizeof(*p));

		if (!p)
			return NULL;
		t->rows = p;
		t->cap = cap;
	}
	r = &t->rows[t->nrows++];
	memset(r, 0, sizeof(*r));
	for (i = 0; i < NCOLS; i++)
		r->v[i] = NAN;
	return r;
}

/* The same VM (by id) in the previous snapshot. */
static json_t *prev_vm(struct top *t, uint64_t id)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(t->prev, "vms"), i, v) {
		if (mc_u64(v, "id") == id)
			return v;
	}
	return NULL;
}

/* %MLMTD: the share of the interval the CPU limit held the vCPU back. */
static double mlmtd(json_t *c, json_t *pc, double interval_ns)
{
	uint64_t now = mc_u64(c, "throttled_ns"), before = pc ? mc_u64(pc, "throttled_ns") : now;

	if (interval_ns <= 0 || now < before)
		return 0;
	return 100.0 * (double)(now - before) / interval_ns;
}

static void build_rows(struct top *t, bool all_vcpus)
{
	double interval = 0;
	json_t *v, *c;
	size_t i, j;

	t->nrows = 0;
	if (t->prev)
		interval = (double)(mc_u64(t->cur, "at_ns") - mc_u64(t->prev, "at_ns"));
	json_array_foreach(json_object_get(t->cur, "vms"), i, v) {
		json_t *pages = json_object_get(v, "pages"), *w = json_object_get(v, "wss");
		json_t *pv = t->prev ? prev_vm(t, mc_u64(v, "id")) : NULL;
		json_t *pvcpus = pv ? json_object_get(pv, "vcpus") : NULL;
		struct row *r = add_row(t);
		double lim = 0;

		if (!r)
			return;
		snprintf(r->name, sizeof(r->name), "%s", mc_str(v, "name"));
		r->vcpu = -1;
		r->v[C_MEMSZ] = (double)mc_u64(v, "ram_bytes");
		r->v[C_TARGET] = (double)mc_u64(json_object_get(v, "targets"), "mem_target_bytes");
		r->v[C_RESID] = (double)mc_u64(pages, "resident") * 4096;
		if (json_is_true(json_object_get(w, "valid")))
			r->v[C_WSS] = (double)mc_u64(w, "active_bytes");
		r->v[C_MCTLSZ] = (double)mc_u64(pages, "ballooned") * 4096;
		r->v[C_SHRD] = (double)mc_u64(pages, "shared") * 4096;
		r->v[C_ZERO] = (double)mc_u64(pages, "zero") * 4096;
		r->v[C_ZIP] = (double)mc_u64(pages, "compressed") * 4096;
		r->v[C_SWCUR] = (double)mc_u64(pages, "swapped") * 4096;
		r->v[C_SWR] = mc_dbl(v, "pageins_per_sec") * 4096 / MiB;
		r->v[C_SWW] = mc_dbl(v, "pageouts_per_sec") * 4096 / MiB;
		r->v[C_FLT] = mc_dbl(v, "faults_per_sec");
		r->v[C_USED] = mc_dbl(v, "used_pct");
		r->v[C_RDY] = mc_dbl(v, "rdy_pct");
		json_array_foreach(json_object_get(v, "vcpus"), j, c)
			lim += mlmtd(c, json_array_get(pvcpus, j), interval);
		r->v[C_MLMTD] = lim;
		if (!all_vcpus && !t->expand)
			continue;
		json_array_foreach(json_object_get(v, "vcpus"), j, c) {
			struct row *vr = add_row(t);

			if (!vr)
				return;
			snprintf(vr->name, sizeof(vr->name), "%s", mc_str(v, "name"));
			vr->vcpu = (int)mc_u64(c, "index");
			vr->v[C_USED] = mc_dbl(c, "used_pct");
			vr->v[C_RDY] = mc_dbl(c, "rdy_pct");
			vr->v[C_MLMTD] = mlmtd(c, json_array_get(pvcpus, j), interval);
		}
	}
}

/* The VM rows' key, stored on every row of the VM so vCPUs stay with their VM. */
struct keyed {
	double key;
	struct row r;
};

static int keyed_cmp(const void *a, const void *b, void *arg)
{
	const struct keyed *x = a, *y = b;
	const struct top *t = arg;
	int d = 0;

	if (t->sort >= 0) {
		double kx = isnan(x->key) ? -1 : x->key, ky = isnan(y->key) ? -1 : y->key;

		d = kx < ky ? 1 : kx > ky ? -1 : 0;	/* largest first */
	}
	if (!d)
		d = strcmp(x->r.name, y->r.name);
	if (t->reverse)
		d = -d;
	/* Each VM's vCPU rows stay under it, by index. */
	if (!d)
		d = x->r.vcpu - y->r.vcpu;
	return d;
}

static void sort_rows(struct top *t)
{
	struct keyed *k = calloc(t->nrows ? t->nrows : 1, sizeof(*k));
	double key = NAN;
	size_t i;

	if (!k)
		return;
	for (i = 0; i < t->nrows; i++) {
		if (t->rows[i].vcpu < 0)
			key = t->sort >= 0 ? t->rows[i].v[t->sort] : 0;
		k[i].key = key;
		k[i].r = t->rows[i];
	}
	qsort_r(k, t->nrows, sizeof(*k), keyed_cmp, t);
	for (i = 0; i < t->nrows; i++)
		t->rows[i] = k[i].r;
	free(k);
}

static const char *fmt_cell(char *buf, size_t len, int col, double v)
{
	if (isnan(v))
		return "-";
	switch (cols[col].kind) {
	case SIZE:
		return ovc_size_format(buf, len, (uint64_t)v);
	case RATE:
		snprintf(buf, len, v >= 100 ? "%.0f" : "%.2f", v);
		return buf;
	case PCT:
		snprintf(buf, len, "%.1f", v);
		return buf;
	}
	return "-";
}

static int fetch(struct top *t)
{
	json_t *r;
	int ret;

	ret = mc_call(t->m, json_pack("{s:s}", "req", "stats"), &r);
	if (ret != MC_OK) {
		json_decref(r);
		return ret;
	}
	/* Keep the older snapshot while the host has not ticked since. */
	if (t->cur && mc_u64(json_object_get(r, "stats"), "seq") == mc_u64(t->cur, "seq")) {
		json_decref(r);
		return MC_OK;
	}
	json_decref(t->prev);
	t->prev = t->cur;
	t->cur = json_incref(json_object_get(r, "stats"));
	json_decref(r);
	return MC_OK;
}

static void csv_header(void)
{
	int i;

	printf("time,seq,vm,vcpu");
	for (i = 0; i < NCOLS; i++)
		printf(",%s", cols[i].name);
	printf("\n");
}

static void csv_rows(struct top *t)
{
	time_t now = time(NULL);
	char ts[32];
	size_t i;
	int c;

	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	for (i = 0; i < t->nrows; i++) {
		const struct row *r = &t->rows[i];

		printf("%s,%llu,%s,", ts, (unsigned long long)mc_u64(t->cur, "seq"), r->name);
		if (r->vcpu >= 0)
			printf("%d", r->vcpu);
		for (c = 0; c < NCOLS; c++) {
			if (isnan(r->v[c]))
				printf(",");
			else if (cols[c].kind == SIZE)
				printf(",%.0f", r->v[c]);
			else
				printf(",%.3f", r->v[c]);
		}
		printf("\n");
	}
	fflush(stdout);
}

static void header_lines(struct top *t, char lines[3][256])
{
	json_t *h = json_object_get(t->cur, "host");
	double tot[NCOLS] = { 0 };
	char a[16], b[16], c[16], d[16], e[16], f[16], g[16];
	time_t now = time(NULL);
	char ts[16];
	size_t i, nvcpus = 0;
	json_t *v;

	for (i = 0; i < t->nrows; i++) {
		int k;

		if (t->rows[i].vcpu >= 0)
			continue;
		for (k = 0; k < NCOLS; k++)
			if (!isnan(t->rows[i].v[k]))
				tot[k] += t->rows[i].v[k];
	}
	json_array_foreach(json_object_get(t->cur, "vms"), i, v)
		nvcpus += json_array_size(json_object_get(v, "vcpus"));
	strftime(ts, sizeof(ts), "%H:%M:%S", localtime(&now));
	snprintf(lines[0], 256, "memctl top - %s  snapshot #%llu  %zu VMs  %zu vCPUs on %llu CPUs  %%USED %.0f",
		 ts, (unsigned long long)mc_u64(t->cur, "seq"),
		 json_array_size(json_object_get(t->cur, "vms")), nvcpus,
		 (unsigned long long)mc_u64(t->cur, "ncpus"), tot[C_USED]);
	snprintf(lines[1], 256, "PMEM: %s total, %s free, %s avail, swap %s free   state: %s",
		 mc_size(a, h, "total_bytes"), mc_size(b, h, "free_bytes"),
		 mc_size(c, h, "available_bytes"), mc_size(d, h, "swap_free_bytes"),
		 mc_str(h, "state"));
	snprintf(lines[2], 256, "VMMEM: %s memsz, %s resid, %s mctlsz, %s shrd, %s zip, %s swcur, %.1f MB/s r %.1f MB/s w",
		 ovc_size_format(a, 16, (uint64_t)tot[C_MEMSZ]),
		 ovc_size_format(b, 16, (uint64_t)tot[C_RESID]),
		 ovc_size_format(c, 16, (uint64_t)tot[C_MCTLSZ]),
		 ovc_size_format(e, 16, (uint64_t)tot[C_SHRD]),
		 ovc_size_format(f, 16, (uint64_t)tot[C_ZIP]),
		 ovc_size_format(g, 16, (uint64_t)tot[C_SWCUR]), tot[C_SWR], tot[C_SWW]);
}

static void draw(struct top *t)
{
	char lines[3][256], buf[16], name[80];
	size_t i;
	int c, y;

	erase();
	header_lines(t, lines);
	for (i = 0; i < 3; i++)
		mvaddnstr((int)i, 0, lines[i], COLS);
	attron(A_REVERSE);
	mvprintw(4, 0, "%-18s", "NAME");
	for (c = 0; c < NCOLS; c++) {
		if (c == t->sort)
			attron(A_BOLD | A_UNDERLINE);
		printw(" %7s", cols[c].name);
		if (c == t->sort)
			attroff(A_BOLD | A_UNDERLINE);
	}
	for (y = getcurx(stdscr); y < COLS; y++)
		addch(' ');
	attroff(A_REVERSE);
	y = 5;
	for (i = 0; i < t->nrows && y < LINES - 1; i++, y++) {
		const struct row *r = &t->rows[i];

		if (r->vcpu >= 0)
			snprintf(name, sizeof(name), "  vcpu%d", r->vcpu);
		else
			snprintf(name, sizeof(name), "%s", r->name);
		mvprintw(y, 0, "%-18.18s", name);
		for (c = 0; c < NCOLS; c++) {
			if (r->vcpu >= 0 && !cols[c].vcpu)
				printw(" %7s", "");
			else
				printw(" %7s", fmt_cell(buf, sizeof(buf), c, r->v[c]));
		}
	}
	mvaddnstr(LINES - 1, 0, "q quit  < > sort  r reverse  e expand vCPUs  space update", COLS);
	refresh();
}

static int parse_col(const char *s)
{
	int i;

	if (!strcasecmp(s, "NAME"))
		return -1;
	for (i = 0; i < NCOLS; i++) {
		if (!strcasecmp(s, cols[i].name) ||
		    (cols[i].name[0] == '%' && !strcasecmp(s, cols[i].name + 1)))
			return i;
	}
	return -2;
}

static int run_batch(struct top *t)
{
	long n;
	int ret;

	csv_header();
	for (n = 0; t->iterations < 0 || n < t->iterations; n++) {
		if (n)
			usleep((useconds_t)(t->delay * 1e6));
		ret = fetch(t);
		if (ret != MC_OK)
			return ret;
		build_rows(t, true);
		sort_rows(t);
		csv_rows(t);
	}
	return MC_OK;
}

static int run_screen(struct top *t)
{
	long n = 0;
	int ret = MC_OK, ch;

	if (!initscr()) {
		fprintf(stderr, "memctl top: cannot use the terminal (use -b)\n");
		return MC_USAGE;
	}
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	curs_set(0);
	for (;;) {
		ret = fetch(t);
		if (ret != MC_OK)
			break;
		build_rows(t, false);
		sort_rows(t);
		draw(t);
		if (t->iterations >= 0 && ++n >= t->iterations)
			break;
		timeout((int)(t->delay * 1000));
		ch = getch();
		if (ch == 'q' || ch == 'Q')
			break;
		if (ch == '<' || ch == KEY_LEFT)
			t->sort = t->sort <= -1 ? NCOLS - 1 : t->sort - 1;
		else if (ch == '>' || ch == KEY_RIGHT)
			t->sort = t->sort >= NCOLS - 1 ? -1 : t->sort + 1;
		else if (ch == 'r')
			t->reverse = !t->reverse;
		else if (ch == 'e')
			t->expand = !t->expand;
	}
	endwin();
	/* What mc_call() said went to the screen just cleared: say it again. */
	if (ret == MC_NOCONN)
		fprintf(stderr, "memctl top: lost the connection to %s\n", t->m->sock);
	else if (ret != MC_OK)
		fprintf(stderr, "memctl top: the host refused the statistics request\n");
	return ret;
}

int mc_cmd_top(struct memctl *m, int argc, char **argv)
{
	const struct mc_cmd *cmd = mc_find("top");
	struct top t = { .m = m, .delay = 2, .iterations = -1, .sort = C_RESID };
	char *end;
	int c, ret;

	optind = 1;
	while ((c = getopt(argc, argv, "d:n:bo:e")) != -1) {
		switch (c) {
		case 'd':
			t.delay = strtod(optarg, &end);
			if (*end || !(t.delay >= 0.1 && t.delay <= 3600)) {
				fprintf(stderr, "memctl top: -d takes 0.1 to 3600 seconds\n");
				return MC_USAGE;
			}
			break;
		case 'n':
			t.iterations = strtol(optarg, &end, 10);
			if (*end || t.iterations < 1) {
				fprintf(stderr, "memctl top: -n takes a count of at least 1\n");
				return MC_USAGE;
			}
			break;
		case 'b':
			t.batch = true;
			break;
		case 'e':
			t.expand = true;
			break;
		case 'o':
			t.sort = parse_col(optarg);
			if (t.sort == -2) {
				fprintf(stderr, "memctl top: no column '%s'\n", optarg);
				return MC_USAGE;
			}
			break;
		default:
			return mc_usage(cmd);
		}
	}
	if (optind != argc)
		return mc_usage(cmd);
	if (!t.batch && !isatty(STDOUT_FILENO)) {
		fprintf(stderr, "memctl top: stdout is not a terminal: use -b for CSV\n");
		return MC_USAGE;
	}
	ret = t.batch ? run_batch(&t) : run_screen(&t);
	json_decref(t.prev);
	json_decref(t.cur);
	free(t.rows);
	return ret;
}
