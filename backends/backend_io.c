/* backend_io.c - file helpers shared by the local and cache backends. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/backend_int.h"

int backend_pread_all(int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done,
				  (off_t)(off + done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	return 0;
}

int backend_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		/* Linux writes at most about 2 GiB per call. */
		size_t chunk = len < (1u << 30) ? len : (1u << 30);
		ssize_t n = write(fd, p, chunk);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int backend_mkdirs(const char *dir, bool sync)
{
	char *path = strdup(dir), *c;
	int rc = 0;

	if (!path)
		return -ENOMEM;
	for (c = path + 1;; c++) {
		bool last = *c == '\0';

		if (*c != '/' && !last)
			continue;
		*c = '\0';
		if (mkdir(path, 0777) == 0) {
			char *up = strrchr(path, '/');
			int fd;

			if (sync) {
				if (up)
					*up = '\0';
				fd = open(!up	       ? "."
					  : up == path ? "/"
						       : path,
					  O_RDONLY | O_DIRECTORY | O_CLOEXEC);
				if (up)
					*up = '/';
				if (fd < 0 || fsync(fd) < 0)
					rc = -errno;
				if (fd >= 0)
					close(fd);
				if (rc)
					break;
			}
		} else if (errno != EEXIST) {
			rc = -errno;
			break;
		}
		if (last)
			break;
		*c = '/';
	}
	free(path);
	return rc;
}
