/* wa-pace.c: pacing arithmetic (see wa-pace.h for the rules).
 *
 * Tokens are kept as integers in millionths of a token, so that accrual
 * (elapsed µs × messages per second) is exact and every answer is the same
 * on every machine for the same clock readings.
 *
 * Must not: read the system clock, keep timers, or log customer keys. */
#include "wa-pace.h"

#include <string.h>

#define MICRO G_GINT64_CONSTANT(1000000) /* one token, and µs per second */

typedef struct {
  guint hits;
  gint64 until; /* monotonic µs */
} PairState;

struct _WaPace {
  WaClock *clock;
  guint configured;
  guint current;
  gint64 tokens;      /* millionths of a token; negative: owed by CHAT sends */
  gint64 last_refill; /* monotonic µs */
  gint64 last_change; /* monotonic µs of the last slow-down or recovery step */
  gint64 paused_until;
  GHashTable *pairs; /* key -> PairState */
};

/* The bucket's depth at @rate: a tenth of a second's worth, at least one token. */
static gint64
depth(guint rate)
{
  return MAX((gint64) rate / 10, 1) * MICRO;
}

static void
refill(WaPace *pace)
{
  gint64 now = wa_clock_mono_us(pace->clock);

  if (now <= pace->last_refill)
    return;
  pace->tokens = MIN(pace->tokens + (now - pace->last_refill) * (gint64) pace->current, depth(pace->current));
  pace->last_refill = now;
  if (pace->current < pace->configured) {
    gint64 interval = (gint64) WA_PACE_RECOVER_INTERVAL_S * MICRO;
    gint64 steps = (now - pace->last_change) / interval;

    if (steps > 0) {
      guint step = MAX(pace->configured / 10, 1);
      gint64 rate = (gint64) pace->current + steps * step;

      pace->current = (guint) MIN(rate, (gint64) pace->configured);
      pace->last_change += steps * interval;
    }
  }
}

WaPace *
wa_pace_new(WaClock *clock, guint rate)
{
  WaPace *pace;

  g_return_val_if_fail(clock != NULL, NULL);
  pace = g_new0(WaPace, 1);
  pace->clock = clock;
  pace->configured = pace->current = MAX(rate, 1);
  pace->tokens = depth(pace->current);
  pace->last_refill = pace->last_change = wa_clock_mono_us(clock);
  pace->pairs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  return pace;
}

void
wa_pace_free(WaPace *pace)
{
  if (pace == NULL)
    return;
  g_hash_table_destroy(pace->pairs);
  g_free(pace);
}

void
wa_pace_set_rate(WaPace *pace, guint rate)
{
  g_return_if_fail(pace != NULL);
  refill(pace);
  rate = MAX(rate, 1);
  /* not slowed down: the new rate at once; slowed down: recover towards it */
  if (pace->current >= pace->configured || pace->current > rate)
    pace->current = rate;
  pace->configured = rate;
  pace->tokens = MIN(pace->tokens, depth(pace->current));
}

guint
wa_pace_configured_rate(WaPace *pace)
{
  return pace->configured;
}

guint
wa_pace_current_rate(WaPace *pace)
{
  refill(pace);
  return pace->current;
}

gint64
wa_pace_next_at(WaPace *pace)
{
  gint64 now, at;

  g_return_val_if_fail(pace != NULL, 0);
  refill(pace);
  now = wa_clock_mono_us(pace->clock);
  at = now;
  if (pace->tokens < MICRO) /* µs until a whole token accrued, rounded up */
    at = now + (MICRO - pace->tokens + pace->current - 1) / pace->current;
  return MAX(at, pace->paused_until);
}

gboolean
wa_pace_try_take(WaPace *pace)
{
  g_return_val_if_fail(pace != NULL, FALSE);
  if (wa_pace_next_at(pace) > wa_clock_mono_us(pace->clock))
    return FALSE;
  pace->tokens -= MICRO;
  return TRUE;
}

void
wa_pace_charge(WaPace *pace)
{
  g_return_if_fail(pace != NULL);
  refill(pace);
  pace->tokens -= MICRO;
}

