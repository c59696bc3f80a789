/* wa-store-settings.c: the store's settings: account-wide ones and each
 * customer's, set, read one by one or all at once (also for the ledger's
 * export).
 *
 * Every run_* function runs on the worker inside the transaction (or read)
 * that wa-store.c opened for it; answer_* functions run on the loop thread.
 * Account-wide settings are sealed with the store key, associated data row
 * id = name; a customer's with that customer's key, row id
 * "<customer id>/<name>", so erasing the customer takes them along.
 *
 * Must not: log values, keep decrypted values beyond the request
 * (they are wiped when the request is freed), or touch a connection or key
 * outside the worker. */
#include "wa-store-private.h"

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
  .mode = MODE_WRITE,
  .needs_key = TRUE,
  .size = sizeof(SettingRequest),
  .run = run_setting_set,
  .answer = wa_store_answer_done,
  .finalize = finalize_setting,
};
static const RequestClass setting_get_class = {
  .mode = MODE_READ,
  .needs_key = TRUE,
  .size = sizeof(SettingRequest),
  .run = run_setting_get,
  .answer = answer_setting,
  .finalize = finalize_setting,
};
static const RequestClass settings_all_class = {
  .mode = MODE_READ,
  .needs_key = TRUE,
  .size = sizeof(SettingRequest),
  .run = run_settings_all,
  .answer = answer_settings,
  .finalize = finalize_setting,
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
wa_store_setting_set(WaStore *store, const char *customer_id, const char *name, const char *value, WaStoreDoneFunc done,
                     gpointer data)
{
  SettingRequest *sr;

  g_return_if_fail(store != NULL && name != NULL);
  sr = setting_request(store, &setting_set_class, STORE_CALLBACK(done), data, customer_id, name);
  sr->value = g_strdup(value);
  wa_store_request_push(store, sr);
}

void
wa_store_setting_get(WaStore *store, const char *customer_id, const char *name, WaStoreStringFunc done, gpointer data)
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
