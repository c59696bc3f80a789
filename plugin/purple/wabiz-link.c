/* wabiz-link.c: the account's link to wabiz-receiver.
 *
 * At sign-on: make a verify token if the account has none, load the
 * account's key pair, connect to the receiver's socket (starting the receiver
 * when nobody answers), register the account and subscribe. Events go to
 * wabiz-inbound.c; receiver notices, set-up hints and a listener that cannot
 * be opened (a port someone else holds) go to the notices conversation. A
 * lost receiver is reconnected (and restarted) with backoff; receiving
 * problems never disconnect the account, which can still send.
 * Must not: log the registration (it holds the app secret), send it to a
 * socket whose peer is not our own user's (wa-rxclient checks), or block
 * while the receiver starts (its socket is polled on a timer). */
#include "wabiz.h"

#include <sodium.h>
#include <glib/gstdio.h>

#include "wabiz-config.h"
#include "wa-json.h"

#define RX_START_WAIT_MS 15000
#define RX_POLL_MS 100
#define RX_BACKOFF_MIN_MS 1000
#define RX_BACKOFF_MAX_MS 30000
/* a backlog this large is announced: it takes a moment to show */
#define BACKLOG_NOTICE 20
/* a generated verify token: 32 random bytes, base64url (43 characters) */
#define WABIZ_VERIFY_TOKEN_BYTES 32
/* account setting (not an option): the listening address last told */
#define LAST_URL_SETTING "webhook_last_url"

static void try_connect(WabizAccount *wa);

static char *
receiver_binary(void)
{
  const char *env = g_getenv("WABIZ_RECEIVER");

  if (env != NULL && *env != '\0')
    return g_strdup(env);
  return g_build_filename(WABIZ_LIBEXECDIR, "wabiz-receiver", NULL);
}

static JsonObject *
registration(WabizAccount *wa)
{
  PurpleAccount *account = wa->account;
  JsonObject *reg = json_object_new();
  g_autofree char *public_key = wa_keypair_public_base64(wa->keys);
  const char *strings[][2] = {
    {"waba_id", WABIZ_OPT_WABA_ID},           {"app_secret", WABIZ_OPT_APP_SECRET},
    {"verify_token", WABIZ_OPT_VERIFY_TOKEN}, {"bind", WABIZ_OPT_WEBHOOK_BIND},
    {"path", WABIZ_OPT_WEBHOOK_PATH},         {"tls_cert", WABIZ_OPT_WEBHOOK_TLS_CERT},
    {"tls_key", WABIZ_OPT_WEBHOOK_TLS_KEY},   {"socket_group", WABIZ_OPT_WEBHOOK_SOCKET_GROUP},
  };

  json_object_set_string_member(reg, "account", wa->pnid);
  for (guint i = 0; i < G_N_ELEMENTS(strings); i++) {
    const char *value = purple_account_get_string(account, strings[i][1], NULL);

    if (g_str_equal(strings[i][0], "bind") && (value == NULL || *value == '\0'))
      value = "127.0.0.1";
    if (g_str_equal(strings[i][0], "path") && (value == NULL || *value == '\0'))
      value = "/webhook";
    json_object_set_string_member(reg, strings[i][0], value != NULL ? value : "");
  }
  json_object_set_int_member(reg, "port", purple_account_get_int(account, WABIZ_OPT_WEBHOOK_PORT, 8090));
  json_object_set_string_member(reg, "public_key", public_key);
  json_object_set_boolean_member(reg, "keep_running",
                                 purple_account_get_bool(account, WABIZ_OPT_RECEIVER_KEEP_RUNNING, TRUE));
  json_object_set_boolean_member(reg, "allow_public_http",
                                 purple_account_get_bool(account, WABIZ_OPT_WEBHOOK_PUBLIC_HTTP, FALSE));
  /* at least 1 MiB; the receiver always takes one event while none waits */
  json_object_set_int_member(
    reg, "max_pending_bytes",
    (gint64) MAX(purple_account_get_int(account, WABIZ_OPT_RECEIVER_MAX_PENDING_MB, WABIZ_DEFAULT_MAX_PENDING_MB), 1) *
      1024 * 1024);
  return reg;
}

