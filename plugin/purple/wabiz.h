/* wabiz.h: the prpl's shared state. Only plugin/purple includes libpurple; the
 * protocol logic lives in plugin/core and reaches libpurple through here. */
#pragma once

#ifndef PURPLE_PLUGINS
#define PURPLE_PLUGINS
#endif

#include <purple.h>

#include "wa-clock.h"
#include "wa-compose.h"
#include "wa-consent.h"
#include "wa-graph.h"
#include "wa-http.h"
#include "wa-i18n.h"
#include "wa-loop.h"
#include "wa-attach.h"
#include "wa-media.h"
#include "wa-sender.h"
#include "wa-phone.h"
#include "wa-receipts.h"
#include "wa-rxclient.h"
#include "wa-crypt.h"
#include "wa-seal.h"
#include "wa-store.h"
#include "wa-text.h"
#include "wa-webhook.h"
#include "wa-window.h"

#define WABIZ_PRPL_ID "prpl-wabiz"
#define WABIZ_ICON_NAME "wabiz"

/* Account option keys: the contract in docs/ARCHITECTURE.md, Account contract; never rename. */
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
#define WABIZ_OPT_WEBHOOK_PUBLIC_URL "webhook_public_url"
#define WABIZ_OPT_WEBHOOK_TLS_CERT "webhook_tls_cert"
#define WABIZ_OPT_WEBHOOK_TLS_KEY "webhook_tls_key"
#define WABIZ_OPT_WEBHOOK_PUBLIC_HTTP "webhook_allow_public_http"
#define WABIZ_OPT_WEBHOOK_SOCKET_GROUP "webhook_socket_group"
#define WABIZ_OPT_WEBHOOK_SILENCE "webhook_silence_seconds"
#define WABIZ_OPT_RETENTION_DAYS "retention_days"
#define WABIZ_OPT_UNCERTAIN_GRACE "uncertain_grace_seconds"
#define WABIZ_OPT_PSEUDONYMOUS "pseudonymous_aliases"
#define WABIZ_OPT_RECEIVER_MAX_PENDING_MB "receiver_max_pending_mb" /* REGISTER's max_pending_bytes, in MiB */
#define WABIZ_DEFAULT_MAX_PENDING_MB 1024
#define WABIZ_OPT_STORE_PROTECTION "store_protection" /* list: WABIZ_STORE_KEYFILE (default) or _PASSPHRASE */
#define WABIZ_STORE_KEYFILE "keyfile"
#define WABIZ_STORE_PASSPHRASE "passphrase"
#define WABIZ_OPT_RECEIPTS "read_receipts" /* list: typing (default), seen, reply, never (wa_receipt_policy) */
#define WABIZ_OPT_TICKS "delivery_ticks"   /* list: failures (default), none, all */
/* attachments (wabiz-media.c): larger ones are not downloaded (MiB); the first retry
 * of a failed download (ms, doubling) */
#define WABIZ_OPT_MEDIA_MAX_MB "media_max_mb"
#define WABIZ_OPT_MEDIA_RETRY_MS "media_retry_delay_ms"
/* images and stickers: inline (Pidgin; the line elsewhere), as file transfers, or both */
#define WABIZ_OPT_MEDIA_IMAGES "media_images"
#define WABIZ_MEDIA_IMAGES_INLINE "inline"
#define WABIZ_MEDIA_IMAGES_TRANSFER "transfer"
#define WABIZ_MEDIA_IMAGES_BOTH "both"
/* BitlBee: offer attachments as file transfers (DCC SEND to the IRC client; BitlBee
 * stages them unencrypted in /tmp first) */
#define WABIZ_OPT_BITLBEE_TRANSFERS "bitlbee_transfers"
/* templates (wabiz-template.c): the language /template uses when a template
 * has several; marketing templates through POST /{phone-number-id}/marketing_messages */
#define WABIZ_OPT_TEMPLATE_LANGUAGE "template_language"
#define WABIZ_OPT_MARKETING_ENDPOINT "marketing_endpoint"
/* consent (wabiz-consent.c): utility templates need an opt-in ("required", the
 * default) or go unless opted out ("not_required"); the whole messages that opt a
 * customer out of everything, and the template button payloads that opt out of
 * marketing (comma-separated; case and accents ignored) */
#define WABIZ_OPT_UTILITY_CONSENT "utility_consent"
#define WABIZ_OPT_OPTOUT_KEYWORDS "optout_keywords"
#define WABIZ_DEFAULT_OPTOUT_KEYWORDS "STOP, STOPP, UNSUBSCRIBE, ABMELDEN"
#define WABIZ_OPT_OPTOUT_PAYLOADS "optout_payloads"
#define WABIZ_DEFAULT_OPTOUT_PAYLOADS "STOP, UNSUBSCRIBE"
/* campaigns (wabiz-campaign.c): the number's throughput in messages per second
 * (list: 80, 1000, 20 for numbers shared with the Business app) */
