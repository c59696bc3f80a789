/* wa-describe.c: plain-text descriptions of inbound messages (wa-describe.h).
 * Every list that comes from the customer is bounded (cards, items, form
 * answers, their lengths), so one message cannot fill the screen.
 * Must not: produce markup, or format numbers with the locale (a German
 * locale would write coordinates and prices with a comma). */
#include "wa-describe.h"

#include <math.h>
#include <string.h>

#include "wa-i18n.h"
#include "wa-json.h"

#define QUOTE_CHARS 60
#define MAX_CARDS 20
#define MAX_CARD_VALUES 10
#define MAX_ORDER_LINES 20
#define MAX_FORM_FIELDS 10
#define MAX_ERRORS 3

char *
wa_describe_short_quote(const char *text)
{
  GString *out = g_string_new(NULL);
  const char *p = text != NULL ? text : "";
  guint n = 0;

  if (!g_utf8_validate(p, -1, NULL))
    p = "?";
  for (; *p != '\0' && n < QUOTE_CHARS; p = g_utf8_next_char(p), n++) {
    gunichar c = g_utf8_get_char(p);

    if (g_unichar_isspace(c) || g_unichar_iscntrl(c)) {
      if (out->len > 0 && out->str[out->len - 1] != ' ')
        g_string_append_c(out, ' ');
    } else {
      g_string_append_unichar(out, c);
    }
  }
  g_strchomp(out->str);
  out->len = strlen(out->str);
  if (*p != '\0')
    g_string_append(out, "…");
  return g_string_free(out, FALSE);
}

/* "“quote”" of @text. */
static char *
quoted(const char *text)
{
  g_autofree char *q = wa_describe_short_quote(text);

  return g_strdup_printf(_("“%s”"), q);
}

static void
append_number(GString *out, const char *format, double value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  g_string_append(out, g_ascii_formatd(buf, sizeof buf, format, value));
}

static const char *
media_label(const WaMessage *m, const char *type)
{
  if (g_strcmp0(type, "image") == 0)
    return _("[Image]");
  if (g_strcmp0(type, "video") == 0)
    return _("[Video]");
  if (g_strcmp0(type, "audio") == 0)
    return m->voice ? _("[Voice message]") : _("[Audio]");
  if (g_strcmp0(type, "sticker") == 0)
    return _("[Sticker]");
  if (g_strcmp0(type, "document") == 0)
    return _("[Document]");
  return NULL;
}

static void
append_location(GString *out, const WaMessage *m)
{
  g_string_append(out, _("[Location]"));
  if (m->location_name != NULL)
    g_string_append_printf(out, " %s", m->location_name);
  if (m->location_address != NULL)
    g_string_append_printf(out, "%s%s", m->location_name != NULL ? ", " : " ", m->location_address);
  if (m->has_location) {
    char lat[G_ASCII_DTOSTR_BUF_SIZE];
    char lon[G_ASCII_DTOSTR_BUF_SIZE];

    g_ascii_formatd(lat, sizeof lat, "%.6f", m->latitude);
    g_ascii_formatd(lon, sizeof lon, "%.6f", m->longitude);
    g_string_append_printf(out, " (%s, %s) https://www.openstreetmap.org/?mlat=%s&mlon=%s#map=16/%s/%s", lat, lon, lat,
                           lon, lat, lon);
  }
  if (m->location_url != NULL && *m->location_url != '\0')
    g_string_append_printf(out, " %s", m->location_url);
}

static void
append_values(GString *out, GPtrArray *values, const char **sep, guint *shown)
{
  for (guint i = 0; i < values->len && *shown < MAX_CARD_VALUES; i++, (*shown)++) {
    g_string_append_printf(out, "%s%s", *sep, (const char *) g_ptr_array_index(values, i));
    *sep = ", ";
  }
}

