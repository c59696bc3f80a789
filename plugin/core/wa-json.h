/* wa-json.h: safe JSON input for plugin/core.
 *
 * json-glib 1.6 overflows the stack on deeply nested input, so every parse
 * first counts bracket depth outside strings and refuses anything deeper than
 * WA_JSON_MAX_DEPTH. The typed getters return a default instead of asserting
 * when a member is absent or of another type: API and webhook JSON is lenient
 * (numbers as strings, ids as integers). */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define WA_JSON_MAX_DEPTH 64

#define WA_JSON_ERROR (wa_json_error_quark())
GQuark wa_json_error_quark(void);

typedef enum {
  WA_JSON_ERROR_TOO_DEEP,
  WA_JSON_ERROR_INVALID,
  WA_JSON_ERROR_NOT_OBJECT,
} WaJsonError;

/* TRUE when @data nests no deeper than @max_depth (brackets outside strings). */
gboolean wa_json_check_depth(const char *data, gsize len, guint max_depth, GError **error);

/* Parses @data after the depth check. Returns a new node (free with
 * json_node_unref) or NULL with @error set. */
JsonNode *wa_json_parse(const char *data, gsize len, GError **error);
/* As wa_json_parse() but the root must be an object. */
JsonNode *wa_json_parse_object(const char *data, gsize len, GError **error);

/* Typed getters: @obj may be NULL. Returned strings belong to the object. */
const char *wa_json_get_string(JsonObject *obj, const char *name);
/* A string, or an integer rendered as a string (ids arrive both ways); newly allocated. */
char *wa_json_dup_id(JsonObject *obj, const char *name);
/* An integer, or a string holding a decimal integer; @def otherwise. */
gint64 wa_json_get_int(JsonObject *obj, const char *name, gint64 def);
double wa_json_get_double(JsonObject *obj, const char *name, double def);
gboolean wa_json_get_bool(JsonObject *obj, const char *name, gboolean def);
JsonObject *wa_json_get_object(JsonObject *obj, const char *name);
JsonArray *wa_json_get_array(JsonObject *obj, const char *name);
/* The object at @index of @array, or NULL. */
JsonObject *wa_json_array_get_object(JsonArray *array, guint index);

/* Serialises @node compactly; newly allocated. */
char *wa_json_to_string(JsonNode *node);

G_END_DECLS
