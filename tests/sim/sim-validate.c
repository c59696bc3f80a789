/* sim-validate.c: validation of send and mark-as-read requests, following
 * docs/CLOUD-API.md, Sending: limits (limits, required members, error codes
 * 100, 131008 and 131009). Anything the simulator's state decides (templates, windows,
 * rate limits, known wamids) is checked by the caller, not here. */
#include "sim-validate.h"
#include "sim-json.h"

#include <stdarg.h>
#include <string.h>

#define MSG_100 "(#100) Invalid parameter"
#define MSG_131008 "(#131008) Required parameter is missing"
#define MSG_131009 "(#131009) Parameter value is not valid"

enum
{
  CHK_REQUIRED = 1 << 0, /* missing -> 131008 */
  CHK_NONEMPTY = 1 << 1, /* "" -> 100 */
};

static const char *const message_types[]
    = { "text",     "image",    "video",    "audio",       "document", "sticker",
        "location", "contacts", "reaction", "interactive", "template", NULL };

static const char *const interactive_types[] = { "button",
                                                 "list",
                                                 "cta_url",
                                                 "flow",
                                                 "product",
                                                 "product_list",
                                                 "catalog_message",
                                                 "location_request_message",
                                                 "order_details",
                                                 "order_status",
                                                 "call_permission_request",
                                                 "request_contact_info",
                                                 "address_message",
                                                 "voice_call",
                                                 NULL };

static void sim_error_setv (SimError *err, guint http_status, gint64 code, const char *message,
                            const char *details_format, va_list args) G_GNUC_PRINTF (5, 0);

static void
sim_error_setv (SimError *err, guint http_status, gint64 code, const char *message,
                const char *details_format, va_list args)
{
  sim_error_clear (err);
  err->http_status = http_status;
  err->code = code;
  err->subcode = 0;
  err->type = "OAuthException";
  err->message = g_strdup (message);
  err->details = details_format ? g_strdup_vprintf (details_format, args) : NULL;
}

void
sim_error_set (SimError *err, guint http_status, gint64 code, const char *message,
               const char *details_format, ...)
{
  va_list args;

  va_start (args, details_format);
  sim_error_setv (err, http_status, code, message, details_format, args);
  va_end (args);
}

void
sim_error_clear (SimError *err)
{
  g_clear_pointer (&err->message, g_free);
  g_clear_pointer (&err->details, g_free);
  err->http_status = 0;
  err->code = 0;
  err->subcode = 0;
  err->type = NULL;
  err->is_transient = FALSE;
}

void
sim_send_info_clear (SimSendInfo *info)
{
  g_clear_pointer (&info->digits, g_free);
  memset (info, 0, sizeof *info);
}

static gboolean fail (SimError *err, gint64 code, const char *format, ...) G_GNUC_PRINTF (3, 4);

/* Always returns FALSE so checks can "return fail (...)". */
static gboolean
fail (SimError *err, gint64 code, const char *format, ...)
{
  va_list args;
  const char *message = code == 131008 ? MSG_131008 : code == 131009 ? MSG_131009 : MSG_100;

  va_start (args, format);
  sim_error_setv (err, 400, code, message, format, args);
  va_end (args);
  return FALSE;
}

static gboolean
missing (SimError *err, const char *path)
{
  return fail (err, 131008, "The parameter %s is required.", path);
}

