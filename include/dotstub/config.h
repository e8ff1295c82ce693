/* config: built-in defaults, the command line, validation with errors that
 * name the bad value, and printing the effective configuration. */
#ifndef DOTSTUB_CONFIG_H
#define DOTSTUB_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "dotstub/acl.h"
#include "dotstub/tls.h"
#include "dotstub/zones.h"

#define CONFIG_DNS_PORT 53
#define CONFIG_DOT_PORT 853
#define CONFIG_NAME_MAX 253
/* "IPv6@PORT#NAME" at its longest. */
#define CONFIG_SPEC_MAX (48 + 7 + 1 + CONFIG_NAME_MAX + 1)

typedef struct {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char text[CONFIG_SPEC_MAX];   /* "127.0.0.1@53" */
	int optional;  /* a default that may be missing (::1 without IPv6) */
} config_listen_t;

typedef struct {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char ip_text[48];             /* "1.1.1.1" */
	char name[CONFIG_NAME_MAX + 1];  /* auth name; "" = verify the IP */
	char text[CONFIG_SPEC_MAX];   /* "1.1.1.1@853#cloudflare-dns.com" */
	const tls_pin_t *pins;        /* the group's pins */
	size_t npins;
	const char *ca_file;          /* the group's anchors; NULL: system */
} config_upstream_t;

/* Upstreams that share an auth name, pins and trust anchors: a
 * "[upstream LABEL]" section, the command line's -u/--pin/--ca-file, or the
 * built-in default. */
typedef struct {
	char label[64];
	char name[CONFIG_NAME_MAX + 1];  /* for servers given without #NAME */
	char *ca_file;
	tls_pin_t *pins;
	size_t npins;
	char **servers;               /* "IP[@PORT][#NAME]", validated */
	size_t nservers;
} config_group_t;

/* A "[forward LABEL]" section or the command line's --forward for one
 * domain: names at or below its domains go to its servers, not to the
 * upstreams (config_forward.c). DoT unless plaintext. */
typedef struct {
	config_group_t tls;           /* label, auth name, pins, ca-file, servers */
	char *file;                   /* the file that defines it; NULL: CLI */
	unsigned *server_lines;       /* the file line of each server; 0: CLI */
	char **domains;               /* lower case, no final dot, validated */
	size_t ndomains;
	int plaintext;                /* plain DNS, port 53 by default */
	unsigned plaintext_line;      /* where "plaintext = yes" was said */
	config_upstream_t *upstreams; /* the servers, parsed (at the end) */
	size_t nupstreams;
} config_forward_t;

/* How a query's upstream is chosen among the healthy ones. */
typedef enum {
	POLICY_RTT = 0,    /* lowest smoothed RTT, with a little exploration */
	POLICY_ROUND_ROBIN,
	POLICY_ORDERED,    /* the first in configuration order (failover) */
} config_policy_t;

typedef enum {
	CONFIG_RUN = 0,
	CONFIG_CHECK,     /* --check-config */
	CONFIG_PROBE,     /* --probe */
	CONFIG_HELP,
	CONFIG_VERSION,
} config_mode_t;

