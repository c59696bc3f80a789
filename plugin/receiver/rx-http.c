/* rx-http.c: wabiz-receiver's webhook side: the TCP (and TLS) listeners, the
 * connections it accepts itself and hands to a SoupServer, the limits and
 * deadlines on them, and the answer to each request: the GET verification
 * handshake, and POSTs checked (depth, signature, envelope) and routed to the
 * accounts that own them (rx-route.c), then journalled before they are
 * answered.
 *
 * Limits (docs/ARCHITECTURE.md, Rules: SoupServer; SoupServer 3.2 has none of its own):
 * - at most opt.max_connections open connections; when full, the slowest one
 *   still sending its request (past opt.rate_grace_s, by average rate; before,
 *   the one open longest) is closed for the new one; only when none is
 *   sending, the new one is closed at once;
 * - at most opt.max_per_address from one remote address other than 127.0.0.1
 *   and ::1 (a reverse proxy's), one more closed at once;
 * - a request must average opt.min_rate bytes per second (counted by the head
 *   guard, after TLS) once opt.rate_grace_s have passed since libsoup got it;
 * - request bodies held by all connections stay under opt.max_body_memory:
 *   past it the slowest holders are closed;
 * - per connection a header deadline (accept, TLS handshake and request
 *   headers), a body deadline (headers to the end of the body) and an idle
 *   deadline (no progress at all), none of them running while a POST waits
 *   for its commit; a missed deadline shuts the socket down;
 * - connections are kept alive (server_keep_alive): each later request's
 *   head is checked like the first (rx-guard.h), its header, body and rate
 *   deadlines start with its first byte (on_guard), and between requests
 *   only the idle deadline runs; a waiting connection is dropped first for a
 *   new one; a refused request (4xx, 5xx) or a body the head check does not
 *   follow (chunked) closes the connection after its answer;
 * - a body over opt.max_body is refused with 413: a Content-Length over the cap
 *   as soon as the headers are in, a chunked body once its chunks pass it.
 *   libsoup 3.2.3 would read the whole body even after a status was set in
 *   "got-headers" (only "Expect: 100-continue" stops it), so the connection is
 *   stolen from libsoup there (soup_server_message_steal_connection, which
 *   io_read() in soup-server-message-io-http1.c tolerates: it returns at once
 *   when the message lost its I/O), the 413 written by hand, and the rest of
 *   the body read and thrown away for a few seconds so the client sees the
 *   answer instead of a reset. A Content-Length libsoup cannot use (negative,
 *   past 2^63, or given twice) is refused the same way, with 400.
 *
 * Must not: answer 200 to a POST before the journal committed it, read a body
 * past the cap, block on a slow client, route a change to an account whose own
 * app secret did not sign it, or log a secret, a body, a phone number or a
 * message id. */
#include "rx.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/stat.h>

#include "rx-guard.h"
#include "rx-route.h"
#include "wa-signature.h"

/* What a certificate or key file looked like when it was read: a renewal
 * (written in place, or a new file renamed over it, or a symlink switched)
 * changes at least one of these. */
typedef struct {
  gboolean exists;
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
  struct timespec ctime;
} FileStamp;

typedef struct {
  FileStamp cert;
  FileStamp key;
} TlsStamp;

struct _RxListener {
  grefcount refs; /* memory: held by its users and by its connections */
  int users;      /* registrations using it; the socket closes at 0 */
  RxReceiver *rx;
  char *bind;
  int port;
  char *tls_cert;
  char *tls_key;
  char *group; /* a UNIX socket's group */
  GTlsCertificate *certificate;
  TlsStamp loaded; /* the files behind @certificate */
  TlsStamp failed; /* files that could not be used (logged once) */
  gboolean have_failed;
  GSocketService *service;
};

typedef enum {
  CONN_HANDSHAKE, /* ours: TLS handshake running */
  CONN_SOUP,      /* libsoup's */
  CONN_DRAIN,     /* ours again: 413 (or 400) written, discarding the rest */
} ConnPhase;

typedef struct {
  RxReceiver *rx;
  RxListener *listener;
  ConnPhase phase;
  GSocket *socket;
  GSocketConnection *tcp; /* only until handed to libsoup */
  GIOStream *tls;         /* only until handed to libsoup */
  GIOStream *stolen;      /* CONN_DRAIN: the stream taken back from libsoup */
  GSocketAddress *local;
  GSocketAddress *remote; /* carries a pointer back to this connection */
  GCancellable *cancel;
  GSource *timer;
  gint64 header_deadline; /* monotonic microseconds; 0 = not running */
  gint64 body_deadline;
  gint64 idle_deadline;
  gint64 drain_deadline;
  gboolean paused;   /* a POST waits for its commit: no deadline runs */
  gboolean counted;  /* holds a slot (and its address's share); FALSE once killed */
  gboolean reading;  /* the request is still coming in: it may be dropped for a new one */
  gboolean waiting;  /* kept alive, answered, no byte of the next request yet: dropped first */
  guint64 rate_base; /* bytes in before the current request's head */
  char *peer;        /* the remote address, when --max-per-address applies to it */
  gint64 accepted;   /* monotonic microseconds */
  gint64 rate_start; /* handed to libsoup: the rate is measured from then on; 0 = not */
  GIOStream *guard;  /* the stream libsoup reads (not a reference: @conn goes with it) */
  gint64 body_held;  /* body bytes counted in rx->body_bytes */
  gint64 body_seen;
  gsize drained;
  guint8 *drain_buf;
} RxConn;

/* One POST waiting for its journal appends. */
typedef struct {
  RxReceiver *rx;
  RxConn *conn;
  SoupServerMessage *msg;
  int refs;        /* one for the appends, one for the message */
  guint pending;   /* appends not yet answered */
  gboolean failed; /* a commit failed: answer 500 */
  gboolean msg_gone;
  GPtrArray *failed_accounts; /* char* */
} RxPost;

typedef struct {
  RxPost *post;
  char *account;
} RxAppend;

#define DRAIN_CHUNK 65536

static GQuark conn_quark;

static void conn_close_own(RxConn *conn);

/* ---- deadlines ------------------------------------------------------ */

static gboolean
deadline_dispatch(GSource *source, GSourceFunc callback, gpointer data)
{
  g_source_set_ready_time(source, -1);
  return callback(data);
}

static GSourceFuncs deadline_funcs = {
  .dispatch = deadline_dispatch,
};

