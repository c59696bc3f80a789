/* sim-templates.c: the WABA's message template catalogue in the simulator.
 *
 * Graph: GET /{version}/{waba-id}/message_templates answers
 * {"data":[...],"paging":{"cursors":{"before","after"},"next"?,"previous"?}}
 * with Meta's template objects (id as a string, name, language, status,
 * category, parameter_format, components, quality_score on request), the
 * filters name (substring), status, category and language, `limit` (25 by
 * default, at most 1000 per page) and opaque `after` / `before` cursors.
 *
 * Control: POST /_sim/templates adds or replaces templates (by name and
 * language), GET lists them, DELETE removes them; POST /_sim/templates/update
 * changes a template's status, quality, category or components and emits the
 * matching webhook (message_template_status_update,
 * message_template_quality_update, template_category_update,
 * message_template_components_update): entry[].id is the WABA id, entry[].time
 * is set and there is no messaging_product or metadata, as Meta sends them.
 *
 * Must not: link plugin/core. */
#include "sim-templates.h"

#include <stdlib.h>
#include <string.h>

#include "sim-json.h"
#include "sim-upload.h"
#include "sim-webhook.h"

#define DEFAULT_LIMIT 25
#define MAX_LIMIT 1000

typedef struct
{
  gint64 seq; /* insertion order: the listing's order and the cursors */
  char *id;
  char *name;
  char *language;
  char *status;
  char *category;
  char *parameter_format;
  char *quality;
  gint64 quality_date;
  char *previous_category; /* or NULL */
  char *sub_category;      /* or NULL */
  char *rejected_reason;   /* or NULL */
  JsonNode *components;    /* an array */
  gboolean explicit_id;    /* the control request named the id */
} SimTemplate;

static GPtrArray *catalogue; /* SimTemplate*, ascending seq */
static gint64 next_seq = 1;
static guint64 next_id = 1192339204654487;

static const char *const statuses[]
    = { "APPROVED",         "PENDING", "REJECTED", "PAUSED",         "DISABLED", "IN_APPEAL",
        "PENDING_DELETION", "DELETED", "ARCHIVED", "LIMIT_EXCEEDED", "LOCKED",   NULL };
static const char *const categories[] = { "MARKETING", "UTILITY", "AUTHENTICATION", NULL };
static const char *const formats[] = { "POSITIONAL", "NAMED", NULL };
static const char *const qualities[] = { "GREEN", "YELLOW", "RED", "UNKNOWN", NULL };

static void
template_free (SimTemplate *t)
{
  g_free (t->id);
  g_free (t->name);
  g_free (t->language);
  g_free (t->status);
  g_free (t->category);
  g_free (t->parameter_format);
  g_free (t->quality);
  g_free (t->previous_category);
  g_free (t->sub_category);
  g_free (t->rejected_reason);
  if (t->components)
    json_node_unref (t->components);
  g_free (t);
}

static void
ensure_catalogue (void)
{
  if (catalogue == NULL)
    catalogue = g_ptr_array_new_with_free_func ((GDestroyNotify)template_free);
}

void
sim_templates_reset (void)
{
  ensure_catalogue ();
  g_ptr_array_set_size (catalogue, 0);
}

static SimTemplate *
find_template (const char *name, const char *language)
{
  ensure_catalogue ();
  for (guint i = 0; i < catalogue->len; i++)
    {
      SimTemplate *t = g_ptr_array_index (catalogue, i);

      if (g_strcmp0 (t->name, name) == 0 && g_strcmp0 (t->language, language) == 0)
        return t;
    }
  return NULL;
}

/* ---- Graph: the template object ---- */

static const char *const known_fields[] = { "id",
                                            "name",
                                            "language",
                                            "status",
                                            "category",
                                            "parameter_format",
                                            "components",
                                            "quality_score",
                                            "previous_category",
                                            "sub_category",
                                            "rejected_reason",
                                            NULL };

static void
add_string_member (JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name (b, name);
  json_builder_add_string_value (b, value);
}

/* One field of @t; optional fields that the template lacks are left out. */
static void
add_field (JsonBuilder *b, const SimTemplate *t, const char *field)
{
  if (g_strcmp0 (field, "id") == 0)
    add_string_member (b, "id", t->id);
  else if (g_strcmp0 (field, "name") == 0)
    add_string_member (b, "name", t->name);
  else if (g_strcmp0 (field, "language") == 0)
    add_string_member (b, "language", t->language);
  else if (g_strcmp0 (field, "status") == 0)
    add_string_member (b, "status", t->status);
  else if (g_strcmp0 (field, "category") == 0)
    add_string_member (b, "category", t->category);
  else if (g_strcmp0 (field, "parameter_format") == 0)
    add_string_member (b, "parameter_format", t->parameter_format);
  else if (g_strcmp0 (field, "components") == 0)
    {
      json_builder_set_member_name (b, "components");
      json_builder_add_value (b, json_node_copy (t->components));
    }
  else if (g_strcmp0 (field, "quality_score") == 0)
    {
      json_builder_set_member_name (b, "quality_score");
      json_builder_begin_object (b);
      add_string_member (b, "score", t->quality);
      json_builder_set_member_name (b, "date");
      json_builder_add_int_value (b, t->quality_date);
      json_builder_end_object (b);
    }
  else if (g_strcmp0 (field, "previous_category") == 0 && t->previous_category)
    add_string_member (b, "previous_category", t->previous_category);
  else if (g_strcmp0 (field, "sub_category") == 0 && t->sub_category)
    add_string_member (b, "sub_category", t->sub_category);
  else if (g_strcmp0 (field, "rejected_reason") == 0)
    add_string_member (b, "rejected_reason", t->rejected_reason ? t->rejected_reason : "NONE");
}

static void
bad_request (SimError *err, const char *message)
{
  sim_error_set (err, 400, 100, message, NULL);
}

static char *
encode_cursor (gint64 seq)
{
  g_autofree char *text = g_strdup_printf ("tpl:%" G_GINT64_FORMAT, seq);

  return g_base64_encode ((const guchar *)text, strlen (text));
}

static gboolean
decode_cursor (const char *cursor, gint64 *seq)
{
  gsize len = 0;
  g_autofree guchar *raw = NULL;
  g_autofree char *text = NULL;
  char *end = NULL;

  if (cursor == NULL || *cursor == '\0')
    return FALSE;
  raw = g_base64_decode (cursor, &len);
  text = g_strndup ((const char *)raw, len);
  if (!g_str_has_prefix (text, "tpl:") || !g_ascii_isdigit (text[4]))
    return FALSE;
  *seq = g_ascii_strtoll (text + 4, &end, 10);
  return end != NULL && *end == '\0';
}

