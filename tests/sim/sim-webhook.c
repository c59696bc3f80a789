/* sim-webhook.c: delivers webhooks the way Meta does: signed over the exact
 * bytes, POSTed with User-Agent facebookexternalua, retried with exponential
 * backoff until a 200, with optional duplicates and reordering. Delivery
 * order is not guaranteed (several requests can be in flight at once). */
#include "sim-webhook.h"
#include "sim-json.h"

#include <libsoup/soup.h>
#include <string.h>

#define BACKOFF_CAP_MS (3600 * 1000)

typedef struct _Delivery Delivery;

struct _SimWebhook
{
  const SimClock *clock;
  char *default_url;
  char *default_secret;
  char *url;
  char *secret;
  guint retry_base_ms;
  guint retry_max_ms; /* cap of the backoff */
  guint max_attempts;
  gboolean duplicate;
  gboolean reorder;
  guint reorder_batch;
  gint64 reorder_seed; /* 0 = reverse each batch; else shuffle */
  GRand *rand;

  SoupSession *session;
  GCancellable *cancellable;
  GHashTable *live; /* Delivery* set: waiting, in flight or held */
  GPtrArray *held;  /* Delivery*, statuses held back by "reorder" */
  GPtrArray *log;   /* JsonNode* per attempt */
  gint64 log_seq;
  gint64 next_id;
};

struct _Delivery
{
  SimWebhook *wh;
  gint64 id;
  gint64 duplicate_of;
  SimWebhookKind kind;
  char *url;
  GBytes *body;
  char *sig256; /* header values, NULL when unsigned */
  char *sig1;
  guint attempt;
  guint timer;
  GCancellable *cancellable;
  Delivery *chain_next; /* started after this one's first attempt */
};

static void delivery_start (Delivery *d);

static const char *
kind_name (SimWebhookKind kind)
{
  switch (kind)
    {
    case SIM_WEBHOOK_MESSAGE:
      return "message";
    case SIM_WEBHOOK_STATUS:
      return "status";
    case SIM_WEBHOOK_RAW:
    default:
      return "raw";
    }
}

char *
sim_webhook_sign (const char *secret, const char *body, gsize len, GChecksumType type)
{
  g_autoptr (GHmac) hmac = g_hmac_new (type, (const guchar *)secret, strlen (secret));

  g_hmac_update (hmac, (const guchar *)body, (gssize)len);
  return g_strdup (g_hmac_get_string (hmac));
}

static void
delivery_free (Delivery *d)
{
  if (d->timer != 0)
    g_source_remove (d->timer);
  g_clear_object (&d->cancellable);
  g_free (d->url);
  g_bytes_unref (d->body);
  g_free (d->sig256);
  g_free (d->sig1);
  g_free (d);
}

static void
delivery_done (Delivery *d)
{
  g_hash_table_remove (d->wh->live, d);
  delivery_free (d);
}

static void
set_defaults (SimWebhook *wh)
{
  g_free (wh->url);
  g_free (wh->secret);
  wh->url = g_strdup (wh->default_url);
  wh->secret = g_strdup (wh->default_secret);
  wh->retry_base_ms = 1000;
  wh->retry_max_ms = BACKOFF_CAP_MS;
  wh->max_attempts = 8;
  wh->duplicate = FALSE;
  wh->reorder = FALSE;
  wh->reorder_batch = 2;
  wh->reorder_seed = 0;
  g_clear_pointer (&wh->rand, g_rand_free);
}

SimWebhook *
sim_webhook_new (const SimClock *clock, const char *url, const char *app_secret)
{
  SimWebhook *wh = g_new0 (SimWebhook, 1);
  g_autoptr (GProxyResolver) direct = g_simple_proxy_resolver_new (NULL, NULL);

  wh->clock = clock;
  wh->default_url = g_strdup (url);
  wh->default_secret = g_strdup (app_secret);
  set_defaults (wh);
  /* No proxy: deliveries go straight to the test's receiver. */
  wh->session = g_object_new (SOUP_TYPE_SESSION, "user-agent", "facebookexternalua", "timeout", 10,
                              "idle-timeout", 30, "max-conns", 64, "max-conns-per-host", 32,
                              "proxy-resolver", direct, NULL);
  wh->cancellable = g_cancellable_new ();
  wh->live = g_hash_table_new (g_direct_hash, g_direct_equal);
  wh->held = g_ptr_array_new ();
  wh->log = g_ptr_array_new_with_free_func ((GDestroyNotify)json_node_unref);
  return wh;
}

