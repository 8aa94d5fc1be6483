// SPDX-License-Identifier: MIT
/* guest/cpuburn.c: burns a set share of each vCPU's time and idles through the HALT port for the rest. */

/*
 * cpuburn - a vCPU load with a known duty cycle
 *
 * Args (boot->args, "key=value" separated by spaces or commas):
 *   duty=PCT     share of each period spent computing (default 50);
 *                100 = never idle, 0 = always idle
 *   period=MS    length of one busy+idle period in milliseconds (default 10)
 *   seconds=N    run time; 0 = until boot->stop (default 0)
 *
 * Each period, on every vCPU: mix hashes until duty% of the period has passed
 * by the TSC, then idle_us() until the period ends (in slices of at most
 * 10 ms, to keep polling boot->stop). A period starts when the previous one
 * really ended, so a late wake-up from the HALT port lengthens that period's
 * idle part instead of eating into the next busy part, and a vCPU the host
 * descheduled never bursts to catch up.
 *
 * Reports (ADD, per vCPU): busy_us and idle_us (measured), periods, work
 * (hash-mixing iterations).
 * Exit code: 0, or 2 for bad arguments.
 */
#include "rt/rt.h"

#define PROG		"cpuburn"
#define BURN_CHUNK	1024	/* iterations between clock reads: about a microsecond */
#define IDLE_SLICE_US	10000	/* longest single idle_us() */

static uint64_t total_busy_us, total_idle_us, total_periods, total_work; /* ATOMIC */
static struct rt_barrier end_barrier;

/* Where the result of the burn goes, so the compiler cannot drop the loop. */
static volatile uint64_t cpuburn_sink;

static uint64_t burn(uint64_t x, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		x = mix64(x + i);
	return x;
}

int guest_main(unsigned int vcpu, struct ovc_guest_boot *boot)
{
	uint64_t duty = 50, period_ms = 10, seconds = 0;
	const struct rt_arg args[] = {
		{ "duty", RT_ARG_PCT, &duty },
		{ "period", RT_ARG_U64, &period_ms, NULL, 3600 * 1000 },
		{ "seconds", RT_ARG_U64, &seconds, NULL, 1ULL << 32 },
	};
	uint64_t period, busy, start, mid, end, now, x = vcpu + 1;
	uint64_t busy_ticks = 0, idle_ticks = 0, periods = 0, work = 0;

	if (rt_parse_args(PROG, boot->args, args, ARRAY_SIZE(args), vcpu == 0))
		return 2;
	if (!period_ms) {
		if (vcpu == 0)
			rt_printf(PROG ": bad value '0' for argument 'period'\n");
		return 2;
	}
	if (vcpu == 0)
		rt_printf(PROG ": %u vcpus, duty=%lu%% period=%lums seconds=%lu\n",
			  boot->nr_vcpus, (unsigned long)duty, (unsigned long)period_ms,
			  (unsigned long)seconds);

	period = ns_to_tsc(period_ms * NSEC_PER_MSEC);
	busy = period / 100 * duty + period % 100 * duty / 100;
	now = rdtsc();
	end = seconds ? now + ns_to_tsc(seconds * NSEC_PER_SEC) : 0;

	while (!boot->stop && !(end && now >= end)) {
		/* Busy part: [start, start + busy). */
		start = now;
		while (now < start + busy && !boot->stop) {
			x = burn(x, BURN_CHUNK);
			work += BURN_CHUNK;
			now = rdtsc();
		}
		busy_ticks += now - start;

		/* Idle part: up to start + period. */
		mid = now;
		while (now < start + period && !boot->stop) {
			uint64_t us = tsc_to_ns(start + period - now) / NSEC_PER_USEC;

			idle_us((uint32_t)MIN(MAX(us, 1), IDLE_SLICE_US));
			now = rdtsc();
		}
		idle_ticks += now - mid;
		periods++;
	}
	cpuburn_sink = x;

	report("busy_us", OVC_GUEST_REPORT_ADD, tsc_to_ns(busy_ticks) / NSEC_PER_USEC);
	report("idle_us", OVC_GUEST_REPORT_ADD, tsc_to_ns(idle_ticks) / NSEC_PER_USEC);
	report("periods", OVC_GUEST_REPORT_ADD, periods);
	report("work", OVC_GUEST_REPORT_ADD, work);

	__atomic_add_fetch(&total_busy_us, tsc_to_ns(busy_ticks) / NSEC_PER_USEC, __ATOMIC_RELAXED);
	__atomic_add_fetch(&total_idle_us, tsc_to_ns(idle_ticks) / NSEC_PER_USEC, __ATOMIC_RELAXED);
	__atomic_add_fetch(&total_periods, periods, __ATOMIC_RELAXED);
	__atomic_add_fetch(&total_work, work, __ATOMIC_RELAXED);
	rt_barrier_wait(&end_barrier, boot->nr_vcpus);
	if (vcpu == 0) {
		uint64_t b = __atomic_load_n(&total_busy_us, __ATOMIC_RELAXED);
		uint64_t i = __atomic_load_n(&total_idle_us, __ATOMIC_RELAXED);

		rt_printf(PROG ": done: busy_us=%lu idle_us=%lu (%lu%% busy) periods=%lu work=%lu\n",
			  (unsigned long)b, (unsigned long)i,
			  (unsigned long)(b + i ? b * 100 / (b + i) : 0),
			  (unsigned long)__atomic_load_n(&total_periods, __ATOMIC_RELAXED),
			  (unsigned long)__atomic_load_n(&total_work, __ATOMIC_RELAXED));
	}
	return 0;
}