static gint64
earliest(gint64 a, gint64 b)
{
  if (a == 0)
    return b;
  if (b == 0)
    return a;
  return MIN(a, b);
}

static guint64
conn_bytes_in(RxConn *conn)
{
  return conn->guard != NULL ? rx_guard_stream_bytes_read(conn->guard) : 0;
}

/* When the connection falls under --min-rate, with the bytes it sent so far:
 * --rate-grace seconds after libsoup got it, and later as it sends more (its
 * average since then must stay at or above the rate). 0 when not measured. */
static gint64
conn_rate_deadline(RxConn *conn)
{
  const RxOptions *opt = &conn->rx->opt;
  gint64 grace = (gint64) opt->rate_grace_s * G_USEC_PER_SEC;
  gint64 earned;

  if (conn->rate_start == 0 || opt->min_rate <= 0)
    return 0;
  earned = (gint64) MIN(conn_bytes_in(conn) - conn->rate_base, (guint64) G_MAXINT64 / G_USEC_PER_SEC) * G_USEC_PER_SEC /
           opt->min_rate;
  return conn->rate_start + MAX(grace, earned);
}

/* The earliest of the fixed deadlines (0 = none). */
static gint64
conn_fixed_deadline(RxConn *conn)
{
  gint64 when = earliest(conn->header_deadline, conn->body_deadline);

  when = earliest(when, conn->idle_deadline);
  return earliest(when, conn->drain_deadline);
}

static void
conn_arm(RxConn *conn)
{
  gint64 when = 0;

  if (!conn->paused)
    when = earliest(conn_fixed_deadline(conn), conn_rate_deadline(conn));
  g_source_set_ready_time(conn->timer, when != 0 ? when : -1);
}

/* Some progress on the connection: the idle deadline starts again. */
static void
conn_active(RxConn *conn)
{
  conn->idle_deadline = g_get_monotonic_time() + (gint64) conn->rx->opt.idle_timeout_s * G_USEC_PER_SEC;
  conn_arm(conn);
}

/* The connection no longer counts against the limits (it is closing, or
 * gone): its slot, its address's share and its body bytes are free. */
static void
conn_release(RxConn *conn)
{
  RxReceiver *rx = conn->rx;

  if (!conn->counted)
    return;
  conn->counted = FALSE;
  conn->reading = FALSE;
  rx->connections--;
  rx->body_bytes -= conn->body_held;
  conn->body_held = 0;
  if (conn->peer != NULL) {
    int n = GPOINTER_TO_INT(g_hash_table_lookup(rx->peers, conn->peer)) - 1;

    if (n > 0)
      g_hash_table_insert(rx->peers, g_strdup(conn->peer), GINT_TO_POINTER(n));
    else
      g_hash_table_remove(rx->peers, conn->peer);
  }
}

static void
conn_kill(RxConn *conn)
{
  conn_release(conn);
  conn->header_deadline = conn->body_deadline = conn->idle_deadline = conn->drain_deadline = 0;
  conn->rate_start = 0;
  conn_arm(conn);
  switch (conn->phase) {
  case CONN_HANDSHAKE:
  case CONN_DRAIN:
    /* the pending operation fails with CANCELLED and closes the connection */
    g_cancellable_cancel(conn->cancel);
    break;
  case CONN_SOUP:
    /* libsoup sees end of file (or a failed write), gives up on the message
     * and disconnects; the socket stays valid until then */
    g_socket_shutdown(conn->socket, TRUE, TRUE, NULL);
    break;
  }
}

static gboolean
on_deadline(gpointer data)
{
  RxConn *conn = data;
  gint64 now = g_get_monotonic_time();
  gint64 fixed = conn_fixed_deadline(conn);
  gint64 rate = conn_rate_deadline(conn);

  if (fixed != 0 && fixed <= now) {
    conn_kill(conn);
  } else if (rate != 0 && rate <= now) {
    conn->rx->slow_connections++;
    conn_kill(conn);
  } else {
    /* the rate deadline moved: bytes came in without a signal (a head) */
    conn_arm(conn);
  }
  return G_SOURCE_CONTINUE;
}

/* ---- which connection to drop ----------------------------------------- */

/* 0: answered its 413 and only drains, or kept alive waiting for its next
 * request; 1: past --rate-grace (ranked by its
 * average rate, slowest first); 2: younger (ranked by age, oldest first, so
 * the newest, such as a delivery that just arrived, goes last). */
static int
conn_class(RxConn *conn, gint64 now, double *rate)
{
  gint64 age = now - conn->accepted;

  *rate = 0;
  if (conn->phase == CONN_DRAIN || conn->waiting)
    return 0;
  if (age >= (gint64) conn->rx->opt.rate_grace_s * G_USEC_PER_SEC) {
    *rate = (double) conn_bytes_in(conn) * G_USEC_PER_SEC / (double) MAX(age, 1);
    return 1;
  }
  return 2;
}

/* Whether @a is to be dropped before @b. */
static gboolean
conn_worse(RxConn *a, RxConn *b, gint64 now)
{
  double rate_a, rate_b;
  int class_a = conn_class(a, now, &rate_a);
  int class_b = conn_class(b, now, &rate_b);

  if (class_a != class_b)
    return class_a < class_b;
  if (class_a == 1 && rate_a != rate_b)
    return rate_a < rate_b;
  return a->accepted < b->accepted;
}

/* The connection to drop for a new one (or, with @holding_body, to free
 * body memory): the slowest or oldest of those still sending their request
 * (or draining), never one waiting for its commit or being answered. NULL
 * when there is none. */
static RxConn *
pick_victim(RxReceiver *rx, gboolean holding_body)
{
  gint64 now = g_get_monotonic_time();
  RxConn *victim = NULL;
  GHashTableIter iter;
  gpointer key;

  g_hash_table_iter_init(&iter, rx->conns);
  while (g_hash_table_iter_next(&iter, &key, NULL)) {
    RxConn *conn = key;

    if (!conn->counted || conn->paused || (!conn->reading && !conn->waiting && conn->phase != CONN_DRAIN))
      continue;
    if (holding_body && conn->body_held == 0)
      continue;
    if (victim == NULL || conn_worse(conn, victim, now))
      victim = conn;
  }
  return victim;
}

/* The key of --max-per-address for @remote: NULL for 127.0.0.1 and ::1
 * (a reverse proxy on the same host: every delivery comes from there), or
 * when there is no cap. */
