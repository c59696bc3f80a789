/* wabiz-passphrase.c: passphrase protection of the account's encrypted store
 * (account option "store_protection" = "passphrase").
 *
 * The agent chooses a passphrase, typed twice, when the store is created or
 * switched from a key file, and after unlocking with the recovery code; it is
 * asked for once per process: the data key it unlocks is kept per phone
 * number id (in sodium memory) until the plugin unloads, so signing off and
 * on, or a reconnect, does not ask again. "Change store passphrase..." (an
 * account action) re-wraps the key under a new one while signed in; "Rotate
 * store key..." asks for the current one, which wraps the new key. A wrong
 * passphrase keeps the account offline and changes nothing. When the option
 * says "keyfile" but the store is in passphrase mode, the passphrase unlocks
 * it once more and the key moves to a key file.
 * Argon2id (MODERATE limits; the minimum in the test build with
 * WABIZ_TEST_HOOKS=1 and WABIZ_TEST_KDF=minimum) runs through wa_work_run(), never on the main loop.
 * Must not: log a passphrase, key or recovery code or put one into an error,
 * keep a copy of a passphrase without wiping it, or touch the account from
 * the Argon2id thread. */
#include "wabiz.h"

#define PASSPHRASE_MIN_CHARS 8

/* ---- data keys unlocked in this process -------------------------------------- */

static GHashTable *unlocked_keys; /* phone number id -> WaKey* */

const WaKey *
wabiz_passphrase_cached(const char *pnid)
{
  return unlocked_keys != NULL ? g_hash_table_lookup(unlocked_keys, pnid) : NULL;
}

void
wabiz_passphrase_remember(const char *pnid, const WaKey *data_key)
{
  WaKey *copy = wa_key_copy(data_key);

  if (copy == NULL)
    return; /* no secure memory: asked again next time */
  if (unlocked_keys == NULL)
    unlocked_keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify) wa_key_free);
  g_hash_table_replace(unlocked_keys, g_strdup(pnid), copy);
}

void
wabiz_passphrase_forget(const char *pnid)
{
  if (unlocked_keys != NULL)
    g_hash_table_remove(unlocked_keys, pnid);
}

void
wabiz_passphrase_forget_all(void)
{
  g_clear_pointer(&unlocked_keys, g_hash_table_destroy);
}

static WaKdfLimits
kdf_limits(void)
{
  if (g_strcmp0(wabiz_test_env("WABIZ_TEST_KDF"), "minimum") == 0)
    return wa_kdf_limits_minimum();
  return wa_kdf_limits_moderate();
}

static void
secret_free(char *secret)
{
  if (secret == NULL)
    return;
  sodium_memzero(secret, strlen(secret));
  g_free(secret);
}

/* ---- one passphrase operation: dialogs, Argon2id, what follows --------------- */

typedef enum {
  PASS_CREATE,    /* a new store: a new passphrase */
  PASS_ADOPT,     /* a key-file store moves to a passphrase */
  PASS_UNLOCK,    /* a passphrase store: its passphrase, or the recovery code */
  PASS_RECOVERED, /* unlocked with the recovery code: a new passphrase */
  PASS_CHANGE,    /* signed in: Change store passphrase... */
  PASS_ROTATE,    /* signed in: Rotate store key... (the current passphrase) */
} PassPurpose;

typedef struct {
  WabizAccount *wa; /* NULL once the account signed off while Argon2id ran */
  PassPurpose purpose;
  char *header_json; /* the stored header (not secret); NULL for a new store */
  WaKey *data_key;   /* the unlocked key: given (ADOPT, RECOVERED, CHANGE) or found (CREATE, UNLOCK) */
  WaKdfLimits limits;
  char *passphrase;    /* Argon2id's input: wiped as soon as it is done */
  char *new_json;      /* Argon2id's header (CREATE and the re-wraps) */
  char *recovery_code; /* CREATE, ROTATE: wiped once shown / handed to the store */
  WaKey *new_key;      /* ROTATE: the new data key */
  char *first;         /* BitlBee: the new passphrase until it is typed again */
} Pass;

