/* rx-control.c: wabiz-receiver's UNIX socket, <dir>/rx.sock, speaking
 * plugin/receiver/PROTOCOL.md to plugin instances (and to --status/--stop):
 * HELLO, REGISTER, SUBSCRIBE / EVENT / ACK, UNREGISTER, STATUS, STOP, and
 * the unsolicited NOTICE and LISTEN.
 *
 * Requests of one client are answered strictly in order: while one waits for
 * the journal, the next is not read. Output is queued and written
 * asynchronously, so a slow client never blocks the receiver; at most
 * RX_MAX_UNACKED events wait for an ACK per subscription, which bounds what
 * is queued for it.
 *
 * Must not: serve a peer of another uid, log a registration (it holds the app
 * secret) or an event, or send an event of an account to a connection that
 * does not hold its subscription. */
#include "rx.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wabiz-config.h"
#include "wa-json.h"
#include "wa-rxline.h"

#define READ_CHUNK 65536
/* Events read from the journal at a time for one subscription. */
#define FETCH_BATCH 16
/* Output queued for a client beyond which no more events are fetched and no
 * more requests are handled for it, until it reads what is queued. */
#define OUT_HIGH_WATER (8u * 1024u * 1024u)

struct _RxClient {
  int refs;
  RxReceiver *rx;
  GSocketConnection *conn;
  GCancellable *cancel;      /* everything, at close */
  GCancellable *read_cancel; /* reading only: no more requests */
  WaRxlineBuf *in;
  guint8 *buf;
  GQueue lines;       /* char*: complete lines not yet handled */
  gboolean reading;   /* a read is pending */
  gboolean busy;      /* a request waits for the journal */
  gboolean hello;     /* HELLO was accepted */
  gboolean messenger; /* registered or subscribed an account */
  GQueue out;         /* GBytes*: lines not yet written */
  gsize out_bytes;    /* their total size */
  gboolean writing;
  gboolean closing; /* close once the output is written */
  gboolean closed;
};

struct _RxSub {
  RxClient *client; /* a reference */
  char *account;
  gint64 sent_upto; /* the highest seq sent */
  GArray *unacked;  /* gint64 seqs sent and not acknowledged, ascending */
  gboolean fetching;
  gboolean again; /* more events were committed during a fetch */
  gboolean dead;  /* ended while a fetch was pending: the fetch frees it */
};

static void client_process(RxClient *client);
static void client_close(RxClient *client);
static void client_drained(RxClient *client);
static void sub_fetch(RxSub *sub);

/* ---- clients: lifetime and output ------------------------------------ */

static RxClient *
client_ref(RxClient *client)
{
  client->refs++;
  return client;
}

static void
client_unref(RxClient *client)
{
  if (--client->refs > 0)
    return;
  g_clear_object(&client->conn);
  g_clear_object(&client->cancel);
  g_clear_object(&client->read_cancel);
  wa_rxline_buf_free(client->in);
  g_free(client->buf);
  g_queue_clear_full(&client->lines, g_free);
  g_queue_clear_full(&client->out, (GDestroyNotify) g_bytes_unref);
  g_free(client);
}

static void client_flush(RxClient *client);

static void
on_written(GObject *source, GAsyncResult *result, gpointer data)
{
  RxClient *client = data;
  g_autoptr(GError) error = NULL;
  gboolean ok = g_output_stream_write_all_finish(G_OUTPUT_STREAM(source), result, NULL, &error);

  client->writing = FALSE;
  if (!client->closed) {
    GBytes *done = g_queue_pop_head(&client->out);
    gboolean was_full = client->out_bytes >= OUT_HIGH_WATER;

    client->out_bytes -= g_bytes_get_size(done);
    g_bytes_unref(done);
    if (!ok) {
      client_close(client);
    } else {
      client_flush(client);
      if (was_full && client->out_bytes < OUT_HIGH_WATER)
        client_drained(client);
    }
  }
  client_unref(client);
}

static void
client_flush(RxClient *client)
{
  GBytes *head;

  if (client->writing || client->closed)
    return;
  head = g_queue_peek_head(&client->out);
  if (head == NULL) {
    if (client->closing)
      client_close(client);
    return;
  }
  client->writing = TRUE;
  g_output_stream_write_all_async(g_io_stream_get_output_stream(G_IO_STREAM(client->conn)),
                                  g_bytes_get_data(head, NULL), g_bytes_get_size(head), G_PRIORITY_DEFAULT,
                                  client->cancel, on_written, client_ref(client));
}

