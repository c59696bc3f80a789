/* test-pace.c: pacing arithmetic (plugin/core/wa-pace.c) on a fake clock:
 * the throughput limit at 80, 1,000 and 20 messages per second without
 * waiting for answers, the agent's chat charged before campaigns, slow-down and
 * recovery on 130429, the pause on 131057, the pair limit's 4^X backoff
 * on 131056, and the portfolio's rolling 24-hour count shared by accounts.
 * Time only moves when the test moves it. */
#include "wa-pace.h"

#define NOW G_GINT64_CONSTANT(1751250000)
#define SEC G_GINT64_CONSTANT(1000000)

typedef struct {
  WaClock *clock;
} Fixture;

static void
set_up(Fixture *f, gconstpointer data)
{
  f->clock = wa_clock_fake_new(NOW * SEC);
}

static void
tear_down(Fixture *f, gconstpointer data)
{
  wa_clock_free(f->clock);
}

/* Moves the clock to monotonic @at (when later). */
static void
move_to(Fixture *f, gint64 at)
{
  gint64 now = wa_clock_mono_us(f->clock);

  if (at > now)
    wa_clock_fake_advance(f->clock, at - now);
}

/* Campaign sends as fast as @pace lets them, each at its next_at, until monotonic
 * @until; returns how many went. */
static guint
send_until(Fixture *f, WaPace *pace, gint64 until)
{
  guint sent = 0;

  for (;;) {
    gint64 at = wa_pace_next_at(pace);

    if (at > until)
      return sent;
    move_to(f, at);
    g_assert_true(wa_pace_try_take(pace));
    sent++;
  }
}

static void
test_throughput(Fixture *f, gconstpointer data)
{
  static const struct {
    guint rate;
    guint depth;
  } cases[] = {{WA_PACE_RATE_DEFAULT, 8}, {WA_PACE_RATE_HIGH, 100}, {WA_PACE_RATE_COEXIST, 2}};

  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_autoptr(WaPace) pace = wa_pace_new(f->clock, cases[i].rate);
    gint64 start = wa_clock_mono_us(f->clock);

    /* a full bucket's burst at once, then exactly the rate: 10 s of sends */
    g_assert_cmpuint(send_until(f, pace, start), ==, cases[i].depth);
    g_assert_false(wa_pace_try_take(pace));
    g_assert_cmpint(wa_pace_next_at(pace) - start, ==, SEC / cases[i].rate);
    g_assert_cmpuint(send_until(f, pace, start + 10 * SEC), ==, 10 * cases[i].rate);
    /* idle time fills the bucket only to its depth */
    wa_clock_fake_advance(f->clock, 3600 * SEC);
    g_assert_cmpuint(send_until(f, pace, wa_clock_mono_us(f->clock)), ==, cases[i].depth);
  }
}

static void
test_in_flight(Fixture *f, gconstpointer data)
{
  /* 80/s with 50 ms round trips needs 4 in flight, plus a quarter */
  g_assert_cmpuint(wa_pace_in_flight_for(80, 50000), ==, 5);
  g_assert_cmpuint(wa_pace_in_flight_for(1000, 50000), ==, 63);
  g_assert_cmpuint(wa_pace_in_flight_for(20, 300000), ==, 8);
  g_assert_cmpuint(wa_pace_in_flight_for(80, 0), ==, 1);
  g_assert_cmpuint(wa_pace_in_flight_for(1, 1000), ==, 2);
}

/* Sends for @seconds (end excluded) with at most @cap requests in flight, each answered
 * @rtt µs after it went; returns how many went. */