static Pass *
pass_new(WabizAccount *wa, PassPurpose purpose, const WaKey *data_key)
{
  Pass *p = g_new0(Pass, 1);

  p->wa = wa;
  p->purpose = purpose;
  p->header_json = g_strdup(wa->store_header);
  p->data_key = wa_key_copy(data_key);
  return p;
}

static void
pass_free(Pass *p)
{
  wa_key_free(p->data_key);
  wa_key_free(p->new_key);
  secret_free(p->passphrase);
  secret_free(p->recovery_code);
  secret_free(p->first);
  g_free(p->header_json);
  g_free(p->new_json);
  g_free(p);
}

/* While Argon2id runs, the account may sign off: the thread still has @p,
 * and kdf_done() frees it. */
static void
pass_detach(Pass *p)
{
  p->wa = NULL;
}

static void
fail(WabizAccount *wa, PurpleConnectionError reason, const char *text)
{
  purple_connection_error_reason(wa->gc, reason, text);
}

static void
waiting(Pass *p)
{
  if (p->purpose != PASS_CHANGE && p->purpose != PASS_ROTATE)
    purple_connection_update_progress(p->wa->gc, _("Waiting for the passphrase of the message store"), 1, 4);
}

/* The value of string field @id, copied; the dialog's own copy is wiped (it
 * is closed right after this callback, and the field owns that memory). */
static char *
take_field(PurpleRequestFields *fields, const char *id)
{
  PurpleRequestField *field = purple_request_fields_get_field(fields, id);
  const char *value = field != NULL ? purple_request_field_string_get_value(field) : NULL;
  char *copy = g_strdup(value != NULL ? value : "");

  if (value != NULL)
    sodium_memzero((char *) value, strlen(value));
  return copy;
}

static void
add_masked(PurpleRequestFieldGroup *group, const char *id, const char *label, gboolean required)
{
  PurpleRequestField *field = purple_request_field_string_new(id, label, NULL, FALSE);

  purple_request_field_string_set_masked(field, TRUE);
  purple_request_field_set_required(field, required);
  purple_request_field_group_add_field(group, field);
}

static gboolean
can_ask(WabizAccount *wa)
{
  PurpleRequestUiOps *ops = purple_request_get_ui_ops();

  if (ops != NULL && (ops->request_fields != NULL || (wabiz_bitlbee() && ops->request_input != NULL)))
    return TRUE;
  fail(wa, PURPLE_CONNECTION_ERROR_AUTHENTICATION_IMPOSSIBLE,
       _("This messenger cannot ask for the passphrase of the message store: set the account option "
         "Store protection to Key file, or use Pidgin or Finch."));
  return FALSE;
}

static void ask_new(Pass *p, const char *why);
static void new_chosen(Pass *p, char *passphrase, const char *again);
static void ask_unlock(Pass *p, const char *why);
static void run_kdf(Pass *p, char *passphrase);

/* ---- after the data key is known ------------------------------------------- */

/* The option says "keyfile": the key moves from the passphrase to a key file. */
static void
to_keyfile(WabizAccount *wa, const WaKey *data_key, WabizUnlockFlags flags)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaKey) file_key = NULL;
  g_autoptr(WaKeyHeader) header = NULL;
  g_autofree char *path = wabiz_store_keyfile_path(wa, &error);
  g_autofree char *json = NULL;
  g_autofree char *notice = NULL;

  if (path != NULL)
    file_key = wa_keyfile_load_or_create(path, &error);
  if (file_key != NULL)
    header = wa_key_header_from_json(wa->store_header, &error);
  if (header == NULL || !wa_key_header_rewrap_keyfile(header, data_key, file_key, &error)) {
    g_autofree char *text =
      g_strdup_printf(_("This account's stored messages could not be moved to a key file (nothing was changed): %s"),
                      error->message);

    fail(wa, PURPLE_CONNECTION_ERROR_OTHER_ERROR, text);
    return;
  }
  json = wa_key_header_to_json(header);
  notice = g_strdup_printf(_("This account's stored messages are now protected by the key file %s instead of a "
                             "passphrase (the account option Store protection is Key file). The recovery code "
                             "keeps working."),
                           path);
  wabiz_store_unlock(wa, data_key, json, flags | WABIZ_UNLOCK_FORGET_KEY, notice);
}

