/* wa-store.c: the store's life cycle and machinery: files and their modes,
 * SQLite configuration, the schema and its migrations, the worker thread and
 * its group commits, the pipe that carries answers back to the WaLoop, the
 * key check, the per-customer key cache, and key rotation.
 *
 * The worker owns the only connection and every key; requests are queued to
 * it (GAsyncQueue) and come back through a second queue, announced by one
 * byte in a pipe watched with wa_loop_input_add() (never GMainContext idles:
 * the plugin's loop is libpurple's). No json-glib object crosses threads.
 *
 * Must not: call a callback on the worker, log content, ids, hashes or keys,
 * open an existing database file with open(2) (closing that descriptor would
 * drop this process's SQLite locks on it), or change the process umask. */
#include "wa-store-private.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wa-seal.h"
#include "wa-sqlite.h"

G_DEFINE_QUARK(wa - store - error - quark, wa_store_error)

/* Group commit: at most this many writes share a transaction. */
#define STORE_MAX_BATCH 256
/* Checkpoint (TRUNCATE) after this many commits, or when the WAL holds this
 * many pages (16 MiB). A campaign at 1,000 sends a second writes about 15
 * pages per send: with 1,024 pages it checkpointed ten times a second, each
 * copying the same hot pages into the database, syncing it and growing the
 * truncated WAL again (82 checkpoints in 8 s; 8 with 4,096). */
#define STORE_CHECKPOINT_COMMITS 64
#define STORE_CHECKPOINT_PAGES 4096
/* Decrypted customer keys kept at most (each is a sodium_malloc'd mapping:
 * 4 pages, one of them locked). A campaign uses a customer's key when its
 * recipient is read, when the send is begun and when its answer is recorded,
 * with up to 200 read, 200 checked, 100 being begun and 256 in flight
 * between: fewer keys unwrapped them three times per send, each time with a
 * mapping made and removed (mprotect and munmap: a third of the store
 * thread's kernel time at 1,000 sends a second). */
#define STORE_KEY_CACHE 1024

#define KEY_CHECK_PLAIN "wabiz store key check v1"

/* ---- schema ------------------------------------------------------------------ */

typedef struct {
  gint64 version; /* user_version after this step */
  const char *sql;
} Migration;

/* Version 1. Ids are random text (known before the insert, so the sealed
 * columns' associated data can name them); *_hash columns are keyed hashes
 * (WA_SUBKEY_INDEX) of the sealed column next to them. */
static const char schema_v1[] =
  "CREATE TABLE meta (name TEXT PRIMARY KEY NOT NULL, value BLOB) WITHOUT ROWID;"
  "CREATE TABLE customers (id TEXT PRIMARY KEY NOT NULL, wrapped_key BLOB NOT NULL,"
  "  wa_id_hash BLOB UNIQUE, wa_id BLOB, bsuid_hash BLOB UNIQUE, bsuid BLOB, name BLOB,"
  "  newest_inbound INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL);"
  "CREATE TABLE messages (id TEXT PRIMARY KEY NOT NULL, customer_id TEXT NOT NULL,"
  "  direction INTEGER NOT NULL, type TEXT NOT NULL, body BLOB, caption BLOB, raw BLOB,"
  "  wamid_hash BLOB UNIQUE, wamid BLOB, error BLOB, timestamp INTEGER NOT NULL,"
  "  status INTEGER NOT NULL DEFAULT 0, status_time INTEGER NOT NULL DEFAULT 0,"
  "  outbox_id INTEGER, expired INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL);"
  "CREATE INDEX messages_customer ON messages (customer_id, timestamp);"
  "CREATE INDEX messages_timestamp ON messages (timestamp);"
  "CREATE TABLE outbox (id INTEGER NOT NULL UNIQUE, message_id TEXT NOT NULL UNIQUE,"
  "  customer_id TEXT NOT NULL, state INTEGER NOT NULL, payload BLOB,"
  "  preview_url INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,"
  "  next_attempt INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL,"
  "  updated INTEGER NOT NULL);"
  "CREATE INDEX outbox_state ON outbox (state);"
  "CREATE INDEX outbox_customer ON outbox (customer_id);"
  "CREATE TABLE consent (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
  "  customer_id TEXT NOT NULL, state INTEGER NOT NULL, scope TEXT NOT NULL,"
  "  source TEXT NOT NULL, note BLOB, at INTEGER NOT NULL);"
  "CREATE INDEX consent_customer ON consent (customer_id, scope, seq);"
  /* the erase path names the customer here, in its own transaction */
  "CREATE TABLE erase_permit (customer_id TEXT PRIMARY KEY NOT NULL) WITHOUT ROWID;"
  "CREATE TRIGGER consent_no_update BEFORE UPDATE ON consent"
  "  BEGIN SELECT RAISE(ABORT, 'the consent ledger is append-only'); END;"
  "CREATE TRIGGER consent_no_delete BEFORE DELETE ON consent"
  "  WHEN NOT EXISTS (SELECT 1 FROM erase_permit WHERE customer_id = OLD.customer_id)"
  "  BEGIN SELECT RAISE(ABORT, 'the consent ledger is append-only'); END;"
  "CREATE TABLE audit (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, action TEXT NOT NULL,"
  "  customer_id TEXT, detail TEXT, hash BLOB NOT NULL);"
  "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
  "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
  "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
  "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
  /* customer_id '' for account-wide settings */
  "CREATE TABLE settings (customer_id TEXT NOT NULL, name TEXT NOT NULL, value BLOB NOT NULL,"
  "  PRIMARY KEY (customer_id, name)) WITHOUT ROWID;"
  "CREATE TABLE suppression (hash BLOB PRIMARY KEY NOT NULL, reason INTEGER NOT NULL,"
  "  at INTEGER NOT NULL) WITHOUT ROWID;";

/* Version 2: whether an inbound message was shown to the agent, so that an
 * event applied again after a crash is shown only when it was not shown
 * before (messages stored by version 1 were). */
static const char schema_v2[] = "ALTER TABLE messages ADD COLUMN shown INTEGER NOT NULL DEFAULT 1;";

/* Version 3: key rotation. Every row with sealed columns records the
 * generation of the data key its key descends from (customers: the data key
 * that wraps their key; their messages, outbox entries, consent rows and
 * settings: their customer's; account settings: the data key's). Rows written
 * before are generation 1; new rows take their generation from their customer
 * (or from meta 'key_gen') through the triggers, so no writer has to know.
 * A consent row's note may change only with its generation (re-encryption);
 * everything else in the ledger stays append-only. The index and audit keys,
 * derived from the data key until now, are sealed into meta at the first
 * unlock (run_unlock), as rotation must keep them. */
static const char schema_v3[] =
  "ALTER TABLE customers ADD COLUMN key_gen INTEGER NOT NULL DEFAULT 1;"
  "ALTER TABLE messages ADD COLUMN key_gen INTEGER NOT NULL DEFAULT 1;"
  "ALTER TABLE outbox ADD COLUMN key_gen INTEGER NOT NULL DEFAULT 1;"
  "ALTER TABLE consent ADD COLUMN key_gen INTEGER NOT NULL DEFAULT 1;"
  "ALTER TABLE settings ADD COLUMN key_gen INTEGER NOT NULL DEFAULT 1;"
  "CREATE TRIGGER customers_key_gen AFTER INSERT ON customers BEGIN"
  "  UPDATE customers SET key_gen = COALESCE((SELECT value FROM meta WHERE name = 'key_gen'), 1)"
  "  WHERE id = NEW.id; END;"
  "CREATE TRIGGER messages_key_gen AFTER INSERT ON messages BEGIN"
  "  UPDATE messages SET key_gen = COALESCE((SELECT key_gen FROM customers WHERE id = NEW.customer_id), key_gen)"
  "  WHERE id = NEW.id; END;"
  "CREATE TRIGGER outbox_key_gen AFTER INSERT ON outbox BEGIN"
  "  UPDATE outbox SET key_gen = COALESCE((SELECT key_gen FROM customers WHERE id = NEW.customer_id), key_gen)"
  "  WHERE id = NEW.id; END;"
  "CREATE TRIGGER consent_key_gen AFTER INSERT ON consent BEGIN"
  "  UPDATE consent SET key_gen = COALESCE((SELECT key_gen FROM customers WHERE id = NEW.customer_id), key_gen)"
  "  WHERE seq = NEW.seq; END;"
  "CREATE TRIGGER settings_key_gen AFTER INSERT ON settings BEGIN"
  "  UPDATE settings SET key_gen = COALESCE((SELECT key_gen FROM customers WHERE id = NEW.customer_id),"
  "    (SELECT value FROM meta WHERE name = 'key_gen'), 1)"
  "  WHERE customer_id = NEW.customer_id AND name = NEW.name; END;"
  "DROP TRIGGER consent_no_update;"
  "CREATE TRIGGER consent_no_update BEFORE UPDATE ON consent"
  "  WHEN NEW.seq IS NOT OLD.seq OR NEW.id IS NOT OLD.id OR NEW.customer_id IS NOT OLD.customer_id"
  "    OR NEW.state IS NOT OLD.state OR NEW.scope IS NOT OLD.scope OR NEW.source IS NOT OLD.source"
  "    OR NEW.at IS NOT OLD.at OR (NEW.note IS NOT OLD.note AND NEW.key_gen IS OLD.key_gen)"
  "  BEGIN SELECT RAISE(ABORT, 'the consent ledger is append-only'); END;";

/* Version 4: inbound attachments (wa-store-media.c). One row per media
 * message, inserted with the message (so the event is acknowledged only
 * once its download is recorded): its state (pending, done, failed,
 * expired), attempts and next attempt, and the random name of its encrypted
 * file in the media directory. media_id, sha256, filename, error and
 * file_key (the file's own random key, as hex) are sealed with the
 * customer's key like the other tables, with key_gen for rotation. number
 * counts a customer's attachments for "/save N". */
static const char schema_v4[] =
  "CREATE TABLE media (id TEXT PRIMARY KEY NOT NULL, message_id TEXT NOT NULL UNIQUE,"
  "  customer_id TEXT NOT NULL, number INTEGER NOT NULL, type TEXT NOT NULL, mime_type TEXT,"
  "  media_id BLOB, sha256 BLOB, filename BLOB, voice INTEGER NOT NULL DEFAULT 0,"
  "  size INTEGER NOT NULL DEFAULT 0, state INTEGER NOT NULL DEFAULT 0,"
  "  attempts INTEGER NOT NULL DEFAULT 0, next_attempt INTEGER NOT NULL DEFAULT 0, error BLOB,"
  "  file TEXT NOT NULL, file_key BLOB NOT NULL, created INTEGER NOT NULL,"
  "  key_gen INTEGER NOT NULL DEFAULT 1, UNIQUE (customer_id, number));"
  "CREATE INDEX media_state ON media (state);"
  "CREATE TRIGGER media_key_gen AFTER INSERT ON media BEGIN"
  "  UPDATE media SET key_gen = COALESCE((SELECT key_gen FROM customers WHERE id = NEW.customer_id), key_gen)"
  "  WHERE id = NEW.id; END;";

