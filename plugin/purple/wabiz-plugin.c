/* wabiz-plugin.c: the plugin and prpl tables, account options, status types
 * and plugin-wide set-up (gettext, debug routing). Per-account work lives in
 * wabiz-login.c and wabiz-send.c. */
#include "wabiz.h"

#include <string.h>

#include <locale.h>

#include "wabiz-config.h"

const char *
wabiz_account_string(PurpleAccount *account, const char *key)
{
  const char *def = NULL;

  if (g_str_equal(key, WABIZ_OPT_API_BASE_URL))
    def = WA_GRAPH_DEFAULT_BASE_URL;
  return purple_account_get_string(account, key, def);
}

/* The signed-in account's data, or NULL while it is not connected. */
WabizAccount *
wabiz_account_data(PurpleAccount *account)
{
  PurpleConnection *gc = account != NULL ? purple_account_get_connection(account) : NULL;

  return gc != NULL ? purple_connection_get_protocol_data(gc) : NULL;
}

static const char *
wabiz_list_icon(PurpleAccount *account, PurpleBuddy *buddy)
{
  return WABIZ_ICON_NAME;
}

static GList *
wabiz_status_types(PurpleAccount *account)
{
  GList *types = NULL;

  types = g_list_append(types, purple_status_type_new_with_attrs(PURPLE_STATUS_AVAILABLE, "available", NULL, TRUE, TRUE,
                                                                 FALSE, "message", _("Message"),
                                                                 purple_value_new(PURPLE_TYPE_STRING), NULL));
  types = g_list_append(types, purple_status_type_new_with_attrs(PURPLE_STATUS_AWAY, "away", NULL, TRUE, TRUE, FALSE,
                                                                 "message", _("Message"),
                                                                 purple_value_new(PURPLE_TYPE_STRING), NULL));
  types = g_list_append(types, purple_status_type_new_full(PURPLE_STATUS_OFFLINE, "offline", NULL, TRUE, TRUE, FALSE));
  return types;
}

static void
wabiz_debug_http(const char *message)
{
  purple_debug_info("wabiz-http", "%s\n", message);
}

static PurplePlugin *plugin_handle;
static gboolean signals_connected;

/* Protocol plugins load before libpurple registers its conversation signals,
 * so the connection waits for the first sign-on. */
void
wabiz_connect_signals(void)
{
  if (signals_connected)
    return;
  signals_connected = TRUE;
  purple_signal_connect(purple_conversations_get_handle(), "conversation-created", plugin_handle,
                        PURPLE_CALLBACK(wabiz_conv_created_cb), NULL);
  purple_signal_connect(purple_conversations_get_handle(), "conversation-updated", plugin_handle,
                        PURPLE_CALLBACK(wabiz_receipts_conv_updated), NULL);
}

/* The account's actions menu (Pidgin: Accounts > the account). */
static GList *
wabiz_actions(PurplePlugin *plugin, gpointer context)
{
  PurpleConnection *gc = context;
  WabizAccount *wa = gc != NULL ? purple_connection_get_protocol_data(gc) : NULL;
  GList *actions = NULL;

  if (wa != NULL && wabiz_passphrase_in_use(wa))
    actions =
      g_list_append(actions, purple_plugin_action_new(_("Change store passphrase..."), wabiz_passphrase_change_action));
  if (wa != NULL && wa->store != NULL && wa->store_header != NULL)
    actions = g_list_append(actions, purple_plugin_action_new(_("Rotate store key..."), wabiz_store_rotate_action));
  if (wa != NULL && wa->templates != NULL) {
    actions = g_list_append(actions, purple_plugin_action_new(_("Message templates..."), wabiz_templates_action));
    actions = g_list_append(actions, purple_plugin_action_new(_("Send notification..."), wabiz_campaign_action));
  }
  return actions;
}

/* Every account action is also a command, for clients without an actions
 * menu (BitlBee: typed as text to the "wabiz" contact or in a query). */
static PurpleCmdRet
cmd_action(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data)
{
  PurplePluginAction action = {.context = purple_conversation_get_gc(conv)};

  ((void (*)(PurplePluginAction *)) data)(&action);
  return PURPLE_CMD_RET_OK;
}