/* A passphrase store's data key, from the passphrase, the cache or the
 * recovery code. */
static void
with_key(WabizAccount *wa, const WaKey *data_key, gboolean recovered, WabizUnlockFlags flags)
{
  if (!wabiz_store_wants_passphrase(wa))
    to_keyfile(wa, data_key, flags);
  else if (!recovered)
    wabiz_store_unlock(wa, data_key, NULL, flags | WABIZ_UNLOCK_REMEMBER_KEY, NULL);
  else if (can_ask(wa))
    ask_new(pass_new(wa, PASS_RECOVERED, data_key), NULL);
}

static void
unlock_with_recovery(Pass *p, const char *code)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(WaKeyHeader) header = wa_key_header_from_json(p->header_json, &error);
  g_autoptr(WaKey) data_key = NULL;

  /* no Argon2id here: the recovery code is a key */
  if (header != NULL)
    data_key = wa_key_header_unlock_recovery(header, code, &error);
  if (data_key == NULL) {
    g_autofree char *text =
      g_strdup_printf(_("The recovery code was not accepted (%s); nothing was changed."), error->message);

    fail(p->wa, PURPLE_CONNECTION_ERROR_AUTHENTICATION_FAILED, text);
    return;
  }
  with_key(p->wa, data_key, TRUE, 0);
}

static void
changed_cb(const GError *error, gpointer data)
{
  Pass *p = data;
  WabizAccount *wa = p->wa;

  wabiz_store_release(wa, p);
  if (error != NULL) {
    g_autofree char *text =
      g_strdup_printf(_("The passphrase of the stored messages was not changed: %s"), error->message);

    wabiz_notice(wa, text);
  } else {
    g_free(wa->store_header);
    wa->store_header = g_steal_pointer(&p->new_json);
    wabiz_notice(wa, _("The passphrase of this account's stored messages was changed; the old one no longer "
                       "works. The recovery code stays the same."));
  }
  pass_free(p);
}

/* ---- Argon2id, off the main loop -------------------------------------------- */

/* On the work thread: reads and writes @p's crypto fields only. */
static gpointer
kdf_work(gpointer data, GError **error)
{
  Pass *p = data;
  g_autoptr(WaKeyHeader) header = NULL;

  switch (p->purpose) {
  case PASS_CREATE:
    header = wa_key_header_create_passphrase(p->passphrase, p->limits, &p->data_key, &p->recovery_code, error);
    break;
  case PASS_UNLOCK:
    header = wa_key_header_from_json(p->header_json, error);
    if (header != NULL)
      p->data_key = wa_key_header_unlock_passphrase(header, p->passphrase, error);
    return p->data_key != NULL ? p : NULL;
  case PASS_ROTATE: {
    g_autoptr(WaKeyHeader) rotated = NULL;

    header = wa_key_header_from_json(p->header_json, error);
    if (header != NULL)
      rotated =
        wa_key_header_rotate_passphrase(header, p->passphrase, &p->data_key, &p->new_key, &p->recovery_code, error);
    if (rotated == NULL)
      return NULL;
    p->new_json = wa_key_header_to_json(rotated);
    return p;
  }
  case PASS_ADOPT:
  case PASS_RECOVERED:
  case PASS_CHANGE:
  default:
    if (p->data_key == NULL) { /* its copy failed */
      g_set_error_literal(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_INIT, _("no secure memory for the key"));
      return NULL;
    }
    header = wa_key_header_from_json(p->header_json, error);
    if (header != NULL &&
        !wa_key_header_rewrap_passphrase_with_limits(header, p->data_key, p->passphrase, p->limits, error))
      g_clear_pointer(&header, wa_key_header_free);
    break;
  }
  if (header == NULL)
    return NULL;
  p->new_json = wa_key_header_to_json(header);
  return p;
}

