/* gap-preload.c: the main-loop gap meter of wabiz-host for any GLib program,
 * loaded with LD_PRELOAD (bench/responsiveness.py --pidgin runs Pidgin under
 * Xvfb with it).
 *
 * With WABIZ_GAP_FILE=PATH set, a 5 ms repeating timer on the default main
 * context records the time between its ticks; once a second it appends a
 * line "<end, monotonic s> <largest gap µs> <99th percentile µs> <ticks>"
 * for that second to PATH. The clock is g_get_monotonic_time(), Python's
 * time.monotonic() on Linux, so a bench can tell its phases apart. Without
 * the variable it does nothing. A bench tool: never installed, never linked
 * into the plugin.
 *
 *   cc -shared -fPIC -o gap-preload.so bench/gap-preload.c \
 *      $(pkg-config --cflags --libs glib-2.0) */
#include <glib.h>
#include <stdio.h>

#define INTERVAL_MS 5

static FILE *out;
static gint64 last, second_start;
static GArray *intervals; /* gint64 µs, this second */

static gint
compare(gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return x < y ? -1 : x > y;
}

static gboolean
tick(gpointer data)
{
  gint64 now = g_get_monotonic_time();
  gint64 gap = now - last;

  (void) data;
  last = now;
  g_array_append_val(intervals, gap);
  if (now - second_start >= G_USEC_PER_SEC) {
    guint n = intervals->len;

    g_array_sort(intervals, compare);
    fprintf(out, "%.6f %" G_GINT64_FORMAT " %" G_GINT64_FORMAT " %u\n", now / 1e6,
            g_array_index(intervals, gint64, n - 1), g_array_index(intervals, gint64, (n * 99 + 99) / 100 - 1), n);
    fflush(out);
    g_array_set_size(intervals, 0);
    second_start = now;
  }
  return G_SOURCE_CONTINUE;
}

__attribute__((constructor)) static void
gap_preload_init(void)
{
  const char *path = g_getenv("WABIZ_GAP_FILE");

  if (path == NULL || (out = fopen(path, "a")) == NULL)
    return;
  intervals = g_array_new(FALSE, FALSE, sizeof(gint64));
  last = second_start = g_get_monotonic_time();
  g_timeout_add(INTERVAL_MS, tick, NULL);
}
