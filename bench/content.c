// SPDX-License-Identifier: MIT
/* bench/content.c: deterministic page contents (text, logs, records, sparse, random) shared by every system a scenario compares. */
#include <stdio.h>
#include <string.h>

#include "content.h"

#define PAGE OVC_PAGE_SIZE

const char *const ovcb_kind_names[OVCB_KIND_NR] = { "text", "log", "data", "sparse", "random" };

static const char *const words[] = {
	"memory", "page", "guest", "host", "kernel", "request", "server", "value",
	"config", "error", "buffer", "thread", "process", "virtual", "machine",
	"network", "storage", "latency", "timeout", "connection", "database",
	"transaction", "response", "status", "version", "default", "enabled",
	"session", "the", "with", "from", "which", "their", "there", "would",
	"handler", "queue", "socket", "record", "offset", "length", "client",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

uint64_t ovcb_splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Of 16 pages: 5 text-like, 3 log lines, 2 binary records, 2 sparse, 4 random. */
enum ovcb_kind ovcb_page_kind(uint64_t i)
{
	uint64_t s = i * 0x2545f4914f6cdd1dULL;
	unsigned int k = (unsigned int)(ovcb_splitmix(&s) % 16);

	return k < 5 ? OVCB_KIND_TEXT : k < 8 ? OVCB_KIND_LOG : k < 10 ? OVCB_KIND_DATA :
		k < 12 ? OVCB_KIND_SPARSE : OVCB_KIND_RANDOM;
}

/* One line of source/markup-like text from a page's own small vocabulary. */
static int text_line(char *line, size_t size, uint64_t r, const char *const *vw)
{
	unsigned int t = (unsigned int)(r >> 4) % 8, ind = (t % 3) * 4;
	unsigned int num = (unsigned int)(r >> 32) % 64;
	const char *a = vw[(r >> 8) % 8], *b = vw[(r >> 16) % 8], *c = vw[(r >> 24) % 8];

	switch (t) {
	case 0: return snprintf(line, size, "%*sif (%s->%s == NULL)\n", ind, "", a, b);
	case 1: return snprintf(line, size, "%*sreturn %s_%s(%s, %u);\n", ind, "", a, b, c, num);
	case 2: return snprintf(line, size, "%*s<div class=\"%s-%s\">%s</div>\n", ind, "", a, b, c);
	case 3: return snprintf(line, size, "%*s%s = %s_%s + %u;\n", ind, "", a, b, c, num);
	case 4: return snprintf(line, size, "%*s/* %s the %s before %s */\n", ind, "", a, b, c);
	case 5: return snprintf(line, size, "%*s\"%s\": \"%s_%s\", \"id\": %u,\n", ind, "", a, b, c,
				num);
	case 6: return snprintf(line, size, "%*s%s.%s(%s);\n", ind, "", a, b, c);
	default: return snprintf(line, size, "%*sfor (i = 0; i < %s_%s; i++)\n", ind, "", a, b);
	}
}

static int log_line(char *line, size_t size, uint64_t r, uint64_t page, unsigned int *t)
{
	static const char *const lv[] = { "INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR" };

	*t += (unsigned int)(r % 3);
	return snprintf(line, size,
			"2024-05-%02u %02u:%02u:%02u.%03u %s worker[%u]: %s %s %s %u in %u ms\n",
			(unsigned int)(1 + page % 28), *t / 3600 % 24, *t / 60 % 60, *t % 60,
			(unsigned int)(r >> 20) % 100, lv[(r >> 8) % 6], (unsigned int)(r >> 32) % 16,
			words[(r >> 36) % 24], words[(r >> 42) % 24], words[(r >> 48) % 24],
			(unsigned int)(r >> 12) % 1000, (unsigned int)(r >> 54) % 50);
}

/*
 * Page @i's contents. Text and log pages compress 2-2.5x with LZ4, records
 * about 3x, sparse pages 20x or more, random ones not at all; no page is all
 * zero (that would be no page-in at all).
 */
void ovcb_fill_page(uint8_t *p, uint64_t i)
{
	uint64_t s = i ^ 0xabcdef1234ULL, v, r;
	enum ovcb_kind k = ovcb_page_kind(i);
	const char *vw[8];
	unsigned int t, j;
	char line[200];
	size_t o = 0;
	int n;

	switch (k) {
	case OVCB_KIND_RANDOM:
		for (o = 0; o < PAGE; o += 8) {
			v = ovcb_splitmix(&s);
			memcpy(p + o, &v, 8);
		}
		return;
	case OVCB_KIND_SPARSE:
		memset(p, 0, PAGE);
		n = 8 + (int)(ovcb_splitmix(&s) % 32);
		for (j = 0; j < (unsigned int)n; j++) {
			r = ovcb_splitmix(&s);
			v = r | 1;
			memcpy(p + (r >> 52) % (PAGE / 8) * 8, &v, 8);
		}
		return;
	case OVCB_KIND_DATA: {
		uint64_t base = 0x00007f0000000000ULL | ((ovcb_splitmix(&s) & 0xffffff) << 12);

		for (o = 0; o < PAGE; o += 16) {
			uint64_t a, b;

			r = ovcb_splitmix(&s);
			a = (r & 3) == 0 ? base + ((r >> 8) & 0xfff0) : (r >> 16) & 0x3f;
			b = ((r >> 40) & 7) == 0 ? (r >> 44) & 0xffff : 0;
			memcpy(p + o, &a, 8);
			memcpy(p + o + 8, &b, 8);
		}
		return;
	}
	case OVCB_KIND_LOG:
		t = (unsigned int)(ovcb_splitmix(&s) % 86400);
		while (o < PAGE) {
			n = log_line(line, sizeof(line), ovcb_splitmix(&s), i, &t);
			n = n < 0 ? 0 : n >= (int)sizeof(line) ? (int)sizeof(line) - 1 : n;
			if (o + (size_t)n > PAGE)
				n = (int)(PAGE - o);
			memcpy(p + o, line, (size_t)n);
			o += (size_t)n;
		}
		return;
	default:
		for (j = 0; j < 8; j++)
			vw[j] = words[ovcb_splitmix(&s) % NWORDS];
		while (o < PAGE) {
			n = text_line(line, sizeof(line), ovcb_splitmix(&s), vw);
			n = n < 0 ? 0 : n >= (int)sizeof(line) ? (int)sizeof(line) - 1 : n;
			if (o + (size_t)n > PAGE)
				n = (int)(PAGE - o);
			memcpy(p + o, line, (size_t)n);
			o += (size_t)n;
		}
		return;
	}
}

bool ovcb_page_ok(const uint8_t *p, uint64_t i)
{
	uint8_t want[PAGE];

	ovcb_fill_page(want, i);
	return !memcmp(p, want, PAGE);
}

