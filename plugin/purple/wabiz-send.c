/* wabiz-send.c: sending to customers. send_im converts the agent's HTML to
 * WhatsApp text, splits long texts, and hands the parts to the outbox
 * (plugin/core wa-sender); the outbox's events become conversation lines. */
#include "wabiz.h"

#include <string.h>


const char *
wabiz_normalize(const PurpleAccount *account, const char *who)
{
  static char buf[256];
  g_autofree char *norm = NULL;
  const char *cc = NULL;

  if (who == NULL)
    return NULL;
  if (account != NULL)
    cc = purple_account_get_string((PurpleAccount *) account, WABIZ_OPT_DEFAULT_CC, NULL);
  norm = wa_customer_id_normalize(who, cc, NULL);
  g_strlcpy(buf, norm != NULL ? norm : who, sizeof(buf));
  return buf;
}

static WabizAccount *
from_user(gpointer user)
{
  return user;
}

static void
forget_announced(WabizAccount *wa, const char *customer, gboolean say_done)
{
  if (say_done && wa_sender_waiting(wa->sender, customer) > 0)
    return; /* said when the last one has gone */
  if (g_hash_table_remove(wa->announced, customer) && say_done)
    wabiz_conv_write_plain(wabiz_conv_im(wa->account, customer, TRUE), _("The waiting messages have been sent."),
                           PURPLE_MESSAGE_SYSTEM, 0);
}

/* The API may know the customer by another number (Brazil, Mexico): the buddy
 * and the conversation follow the API. */
static void
follow_wa_id(WabizAccount *wa, const char *customer, const char *wa_id)
{
  g_autofree char *text = NULL;

  if (wa_id == NULL || g_str_equal(wa_id, customer) || wa_id_is_bsuid(customer) ||
      wa_group_address_id(customer) != NULL)
    return;
  wabiz_customer_rename(wa, customer, wa_id);
  text = g_strdup_printf(_("WhatsApp knows this customer as +%s (you wrote +%s); the buddy now uses +%s."), wa_id,
                         customer, wa_id);
  wabiz_conv_write_plain(wabiz_conv_im(wa->account, wa_id, TRUE), text, PURPLE_MESSAGE_SYSTEM, 0);
}

static void
on_sent(gpointer user, const char *customer, guint64 id, const WaSendResult *result)
{
  WabizAccount *wa = from_user(user);

  purple_debug_info("wabiz", "outbox %" G_GUINT64_FORMAT " accepted\n", id);
  if (wabiz_campaign_outcome(wa, id, customer, WABIZ_CAMPAIGN_SENT, NULL)) {
    wabiz_link_sent(wa);
    return;
  }
  wabiz_campaign_chat_sent(wa);
  wabiz_outbox_answered(wa, id, customer, FALSE, NULL);
  forget_announced(wa, customer, TRUE);
  wabiz_link_sent(wa);
  if (g_strcmp0(result->message_status, "held_for_quality_assessment") == 0 ||
      g_strcmp0(result->message_status, "paused") == 0)
    wabiz_conv_write_plain(wabiz_conv_im(wa->account, customer, TRUE),
                           _("WhatsApp is holding this message for a quality check before delivering it."),
                           PURPLE_MESSAGE_SYSTEM, 0);
  wabiz_receipts_sent(wa, customer, result->wamid);
  /* a reply WhatsApp took marks what it answers read (not a refused one);
   * the receipt goes beside the next messages, never through the outbox */
  wabiz_receipts_replied(wa, customer);
  follow_wa_id(wa, customer, result->wa_id);
}

static void
on_read(gpointer user, const char *customer, const char *wamid, gboolean typing, const WaGraphError *error)
{
  wabiz_receipts_read_done(from_user(user), customer, wamid, typing, error);
}

void
wabiz_report_unsent(PurpleAccount *account, const char *customer, const WaGraphError *error, gboolean uncertain)
{
  g_autofree char *reason = wa_graph_error_describe(error);
  g_autofree char *text = NULL;

  if (uncertain)
    text =
      g_strdup_printf(_("This message may or may not have been sent: %s. It was not sent again automatically, "
                        "so the customer does not get it twice; if no delivery status settles it soon, you are asked "
                        "whether to send it again."),
                      reason);
  else
    text = g_strdup_printf(_("Not sent: %s"), reason);
  wabiz_conv_write_plain(wabiz_conv_im(account, customer, TRUE), text, PURPLE_MESSAGE_ERROR, 0);
  wabiz_consent_api_error(wabiz_account_data(account), customer, error, NULL, NULL); /* 131050: opted out */
}

