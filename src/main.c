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
#include <sys/resource.h>
#include <unistd.h>

#include "dotstub/acl.h"
#include "dotstub/config.h"
#include "dotstub/dnstap.h"
#include "dotstub/log.h"
#include "dotstub/metrics.h"
#include "dotstub/notify.h"
#include "dotstub/pidfile.h"
#include "dotstub/probe.h"
#include "dotstub/query.h"
#include "dotstub/stats.h"
#include "dotstub/tls.h"
#include "dotstub/upstream.h"
#include "dotstub/worker.h"
#include "dotstub/xmalloc.h"

/* How long a shutdown waits for queries in flight. */
#define DRAIN_SECONDS 2.0

typedef struct {
	int argc;
	char **argv;     /* to read the configuration again on SIGHUP */
	shared_config_t *sc;   /* the running configuration */
	struct ev_loop *loop;
	worker_t **workers;    /* [0] runs on loop; the rest in threads */
	unsigned nworkers;
	ev_signal sig_term, sig_int, sig_usr1, sig_usr2, sig_hup;
	metrics_t *metrics;
	dnstap_t *dnstap;      /* NULL: off */
	pidfile_t *pidfile;    /* created as root, removed at exit */
	ev_timer drain;
	ev_tstamp drain_started;
	int stopping;
} daemon_t;

/* Every worker binds its sockets now, while we may still be root. */
static int create_workers(daemon_t *d)
{
	char err[512];
	unsigned n = d->sc->cfg.threads ? d->sc->cfg.threads : 1;

	d->workers = xcalloc(n, sizeof(*d->workers));
	for (unsigned i = 0; i < n; i++) {
		d->workers[i] = worker_create(i == 0 ? d->loop : NULL, d->sc, i, n,
					      err, sizeof(err));
		if (!d->workers[i]) {
			log_error("%s", err);
			return -1;
		}
		d->nworkers++;
	}
	return 0;
}

/* dnstap's writer thread starts after the fork (threads do not survive it)
 * and before privileges go (the file may be root's); a queue per worker. */
static int open_dnstap(daemon_t *d)
{
	char err[512];
	const char *target = d->sc->cfg.dnstap;

	if (!target)
		return 0;
	d->dnstap = dnstap_create(target, d->nworkers, err, sizeof(err));
	if (!d->dnstap) {
		log_error("%s", err);
		return -1;
	}
	for (unsigned i = 0; i < d->nworkers; i++)
		worker_set_dnstap(d->workers[i], dnstap_queue(d->dnstap, i));
	log_info("dnstap to %s", target);
	return 0;
}

/* After the workers stopped: what is queued is written. */
static void close_dnstap(daemon_t *d)
{
	unsigned long dropped = dnstap_dropped(d->dnstap);

	if (dropped)
		log_warn("dnstap: %lu messages dropped (the writer fell behind, or had nowhere to write)",
			 dropped);
	if (dnstap_destroy(d->dnstap) < 0)
		log_warn("dnstap %s: the writer is stuck (a collector not reading?); "
			 "what it still held is lost", d->sc->cfg.dnstap);
	d->dnstap = NULL;
}

static int start_threads(daemon_t *d)
{
	char err[256];

	for (unsigned i = 1; i < d->nworkers; i++)
		if (worker_start(d->workers[i], err, sizeof(err)) < 0) {
			log_error("%s", err);
			return -1;
		}
	if (d->nworkers > 1)
		log_info("%u threads", d->nworkers);
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

/* The threads' counts, added up, into s (cleared first). */
static void total_stats(daemon_t *d, stats_snapshot_t *s)
{
	stats_snapshot_clear(s);
	for (unsigned i = 0; i < d->nworkers; i++)
		worker_stats(d->workers[i], s);
}

/* "stats: queries 3, answered 3, ..." */
static void log_stats(daemon_t *d)
{
	stats_snapshot_t *s = stats_snapshot_new();
	char line[1024];

	total_stats(d, s);
	stats_log_line(s, line, sizeof(line));
	log_info("stats: %s", line);
	stats_snapshot_free(s);
}

static void render_metrics(void *arg, FILE *out)
{
	daemon_t *d = arg;
	stats_snapshot_t *s = stats_snapshot_new();

	total_stats(d, s);
	stats_render(s, out);
	stats_snapshot_free(s);
}

static size_t open_queries(daemon_t *d)
{
	stats_snapshot_t *s = stats_snapshot_new();
	size_t n;

	total_stats(d, s);
	n = (size_t)stats_global_value(s, SG_OPEN);
	stats_snapshot_free(s);
	return n;
}

/* Every worker drained (each bounds its own wait), or past the bound. */
static void on_drain_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	daemon_t *d = w->data;
	unsigned done = 0;

	(void)revents;
	for (unsigned i = 0; i < d->nworkers; i++)
		done += worker_done(d->workers[i]) != 0;
	if (done == d->nworkers ||
	    ev_now(loop) - d->drain_started >= DRAIN_SECONDS + 0.5)
		ev_break(loop, EVBREAK_ALL);
}

