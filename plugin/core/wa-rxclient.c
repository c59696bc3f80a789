/* wa-rxclient.c: the plugin side of the receiver link (see wa-rxclient.h and
 * plugin/receiver/PROTOCOL.md). Non-blocking UNIX socket on a WaLoop.
 * Must not: block, log registrations or event payloads, or open events. */
#include "wa-rxclient.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "wa-json.h"
#include "wa-rxline.h"

G_DEFINE_QUARK(wa - rxclient - error - quark, wa_rxclient_error)

struct _WaRxclient {
  WaLoop *loop;
  char *socket_path;
  char *client_name;
  JsonObject *registration;
  char *account;
  WaRxclientEvents events;
  gpointer user;

  int fd;
  guint read_watch;
  guint write_watch;
  WaRxlineBuf *in;
  GByteArray *out;
  GQueue pending;         /* verbs (static strings) awaiting OK/ERR, in order */
  JsonObject *registered; /* REGISTER's answer */
  gboolean subscribed;
};

static void on_readable(gpointer data, int fd, WaIoCondition cond);
static void on_writable(gpointer data, int fd, WaIoCondition cond);

WaRxclient *
wa_rxclient_new(WaLoop *loop, const char *socket_path, const char *client_name, JsonObject *registration,
                const WaRxclientEvents *events, gpointer user)
{
  WaRxclient *client = g_new0(WaRxclient, 1);
  g_autoptr(JsonNode) copy = NULL;
  JsonNode *node = json_node_new(JSON_NODE_OBJECT);

  json_node_set_object(node, registration);
  copy = json_node_copy(node);
  json_node_unref(node);
  client->loop = loop;
  client->socket_path = g_strdup(socket_path);
  client->client_name = g_strdup(client_name);
  client->registration = json_object_ref(json_node_get_object(copy));
  client->account = g_strdup(wa_json_get_string(registration, "account"));
  client->events = *events;
  client->user = user;
  client->fd = -1;
  g_queue_init(&client->pending);
  return client;
}

static void
teardown(WaRxclient *client)
{
  /* hand over what is queued (acknowledgements above all) before closing; a
   * UNIX socket takes a few lines at once, and what does not fit is sent again
   * by the receiver's next subscription anyway */
  if (client->fd >= 0 && client->out != NULL && client->out->len > 0)
    (void) !send(client->fd, client->out->data, client->out->len, MSG_NOSIGNAL | MSG_DONTWAIT);
  wa_loop_input_clear(client->loop, &client->read_watch);
  wa_loop_input_clear(client->loop, &client->write_watch);
  if (client->fd >= 0) {
    close(client->fd);
    client->fd = -1;
  }
  g_clear_pointer(&client->in, wa_rxline_buf_free);
  if (client->out != NULL) {
    g_byte_array_unref(client->out);
    client->out = NULL;
  }
  g_queue_clear(&client->pending);
  g_clear_pointer(&client->registered, json_object_unref);
  client->subscribed = FALSE;
}

void
wa_rxclient_disconnect(WaRxclient *client)
{
  teardown(client);
}

void
wa_rxclient_free(WaRxclient *client)
{
  if (client == NULL)
    return;
  teardown(client);
  json_object_unref(client->registration);
  g_free(client->socket_path);
  g_free(client->client_name);
  g_free(client->account);
  g_free(client);
}

gboolean
wa_rxclient_is_connected(WaRxclient *client)
{
  return client->fd >= 0;
}

/* Ends the connection and tells the owner, who may free the client: callers
 * return at once afterwards. */
static void fail(WaRxclient *client, WaRxclientError code, const char *err_code, const char *fmt, ...)
  G_GNUC_PRINTF(4, 5);

static void
fail(WaRxclient *client, WaRxclientError code, const char *err_code, const char *fmt, ...)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *ecode = g_strdup(err_code);
  va_list args;

  va_start(args, fmt);
  error = g_error_new_valist(WA_RXCLIENT_ERROR, code, fmt, args);
  va_end(args);
  teardown(client);
  client->events.failed(client->user, error, ecode);
}

static void
queue_line(WaRxclient *client, const char *verb, JsonObject *payload)
{
  g_autofree char *line = wa_rxline_format(verb, payload);

  g_byte_array_append(client->out, (const guint8 *) line, (guint) strlen(line));
  if (g_strcmp0(verb, "ACK") == 0 || g_strcmp0(verb, "HELLO") == 0 || g_strcmp0(verb, "REGISTER") == 0 ||
      g_strcmp0(verb, "SUBSCRIBE") == 0)
    g_queue_push_tail(&client->pending, (gpointer) g_intern_string(verb));
  if (client->write_watch == 0)
    client->write_watch = wa_loop_input_add(client->loop, client->fd, WA_IO_WRITE, on_writable, client);
}

