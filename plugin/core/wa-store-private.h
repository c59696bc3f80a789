/* wa-store-private.h: what the wa-store-*.c files share: the store struct,
 * the request machinery and the worker's SQL and sealing helpers.
 *
 * Everything marked "worker" is touched only by the worker thread; requests
 * are built on the caller's thread and answered (and freed) there.
 * Must not: be included outside plugin/core/wa-store*.c. */
#pragma once

#include <json-glib/json-glib.h>
#include <sqlite3.h>

#include "wa-store.h"

G_BEGIN_DECLS

#define WA_STORE_ID_HEX 32 /* internal ids: 128 random bits as hex */
/* Outbox ids stay within 1 .. 2^53-1: exact in JSON numbers. */
#define WA_STORE_JS_SAFE_MAX ((G_GUINT64_CONSTANT(1) << 53) - 1)

typedef struct _Request Request;

/* Callbacks of every kind are kept as this and cast back by their answer
 * function (void (*)(void) is the type C allows such round trips through). */
typedef void (*StoreCallback)(void);
#define STORE_CALLBACK(f) ((StoreCallback) (f))

typedef enum {
  MODE_READ,  /* runs on its own, outside a transaction */
  MODE_WRITE, /* joins the next group commit, in a savepoint of its own */
  MODE_SELF,  /* opens / unlocks / stops: handles transactions itself */
} RequestMode;

typedef struct {
  RequestMode mode;
  gboolean needs_key; /* refused with LOCKED before a successful unlock */
  /* MODE_WRITE: it only has to survive a crash of the process, not a power
   * loss; a group commit of such writes only is not synced (WAL with
   * synchronous=NORMAL: the next synced commit or checkpoint syncs it) */
  gboolean unsynced;
  gsize size; /* of the struct that embeds Request */
  /* worker: FALSE with @error; STORAGE errors fail the whole transaction,
   * others only this request (its savepoint is rolled back) */
  gboolean (*run)(WaStore *store, Request *req, GError **error);
  /* loop thread: calls the callback (req->error may be set) */
  void (*answer)(Request *req);
  /* loop thread: frees the kind's own fields (may be NULL) */
  void (*finalize)(Request *req);
} RequestClass;

struct _Request {
  const RequestClass *klass;
  StoreCallback cb;
  gpointer data;
  gint64 now; /* Unix seconds when queued */
  GError *error;
};

struct _WaStore {
  WaLoop *loop;
  WaClock *clock;
  char *path;
  gint64 max_page_count;

  GAsyncQueue *queue;   /* Request*: to the worker */
  GAsyncQueue *answers; /* Request*: back to the loop */
  GThread *worker;
  int pipe_read;
  int pipe_write;
  guint watch;
  gint signalled;    /* atomic: a byte is in the pipe */
  gboolean closed;   /* loop thread */
  guint dispatching; /* loop thread: inside answer callbacks */

  /* test hooks */
  GMutex hold_lock;
  GCond hold_cond;
  gboolean held;
  gint commits;           /* atomic: transactions committed by group commits */
  gint key_loads;         /* atomic: customer keys unwrapped (not found in the cache) */
  gint rotate_fail_after; /* atomic: > 0: a rotation slice fails after re-keying this many customers */

  /* ---- worker ---- */
  sqlite3 *db;
  GHashTable *statements; /* SQL text pointer -> sqlite3_stmt* */
  gboolean opened;        /* the open succeeded */
  WaKey *store_key;       /* WA_SUBKEY_STORE of the data key; NULL until unlocked */
  WaKey *index_key;       /* sealed in meta (schema 2 and older: WA_SUBKEY_INDEX) */
  WaKey *audit_key;       /* sealed in meta (schema 2 and older: WA_SUBKEY_AUDIT) */
  gint64 key_gen;         /* the data key's generation (meta 'key_gen'; 1 before any rotation) */
  WaKey *old_store_key;   /* during a rotation: the previous data key's store key; else NULL */
  GHashTable *key_cache;  /* customer id -> WaKey* */
  GQueue key_order;       /* customer ids, most recently used first (owned by key_cache) */
  GPtrArray *txn_keys;    /* customer ids whose keys were cached in the open transaction */
  gboolean checkpoint_soon;
  guint commits_since_checkpoint;
  int wal_pages;
};

/* ---- requests (wa-store.c) ---- */

/* A zeroed request of @klass (klass->size bytes) with its callback; "now"
 * read from the store's clock. */
gpointer wa_store_request_new(WaStore *store, const RequestClass *klass, StoreCallback cb, gpointer data);
/* Queues @req (taken) to the worker, or answers it with LOCKED when the store
 * is closed. */
