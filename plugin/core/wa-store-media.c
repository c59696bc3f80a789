/* wa-store-media.c: the store's inbound attachments: the pending download
 * recorded with its message (wa-store-messages.c calls in here inside the
 * inbound transaction), the download's outcome, lookups by state and by
 * "/save N" number, and deleting files on erasure and retention.
 *
 * Every run_* function runs on the worker inside the transaction (or read)
 * that wa-store.c opened for it; answer_* functions run on the loop thread.
 * media_id, sha256, filename, error and the file's key are sealed with the
 * customer's key, associated data (table, column, row id). Files are named
 * by a random id, never by anything the customer chose.
 *
 * Must not: log content, ids, names or keys, keep decrypted values beyond
 * the request, or touch a connection or key outside the worker. */
#include "wa-store-private.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>
#include <unistd.h>

/* ---- records ---------------------------------------------------------------- */

WaStoreMedia *
wa_store_media_copy(const WaStoreMedia *m)
{
  WaStoreMedia *c;

  if (m == NULL)
    return NULL;
  c = g_memdup2(m, sizeof *m);
  c->id = g_strdup(m->id);
  c->message_id = g_strdup(m->message_id);
  c->customer_id = g_strdup(m->customer_id);
  c->type = g_strdup(m->type);
  c->mime_type = g_strdup(m->mime_type);
  c->media_id = g_strdup(m->media_id);
  c->sha256 = g_strdup(m->sha256);
  c->filename = g_strdup(m->filename);
  c->error = g_strdup(m->error);
  c->path = g_strdup(m->path);
  c->file_key = m->file_key != NULL ? wa_key_copy(m->file_key) : NULL;
  return c;
}

void
wa_store_media_free(WaStoreMedia *m)
{
  if (m == NULL)
    return;
  g_free(m->id);
  g_free(m->message_id);
  g_free(m->customer_id);
  g_free(m->type);
  g_free(m->mime_type);
  wa_store_wipe_free(m->media_id);
  wa_store_wipe_free(m->sha256);
  wa_store_wipe_free(m->filename);
  wa_store_wipe_free(m->error);
  g_free(m->path);
  g_clear_pointer(&m->file_key, wa_key_free);
  g_free(m);
}

char *
wa_store_media_dir(WaStore *store)
{
  g_autofree char *dir = g_path_get_dirname(store->path);
  g_autofree char *base = g_path_get_basename(store->path);
  char *dot = strrchr(base, '.');

  if (dot != NULL && dot != base)
    *dot = '\0';
  return g_build_filename(dir, "media", base, NULL);
}

static char *
media_path(WaStore *store, const char *file)
{
  g_autofree char *dir = wa_store_media_dir(store);

  return g_build_filename(dir, file, NULL);
}

/* The key kept as hex in the sealed column. */
static WaKey *
key_from_hex(const char *hex)
{
  guint8 raw[WA_CRYPT_KEY_BYTES];
  size_t len = 0;
  WaKey *key = NULL;

  if (hex != NULL && sodium_hex2bin(raw, sizeof raw, hex, strlen(hex), NULL, &len, NULL) == 0 && len == sizeof raw)
    key = wa_key_from_bytes(raw, sizeof raw, NULL);
  sodium_memzero(raw, sizeof raw);
  return key;
}

WaStoreMedia *
wa_store_read_media(WaStore *store, sqlite3_stmt *stmt)
{
  WaStoreMedia *m = g_new0(WaStoreMedia, 1);
  g_autofree char *file = NULL;
  char *key_hex;
  const WaKey *key;

  m->id = wa_store_col_text(stmt, 0);
  m->message_id = wa_store_col_text(stmt, 1);
  m->customer_id = wa_store_col_text(stmt, 2);
  m->number = (guint) sqlite3_column_int64(stmt, 3);
  m->type = wa_store_col_text(stmt, 4);
  m->mime_type = wa_store_col_text(stmt, 5);
  m->voice = sqlite3_column_int(stmt, 9) != 0;
  m->size = sqlite3_column_int64(stmt, 10);
  m->state = (WaStoreMediaState) sqlite3_column_int(stmt, 11);
  m->attempts = (guint) sqlite3_column_int(stmt, 12);
  m->next_attempt = sqlite3_column_int64(stmt, 13);
  file = wa_store_col_text(stmt, 15);
  m->path = file != NULL ? media_path(store, file) : NULL;
  m->created = sqlite3_column_int64(stmt, 17);
  m->timestamp = sqlite3_column_int64(stmt, 18);
  key = m->id != NULL && m->customer_id != NULL ? wa_store_customer_key(store, m->customer_id, NULL) : NULL;
  if (key == NULL) {
    m->tampered = TRUE;
    return m;
  }
  m->media_id = wa_store_open_col(key, "media", "media_id", m->id, stmt, 6, &m->tampered);
  m->sha256 = wa_store_open_col(key, "media", "sha256", m->id, stmt, 7, &m->tampered);
  m->filename = wa_store_open_col(key, "media", "filename", m->id, stmt, 8, &m->tampered);
  m->error = wa_store_open_col(key, "media", "error", m->id, stmt, 14, &m->tampered);
  key_hex = wa_store_open_col(key, "media", "file_key", m->id, stmt, 16, &m->tampered);
  m->file_key = key_from_hex(key_hex);
  if (m->file_key == NULL)
    m->tampered = TRUE;
  wa_store_wipe_free(key_hex);
  return m;
}

