/* rx-account.c: wabiz-receiver's registrations: validating a REGISTER
 * payload (or a saved one), writing it back for the journal, the URL an
 * account's webhooks are expected on, and the account's listener state: a
 * listener the system refuses (a port someone else holds) leaves the account
 * registered but down, tried again on a timer, and its subscriber is told.
 *
 * Must not: log or put into an error message the app secret or the verify
 * token, open files or sockets itself (rx-http binds and loads certificates),
 * move an account to another port than the one asked for, or accept a public
 * bind without TLS unless allow_public_http says so. */
#include "rx.h"

#include <sodium.h>
#include <string.h>
#include <sys/un.h>

#include "wa-crypt.h"
#include "wa-json.h"

#define MAX_ID_LEN 64
#define MAX_SECRET_LEN 4096
#define MAX_PATH_LEN 512


void
rx_registration_free(RxRegistration *reg)
{
  if (reg == NULL)
    return;
  g_free(reg->account);
  g_free(reg->waba_id);
  wa_crypt_wipe_free(reg->app_secret);
  wa_crypt_wipe_free(reg->verify_token);
  g_free(reg->bind);
  g_free(reg->path);
  g_free(reg->public_key_b64);
  g_free(reg->tls_cert);
  g_free(reg->tls_key);
  g_free(reg->socket_group);
  g_free(reg);
}

void
rx_account_free(RxAccount *account)
{
  if (account == NULL)
    return;
  g_clear_pointer(&account->listener, rx_listener_release);
  g_free(account->listen_error);
  rx_registration_free(account->reg);
  g_free(account);
}

static gboolean
all_digits(const char *s)
{
  if (s == NULL || *s == '\0')
    return FALSE;
  for (; *s != '\0'; s++) {
    if (!g_ascii_isdigit(*s))
      return FALSE;
  }
  return TRUE;
}

/* A string member: absent or null gives NULL; another type is an error. */
static gboolean
get_string(JsonObject *obj, const char *name, const char **out, GError **error)
{
  JsonNode *node = json_object_get_member(obj, name);

  *out = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL(node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "\"%s\" must be a string", name);
    return FALSE;
  }
  *out = json_node_get_string(node);
  return TRUE;
}

static gboolean
get_bool(JsonObject *obj, const char *name, gboolean def, gboolean *out, GError **error)
{
  JsonNode *node = json_object_get_member(obj, name);

  *out = def;
  if (node == NULL || JSON_NODE_HOLDS_NULL(node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_BOOLEAN) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "\"%s\" must be true or false", name);
    return FALSE;
  }
  *out = json_node_get_boolean(node);
  return TRUE;
}

static gboolean
get_port(JsonObject *obj, const char *name, int def, int *out, GError **error)
{
  JsonNode *node = json_object_get_member(obj, name);
  gint64 value;

  *out = def;
  if (node == NULL || JSON_NODE_HOLDS_NULL(node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_INT64) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "\"%s\" must be a number from 0 to 65535", name);
    return FALSE;
  }
  value = json_node_get_int(node);
  if (value < 0 || value > 65535) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "\"%s\" must be a number from 0 to 65535", name);
    return FALSE;
  }
  *out = (int) value;
  return TRUE;
}

/* A whole number from @min to @max; absent or null gives @def. */
static gboolean
get_int64(JsonObject *obj, const char *name, gint64 def, gint64 min, gint64 max, gint64 *out, GError **error)
{
  JsonNode *node = json_object_get_member(obj, name);

  *out = def;
  if (node == NULL || JSON_NODE_HOLDS_NULL(node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_INT64 || json_node_get_int(node) < min ||
      json_node_get_int(node) > max) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "\"%s\" must be a number from %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT, name, min, max);
    return FALSE;
  }
  *out = json_node_get_int(node);
  return TRUE;
}

