/* notify: the systemd readiness protocol (sd_notify(3)): one datagram with
 * "READY=1" and the like to the socket that $NOTIFY_SOCKET names. Our own
 * twenty lines rather than libsystemd, which brought six more libraries
 * and a megabyte of resident memory for this one datagram. */
#ifndef DOTSTUB_NOTIFY_H
#define DOTSTUB_NOTIFY_H

/* Send state ("READY=1"). Returns 1 when sent, 0 when not started by a
 * service manager (no $NOTIFY_SOCKET), or a negative errno. */
int notify_service_manager(const char *state);

#endif
