/* sim-state.c: the simulator's mutable state: knobs, logs, accepted sends,
 * inbound message ids, customer service windows and rate-limit buckets, plus
 * small helpers (wamids, wa_id rules). Nothing here talks HTTP. */
#include "sim.h"
#include "sim-templates.h"
#include "sim-webhook.h"

#include <string.h>

typedef struct
{
  double tokens;
  gint64 last_us;
} SimBucket;

static GHashTable *
new_set (void)
{
  return g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

void
sim_knobs_init (SimKnobs *knobs)
{
  knobs->throughput_mps = 80;
  knobs->pair_burst = 45;
  knobs->pair_refill_s = 6;
  knobs->auto_statuses = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (knobs->auto_statuses, g_strdup ("sent"));
  g_ptr_array_add (knobs->auto_statuses, g_strdup ("delivered"));
  knobs->status_delay_ms = 0;
  knobs->wa_id_rewrite = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  knobs->templates_missing = new_set ();
  knobs->templates = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  knobs->expired_tokens = new_set ();
  knobs->groups = new_set ();
  knobs->management_calls_per_hour = 200;
  knobs->management_exhausted = FALSE;
  knobs->marketing_disabled = FALSE;
  knobs->marketing_opted_out = new_set ();
  knobs->marketing_limited = new_set ();
  knobs->maintenance = FALSE;
  knobs->portfolio_limit = 0;
  knobs->latency_ms = 0;
}

void
sim_knobs_clear (SimKnobs *knobs)
{
  g_clear_pointer (&knobs->auto_statuses, g_ptr_array_unref);
  g_clear_pointer (&knobs->wa_id_rewrite, g_hash_table_unref);
  g_clear_pointer (&knobs->templates_missing, g_hash_table_unref);
  g_clear_pointer (&knobs->templates, g_hash_table_unref);
  g_clear_pointer (&knobs->expired_tokens, g_hash_table_unref);
  g_clear_pointer (&knobs->groups, g_hash_table_unref);
  g_clear_pointer (&knobs->marketing_opted_out, g_hash_table_unref);
  g_clear_pointer (&knobs->marketing_limited, g_hash_table_unref);
}

void
sim_fault_free (SimFault *fault)
{
  if (fault == NULL)
    return;
  g_free (fault->path);
  g_free (fault->method);
  g_free (fault->message);
  g_free (fault->details);
  g_free (fault->body);
  g_free (fault->content_type);
  g_clear_pointer (&fault->rand, g_rand_free);
  g_free (fault);
}

void
sim_sent_free (SimSent *sent)
{
  if (sent == NULL)
    return;
  g_free (sent->wamid);
  g_free (sent->pnid);
  g_free (sent->recipient_id);
  g_free (sent->user_id);
  g_free (sent->type);
  g_free (sent->biz_opaque);
  g_free (sent->category);
  g_free (sent->pricing_type);
  g_free (sent);
}

void
sim_state_init (Sim *sim)
{
  sim_clock_init (&sim->clock);
  sim_knobs_init (&sim->knobs);
  sim->faults = g_ptr_array_new_with_free_func ((GDestroyNotify)sim_fault_free);
  sim->sent_log = g_ptr_array_new_with_free_func ((GDestroyNotify)json_node_unref);
  sim->reads_log = g_ptr_array_new_with_free_func ((GDestroyNotify)json_node_unref);
  sim->requests_log = g_ptr_array_new_with_free_func ((GDestroyNotify)json_node_unref);
  sim->management_times = g_array_new (FALSE, FALSE, sizeof (gint64));
  sim->sent = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify)sim_sent_free);
  sim->inbound = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  sim->windows = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  sim->buckets = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  sim->portfolio = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  sim->portfolio_oldest = G_MAXINT64;
  sim->status_timers = g_ptr_array_new ();
  sim->paused = g_ptr_array_new ();
}

