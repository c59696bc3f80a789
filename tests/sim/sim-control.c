/* sim-control.c: the simulator's control API under /_sim/ (no auth, JSON in
 * and out): logs, clock, faults, webhook settings, knobs, reset, and the
 * generators for inbound messages (one, or many at once), statuses and raw
 * webhooks. Faults never apply here. */
#include "sim.h"
#include "sim-json.h"
#include "sim-templates.h"
#include "sim-upload.h"
#include "sim-validate.h"
#include "sim-webhook.h"

#include <stdarg.h>
#include <string.h>

static void
answer_node (SoupServerMessage *msg, guint status, JsonNode *node)
{
  g_autofree char *body = sim_json_serialize (node);

  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, body, strlen (body));
}

static void
answer_builder (SoupServerMessage *msg, guint status, JsonBuilder *b)
{
  g_autoptr (JsonNode) root = json_builder_get_root (b);

  answer_node (msg, status, root);
}

static void answer_error (SoupServerMessage *msg, guint status, const char *format, ...)
    G_GNUC_PRINTF (3, 4);

static void
answer_error (SoupServerMessage *msg, guint status, const char *format, ...)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autofree char *text = NULL;
  va_list args;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "error");
  json_builder_add_string_value (b, text);
  json_builder_end_object (b);
  answer_builder (msg, status, b);
  g_printerr ("sim: control %s -> %u %s\n", soup_server_message_get_method (msg), status, text);
}

/* For the control routes of other files (sim-templates.c). */
void
sim_control_answer (SoupServerMessage *msg, guint status, JsonBuilder *b)
{
  answer_builder (msg, status, b);
}

void
sim_control_error (SoupServerMessage *msg, guint status, const char *format, ...)
{
  g_autofree char *text = NULL;
  va_list args;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  answer_error (msg, status, "%s", text);
}

static void
answer_ok (SoupServerMessage *msg)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "ok");
  json_builder_add_boolean_value (b, TRUE);
  json_builder_end_object (b);
  answer_builder (msg, 200, b);
}

/* The request body as an object; an empty body reads as {}. */
static JsonNode *
request_object (SoupServerMessage *msg)
{
  SoupMessageBody *body = soup_server_message_get_request_body (msg);
  g_autoptr (GBytes) bytes = soup_message_body_flatten (body);
  g_autoptr (GError) error = NULL;
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);
  JsonNode *root;

  if (len == 0)
    {
      root = json_node_new (JSON_NODE_OBJECT);
      json_node_take_object (root, json_object_new ());
      return root;
    }
  root = sim_json_parse (data, len, &error);
  if (root == NULL)
    {
      answer_error (msg, 400, "body is not valid JSON: %s", error->message);
      return NULL;
    }
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      json_node_unref (root);
      answer_error (msg, 400, "body must be a JSON object");
      return NULL;
    }
  return root;
}

static gboolean
check_members (SoupServerMessage *msg, JsonObject *obj, const char *const *known)
{
  JsonObjectIter iter;
  const char *name;
  JsonNode *node;

  json_object_iter_init (&iter, obj);
  while (json_object_iter_next (&iter, &name, &node))
    if (!g_strv_contains (known, name))
      {
        answer_error (msg, 400, "unknown member \"%s\"", name);
        return FALSE;
      }
  return TRUE;
}

static gint64
query_since (SoupServerMessage *msg)
{
  const char *query = g_uri_get_query (soup_server_message_get_uri (msg));
  g_autoptr (GHashTable) form = query ? soup_form_decode (query) : NULL;
  const char *since = form ? g_hash_table_lookup (form, "since") : NULL;

  return since ? g_ascii_strtoll (since, NULL, 10) : 0;
}

/* ---- clock ---- */

static void
answer_clock (Sim *sim, SoupServerMessage *msg)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "now");
  json_builder_add_int_value (b, sim_clock_now (&sim->clock));
  json_builder_set_member_name (b, "now_us");
  json_builder_add_int_value (b, sim_clock_now_us (&sim->clock));
  json_builder_set_member_name (b, "frozen");
  json_builder_add_boolean_value (b, sim->clock.frozen);
  json_builder_end_object (b);
  answer_builder (msg, 200, b);
}

static void
post_clock (Sim *sim, SoupServerMessage *msg, JsonObject *req)
{
  static const char *const known[] = { "advance", "set", "freeze", NULL };
  double v;
  gboolean freeze;

  if (!check_members (msg, req, known))
    return;
  if (json_object_has_member (req, "freeze"))
    {
      if (!sim_json_bool (req, "freeze", &freeze))
        {
          answer_error (msg, 400, "freeze must be a boolean");
          return;
        }
      sim_clock_freeze (&sim->clock, freeze);
    }
  if (json_object_has_member (req, "set"))
    {
      if (!sim_json_double (req, "set", &v))
        {
          answer_error (msg, 400, "set must be unix seconds");
          return;
        }
      sim_clock_set (&sim->clock, v);
    }
  if (json_object_has_member (req, "advance"))
    {
      if (!sim_json_double (req, "advance", &v))
        {
          answer_error (msg, 400, "advance must be a number of seconds");
          return;
        }
      sim_clock_advance (&sim->clock, v);
    }
  answer_clock (sim, msg);
}

/* ---- faults ---- */

