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

/* Meta's success has messages[].id, its error an "error" object with a 4xx
 * or 5xx: a 200 with both is the message taken under that id (its fate comes
 * in status webhooks), not an error; only an id makes it so. */
static void
test_message_id_beats_error_in_200(void)
{
  const char *err = "\"error\":{\"message\":\"(#131000) Something went wrong\",\"code\":131000}";
  g_autofree char *both = g_strdup_printf("{\"messages\":[{\"id\":\"wamid.x\"}],%s}", err);
  g_autofree char *no_id = g_strdup_printf("{\"messages\":[{\"id\":7}],%s}", err);
  g_autofree char *empty = g_strdup_printf("{\"messages\":[],%s}", err);
  g_autoptr(WaGraphError) e1 = reply(400, both);
  g_autoptr(WaGraphError) e2 = reply(200, no_id);
  g_autoptr(WaGraphError) e3 = reply(200, empty);

  g_assert_null(reply(200, both));
  g_assert_null(reply(201, both));
  /* an error status is an error, whatever else the body holds */
  g_assert_nonnull(e1);
  g_assert_cmpint(e1->code, ==, 131000);
  g_assert_nonnull(e2);
  g_assert_cmpint(e2->code, ==, 131000);
  g_assert_nonnull(e3);
  g_assert_cmpint(e3->klass, ==, WA_ERROR_CLASS_RETRYABLE);
}

/* Only the API's own error says a token was refused or lacks a permission
 * (the account is disconnected for it): a 401, 403 or 407 without it (a
 * proxy's login page, a firewall) is a network problem, the request never
 * reached the API, and the agent reads what happened. */
static void
test_bare_401_403_not_auth(void)
{
  static const int statuses[] = {401, 403, 407};

  for (gsize i = 0; i < G_N_ELEMENTS(statuses); i++) {
    g_autoptr(WaGraphError) html = reply(statuses[i], "<html><body><h1>Authorization required</h1></body></html>");
    g_autoptr(WaGraphError) none = reply(statuses[i], NULL);
    g_autoptr(WaGraphError) odd_json = reply(statuses[i], "{\"error\":\"Unauthorized\"}");
    g_autofree char *text = wa_graph_error_describe(html);
    g_autofree char *number = g_strdup_printf("HTTP %d", statuses[i]);

    g_assert_cmpint(html->klass, ==, WA_ERROR_CLASS_NETWORK);
    g_assert_false(html->reached);
    g_assert_cmpint(html->http_status, ==, statuses[i]);
    g_assert_cmpint(none->klass, ==, WA_ERROR_CLASS_NETWORK);
    g_assert_cmpint(odd_json->klass, ==, WA_ERROR_CLASS_NETWORK);
    g_assert_nonnull(strstr(text, "not the WhatsApp API"));
    g_assert_nonnull(strstr(text, number));
    g_assert_null(strstr(text, "token"));
  }
  /* Meta's own 401 and 403 */
  {
    g_autoptr(WaGraphError) refused =
      reply(401, "{\"error\":{\"message\":\"Invalid OAuth access token\",\"code\":190}}");
    g_autoptr(WaGraphError) denied = reply(403, "{\"error\":{\"message\":\"(#200) Permissions error\",\"code\":200}}");

    g_assert_cmpint(refused->klass, ==, WA_ERROR_CLASS_AUTH);
    g_assert_true(refused->reached);
    g_assert_cmpint(denied->klass, ==, WA_ERROR_CLASS_PERMISSION);
  }
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
  g_assert_cmpint(unauth->klass, ==, WA_ERROR_CLASS_NETWORK);
}

