/* test-graph.c: WaHttp, WaGraph and the outbox against an in-process libsoup
 * server on loopback: what goes over the wire (token, User-Agent, exact JSON),
 * how answers and failures are classified, and the outbox's retry rules.
 * The scripted server and the store helpers are in test-server.h. */
#include <string.h>

#include "wa-graph.h"
#include "wa-json.h"
#include "wa-sender.h"
#include "test-server.h"

/* ---- graph ------------------------------------------------------------------ */

typedef struct {
  guint done;
  WaGraphError *error;
  JsonNode *object;
  long status;
} Result;

static void
graph_cb(WaGraphReply *reply, gpointer data)
{
  Result *r = data;

  r->done++;
  r->status = reply->response->status;
  if (reply->error != NULL) {
    r->error = wa_graph_error_new();
    r->error->code = reply->error->code;
    r->error->subcode = reply->error->subcode;
    r->error->klass = reply->error->klass;
    r->error->reached = reply->error->reached;
    r->error->http_status = reply->error->http_status;
  } else {
    r->object = json_node_new(JSON_NODE_OBJECT);
    json_node_set_object(r->object, reply->object);
  }
}

static void
result_clear(Result *r)
{
  g_clear_pointer(&r->error, wa_graph_error_free);
  g_clear_pointer(&r->object, json_node_unref);
  r->done = 0;
}

static void
test_base_url(void)
{
  g_assert_true(wa_graph_check_base_url("https://graph.facebook.com/v25.0", NULL));
  g_assert_true(wa_graph_check_base_url("http://127.0.0.1:8080/v25.0", NULL));
  g_assert_true(wa_graph_check_base_url("http://[::1]:8080/v25.0", NULL));
  g_assert_true(wa_graph_check_base_url("http://localhost/v25.0", NULL));
  g_assert_false(wa_graph_check_base_url("http://graph.facebook.com/v25.0", NULL));
  g_assert_false(wa_graph_check_base_url("http://10.0.0.1/v25.0", NULL));
  g_assert_false(wa_graph_check_base_url("ftp://graph.facebook.com/", NULL));
  g_assert_false(wa_graph_check_base_url("https://user:pw@graph.facebook.com/v25.0", NULL));
  g_assert_false(wa_graph_check_base_url("https://graph.facebook.com/v25.0?access_token=x", NULL));
  g_assert_false(wa_graph_check_base_url("not a url", NULL));
  g_assert_false(wa_graph_check_base_url("", NULL));
}

static void
test_phone_number(void)
{
  Server *srv = server_new();
  WaHttp *http = wa_http_new(wa_loop_glib(), "purple-wabiz/test");
  g_autoptr(GError) error = NULL;
  WaGraph *graph = wa_graph_new(http, srv->base, "TOKEN-1", &error);
  Result r = {0};
  g_autoptr(WaPhoneInfo) info = NULL;

  g_assert_no_error(error);
  server_script(srv, 200,
                "{\"id\":\"106540352242922\",\"display_phone_number\":\"+1 555-078-3881\","
                "\"verified_name\":\"Jaspers Market\",\"quality_rating\":\"GREEN\","
                "\"throughput\":{\"level\":\"STANDARD\"},\"whatsapp_business_manager_messaging_limit\":\"TIER_2K\"}");
  wa_graph_get_phone_number(graph, "106540352242922", graph_cb, &r);
  test_wait_count(r.done, 1, WAIT_S);
  g_assert_null(r.error);
  info = wa_phone_info_from_json(json_node_get_object(r.object));
  g_assert_cmpstr(info->verified_name, ==, "Jaspers Market");
  g_assert_cmpstr(info->throughput_level, ==, "STANDARD");
  g_assert_cmpstr(info->messaging_limit, ==, "TIER_2K");
  g_assert_cmpstr(seen(srv, 0)->method, ==, "GET");
  g_assert_cmpstr(seen(srv, 0)->path, ==, "/v25.0/106540352242922");
  g_assert_cmpstr(seen(srv, 0)->query, ==, "fields=" WA_PHONE_INFO_FIELDS);
  g_assert_cmpstr(seen(srv, 0)->auth, ==, "Bearer TOKEN-1");
  g_assert_cmpstr(seen(srv, 0)->user_agent, ==, "purple-wabiz/test");
  result_clear(&r);

  /* the Graph error envelope becomes a classified error */
  server_script(srv, 400,
                "{\"error\":{\"message\":\"Unsupported get request.\",\"type\":\"GraphMethodException\","
                "\"code\":100,\"error_subcode\":33,\"fbtrace_id\":\"x\"}}");
  wa_graph_get_phone_number(graph, "1", graph_cb, &r);
  test_wait_count(r.done, 1, WAIT_S);
  g_assert_nonnull(r.error);
  g_assert_cmpint(r.error->code, ==, 100);
  g_assert_cmpint(r.error->subcode, ==, 33);
  g_assert_cmpint(r.error->klass, ==, WA_ERROR_CLASS_NOT_FOUND);
  result_clear(&r);

  /* a redirect is not followed: the answer is an error, the target never asked */
  server_script(srv, 302, "");
  wa_graph_get(graph, "x", NULL, graph_cb, &r);
  test_wait_count(r.done, 1, WAIT_S);
  g_assert_nonnull(r.error);
  g_assert_cmpint(r.status, ==, 302);
  g_assert_cmpuint(srv->seen->len, ==, 3);
  result_clear(&r);

  /* HTML error page from a proxy */
  server_script(srv, 502, "<html>bad gateway</html>");
  wa_graph_get(graph, "x", NULL, graph_cb, &r);
  test_wait_count(r.done, 1, WAIT_S);
  g_assert_cmpint(r.error->klass, ==, WA_ERROR_CLASS_RETRYABLE);
  g_assert_true(r.error->reached);
  result_clear(&r);

  wa_graph_free(graph);
  wa_http_free(http);
  server_free(srv);
}

