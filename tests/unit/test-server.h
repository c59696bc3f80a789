/* test-server.h: what the WaHttp / WaGraph / WaSender unit tests share
 * (header-only): a scripted libsoup server on loopback that records every
 * request and answers from a queue of scripted answers (or raw bytes, written
 * at a pace, for answers no HTTP library would produce), a port that refuses
 * connections, a real unlocked WaStore for the outbox, and an event log of a
 * WaSender.
 *
 * Must not: sleep (everything waits on the default main context against a
 * deadline), or bind a port it did not get from the kernel. */
#pragma once

#include <libsoup/soup.h>
#include <string.h>

#include "wa-graph.h"
#include "wa-json.h"
#include "wa-sender.h"
#include "wa-store.h"
#include "test-util.h"

/* ---- a scripted server ------------------------------------------------------ */

typedef struct {
  guint status;
  char *body;
  guint delay_ms;
  gboolean drop;      /* close the connection without answering */
  gboolean cut;       /* close it as soon as the request's headers arrived: the
                       * client is still sending its body (a server closing a
                       * kept-alive connection as a request goes out on it) */
  char *content_type; /* NULL: application/json */
  char *location;     /* a Location header, or NULL */
  GPtrArray *raw;     /* GBytes*: when set, the connection is taken from libsoup and
                       * these bytes written instead, one element every raw_interval_ms,
                       * then the connection is closed */
  guint raw_interval_ms;
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
  char *base;      /* http://127.0.0.1:PORT/v25.0 */
  GQueue script;   /* Scripted*; empty = 200 with a fresh wamid */
  GPtrArray *seen; /* Seen* */
  guint in_flight;
  guint max_in_flight;
  guint wamid_counter;
  GList *writers; /* RawWriter* still writing */
} Server;

/* A raw answer being written. */
typedef struct {
  Server *srv;
  GIOStream *stream;
  GPtrArray *chunks;
  guint next;
  guint interval_ms;
  guint timer;
} RawWriter;

static inline void
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

static inline void
scripted_free(Scripted *sc)
{
  if (sc == NULL)
    return;
  g_free(sc->body);
  g_free(sc->content_type);
  g_free(sc->location);
  if (sc->raw != NULL)
    g_ptr_array_unref(sc->raw);
  g_free(sc);
}

typedef struct {
  Server *srv;
  SoupServerMessage *msg;
  Scripted *sc;
} Delayed;

static inline void
raw_writer_free(RawWriter *w)
{
  w->srv->writers = g_list_remove(w->srv->writers, w);
  if (w->timer != 0)
    g_source_remove(w->timer);
  g_io_stream_close(w->stream, NULL, NULL);
  g_object_unref(w->stream);
  g_ptr_array_unref(w->chunks);
  g_free(w);
}

static inline gboolean
raw_writer_step(gpointer data)
{
  RawWriter *w = data;
  GBytes *chunk;
  gsize len;
  const void *bytes;

  w->timer = 0;
  if (w->next >= w->chunks->len) {
    raw_writer_free(w);
    return G_SOURCE_REMOVE;
  }
  chunk = g_ptr_array_index(w->chunks, w->next++);
  bytes = g_bytes_get_data(chunk, &len);
  /* the client may be gone (it timed out): then stop */
  if (!g_output_stream_write_all(g_io_stream_get_output_stream(w->stream), bytes, len, NULL, NULL, NULL)) {
    raw_writer_free(w);
    return G_SOURCE_REMOVE;
  }
  w->timer = g_timeout_add(w->interval_ms, raw_writer_step, w);
  return G_SOURCE_REMOVE;
}

static inline void
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
  if (sc != NULL && sc->raw != NULL) {
    RawWriter *w = g_new0(RawWriter, 1);

    w->srv = srv;
    w->stream = soup_server_message_steal_connection(msg);
    w->chunks = g_ptr_array_ref(sc->raw);
    w->interval_ms = sc->raw_interval_ms;
    srv->writers = g_list_prepend(srv->writers, w);
    srv->in_flight--;
    raw_writer_step(w);
    return;
  }
  if (sc != NULL) {
    body = g_strdup(sc->body);
    soup_server_message_set_status(msg, sc->status, NULL);
    if (sc->location != NULL)
      soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Location", sc->location);
  } else {
    body = g_strdup_printf("{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"x\",\"wa_id\":\"x\"}],"
                           "\"messages\":[{\"id\":\"wamid.T%u\"}]}",
                           ++srv->wamid_counter);
    soup_server_message_set_status(msg, 200, NULL);
  }
  soup_server_message_set_response(msg, sc != NULL && sc->content_type != NULL ? sc->content_type : "application/json",
                                   SOUP_MEMORY_TAKE, body, strlen(body));
  srv->in_flight--;
}

