/* test-error.c: Graph error envelopes, webhook errors and their classification. */
#include "wa-error.h"

#include <string.h>

static WaGraphError *
reply(int status, const char *body)
{
  return wa_graph_error_from_reply(status, body, body != NULL ? strlen(body) : 0);
}

static void
test_envelope(void)
{
  const char *body = "{\"error\":{\"message\":\"(#130429) Rate limit hit\",\"type\":\"OAuthException\","
                     "\"code\":130429,\"error_data\":{\"messaging_product\":\"whatsapp\",\"details\":"
                     "\"Cloud API message throughput has been reached.\"},\"error_subcode\":2494055,"
                     "\"fbtrace_id\":\"Az8or2yhqkZfEZ-_4Qn_Bam\"}}";
  g_autoptr(WaGraphError) e = reply(400, body);
  g_autofree char *text = wa_graph_error_describe(e);

  g_assert_nonnull(e);
  g_assert_cmpint(e->http_status, ==, 400);
  g_assert_cmpint(e->code, ==, 130429);
  g_assert_cmpint(e->subcode, ==, 2494055);
  g_assert_cmpstr(e->type, ==, "OAuthException");
  g_assert_cmpstr(e->details, ==, "Cloud API message throughput has been reached.");
  g_assert_cmpstr(e->fbtrace_id, ==, "Az8or2yhqkZfEZ-_4Qn_Bam");
  g_assert_cmpint(e->klass, ==, WA_ERROR_CLASS_RATE_LIMITED);
  g_assert_nonnull(strstr(text, "130429"));
  g_assert_nonnull(strstr(text, "throughput"));
}

static void
test_success_is_not_error(void)
{
  g_assert_null(reply(200, "{\"messages\":[{\"id\":\"wamid.x\"}]}"));
}

static void
test_non_json(void)
{
  g_autoptr(WaGraphError) html = reply(502, "<html><body>Bad gateway</body></html>");
  g_autoptr(WaGraphError) ok_html = reply(200, "<html>captive portal</html>");
  g_autoptr(WaGraphError) empty = reply(500, NULL);
  g_autoptr(WaGraphError) unauth = reply(401, "nope");

  g_assert_cmpint(html->klass, ==, WA_ERROR_CLASS_RETRYABLE);
  g_assert_cmpint(html->code, ==, 0);
  g_assert_nonnull(ok_html);
  g_assert_cmpint(ok_html->klass, ==, WA_ERROR_CLASS_RETRYABLE);
  g_assert_cmpint(empty->klass, ==, WA_ERROR_CLASS_RETRYABLE);
  g_assert_cmpint(unauth->klass, ==, WA_ERROR_CLASS_AUTH);
}

static void
test_classes(void)
{
  struct { gint64 code, subcode; int http; WaErrorClass want; } cases[] = {
    { 190, 463, 401, WA_ERROR_CLASS_AUTH },
    { 190, 0, 400, WA_ERROR_CLASS_AUTH },
    { 0, 0, 401, WA_ERROR_CLASS_AUTH },
    { 104, 0, 400, WA_ERROR_CLASS_AUTH },
    { 10, 0, 403, WA_ERROR_CLASS_PERMISSION },
    { 200, 0, 403, WA_ERROR_CLASS_PERMISSION },
    { 299, 0, 400, WA_ERROR_CLASS_PERMISSION },
    { 100, 33, 400, WA_ERROR_CLASS_NOT_FOUND },
    { 33, 0, 400, WA_ERROR_CLASS_NOT_FOUND },
    { 100, 0, 400, WA_ERROR_CLASS_PERMANENT },
    { 131047, 0, 400, WA_ERROR_CLASS_WINDOW_CLOSED },
    { 131056, 0, 400, WA_ERROR_CLASS_RATE_LIMITED },
    { 130429, 0, 429, WA_ERROR_CLASS_RATE_LIMITED },
    { 80007, 0, 400, WA_ERROR_CLASS_RATE_LIMITED },
    { 4, 0, 400, WA_ERROR_CLASS_RATE_LIMITED },
    { 1, 0, 500, WA_ERROR_CLASS_RETRYABLE },
    { 2, 0, 503, WA_ERROR_CLASS_RETRYABLE },
    { 131000, 0, 500, WA_ERROR_CLASS_RETRYABLE },
    { 131016, 0, 503, WA_ERROR_CLASS_RETRYABLE },
    { 131057, 0, 400, WA_ERROR_CLASS_RETRYABLE },
    { 131026, 0, 400, WA_ERROR_CLASS_PERMANENT },
    { 132001, 0, 404, WA_ERROR_CLASS_PERMANENT }, /* the code wins over the HTTP status */
    { 0, 0, 404, WA_ERROR_CLASS_NOT_FOUND },
    { 0, 0, 429, WA_ERROR_CLASS_RATE_LIMITED },
    { 0, 0, 503, WA_ERROR_CLASS_RETRYABLE },
    { 0, 0, 400, WA_ERROR_CLASS_PERMANENT },
    { 0, 0, 0, WA_ERROR_CLASS_NETWORK },
  };

  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    WaErrorClass got = wa_error_classify(cases[i].code, cases[i].subcode, cases[i].http, FALSE);
    if (got != cases[i].want)
      g_error("code %" G_GINT64_FORMAT "/%" G_GINT64_FORMAT " http %d: got %s, want %s", cases[i].code,
              cases[i].subcode, cases[i].http, wa_error_class_name(got), wa_error_class_name(cases[i].want));
  }
  /* is_transient makes an otherwise permanent code retryable */
  g_assert_cmpint(wa_error_classify(100, 0, 400, TRUE), ==, WA_ERROR_CLASS_RETRYABLE);
}