static void
post_fault (Sim *sim, SoupServerMessage *msg, JsonObject *req)
{
  static const char *const known[] = { "path",
                                       "method",
                                       "status",
                                       "code",
                                       "subcode",
                                       "message",
                                       "details",
                                       "body",
                                       "content_type",
                                       "count",
                                       "reset",
                                       "delay_ms",
                                       "process",
                                       "process_before_delay",
                                       "probability",
                                       "seed",
                                       "duration_ms",
                                       "refuse",
                                       NULL };
  SimFault *f;
  gint64 status = 0, code = 0, subcode = -1, count = 1, delay = 0, seed = 0, duration = 0;
  gboolean reset = FALSE, process = FALSE, early = FALSE, refuse = FALSE;
  double probability = 1.0;
  static const char *const strings[]
      = { "path", "method", "message", "details", "body", "content_type", NULL };

  if (!check_members (msg, req, known))
    return;
  for (guint i = 0; strings[i]; i++)
    if (json_object_has_member (req, strings[i]) && sim_json_string (req, strings[i]) == NULL)
      {
        answer_error (msg, 400, "%s must be a string", strings[i]);
        return;
      }
  if ((json_object_has_member (req, "status") && !sim_json_int (req, "status", &status))
      || (json_object_has_member (req, "code") && !sim_json_int (req, "code", &code))
      || (json_object_has_member (req, "subcode") && !sim_json_int (req, "subcode", &subcode))
      || (json_object_has_member (req, "count") && !sim_json_int (req, "count", &count))
      || (json_object_has_member (req, "delay_ms") && !sim_json_int (req, "delay_ms", &delay))
      || (json_object_has_member (req, "seed") && !sim_json_int (req, "seed", &seed))
      || (json_object_has_member (req, "duration_ms")
          && !sim_json_int (req, "duration_ms", &duration))
      || (json_object_has_member (req, "reset") && !sim_json_bool (req, "reset", &reset))
      || (json_object_has_member (req, "process") && !sim_json_bool (req, "process", &process))
      || (json_object_has_member (req, "process_before_delay")
          && !sim_json_bool (req, "process_before_delay", &early))
      || (json_object_has_member (req, "refuse") && !sim_json_bool (req, "refuse", &refuse)))
    {
      answer_error (msg, 400,
                    "status, code, subcode, count, delay_ms, seed and duration_ms must be "
                    "integers, reset, process, process_before_delay and refuse booleans");
      return;
    }
  if (json_object_has_member (req, "probability")
      && (!sim_json_double (req, "probability", &probability)
          || !(probability >= 0.0 && probability <= 1.0)))
    {
      answer_error (msg, 400, "probability must be a number from 0 to 1");
      return;
    }
  if (duration < 0 || duration > 3600000)
    {
      answer_error (msg, 400, "duration_ms must be between 0 and 3600000");
      return;
    }
  if (refuse)
    {
      /* connection level: nothing else of a rule applies */
      JsonObjectIter iter;
      const char *name;
      JsonNode *node;

      json_object_iter_init (&iter, req);
      while (json_object_iter_next (&iter, &name, &node))
        if (g_strcmp0 (name, "refuse") != 0 && g_strcmp0 (name, "duration_ms") != 0)
          {
            answer_error (msg, 400,
                          "refuse takes only duration_ms (it refuses connections, not requests)");
            return;
          }
      if (duration == 0)
        {
          answer_error (msg, 400, "refuse needs duration_ms");
          return;
        }
      sim_refuse_start (sim, (guint)duration);
    }
  else
    {
      if (status != 0 && (status < 100 || status > 599))
        {
          answer_error (msg, 400, "status must be an HTTP status");
          return;
        }
      if (code != 0 && status == 0)
        status = 400;
      if ((json_object_has_member (req, "message") || json_object_has_member (req, "details")
           || json_object_has_member (req, "subcode"))
          && code == 0)
        {
          answer_error (msg, 400, "message, details and subcode need a code");
          return;
        }
      if (json_object_has_member (req, "body") && status == 0)
        {
          answer_error (msg, 400, "body needs a status");
          return;
        }
      if (count == 0 || count < -1)
        {
          answer_error (msg, 400, "count must be positive or -1");
          return;
        }
      if (delay < 0 || delay > 600000)
        {
          answer_error (msg, 400, "delay_ms must be between 0 and 600000");
          return;
        }
      if (early && delay == 0)
        {
          answer_error (msg, 400, "process_before_delay needs delay_ms");
          return;
        }
      if (status == 0 && !reset && delay == 0)
        {
          answer_error (msg, 400, "a fault needs status, code, reset, delay_ms or refuse");
          return;
        }

      f = g_new0 (SimFault, 1);
      f->path = g_strdup (sim_json_string (req, "path"));
      f->method = g_strdup (sim_json_string (req, "method"));
      f->status = (guint)status;
      f->code = code;
      f->subcode = subcode;
      f->message = g_strdup (sim_json_string (req, "message"));
      f->details = g_strdup (sim_json_string (req, "details"));
      f->body = g_strdup (sim_json_string (req, "body"));
      f->content_type = g_strdup (sim_json_string (req, "content_type"));
      f->count = count;
      f->reset = reset;
      f->delay_ms = (guint)delay;
      f->process = process || early;
      f->process_before_delay = early;
      f->probability = probability;
      f->seed = seed;
      if (probability < 1.0)
        f->rand = g_rand_new_with_seed ((guint32)seed);
      f->duration_ms = (guint)duration;
      if (duration > 0)
        f->until_us = g_get_monotonic_time () + duration * 1000;
      g_ptr_array_add (sim->faults, f);
    }

  {
    g_autoptr (JsonBuilder) b = json_builder_new ();

    json_builder_begin_object (b);
    json_builder_set_member_name (b, "faults");
    json_builder_add_int_value (b, sim->faults->len);
    json_builder_set_member_name (b, "refusing_ms");
    json_builder_add_int_value (b, sim_refuse_remaining_ms (sim));
    json_builder_end_object (b);
    answer_builder (msg, 200, b);
  }
}

