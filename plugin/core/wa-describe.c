/* wa-describe.c: plain-text descriptions of inbound messages (wa-describe.h).
 * Must not: produce markup. */
#include "wa-describe.h"

#include "wa-i18n.h"

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
append_body(GString *out, const WaMessage *m)
{
  const char *type = m->type != NULL ? m->type : "";
  const char *label = media_label(m, type);

  if (g_str_equal(type, "text")) {
    g_string_append(out, m->text != NULL ? m->text : "");
  } else if (label != NULL) {
    g_string_append(out, label);
    if (m->filename != NULL)
      g_string_append_printf(out, " %s", m->filename);
    if (m->text != NULL && *m->text != '\0')
      g_string_append_printf(out, " %s", m->text);
  } else if (g_str_equal(type, "location")) {
    g_string_append(out, _("[Location]"));
    if (m->location_name != NULL)
      g_string_append_printf(out, " %s", m->location_name);
    if (m->location_address != NULL)
      g_string_append_printf(out, ", %s", m->location_address);
    if (m->has_location)
      g_string_append_printf(out, " (%.6f, %.6f)", m->latitude, m->longitude);
  } else if (g_str_equal(type, "contacts")) {
    g_string_append_printf(out, "%s %s", _("[Contact]"), m->text != NULL ? m->text : "");
  } else if (g_str_equal(type, "interactive") || g_str_equal(type, "button")) {
    g_string_append_printf(out, "%s %s", _("[Reply]"), m->text != NULL ? m->text : "");
  } else if (g_str_equal(type, "reaction")) {
    if (m->reaction_emoji != NULL && *m->reaction_emoji != '\0')
      g_string_append_printf(out, _("[Reaction] %s to a message"), m->reaction_emoji);
    else
      g_string_append(out, _("[Reaction removed]"));
  } else if (g_str_equal(type, "order")) {
    g_string_append_printf(out, ngettext("[Order] %u product", "[Order] %u products", m->order_item_count),
                           m->order_item_count);
    if (m->order_quantity > 0)
      g_string_append_printf(out, _(", %lld pieces"), (long long) m->order_quantity);
    if (m->text != NULL && *m->text != '\0')
      g_string_append_printf(out, ": %s", m->text);
  } else if (g_str_equal(type, "system")) {
    g_string_append(out, m->text != NULL ? m->text : _("[WhatsApp system message]"));
  } else if (g_str_equal(type, "revoke")) {
    g_string_append(out, _("[The customer deleted a message]"));
  } else if (g_str_equal(type, "edit")) {
    g_string_append_printf(out, "%s %s", _("[Edited]"), m->text != NULL ? m->text : "");
  } else if (g_str_equal(type, "request_welcome")) {
    g_string_append(out, _("[The customer opened the chat for the first time]"));
  } else if (g_str_equal(type, "unsupported")) {
    g_string_append_printf(out, _("[A message of a kind WhatsApp does not pass on (%s)]"),
                           m->unsupported_type != NULL ? m->unsupported_type : _("unknown"));
  } else {
    g_string_append_printf(out, _("[A %s message, not shown by this version]"), *type != '\0' ? type : "?");
  }
}

char *
wa_message_describe(const WaMessage *m)
{
  GString *out = g_string_new(NULL);

  if (m->referral_headline != NULL || m->referral_source_url != NULL)
    g_string_append_printf(out, _("(From an ad: %s) "),
                           m->referral_headline != NULL ? m->referral_headline : m->referral_source_url);
  if (m->frequently_forwarded)
    g_string_append(out, _("(Forwarded many times) "));
  else if (m->forwarded)
    g_string_append(out, _("(Forwarded) "));
  if (m->referred_product_id != NULL)
    g_string_append_printf(out, _("(About product %s) "), m->referred_product_id);
  append_body(out, m);
  g_strchomp(out->str);
  out->len = strlen(out->str);
  if (out->len == 0)
    g_string_append(out, _("[Empty message]"));
  return g_string_free(out, FALSE);
}

gboolean
wa_message_opens_window(const WaMessage *m)
{
  return g_strcmp0(m->type, "system") != 0;
}
