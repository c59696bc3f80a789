/* wa-consent.h: whether a template may go to a customer, from what the
 * consent ledger and the suppression list say about them; the opt-out
 * keywords and payloads customers send; the words of /optin and /optout.
 * Pure logic: the plugin reads the store and asks, these functions answer.
 *
 * The rules (README, "Consent"):
 * - Scopes are "marketing" and "utility". Each customer's latest ledger row
 *   per scope counts; no row means unknown.
 * - MARKETING templates need a marketing opt-in. An inbound message is
 *   consent to service replies in the window, never to marketing.
 * - UTILITY templates follow the account's policy: by default they need a
 *   utility opt-in, except inside an open service window (a service reply to
 *   a customer who wrote); with "not required" they go unless the customer
 *   opted out of utility.
 * - AUTHENTICATION templates (one-time codes the customer asked for) go
 *   unless the customer opted out of every scope.
 * - A category this version does not know is treated as MARKETING.
 * - A suppressed number (erased, or put on the suppression list) counts as
 *   opted out of everything: nothing goes.
 *
 * Must not: read the store, a clock or the environment, or include libpurple. */
#pragma once

#include <glib.h>

#include "wa-store.h"

G_BEGIN_DECLS

#define WA_CONSENT_SCOPE_MARKETING "marketing"
#define WA_CONSENT_SCOPE_UTILITY "utility"

/* Ledger sources this plugin records (plaintext in the store: never personal data). */
#define WA_CONSENT_SOURCE_AGENT "agent"
#define WA_CONSENT_SOURCE_KEYWORD "keyword"
#define WA_CONSENT_SOURCE_BUTTON "button"
#define WA_CONSENT_SOURCE_PREFERENCES "user_preferences"
#define WA_CONSENT_SOURCE_API "api"
#define WA_CONSENT_SOURCE_IMPORT "import"

/* The Cloud API error that says a customer stopped marketing messages. */
#define WA_CONSENT_ERROR_OPTED_OUT 131050

/* Scopes as flags, for /optout all and the ledger reads. */
typedef enum {
  WA_CONSENT_MARKETING = 1 << 0,
  WA_CONSENT_UTILITY = 1 << 1,
  WA_CONSENT_ALL = WA_CONSENT_MARKETING | WA_CONSENT_UTILITY,
} WaConsentScopes;

/* "marketing", "utility" (and with @allow_all, "all"), case ignored; 0 for
 * anything else. NULL or "" gives @fallback. */
WaConsentScopes wa_consent_scopes_parse(const char *word, gboolean allow_all, WaConsentScopes fallback);
/* The ledger's scope name of one flag (MARKETING or UTILITY). */
const char *wa_consent_scope_name(WaConsentScopes scope);

typedef enum {
  WA_CONSENT_CATEGORY_MARKETING,
  WA_CONSENT_CATEGORY_UTILITY,
  WA_CONSENT_CATEGORY_AUTHENTICATION,
} WaConsentCategory;

/* Meta's template category ("MARKETING", "UTILITY", "AUTHENTICATION",
 * case ignored; "MARKETING_LITE" is marketing); anything else, NULL
 * included, is MARKETING (the strictest), with @known FALSE. */
WaConsentCategory wa_consent_category_parse(const char *category, gboolean *known);

/* The account option "utility_consent". */
typedef enum {
  WA_CONSENT_UTILITY_REQUIRED = 0, /* the default: an opt-in, or an open service window */
  WA_CONSENT_UTILITY_NOT_REQUIRED, /* unless the customer opted out of utility */
} WaConsentUtilityPolicy;

#define WA_CONSENT_UTILITY_REQUIRED_WORD "required"
#define WA_CONSENT_UTILITY_NOT_REQUIRED_WORD "not_required"
/* "required" (and NULL or anything unknown) or "not_required". */
WaConsentUtilityPolicy wa_consent_utility_policy_parse(const char *value);

/* One scope's latest ledger row: state 0 when there is none. */
typedef struct {
  WaStoreConsentState state; /* 0: unknown */
  const char *source;        /* the row's source, or NULL */
  gint64 at;                 /* the row's time (Unix s), 0 when none */
} WaConsentRow;

/* What is known about the customer when a template is about to go. */
typedef struct {
  WaConsentRow marketing;
  WaConsentRow utility;
  gboolean suppressed;
  WaStoreSuppressReason suppress_reason; /* when suppressed */
  gboolean window_open;                  /* the customer's service window is open */
} WaConsentFacts;

typedef enum {
  WA_CONSENT_ALLOWED = 0,
  WA_CONSENT_SUPPRESSED_ERASURE,   /* erased: the number is on the suppression list */
  WA_CONSENT_SUPPRESSED_OPT_OUT,   /* on the suppression list as opted out */
  WA_CONSENT_OPTED_OUT_MARKETING,  /* the latest marketing row is an opt-out */
  WA_CONSENT_NO_MARKETING_OPT_IN,  /* no marketing row */
  WA_CONSENT_OPTED_OUT_UTILITY,    /* the latest utility row is an opt-out */
  WA_CONSENT_NO_UTILITY_OPT_IN,    /* no utility row, the policy wants one, the window is closed */
  WA_CONSENT_OPTED_OUT_EVERYTHING, /* authentication: opted out of every scope */
} WaConsentVerdict;

/* The decision for a template of @category. */
WaConsentVerdict wa_consent_decide(WaConsentCategory category, const WaConsentFacts *facts,
                                   WaConsentUtilityPolicy utility);

/* A translated sentence for the agent saying why @verdict refused the send
 * and what to do ("Not sent: ..."), or NULL for ALLOWED. @prefix is the
 * command prefix the agent types ('/', or '!' in BitlBee). Free with g_free. */
char *wa_consent_verdict_text(WaConsentVerdict verdict, const WaConsentFacts *facts, char prefix);

/* A translated description of one scope's row for /consent: "opted in
 * (agent, 2026-12-07 17:40)", "opted out (...)" or "no record". Times in
 * local time. Free with g_free. */
char *wa_consent_row_text(const WaConsentRow *row);

/* ---- what customers send ---------------------------------------------------- */

/* The comparable form of @text: Unicode-normalised (NFKD) with combining
 * marks removed, case-folded, with whitespace and punctuation removed from
 * both ends and inner runs of whitespace made one space. Free with g_free. */
char *wa_consent_fold(const char *text);

/* Whether @message is, as a whole, one of the comma-separated @words
 * (compared folded: "Stop!", " stop ", "STÖP" and "Stopp." match the words
 * STOP and STOPP; "please stop" and "STOP it" do not). An empty list matches
 * nothing. */
gboolean wa_consent_keyword_match(const char *message, const char *words);

G_END_DECLS