static void
list_faults (Sim *sim, SoupServerMessage *msg)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  gint64 now = g_get_monotonic_time ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "faults");
  json_builder_begin_array (b);
  for (guint i = 0; i < sim->faults->len; i++)
    {
      SimFault *f = g_ptr_array_index (sim->faults, i);

      if (f->until_us != 0 && now >= f->until_us)
        continue; /* expired: dropped at the next request */
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "path");
      if (f->path)
        json_builder_add_string_value (b, f->path);
      else
        json_builder_add_null_value (b);
      json_builder_set_member_name (b, "method");
      if (f->method)
        json_builder_add_string_value (b, f->method);
      else
        json_builder_add_null_value (b);
      json_builder_set_member_name (b, "status");
      json_builder_add_int_value (b, f->status);
      json_builder_set_member_name (b, "code");
      json_builder_add_int_value (b, f->code);
      json_builder_set_member_name (b, "count");
      json_builder_add_int_value (b, f->count);
      json_builder_set_member_name (b, "reset");
      json_builder_add_boolean_value (b, f->reset);
      json_builder_set_member_name (b, "delay_ms");
      json_builder_add_int_value (b, f->delay_ms);
      json_builder_set_member_name (b, "process");
      json_builder_add_boolean_value (b, f->process);
      json_builder_set_member_name (b, "process_before_delay");
      json_builder_add_boolean_value (b, f->process_before_delay);
      json_builder_set_member_name (b, "probability");
      json_builder_add_double_value (b, f->probability);
      json_builder_set_member_name (b, "seed");
      json_builder_add_int_value (b, f->seed);
      json_builder_set_member_name (b, "remaining_ms");
      if (f->until_us != 0)
        json_builder_add_int_value (b, (f->until_us - now + 999) / 1000);
      else
        json_builder_add_null_value (b);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "paused");
  json_builder_add_int_value (b, sim->paused->len);
  json_builder_set_member_name (b, "refusing_ms");
  json_builder_add_int_value (b, sim_refuse_remaining_ms (sim));
  json_builder_end_object (b);
  answer_builder (msg, 200, b);
}

/* ---- config ---- */

static void
add_set_members (JsonBuilder *b, const char *name, GHashTable *set)
{
  g_autoptr (GList) keys = g_hash_table_get_keys (set);

  keys = g_list_sort (keys, (GCompareFunc)g_strcmp0);
  json_builder_set_member_name (b, name);
  json_builder_begin_array (b);
  for (GList *l = keys; l; l = l->next)
    json_builder_add_string_value (b, l->data);
  json_builder_end_array (b);
}

static void
add_map_members (JsonBuilder *b, const char *name, GHashTable *map)
{
  g_autoptr (GList) keys = g_hash_table_get_keys (map);

  keys = g_list_sort (keys, (GCompareFunc)g_strcmp0);
  json_builder_set_member_name (b, name);
  json_builder_begin_object (b);
  for (GList *l = keys; l; l = l->next)
    {
      json_builder_set_member_name (b, l->data);
      json_builder_add_string_value (b, g_hash_table_lookup (map, l->data));
    }
  json_builder_end_object (b);
}

static void
answer_config (Sim *sim, SoupServerMessage *msg)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  SimKnobs *k = &sim->knobs;

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "throughput_mps");
  json_builder_add_double_value (b, k->throughput_mps);
  json_builder_set_member_name (b, "pair_burst");
  json_builder_add_double_value (b, k->pair_burst);
  json_builder_set_member_name (b, "pair_refill_s");
  json_builder_add_double_value (b, k->pair_refill_s);
  json_builder_set_member_name (b, "auto_statuses");
  json_builder_begin_array (b);
  for (guint i = 0; i < k->auto_statuses->len; i++)
    json_builder_add_string_value (b, g_ptr_array_index (k->auto_statuses, i));
  json_builder_end_array (b);
  json_builder_set_member_name (b, "status_delay_ms");
  json_builder_add_int_value (b, k->status_delay_ms);
  add_map_members (b, "wa_id_rewrite", k->wa_id_rewrite);
  add_set_members (b, "templates_missing", k->templates_missing);
  add_map_members (b, "templates", k->templates);
  add_set_members (b, "expired_tokens", k->expired_tokens);
  add_set_members (b, "groups", k->groups);
  json_builder_set_member_name (b, "management_calls_per_hour");
  json_builder_add_int_value (b, k->management_calls_per_hour);
  json_builder_set_member_name (b, "management_exhausted");
  json_builder_add_boolean_value (b, k->management_exhausted);
  json_builder_set_member_name (b, "marketing_disabled");
  json_builder_add_boolean_value (b, k->marketing_disabled);
  add_set_members (b, "marketing_opted_out", k->marketing_opted_out);
  add_set_members (b, "marketing_limited", k->marketing_limited);
  json_builder_set_member_name (b, "maintenance");
  json_builder_add_boolean_value (b, k->maintenance);
  json_builder_set_member_name (b, "portfolio_limit");
  json_builder_add_int_value (b, k->portfolio_limit);
  json_builder_set_member_name (b, "latency_ms");
  json_builder_add_int_value (b, k->latency_ms);
  json_builder_end_object (b);
  answer_builder (msg, 200, b);
}

