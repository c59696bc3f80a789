/* sim-clock.c: offset-model clock for the simulator (see sim-clock.h). Nothing
 * here sleeps; time only moves with the real clock or by control calls. */
#include "sim-clock.h"

void
sim_clock_init (SimClock *clock)
{
  clock->offset_us = 0;
  clock->frozen = FALSE;
  clock->frozen_us = 0;
}

gint64
sim_clock_now_us (const SimClock *clock)
{
  if (clock->frozen)
    return clock->frozen_us;
  return g_get_real_time () + clock->offset_us;
}

gint64
sim_clock_now (const SimClock *clock)
{
  return sim_clock_now_us (clock) / G_USEC_PER_SEC;
}

void
sim_clock_advance (SimClock *clock, double seconds)
{
  gint64 delta = (gint64)(seconds * G_USEC_PER_SEC);

  if (clock->frozen)
    clock->frozen_us += delta;
  else
    clock->offset_us += delta;
}

void
sim_clock_set (SimClock *clock, double unix_seconds)
{
  gint64 target = (gint64)(unix_seconds * G_USEC_PER_SEC);

  if (clock->frozen)
    clock->frozen_us = target;
  else
    clock->offset_us = target - g_get_real_time ();
}

void
sim_clock_freeze (SimClock *clock, gboolean freeze)
{
  if (freeze == clock->frozen)
    return;
  if (freeze)
    {
      clock->frozen_us = sim_clock_now_us (clock);
      clock->frozen = TRUE;
    }
  else
    {
      clock->offset_us = clock->frozen_us - g_get_real_time ();
      clock->frozen = FALSE;
    }
}
