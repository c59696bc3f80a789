/* test-store.c: the encrypted per-account store (plugin/core/wa-store*.c) as
 * the plugin and the disk see it: files and modes, the exclusive lock, the
 * schema and its migrations, the key check, customers (BSUID then phone: one
 * customer), messages (dedupe, monotonic window and statuses, history), the
 * outbox state machine across a restart, settings, the audit chain, the
 * consent ledger, export, erasure, suppression, retention, storage failures
 * and group commit; and what an attacker with the file finds: no plaintext,
 * and swapped or moved ciphertexts that do not open.
 *
 * Each test runs in a fresh temporary directory, on the default GLib main
 * context (wa_loop_glib()), which it iterates against a deadline. Raw SQL on
 * the file happens only while the store is closed. Must not: sleep to wait
 * for the worker, rely on file permissions to provoke failures (CI runs as
 * root; storage failures come from max_page_count), or read the database
 * file while this process has it open (closing a descriptor drops SQLite's
 * locks). */
#include "test-util.h"
#include "wa-store.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <sqlite3.h>
#include <string.h>
#include <errno.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wa-json.h"

/* wa-store.c's test hooks (deliberately not in wa-store.h). */
void wa_store_test_hold(WaStore *store, gboolean hold);
guint wa_store_test_commits(WaStore *store);
guint wa_store_test_key_loads(WaStore *store);
void wa_store_test_set_extra_migration(const char *sql);
void wa_store_test_rotate_fail_after(WaStore *store, guint customers);

#define NOW 1751250000
#define DAY (24 * 3600)
#define DEADLINE_S 20
#define HEADER "{\"test-header\":1}"

#define WA_ID_A "4915112345678"
#define WA_ID_B "14155550123"
#define BSUID_A "US.13491208655302741918"
#define NAME_A "Ada Lovelace-Zeta"
#define NAME_B "Bruno Quokka"
#define BODY_A "the parcel code is QX-7781 (Ada)"
#define BODY_B "Bruno wants the blue teapot"

typedef struct {
  char *tmp;
  char *dir;  /* tmp/store: created by the store */
  char *path; /* dir/account.db */
  WaClock *clock;
  WaKey *key;
  WaStore *store;
} Fixture;

/* ---- waiting for answers ------------------------------------------------------ */

typedef struct {
  gboolean done;
  GError *error;
  char *text;
  WaStoreCustomer *customer;
  gboolean created, linked, name_changed, window_moved, conflict;
  gboolean duplicate;
  gboolean shown;
  char *message_id;
  GPtrArray *list;
  GHashTable *table;
  WaStoreMessage *message;
  WaStoreOutbox *outbox;
  WaStoreStatusResult status;
  WaStoreConsent *consent;
  WaStoreAuditReport report;
  guint count;
  gboolean suppressed;
  WaStoreSuppressReason reason;
} Wait;

static void
wait_clear(Wait *w)
{
  g_clear_error(&w->error);
  g_clear_pointer(&w->text, g_free);
  g_clear_pointer(&w->customer, wa_store_customer_free);
  g_clear_pointer(&w->message_id, g_free);
  g_clear_pointer(&w->list, g_ptr_array_unref);
  g_clear_pointer(&w->table, g_hash_table_unref);
  g_clear_pointer(&w->message, wa_store_message_free);
  g_clear_pointer(&w->outbox, wa_store_outbox_free);
  g_clear_pointer(&w->consent, wa_store_consent_free);
  g_clear_pointer((char **) &w->status.message_id, g_free);
  g_clear_pointer((char **) &w->status.customer_id, g_free);
  memset(w, 0, sizeof *w);
}

/* g_auto(Wait) w1 = {0}, w2 = {0}; clears both (the attribute covers every declarator). */
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Wait, wait_clear)

/* Runs the loop until the store has answered @w. */
static void
wait_for(Wait *w)
{
  test_wait_until(w->done, DEADLINE_S);
}

static void
finish(Wait *w, const GError *error)
{
  g_assert_false(w->done);
  w->done = TRUE;
  w->error = error != NULL ? g_error_copy(error) : NULL;
}

static void
on_open(const char *header, const GError *error, gpointer data)
{
  Wait *w = data;

  w->text = g_strdup(header);
  finish(w, error);
}

static void
on_done(const GError *error, gpointer data)
{
  finish(data, error);
}

static void
on_update(const WaStoreCustomerUpdate *update, const GError *error, gpointer data)
{
  Wait *w = data;

  g_assert_true((update == NULL) == (error != NULL));
  if (update != NULL) {
    w->customer = wa_store_customer_copy(update->customer);
    w->created = update->created;
    w->linked = update->linked;
    w->name_changed = update->name_changed;
    w->window_moved = update->window_moved;
    w->conflict = update->conflict;
  }
  finish(w, error);
}

static void
on_customer(const WaStoreCustomer *customer, const GError *error, gpointer data)
{
  Wait *w = data;

  w->customer = wa_store_customer_copy(customer);
  finish(w, error);
}

static void
on_list(GPtrArray *list, const GError *error, gpointer data)
{
  Wait *w = data;

  g_assert_true((list == NULL) == (error != NULL));
  w->list = list != NULL ? g_ptr_array_ref(list) : NULL;
  finish(w, error);
}

static void
on_inbound(const WaStoreInboundResult *result, const GError *error, gpointer data)
{
  Wait *w = data;

  g_assert_true((result == NULL) == (error != NULL));
  if (result != NULL) {
    w->duplicate = result->duplicate;
    w->shown = result->shown;
    w->message_id = g_strdup(result->message_id);
    w->customer = wa_store_customer_copy(result->customer.customer);
    w->created = result->customer.created;
    w->linked = result->customer.linked;
    w->name_changed = result->customer.name_changed;
    w->window_moved = result->customer.window_moved;
  }
  finish(w, error);
}

static void
on_message(const WaStoreMessage *message, const GError *error, gpointer data)
{
  Wait *w = data;

  w->message = wa_store_message_copy(message);
  finish(w, error);
}

static void
on_outbox(const WaStoreOutbox *entry, const GError *error, gpointer data)
{
  Wait *w = data;

  w->outbox = wa_store_outbox_copy(entry);
  finish(w, error);
}

static void
on_status(const WaStoreStatusResult *result, const GError *error, gpointer data)
{
  Wait *w = data;

  if (result != NULL) {
    w->status = *result;
    w->status.message_id = g_strdup(result->message_id);
    w->status.customer_id = g_strdup(result->customer_id);
  }
  finish(w, error);
}

static void
on_string(const char *value, const GError *error, gpointer data)
{
  Wait *w = data;

  w->text = g_strdup(value);
  finish(w, error);
}

static void
on_table(GHashTable *table, const GError *error, gpointer data)
{
  Wait *w = data;

  w->table = table != NULL ? g_hash_table_ref(table) : NULL;
  finish(w, error);
}

static void
on_consent(const WaStoreConsent *consent, const GError *error, gpointer data)
{
  Wait *w = data;

  w->consent = wa_store_consent_copy(consent);
  finish(w, error);
}

static void
on_audit(const WaStoreAuditReport *report, const GError *error, gpointer data)
{
  Wait *w = data;

  if (report != NULL)
    w->report = *report;
  finish(w, error);
}

static void
on_count(guint count, const GError *error, gpointer data)
{
  Wait *w = data;

  w->count = count;
  finish(w, error);
}

static void
on_suppressed(gboolean suppressed, WaStoreSuppressReason reason, gint64 at, const GError *error, gpointer data)
{
  Wait *w = data;

  w->suppressed = suppressed;
  w->reason = reason;
  finish(w, error);
}

/* ---- fixture and store helpers ------------------------------------------------ */

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  f->tmp = g_dir_make_tmp("test-store-XXXXXX", &error);
  g_assert_no_error(error);
  f->dir = g_build_filename(f->tmp, "store", NULL);
  f->path = g_build_filename(f->dir, "account.db", NULL);
  f->clock = wa_clock_fake_new((gint64) NOW * G_USEC_PER_SEC);
  f->key = wa_key_new_random(&error);
  g_assert_no_error(error);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  g_clear_pointer(&f->store, wa_store_close);
  wa_store_test_set_extra_migration(NULL);
  wa_key_free(f->key);
  wa_clock_free(f->clock);
  test_remove_tree(f->tmp);
  g_free(f->tmp);
  g_free(f->dir);
  g_free(f->path);
}

/* Opens the store at f->path; *@header gets the stored header; the error
 * (if any) is returned. f->store is set either way. */
static GError *
store_open(Fixture *f, gint64 max_page_count, char **header)
{
  WaStoreOptions options = {.clock = f->clock, .max_page_count = max_page_count};
  g_auto(Wait) w = {0};
  GError *error;

  g_assert_null(f->store);
  f->store = wa_store_open(wa_loop_glib(), f->path, &options, on_open, &w);
  g_assert_nonnull(f->store);
  wait_for(&w);
  if (header != NULL)
    *header = g_steal_pointer(&w.text);
  error = g_steal_pointer(&w.error);
  return error;
}

static GError *
store_unlock(Fixture *f, const WaKey *key, const char *header)
{
  g_auto(Wait) w = {0};

  wa_store_unlock(f->store, key, header, on_done, &w);
  wait_for(&w);
  return g_steal_pointer(&w.error);
}

/* Opens and unlocks with f->key (a new store gets HEADER). */
static void
store_ready(Fixture *f, gint64 max_page_count)
{
  g_autofree char *header = NULL;
  g_autoptr(GError) error = store_open(f, max_page_count, &header);

  g_assert_no_error(error);
  if (header != NULL)
    g_assert_cmpstr(header, ==, HEADER);
  error = store_unlock(f, f->key, header == NULL ? HEADER : NULL);
  g_assert_no_error(error);
}

static void
store_close(Fixture *f)
{
  g_clear_pointer(&f->store, wa_store_close);
}

static void
reopen(Fixture *f)
{
  store_close(f);
  store_ready(f, 0);
}

static void
inbound_full(Fixture *f, Wait *w, const char *wa_id, const char *bsuid, const char *name, const char *wamid,
             const char *body, gint64 timestamp)
{
  WaStoreInbound in = {
    .wa_id = wa_id,
    .bsuid = bsuid,
    .profile_name = name,
    .direction = WA_STORE_IN,
    .wamid = wamid,
    .type = "text",
    .body = body,
    .raw = "{\"raw\":\"event\"}",
    .timestamp = timestamp,
  };

  wa_store_inbound(f->store, &in, on_inbound, w);
  wait_for(w);
}

/* An inbound text; returns the customer's id. */
static char *
inbound(Fixture *f, const char *wa_id, const char *bsuid, const char *name, const char *wamid, const char *body,
        gint64 timestamp)
{
  g_auto(Wait) w = {0};

  inbound_full(f, &w, wa_id, bsuid, name, wamid, body, timestamp);
  g_assert_no_error(w.error);
  g_assert_false(w.duplicate);
  return g_strdup(w.customer->id);
}

static void
mark_shown(Fixture *f, const char *message_id)
{
  g_auto(Wait) w = {0};

  wa_store_message_mark_shown(f->store, message_id, on_done, &w);
  wait_for(&w);
  g_assert_no_error(w.error);
}

static GPtrArray *
history(Fixture *f, const char *customer_id, guint limit)
{
  g_auto(Wait) w = {0};

  wa_store_history(f->store, customer_id, limit, on_list, &w);
  wait_for(&w);
  g_assert_no_error(w.error);
  return g_steal_pointer(&w.list);
}

static GPtrArray *
customers(Fixture *f)
{
  g_auto(Wait) w = {0};

  wa_store_customers_list(f->store, on_list, &w);
  wait_for(&w);
  g_assert_no_error(w.error);
  return g_steal_pointer(&w.list);
}

static WaStoreCustomer *
customer_get(Fixture *f, const char *id)
{
  g_auto(Wait) w = {0};

  wa_store_customer_get(f->store, id, on_customer, &w);
  wait_for(&w);
  g_assert_no_error(w.error);
  return g_steal_pointer(&w.customer);
}

static WaStoreOutbox *
enqueue(Fixture *f, const char *customer_id, const char *body)
{
  g_auto(Wait) w = {0};

  wa_store_outbox_enqueue(f->store, customer_id, "text", body, NULL, FALSE, on_outbox, &w);
  wait_for(&w);
  g_assert_no_error(w.error);
  g_assert_nonnull(w.outbox);
  return g_steal_pointer(&w.outbox);
}

/* Moves outbox entry @id to @state; the entry after, or NULL with *@error. */
static WaStoreOutbox *
outbox_move(Fixture *f, guint64 id, WaStoreOutboxState state, const char *wamid, GError **error)
{
  WaStoreOutboxChange change = {.state = state, .wamid = wamid, .error_text = "no answer", .next_attempt = 0};
  g_auto(Wait) w = {0};

  wa_store_outbox_update(f->store, id, &change, on_outbox, &w);
  wait_for(&w);
  if (error != NULL)
    *error = g_steal_pointer(&w.error);
  else
    g_assert_no_error(w.error);
  return g_steal_pointer(&w.outbox);
}

static GPtrArray *
outbox_list(Fixture *f, guint mask)
{
  g_auto(Wait) w = {0};

  wa_store_outbox_list(f->store, mask, on_list, &w);
  wait_for(&w);
  g_assert_no_error(w.error);
  return g_steal_pointer(&w.list);
}

static WaStoreStatusResult
apply_status(Fixture *f, const char *wamid, guint64 outbox_id, WaStoreStatus status, Wait *w)
{
  WaStoreStatusUpdate update = {
    .wamid = wamid,
    .outbox_id = outbox_id,
    .status = status,
    .error_text = "Message undeliverable",
    .timestamp = NOW,
  };

  wa_store_message_status(f->store, &update, on_status, w);
  wait_for(w);
  g_assert_no_error(w->error);
  return w->status;
}

static WaStoreAuditReport
audit_verify(Fixture *f)
{
  g_auto(Wait) w = {0};

  wa_store_audit_verify(f->store, on_audit, &w);
  wait_for(&w);
  g_assert_no_error(w.error);
  return w.report;
}

static void
done_ok(Fixture *f, Wait *w)
{
  wait_for(w);
  g_assert_no_error(w->error);
}

/* ---- raw access to the closed file ---------------------------------------------- */

static sqlite3 *
raw_open(const char *path)
{
  sqlite3 *db = NULL;

  g_assert_cmpint(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  return db;
}

static void
raw_exec(const char *path, const char *sql)
{
  sqlite3 *db = raw_open(path);
  char *message = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &message);

  if (rc != SQLITE_OK)
    g_error("raw SQL failed: %s", message);
  sqlite3_close(db);
}

/* Runs @sql expecting it to be refused; returns the error message. */
static char *
raw_exec_refused(const char *path, const char *sql)
{
  sqlite3 *db = raw_open(path);
  char *message = NULL;
  char *copy;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &message);

  g_assert_cmpint(rc, !=, SQLITE_OK);
  copy = g_strdup(message);
  sqlite3_free(message);
  sqlite3_close(db);
  return copy;
}