static void
client_send(RxClient *client, const char *verb, JsonObject *payload)
{
  char *line;

  if (client->closed)
    return;
  line = wa_rxline_format(verb, payload);
  client->out_bytes += strlen(line);
  g_queue_push_tail(&client->out, g_bytes_new_take(line, strlen(line)));
  client_flush(client);
}

static void
send_ok(RxClient *client, JsonObject *payload /* taken, may be NULL */)
{
  g_autoptr(JsonObject) obj = payload != NULL ? payload : json_object_new();

  client_send(client, "OK", obj);
}

/* Answers ERR; @fatal closes the connection once the answer is written. */
static void
send_err(RxClient *client, const char *code, gboolean fatal, const char *message)
{
  g_autoptr(JsonObject) obj = json_object_new();

  json_object_set_string_member(obj, "code", code);
  json_object_set_string_member(obj, "message", message);
  client_send(client, "ERR", obj);
  if (fatal) {
    client->closing = TRUE;
    g_cancellable_cancel(client->read_cancel); /* no more requests */
    g_queue_clear_full(&client->lines, g_free);
    client_flush(client);
  }
}

/* ---- subscriptions -------------------------------------------------- */

static void
sub_free(RxSub *sub)
{
  g_array_unref(sub->unacked);
  g_free(sub->account);
  client_unref(sub->client);
  g_free(sub);
}

/* Ends a subscription (the account's sub pointer is cleared by the caller). */
static void
sub_end(RxSub *sub)
{
  if (sub->fetching)
    sub->dead = TRUE;
  else
    sub_free(sub);
}

static void
on_fetched(GPtrArray *events, const GError *error, gpointer data)
{
  RxSub *sub = data;
  RxClient *client = sub->client;
  guint room = MIN(RX_MAX_UNACKED - sub->unacked->len, FETCH_BATCH);
  gboolean full;

  sub->fetching = FALSE;
  if (sub->dead) {
    sub_free(sub);
    return;
  }
  if (error != NULL) {
    rx_log("cannot read the journal: %s", error->message);
    return;
  }
  full = events != NULL && events->len > 0 && events->len >= room;
  for (guint i = 0; events != NULL && i < events->len; i++) {
    RxEvent *event = g_ptr_array_index(events, i);
    g_autoptr(JsonObject) obj = NULL;
    g_autofree char *sealed = NULL;

    if (event->seq <= sub->sent_upto || sub->unacked->len >= RX_MAX_UNACKED)
      continue;
    sealed = g_base64_encode(g_bytes_get_data(event->sealed, NULL), g_bytes_get_size(event->sealed));
    obj = json_object_new();
    json_object_set_string_member(obj, "account", sub->account);
    json_object_set_int_member(obj, "seq", event->seq);
    json_object_set_int_member(obj, "received", event->received);
    json_object_set_string_member(obj, "sealed", sealed);
    client_send(client, "EVENT", obj);
    sub->sent_upto = event->seq;
    g_array_append_val(sub->unacked, event->seq);
  }
  if (sub->again || full) {
    sub->again = FALSE;
    sub_fetch(sub);
  }
}

static void
sub_fetch(RxSub *sub)
{
  guint room;

  if (sub->fetching) {
    sub->again = TRUE;
    return;
  }
  /* a client that does not read gets no more until it does (client_drained) */
  if (sub->client->closed || sub->unacked->len >= RX_MAX_UNACKED || sub->client->out_bytes >= OUT_HIGH_WATER ||
      sub->client->rx->journal == NULL)
    return;
  room = MIN(RX_MAX_UNACKED - sub->unacked->len, FETCH_BATCH);
  sub->fetching = TRUE;
  rx_journal_fetch(sub->client->rx->journal, sub->account, sub->sent_upto, room, on_fetched, sub);
}

void
rx_control_new_events(const char *account_id, gint64 last_seq, gpointer data)
{
  RxReceiver *rx = data;
  RxAccount *account = g_hash_table_lookup(rx->accounts, account_id);

  if (account != NULL && account->sub != NULL && last_seq > account->sub->sent_upto)
    sub_fetch(account->sub);
}

/* ---- notices -------------------------------------------------------- */

