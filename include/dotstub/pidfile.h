/* pidfile: the PID file, written as root into a directory that another
 * (hostile) local user may own, and removed at exit after --user. */
#ifndef DOTSTUB_PIDFILE_H
#define DOTSTUB_PIDFILE_H

#include <stddef.h>
#include <sys/types.h>

typedef struct pidfile pidfile_t;

/* Create the pidfile at path, mode 0644 whatever the umask, owned by the
 * caller. A path that exists and is not a regular file (a symbolic link, a
 * directory, a FIFO, ...) is refused; a regular file there (a stale
 * pidfile, or a hard link to some other file) is unlinked and a new file
 * made, so nothing that was there is ever written. Only the last component
 * is checked: the directories above it must be trusted. The directory stays
 * open, so that pidfile_remove() needs no path lookup (after --user the
 * path above it may be closed to the run user). Returns NULL with err
 * ("pidfile PATH: cause"). */
pidfile_t *pidfile_create(const char *path, char *err, size_t errlen);

/* Write pid and close the file (after fork, so the daemon's own PID).
 * Returns 0, or -1 with err. */
int pidfile_write(pidfile_t *pf, pid_t pid, char *err, size_t errlen);

/* Remove the file if it is still the one created (not a file someone put
 * there since), and free pf. Removing needs write permission on the
 * directory (after --user: the run user's); a failure is logged as a
 * warning naming the path. pf may be NULL. */
void pidfile_remove(pidfile_t *pf);

#endif
