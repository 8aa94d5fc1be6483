// SPDX-License-Identifier: MIT
/* tests/test-ctl.c: the control socket, its hostile clients, the exporters, and memctl against a live host. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include <ovc/ovc.h>
#include "host/ctl-internal.h"
#include "host/host-internal.h"

#define MiB (1ULL << 20)

static struct ovc_host *host;
static struct ovc_vm *vm_a, *vm_b;
static struct ovc_balloon *balloon;
static struct ovc_vcpu *vcpu;
static struct ovc_ctl *ctl;
static char dir[64], sock[128];

static void start_ctl(const struct ovc_ctl_config *cfg)
{
	ctl = ovc_ctl_start(host, sock, cfg);
	cr_assert_not_null(ctl, "ovc_ctl_start: %s", strerror(errno));
}

/* A host with VM a (16M RAM, a balloon, one vCPU: this thread) and VM b (8M), one tick done. */
static void setup_host(void)
{
	struct ovc_host_config cfg;
	void *hva;

	ovc_host_config_init(&cfg);
	cfg.tick_ms = 100;
	cfg.log_level = OVC_LOG_ERR - 1;
	host = ovc_host_new(&cfg);
	cr_assert_not_null(host, "ovc_host_new: %s", strerror(errno));
	ovc_thread_register();
	vm_a = ovc_vm_new(host, "a");
	vm_b = ovc_vm_new(host, "b");
	cr_assert(vm_a && vm_b);
	cr_assert_eq(ovc_vm_add_ram(vm_a, 0, 16 * MiB, &hva), 0);
	memset(hva, 0x5a, 64 * OVC_PAGE_SIZE);
	cr_assert_eq(ovc_vm_add_ram(vm_b, 0, 8 * MiB, &hva), 0);
	balloon = ovc_vm_add_balloon(vm_a, NULL);
	cr_assert_not_null(balloon);
	vcpu = ovc_vm_add_vcpu(vm_a, (pid_t)syscall(SYS_gettid));
	cr_assert_not_null(vcpu);
	ovc__host_tick(host);
	snprintf(dir, sizeof(dir), "/tmp/ovc-test-ctl-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/ctl.sock", dir);
}

static void setup(void)
{
	struct ovc_ctl_config cfg;

	setup_host();
	ovc_ctl_config_init(&cfg);
	cfg.max_clients = 4;
	cfg.max_line = 4096;
	cfg.max_output = 256 * 1024;
	cfg.idle_ms = 400;
	start_ctl(&cfg);
}

static void teardown(void)
{
	if (!host)
		return;		/* already torn down by skip_now() */
	cr_assert_eq(ovc_ctl_stop(ctl), 0);
	ctl = NULL;
	cr_assert_eq(ovc_vcpu_remove(vcpu), 0);
	cr_assert_eq(ovc_balloon_remove(balloon), 0);
	cr_assert_eq(ovc_vm_destroy(vm_a), 0);
	cr_assert_eq(ovc_vm_destroy(vm_b), 0);
	ovc_thread_unregister();
	cr_assert_eq(ovc_host_destroy(host), 0);
	host = NULL;
	rmdir(dir);
}

/* A skipped test's .fini does not run: tear the fixture down first. */
static void skip_now(const char *why)
{
	teardown();
	cr_skip_test("%s", why);
}

/* Raw clients. */

static int cl_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
		     strerror(errno));
	return fd;
}

static void cl_send(int fd, const char *s)
{
	size_t len = strlen(s), off = 0;

	while (off < len) {
		ssize_t n = send(fd, s + off, len - off, MSG_NOSIGNAL);

		cr_assert_gt(n, 0, "send: %s", strerror(errno));
		off += (size_t)n;
	}
}

/* One reply line (NULL at EOF), within 5 s. */
static json_t *cl_read(int fd)
{
	static char buf[1 << 20];
	size_t len = 0;
	json_error_t jerr;
	json_t *o;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		cr_assert_eq(poll(&p, 1, 5000), 1, "no reply within 5 s");
		n = recv(fd, buf + len, 1, 0);
		if (n <= 0)
			return NULL;
		if (buf[len] == '\n')
			break;
		cr_assert_lt(++len, sizeof(buf) - 1);
	}
	o = json_loadb(buf, len, 0, &jerr);
	cr_assert_not_null(o, "reply is not JSON: %s: %.*s", jerr.text, (int)len, buf);
	cr_assert(json_is_object(o));
	return o;
}

static json_t *call(int fd, const char *req)
{
	json_t *r;

	cl_send(fd, req);
	cl_send(fd, "\n");
	r = cl_read(fd);
	cr_assert_not_null(r, "connection closed after %s", req);
	return r;
}

static void expect_error(json_t *r, const char *code)
{
	json_t *e = json_object_get(r, "error");

	cr_assert(json_is_false(json_object_get(r, "ok")), "expected an error %s", code);
	cr_assert_str_eq(json_string_value(json_object_get(e, "code")), code);
	cr_assert_gt(strlen(json_string_value(json_object_get(e, "message"))), 0);
	json_decref(r);
}

static json_t *expect_ok(json_t *r)
{
	cr_assert(json_is_true(json_object_get(r, "ok")), "error: %s",
		  json_string_value(json_object_get(json_object_get(r, "error"), "message")));
	return r;
}

static bool closed(int fd)
{
	char c;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	cr_assert_eq(poll(&p, 1, 5000), 1, "the server did not close the connection");
	/* EOF, or a reset when the server closed with our bytes unread. */
	return recv(fd, &c, 1, 0) == 0 || errno == ECONNRESET;
}

TestSuite(ctl, .init = setup, .fini = teardown, .timeout = 30);

Test(ctl, socket_mode_and_status)
{
	struct stat st;
	json_t *r, *h;
	int fd;

	cr_assert_eq(stat(sock, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode));
	cr_assert_eq(st.st_mode & 0777, 0600);
	cr_assert_str_eq(ovc_ctl_path(ctl), sock);
	fd = cl_connect();
	r = expect_ok(call(fd, "{\"req\":\"status\",\"id\":7}"));
	cr_assert_eq(json_integer_value(json_object_get(r, "id")), 7);
	cr_assert_eq(json_integer_value(json_object_get(r, "protocol")), OVC_CTL_PROTOCOL);
	cr_assert_eq(json_integer_value(json_object_get(r, "nvms")), 2);
	h = json_object_get(r, "host");
	cr_assert_gt(json_integer_value(json_object_get(h, "total_bytes")), 0);
	cr_assert_not_null(json_string_value(json_object_get(h, "state")));
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(r, "vms_total"), "ram_bytes")),
		     24 * MiB);
	json_decref(r);
	close(fd);
}