/* Version 5: campaign foundations (wa-store-campaigns.c). A campaign (its
 * name, template, language and category in plaintext: no personal data in
 * them) and its recipients: one row per customer (UNIQUE), params sealed with
 * the customer's key (key_gen for rotation), a state that the outbox entry
 * drives once there is one (trigger outbox_campaign_state: queued and sending
 * keep the recipient "sending", then sent, uncertain, failed), skip reasons
 * and error codes as plaintext codes. template_sends holds the latest time
 * template T went to customer C (the "once a day" rule across campaigns);
 * portfolio_reach the latest time a customer was reached with a template
 * outside an open window (the portfolio's 24-hour count; an erased
 * customer's row stays counted without naming them). Both keep 24 hours. */
static const char schema_v5[] =
  "CREATE TABLE campaigns (id TEXT PRIMARY KEY NOT NULL, name TEXT NOT NULL, template TEXT NOT NULL,"
  "  language TEXT NOT NULL, category TEXT NOT NULL, state INTEGER NOT NULL DEFAULT 0,"
  "  start_at INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL, updated INTEGER NOT NULL);"
  "CREATE TABLE campaign_recipients (id TEXT PRIMARY KEY NOT NULL, campaign_id TEXT NOT NULL,"
  "  customer_id TEXT NOT NULL, seq INTEGER NOT NULL, params BLOB, state INTEGER NOT NULL DEFAULT 0,"
  "  reason TEXT, error_code INTEGER NOT NULL DEFAULT 0, outbox_id INTEGER, pricing TEXT,"
  "  created INTEGER NOT NULL, updated INTEGER NOT NULL, key_gen INTEGER NOT NULL DEFAULT 1,"
  "  UNIQUE (campaign_id, customer_id), UNIQUE (campaign_id, seq));"
  "CREATE INDEX campaign_recipients_state ON campaign_recipients (campaign_id, state, seq);"
  "CREATE INDEX campaign_recipients_customer ON campaign_recipients (customer_id);"
  "CREATE INDEX campaign_recipients_outbox ON campaign_recipients (outbox_id);"
  "CREATE TRIGGER campaign_recipients_key_gen AFTER INSERT ON campaign_recipients BEGIN"
  "  UPDATE campaign_recipients SET key_gen = COALESCE((SELECT key_gen FROM customers WHERE id = NEW.customer_id),"
  "    key_gen) WHERE id = NEW.id; END;"
  "CREATE TRIGGER outbox_campaign_state AFTER UPDATE OF state ON outbox BEGIN"
  "  UPDATE campaign_recipients SET state = CASE NEW.state WHEN 2 THEN 3 WHEN 3 THEN 4 WHEN 4 THEN 5 ELSE 2 END,"
  "    updated = NEW.updated WHERE outbox_id = NEW.id; END;"
  "CREATE TABLE template_sends (customer_id TEXT NOT NULL, template TEXT NOT NULL, at INTEGER NOT NULL,"
  "  PRIMARY KEY (customer_id, template)) WITHOUT ROWID;"
  "CREATE TABLE portfolio_reach (customer_id TEXT UNIQUE, at INTEGER NOT NULL);"
  "CREATE INDEX portfolio_reach_at ON portfolio_reach (at);";

/* Each step takes the schema from the previous version to its own. */
static const Migration migrations[] = {
  {1, schema_v1}, {2, schema_v2}, {3, schema_v3}, {4, schema_v4}, {5, schema_v5},
};

/* Test hook (not in wa-store.h): one more step after the last, as a newer
 * plugin would have it. Set before opening, from the test's main thread. */
static const char *test_migration_sql;
void wa_store_test_set_extra_migration(const char *sql);

void
wa_store_test_set_extra_migration(const char *sql)
{
  test_migration_sql = sql;
}

static gint64
schema_known_version(void)
{
  gint64 version = migrations[G_N_ELEMENTS(migrations) - 1].version;

  return test_migration_sql != NULL ? version + 1 : version;
}

/* ---- small helpers ---------------------------------------------------------- */

void
wa_store_wipe_free(char *s)
{
  wa_crypt_wipe_free(s);
}

static void
bytes_wipe_unref(GBytes *bytes)
{
  gsize len;
  gconstpointer data;

  if (bytes == NULL)
    return;
  data = g_bytes_get_data(bytes, &len);
  /* ours alone (fresh from wa_crypt_open) */
  if (data != NULL && len > 0)
    sodium_memzero((gpointer) data, len);
  g_bytes_unref(bytes);
}

char *
wa_store_new_id(void)
{
  guint8 raw[WA_STORE_ID_HEX / 2];
  char hex[WA_STORE_ID_HEX + 1];

  randombytes_buf(raw, sizeof raw);
  sodium_bin2hex(hex, sizeof hex, raw, sizeof raw);
  return g_strdup(hex);
}

WaStoreStatus
wa_store_status_from_string(const char *status)
{
  static const char *const names[] = {"sent", "delivered", "read", "played", "failed"};

  for (guint i = 0; status != NULL && i < G_N_ELEMENTS(names); i++)
    if (strcmp(status, names[i]) == 0)
      return (WaStoreStatus) (i + 1);
  return WA_STORE_STATUS_NONE;
}

const char *
wa_store_status_to_string(WaStoreStatus status)
{
  switch (status) {
  case WA_STORE_STATUS_SENT:
    return "sent";
  case WA_STORE_STATUS_DELIVERED:
    return "delivered";
  case WA_STORE_STATUS_READ:
    return "read";
  case WA_STORE_STATUS_PLAYED:
    return "played";
  case WA_STORE_STATUS_FAILED:
    return "failed";
  case WA_STORE_STATUS_NONE:
    break;
  }
  return "none";
}

/* ---- SQL helpers (worker) ---------------------------------------------------- */

gboolean
wa_store_set_sqlite_error(WaStore *store, GError **error, const char *what)
{
  g_set_error(error, WA_STORE_ERROR, WA_STORE_ERROR_STORAGE, "%s: %s", what, sqlite3_errmsg(store->db));
  return FALSE;
}

static gboolean
exec_plain(WaStore *store, const char *sql, GError **error)
{
  if (sqlite3_exec(store->db, sql, NULL, NULL, NULL) != SQLITE_OK)
    return wa_store_set_sqlite_error(store, error, "cannot write the store");
  return TRUE;
}

void
wa_store_sql_done(sqlite3_stmt *stmt)
{
  if (stmt == NULL)
    return;
  /* a failed step's error was reported already */
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
}

static gboolean
bindv(WaStore *store, sqlite3_stmt *stmt, GError **error, const char *types, va_list ap)
{
  int rc = SQLITE_OK;

  for (int i = 0; types != NULL && types[i] != '\0' && rc == SQLITE_OK; i++) {
    int index = i + 1;

    switch (types[i]) {
    case 't': {
      const char *text = va_arg(ap, const char *);

      rc = text != NULL ? sqlite3_bind_text(stmt, index, text, -1, SQLITE_STATIC) : sqlite3_bind_null(stmt, index);
      break;
    }
    case 'b': {
      GBytes *bytes = va_arg(ap, GBytes *);
      gsize len = 0;
      gconstpointer data = bytes != NULL ? g_bytes_get_data(bytes, &len) : NULL;

      if (bytes == NULL)
        rc = sqlite3_bind_null(stmt, index);
      else if (len > G_MAXINT)
        rc = SQLITE_TOOBIG;
      else
        rc = sqlite3_bind_blob(stmt, index, data != NULL ? data : "", (int) len, SQLITE_STATIC);
      break;
    }
    case 'h': {
      const guint8 *hash = va_arg(ap, const guint8 *);

      rc = hash != NULL ? sqlite3_bind_blob(stmt, index, hash, WA_CRYPT_HASH_BYTES, SQLITE_STATIC)
                        : sqlite3_bind_null(stmt, index);
      break;
    }
    case 'i':
      rc = sqlite3_bind_int64(stmt, index, va_arg(ap, gint64));
      break;
    case 'u':
      rc = sqlite3_bind_int64(stmt, index, (sqlite3_int64) va_arg(ap, guint64));
      break;
    default:
      g_assert_not_reached();
    }
  }
  if (rc != SQLITE_OK) {
    wa_store_set_sqlite_error(store, error, "cannot bind a store statement");
    wa_store_sql_done(stmt);
    return FALSE;
  }
  return TRUE;
}

static sqlite3_stmt *
sqlv(WaStore *store, GError **error, const char *sql, const char *types, va_list ap)
{
  sqlite3_stmt *stmt = g_hash_table_lookup(store->statements, sql);

  if (stmt == NULL) {
    if (sqlite3_prepare_v3(store->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) != SQLITE_OK) {
      wa_store_set_sqlite_error(store, error, "cannot prepare a store statement");
      return NULL;
    }
    g_hash_table_insert(store->statements, (gpointer) sql, stmt);
  }
  if (!bindv(store, stmt, error, types, ap))
    return NULL;
  return stmt;
}

sqlite3_stmt *
wa_store_sql(WaStore *store, GError **error, const char *sql, const char *types, ...)
{
  sqlite3_stmt *stmt;
  va_list ap;

  va_start(ap, types);
  stmt = sqlv(store, error, sql, types, ap);
  va_end(ap);
  return stmt;
}

int
wa_store_sql_step(WaStore *store, sqlite3_stmt *stmt, GError **error)
{
  int rc = sqlite3_step(stmt);

  if (rc == SQLITE_ROW || rc == SQLITE_DONE)
    return rc;
  wa_store_set_sqlite_error(store, error, "cannot read or write the store");
  wa_store_sql_done(stmt);
  return 0;
}

gboolean
wa_store_sql_exec(WaStore *store, GError **error, const char *sql, const char *types, ...)
{
  sqlite3_stmt *stmt;
  va_list ap;
  int rc;

  va_start(ap, types);
  stmt = sqlv(store, error, sql, types, ap);
  va_end(ap);
  if (stmt == NULL)
    return FALSE;
  rc = wa_store_sql_step(store, stmt, error);
  if (rc == 0)
    return FALSE;
  wa_store_sql_done(stmt);
  if (rc != SQLITE_DONE) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_STORAGE, "a store statement returned rows");
    return FALSE;
  }
  return TRUE;
}