/* The row @stmt (NULL: an error) selects, or NULL (no error) when there is none. */
static gboolean
read_one(WaStore *store, sqlite3_stmt *stmt, WaStoreMedia **out, GError **error)
{
  int rc;

  *out = NULL;
  if (stmt == NULL)
    return FALSE;
  rc = wa_store_sql_step(store, stmt, error);
  if (rc == 0)
    return FALSE;
  if (rc == SQLITE_ROW)
    *out = wa_store_read_media(store, stmt);
  wa_store_sql_done(stmt);
  return TRUE;
}

static gboolean
read_media_where(WaStore *store, const char *sql_id, WaStoreMedia **out, GError **error)
{
  return read_one(store,
                  wa_store_sql(store, error, "SELECT " WA_STORE_MEDIA_COLUMNS " FROM media d WHERE d.id = ?1", "t",
                               sql_id),
                  out, error);
}

/* ---- inside the inbound transaction ---------------------------------------------- */

gboolean
wa_store_media_insert(WaStore *store, gint64 now, const char *customer_id, const char *message_id, const char *type,
                      const WaStoreInboundMedia *in, WaStoreMedia **out, GError **error)
{
  const WaKey *key = wa_store_customer_key(store, customer_id, error);
  g_autofree char *id = wa_store_new_id();
  g_autofree char *file = NULL;
  g_autofree char *file_id = wa_store_new_id();
  g_autoptr(GBytes) media_id = NULL;
  g_autoptr(GBytes) sha256 = NULL;
  g_autoptr(GBytes) filename = NULL;
  g_autoptr(GBytes) file_key = NULL;
  guint8 raw[WA_CRYPT_KEY_BYTES];
  char hex[2 * WA_CRYPT_KEY_BYTES + 1];
  gint64 number = 0;
  gboolean sealed;

  if (key == NULL)
    return FALSE;
  if (in->media_id == NULL || *in->media_id == '\0') {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID, "an attachment needs a media id");
    return FALSE;
  }
  if (!wa_store_sql_int(store, &number, NULL, error,
                        "SELECT COALESCE(max(number), 0) + 1 FROM media WHERE customer_id = ?1", "t", customer_id))
    return FALSE;
  randombytes_buf(raw, sizeof raw);
  sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
  sodium_memzero(raw, sizeof raw);
  file = g_strconcat(file_id, ".wam", NULL);
  sealed = wa_store_seal(key, "media", "media_id", id, in->media_id, &media_id, error) &&
           wa_store_seal(key, "media", "sha256", id, in->sha256, &sha256, error) &&
           wa_store_seal(key, "media", "filename", id, in->filename, &filename, error) &&
           wa_store_seal(key, "media", "file_key", id, hex, &file_key, error);
  sodium_memzero(hex, sizeof hex);
  if (!sealed)
    return FALSE;
  if (!wa_store_sql_exec(store, error,
                         "INSERT INTO media (id, message_id, customer_id, number, type, mime_type, media_id, sha256, "
                         "filename, voice, file, file_key, created) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                         "tttittbbbitbi", id, message_id, customer_id, number, type, in->mime_type, media_id, sha256,
                         filename, (gint64) (in->voice != FALSE), file, file_key, now))
    return FALSE;
  return read_media_where(store, id, out, error);
}

gboolean
wa_store_media_of_message(WaStore *store, const char *message_id, WaStoreMedia **out, GError **error)
{
  return read_one(store,
                  wa_store_sql(store, error, "SELECT " WA_STORE_MEDIA_COLUMNS " FROM media d WHERE d.message_id = ?1",
                               "t", message_id),
                  out, error);
}

/* ---- files: erasure and retention ------------------------------------------------- */

/* Removes the files of the rows @sql selects (one text column: file; ?1
 * bound to @arg as @type). A file already gone is fine. */
