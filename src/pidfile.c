#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dotstub/log.h"
#include "dotstub/pidfile.h"
#include "dotstub/xmalloc.h"

struct pidfile {
	char *path;      /* as given, for messages */
	char *name;      /* the last component */
	int dirfd;       /* the directory it is in (O_PATH) */
	int fd;          /* until the PID is written */
	dev_t dev;       /* the file created: remove only that one */
	ino_t ino;
};

static const char *kind(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFLNK: return "a symbolic link";
	case S_IFDIR: return "a directory";
	case S_IFIFO: return "a FIFO";
	case S_IFSOCK: return "a socket";
	case S_IFCHR:
	case S_IFBLK: return "a device";
	default: return "not a regular file";
	}
}

/* The directory part opened, the last component kept. */
static int open_dir(pidfile_t *pf, char *err, size_t errlen)
{
	const char *slash = strrchr(pf->path, '/');
	size_t dlen = !slash ? 1 : slash == pf->path ? 1 : (size_t)(slash - pf->path);
	char *dir = xmalloc(dlen + 1);

	memcpy(dir, slash ? pf->path : ".", dlen);
	dir[dlen] = '\0';
	pf->name = xstrdup(slash ? slash + 1 : pf->path);
	if (!pf->name[0] || strcmp(pf->name, ".") == 0 || strcmp(pf->name, "..") == 0) {
		snprintf(err, errlen, "pidfile %s: not a file name", pf->path);
		free(dir);
		return -1;
	}
	pf->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (pf->dirfd < 0)
		snprintf(err, errlen, "pidfile %s: directory %s: %s", pf->path,
			 dir, strerror(errno));
	free(dir);
	return pf->dirfd < 0 ? -1 : 0;
}

/* Whatever is at the name must go before a new file is made: a regular
 * file is unlinked (never opened: it may be a hard link to a file that
 * is not ours), anything else refused (opening a FIFO would block, a
 * symbolic link would lead anywhere). */
static int clear_name(pidfile_t *pf, char *err, size_t errlen)
{
	struct stat st;

	if (fstatat(pf->dirfd, pf->name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "pidfile %s: %s", pf->path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "pidfile %s: exists and is %s, not a regular "
			 "file: refusing to use it", pf->path, kind(st.st_mode));
		return -1;
	}
	if (unlinkat(pf->dirfd, pf->name, 0) < 0) {
		snprintf(err, errlen, "pidfile %s: cannot replace the old one: %s",
			 pf->path, strerror(errno));
		return -1;
	}
	return 0;
}

/* O_EXCL: a name someone put there again since clear_name() is refused,
 * not followed. */
static int create_file(pidfile_t *pf, char *err, size_t errlen)
{
	struct stat st;

	pf->fd = openat(pf->dirfd, pf->name,
			O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (pf->fd < 0) {
		snprintf(err, errlen, "pidfile %s: %s", pf->path, strerror(errno));
		return -1;
	}
	if (fchmod(pf->fd, 0644) < 0 || fstat(pf->fd, &st) < 0) {
		snprintf(err, errlen, "pidfile %s: %s", pf->path, strerror(errno));
		unlinkat(pf->dirfd, pf->name, 0);
		return -1;
	}
	pf->dev = st.st_dev;
	pf->ino = st.st_ino;
	return 0;
}

static void pidfile_free(pidfile_t *pf)
{
	if (pf->fd >= 0)
		close(pf->fd);
	if (pf->dirfd >= 0)
		close(pf->dirfd);
	free(pf->name);
	free(pf->path);
	free(pf);
}

pidfile_t *pidfile_create(const char *path, char *err, size_t errlen)
{
	pidfile_t *pf = xcalloc(1, sizeof(*pf));

	pf->path = xstrdup(path);
	pf->dirfd = pf->fd = -1;
	if (open_dir(pf, err, errlen) < 0 || clear_name(pf, err, errlen) < 0 ||
	    create_file(pf, err, errlen) < 0) {
		pidfile_free(pf);
		return NULL;
	}
	return pf;
}

int pidfile_write(pidfile_t *pf, pid_t pid, char *err, size_t errlen)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "%ld\n", (long)pid);
	ssize_t w = write(pf->fd, line, (size_t)n);
	int e = w == n ? 0 : w < 0 ? errno : EIO;  /* short: a full disk */

	if (close(pf->fd) < 0 && !e)
		e = errno;
	pf->fd = -1;
	if (e) {
		snprintf(err, errlen, "pidfile %s: %s", pf->path, strerror(e));
		return -1;
	}
	return 0;
}

void pidfile_remove(pidfile_t *pf)
{
	struct stat st;

	if (!pf)
		return;
	if (fstatat(pf->dirfd, pf->name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT)
			log_warn("cannot remove pidfile %s: %s", pf->path, strerror(errno));
	} else if (st.st_dev == pf->dev && st.st_ino == pf->ino) {
		if (unlinkat(pf->dirfd, pf->name, 0) < 0)
			log_warn("cannot remove pidfile %s: %s (the directory must be "
				 "writable by the user dotstub runs as)", pf->path,
				 strerror(errno));
	}
	pidfile_free(pf);
}