/* Cancels what is in flight (their callbacks free them), drops the rest. */
static void
drop_deliveries (SimWebhook *wh)
{
  GHashTableIter iter;
  gpointer key;
  g_autoptr (GPtrArray) idle = g_ptr_array_new ();

  g_cancellable_cancel (wh->cancellable);
  g_clear_object (&wh->cancellable);
  wh->cancellable = g_cancellable_new ();
  g_hash_table_iter_init (&iter, wh->live);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      Delivery *d = key;

      d->chain_next = NULL;
      if (d->cancellable == NULL)
        g_ptr_array_add (idle, d);
    }
  for (guint i = 0; i < idle->len; i++)
    delivery_done (g_ptr_array_index (idle, i));
  g_ptr_array_set_size (wh->held, 0);
}

void
sim_webhook_shutdown (SimWebhook *wh)
{
  drop_deliveries (wh);
}

guint
sim_webhook_pending (SimWebhook *wh)
{
  return g_hash_table_size (wh->live);
}

void
sim_webhook_free (SimWebhook *wh)
{
  if (wh == NULL)
    return;
  drop_deliveries (wh);
  /* Anything still in flight was cancelled; the caller iterated the loop. */
  g_clear_object (&wh->cancellable);
  g_clear_object (&wh->session);
  g_hash_table_unref (wh->live);
  g_ptr_array_unref (wh->held);
  g_ptr_array_unref (wh->log);
  g_clear_pointer (&wh->rand, g_rand_free);
  g_free (wh->default_url);
  g_free (wh->default_secret);
  g_free (wh->url);
  g_free (wh->secret);
  g_free (wh);
}

void
sim_webhook_reset (SimWebhook *wh)
{
  drop_deliveries (wh);
  g_ptr_array_set_size (wh->log, 0);
  wh->log_seq = 0;
  set_defaults (wh);
}

gboolean
sim_webhook_enabled (SimWebhook *wh)
{
  return wh->url != NULL && *wh->url != '\0';
}

static void
log_attempt (Delivery *d, guint status, const char *error_message, gboolean final)
{
  SimWebhook *wh = d->wh;
  JsonBuilder *b = json_builder_new ();
  gsize len;
  const char *data = g_bytes_get_data (d->body, &len);
  g_autofree char *body = g_strndup (data, len);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "seq");
  json_builder_add_int_value (b, ++wh->log_seq);
  json_builder_set_member_name (b, "delivery");
  json_builder_add_int_value (b, d->id);
  if (d->duplicate_of != 0)
    {
      json_builder_set_member_name (b, "duplicate_of");
      json_builder_add_int_value (b, d->duplicate_of);
    }
  json_builder_set_member_name (b, "kind");
  json_builder_add_string_value (b, kind_name (d->kind));
  json_builder_set_member_name (b, "attempt");
  json_builder_add_int_value (b, d->attempt);
  json_builder_set_member_name (b, "url");
  json_builder_add_string_value (b, d->url);
  json_builder_set_member_name (b, "body");
  json_builder_add_string_value (b, body);
  json_builder_set_member_name (b, "signature_256");
  if (d->sig256)
    json_builder_add_string_value (b, d->sig256);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "signature_1");
  if (d->sig1)
    json_builder_add_string_value (b, d->sig1);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "status");
  json_builder_add_int_value (b, status);
  json_builder_set_member_name (b, "error");
  if (error_message)
    json_builder_add_string_value (b, error_message);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "final");
  json_builder_add_boolean_value (b, final);
  json_builder_set_member_name (b, "time");
  json_builder_add_int_value (b, sim_clock_now (wh->clock));
  json_builder_end_object (b);
  g_ptr_array_add (wh->log, json_builder_get_root (b));
  g_object_unref (b);
  g_printerr ("sim: webhook %" G_GINT64_FORMAT " (%s) attempt %u -> %u%s%s\n", d->id,
              kind_name (d->kind), d->attempt, status, error_message ? " " : "",
              error_message ? error_message : "");
}

static gboolean
delivery_retry (gpointer data)
{
  Delivery *d = data;

  d->timer = 0;
  delivery_start (d);
  return G_SOURCE_REMOVE;
}