static char *
peer_key(RxReceiver *rx, GSocketAddress *remote)
{
  GInetAddress *address;
  char *text;

  if (rx->opt.max_per_address <= 0 || !G_IS_INET_SOCKET_ADDRESS(remote))
    return NULL;
  address = g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(remote));
  text = g_inet_address_to_string(address);
  if (g_str_equal(text, "127.0.0.1") || g_str_equal(text, "::1") || g_str_equal(text, "::ffff:127.0.0.1")) {
    g_free(text);
    return NULL;
  }
  return text;
}

/* ---- listeners ------------------------------------------------------ */

static RxListener *
listener_ref(RxListener *listener)
{
  g_ref_count_inc(&listener->refs);
  return listener;
}

static void
listener_unref(RxListener *listener)
{
  if (!g_ref_count_dec(&listener->refs))
    return;
  g_free(listener->bind);
  g_free(listener->tls_cert);
  g_free(listener->tls_key);
  g_free(listener->group);
  g_clear_object(&listener->certificate);
  g_free(listener);
}

static char *
listener_url(RxListener *listener)
{
  const char *scheme = listener->certificate != NULL ? "https" : "http";

  if (rx_bind_unix_path(listener->bind) != NULL)
    return g_strdup(listener->bind);
  if (strchr(listener->bind, ':') != NULL)
    return g_strdup_printf("%s://[%s]:%d", scheme, listener->bind, listener->port);
  return g_strdup_printf("%s://%s:%d", scheme, listener->bind, listener->port);
}

/* ---- TLS certificate reload ---------------------------------------------- */

static void
file_stamp(const char *path, FileStamp *stamp)
{
  struct stat st;

  memset(stamp, 0, sizeof *stamp);
  if (stat(path, &st) != 0)
    return;
  stamp->exists = TRUE;
  stamp->dev = st.st_dev;
  stamp->ino = st.st_ino;
  stamp->size = st.st_size;
  stamp->mtime = st.st_mtim;
  stamp->ctime = st.st_ctim;
}

static void
tls_stamp(RxListener *listener, TlsStamp *stamp)
{
  file_stamp(listener->tls_cert, &stamp->cert);
  file_stamp(listener->tls_key, &stamp->key);
}

static gboolean
file_stamp_equal(const FileStamp *a, const FileStamp *b)
{
  return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
         a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
         a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static gboolean
tls_stamp_equal(const TlsStamp *a, const TlsStamp *b)
{
  return file_stamp_equal(&a->cert, &b->cert) && file_stamp_equal(&a->key, &b->key);
}

/* Reads the listener's certificate and key again when the files changed
 * since they were read (or always, with @force): a renewal is used from the
 * next connection on. Files that cannot be used leave the certificate in use
 * as it is, and are logged (once until they change again). */
static void
listener_tls_refresh(RxListener *listener, gboolean force)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  GTlsCertificate *fresh;
  TlsStamp now;

  if (listener->certificate == NULL)
    return;
  tls_stamp(listener, &now);
  if (!force &&
      (tls_stamp_equal(&now, &listener->loaded) || (listener->have_failed && tls_stamp_equal(&now, &listener->failed))))
    return;
  url = listener_url(listener);
  fresh = g_tls_certificate_new_from_files(listener->tls_cert, listener->tls_key, &error);
  if (fresh == NULL) {
    listener->failed = now;
    listener->have_failed = TRUE;
    rx_log("cannot reload the TLS certificate of %s, still using the one read before: %s", url, error->message);
    return;
  }
  g_object_unref(listener->certificate);
  listener->certificate = fresh;
  listener->loaded = now;
  listener->have_failed = FALSE;
  rx_log("reloaded the TLS certificate of %s", url);
}

void
rx_http_reload_tls(RxReceiver *rx)
{
  for (guint i = 0; i < rx->listeners->len; i++)
    listener_tls_refresh(g_ptr_array_index(rx->listeners, i), TRUE);
}

static void
listener_close(RxListener *listener)
{
  g_autofree char *url = NULL;

  if (listener->service == NULL)
    return;
  url = listener_url(listener);
  g_socket_service_stop(listener->service);
  g_socket_listener_close(G_SOCKET_LISTENER(listener->service));
  g_signal_handlers_disconnect_by_data(listener->service, listener);
  g_clear_object(&listener->service);
  if (rx_bind_unix_path(listener->bind) != NULL)
    rx_unix_unlink(rx_bind_unix_path(listener->bind));
  rx_log("stopped listening on %s", url);
}

static gboolean on_incoming(GSocketService *service, GSocketConnection *connection, GObject *source, gpointer data);

static GSocketService *
listen_on(RxListener *listener, int port, int *bound, GError **error)
{
  g_autoptr(GSocketAddress) wanted = g_inet_socket_address_new_from_string(listener->bind, (guint) port);
  g_autoptr(GSocketAddress) effective = NULL;
  g_autoptr(GSocketService) service = g_socket_service_new();
  const char *socket_path = rx_bind_unix_path(listener->bind);

  if (socket_path != NULL) {
    g_autoptr(GSocket) socket = rx_unix_listen(socket_path, listener->group, error);

    if (socket == NULL || !g_socket_listener_add_socket(G_SOCKET_LISTENER(service), socket, NULL, error))
      return NULL;
    *bound = 0;
    return g_steal_pointer(&service);
  }
  if (wanted == NULL) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s is not an IP address", listener->bind);
    return NULL;
  }
  g_socket_listener_set_backlog(G_SOCKET_LISTENER(service), 128);
  if (!g_socket_listener_add_address(G_SOCKET_LISTENER(service), wanted, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                     NULL, &effective, error))
    return NULL;
  *bound = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(effective));
  return g_steal_pointer(&service);
}

