/* wa-sqlite.c: private files and PRAGMAs for our SQLite databases (see
 * wa-sqlite.h). Must not: change the umask, or open an existing file. */
#include "wa-sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static gboolean
file_error(GError **error, const char *what, const char *path, int errsv)
{
  g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv), "%s %s: %s", what, path, g_strerror(errsv));
  return FALSE;
}

gboolean
wa_sqlite_private_dir(const char *dir, const char *what, GError **error)
{
  struct stat st;

  if (g_mkdir_with_parents(dir, 0700) != 0)
    return file_error(error, "cannot create", dir, errno);
  if (stat(dir, &st) != 0)
    return file_error(error, "cannot inspect", dir, errno);
  if (!S_ISDIR(st.st_mode)) {
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR, "%s %s is not a directory", what, dir);
    return FALSE;
  }
  if (st.st_uid != geteuid()) {
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_PERM, "%s %s belongs to another user", what, dir);
    return FALSE;
  }
  if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) != 0)
    return file_error(error, "cannot make private", dir, errno);
  return TRUE;
}

/* A regular file of ours; *@fix when its mode is not exactly 0600 (the umask
 * may have removed bits, or an older file may be open to others). */
static gboolean
check_file(const struct stat *st, const char *path, gboolean *fix, GError **error)
{
  if (!S_ISREG(st->st_mode)) {
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s is not a regular file", path);
    return FALSE;
  }
  if (st->st_uid != geteuid()) {
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_PERM, "%s belongs to another user", path);
    return FALSE;
  }
  *fix = (st->st_mode & 07777) != 0600;
  return TRUE;
}

gboolean
wa_sqlite_private_file(const char *path, gboolean optional, GError **error)
{
  struct stat st;
  gboolean fix = FALSE;

  if (!optional) {
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

    if (fd >= 0) {
      /* new, so no one holds a lock on it: safe to open and close */
      gboolean ok = fstat(fd, &st) == 0 && check_file(&st, path, &fix, error) &&
                    (!fix || fchmod(fd, 0600) == 0);
      int errsv = errno;

      close(fd);
      if (!ok && error != NULL && *error == NULL)
        return file_error(error, "cannot make private", path, errsv);
      return ok;
    }
    if (errno != EEXIST)
      return file_error(error, "cannot create", path, errno);
  }
  if (lstat(path, &st) != 0) {
    if (optional && errno == ENOENT)
      return TRUE;
    return file_error(error, "cannot inspect", path, errno);
  }
  if (!check_file(&st, path, &fix, error))
    return FALSE;
  /* inside our 0700 directory no one else can swap the file meanwhile */
  if (fix && chmod(path, 0600) != 0)
    return file_error(error, "cannot make private", path, errno);
  return TRUE;
}

gboolean
wa_sqlite_private_db(const char *dir, const char *what, const char *db_path, GError **error)
{
  g_autofree char *wal = g_strconcat(db_path, "-wal", NULL);
  g_autofree char *shm = g_strconcat(db_path, "-shm", NULL);

  return wa_sqlite_private_dir(dir, what, error) && wa_sqlite_private_file(db_path, FALSE, error) &&
         wa_sqlite_private_file(wal, TRUE, error) && wa_sqlite_private_file(shm, TRUE, error);
}

int
wa_sqlite_setup(sqlite3 *db)
{
  static const char *const setup[] = {
    "PRAGMA locking_mode = EXCLUSIVE",
    "PRAGMA synchronous = FULL",
    "PRAGMA wal_autocheckpoint = 0",
    "PRAGMA trusted_schema = OFF",
    "PRAGMA secure_delete = ON",
  };

  for (gsize i = 0; i < G_N_ELEMENTS(setup); i++) {
    int rc = wa_sqlite_pragma(db, setup[i], NULL);

    if (rc != SQLITE_OK)
      return rc;
  }
  return SQLITE_OK;
}

int
wa_sqlite_pragma(sqlite3 *db, const char *sql, char **out)
{
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);

  if (rc != SQLITE_OK)
    return rc;
  rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    if (out != NULL)
      *out = g_strdup((const char *) sqlite3_column_text(stmt, 0));
    rc = sqlite3_step(stmt);
  }
  if (rc == SQLITE_DONE)
    rc = SQLITE_OK;
  sqlite3_finalize(stmt);
  return rc;
}
