#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dotstub/config.h"
#include "dotstub/log.h"
#include "dotstub/netutil.h"
#include "dotstub/xmalloc.h"

static const char *const DEFAULT_LISTEN[] = { "127.0.0.1@53", "::1@53" };
static const char *const DEFAULT_UPSTREAMS[] = {
	"1.1.1.1@853#cloudflare-dns.com",
	"1.0.0.1@853#cloudflare-dns.com",
	"2606:4700:4700::1111@853#cloudflare-dns.com",
	"2606:4700:4700::1001@853#cloudflare-dns.com",
};

/* The working directory of the first config_from_args() (start-up):
 * -d moves to / before any reload. "" = not known (getcwd failed). */
static char start_dir[PATH_MAX];
static int start_dir_known;

static void remember_start_dir(void)
{
	if (start_dir_known)
		return;
	start_dir_known = 1;
	if (!getcwd(start_dir, sizeof(start_dir)))
		start_dir[0] = '\0';
}

/* Joined, not realpath()ed: a symbolic link in the path is followed when
 * the file is opened, each time (a configuration file that a tool swaps by
 * its link is read anew at a reload), and a pidfile's last component must
 * stay what the user named, for its O_NOFOLLOW check. */
char *config_path(const char *path)
{
	char *abs;
	size_t dlen;

	if (path[0] == '/' || !path[0])
		return xstrdup(path);
	remember_start_dir();
	if (!start_dir[0])
		return xstrdup(path);  /* no better guess than the current one */
	dlen = strlen(start_dir);
	abs = xmalloc(dlen + 1 + strlen(path) + 1);
	memcpy(abs, start_dir, dlen);
	abs[dlen] = '/';
	strcpy(abs + dlen + 1, path);
	return abs;
}

