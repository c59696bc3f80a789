/* wa-template.c: message templates (see wa-template.h): the catalogue's
 * objects, their slots, the /template arguments, the checks, the rendered
 * line and the outbox payload.
 * Must not: include libpurple, or send or store anything. */
#include "wa-template.h"

#include <string.h>

#include "wa-i18n.h"
#include "wa-json.h"

G_DEFINE_QUARK(wa - template - error - quark, wa_template_error)

/* ---- the model --------------------------------------------------------------------- */

static void
button_free(WaTemplateButton *b)
{
  g_free(b->type);
  g_free(b->text);
  g_free(b->url);
  g_free(b->phone_number);
  g_free(b);
}

static void
card_clear(WaTemplateCard *card)
{
  g_free(card->header_format);
  g_free(card->header_text);
  g_free(card->body);
  g_clear_pointer(&card->buttons, g_ptr_array_unref);
}

static void
card_free(WaTemplateCard *card)
{
  card_clear(card);
  g_free(card);
}

static void
slot_free(WaTemplateSlot *slot)
{
  g_free(slot->key);
  g_free(slot->param);
  g_free(slot->format);
  g_free(slot->example);
  g_free(slot);
}

void
wa_template_free(WaTemplate *tpl)
{
  if (tpl == NULL)
    return;
  g_free(tpl->id);
  g_free(tpl->name);
  g_free(tpl->language);
  g_free(tpl->category);
  g_free(tpl->status);
  g_free(tpl->quality);
  g_free(tpl->rejected_reason);
  card_clear(&tpl->main);
  g_free(tpl->footer);
  g_clear_pointer(&tpl->cards, g_ptr_array_unref);
  g_free(tpl->offer_text);
  g_clear_pointer(&tpl->slots, g_ptr_array_unref);
  g_free(tpl->json);
  g_free(tpl);
}

/* The placeholders of @text in order: "1", "2"... sorted by number for
 * positional templates, names in order of first use; each once. */
static GPtrArray *
placeholders(const char *text, gboolean named)
{
  GPtrArray *found = g_ptr_array_new_with_free_func(g_free);
  const char *p = text;

  while (p != NULL && (p = strstr(p, "{{")) != NULL) {
    const char *end = strstr(p + 2, "}}");
    g_autofree char *name = NULL;
    gboolean seen = FALSE;

    if (end == NULL)
      break;
    name = g_strstrip(g_strndup(p + 2, end - p - 2));
    p = end + 2;
    if (*name == '\0')
      continue;
    for (guint i = 0; i < found->len; i++)
      seen = seen || g_str_equal(g_ptr_array_index(found, i), name);
    if (!seen)
      g_ptr_array_add(found, g_steal_pointer(&name));
  }
  if (!named) {
    /* {{2}} before {{1}} in the text is still the second value */
    for (guint i = 1; i < found->len; i++)
      for (guint j = i; j > 0; j--) {
        gint64 a = g_ascii_strtoll(g_ptr_array_index(found, j - 1), NULL, 10);
        gint64 b = g_ascii_strtoll(g_ptr_array_index(found, j), NULL, 10);

        if (a > b) {
          gpointer t = found->pdata[j - 1];

          found->pdata[j - 1] = found->pdata[j];
          found->pdata[j] = t;
        }
      }
  }
  return found;
}

/* The example value of placeholder @index (0-based) or @name. */
static char *
example_of(JsonObject *component, const char *list, const char *named_list, guint index, const char *name)
{
  JsonObject *example = wa_json_get_object(component, "example");
  JsonArray *values = example != NULL ? wa_json_get_array(example, list) : NULL;
  JsonArray *nameds = example != NULL ? wa_json_get_array(example, named_list) : NULL;

  if (nameds != NULL) {
    for (guint i = 0; i < json_array_get_length(nameds); i++) {
      JsonObject *o = wa_json_array_get_object(nameds, i);

      if (o != NULL && g_strcmp0(wa_json_get_string(o, "param_name"), name) == 0)
        return g_strdup(wa_json_get_string(o, "example"));
    }
    return NULL;
  }
  if (values == NULL || json_array_get_length(values) == 0)
    return NULL;
  /* body_text is [[v1, v2]], header_text [v1] */
  if (JSON_NODE_HOLDS_ARRAY(json_array_get_element(values, 0)))
    values = json_array_get_array_element(values, 0);
  if (index < json_array_get_length(values) && JSON_NODE_HOLDS_VALUE(json_array_get_element(values, index)) &&
      json_node_get_value_type(json_array_get_element(values, index)) == G_TYPE_STRING)
    return g_strdup(json_array_get_string_element(values, index));
  return NULL;
}

static WaTemplateSlot *
slot_add(WaTemplate *tpl, WaTemplateSlotKind kind, int card, const char *key_suffix, const char *param)
{
  WaTemplateSlot *slot = g_new0(WaTemplateSlot, 1);

  slot->kind = kind;
  slot->card = card;
  slot->button = -1;
  slot->key = card >= 0 ? g_strdup_printf("card%d.%s", card + 1, key_suffix) : g_strdup(key_suffix);
  slot->param = g_strdup(param);
  g_ptr_array_add(tpl->slots, slot);
  return slot;
}

