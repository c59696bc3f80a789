/* wabiz-receipts.c: read receipts and the typing indicator to customers,
 * and what the plugin shows of our messages' statuses (tick lines, the
 * tooltip and Get Info). The decisions are plugin/core's wa-receipts; this
 * file feeds them the moments libpurple reports (a conversation seen, the
 * agent typing, a reply), keeps each conversation's state in memory, and
 * stores a customer's own receipt policy with the customer's settings.
 * Must not: send a receipt for a group, more than one per newest inbound
 * message, or through the outbox (receipts are not worth its durability). */
#include "wabiz.h"

#define SETTING_RECEIPTS "receipts" /* a customer's override: wa_receipt_policy_to_string */
#define TICKS_INTERVAL_MS 4000      /* at most one tick line per conversation this often */

typedef struct {
  WabizAccount *wa;
  char *name; /* the buddy's name (canonical customer id) */
  WaReceiptState st;
  WaLastStatus last;
  WaTicks *ticks;
  guint ticks_timer;
  WaReceiptPolicy override;
  gboolean override_known; /* loaded from the store (or there is nothing to load) */
  gboolean loading;
  gboolean pending_typing; /* moments waiting for the override */
  gboolean pending_other;
  WaReceiptMoment pending_moment;
} Conv;

static void
conv_free(gpointer data)
{
  Conv *c = data;

  if (c->ticks_timer != 0)
    purple_timeout_remove(c->ticks_timer);
  wa_receipt_state_clear(&c->st);
  wa_last_status_clear(&c->last);
  wa_ticks_free(c->ticks);
  g_free(c->name);
  g_free(c);
}

static GHashTable *
table(WabizAccount *wa)
{
  if (wa->receipts == NULL)
    wa->receipts = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, conv_free);
  return wa->receipts;
}

static Conv *
conv_get(WabizAccount *wa, const char *name)
{
  Conv *c = g_hash_table_lookup(table(wa), name);

  if (c == NULL) {
    c = g_new0(Conv, 1);
    c->wa = wa;
    c->name = g_strdup(name);
    c->ticks = wa_ticks_new();
    g_hash_table_insert(wa->receipts, c->name, c);
  }
  return c;
}

void
wabiz_receipts_stop(WabizAccount *wa)
{
  g_clear_pointer(&wa->receipts, g_hash_table_destroy);
}

void
wabiz_receipts_forget(WabizAccount *wa, const char *name)
{
  if (wa->receipts != NULL)
    g_hash_table_remove(wa->receipts, name);
}

static const char *
customer_id(WabizAccount *wa, const char *name)
{
  PurpleBuddy *buddy = purple_find_buddy(wa->account, name);

  return buddy != NULL ? purple_blist_node_get_string(&buddy->node, WABIZ_NODE_CUSTOMER_ID) : NULL;
}

static WaReceiptPolicy
account_policy(WabizAccount *wa)
{
  return wa_receipt_policy_from_string(purple_account_get_string(wa->account, WABIZ_OPT_RECEIPTS, NULL), NULL);
}

static WaReceiptPolicy
effective(Conv *c)
{
  return wa_receipt_policy_effective(account_policy(c->wa), c->override, !wabiz_bitlbee());
}

WaTicksPolicy
wabiz_ticks_policy(WabizAccount *wa)
{
  return wa_ticks_policy_from_string(purple_account_get_string(wa->account, WABIZ_OPT_TICKS, NULL));
}

/* ---- sending ---------------------------------------------------------------- */

static void
decide(Conv *c, WaReceiptMoment moment)
{
  WabizAccount *wa = c->wa;
  WaReceiptAction action = wa_receipt_decide(&c->st, effective(c), moment, wabiz_now());

  if (action == WA_RECEIPT_NONE || wa->sender == NULL)
    return;
  purple_debug_info("wabiz", "%s for a customer's newest message\n",
                    action == WA_RECEIPT_TYPING_INDICATOR ? "typing indicator" : "read receipt");
  wa_sender_mark_read(wa->sender, c->name, c->st.newest, action == WA_RECEIPT_TYPING_INDICATOR);
  wa_receipt_state_sent(&c->st, action, wabiz_now());
}

/* A store request about @name's conversation. */
typedef struct {
  WabizAccount *wa;
  char *name;
} NameJob;

static NameJob *
name_job_new(WabizAccount *wa, const char *name)
{
  NameJob *job = g_new0(NameJob, 1);

  job->wa = wa;
  job->name = g_strdup(name);
  return job;
}

