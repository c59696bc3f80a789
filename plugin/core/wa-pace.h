/* wa-pace.h: pacing arithmetic for sends to the Cloud API: the number's
 * throughput, the pair limit per customer, slow-down and pauses on the
 * API's rate errors, priority of the agent's chat over campaigns, and the
 * portfolio's daily limit of customers reached with templates.
 *
 * Pure and deterministic: every answer is computed from the injected WaClock
 * (monotonic time for the throughput, pair limit and pauses; wall time for
 * the portfolio's 24 hours, whose records are kept in the store as Unix
 * seconds). Nothing here sends, sleeps or keeps timers: the caller asks
 * "when may the next campaign send go" and arms its own timer.
 *
 * Throughput (WaPace, one per phone number): a token bucket. Tokens accrue
 * at the current rate (messages per second: 80 by default, 1,000 or 20 as
 * the account is configured), up to a depth of a tenth of a second's worth
 * (at least 1), so a burst never exceeds what the API allows in that time.
 * Taking a token does not wait for the previous send's answer: many
 * requests may be in flight, so that the rate, not the round trip, sets the
 * pace (wa_pace_in_flight_for() says how many are needed).
 *
 * Priority: the agent's own messages never wait for tokens: each is charged
 * (wa_pace_charge) even when the bucket is empty, and campaign sends wait
 * until the debt is paid back and a whole token is there. So the agent's
 * traffic goes first, and the total still keeps to the rate.
 *
 * Errors:
 *  - 130429 (throughput reached): wa_pace_throttled() halves the current rate
 *    (not below 1/s) and empties the bucket. Recovery: every
 *    WA_PACE_RECOVER_INTERVAL_S seconds without another 130429, the rate
 *    grows by a tenth of the configured rate (at least 1/s), back up to the
 *    configured rate (additive increase, multiplicative decrease).
 *  - 131057 (account in maintenance, e.g. a throughput upgrade):
 *    wa_pace_maintenance() pauses campaign sends for
 *    WA_PACE_MAINTENANCE_S seconds (60); the agent's sends meet the error
 *    themselves and the outbox tries them again.
 *  - 131056 (pair rate limit): wa_pace_pair_hit() makes that customer wait
 *    4^X seconds, X the number of consecutive hits before this one (1 s, 4 s,
 *    16 s, ...; X capped at WA_PACE_PAIR_MAX_EXPONENT); wa_pace_pair_ok()
 *    after an accepted send resets X. Other customers are not delayed.
 *
 * Portfolio (WaPortfolio, reference-counted, one per business: every account
 * of the same business shares it): the unique customers reached with a
 * template outside an open service window in the last 24 hours (rolling),
 * against the limit (250, 2,000, 10,000, 100,000, or 0 = unlimited). A
 * customer already counted may be messaged again without using a new slot.
 * The store keeps the records (wa_store_portfolio_reach()); the plugin loads
 * them at sign-on with wa_portfolio_note().
 *
 * Must not: read the system clock, allocate per send beyond the pair and
 * portfolio tables (a pair entry goes with wa_pace_pair_ok()), or log
 * customer keys. */
#pragma once

#include <glib.h>

#include "wa-clock.h"

G_BEGIN_DECLS

#define WA_PACE_RATE_DEFAULT 80  /* messages per second of a registered number */
#define WA_PACE_RATE_HIGH 1000   /* after the automatic upgrade */
#define WA_PACE_RATE_COEXIST 20  /* numbers shared with the WhatsApp Business app */
#define WA_PACE_MAINTENANCE_S 60 /* pause on 131057 */
#define WA_PACE_RECOVER_INTERVAL_S 5
#define WA_PACE_PAIR_MAX_EXPONENT 6 /* the pair wait stops growing at 4^6 s (about 68 min) */

typedef struct _WaPace WaPace;

/* A limiter at @rate messages per second (> 0) on @clock (borrowed; must
 * outlive it). The bucket starts full. */
WaPace *wa_pace_new(WaClock *clock, guint rate);
void wa_pace_free(WaPace *pace);

/* A new configured rate (the account option, or the API's throughput
 * level); a slow-down in progress recovers towards it. */
void wa_pace_set_rate(WaPace *pace, guint rate);
guint wa_pace_configured_rate(WaPace *pace);
/* The rate now (lower than configured after 130429). */
guint wa_pace_current_rate(WaPace *pace);

