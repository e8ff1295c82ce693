/* dnstap in a build without libfstrm/protobuf-c: nothing can be opened,
 * so no queue exists and the loggers are never reached. */
#include "config.h"

#include <stdio.h>

#include "dotstub/dnstap.h"

int dnstap_built_in(void)
{
	return 0;
}

dnstap_t *dnstap_create(const char *target, unsigned nqueues,
			char *err, size_t errlen)
{
	(void)nqueues;
	snprintf(err, errlen, "dnstap %s: this dotstub was built without dnstap "
		 "(apt-get install libfstrm-dev libprotobuf-c-dev protobuf-c-compiler; "
		 "configure again)", target);
	return NULL;
}

int dnstap_destroy(dnstap_t *t)
{
	(void)t;
	return 0;
}

dnstap_queue_t *dnstap_queue(dnstap_t *t, unsigned index)
{
	(void)t;
	(void)index;
	return NULL;
}

unsigned long dnstap_dropped(const dnstap_t *t)
{
	(void)t;
	return 0;
}

unsigned long dnstap_queue_dropped(const dnstap_queue_t *q)
{
	(void)q;
	return 0;
}

void dnstap_client_query(dnstap_queue_t *q, const struct sockaddr_storage *client,
			 int tcp, double now, const uint8_t *msg, size_t len)
{
	(void)q; (void)client; (void)tcp; (void)now; (void)msg; (void)len;
}

void dnstap_client_response(dnstap_queue_t *q,
			    const struct sockaddr_storage *client, int tcp,
			    double asked, double now, const uint8_t *msg,
			    size_t len)
{
	(void)q; (void)client; (void)tcp; (void)asked; (void)now; (void)msg;
	(void)len;
}

void dnstap_forwarder_query(dnstap_queue_t *q,
			    const struct sockaddr_storage *upstream, double now,
			    const uint8_t *msg, size_t len)
{
	(void)q; (void)upstream; (void)now; (void)msg; (void)len;
}

void dnstap_forwarder_response(dnstap_queue_t *q,
			       const struct sockaddr_storage *upstream,
			       double asked, double now, const uint8_t *msg,
			       size_t len)
{
	(void)q; (void)upstream; (void)asked; (void)now; (void)msg; (void)len;
}