/* The first column of the first row, as bytes (NULL when no row or NULL). */
static GBytes *
raw_blob(const char *path, const char *sql)
{
  sqlite3 *db = raw_open(path);
  sqlite3_stmt *stmt = NULL;
  GBytes *out = NULL;

  g_assert_cmpint(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL)
    out = g_bytes_new(sqlite3_column_blob(stmt, 0), sqlite3_column_bytes(stmt, 0));
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

static gint64
raw_int(const char *path, const char *sql)
{
  sqlite3 *db = raw_open(path);
  sqlite3_stmt *stmt = NULL;
  gint64 out = -1;

  g_assert_cmpint(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  if (sqlite3_step(stmt) == SQLITE_ROW)
    out = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return out;
}

static gboolean
file_contains(const char *path, const void *needle, gsize len)
{
  g_autofree char *contents = NULL;
  gsize size = 0;

  if (!g_file_get_contents(path, &contents, &size, NULL))
    return FALSE;
  return memmem(contents, size, needle, len) != NULL;
}

static gboolean
file_contains_text(const char *path, const char *text)
{
  return file_contains(path, text, strlen(text));
}

static char *
file_checksum(const char *path)
{
  g_autofree char *contents = NULL;
  gsize size = 0;

  g_assert_true(g_file_get_contents(path, &contents, &size, NULL));
  return g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *) contents, size);
}

static guint
file_mode(const char *path)
{
  struct stat st;

  g_assert_cmpint(stat(path, &st), ==, 0);
  return st.st_mode & 07777;
}

/* ---- opening, files, schema, keys ------------------------------------------------ */

static void
test_files_and_modes(Fixture *f, gconstpointer data)
{
  g_autofree char *header = NULL;
  g_autofree char *wal = g_strconcat(f->path, "-wal", NULL);
  g_autoptr(GError) error = NULL;

  error = store_open(f, 0, &header);
  g_assert_no_error(error);
  g_assert_null(header); /* a new store */
  g_assert_cmphex(file_mode(f->dir), ==, 0700);
  g_assert_cmphex(file_mode(f->path), ==, 0600);
  error = store_unlock(f, f->key, HEADER);
  g_assert_no_error(error);
  g_free(inbound(f, WA_ID_A, NULL, NAME_A, "wamid.1", BODY_A, NOW));
  /* the WAL SQLite created copies the database's mode */
  g_assert_cmphex(file_mode(wal), ==, 0600);
  store_close(f);

  /* looser modes (an old copy, a restore) are fixed at the next open */
  g_assert_cmpint(chmod(f->dir, 0755), ==, 0);
  g_assert_cmpint(chmod(f->path, 0644), ==, 0);
  error = store_open(f, 0, &header);
  g_assert_no_error(error);
  g_assert_cmpstr(header, ==, HEADER);
  g_assert_cmphex(file_mode(f->dir), ==, 0700);
  g_assert_cmphex(file_mode(f->path), ==, 0600);
  /* write-ahead logging with an exclusive lock, as configured */
  store_close(f);
  g_assert_cmpint(raw_int(f->path, "PRAGMA user_version"), ==, 5);
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM customers"), ==, 1);
}

static void
test_second_open_refused(Fixture *f, gconstpointer data)
{
  WaStoreOptions options = {.clock = f->clock};
  g_auto(Wait) w = {0};
  WaStore *second;

  store_ready(f, 0);
  second = wa_store_open(wa_loop_glib(), f->path, &options, on_open, &w);
  wait_for(&w);
  g_assert_error(w.error, WA_STORE_ERROR, WA_STORE_ERROR_IN_USE);
  g_assert_nonnull(strstr(w.error->message, "in use"));
  wa_store_close(second);
  /* the first one still works, and holds on to its lock */
  g_free(inbound(f, WA_ID_A, NULL, NAME_A, "wamid.1", BODY_A, NOW));
  store_close(f);
  store_ready(f, 0);
}

static void
test_newer_schema_refused(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;

  store_ready(f, 0);
  store_close(f);
  raw_exec(f->path, "PRAGMA user_version = 99");
  before = file_checksum(f->path);
  error = store_open(f, 0, NULL);
  g_assert_error(error, WA_STORE_ERROR, WA_STORE_ERROR_SCHEMA);
  g_assert_nonnull(strstr(error->message, "newer"));
  store_close(f);
  after = file_checksum(f->path);
  g_assert_cmpstr(before, ==, after);
  g_assert_cmpint(raw_int(f->path, "PRAGMA user_version"), ==, 99);
}

/* What schema 5 added (wa-store-campaigns.c), taken away again: the file as
 * schema 4 left it. */
#define UNDO_V5                                                                               \
  "DROP TRIGGER outbox_campaign_state; DROP TABLE campaign_recipients; DROP TABLE campaigns;" \
  "DROP TABLE template_sends; DROP TABLE portfolio_reach;"

/* What schemas 3 to 5 added, taken away again: the file as schema 2 left it
 * (its index and audit keys were derived from the data key, not kept). */
#define UNDO_V3                                                                                  \
  UNDO_V5                                                                                        \
  "DROP TABLE media;"                                                                            \
  "DROP TRIGGER customers_key_gen; DROP TRIGGER messages_key_gen; DROP TRIGGER outbox_key_gen;"  \
  "DROP TRIGGER consent_key_gen; DROP TRIGGER settings_key_gen; DROP TRIGGER consent_no_update;" \
  "ALTER TABLE customers DROP COLUMN key_gen; ALTER TABLE messages DROP COLUMN key_gen;"         \
  "ALTER TABLE outbox DROP COLUMN key_gen; ALTER TABLE consent DROP COLUMN key_gen;"             \
  "ALTER TABLE settings DROP COLUMN key_gen;"                                                    \
  "CREATE TRIGGER consent_no_update BEFORE UPDATE ON consent"                                    \
  "  BEGIN SELECT RAISE(ABORT, 'the consent ledger is append-only'); END;"                       \
  "DELETE FROM meta WHERE name IN ('index_key', 'audit_key');"

static void
test_migrations(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autofree char *customer_id = NULL;
  g_auto(Wait) w = {0};

  /* from version 0 (an empty file) to the newest, with data */
  store_ready(f, 0);
  customer_id = inbound(f, WA_ID_A, NULL, NAME_A, "wamid.1", BODY_A, NOW);
  store_close(f);
  g_assert_cmpint(raw_int(f->path, "PRAGMA user_version"), ==, 5);

  /* version 1 to 5: messages stored by version 1 count as shown */
  raw_exec(f->path, UNDO_V3 "ALTER TABLE messages DROP COLUMN shown; PRAGMA user_version = 1");
  store_ready(f, 0);
  store_close(f);
  g_assert_cmpint(raw_int(f->path, "PRAGMA user_version"), ==, 5);
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM messages WHERE shown = 1"), ==, 1);

  /* version 2 to 5: every row is of the first key generation, and the index
   * and audit keys the data key gave are kept sealed from the first unlock
   * on, so hashes made before still find their rows and the chain verifies */
  raw_exec(f->path, UNDO_V3 "PRAGMA user_version = 2");
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM meta WHERE name = 'index_key'"), ==, 0);
  store_ready(f, 0);
  store_close(f);
  g_assert_cmpint(raw_int(f->path, "PRAGMA user_version"), ==, 5);
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM meta WHERE name IN ('index_key', 'audit_key')"), ==, 2);
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM customers WHERE key_gen = 1"), ==, 1);
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM messages WHERE key_gen = 1"), ==, 1);
  store_ready(f, 0);
  g_assert_true(audit_verify(f).ok);
  {
    g_auto(Wait) lookup = {0};

    wa_store_customer_lookup(f->store, WA_ID_A, NULL, on_customer, &lookup);
    wait_for(&lookup);
    g_assert_no_error(lookup.error);
    g_assert_nonnull(lookup.customer);
    g_assert_cmpstr(lookup.customer->id, ==, customer_id);
  }
  store_close(f);

  /* a step that fails leaves the version and the file as they were */
  wa_store_test_set_extra_migration("CREATE TABLE test_v6 (x); CREATE TABLE customers (x);");
  before = file_checksum(f->path);
  error = store_open(f, 0, NULL);
  g_assert_error(error, WA_STORE_ERROR, WA_STORE_ERROR_SCHEMA);
  g_clear_error(&error);
  store_close(f);
  after = file_checksum(f->path);
  g_assert_cmpstr(before, ==, after);
  g_assert_cmpint(raw_int(f->path, "PRAGMA user_version"), ==, 5);

  /* a version 6 step, as a newer plugin would have it: applied once, data kept */
  wa_store_test_set_extra_migration("CREATE TABLE test_v6 (x); ALTER TABLE customers ADD COLUMN test_label TEXT;");
  store_ready(f, 0);
  list = customers(f);
  g_assert_cmpuint(list->len, ==, 1);
  g_assert_cmpstr(((WaStoreCustomer *) list->pdata[0])->name, ==, NAME_A);
  /* the message migrated from version 1 is a duplicate already shown */
  inbound_full(f, &w, WA_ID_A, NULL, NAME_A, "wamid.1", BODY_A, NOW);
  g_assert_no_error(w.error);
  g_assert_true(w.duplicate);
  g_assert_true(w.shown);
  store_close(f);
  g_assert_cmpint(raw_int(f->path, "PRAGMA user_version"), ==, 6);
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM sqlite_schema WHERE name = 'test_v6'"), ==, 1);
  store_ready(f, 0); /* already at 6: nothing runs twice */
  store_close(f);

  /* without the step this code knows only version 5: refused */
  wa_store_test_set_extra_migration(NULL);
  error = store_open(f, 0, NULL);
  g_assert_error(error, WA_STORE_ERROR, WA_STORE_ERROR_SCHEMA);
}

