/* wa-compose.c: the argument parsers and limit checks of wa-compose.h, and
 * the JSON (json-glib builders) of what they compose. */
#include "wa-compose.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

#include "wa-i18n.h"
#include "wa-json.h"
#include "wa-text.h"

G_DEFINE_QUARK(wa - compose - error - quark, wa_compose_error)

void
wa_composed_free(WaComposed *composed)
{
  if (composed == NULL)
    return;
  g_free(composed->type);
  g_free(composed->payload);
  g_free(composed->line);
  g_free(composed);
}

static WaComposed *
composed_new(const char *type, JsonBuilder *b, char *line)
{
  WaComposed *c = g_new0(WaComposed, 1);
  g_autoptr(JsonNode) root = json_builder_get_root(b);

  c->type = g_strdup(type);
  c->payload = wa_json_to_string(root);
  c->line = line;
  return c;
}

/* {"type": T, T: { ... : the caller fills the member and closes both. */
static JsonBuilder *
payload_begin(const char *type)
{
  JsonBuilder *b = json_builder_new();

  json_builder_begin_object(b);
  json_builder_set_member_name(b, "type");
  json_builder_add_string_value(b, type);
  json_builder_set_member_name(b, type);
  json_builder_begin_object(b);
  return b;
}

static void
add_string(JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name(b, name);
  json_builder_add_string_value(b, value);
}

static gboolean limit_error(GError **error, const char *format, ...) G_GNUC_PRINTF(2, 3);

static gboolean
limit_error(GError **error, const char *format, ...)
{
  va_list args;

  va_start(args, format);
  g_propagate_error(error, g_error_new_valist(WA_COMPOSE_ERROR, WA_COMPOSE_ERROR_LIMIT, format, args));
  va_end(args);
  return FALSE;
}

/* @what (a translated noun) is 1 to @max characters. */
static gboolean
check_length(const char *text, guint max, const char *what, GError **error)
{
  glong n = g_utf8_strlen(text, -1);

  if (n == 0)
    return limit_error(error, _("%s is empty."), what);
  if (n > (glong) max)
    return limit_error(error, _("%s has %ld characters; WhatsApp allows at most %u."), what, n, max);
  return TRUE;
}

/* Splits @args at @sep into trimmed fields (g_strfreev). */
static GStrv
fields(const char *args, const char *sep)
{
  GStrv parts = g_strsplit(args != NULL ? args : "", sep, -1);

  for (guint i = 0; parts[i] != NULL; i++)
    g_strstrip(parts[i]);
  return parts;
}

char *
wa_compose_quote(const char *text, guint max)
{
  g_autofree char *flat = g_strdup(text != NULL ? text : "");
  GString *out = g_string_new(NULL);
  guint n = 0;

  for (char *p = flat; *p != '\0'; p++)
    if (*p == '\n' || *p == '\r' || *p == '\t')
      *p = ' ';
  g_strstrip(flat);
  for (const char *p = flat; *p != '\0' && n < max; p = g_utf8_next_char(p), n++)
    g_string_append_len(out, p, g_utf8_next_char(p) - p);
  if (g_utf8_strlen(flat, -1) > (glong) max)
    g_string_append(out, "…");
  return g_string_free(out, FALSE);
}

/* ---- reply --------------------------------------------------------------------- */

gboolean
wa_compose_wamid_is_valid(const char *wamid)
{
  gsize n = 0;

  if (wamid == NULL || !g_str_has_prefix(wamid, "wamid."))
    return FALSE;
  for (const char *p = wamid + 6; *p != '\0'; p++, n++)
    if (!g_ascii_isalnum(*p) && strchr("+/=_-.", *p) == NULL)
      return FALSE;
  return n >= 1 && n <= 250;
}

