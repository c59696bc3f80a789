/* wa-graph.h: the Graph API client: one small function per endpoint.
 *
 * Every call is asynchronous and ends in exactly one callback (unless
 * cancelled) with either the parsed JSON reply or a WaGraphError. The access
 * token is sent only to the configured API base URL's host. Nothing here
 * retries: callers decide from the error class (and error->reached). */
#pragma once

#include <json-glib/json-glib.h>

#include "wa-error.h"
#include "wa-http.h"

G_BEGIN_DECLS

#define WA_GRAPH_DEFAULT_BASE_URL "https://graph.facebook.com/v25.0"

typedef struct _WaGraph WaGraph;
typedef struct _WaGraphCall WaGraphCall;

typedef struct {
  WaGraphError *error;      /* NULL on success */
  JsonObject *object;       /* the reply object on success */
  WaHttpResponse *response; /* the raw answer */
} WaGraphReply;

typedef void (*WaGraphCallback)(WaGraphReply *reply, gpointer data);

/* Refuses anything but https (http only for loopback hosts), URLs with
 * credentials, queries or fragments. */
gboolean wa_graph_check_base_url(const char *url, GError **error);

/* @http is borrowed and must outlive the client. Returns NULL with @error set
 * when @base_url is refused. */
WaGraph *wa_graph_new(WaHttp *http, const char *base_url, const char *token, GError **error);
/* Cancels every call in flight (their callbacks are not called). */
void wa_graph_free(WaGraph *graph);
const char *wa_graph_get_base_url(WaGraph *graph);

/* Generic calls; @path is relative to the base URL ("123/messages"), @query
 * already encoded or NULL. */
WaGraphCall *wa_graph_get(WaGraph *graph, const char *path, const char *query, WaGraphCallback callback, gpointer data);
WaGraphCall *wa_graph_post_json(WaGraph *graph, const char *path, JsonNode *body, WaGraphCallback callback,
                                gpointer data);
void wa_graph_cancel(WaGraphCall *call);

/* ---- phone number: GET /{phone-number-id} ---- */

#define WA_PHONE_INFO_FIELDS                                                  \
  "display_phone_number,verified_name,quality_rating,name_status,throughput," \
  "whatsapp_business_manager_messaging_limit,platform_type,status,account_mode"

typedef struct {
  char *id;
  char *display_phone_number;
  char *verified_name;
  char *quality_rating;
  char *name_status;
  char *throughput_level;
  char *messaging_limit;
  char *platform_type;
  char *status;
  char *account_mode;
} WaPhoneInfo;

WaPhoneInfo *wa_phone_info_from_json(JsonObject *obj);
void wa_phone_info_free(WaPhoneInfo *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaPhoneInfo, wa_phone_info_free)

WaGraphCall *wa_graph_get_phone_number(WaGraph *graph, const char *phone_number_id, WaGraphCallback callback,
                                       gpointer data);

/* ---- messages: POST /{phone-number-id}/messages ---- */

/* Builds a text message. @customer is wa_id digits (sent as "to": "+digits"),
 * a BSUID (sent as "recipient") or a group address (wa-phone.h; sent as "to"
 * with recipient_type "group"). @callback_data goes into
 * biz_opaque_callback_data (at most 512 characters) when not NULL. */
JsonNode *wa_message_text_new(const char *customer, const char *body, gboolean preview_url, const char *callback_data);
/* Builds a message from a composed payload (wa-compose.h, or a media
 * message of wa_media_payload_new: {"type": T, T: {...}, "context"?: {...}};
 * other members are not sent) for @customer (as above, or a group address:
 * recipient_type "group"). NULL with @error when @payload is not one. */
JsonNode *wa_message_payload_new(const char *customer, const char *payload, const char *callback_data, GError **error);

/* Marks inbound message @wamid (and every earlier one) read; with @typing
 * the customer also sees the typing indicator (25 s, or until our reply).
 * Sent with wa_graph_send_message; the answer is {"success": true}. */
JsonNode *wa_message_read_new(const char *wamid, gboolean typing);

typedef struct {
  char *wamid;
  char *input;
  char *wa_id;          /* NULL for BSUID sends */
  char *user_id;        /* v25+: the BSUID, when given */
  char *message_status; /* "accepted", "held_for_quality_assessment", "paused" or NULL */
} WaSendResult;

/* Parses a send reply; NULL with @error set when it has no message id. */
WaSendResult *wa_send_result_from_json(JsonObject *obj, GError **error);
void wa_send_result_free(WaSendResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaSendResult, wa_send_result_free)

WaGraphCall *wa_graph_send_message(WaGraph *graph, const char *phone_number_id, JsonNode *message,
                                   WaGraphCallback callback, gpointer data);
/* The endpoint a composed @payload goes to: "marketing_messages" when it
 * says so (a marketing template, wa-template.h), else "messages". */
const char *wa_message_payload_endpoint(const char *payload);
/* POST /{phone-number-id}/@endpoint ("messages" or "marketing_messages"). */
WaGraphCall *wa_graph_send_message_to(WaGraph *graph, const char *phone_number_id, const char *endpoint,
                                      JsonNode *message, WaGraphCallback callback, gpointer data);

/* ---- media: POST /{phone-number-id}/media ---- */

/* Uploads the file at @path (streamed from disk; @filename and @mime are
 * sent with it, and @mime as the "type" field) as multipart/form-data.
 * @progress (may be NULL) follows the upload. No total timeout: it fails
 * when nothing moves for the client's total timeout. The reply holds the
 * media id (wa_media_id_from_json). */
WaGraphCall *wa_graph_upload_media(WaGraph *graph, const char *phone_number_id, const char *path, const char *mime,
                                   const char *filename, WaHttpProgress progress, gpointer progress_data,
                                   WaGraphCallback callback, gpointer data);
/* The same for bytes in memory (copied; a pasted image). */
WaGraphCall *wa_graph_upload_media_bytes(WaGraph *graph, const char *phone_number_id, GBytes *bytes, const char *mime,
                                         const char *filename, WaGraphCallback callback, gpointer data);
/* The media id of an upload's reply (newly allocated), or NULL with @error. */
char *wa_media_id_from_json(JsonObject *obj, GError **error);

G_END_DECLS