static gboolean
read_string_set (SoupServerMessage *msg, JsonObject *req, const char *member, GHashTable *set)
{
  JsonArray *array = sim_json_array (req, member);

  if (array == NULL)
    {
      answer_error (msg, 400, "%s must be an array of strings", member);
      return FALSE;
    }
  g_hash_table_remove_all (set);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *node = json_array_get_element (array, i);

      if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
        {
          answer_error (msg, 400, "%s must be an array of strings", member);
          return FALSE;
        }
      g_hash_table_add (set, g_strdup (json_node_get_string (node)));
    }
  return TRUE;
}

static gboolean
read_string_map (SoupServerMessage *msg, JsonObject *req, const char *member, GHashTable *map)
{
  JsonObject *obj = sim_json_object (req, member);
  JsonObjectIter iter;
  const char *name;
  JsonNode *node;

  if (obj == NULL)
    {
      answer_error (msg, 400, "%s must be an object of strings", member);
      return FALSE;
    }
  g_hash_table_remove_all (map);
  json_object_iter_init (&iter, obj);
  while (json_object_iter_next (&iter, &name, &node))
    {
      if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
        {
          answer_error (msg, 400, "%s must be an object of strings", member);
          return FALSE;
        }
      g_hash_table_insert (map, g_strdup (name), g_strdup (json_node_get_string (node)));
    }
  return TRUE;
}

static GHashTable *
copy_table (GHashTable *src, gboolean values)
{
  GHashTable *dst = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, values ? g_free : NULL);
  GHashTableIter iter;
  gpointer k, v;

  g_hash_table_iter_init (&iter, src);
  while (g_hash_table_iter_next (&iter, &k, &v))
    g_hash_table_insert (dst, g_strdup (k), values ? g_strdup (v) : NULL);
  return dst;
}

static gboolean
read_number (SoupServerMessage *msg, JsonObject *req, const char *member, double min, double *out)
{
  if (!json_object_has_member (req, member))
    return TRUE;
  if (!sim_json_double (req, member, out) || *out < min)
    {
      answer_error (msg, 400, "%s must be a number >= %g", member, min);
      return FALSE;
    }
  return TRUE;
}

/* Applies to a copy first, so a bad member changes nothing. */
static gboolean
apply_config (Sim *sim, SoupServerMessage *msg, JsonObject *req, SimKnobs *k)
{
  static const char *const statuses[] = { "sent", "delivered", "read", "played", NULL };
  gint64 delay;

  if (!read_number (msg, req, "throughput_mps", 0.001, &k->throughput_mps)
      || !read_number (msg, req, "pair_burst", 1, &k->pair_burst)
      || !read_number (msg, req, "pair_refill_s", 0, &k->pair_refill_s))
    return FALSE;
  if (json_object_has_member (req, "status_delay_ms"))
    {
      if (!sim_json_int (req, "status_delay_ms", &delay) || delay < 0 || delay > 600000)
        {
          answer_error (msg, 400, "status_delay_ms must be between 0 and 600000");
          return FALSE;
        }
      k->status_delay_ms = (guint)delay;
    }
  if (json_object_has_member (req, "auto_statuses"))
    {
      JsonArray *array = sim_json_array (req, "auto_statuses");

      if (array == NULL)
        {
          answer_error (msg, 400, "auto_statuses must be an array");
          return FALSE;
        }
      g_ptr_array_set_size (k->auto_statuses, 0);
      for (guint i = 0; i < json_array_get_length (array); i++)
        {
          JsonNode *node = json_array_get_element (array, i);
          const char *s
              = JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING
                    ? json_node_get_string (node)
                    : NULL;

          if (s == NULL || !g_strv_contains (statuses, s))
            {
              answer_error (msg, 400, "auto_statuses may hold sent, delivered, read, played");
              return FALSE;
            }
          g_ptr_array_add (k->auto_statuses, g_strdup (s));
        }
    }
  if (json_object_has_member (req, "management_calls_per_hour"))
    {
      gint64 calls;

      if (!sim_json_int (req, "management_calls_per_hour", &calls) || calls < 1)
        {
          answer_error (msg, 400, "management_calls_per_hour must be an integer >= 1");
          return FALSE;
        }
      k->management_calls_per_hour = calls;
    }
  if (json_object_has_member (req, "management_exhausted")
      && !sim_json_bool (req, "management_exhausted", &k->management_exhausted))
    {
      answer_error (msg, 400, "management_exhausted must be a boolean");
      return FALSE;
    }
  if (json_object_has_member (req, "maintenance")
      && !sim_json_bool (req, "maintenance", &k->maintenance))
    {
      answer_error (msg, 400, "maintenance must be a boolean");
      return FALSE;
    }
  if (json_object_has_member (req, "portfolio_limit")
      && (!sim_json_int (req, "portfolio_limit", &k->portfolio_limit) || k->portfolio_limit < 0))
    {
      answer_error (msg, 400, "portfolio_limit must be an integer >= 0 (0 = unlimited)");
      return FALSE;
    }
  if (json_object_has_member (req, "latency_ms"))
    {
      gint64 latency;

      if (!sim_json_int (req, "latency_ms", &latency) || latency < 0 || latency > 600000)
        {
          answer_error (msg, 400, "latency_ms must be between 0 and 600000");
          return FALSE;
        }
      k->latency_ms = (guint)latency;
    }
  if (json_object_has_member (req, "marketing_disabled")
      && !sim_json_bool (req, "marketing_disabled", &k->marketing_disabled))
    {
      answer_error (msg, 400, "marketing_disabled must be a boolean");
      return FALSE;
    }
  if ((json_object_has_member (req, "marketing_opted_out")
       && !read_string_set (msg, req, "marketing_opted_out", k->marketing_opted_out))
      || (json_object_has_member (req, "marketing_limited")
          && !read_string_set (msg, req, "marketing_limited", k->marketing_limited)))
    return FALSE;
  if ((json_object_has_member (req, "wa_id_rewrite")
       && !read_string_map (msg, req, "wa_id_rewrite", k->wa_id_rewrite))
      || (json_object_has_member (req, "templates")
          && !read_string_map (msg, req, "templates", k->templates))
      || (json_object_has_member (req, "templates_missing")
          && !read_string_set (msg, req, "templates_missing", k->templates_missing))
      || (json_object_has_member (req, "expired_tokens")
          && !read_string_set (msg, req, "expired_tokens", k->expired_tokens))
      || (json_object_has_member (req, "groups")
          && !read_string_set (msg, req, "groups", k->groups)))
    return FALSE;
  return TRUE;
}