/* The plugin's commands, in every IM conversation of its accounts; help
 * texts translated when registered. */
static const struct {
  const char *name;
  const char *args;
  PurpleCmdFunc func;
  const char *help;
  void (*action)(PurplePluginAction *action); /* for cmd_action */
  PurpleCmdFlag flags;                        /* more than IM conversations: PURPLE_CMD_FLAG_CHAT */
} commands[] = {
  {"export", "s", wabiz_cmd_export, N_("export FILE: write everything stored about this customer to FILE (JSON)."),
   NULL},
  {"save", "s", wabiz_cmd_save,
   N_("save N [PATH]: write attachment N of this conversation, decrypted, to PATH (a folder or a file name; "
      "default: the downloads folder). Never overwrites a file."),
   NULL},
  {"erase", "", wabiz_cmd_erase, N_("erase: delete everything stored about this customer (asks first)."), NULL},
  {"resend", "s", wabiz_cmd_resend,
   N_("resend [all|drop|list]: decide about messages that may have been sent; without a word, asks."), NULL},
  {"sendfile", "s", wabiz_cmd_sendfile,
   N_("sendfile PATH [CAPTION]: send the file at PATH (in double quotes if it has spaces) to this customer, as an "
      "image, audio, video, sticker or document by its content, with an optional caption (in a group chat: to the "
      "group)."),
   NULL, PURPLE_CMD_FLAG_CHAT},
  {"passphrase", "", cmd_action, N_("passphrase: change the passphrase of the account's stored messages."),
   wabiz_passphrase_change_action},
  {"receipts", "s", wabiz_cmd_receipts,
   N_("receipts [seen|typing|reply|never|default]: when read receipts go to this customer; without a word, shows it."),
   NULL},
  {"rotatekey", "", cmd_action,
   N_("rotatekey: encrypt the account's stored messages under a new key (a new recovery code)."),
   wabiz_store_rotate_action},
  {"addcontact", "s", wabiz_cmd_addcontact,
   N_("addcontact N: add contact N shared in this conversation (numbered in its line) as a buddy."), NULL},
  {"reply", "s", wabiz_cmd_reply,
   N_("reply [N] TEXT: answer the customer's last message (or the N-th last, 1 to 50), quoting it."), NULL,
   PURPLE_CMD_FLAG_CHAT},
  {"react", "s", wabiz_cmd_react,
   N_("react [EMOJI]: react with one emoji to the customer's last message; without one, remove the reaction."), NULL,
   PURPLE_CMD_FLAG_CHAT},
  {"location", "s", wabiz_cmd_location,
   N_("location LAT LON [NAME]: send a location (latitude -90 to 90, longitude -180 to 180, decimal degrees)."), NULL,
   PURPLE_CMD_FLAG_CHAT},
  {"buttons", "s", wabiz_cmd_buttons,
   N_("buttons BODY | B1 | B2 [| B3]: send a text with 1 to 3 reply buttons (titles up to 20 characters, "
      "different; text up to 1024)."),
   NULL, PURPLE_CMD_FLAG_CHAT},
  {"list", "s", wabiz_cmd_list,
   N_("list BUTTON | BODY | ROW[; ROW...]: send a menu of up to 10 rows behind a button (up to 20 characters); "
      "a row is \"Title\" or \"Title - description\" (24 and 72 characters)."),
   NULL, PURPLE_CMD_FLAG_CHAT},
  {"template", "s", wabiz_cmd_template,
   N_("template NAME [LANG] VALUE | VALUE | key=value ...: send an approved message template (also when the "
      "24-hour window is closed); values in placeholder order, or name=value for named ones, header=FILE_OR_MEDIA_ID, "
      "buttonN=URL_SUFFIX, code=COUPON. /templates lists them."),
   NULL},
  {"templates", "s", wabiz_cmd_templates,
   N_("templates [NAME|refresh]: the account's message templates (status, category, quality, language, placeholders "
      "or why one cannot be sent); with NAME its text; refresh fetches them again."),
   NULL, PURPLE_CMD_FLAG_CHAT},
  {"askphone", "s", wabiz_cmd_askphone,
   N_("askphone [TEXT]: ask a customer known only by a business-scoped user ID to share their phone number."), NULL,
   PURPLE_CMD_FLAG_CHAT},
  {"optin", "s", wabiz_cmd_optin,
   N_("optin [marketing|utility]: record that this customer agreed to marketing (the default) or utility templates."),
   NULL},
  {"optout", "s", wabiz_cmd_optout,
   N_("optout [marketing|utility|all]: record that this customer opted out (default: all); such templates are "
      "not sent to them."),
   NULL},
  {"consent", "", wabiz_cmd_consent,
   N_("consent: show this customer's consent per scope (with source and time) and which templates may go now."), NULL},
  {"notify", "s", wabiz_cmd_notify,
   N_("notify TEMPLATE [LANG] FILE.csv, notify TEMPLATE [LANG] @GROUP [V1 | V2 ...], or notify TEMPLATE [LANG] "
      "+NUMBER,+NUMBER,... [V1 | V2 ...]: send a template to many customers (a campaign): from a CSV file (columns "
      "to, one per placeholder, optional consent), to a buddy group, or to a selection (numbers or buddy names "
      "separated by commas, no blanks around them, \"quoted\" when they have blanks; one alone: +NUMBER, \"NAME\" "
      "or NAME,) with the same values for all; asks once before "
      "sending, then reports in the campaign's own chat."),
   NULL, PURPLE_CMD_FLAG_CHAT},
  {"pause", "", wabiz_cmd_campaign, N_("pause: in a campaign's chat, stop sending until /resume."), NULL,
   PURPLE_CMD_FLAG_CHAT},
  {"resume", "", wabiz_cmd_campaign, N_("resume: in a campaign's chat, go on sending."), NULL, PURPLE_CMD_FLAG_CHAT},
  {"cancel", "", wabiz_cmd_campaign,
   N_("cancel: in a campaign's chat, send to nobody else (what is already under way finishes)."), NULL,
   PURPLE_CMD_FLAG_CHAT},
  {"report", "s", wabiz_cmd_campaign,
   N_("report FILE: in a campaign's chat, write every recipient's outcome to FILE (CSV: recipient, message id, "
      "status, code, pricing category)."),
   NULL, PURPLE_CMD_FLAG_CHAT},
};

