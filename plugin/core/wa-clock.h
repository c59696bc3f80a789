/* wa-clock.h: injectable wall and monotonic time for plugin/core.
 *
 * Everything that depends on time (the 24-hour window, pacing, backoff, retries)
 * asks a WaClock, never the system directly, so tests move a fake clock instead
 * of sleeping. Times are microseconds. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _WaClock WaClock;

/* The process-wide system clock; never freed. */
WaClock *wa_clock_system(void);

/* A fake clock starting at wall time @wall_us, monotonic time 0. Free with
 * wa_clock_free(). */
WaClock *wa_clock_fake_new(gint64 wall_us);
/* Moves both wall and monotonic time forward by @delta_us (>= 0). */
void wa_clock_fake_advance(WaClock *clock, gint64 delta_us);
/* Sets only the wall time (a jump forward or back); monotonic time is untouched. */
void wa_clock_fake_set_wall(WaClock *clock, gint64 wall_us);
void wa_clock_free(WaClock *clock);

gint64 wa_clock_wall_us(WaClock *clock);
gint64 wa_clock_mono_us(WaClock *clock);
/* Unix seconds of the wall clock. */
gint64 wa_clock_wall_s(WaClock *clock);

G_END_DECLS
