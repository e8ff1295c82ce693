/* The dnstap.Dnstap wire format by hand: see dotstub/dnstap_enc.h. Field
 * numbers and wire types are src/dnstap.proto's; keys are
 * (number << 3) | wire type. */
#include <string.h>

#include "dotstub/dnstap_enc.h"

enum { WT_VARINT = 0, WT_BYTES = 2, WT_FIXED32 = 5 };

#define KEY(num, wt) ((uint8_t)(((num) << 3) | (wt)))

/* Dnstap */
#define D_IDENTITY KEY(1, WT_BYTES)
#define D_VERSION KEY(2, WT_BYTES)
#define D_MESSAGE KEY(14, WT_BYTES)
#define D_TYPE KEY(15, WT_VARINT)
#define D_TYPE_MESSAGE 1
/* Message */
#define M_TYPE KEY(1, WT_VARINT)
#define M_FAMILY KEY(2, WT_VARINT)
#define M_PROTOCOL KEY(3, WT_VARINT)
#define M_QUERY_ADDR KEY(4, WT_BYTES)
#define M_RESPONSE_ADDR KEY(5, WT_BYTES)
#define M_QUERY_PORT KEY(6, WT_VARINT)
#define M_RESPONSE_PORT KEY(7, WT_VARINT)
#define M_QUERY_SEC KEY(8, WT_VARINT)
#define M_QUERY_NSEC KEY(9, WT_FIXED32)
#define M_QUERY_MSG KEY(10, WT_BYTES)
#define M_RESPONSE_SEC KEY(12, WT_VARINT)
#define M_RESPONSE_NSEC KEY(13, WT_FIXED32)
#define M_RESPONSE_MSG KEY(14, WT_BYTES)

static size_t varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static uint8_t *put_key_varint(uint8_t *p, uint8_t key, uint64_t v)
{
	*p++ = key;
	return put_varint(p, v);
}

static uint8_t *put_fixed32(uint8_t *p, uint8_t key, uint32_t v)
{
	*p++ = key;
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
	return p + 4;
}

static uint8_t *put_bytes(uint8_t *p, uint8_t key, const uint8_t *data, size_t len)
{
	p = put_key_varint(p, key, len);
	memcpy(p, data, len);
	return p + len;
}

static size_t bytes_size(size_t len)
{
	return 1 + varint_size(len) + len;
}

/* The size of the nested Message. Every varint here is a small enum,
 * except ports, times and lengths. */
static size_t message_size(const dnstap_enc_msg_t *m)
{
	size_t n = 2 + 2 + 2;              /* type, family, protocol */

	n += bytes_size(m->addr.len) + 1 + varint_size(m->port);
	n += 1 + varint_size(m->query_sec) + 5;
	if (m->query.len)
		n += bytes_size(m->query.len);
	if (m->has_response) {
		n += 1 + varint_size(m->response_sec) + 5;
		n += bytes_size(m->response.len);
	}
	return n;
}

size_t dnstap_enc_size(dnstap_enc_msg_t *m)
{
	size_t n = 2;                      /* type */

	m->body_len = message_size(m);
	if (m->identity.len)
		n += bytes_size(m->identity.len);
	if (m->version.len)
		n += bytes_size(m->version.len);
	return n + bytes_size(m->body_len);
}

static uint8_t *put_message(uint8_t *p, const dnstap_enc_msg_t *m)
{
	p = put_key_varint(p, M_TYPE, m->type);
	p = put_key_varint(p, M_FAMILY, m->family);
	p = put_key_varint(p, M_PROTOCOL, m->protocol);
	p = put_bytes(p, m->initiator ? M_QUERY_ADDR : M_RESPONSE_ADDR,
		      m->addr.data, m->addr.len);
	p = put_key_varint(p, m->initiator ? M_QUERY_PORT : M_RESPONSE_PORT, m->port);
	p = put_key_varint(p, M_QUERY_SEC, m->query_sec);
	p = put_fixed32(p, M_QUERY_NSEC, m->query_nsec);
	if (m->query.len)
		p = put_bytes(p, M_QUERY_MSG, m->query.data, m->query.len);
	if (m->has_response) {
		p = put_key_varint(p, M_RESPONSE_SEC, m->response_sec);
		p = put_fixed32(p, M_RESPONSE_NSEC, m->response_nsec);
		p = put_bytes(p, M_RESPONSE_MSG, m->response.data, m->response.len);
	}
	return p;
}

size_t dnstap_enc_write(const dnstap_enc_msg_t *m, uint8_t *buf)
{
	uint8_t *p = buf;

	if (m->identity.len)
		p = put_bytes(p, D_IDENTITY, m->identity.data, m->identity.len);
	if (m->version.len)
		p = put_bytes(p, D_VERSION, m->version.data, m->version.len);
	*p++ = D_MESSAGE;
	p = put_varint(p, m->body_len);
	p = put_message(p, m);
	p = put_key_varint(p, D_TYPE, D_TYPE_MESSAGE);
	return (size_t)(p - buf);
}