static void
test_wrong_key(Fixture *f, gconstpointer data)
{
  g_autoptr(WaKey) other = wa_key_new_random(NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autofree char *header = NULL;
  g_auto(Wait) w = {0};

  store_ready(f, 0);
  g_free(inbound(f, WA_ID_A, NULL, NAME_A, "wamid.1", BODY_A, NOW));
  store_close(f);
  before = file_checksum(f->path);

  error = store_open(f, 0, &header);
  g_assert_no_error(error);
  /* a wrong key, even with a header to store: refused before any write */
  error = store_unlock(f, other, "{\"evil\":1}");
  g_assert_error(error, WA_STORE_ERROR, WA_STORE_ERROR_WRONG_KEY);
  g_clear_error(&error);
  wa_store_customers_list(f->store, on_list, &w);
  wait_for(&w);
  g_assert_error(w.error, WA_STORE_ERROR, WA_STORE_ERROR_LOCKED);
  store_close(f);
  after = file_checksum(f->path);
  g_assert_cmpstr(before, ==, after);

  /* the right key still opens it, and the header was not replaced */
  g_clear_pointer(&header, g_free);
  error = store_open(f, 0, &header);
  g_assert_no_error(error);
  g_assert_cmpstr(header, ==, HEADER);
  error = store_unlock(f, f->key, NULL);
  g_assert_no_error(error);
  list = customers(f);
  g_assert_cmpuint(list->len, ==, 1);
}

static void
test_locked_until_unlocked(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = store_open(f, 0, NULL);
  g_auto(Wait) w = {0}, w2 = {0};

  g_assert_no_error(error);
  wa_store_customers_list(f->store, on_list, &w);
  wait_for(&w);
  g_assert_error(w.error, WA_STORE_ERROR, WA_STORE_ERROR_LOCKED);
  /* a new store without its header is not unlocked */
  error = store_unlock(f, f->key, NULL);
  g_assert_error(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID);
  g_clear_error(&error);
  /* queued right behind the unlock: runs after it */
  wa_store_unlock(f->store, f->key, HEADER, on_done, &w2);
  wait_clear(&w);
  wa_store_customers_list(f->store, on_list, &w);
  wait_for(&w);
  g_assert_true(w2.done);
  g_assert_no_error(w2.error);
  g_assert_no_error(w.error);
  g_assert_cmpuint(w.list->len, ==, 0);
}

/* The flow the plugin follows, with wa-crypt's real key header. */
static void
test_key_header_flow(Fixture *f, gconstpointer data)
{
  g_autoptr(WaKey) file_key = wa_key_new_random(NULL);
  g_autoptr(WaKey) other_file_key = wa_key_new_random(NULL);
  g_autoptr(WaKey) data_key = NULL;
  g_autoptr(WaKey) unlocked = NULL;
  g_autoptr(WaKeyHeader) header = NULL;
  g_autoptr(WaKeyHeader) parsed = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *recovery = NULL;
  g_autofree char *json = NULL;
  g_autofree char *stored = NULL;

  error = store_open(f, 0, &stored);
  g_assert_no_error(error);
  g_assert_null(stored);
  header = wa_key_header_create_keyfile(file_key, &data_key, &recovery, &error);
  g_assert_no_error(error);
  json = wa_key_header_to_json(header);
  error = store_unlock(f, data_key, json);
  g_assert_no_error(error);
  g_free(inbound(f, WA_ID_A, NULL, NAME_A, "wamid.1", BODY_A, NOW));
  store_close(f);

  error = store_open(f, 0, &stored);
  g_assert_no_error(error);
  g_assert_cmpstr(stored, ==, json);
  parsed = wa_key_header_from_json(stored, &error);
  g_assert_no_error(error);
  unlocked = wa_key_header_unlock_keyfile(parsed, file_key, &error);
  g_assert_no_error(error);
  /* the key file changes: the header is re-wrapped and replaced */
  g_assert_true(wa_key_header_rewrap_keyfile(parsed, unlocked, other_file_key, &error));
  g_free(json);
  json = wa_key_header_to_json(parsed);
  error = store_unlock(f, unlocked, json);
  g_assert_no_error(error);
  store_close(f);

  g_clear_pointer(&stored, g_free);
  g_clear_pointer(&parsed, wa_key_header_free);
  g_clear_pointer(&unlocked, wa_key_free);
  error = store_open(f, 0, &stored);
  g_assert_no_error(error);
  g_assert_cmpstr(stored, ==, json);
  parsed = wa_key_header_from_json(stored, &error);
  g_assert_no_error(error);
  unlocked = wa_key_header_unlock_keyfile(parsed, other_file_key, &error);
  g_assert_no_error(error);
  error = store_unlock(f, unlocked, NULL);
  g_assert_no_error(error);
  {
    g_autoptr(GPtrArray) list = customers(f);

    g_assert_cmpuint(list->len, ==, 1);
    g_assert_cmpstr(((WaStoreCustomer *) list->pdata[0])->wa_id, ==, WA_ID_A);
  }
}

/* ---- customers and messages ------------------------------------------------------- */

static void
test_bsuid_then_phone(Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_auto(Wait) w = {0}, w2 = {0}, w3 = {0};

  store_ready(f, 0);
  id = inbound(f, NULL, BSUID_A, NAME_A, "wamid.1", BODY_A, NOW - 100);
  /* the next event carries both: linked, not a second customer */
  inbound_full(f, &w, WA_ID_A, BSUID_A, NAME_A, "wamid.2", "second", NOW - 50);
  g_assert_no_error(w.error);
  g_assert_cmpstr(w.customer->id, ==, id);
  g_assert_true(w.linked);
  g_assert_false(w.created);
  g_assert_cmpstr(w.customer->wa_id, ==, WA_ID_A);
  g_assert_cmpstr(w.customer->bsuid, ==, BSUID_A);
  /* and the phone number alone now finds the same customer */
  inbound_full(f, &w2, WA_ID_A, NULL, NULL, "wamid.3", "third", NOW);
  g_assert_cmpstr(w2.customer->id, ==, id);
  g_assert_false(w2.linked);
  list = customers(f);
  g_assert_cmpuint(list->len, ==, 1);
  wa_store_customer_lookup(f->store, WA_ID_A, NULL, on_customer, &w3);
  wait_for(&w3);
  g_assert_no_error(w3.error);
  g_assert_cmpstr(w3.customer->id, ==, id);
  g_assert_cmpint(w3.customer->newest_inbound, ==, NOW);

  /* the customer changes numbers: the BSUID finds them, the number follows */
  wait_clear(&w);
  inbound_full(f, &w, WA_ID_B, BSUID_A, NULL, "wamid.4", "fourth", NOW + 1);
  g_assert_no_error(w.error);
  g_assert_cmpstr(w.customer->id, ==, id);
  g_assert_true(w.linked);
  g_assert_cmpstr(w.customer->wa_id, ==, WA_ID_B);
  wait_clear(&w3);
  wa_store_customer_lookup(f->store, WA_ID_B, NULL, on_customer, &w3);
  done_ok(f, &w3);
  g_assert_cmpstr(w3.customer->id, ==, id);
  wait_clear(&w3);
  wa_store_customer_lookup(f->store, WA_ID_A, NULL, on_customer, &w3);
  done_ok(f, &w3);
  g_assert_null(w3.customer);
  g_clear_pointer(&list, g_ptr_array_unref);
  list = customers(f);
  g_assert_cmpuint(list->len, ==, 1);
}

/* WhatsApp gives a customer known only by BSUID a new one
 * (user_changed_user_id): it replaces the old one, so the new one finds the
 * same customer and history; one that another customer holds is refused. */
static void
test_bsuid_replaced(Fixture *f, gconstpointer data)
{
  const char *new_bsuid = "DE.NewUserId000000000000001";
  g_autofree char *id = NULL;
  g_autofree char *other = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(GPtrArray) messages = NULL;
  g_auto(Wait) w = {0}, w2 = {0}, w3 = {0}, w4 = {0};

  store_ready(f, 0);
  id = inbound(f, NULL, BSUID_A, NAME_A, "wamid.1", BODY_A, NOW - 100);
  other = inbound(f, WA_ID_B, "DE.OtherCustomer00000000001", NULL, "wamid.2", "other", NOW - 90);
  wa_store_customer_set_bsuid(f->store, id, new_bsuid, on_update, &w);
  done_ok(f, &w);
  g_assert_true(w.linked);
  g_assert_false(w.conflict);
  g_assert_cmpstr(w.customer->bsuid, ==, new_bsuid);
  /* the same again changes nothing */
  wa_store_customer_set_bsuid(f->store, id, new_bsuid, on_update, &w2);
  done_ok(f, &w2);
  g_assert_false(w2.linked);
  /* the new BSUID finds the customer, the old one no longer does */
  inbound_full(f, &w3, NULL, new_bsuid, NULL, "wamid.3", "from the new id", NOW);
  g_assert_no_error(w3.error);
  g_assert_cmpstr(w3.customer->id, ==, id);
  g_assert_false(w3.created);
  wait_clear(&w3);
  wa_store_customer_lookup(f->store, NULL, BSUID_A, on_customer, &w3);
  done_ok(f, &w3);
  g_assert_null(w3.customer);
  messages = history(f, id, 10);
  g_assert_cmpuint(messages->len, ==, 2);
  g_assert_cmpstr(((WaStoreMessage *) g_ptr_array_index(messages, 0))->body, ==, BODY_A);
  /* another customer's BSUID: a conflict, nothing changed */
  wa_store_customer_set_bsuid(f->store, id, "DE.OtherCustomer00000000001", on_update, &w4);
  done_ok(f, &w4);
  g_assert_true(w4.conflict);
  g_assert_false(w4.linked);
  g_assert_cmpstr(w4.customer->bsuid, ==, new_bsuid);
  list = customers(f);
  g_assert_cmpuint(list->len, ==, 2);
}

static void
test_customer_ensure_and_names(Fixture *f, gconstpointer data)
{
  g_auto(Wait) w = {0}, w2 = {0}, w3 = {0}, w4 = {0}, w5 = {0};

  store_ready(f, 0);
  wa_store_customer_ensure(f->store, WA_ID_A, NULL, NAME_A, WA_STORE_ENSURE_DEFAULT, on_update, &w);
  done_ok(f, &w);
  g_assert_true(w.created);
  g_assert_cmpint(w.customer->created, ==, NOW);
  wa_store_customer_ensure(f->store, WA_ID_A, NULL, "New Name", WA_STORE_ENSURE_DEFAULT, on_update, &w2);
  done_ok(f, &w2);
  g_assert_false(w2.created);
  g_assert_true(w2.name_changed);
  g_assert_cmpstr(w2.customer->name, ==, "New Name");
  wa_store_customer_set_name(f->store, w.customer->id, "New Name", on_update, &w3);
  done_ok(f, &w3);
  g_assert_false(w3.name_changed);
  /* neither id: refused */
  wa_store_customer_ensure(f->store, NULL, "", NULL, WA_STORE_ENSURE_DEFAULT, on_update, &w4);
  wait_for(&w4);
  g_assert_error(w4.error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID);
  /* unknown customers are not found, not an error */
  wa_store_customer_lookup(f->store, WA_ID_B, NULL, on_customer, &w5);
  done_ok(f, &w5);
  g_assert_null(w5.customer);

  /* a wa_id and a BSUID of two different customers: the wa_id's, unchanged */
  wait_clear(&w4);
  wa_store_customer_ensure(f->store, NULL, BSUID_A, NAME_B, WA_STORE_ENSURE_DEFAULT, on_update, &w4);
  done_ok(f, &w4);
  g_assert_true(w4.created);
  wait_clear(&w5);
  wa_store_customer_ensure(f->store, WA_ID_A, BSUID_A, NULL, WA_STORE_ENSURE_DEFAULT, on_update, &w5);
  done_ok(f, &w5);
  g_assert_true(w5.conflict);
  g_assert_false(w5.linked);
  g_assert_cmpstr(w5.customer->id, ==, w.customer->id);
  g_assert_null(w5.customer->bsuid);
}

static void
test_duplicate_wamid(Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autofree char *first = NULL;
  g_auto(Wait) w = {0}, w2 = {0};

  store_ready(f, 0);
  inbound_full(f, &w, WA_ID_A, NULL, NAME_A, "wamid.same", BODY_A, NOW - 10);
  g_assert_no_error(w.error);
  g_assert_false(w.duplicate);
  g_assert_false(w.shown);
  g_assert_true(w.created);
  id = g_strdup(w.customer->id);
  first = g_strdup(w.message_id);
  /* the same event applied again (crash between store and showing) */
  inbound_full(f, &w2, WA_ID_A, NULL, "Another Name", "wamid.same", "other text", NOW);
  g_assert_no_error(w2.error);
  g_assert_true(w2.duplicate);
  g_assert_false(w2.shown);
  wait_clear(&w2);
  /* history has it, not yet shown (the plugin leaves such lines to come live) */
  list = history(f, id, 20);
  g_assert_cmpuint(list->len, ==, 1);
  g_assert_false(((WaStoreMessage *) list->pdata[0])->shown);
  g_clear_pointer(&list, g_ptr_array_unref);
  /* shown, then applied again (crash between showing and acknowledgement) */
  mark_shown(f, first);
  inbound_full(f, &w2, WA_ID_A, NULL, "Another Name", "wamid.same", "other text", NOW);
  g_assert_no_error(w2.error);
  g_assert_true(w2.duplicate);
  g_assert_true(w2.shown);
  g_assert_cmpstr(w2.message_id, ==, first);
  g_assert_false(w2.name_changed);
  g_assert_false(w2.window_moved);
  g_assert_cmpstr(w2.customer->name, ==, NAME_A);
  g_assert_cmpint(w2.customer->newest_inbound, ==, NOW - 10);
  list = history(f, id, 20);
  g_assert_cmpuint(list->len, ==, 1);
  g_assert_cmpstr(((WaStoreMessage *) list->pdata[0])->body, ==, BODY_A);
  g_assert_true(((WaStoreMessage *) list->pdata[0])->shown);
}

static void
test_window_monotonic(Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_auto(Wait) w = {0}, w2 = {0}, w3 = {0};

  store_ready(f, 0);
  id = inbound(f, WA_ID_A, NULL, NAME_A, "wamid.1", "new", NOW);
  /* an older message delivered late does not move the window back */
  inbound_full(f, &w, WA_ID_A, NULL, NULL, "wamid.0", "old", NOW - 3 * DAY);
  g_assert_no_error(w.error);
  g_assert_false(w.window_moved);
  g_assert_cmpint(w.customer->newest_inbound, ==, NOW);
  wa_store_customer_set_newest_inbound(f->store, id, NOW - 5, on_update, &w2);
  done_ok(f, &w2);
  g_assert_false(w2.window_moved);
  g_assert_cmpint(w2.customer->newest_inbound, ==, NOW);
  wa_store_customer_set_newest_inbound(f->store, id, NOW + 60, on_update, &w3);
  done_ok(f, &w3);
  g_assert_true(w3.window_moved);
  g_assert_cmpint(w3.customer->newest_inbound, ==, NOW + 60);
  /* it survives a restart (the window at sign-on) */
  reopen(f);
  {
    g_autoptr(WaStoreCustomer) customer = customer_get(f, id);

    g_assert_cmpint(customer->newest_inbound, ==, NOW + 60);
  }
  /* history is oldest first, by the messages' own timestamps */
  {
    g_autoptr(GPtrArray) list = history(f, id, 20);

    g_assert_cmpuint(list->len, ==, 2);
    g_assert_cmpstr(((WaStoreMessage *) list->pdata[0])->body, ==, "old");
    g_assert_cmpstr(((WaStoreMessage *) list->pdata[1])->body, ==, "new");
  }
}

static void
test_history_limit(Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autoptr(GPtrArray) list = NULL;

  store_ready(f, 0);
  for (int i = 0; i < 30; i++) {
    g_autofree char *wamid = g_strdup_printf("wamid.%d", i);
    g_autofree char *body = g_strdup_printf("message %d", i);

    g_free(id);
    id = inbound(f, WA_ID_A, NULL, NAME_A, wamid, body, NOW + i);
  }
  list = history(f, id, 20);
  g_assert_cmpuint(list->len, ==, 20);
  g_assert_cmpstr(((WaStoreMessage *) list->pdata[0])->body, ==, "message 10");
  g_assert_cmpstr(((WaStoreMessage *) list->pdata[19])->body, ==, "message 29");
  g_assert_cmpint(((WaStoreMessage *) list->pdata[19])->direction, ==, WA_STORE_IN);
  g_assert_cmpstr(((WaStoreMessage *) list->pdata[19])->wamid, ==, "wamid.29");
}

static void
test_status_ranks(Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autoptr(WaStoreOutbox) one = NULL;
  g_autoptr(WaStoreOutbox) two = NULL;
  g_autoptr(WaStoreOutbox) entry = NULL;
  g_auto(Wait) w1 = {0}, w2 = {0}, w3 = {0}, w4 = {0}, w5 = {0}, w6 = {0}, w7 = {0}, w8 = {0}, w9 = {0};
  WaStoreStatusResult r;

  store_ready(f, 0);
  id = inbound(f, WA_ID_A, NULL, NAME_A, "wamid.in", BODY_A, NOW);
  one = enqueue(f, id, "reply one");
  two = enqueue(f, id, "reply two");
  g_clear_pointer(&entry, wa_store_outbox_free);
  entry = outbox_move(f, one->id, WA_STORE_OUTBOX_SENDING, NULL, NULL);
  g_clear_pointer(&entry, wa_store_outbox_free);
  entry = outbox_move(f, one->id, WA_STORE_OUTBOX_SENT, "wamid.out1", NULL);

  r = apply_status(f, "wamid.out1", 0, WA_STORE_STATUS_READ, &w1);
  g_assert_true(r.found);
  g_assert_true(r.changed);
  g_assert_cmpint(r.status, ==, WA_STORE_STATUS_READ);
  g_assert_cmpuint(r.outbox_id, ==, one->id);
  g_assert_cmpint(r.direction, ==, WA_STORE_OUT);
  /* a late "sent" and "delivered" never overwrite "read" */
  r = apply_status(f, "wamid.out1", 0, WA_STORE_STATUS_SENT, &w2);
  g_assert_false(r.changed);
  g_assert_cmpint(r.status, ==, WA_STORE_STATUS_READ);
  r = apply_status(f, "wamid.out1", 0, WA_STORE_STATUS_DELIVERED, &w3);
  g_assert_false(r.changed);
  /* nor does a failure of a message that was read */
  r = apply_status(f, "wamid.out1", 0, WA_STORE_STATUS_FAILED, &w4);
  g_assert_false(r.changed);
  g_assert_cmpint(r.status, ==, WA_STORE_STATUS_READ);

  /* the second one: its "delivered" arrives before the send's answer, found
   * through the outbox id in biz_opaque_callback_data */
  g_clear_pointer(&entry, wa_store_outbox_free);
  entry = outbox_move(f, two->id, WA_STORE_OUTBOX_SENDING, NULL, NULL);
  r = apply_status(f, "wamid.out2", two->id, WA_STORE_STATUS_DELIVERED, &w5);
  g_assert_true(r.found);
  g_assert_true(r.changed);
  g_assert_true(r.outbox_resolved);
  g_assert_cmpint(r.outbox_state, ==, WA_STORE_OUTBOX_SENT);
  g_assert_cmpint(r.outbox_before, ==, WA_STORE_OUTBOX_SENDING);
  /* the late answer of the send then changes nothing and is not an error */
  g_clear_pointer(&entry, wa_store_outbox_free);
  entry = outbox_move(f, two->id, WA_STORE_OUTBOX_SENT, "wamid.out2", NULL);
  g_assert_cmpint(entry->state, ==, WA_STORE_OUTBOX_SENT);
  g_assert_cmpstr(entry->wamid, ==, "wamid.out2");
  /* failed is final: a later "read" does not undo it */
  r = apply_status(f, "wamid.out2", 0, WA_STORE_STATUS_FAILED, &w6);
  g_assert_true(r.changed);
  g_assert_cmpint(r.status, ==, WA_STORE_STATUS_FAILED);
  r = apply_status(f, "wamid.out2", 0, WA_STORE_STATUS_READ, &w7);
  g_assert_false(r.changed);
  g_assert_cmpint(r.status, ==, WA_STORE_STATUS_FAILED);
  wa_store_message_find(f->store, "wamid.out2", on_message, &w8);
  done_ok(f, &w8);
  g_assert_cmpint(w8.message->status, ==, WA_STORE_STATUS_FAILED);
  g_assert_cmpstr(w8.message->error, ==, "Message undeliverable");
  g_assert_cmpstr(w8.message->body, ==, "reply two");
  g_assert_cmpint(w8.message->direction, ==, WA_STORE_OUT);
  /* a status for a message this store does not know */
  r = apply_status(f, "wamid.unknown", 0, WA_STORE_STATUS_READ, &w9);
  g_assert_false(r.found);
}

/* A status of a message sent elsewhere says so (the plugin shows such a
 * message when a crash came between storing it and showing it). */
static void
test_status_of_message_sent_elsewhere(Fixture *f, gconstpointer data)
{
  WaStoreInbound out = {
    .wa_id = WA_ID_A,
    .direction = WA_STORE_ELSEWHERE,
    .wamid = "wamid.elsewhere",
    .type = "unknown",
    .timestamp = NOW,
  };
  g_auto(Wait) w1 = {0}, w2 = {0}, w3 = {0};
  WaStoreStatusResult r;

  store_ready(f, 0);
  wa_store_inbound(f->store, &out, on_inbound, &w1);
  wait_for(&w1);
  g_assert_no_error(w1.error);
  r = apply_status(f, "wamid.elsewhere", 0, WA_STORE_STATUS_DELIVERED, &w2);
  g_assert_true(r.found);
  g_assert_cmpint(r.direction, ==, WA_STORE_ELSEWHERE);
  g_assert_cmpuint(r.outbox_id, ==, 0);
  /* and storing it again finds it, not yet shown */
  wa_store_inbound(f->store, &out, on_inbound, &w3);
  wait_for(&w3);
  g_assert_no_error(w3.error);
  g_assert_true(w3.duplicate);
  g_assert_false(w3.shown);
}

/* An entry the agent dropped (its answer was lost) whose status then says it
 * went: the entry becomes SENT and the message takes the status, error gone.
 * A failure the API reported stays final. */
static void
test_dropped_then_delivered(Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autoptr(WaStoreOutbox) dropped = NULL;
  g_autoptr(WaStoreOutbox) entry = NULL;
  g_auto(Wait) w1 = {0}, w2 = {0}, w3 = {0};
  WaStoreStatusResult r;

  store_ready(f, 0);
  id = inbound(f, WA_ID_A, NULL, NAME_A, "wamid.in", BODY_A, NOW);
  dropped = enqueue(f, id, "lost answer");
  entry = outbox_move(f, dropped->id, WA_STORE_OUTBOX_SENDING, NULL, NULL);
  g_clear_pointer(&entry, wa_store_outbox_free);
  entry = outbox_move(f, dropped->id, WA_STORE_OUTBOX_UNCERTAIN, NULL, NULL);
  g_clear_pointer(&entry, wa_store_outbox_free);
  entry = outbox_move(f, dropped->id, WA_STORE_OUTBOX_FAILED, NULL, NULL);
  g_assert_cmpint(entry->state, ==, WA_STORE_OUTBOX_FAILED);

  r = apply_status(f, "wamid.late", dropped->id, WA_STORE_STATUS_DELIVERED, &w1);
  g_assert_true(r.found);
  g_assert_true(r.changed);
  g_assert_cmpint(r.status, ==, WA_STORE_STATUS_DELIVERED);
  g_assert_true(r.outbox_resolved);
  g_assert_cmpint(r.outbox_before, ==, WA_STORE_OUTBOX_FAILED);
  g_assert_cmpint(r.outbox_state, ==, WA_STORE_OUTBOX_SENT);
  wa_store_message_find(f->store, "wamid.late", on_message, &w2);
  done_ok(f, &w2);
  g_assert_cmpint(w2.message->status, ==, WA_STORE_STATUS_DELIVERED);
  g_assert_null(w2.message->error);
  /* now a failure reported by the API: final, as before */
  r = apply_status(f, "wamid.late", 0, WA_STORE_STATUS_FAILED, &w3);
  g_assert_cmpint(r.status, ==, WA_STORE_STATUS_FAILED);
  g_assert_false(r.outbox_resolved);
}

/* ---- the outbox ---------------------------------------------------------------------- */

static void
test_outbox_state_machine(Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autoptr(WaStoreOutbox) a = NULL;
  g_autoptr(WaStoreOutbox) b = NULL;
  g_autoptr(WaStoreOutbox) c = NULL;
  g_autoptr(WaStoreOutbox) entry = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autofree char *callback = NULL;
  g_auto(Wait) w = {0}, w2 = {0};

  store_ready(f, 0);
  id = inbound(f, WA_ID_A, NULL, NAME_A, "wamid.in", BODY_A, NOW);
  a = enqueue(f, id, "first");
  b = enqueue(f, id, "second");
  c = enqueue(f, id, "third");
  g_assert_cmpuint(a->id, >, 0);
  g_assert_cmpuint(a->id, <, G_GUINT64_CONSTANT(1) << 53);
  g_assert_cmpint(a->state, ==, WA_STORE_OUTBOX_QUEUED);
  g_assert_cmpstr(a->body, ==, "first");
  g_assert_cmpuint(a->attempts, ==, 0);
  g_assert_cmpuint(a->id, !=, b->id);

  /* invalid moves are refused and change nothing */
  entry = outbox_move(f, a->id, WA_STORE_OUTBOX_SENT, "wamid.x", &error);
  g_assert_error(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID);
  g_assert_null(entry);
  g_clear_error(&error);
  entry = outbox_move(f, a->id, WA_STORE_OUTBOX_UNCERTAIN, NULL, &error);
  g_assert_error(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID);
  g_clear_error(&error);
  entry = outbox_move(f, 12345, WA_STORE_OUTBOX_SENDING, NULL, &error);
  g_assert_error(error, WA_STORE_ERROR, WA_STORE_ERROR_NOT_FOUND);
  g_clear_error(&error);

  /* queued -> sending -> queued (provably not sent) -> sending */
  entry = outbox_move(f, a->id, WA_STORE_OUTBOX_SENDING, NULL, NULL);
  g_assert_cmpuint(entry->attempts, ==, 1);
  g_clear_pointer(&entry, wa_store_outbox_free);
  {
    WaStoreOutboxChange change = {.state = WA_STORE_OUTBOX_QUEUED, .next_attempt = NOW + 30};

    wa_store_outbox_update(f->store, a->id, &change, on_outbox, &w);
    done_ok(f, &w);
    g_assert_cmpint(w.outbox->next_attempt, ==, NOW + 30);
  }
  entry = outbox_move(f, a->id, WA_STORE_OUTBOX_SENDING, NULL, NULL);
  g_assert_cmpuint(entry->attempts, ==, 2);
  g_clear_pointer(&entry, wa_store_outbox_free);
  /* b fails for good; c stays queued */
  entry = outbox_move(f, b->id, WA_STORE_OUTBOX_SENDING, NULL, NULL);
  g_clear_pointer(&entry, wa_store_outbox_free);
  entry = outbox_move(f, b->id, WA_STORE_OUTBOX_FAILED, NULL, NULL);
  g_assert_cmpint(entry->state, ==, WA_STORE_OUTBOX_FAILED);
  g_assert_cmpstr(entry->error, ==, "no answer");
  g_clear_pointer(&entry, wa_store_outbox_free);

  /* the plugin dies while a is in flight: after a restart it is uncertain */
  reopen(f);
  list = outbox_list(f, WA_STORE_OUTBOX_MASK(WA_STORE_OUTBOX_UNCERTAIN));
  g_assert_cmpuint(list->len, ==, 1);
  g_assert_cmpuint(((WaStoreOutbox *) list->pdata[0])->id, ==, a->id);
  g_assert_cmpstr(((WaStoreOutbox *) list->pdata[0])->body, ==, "first");
  g_clear_pointer(&list, g_ptr_array_unref);
  list = outbox_list(f, WA_STORE_OUTBOX_MASK(WA_STORE_OUTBOX_QUEUED) | WA_STORE_OUTBOX_MASK(WA_STORE_OUTBOX_SENDING));
  g_assert_cmpuint(list->len, ==, 1);
  g_assert_cmpuint(((WaStoreOutbox *) list->pdata[0])->id, ==, c->id);
  g_clear_pointer(&list, g_ptr_array_unref);

  /* the agent resends a: uncertain -> queued -> sending -> sent */
  entry = outbox_move(f, a->id, WA_STORE_OUTBOX_QUEUED, NULL, NULL);
  g_clear_pointer(&entry, wa_store_outbox_free);
  entry = outbox_move(f, a->id, WA_STORE_OUTBOX_SENDING, NULL, NULL);
  g_assert_cmpuint(entry->attempts, ==, 3);
  g_clear_pointer(&entry, wa_store_outbox_free);
  entry = outbox_move(f, a->id, WA_STORE_OUTBOX_SENT, "wamid.a", NULL);
  g_assert_cmpint(entry->state, ==, WA_STORE_OUTBOX_SENT);
  g_clear_pointer(&entry, wa_store_outbox_free);
  entry = outbox_move(f, a->id, WA_STORE_OUTBOX_QUEUED, NULL, &error);
  g_assert_error(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID);
  g_clear_error(&error);
  /* found by wamid, and by the id its callback data carries */
  wa_store_outbox_find_wamid(f->store, "wamid.a", on_outbox, &w2);
  done_ok(f, &w2);
  g_assert_cmpuint(w2.outbox->id, ==, a->id);
  callback = g_strdup_printf("wabiz:%" G_GUINT64_FORMAT, a->id);
  g_assert_cmpuint(g_ascii_strtoull(callback + 6, NULL, 10), ==, a->id);
  wait_clear(&w2);
  wa_store_outbox_get(f->store, a->id, on_outbox, &w2);
  done_ok(f, &w2);
  g_assert_cmpstr(w2.outbox->wamid, ==, "wamid.a");

  /* the failed one goes back to the queue when the agent resends it */
  entry = outbox_move(f, b->id, WA_STORE_OUTBOX_QUEUED, NULL, NULL);
  g_assert_cmpint(entry->state, ==, WA_STORE_OUTBOX_QUEUED);
  g_assert_null(entry->error);
  g_clear_pointer(&entry, wa_store_outbox_free);
  /* queue order is kept across the restart */
  list = outbox_list(f, WA_STORE_OUTBOX_MASK(WA_STORE_OUTBOX_QUEUED));
  g_assert_cmpuint(list->len, ==, 2);
  g_assert_cmpuint(((WaStoreOutbox *) list->pdata[0])->id, ==, b->id);
  g_assert_cmpuint(((WaStoreOutbox *) list->pdata[1])->id, ==, c->id);
  g_clear_pointer(&list, g_ptr_array_unref);
  /* our messages show in the history */
  list = history(f, id, 10);
  g_assert_cmpuint(list->len, ==, 4);
  g_assert_cmpint(((WaStoreMessage *) list->pdata[1])->direction, ==, WA_STORE_OUT);
  g_assert_cmpuint(((WaStoreMessage *) list->pdata[1])->outbox_id, ==, a->id);
}

/* ---- encryption at rest --------------------------------------------------------------- */

static void
test_round_trip_and_settings(Fixture *f, gconstpointer data)
{
  const char *name = "Zoë Ünal 😀";
  const char *body = "Grüße — the order #4471 is ready ✔";
  g_autofree char *id = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_auto(Wait) w = {0}, w2 = {0}, w3 = {0}, w4 = {0};

  store_ready(f, 0);
  id = inbound(f, WA_ID_A, BSUID_A, name, "wamid.1", body, NOW);
  wa_store_setting_set(f->store, NULL, "greeting", "Hello, we are open 9-17", on_done, &w);
  done_ok(f, &w);
  wait_clear(&w);
  wa_store_setting_set(f->store, NULL, "away", "gone", on_done, &w);
  done_ok(f, &w);
  wait_clear(&w);
  wa_store_setting_set(f->store, NULL, "away", NULL, on_done, &w);
  done_ok(f, &w);
  wait_clear(&w);
  /* a buddy's node setting, kept with the customer */
  wa_store_setting_set(f->store, id, "label", "Pending payment", on_done, &w);
  done_ok(f, &w);
  reopen(f);

  list = customers(f);
  g_assert_cmpuint(list->len, ==, 1);
  g_assert_cmpstr(((WaStoreCustomer *) list->pdata[0])->name, ==, name);
  g_assert_cmpstr(((WaStoreCustomer *) list->pdata[0])->wa_id, ==, WA_ID_A);
  g_assert_cmpstr(((WaStoreCustomer *) list->pdata[0])->bsuid, ==, BSUID_A);
  g_assert_false(((WaStoreCustomer *) list->pdata[0])->tampered);
  g_clear_pointer(&list, g_ptr_array_unref);
  list = history(f, id, 5);
  g_assert_cmpuint(list->len, ==, 1);
  g_assert_cmpstr(((WaStoreMessage *) list->pdata[0])->body, ==, body);
  g_assert_false(((WaStoreMessage *) list->pdata[0])->tampered);
  wa_store_setting_get(f->store, NULL, "greeting", on_string, &w2);
  done_ok(f, &w2);
  g_assert_cmpstr(w2.text, ==, "Hello, we are open 9-17");
  wa_store_setting_get(f->store, NULL, "away", on_string, &w3);
  done_ok(f, &w3);
  g_assert_null(w3.text);
  wa_store_settings_all(f->store, NULL, on_table, &w4);
  done_ok(f, &w4);
  g_assert_cmpuint(g_hash_table_size(w4.table), ==, 1);
  g_assert_cmpstr(g_hash_table_lookup(w4.table, "greeting"), ==, "Hello, we are open 9-17");
  wait_clear(&w4);
  wa_store_settings_all(f->store, id, on_table, &w4);
  done_ok(f, &w4);
  g_assert_cmpuint(g_hash_table_size(w4.table), ==, 1);
  g_assert_cmpstr(g_hash_table_lookup(w4.table, "label"), ==, "Pending payment");
  wait_clear(&w3);
  wa_store_setting_get(f->store, id, "greeting", on_string, &w3);
  done_ok(f, &w3);
  g_assert_null(w3.text); /* the scopes do not mix */
}

static void
test_swapped_bodies_detected(Fixture *f, gconstpointer data)
{
  g_autofree char *a = NULL;
  g_autofree char *b = NULL;
  g_autoptr(GPtrArray) list = NULL;
  WaStoreMessage *message;

  store_ready(f, 0);
  a = inbound(f, WA_ID_A, NULL, NAME_A, "wamid.a", BODY_A, NOW);
  b = inbound(f, WA_ID_B, NULL, NAME_B, "wamid.b", BODY_B, NOW);
  store_close(f);
  /* an attacker with the file swaps the two sealed bodies */
  raw_exec(f->path, "CREATE TEMP TABLE t AS SELECT id, body FROM messages;"
                    "UPDATE messages SET body = (SELECT t.body FROM t WHERE t.id != messages.id);");
  store_ready(f, 0);
  list = history(f, a, 5);
  g_assert_cmpuint(list->len, ==, 1);
  message = list->pdata[0];
  g_assert_true(message->tampered);
  g_assert_null(message->body); /* never the other customer's text */
  g_assert_cmpstr(message->wamid, ==, "wamid.a");
  g_clear_pointer(&list, g_ptr_array_unref);
  list = history(f, b, 5);
  message = list->pdata[0];
  g_assert_true(message->tampered);
  g_assert_null(message->body);
}

static void
test_rows_moved_between_customers(Fixture *f, gconstpointer data)
{
  g_autofree char *a = NULL;
  g_autofree char *b = NULL;
  g_autofree char *sql = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(WaStoreCustomer) ca = NULL;
  g_autoptr(WaStoreCustomer) cb = NULL;

  store_ready(f, 0);
  a = inbound(f, WA_ID_A, NULL, NAME_A, "wamid.a", BODY_A, NOW - 10);
  b = inbound(f, WA_ID_B, NULL, NAME_B, "wamid.b", BODY_B, NOW);
  store_close(f);
  /* A's message handed to B: B's key does not open A's rows */
  sql = g_strdup_printf("UPDATE messages SET customer_id = '%s' WHERE customer_id = '%s'", b, a);
  raw_exec(f->path, sql);
  store_ready(f, 0);
  list = history(f, b, 5);
  g_assert_cmpuint(list->len, ==, 2);
  g_assert_true(((WaStoreMessage *) list->pdata[0])->tampered);
  g_assert_null(((WaStoreMessage *) list->pdata[0])->body);
  g_assert_false(((WaStoreMessage *) list->pdata[1])->tampered);
  g_assert_cmpstr(((WaStoreMessage *) list->pdata[1])->body, ==, BODY_B);
  store_close(f);

  /* the customers' wrapped keys swapped: neither opens */
  g_free(sql);
  sql = g_strdup_printf("CREATE TEMP TABLE t AS SELECT id, wrapped_key FROM customers;"
                        "UPDATE customers SET wrapped_key = (SELECT t.wrapped_key FROM t WHERE t.id != customers.id);");
  raw_exec(f->path, sql);
  store_ready(f, 0);
  ca = customer_get(f, a);
  cb = customer_get(f, b);
  g_assert_true(ca->tampered);
  g_assert_null(ca->name);
  g_assert_null(ca->wa_id);
  g_assert_true(cb->tampered);
  g_assert_null(cb->name);
}

static void
assert_no_plaintext(const char *path, gboolean expect_file)
{
  const char *secrets[] = {BODY_A,           NAME_A,       WA_ID_A,          BSUID_A,       "wamid.secret-1",
                           "caption-secret", "raw-secret", "setting-secret", "note-secret", "error-secret"};

  if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
    g_assert_false(expect_file);
    return;
  }
  for (guint i = 0; i < G_N_ELEMENTS(secrets); i++) {
    if (file_contains_text(path, secrets[i]))
      g_error("%s holds \"%s\" in plaintext", path, secrets[i]);
  }
}

