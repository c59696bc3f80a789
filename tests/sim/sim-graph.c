/* sim-graph.c: the Graph API side of the simulator: version and token
 * checks, GET /{pnid}, POST /{pnid}/messages (send and mark-as-read), the
 * error envelope and response headers of docs/CLOUD-API.md (Errors:
 * envelope), rate limits, the 24-hour window, and fault injection from
 * /_sim/fault. */
#include "sim.h"
#include "sim-json.h"
#include "sim-templates.h"
#include "sim-upload.h"
#include "sim-validate.h"

#include <string.h>

#define DEFAULT_VERSION "v25.0"

typedef struct
{
  guint status;
  char *body;
  const char *content_type;
  gint64 error_code; /* 0 on success */
  char *www_authenticate;
} Reply;

typedef struct
{
  Sim *sim;
  SoupServerMessage *msg; /* a reference */
  char *method;
  char *path;
  char *query;
  char *authorization; /* raw header value, or NULL */
  char *user_agent;
  char *content_type;
  char *version;           /* for facebook-api-version */
  SimFault *fault;         /* a copy of the matching rule, or NULL */
  gboolean processed;      /* graph_process ran */
  const SimNumber *number; /* the business number in the path, or NULL */
  gboolean marketing;      /* POST /{pnid}/marketing_messages */
  gboolean management;     /* a management call: GET of the number, a template or the catalogue */
  guint timer;             /* while paused */
  Reply reply;
} GraphRequest;

static void
reply_clear (Reply *r)
{
  g_clear_pointer (&r->body, g_free);
  g_clear_pointer (&r->www_authenticate, g_free);
  r->status = 0;
  r->error_code = 0;
  r->content_type = NULL;
}

static void
graph_request_free (GraphRequest *req)
{
  reply_clear (&req->reply);
  g_object_unref (req->msg);
  g_free (req->method);
  g_free (req->path);
  g_free (req->query);
  g_free (req->authorization);
  g_free (req->user_agent);
  g_free (req->content_type);
  g_free (req->version);
  sim_fault_free (req->fault);
  g_free (req);
}

static char *
error_body (const SimError *e)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autofree char *trace = sim_random_token (22);
  g_autofree char *fbtrace = g_strconcat ("A", trace, NULL);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "error");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "message");
  json_builder_add_string_value (b, e->message);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, e->type ? e->type : "OAuthException");
  json_builder_set_member_name (b, "code");
  json_builder_add_int_value (b, e->code);
  if (e->subcode != 0)
    {
      json_builder_set_member_name (b, "error_subcode");
      json_builder_add_int_value (b, e->subcode);
    }
  if (e->is_transient)
    {
      json_builder_set_member_name (b, "is_transient");
      json_builder_add_boolean_value (b, TRUE);
    }
  if (e->details != NULL)
    {
      json_builder_set_member_name (b, "error_data");
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "messaging_product");
      json_builder_add_string_value (b, "whatsapp");
      json_builder_set_member_name (b, "details");
      json_builder_add_string_value (b, e->details);
      json_builder_end_object (b);
    }
  json_builder_set_member_name (b, "fbtrace_id");
  json_builder_add_string_value (b, fbtrace);
  json_builder_end_object (b);
  json_builder_end_object (b);
  return sim_json_serialize_builder (b);
}

static void
reply_error (Reply *r, const SimError *e)
{
  const char *kind = e->code == 190                      ? "invalid_token"
                     : (e->code >= 200 && e->code < 300) ? "insufficient_scope"
                                                         : "invalid_request";

  reply_clear (r);
  r->status = e->http_status ? e->http_status : 400;
  r->body = error_body (e);
  r->content_type = "application/json; charset=UTF-8";
  r->error_code = e->code;
  r->www_authenticate
      = g_strdup_printf ("OAuth \"Facebook Platform\" \"%s\" \"%s\"", kind, e->message);
}

static void
reply_simple_error (Reply *r, guint http_status, gint64 code, gint64 subcode, const char *type,
                    const char *message, const char *details)
{
  SimError e = { 0 };

  sim_error_set (&e, http_status, code, message, details ? "%s" : NULL, details);
  e.subcode = subcode;
  if (type)
    e.type = type;
  reply_error (r, &e);
  sim_error_clear (&e);
}

static void
reply_json (Reply *r, JsonBuilder *b)
{
  reply_clear (r);
  r->status = 200;
  r->body = sim_json_serialize_builder (b);
  r->content_type = "application/json; charset=UTF-8";
}

static gboolean
version_ok (const char *v)
{
  const char *p = v;

  if (*p++ != 'v' || !g_ascii_isdigit (*p))
    return FALSE;
  while (g_ascii_isdigit (*p))
    p++;
  if (*p++ != '.' || !g_ascii_isdigit (*p))
    return FALSE;
  while (g_ascii_isdigit (*p))
    p++;
  return *p == '\0';
}

/* Management calls (GET of the number, the catalogue or a template; not
 * media) in the last hour of the sim clock, @current included when it is
 * one; *oldest is the time of the oldest of them. */
static gint64
management_calls (Sim *sim, gboolean current, gint64 *oldest)
{
  gint64 now = sim_clock_now (&sim->clock);
  gint64 calls = current ? 1 : 0;

  *oldest = now;
  for (guint i = 0; i < sim->management_times->len; i++)
    {
      gint64 t = g_array_index (sim->management_times, gint64, i);

      if (now - t < 3600)
        {
          calls++;
          *oldest = MIN (*oldest, t);
        }
    }
  return calls;
}