static inline gboolean
delayed_answer(gpointer data)
{
  Delayed *d = data;

  answer(d->srv, d->msg, d->sc);
  if (!(d->sc != NULL && (d->sc->drop || d->sc->raw != NULL)))
    soup_server_message_unpause(d->msg);
  scripted_free(d->sc);
  g_object_unref(d->msg);
  g_free(d);
  return G_SOURCE_REMOVE;
}

static inline void
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
  s->remote_port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(soup_server_message_get_remote_address(msg)));
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

/* The request @msg is cut: recorded without its body, its connection
 * closed before the body is read (unread data makes that a reset). */
static inline void
cut_at_headers(SoupServerMessage *msg, gpointer data)
{
  Server *srv = data;
  Seen *s = g_new0(Seen, 1);
  GIOStream *stream;

  scripted_free(g_queue_pop_head(&srv->script));
  s->method = g_strdup(soup_server_message_get_method(msg));
  s->path = g_strdup(g_uri_get_path(soup_server_message_get_uri(msg)));
  s->body = g_strdup("");
  s->remote_port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(soup_server_message_get_remote_address(msg)));
  g_ptr_array_add(srv->seen, s);
  stream = soup_server_message_steal_connection(msg);
  g_io_stream_close(stream, NULL, NULL);
  g_object_unref(stream);
}

static inline void
request_started(SoupServer *server, SoupServerMessage *msg, gpointer data)
{
  Server *srv = data;
  Scripted *sc = g_queue_peek_head(&srv->script);

  if (sc != NULL && sc->cut)
    g_signal_connect(msg, "got-headers", G_CALLBACK(cut_at_headers), srv);
}

