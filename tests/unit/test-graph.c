/* test-graph.c: WaHttp, WaGraph and the outbox against an in-process libsoup
 * server on loopback: what goes over the wire (token, User-Agent, exact JSON),
 * how answers and failures are classified, and the outbox's retry rules. */
#include <libsoup/soup.h>
#include <string.h>

#include "wa-graph.h"
#include "wa-json.h"
#include "wa-sender.h"

/* ---- a scripted server ------------------------------------------------------ */

typedef struct {
  guint status;
  char *body;
  guint delay_ms;
  gboolean drop; /* close the connection without answering */
} Scripted;

typedef struct {
  char *method;
  char *path;
  char *query;
  char *auth;
  char *user_agent;
  char *content_type;
  char *body;
  guint16 remote_port;
} Seen;

typedef struct {
  SoupServer *server;
  char *base;           /* http://127.0.0.1:PORT/v25.0 */
  GQueue script;        /* Scripted*; empty = 200 with a fresh wamid */
  GPtrArray *seen;      /* Seen* */
  guint in_flight;
  guint max_in_flight;
  guint wamid_counter;
} Server;

static void
seen_free(gpointer p)
{
  Seen *s = p;
  g_free(s->method);
  g_free(s->path);
  g_free(s->query);
  g_free(s->auth);
  g_free(s->user_agent);
  g_free(s->content_type);
  g_free(s->body);
  g_free(s);
}

typedef struct {
  Server *srv;
  SoupServerMessage *msg;
  Scripted *sc;
} Delayed;

static void
answer(Server *srv, SoupServerMessage *msg, Scripted *sc)
{
  char *body;

  if (sc != NULL && sc->drop) {
    GIOStream *stream = soup_server_message_steal_connection(msg);
    g_io_stream_close(stream, NULL, NULL);
    g_object_unref(stream);
    srv->in_flight--;
    return;
  }
  if (sc != NULL) {
    body = g_strdup(sc->body);
    soup_server_message_set_status(msg, sc->status, NULL);
  } else {
    body = g_strdup_printf("{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"x\",\"wa_id\":\"x\"}],"
                           "\"messages\":[{\"id\":\"wamid.T%u\"}]}", ++srv->wamid_counter);
    soup_server_message_set_status(msg, 200, NULL);
  }
  soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_TAKE, body, strlen(body));
  srv->in_flight--;
}

static gboolean
delayed_answer(gpointer data)
{
  Delayed *d = data;

  answer(d->srv, d->msg, d->sc);
  if (!(d->sc != NULL && d->sc->drop))
    soup_server_message_unpause(d->msg);
  if (d->sc != NULL) {
    g_free(d->sc->body);
    g_free(d->sc);
  }
  g_object_unref(d->msg);
  g_free(d);
  return G_SOURCE_REMOVE;
}

static void
handler(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer data)
{
  Server *srv = data;
  Seen *s = g_new0(Seen, 1);
  SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
  SoupMessageBody *body = soup_server_message_get_request_body(msg);
  GUri *uri = soup_server_message_get_uri(msg);
  Scripted *sc = g_queue_pop_head(&srv->script);
  Delayed *d;

  s->method = g_strdup(soup_server_message_get_method(msg));
  s->path = g_strdup(path);
  s->query = g_strdup(g_uri_get_query(uri));
  s->auth = g_strdup(soup_message_headers_get_one(h, "Authorization"));
  s->user_agent = g_strdup(soup_message_headers_get_one(h, "User-Agent"));
  s->content_type = g_strdup(soup_message_headers_get_one(h, "Content-Type"));
  s->body = g_strndup(body->data, body->length);
  s->remote_port = g_inet_socket_address_get_port(
    G_INET_SOCKET_ADDRESS(soup_server_message_get_remote_address(msg)));
  g_ptr_array_add(srv->seen, s);

  srv->in_flight++;
  srv->max_in_flight = MAX(srv->max_in_flight, srv->in_flight);
  d = g_new0(Delayed, 1);
  d->srv = srv;
  d->msg = g_object_ref(msg);
  d->sc = sc;
  soup_server_message_pause(msg);
  /* answer from the loop, later, so that requests can overlap */
  g_timeout_add(sc != NULL ? sc->delay_ms : 20, delayed_answer, d);
}

