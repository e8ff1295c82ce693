/* netutil: socket helpers shared by the listeners. */
#ifndef DOTSTUB_NETUTIL_H
#define DOTSTUB_NETUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dotstub/config.h"

/* A non-blocking socket of `type` bound to addr (IPv6 sockets v6-only, so
 * that 0.0.0.0 and :: can both be bound); shared: SO_REUSEPORT, so that
 * each thread binds its own (only with threads > 1). SO_REUSEADDR on TCP
 * sockets only: on UDP it would let another socket bind the same address
 * and steal queries. Returns the fd, or -1 with err naming the address
 * and the failing call. */
int net_bind(const config_listen_t *addr, int type, int shared, char *err,
	     size_t errlen);

/* The address as text (brackets-free, as the command line writes it) and
 * the port; "?" and 0 for a family that is neither IPv4 nor IPv6. */
void net_ip_port(const struct sockaddr_storage *ss, char *ip, size_t iplen,
		 uint16_t *port);

/* "IP@PORT" of a peer, for logs. */
void net_format(const struct sockaddr_storage *ss, char *buf, size_t cap);

#endif
