#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <ini.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dotstub/config.h"
#include "dotstub/log.h"
#include "dotstub/xmalloc.h"

/* The configuration file is INI, read by inih:
 *
 *   [server]              listeners, allow, timeouts, limits, logging
 *   [upstream LABEL]      servers sharing an auth name, pins and anchors
 *
 * Every key is in one of the tables below; anything else is an error. */

typedef enum {
	K_UINT, K_STRING, K_LISTEN, K_LEVEL, K_ADDR_PORT, K_POLICY, K_BOOL,
	K_ALLOW,
} key_type_t;

typedef struct {
	const char *name;
	key_type_t type;
	size_t offset;     /* into config_t */
	unsigned min, max;
} key_t_;

#define UINT_KEY(n, field, lo, hi) { n, K_UINT, offsetof(config_t, field), lo, hi }
#define STR_KEY(n, field) { n, K_STRING, offsetof(config_t, field), 0, 0 }

static const key_t_ SERVER_KEYS[] = {
	{ "listen", K_LISTEN, 0, 0, 0 },
	{ "allow", K_ALLOW, 0, 0, 0 },
	{ "log-level", K_LEVEL, 0, 0, 0 },
	STR_KEY("user", user),
	STR_KEY("pidfile", pidfile),
	{ "metrics", K_ADDR_PORT, offsetof(config_t, metrics), 0, 0 },
	UINT_KEY("query-timeout", query_timeout_ms, 100, 60000),
	UINT_KEY("attempt-timeout", attempt_timeout_ms, 100, 60000),
	UINT_KEY("max-waiting", max_waiting, 0, 1000000),
	UINT_KEY("cache-size", cache_size, 0, 1u << 30),
	{ "policy", K_POLICY, 0, 0, 0 },
	{ "tcp-fastopen", K_BOOL, offsetof(config_t, tcp_fastopen), 0, 0 },
	UINT_KEY("connect-timeout", connect_timeout_ms, 100, 60000),
	UINT_KEY("idle-timeout", idle_timeout_ms, 0, 3600000),
	UINT_KEY("tcp-client-timeout", tcp_client_timeout_ms, 1000, 600000),
	UINT_KEY("max-inflight", max_inflight, 1, 32768),
	UINT_KEY("pool-size", pool_size, 1, 64),
	UINT_KEY("padding-block", padding_block, 0, 1024),
	UINT_KEY("max-tcp-clients", max_tcp_clients, 1, 65536),
	UINT_KEY("threads", threads, 1, 64),
};

typedef struct {
	config_t *cfg;
	char err[300];
} parse_state_t;

static int error(parse_state_t *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int error(parse_state_t *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->err, sizeof(st->err), fmt, ap);
	va_end(ap);
	return 0;  /* inih: stop, and report this line */
}

static int set_string(parse_state_t *st, const key_t_ *k, const char *value)
{
	char **dst = (char **)((char *)st->cfg + k->offset);

	free(*dst);
	*dst = xstrdup(value);
	return 1;
}

static int set_uint(parse_state_t *st, const key_t_ *k, const char *value)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(value, &end, 10);
	if (!value[0] || *end || errno || value[0] == '-' || v < k->min || v > k->max) {
		snprintf(st->err, sizeof(st->err),
			 "%s: invalid value '%s' (expected %u..%u)", k->name, value,
			 k->min, k->max);
		return 0;
	}
	*(unsigned *)((char *)st->cfg + k->offset) = (unsigned)v;
	return 1;
}

static int set_level(parse_state_t *st, const char *value)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };

	for (int i = 0; i < 4; i++)
		if (strcmp(value, names[i]) == 0) {
			st->cfg->log_level = i;
			return 1;
		}
	return error(st, "log-level: invalid value '%s' (error, warning, info, debug)", value);
}

static int set_word(parse_state_t *st, const char *key, const char *value,
		    const char *const *words, size_t n, int *dst)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(value, words[i]) == 0) {
			*dst = (int)i;
			return 1;
		}
	return error(st, "%s: invalid value '%s'", key, value);
}

static int set_allow(parse_state_t *st, const char *value)
{
	int rc = config_add_allow(st->cfg, value);

	if (rc < 0)
		return error(st, "allow: invalid CIDR '%s' (%s)", value,
			     config_allow_help(rc));
	return 1;
}