static int parse_port(const char *s, uint16_t *port)
{
	char *end;
	long v;

	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 1 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int config_parse_addr(const char *text, uint16_t default_port,
		      struct sockaddr_storage *addr, socklen_t *addrlen)
{
	char host[64];
	const char *at = strchr(text, '@');
	size_t hlen = at ? (size_t)(at - text) : strlen(text);
	uint16_t port = default_port;

	if (hlen == 0 || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	if (host[0] == '[') {
		if (hlen < 3 || host[hlen - 1] != ']')
			return -EINVAL;
		memmove(host, host + 1, hlen - 2);
		host[hlen - 2] = '\0';
	}
	if (at && parse_port(at + 1, &port) < 0)
		return -EINVAL;
	memset(addr, 0, sizeof(*addr));
	struct sockaddr_in *in4 = (struct sockaddr_in *)addr;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)addr;
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		*addrlen = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*addrlen = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

/* Host names as certificates carry them: LDH labels of 1..63 bytes. */
static int valid_name(const char *name)
{
	size_t label = 0, len = strlen(name);

	if (len == 0 || len > CONFIG_NAME_MAX || name[0] == '.')
		return 0;
	for (const char *p = name; *p; p++) {
		if (*p == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
			return 0;
		if (++label > 63)
			return 0;
	}
	return 1;
}

int config_parse_upstream(const char *text, config_upstream_t *u)
{
	char addr[64];
	const char *hash = strchr(text, '#');
	size_t alen = hash ? (size_t)(hash - text) : strlen(text);
	uint16_t port;

	memset(u, 0, sizeof(*u));
	if (alen >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	if (config_parse_addr(addr, CONFIG_DOT_PORT, &u->addr, &u->addrlen) < 0)
		return -EINVAL;
	if (hash) {
		if (!valid_name(hash + 1))
			return -EINVAL;
		snprintf(u->name, sizeof(u->name), "%s", hash + 1);
	}
	net_ip_port(&u->addr, u->ip_text, sizeof(u->ip_text), &port);
	snprintf(u->text, sizeof(u->text), "%s@%u%s%s", u->ip_text, port,
		 u->name[0] ? "#" : "", u->name);
	return 0;
}

int config_add_listen(config_t *cfg, const char *text, int optional)
{
	config_listen_t l;
	uint16_t port;
	char ip[48];

	memset(&l, 0, sizeof(l));
	if (config_parse_addr(text, CONFIG_DNS_PORT, &l.addr, &l.addrlen) < 0)
		return -EINVAL;
	net_ip_port(&l.addr, ip, sizeof(ip), &port);
	snprintf(l.text, sizeof(l.text), "%s@%u", ip, port);
	l.optional = optional;
	cfg->listen = xrealloc(cfg->listen, (cfg->nlisten + 1) * sizeof(l));
	cfg->listen[cfg->nlisten++] = l;
	return 0;
}

const char *config_allow_help(int rc)
{
	if (rc == -E2BIG)
		return "more than " ACL_MAX_TEXT " allow lines";
	return "expected ADDR/LEN such as 192.168.1.0/24 or 2001:db8::/32, "
	       "no bits set past LEN";
}

/* The list is made with its first valid line: a bad first line must not
 * leave an empty list (nobody answered) behind. */
int config_add_allow(config_t *cfg, const char *text)
{
	acl_t *fresh = cfg->allow ? NULL : acl_create();
	int rc = acl_add(fresh ? fresh : cfg->allow, text);

	if (rc < 0) {
		acl_destroy(fresh);
		return rc;
	}
	if (fresh)
		cfg->allow = fresh;
	return 0;
}

int config_group_add_server(config_group_t *g, const char *text)
{
	config_upstream_t u;

	if (config_parse_upstream(text, &u) < 0)
		return -EINVAL;
	g->servers = xrealloc(g->servers, (g->nservers + 1) * sizeof(char *));
	g->servers[g->nservers++] = xstrdup(text);
	return 0;
}

int config_group_add_pin(config_group_t *g, const char *text)
{
	tls_pin_t pin;

	if (tls_pin_parse(text, &pin) < 0)
		return -EINVAL;
	g->pins = xrealloc(g->pins, (g->npins + 1) * sizeof(pin));
	g->pins[g->npins++] = pin;
	return 0;
}

void config_group_free(config_group_t *g)
{
	for (size_t i = 0; i < g->nservers; i++)
		free(g->servers[i]);
	free(g->servers);
	free(g->pins);
	free(g->ca_file);
	memset(g, 0, sizeof(*g));
}

static void set_defaults(config_t *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	config_settings_defaults(cfg);
	snprintf(cfg->cli.label, sizeof(cfg->cli.label), "command line");
}

/* Options that are not settings: they pick the mode, or make the command
 * line's upstream group. Settings with a flag get val SETTING_VAL + row. */
enum {
	OPT_CA_FILE = 256, OPT_PIN, OPT_CHECK, OPT_PROBE, OPT_JSON, OPT_VERSION, OPT_FORWARD,
	SETTING_VAL = 1024,
};

static const struct option COMMAND_OPTS[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "upstream", required_argument, NULL, 'u' },
	{ "ca-file", required_argument, NULL, OPT_CA_FILE },
	{ "pin", required_argument, NULL, OPT_PIN },
	{ "forward", required_argument, NULL, OPT_FORWARD },
	{ "verbose", no_argument, NULL, 'v' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "check-config", no_argument, NULL, OPT_CHECK },
	{ "probe", required_argument, NULL, OPT_PROBE },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "help", no_argument, NULL, 'h' },
};
#define N_COMMAND_OPTS (sizeof(COMMAND_OPTS) / sizeof(COMMAND_OPTS[0]))

/* getopt's tables: the commands, then every setting that has a flag. */
typedef struct {
	struct option longopts[N_COMMAND_OPTS + 64 + 1];
	char shortopts[64];
} getopt_tables_t;

static void make_getopt_tables(getopt_tables_t *t)
{
	size_t n = N_COMMAND_OPTS, len;

	memset(t, 0, sizeof(*t));
	memcpy(t->longopts, COMMAND_OPTS, sizeof(COMMAND_OPTS));
	snprintf(t->shortopts, sizeof(t->shortopts), ":c:u:vqh");
	for (size_t i = 0; i < CONFIG_NSETTINGS && n < N_COMMAND_OPTS + 64; i++) {
		const config_setting_t *s = &CONFIG_SETTINGS[i];
		int has_arg = s->type == SET_FLAG ? no_argument : required_argument;

		if (!s->flag)
			continue;
		t->longopts[n++] = (struct option){ s->flag, has_arg, NULL,
						     s->short_flag ? s->short_flag
								   : SETTING_VAL + (int)i };
		len = strlen(t->shortopts);
		if (s->short_flag && len + 3 < sizeof(t->shortopts))
			snprintf(t->shortopts + len, sizeof(t->shortopts) - len, "%c%s",
				 s->short_flag, has_arg == required_argument ? ":" : "");
	}
}

static const config_setting_t *setting_of_option(int opt)
{
	for (size_t i = 0; i < CONFIG_NSETTINGS; i++)
		if ((CONFIG_SETTINGS[i].short_flag && CONFIG_SETTINGS[i].short_flag == opt) ||
		    (!CONFIG_SETTINGS[i].short_flag && opt == SETTING_VAL + (int)i))
			return &CONFIG_SETTINGS[i];
	return NULL;
}

static void replace_path(char **dst, const char *src)
{
	free(*dst);
	*dst = config_path(src);
}

/* A setting given on the command line. The first use of a repeatable one
 * drops the values that the configuration file gave. */
static int apply_setting(config_t *cfg, const config_setting_t *s, const char *arg,
			 unsigned char *seen, char *err, size_t errlen)
{
	char why[160];

	if (!seen[s - CONFIG_SETTINGS]++)
		config_setting_clear(cfg, s);
	if (config_setting_set(cfg, s, arg, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "--%s: %s", s->flag, why);
		return -1;
	}
	return 0;
}

/* One command option; returns 0 or -1 with err set. */
static int apply_command(config_t *cfg, int opt, const char *arg,
			 char *err, size_t errlen)
{
	switch (opt) {
	case 'c': break;  /* read before the other options */
	case 'u':
		if (config_group_add_server(&cfg->cli, arg) < 0)
			goto bad;
		break;
	case OPT_CA_FILE: replace_path(&cfg->cli.ca_file, arg); break;
	case OPT_PIN:
		if (config_group_add_pin(&cfg->cli, arg) < 0)
			goto bad;
		break;
	case OPT_FORWARD:
		return config_forward_arg(cfg, arg, err, errlen);
	case 'v': cfg->log_level = LOG_LVL_DEBUG; break;
	case 'q': cfg->log_level = LOG_LVL_WARN; break;
	case OPT_CHECK: cfg->mode = CONFIG_CHECK; break;
	case OPT_PROBE:
		if (config_parse_upstream(arg, &cfg->probe) < 0)
			goto bad;
		cfg->mode = CONFIG_PROBE;
		break;
	case OPT_JSON: cfg->probe_json = 1; break;
	case OPT_VERSION: cfg->mode = CONFIG_VERSION; break;
	case 'h': cfg->mode = CONFIG_HELP; break;
	default:
		snprintf(err, errlen, "unknown option (see --help)");
		return -1;
	}
	return 0;
bad:
	for (size_t i = 0; i < N_COMMAND_OPTS; i++)
		if (COMMAND_OPTS[i].val == opt) {
			snprintf(err, errlen, "--%s: invalid value '%s'",
				 COMMAND_OPTS[i].name, arg);
			return -1;
		}
	snprintf(err, errlen, "invalid value '%s'", arg);
	return -1;
}

/* Turn one group's servers into upstreams. */
static void add_group_upstreams(config_t *cfg, const config_group_t *g)
{
	for (size_t i = 0; i < g->nservers; i++) {
		config_upstream_t u;

		if (config_parse_upstream(g->servers[i], &u) < 0)
			continue;  /* validated when added */
		if (!u.name[0] && g->name[0]) {
			snprintf(u.name, sizeof(u.name), "%s", g->name);
			snprintf(u.text + strlen(u.text), sizeof(u.text) - strlen(u.text),
				 "#%s", g->name);
		}
		u.pins = g->pins;
		u.npins = g->npins;
		u.ca_file = g->ca_file;
		cfg->upstreams = xrealloc(cfg->upstreams,
					  (cfg->nupstreams + 1) * sizeof(u));
		cfg->upstreams[cfg->nupstreams++] = u;
	}
}

/* What is still unset falls back to the built-in defaults. Upstreams: the
 * command line's, else the file's groups, else the defaults (with the
 * command line's pins and anchors). */
/* The zone table. Forward zones override local ones of the same name
 * whatever the order they are added in; a forward zone's group number is
 * its index in cfg->forwards (forward.c's groups follow that order). The
 * domains were validated and made unique when read. */
static void build_zones(config_t *cfg)
{
	zones_destroy(cfg->zones);
	cfg->zones = zones_create();
	if (cfg->local_zones)
		zones_add_local_defaults(cfg->zones);
	for (size_t i = 0; i < cfg->nforwards; i++)
		for (size_t k = 0; k < cfg->forwards[i].ndomains; k++)
			zones_add_forward(cfg->zones, cfg->forwards[i].domains[k],
					  (unsigned)i, cfg->forwards[i].tls.label);
}

static void finish(config_t *cfg)
{
	if (cfg->nlisten == 0)
		for (size_t i = 0; i < 2; i++)
			config_add_listen(cfg, DEFAULT_LISTEN[i], i == 1);
	if (cfg->cli.nservers == 0 && cfg->ngroups == 0) {
		snprintf(cfg->cli.label, sizeof(cfg->cli.label), "default");
		for (size_t i = 0; i < 4; i++)
			config_group_add_server(&cfg->cli, DEFAULT_UPSTREAMS[i]);
	}
	if (cfg->cli.nservers > 0) {
		add_group_upstreams(cfg, &cfg->cli);
	} else {
		for (size_t i = 0; i < cfg->ngroups; i++) {
			if (!cfg->groups[i].ca_file && cfg->cli.ca_file)
				cfg->groups[i].ca_file = xstrdup(cfg->cli.ca_file);
			add_group_upstreams(cfg, &cfg->groups[i]);
		}
	}
	cfg->probe.pins = cfg->cli.pins;
	cfg->probe.npins = cfg->cli.npins;
	cfg->probe.ca_file = cfg->cli.ca_file;
	build_zones(cfg);
}

/* -c must be known before the other options, which override the file. */
static const char *find_config_file(int argc, char **argv,
				    const getopt_tables_t *t)
{
	const char *file = NULL;
	int opt;

	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, t->shortopts, t->longopts, NULL)) != -1)
		if (opt == 'c')
			file = optarg;
	return file;
}

