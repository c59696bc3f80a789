/* test-rxclient.c: the plugin's side of the receiver link against a scripted
 * fake receiver on a real UNIX socket: the handshake lines, events and their
 * acknowledgements, notices, listener states, refusals, a lost receiver, no
 * receiver, and a socket whose directory or peer is not ours alone.
 * Must not: depend on wabiz-receiver (its own tests cover it). */
#include "wa-rxclient.h"

#include <errno.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "test-util.h"
#include "wa-json.h"
#include "wa-rxline.h"

typedef struct {
  char *dir;
  char *path;
  int listen_fd;
  int peer;
  WaRxlineBuf *in;
  WaRxclient *client;
  /* what the client reported */
  gboolean ready;
  char *url;
  gint64 pending;
  GPtrArray *events; /* "seq:payload" */
  char *notice;
  char *listen; /* the last LISTEN payload, as JSON */
  GError *failure;
  char *failure_code;
  gint64 acked;
} Fixture;

static void
on_ready(gpointer user, JsonObject *registered, gint64 pending)
{
  Fixture *f = user;

  f->ready = TRUE;
  f->url = g_strdup(wa_json_get_string(registered, "url"));
  f->pending = pending;
}

static void
on_event(gpointer user, gint64 seq, gint64 received, GBytes *sealed)
{
  Fixture *f = user;
  gsize len;
  const char *data = g_bytes_get_data(sealed, &len);

  g_ptr_array_add(f->events, g_strdup_printf("%" G_GINT64_FORMAT ":%.*s", seq, (int) len, data));
}

static void
on_notice(gpointer user, const char *code, const char *message)
{
  Fixture *f = user;

  g_free(f->notice);
  f->notice = g_strdup_printf("%s:%s", code, message);
}

static void
on_failed(gpointer user, const GError *error, const char *code)
{
  Fixture *f = user;

  g_clear_error(&f->failure);
  f->failure = g_error_copy(error);
  g_free(f->failure_code);
  f->failure_code = g_strdup(code);
}

static void
on_listen(gpointer user, JsonObject *state)
{
  Fixture *f = user;
  g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);

  json_node_set_object(node, state);
  g_free(f->listen);
  f->listen = wa_json_to_string(node);
}

static void
on_acked(gpointer user, gint64 seq)
{
  Fixture *f = user;

  f->acked = seq;
}

static const WaRxclientEvents events = {
  .ready = on_ready,
  .event = on_event,
  .notice = on_notice,
  .failed = on_failed,
  .listen = on_listen,
  .acked = on_acked,
};

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  g_autoptr(JsonObject) reg = json_object_new();

  f->dir = g_dir_make_tmp("wabiz-rxclient-XXXXXX", NULL);
  f->path = g_build_filename(f->dir, "rx.sock", NULL);
  f->peer = -1;
  f->events = g_ptr_array_new_with_free_func(g_free);
  f->in = wa_rxline_buf_new();
  if (data == NULL) {
    f->listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    g_strlcpy(addr.sun_path, f->path, sizeof addr.sun_path);
    g_assert_cmpint(bind(f->listen_fd, (struct sockaddr *) &addr, sizeof addr), ==, 0);
    g_assert_cmpint(listen(f->listen_fd, 4), ==, 0);
  } else {
    f->listen_fd = -1;
  }
  json_object_set_string_member(reg, "account", "106540352242922");
  json_object_set_string_member(reg, "public_key", "AAAA");
  f->client = wa_rxclient_new(wa_loop_glib(), f->path, "test 1", reg, &events, f);
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
  wa_rxclient_free(f->client);
  if (f->peer >= 0)
    close(f->peer);
  if (f->listen_fd >= 0)
    close(f->listen_fd);
  g_unlink(f->path);
  g_rmdir(f->dir);
  g_free(f->path);
  g_free(f->dir);
  g_free(f->url);
  g_free(f->notice);
  g_free(f->listen);
  g_free(f->failure_code);
  g_clear_error(&f->failure);
  g_ptr_array_unref(f->events);
  wa_rxline_buf_free(f->in);
}

/* Seconds a test waits for the client. */
#define WAIT_S 5

