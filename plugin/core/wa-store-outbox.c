/* wa-store-outbox.c: the store's outbox: enqueueing a message to send (its
 * message row and outbox entry in one transaction), the entry's state
 * machine (queued, sending, sent, uncertain, failed) with the message row
 * kept in step, and reading entries by id, state or wamid.
 *
 * Every run_* function runs on the worker inside the transaction (or read)
 * that wa-store.c opened for it; answer_* functions run on the loop thread.
 * Body, payload, wamid and error are sealed with the customer's key,
 * associated data (table, column, row id).
 *
 * Must not: log content, ids or hashes, keep decrypted text beyond the
 * request (it is wiped when the request is freed), allow a transition the
 * state machine does not list (nothing leaves SENT), or touch a connection
 * or key outside the worker. */
#include "wa-store-private.h"

#include <sodium.h>
#include <string.h>

typedef struct {
  Request base;
  guint64 outbox_id;
  char *customer_id;
  char *type;
  char *body;
  char *payload;
  gboolean preview_url;
  WaStoreOutboxState state;
  char *wamid;
  char *error_text;
  gint64 next_attempt;
  guint mask;
  /* results */
  WaStoreOutbox *entry;
  GPtrArray *list;
} OutboxRequest;

static void
finalize_outbox(Request *req)
{
  OutboxRequest *obx = (OutboxRequest *) req;

  g_free(obx->customer_id);
  g_free(obx->type);
  wa_store_wipe_free(obx->body);
  wa_store_wipe_free(obx->payload);
  wa_store_wipe_free(obx->wamid);
  wa_store_wipe_free(obx->error_text);
  g_clear_pointer(&obx->entry, wa_store_outbox_free);
  g_clear_pointer(&obx->list, g_ptr_array_unref);
}

static gboolean
read_outbox_by_id(WaStore *store, guint64 id, WaStoreOutbox **out, GError **error)
{
  sqlite3_stmt *stmt = wa_store_sql(store, error,
                                    "SELECT " WA_STORE_OUTBOX_COLUMNS
                                    " FROM outbox o JOIN messages m ON m.id = o.message_id WHERE o.id = ?1",
                                    "u", id);
  int rc;

  *out = NULL;
  if (stmt == NULL)
    return FALSE;
  rc = wa_store_sql_step(store, stmt, error);
  if (rc == 0)
    return FALSE;
  if (rc == SQLITE_ROW)
    *out = wa_store_read_outbox(store, stmt);
  wa_store_sql_done(stmt);
  return TRUE;
}

/* A random id in 1 .. 2^53-1 (exact in JSON numbers), unused. Random rather
 * than counted: a status echoing the callback data of a store that was
 * deleted and created anew cannot hit a new entry. */
static gboolean
new_outbox_id(WaStore *store, guint64 *out, GError **error)
{
  for (;;) {
    guint64 id;
    gint64 unused;
    gboolean taken;

    randombytes_buf(&id, sizeof id);
    id &= WA_STORE_JS_SAFE_MAX;
    if (id == 0)
      continue;
    if (!wa_store_sql_int(store, &unused, &taken, error, "SELECT 1 FROM outbox WHERE id = ?1", "u", id))
      return FALSE;
    if (!taken) {
      *out = id;
      return TRUE;
    }
  }
}

gboolean
wa_store_outbox_insert(WaStore *store, gint64 now, const char *customer_id, const char *type, const char *body,
                       const char *payload, gboolean preview_url, gboolean sending, WaStoreOutbox **out, GError **error)
{
  const WaKey *key;
  g_autofree char *message_id = NULL;
  g_autofree char *id_text = NULL;
  g_autoptr(GBytes) sealed_body = NULL;
  g_autoptr(GBytes) sealed_payload = NULL;
  guint64 id;

  if (body == NULL && payload == NULL) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID, "nothing to send");
    return FALSE;
  }
  key = wa_store_customer_key(store, customer_id, error);
  if (key == NULL || !new_outbox_id(store, &id, error))
    return FALSE;
  message_id = wa_store_new_id();
  id_text = g_strdup_printf("%" G_GUINT64_FORMAT, id);
  if (!wa_store_seal(key, "messages", "body", message_id, body, &sealed_body, error) ||
      !wa_store_seal(key, "outbox", "payload", id_text, payload, &sealed_payload, error))
    return FALSE;
  if (!wa_store_sql_exec(store, error,
                         "INSERT INTO messages (id, customer_id, direction, type, body, timestamp, outbox_id, created) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6)",
                         "ttitbiu", message_id, customer_id, (gint64) WA_STORE_OUT, type != NULL ? type : "text",
                         sealed_body, now, id) ||
      !wa_store_sql_exec(
        store, error,
        "INSERT INTO outbox (id, message_id, customer_id, state, payload, preview_url, created, updated, attempts) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
        "uttibiii", id, message_id, customer_id, (gint64) (sending ? WA_STORE_OUTBOX_SENDING : WA_STORE_OUTBOX_QUEUED),
        sealed_payload, (gint64) (preview_url ? 1 : 0), now, (gint64) (sending ? 1 : 0)))
    return FALSE;
  *out = g_new0(WaStoreOutbox, 1);
  (*out)->id = id;
  (*out)->message_id = g_steal_pointer(&message_id);
  (*out)->customer_id = g_strdup(customer_id);
  (*out)->state = sending ? WA_STORE_OUTBOX_SENDING : WA_STORE_OUTBOX_QUEUED;
  (*out)->body = g_strdup(body);
  (*out)->payload = g_strdup(payload);
  (*out)->preview_url = preview_url;
  (*out)->attempts = sending ? 1 : 0;
  (*out)->created = (*out)->updated = now;
  return TRUE;
}