gboolean
wa_store_sql_int(WaStore *store, gint64 *out, gboolean *found, GError **error, const char *sql, const char *types, ...)
{
  sqlite3_stmt *stmt;
  va_list ap;
  int rc;

  *out = 0;
  if (found != NULL)
    *found = FALSE;
  va_start(ap, types);
  stmt = sqlv(store, error, sql, types, ap);
  va_end(ap);
  if (stmt == NULL)
    return FALSE;
  rc = wa_store_sql_step(store, stmt, error);
  if (rc == 0)
    return FALSE;
  if (rc == SQLITE_ROW) {
    *out = sqlite3_column_int64(stmt, 0);
    if (found != NULL)
      *found = TRUE;
  }
  wa_store_sql_done(stmt);
  return TRUE;
}

char *
wa_store_col_text(sqlite3_stmt *stmt, int col)
{
  const unsigned char *text = sqlite3_column_text(stmt, col);

  return text != NULL ? g_strdup((const char *) text) : NULL;
}

/* ---- sealing (worker) --------------------------------------------------------- */

gboolean
wa_store_seal(const WaKey *key, const char *table, const char *column, const char *row_id, const char *value,
              GBytes **out, GError **error)
{
  *out = NULL;
  if (value == NULL)
    return TRUE;
  *out = wa_crypt_seal(key, table, column, row_id, value, strlen(value));
  if (*out == NULL) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_STORAGE, "cannot seal a value for the store");
    return FALSE;
  }
  return TRUE;
}

static GBytes *
open_blob(const WaKey *key, const char *table, const char *column, const char *row_id, sqlite3_stmt *stmt, int col,
          gboolean *tampered)
{
  const guint8 *blob;
  int len;
  GBytes *plain;

  if (sqlite3_column_type(stmt, col) == SQLITE_NULL)
    return NULL;
  blob = sqlite3_column_blob(stmt, col);
  len = sqlite3_column_bytes(stmt, col);
  plain = key != NULL ? wa_crypt_open(key, table, column, row_id, blob, len > 0 ? (gsize) len : 0, NULL) : NULL;
  if (plain == NULL)
    *tampered = TRUE;
  return plain;
}

char *
wa_store_open_col(const WaKey *key, const char *table, const char *column, const char *row_id, sqlite3_stmt *stmt,
                  int col, gboolean *tampered)
{
  GBytes *plain = open_blob(key, table, column, row_id, stmt, col, tampered);
  char *text;
  gsize len;
  gconstpointer data;

  if (plain == NULL)
    return NULL;
  data = g_bytes_get_data(plain, &len);
  text = g_strndup(data != NULL ? data : "", len);
  bytes_wipe_unref(plain);
  return text;
}

void
wa_store_index(WaStore *store, const char *domain, const char *value, guint8 out[WA_CRYPT_HASH_BYTES])
{
  wa_crypt_index(store->index_key, domain, value, out);
}

/* ---- the customer key cache (worker) ------------------------------------------ */

typedef struct {
  WaKey *key;
  GList *link; /* in store->key_order; data = the table's key string */
} CachedKey;

static void
cached_key_free(gpointer data)
{
  CachedKey *cached = data;

  wa_key_free(cached->key);
  g_free(cached);
}

static void
key_cache_drop(WaStore *store, const char *customer_id)
{
  CachedKey *cached = g_hash_table_lookup(store->key_cache, customer_id);

  if (cached == NULL)
    return;
  g_queue_delete_link(&store->key_order, cached->link);
  g_hash_table_remove(store->key_cache, customer_id);
}

static void
key_cache_clear(WaStore *store)
{
  g_queue_clear(&store->key_order);
  if (store->key_cache != NULL)
    g_hash_table_remove_all(store->key_cache);
}

static const WaKey *
key_cache_put(WaStore *store, const char *customer_id, WaKey *key)
{
  CachedKey *cached = g_new0(CachedKey, 1);
  char *id = g_strdup(customer_id);

  key_cache_drop(store, customer_id);
  cached->key = key;
  g_queue_push_head(&store->key_order, id);
  cached->link = store->key_order.head;
  g_hash_table_insert(store->key_cache, id, cached);
  while (g_hash_table_size(store->key_cache) > STORE_KEY_CACHE) {
    /* the table frees the string the queue pointed to */
    const char *oldest = g_queue_peek_tail(&store->key_order);

    key_cache_drop(store, oldest);
  }
  return key;
}

const WaKey *
wa_store_customer_key(WaStore *store, const char *customer_id, GError **error)
{
  CachedKey *cached = g_hash_table_lookup(store->key_cache, customer_id);
  sqlite3_stmt *stmt;
  GBytes *plain = NULL;
  gboolean tampered = FALSE;
  WaKey *key;
  gsize len = 0;
  gconstpointer bytes;
  int rc;

  if (cached != NULL) {
    g_queue_unlink(&store->key_order, cached->link);
    g_queue_push_head_link(&store->key_order, cached->link);
    return cached->key;
  }
  g_atomic_int_inc(&store->key_loads);
  stmt = wa_store_sql(store, error, "SELECT wrapped_key, key_gen FROM customers WHERE id = ?1", "t", customer_id);
  if (stmt == NULL)
    return NULL;
  rc = wa_store_sql_step(store, stmt, error);
  if (rc == 0)
    return NULL;
  if (rc == SQLITE_DONE) {
    wa_store_sql_done(stmt);
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_NOT_FOUND, "no such customer");
    return NULL;
  }
  /* a customer not yet re-keyed by a rotation under way: the old data key wraps theirs */
  plain = open_blob(sqlite3_column_int64(stmt, 1) == store->key_gen ? store->store_key : store->old_store_key,
                    "customers", "key", customer_id, stmt, 0, &tampered);
  wa_store_sql_done(stmt);
  if (plain == NULL) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_TAMPERED,
                        "a customer's key in the store was altered or moved");
    return NULL;
  }
  bytes = g_bytes_get_data(plain, &len);
  key = wa_key_from_bytes(bytes, len, NULL);
  bytes_wipe_unref(plain);
  if (key == NULL) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_TAMPERED, "a customer's key in the store is damaged");
    return NULL;
  }
  return key_cache_put(store, customer_id, key);
}

const WaKey *
wa_store_customer_key_new(WaStore *store, const char *customer_id, GBytes **wrapped, GError **error)
{
  WaKey *key = wa_key_new_random(error);

  *wrapped = NULL;
  if (key == NULL)
    return NULL;
  *wrapped = wa_crypt_seal(store->store_key, "customers", "key", customer_id, wa_key_bytes(key), WA_CRYPT_KEY_BYTES);
  if (*wrapped == NULL) {
    wa_key_free(key);
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_STORAGE, "cannot wrap a customer key");
    return NULL;
  }
  g_ptr_array_add(store->txn_keys, g_strdup(customer_id));
  return key_cache_put(store, customer_id, key);
}

void
wa_store_customer_key_forget(WaStore *store, const char *customer_id)
{
  key_cache_drop(store, customer_id);
}

/* Keys cached for customers created after @from in the transaction: forgotten
 * when it (or its savepoint) is rolled back. */
static void
txn_keys_forget(WaStore *store, guint from)
{
  for (guint i = from; i < store->txn_keys->len; i++)
    key_cache_drop(store, g_ptr_array_index(store->txn_keys, i));
  g_ptr_array_set_size(store->txn_keys, from);
}

static void
forget_keys(WaStore *store)
{
  key_cache_clear(store);
  g_clear_pointer(&store->store_key, wa_key_free);
  g_clear_pointer(&store->index_key, wa_key_free);
  g_clear_pointer(&store->audit_key, wa_key_free);
  g_clear_pointer(&store->old_store_key, wa_key_free);
  store->key_gen = 0;
}

/* ---- requests ------------------------------------------------------------------ */

gpointer
wa_store_request_new(WaStore *store, const RequestClass *klass, StoreCallback cb, gpointer data)
{
  Request *req;

  g_assert(klass->size >= sizeof(Request));
  req = g_malloc0(klass->size);
  req->klass = klass;
  req->cb = cb;
  req->data = data;
  req->now = wa_clock_wall_s(store->clock);
  return req;
}

static void
request_free(Request *req)
{
  if (req->klass->finalize != NULL)
    req->klass->finalize(req);
  g_clear_error(&req->error);
  g_free(req);
}

void
wa_store_request_push(WaStore *store, gpointer req)
{
  if (store->closed) {
    /* no callback after wa_store_close() (called from a callback) */
    request_free(req);
    return;
  }
  g_async_queue_push(store->queue, req);
}

/* Worker: hands @req back to the loop thread. */
static void
answer(WaStore *store, Request *req)
{
  g_async_queue_push(store->answers, req);
  if (g_atomic_int_compare_and_exchange(&store->signalled, 0, 1)) {
    guint8 byte = 1;

    /* at most one byte is ever waiting, so this cannot block */
    while (write(store->pipe_write, &byte, 1) < 0 && errno == EINTR)
      ;
  }
}

static void
store_free(WaStore *store)
{
  Request *req;

  while ((req = g_async_queue_try_pop(store->answers)) != NULL)
    request_free(req);
  while (store->queue != NULL && (req = g_async_queue_try_pop(store->queue)) != NULL)
    request_free(req);
  g_clear_pointer(&store->answers, g_async_queue_unref);
  g_clear_pointer(&store->queue, g_async_queue_unref);
  if (store->pipe_read >= 0)
    close(store->pipe_read);
  if (store->pipe_write >= 0)
    close(store->pipe_write);
  g_clear_pointer(&store->statements, g_hash_table_unref);
  g_clear_pointer(&store->key_cache, g_hash_table_unref);
  g_clear_pointer(&store->txn_keys, g_ptr_array_unref);
  g_mutex_clear(&store->hold_lock);
  g_cond_clear(&store->hold_cond);
  g_free(store->path);
  g_free(store);
}

/* Answers are dispatched for at most this long in one turn of the loop
 * (callbacks show lines: a backlog's would hold the UI); the rest wait for
 * the next turn. Measured on the real monotonic clock: it is about the
 * loop, not about time the store records. */
#define STORE_ANSWER_SLICE_US 8000

