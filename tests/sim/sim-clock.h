/* sim-clock.h: the simulator's clock. It starts at real time and moves with
 * real time plus an offset that tests change through /_sim/clock; it can also
 * be frozen so rate-limit tests do not depend on how fast the machine is. */
#pragma once

#include <glib.h>

typedef struct
{
  gint64 offset_us; /* added to the real time while running */
  gboolean frozen;
  gint64 frozen_us; /* the time shown while frozen */
} SimClock;

void sim_clock_init (SimClock *clock);
gint64 sim_clock_now_us (const SimClock *clock);
gint64 sim_clock_now (const SimClock *clock);
void sim_clock_advance (SimClock *clock, double seconds);
void sim_clock_set (SimClock *clock, double unix_seconds);
void sim_clock_freeze (SimClock *clock, gboolean freeze);
