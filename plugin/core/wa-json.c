/* wa-json.c: depth-limited parsing and lenient typed getters over json-glib. */
#include "wa-json.h"

#include <errno.h>
#include <stdlib.h>

G_DEFINE_QUARK(wa-json-error-quark, wa_json_error)

gboolean
wa_json_check_depth(const char *data, gsize len, guint max_depth, GError **error)
{
  guint depth = 0;
  gboolean in_string = FALSE;

  for (gsize i = 0; i < len; i++) {
    char c = data[i];

    if (in_string) {
      if (c == '\\')
        i++; /* skip the escaped character, whatever it is */
      else if (c == '"')
        in_string = FALSE;
      continue;
    }
    switch (c) {
    case '"':
      in_string = TRUE;
      break;
    case '[':
    case '{':
      if (++depth > max_depth) {
        g_set_error(error, WA_JSON_ERROR, WA_JSON_ERROR_TOO_DEEP,
                    "JSON nested deeper than %u levels", max_depth);
        return FALSE;
      }
      break;
    case ']':
    case '}':
      if (depth > 0)
        depth--;
      break;
    default:
      break;
    }
  }
  return TRUE;
}

JsonNode *
wa_json_parse(const char *data, gsize len, GError **error)
{
  g_autoptr(JsonParser) parser = NULL;
  GError *local = NULL;
  JsonNode *root;

  if (!wa_json_check_depth(data, len, WA_JSON_MAX_DEPTH, error))
    return NULL;
  if (len > G_MAXSSIZE) {
    g_set_error_literal(error, WA_JSON_ERROR, WA_JSON_ERROR_INVALID, "JSON too large");
    return NULL;
  }
  parser = json_parser_new_immutable();
  if (!json_parser_load_from_data(parser, data, (gssize) len, &local)) {
    g_set_error(error, WA_JSON_ERROR, WA_JSON_ERROR_INVALID, "invalid JSON: %s", local->message);
    g_error_free(local);
    return NULL;
  }
  root = json_parser_get_root(parser);
  if (root == NULL) {
    g_set_error_literal(error, WA_JSON_ERROR, WA_JSON_ERROR_INVALID, "empty JSON document");
    return NULL;
  }
  return json_node_ref(root);
}

JsonNode *
wa_json_parse_object(const char *data, gsize len, GError **error)
{
  JsonNode *root = wa_json_parse(data, len, error);

  if (root != NULL && !JSON_NODE_HOLDS_OBJECT(root)) {
    json_node_unref(root);
    g_set_error_literal(error, WA_JSON_ERROR, WA_JSON_ERROR_NOT_OBJECT,
                        "JSON document is not an object");
    return NULL;
  }
  return root;
}

static JsonNode *
member_value(JsonObject *obj, const char *name)
{
  JsonNode *node;

  if (obj == NULL)
    return NULL;
  node = json_object_get_member(obj, name);
  if (node == NULL || JSON_NODE_HOLDS_NULL(node))
    return NULL;
  return node;
}

const char *
wa_json_get_string(JsonObject *obj, const char *name)
{
  JsonNode *node = member_value(obj, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string(node);
}

char *
wa_json_dup_id(JsonObject *obj, const char *name)
{
  JsonNode *node = member_value(obj, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE(node))
    return NULL;
  if (json_node_get_value_type(node) == G_TYPE_STRING)
    return g_strdup(json_node_get_string(node));
  if (json_node_get_value_type(node) == G_TYPE_INT64)
    return g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(node));
  return NULL;
}

gint64
wa_json_get_int(JsonObject *obj, const char *name, gint64 def)
{
  JsonNode *node = member_value(obj, name);
  GType type;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE(node))
    return def;
  type = json_node_get_value_type(node);
  if (type == G_TYPE_INT64)
    return json_node_get_int(node);
  if (type == G_TYPE_STRING) {
    const char *s = json_node_get_string(node);
    char *end = NULL;
    gint64 v;

    if (s == NULL || *s == '\0')
      return def;
    errno = 0;
    v = g_ascii_strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
      return def;
    return v;
  }
  return def;
}

double
wa_json_get_double(JsonObject *obj, const char *name, double def)
{
  JsonNode *node = member_value(obj, name);
  GType type;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE(node))
    return def;
  type = json_node_get_value_type(node);
  if (type == G_TYPE_DOUBLE)
    return json_node_get_double(node);
  if (type == G_TYPE_INT64)
    return (double) json_node_get_int(node);
  if (type == G_TYPE_STRING) {
    const char *s = json_node_get_string(node);
    char *end = NULL;
    double v;

    if (s == NULL || *s == '\0')
      return def;
    v = g_ascii_strtod(s, &end);
    if (end == s || *end != '\0')
      return def;
    return v;
  }
  return def;
}

gboolean
wa_json_get_bool(JsonObject *obj, const char *name, gboolean def)
{
  JsonNode *node = member_value(obj, name);

  if (node == NULL || !JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_BOOLEAN)
    return def;
  return json_node_get_boolean(node);
}

JsonObject *
wa_json_get_object(JsonObject *obj, const char *name)
{
  JsonNode *node = member_value(obj, name);

  return node != NULL && JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
}

JsonArray *
wa_json_get_array(JsonObject *obj, const char *name)
{
  JsonNode *node = member_value(obj, name);

  return node != NULL && JSON_NODE_HOLDS_ARRAY(node) ? json_node_get_array(node) : NULL;
}

JsonObject *
wa_json_array_get_object(JsonArray *array, guint index)
{
  JsonNode *node;

  if (array == NULL || index >= json_array_get_length(array))
    return NULL;
  node = json_array_get_element(array, index);
  return JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
}

char *
wa_json_to_string(JsonNode *node)
{
  g_autoptr(JsonGenerator) gen = json_generator_new();

  json_generator_set_root(gen, node);
  return json_generator_to_data(gen, NULL);
}