/* An id given as a string of digits or as an integer. */
static gboolean
get_id(JsonObject *obj, const char *name, gboolean required, char **out, GError **error)
{
  JsonNode *node = json_object_get_member(obj, name);
  g_autofree char *id = NULL;

  *out = NULL;
  if (node != NULL && !JSON_NODE_HOLDS_NULL(node)) {
    if (!JSON_NODE_HOLDS_VALUE(node) ||
        (json_node_get_value_type(node) != G_TYPE_STRING && json_node_get_value_type(node) != G_TYPE_INT64)) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "\"%s\" must be a string of digits", name);
      return FALSE;
    }
    id = wa_json_dup_id(obj, name);
  }
  if (id == NULL || *id == '\0') {
    if (required) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "\"%s\" is missing", name);
      return FALSE;
    }
    return TRUE;
  }
  if (strlen(id) > MAX_ID_LEN || !all_digits(id)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "\"%s\" must be a string of digits", name);
    return FALSE;
  }
  *out = g_steal_pointer(&id);
  return TRUE;
}

static gboolean
path_valid(const char *path)
{
  gsize len = strlen(path);

  if (len == 0 || len > MAX_PATH_LEN || path[0] != '/')
    return FALSE;
  for (const char *p = path; *p != '\0'; p++) {
    /* printable ASCII without blanks, and nothing that a request path would
     * carry encoded or that ends a path */
    if (*p <= ' ' || *p >= 0x7f || *p == '?' || *p == '#' || *p == '%')
      return FALSE;
  }
  return TRUE;
}

gboolean
rx_bind_is_loopback(const char *bind)
{
  g_autoptr(GInetAddress) address = g_inet_address_new_from_string(bind);

  return address != NULL && g_inet_address_get_is_loopback(address);
}

const char *
rx_bind_unix_path(const char *bind)
{
  return g_str_has_prefix(bind, RX_UNIX_PREFIX) ? bind + strlen(RX_UNIX_PREFIX) : NULL;
}

/* "unix:PATH": an absolute path a sockaddr_un holds, without "." or ".."
 * components; and a group given as a name or a number. */
static gboolean
unix_bind_valid(RxRegistration *reg, const char *bind, const char *group, GError **error)
{
  const char *path = rx_bind_unix_path(bind);
  struct sockaddr_un addr;
  g_auto(GStrv) parts = NULL;

  if (!g_path_is_absolute(path) || strlen(path) >= sizeof addr.sun_path || g_str_has_suffix(path, "/")) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "\"bind\" unix:PATH needs an absolute file path of at most %d bytes", (int) sizeof addr.sun_path - 1);
    return FALSE;
  }
  parts = g_strsplit(path, "/", -1);
  for (guint i = 0; parts[i] != NULL; i++) {
    if (g_str_equal(parts[i], ".") || g_str_equal(parts[i], "..")) {
      g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                          "\"bind\" unix:PATH must not hold . or .. components");
      return FALSE;
    }
  }
  for (const char *p = path; *p != '\0'; p++) {
    if (*p < ' ' || *p == 0x7f) {
      g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                          "\"bind\" unix:PATH must not hold control characters");
      return FALSE;
    }
  }
  if (group != NULL && *group != '\0') {
    for (const char *p = group; *p != '\0'; p++) {
      if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-' && *p != '.') {
        g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                            "\"socket_group\" must be a group name or number");
        return FALSE;
      }
    }
    if (strlen(group) > MAX_ID_LEN) {
      g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "\"socket_group\" is too long");
      return FALSE;
    }
    reg->socket_group = g_strdup(group);
  }
  reg->bind = g_strdup(bind);
  return TRUE;
}