static void
post_config (Sim *sim, SoupServerMessage *msg, JsonObject *req)
{
  static const char *const known[] = { "throughput_mps",
                                       "pair_burst",
                                       "pair_refill_s",
                                       "auto_statuses",
                                       "status_delay_ms",
                                       "wa_id_rewrite",
                                       "templates_missing",
                                       "templates",
                                       "expired_tokens",
                                       "groups",
                                       "management_calls_per_hour",
                                       "management_exhausted",
                                       "marketing_disabled",
                                       "marketing_opted_out",
                                       "marketing_limited",
                                       "maintenance",
                                       "portfolio_limit",
                                       "latency_ms",
                                       NULL };
  SimKnobs k = sim->knobs;

  if (!check_members (msg, req, known))
    return;
  k.auto_statuses = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; i < sim->knobs.auto_statuses->len; i++)
    g_ptr_array_add (k.auto_statuses, g_strdup (g_ptr_array_index (sim->knobs.auto_statuses, i)));
  k.wa_id_rewrite = copy_table (sim->knobs.wa_id_rewrite, TRUE);
  k.templates = copy_table (sim->knobs.templates, TRUE);
  k.templates_missing = copy_table (sim->knobs.templates_missing, FALSE);
  k.expired_tokens = copy_table (sim->knobs.expired_tokens, FALSE);
  k.groups = copy_table (sim->knobs.groups, FALSE);
  k.marketing_opted_out = copy_table (sim->knobs.marketing_opted_out, FALSE);
  k.marketing_limited = copy_table (sim->knobs.marketing_limited, FALSE);
  if (!apply_config (sim, msg, req, &k))
    {
      sim_knobs_clear (&k);
      return;
    }
  sim_knobs_clear (&sim->knobs);
  sim->knobs = k;
  if (json_object_has_member (req, "throughput_mps") || json_object_has_member (req, "pair_burst")
      || json_object_has_member (req, "pair_refill_s"))
    g_hash_table_remove_all (sim->buckets);
  answer_config (sim, msg);
}

/* ---- webhook generators ---- */

static void
answer_emitted (SoupServerMessage *msg, const char *id, const char *body, gint64 delivery)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  if (id != NULL)
    {
      json_builder_set_member_name (b, "id");
      json_builder_add_string_value (b, id);
    }
  json_builder_set_member_name (b, "body");
  json_builder_add_string_value (b, body);
  json_builder_set_member_name (b, "delivery");
  if (delivery != 0)
    json_builder_add_int_value (b, delivery);
  else
    json_builder_add_null_value (b);
  json_builder_end_object (b);
  answer_builder (msg, 200, b);
}

static void
post_inbound (Sim *sim, SoupServerMessage *msg, JsonObject *req)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *wamid = NULL;
  g_autofree char *body = sim_inbound_body (sim, req, &wamid, &error);
  gint64 delivery;

  if (body == NULL)
    {
      answer_error (msg, 400, "%s", error->message);
      return;
    }
  delivery = sim_webhook_emit (sim->webhook, body, SIM_WEBHOOK_MESSAGE, TRUE, NULL);
  answer_emitted (msg, wamid, body, delivery);
}