Test(ctl, vm_list_show_and_stats)
{
	json_t *r, *v;
	int fd = cl_connect();

	r = expect_ok(call(fd, "{\"req\":\"vm.list\"}"));
	v = json_object_get(r, "vms");
	cr_assert_eq(json_array_size(v), 2);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(v, 0), "name")), "a");
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(v, 0), "resident_bytes")),
		     64 * OVC_PAGE_SIZE);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(v, 0), "vcpus")), 1);
	json_decref(r);

	r = expect_ok(call(fd, "{\"req\":\"vm.show\",\"vm\":\"a\"}"));
	v = json_object_get(r, "vm");
	cr_assert_str_eq(json_string_value(json_object_get(v, "name")), "a");
	cr_assert(json_is_object(json_object_get(v, "balloon")));
	cr_assert(json_is_null(json_object_get(v, "pager")));
	cr_assert_eq(json_array_size(json_object_get(v, "vcpus")), 1);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(r, "tunables"), "mem.shares")),
		     OVC_SHARES_DEFAULT);
	json_decref(r);
	r = expect_ok(call(fd, "{\"req\":\"vm.show\",\"vm\":\"b\"}"));
	cr_assert_null(json_object_get(json_object_get(r, "tunables"), "balloon.target"),
		       "a VM without a balloon has no balloon.target");
	json_decref(r);
	expect_error(call(fd, "{\"req\":\"vm.show\",\"vm\":\"nope\"}"), "unknown-vm");
	expect_error(call(fd, "{\"req\":\"vm.show\"}"), "bad-request");

	r = expect_ok(call(fd, "{\"req\":\"stats\"}"));
	v = json_object_get(r, "stats");
	cr_assert_geq(json_integer_value(json_object_get(v, "seq")), 1);
	cr_assert_eq(json_array_size(json_object_get(v, "vms")), 2);
	json_decref(r);
	r = expect_ok(call(fd, "{\"req\":\"stats\",\"vm\":\"b\"}"));
	v = json_object_get(json_object_get(r, "stats"), "vms");
	cr_assert_eq(json_array_size(v), 1);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(v, 0), "name")), "b");
	json_decref(r);
	expect_error(call(fd, "{\"req\":\"stats\",\"vm\":\"zz\"}"), "unknown-vm");
	r = expect_ok(call(fd, "{\"req\":\"requests\"}"));
	cr_assert_geq(json_array_size(json_object_get(r, "requests")), 9);
	json_decref(r);
	close(fd);
}

Test(ctl, get_and_set_policy)
{
	struct ovc_vm_policy p;
	json_t *r, *v;
	int fd = cl_connect();

	r = expect_ok(call(fd, "{\"req\":\"get\",\"vm\":\"a\"}"));
	v = json_object_get(r, "values");
	cr_assert_eq(json_object_size(v), ovc__ntunables);
	json_decref(r);
	r = expect_ok(call(fd, "{\"req\":\"get\",\"vm\":\"a\",\"keys\":[\"cpu.limit\"]}"));
	cr_assert_eq(json_object_size(json_object_get(r, "values")), 1);
	json_decref(r);

	r = expect_ok(call(fd, "{\"req\":\"set\",\"vm\":\"a\",\"values\":{\"mem.shares\":2000,"
			   "\"mem.reservation\":\"4M\",\"mem.limit\":\"12M\",\"cpu.shares\":500,"
			   "\"cpu.reservation\":0.5,\"cpu.limit\":1.5}}"));
	v = json_object_get(r, "values");
	cr_assert_eq(json_integer_value(json_object_get(v, "mem.limit")), 12 * MiB);
	json_decref(r);
	cr_assert_eq(ovc_vm_get_policy(vm_a, &p), 0);
	cr_assert_eq(p.mem_shares, 2000);
	cr_assert_eq(p.mem_reservation_bytes, 4 * MiB);
	cr_assert_eq(p.mem_limit_bytes, 12 * MiB);
	cr_assert_eq(p.cpu_shares, 500);
	cr_assert_float_eq(p.cpu_reservation, 0.5, 1e-12);
	cr_assert_float_eq(p.cpu_limit, 1.5, 1e-12);

	/* Raising both in one request works whatever the keys' order. */
	json_decref(expect_ok(call(fd, "{\"req\":\"set\",\"vm\":\"a\",\"values\":{\"mem.reservation\":\"14M\","
		       "\"mem.limit\":\"15M\"}}")));
	cr_assert_eq(ovc_vm_get_policy(vm_a, &p), 0);
	cr_assert_eq(p.mem_reservation_bytes, 14 * MiB);

	/* Refused requests change nothing, even their valid keys. */
	expect_error(call(fd, "{\"req\":\"set\",\"vm\":\"a\",\"values\":{\"mem.shares\":7,"
			  "\"mem.limit\":\"1M\"}}"), "refused");
	expect_error(call(fd, "{\"req\":\"set\",\"vm\":\"a\",\"values\":{\"mem.shares\":7,"
			  "\"cpu.limit\":-1}}"), "out-of-range");
	expect_error(call(fd, "{\"req\":\"set\",\"vm\":\"a\",\"values\":{\"mem.shares\":0}}"),
		     "out-of-range");
	expect_error(call(fd, "{\"req\":\"set\",\"vm\":\"a\",\"values\":{\"mem.shares\":2000000}}"),
		     "out-of-range");
	expect_error(call(fd, "{\"req\":\"set\",\"vm\":\"a\",\"values\":{\"mem.shares\":\"lots\"}}"),
		     "bad-type");
	expect_error(call(fd, "{\"req\":\"set\",\"vm\":\"a\",\"values\":{\"mem.shares\":1.5}}"),
		     "bad-type");
	expect_error(call(fd, "{\"req\":\"set\",\"vm\":\"a\",\"values\":{\"mem.limit\":\"12Q\"}}"),
		     "bad-type");
	expect_error(call(fd, "{\"req\":\"set\",\"vm\":\"a\",\"values\":{\"cpu.limit\":true}}"),
		     "bad-type");
	expect_error(call(fd, "{\"req\":\"set\",\"vm\":\"a\",\"values\":{\"mem.shares\":7,"
			  "\"no.such\":1}}"), "unknown-key");
	expect_error(call(fd, "{\"req\":\"set\",\"vm\":\"a\",\"values\":[1]}"), "bad-type");
	expect_error(call(fd, "{\"req\":\"set\",\"vm\":\"a\",\"values\":{}}"), "bad-request");
	expect_error(call(fd, "{\"req\":\"set\",\"vm\":\"a\"}"), "bad-request");
	expect_error(call(fd, "{\"req\":\"set\",\"values\":{\"mem.shares\":7}}"), "bad-request");
	expect_error(call(fd, "{\"req\":\"set\",\"vm\":\"zz\",\"values\":{\"mem.shares\":7}}"),
		     "unknown-vm");
	expect_error(call(fd, "{\"req\":\"set\",\"vm\":5,\"values\":{\"mem.shares\":7}}"), "bad-type");
	expect_error(call(fd, "{\"req\":\"get\",\"vm\":\"a\",\"keys\":\"mem.shares\"}"), "bad-type");
	expect_error(call(fd, "{\"req\":\"get\",\"vm\":\"a\",\"keys\":[\"x.y\"]}"), "unknown-key");
	cr_assert_eq(ovc_vm_get_policy(vm_a, &p), 0);
	cr_assert_eq(p.mem_shares, 2000, "a refused request changed mem.shares");
	cr_assert_eq(p.mem_limit_bytes, 15 * MiB);
	close(fd);
}