typedef struct {
	config_mode_t mode;
	config_listen_t *listen;
	size_t nlisten;
	/* Clients answered; NULL: no allow line, loopback only. Lines given
	 * replace that default (loopback is then allowed only if listed). */
	acl_t *allow;
	config_upstream_t *upstreams; /* every group's servers, in order */
	size_t nupstreams;
	config_group_t *groups;       /* from the configuration file */
	size_t ngroups;
	config_group_t cli;           /* -u, --pin, --ca-file */
	config_forward_t *forwards;   /* [forward] sections, then --forward */
	size_t nforwards;
	config_upstream_t probe;      /* the target of --probe */
	int probe_json;               /* --json: --probe prints JSON */
	char *config_file;
	char *user;
	char *pidfile;
	char *metrics;
	char *dnstap;                 /* "file:/PATH" or "unix:/PATH"; NULL off */
	int daemonize;
	int log_level;                /* log_level_t */
	unsigned query_timeout_ms;    /* whole query, client to answer */
	unsigned attempt_timeout_ms;  /* one upstream's turn before a resend */
	unsigned connect_timeout_ms;  /* TCP connect + TLS handshake */
	unsigned race_delay_ms;       /* connection-race-delay, 0 = no race */
	unsigned idle_timeout_ms;     /* idle upstream connection close */
	unsigned probe_idle_ms;       /* --probe: wait for the idle close */
	unsigned tcp_client_timeout_ms;  /* idle client TCP connection close */
	unsigned max_inflight;        /* queries in flight per connection */
	unsigned pool_size;           /* connections per upstream */
	unsigned padding_block;       /* EDNS padding block, 0 = off */
	unsigned max_tcp_clients;
	unsigned max_waiting;         /* queries queued while every pool is full */
	unsigned cache_size;          /* bytes of cached answers, 0 = no cache */
	unsigned cache_max_ttl;       /* seconds an answer is cached at most */
	unsigned cache_min_ttl;       /* ... and at least */
	unsigned cache_max_negative_ttl;  /* NXDOMAIN/NODATA at most; 0 never */
	int serve_stale;              /* RFC 8767: expired answers when stuck */
	unsigned stale_max_age;       /* seconds kept past expiry for that */
	unsigned stale_ttl;           /* the TTL a stale answer carries */
	unsigned stale_answer_timeout_ms;  /* wait for upstream, then stale */
	int prefetch;                 /* refresh popular answers before expiry */
	unsigned threads;             /* event loops, each with its own sockets */
	int policy;                   /* config_policy_t */
	int tcp_fastopen;
	int clock_floor;              /* build time as the earliest clock */
	int local_zones;              /* answer RFC 6761/6303 names here */
	/* Which names are answered here and which go to a forward group:
	 * built by config_from_args() (local-zones, [forward] domains),
	 * read-only after; NULL: none. */
	zones_t *zones;
} config_t;

/* The settings table (config_settings.c): one row per [server] setting. */
typedef enum {
	SET_UINT,       /* unsigned, min..max */
	SET_WORD,       /* one of words[], stored as an int index */
	SET_FLAG,       /* command line only, no value: sets an int to 1 */
	SET_STRING,     /* char *, owned */
	SET_PATH,       /* char *, owned, a file name made absolute by
			 * config_path() */
	SET_ADDR_PORT,  /* char *, owned, "ADDR@PORT" checked */
	SET_LISTEN,     /* repeatable: config_add_listen() */
	SET_ALLOW,      /* repeatable: config_add_allow() */
	SET_KIND_PATH,  /* char *, owned, "KIND:PATH" with KIND one of
			 * words[], the path made absolute by config_path() */
} config_type_t;

typedef struct {
	const char *key;          /* in the file's [server]; NULL: flag only */
	const char *flag;         /* long option; NULL: file only */
	int short_flag;           /* 0: none */
	config_type_t type;
	size_t offset;            /* into config_t */
	const char *def;          /* as the file writes it; NULL: unset. A
				   * repeatable setting's values, space-separated */
	unsigned min, max;        /* SET_UINT */
	const char *const *words; /* SET_WORD, NULL-terminated */
	const char *arg;          /* what the value looks like, for help */
	const char *help;
} config_setting_t;

extern const config_setting_t CONFIG_SETTINGS[];
extern const size_t CONFIG_NSETTINGS;

/* The row of a file key, or NULL. */
const config_setting_t *config_setting_find(const char *key);

/* Parse value into cfg's field. Returns 0, or -EINVAL with "invalid value
 * 'VALUE' (expected ...)" in err and cfg unchanged. A repeatable setting
 * adds a value. */
int config_setting_set(config_t *cfg, const config_setting_t *s,
		       const char *value, char *err, size_t errlen);

