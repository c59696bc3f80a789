/* wa-sqlite.c: private files and PRAGMAs for our SQLite databases (see
 * wa-sqlite.h; the file checks themselves are wa-file.c's). Must not: change
 * the umask, or open an existing file. */
#include "wa-sqlite.h"

#include "wa-file.h"

gboolean
wa_sqlite_private_db(const char *dir, const char *what, const char *db_path, GError **error)
{
  g_autofree char *wal = g_strconcat(db_path, "-wal", NULL);
  g_autofree char *shm = g_strconcat(db_path, "-shm", NULL);

  return wa_file_private_dir(dir, what, error) && wa_file_private_file(db_path, FALSE, error) &&
         wa_file_private_file(wal, TRUE, error) && wa_file_private_file(shm, TRUE, error);
}

int
wa_sqlite_setup(sqlite3 *db)
{
  static const char *const setup[] = {
    "PRAGMA locking_mode = EXCLUSIVE", "PRAGMA synchronous = FULL", "PRAGMA wal_autocheckpoint = 0",
    "PRAGMA trusted_schema = OFF",     "PRAGMA secure_delete = ON",
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