/* Minutes until management calls are allowed again, 0 when they are. */
static gint64
management_regain_minutes (Sim *sim, gboolean current, gint64 *percent)
{
  gint64 oldest;
  gint64 calls = management_calls (sim, current, &oldest);
  gint64 limit = sim->knobs.management_calls_per_hour;

  *percent = MIN (100, calls * 100 / limit);
  if (sim->knobs.management_exhausted)
    {
      *percent = 100;
      return 60;
    }
  if (calls <= limit)
    return 0;
  return MAX (1, (oldest + 3600 - sim_clock_now (&sim->clock) + 59) / 60);
}

/* Graph management call usage: percent of management_calls_per_hour GET
 * calls in the last hour. */
static char *
business_usage (GraphRequest *req)
{
  Sim *sim = req->sim;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  gint64 percent;
  gint64 regain = management_regain_minutes (sim, req->management, &percent);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, sim->waba_id);
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, "whatsapp_business_management");
  json_builder_set_member_name (b, "call_count");
  json_builder_add_int_value (b, percent);
  json_builder_set_member_name (b, "total_cputime");
  json_builder_add_int_value (b, 1);
  json_builder_set_member_name (b, "total_time");
  json_builder_add_int_value (b, 1);
  json_builder_set_member_name (b, "estimated_time_to_regain_access");
  json_builder_add_int_value (b, regain);
  json_builder_end_object (b);
  json_builder_end_array (b);
  json_builder_end_object (b);
  return sim_json_serialize_builder (b);
}

static void
log_request (GraphRequest *req, guint status, gint64 error_code, gboolean reset)
{
  Sim *sim = req->sim;
  JsonBuilder *b = sim_log_entry_begin (&sim->requests_seq);
  gint64 now = sim_clock_now (&sim->clock);

  json_builder_set_member_name (b, "method");
  json_builder_add_string_value (b, req->method);
  json_builder_set_member_name (b, "path");
  json_builder_add_string_value (b, req->path);
  json_builder_set_member_name (b, "query");
  if (req->query)
    json_builder_add_string_value (b, req->query);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "status");
  json_builder_add_int_value (b, status);
  json_builder_set_member_name (b, "error_code");
  if (error_code != 0)
    json_builder_add_int_value (b, error_code);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "authorization");
  json_builder_add_boolean_value (b, req->authorization != NULL);
  json_builder_set_member_name (b, "user_agent");
  if (req->user_agent)
    json_builder_add_string_value (b, req->user_agent);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "content_type");
  if (req->content_type)
    json_builder_add_string_value (b, req->content_type);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "fault");
  json_builder_add_boolean_value (b, req->fault != NULL);
  json_builder_set_member_name (b, "reset");
  json_builder_add_boolean_value (b, reset);
  json_builder_set_member_name (b, "management");
  json_builder_add_boolean_value (b, req->management);
  json_builder_set_member_name (b, "time");
  json_builder_add_int_value (b, now);
  sim_log_entry_end (sim->requests_log, b);
  if (req->management)
    g_array_append_val (sim->management_times, now);
  /* never the token, never the query (it could hold one) */
  if (reset)
    g_printerr ("sim: %s %s -> connection reset\n", req->method, req->path);
  else if (error_code != 0)
    g_printerr ("sim: %s %s -> %u (#%" G_GINT64_FORMAT ")\n", req->method, req->path, status,
                error_code);
  else
    g_printerr ("sim: %s %s -> %u\n", req->method, req->path, status);
}

/* Writes req->reply with the Graph headers and logs the request. */
static void
write_reply (GraphRequest *req, gboolean graph_headers)
{
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (req->msg);
  Reply *r = &req->reply;

  if (graph_headers)
    {
      g_autofree char *trace = sim_random_token (11);
      g_autofree char *request_id = sim_random_token (23);
      g_autofree char *usage = business_usage (req);

      soup_message_headers_replace (headers, "x-fb-trace-id", trace);
      soup_message_headers_replace (headers, "x-fb-request-id", request_id);
      soup_message_headers_replace (headers, "facebook-api-version",
                                    req->version ? req->version : DEFAULT_VERSION);
      soup_message_headers_replace (headers, "x-business-use-case-usage", usage);
      if (r->www_authenticate)
        soup_message_headers_replace (headers, "www-authenticate", r->www_authenticate);
    }
  soup_server_message_set_status (req->msg, r->status, NULL);
  soup_server_message_set_response (req->msg, r->content_type ? r->content_type : "text/plain",
                                    SOUP_MEMORY_COPY, r->body ? r->body : "",
                                    r->body ? strlen (r->body) : 0);
  log_request (req, r->status, r->error_code, FALSE);
}

/* ---- GET /{pnid} ---- */

static gboolean
add_phone_field (Sim *sim, const SimNumber *number, JsonBuilder *b, const char *field)
{
  const char *value = NULL;

  if (g_strcmp0 (field, "id") == 0)
    value = number->pnid;
  else if (g_strcmp0 (field, "display_phone_number") == 0)
    value = number->display_number;
  else if (g_strcmp0 (field, "verified_name") == 0)
    value = sim->verified_name;
  else if (g_strcmp0 (field, "quality_rating") == 0)
    value = "GREEN";
  else if (g_strcmp0 (field, "code_verification_status") == 0)
    value = "VERIFIED";
  else if (g_strcmp0 (field, "name_status") == 0)
    value = "APPROVED";
  else if (g_strcmp0 (field, "whatsapp_business_manager_messaging_limit") == 0
           || g_strcmp0 (field, "messaging_limit_tier") == 0)
    value = "TIER_2K";
  else if (g_strcmp0 (field, "platform_type") == 0)
    value = "CLOUD_API";
  else if (g_strcmp0 (field, "status") == 0)
    value = "CONNECTED";
  else if (g_strcmp0 (field, "account_mode") == 0)
    value = "LIVE";
  else if (g_strcmp0 (field, "throughput") == 0)
    {
      json_builder_set_member_name (b, field);
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "level");
      json_builder_add_string_value (b, "STANDARD");
      json_builder_end_object (b);
      return TRUE;
    }
  else if (g_strcmp0 (field, "is_official_business_account") == 0)
    {
      json_builder_set_member_name (b, field);
      json_builder_add_boolean_value (b, FALSE);
      return TRUE;
    }
  else
    return FALSE;
  json_builder_set_member_name (b, field);
  json_builder_add_string_value (b, value);
  return TRUE;
}