/* A customer's voice call (webhook field "calls"): connect or terminate. */
static void
post_call (Sim *sim, SoupServerMessage *msg, JsonObject *req)
{
  static const char *const known[]
      = { "from", "user_id", "name", "event", "status", "duration", "timestamp", "pnid", NULL };
  g_autoptr (GError) error = NULL;
  g_autofree char *id = NULL;
  g_autofree char *body = NULL;
  gint64 delivery;

  if (!check_members (msg, req, known))
    return;
  body = sim_call_body (sim, req, &id, &error);
  if (body == NULL)
    {
      answer_error (msg, 400, "%s", error->message);
      return;
    }
  delivery = sim_webhook_emit (sim->webhook, body, SIM_WEBHOOK_MESSAGE, TRUE, NULL);
  answer_emitted (msg, id, body, delivery);
}

#define BULK_MAX_MESSAGES 100000
#define BULK_MAX_SENDERS 1000
#define BULK_MAX_PER_BODY 100
#define BULK_PARALLEL 16 /* first attempts in flight at once */

/* Many customers' text messages at once (load and crash tests): message i
 * (numbered first + i) comes from from[(first + i) % len(from)], with text
 * @text where {n} is its number and {from} the sender; per_body messages
 * share one webhook (one change), the rest follow in further webhooks,
 * signed and retried like those of /_sim/inbound, BULK_PARALLEL at a time. */
static void
post_inbound_bulk (Sim *sim, SoupServerMessage *msg, JsonObject *req)
{
  static const char *const known[]
      = { "from", "count", "text", "first", "per_body", "name", "timestamp", NULL };
  JsonArray *from = NULL;
  const char *tmpl = "message {n}";
  const char *name = "Customer";
  gint64 count = 0, first = 0, per_body = 1, ts = sim_clock_now (&sim->clock);
  guint n_senders;
  g_autofree const char **senders = NULL;
  g_autoptr (JsonBuilder) b = NULL;
  g_autoptr (GPtrArray) bodies = NULL;
  g_autofree gint64 *ids = NULL;

  if (!check_members (msg, req, known))
    return;
  if (json_object_has_member (req, "from")
      && JSON_NODE_HOLDS_ARRAY (json_object_get_member (req, "from")))
    from = json_object_get_array_member (req, "from");
  n_senders = from != NULL ? json_array_get_length (from) : 0;
  if (n_senders == 0 || n_senders > BULK_MAX_SENDERS)
    {
      answer_error (msg, 400, "from must be an array of 1 to %d customers' phone digits",
                    BULK_MAX_SENDERS);
      return;
    }
  senders = g_new0 (const char *, n_senders + 1);
  for (guint i = 0; i < n_senders; i++)
    {
      JsonNode *node = json_array_get_element (from, i);
      const char *s
          = JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING
                ? json_node_get_string (node)
                : NULL;

      if (s == NULL || *s == '\0' || strspn (s, "0123456789") != strlen (s) || strlen (s) > 20)
        {
          answer_error (msg, 400, "from[%u] must be a customer's phone digits", i);
          return;
        }
      senders[i] = s;
    }
  if (!sim_json_int (req, "count", &count) || count < 1 || count > BULK_MAX_MESSAGES)
    {
      answer_error (msg, 400, "count must be an integer from 1 to %d", BULK_MAX_MESSAGES);
      return;
    }
  if (json_object_has_member (req, "first") && (!sim_json_int (req, "first", &first) || first < 0))
    {
      answer_error (msg, 400, "first must be an integer >= 0");
      return;
    }
  if (json_object_has_member (req, "per_body")
      && (!sim_json_int (req, "per_body", &per_body) || per_body < 1
          || per_body > BULK_MAX_PER_BODY))
    {
      answer_error (msg, 400, "per_body must be an integer from 1 to %d", BULK_MAX_PER_BODY);
      return;
    }
  if (json_object_has_member (req, "text") && (tmpl = sim_json_string (req, "text")) == NULL)
    {
      answer_error (msg, 400, "text must be a string");
      return;
    }
  if (json_object_has_member (req, "name") && (name = sim_json_string (req, "name")) == NULL)
    {
      answer_error (msg, 400, "name must be a string");
      return;
    }
  if (json_object_has_member (req, "timestamp")
      && !JSON_NODE_HOLDS_NULL (json_object_get_member (req, "timestamp"))
      && !sim_json_int (req, "timestamp", &ts))
    {
      answer_error (msg, 400, "timestamp must be unix seconds");
      return;
    }
  if (!sim_webhook_enabled (sim->webhook))
    {
      answer_error (msg, 409, "no webhook URL is configured");
      return;
    }

  bodies = g_ptr_array_new_with_free_func (g_free);
  for (gint64 done = 0; done < count; done += per_body)
    g_ptr_array_add (bodies,
                     sim_inbound_batch_body (sim, senders, n_senders, name, tmpl, first + done,
                                             (guint)MIN (per_body, count - done), ts));
  ids = g_new0 (gint64, bodies->len);
  sim_webhook_emit_chained (sim->webhook, (char *const *)bodies->pdata, bodies->len,
                            SIM_WEBHOOK_MESSAGE, BULK_PARALLEL, ids);
  b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "deliveries");
  json_builder_begin_array (b);
  for (guint i = 0; i < bodies->len; i++)
    json_builder_add_int_value (b, ids[i]);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "messages");
  json_builder_add_int_value (b, count);
  json_builder_set_member_name (b, "bodies");
  json_builder_add_int_value (b, bodies->len);
  json_builder_end_object (b);
  answer_builder (msg, 200, b);
}