static void
kdf_failed(Pass *p, const GError *error)
{
  g_autofree char *text = NULL;

  if (p->purpose == PASS_UNLOCK && g_error_matches(error, WA_CRYPT_ERROR, WA_CRYPT_ERROR_PASSPHRASE)) {
    fail(p->wa, PURPLE_CONNECTION_ERROR_AUTHENTICATION_FAILED,
         _("Wrong passphrase; nothing was changed. Sign in again to retry; if the passphrase is lost, "
           "enter the recovery code instead."));
    return;
  }
  if (p->purpose == PASS_ROTATE) {
    text = g_strdup_printf(_("The store key was not rotated (nothing was changed): %s"), error->message);
    wabiz_notice(p->wa, text);
    return;
  }
  text = g_strdup_printf(_("The passphrase could not be used: %s"), error->message);
  if (p->purpose == PASS_CHANGE)
    wabiz_notice(p->wa, text);
  else
    fail(p->wa, PURPLE_CONNECTION_ERROR_OTHER_ERROR, text);
}

static void
kdf_done(gpointer result, GError *error, gpointer data)
{
  Pass *p = data;
  WabizAccount *wa = p->wa;

  g_clear_pointer(&p->passphrase, secret_free);
  if (wa == NULL) {
    g_clear_error(&error);
    pass_free(p); /* signed off meanwhile */
    return;
  }
  wabiz_store_release(wa, p);
  if (error != NULL) {
    kdf_failed(p, error);
    g_error_free(error);
    pass_free(p);
    return;
  }
  switch (p->purpose) {
  case PASS_CREATE:
    wabiz_store_show_recovery_code(wa, p->recovery_code, WA_KEY_MODE_PASSPHRASE);
    g_clear_pointer(&p->recovery_code, secret_free);
    wabiz_store_unlock(wa, p->data_key, p->new_json, WABIZ_UNLOCK_REMEMBER_KEY, NULL);
    break;
  case PASS_UNLOCK:
    with_key(wa, p->data_key, FALSE, 0);
    break;
  case PASS_ADOPT:
    wabiz_store_unlock(wa, p->data_key, p->new_json, WABIZ_UNLOCK_REMEMBER_KEY | WABIZ_UNLOCK_REMOVE_KEYFILE,
                       _("This account's stored messages are now protected by your passphrase instead of a key "
                         "file (the account option Store protection is Passphrase). The recovery code keeps "
                         "working."));
    break;
  case PASS_RECOVERED:
    wabiz_store_unlock(wa, p->data_key, p->new_json, WABIZ_UNLOCK_REMEMBER_KEY,
                       _("A new passphrase protects this account's stored messages; the old one no longer works. "
                         "The recovery code stays the same."));
    break;
  case PASS_CHANGE:
    wa_store_replace_header(wa->store, p->data_key, p->new_json, changed_cb,
                            wabiz_store_hold(wa, p, (GDestroyNotify) pass_free));
    return;
  case PASS_ROTATE:
    wabiz_store_rotate_begin(wa, p->data_key, p->new_key, p->new_json, p->recovery_code);
    break;
  }
  pass_free(p);
}

/* Takes @passphrase (wiped when Argon2id is done). */
static void
run_kdf(Pass *p, char *passphrase)
{
  WabizAccount *wa = p->wa;

  p->passphrase = passphrase;
  p->limits = kdf_limits();
  if (p->purpose != PASS_CHANGE && p->purpose != PASS_ROTATE)
    purple_connection_update_progress(wa->gc, _("Opening the encrypted message store"), 1, 4);
  wa_work_run(wabiz_loop(), kdf_work, kdf_done, wabiz_store_hold(wa, p, (GDestroyNotify) pass_detach));
}