static void
append_contacts(GString *out, const WaMessage *m, guint first, char prefix)
{
  guint n = MIN(m->shared_contacts->len, MAX_CARDS);

  if (n == 0)
    g_string_append(out, _("[Contact]"));
  for (guint i = 0; i < n; i++) {
    const WaSharedContact *c = g_ptr_array_index(m->shared_contacts, i);
    const char *sep = ": ";
    guint shown = 0;

    if (i > 0)
      g_string_append_c(out, '\n');
    if (first > 0)
      g_string_append_printf(out, _("[Contact %u]"), first + i);
    else
      g_string_append(out, _("[Contact]"));
    g_string_append_printf(out, " %s", c->name != NULL ? c->name : _("(no name)"));
    if (c->org != NULL)
      g_string_append_printf(out, " (%s)", c->org);
    append_values(out, c->phones, &sep, &shown);
    append_values(out, c->emails, &sep, &shown);
    append_values(out, c->urls, &sep, &shown);
  }
  if (m->shared_contacts->len > n)
    g_string_append_printf(out, _("\n(and %u more contacts)"), m->shared_contacts->len - n);
  if (first > 0 && n > 0)
    /* TRANSLATORS: %c is the command character: / or, in BitlBee, ! */
    g_string_append_printf(out, _("\n(%caddcontact N adds contact N as a buddy)"), prefix != 0 ? prefix : '/');
}

/* A form answer's value, short. */
static char *
form_value(JsonNode *node)
{
  if (JSON_NODE_HOLDS_VALUE(node)) {
    GType type = json_node_get_value_type(node);

    if (type == G_TYPE_STRING)
      return wa_describe_short_quote(json_node_get_string(node));
    if (type == G_TYPE_BOOLEAN)
      return g_strdup(json_node_get_boolean(node) ? _("yes") : _("no"));
    if (type == G_TYPE_INT64)
      return g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(node));
    if (type == G_TYPE_DOUBLE) {
      char buf[G_ASCII_DTOSTR_BUF_SIZE];

      return g_strdup(g_ascii_formatd(buf, sizeof buf, "%g", json_node_get_double(node)));
    }
  }
  if (JSON_NODE_HOLDS_ARRAY(node)) {
    JsonArray *array = json_node_get_array(node);
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < json_array_get_length(array) && s->len < QUOTE_CHARS; i++) {
      JsonNode *e = json_array_get_element(array, i);

      if (JSON_NODE_HOLDS_VALUE(e) && json_node_get_value_type(e) == G_TYPE_STRING)
        g_string_append_printf(s, "%s%s", s->len > 0 ? ", " : "", json_node_get_string(e));
    }
    if (s->len > 0) {
      char *short_text = wa_describe_short_quote(s->str);

      g_string_free(s, TRUE);
      return short_text;
    }
    g_string_free(s, TRUE);
  }
  return g_strdup("…");
}

/* The answers of a Flow (nfm_reply.response_json): "field: value; ...",
 * at most MAX_FORM_FIELDS, the flow token left out. */
static void
append_form(GString *out, const WaMessage *m)
{
  g_autoptr(JsonNode) root = NULL;
  GList *members;
  JsonObject *obj;
  guint shown = 0;
  guint total = 0;

  g_string_append(out, _("[Form]"));
  if (m->text != NULL && *m->text != '\0')
    g_string_append_printf(out, " %s", m->text);
  if (m->reply_json == NULL)
    return;
  root = wa_json_parse_object(m->reply_json, strlen(m->reply_json), NULL);
  if (root == NULL) {
    g_string_append(out, _(" (its answers could not be read)"));
    return;
  }
  obj = json_node_get_object(root);
  members = json_object_get_members(obj);
  for (GList *l = members; l != NULL; l = l->next) {
    const char *name = l->data;
    g_autofree char *key = NULL;
    g_autofree char *value = NULL;

    if (g_str_equal(name, "flow_token"))
      continue;
    total++;
    if (shown >= MAX_FORM_FIELDS)
      continue;
    key = wa_describe_short_quote(name);
    value = form_value(json_object_get_member(obj, name));
    g_string_append_printf(out, "%s%s: %s", shown == 0 ? " — " : "; ", key, value);
    shown++;
  }
  g_list_free(members);
  if (total > shown)
    g_string_append_printf(out, _(" (and %u more answers)"), total - shown);
}