static gboolean
in_list (const char *s, const char *const *list)
{
  for (gsize i = 0; list[i] != NULL; i++)
    if (g_strcmp0 (s, list[i]) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
is_string_node (JsonNode *node)
{
  return node != NULL && JSON_NODE_HOLDS_VALUE (node)
         && json_node_get_value_type (node) == G_TYPE_STRING;
}

/* Checks obj[key] as a string of at most max characters (0 = no limit). */
static gboolean
check_str (JsonObject *obj, const char *base, const char *key, int flags, guint max, SimError *err,
           const char **out)
{
  JsonNode *node = obj ? json_object_get_member (obj, key) : NULL;
  g_autofree char *path = base && *base ? g_strdup_printf ("%s['%s']", base, key) : g_strdup (key);
  const char *s;

  if (out)
    *out = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return (flags & CHK_REQUIRED) ? missing (err, path) : TRUE;
  if (!is_string_node (node))
    return fail (err, 100, "Param %s must be a string.", path);
  s = json_node_get_string (node);
  if ((flags & CHK_NONEMPTY) && *s == '\0')
    return fail (err, 100, "Param %s must not be empty.", path);
  if (max > 0 && g_utf8_strlen (s, -1) > (glong)max)
    return fail (err, 100, "Param %s must be at most %u characters long.", path, max);
  if (out)
    *out = s;
  return TRUE;
}

/* obj[key] must be an object (required) or absent. */
static gboolean
check_obj (JsonObject *obj, const char *base, const char *key, gboolean required, SimError *err,
           JsonObject **out)
{
  JsonNode *node = json_object_get_member (obj, key);
  g_autofree char *path = base ? g_strdup_printf ("%s['%s']", base, key) : g_strdup (key);

  *out = NULL;
  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return required ? missing (err, path) : TRUE;
  if (!JSON_NODE_HOLDS_OBJECT (node))
    return fail (err, 100, "Param %s must be a JSON object.", path);
  *out = json_node_get_object (node);
  return TRUE;
}

static gboolean
check_media (JsonObject *media, const char *base, const char *kind, gboolean caption_ok,
             SimError *err)
{
  gboolean has_id = json_object_has_member (media, "id");
  gboolean has_link = json_object_has_member (media, "link");

  if (has_id && has_link)
    return fail (err, 100, "Param %s must contain either 'id' or 'link', not both.", base);
  if (!has_id && !has_link)
    return fail (err, 100, "Param %s must contain either 'id' or 'link'.", base);
  if (!check_str (media, base, has_id ? "id" : "link", CHK_REQUIRED | CHK_NONEMPTY, 0, err, NULL))
    return FALSE;
  if (json_object_has_member (media, "caption"))
    {
      if (!caption_ok)
        return fail (err, 100, "Param %s['caption'] is not allowed for %s messages.", base, kind);
      if (!check_str (media, base, "caption", 0, 1024, err, NULL))
        return FALSE;
    }
  if (g_strcmp0 (kind, "document") == 0 && !check_str (media, base, "filename", 0, 0, err, NULL))
    return FALSE;
  if (json_object_has_member (media, "voice"))
    {
      gboolean voice;

      if (g_strcmp0 (kind, "audio") != 0)
        return fail (err, 100, "Param %s['voice'] is only allowed for audio messages.", base);
      if (!sim_json_bool (media, "voice", &voice))
        return fail (err, 100, "Param %s['voice'] must be a boolean.", base);
    }
  return TRUE;
}

static gboolean
check_coordinate (JsonObject *obj, const char *base, const char *key, double limit, SimError *err)
{
  JsonNode *node = json_object_get_member (obj, key);
  g_autofree char *path = g_strdup_printf ("%s['%s']", base, key);
  double v;

  if (node == NULL || JSON_NODE_HOLDS_NULL (node))
    return missing (err, path);
  if (sim_json_is_number (node))
    v = json_node_get_double (node);
  else if (is_string_node (node))
    {
      const char *s = json_node_get_string (node);
      char *end = NULL;

      v = g_ascii_strtod (s, &end);
      if (end == s || *end != '\0')
        return fail (err, 100, "Param %s must be a number.", path);
    }
  else
    return fail (err, 100, "Param %s must be a number.", path);
  if (v < -limit || v > limit)
    return fail (err, 131009, "Param %s is out of range.", path);
  return TRUE;
}

static gboolean
check_location (JsonObject *loc, SimError *err)
{
  return check_coordinate (loc, "location", "latitude", 90, err)
         && check_coordinate (loc, "location", "longitude", 180, err)
         && check_str (loc, "location", "name", 0, 0, err, NULL)
         && check_str (loc, "location", "address", 0, 0, err, NULL);
}

/* A message id as the API gives them out: "wamid." and base64 characters. */
static gboolean
is_wamid (const char *s)
{
  gsize n = 0;

  if (!g_str_has_prefix (s, "wamid."))
    return FALSE;
  for (const char *p = s + 6; *p; p++, n++)
    if (!g_ascii_isalnum (*p) && strchr ("+/=_-.", *p) == NULL)
      return FALSE;
  return n > 0;
}

/* Code points that belong to the emoji before them: variation selectors,
 * skin tones, the keycap, tags. */
static gboolean
is_emoji_extender (gunichar c)
{
  return c == 0xFE0E || c == 0xFE0F || c == 0x20E3 || (c >= 0x1F3FB && c <= 0x1F3FF)
         || (c >= 0xE0020 && c <= 0xE007F);
}

/* One emoji: letters, digits alone, spaces and more than one emoji (not
 * joined by U+200D) are refused; a flag is a pair of regional indicators. */
static gboolean
is_single_emoji (const char *s)
{
  guint bases = 0, regional = 0, count = 0;
  gboolean joined = FALSE, keycap = FALSE;

  if (!g_utf8_validate (s, -1, NULL))
    return FALSE;
  for (const char *p = s; *p; p = g_utf8_next_char (p), count++)
    {
      gunichar c = g_utf8_get_char (p);

      if (c == 0x200D)
        {
          joined = TRUE;
          continue;
        }
      if (is_emoji_extender (c))
        {
          keycap = keycap || c == 0x20E3;
          continue;
        }
      if (c >= 0x1F1E6 && c <= 0x1F1FF)
        {
          if (regional++ % 2 == 1)
            continue; /* the second half of a flag */
        }
      else if (c < 0x80 && !(g_ascii_isdigit (c) || c == '#' || c == '*'))
        return FALSE;
      else if (c >= 0x80 && c < 0x2000 && c != 0xA9 && c != 0xAE)
        return FALSE;
      if (!joined)
        bases++;
      joined = FALSE;
    }
  if (count > 16 || bases != 1 || regional == 1 || joined)
    return FALSE;
  /* a lone digit, # or * is a keycap only with U+20E3 */
  return keycap || !(g_ascii_isdigit (s[0]) || s[0] == '#' || s[0] == '*');
}

static gboolean
check_reaction (JsonObject *reaction, SimError *err)
{
  const char *message_id, *emoji;

  if (!check_str (reaction, "reaction", "message_id", CHK_REQUIRED | CHK_NONEMPTY, 0, err,
                  &message_id)
      || !check_str (reaction, "reaction", "emoji", CHK_REQUIRED, 0, err, &emoji))
    return FALSE;
  if (!is_wamid (message_id))
    return fail (err, 100, "Param reaction['message_id'] is not a valid message id: \"%s\".",
                 message_id);
  if (*emoji != '\0' && !is_single_emoji (emoji))
    return fail (err, 100,
                 "Param reaction['emoji'] must be a single emoji, or empty to remove a reaction.");
  return TRUE;
}

static gboolean
check_contacts (JsonArray *contacts, SimError *err)
{
  guint n = json_array_get_length (contacts);

  if (n == 0)
    return fail (err, 131009, "Param contacts must contain at least one contact.");
  for (guint i = 0; i < n; i++)
    {
      JsonNode *node = json_array_get_element (contacts, i);
      g_autofree char *base = g_strdup_printf ("contacts[%u]", i);
      JsonObject *name;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        return fail (err, 100, "Param %s must be a JSON object.", base);
      if (!check_obj (json_node_get_object (node), base, "name", TRUE, err, &name))
        return FALSE;
      {
        g_autofree char *name_base = g_strdup_printf ("%s['name']", base);
        if (!check_str (name, name_base, "formatted_name", CHK_REQUIRED | CHK_NONEMPTY, 0, err,
                        NULL))
          return FALSE;
      }
    }
  return TRUE;
}

static gboolean
check_header (JsonObject *inter, const char *itype, SimError *err)
{
  JsonObject *header;
  const char *htype;
  gboolean strict = g_strcmp0 (itype, "button") == 0 || g_strcmp0 (itype, "list") == 0
                    || g_strcmp0 (itype, "cta_url") == 0;

  if (!check_obj (inter, "interactive", "header", FALSE, err, &header))
    return FALSE;
  if (header == NULL)
    return TRUE;
  if (!check_str (header, "interactive['header']", "type", CHK_REQUIRED | CHK_NONEMPTY, 0, err,
                  &htype))
    return FALSE;
  if (g_strcmp0 (htype, "text") == 0)
    return check_str (header, "interactive['header']", "text",
                      strict ? CHK_REQUIRED | CHK_NONEMPTY : 0, 60, err, NULL);
  if (!strict)
    return TRUE;
  if (g_strcmp0 (itype, "list") == 0)
    return fail (err, 131009,
                 "Param interactive['header']['type'] must be 'text' for list messages.");
  if (g_strcmp0 (htype, "image") == 0 || g_strcmp0 (htype, "video") == 0
      || g_strcmp0 (htype, "document") == 0)
    {
      JsonObject *media;
      g_autofree char *base = g_strdup_printf ("interactive['header']['%s']", htype);

      if (!check_obj (header, "interactive['header']", htype, TRUE, err, &media))
        return FALSE;
      return check_media (media, base, htype, TRUE, err);
    }
  return fail (
      err, 131009,
      "Param interactive['header']['type'] must be one of {text, image, video, document}.");
}

static gboolean
check_buttons (JsonObject *action, SimError *err)
{
  JsonArray *buttons = sim_json_array (action, "buttons");
  g_autoptr (GHashTable) titles = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GHashTable) ids = g_hash_table_new (g_str_hash, g_str_equal);
  guint n;

  if (!json_object_has_member (action, "buttons"))
    return missing (err, "interactive['action']['buttons']");
  if (buttons == NULL)
    return fail (err, 100, "Param interactive['action']['buttons'] must be an array.");
  n = json_array_get_length (buttons);
  if (n < 1 || n > 3)
    return fail (err, 131009,
                 "Param interactive['action']['buttons'] must have between 1 and 3 elements.");
  for (guint i = 0; i < n; i++)
    {
      JsonNode *node = json_array_get_element (buttons, i);
      g_autofree char *base = g_strdup_printf ("interactive['action']['buttons'][%u]", i);
      g_autofree char *reply_base = g_strdup_printf ("%s['reply']", base);
      JsonObject *button, *reply;
      const char *btype, *id, *title;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        return fail (err, 100, "Param %s must be a JSON object.", base);
      button = json_node_get_object (node);
      if (!check_str (button, base, "type", CHK_REQUIRED, 0, err, &btype))
        return FALSE;
      if (g_strcmp0 (btype, "reply") != 0)
        return fail (err, 131009, "Param %s['type'] must be 'reply'.", base);
      if (!check_obj (button, base, "reply", TRUE, err, &reply)
          || !check_str (reply, reply_base, "id", CHK_REQUIRED | CHK_NONEMPTY, 256, err, &id)
          || !check_str (reply, reply_base, "title", CHK_REQUIRED | CHK_NONEMPTY, 20, err, &title))
        return FALSE;
      if (g_ascii_isspace (id[0]) || g_ascii_isspace (id[strlen (id) - 1]))
        return fail (err, 131009, "Param %s['id'] must not have leading or trailing spaces.",
                     reply_base);
      if (!g_hash_table_add (titles, (gpointer)title))
        return fail (err, 131009, "Button titles must be unique: \"%s\" is used twice.", title);
      if (!g_hash_table_add (ids, (gpointer)id))
        return fail (err, 131009, "Button ids must be unique: \"%s\" is used twice.", id);
    }
  return TRUE;
}

static gboolean
check_list (JsonObject *action, SimError *err)
{
  JsonArray *sections;
  g_autoptr (GHashTable) ids = g_hash_table_new (g_str_hash, g_str_equal);
  guint n, total_rows = 0;

  if (!check_str (action, "interactive['action']", "button", CHK_REQUIRED | CHK_NONEMPTY, 20, err,
                  NULL))
    return FALSE;
  if (!json_object_has_member (action, "sections"))
    return missing (err, "interactive['action']['sections']");
  sections = sim_json_array (action, "sections");
  if (sections == NULL)
    return fail (err, 100, "Param interactive['action']['sections'] must be an array.");
  n = json_array_get_length (sections);
  if (n < 1 || n > 10)
    return fail (err, 131009,
                 "Param interactive['action']['sections'] must have between 1 and 10 elements.");
  for (guint i = 0; i < n; i++)
    {
      JsonNode *node = json_array_get_element (sections, i);
      g_autofree char *base = g_strdup_printf ("interactive['action']['sections'][%u]", i);
      JsonObject *section;
      JsonArray *rows;
      guint n_rows;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        return fail (err, 100, "Param %s must be a JSON object.", base);
      section = json_node_get_object (node);
      if (!check_str (section, base, "title", n > 1 ? CHK_REQUIRED | CHK_NONEMPTY : 0, 24, err,
                      NULL))
        return FALSE;
      rows = sim_json_array (section, "rows");
      if (rows == NULL)
        {
          g_autofree char *path = g_strdup_printf ("%s['rows']", base);
          return json_object_has_member (section, "rows")
                     ? fail (err, 100, "Param %s must be an array.", path)
                     : missing (err, path);
        }
      n_rows = json_array_get_length (rows);
      if (n_rows == 0)
        return fail (err, 131009, "Param %s['rows'] must not be empty.", base);
      for (guint j = 0; j < n_rows; j++)
        {
          JsonNode *rnode = json_array_get_element (rows, j);
          g_autofree char *rbase = g_strdup_printf ("%s['rows'][%u]", base, j);
          JsonObject *row;
          const char *id;

          if (!JSON_NODE_HOLDS_OBJECT (rnode))
            return fail (err, 100, "Param %s must be a JSON object.", rbase);
          row = json_node_get_object (rnode);
          if (!check_str (row, rbase, "id", CHK_REQUIRED | CHK_NONEMPTY, 200, err, &id)
              || !check_str (row, rbase, "title", CHK_REQUIRED | CHK_NONEMPTY, 24, err, NULL)
              || !check_str (row, rbase, "description", 0, 72, err, NULL))
            return FALSE;
          if (!g_hash_table_add (ids, (gpointer)id))
            return fail (err, 131009, "Row ids must be unique: \"%s\" is used twice.", id);
        }
      total_rows += n_rows;
    }
  if (total_rows > 10)
    return fail (err, 131009, "A list message can have at most 10 rows in total, got %u.",
                 total_rows);
  return TRUE;
}

static gboolean
check_cta_url (JsonObject *action, SimError *err)
{
  JsonObject *params;
  const char *name;

  if (!check_str (action, "interactive['action']", "name", CHK_REQUIRED, 0, err, &name))
    return FALSE;
  if (g_strcmp0 (name, "cta_url") != 0)
    return fail (err, 131009, "Param interactive['action']['name'] must be 'cta_url'.");
  if (!check_obj (action, "interactive['action']", "parameters", TRUE, err, &params))
    return FALSE;
  return check_str (params, "interactive['action']['parameters']", "display_text",
                    CHK_REQUIRED | CHK_NONEMPTY, 20, err, NULL)
         && check_str (params, "interactive['action']['parameters']", "url",
                       CHK_REQUIRED | CHK_NONEMPTY, 0, err, NULL);
}

static gboolean
check_request_contact_info (JsonObject *action, SimError *err)
{
  const char *name;

  if (!check_str (action, "interactive['action']", "name", CHK_REQUIRED, 0, err, &name))
    return FALSE;
  if (g_strcmp0 (name, "request_contact_info") != 0)
    return fail (err, 131009,
                 "Param interactive['action']['name'] must be 'request_contact_info'.");
  return TRUE;
}

static gboolean
check_interactive (JsonObject *inter, SimError *err)
{
  const char *itype;
  JsonObject *body, *footer, *action;
  gboolean body_required;

  if (!check_str (inter, "interactive", "type", CHK_REQUIRED | CHK_NONEMPTY, 0, err, &itype))
    return FALSE;
  if (!in_list (itype, interactive_types))
    return fail (err, 100, "Param interactive['type'] is not a supported interactive type: \"%s\".",
                 itype);
  body_required = g_strcmp0 (itype, "product") != 0;
  if (!check_obj (inter, "interactive", "body", body_required, err, &body))
    return FALSE;
  if (body != NULL
      && !check_str (body, "interactive['body']", "text", CHK_REQUIRED | CHK_NONEMPTY,
                     g_strcmp0 (itype, "list") == 0 ? 4096 : 1024, err, NULL))
    return FALSE;
  if (!check_obj (inter, "interactive", "footer", FALSE, err, &footer))
    return FALSE;
  if (footer != NULL
      && !check_str (footer, "interactive['footer']", "text", CHK_REQUIRED, 60, err, NULL))
    return FALSE;
  if (!check_header (inter, itype, err))
    return FALSE;
  if (!check_obj (inter, "interactive", "action", TRUE, err, &action))
    return FALSE;
  if (g_strcmp0 (itype, "button") == 0)
    return check_buttons (action, err);
  if (g_strcmp0 (itype, "list") == 0)
    return check_list (action, err);
  if (g_strcmp0 (itype, "cta_url") == 0)
    return check_cta_url (action, err);
  if (g_strcmp0 (itype, "request_contact_info") == 0)
    return check_request_contact_info (action, err);
  return TRUE;
}

static gboolean
check_template_param (JsonObject *param, const char *base, SimError *err)
{
  const char *ptype;
  JsonNode *value;

  if (!check_str (param, base, "type", CHK_REQUIRED | CHK_NONEMPTY, 0, err, &ptype))
    return FALSE;
  value = json_object_get_member (param, ptype);
  if (value == NULL || JSON_NODE_HOLDS_NULL (value))
    {
      g_autofree char *path = g_strdup_printf ("%s['%s']", base, ptype);
      return missing (err, path);
    }
  if (g_strcmp0 (ptype, "currency") == 0 || g_strcmp0 (ptype, "date_time") == 0)
    {
      g_autofree char *vbase = g_strdup_printf ("%s['%s']", base, ptype);

      if (!JSON_NODE_HOLDS_OBJECT (value))
        return fail (err, 100, "Param %s must be a JSON object.", vbase);
      if (!check_str (json_node_get_object (value), vbase, "fallback_value", CHK_REQUIRED, 0, err,
                      NULL))
        return FALSE;
    }
  if (g_strcmp0 (ptype, "image") == 0 || g_strcmp0 (ptype, "video") == 0
      || g_strcmp0 (ptype, "document") == 0)
    {
      g_autofree char *vbase = g_strdup_printf ("%s['%s']", base, ptype);

      if (!JSON_NODE_HOLDS_OBJECT (value))
        return fail (err, 100, "Param %s must be a JSON object.", vbase);
      return check_media (json_node_get_object (value), vbase, ptype, FALSE, err);
    }
  if (g_strcmp0 (ptype, "text") == 0 && is_string_node (value)
      && g_utf8_strlen (json_node_get_string (value), -1) > 32768)
    return fail (err, 100, "Param %s['text'] must be at most 32768 characters long.", base);
  /* a copy-code button's code: at most 15 characters */
  if (g_strcmp0 (ptype, "coupon_code") == 0)
    return check_str (param, base, "coupon_code", CHK_NONEMPTY, 15, err, NULL);
  if (g_strcmp0 (ptype, "limited_time_offer") == 0)
    {
      g_autofree char *vbase = g_strdup_printf ("%s['limited_time_offer']", base);
      JsonNode *ms;

      if (!JSON_NODE_HOLDS_OBJECT (value))
        return fail (err, 100, "Param %s must be a JSON object.", vbase);
      ms = json_object_get_member (json_node_get_object (value), "expiration_time_ms");
      if (ms != NULL
          && !(JSON_NODE_HOLDS_VALUE (ms) && json_node_get_value_type (ms) == G_TYPE_INT64))
        return fail (err, 100,
                     "Param %s['expiration_time_ms'] must be an integer (a UNIX time in "
                     "milliseconds).",
                     vbase);
    }
  return TRUE;
}

/* A button's or a card's index: a number or a string of digits; -1 otherwise. */
static gint64
index_value (JsonNode *index)
{
  if (sim_json_is_number (index))
    return (gint64)json_node_get_double (index);
  if (is_string_node (index))
    {
      const char *s = json_node_get_string (index);
      char *end = NULL;
      gint64 idx = g_ascii_strtoll (s, &end, 10);

      return end == s || *end != '\0' ? -1 : idx;
    }
  return -1;
}

static gboolean check_components (JsonArray *components, const char *base, gboolean in_card,
                                  SimError *err);

/* {"type":"carousel","cards":[{"card_index":0,"components":[...]}]} */
static gboolean
check_cards (JsonObject *comp, const char *base, SimError *err)
{
  JsonNode *cards = json_object_get_member (comp, "cards");
  g_autofree char *cbase = g_strdup_printf ("%s['cards']", base);

  if (cards == NULL || JSON_NODE_HOLDS_NULL (cards))
    return missing (err, cbase);
  if (!JSON_NODE_HOLDS_ARRAY (cards))
    return fail (err, 100, "Param %s must be an array.", cbase);
  for (guint i = 0; i < json_array_get_length (json_node_get_array (cards)); i++)
    {
      JsonNode *node = json_array_get_element (json_node_get_array (cards), i);
      g_autofree char *card_base = g_strdup_printf ("%s[%u]", cbase, i);
      g_autofree char *components_base = NULL;
      JsonObject *card;
      JsonNode *index, *components;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        return fail (err, 100, "Param %s must be a JSON object.", card_base);
      card = json_node_get_object (node);
      index = json_object_get_member (card, "card_index");
      if (index == NULL || JSON_NODE_HOLDS_NULL (index))
        {
          g_autofree char *path = g_strdup_printf ("%s['card_index']", card_base);
          return missing (err, path);
        }
      if (index_value (index) < 0)
        return fail (err, 100, "Param %s['card_index'] must be a non-negative integer.", card_base);
      components_base = g_strdup_printf ("%s['components']", card_base);
      components = json_object_get_member (card, "components");
      if (components == NULL || JSON_NODE_HOLDS_NULL (components))
        return missing (err, components_base);
      if (!JSON_NODE_HOLDS_ARRAY (components))
        return fail (err, 100, "Param %s must be an array.", components_base);
      if (!check_components (json_node_get_array (components), components_base, TRUE, err))
        return FALSE;
    }
  return TRUE;
}

/* The components of a template send or of a carousel card: each an object
 * with a type; buttons with a sub_type and an index 0-9; a carousel's cards
 * (not inside a card); parameters each with a type and the member it names. */
static gboolean
check_components (JsonArray *components, const char *components_base, gboolean in_card,
                  SimError *err)
{
  for (guint i = 0; i < json_array_get_length (components); i++)
    {
      JsonNode *node = json_array_get_element (components, i);
      g_autofree char *base = g_strdup_printf ("%s[%u]", components_base, i);
      JsonObject *comp;
      const char *ctype;
      JsonNode *params;

      if (!JSON_NODE_HOLDS_OBJECT (node))
        return fail (err, 100, "Param %s must be a JSON object.", base);
      comp = json_node_get_object (node);
      if (!check_str (comp, base, "type", CHK_REQUIRED | CHK_NONEMPTY, 0, err, &ctype))
        return FALSE;
      if (g_ascii_strcasecmp (ctype, "button") == 0)
        {
          JsonNode *index = json_object_get_member (comp, "index");
          gint64 idx;

          if (!check_str (comp, base, "sub_type", CHK_REQUIRED | CHK_NONEMPTY, 0, err, NULL))
            return FALSE;
          if (index == NULL)
            {
              g_autofree char *path = g_strdup_printf ("%s['index']", base);
              return missing (err, path);
            }
          idx = index_value (index);
          if (idx < 0 || idx > 9)
            return fail (err, 100, "Param %s['index'] must be a number between 0 and 9.", base);
        }
      if (g_ascii_strcasecmp (ctype, "carousel") == 0)
        {
          if (in_card)
            return fail (err, 100, "Param %s: a carousel card cannot hold a carousel.", base);
          if (!check_cards (comp, base, err))
            return FALSE;
        }
      params = json_object_get_member (comp, "parameters");
      if (params == NULL || JSON_NODE_HOLDS_NULL (params))
        continue;
      if (!JSON_NODE_HOLDS_ARRAY (params))
        return fail (err, 100, "Param %s['parameters'] must be an array.", base);
      for (guint j = 0; j < json_array_get_length (json_node_get_array (params)); j++)
        {
          JsonNode *pnode = json_array_get_element (json_node_get_array (params), j);
          g_autofree char *pbase = g_strdup_printf ("%s['parameters'][%u]", base, j);

          if (!JSON_NODE_HOLDS_OBJECT (pnode))
            return fail (err, 100, "Param %s must be a JSON object.", pbase);
          if (!check_template_param (json_node_get_object (pnode), pbase, err))
            return FALSE;
        }
    }
  return TRUE;
}

static gboolean
check_template (JsonObject *tpl, SimSendInfo *info, SimError *err)
{
  JsonObject *language;
  JsonNode *components;
  const char *policy;

  if (!check_str (tpl, "template", "name", CHK_REQUIRED | CHK_NONEMPTY, 512, err,
                  &info->template_name))
    return FALSE;
  for (const char *p = info->template_name; *p; p++)
    if (!(g_ascii_islower (*p) || g_ascii_isdigit (*p) || *p == '_'))
      return fail (
          err, 100,
          "Param template['name'] may contain only lowercase letters, digits and underscores.");
  if (!check_obj (tpl, "template", "language", TRUE, err, &language)
      || !check_str (language, "template['language']", "code", CHK_REQUIRED | CHK_NONEMPTY, 0, err,
                     &info->template_lang)
      || !check_str (language, "template['language']", "policy", 0, 0, err, &policy))
    return FALSE;
  if (policy != NULL && g_strcmp0 (policy, "deterministic") != 0)
    return fail (err, 100, "Param template['language']['policy'] must be 'deterministic'.");
  components = json_object_get_member (tpl, "components");
  if (components == NULL || JSON_NODE_HOLDS_NULL (components))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (components))
    return fail (err, 100, "Param template['components'] must be an array.");
  return check_components (json_node_get_array (components), "template['components']", FALSE, err);
}