/* Loop thread: the worker has answers. */
static void
on_answers(gpointer data, int fd, WaIoCondition cond)
{
  WaStore *store = data;
  gint64 until = g_get_monotonic_time() + STORE_ANSWER_SLICE_US;
  guint8 buf[16];
  Request *req;

  while (read(fd, buf, sizeof buf) > 0)
    ;
  g_atomic_int_set(&store->signalled, 0);
  store->dispatching++;
  while (!store->closed && (req = g_async_queue_try_pop(store->answers)) != NULL) {
    req->klass->answer(req);
    request_free(req);
    if (g_get_monotonic_time() >= until && g_async_queue_length(store->answers) > 0) {
      guint8 byte = 1;

      /* the rest in the next turn: the watch fires again (the worker may
       * have written its byte already) */
      if (g_atomic_int_compare_and_exchange(&store->signalled, 0, 1))
        while (write(store->pipe_write, &byte, 1) < 0 && errno == EINTR)
          ;
      break;
    }
  }
  store->dispatching--;
  if (store->closed && store->dispatching == 0)
    store_free(store); /* closed from a callback */
}

/* ---- special requests: stop, hold, flush ---------------------------------------- */

static void
answer_done(Request *req)
{
  if (req->cb != NULL)
    ((WaStoreDoneFunc) req->cb)(req->error, req->data);
}

static gboolean
run_nothing(WaStore *store, Request *req, GError **error)
{
  return TRUE;
}

static const RequestClass stop_class = {
  .mode = MODE_SELF,
  .size = sizeof(Request),
  .run = run_nothing,
  .answer = answer_done,
};

static const RequestClass hold_class = {
  .mode = MODE_SELF,
  .size = sizeof(Request),
  .run = run_nothing,
  .answer = answer_done,
};

static const RequestClass flush_class = {
  .mode = MODE_READ,
  .size = sizeof(Request),
  .run = run_nothing,
  .answer = answer_done,
};

void
wa_store_flush(WaStore *store, WaStoreDoneFunc done, gpointer data)
{
  g_return_if_fail(store != NULL);
  wa_store_request_push(store, wa_store_request_new(store, &flush_class, STORE_CALLBACK(done), data));
}

/* Test hooks, not in wa-store.h (tests/unit/test-store.c declares them). With
 * @hold TRUE the worker stops at this point of its queue until called again
 * with FALSE, so that a test can queue writes and see them committed as one
 * group; wa_store_test_commits() counts group-commit transactions. */
void wa_store_test_hold(WaStore *store, gboolean hold);
guint wa_store_test_commits(WaStore *store);
guint wa_store_test_key_loads(WaStore *store);

void
wa_store_test_hold(WaStore *store, gboolean hold)
{
  g_mutex_lock(&store->hold_lock);
  store->held = hold;
  g_cond_broadcast(&store->hold_cond);
  g_mutex_unlock(&store->hold_lock);
  if (hold)
    wa_store_request_push(store, wa_store_request_new(store, &hold_class, NULL, NULL));
}

guint
wa_store_test_commits(WaStore *store)
{
  return (guint) g_atomic_int_get(&store->commits);
}

/* Customer keys unwrapped so far (those not found in the cache). */
guint
wa_store_test_key_loads(WaStore *store)
{
  return (guint) g_atomic_int_get(&store->key_loads);
}

/* ---- transactions (worker) ------------------------------------------------------- */

static void
rollback(WaStore *store)
{
  /* SQLITE_FULL and I/O errors may have rolled it back already */
  if (!sqlite3_get_autocommit(store->db) && sqlite3_exec(store->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
    g_warning("store: rollback failed: %s", sqlite3_errmsg(store->db));
}

static int
wal_hook(void *data, sqlite3 *db, const char *name, int pages)
{
  WaStore *store = data;

  store->wal_pages = pages;
  return SQLITE_OK;
}

static void
checkpoint(WaStore *store)
{
  if (sqlite3_wal_checkpoint_v2(store->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL) != SQLITE_OK) {
    /* nothing is lost: the WAL keeps the commits and the next one retries */
    g_warning("store: checkpoint failed: %s", sqlite3_errmsg(store->db));
    return;
  }
  store->commits_since_checkpoint = 0;
  store->wal_pages = 0;
  store->checkpoint_soon = FALSE;
}

static void
after_commit(WaStore *store)
{
  store->commits_since_checkpoint++;
  g_ptr_array_set_size(store->txn_keys, 0);
  if (store->checkpoint_soon || store->commits_since_checkpoint >= STORE_CHECKPOINT_COMMITS ||
      store->wal_pages >= STORE_CHECKPOINT_PAGES)
    checkpoint(store);
}

static gboolean
error_fails_batch(const GError *error)
{
  return error->domain != WA_STORE_ERROR || error->code == WA_STORE_ERROR_STORAGE;
}

static gboolean
locked(WaStore *store, Request *req)
{
  if (!req->klass->needs_key || store->store_key != NULL)
    return FALSE;
  g_set_error_literal(&req->error, WA_STORE_ERROR, WA_STORE_ERROR_LOCKED,
                      store->opened ? "the store is locked" : "the store is not open");
  return TRUE;
}

/* Whether every write of @batch may commit without a sync. */
static gboolean
batch_unsynced(GPtrArray *batch)
{
  for (guint i = 0; i < batch->len; i++) {
    if (!((Request *) g_ptr_array_index(batch, i))->klass->unsynced)
      return FALSE;
  }
  return TRUE;
}

static void
synced_again(WaStore *store)
{
  if (sqlite3_exec(store->db, "PRAGMA synchronous = FULL", NULL, NULL, NULL) != SQLITE_OK)
    g_warning("store: cannot set synchronous=FULL again: %s", sqlite3_errmsg(store->db));
}

/* One transaction for every write in @batch, each in a savepoint; all are
 * answered here. */
static void
run_batch(WaStore *store, GPtrArray *batch)
{
  g_autoptr(GError) error = NULL;
  gboolean unsynced = batch_unsynced(batch);

  if (store->db == NULL) {
    g_set_error_literal(&error, WA_STORE_ERROR, WA_STORE_ERROR_LOCKED, "the store is not open");
    goto failed;
  }
  /* every other commit keeps synchronous=FULL: set back after this one */
  if ((unsynced && !exec_plain(store, "PRAGMA synchronous = NORMAL", &error)) ||
      !exec_plain(store, "BEGIN IMMEDIATE", &error))
    goto failed;
  for (guint i = 0; i < batch->len; i++) {
    Request *req = g_ptr_array_index(batch, i);
    guint keys = store->txn_keys->len;

    if (locked(store, req))
      continue;
    if (!exec_plain(store, "SAVEPOINT request", &error))
      goto failed;
    if (!req->klass->run(store, req, &req->error)) {
      if (error_fails_batch(req->error)) {
        error = g_error_copy(req->error);
        goto failed;
      }
      txn_keys_forget(store, keys);
      if (!exec_plain(store, "ROLLBACK TO request", &error))
        goto failed;
    }
    if (!exec_plain(store, "RELEASE request", &error))
      goto failed;
  }
  if (!exec_plain(store, "COMMIT", &error))
    goto failed;
  if (unsynced)
    synced_again(store);
  g_atomic_int_inc(&store->commits);
  after_commit(store);
  for (guint i = 0; i < batch->len; i++)
    answer(store, g_ptr_array_index(batch, i));
  return;

failed:
  if (store->db != NULL) {
    rollback(store);
    txn_keys_forget(store, 0);
    if (unsynced)
      synced_again(store);
  }
  for (guint i = 0; i < batch->len; i++) {
    Request *req = g_ptr_array_index(batch, i);

    /* nothing of the transaction is stored: every request says so */
    g_clear_error(&req->error);
    req->error = g_error_copy(error);
    answer(store, req);
  }
}

/* Whether @check (meta 'key_check') opens under @store_key. */
static gboolean
key_check_opens(const WaKey *store_key, GBytes *check)
{
  g_autoptr(GBytes) plain = NULL;

  if (store_key == NULL || check == NULL || g_bytes_get_size(check) == 0)
    return FALSE;
  plain = wa_crypt_open(store_key, "meta", "value", "key_check", g_bytes_get_data(check, NULL), g_bytes_get_size(check),
                        NULL);
  return plain != NULL && g_bytes_get_size(plain) == strlen(KEY_CHECK_PLAIN) &&
         memcmp(g_bytes_get_data(plain, NULL), KEY_CHECK_PLAIN, strlen(KEY_CHECK_PLAIN)) == 0;
}

/* ---- opening (worker) ------------------------------------------------------------- */

typedef struct {
  Request base;
  char *header; /* result */
} OpenRequest;

static gboolean
open_sqlite_error(WaStore *store, int rc, const char *what, GError **error)
{
  if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_IN_USE,
                        "the store is in use (by another Pidgin or Finch, or another account with this number)");
  else
    g_set_error(error, WA_STORE_ERROR, WA_STORE_ERROR_OPEN, "%s: %s", what, sqlite3_errmsg(store->db));
  return FALSE;
}

static gboolean
read_version(WaStore *store, gint64 *version, GError **error)
{
  g_autofree char *text = NULL;
  int rc = wa_sqlite_pragma(store->db, "PRAGMA user_version", &text);

  if (rc != SQLITE_OK)
    return open_sqlite_error(store, rc, "cannot read the store's schema", error);
  *version = g_ascii_strtoll(text != NULL ? text : "0", NULL, 10);
  if (*version > schema_known_version()) {
    g_set_error(error, WA_STORE_ERROR, WA_STORE_ERROR_SCHEMA,
                "the store was written by a newer version of the plugin (schema %" G_GINT64_FORMAT
                ", this one knows up to %" G_GINT64_FORMAT "); it was left untouched",
                *version, schema_known_version());
    return FALSE;
  }
  return TRUE;
}

static gboolean
configure(WaStore *store, GError **error)
{
  g_autofree char *mode = NULL;
  gint64 version;
  int rc;

  rc = wa_sqlite_setup(store->db);
  /* the statement journal of a group commit's savepoints (a page's old
   * content, the first time a request changes it) stays in memory: past
   * 64 KiB SQLite spills it to a file in /var/tmp, outside the store's
   * private directory, and writes every page there twice (a campaign's
   * batches made 8,000 such writes a second) */
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(store->db, "PRAGMA temp_store = MEMORY", NULL, NULL, NULL);
  /* 8 MiB of page cache: a campaign's working set (recipients, their outbox
   * entries and messages, with their indexes) outgrew SQLite's 2 MiB, which
   * read 17 pages a send back from the files (1 with 8 MiB) */
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(store->db, "PRAGMA cache_size = -8192", NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    return open_sqlite_error(store, rc, "cannot configure the store", error);
  /* a newer schema is refused before anything (even the journal mode) changes */
  if (!read_version(store, &version, error))
    return FALSE;
  rc = wa_sqlite_pragma(store->db, "PRAGMA journal_mode = WAL", &mode);
  if (rc != SQLITE_OK)
    return open_sqlite_error(store, rc, "cannot open the store", error);
  if (g_strcmp0(mode, "wal") != 0) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_OPEN, "cannot switch the store to write-ahead logging");
    return FALSE;
  }
  /* sqlite3_wal_autocheckpoint(0) above cleared any hook: ours counts pages */
  sqlite3_wal_hook(store->db, wal_hook, store);
  return TRUE;
}

