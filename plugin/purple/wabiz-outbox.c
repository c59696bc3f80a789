/* wabiz-outbox.c: the account's durable outbox (plugin/core wa-sender over
 * the store) at sign-on and sign-off, and the agent's decisions about
 * messages that may have been sent.
 *
 * Sign-on: outcomes learnt after the last sign-off are written first, then
 * the queued entries are restored and sent in order.
 * Sign-off: the store closes (it answers no more), the sender is detached;
 * queued entries stay in the store for the next sign-on. A request in flight
 * gets a short grace period; its outcome is kept in memory per phone number
 * id and written at the next sign-on (or at once if the account is back).
 * Uncertain entries (the answer was lost) are never resent automatically:
 * after a grace period one dialog per account asks "resend all / drop /
 * list"; /resend opens it at any time.
 * Must not: resend anything without the agent's decision, or keep message
 * text anywhere but the store and the dialog. */
#include "wabiz.h"

#include <string.h>

#define SIGNOFF_GRACE_MS 5000
#define SIGNOFF_POLL_MS 100
#define UNCERTAIN_GRACE_S_DEFAULT 120
#define LIST_MAX 50

static void dialog_free(ResendDialog *rd);

/* ---- outcomes learnt while the store was closed ---------------------------- */

typedef struct {
  guint64 id;
  WaStoreOutboxState state;
  char *wamid;
  char *error;
} Outcome;

static GHashTable *outcomes; /* pnid -> GPtrArray of Outcome* */

static void
outcome_free(Outcome *o)
{
  g_free(o->wamid);
  g_free(o->error);
  g_free(o);
}

static void
outcome_stored(const WaStoreOutbox *entry, const GError *error, gpointer data)
{
  /* INVALID: a status webhook got there first; what it says stands */
  if (error != NULL && !g_error_matches(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID) &&
      !g_error_matches(error, WA_STORE_ERROR, WA_STORE_ERROR_NOT_FOUND))
    purple_debug_warning("wabiz", "an outcome from before sign-on could not be stored: %s\n", error->message);
}

static void
outcome_apply(WabizAccount *wa, const Outcome *o)
{
  WaStoreOutboxChange change = {.state = o->state, .wamid = o->wamid, .error_text = o->error};

  wa_store_outbox_update(wa->store, o->id, &change, outcome_stored, NULL);
}

/* Writes @o into the account's store when it is signed on, else keeps it. */
static void
outcome_keep(const char *pnid, guint64 id, WaStoreOutboxState state, const char *wamid, const char *error)
{
  Outcome *o = g_new0(Outcome, 1);
  GPtrArray *list;
  GList *conns;

  o->id = id;
  o->state = state;
  o->wamid = g_strdup(wamid);
  o->error = g_strdup(error);
  for (conns = purple_connections_get_all(); conns != NULL; conns = conns->next) {
    PurpleAccount *account = purple_connection_get_account(conns->data);
    WabizAccount *wa = wabiz_account_data(account);

    if (wa != NULL && wa->sender != NULL && wa->store != NULL && g_strcmp0(wa->pnid, pnid) == 0) {
      outcome_apply(wa, o);
      outcome_free(o);
      return;
    }
  }
  if (outcomes == NULL)
    outcomes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_ptr_array_unref);
  list = g_hash_table_lookup(outcomes, pnid);
  if (list == NULL) {
    list = g_ptr_array_new_with_free_func((GDestroyNotify) outcome_free);
    g_hash_table_insert(outcomes, g_strdup(pnid), list);
  }
  g_ptr_array_add(list, o);
}

static void
outcomes_apply(WabizAccount *wa)
{
  GPtrArray *list = outcomes != NULL ? g_hash_table_lookup(outcomes, wa->pnid) : NULL;

  for (guint i = 0; list != NULL && i < list->len; i++)
    outcome_apply(wa, g_ptr_array_index(list, i));
  if (list != NULL)
    g_hash_table_remove(outcomes, wa->pnid);
}