static gboolean
check_read (JsonObject *req, SimSendInfo *info, SimError *err)
{
  const char *status = sim_json_string (req, "status");
  JsonNode *typing = json_object_get_member (req, "typing_indicator");

  info->is_read = TRUE;
  if (g_strcmp0 (status, "read") != 0)
    return fail (err, 100, "Param status must be 'read'.");
  if (!json_object_has_member (req, "message_id"))
    {
      sim_error_set (err, 400, 100, "(#100) The parameter message_id is required.", NULL);
      return FALSE;
    }
  if (!check_str (req, "", "message_id", CHK_REQUIRED | CHK_NONEMPTY, 0, err, &info->message_id))
    return FALSE;
  if (typing != NULL)
    {
      if (!JSON_NODE_HOLDS_OBJECT (typing)
          || g_strcmp0 (sim_json_string (json_node_get_object (typing), "type"), "text") != 0)
        return fail (err, 100, "Param typing_indicator['type'] must be 'text'.");
      info->typing = TRUE;
    }
  return TRUE;
}

gboolean
sim_is_bsuid (const char *s)
{
  gsize n = 0;

  if (s == NULL || !g_ascii_isupper (s[0]) || !g_ascii_isupper (s[1]) || s[2] != '.')
    return FALSE;
  for (const char *p = s + 3; *p; p++, n++)
    if (!g_ascii_isalnum (*p) && *p != '.')
      return FALSE;
  return n >= 1 && n <= 128 && s[strlen (s) - 1] != '.';
}