static void
test_network_failures(void)
{
  guint16 port;
  GSocket *refusing = refusing_socket(&port);
  g_autofree char *base = g_strdup_printf("http://127.0.0.1:%u/v25.0", port);
  WaHttp *http = wa_http_new(wa_loop_glib(), "purple-wabiz/test");
  WaGraph *graph = wa_graph_new(http, base, "T", NULL);
  Server *srv = server_new();
  WaGraph *graph2 = wa_graph_new(http, srv->base, "T", NULL);
  Result r = {0};

  /* connection refused: provably not sent */
  wa_graph_get(graph, "x", NULL, graph_cb, &r);
  test_wait_count(r.done, 1, WAIT_S);
  g_assert_cmpint(r.error->klass, ==, WA_ERROR_CLASS_NETWORK);
  g_assert_false(r.error->reached);
  result_clear(&r);

  /* connection closed after the request was sent: it may have arrived */
  server_script_drop(srv);
  wa_graph_post_json(graph2, "1/messages", json_from_string("{\"a\":1}", NULL), graph_cb, &r);
  test_wait_count(r.done, 1, WAIT_S);
  g_assert_cmpint(r.error->klass, ==, WA_ERROR_CLASS_NETWORK);
  g_assert_true(r.error->reached);
  result_clear(&r);

  wa_graph_free(graph2);
  wa_graph_free(graph);
  wa_http_free(http);
  server_free(srv);
  g_object_unref(refusing);
}

typedef struct {
  guint done;
  long status;
  gboolean completed;
} HttpResult;

static void
http_cb(WaHttpResponse *response, gpointer data)
{
  HttpResult *r = data;

  r->status = response->status;
  r->completed = response->completed;
  r->done++;
}

static void
test_proxy_used(void)
{
  guint16 port;
  GSocket *refusing = refusing_socket(&port);
  g_autofree char *base = g_strdup_printf("http://127.0.0.1:%u/v25.0", port);
  Server *proxy = server_new();
  g_autofree char *proxy_url = g_strndup(proxy->base, strlen(proxy->base) - strlen("/v25.0"));
  WaHttp *http = wa_http_new(wa_loop_glib(), "purple-wabiz/test");
  WaGraph *graph = wa_graph_new(http, base, "T", NULL);
  WaHttpRequest request = {.method = "GET", .url = "http://api.example.invalid/v25.0/1"};
  HttpResult h = {0};
  Result r = {0};

  /* a host elsewhere is asked through the proxy (the name is not even
   * resolved here: only the proxy can answer) */
  wa_http_set_proxy(http, proxy_url, NULL, NULL);
  server_script(proxy, 200, "{\"id\":\"1\"}");
  wa_http_start(http, &request, http_cb, &h);
  test_wait_count(h.done, 1, WAIT_S);
  g_assert_true(h.completed);
  g_assert_cmpint(h.status, ==, 200);
  g_assert_cmpuint(proxy->seen->len, ==, 1);
  g_assert_cmpstr(seen(proxy, 0)->path, ==, "/v25.0/1");

  /* "" means no proxy at all, even if the environment names one */
  g_setenv("http_proxy", proxy_url, TRUE);
  wa_http_set_proxy(http, "", NULL, NULL);
  wa_graph_get(graph, "2", NULL, graph_cb, &r);
  test_wait_count(r.done, 1, WAIT_S);
  g_assert_nonnull(r.error);
  g_assert_cmpint(r.error->klass, ==, WA_ERROR_CLASS_NETWORK);
  g_assert_cmpuint(proxy->seen->len, ==, 1);
  g_unsetenv("http_proxy");
  result_clear(&r);

  wa_graph_free(graph);
  wa_http_free(http);
  server_free(proxy);
  g_object_unref(refusing);
}

/* A base URL on this computer (plain http is allowed only there) never goes
 * through a proxy, from the environment or from the account's settings: the
 * token would cross the proxy in clear, and a proxy cannot reach our
 * loopback anyway. The request reaches the API directly, the proxy sees
 * nothing. */
static void
test_loopback_bypasses_proxy(void)
{
  static const char *const variables[] = {"http_proxy",  "HTTP_PROXY", "https_proxy",
                                          "HTTPS_PROXY", "all_proxy",  "ALL_PROXY"};
  Server *api = server_new();
  Server *proxy = server_new();
  g_autofree char *proxy_url = g_strndup(proxy->base, strlen(proxy->base) - strlen("/v25.0"));
  g_autofree char *by_name = g_strconcat("http://localhost", strrchr(api->base, ':'), NULL);
  WaHttp *http = wa_http_new(wa_loop_glib(), "purple-wabiz/test");
  WaGraph *graph = wa_graph_new(http, api->base, "SECRET-TOKEN", NULL);
  WaGraph *named = wa_graph_new(http, by_name, "SECRET-TOKEN", NULL);
  g_autoptr(JsonNode) body = json_from_string("{\"a\":1}", NULL);
  Result r = {0};

  for (gsize i = 0; i < G_N_ELEMENTS(variables); i++)
    g_setenv(variables[i], proxy_url, TRUE);
  g_unsetenv("no_proxy");
  g_unsetenv("NO_PROXY");

  /* the environment's proxy */
  wa_http_set_proxy(http, NULL, NULL, NULL);
  wa_graph_get(graph, "1", NULL, graph_cb, &r);
  test_wait_count(r.done, 1, WAIT_S);
  g_assert_null(r.error);
  result_clear(&r);
  /* a proxy from the account's settings */
  wa_http_set_proxy(http, proxy_url, "user", "pass");
  wa_graph_post_json(graph, "1/messages", body, graph_cb, &r);
  test_wait_count(r.done, 1, WAIT_S);
  g_assert_null(r.error);
  result_clear(&r);
  /* "localhost" by name */
  wa_graph_post_json(named, "1/messages", body, graph_cb, &r);
  test_wait_count(r.done, 1, WAIT_S);
  g_assert_null(r.error);
  result_clear(&r);

  for (gsize i = 0; i < G_N_ELEMENTS(variables); i++)
    g_unsetenv(variables[i]);
  g_assert_cmpuint(proxy->seen->len, ==, 0);
  g_assert_cmpuint(api->seen->len, ==, 3);
  for (guint i = 0; i < 3; i++)
    g_assert_cmpstr(seen(api, i)->auth, ==, "Bearer SECRET-TOKEN");

  wa_graph_free(named);
  wa_graph_free(graph);
  wa_http_free(http);
  server_free(proxy);
  server_free(api);
}