static inline Server *
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
  g_signal_connect(srv->server, "request-started", G_CALLBACK(request_started), srv);
  g_assert_true(soup_server_listen_local(srv->server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  g_assert_no_error(error);
  uris = soup_server_get_uris(srv->server);
  uri = uris->data;
  srv->base = g_strdup_printf("http://127.0.0.1:%d/v25.0", g_uri_get_port(uri));
  g_slist_free_full(uris, (GDestroyNotify) g_uri_unref);
  return srv;
}

/* Queues a scripted answer; returns it for further settings. */
static inline Scripted *
server_script(Server *srv, guint status, const char *body)
{
  Scripted *sc = g_new0(Scripted, 1);
  sc->status = status;
  sc->body = g_strdup(body);
  sc->delay_ms = 5;
  g_queue_push_tail(&srv->script, sc);
  return sc;
}

static inline void
server_script_drop(Server *srv)
{
  Scripted *sc = g_new0(Scripted, 1);
  sc->drop = TRUE;
  sc->body = g_strdup("");
  g_queue_push_tail(&srv->script, sc);
}

/* Queues a request cut while it is sent (see Scripted.cut). */
static inline void
server_script_cut(Server *srv)
{
  Scripted *sc = g_new0(Scripted, 1);
  sc->cut = TRUE;
  g_queue_push_tail(&srv->script, sc);
}

/* Queues a raw answer: the NULL-terminated @chunks, one every @interval_ms. */
static inline Scripted *
server_script_raw(Server *srv, guint interval_ms, const char *const *chunks)
{
  Scripted *sc = server_script(srv, 0, "");

  sc->raw = g_ptr_array_new_with_free_func((GDestroyNotify) g_bytes_unref);
  for (guint i = 0; chunks[i] != NULL; i++)
    g_ptr_array_add(sc->raw, g_bytes_new(chunks[i], strlen(chunks[i])));
  sc->raw_interval_ms = interval_ms;
  return sc;
}

static inline void
server_free(Server *srv)
{
  while (srv->writers != NULL)
    raw_writer_free(srv->writers->data);
  soup_server_disconnect(srv->server);
  g_object_unref(srv->server);
  g_ptr_array_unref(srv->seen);
  g_free(srv->base);
  g_queue_clear_full(&srv->script, (GDestroyNotify) scripted_free);
  g_free(srv);
}

static inline Seen *
seen(Server *srv, guint i)
{
  g_assert_cmpuint(i, <, srv->seen->len);
  return g_ptr_array_index(srv->seen, i);
}

/* Seconds a test_wait_* of these tests waits for an answer. */
#define WAIT_S 10

/* A loopback port that refuses connections for as long as we hold it: bound,
 * never listening. */
static inline GSocket *
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

/* ---- the outbox's events ---------------------------------------------------------- */

typedef struct {
  guint sent, failed, uncertain, skipped, waiting, auth, events, store_failed, reads;
  GString *log;
} SenderLog;

static inline void
s_sent(gpointer user, const char *to, guint64 id, const WaSendResult *result)
{
  SenderLog *l = user;
  l->sent++;
  l->events++;
  g_string_append_printf(l->log, "sent:%s ", to);
}

static inline void
s_failed(gpointer user, const char *to, guint64 id, const WaGraphError *error)
{
  SenderLog *l = user;
  l->failed++;
  l->events++;
  g_string_append_printf(l->log, "failed:%" G_GINT64_FORMAT " ", error->code);
}

static inline void
s_uncertain(gpointer user, const char *to, guint64 id, const WaGraphError *error)
{
  SenderLog *l = user;
  l->uncertain++;
  l->events++;
  g_string_append_printf(l->log, "uncertain:%s ", to);
}

static inline void
s_skipped(gpointer user, const char *to, guint64 id)
{
  SenderLog *l = user;
  l->skipped++;
  l->events++;
  g_string_append_printf(l->log, "skipped:%s ", to);
}

static inline void
s_waiting(gpointer user, const char *to, guint waiting, guint retry_ms, const WaGraphError *error)
{
  SenderLog *l = user;
  l->waiting++;
  g_string_append_printf(l->log, "waiting:%u ", waiting);
}

static inline void
s_auth(gpointer user, const WaGraphError *error)
{
  SenderLog *l = user;
  l->auth++;
  l->events++;
  g_string_append(l->log, "auth ");
}

static inline void
s_store_failed(gpointer user, const GError *error)
{
  SenderLog *l = user;
  l->store_failed++;
  g_string_append(l->log, "store ");
}

static inline void
s_read(gpointer user, const char *to, const char *wamid, gboolean typing, const WaGraphError *error)
{
  SenderLog *l = user;
  l->reads++;
  g_string_append_printf(l->log, "read:%s:%s%s ", to, wamid, typing ? "+typing" : "");
  if (error != NULL)
    g_string_append_printf(l->log, "error:%" G_GINT64_FORMAT " ", error->code);
}

G_GNUC_UNUSED static const WaSenderEvents events = {
  .sent = s_sent,
  .failed = s_failed,
  .uncertain = s_uncertain,
  .skipped = s_skipped,
  .waiting = s_waiting,
  .auth_failed = s_auth,
  .store_failed = s_store_failed,
  .read = s_read,
};

/* ---- a real store for the outbox ---------------------------------------------- */

typedef struct {
  guint done;
  GError *error;
  char *text;
  GPtrArray *list;
  WaStoreOutbox *entry;
} StoreWait;

static inline void
store_wait_clear(StoreWait *w)
{
  g_clear_error(&w->error);
  g_clear_pointer(&w->text, g_free);
  g_clear_pointer(&w->list, g_ptr_array_unref);
  g_clear_pointer(&w->entry, wa_store_outbox_free);
  memset(w, 0, sizeof *w);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(StoreWait, store_wait_clear)

static inline void
on_store_done(const GError *error, gpointer data)
{
  StoreWait *w = data;
  w->error = error != NULL ? g_error_copy(error) : NULL;
  w->done = 1;
}

static inline void
on_store_open(const char *header, const GError *error, gpointer data)
{
  on_store_done(error, data);
}

static inline void
on_customer(const WaStoreCustomerUpdate *update, const GError *error, gpointer data)
{
  StoreWait *w = data;
  w->text = update != NULL ? g_strdup(update->customer->id) : NULL;
  on_store_done(error, data);
}

static inline void
on_outbox_list(GPtrArray *entries, const GError *error, gpointer data)
{
  StoreWait *w = data;
  w->list = entries != NULL ? g_ptr_array_ref(entries) : NULL;
  on_store_done(error, data);
}

static inline void
on_outbox(const WaStoreOutbox *entry, const GError *error, gpointer data)
{
  StoreWait *w = data;
  w->entry = entry != NULL ? wa_store_outbox_copy(entry) : NULL;
  on_store_done(error, data);
}

typedef struct {
  char *dir;
  WaKey *key;
  WaStore *store;
  GHashTable *customers; /* to -> customer id */
} TestStore;

/* Opens (creating on first use) the store in ts->dir and unlocks it. */
static inline void
test_store_open(TestStore *ts)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL;
  g_auto(StoreWait) w = {0};
  g_auto(StoreWait) w2 = {0};
  gboolean created = ts->dir == NULL;

  if (created) {
    ts->dir = g_dir_make_tmp("test-sender-XXXXXX", &error);
    g_assert_no_error(error);
    ts->key = wa_key_new_random(&error);
    g_assert_no_error(error);
    ts->customers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  }
  path = g_build_filename(ts->dir, "store", "account.db", NULL);
  ts->store = wa_store_open(wa_loop_glib(), path, NULL, on_store_open, &w);
  test_wait_count(w.done, 1, WAIT_S);
  g_assert_no_error(w.error);
  wa_store_unlock(ts->store, ts->key, created ? "{\"test-header\":1}" : NULL, on_store_done, &w2);
  test_wait_count(w2.done, 1, WAIT_S);
  g_assert_no_error(w2.error);
}

static inline void
test_store_close(TestStore *ts)
{
  g_clear_pointer(&ts->store, wa_store_close);
}

static inline void
test_store_free(TestStore *ts)
{
  test_store_close(ts);
  test_remove_tree(ts->dir);
  g_free(ts->dir);
  wa_key_free(ts->key);
  g_hash_table_destroy(ts->customers);
}

/* The store's customer id for address @to (created on first use). */
static inline const char *
test_customer(TestStore *ts, const char *to)
{
  g_auto(StoreWait) w = {0};

  if (!g_hash_table_contains(ts->customers, to)) {
    wa_store_customer_ensure(ts->store, to, NULL, NULL, WA_STORE_ENSURE_DEFAULT, on_customer, &w);
    test_wait_count(w.done, 1, WAIT_S);
    g_assert_no_error(w.error);
    g_hash_table_insert(ts->customers, g_strdup(to), g_steal_pointer(&w.text));
  }
  return g_hash_table_lookup(ts->customers, to);
}

/* ---- the outbox against the scripted server -------------------------------------- */

typedef struct {
  Server *srv;
  WaHttp *http;
  WaGraph *graph;
  TestStore ts;
  WaSender *sender;
  SenderLog log;
} SenderFixture;

/* A sender over a fresh store, sending to a new scripted server with @token;
 * retries after 10 ms, at most @backoff_max_ms. */
static inline void
sender_fixture_setup(SenderFixture *f, const char *token, guint backoff_max_ms)
{
  WaSenderConfig config = {.backoff_base_ms = 10, .backoff_max_ms = backoff_max_ms};

  f->srv = server_new();
  f->http = wa_http_new(wa_loop_glib(), "purple-wabiz/test");
  f->graph = wa_graph_new(f->http, f->srv->base, token, NULL);
  f->log.log = g_string_new(NULL);
  test_store_open(&f->ts);
  f->sender = wa_sender_new(f->graph, f->ts.store, wa_loop_glib(), "555", &events, &f->log);
  wa_sender_set_config(f->sender, &config);
}

/* Closes the store as sign-off does: the sender is detached first. */
static inline void
sender_fixture_close(SenderFixture *f)
{
  if (f->sender != NULL)
    wa_sender_detach_store(f->sender, NULL, NULL);
  test_store_close(&f->ts);
  g_clear_pointer(&f->sender, wa_sender_free);
}

static inline void
sender_fixture_teardown(SenderFixture *f)
{
  sender_fixture_close(f);
  test_store_free(&f->ts);
  wa_graph_free(f->graph);
  wa_http_free(f->http);
  server_free(f->srv);
  g_string_free(f->log.log, TRUE);
}

/* Outbox entries in any of @mask, in queue order. */
static inline GPtrArray *
test_outbox(TestStore *ts, guint mask)
{
  g_auto(StoreWait) w = {0};

  wa_store_outbox_list(ts->store, mask, on_outbox_list, &w);
  test_wait_count(w.done, 1, WAIT_S);
  g_assert_no_error(w.error);
  return g_steal_pointer(&w.list);
}

#define ALL_STATES 0x1fu

/* The state of the entry whose body is @body. */
static inline int
test_state_of(TestStore *ts, const char *body)
{
  g_autoptr(GPtrArray) all = test_outbox(ts, ALL_STATES);

  for (guint i = 0; i < all->len; i++) {
    WaStoreOutbox *e = g_ptr_array_index(all, i);
    if (g_strcmp0(e->body, body) == 0)
      return (int) e->state;
  }
  return -1;
}

/* Runs the loop until the store has answered everything queued so far. */
static inline void
store_settle(TestStore *ts)
{
  g_auto(StoreWait) w = {0};

  wa_store_flush(ts->store, on_store_done, &w);
  test_wait_count(w.done, 1, WAIT_S);
}