/* TERM/INT: take no new queries, let open ones finish (bounded), exit. */
static void on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
	daemon_t *d = w->data;

	(void)revents;
	if (d->stopping++)
		return;
	notify_service_manager("STOPPING=1");
	log_info("signal %d: stopping, %zu queries open", w->signum,
		 open_queries(d));
	for (unsigned i = 0; i < d->nworkers; i++)
		worker_stop(d->workers[i], DRAIN_SECONDS);
	ev_timer_init(&d->drain, on_drain_tick, 0.01, 0.02);
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

/* USR2: empty every thread's cache (resolvectl flush-caches). */
static void on_usr2(struct ev_loop *loop, ev_signal *w, int revents)
{
	daemon_t *d = w->data;

	(void)loop;
	(void)revents;
	log_info("signal %d: flushing the cache", w->signum);
	for (unsigned i = 0; i < d->nworkers; i++)
		worker_flush_cache(d->workers[i]);
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

/* Descriptors besides the TCP clients: stdio; per thread its loop's own
 * (epoll, async, signals), a UDP and a TCP socket per listener and the
 * upstream and forward pools (twice: a reload keeps the old pools until
 * their queries end); the metrics listener, MHD's epoll and the clients;
 * a margin for syslog, trust stores read on reload and the like. */
static unsigned long fds_besides_clients(const config_t *cfg)
{
	unsigned long threads = cfg->threads ? cfg->threads : 1;
	unsigned long per_thread = 4 + 2 * cfg->nlisten +
				   2 * cfg->nupstreams * cfg->pool_size;

	/* Forward groups: a DoT group's pools; a plain one's UDP socket and
	 * TCP connection per server, for UDP and for TCP clients. */
	for (size_t i = 0; i < cfg->nforwards; i++)
		per_thread += 2 * cfg->forwards[i].nupstreams *
			      (cfg->forwards[i].plaintext ? 3 : cfg->pool_size);

	return 3 + 8 + threads * per_thread +
	       (cfg->metrics ? 2 + METRICS_MAX_CLIENTS : 0);
}

/* Raise the soft open-file limit (up to the hard one) so that every
 * listener of every thread can hold max-tcp-clients; when even the hard
 * limit is too low, lower max-tcp-clients to what fits, and say so. (With
 * ulimit -n 32 and 40 idle clients, accept() failed with EMFILE over and
 * over, and a full table could not make room for a new client.) */
static void fit_fd_limit(config_t *cfg)
{
	unsigned long lanes = (cfg->threads ? cfg->threads : 1) *
			      (cfg->nlisten ? cfg->nlisten : 1);
	unsigned long besides = fds_besides_clients(cfg);
	unsigned long need = besides + lanes * cfg->max_tcp_clients, fit;
	struct rlimit rl, want;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= need)
		return;
	want = rl;
	want.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ?
			need : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &want) == 0)
		rl = want;
	else
		log_warn("cannot raise the open-file limit: %s", strerror(errno));
	if (rl.rlim_cur >= need) {
		log_info("open-file limit raised to %lu", (unsigned long)rl.rlim_cur);
		return;
	}
	fit = rl.rlim_cur > besides ? (rl.rlim_cur - besides) / lanes : 0;
	if (fit < 1)
		fit = 1;
	log_warn("open-file limit %lu (hard %lu) is too low for max-tcp-clients = %u "
		 "on %lu listening socket(s) (listeners x threads), which needs %lu: "
		 "max-tcp-clients lowered to %lu; raise LimitNOFILE= or ulimit -n",
		 (unsigned long)rl.rlim_cur, (unsigned long)rl.rlim_max,
		 cfg->max_tcp_clients, lanes, need, fit);
	cfg->max_tcp_clients = (unsigned)fit;
}

/* Without an allow line only loopback clients are answered: a listener or
 * metrics address beyond loopback then serves nobody new, which is safe
 * but surely not what was meant. With one, a metrics address beyond
 * loopback sends the page (the upstreams, their health and certificates'
 * expiry) over plain HTTP to every client the line allows. Say so, naming
 * the address. */
