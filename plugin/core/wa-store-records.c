/* wa-store-records.c: the store's everyday rows: customers (find-or-create,
 * linking a BSUID and a wa_id, names, the window), messages (inbound with
 * dedupe by wamid, statuses by rank, history), the outbox and its state
 * machine, and settings.
 *
 * Every run_* function runs on the worker inside the transaction (or read)
 * that wa-store.c opened for it; answer_* functions run on the loop thread.
 * Customer-owned values are sealed with the customer's key, associated data
 * (table, column, row id); wa_id, BSUID and wamid are found by keyed hash.
 *
 * Must not: log content, ids or hashes, keep decrypted text beyond the
 * request (it is wiped when the request is freed), or touch a connection or
 * key outside the worker. */
#include "wa-store-private.h"

#include <sodium.h>
#include <string.h>

#define JS_SAFE_MAX ((G_GUINT64_CONSTANT(1) << 53) - 1)

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

#define CUSTOMER_COLUMNS "id, wa_id, bsuid, name, newest_inbound, created"

static WaStoreCustomer *
customer_from_row(WaStore *store, sqlite3_stmt *stmt)
{
  WaStoreCustomer *customer = g_new0(WaStoreCustomer, 1);
  const WaKey *key;

  customer->id = wa_store_col_text(stmt, 0);
  customer->newest_inbound = sqlite3_column_int64(stmt, 4);
  customer->created = sqlite3_column_int64(stmt, 5);
  key = customer->id != NULL ? wa_store_customer_key(store, customer->id, NULL) : NULL;
  if (key == NULL) {
    customer->tampered = TRUE;
    return customer;
  }
  customer->wa_id = wa_store_open_col(key, "customers", "wa_id", customer->id, stmt, 1, &customer->tampered);
  customer->bsuid = wa_store_open_col(key, "customers", "bsuid", customer->id, stmt, 2, &customer->tampered);
  customer->name = wa_store_open_col(key, "customers", "name", customer->id, stmt, 3, &customer->tampered);
  return customer;
}

WaStoreCustomer *
wa_store_read_customer(WaStore *store, const char *customer_id, GError **error)
{
  sqlite3_stmt *stmt = wa_store_sql(store, error, "SELECT " CUSTOMER_COLUMNS " FROM customers WHERE id = ?1", "t",
                                    customer_id);
  WaStoreCustomer *customer = NULL;
  int rc;

  if (stmt == NULL)
    return NULL;
  rc = wa_store_sql_step(store, stmt, error);
  if (rc == 0)
    return NULL;
  if (rc == SQLITE_ROW)
    customer = customer_from_row(store, stmt);
  wa_store_sql_done(stmt);
  if (customer == NULL)
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_NOT_FOUND, "no such customer");
  return customer;
}

/* The id of the customer whose @column ("wa_id_hash" or "bsuid_hash") is
 * @hash; NULL with no error when there is none. */
static char *
customer_by_hash(WaStore *store, gboolean bsuid, const guint8 *hash, GError **error)
{
  sqlite3_stmt *stmt = bsuid ? wa_store_sql(store, error, "SELECT id FROM customers WHERE bsuid_hash = ?1", "h", hash)
                             : wa_store_sql(store, error, "SELECT id FROM customers WHERE wa_id_hash = ?1", "h", hash);
  char *id = NULL;
  int rc;

  if (stmt == NULL)
    return NULL;
  rc = wa_store_sql_step(store, stmt, error);
  if (rc == 0)
    return NULL;
  if (rc == SQLITE_ROW)
    id = wa_store_col_text(stmt, 0);
  wa_store_sql_done(stmt);
  return id;
}

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
  key = message->id != NULL && message->customer_id != NULL
          ? wa_store_customer_key(store, message->customer_id, NULL)
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
  key = entry->message_id != NULL && entry->customer_id != NULL
          ? wa_store_customer_key(store, entry->customer_id, NULL)
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

/* ---- customers (worker) -------------------------------------------------------------- */

typedef struct {
  char *customer_id;
  WaStoreCustomer *customer;
  gboolean created;
  gboolean linked;
  gboolean name_changed;
  gboolean window_moved;
  gboolean conflict;
} CustomerChange;

static void
customer_change_clear(CustomerChange *change)
{
  g_clear_pointer(&change->customer_id, g_free);
  g_clear_pointer(&change->customer, wa_store_customer_free);
}

static void
customer_change_export(const CustomerChange *change, WaStoreCustomerUpdate *update)
{
  update->customer = change->customer;
  update->created = change->created;
  update->linked = change->linked;
  update->name_changed = change->name_changed;
  update->window_moved = change->window_moved;
  update->conflict = change->conflict;
}

static gboolean
is_suppressed(WaStore *store, const char *id, gboolean *suppressed, GError **error)
{
  guint8 hash[WA_CRYPT_HASH_BYTES];
  gint64 unused;

  wa_store_index(store, "suppress", id, hash);
  return wa_store_sql_int(store, &unused, suppressed, error, "SELECT reason FROM suppression WHERE hash = ?1", "h",
                          hash);
}

/* Adds @value as the customer's BSUID if the customer has none, or as their
 * wa_id if it differs (a customer found by BSUID with a new phone number has
 * changed numbers; the BSUID stays). */