void
wabiz_outbox_unload(void)
{
  g_clear_pointer(&outcomes, g_hash_table_destroy);
}

/* ---- sign-on ------------------------------------------------------------------- */

static void
restored_cb(guint restored, const GError *error, gpointer data)
{
  WabizAccount *wa = data;

  if (error != NULL) {
    g_autofree char *text =
      g_strdup_printf(_("The waiting messages could not be read from the store: %s"), error->message);
    wabiz_notice(wa, text);
    return;
  }
  if (restored > 0) {
    g_autofree char *text = g_strdup_printf(ngettext("%u message waiting from before is being sent.",
                                                     "%u messages waiting from before are being sent.", restored),
                                            restored);
    wabiz_notice(wa, text);
  }
}

void
wabiz_outbox_start(WabizAccount *wa)
{
  wabiz_sender_start(wa);
  outcomes_apply(wa);
  wa_sender_restore(wa->sender, restored_cb, wa);
  /* entries left uncertain by an earlier session are asked about after the
   * grace period (their status webhooks may still come) */
  wabiz_outbox_uncertain_later(wa);
}

/* ---- sign-off ------------------------------------------------------------------- */

typedef struct {
  WaHttp *http;
  WaGraph *graph;
  WaSender *sender;
  char *username;
  char *pnid;
  gint64 deadline;
  GHashTable *in_flight; /* addresses with a request under way at sign-off */
} Draining;

static PurpleAccount *
drain_account(Draining *d)
{
  return purple_accounts_find(d->username, WABIZ_PRPL_ID);
}

static void
drain_report(Draining *d, const char *to, const WaGraphError *error, gboolean uncertain)
{
  PurpleAccount *account = drain_account(d);

  if (account != NULL)
    wabiz_report_unsent(account, to, error, uncertain);
  else
    purple_debug_warning("wabiz", "a message sent before sign-off %s; its account is gone\n",
                         uncertain ? "may not have arrived" : "failed");
}

static void
drain_sent(gpointer user, const char *to, guint64 id, const WaSendResult *result)
{
  Draining *d = user;

  purple_debug_info("wabiz", "outbox %" G_GUINT64_FORMAT " accepted after sign-off\n", id);
  outcome_keep(d->pnid, id, WA_STORE_OUTBOX_SENT, result->wamid, NULL);
}

static void
drain_failed(gpointer user, const char *to, guint64 id, const WaGraphError *error)
{
  Draining *d = user;
  g_autofree char *reason = wa_graph_error_describe(error);

  outcome_keep(d->pnid, id, WA_STORE_OUTBOX_FAILED, NULL, reason);
  drain_report(d, to, error, FALSE);
}

static void
drain_uncertain(gpointer user, const char *to, guint64 id, const WaGraphError *error)
{
  /* the store's next unlock makes it uncertain; the agent decides then */
  drain_report(user, to, error, TRUE);
}

static void
drain_waiting(gpointer user, const char *to, guint waiting, guint retry_ms, const WaGraphError *error)
{
  /* provably not sent: the sender names it to drain_not_started, and it
   * goes out after the next sign-on */
}

static void
drain_not_started(guint64 id, gpointer data)
{
  Draining *d = data;

  outcome_keep(d->pnid, id, WA_STORE_OUTBOX_QUEUED, NULL, NULL);
}

static void
drain_auth(gpointer user, const WaGraphError *error)
{
}

static const WaSenderEvents drain_events = {
  .sent = drain_sent,
  .failed = drain_failed,
  .uncertain = drain_uncertain,
  .waiting = drain_waiting,
  .auth_failed = drain_auth,
};

/* Tells @to's conversation that @left messages wait for the next sign-on. */
static void
tell_waiting(PurpleAccount *account, const char *to, guint left)
{
  g_autofree char *text = NULL;

  if (left == 0 || account == NULL)
    return;
  text = g_strdup_printf(ngettext("The account went offline: %u message to this customer waits in the outbox and "
                                  "is sent when the account is signed in again.",
                                  "The account went offline: %u messages to this customer wait in the outbox and "
                                  "are sent when the account is signed in again.",
                                  left),
                         left);
  wabiz_conv_write_plain(wabiz_conv_im(account, to, TRUE), text, PURPLE_MESSAGE_SYSTEM, 0);
}

