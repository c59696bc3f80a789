/* wa-graph.c: Graph API calls over WaHttp, replies and errors parsed. */
#include "wa-graph.h"

#include <string.h>

#include "wa-i18n.h"
#include "wa-json.h"
#include "wa-phone.h"

struct _WaGraph {
  WaHttp *http;
  char *base_url; /* no trailing slash */
  char *token;
  GHashTable *calls; /* WaGraphCall* set */
};

struct _WaGraphCall {
  WaGraph *graph;
  WaHttpCall *http_call;
  WaGraphCallback callback;
  gpointer data;
};

gboolean
wa_graph_check_base_url(const char *url, GError **error)
{
  g_autoptr(GUri) uri = NULL;
  const char *scheme;

  if (url == NULL || *url == '\0') {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, _("The API base URL is empty."));
    return FALSE;
  }
  uri = g_uri_parse(url, G_URI_FLAGS_ENCODED, NULL);
  if (uri == NULL || g_uri_get_host(uri) == NULL || *g_uri_get_host(uri) == '\0') {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, _("The API base URL “%s” is not a valid URL."), url);
    return FALSE;
  }
  scheme = g_uri_get_scheme(uri);
  if (g_ascii_strcasecmp(scheme, "https") != 0 &&
      !(g_ascii_strcasecmp(scheme, "http") == 0 && wa_http_host_is_loopback(g_uri_get_host(uri)))) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                _("The API base URL must use https (plain http is allowed only for this computer): %s"), url);
    return FALSE;
  }
  if (g_uri_get_userinfo(uri) != NULL || g_uri_get_query(uri) != NULL || g_uri_get_fragment(uri) != NULL) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        _("The API base URL must not contain a user name, a query or a fragment."));
    return FALSE;
  }
  return TRUE;
}

WaGraph *
wa_graph_new(WaHttp *http, const char *base_url, const char *token, GError **error)
{
  WaGraph *graph;
  gsize len;

  if (!wa_graph_check_base_url(base_url, error))
    return NULL;
  graph = g_new0(WaGraph, 1);
  graph->http = http;
  graph->base_url = g_strdup(base_url);
  len = strlen(graph->base_url);
  while (len > 0 && graph->base_url[len - 1] == '/')
    graph->base_url[--len] = '\0';
  graph->token = g_strdup(token);
  graph->calls = g_hash_table_new(NULL, NULL);
  return graph;
}

static void
call_free(WaGraphCall *call)
{
  g_free(call);
}

void
wa_graph_free(WaGraph *graph)
{
  GHashTableIter iter;
  gpointer key;

  if (graph == NULL)
    return;
  g_hash_table_iter_init(&iter, graph->calls);
  while (g_hash_table_iter_next(&iter, &key, NULL)) {
    WaGraphCall *call = key;
    wa_http_cancel(call->http_call);
    call_free(call);
  }
  g_hash_table_destroy(graph->calls);
  g_free(graph->base_url);
  if (graph->token != NULL) {
    memset(graph->token, 0, strlen(graph->token));
    g_free(graph->token);
  }
  g_free(graph);
}

const char *
wa_graph_get_base_url(WaGraph *graph)
{
  return graph->base_url;
}

static void
http_done(WaHttpResponse *response, gpointer data)
{
  WaGraphCall *call = data;
  WaGraph *graph = call->graph;
  WaGraphReply reply = {0};
  g_autoptr(JsonNode) root = NULL;

  g_hash_table_remove(graph->calls, call);
  reply.response = response;
  if (!response->completed) {
    reply.error = wa_graph_error_new_network(response->error, response->reached);
  } else {
    gsize len = 0;
    const char *body = g_bytes_get_data(response->body, &len);

    reply.error = wa_graph_error_from_reply((int) response->status, body, len);
    if (reply.error == NULL) {
      root = wa_json_parse_object(body, len, NULL);
      reply.object = json_node_get_object(root);
    }
  }
  call->callback(&reply, call->data);
  wa_graph_error_free(reply.error);
  call_free(call);
}