static void
name_job_free(NameJob *job)
{
  g_free(job->name);
  g_free(job);
}

static void
loaded_cb(const char *value, const GError *error, gpointer data)
{
  NameJob *job = data;
  Conv *c;

  wabiz_store_release(job->wa, job);
  c = g_hash_table_lookup(table(job->wa), job->name);
  if (c != NULL) {
    if (error != NULL)
      purple_debug_warning("wabiz", "a customer's receipt setting could not be read: %s\n", error->message);
    c->loading = FALSE;
    /* set meanwhile (/receipts): that is newer than what was read */
    if (!c->override_known)
      c->override = wa_receipt_policy_from_string(value, NULL);
    c->override_known = TRUE;
    if (c->pending_typing)
      decide(c, WA_RECEIPT_TYPING);
    if (c->pending_other)
      decide(c, c->pending_moment);
    c->pending_typing = c->pending_other = FALSE;
  }
  name_job_free(job);
}

/* The customer's override is read once per session, before the first
 * decision. */
static gboolean
override_ready(Conv *c)
{
  WabizAccount *wa = c->wa;
  const char *id;
  NameJob *job;

  if (c->override_known)
    return TRUE;
  if (c->loading)
    return FALSE;
  id = customer_id(wa, c->name);
  if (id == NULL || wa->store == NULL) {
    c->override_known = TRUE; /* nothing stored about this customer yet */
    return TRUE;
  }
  c->loading = TRUE;
  job = name_job_new(wa, c->name);
  wa_store_setting_get(wa->store, id, SETTING_RECEIPTS, loaded_cb,
                       wabiz_store_hold(wa, job, (GDestroyNotify) name_job_free));
  return FALSE;
}

static void
moment(WabizAccount *wa, const char *name, WaReceiptMoment m)
{
  Conv *c = g_hash_table_lookup(table(wa), name);

  if (c == NULL || c->st.newest == NULL)
    return; /* nothing received this session: nothing to mark */
  if (override_ready(c)) {
    decide(c, m);
  } else if (m == WA_RECEIPT_TYPING) {
    c->pending_typing = TRUE;
  } else {
    c->pending_other = TRUE;
    c->pending_moment = m;
  }
}

static gboolean
conv_seen(PurpleConversation *conv)
{
  return conv != NULL && purple_conversation_get_type(conv) == PURPLE_CONV_TYPE_IM &&
         purple_conversation_has_focus(conv);
}

void
wabiz_receipts_inbound(WabizAccount *wa, const char *name, const char *wamid, gint64 timestamp)
{
  Conv *c = conv_get(wa, name);

  wa_receipt_state_inbound(&c->st, wamid, timestamp);
  /* written into a conversation the agent is looking at: seen */
  if (conv_seen(wabiz_conv_im(wa->account, name, FALSE)))
    moment(wa, name, WA_RECEIPT_SEEN);
  else
    override_ready(c); /* read it now, so that a later moment need not wait */
}

void
wabiz_receipts_replied(WabizAccount *wa, const char *name)
{
  moment(wa, name, WA_RECEIPT_REPLY);
}

/* Pidgin and Finch update UNSEEN when a conversation gains focus. */
void
wabiz_receipts_conv_updated(PurpleConversation *conv, PurpleConvUpdateType type, gpointer data)
{
  PurpleAccount *account = purple_conversation_get_account(conv);
  WabizAccount *wa;

  if (type != PURPLE_CONV_UPDATE_UNSEEN || account == NULL ||
      g_strcmp0(purple_account_get_protocol_id(account), WABIZ_PRPL_ID) != 0 || !conv_seen(conv) ||
      (wa = wabiz_account_data(account)) == NULL)
    return;
  moment(wa, purple_conversation_get_name(conv), WA_RECEIPT_SEEN);
}

unsigned int
wabiz_send_typing(PurpleConnection *gc, const char *name, PurpleTypingState state)
{
  WabizAccount *wa = purple_connection_get_protocol_data(gc);

  if (wa != NULL && state == PURPLE_TYPING)
    moment(wa, name, WA_RECEIPT_TYPING);
  /* the client asks again after this many seconds of typing */
  return WA_TYPING_INTERVAL_S;
}

/* Receipts are best effort: a failure is logged, never shown. */
void
wabiz_receipts_read_done(WabizAccount *wa, const char *to, const char *wamid, gboolean typing,
                         const WaGraphError *error)
{
  g_autofree char *reason = NULL;

  if (error == NULL)
    return;
  reason = wa_graph_error_describe(error);
  purple_debug_warning("wabiz", "a %s was not accepted: %s\n", typing ? "typing indicator" : "read receipt", reason);
}