/* The grace period is over: a request still open has an unknown outcome;
 * customers who had one in flight at sign-off are told now how many wait
 * (the one in flight among them when it came back provably unsent). */
static void
report_drained(const char *to, guint waiting, gboolean in_flight, gpointer data)
{
  Draining *d = data;
  PurpleAccount *account;

  if (in_flight) {
    g_autoptr(WaGraphError) error = wa_graph_error_new_network(_("no answer before sign-off"), TRUE);

    drain_report(d, to, error, TRUE);
  }
  account = drain_account(d);
  if (account != NULL && g_hash_table_contains(d->in_flight, to))
    tell_waiting(account, to, waiting - (in_flight ? 1 : 0));
}

static void
drain_free(Draining *d)
{
  if (d->sender != NULL)
    wa_sender_foreach(d->sender, report_drained, d);
  g_hash_table_destroy(d->in_flight);
  wa_sender_free(d->sender);
  wa_graph_free(d->graph);
  wa_http_free(d->http);
  g_free(d->username);
  g_free(d->pnid);
  g_free(d);
}

static gboolean
drain_poll(gpointer data)
{
  Draining *d = data;

  if (wa_sender_in_flight(d->sender) > 0 && g_get_monotonic_time() < d->deadline)
    return G_SOURCE_CONTINUE;
  drain_free(d);
  return G_SOURCE_REMOVE;
}

/* Tells each conversation without a request in flight how many of its
 * messages wait for the next sign-on; the others are told once the request
 * has ended (report_drained), as it may come back unsent and wait too. */
static void
report_waiting(const char *to, guint waiting, gboolean in_flight, gpointer data)
{
  Draining *d = data;

  if (in_flight)
    g_hash_table_add(d->in_flight, g_strdup(to));
  else
    tell_waiting(drain_account(d), to, waiting);
}

/* Before the store closes. */
void
wabiz_outbox_stop(WabizAccount *wa)
{
  Draining *d;

  if (wa->uncertain_timer != 0) {
    purple_timeout_remove(wa->uncertain_timer);
    wa->uncertain_timer = 0;
  }
  g_clear_pointer(&wa->resend_dialog, dialog_free);
  g_clear_pointer(&wa->asked, g_hash_table_destroy);
  g_clear_pointer(&wa->resolved, g_hash_table_destroy);
  g_clear_pointer(&wa->unsure, g_hash_table_destroy);
  if (wa->sender == NULL)
    return;
  wa_sender_pause(wa->sender);
  d = g_new0(Draining, 1);
  d->pnid = g_strdup(wa->pnid);
  d->username = g_strdup(purple_account_get_username(wa->account));
  d->in_flight = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  wa_sender_foreach(wa->sender, report_waiting, d);
  wa_sender_detach_store(wa->sender, drain_not_started, d);
  if (wa_sender_in_flight(wa->sender) == 0) {
    drain_free(d);
    g_clear_pointer(&wa->sender, wa_sender_free);
    return;
  }
  wa_sender_set_events(wa->sender, &drain_events, d);
  d->sender = g_steal_pointer(&wa->sender);
  d->graph = g_steal_pointer(&wa->graph);
  d->http = g_steal_pointer(&wa->http);
  d->deadline = g_get_monotonic_time() + SIGNOFF_GRACE_MS * 1000;
  purple_timeout_add(SIGNOFF_POLL_MS, drain_poll, d);
}

/* ---- messages that may have been sent ------------------------------------------- */

static const char reached_text[] = N_("A message that may not have been sent did reach WhatsApp after all.");

static gboolean
id_set_take(GHashTable *set, guint64 id)
{
  gint64 key = (gint64) id;

  return set != NULL && g_hash_table_remove(set, &key);
}

