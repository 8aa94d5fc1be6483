// SPDX-License-Identifier: MIT
/* bench/plot.c: PNG charts through gnuplot: CDFs, time series (lines or stacked), clustered bars. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "harness-internal.h"

/* Points per CDF line: enough for a smooth curve, small enough for a quick plot. */
#define CDF_POINTS 1000

struct gp {
	char dir[64];
	char data[96];
	char script[96];
	char png[PATH_MAX];
	FILE *df, *sf;
};

/* --plot's path, or "<base>-<suffix>.png". */
static void png_path(struct ovcb *b, const char *suffix, char *out, size_t size)
{
	const char *base = ovcb__plot_base(b);
	size_t n = strlen(base);

	if (!suffix) {
		ovcb__strf(out, size, "%s", base);
		return;
	}
	if (n > 4 && !strcmp(base + n - 4, ".png"))
		n -= 4;
	ovcb__strf(out, size, "%.*s-%s.png", (int)n, base, suffix);
}

/* A label inside a gnuplot double-quoted string. */
static void quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++)
		fputc(*s == '"' || *s == '\\' ? '\'' : *s, f);
	fputc('"', f);
}

static int gp_open(struct ovcb *b, struct gp *g, const char *suffix, const char *title)
{
	memset(g, 0, sizeof(*g));
	ovcb__strf(g->dir, sizeof(g->dir), "/tmp/ovc-bench-plot-XXXXXX");
	if (!mkdtemp(g->dir))
		return -errno;
	ovcb__strf(g->data, sizeof(g->data), "%s/data", g->dir);
	ovcb__strf(g->script, sizeof(g->script), "%s/plot.gp", g->dir);
	png_path(b, suffix, g->png, sizeof(g->png));
	g->df = fopen(g->data, "we");
	g->sf = fopen(g->script, "we");
	if (!g->df || !g->sf) {
		int ret = -errno;

		if (g->df)
			fclose(g->df);
		if (g->sf)
			fclose(g->sf);
		unlink(g->data);
		unlink(g->script);
		rmdir(g->dir);
		return ret;
	}
	fprintf(g->sf, "set terminal pngcairo size 900,560 font 'sans,10' noenhanced\n");
	fprintf(g->sf, "set output ");
	quoted(g->sf, g->png);
	fprintf(g->sf, "\nset title ");
	quoted(g->sf, title);
	fprintf(g->sf, "\nset grid\nset key top left\n");
	return 0;
}