/* ---- asking for a new passphrase ------------------------------------------- */

static void
new_ok_cb(Pass *p, PurpleRequestFields *fields)
{
  char *passphrase = take_field(fields, "passphrase");
  char *again = take_field(fields, "again");

  wabiz_store_release(p->wa, p);
  new_chosen(p, passphrase, again);
  secret_free(again);
}

static void
new_cancelled(Pass *p)
{
  WabizAccount *wa = p->wa;

  wabiz_store_release(wa, p);
  switch (p->purpose) {
  case PASS_CREATE:
    fail(wa, PURPLE_CONNECTION_ERROR_AUTHENTICATION_FAILED,
         _("A passphrase is needed to create this account's encrypted message store (the account option Store "
           "protection is Passphrase). Nothing was stored. Sign in again to choose one, or set Store protection "
           "to Key file."));
    break;
  case PASS_ADOPT:
    fail(wa, PURPLE_CONNECTION_ERROR_AUTHENTICATION_FAILED,
         _("A passphrase is needed to protect this account's stored messages with a passphrase (the account "
           "option Store protection is Passphrase). Nothing was changed: the key file still protects them. Sign "
           "in again to choose one, or set Store protection back to Key file."));
    break;
  case PASS_RECOVERED:
    fail(wa, PURPLE_CONNECTION_ERROR_AUTHENTICATION_FAILED,
         _("A new passphrase is needed after unlocking with the recovery code. Nothing was changed; sign in "
           "again and enter the recovery code once more."));
    break;
  case PASS_UNLOCK:
  case PASS_CHANGE:
  case PASS_ROTATE:
  default:
    break; /* the old passphrase stays */
  }
  pass_free(p);
}

static void
new_cancel_cb(Pass *p, PurpleRequestFields *fields)
{
  secret_free(take_field(fields, "passphrase"));
  secret_free(take_field(fields, "again"));
  new_cancelled(p);
}

/* A new passphrase, checked: too short or not the same again asks again;
 * otherwise Argon2id runs. Takes @passphrase. */
static void
new_chosen(Pass *p, char *passphrase, const char *again)
{
  if (!g_utf8_validate(passphrase, -1, NULL) || g_utf8_strlen(passphrase, -1) < PASSPHRASE_MIN_CHARS) {
    ask_new(p, _("That passphrase is too short: use at least 8 characters."));
  } else if (strcmp(passphrase, again) != 0) {
    ask_new(p, _("The two passphrases were not the same."));
  } else {
    run_kdf(p, passphrase);
    return;
  }
  secret_free(passphrase);
}

/* ---- BitlBee: one value per question ------------------------------------------
 * BitlBee has no request fields: each value is asked with request_input (a
 * query from a contact of its own, answered by a message to it). It cannot
 * mask what is typed, and IRC clients keep logs: the questions say so. */

static const char *
bitlbee_warning(void)
{
  return _("Note: BitlBee shows what you type here, and IRC clients may log it. In BitlBee the Key file store "
           "protection (account wabiz set store_protection keyfile) is recommended.");
}

static void
ask_input(Pass *p, const char *primary, const char *secondary, GCallback ok_cb, GCallback cancel_cb)
{
  WabizAccount *wa = p->wa;
  g_autofree char *text = g_strdup_printf("%s %s", secondary, bitlbee_warning());

  waiting(p);
  purple_request_input(wa->gc, _("WhatsApp Business: message store passphrase"), primary, text, NULL, FALSE, TRUE, NULL,
                       _("OK"), ok_cb, _("Cancel"), cancel_cb, wa->account, NULL, NULL,
                       wabiz_store_hold(wa, p, (GDestroyNotify) pass_free));
}

static void
again_text_cb(Pass *p, const char *value)
{
  char *first = g_steal_pointer(&p->first);

  wabiz_store_release(p->wa, p);
  new_chosen(p, first, value != NULL ? value : "");
}