#define WABIZ_OPT_CAMPAIGN_THROUGHPUT "campaign_throughput"
/* the portfolio's daily limit of customers reached with templates (list: "api" = as
 * the API's whatsapp_business_manager_messaging_limit says, 250, 2000, 10000,
 * 100000, 0 = unlimited), shared by the accounts of one WABA */
#define WABIZ_OPT_PORTFOLIO_LIMIT "portfolio_limit"
/* country calling codes (comma-separated, default none) where WhatsApp does not
 * deliver marketing templates: campaigns skip those numbers ("closed-country") */
#define WABIZ_OPT_MARKETING_CLOSED_COUNTRIES "marketing_closed_countries"

/* Buddy node settings: the store's pseudonymous customer id, and what older
 * versions kept here. */
#define WABIZ_NODE_CUSTOMER_ID "wabiz-customer-id"   /* internal id, stable across number changes */
#define WABIZ_NODE_BSUID "wabiz-bsuid"               /* business-scoped user id, when known */
#define WABIZ_NODE_LAST_INBOUND "wabiz-last-inbound" /* before the store: migrated into it, then removed */

#define WABIZ_GROUP_DEFAULT N_("WhatsApp Business")
#define WABIZ_NOTICES_NAME "notices"
/* In BitlBee the notices come from this contact, and plugin lines start
 * with WABIZ_MARK (wabiz-bitlbee.c). */
#define WABIZ_BITLBEE_NOTICES_NAME "wabiz"
#define WABIZ_MARK "[wabiz]"

typedef struct _ResendDialog ResendDialog;
typedef struct _WabizCompose WabizCompose;
typedef struct _WabizMediaState WabizMediaState;
typedef struct _WabizTemplates WabizTemplates;
typedef struct _WabizCampaigns WabizCampaigns;