static void
id_set_add(GHashTable **set, guint64 id)
{
  gint64 key = (gint64) id;

  if (*set == NULL)
    *set = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
  g_hash_table_add(*set, g_memdup2(&key, sizeof key));
}

void
wabiz_outbox_resolved(WabizAccount *wa, guint64 id, WaStoreOutboxState before, const char *customer)
{
  /* the answer was lost and the conversation said so, though the store may
   * not have recorded that yet (its update is still on the worker) */
  gboolean told_unsure = id_set_take(wa->unsure, id);

  if (before == WA_STORE_OUTBOX_SENDING && !told_unsure) {
    /* the usual race: the status came before the send's answer */
    id_set_add(&wa->resolved, id);
    return;
  }
  /* FAILED: dropped by the agent, and it went after all */
  if ((before == WA_STORE_OUTBOX_UNCERTAIN || before == WA_STORE_OUTBOX_FAILED || told_unsure) && customer != NULL)
    wabiz_conv_write_plain(wabiz_conv_im(wa->account, customer, TRUE), _(reached_text), PURPLE_MESSAGE_SYSTEM, 0);
}

void
wabiz_outbox_answered(WabizAccount *wa, guint64 id, const char *customer, gboolean uncertain, const WaGraphError *error)
{
  if (id_set_take(wa->resolved, id)) {
    /* its status already said it went out */
    if (uncertain)
      wabiz_conv_write_plain(wabiz_conv_im(wa->account, customer, TRUE), _(reached_text), PURPLE_MESSAGE_SYSTEM, 0);
    return;
  }
  if (!uncertain)
    return;
  id_set_add(&wa->unsure, id);
  /* resent by the agent and uncertain again: asked about again */
  id_set_take(wa->asked, id);
  wabiz_report_unsent(wa->account, customer, error, TRUE);
  wabiz_outbox_uncertain_later(wa);
}

struct _ResendDialog {
  WabizAccount *wa;
  GPtrArray *entries;  /* WaStoreOutbox* */
  GHashTable *address; /* customer id -> to (owned) */
  gpointer handle;     /* of the request */
};

static void ask_uncertain(WabizAccount *wa, gboolean forced);

static guint
uncertain_grace_s(WabizAccount *wa)
{
  int grace = purple_account_get_int(wa->account, WABIZ_OPT_UNCERTAIN_GRACE, UNCERTAIN_GRACE_S_DEFAULT);

  return grace > 0 ? (guint) grace : 1;
}

static gboolean
uncertain_fired(gpointer data)
{
  WabizAccount *wa = data;

  wa->uncertain_timer = 0;
  ask_uncertain(wa, FALSE);
  return G_SOURCE_REMOVE;
}

void
wabiz_outbox_uncertain_later(WabizAccount *wa)
{
  if (wa->uncertain_timer == 0)
    wa->uncertain_timer = purple_timeout_add_seconds(uncertain_grace_s(wa), uncertain_fired, wa);
}

static void
dialog_free(ResendDialog *rd)
{
  if (rd == NULL)
    return;
  g_clear_pointer(&rd->entries, g_ptr_array_unref);
  g_clear_pointer(&rd->address, g_hash_table_destroy);
  g_free(rd);
}

/* The dialog's data lives in wa->resend_dialog (freed at sign-off, when
 * libpurple closes the dialog without calling back). */
static ResendDialog *
dialog_take(gpointer data)
{
  WabizAccount *wa = data;
  ResendDialog *rd = wa->resend_dialog;

  wa->resend_dialog = NULL;
  return rd;
}

static void
resent_cb(const WaStoreOutbox *entry, const GError *error, gpointer data)
{
  if (error != NULL && !g_error_matches(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID))
    purple_debug_warning("wabiz", "a message could not be queued again: %s\n", error->message);
}

