/* sysclock: the clocks that are not the event loop's. libev's ev_now() is
 * wall-clock time (it jumps with NTP and with the user) and its timers run
 * on CLOCK_MONOTONIC (which stands still while the machine sleeps). What
 * must age across a suspend (cached answers) reads CLOCK_BOOTTIME here;
 * netwatch compares the two to see that the machine slept.
 *
 * Both are read through one clock_gettime-like function that tests may
 * replace, so that a suspend of an hour takes no time in a unit test. */
#ifndef DOTSTUB_SYSCLOCK_H
#define DOTSTUB_SYSCLOCK_H

#include <time.h>

/* Seconds on CLOCK_BOOTTIME: monotonic, and it counts time asleep. */
double sysclock_boot(void);
/* Seconds on CLOCK_MONOTONIC: monotonic, time asleep not counted. */
double sysclock_mono(void);

typedef int (*sysclock_source_t)(clockid_t id, struct timespec *ts);
/* Tests only: read the clocks through fn from now on (NULL: the real
 * clock_gettime). Set it before any thread runs; it is not synchronized. */
void sysclock_set_source(sysclock_source_t fn);

#endif