RxListener *
rx_listener_get(RxReceiver *rx, RxRegistration *reg, const char **code, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autofree char *url = NULL;
  RxListener *listener;
  int bound = 0;

  *code = "bind";
  if (reg->port != 0 || rx_bind_unix_path(reg->bind) != NULL) {
    for (guint i = 0; i < rx->listeners->len; i++) {
      listener = g_ptr_array_index(rx->listeners, i);
      if (listener->port != reg->port || !g_str_equal(listener->bind, reg->bind))
        continue;
      if (g_strcmp0(listener->tls_cert, reg->tls_cert) != 0 || g_strcmp0(listener->tls_key, reg->tls_key) != 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                    "%s port %d is already used by another account %s; accounts sharing a "
                    "port must use the same TLS certificate and key (or none)",
                    reg->bind, reg->port, listener->certificate != NULL ? "with TLS" : "without TLS");
        return NULL;
      }
      listener->users++;
      return listener_ref(listener);
    }
  }

  listener = g_new0(RxListener, 1);
  g_ref_count_init(&listener->refs);
  listener->rx = rx;
  listener->bind = g_strdup(reg->bind);
  listener->tls_cert = g_strdup(reg->tls_cert);
  listener->tls_key = g_strdup(reg->tls_key);
  listener->group = g_strdup(reg->socket_group);
  if (reg->tls_cert != NULL) {
    tls_stamp(listener, &listener->loaded);
    listener->certificate = g_tls_certificate_new_from_files(reg->tls_cert, reg->tls_key, &local);
    if (listener->certificate == NULL) {
      *code = "tls";
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot use the TLS certificate and key: %s", local->message);
      listener_unref(listener);
      return NULL;
    }
  }
  listener->service = listen_on(listener, reg->port, &bound, &local);
  if (listener->service == NULL && reg->port != 0 && reg->requested_port == 0 &&
      g_error_matches(local, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE)) {
    /* the port remembered from an earlier "any port" is taken now */
    g_clear_error(&local);
    listener->service = listen_on(listener, 0, &bound, &local);
  }
  if (listener->service == NULL) {
    /* the cause stays (rx-account: ADDRESS_IN_USE is someone else's port,
     * INVALID_ARGUMENT a wrong setting) */
    int cause = local->domain == G_IO_ERROR ? local->code : G_IO_ERROR_FAILED;

    if (rx_bind_unix_path(reg->bind) != NULL)
      g_set_error(error, G_IO_ERROR, cause, "cannot listen on %s: %s", reg->bind, local->message);
    else
      g_set_error(error, G_IO_ERROR, cause, "cannot listen on %s port %d: %s", reg->bind, reg->port, local->message);
    listener_unref(listener);
    return NULL;
  }
  listener->port = bound;
  listener->users = 1;
  g_signal_connect(listener->service, "incoming", G_CALLBACK(on_incoming), listener);
  g_socket_service_start(listener->service);
  g_ptr_array_add(rx->listeners, listener);
  reg->port = bound;
  url = listener_url(listener);
  rx_log("listening on %s", url);
  *code = NULL;
  return listener;
}

void
rx_listener_release(RxListener *listener)
{
  if (listener == NULL)
    return;
  if (--listener->users == 0) {
    listener_close(listener);
    g_ptr_array_remove(listener->rx->listeners, listener);
  }
  listener_unref(listener);
}

int
rx_listener_users(RxListener *listener)
{
  return listener->users;
}

JsonObject *
rx_listener_status(RxReceiver *rx, RxListener *listener)
{
  JsonObject *obj = json_object_new();
  JsonArray *paths = json_array_new();
  g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
  GHashTableIter iter;
  gpointer value;

  json_object_set_string_member(obj, "bind", listener->bind);
  json_object_set_int_member(obj, "port", listener->port);
  json_object_set_boolean_member(obj, "tls", listener->certificate != NULL);
  g_hash_table_iter_init(&iter, rx->accounts);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    RxAccount *account = value;

    if (account->listener == listener && g_hash_table_add(seen, account->reg->path))
      json_array_add_string_element(paths, account->reg->path);
  }
  json_object_set_array_member(obj, "paths", paths);
  return obj;
}

/* ---- connections ---------------------------------------------------- */

static void
conn_free(RxConn *conn)
{
  RxReceiver *rx = conn->rx;

  conn_release(conn);
  g_hash_table_remove(rx->conns, conn);
  if (conn->remote != NULL)
    g_object_set_qdata(G_OBJECT(conn->remote), conn_quark, NULL);
  g_source_destroy(conn->timer);
  g_source_unref(conn->timer);
  g_clear_object(&conn->socket);
  g_clear_object(&conn->tcp);
  g_clear_object(&conn->tls);
  g_clear_object(&conn->stolen);
  g_clear_object(&conn->local);
  g_clear_object(&conn->remote);
  g_clear_object(&conn->cancel);
  g_free(conn->drain_buf);
  g_free(conn->peer);
  listener_unref(conn->listener);
  g_free(conn);
}

/* The stream given to libsoup was finalized: the connection is over. */
static void
on_stream_gone(gpointer data, GObject *where_the_object_was)
{
  conn_free(data);
}

/* The first byte of a request head came in (rx-guard.h): the first request's
 * deadlines run from the accept, a later one's from here (between requests a
 * kept-alive connection has only its idle deadline). Or a head was refused:
 * the connection ends. */
static void
on_guard(RxGuardEvent event, gpointer data)
{
  RxConn *conn = data;

  if (event == RX_GUARD_REFUSED) {
    conn_kill(conn);
    return;
  }
  if (!conn->waiting || !conn->counted)
    return;
  conn->waiting = FALSE;
  conn->reading = TRUE;
  conn->rate_start = g_get_monotonic_time();
  conn->rate_base = conn_bytes_in(conn);
  conn->header_deadline = conn->rate_start + (gint64) conn->rx->opt.header_timeout_s * G_USEC_PER_SEC;
  conn_active(conn);
}

static void
conn_hand_to_soup(RxConn *conn, GIOStream *connection)
{
  g_autoptr(GError) error = NULL;
  /* libsoup reads through the head check (rx-guard.h: a libsoup leak) */
  g_autoptr(GIOStream) stream = rx_guard_stream_new(connection);

  conn->phase = CONN_SOUP;
  conn->guard = stream;
  rx_guard_stream_on_event(stream, on_guard, conn);
  conn->rate_start = g_get_monotonic_time();
  conn_arm(conn);
  g_object_weak_ref(G_OBJECT(stream), on_stream_gone, conn);
  /* SoupServer emits "request-started" for the connection's first message
   * from inside this call; the remote address object leads back to @conn */
  g_object_set_qdata(G_OBJECT(conn->remote), conn_quark, conn);
  if (!soup_server_accept_iostream(conn->rx->server, stream, conn->local, conn->remote, &error))
    rx_log("cannot serve a connection: %s", error->message);
  g_clear_object(&conn->tcp);
  g_clear_object(&conn->tls);
}

