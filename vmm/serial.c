// SPDX-License-Identifier: MIT
/* vmm/serial.c: a 16550 UART that only transmits: what the guest writes goes to its log file. */
#include <errno.h>
#include <string.h>

#include "vmm/vmm.h"

/* Register offsets from the base port; DLAB is bit 7 of LCR. */
#define UART_RBR_THR	0
#define UART_IER	1
#define UART_IIR_FCR	2
#define UART_LCR	3
#define UART_MCR	4
#define UART_LSR	5
#define UART_MSR	6
#define UART_SCR	7
#define UART_LCR_DLAB	0x80
#define UART_LSR_THRE	0x20	/* transmit holding register empty */
#define UART_LSR_TEMT	0x40	/* transmitter empty */
#define UART_IIR_NO_INT	0x01
#define UART_MSR_IDLE	0xb0	/* DCD, DSR, CTS: a peer is always there */

int vmm_serial_init(struct vmm_serial *s, const char *path)
{
	memset(s, 0, sizeof(*s));
	s->out = fopen(path, "w");
	if (!s->out)
		return -errno;
	setvbuf(s->out, NULL, _IOLBF, 0);
	pthread_mutex_init(&s->lock, NULL);
	return 0;
}

void vmm_serial_fini(struct vmm_serial *s)
{
	if (!s->out)
		return;
	fclose(s->out);
	s->out = NULL;
	pthread_mutex_destroy(&s->lock);
}

/*
 * One byte-wide access at @off from the base port. Called from any vCPU
 * thread; takes the UART's lock. Nothing the guest does here can fail: the
 * receiver is always empty and no interrupt is ever raised.
 */
void vmm_serial_io(struct vmm_serial *s, uint16_t off, bool in, uint8_t *data)
{
	bool dlab;

	pthread_mutex_lock(&s->lock);
	dlab = s->lcr & UART_LCR_DLAB;
	if (in) {
		switch (off) {
		case UART_RBR_THR: *data = dlab ? s->dll : 0; break;
		case UART_IER: *data = dlab ? s->dlm : s->ier; break;
		case UART_IIR_FCR: *data = UART_IIR_NO_INT; break;
		case UART_LCR: *data = s->lcr; break;
		case UART_MCR: *data = s->mcr; break;
		case UART_LSR: *data = UART_LSR_THRE | UART_LSR_TEMT; break;
		case UART_MSR: *data = UART_MSR_IDLE; break;
		case UART_SCR: *data = s->scr; break;
		default: *data = 0xff; break;
		}
	} else {
		switch (off) {
		case UART_RBR_THR:
			if (dlab) {
				s->dll = *data;
			} else {
				fputc(*data, s->out);
				s->bytes++;
			}
			break;
		case UART_IER:
			if (dlab)
				s->dlm = *data;
			else
				s->ier = *data & 0x0f;
			break;
		case UART_LCR: s->lcr = *data; break;
		case UART_MCR: s->mcr = *data & 0x1f; break;
		case UART_SCR: s->scr = *data; break;
		default: break;	/* FCR, and the read-only LSR and MSR */
		}
	}
	pthread_mutex_unlock(&s->lock);
}