static void
post_webhook_raw (Sim *sim, SoupServerMessage *msg, JsonObject *req)
{
  static const char *const known[] = { "body", "sign", "secret", NULL };
  const char *body = sim_json_string (req, "body");
  const char *secret = sim_json_string (req, "secret");
  gboolean sign = TRUE;
  gint64 delivery;

  if (!check_members (msg, req, known))
    return;
  if (body == NULL)
    {
      answer_error (msg, 400, "body must be a string");
      return;
    }
  if (json_object_has_member (req, "sign") && !sim_json_bool (req, "sign", &sign))
    {
      answer_error (msg, 400, "sign must be a boolean");
      return;
    }
  if (json_object_has_member (req, "secret") && secret == NULL)
    {
      answer_error (msg, 400, "secret must be a string");
      return;
    }
  if (!sim_webhook_enabled (sim->webhook))
    {
      answer_error (msg, 409, "no webhook URL is configured");
      return;
    }
  delivery = sim_webhook_emit (sim->webhook, body, SIM_WEBHOOK_RAW, sign, secret);
  answer_emitted (msg, NULL, body, delivery);
}

static void
post_status (Sim *sim, SoupServerMessage *msg, JsonObject *req)
{
  static const char *const known[] = { "wamid", "status", "errors", "timestamp", "category", NULL };
  static const char *const statuses[] = { "sent", "delivered", "read", "failed", "played", NULL };
  static const char undeliverable[] = "[{\"code\":131026,\"title\":\"Message "
                                      "undeliverable\",\"message\":\"Message undeliverable\","
                                      "\"error_data\":{\"details\":\"Message Undeliverable.\"},"
                                      "\"href\":\"https://developers.facebook.com/docs/whatsapp/"
                                      "cloud-api/support/error-codes/\"}]";
  const char *wamid = sim_json_string (req, "wamid");
  const char *status = sim_json_string (req, "status");
  JsonNode *errors = json_object_get_member (req, "errors");
  g_autoptr (JsonNode) default_errors = NULL;
  g_autofree char *body = NULL;
  gint64 ts = sim_clock_now (&sim->clock);
  SimSent *sent;
  gint64 delivery;

  if (!check_members (msg, req, known))
    return;
  if (wamid == NULL || (sent = g_hash_table_lookup (sim->sent, wamid)) == NULL)
    {
      answer_error (msg, 404, "wamid is not a message sent through the simulator");
      return;
    }
  if (status == NULL || !g_strv_contains (statuses, status))
    {
      answer_error (msg, 400, "status must be sent, delivered, read, failed or played");
      return;
    }
  if (errors != NULL && !JSON_NODE_HOLDS_ARRAY (errors))
    {
      answer_error (msg, 400, "errors must be an array");
      return;
    }
  if (json_object_has_member (req, "timestamp") && !sim_json_int (req, "timestamp", &ts))
    {
      answer_error (msg, 400, "timestamp must be unix seconds");
      return;
    }
  /* the pricing category this and later statuses report (any word: Meta
   * adds categories) */
  if (sim_json_string (req, "category") != NULL)
    {
      g_free (sent->category);
      sent->category = g_strdup (sim_json_string (req, "category"));
    }
  if (errors == NULL && g_strcmp0 (status, "failed") == 0)
    errors = default_errors = sim_json_parse (undeliverable, strlen (undeliverable), NULL);
  body = sim_status_body (sim, sent, status, ts, errors);
  delivery = sim_webhook_emit (sim->webhook, body, SIM_WEBHOOK_STATUS, TRUE, NULL);
  answer_emitted (msg, wamid, body, delivery);
}

/* A customer's stop / resume of marketing messages: the user_preferences
 * webhook; "stop" also puts the wa_id into marketing_opted_out, "resume"
 * takes it out. */
static void
post_user_preferences (Sim *sim, SoupServerMessage *msg, JsonObject *req)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *body = sim_user_preferences_body (sim, req, &error);
  const char *wa_id = sim_json_string (req, "wa_id");
  gint64 delivery;

  if (body == NULL)
    {
      answer_error (msg, 400, "%s", error->message);
      return;
    }
  if (g_strcmp0 (sim_json_string (req, "value"), "resume") == 0)
    g_hash_table_remove (sim->knobs.marketing_opted_out, wa_id);
  else
    g_hash_table_add (sim->knobs.marketing_opted_out, g_strdup (wa_id));
  delivery = sim_webhook_emit (sim->webhook, body, SIM_WEBHOOK_MESSAGE, TRUE, NULL);
  answer_emitted (msg, NULL, body, delivery);
}

/* ---- webhook settings ---- */

static void
answer_webhook (Sim *sim, SoupServerMessage *msg)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  sim_webhook_describe (sim->webhook, b);
  json_builder_end_object (b);
  answer_builder (msg, 200, b);
}

static void
post_webhook (Sim *sim, SoupServerMessage *msg, JsonObject *req)
{
  g_autoptr (GError) error = NULL;

  if (!sim_webhook_configure (sim->webhook, req, &error))
    {
      answer_error (msg, 400, "%s", error->message);
      return;
    }
  answer_webhook (sim, msg);
}

