#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dotstub/config.h"
#include "dotstub/netutil.h"
#include "dotstub/xmalloc.h"

/* Forward groups: "[forward LABEL]" sections of the configuration file and
 * the command line's --forward. Names at or below a group's domains go to
 * its servers (the most specific domain wins, see forward.c). A group is
 * DoT with the keys of an [upstream] group, or plain DNS when it says
 * "plaintext = yes": never plain by accident. */

#define PLAIN_PREFIX "plain:"

/* A domain as the user wrote it, into its stored form (lower case, no
 * final dot). Returns NULL, or what is wrong with it. */
static const char *normalize_domain(const char *text, char *out, size_t cap)
{
	unsigned char probe[16];
	size_t len = strlen(text), label = 0;
	const char *last;

	if (len && text[len - 1] == '.')
		len--;
	if (len == 0)
		return "the root is what [upstream] serves";
	if (len >= cap || len > CONFIG_NAME_MAX)
		return "longer than 253 characters";
	memmove(out, text, len);   /* out may be text */
	out[len] = '\0';
	if (inet_pton(AF_INET6, out, probe) == 1)
		return "an address, not a domain (its reverse zone is under ip6.arpa)";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c == '.') {
			if (label == 0)
				return "an empty label";
			label = 0;
		} else if (!isalnum(c) && c != '-' && c != '_') {
			return "a character other than a letter, digit, '-' or '_'";
		} else if (++label > 63) {
			return "a label longer than 63 characters";
		}
		out[i] = (char)tolower(c);
	}
	if (label == 0)
		return "an empty label";
	last = strrchr(out, '.');
	last = last ? last + 1 : out;
	if (strspn(last, "0123456789") == strlen(last))
		return "an address, not a domain (its reverse zone is under in-addr.arpa)";
	return NULL;
}

static config_forward_t *find_group(config_t *cfg, const char *label)
{
	for (size_t i = 0; i < cfg->nforwards; i++)
		if (strcmp(cfg->forwards[i].tls.label, label) == 0)
			return &cfg->forwards[i];
	return NULL;
}

static config_forward_t *group_for(config_t *cfg, const char *label)
{
	config_forward_t *f = find_group(cfg, label);

	if (f)
		return f;
	cfg->forwards = xrealloc(cfg->forwards,
				 (cfg->nforwards + 1) * sizeof(*cfg->forwards));
	f = &cfg->forwards[cfg->nforwards++];
	memset(f, 0, sizeof(*f));
	snprintf(f->tls.label, sizeof(f->tls.label), "%s", label);
	return f;
}

/* The group that already forwards `domain`, or NULL. */
static const config_forward_t *owner_of(const config_t *cfg, const char *domain)
{
	for (size_t i = 0; i < cfg->nforwards; i++)
		for (size_t k = 0; k < cfg->forwards[i].ndomains; k++)
			if (strcmp(cfg->forwards[i].domains[k], domain) == 0)
				return &cfg->forwards[i];
	return NULL;
}

static int add_domain(config_t *cfg, config_forward_t *f, const char *text,
		      char *err, size_t errlen)
{
	char domain[CONFIG_NAME_MAX + 2];
	const char *why = normalize_domain(text, domain, sizeof(domain));
	const config_forward_t *owner;

	if (why) {
		snprintf(err, errlen, "domain: invalid domain '%s' (%s)", text, why);
		return -1;
	}
	owner = owner_of(cfg, domain);
	if (owner == f)
		return 0;
	if (owner) {
		snprintf(err, errlen, "domain: '%s' is already forwarded by [forward %s]",
			 domain, owner->tls.label);
		return -1;
	}
	f->domains = xrealloc(f->domains, (f->ndomains + 1) * sizeof(char *));
	f->domains[f->ndomains++] = xstrdup(domain);
	return 0;
}

/* "IP[@PORT][#NAME]": the syntax only, the port's default comes with the
 * group's kind at the end. */
static int add_server(config_forward_t *f, const char *text, unsigned line,
		      char *err, size_t errlen)
{
	if (config_group_add_server(&f->tls, text) < 0) {
		snprintf(err, errlen, "server: invalid server '%s' (expected an "
			 "address: IP[@PORT][#NAME])", text);
		return -1;
	}
	f->server_lines = xrealloc(f->server_lines,
				   f->tls.nservers * sizeof(unsigned));
	f->server_lines[f->tls.nservers - 1] = line;
	return 0;
}