static void
test_no_plaintext_on_disk(Fixture *f, gconstpointer data)
{
  g_autofree char *wal = g_strconcat(f->path, "-wal", NULL);
  g_autofree char *id = NULL;
  g_autoptr(WaStoreOutbox) entry = NULL;
  g_autoptr(WaStoreOutbox) moved = NULL;
  WaStoreInbound in = {
    .wa_id = WA_ID_A,
    .bsuid = BSUID_A,
    .profile_name = NAME_A,
    .direction = WA_STORE_IN,
    .wamid = "wamid.secret-1",
    .type = "image",
    .body = BODY_A,
    .caption = "caption-secret",
    .raw = "{\"raw-secret\":1}",
    .timestamp = NOW,
  };
  WaStoreOutboxChange fail = {.state = WA_STORE_OUTBOX_FAILED, .error_text = "error-secret"};
  g_auto(Wait) w = {0}, w2 = {0}, w3 = {0}, w4 = {0}, w5 = {0};

  store_ready(f, 0);
  wa_store_inbound(f->store, &in, on_inbound, &w);
  done_ok(f, &w);
  id = g_strdup(w.customer->id);
  wa_store_setting_set(f->store, id, "label", "setting-secret", on_done, &w2);
  done_ok(f, &w2);
  wa_store_consent_record(f->store, id, WA_STORE_CONSENT_OPT_IN, "marketing", "agent", "note-secret", 0, on_done, &w3);
  done_ok(f, &w3);
  entry = enqueue(f, id, "outbound reply");
  moved = outbox_move(f, entry->id, WA_STORE_OUTBOX_SENDING, NULL, NULL);
  wa_store_outbox_update(f->store, entry->id, &fail, on_outbox, &w4);
  done_ok(f, &w4);
  wa_store_flush(f->store, on_done, &w5);
  done_ok(f, &w5);
  /* the commits are still in the WAL (no checkpoint yet): not readable there */
  g_assert_true(g_file_test(wal, G_FILE_TEST_EXISTS));
  assert_no_plaintext(wal, TRUE);
  store_close(f);
  assert_no_plaintext(f->path, TRUE);
  assert_no_plaintext(wal, FALSE);
}

