/* wa-store-messages.c: the store's messages: inbound ones (and the
 * business's own from elsewhere) with dedupe by wamid, delivery statuses
 * applied by rank (resolving the outbox entry a status proves sent or
 * failed), lookups by wamid, history, and the "shown" mark.
 *
 * Every run_* function runs on the worker inside the transaction (or read)
 * that wa-store.c opened for it; answer_* functions run on the loop thread.
 * Body, caption, raw payload, wamid and error are sealed with the customer's
 * key, associated data (table, column, row id); wamids are found by keyed
 * hash.
 *
 * Must not: log content, ids or hashes, keep decrypted text beyond the
 * request (it is wiped when the request is freed), let a status move a
 * message back in rank, or touch a connection or key outside the worker. */
#include "wa-store-private.h"

typedef struct {
  Request base;
  /* inbound */
  char *wa_id;
  char *bsuid;
  char *profile_name;
  WaStoreDirection direction;
  char *wamid;
  char *type;
  char *body;
  char *caption;
  char *raw;
  gint64 timestamp;
  WaStoreInboundMedia media_in;
  gboolean has_media;
  WaStoreMedia *media;
  /* status */
  guint64 outbox_id;
  WaStoreStatus status;
  char *error_text;
  /* history */
  char *customer_id;
  guint limit;
  /* results */
  gboolean duplicate;
  gboolean shown;
  char *message_id;
  CustomerChange change;
  WaStoreStatusResult status_result;
  char *result_customer_id;
  WaStoreMessage *message;
  GPtrArray *list;
} MessageRequest;

static void
finalize_message(Request *req)
{
  MessageRequest *mr = (MessageRequest *) req;

  wa_store_wipe_free(mr->wa_id);
  wa_store_wipe_free(mr->bsuid);
  wa_store_wipe_free(mr->profile_name);
  wa_store_wipe_free(mr->wamid);
  g_free(mr->type);
  wa_store_wipe_free(mr->body);
  wa_store_wipe_free(mr->caption);
  wa_store_wipe_free(mr->raw);
  wa_store_wipe_free(mr->error_text);
  g_free(mr->customer_id);
  g_free(mr->message_id);
  wa_store_customer_change_clear(&mr->change);
  g_free(mr->result_customer_id);
  g_clear_pointer(&mr->message, wa_store_message_free);
  g_clear_pointer(&mr->list, g_ptr_array_unref);
  wa_store_wipe_free((char *) mr->media_in.media_id);
  g_free((char *) mr->media_in.mime_type);
  wa_store_wipe_free((char *) mr->media_in.sha256);
  wa_store_wipe_free((char *) mr->media_in.filename);
  g_clear_pointer(&mr->media, wa_store_media_free);
}


static gboolean
run_inbound(WaStore *store, Request *req, GError **error)
{
  MessageRequest *mr = (MessageRequest *) req;
  guint8 hash[WA_CRYPT_HASH_BYTES];
  g_autofree char *existing = NULL;
  g_autofree char *id = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GBytes) caption = NULL;
  g_autoptr(GBytes) raw = NULL;
  g_autoptr(GBytes) wamid = NULL;
  const WaKey *key;

  if (mr->wamid == NULL || *mr->wamid == '\0' || mr->type == NULL ||
      (mr->direction != WA_STORE_IN && mr->direction != WA_STORE_ELSEWHERE)) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID,
                        "an inbound message needs a wamid, a type and a direction");
    return FALSE;
  }
  wa_store_index(store, "wamid", mr->wamid, hash);
  if (!wa_store_message_by_hash(store, hash, &existing, &mr->change.customer_id, &mr->shown, error))
    return FALSE;
  if (existing != NULL) {
    /* applied before: change nothing */
    mr->duplicate = TRUE;
    mr->message_id = g_steal_pointer(&existing);
    return wa_store_media_of_message(store, mr->message_id, &mr->media, error) &&
           wa_store_customer_change_finish(store, &mr->change, error);
  }
  if (!wa_store_find_or_create_customer(store, req->now, mr->wa_id, mr->bsuid, mr->profile_name,
                                        WA_STORE_ENSURE_DEFAULT, &mr->change, error))
    return FALSE;
  key = wa_store_customer_key(store, mr->change.customer_id, error);
  if (key == NULL)
    return FALSE;
  id = wa_store_new_id();
  if (!wa_store_seal(key, "messages", "body", id, mr->body, &body, error) ||
      !wa_store_seal(key, "messages", "caption", id, mr->caption, &caption, error) ||
      !wa_store_seal(key, "messages", "raw", id, mr->raw, &raw, error) ||
      !wa_store_seal(key, "messages", "wamid", id, mr->wamid, &wamid, error))
    return FALSE;
  if (!wa_store_sql_exec(store, error,
                         "INSERT INTO messages (id, customer_id, direction, type, body, caption, raw, wamid_hash, "
                         "wamid, timestamp, created, shown) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0)",
                         "ttitbbbhbii", id, mr->change.customer_id, (gint64) mr->direction, mr->type, body, caption,
                         raw, hash, wamid, mr->timestamp, req->now))
    return FALSE;
  if (mr->direction == WA_STORE_IN &&
      !wa_store_raise_newest_inbound(store, mr->change.customer_id, mr->timestamp, &mr->change.window_moved, error))
    return FALSE;
  /* the pending download, in the same transaction: once the event is
   * acknowledged, the attachment cannot be forgotten */
  if (mr->has_media &&
      !wa_store_media_insert(store, req->now, mr->change.customer_id, id, mr->type, &mr->media_in, &mr->media, error))
    return FALSE;
  mr->message_id = g_steal_pointer(&id);
  return wa_store_customer_change_finish(store, &mr->change, error);
}

