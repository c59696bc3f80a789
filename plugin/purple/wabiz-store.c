/* wabiz-store.c: the account's encrypted store (plugin/core wa-store) at
 * sign-on: opened, unlocked with the data key, and closed at sign-off.
 *
 * The data key is wrapped by a key-encryption key, in the mode the account
 * option "store_protection" names: a key file (wabiz/keys/<pnid>.store-key,
 * 0600; the default, handled here) or a passphrase (wabiz-passphrase.c); and
 * always by a recovery code shown once when the store is created. When the
 * option and the stored header disagree, the header is re-wrapped to the
 * option's mode at sign-on. A missing or wrong key file never overwrites
 * anything: the account stays offline with a clear error. Key rotation
 * ("Rotate store key...", wabiz_store_rotate_key) replaces the data key,
 * the customer keys and the recovery code, slice by slice on the store's
 * worker, and resumes at sign-on after an interruption.
 * Must not: log key material, passphrases or the recovery code, or block the
 * main loop (the store works on its own thread, Argon2id on another). */
#include "wabiz.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

static void
store_failed(WabizAccount *wa, const char *what, const GError *error)
{
  g_autofree char *text = g_strdup_printf("%s: %s", what, error->message);

  purple_connection_error_reason(wa->gc, PURPLE_CONNECTION_ERROR_OTHER_ERROR, text);
}

gboolean
wabiz_store_wants_passphrase(WabizAccount *wa)
{
  const char *mode = purple_account_get_string(wa->account, WABIZ_OPT_STORE_PROTECTION, WABIZ_STORE_KEYFILE);

  return g_strcmp0(mode, WABIZ_STORE_PASSPHRASE) == 0;
}

/* ---- the key file ---------------------------------------------------------- */

char *
wabiz_store_keyfile_path(WabizAccount *wa, GError **error)
{
  g_autofree char *keys_dir = wabiz_data_dir("keys", error);
  g_autofree char *key_name = NULL;

  if (keys_dir == NULL)
    return NULL;
  key_name = g_strconcat(wa->pnid, ".store-key", NULL);
  return g_build_filename(keys_dir, key_name, NULL);
}

/* Overwrites the key file (a few bytes: no journalling file system keeps a
 * copy of them elsewhere for long), flushes, and unlinks it. */
static gboolean
keyfile_destroy(const char *path, GError **error)
{
  guint8 zeros[64] = {0};
  struct stat st;
  off_t left;
  int fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);

  if (fd < 0) {
    if (errno == ENOENT)
      return TRUE;
    goto failed;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
    goto failed_fd;
  for (left = st.st_size; left > 0;) {
    ssize_t n = write(fd, zeros, (size_t) MIN(left, (off_t) sizeof zeros));

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      goto failed_fd;
    left -= n;
  }
  if (fsync(fd) != 0)
    goto failed_fd;
  close(fd);
  if (g_unlink(path) != 0)
    goto failed;
  return TRUE;

failed_fd : {
  int err = errno;

  close(fd);
  errno = err;
}
failed:
  g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), _("Cannot delete the key file %s: %s"), path,
              g_strerror(errno));
  return FALSE;
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

/* ---- unlocking ------------------------------------------------------------- */

static void rotate_slice(WabizAccount *wa, gboolean resumed, guint tenths);

typedef struct {
  WabizAccount *wa;
  WaKey *data_key;  /* kept for the cache */
  char *new_header; /* the header stored with the unlock, or NULL */
  WabizUnlockFlags flags;
  char *notice; /* told once the store took it, or NULL */
} Unlocking;

static void
unlocking_free(Unlocking *u)
{
  wa_key_free(u->data_key);
  g_free(u->new_header);
  g_free(u->notice);
  g_free(u);
}

