/* wa-clock.c: the system clock and a fake clock for tests. No timers here:
 * timers belong to the event loop (wa-loop.h). */
#include "wa-clock.h"

struct _WaClock {
  gboolean fake;
  gint64 wall_us;
  gint64 mono_us;
};

static WaClock system_clock = {FALSE, 0, 0};

WaClock *
wa_clock_system(void)
{
  return &system_clock;
}

WaClock *
wa_clock_fake_new(gint64 wall_us)
{
  WaClock *clock = g_new0(WaClock, 1);
  clock->fake = TRUE;
  clock->wall_us = wall_us;
  return clock;
}

void
wa_clock_fake_advance(WaClock *clock, gint64 delta_us)
{
  g_return_if_fail(clock != NULL && clock->fake);
  g_return_if_fail(delta_us >= 0);
  clock->wall_us += delta_us;
  clock->mono_us += delta_us;
}

void
wa_clock_fake_set_wall(WaClock *clock, gint64 wall_us)
{
  g_return_if_fail(clock != NULL && clock->fake);
  clock->wall_us = wall_us;
}

void
wa_clock_free(WaClock *clock)
{
  if (clock != NULL && clock->fake)
    g_free(clock);
}

gint64
wa_clock_wall_us(WaClock *clock)
{
  if (clock == NULL || !clock->fake)
    return g_get_real_time();
  return clock->wall_us;
}

gint64
wa_clock_mono_us(WaClock *clock)
{
  if (clock == NULL || !clock->fake)
    return g_get_monotonic_time();
  return clock->mono_us;
}

gint64
wa_clock_wall_s(WaClock *clock)
{
  return wa_clock_wall_us(clock) / G_USEC_PER_SEC;
}
