/* wa-json.c: depth-limited parsing and lenient typed getters over json-glib. */
#include "wa-json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

G_DEFINE_QUARK(wa - json - error - quark, wa_json_error)

/* The value of the \u escape whose four hex digits start at @p (@end is the
 * end of the data), or -1 when they are not four hex digits. */
static int
escape_value(const char *p, const char *end)
{
  int value = 0;

  if (end - p < 4)
    return -1;
  for (int i = 0; i < 4; i++) {
    if (!g_ascii_isxdigit(p[i]))
      return -1;
    value = value * 16 + g_ascii_xdigit_value(p[i]);
  }
  return value;
}

/* Writes U+FFFD over the lone surrogate escape at @p (six bytes, as long as
 * "\ufffd"), in *@fixed: a copy of @data made on the first such escape. */
static void
replace_escape(const char *data, gsize len, const char *p, char **fixed)
{
  if (*fixed == NULL)
    *fixed = g_memdup2(data, len);
  memcpy(*fixed + (p - data), "\\ufffd", 6);
}

/* json-glib 1.6.6 mishandles input that is not JSON, so it is refused
 * before json-glib sees it (found by fuzz/):
 * - a second top-level object or array after the first value ("{}{}",
 *   "1 []"): json-glib returns the last one and leaks the others. In JSON a
 *   bracket outside strings at depth 0 can only be the first token;
 * - a \u escape that is not four hex digits: "\uzzzz" is taken as a
 *   character;
 * - any other escape JSON does not have: "\304" is read as the byte 0xc4,
 *   so a parsed string could hold invalid UTF-8;
 * - outside strings, a byte JSON never has there ("/", "\", letters other
 *   than those of true, false, null and exponents): its scanner, which
 *   knows comments and identifiers, leaks the token it was reading when it
 *   gives up on '/"/"\udBu\u'.
 * A surrogate escape not in a pair is JSON, but not a character: json-glib
 * makes bytes that are not UTF-8 of it, and leaks the string when a high
 * surrogate is followed by another escape ("\ud83d\u0041"). Refusing it
 * would refuse a whole webhook delivery (Meta retries it for days, other
 * messages in it included) for one broken character, so it becomes U+FFFD,
 * as a UTF-8 decoder does with a broken sequence: *@fixed is then the
 * corrected copy of @data, to be parsed instead. */
/* Every byte JSON has outside strings: structure, numbers, true, false, null. */
#define OUTSIDE_STRINGS " \t\r\n{}[],:\"-+.0123456789eEtrufalsn"

/* Checks the escape at @data[*i] ('\\', inside a string) and moves *@i to
 * its last byte; FALSE (and *@i unchanged) when JSON has no such escape. */
static gboolean
escape_acceptable(const char *data, gsize len, gsize *i, char **fixed)
{
  const char *p = data + *i;
  const char *end = data + len;

  if (p + 1 < end && p[1] == 'u') {
    int value = escape_value(p + 2, end);
    int low;

    if (value < 0)
      return FALSE;
    low = value >= 0xD800 && value <= 0xDBFF && end - p >= 12 && p[6] == '\\' && p[7] == 'u' ? escape_value(p + 8, end)
                                                                                             : -1;
    if (low >= 0xDC00 && low <= 0xDFFF)
      *i += 6; /* a pair */
    else if (value >= 0xD800 && value <= 0xDFFF)
      replace_escape(data, len, p, fixed);
    *i += 5;
    return TRUE;
  }
  if (p + 1 >= end || p[1] == '\0' || strchr("\"\\/bfnrt", p[1]) == NULL)
    return FALSE;
  *i += 1;
  return TRUE;
}

/* One walk over @data for both checks: bracket depth outside strings (FALSE
 * with WA_JSON_ERROR_TOO_DEEP past @max_depth, wherever it happens) and,
 * when @acceptable is not NULL, whether json-glib may see the text (above).
 * Once the text is found unacceptable the walk goes on for the depth alone,
 * reading strings as the depth check always did (a backslash hides the next
 * byte): up to there both readings agree, and a text both too deep and
 * unacceptable is refused as too deep. */