static void
tell_setup(WabizAccount *wa)
{
  const char *public_url = purple_account_get_string(wa->account, WABIZ_OPT_WEBHOOK_PUBLIC_URL, NULL);
  const char *token = purple_account_get_string(wa->account, WABIZ_OPT_VERIFY_TOKEN, NULL);
  g_autofree char *callback = NULL;
  g_autofree char *text = NULL;

  if (public_url != NULL && *public_url != '\0')
    callback = g_strdup(public_url);
  else
    callback = g_strdup_printf(_("of the public HTTPS address that forwards to %s (set it as "
                                 "\"Public webhook URL\" in the account to see it here)"),
                               wa->rx_url);
  text = g_strdup_printf(_("Receiving messages: the webhook receiver listens on %s\n"
                           "In Meta's App Dashboard (WhatsApp > Configuration > Webhook) enter the callback URL "
                           "%s and the verify token %s, then subscribe to the \"messages\" field."),
                         wa->rx_url, callback,
                         token != NULL && *token != '\0' ? token : _("(none set: set one in the account first)"));
  wabiz_notice(wa, text);
}

/* The receiver cannot listen for this account (or can again): say so once
 * per change. */
static void
tell_listen_state(WabizAccount *wa, JsonObject *state)
{
  const char *url = wa_json_get_string(state, "url");
  const char *why = wa_json_get_string(state, "listen_error");
  g_autofree char *text = NULL;

  if (url == NULL)
    url = wa->rx_url != NULL ? wa->rx_url : "?";
  if (wa_json_get_bool(state, "listening", TRUE)) {
    const char *last = purple_account_get_string(wa->account, LAST_URL_SETTING, NULL);

    if (last != NULL && *last != '\0' && !g_str_equal(last, url)) {
      /* never a silent move: whatever forwards to the old address must change */
      text =
        g_strdup_printf(_("The webhook receiver now listens on %s, no longer on %s. If you did not change the webhook "
                          "settings, the old port was taken by another program (on a shared machine perhaps another "
                          "user, who would then get what is sent to the old address): update your proxy or tunnel, or "
                          "set a fixed port or a UNIX socket."),
                        url, last);
      wabiz_notice(wa, text);
      g_clear_pointer(&text, g_free);
    }
    purple_account_set_string(wa->account, LAST_URL_SETTING, url);
    if (wa->rx_listen_error != NULL) {
      text = g_strdup_printf(_("Receiving works again: the webhook receiver listens on %s."), url);
      wabiz_notice(wa, text);
    }
    g_clear_pointer(&wa->rx_listen_error, g_free);
    if (!wa->rx_told) {
      wa->rx_told = TRUE;
      tell_setup(wa);
    }
    return;
  }
  if (why == NULL || *why == '\0')
    why = _("unknown reason");
  if (g_strcmp0(why, wa->rx_listen_error) == 0)
    return;
  g_free(wa->rx_listen_error);
  wa->rx_listen_error = g_strdup(why);
  if (wa_json_get_bool(state, "port_taken", FALSE))
    text =
      g_strdup_printf(_("Receiving is interrupted: the webhook receiver cannot listen on %s because another program "
                        "already holds that address. On a shared machine this may be another user, who then gets this "
                        "account's webhooks (customers' messages) instead of you. The receiver tries again every few "
                        "seconds and never moves to another port by itself. Find out who holds it (e.g. ss -ltnp), or "
                        "choose another port and update your proxy or tunnel, or listen on a UNIX socket "
                        "(webhook listen address unix:/path). Details: %s"),
                      url, why);
  else
    text = g_strdup_printf(_("Receiving is interrupted: the webhook receiver cannot listen on %s "
                             "(it tries again every few seconds): %s"),
                           url, why);
  wabiz_notice(wa, text);
}

/* The receiver's monitor leaves this file when the receiver's confinement
 * stopped it (SIGSYS; RX_CONFINE_STOPPED_NAME in plugin/receiver/rx.h). The
 * first account to find it says so and removes it. */
