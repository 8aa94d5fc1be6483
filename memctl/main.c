// SPDX-License-Identifier: MIT
/* memctl/main.c: memctl's command line, its connection to the control socket, output helpers. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <ovc/ctl.h>

#include "memctl.h"

/* How long a reply may take before the host counts as gone. */
#define REPLY_TIMEOUT_S 10

static int connect_host(struct memctl *m)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = REPLY_TIMEOUT_S };
	int fd;

	if (strlen(m->sock) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "%s: socket path too long: %s\n", m->prog, m->sock);
		return MC_NOCONN;
	}
	memcpy(sa.sun_path, m->sock, strlen(m->sock));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "%s: cannot connect to %s: %s (is ovc-vmm running? see -s)\n",
			m->prog, m->sock, strerror(errno));
		if (fd >= 0)
			close(fd);
		return MC_NOCONN;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	m->conn = fdopen(fd, "r+");
	if (!m->conn) {
		close(fd);
		fprintf(stderr, "%s: %s\n", m->prog, strerror(errno));
		return MC_NOCONN;
	}
	return MC_OK;
}

/* Send @text and read one line. Return the line's length, or -1 with the connection broken. */
static ssize_t exchange(struct memctl *m, const char *text, char **line, size_t *cap)
{
	if (fprintf(m->conn, "%s\n", text) < 0 || fflush(m->conn))
		return -1;
	return getline(line, cap, m->conn);
}

int mc_call(struct memctl *m, json_t *req, json_t **reply)
{
	json_t *r, *err;
	json_error_t jerr;
	char *line = NULL, *text;
	bool reused = m->conn != NULL;
	size_t cap = 0;
	ssize_t n;
	int ret;

	*reply = NULL;
	if (!m->conn && (ret = connect_host(m)) != MC_OK) {
		json_decref(req);
		return ret;
	}
	text = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!text) {
		fprintf(stderr, "%s: out of memory\n", m->prog);
		return MC_NOCONN;
	}
	errno = 0;
	n = exchange(m, text, &line, &cap);
	/*
	 * The host drops connections idle for minutes (top -d 600): a kept
	 * connection that broke is made again, once. Requests are safe to repeat.
	 */
	if (n <= 0 && reused && errno != EAGAIN) {
		fclose(m->conn);
		m->conn = NULL;
		ret = connect_host(m);
		if (ret != MC_OK) {
			free(text);
			free(line);
			return ret;
		}
		n = exchange(m, text, &line, &cap);
	}
	free(text);
	if (n <= 0) {
		free(line);
		fprintf(stderr, "%s: %s closed the connection without a reply%s\n", m->prog,
			m->sock, errno == EAGAIN ? " (timed out)" : "");
		return MC_NOCONN;
	}
	r = json_loadb(line, (size_t)n, 0, &jerr);
	free(line);
	if (!r || !json_is_object(r)) {
		json_decref(r);
		fprintf(stderr, "%s: the host's reply is not JSON: %s\n", m->prog, jerr.text);
		return MC_NOCONN;
	}
	*reply = r;
	if (json_is_true(json_object_get(r, "ok")))
		return MC_OK;
	err = json_object_get(r, "error");
	if (!m->json)
		fprintf(stderr, "%s: %s (%s)\n", m->prog, mc_str(err, "message"), mc_str(err, "code"));
	else
		mc_print_json(r);
	return MC_REFUSED;
}

int mc_print_json(json_t *reply)
{
	char *s = json_dumps(reply, JSON_COMPACT | JSON_REAL_PRECISION(6));

	if (s)
		printf("%s\n", s);
	free(s);
	return MC_OK;
}

uint64_t mc_u64(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (json_is_integer(v))
		return json_integer_value(v) < 0 ? 0 : (uint64_t)json_integer_value(v);
	if (json_is_real(v) && json_real_value(v) > 0)
		return (uint64_t)json_real_value(v);
	return 0;
}

double mc_dbl(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : 0.0;
}

const char *mc_str(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : "";
}

const char *mc_size(char *buf, json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	if (!v || json_is_null(v))
		return strcpy(buf, "-");
	return ovc_size_format(buf, 16, mc_u64(o, key));
}

json_t *mc_value(const char *s)
{
	char *end;
	long long ll;
	double d;

	if (!strcmp(s, "true") || !strcmp(s, "on") || !strcmp(s, "yes"))
		return json_true();
	if (!strcmp(s, "false") || !strcmp(s, "off") || !strcmp(s, "no"))
		return json_false();
	errno = 0;
	ll = strtoll(s, &end, 10);
	if (*s && !*end && !errno)
		return json_integer(ll);
	errno = 0;
	d = strtod(s, &end);
	if (*s && !*end && !errno && isfinite(d))
		return json_real(d);
	return json_string(s);
}

