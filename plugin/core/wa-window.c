/* wa-window.c: the 24-hour customer service window (see wa-window.h).
 * Must not: read a clock of its own. */
#include "wa-window.h"

#include "wa-i18n.h"

WaWindowState
wa_window_state(gint64 last_inbound, gint64 now, gint64 *seconds_left)
{
  gint64 start;
  gint64 left;

  if (seconds_left != NULL)
    *seconds_left = 0;
  if (last_inbound <= 0)
    return WA_WINDOW_UNKNOWN;
  start = MIN(last_inbound, now);
  left = start + WA_WINDOW_LENGTH_S - now;
  if (left <= 0)
    return WA_WINDOW_CLOSED;
  if (seconds_left != NULL)
    *seconds_left = left;
  return left <= WA_WINDOW_CLOSING_S ? WA_WINDOW_CLOSING : WA_WINDOW_OPEN;
}

gint64
wa_window_next_change(gint64 last_inbound, gint64 now)
{
  gint64 left = 0;

  switch (wa_window_state(last_inbound, now, &left)) {
  case WA_WINDOW_OPEN:
    return now + left - WA_WINDOW_CLOSING_S;
  case WA_WINDOW_CLOSING:
    return now + left;
  case WA_WINDOW_UNKNOWN:
  case WA_WINDOW_CLOSED:
  default:
    return 0;
  }
}

char *
wa_window_describe(gint64 last_inbound, gint64 now)
{
  gint64 left = 0;
  gint64 hours;
  gint64 minutes;

  switch (wa_window_state(last_inbound, now, &left)) {
  case WA_WINDOW_OPEN:
  case WA_WINDOW_CLOSING:
    /* round up: "0 min left" would read as closed */
    minutes = (left + 59) / 60;
    hours = minutes / 60;
    minutes %= 60;
    if (hours > 0)
      return g_strdup_printf(_("Service window open: %lld h %lld min left"), (long long) hours, (long long) minutes);
    return g_strdup_printf(_("Service window open: %lld min left"), (long long) minutes);
  case WA_WINDOW_CLOSED:
    return g_strdup(_("Service window closed: only approved templates can be sent"));
  case WA_WINDOW_UNKNOWN:
  default:
    return NULL;
  }
}