static void warn_beyond_loopback(const config_t *cfg)
{
	struct sockaddr_storage ss;
	socklen_t len;

	for (size_t i = 0; !cfg->allow && i < cfg->nlisten; i++)
		if (!acl_is_loopback(&cfg->listen[i].addr))
			log_warn("listener %s is not on loopback and there is no "
				 "allow line: only loopback clients will be answered "
				 "(allow = CIDR, or --allow, for the others)",
				 cfg->listen[i].text);
	if (!cfg->metrics || config_parse_addr(cfg->metrics, 0, &ss, &len) < 0 ||
	    acl_is_loopback(&ss))
		return;
	if (cfg->allow)
		log_warn("metrics %s is not on loopback: the page goes over plain "
			 "HTTP, unauthenticated, to every client the allow line "
			 "allows", cfg->metrics);
	else
		log_warn("metrics %s is not on loopback and there is no allow "
			 "line: only loopback clients will be served", cfg->metrics);
}

/* What run() would refuse: a file that does not parse, trust anchors
 * that do not load. Returns 0, or -1 with err. */
static int validate(const config_t *cfg, char *err, size_t errlen)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	upstream_set_t *ups = upstream_set_create(loop, cfg, err, errlen);
	forward_set_t *fwd = ups ? forward_set_create(loop, cfg, err, errlen) : NULL;

	forward_set_destroy(fwd);
	upstream_set_destroy(ups);
	ev_loop_destroy(loop);
	return fwd ? 0 : -1;
}

/* SIGHUP: read the configuration again. Upstreams, pins, trust, timeouts,
 * limits, the allow list and the cache's size and bounds change (the
 * cached answers stay, unless the upstreams changed); the listeners,
 * threads, user and pidfile stay as started. A configuration that does
 * not load changes nothing. */
static void reload(daemon_t *d)
{
	config_t cfg;
	char err[512];
	shared_config_t *sc;

	notify_service_manager("RELOADING=1");
	if (config_from_args(&cfg, d->argc, d->argv, err, sizeof(err)) < 0) {
		log_error("reload: %s; keeping the running configuration", err);
		config_free(&cfg);
		goto out;
	}
	if (validate(&cfg, err, sizeof(err)) < 0) {
		log_error("reload: trust anchors: %s; keeping the running configuration", err);
		config_free(&cfg);
		goto out;
	}
	if (!same_listeners(&cfg, &d->sc->cfg))
		log_warn("reload: listener changes take effect at the next start");
	if ((cfg.threads ? cfg.threads : 1) != d->nworkers)
		log_warn("reload: threads = %u needs a restart; still running %u",
			 cfg.threads, d->nworkers);
	if (strcmp(cfg.dnstap ? cfg.dnstap : "", d->sc->cfg.dnstap ? d->sc->cfg.dnstap : ""))
		log_warn("reload: a dnstap change takes effect at the next start");
	fit_fd_limit(&cfg);
	warn_beyond_loopback(&cfg);
	forward_warn_plaintext(&cfg);
	sc = shared_config_new(&cfg);
	for (unsigned i = 0; i < d->nworkers; i++)
		worker_reload(d->workers[i], sc);
	metrics_set_allow(d->metrics, sc->cfg.allow);
	shared_config_release(d->sc);
	d->sc = sc;
	log_set_level((log_level_t)sc->cfg.log_level);
	tls_clock_floor(sc->cfg.clock_floor);
	for (size_t i = 0; i < sc->cfg.nupstreams; i++)
		log_info("reload: upstream %s%s", sc->cfg.upstreams[i].text,
			 sc->cfg.upstreams[i].npins ? " (pinned)" : "");
	log_info("reload: done");
out:
	notify_service_manager("READY=1");
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
	ev_signal_init(&d->sig_usr2, on_usr2, SIGUSR2);
	ev_signal_init(&d->sig_hup, on_hup, SIGHUP);
	d->sig_term.data = d->sig_int.data = d->sig_usr1.data = d->sig_hup.data = d;
	d->sig_usr2.data = d;
	ev_signal_start(d->loop, &d->sig_hup);
	ev_signal_start(d->loop, &d->sig_term);
	ev_signal_start(d->loop, &d->sig_int);
	ev_signal_start(d->loop, &d->sig_usr1);
	ev_signal_start(d->loop, &d->sig_usr2);
}

static void shutdown_daemon(daemon_t *d)
{
	for (unsigned i = 0; i < d->nworkers; i++)
		worker_join(d->workers[i]);
	if (d->nworkers)
		log_stats(d);
	close_dnstap(d);
	metrics_destroy(d->metrics);
	for (unsigned i = d->nworkers; i-- > 0;)
		worker_destroy(d->workers[i]);
	free(d->workers);
	ev_signal_stop(d->loop, &d->sig_hup);
	ev_signal_stop(d->loop, &d->sig_term);
	ev_signal_stop(d->loop, &d->sig_int);
	ev_signal_stop(d->loop, &d->sig_usr1);
	ev_signal_stop(d->loop, &d->sig_usr2);
	ev_timer_stop(d->loop, &d->drain);
	pidfile_remove(d->pidfile);
	d->pidfile = NULL;
	ev_loop_destroy(d->loop);
}

