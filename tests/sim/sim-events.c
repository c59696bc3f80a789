/* sim-events.c: builds the webhook bodies the simulator emits (statuses and
 * inbound messages, shaped like Meta's webhook examples) and schedules the
 * automatic statuses that follow an accepted send. */
#include "sim.h"
#include "sim-json.h"
#include "sim-validate.h"
#include "sim-webhook.h"

#include <string.h>

typedef struct
{
  Sim *sim;
  char *wamid;
  GPtrArray *statuses; /* char*, emitted in order */
  guint next;
  JsonNode *errors; /* for a "failed" status, or NULL */
  guint source;
} SimStatusTimer;

static void
status_timer_free (SimStatusTimer *t)
{
  if (t->source != 0)
    g_source_remove (t->source);
  g_free (t->wamid);
  g_ptr_array_unref (t->statuses);
  if (t->errors)
    json_node_unref (t->errors);
  g_free (t);
}

void
sim_status_timers_cancel (Sim *sim)
{
  for (guint i = 0; i < sim->status_timers->len; i++)
    status_timer_free (g_ptr_array_index (sim->status_timers, i));
  g_ptr_array_set_size (sim->status_timers, 0);
}

/* The number a control request names as "pnid" (default: the first). */
static const SimNumber *
request_number (Sim *sim, JsonObject *req, GError **error)
{
  const char *pnid = sim_json_string (req, "pnid");
  const SimNumber *number = sim_number (sim, pnid);

  if (number == NULL)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                 "pnid %s is not a phone number of this business", pnid);
  return number;
}

/* Opens {"object":...,"entry":[{"id":WABA,"changes":[{"value":{...metadata
 * (of @number, the business number the change is about) */
static void
begin_envelope (Sim *sim, const SimNumber *number, JsonBuilder *b)
{
  g_autofree char *display = sim_digits_only (number->display_number);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "object");
  json_builder_add_string_value (b, "whatsapp_business_account");
  json_builder_set_member_name (b, "entry");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, sim->waba_id);
  json_builder_set_member_name (b, "changes");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "value");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "messaging_product");
  json_builder_add_string_value (b, "whatsapp");
  json_builder_set_member_name (b, "metadata");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "display_phone_number");
  json_builder_add_string_value (b, display);
  json_builder_set_member_name (b, "phone_number_id");
  json_builder_add_string_value (b, number->pnid);
  json_builder_end_object (b);
}

static char *
end_envelope_field (JsonBuilder *b, const char *field)
{
  json_builder_end_object (b); /* value */
  json_builder_set_member_name (b, "field");
  json_builder_add_string_value (b, field);
  json_builder_end_object (b); /* change */
  json_builder_end_array (b);  /* changes */
  json_builder_end_object (b); /* entry */
  json_builder_end_array (b);  /* entry[] */
  json_builder_end_object (b);
  return sim_json_serialize_builder (b);
}

static char *
end_envelope (JsonBuilder *b)
{
  return end_envelope_field (b, "messages");
}

