/* wa-campaign.c: the pure parts of campaigns, see wa-campaign.h. */
#include "wa-campaign.h"

#include <string.h>

#include "wa-csv.h"
#include "wa-i18n.h"

G_DEFINE_QUARK(wa - campaign - error - quark, wa_campaign_error)

void
wa_campaign_args_free(WaCampaignArgs *args)
{
  if (args == NULL)
    return;
  g_free(args->name);
  g_free(args->language);
  g_free(args->file);
  g_free(args->group);
  g_strfreev(args->selection);
  g_free(args->values);
  g_free(args->start);
  g_free(args);
}

/* The next word of *@p (skipping blanks), or NULL at the end. */
static char *
next_word(const char **p)
{
  const char *s = *p;
  const char *start;

  while (g_ascii_isspace(*s))
    s++;
  if (*s == '\0') {
    *p = s;
    return NULL;
  }
  start = s;
  while (*s != '\0' && !g_ascii_isspace(*s))
    s++;
  *p = s;
  return g_strndup(start, s - start);
}

/* en, pt_BR, zh_Hant_HK ...: 2 or 3 lowercase letters, then _Parts */
static gboolean
looks_like_language(const char *word)
{
  gsize n = 0;

  while (g_ascii_islower(word[n]))
    n++;
  if (n < 2 || n > 3)
    return FALSE;
  for (; word[n] != '\0'; n++)
    if (!g_ascii_isalpha(word[n]) && word[n] != '_')
      return FALSE;
  return word[2] == '\0' || word[2] == '_' || word[3] == '\0' || word[3] == '_';
}

static gboolean
syntax_error(GError **error)
{
  g_set_error_literal(error, WA_CAMPAIGN_ERROR, WA_CAMPAIGN_ERROR_SYNTAX,
                      _("Use: notify TEMPLATE [LANG] FILE.csv, notify TEMPLATE [LANG] @GROUP [V1 | V2 ...], or "
                        "notify TEMPLATE [LANG] +NUMBER,+NUMBER,... [V1 | V2 ...] (numbers or buddy names, "
                        "\"quoted\" when they have blanks)"));
  return FALSE;
}

/* The group and the values after it, from @s (which starts with '@'). */
static gboolean
parse_group(WaCampaignArgs *args, const char *s, GError **error)
{
  s++;
  if (*s == '"') {
    const char *end = strchr(s + 1, '"');

    if (end == NULL || end == s + 1)
      return syntax_error(error);
    args->group = g_strndup(s + 1, end - s - 1);
    s = end + 1;
  } else {
    const char *start = s;

    while (*s != '\0' && !g_ascii_isspace(*s))
      s++;
    if (s == start)
      return syntax_error(error);
    args->group = g_strndup(start, s - start);
  }
  args->values = g_strstrip(g_strdup(s));
  return TRUE;
}

/* Reads a selection at @s: items separated by commas, each a word or a
 * "quoted name" (blanks allowed inside); *@end is where it stops. Returns the
 * items (empty ones dropped) and sets *@commas; NULL on an unterminated quote. */
static GPtrArray *
scan_selection(const char *s, const char **end, guint *commas)
{
  g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func(g_free);

  *commas = 0;
  for (;;) {
    const char *start = s;

    if (*s == '"') {
      const char *close = strchr(s + 1, '"');

      if (close == NULL)
        return NULL;
      if (close > s + 1)
        g_ptr_array_add(items, g_strndup(s + 1, close - s - 1));
      s = close + 1;
    } else {
      while (*s != '\0' && *s != ',' && !g_ascii_isspace(*s))
        s++;
      if (s > start)
        g_ptr_array_add(items, g_strndup(start, s - start));
    }
    if (*s != ',')
      break;
    (*commas)++;
    s++;
  }
  *end = s;
  return g_steal_pointer(&items);
}

/* @s starts a selection: '+' or a quote first, or items with a comma between
 * them, and not one word ending in ".csv" (a file). */
static gboolean
is_selection(const char *s)
{
  const char *end;
  guint commas;
  g_autoptr(GPtrArray) items = scan_selection(s, &end, &commas);
  gsize n = end - s;

  if (*s == '+' || *s == '"')
    return TRUE;
  if (items == NULL || commas == 0)
    return FALSE;
  return !(n >= 4 && g_ascii_strncasecmp(end - 4, ".csv", 4) == 0);
}