void
sim_state_clear (Sim *sim)
{
  sim_status_timers_cancel (sim);
  g_clear_pointer (&sim->status_timers, g_ptr_array_unref);
  g_clear_pointer (&sim->paused, g_ptr_array_unref);
  sim_knobs_clear (&sim->knobs);
  g_clear_pointer (&sim->faults, g_ptr_array_unref);
  g_clear_pointer (&sim->sent_log, g_ptr_array_unref);
  g_clear_pointer (&sim->reads_log, g_ptr_array_unref);
  g_clear_pointer (&sim->requests_log, g_ptr_array_unref);
  g_clear_pointer (&sim->management_times, g_array_unref);
  g_clear_pointer (&sim->sent, g_hash_table_unref);
  g_clear_pointer (&sim->inbound, g_hash_table_unref);
  g_clear_pointer (&sim->windows, g_hash_table_unref);
  g_clear_pointer (&sim->buckets, g_hash_table_unref);
  g_clear_pointer (&sim->portfolio, g_hash_table_unref);
}

/* Back to the state right after start-up: the command line stays. */
void
sim_state_reset (Sim *sim)
{
  sim_status_timers_cancel (sim);
  sim_knobs_clear (&sim->knobs);
  sim_knobs_init (&sim->knobs);
  sim_clock_init (&sim->clock);
  sim_media_reset ();
  sim_templates_reset ();
  g_ptr_array_set_size (sim->faults, 0);
  sim_refuse_stop (sim);
  g_ptr_array_set_size (sim->sent_log, 0);
  g_ptr_array_set_size (sim->reads_log, 0);
  g_ptr_array_set_size (sim->requests_log, 0);
  g_array_set_size (sim->management_times, 0);
  sim->sent_seq = sim->reads_seq = sim->requests_seq = 0;
  g_hash_table_remove_all (sim->sent);
  g_hash_table_remove_all (sim->inbound);
  g_hash_table_remove_all (sim->windows);
  g_hash_table_remove_all (sim->buckets);
  g_hash_table_remove_all (sim->portfolio);
  sim->portfolio_oldest = G_MAXINT64;
  sim_webhook_reset (sim->webhook);
}

static void
append_hex (GString *out, guint n_chars)
{
  static const char hex[] = "0123456789ABCDEF";

  for (guint i = 0; i < n_chars; i++)
    g_string_append_c (out, hex[g_random_int_range (0, 16)]);
}

/* Shaped like Meta's ids: base64 of a small record holding the customer and
 * a random hex id (20 digits for inbound, 18 for outbound messages). */
char *
sim_new_wamid (const char *customer, gboolean inbound)
{
  GString *raw = g_string_new (NULL);
  gsize clen = MIN (strlen (customer), 200);
  guint idlen = inbound ? 20 : 18;
  g_autofree char *b64 = NULL;

  g_string_append_c (raw, 0x1c);
  g_string_append_c (raw, 0x18);
  g_string_append_c (raw, (char)clen);
  g_string_append_len (raw, customer, (gssize)clen);
  g_string_append_c (raw, 0x15);
  g_string_append_c (raw, 0x02);
  g_string_append_c (raw, 0x00);
  g_string_append_c (raw, inbound ? 0x12 : 0x11);
  g_string_append_c (raw, 0x18);
  g_string_append_c (raw, (char)idlen);
  append_hex (raw, idlen);
  g_string_append_c (raw, 0x00);
  b64 = g_base64_encode ((const guchar *)raw->str, raw->len);
  g_string_free (raw, TRUE);
  return g_strconcat ("wamid.", b64, NULL);
}

char *
sim_random_token (gsize len)
{
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  char *s = g_malloc (len + 1);

  for (gsize i = 0; i < len; i++)
    s[i] = alphabet[g_random_int_range (0, (gint32)(sizeof alphabet - 1))];
  s[len] = '\0';
  return s;
}

char *
sim_digits_only (const char *s)
{
  GString *out = g_string_new (NULL);

  for (const char *p = s; p && *p; p++)
    if (g_ascii_isdigit (*p))
      g_string_append_c (out, *p);
  return g_string_free (out, FALSE);
}

/* The wa_id Meta reports for normalised input digits. */
char *
sim_wa_id_for (Sim *sim, const char *digits)
{
  const char *rewritten = g_hash_table_lookup (sim->knobs.wa_id_rewrite, digits);
  gsize len = strlen (digits);

  if (rewritten != NULL)
    return g_strdup (rewritten);
  /* Brazil: 55 + area code + 9 + 8 digits -> the wa_id drops that 9 */
  if (len == 13 && g_str_has_prefix (digits, "55") && digits[4] == '9')
    return g_strdup_printf ("%.4s%s", digits, digits + 5);
  /* Mexico: 52 + 10 digits -> 521 + 10 digits */
  if (len == 12 && g_str_has_prefix (digits, "52"))
    return g_strdup_printf ("521%s", digits + 2);
  return g_strdup (digits);
}