/* ---- accountability ------------------------------------------------------------------ */

static void
test_audit_chain(Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autofree char *refused = NULL;
  WaStoreAuditReport report;
  g_auto(Wait) w = {0};
  gint64 rows;

  store_ready(f, 0);
  id = inbound(f, WA_ID_A, NULL, NAME_A, "wamid.1", BODY_A, NOW);
  wa_store_audit_append(f->store, "campaign.sent", id, "template=order_ready", on_done, &w);
  done_ok(f, &w);
  wait_clear(&w);
  wa_store_audit_append(f->store, "notice.shown", NULL, NULL, on_done, &w);
  done_ok(f, &w);
  report = audit_verify(f);
  g_assert_true(report.ok);
  g_assert_cmpuint(report.rows, >=, 4); /* store.created, customer.created, and ours */
  g_assert_cmpint(report.first_broken, ==, 0);
  store_close(f);
  rows = raw_int(f->path, "SELECT count(*) FROM audit");
  /* pseudonymous: no phone number or name in the log */
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM audit WHERE detail LIKE '%" WA_ID_A "%'"), ==, 0);

  /* the log refuses edits... */
  refused = raw_exec_refused(f->path, "UPDATE audit SET detail = 'x' WHERE seq = 2");
  g_assert_nonnull(strstr(refused, "append-only"));
  g_clear_pointer(&refused, g_free);
  refused = raw_exec_refused(f->path, "DELETE FROM audit WHERE seq = 1");
  g_assert_nonnull(strstr(refused, "append-only"));
  /* ...and one that gets past the triggers is detected */
  raw_exec(f->path, "DROP TRIGGER audit_no_update; UPDATE audit SET action = 'customer.viewed' WHERE seq = 2;");
  store_ready(f, 0);
  report = audit_verify(f);
  g_assert_false(report.ok);
  g_assert_cmpint(report.first_broken, ==, 2);
  g_assert_cmpuint(report.rows, ==, rows);
  store_close(f);

  /* so is a tail cut off */
  raw_exec(f->path, "UPDATE audit SET action = 'customer.created' WHERE seq = 2;"
                    "DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit);");
  store_ready(f, 0);
  report = audit_verify(f);
  g_assert_false(report.ok);
  g_assert_cmpint(report.first_broken, ==, rows);
}

static void
test_consent_ledger(Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autofree char *refused = NULL;
  g_auto(Wait) w = {0}, w2 = {0}, w3 = {0}, w4 = {0}, w5 = {0};

  store_ready(f, 0);
  id = inbound(f, WA_ID_A, NULL, NAME_A, "wamid.1", BODY_A, NOW);
  wa_store_consent_record(f->store, id, WA_STORE_CONSENT_OPT_IN, "marketing", "keyword", "replied START", NOW - 100,
                          on_done, &w);
  done_ok(f, &w);
  wa_store_consent_record(f->store, id, WA_STORE_CONSENT_OPT_OUT, "marketing", "keyword", "replied STOP", 0, on_done,
                          &w2);
  done_ok(f, &w2);
  wa_store_consent_record(f->store, id, WA_STORE_CONSENT_OPT_IN, "utility", "agent", NULL, 0, on_done, &w3);
  done_ok(f, &w3);
  wa_store_consent_latest(f->store, id, "marketing", on_consent, &w4);
  done_ok(f, &w4);
  g_assert_cmpint(w4.consent->state, ==, WA_STORE_CONSENT_OPT_OUT);
  g_assert_cmpstr(w4.consent->note, ==, "replied STOP");
  g_assert_cmpstr(w4.consent->source, ==, "keyword");
  g_assert_cmpint(w4.consent->at, ==, NOW);
  wa_store_consent_latest(f->store, id, "service", on_consent, &w5);
  done_ok(f, &w5);
  g_assert_null(w5.consent);
  store_close(f);

  refused = raw_exec_refused(f->path, "UPDATE consent SET state = 1");
  g_assert_nonnull(strstr(refused, "append-only"));
  g_clear_pointer(&refused, g_free);
  refused = raw_exec_refused(f->path, "DELETE FROM consent");
  g_assert_nonnull(strstr(refused, "append-only"));
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM consent"), ==, 3);
}

/* ---- data protection --------------------------------------------------------------- */

static void
test_export(Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autofree char *other = NULL;
  g_autoptr(WaStoreOutbox) entry = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) error = NULL;
  JsonObject *obj;
  JsonArray *messages;
  JsonArray *audit;
  gboolean exported = FALSE;
  g_auto(Wait) w = {0}, w2 = {0}, w3 = {0};

  store_ready(f, 0);
  id = inbound(f, WA_ID_A, NULL, NAME_A, "wamid.1", BODY_A, NOW - 10);
  other = inbound(f, WA_ID_B, NULL, NAME_B, "wamid.2", BODY_B, NOW - 5);
  entry = enqueue(f, id, "our answer");
  wa_store_consent_record(f->store, id, WA_STORE_CONSENT_OPT_IN, "marketing", "agent", "asked by phone", 0, on_done,
                          &w);
  done_ok(f, &w);
  wa_store_setting_set(f->store, id, "label", "VIP", on_done, &w3);
  done_ok(f, &w3);
  wa_store_customer_export(f->store, id, on_string, &w2);
  done_ok(f, &w2);

  root = wa_json_parse(w2.text, strlen(w2.text), &error);
  g_assert_no_error(error);
  obj = json_node_get_object(root);
  g_assert_cmpstr(json_object_get_string_member(json_object_get_object_member(obj, "customer"), "wa_id"), ==, WA_ID_A);
  g_assert_cmpstr(json_object_get_string_member(json_object_get_object_member(obj, "customer"), "profile_name"), ==,
                  NAME_A);
  messages = json_object_get_array_member(obj, "messages");
  g_assert_cmpuint(json_array_get_length(messages), ==, 2);
  g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(messages, 0), "body"), ==, BODY_A);
  g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(messages, 0), "direction"), ==, "in");
  g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(messages, 0), "raw_event"), ==,
                  "{\"raw\":\"event\"}");
  g_assert_cmpstr(json_object_get_string_member(json_array_get_object_element(messages, 1), "body"), ==, "our answer");
  g_assert_cmpuint(json_array_get_length(json_object_get_array_member(obj, "outbox")), ==, 1);
  g_assert_cmpstr(json_object_get_string_member(
                    json_array_get_object_element(json_object_get_array_member(obj, "consent"), 0), "note"),
                  ==, "asked by phone");
  g_assert_cmpstr(json_object_get_string_member(json_object_get_object_member(obj, "settings"), "label"), ==, "VIP");
  audit = json_object_get_array_member(obj, "audit");
  for (guint i = 0; i < json_array_get_length(audit); i++)
    if (g_strcmp0(json_object_get_string_member(json_array_get_object_element(audit, i), "action"),
                  "customer.exported") == 0)
      exported = TRUE;
  g_assert_true(exported);
  /* nothing of the other customer */
  g_assert_null(strstr(w2.text, BODY_B));
  g_assert_null(strstr(w2.text, WA_ID_B));
}

static void
test_erase(Fixture *f, gconstpointer data)
{
  g_autofree char *wal = g_strconcat(f->path, "-wal", NULL);
  g_autofree char *a = NULL;
  g_autofree char *b = NULL;
  g_autofree char *sql = NULL;
  g_autoptr(WaStoreOutbox) entry = NULL;
  g_autoptr(GBytes) sealed_body = NULL;
  g_autoptr(GBytes) sealed_name = NULL;
  g_autoptr(GBytes) wrapped = NULL;
  g_autoptr(GBytes) sealed_note = NULL;
  g_autoptr(GPtrArray) list = NULL;
  WaStoreAuditReport report;
  g_auto(Wait) w = {0}, w2 = {0}, w3 = {0}, w4 = {0}, w5 = {0}, w6 = {0}, w7 = {0}, w8 = {0};

  store_ready(f, 0);
  a = inbound(f, WA_ID_A, BSUID_A, NAME_A, "wamid.a", BODY_A, NOW);
  b = inbound(f, WA_ID_B, NULL, NAME_B, "wamid.b", BODY_B, NOW);
  entry = enqueue(f, a, "reply to Ada");
  wa_store_consent_record(f->store, a, WA_STORE_CONSENT_OPT_IN, "marketing", "agent", "note about Ada", 0, on_done, &w);
  done_ok(f, &w);
  wait_clear(&w);
  wa_store_setting_set(f->store, a, "label", "label of Ada", on_done, &w);
  done_ok(f, &w);
  wait_clear(&w);
  wa_store_setting_set(f->store, b, "label", "label of Bruno", on_done, &w);
  done_ok(f, &w);
  store_close(f);
  /* what of A is on disk, sealed: none of it may survive the erasure */
  sql = g_strdup_printf("SELECT body FROM messages WHERE customer_id = '%s' AND direction = 0", a);
  sealed_body = raw_blob(f->path, sql);
  g_free(sql);
  sql = g_strdup_printf("SELECT name FROM customers WHERE id = '%s'", a);
  sealed_name = raw_blob(f->path, sql);
  g_free(sql);
  sql = g_strdup_printf("SELECT wrapped_key FROM customers WHERE id = '%s'", a);
  wrapped = raw_blob(f->path, sql);
  g_free(sql);
  sql = g_strdup_printf("SELECT note FROM consent WHERE customer_id = '%s'", a);
  sealed_note = raw_blob(f->path, sql);
  g_assert_nonnull(sealed_body);
  g_assert_nonnull(sealed_name);
  g_assert_nonnull(wrapped);
  g_assert_nonnull(sealed_note);
  g_assert_true(file_contains(f->path, g_bytes_get_data(sealed_body, NULL), g_bytes_get_size(sealed_body)));

  store_ready(f, 0);
  wa_store_customer_erase(f->store, a, on_done, &w2);
  done_ok(f, &w2);
  wa_store_customer_get(f->store, a, on_customer, &w3);
  done_ok(f, &w3);
  g_assert_null(w3.customer);
  list = history(f, a, 10);
  g_assert_cmpuint(list->len, ==, 0);
  g_clear_pointer(&list, g_ptr_array_unref);
  list = outbox_list(f, 0x1f);
  g_assert_cmpuint(list->len, ==, 0);
  g_clear_pointer(&list, g_ptr_array_unref);
  /* the number and the BSUID are suppressed, B is untouched */
  wa_store_is_suppressed(f->store, WA_ID_A, on_suppressed, &w4);
  done_ok(f, &w4);
  g_assert_true(w4.suppressed);
  g_assert_cmpint(w4.reason, ==, WA_STORE_SUPPRESS_ERASURE);
  wa_store_is_suppressed(f->store, BSUID_A, on_suppressed, &w5);
  done_ok(f, &w5);
  g_assert_true(w5.suppressed);
  wa_store_is_suppressed(f->store, WA_ID_B, on_suppressed, &w6);
  done_ok(f, &w6);
  g_assert_false(w6.suppressed);
  list = history(f, b, 10);
  g_assert_cmpuint(list->len, ==, 1);
  g_assert_cmpstr(((WaStoreMessage *) list->pdata[0])->body, ==, BODY_B);
  g_clear_pointer(&list, g_ptr_array_unref);
  /* an import or campaign cannot bring A back */
  wa_store_customer_ensure(f->store, WA_ID_A, NULL, NULL, WA_STORE_ENSURE_REFUSE_SUPPRESSED, on_update, &w7);
  wait_for(&w7);
  g_assert_error(w7.error, WA_STORE_ERROR, WA_STORE_ERROR_SUPPRESSED);
  report = audit_verify(f);
  g_assert_true(report.ok);
  /* an opt-out suppression without erasure */
  wa_store_suppress(f->store, WA_ID_B, WA_STORE_SUPPRESS_OPT_OUT, on_done, &w8);
  done_ok(f, &w8);
  store_close(f);

  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM customers"), ==, 1);
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM consent"), ==, 0);
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM settings"), ==, 1); /* Bruno's */
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM audit WHERE action = 'customer.erased'"), ==, 1);
  /* nothing of A in the files: neither plaintext nor ciphertext (secure_delete) */
  for (guint i = 0; i < 2; i++) {
    const char *file = i == 0 ? f->path : wal;

    if (!g_file_test(file, G_FILE_TEST_EXISTS))
      continue;
    g_assert_false(file_contains_text(file, BODY_A));
    g_assert_false(file_contains_text(file, NAME_A));
    g_assert_false(file_contains_text(file, WA_ID_A));
    g_assert_false(file_contains(file, g_bytes_get_data(sealed_body, NULL), g_bytes_get_size(sealed_body)));
    g_assert_false(file_contains(file, g_bytes_get_data(sealed_name, NULL), g_bytes_get_size(sealed_name)));
    g_assert_false(file_contains(file, g_bytes_get_data(wrapped, NULL), g_bytes_get_size(wrapped)));
    g_assert_false(file_contains(file, g_bytes_get_data(sealed_note, NULL), g_bytes_get_size(sealed_note)));
  }
}

