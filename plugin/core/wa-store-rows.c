/* wa-store-rows.c: what the store's record files share: copying and freeing
 * the records handed to callers (customers, messages, outbox entries), the
 * worker's readers of message and outbox rows, the lookup of a message by
 * its wamid hash, and the answer of requests that only report success.
 *
 * Readers run on the worker inside the request's transaction (or read);
 * copy and free run on any thread. Customer-owned values are opened with the
 * customer's key, associated data (table, column, row id).
 *
 * Must not: log content, ids or hashes, keep decrypted text beyond the
 * record that holds it (freeing wipes it), or touch a connection or key
 * outside the worker. */
#include "wa-store-private.h"

/* ---- records -------------------------------------------------------------------- */

WaStoreCustomer *
wa_store_customer_copy(const WaStoreCustomer *customer)
{
  WaStoreCustomer *copy;

  if (customer == NULL)
    return NULL;
  copy = g_new0(WaStoreCustomer, 1);
  *copy = *customer;
  copy->id = g_strdup(customer->id);
  copy->wa_id = g_strdup(customer->wa_id);
  copy->bsuid = g_strdup(customer->bsuid);
  copy->name = g_strdup(customer->name);
  return copy;
}

void
wa_store_customer_free(WaStoreCustomer *customer)
{
  if (customer == NULL)
    return;
  g_free(customer->id);
  wa_store_wipe_free(customer->wa_id);
  wa_store_wipe_free(customer->bsuid);
  wa_store_wipe_free(customer->name);
  g_free(customer);
}

WaStoreMessage *
wa_store_message_copy(const WaStoreMessage *message)
{
  WaStoreMessage *copy;

  if (message == NULL)
    return NULL;
  copy = g_new0(WaStoreMessage, 1);
  *copy = *message;
  copy->id = g_strdup(message->id);
  copy->customer_id = g_strdup(message->customer_id);
  copy->type = g_strdup(message->type);
  copy->body = g_strdup(message->body);
  copy->caption = g_strdup(message->caption);
  copy->wamid = g_strdup(message->wamid);
  copy->error = g_strdup(message->error);
  return copy;
}

void
wa_store_message_free(WaStoreMessage *message)
{
  if (message == NULL)
    return;
  g_free(message->id);
  g_free(message->customer_id);
  g_free(message->type);
  wa_store_wipe_free(message->body);
  wa_store_wipe_free(message->caption);
  wa_store_wipe_free(message->wamid);
  wa_store_wipe_free(message->error);
  g_free(message);
}

WaStoreOutbox *
wa_store_outbox_copy(const WaStoreOutbox *entry)
{
  WaStoreOutbox *copy;

  if (entry == NULL)
    return NULL;
  copy = g_new0(WaStoreOutbox, 1);
  *copy = *entry;
  copy->message_id = g_strdup(entry->message_id);
  copy->customer_id = g_strdup(entry->customer_id);
  copy->body = g_strdup(entry->body);
  copy->payload = g_strdup(entry->payload);
  copy->wamid = g_strdup(entry->wamid);
  copy->error = g_strdup(entry->error);
  return copy;
}

void
wa_store_outbox_free(WaStoreOutbox *entry)
{
  if (entry == NULL)
    return;
  g_free(entry->message_id);
  g_free(entry->customer_id);
  wa_store_wipe_free(entry->body);
  wa_store_wipe_free(entry->payload);
  wa_store_wipe_free(entry->wamid);
  wa_store_wipe_free(entry->error);
  g_free(entry);
}

/* ---- readers (worker) ------------------------------------------------------------- */