void
rx_notice(RxReceiver *rx, const char *account_id, const char *code, const char *message)
{
  g_autofree char *key = g_strconcat(code, "\n", account_id != NULL ? account_id : "", NULL);
  gint64 now = g_get_monotonic_time() / G_USEC_PER_SEC;
  gpointer last;
  g_autoptr(JsonObject) obj = json_object_new();
  gboolean sent = FALSE;

  if (g_hash_table_lookup_extended(rx->notices, key, NULL, &last) &&
      now - (gint64) GPOINTER_TO_SIZE(last) < RX_NOTICE_INTERVAL_S)
    return;
  if (account_id != NULL)
    json_object_set_string_member(obj, "account", account_id);
  else
    json_object_set_null_member(obj, "account");
  json_object_set_string_member(obj, "code", code);
  json_object_set_string_member(obj, "message", message);
  if (account_id != NULL) {
    RxAccount *account = g_hash_table_lookup(rx->accounts, account_id);

    if (account != NULL && account->sub != NULL && !account->sub->client->closed) {
      client_send(account->sub->client, "NOTICE", obj);
      sent = TRUE;
    }
  } else {
    for (GList *l = rx->clients; l != NULL; l = l->next) {
      RxClient *client = l->data;

      if (client->hello && !client->closed) {
        client_send(client, "NOTICE", obj);
        sent = TRUE;
      }
    }
  }
  /* a notice nobody saw does not use up the minute */
  if (sent)
    g_hash_table_insert(rx->notices, g_steal_pointer(&key), GSIZE_TO_POINTER((gsize) now));
}

void
rx_control_listen_changed(RxReceiver *rx, RxAccount *account)
{
  g_autoptr(JsonObject) obj = json_object_new();
  g_autofree char *url = rx_registration_url(account->reg);

  if (account->sub == NULL || account->sub->client->closed)
    return;
  json_object_set_string_member(obj, "account", account->reg->account);
  json_object_set_string_member(obj, "url", url);
  rx_account_listen_state(account, obj);
  client_send(account->sub->client, "LISTEN", obj);
}

/* ---- requests ------------------------------------------------------- */

/* A request waiting for the journal: the client, and what it needs. */
typedef struct {
  RxClient *client;
  char *account;
  gint64 seq;
  RxRegistration *reg;
  RxListener *listener;
  char *down;     /* REGISTER: why its listener cannot be opened (it is tried again) */
  gboolean taken; /* ... because someone else holds the address */
} RxRequest;

static RxRequest *
request_new(RxClient *client, const char *account)
{
  RxRequest *req = g_new0(RxRequest, 1);

  req->client = client_ref(client);
  req->account = g_strdup(account);
  client->busy = TRUE;
  return req;
}

/* The request is over: the client may go on with the next line. */
static void
request_done(RxRequest *req)
{
  RxClient *client = req->client;

  rx_registration_free(req->reg);
  rx_listener_release(req->listener);
  g_free(req->down);
  g_free(req->account);
  g_free(req);
  client->busy = FALSE;
  if (!client->closed)
    client_process(client);
  client_unref(client);
}

static gint64
pending_of(GHashTable *counts, const char *account)
{
  return counts != NULL ? GPOINTER_TO_INT(g_hash_table_lookup(counts, account)) : 0;
}

static const char *
account_of(JsonObject *payload, RxClient *client)
{
  const char *account = wa_json_get_string(payload, "account");

  if (account == NULL || *account == '\0') {
    send_err(client, "invalid", FALSE, "\"account\" is missing");
    return NULL;
  }
  return account;
}

static RxAccount *
registered(RxClient *client, const char *account_id)
{
  RxAccount *account = g_hash_table_lookup(client->rx->accounts, account_id);

  if (account == NULL)
    send_err(client, "not-registered", FALSE, "this account is not registered with the receiver");
  return account;
}

static void
handle_hello(RxClient *client, JsonObject *payload)
{
  g_autoptr(JsonObject) ok = json_object_new();

  if (client->hello) {
    send_err(client, "invalid", FALSE, "HELLO was already sent on this connection");
    return;
  }
  if (payload == NULL || wa_json_get_int(payload, "proto", 0) != WA_RXLINE_PROTO) {
    send_err(client, "version", TRUE,
             "this receiver speaks protocol version 1 only; update the plugin or the receiver");
    return;
  }
  client->hello = TRUE;
  json_object_set_int_member(ok, "proto", WA_RXLINE_PROTO);
  json_object_set_string_member(ok, "version", WABIZ_VERSION);
  json_object_set_int_member(ok, "pid", getpid());
  send_ok(client, g_steal_pointer(&ok));
}

