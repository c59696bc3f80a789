/* wabiz-login.c: sign-on and sign-off of a business number.
 *
 * Sign-on checks the settings, then asks the API for the phone number
 * (GET /{phone-number-id}). Only a refused token or wrong settings are fatal;
 * anything that looks like an outage is NETWORK_ERROR, which makes Pidgin and
 * Finch reconnect by themselves. Once connected, API failures never
 * disconnect: the outbox waits (wabiz-send.c). */
#include "wabiz.h"

#include "wabiz-config.h"

/* Maps libpurple's proxy settings onto a libcurl proxy URL. */
static void
apply_proxy(WaHttp *http, PurpleAccount *account)
{
  PurpleProxyInfo *info = purple_proxy_get_setup(account);
  const char *scheme = NULL;
  g_autofree char *url = NULL;

  if (info == NULL) {
    wa_http_set_proxy(http, "", NULL, NULL);
    return;
  }
  switch (purple_proxy_info_get_type(info)) {
  case PURPLE_PROXY_NONE:
    wa_http_set_proxy(http, "", NULL, NULL);
    return;
  case PURPLE_PROXY_USE_ENVVAR:
    wa_http_set_proxy(http, NULL, NULL, NULL);
    return;
  case PURPLE_PROXY_HTTP:
    scheme = "http";
    break;
  case PURPLE_PROXY_SOCKS4:
    scheme = "socks4a";
    break;
  case PURPLE_PROXY_SOCKS5:
  case PURPLE_PROXY_TOR:
    scheme = "socks5h";
    break;
  default:
    wa_http_set_proxy(http, "", NULL, NULL);
    return;
  }
  url = g_strdup_printf("%s://%s:%d", scheme, purple_proxy_info_get_host(info), purple_proxy_info_get_port(info));
  wa_http_set_proxy(http, url, purple_proxy_info_get_username(info), purple_proxy_info_get_password(info));
}

static gboolean
is_digits(const char *s)
{
  if (s == NULL || *s == '\0')
    return FALSE;
  for (; *s != '\0'; s++)
    if (!g_ascii_isdigit(*s))
      return FALSE;
  return TRUE;
}

static void
signon_failed(WabizAccount *wa, const WaGraphError *error)
{
  g_autofree char *reason = wa_graph_error_describe(error);
  g_autofree char *text = NULL;
  PurpleConnectionError code;

  switch (error->klass) {
  case WA_ERROR_CLASS_AUTH:
    code = PURPLE_CONNECTION_ERROR_AUTHENTICATION_FAILED;
    text = g_strdup_printf(_("The access token was refused: %s"), reason);
    break;
  case WA_ERROR_CLASS_NOT_FOUND:
    code = PURPLE_CONNECTION_ERROR_INVALID_SETTINGS;
    text = g_strdup_printf(_("Phone number ID %s is unknown or not visible to this access token. "
                             "Check the account's username (the phone number ID from WhatsApp Manager). %s"),
                           wa->pnid, reason);
    break;
  case WA_ERROR_CLASS_PERMISSION:
    code = PURPLE_CONNECTION_ERROR_INVALID_SETTINGS;
    text = g_strdup_printf(_("The access token lacks a permission: give the system user "
                             "whatsapp_business_messaging and whatsapp_business_management. %s"),
                           reason);
    break;
  case WA_ERROR_CLASS_NETWORK:
  case WA_ERROR_CLASS_RETRYABLE:
  case WA_ERROR_CLASS_RATE_LIMITED:
    code = PURPLE_CONNECTION_ERROR_NETWORK_ERROR;
    text = g_strdup_printf(_("Cannot reach the WhatsApp Business Platform; will try again. %s"), reason);
    break;
  default:
    code = PURPLE_CONNECTION_ERROR_INVALID_SETTINGS;
    text = g_strdup_printf(_("The WhatsApp Business Platform refused to sign in: %s"), reason);
    break;
  }
  purple_connection_error_reason(wa->gc, code, text);
}

static void
phone_number_cb(WaGraphReply *reply, gpointer data)
{
  WabizAccount *wa = data;
  g_autofree char *display = NULL;

  wa->signon_call = NULL;
  if (reply->error != NULL) {
    signon_failed(wa, reply->error);
    return;
  }
  wa->phone = wa_phone_info_from_json(reply->object);
  if (wa->phone->verified_name != NULL && wa->phone->display_phone_number != NULL)
    display = g_strdup_printf("%s (%s)", wa->phone->verified_name, wa->phone->display_phone_number);
  else if (wa->phone->display_phone_number != NULL)
    display = g_strdup(wa->phone->display_phone_number);
  if (display != NULL)
    purple_connection_set_display_name(wa->gc, display);
  purple_debug_info("wabiz", "signed on: number %s, quality %s, limit %s\n", wa->pnid,
                    wa->phone->quality_rating != NULL ? wa->phone->quality_rating : "?",
                    wa->phone->messaging_limit != NULL ? wa->phone->messaging_limit : "?");
  purple_connection_update_progress(wa->gc, _("Connected"), 3, 4);
  purple_connection_set_state(wa->gc, PURPLE_CONNECTED);
  wabiz_outbox_start(wa);
  wabiz_media_start(wa);
  wabiz_templates_start(wa);
  wabiz_campaigns_start(wa);
  wabiz_window_load(wa);
  wabiz_link_start(wa);
}