Test(ctl, balloon_target)
{
	struct ovc_balloon_stats st;
	json_t *r;
	int fd = cl_connect();

	r = expect_ok(call(fd, "{\"req\":\"set\",\"vm\":\"a\",\"values\":{\"balloon.target\":\"4M\"}}"));
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(r, "values"), "balloon.target")),
		     4 * MiB);
	json_decref(r);
	cr_assert_eq(ovc_balloon_get_stats(balloon, &st), 0);
	cr_assert_eq(st.target_pages, 4 * MiB / OVC_PAGE_SIZE);
	expect_error(call(fd, "{\"req\":\"set\",\"vm\":\"b\",\"values\":{\"balloon.target\":4096}}"),
		     "unavailable");
	expect_error(call(fd, "{\"req\":\"get\",\"vm\":\"b\",\"keys\":[\"balloon.target\"]}"),
		     "unavailable");
	expect_error(call(fd, "{\"req\":\"set\",\"vm\":\"a\",\"values\":{\"balloon.target\":\"1G\"}}"),
		     "refused");
	cr_assert_eq(ovc_balloon_get_stats(balloon, &st), 0);
	cr_assert_eq(st.target_pages, 4 * MiB / OVC_PAGE_SIZE);
	close(fd);
}

Test(ctl, tunables_registry)
{
	json_t *r, *t;
	size_t i;
	int fd = cl_connect();

	r = expect_ok(call(fd, "{\"req\":\"tunables\"}"));
	cr_assert_eq(json_array_size(json_object_get(r, "tunables")), ovc__ntunables);
	json_array_foreach(json_object_get(r, "tunables"), i, t) {
		cr_assert_not_null(ovc__tunable_find(json_string_value(json_object_get(t, "key"))));
		cr_assert_gt(strlen(json_string_value(json_object_get(t, "help"))), 0);
	}
	json_decref(r);
	for (i = 0; i < ovc__ntunables; i++)
		cr_assert_not_null(ovc__tunables[i].get, "%s has no getter", ovc__tunables[i].key);
	close(fd);
}

Test(ctl, metrics_prometheus)
{
	const char *text;
	json_t *r;
	int fd = cl_connect();

	r = expect_ok(call(fd, "{\"req\":\"metrics\"}"));
	text = json_string_value(json_object_get(r, "text"));
	cr_assert_not_null(text);
	cr_assert_not_null(strstr(text, "# TYPE ovc_vm_resident_bytes gauge\n"));
	cr_assert_not_null(strstr(text, "ovc_vm_resident_bytes{vm=\"a\"} 262144\n"));
	cr_assert_not_null(strstr(text, "# TYPE ovc_vm_faults_total counter\n"));
	cr_assert_not_null(strstr(text, "# TYPE ovc_vm_fault_service_seconds histogram\n"));
	cr_assert_not_null(strstr(text, "ovc_vm_fault_service_seconds_bucket{vm=\"a\",le=\"+Inf\"}"));
	cr_assert_not_null(strstr(text, "ovc_vcpu_cpu_seconds_total{vm=\"a\",vcpu=\"0\"}"));
	cr_assert_not_null(strstr(text, "ovc_vm_balloon_target_bytes{vm=\"a\"}"));
	cr_assert_null(strstr(text, "ovc_vm_balloon_target_bytes{vm=\"b\"}"));
	/* Every sample's family was announced first. */
	for (const char *l = text; *l; l = strchr(l, '\n') + 1) {
		char fam[128], type[160];
		size_t n = strcspn(l, "{ ");

		if (*l != '#') {
			cr_assert_lt(n, sizeof(fam));
			memcpy(fam, l, n);
			fam[n] = '\0';
			snprintf(type, sizeof(type), "# TYPE %s ", fam);
			if (!strstr(text, type)) {
				char *u = strrchr(fam, '_');

				cr_assert_not_null(u, "no TYPE for %s", fam);
				*u = '\0';
				snprintf(type, sizeof(type), "# TYPE %s histogram", fam);
				cr_assert_not_null(strstr(text, type), "no TYPE for %.*s", (int)n, l);
			}
		}
	}
	json_decref(r);
	close(fd);
}