static gboolean
migrate(WaStore *store, GError **error)
{
  gint64 version;
  gint64 from;
  gint64 known = schema_known_version();
  int rc;

  rc = sqlite3_exec(store->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    return open_sqlite_error(store, rc, "cannot open the store", error);
  if (!read_version(store, &version, error))
    goto failed;
  from = version;
  for (gsize i = 0; i <= G_N_ELEMENTS(migrations); i++) {
    gint64 to = i < G_N_ELEMENTS(migrations) ? migrations[i].version : known;
    const char *sql = i < G_N_ELEMENTS(migrations) ? migrations[i].sql : test_migration_sql;

    if (sql == NULL || to <= version)
      continue;
    if (sqlite3_exec(store->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
      g_set_error(error, WA_STORE_ERROR, WA_STORE_ERROR_SCHEMA,
                  "cannot update the store's schema to version %" G_GINT64_FORMAT ": %s", to,
                  sqlite3_errmsg(store->db));
      goto failed;
    }
    version = to;
  }
  if (version != from) {
    g_autofree char *sql = g_strdup_printf("PRAGMA user_version = %" G_GINT64_FORMAT, version);

    if (sqlite3_exec(store->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
      g_set_error(error, WA_STORE_ERROR, WA_STORE_ERROR_SCHEMA, "cannot update the store's schema: %s",
                  sqlite3_errmsg(store->db));
      goto failed;
    }
  }
  /* nothing changed: this commit writes nothing */
  if (sqlite3_exec(store->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    g_set_error(error, WA_STORE_ERROR, WA_STORE_ERROR_SCHEMA, "cannot update the store's schema: %s",
                sqlite3_errmsg(store->db));
    goto failed;
  }
  return TRUE;

failed:
  rollback(store);
  return FALSE;
}

static gboolean
limit_pages(WaStore *store, GError **error)
{
  g_autofree char *sql = NULL;

  if (store->max_page_count <= 0)
    return TRUE;
  /* SQLite never sets it below the current size */
  sql = g_strdup_printf("PRAGMA max_page_count = %" G_GINT64_FORMAT, store->max_page_count);
  if (wa_sqlite_pragma(store->db, sql, NULL) != SQLITE_OK)
    return wa_store_set_sqlite_error(store, error, "cannot limit the store's size");
  return TRUE;
}

/* meta.value of @name as it is stored: text or blob bytes, or NULL. */
static GBytes *
meta_get(WaStore *store, const char *name, GError **error)
{
  sqlite3_stmt *stmt = wa_store_sql(store, error, "SELECT value FROM meta WHERE name = ?1", "t", name);
  GBytes *value = NULL;
  int rc;

  if (stmt == NULL)
    return NULL;
  rc = wa_store_sql_step(store, stmt, error);
  if (rc == 0)
    return NULL;
  if (rc == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL) {
    const void *data = sqlite3_column_blob(stmt, 0);
    int len = sqlite3_column_bytes(stmt, 0);

    value = g_bytes_new(data, len > 0 ? (gsize) len : 0);
  }
  wa_store_sql_done(stmt);
  if (value == NULL)
    value = g_bytes_new(NULL, 0); /* "absent", told apart by size below */
  return value;
}

static gboolean
meta_put(WaStore *store, const char *name, GBytes *value, GError **error)
{
  return wa_store_sql_exec(store, error,
                           "INSERT INTO meta (name, value) VALUES (?1, ?2) "
                           "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                           "tb", name, value);
}

/* A key kept in meta row @name, sealed under @sealing; NULL with *@absent
 * when there is none, NULL with TAMPERED when it does not open. */
static WaKey *
meta_key(WaStore *store, const char *name, const WaKey *sealing, gboolean *absent, GError **error)
{
  g_autoptr(GBytes) sealed = meta_get(store, name, error);
  g_autoptr(GBytes) plain = NULL;
  WaKey *key = NULL;

  *absent = FALSE;
  if (sealed == NULL)
    return NULL;
  if (g_bytes_get_size(sealed) == 0) {
    *absent = TRUE;
    return NULL;
  }
  plain = wa_crypt_open(sealing, "meta", "value", name, g_bytes_get_data(sealed, NULL), g_bytes_get_size(sealed), NULL);
  if (plain != NULL)
    key = wa_key_from_bytes(g_bytes_get_data(plain, NULL), g_bytes_get_size(plain), NULL);
  if (plain != NULL)
    sodium_memzero((gpointer) g_bytes_get_data(plain, NULL), g_bytes_get_size(plain));
  if (key == NULL)
    g_set_error(error, WA_STORE_ERROR, WA_STORE_ERROR_TAMPERED, "the store's %s was altered", name);
  return key;
}

/* Seals @key under @sealing into meta row @name. */
static gboolean
meta_put_key(WaStore *store, const char *name, const WaKey *sealing, const WaKey *key, GError **error)
{
  g_autoptr(GBytes) sealed = wa_crypt_seal(sealing, "meta", "value", name, wa_key_bytes(key), WA_CRYPT_KEY_BYTES);

  if (sealed == NULL) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_STORAGE, "cannot seal a key for the store");
    return FALSE;
  }
  return meta_put(store, name, sealed, error);
}

/* After the key check: the generation, the index and audit keys (sealed in
 * meta; a new store, or one of schema 2 or older, has none yet: they are
 * derived from the data key as schema 2 did, and *@save_keys asks the caller
 * to seal them), and the previous data key of a rotation under way. */
static gboolean
load_keys(WaStore *store, const WaKey *data_key, gboolean *save_keys, GError **error)
{
  static const struct {
    const char *name;
    WaSubkey legacy;
    gsize offset;
  } kept[] = {
    {"index_key", WA_SUBKEY_INDEX, G_STRUCT_OFFSET(WaStore, index_key)},
    {"audit_key", WA_SUBKEY_AUDIT, G_STRUCT_OFFSET(WaStore, audit_key)},
  };
  g_autoptr(WaKey) previous = NULL;
  gboolean found = FALSE, absent = FALSE;

  *save_keys = FALSE;
  if (!wa_store_sql_int(store, &store->key_gen, &found, error, "SELECT value FROM meta WHERE name = 'key_gen'", NULL))
    return FALSE;
  if (!found)
    store->key_gen = 1;
  for (guint i = 0; i < G_N_ELEMENTS(kept); i++) {
    WaKey **slot = G_STRUCT_MEMBER_P(store, kept[i].offset);

    *slot = meta_key(store, kept[i].name, store->store_key, &absent, error);
    if (*slot == NULL && !absent)
      return FALSE;
    if (*slot == NULL) {
      *slot = wa_key_derive(data_key, kept[i].legacy);
      *save_keys = TRUE;
    }
    if (*slot == NULL) {
      g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_WRONG_KEY, "cannot make the store's keys");
      return FALSE;
    }
  }
  previous = meta_key(store, "key_prev", store->store_key, &absent, error);
  if (previous == NULL)
    return absent;
  store->old_store_key = wa_key_derive(previous, WA_SUBKEY_STORE);
  if (store->old_store_key == NULL) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_WRONG_KEY, "cannot derive the store's keys");
    return FALSE;
  }
  return TRUE;
}

static gboolean
save_keys(WaStore *store, GError **error)
{
  return meta_put_key(store, "index_key", store->store_key, store->index_key, error) &&
         meta_put_key(store, "audit_key", store->store_key, store->audit_key, error);
}

static void
close_db(WaStore *store)
{
  g_hash_table_remove_all(store->statements);
  if (store->db != NULL && sqlite3_close(store->db) != SQLITE_OK)
    g_warning("store: cannot close the database: %s", sqlite3_errmsg(store->db));
  store->db = NULL;
  store->opened = FALSE;
}

static gboolean
run_open(WaStore *store, Request *req, GError **error)
{
  OpenRequest *open_req = (OpenRequest *) req;
  g_autofree char *dir = g_path_get_dirname(store->path);
  g_autoptr(GBytes) header = NULL;
  g_autoptr(GError) local = NULL;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
  int rc;

  /* SQLite gives -wal (and -shm) files the database's mode: create it 0600
   * first, and fix files a crash may have left behind */
  if (!wa_sqlite_private_db(dir, "the store directory", store->path, &local)) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_OPEN, local->message);
    return FALSE;
  }
  rc = sqlite3_open_v2(store->path, &store->db, flags, NULL);
  if (rc != SQLITE_OK) {
    g_set_error(error, WA_STORE_ERROR, WA_STORE_ERROR_OPEN, "cannot open the store: %s",
                store->db != NULL ? sqlite3_errmsg(store->db) : sqlite3_errstr(rc));
    goto failed;
  }
  sqlite3_extended_result_codes(store->db, 1);
  if (!configure(store, error) || !migrate(store, error) || !limit_pages(store, error))
    goto failed;
  header = meta_get(store, "key_header", error);
  if (header == NULL)
    goto failed;
  if (g_bytes_get_size(header) > 0)
    open_req->header = g_strndup(g_bytes_get_data(header, NULL), g_bytes_get_size(header));
  store->opened = TRUE;
  return TRUE;

failed:
  close_db(store);
  return FALSE;
}

static void
answer_open(Request *req)
{
  OpenRequest *open_req = (OpenRequest *) req;

  if (req->cb != NULL)
    ((WaStoreOpenFunc) req->cb)(req->error == NULL ? open_req->header : NULL, req->error, req->data);
}

static void
finalize_open(Request *req)
{
  g_free(((OpenRequest *) req)->header);
}

static const RequestClass open_class = {
  .mode = MODE_SELF,
  .size = sizeof(OpenRequest),
  .run = run_open,
  .answer = answer_open,
  .finalize = finalize_open,
};

/* ---- unlocking (worker) ----------------------------------------------------------- */

typedef struct {
  Request base;
  WaKey *data_key;
  char *header;
} UnlockRequest;