static void
on_handshake(GObject *source, GAsyncResult *result, gpointer data)
{
  RxConn *conn = data;
  g_autoptr(GError) error = NULL;

  if (!g_tls_connection_handshake_finish(G_TLS_CONNECTION(source), result, &error) || !conn->counted) {
    /* failed, or dropped for another connection as it finished */
    conn_close_own(conn);
    return;
  }
  conn_active(conn);
  conn_hand_to_soup(conn, conn->tls);
}

/* Closes a connection that libsoup never had (or gave back), and frees it. */
static void
conn_close_own(RxConn *conn)
{
  if (conn->stolen != NULL)
    g_io_stream_close(conn->stolen, NULL, NULL);
  if (conn->tcp != NULL)
    g_io_stream_close(G_IO_STREAM(conn->tcp), NULL, NULL);
  g_socket_close(conn->socket, NULL);
  if (conn->stolen != NULL) {
    /* the stolen stream leads to the one libsoup had: its finalization
     * (on_stream_gone) frees the connection */
    g_clear_object(&conn->stolen);
    return;
  }
  conn_free(conn);
}

static gboolean
on_incoming(GSocketService *service, GSocketConnection *connection, GObject *source, gpointer data)
{
  RxListener *listener = data;
  RxReceiver *rx = listener->rx;
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketAddress) local = NULL;
  g_autoptr(GSocketAddress) remote = NULL;
  g_autofree char *peer = NULL;
  RxConn *conn;
  gint64 now;

  local = g_socket_connection_get_local_address(connection, NULL);
  remote = g_socket_connection_get_remote_address(connection, NULL);
  if (local == NULL || remote == NULL) {
    /* the peer is gone already */
    g_io_stream_close(G_IO_STREAM(connection), NULL, NULL);
    return TRUE;
  }
  peer = peer_key(rx, remote);
  if (peer != NULL && GPOINTER_TO_INT(g_hash_table_lookup(rx->peers, peer)) >= rx->opt.max_per_address) {
    rx->peer_refused++;
    rx->refused_connections++;
    g_io_stream_close(G_IO_STREAM(connection), NULL, NULL);
    return TRUE;
  }
  if (!rx->stopping && rx->connections >= rx->opt.max_connections) {
    /* full: the slowest (or oldest) one still sending makes room */
    RxConn *victim = pick_victim(rx, FALSE);

    if (victim != NULL) {
      rx->evicted_connections++;
      conn_kill(victim);
    }
  }
  if (rx->stopping || rx->connections >= rx->opt.max_connections) {
    rx->refused_connections++;
    g_io_stream_close(G_IO_STREAM(connection), NULL, NULL);
    return TRUE;
  }
  conn = g_new0(RxConn, 1);
  conn->rx = rx;
  conn->listener = listener_ref(listener);
  conn->socket = g_object_ref(g_socket_connection_get_socket(connection));
  /* libsoup writes an answer's head and body separately: on a kept-alive
   * connection Nagle's algorithm would hold the body until the client's
   * delayed ACK (40 ms) */
  if (g_socket_get_family(conn->socket) != G_SOCKET_FAMILY_UNIX)
    g_socket_set_option(conn->socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
  conn->tcp = g_object_ref(connection);
  conn->cancel = g_cancellable_new();
  conn->timer = g_source_new(&deadline_funcs, sizeof(GSource));
  g_source_set_callback(conn->timer, on_deadline, conn, NULL);
  g_source_attach(conn->timer, NULL);
  conn->local = g_steal_pointer(&local);
  conn->remote = g_steal_pointer(&remote);
  conn->counted = TRUE;
  conn->reading = TRUE;
  conn->accepted = g_get_monotonic_time();
  rx->connections++;
  if (peer != NULL) {
    int n = GPOINTER_TO_INT(g_hash_table_lookup(rx->peers, peer)) + 1;

    conn->peer = g_strdup(peer);
    g_hash_table_insert(rx->peers, g_steal_pointer(&peer), GINT_TO_POINTER(n));
  }
  g_hash_table_add(rx->conns, conn);

  now = g_get_monotonic_time();
  conn->header_deadline = now + (gint64) rx->opt.header_timeout_s * G_USEC_PER_SEC;
  conn_active(conn);

  if (listener->certificate == NULL) {
    conn_hand_to_soup(conn, G_IO_STREAM(connection));
    return TRUE;
  }
  listener_tls_refresh(listener, FALSE);
  conn->phase = CONN_HANDSHAKE;
  conn->tls = g_tls_server_connection_new(G_IO_STREAM(connection), listener->certificate, &error);
  if (conn->tls == NULL) {
    rx_log("cannot start TLS on a connection: %s", error->message);
    conn_close_own(conn);
    return TRUE;
  }
  g_object_set(conn->tls, "require-close-notify", FALSE, NULL);
  g_tls_connection_handshake_async(G_TLS_CONNECTION(conn->tls), G_PRIORITY_DEFAULT, conn->cancel, on_handshake, conn);
  return TRUE;
}

/* ---- 413 and 400: answering before the body ---------------------------- */

static void drain_next(RxConn *conn);

static void
on_drained(GObject *source, GAsyncResult *result, gpointer data)
{
  RxConn *conn = data;
  gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), result, NULL);
  gsize cap = (gsize) MAX(conn->rx->opt.max_body, 1024 * 1024) * 2;

  if (n <= 0 || g_cancellable_is_cancelled(conn->cancel)) {
    conn_close_own(conn);
    return;
  }
  conn->drained += (gsize) n;
  if (conn->drained > cap) {
    conn_close_own(conn);
    return;
  }
  drain_next(conn);
}

static void
drain_next(RxConn *conn)
{
  g_input_stream_read_async(g_io_stream_get_input_stream(conn->stolen), conn->drain_buf, DRAIN_CHUNK, G_PRIORITY_LOW,
                            conn->cancel, on_drained, conn);
}

static void
on_refusal_written(GObject *source, GAsyncResult *result, gpointer data)
{
  RxConn *conn = data;

  if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), result, NULL, NULL)) {
    conn_close_own(conn);
    return;
  }
  /* the answer is complete: the client sees it end, then the connection's
   * end, while its body is still read and thrown away */
  g_socket_shutdown(conn->socket, FALSE, TRUE, NULL);
  drain_next(conn);
}

