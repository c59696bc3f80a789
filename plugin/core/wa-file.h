/* wa-file.h: private files and directories of ours (the store, its key
 * files, the receiver's journal and key): a 0700 directory, 0600 files
 * created with O_EXCL and without following symbolic links, checks of an
 * existing file's type, owner and mode, whole reads and writes, and an
 * atomic replacement through a temporary file.
 *
 * Errors are in G_FILE_ERROR (the code from errno), with messages such as
 * "cannot create PATH: reason". Every function that fails also leaves errno
 * set to the cause, so a caller that words its own message may pass a NULL
 * @error. Nothing here allocates memory the caller must free.
 *
 * Must not: change the process umask, follow a symbolic link to a file, or
 * include libpurple (the receiver links this too). */
#pragma once

#include <glib.h>
#include <sys/stat.h>

G_BEGIN_DECLS

/* Sets @error to "@doing @path: strerror(@errsv)" in G_FILE_ERROR and errno to
 * @errsv. Returns FALSE, for "return wa_file_set_error(...)". */
gboolean wa_file_set_error(GError **error, const char *doing, const char *path, int errsv);

/* Creates @dir (with parents) 0700 when missing; refuses one that is not a
 * directory or belongs to another user; makes it exactly 0700. @what names it
 * in error messages ("the store directory"). */
gboolean wa_file_private_dir(const char *dir, const char *what, GError **error);

/* Checks the file @st describes (@path only names it in messages): a regular
 * file owned by this process's effective uid. *@fix is set to TRUE when its
 * mode is not exactly 0600 (the umask may have removed bits, or an older file
 * may be open to others), FALSE otherwise. */
gboolean wa_file_check_private(const struct stat *st, const char *path, gboolean *fix, GError **error);

/* The same check on an open descriptor, and makes the file exactly 0600 when
 * it is not. @fd stays open and belongs to the caller. */
gboolean wa_file_private_fd(int fd, const char *path, GError **error);

/* Creates @path 0600 (O_EXCL, no symbolic links) when missing, unless
 * @optional; checks an existing one (wa_file_check_private, without opening
 * it: closing a descriptor drops this process's POSIX locks on the file,
 * SQLite's included) and makes it exactly 0600. An @optional file that does
 * not exist is fine. */
gboolean wa_file_private_file(const char *path, gboolean optional, GError **error);

/* Reads exactly @len bytes from @fd into @buf (the caller's). A file that
 * ends early is an error (EIO). @path only names the file in messages. */
gboolean wa_file_read_exact(int fd, const char *path, void *buf, gsize len, GError **error);

/* Writes all @len bytes of @data to @fd, retrying short writes. */
gboolean wa_file_write_all(int fd, const char *path, const void *data, gsize len, GError **error);

/* Makes the directory entry of a new or renamed @path durable (fsync of its
 * parent directory). A file system that cannot sync a directory (EINVAL)
 * makes no stronger promise to anyone: that counts as success. */
gboolean wa_file_sync_dir_of(const char *path, GError **error);

/* Replaces @path with @len bytes of @data, atomically: writes "@path.tmp"
 * (a stale one is removed first; created O_EXCL without following links,
 * exactly 0600, synced), then renames it over @path. On failure the
 * temporary file is removed and @path is unchanged. The caller decides how
 * hard to sync the directory afterwards (wa_file_sync_dir_of), and makes sure
 * no one else writes "@path.tmp" meanwhile (a lock, a private directory). */
gboolean wa_file_replace_private(const char *path, const void *data, gsize len, GError **error);

G_END_DECLS
