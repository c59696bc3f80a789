/* wabiz-inbound.c: applying events from wabiz-receiver.
 *
 * Each event is opened with the account's key and parsed as a one-change
 * webhook body (plugin/core wa-webhook) on the opener's thread
 * (wa-event-opener), then applied here, in the order the events came: customers' messages become
 * incoming IMs from buddies (created on first contact), statuses of our sends
 * record progress and explain failures, messages the business sent elsewhere
 * are shown as sent, groups go to their chats, account-level events to the
 * notices conversation. A backlog is applied in batches (at most
 * APPLY_BATCH_EVENTS events, at most APPLY_WINDOW messages between their
 * store write and their "shown" mark), each acknowledged at once after it
 * was applied; the store answers in time-bounded slices, so the UI stays
 * responsive.
 * Must not: pass customer text to libpurple except through wabiz-conv.c
 * (which escapes it), or acknowledge an event before applying it. */
#include "wabiz.h"

#include <string.h>

#include "wa-describe.h"
#include "wa-json.h"
#include "wa-attach.h"
#include "wa-event-opener.h"


/* ---- late deliveries ------------------------------------------------------ */

/* A message shown more than this long after its time stamp (it arrived while
 * the messenger was closed, or Meta retried it) is backlog: written with
 * PURPLE_MESSAGE_DELAYED, which clients, logs and BitlBee mark. */
#define LATE_AFTER_S (5 * 60)
/* Meta retries a delivery for up to 7 days. Older ones came from a replay or
 * a wrong clock; they are shown (dropping them by time stamp would lose real
 * messages when a clock is wrong), marked with their date. */
#define RETRY_HORIZON_S (7 * 86400)

/* What to show for a message sent at @timestamp (0: unknown): @text, or for
 * one older than Meta's retries @text after a marker with its date (plain
 * text, escaped later with the rest). Adds PURPLE_MESSAGE_DELAYED to *@flags
 * when it is late, and says once per sign-on in the notices that old
 * deliveries arrived. */
static char *
late_text(WabizAccount *wa, gint64 timestamp, const char *text, PurpleMessageFlags *flags)
{
  gint64 age = timestamp > 0 ? wabiz_now() - timestamp : 0;
  g_autoptr(GDateTime) sent = NULL;
  g_autofree char *date = NULL;

  if (age > LATE_AFTER_S)
    *flags |= PURPLE_MESSAGE_DELAYED;
  if (age <= RETRY_HORIZON_S)
    return g_strdup(text);
  sent = g_date_time_new_from_unix_local(timestamp);
  date = sent != NULL ? g_date_time_format(sent, "%Y-%m-%d %H:%M") : g_strdup("?");
  if (!wa->old_told) {
    g_autofree char *notice =
      g_strdup_printf(_("Messages older than WhatsApp's 7 days of retries arrived (one was sent %s). Either old "
                        "deliveries were sent again (a replay) or a clock is wrong, here or at the sender. They are "
                        "shown, marked as delivered late."),
                      date);

    wa->old_told = TRUE;
    wabiz_notice(wa, notice);
  }
  return g_strdup_printf(_("[delivered late: sent %s] %s"), date, text);
}

/* ---- messages ------------------------------------------------------------- */

/* Events applied together: at most this many, acknowledged by one ACK. */
#define APPLY_BATCH_EVENTS 32
/* At most this many messages are between their store write and their
 * committed "shown" mark: the most a crash can show a second time. */
#define APPLY_WINDOW 64

/* A batch of events being applied: their changes are stored, then shown,
 * then marked shown, then the batch is acknowledged (its newest seq). */
struct _WabizApplying {
  WabizAccount *wa;
  gint64 seq;         /* the newest event of the batch */
  GPtrArray *webhook; /* WaWebhook*: the batch's opened events (jobs borrow from them) */
  guint pending;      /* store writes not yet answered or not yet started, plus one while queuing */
  gboolean orphaned;  /* the receiver link went away: show nothing more, ack nothing */
  /* Messages (and echoes) start their store writes together, up to
   * APPLY_WINDOW at a time: the writes share a group commit and are
   * answered in order, so each is shown in turn, and its "shown" mark
   * follows (the marks share commits too). A job that needs more than one
   * store request before its line (a look-up, a status) runs alone, after
   * every earlier one was marked, so lines keep their order. A crash shows
   * again at most the lines whose marks were not committed: at most
   * APPLY_WINDOW. */
  GQueue deferred; /* Deferred*: not started yet */
  guint running;   /* started and not yet marked (or done) */
  guint marking;   /* of those, shown and waiting for their marks */
  gboolean alone;  /* the running one runs alone */
};

typedef struct {
  void (*start)(gpointer job); /* starts its store write */
  gpointer job;
  GDestroyNotify free; /* when it never starts (the link went away) */
  gboolean alone;      /* it needs more than one store request before its line */
} Deferred;

typedef struct {
  WabizApplying *ap;
  const WaChange *change;
  const WaMessage *msg;
  WaStoreInbound in; /* borrows from change, msg (its stored event) and media */
  /* an attachment to download (borrows from msg) */
  WaStoreInboundMedia media;
  /* once stored, what its line needs from the store (look_up) */
  char *message_id; /* the stored message */
  char *customer_id;
  gint64 newest_inbound;
  char *quoted;           /* the text of the message it refers to, when stored */
  gboolean referral_seen; /* its ad referral was shown for this customer before */
} MessageJob;


static void
message_job_free(MessageJob *job)
{
  g_free(job->message_id);
  g_free(job->customer_id);
  wa_crypt_wipe_free(job->quoted);
  g_free(job);
}

static void finish_one(WabizApplying *ap);
static void follow(WabizApplying *ap);

/* Queues @job to start in its turn (@alone: after every earlier one is
 * done, and before any later one starts). */
static void
defer(WabizApplying *ap, void (*start)(gpointer), gpointer job, GDestroyNotify free_func, gboolean alone)
{
  Deferred *d = g_new0(Deferred, 1);

  d->start = start;
  d->job = job;
  d->free = free_func;
  d->alone = alone;
  ap->pending++;
  g_queue_push_tail(&ap->deferred, d);
}