static gboolean
template_matches (const SimTemplate *t, GHashTable *form)
{
  const char *name = g_hash_table_lookup (form, "name");
  const char *status = g_hash_table_lookup (form, "status");
  const char *category = g_hash_table_lookup (form, "category");
  const char *language = g_hash_table_lookup (form, "language");

  if (name && *name && strstr (t->name, name) == NULL)
    return FALSE;
  if (status && *status && g_ascii_strcasecmp (status, t->status) != 0)
    return FALSE;
  if (category && *category && g_ascii_strcasecmp (category, t->category) != 0)
    return FALSE;
  if (language && *language && g_strcmp0 (language, t->language) != 0)
    return FALSE;
  return TRUE;
}

/* paging.next / paging.previous: the same query with a new cursor. */
static char *
page_url (GUri *uri, const char *version, const char *waba, GHashTable *form, gint64 limit,
          const char *direction, const char *cursor)
{
  static const char *const kept[] = { "fields", "name", "status", "category", "language", NULL };
  GString *url = g_string_new (NULL);
  int port = g_uri_get_port (uri);

  g_string_append_printf (url, "%s://%s", g_uri_get_scheme (uri) ? g_uri_get_scheme (uri) : "http",
                          g_uri_get_host (uri));
  if (port > 0)
    g_string_append_printf (url, ":%d", port);
  g_string_append_printf (url, "/%s/%s/message_templates?", version, waba);
  for (guint i = 0; kept[i]; i++)
    {
      const char *v = g_hash_table_lookup (form, kept[i]);

      if (v != NULL)
        {
          g_autofree char *escaped = g_uri_escape_string (v, NULL, TRUE);

          g_string_append_printf (url, "%s=%s&", kept[i], escaped);
        }
    }
  g_string_append_printf (url, "limit=%" G_GINT64_FORMAT "&%s=", limit, direction);
  g_string_append_uri_escaped (url, cursor, NULL, TRUE);
  return g_string_free (url, FALSE);
}

/* The fields asked for (borrowed from *@fields), or the default ones; 100
 * for an unknown one. */
static gboolean
parse_fields (const char *fields_arg, GStrv *fields, GPtrArray *chosen, SimError *err)
{
  static const char *const default_fields[]
      = { "name", "parameter_format", "components", "language", "status", "category", NULL };

  *fields = fields_arg ? g_strsplit (fields_arg, ",", -1) : g_strdupv ((char **)default_fields);
  for (guint i = 0; (*fields)[i] != NULL; i++)
    {
      char *field = g_strstrip ((*fields)[i]);

      if (*field == '\0' || g_strcmp0 (field, "id") == 0)
        continue;
      if (!g_strv_contains (known_fields, field))
        {
          g_autofree char *message
              = g_strdup_printf ("(#100) Tried accessing nonexisting field (%s) on node type "
                                 "(WhatsAppBusinessHSM)",
                                 field);

          bad_request (err, message);
          return FALSE;
        }
      if (!g_ptr_array_find_with_equal_func (chosen, field, g_str_equal, NULL))
        g_ptr_array_add (chosen, field);
    }
  return TRUE;
}

static void
add_template_fields (JsonBuilder *b, const SimTemplate *t, GPtrArray *chosen)
{
  json_builder_begin_object (b);
  for (guint f = 0; f < chosen->len; f++)
    add_field (b, t, g_ptr_array_index (chosen, f));
  add_field (b, t, "id");
  json_builder_end_object (b);
}

SimTemplateLookup
sim_templates_get (GUri *uri, const char *id, JsonBuilder **answer, SimError *err)
{
  const char *query = g_uri_get_query (uri);
  g_autoptr (GHashTable) form = query ? soup_form_decode (query) : NULL;
  g_auto (GStrv) fields = NULL;
  g_autoptr (GPtrArray) chosen = g_ptr_array_new ();
  const SimTemplate *t = NULL;

  ensure_catalogue ();
  for (guint i = 0; i < catalogue->len && t == NULL; i++)
    if (g_strcmp0 (((SimTemplate *)catalogue->pdata[i])->id, id) == 0)
      t = catalogue->pdata[i];
  if (t == NULL)
    return SIM_TEMPLATE_UNKNOWN;
  if (!parse_fields (form ? g_hash_table_lookup (form, "fields") : NULL, &fields, chosen, err))
    return SIM_TEMPLATE_ERROR;
  *answer = json_builder_new ();
  add_template_fields (*answer, t, chosen);
  return SIM_TEMPLATE_FOUND;
}

gboolean
sim_templates_list (Sim *sim, GUri *uri, const char *version, JsonBuilder **answer, SimError *err)
{
  const char *query = g_uri_get_query (uri);
  g_autoptr (GHashTable) form
      = query ? soup_form_decode (query) : g_hash_table_new (g_str_hash, g_str_equal);
  const char *fields_arg = g_hash_table_lookup (form, "fields");
  const char *limit_arg = g_hash_table_lookup (form, "limit");
  const char *after_arg = g_hash_table_lookup (form, "after");
  const char *before_arg = g_hash_table_lookup (form, "before");
  g_auto (GStrv) fields = NULL;
  g_autoptr (GPtrArray) matching = g_ptr_array_new ();
  g_autoptr (GPtrArray) chosen = g_ptr_array_new ();
  gint64 limit = DEFAULT_LIMIT, cursor = 0;
  guint start = 0, end = 0;
  JsonBuilder *b;

  ensure_catalogue ();
  if (!parse_fields (fields_arg, &fields, chosen, err))
    return FALSE;
  if (limit_arg != NULL)
    {
      char *endp = NULL;

      limit = g_ascii_strtoll (limit_arg, &endp, 10);
      if (endp == limit_arg || *endp != '\0' || limit < 1)
        {
          bad_request (err, "(#100) Param limit must be a positive integer");
          return FALSE;
        }
      limit = MIN (limit, MAX_LIMIT);
    }
  if ((after_arg && !decode_cursor (after_arg, &cursor))
      || (before_arg && !decode_cursor (before_arg, &cursor)))
    {
      bad_request (err, "(#100) Invalid cursor");
      return FALSE;
    }

  for (guint i = 0; i < catalogue->len; i++)
    {
      SimTemplate *t = g_ptr_array_index (catalogue, i);

      if (template_matches (t, form))
        g_ptr_array_add (matching, t);
    }
  if (after_arg)
    while (start < matching->len && ((SimTemplate *)matching->pdata[start])->seq <= cursor)
      start++;
  else if (before_arg)
    {
      guint below = 0;

      while (below < matching->len && ((SimTemplate *)matching->pdata[below])->seq < cursor)
        below++;
      start = below > limit ? below - (guint)limit : 0;
      end = below;
    }
  if (!before_arg)
    end = (guint)MIN ((gint64)matching->len, (gint64)start + limit);

  b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "data");
  json_builder_begin_array (b);
  for (guint i = start; i < end; i++)
    {
      add_template_fields (b, g_ptr_array_index (matching, i), chosen);
    }
  json_builder_end_array (b);
  if (end > start)
    {
      g_autofree char *first = encode_cursor (((SimTemplate *)matching->pdata[start])->seq);
      g_autofree char *last = encode_cursor (((SimTemplate *)matching->pdata[end - 1])->seq);

      json_builder_set_member_name (b, "paging");
      json_builder_begin_object (b);
      json_builder_set_member_name (b, "cursors");
      json_builder_begin_object (b);
      add_string_member (b, "before", first);
      add_string_member (b, "after", last);
      json_builder_end_object (b);
      if (end < matching->len)
        {
          g_autofree char *next = page_url (uri, version, sim->waba_id, form, limit, "after", last);

          add_string_member (b, "next", next);
        }
      if (start > 0)
        {
          g_autofree char *prev
              = page_url (uri, version, sim->waba_id, form, limit, "before", first);

          add_string_member (b, "previous", prev);
        }
      json_builder_end_object (b);
    }
  json_builder_end_object (b);
  *answer = b;
  return TRUE;
}