static void
append_interactive(GString *out, const WaMessage *m)
{
  const char *itype = m->interactive_type != NULL ? m->interactive_type : "";

  if (g_str_equal(itype, "nfm_reply")) {
    append_form(out, m);
  } else if (g_str_equal(itype, "call_permission_reply")) {
    if (g_strcmp0(m->permission_response, "accept") == 0)
      g_string_append(out, m->permission_permanent
                             ? _("[Calls] The customer allows calls from this business from now on. Calls are not "
                                 "answered here.")
                             : _("[Calls] The customer allows calls from this business for now. Calls are not "
                                 "answered here."));
    else
      g_string_append_printf(out, _("[Calls] The customer answered the call permission request: %s."),
                             m->permission_response != NULL ? m->permission_response : _("no answer"));
  } else if (g_str_equal(itype, "button_reply") || g_str_equal(itype, "list_reply")) {
    g_string_append_printf(out, "%s %s", _("[Reply]"), m->text != NULL ? m->text : "");
    if (m->reply_description != NULL && *m->reply_description != '\0')
      g_string_append_printf(out, " (%s)", m->reply_description);
  } else {
    g_string_append_printf(out, _("[A reply of type %s]"), *itype != '\0' ? itype : "?");
    if (m->text != NULL)
      g_string_append_printf(out, " %s", m->text);
  }
}

typedef struct {
  const char *currency; /* borrowed from an item; NULL: none given */
  double sum;
} Total;

static void
append_order(GString *out, const WaMessage *m)
{
  g_autoptr(GArray) totals = g_array_new(FALSE, TRUE, sizeof(Total));
  gboolean all_priced = m->order_items->len > 0;

  g_string_append_printf(out, ngettext("[Order] %u product", "[Order] %u products", m->order_item_count),
                         m->order_item_count);
  if (m->order_quantity > 0)
    g_string_append_printf(out, _(", %lld pieces"), (long long) m->order_quantity);
  for (guint i = 0; i < m->order_items->len; i++) {
    const WaOrderItem *item = g_ptr_array_index(m->order_items, i);
    guint t;

    if (i < MAX_ORDER_LINES) {
      g_string_append_printf(out, "%s%lld × %s", i == 0 ? ": " : "; ", (long long) item->quantity,
                             item->product_id != NULL ? item->product_id : "?");
      if (item->has_price) {
        g_string_append(out, _(" at "));
        append_number(out, "%.2f", item->price);
        if (item->currency != NULL)
          g_string_append_printf(out, " %s", item->currency);
      }
    } else if (i == MAX_ORDER_LINES) {
      g_string_append_printf(out, _("; and %u more"), m->order_items->len - MAX_ORDER_LINES);
    }
    if (!item->has_price) {
      all_priced = FALSE;
      continue;
    }
    for (t = 0; t < totals->len && g_strcmp0(g_array_index(totals, Total, t).currency, item->currency) != 0; t++)
      ;
    if (t == totals->len) {
      Total fresh = {item->currency, 0.0};

      g_array_append_val(totals, fresh);
    }
    g_array_index(totals, Total, t).sum += item->price * (double) item->quantity;
  }
  if (all_priced) {
    g_string_append(out, _("; total "));
    for (guint t = 0; t < totals->len; t++) {
      const Total *total = &g_array_index(totals, Total, t);

      if (t > 0)
        g_string_append(out, " + ");
      append_number(out, "%.2f", total->sum);
      if (total->currency != NULL)
        g_string_append_printf(out, " %s", total->currency);
    }
  }
  if (m->text != NULL && *m->text != '\0')
    g_string_append_printf(out, _(" — note: %s"), m->text);
}

/* The new content of an edit: its text, or its media label and caption. */
static char *
edited_content(const WaMessage *m)
{
  const char *label = media_label(m, m->edit_type);

  if (label != NULL)
    return g_strdup_printf("%s%s%s", label, m->text != NULL ? " " : "", m->text != NULL ? m->text : "");
  return g_strdup(m->text != NULL ? m->text : "");
}

