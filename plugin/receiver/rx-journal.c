/* rx-journal.c: wabiz-receiver's durable journal of sealed webhook changes.
 *
 * rx_journal_open() prepares the state directory (0700), journal.db (0600,
 * created before SQLite opens it) and journal.key (32 random bytes, 0600, held
 * in sodium_malloc'd memory), takes SQLite's exclusive lock and checks the
 * schema. After that one worker thread owns the only connection: every request
 * is queued to it, and its answer goes back as an idle source attached to the
 * GMainContext given at open. Appends found queued together are deduplicated,
 * sealed and committed in one transaction (group commit); checkpoints run on
 * the worker too.
 *
 * The worker is the serial stage of ingest, so what does not need the
 * connection is done before, on a second thread (the preparer, which every
 * request passes through in order): it serialises each change's value once,
 * hashes its dedupe keys from those bytes and makes its envelope around them
 * (RxPrepared), so the caller's thread (the receiver's main loop, which
 * parses and verifies the requests) does not either. The worker records the
 * keys, seals (one key agreement per account and transaction) and inserts;
 * it builds an envelope again only for a change that dedupe shortened.
 *
 * Threads and JSON: the preparer and the worker only read the callers' JSON
 * trees and take JsonNode references (which are atomic); JsonObject and
 * JsonArray reference counts are not, so every RxChange is freed on the
 * context's thread, together with the answer to its append, never on the
 * worker. json-glib's generator takes (and drops) a JsonObject reference of
 * the tree it writes: only the one preparer thread serialises callers' trees,
 * and the trees of one append are the caller's no more until it is answered.
 *
 * Must not: call back on the worker thread, log message content, ids, hashes
 * or keys, modify a caller's JSON, or change the process umask. */
#include "rx-journal.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "wa-file.h"
#include "wa-json.h"
#include "wa-sqlite.h"

G_DEFINE_QUARK(rx - journal - error - quark, rx_journal_error)

#define JOURNAL_SCHEMA_VERSION 1
#define JOURNAL_KEY_BYTES 32
#define JOURNAL_HASH_BYTES 32
/* Appends joined into one transaction at most (the rest wait for the next). */
#define JOURNAL_MAX_BATCH 256
/* Checkpoint (TRUNCATE) after this many commits since the last one, or when
 * the WAL holds this many pages (4 MiB at the default page size).
 * tests/unit/test-journal.c knows the commit count. */
#define JOURNAL_CHECKPOINT_COMMITS 64
#define JOURNAL_CHECKPOINT_PAGES 1024

/* ---- requests --------------------------------------------------------- */

typedef enum {
  REQ_APPEND,
  REQ_FETCH,
  REQ_ACK,
  REQ_SAVE_ACCOUNT,
  REQ_REMOVE_ACCOUNT,
  REQ_PENDING,
  REQ_EXPIRE,
  REQ_LOAD_ACCOUNTS, /* answered through ->reply, not the context */
  REQ_NEW,           /* worker -> context only: new events for an account */
  REQ_HOLD,          /* test hook: the worker waits until released */
  REQ_STOP,
} RequestKind;

/* rx_journal_set_new_func()'s callback, shared with queued REQ_NEW answers
 * so that they outlive the journal; cleared at close. */
typedef struct {
  GMutex lock;
  RxJournalNewFunc func;
  gpointer data;
} Notifier;

typedef struct {
  RequestKind kind;
  char *account;
  char *json;
  gint64 seq; /* after_seq, upto_seq, last_seq */
  gint64 now;
  gint64 horizon;
  guint limit;
  GPtrArray *changes; /* RxChange*, freed on the context (see the top comment) */
  union {
    RxAppendFunc append;
    RxFetchFunc fetch;
    RxDoneFunc done;
    RxCountsFunc counts;
  } cb;
  gpointer data;
  Notifier *notifier; /* REQ_NEW */
  GAsyncQueue *reply; /* REQ_LOAD_ACCOUNTS */

  /* results, filled by the worker */
  GError *error;
  guint stored;
  guint duplicates;
  GPtrArray *events; /* RxEvent* */
  GHashTable *table; /* counts or registrations */
  GHashTable *last;  /* REQ_APPEND: account -> gint64* highest seq stored */
} Request;

typedef enum {
  ST_SEEN_INSERT,
  ST_EVENT_INSERT,
  ST_FETCH,
  ST_ACK,
  ST_SAVE_ACCOUNT,
  ST_DELETE_ACCOUNT,
  ST_DELETE_EVENTS,
  ST_PENDING,
  ST_EXPIRE,
  ST_LOAD_ACCOUNTS,
  ST_PENDING_BYTES,
  ST_ACKED_BYTES,
  ST_BEGIN,
  ST_SAVEPOINT,
  ST_RELEASE,
  ST_ROLLBACK_TO,
  ST_COMMIT,
  ST_COUNT
} StatementId;

static const char *const statement_sql[ST_COUNT] = {
  [ST_SEEN_INSERT] = "INSERT OR IGNORE INTO seen (hash, at) VALUES (?1, ?2)",
  [ST_EVENT_INSERT] = "INSERT INTO events (account, received, sealed) VALUES (?1, ?2, ?3)",
  [ST_FETCH] = "SELECT seq, received, sealed FROM events WHERE account = ?1 AND seq > ?2 "
               "ORDER BY seq LIMIT ?3",
  [ST_ACK] = "DELETE FROM events WHERE account = ?1 AND seq <= ?2",
  [ST_SAVE_ACCOUNT] = "INSERT INTO accounts (account, json) VALUES (?1, ?2) "
                      "ON CONFLICT (account) DO UPDATE SET json = excluded.json",
  [ST_DELETE_ACCOUNT] = "DELETE FROM accounts WHERE account = ?1",
  [ST_DELETE_EVENTS] = "DELETE FROM events WHERE account = ?1",
  [ST_PENDING] = "SELECT account, count(*) FROM events GROUP BY account",
  [ST_EXPIRE] = "DELETE FROM seen WHERE at < ?1",
  [ST_LOAD_ACCOUNTS] = "SELECT account, json FROM accounts",
  [ST_PENDING_BYTES] = "SELECT total(length(sealed)) FROM events WHERE account = ?1",
  [ST_ACKED_BYTES] = "SELECT total(length(sealed)) FROM events WHERE account = ?1 AND seq <= ?2",
  /* a group commit's own statements, prepared once (compiling them for each
   * append cost a tenth of the worker's time) */
  [ST_BEGIN] = "BEGIN IMMEDIATE",
  [ST_SAVEPOINT] = "SAVEPOINT append",
  [ST_RELEASE] = "RELEASE append",
  [ST_ROLLBACK_TO] = "ROLLBACK TO append",
  [ST_COMMIT] = "COMMIT",
};

struct _RxJournal {
  GMainContext *context;
  GAsyncQueue *inbox; /* Request*: every request, in order, to the preparer */
  gint in_inbox;      /* requests the preparer has not passed on yet (atomic) */
  GThread *preparer;  /* makes appends' keys and envelopes, passes all on */
  GAsyncQueue *queue; /* Request*: from the preparer to the worker */
  GThread *worker;
  Notifier *notifier;

  /* test hook (rx_journal_test_hold) */
  GMutex hold_lock;
  GCond hold_cond;
  gboolean held;

  /* owned by the worker once it runs */
  sqlite3 *db;
  sqlite3_stmt *statements[ST_COUNT];
  guint8 *key; /* JOURNAL_KEY_BYTES, sodium_malloc'd, read-only */
  guint commits_since_checkpoint;
  int wal_pages;   /* WAL size in pages after the last commit (wal hook) */
  char *dir;       /* statvfs'd for the free-space floor */
  gint64 min_free; /* bytes; set before the first append (rx_journal_set_min_free) */
  /* bytes of sealed events pending per account (account -> gint64*), as
   * committed: filled on first use, kept up to date by appends and ACKs */
  GHashTable *pending_bytes;
  GHashTable *batch_bytes;   /* added by the open transaction's released savepoints */
  GHashTable *request_bytes; /* added by the open savepoint */
  GPtrArray *sealers;        /* WaSealer*: one per account key in the open transaction */
};

/* Test hook, deliberately not in rx-journal.h: see the definition. */
void rx_journal_test_hold(RxJournal *journal, gboolean hold);

static void
notifier_clear(gpointer data)
{
  Notifier *notifier = data;

  g_mutex_clear(&notifier->lock);
}

static Notifier *
notifier_new(void)
{
  Notifier *notifier = g_atomic_rc_box_new0(Notifier);

  g_mutex_init(&notifier->lock);
  return notifier;
}

static void
notifier_release(Notifier *notifier)
{
  g_atomic_rc_box_release_full(notifier, notifier_clear);
}

static void
changes_free(GPtrArray *changes)
{
  /* taken from the caller with or without a free function: free the
   * elements ourselves, exactly once */
  g_ptr_array_set_free_func(changes, NULL);
  for (guint i = 0; i < changes->len; i++)
    rx_change_free(g_ptr_array_index(changes, i));
  g_ptr_array_unref(changes);
}