/* Starts @request (its URL, token and callback set here). */
static WaGraphCall *
start_request(WaGraph *graph, WaHttpRequest *request, const char *path, const char *query, WaGraphCallback callback,
              gpointer data)
{
  WaGraphCall *call = g_new0(WaGraphCall, 1);
  g_autofree char *url = NULL;

  url = g_strconcat(graph->base_url, "/", path, query != NULL ? "?" : "", query != NULL ? query : "", NULL);
  request->url = url;
  request->bearer = graph->token;
  call->graph = graph;
  call->callback = callback;
  call->data = data;
  call->http_call = wa_http_start(graph->http, request, http_done, call);
  if (call->http_call == NULL) {
    g_free(call);
    return NULL;
  }
  g_hash_table_add(graph->calls, call);
  return call;
}

static WaGraphCall *
start(WaGraph *graph, const char *method, const char *path, const char *query, const char *body, gsize body_len,
      WaGraphCallback callback, gpointer data)
{
  WaHttpRequest request = {0};

  request.method = method;
  request.body = body;
  request.body_len = body_len;
  request.content_type = "application/json";
  return start_request(graph, &request, path, query, callback, data);
}

WaGraphCall *
wa_graph_get(WaGraph *graph, const char *path, const char *query, WaGraphCallback callback, gpointer data)
{
  return start(graph, "GET", path, query, NULL, 0, callback, data);
}

WaGraphCall *
wa_graph_post_json(WaGraph *graph, const char *path, JsonNode *body, WaGraphCallback callback, gpointer data)
{
  g_autofree char *text = wa_json_to_string(body);
  return start(graph, "POST", path, NULL, text, strlen(text), callback, data);
}

void
wa_graph_cancel(WaGraphCall *call)
{
  if (call == NULL)
    return;
  g_hash_table_remove(call->graph->calls, call);
  wa_http_cancel(call->http_call);
  call_free(call);
}

/* ---- phone number ---- */

WaPhoneInfo *
wa_phone_info_from_json(JsonObject *obj)
{
  WaPhoneInfo *info = g_new0(WaPhoneInfo, 1);

  info->id = wa_json_dup_id(obj, "id");
  info->display_phone_number = g_strdup(wa_json_get_string(obj, "display_phone_number"));
  info->verified_name = g_strdup(wa_json_get_string(obj, "verified_name"));
  info->quality_rating = g_strdup(wa_json_get_string(obj, "quality_rating"));
  info->name_status = g_strdup(wa_json_get_string(obj, "name_status"));
  info->throughput_level = g_strdup(wa_json_get_string(wa_json_get_object(obj, "throughput"), "level"));
  info->messaging_limit = g_strdup(wa_json_get_string(obj, "whatsapp_business_manager_messaging_limit"));
  if (info->messaging_limit == NULL)
    info->messaging_limit = g_strdup(wa_json_get_string(obj, "messaging_limit_tier"));
  info->platform_type = g_strdup(wa_json_get_string(obj, "platform_type"));
  info->status = g_strdup(wa_json_get_string(obj, "status"));
  info->account_mode = g_strdup(wa_json_get_string(obj, "account_mode"));
  return info;
}

void
wa_phone_info_free(WaPhoneInfo *info)
{
  if (info == NULL)
    return;
  g_free(info->id);
  g_free(info->display_phone_number);
  g_free(info->verified_name);
  g_free(info->quality_rating);
  g_free(info->name_status);
  g_free(info->throughput_level);
  g_free(info->messaging_limit);
  g_free(info->platform_type);
  g_free(info->status);
  g_free(info->account_mode);
  g_free(info);
}

WaGraphCall *
wa_graph_get_phone_number(WaGraph *graph, const char *phone_number_id, WaGraphCallback callback, gpointer data)
{
  return wa_graph_get(graph, phone_number_id, "fields=" WA_PHONE_INFO_FIELDS, callback, data);
}

/* ---- messages ---- */

/* messaging_product and the recipient: a group address (wa-phone.h) as
 * recipient_type "group", a BSUID as "recipient", digits as "to". */