static void
new_text_cancel_cb(Pass *p, const char *value)
{
  new_cancelled(p);
}

static void
first_text_cb(Pass *p, const char *value)
{
  wabiz_store_release(p->wa, p);
  secret_free(p->first);
  p->first = g_strdup(value != NULL ? value : "");
  ask_input(p, _("Type the same passphrase again"), _("To be sure it is the one you meant."), G_CALLBACK(again_text_cb),
            G_CALLBACK(new_text_cancel_cb));
}

static void
unlock_text_cb(Pass *p, const char *value)
{
  g_autofree char *text = g_strstrip(g_strdup(value != NULL ? value : ""));

  wabiz_store_release(p->wa, p);
  if (*text == '\0') {
    ask_unlock(p, _("Enter the passphrase, or the recovery code if the passphrase is lost."));
  } else if (g_ascii_strncasecmp(text, "recovery ", 9) == 0) {
    unlock_with_recovery(p, g_strstrip(text + 9));
    pass_free(p);
  } else {
    run_kdf(p, g_strdup(value));
  }
  sodium_memzero(text, strlen(text));
}

static void
unlock_text_cancel_cb(Pass *p, const char *value)
{
  WabizAccount *wa = p->wa;

  wabiz_store_release(wa, p);
  pass_free(p);
  fail(wa, PURPLE_CONNECTION_ERROR_AUTHENTICATION_FAILED,
       _("A passphrase is needed to unlock this account's stored messages. Nothing was changed; sign in again "
         "to enter it."));
}

static void
ask_new(Pass *p, const char *why)
{
  WabizAccount *wa = p->wa;
  PurpleRequestFields *fields = purple_request_fields_new();
  PurpleRequestFieldGroup *group = purple_request_field_group_new(NULL);
  const char *primary = _("Choose a new passphrase for this account's stored messages");
  const char *secondary;
  g_autofree char *text = NULL;

  add_masked(group, "passphrase", _("Passphrase"), TRUE);
  add_masked(group, "again", _("The same passphrase again"), TRUE);
  purple_request_fields_add_group(fields, group);
  switch (p->purpose) {
  case PASS_CREATE:
    primary = _("Choose a passphrase for this account's stored messages");
    secondary = _("Messages are stored encrypted; this passphrase protects the key. It is asked for once each "
                  "time the messenger starts. Use at least 8 characters. A recovery code comes next: without "
                  "the passphrase and without that code the messages cannot be read by anyone, you included.");
    break;
  case PASS_ADOPT:
    primary = _("Choose a passphrase for this account's stored messages");
    secondary = _("The account option Store protection is now Passphrase: the passphrase will protect the stored "
                  "messages instead of the key file, which is then deleted. Use at least 8 characters. The "
                  "recovery code you have keeps working.");
    break;
  case PASS_RECOVERED:
    secondary = _("The recovery code unlocked the stored messages. Choose a new passphrase for them (at least 8 "
                  "characters); the recovery code stays the same.");
    break;
  case PASS_CHANGE:
  case PASS_UNLOCK:
  case PASS_ROTATE:
  default:
    secondary = _("The new passphrase replaces the old one, which then no longer works. Use at least 8 "
                  "characters. The recovery code stays the same.");
    break;
  }
  text = why != NULL ? g_strdup_printf("%s %s", why, secondary) : g_strdup(secondary);
  if (wabiz_bitlbee()) {
    purple_request_fields_destroy(fields);
    ask_input(p, primary, text, G_CALLBACK(first_text_cb), G_CALLBACK(new_text_cancel_cb));
    return;
  }
  waiting(p);
  purple_request_fields(wa->gc, _("WhatsApp Business: message store passphrase"), primary, text, fields, _("OK"),
                        G_CALLBACK(new_ok_cb), _("Cancel"), G_CALLBACK(new_cancel_cb), wa->account, NULL, NULL,
                        wabiz_store_hold(wa, p, (GDestroyNotify) pass_free));
}

