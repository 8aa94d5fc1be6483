// SPDX-License-Identifier: MIT
/* examples/ctl.c: serve a host's control socket, then ask it for status and metrics like memctl does. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <ovc/ovc.h>

/* One request line out, one reply line back: the whole protocol (docs/PROTOCOL.md). */
static int ask(const char *path, const char *req)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[1 << 16];
	size_t len = 0;
	ssize_t n;
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		fprintf(stderr, "connect %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req) || write(fd, "\n", 1) != 1) {
		close(fd);
		return -1;
	}
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0) {
		len += (size_t)n;
		if (buf[len - 1] == '\n')
			break;
	}
	close(fd);
	buf[len] = '\0';
	printf("> %s\n< %.300s%s", req, buf, len > 300 ? "...\n" : "");
	return strstr(buf, "\"ok\":true") ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct ovc_host_config cfg;
	struct ovc_host *host;
	struct ovc_ctl *ctl;
	struct ovc_vm *vm;
	char path[108];
	void *hva;
	int ret = 1;

	snprintf(path, sizeof(path), "%s", argc > 1 ? argv[1] : "/tmp/ovc-example-ctl.sock");
	ovc_host_config_init(&cfg);
	cfg.tick_ms = 100;
	host = ovc_host_new(&cfg);
	if (!host) {
		fprintf(stderr, "ovc_host_new: %s\n", strerror(errno));
		return 1;
	}
	vm = ovc_vm_new(host, "demo");
	if (!vm || ovc_vm_add_ram(vm, 0, 16 << 20, &hva)) {
		fprintf(stderr, "cannot make the VM: %s\n", strerror(errno));
		goto out_host;
	}
	memset(hva, 1, 4 << 20);	/* 4 MiB resident, the rest untouched (zero) */
	ctl = ovc_ctl_start(host, path, NULL);
	if (!ctl) {
		fprintf(stderr, "ovc_ctl_start %s: %s\n", path, strerror(errno));
		goto out_vm;
	}
	usleep(300000);		/* a few ticks: the first snapshot */
	ret = ask(path, "{\"req\":\"status\"}") ||
	      ask(path, "{\"req\":\"set\",\"vm\":\"demo\",\"values\":{\"mem.limit\":\"8M\"}}") ||
	      ask(path, "{\"req\":\"metrics\"}");
	/* Now memctl -s PATH ... works too, until the server stops. */
	ovc_ctl_stop(ctl);
out_vm:
	if (vm && ovc_vm_destroy(vm))
		ret = 1;
out_host:
	if (ovc_host_destroy(host))
		ret = 1;
	return ret;
}