static void
handle_phone_get (GraphRequest *req)
{
  static const char *const default_fields[]
      = { "verified_name", "display_phone_number", "quality_rating", NULL };
  Sim *sim = req->sim;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (GHashTable) form = req->query ? soup_form_decode (req->query) : NULL;
  const char *fields = form ? g_hash_table_lookup (form, "fields") : NULL;
  g_auto (GStrv) list = NULL;
  g_autoptr (GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);

  list = fields ? g_strsplit (fields, ",", -1) : g_strdupv ((char **)default_fields);
  json_builder_begin_object (b);
  for (guint i = 0; list[i] != NULL; i++)
    {
      char *field = g_strstrip (list[i]);

      if (*field == '\0' || g_strcmp0 (field, "id") == 0 || !g_hash_table_add (seen, field))
        continue;
      if (!add_phone_field (sim, req->number, b, field))
        {
          g_autofree char *message
              = g_strdup_printf ("(#100) Tried accessing nonexisting field (%s) on node type "
                                 "(WhatsAppBusinessPhoneNumber)",
                                 field);

          reply_simple_error (&req->reply, 400, 100, 0, NULL, message, NULL);
          return;
        }
    }
  add_phone_field (sim, req->number, b, "id");
  json_builder_end_object (b);
  reply_json (&req->reply, b);
}

/* ---- POST /{pnid}/messages ---- */

static void
log_read (GraphRequest *req, JsonNode *root, const SimSendInfo *info)
{
  Sim *sim = req->sim;
  JsonBuilder *b = sim_log_entry_begin (&sim->reads_seq);

  json_builder_set_member_name (b, "message_id");
  json_builder_add_string_value (b, info->message_id);
  json_builder_set_member_name (b, "typing_indicator");
  json_builder_add_boolean_value (b, info->typing);
  json_builder_set_member_name (b, "pnid");
  json_builder_add_string_value (b, req->number->pnid);
  json_builder_set_member_name (b, "request");
  json_builder_add_value (b, json_node_copy (root));
  json_builder_set_member_name (b, "authorization");
  json_builder_add_string_value (b, req->authorization);
  json_builder_set_member_name (b, "time");
  json_builder_add_int_value (b, sim_clock_now (&sim->clock));
  sim_log_entry_end (sim->reads_log, b);
}

static void
handle_mark_read (GraphRequest *req, JsonNode *root, const SimSendInfo *info)
{
  Sim *sim = req->sim;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  gint64 ts;

  if (!sim_inbound_known (sim, info->message_id, &ts))
    {
      reply_simple_error (
          &req->reply, 400, 131009, 0, NULL, "(#131009) Parameter value is not valid",
          "Invalid message_id: it is not an incoming message of this phone number.");
      return;
    }
  if (sim_clock_now (&sim->clock) - ts > 30 * 24 * 3600)
    {
      reply_simple_error (&req->reply, 400, 131009, 0, NULL,
                          "(#131009) Parameter value is not valid",
                          "The message is older than 30 days and can no longer be marked as read.");
      return;
    }
  log_read (req, root, info);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "success");
  json_builder_add_boolean_value (b, TRUE);
  json_builder_end_object (b);
  reply_json (&req->reply, b);
}

/* Category of a template for pricing, or NULL when it does not exist. */
static const char *
template_category (Sim *sim, const SimSendInfo *info)
{
  g_autofree char *key = g_strconcat (info->template_name, ":", info->template_lang, NULL);
  const char *category;

  if (g_hash_table_contains (sim->knobs.templates_missing, info->template_name))
    return NULL;
  category = g_hash_table_lookup (sim->knobs.templates, key);
  if (category == NULL)
    category = g_hash_table_lookup (sim->knobs.templates, info->template_name);
  if (category == NULL && g_hash_table_size (sim->knobs.templates) > 0)
    return NULL;
  return category ? category : "utility";
}

static void add_template_record (JsonBuilder *b, const SimSendInfo *info, const char *category,
                                 const SimTemplateRender *render);

static void
log_sent (GraphRequest *req, JsonNode *root, const SimSendInfo *info, SimSent *sent,
          gboolean window_open, const char *template_category, const SimTemplateRender *render)
{
  Sim *sim = req->sim;
  JsonBuilder *b = sim_log_entry_begin (&sim->sent_seq);

  json_builder_set_member_name (b, "wamid");
  json_builder_add_string_value (b, sent->wamid);
  json_builder_set_member_name (b, "pnid");
  json_builder_add_string_value (b, req->number->pnid);
  json_builder_set_member_name (b, "to");
  json_builder_add_string_value (b, info->input);
  json_builder_set_member_name (b, "wa_id");
  if (sent->recipient_id)
    json_builder_add_string_value (b, sent->recipient_id);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "user_id");
  if (sent->user_id)
    json_builder_add_string_value (b, sent->user_id);
  else
    json_builder_add_null_value (b);
  json_builder_set_member_name (b, "type");
  json_builder_add_string_value (b, info->type);
  json_builder_set_member_name (b, "request");
  json_builder_add_value (b, json_node_copy (root));
  json_builder_set_member_name (b, "authorization");
  json_builder_add_string_value (b, req->authorization);
  json_builder_set_member_name (b, "window_open");
  json_builder_add_boolean_value (b, window_open);
  json_builder_set_member_name (b, "endpoint");
  json_builder_add_string_value (b, req->marketing ? "marketing_messages" : "messages");
  if (template_category != NULL)
    add_template_record (b, info, template_category, render);
  json_builder_set_member_name (b, "time");
  json_builder_add_int_value (b, sim_clock_now (&sim->clock));
  sim_log_entry_end (sim->sent_log, b);
}

