// SPDX-License-Identifier: MIT
/* guest/rt/args.c: the "key=value key=value" parser for boot->args. */
#include "rt.h"

#define TOKEN_MAX	64

static bool is_sep(char c)
{
	return c == ' ' || c == ',' || c == '\t' || c == '\n';
}

/* Parse all of @s as an unsigned number (decimal or 0x hex) followed by @rest. */
static bool parse_u64(const char *s, uint64_t *out, const char **rest)
{
	unsigned int base = 10, d;
	uint64_t v = 0;
	const char *p = s;

	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	for (s = p;; p++) {
		if (*p >= '0' && *p <= '9')
			d = (unsigned int)(*p - '0');
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = (unsigned int)(*p - 'a' + 10);
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			d = (unsigned int)(*p - 'A' + 10);
		else
			break;
		if (v > (UINT64_MAX - d) / base)
			return false;
		v = v * base + d;
	}
	if (p == s)
		return false;
	*out = v;
	*rest = p;
	return true;
}

static bool parse_pct(const char *s, uint64_t *out)
{
	const char *rest;

	if (!parse_u64(s, out, &rest) || *out > 100)
		return false;
	return !*rest || (rest[0] == '%' && !rest[1]);
}

static bool parse_size(const char *s, struct rt_size *out)
{
	static const char units[] = "kmgt";	/* lower case: *rest | 0x20 */
	unsigned int shift = 0, i;
	const char *rest;
	uint64_t v;

	if (!parse_u64(s, &v, &rest))
		return false;
	if (rest[0] == '%' && !rest[1]) {
		if (!v || v > 100)
			return false;
		out->bytes = 0;
		out->pct = (uint32_t)v;
		return true;
	}
	for (i = 0; units[i]; i++) {
		if ((*rest | 0x20) == units[i]) {
			shift = 10 * (i + 1);
			rest++;
			break;
		}
	}
	/* Accept "64M", "64MB", "64MiB" and a plain byte count ("4096", "4096B"). */
	if (shift && rest[0] == 'i' && (rest[1] == 'B' || rest[1] == 'b'))
		rest += 2;
	else if (rest[0] == 'B' || rest[0] == 'b')
		rest++;
	if (*rest || (shift && v > (UINT64_MAX >> shift)))
		return false;
	out->bytes = v << shift;
	out->pct = 0;
	return true;
}

static bool parse_value(const struct rt_arg *a, const char *val)
{
	const char *rest;
	uint64_t v;
	size_t i;

	switch (a->type) {
	case RT_ARG_U64:
		if (!parse_u64(val, &v, &rest) || *rest || (a->max && v > a->max))
			return false;
		*(uint64_t *)a->val = v;
		return true;
	case RT_ARG_SIZE:
		return parse_size(val, a->val);
	case RT_ARG_PCT:
		return parse_pct(val, a->val);
	case RT_ARG_CHOICE:
		for (i = 0; a->choices[i]; i++) {
			if (!strcmp(val, a->choices[i])) {
				*(uint64_t *)a->val = i;
				return true;
			}
		}
		return false;
	}
	return false;
}

int rt_parse_args(const char *prog, const char *args, const struct rt_arg *tab,
		  size_t n, bool verbose)
{
	const char *p = args;
	char tok[TOKEN_MAX];
	size_t len, i;
	char *val;

	for (;;) {
		while (is_sep(*p))
			p++;
		if (!*p)
			return 0;
		for (len = 0; p[len] && !is_sep(p[len]); len++)
			;
		/* Too long for any key or value we know: report it cut short. */
		i = len < sizeof(tok) ? len : sizeof(tok) - 1;
		memcpy(tok, p, i);
		tok[i] = '\0';
		p += len;

		val = tok;
		while (*val && *val != '=')
			val++;
		if (*val)
			*val++ = '\0';
		else
			val = NULL;

		for (i = 0; i < n; i++)
			if (!strcmp(tok, tab[i].key))
				break;
		if (i == n) {
			if (verbose)
				rt_printf("%s: unknown argument '%s'\n", prog, tok);
			return 2;
		}
		if (!val || len >= sizeof(tok) || !parse_value(&tab[i], val)) {
			if (verbose)
				rt_printf("%s: bad value '%s' for argument '%s'\n",
					  prog, val ? val : "", tok);
			return 2;
		}
	}
}

uint64_t rt_size_resolve(const struct rt_size *s, uint64_t avail)
{
	if (s->pct)
		return avail / 100 * s->pct + avail % 100 * s->pct / 100;
	return s->bytes ? s->bytes : avail;
}

const char *rt_fmt_size(char *buf, size_t size, uint64_t bytes)
{
	static const char units[] = "KMGT";
	unsigned int u = 0;

	if (!bytes || bytes % 1024) {
		rt_snprintf(buf, size, "%lu", (unsigned long)bytes);
		return buf;
	}
	bytes >>= 10;
	while (u < 3 && !(bytes % 1024)) {
		bytes >>= 10;
		u++;
	}
	rt_snprintf(buf, size, "%lu%c", (unsigned long)bytes, units[u]);
	return buf;
}