/* Monotonic time (µs, wa_clock_mono_us) from which a campaign send may
 * go; now or earlier means at once. */
gint64 wa_pace_next_at(WaPace *pace);
/* Takes a token for a campaign send when one is allowed now (TRUE); FALSE
 * (nothing taken) when the caller must wait until wa_pace_next_at(). */
gboolean wa_pace_try_take(WaPace *pace);
/* Takes a token for a send that goes now without asking (the agent's chat
 * is never held), or that wa_pace_next_at() allowed: even when the bucket
 * has none left, so campaign sends wait until that debt is paid back and
 * the number's total stays at the rate. */
void wa_pace_charge(WaPace *pace);

/* 130429: halves the current rate and empties the bucket (see above). */
void wa_pace_throttled(WaPace *pace);
/* 131057: no campaign send for WA_PACE_MAINTENANCE_S seconds. */
void wa_pace_maintenance(WaPace *pace);
/* Monotonic µs until which sends are paused (0 when not paused). */
gint64 wa_pace_paused_until(WaPace *pace);

/* A send's error as pacing sees it: 130429 (wa_pace_throttled), 131056 for
 * customer @key (wa_pace_pair_hit) and 131057 (wa_pace_maintenance) are
 * applied and answer TRUE, with *@retry_at (monotonic µs) the earliest time
 * the same send may go again (these errors mean it did not go out). Any other
 * code changes nothing and answers FALSE: the outbox's own rules decide
 * (131048, 131049, 131050, 131026 are final, recorded without retry). */
gboolean wa_pace_rate_error(WaPace *pace, gint code, const char *key, gint64 *retry_at);

/* How many requests must be in flight at @rate for a round trip of
 * @round_trip_us so that the rate, not the latency, sets the pace: rate ×
 * round trip, rounded up, plus a quarter for jitter, at least 1. */
guint wa_pace_in_flight_for(guint rate, gint64 round_trip_us);

/* 131056 for customer @key (any stable string: the customer id): the wait
 * in µs before their next send (4^X s), and that customer's next_at moves. */
gint64 wa_pace_pair_hit(WaPace *pace, const char *key);
/* A send to @key was accepted, or ended for good: X back to 0, the entry gone. */
void wa_pace_pair_ok(WaPace *pace, const char *key);
/* Monotonic µs from which @key may get a send (earlier than now: at once). */
gint64 wa_pace_pair_next_at(WaPace *pace, const char *key);
/* Consecutive 131056 hits of @key (X). */
guint wa_pace_pair_hits(WaPace *pace, const char *key);

/* ---- portfolio ---- */

typedef struct _WaPortfolio WaPortfolio;

#define WA_PORTFOLIO_WINDOW_S (24 * 3600)

/* @limit unique customers per 24 hours (0 = unlimited), on @clock (borrowed). */
WaPortfolio *wa_portfolio_new(WaClock *clock, guint limit);
WaPortfolio *wa_portfolio_ref(WaPortfolio *portfolio);
void wa_portfolio_unref(WaPortfolio *portfolio);

/* The limit of a tier as the API names it (whatsapp_business_manager_messaging_limit
 * or the legacy messaging_limit_tier): TIER_50, TIER_250, TIER_1K, TIER_2K,
 * TIER_10K, TIER_100K, TIER_UNLIMITED (0); FALSE for anything else
 * (TIER_NOT_SET included). */
gboolean wa_portfolio_tier_limit(const char *tier, guint *limit);
void wa_portfolio_set_limit(WaPortfolio *portfolio, guint limit);
guint wa_portfolio_limit(WaPortfolio *portfolio);

/* Customer @key was reached at @at (Unix s; 0 = now): counted for 24 hours
 * from their latest reach. Records older than 24 hours are ignored. */
void wa_portfolio_note(WaPortfolio *portfolio, const char *key, gint64 at);
/* Unique customers reached in the last 24 hours. */
guint wa_portfolio_count(WaPortfolio *portfolio);
/* Whether a template outside the window may go to @key now: they were
 * counted already, or the count is below the limit (or no limit). */
gboolean wa_portfolio_allows(WaPortfolio *portfolio, const char *key);
/* When full: the wall time (Unix s) at which the oldest reach expires and a
 * slot frees; 0 when not full. */
gint64 wa_portfolio_next_slot_at(WaPortfolio *portfolio);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaPace, wa_pace_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaPortfolio, wa_portfolio_unref)

G_END_DECLS