/* Starts the next deferred messages: up to APPLY_WINDOW at a time, or one
 * that runs alone. */
static void
run_next(WabizApplying *ap)
{
  Deferred *d;

  while (!ap->orphaned && !ap->alone && ap->running < APPLY_WINDOW && (d = g_queue_peek_head(&ap->deferred)) != NULL) {
    if (d->alone && ap->running > 0)
      return;
    g_queue_pop_head(&ap->deferred);
    ap->running++;
    ap->alone = d->alone;
    d->start(d->job);
    g_free(d);
  }
}

/* A started message is done (stored, shown and marked). */
static void
next_message(WabizApplying *ap)
{
  ap->running--;
  ap->alone = FALSE;
  run_next(ap);
  follow(ap);
}

static void
deferred_free(Deferred *d)
{
  d->free(d->job);
  g_free(d);
}

static void
marked(WabizApplying *ap, const GError *error)
{
  if (error != NULL)
    purple_debug_warning("wabiz", "a shown message could not be marked shown: %s\n", error->message);
  wabiz_test_crash_point("inbound-marked");
}

static void
marked_cb(const GError *error, gpointer data)
{
  WabizApplying *ap = data;

  marked(ap, error);
  ap->marking--;
  next_message(ap);
  finish_one(ap);
}

/* "Shown" marks wait for the end of the turn of the loop that showed their
 * lines and go to the store together, so that they share one transaction
 * (the store's group commit) instead of one each. Every later store write
 * of the inbound path sends them first (marks_flush), so the next lines
 * still queue behind them. */
typedef struct {
  char *message_id;
  WabizApplying *ap;
} DueMark;

static void
marks_flush(WabizAccount *wa)
{
  if (wa->marks_timer != 0) {
    purple_timeout_remove(wa->marks_timer);
    wa->marks_timer = 0;
  }
  for (guint i = 0; wa->marks_due != NULL && i < wa->marks_due->len; i++) {
    DueMark *m = g_ptr_array_index(wa->marks_due, i);

    if (wa->store != NULL)
      wa_store_message_mark_shown(wa->store, m->message_id, marked_cb, m->ap);
    g_free(m->message_id);
    g_free(m);
  }
  if (wa->marks_due != NULL)
    g_ptr_array_set_size(wa->marks_due, 0);
}

static gboolean
marks_cb(gpointer data)
{
  WabizAccount *wa = data;

  wa->marks_timer = 0;
  marks_flush(wa);
  return G_SOURCE_REMOVE;
}

static void
mark_shown(WabizApplying *ap, const char *message_id)
{
  WabizAccount *wa = ap->wa;
  DueMark *m = g_new(DueMark, 1);

  m->message_id = g_strdup(message_id);
  m->ap = ap;
  if (wa->marks_due == NULL)
    wa->marks_due = g_ptr_array_new();
  g_ptr_array_add(wa->marks_due, m);
  if (wa->marks_timer == 0)
    wa->marks_timer = purple_timeout_add(0, marks_cb, wa);
}

/* Whether a stored message is to be shown now: not when an earlier session
 * showed it (marked in the store) or this one did (live or as history). One
 * not yet marked is marked. The event's next message or status waits for
 * that mark (next_message from marked_cb), or starts now when there is
 * nothing to mark. */
static gboolean
should_show_id(WabizApplying *ap, const char *message_id, gboolean shown_before)
{
  gboolean show;

  if (message_id == NULL) {
    next_message(ap);
    return TRUE; /* not stored: shown as it is */
  }
  show = !shown_before && wabiz_history_mark_shown(ap->wa, message_id);
  if (!shown_before) {
    ap->pending++;
    ap->marking++;
    mark_shown(ap, message_id);
    follow(ap);
  } else {
    next_message(ap);
  }
  return show;
}

static gboolean
should_show(WabizApplying *ap, const WaStoreInboundResult *result)
{
  return should_show_id(ap, result != NULL ? result->message_id : NULL, result != NULL && result->shown);
}

/* Who sent @msg: its wa_id and BSUID, each NULL unless it is a valid one
 * (hostile ids never name a buddy or a conversation). */
static void
sender_ids(const WaChange *change, const WaMessage *msg, const char **wa_id, const char **bsuid)
{
  const WaContact *contact = wa_change_find_contact(change, msg);
  const char *user_id = msg->from_user_id != NULL ? msg->from_user_id : (contact != NULL ? contact->user_id : NULL);

  *wa_id = wa_id_phone_or_null(msg->from != NULL ? msg->from : (contact != NULL ? contact->wa_id : NULL));
  /* a user ID change may name the old one only as previous_user_id */
  *bsuid = wa_id_bsuid_or_null(user_id != NULL ? user_id : msg->system_previous_user_id);
}

typedef struct {
  WabizAccount *wa;
  char *who; /* the buddy's name */
} BsuidJob;

static void
bsuid_job_free(BsuidJob *job)
{
  g_free(job->who);
  g_free(job);
}

static void
bsuid_linked_cb(const WaStoreCustomerUpdate *update, const GError *error, gpointer data)
{
  BsuidJob *job = data;

  wabiz_store_release(job->wa, job);
  if (error != NULL || (update != NULL && update->conflict)) {
    g_autofree char *line = g_strdup_printf(
      _("The customer's new WhatsApp user ID could not be linked to their stored history (%s): their next "
        "messages may start a new history."),
      error != NULL ? error->message : _("another customer already has it"));

    wabiz_conv_write_plain(wabiz_conv_im(job->wa->account, job->who, TRUE), line, PURPLE_MESSAGE_ERROR, 0);
  }
  bsuid_job_free(job);
}

/* WhatsApp gave the customer of @buddy a new business-scoped user ID: a
 * buddy named by the old one takes the new one (with its conversation), the
 * store links it to the customer (their history stays theirs). */