static gboolean
link_id(WaStore *store, const char *customer_id, gboolean bsuid, const char *value, const guint8 *hash,
        gboolean *linked, GError **error)
{
  const char *column = bsuid ? "bsuid" : "wa_id";
  const WaKey *key = wa_store_customer_key(store, customer_id, error);
  g_autoptr(GBytes) sealed = NULL;
  gboolean ok;

  if (key == NULL || !wa_store_seal(key, "customers", column, customer_id, value, &sealed, error))
    return FALSE;
  if (bsuid)
    ok = wa_store_sql_exec(store, error,
                           "UPDATE customers SET bsuid_hash = ?2, bsuid = ?3 WHERE id = ?1 AND bsuid_hash IS NULL",
                           "thb", customer_id, hash, sealed);
  else
    ok = wa_store_sql_exec(store, error,
                           "UPDATE customers SET wa_id_hash = ?2, wa_id = ?3 "
                           "WHERE id = ?1 AND (wa_id_hash IS NULL OR wa_id_hash != ?2)",
                           "thb", customer_id, hash, sealed);
  if (ok && sqlite3_changes(store->db) > 0)
    *linked = TRUE;
  return ok;
}

static gboolean
set_name(WaStore *store, const char *customer_id, const char *name, gboolean *changed, GError **error)
{
  const WaKey *key = wa_store_customer_key(store, customer_id, error);
  g_autoptr(WaStoreCustomer) current = NULL;
  g_autoptr(GBytes) sealed = NULL;

  if (key == NULL)
    return FALSE;
  current = wa_store_read_customer(store, customer_id, error);
  if (current == NULL)
    return FALSE;
  if (!current->tampered && g_strcmp0(current->name, name) == 0)
    return TRUE;
  if (!wa_store_seal(key, "customers", "name", customer_id, name, &sealed, error) ||
      !wa_store_sql_exec(store, error, "UPDATE customers SET name = ?2 WHERE id = ?1", "tb", customer_id, sealed))
    return FALSE;
  *changed = TRUE;
  return TRUE;
}

static gboolean
set_newest_inbound(WaStore *store, const char *customer_id, gint64 timestamp, gboolean *moved, GError **error)
{
  if (!wa_store_sql_exec(store, error,
                         "UPDATE customers SET newest_inbound = ?2 WHERE id = ?1 AND newest_inbound < ?2", "ti",
                         customer_id, timestamp))
    return FALSE;
  if (sqlite3_changes(store->db) > 0)
    *moved = TRUE;
  return TRUE;
}

static gboolean
create_customer(WaStore *store, gint64 now, const char *wa_id, const guint8 *wa_hash, const char *bsuid,
                const guint8 *bsuid_hash, const char *name, CustomerChange *change, GError **error)
{
  g_autofree char *id = wa_store_new_id();
  g_autoptr(GBytes) wrapped = NULL;
  g_autoptr(GBytes) sealed_wa_id = NULL;
  g_autoptr(GBytes) sealed_bsuid = NULL;
  g_autoptr(GBytes) sealed_name = NULL;
  const WaKey *key = wa_store_customer_key_new(store, id, &wrapped, error);

  if (key == NULL || !wa_store_seal(key, "customers", "wa_id", id, wa_id, &sealed_wa_id, error) ||
      !wa_store_seal(key, "customers", "bsuid", id, bsuid, &sealed_bsuid, error) ||
      !wa_store_seal(key, "customers", "name", id, name, &sealed_name, error))
    return FALSE;
  if (!wa_store_sql_exec(store, error,
                         "INSERT INTO customers (id, wrapped_key, wa_id_hash, wa_id, bsuid_hash, bsuid, name, created) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                         "tbhbhbbi", id, wrapped, wa_id != NULL ? wa_hash : NULL, sealed_wa_id,
                         bsuid != NULL ? bsuid_hash : NULL, sealed_bsuid, sealed_name, now) ||
      !wa_store_audit_row(store, now, "customer.created", id, NULL, error))
    return FALSE;
  change->customer_id = g_steal_pointer(&id);
  change->created = TRUE;
  return TRUE;
}