/* A "HEADER", "BODY" or "BUTTONS" component into @card and its slots. */
static void
read_component(WaTemplate *tpl, WaTemplateCard *card, int card_index, JsonObject *c)
{
  const char *type = wa_json_get_string(c, "type");

  if (type == NULL)
    return;
  if (g_ascii_strcasecmp(type, "HEADER") == 0) {
    const char *format = wa_json_get_string(c, "format");

    card->header_format = g_ascii_strup(format != NULL ? format : "TEXT", -1);
    card->header_text = g_strdup(wa_json_get_string(c, "text"));
    if (g_str_equal(card->header_format, "TEXT")) {
      g_autoptr(GPtrArray) names = placeholders(card->header_text, tpl->named);

      for (guint i = 0; i < names->len; i++) {
        const char *name = g_ptr_array_index(names, i);
        g_autofree char *key = tpl->named ? g_strdup(name) : g_strdup("header");
        WaTemplateSlot *slot = slot_add(tpl, WA_TEMPLATE_SLOT_HEADER_TEXT, card_index, key, name);

        slot->max = WA_TEMPLATE_HEADER_PARAM_MAX;
        slot->positional = card_index < 0;
        slot->example = example_of(c, "header_text", "header_text_named_params", i, name);
      }
    } else if (g_str_equal(card->header_format, "LOCATION")) {
      slot_add(tpl, WA_TEMPLATE_SLOT_HEADER_LOCATION, card_index, "header", NULL);
    } else if (g_str_equal(card->header_format, "IMAGE") || g_str_equal(card->header_format, "VIDEO") ||
               g_str_equal(card->header_format, "DOCUMENT")) {
      WaTemplateSlot *slot = slot_add(tpl, WA_TEMPLATE_SLOT_HEADER_MEDIA, card_index, "header", NULL);

      slot->format = g_strdup(card->header_format);
    }
  } else if (g_ascii_strcasecmp(type, "BODY") == 0) {
    g_autoptr(GPtrArray) names = NULL;

    card->body = g_strdup(wa_json_get_string(c, "text"));
    names = placeholders(card->body, tpl->named);
    for (guint i = 0; i < names->len; i++) {
      const char *name = g_ptr_array_index(names, i);
      WaTemplateSlot *slot = slot_add(tpl, WA_TEMPLATE_SLOT_BODY, card_index, name, name);

      slot->positional = card_index < 0;
      slot->example = example_of(c, "body_text", "body_text_named_params", i, name);
    }
  } else if (g_ascii_strcasecmp(type, "FOOTER") == 0 && card_index < 0) {
    tpl->footer = g_strdup(wa_json_get_string(c, "text"));
  } else if (g_ascii_strcasecmp(type, "BUTTONS") == 0) {
    JsonArray *buttons = wa_json_get_array(c, "buttons");

    for (guint i = 0; buttons != NULL && i < json_array_get_length(buttons); i++) {
      JsonObject *o = wa_json_array_get_object(buttons, i);
      WaTemplateButton *b;
      g_autofree char *key = g_strdup_printf("button%u", i + 1);

      if (o == NULL)
        continue;
      b = g_new0(WaTemplateButton, 1);
      b->type = g_ascii_strup(wa_json_get_string(o, "type") != NULL ? wa_json_get_string(o, "type") : "?", -1);
      b->text = g_strdup(wa_json_get_string(o, "text"));
      b->url = g_strdup(wa_json_get_string(o, "url"));
      b->phone_number = g_strdup(wa_json_get_string(o, "phone_number"));
      g_ptr_array_add(card->buttons, b);
      if (g_str_equal(b->type, "URL") && b->url != NULL && strstr(b->url, "{{") != NULL) {
        WaTemplateSlot *slot = slot_add(tpl, WA_TEMPLATE_SLOT_BUTTON_URL, card_index, key, NULL);
        JsonArray *ex = wa_json_get_array(o, "example");

        slot->button = (int) i;
        slot->max = WA_TEMPLATE_BUTTON_PARAM_MAX;
        if (ex != NULL && json_array_get_length(ex) > 0 && JSON_NODE_HOLDS_VALUE(json_array_get_element(ex, 0)))
          slot->example = g_strdup(json_array_get_string_element(ex, 0));
      } else if (g_str_equal(b->type, "QUICK_REPLY")) {
        WaTemplateSlot *slot = slot_add(tpl, WA_TEMPLATE_SLOT_BUTTON_PAYLOAD, card_index, key, NULL);

        slot->button = (int) i;
        slot->optional = TRUE;
        slot->max = WA_TEMPLATE_BUTTON_PARAM_MAX;
      } else if (g_str_equal(b->type, "COPY_CODE")) {
        WaTemplateSlot *slot = slot_add(tpl, WA_TEMPLATE_SLOT_COUPON, card_index, "code", NULL);

        slot->button = (int) i;
        slot->max = WA_TEMPLATE_COUPON_MAX;
        slot->example = g_strdup(wa_json_get_string(o, "example"));
      }
    }
  }
}