/* A server may close a kept-alive connection just as the next request goes
 * out on it: a GET and an upload are sent once more, on a new connection
 * (the cut request is seen, then the repeat from another port); once. */
static void
test_closed_keepalive_repeated(void)
{
  Server *srv = server_new();
  WaHttp *http = wa_http_new(wa_loop_glib(), "purple-wabiz/test");
  WaGraph *graph = wa_graph_new(http, srv->base, "T", NULL);
  /* larger than what the sockets buffer: the client is still sending when
   * the connection closes */
  gsize size = 16 * 1024 * 1024;
  g_autoptr(GBytes) bytes = g_bytes_new_take(g_malloc0(size), size);
  Result r = {0};

  /* a GET opens the connection, the upload finds it closing */
  server_script(srv, 200, "{\"id\":\"1\"}");
  server_script_cut(srv);
  server_script(srv, 200, "{\"id\":\"777\"}");
  wa_graph_get(graph, "1", NULL, graph_cb, &r);
  test_wait_count(r.done, 1, WAIT_S);
  g_assert_null(r.error);
  result_clear(&r);
  wa_graph_upload_media_bytes(graph, "1", bytes, "image/png", "a.png", graph_cb, &r);
  test_wait_count(r.done, 1, WAIT_S);
  g_assert_null(r.error);
  result_clear(&r);
  g_assert_cmpuint(srv->seen->len, ==, 3);
  g_assert_cmpuint(seen(srv, 1)->remote_port, ==, seen(srv, 0)->remote_port);
  g_assert_cmpuint(seen(srv, 2)->remote_port, !=, seen(srv, 1)->remote_port);
  g_assert_cmpuint(strlen(seen(srv, 2)->body), >, 0);

  /* cut again on the new connection: once is enough, it fails */
  server_script(srv, 200, "{\"id\":\"2\"}");
  server_script_cut(srv);
  server_script_cut(srv);
  server_script(srv, 200, "{\"id\":\"778\"}");
  wa_graph_get(graph, "2", NULL, graph_cb, &r);
  test_wait_count(r.done, 1, WAIT_S);
  result_clear(&r);
  wa_graph_upload_media_bytes(graph, "1", bytes, "image/png", "a.png", graph_cb, &r);
  test_wait_count(r.done, 1, WAIT_S);
  g_assert_nonnull(r.error);
  g_assert_cmpint(r.error->klass, ==, WA_ERROR_CLASS_NETWORK);
  result_clear(&r);
  g_assert_cmpuint(srv->seen->len, ==, 6);

  wa_graph_free(graph);
  wa_http_free(http);
  server_free(srv);
}

static void
test_cancel_and_free(void)
{
  Server *srv = server_new();
  WaHttp *http = wa_http_new(wa_loop_glib(), "purple-wabiz/test");
  WaGraph *graph = wa_graph_new(http, srv->base, "T", NULL);
  Result r = {0};
  WaGraphCall *call;
  gint64 until;

  call = wa_graph_get(graph, "a", NULL, graph_cb, &r);
  wa_graph_cancel(call);
  wa_graph_get(graph, "b", NULL, graph_cb, &r);
  g_assert_cmpuint(wa_http_pending(http), ==, 1);
  /* freeing the client with a call in flight: no callback, no crash */
  wa_graph_free(graph);
  wa_http_free(http);
  until = g_get_monotonic_time() + 200 * 1000;
  while (g_get_monotonic_time() < until)
    g_main_context_iteration(NULL, FALSE);
  g_assert_cmpuint(r.done, ==, 0);
  server_free(srv);
}

static void
test_text_message_json(void)
{
  g_autoptr(JsonNode) phone = wa_message_text_new("491701234567", "Hallo *Welt*", FALSE, "wabiz:7");
  g_autoptr(JsonNode) bsuid = wa_message_text_new("US.13491208655302741918", "see https://x.example", TRUE, NULL);
  g_autofree char *a = wa_json_to_string(phone);
  g_autofree char *b = wa_json_to_string(bsuid);

  g_assert_cmpstr(a, ==,
                  "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                  "\"to\":\"+491701234567\",\"type\":\"text\",\"text\":{\"body\":\"Hallo *Welt*\"},"
                  "\"biz_opaque_callback_data\":\"wabiz:7\"}");
  g_assert_cmpstr(b, ==,
                  "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                  "\"recipient\":\"US.13491208655302741918\",\"type\":\"text\","
                  "\"text\":{\"body\":\"see https://x.example\",\"preview_url\":true}}");
}

static void
test_send_result(void)
{
  const char *doc = "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"+5511987654321\","
                    "\"wa_id\":\"551187654321\"}],\"messages\":[{\"id\":\"wamid.A\",\"message_status\":\"accepted\"}]}";
  g_autoptr(JsonNode) root = wa_json_parse_object(doc, strlen(doc), NULL);
  g_autoptr(WaSendResult) r = wa_send_result_from_json(json_node_get_object(root), NULL);
  g_autoptr(JsonNode) empty = wa_json_parse_object("{}", 2, NULL);
  g_autoptr(GError) error = NULL;

  g_assert_cmpstr(r->wamid, ==, "wamid.A");
  g_assert_cmpstr(r->wa_id, ==, "551187654321");
  g_assert_cmpstr(r->input, ==, "+5511987654321");
  g_assert_cmpstr(r->message_status, ==, "accepted");
  g_assert_null(wa_send_result_from_json(json_node_get_object(empty), &error));
  g_assert_nonnull(error);
}

/* ---- outbox ------------------------------------------------------------------- */