int config_from_args(config_t *cfg, int argc, char **argv,
		     char *err, size_t errlen)
{
	getopt_tables_t t;
	const char *file;
	unsigned char seen[64] = { 0 };
	int opt;

	remember_start_dir();
	make_getopt_tables(&t);
	file = find_config_file(argc, argv, &t);
	set_defaults(cfg);
	if (file) {
		cfg->config_file = config_path(file);
		if (config_load_file(cfg, cfg->config_file, err, errlen) < 0)
			return -1;
	}
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, t.shortopts, t.longopts, NULL)) != -1) {
		const config_setting_t *s = setting_of_option(opt);
		int rc;

		if (opt == '?' || opt == ':') {
			const char *what = argv[optind - 1];
			snprintf(err, errlen, opt == ':' ? "%s: missing value"
				 : "unknown option '%s' (see --help)", what);
			return -1;
		}
		rc = s ? apply_setting(cfg, s, optarg, seen, err, errlen)
		       : apply_command(cfg, opt, optarg, err, errlen);
		if (rc < 0)
			return -1;
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
		return -1;
	}
	/* Silently unpinned upstreams would be worse than an error. */
	if (cfg->cli.npins && !cfg->cli.nservers && cfg->ngroups &&
	    cfg->mode != CONFIG_PROBE) {
		snprintf(err, errlen, "--pin applies to -u upstreams, and %s has "
			 "[upstream] sections: give their pins there (pin = ...)",
			 cfg->config_file);
		return -1;
	}
	if (config_forward_finish(cfg, err, errlen) < 0)
		return -1;
	finish(cfg);
	return 0;
}