char *
sim_status_body (Sim *sim, SimSent *sent, const char *status, gint64 ts, JsonNode *errors)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autofree char *ts_str = g_strdup_printf ("%" G_GINT64_FORMAT, ts);
  const SimNumber *number = sim_number (sim, sent->pnid);
  gboolean priced = FALSE;

  if (g_strcmp0 (status, "sent") == 0)
    priced = TRUE;
  else if ((g_strcmp0 (status, "delivered") == 0 || g_strcmp0 (status, "read") == 0)
           && !sent->priced_dr)
    priced = sent->priced_dr = TRUE;
  if (g_strcmp0 (status, "failed") == 0)
    sent->failed = TRUE;
  if (number == NULL)
    number = sim_number (sim, NULL);

  begin_envelope (sim, number, b);
  json_builder_set_member_name (b, "statuses");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, sent->wamid);
  json_builder_set_member_name (b, "status");
  json_builder_add_string_value (b, status);
  json_builder_set_member_name (b, "timestamp");
  json_builder_add_string_value (b, ts_str);
  if (sent->recipient_id != NULL)
    {
      json_builder_set_member_name (b, "recipient_id");
      json_builder_add_string_value (b, sent->recipient_id);
    }
  else
    {
      json_builder_set_member_name (b, "recipient_user_id");
      json_builder_add_string_value (b, sent->user_id);
    }
  if (sent->biz_opaque != NULL)
    {
      json_builder_set_member_name (b, "biz_opaque_callback_data");
      json_builder_add_string_value (b, sent->biz_opaque);
    }
  if (priced)
    {
      json_builder_set_member_name (b, "pricing");
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "billable");
      json_builder_add_boolean_value (b, TRUE);
      json_builder_set_member_name (b, "pricing_model");
      json_builder_add_string_value (b, "PMP");
      json_builder_set_member_name (b, "type");
      json_builder_add_string_value (b, sent->pricing_type);
      json_builder_set_member_name (b, "category");
      json_builder_add_string_value (b, sent->category);
      json_builder_end_object (b);
    }
  if (errors != NULL)
    {
      json_builder_set_member_name (b, "errors");
      json_builder_add_value (b, json_node_copy (errors));
    }
  json_builder_end_object (b);
  json_builder_end_array (b);
  return end_envelope (b);
}

/* [{code, title, message, error_data:{details}, href}], as statuses carry errors. */
static JsonNode *
status_errors (gint64 code, const char *title, const char *details)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "code");
  json_builder_add_int_value (b, code);
  json_builder_set_member_name (b, "title");
  json_builder_add_string_value (b, title);
  json_builder_set_member_name (b, "message");
  json_builder_add_string_value (b, title);
  json_builder_set_member_name (b, "error_data");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "details");
  json_builder_add_string_value (b, details);
  json_builder_end_object (b);
  json_builder_set_member_name (b, "href");
  json_builder_add_string_value (b,
                                 "https://developers.facebook.com/docs/whatsapp/cloud-api/support/"
                                 "error-codes/");
  json_builder_end_object (b);
  json_builder_end_array (b);
  return json_builder_get_root (b);
}

static gboolean
status_timer_fire (gpointer data)
{
  SimStatusTimer *t = data;
  Sim *sim = t->sim;
  SimSent *sent = g_hash_table_lookup (sim->sent, t->wamid);

  t->source = 0;
  if (sent != NULL && t->next < t->statuses->len)
    {
      const char *status = g_ptr_array_index (t->statuses, t->next);
      g_autofree char *body = NULL;

      t->next++;
      body = sim_status_body (sim, sent, status, sim_clock_now (&sim->clock),
                              g_strcmp0 (status, "failed") == 0 ? t->errors : NULL);
      sim_webhook_emit (sim->webhook, body, SIM_WEBHOOK_STATUS, TRUE, NULL);
    }
  if (sent != NULL && t->next < t->statuses->len)
    {
      t->source = g_timeout_add (sim->knobs.status_delay_ms, status_timer_fire, t);
      return G_SOURCE_REMOVE;
    }
  g_ptr_array_remove (sim->status_timers, t);
  status_timer_free (t);
  return G_SOURCE_REMOVE;
}

/* Meta's wording of the failures an accepted send can end in. */
static const struct
{
  SimFailure failure;
  gint64 code;
  const char *title;
  const char *details;
} failures[] = {
  { SIM_FAIL_REENGAGEMENT, 131047, "Re-engagement message",
    "Message failed to send because more than 24 hours have passed since the customer last "
    "replied to this number." },
  { SIM_FAIL_SPAM_RATE, 131048, "Spam rate limit hit",
    "Message failed to send because there are restrictions on how many messages can be sent "
    "from this phone number. This may be because too many previous messages were blocked or "
    "flagged as spam." },
  { SIM_FAIL_MARKETING_LIMIT, 131049,
    "This message was not delivered to maintain healthy ecosystem engagement.",
    "In order to maintain a healthy ecosystem engagement, the message failed to be delivered." },
  { SIM_FAIL_OPTED_OUT, 131050,
    "Unable to deliver the message. This recipient has chosen to stop receiving marketing "
    "messages on WhatsApp from your business.",
    "Unable to deliver the message. This recipient has chosen to stop receiving marketing "
    "messages on WhatsApp from your business." },
};