/* ---- asking for the passphrase of a store ----------------------------------- */

static void
unlock_ok_cb(Pass *p, PurpleRequestFields *fields)
{
  char *passphrase = take_field(fields, "passphrase");
  char *code = take_field(fields, "recovery");

  wabiz_store_release(p->wa, p);
  if (*passphrase == '\0' && *code == '\0') {
    ask_unlock(p, _("Enter the passphrase, or the recovery code if the passphrase is lost."));
  } else if (*passphrase != '\0' && *code != '\0') {
    ask_unlock(p, _("Enter the passphrase or the recovery code, not both."));
  } else if (*passphrase != '\0') {
    run_kdf(p, passphrase);
    passphrase = NULL;
  } else {
    unlock_with_recovery(p, code);
    pass_free(p);
  }
  secret_free(passphrase);
  secret_free(code);
}

static void
unlock_cancel_cb(Pass *p, PurpleRequestFields *fields)
{
  WabizAccount *wa = p->wa;

  secret_free(take_field(fields, "passphrase"));
  secret_free(take_field(fields, "recovery"));
  wabiz_store_release(wa, p);
  pass_free(p);
  fail(wa, PURPLE_CONNECTION_ERROR_AUTHENTICATION_FAILED,
       _("A passphrase is needed to unlock this account's stored messages. Nothing was changed; sign in again "
         "to enter it."));
}

static void
ask_unlock(Pass *p, const char *why)
{
  WabizAccount *wa = p->wa;
  PurpleRequestFields *fields = purple_request_fields_new();
  PurpleRequestFieldGroup *group = purple_request_field_group_new(NULL);
  g_autoptr(GString) text = g_string_new(NULL);

  add_masked(group, "passphrase", _("Passphrase"), FALSE);
  add_masked(group, "recovery", _("Or the recovery code"), FALSE);
  purple_request_fields_add_group(fields, group);
  if (why != NULL)
    g_string_append_printf(text, "%s ", why);
  g_string_append(text, _("Lost it? Leave it empty and enter the recovery code shown when the store was created; "
                          "you then choose a new passphrase."));
  if (!wabiz_store_wants_passphrase(wa)) {
    g_string_append_c(text, ' ');
    g_string_append(text, _("The account option Store protection is Key file: once unlocked, the messages will "
                            "be protected by a key file instead."));
  }
  if (wabiz_bitlbee()) {
    purple_request_fields_destroy(fields);
    g_string_append_c(text, ' ');
    g_string_append(text, _("Here: type the passphrase, or \"recovery\" and the code."));
    ask_input(p, _("Enter the passphrase of this account's stored messages"), text->str, G_CALLBACK(unlock_text_cb),
              G_CALLBACK(unlock_text_cancel_cb));
    return;
  }
  waiting(p);
  purple_request_fields(wa->gc, _("WhatsApp Business: message store passphrase"),
                        _("Enter the passphrase of this account's stored messages"), text->str, fields, _("OK"),
                        G_CALLBACK(unlock_ok_cb), _("Cancel"), G_CALLBACK(unlock_cancel_cb), wa->account, NULL, NULL,
                        wabiz_store_hold(wa, p, (GDestroyNotify) pass_free));
}

/* ---- from wabiz-store.c and the account actions ---------------------------- */

void
wabiz_passphrase_create(WabizAccount *wa)
{
  if (can_ask(wa))
    ask_new(pass_new(wa, PASS_CREATE, NULL), NULL);
}

void
wabiz_passphrase_unlock(WabizAccount *wa)
{
  const WaKey *cached = wabiz_passphrase_cached(wa->pnid);

  if (cached != NULL)
    with_key(wa, cached, FALSE, WABIZ_UNLOCK_FROM_CACHE);
  else if (can_ask(wa))
    ask_unlock(pass_new(wa, PASS_UNLOCK, NULL), NULL);
}