static void
tell_confinement_stop(WabizAccount *wa)
{
  g_autofree char *marker = g_build_filename(wa->rx_dir, "stopped-by-confinement", NULL);
  g_autofree char *text = NULL;

  if (g_unlink(marker) != 0)
    return;
  text = g_strdup_printf(_("The webhook receiver was stopped by its confinement (it made a system call it "
                           "is not allowed to make) and has been started again. This is a bug or an attack: "
                           "its log is %s/receiver.log."),
                         wa->rx_dir);
  wabiz_notice(wa, text);
}

static void
on_ready(gpointer user, JsonObject *registered, gint64 pending)
{
  WabizAccount *wa = user;
  const char *url = wa_json_get_string(registered, "url");

  tell_confinement_stop(wa);

  wa->rx_spawned = FALSE;
  wa->rx_backoff_ms = 0;
  g_free(wa->rx_url);
  wa->rx_url = g_strdup(url != NULL ? url : "?");
  purple_debug_info("wabiz", "receiver link ready, %" G_GINT64_FORMAT " events waiting\n", pending);
  tell_listen_state(wa, registered);
  if (pending >= BACKLOG_NOTICE) {
    g_autofree char *text =
      g_strdup_printf(ngettext("%u webhook event arrived while this account was offline; showing it now.",
                               "%u webhook events arrived while this account was offline; showing them now.",
                               (gulong) pending),
                      (guint) MIN(pending, (gint64) G_MAXUINT));

    wabiz_notice(wa, text);
  }
}

static void
on_listen(gpointer user, JsonObject *state)
{
  WabizAccount *wa = user;
  const char *url = wa_json_get_string(state, "url");

  if (url != NULL) {
    g_free(wa->rx_url);
    wa->rx_url = g_strdup(url);
  }
  tell_listen_state(wa, state);
}

static void
on_event(gpointer user, gint64 seq, gint64 received, GBytes *sealed)
{
  WabizAccount *wa = user;

  wa->last_event_us = g_get_monotonic_time();
  wabiz_inbound_queue(wa, seq, sealed);
}

static void
on_notice(gpointer user, const char *code, const char *message)
{
  WabizAccount *wa = user;
  g_autofree char *text = g_strdup_printf(_("Webhook receiver: %s"), message != NULL ? message : code);

  wabiz_notice(wa, text);
}

static gboolean
retry_cb(gpointer data)
{
  WabizAccount *wa = data;

  wa->rx_retry = 0;
  try_connect(wa);
  return G_SOURCE_REMOVE;
}

static void
retry_later(WabizAccount *wa)
{
  wa->rx_backoff_ms = wa->rx_backoff_ms == 0 ? RX_BACKOFF_MIN_MS : MIN(wa->rx_backoff_ms * 2, RX_BACKOFF_MAX_MS);
  if (wa->rx_retry != 0)
    purple_timeout_remove(wa->rx_retry);
  wa->rx_retry = purple_timeout_add(wa->rx_backoff_ms, retry_cb, wa);
}

static void
on_failed(gpointer user, const GError *error, const char *code)
{
  WabizAccount *wa = user;
  g_autofree char *text = NULL;

  /* unapplied events come again with the next subscription */
  wabiz_inbound_stop(wa);
  if (g_error_matches(error, WA_RXCLIENT_ERROR, WA_RXCLIENT_ERROR_REFUSED) && g_strcmp0(code, "storage") != 0 &&
      g_strcmp0(code, "busy") != 0 && g_strcmp0(code, "restart") != 0) {
    /* the settings are wrong (bind, TLS, a missing field) or the receiver is
     * of another version: retrying cannot help until the account changes */
    text = g_strdup_printf(_("The webhook receiver refused this account, so no messages can arrive: %s. "
                             "Fix the webhook settings of the account, then reconnect."),
                           error->message);
    wabiz_notice(wa, text);
    return;
  }
  purple_debug_warning("wabiz", "receiver link lost: %s\n", error->message);
  wa->rx_spawned = FALSE;
  retry_later(wa);
}

