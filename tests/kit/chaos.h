/* SPDX-License-Identifier: MIT */
/* tests/kit/chaos.h: random page transitions through the real transition API, against a live VM. */
#ifndef OVC_KIT_CHAOS_H
#define OVC_KIT_CHAOS_H

#include <stdint.h>

#include <ovc/ovc.h>

struct chaos;

/**
 * struct chaos_result - what a chaos thread did
 * @transitions: pages whose state a committed transition changed
 * @aborts: pages of transitions chaos aborted on purpose
 * @busy: begins refused because a page was under another transition
 * @armed: resident pages armed (next access a minor fault) outside transitions
 */
struct chaos_result {
	uint64_t transitions;
	uint64_t aborts;
	uint64_t busy;
	uint64_t armed;
};

/*
 * Start a thread moving random runs of @vm's pages between every state
 * (RESIDENT, ZERO, BALLOONED, and two checksummed in-memory stores standing
 * for COMPRESSED and SWAPPED) at about @rate pages per second (0: flat out),
 * and arming random resident pages (their next access a minor fault), alone
 * and inside transitions, reading pages both through the mapping and not.
 * Covers every RAM range @vm has now. NULL with errno set (EBUSY: the VM
 * already has stores). Pair with chaos_stop(), then chaos_destroy() once the
 * VM is gone.
 */
struct chaos *chaos_start(struct ovc_vm *vm, uint64_t rate, uint64_t seed);

/* Stop the thread; the stores stay, serving faults, until chaos_destroy(). */
void chaos_stop(struct chaos *c, struct chaos_result *res);

/* Pages the stores hold now. */
uint64_t chaos_stored(struct chaos *c);

/* Free the stores. Only after ovc_vm_destroy() of the VM, or with every page back. */
void chaos_destroy(struct chaos *c);

#endif /* OVC_KIT_CHAOS_H */