static void
test_retention(Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(WaStoreOutbox) waiting = NULL;
  g_autoptr(WaStoreOutbox) failed = NULL;
  g_autoptr(WaStoreOutbox) moved = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(Wait) w = {0};
  WaStoreMessage *old;
  WaStoreMessage *recent;

  store_ready(f, 0);
  id = inbound(f, WA_ID_A, NULL, NAME_A, "wamid.old", "an old message", NOW - 40 * DAY);
  g_free(inbound(f, WA_ID_A, NULL, NAME_A, "wamid.new", "a recent message", NOW - DAY));
  /* an old entry still waiting to be sent keeps its body */
  wa_clock_fake_set_wall(f->clock, (gint64) (NOW - 35 * DAY) * G_USEC_PER_SEC);
  waiting = enqueue(f, id, "still waiting");
  failed = enqueue(f, id, "failed long ago");
  g_clear_pointer(&moved, wa_store_outbox_free);
  moved = outbox_move(f, failed->id, WA_STORE_OUTBOX_SENDING, NULL, NULL);
  g_clear_pointer(&moved, wa_store_outbox_free);
  moved = outbox_move(f, failed->id, WA_STORE_OUTBOX_FAILED, NULL, NULL);
  wa_clock_fake_set_wall(f->clock, (gint64) NOW * G_USEC_PER_SEC);
  wa_store_apply_retention(f->store, 30 * DAY, on_count, &w);
  done_ok(f, &w);
  g_assert_cmpuint(w.count, ==, 2);
  list = history(f, id, 10);
  g_assert_cmpuint(list->len, ==, 4);
  old = list->pdata[0];
  g_assert_true(old->expired);
  g_assert_null(old->body);
  g_assert_cmpstr(old->wamid, ==, "wamid.old"); /* the metadata stays */
  g_assert_cmpint(old->timestamp, ==, NOW - 40 * DAY);
  g_assert_cmpstr(((WaStoreMessage *) list->pdata[1])->body, ==, "still waiting");
  g_assert_true(((WaStoreMessage *) list->pdata[2])->expired);
  recent = list->pdata[3];
  g_assert_false(recent->expired);
  g_assert_cmpstr(recent->body, ==, "a recent message");
  /* what retention deleted cannot be resent */
  g_clear_pointer(&moved, wa_store_outbox_free);
  moved = outbox_move(f, failed->id, WA_STORE_OUTBOX_QUEUED, NULL, &error);
  g_assert_error(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID);
  store_close(f);
  g_assert_false(file_contains_text(f->path, "failed long ago"));
  g_assert_false(file_contains_text(f->path, "an old message"));
}

/* SQLITE_TMPDIR for this process (main): a directory nothing else uses. */
static char *sqlite_tmpdir;

/* A request that changes many pages (retention over 300 messages, more than
 * 64 KiB of its savepoint's statement journal) leaves no temporary file:
 * the journal stays in memory, not in a file outside the store's directory
 * (and every page written twice). */
static void
test_no_temporary_files(Fixture *f, gconstpointer data)
{
  g_autofree char *id = NULL;
  g_autofree char *body = g_strnfill(600, 'x');
  g_auto(Wait) w = {0};
  char events[4096];
  ssize_t n;
  int fd;

  store_ready(f, 0);
  for (guint i = 0; i < 300; i++) {
    g_autofree char *wamid = g_strdup_printf("wamid.old%u", i);

    g_free(id);
    id = inbound(f, WA_ID_A, NULL, NAME_A, wamid, body, NOW - 40 * DAY + i);
  }
  fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  g_assert_cmpint(fd, >=, 0);
  g_assert_cmpint(inotify_add_watch(fd, sqlite_tmpdir, IN_CREATE), >=, 0);
  wa_store_apply_retention(f->store, 30 * DAY, on_count, &w);
  done_ok(f, &w);
  g_assert_cmpuint(w.count, ==, 300);
  n = read(fd, events, sizeof events);
  g_assert_cmpint(n, <, 0); /* nothing was created there */
  g_assert_cmpint(errno, ==, EAGAIN);
  close(fd);
}

/* The keys of the last 700 customers used stay unwrapped: a campaign at
 * 1,000/s uses each recipient's key again after up to about 660 others
 * (read, checked, begun, in flight). */
static void
test_key_cache_spans_a_campaign(Fixture *f, gconstpointer data)
{
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
  guint loads;

  store_ready(f, 0);
  for (guint i = 0; i < 700; i++) {
    g_autofree char *wa_id = g_strdup_printf("4917%08u", 10000000 + i);
    g_autofree char *wamid = g_strdup_printf("wamid.key%u", i);

    g_ptr_array_add(ids, inbound(f, wa_id, NULL, NULL, wamid, "hello", NOW));
  }
  loads = wa_store_test_key_loads(f->store);
  for (guint i = 0; i < ids->len; i++)
    wa_store_outbox_free(enqueue(f, ids->pdata[i], "your parcel"));
  g_assert_cmpuint(wa_store_test_key_loads(f->store), ==, loads);
}

/* ---- storage failures and group commit ---------------------------------------------- */

static void
test_storage_full(Fixture *f, gconstpointer data)
{
  g_autofree char *big = g_strnfill(1024 * 1024, 'x');
  g_autoptr(GPtrArray) list = NULL;
  WaStoreInbound in = {
    .wa_id = WA_ID_B,
    .profile_name = NAME_B,
    .direction = WA_STORE_IN,
    .wamid = "wamid.big",
    .type = "text",
    .body = big,
    .timestamp = NOW,
  };
  g_auto(Wait) w1 = {0}, w2 = {0}, w3 = {0};
  g_autofree char *id = NULL;

  store_ready(f, 64);
  id = inbound(f, WA_ID_A, NULL, NAME_A, "wamid.1", BODY_A, NOW - 10);
  /* three writes in one transaction; the second does not fit */
  wa_store_test_hold(f->store, TRUE);
  wa_store_customer_ensure(f->store, "4930123456", NULL, "Carla", WA_STORE_ENSURE_DEFAULT, on_update, &w1);
  wa_store_inbound(f->store, &in, on_inbound, &w2);
  wa_store_outbox_enqueue(f->store, id, "text", "a reply", NULL, FALSE, on_outbox, &w3);
  wa_store_test_hold(f->store, FALSE);
  wait_for(&w1);
  wait_for(&w2);
  wait_for(&w3);
  g_assert_error(w1.error, WA_STORE_ERROR, WA_STORE_ERROR_STORAGE);
  g_test_message("storage error: %s", w1.error->message);
  g_assert_error(w2.error, WA_STORE_ERROR, WA_STORE_ERROR_STORAGE);
  g_assert_error(w3.error, WA_STORE_ERROR, WA_STORE_ERROR_STORAGE);
  /* nothing half-written: none of the three is there, before or after a restart */
  list = customers(f);
  g_assert_cmpuint(list->len, ==, 1);
  g_clear_pointer(&list, g_ptr_array_unref);
  list = outbox_list(f, 0x1f);
  g_assert_cmpuint(list->len, ==, 0);
  g_clear_pointer(&list, g_ptr_array_unref);
  /* the store goes on working for writes that fit */
  g_free(inbound(f, WA_ID_A, NULL, NAME_A, "wamid.2", "small", NOW));
  reopen(f);
  list = customers(f);
  g_assert_cmpuint(list->len, ==, 1);
  g_clear_pointer(&list, g_ptr_array_unref);
  list = history(f, id, 10);
  g_assert_cmpuint(list->len, ==, 2);
  store_close(f);
  g_assert_false(file_contains_text(f->path, "Carla"));
}

#define GROUP 10

typedef struct {
  guint done;
  guint failed;
} Count;

static void
on_inbound_count(const WaStoreInboundResult *result, const GError *error, gpointer data)
{
  Count *count = data;

  count->done++;
  if (error != NULL)
    count->failed++;
}

static void
test_group_commit(Fixture *f, gconstpointer data)
{
  Count count = {0};
  guint before;
  g_autoptr(GPtrArray) list = NULL;
  g_autofree char *id = NULL;

  store_ready(f, 0);
  id = inbound(f, WA_ID_A, NULL, NAME_A, "wamid.first", BODY_A, NOW);
  before = wa_store_test_commits(f->store);
  wa_store_test_hold(f->store, TRUE);
  for (int i = 0; i < GROUP; i++) {
    g_autofree char *wamid = g_strdup_printf("wamid.group.%d", i);
    WaStoreInbound in = {
      .wa_id = WA_ID_A,
      .direction = WA_STORE_IN,
      .wamid = wamid,
      .type = "text",
      .body = "group",
      .timestamp = NOW + i,
    };

    wa_store_inbound(f->store, &in, on_inbound_count, &count);
  }
  wa_store_test_hold(f->store, FALSE);
  test_wait_count(count.done, GROUP, DEADLINE_S);
  g_assert_cmpuint(count.failed, ==, 0);
  g_assert_cmpuint(wa_store_test_commits(f->store), ==, before + 1);
  list = history(f, id, 50);
  g_assert_cmpuint(list->len, ==, GROUP + 1);
}

/* ---- closing ------------------------------------------------------------------------ */

static guint late_callbacks;

static void
on_late(const WaStoreInboundResult *result, const GError *error, gpointer data)
{
  late_callbacks++;
}

static void
test_close_runs_queued(Fixture *f, gconstpointer data)
{
  g_autoptr(GPtrArray) list = NULL;
  g_auto(Wait) w = {0};

  store_ready(f, 0);
  late_callbacks = 0;
  for (int i = 0; i < 5; i++) {
    g_autofree char *wamid = g_strdup_printf("wamid.late.%d", i);
    WaStoreInbound in = {
      .wa_id = WA_ID_A,
      .direction = WA_STORE_IN,
      .wamid = wamid,
      .type = "text",
      .body = "late",
      .timestamp = NOW,
    };

    wa_store_inbound(f->store, &in, on_late, NULL);
  }
  /* closed before the loop ran: written, but no callback afterwards */
  store_close(f);
  while (g_main_context_iteration(NULL, FALSE))
    ;
  g_assert_cmpuint(late_callbacks, ==, 0);
  store_ready(f, 0);
  wa_store_customer_lookup(f->store, WA_ID_A, NULL, on_customer, &w);
  done_ok(f, &w);
  list = history(f, w.customer->id, 10);
  g_assert_cmpuint(list->len, ==, 5);
}

typedef struct {
  Fixture *f;
  guint calls;
} CloseFromCallback;

static void
on_close_inside(const WaStoreInboundResult *result, const GError *error, gpointer data)
{
  CloseFromCallback *c = data;

  c->calls++;
  g_clear_pointer(&c->f->store, wa_store_close);
}

static void
test_close_from_callback(Fixture *f, gconstpointer data)
{
  CloseFromCallback c = {.f = f};
  WaStoreInbound in = {
    .wa_id = WA_ID_A,
    .direction = WA_STORE_IN,
    .wamid = "wamid.x",
    .type = "text",
    .body = "x",
    .timestamp = NOW,
  };
  WaStoreInbound in2 = in;

  store_ready(f, 0);
  in2.wamid = "wamid.y";
  wa_store_test_hold(f->store, TRUE);
  wa_store_inbound(f->store, &in, on_close_inside, &c);
  wa_store_inbound(f->store, &in2, on_close_inside, &c);
  wa_store_test_hold(f->store, FALSE);
  test_wait_until(f->store == NULL, DEADLINE_S);
  while (g_main_context_iteration(NULL, FALSE))
    ;
  g_assert_cmpuint(c.calls, ==, 1);
}

/* ---- wa_store_replace_header ------------------------------------------------------ */

static GError *
replace_header(Fixture *f, const WaKey *key, const char *json)
{
  g_auto(Wait) w = {0};

  wa_store_replace_header(f->store, key, json, on_done, &w);
  wait_for(&w);
  return g_steal_pointer(&w.error);
}

/* The passphrase changes while the store is in use: a wrong key or an
 * unreadable header changes nothing; the right one replaces the header (one
 * audit row) and leaves the keys and the outbox (an entry "sending") alone. */
static void
test_replace_header(Fixture *f, gconstpointer data)
{
  g_autoptr(WaKey) file_key = wa_key_new_random(NULL);
  g_autoptr(WaKey) other = wa_key_new_random(NULL);
  g_autoptr(WaKey) data_key = NULL;
  g_autoptr(WaKey) unlocked = NULL;
  g_autoptr(WaKeyHeader) header = NULL;
  g_autoptr(WaKeyHeader) parsed = NULL;
  g_autoptr(WaStoreOutbox) entry = NULL;
  g_autoptr(GPtrArray) list = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *recovery = NULL;
  g_autofree char *json = NULL;
  g_autofree char *rewrapped = NULL;
  g_autofree char *stored = NULL;
  g_autofree char *id = NULL;

  error = store_open(f, 0, &stored);
  g_assert_no_error(error);
  g_assert_null(stored);
  /* before the unlock: refused */
  error = replace_header(f, file_key, "{}");
  g_assert_error(error, WA_STORE_ERROR, WA_STORE_ERROR_LOCKED);
  g_clear_error(&error);
  header = wa_key_header_create_keyfile(file_key, &data_key, &recovery, &error);
  g_assert_no_error(error);
  json = wa_key_header_to_json(header);
  error = store_unlock(f, data_key, json);
  g_assert_no_error(error);
  id = inbound(f, WA_ID_A, NULL, NAME_A, "wamid.1", BODY_A, NOW);
  entry = enqueue(f, id, "on its way");
  wa_store_outbox_free(outbox_move(f, entry->id, WA_STORE_OUTBOX_SENDING, NULL, NULL));

  g_assert_true(wa_key_header_rewrap_passphrase_with_limits(header, data_key, "correct horse battery",
                                                            wa_kdf_limits_minimum(), &error));
  g_assert_no_error(error);
  rewrapped = wa_key_header_to_json(header);
  error = replace_header(f, other, rewrapped);
  g_assert_error(error, WA_STORE_ERROR, WA_STORE_ERROR_WRONG_KEY);
  g_clear_error(&error);
  error = replace_header(f, data_key, "{\"not\":\"a key header\"}");
  g_assert_error(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID);
  g_clear_error(&error);
  error = replace_header(f, data_key, rewrapped);
  g_assert_no_error(error);
  /* still unlocked, nothing of the session changed */
  list = outbox_list(f, WA_STORE_OUTBOX_MASK(WA_STORE_OUTBOX_SENDING));
  g_assert_cmpuint(list->len, ==, 1);
  g_clear_pointer(&list, g_ptr_array_unref);
  list = customers(f);
  g_assert_cmpuint(list->len, ==, 1);
  g_assert_cmpstr(((WaStoreCustomer *) list->pdata[0])->name, ==, NAME_A);
  g_clear_pointer(&list, g_ptr_array_unref);
  store_close(f);
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM audit WHERE action = 'key.rewrapped'"), ==, 1);

  /* the stored header is the new one: the passphrase opens it, the key file no longer */
  error = store_open(f, 0, &stored);
  g_assert_no_error(error);
  g_assert_cmpstr(stored, ==, rewrapped);
  parsed = wa_key_header_from_json(stored, &error);
  g_assert_no_error(error);
  g_assert_null(wa_key_header_unlock_keyfile(parsed, file_key, &error));
  g_assert_error(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_PASSPHRASE);
  g_clear_error(&error);
  unlocked = wa_key_header_unlock_passphrase(parsed, "correct horse battery", &error);
  g_assert_no_error(error);
  error = store_unlock(f, unlocked, NULL);
  g_assert_no_error(error);
  list = customers(f);
  g_assert_cmpuint(list->len, ==, 1);
}

/* ---- key rotation ------------------------------------------------------------------ */

typedef struct {
  gboolean done;
  GError *error;
  WaStoreRotateProgress progress;
  char *code;
} RotateWait;