void mc_print_value(FILE *out, const char *key, json_t *v)
{
	char buf[16];
	size_t n = strlen(key);

	/* The protocol's size knobs end in what they measure. */
	if (json_is_integer(v) && ((n > 7 && !strcmp(key + n - 7, ".target")) ||
				   (n > 12 && !strcmp(key + n - 12, ".reservation") &&
				    !strncmp(key, "mem.", 4)) ||
				   !strcmp(key, "mem.limit"))) {
		fprintf(out, "%s", ovc_size_format(buf, sizeof(buf), (uint64_t)json_integer_value(v)));
	} else if (json_is_integer(v)) {
		fprintf(out, "%lld", (long long)json_integer_value(v));
	} else if (json_is_real(v)) {
		fprintf(out, "%g", json_real_value(v));
	} else if (json_is_boolean(v)) {
		fprintf(out, "%s", json_is_true(v) ? "on" : "off");
	} else if (json_is_string(v)) {
		fprintf(out, "%s", json_string_value(v));
	} else {
		fprintf(out, "-");
	}
}

int mc_usage(const struct mc_cmd *cmd)
{
	fprintf(stderr, "memctl: usage: memctl %s %s\n(memctl help %s)\n", cmd->name, cmd->usage,
		cmd->name);
	return MC_USAGE;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: memctl [-s SOCKET] [--json] COMMAND [ARGS]\n"
		"Watch and tune an ovc host (ovc-vmm) through its control socket.\n\n"
		"  -s, --socket PATH  the host's socket (default: $OVC_CTL, else\n"
		"                     $XDG_RUNTIME_DIR/ovc/ovc-vmm.sock or /run/ovc/ovc-vmm.sock)\n"
		"  -j, --json         print the host's replies as JSON, one per line\n"
		"  -h, --help         this help\n\n"
		"Commands:\n");
	for (unsigned int i = 0; i < mc_ncmds; i++) {
		char head[64];

		snprintf(head, sizeof(head), "%s %s", mc_cmds[i].name, mc_cmds[i].usage);
		fprintf(out, "  %-30s %s\n", head, mc_cmds[i].summary);
	}
	fprintf(out, "\n\"memctl help COMMAND\" tells more. Exit status: 0 done, 1 refused by\n"
		"the host, 2 bad usage, 3 cannot connect.\n");
}

int mc_cmd_help(struct memctl *m, int argc, char **argv)
{
	const struct mc_cmd *c;

	if (argc > 2)
		return mc_usage(mc_find("help"));
	if (argc < 2) {
		usage(stdout);
		return MC_OK;
	}
	c = mc_find(argv[1]);
	if (!c) {
		fprintf(stderr, "memctl: no command '%s' (memctl help)\n", argv[1]);
		return MC_USAGE;
	}
	printf("usage: memctl %s %s\n%s.\n", c->name, c->usage, c->summary);
	if (c->help)
		printf("\n%s\n", c->help);
	return MC_OK;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static char defpath[108];
	struct memctl m = { .prog = "memctl" };
	const struct mc_cmd *cmd;
	int c, ret;

	/* A host that closes on us is an error to report, not a signal to die of. */
	signal(SIGPIPE, SIG_IGN);
	m.sock = getenv("OVC_CTL");
	while ((c = getopt_long(argc, argv, "+s:jh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			m.sock = optarg;
			break;
		case 'j':
			m.json = true;
			break;
		case 'h':
			usage(stdout);
			return MC_OK;
		default:
			usage(stderr);
			return MC_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return MC_USAGE;
	}
	if (!m.sock || !*m.sock) {
		if (ovc_ctl_default_path(defpath, sizeof(defpath), "ovc-vmm")) {
			fprintf(stderr, "memctl: no socket path: give -s PATH\n");
			return MC_USAGE;
		}
		m.sock = defpath;
	}
	cmd = mc_find(argv[optind]);
	if (!cmd) {
		fprintf(stderr, "memctl: no command '%s' (memctl help lists them)\n", argv[optind]);
		return MC_USAGE;
	}
	/* Each command sees its own argv: argv[0] is its name. */
	ret = cmd->fn(&m, argc - optind, argv + optind);
	if (m.conn)
		fclose(m.conn);
	return ret;
}