static void
follow_user_id(WabizAccount *wa, PurpleBuddy *buddy, const char *customer_id, const char *new_id)
{
  const char *bsuid = wa_id_bsuid_or_null(new_id);
  g_autofree char *name = g_strdup(purple_buddy_get_name(buddy));
  g_autofree char *line = NULL;
  const char *now = name;
  BsuidJob *job;

  if (bsuid == NULL)
    return;
  if (wa_id_is_bsuid(name) && wabiz_customer_rename(wa, name, bsuid))
    now = bsuid;
  buddy = purple_find_buddy(wa->account, now);
  if (buddy != NULL)
    purple_blist_node_set_string(&buddy->node, WABIZ_NODE_BSUID, bsuid);
  line = g_strdup_printf(_("The customer's WhatsApp user ID changed to %s; the buddy follows it."), bsuid);
  wabiz_conv_write_plain(wabiz_conv_im(wa->account, now, TRUE), line, PURPLE_MESSAGE_SYSTEM, 0);
  if (customer_id == NULL || wa->store == NULL)
    return;
  job = g_new0(BsuidJob, 1);
  job->wa = wa;
  job->who = g_strdup(now);
  wa_store_customer_set_bsuid(wa->store, customer_id, bsuid, bsuid_linked_cb,
                              wabiz_store_hold(wa, job, (GDestroyNotify) bsuid_job_free));
}

/* A consent change the event brought (STOP, an opt-out button, a
 * preference, 131050) is recorded: one write of the batch fewer, so the
 * batch is acknowledged only once the ledger has it. */
static void
consent_settled(gpointer data)
{
  finish_one(data);
}

static void
show_message(WabizApplying *ap, const WaChange *change, const WaMessage *msg, const char *customer_id,
             gint64 newest_inbound, const WaDescribeContext *known)
{
  WabizAccount *wa = ap->wa;
  WaDescribeContext dctx = {0};
  const WaContact *contact = wa_change_find_contact(change, msg);
  const char *wa_id = NULL;
  const char *bsuid = NULL;
  const char *profile = contact != NULL ? contact->profile_name : NULL;
  g_autofree char *described = NULL;
  g_autofree char *text = NULL;
  PurpleMessageFlags late = 0;
  PurpleBuddy *buddy;
  const char *name;

  sender_ids(change, msg, &wa_id, &bsuid);
  buddy = wabiz_customer_buddy(wa, wa_id, bsuid, profile, TRUE);
  if (buddy == NULL) {
    wabiz_notice(wa, _("A message whose sender is not a valid WhatsApp number or user ID was skipped."));
    return;
  }
  wabiz_customer_identify(wa, buddy, customer_id, profile);
  wabiz_kinds_username_seen(wa, buddy, customer_id, contact != NULL ? contact->username : NULL);
  name = purple_buddy_get_name(buddy);
  if (known != NULL)
    dctx = *known;
  dctx.first_contact = wabiz_kinds_add_cards(wa, name, msg);
  dctx.command_prefix = wabiz_bitlbee() ? '!' : '/';
  described = wa_message_describe_in(msg, &dctx);
  text = late_text(wa, msg->timestamp, described, &late);
  if (g_strcmp0(msg->type, "system") == 0) {
    wabiz_conv_write_plain(wabiz_conv_im(wa->account, name, TRUE), text, PURPLE_MESSAGE_SYSTEM | late,
                           (time_t) msg->timestamp);
    /* the customer's new number: the buddy (and its window) follow it */
    if (g_strcmp0(msg->system_type, "user_changed_number") == 0 && msg->system_new_wa_id != NULL &&
        !wa_id_is_bsuid(name) && wabiz_customer_rename(wa, name, msg->system_new_wa_id)) {
      g_autofree char *line = g_strdup_printf(_("The buddy now uses the new number +%s."), msg->system_new_wa_id);

      wabiz_conv_write_plain(wabiz_conv_im(wa->account, msg->system_new_wa_id, TRUE), line, PURPLE_MESSAGE_SYSTEM, 0);
    }
    if (g_strcmp0(msg->system_type, "user_changed_user_id") == 0 && msg->system_new_user_id != NULL)
      follow_user_id(wa, buddy, customer_id, msg->system_new_user_id);
    return;
  }
  wabiz_conv_got_im(wa, name, text, (time_t) msg->timestamp, late);
  ap->pending += wabiz_consent_inbound(wa, name, msg, consent_settled, ap); /* STOP, or an opt-out button */
  wabiz_receipts_inbound(wa, name, msg->id, msg->timestamp);
  /* an unsupported message's line carries WhatsApp's words already */
  for (guint i = 0; g_strcmp0(msg->type, "unsupported") != 0 && i < msg->errors->len; i++) {
    g_autofree char *reason = wa_graph_error_describe(g_ptr_array_index(msg->errors, i));
    g_autofree char *line = g_strdup_printf(_("WhatsApp could not pass this message on completely: %s"), reason);

    wabiz_conv_write_plain(wabiz_conv_im(wa->account, name, TRUE), line, PURPLE_MESSAGE_ERROR, 0);
  }
  if (wa_message_opens_window(msg))
    wabiz_window_update(wa, buddy,
                        newest_inbound > 0 ? newest_inbound
                                           : (msg->timestamp > 0 ? MIN(msg->timestamp, wabiz_now()) : wabiz_now()));
}

/* ---- what a line needs from the store --------------------------------------
 * A reply, reaction, edit or deletion quotes the message it refers to, and
 * an ad referral is shown once per customer and ad: both are looked up
 * after the message is stored and before it is shown. The event's next
 * message waits (it starts from should_show_id), so lines keep their order. */

/* The store setting (per customer) naming the last ad referral shown. */
#define SETTING_REFERRAL "referral"

static void show_looked_up(MessageJob *job);

static void
referral_saved_cb(const GError *error, gpointer data)
{
  if (error != NULL)
    purple_debug_warning("wabiz", "an ad referral could not be remembered: %s\n", error->message);
}

static void
referral_cb(const char *value, const GError *error, gpointer data)
{
  MessageJob *job = data;
  const char *key = wa_message_referral_key(job->msg);

  wabiz_store_release(job->ap->wa, job);
  job->referral_seen = error == NULL && g_strcmp0(value, key) == 0;
  if (!job->referral_seen && !job->ap->orphaned)
    wa_store_setting_set(job->ap->wa->store, job->customer_id, SETTING_REFERRAL, key, referral_saved_cb, NULL);
  show_looked_up(job);
}