typedef struct _WabizAccount {
  PurpleAccount *account;
  PurpleConnection *gc;
  WaHttp *http;
  WaGraph *graph;
  WaSender *sender;
  WaGraphCall *signon_call;
  WaPhoneInfo *phone;
  char *pnid;
  GHashTable *announced;  /* customers told that messages are waiting */
  GHashTable *send_gates; /* address -> its sends on their way to the outbox, in order (wabiz-send.c) */

  /* the outbox's open questions (wabiz-outbox.c) */
  guint uncertain_timer;
  struct _ResendDialog *resend_dialog; /* the open "may have been sent" dialog */
  GHashTable *asked;                   /* outbox ids (gint64*) already asked about this session */
  GHashTable *resolved;                /* outbox ids (gint64*) a status resolved before the send's answer came */
  GHashTable *unsure;                  /* outbox ids (gint64*) the conversation was told may not have gone */

  /* the encrypted store (wabiz-store.c) */
  WaStore *store;
  void (*store_ready)(struct _WabizAccount *wa);
  GHashTable *store_pending; /* callback data of requests in flight -> its free function */
  char *store_header;        /* the stored key header (JSON, not secret); NULL before the open */
  guint retention_timer;

  /* receiving (wabiz-link.c, wabiz-inbound.c) */
  WaKeyPair *keys;
  struct _WaEventOpener *opener; /* opens and parses events on its thread (wabiz-inbound.c) */
  WaRxclient *rx;
  char *rx_dir;
  char *rx_url;       /* where the receiver listens for this account */
  guint rx_retry;     /* timer: reconnect or wait for a started receiver */
  gint64 rx_deadline; /* monotonic us: give up waiting for a started receiver */
  guint rx_backoff_ms;
  gboolean rx_spawned;
  gboolean rx_told;                /* the notices conversation has the set-up text */
  gboolean old_told;               /* the notices said that deliveries older than Meta's retries arrived */
  char *rx_listen_error;           /* the receiver cannot listen for this account: why (as last told) */
  struct _WabizApplying *applying; /* the event being stored and shown */
  GSList *orphans;                 /* batches still waiting for the store: of a lost link, or for their marks */
  GHashTable *shown;               /* store message ids shown this session (live or as history) */
  GQueue shown_order;              /* the same ids (owned by shown), oldest first */
  guint inbound_slice;             /* timer applying the next slice */
  GPtrArray *marks_due;            /* DueMark*: "shown" marks not yet sent to the store (wabiz-inbound.c) */
  guint marks_timer;               /* sends them at the end of the turn of the loop */
  gint64 last_event_us;            /* monotonic time of the last event from the receiver */
  guint silence_timer;             /* warns when sends succeed but no webhook arrives */
  gint64 silence_from_us;
  gint64 applied_seq; /* newest event applied: a re-sent one is skipped */

  /* notices (wabiz-conv.c): rate limit */
  char *notice_last; /* the last notice shown */
  gint64 notice_last_us;
  gint64 notice_window_us; /* start of the current minute of notices */
  guint notice_count;      /* shown in that minute */
  guint notice_dropped;    /* held back since the last one shown */

  /* the 24-hour window (wabiz-window.c) */
  GHashTable *windows; /* store customer id -> gint64*: newest customer message */
  GHashTable *names;   /* store customer id -> profile name, kept here instead of in blist.xml
                          * when aliases are pseudonymous */
  guint window_timer;
  gint64 window_at;                     /* when window_timer fires (Unix s) */
  guint presence_slice;                 /* timer setting the next buddies' presence */
  GQueue presence_todo;                 /* names of the buddies whose presence is still to be set */
  struct _WabizWindowLoad *window_load; /* the windows read at sign-on, being taken in slices */

  /* inbound kinds beyond text (wabiz-kinds.c) */
  GHashTable *cards;     /* buddy name -> GPtrArray of the contacts shared in its conversation */
  GHashTable *usernames; /* buddy name -> WhatsApp username (profile.username) */
  /* receipts, typing and ticks (wabiz-receipts.c) */
  GHashTable *receipts; /* buddy name -> its receipt state, ticks and last status */
  /* files being uploaded (wabiz-file.c) */
  GList *uploads;  /* FileSend* */
  GList *composes; /* WabizCompose*: messages with pasted images, uploading */
  /* attachments being downloaded (wabiz-media.c) */
  WabizMediaState *media;
  /* message templates (wabiz-template.c) */
  WabizTemplates *templates;
  /* notifications to many customers (wabiz-campaign.c) */
  WabizCampaigns *campaigns;
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
void wabiz_report_unsent(PurpleAccount *account, const char *customer, const WaGraphError *error, gboolean uncertain);
/* The agent's sends to one address reach the outbox in the order typed,
 * though some first look things up in the store (a /reply its message): a
 * job that does (@hold) takes the address's gate, and what is typed after it
 * waits until it has queued (or given up) and called
 * wabiz_send_gate_leave(). A job whose turn came through the gate holds it
 * too; other text starts at once. wabiz_send_gate_busy() tells a job before
 * it enters whether it will hold the gate. @free_job frees a job that never
 * started (sign-off). */
typedef void (*WabizGateFunc)(gpointer job);
gboolean wabiz_send_gate_busy(WabizAccount *wa, const char *to);
void wabiz_send_gate_enter(WabizAccount *wa, const char *to, gboolean hold, WabizGateFunc start, gpointer job,
                           GDestroyNotify free_job);
void wabiz_send_gate_leave(WabizAccount *wa, const char *to);
/* At sign-off: jobs that never started are freed. */
void wabiz_send_gates_clear(WabizAccount *wa);
/* "Not sent: the 24-hour service window ... has closed ..." */
const char *wabiz_window_closed_text(void);
/* Queues @text (the agent's, as WhatsApp text) to @to in parts (a customer
 * or a group address); failures are reported in the conversation. */
void wabiz_send_text(WabizAccount *wa, const char *to, const char *text);

/* wabiz-commands.c: /reply, /react, /location, /buttons, /list, /askphone */
PurpleCmdRet wabiz_cmd_reply(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data);
PurpleCmdRet wabiz_cmd_react(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data);
PurpleCmdRet wabiz_cmd_location(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data);
PurpleCmdRet wabiz_cmd_buttons(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data);
PurpleCmdRet wabiz_cmd_list(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data);
PurpleCmdRet wabiz_cmd_askphone(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data);
/* The customer of conversation @conv, checked as send_im checks it
 * (connected, a customer, the window open unless @closed_ok: a template);
 * NULL with *@error set ("Not sent: ...") otherwise. */
char *wabiz_command_customer(PurpleConversation *conv, const char *cmd, gboolean closed_ok, WabizAccount **wa,
                             char **error);
/* Queues @composed (taken) to @to as the commands queue theirs: after the
 * sends typed before it, through the outbox, the agent's line shown once
 * queued. With @consent_category (a template's category) the customer's
 * consent is checked right before queuing; a refusal is written in the
 * conversation and nothing is sent. */
void wabiz_command_queue(WabizAccount *wa, const char *to, WaComposed *composed, const char *consent_category);
/* The API refused the token (while sending or uploading): the account
 * disconnects with an authentication error. */
void wabiz_token_refused(WabizAccount *wa, const WaGraphError *error);

/* wabiz-file.c: files to customers (send_file, /sendfile) */
gboolean wabiz_can_receive_file(PurpleConnection *gc, const char *who);
void wabiz_send_file(PurpleConnection *gc, const char *who, const char *filename);
PurpleCmdRet wabiz_cmd_sendfile(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data);
/* A message with pasted images (<img id="N"> from the imgstore). */
gboolean wabiz_file_has_images(const char *html);
/* Uploads its images, then queues text and images in the message's order. */
void wabiz_file_send_composed(WabizAccount *wa, const char *customer, const char *html);
/* Sign-off: uploads in flight stop (nothing of them was queued). */
void wabiz_file_stop(WabizAccount *wa);

/* wabiz-outbox.c: the durable outbox at sign-on and sign-off, and /resend */
void wabiz_outbox_start(WabizAccount *wa);
void wabiz_outbox_stop(WabizAccount *wa);
/* Something became uncertain: ask the agent after the grace period. */
void wabiz_outbox_uncertain_later(WabizAccount *wa);
PurpleCmdRet wabiz_cmd_resend(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data);
void wabiz_outbox_unload(void);
/* A status resolved outbox entry @id (its state before: @before). */
void wabiz_outbox_resolved(WabizAccount *wa, guint64 id, WaStoreOutboxState before, const char *customer);
/* The send of @id ended: without an answer (@uncertain), or with one. */
void wabiz_outbox_answered(WabizAccount *wa, guint64 id, const char *customer, gboolean uncertain,
                           const WaGraphError *error);

/* wabiz-conv.c: the one place text from customers or the API becomes HTML. */
/* The conversation of @customer; for a group address (wa-phone.h), the
 * group's chat, so outbox reports about group sends land there. */
PurpleConversation *wabiz_conv_im(PurpleAccount *account, const char *customer, gboolean create);
void wabiz_conv_write_plain(PurpleConversation *conv, const char *text, PurpleMessageFlags flags, time_t when);
/* The agent's own line for something queued that libpurple does not echo
 * (a command's message, a group text). */
void wabiz_conv_write_sent(PurpleConversation *conv, const char *text);
/* A picture from the imgstore (@img_id) as a received line (Pidgin). */
void wabiz_conv_write_image(PurpleConversation *conv, int img_id, time_t when);
void wabiz_conv_created_cb(PurpleConversation *conv, gpointer data);

/* wabiz-conv.c: customers' messages (HTML-escaped here), notices */
/* @flags: added to RECV (or SEND | REMOTE_SEND), e.g. PURPLE_MESSAGE_DELAYED for backlog. */
void wabiz_conv_got_im(WabizAccount *wa, const char *customer, const char *text, time_t when, PurpleMessageFlags flags);
void wabiz_conv_got_chat(WabizAccount *wa, int id, const char *who, const char *text, time_t when);
void wabiz_conv_write_elsewhere(PurpleAccount *account, const char *customer, const char *text, time_t when,
                                PurpleMessageFlags flags);
void wabiz_notice(WabizAccount *wa, const char *text);
gboolean wabiz_history_mark_shown(WabizAccount *wa, const char *message_id);

/* wabiz-store.c */
void wabiz_store_open(WabizAccount *wa, void (*ready)(WabizAccount *wa));
void wabiz_store_close(WabizAccount *wa);
/* Callback data of a store request: freed by wabiz_store_close() if the store
 * closes before answering (it then never answers); the callback releases it. */
gpointer wabiz_store_hold(WabizAccount *wa, gpointer data, GDestroyNotify free_func);
void wabiz_store_release(WabizAccount *wa, gpointer data);
/* Finds or creates the store record of address @to: phone digits, a BSUID
 * or a group address ("group:<id>", kept like a BSUID). */
void wabiz_store_ensure_address(WabizAccount *wa, const char *to, WaStoreCustomerUpdateFunc done, gpointer data);
/* What follows a successful unlock (wabiz_store_unlock). */
typedef enum {
  WABIZ_UNLOCK_REMEMBER_KEY = 1 << 0,   /* passphrase mode: keep the data key for this process */
  WABIZ_UNLOCK_FORGET_KEY = 1 << 1,     /* now key-file mode: drop it */
  WABIZ_UNLOCK_REMOVE_KEYFILE = 1 << 2, /* the key file is no longer needed: overwritten and deleted */
  WABIZ_UNLOCK_FROM_CACHE = 1 << 3,     /* the key came from the cache: a wrong one asks for the passphrase */
} WabizUnlockFlags;
/* Unlocks the opened store with @data_key (storing @new_header_json when not
 * NULL), then does what @flags say, tells @notice (may be NULL), and goes on
 * signing in; an error keeps the account offline. */
void wabiz_store_unlock(WabizAccount *wa, const WaKey *data_key, const char *new_header_json, WabizUnlockFlags flags,
                        const char *notice);
gboolean wabiz_store_wants_passphrase(WabizAccount *wa);
char *wabiz_store_keyfile_path(WabizAccount *wa, GError **error);
void wabiz_store_show_recovery_code(WabizAccount *wa, const char *code, WaKeyMode mode);
/* Key rotation (the "Rotate store key..." action; a /rotatekey command can
 * call it too): a new data key, new customer keys and a new recovery code.
 * @passphrase is the store's current passphrase in passphrase mode (checked;
 * NULL in key-file mode). The outcome, progress and the new code are told in
 * the notices conversation and a recovery-code notification. */
void wabiz_store_rotate_key(WabizAccount *wa, const char *passphrase);
/* With the keys known (wabiz-passphrase.c after Argon2id): starts it. */
void wabiz_store_rotate_begin(WabizAccount *wa, const WaKey *data_key, const WaKey *new_key, const char *header_json,
                              const char *recovery_code);
void wabiz_store_rotate_action(PurplePluginAction *action);

/* wabiz-passphrase.c: passphrase protection of the store */
void wabiz_passphrase_create(WabizAccount *wa); /* a new store */
void wabiz_passphrase_unlock(WabizAccount *wa); /* a store in passphrase mode (wa->store_header) */
void wabiz_passphrase_adopt(WabizAccount *wa, const WaKey *data_key); /* a key-file store moves to a passphrase */
gboolean wabiz_passphrase_in_use(WabizAccount *wa);                   /* signed in, unlocked with a passphrase */
void wabiz_passphrase_change_action(PurplePluginAction *action);
void wabiz_passphrase_rotate(WabizAccount *wa, const char *passphrase); /* Argon2id, then wabiz_store_rotate_begin */
void wabiz_passphrase_ask_rotate(WabizAccount *wa);                     /* the dialog: the current passphrase */
/* Data keys unlocked in this process, by phone number id (copies in sodium memory). */
const WaKey *wabiz_passphrase_cached(const char *pnid);
void wabiz_passphrase_remember(const char *pnid, const WaKey *data_key);
void wabiz_passphrase_forget(const char *pnid);
void wabiz_passphrase_forget_all(void);

/* wabiz-keys.c */
typedef void (*WabizKeysFunc)(WabizAccount *wa, WaKeyPair *pair, const GError *error);
void wabiz_keys_load(WabizAccount *wa, WabizKeysFunc done);
char *wabiz_data_dir(const char *sub, GError **error);

/* wabiz-link.c: the connection to wabiz-receiver */
void wabiz_link_start(WabizAccount *wa);
void wabiz_link_stop(WabizAccount *wa);
void wabiz_link_sent(WabizAccount *wa);

/* wabiz-inbound.c */
typedef struct _WabizApplying WabizApplying;
void wabiz_inbound_queue(WabizAccount *wa, gint64 seq, GBytes *sealed);
void wabiz_inbound_stop(WabizAccount *wa);
void wabiz_inbound_forget_orphans(WabizAccount *wa);

/* wabiz-customer.c: customers as buddies */
/* The customer's buddy, found by phone number @wa_id or BSUID @bsuid (either
 * may be NULL; values that are not ids are ignored), created in the default
 * group when @create; a BSUID buddy that now shows a number takes it. NULL
 * when not found and not created. */
PurpleBuddy *wabiz_customer_buddy(WabizAccount *wa, const char *wa_id, const char *bsuid, const char *profile_name,
                                  gboolean create);
/* The buddy belongs to store customer @customer_id: recorded on the buddy;
 * with pseudonymous aliases its alias becomes "Customer 1A2B3C" and the
 * profile name (may be NULL) is only kept in memory. */
void wabiz_customer_identify(WabizAccount *wa, PurpleBuddy *buddy, const char *customer_id, const char *profile_name);
/* At sign-on: the customers' profile names (pseudonymous aliases). */
void wabiz_customer_names_load(WabizAccount *wa);
/* The customer's buddy and conversation move from @old_name to @new_name;
 * TRUE when the buddy moved. */
gboolean wabiz_customer_rename(WabizAccount *wa, const char *old_name, const char *new_name);

/* wabiz-bitlbee.c: the plugin in BitlBee */
gboolean wabiz_bitlbee(void);
/* The notices conversation's name: "wabiz" in BitlBee, "notices" elsewhere. */
const char *wabiz_notices_name(void);
gboolean wabiz_is_notices(const char *name);
/* A yes/no question's captions: @caption and Cancel, or in BitlBee the
 * untranslated OK and Cancel it can answer. */
const char *wabiz_caption_yes(const char *caption);
const char *wabiz_caption_no(void);
/* "[wabiz] " + @html: a line of the plugin's in BitlBee, the commands it
 * names written "!name" (typed so in an IRC client). */
char *wabiz_bitlbee_mark(const char *html);
/* A customer's @text that starts with the marker gets a backslash first. */
char *wabiz_bitlbee_escape(const char *text);
typedef enum {
  WABIZ_TEXT_SEND,            /* send *text (a doubled "//" or "!!" undoubled) */
  WABIZ_TEXT_HANDLED,         /* a command ran (or was refused): send nothing */
  WABIZ_TEXT_REFUSED_NOTICES, /* text typed to the notices contact: refuse */
} WabizTextAction;
/* In BitlBee, what the agent's line @*text to @who is. */
WabizTextAction wabiz_bitlbee_text(WabizAccount *wa, const char *who, char **text);
/* The same for a line typed in a group chat: TRUE when it was a command. */
gboolean wabiz_bitlbee_chat_text(PurpleConversation *conv, char **text);

/* wabiz-testhooks.c: the clock, and hooks that exist only in the test build */
gint64 wabiz_now(void);
/* getenv(@name) in the test build with WABIZ_TEST_HOOKS=1; NULL otherwise. */
const char *wabiz_test_env(const char *name);
void wabiz_test_hooks_register(PurplePlugin *plugin);
void wabiz_test_crash_point(const char *point);

/* wabiz-kinds.c: shared contacts (/addcontact), usernames, calls */
/* Records the contacts @msg shares in @who's conversation; returns the
 * number of the first (as the line shows it), 0 when none. */
guint wabiz_kinds_add_cards(WabizAccount *wa, const char *who, const WaMessage *msg);
PurpleCmdRet wabiz_cmd_addcontact(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data);
void wabiz_kinds_username_seen(WabizAccount *wa, PurpleBuddy *buddy, const char *customer_id, const char *username);
const char *wabiz_kinds_username(WabizAccount *wa, PurpleBuddy *buddy);
typedef void (*WabizKindsThen)(WabizAccount *wa, const char *who);
/* The username of buddy @who is not in memory (a restart): reads it from the
 * store and calls @then; FALSE (and nothing called) when there is nothing
 * to read. */
gboolean wabiz_kinds_username_load(WabizAccount *wa, const char *who, WabizKindsThen then);
void wabiz_kinds_renamed(WabizAccount *wa, const char *old_name, const char *new_name);
void wabiz_kinds_stop(WabizAccount *wa);
/* Lines for the voice calls of a "calls" change. */
void wabiz_kinds_calls(WabizAccount *wa, const WaChange *change);
/* A line in each named customer's conversation for an event of a field not
 * handled otherwise; FALSE when it names no customer. */
gboolean wabiz_kinds_customer_event(WabizAccount *wa, const WaChange *change);

/* wabiz-window.c */
void wabiz_window_load(WabizAccount *wa);
void wabiz_window_start(WabizAccount *wa);
void wabiz_window_stop(WabizAccount *wa);
void wabiz_window_update(WabizAccount *wa, PurpleBuddy *buddy, gint64 timestamp);
WaWindowState wabiz_window_state(PurpleAccount *account, const char *customer, gint64 *left);
char *wabiz_status_text(PurpleBuddy *buddy);
void wabiz_tooltip_text(PurpleBuddy *buddy, PurpleNotifyUserInfo *info, gboolean full);
void wabiz_get_info(PurpleConnection *gc, const char *who);

/* wabiz-chat.c: WhatsApp groups (members' lines shown, the agent's text sent) */
void wabiz_group_message(WabizAccount *wa, const WaMessage *message, const char *sender_name);
void wabiz_group_event(WabizAccount *wa, const char *group_id, const char *text, time_t when);
int wabiz_chat_send(PurpleConnection *gc, int id, const char *message, PurpleMessageFlags flags);
/* The chat of @group_id (opened when @create). */
PurpleConversation *wabiz_group_conv(PurpleAccount *account, const char *group_id, gboolean create);

/* wabiz-media.c: customers' attachments */
/* A message's attachment was stored (or found stored again): its download
 * starts or continues, with a line in the conversation. */
void wabiz_media_arrived(WabizAccount *wa, const WaStoreMedia *media);
/* At sign-on: pending downloads of earlier sessions resume. */
void wabiz_media_start(WabizAccount *wa);
/* At sign-off: downloads stop (partial files removed; they stay pending). */
void wabiz_media_stop(WabizAccount *wa);
/* After an export: the customer's downloaded attachments, decrypted, into
 * @dir (created 0700) as "N-name"; a line in @conv_name says how many. */
void wabiz_media_export(WabizAccount *wa, const char *customer_id, const char *dir, const char *conv_name);
PurpleCmdRet wabiz_cmd_save(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data);

/* wabiz-gdpr.c: /export and /erase, and the buddy menu */
PurpleCmdRet wabiz_cmd_export(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data);
PurpleCmdRet wabiz_cmd_erase(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data);
GList *wabiz_blist_node_menu(PurpleBlistNode *node);

/* wabiz-receipts.c: read receipts, typing, ticks */
/* An inbound message @wamid (at @timestamp) was shown in @name's conversation. */
void wabiz_receipts_inbound(WabizAccount *wa, const char *name, const char *wamid, gint64 timestamp);
/* WhatsApp accepted the agent's reply to @name. */
void wabiz_receipts_replied(WabizAccount *wa, const char *name);
void wabiz_receipts_conv_updated(PurpleConversation *conv, PurpleConvUpdateType type, gpointer data);
unsigned int wabiz_send_typing(PurpleConnection *gc, const char *name, PurpleTypingState state);
void wabiz_receipts_read_done(WabizAccount *wa, const char *to, const char *wamid, gboolean typing,
                              const WaGraphError *error);
/* Our newest message to @name was accepted as @wamid. */
void wabiz_receipts_sent(WabizAccount *wa, const char *name, const char *wamid);
/* A status of our message @st (stored; @changed: it moved the message's status). */
void wabiz_receipts_status(WabizAccount *wa, const char *name, const WaStatus *st, gboolean changed);
WaTicksPolicy wabiz_ticks_policy(WabizAccount *wa);
/* The tooltip's and Get Info's lines: the last message's state and pricing category. */
void wabiz_receipts_info(PurpleBuddy *buddy, PurpleNotifyUserInfo *info);
PurpleCmdRet wabiz_cmd_receipts(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data);
PurpleMenuAction *wabiz_receipts_menu(PurpleBuddy *buddy);
void wabiz_receipts_stop(WabizAccount *wa);
/* @name was erased: what memory holds about them goes too. */
void wabiz_receipts_forget(WabizAccount *wa, const char *name);

/* wabiz-template.c: the template catalogue, /template, /templates */
void wabiz_templates_start(WabizAccount *wa); /* signed on: the stored catalogue, refreshed when due */
void wabiz_templates_stop(WabizAccount *wa);
/* A template webhook (status, quality, category, components): the notice
 * and a refresh; FALSE when @change is not one. */
gboolean wabiz_templates_webhook(WabizAccount *wa, const WaChange *change);
PurpleCmdRet wabiz_cmd_template(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data);
PurpleCmdRet wabiz_cmd_templates(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data);
void wabiz_templates_action(PurplePluginAction *action);
/* Calls @func once the catalogue is there (@error: why it could not be had);
 * wabiz_templates_catalogue() then gives it (WaTemplate*, borrowed). */
typedef void (*WabizTemplatesReadyFunc)(WabizAccount *wa, const char *error, gpointer data);
void wabiz_templates_with(WabizAccount *wa, WabizTemplatesReadyFunc func, gpointer data, GDestroyNotify free_data);
GPtrArray *wabiz_templates_catalogue(WabizAccount *wa);
/* The "Send template..." dialog for customer @to (not in BitlBee); @offered:
 * text just went into a closed window (nothing said when no template can go). */
void wabiz_template_dialog(WabizAccount *wa, const char *to, gboolean offered);
PurpleMenuAction *wabiz_template_menu(PurpleBuddy *buddy); /* NULL where not offered */
/* wabiz-consent.c: the consent ledger (/optin, /optout, /consent, opt-outs from
 * customers and WhatsApp) and the check before a template goes */
typedef void (*WabizConsentFunc)(WabizAccount *wa, gboolean allowed, const char *why, gpointer data);
/* Whether a template of @category ("MARKETING", "UTILITY", "AUTHENTICATION", as Meta names it) may go to store customer @customer_id (address @to) now; @why: a translated sentence for the agent when refused. Reads the ledger and the suppression list each time (checked right before each send). */
/* (@customer_id NULL: no ledger rows; @to NULL: no suppression check and no
 * window. @done runs once, possibly before this returns; not at all when the
 * account signs off first: the store's pending requests are dropped.) */
void wabiz_consent_check(WabizAccount *wa, const char *customer_id, const char *to, const char *category,
                         WabizConsentFunc done, gpointer data);
/* As wabiz_consent_check(), with the verdict (WA_CONSENT_ALLOWED or why not). */
typedef void (*WabizConsentVerdictFunc)(WabizAccount *wa, WaConsentVerdict verdict, const char *why, gpointer data);
void wabiz_consent_check_verdict(WabizAccount *wa, const char *customer_id, const char *to, const char *category,
                                 WabizConsentVerdictFunc done, gpointer data);
/* @recorded: the scopes a row was written for (a repeated automatic change
 * writes none); @error when the store failed. */
typedef void (*WabizConsentRecordFunc)(WabizAccount *wa, WaConsentScopes recorded, const GError *error, gpointer data);
/* Appends @state for each of @scopes (WA_CONSENT_MARKETING, WA_CONSENT_UTILITY
 * or WA_CONSENT_ALL) of store customer @customer_id, from
 * @source ("agent", "import", ...; plaintext: never personal data), with
 * @note (sealed; may be NULL) at @at (0 = now); audited by the store. A
 * source other than "agent" writes nothing when the latest row of the scope
 * already has that state from that source. @done may be NULL; it is not
 * called when the account signs off first (the store drops the request). */
void wabiz_consent_record(WabizAccount *wa, const char *customer_id, WaConsentScopes scopes, WaStoreConsentState state,
                          const char *source, const char *note, gint64 at, WabizConsentRecordFunc done, gpointer data);
PurpleCmdRet wabiz_cmd_optin(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data);
PurpleCmdRet wabiz_cmd_optout(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data);
PurpleCmdRet wabiz_cmd_consent(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data);
PurpleMenuAction *wabiz_consent_menu(PurpleBuddy *buddy);
/* What customers and WhatsApp say about consent is recorded before the
 * event that said it is acknowledged: each function below returns how many
 * ledger writes it started, and calls @settled (may be NULL) once for each
 * when it is over (committed, or refused with a line), never when the
 * store closed first. */
typedef void (*WabizConsentSettledFunc)(gpointer data);
/* A customer's message shown in @who's conversation: an opt-out keyword or
 * button payload records the opt-out, with a line. */
guint wabiz_consent_inbound(WabizAccount *wa, const char *who, const WaMessage *msg, WabizConsentSettledFunc settled,
                            gpointer data);
/* The user_preferences webhook: marketing "stop" and "resume". */
guint wabiz_consent_preferences(WabizAccount *wa, const WaChange *change, WabizConsentSettledFunc settled,
                                gpointer data);
/* A send to @who failed with @error: 131050 records a marketing opt-out. */
guint wabiz_consent_api_error(WabizAccount *wa, const char *who, const WaGraphError *error,
                              WabizConsentSettledFunc settled, gpointer data);

/* wabiz-campaign.c: notifications to many customers */
void wabiz_campaigns_start(WabizAccount *wa); /* signed on: campaigns of earlier sessions reopen */
void wabiz_campaigns_stop(WabizAccount *wa);
PurpleCmdRet wabiz_cmd_notify(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data);
PurpleCmdRet wabiz_cmd_campaign(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data);
void wabiz_campaign_action(PurplePluginAction *action);
/* Whether chat @id is a campaign's conversation; then @text typed there is answered. */
gboolean wabiz_campaign_chat_text(WabizAccount *wa, int id, const char *text);
/* The outbox's events for campaign sends (outbox id @id to @to): TRUE when
 * the send was a campaign's (its conversation is not written to). */
typedef enum {
  WABIZ_CAMPAIGN_SENT,
  WABIZ_CAMPAIGN_FAILED,
  WABIZ_CAMPAIGN_UNCERTAIN,
  WABIZ_CAMPAIGN_SKIPPED,
} WabizCampaignOutcome;
gboolean wabiz_campaign_outcome(WabizAccount *wa, guint64 id, const char *to, WabizCampaignOutcome outcome,
                                const WaGraphError *error);
gboolean wabiz_campaign_waiting(WabizAccount *wa, const char *to, const WaGraphError *error);
/* One of the agent's own messages went out: it used the number's throughput,
 * which campaigns then leave (the chat never waits for them). */
void wabiz_campaign_chat_sent(WabizAccount *wa);

/* wabiz-plugin.c */
/* Whether the @len bytes at @name are the name of one of the plugin's commands (or "help"). */
gboolean wabiz_command_known(const char *name, gsize len);
const char *wabiz_account_string(PurpleAccount *account, const char *key);
WabizAccount *wabiz_account_data(PurpleAccount *account);
void wabiz_connect_signals(void);