static Request *
request_new(RequestKind kind)
{
  Request *req = g_new0(Request, 1);

  req->kind = kind;
  return req;
}

static void
request_free(gpointer data)
{
  Request *req = data;

  g_free(req->account);
  if (req->json != NULL) /* a registration holds the app secret */
    sodium_memzero(req->json, strlen(req->json));
  g_free(req->json);
  g_clear_pointer(&req->changes, changes_free);
  g_clear_pointer(&req->notifier, notifier_release);
  g_clear_pointer(&req->reply, g_async_queue_unref);
  g_clear_error(&req->error);
  g_clear_pointer(&req->events, g_ptr_array_unref);
  g_clear_pointer(&req->table, g_hash_table_unref);
  g_clear_pointer(&req->last, g_hash_table_unref);
  g_free(req);
}

/* ---- public value types ----------------------------------------------- */

static void prepared_free(RxPrepared *prep);

RxChange *
rx_change_new(const char *account, const guint8 *public_key, const char *waba_id, gint64 entry_time, const char *field,
              JsonNode *value)
{
  RxChange *change = g_new0(RxChange, 1);

  change->account = g_strdup(account);
  memcpy(change->public_key, public_key, sizeof change->public_key);
  change->waba_id = g_strdup(waba_id);
  change->entry_time = entry_time;
  change->field = g_strdup(field);
  change->value = value;
  return change;
}

void
rx_change_free(RxChange *change)
{
  if (change == NULL)
    return;
  g_free(change->account);
  g_free(change->waba_id);
  g_free(change->field);
  g_clear_pointer(&change->value, json_node_unref);
  g_clear_pointer(&change->prepared, prepared_free);
  g_free(change);
}

void
rx_event_free(RxEvent *event)
{
  if (event == NULL)
    return;
  g_clear_pointer(&event->sealed, g_bytes_unref);
  g_free(event);
}

/* ---- SQLite helpers ----------------------------------------------------- */

static void
set_sqlite_error(GError **error, RxJournalError code, sqlite3 *db, const char *what)
{
  g_set_error(error, RX_JOURNAL_ERROR, code, "%s: %s", what, sqlite3_errmsg(db));
}

static gboolean
exec_sql(RxJournal *journal, const char *sql, RxJournalError code, GError **error)
{
  int rc = sqlite3_exec(journal->db, sql, NULL, NULL, NULL);

  if (rc != SQLITE_OK) {
    set_sqlite_error(error, code, journal->db,
                     code == RX_JOURNAL_ERROR_OPEN ? "cannot open the journal" : "cannot write the journal");
    return FALSE;
  }
  return TRUE;
}

/* A cached statement, ready to bind; give it back with statement_done(). */
static sqlite3_stmt *
statement(RxJournal *journal, StatementId id, GError **error)
{
  if (journal->statements[id] == NULL) {
    int rc =
      sqlite3_prepare_v3(journal->db, statement_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &journal->statements[id], NULL);

    if (rc != SQLITE_OK) {
      set_sqlite_error(error, RX_JOURNAL_ERROR_STORAGE, journal->db, "cannot prepare a journal statement");
      return NULL;
    }
  }
  return journal->statements[id];
}

static void
statement_done(sqlite3_stmt *stmt)
{
  /* the error of a failed step was reported by the caller already */
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
}

/* Steps @stmt to its end (a statement that returns no rows). */
static gboolean
statement_run(RxJournal *journal, sqlite3_stmt *stmt, const char *what, GError **error)
{
  int rc = sqlite3_step(stmt);

  if (rc != SQLITE_DONE) {
    set_sqlite_error(error, RX_JOURNAL_ERROR_STORAGE, journal->db, what);
    statement_done(stmt);
    return FALSE;
  }
  statement_done(stmt);
  return TRUE;
}

/* Runs one of the group commit's statements (ST_BEGIN to ST_COMMIT). */
static gboolean
run_fixed(RxJournal *journal, StatementId id, GError **error)
{
  sqlite3_stmt *stmt = statement(journal, id, error);

  return stmt != NULL && statement_run(journal, stmt, "cannot write the journal", error);
}

static gboolean
bind_failed(RxJournal *journal, sqlite3_stmt *stmt, int rc, GError **error)
{
  if (rc == SQLITE_OK)
    return FALSE;
  set_sqlite_error(error, RX_JOURNAL_ERROR_STORAGE, journal->db, "cannot bind a journal statement");
  statement_done(stmt);
  return TRUE;
}

