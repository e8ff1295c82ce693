/* acceptor: the accept loop of a listening TCP socket (client listeners,
 * the metrics endpoint). When accept() fails for want of descriptors or
 * memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) the level-triggered watcher
 * would call it again at once, forever: the acceptor pauses instead and
 * tries again a little later, or as soon as its owner frees a descriptor.
 * Failures are logged at most once a second, with a count of the others. */
#ifndef DOTSTUB_ACCEPTOR_H
#define DOTSTUB_ACCEPTOR_H

#include <ev.h>
#include <sys/socket.h>

typedef struct acceptor acceptor_t;

/* A new connection: non-blocking, close-on-exec, owned by the callee. */
typedef void (*acceptor_fn)(void *arg, int fd,
			    const struct sockaddr_storage *addr,
			    socklen_t addrlen);

/* Start accepting on fd (listening, non-blocking; it stays the caller's).
 * name is for the log ("listener 127.0.0.1@53"). Never NULL. */
acceptor_t *acceptor_create(struct ev_loop *loop, int fd, const char *name,
			    acceptor_fn fn, void *arg);
/* The owner freed a descriptor: when paused, try again now. */
void acceptor_kick(acceptor_t *a);
/* Stop accepting and free the acceptor (NULL is fine). */
void acceptor_destroy(acceptor_t *a);

#endif