/* ---- the customer's own policy: /receipts and the buddy menu ------------------ */

static const char *
policy_text(WaReceiptPolicy policy)
{
  switch (policy) {
  case WA_RECEIPTS_SEEN:
    return wabiz_bitlbee() ? _("on reply (BitlBee cannot tell when a conversation is seen)")
                           : _("when the conversation is seen");
  case WA_RECEIPTS_TYPING:
    return _("when you type or reply");
  case WA_RECEIPTS_REPLY:
    return _("when you reply");
  case WA_RECEIPTS_NEVER:
    return _("never");
  default:
    return _("the account's setting");
  }
}

static void
tell_policy(WabizAccount *wa, const char *name)
{
  Conv *c = conv_get(wa, name);
  g_autofree char *text = NULL;

  if (c->override != WA_RECEIPTS_DEFAULT)
    text = g_strdup_printf(_("Read receipts to this customer: %s (set for this customer)."), policy_text(c->override));
  else
    text = g_strdup_printf(_("Read receipts to this customer: %s (the account's setting)."),
                           policy_text(wa_receipt_policy_effective(account_policy(wa), WA_RECEIPTS_DEFAULT, TRUE)));
  wabiz_conv_write_plain(wabiz_conv_im(wa->account, name, TRUE), text, PURPLE_MESSAGE_SYSTEM, 0);
}

static void
set_cb(const GError *error, gpointer data)
{
  NameJob *job = data;

  wabiz_store_release(job->wa, job);
  if (error != NULL) {
    g_autofree char *text =
      g_strdup_printf(_("The receipt setting could not be stored (%s); it holds until you sign off."), error->message);

    wabiz_conv_write_plain(wabiz_conv_im(job->wa->account, job->name, TRUE), text, PURPLE_MESSAGE_ERROR, 0);
  } else {
    tell_policy(job->wa, job->name);
  }
  name_job_free(job);
}

/* Sets (DEFAULT: removes) @name's own policy; FALSE with a line saying why
 * when the customer is not known to the store yet. */
static gboolean
set_policy(WabizAccount *wa, const char *name, WaReceiptPolicy policy)
{
  const char *id = customer_id(wa, name);
  Conv *c;
  NameJob *job;

  if (id == NULL || wa->store == NULL) {
    wabiz_conv_write_plain(wabiz_conv_im(wa->account, name, TRUE),
                           _("This customer has no stored conversation yet: their receipt setting can be chosen once "
                             "a message has gone either way."),
                           PURPLE_MESSAGE_ERROR, 0);
    return FALSE;
  }
  c = conv_get(wa, name);
  c->override = policy;
  c->override_known = TRUE;
  job = name_job_new(wa, name);
  wa_store_setting_set(wa->store, id, SETTING_RECEIPTS,
                       policy == WA_RECEIPTS_DEFAULT ? NULL : wa_receipt_policy_to_string(policy), set_cb,
                       wabiz_store_hold(wa, job, (GDestroyNotify) name_job_free));
  return TRUE;
}

static void
show_cb(const char *value, const GError *error, gpointer data)
{
  NameJob *job = data;
  Conv *c;

  wabiz_store_release(job->wa, job);
  c = conv_get(job->wa, job->name);
  if (error == NULL && !c->override_known) {
    c->override = wa_receipt_policy_from_string(value, NULL);
    c->override_known = TRUE;
  }
  tell_policy(job->wa, job->name);
  name_job_free(job);
}

PurpleCmdRet
wabiz_cmd_receipts(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data)
{
  WabizAccount *wa = wabiz_account_data(purple_conversation_get_account(conv));
  const char *name = purple_conversation_get_name(conv);
  const char *word = args != NULL && args[0] != NULL ? g_strstrip(args[0]) : "";
  gboolean known = FALSE;
  WaReceiptPolicy policy;

  if (wa == NULL || wa->store == NULL) {
    *error = g_strdup(_("The account is not signed in."));
    return PURPLE_CMD_RET_FAILED;
  }
  if (wabiz_is_notices(name)) {
    *error = g_strdup(_("Use /receipts in a customer's conversation."));
    return PURPLE_CMD_RET_FAILED;
  }
  if (*word == '\0') {
    Conv *c = conv_get(wa, name);
    const char *id = customer_id(wa, name);

    if (c->override_known || id == NULL) {
      tell_policy(wa, name);
    } else {
      NameJob *job = name_job_new(wa, name);

      wa_store_setting_get(wa->store, id, SETTING_RECEIPTS, show_cb,
                           wabiz_store_hold(wa, job, (GDestroyNotify) name_job_free));
    }
    return PURPLE_CMD_RET_OK;
  }
  policy = wa_receipt_policy_from_string(word, &known);
  if (!known) {
    *error = g_strdup(_("receipts [seen|typing|reply|never|default]: when read receipts go to this customer."));
    return PURPLE_CMD_RET_FAILED;
  }
  set_policy(wa, name, policy);
  return PURPLE_CMD_RET_OK;
}