/* ---- control: answers ---- */

/* The full object, as the control API shows it. */
static void
add_template_object (JsonBuilder *b, const SimTemplate *t)
{
  json_builder_begin_object (b);
  for (guint i = 0; known_fields[i]; i++)
    if (g_strcmp0 (known_fields[i], "quality_score") != 0)
      add_field (b, t, known_fields[i]);
  add_string_member (b, "quality_score", t->quality);
  json_builder_end_object (b);
}

/* ---- control: adding ---- */

static gboolean
name_ok (const char *name)
{
  if (name == NULL || *name == '\0' || strlen (name) > 512)
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!(g_ascii_islower (*p) || g_ascii_isdigit (*p) || *p == '_'))
      return FALSE;
  return TRUE;
}

/* An optional string member that must be one of @allowed (upper case). */
static gboolean
read_enum (JsonObject *obj, const char *member, const char *const *allowed, const char *fallback,
           char **out, GString *problem)
{
  JsonNode *node = json_object_get_member (obj, member);
  const char *value = fallback;
  g_autofree char *upper = NULL;

  if (node != NULL)
    {
      value = sim_json_string (obj, member);
      if (value == NULL && g_strcmp0 (member, "quality_score") == 0
          && JSON_NODE_HOLDS_OBJECT (node))
        value = sim_json_string (json_node_get_object (node), "score");
    }
  upper = value ? g_ascii_strup (value, -1) : NULL;
  if (upper == NULL || (allowed != NULL && !g_strv_contains (allowed, upper)))
    {
      g_string_append_printf (problem, "%s must be one of", member);
      for (guint i = 0; allowed && allowed[i]; i++)
        g_string_append_printf (problem, " %s", allowed[i]);
      return FALSE;
    }
  *out = g_steal_pointer (&upper);
  return TRUE;
}

static gboolean
components_ok (JsonNode *node, GString *problem)
{
  static const char *const types[]
      = { "HEADER", "BODY", "FOOTER", "BUTTONS", "CAROUSEL", "LIMITED_TIME_OFFER", NULL };
  JsonArray *array;

  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node))
    {
      g_string_append (problem, "components must be an array");
      return FALSE;
    }
  array = json_node_get_array (node);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *c = json_array_get_element (array, i);
      const char *type
          = JSON_NODE_HOLDS_OBJECT (c) ? sim_json_string (json_node_get_object (c), "type") : NULL;

      if (type == NULL || !g_strv_contains (types, type))
        {
          g_string_append (problem, "each component needs a type: HEADER, BODY, FOOTER, BUTTONS, "
                                    "CAROUSEL or LIMITED_TIME_OFFER");
          return FALSE;
        }
    }
  return TRUE;
}

/* Builds a template from a control request; NULL with @problem set. */
static SimTemplate *
template_from_object (Sim *sim, JsonObject *obj, GString *problem)
{
  static const char *const known[] = { "id",
                                       "name",
                                       "language",
                                       "status",
                                       "category",
                                       "parameter_format",
                                       "components",
                                       "quality_score",
                                       "previous_category",
                                       "sub_category",
                                       "rejected_reason",
                                       NULL };
  SimTemplate *t = g_new0 (SimTemplate, 1);
  JsonObjectIter iter;
  const char *member;
  JsonNode *node;
  const char *id = sim_json_string (obj, "id");

  json_object_iter_init (&iter, obj);
  while (json_object_iter_next (&iter, &member, &node))
    if (!g_strv_contains (known, member))
      {
        g_string_append_printf (problem, "unknown template member \"%s\"", member);
        goto fail;
      }
  t->name = g_strdup (sim_json_string (obj, "name"));
  t->language = g_strdup (sim_json_string (obj, "language"));
  if (!name_ok (t->name))
    {
      g_string_append (problem, "name must match ^[a-z0-9_]+$ (at most 512 characters)");
      goto fail;
    }
  if (t->language == NULL || *t->language == '\0')
    {
      g_string_append (problem, "language must be a string such as en_US");
      goto fail;
    }
  if (json_object_has_member (obj, "id")
      && (id == NULL || *id == '\0' || strspn (id, "0123456789") != strlen (id)))
    {
      g_string_append (problem, "id must be a string of digits");
      goto fail;
    }
  if (!read_enum (obj, "status", statuses, "APPROVED", &t->status, problem)
      || !read_enum (obj, "category", categories, "UTILITY", &t->category, problem)
      || !read_enum (obj, "parameter_format", formats, "POSITIONAL", &t->parameter_format, problem)
      || !read_enum (obj, "quality_score", qualities, "UNKNOWN", &t->quality, problem))
    goto fail;
  node = json_object_get_member (obj, "components");
  if (node != NULL && !components_ok (node, problem))
    goto fail;
  t->components
      = node ? json_node_copy (node) : json_node_init_array (json_node_alloc (), json_array_new ());
  t->previous_category = g_strdup (sim_json_string (obj, "previous_category"));
  t->sub_category = g_strdup (sim_json_string (obj, "sub_category"));
  t->rejected_reason = g_strdup (sim_json_string (obj, "rejected_reason"));
  t->explicit_id = id != NULL;
  t->id = id ? g_strdup (id) : g_strdup_printf ("%" G_GUINT64_FORMAT, next_id++);
  t->quality_date = sim_clock_now (&sim->clock);
  return t;

fail:
  template_free (t);
  return NULL;
}