/* Find-or-create; fills @change (customer read back at the end by the caller). */
static gboolean
ensure_customer(WaStore *store, gint64 now, const char *wa_id, const char *bsuid, const char *name,
                WaStoreEnsureFlags flags, CustomerChange *change, GError **error)
{
  guint8 wa_hash[WA_CRYPT_HASH_BYTES];
  guint8 bsuid_hash[WA_CRYPT_HASH_BYTES];
  g_autofree char *by_wa_id = NULL;
  g_autofree char *by_bsuid = NULL;
  g_autoptr(GError) local = NULL;

  if ((wa_id == NULL || *wa_id == '\0') && (bsuid == NULL || *bsuid == '\0')) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID, "a customer needs a wa_id or a BSUID");
    return FALSE;
  }
  if (wa_id != NULL && *wa_id == '\0')
    wa_id = NULL;
  if (bsuid != NULL && *bsuid == '\0')
    bsuid = NULL;
  if (wa_id != NULL) {
    wa_store_index(store, "wa_id", wa_id, wa_hash);
    by_wa_id = customer_by_hash(store, FALSE, wa_hash, &local);
  }
  if (local == NULL && bsuid != NULL) {
    wa_store_index(store, "bsuid", bsuid, bsuid_hash);
    by_bsuid = customer_by_hash(store, TRUE, bsuid_hash, &local);
  }
  if (local != NULL) {
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
  }

  if (by_wa_id != NULL && by_bsuid != NULL && strcmp(by_wa_id, by_bsuid) != 0) {
    change->conflict = TRUE; /* merging two customers is the plugin's (and the agent's) call */
    change->customer_id = g_steal_pointer(&by_wa_id);
  } else if (by_wa_id != NULL) {
    change->customer_id = g_steal_pointer(&by_wa_id);
    if (bsuid != NULL && by_bsuid == NULL &&
        !link_id(store, change->customer_id, TRUE, bsuid, bsuid_hash, &change->linked, error))
      return FALSE;
  } else if (by_bsuid != NULL) {
    change->customer_id = g_steal_pointer(&by_bsuid);
    if (wa_id != NULL && !link_id(store, change->customer_id, FALSE, wa_id, wa_hash, &change->linked, error))
      return FALSE;
  } else {
    if (flags & WA_STORE_ENSURE_REFUSE_SUPPRESSED) {
      gboolean suppressed = FALSE;

      if ((wa_id != NULL && !is_suppressed(store, wa_id, &suppressed, error)) ||
          (!suppressed && bsuid != NULL && !is_suppressed(store, bsuid, &suppressed, error)))
        return FALSE;
      if (suppressed) {
        g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_SUPPRESSED,
                            "this customer asked not to be contacted, or was erased");
        return FALSE;
      }
    }
    return create_customer(store, now, wa_id, wa_hash, bsuid, bsuid_hash, name, change, error);
  }
  if (name != NULL && !set_name(store, change->customer_id, name, &change->name_changed, error))
    return FALSE;
  return TRUE;
}

/* ---- customer requests ------------------------------------------------------------ */

typedef struct {
  Request base;
  char *customer_id;
  char *wa_id;
  char *bsuid;
  char *name;
  gint64 number;
  guint flags;
  /* results */
  CustomerChange change;
  WaStoreCustomer *customer;
  GPtrArray *list;
} CustomerRequest;

static void
finalize_customer(Request *req)
{
  CustomerRequest *cr = (CustomerRequest *) req;

  g_free(cr->customer_id);
  wa_store_wipe_free(cr->wa_id);
  wa_store_wipe_free(cr->bsuid);
  wa_store_wipe_free(cr->name);
  customer_change_clear(&cr->change);
  g_clear_pointer(&cr->customer, wa_store_customer_free);
  g_clear_pointer(&cr->list, g_ptr_array_unref);
}

static void
answer_customer_update(Request *req)
{
  CustomerRequest *cr = (CustomerRequest *) req;
  WaStoreCustomerUpdate update = {0};

  if (req->cb == NULL)
    return;
  customer_change_export(&cr->change, &update);
  ((WaStoreCustomerUpdateFunc) req->cb)(req->error == NULL ? &update : NULL, req->error, req->data);
}

static void
answer_customer(Request *req)
{
  CustomerRequest *cr = (CustomerRequest *) req;

  if (req->cb != NULL)
    ((WaStoreCustomerFunc) req->cb)(req->error == NULL ? cr->customer : NULL, req->error, req->data);
}

static void
answer_customers(Request *req)
{
  CustomerRequest *cr = (CustomerRequest *) req;

  if (req->cb != NULL)
    ((WaStoreCustomersFunc) req->cb)(req->error == NULL ? cr->list : NULL, req->error, req->data);
}

static gboolean
finish_change(WaStore *store, CustomerChange *change, GError **error)
{
  change->customer = wa_store_read_customer(store, change->customer_id, error);
  return change->customer != NULL;
}

static gboolean
run_ensure(WaStore *store, Request *req, GError **error)
{
  CustomerRequest *cr = (CustomerRequest *) req;

  return ensure_customer(store, req->now, cr->wa_id, cr->bsuid, cr->name, cr->flags, &cr->change, error) &&
         finish_change(store, &cr->change, error);
}

static gboolean
run_set_name(WaStore *store, Request *req, GError **error)
{
  CustomerRequest *cr = (CustomerRequest *) req;

  cr->change.customer_id = g_strdup(cr->customer_id);
  return set_name(store, cr->customer_id, cr->name, &cr->change.name_changed, error) &&
         finish_change(store, &cr->change, error);
}

static gboolean
run_set_newest(WaStore *store, Request *req, GError **error)
{
  CustomerRequest *cr = (CustomerRequest *) req;

  cr->change.customer_id = g_strdup(cr->customer_id);
  return set_newest_inbound(store, cr->customer_id, cr->number, &cr->change.window_moved, error) &&
         finish_change(store, &cr->change, error);
}

static gboolean
run_get(WaStore *store, Request *req, GError **error)
{
  CustomerRequest *cr = (CustomerRequest *) req;
  g_autoptr(GError) local = NULL;

  cr->customer = wa_store_read_customer(store, cr->customer_id, &local);
  if (cr->customer == NULL && !g_error_matches(local, WA_STORE_ERROR, WA_STORE_ERROR_NOT_FOUND)) {
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
  }
  return TRUE;
}