static void
menu_set(PurpleBlistNode *node, gpointer data)
{
  PurpleBuddy *buddy = (PurpleBuddy *) node;
  WabizAccount *wa = wabiz_account_data(purple_buddy_get_account(buddy));

  if (wa != NULL && wa->store != NULL)
    set_policy(wa, purple_buddy_get_name(buddy), (WaReceiptPolicy) GPOINTER_TO_INT(data));
}

PurpleMenuAction *
wabiz_receipts_menu(PurpleBuddy *buddy)
{
  static const struct {
    const char *label;
    WaReceiptPolicy policy;
  } items[] = {
    {N_("The account's setting"), WA_RECEIPTS_DEFAULT},
    {N_("When the conversation is seen"), WA_RECEIPTS_SEEN},
    {N_("When I type or reply"), WA_RECEIPTS_TYPING},
    {N_("When I reply"), WA_RECEIPTS_REPLY},
    {N_("Never"), WA_RECEIPTS_NEVER},
  };
  GList *children = NULL;

  for (guint i = 0; i < G_N_ELEMENTS(items); i++)
    children = g_list_append(children, purple_menu_action_new(_(items[i].label), PURPLE_CALLBACK(menu_set),
                                                              GINT_TO_POINTER(items[i].policy), NULL));
  return purple_menu_action_new(_("Read receipts"), NULL, NULL, children);
}

/* ---- statuses of our messages ------------------------------------------------ */

static gboolean
ticks_fire(gpointer data)
{
  Conv *c = data;
  g_autofree char *line = wa_ticks_take_line(c->ticks);
  PurpleConversation *conv = wabiz_conv_im(c->wa->account, c->name, FALSE);

  c->ticks_timer = 0;
  /* only into an open conversation: a tick opens no window */
  if (line != NULL && conv != NULL)
    wabiz_conv_write_plain(conv, line, PURPLE_MESSAGE_SYSTEM, 0);
  return FALSE;
}

static guint
ticks_interval_ms(void)
{
  const char *test = wabiz_test_env("WABIZ_TEST_TICKS_MS");
  guint64 ms = 0;

  if (test != NULL && g_ascii_string_to_unsigned(test, 10, 1, 60000, &ms, NULL))
    return (guint) ms;
  return TICKS_INTERVAL_MS;
}

void
wabiz_receipts_sent(WabizAccount *wa, const char *name, const char *wamid)
{
  wa_last_status_sent(&conv_get(wa, name)->last, wamid, wabiz_now());
}

void
wabiz_receipts_status(WabizAccount *wa, const char *name, const WaStatus *st, gboolean changed)
{
  WaStoreStatus status = wa_store_status_from_string(st->status);
  Conv *c;

  if (name == NULL)
    return;
  c = conv_get(wa, name);
  wa_last_status_apply(&c->last, st->id, status, st->timestamp > 0 ? st->timestamp : wabiz_now(), st->pricing_category);
  if (!changed || wabiz_ticks_policy(wa) != WA_TICKS_ALL)
    return;
  wa_ticks_add(c->ticks, st->id, status);
  if (wa_ticks_pending(c->ticks) && c->ticks_timer == 0)
    c->ticks_timer = purple_timeout_add(ticks_interval_ms(), ticks_fire, c);
}

void
wabiz_receipts_info(PurpleBuddy *buddy, PurpleNotifyUserInfo *info)
{
  WabizAccount *wa = wabiz_account_data(purple_buddy_get_account(buddy));
  Conv *c = wa != NULL && wa->receipts != NULL ? g_hash_table_lookup(wa->receipts, purple_buddy_get_name(buddy)) : NULL;
  g_autofree char *text = c != NULL ? wa_last_status_describe(&c->last) : NULL;

  if (text == NULL)
    return;
  purple_notify_user_info_add_pair_plaintext(info, _("Last message"), text);
  if (c->last.category != NULL)
    purple_notify_user_info_add_pair_plaintext(info, _("Pricing category"), c->last.category);
}