static SimBucket *
bucket_refill (Sim *sim, const char *key, double capacity, double per_second, gint64 now_us)
{
  SimBucket *b = g_hash_table_lookup (sim->buckets, key);

  if (b == NULL)
    {
      b = g_new0 (SimBucket, 1);
      b->tokens = capacity;
      b->last_us = now_us;
      g_hash_table_insert (sim->buckets, g_strdup (key), b);
      return b;
    }
  if (now_us > b->last_us)
    b->tokens += (double)(now_us - b->last_us) * per_second / G_USEC_PER_SEC;
  b->last_us = now_us;
  if (b->tokens > capacity)
    b->tokens = capacity;
  return b;
}

/* The business's phone number @pnid (NULL: the first), or NULL when it has
 * no such number. */
const SimNumber *
sim_number (Sim *sim, const char *pnid)
{
  if (pnid == NULL)
    return g_ptr_array_index (sim->numbers, 0);
  for (guint i = 0; i < sim->numbers->len; i++)
    {
      const SimNumber *number = g_ptr_array_index (sim->numbers, i);

      if (g_strcmp0 (number->pnid, pnid) == 0)
        return number;
    }
  return NULL;
}

/* Takes a token from @number's and the pair's bucket, or neither. */
gboolean
sim_rate_check (Sim *sim, const SimNumber *number, const char *customer, gint64 *code,
                gint64 *subcode)
{
  gint64 now = sim_clock_now_us (&sim->clock);
  g_autofree char *tkey = g_strconcat ("tp:", number->pnid, NULL);
  g_autofree char *pkey = g_strconcat ("pair:", number->pnid, ":", customer, NULL);
  double mps = sim->knobs.throughput_mps;
  double refill = sim->knobs.pair_refill_s > 0 ? 1.0 / sim->knobs.pair_refill_s : 1e9;
  SimBucket *tp = bucket_refill (sim, tkey, mps, mps, now);
  SimBucket *pair = bucket_refill (sim, pkey, sim->knobs.pair_burst, refill, now);

  if (tp->tokens < 1.0)
    {
      *code = 130429;
      *subcode = 2494055;
      return FALSE;
    }
  if (pair->tokens < 1.0)
    {
      *code = 131056;
      *subcode = 0;
      return FALSE;
    }
  tp->tokens -= 1.0;
  pair->tokens -= 1.0;
  return TRUE;
}

static gboolean
portfolio_expired (gpointer key, gpointer value, gpointer now)
{
  (void)key;
  return *(gint64 *)now - *(gint64 *)value >= 24 * 3600;
}

/* Drops the customers reached 24 hours or more ago; a walk over the
 * portfolio only when its oldest entry is that old (not on every send). */
static void
portfolio_prune (Sim *sim, gint64 now)
{
  GHashTableIter iter;
  gpointer value;

  if (sim->portfolio_oldest == G_MAXINT64 || now - sim->portfolio_oldest < 24 * 3600)
    return;
  g_hash_table_foreach_remove (sim->portfolio, portfolio_expired, &now);
  sim->portfolio_oldest = G_MAXINT64;
  g_hash_table_iter_init (&iter, sim->portfolio);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    sim->portfolio_oldest = MIN (sim->portfolio_oldest, *(gint64 *)value);
}

/* A template reaches @customer outside a service window: FALSE when that
 * would be one unique customer more than portfolio_limit in 24 hours (the
 * customer is then not counted). */
gboolean
sim_portfolio_reach (Sim *sim, const char *customer)
{
  gint64 now = sim_clock_now (&sim->clock);

  portfolio_prune (sim, now);
  if (g_hash_table_contains (sim->portfolio, customer))
    return TRUE;
  if (sim->knobs.portfolio_limit > 0
      && g_hash_table_size (sim->portfolio) >= sim->knobs.portfolio_limit)
    return FALSE;
  g_hash_table_insert (sim->portfolio, g_strdup (customer), g_memdup2 (&now, sizeof now));
  sim->portfolio_oldest = MIN (sim->portfolio_oldest, now);
  return TRUE;
}