typedef SenderFixture Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
  sender_fixture_setup(f, "T", 100);
}

static void
fixture_close(Fixture *f)
{
  sender_fixture_close(f);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
  sender_fixture_teardown(f);
}

static void
enqueue(Fixture *f, const char *to, const char *body)
{
  wa_sender_enqueue_text(f->sender, test_customer(&f->ts, to), to, body, FALSE, NULL, NULL);
}

static const char *
body_text(Seen *s)
{
  static char buf[256];
  g_autoptr(JsonNode) root = wa_json_parse_object(s->body, strlen(s->body), NULL);
  JsonObject *text = wa_json_get_object(json_node_get_object(root), "text");
  g_strlcpy(buf, wa_json_get_string(text, "body"), sizeof(buf));
  return buf;
}

static const char *
callback_data_of(Seen *s)
{
  static char buf[64];
  g_autoptr(JsonNode) root = wa_json_parse_object(s->body, strlen(s->body), NULL);
  g_strlcpy(buf, wa_json_get_string(json_node_get_object(root), "biz_opaque_callback_data"), sizeof(buf));
  return buf;
}

static void
test_order_and_one_in_flight(Fixture *f, gconstpointer data)
{
  g_autoptr(GPtrArray) sent = NULL;

  enqueue(f, "491", "a1");
  enqueue(f, "491", "a2");
  enqueue(f, "491", "a3");
  test_wait_count(f->log.sent, 3, WAIT_S);
  g_assert_cmpuint(f->srv->seen->len, ==, 3);
  g_assert_cmpuint(f->srv->max_in_flight, ==, 1);
  g_assert_cmpstr(body_text(seen(f->srv, 0)), ==, "a1");
  g_assert_cmpstr(body_text(seen(f->srv, 1)), ==, "a2");
  g_assert_cmpstr(body_text(seen(f->srv, 2)), ==, "a3");
  g_assert_cmpstr(seen(f->srv, 0)->path, ==, "/v25.0/555/messages");
  g_assert_cmpstr(seen(f->srv, 0)->content_type, ==, "application/json");
  g_assert_cmpuint(wa_sender_total_waiting(f->sender), ==, 0);
  /* one connection, reused for the sequential sends */
  g_assert_cmpuint(seen(f->srv, 0)->remote_port, ==, seen(f->srv, 1)->remote_port);
  g_assert_cmpuint(seen(f->srv, 1)->remote_port, ==, seen(f->srv, 2)->remote_port);
  /* the store has them sent, with their wamids, and the callback data
   * carries each entry's outbox id */
  store_settle(&f->ts);
  sent = test_outbox(&f->ts, WA_STORE_OUTBOX_MASK(WA_STORE_OUTBOX_SENT));
  g_assert_cmpuint(sent->len, ==, 3);
  for (guint i = 0; i < 3; i++) {
    WaStoreOutbox *e = g_ptr_array_index(sent, i);
    g_autofree char *cb = wa_sender_callback_data(e->id);
    g_autofree char *wamid = g_strdup_printf("wamid.T%u", i + 1);

    g_assert_cmpstr(callback_data_of(seen(f->srv, i)), ==, cb);
    g_assert_cmpstr(e->wamid, ==, wamid);
    g_assert_cmpuint(e->attempts, ==, 1);
  }
}

/* What the store said about the entry while its request was at the server. */
static void
on_seen_state(GPtrArray *entries, const GError *error, gpointer data)
{
  g_string_append_printf(data, "%u:%d ", entries != NULL ? entries->len : 0,
                         entries != NULL && entries->len > 0 ? (int) ((WaStoreOutbox *) entries->pdata[0])->state : -1);
}

static void
test_stored_before_http(Fixture *f, gconstpointer data)
{
  g_autoptr(GString) during = g_string_new(NULL);
  g_auto(StoreWait) w = {0};

  /* queued: committed before the callback, nothing sent yet */
  wa_sender_pause(f->sender);
  wa_sender_enqueue_text(f->sender, test_customer(&f->ts, "491"), "491", "first", FALSE, on_outbox, &w);
  test_wait_count(w.done, 1, WAIT_S);
  g_assert_no_error(w.error);
  g_assert_cmpint(w.entry->state, ==, WA_STORE_OUTBOX_QUEUED);
  g_assert_cmpuint(f->srv->seen->len, ==, 0);
  g_assert_cmpint(test_state_of(&f->ts, "first"), ==, WA_STORE_OUTBOX_QUEUED);
  /* while the request is at the server, the entry is SENDING in the store */
  server_script(f->srv, 200, "{\"messages\":[{\"id\":\"wamid.SLOW\"}]}");
  ((Scripted *) g_queue_peek_tail(&f->srv->script))->delay_ms = 300;
  wa_sender_resume(f->sender);
  test_wait_until(f->srv->seen->len > 0, WAIT_S);
  wa_store_outbox_list(f->ts.store, ALL_STATES, on_seen_state, during);
  test_wait_count(f->log.sent, 1, WAIT_S);
  store_settle(&f->ts);
  g_assert_cmpstr(during->str, ==, "1:1 ");
  g_assert_cmpint(test_state_of(&f->ts, "first"), ==, WA_STORE_OUTBOX_SENT);
}

static void
test_customers_in_parallel(Fixture *f, gconstpointer data)
{
  enqueue(f, "491", "x");
  enqueue(f, "492", "y");
  test_wait_count(f->log.sent, 2, WAIT_S);
  g_assert_cmpuint(f->srv->max_in_flight, ==, 2);
}