gboolean
wa_compose_reply_parse(const char *args, guint *nth, char **text, GError **error)
{
  const char *p = args != NULL ? args : "";
  const char *end;
  guint64 n = 1;

  while (g_ascii_isspace(*p))
    p++;
  for (end = p; g_ascii_isdigit(*end); end++)
    ;
  if (end > p && (*end == '\0' || g_ascii_isspace(*end))) {
    g_autofree char *digits = g_strndup(p, end - p);

    if (!g_ascii_string_to_unsigned(digits, 10, 1, WA_COMPOSE_REPLY_NTH_MAX, &n, NULL)) {
      g_set_error(error, WA_COMPOSE_ERROR, WA_COMPOSE_ERROR_LIMIT,
                  _("N counts the customer's messages back from the last one: 1 to %u."), WA_COMPOSE_REPLY_NTH_MAX);
      return FALSE;
    }
    p = end;
  }
  *text = g_strstrip(g_strdup(p));
  if (**text == '\0') {
    g_clear_pointer(text, g_free);
    g_set_error_literal(error, WA_COMPOSE_ERROR, WA_COMPOSE_ERROR_SYNTAX, _("The reply's text is missing."));
    return FALSE;
  }
  *nth = (guint) n;
  return TRUE;
}

WaComposed *
wa_compose_reply(const char *text, const char *wamid, const char *quote, GError **error)
{
  g_autoptr(JsonBuilder) b = NULL;
  g_autofree char *short_quote = NULL;
  gsize units = wa_text_utf16_length(text);

  if (*text == '\0' || units > WA_TEXT_MAX_UNITS) {
    limit_error(error, _("A reply is one message: at most %u characters (this one has %" G_GSIZE_FORMAT ")."),
                WA_TEXT_MAX_UNITS, units);
    return NULL;
  }
  if (!wa_compose_wamid_is_valid(wamid)) {
    limit_error(error, _("The message to reply to has no valid WhatsApp message id."));
    return NULL;
  }
  b = payload_begin("text");
  add_string(b, "body", text);
  json_builder_end_object(b);
  json_builder_set_member_name(b, "context");
  json_builder_begin_object(b);
  add_string(b, "message_id", wamid);
  json_builder_end_object(b);
  json_builder_end_object(b);
  short_quote = wa_compose_quote(quote, 40);
  return composed_new("text", b, g_strdup_printf(_("[Reply to: %s] %s"), short_quote, text));
}

/* ---- reaction -------------------------------------------------------------------- */

static gboolean
is_regional_indicator(gunichar c)
{
  return c >= 0x1F1E6 && c <= 0x1F1FF;
}

/* A character that starts an emoji (or an element after a joiner). */
static gboolean
is_pictographic(gunichar c)
{
  if (c < 0x80)
    return FALSE;
  if ((c >= 0x1F000 && c <= 0x1FAFF) || (c >= 0x2300 && c <= 0x23FF) || (c >= 0x2600 && c <= 0x27BF) ||
      (c >= 0x2B00 && c <= 0x2BFF) || (c >= 0x2190 && c <= 0x21FF) || (c >= 0x2900 && c <= 0x297F) ||
      (c >= 0x3030 && c <= 0x303D) || c == 0x3297 || c == 0x3299)
    return TRUE;
  return g_unichar_type(c) == G_UNICODE_OTHER_SYMBOL;
}

/* What may follow an emoji inside its grapheme. */
static gboolean
is_emoji_modifier(gunichar c)
{
  return c == 0xFE0F || c == 0xFE0E || c == 0x20E3 || (c >= 0x1F3FB && c <= 0x1F3FF) || (c >= 0xE0020 && c <= 0xE007F);
}