/* POST /_sim/templates: one template object, or {"templates":[...]}; all or nothing. */
static void
post_templates (Sim *sim, SoupServerMessage *msg, JsonObject *req)
{
  g_autoptr (GPtrArray) added = g_ptr_array_new_with_free_func ((GDestroyNotify)template_free);
  g_autoptr (GString) problem = g_string_new (NULL);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  JsonArray *list = sim_json_array (req, "templates");

  if (json_object_has_member (req, "templates"))
    {
      if (list == NULL || json_object_get_size (req) != 1)
        {
          sim_control_error (msg, 400, "templates must be an array of template objects, alone");
          return;
        }
      for (guint i = 0; i < json_array_get_length (list); i++)
        {
          JsonNode *node = json_array_get_element (list, i);
          SimTemplate *t = JSON_NODE_HOLDS_OBJECT (node)
                               ? template_from_object (sim, json_node_get_object (node), problem)
                               : NULL;

          if (t == NULL)
            {
              sim_control_error (msg, 400, "template %u: %s", i,
                                 problem->len ? problem->str : "not an object");
              return;
            }
          g_ptr_array_add (added, t);
        }
    }
  else
    {
      SimTemplate *t = template_from_object (sim, req, problem);

      if (t == NULL)
        {
          sim_control_error (msg, 400, "%s", problem->str);
          return;
        }
      g_ptr_array_add (added, t);
    }

  ensure_catalogue ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "templates");
  json_builder_begin_array (b);
  while (added->len > 0)
    {
      SimTemplate *t = g_ptr_array_steal_index (added, 0);
      SimTemplate *old = find_template (t->name, t->language);

      json_builder_begin_object (b);
      if (old != NULL)
        {
          /* a replacement keeps its place in the listing and, unless the
           * request names one, its id */
          guint index = 0;

          g_ptr_array_find (catalogue, old, &index);
          t->seq = old->seq;
          if (!t->explicit_id)
            {
              g_free (t->id);
              t->id = g_strdup (old->id);
            }
          catalogue->pdata[index] = t;
          template_free (old);
        }
      else
        {
          t->seq = next_seq++;
          g_ptr_array_add (catalogue, t);
        }
      add_string_member (b, "id", t->id);
      add_string_member (b, "name", t->name);
      add_string_member (b, "language", t->language);
      json_builder_set_member_name (b, "replaced");
      json_builder_add_boolean_value (b, old != NULL);
      json_builder_end_object (b);
    }
  json_builder_end_array (b);
  json_builder_end_object (b);
  sim_control_answer (msg, 200, b);
}

static void
list_templates (SoupServerMessage *msg)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  ensure_catalogue ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "templates");
  json_builder_begin_array (b);
  for (guint i = 0; i < catalogue->len; i++)
    add_template_object (b, g_ptr_array_index (catalogue, i));
  json_builder_end_array (b);
  json_builder_end_object (b);
  sim_control_answer (msg, 200, b);
}

/* DELETE /_sim/templates[?name=N[&language=L]]: no name = all. */
static void
delete_templates (SoupServerMessage *msg)
{
  const char *query = g_uri_get_query (soup_server_message_get_uri (msg));
  g_autoptr (GHashTable) form = query ? soup_form_decode (query) : NULL;
  const char *name = form ? g_hash_table_lookup (form, "name") : NULL;
  const char *language = form ? g_hash_table_lookup (form, "language") : NULL;
  g_autoptr (JsonBuilder) b = json_builder_new ();
  gint64 deleted = 0;

  ensure_catalogue ();
  for (guint i = catalogue->len; i > 0; i--)
    {
      SimTemplate *t = g_ptr_array_index (catalogue, i - 1);

      if ((name == NULL || g_strcmp0 (name, t->name) == 0)
          && (language == NULL || g_strcmp0 (language, t->language) == 0))
        {
          g_ptr_array_remove_index (catalogue, i - 1);
          deleted++;
        }
    }
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "deleted");
  json_builder_add_int_value (b, deleted);
  json_builder_end_object (b);
  sim_control_answer (msg, 200, b);
}

/* ---- control: changes and their webhooks ---- */

/* {"object":"whatsapp_business_account","entry":[{"id":WABA,"time":now,
 *  "changes":[{"value":{ ... left open for the caller */
static JsonBuilder *
event_begin (Sim *sim, const SimTemplate *t)
{
  JsonBuilder *b = json_builder_new ();

  json_builder_begin_object (b);
  add_string_member (b, "object", "whatsapp_business_account");
  json_builder_set_member_name (b, "entry");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  add_string_member (b, "id", sim->waba_id);
  json_builder_set_member_name (b, "time");
  json_builder_add_int_value (b, sim_clock_now (&sim->clock));
  json_builder_set_member_name (b, "changes");
  json_builder_begin_array (b);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "value");
  json_builder_begin_object (b);
  if (t != NULL)
    {
      json_builder_set_member_name (b, "message_template_id");
      json_builder_add_int_value (b, g_ascii_strtoll (t->id, NULL, 10));
      add_string_member (b, "message_template_name", t->name);
      add_string_member (b, "message_template_language", t->language);
    }
  return b;
}

static char *
event_end (JsonBuilder *b, const char *field)
{
  char *body;

  json_builder_end_object (b); /* value */
  add_string_member (b, "field", field);
  json_builder_end_object (b); /* change */
  json_builder_end_array (b);
  json_builder_end_object (b); /* entry */
  json_builder_end_array (b);
  json_builder_end_object (b);
  body = sim_json_serialize_builder (b);
  g_object_unref (b);
  return body;
}

static char *
status_event (Sim *sim, const SimTemplate *t, JsonObject *req)
{
  static const char *const passthrough[] = { "rejection_info", "disable_info", "other_info", NULL };
  JsonBuilder *b = event_begin (sim, NULL);
  const char *reason = sim_json_string (req, "reason");

  /* Meta's order: event, id, name, language, reason, category */
  add_string_member (b, "event", t->status);
  json_builder_set_member_name (b, "message_template_id");
  json_builder_add_int_value (b, g_ascii_strtoll (t->id, NULL, 10));
  add_string_member (b, "message_template_name", t->name);
  add_string_member (b, "message_template_language", t->language);
  json_builder_set_member_name (b, "reason");
  if (reason != NULL)
    json_builder_add_string_value (b, reason);
  else
    json_builder_add_null_value (b);
  add_string_member (b, "message_template_category", t->category);
  for (guint i = 0; passthrough[i]; i++)
    if (json_object_has_member (req, passthrough[i]))
      {
        json_builder_set_member_name (b, passthrough[i]);
        json_builder_add_value (b, json_node_copy (json_object_get_member (req, passthrough[i])));
      }
  return event_end (b, "message_template_status_update");
}

static char *
quality_event (Sim *sim, const SimTemplate *t, const char *previous)
{
  JsonBuilder *b = event_begin (sim, NULL);

  add_string_member (b, "previous_quality_score", previous);
  add_string_member (b, "new_quality_score", t->quality);
  json_builder_set_member_name (b, "message_template_id");
  json_builder_add_int_value (b, g_ascii_strtoll (t->id, NULL, 10));
  add_string_member (b, "message_template_name", t->name);
  add_string_member (b, "message_template_language", t->language);
  return event_end (b, "message_template_quality_update");
}

static char *
category_event (Sim *sim, const SimTemplate *t)
{
  JsonBuilder *b = event_begin (sim, t);

  if (t->previous_category)
    add_string_member (b, "previous_category", t->previous_category);
  add_string_member (b, "new_category", t->category);
  return event_end (b, "template_category_update");
}

static const char *
component_text (const SimTemplate *t, const char *type, JsonObject **found)
{
  JsonArray *array = json_node_get_array (t->components);

  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonObject *c = json_array_get_object_element (array, i);

      if (g_strcmp0 (sim_json_string (c, "type"), type) == 0)
        {
          if (found)
            *found = c;
          return sim_json_string (c, "text");
        }
    }
  return NULL;
}