static gboolean
run_lookup(WaStore *store, Request *req, GError **error)
{
  CustomerRequest *cr = (CustomerRequest *) req;
  guint8 hash[WA_CRYPT_HASH_BYTES];
  g_autofree char *id = NULL;
  g_autoptr(GError) local = NULL;

  if (cr->wa_id != NULL) {
    wa_store_index(store, "wa_id", cr->wa_id, hash);
    id = customer_by_hash(store, FALSE, hash, &local);
  }
  if (id == NULL && local == NULL && cr->bsuid != NULL) {
    wa_store_index(store, "bsuid", cr->bsuid, hash);
    id = customer_by_hash(store, TRUE, hash, &local);
  }
  if (local != NULL) {
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
  }
  if (id != NULL) {
    cr->customer = wa_store_read_customer(store, id, error);
    return cr->customer != NULL;
  }
  return TRUE;
}

static gboolean
run_list(WaStore *store, Request *req, GError **error)
{
  CustomerRequest *cr = (CustomerRequest *) req;
  sqlite3_stmt *stmt = wa_store_sql(store, error, "SELECT " CUSTOMER_COLUMNS " FROM customers ORDER BY created, rowid",
                                    NULL);
  int rc;

  if (stmt == NULL)
    return FALSE;
  cr->list = g_ptr_array_new_with_free_func((GDestroyNotify) wa_store_customer_free);
  while ((rc = wa_store_sql_step(store, stmt, error)) == SQLITE_ROW)
    g_ptr_array_add(cr->list, customer_from_row(store, stmt));
  if (rc == 0)
    return FALSE;
  wa_store_sql_done(stmt);
  return TRUE;
}

static const RequestClass ensure_class = {
  .mode = MODE_WRITE, .needs_key = TRUE, .size = sizeof(CustomerRequest),
  .run = run_ensure, .answer = answer_customer_update, .finalize = finalize_customer,
};
static const RequestClass set_name_class = {
  .mode = MODE_WRITE, .needs_key = TRUE, .size = sizeof(CustomerRequest),
  .run = run_set_name, .answer = answer_customer_update, .finalize = finalize_customer,
};
static const RequestClass set_newest_class = {
  .mode = MODE_WRITE, .needs_key = TRUE, .size = sizeof(CustomerRequest),
  .run = run_set_newest, .answer = answer_customer_update, .finalize = finalize_customer,
};
static const RequestClass get_class = {
  .mode = MODE_READ, .needs_key = TRUE, .size = sizeof(CustomerRequest),
  .run = run_get, .answer = answer_customer, .finalize = finalize_customer,
};
static const RequestClass lookup_class = {
  .mode = MODE_READ, .needs_key = TRUE, .size = sizeof(CustomerRequest),
  .run = run_lookup, .answer = answer_customer, .finalize = finalize_customer,
};
static const RequestClass list_class = {
  .mode = MODE_READ, .needs_key = TRUE, .size = sizeof(CustomerRequest),
  .run = run_list, .answer = answer_customers, .finalize = finalize_customer,
};

static CustomerRequest *
customer_request(WaStore *store, const RequestClass *klass, StoreCallback cb, gpointer data, const char *customer_id)
{
  CustomerRequest *cr = wa_store_request_new(store, klass, cb, data);

  cr->customer_id = g_strdup(customer_id);
  return cr;
}

void
wa_store_customer_ensure(WaStore *store, const char *wa_id, const char *bsuid, const char *name,
                         WaStoreEnsureFlags flags, WaStoreCustomerUpdateFunc done, gpointer data)
{
  CustomerRequest *cr;

  g_return_if_fail(store != NULL);
  cr = customer_request(store, &ensure_class, STORE_CALLBACK(done), data, NULL);
  cr->wa_id = g_strdup(wa_id);
  cr->bsuid = g_strdup(bsuid);
  cr->name = g_strdup(name);
  cr->flags = flags;
  wa_store_request_push(store, cr);
}

void
wa_store_customer_set_name(WaStore *store, const char *customer_id, const char *name,
                           WaStoreCustomerUpdateFunc done, gpointer data)
{
  CustomerRequest *cr;

  g_return_if_fail(store != NULL && customer_id != NULL);
  cr = customer_request(store, &set_name_class, STORE_CALLBACK(done), data, customer_id);
  cr->name = g_strdup(name);
  wa_store_request_push(store, cr);
}

void
wa_store_customer_set_newest_inbound(WaStore *store, const char *customer_id, gint64 timestamp,
                                     WaStoreCustomerUpdateFunc done, gpointer data)
{
  CustomerRequest *cr;

  g_return_if_fail(store != NULL && customer_id != NULL);
  cr = customer_request(store, &set_newest_class, STORE_CALLBACK(done), data, customer_id);
  cr->number = timestamp;
  wa_store_request_push(store, cr);
}

void
wa_store_customer_get(WaStore *store, const char *customer_id, WaStoreCustomerFunc done, gpointer data)
{
  g_return_if_fail(store != NULL && customer_id != NULL);
  wa_store_request_push(store, customer_request(store, &get_class, STORE_CALLBACK(done), data, customer_id));
}

