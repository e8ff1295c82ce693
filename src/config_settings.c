#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "dotstub/config.h"
#include "dotstub/xmalloc.h"

/* Every [server] setting, once: its key in the configuration file, its
 * command-line flag, type, place in config_t, default, range and help.
 * Defaults, the file parser, the command line, --check-config, --help and
 * the unit test that holds etc/dotstub.conf and the man page to this table
 * all read it (chrony's conf.c and Knot's conf/schema.c keep one list the
 * same way). A new setting is a row here plus the code that uses it. */

static const char *const LEVELS[] = { "error", "warning", "info", "debug", NULL };
static const char *const POLICIES[] = { "rtt", "round-robin", "ordered", NULL };
static const char *const BOOLS[] = { "no", "yes", NULL };
static const char *const TAP_KINDS[] = { "file", "unix", NULL };

#define AT(field) offsetof(config_t, field)

const config_setting_t CONFIG_SETTINGS[] = {
	{ "listen", "listen", 'l', SET_LISTEN, 0, "127.0.0.1@53 ::1@53", 0, 0, NULL,
	  "ADDR[@PORT]", "UDP+TCP listener, repeatable" },
	{ "allow", "allow", 0, SET_ALLOW, 0, NULL, 0, 0, NULL, "CIDR",
	  "clients answered, repeatable (default loopback only; others get REFUSED)" },
	{ "log-level", NULL, 0, SET_WORD, AT(log_level), "info", 0, 0, LEVELS,
	  NULL, "error, warning, info or debug (-v: debug, -q: warning)" },
	{ "user", "user", 0, SET_STRING, AT(user), NULL, 0, 0, NULL,
	  "USER", "drop privileges after binding" },
	{ NULL, "daemonize", 'd', SET_FLAG, AT(daemonize), NULL, 0, 0, NULL,
	  NULL, "detach, log to syslog" },
	{ "pidfile", "pidfile", 0, SET_PATH, AT(pidfile), NULL, 0, 0, NULL,
	  "FILE", "write the PID after binding" },
	{ "metrics", "metrics", 0, SET_ADDR_PORT, AT(metrics), NULL, 0, 0, NULL,
	  "ADDR@PORT", "Prometheus metrics at http://ADDR:PORT/metrics" },
	{ "dnstap", "dnstap", 0, SET_KIND_PATH, AT(dnstap), NULL, 0, 0, TAP_KINDS,
	  "file:PATH|unix:PATH", "log queries and answers as dnstap (Frame Streams)" },
	/* Stub clients (glibc, dig) give up after 5 s: a SERVFAIL must come
	 * before that to be of use. */
	{ "query-timeout", NULL, 0, SET_UINT, AT(query_timeout_ms), "4000", 100, 60000,
	  NULL, NULL, "ms a query may take before SERVFAIL" },
	/* A second upstream still gets a fair turn inside the deadline. */
	{ "attempt-timeout", NULL, 0, SET_UINT, AT(attempt_timeout_ms), "1500", 100, 60000,
	  NULL, NULL, "ms one upstream gets before a resend" },
	{ "connect-timeout", NULL, 0, SET_UINT, AT(connect_timeout_ms), "2000", 100, 60000,
	  NULL, NULL, "ms for TCP connect plus TLS handshake" },
	/* RFC 8305's recommended connection attempt delay: a silent upstream
	 * costs one such wait, not a connect-timeout per query. */
	{ "connection-race-delay", NULL, 0, SET_UINT, AT(race_delay_ms), "250", 0, 60000,
	  NULL, NULL, "ms a connection may take before the next upstream races it; 0 never" },
	/* Cloudflare resets idle DoT connections after 10 s. */
	{ "idle-timeout", NULL, 0, SET_UINT, AT(idle_timeout_ms), "9000", 0, 3600000,
	  NULL, NULL, "ms before an idle upstream connection is closed; 0 never" },
	/* Servers close idle connections after 2-10 s; a probe that waits
	 * longer by default would be a slow probe. */
	{ NULL, "probe-idle", 0, SET_UINT, AT(probe_idle_ms), "0", 0, 60000,
	  NULL, "MS", "--probe: then wait up to MS idle for the server's idle close" },
	{ "tcp-client-timeout", NULL, 0, SET_UINT, AT(tcp_client_timeout_ms), "10000",
	  1000, 600000, NULL, NULL, "ms before an idle client TCP connection is closed" },
	{ "max-inflight", NULL, 0, SET_UINT, AT(max_inflight), "100", 1, 32768,
	  NULL, NULL, "queries in flight per upstream connection" },
	{ "pool-size", NULL, 0, SET_UINT, AT(pool_size), "2", 1, 64,
	  NULL, NULL, "TLS connections per upstream" },
	{ "max-waiting", NULL, 0, SET_UINT, AT(max_waiting), "2048", 0, 1000000,
	  NULL, NULL, "queries held while every connection is full" },
	{ "policy", NULL, 0, SET_WORD, AT(policy), "rtt", 0, 0, POLICIES,
	  NULL, "upstream choice: rtt, round-robin or ordered" },
	{ "tcp-fastopen", NULL, 0, SET_WORD, AT(tcp_fastopen), "no", 0, 0, BOOLS,
	  NULL, "TCP Fast Open to upstreams" },
	/* Routers and Raspberry Pis start in 1970, and NTP needs DNS. */
	{ "clock-floor", NULL, 0, SET_WORD, AT(clock_floor), "yes", 0, 0, BOOLS,
	  NULL, "check certificate dates against the build time while the clock is earlier" },
	{ "padding-block", NULL, 0, SET_UINT, AT(padding_block), "128", 0, 1024,
	  NULL, NULL, "pad queries to a multiple of this; 0 no padding" },
	/* ~3,500 answers; keeps peak RSS under 8 MiB. */
	{ "cache-size", NULL, 0, SET_UINT, AT(cache_size), "524288", 0, 1u << 30,
	  NULL, NULL, "bytes of cached answers; 0 no cache" },
	/* A day, as unbound's cache-max-ttl: an upstream's TTL of 2^31-1
	 * would otherwise pin an answer until it is evicted. */
	{ "cache-max-ttl", NULL, 0, SET_UINT, AT(cache_max_ttl), "86400", 1, 604800,
	  NULL, NULL, "seconds an answer is cached at most" },
	{ "cache-min-ttl", NULL, 0, SET_UINT, AT(cache_min_ttl), "0", 0, 86400,
	  NULL, NULL, "seconds an answer is cached at least (its TTLs raised)" },
	/* An hour, as unbound's cache-max-negative-ttl: a name created
	 * after an NXDOMAIN is not hidden for the SOA's day. */
	{ "cache-max-negative-ttl", NULL, 0, SET_UINT, AT(cache_max_negative_ttl),
	  "3600", 0, 604800, NULL, NULL,
	  "seconds an NXDOMAIN or NODATA answer is cached at most; 0 never" },
	/* RFC 8767: keep expired answers for when the upstream cannot be
	 * reached; its suggested 1-3 days, 30 s TTL, 1.8 s client timer. */
	{ "serve-stale", NULL, 0, SET_WORD, AT(serve_stale), "yes", 0, 0, BOOLS,
	  NULL, "answer with expired answers when the upstreams cannot" },
	{ "stale-max-age", NULL, 0, SET_UINT, AT(stale_max_age), "86400", 1, 604800,
	  NULL, NULL, "seconds an expired answer is kept for serve-stale" },
	{ "stale-ttl", NULL, 0, SET_UINT, AT(stale_ttl), "30", 1, 3600,
	  NULL, NULL, "the TTL of a stale answer" },
	{ "stale-answer-timeout", NULL, 0, SET_UINT, AT(stale_answer_timeout_ms),
	  "1800", 0, 60000, NULL, NULL,
	  "ms to wait for the upstream before a stale answer" },
	{ "prefetch", NULL, 0, SET_WORD, AT(prefetch), "yes", 0, 0, BOOLS,
	  NULL, "refresh an answer asked for in the last tenth of its TTL" },
	{ "max-tcp-clients", NULL, 0, SET_UINT, AT(max_tcp_clients), "256", 1, 65536,
	  NULL, NULL, "client TCP connections at once" },
	{ "threads", NULL, 0, SET_UINT, AT(threads), "1", 1, 64,
	  NULL, NULL, "event loops, each with its own sockets" },
	/* Asking the Internet about these names gets nothing useful and
	 * tells the upstream the LAN's addresses (RFC 6303, RFC 6761). */
	{ "local-zones", NULL, 0, SET_WORD, AT(local_zones), "yes", 0, 0, BOOLS,
	  NULL, "answer localhost, invalid, onion, local, home.arpa and private "
	  "reverse zones here, never upstream" },
};