/* The recipients of a selection and the values after it. */
static gboolean
parse_selection(WaCampaignArgs *args, const char *s, GError **error)
{
  const char *end;
  guint commas;
  g_autoptr(GPtrArray) items = scan_selection(s, &end, &commas);

  if (items == NULL || items->len == 0 || (*end != '\0' && !g_ascii_isspace(*end)))
    return syntax_error(error);
  g_ptr_array_add(items, NULL);
  args->selection = (char **) g_ptr_array_free(g_steal_pointer(&items), FALSE);
  args->values = g_strstrip(g_strdup(end));
  return TRUE;
}

static gboolean
read_hhmm(const char *hhmm, int *hour, int *minute)
{
  if (strlen(hhmm) != 5 || !g_ascii_isdigit(hhmm[0]) || !g_ascii_isdigit(hhmm[1]) || hhmm[2] != ':' ||
      !g_ascii_isdigit(hhmm[3]) || !g_ascii_isdigit(hhmm[4]))
    return FALSE;
  *hour = (hhmm[0] - '0') * 10 + (hhmm[1] - '0');
  *minute = (hhmm[3] - '0') * 10 + (hhmm[4] - '0');
  return *hour < 24 && *minute < 60;
}

gboolean
wa_campaign_start_at(const char *hhmm, gint64 now, GTimeZone *tz, gint64 *start_at)
{
  g_autoptr(GDateTime) utc = g_date_time_new_from_unix_utc(now);
  g_autoptr(GDateTime) local = NULL;
  g_autoptr(GDateTime) at = NULL;
  int hour, minute;

  if (hhmm == NULL || !read_hhmm(hhmm, &hour, &minute) || utc == NULL)
    return FALSE;
  local = tz != NULL ? g_date_time_to_timezone(utc, tz) : g_date_time_to_local(utc);
  at = g_date_time_new(g_date_time_get_timezone(local), g_date_time_get_year(local), g_date_time_get_month(local),
                       g_date_time_get_day_of_month(local), hour, minute, 0);
  if (at == NULL)
    return FALSE;
  if (g_date_time_to_unix(at) <= now) {
    GDateTime *tomorrow = g_date_time_add_days(at, 1);

    g_date_time_unref(at);
    at = tomorrow;
  }
  *start_at = g_date_time_to_unix(at);
  return TRUE;
}

WaCampaignArgs *
wa_campaign_args_parse(const char *text, GError **error)
{
  g_autoptr(WaCampaignArgs) args = g_new0(WaCampaignArgs, 1);
  g_autofree char *copy = g_strstrip(g_strdup(text != NULL ? text : ""));
  const char *p = copy;
  gsize len = strlen(copy);
  int hour, minute;

  /* a trailing "at HH:MM" */
  if (len > 9 && g_ascii_isspace(copy[len - 9]) && g_ascii_strncasecmp(copy + len - 8, "at ", 3) == 0 &&
      read_hhmm(copy + len - 5, &hour, &minute)) {
    args->start = g_strdup(copy + len - 5);
    copy[len - 9] = '\0';
  }
  const char *rest;
  g_autofree char *second = NULL;

  args->name = next_word(&p);
  if (args->name == NULL)
    return syntax_error(error), NULL;
  rest = p;
  second = next_word(&p);
  if (second == NULL)
    return syntax_error(error), NULL;
  if (second[0] != '@' && looks_like_language(second)) {
    const char *after = p;

    while (g_ascii_isspace(*after))
      after++;
    if (*after != '\0') {
      args->language = g_steal_pointer(&second);
      rest = after;
    }
  }
  while (g_ascii_isspace(*rest))
    rest++;
  if (*rest == '@') {
    if (!parse_group(args, rest, error))
      return NULL;
  } else if (is_selection(rest)) {
    if (!parse_selection(args, rest, error))
      return NULL;
  } else {
    args->file = g_strstrip(g_strdup(rest));
    if (*args->file == '\0')
      return syntax_error(error), NULL;
  }
  return g_steal_pointer(&args);
}

const char *
wa_campaign_consent_reason(WaConsentVerdict verdict)
{
  switch (verdict) {
  case WA_CONSENT_ALLOWED:
    return NULL;
  case WA_CONSENT_SUPPRESSED_ERASURE:
  case WA_CONSENT_SUPPRESSED_OPT_OUT:
    return "suppressed";
  case WA_CONSENT_OPTED_OUT_MARKETING:
  case WA_CONSENT_OPTED_OUT_UTILITY:
  case WA_CONSENT_OPTED_OUT_EVERYTHING:
    return "opted-out";
  case WA_CONSENT_NO_MARKETING_OPT_IN:
  case WA_CONSENT_NO_UTILITY_OPT_IN:
  default:
    return "no-consent";
  }
}