static void
append_unsupported(GString *out, const WaMessage *m)
{
  g_string_append_printf(out, _("[A message of a kind WhatsApp does not pass on (%s)]"),
                         m->unsupported_type != NULL ? m->unsupported_type : _("unknown"));
  for (guint i = 0; i < m->errors->len && i < MAX_ERRORS; i++) {
    const WaGraphError *e = g_ptr_array_index(m->errors, i);
    const char *what = e->title != NULL && *e->title != '\0' ? e->title : e->message;

    if (what != NULL && *what != '\0') {
      g_autofree char *q = wa_describe_short_quote(what);

      g_string_append_printf(out, " %s", q);
    }
    if (e->message != NULL && *e->message != '\0' && g_strcmp0(e->message, what) != 0) {
      g_autofree char *q = wa_describe_short_quote(e->message);

      g_string_append_printf(out, ": %s", q);
    }
    if (e->details != NULL && *e->details != '\0') {
      g_autofree char *q = wa_describe_short_quote(e->details);

      g_string_append_printf(out, " (%s)", q);
    }
    if (e->code != 0)
      g_string_append_printf(out, _(" [error %lld]"), (long long) e->code);
  }
}

static void
append_body(GString *out, const WaMessage *m, const WaDescribeContext *ctx)
{
  const char *type = m->type != NULL ? m->type : "";
  const char *label = media_label(m, type);
  g_autofree char *quote = ctx->quoted != NULL ? quoted(ctx->quoted) : NULL;

  if (g_str_equal(type, "text")) {
    g_string_append(out, m->text != NULL ? m->text : "");
  } else if (label != NULL) {
    g_string_append(out, label);
    if (m->filename != NULL)
      g_string_append_printf(out, " %s", m->filename);
    if (m->text != NULL && *m->text != '\0')
      g_string_append_printf(out, " %s", m->text);
  } else if (g_str_equal(type, "location")) {
    append_location(out, m);
  } else if (g_str_equal(type, "contacts")) {
    append_contacts(out, m, ctx->first_contact, ctx->command_prefix);
  } else if (g_str_equal(type, "interactive")) {
    append_interactive(out, m);
  } else if (g_str_equal(type, "button")) {
    g_string_append_printf(out, "%s %s", _("[Reply]"), m->text != NULL ? m->text : "");
    if (m->reply_id != NULL && *m->reply_id != '\0')
      g_string_append_printf(out, _(" (payload: %s)"), m->reply_id);
  } else if (g_str_equal(type, "reaction")) {
    gboolean removed = m->reaction_emoji == NULL || *m->reaction_emoji == '\0';

    if (!removed && quote != NULL)
      g_string_append_printf(out, _("reacted %s to: %s"), m->reaction_emoji, quote);
    else if (!removed)
      g_string_append_printf(out, _("reacted %s to an earlier message"), m->reaction_emoji);
    else if (quote != NULL)
      g_string_append_printf(out, _("removed the reaction to: %s"), quote);
    else
      g_string_append(out, _("removed a reaction to an earlier message"));
  } else if (g_str_equal(type, "order")) {
    append_order(out, m);
  } else if (g_str_equal(type, "system")) {
    g_string_append(out, m->text != NULL ? m->text : _("[WhatsApp system message]"));
  } else if (g_str_equal(type, "revoke")) {
    if (quote != NULL)
      g_string_append_printf(out, _("deleted a message: %s"), quote);
    else
      g_string_append(out, _("deleted a message"));
  } else if (g_str_equal(type, "edit")) {
    g_autofree char *content = edited_content(m);

    if (quote != NULL)
      g_string_append_printf(out, _("edited a message: %s (was: %s)"), content, quote);
    else
      g_string_append_printf(out, _("edited a message: %s"), content);
  } else if (g_str_equal(type, "request_welcome")) {
    g_string_append(out, _("[The customer opened the chat for the first time]"));
  } else if (g_str_equal(type, "unsupported")) {
    append_unsupported(out, m);
  } else {
    g_string_append_printf(out, _("[A %s message, not shown by this version]"), *type != '\0' ? type : "?");
  }
}

/* Types whose own line says what they refer to. */
static gboolean
refers_by_itself(const WaMessage *m)
{
  return g_strcmp0(m->type, "reaction") == 0 || g_strcmp0(m->type, "edit") == 0 || g_strcmp0(m->type, "revoke") == 0;
}