static void
unlocked_cb(const GError *error, gpointer data)
{
  Unlocking *u = data;
  WabizAccount *wa = u->wa;

  wabiz_store_release(wa, u);
  if (error != NULL && (u->flags & WABIZ_UNLOCK_FROM_CACHE) &&
      g_error_matches(error, WA_STORE_ERROR, WA_STORE_ERROR_WRONG_KEY)) {
    /* the store was replaced (a backup restored?) since this process
     * unlocked it: ask for its passphrase instead */
    wabiz_passphrase_forget(wa->pnid);
    unlocking_free(u);
    wabiz_passphrase_unlock(wa);
    return;
  }
  if (error != NULL) {
    store_failed(wa, _("The account's data could not be unlocked (nothing was changed)"), error);
    unlocking_free(u);
    return;
  }
  if (u->new_header != NULL) {
    g_free(wa->store_header);
    wa->store_header = g_steal_pointer(&u->new_header);
  }
  if (u->flags & WABIZ_UNLOCK_REMEMBER_KEY)
    wabiz_passphrase_remember(wa->pnid, u->data_key);
  if (u->flags & WABIZ_UNLOCK_FORGET_KEY)
    wabiz_passphrase_forget(wa->pnid);
  if (u->notice != NULL)
    wabiz_notice(wa, u->notice);
  if (u->flags & WABIZ_UNLOCK_REMOVE_KEYFILE) {
    g_autoptr(GError) local = NULL;
    g_autofree char *path = wabiz_store_keyfile_path(wa, &local);

    g_autofree char *text = NULL;

    if (path != NULL && keyfile_destroy(path, &local))
      text = g_strdup_printf(_("The key file %s is no longer needed: it was overwritten and deleted."), path);
    else
      text = g_strdup_printf(_("The key file is no longer needed but could not be deleted: %s. Delete it "
                               "yourself."),
                             local->message);
    wabiz_notice(wa, text);
  }
  unlocking_free(u);
  /* a rotation a crash or sign-off interrupted goes on */
  rotate_slice(wa, TRUE, 0);
  /* at sign-on, then daily */
  retention_run(wa);
  wa->retention_timer = purple_timeout_add_seconds(24 * 3600, retention_run, wa);
  wa->store_ready(wa);
}

void
wabiz_store_unlock(WabizAccount *wa, const WaKey *data_key, const char *new_header_json, WabizUnlockFlags flags,
                   const char *notice)
{
  Unlocking *u = g_new0(Unlocking, 1);

  u->wa = wa;
  u->data_key = wa_key_copy(data_key);
  u->new_header = g_strdup(new_header_json);
  u->flags = flags;
  u->notice = g_strdup(notice);
  /* the progress line "Opening the encrypted message store" was shown by
   * the sign-in (wabiz-login.c) or after the passphrase (wabiz-passphrase.c) */
  wa_store_unlock(wa->store, data_key, new_header_json, unlocked_cb,
                  wabiz_store_hold(wa, u, (GDestroyNotify) unlocking_free));
}

/* The recovery code in a notification; @rotated: a new one after a key rotation. */
static void
show_code(WabizAccount *wa, const char *code, WaKeyMode mode, gboolean rotated)
{
  g_autofree char *escaped = g_markup_escape_text(code, -1);
  char *text;

  if (rotated)
    text = g_strdup_printf(
      _("This account's stored messages are now encrypted under a new key. This is the new recovery code; the "
        "old one no longer works:<br><br><b><tt>%s</tt></b><br><br>Write it down and keep it somewhere safe, "
        "apart from the passphrase or key file, and destroy the old one. It is shown only now."),
      escaped);
  else if (mode == WA_KEY_MODE_PASSPHRASE)
    text = g_strdup_printf(
      _("This account's messages are stored encrypted with your passphrase. If you forget the passphrase, "
        "this recovery code is the only way back to the data:<br><br><b><tt>%s</tt></b><br><br>Write it down "
        "and keep it somewhere safe, apart from the passphrase. It is shown only now. Without the passphrase "
        "and without this code the stored messages are lost for good."),
      escaped);
  else
    text =
      g_strdup_printf(_("This account's messages are stored encrypted. The key is in a key file under your purple "
                        "directory; if it is lost, this recovery code is the only way back to the data:<br><br>"
                        "<b><tt>%s</tt></b><br><br>Write it down and keep it somewhere safe. It is shown only now."),
                      escaped);
  if (wabiz_bitlbee()) {
    /* BitlBee has no formatted notifications: a line of the "wabiz" contact,
     * with a word on the logs IRC clients keep */
    char *plain = purple_markup_strip_html(text);
    char *line = g_strdup_printf(_("%s\nMind your logs: IRC clients (and BitlBee, if it logs) may keep this line. "
                                   "Delete it from them once the code is written down."),
                                 plain);

    wabiz_conv_write_plain(wabiz_conv_im(wa->account, wabiz_notices_name(), TRUE), line, PURPLE_MESSAGE_SYSTEM, 0);
    sodium_memzero(plain, strlen(plain));
    sodium_memzero(line, strlen(line));
    g_free(plain);
    g_free(line);
  } else {
    purple_notify_formatted(wa->gc, _("WhatsApp Business: recovery code"), _("Keep this recovery code"), NULL, text,
                            NULL, NULL);
  }
  sodium_memzero(escaped, strlen(escaped));
  sodium_memzero(text, strlen(text));
  g_free(text);
}

