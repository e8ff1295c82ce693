/* dnstap_enc: one dnstap.Dnstap protobuf message (src/dnstap.proto),
 * encoded by hand into a caller's buffer. protobuf-c's generic packer
 * walked the field descriptors for every message and was a sixth of a
 * loaded dotstub's time with dnstap on (perf, udp-hit); the message is a
 * handful of varint, fixed32 and length-delimited fields. The bytes are
 * those protobuf-c writes for the same message (fields in number order;
 * check_dnstap compares them), so any dnstap reader decodes them.
 *
 * The struct is a plain value the caller fills on its stack: the encoder
 * owns nothing and keeps no pointer. */
#ifndef DOTSTUB_DNSTAP_ENC_H
#define DOTSTUB_DNSTAP_ENC_H

#include <stddef.h>
#include <stdint.h>

/* Values of dnstap.proto's enums that dotstub writes. */
enum {
	DNSTAP_ENC_CLIENT_QUERY = 5,
	DNSTAP_ENC_CLIENT_RESPONSE = 6,
	DNSTAP_ENC_FORWARDER_QUERY = 7,
	DNSTAP_ENC_FORWARDER_RESPONSE = 8,
	DNSTAP_ENC_INET = 1,
	DNSTAP_ENC_INET6 = 2,
	DNSTAP_ENC_UDP = 1,
	DNSTAP_ENC_TCP = 2,
	DNSTAP_ENC_DOT = 3,
};

typedef struct dnstap_enc_bytes {
	const uint8_t *data;
	size_t len;                /* 0: the field is left out */
} dnstap_enc_bytes_t;

typedef struct dnstap_enc_msg {
	dnstap_enc_bytes_t identity, version;
	unsigned type, family, protocol;
	/* The peer: the initiator (query_address/port) when initiator is 1,
	 * else the responder (response_address/port). */
	int initiator;
	dnstap_enc_bytes_t addr;
	uint32_t port;
	uint64_t query_sec;
	uint32_t query_nsec;
	dnstap_enc_bytes_t query;  /* query_message */
	int has_response;          /* response time and response_message */
	uint64_t response_sec;
	uint32_t response_nsec;
	dnstap_enc_bytes_t response;
	size_t body_len;           /* dnstap_enc_size()'s, for the write */
} dnstap_enc_msg_t;

/* The encoded size of m, exact; notes what dnstap_enc_write() needs. */
size_t dnstap_enc_size(dnstap_enc_msg_t *m);
/* Writes m to buf (dnstap_enc_size(m) bytes of room), after
 * dnstap_enc_size(m) with m unchanged since; returns the length. */
size_t dnstap_enc_write(const dnstap_enc_msg_t *m, uint8_t *buf);

#endif