WaTemplate *
wa_template_from_object(JsonObject *obj, GError **error)
{
  g_autoptr(WaTemplate) tpl = g_new0(WaTemplate, 1);
  JsonArray *components = wa_json_get_array(obj, "components");
  const char *format = wa_json_get_string(obj, "parameter_format");
  gboolean only_body = TRUE;

  tpl->name = g_strdup(wa_json_get_string(obj, "name"));
  tpl->language = g_strdup(wa_json_get_string(obj, "language"));
  tpl->status = g_strdup(wa_json_get_string(obj, "status"));
  if (tpl->name == NULL || tpl->language == NULL || tpl->status == NULL || *tpl->name == '\0') {
    g_set_error_literal(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_INVALID,
                        "a template object needs a name, a language and a status");
    return NULL;
  }
  tpl->id = wa_json_dup_id(obj, "id");
  tpl->category = g_strdup(wa_json_get_string(obj, "category"));
  tpl->named = format != NULL && g_ascii_strcasecmp(format, "NAMED") == 0;
  tpl->rejected_reason = g_strdup(wa_json_get_string(obj, "rejected_reason"));
  {
    JsonObject *q = wa_json_get_object(obj, "quality_score");

    tpl->quality = g_strdup(q != NULL ? wa_json_get_string(q, "score") : wa_json_get_string(obj, "quality_score"));
  }
  tpl->main.buttons = g_ptr_array_new_with_free_func((GDestroyNotify) button_free);
  tpl->cards = g_ptr_array_new_with_free_func((GDestroyNotify) card_free);
  tpl->slots = g_ptr_array_new_with_free_func((GDestroyNotify) slot_free);
  for (guint i = 0; components != NULL && i < json_array_get_length(components); i++) {
    JsonObject *c = wa_json_array_get_object(components, i);
    const char *type = c != NULL ? wa_json_get_string(c, "type") : NULL;

    if (type == NULL)
      continue;
    if (g_ascii_strcasecmp(type, "BODY") != 0)
      only_body = FALSE;
    if (g_ascii_strcasecmp(type, "CAROUSEL") == 0) {
      JsonArray *cards = wa_json_get_array(c, "cards");

      for (guint k = 0; cards != NULL && k < json_array_get_length(cards); k++) {
        JsonObject *co = wa_json_array_get_object(cards, k);
        JsonArray *cc = co != NULL ? wa_json_get_array(co, "components") : NULL;
        WaTemplateCard *card = g_new0(WaTemplateCard, 1);

        card->buttons = g_ptr_array_new_with_free_func((GDestroyNotify) button_free);
        g_ptr_array_add(tpl->cards, card);
        for (guint j = 0; cc != NULL && j < json_array_get_length(cc); j++) {
          JsonObject *component = wa_json_array_get_object(cc, j);

          if (component != NULL)
            read_component(tpl, card, (int) k, component);
        }
      }
    } else if (g_ascii_strcasecmp(type, "LIMITED_TIME_OFFER") == 0) {
      JsonObject *lto = wa_json_get_object(c, "limited_time_offer");

      tpl->offer_text = g_strdup(lto != NULL ? wa_json_get_string(lto, "text") : "");
      tpl->offer_expires = lto != NULL && wa_json_get_bool(lto, "has_expiration", FALSE);
      if (tpl->offer_expires)
        slot_add(tpl, WA_TEMPLATE_SLOT_OFFER_EXPIRY, -1, "expires", NULL);
    } else {
      read_component(tpl, &tpl->main, -1, c);
    }
  }
  /* the longest text value Meta takes depends on what else the template has */
  for (guint i = 0; i < tpl->slots->len; i++) {
    WaTemplateSlot *slot = g_ptr_array_index(tpl->slots, i);

    if (slot->kind == WA_TEMPLATE_SLOT_BODY)
      slot->max = only_body && tpl->cards->len == 0 ? WA_TEMPLATE_BODY_ONLY_PARAM_MAX : WA_TEMPLATE_PARAM_MAX;
  }
  {
    g_autoptr(JsonNode) node = json_node_new(JSON_NODE_OBJECT);

    json_node_set_object(node, obj);
    tpl->json = wa_json_to_string(node);
  }
  return g_steal_pointer(&tpl);
}

WaTemplate *
wa_template_from_json(const char *json, GError **error)
{
  g_autoptr(JsonNode) root = wa_json_parse_object(json, strlen(json), error);

  if (root == NULL)
    return NULL;
  return wa_template_from_object(json_node_get_object(root), error);
}

gboolean
wa_template_page_parse(JsonObject *reply, GPtrArray *into, char **after, GError **error)
{
  JsonArray *data = wa_json_get_array(reply, "data");
  JsonObject *paging = wa_json_get_object(reply, "paging");
  JsonObject *cursors = paging != NULL ? wa_json_get_object(paging, "cursors") : NULL;

  *after = NULL;
  if (data == NULL) {
    g_set_error_literal(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_INVALID, "the template list has no data");
    return FALSE;
  }
  for (guint i = 0; i < json_array_get_length(data); i++) {
    JsonObject *o = wa_json_array_get_object(data, i);
    WaTemplate *tpl = o != NULL ? wa_template_from_object(o, NULL) : NULL;

    if (tpl != NULL)
      g_ptr_array_add(into, tpl);
  }
  /* paging.next is present only when there is a next page */
  if (paging != NULL && wa_json_get_string(paging, "next") != NULL && cursors != NULL &&
      wa_json_get_string(cursors, "after") != NULL && json_array_get_length(data) > 0)
    *after = g_strdup(wa_json_get_string(cursors, "after"));
  return TRUE;
}

/* ---- status ------------------------------------------------------------------------ */

gboolean
wa_template_sendable(const WaTemplate *tpl, char **why)
{
  static const struct {
    const char *status;
    const char *why;
  } reasons[] = {
    {"PENDING", N_("it is waiting for Meta's review.")},
    {"REJECTED", N_("Meta rejected it; edit it and submit it again in Meta's dashboard.")},
    {"PAUSED", N_("it is paused because of low quality (customers blocked or reported it); edit it, or wait until "
                  "the pause ends.")},
    {"DISABLED", N_("it is disabled for good after repeated low quality; create a new template.")},
    {"IN_APPEAL", N_("its rejection is being appealed.")},
    {"PENDING_DELETION", N_("it is being deleted.")},
    {"DELETED", N_("it was deleted.")},
    {"ARCHIVED", N_("it is archived (unused for a long time); unarchive it in Meta's dashboard.")},
    {"LIMIT_EXCEEDED", N_("the account has more templates than its limit allows; delete unused ones.")},
    {"LOCKED", N_("it is locked while Meta reviews it; it cannot be sent or edited now.")},
    {"FLAGGED", N_("Meta flagged it for low quality.")},
  };

  if (g_ascii_strcasecmp(tpl->status, "APPROVED") == 0)
    return TRUE;
  if (why != NULL) {
    const char *text = NULL;

    for (guint i = 0; i < G_N_ELEMENTS(reasons) && text == NULL; i++)
      if (g_ascii_strcasecmp(tpl->status, reasons[i].status) == 0)
        text = _(reasons[i].why);
    if (text != NULL && tpl->rejected_reason != NULL && g_ascii_strcasecmp(tpl->status, "REJECTED") == 0 &&
        g_ascii_strcasecmp(tpl->rejected_reason, "NONE") != 0)
      *why = g_strdup_printf(_("%s (reason: %s)"), text, tpl->rejected_reason);
    else if (text != NULL)
      *why = g_strdup(text);
    else
      *why = g_strdup_printf(_("its status is %s; only approved templates can be sent."), tpl->status);
  }
  return FALSE;
}

/* ---- slots ------------------------------------------------------------------------- */

/* How a slot is typed: "{{1}}" for positional ones, else "key=" with what
 * it takes. */