static void
look_up_referral(MessageJob *job)
{
  WabizAccount *wa = job->ap->wa;

  if (job->ap->orphaned || job->customer_id == NULL || wa_message_referral_key(job->msg) == NULL) {
    show_looked_up(job);
    return;
  }
  marks_flush(job->ap->wa);
  wa_store_setting_get(wa->store, job->customer_id, SETTING_REFERRAL, referral_cb,
                       wabiz_store_hold(wa, job, (GDestroyNotify) message_job_free));
}

static void
found_cb(const WaStoreMessage *found, const GError *error, gpointer data)
{
  MessageJob *job = data;

  wabiz_store_release(job->ap->wa, job);
  if (error != NULL)
    purple_debug_warning("wabiz", "a quoted message could not be read: %s\n", error->message);
  /* the customer's messages and ours alike; gone (expired, erased) is not stored */
  if (found != NULL && !found->tampered && !found->expired) {
    if (found->body != NULL && *found->body != '\0')
      job->quoted = g_strdup(found->body);
    else if (found->caption != NULL && *found->caption != '\0')
      job->quoted = g_strdup(found->caption);
    else if (found->type == NULL || g_str_equal(found->type, "unknown"))
      job->quoted = g_strdup(_("[a message whose text is not known here]"));
    else
      job->quoted = g_strdup_printf(_("[%s message]"), found->type);
  }
  look_up_referral(job);
}

/* Starts what @job's line needs from the store; show_looked_up follows. */
static void
look_up(MessageJob *job)
{
  const char *ref = wa_message_referenced_id(job->msg);

  if (ref == NULL || job->ap->orphaned) {
    look_up_referral(job);
    return;
  }
  marks_flush(job->ap->wa);
  wa_store_message_find(job->ap->wa->store, ref, found_cb,
                        wabiz_store_hold(job->ap->wa, job, (GDestroyNotify) message_job_free));
}

static gboolean
needs_look_up(const WaMessage *msg)
{
  return wa_message_referenced_id(msg) != NULL || wa_message_referral_key(msg) != NULL;
}

static void
show_looked_up(MessageJob *job)
{
  WabizApplying *ap = job->ap;

  if (!ap->orphaned && should_show_id(ap, job->message_id, FALSE)) {
    WaDescribeContext known = {.quoted = job->quoted, .referral_seen = job->referral_seen};

    show_message(ap, job->change, job->msg, job->customer_id, job->newest_inbound, &known);
    wabiz_test_crash_point("inbound-shown");
  }
  message_job_free(job);
  finish_one(ap);
}

static void
stored_cb(const WaStoreInboundResult *result, const GError *error, gpointer data)
{
  MessageJob *job = data;
  WabizApplying *ap = job->ap;
  const WaStoreCustomer *customer = result != NULL ? result->customer.customer : NULL;

  wabiz_store_release(ap->wa, job);
  if (!ap->orphaned) {
    if (error != NULL) {
      g_autofree char *text =
        g_strdup_printf(_("A customer's message could not be stored (%s); it is shown, but will be missing from the "
                          "history."),
                        error->message);

      wabiz_notice(ap->wa, text);
    }
    wabiz_test_crash_point("inbound-stored");
    if (result != NULL && result->message_id != NULL && !result->shown && needs_look_up(job->msg)) {
      job->message_id = g_strdup(result->message_id);
      job->customer_id = g_strdup(customer != NULL ? customer->id : NULL);
      job->newest_inbound = customer != NULL ? customer->newest_inbound : 0;
      look_up(job); /* shows it, then finishes */
      return;
    }
    /* each message is shown once: a duplicate (stored before a crash or a
     * lost acknowledgement) only when it was not shown yet */
    if (should_show(ap, result)) {
      show_message(ap, job->change, job->msg, customer != NULL ? customer->id : NULL,
                   customer != NULL ? customer->newest_inbound : 0, NULL);
      wabiz_test_crash_point("inbound-shown");
    }
    /* its attachment downloads beside the queue (a duplicate's resumes) */
    if (result != NULL && result->media != NULL)
      wabiz_media_arrived(ap->wa, result->media);
  }
  message_job_free(job);
  finish_one(ap);
}

static void
start_message(gpointer data)
{
  MessageJob *job = data;

  marks_flush(job->ap->wa);
  wa_store_inbound(job->ap->wa->store, &job->in, stored_cb,
                   wabiz_store_hold(job->ap->wa, job, (GDestroyNotify) message_job_free));
}

static void
apply_message(WabizApplying *ap, const WaChange *change, const WaMessage *msg)
{
  const WaContact *contact = wa_change_find_contact(change, msg);
  WaStoreInbound in = {0};
  MessageJob *job;

  sender_ids(change, msg, &in.wa_id, &in.bsuid);
  if (msg->group_id != NULL) {
    /* anything else would name a chat */
    if (!wa_group_id_is_valid(msg->group_id)) {
      wabiz_notice(ap->wa, _("A group message with an invalid group ID was skipped."));
      return;
    }
    wabiz_group_message(ap->wa, msg, contact != NULL ? contact->profile_name : NULL);
    return;
  }
  if (msg->id == NULL || msg->type == NULL || (in.wa_id == NULL && in.bsuid == NULL)) {
    show_message(ap, change, msg, NULL, 0, NULL); /* cannot be stored: shown as it is */
    return;
  }
  in.profile_name = contact != NULL ? contact->profile_name : NULL;
  in.direction = WA_STORE_IN;
  in.wamid = msg->id;
  in.type = msg->type;
  in.body = msg->text;
  /* a time stamp from the future (a wrong clock, ours or the sender's) would
   * hold the service window open until then: it counts as now */
  in.timestamp = msg->timestamp > 0 ? MIN(msg->timestamp, wabiz_now()) : wabiz_now();
  job = g_new0(MessageJob, 1);
  job->ap = ap;
  job->change = change;
  job->msg = msg;
  in.raw = msg->stored; /* made on the opener's thread (wa_webhook_prepare_stored) */
  if (msg->media_id != NULL && wa_attach_type_downloads(msg->type)) {
    job->media.media_id = msg->media_id;
    job->media.mime_type = msg->mime_type;
    job->media.sha256 = msg->sha256;
    job->media.filename = msg->filename;
    job->media.voice = msg->voice;
    in.media = &job->media;
  }
  job->in = in;
  defer(ap, start_message, job, (GDestroyNotify) message_job_free, needs_look_up(msg));
}