static char *
components_event (Sim *sim, const SimTemplate *t)
{
  JsonBuilder *b = event_begin (sim, t);
  const char *body = component_text (t, "BODY", NULL);
  const char *title = component_text (t, "HEADER", NULL);
  const char *footer = component_text (t, "FOOTER", NULL);
  JsonObject *buttons = NULL;
  JsonArray *list;

  add_string_member (b, "message_template_element", body ? body : "");
  if (title)
    add_string_member (b, "message_template_title", title);
  if (footer)
    add_string_member (b, "message_template_footer", footer);
  component_text (t, "BUTTONS", &buttons);
  list = buttons ? sim_json_array (buttons, "buttons") : NULL;
  if (list != NULL)
    {
      json_builder_set_member_name (b, "message_template_buttons");
      json_builder_begin_array (b);
      for (guint i = 0; i < json_array_get_length (list); i++)
        {
          JsonNode *node = json_array_get_element (list, i);
          JsonObject *button = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;

          if (button == NULL)
            continue;
          json_builder_begin_object (b);
          add_string_member (b, "message_template_button_type",
                             sim_json_string (button, "type") ? sim_json_string (button, "type")
                                                              : "");
          add_string_member (b, "message_template_button_text",
                             sim_json_string (button, "text") ? sim_json_string (button, "text")
                                                              : "");
          if (sim_json_string (button, "url"))
            add_string_member (b, "message_template_button_url", sim_json_string (button, "url"));
          if (sim_json_string (button, "phone_number"))
            add_string_member (b, "message_template_button_phone_number",
                               sim_json_string (button, "phone_number"));
          json_builder_end_object (b);
        }
      json_builder_end_array (b);
    }
  return event_end (b, "message_template_components_update");
}

/* POST /_sim/templates/update {name, language, status?, reason?,
 * rejection_info?, disable_info?, other_info?, quality_score?, category?,
 * components?}: every change made emits its webhook, in that order. */
static void
update_template (Sim *sim, SoupServerMessage *msg, JsonObject *req)
{
  static const char *const known[]
      = { "name",           "language",     "status",     "reason",
          "rejection_info", "disable_info", "other_info", "quality_score",
          "category",       "components",   NULL };
  SimTemplate *t = find_template (sim_json_string (req, "name"), sim_json_string (req, "language"));
  g_autoptr (GString) problem = g_string_new (NULL);
  g_autoptr (GPtrArray) bodies = g_ptr_array_new_with_free_func (g_free);
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autofree char *status = NULL, *quality = NULL, *category = NULL;
  JsonNode *components = json_object_get_member (req, "components");
  JsonObjectIter iter;
  const char *member;
  JsonNode *node;

  json_object_iter_init (&iter, req);
  while (json_object_iter_next (&iter, &member, &node))
    if (!g_strv_contains (known, member))
      {
        sim_control_error (msg, 400, "unknown member \"%s\"", member);
        return;
      }
  if (t == NULL)
    {
      sim_control_error (msg, 404, "no template %s in %s", sim_json_string (req, "name"),
                         sim_json_string (req, "language"));
      return;
    }
  if ((json_object_has_member (req, "status")
       && !read_enum (req, "status", statuses, NULL, &status, problem))
      || (json_object_has_member (req, "quality_score")
          && !read_enum (req, "quality_score", qualities, NULL, &quality, problem))
      || (json_object_has_member (req, "category")
          && !read_enum (req, "category", categories, NULL, &category, problem))
      || (components != NULL && !components_ok (components, problem)))
    {
      sim_control_error (msg, 400, "%s", problem->str);
      return;
    }
  if (status != NULL)
    {
      g_free (t->status);
      t->status = g_steal_pointer (&status);
      g_ptr_array_add (bodies, status_event (sim, t, req));
    }
  if (quality != NULL)
    {
      g_autofree char *previous = t->quality;

      t->quality = g_steal_pointer (&quality);
      t->quality_date = sim_clock_now (&sim->clock);
      g_ptr_array_add (bodies, quality_event (sim, t, previous));
    }
  if (category != NULL)
    {
      g_free (t->previous_category);
      t->previous_category = t->category;
      t->category = g_steal_pointer (&category);
      g_ptr_array_add (bodies, category_event (sim, t));
    }
  if (components != NULL)
    {
      json_node_unref (t->components);
      t->components = json_node_copy (components);
      g_ptr_array_add (bodies, components_event (sim, t));
    }

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "template");
  add_template_object (b, t);
  json_builder_set_member_name (b, "deliveries");
  json_builder_begin_array (b);
  for (guint i = 0; i < bodies->len; i++)
    {
      gint64 id = sim_webhook_emit (sim->webhook, g_ptr_array_index (bodies, i),
                                    SIM_WEBHOOK_MESSAGE, TRUE, NULL);

      if (id != 0)
        json_builder_add_int_value (b, id);
      else
        json_builder_add_null_value (b);
    }
  json_builder_end_array (b);
  json_builder_set_member_name (b, "bodies");
  json_builder_begin_array (b);
  for (guint i = 0; i < bodies->len; i++)
    json_builder_add_string_value (b, g_ptr_array_index (bodies, i));
  json_builder_end_array (b);
  json_builder_end_object (b);
  sim_control_answer (msg, 200, b);
}

void
sim_templates_control (Sim *sim, SoupServerMessage *msg, const char *method, const char *what,
                       JsonObject *req)
{
  gboolean post = g_strcmp0 (method, "POST") == 0 && req != NULL;

  if (g_strcmp0 (what, "templates") == 0 && post)
    post_templates (sim, msg, req);
  else if (g_strcmp0 (what, "templates") == 0 && g_strcmp0 (method, "GET") == 0)
    list_templates (msg);
  else if (g_strcmp0 (what, "templates") == 0 && g_strcmp0 (method, "DELETE") == 0)
    delete_templates (msg);
  else if (g_strcmp0 (what, "templates/update") == 0 && post)
    update_template (sim, msg, req);
  else
    sim_control_error (msg, 404,
                       "GET, POST or DELETE /_sim/templates, POST /_sim/templates/update");
}

/* ---- send-time checks ---- */

void
sim_template_render_clear (SimTemplateRender *r)
{
  g_clear_pointer (&r->category, g_free);
  g_clear_pointer (&r->header, g_free);
  g_clear_pointer (&r->body, g_free);
  g_clear_pointer (&r->footer, g_free);
  g_clear_pointer (&r->text, g_free);
}

gboolean
sim_templates_empty (void)
{
  ensure_catalogue ();
  return catalogue->len == 0;
}

/* The placeholders of @text in order of first appearance ("1", "first_name"). */
static GPtrArray *
placeholders (const char *text)
{
  GPtrArray *names = g_ptr_array_new_with_free_func (g_free);
  const char *p = text;

  while (p != NULL && (p = strstr (p, "{{")) != NULL)
    {
      const char *end = strstr (p + 2, "}}");
      g_autofree char *name = NULL;

      if (end == NULL)
        break;
      name = g_strstrip (g_strndup (p + 2, end - p - 2));
      if (*name != '\0' && !g_ptr_array_find_with_equal_func (names, name, g_str_equal, NULL))
        g_ptr_array_add (names, g_steal_pointer (&name));
      p = end + 2;
    }
  return names;
}

