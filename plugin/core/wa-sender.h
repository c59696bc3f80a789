/* wa-sender.h: the outbox: messages to customers, kept in the encrypted
 * store, sent in order, one request in flight per customer.
 *
 * Durability: a message is written to the store (outbox entry QUEUED, with
 * its conversation record) before anything is sent, and moved to SENDING
 * (committed) before its request starts; the answer moves it to SENT (with
 * the wamid), FAILED, UNCERTAIN, or back to QUEUED. A crash therefore leaves
 * QUEUED entries (never sent: wa_sender_restore() sends them) or SENDING ones
 * (the store's unlock turns them UNCERTAIN: they may have gone out).
 *
 * Retry rule (docs/ARCHITECTURE.md, Rules: retrying sends): a send is
 * repeated automatically only when it provably did not reach Meta (the
 * connection never carried the request) or Meta answered with a rate-limit
 * error. A send whose answer was lost becomes
 * "uncertain" and is never repeated without the agent (wa_sender_resend).
 * A refused token pauses the whole outbox. Each message carries its outbox id
 * in biz_opaque_callback_data so status webhooks resolve it later.
 *
 * Must not: start a request for an entry whose SENDING is not committed,
 * include libpurple, or log message content. */
#pragma once

#include "wa-clock.h"
#include "wa-graph.h"
#include "wa-loop.h"
#include "wa-store.h"

G_BEGIN_DECLS

typedef struct _WaSender WaSender;

/* @to: the address the message went to (wa_id digits or BSUID); @id: the
 * outbox id. */
typedef struct {
  /* accepted by the API */
  void (*sent)(gpointer user, const char *to, guint64 id, const WaSendResult *result);
  /* refused for good (window closed, invalid, ...) */
  void (*failed)(gpointer user, const char *to, guint64 id, const WaGraphError *error);
  /* the answer was lost: it may or may not have been sent; not retried */
  void (*uncertain)(gpointer user, const char *to, guint64 id, const WaGraphError *error);
  /* not sent and never will be: erased with its customer, or resolved
   * (sent after all) while it waited; may be NULL */
  void (*skipped)(gpointer user, const char *to, guint64 id);
  /* not sent yet; retried after @retry_ms; @waiting messages queued for the customer */
  void (*waiting)(gpointer user, const char *to, guint waiting, guint retry_ms, const WaGraphError *error);
  /* the token was refused: the outbox is paused until wa_sender_resume() */
  void (*auth_failed)(gpointer user, const WaGraphError *error);
  /* the store could not record a step (disk full, ...): the outbox pauses
   * and tries again after the retry delay */
  void (*store_failed)(gpointer user, const GError *error);
  /* a read receipt (wa_sender_mark_read) was answered: @error NULL on
   * success; may be NULL */
  void (*read)(gpointer user, const char *to, const char *wamid, gboolean typing, const WaGraphError *error);
} WaSenderEvents;

typedef struct {
  guint backoff_base_ms; /* first retry delay (default 1000) */
  guint backoff_max_ms;  /* cap (default 60000) */
} WaSenderConfig;

/* @store must be unlocked (requests may be queued right after the unlock)
 * and outlive the sender or be detached first. */
WaSender *wa_sender_new(WaGraph *graph, WaStore *store, WaLoop *loop, const char *phone_number_id,
                        const WaSenderEvents *events, gpointer user);
void wa_sender_set_config(WaSender *sender, const WaSenderConfig *config);
/* Forgets everything in memory; what is in the store stays. */
void wa_sender_free(WaSender *sender);

/* The store is about to close (sign-off): no store request is made after
 * this, and none of those already made is waited for (the store answers no
 * more). Entries whose SENDING was being recorded start no request: they are
 * told to @not_started (so the caller can put them back to QUEUED at the
 * next opening), and so are requests in flight that end provably unsent
 * (connection refused, rate limit, refused token). Other outcomes of
 * requests in flight reach the events only. @data must live as long as the
 * sender. */
typedef void (*WaSenderIdFunc)(guint64 id, gpointer data);
void wa_sender_detach_store(WaSender *sender, WaSenderIdFunc not_started, gpointer data);

/* Replaces the event handlers (at sign-off the plugin hands the outbox to a
 * short grace period whose handlers only record outcomes). */