gboolean
wa_compose_emoji_is_valid(const char *emoji)
{
  g_autofree gunichar *cps = NULL;
  glong n = 0;
  glong i = 0;

  if (emoji == NULL || !g_utf8_validate(emoji, -1, NULL))
    return FALSE;
  cps = g_utf8_to_ucs4_fast(emoji, -1, &n);
  if (n == 0 || n > WA_COMPOSE_EMOJI_MAX_CODEPOINTS)
    return FALSE;
  /* a flag: exactly two regional indicators */
  if (is_regional_indicator(cps[0]))
    return n == 2 && is_regional_indicator(cps[1]);
  /* a keycap: 0-9, # or * with (FE0F) 20E3 */
  if (cps[0] < 0x80) {
    if (!g_ascii_isdigit((char) cps[0]) && cps[0] != '#' && cps[0] != '*')
      return FALSE;
    return (n == 2 && cps[1] == 0x20E3) || (n == 3 && cps[1] == 0xFE0F && cps[2] == 0x20E3);
  }
  for (;;) {
    if (i >= n || !is_pictographic(cps[i]))
      return FALSE;
    for (i++; i < n && is_emoji_modifier(cps[i]); i++)
      ;
    if (i == n)
      return TRUE;
    if (cps[i] != 0x200D)
      return FALSE;
    i++; /* a zero width joiner: another emoji follows */
  }
}

WaComposed *
wa_compose_reaction(const char *emoji, const char *wamid, const char *quote, GError **error)
{
  g_autoptr(JsonBuilder) b = NULL;
  g_autofree char *short_quote = wa_compose_quote(quote, 40);
  gboolean removing = emoji == NULL || *emoji == '\0';

  if (!removing && !wa_compose_emoji_is_valid(emoji)) {
    limit_error(error, _("A reaction is one emoji (such as 👍); \"%s\" is not."), emoji);
    return NULL;
  }
  if (!wa_compose_wamid_is_valid(wamid)) {
    limit_error(error, _("The message to react to has no valid WhatsApp message id."));
    return NULL;
  }
  b = payload_begin("reaction");
  add_string(b, "message_id", wamid);
  add_string(b, "emoji", removing ? "" : emoji);
  json_builder_end_object(b);
  json_builder_end_object(b);
  return composed_new("reaction", b,
                      removing ? g_strdup_printf(_("removed the reaction from: %s"), short_quote)
                               : g_strdup_printf(_("reacted %s to: %s"), emoji, short_quote));
}

/* ---- location ---------------------------------------------------------------------- */

static gboolean
parse_coordinate(const char *text, double limit, const char *what, double *out, GError **error)
{
  char *end = NULL;
  double v;

  if (text == NULL || *text == '\0') {
    g_set_error(error, WA_COMPOSE_ERROR, WA_COMPOSE_ERROR_SYNTAX, _("The %s is missing."), what);
    return FALSE;
  }
  v = g_ascii_strtod(text, &end);
  if (end == text || *end != '\0' || !isfinite(v)) {
    g_set_error(error, WA_COMPOSE_ERROR, WA_COMPOSE_ERROR_SYNTAX, _("The %s \"%s\" is not a number."), what, text);
    return FALSE;
  }
  if (v < -limit || v > limit)
    return limit_error(error, _("The %s must be between -%g and %g."), what, limit, limit);
  *out = v;
  return TRUE;
}

WaComposed *
wa_compose_location(const char *args, GError **error)
{
  g_autofree char *copy = g_strstrip(g_strdup(args != NULL ? args : ""));
  g_autofree char *lat_text = NULL;
  g_autofree char *lon_text = NULL;
  g_autoptr(JsonBuilder) b = NULL;
  char lat_buf[G_ASCII_DTOSTR_BUF_SIZE];
  char lon_buf[G_ASCII_DTOSTR_BUF_SIZE];
  const char *p = copy;
  const char *name;
  double lat, lon;
  gsize len;

  /* LAT[,] LON [NAME] */
  len = strcspn(p, " \t,");
  lat_text = g_strndup(p, len);
  p += len;
  while (*p == ',' || g_ascii_isspace(*p))
    p++;
  len = strcspn(p, " \t");
  lon_text = g_strndup(p, len);
  p += len;
  while (g_ascii_isspace(*p))
    p++;
  name = p;
  if (!parse_coordinate(lat_text, 90, _("latitude"), &lat, error) ||
      !parse_coordinate(lon_text, 180, _("longitude"), &lon, error))
    return NULL;
  b = payload_begin("location");
  json_builder_set_member_name(b, "latitude");
  json_builder_add_double_value(b, lat);
  json_builder_set_member_name(b, "longitude");
  json_builder_add_double_value(b, lon);
  if (*name != '\0')
    add_string(b, "name", name);
  json_builder_end_object(b);
  json_builder_end_object(b);
  g_ascii_formatd(lat_buf, sizeof lat_buf, "%.6f", lat);
  g_ascii_formatd(lon_buf, sizeof lon_buf, "%.6f", lon);
  return composed_new("location", b,
                      *name != '\0' ? g_strdup_printf(_("[Location] %s (%s, %s)"), name, lat_buf, lon_buf)
                                    : g_strdup_printf(_("[Location] %s, %s"), lat_buf, lon_buf));
}