static void
resend_all(gpointer data, int action)
{
  g_autoptr(GHashTable) told = g_hash_table_new(g_str_hash, g_str_equal);
  ResendDialog *rd = dialog_take(data);
  WabizAccount *wa = rd->wa;

  for (guint i = 0; i < rd->entries->len; i++) {
    const WaStoreOutbox *e = g_ptr_array_index(rd->entries, i);
    const char *to = g_hash_table_lookup(rd->address, e->customer_id);

    if (to == NULL || wa->sender == NULL)
      continue;
    wa_sender_resend(wa->sender, e, to, resent_cb, NULL);
    if (g_hash_table_add(told, (gpointer) to))
      wabiz_conv_write_plain(wabiz_conv_im(wa->account, to, TRUE),
                             _("Sending again, as you decided, the messages that may not have been sent."),
                             PURPLE_MESSAGE_SYSTEM, 0);
  }
  dialog_free(rd);
}

static void
drop_all(gpointer data, int action)
{
  g_autoptr(GHashTable) told = g_hash_table_new(g_str_hash, g_str_equal);
  ResendDialog *rd = dialog_take(data);
  WabizAccount *wa = rd->wa;
  WaStoreOutboxChange change = {
    .state = WA_STORE_OUTBOX_FAILED,
    .error_text = "not sent again: the agent decided so",
  };

  for (guint i = 0; i < rd->entries->len; i++) {
    const WaStoreOutbox *e = g_ptr_array_index(rd->entries, i);
    const char *to = g_hash_table_lookup(rd->address, e->customer_id);

    if (wa->store != NULL)
      wa_store_outbox_update(wa->store, e->id, &change, resent_cb, NULL);
    if (to != NULL && g_hash_table_add(told, (gpointer) to))
      wabiz_conv_write_plain(wabiz_conv_im(wa->account, to, TRUE),
                             _("Not sent again, as you decided: the messages that may not have been sent."),
                             PURPLE_MESSAGE_SYSTEM, 0);
  }
  dialog_free(rd);
}

static void show_dialog(WabizAccount *wa, ResendDialog *rd);

/* In BitlBee (no formatted notifications): the list as lines of the
 * "wabiz" contact. */
static void
list_as_lines(WabizAccount *wa, ResendDialog *rd)
{
  PurpleConversation *conv = wabiz_conv_im(wa->account, wabiz_notices_name(), TRUE);

  for (guint i = 0; i < rd->entries->len && i < LIST_MAX; i++) {
    const WaStoreOutbox *e = g_ptr_array_index(rd->entries, i);
    const char *to = g_hash_table_lookup(rd->address, e->customer_id);
    g_autofree char *when = g_strdup(purple_date_format_long(localtime(&(time_t){(time_t) e->created})));
    g_autofree char *line = g_strdup_printf(_("May have been sent to +%s (%s): %s"), to != NULL ? to : "?", when,
                                            e->body != NULL ? e->body : _("[not readable]"));

    wabiz_conv_write_plain(conv, line, PURPLE_MESSAGE_SYSTEM, 0);
  }
  if (rd->entries->len > LIST_MAX) {
    g_autofree char *more = g_strdup_printf(_("... and %u more."), rd->entries->len - LIST_MAX);

    wabiz_conv_write_plain(conv, more, PURPLE_MESSAGE_SYSTEM, 0);
  }
}

static void
list_all(gpointer data, int action)
{
  ResendDialog *rd = dialog_take(data);
  WabizAccount *wa = rd->wa;
  GString *text;

  if (wabiz_bitlbee()) {
    list_as_lines(wa, rd);
    show_dialog(wa, rd);
    return;
  }

  text = g_string_new(NULL);
  for (guint i = 0; i < rd->entries->len && i < LIST_MAX; i++) {
    const WaStoreOutbox *e = g_ptr_array_index(rd->entries, i);
    const char *to = g_hash_table_lookup(rd->address, e->customer_id);
    g_autofree char *who = g_markup_escape_text(to != NULL ? to : "?", -1);
    g_autofree char *body = g_markup_escape_text(e->body != NULL ? e->body : _("[not readable]"), -1);
    g_autofree char *when = g_strdup(purple_date_format_long(localtime(&(time_t){(time_t) e->created})));

    g_string_append_printf(text, "<b>%s</b> (%s): %s<br>", who, when, body);
  }
  if (rd->entries->len > LIST_MAX)
    g_string_append_printf(text, _("... and %u more."), rd->entries->len - LIST_MAX);
  purple_notify_formatted(wa->gc, _("WhatsApp Business: messages that may have been sent"),
                          _("These messages may or may not have reached the customers"), NULL, text->str, NULL, NULL);
  g_string_free(text, TRUE);
  /* and the decision is still to be made */
  show_dialog(wa, rd);
}