static const char too_large_answer[] = "HTTP/1.1 413 Payload Too Large\r\n"
                                       "Content-Type: text/plain\r\n"
                                       "Content-Length: 24\r\n"
                                       "Connection: close\r\n"
                                       "\r\n"
                                       "request body too large\r\n";
static const char bad_length_answer[] = "HTTP/1.1 400 Bad Request\r\n"
                                        "Content-Type: text/plain\r\n"
                                        "Content-Length: 24\r\n"
                                        "Connection: close\r\n"
                                        "\r\n"
                                        "invalid Content-Length\r\n";

/* Answers @answer (a whole HTTP response, a static string) before the body,
 * then reads and discards the body for a few seconds. */
static void
refuse_early(RxConn *conn, SoupServerMessage *msg, const char *answer, gsize answer_len)
{
  RxReceiver *rx = conn->rx;
  gint64 drain_s = MIN(RX_DRAIN_SECONDS, rx->opt.body_timeout_s);

  g_signal_handlers_disconnect_by_data(msg, conn);
  conn->stolen = soup_server_message_steal_connection(msg);
  if (conn->stolen == NULL) {
    /* libsoup had already let go: shut it down and let finalization free us */
    g_socket_shutdown(conn->socket, TRUE, TRUE, NULL);
    return;
  }
  conn->phase = CONN_DRAIN;
  conn->reading = FALSE;
  conn->rate_start = 0;
  conn->header_deadline = conn->body_deadline = conn->idle_deadline = 0;
  conn->drain_deadline = g_get_monotonic_time() + drain_s * G_USEC_PER_SEC;
  conn_arm(conn);
  conn->drain_buf = g_malloc(DRAIN_CHUNK);
  g_output_stream_write_all_async(g_io_stream_get_output_stream(conn->stolen), answer, answer_len, G_PRIORITY_DEFAULT,
                                  conn->cancel, on_refusal_written, conn);
}

static void
refuse_too_large(RxConn *conn, SoupServerMessage *msg)
{
  refuse_early(conn, msg, too_large_answer, sizeof too_large_answer - 1);
}

/* ---- SoupServerMessage signals -------------------------------------- */

static RxConn *
conn_of(SoupServerMessage *msg)
{
  GSocketAddress *remote = soup_server_message_get_remote_address(msg);

  return remote != NULL ? g_object_get_qdata(G_OBJECT(remote), conn_quark) : NULL;
}

static void
on_got_headers(SoupServerMessage *msg, gpointer data)
{
  RxConn *conn = data;
  SoupMessageHeaders *headers = soup_server_message_get_request_headers(msg);
  SoupEncoding encoding = soup_message_headers_get_encoding(headers);
  goffset length = 0;

  conn->header_deadline = 0;
  /* kept alive only while the head check can find the next head (rx-guard.h) */
  if (!rx_guard_stream_follows(conn->guard) || conn->rx->stopping)
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection", "close");
  if (encoding == SOUP_ENCODING_CONTENT_LENGTH) {
    const char *all = soup_message_headers_get_list(headers, "Content-Length");

    length = soup_message_headers_get_content_length(headers);
    /* libsoup 3.2.3 parses the value with strtoull: it takes "+5", "-1"
     * and values past 2^63 (those two come out negative, and it then reads
     * the body until the client closes, with no body deadline here: length
     * is not > 0), and of a repeated header the last value. RFC 9112
     * section 6.3: anything but one 1*DIGIT value is answered 400. */
    if (length < 0 || all == NULL || *all == '\0' || strspn(all, "0123456789") != strlen(all)) {
      refuse_early(conn, msg, bad_length_answer, sizeof bad_length_answer - 1);
      return;
    }
    if (length > conn->rx->opt.max_body) {
      refuse_too_large(conn, msg);
      return;
    }
  }
  if (length > 0 || encoding == SOUP_ENCODING_CHUNKED || encoding == SOUP_ENCODING_EOF)
    conn->body_deadline = g_get_monotonic_time() + (gint64) conn->rx->opt.body_timeout_s * G_USEC_PER_SEC;
  conn_active(conn);
}

static void
on_got_chunk(SoupServerMessage *msg, GBytes *chunk, gpointer data)
{
  RxConn *conn = data;
  RxReceiver *rx = conn->rx;
  gint64 size = (gint64) g_bytes_get_size(chunk);

  conn->body_seen += size;
  if (conn->body_seen > rx->opt.max_body) {
    refuse_too_large(conn, msg);
    return;
  }
  if (!conn->counted)
    return; /* being closed */
  /* libsoup keeps the body until the request is answered */
  conn->body_held += size;
  rx->body_bytes += size;
  rx->body_bytes_peak = MAX(rx->body_bytes_peak, rx->body_bytes);
  while (rx->body_bytes > rx->opt.max_body_memory) {
    RxConn *victim = pick_victim(rx, TRUE);

    if (victim == NULL)
      break;
    rx->body_memory_evictions++;
    conn_kill(victim);
    if (victim == conn)
      return;
  }
  conn_active(conn);
}

static void
on_got_body(SoupServerMessage *msg, gpointer data)
{
  RxConn *conn = data;

  conn->body_deadline = 0;
  conn->rate_start = 0;
  conn->reading = FALSE;
  conn_active(conn);
}

static void
on_progress(SoupServerMessage *msg, gpointer data)
{
  conn_active(data);
}

static void
on_wrote_body_data(SoupServerMessage *msg, guint size, gpointer data)
{
  conn_active(data);
}

/* The request was answered (or failed): libsoup let go of its body. */
static void
on_finished(SoupServerMessage *msg, gpointer data)
{
  RxConn *conn = data;

  if (!conn->counted)
    return;
  conn->rx->body_bytes -= conn->body_held;
  conn->body_held = 0;
  /* kept alive: libsoup waits for the next request, whose deadlines start
   * with its first byte (on_guard); until then only the idle deadline runs */
  conn->body_seen = 0;
  conn->reading = FALSE;
  conn->waiting = TRUE;
  conn->header_deadline = conn->body_deadline = 0;
  conn->rate_start = 0;
  conn_active(conn);
}

static void
on_request_started(SoupServer *server, SoupServerMessage *msg, gpointer data)
{
  RxConn *conn = conn_of(msg);

  if (conn == NULL)
    return;
  g_signal_connect(msg, "got-headers", G_CALLBACK(on_got_headers), conn);
  g_signal_connect(msg, "got-chunk", G_CALLBACK(on_got_chunk), conn);
  g_signal_connect(msg, "got-body", G_CALLBACK(on_got_body), conn);
  g_signal_connect(msg, "wrote-headers", G_CALLBACK(on_progress), conn);
  g_signal_connect(msg, "wrote-body-data", G_CALLBACK(on_wrote_body_data), conn);
  g_signal_connect(msg, "finished", G_CALLBACK(on_finished), conn);
}