static PurpleCmdId command_ids[G_N_ELEMENTS(commands)];

gboolean
wabiz_command_known(const char *name, gsize len)
{
  if (len == 4 && strncmp(name, "help", 4) == 0)
    return TRUE;
  for (guint i = 0; i < G_N_ELEMENTS(commands); i++)
    if (strlen(commands[i].name) == len && strncmp(commands[i].name, name, len) == 0)
      return TRUE;
  return FALSE;
}

static void
commands_register(void)
{
  const PurpleCmdFlag flags = PURPLE_CMD_FLAG_IM | PURPLE_CMD_FLAG_PRPL_ONLY | PURPLE_CMD_FLAG_ALLOW_WRONG_ARGS;

  for (guint i = 0; i < G_N_ELEMENTS(commands); i++)
    command_ids[i] =
      purple_cmd_register(commands[i].name, commands[i].args, PURPLE_CMD_P_PRPL, flags | commands[i].flags,
                          WABIZ_PRPL_ID, commands[i].func, _(commands[i].help), (void *) commands[i].action);
}

static void
commands_unregister(void)
{
  for (guint i = 0; i < G_N_ELEMENTS(command_ids); i++) {
    if (command_ids[i] != 0)
      purple_cmd_unregister(command_ids[i]);
    command_ids[i] = 0;
  }
}

static gboolean
plugin_load(PurplePlugin *plugin)
{
  plugin_handle = plugin;
  wabiz_test_hooks_register(plugin);
  commands_register();
  return TRUE;
}

static gboolean
plugin_unload(PurplePlugin *plugin)
{
  purple_signals_disconnect_by_handle(plugin);
  purple_plugin_ipc_unregister_all(plugin);
  commands_unregister();
  wabiz_outbox_unload();
  wabiz_passphrase_forget_all();
  signals_connected = FALSE;
  return TRUE;
}