static char *
slot_label(const WaTemplate *tpl, const WaTemplateSlot *slot)
{
  g_autofree char *base = NULL;

  if (slot->positional && !tpl->named && slot->kind == WA_TEMPLATE_SLOT_HEADER_TEXT)
    base = g_strdup_printf(_("header {{%s}}"), slot->param); /* the body has its own {{1}} */
  else if (slot->positional && !tpl->named)
    base = g_strdup_printf("{{%s}}", slot->param);
  else if (slot->positional)
    base = g_strdup_printf("%s=", slot->key);
  else
    switch (slot->kind) {
    case WA_TEMPLATE_SLOT_HEADER_MEDIA:
      base = g_strdup_printf(_("%s=FILE_OR_MEDIA_ID (%s)"), slot->key, slot->format);
      break;
    case WA_TEMPLATE_SLOT_HEADER_LOCATION:
      base = g_strdup_printf(_("%s=LAT,LON[,NAME[,ADDRESS]]"), slot->key);
      break;
    case WA_TEMPLATE_SLOT_BUTTON_URL:
      base = g_strdup_printf(_("%s=URL_SUFFIX"), slot->key);
      break;
    case WA_TEMPLATE_SLOT_BUTTON_PAYLOAD:
      base = g_strdup_printf(_("[%s=PAYLOAD]"), slot->key);
      break;
    case WA_TEMPLATE_SLOT_COUPON:
      base = g_strdup_printf(_("%s=COUPON"), slot->key);
      break;
    case WA_TEMPLATE_SLOT_OFFER_EXPIRY:
      base = g_strdup_printf(_("%s=YYYY-MM-DDTHH:MM"), slot->key);
      break;
    default:
      base = g_strdup_printf("%s=", slot->key);
      break;
    }
  if (slot->example != NULL && *slot->example != '\0')
    return g_strdup_printf(_("%s (e.g. %s)"), base, slot->example);
  return g_steal_pointer(&base);
}

char *
wa_template_describe_slots(const WaTemplate *tpl)
{
  GString *s = g_string_new(NULL);

  for (guint i = 0; i < tpl->slots->len; i++) {
    g_autofree char *label = slot_label(tpl, g_ptr_array_index(tpl->slots, i));

    if (s->len > 0)
      g_string_append(s, ", ");
    g_string_append(s, label);
  }
  if (s->len == 0)
    g_string_append(s, _("none"));
  return g_string_free(s, FALSE);
}

/* ---- the command's arguments ------------------------------------------------------- */

void
wa_template_args_free(WaTemplateArgs *args)
{
  if (args == NULL)
    return;
  g_free(args->name);
  g_free(args->language);
  g_clear_pointer(&args->positional, g_ptr_array_unref);
  g_clear_pointer(&args->keys, g_ptr_array_unref);
  g_clear_pointer(&args->values, g_ptr_array_unref);
  g_free(args);
}

static gboolean
has_language(GPtrArray *catalogue, const char *name, const char *language)
{
  for (guint i = 0; catalogue != NULL && i < catalogue->len; i++) {
    const WaTemplate *t = g_ptr_array_index(catalogue, i);

    if (g_str_equal(t->name, name) && g_str_equal(t->language, language))
      return TRUE;
  }
  return FALSE;
}

#define ESCAPED_EQUALS '\x01'
#define ESCAPED_EQUALS_S "\x01"

/* A "key=value" item: the key is lowercase letters, digits, "_" and ".". */
static gboolean
split_pair(const char *item, char **key, char **value)
{
  const char *eq = strchr(item, '=');

  if (eq == NULL || eq == item)
    return FALSE;
  for (const char *p = item; p < eq; p++)
    if (!g_ascii_islower(*p) && !g_ascii_isdigit(*p) && *p != '_' && *p != '.')
      return FALSE;
  *key = g_strndup(item, eq - item);
  *value = g_strstrip(g_strdup(eq + 1));
  return TRUE;
}

WaTemplateArgs *
wa_template_args_parse(const char *text, GPtrArray *catalogue, GError **error)
{
  g_autoptr(WaTemplateArgs) args = g_new0(WaTemplateArgs, 1);
  const char *p = text != NULL ? text : "";
  const char *word;
  GString *item = g_string_new(NULL);
  GPtrArray *items = g_ptr_array_new_with_free_func(g_free);

  args->positional = g_ptr_array_new_with_free_func(g_free);
  args->keys = g_ptr_array_new_with_free_func(g_free);
  args->values = g_ptr_array_new_with_free_func(g_free);
  while (g_ascii_isspace(*p))
    p++;
  word = p;
  while (*p != '\0' && !g_ascii_isspace(*p) && *p != '|')
    p++;
  args->name = g_strndup(word, p - word);
  if (*args->name == '\0') {
    g_set_error_literal(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_SYNTAX,
                        _("name a template: /template NAME [LANG] VALUE | VALUE | key=value ..."));
    g_string_free(item, TRUE);
    g_ptr_array_unref(items);
    return NULL;
  }
  /* LANG: a second word the catalogue has as a language of NAME */
  {
    const char *q = p;
    g_autofree char *lang = NULL;

    while (g_ascii_isspace(*q))
      q++;
    word = q;
    while (*q != '\0' && !g_ascii_isspace(*q) && *q != '|')
      q++;
    lang = g_strndup(word, q - word);
    if (*lang != '\0' && (*q == '\0' || g_ascii_isspace(*q)) && has_language(catalogue, args->name, lang)) {
      args->language = g_steal_pointer(&lang);
      p = q;
    }
  }
  /* the rest: items separated by "|" ("\|" is a bar; "\=" an equals sign
   * that makes no key=value, kept as ESCAPED_EQUALS until the item is read) */
  for (; *p != '\0'; p++) {
    if (*p == '\\' && p[1] == '|') {
      g_string_append_c(item, '|');
      p++;
    } else if (*p == '\\' && p[1] == '=') {
      g_string_append_c(item, ESCAPED_EQUALS);
      p++;
    } else if (*p == ESCAPED_EQUALS) {
      continue; /* a control character nobody types */
    } else if (*p == '|') {
      g_ptr_array_add(items, g_strstrip(g_string_free(item, FALSE)));
      item = g_string_new(NULL);
    } else {
      g_string_append_c(item, *p);
    }
  }
  g_ptr_array_add(items, g_strstrip(g_string_free(item, FALSE)));
  /* "/template name" alone has one empty item: no values */
  if (items->len == 1 && *(char *) g_ptr_array_index(items, 0) == '\0')
    g_ptr_array_set_size(items, 0);
  for (guint i = 0; i < items->len; i++) {
    char *it = g_ptr_array_index(items, i);
    char *key = NULL, *value = NULL;

    if (split_pair(it, &key, &value)) {
      g_ptr_array_add(args->keys, key);
      g_ptr_array_add(args->values, g_strdelimit(value, ESCAPED_EQUALS_S, '='));
    } else {
      g_ptr_array_add(args->positional, g_strdelimit(g_strdup(it), ESCAPED_EQUALS_S, '='));
    }
  }
  g_ptr_array_unref(items);
  return g_steal_pointer(&args);
}