void
wabiz_store_show_recovery_code(WabizAccount *wa, const char *code, WaKeyMode mode)
{
  show_code(wa, code, mode, FALSE);
}

/* ---- key rotation ------------------------------------------------------------
 *
 * The store does the work on its worker thread, a slice (one transaction of
 * whole customers) per request; the next slice is asked for when the last
 * one committed, so the main loop and other store requests run in between.
 * An interrupted rotation resumes at the next sign-on (the store knows one
 * is under way). */

#define ROTATE_SLICE_ROWS 500

static guint
rotate_slice_rows(void)
{
  const char *text = wabiz_test_env("WABIZ_TEST_ROTATE_SLICE");
  guint64 rows = 0;

  if (text != NULL && g_ascii_string_to_unsigned(text, 10, 1, G_MAXUINT, &rows, NULL))
    return (guint) rows;
  return ROTATE_SLICE_ROWS;
}

typedef struct {
  WabizAccount *wa;
  gboolean resumed; /* at sign-on: not yet known whether one is under way */
  guint tenths;     /* progress told so far */
} RotateSlice;

static void
rotate_slice_cb(const WaStoreRotateProgress *progress, const GError *error, gpointer data)
{
  RotateSlice *slice = data;
  WabizAccount *wa = slice->wa;
  gboolean resumed = slice->resumed;
  guint tenths = slice->tenths;

  wabiz_store_release(wa, slice);
  g_free(slice);
  if (error != NULL) {
    g_autofree char *text = g_strdup_printf(
      _("Re-encrypting the stored messages under the new key stopped (%s). Everything stays readable; it goes "
        "on at the next sign-on."),
      error->message);

    wabiz_notice(wa, text);
    return;
  }
  if (!progress->active)
    return;
  if (progress->finished) {
    if (progress->recovery_code != NULL)
      show_code(wa, progress->recovery_code, WA_KEY_MODE_PASSPHRASE, TRUE);
    wabiz_notice(wa, _("The store key was rotated: every stored message is encrypted under the new key, and only "
                       "the new recovery code works."));
    return;
  }
  if (resumed)
    wabiz_notice(wa, _("An interrupted rotation of the store key goes on: the stored messages are being encrypted "
                       "under the new key."));
  if (progress->total > 0 && progress->done * 10 / progress->total > tenths) {
    g_autofree char *text = NULL;

    tenths = (guint) (progress->done * 10 / progress->total);
    text = g_strdup_printf(_("Rotating the store key: %u%% done."), tenths * 10);
    wabiz_notice(wa, text);
  }
  wabiz_test_crash_point("rotate-slice");
  rotate_slice(wa, FALSE, tenths);
}

static void
rotate_slice(WabizAccount *wa, gboolean resumed, guint tenths)
{
  RotateSlice *slice = g_new0(RotateSlice, 1);

  slice->wa = wa;
  slice->resumed = resumed;
  slice->tenths = tenths;
  wa_store_rotate_step(wa->store, rotate_slice_rows(), rotate_slice_cb, wabiz_store_hold(wa, slice, g_free));
}

typedef struct {
  WabizAccount *wa;
  WaKey *new_key;
  char *header;
} RotateStart;

static void
rotate_start_free(RotateStart *start)
{
  wa_key_free(start->new_key);
  g_free(start->header);
  g_free(start);
}

static void
rotate_begun_cb(const GError *error, gpointer data)
{
  RotateStart *start = data;
  WabizAccount *wa = start->wa;

  wabiz_store_release(wa, start);
  if (error != NULL) {
    g_autofree char *text =
      g_strdup_printf(_("The store key was not rotated (nothing was changed): %s"), error->message);

    wabiz_notice(wa, text);
    rotate_start_free(start);
    return;
  }
  g_free(wa->store_header);
  wa->store_header = g_steal_pointer(&start->header);
  /* a reconnect in this process unlocks with the key that now fits */
  if (wabiz_passphrase_cached(wa->pnid) != NULL)
    wabiz_passphrase_remember(wa->pnid, start->new_key);
  rotate_start_free(start);
  wabiz_notice(wa, _("Rotating the store key: the stored messages are being encrypted under a new key. The old "
                     "recovery code no longer works; the new one is shown when this is done."));
  rotate_slice(wa, FALSE, 0);
}