/* The store is unlocked: now the API. */
static void
store_ready(WabizAccount *wa)
{
  purple_connection_update_progress(wa->gc, _("Contacting the WhatsApp Business Platform"), 2, 4);
  wa->signon_call = wa_graph_get_phone_number(wa->graph, wa->pnid, phone_number_cb, wa);
  if (wa->signon_call == NULL)
    purple_connection_error_reason(wa->gc, PURPLE_CONNECTION_ERROR_NETWORK_ERROR,
                                   _("Could not start a request to the WhatsApp Business Platform."));
}

void
wabiz_login(PurpleAccount *account)
{
  PurpleConnection *gc = purple_account_get_connection(account);
  WabizAccount *wa = g_new0(WabizAccount, 1);
  g_autoptr(GError) error = NULL;
  g_autofree char *user_agent = NULL;
  const char *token = purple_account_get_password(account);
  const char *cc = wabiz_account_string(account, WABIZ_OPT_DEFAULT_CC);
  int timeout = purple_account_get_int(account, WABIZ_OPT_HTTP_TIMEOUT, 60);

  wabiz_connect_signals();
  wa->account = account;
  wa->gc = gc;
  wa->pnid = g_strstrip(g_strdup(purple_account_get_username(account)));
  wa->announced = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  purple_connection_set_protocol_data(gc, wa);
  gc->flags |= PURPLE_CONNECTION_NO_BGCOLOR | PURPLE_CONNECTION_NO_FONTSIZE | PURPLE_CONNECTION_NO_URLDESC |
               PURPLE_CONNECTION_NO_IMAGES;

  purple_connection_update_progress(gc, _("Checking settings"), 0, 4);
  if (!is_digits(wa->pnid)) {
    purple_connection_error_reason(
      gc, PURPLE_CONNECTION_ERROR_INVALID_SETTINGS,
      _("The username must be the phone number ID (digits only) from WhatsApp Manager, not the phone number itself."));
    return;
  }
  if (token == NULL || *token == '\0') {
    purple_connection_error_reason(gc, PURPLE_CONNECTION_ERROR_INVALID_SETTINGS,
                                   _("Enter the access token (a system-user token) as the account password."));
    return;
  }
  if (cc != NULL && *cc != '\0' && !wa_country_code_is_valid(cc)) {
    purple_connection_error_reason(gc, PURPLE_CONNECTION_ERROR_INVALID_SETTINGS,
                                   _("The default country code must be 1 to 3 digits, such as 49 or 1."));
    return;
  }

  user_agent = g_strdup_printf("purple-wabiz/%s (libpurple %s)", WABIZ_VERSION, purple_core_get_version());
  wa->http = wa_http_new(wabiz_loop(), user_agent);
  if (timeout > 0)
    wa_http_set_timeouts(wa->http, (guint) MIN(timeout * 1000, 15000), (guint) timeout * 1000);
  apply_proxy(wa->http, account);
  wa->graph = wa_graph_new(wa->http, wabiz_account_string(account, WABIZ_OPT_API_BASE_URL), token, &error);
  if (wa->graph == NULL) {
    purple_connection_error_reason(gc, PURPLE_CONNECTION_ERROR_INVALID_SETTINGS, error->message);
    return;
  }

  purple_connection_update_progress(gc, _("Opening the encrypted message store"), 1, 4);
  wabiz_store_open(wa, store_ready);
}

/* ---- sign-off ---------------------------------------------------------------
 * The outbox (wabiz-outbox.c) lets requests in flight finish in a short grace
 * period; what is queued stays in the store for the next sign-on. */

void
wabiz_close(PurpleConnection *gc)
{
  WabizAccount *wa = purple_connection_get_protocol_data(gc);

  purple_request_close_with_handle(gc);
  purple_notify_close_with_handle(gc);
  if (wa == NULL)
    return;
  wabiz_link_stop(wa);
  wabiz_window_stop(wa);
  wabiz_kinds_stop(wa);
  wabiz_campaigns_stop(wa);
  wabiz_templates_stop(wa);
  wabiz_file_stop(wa);
  wabiz_outbox_stop(wa);
  wabiz_receipts_stop(wa);
  wabiz_send_gates_clear(wa);
  wabiz_media_stop(wa);
  wabiz_store_close(wa);
  g_clear_pointer(&wa->graph, wa_graph_free); /* cancels signon_call too */
  g_clear_pointer(&wa->http, wa_http_free);
  g_clear_pointer(&wa->phone, wa_phone_info_free);
  g_clear_pointer(&wa->announced, g_hash_table_destroy);
  g_queue_clear(&wa->shown_order);
  g_clear_pointer(&wa->shown, g_hash_table_destroy);
  g_free(wa->notice_last);
  g_free(wa->pnid);
  g_free(wa);
  purple_connection_set_protocol_data(gc, NULL);
}