static void
add_recipient(JsonBuilder *b, const char *customer)
{
  const char *group = wa_group_address_id(customer);

  json_builder_set_member_name(b, "messaging_product");
  json_builder_add_string_value(b, "whatsapp");
  json_builder_set_member_name(b, "recipient_type");
  json_builder_add_string_value(b, group != NULL ? "group" : "individual");
  if (group != NULL) {
    json_builder_set_member_name(b, "to");
    json_builder_add_string_value(b, group);
  } else if (wa_id_is_bsuid(customer)) {
    json_builder_set_member_name(b, "recipient");
    json_builder_add_string_value(b, customer);
  } else {
    g_autofree char *e164 = wa_phone_to_e164(customer);
    json_builder_set_member_name(b, "to");
    json_builder_add_string_value(b, e164);
  }
}

static void
add_callback_data(JsonBuilder *b, const char *callback_data)
{
  if (callback_data != NULL) {
    json_builder_set_member_name(b, "biz_opaque_callback_data");
    json_builder_add_string_value(b, callback_data);
  }
}

JsonNode *
wa_message_text_new(const char *customer, const char *body, gboolean preview_url, const char *callback_data)
{
  g_autoptr(JsonBuilder) b = json_builder_new();

  json_builder_begin_object(b);
  add_recipient(b, customer);
  json_builder_set_member_name(b, "type");
  json_builder_add_string_value(b, "text");
  json_builder_set_member_name(b, "text");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "body");
  json_builder_add_string_value(b, body);
  if (preview_url) {
    json_builder_set_member_name(b, "preview_url");
    json_builder_add_boolean_value(b, TRUE);
  }
  json_builder_end_object(b);
  add_callback_data(b, callback_data);
  json_builder_end_object(b);
  return json_builder_get_root(b);
}

JsonNode *
wa_message_payload_new(const char *customer, const char *payload, const char *callback_data, GError **error)
{
  g_autoptr(JsonNode) root = wa_json_parse_object(payload, strlen(payload), error);
  g_autoptr(JsonBuilder) b = NULL;
  static const char *const copied[] = {"type", NULL /* the type's member */, "context"};
  JsonObject *obj;
  const char *type;

  if (root == NULL)
    return NULL;
  obj = json_node_get_object(root);
  type = wa_json_get_string(obj, "type");
  if (type == NULL || !json_object_has_member(obj, type) || g_str_equal(type, "type") || g_str_equal(type, "context")) {
    g_set_error_literal(error, WA_JSON_ERROR, WA_JSON_ERROR_INVALID, "the stored message has no type member");
    return NULL;
  }
  b = json_builder_new();
  json_builder_begin_object(b);
  add_recipient(b, customer);
  /* type, its member and context, as composed (wa-compose.h) */
  for (guint i = 0; i < G_N_ELEMENTS(copied); i++) {
    const char *name = copied[i] != NULL ? copied[i] : type;
    JsonNode *member = json_object_get_member(obj, name);

    if (member != NULL) {
      json_builder_set_member_name(b, name);
      json_builder_add_value(b, json_node_copy(member));
    }
  }
  add_callback_data(b, callback_data);
  json_builder_end_object(b);
  return json_builder_get_root(b);
}

JsonNode *
wa_message_read_new(const char *wamid, gboolean typing)
{
  g_autoptr(JsonBuilder) b = json_builder_new();

  json_builder_begin_object(b);
  json_builder_set_member_name(b, "messaging_product");
  json_builder_add_string_value(b, "whatsapp");
  json_builder_set_member_name(b, "status");
  json_builder_add_string_value(b, "read");
  json_builder_set_member_name(b, "message_id");
  json_builder_add_string_value(b, wamid);
  if (typing) {
    json_builder_set_member_name(b, "typing_indicator");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, "text");
    json_builder_end_object(b);
  }
  json_builder_end_object(b);
  return json_builder_get_root(b);
}