gboolean
wa_rxclient_check_peer(const char *dir_name, const struct stat *dir, uid_t peer_uid, uid_t uid, GError **error)
{
  if (!S_ISDIR(dir->st_mode) || dir->st_uid != uid) {
    g_set_error(error, WA_RXCLIENT_ERROR, WA_RXCLIENT_ERROR_PEER,
                "the receiver's directory %s belongs to another user (uid %u)", dir_name, (guint) dir->st_uid);
    return FALSE;
  }
  if ((dir->st_mode & 077) != 0) {
    g_set_error(error, WA_RXCLIENT_ERROR, WA_RXCLIENT_ERROR_PEER,
                "the receiver's directory %s is open to other users (mode %04o, not 0700)", dir_name,
                (guint) (dir->st_mode & 07777));
    return FALSE;
  }
  if (peer_uid != uid) {
    g_set_error(error, WA_RXCLIENT_ERROR, WA_RXCLIENT_ERROR_PEER,
                "the process at the receiver's socket runs as another user (uid %d)", (int) peer_uid);
    return FALSE;
  }
  return TRUE;
}

/* The directory and the peer of a connected @fd are ours alone. */
static gboolean
peer_trusted(WaRxclient *client, int fd, GError **error)
{
  g_autofree char *dir_name = g_path_get_dirname(client->socket_path);
  struct ucred cred = {.uid = (uid_t) -1};
  socklen_t len = sizeof cred;
  struct stat dir;

  if (stat(dir_name, &dir) != 0) {
    g_set_error(error, WA_RXCLIENT_ERROR, WA_RXCLIENT_ERROR_PEER, "cannot check %s: %s", dir_name, g_strerror(errno));
    return FALSE;
  }
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred)
    cred.uid = (uid_t) -1;
  return wa_rxclient_check_peer(dir_name, &dir, cred.uid, getuid(), error);
}

gboolean
wa_rxclient_connect(WaRxclient *client, GError **error)
{
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  g_autoptr(JsonObject) hello = json_object_new();
  g_autoptr(JsonObject) subscribe = json_object_new();
  int fd;

  teardown(client);
  if (strlen(client->socket_path) >= sizeof addr.sun_path) {
    g_set_error(error, WA_RXCLIENT_ERROR, WA_RXCLIENT_ERROR_CONNECT,
                "the receiver's socket path is too long for a UNIX socket (%s)", client->socket_path);
    return FALSE;
  }
  strcpy(addr.sun_path, client->socket_path);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    g_set_error(error, WA_RXCLIENT_ERROR, WA_RXCLIENT_ERROR_CONNECT, "socket: %s", g_strerror(errno));
    return FALSE;
  }
  if (connect(fd, (struct sockaddr *) &addr, sizeof addr) != 0) {
    int err = errno;

    close(fd);
    g_set_error(error, WA_RXCLIENT_ERROR,
                err == ENOENT || err == ECONNREFUSED || err == EAGAIN ? WA_RXCLIENT_ERROR_NOT_RUNNING
                                                                      : WA_RXCLIENT_ERROR_CONNECT,
                "cannot reach the receiver at %s: %s", client->socket_path, g_strerror(err));
    return FALSE;
  }
  /* REGISTER carries the app secret: nothing goes to a peer we cannot trust */
  if (!peer_trusted(client, fd, error)) {
    close(fd);
    return FALSE;
  }
  client->fd = fd;
  client->in = wa_rxline_buf_new();
  client->out = g_byte_array_new();
  client->read_watch = wa_loop_input_add(client->loop, fd, WA_IO_READ, on_readable, client);

  json_object_set_int_member(hello, "proto", WA_RXLINE_PROTO);
  json_object_set_string_member(hello, "client", client->client_name);
  queue_line(client, "HELLO", hello);
  queue_line(client, "REGISTER", client->registration);
  json_object_set_string_member(subscribe, "account", client->account);
  queue_line(client, "SUBSCRIBE", subscribe);
  return TRUE;
}

void
wa_rxclient_ack(WaRxclient *client, gint64 seq)
{
  g_autoptr(JsonObject) ack = json_object_new();

  if (client->fd < 0 || !client->subscribed)
    return;
  json_object_set_string_member(ack, "account", client->account);
  json_object_set_int_member(ack, "seq", seq);
  queue_line(client, "ACK", ack);
}

static void
on_writable(gpointer data, int fd, WaIoCondition cond)
{
  WaRxclient *client = data;

  while (client->out->len > 0) {
    ssize_t n = send(fd, client->out->data, client->out->len, MSG_NOSIGNAL);

    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return;
      fail(client, WA_RXCLIENT_ERROR_LOST, NULL, "lost the receiver: %s", g_strerror(errno));
      return;
    }
    g_byte_array_remove_range(client->out, 0, (guint) n);
  }
  wa_loop_input_clear(client->loop, &client->write_watch);
}