static gboolean
unlink_files(WaStore *store, const char *sql, const char *types, const char *text_arg, gint64 int_arg, GError **error)
{
  g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
  sqlite3_stmt *stmt = types[0] == 't' ? wa_store_sql(store, error, sql, types, text_arg)
                                       : wa_store_sql(store, error, sql, types, int_arg);
  int rc;

  if (stmt == NULL)
    return FALSE;
  while ((rc = wa_store_sql_step(store, stmt, error)) == SQLITE_ROW) {
    g_autofree char *file = wa_store_col_text(stmt, 0);

    if (file != NULL && strchr(file, '/') == NULL) {
      g_ptr_array_add(paths, media_path(store, file));
      g_ptr_array_add(paths, g_strconcat(g_ptr_array_index(paths, paths->len - 1), ".part", NULL));
    }
  }
  if (rc == 0)
    return FALSE;
  wa_store_sql_done(stmt);
  for (guint i = 0; i < paths->len; i++)
    if (unlink(g_ptr_array_index(paths, i)) != 0 && errno != ENOENT) {
      int errsv = errno;

      g_set_error(error, WA_STORE_ERROR, WA_STORE_ERROR_STORAGE, "cannot delete an attachment's file: %s",
                  g_strerror(errsv));
      return FALSE;
    }
  return TRUE;
}

gboolean
wa_store_media_erase_customer(WaStore *store, const char *customer_id, GError **error)
{
  return unlink_files(store, "SELECT file FROM media WHERE customer_id = ?1", "t", customer_id, 0, error) &&
         wa_store_sql_exec(store, error, "DELETE FROM media WHERE customer_id = ?1", "t", customer_id);
}

gboolean
wa_store_media_expire(WaStore *store, gint64 before, GError **error)
{
  return unlink_files(store,
                      "SELECT d.file FROM media d JOIN messages m ON m.id = d.message_id "
                      "WHERE m.timestamp < ?1 AND d.state <> 3",
                      "i", NULL, before, error) &&
         wa_store_sql_exec(store, error,
                           "UPDATE media SET state = ?2, error = NULL WHERE state <> ?2 AND message_id IN "
                           "(SELECT id FROM messages WHERE timestamp < ?1)",
                           "ii", before, (gint64) WA_STORE_MEDIA_EXPIRED);
}

/* ---- requests ----------------------------------------------------------------------- */

typedef struct {
  Request base;
  char *row_id;
  char *customer_id;
  guint number;
  guint mask;
  WaStoreMediaState state;
  gint64 size;
  char *mime_type;
  gboolean count_attempt;
  gint64 next_attempt;
  char *error_text;
  /* results */
  WaStoreMedia *media;
  GPtrArray *list;
} MediaRequest;

static void
finalize_media(Request *req)
{
  MediaRequest *mr = (MediaRequest *) req;

  g_free(mr->row_id);
  g_free(mr->customer_id);
  g_free(mr->mime_type);
  wa_store_wipe_free(mr->error_text);
  g_clear_pointer(&mr->media, wa_store_media_free);
  g_clear_pointer(&mr->list, g_ptr_array_unref);
}

static void
answer_media(Request *req)
{
  MediaRequest *mr = (MediaRequest *) req;

  if (req->cb != NULL)
    ((WaStoreMediaFunc) req->cb)(req->error == NULL ? mr->media : NULL, req->error, req->data);
}

static void
answer_media_list(Request *req)
{
  MediaRequest *mr = (MediaRequest *) req;

  if (req->cb != NULL)
    ((WaStoreMediaListFunc) req->cb)(req->error == NULL ? mr->list : NULL, req->error, req->data);
}

static gboolean
run_list(WaStore *store, Request *req, GError **error)
{
  MediaRequest *mr = (MediaRequest *) req;
  sqlite3_stmt *stmt =
    mr->customer_id != NULL
      ? wa_store_sql(store, error,
                     "SELECT " WA_STORE_MEDIA_COLUMNS " FROM media d WHERE ((1 << d.state) & ?1) <> 0 "
                     "AND d.customer_id = ?2 ORDER BY d.number",
                     "it", (gint64) mr->mask, mr->customer_id)
      : wa_store_sql(store, error,
                     "SELECT " WA_STORE_MEDIA_COLUMNS " FROM media d WHERE ((1 << d.state) & ?1) <> 0 "
                     "ORDER BY d.created, d.rowid",
                     "i", (gint64) mr->mask);
  int rc;

  if (stmt == NULL)
    return FALSE;
  mr->list = g_ptr_array_new_with_free_func((GDestroyNotify) wa_store_media_free);
  while ((rc = wa_store_sql_step(store, stmt, error)) == SQLITE_ROW)
    g_ptr_array_add(mr->list, wa_store_read_media(store, stmt));
  if (rc == 0)
    return FALSE;
  wa_store_sql_done(stmt);
  return TRUE;
}

static const RequestClass list_class = {
  .mode = MODE_READ,
  .needs_key = TRUE,
  .size = sizeof(MediaRequest),
  .run = run_list,
  .answer = answer_media_list,
  .finalize = finalize_media,
};

