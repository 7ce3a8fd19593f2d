/* sd_notify(3) without libsystemd: the protocol is one datagram to the
 * socket in $NOTIFY_SOCKET, a path or, with a leading '@', a name in the
 * abstract namespace. Linking libsystemd for that would add a dependency
 * to every build and every test machine. */
#include "callvault/notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int notify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t salen;
	size_t plen, len = strlen(state);
	ssize_t n;
	int fd, rc = 0;

	if (!path || !*path)
		return 0;
	plen = strlen(path);
	/* Only paths and abstract names: "vsock:" and friends are not
	 * spoken here. */
	if ((path[0] != '/' && path[0] != '@') || plen >= sizeof sa.sun_path)
		return EAFNOSUPPORT;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, plen);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen +
			    (path[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return errno;
	do {
		n = sendto(fd, state, len, MSG_NOSIGNAL,
			   (const struct sockaddr *)&sa, salen);
	} while (n == -1 && errno == EINTR);
	if (n == -1)
		rc = errno;
	else if ((size_t)n != len)
		rc = EMSGSIZE;
	close(fd);
	return rc;
}

int notify_sendf(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (!getenv("NOTIFY_SOCKET"))
		return 0;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	return notify_send(buf);
}