static void print_group(const config_group_t *g, FILE *out)
{
	char pin[TLS_PIN_B64_LEN + 1];

	fprintf(out, "\n[upstream %s]\n", g->label);
	if (g->name[0])
		fprintf(out, "auth-name = %s\n", g->name);
	fprintf(out, "ca-file = %s\n", g->ca_file ? g->ca_file : "system");
	for (size_t i = 0; i < g->npins; i++) {
		tls_pin_format(&g->pins[i], pin, sizeof(pin));
		fprintf(out, "pin = %s\n", pin);
	}
	for (size_t i = 0; i < g->nservers; i++)
		fprintf(out, "server = %s\n", g->servers[i]);
}

void config_print(const config_t *cfg, FILE *out)
{
	fprintf(out, "# effective configuration%s%s\n[server]\n",
		cfg->config_file ? " from " : "",
		cfg->config_file ? cfg->config_file : "");
	config_settings_print(cfg, out);
	if (cfg->cli.nservers > 0)
		print_group(&cfg->cli, out);
	else
		for (size_t i = 0; i < cfg->ngroups; i++)
			print_group(&cfg->groups[i], out);
	config_forward_print(cfg, out);
	zones_print(cfg->zones, out);
}

void config_usage(FILE *out)
{
	fputs("Usage: dotstub [options]\n"
	      "DNS-over-TLS stub resolver: plain DNS in on loopback, TLS out.\n\n"
	      "  -c, --config FILE               configuration file\n"
	      "  -u, --upstream IP[@PORT][#NAME] DoT upstream, repeatable\n"
	      "                                  (default Cloudflare, cloudflare-dns.com)\n"
	      "      --ca-file FILE              PEM trust anchors instead of the system store\n"
	      "      --pin BASE64                SPKI SHA-256 pin, repeatable\n"
	      "      --forward DOMAIN=IP[@PORT][#NAME]\n"
	      "                                  names under DOMAIN to this DoT server\n"
	      "      --forward DOMAIN=plain:IP[@PORT]\n"
	      "                                  ... or to this plain DNS server; repeatable\n"
	      "  -v, --verbose                   debug logging\n"
	      "  -q, --quiet                     warnings and errors only\n"
	      "      --check-config              validate, print the effective configuration\n"
	      "      --probe IP[@PORT][#NAME]    connect once, show the chain and verdict\n"
	      "      --json                      with --probe: one JSON object\n",
	      out);
	config_settings_usage(out);
	fputs("      --version, -h, --help\n\n"
	      "Every setting of the configuration file's [server] section, with its\n"
	      "value now: dotstub --check-config; their ranges: dotstub(8).\n", out);
}