/* ---- interactive --------------------------------------------------------------------- */

/* {"type": "interactive", "interactive": {"type": @itype, "body": {"text": @body}, "action": {
 * : the caller fills the action and closes three objects. */
static JsonBuilder *
interactive_begin(const char *itype, const char *body)
{
  JsonBuilder *b = payload_begin("interactive");

  add_string(b, "type", itype);
  json_builder_set_member_name(b, "body");
  json_builder_begin_object(b);
  add_string(b, "text", body);
  json_builder_end_object(b);
  json_builder_set_member_name(b, "action");
  json_builder_begin_object(b);
  return b;
}

static WaComposed *
interactive_end(JsonBuilder *b, char *line)
{
  json_builder_end_object(b); /* action */
  json_builder_end_object(b); /* interactive */
  json_builder_end_object(b);
  return composed_new("interactive", b, line);
}

WaComposed *
wa_compose_buttons(const char *args, GError **error)
{
  g_auto(GStrv) parts = fields(args, "|");
  guint n = g_strv_length(parts);
  g_autoptr(JsonBuilder) b = NULL;
  GString *line;

  if (n < 2 || *parts[0] == '\0') {
    g_set_error_literal(error, WA_COMPOSE_ERROR, WA_COMPOSE_ERROR_SYNTAX,
                        _("Write the text, then 1 to 3 buttons, separated by |: BODY | B1 | B2."));
    return NULL;
  }
  if (n - 1 > WA_COMPOSE_BUTTONS_MAX) {
    limit_error(error, _("WhatsApp allows at most %u buttons; this has %u."), WA_COMPOSE_BUTTONS_MAX, n - 1);
    return NULL;
  }
  if (!check_length(parts[0], WA_COMPOSE_BODY_MAX, _("The text"), error))
    return NULL;
  for (guint i = 1; i < n; i++) {
    g_autofree char *what = g_strdup_printf(_("Button %u"), i);

    if (!check_length(parts[i], WA_COMPOSE_BUTTON_TITLE_MAX, what, error))
      return NULL;
    for (guint j = 1; j < i; j++)
      if (g_str_equal(parts[i], parts[j])) {
        limit_error(error, _("Button titles must differ: \"%s\" is there twice."), parts[i]);
        return NULL;
      }
  }
  b = interactive_begin("button", parts[0]);
  line = g_string_new(NULL);
  g_string_printf(line, _("[Buttons] %s"), parts[0]);
  json_builder_set_member_name(b, "buttons");
  json_builder_begin_array(b);
  for (guint i = 1; i < n; i++) {
    g_autofree char *id = g_strdup_printf("b%u", i);

    json_builder_begin_object(b);
    add_string(b, "type", "reply");
    json_builder_set_member_name(b, "reply");
    json_builder_begin_object(b);
    add_string(b, "id", id);
    add_string(b, "title", parts[i]);
    json_builder_end_object(b);
    json_builder_end_object(b);
    g_string_append_printf(line, " | %s", parts[i]);
  }
  json_builder_end_array(b);
  return interactive_end(b, g_string_free(line, FALSE));
}