/* Returns FALSE when the client failed (and may be gone). */
static gboolean
handle_ok(WaRxclient *client, JsonObject *payload)
{
  const char *verb = g_queue_pop_head(&client->pending);

  if (verb == NULL) {
    fail(client, WA_RXCLIENT_ERROR_PROTOCOL, NULL, "the receiver answered a request never made");
    return FALSE;
  }
  if (verb == g_intern_string("HELLO")) {
    gint64 proto = wa_json_get_int(payload, "proto", 0);

    if (proto != WA_RXLINE_PROTO) {
      fail(client, WA_RXCLIENT_ERROR_PROTOCOL, NULL,
           "the receiver speaks protocol %" G_GINT64_FORMAT ", this plugin %d", proto, WA_RXLINE_PROTO);
      return FALSE;
    }
  } else if (verb == g_intern_string("REGISTER")) {
    g_clear_pointer(&client->registered, json_object_unref);
    client->registered = payload != NULL ? json_object_ref(payload) : json_object_new();
  } else if (verb == g_intern_string("SUBSCRIBE")) {
    client->subscribed = TRUE;
    client->events.ready(client->user, client->registered != NULL ? client->registered : payload,
                         wa_json_get_int(payload, "pending", 0));
  } else if (verb == g_intern_string("ACK") && client->events.acked != NULL) {
    client->events.acked(client->user, wa_json_get_int(payload, "seq", -1));
  }
  return TRUE;
}

static gboolean
handle_event(WaRxclient *client, JsonObject *payload)
{
  const char *sealed64 = wa_json_get_string(payload, "sealed");
  gint64 seq = wa_json_get_int(payload, "seq", -1);
  g_autoptr(GBytes) sealed = NULL;
  gsize len = 0;
  guint8 *raw;

  if (sealed64 == NULL || seq < 0 || g_strcmp0(wa_json_get_string(payload, "account"), client->account) != 0) {
    fail(client, WA_RXCLIENT_ERROR_PROTOCOL, NULL, "the receiver sent an event without seq, account or data");
    return FALSE;
  }
  raw = g_base64_decode(sealed64, &len);
  sealed = g_bytes_new_take(raw, len);
  client->events.event(client->user, seq, wa_json_get_int(payload, "received", 0), sealed);
  return TRUE;
}

/* Returns FALSE when the client failed (and may be gone). */
static gboolean
handle_line(WaRxclient *client, const char *line, gsize len)
{
  g_autofree char *verb = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GError) error = NULL;
  JsonObject *payload;

  if (!wa_rxline_parse(line, len, &verb, &node, &error)) {
    fail(client, WA_RXCLIENT_ERROR_PROTOCOL, NULL, "the receiver sent a line we cannot read: %s", error->message);
    return FALSE;
  }
  payload = node != NULL ? json_node_get_object(node) : NULL;
  if (g_str_equal(verb, "OK"))
    return handle_ok(client, payload);
  if (g_str_equal(verb, "EVENT"))
    return handle_event(client, payload);
  if (g_str_equal(verb, "LISTEN")) {
    if (payload != NULL && client->events.listen != NULL &&
        g_strcmp0(wa_json_get_string(payload, "account"), client->account) == 0)
      client->events.listen(client->user, payload);
    return TRUE;
  }
  if (g_str_equal(verb, "NOTICE")) {
    client->events.notice(client->user, wa_json_get_string(payload, "code"), wa_json_get_string(payload, "message"));
    return TRUE;
  }
  if (g_str_equal(verb, "ERR")) {
    const char *message = wa_json_get_string(payload, "message");

    fail(client, WA_RXCLIENT_ERROR_REFUSED, wa_json_get_string(payload, "code"), "%s",
         message != NULL ? message : "the receiver refused a request");
    return FALSE;
  }
  /* newer receivers may add unsolicited lines: skip what we do not know */
  return TRUE;
}

static void
on_readable(gpointer data, int fd, WaIoCondition cond)
{
  WaRxclient *client = data;
  guint8 chunk[65536];

  for (;;) {
    g_autoptr(GError) error = NULL;
    ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    char *line;
    gsize len;

    if (n == 0) {
      fail(client, WA_RXCLIENT_ERROR_LOST, NULL, "the receiver closed the connection");
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return;
      if (errno == EINTR)
        continue;
      fail(client, WA_RXCLIENT_ERROR_LOST, NULL, "lost the receiver: %s", g_strerror(errno));
      return;
    }
    if (!wa_rxline_buf_append(client->in, chunk, (gsize) n, &error)) {
      fail(client, WA_RXCLIENT_ERROR_PROTOCOL, NULL, "%s", error->message);
      return;
    }
    while ((line = wa_rxline_buf_pop(client->in, &len)) != NULL) {
      gboolean ok = handle_line(client, line, len);

      g_free(line);
      if (!ok)
        return;
      /* the owner may have disconnected from inside a callback */
      if (client->fd != fd)
        return;
    }
  }
}