void
sim_schedule_statuses (Sim *sim, SimSent *sent, gboolean window_open)
{
  sim_schedule_outcome (sim, sent, window_open ? SIM_FAIL_NONE : SIM_FAIL_REENGAGEMENT);
}

void
sim_schedule_outcome (Sim *sim, SimSent *sent, SimFailure failure)
{
  SimStatusTimer *t;

  if (!sim_webhook_enabled (sim->webhook))
    return;
  t = g_new0 (SimStatusTimer, 1);
  t->sim = sim;
  t->wamid = g_strdup (sent->wamid);
  t->statuses = g_ptr_array_new_with_free_func (g_free);
  if (failure != SIM_FAIL_NONE)
    {
      for (gsize i = 0; i < G_N_ELEMENTS (failures); i++)
        if (failures[i].failure == failure)
          t->errors = status_errors (failures[i].code, failures[i].title, failures[i].details);
      g_ptr_array_add (t->statuses, g_strdup ("failed"));
    }
  else
    for (guint i = 0; i < sim->knobs.auto_statuses->len; i++)
      g_ptr_array_add (t->statuses, g_strdup (g_ptr_array_index (sim->knobs.auto_statuses, i)));
  if (t->statuses->len == 0)
    {
      status_timer_free (t);
      return;
    }
  g_ptr_array_add (sim->status_timers, t);
  t->source = g_timeout_add (sim->knobs.status_delay_ms, status_timer_fire, t);
}

static gboolean
parse_timestamp (JsonObject *req, gint64 *ts, GError **error)
{
  JsonNode *node = json_object_get_member (req, "timestamp");

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return TRUE;
  if (sim_json_int (req, "timestamp", ts))
    return TRUE;
  if (sim_json_string (req, "timestamp") != NULL)
    {
      const char *s = sim_json_string (req, "timestamp");
      char *end = NULL;

      *ts = g_ascii_strtoll (s, &end, 10);
      if (end != s && *end == '\0')
        return TRUE;
    }
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "timestamp must be unix seconds");
  return FALSE;
}

static void
add_passthrough (JsonBuilder *b, JsonObject *req, const char *member)
{
  JsonNode *node = json_object_get_member (req, member);

  if (node == NULL)
    return;
  json_builder_set_member_name (b, member);
  json_builder_add_value (b, json_node_copy (node));
}

/* A customer is named by phone digits (@from), a BSUID (@user_id), or both;
 * @from may be NULL (no phone), but not empty. */
static gboolean
check_sender (const char *from, const char *user_id, GError **error)
{
  if (from != NULL
      && (*from == '\0' || strspn (from, "0123456789") != strlen (from) || strlen (from) > 20))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "from must be the customer's phone digits (or set no_phone)");
      return FALSE;
    }
  if (user_id != NULL && !sim_is_bsuid (user_id))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "user_id must look like CC.alphanumeric");
      return FALSE;
    }
  if (from == NULL && user_id == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "a user without phone needs user_id");
      return FALSE;
    }
  return TRUE;
}

/* @member: @value, unless @value is NULL. */
static void
add_string_if (JsonBuilder *b, const char *member, const char *value)
{
  if (value == NULL)
    return;
  json_builder_set_member_name (b, member);
  json_builder_add_string_value (b, value);
}

/* "contacts":[{profile:{name[,username]}, wa_id?, user_id?}]: the sender. */
static void
add_sender_contact (JsonBuilder *b, const char *name, const char *username, const char *from,
                    const char *user_id)
{
  json_builder_set_member_name (b, "contacts");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "profile");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, name ? name : "Customer");
  add_string_if (b, "username", username);
  json_builder_end_object (b);
  add_string_if (b, "wa_id", from);
  add_string_if (b, "user_id", user_id);
  json_builder_end_object (b);
  json_builder_end_array (b);
}