void wa_store_request_push(WaStore *store, gpointer req);
/* Frees a string that may hold content: wiped first. */
void wa_store_wipe_free(char *s);

/* ---- worker helpers (wa-store.c) ---- */

gboolean wa_store_set_sqlite_error(WaStore *store, GError **error, const char *what);

/* Cached statement for @sql (a string literal: cached by address), with
 * parameters bound from @types: 't' const char * (NULL binds NULL), 'b'
 * GBytes * (NULL binds NULL), 'h' const guint8 * of WA_CRYPT_HASH_BYTES
 * (NULL binds NULL), 'i' gint64, 'u' guint64. Reset it with
 * wa_store_sql_done() after use. */
sqlite3_stmt *wa_store_sql(WaStore *store, GError **error, const char *sql, const char *types, ...);
/* SQLITE_ROW, SQLITE_DONE, or 0 with @error (the statement is then reset). */
int wa_store_sql_step(WaStore *store, sqlite3_stmt *stmt, GError **error);
void wa_store_sql_done(sqlite3_stmt *stmt);
/* Runs a statement that returns no rows (to its end). */
gboolean wa_store_sql_exec(WaStore *store, GError **error, const char *sql, const char *types, ...);
/* A statement whose first row's first column is an integer: *@out, and
 * *@found when a row came (may be NULL; then no row leaves *@out 0). */
gboolean wa_store_sql_int(WaStore *store, gint64 *out, gboolean *found, GError **error, const char *sql,
                          const char *types, ...);

char *wa_store_col_text(sqlite3_stmt *stmt, int col);

/* A new random internal id (WA_STORE_ID_HEX hex digits). */
char *wa_store_new_id(void);

/* Seals @value (NULL gives NULL) under @key for table/column/row. NULL with
 * @error (STORAGE) when sealing fails. */
gboolean wa_store_seal(const WaKey *key, const char *table, const char *column, const char *row_id, const char *value,
                       GBytes **out, GError **error);
/* Opens column @col of @stmt; NULL column gives NULL. A value that does not
 * open gives NULL and sets *@tampered. */
char *wa_store_open_col(const WaKey *key, const char *table, const char *column, const char *row_id, sqlite3_stmt *stmt,
                        int col, gboolean *tampered);
/* Keyed hash of @value in @domain ("wa_id", "bsuid", "wamid", "suppress"). */
void wa_store_index(WaStore *store, const char *domain, const char *value, guint8 out[WA_CRYPT_HASH_BYTES]);

/* The customer's key (cached; owned by the cache, valid until the next call
 * that may evict: use it at once). NOT_FOUND or TAMPERED. */
const WaKey *wa_store_customer_key(WaStore *store, const char *customer_id, GError **error);
/* A new random key for a new customer, cached, and its wrapping in *@wrapped. */
const WaKey *wa_store_customer_key_new(WaStore *store, const char *customer_id, GBytes **wrapped, GError **error);
/* Drops the customer's key from the cache (wiped). */
void wa_store_customer_key_forget(WaStore *store, const char *customer_id);

/* Appends an audit row inside the open transaction (wa-store-ledger.c). */
gboolean wa_store_audit_row(WaStore *store, gint64 at, const char *action, const char *customer_id, const char *detail,
                            GError **error);

/* ---- rows (wa-store-rows.c) ---- */

/* SELECT list and reader for WaStoreMessage rows. */
#define WA_STORE_MESSAGE_COLUMNS                                                                 \
  "m.id, m.customer_id, m.direction, m.type, m.body, m.caption, m.wamid, m.error, m.timestamp, " \
  "m.status, m.status_time, m.outbox_id, m.expired, m.shown"
#define WA_STORE_MESSAGE_N_COLUMNS 14 /* a column selected after them is this one */
WaStoreMessage *wa_store_read_message(WaStore *store, sqlite3_stmt *stmt);
#define WA_STORE_OUTBOX_COLUMNS                                                        \
  "o.id, o.message_id, o.customer_id, o.state, o.payload, o.preview_url, o.attempts, " \
  "o.next_attempt, o.created, o.updated, m.body, m.wamid, m.error, "                   \
  "EXISTS (SELECT 1 FROM campaign_recipients r WHERE r.outbox_id = o.id)"
WaStoreOutbox *wa_store_read_outbox(WaStore *store, sqlite3_stmt *stmt);

/* The message whose wamid hashes to @hash: its id and customer (NULL, no
 * error, when there is none) and whether it was shown. */
gboolean wa_store_message_by_hash(WaStore *store, const guint8 *hash, char **id, char **customer_id, gboolean *shown,
                                  GError **error);