static void
test_webhook_error(void)
{
  const char *json = "{\"code\":131049,\"title\":\"This message was not delivered to maintain healthy ecosystem engagement.\","
                     "\"message\":\"x\",\"error_data\":{\"details\":\"In order to maintain a healthy ecosystem engagement, "
                     "the message failed to be delivered.\"},\"href\":\"/documentation\"}";
  g_autoptr(JsonParser) parser = json_parser_new();
  g_autoptr(WaGraphError) e = NULL;
  g_autofree char *text = NULL;

  g_assert_true(json_parser_load_from_data(parser, json, -1, NULL));
  e = wa_graph_error_from_webhook(json_node_get_object(json_parser_get_root(parser)));
  text = wa_graph_error_describe(e);
  g_assert_cmpint(e->code, ==, 131049);
  g_assert_cmpint(e->http_status, ==, 0);
  g_assert_cmpint(e->klass, ==, WA_ERROR_CLASS_PERMANENT);
  g_assert_nonnull(strstr(text, "24 hours"));
}

/* An error body whose message (and title) is empty still tells the agent
 * something (found by fuzz/fuzz-graph: the description was ""). */
static void
test_empty_message(void)
{
  const char *body = "{\"error\":{\"message\":\"\",\"title\":\"\",\"is_transient\":true}}";
  g_autoptr(WaGraphError) e = wa_graph_error_from_reply(400, body, strlen(body));
  g_autofree char *text = wa_graph_error_describe(e);

  g_assert_nonnull(e);
  g_assert_cmpstr(text, ==, "The WhatsApp API reported an error.");
}

static void
test_network(void)
{
  g_autoptr(WaGraphError) e = wa_graph_error_new_network("Couldn't connect to server", FALSE);
  g_autofree char *text = wa_graph_error_describe(e);
  GError *gerror = wa_graph_error_to_gerror(e);

  g_assert_false(e->reached);
  g_assert_cmpint(e->klass, ==, WA_ERROR_CLASS_NETWORK);
  g_assert_nonnull(strstr(text, "Couldn't connect"));
  g_assert_true(g_str_has_prefix(text, "Cannot reach the WhatsApp API: "));
  g_assert_error(gerror, WA_GRAPH_ERROR, WA_ERROR_CLASS_NETWORK);
  g_error_free(gerror);
}

/* A request that went out and got no answer is not "cannot reach": it may
 * well have been taken. */
static void
test_network_answer_lost(void)
{
  g_autoptr(WaGraphError) e = wa_graph_error_new_network("Operation timed out", TRUE);
  g_autofree char *text = wa_graph_error_describe(e);

  g_assert_true(e->reached);
  g_assert_cmpstr(text, ==, "The request went out, but no answer came back from the WhatsApp API: Operation timed out");
}

static void
test_reasons(void)
{
  g_assert_nonnull(strstr(wa_error_code_reason(131047), "24 hours"));
  g_assert_nonnull(strstr(wa_error_code_advice(131047), "template"));
  g_assert_nonnull(wa_error_code_reason(131026));
  g_assert_null(wa_error_code_reason(999999));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/error/envelope", test_envelope);
  g_test_add_func("/error/success-is-not-error", test_success_is_not_error);
  g_test_add_func("/error/non-json", test_non_json);
  g_test_add_func("/error/classes", test_classes);
  g_test_add_func("/error/webhook", test_webhook_error);
  g_test_add_func("/error/empty-message", test_empty_message);
  g_test_add_func("/error/network", test_network);
  g_test_add_func("/error/network-answer-lost", test_network_answer_lost);
  g_test_add_func("/error/reasons", test_reasons);
  return g_test_run();
}