/* Builds the webhook for POST /_sim/inbound; records the message id and
 * moves the customer's window. Returns the exact body bytes. */
char *
sim_inbound_body (Sim *sim, JsonObject *req, char **wamid_out, GError **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  gboolean no_phone = FALSE;
  const char *from = sim_json_string (req, "from");
  const char *user_id = sim_json_string (req, "user_id");
  const char *name = sim_json_string (req, "name");
  const char *username = sim_json_string (req, "username");
  const char *type = sim_json_string (req, "type");
  const char *custom_id = sim_json_string (req, "id");
  const SimNumber *number = request_number (sim, req, error);
  gint64 ts = sim_clock_now (&sim->clock);
  g_autofree char *wamid = NULL;
  g_autofree char *ts_str = NULL;
  JsonNode *payload;
  char *body;

  if (number == NULL)
    return NULL;
  sim_json_bool (req, "no_phone", &no_phone);
  if (no_phone)
    from = NULL;
  else if (from == NULL)
    from = "";
  if (!check_sender (from, user_id, error))
    return NULL;
  if (!parse_timestamp (req, &ts, error))
    return NULL;
  if (type == NULL)
    type = "text";
  payload = json_object_get_member (req, type);
  if (g_strcmp0 (type, "text") == 0 && payload != NULL && !JSON_NODE_HOLDS_VALUE (payload)
      && !JSON_NODE_HOLDS_OBJECT (payload))
    payload = NULL;
  if (payload == NULL && g_strcmp0 (type, "request_welcome") != 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "member \"%s\" is missing",
                   type);
      return NULL;
    }
  if (g_strcmp0 (type, "text") == 0 && JSON_NODE_HOLDS_VALUE (payload)
      && sim_json_string (req, "text") == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "text must be a string or an object");
      return NULL;
    }

  wamid = custom_id ? g_strdup (custom_id) : sim_new_wamid (from ? from : user_id, TRUE);
  ts_str = g_strdup_printf ("%" G_GINT64_FORMAT, ts);

  begin_envelope (sim, number, b);
  if (g_strcmp0 (type, "system") != 0)
    add_sender_contact (b, name, username, from, user_id);
  json_builder_set_member_name (b, "messages");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  add_passthrough (b, req, "context");
  add_string_if (b, "from", from);
  add_string_if (b, "from_user_id", user_id);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, wamid);
  json_builder_set_member_name (b, "timestamp");
  json_builder_add_string_value (b, ts_str);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, type);
  if (g_strcmp0 (type, "text") == 0 && JSON_NODE_HOLDS_VALUE (payload))
    {
      json_builder_set_member_name (b, "text");
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "body");
      json_builder_add_string_value (b, json_node_get_string (payload));
      json_builder_end_object (b);
    }
  else if (payload != NULL)
    add_passthrough (b, req, type);
  add_passthrough (b, req, "referral");
  add_passthrough (b, req, "errors");
  json_builder_end_object (b);
  json_builder_end_array (b);
  body = end_envelope (b);

  sim_inbound_record (sim, wamid, ts);
  if (g_strcmp0 (type, "system") != 0)
    {
      if (from != NULL)
        sim_window_touch (sim, number, from, ts);
      if (user_id != NULL)
        sim_window_touch (sim, number, user_id, ts);
    }
  *wamid_out = g_steal_pointer (&wamid);
  return body;
}

/* {n} in @tmpl becomes @n, {from} becomes @from; nothing else changes. */
static char *
expand_text (const char *tmpl, gint64 n, const char *from)
{
  GString *out = g_string_new (NULL);

  for (const char *p = tmpl; *p != '\0';)
    {
      if (g_str_has_prefix (p, "{n}"))
        {
          g_string_append_printf (out, "%" G_GINT64_FORMAT, n);
          p += 3;
        }
      else if (g_str_has_prefix (p, "{from}"))
        {
          g_string_append (out, from);
          p += 6;
        }
      else
        g_string_append_c (out, *p++);
    }
  return g_string_free (out, FALSE);
}