/* promtool (Debian package prometheus) lints the exposition where it is installed. */
Test(ctl, metrics_promtool)
{
	char path[160], cmd[400];
	const char *text;
	json_t *r;
	FILE *f;
	int fd, st;

	if (system("command -v promtool >/dev/null 2>&1") != 0)
		skip_now("promtool is not installed (Debian package prometheus)");
	fd = cl_connect();
	r = expect_ok(call(fd, "{\"req\":\"metrics\"}"));
	text = json_string_value(json_object_get(r, "text"));
	snprintf(path, sizeof(path), "%s/metrics.txt", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < '%s'", path);
	st = system(cmd);
	unlink(path);
	cr_assert_eq(st, 0, "promtool check metrics failed");
	json_decref(r);
	close(fd);
}

/* Hostile clients: each gets a clear error or is dropped; the host serves on. */

Test(ctl, malformed_requests)
{
	char big[3000];
	json_t *r;
	int fd = cl_connect();

	expect_error(call(fd, "{\"req\":"), "bad-json");
	expect_error(call(fd, "not json at all"), "bad-json");
	expect_error(call(fd, "{\"req\":\"status\",\"req\":\"metrics\"}"), "bad-json");
	expect_error(call(fd, "[1,2,3]"), "bad-request");
	expect_error(call(fd, "42"), "bad-request");
	expect_error(call(fd, "\"status\""), "bad-request");
	expect_error(call(fd, "{}"), "bad-request");
	expect_error(call(fd, "{\"req\":17}"), "bad-request");
	expect_error(call(fd, "{\"req\":\"launch-missiles\"}"), "unknown-request");
	expect_error(call(fd, "{\"req\":\"status\",\"verbose\":true}"), "bad-request");
	expect_error(call(fd, "{\"req\":\"get\",\"vm\":\"a\\u0000b\"}"), "bad-json");
	/* Deep nesting is refused by the parser, not by the stack. */
	memset(big, '[', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	expect_error(call(fd, big), "bad-json");
	/* The id comes back even on errors, and CRLF and blank lines are fine. */
	cl_send(fd, "\n\r\n{\"req\":\"nope\",\"id\":\"x1\"}\r\n");
	r = cl_read(fd);
	cr_assert_str_eq(json_string_value(json_object_get(r, "id")), "x1");
	expect_error(r, "unknown-request");
	/* Two requests in one write, answered in order. */
	cl_send(fd, "{\"req\":\"status\",\"id\":1}\n{\"req\":\"vm.list\",\"id\":2}\n");
	r = expect_ok(cl_read(fd));
	cr_assert_eq(json_integer_value(json_object_get(r, "id")), 1);
	json_decref(r);
	r = expect_ok(cl_read(fd));
	cr_assert_eq(json_integer_value(json_object_get(r, "id")), 2);
	json_decref(r);
	json_decref(expect_ok(call(fd, "{\"req\":\"status\"}")));
	close(fd);
}

Test(ctl, over_long_line_is_dropped)
{
	char *line = malloc(10000);
	int fd = cl_connect(), fd2;

	memset(line, 'x', 9999);
	line[9999] = '\0';
	/* The server reads at most its limit: the rest may meet a closed socket. */
	send(fd, line, 9999, MSG_NOSIGNAL);
	expect_error(cl_read(fd), "line-too-long");
	cr_assert(closed(fd));
	close(fd);
	free(line);
	fd2 = cl_connect();
	json_decref(expect_ok(call(fd2, "{\"req\":\"status\"}")));
	close(fd2);
}

Test(ctl, idle_and_half_sent_clients_are_dropped)
{
	int idle = cl_connect(), partial = cl_connect(), fd;

	cl_send(partial, "{\"req\":\"sta");
	/* idle_ms is 400 in the fixture. */
	cr_assert(closed(idle));
	cr_assert(closed(partial));
	close(idle);
	close(partial);
	fd = cl_connect();
	json_decref(expect_ok(call(fd, "{\"req\":\"status\"}")));
	close(fd);
}

Test(ctl, client_that_never_reads_is_dropped)
{
	int fd = cl_connect(), fd2, i, sz = 4096;
	bool gone = false;

	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	/* Metrics replies are kilobytes: the 256K output limit fills quickly. */
	for (i = 0; i < 2000 && !gone; i++) {
		if (send(fd, "{\"req\":\"metrics\"}\n", 18, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			gone = errno == EPIPE || errno == ECONNRESET;
		if (errno == EAGAIN)
			usleep(1000);
	}
	fd2 = cl_connect();
	json_decref(expect_ok(call(fd2, "{\"req\":\"status\"}")));
	close(fd2);
	/* Whatever was queued, the connection ends without the client reading. */
	for (i = 0; i < 500; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char buf[65536];
		ssize_t n;

		if (poll(&p, 1, 5000) != 1)
			break;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0) {
			gone = true;
			break;
		}
	}
	cr_assert(gone, "a client that never read was never dropped");
	close(fd);
}

Test(ctl, vanished_clients)
{
	int i, fd;

	for (i = 0; i < 20; i++) {
		fd = cl_connect();
		cl_send(fd, "{\"req\":\"metrics\"}\n{\"req\":\"stats\"}\n");
		close(fd);	/* gone before the replies */
	}
	/* Their slots come free as the server sees them go. */
	for (i = 0; i < 200; i++) {
		json_t *r;

		fd = cl_connect();
		cl_send(fd, "{\"req\":\"status\"}\n");
		r = cl_read(fd);
		close(fd);
		if (r && json_is_true(json_object_get(r, "ok"))) {
			json_decref(r);
			break;
		}
		json_decref(r);
		usleep(10000);
	}
	cr_assert_lt(i, 200, "vanished clients kept their slots");
}

Test(ctl, too_many_clients)
{
	int fds[4], extra, i;

	for (i = 0; i < 4; i++) {
		fds[i] = cl_connect();
		json_decref(expect_ok(call(fds[i], "{\"req\":\"status\"}")));
	}
	extra = cl_connect();
	expect_error(cl_read(extra), "busy");
	cr_assert(closed(extra));
	close(extra);
	close(fds[0]);
	/* A freed slot serves the next client. */
	for (i = 0; i < 100; i++) {
		json_t *r;

		extra = cl_connect();
		cl_send(extra, "{\"req\":\"status\"}\n");
		r = cl_read(extra);
		close(extra);
		if (r && json_is_true(json_object_get(r, "ok"))) {
			json_decref(r);
			break;
		}
		json_decref(r);
		usleep(10000);
	}
	cr_assert_lt(i, 100, "a freed slot was never reused");
	for (i = 1; i < 4; i++)
		close(fds[i]);
}

Test(ctl, other_users_are_denied)
{
	int pipefd[2], status;
	char buf[512] = { 0 };
	pid_t pid;

	if (geteuid() != 0)
		skip_now("needs root to connect as another user");
	/* Open the mode so only the credential check stands in the way. */
	cr_assert_eq(chmod(sock, 0666), 0);
	cr_assert_eq(chmod(dir, 0755), 0);
	cr_assert_eq(pipe(pipefd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		ssize_t n;
		int fd;

		if (setgid(65534) || setuid(65534))
			_exit(10);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		memcpy(sa.sun_path, sock, strlen(sock) + 1);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			_exit(11);
		n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n > 0 && write(pipefd[1], buf, (size_t)n) != n)
			_exit(12);
		_exit(0);
	}
	close(pipefd[1]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
	cr_assert_gt(read(pipefd[0], buf, sizeof(buf) - 1), 0);
	close(pipefd[0]);
	cr_assert_not_null(strstr(buf, "\"denied\""), "reply: %s", buf);
}

Test(ctl_start, paths, .init = setup_host, .fini = teardown, .timeout = 30)
{
	struct ovc_ctl *second;
	char longpath[200], def[108];
	int fd;

	memset(longpath, 'p', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	errno = 0;
	cr_assert_null(ovc_ctl_start(host, longpath, NULL));
	cr_assert_eq(errno, ENAMETOOLONG);
	cr_assert_null(ovc_ctl_start(NULL, sock, NULL));
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(ovc_ctl_start(host, "", NULL));

	/* A stale socket (nobody listening) is replaced. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };

		memcpy(sa.sun_path, sock, strlen(sock) + 1);
		cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	}
	close(fd);
	start_ctl(NULL);
	/* A live one is not. */
	errno = 0;
	second = ovc_ctl_start(host, sock, NULL);
	cr_assert_null(second);
	cr_assert_eq(errno, EADDRINUSE);
	fd = cl_connect();
	json_decref(expect_ok(call(fd, "{\"req\":\"status\"}")));
	close(fd);

	setenv("XDG_RUNTIME_DIR", "/run/user/1234", 1);
	cr_assert_eq(ovc_ctl_default_path(def, sizeof(def), "ovc-vmm"), 0);
	cr_assert_str_eq(def, "/run/user/1234/ovc/ovc-vmm.sock");
	unsetenv("XDG_RUNTIME_DIR");
	cr_assert_eq(ovc_ctl_default_path(def, sizeof(def), "ovc-vmm"), 0);
	cr_assert_str_eq(def, "/run/ovc/ovc-vmm.sock");
	cr_assert_eq(ovc_ctl_default_path(def, 8, "ovc-vmm"), -ENAMETOOLONG);
	cr_assert_eq(ovc_ctl_default_path(def, sizeof(def), "a/b"), -EINVAL);
}

Test(ctl_start, no_snapshot_yet, .timeout = 30)
{
	struct ovc_host_config cfg;
	struct ovc_ctl *c;
	json_t *r;
	int fd;

	ovc_host_config_init(&cfg);
	cfg.tick_ms = 60000;
	host = ovc_host_new(&cfg);
	cr_assert_not_null(host);
	snprintf(dir, sizeof(dir), "/tmp/ovc-test-ctl-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/sub/ctl.sock", dir);
	c = ovc_ctl_start(host, sock, NULL);
	cr_assert_not_null(c, "%s", strerror(errno));
	fd = cl_connect();
	r = expect_ok(call(fd, "{\"req\":\"status\"}"));
	cr_assert_eq(json_integer_value(json_object_get(r, "seq")), 0);
	json_decref(r);
	expect_error(call(fd, "{\"req\":\"vm.list\"}"), "unavailable");
	expect_error(call(fd, "{\"req\":\"metrics\"}"), "unavailable");
	close(fd);
	cr_assert_eq(ovc_ctl_stop(c), 0);
	cr_assert_eq(access(sock, F_OK), -1, "the socket was left behind");
	snprintf(sock, sizeof(sock), "%s/sub", dir);
	cr_assert_eq(access(sock, F_OK), -1, "the directory made for the socket was left behind");
	cr_assert_eq(ovc_host_destroy(host), 0);
	cr_assert_eq(rmdir(dir), 0);
}

Test(ctl_start, sizes)
{
	char buf[16];
	uint64_t v;

	cr_assert_eq(ovc_size_parse("512M", &v), 0);
	cr_assert_eq(v, 512 * MiB);
	cr_assert_eq(ovc_size_parse("1.5G", &v), 0);
	cr_assert_eq(v, 1536 * MiB);
	cr_assert_eq(ovc_size_parse("4096", &v), 0);
	cr_assert_eq(v, 4096);
	cr_assert_eq(ovc_size_parse("2KiB", &v), 0);
	cr_assert_eq(v, 2048);
	cr_assert_eq(ovc_size_parse("1.5", &v), -EINVAL);
	cr_assert_eq(ovc_size_parse("-1M", &v), -EINVAL);
	cr_assert_eq(ovc_size_parse("1X", &v), -EINVAL);
	cr_assert_eq(ovc_size_parse("", &v), -EINVAL);
	cr_assert_eq(ovc_size_parse("99999999T", &v), -EINVAL);
	cr_assert_eq(ovc_size_parse("nan", &v), -EINVAL);
	cr_assert_str_eq(ovc_size_format(buf, sizeof(buf), 512 * MiB), "512M");
	cr_assert_str_eq(ovc_size_format(buf, sizeof(buf), 1536 * MiB), "1.5G");
	cr_assert_str_eq(ovc_size_format(buf, sizeof(buf), 1000), "1000");
	cr_assert_str_eq(ovc_size_format(buf, sizeof(buf), 4096), "4K");
	cr_assert_str_eq(ovc_size_format(buf, sizeof(buf), 0), "0");
	cr_assert_str_eq(ovc_size_format(buf, sizeof(buf), UINT64_MAX), "16E");
}

Test(ctl, exporters_direct)
{
	const struct ovc_stats_snapshot *s;
	json_error_t jerr;
	char *text;
	json_t *o;

	errno = 0;
	cr_assert_null(ovc_stats_format_json(NULL, NULL));
	cr_assert_eq(errno, EINVAL);
	cr_assert_null(ovc_stats_format_prometheus(NULL, NULL));
	s = ovc_stats_get(host);
	cr_assert_not_null(s);
	text = ovc_stats_format_json(s, "a");
	cr_assert_not_null(text);
	o = json_loads(text, 0, &jerr);
	cr_assert_not_null(o, "%s", jerr.text);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(
		json_array_get(json_object_get(o, "vms"), 0), "pages"), "resident")), 64);
	json_decref(o);
	free(text);
	errno = 0;
	cr_assert_null(ovc_stats_format_json(s, "nope"));
	cr_assert_eq(errno, ENOENT);
	ovc_stats_put(s);
}

/* memctl against the live in-process host. */

struct mc_run {
	int status;
	char out[1 << 16];
	char err[4096];
};

static void slurp(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;

	while (len + 1 < cap && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
}

/* Run memctl -s SOCK ARGS...; NULL-terminated. @sock NULL: no -s. */
static int memctl(struct mc_run *r, const char *sockpath, ...)
{
	const char *argv[32];
	char outp[160], errp[160];
	unsigned int n = 0;
	va_list ap;
	int status, fd;
	pid_t pid;

	argv[n++] = MEMCTL_PATH;
	if (sockpath) {
		argv[n++] = "-s";
		argv[n++] = sockpath;
	}
	va_start(ap, sockpath);
	while ((argv[n] = va_arg(ap, const char *)) && n < 30)
		n++;
	va_end(ap);
	argv[n] = NULL;
	snprintf(outp, sizeof(outp), "%s/memctl.out", dir);
	snprintf(errp, sizeof(errp), "%s/memctl.err", dir);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int nul = open("/dev/null", O_RDONLY);

		dup2(nul, 0);
		dup2(o, 1);
		dup2(e, 2);
		unsetenv("OVC_CTL");
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	fd = open(outp, O_RDONLY);
	slurp(fd, r->out, sizeof(r->out));
	close(fd);
	fd = open(errp, O_RDONLY);
	slurp(fd, r->err, sizeof(r->err));
	close(fd);
	unlink(outp);
	unlink(errp);
	return r->status;
}

static json_t *parse(const char *text)
{
	json_error_t jerr;
	json_t *o = json_loads(text, 0, &jerr);

	cr_assert_not_null(o, "--json output is not one JSON object: %s: %s", jerr.text, text);
	return o;
}

TestSuite(memctl, .init = setup, .fini = teardown, .timeout = 60);

Test(memctl, status_and_vm)
{
	static struct mc_run r;
	json_t *o;

	cr_assert_eq(memctl(&r, sock, "status", NULL), 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out, "memory "), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "2 VMs"), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "24M RAM"), "%s", r.out);
	cr_assert_eq(memctl(&r, sock, "--json", "status", NULL), 0);
	o = parse(r.out);
	cr_assert_eq(json_integer_value(json_object_get(o, "nvms")), 2);
	json_decref(o);

	cr_assert_eq(memctl(&r, sock, "vm", "list", NULL), 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out, "MEMSZ"));
	cr_assert_not_null(strstr(r.out, "\na "), "%s", r.out);
	cr_assert_not_null(strstr(r.out, " 16M "), "%s", r.out);
	cr_assert_not_null(strstr(r.out, " 256K "), "%s", r.out);
	cr_assert_eq(memctl(&r, sock, "-j", "vm", "list", NULL), 0);
	o = parse(r.out);
	cr_assert_eq(json_array_size(json_object_get(o, "vms")), 2);
	json_decref(o);

	cr_assert_eq(memctl(&r, sock, "vm", "show", "a", NULL), 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out, "mem.shares=1000"), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "vcpu 0"), "%s", r.out);
	cr_assert_eq(memctl(&r, sock, "--json", "vm", "show", "b", NULL), 0);
	o = parse(r.out);
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(o, "vm"), "name")), "b");
	json_decref(o);
	cr_assert_eq(memctl(&r, sock, "vm", "show", "nope", NULL), 1);
	cr_assert_not_null(strstr(r.err, "no VM named 'nope' (unknown-vm)"), "%s", r.err);
	cr_assert_eq(memctl(&r, sock, "--json", "vm", "show", "nope", NULL), 1);
	o = parse(r.out);
	cr_assert(json_is_false(json_object_get(o, "ok")));
	json_decref(o);
	cr_assert_eq(memctl(&r, sock, "vm", NULL), 2);
	cr_assert_eq(memctl(&r, sock, "vm", "show", NULL), 2);
	cr_assert_eq(memctl(&r, sock, "vm", "frobnicate", NULL), 2);
	cr_assert_eq(memctl(&r, sock, "status", "extra", NULL), 2);
}

