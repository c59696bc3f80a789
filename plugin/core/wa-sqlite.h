/* wa-sqlite.h: what every SQLite file of ours needs before and after SQLite
 * opens it: a private directory (0700, ours), a private file (0600, created
 * with O_EXCL before SQLite sees it, so the -wal file copies its mode), and
 * one-row PRAGMAs. Used by the plugin's store and the receiver's journal.
 *
 * Must not: change the process umask, or open an existing database file
 * (closing any descriptor of a file drops this process's POSIX locks on it,
 * including SQLite's). */
#pragma once

#include <glib.h>
#include <sqlite3.h>

G_BEGIN_DECLS

/* @dir (as wa_file_private_dir; @what names it in errors, "the store
 * directory") and the database file @db_path in it (as wa_file_private_file),
 * plus its -wal and -shm files when they exist: SQLite gives those the
 * database's mode. Errors in G_FILE_ERROR. */
gboolean wa_sqlite_private_db(const char *dir, const char *what, const char *db_path, GError **error);

/* The settings every database of ours runs with, before journal_mode=WAL:
 * exclusive locking (set first: then SQLite keeps the WAL index in heap
 * memory, no -shm file, and never lets go of its lock), synchronous=FULL,
 * no automatic checkpoints (the owner's thread checkpoints), no trusted
 * schema, and secure_delete (deleted content is zeroed: Debian's SQLite does
 * this by default, other builds do not). Returns the SQLite result code. */
int wa_sqlite_setup(sqlite3 *db);

/* Runs a statement that answers at most one row (a PRAGMA); its first column
 * as text in *@out (newly allocated) when @out is given. Returns the SQLite
 * result code. */
int wa_sqlite_pragma(sqlite3 *db, const char *sql, char **out);

G_END_DECLS