/* Builds one webhook for POST /_sim/inbound_bulk: @count text messages, the
 * i-th from senders[(first + i) % n_senders] with text @tmpl expanded for
 * number first + i, all in one change as Meta batches them ("contacts" names
 * each sender once, in order of first appearance). Records the ids and
 * moves the windows as sim_inbound_body does. Returns the exact body bytes. */
char *
sim_inbound_batch_body (Sim *sim, const char *const *senders, guint n_senders, const char *name,
                        const char *tmpl, gint64 first, guint count, gint64 ts)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  g_autofree char *ts_str = g_strdup_printf ("%" G_GINT64_FORMAT, ts);
  const SimNumber *number = sim_number (sim, NULL);

  begin_envelope (sim, number, b);
  json_builder_set_member_name (b, "contacts");
  json_builder_begin_array (b);
  for (guint i = 0; i < count; i++)
    {
      const char *from = senders[(guint64)(first + i) % n_senders];

      if (!g_hash_table_add (seen, (gpointer)from))
        continue;
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "profile");
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "name");
      json_builder_add_string_value (b, name);
      json_builder_end_object (b);
      json_builder_set_member_name (b, "wa_id");
      json_builder_add_string_value (b, from);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "messages");
  json_builder_begin_array (b);
  for (guint i = 0; i < count; i++)
    {
      const char *from = senders[(guint64)(first + i) % n_senders];
      g_autofree char *wamid = sim_new_wamid (from, TRUE);
      g_autofree char *text = expand_text (tmpl, first + i, from);

      json_builder_begin_object (b);
      json_builder_set_member_name (b, "from");
      json_builder_add_string_value (b, from);
      json_builder_set_member_name (b, "id");
      json_builder_add_string_value (b, wamid);
      json_builder_set_member_name (b, "timestamp");
      json_builder_add_string_value (b, ts_str);
      json_builder_set_member_name (b, "type");
      json_builder_add_string_value (b, "text");
      json_builder_set_member_name (b, "text");
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "body");
      json_builder_add_string_value (b, text);
      json_builder_end_object (b);
      json_builder_end_object (b);
      sim_inbound_record (sim, wamid, ts);
      sim_window_touch (sim, number, from, ts);
    }
  json_builder_end_array (b);
  return end_envelope (b);
}

/* Builds the webhook for POST /_sim/call: field "calls", one call from the
 * customer (from and/or user_id, named in "contacts" like a message's
 * sender) with event connect (ringing) or terminate (status, duration), as
 * Meta's Calling API sends it. Calls open the customer's window. Returns the
 * exact body bytes; *@id_out gets the call id (wacid). */
char *
sim_call_body (Sim *sim, JsonObject *req, char **id_out, GError **error)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  const char *from = sim_json_string (req, "from");
  const char *user_id = sim_json_string (req, "user_id");
  const char *name = sim_json_string (req, "name");
  const char *event = sim_json_string (req, "event");
  const char *status = sim_json_string (req, "status");
  const SimNumber *number = request_number (sim, req, error);
  g_autofree char *display = NULL;
  g_autofree char *ts_str = NULL;
  g_autofree char *id = NULL;
  g_autofree char *uuid = g_uuid_string_random ();
  gint64 duration = 0;
  gint64 ts = sim_clock_now (&sim->clock);

  if (number == NULL || !check_sender (from, user_id, error))
    return NULL;
  display = sim_digits_only (number->display_number);
  if (event == NULL)
    event = "connect";
  if (g_strcmp0 (event, "connect") != 0 && g_strcmp0 (event, "terminate") != 0)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "event must be connect or terminate");
      return NULL;
    }
  if (!parse_timestamp (req, &ts, error))
    return NULL;
  sim_json_int (req, "duration", &duration);
  ts_str = g_strdup_printf ("%" G_GINT64_FORMAT, ts);
  id = g_strdup_printf ("wacid.%s", uuid);

  begin_envelope (sim, number, b);
  add_sender_contact (b, name, NULL, from, user_id);
  json_builder_set_member_name (b, "calls");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, id);
  json_builder_set_member_name (b, "to");
  json_builder_add_string_value (b, display);
  add_string_if (b, "from", from);
  add_string_if (b, "from_user_id", user_id);
  json_builder_set_member_name (b, "event");
  json_builder_add_string_value (b, event);
  json_builder_set_member_name (b, "timestamp");
  json_builder_add_string_value (b, ts_str);
  json_builder_set_member_name (b, "direction");
  json_builder_add_string_value (b, "USER_INITIATED");
  if (g_strcmp0 (event, "connect") == 0)
    {
      json_builder_set_member_name (b, "session");
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "sdp_type");
      json_builder_add_string_value (b, "offer");
      json_builder_set_member_name (b, "sdp");
      json_builder_add_string_value (b, "v=0");
      json_builder_end_object (b);
    }
  else
    {
      json_builder_set_member_name (b, "status");
      json_builder_add_string_value (b, status ? status : "COMPLETED");
      json_builder_set_member_name (b, "duration");
      json_builder_add_int_value (b, duration);
    }
  json_builder_end_object (b);
  json_builder_end_array (b);
  if (from != NULL)
    sim_window_touch (sim, number, from, ts);
  if (user_id != NULL)
    sim_window_touch (sim, number, user_id, ts);
  *id_out = g_steal_pointer (&id);
  return end_envelope_field (b, "calls");
}