static void
rollback(RxJournal *journal)
{
  /* SQLITE_FULL and I/O errors may have rolled the transaction back already */
  if (!sqlite3_get_autocommit(journal->db) && sqlite3_exec(journal->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
    g_warning("journal: rollback failed: %s", sqlite3_errmsg(journal->db));
}

static int
wal_hook(void *data, sqlite3 *db, const char *name, int pages)
{
  RxJournal *journal = data;

  journal->wal_pages = pages;
  return SQLITE_OK;
}

static void
checkpoint(RxJournal *journal)
{
  int rc = sqlite3_wal_checkpoint_v2(journal->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);

  if (rc != SQLITE_OK) {
    /* nothing is lost: the WAL keeps the commits and the next one retries */
    g_warning("journal: checkpoint failed: %s", sqlite3_errmsg(journal->db));
    return;
  }
  journal->commits_since_checkpoint = 0;
  journal->wal_pages = 0;
}

static void
after_commit(RxJournal *journal)
{
  journal->commits_since_checkpoint++;
  if (journal->commits_since_checkpoint >= JOURNAL_CHECKPOINT_COMMITS || journal->wal_pages >= JOURNAL_CHECKPOINT_PAGES)
    checkpoint(journal);
}

/* ---- answers on the context --------------------------------------------- */

static gboolean
answer_dispatch(gpointer data)
{
  Request *req = data;

  switch (req->kind) {
  case REQ_APPEND:
    if (req->cb.append != NULL)
      req->cb.append(req->stored, req->duplicates, req->error, req->data);
    break;
  case REQ_FETCH:
    if (req->cb.fetch != NULL)
      req->cb.fetch(req->error == NULL ? req->events : NULL, req->error, req->data);
    break;
  case REQ_PENDING:
    if (req->cb.counts != NULL)
      req->cb.counts(req->error == NULL ? req->table : NULL, req->error, req->data);
    break;
  case REQ_ACK:
  case REQ_SAVE_ACCOUNT:
  case REQ_REMOVE_ACCOUNT:
  case REQ_EXPIRE:
    if (req->cb.done != NULL)
      req->cb.done(req->error, req->data);
    break;
  case REQ_NEW: {
    RxJournalNewFunc func;
    gpointer func_data;

    g_mutex_lock(&req->notifier->lock);
    func = req->notifier->func;
    func_data = req->notifier->data;
    g_mutex_unlock(&req->notifier->lock);
    if (func != NULL)
      func(req->account, req->seq, func_data);
    break;
  }
  case REQ_LOAD_ACCOUNTS:
  case REQ_HOLD:
  case REQ_STOP:
    g_assert_not_reached();
  }
  return G_SOURCE_REMOVE;
}

/* Hands @req to the context (an idle source, so that the callback never runs
 * on the worker, even when the context is the global default one). */
static void
answer(RxJournal *journal, Request *req)
{
  GSource *source = g_idle_source_new();

  g_source_set_priority(source, G_PRIORITY_DEFAULT);
  g_source_set_callback(source, answer_dispatch, req, request_free);
  g_source_set_static_name(source, "rx-journal answer");
  g_source_attach(source, journal->context);
  g_source_unref(source);
}

static gboolean
answers_dispatch(gpointer data)
{
  GPtrArray *answers = data;

  for (guint i = 0; i < answers->len; i++)
    answer_dispatch(g_ptr_array_index(answers, i));
  return G_SOURCE_REMOVE;
}

/* Hands every request of @answers (taken, with request_free as its free
 * function) to the context in one source, in order: one wake-up of the
 * context per group commit instead of one per request. */
static void
answer_all(RxJournal *journal, GPtrArray *answers)
{
  GSource *source;

  if (answers->len == 0) {
    g_ptr_array_unref(answers);
    return;
  }
  source = g_idle_source_new();
  g_source_set_priority(source, G_PRIORITY_DEFAULT);
  g_source_set_callback(source, answers_dispatch, answers, (GDestroyNotify) g_ptr_array_unref);
  g_source_set_static_name(source, "rx-journal answers");
  g_source_attach(source, journal->context);
  g_source_unref(source);
}

/* ---- dedupe and sealing ------------------------------------------------- */

/* Keyed hash of @n_parts strings joined with NUL bytes: "m\0<account>\0<message id>",
 * "s\0<account>\0<status id>\0<status>" or "c\0<account>\0<field>\0<WABA id>\0<entry
 * time>\0<value as JSON>" (a whole change). */
static gboolean
dedupe_hash(RxJournal *journal, const char *const *parts, guint n_parts, guint8 out[JOURNAL_HASH_BYTES])
{
  crypto_generichash_state state;
  int rc;

  rc = crypto_generichash_init(&state, journal->key, JOURNAL_KEY_BYTES, JOURNAL_HASH_BYTES);
  for (guint i = 0; rc == 0 && i < n_parts; i++) {
    if (i > 0)
      rc = crypto_generichash_update(&state, (const guint8 *) "", 1);
    if (rc == 0)
      rc = crypto_generichash_update(&state, (const guint8 *) parts[i], strlen(parts[i]));
  }
  if (rc == 0)
    rc = crypto_generichash_final(&state, out, JOURNAL_HASH_BYTES);
  sodium_memzero(&state, sizeof state);
  return rc == 0;
}

/* Records @hash (see dedupe_hash). *@fresh is TRUE when it was not seen
 * before (in the journal or earlier in this transaction). */
static gboolean
record_hash(RxJournal *journal, const guint8 hash[JOURNAL_HASH_BYTES], gint64 now, gboolean *fresh, GError **error)
{
  sqlite3_stmt *stmt = statement(journal, ST_SEEN_INSERT, error);
  int rc;

  if (stmt == NULL)
    return FALSE;
  rc = sqlite3_bind_blob(stmt, 1, hash, JOURNAL_HASH_BYTES, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(stmt, 2, now);
  if (bind_failed(journal, stmt, rc, error))
    return FALSE;
  if (!statement_run(journal, stmt, "cannot record a dedupe key", error))
    return FALSE;
  *fresh = sqlite3_changes(journal->db) > 0;
  return TRUE;
}

/* The webhook envelope holding exactly @change with @value (PROTOCOL.md). */
static char *
envelope_json(const RxChange *change, JsonNode *value, gint64 now)
{
  JsonObject *root = json_object_new();
  JsonObject *entry = json_object_new();
  JsonObject *item = json_object_new();
  JsonArray *entries = json_array_new();
  JsonArray *changes = json_array_new();
  g_autoptr(JsonNode) node = NULL;

  json_object_set_string_member(item, "field", change->field);
  json_object_set_member(item, "value", json_node_ref(value));
  json_array_add_object_element(changes, item);

  if (change->waba_id != NULL)
    json_object_set_string_member(entry, "id", change->waba_id);
  if (change->entry_time != 0)
    json_object_set_int_member(entry, "time", change->entry_time);
  json_object_set_array_member(entry, "changes", changes);
  json_array_add_object_element(entries, entry);

  json_object_set_string_member(root, "object", "whatsapp_business_account");
  json_object_set_int_member(root, "wabiz_received", now);
  json_object_set_array_member(root, "entry", entries);

  node = json_node_init_object(json_node_alloc(), root);
  json_object_unref(root);
  return wa_json_to_string(node);
}

/* ---- an append's keys and envelope, made on the preparer thread ------- */

/* The keyed hash of one element of a "messages" or "statuses" array, in the
 * order dedupe_value() meets them. */
typedef struct {
  gboolean has_id; /* an object with an id: the hash is its key */
  guint8 hash[JOURNAL_HASH_BYTES];
} ElementKey;

struct _RxPrepared {
  gboolean hashed; /* FALSE when hashing failed: the worker refuses the change */
  /* the value is only messages and statuses (and routine members), each with
   * an id: their keys decide everything the change key would, so it is not
   * recorded (a random B-tree page less to write per event) */
  gboolean ids_cover;
  guint8 change_hash[JOURNAL_HASH_BYTES];
  GArray *elements; /* ElementKey */
  char *plain;      /* the envelope of the whole value (wiped when freed) */
};

static void
prepared_free(RxPrepared *prep)
{
  if (prep == NULL)
    return;
  sodium_memzero(prep->change_hash, sizeof prep->change_hash);
  if (prep->elements != NULL) {
    sodium_memzero(prep->elements->data, (gsize) prep->elements->len * sizeof(ElementKey));
    g_array_unref(prep->elements);
  }
  if (prep->plain != NULL) {
    sodium_memzero(prep->plain, strlen(prep->plain));
    g_free(prep->plain);
  }
  g_free(prep);
}

static gboolean
member_is_routine(const char *name)
{
  return strcmp(name, "messaging_product") == 0 || strcmp(name, "metadata") == 0 || strcmp(name, "contacts") == 0;
}

/* The members of @value that dedupe_value() filters, in its order: the
 * "messages" and "statuses" arrays of an object value. */
static gboolean
is_list_member(const char *name)
{
  return strcmp(name, "messages") == 0 || strcmp(name, "statuses") == 0;
}

/* The envelope of @change with its value serialised as @value_text, made
 * without serialising the value again: json-glib writes the envelope around
 * a null value (the last thing it writes, PROTOCOL.md), and @value_text takes
 * the null's place. The same bytes as envelope_json() with the value. */
static char *
envelope_around(const RxChange *change, const char *value_text, gint64 now)
{
  static const char tail[] = "null}]}]}";
  g_autoptr(JsonNode) null = json_node_new(JSON_NODE_NULL);
  char *skeleton = envelope_json(change, null, now);
  gsize len = strlen(skeleton);
  GString *plain;

  if (change->value == NULL)
    return skeleton;
  if (!g_str_has_suffix(skeleton, tail)) { /* not json-glib's layout: serialise it all */
    g_free(skeleton);
    return envelope_json(change, change->value, now);
  }
  plain = g_string_sized_new(len + strlen(value_text));
  g_string_append_len(plain, skeleton, (gssize) (len - strlen(tail)));
  g_string_append(plain, value_text);
  g_string_append(plain, tail + strlen("null"));
  g_free(skeleton);
  return g_string_free(plain, FALSE);
}

/* Hashes @change's keys and makes its envelope. The change key covers the
 * bytes of the change (its entry's id and time, its field, its value as JSON):
 * a replayed delivery of any field is journalled once; messages and statuses
 * are also deduplicated by id, since Meta sends the same message again in
 * other envelopes (and when ids are all a change has, they alone are
 * recorded: ids_cover). */
static RxPrepared *
prepare_change(RxJournal *journal, const RxChange *change, gint64 now)
{
  RxPrepared *prep = g_new0(RxPrepared, 1);
  char *value_text = change->value != NULL ? wa_json_to_string(change->value) : g_strdup("");
  g_autofree char *entry_time = g_strdup_printf("%" G_GINT64_FORMAT, change->entry_time);
  const char *parts[] = {"c",
                         change->account != NULL ? change->account : "",
                         change->field != NULL ? change->field : "",
                         change->waba_id != NULL ? change->waba_id : "",
                         entry_time,
                         value_text};

  prep->hashed = dedupe_hash(journal, parts, G_N_ELEMENTS(parts), prep->change_hash);
  prep->elements = g_array_new(FALSE, TRUE, sizeof(ElementKey));
  if (change->value != NULL && JSON_NODE_HOLDS_OBJECT(change->value)) {
    JsonObject *in = json_node_get_object(change->value);
    g_autoptr(GList) names = json_object_get_members(in);

    prep->ids_cover = TRUE;
    for (GList *l = names; l != NULL; l = l->next) {
      JsonNode *member = json_object_get_member(in, l->data);
      gboolean statuses = strcmp(l->data, "statuses") == 0;
      JsonArray *array;

      if (!is_list_member(l->data) || !JSON_NODE_HOLDS_ARRAY(member)) {
        prep->ids_cover = prep->ids_cover && !is_list_member(l->data) && member_is_routine(l->data);
        continue;
      }
      array = json_node_get_array(member);
      for (guint i = 0; i < json_array_get_length(array); i++) {
        JsonNode *element = json_array_get_element(array, i);
        JsonObject *obj = JSON_NODE_HOLDS_OBJECT(element) ? json_node_get_object(element) : NULL;
        g_autofree char *id = obj != NULL ? wa_json_dup_id(obj, "id") : NULL;
        ElementKey key = {0};

        prep->ids_cover = prep->ids_cover && id != NULL;
        if (id != NULL) {
          const char *status = statuses ? wa_json_get_string(obj, "status") : NULL;
          const char *element_parts[] = {statuses ? "s" : "m", parts[1], id, status != NULL ? status : ""};

          key.has_id = TRUE;
          if (!dedupe_hash(journal, element_parts, statuses ? 4 : 3, key.hash))
            prep->hashed = FALSE;
        }
        g_array_append_val(prep->elements, key);
      }
    }
    /* a change of empty lists has nothing but its bytes to be known by */
    prep->ids_cover = prep->ids_cover && prep->elements->len > 0;
  }
  prep->plain = envelope_around(change, value_text, now);
  sodium_memzero(value_text, strlen(value_text));
  g_free(value_text);
  return prep;
}

/* ---- dedupe on the worker ------------------------------------------------- */

/* A new array with the elements of @in whose key was not seen; objects
 * without an id are kept (the plugin shows what it can of them), elements
 * that are not objects are left out: nothing can read them. @fresh holds a
 * gboolean per element of every list, in order, from @*cursor on. */
static JsonArray *
filter_array(JsonArray *in, const GArray *fresh, guint *cursor)
{
  JsonArray *out = json_array_new();
  guint len = json_array_get_length(in);

  for (guint i = 0; i < len; i++) {
    JsonNode *element = json_array_get_element(in, i);

    if (g_array_index(fresh, gboolean, (*cursor)++) && JSON_NODE_HOLDS_OBJECT(element))
      json_array_add_element(out, json_node_ref(element));
  }
  return out;
}

/* The value to journal for @change, sharing (never modifying) the caller's
 * nodes: the keys of its messages and statuses are recorded, and *@value is
 * NULL when nothing is to be removed (the prepared envelope holds the
 * change as it came), a new value without what was seen or unreadable, or
 * NULL with *@drop when the change had nothing new: only duplicates
 * (*@duplicate TRUE) or only elements nothing can read. */
static gboolean
dedupe_value(RxJournal *journal, const RxChange *change, gint64 now, JsonNode **value, gboolean *drop,
             gboolean *duplicate, GError **error)
{
  const GArray *keys = change->prepared->elements;
  JsonObject *in;
  g_autoptr(JsonObject) out = NULL;
  g_autoptr(GList) names = NULL;
  g_autoptr(GArray) fresh = NULL;
  guint kept = 0;
  guint dropped = 0;
  guint junk = 0;
  guint cursor = 0;
  gboolean other = FALSE;

  *value = NULL;
  *drop = FALSE;
  *duplicate = FALSE;
  if (change->value == NULL || !JSON_NODE_HOLDS_OBJECT(change->value))
    return TRUE;

  /* the keys, and what they leave */
  in = json_node_get_object(change->value);
  names = json_object_get_members(in);
  fresh = g_array_sized_new(FALSE, FALSE, sizeof(gboolean), keys->len);
  for (GList *l = names; l != NULL; l = l->next) {
    JsonNode *member = json_object_get_member(in, l->data);
    JsonArray *array;

    if (!is_list_member(l->data)) {
      other = other || !member_is_routine(l->data);
      continue;
    }
    if (!JSON_NODE_HOLDS_ARRAY(member)) {
      junk++; /* "messages" or "statuses" that is not an array: left out */
      continue;
    }
    array = json_node_get_array(member);
    for (guint i = 0; i < json_array_get_length(array); i++) {
      const ElementKey *key = &g_array_index(keys, ElementKey, fresh->len);
      gboolean is_fresh = TRUE;

      if (!JSON_NODE_HOLDS_OBJECT(json_array_get_element(array, i)))
        junk++;
      else if (key->has_id && !record_hash(journal, key->hash, now, &is_fresh, error))
        return FALSE;
      else if (is_fresh)
        kept++;
      else
        dropped++;
      g_array_append_val(fresh, is_fresh);
    }
  }
  if (dropped == 0 && junk == 0)
    return TRUE; /* nothing to remove */
  if (kept == 0 && !other) {
    *drop = TRUE;
    *duplicate = dropped > 0;
    return TRUE; /* nothing new, nothing else: drop the change */
  }

  /* a value without them */
  out = json_object_new();
  for (GList *l = names; l != NULL; l = l->next) {
    const char *name = l->data;
    JsonNode *member = json_object_get_member(in, name);
    JsonArray *filtered;

    if (!is_list_member(name)) {
      json_object_set_member(out, name, json_node_ref(member));
      continue;
    }
    if (!JSON_NODE_HOLDS_ARRAY(member))
      continue;
    filtered = filter_array(json_node_get_array(member), fresh, &cursor);
    /* an array emptied by dedupe is left out, as Meta would have sent it;
     * one that arrived empty stays */
    if (json_array_get_length(filtered) == 0 && json_array_get_length(json_node_get_array(member)) > 0)
      json_array_unref(filtered);
    else
      json_object_set_array_member(out, name, filtered);
  }
  *value = json_node_init_object(json_node_alloc(), out);
  return TRUE;
}

static gboolean
insert_event(RxJournal *journal, const char *account, gint64 now, GBytes *sealed, gint64 *seq, GError **error)
{
  sqlite3_stmt *stmt = statement(journal, ST_EVENT_INSERT, error);
  gsize len;
  const void *data;
  int rc;

  if (stmt == NULL)
    return FALSE;
  data = g_bytes_get_data(sealed, &len);
  if (len > G_MAXINT) {
    g_set_error_literal(error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_STORAGE, "cannot store an event: too large");
    statement_done(stmt);
    return FALSE;
  }
  rc = sqlite3_bind_text(stmt, 1, account, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(stmt, 2, now);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_blob(stmt, 3, data, (int) len, SQLITE_STATIC);
  if (bind_failed(journal, stmt, rc, error))
    return FALSE;
  if (!statement_run(journal, stmt, "cannot store an event", error))
    return FALSE;
  *seq = sqlite3_last_insert_rowid(journal->db);
  return TRUE;
}

static void
last_seq_update(GHashTable *last, const char *account, gint64 seq)
{
  gint64 *known = g_hash_table_lookup(last, account);

  if (known == NULL) {
    known = g_new(gint64, 1);
    *known = seq;
    g_hash_table_insert(last, g_strdup(account), known);
  } else if (seq > *known) {
    *known = seq;
  }
}

typedef enum {
  APPEND_OK,
  APPEND_REQUEST_FAILED, /* this request only (sealing, its account's cap): its savepoint is rolled back */
  APPEND_DB_FAILED,      /* the whole transaction fails */
} AppendResult;

/* ---- pending bytes: the per-account cap and the free-space floor ------- */

static gint64
bytes_of(GHashTable *table, const char *account)
{
  gint64 *bytes = g_hash_table_lookup(table, account);

  return bytes != NULL ? *bytes : 0;
}

static void
bytes_add(GHashTable *table, const char *account, gint64 delta)
{
  gint64 *bytes = g_hash_table_lookup(table, account);

  if (bytes == NULL) {
    bytes = g_new0(gint64, 1);
    g_hash_table_insert(table, g_strdup(account), bytes);
  }
  *bytes = MAX(*bytes + delta, 0);
}

/* Adds every count of @from to @to (only to accounts @to knows, unless
 * @create), then empties @from. */
static void
bytes_merge(GHashTable *to, GHashTable *from, gboolean create)
{
  GHashTableIter iter;
  gpointer account, bytes;

  g_hash_table_iter_init(&iter, from);
  while (g_hash_table_iter_next(&iter, &account, &bytes)) {
    if (create || g_hash_table_contains(to, account))
      bytes_add(to, account, *(gint64 *) bytes);
  }
  g_hash_table_remove_all(from);
}

/* Runs a cached statement that answers one total for @account (and @seq,
 * when @with_seq). */
static gboolean
query_bytes(RxJournal *journal, StatementId id, const char *account, gint64 seq, gboolean with_seq, gint64 *out,
            GError **error)
{
  sqlite3_stmt *stmt = statement(journal, id, error);
  int rc;

  if (stmt == NULL)
    return FALSE;
  rc = sqlite3_bind_text(stmt, 1, account, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK && with_seq)
    rc = sqlite3_bind_int64(stmt, 2, seq);
  if (bind_failed(journal, stmt, rc, error))
    return FALSE;
  rc = sqlite3_step(stmt);
  if (rc != SQLITE_ROW) {
    set_sqlite_error(error, RX_JOURNAL_ERROR_STORAGE, journal->db, "cannot sum pending events");
    statement_done(stmt);
    return FALSE;
  }
  *out = (gint64) sqlite3_column_double(stmt, 0);
  statement_done(stmt);
  return TRUE;
}

/* Before the batch's transaction: the committed pending bytes of every
 * account with a cap that is not known yet. */
static gboolean
pending_fill(RxJournal *journal, GPtrArray *batch, GError **error)
{
  for (guint i = 0; i < batch->len; i++) {
    Request *req = g_ptr_array_index(batch, i);

    for (guint c = 0; c < req->changes->len; c++) {
      const RxChange *change = g_ptr_array_index(req->changes, c);
      gint64 bytes = 0;

      if (change->max_pending <= 0 || change->account == NULL ||
          g_hash_table_contains(journal->pending_bytes, change->account))
        continue;
      if (!query_bytes(journal, ST_PENDING_BYTES, change->account, 0, FALSE, &bytes, error))
        return FALSE;
      bytes_add(journal->pending_bytes, change->account, bytes);
    }
  }
  return TRUE;
}

/* FALSE with a FULL error when storing @len more bytes for @change's account
 * would pass its cap. An account with nothing pending always gets one event,
 * however large: a cap below one delivery must not refuse it for ever. */
static gboolean
cap_allows(RxJournal *journal, const RxChange *change, gsize len, GError **error)
{
  g_autofree char *limit = NULL;
  gint64 pending;

  if (change->max_pending <= 0)
    return TRUE;
  pending = bytes_of(journal->pending_bytes, change->account) + bytes_of(journal->batch_bytes, change->account) +
            bytes_of(journal->request_bytes, change->account);
  if (pending == 0 || pending + (gint64) len <= change->max_pending)
    return TRUE;
  limit = g_format_size((guint64) change->max_pending);
  g_set_error(error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_FULL,
              "webhook events of %s wait for this account, its limit: new deliveries are "
              "refused (Meta retries them for up to 7 days) until the messenger signs on and "
              "collects them, or the account's limit is raised",
              limit);
  return FALSE;
}

/* FALSE with a FULL error when the journal's file system has less free
 * space than the floor. */
static gboolean
floor_allows(RxJournal *journal, GError **error)
{
  struct statvfs st;
  gint64 available;
  g_autofree char *free_text = NULL;
  g_autofree char *floor_text = NULL;

  if (journal->min_free <= 0)
    return TRUE;
  if (statvfs(journal->dir, &st) != 0) {
    int errsv = errno;

    g_set_error(error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_STORAGE,
                "cannot tell the free space of the journal's disk: %s", g_strerror(errsv));
    return FALSE;
  }
  available = (gint64) MIN((guint64) st.f_bavail * (guint64) st.f_frsize, (guint64) G_MAXINT64);
  if (available >= journal->min_free)
    return TRUE;
  free_text = g_format_size((guint64) available);
  floor_text = g_format_size((guint64) journal->min_free);
  g_set_error(error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_FULL,
              "only %s are free on the disk of the receiver's journal, which keeps at least %s "
              "free: deliveries are refused (Meta retries them for up to 7 days) until space is "
              "freed",
              free_text, floor_text);
  return FALSE;
}

/* The batch's sealer for @public_key: one key agreement per account key and
 * transaction, not one per event (wa-seal.h). NULL for an unusable key. */
static WaSealer *
sealer_for(RxJournal *journal, const guint8 *public_key)
{
  WaSealer *sealer;

  for (guint i = 0; i < journal->sealers->len; i++) {
    sealer = g_ptr_array_index(journal->sealers, i);
    if (memcmp(wa_sealer_public_key(sealer), public_key, WA_SEAL_PUBLIC_KEY_BYTES) == 0)
      return sealer;
  }
  sealer = wa_sealer_new(public_key);
  if (sealer != NULL)
    g_ptr_array_add(journal->sealers, sealer);
  return sealer;
}

static AppendResult
append_one(RxJournal *journal, Request *req, GError **error)
{
  req->last = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  for (guint i = 0; i < req->changes->len; i++) {
    const RxChange *change = g_ptr_array_index(req->changes, i);
    const RxPrepared *prep = change->prepared;
    g_autoptr(JsonNode) value = NULL;
    g_autoptr(GBytes) sealed = NULL;
    gboolean drop = FALSE;
    gboolean duplicate = FALSE;
    char *rebuilt = NULL;
    const char *plain;
    gint64 seq = 0;
    gboolean fresh = TRUE;
    WaSealer *sealer;

    if (change->account == NULL) {
      g_set_error_literal(error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_STORAGE,
                          "cannot store a change without an account");
      return APPEND_REQUEST_FAILED;
    }
    if (!prep->hashed) {
      g_set_error_literal(error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_STORAGE, "cannot hash a dedupe key");
      return APPEND_REQUEST_FAILED;
    }
    if (!prep->ids_cover && !record_hash(journal, prep->change_hash, req->now, &fresh, error))
      return APPEND_DB_FAILED;
    if (!fresh) {
      req->duplicates++;
      continue;
    }
    if (!dedupe_value(journal, change, req->now, &value, &drop, &duplicate, error))
      return APPEND_DB_FAILED;
    if (drop) {
      if (duplicate)
        req->duplicates++;
      continue;
    }
    /* the envelope made with the change, unless dedupe removed something */
    if (value != NULL)
      rebuilt = envelope_json(change, value, req->now);
    plain = rebuilt != NULL ? rebuilt : prep->plain;
    sealer = sealer_for(journal, change->public_key);
    if (sealer != NULL)
      sealed = wa_sealer_seal(sealer, plain, strlen(plain));
    if (rebuilt != NULL) {
      sodium_memzero(rebuilt, strlen(rebuilt));
      g_free(rebuilt);
    }
    if (sealed == NULL) {
      g_set_error_literal(error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_STORAGE,
                          "cannot seal an event to the account's public key");
      return APPEND_REQUEST_FAILED;
    }
    if (!cap_allows(journal, change, g_bytes_get_size(sealed), error))
      return APPEND_REQUEST_FAILED;
    if (!insert_event(journal, change->account, req->now, sealed, &seq, error))
      return APPEND_DB_FAILED;
    bytes_add(journal->request_bytes, change->account, (gint64) g_bytes_get_size(sealed));
    last_seq_update(req->last, change->account, seq);
    req->stored++;
  }
  return APPEND_OK;
}

static void
fail_request(Request *req, const GError *error)
{
  if (req->error == NULL)
    req->error = g_error_copy(error);
  req->stored = 0;
  req->duplicates = 0;
  g_clear_pointer(&req->last, g_hash_table_unref);
}

/* One transaction for every append in @batch (Request*, answered here). */
static void
worker_append(RxJournal *journal, GPtrArray *batch)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) last = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  GPtrArray *answers = g_ptr_array_new_full(batch->len + 1, request_free);
  GHashTableIter iter;
  gpointer account, seq;

  g_hash_table_remove_all(journal->batch_bytes);
  g_hash_table_remove_all(journal->request_bytes);
  g_ptr_array_set_size(journal->sealers, 0);
  /* never fill the disk: below the floor nothing is stored (a 500, so Meta
   * retries) */
  if (!floor_allows(journal, &error) || !pending_fill(journal, batch, &error))
    goto failed;
  if (!run_fixed(journal, ST_BEGIN, &error))
    goto failed;
  for (guint i = 0; i < batch->len; i++) {
    Request *req = g_ptr_array_index(batch, i);
    AppendResult result;

    if (!run_fixed(journal, ST_SAVEPOINT, &error))
      goto failed;
    result = append_one(journal, req, &req->error);
    if (result == APPEND_DB_FAILED) {
      error = g_error_copy(req->error);
      goto failed;
    }
    if (result == APPEND_REQUEST_FAILED) {
      fail_request(req, req->error);
      g_hash_table_remove_all(journal->request_bytes);
      if (!run_fixed(journal, ST_ROLLBACK_TO, &error))
        goto failed;
    }
    if (!run_fixed(journal, ST_RELEASE, &error))
      goto failed;
    bytes_merge(journal->batch_bytes, journal->request_bytes, TRUE);
  }
  if (!run_fixed(journal, ST_COMMIT, &error))
    goto failed;
  after_commit(journal);
  g_ptr_array_set_size(journal->sealers, 0); /* the batch's shared keys are wiped */
  bytes_merge(journal->pending_bytes, journal->batch_bytes, FALSE);

  for (guint i = 0; i < batch->len; i++) {
    Request *req = g_ptr_array_index(batch, i);

    if (req->last != NULL) {
      g_hash_table_iter_init(&iter, req->last);
      while (g_hash_table_iter_next(&iter, &account, &seq))
        last_seq_update(last, account, *(gint64 *) seq);
    }
    g_ptr_array_add(answers, req);
  }
  /* then one notification per account that got events, with its highest seq */
  g_hash_table_iter_init(&iter, last);
  while (g_hash_table_iter_next(&iter, &account, &seq)) {
    Request *note = request_new(REQ_NEW);

    note->account = g_strdup(account);
    note->seq = *(gint64 *) seq;
    note->notifier = g_atomic_rc_box_acquire(journal->notifier);
    g_ptr_array_add(answers, note);
  }
  answer_all(journal, answers);
  return;

failed:
  rollback(journal);
  g_ptr_array_set_size(journal->sealers, 0);
  g_hash_table_remove_all(journal->batch_bytes);
  g_hash_table_remove_all(journal->request_bytes);
  for (guint i = 0; i < batch->len; i++) {
    Request *req = g_ptr_array_index(batch, i);

    g_clear_error(&req->error);
    fail_request(req, error);
    g_ptr_array_add(answers, req);
  }
  answer_all(journal, answers);
}

/* ---- the other requests ----------------------------------------------- */

static gboolean
worker_fetch(RxJournal *journal, Request *req, GError **error)
{
  sqlite3_stmt *stmt = statement(journal, ST_FETCH, error);
  int rc;

  if (stmt == NULL)
    return FALSE;
  rc = sqlite3_bind_text(stmt, 1, req->account, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(stmt, 2, req->seq);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_int64(stmt, 3, req->limit);
  if (bind_failed(journal, stmt, rc, error))
    return FALSE;
  req->events = g_ptr_array_new_with_free_func((GDestroyNotify) rx_event_free);
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    RxEvent *event = g_new0(RxEvent, 1);
    const void *blob = sqlite3_column_blob(stmt, 2);
    int len = sqlite3_column_bytes(stmt, 2);

    event->seq = sqlite3_column_int64(stmt, 0);
    event->received = sqlite3_column_int64(stmt, 1);
    event->sealed = g_bytes_new(blob, len > 0 ? (gsize) len : 0);
    g_ptr_array_add(req->events, event);
  }
  if (rc != SQLITE_DONE) {
    set_sqlite_error(error, RX_JOURNAL_ERROR_STORAGE, journal->db, "cannot read events");
    statement_done(stmt);
    return FALSE;
  }
  statement_done(stmt);
  return TRUE;
}

/* Runs the cached statement @id with (@text, @number) bound as far as it has
 * parameters, in its own (autocommit) transaction. */
static gboolean
worker_write(RxJournal *journal, StatementId id, const char *text, const char *text2, gint64 number,
             gboolean with_number, const char *what, GError **error)
{
  sqlite3_stmt *stmt = statement(journal, id, error);
  int rc = SQLITE_OK;
  int index = 1;

  if (stmt == NULL)
    return FALSE;
  if (text != NULL)
    rc = sqlite3_bind_text(stmt, index++, text, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK && text2 != NULL)
    rc = sqlite3_bind_text(stmt, index++, text2, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK && with_number)
    rc = sqlite3_bind_int64(stmt, index, number);
  if (bind_failed(journal, stmt, rc, error))
    return FALSE;
  return statement_run(journal, stmt, what, error);
}

static gboolean
worker_remove_account(RxJournal *journal, Request *req, GError **error)
{
  if (!exec_sql(journal, "BEGIN IMMEDIATE", RX_JOURNAL_ERROR_STORAGE, error))
    return FALSE;
  if (!worker_write(journal, ST_DELETE_ACCOUNT, req->account, NULL, 0, FALSE, "cannot remove an account", error) ||
      !worker_write(journal, ST_DELETE_EVENTS, req->account, NULL, 0, FALSE, "cannot remove an account's events",
                    error) ||
      !exec_sql(journal, "COMMIT", RX_JOURNAL_ERROR_STORAGE, error)) {
    rollback(journal);
    return FALSE;
  }
  return TRUE;
}

static GHashTable *
worker_pending(RxJournal *journal, GError **error)
{
  sqlite3_stmt *stmt = statement(journal, ST_PENDING, error);
  g_autoptr(GHashTable) counts = NULL;
  int rc;

  if (stmt == NULL)
    return NULL;
  counts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    const char *account = (const char *) sqlite3_column_text(stmt, 0);
    gint64 count = sqlite3_column_int64(stmt, 1);

    if (account != NULL)
      g_hash_table_insert(counts, g_strdup(account), GINT_TO_POINTER((int) MIN(count, G_MAXINT)));
  }
  if (rc != SQLITE_DONE) {
    set_sqlite_error(error, RX_JOURNAL_ERROR_STORAGE, journal->db, "cannot count events");
    statement_done(stmt);
    return NULL;
  }
  statement_done(stmt);
  return g_steal_pointer(&counts);
}

/* ---- registrations, sealed ----------------------------------------------
 * A registration holds the account's app secret, which the receiver needs
 * to check signatures while the messenger is closed. It is kept sealed
 * (XChaCha20-Poly1305, associated data = the account) with a subkey of the
 * journal key (the 0600 key file beside the journal), so a copy of the
 * journal alone does not reveal it. Rows written before sealing (plain JSON)
 * are still read, and sealed at the plugin's next REGISTER. */

#define SEALED_PREFIX "sealed1:"

/* The registration subkey: BLAKE2b of the journal key with a fixed label. */
static gboolean
registration_key(RxJournal *journal, guint8 out[crypto_aead_xchacha20poly1305_ietf_KEYBYTES])
{
  static const char label[] = "wabiz-receiver registrations v1";

  return crypto_generichash(out, crypto_aead_xchacha20poly1305_ietf_KEYBYTES, (const guint8 *) label, sizeof label,
                            journal->key, JOURNAL_KEY_BYTES) == 0;
}

static char *
seal_registration(RxJournal *journal, const char *account, const char *json, GError **error)
{
  guint8 key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
  gsize len = strlen(json);
  gsize total = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + len + crypto_aead_xchacha20poly1305_ietf_ABYTES;
  g_autofree guint8 *box = g_malloc(total);
  unsigned long long written = 0;
  gboolean ok;
  char *text;

  randombytes_buf(box, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
  ok = registration_key(journal, key) &&
       crypto_aead_xchacha20poly1305_ietf_encrypt(box + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &written,
                                                  (const guint8 *) json, len, (const guint8 *) account, strlen(account),
                                                  NULL, box, key) == 0;
  sodium_memzero(key, sizeof key);
  if (!ok) {
    g_set_error_literal(error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_STORAGE, "cannot seal a registration");
    return NULL;
  }
  text = g_base64_encode(box, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + (gsize) written);
  {
    char *prefixed = g_strconcat(SEALED_PREFIX, text, NULL);

    g_free(text);
    return prefixed;
  }
}

/* The registration's JSON, or NULL when a sealed one does not open (another
 * journal key): such a row is skipped, and the plugin registers again. */
static char *
open_registration(RxJournal *journal, const char *account, const char *stored)
{
  guint8 key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
  g_autofree guint8 *box = NULL;
  gsize len = 0;
  unsigned long long plain_len = 0;
  char *plain;
  gboolean ok;

  if (!g_str_has_prefix(stored, SEALED_PREFIX))
    return g_strdup(stored); /* written before sealing */
  box = g_base64_decode(stored + strlen(SEALED_PREFIX), &len);
  if (len < crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES)
    return NULL;
  plain = g_malloc(len + 1);
  ok = registration_key(journal, key) &&
       crypto_aead_xchacha20poly1305_ietf_decrypt((guint8 *) plain, &plain_len, NULL,
                                                  box + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
                                                  len - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
                                                  (const guint8 *) account, strlen(account), box, key) == 0;
  sodium_memzero(key, sizeof key);
  if (!ok) {
    g_free(plain);
    return NULL;
  }
  plain[plain_len] = '\0';
  return plain;
}

static GHashTable *
worker_load_accounts(RxJournal *journal, GError **error)
{
  sqlite3_stmt *stmt = statement(journal, ST_LOAD_ACCOUNTS, error);
  g_autoptr(GHashTable) accounts = NULL;
  int rc;

  if (stmt == NULL)
    return NULL;
  accounts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    const char *account = (const char *) sqlite3_column_text(stmt, 0);
    const char *json = (const char *) sqlite3_column_text(stmt, 1);

    char *opened = account != NULL && json != NULL ? open_registration(journal, account, json) : NULL;

    if (opened != NULL)
      g_hash_table_insert(accounts, g_strdup(account), opened);
  }
  if (rc != SQLITE_DONE) {
    set_sqlite_error(error, RX_JOURNAL_ERROR_STORAGE, journal->db, "cannot read registrations");
    statement_done(stmt);
    return NULL;
  }
  statement_done(stmt);
  return g_steal_pointer(&accounts);
}

static void
worker_handle(RxJournal *journal, Request *req)
{
  gboolean committed = FALSE;

  switch (req->kind) {
  case REQ_FETCH:
    if (!worker_fetch(journal, req, &req->error))
      g_clear_pointer(&req->events, g_ptr_array_unref);
    break;
  case REQ_ACK: {
    gint64 acked = 0;
    gboolean counted = !g_hash_table_contains(journal->pending_bytes, req->account) ||
                       query_bytes(journal, ST_ACKED_BYTES, req->account, req->seq, TRUE, &acked, NULL);

    committed = worker_write(journal, ST_ACK, req->account, NULL, req->seq, TRUE, "cannot delete acknowledged events",
                             &req->error);
    /* unknown after a failure: counted again at the next append */
    if (committed && counted) {
      if (g_hash_table_contains(journal->pending_bytes, req->account))
        bytes_add(journal->pending_bytes, req->account, -acked);
    } else
      g_hash_table_remove(journal->pending_bytes, req->account);
    break;
  }
  case REQ_SAVE_ACCOUNT: {
    g_autofree char *sealed = seal_registration(journal, req->account, req->json, &req->error);

    committed = sealed != NULL && worker_write(journal, ST_SAVE_ACCOUNT, req->account, sealed, 0, FALSE,
                                               "cannot save a registration", &req->error);
    break;
  }
  case REQ_REMOVE_ACCOUNT:
    committed = worker_remove_account(journal, req, &req->error);
    g_hash_table_remove(journal->pending_bytes, req->account);
    break;
  case REQ_PENDING:
    req->table = worker_pending(journal, &req->error);
    break;
  case REQ_EXPIRE:
    committed = worker_write(journal, ST_EXPIRE, NULL, NULL, req->now - req->horizon, TRUE, "cannot expire dedupe keys",
                             &req->error);
    break;
  case REQ_LOAD_ACCOUNTS:
    req->table = worker_load_accounts(journal, &req->error);
    g_async_queue_push(req->reply, req); /* the caller waits for it and frees it */
    return;
  case REQ_HOLD:
    g_mutex_lock(&journal->hold_lock);
    while (journal->held)
      g_cond_wait(&journal->hold_cond, &journal->hold_lock);
    g_mutex_unlock(&journal->hold_lock);
    request_free(req);
    return;
  case REQ_APPEND:
  case REQ_NEW:
  case REQ_STOP:
    g_assert_not_reached();
  }
  if (committed)
    after_commit(journal);
  answer(journal, req);
}

static gpointer
worker_main(gpointer data)
{
  RxJournal *journal = data;
  Request *next = NULL;

  for (;;) {
    Request *req = next != NULL ? next : g_async_queue_pop(journal->queue);

    next = NULL;
    if (req->kind == REQ_STOP) {
      request_free(req);
      break;
    }
    if (req->kind == REQ_APPEND) {
      g_autoptr(GPtrArray) batch = g_ptr_array_new();

      /* group commit: every append queued right behind this one joins it;
       * the first other request ends the batch and runs after it, in order */
      g_ptr_array_add(batch, req);
      while (batch->len < JOURNAL_MAX_BATCH && (next = g_async_queue_try_pop(journal->queue)) != NULL) {
        if (next->kind != REQ_APPEND)
          break;
        g_ptr_array_add(batch, next);
        next = NULL;
      }
      worker_append(journal, batch);
      continue;
    }
    worker_handle(journal, req);
  }

  if (journal->commits_since_checkpoint > 0)
    checkpoint(journal);
  return NULL;
}

/* The preparer: every request passes through it in order; appends get their
 * keys and envelopes (prepare_change) on the way to the worker. */
static gpointer
preparer_main(gpointer data)
{
  RxJournal *journal = data;

  for (;;) {
    Request *req = g_async_queue_pop(journal->inbox);
    RequestKind kind = req->kind;

    if (kind == REQ_APPEND) {
      for (guint i = 0; i < req->changes->len; i++) {
        RxChange *change = g_ptr_array_index(req->changes, i);

        g_clear_pointer(&change->prepared, prepared_free);
        change->prepared = prepare_change(journal, change, req->now);
      }
    }
    g_async_queue_push(journal->queue, req); /* the worker's from here on */
    g_atomic_int_dec_and_test(&journal->in_inbox);
    if (kind == REQ_STOP)
      return NULL;
  }
}

static void
submit(RxJournal *journal, Request *req)
{
  g_atomic_int_inc(&journal->in_inbox);
  g_async_queue_push(journal->inbox, req);
}

/* ---- opening ------------------------------------------------------------ */

/* A file error (G_FILE_ERROR, from wa-file.c) as the journal's open error. */
static void
open_error(GError **error, const GError *file_error)
{
  g_set_error_literal(error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_OPEN, file_error->message);
}

/* Writes a new random key to @path through a temporary file, so that a crash
 * never leaves a short key behind. Runs with the database lock held, so no
 * other receiver writes the same file. */
static gboolean
create_key(const char *path, guint8 *key, GError **error)
{
  randombytes_buf(key, JOURNAL_KEY_BYTES);
  if (!wa_file_replace_private(path, key, JOURNAL_KEY_BYTES, error))
    return FALSE;
  /* best effort: the key is only lost with the hashes it made */
  wa_file_sync_dir_of(path, NULL);
  return TRUE;
}

/* The dedupe key, in sodium_malloc'd read-only memory. */
static guint8 *
load_key(const char *dir, GError **error)
{
  g_autofree char *path = g_build_filename(dir, "journal.key", NULL);
  g_autoptr(GError) local = NULL;
  guint8 *key = sodium_malloc(JOURNAL_KEY_BYTES);
  struct stat st;
  int fd;

  if (key == NULL) {
    g_set_error_literal(error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_OPEN, "no secure memory for the journal key");
    return NULL;
  }
  fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    if (!create_key(path, key, &local))
      goto failed;
    sodium_mprotect_readonly(key);
    return key;
  }
  if (fd < 0) {
    wa_file_set_error(&local, "cannot open", path, errno);
    goto failed;
  }
  if (!wa_file_private_fd(fd, path, &local)) {
    close(fd);
    goto failed;
  }
  if (fstat(fd, &st) != 0 || st.st_size != JOURNAL_KEY_BYTES) {
    close(fd);
    g_set_error(error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_OPEN, "%s is damaged (it must hold exactly %d bytes)", path,
                JOURNAL_KEY_BYTES);
    goto failed;
  }
  if (!wa_file_read_exact(fd, path, key, JOURNAL_KEY_BYTES, &local)) {
    close(fd);
    goto failed;
  }
  close(fd);
  sodium_mprotect_readonly(key);
  return key;

failed:
  if (local != NULL)
    open_error(error, local);
  sodium_free(key); /* wipes */
  return NULL;
}

