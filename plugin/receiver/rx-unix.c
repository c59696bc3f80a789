/* rx-unix.c: the webhook side's UNIX socket listener ("bind": "unix:PATH"),
 * for a reverse proxy on the same machine (nginx, Caddy): no TCP port that
 * another local user could take first. The socket is 0660 with the group the
 * account names (the proxy's user must be in it), or 0600 without one.
 *
 * Must not: follow a symbolic link at PATH, remove anything but a stale socket
 * of our own user, use a directory that someone other than its owner (us or
 * root) could write without a sticky bit (they could replace the socket), or
 * change the process umask. */
#include "rx.h"

#include <errno.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static gboolean
fail_errno(GError **error, int err, const char *what, const char *path)
{
  g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "%s %s: %s", what, path, g_strerror(err));
  return FALSE;
}

/* The group's id, from a name or a number. */
static gboolean
group_id(const char *group, gid_t *gid, GError **error)
{
  struct group entry, *found = NULL;
  char buf[16384];
  guint64 number;

  if (g_ascii_string_to_unsigned(group, 10, 0, G_MAXUINT32 - 1, &number, NULL)) {
    *gid = (gid_t) number;
    return TRUE;
  }
  if (getgrnam_r(group, &entry, buf, sizeof buf, &found) != 0 || found == NULL) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "the socket group \"%s\" does not exist on this machine", group);
    return FALSE;
  }
  *gid = found->gr_gid;
  return TRUE;
}

/* Nobody but the directory's owner (us or root) may replace the socket. */
static gboolean
directory_safe(const char *path, GError **error)
{
  g_autofree char *dir = g_path_get_dirname(path);
  struct stat st;

  if (stat(dir, &st) != 0)
    return fail_errno(error, errno, "cannot use the socket directory", dir);
  if (!S_ISDIR(st.st_mode)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s is not a directory", dir);
    return FALSE;
  }
  if (st.st_uid != getuid() && st.st_uid != 0) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "the socket directory %s belongs to another user, who could replace the socket: "
                "use a directory of your own (e.g. mkdir -m 0750 /run/wabiz, owned by you)",
                dir);
    return FALSE;
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "the socket directory %s is writable by other users and has no sticky bit, so "
                "they could replace the socket: use a directory only you can write (e.g. mode "
                "0750, group of the proxy)",
                dir);
    return FALSE;
  }
  return TRUE;
}

/* Something is at @path: a stale socket of ours goes, anything else stays. */
static gboolean
clear_stale(const char *path, GError **error)
{
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  struct stat st;
  int fd, rc, err;

  if (lstat(path, &st) != 0)
    return errno == ENOENT ? TRUE : fail_errno(error, errno, "cannot look at", path);
  if (!S_ISSOCK(st.st_mode)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s exists and is not a socket: choose another path",
                path);
    return FALSE;
  }
  if (st.st_uid != getuid()) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                "%s is a socket of another user (uid %u), who may be receiving your webhooks", path, (guint) st.st_uid);
    return FALSE;
  }
  g_strlcpy(addr.sun_path, path, sizeof addr.sun_path);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return fail_errno(error, errno, "cannot make a socket for", path);
  rc = connect(fd, (struct sockaddr *) &addr, sizeof addr);
  err = errno;
  close(fd);
  if (rc == 0 || err == EAGAIN) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE, "another process already listens on %s", path);
    return FALSE;
  }
  if (unlink(path) != 0 && errno != ENOENT)
    return fail_errno(error, errno, "cannot remove the stale socket", path);
  return TRUE;
}

GSocket *
rx_unix_listen(const char *path, const char *group, GError **error)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  gid_t gid = (gid_t) -1;

  if (group != NULL && !group_id(group, &gid, error))
    return NULL;
  if (!directory_safe(path, error) || !clear_stale(path, error))
    return NULL;
  socket = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, error);
  if (socket == NULL)
    return NULL;
  address = g_unix_socket_address_new(path);
  if (!g_socket_bind(socket, address, FALSE, error))
    return NULL;
  /* nobody can connect before listen(): the mode and group are set first */
  if ((group != NULL && lchown(path, (uid_t) -1, gid) != 0) || chmod(path, group != NULL ? 0660 : 0600) != 0) {
    int err = errno;

    unlink(path);
    if (err == EPERM)
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                  "cannot give %s the group \"%s\": the receiver's user must be a member of it", path, group);
    else
      fail_errno(error, err, "cannot set the mode of", path);
    return NULL;
  }
  g_socket_set_listen_backlog(socket, 128);
  if (!g_socket_listen(socket, error)) {
    unlink(path);
    return NULL;
  }
  return g_steal_pointer(&socket);
}

void
rx_unix_unlink(const char *path)
{
  struct stat st;

  if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_uid == getuid())
    unlink(path);
}
