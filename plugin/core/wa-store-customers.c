/* wa-store-customers.c: the store's customers: find-or-create by wa_id or
 * BSUID (linking the other when one is new, refusing suppressed ones on
 * request), names, the newest inbound time that runs the window, and the
 * reader of customer rows.
 *
 * Every run_* function runs on the worker inside the transaction (or read)
 * that wa-store.c opened for it; answer_* functions run on the loop thread.
 * wa_id, BSUID and name are sealed with the customer's key, associated data
 * (table, column, row id); wa_id and BSUID are found by keyed hash.
 *
 * Must not: log content, ids or hashes, keep decrypted text beyond the
 * request (it is wiped when the request is freed), merge two customers (that
 * is the plugin's and the agent's call), or touch a connection or key
 * outside the worker. */
#include "wa-store-private.h"

#include <string.h>

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
  sqlite3_stmt *stmt =
    wa_store_sql(store, error, "SELECT " CUSTOMER_COLUMNS " FROM customers WHERE id = ?1", "t", customer_id);
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

/* ---- customers (worker) -------------------------------------------------------------- */

void
wa_store_customer_change_clear(CustomerChange *change)
{
  g_clear_pointer(&change->customer_id, g_free);
  g_clear_pointer(&change->customer, wa_store_customer_free);
}

void
wa_store_customer_change_export(const CustomerChange *change, WaStoreCustomerUpdate *update)
{
  update->customer = change->customer;
  update->created = change->created;
  update->linked = change->linked;
  update->name_changed = change->name_changed;
  update->window_moved = change->window_moved;
  update->conflict = change->conflict;
}