/* Forget a repeatable setting's values (the command line replaces the
 * file's). */
void config_setting_clear(config_t *cfg, const config_setting_t *s);

/* Every default of the table, into a zeroed cfg (repeatable settings get
 * theirs at the end, when nothing gave any). */
void config_settings_defaults(config_t *cfg);

/* "key = value" for each setting, in the table's order. */
void config_settings_print(const config_t *cfg, FILE *out);

/* --help lines of the settings that have a flag. */
void config_settings_usage(FILE *out);

/* Parse "IP[@PORT]" ("[IPv6]" brackets allowed). Returns 0, or -EINVAL. */
int config_parse_addr(const char *text, uint16_t default_port,
		      struct sockaddr_storage *addr, socklen_t *addrlen);

/* Parse "IP[@PORT][#NAME]" (port default 853). Returns 0, or -EINVAL. */
int config_parse_upstream(const char *text, config_upstream_t *u);

/* Defaults, then the configuration file (-c), then the rest of the command
 * line: -l and -u replace the file's listeners and upstreams. Returns 0, or
 * -1 with the reason in err: the option or FILE:LINE, and the bad value.
 * Help and version only set the mode. */
int config_from_args(config_t *cfg, int argc, char **argv,
		     char *err, size_t errlen);

/* path made absolute (malloc'd): a relative one names a file in the
 * working directory of the first config_from_args() call, i.e. where
 * dotstub started, also at a reload after -d has moved to /. Every file
 * setting (-c, --ca-file, --pidfile, ca-file, pidfile) goes through it. */
char *config_path(const char *path);

/* The effective configuration, in the configuration file's syntax. */
void config_print(const config_t *cfg, FILE *out);

void config_usage(FILE *out);

/* Read an INI configuration file into cfg (over what is there). Returns
 * 0, or -1 with "FILE:LINE: reason 'value'" (or the open error) in err. */
int config_load_file(config_t *cfg, const char *path, char *err, size_t errlen);

/* Shared by the command line and the file parsers. Each returns 0, or
 * -EINVAL leaving cfg unchanged. */
int config_add_listen(config_t *cfg, const char *text, int optional);
/* One allow line; -EINVAL (not a CIDR, host bits set) or -E2BIG (more
 * than ACL_MAX lines) leave cfg unchanged. */
int config_add_allow(config_t *cfg, const char *text);
/* What a valid allow line looks like, for the error of config_add_allow's
 * return code rc. */
const char *config_allow_help(int rc);
int config_group_add_server(config_group_t *g, const char *text);
int config_group_add_pin(config_group_t *g, const char *text);
void config_group_free(config_group_t *g);

/* config_forward.c: forward groups. Each returns 0, or -1 with the
 * reason ("domain: ...", "server: ...") in err and cfg unchanged. */
/* One key of a "[forward LABEL]" section at line `line` of file. */
int config_forward_key(config_t *cfg, const char *label, const char *key,
		       const char *value, const char *file, unsigned line,
		       char *err, size_t errlen);
/* --forward DOMAIN=IP[@PORT][#NAME] or DOMAIN=plain:IP[@PORT]. */
int config_forward_arg(config_t *cfg, const char *arg, char *err, size_t errlen);
/* Once everything is read: each group's servers parsed with the port its
 * kind implies (853 or 53), checks that need the whole group (a plain-DNS
 * port in a DoT group; a group without domain or server) naming the file
 * and line. Groups without a ca-file take --ca-file's. */
int config_forward_finish(config_t *cfg, char *err, size_t errlen);
/* The groups in the file's syntax, then the zone table. */
void config_forward_print(const config_t *cfg, FILE *out);
void config_forward_free(config_t *cfg);

/* 1 when a and b name the same upstreams, in the same order, with the
 * same names, pins and trust anchors, and the same forward groups and
 * zones (a reload that keeps them keeps the answers they gave). */
int config_same_upstreams(const config_t *a, const config_t *b);

void config_free(config_t *cfg);

#endif