/* ---- answers -------------------------------------------------------- */

static void
answer(SoupServerMessage *msg, guint status, const char *text)
{
  soup_server_message_set_status(msg, status, NULL);
  /* a refused request ends its connection: whatever the client sends after
   * it is not read */
  if (status >= 400)
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection", "close");
  if (text != NULL)
    soup_server_message_set_response(msg, "text/plain", SOUP_MEMORY_COPY, text, strlen(text));
}

/* The accounts registered on @listener for @path. */
static GPtrArray *
accounts_on(RxReceiver *rx, RxListener *listener, const char *path)
{
  GPtrArray *found = g_ptr_array_new();
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init(&iter, rx->accounts);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    RxAccount *account = value;

    if (account->listener == listener && g_str_equal(account->reg->path, path))
      g_ptr_array_add(found, account);
  }
  return found;
}

/* Whether @challenge is what Meta sends (digits) or at least a short plain
 * token: letters, digits and "-._", at most RX_CHALLENGE_MAX characters. Only
 * such a challenge is echoed, so the answer can never be markup or script. */
static gboolean
challenge_is_plain(const char *challenge)
{
  gsize len = strlen(challenge);

  return len > 0 && len <= RX_CHALLENGE_MAX &&
         strspn(challenge, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") == len;
}

static void
handle_get(SoupServerMessage *msg, GHashTable *query, GPtrArray *accounts)
{
  const char *mode = query != NULL ? g_hash_table_lookup(query, "hub.mode") : NULL;
  const char *challenge = query != NULL ? g_hash_table_lookup(query, "hub.challenge") : NULL;
  const char *token = query != NULL ? g_hash_table_lookup(query, "hub.verify_token") : NULL;
  gboolean matched = FALSE;

  /* compare with every account, not stopping at the first match */
  for (guint i = 0; i < accounts->len; i++) {
    RxAccount *account = g_ptr_array_index(accounts, i);

    matched |= wa_token_equal(token, account->reg->verify_token);
  }
  if (!matched || g_strcmp0(mode, "subscribe") != 0 || challenge == NULL || *challenge == '\0') {
    answer(msg, SOUP_STATUS_FORBIDDEN, "forbidden\n");
    return;
  }
  soup_message_headers_replace(soup_server_message_get_response_headers(msg), "X-Content-Type-Options", "nosniff");
  if (!challenge_is_plain(challenge)) {
    answer(msg, SOUP_STATUS_BAD_REQUEST, "hub.challenge is not a plain token\n");
    return;
  }
  soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response(msg, "text/plain", SOUP_MEMORY_COPY, challenge, strlen(challenge));
}

static void
post_unref(RxPost *post)
{
  if (--post->refs > 0)
    return;
  post->rx->posts_in_flight--;
  g_ptr_array_unref(post->failed_accounts);
  g_object_unref(post->msg);
  if (post->rx->stopping)
    rx_receiver_stop(post->rx, NULL);
  g_free(post);
}

/* The message finished (answered, or its connection died): it no longer
 * needs the post. */
static void
on_post_msg_done(SoupServerMessage *msg, gpointer data)
{
  RxPost *post = data;

  if (post->msg_gone)
    return;
  post->msg_gone = TRUE;
  g_signal_handlers_disconnect_by_data(msg, post);
  post_unref(post);
}

static void
post_answer(RxPost *post)
{
  RxReceiver *rx = post->rx;

  if (post->msg_gone) {
    post_unref(post);
    return;
  }
  if (post->failed) {
    answer(post->msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "could not store the delivery\n");
    for (guint i = 0; i < post->failed_accounts->len; i++)
      rx_notice(rx, g_ptr_array_index(post->failed_accounts, i), "storage",
                "The receiver could not store a webhook delivery (its journal failed, e.g. "
                "the disk is full); Meta will deliver it again later.");
  } else {
    soup_server_message_set_status(post->msg, SOUP_STATUS_OK, NULL);
  }
  post->conn->paused = FALSE;
  conn_active(post->conn);
  soup_server_message_unpause(post->msg);
  /* the appends' reference; the message keeps its own until "finished" */
  post_unref(post);
}

static void
on_appended(guint stored, guint duplicates, const GError *error, gpointer data)
{
  RxAppend *append = data;
  RxPost *post = append->post;
  RxAccount *account = g_hash_table_lookup(post->rx->accounts, append->account);

  if (g_error_matches(error, RX_JOURNAL_ERROR, RX_JOURNAL_ERROR_FULL)) {
    /* a bound, not a failure: the journal's message says which and what to do */
    post->failed = TRUE;
    rx_notice(post->rx, append->account, "full", error->message);
    rx_log("a webhook delivery was refused: %s", error->message);
  } else if (error != NULL) {
    post->failed = TRUE;
    g_ptr_array_add(post->failed_accounts, g_steal_pointer(&append->account));
    rx_log("a webhook delivery could not be stored: %s", error->message);
  } else if (account != NULL) {
    account->received += stored;
    account->duplicates += duplicates;
  }
  g_free(append->account);
  g_free(append);
  if (--post->pending == 0)
    post_answer(post);
}

static void
handle_post(RxConn *conn, SoupServerMessage *msg, GPtrArray *accounts)
{
  RxReceiver *rx = conn->rx;
  SoupMessageBody *request_body = soup_server_message_get_request_body(msg);
  g_autoptr(GBytes) body = soup_message_body_flatten(request_body);
  const char *data = g_bytes_get_data(body, NULL);
  gsize len = g_bytes_get_size(body);
  const char *signature =
    soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "X-Hub-Signature-256");
  g_auto(RxRoute) route = {0};
  GHashTableIter iter;
  gpointer key, value;
  RxPost *post;

  switch (rx_route_post(data, len, signature, accounts, &route)) {
  case RX_ROUTE_TOO_DEEP:
    answer(msg, SOUP_STATUS_BAD_REQUEST, "JSON nested too deeply\n");
    return;
  case RX_ROUTE_UNSIGNED:
    for (guint i = 0; i < accounts->len; i++) {
      RxAccount *account = g_ptr_array_index(accounts, i);

      rx_notice(rx, account->reg->account, "signature",
                "A webhook delivery on this account's path carried no valid signature for any "
                "registered app secret, and was refused. Check the app secret in the account "
                "settings.");
    }
    answer(msg, SOUP_STATUS_UNAUTHORIZED, "signature does not match\n");
    return;
  case RX_ROUTE_NOT_WEBHOOK:
    answer(msg, SOUP_STATUS_BAD_REQUEST, "not a WhatsApp Business webhook\n");
    return;
  case RX_ROUTE_OK:
    break;
  }

  /* rx_notice sends one notice per code and account a minute: one call per
   * account stands for all of this delivery's unclaimed changes */
  for (guint i = 0; route.unclaimed > 0 && i < route.signed_by->len; i++) {
    RxAccount *account = g_ptr_array_index(route.signed_by, i);

    account->unclaimed += route.unclaimed;
    rx_notice(rx, account->reg->account, "unclaimed",
              "A signed webhook change on this account's path named a phone number ID (or "
              "WhatsApp Business Account) that no registered account claims; it was dropped. "
              "Check the phone number ID and WABA ID of the accounts using this app.");
  }

  if (g_hash_table_size(route.routed) == 0) {
    soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
    return;
  }

  post = g_new0(RxPost, 1);
  post->rx = rx;
  post->conn = conn;
  post->msg = g_object_ref(msg);
  post->refs = 2;
  post->failed_accounts = g_ptr_array_new_with_free_func(g_free);
  rx->posts_in_flight++;
  g_signal_connect(msg, "finished", G_CALLBACK(on_post_msg_done), post);
  g_signal_connect(msg, "disconnected", G_CALLBACK(on_post_msg_done), post);
  soup_server_message_pause(msg);
  conn->paused = TRUE;
  conn_arm(conn);

  post->pending = g_hash_table_size(route.routed);
  g_hash_table_iter_init(&iter, route.routed);
  while (g_hash_table_iter_next(&iter, &key, &value)) {
    RxAppend *append = g_new0(RxAppend, 1);

    append->post = post;
    append->account = g_strdup(key);
    g_hash_table_iter_steal(&iter);
    rx_journal_append(rx->journal, value, g_get_real_time() / G_USEC_PER_SEC, on_appended, append);
  }
}

