/* wa-event-opener.h: opening and parsing sealed events on a thread of their own.
 *
 * The plugin's inbound queue: each event from wabiz-receiver is opened with
 * the account's key pair (wa_seal_opener: the batch's shared key kept) and
 * parsed (wa_webhook_parse, wa_webhook_prepare_stored) on a worker thread,
 * so that a backlog costs the messenger's main loop only the applying.
 * Opened events are taken back on the loop in the order they were pushed;
 * the loop is told through a pipe watched with the injected WaLoop. A
 * webhook changes threads whole: the loop keeps no reference into its JSON
 * trees past wa_event_opener_dispose() (JsonObject and JsonArray reference
 * counts are not atomic).
 * Must not: call back into the caller from the worker, or hand out an event
 * before every earlier one. */
#pragma once

#include <glib.h>

#include "wa-loop.h"
#include "wa-seal.h"
#include "wa-webhook.h"

G_BEGIN_DECLS

typedef struct _WaEventOpener WaEventOpener;

/* An event taken from the opener. */
typedef struct {
  gint64 seq;         /* as pushed */
  WaWebhook *webhook; /* NULL when it could not be opened or read: then @error */
  gboolean unsealed;  /* opened with the key (FALSE: sealed to another key or damaged) */
  GError *error;      /* why @webhook is NULL */
} WaOpenedEvent;

void wa_opened_event_free(WaOpenedEvent *event);

/* Called on the loop when events were opened since the last call. */
typedef void (*WaEventOpenerReadyFunc)(gpointer data);

/* A new opener with its worker thread, or NULL with @error. @pair is
 * borrowed and must outlive the opener. */
WaEventOpener *wa_event_opener_new(WaLoop *loop, const WaKeyPair *pair, WaEventOpenerReadyFunc ready, gpointer data,
                                   GError **error);

/* Queues @sealed (a reference is taken) to be opened. */
void wa_event_opener_push(WaEventOpener *opener, gint64 seq, GBytes *sealed);

/* The oldest event not yet taken, once it is opened; NULL while it is being
 * opened or when none is queued. Owned by the opener. */
const WaOpenedEvent *wa_event_opener_peek(WaEventOpener *opener);

/* Takes the event wa_event_opener_peek() returned (free it with
 * wa_opened_event_free() or wa_event_opener_dispose()). */
WaOpenedEvent *wa_event_opener_pop(WaEventOpener *opener);

/* How many events, from the oldest not taken, are opened (counting up to
 * @at_most). */
guint wa_event_opener_ready(WaEventOpener *opener, guint at_most);

/* Events pushed and not taken yet, opened or not. */
guint wa_event_opener_length(WaEventOpener *opener);

/* Frees @webhook on the worker (freeing a parsed webhook is not free). */
void wa_event_opener_dispose(WaEventOpener *opener, WaWebhook *webhook);

/* Stops the worker (it finishes the event it is opening) and drops every
 * event not taken. */
void wa_event_opener_free(WaEventOpener *opener);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaEventOpener, wa_event_opener_free)

G_END_DECLS