/* The receiver deleted the events up to @seq (an applied event's ACK):
 * the test crash point after an acknowledgement is here, so a test sees the
 * state once the receiver has it. */
static void
on_acked(gpointer user, gint64 seq)
{
  wabiz_test_crash_point("inbound-acked");
}

static const WaRxclientEvents rx_events = {
  .ready = on_ready,
  .event = on_event,
  .notice = on_notice,
  .failed = on_failed,
  .listen = on_listen,
  .acked = on_acked,
};

static gboolean
spawn_receiver(WabizAccount *wa, GError **error)
{
  g_autofree char *binary = receiver_binary();
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
  const char *extra = g_getenv("WABIZ_RECEIVER_ARGS");
  g_auto(GStrv) extra_argv = NULL;

  g_ptr_array_add(argv, g_strdup(binary));
  g_ptr_array_add(argv, g_strdup("--dir"));
  g_ptr_array_add(argv, g_strdup(wa->rx_dir));
  g_ptr_array_add(argv, g_strdup("--daemon"));
  if (extra != NULL && *extra != '\0' && g_shell_parse_argv(extra, NULL, &extra_argv, NULL)) {
    for (guint i = 0; extra_argv[i] != NULL; i++)
      g_ptr_array_add(argv, g_strdup(extra_argv[i]));
  }
  g_ptr_array_add(argv, NULL);
  purple_debug_info("wabiz", "starting the webhook receiver %s\n", binary);
  /* without G_SPAWN_DO_NOT_REAP_CHILD GLib double-forks: the receiver is not
   * our child and outlives the messenger */
  return g_spawn_async(NULL, (char **) argv->pdata, NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, error);
}

static void
try_connect(WabizAccount *wa)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;

  if (wa_rxclient_connect(wa->rx, &error))
    return;
  if (g_error_matches(error, WA_RXCLIENT_ERROR, WA_RXCLIENT_ERROR_PEER)) {
    /* retrying cannot help: someone else's socket, or a directory open to
     * others, until the user looks into it */
    text = g_strdup_printf(_("Receiving is off: the webhook receiver's socket cannot be trusted with the "
                             "app secret, so nothing was sent to it: %s. Check who owns %s (it must be "
                             "yours, mode 0700), then reconnect."),
                           error->message, wa->rx_dir);
    wabiz_notice(wa, text);
    return;
  }
  if (!g_error_matches(error, WA_RXCLIENT_ERROR, WA_RXCLIENT_ERROR_NOT_RUNNING)) {
    text = g_strdup_printf(_("Cannot reach the webhook receiver: %s"), error->message);
    wabiz_notice(wa, text);
    retry_later(wa);
    return;
  }
  if (!wa->rx_spawned) {
    g_autoptr(GError) spawn_error = NULL;

    if (!spawn_receiver(wa, &spawn_error)) {
      text = g_strdup_printf(_("Cannot start the webhook receiver: %s"), spawn_error->message);
      wabiz_notice(wa, text);
      retry_later(wa);
      return;
    }
    wa->rx_spawned = TRUE;
    wa->rx_deadline = g_get_monotonic_time() + RX_START_WAIT_MS * 1000;
  }
  if (g_get_monotonic_time() < wa->rx_deadline) {
    wa->rx_retry = purple_timeout_add(RX_POLL_MS, retry_cb, wa);
    return;
  }
  text =
    g_strdup_printf(_("The webhook receiver did not start; its log is %s/receiver.log. Trying again."), wa->rx_dir);
  wabiz_notice(wa, text);
  wa->rx_spawned = FALSE;
  retry_later(wa);
}

static void
keys_cb(WabizAccount *wa, WaKeyPair *pair, const GError *error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(JsonObject) reg = NULL;
  g_autofree char *socket_path = NULL;
  g_autofree char *client = NULL;

  if (pair == NULL) {
    g_autofree char *text = g_strdup_printf(_("Receiving is off: the account's receiving key is unavailable (%s)"),
                                            error != NULL ? error->message : "?");
    wabiz_notice(wa, text);
    return;
  }
  wa->keys = pair;
  wa->rx_dir = wabiz_data_dir("receiver", &local);
  if (wa->rx_dir == NULL) {
    g_autofree char *text = g_strdup_printf(_("Receiving is off: %s"), local->message);
    wabiz_notice(wa, text);
    return;
  }
  socket_path = g_build_filename(wa->rx_dir, "rx.sock", NULL);
  client = g_strdup_printf("purple-wabiz %s", WABIZ_VERSION);
  reg = registration(wa);
  wa->rx = wa_rxclient_new(wabiz_loop(), socket_path, client, reg, &rx_events, wa);
  try_connect(wa);
}

