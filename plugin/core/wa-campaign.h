/* wa-campaign.h: the pure parts of campaigns (notifications to many
 * customers): the /notify arguments, the reason codes of skipped
 * recipients, the pricing category of a template category, the chat id
 * space of campaign conversations, the progress line and the report's rows.
 * Must not: include libpurple, send, or store anything. */
#pragma once

#include <glib.h>

#include "wa-consent.h"
#include "wa-store.h"

G_BEGIN_DECLS

#define WA_CAMPAIGN_ERROR (wa_campaign_error_quark())
GQuark wa_campaign_error_quark(void);

typedef enum {
  WA_CAMPAIGN_ERROR_SYNTAX, /* the arguments do not have the command's form */
} WaCampaignError;

/* /notify TEMPLATE [LANG] FILE.csv  or  /notify TEMPLATE [LANG] @GROUP [V | V ...]
 * or  /notify TEMPLATE [LANG] R1,R2,... [V | V ...]  (a selection), each
 * followed by "at HH:MM" (a scheduled start, local time).
 * GROUP is one word or "a quoted name"; the values after it fill the
 * template's placeholders for every member. A selection is numbers or buddy
 * names (or aliases) separated by commas, without blanks around them; a name
 * with blanks is quoted ("Anna Schmidt"). It starts with '+' or a quote, or
 * holds a comma (and is not one word ending in ".csv", a file); empty items
 * are dropped, so one recipient alone is +NUMBER, "NAME" or NAME, . LANG is taken when the second
 * word looks like a language code (en, en_US, pt_BR, ...) and more follows. */
typedef struct {
  char *name;
  char *language;   /* NULL when not given */
  char *file;       /* the CSV file, or NULL */
  char *group;      /* the buddy group, or NULL */
  char **selection; /* the selection: its recipients (numbers or buddy names), or NULL */
  char *values;     /* group and selection forms: the text after them ("" when none) */
  char *start;      /* "HH:MM" from a trailing "at HH:MM", or NULL: at once */
} WaCampaignArgs;

void wa_campaign_args_free(WaCampaignArgs *args);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaCampaignArgs, wa_campaign_args_free)
WaCampaignArgs *wa_campaign_args_parse(const char *text, GError **error);

/* The next @hhmm ("HH:MM", 00:00 to 23:59) in @tz after Unix time @now:
 * today's when it is still ahead, else tomorrow's. FALSE when @hhmm does
 * not read. */
gboolean wa_campaign_start_at(const char *hhmm, gint64 now, GTimeZone *tz, gint64 *start_at);

/* The reason code (plaintext, kept in the store and the report) of a
 * consent refusal; NULL for WA_CONSENT_ALLOWED. */
const char *wa_campaign_consent_reason(WaConsentVerdict verdict);

/* The calling code in @codes (comma-separated country calling codes such as
 * "98, +7") that number @to (digits, maybe with a leading '+') starts with, as
 * a new string; NULL when none does, for a BSUID or anything not a number.
 * Campaigns skip such recipients of MARKETING templates ("closed-country"). */
char *wa_campaign_closed_country(const char *to, const char *codes);

/* The pricing category Meta bills a template of @category under
 * ("marketing", "utility", "authentication"); NULL when unknown. */
const char *wa_campaign_pricing_category(const char *category);

/* Campaign chats have ids of their own, above those of WhatsApp groups
 * (1 .. 2^30): 2^30 + 1 .. 2^31 - 1, from the campaign's id. */
#define WA_CAMPAIGN_CHAT_ID_BASE 0x40000000
int wa_campaign_chat_id(const char *campaign_id);
gboolean wa_campaign_chat_id_is_campaign(int id);
/* "Campaign 1a2b3c4d: NAME": the chat's name (the id's first 8 digits). */
char *wa_campaign_chat_name(const char *campaign_id, const char *name);

/* "Sent 120/300 (40 %), 38/s, 2 failed, 5 skipped, about 5 s left": @rate
 * in messages per second (< 0: not known yet), @eta_s < 0: not known. */
char *wa_campaign_progress_text(guint sent, guint total, guint failed, guint skipped, double rate, gint64 eta_s);

/* The report's final status of @recipient: "sent", "delivered", "read",
 * "failed", "uncertain", "skipped", "pending", "sending". */
const char *wa_campaign_final_status(const WaStoreRecipient *recipient);

/* The report's header row, then one row per recipient: recipient (@to),
 * message id (wamid), final status, error code (failed) or reason
 * (skipped), pricing category (the status's, else @pricing_default). */
void wa_campaign_report_header(GString *out);
void wa_campaign_report_row(GString *out, const char *to, const WaStoreRecipient *recipient,
                            const char *pricing_default);

G_END_DECLS