void
wa_store_media_list(WaStore *store, guint state_mask, WaStoreMediaListFunc done, gpointer data)
{
  MediaRequest *mr;

  g_return_if_fail(store != NULL);
  mr = wa_store_request_new(store, &list_class, STORE_CALLBACK(done), data);
  mr->mask = state_mask;
  wa_store_request_push(store, mr);
}

void
wa_store_media_of_customer(WaStore *store, const char *customer_id, guint state_mask, WaStoreMediaListFunc done,
                           gpointer data)
{
  MediaRequest *mr;

  g_return_if_fail(store != NULL && customer_id != NULL);
  mr = wa_store_request_new(store, &list_class, STORE_CALLBACK(done), data);
  mr->mask = state_mask;
  mr->customer_id = g_strdup(customer_id);
  wa_store_request_push(store, mr);
}

static gboolean
run_get(WaStore *store, Request *req, GError **error)
{
  MediaRequest *mr = (MediaRequest *) req;

  return read_one(store,
                  wa_store_sql(store, error,
                               "SELECT " WA_STORE_MEDIA_COLUMNS
                               " FROM media d WHERE d.customer_id = ?1 AND d.number = ?2",
                               "ti", mr->customer_id, (gint64) mr->number),
                  &mr->media, error);
}

static const RequestClass get_class = {
  .mode = MODE_READ,
  .needs_key = TRUE,
  .size = sizeof(MediaRequest),
  .run = run_get,
  .answer = answer_media,
  .finalize = finalize_media,
};

void
wa_store_media_get(WaStore *store, const char *customer_id, guint number, WaStoreMediaFunc done, gpointer data)
{
  MediaRequest *mr;

  g_return_if_fail(store != NULL && customer_id != NULL);
  mr = wa_store_request_new(store, &get_class, STORE_CALLBACK(done), data);
  mr->customer_id = g_strdup(customer_id);
  mr->number = number;
  wa_store_request_push(store, mr);
}

static gboolean
run_update(WaStore *store, Request *req, GError **error)
{
  MediaRequest *mr = (MediaRequest *) req;
  g_autoptr(WaStoreMedia) current = NULL;
  g_autoptr(GBytes) sealed = NULL;
  const WaKey *key;

  if (mr->state > WA_STORE_MEDIA_EXPIRED) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID, "no such attachment state");
    return FALSE;
  }
  if (!read_media_where(store, mr->row_id, &current, error))
    return FALSE;
  if (current == NULL) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_NOT_FOUND, "no such attachment");
    return FALSE;
  }
  if (current->state == WA_STORE_MEDIA_EXPIRED && mr->state != WA_STORE_MEDIA_EXPIRED) {
    /* retention expired it while it downloaded: it stays expired, and what
     * the download wrote is deleted */
    if (!unlink_files(store, "SELECT file FROM media WHERE id = ?1", "t", mr->row_id, 0, error))
      return FALSE;
    mr->media = g_steal_pointer(&current);
    return TRUE;
  }
  key = wa_store_customer_key(store, current->customer_id, error);
  if (key == NULL || !wa_store_seal(key, "media", "error", mr->row_id, mr->error_text, &sealed, error))
    return FALSE;
  if (!wa_store_sql_exec(store, error,
                         "UPDATE media SET state = ?2, size = CASE WHEN ?3 > 0 THEN ?3 ELSE size END, "
                         "mime_type = COALESCE(?4, mime_type), attempts = attempts + ?5, next_attempt = ?6, "
                         "error = ?7 WHERE id = ?1",
                         "tiitiib", mr->row_id, (gint64) mr->state, mr->size, mr->mime_type,
                         (gint64) (mr->count_attempt != FALSE), mr->next_attempt, sealed))
    return FALSE;
  return read_media_where(store, mr->row_id, &mr->media, error);
}

static const RequestClass update_class = {
  .mode = MODE_WRITE,
  .needs_key = TRUE,
  .size = sizeof(MediaRequest),
  .run = run_update,
  .answer = answer_media,
  .finalize = finalize_media,
};

void
wa_store_media_update(WaStore *store, const char *media_row_id, const WaStoreMediaChange *change, WaStoreMediaFunc done,
                      gpointer data)
{
  MediaRequest *mr;

  g_return_if_fail(store != NULL && media_row_id != NULL && change != NULL);
  mr = wa_store_request_new(store, &update_class, STORE_CALLBACK(done), data);
  mr->row_id = g_strdup(media_row_id);
  mr->state = change->state;
  mr->size = change->size;
  mr->mime_type = g_strdup(change->mime_type);
  mr->count_attempt = change->count_attempt;
  mr->next_attempt = change->next_attempt;
  mr->error_text = g_strdup(change->error_text);
  wa_store_request_push(store, mr);
}
