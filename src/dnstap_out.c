#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <fstrm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dotstub/dnstap_out.h"
#include "dotstub/log.h"
#include "dotstub/xmalloc.h"

/* The content type every dnstap reader expects in the stream's header. */
#define CONTENT_TYPE "protobuf:dnstap.Dnstap"
#define STR_(x) #x
#define STR(x) STR_(x)

/* The transport under libfstrm's writer: our descriptor, which the data
 * frames also go to. */
typedef struct transport {
	int fd;
	int is_unix;
	struct sockaddr_un sun;
	char path[];
} transport_t;

struct dnstap_out {
	struct fstrm_writer *w;     /* owns tr (its rdwr's object) */
	transport_t *tr;
	int opened;                 /* the stream's START went out */
	int given_up;               /* a file that failed: no more writes */
	time_t last_try;            /* CLOCK_MONOTONIC seconds */
	char target[];
};

static void transport_shut(transport_t *tr)
{
	if (tr->fd >= 0)
		close(tr->fd);
	tr->fd = -1;
}

/* A new connection each time: after a failed handshake libfstrm calls
 * open again on what it still believes is open. */
static fstrm_res unix_open(void *obj)
{
	transport_t *tr = obj;
	struct timeval tv = { .tv_sec = DNSTAP_OUT_TIMEOUT };

	transport_shut(tr);
	tr->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (tr->fd < 0)
		return fstrm_res_failure;
	/* A collector that stops reading (or never answers READY) holds the
	 * writer thread only this long; then the connection goes. */
	if (setsockopt(tr->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(tr->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    connect(tr->fd, (struct sockaddr *)&tr->sun, sizeof(tr->sun)) < 0) {
		transport_shut(tr);
		return fstrm_res_failure;
	}
	return fstrm_res_success;
}

/* The file is opened once, by dnstap_out_open(): opened again it would be
 * truncated. */
static fstrm_res file_open(void *obj)
{
	const transport_t *tr = obj;

	return tr->fd >= 0 ? fstrm_res_success : fstrm_res_failure;
}

static fstrm_res transport_close(void *obj)
{
	transport_shut(obj);
	return fstrm_res_success;
}

static fstrm_res transport_destroy(void *obj)
{
	transport_shut(obj);
	free(obj);
	return fstrm_res_success;
}

static fstrm_res unix_read(void *obj, void *data, size_t count)
{
	const transport_t *tr = obj;
	uint8_t *p = data;

	while (count > 0) {
		ssize_t n = read(tr->fd, p, count);

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			return fstrm_res_stop;
		if (n < 0)
			return fstrm_res_failure;
		p += n;
		count -= (size_t)n;
	}
	return fstrm_res_success;
}

/* All of iov, through short writes; 0 or -1 (errno). A socket never
 * raises SIGPIPE (the unit tests do not ignore it). */
static int write_all(const transport_t *tr, const struct iovec *iov, int iovcnt)
{
	struct iovec cur[64];
	int n_cur = 0;

	while (iovcnt > 0 || n_cur > 0) {
		ssize_t n;

		while (iovcnt > 0 && n_cur < 64) {
			if (iov->iov_len)
				cur[n_cur++] = *iov;
			iov++;
			iovcnt--;
		}
		if (n_cur == 0)
			break;
		if (tr->is_unix) {
			struct msghdr mh = { .msg_iov = cur, .msg_iovlen = (size_t)n_cur };
			n = sendmsg(tr->fd, &mh, MSG_NOSIGNAL);
		} else {
			n = writev(tr->fd, cur, n_cur);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		/* Drop what was written from the front of cur. */
		int i = 0;
		while (i < n_cur && (size_t)n >= cur[i].iov_len)
			n -= (ssize_t)cur[i++].iov_len;
		if (i < n_cur) {
			cur[i].iov_base = (uint8_t *)cur[i].iov_base + n;
			cur[i].iov_len -= (size_t)n;
		}
		memmove(cur, cur + i, (size_t)(n_cur - i) * sizeof(*cur));
		n_cur -= i;
	}
	return 0;
}

static fstrm_res transport_write(void *obj, const struct iovec *iov, int iovcnt)
{
	return write_all(obj, iov, iovcnt) == 0 ? fstrm_res_success : fstrm_res_failure;
}

static time_t now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* The transport for "file:PATH" or "unix:PATH"; NULL with err. */
static transport_t *transport_new(const char *target, char *err, size_t errlen)
{
	const char *path = target + 5;
	transport_t *tr;

	if (strncmp(target, "file:", 5) && strncmp(target, "unix:", 5)) {
		snprintf(err, errlen, "dnstap %s: expected file:PATH or unix:PATH", target);
		return NULL;
	}
	tr = xcalloc(1, sizeof(*tr) + strlen(path) + 1);
	strcpy(tr->path, path);
	tr->fd = -1;
	tr->is_unix = target[0] == 'u';
	if (tr->is_unix) {
		if (strlen(path) >= sizeof(tr->sun.sun_path)) {
			snprintf(err, errlen, "dnstap %s: the socket path is longer than %zu bytes",
				 target, sizeof(tr->sun.sun_path) - 1);
			free(tr);
			return NULL;
		}
		tr->sun.sun_family = AF_UNIX;
		strcpy(tr->sun.sun_path, path);
		return tr;
	}
	/* Opened here, maybe as root before privileges go, where errno can
	 * still be told. */
	tr->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (tr->fd < 0) {
		snprintf(err, errlen, "dnstap %s: %s", target, strerror(errno));
		free(tr);
		return NULL;
	}
	return tr;
}

static struct fstrm_writer *writer_new(transport_t *tr)
{
	struct fstrm_writer_options *wopt = fstrm_writer_options_init();
	struct fstrm_rdwr *rdwr = fstrm_rdwr_init(tr);
	struct fstrm_writer *w;

	fstrm_writer_options_add_content_type(wopt, CONTENT_TYPE, strlen(CONTENT_TYPE));
	fstrm_rdwr_set_open(rdwr, tr->is_unix ? unix_open : file_open);
	fstrm_rdwr_set_close(rdwr, transport_close);
	fstrm_rdwr_set_destroy(rdwr, transport_destroy);
	fstrm_rdwr_set_write(rdwr, transport_write);
	/* A read method makes libfstrm run the bidirectional handshake. */
	if (tr->is_unix)
		fstrm_rdwr_set_read(rdwr, unix_read);
	w = fstrm_writer_init(wopt, &rdwr);   /* owns tr from here */
	fstrm_writer_options_destroy(&wopt);
	return w;
}

dnstap_out_t *dnstap_out_open(const char *target, char *err, size_t errlen)
{
	transport_t *tr = transport_new(target, err, errlen);
	dnstap_out_t *o;

	if (!tr)
		return NULL;
	o = xcalloc(1, sizeof(*o) + strlen(target) + 1);
	strcpy(o->target, target);
	o->tr = tr;
	o->w = writer_new(tr);
	if (!o->w) {
		transport_destroy(tr);
		free(o);
		snprintf(err, errlen, "dnstap %s: cannot set up the Frame Streams writer", target);
		return NULL;
	}
	o->last_try = now_seconds();
	o->opened = fstrm_writer_open(o->w) == fstrm_res_success;
	if (!o->opened && !tr->is_unix) {
		snprintf(err, errlen, "dnstap %s: cannot write the stream's header: %s",
			 target, strerror(errno));
		dnstap_out_close(o);
		return NULL;
	}
	if (!o->opened)
		log_warn("dnstap %s: no collector there yet; trying every %d s",
			 target, DNSTAP_OUT_REOPEN);
	return o;
}

int dnstap_out_ready(dnstap_out_t *o)
{
	time_t now;

	if (o->opened || o->given_up)
		return o->opened;
	now = now_seconds();
	if (now - o->last_try < DNSTAP_OUT_REOPEN)
		return 0;
	o->last_try = now;
	o->opened = fstrm_writer_open(o->w) == fstrm_res_success;
	if (o->opened)
		log_info("dnstap %s: collector connected", o->target);
	return o->opened;
}

int dnstap_out_write(dnstap_out_t *o, const struct iovec *iov, int iovcnt)
{
	const char *why;

	if (write_all(o->tr, iov, iovcnt) == 0)
		return 0;
	why = errno == EAGAIN || errno == EWOULDBLOCK
		? "nothing read for " STR(DNSTAP_OUT_TIMEOUT) " s" : strerror(errno);
	if (o->tr->is_unix)
		log_warn("dnstap %s: the collector went away (%s); trying again every %d s",
			 o->target, why, DNSTAP_OUT_REOPEN);
	else
		log_error("dnstap %s: %s; no more dnstap (messages counted as dropped)",
			  o->target, why);
	/* A frame may be cut: this stream is over. Shut first, so that the
	 * STOP libfstrm then tries fails at once rather than waiting. */
	transport_shut(o->tr);
	fstrm_writer_close(o->w);
	o->opened = 0;
	o->given_up = !o->tr->is_unix;
	o->last_try = now_seconds();
	return -1;
}

void dnstap_out_close(dnstap_out_t *o)
{
	if (!o)
		return;
	if (o->opened)
		fstrm_writer_close(o->w);   /* STOP; a collector's FINISH */
	fstrm_writer_destroy(&o->w);
	free(o);
}