static void
delivery_answered (GObject *source, GAsyncResult *result, gpointer data)
{
  Delivery *d = data;
  SimWebhook *wh = d->wh;
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION (source), result);
  g_autoptr (GError) error = NULL;
  GBytes *answer = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);
  guint status = error ? 0 : soup_message_get_status (msg);
  gboolean final;
  Delivery *next = d->chain_next;

  g_clear_pointer (&answer, g_bytes_unref); /* only the status matters */
  g_clear_object (&d->cancellable);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      delivery_done (d);
      return;
    }
  d->chain_next = NULL;
  final = status == SOUP_STATUS_OK || d->attempt >= wh->max_attempts;
  log_attempt (d, status, error ? error->message : NULL, final);
  if (next != NULL)
    delivery_start (next);
  if (final)
    {
      delivery_done (d);
      return;
    }
  {
    guint64 delay = wh->retry_base_ms;

    for (guint i = 1; i < d->attempt && delay < wh->retry_max_ms; i++)
      delay *= 2;
    d->timer = g_timeout_add ((guint)MIN (delay, (guint64)wh->retry_max_ms), delivery_retry, d);
  }
}

static void
delivery_start (Delivery *d)
{
  SimWebhook *wh = d->wh;
  g_autoptr (SoupMessage) msg = soup_message_new ("POST", d->url);
  SoupMessageHeaders *headers;

  d->attempt++;
  if (msg == NULL)
    {
      Delivery *next = d->chain_next;

      d->chain_next = NULL;
      log_attempt (d, 0, "invalid webhook URL", TRUE);
      if (next != NULL)
        delivery_start (next);
      delivery_done (d);
      return;
    }
  headers = soup_message_get_request_headers (msg);
  if (d->sig256)
    soup_message_headers_replace (headers, "X-Hub-Signature-256", d->sig256);
  if (d->sig1)
    soup_message_headers_replace (headers, "X-Hub-Signature", d->sig1);
  soup_message_set_request_body_from_bytes (msg, "application/json", d->body);
  d->cancellable = g_object_ref (wh->cancellable);
  soup_session_send_and_read_async (wh->session, msg, G_PRIORITY_DEFAULT, d->cancellable,
                                    delivery_answered, d);
}

static Delivery *
delivery_new (SimWebhook *wh, GBytes *body, SimWebhookKind kind, const char *sig256,
              const char *sig1)
{
  Delivery *d = g_new0 (Delivery, 1);

  d->wh = wh;
  d->id = ++wh->next_id;
  d->kind = kind;
  d->url = g_strdup (wh->url);
  d->body = g_bytes_ref (body);
  d->sig256 = g_strdup (sig256);
  d->sig1 = g_strdup (sig1);
  g_hash_table_add (wh->live, d);
  return d;
}

/* Releases held statuses as one chain: reversed, or shuffled by the seed. */
guint
sim_webhook_flush (SimWebhook *wh)
{
  guint n = wh->held->len;
  g_autoptr (GPtrArray) batch = NULL;

  if (n == 0)
    return 0;
  batch = g_ptr_array_new ();
  for (guint i = 0; i < n; i++)
    g_ptr_array_add (batch, g_ptr_array_index (wh->held, n - 1 - i));
  g_ptr_array_set_size (wh->held, 0);
  if (wh->reorder_seed != 0)
    {
      if (wh->rand == NULL)
        wh->rand = g_rand_new_with_seed ((guint32)wh->reorder_seed);
      for (guint i = n - 1; i > 0; i--)
        {
          guint j = (guint)g_rand_int_range (wh->rand, 0, (gint32)i + 1);
          gpointer tmp = batch->pdata[i];

          batch->pdata[i] = batch->pdata[j];
          batch->pdata[j] = tmp;
        }
    }
  for (guint i = 0; i + 1 < n; i++)
    ((Delivery *)batch->pdata[i])->chain_next = batch->pdata[i + 1];
  delivery_start (batch->pdata[0]);
  return n;
}