void
wabiz_passphrase_adopt(WabizAccount *wa, const WaKey *data_key)
{
  if (can_ask(wa))
    ask_new(pass_new(wa, PASS_ADOPT, data_key), NULL);
}

gboolean
wabiz_passphrase_in_use(WabizAccount *wa)
{
  g_autoptr(WaKeyHeader) header = NULL;

  if (wa->store == NULL || wa->store_header == NULL || wabiz_passphrase_cached(wa->pnid) == NULL)
    return FALSE;
  header = wa_key_header_from_json(wa->store_header, NULL);
  return header != NULL && wa_key_header_mode(header) == WA_KEY_MODE_PASSPHRASE;
}

void
wabiz_passphrase_change_action(PurplePluginAction *action)
{
  PurpleConnection *gc = action->context;
  WabizAccount *wa = gc != NULL ? purple_connection_get_protocol_data(gc) : NULL;

  if (wa == NULL || !PURPLE_CONNECTION_IS_CONNECTED(gc) || !wabiz_passphrase_in_use(wa)) {
    purple_notify_error(gc, _("WhatsApp Business: message store passphrase"), _("There is no passphrase to change"),
                        _("Only a signed-in account whose stored messages are protected by a passphrase has one. "
                          "To use one, set the account option Store protection to Passphrase and sign in again."));
    return;
  }
  ask_new(pass_new(wa, PASS_CHANGE, wabiz_passphrase_cached(wa->pnid)), NULL);
}

/* ---- key rotation: the current passphrase ------------------------------------ */

void
wabiz_passphrase_rotate(WabizAccount *wa, const char *passphrase)
{
  Pass *p;

  if (passphrase == NULL || *passphrase == '\0') {
    wabiz_notice(wa, _("The store key was not rotated (nothing was changed): the passphrase is needed."));
    return;
  }
  p = pass_new(wa, PASS_ROTATE, NULL);
  run_kdf(p, g_strdup(passphrase));
}

static void
rotate_ok_cb(WabizAccount *wa, PurpleRequestFields *fields)
{
  char *passphrase = take_field(fields, "passphrase");

  wabiz_store_rotate_key(wa, passphrase);
  secret_free(passphrase);
}

static void
rotate_cancel_cb(WabizAccount *wa, PurpleRequestFields *fields)
{
  secret_free(take_field(fields, "passphrase"));
}

static void
rotate_text_cb(WabizAccount *wa, const char *value)
{
  wabiz_store_rotate_key(wa, value);
}

void
wabiz_passphrase_ask_rotate(WabizAccount *wa)
{
  PurpleRequestFields *fields;
  PurpleRequestFieldGroup *group;

  if (wabiz_bitlbee()) {
    g_autofree char *text = g_strdup_printf(
      "%s %s",
      _("Every stored message is encrypted again under a new key, in the background; the passphrase stays the "
        "same. A new recovery code is shown at the end and the old one stops working at once."),
      bitlbee_warning());

    purple_request_input(wa->gc, _("WhatsApp Business: rotate the store key"),
                         _("Enter the passphrase of this account's stored messages"), text, NULL, FALSE, TRUE, NULL,
                         _("OK"), G_CALLBACK(rotate_text_cb), _("Cancel"), NULL, wa->account, NULL, NULL, wa);
    return;
  }
  fields = purple_request_fields_new();
  group = purple_request_field_group_new(NULL);

  add_masked(group, "passphrase", _("Passphrase"), TRUE);
  purple_request_fields_add_group(fields, group);
  purple_request_fields(wa->gc, _("WhatsApp Business: rotate the store key"),
                        _("Enter the passphrase of this account's stored messages"),
                        _("Every stored message is encrypted again under a new key, in the background; the "
                          "passphrase stays the same. A new recovery code is shown at the end and the old one "
                          "stops working at once."),
                        fields, _("OK"), G_CALLBACK(rotate_ok_cb), _("Cancel"), G_CALLBACK(rotate_cancel_cb),
                        wa->account, NULL, NULL, wa);
}