const size_t CONFIG_NSETTINGS = sizeof(CONFIG_SETTINGS) / sizeof(CONFIG_SETTINGS[0]);

const config_setting_t *config_setting_find(const char *key)
{
	for (size_t i = 0; i < CONFIG_NSETTINGS; i++)
		if (CONFIG_SETTINGS[i].key && strcmp(CONFIG_SETTINGS[i].key, key) == 0)
			return &CONFIG_SETTINGS[i];
	return NULL;
}

static void *field(config_t *cfg, const config_setting_t *s)
{
	return (char *)cfg + s->offset;
}

static const void *cfield(const config_t *cfg, const config_setting_t *s)
{
	return (const char *)cfg + s->offset;
}

static int set_uint(config_t *cfg, const config_setting_t *s, const char *value,
		    char *err, size_t errlen)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(value, &end, 10);
	if (!value[0] || *end || errno || value[0] == '-' || v < s->min || v > s->max) {
		snprintf(err, errlen, "invalid value '%s' (expected %u..%u)", value,
			 s->min, s->max);
		return -EINVAL;
	}
	*(unsigned *)field(cfg, s) = (unsigned)v;
	return 0;
}

static int set_word(config_t *cfg, const config_setting_t *s, const char *value,
		    char *err, size_t errlen)
{
	size_t used = 0;

	for (int i = 0; s->words[i]; i++)
		if (strcmp(value, s->words[i]) == 0) {
			*(int *)field(cfg, s) = i;
			return 0;
		}
	used = (size_t)snprintf(err, errlen, "invalid value '%s' (expected", value);
	for (int i = 0; s->words[i] && used < errlen; i++)
		used += (size_t)snprintf(err + used, errlen - used, "%s %s",
					 i ? "," : "", s->words[i]);
	if (used < errlen)
		snprintf(err + used, errlen - used, ")");
	return -EINVAL;
}