void
wa_store_customer_lookup(WaStore *store, const char *wa_id, const char *bsuid, WaStoreCustomerFunc done,
                         gpointer data)
{
  CustomerRequest *cr;

  g_return_if_fail(store != NULL);
  cr = customer_request(store, &lookup_class, STORE_CALLBACK(done), data, NULL);
  cr->wa_id = g_strdup(wa_id);
  cr->bsuid = g_strdup(bsuid);
  wa_store_request_push(store, cr);
}

void
wa_store_customers_list(WaStore *store, WaStoreCustomersFunc done, gpointer data)
{
  g_return_if_fail(store != NULL);
  wa_store_request_push(store, customer_request(store, &list_class, STORE_CALLBACK(done), data, NULL));
}

/* ---- messages (worker) -------------------------------------------------------------- */

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
  customer_change_clear(&mr->change);
  g_free(mr->result_customer_id);
  g_clear_pointer(&mr->message, wa_store_message_free);
  g_clear_pointer(&mr->list, g_ptr_array_unref);
}

/* The message whose wamid hashes to @hash: its id and customer (NULL, no
 * error, when there is none). */
static gboolean
message_by_hash(WaStore *store, const guint8 *hash, char **id, char **customer_id, gboolean *shown,
                GError **error)
{
  sqlite3_stmt *stmt = wa_store_sql(store, error, "SELECT id, customer_id, shown FROM messages WHERE wamid_hash = ?1",
                                    "h", hash);
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
  if (!message_by_hash(store, hash, &existing, &mr->change.customer_id, &mr->shown, error))
    return FALSE;
  if (existing != NULL) {
    /* applied before: change nothing */
    mr->duplicate = TRUE;
    mr->message_id = g_steal_pointer(&existing);
    return finish_change(store, &mr->change, error);
  }
  if (!ensure_customer(store, req->now, mr->wa_id, mr->bsuid, mr->profile_name, WA_STORE_ENSURE_DEFAULT, &mr->change,
                       error))
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
      !set_newest_inbound(store, mr->change.customer_id, mr->timestamp, &mr->change.window_moved, error))
    return FALSE;
  mr->message_id = g_steal_pointer(&id);
  return finish_change(store, &mr->change, error);
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
  customer_change_export(&mr->change, &result.customer);
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

static gboolean
run_status(WaStore *store, Request *req, GError **error)
{
  MessageRequest *mr = (MessageRequest *) req;
  WaStoreStatusResult *result = &mr->status_result;
  guint8 hash[WA_CRYPT_HASH_BYTES];
  sqlite3_stmt *stmt;
  g_autofree char *id = NULL;
  gboolean has_wamid = FALSE;
  gint64 outbox_id = 0;
  gint64 state = 0;
  gboolean found_outbox = FALSE;
  gboolean went_after_all;
  int rc;

  if (mr->status < WA_STORE_STATUS_SENT || mr->status > WA_STORE_STATUS_FAILED ||
      ((mr->wamid == NULL || *mr->wamid == '\0') && mr->outbox_id == 0)) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID, "a status needs a wamid and a known status");
    return FALSE;
  }
  if (mr->wamid != NULL) {
    wa_store_index(store, "wamid", mr->wamid, hash);
    stmt = wa_store_sql(store, error,
                        "SELECT id, customer_id, status, outbox_id, 1, direction FROM messages WHERE wamid_hash = ?1",
                        "h", hash);
  } else {
    stmt = NULL;
  }
  if (mr->wamid != NULL && stmt == NULL)
    return FALSE;
  rc = stmt != NULL ? wa_store_sql_step(store, stmt, error) : SQLITE_DONE;
  if (rc == 0)
    return FALSE;
  if (rc == SQLITE_DONE && mr->outbox_id != 0 && mr->outbox_id <= JS_SAFE_MAX) {
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
    id = wa_store_col_text(stmt, 0);
    mr->result_customer_id = wa_store_col_text(stmt, 1);
    result->status = (WaStoreStatus) sqlite3_column_int(stmt, 2);
    outbox_id = sqlite3_column_int64(stmt, 3);
    has_wamid = sqlite3_column_int(stmt, 4) != 0;
    result->direction = (WaStoreDirection) sqlite3_column_int(stmt, 5);
  }
  wa_store_sql_done(stmt);
  if (id == NULL)
    return TRUE; /* not ours, or erased: not an error */
  result->found = TRUE;
  result->outbox_id = (guint64) outbox_id;

  if (!has_wamid && mr->wamid != NULL) {
    const WaKey *key = wa_store_customer_key(store, mr->result_customer_id, error);
    g_autoptr(GBytes) sealed = NULL;

    if (key == NULL || !wa_store_seal(key, "messages", "wamid", id, mr->wamid, &sealed, error) ||
        !wa_store_sql_exec(store, error, "UPDATE messages SET wamid_hash = ?2, wamid = ?3 WHERE id = ?1", "thb", id,
                           hash, sealed))
      return FALSE;
  }
  if (outbox_id != 0 &&
      !wa_store_sql_int(store, &state, &found_outbox, error, "SELECT state FROM outbox WHERE id = ?1", "i", outbox_id))
    return FALSE;
  /* an entry FAILED here, not by the API: the agent dropped it when its
   * answer was lost (the API never sends statuses for messages it refused).
   * A status that says it went puts that right. */
  went_after_all = found_outbox && state == WA_STORE_OUTBOX_FAILED && mr->status != WA_STORE_STATUS_FAILED;
  if (went_after_all || status_applies(result->status, mr->status)) {
    g_autoptr(GBytes) sealed = NULL;

    if (mr->status == WA_STORE_STATUS_FAILED && mr->error_text != NULL) {
      const WaKey *key = wa_store_customer_key(store, mr->result_customer_id, error);

      if (key == NULL || !wa_store_seal(key, "messages", "error", id, mr->error_text, &sealed, error))
        return FALSE;
    }
    if (!wa_store_sql_exec(store, error,
                           "UPDATE messages SET status = ?2, status_time = ?3, error = coalesce(?4, error) "
                           "WHERE id = ?1",
                           "tiib", id, (gint64) mr->status, mr->timestamp, sealed))
      return FALSE;
    result->status = mr->status;
    result->changed = TRUE;
  }

  if (found_outbox) {
    result->outbox_state = (WaStoreOutboxState) state;
    result->outbox_before = (WaStoreOutboxState) state;
    if (state == WA_STORE_OUTBOX_QUEUED || state == WA_STORE_OUTBOX_SENDING || state == WA_STORE_OUTBOX_UNCERTAIN ||
        went_after_all) {
      WaStoreOutboxState resolved =
        result->status == WA_STORE_STATUS_FAILED ? WA_STORE_OUTBOX_FAILED : WA_STORE_OUTBOX_SENT;

      if (!wa_store_sql_exec(store, error, "UPDATE outbox SET state = ?2, updated = ?3 WHERE id = ?1", "iii",
                             outbox_id, (gint64) resolved, req->now))
        return FALSE;
      /* "no answer" no longer applies: it did go out */
      if (resolved == WA_STORE_OUTBOX_SENT &&
          !wa_store_sql_exec(store, error, "UPDATE messages SET error = NULL WHERE id = ?1", "t", id))
        return FALSE;
      result->outbox_state = resolved;
      result->outbox_resolved = TRUE;
    }
  }
  mr->message_id = g_steal_pointer(&id);
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
                                    "WHERE m.customer_id = ?1 ORDER BY m.timestamp DESC, m.rowid DESC LIMIT ?2) "
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