static void
answer_inbound(Request *req)
{
  MessageRequest *mr = (MessageRequest *) req;
  WaStoreInboundResult result = {0};

  if (req->cb == NULL)
    return;
  result.duplicate = mr->duplicate;
  result.shown = mr->shown;
  result.message_id = mr->message_id;
  result.media = mr->media;
  wa_store_customer_change_export(&mr->change, &result.customer);
  ((WaStoreInboundFunc) req->cb)(req->error == NULL ? &result : NULL, req->error, req->data);
}

static gboolean
status_applies(WaStoreStatus current, WaStoreStatus next)
{
  if (current == WA_STORE_STATUS_FAILED)
    return FALSE; /* final */
  if (next == WA_STORE_STATUS_FAILED)
    return current < WA_STORE_STATUS_READ; /* read or played: it did arrive */
  return next > current;
}

/* What run_status learns, step by step, about the message a status is for. */
typedef struct {
  guint8 hash[WA_CRYPT_HASH_BYTES]; /* of the status's wamid, when it has one */
  char *message_id;                 /* NULL: not ours, or erased */
  gboolean has_wamid;               /* the message knows its wamid already */
  gint64 outbox_id;                 /* the message's outbox entry, or 0 */
  gboolean found_outbox;
  gint64 outbox_state;     /* when found_outbox */
  gboolean went_after_all; /* it FAILED here, but the status says it went */
} StatusTarget;

static void
status_target_clear(StatusTarget *target)
{
  g_clear_pointer(&target->message_id, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(StatusTarget, status_target_clear)

static gboolean
status_check(const MessageRequest *mr, GError **error)
{
  if (mr->status < WA_STORE_STATUS_SENT || mr->status > WA_STORE_STATUS_FAILED ||
      ((mr->wamid == NULL || *mr->wamid == '\0') && mr->outbox_id == 0)) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID, "a status needs a wamid and a known status");
    return FALSE;
  }
  return TRUE;
}

/* Finds the message by the status's wamid or, when that finds none, by the
 * outbox id in its callback data; fills @target (its message_id stays NULL
 * when neither finds one) and the status result's current status and
 * direction. */
static gboolean
status_find_message(WaStore *store, MessageRequest *mr, StatusTarget *target, GError **error)
{
  WaStoreStatusResult *result = &mr->status_result;
  sqlite3_stmt *stmt = NULL;
  int rc = SQLITE_DONE;

  if (mr->wamid != NULL) {
    stmt = wa_store_sql(store, error,
                        "SELECT id, customer_id, status, outbox_id, 1, direction FROM messages WHERE wamid_hash = ?1",
                        "h", target->hash);
    if (stmt == NULL)
      return FALSE;
    rc = wa_store_sql_step(store, stmt, error);
    if (rc == 0)
      return FALSE;
  }
  if (rc == SQLITE_DONE && mr->outbox_id != 0 && mr->outbox_id <= WA_STORE_JS_SAFE_MAX) {
    /* the status came before the send's answer: find it by the outbox id */
    wa_store_sql_done(stmt);
    stmt = wa_store_sql(store, error,
                        "SELECT m.id, m.customer_id, m.status, m.outbox_id, m.wamid_hash IS NOT NULL, m.direction "
                        "FROM outbox o JOIN messages m ON m.id = o.message_id WHERE o.id = ?1",
                        "u", mr->outbox_id);
    if (stmt == NULL)
      return FALSE;
    rc = wa_store_sql_step(store, stmt, error);
    if (rc == 0)
      return FALSE;
  }
  if (rc == SQLITE_ROW) {
    target->message_id = wa_store_col_text(stmt, 0);
    mr->result_customer_id = wa_store_col_text(stmt, 1);
    result->status = (WaStoreStatus) sqlite3_column_int(stmt, 2);
    target->outbox_id = sqlite3_column_int64(stmt, 3);
    target->has_wamid = sqlite3_column_int(stmt, 4) != 0;
    result->direction = (WaStoreDirection) sqlite3_column_int(stmt, 5);
  }
  wa_store_sql_done(stmt);
  return TRUE;
}