/* The accepted send's "template" member in /_sim/sent. */
static void
add_template_record (JsonBuilder *b, const SimSendInfo *info, const char *category,
                     const SimTemplateRender *render)
{
  const char *parts[][2] = { { "header", render->header },
                             { "body", render->body },
                             { "footer", render->footer },
                             { "text", render->text } };

  json_builder_set_member_name (b, "template");
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "name");
  json_builder_add_string_value (b, info->template_name);
  json_builder_set_member_name (b, "language");
  json_builder_add_string_value (b, info->template_lang);
  json_builder_set_member_name (b, "category");
  json_builder_add_string_value (b, category);
  for (gsize i = 0; i < G_N_ELEMENTS (parts); i++)
    {
      json_builder_set_member_name (b, parts[i][0]);
      if (parts[i][1])
        json_builder_add_string_value (b, parts[i][1]);
      else
        json_builder_add_null_value (b);
    }
  json_builder_end_object (b);
}

static void handle_send_checked (GraphRequest *req, JsonNode *root, SimSendInfo *info,
                                 const char *category, const SimTemplateRender *render);

static void
handle_send (GraphRequest *req, JsonNode *root, SimSendInfo *info)
{
  Sim *sim = req->sim;
  SimTemplateRender render = { 0 };
  SimError err = { 0 };
  const char *category = "service";

  if (g_strcmp0 (info->type, "template") == 0)
    {
      if (!sim_templates_empty ())
        {
          if (!sim_templates_check_send (sim_json_object (json_node_get_object (root), "template"),
                                         req->version, sim_clock_now_us (&sim->clock) / 1000,
                                         &render, &err))
            {
              reply_error (&req->reply, &err);
              sim_error_clear (&err);
              return;
            }
          category = render.category;
        }
      else if ((category = template_category (sim, info)) == NULL)
        {
          g_autofree char *details = g_strdup_printf ("template name (%s) does not exist in %s",
                                                      info->template_name, info->template_lang);

          reply_simple_error (&req->reply, 404, 132001, 0, NULL,
                              "(#132001) Template name does not exist in the translation", details);
          return;
        }
    }
  if (req->marketing && g_ascii_strcasecmp (category, "marketing") != 0)
    reply_simple_error (&req->reply, 400, 131009, 0, NULL, "(#131009) Parameter value is not valid",
                        "Only marketing templates can be sent through the Marketing Messages API.");
  else if (!req->marketing && sim->knobs.marketing_disabled
           && g_ascii_strcasecmp (category, "marketing") == 0)
    reply_simple_error (&req->reply, 400, 131063, 0, NULL,
                        "(#131063) Marketing template messages are not available on Cloud API",
                        "Marketing template messages are disabled on Cloud API for this "
                        "WhatsApp Business Account; send them through the Marketing Messages "
                        "API.");
  else
    handle_send_checked (req, root, info, category, &render);
  sim_template_render_clear (&render);
}

static void
handle_send_checked (GraphRequest *req, JsonNode *root, SimSendInfo *info, const char *category,
                     const SimTemplateRender *render)
{
  Sim *sim = req->sim;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autofree char *wa_id = NULL;
  const char *customer;
  gboolean is_template = g_strcmp0 (info->type, "template") == 0;
  gboolean window_open;
  gint64 code = 0, subcode = 0;
  SimFailure failure = SIM_FAIL_NONE;
  SimSent *sent;

  if (info->digits != NULL)
    {
      g_autofree char *own = sim_digits_only (req->number->display_number);

      if (g_strcmp0 (info->digits, own) == 0)
        {
          reply_simple_error (&req->reply, 400, 131021, 0, NULL,
                              "(#131021) Recipient cannot be sender",
                              "Sender and recipient phone number is the same.");
          return;
        }
    }
  if (info->is_group && !g_hash_table_contains (sim->knobs.groups, info->input))
    {
      reply_simple_error (&req->reply, 400, 131009, 0, NULL,
                          "(#131009) Parameter value is not valid",
                          "The group does not exist or this phone number is not in it.");
      return;
    }
  if (info->is_group)
    wa_id = g_strdup (info->input);
  else if (info->digits)
    wa_id = sim_wa_id_for (sim, info->digits);
  customer = wa_id ? wa_id : info->user_id;

  if (sim->knobs.maintenance)
    {
      reply_simple_error (&req->reply, 400, 131057, 0, NULL,
                          "(#131057) Account in maintenance mode",
                          "Business account is in maintenance mode");
      return;
    }
  if (!sim_rate_check (sim, req->number, customer, &code, &subcode))
    {
      if (code == 130429)
        reply_simple_error (&req->reply, 400, code, subcode, NULL, "(#130429) Rate limit hit",
                            "Cloud API message throughput has been reached.");
      else
        reply_simple_error (
            &req->reply, 400, code, subcode, NULL,
            "(#131056) (Business Account, Consumer Account) pair rate limit hit",
            "Message failed to send because there were too many messages sent "
            "from this phone number to the same phone number in a short period of time.");
      return;
    }

  window_open = sim_window_open (sim, req->number, customer);
  sent = g_new0 (SimSent, 1);
  sent->wamid = sim_new_wamid (customer, FALSE);
  sent->pnid = g_strdup (req->number->pnid);
  sent->recipient_id = g_strdup (wa_id);
  sent->user_id = wa_id ? NULL : g_strdup (info->user_id);
  sent->type = g_strdup (info->type);
  sent->biz_opaque = g_strdup (info->biz_opaque);
  sent->category = g_ascii_strdown (category, -1);
  if (!is_template)
    sent->pricing_type = g_strdup ("free_customer_service");
  else if (window_open && g_strcmp0 (sent->category, "utility") == 0)
    sent->pricing_type = g_strdup ("free_customer_service");
  else
    sent->pricing_type = g_strdup ("regular");
  g_hash_table_insert (sim->sent, sent->wamid, sent);
  log_sent (req, root, info, sent, window_open, is_template ? category : NULL, render);
  /* templates and group messages are allowed outside the window; marketing
   * templates fail for customers who stopped them or reached their limit */
  if (!(window_open || is_template || info->is_group))
    failure = SIM_FAIL_REENGAGEMENT;
  else if (is_template && g_ascii_strcasecmp (category, "marketing") == 0 && wa_id != NULL
           && g_hash_table_contains (sim->knobs.marketing_opted_out, wa_id))
    failure = SIM_FAIL_OPTED_OUT;
  else if (is_template && g_ascii_strcasecmp (category, "marketing") == 0 && wa_id != NULL
           && g_hash_table_contains (sim->knobs.marketing_limited, wa_id))
    failure = SIM_FAIL_MARKETING_LIMIT;
  else if (is_template && !window_open && !info->is_group && !sim_portfolio_reach (sim, customer))
    failure = SIM_FAIL_SPAM_RATE;
  sim_schedule_outcome (sim, sent, failure);

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "messaging_product");
  json_builder_add_string_value (b, "whatsapp");
  json_builder_set_member_name (b, "contacts");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "input");
  json_builder_add_string_value (b, info->input);
  if (wa_id)
    {
      json_builder_set_member_name (b, "wa_id");
      json_builder_add_string_value (b, wa_id);
    }
  else
    {
      json_builder_set_member_name (b, "user_id");
      json_builder_add_string_value (b, info->user_id);
    }
  json_builder_end_object (b);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "messages");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, sent->wamid);
  if (is_template)
    {
      json_builder_set_member_name (b, "message_status");
      json_builder_add_string_value (b, "accepted");
    }
  if (info->is_group)
    {
      json_builder_set_member_name (b, "group_id");
      json_builder_add_string_value (b, info->input);
    }
  json_builder_end_object (b);
  json_builder_end_array (b);
  json_builder_end_object (b);
  reply_json (&req->reply, b);
}