/* Moves what the client sent into f->in (a watch on the server's end). */
static gboolean
on_peer_readable(int fd, GIOCondition condition, gpointer data)
{
  Fixture *f = data;
  char chunk[4096];
  ssize_t n = read(fd, chunk, sizeof chunk);

  g_assert_cmpint(n, >, 0);
  g_assert_true(wa_rxline_buf_append(f->in, chunk, (gsize) n, NULL));
  return G_SOURCE_CONTINUE;
}

/* The next line the client sent, read with a deadline. */
static char *
server_read_line(Fixture *f)
{
  guint watch = g_unix_fd_add(f->peer, G_IO_IN | G_IO_HUP | G_IO_ERR, on_peer_readable, f);
  char *line;

  test_wait_until((line = wa_rxline_buf_pop(f->in, NULL)) != NULL, WAIT_S);
  g_source_remove(watch);
  return line;
}

static void
server_write(Fixture *f, const char *line)
{
  g_autofree char *with_nl = g_strconcat(line, "\n", NULL);

  g_assert_cmpint(write(f->peer, with_nl, strlen(with_nl)), ==, (ssize_t) strlen(with_nl));
}

static void
connect_and_accept(Fixture *f)
{
  g_autoptr(GError) error = NULL;

  g_assert_true(wa_rxclient_connect(f->client, &error));
  g_assert_no_error(error);
  f->peer = accept(f->listen_fd, NULL, NULL);
  g_assert_cmpint(f->peer, >=, 0);
}

static void
handshake(Fixture *f)
{
  g_autofree char *hello = NULL;
  g_autofree char *reg = NULL;
  g_autofree char *sub = NULL;

  connect_and_accept(f);
  hello = server_read_line(f);
  reg = server_read_line(f);
  sub = server_read_line(f);
  g_assert_cmpstr(hello, ==, "HELLO {\"proto\":1,\"client\":\"test 1\"}");
  g_assert_true(g_str_has_prefix(reg, "REGISTER {"));
  g_assert_nonnull(strstr(reg, "\"public_key\":\"AAAA\""));
  g_assert_cmpstr(sub, ==, "SUBSCRIBE {\"account\":\"106540352242922\"}");
  server_write(f, "OK {\"proto\":1,\"version\":\"x\"}");
  server_write(f, "OK {\"account\":\"106540352242922\",\"url\":\"http://127.0.0.1:9/webhook\",\"port\":9}");
  g_assert_false(f->ready);
  server_write(f, "OK {\"account\":\"106540352242922\",\"pending\":2}");
  test_wait_until(f->ready, WAIT_S);
  g_assert_cmpstr(f->url, ==, "http://127.0.0.1:9/webhook");
  g_assert_cmpint(f->pending, ==, 2);
}

static void
test_events_and_acks(Fixture *f, gconstpointer data)
{
  g_autofree char *ack = NULL;
  g_autofree char *b64 = g_base64_encode((const guchar *) "sealed-bytes", 12);
  g_autofree char *event =
    g_strdup_printf("EVENT {\"account\":\"106540352242922\",\"seq\":41,\"received\":5,\"sealed\":\"%s\"}", b64);

  handshake(f);
  server_write(f, event);
  server_write(f, "NOTICE {\"account\":\"106540352242922\",\"code\":\"signature\",\"message\":\"check\"}");
  server_write(f, "FUTURE {\"ignored\":true}");
  test_wait_until(f->notice != NULL, WAIT_S);
  g_assert_cmpuint(f->events->len, ==, 1);
  g_assert_cmpstr(f->events->pdata[0], ==, "41:sealed-bytes");
  g_assert_cmpstr(f->notice, ==, "signature:check");
  wa_rxclient_ack(f->client, 41);
  ack = server_read_line(f);
  g_assert_cmpstr(ack, ==, "ACK {\"account\":\"106540352242922\",\"seq\":41}");
  server_write(f, "OK {\"account\":\"106540352242922\",\"seq\":41}");
  g_main_context_iteration(NULL, FALSE);
  g_assert_null(f->failure);
  g_assert_true(wa_rxclient_is_connected(f->client));
}

/* An acknowledgement queued just before sign-off still reaches the receiver:
 * otherwise the event would be shown again at the next sign-on. */