/* A message found by its outbox id learns the wamid the status carries. */
static gboolean
status_record_wamid(WaStore *store, const MessageRequest *mr, const StatusTarget *target, GError **error)
{
  const WaKey *key;
  g_autoptr(GBytes) sealed = NULL;

  if (target->has_wamid || mr->wamid == NULL)
    return TRUE;
  key = wa_store_customer_key(store, mr->result_customer_id, error);
  return key != NULL && wa_store_seal(key, "messages", "wamid", target->message_id, mr->wamid, &sealed, error) &&
         wa_store_sql_exec(store, error, "UPDATE messages SET wamid_hash = ?2, wamid = ?3 WHERE id = ?1", "thb",
                           target->message_id, target->hash, sealed);
}

/* The state of the message's outbox entry, if it has one. */
static gboolean
status_read_outbox(WaStore *store, const MessageRequest *mr, StatusTarget *target, GError **error)
{
  if (target->outbox_id != 0 && !wa_store_sql_int(store, &target->outbox_state, &target->found_outbox, error,
                                                  "SELECT state FROM outbox WHERE id = ?1", "i", target->outbox_id))
    return FALSE;
  /* an entry FAILED here, not by the API: the agent dropped it when its
   * answer was lost (the API never sends statuses for messages it refused).
   * A status that says it went puts that right. */
  target->went_after_all =
    target->found_outbox && target->outbox_state == WA_STORE_OUTBOX_FAILED && mr->status != WA_STORE_STATUS_FAILED;
  return TRUE;
}

/* Sets the message's status (and a failure's error text) when the new
 * status ranks above the current one, or when it went after all. */
static gboolean
status_apply(WaStore *store, MessageRequest *mr, const StatusTarget *target, GError **error)
{
  WaStoreStatusResult *result = &mr->status_result;
  g_autoptr(GBytes) sealed = NULL;

  if (!target->went_after_all && !status_applies(result->status, mr->status))
    return TRUE;
  if (mr->status == WA_STORE_STATUS_FAILED && mr->error_text != NULL) {
    const WaKey *key = wa_store_customer_key(store, mr->result_customer_id, error);

    if (key == NULL || !wa_store_seal(key, "messages", "error", target->message_id, mr->error_text, &sealed, error))
      return FALSE;
  }
  if (!wa_store_sql_exec(store, error,
                         "UPDATE messages SET status = ?2, status_time = ?3, error = coalesce(?4, error) "
                         "WHERE id = ?1",
                         "tiib", target->message_id, (gint64) mr->status, mr->timestamp, sealed))
    return FALSE;
  result->status = mr->status;
  result->changed = TRUE;
  return TRUE;
}

/* Resolves an outbox entry still waiting for its answer (queued, sending,
 * uncertain), or one that went after all: SENT, or FAILED by a failed
 * status. */
static gboolean
status_resolve_outbox(WaStore *store, gint64 now, MessageRequest *mr, const StatusTarget *target, GError **error)
{
  WaStoreStatusResult *result = &mr->status_result;
  gint64 state = target->outbox_state;
  WaStoreOutboxState resolved;

  if (!target->found_outbox)
    return TRUE;
  result->outbox_state = (WaStoreOutboxState) state;
  result->outbox_before = (WaStoreOutboxState) state;
  if (state != WA_STORE_OUTBOX_QUEUED && state != WA_STORE_OUTBOX_SENDING && state != WA_STORE_OUTBOX_UNCERTAIN &&
      !target->went_after_all)
    return TRUE;
  resolved = result->status == WA_STORE_STATUS_FAILED ? WA_STORE_OUTBOX_FAILED : WA_STORE_OUTBOX_SENT;
  if (!wa_store_sql_exec(store, error, "UPDATE outbox SET state = ?2, updated = ?3 WHERE id = ?1", "iii",
                         target->outbox_id, (gint64) resolved, now))
    return FALSE;
  /* "no answer" no longer applies: it did go out */
  if (resolved == WA_STORE_OUTBOX_SENT &&
      !wa_store_sql_exec(store, error, "UPDATE messages SET error = NULL WHERE id = ?1", "t", target->message_id))
    return FALSE;
  result->outbox_state = resolved;
  result->outbox_resolved = TRUE;
  return TRUE;
}