int config_forward_key(config_t *cfg, const char *label, const char *key,
		       const char *value, const char *file, unsigned line,
		       char *err, size_t errlen)
{
	config_forward_t *f = group_for(cfg, label);

	if (!f->file)
		f->file = xstrdup(file);

	if (strcmp(key, "domain") == 0)
		return add_domain(cfg, f, value, err, errlen);
	if (strcmp(key, "server") == 0)
		return add_server(f, value, line, err, errlen);
	if (strcmp(key, "plaintext") == 0) {
		if (strcmp(value, "yes") != 0 && strcmp(value, "no") != 0) {
			snprintf(err, errlen, "plaintext: invalid value '%s' (expected no, yes)",
				 value);
			return -1;
		}
		f->plaintext = strcmp(value, "yes") == 0;
		f->plaintext_line = line;
		return 0;
	}
	if (strcmp(key, "auth-name") == 0) {
		config_upstream_t probe;
		char spec[CONFIG_SPEC_MAX];
		snprintf(spec, sizeof(spec), "127.0.0.1#%s", value);
		if (config_parse_upstream(spec, &probe) < 0) {
			snprintf(err, errlen, "auth-name: invalid name '%s'", value);
			return -1;
		}
		snprintf(f->tls.name, sizeof(f->tls.name), "%s", value);
		return 0;
	}
	if (strcmp(key, "pin") == 0) {
		if (config_group_add_pin(&f->tls, value) < 0) {
			snprintf(err, errlen, "pin: invalid pin '%s' (expected base64 "
				 "SHA-256, 44 characters)", value);
			return -1;
		}
		return 0;
	}
	if (strcmp(key, "ca-file") == 0) {
		char *path = config_path(value);
		if (access(path, R_OK) < 0) {
			snprintf(err, errlen, "ca-file: cannot read '%s': %s", path,
				 strerror(errno));
			free(path);
			return -1;
		}
		free(f->tls.ca_file);
		f->tls.ca_file = path;
		return 0;
	}
	snprintf(err, errlen, "unknown key '%s' in [forward %s]", key, label);
	return -1;
}

/* Command-line groups are named after their domain and kind, so that
 * repeating --forward for one domain gives it several servers. */
int config_forward_arg(config_t *cfg, const char *arg, char *err, size_t errlen)
{
	const char *eq = strchr(arg, '=');
	char domain[CONFIG_NAME_MAX + 2], label[64];
	const char *server, *why;
	int plain;
	config_forward_t *f;

	if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof(domain)) {
		snprintf(err, errlen, "--forward: invalid value '%s' (expected "
			 "DOMAIN=IP[@PORT][#NAME] or DOMAIN=plain:IP[@PORT])", arg);
		return -1;
	}
	memcpy(domain, arg, (size_t)(eq - arg));
	domain[eq - arg] = '\0';
	server = eq + 1;
	plain = strncmp(server, PLAIN_PREFIX, strlen(PLAIN_PREFIX)) == 0;
	if (plain)
		server += strlen(PLAIN_PREFIX);
	why = normalize_domain(domain, domain, sizeof(domain));
	if (why) {
		snprintf(err, errlen, "--forward: invalid domain in '%s' (%s)", arg, why);
		return -1;
	}
	if (strlen(domain) + strlen(PLAIN_PREFIX) >= sizeof(label)) {
		snprintf(err, errlen, "--forward: domain of '%s' too long for the "
			 "command line: give it a [forward] section", arg);
		return -1;
	}
	snprintf(label, sizeof(label), "%s%.*s", plain ? PLAIN_PREFIX : "",
		 (int)(sizeof(label) - 1 - strlen(PLAIN_PREFIX)), domain);
	f = find_group(cfg, label);
	if (!f && owner_of(cfg, domain)) {
		snprintf(err, errlen, "--forward: '%s' is already forwarded by [forward %s]",
			 domain, owner_of(cfg, domain)->tls.label);
		return -1;
	}
	if (plain && strchr(server, '#')) {
		snprintf(err, errlen, "--forward: '%s': a plain DNS server has no "
			 "name to verify", arg);
		return -1;
	}
	if (config_parse_upstream(server, &(config_upstream_t){ 0 }) < 0) {
		snprintf(err, errlen, "--forward: invalid server in '%s' (expected an "
			 "address: IP[@PORT][#NAME])", arg);
		return -1;
	}
	f = group_for(cfg, label);
	f->plaintext = plain;
	if (!f->ndomains)
		add_domain(cfg, f, domain, err, errlen);
	return add_server(f, server, 0, err, errlen);
}

/* "FILE:LINE: " for an error about the thing at `line` (0: the command
 * line). */
static void where(char *out, size_t cap, const char *file, unsigned line)
{
	if (line && file)
		snprintf(out, cap, "%s:%u: ", file, line);
	else
		snprintf(out, cap, "--forward: ");
}

/* Servers parsed with the default port of the group's kind; a DoT group
 * that names port 53 is a plain DNS server someone forgot to mark. */
