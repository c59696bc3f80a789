/* wabiz-testhooks.c: the plugin's clock, and the hooks that let tests move
 * it, shorten timers, use the cheapest key derivation and crash the process
 * at chosen steps.
 *
 * The hooks exist only in the test build of the plugin (compiled with
 * WABIZ_TEST_BUILD: build/plugin/purple/test/libwabiz.so, which the test
 * suites load) and there only with WABIZ_TEST_HOOKS=1 in the environment.
 * The installed plugin is built without them: whatever its environment
 * says, its clock is the wall clock, its key derivation the production one
 * and it never kills itself.
 * Must not: be reachable in a build without WABIZ_TEST_BUILD. */
#include "wabiz.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifdef WABIZ_TEST_BUILD

/* Seconds added to the wall clock by the clock hooks. */
static gint64 clock_offset_s;

static gboolean
hooks_on(void)
{
  return g_strcmp0(g_getenv("WABIZ_TEST_HOOKS"), "1") == 0;
}

gint64
wabiz_now(void)
{
  return g_get_real_time() / G_USEC_PER_SEC + clock_offset_s;
}

const char *
wabiz_test_env(const char *name)
{
  return hooks_on() ? g_getenv(name) : NULL;
}

/* The IPC call "clock-advance" (one string argument: seconds, may be
 * negative) moves the plugin's wall clock for every connected account, so
 * tests can close a window without waiting a day; "clock-jump" moves it
 * without telling anyone, as the wall clock moves across a suspend (then
 * WABIZ_TEST_WINDOW_TICK_S, 1 to 60, shortens the window timer's tick). */
static void
ipc_clock_jump(const char *seconds)
{
  clock_offset_s += g_ascii_strtoll(seconds != NULL ? seconds : "0", NULL, 10);
}

static void
ipc_clock_advance(const char *seconds)
{
  clock_offset_s += g_ascii_strtoll(seconds != NULL ? seconds : "0", NULL, 10);
  for (GList *conns = purple_connections_get_all(); conns != NULL; conns = conns->next) {
    PurpleConnection *gc = conns->data;
    PurpleAccount *account = purple_connection_get_account(gc);

    if (g_strcmp0(purple_account_get_protocol_id(account), WABIZ_PRPL_ID) == 0 &&
        purple_connection_get_state(gc) == PURPLE_CONNECTED && purple_connection_get_protocol_data(gc) != NULL)
      wabiz_window_start(purple_connection_get_protocol_data(gc));
  }
}

/* The IPC call "consent-check" ("ADDRESS CATEGORY") asks wabiz_consent_check
 * what the templates feature asks before each send, and writes the answer
 * into ADDRESS's conversation: "[test] CATEGORY allowed" or "[test]
 * CATEGORY refused: <why>". */
typedef struct {
  char *who;
  char *category;
} ConsentProbe;

static void
consent_checked(WabizAccount *wa, gboolean allowed, const char *why, gpointer data)
{
  ConsentProbe *probe = data;
  g_autofree char *line = allowed ? g_strdup_printf("[test] %s allowed", probe->category)
                                  : g_strdup_printf("[test] %s refused: %s", probe->category, why);

  wabiz_conv_write_plain(wabiz_conv_im(wa->account, probe->who, TRUE), line, PURPLE_MESSAGE_SYSTEM, 0);
  g_free(probe->who);
  g_free(probe->category);
  g_free(probe);
}

static void
ipc_consent_check(const char *arg)
{
  g_auto(GStrv) words = g_strsplit(arg != NULL ? arg : "", " ", 2);

  if (g_strv_length(words) != 2)
    return;
  for (GList *conns = purple_connections_get_all(); conns != NULL; conns = conns->next) {
    PurpleConnection *gc = conns->data;
    WabizAccount *wa = purple_connection_get_protocol_data(gc);
    PurpleBuddy *buddy;
    ConsentProbe *probe;

    if (g_strcmp0(purple_account_get_protocol_id(purple_connection_get_account(gc)), WABIZ_PRPL_ID) != 0 || wa == NULL)
      continue;
    buddy = purple_find_buddy(wa->account, words[0]);
    probe = g_new0(ConsentProbe, 1);
    probe->who = g_strdup(words[0]);
    probe->category = g_strdup(words[1]);
    wabiz_consent_check(wa, buddy != NULL ? purple_blist_node_get_string(&buddy->node, WABIZ_NODE_CUSTOMER_ID) : NULL,
                        words[0], words[1], consent_checked, probe);
  }
}

/* With WABIZ_TEST_CRASH=<point>:<n>, the n-th time the plugin passes <point>
 * the process is killed (SIGKILL: no clean-up), so tests can crash it at a
 * chosen step. */
void
wabiz_test_crash_point(const char *point)
{
  static gboolean parsed;
  static char *crash_point;
  static guint64 crash_after;
  static guint64 hits;

  if (!parsed) {
    const char *spec = wabiz_test_env("WABIZ_TEST_CRASH");
    const char *colon = spec != NULL ? strrchr(spec, ':') : NULL;

    parsed = TRUE;
    if (colon != NULL && g_ascii_string_to_unsigned(colon + 1, 10, 1, G_MAXUINT64, &crash_after, NULL))
      crash_point = g_strndup(spec, (gsize) (colon - spec));
  }
  if (crash_point == NULL || !g_str_equal(point, crash_point) || ++hits < crash_after)
    return;
  fprintf(stderr, "wabiz: test crash at %s #%" G_GUINT64_FORMAT "\n", point, hits);
  fflush(stderr);
  kill(getpid(), SIGKILL);
}

void
wabiz_test_hooks_register(PurplePlugin *plugin)
{
  if (!hooks_on())
    return;
  purple_plugin_ipc_register(plugin, "clock-advance", PURPLE_CALLBACK(ipc_clock_advance), purple_marshal_VOID__POINTER,
                             NULL, 1, purple_value_new(PURPLE_TYPE_STRING));
  purple_plugin_ipc_register(plugin, "clock-jump", PURPLE_CALLBACK(ipc_clock_jump), purple_marshal_VOID__POINTER, NULL,
                             1, purple_value_new(PURPLE_TYPE_STRING));
  purple_plugin_ipc_register(plugin, "consent-check", PURPLE_CALLBACK(ipc_consent_check), purple_marshal_VOID__POINTER,
                             NULL, 1, purple_value_new(PURPLE_TYPE_STRING));
}

#else /* the installed plugin: no hooks */

gint64
wabiz_now(void)
{
  return g_get_real_time() / G_USEC_PER_SEC;
}

const char *
wabiz_test_env(const char *name)
{
  return NULL;
}

void
wabiz_test_crash_point(const char *point)
{
}

void
wabiz_test_hooks_register(PurplePlugin *plugin)
{
}

#endif