Test(memctl, set_get_balloon)
{
	static struct mc_run r;
	struct ovc_balloon_stats st;
	struct ovc_vm_policy p;
	json_t *o;

	cr_assert_eq(memctl(&r, sock, "set", "a", "mem.shares=3000", "mem.limit=12M",
			    "cpu.limit=1.5", NULL), 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out, "a: mem.limit=12M"), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "a: cpu.limit=1.5"), "%s", r.out);
	cr_assert_eq(ovc_vm_get_policy(vm_a, &p), 0);
	cr_assert_eq(p.mem_shares, 3000);
	cr_assert_eq(p.mem_limit_bytes, 12 * MiB);
	cr_assert_float_eq(p.cpu_limit, 1.5, 1e-12);

	cr_assert_eq(memctl(&r, sock, "--json", "set", "a", "cpu.shares=10", NULL), 0);
	o = parse(r.out);
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(o, "values"), "cpu.shares")), 10);
	json_decref(o);

	cr_assert_eq(memctl(&r, sock, "set", "a", "mem.shares=0", NULL), 1);
	cr_assert_not_null(strstr(r.err, "out-of-range"), "%s", r.err);
	cr_assert_eq(memctl(&r, sock, "set", "a", "mem.reservation=13M", NULL), 1);
	cr_assert_not_null(strstr(r.err, "refused"), "%s", r.err);
	cr_assert_eq(memctl(&r, sock, "set", "a", "no.such=1", NULL), 1);
	cr_assert_eq(memctl(&r, sock, "set", "zz", "mem.shares=5", NULL), 1);
	cr_assert_eq(memctl(&r, sock, "set", "a", "mem.shares", NULL), 2);
	cr_assert_eq(memctl(&r, sock, "set", "a", "=5", NULL), 2);
	cr_assert_eq(memctl(&r, sock, "set", "a", NULL), 2);
	cr_assert_eq(memctl(&r, sock, "set", "a", "mem.shares=5", "mem.shares=6", NULL), 2);
	cr_assert_eq(memctl(&r, sock, "set", "mem.shares=5", NULL), 1, "host-wide form");
	cr_assert_eq(ovc_vm_get_policy(vm_a, &p), 0);
	cr_assert_eq(p.mem_shares, 3000, "a refused set changed the policy");

	cr_assert_eq(memctl(&r, sock, "get", "a", NULL), 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out, "mem.shares=3000\n"), "%s", r.out);
	cr_assert_eq(memctl(&r, sock, "get", "a", "mem.limit", NULL), 0);
	cr_assert_str_eq(r.out, "mem.limit=12M\n");
	cr_assert_eq(memctl(&r, sock, "-j", "get", "a", "mem.limit", NULL), 0);
	json_decref(parse(r.out));
	cr_assert_eq(memctl(&r, sock, "get", "a", "bogus", NULL), 1);
	cr_assert_eq(memctl(&r, sock, "get", NULL), 2);

	cr_assert_eq(memctl(&r, sock, "balloon", "a", "2M", NULL), 0, "%s", r.err);
	cr_assert_str_eq(r.out, "a: balloon.target=2M\n");
	cr_assert_eq(ovc_balloon_get_stats(balloon, &st), 0);
	cr_assert_eq(st.target_pages, 2 * MiB / OVC_PAGE_SIZE);
	cr_assert_eq(memctl(&r, sock, "balloon", "b", "2M", NULL), 1);
	cr_assert_not_null(strstr(r.err, "no balloon"), "%s", r.err);
	cr_assert_eq(memctl(&r, sock, "balloon", "a", "lots", NULL), 1);
	cr_assert_eq(memctl(&r, sock, "balloon", "a", NULL), 2);
}

