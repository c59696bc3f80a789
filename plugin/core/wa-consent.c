/* wa-consent.c: the consent decision, opt-out keyword matching and the
 * words of the consent commands (see wa-consent.h for the rules).
 * Must not: read the store, a clock or the environment. */
#include "wa-consent.h"

#include <string.h>

#include "wa-i18n.h"

WaConsentScopes
wa_consent_scopes_parse(const char *word, gboolean allow_all, WaConsentScopes fallback)
{
  if (word == NULL || *word == '\0')
    return fallback;
  if (g_ascii_strcasecmp(word, WA_CONSENT_SCOPE_MARKETING) == 0)
    return WA_CONSENT_MARKETING;
  if (g_ascii_strcasecmp(word, WA_CONSENT_SCOPE_UTILITY) == 0)
    return WA_CONSENT_UTILITY;
  if (allow_all && g_ascii_strcasecmp(word, "all") == 0)
    return WA_CONSENT_ALL;
  return 0;
}

const char *
wa_consent_scope_name(WaConsentScopes scope)
{
  return scope == WA_CONSENT_UTILITY ? WA_CONSENT_SCOPE_UTILITY : WA_CONSENT_SCOPE_MARKETING;
}

WaConsentCategory
wa_consent_category_parse(const char *category, gboolean *known)
{
  WaConsentCategory result = WA_CONSENT_CATEGORY_MARKETING;
  gboolean found = TRUE;

  if (category != NULL && g_ascii_strcasecmp(category, "UTILITY") == 0)
    result = WA_CONSENT_CATEGORY_UTILITY;
  else if (category != NULL && g_ascii_strcasecmp(category, "AUTHENTICATION") == 0)
    result = WA_CONSENT_CATEGORY_AUTHENTICATION;
  else
    found = category != NULL &&
            (g_ascii_strcasecmp(category, "MARKETING") == 0 || g_ascii_strcasecmp(category, "MARKETING_LITE") == 0);
  if (known != NULL)
    *known = found;
  return result;
}

WaConsentUtilityPolicy
wa_consent_utility_policy_parse(const char *value)
{
  return g_strcmp0(value, WA_CONSENT_UTILITY_NOT_REQUIRED_WORD) == 0 ? WA_CONSENT_UTILITY_NOT_REQUIRED
                                                                     : WA_CONSENT_UTILITY_REQUIRED;
}

WaConsentVerdict
wa_consent_decide(WaConsentCategory category, const WaConsentFacts *facts, WaConsentUtilityPolicy utility)
{
  g_return_val_if_fail(facts != NULL, WA_CONSENT_NO_MARKETING_OPT_IN);

  if (facts->suppressed)
    return facts->suppress_reason == WA_STORE_SUPPRESS_ERASURE ? WA_CONSENT_SUPPRESSED_ERASURE
                                                               : WA_CONSENT_SUPPRESSED_OPT_OUT;
  switch (category) {
  case WA_CONSENT_CATEGORY_AUTHENTICATION:
    if (facts->marketing.state == WA_STORE_CONSENT_OPT_OUT && facts->utility.state == WA_STORE_CONSENT_OPT_OUT)
      return WA_CONSENT_OPTED_OUT_EVERYTHING;
    return WA_CONSENT_ALLOWED;
  case WA_CONSENT_CATEGORY_UTILITY:
    if (facts->utility.state == WA_STORE_CONSENT_OPT_OUT)
      return WA_CONSENT_OPTED_OUT_UTILITY;
    if (facts->utility.state == WA_STORE_CONSENT_OPT_IN || utility == WA_CONSENT_UTILITY_NOT_REQUIRED ||
        facts->window_open)
      return WA_CONSENT_ALLOWED;
    return WA_CONSENT_NO_UTILITY_OPT_IN;
  case WA_CONSENT_CATEGORY_MARKETING:
  default:
    /* an open window is consent to service replies, not to marketing */
    if (facts->marketing.state == WA_STORE_CONSENT_OPT_OUT)
      return WA_CONSENT_OPTED_OUT_MARKETING;
    if (facts->marketing.state == WA_STORE_CONSENT_OPT_IN)
      return WA_CONSENT_ALLOWED;
    return WA_CONSENT_NO_MARKETING_OPT_IN;
  }
}

/* "keyword", "agent", ... as the agent reads them. */
static const char *
source_text(const char *source)
{
  static const struct {
    const char *source;
    const char *text;
  } names[] = {
    {WA_CONSENT_SOURCE_AGENT, N_("recorded by an agent")},
    {WA_CONSENT_SOURCE_KEYWORD, N_("the customer's keyword")},
    {WA_CONSENT_SOURCE_BUTTON, N_("the customer's button reply")},
    {WA_CONSENT_SOURCE_PREFERENCES, N_("the customer's WhatsApp settings")},
    {WA_CONSENT_SOURCE_API, N_("reported by WhatsApp")},
    {WA_CONSENT_SOURCE_IMPORT, N_("imported")},
  };

  for (guint i = 0; source != NULL && i < G_N_ELEMENTS(names); i++)
    if (g_str_equal(source, names[i].source))
      return _(names[i].text);
  return source != NULL ? source : "?";
}