/* ---- statuses ------------------------------------------------------------- */

/* Statuses go in the event's sequence after its messages, one after
 * another like them: a status of a send made elsewhere stores that message
 * and shows a line for it, which is marked shown before the next starts. */
typedef struct {
  WabizApplying *ap;
  const WaStatus *st;
  char *reason;               /* a failure's reason, for the store */
  WaStoreStatusUpdate update; /* borrows from st and reason */
} StatusJob;

static void
status_job_free(StatusJob *job)
{
  g_free(job->reason);
  g_free(job);
}

/* The conversation a status about @st belongs to: the buddy's name when
 * there is one (a BSUID customer may have a phone number by now). */
static const char *
status_customer(WabizAccount *wa, const WaStatus *st)
{
  PurpleBuddy *buddy = wabiz_customer_buddy(wa, st->recipient_id, st->recipient_user_id, NULL, FALSE);

  if (buddy != NULL)
    return purple_buddy_get_name(buddy);
  return wa_id_phone_or_null(st->recipient_id) != NULL ? st->recipient_id : wa_id_bsuid_or_null(st->recipient_user_id);
}

static void
show_failure(WabizApplying *ap, const WaStatus *st)
{
  WabizAccount *wa = ap->wa;
  const char *customer = status_customer(wa, st);

  /* failures are written whatever the ticks option says: they are not ticks
   * but messages that did not reach the customer */
  if (customer == NULL)
    return;
  if (st->errors->len == 0)
    wabiz_conv_write_plain(wabiz_conv_im(wa->account, customer, TRUE), _("Not delivered: WhatsApp gave no reason."),
                           PURPLE_MESSAGE_ERROR, 0);
  for (guint i = 0; i < st->errors->len; i++) {
    g_autofree char *reason = wa_graph_error_describe(g_ptr_array_index(st->errors, i));
    g_autofree char *line = g_strdup_printf(_("Not delivered: %s"), reason);

    wabiz_conv_write_plain(wabiz_conv_im(wa->account, customer, TRUE), line, PURPLE_MESSAGE_ERROR, 0);
    /* 131050: opted out */
    ap->pending += wabiz_consent_api_error(wa, customer, g_ptr_array_index(st->errors, i), consent_settled, ap);
  }
}

/* A send of this number we did not make (another app, agent, or the
 * WhatsApp Business app on the phone), stored as sent elsewhere so that its
 * further statuses are known and it is shown once. */
static void
elsewhere_stored_cb(const WaStoreInboundResult *result, const GError *error, gpointer data)
{
  StatusJob *job = data;
  WabizApplying *ap = job->ap;

  wabiz_store_release(ap->wa, job);
  if (!ap->orphaned) {
    wabiz_test_crash_point("inbound-stored");
    /* not stored (an error): shown as it is */
    if (should_show(ap, result)) {
      PurpleBuddy *buddy = wabiz_customer_buddy(ap->wa, job->st->recipient_id, job->st->recipient_user_id, NULL, TRUE);

      if (buddy != NULL) {
        PurpleMessageFlags late = 0;
        g_autofree char *text =
          late_text(ap->wa, job->st->timestamp,
                    _("[A message sent from another app or device; its text is not available here]"), &late);

        if (result != NULL && result->customer.customer != NULL)
          wabiz_customer_identify(ap->wa, buddy, result->customer.customer->id, NULL);
        wabiz_conv_write_elsewhere(ap->wa->account, purple_buddy_get_name(buddy), text, (time_t) job->st->timestamp,
                                   late);
      }
      wabiz_test_crash_point("inbound-shown");
    }
  }
  status_job_free(job);
  finish_one(ap);
}

/* Stores (or, applied again after a crash, finds) the message sent
 * elsewhere that @job's status is about; elsewhere_stored_cb shows it. */
static void
store_elsewhere(StatusJob *job)
{
  WabizAccount *wa = job->ap->wa;
  const WaStatus *st = job->st;
  WaStoreInbound out = {0};

  out.wa_id = wa_id_phone_or_null(st->recipient_id);
  out.bsuid = wa_id_bsuid_or_null(st->recipient_user_id);
  out.direction = WA_STORE_ELSEWHERE;
  out.wamid = st->id;
  out.type = "unknown";
  out.timestamp = st->timestamp > 0 ? st->timestamp : wabiz_now();
  job->ap->pending++;
  marks_flush(wa);
  wa_store_inbound(wa->store, &out, elsewhere_stored_cb, wabiz_store_hold(wa, job, (GDestroyNotify) status_job_free));
}

static void
status_stored_cb(const WaStoreStatusResult *result, const GError *error, gpointer data)
{
  StatusJob *job = data;
  WabizApplying *ap = job->ap;
  WabizAccount *wa = ap->wa;
  const WaStatus *st = job->st;
  gboolean ours = wa_sender_parse_callback_data(st->biz_opaque_callback_data) != 0;

  wabiz_store_release(wa, job);
  if (ap->orphaned) {
    status_job_free(job);
    finish_one(ap);
    return;
  }
  if (error != NULL) {
    purple_debug_warning("wabiz", "a status could not be stored: %s\n", error->message);
    if (g_str_equal(st->status, "failed"))
      show_failure(ap, st);
  } else if (result->found && result->outbox_id != 0) {
    wabiz_receipts_status(wa, status_customer(wa, st), st, result->changed);
    if (result->changed && result->status == WA_STORE_STATUS_FAILED)
      show_failure(ap, st);
    else if (result->outbox_resolved && result->outbox_state == WA_STORE_OUTBOX_SENT)
      wabiz_outbox_resolved(wa, result->outbox_id, result->outbox_before, status_customer(wa, st));
  } else if (g_str_equal(st->status, "failed")) {
    if (!result->found || result->changed)
      show_failure(ap, st);
  } else if (!ours && (!result->found || result->direction == WA_STORE_ELSEWHERE)) {
    /* new, or stored before a crash that came before its line was shown */
    store_elsewhere(job);
    finish_one(ap);
    return;
  }
  next_message(ap);
  status_job_free(job);
  finish_one(ap);
}