void
wa_pace_throttled(WaPace *pace)
{
  g_return_if_fail(pace != NULL);
  refill(pace);
  pace->current = MAX(pace->current / 2, 1);
  pace->tokens = MIN(pace->tokens, 0);
  pace->last_change = wa_clock_mono_us(pace->clock);
}

void
wa_pace_maintenance(WaPace *pace)
{
  g_return_if_fail(pace != NULL);
  pace->paused_until = MAX(pace->paused_until, wa_clock_mono_us(pace->clock) + (gint64) WA_PACE_MAINTENANCE_S * MICRO);
}

gint64
wa_pace_paused_until(WaPace *pace)
{
  return pace->paused_until > wa_clock_mono_us(pace->clock) ? pace->paused_until : 0;
}

gboolean
wa_pace_rate_error(WaPace *pace, gint code, const char *key, gint64 *retry_at)
{
  g_return_val_if_fail(pace != NULL && retry_at != NULL, FALSE);
  switch (code) {
  case 130429:
    wa_pace_throttled(pace);
    *retry_at = wa_pace_next_at(pace);
    return TRUE;
  case 131056:
    g_return_val_if_fail(key != NULL, FALSE);
    wa_pace_pair_hit(pace, key);
    *retry_at = MAX(wa_pace_pair_next_at(pace, key), wa_pace_next_at(pace));
    return TRUE;
  case 131057:
    wa_pace_maintenance(pace);
    *retry_at = wa_pace_next_at(pace);
    return TRUE;
  default:
    return FALSE;
  }
}

guint
wa_pace_in_flight_for(guint rate, gint64 round_trip_us)
{
  gint64 n;

  if (round_trip_us <= 0)
    return 1;
  n = ((gint64) rate * round_trip_us + MICRO - 1) / MICRO;
  n += (n + 3) / 4;
  return (guint) CLAMP(n, 1, G_MAXUINT);
}

/* ---- pair limit ---- */

gint64
wa_pace_pair_hit(WaPace *pace, const char *key)
{
  PairState *state;
  gint64 wait = MICRO;

  g_return_val_if_fail(pace != NULL && key != NULL, 0);
  state = g_hash_table_lookup(pace->pairs, key);
  if (state == NULL) {
    state = g_new0(PairState, 1);
    g_hash_table_insert(pace->pairs, g_strdup(key), state);
  }
  for (guint x = 0; x < MIN(state->hits, WA_PACE_PAIR_MAX_EXPONENT); x++)
    wait *= 4;
  state->hits++;
  state->until = wa_clock_mono_us(pace->clock) + wait;
  return wait;
}

void
wa_pace_pair_ok(WaPace *pace, const char *key)
{
  g_return_if_fail(pace != NULL && key != NULL);
  g_hash_table_remove(pace->pairs, key);
}

gint64
wa_pace_pair_next_at(WaPace *pace, const char *key)
{
  PairState *state;

  g_return_val_if_fail(pace != NULL && key != NULL, 0);
  state = g_hash_table_lookup(pace->pairs, key);
  return state != NULL ? state->until : 0;
}

guint
wa_pace_pair_hits(WaPace *pace, const char *key)
{
  PairState *state;

  g_return_val_if_fail(pace != NULL && key != NULL, 0);
  state = g_hash_table_lookup(pace->pairs, key);
  return state != NULL ? state->hits : 0;
}
/* ---- portfolio ---- */

struct _WaPortfolio {
  gint ref;
  WaClock *clock;
  guint limit;
  GHashTable *reached; /* key -> gint64* latest reach (Unix s) */
  gint64 oldest;       /* no reach is older (G_MAXINT64: none): prune walks only when one may be out */
};

WaPortfolio *
wa_portfolio_new(WaClock *clock, guint limit)
{
  WaPortfolio *portfolio;

  g_return_val_if_fail(clock != NULL, NULL);
  portfolio = g_new0(WaPortfolio, 1);
  portfolio->ref = 1;
  portfolio->clock = clock;
  portfolio->limit = limit;
  portfolio->reached = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  portfolio->oldest = G_MAXINT64;
  return portfolio;
}

