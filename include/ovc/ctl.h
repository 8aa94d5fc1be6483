/* SPDX-License-Identifier: MIT */
/* The control socket: one JSON object per line, for memctl and scripts. */
#ifndef OVC_CTL_H
#define OVC_CTL_H

#include <stddef.h>
#include <stdint.h>
#include <ovc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ovc_host;
struct ovc_ctl;

/** The protocol version "status" reports; bumped when a reply changes incompatibly. */
#define OVC_CTL_PROTOCOL 1

/**
 * struct ovc_ctl_config - limits of the control socket
 * @max_clients: connections served at once; one more gets a "busy" error
 *	and is closed (default 32)
 * @max_line: longest request line in bytes, newline included; a longer one
 *	gets "line-too-long" and the connection is closed (default 64 KiB)
 * @max_output: most reply bytes queued for one client that does not read;
 *	beyond it the client is dropped (default 8 MiB)
 * @idle_ms: a client that sends no complete request, or does not take its
 *	replies, for this long is dropped (default 300000)
 */
struct ovc_ctl_config {
	unsigned int max_clients;
	size_t max_line;
	size_t max_output;
	unsigned int idle_ms;
};

/**
 * ovc_ctl_config_init() - the defaults
 * @cfg: filled in
 */
OVC_EXPORT void ovc_ctl_config_init(struct ovc_ctl_config *cfg);

/**
 * ovc_ctl_start() - serve @host's control socket at @path
 * @host: the host; must outlive the server (ovc_ctl_stop() before
 *	ovc_host_destroy())
 * @path: the socket's path (at most 107 bytes). A missing parent directory
 *	is created with mode 0700 (and removed by ovc_ctl_stop() when empty); a stale socket nobody listens on is
 *	replaced; a live one is left alone (EADDRINUSE).
 * @cfg: limits, or NULL for the defaults
 *
 * The socket is mode 0600 and each connection's peer credentials are
 * checked: only the server's own uid and root are served. Requests are
 * served by one thread of the server's own, registered with
 * ovc_thread_register() to read snapshots. Pair with ovc_ctl_stop().
 *
 * Return: the server, or NULL with errno: EINVAL, ENAMETOOLONG,
 * EADDRINUSE, or what socket(2)/bind(2)/pthread_create(3) said.
 * Context: any thread.
 */
OVC_EXPORT struct ovc_ctl *ovc_ctl_start(struct ovc_host *host, const char *path,
					 const struct ovc_ctl_config *cfg);

/**
 * ovc_ctl_stop() - close every connection, remove the socket, free the server
 * @ctl: from ovc_ctl_start() (NULL is ignored)
 *
 * Return: 0. Context: any thread but the server's own; waits for a request
 * being served to finish.
 */
OVC_EXPORT int ovc_ctl_stop(struct ovc_ctl *ctl);

/**
 * ovc_ctl_path() - where the server listens
 * @ctl: the server
 *
 * Return: the path, valid until ovc_ctl_stop().
 */
OVC_EXPORT const char *ovc_ctl_path(const struct ovc_ctl *ctl);

/**
 * ovc_ctl_default_path() - where a VMM's socket goes unless told otherwise
 * @buf: filled with $XDG_RUNTIME_DIR/ovc/@name.sock, or /run/ovc/@name.sock
 *	when XDG_RUNTIME_DIR is unset or not absolute
 * @len: size of @buf
 * @name: the file's stem ("ovc-vmm")
 *
 * Return: 0, -EINVAL, or -ENAMETOOLONG. Context: any thread.
 */
OVC_EXPORT int ovc_ctl_default_path(char *buf, size_t len, const char *name);

/**
 * ovc_size_parse() - read a size as the protocol and memctl take it
 * @s: digits with an optional fraction and suffix K, M, G, T (powers of
 *	1024, optionally followed by "iB" or "B"): "4096", "512M", "1.5G"
 * @out: the size in bytes
 *
 * Return: 0, or -EINVAL (nothing written) for anything else, including
 * fractions of a byte and values beyond 2^64 - 1.
 * Context: any thread; pure function.
 */
OVC_EXPORT int ovc_size_parse(const char *s, uint64_t *out);

/**
 * ovc_size_format() - write a size as memctl shows it: "512M", "1.5G", "4K"
 * @buf: where the text goes
 * @len: size of @buf (16 is always enough)
 * @bytes: the size
 *
 * The largest unit in which the value is at least 1, with one decimal when
 * it is not whole and below 100 ("1.5G", "100G", "3.2T"); plain bytes below
 * 1K.
 *
 * Return: @buf. Context: any thread.
 */
OVC_EXPORT char *ovc_size_format(char *buf, size_t len, uint64_t bytes);

#ifdef __cplusplus
}
#endif

#endif /* OVC_CTL_H */
