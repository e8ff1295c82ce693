#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dotstub/netutil.h"

int net_bind(const config_listen_t *addr, int type, int shared, char *err,
	     size_t errlen)
{
	int one = 1;
	int fd = socket(addr->addr.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	const char *what = "socket";

	if (fd < 0)
		goto fail;
	what = "setsockopt";
	/* TCP: a restart binds past the TIME_WAIT of its old connections.
	 * Never UDP: there any other socket with SO_REUSEADDR, another
	 * user's included, could bind the same address and take our
	 * queries. */
	if (type == SOCK_STREAM &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	/* Threads share the port; the kernel admits only our own user to
	 * the group. */
	if (shared &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	if (addr->addr.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	what = "bind";
	if (bind(fd, (const struct sockaddr *)&addr->addr, addr->addrlen) < 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "%s (%s): %s: %s", addr->text,
		 type == SOCK_DGRAM ? "udp" : "tcp", what, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

void net_ip_port(const struct sockaddr_storage *ss, char *ip, size_t iplen,
		 uint16_t *port)
{
	snprintf(ip, iplen, "?");
	*port = 0;
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, (socklen_t)iplen);
		*port = ntohs(in6->sin6_port);
	} else if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in4 = (const void *)ss;
		inet_ntop(AF_INET, &in4->sin_addr, ip, (socklen_t)iplen);
		*port = ntohs(in4->sin_port);
	}
}

void net_format(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
	char ip[INET6_ADDRSTRLEN];
	uint16_t port;

	net_ip_port(ss, ip, sizeof(ip), &port);
	snprintf(buf, cap, "%s@%u", ip, port);
}