RxRegistration *
rx_registration_from_json(JsonObject *obj, const char **code, GError **error)
{
  g_autoptr(RxRegistration) reg = g_new0(RxRegistration, 1);
  g_autoptr(GInetAddress) address = NULL;
  g_autoptr(GError) key_error = NULL;
  const char *app_secret, *verify_token, *bind, *path, *public_key, *tls_cert, *tls_key;
  const char *socket_group;

  *code = "invalid";
  if (!get_id(obj, "account", TRUE, &reg->account, error) || !get_id(obj, "waba_id", FALSE, &reg->waba_id, error) ||
      !get_string(obj, "app_secret", &app_secret, error) || !get_string(obj, "verify_token", &verify_token, error) ||
      !get_string(obj, "bind", &bind, error) || !get_port(obj, "port", 8090, &reg->port, error) ||
      !get_string(obj, "path", &path, error) || !get_string(obj, "public_key", &public_key, error) ||
      !get_bool(obj, "keep_running", TRUE, &reg->keep_running, error) ||
      !get_string(obj, "tls_cert", &tls_cert, error) || !get_string(obj, "tls_key", &tls_key, error) ||
      !get_bool(obj, "allow_public_http", FALSE, &reg->allow_public_http, error) ||
      !get_int64(obj, "max_pending_bytes", RX_DEFAULT_MAX_PENDING_BYTES, 1, G_MAXINT64 / 2, &reg->max_pending_bytes,
                 error) ||
      !get_string(obj, "socket_group", &socket_group, error))
    return NULL;
  /* a saved registration remembers the port first asked for */
  if (!get_port(obj, "requested_port", reg->port, &reg->requested_port, error))
    return NULL;

  if (app_secret == NULL || *app_secret == '\0') {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "\"app_secret\" is missing: without it no webhook can be verified");
    return NULL;
  }
  if (strlen(app_secret) > MAX_SECRET_LEN || (verify_token != NULL && strlen(verify_token) > MAX_SECRET_LEN)) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "\"app_secret\" or \"verify_token\" is too long");
    return NULL;
  }
  reg->app_secret = g_strdup(app_secret);
  reg->verify_token = verify_token != NULL && *verify_token != '\0' ? g_strdup(verify_token) : NULL;

  if (bind == NULL || *bind == '\0')
    bind = "127.0.0.1";
  if (rx_bind_unix_path(bind) != NULL) {
    if (!unix_bind_valid(reg, bind, socket_group, error))
      return NULL;
    /* the port means nothing for a UNIX socket */
    reg->port = reg->requested_port = 0;
  } else {
    address = g_inet_address_new_from_string(bind);
    if (address == NULL) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                  "\"bind\" must be an IP address such as 127.0.0.1 or ::1, or unix:PATH, "
                  "not \"%.64s\"",
                  bind);
      return NULL;
    }
    reg->bind = g_inet_address_to_string(address);
  }

  if (path == NULL || *path == '\0')
    path = "/webhook";
  if (!path_valid(path)) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "\"path\" must start with / and hold only printable ASCII without "
                        "blanks, ?, # or %");
    return NULL;
  }
  reg->path = g_strdup(path);

  if (public_key == NULL || !wa_seal_public_key_decode(public_key, reg->public_key, &key_error)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "\"public_key\" must be the base64 of a %d-byte X25519 public key", WA_SEAL_PUBLIC_KEY_BYTES);
    return NULL;
  }
  reg->public_key_b64 = g_strdup(public_key);

  if (tls_cert != NULL && *tls_cert == '\0')
    tls_cert = NULL;
  if (tls_key != NULL && *tls_key == '\0')
    tls_key = NULL;
  if ((tls_cert == NULL) != (tls_key == NULL)) {
    *code = "tls";
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "\"tls_cert\" and \"tls_key\" go together: give both PEM files or neither");
    return NULL;
  }
  if (tls_cert != NULL && (!g_path_is_absolute(tls_cert) || !g_path_is_absolute(tls_key))) {
    *code = "tls";
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "\"tls_cert\" and \"tls_key\" must be absolute paths");
    return NULL;
  }
  reg->tls_cert = g_strdup(tls_cert);
  reg->tls_key = g_strdup(tls_key);
  if (address == NULL && reg->tls_cert != NULL) {
    *code = "tls";
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "a UNIX socket is for a local proxy, which does the TLS: leave tls_cert "
                        "and tls_key empty");
    return NULL;
  }
  if (address != NULL && reg->tls_cert == NULL && !reg->allow_public_http && !g_inet_address_get_is_loopback(address)) {
    *code = "tls";
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "listening on %s (not loopback) needs TLS: set tls_cert and tls_key, or put a "
                "TLS proxy or tunnel in front and bind to 127.0.0.1 (or allow plain HTTP "
                "explicitly)",
                reg->bind);
    return NULL;
  }
  *code = NULL;
  return g_steal_pointer(&reg);
}