/* @text with each {{name}} replaced by values[name]. */
static char *
substitute (const char *text, GHashTable *values)
{
  GString *out = g_string_new (NULL);
  const char *p = text;

  while (*p)
    {
      const char *end = g_str_has_prefix (p, "{{") ? strstr (p + 2, "}}") : NULL;

      if (end != NULL)
        {
          g_autofree char *name = g_strstrip (g_strndup (p + 2, end - p - 2));
          const char *value = g_hash_table_lookup (values, name);

          if (value != NULL)
            {
              g_string_append (out, value);
              p = end + 2;
              continue;
            }
        }
      g_string_append_c (out, *p++);
    }
  return g_string_free (out, FALSE);
}

typedef struct
{
  const SimTemplate *t;
  gint64 format_code; /* 132018 (v23+) or 132012 */
  gboolean named;
  gint64 now_ms; /* the simulator's clock: an offer must end after it */
  SimError *err;
} SendCheck;

#define COUNT_MESSAGE "(#132000) Number of parameters does not match the expected number of params"

static gboolean
format_error (SendCheck *c, const char *details)
{
  sim_error_set (c->err, 400, c->format_code,
                 c->format_code == 132018
                     ? "(#132018) There was an issue with the parameters in your template."
                     : "(#132012) Parameter format does not match format in the created template",
                 "%s", details);
  return FALSE;
}

static gboolean
count_error (SendCheck *c, const char *part, guint got, guint expected)
{
  sim_error_set (c->err, 400, 132000, COUNT_MESSAGE,
                 "%s: number of localizable_params (%u) does not match the expected number of "
                 "params (%u)",
                 part, got, expected);
  return FALSE;
}

static gboolean
value_error (SendCheck *c, const char *details)
{
  sim_error_set (c->err, 400, 131009, "(#131009) Parameter value is not valid", "%s", details);
  return FALSE;
}

/* The send's component of @type ("header", "body"), or NULL. */
static JsonObject *
send_component (JsonArray *send, const char *type)
{
  for (guint i = 0; send && i < json_array_get_length (send); i++)
    {
      JsonObject *c = json_array_get_object_element (send, i);

      if (g_ascii_strcasecmp (sim_json_string (c, "type"), type) == 0)
        return c;
    }
  return NULL;
}

static guint
n_params (JsonObject *component)
{
  JsonArray *params = component ? sim_json_array (component, "parameters") : NULL;

  return params ? json_array_get_length (params) : 0;
}

/* A button's index or a card's card_index: a number or a string of digits
 * (sim-validate.c has checked which). */
static gint64
index_of (JsonObject *obj, const char *member)
{
  JsonNode *node = json_object_get_member (obj, member);

  return JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING
             ? g_ascii_strtoll (json_node_get_string (node), NULL, 10)
             : (gint64)json_node_get_double (node);
}

/* The text a text-like parameter stands for. */
static const char *
param_text (JsonObject *param)
{
  const char *type = sim_json_string (param, "type");
  JsonObject *obj;

  if (g_strcmp0 (type, "text") == 0)
    return sim_json_string (param, "text");
  if ((g_strcmp0 (type, "currency") == 0 || g_strcmp0 (type, "date_time") == 0)
      && (obj = sim_json_object (param, type)) != NULL)
    return sim_json_string (obj, "fallback_value");
  return NULL;
}

/* Text parameters of a header or body: count, types, names and the text
 * policy; fills @values (placeholder -> text). */
static gboolean
check_text_params (SendCheck *c, const char *part, const char *def_text, JsonObject *component,
                   GHashTable *values)
{
  g_autoptr (GPtrArray) names = placeholders (def_text);
  JsonArray *params = component ? sim_json_array (component, "parameters") : NULL;
  guint got = n_params (component);

  if (got != names->len)
    return count_error (c, part, got, names->len);
  for (guint i = 0; i < got; i++)
    {
      JsonObject *param = json_array_get_object_element (params, i);
      const char *name = sim_json_string (param, "parameter_name");
      const char *text = param_text (param);
      g_autofree char *details = NULL;
      char *key;

      if (text == NULL)
        {
          details = g_strdup_printf ("%s: parameter %u is of type %s; this template takes text.",
                                     part, i, sim_json_string (param, "type"));
          return format_error (c, details);
        }
      if (c->named && (name == NULL || *name == '\0'))
        {
          /* Meta's answer on every version, not a format error */
          sim_error_set (c->err, 400, 100, "(#100) Invalid parameter", "%s",
                         "Parameter name is missing or empty");
          return FALSE;
        }
      if (!c->named && name != NULL)
        {
          details = g_strdup_printf ("%s: parameter %u has a parameter_name: the template uses "
                                     "positional parameters.",
                                     part, i);
          return format_error (c, details);
        }
      key = c->named ? g_strdup (name) : g_strdup_printf ("%u", i + 1);
      if (!g_ptr_array_find_with_equal_func (names, key, g_str_equal, NULL)
          || g_hash_table_contains (values, key))
        {
          details = g_strdup_printf ("%s: parameter_name %s does not match a parameter of the "
                                     "template, or is given twice.",
                                     part, key);
          g_free (key);
          return format_error (c, details);
        }
      if (strchr (text, '\n') || strchr (text, '\t') || strstr (text, "     "))
        {
          g_free (key);
          return format_error (c, "Param text cannot have new-line/tab characters or more than 4 "
                                  "consecutive spaces");
        }
      g_hash_table_insert (values, key, (gpointer)text);
    }
  return TRUE;
}

static gboolean
too_long (SendCheck *c, const char *part, const char *text, glong max)
{
  glong len = g_utf8_strlen (text, -1);

  if (len <= max)
    return FALSE;
  sim_error_set (c->err, 400, 132005, "(#132005) Translated text too long",
                 "%s: the text with its parameters is %ld characters long; at most %ld.", part, len,
                 max);
  return TRUE;
}

/* A media or location header (@part "header", "card 0 header"): one
 * parameter of that type. */
static gboolean
check_header_media (SendCheck *c, const char *part, const char *format, JsonObject *component)
{
  g_autofree char *type = g_ascii_strdown (format, -1);
  JsonArray *params = component ? sim_json_array (component, "parameters") : NULL;
  JsonObject *param;

  if (n_params (component) != 1)
    return count_error (c, part, n_params (component), 1);
  param = json_array_get_object_element (params, 0);
  if (g_strcmp0 (sim_json_string (param, "type"), type) != 0)
    {
      g_autofree char *details = g_strdup_printf ("%s: Format mismatch, expected %s, received %s",
                                                  part, format, sim_json_string (param, "type"));

      return format_error (c, details);
    }
  if (g_strcmp0 (type, "location") == 0)
    return TRUE;
  /* an id must be an upload of a type that kind takes (sim-upload.c) */
  return sim_upload_check_send (type, sim_json_object (param, type), c->err);
}