char *
sim_normalize_phone (const char *to)
{
  GString *digits = g_string_new (NULL);

  for (const char *p = to; *p; p++)
    {
      if (*p == '+' || *p == ' ' || *p == '-' || *p == '(' || *p == ')')
        continue;
      if (!g_ascii_isdigit (*p))
        {
          g_string_free (digits, TRUE);
          return NULL;
        }
      g_string_append_c (digits, *p);
    }
  if (digits->len < 8 || digits->len > 15)
    {
      g_string_free (digits, TRUE);
      return NULL;
    }
  return g_string_free (digits, FALSE);
}

static gboolean
check_recipient (JsonObject *req, SimSendInfo *info, SimError *err)
{
  JsonNode *to = json_object_get_member (req, "to");
  const char *rtype = "individual";

  if (json_object_has_member (req, "recipient_type")
      && !check_str (req, "", "recipient_type", CHK_REQUIRED, 0, err, &rtype))
    return FALSE;
  if (g_strcmp0 (rtype, "individual") != 0 && g_strcmp0 (rtype, "group") != 0)
    return fail (err, 100, "Param recipient_type must be one of {individual, group}.");
  info->is_group = g_strcmp0 (rtype, "group") == 0;

  if (to != NULL && !JSON_NODE_HOLDS_NULL (to))
    {
      if (!is_string_node (to))
        return fail (err, 100, "Param to must be a string.");
      info->input = json_node_get_string (to);
      if (info->is_group)
        {
          if (*info->input == '\0')
            return fail (err, 100, "Param to must not be empty.");
          return TRUE;
        }
      info->digits = sim_normalize_phone (info->input);
      if (info->digits == NULL)
        return fail (err, 100, "Param to must be a valid phone number (8 to 15 digits): \"%s\".",
                     info->input);
      return TRUE;
    }
  if (json_object_has_member (req, "recipient") && !info->is_group)
    {
      if (!check_str (req, "", "recipient", CHK_REQUIRED | CHK_NONEMPTY, 0, err, &info->input))
        return FALSE;
      if (!sim_is_bsuid (info->input))
        return fail (err, 100,
                     "Param recipient must be a business-scoped user ID (CC.alphanumeric): \"%s\".",
                     info->input);
      info->user_id = info->input;
      return TRUE;
    }
  return fail (err, 131008, "The parameter to is required.");
}