static guint
simulate(Fixture *f, WaPace *pace, guint cap, gint64 rtt, gint64 seconds)
{
  g_autoptr(GArray) answers = g_array_new(FALSE, FALSE, sizeof(gint64)); /* in send order = answer order */
  gint64 end = wa_clock_mono_us(f->clock) + seconds * SEC;
  guint sent = 0, first = 0;

  for (;;) {
    gint64 now = wa_clock_mono_us(f->clock), next;

    while (first < answers->len && g_array_index(answers, gint64, first) <= now)
      first++;
    if (answers->len - first < cap && wa_pace_try_take(pace)) {
      gint64 at = now + rtt;

      g_array_append_val(answers, at);
      sent++;
      continue;
    }
    next = answers->len - first < cap ? wa_pace_next_at(pace) : g_array_index(answers, gint64, first);
    if (next >= end)
      return sent;
    move_to(f, next);
  }
}

static void
test_rate_not_round_trip(Fixture *f, gconstpointer data)
{
  static const guint rates[] = {WA_PACE_RATE_DEFAULT, WA_PACE_RATE_HIGH};

  for (guint i = 0; i < G_N_ELEMENTS(rates); i++) {
    g_autoptr(WaPace) pace = wa_pace_new(f->clock, rates[i]);
    g_autoptr(WaPace) serial = wa_pace_new(f->clock, rates[i]);
    guint cap = wa_pace_in_flight_for(rates[i], 50000);
    guint sent = simulate(f, pace, cap, 50000, 10);

    /* with enough in flight, 50 ms round trips still give the full rate */
    g_assert_cmpuint(sent, >=, 10 * rates[i]);
    g_assert_cmpuint(sent, <=, 10 * rates[i] + rates[i] / 10);
    /* one at a time, the round trip would set the pace: 20 per second */
    g_assert_cmpuint(simulate(f, serial, 1, 50000, 10), ==, 200);
  }
}

static void
test_slow_down_and_recover(Fixture *f, gconstpointer data)
{
  g_autoptr(WaPace) pace = wa_pace_new(f->clock, 80);
  gint64 now = wa_clock_mono_us(f->clock);

  wa_pace_throttled(pace);
  g_assert_cmpuint(wa_pace_current_rate(pace), ==, 40);
  g_assert_cmpuint(wa_pace_configured_rate(pace), ==, 80);
  /* the bucket is empty: the next campaign send after 1/40 s */
  g_assert_false(wa_pace_try_take(pace));
  g_assert_cmpint(wa_pace_next_at(pace), ==, now + SEC / 40);
  /* 10 s at the slowed rate sends 40 per second, not 80 */
  g_assert_cmpuint(send_until(f, pace, now + WA_PACE_RECOVER_INTERVAL_S * SEC - 1), <=,
                   40 * WA_PACE_RECOVER_INTERVAL_S);
  /* every interval without 130429 adds a tenth of the configured rate */
  move_to(f, now + WA_PACE_RECOVER_INTERVAL_S * SEC);
  g_assert_cmpuint(wa_pace_current_rate(pace), ==, 48);
  move_to(f, now + 3 * WA_PACE_RECOVER_INTERVAL_S * SEC);
  g_assert_cmpuint(wa_pace_current_rate(pace), ==, 64);
  /* another 130429 halves again and restarts the recovery */
  wa_pace_throttled(pace);
  g_assert_cmpuint(wa_pace_current_rate(pace), ==, 32);
  move_to(f, now + 4 * WA_PACE_RECOVER_INTERVAL_S * SEC - 1);
  g_assert_cmpuint(wa_pace_current_rate(pace), ==, 32);
  move_to(f, now + 4 * WA_PACE_RECOVER_INTERVAL_S * SEC);
  g_assert_cmpuint(wa_pace_current_rate(pace), ==, 40);
  /* never above the configured rate, however long it stays quiet */
  wa_clock_fake_advance(f->clock, 3600 * SEC);
  g_assert_cmpuint(wa_pace_current_rate(pace), ==, 80);
  /* never below 1 per second */
  for (guint i = 0; i < 20; i++)
    wa_pace_throttled(pace);
  g_assert_cmpuint(wa_pace_current_rate(pace), ==, 1);
}