static int parse_servers(config_forward_t *f, char *err, size_t errlen)
{
	char at[300];

	f->upstreams = xcalloc(f->tls.nservers, sizeof(*f->upstreams));
	for (size_t i = 0; i < f->tls.nservers; i++) {
		config_upstream_t *u = &f->upstreams[i];
		const char *text = f->tls.servers[i];
		uint16_t port;

		where(at, sizeof(at), f->file, f->server_lines[i]);
		if (f->plaintext && strchr(text, '#')) {
			snprintf(err, errlen, "%sserver '%s': a plain DNS server has no "
				 "name to verify ([forward %s] has plaintext = yes)",
				 at, text, f->tls.label);
			return -1;
		}
		/* Both validated when added. */
		if (f->plaintext)
			config_parse_addr(text, CONFIG_DNS_PORT, &u->addr, &u->addrlen);
		else
			config_parse_upstream(text, u);
		net_ip_port(&u->addr, u->ip_text, sizeof(u->ip_text), &port);
		if (!f->plaintext && port == CONFIG_DNS_PORT) {
			snprintf(err, errlen, "%sserver '%s': port 53 is plain DNS; "
				 "[forward %s] sends DoT unless it says 'plaintext = yes'",
				 at, text, f->tls.label);
			return -1;
		}
		if (!f->plaintext && !u->name[0] && f->tls.name[0])
			snprintf(u->name, sizeof(u->name), "%s", f->tls.name);
		snprintf(u->text, sizeof(u->text), "%s@%u%s%s", u->ip_text, port,
			 u->name[0] ? "#" : "", u->name);
		u->pins = f->tls.pins;
		u->npins = f->tls.npins;
		u->ca_file = f->tls.ca_file;
	}
	f->nupstreams = f->tls.nservers;
	return 0;
}

int config_forward_finish(config_t *cfg, char *err, size_t errlen)
{
	for (size_t i = 0; i < cfg->nforwards; i++) {
		config_forward_t *f = &cfg->forwards[i];
		char at[300];

		where(at, sizeof(at), f->file, f->plaintext_line);
		if (f->plaintext && (f->tls.name[0] || f->tls.npins || f->tls.ca_file)) {
			snprintf(err, errlen, "%s[forward %s]: plaintext = yes, yet auth-name, "
				 "pin or ca-file: a plain DNS server cannot be authenticated",
				 at, f->tls.label);
			return -1;
		}
		if (!f->ndomains || !f->tls.nservers) {
			snprintf(err, errlen, "%s%s[forward %s] has no %s",
				 f->file ? f->file : "--forward", f->file ? ": " : " ",
				 f->tls.label, f->ndomains ? "server" : "domain");
			return -1;
		}
		if (!f->plaintext && !f->tls.ca_file && cfg->cli.ca_file)
			f->tls.ca_file = xstrdup(cfg->cli.ca_file);
		if (parse_servers(f, err, errlen) < 0)
			return -1;
	}
	return 0;
}

static void print_group(const config_forward_t *f, FILE *out)
{
	char pin[TLS_PIN_B64_LEN + 1];

	fprintf(out, "\n[forward %s]\n", f->tls.label);
	for (size_t i = 0; i < f->ndomains; i++)
		fprintf(out, "domain = %s\n", f->domains[i]);
	if (f->plaintext)
		fprintf(out, "plaintext = yes\n");
	if (f->tls.name[0])
		fprintf(out, "auth-name = %s\n", f->tls.name);
	if (!f->plaintext)
		fprintf(out, "ca-file = %s\n", f->tls.ca_file ? f->tls.ca_file : "system");
	for (size_t i = 0; i < f->tls.npins; i++) {
		tls_pin_format(&f->tls.pins[i], pin, sizeof(pin));
		fprintf(out, "pin = %s\n", pin);
	}
	for (size_t i = 0; i < f->nupstreams; i++)
		fprintf(out, "server = %s\n", f->upstreams[i].text);
}

void config_forward_print(const config_t *cfg, FILE *out)
{
	for (size_t i = 0; i < cfg->nforwards; i++)
		print_group(&cfg->forwards[i], out);
	fprintf(out, "\n# forward zones: the most specific zone of a name wins; "
		"names in no zone go\n# to the upstreams\n");
	fprintf(out, "# %-34s %-16s %-10s %s\n", "domain", "group", "transport",
		"servers");
	for (size_t i = 0; i < cfg->nforwards; i++) {
		const config_forward_t *f = &cfg->forwards[i];
		for (size_t k = 0; k < f->ndomains; k++) {
			fprintf(out, "# %-34s %-16s %-10s", f->domains[k], f->tls.label,
				f->plaintext ? "plain-dns" : "dot");
			for (size_t s = 0; s < f->nupstreams; s++)
				fprintf(out, " %s", f->upstreams[s].text);
			fputc('\n', out);
		}
	}
	fprintf(out, "# %-34s %-16s %-10s\n", ".", "[upstream]", "dot");
}

void config_forward_free(config_t *cfg)
{
	for (size_t i = 0; i < cfg->nforwards; i++) {
		config_forward_t *f = &cfg->forwards[i];
		for (size_t k = 0; k < f->ndomains; k++)
			free(f->domains[k]);
		free(f->domains);
		free(f->server_lines);
		free(f->file);
		free(f->upstreams);
		config_group_free(&f->tls);
	}
	free(cfg->forwards);
	cfg->forwards = NULL;
	cfg->nforwards = 0;
}