static void
test_rate_limit_retried(Fixture *f, gconstpointer data)
{
  g_autoptr(GPtrArray) all = NULL;

  server_script(f->srv, 400, "{\"error\":{\"message\":\"(#130429) Rate limit hit\",\"code\":130429}}");
  enqueue(f, "491", "hello");
  test_wait_count(f->log.sent, 1, WAIT_S);
  g_assert_cmpuint(f->log.waiting, ==, 1);
  g_assert_cmpuint(f->srv->seen->len, ==, 2);
  g_assert_cmpstr(body_text(seen(f->srv, 1)), ==, "hello");
  store_settle(&f->ts);
  all = test_outbox(&f->ts, ALL_STATES);
  g_assert_cmpuint(all->len, ==, 1);
  g_assert_cmpint(((WaStoreOutbox *) all->pdata[0])->state, ==, WA_STORE_OUTBOX_SENT);
  g_assert_cmpuint(((WaStoreOutbox *) all->pdata[0])->attempts, ==, 2);
}

static void
test_server_error_not_repeated(Fixture *f, gconstpointer data)
{
  server_script(f->srv, 500, "{\"error\":{\"message\":\"(#1) unknown\",\"code\":1}}");
  enqueue(f, "491", "m1");
  enqueue(f, "491", "m2");
  test_wait_count(f->log.events, 2, WAIT_S);
  /* m1 may have been accepted before the error: it is not sent again */
  g_assert_cmpstr(f->log.log->str, ==, "uncertain:491 sent:491 ");
  g_assert_cmpuint(f->srv->seen->len, ==, 2);
  store_settle(&f->ts);
  g_assert_cmpint(test_state_of(&f->ts, "m1"), ==, WA_STORE_OUTBOX_UNCERTAIN);
  g_assert_cmpint(test_state_of(&f->ts, "m2"), ==, WA_STORE_OUTBOX_SENT);
}

static void
test_dropped_connection_not_repeated(Fixture *f, gconstpointer data)
{
  g_autoptr(GPtrArray) uncertain = NULL;
  g_auto(StoreWait) w = {0};

  server_script_drop(f->srv);
  enqueue(f, "491", "m1");
  test_wait_count(f->log.events, 1, WAIT_S);
  g_assert_cmpuint(f->log.uncertain, ==, 1);
  g_assert_cmpuint(f->srv->seen->len, ==, 1);
  store_settle(&f->ts);
  uncertain = test_outbox(&f->ts, WA_STORE_OUTBOX_MASK(WA_STORE_OUTBOX_UNCERTAIN));
  g_assert_cmpuint(uncertain->len, ==, 1);
  g_assert_nonnull(((WaStoreOutbox *) uncertain->pdata[0])->error);
  /* the agent decides to send it again */
  wa_sender_resend(f->sender, uncertain->pdata[0], "491", on_outbox, &w);
  test_wait_count(f->log.sent, 1, WAIT_S);
  g_assert_no_error(w.error);
  g_assert_cmpuint(f->srv->seen->len, ==, 2);
  g_assert_cmpstr(body_text(seen(f->srv, 1)), ==, "m1");
  store_settle(&f->ts);
  g_assert_cmpint(test_state_of(&f->ts, "m1"), ==, WA_STORE_OUTBOX_SENT);
}

static void
test_window_closed_failed(Fixture *f, gconstpointer data)
{
  server_script(f->srv, 400, "{\"error\":{\"message\":\"(#131047) Re-engagement message\",\"code\":131047}}");
  enqueue(f, "491", "late");
  enqueue(f, "491", "next");
  test_wait_count(f->log.events, 2, WAIT_S);
  g_assert_cmpstr(f->log.log->str, ==, "failed:131047 sent:491 ");
  store_settle(&f->ts);
  g_assert_cmpint(test_state_of(&f->ts, "late"), ==, WA_STORE_OUTBOX_FAILED);
}

static void
test_auth_pauses(Fixture *f, gconstpointer data)
{
  server_script(f->srv, 401, "{\"error\":{\"message\":\"Invalid OAuth access token\",\"code\":190}}");
  enqueue(f, "491", "kept");
  test_wait_count(f->log.auth, 1, WAIT_S);
  g_assert_cmpuint(wa_sender_waiting(f->sender, "491"), ==, 1);
  store_settle(&f->ts);
  g_assert_cmpint(test_state_of(&f->ts, "kept"), ==, WA_STORE_OUTBOX_QUEUED);
  /* paused: a new message waits too */
  enqueue(f, "492", "also");
  store_settle(&f->ts);
  g_assert_cmpuint(f->srv->seen->len, ==, 1);
  wa_sender_resume(f->sender);
  test_wait_count(f->log.sent, 2, WAIT_S);
  g_assert_cmpuint(f->srv->seen->len, ==, 3);
}

static void
collect(const char *to, guint waiting, gboolean in_flight, gpointer data)
{
  g_string_append_printf(data, "%s:%u:%d ", to, waiting, in_flight);
}

static void
test_pause_and_foreach(Fixture *f, gconstpointer data)
{
  g_autoptr(GString) seen_now = g_string_new(NULL);

  wa_sender_pause(f->sender);
  enqueue(f, "491", "held");
  enqueue(f, "491", "held too");
  store_settle(&f->ts);
  wa_sender_foreach(f->sender, collect, seen_now);
  g_assert_cmpstr(seen_now->str, ==, "491:2:0 ");
  g_assert_cmpuint(wa_sender_in_flight(f->sender), ==, 0);
  g_assert_cmpuint(f->srv->seen->len, ==, 0);
  wa_sender_resume(f->sender);
  test_wait_until(wa_sender_in_flight(f->sender) > 0, WAIT_S);
  g_string_truncate(seen_now, 0);
  wa_sender_foreach(f->sender, collect, seen_now);
  g_assert_cmpstr(seen_now->str, ==, "491:2:1 ");
  /* pausing with a request in flight lets it finish but starts no other */
  wa_sender_pause(f->sender);
  test_wait_count(f->log.sent, 1, WAIT_S);
  store_settle(&f->ts);
  g_assert_cmpuint(f->srv->seen->len, ==, 1);
  g_assert_cmpuint(wa_sender_total_waiting(f->sender), ==, 1);
  g_assert_cmpuint(wa_sender_in_flight(f->sender), ==, 0);
}

static void
on_status_applied(const WaStoreStatusResult *result, const GError *error, gpointer data)
{
  g_assert_true(result->outbox_resolved);
  on_store_done(error, data);
}