static gboolean
run_enqueue(WaStore *store, Request *req, GError **error)
{
  OutboxRequest *obx = (OutboxRequest *) req;

  return wa_store_outbox_insert(store, req->now, obx->customer_id, obx->type, obx->body, obx->payload, obx->preview_url,
                                FALSE, &obx->entry, error);
}

static gboolean
transition_allowed(WaStoreOutboxState from, WaStoreOutboxState to)
{
  switch (from) {
  case WA_STORE_OUTBOX_QUEUED:
    return to == WA_STORE_OUTBOX_SENDING;
  case WA_STORE_OUTBOX_SENDING:
    return to == WA_STORE_OUTBOX_SENT || to == WA_STORE_OUTBOX_UNCERTAIN || to == WA_STORE_OUTBOX_FAILED ||
           to == WA_STORE_OUTBOX_QUEUED;
  case WA_STORE_OUTBOX_UNCERTAIN:
    return to == WA_STORE_OUTBOX_SENT || to == WA_STORE_OUTBOX_FAILED || to == WA_STORE_OUTBOX_QUEUED;
  case WA_STORE_OUTBOX_FAILED:
    return to == WA_STORE_OUTBOX_QUEUED;
  case WA_STORE_OUTBOX_SENT:
    break;
  }
  return FALSE;
}

static const char *
outbox_state_name(WaStoreOutboxState state)
{
  static const char *const names[] = {"queued", "sending", "sent", "uncertain", "failed"};

  return (guint) state < G_N_ELEMENTS(names) ? names[state] : "unknown";
}