Test(memctl, tunables_metrics_help)
{
	static struct mc_run r;
	json_t *o;
	size_t i;

	cr_assert_eq(memctl(&r, sock, "tunables", NULL), 0, "%s", r.err);
	for (i = 0; i < ovc__ntunables; i++)
		cr_assert_not_null(strstr(r.out, ovc__tunables[i].key), "%s missing", ovc__tunables[i].key);
	cr_assert_eq(memctl(&r, sock, "--json", "tunables", NULL), 0);
	json_decref(parse(r.out));

	cr_assert_eq(memctl(&r, sock, "metrics", NULL), 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out, "# TYPE ovc_vm_resident_bytes gauge"));
	cr_assert_not_null(strstr(r.out, "ovc_vm_resident_bytes{vm=\"a\"}"));
	cr_assert_eq(memctl(&r, sock, "-j", "metrics", NULL), 0);
	o = parse(r.out);
	cr_assert_not_null(strstr(json_string_value(json_object_get(o, "text")), "ovc_host_vms 2"));
	json_decref(o);
	cr_assert_eq(memctl(&r, sock, "metrics", "x", NULL), 2);

	/* help works without a host. */
	cr_assert_eq(memctl(&r, "/nonexistent/sock", "help", NULL), 0);
	for (i = 0; i < 9; i++) {
		static const char *const cmds[] = { "status", "vm list", "get", "set", "balloon",
						    "tunables", "metrics", "top", "help" };

		cr_assert_not_null(strstr(r.out, cmds[i]), "help does not list %s", cmds[i]);
	}
	cr_assert_eq(memctl(&r, NULL, "help", "set", NULL), 0);
	cr_assert_not_null(strstr(r.out, "usage: memctl set"), "%s", r.out);
	cr_assert_not_null(strstr(r.out, "memctl tunables"), "%s", r.out);
	cr_assert_eq(memctl(&r, NULL, "help", "top", NULL), 0);
	cr_assert_not_null(strstr(r.out, "%MLMTD"));
	cr_assert_eq(memctl(&r, NULL, "help", "nope", NULL), 2);
	cr_assert_eq(memctl(&r, NULL, "--help", NULL), 0);
	cr_assert_eq(memctl(&r, NULL, NULL), 2);
	cr_assert_eq(memctl(&r, NULL, "--bogus", "status", NULL), 2);
	cr_assert_eq(memctl(&r, NULL, "frob", NULL), 2);
}

