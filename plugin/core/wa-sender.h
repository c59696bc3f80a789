/* wa-sender.h: the outbox: messages to customers, sent in order, one request
 * in flight per customer.
 *
 * Retry rule (ENGINEERING.md): a send is repeated automatically only when it
 * provably did not reach Meta (the connection never carried the request) or
 * Meta answered with a rate-limit error. A send whose answer was lost becomes
 * "uncertain" and is never repeated without the agent. A refused token pauses
 * the whole outbox. Each message carries its outbox id in
 * biz_opaque_callback_data so status webhooks can resolve it later.
 * In memory for now; the encrypted store makes the outbox durable. */
#pragma once

#include "wa-clock.h"
#include "wa-graph.h"
#include "wa-loop.h"

G_BEGIN_DECLS

typedef struct _WaSender WaSender;

typedef struct {
  /* accepted by the API */
  void (*sent)(gpointer user, const char *customer, guint64 id, const WaSendResult *result);
  /* refused for good (window closed, invalid, ...) */
  void (*failed)(gpointer user, const char *customer, guint64 id, const WaGraphError *error);
  /* the answer was lost: it may or may not have been sent; not retried */
  void (*uncertain)(gpointer user, const char *customer, guint64 id, const WaGraphError *error);
  /* not sent yet; retried after @retry_ms; @waiting messages queued for the customer */
  void (*waiting)(gpointer user, const char *customer, guint waiting, guint retry_ms, const WaGraphError *error);
  /* the token was refused: the outbox is paused until wa_sender_resume() */
  void (*auth_failed)(gpointer user, const WaGraphError *error);
} WaSenderEvents;

typedef struct {
  guint backoff_base_ms;  /* first retry delay (default 1000) */
  guint backoff_max_ms;   /* cap (default 60000) */
} WaSenderConfig;

WaSender *wa_sender_new(WaGraph *graph, WaLoop *loop, const char *phone_number_id,
                        const WaSenderEvents *events, gpointer user);
void wa_sender_set_config(WaSender *sender, const WaSenderConfig *config);
/* Drops everything queued without events. */
void wa_sender_free(WaSender *sender);

/* Replaces the event handlers (at sign-off the plugin hands the outbox to a
 * short grace period whose handlers only log). */
void wa_sender_set_events(WaSender *sender, const WaSenderEvents *events, gpointer user);
/* Requests in flight. */
guint wa_sender_in_flight(WaSender *sender);
/* Starts no new request (those in flight still finish); wa_sender_resume()
 * undoes it. */
void wa_sender_pause(WaSender *sender);

/* Calls @func for each customer with messages in the outbox: @waiting counts
 * them all, @in_flight is 1 when one of them is being sent right now. */
typedef void (*WaSenderForeachFunc)(const char *customer, guint waiting, gboolean in_flight, gpointer data);
void wa_sender_foreach(WaSender *sender, WaSenderForeachFunc func, gpointer data);

/* Queues a text message for @customer (wa_id digits or BSUID). Returns its
 * outbox id (> 0). */
guint64 wa_sender_enqueue_text(WaSender *sender, const char *customer, const char *body, gboolean preview_url);
/* Messages queued for @customer (including one in flight). */
guint wa_sender_waiting(WaSender *sender, const char *customer);
guint wa_sender_total_waiting(WaSender *sender);
/* After auth_failed: start sending again. */
void wa_sender_resume(WaSender *sender);

/* "wabiz:<id>": the biz_opaque_callback_data of outbox message @id. */
char *wa_sender_callback_data(guint64 id);
/* Parses callback data back into an outbox id; 0 when it is not ours. */
guint64 wa_sender_parse_callback_data(const char *data);

G_END_DECLS