static gboolean
run_outbox_update(WaStore *store, Request *req, GError **error)
{
  OutboxRequest *obx = (OutboxRequest *) req;
  g_autoptr(WaStoreOutbox) current = NULL;
  g_autoptr(GBytes) sealed = NULL;
  const WaKey *key;
  gint64 attempts;
  gint64 next_attempt;

  if (!read_outbox_by_id(store, obx->outbox_id, &current, error))
    return FALSE;
  if (current == NULL) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_NOT_FOUND, "no such outbox entry");
    return FALSE;
  }
  if (current->state == WA_STORE_OUTBOX_SENT && obx->state == WA_STORE_OUTBOX_SENT && obx->wamid != NULL &&
      g_strcmp0(current->wamid, obx->wamid) == 0) {
    /* its status webhook came first and resolved it already */
    obx->entry = g_steal_pointer(&current);
    return TRUE;
  }
  if (!transition_allowed(current->state, obx->state)) {
    g_set_error(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID, "an outbox entry cannot go from %s to %s",
                outbox_state_name(current->state), outbox_state_name(obx->state));
    return FALSE;
  }
  if (obx->state == WA_STORE_OUTBOX_QUEUED && current->body == NULL && current->payload == NULL) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID,
                        "this message can no longer be sent: its text was deleted (retention)");
    return FALSE;
  }
  key = wa_store_customer_key(store, current->customer_id, error);
  if (key == NULL)
    return FALSE;
  attempts = current->attempts + (obx->state == WA_STORE_OUTBOX_SENDING ? 1 : 0);
  next_attempt = obx->state == WA_STORE_OUTBOX_QUEUED ? obx->next_attempt : current->next_attempt;

  switch (obx->state) {
  case WA_STORE_OUTBOX_SENT: {
    guint8 hash[WA_CRYPT_HASH_BYTES];
    g_autofree char *other = NULL;
    g_autofree char *other_customer = NULL;
    gboolean other_shown = FALSE;

    if (obx->wamid == NULL || *obx->wamid == '\0') {
      g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID, "a sent message needs its wamid");
      return FALSE;
    }
    wa_store_index(store, "wamid", obx->wamid, hash);
    if (!wa_store_message_by_hash(store, hash, &other, &other_customer, &other_shown, error))
      return FALSE;
    if (other != NULL && strcmp(other, current->message_id) != 0) {
      g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID, "this wamid belongs to another message");
      return FALSE;
    }
    if (!wa_store_seal(key, "messages", "wamid", current->message_id, obx->wamid, &sealed, error) ||
        !wa_store_sql_exec(store, error, "UPDATE messages SET wamid_hash = ?2, wamid = ?3, error = NULL WHERE id = ?1",
                           "thb", current->message_id, hash, sealed))
      return FALSE;
    break;
  }
  case WA_STORE_OUTBOX_FAILED:
  case WA_STORE_OUTBOX_UNCERTAIN:
    if (!wa_store_seal(key, "messages", "error", current->message_id, obx->error_text, &sealed, error) ||
        !wa_store_sql_exec(store, error,
                           "UPDATE messages SET error = ?2, status = CASE WHEN ?3 THEN ?4 ELSE status END, "
                           "status_time = CASE WHEN ?3 THEN ?5 ELSE status_time END WHERE id = ?1",
                           "tbiii", current->message_id, sealed, (gint64) (obx->state == WA_STORE_OUTBOX_FAILED),
                           (gint64) WA_STORE_STATUS_FAILED, req->now))
      return FALSE;
    break;
  case WA_STORE_OUTBOX_QUEUED:
    /* a new attempt: the last one's failure no longer applies */
    if (!wa_store_sql_exec(
          store, error, "UPDATE messages SET error = NULL, status = ?2, status_time = 0 WHERE id = ?1 AND status = ?3",
          "tii", current->message_id, (gint64) WA_STORE_STATUS_NONE, (gint64) WA_STORE_STATUS_FAILED) ||
        !wa_store_sql_exec(store, error, "UPDATE messages SET error = NULL WHERE id = ?1", "t", current->message_id))
      return FALSE;
    break;
  case WA_STORE_OUTBOX_SENDING:
    break;
  }
  if (!wa_store_sql_exec(store, error,
                         "UPDATE outbox SET state = ?2, attempts = ?3, next_attempt = ?4, updated = ?5 WHERE id = ?1",
                         "uiiii", obx->outbox_id, (gint64) obx->state, attempts, next_attempt, req->now))
    return FALSE;
  /* the entry as written, without reading (and decrypting) it again */
  current->state = obx->state;
  current->attempts = (guint) attempts;
  current->next_attempt = next_attempt;
  current->updated = req->now;
  switch (obx->state) {
  case WA_STORE_OUTBOX_SENT:
    wa_store_wipe_free(current->wamid);
    current->wamid = g_strdup(obx->wamid);
    g_clear_pointer(&current->error, wa_store_wipe_free);
    break;
  case WA_STORE_OUTBOX_QUEUED:
    g_clear_pointer(&current->error, wa_store_wipe_free);
    break;
  case WA_STORE_OUTBOX_FAILED:
  case WA_STORE_OUTBOX_UNCERTAIN:
    wa_store_wipe_free(current->error);
    current->error = g_strdup(obx->error_text);
    break;
  case WA_STORE_OUTBOX_SENDING:
    break;
  }
  obx->entry = g_steal_pointer(&current);
  return TRUE;
}

static gboolean
run_outbox_list(WaStore *store, Request *req, GError **error)
{
  OutboxRequest *obx = (OutboxRequest *) req;
  sqlite3_stmt *stmt =
    wa_store_sql(store, error,
                 "SELECT " WA_STORE_OUTBOX_COLUMNS " FROM outbox o JOIN messages m ON m.id = o.message_id "
                 "WHERE (?1 >> o.state) & 1 ORDER BY o.rowid",
                 "i", (gint64) obx->mask);
  int rc;

  if (stmt == NULL)
    return FALSE;
  obx->list = g_ptr_array_new_with_free_func((GDestroyNotify) wa_store_outbox_free);
  while ((rc = wa_store_sql_step(store, stmt, error)) == SQLITE_ROW)
    g_ptr_array_add(obx->list, wa_store_read_outbox(store, stmt));
  if (rc == 0)
    return FALSE;
  wa_store_sql_done(stmt);
  return TRUE;
}

static gboolean
run_outbox_get(WaStore *store, Request *req, GError **error)
{
  OutboxRequest *obx = (OutboxRequest *) req;

  return read_outbox_by_id(store, obx->outbox_id, &obx->entry, error);
}

static gboolean
run_outbox_find(WaStore *store, Request *req, GError **error)
{
  OutboxRequest *obx = (OutboxRequest *) req;
  guint8 hash[WA_CRYPT_HASH_BYTES];
  sqlite3_stmt *stmt;
  int rc;

  wa_store_index(store, "wamid", obx->wamid, hash);
  stmt = wa_store_sql(store, error,
                      "SELECT " WA_STORE_OUTBOX_COLUMNS
                      " FROM outbox o JOIN messages m ON m.id = o.message_id WHERE m.wamid_hash = ?1",
                      "h", hash);
  if (stmt == NULL)
    return FALSE;
  rc = wa_store_sql_step(store, stmt, error);
  if (rc == 0)
    return FALSE;
  if (rc == SQLITE_ROW)
    obx->entry = wa_store_read_outbox(store, stmt);
  wa_store_sql_done(stmt);
  return TRUE;
}