static void
on_register_pending(GHashTable *counts, const GError *error, gpointer data)
{
  RxRequest *req = data;
  RxAccount *account = g_hash_table_lookup(req->client->rx->accounts, req->account);
  JsonObject *ok = json_object_new();

  if (account != NULL) {
    g_autofree char *url = rx_registration_url(account->reg);

    json_object_set_string_member(ok, "account", req->account);
    json_object_set_string_member(ok, "url", url);
    json_object_set_int_member(ok, "port", account->reg->port);
    json_object_set_int_member(ok, "pending", pending_of(counts, req->account));
    rx_account_listen_state(account, ok);
  }
  send_ok(req->client, ok);
  request_done(req);
}

/* @account's own listener again (after a REGISTER that gave it up failed). */
static void
reopen(RxReceiver *rx, RxAccount *account)
{
  const char *ignored;
  char *down;
  gboolean taken;
  RxListener *listener = rx_account_open_listener(rx, account->reg, FALSE, &down, &taken, &ignored, NULL);

  rx_account_set_listener(rx, account, listener, down, taken);
}

static void
on_register_saved(const GError *error, gpointer data)
{
  RxRequest *req = data;
  RxReceiver *rx = req->client->rx;
  RxAccount *account;
  g_autofree char *url = NULL;

  if (error != NULL) {
    g_autofree char *message = g_strdup_printf("cannot save the registration: %s", error->message);

    send_err(req->client, "storage", FALSE, message);
    /* the old registration stays; give its listener back if it gave it up */
    account = g_hash_table_lookup(rx->accounts, req->account);
    g_clear_pointer(&req->listener, rx_listener_release);
    if (account != NULL && account->listener == NULL)
      reopen(rx, account);
    request_done(req);
    return;
  }
  if (req->client->closed) {
    /* shutting down: the registration is saved and loads at the next start */
    request_done(req);
    return;
  }
  account = g_hash_table_lookup(rx->accounts, req->account);
  if (account == NULL) {
    account = g_new0(RxAccount, 1);
    g_hash_table_insert(rx->accounts, g_strdup(req->account), account);
  }
  rx_registration_free(account->reg);
  account->reg = g_steal_pointer(&req->reg);
  rx_account_set_listener(rx, account, g_steal_pointer(&req->listener), g_steal_pointer(&req->down), req->taken);
  req->client->messenger = TRUE;
  url = rx_registration_url(account->reg);
  rx_log("registered account %s on %s", req->account, url);
  rx_journal_pending(rx->journal, on_register_pending, req);
}

/* Accounts sharing one UNIX socket share its group too. */
static gboolean
unix_socket_agrees(RxReceiver *rx, RxRegistration *reg, GError **error)
{
  GHashTableIter iter;
  gpointer value;

  if (rx_bind_unix_path(reg->bind) == NULL)
    return TRUE;
  g_hash_table_iter_init(&iter, rx->accounts);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    RxAccount *other = value;

    if (!g_str_equal(other->reg->account, reg->account) && g_str_equal(other->reg->bind, reg->bind) &&
        g_strcmp0(other->reg->socket_group, reg->socket_group) != 0) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                  "%s is already used by another account with socket group \"%s\"; accounts "
                  "sharing a socket must give the same group",
                  reg->bind, other->reg->socket_group != NULL ? other->reg->socket_group : "");
      return FALSE;
    }
  }
  return TRUE;
}