/* "type" is optional in Meta's API (default "text"); two of Meta's own
 * examples rely on that, one even with an "interactive" object. */
static const char *
infer_type (JsonObject *req)
{
  const char *found = NULL;

  for (gsize i = 0; message_types[i] != NULL; i++)
    if (json_object_has_member (req, message_types[i]))
      {
        if (found != NULL || g_strcmp0 (message_types[i], "text") == 0)
          return "text";
        found = message_types[i];
      }
  return found ? found : "text";
}

gboolean
sim_validate_send (JsonNode *root, SimSendInfo *info, SimError *err)
{
  JsonObject *req, *body, *context;
  JsonNode *mp, *payload;
  const char *type;

  memset (info, 0, sizeof *info);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    return fail (err, 100, "The request body must be a JSON object.");
  req = json_node_get_object (root);

  mp = json_object_get_member (req, "messaging_product");
  if (mp == NULL || JSON_NODE_HOLDS_NULL (mp))
    {
      sim_error_set (err, 400, 100, "(#100) The parameter messaging_product is required.", NULL);
      return FALSE;
    }
  if (!is_string_node (mp) || g_strcmp0 (json_node_get_string (mp), "whatsapp") != 0)
    return fail (err, 100, "Param messaging_product must be 'whatsapp'.");

  if (json_object_has_member (req, "status"))
    return check_read (req, info, err);

  if (!check_recipient (req, info, err))
    return FALSE;

  if (json_object_has_member (req, "type"))
    {
      if (!check_str (req, "", "type", CHK_REQUIRED | CHK_NONEMPTY, 0, err, &type))
        return FALSE;
      if (!in_list (type, message_types))
        return fail (err, 100,
                     "Param type must be one of {text, image, video, audio, document, "
                     "sticker, location, contacts, reaction, interactive, template}, got \"%s\".",
                     type);
    }
  else
    type = infer_type (req);
  info->type = type;

  if (!check_obj (req, NULL, "context", FALSE, err, &context))
    return FALSE;
  if (context != NULL)
    {
      const char *quoted;

      if (!check_str (context, "context", "message_id", CHK_REQUIRED | CHK_NONEMPTY, 0, err,
                      &quoted))
        return FALSE;
      if (!is_wamid (quoted))
        return fail (err, 100, "Param context['message_id'] is not a valid message id: \"%s\".",
                     quoted);
    }
  /* groups take no reactions and no interactive messages */
  if (info->is_group && (g_strcmp0 (type, "reaction") == 0 || g_strcmp0 (type, "interactive") == 0))
    return fail (err, 131009, "Messages of type %s cannot be sent to a group.", type);
  if (!check_str (req, "", "biz_opaque_callback_data", 0, 512, err, &info->biz_opaque))
    return FALSE;

  payload = json_object_get_member (req, type);
  if (payload == NULL || JSON_NODE_HOLDS_NULL (payload))
    return missing (err, type);

  if (g_strcmp0 (type, "contacts") == 0)
    {
      if (!JSON_NODE_HOLDS_ARRAY (payload))
        return fail (err, 100, "Param contacts must be an array.");
      return check_contacts (json_node_get_array (payload), err);
    }
  if (!JSON_NODE_HOLDS_OBJECT (payload))
    return fail (err, 100, "Param %s must be a JSON object.", type);
  body = json_node_get_object (payload);

  if (g_strcmp0 (type, "text") == 0)
    {
      JsonNode *preview = json_object_get_member (body, "preview_url");

      if (preview != NULL
          && !(JSON_NODE_HOLDS_VALUE (preview)
               && json_node_get_value_type (preview) == G_TYPE_BOOLEAN))
        return fail (err, 100, "Param text['preview_url'] must be a boolean.");
      return check_str (body, "text", "body", CHK_REQUIRED | CHK_NONEMPTY, 4096, err, NULL);
    }
  if (g_strcmp0 (type, "image") == 0 || g_strcmp0 (type, "video") == 0
      || g_strcmp0 (type, "document") == 0)
    return check_media (body, type, type, TRUE, err);
  if (g_strcmp0 (type, "audio") == 0 || g_strcmp0 (type, "sticker") == 0)
    return check_media (body, type, type, FALSE, err);
  if (g_strcmp0 (type, "location") == 0)
    return check_location (body, err);
  if (g_strcmp0 (type, "reaction") == 0)
    return check_reaction (body, err);
  if (g_strcmp0 (type, "interactive") == 0)
    return check_interactive (body, err);
  if (g_strcmp0 (type, "template") == 0)
    return check_template (body, info, err);
  return TRUE;
}