/* An entry resolved while it waited (its status came: it went after all) is
 * not sent; the outbox says it skipped it and sends the next one. */
static void
test_resolved_while_waiting_is_skipped(Fixture *f, gconstpointer data)
{
  g_auto(StoreWait) queued = {0};
  g_auto(StoreWait) applied = {0};
  WaStoreStatusUpdate update = {.wamid = "wamid.AFTER", .status = WA_STORE_STATUS_DELIVERED, .timestamp = 1};

  wa_sender_pause(f->sender);
  wa_sender_enqueue_text(f->sender, test_customer(&f->ts, "491"), "491", "went after all", FALSE, on_outbox, &queued);
  test_wait_count(queued.done, 1, WAIT_S);
  g_assert_no_error(queued.error);
  enqueue(f, "491", "next");
  update.outbox_id = queued.entry->id;
  wa_store_message_status(f->ts.store, &update, on_status_applied, &applied);
  test_wait_count(applied.done, 1, WAIT_S);
  g_assert_no_error(applied.error);
  wa_sender_resume(f->sender);
  test_wait_count(f->log.sent, 1, WAIT_S);
  g_assert_cmpstr(f->log.log->str, ==, "skipped:491 sent:491 ");
  g_assert_cmpuint(f->srv->seen->len, ==, 1);
  g_assert_cmpstr(body_text(seen(f->srv, 0)), ==, "next");
}

static void
on_restored(guint restored, const GError *error, gpointer data)
{
  g_assert_no_error(error);
  *(guint *) data = restored + 1;
}

/* Queued messages survive a sign-off: a new sender sends them in order,
 * before (and not together with) what is queued while they are read. */
static void
test_restore_after_restart(Fixture *f, gconstpointer data)
{
  guint restored = 0;

  wa_sender_pause(f->sender);
  enqueue(f, "491", "r1");
  enqueue(f, "492", "other");
  enqueue(f, "491", "r2");
  store_settle(&f->ts);
  fixture_close(f);
  g_assert_cmpuint(f->srv->seen->len, ==, 0);

  test_store_open(&f->ts);
  f->sender = wa_sender_new(f->graph, f->ts.store, wa_loop_glib(), "555", &events, &f->log);
  wa_sender_restore(f->sender, on_restored, &restored);
  enqueue(f, "491", "r3"); /* written while the restore reads */
  test_wait_count(restored, 1, WAIT_S);
  g_assert_cmpuint(restored, ==, 3 + 1);
  test_wait_count(f->log.sent, 4, WAIT_S);
  g_assert_cmpuint(f->srv->seen->len, ==, 4);
  {
    g_autoptr(GString) order = g_string_new(NULL);
    for (guint i = 0; i < 4; i++)
      if (strstr(seen(f->srv, i)->body, "\"+491\"") != NULL)
        g_string_append_printf(order, "%s ", body_text(seen(f->srv, i)));
    g_assert_cmpstr(order->str, ==, "r1 r2 r3 ");
  }
}

static void
note_id(guint64 id, gpointer data)
{
  g_array_append_val((GArray *) data, id);
}

/* Detaching while an entry's SENDING is being recorded starts no request and
 * names the entry, so that it can be queued again. */
static void
test_detach_while_marking(Fixture *f, gconstpointer data)
{
  g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(guint64));
  g_auto(StoreWait) w = {0};

  wa_sender_enqueue_text(f->sender, test_customer(&f->ts, "491"), "491", "cut", FALSE, on_outbox, &w);
  test_wait_count(w.done, 1, WAIT_S);
  /* the SENDING update is queued now, its answer not yet read */
  wa_sender_detach_store(f->sender, note_id, ids);
  test_store_close(&f->ts);
  g_assert_cmpuint(ids->len, ==, 1);
  g_assert_cmpuint(g_array_index(ids, guint64, 0), ==, w.entry->id);
  for (int i = 0; i < 20; i++)
    g_main_context_iteration(NULL, FALSE);
  g_assert_cmpuint(f->srv->seen->len, ==, 0);
  g_clear_pointer(&f->sender, wa_sender_free);
}

/* An entry SENDING in the store for @to (as a campaign begins one with start). */
static WaStoreOutbox *
sending_entry(Fixture *f, const char *to, const char *body)
{
  WaStoreOutboxChange change = {.state = WA_STORE_OUTBOX_SENDING};
  g_auto(StoreWait) queued = {0};
  g_auto(StoreWait) w = {0};

  wa_store_outbox_enqueue(f->ts.store, test_customer(&f->ts, to), "text", body, NULL, FALSE, on_outbox, &queued);
  test_wait_count(queued.done, 1, WAIT_S);
  g_assert_no_error(queued.error);
  wa_store_outbox_update(f->ts.store, queued.entry->id, &change, on_outbox, &w);
  test_wait_count(w.done, 1, WAIT_S);
  g_assert_no_error(w.error);
  g_assert_cmpint(w.entry->state, ==, WA_STORE_OUTBOX_SENDING);
  return g_steal_pointer(&w.entry);
}

/* An entry submitted SENDING is sent without recording SENDING again (the
 * store would refuse it and the send be skipped); one that has not started
 * when the store is detached is named, so that it can be queued again. */
static void
test_submitted_sending_not_recorded_again(Fixture *f, gconstpointer data)
{
  g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(guint64));
  g_autoptr(WaStoreOutbox) a = sending_entry(f, "491", "begun a");
  g_autoptr(WaStoreOutbox) b = sending_entry(f, "492", "begun b");

  wa_sender_submit(f->sender, a, "491");
  test_wait_count(f->log.sent, 1, WAIT_S);
  store_settle(&f->ts);
  g_assert_cmpuint(f->srv->seen->len, ==, 1);
  g_assert_cmpint(test_state_of(&f->ts, "begun a"), ==, WA_STORE_OUTBOX_SENT);
  wa_sender_pause(f->sender);
  wa_sender_submit(f->sender, b, "492");
  wa_sender_detach_store(f->sender, note_id, ids);
  test_store_close(&f->ts);
  g_assert_cmpuint(ids->len, ==, 1);
  g_assert_cmpuint(g_array_index(ids, guint64, 0), ==, b->id);
  g_assert_cmpuint(f->srv->seen->len, ==, 1);
  g_clear_pointer(&f->sender, wa_sender_free);
}