void
wabiz_store_rotate_begin(WabizAccount *wa, const WaKey *data_key, const WaKey *new_key, const char *header_json,
                         const char *recovery_code)
{
  RotateStart *start = g_new0(RotateStart, 1);

  start->wa = wa;
  start->new_key = wa_key_copy(new_key);
  start->header = g_strdup(header_json);
  wa_store_rotate_begin(wa->store, data_key, new_key, header_json, recovery_code, rotate_begun_cb,
                        wabiz_store_hold(wa, start, (GDestroyNotify) rotate_start_free));
}

void
wabiz_store_rotate_key(WabizAccount *wa, const char *passphrase)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaKeyHeader) header = NULL;
  g_autoptr(WaKey) file_key = NULL;
  g_autoptr(WaKey) old_key = NULL;
  g_autoptr(WaKey) new_key = NULL;
  g_autoptr(WaKeyHeader) rotated = NULL;
  g_autofree char *path = NULL;
  g_autofree char *json = NULL;
  char *code = NULL;

  if (wa->store == NULL || wa->store_header == NULL) {
    wabiz_notice(wa, _("The store key can be rotated only while the account is signed in."));
    return;
  }
  header = wa_key_header_from_json(wa->store_header, &error);
  if (header != NULL && wa_key_header_mode(header) == WA_KEY_MODE_PASSPHRASE) {
    wabiz_passphrase_rotate(wa, passphrase); /* Argon2id off the main loop */
    return;
  }
  if (header != NULL)
    path = wabiz_store_keyfile_path(wa, &error);
  if (path != NULL && !g_file_test(path, G_FILE_TEST_EXISTS))
    /* never a new key file here: it would not open the store */
    g_set_error(&error, G_FILE_ERROR, G_FILE_ERROR_NOENT, _("the key file %s is missing"), path);
  else if (path != NULL)
    file_key = wa_keyfile_load_or_create(path, &error);
  if (file_key != NULL)
    rotated = wa_key_header_rotate_keyfile(header, file_key, &old_key, &new_key, &code, &error);
  if (rotated == NULL) {
    g_autofree char *text =
      g_strdup_printf(_("The store key was not rotated (nothing was changed): %s"), error->message);

    wabiz_notice(wa, text);
    return;
  }
  json = wa_key_header_to_json(rotated);
  wabiz_store_rotate_begin(wa, old_key, new_key, json, code);
  sodium_memzero(code, strlen(code));
  g_free(code);
}

static void
rotate_confirmed_cb(WabizAccount *wa, int choice)
{
  wabiz_store_rotate_key(wa, NULL);
}

/* The account action: the passphrase (passphrase mode) or a confirmation
 * (key-file mode), then wabiz_store_rotate_key(). */
void
wabiz_store_rotate_action(PurplePluginAction *action)
{
  PurpleConnection *gc = action->context;
  WabizAccount *wa = gc != NULL ? purple_connection_get_protocol_data(gc) : NULL;
  g_autoptr(WaKeyHeader) header = NULL;

  if (wa != NULL && PURPLE_CONNECTION_IS_CONNECTED(gc) && wa->store != NULL)
    header = wa_key_header_from_json(wa->store_header, NULL);
  if (header == NULL) {
    purple_notify_error(gc, _("WhatsApp Business: rotate the store key"), _("The store key cannot be rotated now"),
                        _("Only a signed-in account's store key can be rotated."));
    return;
  }
  if (wa_key_header_mode(header) == WA_KEY_MODE_PASSPHRASE) {
    wabiz_passphrase_ask_rotate(wa);
    return;
  }
  purple_request_action(gc, _("WhatsApp Business: rotate the store key"),
                        _("Encrypt this account's stored messages under a new key?"),
                        _("Every stored message is encrypted again under a new key, in the background; the key file "
                          "stays the same. A new recovery code is shown at the end and the old one stops working at "
                          "once."),
                        1, wa->account, NULL, NULL, wa, 2, wabiz_caption_yes(_("OK")), G_CALLBACK(rotate_confirmed_cb),
                        wabiz_caption_no(), NULL);
}

/* ---- key-file mode ---------------------------------------------------------- */