static void set_string(config_t *cfg, const config_setting_t *s, const char *value)
{
	char **dst = field(cfg, s);

	free(*dst);
	*dst = xstrdup(value);
}

/* "KIND:PATH": KIND one of the row's words, PATH made absolute. */
static int set_kind_path(config_t *cfg, const config_setting_t *s,
			 const char *value)
{
	const char *colon = strchr(value, ':');
	char **dst = field(cfg, s), *path;
	size_t klen = colon ? (size_t)(colon - value) : 0;

	if (!colon || !colon[1])
		return -EINVAL;
	for (const char *const *w = s->words; *w; w++) {
		if (strlen(*w) != klen || strncmp(*w, value, klen) != 0)
			continue;
		path = config_path(colon + 1);
		free(*dst);
		*dst = xmalloc(klen + 1 + strlen(path) + 1);
		sprintf(*dst, "%s:%s", *w, path);
		free(path);
		return 0;
	}
	return -EINVAL;
}

int config_setting_set(config_t *cfg, const config_setting_t *s,
		       const char *value, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;

	switch (s->type) {
	case SET_UINT:
		return set_uint(cfg, s, value, err, errlen);
	case SET_WORD:
		return set_word(cfg, s, value, err, errlen);
	case SET_FLAG:
		*(int *)field(cfg, s) = 1;
		return 0;
	case SET_STRING:
		set_string(cfg, s, value);
		return 0;
	case SET_PATH:
		free(*(char **)field(cfg, s));
		*(char **)field(cfg, s) = config_path(value);
		return 0;
	case SET_ADDR_PORT:
		if (!strchr(value, '@') || config_parse_addr(value, 0, &ss, &len) < 0)
			break;
		set_string(cfg, s, value);
		return 0;
	case SET_LISTEN:
		if (config_add_listen(cfg, value, 0) < 0)
			break;
		return 0;
	case SET_KIND_PATH:
		if (set_kind_path(cfg, s, value) < 0)
			break;
		return 0;
	case SET_ALLOW: {
		int rc = config_add_allow(cfg, value);
		if (rc < 0) {
			snprintf(err, errlen, "invalid CIDR '%s' (%s)", value,
				 config_allow_help(rc));
			return rc;
		}
		return 0;
	}
	}
	snprintf(err, errlen, "invalid %s '%s' (expected %s)",
		 s->type == SET_LISTEN ? "address" : "value", value,
		 s->arg ? s->arg : "?");
	return -EINVAL;
}