/* ---- choosing and filling ---------------------------------------------------------- */

WaTemplate *
wa_template_pick(GPtrArray *catalogue, const char *name, const char *language, const char *default_language,
                 GError **error)
{
  const WaTemplate *found = NULL, *approved = NULL, *fallback = NULL, *any = NULL;
  guint n_approved = 0, n_languages = 0;
  g_autoptr(GString) languages = g_string_new(NULL);
  g_autofree char *why = NULL;

  for (guint i = 0; catalogue != NULL && i < catalogue->len; i++) {
    const WaTemplate *t = g_ptr_array_index(catalogue, i);

    if (!g_str_equal(t->name, name))
      continue;
    g_string_append_printf(languages, "%s%s (%s)", languages->len > 0 ? ", " : "", t->language, t->status);
    any = t;
    n_languages++;
    if (language != NULL && g_str_equal(t->language, language))
      found = t;
    if (wa_template_sendable(t, NULL)) {
      approved = t;
      n_approved++;
    }
    if (default_language != NULL && g_str_equal(t->language, default_language))
      fallback = t;
  }
  if (languages->len == 0) {
    GString *names = g_string_new(NULL);

    for (guint i = 0; catalogue != NULL && i < catalogue->len && i < 30; i++) {
      const WaTemplate *t = g_ptr_array_index(catalogue, i);

      if (strstr(names->str, t->name) == NULL)
        g_string_append_printf(names, "%s%s", names->len > 0 ? ", " : "", t->name);
    }
    if (names->len > 0)
      g_set_error(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_UNKNOWN,
                  _("there is no template named \"%s\" (templates: %s; /templates lists them)."), name, names->str);
    else
      g_set_error(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_UNKNOWN,
                  _("there is no template named \"%s\": the account has no templates."), name);
    g_string_free(names, TRUE);
    return NULL;
  }
  if (language != NULL && found == NULL) {
    g_set_error(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_UNKNOWN,
                _("template \"%s\" has no language %s (it has: %s)."), name, language, languages->str);
    return NULL;
  }
  /* the only approved language, else the default, else the only one (to say why it cannot go) */
  if (found == NULL)
    found = n_approved == 1 ? approved : fallback != NULL ? fallback : n_languages == 1 ? any : NULL;
  if (found == NULL) {
    g_set_error(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_UNKNOWN,
                _("template \"%s\" exists in several languages: name one (%s), or set the account's default "
                  "template language."),
                name, languages->str);
    return NULL;
  }
  if (!wa_template_sendable(found, &why)) {
    g_set_error(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_NOT_SENDABLE, _("template \"%s\" (%s) cannot be sent: %s"),
                name, found->language, why);
    return NULL;
  }
  return wa_template_from_json(found->json, error);
}

static int
find_key(const WaTemplateArgs *args, const char *key)
{
  for (guint i = 0; i < args->keys->len; i++)
    if (g_str_equal(g_ptr_array_index(args->keys, i), key))
      return (int) i;
  return -1;
}

static gboolean
fill_error(GError **error, const WaTemplate *tpl, const char *problem)
{
  g_autofree char *slots = wa_template_describe_slots(tpl);

  g_set_error(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_PARAMETERS, _("%s Template \"%s\" (%s) takes: %s."), problem,
              tpl->name, tpl->language, slots);
  return FALSE;
}

GPtrArray *
wa_template_fill(const WaTemplate *tpl, const WaTemplateArgs *args, GError **error)
{
  g_autoptr(GPtrArray) values = g_ptr_array_new_with_free_func(g_free);
  g_autofree gboolean *used = g_new0(gboolean, args->keys->len + 1);
  guint next_positional = 0;
  g_autoptr(GString) missing = g_string_new(NULL);

  for (guint i = 0; i < tpl->slots->len; i++) {
    const WaTemplateSlot *slot = g_ptr_array_index(tpl->slots, i);
    int k = find_key(args, slot->key);
    const char *value = NULL;

    /* a positional template's header {{1}} is also "header=" */
    if (k >= 0) {
      used[k] = TRUE;
      value = g_ptr_array_index(args->values, k);
    } else if (slot->positional && next_positional < args->positional->len) {
      value = g_ptr_array_index(args->positional, next_positional++);
    }
    if (value != NULL && *value == '\0')
      value = NULL;
    if (value == NULL && !slot->optional) {
      g_autofree char *label = slot_label(tpl, slot);

      g_string_append_printf(missing, "%s%s", missing->len > 0 ? ", " : "", label);
    }
    if (value != NULL && slot->max > 0 && g_utf8_strlen(value, -1) > (glong) slot->max) {
      g_autofree char *label = slot_label(tpl, slot);
      g_autofree char *problem =
        g_strdup_printf(_("%s is too long (%ld characters; at most %u)."), label, g_utf8_strlen(value, -1), slot->max);

      fill_error(error, tpl, problem);
      return NULL;
    }
    /* Meta refuses text values with new lines, tabs or more than four spaces in a row */
    if (value != NULL && (slot->kind == WA_TEMPLATE_SLOT_HEADER_TEXT || slot->kind == WA_TEMPLATE_SLOT_BODY) &&
        (strpbrk(value, "\n\t") != NULL || strstr(value, "     ") != NULL)) {
      g_autofree char *label = slot_label(tpl, slot);
      g_autofree char *problem =
        g_strdup_printf(_("%s may not hold new lines, tabs or more than four spaces in a row."), label);

      fill_error(error, tpl, problem);
      return NULL;
    }
    g_ptr_array_add(values, g_strdup(value));
  }
  if (missing->len > 0) {
    g_autofree char *problem = g_strdup_printf(_("Missing: %s."), missing->str);

    fill_error(error, tpl, problem);
    return NULL;
  }
  if (next_positional < args->positional->len) {
    g_autofree char *problem =
      g_strdup_printf(ngettext("%u value too many.", "%u values too many.", args->positional->len - next_positional),
                      args->positional->len - next_positional);

    fill_error(error, tpl, problem);
    return NULL;
  }
  for (guint k = 0; k < args->keys->len; k++)
    if (!used[k]) {
      const char *key = g_ptr_array_index(args->keys, k);
      g_autofree char *problem =
        g_strdup_printf(_("The template has no \"%s\" (a value with an equals sign in it is written %s\\=%s)."), key,
                        key, (const char *) g_ptr_array_index(args->values, k));

      fill_error(error, tpl, problem);
      return NULL;
    }
  return g_steal_pointer(&values);
}