/* An account without a verify token gets a strong one, kept in the account so
 * that it stays what Meta's App Dashboard has (the set-up notice shows it). */
static void
ensure_verify_token(WabizAccount *wa)
{
  const char *token = purple_account_get_string(wa->account, WABIZ_OPT_VERIFY_TOKEN, NULL);
  guint8 raw[WABIZ_VERIFY_TOKEN_BYTES];
  char encoded[sodium_base64_ENCODED_LEN(WABIZ_VERIFY_TOKEN_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];

  if (token != NULL && *token != '\0')
    return;
  if (!wa_sodium_init(NULL))
    return;
  randombytes_buf(raw, sizeof raw);
  sodium_bin2base64(encoded, sizeof encoded, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  purple_account_set_string(wa->account, WABIZ_OPT_VERIFY_TOKEN, encoded);
  sodium_memzero(raw, sizeof raw);
  sodium_memzero(encoded, sizeof encoded);
  purple_debug_info("wabiz", "made a new webhook verify token for the account\n");
}

void
wabiz_link_start(WabizAccount *wa)
{
  const char *secret = purple_account_get_string(wa->account, WABIZ_OPT_APP_SECRET, NULL);

  if (secret == NULL || *secret == '\0') {
    wabiz_notice(wa, _("Receiving is off: set the app secret in the account's settings to receive "
                       "customers' messages. Sending works without it."));
    return;
  }
  ensure_verify_token(wa);
  wabiz_keys_load(wa, keys_cb);
}

void
wabiz_link_stop(WabizAccount *wa)
{
  wabiz_inbound_stop(wa);
  if (wa->rx_retry != 0)
    purple_timeout_remove(wa->rx_retry);
  wa->rx_retry = 0;
  if (wa->silence_timer != 0)
    purple_timeout_remove(wa->silence_timer);
  wa->silence_timer = 0;
  g_clear_pointer(&wa->rx, wa_rxclient_free);
  g_clear_pointer(&wa->keys, wa_keypair_free);
  g_clear_pointer(&wa->rx_dir, g_free);
  g_clear_pointer(&wa->rx_url, g_free);
  g_clear_pointer(&wa->rx_listen_error, g_free);
}

static gboolean
silence_cb(gpointer data)
{
  WabizAccount *wa = data;
  int seconds = purple_account_get_int(wa->account, WABIZ_OPT_WEBHOOK_SILENCE, 1800);
  g_autofree char *text = NULL;

  wa->silence_timer = 0;
  if (wa->last_event_us >= wa->silence_from_us)
    return G_SOURCE_REMOVE;
  text = g_strdup_printf(
    _("Messages are being sent, but no webhook (not even a delivery status) has arrived for %d minutes. "
      "Check in Meta's App Dashboard that the callback URL reaches %s and that the app is subscribed to "
      "the \"messages\" field."),
    MAX(seconds / 60, 1), wa->rx_url != NULL ? wa->rx_url : _("the webhook receiver"));
  wabiz_notice(wa, text);
  return G_SOURCE_REMOVE;
}

/* A send was accepted: statuses should follow within seconds. */
void
wabiz_link_sent(WabizAccount *wa)
{
  int seconds = purple_account_get_int(wa->account, WABIZ_OPT_WEBHOOK_SILENCE, 1800);

  if (wa->rx == NULL || seconds <= 0 || wa->silence_timer != 0)
    return;
  wa->silence_from_us = g_get_monotonic_time();
  wa->silence_timer = purple_timeout_add_seconds((guint) seconds, silence_cb, wa);
}
