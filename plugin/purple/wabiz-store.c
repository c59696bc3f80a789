/* wabiz-store.c: the account's encrypted store (plugin/core wa-store) at
 * sign-on: opened, unlocked with the data key, and closed at sign-off.
 *
 * The data key is wrapped by a key file (wabiz/keys/<pnid>.store-key, 0600)
 * and by a recovery code shown once when the store is created. A passphrase
 * instead of the key file is the next step. A missing or wrong key file never
 * overwrites anything: the account stays offline with a clear error.
 * Must not: log key material or the recovery code, or block the main loop
 * (the store works on its own thread). */
#include "wabiz.h"

static void
store_failed(WabizAccount *wa, const char *what, const GError *error)
{
  g_autofree char *text = g_strdup_printf("%s: %s", what, error->message);

  purple_connection_error_reason(wa->gc, PURPLE_CONNECTION_ERROR_OTHER_ERROR, text);
}

/* ---- retention: bodies older than the account's setting are deleted ------ */

static void
retention_cb(guint count, const GError *error, gpointer data)
{
  WabizAccount *wa = data;

  if (error != NULL) {
    g_autofree char *text = g_strdup_printf(_("Old messages could not be deleted: %s"), error->message);

    wabiz_notice(wa, text);
  } else if (count > 0) {
    purple_debug_info("wabiz", "retention: %u message bodies deleted\n", count);
  }
}

static gboolean
retention_run(gpointer data)
{
  WabizAccount *wa = data;
  int days = purple_account_get_int(wa->account, WABIZ_OPT_RETENTION_DAYS, 0);

  if (days > 0 && wa->store != NULL)
    wa_store_apply_retention(wa->store, (gint64) days * 24 * 3600, retention_cb, wa);
  return G_SOURCE_CONTINUE;
}

static void
unlocked_cb(const GError *error, gpointer data)
{
  WabizAccount *wa = data;

  if (error != NULL) {
    store_failed(wa, _("The account's data could not be unlocked"), error);
    return;
  }
  /* at sign-on, then daily */
  retention_run(wa);
  wa->retention_timer = purple_timeout_add_seconds(24 * 3600, retention_run, wa);
  wa->store_ready(wa);
}

static void
show_recovery_code(WabizAccount *wa, const char *code)
{
  g_autofree char *escaped = g_markup_escape_text(code, -1);
  g_autofree char *text = g_strdup_printf(
    _("This account's messages are stored encrypted. The key is in a key file under your purple "
      "directory; if it is lost, this recovery code is the only way back to the data:<br><br>"
      "<b><tt>%s</tt></b><br><br>Write it down and keep it somewhere safe. It is shown only now."),
    escaped);

  purple_notify_formatted(wa->gc, _("WhatsApp Business: recovery code"), _("Keep this recovery code"), NULL, text,
                          NULL, NULL);
}

static void
opened_cb(const char *header_json, const GError *error, gpointer data)
{
  WabizAccount *wa = data;
  g_autoptr(GError) local = NULL;
  g_autoptr(WaKey) file_key = NULL;
  g_autoptr(WaKey) data_key = NULL;
  g_autoptr(WaKeyHeader) header = NULL;
  g_autofree char *new_json = NULL;
  g_autofree char *keys_dir = NULL;
  g_autofree char *key_name = NULL;
  g_autofree char *key_path = NULL;

  if (error != NULL) {
    store_failed(wa, _("The account's data store could not be opened"), error);
    return;
  }
  keys_dir = wabiz_data_dir("keys", &local);
  if (keys_dir == NULL) {
    store_failed(wa, _("The account's data store could not be opened"), local);
    return;
  }
  key_name = g_strconcat(wa->pnid, ".store-key", NULL);
  key_path = g_build_filename(keys_dir, key_name, NULL);
  if (header_json != NULL && !g_file_test(key_path, G_FILE_TEST_EXISTS)) {
    g_autofree char *text = g_strdup_printf(
      _("The key file %s that unlocks this account's stored messages is missing. Restore it from a backup; "
        "nothing was changed."), key_path);

    purple_connection_error_reason(wa->gc, PURPLE_CONNECTION_ERROR_OTHER_ERROR, text);
    return;
  }
  file_key = wa_keyfile_load_or_create(key_path, &local);
  if (file_key == NULL) {
    store_failed(wa, _("The key file could not be used"), local);
    return;
  }
  if (header_json == NULL) {
    g_autofree char *code = NULL;

    header = wa_key_header_create_keyfile(file_key, &data_key, &code, &local);
    if (header == NULL) {
      store_failed(wa, _("The account's data store could not be created"), local);
      return;
    }
    new_json = wa_key_header_to_json(header);
    show_recovery_code(wa, code);
    sodium_memzero(code, strlen(code));
  } else {
    header = wa_key_header_from_json(header_json, &local);
    if (header != NULL && wa_key_header_mode(header) != WA_KEY_MODE_KEYFILE)
      g_set_error_literal(&local, WA_CRYPT_ERROR, WA_CRYPT_ERROR_FORMAT,
                          _("this account's data is protected by a passphrase, which this version cannot ask for"));
    else if (header != NULL)
      data_key = wa_key_header_unlock_keyfile(header, file_key, &local);
    if (data_key == NULL) {
      store_failed(wa, _("The account's data could not be unlocked (nothing was changed)"), local);
      return;
    }
  }
  wa_store_unlock(wa->store, data_key, new_json, unlocked_cb, wa);
}

void
wabiz_store_open(WabizAccount *wa, void (*ready)(WabizAccount *wa))
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = wabiz_data_dir("store", &error);
  g_autofree char *name = NULL;
  g_autofree char *path = NULL;
  WaStoreOptions options = { 0 };

  if (dir == NULL) {
    store_failed(wa, _("The account's data store could not be opened"), error);
    return;
  }
  name = g_strconcat(wa->pnid, ".db", NULL);
  path = g_build_filename(dir, name, NULL);
  wa->store_ready = ready;
  wa->store = wa_store_open(wabiz_loop(), path, &options, opened_cb, wa);
}

gpointer
wabiz_store_hold(WabizAccount *wa, gpointer data, GDestroyNotify free_func)
{
  if (wa->store_pending == NULL)
    wa->store_pending = g_hash_table_new(NULL, NULL);
  g_hash_table_insert(wa->store_pending, data, (gpointer) free_func);
  return data;
}

void
wabiz_store_release(WabizAccount *wa, gpointer data)
{
  if (wa->store_pending != NULL)
    g_hash_table_remove(wa->store_pending, data);
}

void
wabiz_store_close(WabizAccount *wa)
{
  GHashTableIter iter;
  gpointer data, free_func;

  if (wa->retention_timer != 0) {
    purple_timeout_remove(wa->retention_timer);
    wa->retention_timer = 0;
  }
  /* runs what is queued (so nothing accepted is lost); no callback after */
  g_clear_pointer(&wa->store, wa_store_close);
  wabiz_inbound_forget_orphans(wa);
  if (wa->store_pending == NULL)
    return;
  g_hash_table_iter_init(&iter, wa->store_pending);
  while (g_hash_table_iter_next(&iter, &data, &free_func))
    ((GDestroyNotify) free_func)(data);
  g_clear_pointer(&wa->store_pending, g_hash_table_destroy);
}