/* The sub_type a send uses for a button of the template's @type, and the
 * type of the parameter it takes (NULL: not checked). */
static const char *
button_sub_type (const char *type, const char **param_type)
{
  static const char *const map[][3] = {
    { "QUICK_REPLY", "quick_reply", "payload" },
    { "URL", "url", "text" },
    { "COPY_CODE", "copy_code", "coupon_code" },
    { "OTP", "url", "text" },
    { "FLOW", "flow", NULL },
    { "CATALOG", "catalog", NULL },
    { "MPM", "mpm", NULL },
    { "VOICE_CALL", "voice_call", NULL },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (map); i++)
    if (g_strcmp0 (type, map[i][0]) == 0)
      {
        *param_type = map[i][2];
        return map[i][1];
      }
  *param_type = NULL;
  return NULL;
}

/* The button components of @send against the template's (or a card's)
 * @buttons; @part names them in details ("buttons", "card 0 buttons"). */
static gboolean
check_buttons (SendCheck *c, const char *part, JsonArray *buttons, JsonArray *send)
{
  guint n_buttons = buttons ? json_array_get_length (buttons) : 0;
  g_autofree gboolean *given = g_new0 (gboolean, MAX (n_buttons, 1));

  for (guint i = 0; send && i < json_array_get_length (send); i++)
    {
      JsonObject *comp = json_array_get_object_element (send, i);
      const char *sub_type = sim_json_string (comp, "sub_type");
      gint64 index;
      JsonObject *button, *param;
      const char *type, *expected, *param_type;
      guint got = n_params (comp), want;
      g_autofree char *details = NULL;

      if (g_ascii_strcasecmp (sim_json_string (comp, "type"), "button") != 0)
        continue;
      index = index_of (comp, "index");
      if (index >= n_buttons)
        {
          details = g_strdup_printf ("%s: there is no button at index %" G_GINT64_FORMAT
                                     "; the template has %u.",
                                     part, index, n_buttons);
          return value_error (c, details);
        }
      button = json_array_get_object_element (buttons, (guint)index);
      type = sim_json_string (button, "type");
      expected = button_sub_type (type, &param_type);
      if (expected == NULL || g_strcmp0 (expected, sub_type) != 0)
        {
          details = g_strdup_printf ("%s: the button at index %" G_GINT64_FORMAT
                                     " is a %s button; sub_type %s does not fit it.",
                                     part, index, type ? type : "?", sub_type);
          return value_error (c, details);
        }
      given[index] = TRUE;
      if (g_strcmp0 (type, "QUICK_REPLY") == 0)
        want = MIN (got, 1); /* the payload is optional */
      else if (g_strcmp0 (type, "URL") == 0)
        want = strstr (sim_json_string (button, "url") ? sim_json_string (button, "url") : "", "{{")
                   ? 1
                   : 0;
      else
        want = 1;
      if (got != want)
        return count_error (c, part, got, want);
      param
          = got > 0 ? json_array_get_object_element (sim_json_array (comp, "parameters"), 0) : NULL;
      if (param != NULL && param_type != NULL
          && g_strcmp0 (sim_json_string (param, "type"), param_type) != 0)
        {
          details = g_strdup_printf (
              "%s: the %s button at index %" G_GINT64_FORMAT " takes a %s parameter, received %s.",
              part, type, index, param_type, sim_json_string (param, "type"));
          return format_error (c, details);
        }
    }
  /* a dynamic URL, a copy code or a one-time code must be given */
  for (guint i = 0; i < n_buttons; i++)
    {
      JsonObject *button = json_array_get_object_element (buttons, i);
      const char *type = sim_json_string (button, "type");
      const char *url = sim_json_string (button, "url");

      if (!given[i]
          && ((g_strcmp0 (type, "URL") == 0 && url && strstr (url, "{{"))
              || g_strcmp0 (type, "COPY_CODE") == 0 || g_strcmp0 (type, "OTP") == 0))
        return count_error (c, part, 0, 1);
    }
  return TRUE;
}

/* What a template's components (or a carousel card's) hold. */
typedef struct
{
  const char *header_format; /* NULL: no header */
  const char *header_text;
  const char *body_text;
  const char *footer_text;
  JsonArray *buttons;
  JsonArray *cards;  /* a CAROUSEL's */
  JsonObject *offer; /* a LIMITED_TIME_OFFER's "limited_time_offer" */
  gboolean only_body;
} TemplateParts;

static void
read_parts (JsonArray *defs, TemplateParts *p)
{
  memset (p, 0, sizeof *p);
  p->only_body = TRUE;
  for (guint i = 0; defs && i < json_array_get_length (defs); i++)
    {
      JsonNode *node = json_array_get_element (defs, i);
      JsonObject *d = JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
      const char *type = d ? sim_json_string (d, "type") : NULL;

      if (type == NULL)
        continue;
      if (g_ascii_strcasecmp (type, "HEADER") == 0)
        {
          p->header_format = sim_json_string (d, "format") ? sim_json_string (d, "format") : "TEXT";
          p->header_text = sim_json_string (d, "text");
        }
      else if (g_ascii_strcasecmp (type, "BODY") == 0)
        p->body_text = sim_json_string (d, "text");
      else if (g_ascii_strcasecmp (type, "FOOTER") == 0)
        p->footer_text = sim_json_string (d, "text");
      else if (g_ascii_strcasecmp (type, "BUTTONS") == 0)
        p->buttons = sim_json_array (d, "buttons");
      else if (g_ascii_strcasecmp (type, "CAROUSEL") == 0)
        p->cards = sim_json_array (d, "cards");
      else if (g_ascii_strcasecmp (type, "LIMITED_TIME_OFFER") == 0)
        p->offer = sim_json_object (d, "limited_time_offer");
      if (g_ascii_strcasecmp (type, "BODY") != 0)
        p->only_body = FALSE;
    }
}

/* Header, body and buttons of @send against @p; @prefix ("" or "card 0 ")
 * starts the parts' names in details. */
static gboolean
check_parts (SendCheck *c, const char *prefix, const TemplateParts *p, JsonArray *send,
             GHashTable *header_values, GHashTable *body_values)
{
  g_autofree char *header = g_strconcat (prefix, "header", NULL);
  g_autofree char *body = g_strconcat (prefix, "body", NULL);
  g_autofree char *buttons = g_strconcat (prefix, "buttons", NULL);

  if (p->header_format == NULL || g_ascii_strcasecmp (p->header_format, "TEXT") == 0)
    {
      if (!check_text_params (c, header, p->header_text ? p->header_text : "",
                              send_component (send, "header"), header_values))
        return FALSE;
    }
  else if (!check_header_media (c, header, p->header_format, send_component (send, "header")))
    return FALSE;
  return check_text_params (c, body, p->body_text ? p->body_text : "",
                            send_component (send, "body"), body_values)
         && check_buttons (c, buttons, p->buttons, send);
}