static void
handle_messages (GraphRequest *req)
{
  SoupMessageBody *body = soup_server_message_get_request_body (req->msg);
  g_autoptr (GBytes) bytes = soup_message_body_flatten (body);
  g_autoptr (GError) error = NULL;
  g_autoptr (JsonNode) root = NULL;
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);
  SimSendInfo info = { 0 };
  SimError err = { 0 };

  root = sim_json_parse (data, len, &error);
  if (root == NULL)
    {
      g_autofree char *details
          = g_strdup_printf ("The request body is not valid JSON: %s", error->message);

      reply_simple_error (&req->reply, 400, 100, 0, NULL, "(#100) Invalid parameter", details);
      return;
    }
  if (!sim_validate_send (root, &info, &err))
    {
      reply_error (&req->reply, &err);
      sim_error_clear (&err);
      sim_send_info_clear (&info);
      return;
    }
  if (!info.is_read && info.type != NULL
      && !sim_upload_check_send (info.type,
                                 sim_json_object (json_node_get_object (root), info.type), &err))
    {
      reply_error (&req->reply, &err);
      sim_error_clear (&err);
      sim_send_info_clear (&info);
      return;
    }
  if (req->marketing && (info.is_read || g_strcmp0 (info.type, "template") != 0))
    reply_simple_error (&req->reply, 400, 100, 0, NULL, "(#100) Invalid parameter",
                        "The Marketing Messages API sends only messages of type template.");
  else if (info.is_read)
    handle_mark_read (req, root, &info);
  else
    handle_send (req, root, &info);
  sim_send_info_clear (&info);
}

static void
handle_upload (GraphRequest *req)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autofree char *id = NULL;
  SimError err = { 0 };

  id = sim_upload_media (req->sim, req->number, req->msg, &err);
  if (id == NULL)
    {
      reply_error (&req->reply, &err);
      sim_error_clear (&err);
      return;
    }
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, id);
  json_builder_end_object (b);
  reply_json (&req->reply, b);
}

/* ---- GET /{waba}/message_templates ---- */

static void permission_error (Reply *r, const char *permission);
static void unsupported_request (Reply *r, const char *method, const char *id);

static void
handle_templates (GraphRequest *req, gboolean noperm)
{
  g_autoptr (JsonBuilder) answer = NULL;
  SimError err = { 0 };
  gint64 percent;

  if (g_strcmp0 (req->method, "GET") != 0)
    {
      unsupported_request (&req->reply, req->method, req->sim->waba_id);
      return;
    }
  req->management = TRUE;
  if (noperm)
    {
      permission_error (&req->reply, "whatsapp_business_management");
      return;
    }
  if (management_regain_minutes (req->sim, TRUE, &percent) > 0)
    {
      reply_simple_error (&req->reply, 400, 80008, 2446079, NULL,
                          "(#80008) There have been too many calls to this WhatsApp Business "
                          "account. Wait a bit and try again. For more info, please refer to "
                          "https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
                          NULL);
      return;
    }
  if (!sim_templates_list (req->sim, soup_server_message_get_uri (req->msg), req->version, &answer,
                           &err))
    {
      reply_error (&req->reply, &err);
      sim_error_clear (&err);
      return;
    }
  reply_json (&req->reply, answer);
}

/* ---- routing ---- */

static void
unsupported_request (Reply *r, const char *method, const char *id)
{
  g_autofree char *lower = g_ascii_strdown (method, -1);
  g_autofree char *message = g_strdup_printf (
      "Unsupported %s request. Object with ID '%s' does not exist, cannot be loaded due to "
      "missing permissions, or does not support this operation.",
      lower, id);

  reply_simple_error (r, 400, 100, 33, "GraphMethodException", message, NULL);
}