gint64
sim_webhook_emit (SimWebhook *wh, const char *body, SimWebhookKind kind, gboolean sign,
                  const char *secret)
{
  g_autoptr (GBytes) bytes = NULL;
  g_autofree char *sig256 = NULL;
  g_autofree char *sig1 = NULL;
  Delivery *copies[2] = { NULL, NULL };
  gsize len = strlen (body);

  if (!sim_webhook_enabled (wh))
    return 0;
  if (sign)
    {
      g_autofree char *h256 = NULL;
      g_autofree char *h1 = NULL;
      const char *key = secret ? secret : wh->secret;

      h256 = sim_webhook_sign (key, body, len, G_CHECKSUM_SHA256);
      h1 = sim_webhook_sign (key, body, len, G_CHECKSUM_SHA1);
      sig256 = g_strconcat ("sha256=", h256, NULL);
      sig1 = g_strconcat ("sha1=", h1, NULL);
    }
  bytes = g_bytes_new (body, len);
  copies[0] = delivery_new (wh, bytes, kind, sig256, sig1);
  if (wh->duplicate)
    {
      copies[1] = delivery_new (wh, bytes, kind, sig256, sig1);
      copies[1]->duplicate_of = copies[0]->id;
    }
  for (guint i = 0; i < G_N_ELEMENTS (copies) && copies[i] != NULL; i++)
    {
      if (kind == SIM_WEBHOOK_STATUS && wh->reorder)
        {
          g_ptr_array_add (wh->held, copies[i]);
          if (wh->held->len >= wh->reorder_batch)
            sim_webhook_flush (wh);
        }
      else
        delivery_start (copies[i]);
    }
  return copies[0]->id;
}

/* Emits @n bodies of one kind (signed with the app secret) with at most
 * @parallel first attempts in flight: the deliveries form @parallel chains,
 * each starting the next of its chain when its first attempt is answered
 * (retries then run on their own timers). Thousands of deliveries started at
 * once would make the session's queue, not the receiver, the bottleneck.
 * Duplicates (when on) follow their original in its chain; "reorder" does
 * not apply. Stores the delivery id of each body in @ids. */
void
sim_webhook_emit_chained (SimWebhook *wh, char *const *bodies, guint n, SimWebhookKind kind,
                          guint parallel, gint64 *ids)
{
  g_autofree Delivery **tails = g_new0 (Delivery *, MAX (parallel, 1));
  g_autoptr (GPtrArray) heads = g_ptr_array_new ();

  parallel = MAX (parallel, 1);
  for (guint i = 0; i < n; i++)
    {
      gsize len = strlen (bodies[i]);
      g_autoptr (GBytes) bytes = g_bytes_new (bodies[i], len);
      g_autofree char *h256 = sim_webhook_sign (wh->secret, bodies[i], len, G_CHECKSUM_SHA256);
      g_autofree char *h1 = sim_webhook_sign (wh->secret, bodies[i], len, G_CHECKSUM_SHA1);
      g_autofree char *sig256 = g_strconcat ("sha256=", h256, NULL);
      g_autofree char *sig1 = g_strconcat ("sha1=", h1, NULL);
      Delivery *copies[2] = { NULL, NULL };
      guint chain = i % parallel;

      ids[i] = 0;
      if (!sim_webhook_enabled (wh))
        continue;
      copies[0] = delivery_new (wh, bytes, kind, sig256, sig1);
      ids[i] = copies[0]->id;
      if (wh->duplicate)
        {
          copies[1] = delivery_new (wh, bytes, kind, sig256, sig1);
          copies[1]->duplicate_of = copies[0]->id;
        }
      for (guint c = 0; c < G_N_ELEMENTS (copies) && copies[c] != NULL; c++)
        {
          if (tails[chain] == NULL)
            g_ptr_array_add (heads, copies[c]);
          else
            tails[chain]->chain_next = copies[c];
          tails[chain] = copies[c];
        }
    }
  for (guint i = 0; i < heads->len; i++)
    delivery_start (g_ptr_array_index (heads, i));
}

static gboolean
get_uint (JsonObject *cfg, const char *member, guint min, guint *out, GError **error)
{
  gint64 v;

  if (!json_object_has_member (cfg, member))
    return TRUE;
  if (!sim_json_int (cfg, member, &v) || v < min || v > G_MAXINT32)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s must be an integer >= %u",
                   member, min);
      return FALSE;
    }
  *out = (guint)v;
  return TRUE;
}

static gboolean
get_bool (JsonObject *cfg, const char *member, gboolean *out, GError **error)
{
  if (!json_object_has_member (cfg, member))
    return TRUE;
  if (!sim_json_bool (cfg, member, out))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s must be a boolean", member);
      return FALSE;
    }
  return TRUE;
}

