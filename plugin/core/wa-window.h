/* wa-window.h: the 24-hour customer service window, as pure functions of two
 * times (Unix seconds): the newest customer message's own timestamp and now.
 * The window runs from the message timestamp, never from arrival time, so an
 * old message delivered late cannot reopen it. Callers supply "now" from
 * their clock; nothing here reads the time or keeps state.
 *
 * Must not: include libpurple, or treat a missing timestamp as open. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define WA_WINDOW_LENGTH_S (24 * 3600)
/* In the last hour the customer shows as away: answer now or use a template. */
#define WA_WINDOW_CLOSING_S 3600

typedef enum {
  WA_WINDOW_UNKNOWN, /* no customer message seen (0): Meta decides */
  WA_WINDOW_OPEN,
  WA_WINDOW_CLOSING, /* open, under WA_WINDOW_CLOSING_S left */
  WA_WINDOW_CLOSED,
} WaWindowState;

/* The state at @now; *@seconds_left (when non-NULL) gets the time left while
 * open or closing, else 0. A timestamp in the future counts as @now. */
WaWindowState wa_window_state(gint64 last_inbound, gint64 now, gint64 *seconds_left);

/* When the state next changes after @now (Unix seconds), or 0 when it never
 * will (closed or unknown). */
gint64 wa_window_next_change(gint64 last_inbound, gint64 now);

/* One line for a person, e.g. "Service window open: 5 h 12 min left" or
 * "Service window closed: only approved templates can be sent". NULL for
 * UNKNOWN. Newly allocated, translated. */
char *wa_window_describe(gint64 last_inbound, gint64 now);

/* The later of two message timestamps: the window never moves back. */
static inline gint64
wa_window_newest(gint64 current, gint64 timestamp)
{
  return timestamp > current ? timestamp : current;
}

G_END_DECLS