static void
permission_error (Reply *r, const char *permission)
{
  g_autofree char *details
      = g_strdup_printf ("The access token does not have the %s permission.", permission);

  reply_simple_error (r, 403, 200, 0, NULL, "(#200) Permissions error", details);
}

/* Answers a request as the Graph API would, into req->reply. */
static void
graph_route (GraphRequest *req)
{
  Sim *sim = req->sim;
  g_auto (GStrv) parts = g_strsplit (req->path + (req->path[0] == '/'), "/", -1);
  guint n = g_strv_length (parts);
  const char *token = NULL;
  gboolean noperm;

  if (n > 0 && *parts[n - 1] == '\0')
    {
      g_free (parts[--n]);
      parts[n] = NULL;
    }
  if (n == 0 || !version_ok (parts[0]))
    {
      g_autofree char *message = g_strdup_printf ("(#2500) Unknown path components: %s", req->path);

      reply_simple_error (&req->reply, 400, 2500, 0, NULL, message, NULL);
      return;
    }
  req->version = g_strdup (parts[0]);

  if (req->authorization != NULL)
    {
      if (g_ascii_strncasecmp (req->authorization, "Bearer ", 7) == 0)
        token = req->authorization + 7;
      else if (g_ascii_strncasecmp (req->authorization, "OAuth ", 6) == 0)
        token = req->authorization + 6;
    }
  if (token != NULL && g_hash_table_contains (sim->knobs.expired_tokens, token))
    {
      reply_simple_error (&req->reply, 401, 190, 463, NULL,
                          "Error validating access token: Session has expired", NULL);
      return;
    }
  if (token == NULL
      || (g_strcmp0 (token, sim->token) != 0 && g_strcmp0 (token, sim->token_noperm) != 0))
    {
      reply_simple_error (&req->reply, 401, 190, 0, NULL,
                          "Invalid OAuth access token - Cannot parse access token", NULL);
      return;
    }
  noperm = g_strcmp0 (token, sim->token_noperm) == 0 && g_strcmp0 (token, sim->token) != 0;

  if (n < 2 || n > 3)
    {
      GString *rest = g_string_new (NULL);
      g_autofree char *message = NULL;

      for (guint i = 1; i < n; i++)
        g_string_append_printf (rest, "/%s", parts[i]);
      message = g_strdup_printf ("(#2500) Unknown path components: %s", n < 2 ? "/" : rest->str);
      g_string_free (rest, TRUE);
      reply_simple_error (&req->reply, 400, 2500, 0, NULL, message, NULL);
      return;
    }
  if (n == 3 && g_strcmp0 (parts[1], sim->waba_id) == 0
      && g_strcmp0 (parts[2], "message_templates") == 0)
    {
      handle_templates (req, noperm);
      return;
    }
  if (n == 3 && g_strcmp0 (parts[2], "messages") != 0 && g_strcmp0 (parts[2], "media") != 0
      && g_strcmp0 (parts[2], "message_templates") != 0
      && g_strcmp0 (parts[2], "marketing_messages") != 0)
    {
      g_autofree char *message = g_strdup_printf ("(#2500) Unknown path components: /%s", parts[2]);

      reply_simple_error (&req->reply, 400, 2500, 0, NULL, message, NULL);
      return;
    }
  if (n == 2 && g_strcmp0 (req->method, "GET") == 0 && sim_number (sim, parts[1]) == NULL)
    {
      /* a media lookup (sim-media.c); unknown ids fall through to Meta's answer */
      g_autoptr (JsonBuilder) answer = NULL;
      SimError err = { 0 };

      switch (sim_media_lookup (sim, parts[1], req->msg, &answer))
        {
        case SIM_MEDIA_FOUND:
          reply_json (&req->reply, answer);
          return;
        case SIM_MEDIA_LOOKUP_FAULT:
          reply_simple_error (&req->reply, 500, 2, 0, NULL,
                              "An unexpected error has occurred. Please retry your request later.",
                              NULL);
          return;
        case SIM_MEDIA_UNKNOWN:
          break;
        }
      /* a template by id (sim-templates.c) */
      switch (sim_templates_get (soup_server_message_get_uri (req->msg), parts[1], &answer, &err))
        {
        case SIM_TEMPLATE_FOUND:
          req->management = TRUE;
          if (noperm)
            permission_error (&req->reply, "whatsapp_business_management");
          else
            reply_json (&req->reply, answer);
          return;
        case SIM_TEMPLATE_ERROR:
          req->management = TRUE;
          reply_error (&req->reply, &err);
          sim_error_clear (&err);
          return;
        case SIM_TEMPLATE_UNKNOWN:
          break;
        }
    }
  req->number = sim_number (sim, parts[1]);
  if (req->number == NULL)
    {
      unsupported_request (&req->reply, req->method, parts[1]);
      return;
    }
  if (n == 2 && g_strcmp0 (req->method, "GET") == 0)
    {
      req->management = TRUE;
      if (noperm)
        permission_error (&req->reply, "whatsapp_business_management");
      else
        handle_phone_get (req);
      return;
    }
  if (n == 3 && g_strcmp0 (parts[2], "media") == 0 && g_strcmp0 (req->method, "POST") == 0)
    {
      if (noperm)
        permission_error (&req->reply, "whatsapp_business_messaging");
      else
        handle_upload (req);
      return;
    }
  if (n == 3 && g_strcmp0 (req->method, "POST") == 0)
    {
      req->marketing = g_strcmp0 (parts[2], "marketing_messages") == 0;
      if (noperm)
        permission_error (&req->reply, "whatsapp_business_messaging");
      else
        handle_messages (req);
      return;
    }
  unsupported_request (&req->reply, req->method, parts[1]);
}