gboolean
sim_webhook_configure (SimWebhook *wh, JsonObject *cfg, GError **error)
{
  static const char *const known[]
      = { "url",       "app_secret", "retry_base_ms", "retry_max_ms", "max_attempts",
          "duplicate", "reorder",    "reorder_batch", "reorder_seed", "flush",
          NULL };
  JsonObjectIter iter;
  const char *name;
  JsonNode *node;
  guint retry = wh->retry_base_ms, retry_max = wh->retry_max_ms, attempts = wh->max_attempts;
  guint batch = wh->reorder_batch;
  gboolean duplicate = wh->duplicate, reorder = wh->reorder, flush = FALSE;
  gint64 seed = wh->reorder_seed;

  json_object_iter_init (&iter, cfg);
  while (json_object_iter_next (&iter, &name, &node))
    if (!g_strv_contains (known, name))
      {
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "unknown member %s", name);
        return FALSE;
      }
  node = json_object_get_member (cfg, "url");
  if (node != NULL && !JSON_NODE_HOLDS_NULL (node) && sim_json_string (cfg, "url") == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "url must be a string or null");
      return FALSE;
    }
  if (json_object_has_member (cfg, "app_secret") && sim_json_string (cfg, "app_secret") == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "app_secret must be a string");
      return FALSE;
    }
  if (json_object_has_member (cfg, "reorder_seed") && !sim_json_int (cfg, "reorder_seed", &seed))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "reorder_seed must be an integer");
      return FALSE;
    }
  if (!get_uint (cfg, "retry_base_ms", 0, &retry, error)
      || !get_uint (cfg, "retry_max_ms", 1, &retry_max, error)
      || !get_uint (cfg, "max_attempts", 1, &attempts, error)
      || !get_uint (cfg, "reorder_batch", 1, &batch, error)
      || !get_bool (cfg, "duplicate", &duplicate, error)
      || !get_bool (cfg, "reorder", &reorder, error) || !get_bool (cfg, "flush", &flush, error))
    return FALSE;

  if (node != NULL)
    {
      g_free (wh->url);
      wh->url = g_strdup (sim_json_string (cfg, "url"));
    }
  if (json_object_has_member (cfg, "app_secret"))
    {
      g_free (wh->secret);
      wh->secret = g_strdup (sim_json_string (cfg, "app_secret"));
    }
  wh->retry_base_ms = retry;
  wh->retry_max_ms = MIN (retry_max, (guint)BACKOFF_CAP_MS);
  wh->max_attempts = attempts;
  wh->duplicate = duplicate;
  wh->reorder_batch = batch;
  if (seed != wh->reorder_seed)
    g_clear_pointer (&wh->rand, g_rand_free);
  wh->reorder_seed = seed;
  wh->reorder = reorder;
  if (flush || !reorder)
    sim_webhook_flush (wh);
  return TRUE;
}

void
sim_webhook_describe (SimWebhook *wh, JsonBuilder *b)
{
  json_builder_set_member_name (b, "url");
  if (wh->url)
    json_builder_add_string_value (b, wh->url);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "retry_base_ms");
  json_builder_add_int_value (b, wh->retry_base_ms);
  json_builder_set_member_name (b, "retry_max_ms");
  json_builder_add_int_value (b, wh->retry_max_ms);
  json_builder_set_member_name (b, "max_attempts");
  json_builder_add_int_value (b, wh->max_attempts);
  json_builder_set_member_name (b, "duplicate");
  json_builder_add_boolean_value (b, wh->duplicate);
  json_builder_set_member_name (b, "reorder");
  json_builder_add_boolean_value (b, wh->reorder);
  json_builder_set_member_name (b, "reorder_batch");
  json_builder_add_int_value (b, wh->reorder_batch);
  json_builder_set_member_name (b, "reorder_seed");
  json_builder_add_int_value (b, wh->reorder_seed);
  json_builder_set_member_name (b, "held");
  json_builder_add_int_value (b, wh->held->len);
  json_builder_set_member_name (b, "pending");
  json_builder_add_int_value (b, g_hash_table_size (wh->live));
}

JsonNode *
sim_webhook_log (SimWebhook *wh, gint64 since)
{
  JsonObject *obj = json_object_new ();
  JsonArray *array = json_array_new ();
  JsonNode *root = json_node_new (JSON_NODE_OBJECT);

  for (guint i = 0; i < wh->log->len; i++)
    {
      JsonNode *entry = g_ptr_array_index (wh->log, i);

      if (json_object_get_int_member (json_node_get_object (entry), "seq") > since)
        json_array_add_element (array, json_node_ref (entry));
    }
  json_object_set_array_member (obj, "deliveries", array);
  json_node_take_object (root, obj);
  return root;
}
