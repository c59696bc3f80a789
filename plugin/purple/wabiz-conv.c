/* wabiz-conv.c: conversations, and the one place where text from customers or
 * the API becomes libpurple HTML (wa_text_to_html escapes it first). No other
 * file may pass such text to purple_conversation_write, serv_got_im or
 * serv_got_chat_in. */
#include "wabiz.h"

PurpleConversation *
wabiz_conv_im(PurpleAccount *account, const char *customer, gboolean create)
{
  const char *group = wa_group_address_id(customer);
  PurpleConversation *conv;

  if (group != NULL)
    return wabiz_group_conv(account, group, create);
  conv = purple_find_conversation_with_account(PURPLE_CONV_TYPE_IM, customer, account);

  if (conv == NULL && create)
    conv = purple_conversation_new(PURPLE_CONV_TYPE_IM, account, customer);
  return conv;
}

/* A line of the plugin's (system, error, notice). BitlBee drops such
 * writes: there it is written as a received line marked "[wabiz]", from the
 * customer (or the "wabiz" contact) in an IM, from "wabiz" in a chat. */
void
wabiz_conv_write_plain(PurpleConversation *conv, const char *text, PurpleMessageFlags flags, time_t when)
{
  g_autofree char *html = wa_text_to_html(text, FALSE);
  g_autofree char *marked = NULL;
  PurpleConnection *gc;

  if (conv == NULL)
    return;
  when = when != 0 ? when : time(NULL);
  if (!wabiz_bitlbee()) {
    purple_conversation_write(conv, NULL, html, flags | PURPLE_MESSAGE_NO_LINKIFY, when);
    return;
  }
  /* BitlBee turns HTML into text only once the account is connected (it
   * sets OPT_DOES_HTML then): before, during sign-on, the line goes as it is */
  gc = purple_conversation_get_gc(conv);
  if (gc != NULL && purple_connection_get_state(gc) == PURPLE_CONNECTED)
    marked = wabiz_bitlbee_mark(html);
  else
    marked = wabiz_bitlbee_mark(text);
  flags = PURPLE_MESSAGE_RECV | PURPLE_MESSAGE_NO_LOG | PURPLE_MESSAGE_NO_LINKIFY | (flags & PURPLE_MESSAGE_DELAYED);
  if (purple_conversation_get_type(conv) == PURPLE_CONV_TYPE_CHAT)
    purple_conv_chat_write(PURPLE_CONV_CHAT(conv), WABIZ_BITLBEE_NOTICES_NAME, marked, flags, when);
  else
    purple_conv_im_write(PURPLE_CONV_IM(conv), purple_conversation_get_name(conv), marked, flags, when);
}

void
wabiz_conv_write_image(PurpleConversation *conv, int img_id, time_t when)
{
  g_autofree char *html = g_strdup_printf("<img id=\"%d\">", img_id);

  if (conv == NULL || img_id <= 0)
    return;
  purple_conversation_write(conv, purple_conversation_get_name(conv), html,
                            PURPLE_MESSAGE_RECV | PURPLE_MESSAGE_IMAGES | PURPLE_MESSAGE_NO_LOG,
                            when != 0 ? when : time(NULL));
}

/* ---- history --------------------------------------------------------------
 * When a customer's conversation opens, the last HISTORY_LINES messages come
 * from the encrypted store (marked delayed and never logged). Each stored
 * message is shown once per session, live or as history. */

#define HISTORY_LINES 20

typedef struct {
  WabizAccount *wa;
  char *conv_name;
} HistoryRequest;

static void
history_request_free(HistoryRequest *req)
{
  g_free(req->conv_name);
  g_free(req);
}

/* The ids remembered as shown this session: the most recent ones only, so
 * memory stays flat however many messages a session shows. A customer's
 * history is their last HISTORY_LINES messages, and a duplicate comes
 * within a batch of the original: an older id forgotten only means its
 * line can come back as history when its conversation is opened again. */
#define SHOWN_KEPT 4096

static guint
shown_kept(void)
{
  static guint kept;

  if (kept == 0) {
    const char *test = wabiz_test_env("WABIZ_TEST_SHOWN_KEPT");
    guint64 value = 0;

    kept =
      test != NULL && g_ascii_string_to_unsigned(test, 10, 1, SHOWN_KEPT, &value, NULL) ? (guint) value : SHOWN_KEPT;
  }
  return kept;
}

/* TRUE (and remembered) the first time @message_id is shown this session
 * (among the last shown_kept() ids). */
gboolean
wabiz_history_mark_shown(WabizAccount *wa, const char *message_id)
{
  char *id;

  if (wa->shown == NULL)
    wa->shown = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  if (g_hash_table_contains(wa->shown, message_id))
    return FALSE;
  id = g_strdup(message_id);
  g_hash_table_add(wa->shown, id);
  g_queue_push_tail(&wa->shown_order, id);
  while (g_queue_get_length(&wa->shown_order) > shown_kept())
    g_hash_table_remove(wa->shown, g_queue_pop_head(&wa->shown_order)); /* frees it */
  return TRUE;
}

