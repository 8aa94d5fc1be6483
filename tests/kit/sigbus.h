/* SPDX-License-Identifier: MIT */
/* tests/kit/sigbus.h: whether touching a guest page is refused with SIGBUS (a poisoned page). */
#ifndef OVC_KIT_SIGBUS_H
#define OVC_KIT_SIGBUS_H

/*
 * Read one byte at @p from a thread of its own, with a SIGBUS handler that
 * gets that thread out. Return 1 when the read raised SIGBUS, 0 when it was
 * served, or a negative errno when the probe could not be set up.
 */
int sigbus_probe(const void *p);

#endif /* OVC_KIT_SIGBUS_H */