void wa_sender_set_events(WaSender *sender, const WaSenderEvents *events, gpointer user);
/* Requests in flight. */
guint wa_sender_in_flight(WaSender *sender);
/* Starts no new request (those in flight still finish); wa_sender_resume()
 * undoes it. */
void wa_sender_pause(WaSender *sender);
/* After auth_failed or a pause: start sending again. */
void wa_sender_resume(WaSender *sender);

/* Calls @func for each address with messages in the outbox: @waiting counts
 * them all, @in_flight is 1 when one of them is being sent right now. */
typedef void (*WaSenderForeachFunc)(const char *to, guint waiting, gboolean in_flight, gpointer data);
void wa_sender_foreach(WaSender *sender, WaSenderForeachFunc func, gpointer data);

/* @entry: the stored entry (NULL with @error: nothing was queued). */
typedef void (*WaSenderQueuedFunc)(const WaStoreOutbox *entry, const GError *error, gpointer data);

/* Queues a text message to store customer @customer_id at address @to: the
 * entry is committed to the store, then sent in its turn. @queued (may be
 * NULL) runs after the commit; it does not run when the store closes first
 * (the entry is then stored, and restored at the next opening). */
void wa_sender_enqueue_text(WaSender *sender, const char *customer_id, const char *to, const char *body,
                            gboolean preview_url, WaSenderQueuedFunc queued, gpointer data);

/* Queues a composed message (wa-compose.h): @type is the stored message's
 * type, @line what the conversation shows (stored as its body), @payload the
 * JSON that wa_message_payload_new() completes when it is sent. Otherwise as
 * wa_sender_enqueue_text(). */
void wa_sender_enqueue(WaSender *sender, const char *customer_id, const char *to, const char *type, const char *line,
                       const char *payload, WaSenderQueuedFunc queued, gpointer data);

/* Sends @entry, already QUEUED in the store by someone else (a campaign's
 * wa_store_campaign_begin_sends), to @to in its turn: nothing is written
 * before its SENDING, as for any queued entry. An entry already SENDING
 * (begun with start) is not recorded again: its request starts at once when
 * it is the head of @to's queue, and one that has not started when the store
 * is detached is named to not_started. An entry already in @to's queue is
 * not added twice. */
void wa_sender_submit(WaSender *sender, const WaStoreOutbox *entry, const char *to);

/* Puts @entry (UNCERTAIN or FAILED, as wa_store_outbox_list gives it) back
 * in the queue of @to: the agent decided to send it again. */
void wa_sender_resend(WaSender *sender, const WaStoreOutbox *entry, const char *to, WaSenderQueuedFunc queued,
                      gpointer data);

/* At sign-on: loads the QUEUED entries from the store and sends them in
 * their order (after anything queued meanwhile for the same customer would
 * be wrong, so call it before accepting new messages). Campaign entries
 * (WaStoreOutbox.campaign) are left to their runner, which paces them
 * through wa_sender_submit(). @done gets the number restored. */
typedef void (*WaSenderRestoredFunc)(guint restored, const GError *error, gpointer data);
void wa_sender_restore(WaSender *sender, WaSenderRestoredFunc done, gpointer data);

/* Messages queued for @to (including one in flight). */
guint wa_sender_waiting(WaSender *sender, const char *to);
guint wa_sender_total_waiting(WaSender *sender);

/* A read receipt for inbound message @wamid of @to (with the typing
 * indicator when @typing). Not stored: lost at sign-off, never retried.
 * Paced with the customer's messages: it waits while the outbox is paused or
 * @to's queue backs off after a rate limit, but never waits for a text in
 * flight (nor does a text wait for it). One receipt per customer at a
 * time: a newer one waiting replaces the older (its typing request kept). */
void wa_sender_mark_read(WaSender *sender, const char *to, const char *wamid, gboolean typing);
/* Whether a receipt for @to waits to start (behind one in flight, or held
 * back by a pause or a rate limit). */
gboolean wa_sender_read_waiting(WaSender *sender, const char *to);

/* "wabiz:<id>": the biz_opaque_callback_data of outbox message @id. */
char *wa_sender_callback_data(guint64 id);
/* Parses callback data back into an outbox id; 0 when it is not ours. */
guint64 wa_sender_parse_callback_data(const char *data);

G_END_DECLS
