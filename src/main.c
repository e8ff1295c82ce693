/* dotstub: plain DNS in on loopback, DNS over TLS out.
 * main: start-up in order, the signals, shutdown in reverse. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "dotstub/config.h"
#include "dotstub/listener_tcp.h"
#include "dotstub/listener_udp.h"
#include "dotstub/log.h"
#include "dotstub/metrics.h"
#include "dotstub/probe.h"
#include "dotstub/query.h"
#include "dotstub/tls.h"
#include "dotstub/upstream.h"
#include "dotstub/xmalloc.h"

/* How long a shutdown waits for queries in flight. */
#define DRAIN_SECONDS 2.0

/* A configuration replaced by a reload, kept until its upstream set has
 * no query left (the set points into the configuration). */
typedef struct retired {
	struct retired *next;
	config_t cfg;
	upstream_set_t *ups;
} retired_t;

typedef struct {
	int argc;
	char **argv;     /* to read the configuration again on SIGHUP */
	config_t cfg;
	struct ev_loop *loop;
	upstream_set_t *ups;
	query_env_t *env;
	listener_udp_t **udp;
	listener_tcp_t **tcp;
	size_t nlisten;
	ev_signal sig_term, sig_int, sig_usr1, sig_hup;
	metrics_t *metrics;
	retired_t *retired;
	ev_timer retire_timer;
	upstream_stats_t ups_base;   /* counts of retired sets */
	ev_timer drain;
	ev_tstamp drain_started;
	int stopping;
} daemon_t;

static int bind_listeners(daemon_t *d)
{
	char err[256];

	d->udp = xcalloc(d->cfg.nlisten, sizeof(*d->udp));
	d->tcp = xcalloc(d->cfg.nlisten, sizeof(*d->tcp));
	for (size_t i = 0; i < d->cfg.nlisten; i++) {
		const config_listen_t *l = &d->cfg.listen[i];
		listener_udp_t *u = listener_udp_create(d->loop, l, d->env, err, sizeof(err));
		listener_tcp_t *t = u ? listener_tcp_create(d->loop, l, &d->cfg, d->env,
							   err, sizeof(err)) : NULL;
		if (!t) {
			listener_udp_destroy(u);
			if (!l->optional) {
				log_error("cannot listen on %s", err);
				return -1;
			}
			log_warn("not listening on %s", err);
			continue;
		}
		d->udp[d->nlisten] = u;
		d->tcp[d->nlisten] = t;
		d->nlisten++;
		log_info("listening on %s (udp, tcp)", l->text);
	}
	if (d->nlisten == 0) {
		log_error("no listener could be bound");
		return -1;
	}
	return 0;
}

static int drop_privileges(const char *user)
{
	struct passwd *pw = getpwnam(user);

	if (!pw) {
		log_error("--user %s: no such user", user);
		return -1;
	}
	if (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		log_error("--user %s: cannot switch: %s", user, strerror(errno));
		return -1;
	}
	return 0;
}