static void
test_set_rate(Fixture *f, gconstpointer data)
{
  g_autoptr(WaPace) pace = wa_pace_new(f->clock, 80);

  /* the upgrade to 1,000/s applies at once */
  wa_pace_set_rate(pace, WA_PACE_RATE_HIGH);
  g_assert_cmpuint(wa_pace_current_rate(pace), ==, 1000);
  /* slowed down, a new rate is where it recovers to */
  wa_pace_throttled(pace);
  wa_pace_set_rate(pace, WA_PACE_RATE_COEXIST);
  g_assert_cmpuint(wa_pace_current_rate(pace), ==, 20);
  wa_pace_throttled(pace);
  g_assert_cmpuint(wa_pace_current_rate(pace), ==, 10);
  wa_pace_set_rate(pace, 80);
  g_assert_cmpuint(wa_pace_current_rate(pace), ==, 10);
  wa_clock_fake_advance(f->clock, WA_PACE_RECOVER_INTERVAL_S * SEC);
  g_assert_cmpuint(wa_pace_current_rate(pace), ==, 18);
}

/* The agent's chat is sent without asking; each send is charged, however
 * far the bucket owes, and the campaign waits until the debt is paid. */
static void
test_chat_charged(Fixture *f, gconstpointer data)
{
  g_autoptr(WaPace) pace = wa_pace_new(f->clock, 20);
  gint64 now = wa_clock_mono_us(f->clock);

  g_assert_cmpuint(send_until(f, pace, now), ==, 2);
  for (guint i = 0; i < 30; i++)
    wa_pace_charge(pace);
  g_assert_cmpint(wa_pace_next_at(pace), ==, now + 31 * (SEC / 20));
  /* campaign and chat together: the rate and one depth over two seconds */
  g_assert_cmpuint(send_until(f, pace, now + 2 * SEC), ==, 2 * 20 - 30);
  /* while the campaign is slowed down the charge counts the same */
  wa_pace_throttled(pace);
  now = wa_clock_mono_us(f->clock);
  wa_pace_charge(pace);
  g_assert_cmpint(wa_pace_next_at(pace), >=, now + 2 * (SEC / 10));
}

static void
test_maintenance(Fixture *f, gconstpointer data)
{
  g_autoptr(WaPace) pace = wa_pace_new(f->clock, 80);
  gint64 now = wa_clock_mono_us(f->clock);

  wa_pace_maintenance(pace);
  g_assert_cmpint(wa_pace_paused_until(pace), ==, now + 60 * SEC);
  /* campaign sends wait */
  g_assert_false(wa_pace_try_take(pace));
  g_assert_cmpint(wa_pace_next_at(pace), ==, now + 60 * SEC);
  wa_clock_fake_advance(f->clock, 60 * SEC - 1);
  g_assert_false(wa_pace_try_take(pace));
  wa_clock_fake_advance(f->clock, 1);
  g_assert_true(wa_pace_try_take(pace));
  g_assert_cmpint(wa_pace_paused_until(pace), ==, 0);
}

static void
test_pair_limit(Fixture *f, gconstpointer data)
{
  g_autoptr(WaPace) pace = wa_pace_new(f->clock, 80);
  gint64 now = wa_clock_mono_us(f->clock);
  gint64 expected = SEC;

  /* 4^X seconds, X the hits before */
  for (guint x = 0; x < 4; x++) {
    g_assert_cmpint(wa_pace_pair_hit(pace, "customer-a"), ==, expected);
    g_assert_cmpint(wa_pace_pair_next_at(pace, "customer-a"), ==, now + expected);
    expected *= 4;
  }
  g_assert_cmpuint(wa_pace_pair_hits(pace, "customer-a"), ==, 4);
  /* another customer is not delayed */
  g_assert_cmpint(wa_pace_pair_next_at(pace, "customer-b"), <=, now);
  /* an accepted send resets X */
  wa_pace_pair_ok(pace, "customer-a");
  g_assert_cmpuint(wa_pace_pair_hits(pace, "customer-a"), ==, 0);
  g_assert_cmpint(wa_pace_pair_hit(pace, "customer-a"), ==, SEC);
  /* the wait stops growing at 4^WA_PACE_PAIR_MAX_EXPONENT s */
  for (guint x = 1; x < 20; x++)
    wa_pace_pair_hit(pace, "customer-a");
  g_assert_cmpint(wa_pace_pair_hit(pace, "customer-a"), ==, 4096 * SEC);
  wa_pace_pair_ok(pace, "customer-a");
  g_assert_cmpint(wa_pace_pair_next_at(pace, "customer-a"), ==, 0);
}