static void
history_cb(GPtrArray *messages, const GError *error, gpointer data)
{
  HistoryRequest *req = data;
  WabizAccount *wa = req->wa;
  PurpleConversation *conv = wabiz_conv_im(wa->account, req->conv_name, FALSE);

  wabiz_store_release(wa, req);
  if (error != NULL)
    purple_debug_warning("wabiz", "history unavailable: %s\n", error->message);
  for (guint i = 0; conv != NULL && messages != NULL && i < messages->len; i++) {
    const WaStoreMessage *m = g_ptr_array_index(messages, i);
    PurpleMessageFlags flags = PURPLE_MESSAGE_NO_LOG | PURPLE_MESSAGE_DELAYED | PURPLE_MESSAGE_NO_LINKIFY;
    g_autofree char *text = NULL;
    g_autofree char *html = NULL;

    /* stored and not marked shown yet: on its way here as a live line
     * (inbound messages are stored ahead of their lines, a batch at a time) */
    if (!m->shown)
      continue;
    if (!wabiz_history_mark_shown(wa, m->id))
      continue;
    if (m->body != NULL)
      text = g_strdup(m->body);
    else
      text = g_strdup_printf(m->expired ? _("[%s message, deleted after the retention period]") : _("[%s message]"),
                             m->type != NULL ? m->type : "?");
    flags |= m->direction == WA_STORE_IN ? PURPLE_MESSAGE_RECV : PURPLE_MESSAGE_SEND;
    if (m->direction == WA_STORE_ELSEWHERE)
      flags |= PURPLE_MESSAGE_REMOTE_SEND;
    if (m->direction == WA_STORE_IN && wabiz_bitlbee()) {
      /* BitlBee shows received lines only through the IM path */
      g_autofree char *escaped = wabiz_bitlbee_escape(text);

      html = wa_text_to_html(escaped, TRUE);
      purple_conv_im_write(PURPLE_CONV_IM(conv), req->conv_name, html, flags, (time_t) m->timestamp);
      continue;
    }
    html = wa_text_to_html(text, TRUE);
    purple_conversation_write(conv, m->direction == WA_STORE_IN ? req->conv_name : NULL, html, flags,
                              (time_t) m->timestamp);
  }
  history_request_free(req);
}

static void
history_customer_cb(const WaStoreCustomer *customer, const GError *error, gpointer data)
{
  HistoryRequest *req = data;
  WabizAccount *wa = req->wa;

  wabiz_store_release(wa, req);
  if (customer == NULL || wa->store == NULL) {
    history_request_free(req);
    return;
  }
  wa_store_history(wa->store, customer->id, HISTORY_LINES, history_cb,
                   wabiz_store_hold(wa, req, (GDestroyNotify) history_request_free));
}

static void
load_history(PurpleConversation *conv, PurpleAccount *account)
{
  WabizAccount *wa = wabiz_account_data(account);
  PurpleBuddy *buddy;
  const char *customer;
  HistoryRequest *req;

  if (wa == NULL || wa->store == NULL || purple_conversation_get_type(conv) != PURPLE_CONV_TYPE_IM)
    return;
  buddy = purple_find_buddy(account, purple_conversation_get_name(conv));
  customer = buddy != NULL ? purple_blist_node_get_string(&buddy->node, WABIZ_NODE_CUSTOMER_ID) : NULL;
  req = g_new0(HistoryRequest, 1);
  req->wa = wa;
  req->conv_name = g_strdup(purple_conversation_get_name(conv));
  if (customer != NULL) {
    wa_store_history(wa->store, customer, HISTORY_LINES, history_cb,
                     wabiz_store_hold(wa, req, (GDestroyNotify) history_request_free));
  } else {
    /* no buddy (the agent wrote to a number): the store knows the number */
    gboolean bsuid = wa_id_is_bsuid(req->conv_name);

    wa_store_customer_lookup(wa->store, bsuid ? NULL : req->conv_name, bsuid ? req->conv_name : NULL,
                             history_customer_cb, wabiz_store_hold(wa, req, (GDestroyNotify) history_request_free));
  }
}

/* Our conversations stay out of libpurple's plain-text logs unless the agent
 * opted in (customers' messages are personal data); their history comes from
 * the encrypted store. */
void
wabiz_conv_created_cb(PurpleConversation *conv, gpointer data)
{
  PurpleAccount *account = purple_conversation_get_account(conv);

  if (account == NULL || g_strcmp0(purple_account_get_protocol_id(account), WABIZ_PRPL_ID) != 0)
    return;
  if (!purple_account_get_bool(account, WABIZ_OPT_PLAINTEXT_LOG, FALSE))
    purple_conversation_set_logging(conv, FALSE);
  load_history(conv, account);
}