static int same_text(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* The forward groups and zones as --check-config prints them (malloc'd;
 * NULL when out of memory). */
static char *forward_text(const config_t *cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	config_forward_print(cfg, f);
	fclose(f);
	return buf;
}

/* Compared as printed: every setting of a group is in its text. */
static int same_forwards(const config_t *a, const config_t *b)
{
	char *x = forward_text(a), *y = forward_text(b);
	int same = x && y && strcmp(x, y) == 0;

	free(x);
	free(y);
	return same;
}

int config_same_upstreams(const config_t *a, const config_t *b)
{
	if (a->nupstreams != b->nupstreams || !same_forwards(a, b))
		return 0;
	for (size_t i = 0; i < a->nupstreams; i++) {
		const config_upstream_t *x = &a->upstreams[i], *y = &b->upstreams[i];
		if (strcmp(x->text, y->text) != 0 || x->npins != y->npins ||
		    !same_text(x->ca_file, y->ca_file) ||
		    (x->npins && memcmp(x->pins, y->pins,
					x->npins * sizeof(*x->pins)) != 0))
			return 0;
	}
	return 1;
}

void config_free(config_t *cfg)
{
	zones_destroy(cfg->zones);
	free(cfg->listen);
	acl_destroy(cfg->allow);
	free(cfg->upstreams);
	for (size_t i = 0; i < cfg->ngroups; i++)
		config_group_free(&cfg->groups[i]);
	free(cfg->groups);
	config_group_free(&cfg->cli);
	config_forward_free(cfg);
	free(cfg->config_file);
	free(cfg->user);
	free(cfg->pidfile);
	free(cfg->metrics);
	free(cfg->dnstap);
	memset(cfg, 0, sizeof(*cfg));
}