static void
test_rate_errors(Fixture *f, gconstpointer data)
{
  g_autoptr(WaPace) pace = wa_pace_new(f->clock, 80);
  gint64 now = wa_clock_mono_us(f->clock);
  gint64 retry_at = -1;
  static const gint final[] = {131048, 131049, 131050, 131026, 131047, 0};

  /* errors that are not about pacing change nothing */
  for (guint i = 0; i < G_N_ELEMENTS(final); i++)
    g_assert_false(wa_pace_rate_error(pace, final[i], "customer-a", &retry_at));
  g_assert_cmpint(retry_at, ==, -1);
  g_assert_cmpuint(wa_pace_current_rate(pace), ==, 80);
  g_assert_true(wa_pace_try_take(pace));

  g_assert_true(wa_pace_rate_error(pace, 130429, "customer-a", &retry_at));
  g_assert_cmpuint(wa_pace_current_rate(pace), ==, 40);
  g_assert_cmpint(retry_at, ==, now + SEC / 40);
  g_assert_true(wa_pace_rate_error(pace, 131056, "customer-a", &retry_at));
  g_assert_cmpint(retry_at, ==, now + SEC);
  g_assert_true(wa_pace_rate_error(pace, 131056, "customer-a", &retry_at));
  g_assert_cmpint(retry_at, ==, now + 4 * SEC);
  g_assert_cmpint(wa_pace_pair_next_at(pace, "customer-b"), ==, 0);
  g_assert_true(wa_pace_rate_error(pace, 131057, NULL, &retry_at));
  g_assert_cmpint(retry_at, ==, now + 60 * SEC);
}

static void
test_portfolio_tiers(Fixture *f, gconstpointer data)
{
  guint limit = 7;

  g_assert_true(wa_portfolio_tier_limit("TIER_250", &limit));
  g_assert_cmpuint(limit, ==, 250);
  g_assert_true(wa_portfolio_tier_limit("TIER_2K", &limit));
  g_assert_cmpuint(limit, ==, 2000);
  g_assert_true(wa_portfolio_tier_limit("TIER_10K", &limit));
  g_assert_cmpuint(limit, ==, 10000);
  g_assert_true(wa_portfolio_tier_limit("TIER_100K", &limit));
  g_assert_cmpuint(limit, ==, 100000);
  g_assert_true(wa_portfolio_tier_limit("TIER_UNLIMITED", &limit));
  g_assert_cmpuint(limit, ==, 0);
  g_assert_true(wa_portfolio_tier_limit("TIER_1K", &limit)); /* legacy field */
  g_assert_cmpuint(limit, ==, 1000);
  limit = 7;
  g_assert_false(wa_portfolio_tier_limit("TIER_NOT_SET", &limit));
  g_assert_false(wa_portfolio_tier_limit("tier_250", &limit));
  g_assert_false(wa_portfolio_tier_limit(NULL, &limit));
  g_assert_cmpuint(limit, ==, 7);
}