static void
on_failed(gpointer user, const char *customer, guint64 id, const WaGraphError *error)
{
  WabizAccount *wa = from_user(user);

  if (wabiz_campaign_outcome(wa, id, customer, WABIZ_CAMPAIGN_FAILED, error))
    return;
  forget_announced(wa, customer, FALSE);
  wabiz_report_unsent(wa->account, customer, error, FALSE);
}

static void
on_uncertain(gpointer user, const char *customer, guint64 id, const WaGraphError *error)
{
  WabizAccount *wa = from_user(user);

  if (wabiz_campaign_outcome(wa, id, customer, WABIZ_CAMPAIGN_UNCERTAIN, error))
    return;
  forget_announced(wa, customer, FALSE);
  wabiz_outbox_answered(wa, id, customer, TRUE, error);
}

/* Resolved while it waited (it went after all) or erased: the messages
 * announced as waiting may all be gone now. */
static void
on_skipped(gpointer user, const char *customer, guint64 id)
{
  purple_debug_info("wabiz", "outbox %" G_GUINT64_FORMAT " skipped\n", id);
  if (wabiz_campaign_outcome(from_user(user), id, customer, WABIZ_CAMPAIGN_SKIPPED, NULL))
    return;
  forget_announced(from_user(user), customer, TRUE);
}

static void
on_waiting(gpointer user, const char *customer, guint waiting, guint retry_ms, const WaGraphError *error)
{
  WabizAccount *wa = from_user(user);
  g_autofree char *reason = NULL;
  g_autofree char *text = NULL;

  if (wabiz_campaign_waiting(wa, customer, error))
    return; /* the campaign paces itself; its conversation tells */
  if (g_hash_table_contains(wa->announced, customer))
    return; /* said once per outage; the next line is "sent" or a failure */
  g_hash_table_add(wa->announced, g_strdup(customer));
  reason = wa_graph_error_describe(error);
  text = g_strdup_printf(ngettext("Queued (%u message waiting, retrying): %s",
                                  "Queued (%u messages waiting, retrying): %s", waiting),
                         waiting, reason);
  wabiz_conv_write_plain(wabiz_conv_im(wa->account, customer, TRUE), text, PURPLE_MESSAGE_SYSTEM, 0);
}

void
wabiz_token_refused(WabizAccount *wa, const WaGraphError *error)
{
  g_autofree char *reason = wa_graph_error_describe(error);
  g_autofree char *text = g_strdup_printf(_("The access token was refused: %s"), reason);

  purple_connection_error_reason(wa->gc, PURPLE_CONNECTION_ERROR_AUTHENTICATION_FAILED, text);
}

static void
on_auth_failed(gpointer user, const WaGraphError *error)
{
  wabiz_token_refused(from_user(user), error);
}

static void
on_store_failed(gpointer user, const GError *error)
{
  WabizAccount *wa = from_user(user);
  g_autofree char *text =
    g_strdup_printf(_("The outbox could not write to the account's store (%s); sending waits and is tried again."),
                    error->message);

  wabiz_notice(wa, text);
}

static const WaSenderEvents sender_events = {
  .sent = on_sent,
  .failed = on_failed,
  .uncertain = on_uncertain,
  .skipped = on_skipped,
  .waiting = on_waiting,
  .auth_failed = on_auth_failed,
  .store_failed = on_store_failed,
  .read = on_read,
};

void
wabiz_sender_start(WabizAccount *wa)
{
  WaSenderConfig config = {0};
  int base = purple_account_get_int(wa->account, WABIZ_OPT_RETRY_DELAY_MS, 1000);

  wa->sender = wa_sender_new(wa->graph, wa->store, wabiz_loop(), wa->pnid, &sender_events, wa);
  config.backoff_base_ms = base > 0 ? (guint) base : 1000;
  config.backoff_max_ms = MAX(config.backoff_base_ms, 60000);
  wa_sender_set_config(wa->sender, &config);
}

/* ---- one address's sends in order ------------------------------------------ */

typedef struct {
  WabizGateFunc start;
  gpointer job;
  GDestroyNotify free_job;
} GateItem;

typedef struct {
  GQueue waiting; /* GateItem*: after the one under way */
} Gate;