static void
on_request(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query, gpointer data)
{
  RxReceiver *rx = data;
  RxConn *conn = conn_of(msg);
  const char *method = soup_server_message_get_method(msg);
  g_autoptr(GPtrArray) accounts = NULL;

  rx->requests++;
  if (conn == NULL) {
    answer(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, NULL);
    return;
  }
  accounts = accounts_on(rx, conn->listener, path);
  if (accounts->len == 0) {
    answer(msg, SOUP_STATUS_NOT_FOUND, "not found\n");
    return;
  }
  if (method == SOUP_METHOD_GET) {
    handle_get(msg, query, accounts);
  } else if (method == SOUP_METHOD_POST) {
    handle_post(conn, msg, accounts);
  } else {
    answer(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "method not allowed\n");
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow", "GET, POST");
  }
}

/* ---- the server as a whole ------------------------------------------ */

/* SoupServer 3.2 keeps a connection alive after an answer only when it has a
 * listener of its own (request_finished() in soup-server.c checks
 * priv->listeners), and every connection here comes through
 * soup_server_accept_iostream(). So the server gets a listener nobody can
 * reach: a UNIX socket in the 0700 state directory, unlinked as soon as it
 * listens (a socket without a name cannot be connected to). Without it the
 * receiver still works, one request per connection. */
static void
server_keep_alive(RxReceiver *rx)
{
  g_autofree char *path = g_build_filename(rx->opt.dir, "ka.sock", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = rx_unix_listen(path, NULL, &error);

  if (socket != NULL) {
    rx_unix_unlink(path);
    if (soup_server_listen_socket(rx->server, socket, 0, &error))
      return;
  }
  rx_log("connections are not kept alive: %s", error->message);
}

void
rx_http_init(RxReceiver *rx)
{
  conn_quark = g_quark_from_static_string("rx-conn");
  rx->listeners = g_ptr_array_new();
  rx->conns = g_hash_table_new(NULL, NULL);
  rx->peers = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  /* no "server-header": the receiver does not advertise what it runs */
  rx->server = soup_server_new(NULL, NULL);
  g_signal_connect(rx->server, "request-started", G_CALLBACK(on_request_started), rx);
  soup_server_add_handler(rx->server, NULL, on_request, rx, NULL);
  server_keep_alive(rx);
}

JsonObject *
rx_http_status(RxReceiver *rx)
{
  JsonObject *obj = json_object_new();

  json_object_set_int_member(obj, "connections", rx->connections);
  json_object_set_int_member(obj, "body_bytes", rx->body_bytes);
  json_object_set_int_member(obj, "body_bytes_peak", rx->body_bytes_peak);
  json_object_set_int_member(obj, "refused", (gint64) rx->refused_connections);
  json_object_set_int_member(obj, "refused_per_address", (gint64) rx->peer_refused);
  json_object_set_int_member(obj, "dropped_for_new", (gint64) rx->evicted_connections);
  json_object_set_int_member(obj, "dropped_too_slow", (gint64) rx->slow_connections);
  json_object_set_int_member(obj, "dropped_for_memory", (gint64) rx->body_memory_evictions);
  return obj;
}

void
rx_http_stop_listening(RxReceiver *rx)
{
  for (guint i = 0; i < rx->listeners->len; i++)
    listener_close(g_ptr_array_index(rx->listeners, i));
}

void
rx_http_shutdown(RxReceiver *rx)
{
  GHashTableIter iter;
  gpointer key;
  gint64 until = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;

  rx_http_stop_listening(rx);
  g_hash_table_iter_init(&iter, rx->conns);
  while (g_hash_table_iter_next(&iter, &key, NULL))
    conn_kill(key);
  /* disconnects what libsoup still holds: their streams go, and with them
   * the connections (on_stream_gone) */
  g_clear_object(&rx->server);
  while (g_hash_table_size(rx->conns) > 0 && g_get_monotonic_time() < until)
    g_main_context_iteration(NULL, FALSE);
  if (g_hash_table_size(rx->conns) > 0)
    rx_log("%u connections did not close in time", g_hash_table_size(rx->conns));
}