static gboolean
run_status(WaStore *store, Request *req, GError **error)
{
  MessageRequest *mr = (MessageRequest *) req;
  g_auto(StatusTarget) target = {0};

  if (!status_check(mr, error))
    return FALSE;
  if (mr->wamid != NULL)
    wa_store_index(store, "wamid", mr->wamid, target.hash);
  if (!status_find_message(store, mr, &target, error))
    return FALSE;
  if (target.message_id == NULL)
    return TRUE; /* not ours, or erased: not an error */
  mr->status_result.found = TRUE;
  mr->status_result.outbox_id = (guint64) target.outbox_id;
  if (!status_record_wamid(store, mr, &target, error) || !status_read_outbox(store, mr, &target, error) ||
      !status_apply(store, mr, &target, error) || !status_resolve_outbox(store, req->now, mr, &target, error))
    return FALSE;
  mr->message_id = g_steal_pointer(&target.message_id);
  return TRUE;
}

static void
answer_status(Request *req)
{
  MessageRequest *mr = (MessageRequest *) req;
  WaStoreStatusResult result = mr->status_result;

  if (req->cb == NULL)
    return;
  result.message_id = mr->message_id;
  result.customer_id = mr->result_customer_id;
  ((WaStoreStatusFunc) req->cb)(req->error == NULL ? &result : NULL, req->error, req->data);
}

static gboolean
run_find(WaStore *store, Request *req, GError **error)
{
  MessageRequest *mr = (MessageRequest *) req;
  guint8 hash[WA_CRYPT_HASH_BYTES];
  sqlite3_stmt *stmt;
  int rc;

  wa_store_index(store, "wamid", mr->wamid, hash);
  stmt = wa_store_sql(store, error, "SELECT " WA_STORE_MESSAGE_COLUMNS " FROM messages m WHERE m.wamid_hash = ?1", "h",
                      hash);
  if (stmt == NULL)
    return FALSE;
  rc = wa_store_sql_step(store, stmt, error);
  if (rc == 0)
    return FALSE;
  if (rc == SQLITE_ROW)
    mr->message = wa_store_read_message(store, stmt);
  wa_store_sql_done(stmt);
  return TRUE;
}

static void
answer_message(Request *req)
{
  MessageRequest *mr = (MessageRequest *) req;

  if (req->cb != NULL)
    ((WaStoreMessageFunc) req->cb)(req->error == NULL ? mr->message : NULL, req->error, req->data);
}

static gboolean
run_history(WaStore *store, Request *req, GError **error)
{
  MessageRequest *mr = (MessageRequest *) req;
  sqlite3_stmt *stmt = wa_store_sql(store, error,
                                    "SELECT * FROM (SELECT " WA_STORE_MESSAGE_COLUMNS ", m.rowid AS r FROM messages m "
                                    "WHERE m.customer_id = ?1 "
                                    "ORDER BY m.timestamp DESC, m.rowid DESC LIMIT ?2) "
                                    "ORDER BY timestamp, r",
                                    "ti", mr->customer_id, (gint64) mr->limit);
  int rc;

  if (stmt == NULL)
    return FALSE;
  mr->list = g_ptr_array_new_with_free_func((GDestroyNotify) wa_store_message_free);
  while ((rc = wa_store_sql_step(store, stmt, error)) == SQLITE_ROW)
    g_ptr_array_add(mr->list, wa_store_read_message(store, stmt));
  if (rc == 0)
    return FALSE;
  wa_store_sql_done(stmt);
  return TRUE;
}

static void
answer_messages(Request *req)
{
  MessageRequest *mr = (MessageRequest *) req;

  if (req->cb != NULL)
    ((WaStoreMessagesFunc) req->cb)(req->error == NULL ? mr->list : NULL, req->error, req->data);
}

static gboolean
run_mark_shown(WaStore *store, Request *req, GError **error)
{
  MessageRequest *mr = (MessageRequest *) req;

  return wa_store_sql_exec(store, error, "UPDATE messages SET shown = 1 WHERE id = ?1 AND shown = 0", "t",
                           mr->message_id);
}


