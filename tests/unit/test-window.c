/* test-window.c: the 24-hour service window from message timestamps: states
 * at the edges, the next change, descriptions, timestamps from the future. */
#include "wa-window.h"

#define T0 1751247548

static void
test_states(void)
{
  gint64 left = -1;

  g_assert_cmpint(wa_window_state(0, T0, &left), ==, WA_WINDOW_UNKNOWN);
  g_assert_cmpint(left, ==, 0);
  g_assert_cmpint(wa_window_state(T0, T0, &left), ==, WA_WINDOW_OPEN);
  g_assert_cmpint(left, ==, 24 * 3600);
  g_assert_cmpint(wa_window_state(T0, T0 + 23 * 3600 - 1, &left), ==, WA_WINDOW_OPEN);
  g_assert_cmpint(left, ==, 3601);
  g_assert_cmpint(wa_window_state(T0, T0 + 23 * 3600, &left), ==, WA_WINDOW_CLOSING);
  g_assert_cmpint(left, ==, 3600);
  g_assert_cmpint(wa_window_state(T0, T0 + 24 * 3600 - 1, &left), ==, WA_WINDOW_CLOSING);
  g_assert_cmpint(left, ==, 1);
  g_assert_cmpint(wa_window_state(T0, T0 + 24 * 3600, &left), ==, WA_WINDOW_CLOSED);
  g_assert_cmpint(left, ==, 0);
  g_assert_cmpint(wa_window_state(T0, T0 + 90 * 24 * 3600, NULL), ==, WA_WINDOW_CLOSED);
}

static void
test_future_timestamp(void)
{
  gint64 left = 0;

  /* a customer's clock ahead of ours cannot stretch the window past 24 h */
  g_assert_cmpint(wa_window_state(T0 + 5000, T0, &left), ==, WA_WINDOW_OPEN);
  g_assert_cmpint(left, ==, 24 * 3600);
}

static void
test_next_change(void)
{
  g_assert_cmpint(wa_window_next_change(T0, T0), ==, T0 + 23 * 3600);
  g_assert_cmpint(wa_window_next_change(T0, T0 + 23 * 3600 + 5), ==, T0 + 24 * 3600);
  g_assert_cmpint(wa_window_next_change(T0, T0 + 24 * 3600), ==, 0);
  g_assert_cmpint(wa_window_next_change(0, T0), ==, 0);
}

static void
test_newest(void)
{
  g_assert_cmpint(wa_window_newest(0, T0), ==, T0);
  /* a late retry of an old message does not move the window back */
  g_assert_cmpint(wa_window_newest(T0, T0 - 7200), ==, T0);
}

static void
test_describe(void)
{
  g_autofree char *open = wa_window_describe(T0, T0 + 3600 + 12 * 60);
  g_autofree char *closing = wa_window_describe(T0, T0 + 24 * 3600 - 61);
  g_autofree char *last_second = wa_window_describe(T0, T0 + 24 * 3600 - 1);
  g_autofree char *closed = wa_window_describe(T0, T0 + 25 * 3600);

  g_assert_cmpstr(open, ==, "Service window open: 22 h 48 min left");
  g_assert_cmpstr(closing, ==, "Service window open: 2 min left");
  g_assert_cmpstr(last_second, ==, "Service window open: 1 min left");
  g_assert_cmpstr(closed, ==, "Service window closed: only approved templates can be sent");
  g_assert_null(wa_window_describe(0, T0));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/window/states", test_states);
  g_test_add_func("/window/future-timestamp", test_future_timestamp);
  g_test_add_func("/window/next-change", test_next_change);
  g_test_add_func("/window/newest", test_newest);
  g_test_add_func("/window/describe", test_describe);
  return g_test_run();
}
