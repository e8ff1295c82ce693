#include "config.h"

#include <errno.h>
#include <glob.h>
#include <libgen.h>
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
 *   [forward LABEL]       domains sent to other servers (config_forward.c)
 *   include = GLOB        more files, e.g. all *.conf of /etc/dotstub.d
 *                         (in any section)
 *
 * Every key is in one of the tables below; anything else is an error. */

/* Included files may include others, this deep at most (a file that
 * includes itself ends here, with an error). */
#define INCLUDE_DEPTH_MAX 8

typedef struct {
	config_t *cfg;
	const char *path;
	FILE *fp;
	unsigned line;     /* the line inih is on: our reader counts them */
	int depth;
	char err[600];
} parse_state_t;

static int load(config_t *cfg, const char *path, int depth, char *err,
		size_t errlen);

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

/* A [server] key: a row of the settings table (config_settings.c). */
static int server_key(parse_state_t *st, const char *name, const char *value)
{
	const config_setting_t *s = config_setting_find(name);
	char why[200];

	if (!s)
		return error(st, "unknown key '%s' in [server]", name);
	if (config_setting_set(st->cfg, s, value, why, sizeof(why)) < 0)
		return error(st, "%s: %s", name, why);
	return 1;
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
		char *path = config_path(value);
		if (access(path, R_OK) < 0) {
			error(st, "ca-file: cannot read '%s': %s", path, strerror(errno));
			free(path);
			return 0;
		}
		free(g->ca_file);
		g->ca_file = path;
		return 1;
	}
	return error(st, "unknown key '%s' in [upstream %s]", name, label);
}

static int forward_key(parse_state_t *st, const char *label, const char *name,
		       const char *value)
{
	char why[400];

	if (config_forward_key(st->cfg, label, name, value, st->path, st->line,
			       why, sizeof(why)) < 0)
		return error(st, "%s", why);
	return 1;
}

/* A directory that does not exist matches nothing (the dispatcher script
 * makes /etc/dotstub.d when it first needs it); one we cannot read is an
 * error, not a silently smaller configuration. */
static int glob_error(const char *path, int err)
{
	(void)path;
	return err != ENOENT && err != ENOTDIR;
}

/* A relative pattern names files next to the including one. Matches are
 * read in sorted order (glob's); no match is no error: an empty
 * /etc/dotstub.d is the normal case. */
static int include_key(parse_state_t *st, const char *pattern)
{
	char *dir = xstrdup(st->path), *full;
	glob_t g;
	int rc;

	if (pattern[0] == '/') {
		full = xstrdup(pattern);
	} else {
		const char *d = dirname(dir);
		full = xmalloc(strlen(d) + 1 + strlen(pattern) + 1);
		sprintf(full, "%s/%s", d, pattern);
	}
	free(dir);
	if (st->depth >= INCLUDE_DEPTH_MAX) {
		error(st, "include: '%s': nested more than %d deep (does a file include "
		      "itself?)", full, INCLUDE_DEPTH_MAX);
		free(full);
		return 0;
	}
	rc = glob(full, 0, glob_error, &g);
	if (rc != 0 && rc != GLOB_NOMATCH) {
		error(st, "include: cannot read '%s'", full);
		free(full);
		return 0;
	}
	free(full);
	for (size_t i = 0; rc == 0 && i < g.gl_pathc; i++) {
		if (load(st->cfg, g.gl_pathv[i], st->depth + 1, st->err,
			 sizeof(st->err)) < 0) {
			globfree(&g);
			return 0;
		}
	}
	if (rc == 0)
		globfree(&g);
	return 1;
}

static int on_key(void *user, const char *section, const char *name,
		  const char *value)
{
	parse_state_t *st = user;

	if (strcmp(name, "include") == 0)
		return include_key(st, value);
	if (strncmp(section, "forward ", 8) == 0 && section[8])
		return forward_key(st, section + 8, name, value);
	if (strcmp(section, "server") == 0)
		return server_key(st, name, value);
	if (strcmp(section, "upstream") == 0)
		return upstream_key(st, "default", name, value);
	if (strncmp(section, "upstream ", 9) == 0 && section[9])
		return upstream_key(st, section + 9, name, value);
	if (!section[0])
		return error(st, "'%s' outside any section ([server], [upstream LABEL] "
			     "or [forward LABEL])", name);
	return error(st, "unknown section [%s]", section);
}

/* inih's reader, counting lines as inih does (one call per line), so
 * that checks made after a section is read can name a key's line. */
static char *read_line(char *buf, int size, void *arg)
{
	parse_state_t *st = arg;
	char *r = fgets(buf, size, st->fp);

	if (r)
		st->line++;
	return r;
}

static int load(config_t *cfg, const char *path, int depth, char *err,
		size_t errlen)
{
	parse_state_t st = { .cfg = cfg, .path = path, .depth = depth };
	int line;

	st.fp = fopen(path, "r");
	if (!st.fp) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	line = ini_parse_stream(read_line, &st, on_key, &st);
	fclose(st.fp);
	if (line != 0) {
		snprintf(err, errlen, "%s:%d: %s", path, line,
			 st.err[0] ? st.err : "syntax error");
		return -1;
	}
	return 0;
}

int config_load_file(config_t *cfg, const char *path, char *err, size_t errlen)
{
	ini_stop_on_first_error = 1;
	ini_allow_multiline = 0;
	if (load(cfg, path, 0, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < cfg->ngroups; i++)
		if (cfg->groups[i].nservers == 0) {
			snprintf(err, errlen, "%s: [upstream %s] has no server", path,
				 cfg->groups[i].label);
			return -1;
		}
	return 0;
}