WaComposed *
wa_compose_list(const char *args, GError **error)
{
  g_auto(GStrv) parts = fields(args, "|");
  g_auto(GStrv) rows = NULL;
  g_autoptr(GPtrArray) titles = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GPtrArray) descriptions = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(JsonBuilder) b = NULL;
  GString *line;

  if (g_strv_length(parts) != 3) {
    g_set_error_literal(error, WA_COMPOSE_ERROR, WA_COMPOSE_ERROR_SYNTAX,
                        _("Write the menu button, the text and the rows, separated by |: "
                          "BUTTON | BODY | Row 1; Row 2 - its description."));
    return NULL;
  }
  if (!check_length(parts[0], WA_COMPOSE_LIST_BUTTON_MAX, _("The menu button"), error) ||
      !check_length(parts[1], WA_COMPOSE_LIST_BODY_MAX, _("The text"), error))
    return NULL;
  rows = fields(parts[2], ";");
  for (guint i = 0; rows[i] != NULL; i++) {
    const char *dash = strstr(rows[i], " - ");
    g_autofree char *title = g_strstrip(dash != NULL ? g_strndup(rows[i], dash - rows[i]) : g_strdup(rows[i]));
    g_autofree char *description = dash != NULL ? g_strstrip(g_strdup(dash + 3)) : NULL;
    g_autofree char *what = g_strdup_printf(_("Row %u"), i + 1);
    g_autofree char *what_description = g_strdup_printf(_("The description of row %u"), i + 1);

    if (*rows[i] == '\0' && rows[i + 1] == NULL && i > 0)
      break; /* a trailing ";" */
    if (!check_length(title, WA_COMPOSE_ROW_TITLE_MAX, what, error) ||
        (description != NULL && !check_length(description, WA_COMPOSE_ROW_DESCRIPTION_MAX, what_description, error)))
      return NULL;
    g_ptr_array_add(titles, g_steal_pointer(&title));
    g_ptr_array_add(descriptions, g_steal_pointer(&description));
  }
  if (titles->len == 0) {
    g_set_error_literal(error, WA_COMPOSE_ERROR, WA_COMPOSE_ERROR_SYNTAX, _("The list has no rows."));
    return NULL;
  }
  if (titles->len > WA_COMPOSE_LIST_ROWS_MAX) {
    limit_error(error, _("WhatsApp allows at most %u rows in a list; this has %u."), WA_COMPOSE_LIST_ROWS_MAX,
                titles->len);
    return NULL;
  }
  b = interactive_begin("list", parts[1]);
  line = g_string_new(NULL);
  g_string_printf(line, _("[List: %s] %s |"), parts[0], parts[1]);
  add_string(b, "button", parts[0]);
  json_builder_set_member_name(b, "sections");
  json_builder_begin_array(b);
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "rows");
  json_builder_begin_array(b);
  for (guint i = 0; i < titles->len; i++) {
    g_autofree char *id = g_strdup_printf("r%u", i + 1);
    const char *description = g_ptr_array_index(descriptions, i);

    json_builder_begin_object(b);
    add_string(b, "id", id);
    add_string(b, "title", g_ptr_array_index(titles, i));
    if (description != NULL)
      add_string(b, "description", description);
    json_builder_end_object(b);
    g_string_append_printf(line, "%s %s", i > 0 ? ";" : "", (const char *) g_ptr_array_index(titles, i));
  }
  json_builder_end_array(b);
  json_builder_end_object(b);
  json_builder_end_array(b);
  return interactive_end(b, g_string_free(line, FALSE));
}

WaComposed *
wa_compose_askphone(const char *body, GError **error)
{
  g_autofree char *text = g_strstrip(g_strdup(body != NULL ? body : ""));
  g_autoptr(JsonBuilder) b = NULL;

  if (*text == '\0') {
    g_free(text);
    text = g_strdup(_("Please share your phone number with us."));
  }
  if (!check_length(text, WA_COMPOSE_BODY_MAX, _("The text"), error))
    return NULL;
  b = interactive_begin("request_contact_info", text);
  add_string(b, "name", "request_contact_info");
  return interactive_end(b, g_strdup_printf(_("[Phone number request] %s"), text));
}