/* A customer's marketing preference change (webhook field "user_preferences"):
 * {wa_id, value: stop|resume, category, detail, timestamp, name}. */
char *
sim_user_preferences_body (Sim *sim, JsonObject *req, GError **error)
{
  static const char *const known[]
      = { "wa_id", "value", "category", "detail", "timestamp", "name", "pnid", NULL };
  g_autoptr (JsonBuilder) b = json_builder_new ();
  const char *wa_id = sim_json_string (req, "wa_id");
  const char *value = sim_json_string (req, "value");
  const char *category = sim_json_string (req, "category");
  const char *detail = sim_json_string (req, "detail");
  const char *name = sim_json_string (req, "name");
  const SimNumber *number = NULL;
  gint64 ts = sim_clock_now (&sim->clock);
  JsonObjectIter iter;
  const char *member;
  JsonNode *node;

  json_object_iter_init (&iter, req);
  while (json_object_iter_next (&iter, &member, &node))
    if (!g_strv_contains (known, member))
      {
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "unknown member \"%s\"",
                     member);
        return NULL;
      }
  if (wa_id == NULL || *wa_id == '\0')
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "wa_id (the customer's digits) is required");
      return NULL;
    }
  number = request_number (sim, req, error);
  if (number == NULL)
    return NULL;
  if (value == NULL)
    value = "stop";
  if (g_strcmp0 (value, "stop") != 0 && g_strcmp0 (value, "resume") != 0)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           "value must be stop or resume");
      return NULL;
    }
  if (!parse_timestamp (req, &ts, error))
    return NULL;
  if (detail == NULL)
    detail = g_strcmp0 (value, "stop") == 0 ? "User requested to stop marketing messages"
                                            : "User requested to resume marketing messages";

  begin_envelope (sim, number, b);
  json_builder_set_member_name (b, "contacts");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "profile");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, name ? name : "Customer");
  json_builder_end_object (b);
  json_builder_set_member_name (b, "wa_id");
  json_builder_add_string_value (b, wa_id);
  json_builder_end_object (b);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "user_preferences");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "wa_id");
  json_builder_add_string_value (b, wa_id);
  json_builder_set_member_name (b, "detail");
  json_builder_add_string_value (b, detail);
  json_builder_set_member_name (b, "category");
  json_builder_add_string_value (b, category ? category : "marketing_messages");
  json_builder_set_member_name (b, "value");
  json_builder_add_string_value (b, value);
  json_builder_set_member_name (b, "timestamp");
  json_builder_add_int_value (b, ts);
  json_builder_end_object (b);
  json_builder_end_array (b);
  return end_envelope_field (b, "user_preferences");
}