static void
start_status(gpointer data)
{
  StatusJob *job = data;

  marks_flush(job->ap->wa);
  wa_store_message_status(job->ap->wa->store, &job->update, status_stored_cb,
                          wabiz_store_hold(job->ap->wa, job, (GDestroyNotify) status_job_free));
}

static void
apply_status(WabizApplying *ap, const WaStatus *st)
{
  WaStoreStatus status = wa_store_status_from_string(st->status);
  StatusJob *job;

  /* unknown (e.g. "deleted"): a no-op; statuses of group sends (one per participant) are not applied yet */
  if (status == WA_STORE_STATUS_NONE || st->id == NULL || g_strcmp0(st->recipient_type, "group") == 0 ||
      (wa_id_phone_or_null(st->recipient_id) == NULL && wa_id_bsuid_or_null(st->recipient_user_id) == NULL))
    return;
  job = g_new0(StatusJob, 1);
  job->ap = ap;
  job->st = st;
  if (st->errors->len > 0)
    job->reason = wa_graph_error_describe(g_ptr_array_index(st->errors, 0));
  job->update.status = status;
  job->update.wamid = st->id;
  job->update.outbox_id = wa_sender_parse_callback_data(st->biz_opaque_callback_data);
  job->update.error_text = job->reason;
  /* a campaign's recipient keeps the status's pricing and error code (the
   * store ignores entries that are not a campaign's) */
  if (job->update.outbox_id != 0 && (st->pricing_category != NULL || st->errors->len > 0)) {
    const WaGraphError *first = st->errors->len > 0 ? g_ptr_array_index(st->errors, 0) : NULL;

    wa_store_campaign_outbox_note(ap->wa->store, job->update.outbox_id,
                                  first != NULL && first->code > 0 && first->code <= G_MAXINT ? (gint) first->code : 0,
                                  st->pricing_category, NULL, NULL);
  }
  job->update.timestamp = st->timestamp > 0 ? st->timestamp : wabiz_now();
  defer(ap, start_status, job, (GDestroyNotify) status_job_free, TRUE);
}

/* ---- other fields --------------------------------------------------------- */

/* A message the business sent from the WhatsApp Business app (coexistence),
 * kept in the store as sent elsewhere. */
typedef struct {
  WabizApplying *ap;
  char *to;
  char *text;
  gint64 timestamp;
  WaStoreInbound in; /* borrows from the event (ap->webhook) */
} EchoJob;

static void
echo_job_free(EchoJob *job)
{
  g_free(job->to);
  wa_crypt_wipe_free(job->text);
  g_free(job);
}

static void
show_echo(WabizAccount *wa, const char *to, const char *text, gint64 timestamp, const char *customer_id)
{
  gboolean bsuid = wa_id_is_bsuid(to);
  PurpleBuddy *buddy = wabiz_customer_buddy(wa, bsuid ? NULL : to, bsuid ? to : NULL, NULL, TRUE);
  PurpleMessageFlags late = 0;
  g_autofree char *shown = NULL;

  if (buddy == NULL)
    return;
  wabiz_customer_identify(wa, buddy, customer_id, NULL);
  shown = late_text(wa, timestamp, text, &late);
  wabiz_conv_write_elsewhere(wa->account, purple_buddy_get_name(buddy), shown, (time_t) timestamp, late);
}

static void
echo_stored_cb(const WaStoreInboundResult *result, const GError *error, gpointer data)
{
  EchoJob *job = data;
  WabizApplying *ap = job->ap;
  const WaStoreCustomer *customer = result != NULL ? result->customer.customer : NULL;

  wabiz_store_release(ap->wa, job);
  if (!ap->orphaned && should_show(ap, result))
    show_echo(ap->wa, job->to, job->text, job->timestamp, customer != NULL ? customer->id : NULL);
  echo_job_free(job);
  finish_one(ap);
}

static void
start_echo(gpointer data)
{
  EchoJob *job = data;

  marks_flush(job->ap->wa);
  wa_store_inbound(job->ap->wa->store, &job->in, echo_stored_cb,
                   wabiz_store_hold(job->ap->wa, job, (GDestroyNotify) echo_job_free));
}

static void
apply_echoes(WabizApplying *ap, const WaChange *change)
{
  for (guint i = 0; i < change->echoes->len; i++) {
    const WaEcho *echo = g_ptr_array_index(change->echoes, i);
    const char *to = echo->to;
    WaStoreInbound out = {0};
    EchoJob *job;

    if (wa_id_phone_or_null(to) == NULL && wa_id_bsuid_or_null(to) == NULL)
      continue; /* not an id: names nothing */
    job = g_new0(EchoJob, 1);
    job->ap = ap;
    job->to = g_strdup(to);
    job->text = echo->text != NULL ? g_strdup(echo->text)
                                   : g_strdup_printf(_("[A %s message sent from the WhatsApp Business app]"),
                                                     echo->type != NULL ? echo->type : "?");
    job->timestamp = echo->timestamp;
    if (echo->id == NULL) {
      show_echo(ap->wa, job->to, job->text, job->timestamp, NULL); /* cannot be stored */
      echo_job_free(job);
      continue;
    }
    out.wa_id = wa_id_is_bsuid(to) ? NULL : to;
    out.bsuid = wa_id_is_bsuid(to) ? to : NULL;
    out.direction = WA_STORE_ELSEWHERE;
    out.wamid = echo->id;
    out.type = echo->type != NULL ? echo->type : "unknown";
    out.body = echo->text;
    out.raw = echo->stored;
    out.timestamp = job->timestamp > 0 ? job->timestamp : wabiz_now();
    job->in = out;
    defer(ap, start_echo, job, (GDestroyNotify) echo_job_free, FALSE);
  }
}