void config_setting_clear(config_t *cfg, const config_setting_t *s)
{
	if (s->type == SET_LISTEN)
		cfg->nlisten = 0;
	if (s->type == SET_ALLOW) {
		acl_destroy(cfg->allow);
		cfg->allow = NULL;
	}
}

void config_settings_defaults(config_t *cfg)
{
	char err[128];

	/* Repeatable settings get theirs at the end (config.c's finish()),
	 * only when nothing else gave one. */
	for (size_t i = 0; i < CONFIG_NSETTINGS; i++) {
		const config_setting_t *s = &CONFIG_SETTINGS[i];
		if (s->def && s->type != SET_LISTEN)
			config_setting_set(cfg, s, s->def, err, sizeof(err));
	}
}

static void print_allow(const acl_t *allow, FILE *out)
{
	char prefix[ACL_TEXT_MAX];

	if (!allow)
		fprintf(out, "# no allow line: loopback clients only\n");
	for (size_t i = 0; i < acl_count(allow); i++) {
		acl_format(allow, i, prefix, sizeof(prefix));
		fprintf(out, "allow = %s\n", prefix);
	}
}

/* Print one setting's "key = value" lines; nothing when it is unset. */
static void print_setting(const config_t *cfg, const config_setting_t *s, FILE *out)
{
	const char *str;

	switch (s->type) {
	case SET_UINT:
		fprintf(out, "%s = %u\n", s->key, *(const unsigned *)cfield(cfg, s));
		break;
	case SET_WORD:
		fprintf(out, "%s = %s\n", s->key, s->words[*(const int *)cfield(cfg, s)]);
		break;
	case SET_FLAG:
		break;
	case SET_STRING:
	case SET_PATH:
	case SET_ADDR_PORT:
	case SET_KIND_PATH:
		str = *(char *const *)cfield(cfg, s);
		if (str)
			fprintf(out, "%s = %s\n", s->key, str);
		break;
	case SET_LISTEN:
		for (size_t i = 0; i < cfg->nlisten; i++)
			fprintf(out, "%s = %s\n", s->key, cfg->listen[i].text);
		break;
	case SET_ALLOW:
		print_allow(cfg->allow, out);
		break;
	}
}

void config_settings_print(const config_t *cfg, FILE *out)
{
	for (size_t i = 0; i < CONFIG_NSETTINGS; i++)
		if (CONFIG_SETTINGS[i].key)
			print_setting(cfg, &CONFIG_SETTINGS[i], out);
}

void config_settings_usage(FILE *out)
{
	for (size_t i = 0; i < CONFIG_NSETTINGS; i++) {
		const config_setting_t *s = &CONFIG_SETTINGS[i];
		char left[64];

		if (!s->flag)
			continue;
		snprintf(left, sizeof(left), "%c%c%c --%s%s%s",
			 s->short_flag ? '-' : ' ', s->short_flag ? s->short_flag : ' ',
			 s->short_flag ? ',' : ' ', s->flag, s->arg ? " " : "",
			 s->arg ? s->arg : "");
		fprintf(out, "  %-32s%s", left, s->help);
		if (s->def)
			fprintf(out, " (default %s)", s->def);
		fputc('\n', out);
	}
}
