// SPDX-License-Identifier: MIT
/* tests/kit/sigbus.c: whether touching a guest page is refused with SIGBUS (a poisoned page). */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>

#include "tests/kit/sigbus.h"

/* Per thread: the probing thread is the only one that jumps back. */
static __thread sigjmp_buf bus_jmp;

static void on_sigbus(int sig)
{
	(void)sig;
	siglongjmp(bus_jmp, 1);
}

static void *touch(void *arg)
{
	if (sigsetjmp(bus_jmp, 1))
		return (void *)1;
	(void)*(const volatile uint8_t *)arg;
	return NULL;
}

int sigbus_probe(const void *p)
{
	struct sigaction sa = { .sa_handler = on_sigbus };
	void *bus = NULL;
	pthread_t t;
	int ret;

	if (sigaction(SIGBUS, &sa, NULL))
		return -errno;
	ret = pthread_create(&t, NULL, touch, (void *)p);
	if (ret)
		return -ret;
	pthread_join(t, &bus);
	return bus == (void *)1;
}