static void
handle_register(RxClient *client, JsonObject *payload)
{
  RxReceiver *rx = client->rx;
  g_autoptr(RxRegistration) reg = NULL;
  g_autoptr(GError) error = NULL;
  const char *code = "invalid";
  RxAccount *old;
  RxListener *listener;
  RxRequest *req;
  char *json;
  char *down = NULL;
  gboolean taken = FALSE;

  if (payload == NULL || (reg = rx_registration_from_json(payload, &code, &error)) == NULL) {
    send_err(client, code, FALSE, error != NULL ? error->message : "REGISTER needs a payload");
    return;
  }
  if (!rx_confine_covers(rx, reg)) {
    /* it restarts to read the TLS files; the client registers again */
    send_err(client, "restart", TRUE,
             "the receiver restarts to read these TLS files (its confinement cannot widen while "
             "it runs): connect and register again in a moment");
    return;
  }
  old = g_hash_table_lookup(rx->accounts, reg->account);
  /* "any port" again: keep the port bound for this account while it is free */
  if (reg->port == 0 && rx_bind_unix_path(reg->bind) == NULL && old != NULL && old->reg->port != 0) {
    reg->port = old->reg->port;
    reg->requested_port = 0;
  }
  if (!unix_socket_agrees(rx, reg, &error)) {
    send_err(client, "bind", FALSE, error->message);
    return;
  }
  listener = rx_account_open_listener(rx, reg, TRUE, &down, &taken, &code, &error);
  if (listener == NULL && down == NULL && g_strcmp0(code, "bind") == 0 && old != NULL && old->listener != NULL &&
      rx_listener_users(old->listener) == 1 && old->reg->port == reg->port && g_str_equal(old->reg->bind, reg->bind)) {
    /* the account alone uses the port and changes its TLS settings */
    g_clear_error(&error);
    g_clear_pointer(&old->listener, rx_listener_release);
    listener = rx_account_open_listener(rx, reg, TRUE, &down, &taken, &code, &error);
    if (listener == NULL && down == NULL)
      reopen(rx, old);
  }
  if (listener == NULL && down == NULL) {
    send_err(client, code, FALSE, error->message);
    return;
  }
  req = request_new(client, reg->account);
  req->listener = listener;
  req->down = down;
  req->taken = taken;
  json = rx_registration_to_json(reg);
  req->reg = g_steal_pointer(&reg);
  rx_journal_save_account(rx->journal, req->account, json, on_register_saved, req);
  sodium_memzero(json, strlen(json));
  g_free(json);
}

static void
on_subscribe_pending(GHashTable *counts, const GError *error, gpointer data)
{
  RxRequest *req = data;
  RxAccount *account = g_hash_table_lookup(req->client->rx->accounts, req->account);
  JsonObject *ok = json_object_new();

  json_object_set_string_member(ok, "account", req->account);
  json_object_set_int_member(ok, "pending", pending_of(counts, req->account));
  if (account != NULL)
    rx_account_listen_state(account, ok);
  send_ok(req->client, ok);
  /* events follow the OK */
  if (account != NULL && account->sub != NULL && account->sub->client == req->client)
    sub_fetch(account->sub);
  request_done(req);
}

static void
handle_subscribe(RxClient *client, JsonObject *payload)
{
  const char *account_id = account_of(payload, client);
  RxAccount *account;
  RxSub *sub;

  if (account_id == NULL || (account = registered(client, account_id)) == NULL)
    return;
  if (account->sub != NULL && account->sub->client != client) {
    send_err(client, "busy", FALSE,
             "another connection (another Pidgin or Finch?) already receives this account's "
             "events");
    return;
  }
  if (account->sub != NULL) {
    /* subscribing again on the same connection starts over */
    g_clear_pointer(&account->sub, sub_end);
  }
  sub = g_new0(RxSub, 1);
  sub->client = client_ref(client);
  sub->account = g_strdup(account_id);
  sub->unacked = g_array_new(FALSE, FALSE, sizeof(gint64));
  account->sub = sub;
  client->messenger = TRUE;
  rx_journal_pending(client->rx->journal, on_subscribe_pending, request_new(client, account_id));
}

static void
on_acked(const GError *error, gpointer data)
{
  RxRequest *req = data;
  RxAccount *account = g_hash_table_lookup(req->client->rx->accounts, req->account);
  JsonObject *ok;

  if (error != NULL) {
    g_autofree char *message = g_strdup_printf("cannot delete acknowledged events: %s", error->message);

    send_err(req->client, "storage", FALSE, message);
    request_done(req);
    return;
  }
  ok = json_object_new();
  json_object_set_string_member(ok, "account", req->account);
  json_object_set_int_member(ok, "seq", req->seq);
  send_ok(req->client, ok);
  if (account != NULL && account->sub != NULL && account->sub->client == req->client) {
    RxSub *sub = account->sub;
    guint n = 0;

    while (n < sub->unacked->len && g_array_index(sub->unacked, gint64, n) <= req->seq)
      n++;
    g_array_remove_range(sub->unacked, 0, n);
    sub->sent_upto = MAX(sub->sent_upto, req->seq);
    sub_fetch(sub);
  }
  request_done(req);
}

