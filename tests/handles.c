/* handles.c - checks that a file handle still opens a file after the kernel forgot it. */
/*
 * Usage: handles [-n] PATH
 *        handles -s FILE PATH
 *        handles [-n] -l FILE PATH
 *
 * The first form reads PATH, encodes it with name_to_handle_at(), drops
 * the dentry and inode caches (echo 2 > /proc/sys/vm/drop_caches; -n skips
 * this), then opens the handle with open_by_handle_at() relative to the
 * root of PATH's mount and compares what it sees with what PATH shows: the
 * same st_ino and file type, and the same bytes for a file or the same
 * names for a directory.  That is what an NFS server (nfs-ganesha
 * FSAL_VFS, knfsd) does with a file handle a client kept across a cache
 * drop.  -s saves PATH's handle in FILE instead; -l opens the handle saved
 * in FILE and compares it with PATH, which may be another name by then
 * (after mv, the handle a client holds must still reach the file).
 *
 * Exits 0 if everything matches, 1 naming the failing step otherwise,
 * 2 on bad usage.  Needs CAP_DAC_READ_SEARCH (open_by_handle_at) and
 * root (drop_caches).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One directory listing: names sorted, owned by the struct. */
struct handles_names {
	char **v;
	size_t n;
};

static int handles_fail(const char *step, const char *path, int err)
{
	fprintf(stderr, "handles: %s(%s): %s\n", step, path, strerror(err));
	return 1;
}

/* Reads all of fd into *out (caller frees); returns 0 or -errno. */
static int handles_read_all(int fd, char **out, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t r;

		if (n == cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			free(buf);
			return (int)r;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*out = buf;
	*len = n;
	return 0;
}

static int handles_cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void handles_names_free(struct handles_names *names)
{
	for (size_t i = 0; i < names->n; i++)
		free(names->v[i]);
	free(names->v);
	names->v = NULL;
	names->n = 0;
}

/* Lists the directory open on fd (takes fd) into *names; returns 0 or -errno. */
static int handles_list(int fd, struct handles_names *names)
{
	size_t cap = 0;
	struct dirent *de;
	DIR *d = fdopendir(fd);
	int rc = 0;

	names->v = NULL;
	names->n = 0;
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (names->n == cap) {
			char **nv;

			cap = cap ? cap * 2 : 64;
			nv = realloc(names->v, cap * sizeof(*nv));
			if (!nv) {
				rc = -ENOMEM;
				goto out_free;
			}
			names->v = nv;
		}
		names->v[names->n] = strdup(de->d_name);
		if (!names->v[names->n]) {
			rc = -ENOMEM;
			goto out_free;
		}
		names->n++;
		errno = 0;
	}
	if (errno) {
		rc = -errno;
		goto out_free;
	}
	closedir(d);
	if (names->n)
		qsort(names->v, names->n, sizeof(*names->v), handles_cmp_name);
	return 0;

out_free:
	handles_names_free(names);
	closedir(d);
	return rc;
}

/*
 * Opens the root of the mount with id mount_id (from /proc/self/mountinfo).
 * Opening the root rather than PATH or its parent keeps every other dentry
 * of the mount unpinned, so the cache drop can really evict PATH.
 * Returns an fd or -errno.
 */
static int handles_open_mount(int mount_id)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char *line = NULL;
	size_t cap = 0;
	int fd = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char mnt[4096], dec[4096];
		int id, i = 0, j = 0;

		if (sscanf(line, "%d %*d %*s %*s %4095s", &id, mnt) != 2 ||
		    id != mount_id)
			continue;
		/* mountinfo escapes space, tab, newline and \ as \ooo */
		while (mnt[i]) {
			if (mnt[i] == '\\' && mnt[i + 1] && mnt[i + 2] &&
			    mnt[i + 3]) {
				dec[j++] = (char)((mnt[i + 1] - '0') * 64 +
						  (mnt[i + 2] - '0') * 8 +
						  (mnt[i + 3] - '0'));
				i += 4;
			} else {
				dec[j++] = mnt[i++];
			}
		}
		dec[j] = '\0';
		fd = open(dec, O_RDONLY | O_DIRECTORY);
		if (fd < 0)
			fd = -errno;
		break;
	}
	free(line);
	fclose(f);
	return fd;
}

static int handles_drop_caches(void)
{
	int fd, rc = 0;

	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd < 0)
		return -errno;
	if (write(fd, "2\n", 2) != 2)
		rc = -errno;
	if (close(fd) < 0 && !rc)
		rc = -errno;
	return rc;
}