static void
test_unreachable_retried(void)
{
  guint16 port;
  GSocket *refusing = refusing_socket(&port);
  g_autofree char *base = g_strdup_printf("http://127.0.0.1:%u/v25.0", port);
  WaHttp *http = wa_http_new(wa_loop_glib(), "purple-wabiz/test");
  WaGraph *graph = wa_graph_new(http, base, "T", NULL);
  SenderLog log = {0};
  WaSenderConfig config = {.backoff_base_ms = 5, .backoff_max_ms = 20};
  TestStore ts = {0};
  WaSender *sender;

  log.log = g_string_new(NULL);
  test_store_open(&ts);
  sender = wa_sender_new(graph, ts.store, wa_loop_glib(), "555", &events, &log);
  wa_sender_set_config(sender, &config);
  wa_sender_enqueue_text(sender, test_customer(&ts, "491"), "491", "queued", FALSE, NULL, NULL);
  test_wait_count(log.waiting, 3, WAIT_S);
  /* never sent, never given up: still queued, nothing reported lost */
  g_assert_cmpuint(log.events, ==, 0);
  g_assert_cmpuint(wa_sender_waiting(sender, "491"), ==, 1);
  wa_sender_detach_store(sender, NULL, NULL);
  test_store_close(&ts);
  test_store_open(&ts);
  /* after a restart it is still queued (never sent: not uncertain) */
  g_assert_cmpint(test_state_of(&ts, "queued"), ==, WA_STORE_OUTBOX_QUEUED);
  wa_sender_free(sender);
  test_store_free(&ts);
  wa_graph_free(graph);
  wa_http_free(http);
  g_string_free(log.log, TRUE);
  g_object_unref(refusing);
}

/* ---- the shared wait (test-util.h) ------------------------------------------------- */

static gboolean
count_up(gpointer data)
{
  (*(guint *) data)++;
  return G_SOURCE_CONTINUE;
}

/* Waits end when the condition holds, on the default context or another. */
static void
test_wait_until_holds(void)
{
  g_autoptr(GMainContext) context = g_main_context_new();
  g_autoptr(GSource) tick = g_timeout_source_new(10);
  guint ticks = 0;
  guint id = g_timeout_add(10, count_up, &ticks);

  test_wait_count(ticks, 3, WAIT_S);
  g_assert_cmpuint(ticks, ==, 3);
  g_source_remove(id);
  ticks = 0;
  g_source_set_callback(tick, count_up, &ticks, NULL);
  g_source_attach(tick, context);
  test_wait_until_in(context, ticks == 2, WAIT_S);
  g_source_destroy(tick);
}

/* A wait on a loop with nothing left to run fails at its deadline, naming
 * what it waited for (and how far a counter got) and where, instead of
 * blocking until meson's timeout; @data: "count" or "until". */
static void
test_wait_fails_at_deadline(gconstpointer data)
{
  gboolean count = g_str_equal(data, "count");

  if (g_test_subprocess()) {
    g_autoptr(GMainContext) context = g_main_context_new();
    guint never = 0;

    if (count)
      test_wait_count(never, 2, 0.2);
    else
      test_wait_until_in(context, never == 2, 0.2);
    return;
  }
  g_test_trap_subprocess(NULL, (guint64) (WAIT_S * test_timeout_factor() * G_USEC_PER_SEC), 0);
  g_test_trap_assert_failed();
  g_test_trap_assert_stderr(
    count ? "*test-graph.c:*test_wait_fails_at_deadline: timed out after * s waiting for never to reach 2 (it is 0)\n*"
          : "*test-graph.c:*test_wait_fails_at_deadline: timed out after * s waiting for never == 2\n*");
}

static void
test_callback_data(void)
{
  g_autofree char *d = wa_sender_callback_data(42);

  g_assert_cmpstr(d, ==, "wabiz:42");
  g_assert_cmpuint(wa_sender_parse_callback_data(d), ==, 42);
  g_assert_cmpuint(wa_sender_parse_callback_data("other:42"), ==, 0);
  g_assert_cmpuint(wa_sender_parse_callback_data("wabiz:"), ==, 0);
  g_assert_cmpuint(wa_sender_parse_callback_data("wabiz:4x"), ==, 0);
  g_assert_cmpuint(wa_sender_parse_callback_data(NULL), ==, 0);
}

/* ---- read receipts ---------------------------------------------------------- */

static void
test_read_message_json(void)
{
  g_autoptr(JsonNode) plain = wa_message_read_new("wamid.IN1", FALSE);
  g_autoptr(JsonNode) typing = wa_message_read_new("wamid.IN2", TRUE);
  g_autofree char *a = json_to_string(plain, FALSE);
  g_autofree char *b = json_to_string(typing, FALSE);

  g_assert_cmpstr(a, ==, "{\"messaging_product\":\"whatsapp\",\"status\":\"read\",\"message_id\":\"wamid.IN1\"}");
  g_assert_cmpstr(b, ==,
                  "{\"messaging_product\":\"whatsapp\",\"status\":\"read\",\"message_id\":\"wamid.IN2\","
                  "\"typing_indicator\":{\"type\":\"text\"}}");
}