/* Close the files, run gnuplot, clean up. */
static int gp_run(struct ovcb *b, struct gp *g)
{
	char *argv[] = { "gnuplot", g->script, NULL };
	bool *missing = ovcb__gnuplot_missing(b);
	int ret = 0;

	if (fclose(g->df))
		ret = -errno;
	if (fclose(g->sf) && !ret)
		ret = -errno;
	if (!ret && *missing)
		ret = -ENOENT;
	if (!ret) {
		ret = ovcb_spawn_wait(b, argv, false);
		if (ret == -ENOENT) {
			*missing = true;
			fprintf(stderr, "ovc-bench: no gnuplot (Debian: gnuplot-nox): no plots\n");
		} else if (ret > 0) {
			fprintf(stderr, "ovc-bench: gnuplot failed on %s\n", g->png);
			ret = -EIO;
		} else if (!ret) {
			printf("plot: %s\n", g->png);
		}
	}
	unlink(g->data);
	unlink(g->script);
	rmdir(g->dir);
	return ret;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int ovcb_plot_cdf(struct ovcb *b, const char *suffix, const char *title, const char *xlabel,
		  const struct ovcb_series *s, unsigned int nseries, bool logx)
{
	unsigned int k, plotted = 0;
	struct gp g;
	int ret;

	if (!ovcb_plot_enabled(b))
		return 0;
	if ((ret = gp_open(b, &g, suffix, title)))
		return ret;
	fprintf(g.sf, "set xlabel ");
	quoted(g.sf, xlabel);
	fprintf(g.sf, "\nset ylabel \"fraction of samples\"\nset yrange [0:1]\nset key bottom right\n");
	if (logx)
		fprintf(g.sf, "set logscale x\n");
	for (k = 0; k < nseries; k++) {
		double *v;
		size_t i, n = 0, step;

		if (!s[k].n)
			continue;
		v = malloc(s[k].n * sizeof(*v));
		if (!v)
			continue;
		for (i = 0; i < s[k].n; i++)
			if (isfinite(s[k].v[i]) && (!logx || s[k].v[i] > 0))
				v[n++] = s[k].v[i];
		if (!n) {
			free(v);
			continue;
		}
		qsort(v, n, sizeof(*v), cmp_double);
		step = n > CDF_POINTS ? n / CDF_POINTS : 1;
		fprintf(g.df, "# %s\n", s[k].label);
		for (i = 0; i < n; i += step)
			fprintf(g.df, "%.6g %.6f\n", v[i], (double)(i + 1) / (double)n);
		fprintf(g.df, "%.6g 1\n\n\n", v[n - 1]);
		free(v);
		fprintf(g.sf, "%s'%s' index %u using 1:2 with lines lw 2 title ",
			plotted ? ", " : "plot ", g.data, plotted);
		quoted(g.sf, s[k].label);
		plotted++;
	}
	fprintf(g.sf, plotted ? "\n" : "set label 'no data' at graph 0.5,0.5\nplot [0:1] NaN notitle\n");
	return gp_run(b, &g);
}

int ovcb_plot_timeseries(struct ovcb *b, const char *suffix, const char *title,
			 const char *ylabel, const double *t, size_t npoints,
			 const struct ovcb_series *s, unsigned int nseries, bool stacked)
{
	unsigned int k;
	struct gp g;
	size_t i;
	int ret;

	if (!ovcb_plot_enabled(b))
		return 0;
	for (k = 0; k < nseries; k++)
		if (s[k].n != npoints)
			return -EINVAL;
	if ((ret = gp_open(b, &g, suffix, title)))
		return ret;
	fprintf(g.sf, "set xlabel \"seconds\"\nset ylabel ");
	quoted(g.sf, ylabel);
	fprintf(g.sf, "\nset key outside right\n");
	/* Columns: t, then each series (stacked: running sums, bottom layer first). */
	for (i = 0; i < npoints; i++) {
		double sum = 0;

		fprintf(g.df, "%.6g", t[i]);
		for (k = 0; k < nseries; k++) {
			sum = stacked ? sum + s[k].v[i] : s[k].v[i];
			fprintf(g.df, " %.6g", sum);
		}
		fprintf(g.df, "\n");
	}
	if (!nseries) {
		fprintf(g.sf, "plot NaN notitle\n");
		return gp_run(b, &g);
	}
	if (stacked) {
		/* Top layer first, each filled down to the axis: the lower ones paint over. */
		fprintf(g.sf, "set style fill solid 0.8 border -1\nset yrange [0:*]\nplot ");
		for (k = nseries; k-- > 0;) {
			fprintf(g.sf, "%s'%s' using 1:%u with filledcurves x1 title ",
				k + 1 < nseries ? ", " : "", g.data, k + 2);
			quoted(g.sf, s[k].label);
		}
	} else {
		fprintf(g.sf, "plot ");
		for (k = 0; k < nseries; k++) {
			fprintf(g.sf, "%s'%s' using 1:%u with lines lw 2 title ", k ? ", " : "",
				g.data, k + 2);
			quoted(g.sf, s[k].label);
		}
	}
	fprintf(g.sf, "\n");
	return gp_run(b, &g);
}

int ovcb_plot_bars(struct ovcb *b, const char *suffix, const char *title, const char *ylabel,
		   const char *const *groups, size_t ngroups, const struct ovcb_series *s,
		   unsigned int nseries)
{
	unsigned int k;
	struct gp g;
	size_t i;
	int ret;

	if (!ovcb_plot_enabled(b))
		return 0;
	for (k = 0; k < nseries; k++)
		if (s[k].n != ngroups)
			return -EINVAL;
	if ((ret = gp_open(b, &g, suffix, title)))
		return ret;
	fprintf(g.sf, "set ylabel ");
	quoted(g.sf, ylabel);
	fprintf(g.sf, "\nset style data histogram\nset style histogram cluster gap 1\n"
		"set style fill solid 0.8 border -1\nset boxwidth 0.9\nset yrange [0:*]\n"
		"set key top right\nset datafile separator '\\t'\n");
	for (i = 0; i < ngroups; i++) {
		fprintf(g.df, "%s", groups[i]);
		for (k = 0; k < nseries; k++)
			fprintf(g.df, "\t%.6g", isfinite(s[k].v[i]) ? s[k].v[i] : 0.0);
		fprintf(g.df, "\n");
	}
	fprintf(g.sf, "plot ");
	for (k = 0; k < nseries; k++) {
		fprintf(g.sf, "%s'%s' using %u%s title ", k ? ", " : "", g.data, k + 2,
			k ? "" : ":xtic(1)");
		quoted(g.sf, s[k].label);
	}
	if (!nseries)
		fprintf(g.sf, "NaN notitle");
	fprintf(g.sf, "\n");
	return gp_run(b, &g);
}
