/* hopfloor: what one process hop costs on this machine, to read the
 * lowload numbers against.
 *
 *   hopfloor echo PORT            answer every UDP datagram at once (QR set)
 *   hopfloor relay PORT UPPORT    pass datagrams to 127.0.0.1@UPPORT and the
 *                                 answers back (by DNS ID), nothing else
 *
 * The relay does what any forwarder must at the least: sleep in epoll, wake
 * for a datagram, send it on, sleep, wake for the answer, send it back. No
 * TLS, no parsing, no allocation. dnsperf against the echo, then through
 * the relay: the difference is the floor of "latency added" for a forwarder
 * in a process of its own. Loopback only. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

static int bound_socket(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("hopfloor: bind");
		exit(1);
	}
	return fd;
}

static void echo(int port)
{
	int fd = bound_socket(port);
	unsigned char buf[4096];

	for (;;) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n < 12)
			continue;
		buf[2] |= 0x80;
		sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
	}
}

static int relay(int port, int upport)
{
	static struct sockaddr_in client[65536];   /* by DNS ID */
	struct sockaddr_in up = { .sin_family = AF_INET, .sin_port = htons(upport) };
	int cfd = bound_socket(port), ufd = socket(AF_INET, SOCK_DGRAM, 0);
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN };
	unsigned char buf[4096];

	inet_pton(AF_INET, "127.0.0.1", &up.sin_addr);
	if (ufd < 0 || ep < 0 || connect(ufd, (struct sockaddr *)&up, sizeof(up)) < 0) {
		perror("hopfloor: relay");
		return 1;
	}
	ev.data.fd = cfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev);
	ev.data.fd = ufd;
	epoll_ctl(ep, EPOLL_CTL_ADD, ufd, &ev);
	for (;;) {
		struct epoll_event evs[2];
		int n = epoll_wait(ep, evs, 2, -1);
		for (int i = 0; i < n; i++) {
			ssize_t m;
			if (evs[i].data.fd == cfd) {
				struct sockaddr_in from;
				socklen_t fl = sizeof(from);
				m = recvfrom(cfd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
				if (m >= 12) {
					client[buf[0] << 8 | buf[1]] = from;
					send(ufd, buf, (size_t)m, 0);
				}
			} else {
				m = recv(ufd, buf, sizeof(buf), MSG_DONTWAIT);
				if (m >= 12)
					sendto(cfd, buf, (size_t)m, 0,
					       (struct sockaddr *)&client[buf[0] << 8 | buf[1]],
					       sizeof(client[0]));
			}
		}
	}
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "echo") == 0)
		echo(atoi(argv[2]));
	if (argc == 4 && strcmp(argv[1], "relay") == 0)
		return relay(atoi(argv[2]), atoi(argv[3]));
	fprintf(stderr, "usage: hopfloor echo PORT | hopfloor relay PORT UPPORT\n");
	return 2;
}
