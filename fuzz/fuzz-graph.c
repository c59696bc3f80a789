/* fuzz-graph.c: libFuzzer target for Graph API replies: error bodies
 * (wa_graph_error_from_reply, wa_graph_error_from_webhook, plugin/core/
 * wa-error.h) and the objects the plugin reads from a successful reply
 * (wa_send_result_from_json, wa_phone_info_from_json, wa-graph.h).
 *
 * Input: a reply body. The HTTP status it came with is taken from the body's
 * length (one of 200, 201, 400, 401, 403, 404, 429, 500), so the corpus
 * stays plain JSON. What the plugin's reply handler does is done here: an
 * error when there is one, else the object read as a send result and as
 * phone number details. Checked: no error only for a 2xx whose body is a
 * JSON object without an "error" object or with a string messages[0].id;
 * every error is described and classified, and it reached the API unless it
 * is a 401, 403 or 407 without the API's error (a network problem); a send
 * result exactly when messages[0].id is a string.
 * Must not: print the input. */
#include "fuzz-common.h"

#include "wa-graph.h"
#include "wa-json.h"

static const int statuses[] = {200, 201, 400, 401, 403, 404, 429, 500};

static void
check_error(const WaGraphError *error)
{
  g_autofree char *text = wa_graph_error_describe(error);
  g_autoptr(GError) gerror = wa_graph_error_to_gerror(error);

  fuzz_check(text != NULL && *text != '\0');
  fuzz_check(error->klass >= WA_ERROR_CLASS_NETWORK && error->klass <= WA_ERROR_CLASS_PERMANENT);
  fuzz_check(strcmp(wa_error_class_name(error->klass), "unknown") != 0);
  fuzz_check(gerror != NULL && gerror->domain == WA_GRAPH_ERROR && gerror->code == (gint) error->klass);
  if (wa_error_code_reason(error->code) != NULL)
    fuzz_check(wa_error_code_advice(error->code) != NULL);
}

FUZZ_DEFAULT_INITIALIZE

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  int status = statuses[size % G_N_ELEMENTS(statuses)];
  const char *body = (const char *) data;
  g_autoptr(WaGraphError) error = wa_graph_error_from_reply(status, body, size);
  g_autoptr(JsonNode) root = wa_json_parse_object(body, size, NULL);
  JsonObject *obj = root != NULL ? json_node_get_object(root) : NULL;

  if (error == NULL) {
    g_autoptr(WaSendResult) sent = NULL;
    g_autoptr(WaPhoneInfo) info = NULL;
    g_autoptr(GError) send_error = NULL;
    JsonObject *message;

    message = wa_json_array_get_object(wa_json_get_array(obj, "messages"), 0);
    fuzz_check(status / 100 == 2 && obj != NULL &&
               (wa_json_get_object(obj, "error") == NULL || wa_json_get_string(message, "id") != NULL));
    sent = wa_send_result_from_json(obj, &send_error);
    fuzz_check((sent != NULL) == (wa_json_get_string(message, "id") != NULL));
    fuzz_check((sent == NULL) == (send_error != NULL));
    if (sent != NULL)
      fuzz_check(g_str_equal(sent->wamid, wa_json_get_string(message, "id")));
    info = wa_phone_info_from_json(obj);
    fuzz_check(info != NULL);
  } else {
    fuzz_check(error->http_status == status);
    fuzz_check(error->reached ||
               (error->klass == WA_ERROR_CLASS_NETWORK && error->code == 0 && (status == 401 || status == 403)));
    check_error(error);
  }

  /* the same object as a webhook's error (statuses[].errors, messages[].errors) */
  if (obj != NULL) {
    JsonObject *inner = wa_json_get_object(obj, "error");
    g_autoptr(WaGraphError) webhook_error = wa_graph_error_from_webhook(inner != NULL ? inner : obj);

    fuzz_check(webhook_error->http_status == 0);
    check_error(webhook_error);
  }
  return 0;
}