static void
show_dialog(WabizAccount *wa, ResendDialog *rd)
{
  guint n = rd->entries->len;
  g_autofree char *primary =
    g_strdup_printf(ngettext("%u message may have been sent", "%u messages may have been sent", n), n);

  dialog_free(wa->resend_dialog);
  wa->resend_dialog = rd;
  if (wabiz_bitlbee()) {
    /* BitlBee wires only OK and Cancel buttons: the question is a line, the
     * answer a command */
    g_autofree char *line = g_strdup_printf(
      _("%s: the answer to these sends was lost, so it is not known whether WhatsApp took them. They were not "
        "sent again automatically. Answer with /resend all (send them again), /resend drop (customers who got "
        "them keep them) or /resend list (show them first)."),
      primary);

    wabiz_conv_write_plain(wabiz_conv_im(wa->account, wabiz_notices_name(), TRUE), line, PURPLE_MESSAGE_SYSTEM, 0);
    return;
  }
  rd->handle =
    purple_request_action(wa->gc, _("WhatsApp Business: messages that may have been sent"), primary,
                          _("The answer to these sends was lost, so it is not known whether WhatsApp took them. "
                            "They were not sent again automatically, so no customer gets a message twice. "
                            "Send them all again, or drop them (customers who got them keep them)."),
                          0, wa->account, NULL, NULL, wa, 3, _("_Resend all"), PURPLE_CALLBACK(resend_all), _("_Drop"),
                          PURPLE_CALLBACK(drop_all), _("_List"), PURPLE_CALLBACK(list_all));
}

/* What "/resend ARG" decides; ASK opens the question. */
typedef enum {
  RESEND_ASK,
  RESEND_ALL,
  RESEND_DROP,
  RESEND_LIST,
} ResendChoice;

typedef struct {
  WabizAccount *wa;
  gboolean forced;
  ResendChoice choice;
  GPtrArray *entries;
} UncertainJob;

static void
uncertain_job_free(UncertainJob *job)
{
  g_clear_pointer(&job->entries, g_ptr_array_unref);
  g_free(job);
}

/* The agent's @choice about @rd (which becomes wa->resend_dialog). */
static void
decide(WabizAccount *wa, ResendDialog *rd, ResendChoice choice)
{
  if (choice == RESEND_ASK) {
    show_dialog(wa, rd);
    return;
  }
  dialog_free(wa->resend_dialog);
  wa->resend_dialog = rd;
  if (choice == RESEND_ALL)
    resend_all(wa, 0);
  else if (choice == RESEND_DROP)
    drop_all(wa, 1);
  else
    list_all(wa, 2);
}

static void
customers_cb(GPtrArray *customers, const GError *error, gpointer data)
{
  UncertainJob *job = data;
  WabizAccount *wa = job->wa;
  ResendDialog *rd;
  ResendChoice choice;

  wabiz_store_release(wa, job);
  if (error != NULL || wa->resend_dialog != NULL) {
    uncertain_job_free(job);
    return;
  }
  rd = g_new0(ResendDialog, 1);
  rd->wa = wa;
  rd->entries = g_steal_pointer(&job->entries);
  rd->address = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  for (guint i = 0; i < customers->len; i++) {
    const WaStoreCustomer *c = g_ptr_array_index(customers, i);
    const char *to = c->wa_id != NULL ? c->wa_id : c->bsuid;

    if (to != NULL)
      g_hash_table_insert(rd->address, g_strdup(c->id), g_strdup(to));
  }
  choice = job->choice;
  uncertain_job_free(job);
  decide(wa, rd, choice);
}