/* ---- the line ---------------------------------------------------------------------- */

/* @text with the placeholders of card @card in @part (a slot kind) replaced. */
static void
append_filled(GString *out, const WaTemplate *tpl, GPtrArray *values, const char *text, int card,
              WaTemplateSlotKind part)
{
  const char *p = text;

  while (*p != '\0') {
    const char *end;

    if (p[0] == '{' && p[1] == '{' && (end = strstr(p + 2, "}}")) != NULL) {
      g_autofree char *name = g_strstrip(g_strndup(p + 2, end - p - 2));
      const char *value = NULL;

      for (guint i = 0; i < tpl->slots->len && value == NULL; i++) {
        const WaTemplateSlot *slot = g_ptr_array_index(tpl->slots, i);

        if (slot->kind == part && slot->card == card && g_strcmp0(slot->param, name) == 0)
          value = g_ptr_array_index(values, i);
      }
      if (value != NULL) {
        g_string_append(out, value);
        p = end + 2;
        continue;
      }
    }
    g_string_append_c(out, *p++);
  }
}

static const char *
value_of(const WaTemplate *tpl, GPtrArray *values, WaTemplateSlotKind kind, int card, int button)
{
  for (guint i = 0; i < tpl->slots->len; i++) {
    const WaTemplateSlot *slot = g_ptr_array_index(tpl->slots, i);

    if (slot->kind == kind && slot->card == card && (button < 0 || slot->button == button))
      return g_ptr_array_index(values, i);
  }
  return NULL;
}

static void
render_card(GString *s, const WaTemplate *tpl, GPtrArray *values, const WaTemplateCard *card, int index)
{
  if (card->header_format != NULL && g_str_equal(card->header_format, "TEXT") && card->header_text != NULL) {
    append_filled(s, tpl, values, card->header_text, index, WA_TEMPLATE_SLOT_HEADER_TEXT);
    g_string_append_c(s, '\n');
  } else if (card->header_format != NULL) {
    const char *v = value_of(tpl, values,
                             g_str_equal(card->header_format, "LOCATION") ? WA_TEMPLATE_SLOT_HEADER_LOCATION
                                                                          : WA_TEMPLATE_SLOT_HEADER_MEDIA,
                             index, -1);
    g_autofree char *lower = g_ascii_strdown(card->header_format, -1);

    if (v != NULL && wa_template_media_is_file(v)) {
      g_autofree char *base = g_path_get_basename(v);

      g_string_append_printf(s, "[%s: %s]\n", lower, base);
    } else {
      g_string_append_printf(s, "[%s]\n", lower);
    }
  }
  if (card->body != NULL) {
    append_filled(s, tpl, values, card->body, index, WA_TEMPLATE_SLOT_BODY);
    g_string_append_c(s, '\n');
  }
  if (index < 0 && tpl->offer_text != NULL)
    g_string_append_printf(s, "%s\n", tpl->offer_text);
  if (index < 0 && tpl->footer != NULL)
    g_string_append_printf(s, "%s\n", tpl->footer);
  for (guint i = 0; i < card->buttons->len; i++) {
    const WaTemplateButton *b = g_ptr_array_index(card->buttons, i);

    g_string_append_printf(s, "%s[%s]", i > 0 ? " " : "", b->text != NULL ? b->text : b->type);
    if (g_str_equal(b->type, "COPY_CODE")) {
      const char *code = value_of(tpl, values, WA_TEMPLATE_SLOT_COUPON, index, (int) i);

      if (code != NULL)
        g_string_append_printf(s, " %s", code);
    }
  }
  if (card->buttons->len > 0)
    g_string_append_c(s, '\n');
}

char *
wa_template_render(const WaTemplate *tpl, GPtrArray *values)
{
  GString *s = g_string_new(NULL);

  g_string_append_printf(s, _("[Template %s, %s]"), tpl->name, tpl->category != NULL ? tpl->category : "?");
  g_string_append_c(s, '\n');
  render_card(s, tpl, values, &tpl->main, -1);
  for (guint i = 0; i < tpl->cards->len; i++) {
    g_string_append_printf(s, _("Card %u:"), i + 1);
    g_string_append_c(s, '\n');
    render_card(s, tpl, values, g_ptr_array_index(tpl->cards, i), (int) i);
  }
  while (s->len > 0 && s->str[s->len - 1] == '\n')
    g_string_truncate(s, s->len - 1);
  return g_string_free(s, FALSE);
}

/* ---- the payload ------------------------------------------------------------------- */

gboolean
wa_template_media_is_file(const char *value)
{
  if (value == NULL || *value == '\0' || g_str_has_prefix(value, "https://"))
    return FALSE;
  for (const char *p = value; *p != '\0'; p++)
    if (!g_ascii_isdigit(*p))
      return TRUE;
  return FALSE; /* all digits: a media id */
}

