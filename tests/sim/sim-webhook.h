/* sim-webhook.h: the simulator's webhook emitter. It signs bodies like Meta
 * (X-Hub-Signature-256 and X-Hub-Signature over the exact bytes), POSTs them
 * with SoupSession, retries with exponential backoff, can duplicate and
 * reorder deliveries, and keeps a log of every attempt for the control API. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#include "sim-clock.h"

typedef struct _SimWebhook SimWebhook;

typedef enum
{
  SIM_WEBHOOK_MESSAGE, /* inbound messages */
  SIM_WEBHOOK_STATUS,  /* statuses: the ones "reorder" holds back */
  SIM_WEBHOOK_RAW,     /* /_sim/webhook_raw */
} SimWebhookKind;

SimWebhook *sim_webhook_new (const SimClock *clock, const char *url, const char *app_secret);
void sim_webhook_free (SimWebhook *wh);
void sim_webhook_reset (SimWebhook *wh);
gboolean sim_webhook_configure (SimWebhook *wh, JsonObject *cfg, GError **error);
void sim_webhook_describe (SimWebhook *wh, JsonBuilder *builder);
gboolean sim_webhook_enabled (SimWebhook *wh);
gint64 sim_webhook_emit (SimWebhook *wh, const char *body, SimWebhookKind kind, gboolean sign,
                         const char *secret);
void sim_webhook_emit_chained (SimWebhook *wh, char *const *bodies, guint n, SimWebhookKind kind,
                               guint parallel, gint64 *ids);
guint sim_webhook_flush (SimWebhook *wh);
JsonNode *sim_webhook_log (SimWebhook *wh, gint64 since);
guint sim_webhook_pending (SimWebhook *wh);
void sim_webhook_shutdown (SimWebhook *wh);
char *sim_webhook_sign (const char *secret, const char *body, gsize len, GChecksumType type);