/* Answer (loop thread) of requests whose callback is a WaStoreDoneFunc. */
void wa_store_answer_done(Request *req);

/* ---- customers (wa-store-customers.c) ---- */

/* A customer row read by its id (NULL with NOT_FOUND), decrypted. */
WaStoreCustomer *wa_store_read_customer(WaStore *store, const char *customer_id, GError **error);

/* What a find-or-create or an update did to a customer; handed to callers
 * as a WaStoreCustomerUpdate. */
typedef struct {
  char *customer_id;
  WaStoreCustomer *customer; /* read back at the end */
  gboolean created;
  gboolean linked;
  gboolean name_changed;
  gboolean window_moved;
  gboolean conflict;
} CustomerChange;

void wa_store_customer_change_clear(CustomerChange *change);
/* Fills @update with pointers into @change (valid while @change is). */
void wa_store_customer_change_export(const CustomerChange *change, WaStoreCustomerUpdate *update);
/* Reads the customer back into @change->customer (worker). */
gboolean wa_store_customer_change_finish(WaStore *store, CustomerChange *change, GError **error);

/* Find-or-create by wa_id and/or BSUID (worker); fills @change (customer
 * read back by the caller, with wa_store_customer_change_finish()). */
gboolean wa_store_find_or_create_customer(WaStore *store, gint64 now, const char *wa_id, const char *bsuid,
                                          const char *name, WaStoreEnsureFlags flags, CustomerChange *change,
                                          GError **error);
/* Moves the customer's newest inbound time to @timestamp if that is later;
 * sets *@moved then (worker). */
gboolean wa_store_raise_newest_inbound(WaStore *store, const char *customer_id, gint64 timestamp, gboolean *moved,
                                       GError **error);

/* ---- outbox (wa-store-outbox.c) ---- */

/* Inserts an outbox entry and its OUT message for @customer_id inside the
 * open transaction (worker); *@out gets the entry as written (not read back:
 * campaign FALSE). The entry is QUEUED, or SENDING (its first attempt) with
 * @sending: its request starts as soon as this transaction is committed. */
gboolean wa_store_outbox_insert(WaStore *store, gint64 now, const char *customer_id, const char *type, const char *body,
                                const char *payload, gboolean preview_url, gboolean sending, WaStoreOutbox **out,
                                GError **error);

/* ---- campaigns (wa-store-campaigns.c) ---- */

/* Erasure (worker): deletes the customer's recipient rows and template send
 * records; their portfolio reach stays counted without naming them. */
gboolean wa_store_campaigns_erase_customer(WaStore *store, const char *customer_id, GError **error);
/* Retention (worker): deletes the params of finished recipients older than
 * @before, and template send and reach records older than 24 hours. */
gboolean wa_store_campaigns_expire(WaStore *store, gint64 now, gint64 before, GError **error);
/* Export (worker): the customer's recipient rows as the array "campaigns". */
gboolean wa_store_campaigns_export(WaStore *store, JsonBuilder *builder, const char *customer_id, GError **error);

/* ---- settings (wa-store-settings.c) ---- */

/* Settings of @customer_id (NULL: account-wide), name -> value. */
GHashTable *wa_store_read_settings(WaStore *store, const char *customer_id, GError **error);

/* ---- media (wa-store-media.c) ---- */

/* SELECT list (table alias d) and reader for WaStoreMedia rows. */
#define WA_STORE_MEDIA_COLUMNS                                                                           \
  "d.id, d.message_id, d.customer_id, d.number, d.type, d.mime_type, d.media_id, d.sha256, d.filename, " \
  "d.voice, d.size, d.state, d.attempts, d.next_attempt, d.error, d.file, d.file_key, d.created, "       \
  "(SELECT timestamp FROM messages WHERE id = d.message_id)"
WaStoreMedia *wa_store_read_media(WaStore *store, sqlite3_stmt *stmt);

/* Records @in as a pending download of message @message_id (worker, inside
 * the inbound transaction); *@out gets the row. */
gboolean wa_store_media_insert(WaStore *store, gint64 now, const char *customer_id, const char *message_id,
                               const char *type, const WaStoreInboundMedia *in, WaStoreMedia **out, GError **error);
/* The attachment of message @message_id, or NULL (no error). */
gboolean wa_store_media_of_message(WaStore *store, const char *message_id, WaStoreMedia **out, GError **error);
/* Deletes the customer's attachment files and rows (erasure). */
gboolean wa_store_media_erase_customer(WaStore *store, const char *customer_id, GError **error);
/* Deletes the files of attachments of messages older than @before; their
 * rows become EXPIRED (retention). */
gboolean wa_store_media_expire(WaStore *store, gint64 before, GError **error);

G_END_DECLS