static void
test_portfolio_rolling(Fixture *f, gconstpointer data)
{
  WaPortfolio *shared = wa_portfolio_new(f->clock, 2);
  WaPortfolio *account_a = wa_portfolio_ref(shared);
  WaPortfolio *account_b = wa_portfolio_ref(shared);
  gint64 now = wa_clock_wall_s(f->clock);

  wa_portfolio_unref(shared);
  /* a record older than a day (from the store) does not count */
  wa_portfolio_note(account_a, "4915112345678", now - 24 * 3600);
  g_assert_cmpuint(wa_portfolio_count(account_a), ==, 0);
  wa_portfolio_note(account_a, "4915112345678", now - 3600);
  /* the other account of the business sees it */
  g_assert_cmpuint(wa_portfolio_count(account_b), ==, 1);
  wa_portfolio_note(account_b, "14155550123", 0);
  g_assert_cmpuint(wa_portfolio_count(account_a), ==, 2);
  /* full: a new customer waits; one already reached does not use a slot */
  g_assert_false(wa_portfolio_allows(account_a, "447700900123"));
  g_assert_true(wa_portfolio_allows(account_a, "4915112345678"));
  g_assert_cmpint(wa_portfolio_next_slot_at(account_b), ==, now - 3600 + 24 * 3600);
  /* reaching them again moves their 24 hours on */
  wa_portfolio_note(account_b, "4915112345678", now);
  g_assert_cmpint(wa_portfolio_next_slot_at(account_b), ==, now + 24 * 3600);
  g_assert_cmpuint(wa_portfolio_count(account_a), ==, 2);
  /* a day later the slots are free again */
  wa_clock_fake_advance(f->clock, (gint64) 24 * 3600 * SEC);
  g_assert_cmpuint(wa_portfolio_count(account_a), ==, 0);
  g_assert_true(wa_portfolio_allows(account_a, "447700900123"));
  g_assert_cmpint(wa_portfolio_next_slot_at(account_a), ==, 0);
  /* reaches of different ages each leave when their own day is over (the
   * portfolio walks its reaches only when the oldest is out) */
  now = wa_clock_wall_s(f->clock);
  wa_portfolio_note(account_a, "4915112345678", now - 20 * 3600);
  wa_portfolio_note(account_a, "14155550123", now - 2 * 3600);
  g_assert_cmpuint(wa_portfolio_count(account_a), ==, 2);
  wa_clock_fake_advance(f->clock, (gint64) 5 * 3600 * SEC);
  g_assert_cmpuint(wa_portfolio_count(account_a), ==, 1);
  wa_clock_fake_advance(f->clock, (gint64) 17 * 3600 * SEC - SEC);
  g_assert_cmpuint(wa_portfolio_count(account_a), ==, 1);
  wa_clock_fake_advance(f->clock, (gint64) SEC);
  g_assert_cmpuint(wa_portfolio_count(account_a), ==, 0);
  /* unlimited */
  wa_portfolio_note(account_a, "a", 0);
  wa_portfolio_note(account_a, "b", 0);
  g_assert_false(wa_portfolio_allows(account_a, "c"));
  wa_portfolio_set_limit(account_b, 0);
  g_assert_cmpuint(wa_portfolio_limit(account_a), ==, 0);
  g_assert_true(wa_portfolio_allows(account_a, "c"));
  g_assert_cmpint(wa_portfolio_next_slot_at(account_a), ==, 0);
  wa_portfolio_unref(account_a);
  wa_portfolio_unref(account_b);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add("/pace/" name, Fixture, NULL, set_up, fn, tear_down)
  ADD("throughput", test_throughput);
  ADD("in-flight", test_in_flight);
  ADD("rate-not-round-trip", test_rate_not_round_trip);
  ADD("chat-charged", test_chat_charged);
  ADD("slow-down-and-recover", test_slow_down_and_recover);
  ADD("set-rate", test_set_rate);
  ADD("maintenance", test_maintenance);
  ADD("pair-limit", test_pair_limit);
  ADD("rate-errors", test_rate_errors);
  ADD("portfolio-tiers", test_portfolio_tiers);
  ADD("portfolio-rolling", test_portfolio_rolling);
#undef ADD
  return g_test_run();
}