/* A customer's message: WhatsApp markup becomes HTML after escaping, so
 * "<b>" typed by a customer stays text. */
void
wabiz_conv_got_im(WabizAccount *wa, const char *customer, const char *text, time_t when, PurpleMessageFlags flags)
{
  /* BitlBee strips HTML: WhatsApp's *bold* stays as typed there */
  g_autofree char *escaped = wabiz_bitlbee() ? wabiz_bitlbee_escape(text) : NULL;
  g_autofree char *html = wa_text_to_html(escaped != NULL ? escaped : text, escaped == NULL);

  serv_got_im(wa->gc, customer, html, PURPLE_MESSAGE_RECV | flags, when != 0 ? when : time(NULL));
}

/* A group member's message in the group's chat (chat @id): the same
 * escaping and markup as a customer's message. */
void
wabiz_conv_got_chat(WabizAccount *wa, int id, const char *who, const char *text, time_t when)
{
  g_autofree char *escaped = wabiz_bitlbee() ? wabiz_bitlbee_escape(text) : NULL;
  g_autofree char *html = wa_text_to_html(escaped != NULL ? escaped : text, escaped == NULL);

  serv_got_chat_in(wa->gc, id, who, PURPLE_MESSAGE_RECV, html, when != 0 ? when : time(NULL));
}

void
wabiz_conv_write_sent(PurpleConversation *conv, const char *text)
{
  g_autofree char *html = wa_text_to_html(text, FALSE);
  PurpleConnection *gc = conv != NULL ? purple_conversation_get_gc(conv) : NULL;

  if (conv == NULL)
    return;
  if (purple_conversation_get_type(conv) == PURPLE_CONV_TYPE_CHAT && gc != NULL) {
    /* a chat echoes only what the protocol reports back */
    serv_got_chat_in(gc, purple_conv_chat_get_id(PURPLE_CONV_CHAT(conv)),
                     purple_account_get_username(purple_conversation_get_account(conv)),
                     PURPLE_MESSAGE_SEND | PURPLE_MESSAGE_NO_LINKIFY, html, time(NULL));
    return;
  }
  purple_conversation_write(conv, NULL, html, PURPLE_MESSAGE_SEND | PURPLE_MESSAGE_NO_LINKIFY, time(NULL));
}

/* A message the business sent from another app or agent: shown as sent, never
 * as incoming (serv_got_im would notify the agent of their own message). */
void
wabiz_conv_write_elsewhere(PurpleAccount *account, const char *customer, const char *text, time_t when,
                           PurpleMessageFlags flags)
{
  PurpleConversation *conv = wabiz_conv_im(account, customer, TRUE);
  g_autofree char *html = wa_text_to_html(text, TRUE);

  purple_conversation_write(conv, NULL, html,
                            PURPLE_MESSAGE_SEND | PURPLE_MESSAGE_REMOTE_SEND | PURPLE_MESSAGE_NO_LINKIFY | flags,
                            when != 0 ? when : time(NULL));
}

/* The account's notices conversation: set-up hints, receiver problems and
 * account-level events. Its name cannot be a customer (no digits, no dot).
 * Rate-limited: the same text at most once a minute, at most
 * NOTICES_PER_MINUTE lines a minute; what was held back is counted on the
 * next line shown. */
#define NOTICES_PER_MINUTE 20
#define MINUTE_US (60 * G_USEC_PER_SEC)

void
wabiz_notice(WabizAccount *wa, const char *text)
{
  gint64 now = g_get_monotonic_time();
  PurpleConversation *conv;
  g_autofree char *line = NULL;

  if (g_strcmp0(text, wa->notice_last) == 0 && now - wa->notice_last_us < MINUTE_US) {
    wa->notice_dropped++;
    return;
  }
  if (now - wa->notice_window_us >= MINUTE_US) {
    wa->notice_window_us = now;
    wa->notice_count = 0;
  }
  if (wa->notice_count >= NOTICES_PER_MINUTE) {
    wa->notice_dropped++;
    return;
  }
  wa->notice_count++;
  g_free(wa->notice_last);
  wa->notice_last = g_strdup(text);
  wa->notice_last_us = now;
  if (wa->notice_dropped > 0) {
    line = g_strdup_printf(ngettext("%s (and %u earlier notice held back)", "%s (and %u earlier notices held back)",
                                    wa->notice_dropped),
                           text, wa->notice_dropped);
    wa->notice_dropped = 0;
  }
  conv = wabiz_conv_im(wa->account, wabiz_notices_name(), TRUE);
  purple_conversation_set_title(conv, _("WhatsApp Business notices"));
  wabiz_conv_write_plain(conv, line != NULL ? line : text, PURPLE_MESSAGE_SYSTEM, 0);
}