/* A new store, or an existing one in key-file mode (@header). */
static void
open_with_keyfile(WabizAccount *wa, WaKeyHeader *header)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(WaKey) file_key = NULL;
  g_autoptr(WaKey) data_key = NULL;
  g_autoptr(WaKeyHeader) created = NULL;
  g_autofree char *new_json = NULL;
  g_autofree char *key_path = wabiz_store_keyfile_path(wa, &local);

  if (key_path == NULL) {
    store_failed(wa, _("The account's data store could not be opened"), local);
    return;
  }
  if (header != NULL && !g_file_test(key_path, G_FILE_TEST_EXISTS)) {
    g_autofree char *text = g_strdup_printf(
      _("The key file %s that unlocks this account's stored messages is missing. Restore it from a backup; "
        "nothing was changed."),
      key_path);

    purple_connection_error_reason(wa->gc, PURPLE_CONNECTION_ERROR_OTHER_ERROR, text);
    return;
  }
  file_key = wa_keyfile_load_or_create(key_path, &local);
  if (file_key == NULL) {
    store_failed(wa, _("The key file could not be used"), local);
    return;
  }
  if (header == NULL) {
    g_autofree char *code = NULL;

    created = wa_key_header_create_keyfile(file_key, &data_key, &code, &local);
    if (created == NULL) {
      store_failed(wa, _("The account's data store could not be created"), local);
      return;
    }
    new_json = wa_key_header_to_json(created);
    wabiz_store_show_recovery_code(wa, code, WA_KEY_MODE_KEYFILE);
    sodium_memzero(code, strlen(code));
    wabiz_store_unlock(wa, data_key, new_json, 0, NULL);
    return;
  }
  data_key = wa_key_header_unlock_keyfile(header, file_key, &local);
  if (data_key == NULL) {
    store_failed(wa, _("The account's data could not be unlocked (nothing was changed)"), local);
    return;
  }
  if (wabiz_store_wants_passphrase(wa))
    wabiz_passphrase_adopt(wa, data_key); /* switches to a passphrase */
  else
    wabiz_store_unlock(wa, data_key, NULL, 0, NULL);
}

static void
opened_cb(const char *header_json, const GError *error, gpointer data)
{
  WabizAccount *wa = data;
  g_autoptr(GError) local = NULL;
  g_autoptr(WaKeyHeader) header = NULL;

  if (error != NULL) {
    store_failed(wa, _("The account's data store could not be opened"), error);
    return;
  }
  g_free(wa->store_header);
  wa->store_header = g_strdup(header_json);
  if (header_json == NULL) {
    if (wabiz_store_wants_passphrase(wa))
      wabiz_passphrase_create(wa);
    else
      open_with_keyfile(wa, NULL);
    return;
  }
  header = wa_key_header_from_json(header_json, &local);
  if (header == NULL) {
    store_failed(wa, _("The account's data could not be unlocked (nothing was changed)"), local);
    return;
  }
  if (wa_key_header_mode(header) == WA_KEY_MODE_PASSPHRASE)
    wabiz_passphrase_unlock(wa); /* and to a key file, when the option says so */
  else
    open_with_keyfile(wa, header);
}

void
wabiz_store_open(WabizAccount *wa, void (*ready)(WabizAccount *wa))
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = wabiz_data_dir("store", &error);
  g_autofree char *name = NULL;
  g_autofree char *path = NULL;
  WaStoreOptions options = {0};

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
  g_clear_pointer(&wa->store_header, g_free);
  wabiz_inbound_forget_orphans(wa);
  if (wa->store_pending == NULL)
    return;
  g_hash_table_iter_init(&iter, wa->store_pending);
  while (g_hash_table_iter_next(&iter, &data, &free_func))
    ((GDestroyNotify) free_func)(data);
  g_clear_pointer(&wa->store_pending, g_hash_table_destroy);
}

void
wabiz_store_ensure_address(WabizAccount *wa, const char *to, WaStoreCustomerUpdateFunc done, gpointer data)
{
  /* a group is kept as a record addressed "group:<id>" (its outbox entries
   * need one), like a BSUID */
  gboolean bsuid = wa_id_is_bsuid(to) || wa_group_address_id(to) != NULL;

  wa_store_customer_ensure(wa->store, bsuid ? NULL : to, bsuid ? to : NULL, NULL, WA_STORE_ENSURE_DEFAULT, done, data);
}