/* ---- faults ---- */

/* Meta's wording for codes a fault may name (docs/CLOUD-API.md, Errors: codes). */
typedef struct
{
  gint64 code;
  const char *message;
  gint64 subcode;
  const char *details;
  gboolean transient;
} KnownError;

static const KnownError known_errors[] = {
  { 1, "An unknown error occurred", 0, NULL, TRUE },
  { 2, "An unexpected error has occurred. Please retry your request later.", 0, NULL, TRUE },
  { 4, "(#4) Application request limit reached", 0, NULL, TRUE },
  { 10, "(#10) Application does not have permission for this action", 0, NULL, FALSE },
  { 100, "(#100) Invalid parameter", 0, NULL, FALSE },
  { 190, "Invalid OAuth access token - Cannot parse access token", 0, NULL, FALSE },
  { 200, "(#200) Permissions error", 0, NULL, FALSE },
  { 368, "(#368) Temporarily blocked for policies violations", 0, NULL, FALSE },
  { 80007, "(#80007) Rate limit issues", 0, NULL, FALSE },
  { 80008,
    "(#80008) There have been too many calls to this WhatsApp Business account. Wait a bit and "
    "try again. For more info, please refer to "
    "https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
    2446079, NULL, TRUE },
  { 130429, "(#130429) Rate limit hit", 2494055, "Cloud API message throughput has been reached.",
    FALSE },
  { 130472, "(#130472) User's number is part of an experiment", 0, NULL, FALSE },
  { 131000, "(#131000) Something went wrong", 0, NULL, FALSE },
  { 131005, "(#131005) Access denied", 0, NULL, FALSE },
  { 131008, "(#131008) Required parameter is missing", 0, NULL, FALSE },
  { 131009, "(#131009) Parameter value is not valid", 0, NULL, FALSE },
  { 131016, "(#131016) Service unavailable", 0, NULL, TRUE },
  { 131021, "(#131021) Recipient cannot be sender", 0, NULL, FALSE },
  { 131026, "(#131026) Message undeliverable", 0, NULL, FALSE },
  { 131031, "(#131031) Business Account locked", 0, NULL, FALSE },
  { 131042, "(#131042) Business eligibility payment issue", 0, NULL, FALSE },
  { 131045, "(#131045) Incorrect certificate", 0, NULL, FALSE },
  { 131047, "(#131047) Re-engagement message", 0,
    "Message failed to send because more than 24 hours have passed since the customer last "
    "replied to this number.",
    FALSE },
  { 131048, "(#131048) Spam rate limit hit", 0, NULL, FALSE },
  { 131049, "(#131049) This message was not delivered to maintain healthy ecosystem engagement.", 0,
    NULL, FALSE },
  { 131050,
    "(#131050) Unable to deliver the message. This recipient has chosen to stop receiving "
    "marketing messages on WhatsApp from your business.",
    0, NULL, FALSE },
  { 131051, "(#131051) Unsupported message type", 0, NULL, FALSE },
  { 131052, "(#131052) Media download error", 0, NULL, FALSE },
  { 131053, "(#131053) Media upload error", 0, NULL, FALSE },
  { 131056, "(#131056) (Business Account, Consumer Account) pair rate limit hit", 0, NULL, FALSE },
  { 131057, "(#131057) Account in maintenance mode", 0, NULL, FALSE },
  { 131063, "(#131063) Marketing template messages are not available on Cloud API", 0, NULL,
    FALSE },
  { 131064, "(#131064) Messaging limit reached", 0, NULL, FALSE },
  { 132000, "(#132000) Number of parameters does not match the expected number of params", 0, NULL,
    FALSE },
  { 132001, "(#132001) Template name does not exist in the translation", 0, NULL, FALSE },
  { 132005, "(#132005) Translated text too long", 0, NULL, FALSE },
  { 132007, "(#132007) Template format character policy violated", 0, NULL, FALSE },
  { 132008, "(#132008) Template Parameter Format Mismatch", 0, NULL, FALSE },
  { 132012, "(#132012) Parameter format does not match format in the created template", 0, NULL,
    FALSE },
  { 132015, "(#132015) Template is Paused", 0, NULL, FALSE },
  { 132016, "(#132016) Template is Disabled", 0, NULL, FALSE },
  { 132018, "(#132018) There was an issue with the parameters in your template.", 0, NULL, FALSE },
  { 133010, "(#133010) Phone number Not Registered", 0, NULL, FALSE },
};

static void
reply_fault_error (Reply *r, const SimFault *f)
{
  const KnownError *known = NULL;
  g_autofree char *generic = NULL;
  SimError e = { 0 };

  for (gsize i = 0; i < G_N_ELEMENTS (known_errors); i++)
    if (known_errors[i].code == f->code)
      known = &known_errors[i];
  if (f->message == NULL && known == NULL)
    generic = g_strdup_printf ("(#%" G_GINT64_FORMAT ") Simulated fault", f->code);
  sim_error_set (&e, f->status, f->code,
                 f->message ? f->message
                 : known    ? known->message
                            : generic,
                 "%s",
                 f->details                ? f->details
                 : known && known->details ? known->details
                                           : "Simulated fault (injected by /_sim/fault).");
  e.subcode = f->subcode >= 0 ? f->subcode : known ? known->subcode : 0;
  e.is_transient = known != NULL && known->transient;
  reply_error (r, &e);
  sim_error_clear (&e);
}

/* Drops rules whose duration_ms has passed. */
static void
expire_faults (Sim *sim)
{
  gint64 now = g_get_monotonic_time ();

  for (guint i = sim->faults->len; i > 0; i--)
    {
      SimFault *f = g_ptr_array_index (sim->faults, i - 1);

      if (f->until_us != 0 && now >= f->until_us)
        g_ptr_array_remove_index (sim->faults, i - 1);
    }
}

