/* sim-json.c: depth-limited parsing and Meta-style serialisation for the
 * simulator. The serialiser walks objects in insertion order so bodies look
 * like Meta's examples, and never relies on json_generator's escaping. */
#include "sim-json.h"

#include <string.h>

/* json-glib 1.6 recurses once per nesting level: refuse deep input first. */
static gboolean
depth_ok (const char *data, gsize len)
{
  int depth = 0;
  gboolean in_string = FALSE;

  for (gsize i = 0; i < len; i++)
    {
      char c = data[i];

      if (in_string)
        {
          if (c == '\\')
            i++;
          else if (c == '"')
            in_string = FALSE;
          continue;
        }
      if (c == '"')
        in_string = TRUE;
      else if (c == '{' || c == '[')
        {
          if (++depth > SIM_JSON_MAX_DEPTH)
            return FALSE;
        }
      else if (c == '}' || c == ']')
        depth--;
    }
  return TRUE;
}

JsonNode *
sim_json_parse (const char *data, gsize len, GError **error)
{
  g_autoptr (JsonParser) parser = NULL;
  JsonNode *root;

  if (data == NULL || len == 0)
    {
      g_set_error_literal (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_PARSE, "empty body");
      return NULL;
    }
  if (!g_utf8_validate (data, (gssize)len, NULL))
    {
      g_set_error_literal (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA,
                           "body is not UTF-8");
      return NULL;
    }
  if (!depth_ok (data, len))
    {
      g_set_error (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_PARSE,
                   "nesting deeper than %d levels", SIM_JSON_MAX_DEPTH);
      return NULL;
    }
  parser = json_parser_new ();
  if (!json_parser_load_from_data (parser, data, (gssize)len, error))
    return NULL;
  root = json_parser_get_root (parser);
  if (root == NULL)
    {
      g_set_error_literal (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_PARSE, "empty document");
      return NULL;
    }
  return json_node_copy (root);
}

void
sim_json_append_string (GString *out, const char *s)
{
  g_string_append_c (out, '"');
  for (const char *p = s; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      switch (c)
        {
        case '"':
          g_string_append (out, "\\\"");
          break;
        case '\\':
          g_string_append (out, "\\\\");
          break;
        case '/':
          g_string_append (out, "\\/");
          break;
        case '\b':
          g_string_append (out, "\\b");
          break;
        case '\f':
          g_string_append (out, "\\f");
          break;
        case '\n':
          g_string_append (out, "\\n");
          break;
        case '\r':
          g_string_append (out, "\\r");
          break;
        case '\t':
          g_string_append (out, "\\t");
          break;
        default:
          if (c < 0x20 || (c >= 0x7f && c < 0x10000))
            g_string_append_printf (out, "\\u%04x", (unsigned)c);
          else if (c >= 0x10000)
            {
              gunichar v = c - 0x10000;
              g_string_append_printf (out, "\\u%04x\\u%04x", (unsigned)(0xd800 + (v >> 10)),
                                      (unsigned)(0xdc00 + (v & 0x3ff)));
            }
          else
            g_string_append_c (out, (char)c);
          break;
        }
    }
  g_string_append_c (out, '"');
}

/* The shortest decimal form that reads back as the same double. */
static void
append_double (GString *out, double d)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  for (int precision = 15; precision <= 17; precision++)
    {
      g_ascii_formatd (buf, sizeof buf,
                       precision == 15   ? "%.15g"
                       : precision == 16 ? "%.16g"
                                         : "%.17g",
                       d);
      if (g_ascii_strtod (buf, NULL) == d)
        break;
    }
  g_string_append (out, buf);
}