const char *
wa_message_referenced_id(const WaMessage *m)
{
  if (g_strcmp0(m->type, "reaction") == 0)
    return m->reaction_message_id;
  if (g_strcmp0(m->type, "edit") == 0 || g_strcmp0(m->type, "revoke") == 0)
    return m->original_message_id;
  return m->context_id;
}

const char *
wa_message_referral_key(const WaMessage *m)
{
  if (m->referral_source_id != NULL && *m->referral_source_id != '\0')
    return m->referral_source_id;
  if (m->referral_source_url != NULL && *m->referral_source_url != '\0')
    return m->referral_source_url;
  if (m->referral_headline != NULL && *m->referral_headline != '\0')
    return m->referral_headline;
  return NULL;
}

char *
wa_message_describe_in(const WaMessage *m, const WaDescribeContext *ctx)
{
  static const WaDescribeContext none = {0};
  GString *out = g_string_new(NULL);

  if (ctx == NULL)
    ctx = &none;
  if (wa_message_referral_key(m) != NULL && !ctx->referral_seen) {
    const char *what = m->referral_headline != NULL ? m->referral_headline : m->referral_source_url;

    if (m->referral_headline != NULL && m->referral_source_url != NULL)
      g_string_append_printf(out, _("(From an ad: %s, %s) "), m->referral_headline, m->referral_source_url);
    else
      g_string_append_printf(out, _("(From an ad: %s) "), what != NULL ? what : m->referral_source_id);
  }
  if (m->frequently_forwarded)
    g_string_append(out, _("(Forwarded many times) "));
  else if (m->forwarded)
    g_string_append(out, _("(Forwarded) "));
  if (m->referred_product_id != NULL)
    g_string_append_printf(out, _("(About product %s) "), m->referred_product_id);
  else if (m->context_id != NULL && !refers_by_itself(m)) {
    /* a tap answers the business's message: said only when it is known */
    if (ctx->quoted == NULL && (g_strcmp0(m->type, "button") == 0 || g_strcmp0(m->type, "interactive") == 0))
      ;
    else if (ctx->quoted != NULL) {
      g_autofree char *q = quoted(ctx->quoted);

      g_string_append_printf(out, _("(In reply to: %s) "), q);
    } else {
      g_string_append(out, _("(In reply to an earlier message) "));
    }
  }
  append_body(out, m, ctx);
  g_strchomp(out->str);
  out->len = strlen(out->str);
  if (out->len == 0)
    g_string_append(out, _("[Empty message]"));
  return g_string_free(out, FALSE);
}

char *
wa_message_describe(const WaMessage *m)
{
  return wa_message_describe_in(m, NULL);
}

char *
wa_call_describe(const WaCall *call)
{
  if (g_strcmp0(call->direction, "BUSINESS_INITIATED") == 0)
    return g_strdup_printf(_("A WhatsApp call from this business (made elsewhere) to the customer: %s%s%s."),
                           call->event != NULL ? call->event : "?", call->status != NULL ? ", " : "",
                           call->status != NULL ? call->status : "");
  if (g_strcmp0(call->event, "terminate") == 0) {
    if (call->duration > 0)
      return g_strdup_printf(_("The customer's WhatsApp call ended after %lld s (%s). Calls are not answered here."),
                             (long long) call->duration, call->status != NULL ? call->status : _("no status"));
    return g_strdup_printf(_("The customer's WhatsApp call ended (%s). Calls are not answered here: call back by "
                             "phone, or write."),
                           call->status != NULL ? call->status : _("no status"));
  }
  if (call->event == NULL || g_str_equal(call->event, "connect"))
    return g_strdup(_("The customer is calling on WhatsApp. Calls are not answered here: call back by phone, or "
                      "write."));
  return g_strdup_printf(_("WhatsApp call event \"%s\" from the customer. Calls are not answered here."), call->event);
}

gboolean
wa_message_opens_window(const WaMessage *m)
{
  return g_strcmp0(m->type, "system") != 0;
}