static void
answer_info (Sim *sim, SoupServerMessage *msg)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "base_url");
  json_builder_add_string_value (b, sim->base_url);
  json_builder_set_member_name (b, "graph_url");
  json_builder_add_string_value (b, sim->graph_url);
  json_builder_set_member_name (b, "pnid");
  json_builder_add_string_value (b, sim->pnid);
  json_builder_set_member_name (b, "waba_id");
  json_builder_add_string_value (b, sim->waba_id);
  json_builder_set_member_name (b, "display_phone_number");
  json_builder_add_string_value (b, sim->display_number);
  json_builder_set_member_name (b, "verified_name");
  json_builder_add_string_value (b, sim->verified_name);
  json_builder_set_member_name (b, "numbers");
  json_builder_begin_array (b);
  for (guint i = 0; i < sim->numbers->len; i++)
    {
      const SimNumber *number = g_ptr_array_index (sim->numbers, i);

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "pnid");
      json_builder_add_string_value (b, number->pnid);
      json_builder_set_member_name (b, "display_phone_number");
      json_builder_add_string_value (b, number->display_number);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  answer_builder (msg, 200, b);
}

static void
answer_log (SoupServerMessage *msg, GPtrArray *log, const char *member)
{
  g_autoptr (JsonNode) node = sim_log_since (log, member, query_since (msg));

  answer_node (msg, 200, node);
}

void
sim_control_handle (Sim *sim, SoupServerMessage *msg, const char *path)
{
  const char *method = soup_server_message_get_method (msg);
  const char *what = path + strlen ("/_sim/");
  gboolean get = g_strcmp0 (method, "GET") == 0;
  gboolean post = g_strcmp0 (method, "POST") == 0;
  g_autoptr (JsonNode) root = NULL;
  JsonObject *req = NULL;

  if (!g_str_has_prefix (path, "/_sim/"))
    {
      answer_error (msg, 404, "unknown control path %s", path);
      return;
    }
  if (post)
    {
      if ((root = request_object (msg)) == NULL)
        return;
      req = json_node_get_object (root);
    }

  if (get && g_strcmp0 (what, "info") == 0)
    answer_info (sim, msg);
  else if (get && g_strcmp0 (what, "sent") == 0)
    answer_log (msg, sim->sent_log, "messages");
  else if (get && g_strcmp0 (what, "uploads") == 0)
    {
      g_autoptr (JsonNode) node = sim_uploads_log (query_since (msg));
      answer_node (msg, 200, node);
    }
  else if (get && g_strcmp0 (what, "reads") == 0)
    answer_log (msg, sim->reads_log, "reads");
  else if (get && g_strcmp0 (what, "requests") == 0)
    answer_log (msg, sim->requests_log, "requests");
  else if (get && g_strcmp0 (what, "webhooks") == 0)
    {
      g_autoptr (JsonNode) node = sim_webhook_log (sim->webhook, query_since (msg));
      answer_node (msg, 200, node);
    }
  else if (get && g_strcmp0 (what, "clock") == 0)
    answer_clock (sim, msg);
  else if (post && g_strcmp0 (what, "clock") == 0)
    post_clock (sim, msg, req);
  else if (get && g_strcmp0 (what, "fault") == 0)
    list_faults (sim, msg);
  else if (post && g_strcmp0 (what, "fault") == 0)
    post_fault (sim, msg, req);
  else if (g_strcmp0 (method, "DELETE") == 0 && g_strcmp0 (what, "fault") == 0)
    {
      g_ptr_array_set_size (sim->faults, 0);
      sim_refuse_stop (sim);
      answer_ok (msg);
    }
  else if (get && g_strcmp0 (what, "webhook") == 0)
    answer_webhook (sim, msg);
  else if (post && g_strcmp0 (what, "webhook") == 0)
    post_webhook (sim, msg, req);
  else if (get && g_strcmp0 (what, "config") == 0)
    answer_config (sim, msg);
  else if (post && g_strcmp0 (what, "config") == 0)
    post_config (sim, msg, req);
  else if (post && g_strcmp0 (what, "reset") == 0)
    {
      sim_state_reset (sim);
      sim_uploads_reset ();
      answer_ok (msg);
    }
  else if (post && g_strcmp0 (what, "inbound") == 0)
    post_inbound (sim, msg, req);
  else if (post && g_strcmp0 (what, "call") == 0)
    post_call (sim, msg, req);
  else if (post && g_strcmp0 (what, "inbound_bulk") == 0)
    post_inbound_bulk (sim, msg, req);
  else if (post && g_strcmp0 (what, "webhook_raw") == 0)
    post_webhook_raw (sim, msg, req);
  else if (post && g_strcmp0 (what, "status") == 0)
    post_status (sim, msg, req);
  else if (get && g_strcmp0 (what, "portfolio") == 0)
    {
      g_autoptr (JsonNode) node = sim_portfolio_describe (sim);
      answer_node (msg, 200, node);
    }
  else if (post && g_strcmp0 (what, "user_preferences") == 0)
    post_user_preferences (sim, msg, req);
  else if (g_strcmp0 (what, "media") == 0)
    sim_media_control (sim, msg, method, req);
  else if (g_str_has_prefix (what, "templates"))
    sim_templates_control (sim, msg, method, what, req);
  else
    answer_error (msg, 404, "no control route %s %s", method, path);
}