/* A receipt neither waits for a text in flight nor holds one up. */
static void
test_read_beside_text(Fixture *f, gconstpointer data)
{
  server_script(f->srv, 200, "{\"messages\":[{\"id\":\"wamid.SLOW\"}]}");
  ((Scripted *) g_queue_peek_tail(&f->srv->script))->delay_ms = 2000;
  enqueue(f, "491", "slow text");
  test_wait_until(f->srv->seen->len == 1, WAIT_S);
  wa_sender_mark_read(f->sender, "491", "wamid.IN1", FALSE);
  test_wait_count(f->log.reads, 1, WAIT_S);
  g_assert_cmpuint(f->log.sent, ==, 0); /* the text is still at the server */
  g_assert_cmpstr(f->log.log->str, ==, "read:491:wamid.IN1 ");
  g_assert_nonnull(strstr(seen(f->srv, 1)->body, "\"status\":\"read\""));
  g_assert_cmpstr(seen(f->srv, 1)->path, ==, "/v25.0/555/messages");
  test_wait_count(f->log.sent, 1, WAIT_S);
  g_assert_false(wa_sender_read_waiting(f->sender, "491"));
}

/* One receipt per customer at a time: those asked for meanwhile collapse
 * into one for the newest message, keeping a typing request. */
static void
test_read_coalesced(Fixture *f, gconstpointer data)
{
  server_script(f->srv, 200, "{\"success\":true}");
  ((Scripted *) g_queue_peek_tail(&f->srv->script))->delay_ms = 300;
  wa_sender_mark_read(f->sender, "491", "wamid.A", FALSE);
  wa_sender_mark_read(f->sender, "491", "wamid.B", TRUE);
  wa_sender_mark_read(f->sender, "491", "wamid.C", FALSE);
  g_assert_true(wa_sender_read_waiting(f->sender, "491")); /* B and C, behind A */
  test_wait_count(f->log.reads, 2, WAIT_S);
  g_assert_cmpstr(f->log.log->str, ==, "read:491:wamid.A read:491:wamid.C+typing ");
  g_assert_cmpuint(f->srv->seen->len, ==, 2);
  g_assert_nonnull(strstr(seen(f->srv, 1)->body, "\"typing_indicator\":{\"type\":\"text\"}"));
  g_assert_false(wa_sender_read_waiting(f->sender, "491"));
}

/* Paced like texts: a paused outbox, or a customer's queue backing off after
 * a rate limit, holds receipts too; an error is reported, not retried. */
static void
test_read_paced(Fixture *f, gconstpointer data)
{
  WaSenderConfig config = {.backoff_base_ms = 2000, .backoff_max_ms = 2000};

  wa_sender_pause(f->sender);
  wa_sender_mark_read(f->sender, "491", "wamid.P", FALSE);
  g_assert_true(wa_sender_read_waiting(f->sender, "491"));
  g_assert_cmpuint(f->srv->seen->len, ==, 0);
  wa_sender_resume(f->sender);
  test_wait_count(f->log.reads, 1, WAIT_S);

  wa_sender_set_config(f->sender, &config);
  server_script(f->srv, 400, "{\"error\":{\"message\":\"(#131056) Pair rate limit hit\",\"code\":131056}}");
  enqueue(f, "492", "limited");
  test_wait_count(f->log.waiting, 1, WAIT_S);
  wa_sender_mark_read(f->sender, "492", "wamid.Q", FALSE);
  g_assert_true(wa_sender_read_waiting(f->sender, "492")); /* waits for the backoff */
  test_wait_count(f->log.reads, 2, WAIT_S);
  test_wait_count(f->log.sent, 1, WAIT_S);

  server_script(f->srv, 400, "{\"error\":{\"message\":\"(#131009) Parameter value is not valid\",\"code\":131009}}");
  wa_sender_mark_read(f->sender, "493", "wamid.OLD", FALSE);
  test_wait_count(f->log.reads, 3, WAIT_S);
  g_assert_nonnull(strstr(f->log.log->str, "read:493:wamid.OLD error:131009 "));
  g_assert_false(wa_sender_read_waiting(f->sender, "493"));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/graph/base-url", test_base_url);
  g_test_add_func("/graph/phone-number", test_phone_number);
  g_test_add_func("/graph/network-failures", test_network_failures);
  g_test_add_func("/graph/proxy-used", test_proxy_used);
  g_test_add_func("/graph/loopback-bypasses-proxy", test_loopback_bypasses_proxy);
  g_test_add_func("/graph/cancel-and-free", test_cancel_and_free);
  g_test_add_func("/graph/closed-keepalive-repeated", test_closed_keepalive_repeated);
  g_test_add_func("/graph/text-message-json", test_text_message_json);
  g_test_add_func("/graph/send-result", test_send_result);
  g_test_add_func("/sender/callback-data", test_callback_data);
  g_test_add_func("/wait/until-holds", test_wait_until_holds);
  g_test_add_data_func("/wait/count-fails-at-deadline", "count", test_wait_fails_at_deadline);
  g_test_add_data_func("/wait/until-fails-at-deadline", "until", test_wait_fails_at_deadline);
  g_test_add_func("/sender/unreachable-retried", test_unreachable_retried);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD("/sender/order-one-in-flight", test_order_and_one_in_flight);
  ADD("/sender/customers-in-parallel", test_customers_in_parallel);
  ADD("/sender/rate-limit-retried", test_rate_limit_retried);
  ADD("/sender/server-error-not-repeated", test_server_error_not_repeated);
  ADD("/sender/dropped-connection-not-repeated", test_dropped_connection_not_repeated);
  ADD("/sender/window-closed-failed", test_window_closed_failed);
  ADD("/sender/auth-pauses", test_auth_pauses);
  ADD("/sender/pause-and-foreach", test_pause_and_foreach);
  ADD("/sender/resolved-while-waiting-is-skipped", test_resolved_while_waiting_is_skipped);
  ADD("/sender/stored-before-http", test_stored_before_http);
  ADD("/sender/submitted-sending-not-recorded-again", test_submitted_sending_not_recorded_again);
  ADD("/sender/restore-after-restart", test_restore_after_restart);
  ADD("/sender/detach-while-marking", test_detach_while_marking);
  g_test_add_func("/graph/read-message-json", test_read_message_json);
  ADD("/sender/read-beside-text", test_read_beside_text);
  ADD("/sender/read-coalesced", test_read_coalesced);
  ADD("/sender/read-paced", test_read_paced);
  return g_test_run();
}
