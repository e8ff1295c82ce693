/* acl: which client addresses dotstub answers, a short list of prefixes
 * ("192.168.1.0/24", "2001:db8::/32"). IPv4 is kept as IPv4-mapped IPv6
 * (::ffff:a.b.c.d), so one 128-bit compare serves both families and a
 * mapped source on a dual-stack socket matches the IPv4 prefixes. */
#ifndef DOTSTUB_ACL_H
#define DOTSTUB_ACL_H

#include <stddef.h>
#include <sys/socket.h>

/* "255.255.255.255/32" and "ffff:...:ffff/128" fit. */
#define ACL_TEXT_MAX 64
/* Prefixes in one list: each query walks it, so it stays short. */
#define ACL_MAX 128
#define ACL_MAX_TEXT "128"

typedef struct acl acl_t;

/* An empty list (which allows nobody until prefixes are added). */
acl_t *acl_create(void);
void acl_destroy(acl_t *acl);

/* Add "ADDR/LEN" or a bare "ADDR" (one host). Returns 0; -EINVAL when the
 * text is no prefix or has bits set past LEN ("10.0.0.1/8": a typo for
 * 10.0.0.0/8 or for 10.0.0.1/32?); -E2BIG past ACL_MAX. */
int acl_add(acl_t *acl, const char *text);

/* 1 when addr (AF_INET or AF_INET6) is in one of the prefixes, else 0.
 * acl NULL is the default list, loopback only: 127.0.0.0/8 and ::1/128.
 * No allocation, no system call: this runs on every query. */
int acl_allows(const acl_t *acl, const struct sockaddr_storage *addr);

/* 1 when addr is a loopback address (127.0.0.0/8, ::1, ::ffff:127.x). */
int acl_is_loopback(const struct sockaddr_storage *addr);

/* The number of prefixes (acl NULL: the two of the default), and the i-th
 * as "ADDR/LEN" in buf (at least ACL_TEXT_MAX bytes). */
size_t acl_count(const acl_t *acl);
void acl_format(const acl_t *acl, size_t i, char *buf, size_t cap);

#endif