static void
apply_groups(WabizAccount *wa, const WaChange *change)
{
  for (guint i = 0; i < change->groups->len; i++) {
    const WaGroupEvent *g = g_ptr_array_index(change->groups, i);
    GString *text;

    if (g->group_id == NULL || !wa_group_id_is_valid(g->group_id))
      continue;
    text = g_string_new(NULL);
    if (g_strcmp0(g->type, "group_create") == 0)
      g_string_append(text, _("The group was created."));
    else if (g_strcmp0(change->field, "group_settings_update") == 0)
      g_string_append(text, _("The group's settings changed."));
    else if (g->added < 0 && g->removed < 0)
      g_string_append_printf(text, _("Group event: %s."), g->type != NULL ? g->type : change->field);
    if (g->subject != NULL)
      g_string_append_printf(text, _(" Subject: %s."), g->subject);
    if (g->added >= 0)
      g_string_append_printf(text, ngettext(" %u participant joined.", " %u participants joined.", (guint) g->added),
                             (guint) g->added);
    if (g->removed >= 0)
      g_string_append_printf(text,
                             ngettext(" %u participant left or was removed.", " %u participants left or were removed.",
                                      (guint) g->removed),
                             (guint) g->removed);
    {
      PurpleMessageFlags late = 0; /* group lines are system lines: only the marker */
      g_autofree char *shown = late_text(wa, g->timestamp, g_strstrip(text->str), &late);

      wabiz_group_event(wa, g->group_id, shown, (time_t) g->timestamp);
    }
    g_string_free(text, TRUE);
  }
}

/* An account-level event (templates, quality, account updates...): a short
 * line with the event's simple members, until each has its own feature. */
static void
apply_account_event(WabizAccount *wa, const WaChange *change)
{
  JsonObject *value =
    change->value != NULL && JSON_NODE_HOLDS_OBJECT(change->value) ? json_node_get_object(change->value) : NULL;
  GString *text = g_string_new(NULL);
  GList *members = value != NULL ? json_object_get_members(value) : NULL;
  guint shown = 0;

  g_string_printf(text, _("Account event \"%s\":"), change->field != NULL ? change->field : "?");
  for (GList *l = members; l != NULL && shown < 8; l = l->next) {
    JsonNode *node = json_object_get_member(value, l->data);
    g_autofree char *id = NULL;

    if (g_str_equal(l->data, "messaging_product") || g_str_equal(l->data, "metadata") || !JSON_NODE_HOLDS_VALUE(node))
      continue;
    id = wa_json_dup_id(value, l->data);
    if (id == NULL && json_node_get_value_type(node) == G_TYPE_BOOLEAN)
      id = g_strdup(json_node_get_boolean(node) ? "true" : "false");
    if (id == NULL)
      continue;
    g_string_append_printf(text, " %s=%s", (const char *) l->data, id);
    shown++;
  }
  g_list_free(members);
  wabiz_notice(wa, text->str);
  g_string_free(text, TRUE);
}

static void
apply_change(WabizApplying *ap, const WaChange *change)
{
  WabizAccount *wa = ap->wa;

  if (g_strcmp0(change->field, "messages") == 0) {
    for (guint i = 0; i < change->messages->len; i++)
      apply_message(ap, change, g_ptr_array_index(change->messages, i));
    for (guint i = 0; i < change->statuses->len; i++)
      apply_status(ap, g_ptr_array_index(change->statuses, i));
    for (guint i = 0; i < change->errors->len; i++) {
      g_autofree char *reason = wa_graph_error_describe(g_ptr_array_index(change->errors, i));
      g_autofree char *text = g_strdup_printf(_("WhatsApp reported a problem: %s"), reason);

      wabiz_notice(wa, text);
    }
  } else if (g_strcmp0(change->field, "smb_message_echoes") == 0) {
    apply_echoes(ap, change);
  } else if (change->field != NULL && g_str_has_prefix(change->field, "group_")) {
    apply_groups(wa, change);
  } else if (g_strcmp0(change->field, "calls") == 0 && change->calls->len > 0) {
    wabiz_kinds_calls(wa, change);
  } else if (wabiz_templates_webhook(wa, change)) {
    /* told and refreshed there */
  } else if (g_strcmp0(change->field, "user_preferences") == 0) {
    ap->pending += wabiz_consent_preferences(wa, change, consent_settled, ap);
  } else if (!wabiz_kinds_customer_event(wa, change)) {
    apply_account_event(wa, change);
  }
}

/* ---- events ---------------------------------------------------------------
 * Events are opened and parsed on the opener's thread (wa-event-opener) in
 * the order they came; the loop takes them back in that order. */

static void apply_next(WabizAccount *wa);

/* Whether a batch can start: a full one is opened, or every queued event is
 * (a batch as small as the opener's pace would cost one commit for a few
 * events). */
static gboolean
batch_ready(WabizAccount *wa)
{
  guint ready = wa->opener != NULL ? wa_event_opener_ready(wa->opener, APPLY_BATCH_EVENTS) : 0;

  return ready > 0 && (ready == APPLY_BATCH_EVENTS || ready == wa_event_opener_length(wa->opener));
}

static gboolean
next_cb(gpointer data)
{
  WabizAccount *wa = data;

  wa->inbound_slice = 0;
  apply_next(wa);
  return G_SOURCE_REMOVE;
}

/* Applying the next events waits for a turn of the loop, and for them to be
 * opened: a backlog never holds the UI. */
static void
schedule_next(WabizAccount *wa)
{
  if (wa->inbound_slice == 0 && wa->applying == NULL && batch_ready(wa))
    wa->inbound_slice = purple_timeout_add(0, next_cb, wa);
}

static void
applying_free(WabizApplying *ap)
{
  g_queue_clear_full(&ap->deferred, (GDestroyNotify) deferred_free);
  /* freed on the opener's thread while there is one */
  for (guint i = 0; i < ap->webhook->len; i++) {
    if (ap->wa->opener != NULL)
      wa_event_opener_dispose(ap->wa->opener, g_ptr_array_index(ap->webhook, i));
    else
      wa_webhook_free(g_ptr_array_index(ap->webhook, i));
  }
  g_ptr_array_unref(ap->webhook);
  g_free(ap);
}

/* Every line of @ap's batch is shown, only marks are waited for: the next
 * batch may start. Its store writes queue behind these marks and are
 * answered after them, so its lines come after these, and a crash can come
 * after its first line only once these marks are committed. */
static void
follow(WabizApplying *ap)
{
  WabizAccount *wa = ap->wa;

  if (wa->applying != ap || ap->pending <= 1 || !g_queue_is_empty(&ap->deferred) || ap->running != ap->marking)
    return;
  wa->applying = NULL;
  wa->orphans = g_slist_prepend(wa->orphans, ap); /* until its marks are answered */
  schedule_next(wa);
}