/* Compares the file or directory open on hfd (takes hfd) with path. */
static int handles_compare(int hfd, const char *path, const struct stat *st)
{
	int pfd, rc;

	pfd = open(path, O_RDONLY);
	if (pfd < 0) {
		rc = errno;
		close(hfd);
		return handles_fail("open", path, rc);
	}
	if (S_ISDIR(st->st_mode)) {
		struct handles_names a, b;
		size_t i;

		rc = handles_list(pfd, &a);
		if (rc) {
			close(hfd);
			return handles_fail("readdir path", path, -rc);
		}
		rc = handles_list(hfd, &b);
		if (rc) {
			handles_names_free(&a);
			return handles_fail("readdir handle", path, -rc);
		}
		for (i = 0; i < a.n && i < b.n; i++)
			if (strcmp(a.v[i], b.v[i]))
				break;
		rc = 0;
		if (a.n != b.n || i < a.n) {
			fprintf(stderr,
				"handles: compare(%s): path lists %zu names, "
				"handle %zu; first difference at %zu\n",
				path, a.n, b.n, i);
			rc = 1;
		} else {
			printf("%s: directory, %zu names match\n", path, a.n);
		}
		handles_names_free(&a);
		handles_names_free(&b);
		return rc;
	} else {
		char *a = NULL, *b = NULL;
		size_t alen = 0, blen = 0;

		rc = handles_read_all(pfd, &a, &alen);
		close(pfd);
		if (rc) {
			close(hfd);
			return handles_fail("read path", path, -rc);
		}
		rc = handles_read_all(hfd, &b, &blen);
		close(hfd);
		if (rc) {
			free(a);
			return handles_fail("read handle", path, -rc);
		}
		rc = 0;
		if (alen != blen || memcmp(a, b, alen)) {
			fprintf(stderr,
				"handles: compare(%s): path reads %zu bytes, "
				"handle %zu bytes, contents differ\n",
				path, alen, blen);
			rc = 1;
		} else {
			printf("%s: file, %zu bytes match\n", path, alen);
		}
		free(a);
		free(b);
		return rc;
	}
}

/* Writes fh to file; returns 0 or an errno. */
static int handles_save(const char *file, const struct file_handle *fh)
{
	size_t len = sizeof(*fh) + fh->handle_bytes;
	FILE *f = fopen(file, "wb");
	int err = 0;

	if (!f)
		return errno;
	if (fwrite(fh, 1, len, f) != len)
		err = errno ? errno : EIO;
	if (fclose(f) && !err)
		err = errno;
	return err;
}

/* Reads a handle written by handles_save into fh (MAX_HANDLE_SZ bytes). */
static int handles_load(const char *file, struct file_handle *fh)
{
	FILE *f = fopen(file, "rb");
	int err = 0;

	if (!f)
		return errno;
	if (fread(fh, 1, sizeof(*fh), f) != sizeof(*fh) ||
	    fh->handle_bytes > MAX_HANDLE_SZ ||
	    fread(fh->f_handle, 1, fh->handle_bytes, f) != fh->handle_bytes)
		err = EINVAL;
	fclose(f);
	return err;
}

static int handles_usage(void)
{
	fprintf(stderr,
		"usage: handles [-n] PATH\n"
		"       handles -s FILE PATH\n"
		"       handles [-n] -l FILE PATH\n"
		"  -n       do not drop the dentry and inode caches\n"
		"  -s FILE  only save the handle of PATH in FILE\n"
		"  -l FILE  open the handle saved in FILE instead of PATH's\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct file_handle *fh;
	struct stat st, hst;
	const char *path, *save = NULL, *load = NULL;
	int drop = 1, mount_id, mfd, hfd, opt, err, rc = 1;

	while ((opt = getopt(argc, argv, "ns:l:")) != -1) {
		switch (opt) {
		case 'n':
			drop = 0;
			break;
		case 's':
			save = optarg;
			break;
		case 'l':
			load = optarg;
			break;
		default:
			return handles_usage();
		}
	}
	if (optind != argc - 1 || (save && load))
		return handles_usage();
	path = argv[optind];

	if (lstat(path, &st) < 0)
		return handles_fail("stat", path, errno);
	fh = malloc(sizeof(*fh) + MAX_HANDLE_SZ);
	if (!fh)
		return handles_fail("malloc", path, ENOMEM);
	fh->handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(AT_FDCWD, path, fh, &mount_id, 0) < 0) {
		handles_fail("name_to_handle_at", path, errno);
		goto out_fh;
	}
	if (save) {
		err = handles_save(save, fh);
		if (err)
			handles_fail("save handle", save, err);
		rc = err ? 1 : 0;
		goto out_fh;
	}
	if (load) {
		err = handles_load(load, fh);
		if (err) {
			handles_fail("load handle", load, err);
			goto out_fh;
		}
	}
	mfd = handles_open_mount(mount_id);
	if (mfd < 0) {
		handles_fail("open mount root", path, -mfd);
		goto out_fh;
	}
	if (drop) {
		err = handles_drop_caches();
		if (err) {
			handles_fail("drop_caches", path, -err);
			goto out_mfd;
		}
	}
	hfd = open_by_handle_at(mfd, fh, O_RDONLY);
	if (hfd < 0) {
		handles_fail("open_by_handle_at", path, errno);
		goto out_mfd;
	}
	if (fstat(hfd, &hst) < 0) {
		handles_fail("fstat handle", path, errno);
		close(hfd);
		goto out_mfd;
	}
	if (hst.st_ino != st.st_ino || hst.st_dev != st.st_dev ||
	    (hst.st_mode & S_IFMT) != (st.st_mode & S_IFMT)) {
		fprintf(stderr,
			"handles: fstat handle(%s): ino %llu mode %o, "
			"path has ino %llu mode %o\n",
			path, (unsigned long long)hst.st_ino,
			(unsigned)hst.st_mode, (unsigned long long)st.st_ino,
			(unsigned)st.st_mode);
		close(hfd);
		goto out_mfd;
	}
	rc = handles_compare(hfd, path, &st);

out_mfd:
	close(mfd);
out_fh:
	free(fh);
	return rc;
}