Test(memctl, top_batch)
{
	static struct mc_run r;
	char *line;
	int rows = 0;

	cr_assert_eq(memctl(&r, sock, "top", "-b", "-n", "3", "-d", "0.15", NULL), 0, "%s", r.err);
	cr_assert_eq(strncmp(r.out, "time,seq,vm,vcpu,MEMSZ,TARGET,RESID,WSS,MCTLSZ,SHRD,ZERO,ZIP,"
			     "SWCUR,SWR/s,SWW/s,FLT/s,%USED,%RDY,%MLMTD\n", 86), 0, "%s", r.out);
	for (line = strchr(r.out, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
		int commas = 0;

		for (char *c = line + 1; *c && *c != '\n'; c++)
			commas += *c == ',';
		cr_assert_eq(commas, 18, "row with %d fields", commas + 1);
		rows++;
	}
	/* Per update: VM a, its vCPU, VM b. */
	cr_assert_eq(rows, 9, "%s", r.out);
	cr_assert_not_null(strstr(r.out, ",a,,16777216,0,262144,"), "%s", r.out);
	cr_assert_not_null(strstr(r.out, ",a,0,,,"), "%s", r.out);
	/* Updates further apart than the server's idle limit (400 ms) reconnect. */
	cr_assert_eq(memctl(&r, sock, "top", "-b", "-n", "2", "-d", "0.8", NULL), 0, "%s", r.err);
	cr_assert_not_null(strstr(strstr(r.out, ",b,,") + 1, ",b,,"), "two updates: %s", r.out);
	cr_assert_eq(memctl(&r, sock, "top", "-b", "-n", "1", "-o", "%USED", NULL), 0);
	cr_assert_eq(memctl(&r, sock, "top", "-b", "-n", "0", NULL), 2);
	cr_assert_eq(memctl(&r, sock, "top", "-b", "-d", "0", NULL), 2);
	cr_assert_eq(memctl(&r, sock, "top", "-b", "-o", "FOO", NULL), 2);
	cr_assert_eq(memctl(&r, sock, "top", "extra", NULL), 2);
	cr_assert_eq(memctl(&r, sock, "top", "-n", "1", NULL), 2, "stdout is no terminal");
	cr_assert_not_null(strstr(r.err, "-b"));
}

Test(memctl, cannot_connect)
{
	static struct mc_run r;
	char path[160];

	cr_assert_eq(memctl(&r, "/nonexistent/ovc.sock", "status", NULL), 3);
	cr_assert_not_null(strstr(r.err, "cannot connect to /nonexistent/ovc.sock"), "%s", r.err);
	cr_assert_eq(memctl(&r, "/nonexistent/ovc.sock", "top", "-b", "-n", "1", NULL), 3);
	/* A socket nobody serves any more. */
	snprintf(path, sizeof(path), "%s", sock);
	cr_assert_eq(ovc_ctl_stop(ctl), 0);
	ctl = NULL;
	cr_assert_eq(memctl(&r, path, "vm", "list", NULL), 3);
	start_ctl(NULL);
}

/* memctl against ovc-vmm running a KVM guest. */
Test(memctl_vmm, live_vmm, .timeout = 120)
{
	static struct mc_run r;
	char logdir[64], path[128];
	int status, i, fd;
	json_t *o;
	pid_t pid;

	if (access("/dev/kvm", R_OK | W_OK))
		cr_skip_test("no usable /dev/kvm: KVM guests cannot run here");
	snprintf(dir, sizeof(dir), "/tmp/ovc-test-ctl-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(logdir, sizeof(logdir), "%s", dir);
	snprintf(path, sizeof(path), "%s/vmm.sock", dir);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int nul = open("/dev/null", O_WRONLY);

		dup2(nul, 1);
		dup2(nul, 2);
		execl(OVC_VMM_PATH, OVC_VMM_PATH, "--vm",
		      "name=burn,mem=64M,vcpus=2,guest=cpuburn,args=duty=30,devices=balloon",
		      "--seconds", "6", "--grace", "10", "--quiet", "--log-dir", logdir,
		      "--ctl", path, (char *)NULL);
		_exit(127);
	}
	for (i = 0; i < 500 && access(path, F_OK); i++)
		usleep(10000);
	cr_assert_lt(i, 500, "ovc-vmm made no socket at %s", path);
	/* Wait for a snapshot with the VM in it. */
	for (i = 0; i < 50; i++) {
		if (memctl(&r, path, "-j", "vm", "list", NULL) == 0 && strstr(r.out, "\"burn\""))
			break;
		usleep(100000);
	}
	cr_assert_lt(i, 50, "no VM in ovc-vmm's list: %s %s", r.out, r.err);
	o = parse(r.out);
	cr_assert_eq(json_integer_value(json_object_get(json_array_get(json_object_get(o, "vms"), 0),
							"vcpus")), 2);
	json_decref(o);
	cr_assert_eq(memctl(&r, path, "status", NULL), 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out, "1 VMs, 2 vCPUs"), "%s", r.out);
	cr_assert_eq(memctl(&r, path, "set", "burn", "cpu.shares=500", "mem.limit=48M", NULL), 0,
		     "%s", r.err);
	cr_assert_eq(memctl(&r, path, "get", "burn", "cpu.shares", NULL), 0);
	cr_assert_str_eq(r.out, "cpu.shares=500\n");
	cr_assert_eq(memctl(&r, path, "balloon", "burn", "8M", NULL), 0, "%s", r.err);
	cr_assert_eq(memctl(&r, path, "top", "-b", "-n", "2", "-d", "0.5", NULL), 0, "%s", r.err);
	cr_assert_not_null(strstr(r.out, ",burn,1,"), "no vCPU row: %s", r.out);
	cr_assert_eq(memctl(&r, path, "metrics", NULL), 0);
	cr_assert_not_null(strstr(r.out, "ovc_vcpu_cpu_seconds_total{vm=\"burn\",vcpu=\"1\"}"));
	cr_assert_eq(memctl(&r, path, "vm", "show", "nope", NULL), 1);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "ovc-vmm status %d", status);
	cr_assert_eq(access(path, F_OK), -1, "ovc-vmm left its socket behind");
	fd = memctl(&r, path, "status", NULL);
	cr_assert_eq(fd, 3);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	cr_assert_eq(system(path), 0);
}