/* One store write (or the queuing itself) is done; the last one acknowledges
 * the batch: everything in it is committed and shown. */
static void
finish_one(WabizApplying *ap)
{
  WabizAccount *wa = ap->wa;

  if (--ap->pending > 0)
    return;
  if (wa->applying == ap)
    wa->applying = NULL;
  wa->orphans = g_slist_remove(wa->orphans, ap);
  if (!ap->orphaned) {
    wa->applied_seq = MAX(wa->applied_seq, ap->seq);
    if (wa->rx != NULL)
      wa_rxclient_ack(wa->rx, ap->seq);
    schedule_next(wa);
  }
  applying_free(ap);
}

/* The webhook of an opened event, or NULL (told in the notices) when it
 * could not be opened or read. */
static WaWebhook *
take_webhook(WabizAccount *wa, WaOpenedEvent *event)
{
  g_autofree char *text = NULL;

  if (event->webhook != NULL)
    return g_steal_pointer(&event->webhook);
  if (!event->unsealed)
    text = g_strdup_printf(_("A webhook event could not be opened and was skipped (%s). It was sealed to another key: "
                             "was this account's key replaced?"),
                           event->error != NULL ? event->error->message : "?");
  else
    text = g_strdup_printf(_("A webhook event could not be read and was skipped: %s"),
                           event->error != NULL ? event->error->message : "?");
  wabiz_notice(wa, text);
  return NULL;
}

/* Whether every line of @webhook waits for its store write (customers'
 * messages, statuses, echoes): it can join a batch. Group and account
 * events show their lines at once, so one starts a batch of its own, after
 * every earlier line. */
static gboolean
batchable(const WaWebhook *webhook)
{
  for (guint i = 0; i < webhook->changes->len; i++) {
    const WaChange *change = g_ptr_array_index(webhook->changes, i);

    if (g_strcmp0(change->field, "smb_message_echoes") == 0)
      continue;
    if (g_strcmp0(change->field, "messages") != 0)
      return FALSE;
    for (guint m = 0; m < change->messages->len; m++) {
      if (((const WaMessage *) g_ptr_array_index(change->messages, m))->group_id != NULL)
        return FALSE;
    }
  }
  return TRUE;
}

/* Events are taken into a batch for at most this long in one turn of the
 * loop. */
#define APPLY_SLICE_US 4000

/* Starts applying the next opened events (a batch of at most
 * APPLY_BATCH_EVENTS). */
static void
apply_next(WabizAccount *wa)
{
  const WaOpenedEvent *head;
  WabizApplying *ap;
  gint64 until;

  if (wa->applying != NULL || !batch_ready(wa))
    return;
  until = g_get_monotonic_time() + APPLY_SLICE_US;
  ap = g_new0(WabizApplying, 1);
  ap->wa = wa;
  ap->webhook = g_ptr_array_new();
  ap->pending = 1; /* held while the batch's writes are queued */
  wa->applying = ap;
  for (guint n = 0; n < APPLY_BATCH_EVENTS && (head = wa_event_opener_peek(wa->opener)) != NULL; n++) {
    /* re-sent after a lost acknowledgement (the receiver's seq only grows):
     * already shown in this session */
    gboolean fresh = head->seq > wa->applied_seq;
    WaOpenedEvent *event;
    WaWebhook *webhook;

    if (n > 0 && (g_get_monotonic_time() >= until || (fresh && head->webhook != NULL && !batchable(head->webhook))))
      break; /* the next batch starts with it */
    event = wa_event_opener_pop(wa->opener);
    ap->seq = MAX(ap->seq, event->seq);
    webhook = fresh ? take_webhook(wa, event) : NULL;
    wa_opened_event_free(event);
    if (webhook == NULL)
      continue;
    g_ptr_array_add(ap->webhook, webhook);
    for (guint i = 0; i < webhook->changes->len; i++)
      apply_change(ap, g_ptr_array_index(webhook->changes, i));
    if (!batchable(webhook))
      break; /* and the next batch waits for its lines */
  }
  run_next(ap);
  finish_one(ap);
}

static void
opened_cb(gpointer data)
{
  schedule_next(data);
}

void
wabiz_inbound_queue(WabizAccount *wa, gint64 seq, GBytes *sealed)
{
  if (wa->opener == NULL && wa->keys != NULL) {
    g_autoptr(GError) error = NULL;

    wa->opener = wa_event_opener_new(wabiz_loop(), wa->keys, opened_cb, wa, &error);
    if (wa->opener == NULL) {
      g_autofree char *text =
        g_strdup_printf(_("Received events cannot be opened (%s): they stay with the receiver until the next sign-on."),
                        error->message);

      wabiz_notice(wa, text);
    }
  }
  if (wa->opener != NULL)
    wa_event_opener_push(wa->opener, seq, sealed);
}

/* Events not yet applied are dropped (the receiver sends them again); one
 * whose writes are still in the store finishes without showing more or
 * acknowledging. */
void
wabiz_inbound_stop(WabizAccount *wa)
{
  if (wa->inbound_slice != 0) {
    purple_timeout_remove(wa->inbound_slice);
    wa->inbound_slice = 0;
  }
  g_clear_pointer(&wa->opener, wa_event_opener_free); /* before the keys it borrows */
  /* their lines were shown */
  marks_flush(wa);
  for (GSList *l = wa->orphans; l != NULL; l = l->next)
    ((WabizApplying *) l->data)->orphaned = TRUE;
  if (wa->applying != NULL) {
    wa->applying->orphaned = TRUE;
    wa->orphans = g_slist_prepend(wa->orphans, wa->applying);
    wa->applying = NULL;
  }
}

/* After the store is closed no store callback runs: orphaned events still
 * waiting for one are freed here. */
void
wabiz_inbound_forget_orphans(WabizAccount *wa)
{
  g_slist_free_full(g_steal_pointer(&wa->orphans), (GDestroyNotify) applying_free);
  g_clear_pointer(&wa->marks_due, g_ptr_array_unref); /* empty: sent at the stop */
}