gboolean
wa_store_customer_change_finish(WaStore *store, CustomerChange *change, GError **error)
{
  change->customer = wa_store_read_customer(store, change->customer_id, error);
  return change->customer != NULL;
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

/* Adds @value as the customer's BSUID if the customer has none (or, with
 * @replace, if it differs: WhatsApp gave the customer a new one), or as their
 * wa_id if it differs (a customer found by BSUID with a new phone number has
 * changed numbers; the BSUID stays). */
static gboolean
link_id(WaStore *store, const char *customer_id, gboolean bsuid, gboolean replace, const char *value,
        const guint8 *hash, gboolean *linked, GError **error)
{
  const char *column = bsuid ? "bsuid" : "wa_id";
  const WaKey *key = wa_store_customer_key(store, customer_id, error);
  g_autoptr(GBytes) sealed = NULL;
  gboolean ok;

  if (key == NULL || !wa_store_seal(key, "customers", column, customer_id, value, &sealed, error))
    return FALSE;
  if (bsuid && replace)
    ok = wa_store_sql_exec(store, error,
                           "UPDATE customers SET bsuid_hash = ?2, bsuid = ?3 "
                           "WHERE id = ?1 AND (bsuid_hash IS NULL OR bsuid_hash != ?2)",
                           "thb", customer_id, hash, sealed);
  else if (bsuid)
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

gboolean
wa_store_raise_newest_inbound(WaStore *store, const char *customer_id, gint64 timestamp, gboolean *moved,
                              GError **error)
{
  if (!wa_store_sql_exec(store, error, "UPDATE customers SET newest_inbound = ?2 WHERE id = ?1 AND newest_inbound < ?2",
                         "ti", customer_id, timestamp))
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

gboolean
wa_store_find_or_create_customer(WaStore *store, gint64 now, const char *wa_id, const char *bsuid, const char *name,
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
        !link_id(store, change->customer_id, TRUE, FALSE, bsuid, bsuid_hash, &change->linked, error))
      return FALSE;
  } else if (by_bsuid != NULL) {
    change->customer_id = g_steal_pointer(&by_bsuid);
    if (wa_id != NULL && !link_id(store, change->customer_id, FALSE, FALSE, wa_id, wa_hash, &change->linked, error))
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
  wa_store_customer_change_clear(&cr->change);
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
  wa_store_customer_change_export(&cr->change, &update);
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
run_ensure(WaStore *store, Request *req, GError **error)
{
  CustomerRequest *cr = (CustomerRequest *) req;

  return wa_store_find_or_create_customer(store, req->now, cr->wa_id, cr->bsuid, cr->name, cr->flags, &cr->change,
                                          error) &&
         wa_store_customer_change_finish(store, &cr->change, error);
}

static gboolean
run_set_name(WaStore *store, Request *req, GError **error)
{
  CustomerRequest *cr = (CustomerRequest *) req;

  cr->change.customer_id = g_strdup(cr->customer_id);
  return set_name(store, cr->customer_id, cr->name, &cr->change.name_changed, error) &&
         wa_store_customer_change_finish(store, &cr->change, error);
}

static gboolean
run_set_newest(WaStore *store, Request *req, GError **error)
{
  CustomerRequest *cr = (CustomerRequest *) req;

  cr->change.customer_id = g_strdup(cr->customer_id);
  return wa_store_raise_newest_inbound(store, cr->customer_id, cr->number, &cr->change.window_moved, error) &&
         wa_store_customer_change_finish(store, &cr->change, error);
}

static gboolean
run_set_bsuid(WaStore *store, Request *req, GError **error)
{
  CustomerRequest *cr = (CustomerRequest *) req;
  guint8 hash[WA_CRYPT_HASH_BYTES];
  g_autofree char *holder = NULL;
  g_autoptr(GError) local = NULL;

  wa_store_index(store, "bsuid", cr->bsuid, hash);
  holder = customer_by_hash(store, TRUE, hash, &local);
  if (local != NULL) {
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
  }
  cr->change.customer_id = g_strdup(cr->customer_id);
  if (holder != NULL && strcmp(holder, cr->customer_id) != 0)
    cr->change.conflict = TRUE; /* another customer has it: merging is the agent's call */
  else if (holder == NULL && !link_id(store, cr->customer_id, TRUE, TRUE, cr->bsuid, hash, &cr->change.linked, error))
    return FALSE;
  return wa_store_customer_change_finish(store, &cr->change, error);
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
  sqlite3_stmt *stmt =
    wa_store_sql(store, error, "SELECT " CUSTOMER_COLUMNS " FROM customers ORDER BY created, rowid", NULL);
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

/* Only what the service windows need: no key is unwrapped, nothing is
 * decrypted, so it stays quick with a hundred thousand customers. */
static gboolean
run_windows(WaStore *store, Request *req, GError **error)
{
  CustomerRequest *cr = (CustomerRequest *) req;
  sqlite3_stmt *stmt =
    wa_store_sql(store, error,
                 "SELECT id, newest_inbound FROM customers WHERE newest_inbound > 0 ORDER BY created, rowid", NULL);
  int rc;

  if (stmt == NULL)
    return FALSE;
  cr->list = g_ptr_array_new_with_free_func((GDestroyNotify) wa_store_customer_free);
  while ((rc = wa_store_sql_step(store, stmt, error)) == SQLITE_ROW) {
    WaStoreCustomer *customer = g_new0(WaStoreCustomer, 1);

    customer->id = wa_store_col_text(stmt, 0);
    customer->newest_inbound = sqlite3_column_int64(stmt, 1);
    g_ptr_array_add(cr->list, customer);
  }
  if (rc == 0)
    return FALSE;
  wa_store_sql_done(stmt);
  return TRUE;
}

static const RequestClass ensure_class = {
  .mode = MODE_WRITE,
  .needs_key = TRUE,
  .size = sizeof(CustomerRequest),
  .run = run_ensure,
  .answer = answer_customer_update,
  .finalize = finalize_customer,
};
static const RequestClass set_name_class = {
  .mode = MODE_WRITE,
  .needs_key = TRUE,
  .size = sizeof(CustomerRequest),
  .run = run_set_name,
  .answer = answer_customer_update,
  .finalize = finalize_customer,
};
static const RequestClass set_newest_class = {
  .mode = MODE_WRITE,
  .needs_key = TRUE,
  .size = sizeof(CustomerRequest),
  .run = run_set_newest,
  .answer = answer_customer_update,
  .finalize = finalize_customer,
};
static const RequestClass set_bsuid_class = {
  .mode = MODE_WRITE,
  .needs_key = TRUE,
  .size = sizeof(CustomerRequest),
  .run = run_set_bsuid,
  .answer = answer_customer_update,
  .finalize = finalize_customer,
};
static const RequestClass get_class = {
  .mode = MODE_READ,
  .needs_key = TRUE,
  .size = sizeof(CustomerRequest),
  .run = run_get,
  .answer = answer_customer,
  .finalize = finalize_customer,
};
static const RequestClass lookup_class = {
  .mode = MODE_READ,
  .needs_key = TRUE,
  .size = sizeof(CustomerRequest),
  .run = run_lookup,
  .answer = answer_customer,
  .finalize = finalize_customer,
};
static const RequestClass list_class = {
  .mode = MODE_READ,
  .needs_key = TRUE,
  .size = sizeof(CustomerRequest),
  .run = run_list,
  .answer = answer_customers,
  .finalize = finalize_customer,
};
static const RequestClass windows_class = {
  .mode = MODE_READ,
  .needs_key = TRUE,
  .size = sizeof(CustomerRequest),
  .run = run_windows,
  .answer = answer_customers,
  .finalize = finalize_customer,
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
wa_store_customer_set_name(WaStore *store, const char *customer_id, const char *name, WaStoreCustomerUpdateFunc done,
                           gpointer data)
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
wa_store_customer_set_bsuid(WaStore *store, const char *customer_id, const char *bsuid, WaStoreCustomerUpdateFunc done,
                            gpointer data)
{
  CustomerRequest *cr;

  g_return_if_fail(store != NULL && customer_id != NULL && bsuid != NULL && *bsuid != '\0');
  cr = customer_request(store, &set_bsuid_class, STORE_CALLBACK(done), data, customer_id);
  cr->bsuid = g_strdup(bsuid);
  wa_store_request_push(store, cr);
}

void
wa_store_customer_get(WaStore *store, const char *customer_id, WaStoreCustomerFunc done, gpointer data)
{
  g_return_if_fail(store != NULL && customer_id != NULL);
  wa_store_request_push(store, customer_request(store, &get_class, STORE_CALLBACK(done), data, customer_id));
}

void
wa_store_customer_lookup(WaStore *store, const char *wa_id, const char *bsuid, WaStoreCustomerFunc done, gpointer data)
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

void
wa_store_customers_windows(WaStore *store, WaStoreCustomersFunc done, gpointer data)
{
  g_return_if_fail(store != NULL);
  wa_store_request_push(store, customer_request(store, &windows_class, STORE_CALLBACK(done), data, NULL));
}
