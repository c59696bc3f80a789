/* wabiz.h: the prpl's shared state. Only plugin/purple includes libpurple; the
 * protocol logic lives in plugin/core and reaches libpurple through here. */
#pragma once

#ifndef PURPLE_PLUGINS
#define PURPLE_PLUGINS
#endif

#include <purple.h>

#include "wa-clock.h"
#include "wa-graph.h"
#include "wa-http.h"
#include "wa-i18n.h"
#include "wa-loop.h"
#include "wa-sender.h"
#include "wa-phone.h"
#include "wa-text.h"

#define WABIZ_PRPL_ID "prpl-wabiz"
#define WABIZ_ICON_NAME "wabiz"

/* Account option keys: the contract in DESIGN.md; never rename. */
#define WABIZ_OPT_WABA_ID "waba_id"
#define WABIZ_OPT_API_BASE_URL "api_base_url"
#define WABIZ_OPT_APP_SECRET "app_secret"
#define WABIZ_OPT_VERIFY_TOKEN "verify_token"
#define WABIZ_OPT_WEBHOOK_BIND "webhook_bind"
#define WABIZ_OPT_WEBHOOK_PORT "webhook_port"
#define WABIZ_OPT_WEBHOOK_PATH "webhook_path"
#define WABIZ_OPT_RECEIVER_KEEP_RUNNING "receiver_keep_running"
/* Added by features. */
#define WABIZ_OPT_DEFAULT_CC "default_country_code"
#define WABIZ_OPT_HTTP_TIMEOUT "http_timeout"
#define WABIZ_OPT_RETRY_DELAY_MS "send_retry_delay_ms"
#define WABIZ_OPT_PLAINTEXT_LOG "plaintext_log"

typedef struct {
  PurpleAccount *account;
  PurpleConnection *gc;
  WaHttp *http;
  WaGraph *graph;
  WaSender *sender;
  WaGraphCall *signon_call;
  WaPhoneInfo *phone;
  char *pnid;
  GHashTable *wamids;    /* wamid -> customer id, for status webhooks */
  GHashTable *announced; /* customers told that messages are waiting */
} WabizAccount;

/* wabiz-loop.c */
WaLoop *wabiz_loop(void);

/* wabiz-login.c */
void wabiz_login(PurpleAccount *account);
void wabiz_close(PurpleConnection *gc);

/* wabiz-send.c */
int wabiz_send_im(PurpleConnection *gc, const char *who, const char *message, PurpleMessageFlags flags);
void wabiz_sender_start(WabizAccount *wa);
const char *wabiz_normalize(const PurpleAccount *account, const char *who);
/* Writes why a message did not go (or may not have gone) into the customer's
 * conversation; also used after sign-off, while the account still exists. */
void wabiz_report_unsent(PurpleAccount *account, const char *customer, const WaGraphError *error,
                         gboolean uncertain);

/* wabiz-conv.c: the one place text from customers or the API becomes HTML. */
PurpleConversation *wabiz_conv_im(PurpleAccount *account, const char *customer, gboolean create);
void wabiz_conv_write_plain(PurpleConversation *conv, const char *text, PurpleMessageFlags flags, time_t when);
void wabiz_conv_created_cb(PurpleConversation *conv, gpointer data);

/* wabiz-plugin.c */
const char *wabiz_account_string(PurpleAccount *account, const char *key);
void wabiz_connect_signals(void);