static int serve_metrics(daemon_t *d)
{
	char err[512];
	const char *addr = d->sc->cfg.metrics;

	if (!addr)
		return 0;
	d->metrics = metrics_create(d->loop, addr, d->sc->cfg.allow,
				    render_metrics, d, err, sizeof(err));
	if (!d->metrics) {
		log_error("cannot serve metrics: %s", err);
		return -1;
	}
	log_info("metrics at http://%s/metrics", addr);
	return 0;
}

/* The pidfile is created before the fork, so that a refused one is an
 * error on stderr and exit status 1; the PID is the child's. */
static int create_pidfile(daemon_t *d)
{
	char err[512];

	if (!d->sc->cfg.pidfile)
		return 0;
	d->pidfile = pidfile_create(d->sc->cfg.pidfile, err, sizeof(err));
	if (!d->pidfile)
		log_error("%s", err);
	return d->pidfile ? 0 : -1;
}

static int write_pidfile(daemon_t *d)
{
	char err[512];

	if (d->pidfile && pidfile_write(d->pidfile, getpid(), err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	return 0;
}

/* Start-up in order: sockets and pidfile (as root), fork, the PID,
 * privileges, then the threads (after fork and setuid, which concern the
 * whole process). */
static int run(daemon_t *d)
{
	const config_t *cfg = &d->sc->cfg;

	d->loop = ev_default_loop(EVFLAG_AUTO);
	warn_beyond_loopback(cfg);
	forward_warn_plaintext(cfg);
	if (create_workers(d) < 0 || serve_metrics(d) < 0 || create_pidfile(d) < 0)
		return 1;
	if (cfg->daemonize) {
		if (daemonize() < 0)
			return 1;
		ev_loop_fork(d->loop);
		for (unsigned i = 0; i < d->nworkers; i++)
			worker_after_fork(d->workers[i]);
	}
	if (write_pidfile(d) < 0 || open_dnstap(d) < 0)
		return 1;
	if (cfg->user && drop_privileges(cfg->user) < 0)
		return 1;
	if (start_threads(d) < 0)
		return 1;
	watch_signals(d);
	for (size_t i = 0; i < cfg->nupstreams; i++)
		log_info("upstream %s%s", cfg->upstreams[i].text,
			 cfg->upstreams[i].npins ? " (pinned)" : "");
	log_info("dotstub ready");
	notify_service_manager("READY=1");
	ev_run(d->loop, 0);
	log_info("stopped");
	return 0;
}

/* --check-config: everything run() would load, without binding. */
static int check_config(const config_t *cfg)
{
	char err[512];

	if (validate(cfg, err, sizeof(err)) < 0) {
		log_error("trust anchors: %s", err);
		return 1;
	}
	if (cfg->dnstap && !dnstap_built_in()) {
		log_error("dnstap %s: this dotstub was built without dnstap", cfg->dnstap);
		return 1;
	}
	warn_beyond_loopback(cfg);
	forward_warn_plaintext(cfg);
	config_print(cfg, stdout);
	return 0;
}

/* The build time is the clock's floor (clock-floor): users and tests
 * need to know it. */
static void print_version(void)
{
	time_t t = tls_clock_build_time();
	char built[40];

	strftime(built, sizeof(built), "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
	printf("dotstub %s\nbuilt %s (%lld)\n", PACKAGE_VERSION, built, (long long)t);
}

int main(int argc, char **argv)
{
	daemon_t d;
	config_t cfg;
	char err[512];
	int rc;

	memset(&d, 0, sizeof(d));
	d.argc = argc;
	d.argv = argv;
	if (config_from_args(&cfg, argc, argv, err, sizeof(err)) < 0) {
		log_error("%s", err);
		config_free(&cfg);
		return 1;
	}
	log_set_level((log_level_t)cfg.log_level);
	switch (cfg.mode) {
	case CONFIG_HELP:
		config_usage(stdout);
		rc = 0;
		break;
	case CONFIG_VERSION:
		print_version();
		rc = 0;
		break;
	case CONFIG_PROBE:
		tls_clock_floor(cfg.clock_floor);
		rc = probe_run(&cfg, stdout);
		break;
	case CONFIG_CHECK:
		rc = check_config(&cfg);
		break;
	case CONFIG_RUN:
	default:
		fit_fd_limit(&cfg);
		tls_clock_floor(cfg.clock_floor);
		d.sc = shared_config_new(&cfg);
		rc = run(&d);
		shutdown_daemon(&d);
		shared_config_release(d.sc);
		break;
	}
	config_free(&cfg);
	return rc;
}