WaSendResult *
wa_send_result_from_json(JsonObject *obj, GError **error)
{
  JsonObject *message = wa_json_array_get_object(wa_json_get_array(obj, "messages"), 0);
  JsonObject *contact = wa_json_array_get_object(wa_json_get_array(obj, "contacts"), 0);
  WaSendResult *result;

  if (wa_json_get_string(message, "id") == NULL) {
    g_set_error_literal(error, WA_GRAPH_ERROR, WA_ERROR_CLASS_PERMANENT,
                        _("The API accepted the message but returned no message id."));
    return NULL;
  }
  result = g_new0(WaSendResult, 1);
  result->wamid = g_strdup(wa_json_get_string(message, "id"));
  result->message_status = g_strdup(wa_json_get_string(message, "message_status"));
  result->input = g_strdup(wa_json_get_string(contact, "input"));
  result->wa_id = wa_json_dup_id(contact, "wa_id");
  result->user_id = g_strdup(wa_json_get_string(contact, "user_id"));
  return result;
}

void
wa_send_result_free(WaSendResult *result)
{
  if (result == NULL)
    return;
  g_free(result->wamid);
  g_free(result->input);
  g_free(result->wa_id);
  g_free(result->user_id);
  g_free(result->message_status);
  g_free(result);
}

WaGraphCall *
wa_graph_send_message(WaGraph *graph, const char *phone_number_id, JsonNode *message, WaGraphCallback callback,
                      gpointer data)
{
  return wa_graph_send_message_to(graph, phone_number_id, "messages", message, callback, data);
}

const char *
wa_message_payload_endpoint(const char *payload)
{
  g_autoptr(JsonNode) root = payload != NULL ? wa_json_parse_object(payload, strlen(payload), NULL) : NULL;

  if (root != NULL && g_strcmp0(wa_json_get_string(json_node_get_object(root), "endpoint"), "marketing_messages") == 0)
    return "marketing_messages";
  return "messages";
}

WaGraphCall *
wa_graph_send_message_to(WaGraph *graph, const char *phone_number_id, const char *endpoint, JsonNode *message,
                         WaGraphCallback callback, gpointer data)
{
  g_autofree char *path = g_strconcat(phone_number_id, "/", endpoint, NULL);

  return wa_graph_post_json(graph, path, message, callback, data);
}

/* ---- media: POST /{phone-number-id}/media ---- */

static WaGraphCall *
upload(WaGraph *graph, const char *phone_number_id, const WaHttpFormPart *file, WaHttpProgress progress,
       gpointer progress_data, WaGraphCallback callback, gpointer data)
{
  g_autofree char *url_path = g_strconcat(phone_number_id, "/media", NULL);
  const WaHttpFormPart form[] = {
    {.name = "messaging_product", .value = "whatsapp"},
    {.name = "type", .value = file->type},
    *file,
  };
  WaHttpRequest request = {
    .method = "POST",
    .form = form,
    .n_form = G_N_ELEMENTS(form),
    .progress = progress,
    .progress_data = progress_data,
    .long_transfer = TRUE,
  };

  return start_request(graph, &request, url_path, NULL, callback, data);
}

WaGraphCall *
wa_graph_upload_media(WaGraph *graph, const char *phone_number_id, const char *path, const char *mime,
                      const char *filename, WaHttpProgress progress, gpointer progress_data, WaGraphCallback callback,
                      gpointer data)
{
  const WaHttpFormPart file = {.name = "file", .path = path, .filename = filename, .type = mime};

  return upload(graph, phone_number_id, &file, progress, progress_data, callback, data);
}

WaGraphCall *
wa_graph_upload_media_bytes(WaGraph *graph, const char *phone_number_id, GBytes *bytes, const char *mime,
                            const char *filename, WaGraphCallback callback, gpointer data)
{
  gsize len = 0;
  const void *bytes_data = g_bytes_get_data(bytes, &len);
  const WaHttpFormPart file = {
    .name = "file", .data = bytes_data != NULL ? bytes_data : "", .data_len = len, .filename = filename, .type = mime};

  return upload(graph, phone_number_id, &file, NULL, NULL, callback, data);
}

char *
wa_media_id_from_json(JsonObject *obj, GError **error)
{
  char *id = wa_json_dup_id(obj, "id");

  if (id == NULL || *id == '\0') {
    g_free(id);
    g_set_error_literal(error, WA_GRAPH_ERROR, WA_ERROR_CLASS_PERMANENT,
                        _("The API accepted the file but returned no media id."));
    return NULL;
  }
  return id;
}