static int daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0) {
		log_error("fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0)
		_exit(0);
	setsid();
	if (chdir("/") < 0)
		return -1;
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	log_use_syslog("dotstub");
	return 0;
}

static int write_pidfile(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
		log_error("--pidfile %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static void add_stats(upstream_stats_t *to, const upstream_set_t *set)
{
	upstream_stats_t u;

	upstream_set_stats(set, &u);
	to->handshakes += u.handshakes;
	to->resumed += u.resumed;
	to->conn_failures += u.conn_failures;
	to->unmatched += u.unmatched;
}

/* The running set's counts, the retired sets' still alive, and those of
 * the sets freed already. */
static void gather_upstream_stats(daemon_t *d, upstream_stats_t *u)
{
	*u = d->ups_base;
	add_stats(u, d->ups);
	for (retired_t *r = d->retired; r; r = r->next)
		add_stats(u, r->ups);
}

static void log_stats(daemon_t *d)
{
	const query_stats_t *q = query_stats(d->env);
	upstream_stats_t u;

	gather_upstream_stats(d, &u);
	log_info("stats: queries %lu, answered %lu, servfail %lu, formerr %lu, "
		 "notimp %lu, dropped %lu, truncated %lu, resent %lu, cache hits %lu, open %zu; "
		 "upstream handshakes %lu, resumed %lu, failures %lu, unmatched %lu",
		 q->received, q->answered, q->servfail, q->formerr, q->notimp,
		 q->dropped, q->truncated, q->resent, q->cache_hits, query_inflight(d->env),
		 u.handshakes, u.resumed, u.conn_failures, u.unmatched);
}

/* The Prometheus text format: counters, then the answer-time histogram. */
static void render_metrics(void *arg, FILE *out)
{
	daemon_t *d = arg;
	const query_stats_t *q = query_stats(d->env);
	upstream_stats_t u;
	unsigned long cumulative = 0;

	gather_upstream_stats(d, &u);
	const struct { const char *name, *help; unsigned long v; } counters[] = {
		{ "queries_total", "Messages received from clients", q->received },
		{ "answers_total", "Upstream answers sent to clients", q->answered },
		{ "servfail_total", "SERVFAIL sent (no upstream, deadline)", q->servfail },
		{ "formerr_total", "FORMERR sent", q->formerr },
		{ "notimp_total", "NOTIMP sent", q->notimp },
		{ "dropped_total", "Client messages dropped (short, QR=1)", q->dropped },
		{ "truncated_total", "Answers truncated for UDP clients", q->truncated },
		{ "resent_total", "Queries resent to another connection", q->resent },
		{ "cache_hits_total", "Answers from the cache", q->cache_hits },
		{ "upstream_handshakes_total", "Full TLS handshakes", u.handshakes },
		{ "upstream_resumed_total", "Resumed TLS handshakes", u.resumed },
		{ "upstream_failures_total", "Upstream connection failures", u.conn_failures },
		{ "upstream_unmatched_total", "Answers dropped: unknown ID or question", u.unmatched },
	};

	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
		fprintf(out, "# HELP dotstub_%s %s.\n# TYPE dotstub_%s counter\n"
			"dotstub_%s %lu\n", counters[i].name, counters[i].help,
			counters[i].name, counters[i].name, counters[i].v);
	fprintf(out, "# HELP dotstub_queries_open Queries waiting for an answer.\n"
		"# TYPE dotstub_queries_open gauge\ndotstub_queries_open %zu\n",
		query_inflight(d->env));
	fprintf(out, "# HELP dotstub_answer_seconds Time from query to answer.\n"
		"# TYPE dotstub_answer_seconds histogram\n");
	for (size_t i = 0; i <= QUERY_LATENCY_BUCKETS; i++) {
		cumulative += q->latency[i];
		if (i < QUERY_LATENCY_BUCKETS)
			fprintf(out, "dotstub_answer_seconds_bucket{le=\"%g\"} %lu\n",
				query_latency_bounds[i], cumulative);
		else
			fprintf(out, "dotstub_answer_seconds_bucket{le=\"+Inf\"} %lu\n",
				cumulative);
	}
	fprintf(out, "dotstub_answer_seconds_sum %.6f\ndotstub_answer_seconds_count %lu\n",
		q->latency_sum, cumulative);
}

static void on_drain_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	daemon_t *d = w->data;

	(void)revents;
	if (query_inflight(d->env) == 0 ||
	    ev_now(loop) - d->drain_started >= DRAIN_SECONDS)
		ev_break(loop, EVBREAK_ALL);
}

/* TERM/INT: take no new queries, let open ones finish (bounded), exit. */
static void on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
	daemon_t *d = w->data;

	(void)revents;
	if (d->stopping++)
		return;
	sd_notify(0, "STOPPING=1");
	log_info("signal %d: stopping, %zu queries open", w->signum,
		 query_inflight(d->env));
	for (size_t i = 0; i < d->nlisten; i++) {
		listener_udp_stop(d->udp[i]);
		listener_tcp_stop(d->tcp[i]);
	}
	ev_timer_init(&d->drain, on_drain_tick, 0., 0.05);
	d->drain.data = d;
	d->drain_started = ev_now(loop);
	ev_timer_start(loop, &d->drain);
}

static void on_usr1(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)revents;
	log_stats(w->data);
}

