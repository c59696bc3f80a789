/* wa-file.c: private files and directories, whole reads and writes (see
 * wa-file.h). Must not: change the umask, follow a symbolic link to a file,
 * or open an existing file that SQLite may hold locks on. */
#include "wa-file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h> /* rename */
#include <unistd.h>

gboolean
wa_file_set_error(GError **error, const char *doing, const char *path, int errsv)
{
  g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv), "%s %s: %s", doing, path, g_strerror(errsv));
  errno = errsv;
  return FALSE;
}

/* An error that has no errno of its own: errno is set to @errsv for callers
 * that word their own message. */
static gboolean
refuse(GError **error, GFileError code, int errsv, const char *message)
{
  g_set_error_literal(error, G_FILE_ERROR, code, message);
  errno = errsv;
  return FALSE;
}

gboolean
wa_file_private_dir(const char *dir, const char *what, GError **error)
{
  struct stat st;

  if (g_mkdir_with_parents(dir, 0700) != 0)
    return wa_file_set_error(error, "cannot create", dir, errno);
  if (stat(dir, &st) != 0)
    return wa_file_set_error(error, "cannot inspect", dir, errno);
  if (!S_ISDIR(st.st_mode)) {
    g_autofree char *msg = g_strdup_printf("%s %s is not a directory", what, dir);

    return refuse(error, G_FILE_ERROR_NOTDIR, ENOTDIR, msg);
  }
  if (st.st_uid != geteuid()) {
    g_autofree char *msg = g_strdup_printf("%s %s belongs to another user", what, dir);

    return refuse(error, G_FILE_ERROR_PERM, EPERM, msg);
  }
  if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) != 0)
    return wa_file_set_error(error, "cannot make private", dir, errno);
  return TRUE;
}

gboolean
wa_file_check_private(const struct stat *st, const char *path, gboolean *fix, GError **error)
{
  *fix = FALSE;
  if (!S_ISREG(st->st_mode)) {
    g_autofree char *msg = g_strdup_printf("%s is not a regular file", path);

    return refuse(error, G_FILE_ERROR_INVAL, EINVAL, msg);
  }
  if (st->st_uid != geteuid()) {
    g_autofree char *msg = g_strdup_printf("%s belongs to another user", path);

    return refuse(error, G_FILE_ERROR_PERM, EPERM, msg);
  }
  *fix = (st->st_mode & 07777) != 0600;
  return TRUE;
}

gboolean
wa_file_private_fd(int fd, const char *path, GError **error)
{
  struct stat st;
  gboolean fix;

  if (fstat(fd, &st) != 0)
    return wa_file_set_error(error, "cannot inspect", path, errno);
  if (!wa_file_check_private(&st, path, &fix, error))
    return FALSE;
  if (fix && fchmod(fd, 0600) != 0)
    return wa_file_set_error(error, "cannot make private", path, errno);
  return TRUE;
}

gboolean
wa_file_private_file(const char *path, gboolean optional, GError **error)
{
  struct stat st;
  gboolean fix = FALSE;

  if (!optional) {
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

    if (fd >= 0) {
      /* new, so no one holds a lock on it: safe to open and close */
      gboolean ok = wa_file_private_fd(fd, path, error);
      int errsv = errno;

      close(fd);
      errno = errsv;
      return ok;
    }
    if (errno != EEXIST)
      return wa_file_set_error(error, "cannot create", path, errno);
  }
  if (lstat(path, &st) != 0) {
    if (optional && errno == ENOENT)
      return TRUE;
    return wa_file_set_error(error, "cannot inspect", path, errno);
  }
  if (!wa_file_check_private(&st, path, &fix, error))
    return FALSE;
  /* inside our 0700 directory no one else can swap the file meanwhile */
  if (fix && chmod(path, 0600) != 0)
    return wa_file_set_error(error, "cannot make private", path, errno);
  return TRUE;
}

gboolean
wa_file_read_exact(int fd, const char *path, void *buf, gsize len, GError **error)
{
  guint8 *at = buf;

  while (len > 0) {
    ssize_t n = read(fd, at, len);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) /* n == 0: the file shrank, or was short */
      return wa_file_set_error(error, "cannot read", path, n < 0 ? errno : EIO);
    at += n;
    len -= (gsize) n;
  }
  return TRUE;
}

gboolean
wa_file_write_all(int fd, const char *path, const void *data, gsize len, GError **error)
{
  const guint8 *at = data;

  while (len > 0) {
    ssize_t n = write(fd, at, len);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return wa_file_set_error(error, "cannot write", path, n < 0 ? errno : EIO);
    at += n;
    len -= (gsize) n;
  }
  return TRUE;
}

gboolean
wa_file_sync_dir_of(const char *path, GError **error)
{
  g_autofree char *dir = g_path_get_dirname(path);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int errsv;

  if (fd < 0)
    return wa_file_set_error(error, "cannot open the directory of", path, errno);
  if (fsync(fd) == 0 || errno == EINVAL) {
    close(fd);
    return TRUE;
  }
  errsv = errno;
  close(fd);
  return wa_file_set_error(error, "cannot sync the directory of", path, errsv);
}

gboolean
wa_file_replace_private(const char *path, const void *data, gsize len, GError **error)
{
  g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
  int fd;
  int errsv;

  if (unlink(tmp) != 0 && errno != ENOENT)
    return wa_file_set_error(error, "cannot remove", tmp, errno);
  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
  if (fd < 0)
    return wa_file_set_error(error, "cannot create", tmp, errno);
  /* exactly 0600 whatever the umask removed */
  if (fchmod(fd, 0600) != 0 || !wa_file_write_all(fd, tmp, data, len, NULL) || fsync(fd) != 0) {
    errsv = errno;
    close(fd);
    unlink(tmp);
    return wa_file_set_error(error, "cannot write", tmp, errsv);
  }
  if (close(fd) != 0 || rename(tmp, path) != 0) {
    errsv = errno;
    unlink(tmp);
    return wa_file_set_error(error, "cannot create", path, errsv);
  }
  return TRUE;
}