static PurplePluginProtocolInfo prpl_info = {
  .options = OPT_PROTO_IM_IMAGE, /* images in IMs (pasted ones go out as images); the token is the password */
  .icon_spec = NO_BUDDY_ICONS,   /* the business profile picture comes with profile editing */
  .list_icon = wabiz_list_icon,
  .status_types = wabiz_status_types,
  .login = wabiz_login,
  .close = wabiz_close,
  .send_im = wabiz_send_im,
  .send_typing = wabiz_send_typing,
  .normalize = wabiz_normalize,
  .status_text = wabiz_status_text,
  .tooltip_text = wabiz_tooltip_text,
  .get_info = wabiz_get_info,
  .chat_send = wabiz_chat_send,
  .can_receive_file = wabiz_can_receive_file,
  .send_file = wabiz_send_file,
  .blist_node_menu = wabiz_blist_node_menu,
  .struct_size = sizeof(PurplePluginProtocolInfo),
};

static PurplePluginInfo info = {
  .magic = PURPLE_PLUGIN_MAGIC,
  .major_version = PURPLE_MAJOR_VERSION,
  .minor_version = PURPLE_MINOR_VERSION,
  .type = PURPLE_PLUGIN_PROTOCOL,
  .priority = PURPLE_PRIORITY_DEFAULT,
  .id = WABIZ_PRPL_ID,
  .name = "WhatsApp Business",
  .version = WABIZ_VERSION,
  .summary = N_("WhatsApp Business Platform (Cloud API) protocol plugin"),
  .description = N_("Chat with customers of a WhatsApp Business number through Meta's Cloud API "
                    "or a compatible provider."),
  .author = "purple-wabiz developers",
  .homepage = "https://github.com/purple-wabiz/purple-wabiz",
  .load = plugin_load,
  .unload = plugin_unload,
  .extra_info = &prpl_info,
  .actions = wabiz_actions,
};

static void
add_string_option(const char *label, const char *key, const char *def)
{
  prpl_info.protocol_options =
    g_list_append(prpl_info.protocol_options, purple_account_option_string_new(label, key, def));
}

/* A list option of @n (label, value) pairs; the first is the default. */
static void
add_list_option(const char *label, const char *key, const char *const items[][2], guint n)
{
  GList *list = NULL;

  for (guint i = 0; i < n; i++) {
    PurpleKeyValuePair *pair = g_new0(PurpleKeyValuePair, 1);

    pair->key = g_strdup(_(items[i][0]));
    pair->value = g_strdup(items[i][1]);
    list = g_list_append(list, pair);
  }
  prpl_info.protocol_options =
    g_list_append(prpl_info.protocol_options, purple_account_option_list_new(label, key, list));
}