/* Free a retired configuration, keeping its counts. */
static void free_retired(daemon_t *d, retired_t *r)
{
	add_stats(&d->ups_base, r->ups);
	upstream_set_destroy(r->ups);
	config_free(&r->cfg);
	free(r);
}

/* Free retired configurations whose queries are all done. */
static void reap_retired(daemon_t *d)
{
	retired_t **p = &d->retired;

	while (*p) {
		retired_t *r = *p;
		if (!upstream_set_idle(r->ups)) {
			p = &r->next;
			continue;
		}
		*p = r->next;
		free_retired(d, r);
	}
	if (!d->retired)
		ev_timer_stop(d->loop, &d->retire_timer);
}

static void on_retire_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	reap_retired(w->data);
}

static int same_listeners(const config_t *a, const config_t *b)
{
	if (a->nlisten != b->nlisten)
		return 0;
	for (size_t i = 0; i < a->nlisten; i++)
		if (strcmp(a->listen[i].text, b->listen[i].text) != 0)
			return 0;
	return 1;
}

/* SIGHUP: read the configuration again. Upstreams, pins, trust, timeouts
 * and limits change; the listeners, user and pidfile stay as bound. A
 * configuration that does not load changes nothing. */
static void reload(daemon_t *d)
{
	config_t cfg;
	char err[512];
	upstream_set_t *ups;
	retired_t *r;

	sd_notify(0, "RELOADING=1");
	if (config_from_args(&cfg, d->argc, d->argv, err, sizeof(err)) < 0) {
		log_error("reload: %s; keeping the running configuration", err);
		config_free(&cfg);
		goto out;
	}
	ups = upstream_set_create(d->loop, &cfg, err, sizeof(err));
	if (!ups) {
		log_error("reload: trust anchors: %s; keeping the running configuration", err);
		config_free(&cfg);
		goto out;
	}
	if (!same_listeners(&cfg, &d->cfg))
		log_warn("reload: listener changes take effect at the next start");
	/* The old set keeps the old configuration's upstreams alive. */
	r = xcalloc(1, sizeof(*r));
	r->cfg = d->cfg;
	r->ups = d->ups;
	r->next = d->retired;
	d->retired = r;
	/* Listeners and the query module keep pointing at d->cfg. */
	free(cfg.listen);
	cfg.listen = r->cfg.listen;
	cfg.nlisten = r->cfg.nlisten;
	r->cfg.listen = NULL;
	r->cfg.nlisten = 0;
	d->cfg = cfg;
	d->ups = ups;
	log_set_level((log_level_t)d->cfg.log_level);
	query_env_set_upstreams(d->env, ups);
	upstream_set_retire(r->ups);
	ev_timer_again(d->loop, &d->retire_timer);
	for (size_t i = 0; i < d->cfg.nupstreams; i++)
		log_info("reload: upstream %s%s", d->cfg.upstreams[i].text,
			 d->cfg.upstreams[i].npins ? " (pinned)" : "");
	log_info("reload: done");
out:
	sd_notify(0, "READY=1");
}

static void on_hup(struct ev_loop *loop, ev_signal *w, int revents)
{
	daemon_t *d = w->data;

	(void)loop;
	(void)revents;
	if (!d->stopping)
		reload(d);
}

static void watch_signals(daemon_t *d)
{
	signal(SIGPIPE, SIG_IGN);
	ev_signal_init(&d->sig_term, on_stop, SIGTERM);
	ev_signal_init(&d->sig_int, on_stop, SIGINT);
	ev_signal_init(&d->sig_usr1, on_usr1, SIGUSR1);
	ev_signal_init(&d->sig_hup, on_hup, SIGHUP);
	d->sig_term.data = d->sig_int.data = d->sig_usr1.data = d->sig_hup.data = d;
	ev_signal_start(d->loop, &d->sig_hup);
	ev_init(&d->retire_timer, on_retire_tick);
	d->retire_timer.repeat = 0.5;
	d->retire_timer.data = d;
	ev_signal_start(d->loop, &d->sig_term);
	ev_signal_start(d->loop, &d->sig_int);
	ev_signal_start(d->loop, &d->sig_usr1);
}

