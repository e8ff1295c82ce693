#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dotstub/acl.h"
#include "dotstub/xmalloc.h"

/* An address and mask in the IPv6 space, bytes in network order; the
 * address has no bits past the mask. IPv4 a.b.c.d/n is ::ffff:a.b.c.d/96+n. */
typedef struct {
	uint8_t addr[16];
	uint8_t mask[16];
	unsigned len;
} prefix_t;

struct acl {
	prefix_t *p;
	size_t n;
};

#define V4_MAPPED_BITS 96

/* The default list: 127.0.0.0/8 and ::1/128. */
static const prefix_t LOOPBACK[2] = {
	{ { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 0 },
	  { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0, 0, 0 }, V4_MAPPED_BITS + 8 },
	{ { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 },
	  { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff, 0xff, 0xff, 0xff, 0xff }, 128 },
};

static const uint8_t V4_MAPPED[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

acl_t *acl_create(void)
{
	return xcalloc(1, sizeof(acl_t));
}

void acl_destroy(acl_t *acl)
{
	if (!acl)
		return;
	free(acl->p);
	free(acl);
}

/* The prefix length after the '/': digits only, at most max. */
static int parse_len(const char *s, unsigned max, unsigned *len)
{
	unsigned v = 0;

	if (!*s || strlen(s) > 3)
		return -EINVAL;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		v = v * 10 + (unsigned)(*s - '0');
	}
	if (v > max)
		return -EINVAL;
	*len = v;
	return 0;
}

static void make_mask(prefix_t *p)
{
	memset(p->mask, 0, sizeof(p->mask));
	for (unsigned i = 0; i < p->len; i++)
		p->mask[i / 8] |= (uint8_t)(0x80 >> (i % 8));
}

/* "ADDR[/LEN]" into p. Returns 0 or -EINVAL. */
static int parse_prefix(const char *text, prefix_t *p)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	size_t hlen = slash ? (size_t)(slash - text) : strlen(text);
	struct in_addr a4;
	unsigned len;

	if (hlen == 0 || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	memset(p, 0, sizeof(*p));
	if (inet_pton(AF_INET, host, &a4) == 1) {
		memcpy(p->addr, V4_MAPPED, sizeof(V4_MAPPED));
		memcpy(p->addr + 12, &a4, 4);
		len = 32;
		if (slash && parse_len(slash + 1, 32, &len) < 0)
			return -EINVAL;
		p->len = V4_MAPPED_BITS + len;
	} else if (inet_pton(AF_INET6, host, p->addr) == 1) {
		len = 128;
		if (slash && parse_len(slash + 1, 128, &len) < 0)
			return -EINVAL;
		p->len = len;
	} else {
		return -EINVAL;
	}
	make_mask(p);
	for (size_t i = 0; i < 16; i++)
		if (p->addr[i] & ~p->mask[i])
			return -EINVAL;   /* host bits set */
	return 0;
}

int acl_add(acl_t *acl, const char *text)
{
	prefix_t p;

	if (parse_prefix(text, &p) < 0)
		return -EINVAL;
	if (acl->n >= ACL_MAX)
		return -E2BIG;
	acl->p = xrealloc(acl->p, (acl->n + 1) * sizeof(p));
	acl->p[acl->n++] = p;
	return 0;
}

/* addr in the IPv6 space; -1 for other families. */
static int to_v6(const struct sockaddr_storage *addr, uint8_t out[16])
{
	if (addr->ss_family == AF_INET) {
		const struct sockaddr_in *in4 = (const void *)addr;
		memcpy(out, V4_MAPPED, sizeof(V4_MAPPED));
		memcpy(out + 12, &in4->sin_addr, 4);
		return 0;
	}
	if (addr->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)addr;
		memcpy(out, &in6->sin6_addr, 16);
		return 0;
	}
	return -1;
}

/* Two 64-bit words each: the memcpy calls compile to loads. */
static int in_prefix(const prefix_t *p, const uint8_t a[16])
{
	uint64_t a0, a1, m0, m1, p0, p1;

	memcpy(&a0, a, 8);
	memcpy(&a1, a + 8, 8);
	memcpy(&m0, p->mask, 8);
	memcpy(&m1, p->mask + 8, 8);
	memcpy(&p0, p->addr, 8);
	memcpy(&p1, p->addr + 8, 8);
	return (a0 & m0) == p0 && (a1 & m1) == p1;
}

int acl_allows(const acl_t *acl, const struct sockaddr_storage *addr)
{
	const prefix_t *p = acl ? acl->p : LOOPBACK;
	size_t n = acl ? acl->n : 2;
	uint8_t a[16];

	if (to_v6(addr, a) < 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (in_prefix(&p[i], a))
			return 1;
	return 0;
}

int acl_is_loopback(const struct sockaddr_storage *addr)
{
	return acl_allows(NULL, addr);
}

size_t acl_count(const acl_t *acl)
{
	return acl ? acl->n : 2;
}

void acl_format(const acl_t *acl, size_t i, char *buf, size_t cap)
{
	const prefix_t *p = acl ? &acl->p[i] : &LOOPBACK[i];
	char ip[INET6_ADDRSTRLEN];

	if (p->len >= V4_MAPPED_BITS &&
	    memcmp(p->addr, V4_MAPPED, sizeof(V4_MAPPED)) == 0) {
		inet_ntop(AF_INET, p->addr + 12, ip, sizeof(ip));
		snprintf(buf, cap, "%s/%u", ip, p->len - V4_MAPPED_BITS);
		return;
	}
	inet_ntop(AF_INET6, p->addr, ip, sizeof(ip));
	snprintf(buf, cap, "%s/%u", ip, p->len);
}