/* A "shown" mark only keeps a crashed messenger from showing the line
 * again: it need not survive a power loss (then the line is shown twice). */
static const RequestClass mark_shown_class = {
  .mode = MODE_WRITE,
  .needs_key = TRUE,
  .unsynced = TRUE,
  .size = sizeof(MessageRequest),
  .run = run_mark_shown,
  .answer = wa_store_answer_done,
  .finalize = finalize_message,
};
static const RequestClass inbound_class = {
  .mode = MODE_WRITE,
  .needs_key = TRUE,
  .size = sizeof(MessageRequest),
  .run = run_inbound,
  .answer = answer_inbound,
  .finalize = finalize_message,
};
static const RequestClass status_class = {
  .mode = MODE_WRITE,
  .needs_key = TRUE,
  .size = sizeof(MessageRequest),
  .run = run_status,
  .answer = answer_status,
  .finalize = finalize_message,
};
static const RequestClass find_class = {
  .mode = MODE_READ,
  .needs_key = TRUE,
  .size = sizeof(MessageRequest),
  .run = run_find,
  .answer = answer_message,
  .finalize = finalize_message,
};
static const RequestClass history_class = {
  .mode = MODE_READ,
  .needs_key = TRUE,
  .size = sizeof(MessageRequest),
  .run = run_history,
  .answer = answer_messages,
  .finalize = finalize_message,
};

void
wa_store_inbound(WaStore *store, const WaStoreInbound *message, WaStoreInboundFunc done, gpointer data)
{
  MessageRequest *mr;

  g_return_if_fail(store != NULL && message != NULL);
  mr = wa_store_request_new(store, &inbound_class, STORE_CALLBACK(done), data);
  mr->wa_id = g_strdup(message->wa_id);
  mr->bsuid = g_strdup(message->bsuid);
  mr->profile_name = g_strdup(message->profile_name);
  mr->direction = message->direction;
  mr->wamid = g_strdup(message->wamid);
  mr->type = g_strdup(message->type);
  mr->body = g_strdup(message->body);
  mr->caption = g_strdup(message->caption);
  mr->raw = g_strdup(message->raw);
  mr->timestamp = message->timestamp;
  if (message->media != NULL) {
    mr->has_media = TRUE;
    mr->media_in.media_id = g_strdup(message->media->media_id);
    mr->media_in.mime_type = g_strdup(message->media->mime_type);
    mr->media_in.sha256 = g_strdup(message->media->sha256);
    mr->media_in.filename = g_strdup(message->media->filename);
    mr->media_in.voice = message->media->voice;
  }
  wa_store_request_push(store, mr);
}

void
wa_store_message_mark_shown(WaStore *store, const char *message_id, WaStoreDoneFunc done, gpointer data)
{
  MessageRequest *mr;

  g_return_if_fail(store != NULL && message_id != NULL);
  mr = wa_store_request_new(store, &mark_shown_class, STORE_CALLBACK(done), data);
  mr->message_id = g_strdup(message_id);
  wa_store_request_push(store, mr);
}

void
wa_store_message_status(WaStore *store, const WaStoreStatusUpdate *update, WaStoreStatusFunc done, gpointer data)
{
  MessageRequest *mr;

  g_return_if_fail(store != NULL && update != NULL);
  mr = wa_store_request_new(store, &status_class, STORE_CALLBACK(done), data);
  mr->wamid = g_strdup(update->wamid);
  mr->outbox_id = update->outbox_id;
  mr->status = update->status;
  mr->error_text = g_strdup(update->error_text);
  mr->timestamp = update->timestamp;
  wa_store_request_push(store, mr);
}

void
wa_store_message_find(WaStore *store, const char *wamid, WaStoreMessageFunc done, gpointer data)
{
  MessageRequest *mr;

  g_return_if_fail(store != NULL && wamid != NULL);
  mr = wa_store_request_new(store, &find_class, STORE_CALLBACK(done), data);
  mr->wamid = g_strdup(wamid);
  wa_store_request_push(store, mr);
}

void
wa_store_history(WaStore *store, const char *customer_id, guint limit, WaStoreMessagesFunc done, gpointer data)
{
  MessageRequest *mr;

  g_return_if_fail(store != NULL && customer_id != NULL);
  mr = wa_store_request_new(store, &history_class, STORE_CALLBACK(done), data);
  mr->customer_id = g_strdup(customer_id);
  mr->limit = limit;
  wa_store_request_push(store, mr);
}
