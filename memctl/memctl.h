/* SPDX-License-Identifier: MIT */
/* memctl: shared definitions of the command-line client of the control socket. */
#ifndef MEMCTL_H
#define MEMCTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* Exit codes (memctl(1), EXIT STATUS). */
enum {
	MC_OK = 0,		/* done */
	MC_REFUSED = 1,		/* the host answered with an error */
	MC_USAGE = 2,		/* bad command line */
	MC_NOCONN = 3,		/* cannot connect, or the connection broke */
};

/* struct memctl - the command line's global options and the connection */
struct memctl {
	const char *sock;	/* -s, $OVC_CTL, or the default path */
	bool json;		/* --json: the host's replies as they are */
	FILE *conn;		/* NULL until the first request */
	const char *prog;	/* "memctl", for messages */
};

typedef int (*mc_cmd_fn)(struct memctl *m, int argc, char **argv);

/*
 * struct mc_cmd - one command: a file memctl/cmd-NAME.c defining its
 * function, and one line in commands.c's table
 */
struct mc_cmd {
	const char *name;
	mc_cmd_fn fn;
	const char *usage;	/* arguments after the name */
	const char *summary;	/* one line for "memctl help" */
	const char *help;	/* the rest, for "memctl help NAME" (may be NULL) */
};

extern const struct mc_cmd mc_cmds[];
extern const unsigned int mc_ncmds;

const struct mc_cmd *mc_find(const char *name);

/* Print "memctl: usage: memctl NAME USAGE" to stderr; return MC_USAGE. */
int mc_usage(const struct mc_cmd *cmd);

/*
 * One request, one reply. @req is consumed. On success *@reply holds the
 * reply (json_decref() it) and MC_OK is returned; a refusal is printed
 * ("memctl: MESSAGE (CODE)") and gives MC_REFUSED; a connection problem is
 * printed and gives MC_NOCONN.
 */
int mc_call(struct memctl *m, json_t *req, json_t **reply);

/* --json: print @reply on one line. Return MC_OK. */
int mc_print_json(json_t *reply);

/* Field helpers: missing or null fields read as 0 / "". */
uint64_t mc_u64(json_t *o, const char *key);
double mc_dbl(json_t *o, const char *key);
const char *mc_str(json_t *o, const char *key);

/* A size as "512M"; "-" for a JSON null. @buf at least 16 bytes. */
const char *mc_size(char *buf, json_t *o, const char *key);

/* A command-line value as the JSON the protocol expects (integer, number, bool or string). */
json_t *mc_value(const char *s);

/* One value of a tunable for people: sizes as sizes, numbers compact. */
void mc_print_value(FILE *out, const char *key, json_t *v);

/* Command functions, one per cmd-NAME.c. */
int mc_cmd_status(struct memctl *m, int argc, char **argv);
int mc_cmd_vm(struct memctl *m, int argc, char **argv);
int mc_cmd_get(struct memctl *m, int argc, char **argv);
int mc_cmd_set(struct memctl *m, int argc, char **argv);
int mc_cmd_balloon(struct memctl *m, int argc, char **argv);
int mc_cmd_tunables(struct memctl *m, int argc, char **argv);
int mc_cmd_metrics(struct memctl *m, int argc, char **argv);
int mc_cmd_top(struct memctl *m, int argc, char **argv);
int mc_cmd_help(struct memctl *m, int argc, char **argv);

#endif /* MEMCTL_H */