static void
test_ack_flushed_on_disconnect(Fixture *f, gconstpointer data)
{
  g_autofree char *ack = NULL;

  handshake(f);
  wa_rxclient_ack(f->client, 7);
  wa_rxclient_disconnect(f->client); /* no main-loop turn in between */
  ack = server_read_line(f);
  g_assert_cmpstr(ack, ==, "ACK {\"account\":\"106540352242922\",\"seq\":7}");
  g_assert_null(f->failure);
}

/* The receiver's answer to an ACK is reported with its seq. */
static void
test_ack_confirmed(Fixture *f, gconstpointer data)
{
  g_autofree char *ack = NULL;

  handshake(f);
  wa_rxclient_ack(f->client, 9);
  ack = server_read_line(f);
  g_assert_cmpstr(ack, ==, "ACK {\"account\":\"106540352242922\",\"seq\":9}");
  g_assert_cmpint(f->acked, ==, 0);
  server_write(f, "OK {\"account\":\"106540352242922\",\"seq\":9}");
  test_wait_until(f->acked != 0, WAIT_S);
  g_assert_cmpint(f->acked, ==, 9);
  g_assert_null(f->failure);
}

static void
test_refused(Fixture *f, gconstpointer data)
{
  g_autofree char *line = NULL;

  connect_and_accept(f);
  line = server_read_line(f);
  server_write(f, "OK {\"proto\":1}");
  server_write(f, "ERR {\"code\":\"tls\",\"message\":\"a public address needs TLS\"}");
  test_wait_until(f->failure != NULL, WAIT_S);
  g_assert_error(f->failure, WA_RXCLIENT_ERROR, WA_RXCLIENT_ERROR_REFUSED);
  g_assert_cmpstr(f->failure->message, ==, "a public address needs TLS");
  g_assert_cmpstr(f->failure_code, ==, "tls");
  g_assert_false(f->ready);
  g_assert_false(wa_rxclient_is_connected(f->client));
}

static void
test_wrong_version_and_garbage(Fixture *f, gconstpointer data)
{
  connect_and_accept(f);
  server_write(f, "OK {\"proto\":2}");
  test_wait_until(f->failure != NULL, WAIT_S);
  g_assert_error(f->failure, WA_RXCLIENT_ERROR, WA_RXCLIENT_ERROR_PROTOCOL);
  g_clear_error(&f->failure);
  close(f->peer);
  connect_and_accept(f);
  server_write(f, "not a line");
  test_wait_until(f->failure != NULL, WAIT_S);
  g_assert_error(f->failure, WA_RXCLIENT_ERROR, WA_RXCLIENT_ERROR_PROTOCOL);
}

static void
test_lost(Fixture *f, gconstpointer data)
{
  handshake(f);
  close(f->peer);
  f->peer = -1;
  test_wait_until(f->failure != NULL, WAIT_S);
  g_assert_error(f->failure, WA_RXCLIENT_ERROR, WA_RXCLIENT_ERROR_LOST);
}

static void
test_not_running(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  g_assert_false(wa_rxclient_connect(f->client, &error));
  g_assert_error(error, WA_RXCLIENT_ERROR, WA_RXCLIENT_ERROR_NOT_RUNNING);
}

/* LISTEN lines of the account reach the owner; another account's do not. */
static void
test_listen_state(Fixture *f, gconstpointer data)
{
  handshake(f);
  server_write(f, "LISTEN {\"account\":\"999\",\"listening\":true}");
  server_write(f, "LISTEN {\"account\":\"106540352242922\",\"url\":\"http://127.0.0.1:9/webhook\","
                  "\"listening\":false,\"listen_error\":\"in use\",\"port_taken\":true}");
  test_wait_until(f->listen != NULL, WAIT_S);
  g_assert_cmpstr(f->listen, ==,
                  "{\"account\":\"106540352242922\",\"url\":\"http://127.0.0.1:9/webhook\","
                  "\"listening\":false,\"listen_error\":\"in use\",\"port_taken\":true}");
  g_assert_null(f->failure);
}

/* A receiver socket in a directory others may enter gets nothing: not even
 * HELLO, let alone REGISTER with the app secret. */