static gint
compare_reached (gconstpointer a, gconstpointer b, gpointer portfolio)
{
  gint64 ta = *(gint64 *)g_hash_table_lookup (portfolio, *(const char *const *)a);
  gint64 tb = *(gint64 *)g_hash_table_lookup (portfolio, *(const char *const *)b);

  return ta != tb ? (ta < tb ? -1 : 1) : strcmp (*(const char *const *)a, *(const char *const *)b);
}

/* {"limit", "used", "window_s", "recipients":[{customer, time}]} (oldest first). */
JsonNode *
sim_portfolio_describe (Sim *sim)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (GPtrArray) keys = g_ptr_array_new ();
  gint64 now = sim_clock_now (&sim->clock);
  GHashTableIter iter;
  gpointer key;

  portfolio_prune (sim, now);
  g_hash_table_iter_init (&iter, sim->portfolio);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    g_ptr_array_add (keys, key);
  g_ptr_array_sort_with_data (keys, compare_reached, sim->portfolio);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "limit");
  json_builder_add_int_value (b, sim->knobs.portfolio_limit);
  json_builder_set_member_name (b, "used");
  json_builder_add_int_value (b, keys->len);
  json_builder_set_member_name (b, "window_s");
  json_builder_add_int_value (b, 24 * 3600);
  json_builder_set_member_name (b, "recipients");
  json_builder_begin_array (b);
  for (guint i = 0; i < keys->len; i++)
    {
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "customer");
      json_builder_add_string_value (b, keys->pdata[i]);
      json_builder_set_member_name (b, "time");
      json_builder_add_int_value (b,
                                  *(gint64 *)g_hash_table_lookup (sim->portfolio, keys->pdata[i]));
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

/* A window is between one of the business's numbers and one customer. */
static char *
window_key (const SimNumber *number, const char *customer)
{
  return g_strconcat (number->pnid, ":", customer, NULL);
}

gboolean
sim_window_open (Sim *sim, const SimNumber *number, const char *customer)
{
  g_autofree char *key = customer ? window_key (number, customer) : NULL;
  gint64 *last = key ? g_hash_table_lookup (sim->windows, key) : NULL;

  return last != NULL && sim_clock_now (&sim->clock) - *last < 24 * 3600;
}

void
sim_window_touch (Sim *sim, const SimNumber *number, const char *customer, gint64 ts)
{
  char *key = window_key (number, customer);
  gint64 *last = g_hash_table_lookup (sim->windows, key);

  if (last == NULL)
    {
      last = g_new (gint64, 1);
      *last = ts;
      g_hash_table_insert (sim->windows, key, last);
      return;
    }
  g_free (key);
  if (ts > *last)
    *last = ts;
}

void
sim_inbound_record (Sim *sim, const char *wamid, gint64 ts)
{
  gint64 *v = g_new (gint64, 1);

  *v = ts;
  g_hash_table_insert (sim->inbound, g_strdup (wamid), v);
}

gboolean
sim_inbound_known (Sim *sim, const char *wamid, gint64 *ts)
{
  gint64 *v = g_hash_table_lookup (sim->inbound, wamid);

  if (v == NULL)
    return FALSE;
  if (ts)
    *ts = *v;
  return TRUE;
}

JsonBuilder *
sim_log_entry_begin (gint64 *seq)
{
  JsonBuilder *b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "seq");
  json_builder_add_int_value (b, ++*seq);
  return b;
}

/* Ends the object begun by sim_log_entry_begin, stores it, frees the builder. */
gint64
sim_log_entry_end (GPtrArray *log, JsonBuilder *entry)
{
  JsonNode *root;
  gint64 seq;

  json_builder_end_object (entry);
  root = json_builder_get_root (entry);
  g_object_unref (entry);
  seq = json_object_get_int_member (json_node_get_object (root), "seq");
  g_ptr_array_add (log, root);
  return seq;
}

JsonNode *
sim_log_since (GPtrArray *log, const char *member, gint64 since)
{
  JsonObject *obj = json_object_new ();
  JsonArray *array = json_array_new ();
  JsonNode *root = json_node_new (JSON_NODE_OBJECT);

  for (guint i = 0; i < log->len; i++)
    {
      JsonNode *entry = g_ptr_array_index (log, i);

      if (json_object_get_int_member (json_node_get_object (entry), "seq") > since)
        json_array_add_element (array, json_node_ref (entry));
    }
  json_object_set_array_member (obj, member, array);
  json_node_take_object (root, obj);
  return root;
}