static gboolean
run_unlock(WaStore *store, Request *req, GError **error)
{
  UnlockRequest *unlock = (UnlockRequest *) req;
  g_autoptr(GBytes) header = NULL;
  g_autoptr(GBytes) check = NULL;
  g_autoptr(GBytes) sealed = NULL;
  gboolean fresh;
  gboolean keys_missing = FALSE;
  gint64 uncertain = 0;

  if (!store->opened) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_LOCKED, "the store is not open");
    return FALSE;
  }
  header = meta_get(store, "key_header", error);
  if (header == NULL)
    return FALSE;
  check = meta_get(store, "key_check", error);
  if (check == NULL)
    return FALSE;
  fresh = g_bytes_get_size(header) == 0;
  if (fresh && unlock->header == NULL) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID, "a new store needs its key header");
    return FALSE;
  }
  if (!fresh && g_bytes_get_size(check) == 0) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_TAMPERED, "the store's key check is missing");
    return FALSE;
  }

  forget_keys(store);
  store->store_key = wa_key_derive(unlock->data_key, WA_SUBKEY_STORE);
  if (store->store_key == NULL) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_WRONG_KEY, "cannot derive the store's keys");
    goto failed;
  }
  if (!fresh && !key_check_opens(store->store_key, check)) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_WRONG_KEY,
                        "the key does not unlock this store (wrong passphrase, key file or store)");
    goto failed;
  }
  if (!load_keys(store, unlock->data_key, &keys_missing, error))
    goto failed;

  /* the key is right: now (and only now) write */
  if (!exec_plain(store, "BEGIN IMMEDIATE", error))
    goto failed;
  if (keys_missing && !save_keys(store, error))
    goto rollback;
  if (fresh) {
    if (!wa_store_seal(store->store_key, "meta", "value", "key_check", KEY_CHECK_PLAIN, &sealed, error) ||
        !wa_store_sql_exec(store, error, "INSERT INTO meta (name, value) VALUES ('key_check', ?1)", "b", sealed) ||
        !wa_store_audit_row(store, req->now, "store.created", NULL, NULL, error))
      goto rollback;
  }
  if (unlock->header != NULL) {
    if (!wa_store_sql_exec(store, error,
                           "INSERT INTO meta (name, value) VALUES ('key_header', ?1) "
                           "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                           "t", unlock->header) ||
        (!fresh && !wa_store_audit_row(store, req->now, "key.rewrapped", NULL, NULL, error)))
      goto rollback;
  }
  /* sends a previous run left in flight may have gone out */
  if (!wa_store_sql_exec(store, error, "UPDATE outbox SET state = ?1, updated = ?2 WHERE state = ?3", "iii",
                         (gint64) WA_STORE_OUTBOX_UNCERTAIN, req->now, (gint64) WA_STORE_OUTBOX_SENDING))
    goto rollback;
  uncertain = sqlite3_changes(store->db);
  if (uncertain > 0) {
    g_autofree char *detail = g_strdup_printf("%" G_GINT64_FORMAT, uncertain);

    if (!wa_store_audit_row(store, req->now, "outbox.uncertain", NULL, detail, error))
      goto rollback;
  }
  if (!exec_plain(store, "COMMIT", error))
    goto rollback;
  g_atomic_int_inc(&store->commits);
  after_commit(store);
  return TRUE;

rollback:
  rollback(store);
failed:
  forget_keys(store);
  return FALSE;
}

static void
finalize_unlock(Request *req)
{
  UnlockRequest *unlock = (UnlockRequest *) req;

  g_clear_pointer(&unlock->data_key, wa_key_free);
  g_free(unlock->header);
}

static const RequestClass unlock_class = {
  .mode = MODE_SELF,
  .size = sizeof(UnlockRequest),
  .run = run_unlock,
  .answer = answer_done,
  .finalize = finalize_unlock,
};

/* ---- the worker ---------------------------------------------------------------------- */

static gpointer
worker_main(gpointer data)
{
  WaStore *store = data;
  Request *next = NULL;

  for (;;) {
    Request *req = next != NULL ? next : g_async_queue_pop(store->queue);

    next = NULL;
    if (req->klass == &stop_class) {
      request_free(req); /* no one waits for its answer */
      break;
    }
    if (req->klass == &hold_class) {
      g_mutex_lock(&store->hold_lock);
      while (store->held)
        g_cond_wait(&store->hold_cond, &store->hold_lock);
      g_mutex_unlock(&store->hold_lock);
      request_free(req);
      continue;
    }
    if (req->klass->mode == MODE_WRITE) {
      g_autoptr(GPtrArray) batch = g_ptr_array_new();

      /* group commit: every write queued right behind this one joins it;
       * the first other request ends the batch and runs after it, in order */
      g_ptr_array_add(batch, req);
      while (batch->len < STORE_MAX_BATCH && (next = g_async_queue_try_pop(store->queue)) != NULL) {
        if (next->klass->mode != MODE_WRITE)
          break;
        g_ptr_array_add(batch, next);
        next = NULL;
      }
      run_batch(store, batch);
      continue;
    }
    /* a key implies an open database */
    if (!locked(store, req))
      req->klass->run(store, req, &req->error);
    answer(store, req);
  }

  if (store->db != NULL) {
    if (store->commits_since_checkpoint > 0)
      checkpoint(store);
    close_db(store);
  }
  forget_keys(store);
  return NULL;
}

static void
statement_free(gpointer stmt)
{
  sqlite3_finalize(stmt);
}

/* ---- public life cycle ------------------------------------------------------------ */

WaStore *
wa_store_open(WaLoop *loop, const char *path, const WaStoreOptions *options, WaStoreOpenFunc done, gpointer data)
{
  WaStore *store;
  g_autoptr(GError) local = NULL;
  int fds[2];

  g_return_val_if_fail(loop != NULL, NULL);
  g_return_val_if_fail(path != NULL, NULL);
  if (!wa_sodium_init(NULL) || !g_unix_open_pipe(fds, FD_CLOEXEC, NULL))
    return NULL;
  if (!g_unix_set_fd_nonblocking(fds[0], TRUE, NULL) || !g_unix_set_fd_nonblocking(fds[1], TRUE, NULL)) {
    close(fds[0]);
    close(fds[1]);
    return NULL;
  }
  store = g_new0(WaStore, 1);
  store->loop = loop;
  store->clock = options != NULL && options->clock != NULL ? options->clock : wa_clock_system();
  store->max_page_count = options != NULL ? options->max_page_count : 0;
  store->path = g_strdup(path);
  store->pipe_read = fds[0];
  store->pipe_write = fds[1];
  store->queue = g_async_queue_new();
  store->answers = g_async_queue_new();
  store->statements = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, statement_free);
  store->key_cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, cached_key_free);
  store->txn_keys = g_ptr_array_new_with_free_func(g_free);
  g_mutex_init(&store->hold_lock);
  g_cond_init(&store->hold_cond);

  /* queued before the worker starts: it is the first thing it does */
  g_async_queue_push(store->queue, wa_store_request_new(store, &open_class, STORE_CALLBACK(done), data));
  store->worker = g_thread_try_new("wa-store", worker_main, store, &local);
  if (store->worker == NULL) {
    store_free(store);
    return NULL;
  }
  store->watch = wa_loop_input_add(loop, store->pipe_read, WA_IO_READ, on_answers, store);
  return store;
}

void
wa_store_unlock(WaStore *store, const WaKey *data_key, const char *new_header_json, WaStoreDoneFunc done, gpointer data)
{
  UnlockRequest *req;

  g_return_if_fail(store != NULL);
  g_return_if_fail(data_key != NULL);
  req = wa_store_request_new(store, &unlock_class, STORE_CALLBACK(done), data);
  req->data_key = wa_key_copy(data_key);
  req->header = g_strdup(new_header_json);
  wa_store_request_push(store, req);
}

void
wa_store_close(WaStore *store)
{
  if (store == NULL)
    return;
  g_return_if_fail(!store->closed);
  /* everything queued before STOP runs (nothing accepted is lost); the
   * answers are dropped with the store */
  g_async_queue_push(store->queue, wa_store_request_new(store, &stop_class, NULL, NULL));
  store->closed = TRUE;
  g_thread_join(store->worker);
  store->worker = NULL;
  wa_loop_input_clear(store->loop, &store->watch);
  if (store->dispatching > 0)
    return; /* on_answers() frees it when the callback returns */
  store_free(store);
}

/* ---- replacing the key header of an unlocked store -------------------------------- */

typedef struct {
  Request base;
  WaKey *data_key;
  char *header;
} ReplaceHeaderRequest;

/* A write of its own (it joins a group commit): the key check first, so a
 * wrong key or an unreadable header changes nothing; then the header and an
 * audit row. Unlike a second wa_store_unlock(), it leaves the store's keys
 * and the outbox alone. */
static gboolean
run_replace_header(WaStore *store, Request *req, GError **error)
{
  ReplaceHeaderRequest *replace = (ReplaceHeaderRequest *) req;
  /* the copy fails only without secure memory */
  g_autoptr(WaKey) store_key = replace->data_key != NULL ? wa_key_derive(replace->data_key, WA_SUBKEY_STORE) : NULL;
  g_autoptr(WaKeyHeader) parsed = NULL;
  g_autoptr(GBytes) check = NULL;

  if (store_key == NULL) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_WRONG_KEY, "cannot derive the store's keys");
    return FALSE;
  }
  check = meta_get(store, "key_check", error);
  if (check == NULL)
    return FALSE;
  if (!key_check_opens(store_key, check)) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_WRONG_KEY, "the key does not belong to this store");
    return FALSE;
  }
  /* a header that cannot be read back would lock the data away for good */
  parsed = wa_key_header_from_json(replace->header, NULL);
  if (parsed == NULL) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID, "the new key header is not readable");
    return FALSE;
  }
  return wa_store_sql_exec(store, error,
                           "INSERT INTO meta (name, value) VALUES ('key_header', ?1) "
                           "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                           "t", replace->header) &&
         wa_store_audit_row(store, req->now, "key.rewrapped", NULL, NULL, error);
}

static void
finalize_replace_header(Request *req)
{
  ReplaceHeaderRequest *replace = (ReplaceHeaderRequest *) req;

  g_clear_pointer(&replace->data_key, wa_key_free);
  g_free(replace->header);
}

static const RequestClass replace_header_class = {
  .mode = MODE_WRITE,
  .needs_key = TRUE,
  .size = sizeof(ReplaceHeaderRequest),
  .run = run_replace_header,
  .answer = answer_done,
  .finalize = finalize_replace_header,
};