char *
rx_registration_to_json(const RxRegistration *reg)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object(b);
  json_builder_set_member_name(b, "account");
  json_builder_add_string_value(b, reg->account);
  json_builder_set_member_name(b, "waba_id");
  json_builder_add_string_value(b, reg->waba_id != NULL ? reg->waba_id : "");
  json_builder_set_member_name(b, "app_secret");
  json_builder_add_string_value(b, reg->app_secret);
  json_builder_set_member_name(b, "verify_token");
  json_builder_add_string_value(b, reg->verify_token != NULL ? reg->verify_token : "");
  json_builder_set_member_name(b, "bind");
  json_builder_add_string_value(b, reg->bind);
  json_builder_set_member_name(b, "port");
  json_builder_add_int_value(b, reg->port);
  json_builder_set_member_name(b, "requested_port");
  json_builder_add_int_value(b, reg->requested_port);
  json_builder_set_member_name(b, "path");
  json_builder_add_string_value(b, reg->path);
  json_builder_set_member_name(b, "public_key");
  json_builder_add_string_value(b, reg->public_key_b64);
  json_builder_set_member_name(b, "keep_running");
  json_builder_add_boolean_value(b, reg->keep_running);
  json_builder_set_member_name(b, "tls_cert");
  json_builder_add_string_value(b, reg->tls_cert != NULL ? reg->tls_cert : "");
  json_builder_set_member_name(b, "tls_key");
  json_builder_add_string_value(b, reg->tls_key != NULL ? reg->tls_key : "");
  json_builder_set_member_name(b, "allow_public_http");
  json_builder_add_boolean_value(b, reg->allow_public_http);
  json_builder_set_member_name(b, "max_pending_bytes");
  json_builder_add_int_value(b, reg->max_pending_bytes);
  json_builder_set_member_name(b, "socket_group");
  json_builder_add_string_value(b, reg->socket_group != NULL ? reg->socket_group : "");
  json_builder_end_object(b);
  root = json_builder_get_root(b);
  return wa_json_to_string(root);
}

char *
rx_registration_url(const RxRegistration *reg)
{
  const char *scheme = reg->tls_cert != NULL ? "https" : "http";
  const char *socket_path = rx_bind_unix_path(reg->bind);

  /* nginx's form: proxy_pass http://unix:/run/wabiz/hook.sock:/webhook */
  if (socket_path != NULL)
    return g_strdup_printf("http://unix:%s:%s", socket_path, reg->path);
  if (strchr(reg->bind, ':') != NULL)
    return g_strdup_printf("%s://[%s]:%d%s", scheme, reg->bind, reg->port, reg->path);
  return g_strdup_printf("%s://%s:%d%s", scheme, reg->bind, reg->port, reg->path);
}

/* ---- listener state ------------------------------------------------- */

static gboolean retry_listeners(gpointer data);

RxListener *
rx_account_open_listener(RxReceiver *rx, RxRegistration *reg, gboolean strict, char **down, gboolean *taken,
                         const char **code, GError **error)
{
  g_autoptr(GError) local = NULL;
  RxListener *listener;

  *down = NULL;
  *taken = FALSE;
  *code = NULL;
  listener = rx_listener_get(rx, reg, code, &local);
  if (listener != NULL)
    return listener;
  /* rx-http: a wrong setting is "tls", or "bind" with INVALID_ARGUMENT */
  if (strict && (g_strcmp0(*code, "tls") == 0 || g_error_matches(local, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT))) {
    g_propagate_error(error, g_steal_pointer(&local));
    return NULL;
  }
  *code = NULL;
  *taken = g_error_matches(local, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE);
  *down = g_strdup(local->message);
  return NULL;
}