static void
test_classes(void)
{
  struct {
    gint64 code, subcode;
    int http;
    WaErrorClass want;
  } cases[] = {
    {190, 463, 401, WA_ERROR_CLASS_AUTH},
    {190, 0, 400, WA_ERROR_CLASS_AUTH},
    {0, 0, 401, WA_ERROR_CLASS_NETWORK}, /* not the API's answer: a proxy's, a firewall's */
    {0, 0, 403, WA_ERROR_CLASS_NETWORK},
    {0, 0, 407, WA_ERROR_CLASS_NETWORK},
    {104, 0, 400, WA_ERROR_CLASS_AUTH},
    {10, 0, 403, WA_ERROR_CLASS_PERMISSION},
    {200, 0, 403, WA_ERROR_CLASS_PERMISSION},
    {299, 0, 400, WA_ERROR_CLASS_PERMISSION},
    {100, 33, 400, WA_ERROR_CLASS_NOT_FOUND},
    {33, 0, 400, WA_ERROR_CLASS_NOT_FOUND},
    {100, 0, 400, WA_ERROR_CLASS_PERMANENT},
    {131047, 0, 400, WA_ERROR_CLASS_WINDOW_CLOSED},
    {131056, 0, 400, WA_ERROR_CLASS_RATE_LIMITED},
    {130429, 0, 429, WA_ERROR_CLASS_RATE_LIMITED},
    {80007, 0, 400, WA_ERROR_CLASS_RATE_LIMITED},
    {4, 0, 400, WA_ERROR_CLASS_RATE_LIMITED},
    {1, 0, 500, WA_ERROR_CLASS_RETRYABLE},
    {2, 0, 503, WA_ERROR_CLASS_RETRYABLE},
    {131000, 0, 500, WA_ERROR_CLASS_RETRYABLE},
    {131016, 0, 503, WA_ERROR_CLASS_RETRYABLE},
    {131057, 0, 400, WA_ERROR_CLASS_RETRYABLE},
    {131026, 0, 400, WA_ERROR_CLASS_PERMANENT},
    {132001, 0, 404, WA_ERROR_CLASS_PERMANENT}, /* the code wins over the HTTP status */
    {0, 0, 404, WA_ERROR_CLASS_NOT_FOUND},
    {0, 0, 429, WA_ERROR_CLASS_RATE_LIMITED},
    {0, 0, 503, WA_ERROR_CLASS_RETRYABLE},
    {0, 0, 400, WA_ERROR_CLASS_PERMANENT},
    {0, 0, 0, WA_ERROR_CLASS_NETWORK},
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
  const char *json =
    "{\"code\":131049,\"title\":\"This message was not delivered to maintain healthy ecosystem engagement.\","
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
  /* every template failure has a reason and a next step */
  {
    static const gint64 codes[] = {132000, 132001, 132005, 132007, 132008, 132012, 132015, 132016,
                                   132018, 131008, 131047, 131049, 131050, 131063, 131064};

    for (guint i = 0; i < G_N_ELEMENTS(codes); i++) {
      if (wa_error_code_reason(codes[i]) == NULL || wa_error_code_advice(codes[i]) == NULL)
        g_error("error %" G_GINT64_FORMAT " has no reason or next step", codes[i]);
    }
  }
  /* 131063: the option that sends marketing templates another way */
  g_assert_nonnull(strstr(wa_error_code_advice(131063), "marketing_endpoint"));
  g_assert_nonnull(strstr(wa_error_code_advice(132001), "/templates"));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/error/envelope", test_envelope);
  g_test_add_func("/error/success-is-not-error", test_success_is_not_error);
  g_test_add_func("/error/message-id-beats-error-in-200", test_message_id_beats_error_in_200);
  g_test_add_func("/error/bare-401-403-not-auth", test_bare_401_403_not_auth);
  g_test_add_func("/error/non-json", test_non_json);
  g_test_add_func("/error/classes", test_classes);
  g_test_add_func("/error/webhook", test_webhook_error);
  g_test_add_func("/error/empty-message", test_empty_message);
  g_test_add_func("/error/network", test_network);
  g_test_add_func("/error/network-answer-lost", test_network_answer_lost);
  g_test_add_func("/error/reasons", test_reasons);
  return g_test_run();
}
