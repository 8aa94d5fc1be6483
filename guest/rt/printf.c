// SPDX-License-Identifier: MIT
/* guest/rt/printf.c: a small printf for the guests' 16550 serial console. */
#include "rt.h"

#define UART_THR	(OVC_PORT_SERIAL + 0)
#define UART_LSR	(OVC_PORT_SERIAL + 5)
#define UART_LSR_THRE	0x20
/* An emulated UART that never reports THRE must not hang the guest. */
#define UART_MAX_POLLS	100000

struct out {
	char *buf;
	size_t size;
	size_t len;	/* what the output would need, as vsnprintf counts */
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void put_padded(struct out *o, const char *s, size_t n, unsigned int width,
		       bool left, char pad)
{
	size_t i;

	/* Zero padding goes after a sign or 0x prefix, as in libc. */
	if (pad == '0' && n && (s[0] == '-' || (n > 1 && s[1] == 'x'))) {
		size_t pre = s[0] == '-' ? 1 : 2;

		for (i = 0; i < pre; i++)
			put(o, s[i]);
		s += pre;
		n -= pre;
		width = width > pre ? width - pre : 0;
	}
	if (!left)
		for (i = n; i < width; i++)
			put(o, pad);
	for (i = 0; i < n; i++)
		put(o, s[i]);
	if (left)
		for (i = n; i < width; i++)
			put(o, ' ');
}

/* Write the digits of @v so that they end just before @end; return their start. */
static char *utoa(char *end, uint64_t v, unsigned int base, bool upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char *p = end;

	do {
		*--p = digits[v % base];
		v /= base;
	} while (v);
	return p;
}

int rt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = { .buf = buf, .size = size };
	char tmp[32], *end = tmp + sizeof(tmp), *p;

	for (; *fmt; fmt++) {
		bool left = false, alt = false, neg = false;
		unsigned int width = 0, lng = 0;
		char pad = ' ';
		uint64_t v;
		const char *s;

		if (*fmt != '%') {
			put(&o, *fmt);
			continue;
		}
		for (fmt++;; fmt++) {
			if (*fmt == '-')
				left = true;
			else if (*fmt == '0')
				pad = '0';
			else if (*fmt == '#')
				alt = true;
			else
				break;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (unsigned int)(*fmt++ - '0');
		for (;; fmt++) {
			if (*fmt == 'l' || *fmt == 'z' || *fmt == 'j')
				lng++;
			else if (*fmt != 'h')
				break;
		}
		if (left)
			pad = ' ';

		switch (*fmt) {
		case 'd':
		case 'i': {
			int64_t sv = lng ? va_arg(ap, long) : va_arg(ap, int);

			neg = sv < 0;
			v = neg ? -(uint64_t)sv : (uint64_t)sv;
			p = utoa(end, v, 10, false);
			if (neg)
				*--p = '-';
			put_padded(&o, p, (size_t)(end - p), width, left, pad);
			break;
		}
		case 'u':
		case 'x':
		case 'X':
			v = lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
			p = utoa(end, v, *fmt == 'u' ? 10 : 16, *fmt == 'X');
			if (alt && *fmt != 'u' && v) {
				*--p = 'x';
				*--p = '0';
			}
			put_padded(&o, p, (size_t)(end - p), width, left, pad);
			break;
		case 'p':
			v = (uint64_t)(uintptr_t)va_arg(ap, void *);
			p = utoa(end, v, 16, false);
			*--p = 'x';
			*--p = '0';
			put_padded(&o, p, (size_t)(end - p), width, left, pad);
			break;
		case 'c':
			tmp[0] = (char)va_arg(ap, int);
			put_padded(&o, tmp, 1, width, left, ' ');
			break;
		case 's':
			s = va_arg(ap, const char *);
			if (!s)
				s = "(null)";
			put_padded(&o, s, strlen(s), width, left, ' ');
			break;
		case '%':
			put(&o, '%');
			break;
		case '\0':
			fmt--;
			break;
		default:
			/* Unknown conversion: show it rather than guess its argument. */
			put(&o, '%');
			put(&o, *fmt);
			break;
		}
	}
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return (int)o.len;
}

int rt_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = rt_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

/* Serialises whole rt_printf() lines between vCPUs. */
static struct rt_spinlock serial_lock;

void rt_printf(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n, i, polls;

	va_start(ap, fmt);
	n = rt_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(buf))
		n = sizeof(buf) - 1;

	rt_spin_lock(&serial_lock);
	for (i = 0; i < n; i++) {
		for (polls = 0; polls < UART_MAX_POLLS; polls++)
			if (inb(UART_LSR) & UART_LSR_THRE)
				break;
		outb(UART_THR, (uint8_t)buf[i]);
	}
	rt_spin_unlock(&serial_lock);
}