static void
init_plugin(PurplePlugin *plugin)
{
  const char *localedir = g_getenv("WABIZ_LOCALEDIR");
  PurpleAccountOption *opt;

  bindtextdomain(GETTEXT_PACKAGE, localedir != NULL ? localedir : WABIZ_LOCALEDIR);
  bind_textdomain_codeset(GETTEXT_PACKAGE, "UTF-8");
  /* translate the tables now that the domain is bound */
  info.summary = (char *) _(info.summary);
  info.description = (char *) _(info.description);
  wa_http_set_log_func(wabiz_debug_http);

  add_string_option(_("WhatsApp Business Account ID"), WABIZ_OPT_WABA_ID, "");
  add_string_option(_("API base URL"), WABIZ_OPT_API_BASE_URL, WA_GRAPH_DEFAULT_BASE_URL);
  add_string_option(_("Default country code for national numbers"), WABIZ_OPT_DEFAULT_CC, "");
  opt = purple_account_option_string_new(_("App secret (checks webhook signatures)"), WABIZ_OPT_APP_SECRET, "");
  purple_account_option_set_masked(opt, TRUE);
  prpl_info.protocol_options = g_list_append(prpl_info.protocol_options, opt);
  opt = purple_account_option_string_new(_("Webhook verify token"), WABIZ_OPT_VERIFY_TOKEN, "");
  purple_account_option_set_masked(opt, TRUE);
  prpl_info.protocol_options = g_list_append(prpl_info.protocol_options, opt);
  add_string_option(_("Webhook listen address (an IP address, or unix:/path for a local proxy)"),
                    WABIZ_OPT_WEBHOOK_BIND, "127.0.0.1");
  prpl_info.protocol_options = g_list_append(prpl_info.protocol_options,
                                             purple_account_option_int_new(_("Webhook listen port (0 = any free port)"),
                                                                           WABIZ_OPT_WEBHOOK_PORT, 8090));
  add_string_option(_("Webhook path"), WABIZ_OPT_WEBHOOK_PATH, "/webhook");
  add_string_option(_("Webhook socket group (unix: address only; the proxy's user must be in it)"),
                    WABIZ_OPT_WEBHOOK_SOCKET_GROUP, "");
  add_string_option(_("Public webhook URL (what Meta calls; shown in the set-up notice)"), WABIZ_OPT_WEBHOOK_PUBLIC_URL,
                    "");
  add_string_option(_("Webhook TLS certificate (PEM file; needed to listen on a public address)"),
                    WABIZ_OPT_WEBHOOK_TLS_CERT, "");
  add_string_option(_("Webhook TLS key (PEM file)"), WABIZ_OPT_WEBHOOK_TLS_KEY, "");
  prpl_info.protocol_options =
    g_list_append(prpl_info.protocol_options,
                  purple_account_option_bool_new(_("Allow plain HTTP on a public address (behind a TLS proxy only)"),
                                                 WABIZ_OPT_WEBHOOK_PUBLIC_HTTP, FALSE));
  prpl_info.protocol_options =
    g_list_append(prpl_info.protocol_options,
                  purple_account_option_int_new(_("Warn when sends get no webhook for (seconds, 0 = never)"),
                                                WABIZ_OPT_WEBHOOK_SILENCE, 1800));
  prpl_info.protocol_options =
    g_list_append(prpl_info.protocol_options,
                  purple_account_option_int_new(_("Delete message texts older than (days, 0 = keep)"),
                                                WABIZ_OPT_RETENTION_DAYS, 0));
  prpl_info.protocol_options =
    g_list_append(prpl_info.protocol_options,
                  purple_account_option_int_new(_("Ask about messages that may have been sent after (seconds)"),
                                                WABIZ_OPT_UNCERTAIN_GRACE, 120));
  prpl_info.protocol_options = g_list_append(
    prpl_info.protocol_options,
    purple_account_option_bool_new(_("Pseudonymous buddy aliases (profile names stay out of the buddy list file)"),
                                   WABIZ_OPT_PSEUDONYMOUS, FALSE));
  prpl_info.protocol_options =
    g_list_append(prpl_info.protocol_options,
                  purple_account_option_bool_new(_("Keep the webhook receiver running when the messenger exits"),
                                                 WABIZ_OPT_RECEIVER_KEEP_RUNNING, TRUE));
  prpl_info.protocol_options =
    g_list_append(prpl_info.protocol_options,
                  purple_account_option_int_new(_("Webhook events kept while signed off (MiB)"),
                                                WABIZ_OPT_RECEIVER_MAX_PENDING_MB, WABIZ_DEFAULT_MAX_PENDING_MB));
  prpl_info.protocol_options =
    g_list_append(prpl_info.protocol_options,
                  purple_account_option_int_new(_("API request timeout (seconds)"), WABIZ_OPT_HTTP_TIMEOUT, 60));
  prpl_info.protocol_options =
    g_list_append(prpl_info.protocol_options, purple_account_option_int_new(_("Largest attachment to download (MiB)"),
                                                                            WABIZ_OPT_MEDIA_MAX_MB, 100));
  prpl_info.protocol_options =
    g_list_append(prpl_info.protocol_options,
                  purple_account_option_int_new(_("First retry delay for failed attachment downloads (milliseconds)"),
                                                WABIZ_OPT_MEDIA_RETRY_MS, 30000));
  prpl_info.protocol_options =
    g_list_append(prpl_info.protocol_options,
                  purple_account_option_bool_new(_("BitlBee: offer attachments as file transfers (staged in /tmp)"),
                                                 WABIZ_OPT_BITLBEE_TRANSFERS, TRUE));
  prpl_info.protocol_options =
    g_list_append(prpl_info.protocol_options,
                  purple_account_option_int_new(_("First retry delay for unsent messages (milliseconds)"),
                                                WABIZ_OPT_RETRY_DELAY_MS, 1000));
  add_string_option(_("Default template language (such as en_US; for templates in several languages)"),
                    WABIZ_OPT_TEMPLATE_LANGUAGE, "");
  prpl_info.protocol_options =
    g_list_append(prpl_info.protocol_options,
                  purple_account_option_bool_new(_("Send marketing templates through the Marketing Messages API"),
                                                 WABIZ_OPT_MARKETING_ENDPOINT, FALSE));
  prpl_info.protocol_options =
    g_list_append(prpl_info.protocol_options,
                  purple_account_option_bool_new(_("Keep libpurple's plain-text conversation logs (not encrypted)"),
                                                 WABIZ_OPT_PLAINTEXT_LOG, FALSE));
  {
    static const char *const images[][2] = {
      {N_("Inline (Pidgin)"), WABIZ_MEDIA_IMAGES_INLINE},
      {N_("As file transfers"), WABIZ_MEDIA_IMAGES_TRANSFER},
      {N_("Both"), WABIZ_MEDIA_IMAGES_BOTH},
    };
    static const char *const protection[][2] = {
      {N_("Key file"), WABIZ_STORE_KEYFILE},
      {N_("Passphrase"), WABIZ_STORE_PASSPHRASE},
    };

    add_list_option(_("Pictures from customers"), WABIZ_OPT_MEDIA_IMAGES, images, G_N_ELEMENTS(images));
    add_list_option(_("Store protection"), WABIZ_OPT_STORE_PROTECTION, protection, G_N_ELEMENTS(protection));
  }
  {
    static const char *const receipts[][2] = {
      {N_("When I type or reply"), "typing"},
      {N_("When the conversation is seen"), "seen"},
      {N_("When I reply"), "reply"},
      {N_("Never"), "never"},
    };
    static const char *const ticks[][2] = {
      {N_("Failures only"), "failures"},
      {N_("Delivered and read too"), "all"},
      {N_("None (failures are still written)"), "none"},
    };

    add_list_option(_("Send read receipts"), WABIZ_OPT_RECEIPTS, receipts, G_N_ELEMENTS(receipts));
    add_list_option(_("Status lines in conversations"), WABIZ_OPT_TICKS, ticks, G_N_ELEMENTS(ticks));
  }
  {
    static const char *const utility[][2] = {
      {N_("Opt-in required (except in an open service window)"), WA_CONSENT_UTILITY_REQUIRED_WORD},
      {N_("Not required unless opted out"), WA_CONSENT_UTILITY_NOT_REQUIRED_WORD},
    };

    add_list_option(_("Utility templates"), WABIZ_OPT_UTILITY_CONSENT, utility, G_N_ELEMENTS(utility));
  }
  {
    static const char *const throughput[][2] = {
      {N_("80 messages per second"), "80"},
      {N_("1,000 messages per second"), "1000"},
      {N_("20 messages per second (shared with the Business app)"), "20"},
    };

    add_list_option(_("Campaign throughput"), WABIZ_OPT_CAMPAIGN_THROUGHPUT, throughput, G_N_ELEMENTS(throughput));
  }
  {
    static const char *const portfolio[][2] = {
      {N_("As the API says"), "api"},
      {N_("250 customers a day"), "250"},
      {N_("2,000 customers a day"), "2000"},
      {N_("10,000 customers a day"), "10000"},
      {N_("100,000 customers a day"), "100000"},
      {N_("Unlimited"), "0"},
    };

    add_list_option(_("Daily limit of customers reached with templates"), WABIZ_OPT_PORTFOLIO_LIMIT, portfolio,
                    G_N_ELEMENTS(portfolio));
    add_string_option(_("Country calling codes closed to marketing templates (comma-separated, such as 7, 98)"),
                      WABIZ_OPT_MARKETING_CLOSED_COUNTRIES, "");
    add_string_option(_("Opt-out keywords (whole message; comma-separated; case and accents ignored)"),
                      WABIZ_OPT_OPTOUT_KEYWORDS, WABIZ_DEFAULT_OPTOUT_KEYWORDS);
    add_string_option(_("Template button payloads that opt out of marketing (comma-separated)"),
                      WABIZ_OPT_OPTOUT_PAYLOADS, WABIZ_DEFAULT_OPTOUT_PAYLOADS);
  }
}

PURPLE_INIT_PLUGIN(wabiz, init_plugin, info)