static void
handle_ack(RxClient *client, JsonObject *payload)
{
  const char *account_id = account_of(payload, client);
  JsonNode *seq_node = payload != NULL ? json_object_get_member(payload, "seq") : NULL;
  RxAccount *account;
  RxRequest *req;

  if (account_id == NULL || (account = registered(client, account_id)) == NULL)
    return;
  if (seq_node == NULL || !JSON_NODE_HOLDS_VALUE(seq_node) || json_node_get_value_type(seq_node) != G_TYPE_INT64 ||
      json_node_get_int(seq_node) < 0) {
    send_err(client, "invalid", FALSE, "\"seq\" must be a non-negative number");
    return;
  }
  if (account->sub != NULL && account->sub->client != client) {
    send_err(client, "busy", FALSE, "another connection receives this account's events");
    return;
  }
  req = request_new(client, account_id);
  req->seq = json_node_get_int(seq_node);
  rx_journal_ack(client->rx->journal, account_id, req->seq, on_acked, req);
}

static void
on_unregistered(const GError *error, gpointer data)
{
  RxRequest *req = data;
  RxReceiver *rx = req->client->rx;
  RxAccount *account = g_hash_table_lookup(rx->accounts, req->account);
  JsonObject *ok;

  if (error != NULL) {
    g_autofree char *message = g_strdup_printf("cannot forget the registration: %s", error->message);

    send_err(req->client, "storage", FALSE, message);
    request_done(req);
    return;
  }
  if (account != NULL) {
    g_clear_pointer(&account->sub, sub_end);
    g_hash_table_remove(rx->accounts, req->account);
    rx_log("unregistered account %s", req->account);
  }
  ok = json_object_new();
  json_object_set_string_member(ok, "account", req->account);
  send_ok(req->client, ok);
  request_done(req);
}

static void
handle_unregister(RxClient *client, JsonObject *payload)
{
  const char *account_id = account_of(payload, client);

  if (account_id == NULL || registered(client, account_id) == NULL)
    return;
  rx_journal_remove_account(client->rx->journal, account_id, on_unregistered, request_new(client, account_id));
}

static gint
compare_accounts(gconstpointer a, gconstpointer b)
{
  const RxAccount *x = *(RxAccount *const *) a;
  const RxAccount *y = *(RxAccount *const *) b;

  return strcmp(x->reg->account, y->reg->account);
}

static void
on_status_pending(GHashTable *counts, const GError *error, gpointer data)
{
  RxRequest *req = data;
  RxReceiver *rx = req->client->rx;
  JsonObject *ok = json_object_new();
  JsonArray *listeners = json_array_new();
  JsonArray *accounts = json_array_new();
  g_autoptr(GPtrArray) sorted = g_ptr_array_new();
  GHashTableIter iter;
  gpointer value;
  guint clients = 0;

  for (GList *l = rx->clients; l != NULL; l = l->next) {
    if (!((RxClient *) l->data)->closed)
      clients++;
  }
  json_object_set_string_member(ok, "version", WABIZ_VERSION);
  json_object_set_int_member(ok, "pid", getpid());
  json_object_set_int_member(ok, "clients", clients);
  for (guint i = 0; i < rx->listeners->len; i++)
    json_array_add_object_element(listeners, rx_listener_status(rx, g_ptr_array_index(rx->listeners, i)));
  json_object_set_array_member(ok, "listeners", listeners);
  json_object_set_object_member(ok, "http", rx_http_status(rx));
  g_hash_table_iter_init(&iter, rx->accounts);
  while (g_hash_table_iter_next(&iter, NULL, &value))
    g_ptr_array_add(sorted, value);
  g_ptr_array_sort(sorted, compare_accounts);
  for (guint i = 0; i < sorted->len; i++) {
    RxAccount *account = g_ptr_array_index(sorted, i);
    JsonObject *obj = json_object_new();
    g_autofree char *url = rx_registration_url(account->reg);

    json_object_set_string_member(obj, "account", account->reg->account);
    if (account->listener != NULL)
      json_object_set_string_member(obj, "url", url);
    else
      json_object_set_null_member(obj, "url");
    json_object_set_int_member(obj, "pending", pending_of(counts, account->reg->account));
    json_object_set_boolean_member(obj, "subscribed", account->sub != NULL);
    json_object_set_int_member(obj, "received", (gint64) account->received);
    json_object_set_int_member(obj, "duplicates", (gint64) account->duplicates);
    json_object_set_int_member(obj, "unclaimed", (gint64) account->unclaimed);
    rx_account_listen_state(account, obj);
    json_array_add_object_element(accounts, obj);
  }
  json_object_set_array_member(ok, "accounts", accounts);
  send_ok(req->client, ok);
  request_done(req);
}