/* An error while opening: "in use" when another connection holds the lock. */
static gboolean
open_sqlite_error(RxJournal *journal, int rc, const char *what, GError **error)
{
  if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
    g_set_error_literal(error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_OPEN, "the journal is in use by another receiver");
  else
    set_sqlite_error(error, RX_JOURNAL_ERROR_OPEN, journal->db, what);
  return FALSE;
}

static gboolean
configure(RxJournal *journal, GError **error)
{
  g_autofree char *mode = NULL;
  int rc;

  rc = wa_sqlite_setup(journal->db);
  /* temporary files (the statement journal of a group commit's savepoints
   * spills to one past 64 KiB) would go to /var/tmp, which the confinement
   * does not allow: the append failed with "unable to open database file" */
  if (rc == SQLITE_OK)
    rc = sqlite3_exec(journal->db, "PRAGMA temp_store = MEMORY", NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    return open_sqlite_error(journal, rc, "cannot configure the journal", error);
  /* takes (and keeps) the exclusive lock, if no one else has it */
  rc = wa_sqlite_pragma(journal->db, "PRAGMA journal_mode = WAL", &mode);
  if (rc != SQLITE_OK)
    return open_sqlite_error(journal, rc, "cannot open the journal", error);
  if (g_strcmp0(mode, "wal") != 0) {
    g_set_error_literal(error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_OPEN,
                        "cannot switch the journal to write-ahead logging");
    return FALSE;
  }
  /* sqlite3_wal_autocheckpoint(0) above cleared any hook: ours counts pages */
  sqlite3_wal_hook(journal->db, wal_hook, journal);
  return TRUE;
}

static gboolean
prepare_schema(RxJournal *journal, GError **error)
{
  static const char schema[] = "CREATE TABLE accounts (account TEXT PRIMARY KEY NOT NULL, json TEXT NOT NULL);"
                               "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL,"
                               "  received INTEGER NOT NULL, sealed BLOB NOT NULL);"
                               "CREATE INDEX events_account_seq ON events (account, seq);"
                               "CREATE TABLE seen (hash BLOB PRIMARY KEY NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID;"
                               "CREATE INDEX seen_at ON seen (at);"
                               "PRAGMA user_version = 1;";
  g_autofree char *version_text = NULL;
  gint64 version;
  int rc;

  G_STATIC_ASSERT(JOURNAL_SCHEMA_VERSION == 1); /* the schema above */
  rc = sqlite3_exec(journal->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (rc != SQLITE_OK)
    return open_sqlite_error(journal, rc, "cannot open the journal", error);
  rc = wa_sqlite_pragma(journal->db, "PRAGMA user_version", &version_text);
  if (rc != SQLITE_OK) {
    open_sqlite_error(journal, rc, "cannot read the journal schema", error);
    goto failed;
  }
  version = g_ascii_strtoll(version_text != NULL ? version_text : "0", NULL, 10);
  if (version > JOURNAL_SCHEMA_VERSION) {
    g_set_error(error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_SCHEMA,
                "the journal was written by a newer wabiz-receiver (schema %" G_GINT64_FORMAT
                ", this one knows up to %d)",
                version, JOURNAL_SCHEMA_VERSION);
    goto failed;
  }
  if (version == 0 && sqlite3_exec(journal->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
    set_sqlite_error(error, RX_JOURNAL_ERROR_OPEN, journal->db, "cannot create the journal schema");
    goto failed;
  }
  if (sqlite3_exec(journal->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    set_sqlite_error(error, RX_JOURNAL_ERROR_OPEN, journal->db, "cannot create the journal schema");
    goto failed;
  }
  return TRUE;

failed:
  rollback(journal);
  return FALSE;
}

static gboolean
limit_pages(RxJournal *journal, gint64 max_page_count, GError **error)
{
  g_autofree char *sql = NULL;

  if (max_page_count <= 0)
    return TRUE;
  /* SQLite never sets it below the current size */
  sql = g_strdup_printf("PRAGMA max_page_count = %" G_GINT64_FORMAT, max_page_count);
  if (wa_sqlite_pragma(journal->db, sql, NULL) != SQLITE_OK) {
    set_sqlite_error(error, RX_JOURNAL_ERROR_OPEN, journal->db, "cannot limit the journal size");
    return FALSE;
  }
  return TRUE;
}

static void
close_db(RxJournal *journal)
{
  for (gsize i = 0; i < G_N_ELEMENTS(journal->statements); i++)
    g_clear_pointer(&journal->statements[i], sqlite3_finalize);
  if (journal->db != NULL && sqlite3_close(journal->db) != SQLITE_OK)
    g_warning("journal: cannot close the database: %s", sqlite3_errmsg(journal->db));
  journal->db = NULL;
}

static void
journal_free(RxJournal *journal)
{
  close_db(journal);
  if (journal->key != NULL) {
    sodium_mprotect_readwrite(journal->key);
    sodium_memzero(journal->key, JOURNAL_KEY_BYTES);
    sodium_free(journal->key);
  }
  g_clear_pointer(&journal->notifier, notifier_release);
  g_clear_pointer(&journal->queue, g_async_queue_unref);
  g_clear_pointer(&journal->inbox, g_async_queue_unref);
  g_clear_pointer(&journal->context, g_main_context_unref);
  g_clear_pointer(&journal->pending_bytes, g_hash_table_unref);
  g_clear_pointer(&journal->batch_bytes, g_hash_table_unref);
  g_clear_pointer(&journal->request_bytes, g_hash_table_unref);
  g_clear_pointer(&journal->sealers, g_ptr_array_unref);
  g_free(journal->dir);
  g_mutex_clear(&journal->hold_lock);
  g_cond_clear(&journal->hold_cond);
  g_free(journal);
}

RxJournal *
rx_journal_open(const char *dir, GMainContext *context, gint64 max_page_count, GError **error)
{
  RxJournal *journal;
  g_autofree char *db_path = NULL;
  g_autoptr(GError) local = NULL;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW;
  int rc;

  g_return_val_if_fail(dir != NULL, NULL);

  if (!wa_sodium_init(&local)) {
    g_set_error(error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_OPEN, "%s", local->message);
    return NULL;
  }
  journal = g_new0(RxJournal, 1);
  g_mutex_init(&journal->hold_lock);
  g_cond_init(&journal->hold_cond);
  journal->context = g_main_context_ref(context != NULL ? context : g_main_context_default());
  journal->queue = g_async_queue_new();
  journal->inbox = g_async_queue_new();
  journal->notifier = notifier_new();
  journal->dir = g_strdup(dir);
  journal->pending_bytes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  journal->batch_bytes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  journal->request_bytes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  journal->sealers = g_ptr_array_new_with_free_func((GDestroyNotify) wa_sealer_free);

  db_path = g_build_filename(dir, "journal.db", NULL);
  /* SQLite gives -wal (and -shm) files the database's mode: create it 0600
   * first, and fix files a crash may have left behind */
  if (!wa_sqlite_private_db(dir, "the journal directory", db_path, &local)) {
    open_error(error, local);
    goto failed;
  }

  rc = sqlite3_open_v2(db_path, &journal->db, flags, NULL);
  if (rc != SQLITE_OK) {
    if (journal->db != NULL)
      set_sqlite_error(error, RX_JOURNAL_ERROR_OPEN, journal->db, "cannot open the journal");
    else
      g_set_error(error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_OPEN, "cannot open the journal: %s", sqlite3_errstr(rc));
    goto failed;
  }
  sqlite3_extended_result_codes(journal->db, 1);
  if (!configure(journal, error) || !prepare_schema(journal, error) || !limit_pages(journal, max_page_count, error))
    goto failed;
  /* with the lock held: no other receiver creates the key meanwhile */
  journal->key = load_key(dir, error);
  if (journal->key == NULL)
    goto failed;

  journal->worker = g_thread_try_new("rx-journal", worker_main, journal, &local);
  if (journal->worker == NULL) {
    g_set_error(error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_OPEN, "cannot start the journal thread: %s", local->message);
    goto failed;
  }
  journal->preparer = g_thread_try_new("rx-prepare", preparer_main, journal, &local);
  if (journal->preparer == NULL) {
    g_set_error(error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_OPEN, "cannot start the journal thread: %s", local->message);
    g_async_queue_push(journal->queue, request_new(REQ_STOP));
    g_thread_join(journal->worker);
    goto failed;
  }
  return journal;

failed:
  journal_free(journal);
  return NULL;
}

void
rx_journal_close(RxJournal *journal)
{
  if (journal == NULL)
    return;
  /* everything queued before STOP is processed and answered; the answers
   * are idle sources on the context, which run whenever it is iterated
   * again (or are freed with it) */
  submit(journal, request_new(REQ_STOP));
  g_thread_join(journal->preparer);
  journal->preparer = NULL;
  g_thread_join(journal->worker);
  journal->worker = NULL;
  /* no one can fetch from a closed journal: stop announcing new events */
  rx_journal_set_new_func(journal, NULL, NULL);
  journal_free(journal);
}

void
rx_journal_set_min_free(RxJournal *journal, gint64 bytes)
{
  g_return_if_fail(journal != NULL);
  journal->min_free = bytes;
}

void
rx_journal_set_new_func(RxJournal *journal, RxJournalNewFunc func, gpointer data)
{
  g_return_if_fail(journal != NULL);
  g_mutex_lock(&journal->notifier->lock);
  journal->notifier->func = func;
  journal->notifier->data = data;
  g_mutex_unlock(&journal->notifier->lock);
}

void
rx_journal_append(RxJournal *journal, GPtrArray *changes, gint64 now, RxAppendFunc done, gpointer data)
{
  Request *req;

  g_return_if_fail(journal != NULL);
  g_return_if_fail(changes != NULL);
  req = request_new(REQ_APPEND);
  req->changes = changes;
  req->now = now;
  req->cb.append = done;
  req->data = data;
  submit(journal, req);
}

void
rx_journal_fetch(RxJournal *journal, const char *account, gint64 after_seq, guint limit, RxFetchFunc done,
                 gpointer data)
{
  Request *req;

  g_return_if_fail(journal != NULL);
  g_return_if_fail(account != NULL);
  req = request_new(REQ_FETCH);
  req->account = g_strdup(account);
  req->seq = after_seq;
  req->limit = limit;
  req->cb.fetch = done;
  req->data = data;
  submit(journal, req);
}

static void
queue_done_request(RxJournal *journal, RequestKind kind, const char *account, const char *json, gint64 seq,
                   RxDoneFunc done, gpointer data)
{
  Request *req = request_new(kind);

  req->account = g_strdup(account);
  req->json = g_strdup(json);
  req->seq = seq;
  req->cb.done = done;
  req->data = data;
  submit(journal, req);
}

void
rx_journal_ack(RxJournal *journal, const char *account, gint64 upto_seq, RxDoneFunc done, gpointer data)
{
  g_return_if_fail(journal != NULL);
  g_return_if_fail(account != NULL);
  queue_done_request(journal, REQ_ACK, account, NULL, upto_seq, done, data);
}

void
rx_journal_save_account(RxJournal *journal, const char *account, const char *json, RxDoneFunc done, gpointer data)
{
  g_return_if_fail(journal != NULL);
  g_return_if_fail(account != NULL);
  g_return_if_fail(json != NULL);
  queue_done_request(journal, REQ_SAVE_ACCOUNT, account, json, 0, done, data);
}

void
rx_journal_remove_account(RxJournal *journal, const char *account, RxDoneFunc done, gpointer data)
{
  g_return_if_fail(journal != NULL);
  g_return_if_fail(account != NULL);
  queue_done_request(journal, REQ_REMOVE_ACCOUNT, account, NULL, 0, done, data);
}

GHashTable *
rx_journal_load_accounts(RxJournal *journal, GError **error)
{
  Request *req;
  GHashTable *accounts;

  g_return_val_if_fail(journal != NULL, NULL);
  /* through the worker, which owns the connection; waits for its answer */
  req = request_new(REQ_LOAD_ACCOUNTS);
  req->reply = g_async_queue_new();
  submit(journal, req);
  req = g_async_queue_pop(req->reply);
  if (req->error != NULL) {
    g_propagate_error(error, g_steal_pointer(&req->error));
    request_free(req);
    return NULL;
  }
  accounts = g_steal_pointer(&req->table);
  request_free(req);
  return accounts;
}

void
rx_journal_pending(RxJournal *journal, RxCountsFunc done, gpointer data)
{
  Request *req;

  g_return_if_fail(journal != NULL);
  req = request_new(REQ_PENDING);
  req->cb.counts = done;
  req->data = data;
  submit(journal, req);
}

void
rx_journal_expire(RxJournal *journal, gint64 now, gint64 horizon_s, RxDoneFunc done, gpointer data)
{
  Request *req;

  g_return_if_fail(journal != NULL);
  req = request_new(REQ_EXPIRE);
  req->now = now;
  req->horizon = horizon_s;
  req->cb.done = done;
  req->data = data;
  submit(journal, req);
}

/* Test hook, not in rx-journal.h (tests/unit/test-journal.c declares it):
 * with @hold TRUE the worker stops at this point of the queue until called
 * again with FALSE, so that a test can queue several appends and see them
 * committed as one group. */
void
rx_journal_test_hold(RxJournal *journal, gboolean hold)
{
  /* what the test queued while held reaches the worker before it goes on */
  while (!hold && g_atomic_int_get(&journal->in_inbox) > 0)
    g_usleep(1000);
  g_mutex_lock(&journal->hold_lock);
  journal->held = hold;
  g_cond_broadcast(&journal->hold_cond);
  g_mutex_unlock(&journal->hold_lock);
  if (hold)
    submit(journal, request_new(REQ_HOLD));
}