static void
gate_free(Gate *gate)
{
  GateItem *item;

  while ((item = g_queue_pop_head(&gate->waiting)) != NULL) {
    item->free_job(item->job);
    g_free(item);
  }
  g_free(gate);
}

gboolean
wabiz_send_gate_busy(WabizAccount *wa, const char *to)
{
  return wa->send_gates != NULL && g_hash_table_contains(wa->send_gates, to);
}

void
wabiz_send_gate_enter(WabizAccount *wa, const char *to, gboolean hold, WabizGateFunc start, gpointer job,
                      GDestroyNotify free_job)
{
  Gate *gate;

  if (!hold && !wabiz_send_gate_busy(wa, to)) {
    start(job); /* nothing ahead that is still looking things up */
    return;
  }
  if (wa->send_gates == NULL)
    wa->send_gates = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify) gate_free);
  gate = g_hash_table_lookup(wa->send_gates, to);
  if (gate != NULL) {
    GateItem *item = g_new0(GateItem, 1);

    item->start = start;
    item->job = job;
    item->free_job = free_job;
    g_queue_push_tail(&gate->waiting, item);
    return;
  }
  g_hash_table_insert(wa->send_gates, g_strdup(to), g_new0(Gate, 1));
  start(job);
}

void
wabiz_send_gate_leave(WabizAccount *wa, const char *to)
{
  Gate *gate = wa->send_gates != NULL ? g_hash_table_lookup(wa->send_gates, to) : NULL;
  GateItem *item = gate != NULL ? g_queue_pop_head(&gate->waiting) : NULL;

  if (gate == NULL)
    return;
  if (item == NULL) {
    g_hash_table_remove(wa->send_gates, to);
    return;
  }
  item->start(item->job);
  g_free(item);
}

void
wabiz_send_gates_clear(WabizAccount *wa)
{
  GHashTable *gates = g_steal_pointer(&wa->send_gates);

  if (gates != NULL)
    g_hash_table_destroy(gates);
}

/* The agent's message, from send_im until its parts are in the outbox. */
typedef struct {
  WabizAccount *wa;
  char *to;
  GStrv parts;
  gboolean gated; /* started through the gate: leaves it when freed */
} SendJob;

static void
send_job_free(SendJob *job)
{
  if (job->gated)
    wabiz_send_gate_leave(job->wa, job->to);
  g_free(job->to);
  for (guint i = 0; job->parts != NULL && job->parts[i] != NULL; i++)
    sodium_memzero(job->parts[i], strlen(job->parts[i]));
  g_strfreev(job->parts);
  g_free(job);
}

typedef struct {
  WabizAccount *wa;
  char *to;
} QueuedJob;

static void
queued_job_free(QueuedJob *job)
{
  g_free(job->to);
  g_free(job);
}

static void
queued_cb(const WaStoreOutbox *entry, const GError *error, gpointer data)
{
  QueuedJob *job = data;

  wabiz_store_release(job->wa, job);
  if (error == NULL)
    wabiz_test_crash_point("outbox-queued");
  if (error != NULL) {
    g_autofree char *text = g_strdup_printf(_("Not sent: the message could not be stored (%s)."), error->message);

    wabiz_conv_write_plain(wabiz_conv_im(job->wa->account, job->to, TRUE), text, PURPLE_MESSAGE_ERROR, 0);
  }
  queued_job_free(job);
}

static void
ensured_cb(const WaStoreCustomerUpdate *update, const GError *error, gpointer data)
{
  SendJob *job = data;
  WabizAccount *wa = job->wa;

  wabiz_store_release(wa, job);
  if (error != NULL || wa->sender == NULL) {
    g_autofree char *text = g_strdup_printf(_("Not sent: the message could not be stored (%s)."),
                                            error != NULL ? error->message : _("the account is offline"));

    wabiz_conv_write_plain(wabiz_conv_im(wa->account, job->to, TRUE), text, PURPLE_MESSAGE_ERROR, 0);
    send_job_free(job);
    return;
  }
  {
    PurpleBuddy *buddy = purple_find_buddy(wa->account, job->to);

    if (buddy != NULL)
      wabiz_customer_identify(wa, buddy, update->customer->id, NULL);
  }
  for (guint i = 0; job->parts[i] != NULL; i++) {
    QueuedJob *q = g_new0(QueuedJob, 1);

    q->wa = wa;
    q->to = g_strdup(job->to);
    wa_sender_enqueue_text(wa->sender, update->customer->id, job->to, job->parts[i], wa_text_has_url(job->parts[i]),
                           queued_cb, wabiz_store_hold(wa, q, (GDestroyNotify) queued_job_free));
  }
  send_job_free(job);
}