char *
wa_campaign_closed_country(const char *to, const char *codes)
{
  g_auto(GStrv) parts = NULL;

  if (to == NULL || codes == NULL)
    return NULL;
  if (*to == '+')
    to++;
  for (const char *s = to; *s != '\0'; s++)
    if (!g_ascii_isdigit(*s))
      return NULL;
  parts = g_strsplit(codes, ",", -1);
  for (guint i = 0; parts[i] != NULL; i++) {
    const char *code = g_strstrip(parts[i]);
    gsize n;

    if (*code == '+')
      code++;
    n = strlen(code);
    if (n == 0 || n > 4 || strspn(code, "0123456789") != n)
      continue;
    if (strlen(to) > n && strncmp(to, code, n) == 0)
      return g_strdup(code);
  }
  return NULL;
}

const char *
wa_campaign_pricing_category(const char *category)
{
  if (category == NULL)
    return NULL;
  if (g_ascii_strncasecmp(category, "MARKETING", 9) == 0)
    return "marketing";
  if (g_ascii_strcasecmp(category, "UTILITY") == 0)
    return "utility";
  if (g_ascii_strcasecmp(category, "AUTHENTICATION") == 0)
    return "authentication";
  return NULL;
}

int
wa_campaign_chat_id(const char *campaign_id)
{
  return WA_CAMPAIGN_CHAT_ID_BASE + 1 + (int) (g_str_hash(campaign_id) % (G_MAXINT - WA_CAMPAIGN_CHAT_ID_BASE - 1));
}

gboolean
wa_campaign_chat_id_is_campaign(int id)
{
  return id > WA_CAMPAIGN_CHAT_ID_BASE;
}

char *
wa_campaign_chat_name(const char *campaign_id, const char *name)
{
  return g_strdup_printf(_("Campaign %.8s: %s"), campaign_id, name);
}

char *
wa_campaign_progress_text(guint sent, guint total, guint failed, guint skipped, double rate, gint64 eta_s)
{
  GString *s = g_string_new(NULL);

  g_string_append_printf(s, _("Sent %u/%u (%u %%)"), sent, total,
                         total > 0 ? (guint) ((guint64) sent * 100 / total) : 100);
  if (rate >= 0)
    g_string_append_printf(s, _(", %.0f/s"), rate);
  g_string_append_printf(s, ngettext(", %u failed", ", %u failed", failed), failed);
  g_string_append_printf(s, ngettext(", %u skipped", ", %u skipped", skipped), skipped);
  if (eta_s >= 0)
    g_string_append_printf(s, _(", about %d s left"), (int) MIN(eta_s, G_MAXINT));
  return g_string_free(s, FALSE);
}

const char *
wa_campaign_final_status(const WaStoreRecipient *recipient)
{
  switch (recipient->state) {
  case WA_STORE_RECIPIENT_PENDING:
    return "pending";
  case WA_STORE_RECIPIENT_SKIPPED:
    return "skipped";
  case WA_STORE_RECIPIENT_SENDING:
    return "sending";
  case WA_STORE_RECIPIENT_UNCERTAIN:
    return "uncertain";
  case WA_STORE_RECIPIENT_FAILED:
    return "failed";
  case WA_STORE_RECIPIENT_SENT:
  default:
    /* the message's own status when a webhook told it */
    if (recipient->status == WA_STORE_STATUS_FAILED)
      return "failed";
    if (recipient->status >= WA_STORE_STATUS_READ)
      return "read";
    if (recipient->status == WA_STORE_STATUS_DELIVERED)
      return "delivered";
    return "sent";
  }
}

void
wa_campaign_report_header(GString *out)
{
  const char *const header[] = {"recipient", "message_id", "status", "code", "pricing_category"};

  wa_csv_append_row(out, header, G_N_ELEMENTS(header), ',');
}

void
wa_campaign_report_row(GString *out, const char *to, const WaStoreRecipient *recipient, const char *pricing_default)
{
  g_autofree char *code = NULL;
  const char *status = wa_campaign_final_status(recipient);
  const char *fields[5];

  if (recipient->state == WA_STORE_RECIPIENT_SKIPPED)
    code = g_strdup(recipient->reason);
  else if (recipient->error_code != 0)
    code = g_strdup_printf("%d", recipient->error_code);
  fields[0] = to;
  fields[1] = recipient->wamid;
  fields[2] = status;
  fields[3] = code;
  fields[4] = recipient->state == WA_STORE_RECIPIENT_SKIPPED ? NULL
              : recipient->pricing != NULL                   ? recipient->pricing
                                                             : pricing_default;
  wa_csv_append_row(out, fields, G_N_ELEMENTS(fields), ',');
}