static void
uncertain_cb(GPtrArray *entries, const GError *error, gpointer data)
{
  UncertainJob *job = data;
  WabizAccount *wa = job->wa;
  gint64 now = wabiz_now();
  gint64 cutoff = now - uncertain_grace_s(wa);
  gboolean younger = FALSE;

  wabiz_store_release(wa, job);
  if (error != NULL) {
    uncertain_job_free(job);
    return;
  }
  job->entries = g_ptr_array_new_with_free_func((GDestroyNotify) wa_store_outbox_free);
  for (guint i = 0; i < entries->len; i++) {
    const WaStoreOutbox *e = g_ptr_array_index(entries, i);
    gint64 id = (gint64) e->id;

    /* Younger than the grace period: its status may still come. An entry
     * from the future means the clock went back: it is due now, or it would
     * wait until the clock caught up. */
    if (!job->forced && e->updated > cutoff && e->updated <= now) {
      younger = TRUE;
      continue;
    }
    if (!job->forced && wa->asked != NULL && g_hash_table_contains(wa->asked, &id))
      continue;
    id_set_add(&wa->asked, e->id);
    g_ptr_array_add(job->entries, wa_store_outbox_copy(e));
  }
  if (younger)
    wabiz_outbox_uncertain_later(wa);
  if (job->entries->len == 0) {
    if (job->forced)
      wabiz_notice(wa, _("No message is waiting for a decision."));
    uncertain_job_free(job);
    return;
  }
  wa_store_customers_list(wa->store, customers_cb, wabiz_store_hold(wa, job, (GDestroyNotify) uncertain_job_free));
}

static void
ask_uncertain_with(WabizAccount *wa, gboolean forced, ResendChoice choice)
{
  UncertainJob *job;

  if (wa->store == NULL || (wa->resend_dialog != NULL && !forced))
    return;
  job = g_new0(UncertainJob, 1);
  job->wa = wa;
  job->forced = forced;
  job->choice = choice;
  wa_store_outbox_list(wa->store, WA_STORE_OUTBOX_MASK(WA_STORE_OUTBOX_UNCERTAIN), uncertain_cb,
                       wabiz_store_hold(wa, job, (GDestroyNotify) uncertain_job_free));
}

static void
ask_uncertain(WabizAccount *wa, gboolean forced)
{
  ask_uncertain_with(wa, forced, RESEND_ASK);
}

PurpleCmdRet
wabiz_cmd_resend(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data)
{
  WabizAccount *wa = wabiz_account_data(purple_conversation_get_account(conv));
  const char *arg = args != NULL && args[0] != NULL ? g_strstrip(args[0]) : "";
  ResendChoice choice;

  if (wa == NULL || wa->store == NULL) {
    *error = g_strdup(_("The account is not signed in."));
    return PURPLE_CMD_RET_FAILED;
  }
  if (*arg == '\0')
    choice = RESEND_ASK;
  else if (g_ascii_strcasecmp(arg, "all") == 0)
    choice = RESEND_ALL;
  else if (g_ascii_strcasecmp(arg, "drop") == 0)
    choice = RESEND_DROP;
  else if (g_ascii_strcasecmp(arg, "list") == 0)
    choice = RESEND_LIST;
  else {
    *error = g_strdup_printf(_("\"%s\" is not one of all, drop, list."), arg);
    return PURPLE_CMD_RET_FAILED;
  }
  if (wa->resend_dialog != NULL) {
    ResendDialog *rd = dialog_take(wa);

    if (rd->handle != NULL)
      purple_request_close(PURPLE_REQUEST_ACTION, rd->handle);
    dialog_free(rd);
  }
  /* the messages open now, asked about or not */
  ask_uncertain_with(wa, TRUE, choice);
  return PURPLE_CMD_RET_OK;
}