void
wa_store_replace_header(WaStore *store, const WaKey *data_key, const char *new_header_json, WaStoreDoneFunc done,
                        gpointer data)
{
  ReplaceHeaderRequest *req;

  g_return_if_fail(store != NULL);
  g_return_if_fail(data_key != NULL);
  g_return_if_fail(new_header_json != NULL);
  req = wa_store_request_new(store, &replace_header_class, STORE_CALLBACK(done), data);
  req->data_key = wa_key_copy(data_key);
  req->header = g_strdup(new_header_json);
  wa_store_request_push(store, req);
}

/* ---- key rotation (worker) ------------------------------------------------------------
 *
 * Begin, in one transaction: the new header (the new data key under the same
 * KEK, a new recovery key), the key check, index and audit keys and account
 * settings sealed under the new data key's store key, the old data key sealed
 * under it too ('key_prev'), the new recovery code ('recovery_pending') and
 * the generation. Then slices, each one transaction, each re-keying whole
 * customers (a new random key; every sealed column of their rows opened with
 * the old one and sealed again; the new key wrapped under the new data key;
 * every row's key_gen moved). A customer is read with the key their
 * generation names, so every row opens at every moment, and a crash loses at
 * most the slice in flight (rolled back: still the old generation). The slice
 * that finds no customer left deletes 'key_prev' and 'recovery_pending' and
 * hands the code out. */

typedef struct {
  Request base;
  WaKey *data_key;
  WaKey *new_key;
  char *header;
  char *recovery_code;
} RotateBeginRequest;

/* Account settings (customer_id '') sealed again from @from to @to. */
static gboolean
reseal_account_settings(WaStore *store, const WaKey *from, const WaKey *to, gint64 gen, GError **error)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GPtrArray) values = g_ptr_array_new_with_free_func((GDestroyNotify) bytes_wipe_unref);
  sqlite3_stmt *stmt = wa_store_sql(store, error, "SELECT name, value FROM settings WHERE customer_id = ''", NULL);
  int rc;

  if (stmt == NULL)
    return FALSE;
  while ((rc = wa_store_sql_step(store, stmt, error)) == SQLITE_ROW) {
    char *name = wa_store_col_text(stmt, 0);
    gboolean tampered = FALSE;
    GBytes *plain = open_blob(from, "settings", "value", name, stmt, 1, &tampered);
    GBytes *sealed;

    if (plain != NULL)
      sealed = wa_crypt_seal(to, "settings", "value", name, g_bytes_get_data(plain, NULL), g_bytes_get_size(plain));
    else /* did not open before either: kept as it is */
      sealed = g_bytes_new(sqlite3_column_blob(stmt, 1), (gsize) sqlite3_column_bytes(stmt, 1));
    bytes_wipe_unref(plain);
    g_ptr_array_add(names, name);
    g_ptr_array_add(values, sealed);
  }
  if (rc == 0)
    return FALSE;
  wa_store_sql_done(stmt);
  for (guint i = 0; i < names->len; i++) {
    if (values->pdata[i] == NULL) {
      g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_STORAGE, "cannot seal a value for the store");
      return FALSE;
    }
    if (!wa_store_sql_exec(store, error,
                           "UPDATE settings SET value = ?1, key_gen = ?2 WHERE customer_id = '' AND name = ?3", "bit",
                           values->pdata[i], gen, names->pdata[i]))
      return FALSE;
  }
  return TRUE;
}

static gboolean
run_rotate_begin(WaStore *store, Request *req, GError **error)
{
  RotateBeginRequest *rot = (RotateBeginRequest *) req;
  g_autoptr(WaKey) given = rot->data_key != NULL ? wa_key_derive(rot->data_key, WA_SUBKEY_STORE) : NULL;
  g_autoptr(WaKey) new_store_key = rot->new_key != NULL ? wa_key_derive(rot->new_key, WA_SUBKEY_STORE) : NULL;
  g_autoptr(WaKeyHeader) parsed = NULL;
  g_autoptr(GBytes) check = NULL;
  g_autoptr(GBytes) sealed = NULL;
  g_autoptr(GBytes) code = NULL;
  WaKey *previous = store->store_key;
  gint64 gen = store->key_gen + 1;

  if (given == NULL || new_store_key == NULL) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_WRONG_KEY, "cannot derive the store's keys");
    return FALSE;
  }
  check = meta_get(store, "key_check", error);
  if (check == NULL)
    return FALSE;
  if (!key_check_opens(given, check)) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_WRONG_KEY, "the key does not belong to this store");
    return FALSE;
  }
  if (store->old_store_key != NULL) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID,
                        "a key rotation is already under way; it goes on by itself");
    return FALSE;
  }
  parsed = wa_key_header_from_json(rot->header, NULL);
  if (parsed == NULL || rot->recovery_code == NULL) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID, "the new key header is not readable");
    return FALSE;
  }
  code =
    wa_crypt_seal(new_store_key, "meta", "value", "recovery_pending", rot->recovery_code, strlen(rot->recovery_code));
  if (!wa_store_seal(new_store_key, "meta", "value", "key_check", KEY_CHECK_PLAIN, &sealed, error) || code == NULL) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_STORAGE, "cannot seal a value for the store");
    return FALSE;
  }
  if (!exec_plain(store, "BEGIN IMMEDIATE", error))
    return FALSE;
  /* the audit row below seals the chain's head under the new key */
  store->store_key = new_store_key;
  if (!wa_store_sql_exec(store, error,
                         "INSERT INTO meta (name, value) VALUES ('key_header', ?1) "
                         "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                         "t", rot->header) ||
      !meta_put(store, "key_check", sealed, error) || !meta_put(store, "recovery_pending", code, error) ||
      !meta_put_key(store, "key_prev", new_store_key, rot->data_key, error) || !save_keys(store, error) ||
      !wa_store_sql_exec(store, error,
                         "INSERT INTO meta (name, value) VALUES ('key_gen', ?1) "
                         "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                         "i", gen) ||
      !reseal_account_settings(store, previous, new_store_key, gen, error) ||
      !wa_store_audit_row(store, req->now, "key.rotation.started", NULL, NULL, error) ||
      !exec_plain(store, "COMMIT", error)) {
    store->store_key = previous;
    rollback(store);
    return FALSE;
  }
  g_atomic_int_inc(&store->commits);
  after_commit(store);
  store->old_store_key = previous;
  store->store_key = g_steal_pointer(&new_store_key);
  store->key_gen = gen;
  return TRUE;
}

static void
finalize_rotate_begin(Request *req)
{
  RotateBeginRequest *rot = (RotateBeginRequest *) req;

  g_clear_pointer(&rot->data_key, wa_key_free);
  g_clear_pointer(&rot->new_key, wa_key_free);
  g_free(rot->header);
  wa_store_wipe_free(rot->recovery_code);
}

static const RequestClass rotate_begin_class = {
  .mode = MODE_SELF,
  .needs_key = TRUE,
  .size = sizeof(RotateBeginRequest),
  .run = run_rotate_begin,
  .answer = answer_done,
  .finalize = finalize_rotate_begin,
};

void
wa_store_rotate_begin(WaStore *store, const WaKey *data_key, const WaKey *new_key, const char *new_header_json,
                      const char *recovery_code, WaStoreDoneFunc done, gpointer data)
{
  RotateBeginRequest *req;

  g_return_if_fail(store != NULL && data_key != NULL && new_key != NULL);
  g_return_if_fail(new_header_json != NULL && recovery_code != NULL);
  req = wa_store_request_new(store, &rotate_begin_class, STORE_CALLBACK(done), data);
  req->data_key = wa_key_copy(data_key);
  req->new_key = wa_key_copy(new_key);
  req->header = g_strdup(new_header_json);
  req->recovery_code = g_strdup(recovery_code);
  wa_store_request_push(store, req);
}

/* The sealed columns of one table whose rows a customer's key seals. @select
 * gives the associated data's row id, the row's key and the columns (customer
 * id in ?1); @update sets the columns (?1..?n), key_gen (?n+1) where
 * customer_id = ?n+2 and the row's key = ?n+3. */
typedef struct {
  const char *table;
  const char *select;
  const char *update;
  const char *columns[5];
} SealedTable;

static const SealedTable sealed_tables[] = {
  {"customers",
   "SELECT id, id, wa_id, bsuid, name FROM customers WHERE id = ?1",
   "UPDATE customers SET wa_id = ?1, bsuid = ?2, name = ?3, key_gen = ?4 WHERE id = ?5 AND id = ?6",
   {"wa_id", "bsuid", "name"}},
  {"messages",
   "SELECT id, id, body, caption, raw, wamid, error FROM messages WHERE customer_id = ?1",
   "UPDATE messages SET body = ?1, caption = ?2, raw = ?3, wamid = ?4, error = ?5, key_gen = ?6 "
   "WHERE customer_id = ?7 AND id = ?8",
   {"body", "caption", "raw", "wamid", "error"}},
  {"outbox",
   "SELECT CAST(id AS TEXT), id, payload FROM outbox WHERE customer_id = ?1",
   "UPDATE outbox SET payload = ?1, key_gen = ?2 WHERE customer_id = ?3 AND id = ?4",
   {"payload"}},
  {"consent",
   "SELECT id, seq, note FROM consent WHERE customer_id = ?1",
   "UPDATE consent SET note = ?1, key_gen = ?2 WHERE customer_id = ?3 AND seq = ?4",
   {"note"}},
  {"settings",
   "SELECT customer_id || '/' || name, name, value FROM settings WHERE customer_id = ?1",
   "UPDATE settings SET value = ?1, key_gen = ?2 WHERE customer_id = ?3 AND name = ?4",
   {"value"}},
  {"media",
   "SELECT id, id, media_id, sha256, filename, error, file_key FROM media WHERE customer_id = ?1",
   "UPDATE media SET media_id = ?1, sha256 = ?2, filename = ?3, error = ?4, file_key = ?5, key_gen = ?6 "
   "WHERE customer_id = ?7 AND id = ?8",
   {"media_id", "sha256", "filename", "error", "file_key"}},
  {"campaign_recipients",
   "SELECT id, id, params FROM campaign_recipients WHERE customer_id = ?1",
   "UPDATE campaign_recipients SET params = ?1, key_gen = ?2 WHERE customer_id = ?3 AND id = ?4",
   {"params"}},
};

typedef struct {
  char *row_key;
  GBytes *values[5];
} ResealedRow;

static void
resealed_row_free(gpointer data)
{
  ResealedRow *row = data;

  g_free(row->row_key);
  for (guint i = 0; i < G_N_ELEMENTS(row->values); i++)
    if (row->values[i] != NULL)
      g_bytes_unref(row->values[i]);
  g_free(row);
}

/* Every row of @customer_id in @t sealed again from @from (NULL: the old key
 * is lost, values are kept as they are) to @to; *@rows counts them. */
static gboolean
reseal_rows(WaStore *store, const SealedTable *t, const char *customer_id, const WaKey *from, const WaKey *to,
            guint *rows, GError **error)
{
  g_autoptr(GPtrArray) resealed = g_ptr_array_new_with_free_func(resealed_row_free);
  sqlite3_stmt *stmt = wa_store_sql(store, error, t->select, "t", customer_id);
  guint n = 0;
  int rc;

  while (n < G_N_ELEMENTS(t->columns) && t->columns[n] != NULL)
    n++;
  if (stmt == NULL)
    return FALSE;
  while ((rc = wa_store_sql_step(store, stmt, error)) == SQLITE_ROW) {
    ResealedRow *row = g_new0(ResealedRow, 1);
    g_autofree char *ad_id = wa_store_col_text(stmt, 0);

    row->row_key = wa_store_col_text(stmt, 1);
    g_ptr_array_add(resealed, row);
    for (guint i = 0; i < n; i++) {
      gboolean tampered = FALSE;
      GBytes *plain;

      if (sqlite3_column_type(stmt, 2 + i) == SQLITE_NULL)
        continue;
      plain = from != NULL ? open_blob(from, t->table, t->columns[i], ad_id, stmt, 2 + (int) i, &tampered) : NULL;
      if (plain != NULL)
        row->values[i] =
          wa_crypt_seal(to, t->table, t->columns[i], ad_id, g_bytes_get_data(plain, NULL), g_bytes_get_size(plain));
      else /* did not open before either: kept as it is */
        row->values[i] =
          g_bytes_new(sqlite3_column_blob(stmt, 2 + (int) i), (gsize) sqlite3_column_bytes(stmt, 2 + (int) i));
      bytes_wipe_unref(plain);
      if (row->values[i] == NULL) {
        wa_store_sql_done(stmt);
        g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_STORAGE, "cannot seal a value for the store");
        return FALSE;
      }
    }
  }
  if (rc == 0)
    return FALSE;
  wa_store_sql_done(stmt);
  for (guint r = 0; r < resealed->len; r++) {
    ResealedRow *row = resealed->pdata[r];
    sqlite3_stmt *update = wa_store_sql(store, error, t->update, NULL);
    int bound = SQLITE_OK;

    if (update == NULL)
      return FALSE;
    for (guint i = 0; i < n && bound == SQLITE_OK; i++)
      bound = row->values[i] != NULL ? sqlite3_bind_blob(update, (int) i + 1, g_bytes_get_data(row->values[i], NULL),
                                                         (int) g_bytes_get_size(row->values[i]), SQLITE_STATIC)
                                     : sqlite3_bind_null(update, (int) i + 1);
    if (bound == SQLITE_OK)
      bound = sqlite3_bind_int64(update, (int) n + 1, store->key_gen);
    if (bound == SQLITE_OK)
      bound = sqlite3_bind_text(update, (int) n + 2, customer_id, -1, SQLITE_STATIC);
    if (bound == SQLITE_OK)
      bound = sqlite3_bind_text(update, (int) n + 3, row->row_key, -1, SQLITE_STATIC);
    if (bound != SQLITE_OK) {
      wa_store_sql_done(update);
      return wa_store_set_sqlite_error(store, error, "cannot bind a store statement");
    }
    rc = wa_store_sql_step(store, update, error);
    if (rc == 0)
      return FALSE;
    wa_store_sql_done(update);
  }
  *rows += resealed->len;
  return TRUE;
}