static void
handle_line(RxClient *client, const char *line, gsize len)
{
  RxReceiver *rx = client->rx;
  g_autofree char *verb = NULL;
  g_autoptr(JsonNode) node = NULL;
  g_autoptr(GError) error = NULL;
  JsonObject *payload;

  if (!wa_rxline_parse(line, len, &verb, &node, &error)) {
    send_err(client, "syntax", TRUE, error->message);
    return;
  }
  payload = node != NULL ? json_node_get_object(node) : NULL;
  if (!client->hello && !g_str_equal(verb, "HELLO")) {
    send_err(client, "hello", TRUE, "the first line must be HELLO");
    return;
  }
  if (g_str_equal(verb, "HELLO")) {
    handle_hello(client, payload);
  } else if (g_str_equal(verb, "REGISTER")) {
    handle_register(client, payload);
  } else if (g_str_equal(verb, "SUBSCRIBE")) {
    handle_subscribe(client, payload);
  } else if (g_str_equal(verb, "ACK")) {
    handle_ack(client, payload);
  } else if (g_str_equal(verb, "UNREGISTER")) {
    handle_unregister(client, payload);
  } else if (g_str_equal(verb, "STATUS")) {
    rx_journal_pending(rx->journal, on_status_pending, request_new(client, NULL));
  } else if (g_str_equal(verb, "STOP")) {
    send_ok(client, NULL);
    rx_receiver_stop(rx, "asked to stop");
  } else {
    g_autofree char *message = g_strdup_printf("unknown request %s", verb);

    send_err(client, "unknown", FALSE, message);
  }
}

/* ---- clients: input ------------------------------------------------- */

static void client_read(RxClient *client);

static void
client_process(RxClient *client)
{
  char *line;

  while (!client->busy && !client->closing && !client->closed && client->out_bytes < OUT_HIGH_WATER &&
         (line = g_queue_pop_head(&client->lines)) != NULL) {
    handle_line(client, line, strlen(line));
    g_free(line);
  }
  if (!client->busy && !client->closing && !client->closed && g_queue_is_empty(&client->lines))
    client_read(client);
}

/* The client read enough of its output: go on with its requests and events. */
static void
client_drained(RxClient *client)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init(&iter, client->rx->accounts);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    RxAccount *account = value;

    if (account->sub != NULL && account->sub->client == client)
      sub_fetch(account->sub);
  }
  if (!client->busy)
    client_process(client);
}

static void
on_read(GObject *source, GAsyncResult *result, gpointer data)
{
  RxClient *client = data;
  g_autoptr(GError) error = NULL;
  gssize n = g_input_stream_read_finish(G_INPUT_STREAM(source), result, &error);
  char *line;
  gsize len;

  client->reading = FALSE;
  if (client->closed || client->closing) {
    client_unref(client);
    return;
  }
  if (n <= 0) {
    client_close(client);
    client_unref(client);
    return;
  }
  if (!wa_rxline_buf_append(client->in, client->buf, (gsize) n, &error)) {
    send_err(client, "syntax", TRUE, error->message);
    client_unref(client);
    return;
  }
  while ((line = wa_rxline_buf_pop(client->in, &len)) != NULL) {
    if (strlen(line) != len) {
      g_free(line);
      send_err(client, "syntax", TRUE, "a line holds a NUL byte");
      client_unref(client);
      return;
    }
    g_queue_push_tail(&client->lines, line);
  }
  client_process(client);
  client_unref(client);
}

static void
client_read(RxClient *client)
{
  if (client->reading)
    return;
  client->reading = TRUE;
  g_input_stream_read_async(g_io_stream_get_input_stream(G_IO_STREAM(client->conn)), client->buf, READ_CHUNK,
                            G_PRIORITY_DEFAULT, client->read_cancel, on_read, client_ref(client));
}