char *
wa_consent_row_text(const WaConsentRow *row)
{
  g_autoptr(GDateTime) when = NULL;
  g_autofree char *date = NULL;

  if (row == NULL || (row->state != WA_STORE_CONSENT_OPT_IN && row->state != WA_STORE_CONSENT_OPT_OUT))
    return g_strdup(_("no record"));
  when = row->at > 0 ? g_date_time_new_from_unix_local(row->at) : NULL;
  date = when != NULL ? g_date_time_format(when, "%Y-%m-%d %H:%M") : g_strdup("?");
  /* TRANSLATORS: consent state, then its source and time: "opted in (recorded by an agent, 2026-12-07 17:40)" */
  return g_strdup_printf(row->state == WA_STORE_CONSENT_OPT_IN ? _("opted in (%s, %s)") : _("opted out (%s, %s)"),
                         source_text(row->source), date);
}

char *
wa_consent_verdict_text(WaConsentVerdict verdict, const WaConsentFacts *facts, char prefix)
{
  g_autofree char *row = NULL;

  switch (verdict) {
  case WA_CONSENT_ALLOWED:
    return NULL;
  case WA_CONSENT_SUPPRESSED_ERASURE:
    return g_strdup(_("Not sent: this customer's data was erased and the number is on the suppression list; "
                      "nothing is sent to it."));
  case WA_CONSENT_SUPPRESSED_OPT_OUT:
    return g_strdup(_("Not sent: this number is on the suppression list (the customer opted out); nothing is "
                      "sent to it."));
  case WA_CONSENT_OPTED_OUT_MARKETING:
    row = wa_consent_row_text(facts != NULL ? &facts->marketing : NULL);
    return g_strdup_printf(_("Not sent: the customer opted out of marketing messages: %s. Only the customer "
                             "can opt in again (record it with %coptin marketing once they did)."),
                           row, prefix);
  case WA_CONSENT_NO_MARKETING_OPT_IN:
    return g_strdup_printf(_("Not sent: marketing templates need the customer's opt-in for marketing, and none is "
                             "recorded (a message from the customer is no consent to marketing). Record it with "
                             "%coptin marketing once the customer agreed."),
                           prefix);
  case WA_CONSENT_OPTED_OUT_UTILITY:
    row = wa_consent_row_text(facts != NULL ? &facts->utility : NULL);
    return g_strdup_printf(_("Not sent: the customer opted out of utility messages: %s. Record a new opt-in with "
                             "%coptin utility once they agreed."),
                           row, prefix);
  case WA_CONSENT_NO_UTILITY_OPT_IN:
    return g_strdup_printf(_("Not sent: utility templates need the customer's opt-in on this account (option "
                             "\"utility_consent\") while their service window is closed, and none is recorded. "
                             "Record it with %coptin utility once the customer agreed."),
                           prefix);
  case WA_CONSENT_OPTED_OUT_EVERYTHING:
    return g_strdup_printf(_("Not sent: the customer opted out of all messages from this business. Record a new "
                             "opt-in with %coptin once they agreed."),
                           prefix);
  }
  return g_strdup(_("Not sent: no consent."));
}

/* ---- keywords ---------------------------------------------------------------- */

static gboolean
is_edge(gunichar c)
{
  return g_unichar_isspace(c) || g_unichar_ispunct(c);
}

char *
wa_consent_fold(const char *text)
{
  g_autofree char *decomposed = NULL;
  g_autofree char *folded = NULL;
  GString *out;
  gboolean space = FALSE;

  if (text == NULL || !g_utf8_validate(text, -1, NULL))
    return g_strdup("");
  decomposed = g_utf8_normalize(text, -1, G_NORMALIZE_ALL);
  if (decomposed == NULL)
    return g_strdup("");
  folded = g_utf8_casefold(decomposed, -1);
  out = g_string_new(NULL);
  for (const char *p = folded; *p != '\0'; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    GUnicodeType type = g_unichar_type(c);

    /* accents (and other combining marks) go */
    if (type == G_UNICODE_NON_SPACING_MARK || type == G_UNICODE_SPACING_MARK || type == G_UNICODE_ENCLOSING_MARK)
      continue;
    if (g_unichar_isspace(c)) {
      space = out->len > 0;
      continue;
    }
    if (space)
      g_string_append_c(out, ' ');
    space = FALSE;
    g_string_append_unichar(out, c);
  }
  /* punctuation at both ends: "Stop!", "¡stop!", "(stop)" */
  while (out->len > 0) {
    const char *last = g_utf8_find_prev_char(out->str, out->str + out->len);

    if (last == NULL || !is_edge(g_utf8_get_char(last)))
      break;
    g_string_truncate(out, (gsize) (last - out->str));
  }
  while (out->len > 0 && is_edge(g_utf8_get_char(out->str)))
    g_string_erase(out, 0, g_utf8_next_char(out->str) - out->str);
  return g_string_free(out, FALSE);
}

gboolean
wa_consent_keyword_match(const char *message, const char *words)
{
  g_autofree char *folded = NULL;
  g_auto(GStrv) list = NULL;

  if (message == NULL || words == NULL)
    return FALSE;
  folded = wa_consent_fold(message);
  if (*folded == '\0')
    return FALSE;
  list = g_strsplit_set(words, ",;", -1);
  for (guint i = 0; list[i] != NULL; i++) {
    g_autofree char *word = wa_consent_fold(list[i]);

    if (*word != '\0' && g_str_equal(word, folded))
      return TRUE;
  }
  return FALSE;
}