static void
on_rotate(const WaStoreRotateProgress *progress, const GError *error, gpointer data)
{
  RotateWait *w = data;

  g_assert_false(w->done);
  w->done = TRUE;
  w->error = error != NULL ? g_error_copy(error) : NULL;
  g_assert_true((progress == NULL) == (error != NULL));
  if (progress != NULL) {
    w->progress = *progress;
    w->progress.recovery_code = NULL;
    w->code = g_strdup(progress->recovery_code);
  }
}

/* One slice of at most @max_rows; its error, or NULL with *@progress. */
static GError *
rotate_step(Fixture *f, guint max_rows, WaStoreRotateProgress *progress, char **code)
{
  RotateWait w = {0};

  wa_store_rotate_step(f->store, max_rows, on_rotate, &w);
  test_wait_until(w.done, DEADLINE_S);
  if (progress != NULL)
    *progress = w.progress;
  if (code != NULL)
    *code = g_steal_pointer(&w.code);
  g_free(w.code);
  return w.error;
}

/* A new data key in a real key-file header; *@code its recovery code. */
static WaKey *
rotation_keys(char **header, char **code)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaKey) file_key = wa_key_new_random(NULL);
  g_autoptr(WaKeyHeader) parsed = NULL;
  WaKey *new_key = NULL;

  parsed = wa_key_header_create_keyfile(file_key, &new_key, code, &error);
  g_assert_no_error(error);
  *header = wa_key_header_to_json(parsed);
  return new_key;
}

static GError *
rotate_begin(Fixture *f, const WaKey *data_key, const WaKey *new_key, const char *header, const char *code)
{
  g_auto(Wait) w = {0};

  wa_store_rotate_begin(f->store, data_key, new_key, header, code, on_done, &w);
  wait_for(&w);
  return g_steal_pointer(&w.error);
}

/* A store with customers, messages, an outbox entry, consent, settings and a
 * suppression; the customer ids in @ids. */
static void
rotation_data(Fixture *f, char *ids[3])
{
  g_auto(Wait) w1 = {0}, w2 = {0}, w3 = {0}, w4 = {0};
  g_autoptr(WaStoreOutbox) entry = NULL;

  ids[0] = inbound(f, WA_ID_A, NULL, NAME_A, "wamid.a1", BODY_A, NOW);
  g_free(inbound(f, WA_ID_A, NULL, NAME_A, "wamid.a2", "second of Ada", NOW + 1));
  ids[1] = inbound(f, NULL, BSUID_A, NAME_B, "wamid.b1", BODY_B, NOW + 2);
  ids[2] = inbound(f, WA_ID_B, NULL, "Carla", "wamid.c1", "Carla's question", NOW + 3);
  entry = enqueue(f, ids[0], "our answer to Ada");
  wa_store_consent_record(f->store, ids[0], WA_STORE_CONSENT_OPT_IN, "marketing", "agent", "note-secret", 0, on_done,
                          &w1);
  done_ok(f, &w1);
  wa_store_setting_set(f->store, ids[1], "greeting", "Hello Bruno", on_done, &w2);
  done_ok(f, &w2);
  wa_store_setting_set(f->store, NULL, "away", "closed on Sundays", on_done, &w3);
  done_ok(f, &w3);
  wa_store_suppress(f->store, "4930111222", WA_STORE_SUPPRESS_OPT_OUT, on_done, &w4);
  done_ok(f, &w4);
}

/* Everything rotation_data() stored reads back as it was. */
static void
rotation_data_check(Fixture *f, char *ids[3])
{
  g_autoptr(GPtrArray) a = history(f, ids[0], 10);
  g_autoptr(GPtrArray) b = history(f, ids[1], 10);
  g_autoptr(GPtrArray) c = history(f, ids[2], 10);
  g_autoptr(WaStoreCustomer) ada = customer_get(f, ids[0]);
  g_autoptr(WaStoreCustomer) bruno = customer_get(f, ids[1]);
  g_autoptr(GPtrArray) queued = outbox_list(f, WA_STORE_OUTBOX_MASK(WA_STORE_OUTBOX_QUEUED));
  g_auto(Wait) w1 = {0}, w2 = {0}, w3 = {0}, w4 = {0}, w5 = {0};

  g_assert_cmpuint(a->len, ==, 3);
  for (guint i = 0; i < a->len; i++) {
    const WaStoreMessage *m = a->pdata[i];

    g_assert_false(m->tampered);
    if (g_strcmp0(m->wamid, "wamid.a1") == 0)
      g_assert_cmpstr(m->body, ==, BODY_A);
    else if (g_strcmp0(m->wamid, "wamid.a2") == 0)
      g_assert_cmpstr(m->body, ==, "second of Ada");
    else
      g_assert_cmpstr(m->body, ==, "our answer to Ada");
  }
  g_assert_cmpuint(b->len, ==, 1);
  g_assert_cmpstr(((WaStoreMessage *) b->pdata[0])->body, ==, BODY_B);
  g_assert_cmpuint(c->len, >=, 1);
  g_assert_cmpstr(((WaStoreMessage *) c->pdata[0])->body, ==, "Carla's question");
  g_assert_cmpstr(ada->wa_id, ==, WA_ID_A);
  g_assert_cmpstr(ada->name, ==, NAME_A);
  g_assert_false(ada->tampered);
  g_assert_cmpstr(bruno->bsuid, ==, BSUID_A);
  g_assert_cmpuint(queued->len, ==, 1);
  g_assert_cmpstr(((WaStoreOutbox *) queued->pdata[0])->body, ==, "our answer to Ada");
  wa_store_consent_latest(f->store, ids[0], "marketing", on_consent, &w1);
  done_ok(f, &w1);
  g_assert_cmpstr(w1.consent->note, ==, "note-secret");
  wa_store_setting_get(f->store, ids[1], "greeting", on_string, &w2);
  done_ok(f, &w2);
  g_assert_cmpstr(w2.text, ==, "Hello Bruno");
  wa_store_setting_get(f->store, NULL, "away", on_string, &w3);
  done_ok(f, &w3);
  g_assert_cmpstr(w3.text, ==, "closed on Sundays");
  /* keyed hashes made before still match: the index key is kept */
  wa_store_is_suppressed(f->store, "4930111222", on_suppressed, &w4);
  done_ok(f, &w4);
  g_assert_true(w4.suppressed);
  wa_store_customer_lookup(f->store, WA_ID_B, NULL, on_customer, &w5);
  done_ok(f, &w5);
  g_assert_nonnull(w5.customer);
  g_assert_cmpstr(w5.customer->id, ==, ids[2]);
  g_assert_true(audit_verify(f).ok);
}

/* Rows of any table with sealed columns whose key generation is not @gen. */
static gint64
rows_not_of_generation(Fixture *f, gint64 gen)
{
  g_autofree char *sql =
    g_strdup_printf("SELECT (SELECT count(*) FROM customers WHERE key_gen <> %1$" G_GINT64_FORMAT ")"
                    " + (SELECT count(*) FROM messages WHERE key_gen <> %1$" G_GINT64_FORMAT ")"
                    " + (SELECT count(*) FROM outbox WHERE key_gen <> %1$" G_GINT64_FORMAT ")"
                    " + (SELECT count(*) FROM consent WHERE key_gen <> %1$" G_GINT64_FORMAT ")"
                    " + (SELECT count(*) FROM settings WHERE key_gen <> %1$" G_GINT64_FORMAT ")",
                    gen);

  return raw_int(f->path, sql);
}

/* The customer key of @customer_id as the closed file holds it, unwrapped
 * with @data_key's store key; NULL when that does not open it. */
static WaKey *
raw_customer_key(Fixture *f, const WaKey *data_key, const char *customer_id)
{
  g_autofree char *sql = g_strdup_printf("SELECT wrapped_key FROM customers WHERE id = '%s'", customer_id);
  g_autoptr(GBytes) wrapped = raw_blob(f->path, sql);
  g_autoptr(WaKey) store_key = wa_key_derive(data_key, WA_SUBKEY_STORE);
  g_autoptr(GBytes) plain = wa_crypt_open(store_key, "customers", "key", customer_id, g_bytes_get_data(wrapped, NULL),
                                          g_bytes_get_size(wrapped), NULL);

  return plain != NULL ? wa_key_from_bytes(g_bytes_get_data(plain, NULL), g_bytes_get_size(plain), NULL) : NULL;
}

static gboolean
raw_body_opens(Fixture *f, const WaKey *customer_key, const char *wamid_body)
{
  g_autoptr(GBytes) id =
    raw_blob(f->path, "SELECT id FROM messages WHERE outbox_id IS NULL ORDER BY timestamp LIMIT 1");
  g_autofree char *message_id = g_strndup(g_bytes_get_data(id, NULL), g_bytes_get_size(id));
  g_autofree char *sql = g_strdup_printf("SELECT body FROM messages WHERE id = '%s'", message_id);
  g_autoptr(GBytes) body = raw_blob(f->path, sql);
  g_autoptr(GBytes) plain = wa_crypt_open(customer_key, "messages", "body", message_id, g_bytes_get_data(body, NULL),
                                          g_bytes_get_size(body), NULL);

  return plain != NULL && g_strcmp0(g_bytes_get_data(plain, NULL), wamid_body) == 0;
}

static void
test_rotate_key(Fixture *f, gconstpointer data)
{
  char *ids[3] = {NULL};
  g_autofree char *header = NULL;
  g_autofree char *code = NULL;
  g_autofree char *given = NULL;
  g_autoptr(GBytes) stored_header = NULL;
  g_autoptr(WaKey) new_key = rotation_keys(&header, &code);
  g_autoptr(WaKey) old_customer_key = NULL;
  g_autoptr(WaKey) new_customer_key = NULL;
  g_autoptr(WaKey) other = wa_key_new_random(NULL);
  g_autoptr(GError) error = NULL;
  WaStoreRotateProgress progress = {0};
  guint64 last_done = 0;
  guint steps = 0;

  store_ready(f, 0);
  rotation_data(f, ids);
  store_close(f);
  g_assert_cmpint(rows_not_of_generation(f, 1), ==, 0);
  old_customer_key = raw_customer_key(f, f->key, ids[0]);
  g_assert_nonnull(old_customer_key);
  g_assert_true(raw_body_opens(f, old_customer_key, BODY_A));
  store_ready(f, 0);

  /* nothing under way: a step does nothing */
  error = rotate_step(f, 100, &progress, NULL);
  g_assert_no_error(error);
  g_assert_false(progress.active);
  /* only the store's own key may start it */
  error = rotate_begin(f, other, new_key, header, code);
  g_assert_error(error, WA_STORE_ERROR, WA_STORE_ERROR_WRONG_KEY);
  g_clear_error(&error);

  error = rotate_begin(f, f->key, new_key, header, code);
  g_assert_no_error(error);
  error = rotate_begin(f, new_key, other, header, code);
  g_assert_error(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID);
  g_clear_error(&error);
  /* in slices of one row: one customer at a time, progress only forward */
  do {
    g_autofree char *got = NULL;

    error = rotate_step(f, 1, &progress, &got);
    g_assert_no_error(error);
    g_assert_true(progress.active);
    g_assert_cmpuint(progress.done, >=, last_done);
    g_assert_cmpuint(progress.done, <=, progress.total);
    last_done = progress.done;
    if (progress.finished)
      given = g_steal_pointer(&got);
    else
      g_assert_null(got);
    g_assert_cmpuint(++steps, <=, 10);
  } while (!progress.finished);
  g_assert_cmpuint(steps, ==, 4); /* three customers, then the end */
  g_assert_cmpuint(progress.done, ==, progress.total);
  g_assert_cmpuint(progress.total, ==, 3 + 5); /* customers and messages (the outbox's among them) */
  g_assert_cmpstr(given, ==, code);
  rotation_data_check(f, ids);
  error = rotate_step(f, 100, &progress, NULL);
  g_assert_no_error(error);
  g_assert_false(progress.active);
  store_close(f);

  /* every row is of the new generation; the old key's traces are gone */
  g_assert_cmpint(raw_int(f->path, "SELECT value FROM meta WHERE name = 'key_gen'"), ==, 2);
  g_assert_cmpint(rows_not_of_generation(f, 2), ==, 0);
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM meta WHERE name IN ('key_prev', 'recovery_pending')"), ==, 0);
  stored_header = raw_blob(f->path, "SELECT value FROM meta WHERE name = 'key_header'");
  g_assert_cmpmem(g_bytes_get_data(stored_header, NULL), g_bytes_get_size(stored_header), header, strlen(header));
  /* the old data key opens neither the new customer keys nor, through the
   * customer key it wrapped, the new ciphertexts */
  g_assert_null(raw_customer_key(f, f->key, ids[0]));
  g_assert_false(raw_body_opens(f, old_customer_key, BODY_A));
  new_customer_key = raw_customer_key(f, new_key, ids[0]);
  g_assert_nonnull(new_customer_key);
  g_assert_cmpint(memcmp(wa_key_bytes(new_customer_key), wa_key_bytes(old_customer_key), WA_CRYPT_KEY_BYTES), !=, 0);
  g_assert_true(raw_body_opens(f, new_customer_key, BODY_A));
  g_assert_false(file_contains_text(f->path, BODY_A));

  /* the old key no longer unlocks the store, the new one does */
  error = store_open(f, 0, NULL);
  g_assert_no_error(error);
  error = store_unlock(f, f->key, NULL);
  g_assert_error(error, WA_STORE_ERROR, WA_STORE_ERROR_WRONG_KEY);
  g_clear_error(&error);
  error = store_unlock(f, new_key, NULL);
  g_assert_no_error(error);
  rotation_data_check(f, ids);
  for (guint i = 0; i < G_N_ELEMENTS(ids); i++)
    g_free(ids[i]);
}

/* Stopped after its start, between slices, and inside a slice (rolled back,
 * as a crash leaves it), with new rows meanwhile: every row opens at every
 * point, only the new key unlocks, and the rotation resumes where it stopped. */