static int server_key(parse_state_t *st, const char *name, const char *value)
{
	for (size_t i = 0; i < sizeof(SERVER_KEYS) / sizeof(SERVER_KEYS[0]); i++) {
		const key_t_ *k = &SERVER_KEYS[i];
		struct sockaddr_storage ss;
		socklen_t len;

		if (strcmp(k->name, name) != 0)
			continue;
		switch (k->type) {
		case K_UINT:
			return set_uint(st, k, value);
		case K_LEVEL:
			return set_level(st, value);
		case K_LISTEN:
			if (config_add_listen(st->cfg, value, 0) < 0)
				return error(st, "listen: invalid address '%s'", value);
			return 1;
		case K_ALLOW:
			return set_allow(st, value);
		case K_ADDR_PORT:
			if (!strchr(value, '@') || config_parse_addr(value, 0, &ss, &len) < 0)
				return error(st, "%s: invalid value '%s' (expected ADDR@PORT)",
					     k->name, value);
			return set_string(st, k, value);
		case K_STRING:
			return set_string(st, k, value);
		case K_POLICY: {
			static const char *const p[] = { "rtt", "round-robin", "ordered" };
			return set_word(st, k->name, value, p, 3, &st->cfg->policy);
		}
		case K_BOOL: {
			static const char *const b[] = { "no", "yes" };
			return set_word(st, k->name, value, b, 2,
					(int *)((char *)st->cfg + k->offset));
		}
		}
	}
	return error(st, "unknown key '%s' in [server]", name);
}

/* The group a "[upstream LABEL]" section names, made on first sight. */
static config_group_t *group_for(config_t *cfg, const char *label)
{
	for (size_t i = 0; i < cfg->ngroups; i++)
		if (strcmp(cfg->groups[i].label, label) == 0)
			return &cfg->groups[i];
	cfg->groups = xrealloc(cfg->groups, (cfg->ngroups + 1) * sizeof(config_group_t));
	config_group_t *g = &cfg->groups[cfg->ngroups++];
	memset(g, 0, sizeof(*g));
	snprintf(g->label, sizeof(g->label), "%s", label);
	return g;
}

static int upstream_key(parse_state_t *st, const char *label,
			const char *name, const char *value)
{
	config_group_t *g = group_for(st->cfg, label);
	config_upstream_t probe;

	if (strcmp(name, "server") == 0) {
		if (config_group_add_server(g, value) < 0)
			return error(st, "server: invalid upstream '%s' (expected IP[@PORT][#NAME])", value);
		return 1;
	}
	if (strcmp(name, "auth-name") == 0) {
		char spec[CONFIG_SPEC_MAX];
		snprintf(spec, sizeof(spec), "127.0.0.1#%s", value);
		if (config_parse_upstream(spec, &probe) < 0)
			return error(st, "auth-name: invalid name '%s'", value);
		snprintf(g->name, sizeof(g->name), "%s", value);
		return 1;
	}
	if (strcmp(name, "pin") == 0) {
		if (config_group_add_pin(g, value) < 0)
			return error(st, "pin: invalid pin '%s' (expected base64 SHA-256, 44 characters)", value);
		return 1;
	}
	if (strcmp(name, "ca-file") == 0) {
		if (access(value, R_OK) < 0)
			return error(st, "ca-file: cannot read '%s': %s", value, strerror(errno));
		free(g->ca_file);
		g->ca_file = xstrdup(value);
		return 1;
	}
	return error(st, "unknown key '%s' in [upstream %s]", name, label);
}

static int on_key(void *user, const char *section, const char *name,
		  const char *value)
{
	parse_state_t *st = user;

	if (strcmp(section, "server") == 0)
		return server_key(st, name, value);
	if (strcmp(section, "upstream") == 0)
		return upstream_key(st, "default", name, value);
	if (strncmp(section, "upstream ", 9) == 0 && section[9])
		return upstream_key(st, section + 9, name, value);
	if (!section[0])
		return error(st, "'%s' outside any section ([server] or [upstream LABEL])", name);
	return error(st, "unknown section [%s]", section);
}

int config_load_file(config_t *cfg, const char *path, char *err, size_t errlen)
{
	parse_state_t st = { .cfg = cfg };
	int line;

	ini_stop_on_first_error = 1;
	ini_allow_multiline = 0;
	line = ini_parse(path, on_key, &st);
	if (line == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (line != 0) {
		snprintf(err, errlen, "%s:%d: %s", path, line,
			 st.err[0] ? st.err : "syntax error");
		return -1;
	}
	for (size_t i = 0; i < cfg->ngroups; i++)
		if (cfg->groups[i].nservers == 0) {
			snprintf(err, errlen, "%s: [upstream %s] has no server", path,
				 cfg->groups[i].label);
			return -1;
		}
	return 0;
}
