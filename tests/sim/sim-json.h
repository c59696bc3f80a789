/* sim-json.h: the simulator's own JSON helpers on top of json-glib: a
 * depth-limited parser and a serialiser that writes bytes the way Meta does
 * (compact, "\/", lowercase \uXXXX for every non-ASCII character). */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#define SIM_JSON_MAX_DEPTH 64

JsonNode *sim_json_parse (const char *data, gsize len, GError **error);
char *sim_json_serialize (JsonNode *node);
char *sim_json_serialize_builder (JsonBuilder *builder);
void sim_json_append_string (GString *out, const char *s);

/* Typed member lookups: NULL / FALSE when absent or of another type. */
const char *sim_json_string (JsonObject *obj, const char *member);
JsonObject *sim_json_object (JsonObject *obj, const char *member);
JsonArray *sim_json_array (JsonObject *obj, const char *member);
gboolean sim_json_is_number (JsonNode *node);
gboolean sim_json_int (JsonObject *obj, const char *member, gint64 *out);
gboolean sim_json_double (JsonObject *obj, const char *member, double *out);
gboolean sim_json_bool (JsonObject *obj, const char *member, gboolean *out);