static void
add_text_param(JsonBuilder *b, const WaTemplate *tpl, const WaTemplateSlot *slot, const char *value)
{
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "type");
  json_builder_add_string_value(b, "text");
  if (tpl->named && slot->param != NULL) {
    json_builder_set_member_name(b, "parameter_name");
    json_builder_add_string_value(b, slot->param);
  }
  json_builder_set_member_name(b, "text");
  json_builder_add_string_value(b, value);
  json_builder_end_object(b);
}

static gboolean
add_media_param(JsonBuilder *b, const WaTemplateSlot *slot, const char *value, GError **error)
{
  g_autofree char *type = g_ascii_strdown(slot->format, -1);

  if (wa_template_media_is_file(value)) {
    g_set_error(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_PARAMETERS, "the header file %s was not uploaded", value);
    return FALSE;
  }
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "type");
  json_builder_add_string_value(b, type);
  json_builder_set_member_name(b, type);
  json_builder_begin_object(b);
  json_builder_set_member_name(b, g_str_has_prefix(value, "https://") ? "link" : "id");
  json_builder_add_string_value(b, value);
  json_builder_end_object(b);
  json_builder_end_object(b);
  return TRUE;
}

static gboolean
add_location_param(JsonBuilder *b, const char *value, GError **error)
{
  g_auto(GStrv) parts = g_strsplit(value, ",", 4);
  double lat, lon;
  char *end1 = NULL, *end2 = NULL;

  if (g_strv_length(parts) < 2 || (lat = g_ascii_strtod(g_strstrip(parts[0]), &end1), *end1 != '\0') ||
      (lon = g_ascii_strtod(g_strstrip(parts[1]), &end2), *end2 != '\0') || lat < -90 || lat > 90 || lon < -180 ||
      lon > 180) {
    g_set_error(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_PARAMETERS,
                _("the header location \"%s\" is not LAT,LON[,NAME[,ADDRESS]] in decimal degrees."), value);
    return FALSE;
  }
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "type");
  json_builder_add_string_value(b, "location");
  json_builder_set_member_name(b, "location");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "latitude");
  json_builder_add_double_value(b, lat);
  json_builder_set_member_name(b, "longitude");
  json_builder_add_double_value(b, lon);
  if (parts[2] != NULL) {
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, g_strstrip(parts[2]));
  }
  if (parts[2] != NULL && parts[3] != NULL) {
    json_builder_set_member_name(b, "address");
    json_builder_add_string_value(b, g_strstrip(parts[3]));
  }
  json_builder_end_object(b);
  json_builder_end_object(b);
  return TRUE;
}

/* A component {"type": @type, "parameters": [...]} of the slots of
 * @kinds in card @card; nothing when it has none. */
static gboolean
add_params_component(JsonBuilder *b, const WaTemplate *tpl, GPtrArray *values, int card, const char *type,
                     gboolean header, GError **error)
{
  gboolean opened = FALSE;

  for (guint i = 0; i < tpl->slots->len; i++) {
    const WaTemplateSlot *slot = g_ptr_array_index(tpl->slots, i);
    const char *value = g_ptr_array_index(values, i);
    gboolean is_header = slot->kind == WA_TEMPLATE_SLOT_HEADER_TEXT || slot->kind == WA_TEMPLATE_SLOT_HEADER_MEDIA ||
                         slot->kind == WA_TEMPLATE_SLOT_HEADER_LOCATION;

    if (slot->card != card || value == NULL || (header ? !is_header : slot->kind != WA_TEMPLATE_SLOT_BODY))
      continue;
    if (!opened) {
      json_builder_begin_object(b);
      json_builder_set_member_name(b, "type");
      json_builder_add_string_value(b, type);
      json_builder_set_member_name(b, "parameters");
      json_builder_begin_array(b);
      opened = TRUE;
    }
    if (slot->kind == WA_TEMPLATE_SLOT_HEADER_MEDIA) {
      if (!add_media_param(b, slot, value, error))
        return FALSE;
    } else if (slot->kind == WA_TEMPLATE_SLOT_HEADER_LOCATION) {
      if (!add_location_param(b, value, error))
        return FALSE;
    } else {
      add_text_param(b, tpl, slot, value);
    }
  }
  if (opened) {
    json_builder_end_array(b);
    json_builder_end_object(b);
  }
  return TRUE;
}

static void
add_button(JsonBuilder *b, const char *sub_type, int index, const char *param_type, const char *value)
{
  g_autofree char *idx = g_strdup_printf("%d", index);

  json_builder_begin_object(b);
  json_builder_set_member_name(b, "type");
  json_builder_add_string_value(b, "button");
  json_builder_set_member_name(b, "sub_type");
  json_builder_add_string_value(b, sub_type);
  json_builder_set_member_name(b, "index");
  json_builder_add_string_value(b, idx);
  json_builder_set_member_name(b, "parameters");
  json_builder_begin_array(b);
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "type");
  json_builder_add_string_value(b, param_type);
  json_builder_set_member_name(b, param_type);
  json_builder_add_string_value(b, value);
  json_builder_end_object(b);
  json_builder_end_array(b);
  json_builder_end_object(b);
}

static void
add_buttons(JsonBuilder *b, const WaTemplate *tpl, GPtrArray *values, const WaTemplateCard *card, int index)
{
  for (guint i = 0; i < card->buttons->len; i++) {
    const WaTemplateButton *button = g_ptr_array_index(card->buttons, i);
    const char *v;

    if (g_str_equal(button->type, "URL") && (v = value_of(tpl, values, WA_TEMPLATE_SLOT_BUTTON_URL, index, i)))
      add_button(b, "url", (int) i, "text", v);
    else if (g_str_equal(button->type, "QUICK_REPLY") &&
             (v = value_of(tpl, values, WA_TEMPLATE_SLOT_BUTTON_PAYLOAD, index, i)))
      add_button(b, "quick_reply", (int) i, "payload", v);
    else if (g_str_equal(button->type, "COPY_CODE") && (v = value_of(tpl, values, WA_TEMPLATE_SLOT_COUPON, index, i)))
      add_button(b, "copy_code", (int) i, "coupon_code", v);
    else if (g_str_equal(button->type, "OTP") && (v = value_of(tpl, values, WA_TEMPLATE_SLOT_BODY, index, -1)))
      /* a one-time code goes in the body and again in its button */
      add_button(b, "url", (int) i, "text", v);
  }
}