static void
answer_outbox(Request *req)
{
  OutboxRequest *obx = (OutboxRequest *) req;

  if (req->cb != NULL)
    ((WaStoreOutboxFunc) req->cb)(req->error == NULL ? obx->entry : NULL, req->error, req->data);
}

static void
answer_outbox_list(Request *req)
{
  OutboxRequest *obx = (OutboxRequest *) req;

  if (req->cb != NULL)
    ((WaStoreOutboxListFunc) req->cb)(req->error == NULL ? obx->list : NULL, req->error, req->data);
}

static const RequestClass enqueue_class = {
  .mode = MODE_WRITE,
  .needs_key = TRUE,
  .size = sizeof(OutboxRequest),
  .run = run_enqueue,
  .answer = answer_outbox,
  .finalize = finalize_outbox,
};
static const RequestClass outbox_update_class = {
  .mode = MODE_WRITE,
  .needs_key = TRUE,
  .size = sizeof(OutboxRequest),
  .run = run_outbox_update,
  .answer = answer_outbox,
  .finalize = finalize_outbox,
};
static const RequestClass outbox_list_class = {
  .mode = MODE_READ,
  .needs_key = TRUE,
  .size = sizeof(OutboxRequest),
  .run = run_outbox_list,
  .answer = answer_outbox_list,
  .finalize = finalize_outbox,
};
static const RequestClass outbox_get_class = {
  .mode = MODE_READ,
  .needs_key = TRUE,
  .size = sizeof(OutboxRequest),
  .run = run_outbox_get,
  .answer = answer_outbox,
  .finalize = finalize_outbox,
};
static const RequestClass outbox_find_class = {
  .mode = MODE_READ,
  .needs_key = TRUE,
  .size = sizeof(OutboxRequest),
  .run = run_outbox_find,
  .answer = answer_outbox,
  .finalize = finalize_outbox,
};

void
wa_store_outbox_enqueue(WaStore *store, const char *customer_id, const char *type, const char *body,
                        const char *payload, gboolean preview_url, WaStoreOutboxFunc done, gpointer data)
{
  OutboxRequest *obx;

  g_return_if_fail(store != NULL && customer_id != NULL);
  obx = wa_store_request_new(store, &enqueue_class, STORE_CALLBACK(done), data);
  obx->customer_id = g_strdup(customer_id);
  obx->type = g_strdup(type);
  obx->body = g_strdup(body);
  obx->payload = g_strdup(payload);
  obx->preview_url = preview_url;
  wa_store_request_push(store, obx);
}

void
wa_store_outbox_update(WaStore *store, guint64 outbox_id, const WaStoreOutboxChange *change, WaStoreOutboxFunc done,
                       gpointer data)
{
  OutboxRequest *obx;

  g_return_if_fail(store != NULL && change != NULL);
  obx = wa_store_request_new(store, &outbox_update_class, STORE_CALLBACK(done), data);
  obx->outbox_id = outbox_id;
  obx->state = change->state;
  obx->wamid = g_strdup(change->wamid);
  obx->error_text = g_strdup(change->error_text);
  obx->next_attempt = change->next_attempt;
  wa_store_request_push(store, obx);
}

void
wa_store_outbox_list(WaStore *store, guint state_mask, WaStoreOutboxListFunc done, gpointer data)
{
  OutboxRequest *obx;

  g_return_if_fail(store != NULL);
  obx = wa_store_request_new(store, &outbox_list_class, STORE_CALLBACK(done), data);
  obx->mask = state_mask;
  wa_store_request_push(store, obx);
}

void
wa_store_outbox_get(WaStore *store, guint64 outbox_id, WaStoreOutboxFunc done, gpointer data)
{
  OutboxRequest *obx;

  g_return_if_fail(store != NULL);
  obx = wa_store_request_new(store, &outbox_get_class, STORE_CALLBACK(done), data);
  obx->outbox_id = outbox_id;
  wa_store_request_push(store, obx);
}

void
wa_store_outbox_find_wamid(WaStore *store, const char *wamid, WaStoreOutboxFunc done, gpointer data)
{
  OutboxRequest *obx;

  g_return_if_fail(store != NULL && wamid != NULL);
  obx = wa_store_request_new(store, &outbox_find_class, STORE_CALLBACK(done), data);
  obx->wamid = g_strdup(wamid);
  wa_store_request_push(store, obx);
}