/* The first rule that matches the request and, when it has a probability,
 * whose own seeded generator says yes: each rule draws once for every
 * request that reaches it, so a run with the same requests in the same
 * order draws the same faults. */
static SimFault *
take_fault (Sim *sim, const char *method, const char *path)
{
  expire_faults (sim);
  for (guint i = 0; i < sim->faults->len; i++)
    {
      SimFault *f = g_ptr_array_index (sim->faults, i);
      SimFault *copy;

      if (f->path && strstr (path, f->path) == NULL)
        continue;
      if (f->method && g_ascii_strcasecmp (f->method, method) != 0)
        continue;
      if (f->rand != NULL && g_rand_double (f->rand) >= f->probability)
        continue;
      copy = g_memdup2 (f, sizeof *f);
      copy->path = g_strdup (f->path);
      copy->method = g_strdup (f->method);
      copy->message = g_strdup (f->message);
      copy->details = g_strdup (f->details);
      copy->body = g_strdup (f->body);
      copy->content_type = g_strdup (f->content_type);
      copy->rand = NULL;
      if (f->count > 0 && --f->count == 0)
        g_ptr_array_remove_index (sim->faults, i);
      return copy;
    }
  return NULL;
}

static gboolean
fault_answers (const SimFault *f)
{
  return f != NULL && (f->reset || f->status != 0);
}

static void
unpause_done (GraphRequest *req)
{
  req->timer = 0;
  g_ptr_array_remove (req->sim->paused, req);
  graph_request_free (req);
}

static gboolean
finish_reset (gpointer data)
{
  GraphRequest *req = data;
  GIOStream *stream;

  log_request (req, 0, 0, TRUE);
  stream = soup_server_message_steal_connection (req->msg);
  if (stream != NULL)
    {
      g_io_stream_close (stream, NULL, NULL);
      g_object_unref (stream);
    }
  unpause_done (req);
  return G_SOURCE_REMOVE;
}

/* Runs the request unless the fault replaces it (once: a request run on
 * arrival is not run again when its delayed answer is written). */
static void
graph_process (GraphRequest *req)
{
  SimFault *f = req->fault;

  if (req->processed)
    return;
  req->processed = TRUE;
  if (!fault_answers (f) || f->process)
    graph_route (req);
}

/* Runs the request (unless the fault replaces it) and answers. Returns FALSE
 * when the connection is being reset (the message stays paused). */
static gboolean
graph_run (GraphRequest *req)
{
  SimFault *f = req->fault;

  graph_process (req);
  if (!fault_answers (f))
    {
      write_reply (req, TRUE);
      return TRUE;
    }
  if (f->reset)
    return FALSE;
  if (f->code != 0)
    reply_fault_error (&req->reply, f);
  else
    {
      gint64 code = req->reply.error_code;

      reply_clear (&req->reply);
      req->reply.status = f->status;
      req->reply.body = g_strdup (f->body ? f->body : "");
      req->reply.content_type = f->content_type ? f->content_type : "text/plain";
      req->reply.error_code = code;
    }
  write_reply (req, f->code != 0);
  return TRUE;
}

static gboolean
delayed_run (gpointer data)
{
  GraphRequest *req = data;

  if (!graph_run (req))
    return finish_reset (req);
  soup_server_message_unpause (req->msg);
  unpause_done (req);
  return G_SOURCE_REMOVE;
}

/* Drops requests still held by delay or reset faults (at exit). */
void
sim_graph_shutdown (Sim *sim)
{
  while (sim->paused->len > 0)
    {
      GraphRequest *req = g_ptr_array_index (sim->paused, sim->paused->len - 1);

      g_source_remove (req->timer);
      g_ptr_array_remove_index (sim->paused, sim->paused->len - 1);
      graph_request_free (req);
    }
}

void
sim_graph_handle (Sim *sim, SoupServerMessage *msg, const char *path)
{
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  GUri *uri = soup_server_message_get_uri (msg);
  GraphRequest *req = g_new0 (GraphRequest, 1);

  req->sim = sim;
  req->msg = g_object_ref (msg);
  req->method = g_strdup (soup_server_message_get_method (msg));
  req->path = g_strdup (path);
  req->query = g_strdup (g_uri_get_query (uri));
  req->authorization = g_strdup (soup_message_headers_get_one (headers, "Authorization"));
  req->user_agent = g_strdup (soup_message_headers_get_one (headers, "User-Agent"));
  req->content_type = g_strdup (soup_message_headers_get_one (headers, "Content-Type"));
  req->fault = take_fault (sim, req->method, path);

  if (req->fault != NULL && req->fault->delay_ms > 0)
    {
      /* "the request was taken at once, the answer is late (or never
       * comes, when the client gives up first)" */
      if (req->fault->process_before_delay)
        graph_process (req);
      soup_server_message_pause (msg);
      g_ptr_array_add (sim->paused, req);
      req->timer = g_timeout_add (req->fault->delay_ms, delayed_run, req);
      return;
    }
  if (req->fault == NULL && sim->knobs.latency_ms > 0 && g_strcmp0 (req->method, "POST") == 0
      && (g_str_has_suffix (path, "/messages") || g_str_has_suffix (path, "/marketing_messages")))
    {
      /* configured latency: taken (and counted by the limits) on arrival,
       * answered later; the main loop serves other requests meanwhile */
      graph_process (req);
      soup_server_message_pause (msg);
      g_ptr_array_add (sim->paused, req);
      req->timer = g_timeout_add (sim->knobs.latency_ms, delayed_run, req);
      return;
    }
  if (!graph_run (req))
    {
      /* steal the connection once the handler has returned */
      soup_server_message_pause (msg);
      g_ptr_array_add (sim->paused, req);
      req->timer = g_idle_add (finish_reset, req);
      return;
    }
  graph_request_free (req);
}