static gboolean
json_scan(const char *data, gsize len, guint max_depth, gboolean *acceptable, char **fixed, GError **error)
{
  gboolean valid = acceptable != NULL;
  gboolean in_string = FALSE;
  gboolean started = FALSE;
  guint depth = 0;

  for (gsize i = 0; i < len; i++) {
    char c = data[i];

    if (in_string) {
      if (c == '"')
        in_string = FALSE;
      else if (c == '\\') {
        if (valid)
          valid = escape_acceptable(data, len, &i, fixed);
        if (!valid)
          i++; /* skip the escaped character, whatever it is */
      }
      continue;
    }
    if (valid && (strchr(OUTSIDE_STRINGS, c) == NULL || c == '\0'))
      valid = FALSE;
    switch (c) {
    case ' ':
    case '\t':
    case '\r':
    case '\n':
      continue;
    case '"':
      in_string = TRUE;
      break;
    case '[':
    case '{':
      if (depth == 0 && started)
        valid = FALSE;
      if (++depth > max_depth) {
        g_set_error(error, WA_JSON_ERROR, WA_JSON_ERROR_TOO_DEEP, "JSON nested deeper than %u levels", max_depth);
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
    started = TRUE;
  }
  if (acceptable != NULL)
    *acceptable = valid;
  return TRUE;
}

gboolean
wa_json_check_depth(const char *data, gsize len, guint max_depth, GError **error)
{
  return json_scan(data, len, max_depth, NULL, NULL, error);
}

/* A number json-glib 1.6.6 parses as infinite (1e400) cannot be written back
 * as JSON (it writes "inf.0"), and the receiver writes webhook values out
 * again (found by fuzz/fuzz-rxline): such a document is refused like other
 * invalid JSON. The depth check bounds the recursion. */
static gboolean
numbers_finite(JsonNode *node)
{
  if (JSON_NODE_HOLDS_OBJECT(node)) {
    JsonObjectIter iter;
    JsonNode *member;

    json_object_iter_init(&iter, json_node_get_object(node));
    while (json_object_iter_next(&iter, NULL, &member)) {
      if (!numbers_finite(member))
        return FALSE;
    }
  } else if (JSON_NODE_HOLDS_ARRAY(node)) {
    JsonArray *array = json_node_get_array(node);

    for (guint i = 0; i < json_array_get_length(array); i++) {
      if (!numbers_finite(json_array_get_element(array, i)))
        return FALSE;
    }
  } else if (JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_DOUBLE) {
    return isfinite(json_node_get_double(node));
  }
  return TRUE;
}

JsonNode *
wa_json_parse(const char *data, gsize len, GError **error)
{
  g_autoptr(JsonParser) parser = NULL;
  g_autofree char *fixed = NULL;
  GError *local = NULL;
  gboolean acceptable = FALSE;
  JsonNode *root;

  if (!json_scan(data, len, WA_JSON_MAX_DEPTH, &acceptable, &fixed, error))
    return NULL;
  if (len > G_MAXSSIZE) {
    g_set_error_literal(error, WA_JSON_ERROR, WA_JSON_ERROR_INVALID, "JSON too large");
    return NULL;
  }
  if (!acceptable) {
    g_set_error_literal(error, WA_JSON_ERROR, WA_JSON_ERROR_INVALID,
                        "invalid JSON: more than one top-level value, or a broken escape");
    return NULL;
  }
  parser = json_parser_new_immutable();
  if (!json_parser_load_from_data(parser, fixed != NULL ? fixed : data, (gssize) len, &local)) {
    g_set_error(error, WA_JSON_ERROR, WA_JSON_ERROR_INVALID, "invalid JSON: %s", local->message);
    g_error_free(local);
    return NULL;
  }
  root = json_parser_get_root(parser);
  if (root == NULL) {
    g_set_error_literal(error, WA_JSON_ERROR, WA_JSON_ERROR_INVALID, "empty JSON document");
    return NULL;
  }
  if (!numbers_finite(root)) {
    g_set_error_literal(error, WA_JSON_ERROR, WA_JSON_ERROR_INVALID, "invalid JSON: a number out of range");
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
    g_set_error_literal(error, WA_JSON_ERROR, WA_JSON_ERROR_NOT_OBJECT, "JSON document is not an object");
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

/* json-glib 1.6.6 appends ".0" to every double it prints without a point,
 * exponent forms included: 1e-300 becomes "1e-300.0", which is not JSON
 * (found by fuzz/fuzz-rxline). Drops such a ".0" after an exponent, outside
 * strings, in place. */
static void
drop_point_after_exponent(char *json)
{
  gboolean in_string = FALSE;
  char prev = '\0';
  char *w = json;

  for (const char *r = json; *r != '\0';) {
    if (in_string) {
      if (*r == '\\' && r[1] != '\0')
        *w++ = *r++;
      else if (*r == '"')
        in_string = FALSE;
    } else if (*r == '"') {
      in_string = TRUE;
    } else if ((*r == 'e' || *r == 'E') && g_ascii_isdigit(prev)) {
      *w++ = *r++;
      if (*r == '+' || *r == '-')
        *w++ = *r++;
      while (g_ascii_isdigit(*r))
        *w++ = *r++;
      if (r[0] == '.' && r[1] == '0' && !g_ascii_isdigit(r[2]))
        r += 2;
      prev = '0';
      continue;
    }
    prev = *r;
    *w++ = *r++;
  }
  *w = '\0';
}

char *
wa_json_to_string(JsonNode *node)
{
  g_autoptr(JsonGenerator) gen = json_generator_new();
  char *json;

  json_generator_set_root(gen, node);
  json = json_generator_to_data(gen, NULL);
  drop_point_after_exponent(json);
  return json;
}