const char *
wabiz_window_closed_text(void)
{
  return _("Not sent: the 24-hour service window with this customer has closed. WhatsApp "
           "only allows an approved message template until the customer writes again: send one with "
           "/template NAME [LANG] VALUES (/templates lists them).");
}

static void
send_job_start(gpointer data)
{
  SendJob *job = data;
  WabizAccount *wa = job->wa;

  if (wa->store == NULL) {
    send_job_free(job);
    return;
  }
  wabiz_store_ensure_address(wa, job->to, ensured_cb, wabiz_store_hold(wa, job, (GDestroyNotify) send_job_free));
}

void
wabiz_send_text(WabizAccount *wa, const char *to, const char *text)
{
  SendJob *job = g_new0(SendJob, 1);

  job->wa = wa;
  job->to = g_strdup(to);
  job->parts = wa_text_split(text, WA_TEXT_MAX_UNITS);
  job->gated = wabiz_send_gate_busy(wa, to);
  wabiz_send_gate_enter(wa, to, FALSE, send_job_start, job, (GDestroyNotify) send_job_free);
}

int
wabiz_send_im(PurpleConnection *gc, const char *who, const char *message, PurpleMessageFlags flags)
{
  WabizAccount *wa = purple_connection_get_protocol_data(gc);
  const char *cc = purple_account_get_string(wa->account, WABIZ_OPT_DEFAULT_CC, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *customer = NULL;
  g_autofree char *text = NULL;
  gboolean images;

  if (wa->sender == NULL || wa->store == NULL)
    return -ENOTCONN;
  text = wa_html_to_whatsapp(message);
  g_strstrip(text);
  /* pasted images (Pidgin's imgstore; BitlBee has none) */
  images = !wabiz_bitlbee() && wabiz_file_has_images(message);
  if (*text == '\0' && !images)
    return 0;

  /* BitlBee runs no libpurple commands: a line starting with / or ! is one */
  switch (wabiz_bitlbee() ? wabiz_bitlbee_text(wa, who, &text) : WABIZ_TEXT_SEND) {
  case WABIZ_TEXT_HANDLED:
    return 0;
  case WABIZ_TEXT_REFUSED_NOTICES:
    wabiz_conv_write_plain(wabiz_conv_im(wa->account, who, TRUE),
                           _("This contact is the plugin itself: type !help for its commands. Nothing was sent."),
                           PURPLE_MESSAGE_ERROR, 0);
    return 0;
  case WABIZ_TEXT_SEND:
    break;
  }
  if (wabiz_is_notices(who)) {
    wabiz_conv_write_plain(wabiz_conv_im(wa->account, who, TRUE),
                           _("Not sent: this conversation only shows notices about the account."), PURPLE_MESSAGE_ERROR,
                           0);
    return 1;
  }
  customer = wa_customer_id_normalize(who, cc, &error);
  if (customer == NULL) {
    /* echo the text (return > 0) and say on its own line why it did not go */
    g_autofree char *line = g_strdup_printf(_("Not sent: %s"), error->message);
    wabiz_conv_write_plain(wabiz_conv_im(wa->account, who, TRUE), line, PURPLE_MESSAGE_ERROR, 0);
    return 1;
  }

  /* the conversation takes the customer's canonical id, as the buddy does
   * (lookups normalise, so "+49 170 ..." and "49170..." find the same one) */
  {
    PurpleConversation *conv = wabiz_conv_im(wa->account, customer, FALSE);
    if (conv != NULL && !g_str_equal(purple_conversation_get_name(conv), customer))
      purple_conversation_set_name(conv, customer);
  }

  /* free-form text to a closed window would fail at Meta (131047) */
  if (wabiz_window_state(wa->account, customer, NULL) == WA_WINDOW_CLOSED) {
    wabiz_conv_write_plain(wabiz_conv_im(wa->account, customer, TRUE), wabiz_window_closed_text(), PURPLE_MESSAGE_ERROR,
                           0);
    /* Pidgin and Finch: the template dialog is offered */
    wabiz_template_dialog(wa, customer, TRUE);
    return 1;
  }
  if (images) {
    wabiz_file_send_composed(wa, customer, message);
    return 1;
  }
  wabiz_send_text(wa, customer, text);
  return 1;
}