static void
append_node (GString *out, JsonNode *node)
{
  switch (JSON_NODE_TYPE (node))
    {
    case JSON_NODE_OBJECT:
      {
        JsonObjectIter iter;
        const char *name;
        JsonNode *member;
        gboolean first = TRUE;

        g_string_append_c (out, '{');
        json_object_iter_init_ordered (&iter, json_node_get_object (node));
        while (json_object_iter_next_ordered (&iter, &name, &member))
          {
            if (!first)
              g_string_append_c (out, ',');
            first = FALSE;
            sim_json_append_string (out, name);
            g_string_append_c (out, ':');
            append_node (out, member);
          }
        g_string_append_c (out, '}');
        break;
      }
    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);
        guint n = json_array_get_length (array);

        g_string_append_c (out, '[');
        for (guint i = 0; i < n; i++)
          {
            if (i > 0)
              g_string_append_c (out, ',');
            append_node (out, json_array_get_element (array, i));
          }
        g_string_append_c (out, ']');
        break;
      }
    case JSON_NODE_NULL:
      g_string_append (out, "null");
      break;
    case JSON_NODE_VALUE:
      switch (json_node_get_value_type (node))
        {
        case G_TYPE_INT64:
          g_string_append_printf (out, "%" G_GINT64_FORMAT, json_node_get_int (node));
          break;
        case G_TYPE_DOUBLE:
          append_double (out, json_node_get_double (node));
          break;
        case G_TYPE_BOOLEAN:
          g_string_append (out, json_node_get_boolean (node) ? "true" : "false");
          break;
        case G_TYPE_STRING:
          sim_json_append_string (out, json_node_get_string (node));
          break;
        default:
          g_string_append (out, "null");
          break;
        }
      break;
    default:
      g_string_append (out, "null");
      break;
    }
}

char *
sim_json_serialize (JsonNode *node)
{
  GString *out = g_string_sized_new (256);

  append_node (out, node);
  return g_string_free (out, FALSE);
}

char *
sim_json_serialize_builder (JsonBuilder *builder)
{
  g_autoptr (JsonNode) root = json_builder_get_root (builder);

  return sim_json_serialize (root);
}

const char *
sim_json_string (JsonObject *obj, const char *member)
{
  JsonNode *node;

  if (obj == NULL || (node = json_object_get_member (obj, member)) == NULL)
    return NULL;
  if (!JSON_NODE_HOLDS_VALUE (node) || json_node_get_value_type (node) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string (node);
}

JsonObject *
sim_json_object (JsonObject *obj, const char *member)
{
  JsonNode *node;

  if (obj == NULL || (node = json_object_get_member (obj, member)) == NULL)
    return NULL;
  return JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
}

JsonArray *
sim_json_array (JsonObject *obj, const char *member)
{
  JsonNode *node;

  if (obj == NULL || (node = json_object_get_member (obj, member)) == NULL)
    return NULL;
  return JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node) : NULL;
}

gboolean
sim_json_is_number (JsonNode *node)
{
  GType t;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  t = json_node_get_value_type (node);
  return t == G_TYPE_INT64 || t == G_TYPE_DOUBLE;
}

gboolean
sim_json_int (JsonObject *obj, const char *member, gint64 *out)
{
  JsonNode *node = obj ? json_object_get_member (obj, member) : NULL;

  if (!sim_json_is_number (node))
    return FALSE;
  if (json_node_get_value_type (node) == G_TYPE_DOUBLE)
    *out = (gint64)json_node_get_double (node);
  else
    *out = json_node_get_int (node);
  return TRUE;
}

gboolean
sim_json_double (JsonObject *obj, const char *member, double *out)
{
  JsonNode *node = obj ? json_object_get_member (obj, member) : NULL;

  if (!sim_json_is_number (node))
    return FALSE;
  *out = json_node_get_double (node);
  return TRUE;
}

gboolean
sim_json_bool (JsonObject *obj, const char *member, gboolean *out)
{
  JsonNode *node = obj ? json_object_get_member (obj, member) : NULL;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node)
      || json_node_get_value_type (node) != G_TYPE_BOOLEAN)
    return FALSE;
  *out = json_node_get_boolean (node);
  return TRUE;
}