/* A new key for @customer_id and every sealed column of theirs under it. */
static gboolean
rekey_customer(WaStore *store, const char *customer_id, guint *rows, GError **error)
{
  g_autoptr(GError) local = NULL;
  const WaKey *cached = wa_store_customer_key(store, customer_id, &local);
  g_autoptr(WaKey) old_key = wa_key_copy(cached); /* the cache may evict it */
  g_autoptr(WaKey) new_key = NULL;
  g_autoptr(GBytes) wrapped = NULL;

  if (cached == NULL && !g_error_matches(local, WA_STORE_ERROR, WA_STORE_ERROR_TAMPERED)) {
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
  }
  /* a customer key that does not open left their rows unreadable already:
   * they get a new key all the same, and their values stay as they are */
  new_key = wa_key_new_random(NULL);
  if (new_key != NULL)
    wrapped =
      wa_crypt_seal(store->store_key, "customers", "key", customer_id, wa_key_bytes(new_key), WA_CRYPT_KEY_BYTES);
  if (wrapped == NULL) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_STORAGE, "cannot wrap a customer key");
    return FALSE;
  }
  wa_store_customer_key_forget(store, customer_id);
  for (guint i = 0; i < G_N_ELEMENTS(sealed_tables); i++)
    if (!reseal_rows(store, &sealed_tables[i], customer_id, old_key, new_key, rows, error))
      return FALSE;
  return wa_store_sql_exec(store, error, "UPDATE customers SET wrapped_key = ?1, key_gen = ?2 WHERE id = ?3", "bit",
                           wrapped, store->key_gen, customer_id);
}

typedef struct {
  Request base;
  guint max_rows;
  gboolean active;
  gboolean finished;
  guint64 done;
  guint64 total;
  char *recovery_code;
} RotateStepRequest;

static gboolean
rotate_count(WaStore *store, RotateStepRequest *step, GError **error)
{
  gint64 total = 0, left = 0;

  if (!wa_store_sql_int(store, &total, NULL, error,
                        "SELECT (SELECT count(*) FROM customers) + (SELECT count(*) FROM messages)", NULL) ||
      !wa_store_sql_int(store, &left, NULL, error,
                        "SELECT (SELECT count(*) FROM customers WHERE key_gen <> ?1)"
                        " + (SELECT count(*) FROM messages WHERE key_gen <> ?1)",
                        "i", store->key_gen))
    return FALSE;
  step->total = (guint64) total;
  step->done = (guint64) (total - left);
  return TRUE;
}

static gboolean
run_rotate_step(WaStore *store, Request *req, GError **error)
{
  RotateStepRequest *step = (RotateStepRequest *) req;
  guint rows = 0, customers = 0;
  gboolean found = TRUE;

  if (store->old_store_key == NULL)
    return TRUE; /* no rotation under way */
  step->active = TRUE;
  if (!exec_plain(store, "BEGIN IMMEDIATE", error))
    return FALSE;
  while (rows < step->max_rows) {
    g_autofree char *customer_id = NULL;
    sqlite3_stmt *stmt =
      wa_store_sql(store, error, "SELECT id FROM customers WHERE key_gen <> ?1 LIMIT 1", "i", store->key_gen);
    int rc;

    if (stmt == NULL || (rc = wa_store_sql_step(store, stmt, error)) == 0)
      goto rollback;
    found = rc == SQLITE_ROW;
    if (found)
      customer_id = wa_store_col_text(stmt, 0);
    wa_store_sql_done(stmt);
    if (!found)
      break;
    if (!rekey_customer(store, customer_id, &rows, error))
      goto rollback;
    customers++;
    if ((gint) customers == g_atomic_int_get(&store->rotate_fail_after)) {
      g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_STORAGE, "test: the rotation stops here");
      goto rollback;
    }
  }
  if (!found) {
    g_autoptr(GBytes) sealed = meta_get(store, "recovery_pending", error);
    GBytes *code;

    if (sealed == NULL)
      goto rollback;
    code = g_bytes_get_size(sealed) > 0 ? wa_crypt_open(store->store_key, "meta", "value", "recovery_pending",
                                                        g_bytes_get_data(sealed, NULL), g_bytes_get_size(sealed), NULL)
                                        : NULL;
    if (code != NULL)
      step->recovery_code = g_strndup(g_bytes_get_data(code, NULL), g_bytes_get_size(code));
    bytes_wipe_unref(code);
    if (!wa_store_sql_exec(store, error, "DELETE FROM meta WHERE name IN ('key_prev', 'recovery_pending')", NULL) ||
        !wa_store_audit_row(store, req->now, "key.rotated", NULL, NULL, error))
      goto rollback;
  }
  if (!rotate_count(store, step, error) || !exec_plain(store, "COMMIT", error))
    goto rollback;
  g_atomic_int_inc(&store->commits);
  after_commit(store);
  if (!found) {
    step->finished = TRUE;
    g_clear_pointer(&store->old_store_key, wa_key_free);
    store->checkpoint_soon = TRUE; /* old ciphertexts out of the WAL */
  }
  return TRUE;

rollback:
  rollback(store);
  /* keys of customers re-keyed in it were dropped from the cache: reloaded */
  wa_store_wipe_free(g_steal_pointer(&step->recovery_code));
  return FALSE;
}

static void
answer_rotate_step(Request *req)
{
  RotateStepRequest *step = (RotateStepRequest *) req;
  WaStoreRotateProgress progress = {
    .active = step->active,
    .finished = step->finished,
    .done = step->done,
    .total = step->total,
    .recovery_code = step->recovery_code,
  };

  if (req->cb != NULL)
    ((WaStoreRotateFunc) req->cb)(req->error == NULL ? &progress : NULL, req->error, req->data);
}

static void
finalize_rotate_step(Request *req)
{
  wa_store_wipe_free(((RotateStepRequest *) req)->recovery_code);
}

static const RequestClass rotate_step_class = {
  .mode = MODE_SELF,
  .needs_key = TRUE,
  .size = sizeof(RotateStepRequest),
  .run = run_rotate_step,
  .answer = answer_rotate_step,
  .finalize = finalize_rotate_step,
};

void
wa_store_rotate_step(WaStore *store, guint max_rows, WaStoreRotateFunc done, gpointer data)
{
  RotateStepRequest *req;

  g_return_if_fail(store != NULL);
  req = wa_store_request_new(store, &rotate_step_class, STORE_CALLBACK(done), data);
  req->max_rows = MAX(max_rows, 1);
  wa_store_request_push(store, req);
}

/* Test hook (not in wa-store.h): the next rotation slices fail (rolled back,
 * as a crash would leave them) after re-keying @customers customers; 0 turns
 * it off. */
void wa_store_test_rotate_fail_after(WaStore *store, guint customers);

void
wa_store_test_rotate_fail_after(WaStore *store, guint customers)
{
  g_atomic_int_set(&store->rotate_fail_after, (gint) customers);
}