WaPortfolio *
wa_portfolio_ref(WaPortfolio *portfolio)
{
  g_return_val_if_fail(portfolio != NULL, NULL);
  portfolio->ref++;
  return portfolio;
}

void
wa_portfolio_unref(WaPortfolio *portfolio)
{
  if (portfolio == NULL || --portfolio->ref > 0)
    return;
  g_hash_table_destroy(portfolio->reached);
  g_free(portfolio);
}

gboolean
wa_portfolio_tier_limit(const char *tier, guint *limit)
{
  static const struct {
    const char *name;
    guint limit;
  } tiers[] = {
    {"TIER_50", 50},     {"TIER_250", 250},     {"TIER_1K", 1000},     {"TIER_2K", 2000},
    {"TIER_10K", 10000}, {"TIER_100K", 100000}, {"TIER_UNLIMITED", 0},
  };

  for (guint i = 0; tier != NULL && i < G_N_ELEMENTS(tiers); i++)
    if (strcmp(tier, tiers[i].name) == 0) {
      *limit = tiers[i].limit;
      return TRUE;
    }
  return FALSE;
}

void
wa_portfolio_set_limit(WaPortfolio *portfolio, guint limit)
{
  g_return_if_fail(portfolio != NULL);
  portfolio->limit = limit;
}

guint
wa_portfolio_limit(WaPortfolio *portfolio)
{
  return portfolio->limit;
}

/* Forgets reaches older than the window. Asked before every campaign send:
 * it walks the reaches only when the oldest of them is out of the window
 * (a walk per send cost O(recipients) each). */
static void
prune(WaPortfolio *portfolio)
{
  gint64 oldest = wa_clock_wall_s(portfolio->clock) - WA_PORTFOLIO_WINDOW_S;
  GHashTableIter iter;
  gpointer value;

  if (portfolio->oldest > oldest)
    return;
  portfolio->oldest = G_MAXINT64;
  g_hash_table_iter_init(&iter, portfolio->reached);
  while (g_hash_table_iter_next(&iter, NULL, &value))
    if (*(gint64 *) value <= oldest)
      g_hash_table_iter_remove(&iter);
    else
      portfolio->oldest = MIN(portfolio->oldest, *(gint64 *) value);
}

void
wa_portfolio_note(WaPortfolio *portfolio, const char *key, gint64 at)
{
  gint64 *known;

  g_return_if_fail(portfolio != NULL && key != NULL);
  if (at == 0)
    at = wa_clock_wall_s(portfolio->clock);
  if (at <= wa_clock_wall_s(portfolio->clock) - WA_PORTFOLIO_WINDOW_S)
    return;
  known = g_hash_table_lookup(portfolio->reached, key);
  if (known != NULL) {
    *known = MAX(*known, at);
    return;
  }
  known = g_new(gint64, 1);
  *known = at;
  g_hash_table_insert(portfolio->reached, g_strdup(key), known);
  portfolio->oldest = MIN(portfolio->oldest, at);
}

guint
wa_portfolio_count(WaPortfolio *portfolio)
{
  g_return_val_if_fail(portfolio != NULL, 0);
  prune(portfolio);
  return g_hash_table_size(portfolio->reached);
}

gboolean
wa_portfolio_allows(WaPortfolio *portfolio, const char *key)
{
  g_return_val_if_fail(portfolio != NULL && key != NULL, FALSE);
  prune(portfolio);
  return portfolio->limit == 0 || g_hash_table_contains(portfolio->reached, key) ||
         g_hash_table_size(portfolio->reached) < portfolio->limit;
}

gint64
wa_portfolio_next_slot_at(WaPortfolio *portfolio)
{
  GHashTableIter iter;
  gpointer value;
  gint64 oldest = G_MAXINT64;

  g_return_val_if_fail(portfolio != NULL, 0);
  prune(portfolio);
  if (portfolio->limit == 0 || g_hash_table_size(portfolio->reached) < portfolio->limit)
    return 0;
  g_hash_table_iter_init(&iter, portfolio->reached);
  while (g_hash_table_iter_next(&iter, NULL, &value))
    oldest = MIN(oldest, *(gint64 *) value);
  return oldest + WA_PORTFOLIO_WINDOW_S;
}