/* ovc-vmm's --ctl: an empty path is a usage error; a path it cannot use stops it. */
Test(memctl_vmm, ctl_option_errors, .timeout = 60)
{
	int status;
	pid_t pid;

	for (int k = 0; k < 2; k++) {
		if (k == 1 && access("/dev/kvm", R_OK | W_OK))
			cr_skip_test("no usable /dev/kvm");
		pid = fork();
		cr_assert_geq(pid, 0);
		if (pid == 0) {
			int nul = open("/dev/null", O_WRONLY);

			dup2(nul, 1);
			dup2(nul, 2);
			execl(OVC_VMM_PATH, OVC_VMM_PATH, "--vm", "name=x,mem=16M,guest=cpuburn",
			      "--seconds", "1", "--log-dir", "/tmp", "--ctl",
			      k == 0 ? "" : "/proc/no/such/dir/ovc.sock", (char *)NULL);
			_exit(127);
		}
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFEXITED(status));
		cr_assert_eq(WEXITSTATUS(status), k == 0 ? 2 : 3, "--ctl case %d: exit %d", k,
			     WEXITSTATUS(status));
	}
}

/* Out of file descriptors: connections wait in the backlog and are served once fds free up. */
Test(ctl, out_of_fds)
{
	struct rlimit old, low;
	int pipefd[2], status, lowest;
	char buf[512] = { 0 };
	pid_t pid;

	cr_assert_eq(pipe(pipefd), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		ssize_t n;
		int fd;

		close(pipefd[0]);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		memcpy(sa.sun_path, sock, strlen(sock) + 1);
		usleep(100000);		/* after the parent lowered its limit */
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
		    write(fd, "{\"req\":\"status\"}\n", 17) != 17)
			_exit(10);
		n = read(fd, buf, sizeof(buf) - 1);
		if (n <= 0 || write(pipefd[1], buf, (size_t)n) != n)
			_exit(11);
		_exit(0);
	}
	close(pipefd[1]);
	lowest = dup(0);	/* the lowest free descriptor */
	cr_assert_geq(lowest, 0);
	close(lowest);
	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = (rlim_t)lowest;	/* the next accept() gets EMFILE */
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	usleep(600000);		/* the child's connection meets EMFILE for a while */
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
	cr_assert_gt(read(pipefd[0], buf, sizeof(buf) - 1), 0);
	close(pipefd[0]);
	cr_assert_not_null(strstr(buf, "\"ok\":true"), "reply: %s", buf);
}