static gboolean
any_down(RxReceiver *rx)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init(&iter, rx->accounts);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    if (((RxAccount *) value)->listen_error != NULL)
      return TRUE;
  }
  return FALSE;
}

static void
arm_retry(RxReceiver *rx)
{
  gboolean down = any_down(rx);

  if (down && rx->listen_retry_source == 0 && !rx->stopping)
    rx->listen_retry_source = g_timeout_add_seconds((guint) MAX(rx->opt.listen_retry_s, 1), retry_listeners, rx);
  else if (!down && rx->listen_retry_source != 0)
    g_clear_handle_id(&rx->listen_retry_source, g_source_remove);
}

void
rx_account_set_listener(RxReceiver *rx, RxAccount *account, RxListener *listener, char *down, gboolean taken)
{
  rx_listener_release(account->listener);
  account->listener = listener;
  g_free(account->listen_error);
  account->listen_error = listener == NULL ? (down != NULL ? down : g_strdup("not listening")) : NULL;
  if (listener != NULL)
    g_free(down);
  account->port_taken = listener == NULL && taken;
  if (listener == NULL)
    rx_log("account %s: not listening (%s); trying again every %d s", account->reg->account, account->listen_error,
           MAX(rx->opt.listen_retry_s, 1));
  arm_retry(rx);
}

void
rx_account_listen_state(RxAccount *account, JsonObject *obj)
{
  json_object_set_boolean_member(obj, "listening", account->listener != NULL);
  if (account->listener == NULL) {
    json_object_set_string_member(obj, "listen_error", account->listen_error != NULL ? account->listen_error : "");
    json_object_set_boolean_member(obj, "port_taken", account->port_taken);
  }
}

static void
on_port_saved(const GError *error, gpointer data)
{
  if (error != NULL)
    rx_log("cannot save the new port of a registration: %s", error->message);
}

/* Every opt.listen_retry_s seconds while an account is down: try its
 * listener again, and tell its subscriber when it listens. */
static gboolean
retry_listeners(gpointer data)
{
  RxReceiver *rx = data;
  g_autoptr(GPtrArray) down = g_ptr_array_new();
  GHashTableIter iter;
  gpointer value;

  rx->listen_retry_source = 0;
  if (rx->stopping)
    return G_SOURCE_REMOVE;
  g_hash_table_iter_init(&iter, rx->accounts);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    if (((RxAccount *) value)->listen_error != NULL)
      g_ptr_array_add(down, value);
  }
  for (guint i = 0; i < down->len; i++) {
    RxAccount *account = g_ptr_array_index(down, i);
    int port = account->reg->port;
    const char *code;
    char *why = NULL;
    gboolean taken = FALSE;
    RxListener *listener = rx_account_open_listener(rx, account->reg, FALSE, &why, &taken, &code, NULL);

    if (listener == NULL) {
      gboolean changed = g_strcmp0(why, account->listen_error) != 0;

      g_free(account->listen_error);
      account->listen_error = why;
      account->port_taken = taken;
      if (changed)
        rx_control_listen_changed(rx, account);
      continue;
    }
    if (account->reg->port != port) {
      g_autofree char *json = rx_registration_to_json(account->reg);

      rx_journal_save_account(rx->journal, account->reg->account, json, on_port_saved, NULL);
      sodium_memzero(json, strlen(json));
    }
    rx_account_set_listener(rx, account, listener, NULL, FALSE);
    rx_log("account %s: listening again", account->reg->account);
    rx_control_listen_changed(rx, account);
  }
  arm_retry(rx);
  return G_SOURCE_REMOVE;
}