static gboolean
any_keep_running_false(RxReceiver *rx)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init(&iter, rx->accounts);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    if (!((RxAccount *) value)->reg->keep_running)
      return TRUE;
  }
  return FALSE;
}

guint
rx_control_messengers(RxReceiver *rx)
{
  guint n = 0;

  for (GList *l = rx->clients; l != NULL; l = l->next) {
    RxClient *client = l->data;

    if (client->messenger && !client->closed)
      n++;
  }
  return n;
}

static void
client_close(RxClient *client)
{
  RxReceiver *rx = client->rx;
  GHashTableIter iter;
  gpointer value;

  if (client->closed)
    return;
  client->closed = TRUE;
  g_cancellable_cancel(client->cancel);
  g_cancellable_cancel(client->read_cancel);
  g_io_stream_close(G_IO_STREAM(client->conn), NULL, NULL);
  g_hash_table_iter_init(&iter, rx->accounts);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    RxAccount *account = value;

    if (account->sub != NULL && account->sub->client == client)
      g_clear_pointer(&account->sub, sub_end);
  }
  rx->clients = g_list_remove(rx->clients, client);
  if (client->messenger && rx_control_messengers(rx) == 0 && any_keep_running_false(rx))
    rx_receiver_stop(rx, "the last client disconnected and keep_running is false");
  client_unref(client);
}

static gboolean
peer_is_us(GSocketConnection *connection)
{
  g_autoptr(GCredentials) credentials = g_socket_get_credentials(g_socket_connection_get_socket(connection), NULL);

  return credentials != NULL && g_credentials_get_unix_user(credentials, NULL) == getuid();
}

static gboolean
on_control_incoming(GSocketService *service, GSocketConnection *connection, GObject *source, gpointer data)
{
  RxReceiver *rx = data;
  RxClient *client = g_new0(RxClient, 1);

  client->refs = 1;
  client->rx = rx;
  client->conn = g_object_ref(connection);
  client->cancel = g_cancellable_new();
  client->read_cancel = g_cancellable_new();
  client->in = wa_rxline_buf_new();
  client->buf = g_malloc(READ_CHUNK);
  g_queue_init(&client->lines);
  g_queue_init(&client->out);
  rx->clients = g_list_prepend(rx->clients, client);
  if (!peer_is_us(connection)) {
    send_err(client, "peer", TRUE, "this receiver serves only its own user");
    return TRUE;
  }
  if (rx->stopping) {
    /* answer nothing: the receiver is on its way out */
    client_close(client);
    return TRUE;
  }
  client_read(client);
  return TRUE;
}

/* ---- the socket ----------------------------------------------------- */

gboolean
rx_control_start(RxReceiver *rx, GError **error)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GSocketAddress) address = NULL;

  socket = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, error);
  if (socket == NULL)
    return FALSE;
  address = g_unix_socket_address_new(rx->socket_path);
  /* the directory is 0700, so nobody else can reach the socket in the
   * moment between bind() (mode from the umask) and the chmod() to 0600;
   * listen() only comes after it */
  if (!g_socket_bind(socket, address, FALSE, error))
    return FALSE;
  rx->socket_created = TRUE;
  if (chmod(rx->socket_path, 0600) != 0) {
    int err = errno;

    g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "cannot make %s private: %s", rx->socket_path,
                g_strerror(err));
    return FALSE;
  }
  if (!g_socket_listen(socket, error))
    return FALSE;
  rx->control = g_socket_service_new();
  if (!g_socket_listener_add_socket(G_SOCKET_LISTENER(rx->control), socket, NULL, error)) {
    g_clear_object(&rx->control);
    return FALSE;
  }
  g_signal_connect(rx->control, "incoming", G_CALLBACK(on_control_incoming), rx);
  g_socket_service_start(rx->control);
  return TRUE;
}

void
rx_control_stop(RxReceiver *rx)
{
  if (rx->control != NULL) {
    g_socket_service_stop(rx->control);
    g_socket_listener_close(G_SOCKET_LISTENER(rx->control));
    g_clear_object(&rx->control);
  }
  if (rx->socket_created) {
    unlink(rx->socket_path);
    rx->socket_created = FALSE;
  }
  while (rx->clients != NULL)
    client_close(rx->clients->data);
}