static void
test_rotate_interrupted(Fixture *f, gconstpointer data)
{
  char *ids[3] = {NULL};
  g_autofree char *header = NULL;
  g_autofree char *code = NULL;
  g_autofree char *given = NULL;
  g_autofree char *dana = NULL;
  g_autoptr(WaKey) new_key = rotation_keys(&header, &code);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) list = NULL;
  WaStoreRotateProgress progress = {0};
  gint64 pending;

  store_ready(f, 0);
  rotation_data(f, ids);
  error = rotate_begin(f, f->key, new_key, header, code);
  g_assert_no_error(error);
  store_close(f);

  /* stopped right after the start: the old key is refused, the new one reads all */
  error = store_open(f, 0, NULL);
  g_assert_no_error(error);
  error = store_unlock(f, f->key, NULL);
  g_assert_error(error, WA_STORE_ERROR, WA_STORE_ERROR_WRONG_KEY);
  g_clear_error(&error);
  error = store_unlock(f, new_key, NULL);
  g_assert_no_error(error);
  rotation_data_check(f, ids);

  /* one slice, then stopped between slices */
  error = rotate_step(f, 1, &progress, NULL);
  g_assert_no_error(error);
  g_assert_true(progress.active);
  g_assert_false(progress.finished);
  store_close(f);
  pending = rows_not_of_generation(f, 2);
  g_assert_cmpint(pending, >, 0);
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM customers WHERE key_gen = 2"), ==, 1);

  /* a slice that fails half-way leaves nothing of it */
  error = store_open(f, 0, NULL);
  g_assert_no_error(error);
  error = store_unlock(f, new_key, NULL);
  g_assert_no_error(error);
  wa_store_test_rotate_fail_after(f->store, 1);
  error = rotate_step(f, 1000, &progress, NULL);
  g_assert_error(error, WA_STORE_ERROR, WA_STORE_ERROR_STORAGE);
  g_clear_error(&error);
  wa_store_test_rotate_fail_after(f->store, 0);
  rotation_data_check(f, ids);
  /* written meanwhile: to a customer not yet re-keyed, and a new customer */
  g_free(inbound(f, WA_ID_B, NULL, "Carla", "wamid.c2", "Carla again", NOW + 10));
  dana = inbound(f, "4477009900", NULL, "Dana", "wamid.d1", "Dana's first", NOW + 11);
  store_close(f);
  g_assert_cmpint(rows_not_of_generation(f, 2), ==, pending + 1); /* Carla's new message */
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM customers WHERE key_gen = 2"), ==, 2);

  /* resumed at the next unlock, to its end */
  error = store_open(f, 0, NULL);
  g_assert_no_error(error);
  error = store_unlock(f, new_key, NULL);
  g_assert_no_error(error);
  do {
    g_autofree char *got = NULL;

    error = rotate_step(f, 2, &progress, &got);
    g_assert_no_error(error);
    g_assert_true(progress.active);
    if (progress.finished)
      given = g_steal_pointer(&got);
  } while (!progress.finished);
  g_assert_cmpstr(given, ==, code);
  rotation_data_check(f, ids);
  list = history(f, dana, 10);
  g_assert_cmpuint(list->len, ==, 1);
  g_assert_cmpstr(((WaStoreMessage *) list->pdata[0])->body, ==, "Dana's first");
  g_clear_pointer(&list, g_ptr_array_unref);
  list = history(f, ids[2], 10);
  g_assert_cmpuint(list->len, ==, 2);
  store_close(f);
  g_assert_cmpint(rows_not_of_generation(f, 2), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS(ids); i++)
    g_free(ids[i]);
}


/* ---- media --------------------------------------------------------------------- */

#define MEDIA_ID_A "1037543291543636"
#define MEDIA_NAME_A "Ada's passport scan.pdf"

typedef struct {
  gboolean done;
  GError *error;
  WaStoreMedia *media;
  GPtrArray *list;
  char *message_id;
  gboolean duplicate;
  char *customer_id;
} MediaWait;

static void
media_wait_clear(MediaWait *w)
{
  g_clear_error(&w->error);
  g_clear_pointer(&w->media, wa_store_media_free);
  g_clear_pointer(&w->list, g_ptr_array_unref);
  g_clear_pointer(&w->message_id, g_free);
  g_clear_pointer(&w->customer_id, g_free);
  memset(w, 0, sizeof *w);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(MediaWait, media_wait_clear)

static void
on_media_inbound(const WaStoreInboundResult *result, const GError *error, gpointer data)
{
  MediaWait *w = data;

  if (result != NULL) {
    w->media = wa_store_media_copy(result->media);
    w->message_id = g_strdup(result->message_id);
    w->duplicate = result->duplicate;
    w->customer_id = g_strdup(result->customer.customer->id);
  }
  w->error = error != NULL ? g_error_copy(error) : NULL;
  w->done = TRUE;
}

static void
on_media(const WaStoreMedia *media, const GError *error, gpointer data)
{
  MediaWait *w = data;

  g_assert_true(media == NULL || error == NULL);
  w->media = wa_store_media_copy(media);
  w->error = error != NULL ? g_error_copy(error) : NULL;
  w->done = TRUE;
}

static void
on_media_list(GPtrArray *list, const GError *error, gpointer data)
{
  MediaWait *w = data;

  w->list = list != NULL ? g_ptr_array_ref(list) : NULL;
  w->error = error != NULL ? g_error_copy(error) : NULL;
  w->done = TRUE;
}

static void
media_inbound(Fixture *f, MediaWait *w, const char *wa_id, const char *wamid, const char *type, const char *media_id,
              const char *filename, gint64 timestamp)
{
  WaStoreInboundMedia media = {
    .media_id = media_id,
    .mime_type = "application/pdf",
    .sha256 = "ZmFrZS1kaWdlc3QtZm9yLWEtdGVzdC0xMjM0NTY3OA==",
    .filename = filename,
  };
  WaStoreInbound in = {
    .wa_id = wa_id,
    .direction = WA_STORE_IN,
    .wamid = wamid,
    .type = type,
    .caption = "see attached",
    .timestamp = timestamp,
    .media = &media,
  };

  wa_store_inbound(f->store, &in, on_media_inbound, w);
  test_wait_until(w->done, DEADLINE_S);
  g_assert_no_error(w->error);
}

static guint
media_count(Fixture *f, guint mask)
{
  g_auto(MediaWait) w = {0};

  wa_store_media_list(f->store, mask, on_media_list, &w);
  test_wait_until(w.done, DEADLINE_S);
  g_assert_no_error(w.error);
  return w.list->len;
}

static void
touch_file(const char *path)
{
  g_autofree char *dir = g_path_get_dirname(path);
  g_autoptr(GError) error = NULL;

  g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
  g_file_set_contents(path, "ciphertext", -1, &error);
  g_assert_no_error(error);
}

/* An attachment is recorded with its message (one transaction), numbered
 * per customer, found again for a duplicate, moves through its states, is
 * sealed at rest, survives a key rotation, and its file goes with retention
 * and with erasure. */
static void
test_media(Fixture *f, gconstpointer data)
{
  g_auto(MediaWait) one = {0}, two = {0}, dup = {0}, other = {0}, upd = {0}, got = {0}, missing = {0}, late = {0};
  g_auto(Wait) w = {0}, w2 = {0};
  g_autofree char *header = NULL;
  g_autofree char *code = NULL;
  g_autoptr(WaKey) new_key = NULL;
  g_autoptr(GError) error = NULL;
  WaStoreMediaChange change = {0};
  WaStoreRotateProgress progress = {0};

  store_ready(f, 0);
  media_inbound(f, &one, WA_ID_A, "wamid.m1", "document", MEDIA_ID_A, MEDIA_NAME_A, NOW);
  g_assert_nonnull(one.media);
  g_assert_cmpuint(one.media->number, ==, 1);
  g_assert_cmpint(one.media->state, ==, WA_STORE_MEDIA_PENDING);
  g_assert_cmpstr(one.media->media_id, ==, MEDIA_ID_A);
  g_assert_cmpstr(one.media->filename, ==, MEDIA_NAME_A);
  g_assert_cmpstr(one.media->type, ==, "document");
  g_assert_cmpstr(one.media->message_id, ==, one.message_id);
  g_assert_cmpint(one.media->timestamp, ==, NOW);
  g_assert_nonnull(one.media->file_key);
  g_assert_false(one.media->tampered);
  /* files are named by the store, never by the customer */
  g_assert_true(g_str_has_prefix(one.media->path, f->dir));
  g_assert_null(strstr(one.media->path, "passport"));
  media_inbound(f, &two, WA_ID_A, "wamid.m2", "image", "2621233374848975", NULL, NOW + 1);
  g_assert_cmpuint(two.media->number, ==, 2);
  g_assert_cmpstr(two.media->path, !=, one.media->path);
  media_inbound(f, &other, WA_ID_B, "wamid.m3", "audio", "777", NULL, NOW - 40 * DAY);
  g_assert_cmpuint(other.media->number, ==, 1);
  /* the same event again: the stored attachment, not a new one */
  media_inbound(f, &dup, WA_ID_A, "wamid.m1", "document", MEDIA_ID_A, MEDIA_NAME_A, NOW);
  g_assert_true(dup.duplicate);
  g_assert_cmpstr(dup.media->id, ==, one.media->id);
  g_assert_cmpuint(media_count(f, WA_STORE_MEDIA_MASK(WA_STORE_MEDIA_PENDING)), ==, 3);

  /* a retry, then done */
  change.state = WA_STORE_MEDIA_PENDING;
  change.count_attempt = TRUE;
  change.next_attempt = NOW + 30;
  change.error_text = "the media server answered 500";
  wa_store_media_update(f->store, one.media->id, &change, on_media, &upd);
  test_wait_until(upd.done, DEADLINE_S);
  g_assert_no_error(upd.error);
  g_assert_cmpuint(upd.media->attempts, ==, 1);
  g_assert_cmpint(upd.media->next_attempt, ==, NOW + 30);
  g_assert_cmpstr(upd.media->error, ==, "the media server answered 500");
  media_wait_clear(&upd);
  change = (WaStoreMediaChange){.state = WA_STORE_MEDIA_DONE, .size = 123456, .mime_type = "application/pdf"};
  wa_store_media_update(f->store, one.media->id, &change, on_media, &upd);
  test_wait_until(upd.done, DEADLINE_S);
  g_assert_no_error(upd.error);
  g_assert_cmpint(upd.media->state, ==, WA_STORE_MEDIA_DONE);
  g_assert_cmpint(upd.media->size, ==, 123456);
  g_assert_null(upd.media->error);
  g_assert_cmpuint(media_count(f, WA_STORE_MEDIA_MASK(WA_STORE_MEDIA_PENDING)), ==, 2);
  g_assert_cmpuint(media_count(f, WA_STORE_MEDIA_MASK(WA_STORE_MEDIA_DONE)), ==, 1);
  touch_file(one.media->path);
  touch_file(other.media->path);

  /* /save N finds it by customer and number */
  wa_store_media_get(f->store, one.customer_id, 1, on_media, &got);
  test_wait_until(got.done, DEADLINE_S);
  g_assert_no_error(got.error);
  g_assert_cmpstr(got.media->id, ==, one.media->id);
  g_assert_cmpmem(wa_key_bytes(got.media->file_key), WA_CRYPT_KEY_BYTES, wa_key_bytes(one.media->file_key),
                  WA_CRYPT_KEY_BYTES);
  wa_store_media_get(f->store, one.customer_id, 9, on_media, &missing);
  test_wait_until(missing.done, DEADLINE_S);
  g_assert_no_error(missing.error);
  g_assert_null(missing.media);
  store_close(f);
  /* sealed at rest: neither the media id nor the file name in the file */
  g_assert_false(file_contains_text(f->path, MEDIA_ID_A));
  g_assert_false(file_contains_text(f->path, "passport"));
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM media WHERE key_gen = 1"), ==, 3);

  /* a key rotation seals the rows again; the file keys stay the same */
  store_ready(f, 0);
  new_key = rotation_keys(&header, &code);
  error = rotate_begin(f, f->key, new_key, header, code);
  g_assert_no_error(error);
  do {
    g_autofree char *given = NULL;

    error = rotate_step(f, 100, &progress, &given);
    g_assert_no_error(error);
  } while (!progress.finished);
  store_close(f);
  g_assert_cmpint(raw_int(f->path, "SELECT count(*) FROM media WHERE key_gen <> 2"), ==, 0);
  error = store_open(f, 0, NULL);
  g_assert_no_error(error);
  error = store_unlock(f, new_key, NULL);
  g_assert_no_error(error);
  wa_store_media_get(f->store, one.customer_id, 1, on_media, &late);
  test_wait_until(late.done, DEADLINE_S);
  g_assert_no_error(late.error);
  g_assert_false(late.media->tampered);
  g_assert_cmpstr(late.media->media_id, ==, MEDIA_ID_A);
  g_assert_cmpmem(wa_key_bytes(late.media->file_key), WA_CRYPT_KEY_BYTES, wa_key_bytes(one.media->file_key),
                  WA_CRYPT_KEY_BYTES);

  /* retention: the old message's file goes, its row says so */
  wa_store_apply_retention(f->store, 30 * DAY, on_count, &w);
  wait_for(&w);
  g_assert_no_error(w.error);
  g_assert_false(g_file_test(other.media->path, G_FILE_TEST_EXISTS));
  g_assert_true(g_file_test(one.media->path, G_FILE_TEST_EXISTS));
  g_assert_cmpuint(media_count(f, WA_STORE_MEDIA_MASK(WA_STORE_MEDIA_EXPIRED)), ==, 1);
  {
    /* its download, still running then, ends: the row stays expired and
     * the file it wrote is deleted */
    g_auto(MediaWait) finished = {0};

    touch_file(other.media->path);
    change = (WaStoreMediaChange){.state = WA_STORE_MEDIA_DONE, .size = 4096};
    wa_store_media_update(f->store, other.media->id, &change, on_media, &finished);
    test_wait_until(finished.done, DEADLINE_S);
    g_assert_no_error(finished.error);
    g_assert_cmpint(finished.media->state, ==, WA_STORE_MEDIA_EXPIRED);
    g_assert_false(g_file_test(other.media->path, G_FILE_TEST_EXISTS));
    g_assert_cmpuint(media_count(f, WA_STORE_MEDIA_MASK(WA_STORE_MEDIA_EXPIRED)), ==, 1);
  }

  /* erasure: rows and files */
  wa_store_customer_erase(f->store, one.customer_id, on_done, &w2);
  done_ok(f, &w2);
  g_assert_false(g_file_test(one.media->path, G_FILE_TEST_EXISTS));
  g_assert_cmpuint(media_count(f, 0xf), ==, 1);
}

int
main(int argc, char **argv)
{
  int rc;

  g_test_init(&argc, &argv, NULL);
  /* before SQLite reads it, at its first open */
  sqlite_tmpdir = g_dir_make_tmp("wabiz-test-sqlite-tmp-XXXXXX", NULL);
  g_assert_nonnull(sqlite_tmpdir);
  g_setenv("SQLITE_TMPDIR", sqlite_tmpdir, TRUE);

#define ADD(name, func) g_test_add("/store/" name, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD("files-and-modes", test_files_and_modes);
  ADD("second-open-refused", test_second_open_refused);
  ADD("newer-schema-refused", test_newer_schema_refused);
  ADD("migrations", test_migrations);
  ADD("media", test_media);
  ADD("wrong-key", test_wrong_key);
  ADD("locked-until-unlocked", test_locked_until_unlocked);
  ADD("key-header-flow", test_key_header_flow);
  ADD("bsuid-then-phone", test_bsuid_then_phone);
  ADD("bsuid-replaced", test_bsuid_replaced);
  ADD("customer-ensure-and-names", test_customer_ensure_and_names);
  ADD("duplicate-wamid", test_duplicate_wamid);
  ADD("window-monotonic", test_window_monotonic);
  ADD("history-limit", test_history_limit);
  ADD("status-ranks", test_status_ranks);
  ADD("status-of-message-sent-elsewhere", test_status_of_message_sent_elsewhere);
  ADD("dropped-then-delivered", test_dropped_then_delivered);
  ADD("outbox-state-machine", test_outbox_state_machine);
  ADD("round-trip-and-settings", test_round_trip_and_settings);
  ADD("swapped-bodies-detected", test_swapped_bodies_detected);
  ADD("rows-moved-between-customers", test_rows_moved_between_customers);
  ADD("no-plaintext-on-disk", test_no_plaintext_on_disk);
  ADD("audit-chain", test_audit_chain);
  ADD("consent-ledger", test_consent_ledger);
  ADD("export", test_export);
  ADD("erase", test_erase);
  ADD("retention", test_retention);
  ADD("no-temporary-files", test_no_temporary_files);
  ADD("key-cache-spans-a-campaign", test_key_cache_spans_a_campaign);
  ADD("storage-full", test_storage_full);
  ADD("group-commit", test_group_commit);
  ADD("close-runs-queued", test_close_runs_queued);
  ADD("close-from-callback", test_close_from_callback);
  ADD("replace-header", test_replace_header);
  ADD("rotate-key", test_rotate_key);
  ADD("rotate-interrupted", test_rotate_interrupted);
#undef ADD
  rc = g_test_run();
  g_rmdir(sqlite_tmpdir);
  g_free(sqlite_tmpdir);
  return rc;
}
