/* test-clock.c: the fake clock moves only when told; the system clock is monotonic. */
#include "wa-clock.h"

static void
test_fake(void)
{
  WaClock *clock = wa_clock_fake_new(G_GINT64_CONSTANT(1700000000) * G_USEC_PER_SEC);

  g_assert_cmpint(wa_clock_wall_s(clock), ==, 1700000000);
  g_assert_cmpint(wa_clock_mono_us(clock), ==, 0);
  wa_clock_fake_advance(clock, 90 * G_USEC_PER_SEC);
  g_assert_cmpint(wa_clock_wall_s(clock), ==, 1700000090);
  g_assert_cmpint(wa_clock_mono_us(clock), ==, 90 * G_USEC_PER_SEC);
  /* a wall-clock jump back leaves monotonic time alone */
  wa_clock_fake_set_wall(clock, G_GINT64_CONSTANT(1600000000) * G_USEC_PER_SEC);
  g_assert_cmpint(wa_clock_wall_s(clock), ==, 1600000000);
  g_assert_cmpint(wa_clock_mono_us(clock), ==, 90 * G_USEC_PER_SEC);
  wa_clock_free(clock);
}

static void
test_system(void)
{
  WaClock *clock = wa_clock_system();
  gint64 a = wa_clock_mono_us(clock);
  gint64 b = wa_clock_mono_us(clock);
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;

  g_assert_cmpint(b, >=, a);
  g_assert_cmpint(ABS(wa_clock_wall_s(clock) - now), <=, 2);
  wa_clock_free(clock); /* a no-op for the system clock */
  g_assert_true(wa_clock_system() == clock);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/clock/fake", test_fake);
  g_test_add_func("/clock/system", test_system);
  return g_test_run();
}