/* For requests whose callback is a WaStoreDoneFunc. */
static void
answer_done(Request *req)
{
  if (req->cb != NULL)
    ((WaStoreDoneFunc) req->cb)(req->error, req->data);
}

static const RequestClass mark_shown_class = {
  .mode = MODE_WRITE, .needs_key = TRUE, .size = sizeof(MessageRequest),
  .run = run_mark_shown, .answer = answer_done, .finalize = finalize_message,
};
static const RequestClass inbound_class = {
  .mode = MODE_WRITE, .needs_key = TRUE, .size = sizeof(MessageRequest),
  .run = run_inbound, .answer = answer_inbound, .finalize = finalize_message,
};
static const RequestClass status_class = {
  .mode = MODE_WRITE, .needs_key = TRUE, .size = sizeof(MessageRequest),
  .run = run_status, .answer = answer_status, .finalize = finalize_message,
};
static const RequestClass find_class = {
  .mode = MODE_READ, .needs_key = TRUE, .size = sizeof(MessageRequest),
  .run = run_find, .answer = answer_message, .finalize = finalize_message,
};
static const RequestClass history_class = {
  .mode = MODE_READ, .needs_key = TRUE, .size = sizeof(MessageRequest),
  .run = run_history, .answer = answer_messages, .finalize = finalize_message,
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

/* ---- outbox (worker) ----------------------------------------------------------------- */

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
    id &= JS_SAFE_MAX;
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

static gboolean
run_enqueue(WaStore *store, Request *req, GError **error)
{
  OutboxRequest *obx = (OutboxRequest *) req;
  const WaKey *key;
  g_autofree char *message_id = NULL;
  g_autofree char *id_text = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GBytes) payload = NULL;
  guint64 id;

  if (obx->body == NULL && obx->payload == NULL) {
    g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID, "nothing to send");
    return FALSE;
  }
  key = wa_store_customer_key(store, obx->customer_id, error);
  if (key == NULL || !new_outbox_id(store, &id, error))
    return FALSE;
  message_id = wa_store_new_id();
  id_text = g_strdup_printf("%" G_GUINT64_FORMAT, id);
  if (!wa_store_seal(key, "messages", "body", message_id, obx->body, &body, error) ||
      !wa_store_seal(key, "outbox", "payload", id_text, obx->payload, &payload, error))
    return FALSE;
  if (!wa_store_sql_exec(store, error,
                         "INSERT INTO messages (id, customer_id, direction, type, body, timestamp, outbox_id, created) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6)",
                         "ttitbiu", message_id, obx->customer_id, (gint64) WA_STORE_OUT,
                         obx->type != NULL ? obx->type : "text", body, req->now, id) ||
      !wa_store_sql_exec(store, error,
                         "INSERT INTO outbox (id, message_id, customer_id, state, payload, preview_url, created, updated) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                         "uttibii", id, message_id, obx->customer_id, (gint64) WA_STORE_OUTBOX_QUEUED, payload,
                         (gint64) (obx->preview_url ? 1 : 0), req->now))
    return FALSE;
  return read_outbox_by_id(store, id, &obx->entry, error);
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
    if (!message_by_hash(store, hash, &other, &other_customer, &other_shown, error))
      return FALSE;
    if (other != NULL && strcmp(other, current->message_id) != 0) {
      g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID, "this wamid belongs to another message");
      return FALSE;
    }
    if (!wa_store_seal(key, "messages", "wamid", current->message_id, obx->wamid, &sealed, error) ||
        !wa_store_sql_exec(store, error,
                           "UPDATE messages SET wamid_hash = ?2, wamid = ?3, error = NULL WHERE id = ?1", "thb",
                           current->message_id, hash, sealed))
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
    if (!wa_store_sql_exec(store, error,
                           "UPDATE messages SET error = NULL, status = ?2, status_time = 0 WHERE id = ?1 AND status = ?3",
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
  return read_outbox_by_id(store, obx->outbox_id, &obx->entry, error);
}

static gboolean
run_outbox_list(WaStore *store, Request *req, GError **error)
{
  OutboxRequest *obx = (OutboxRequest *) req;
  sqlite3_stmt *stmt = wa_store_sql(store, error,
                                    "SELECT " WA_STORE_OUTBOX_COLUMNS
                                    " FROM outbox o JOIN messages m ON m.id = o.message_id "
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
  .mode = MODE_WRITE, .needs_key = TRUE, .size = sizeof(OutboxRequest),
  .run = run_enqueue, .answer = answer_outbox, .finalize = finalize_outbox,
};
static const RequestClass outbox_update_class = {
  .mode = MODE_WRITE, .needs_key = TRUE, .size = sizeof(OutboxRequest),
  .run = run_outbox_update, .answer = answer_outbox, .finalize = finalize_outbox,
};
static const RequestClass outbox_list_class = {
  .mode = MODE_READ, .needs_key = TRUE, .size = sizeof(OutboxRequest),
  .run = run_outbox_list, .answer = answer_outbox_list, .finalize = finalize_outbox,
};
static const RequestClass outbox_get_class = {
  .mode = MODE_READ, .needs_key = TRUE, .size = sizeof(OutboxRequest),
  .run = run_outbox_get, .answer = answer_outbox, .finalize = finalize_outbox,
};
static const RequestClass outbox_find_class = {
  .mode = MODE_READ, .needs_key = TRUE, .size = sizeof(OutboxRequest),
  .run = run_outbox_find, .answer = answer_outbox, .finalize = finalize_outbox,
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

/* ---- settings ------------------------------------------------------------------------- */

/* Account-wide settings are sealed with the store key, AD row id = name;
 * a customer's with that customer's key, AD row id = "<customer id>/<name>",
 * so erasing the customer takes them along. */

typedef struct {
  Request base;
  char *customer_id; /* NULL: account-wide */
  char *name;
  char *value;
  /* results */
  char *result;
  GHashTable *all;
} SettingRequest;

static void
finalize_setting(Request *req)
{
  SettingRequest *sr = (SettingRequest *) req;

  g_free(sr->customer_id);
  g_free(sr->name);
  wa_store_wipe_free(sr->value);
  wa_store_wipe_free(sr->result);
  g_clear_pointer(&sr->all, g_hash_table_unref);
}

/* The key and AD row id for setting @name of @customer_id (or the account). */
static const WaKey *
setting_key(WaStore *store, const char *customer_id, const char *name, char **row_id, GError **error)
{
  if (customer_id == NULL) {
    *row_id = g_strdup(name);
    return store->store_key;
  }
  *row_id = g_strconcat(customer_id, "/", name, NULL);
  return wa_store_customer_key(store, customer_id, error);
}

static gboolean
run_setting_set(WaStore *store, Request *req, GError **error)
{
  SettingRequest *sr = (SettingRequest *) req;
  g_autoptr(GBytes) sealed = NULL;
  g_autofree char *row_id = NULL;
  const WaKey *key = setting_key(store, sr->customer_id, sr->name, &row_id, error);

  if (key == NULL)
    return FALSE;
  if (sr->value == NULL)
    return wa_store_sql_exec(store, error, "DELETE FROM settings WHERE customer_id = ?1 AND name = ?2", "tt",
                             sr->customer_id != NULL ? sr->customer_id : "", sr->name);
  return wa_store_seal(key, "settings", "value", row_id, sr->value, &sealed, error) &&
         wa_store_sql_exec(store, error,
                           "INSERT INTO settings (customer_id, name, value) VALUES (?1, ?2, ?3) "
                           "ON CONFLICT (customer_id, name) DO UPDATE SET value = excluded.value",
                           "ttb", sr->customer_id != NULL ? sr->customer_id : "", sr->name, sealed);
}

static gboolean
setting_tampered(GError **error)
{
  g_set_error_literal(error, WA_STORE_ERROR, WA_STORE_ERROR_TAMPERED, "a setting in the store was altered or moved");
  return FALSE;
}

static gboolean
run_setting_get(WaStore *store, Request *req, GError **error)
{
  SettingRequest *sr = (SettingRequest *) req;
  g_autofree char *row_id = NULL;
  const WaKey *key = setting_key(store, sr->customer_id, sr->name, &row_id, error);
  sqlite3_stmt *stmt;
  gboolean tampered = FALSE;
  int rc;

  if (key == NULL)
    return FALSE;
  stmt = wa_store_sql(store, error, "SELECT value FROM settings WHERE customer_id = ?1 AND name = ?2", "tt",
                      sr->customer_id != NULL ? sr->customer_id : "", sr->name);
  if (stmt == NULL)
    return FALSE;
  rc = wa_store_sql_step(store, stmt, error);
  if (rc == 0)
    return FALSE;
  if (rc == SQLITE_ROW)
    sr->result = wa_store_open_col(key, "settings", "value", row_id, stmt, 0, &tampered);
  wa_store_sql_done(stmt);
  return tampered ? setting_tampered(error) : TRUE;
}

GHashTable *
wa_store_read_settings(WaStore *store, const char *customer_id, GError **error)
{
  g_autoptr(GHashTable) all = NULL;
  gboolean tampered = FALSE;
  sqlite3_stmt *stmt;
  int rc;

  if (customer_id != NULL && wa_store_customer_key(store, customer_id, error) == NULL)
    return NULL;
  stmt = wa_store_sql(store, error, "SELECT name, value FROM settings WHERE customer_id = ?1", "t",
                      customer_id != NULL ? customer_id : "");
  if (stmt == NULL)
    return NULL;
  all = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify) wa_store_wipe_free);
  while ((rc = wa_store_sql_step(store, stmt, error)) == SQLITE_ROW) {
    g_autofree char *name = wa_store_col_text(stmt, 0);
    g_autofree char *row_id = NULL;
    const WaKey *key = name != NULL ? setting_key(store, customer_id, name, &row_id, NULL) : NULL;
    char *value = key != NULL ? wa_store_open_col(key, "settings", "value", row_id, stmt, 1, &tampered) : NULL;

    if (value != NULL)
      g_hash_table_insert(all, g_steal_pointer(&name), value);
  }
  if (rc == 0)
    return NULL;
  wa_store_sql_done(stmt);
  if (tampered) {
    setting_tampered(error);
    return NULL;
  }
  return g_steal_pointer(&all);
}

static gboolean
run_settings_all(WaStore *store, Request *req, GError **error)
{
  SettingRequest *sr = (SettingRequest *) req;

  sr->all = wa_store_read_settings(store, sr->customer_id, error);
  return sr->all != NULL;
}

static void
answer_setting(Request *req)
{
  SettingRequest *sr = (SettingRequest *) req;

  if (req->cb != NULL)
    ((WaStoreStringFunc) req->cb)(req->error == NULL ? sr->result : NULL, req->error, req->data);
}

static void
answer_settings(Request *req)
{
  SettingRequest *sr = (SettingRequest *) req;

  if (req->cb != NULL)
    ((WaStoreSettingsFunc) req->cb)(req->error == NULL ? sr->all : NULL, req->error, req->data);
}

static const RequestClass setting_set_class = {
  .mode = MODE_WRITE, .needs_key = TRUE, .size = sizeof(SettingRequest),
  .run = run_setting_set, .answer = answer_done, .finalize = finalize_setting,
};
static const RequestClass setting_get_class = {
  .mode = MODE_READ, .needs_key = TRUE, .size = sizeof(SettingRequest),
  .run = run_setting_get, .answer = answer_setting, .finalize = finalize_setting,
};
static const RequestClass settings_all_class = {
  .mode = MODE_READ, .needs_key = TRUE, .size = sizeof(SettingRequest),
  .run = run_settings_all, .answer = answer_settings, .finalize = finalize_setting,
};

static SettingRequest *
setting_request(WaStore *store, const RequestClass *klass, StoreCallback cb, gpointer data, const char *customer_id,
                const char *name)
{
  SettingRequest *sr = wa_store_request_new(store, klass, cb, data);

  sr->customer_id = g_strdup(customer_id);
  sr->name = g_strdup(name);
  return sr;
}

void
wa_store_setting_set(WaStore *store, const char *customer_id, const char *name, const char *value,
                     WaStoreDoneFunc done, gpointer data)
{
  SettingRequest *sr;

  g_return_if_fail(store != NULL && name != NULL);
  sr = setting_request(store, &setting_set_class, STORE_CALLBACK(done), data, customer_id, name);
  sr->value = g_strdup(value);
  wa_store_request_push(store, sr);
}

void
wa_store_setting_get(WaStore *store, const char *customer_id, const char *name, WaStoreStringFunc done,
                     gpointer data)
{
  g_return_if_fail(store != NULL && name != NULL);
  wa_store_request_push(store,
                        setting_request(store, &setting_get_class, STORE_CALLBACK(done), data, customer_id, name));
}

void
wa_store_settings_all(WaStore *store, const char *customer_id, WaStoreSettingsFunc done, gpointer data)
{
  g_return_if_fail(store != NULL);
  wa_store_request_push(store,
                        setting_request(store, &settings_all_class, STORE_CALLBACK(done), data, customer_id, NULL));
}