/* The send's carousel against the template's @cards: as many cards, each
 * card_index once, each card checked like a template of its own. */
static gboolean
check_carousel (SendCheck *c, JsonArray *cards, JsonArray *send)
{
  JsonObject *carousel = send_component (send, "carousel");
  JsonArray *given = carousel ? sim_json_array (carousel, "cards") : NULL;
  guint want = cards ? json_array_get_length (cards) : 0;
  guint got = given ? json_array_get_length (given) : 0;
  g_autofree gboolean *seen = g_new0 (gboolean, MAX (want, 1));

  if (got != want)
    {
      sim_error_set (c->err, 400, 132000, COUNT_MESSAGE,
                     "carousel: number of cards (%u) does not match the number of cards in the "
                     "template (%u)",
                     got, want);
      return FALSE;
    }
  for (guint i = 0; i < got; i++)
    {
      JsonObject *card = json_array_get_object_element (given, i);
      gint64 index = index_of (card, "card_index");
      g_autoptr (GHashTable) header_values
          = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      g_autoptr (GHashTable) body_values
          = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      g_autofree char *prefix = NULL, *details = NULL;
      JsonNode *def;
      TemplateParts parts;

      if (index >= want)
        {
          details = g_strdup_printf ("carousel: there is no card at card_index %" G_GINT64_FORMAT
                                     "; the template has %u.",
                                     index, want);
          return value_error (c, details);
        }
      if (seen[index])
        {
          details = g_strdup_printf ("carousel: card_index %" G_GINT64_FORMAT " is given twice.",
                                     index);
          return value_error (c, details);
        }
      seen[index] = TRUE;
      def = json_array_get_element (cards, (guint)index);
      read_parts (JSON_NODE_HOLDS_OBJECT (def)
                      ? sim_json_array (json_node_get_object (def), "components")
                      : NULL,
                  &parts);
      prefix = g_strdup_printf ("card %" G_GINT64_FORMAT " ", index);
      if (!check_parts (c, prefix, &parts, sim_json_array (card, "components"), header_values,
                        body_values))
        return FALSE;
    }
  return TRUE;
}

/* The send's limited_time_offer component against the template's @offer:
 * its end (expiration_time_ms, a UNIX time in milliseconds, in the future)
 * when the offer has an expiration, else nothing. */
static gboolean
check_offer (SendCheck *c, JsonObject *offer, JsonArray *send)
{
  JsonObject *comp = send_component (send, "limited_time_offer");
  gboolean expires = FALSE;
  JsonObject *param;
  gint64 ms;
  guint want;
  g_autofree char *details = NULL;

  if (offer != NULL)
    sim_json_bool (offer, "has_expiration", &expires);
  want = expires ? 1 : 0;
  if (n_params (comp) != want)
    return count_error (c, "limited_time_offer", n_params (comp), want);
  if (want == 0)
    return TRUE;
  param = json_array_get_object_element (sim_json_array (comp, "parameters"), 0);
  if (g_strcmp0 (sim_json_string (param, "type"), "limited_time_offer") != 0)
    {
      details = g_strdup_printf ("limited_time_offer: parameter 0 is of type %s; this component "
                                 "takes limited_time_offer.",
                                 sim_json_string (param, "type"));
      return format_error (c, details);
    }
  if (!sim_json_int (sim_json_object (param, "limited_time_offer"), "expiration_time_ms", &ms))
    {
      sim_error_set (c->err, 400, 131008, "(#131008) Required parameter is missing", "%s",
                     "The parameter limited_time_offer['expiration_time_ms'] is required: the "
                     "template's offer has an expiration.");
      return FALSE;
    }
  if (ms <= c->now_ms)
    {
      details = g_strdup_printf ("limited_time_offer: expiration_time_ms (%" G_GINT64_FORMAT
                                 ") is not in the future.",
                                 ms);
      return value_error (c, details);
    }
  return TRUE;
}

static int
version_major (const char *version)
{
  return version && version[0] == 'v' ? atoi (version + 1) : 25;
}

gboolean
sim_templates_check_send (JsonObject *tpl, const char *version, gint64 now_ms,
                          SimTemplateRender *out, SimError *err)
{
  const char *name = sim_json_string (tpl, "name");
  JsonObject *language = sim_json_object (tpl, "language");
  const char *code = language ? sim_json_string (language, "code") : NULL;
  JsonArray *send = sim_json_array (tpl, "components");
  const SimTemplate *t = find_template (name, code);
  g_autoptr (GHashTable) header_values
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr (GHashTable) body_values
      = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  TemplateParts parts;
  SendCheck c = { 0 };
  GString *text;

  if (t == NULL || g_strcmp0 (t->status, "DELETED") == 0)
    {
      sim_error_set (err, 404, 132001, "(#132001) Template name does not exist in the translation",
                     "template name (%s) does not exist in %s", name, code);
      return FALSE;
    }
  if (g_strcmp0 (t->status, "PAUSED") == 0)
    {
      sim_error_set (err, 400, 132015, "(#132015) Template is Paused", "%s",
                     "Template is paused due to low quality so it cannot be sent in a template "
                     "message.");
      return FALSE;
    }
  if (g_strcmp0 (t->status, "DISABLED") == 0)
    {
      sim_error_set (err, 400, 132016, "(#132016) Template is Disabled", "%s",
                     "Template has been paused too many times due to low quality and is now "
                     "permanently disabled.");
      return FALSE;
    }
  if (g_strcmp0 (t->status, "APPROVED") != 0)
    {
      sim_error_set (err, 404, 132001, "(#132001) Template name does not exist in the translation",
                     "template name (%s) in %s is %s, not APPROVED", name, code, t->status);
      return FALSE;
    }

  c.t = t;
  c.format_code = version_major (version) >= 23 ? 132018 : 132012;
  c.named = g_strcmp0 (t->parameter_format, "NAMED") == 0;
  c.now_ms = now_ms;
  c.err = err;
  read_parts (json_node_get_array (t->components), &parts);
  if (!check_parts (&c, "", &parts, send, header_values, body_values)
      || !check_offer (&c, parts.offer, send) || !check_carousel (&c, parts.cards, send))
    return FALSE;

  out->category = g_strdup (t->category);
  out->header = parts.header_text ? substitute (parts.header_text, header_values) : NULL;
  out->body = parts.body_text ? substitute (parts.body_text, body_values) : NULL;
  out->footer = g_strdup (parts.footer_text);
  if ((out->header && too_long (&c, "header", out->header, 60))
      || (out->body && too_long (&c, "body", out->body, parts.only_body ? 32768 : 1024)))
    {
      sim_template_render_clear (out);
      return FALSE;
    }
  text = g_string_new (NULL);
  if (out->header)
    g_string_append_printf (text, "%s\n", out->header);
  if (out->body)
    g_string_append_printf (text, "%s\n", out->body);
  if (out->footer)
    g_string_append_printf (text, "%s\n", out->footer);
  if (text->len > 0)
    g_string_truncate (text, text->len - 1);
  out->text = g_string_free (text, FALSE);
  return TRUE;
}