static Server *
server_new(void)
{
  Server *srv = g_new0(Server, 1);
  GSList *uris;
  GError *error = NULL;
  GUri *uri;

  srv->server = soup_server_new(NULL, NULL);
  srv->seen = g_ptr_array_new_with_free_func(seen_free);
  g_queue_init(&srv->script);
  soup_server_add_handler(srv->server, NULL, handler, srv, NULL);
  g_assert_true(soup_server_listen_local(srv->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  g_assert_no_error(error);
  uris = soup_server_get_uris(srv->server);
  uri = uris->data;
  srv->base = g_strdup_printf("http://127.0.0.1:%d/v25.0", g_uri_get_port(uri));
  g_slist_free_full(uris, (GDestroyNotify) g_uri_unref);
  return srv;
}

static void
server_script(Server *srv, guint status, const char *body)
{
  Scripted *sc = g_new0(Scripted, 1);
  sc->status = status;
  sc->body = g_strdup(body);
  sc->delay_ms = 5;
  g_queue_push_tail(&srv->script, sc);
}

static void
server_script_drop(Server *srv)
{
  Scripted *sc = g_new0(Scripted, 1);
  sc->drop = TRUE;
  sc->body = g_strdup("");
  g_queue_push_tail(&srv->script, sc);
}

static void
server_free(Server *srv)
{
  soup_server_disconnect(srv->server);
  g_object_unref(srv->server);
  g_ptr_array_unref(srv->seen);
  g_free(srv->base);
  g_queue_clear(&srv->script);
  g_free(srv);
}

static Seen *
seen(Server *srv, guint i)
{
  g_assert_cmpuint(i, <, srv->seen->len);
  return g_ptr_array_index(srv->seen, i);
}

/* Runs the loop until *flag becomes non-zero or 10 s pass. */
static void
wait_for(volatile guint *flag, guint want)
{
  gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

  while (*flag < want) {
    if (g_get_monotonic_time() > deadline)
      g_error("timed out waiting (%u of %u)", *flag, want);
    g_main_context_iteration(NULL, TRUE);
  }
}

/* A loopback port that refuses connections for as long as we hold it: bound,
 * never listening. */
static GSocket *
refusing_socket(guint16 *port)
{
  GSocket *sock = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) addr = g_inet_socket_address_new(lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;

  g_assert_true(g_socket_bind(sock, addr, FALSE, NULL));
  bound = g_socket_get_local_address(sock, NULL);
  *port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
  return sock;
}

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
  Result r = { 0 };
  g_autoptr(WaPhoneInfo) info = NULL;

  g_assert_no_error(error);
  server_script(srv, 200, "{\"id\":\"106540352242922\",\"display_phone_number\":\"+1 555-078-3881\","
                          "\"verified_name\":\"Jaspers Market\",\"quality_rating\":\"GREEN\","
                          "\"throughput\":{\"level\":\"STANDARD\"},\"whatsapp_business_manager_messaging_limit\":\"TIER_2K\"}");
  wa_graph_get_phone_number(graph, "106540352242922", graph_cb, &r);
  wait_for(&r.done, 1);
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
  server_script(srv, 400, "{\"error\":{\"message\":\"Unsupported get request.\",\"type\":\"GraphMethodException\","
                          "\"code\":100,\"error_subcode\":33,\"fbtrace_id\":\"x\"}}");
  wa_graph_get_phone_number(graph, "1", graph_cb, &r);
  wait_for(&r.done, 1);
  g_assert_nonnull(r.error);
  g_assert_cmpint(r.error->code, ==, 100);
  g_assert_cmpint(r.error->subcode, ==, 33);
  g_assert_cmpint(r.error->klass, ==, WA_ERROR_CLASS_NOT_FOUND);
  result_clear(&r);

  /* a redirect is not followed: the answer is an error, the target never asked */
  server_script(srv, 302, "");
  wa_graph_get(graph, "x", NULL, graph_cb, &r);
  wait_for(&r.done, 1);
  g_assert_nonnull(r.error);
  g_assert_cmpint(r.status, ==, 302);
  g_assert_cmpuint(srv->seen->len, ==, 3);
  result_clear(&r);

  /* HTML error page from a proxy */
  server_script(srv, 502, "<html>bad gateway</html>");
  wa_graph_get(graph, "x", NULL, graph_cb, &r);
  wait_for(&r.done, 1);
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
  Result r = { 0 };

  /* connection refused: provably not sent */
  wa_graph_get(graph, "x", NULL, graph_cb, &r);
  wait_for(&r.done, 1);
  g_assert_cmpint(r.error->klass, ==, WA_ERROR_CLASS_NETWORK);
  g_assert_false(r.error->reached);
  result_clear(&r);

  /* connection closed after the request was sent: it may have arrived */
  server_script_drop(srv);
  wa_graph_post_json(graph2, "1/messages", json_from_string("{\"a\":1}", NULL), graph_cb, &r);
  wait_for(&r.done, 1);
  g_assert_cmpint(r.error->klass, ==, WA_ERROR_CLASS_NETWORK);
  g_assert_true(r.error->reached);
  result_clear(&r);

  wa_graph_free(graph2);
  wa_graph_free(graph);
  wa_http_free(http);
  server_free(srv);
  g_object_unref(refusing);
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
  Result r = { 0 };

  /* the API itself refuses connections: only the proxy can answer */
  wa_http_set_proxy(http, proxy_url, NULL, NULL);
  server_script(proxy, 200, "{\"id\":\"1\"}");
  wa_graph_get(graph, "1", NULL, graph_cb, &r);
  wait_for(&r.done, 1);
  g_assert_null(r.error);
  g_assert_cmpuint(proxy->seen->len, ==, 1);
  g_assert_cmpstr(seen(proxy, 0)->path, ==, "/v25.0/1");
  result_clear(&r);

  /* "" means no proxy at all, even if the environment names one */
  g_setenv("http_proxy", proxy_url, TRUE);
  wa_http_set_proxy(http, "", NULL, NULL);
  wa_graph_get(graph, "2", NULL, graph_cb, &r);
  wait_for(&r.done, 1);
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

static void
test_cancel_and_free(void)
{
  Server *srv = server_new();
  WaHttp *http = wa_http_new(wa_loop_glib(), "purple-wabiz/test");
  WaGraph *graph = wa_graph_new(http, srv->base, "T", NULL);
  Result r = { 0 };
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

  g_assert_cmpstr(a, ==, "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
                         "\"to\":\"+491701234567\",\"type\":\"text\",\"text\":{\"body\":\"Hallo *Welt*\"},"
                         "\"biz_opaque_callback_data\":\"wabiz:7\"}");
  g_assert_cmpstr(b, ==, "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\","
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

typedef struct {
  guint sent, failed, uncertain, waiting, auth, events;
  GString *log;
} SenderLog;

static void
s_sent(gpointer user, const char *customer, guint64 id, const WaSendResult *result)
{
  SenderLog *l = user;
  l->sent++;
  l->events++;
  g_string_append_printf(l->log, "sent:%s:%" G_GUINT64_FORMAT " ", customer, id);
}

static void
s_failed(gpointer user, const char *customer, guint64 id, const WaGraphError *error)
{
  SenderLog *l = user;
  l->failed++;
  l->events++;
  g_string_append_printf(l->log, "failed:%" G_GINT64_FORMAT " ", error->code);
}

static void
s_uncertain(gpointer user, const char *customer, guint64 id, const WaGraphError *error)
{
  SenderLog *l = user;
  l->uncertain++;
  l->events++;
  g_string_append_printf(l->log, "uncertain:%" G_GUINT64_FORMAT " ", id);
}

static void
s_waiting(gpointer user, const char *customer, guint waiting, guint retry_ms, const WaGraphError *error)
{
  SenderLog *l = user;
  l->waiting++;
  g_string_append_printf(l->log, "waiting:%u ", waiting);
}

static void
s_auth(gpointer user, const WaGraphError *error)
{
  SenderLog *l = user;
  l->auth++;
  l->events++;
  g_string_append(l->log, "auth ");
}

static const WaSenderEvents events = {
  .sent = s_sent, .failed = s_failed, .uncertain = s_uncertain, .waiting = s_waiting, .auth_failed = s_auth,
};

typedef struct {
  Server *srv;
  WaHttp *http;
  WaGraph *graph;
  WaSender *sender;
  SenderLog log;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
  WaSenderConfig config = { .backoff_base_ms = 10, .backoff_max_ms = 100 };

  f->srv = server_new();
  f->http = wa_http_new(wa_loop_glib(), "purple-wabiz/test");
  f->graph = wa_graph_new(f->http, f->srv->base, "T", NULL);
  f->log.log = g_string_new(NULL);
  f->sender = wa_sender_new(f->graph, wa_loop_glib(), "555", &events, &f->log);
  wa_sender_set_config(f->sender, &config);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
  wa_sender_free(f->sender);
  wa_graph_free(f->graph);
  wa_http_free(f->http);
  server_free(f->srv);
  g_string_free(f->log.log, TRUE);
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

static void
test_order_and_one_in_flight(Fixture *f, gconstpointer data)
{
  wa_sender_enqueue_text(f->sender, "491", "a1", FALSE);
  wa_sender_enqueue_text(f->sender, "491", "a2", FALSE);
  wa_sender_enqueue_text(f->sender, "491", "a3", FALSE);
  g_assert_cmpuint(wa_sender_waiting(f->sender, "491"), ==, 3);
  wait_for(&f->log.sent, 3);
  g_assert_cmpuint(f->srv->seen->len, ==, 3);
  g_assert_cmpuint(f->srv->max_in_flight, ==, 1);
  g_assert_cmpstr(body_text(seen(f->srv, 0)), ==, "a1");
  g_assert_cmpstr(body_text(seen(f->srv, 1)), ==, "a2");
  g_assert_cmpstr(body_text(seen(f->srv, 2)), ==, "a3");
  g_assert_nonnull(strstr(seen(f->srv, 0)->body, "\"biz_opaque_callback_data\":\"wabiz:1\""));
  g_assert_cmpstr(seen(f->srv, 0)->path, ==, "/v25.0/555/messages");
  g_assert_cmpstr(seen(f->srv, 0)->content_type, ==, "application/json");
  g_assert_cmpuint(wa_sender_total_waiting(f->sender), ==, 0);
  /* one connection, reused for the sequential sends */
  g_assert_cmpuint(seen(f->srv, 0)->remote_port, ==, seen(f->srv, 1)->remote_port);
  g_assert_cmpuint(seen(f->srv, 1)->remote_port, ==, seen(f->srv, 2)->remote_port);
}

static void
test_customers_in_parallel(Fixture *f, gconstpointer data)
{
  wa_sender_enqueue_text(f->sender, "491", "x", FALSE);
  wa_sender_enqueue_text(f->sender, "492", "y", FALSE);
  wait_for(&f->log.sent, 2);
  g_assert_cmpuint(f->srv->max_in_flight, ==, 2);
}

static void
test_rate_limit_retried(Fixture *f, gconstpointer data)
{
  server_script(f->srv, 400, "{\"error\":{\"message\":\"(#130429) Rate limit hit\",\"code\":130429}}");
  wa_sender_enqueue_text(f->sender, "491", "hello", FALSE);
  wait_for(&f->log.sent, 1);
  g_assert_cmpuint(f->log.waiting, ==, 1);
  g_assert_cmpuint(f->srv->seen->len, ==, 2);
  g_assert_cmpstr(body_text(seen(f->srv, 1)), ==, "hello");
}

static void
test_server_error_not_repeated(Fixture *f, gconstpointer data)
{
  server_script(f->srv, 500, "{\"error\":{\"message\":\"(#1) unknown\",\"code\":1}}");
  wa_sender_enqueue_text(f->sender, "491", "m1", FALSE);
  wa_sender_enqueue_text(f->sender, "491", "m2", FALSE);
  wait_for(&f->log.events, 2);
  /* m1 may have been accepted before the error: it is not sent again */
  g_assert_cmpstr(f->log.log->str, ==, "uncertain:1 sent:491:2 ");
  g_assert_cmpuint(f->srv->seen->len, ==, 2);
}

static void
test_dropped_connection_not_repeated(Fixture *f, gconstpointer data)
{
  server_script_drop(f->srv);
  wa_sender_enqueue_text(f->sender, "491", "m1", FALSE);
  wait_for(&f->log.events, 1);
  g_assert_cmpuint(f->log.uncertain, ==, 1);
  g_assert_cmpuint(f->srv->seen->len, ==, 1);
}

static void
test_window_closed_failed(Fixture *f, gconstpointer data)
{
  server_script(f->srv, 400, "{\"error\":{\"message\":\"(#131047) Re-engagement message\",\"code\":131047}}");
  wa_sender_enqueue_text(f->sender, "491", "late", FALSE);
  wa_sender_enqueue_text(f->sender, "491", "next", FALSE);
  wait_for(&f->log.events, 2);
  g_assert_cmpstr(f->log.log->str, ==, "failed:131047 sent:491:2 ");
}

static void
test_auth_pauses(Fixture *f, gconstpointer data)
{
  server_script(f->srv, 401, "{\"error\":{\"message\":\"Invalid OAuth access token\",\"code\":190}}");
  wa_sender_enqueue_text(f->sender, "491", "kept", FALSE);
  wait_for(&f->log.auth, 1);
  g_assert_cmpuint(wa_sender_waiting(f->sender, "491"), ==, 1);
  /* paused: a new message waits too */
  wa_sender_enqueue_text(f->sender, "492", "also", FALSE);
  g_assert_cmpuint(f->srv->seen->len, ==, 1);
  wa_sender_resume(f->sender);
  wait_for(&f->log.sent, 2);
  g_assert_cmpuint(f->srv->seen->len, ==, 3);
}

static void
collect(const char *customer, guint waiting, gboolean in_flight, gpointer data)
{
  g_string_append_printf(data, "%s:%u:%d ", customer, waiting, in_flight);
}

static void
test_pause_and_foreach(Fixture *f, gconstpointer data)
{
  g_autoptr(GString) seen_now = g_string_new(NULL);

  wa_sender_pause(f->sender);
  wa_sender_enqueue_text(f->sender, "491", "held", FALSE);
  wa_sender_enqueue_text(f->sender, "491", "held too", FALSE);
  wa_sender_foreach(f->sender, collect, seen_now);
  g_assert_cmpstr(seen_now->str, ==, "491:2:0 ");
  g_assert_cmpuint(wa_sender_in_flight(f->sender), ==, 0);
  g_assert_cmpuint(f->srv->seen->len, ==, 0);
  wa_sender_resume(f->sender);
  g_assert_cmpuint(wa_sender_in_flight(f->sender), ==, 1);
  g_string_truncate(seen_now, 0);
  wa_sender_foreach(f->sender, collect, seen_now);
  g_assert_cmpstr(seen_now->str, ==, "491:2:1 ");
  /* pausing with a request in flight lets it finish but starts no other */
  wa_sender_pause(f->sender);
  wait_for(&f->log.sent, 1);
  g_assert_cmpuint(f->srv->seen->len, ==, 1);
  g_assert_cmpuint(wa_sender_total_waiting(f->sender), ==, 1);
  g_assert_cmpuint(wa_sender_in_flight(f->sender), ==, 0);
}

static void
test_unreachable_retried(void)
{
  guint16 port;
  GSocket *refusing = refusing_socket(&port);
  g_autofree char *base = g_strdup_printf("http://127.0.0.1:%u/v25.0", port);
  WaHttp *http = wa_http_new(wa_loop_glib(), "purple-wabiz/test");
  WaGraph *graph = wa_graph_new(http, base, "T", NULL);
  SenderLog log = { 0 };
  WaSenderConfig config = { .backoff_base_ms = 5, .backoff_max_ms = 20 };
  WaSender *sender;

  log.log = g_string_new(NULL);
  sender = wa_sender_new(graph, wa_loop_glib(), "555", &events, &log);
  wa_sender_set_config(sender, &config);
  wa_sender_enqueue_text(sender, "491", "queued", FALSE);
  wait_for(&log.waiting, 3);
  /* never sent, never given up: still queued, nothing reported lost */
  g_assert_cmpuint(log.events, ==, 0);
  g_assert_cmpuint(wa_sender_waiting(sender, "491"), ==, 1);
  wa_sender_free(sender);
  wa_graph_free(graph);
  wa_http_free(http);
  g_string_free(log.log, TRUE);
  g_object_unref(refusing);
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

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/graph/base-url", test_base_url);
  g_test_add_func("/graph/phone-number", test_phone_number);
  g_test_add_func("/graph/network-failures", test_network_failures);
  g_test_add_func("/graph/proxy-used", test_proxy_used);
  g_test_add_func("/graph/cancel-and-free", test_cancel_and_free);
  g_test_add_func("/graph/text-message-json", test_text_message_json);
  g_test_add_func("/graph/send-result", test_send_result);
  g_test_add_func("/sender/callback-data", test_callback_data);
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
  return g_test_run();
}
