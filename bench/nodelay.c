/* nodelay.so: LD_PRELOAD shim for the benchmark's upstream unbound only.
 *
 * unbound 1.17 does not set TCP_NODELAY on its DNS-over-TLS sockets (it has
 * http-nodelay for DoH only). With TLS 1.3 it writes two session tickets
 * right after the handshake; Nagle then holds the first answer until the
 * client ACKs the tickets, which a delayed ACK makes 40 ms later, and the same
 * stall hits any answer written while an earlier one is unacknowledged. Real
 * DoT services do not behave like that, and it would swamp every latency
 * figure, so the benchmark sets TCP_NODELAY on every accepted socket.
 * (On a non-TCP socket setsockopt just fails, harmlessly.) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static int nodelay(int fd)
{
    int one = 1;

    if (fd >= 0)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int accept(int s, struct sockaddr *a, socklen_t *l)
{
    int (*real)(int, struct sockaddr *, socklen_t *) =
        (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");

    return nodelay(real(s, a, l));
}

int accept4(int s, struct sockaddr *a, socklen_t *l, int flags)
{
    int (*real)(int, struct sockaddr *, socklen_t *, int) =
        (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");

    return nodelay(real(s, a, l, flags));
}