static void shutdown_daemon(daemon_t *d)
{
	if (d->env)
		log_stats(d);
	metrics_destroy(d->metrics);
	/* Queries may point into retired sets: they go first. */
	query_env_destroy(d->env);
	while (d->retired) {
		retired_t *r = d->retired;
		d->retired = r->next;
		free_retired(d, r);
	}
	for (size_t i = 0; i < d->nlisten; i++) {
		listener_tcp_destroy(d->tcp[i]);
		listener_udp_destroy(d->udp[i]);
	}
	free(d->udp);
	free(d->tcp);
	upstream_set_destroy(d->ups);
	if (d->loop)
		ev_loop_destroy(d->loop);
	/* After --user the directory may not be ours any more. */
	if (d->cfg.pidfile && unlink(d->cfg.pidfile) < 0)
		log_warn("cannot remove pidfile %s: %s", d->cfg.pidfile, strerror(errno));
}

static int run(daemon_t *d)
{
	char err[512];

	d->loop = ev_default_loop(EVFLAG_AUTO);
	d->ups = upstream_set_create(d->loop, &d->cfg, err, sizeof(err));
	if (!d->ups) {
		log_error("trust anchors: %s", err);
		return 1;
	}
	d->env = query_env_create(d->loop, &d->cfg, d->ups);
	if (bind_listeners(d) < 0)
		return 1;
	if (d->cfg.metrics) {
		d->metrics = metrics_create(d->loop, d->cfg.metrics, render_metrics, d,
					    err, sizeof(err));
		if (!d->metrics) {
			log_error("cannot serve metrics: %s", err);
			return 1;
		}
		log_info("metrics at http://%s/metrics", d->cfg.metrics);
	}
	if (d->cfg.daemonize) {
		if (daemonize() < 0)
			return 1;
		ev_loop_fork(d->loop);
	}
	if (d->cfg.pidfile && write_pidfile(d->cfg.pidfile) < 0)
		return 1;
	if (d->cfg.user && drop_privileges(d->cfg.user) < 0)
		return 1;
	watch_signals(d);
	for (size_t i = 0; i < d->cfg.nupstreams; i++)
		log_info("upstream %s%s", d->cfg.upstreams[i].text,
			 d->cfg.upstreams[i].npins ? " (pinned)" : "");
	log_info("dotstub ready");
	sd_notify(0, "READY=1");
	ev_run(d->loop, 0);
	log_info("stopped");
	return 0;
}

/* --check-config: everything run() would load, without binding. */
static int check_config(const config_t *cfg)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	char err[512];
	upstream_set_t *ups = upstream_set_create(loop, cfg, err, sizeof(err));

	if (ups)
		config_print(cfg, stdout);
	else
		log_error("trust anchors: %s", err);
	upstream_set_destroy(ups);
	ev_loop_destroy(loop);
	return ups ? 0 : 1;
}

int main(int argc, char **argv)
{
	daemon_t d;
	char err[512];
	int rc;

	memset(&d, 0, sizeof(d));
	d.argc = argc;
	d.argv = argv;
	if (config_from_args(&d.cfg, argc, argv, err, sizeof(err)) < 0) {
		log_error("%s", err);
		config_free(&d.cfg);
		return 1;
	}
	log_set_level((log_level_t)d.cfg.log_level);
	switch (d.cfg.mode) {
	case CONFIG_HELP:
		config_usage(stdout);
		rc = 0;
		break;
	case CONFIG_VERSION:
		printf("dotstub %s\n", PACKAGE_VERSION);
		rc = 0;
		break;
	case CONFIG_PROBE:
		rc = probe_run(&d.cfg, stdout);
		break;
	case CONFIG_CHECK:
		rc = check_config(&d.cfg);
		break;
	case CONFIG_RUN:
	default:
		rc = run(&d);
		shutdown_daemon(&d);
		break;
	}
	config_free(&d.cfg);
	return rc;
}
