/* rx-account.c: wabiz-receiver's registrations: validating a REGISTER
 * payload (or a saved one), writing it back for the journal, and the URL an
 * account's webhooks are expected on.
 *
 * Must not: log or put into an error message the app secret or the verify
 * token, open files or sockets (rx-http binds and loads certificates), or
 * accept a public bind without TLS unless allow_public_http says so. */
#include "rx.h"

#include <sodium.h>
#include <string.h>

#include "wa-json.h"

#define MAX_ID_LEN 64
#define MAX_SECRET_LEN 4096
#define MAX_PATH_LEN 512

static void
wipe_free(char *secret)
{
  if (secret == NULL)
    return;
  sodium_memzero(secret, strlen(secret));
  g_free(secret);
}

void
rx_registration_free(RxRegistration *reg)
{
  if (reg == NULL)
    return;
  g_free(reg->account);
  g_free(reg->waba_id);
  wipe_free(reg->app_secret);
  wipe_free(reg->verify_token);
  g_free(reg->bind);
  g_free(reg->path);
  g_free(reg->public_key_b64);
  g_free(reg->tls_cert);
  g_free(reg->tls_key);
  g_free(reg);
}

void
rx_account_free(RxAccount *account)
{
  if (account == NULL)
    return;
  g_clear_pointer(&account->listener, rx_listener_release);
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
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "\"%s\" must be true or false",
                name);
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
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "\"%s\" must be a number from 0 to 65535", name);
    return FALSE;
  }
  value = json_node_get_int(node);
  if (value < 0 || value > 65535) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "\"%s\" must be a number from 0 to 65535", name);
    return FALSE;
  }
  *out = (int) value;
  return TRUE;
}

/* A whole number from @min to @max; absent or null gives @def. */
static gboolean
get_int64(JsonObject *obj, const char *name, gint64 def, gint64 min, gint64 max, gint64 *out,
          GError **error)
{
  JsonNode *node = json_object_get_member(obj, name);

  *out = def;
  if (node == NULL || JSON_NODE_HOLDS_NULL(node))
    return TRUE;
  if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_INT64 ||
      json_node_get_int(node) < min || json_node_get_int(node) > max) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "\"%s\" must be a number from %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT, name, min,
                max);
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
    if (!JSON_NODE_HOLDS_VALUE(node) || (json_node_get_value_type(node) != G_TYPE_STRING &&
                                         json_node_get_value_type(node) != G_TYPE_INT64)) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                  "\"%s\" must be a string of digits", name);
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
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "\"%s\" must be a string of digits", name);
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

RxRegistration *
rx_registration_from_json(JsonObject *obj, const char **code, GError **error)
{
  g_autoptr(RxRegistration) reg = g_new0(RxRegistration, 1);
  g_autoptr(GInetAddress) address = NULL;
  g_autoptr(GError) key_error = NULL;
  const char *app_secret, *verify_token, *bind, *path, *public_key, *tls_cert, *tls_key;

  *code = "invalid";
  if (!get_id(obj, "account", TRUE, &reg->account, error) ||
      !get_id(obj, "waba_id", FALSE, &reg->waba_id, error) ||
      !get_string(obj, "app_secret", &app_secret, error) ||
      !get_string(obj, "verify_token", &verify_token, error) ||
      !get_string(obj, "bind", &bind, error) || !get_port(obj, "port", 8090, &reg->port, error) ||
      !get_string(obj, "path", &path, error) || !get_string(obj, "public_key", &public_key, error) ||
      !get_bool(obj, "keep_running", TRUE, &reg->keep_running, error) ||
      !get_string(obj, "tls_cert", &tls_cert, error) ||
      !get_string(obj, "tls_key", &tls_key, error) ||
      !get_bool(obj, "allow_public_http", FALSE, &reg->allow_public_http, error) ||
      !get_int64(obj, "max_pending_bytes", RX_DEFAULT_MAX_PENDING_BYTES, 1, G_MAXINT64 / 2,
                 &reg->max_pending_bytes, error))
    return NULL;
  /* a saved registration remembers the port first asked for */
  if (!get_port(obj, "requested_port", reg->port, &reg->requested_port, error))
    return NULL;

  if (app_secret == NULL || *app_secret == '\0') {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "\"app_secret\" is missing: without it no webhook can be verified");
    return NULL;
  }
  if (strlen(app_secret) > MAX_SECRET_LEN ||
      (verify_token != NULL && strlen(verify_token) > MAX_SECRET_LEN)) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "\"app_secret\" or \"verify_token\" is too long");
    return NULL;
  }
  reg->app_secret = g_strdup(app_secret);
  reg->verify_token = verify_token != NULL && *verify_token != '\0' ? g_strdup(verify_token) : NULL;

  if (bind == NULL || *bind == '\0')
    bind = "127.0.0.1";
  address = g_inet_address_new_from_string(bind);
  if (address == NULL) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "\"bind\" must be an IP address such as 127.0.0.1 or ::1, not \"%.64s\"", bind);
    return NULL;
  }
  reg->bind = g_inet_address_to_string(address);

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
                "\"public_key\" must be the base64 of a %d-byte X25519 public key",
                WA_SEAL_PUBLIC_KEY_BYTES);
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
  if (reg->tls_cert == NULL && !reg->allow_public_http && !g_inet_address_get_is_loopback(address)) {
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
  json_builder_end_object(b);
  root = json_builder_get_root(b);
  return wa_json_to_string(root);
}

char *
rx_registration_url(const RxRegistration *reg)
{
  const char *scheme = reg->tls_cert != NULL ? "https" : "http";

  if (strchr(reg->bind, ':') != NULL)
    return g_strdup_printf("%s://[%s]:%d%s", scheme, reg->bind, reg->port, reg->path);
  return g_strdup_printf("%s://%s:%d%s", scheme, reg->bind, reg->port, reg->path);
}