static void
test_peer_directory_open(Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  char byte;
  int peer;

  g_assert_cmpint(g_chmod(f->dir, 0755), ==, 0);
  g_assert_false(wa_rxclient_connect(f->client, &error));
  g_assert_error(error, WA_RXCLIENT_ERROR, WA_RXCLIENT_ERROR_PEER);
  g_assert_nonnull(strstr(error->message, "mode 0755"));
  g_assert_false(wa_rxclient_is_connected(f->client));
  /* the connection was made and closed at once: end of file, no byte */
  peer = accept(f->listen_fd, NULL, NULL);
  g_assert_cmpint(peer, >=, 0);
  g_assert_cmpint(read(peer, &byte, 1), ==, 0);
  close(peer);
  /* 0700 again: the same client connects and talks */
  g_clear_error(&error);
  g_assert_cmpint(g_chmod(f->dir, 0700), ==, 0);
  handshake(f);
}

/* The check on synthetic credentials: another uid at the socket, a
 * directory of another user, one open to the group, not a directory. */
static void
test_peer_check(void)
{
  struct stat dir = {.st_mode = S_IFDIR | 0700, .st_uid = 1000};
  g_autoptr(GError) error = NULL;

  g_assert_true(wa_rxclient_check_peer("/d", &dir, 1000, 1000, &error));
  g_assert_no_error(error);
  g_assert_false(wa_rxclient_check_peer("/d", &dir, 1001, 1000, &error));
  g_assert_error(error, WA_RXCLIENT_ERROR, WA_RXCLIENT_ERROR_PEER);
  g_assert_nonnull(strstr(error->message, "another user (uid 1001)"));
  g_clear_error(&error);
  g_assert_false(wa_rxclient_check_peer("/d", &dir, (uid_t) -1, 1000, &error));
  g_assert_error(error, WA_RXCLIENT_ERROR, WA_RXCLIENT_ERROR_PEER);
  g_clear_error(&error);
  dir.st_uid = 0;
  g_assert_false(wa_rxclient_check_peer("/d", &dir, 1000, 1000, &error));
  g_assert_nonnull(strstr(error->message, "belongs to another user (uid 0)"));
  g_clear_error(&error);
  dir.st_uid = 1000;
  dir.st_mode = S_IFDIR | 0710;
  g_assert_false(wa_rxclient_check_peer("/d", &dir, 1000, 1000, &error));
  g_assert_nonnull(strstr(error->message, "mode 0710"));
  g_clear_error(&error);
  dir.st_mode = S_IFREG | 0700;
  g_assert_false(wa_rxclient_check_peer("/d", &dir, 1000, 1000, &error));
  g_assert_error(error, WA_RXCLIENT_ERROR, WA_RXCLIENT_ERROR_PEER);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add("/rxclient/events-and-acks", Fixture, NULL, fixture_set_up, test_events_and_acks, fixture_tear_down);
  g_test_add("/rxclient/ack-flushed-on-disconnect", Fixture, NULL, fixture_set_up, test_ack_flushed_on_disconnect,
             fixture_tear_down);
  g_test_add("/rxclient/ack-confirmed", Fixture, NULL, fixture_set_up, test_ack_confirmed, fixture_tear_down);
  g_test_add("/rxclient/refused", Fixture, NULL, fixture_set_up, test_refused, fixture_tear_down);
  g_test_add("/rxclient/wrong-version-and-garbage", Fixture, NULL, fixture_set_up, test_wrong_version_and_garbage,
             fixture_tear_down);
  g_test_add("/rxclient/lost", Fixture, NULL, fixture_set_up, test_lost, fixture_tear_down);
  g_test_add("/rxclient/listen-state", Fixture, NULL, fixture_set_up, test_listen_state, fixture_tear_down);
  g_test_add("/rxclient/peer-directory-open", Fixture, NULL, fixture_set_up, test_peer_directory_open,
             fixture_tear_down);
  g_test_add_func("/rxclient/peer-check", test_peer_check);
  g_test_add("/rxclient/not-running", Fixture, "no socket", fixture_set_up, test_not_running, fixture_tear_down);
  return g_test_run();
}