WaStoreMessage *
wa_store_read_message(WaStore *store, sqlite3_stmt *stmt)
{
  WaStoreMessage *message = g_new0(WaStoreMessage, 1);
  const WaKey *key;

  message->id = wa_store_col_text(stmt, 0);
  message->customer_id = wa_store_col_text(stmt, 1);
  message->direction = (WaStoreDirection) sqlite3_column_int(stmt, 2);
  message->type = wa_store_col_text(stmt, 3);
  message->timestamp = sqlite3_column_int64(stmt, 8);
  message->status = (WaStoreStatus) sqlite3_column_int(stmt, 9);
  message->status_time = sqlite3_column_int64(stmt, 10);
  message->outbox_id = (guint64) sqlite3_column_int64(stmt, 11);
  message->expired = sqlite3_column_int(stmt, 12) != 0;
  message->shown = sqlite3_column_int(stmt, 13) != 0;
  key = message->id != NULL && message->customer_id != NULL ? wa_store_customer_key(store, message->customer_id, NULL)
                                                            : NULL;
  if (key == NULL) {
    message->tampered = TRUE;
    return message;
  }
  message->body = wa_store_open_col(key, "messages", "body", message->id, stmt, 4, &message->tampered);
  message->caption = wa_store_open_col(key, "messages", "caption", message->id, stmt, 5, &message->tampered);
  message->wamid = wa_store_open_col(key, "messages", "wamid", message->id, stmt, 6, &message->tampered);
  message->error = wa_store_open_col(key, "messages", "error", message->id, stmt, 7, &message->tampered);
  return message;
}

WaStoreOutbox *
wa_store_read_outbox(WaStore *store, sqlite3_stmt *stmt)
{
  WaStoreOutbox *entry = g_new0(WaStoreOutbox, 1);
  g_autofree char *id_text = NULL;
  const WaKey *key;

  entry->id = (guint64) sqlite3_column_int64(stmt, 0);
  entry->message_id = wa_store_col_text(stmt, 1);
  entry->customer_id = wa_store_col_text(stmt, 2);
  entry->state = (WaStoreOutboxState) sqlite3_column_int(stmt, 3);
  entry->preview_url = sqlite3_column_int(stmt, 5) != 0;
  entry->attempts = (guint) sqlite3_column_int(stmt, 6);
  entry->next_attempt = sqlite3_column_int64(stmt, 7);
  entry->created = sqlite3_column_int64(stmt, 8);
  entry->updated = sqlite3_column_int64(stmt, 9);
  entry->campaign = sqlite3_column_int(stmt, 13) != 0;
  key = entry->message_id != NULL && entry->customer_id != NULL ? wa_store_customer_key(store, entry->customer_id, NULL)
                                                                : NULL;
  if (key == NULL) {
    entry->tampered = TRUE;
    return entry;
  }
  id_text = g_strdup_printf("%" G_GUINT64_FORMAT, entry->id);
  entry->payload = wa_store_open_col(key, "outbox", "payload", id_text, stmt, 4, &entry->tampered);
  entry->body = wa_store_open_col(key, "messages", "body", entry->message_id, stmt, 10, &entry->tampered);
  entry->wamid = wa_store_open_col(key, "messages", "wamid", entry->message_id, stmt, 11, &entry->tampered);
  entry->error = wa_store_open_col(key, "messages", "error", entry->message_id, stmt, 12, &entry->tampered);
  return entry;
}

gboolean
wa_store_message_by_hash(WaStore *store, const guint8 *hash, char **id, char **customer_id, gboolean *shown,
                         GError **error)
{
  sqlite3_stmt *stmt =
    wa_store_sql(store, error, "SELECT id, customer_id, shown FROM messages WHERE wamid_hash = ?1", "h", hash);
  int rc;

  *id = NULL;
  *customer_id = NULL;
  if (stmt == NULL)
    return FALSE;
  rc = wa_store_sql_step(store, stmt, error);
  if (rc == 0)
    return FALSE;
  if (rc == SQLITE_ROW) {
    *id = wa_store_col_text(stmt, 0);
    *customer_id = wa_store_col_text(stmt, 1);
    *shown = sqlite3_column_int(stmt, 2) != 0;
  }
  wa_store_sql_done(stmt);
  return TRUE;
}

/* ---- answers (loop thread) ---------------------------------------------------------- */

void
wa_store_answer_done(Request *req)
{
  if (req->cb != NULL)
    ((WaStoreDoneFunc) req->cb)(req->error, req->data);
}