static gboolean
add_offer(JsonBuilder *b, const WaTemplate *tpl, GPtrArray *values, gint64 now_ms, GError **error)
{
  const char *v = value_of(tpl, values, WA_TEMPLATE_SLOT_OFFER_EXPIRY, -1, -1);
  gint64 ms;
  char *end = NULL;

  if (v == NULL)
    return TRUE;
  ms = g_ascii_strtoll(v, &end, 10);
  if (end == v || *end != '\0') {
    g_autoptr(GTimeZone) local = g_time_zone_new_local();
    g_autoptr(GDateTime) when = g_date_time_new_from_iso8601(v, local);

    if (when == NULL) {
      /* GLib wants the seconds; the hint (YYYY-MM-DDTHH:MM) has none */
      g_autofree char *with_seconds = g_strconcat(v, ":00", NULL);

      when = g_date_time_new_from_iso8601(with_seconds, local);
    }

    if (when == NULL) {
      g_set_error(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_PARAMETERS,
                  _("the offer's end \"%s\" is not a time such as 2026-12-24T18:00."), v);
      return FALSE;
    }
    ms = g_date_time_to_unix(when) * 1000;
  }
  if (ms <= now_ms) {
    g_set_error(error, WA_TEMPLATE_ERROR, WA_TEMPLATE_ERROR_PARAMETERS,
                _("the offer's end \"%s\" has passed: give a later time."), v);
    return FALSE;
  }
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "type");
  json_builder_add_string_value(b, "limited_time_offer");
  json_builder_set_member_name(b, "parameters");
  json_builder_begin_array(b);
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "type");
  json_builder_add_string_value(b, "limited_time_offer");
  json_builder_set_member_name(b, "limited_time_offer");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "expiration_time_ms");
  json_builder_add_int_value(b, ms);
  json_builder_end_object(b);
  json_builder_end_object(b);
  json_builder_end_array(b);
  json_builder_end_object(b);
  return TRUE;
}

char *
wa_template_payload(const WaTemplate *tpl, GPtrArray *values, gboolean marketing_endpoint, gint64 now_ms,
                    GError **error)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  g_autoptr(JsonNode) root = NULL;

  json_builder_begin_object(b);
  json_builder_set_member_name(b, "type");
  json_builder_add_string_value(b, "template");
  json_builder_set_member_name(b, "template");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "name");
  json_builder_add_string_value(b, tpl->name);
  json_builder_set_member_name(b, "language");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "code");
  json_builder_add_string_value(b, tpl->language);
  json_builder_end_object(b);
  json_builder_set_member_name(b, "components");
  json_builder_begin_array(b);
  if (!add_params_component(b, tpl, values, -1, "header", TRUE, error) ||
      !add_params_component(b, tpl, values, -1, "body", FALSE, error) || !add_offer(b, tpl, values, now_ms, error))
    return NULL;
  add_buttons(b, tpl, values, &tpl->main, -1);
  if (tpl->cards->len > 0) {
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, "carousel");
    json_builder_set_member_name(b, "cards");
    json_builder_begin_array(b);
    for (guint i = 0; i < tpl->cards->len; i++) {
      json_builder_begin_object(b);
      json_builder_set_member_name(b, "card_index");
      json_builder_add_int_value(b, i);
      json_builder_set_member_name(b, "components");
      json_builder_begin_array(b);
      if (!add_params_component(b, tpl, values, (int) i, "header", TRUE, error) ||
          !add_params_component(b, tpl, values, (int) i, "body", FALSE, error))
        return NULL;
      add_buttons(b, tpl, values, g_ptr_array_index(tpl->cards, i), (int) i);
      json_builder_end_array(b);
      json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  json_builder_end_object(b);
  if (marketing_endpoint) {
    /* read by wa-sender (wa_message_payload_endpoint); never sent */
    json_builder_set_member_name(b, "endpoint");
    json_builder_add_string_value(b, "marketing_messages");
  }
  json_builder_end_object(b);
  root = json_builder_get_root(b);
  return wa_json_to_string(root);
}

/* ---- the use-case usage header ------------------------------------------------------ */

gint64
wa_template_usage_backoff(const char *header)
{
  g_autoptr(JsonNode) root = header != NULL ? wa_json_parse_object(header, strlen(header), NULL) : NULL;
  GList *members;
  gint64 wait = 0;

  if (root == NULL)
    return 0;
  /* {"<business id>": [{"type", "call_count", "total_cputime", "total_time", "estimated_time_to_regain_access"}]} */
  members = json_object_get_members(json_node_get_object(root));
  for (GList *l = members; l != NULL; l = l->next) {
    JsonNode *node = json_object_get_member(json_node_get_object(root), l->data);
    JsonArray *uses = JSON_NODE_HOLDS_ARRAY(node) ? json_node_get_array(node) : NULL;

    for (guint i = 0; uses != NULL && i < json_array_get_length(uses); i++) {
      JsonObject *u = wa_json_array_get_object(uses, i);
      gint64 most, regain;

      if (u == NULL)
        continue;
      most = MAX(wa_json_get_int(u, "call_count", 0),
                 MAX(wa_json_get_int(u, "total_cputime", 0), wa_json_get_int(u, "total_time", 0)));
      regain = wa_json_get_int(u, "estimated_time_to_regain_access", 0);
      if (regain > 0)
        wait = MAX(wait, regain * 60);
      else if (most >= 100)
        wait = MAX(wait, 3600);
      else if (most >= 90)
        wait = MAX(wait, 600);
    }
  }
  g_list_free(members);
  return wait;
}
