/* wabiz-window.c: the 24-hour customer service window as buddy presence.
 *
 * available = open, away = under an hour left, offline = closed (kept visible
 * with the node's show_offline: these customers need a template). The window
 * runs from the newest customer message's own timestamp, kept in the buddy's
 * node settings until the encrypted store exists. One timer per account, for
 * the next change of any buddy. Status text and tooltip are computed when
 * libpurple asks, so they are never stale.
 * Must not: keep a timer per buddy, or move a window back. */
#include "wabiz.h"

/* Test hook: seconds added to the wall clock (see wabiz_test_hooks_register). */
static gint64 clock_offset_s;

gint64
wabiz_now(void)
{
  return g_get_real_time() / G_USEC_PER_SEC + clock_offset_s;
}

static gint64
last_inbound(PurpleBuddy *buddy)
{
  const char *value = purple_blist_node_get_string(&buddy->node, WABIZ_NODE_LAST_INBOUND);

  return value != NULL ? g_ascii_strtoll(value, NULL, 10) : 0;
}

static void
set_presence(PurpleAccount *account, PurpleBuddy *buddy, gint64 now)
{
  const char *status;

  switch (wa_window_state(last_inbound(buddy), now, NULL)) {
  case WA_WINDOW_OPEN:
    status = "available";
    break;
  case WA_WINDOW_CLOSING:
    status = "away";
    break;
  case WA_WINDOW_CLOSED:
    /* these are the customers who need a template: keep them in sight */
    if (!purple_blist_node_get_bool(&buddy->node, "show_offline"))
      purple_blist_node_set_bool(&buddy->node, "show_offline", TRUE);
    status = "offline";
    break;
  case WA_WINDOW_UNKNOWN:
  default:
    status = "offline";
    break;
  }
  if (!purple_status_is_active(purple_presence_get_status(purple_buddy_get_presence(buddy), status)))
    purple_prpl_got_user_status(account, purple_buddy_get_name(buddy), status, NULL);
}

static void reschedule(WabizAccount *wa);

static gboolean
window_timer_cb(gpointer data)
{
  WabizAccount *wa = data;

  wa->window_timer = 0;
  wabiz_window_start(wa);
  return G_SOURCE_REMOVE;
}

/* One timer for the earliest next change among the account's buddies. */
static void
reschedule(WabizAccount *wa)
{
  gint64 now = wabiz_now();
  gint64 next = 0;
  GSList *buddies = purple_find_buddies(wa->account, NULL);

  for (GSList *l = buddies; l != NULL; l = l->next) {
    gint64 at = wa_window_next_change(last_inbound(l->data), now);

    if (at > 0 && (next == 0 || at < next))
      next = at;
  }
  g_slist_free(buddies);
  if (wa->window_timer != 0 && wa->window_timer_at == next)
    return;
  if (wa->window_timer != 0) {
    purple_timeout_remove(wa->window_timer);
    wa->window_timer = 0;
  }
  wa->window_timer_at = next;
  if (next == 0)
    return;
  /* whole seconds; a day fits purple_timeout_add's milliseconds */
  wa->window_timer = purple_timeout_add((guint) (MAX(next - now, 1) * 1000), window_timer_cb, wa);
}

void
wabiz_window_start(WabizAccount *wa)
{
  gint64 now = wabiz_now();
  GSList *buddies = purple_find_buddies(wa->account, NULL);

  for (GSList *l = buddies; l != NULL; l = l->next)
    set_presence(wa->account, l->data, now);
  g_slist_free(buddies);
  reschedule(wa);
}

void
wabiz_window_stop(WabizAccount *wa)
{
  if (wa->window_timer != 0) {
    purple_timeout_remove(wa->window_timer);
    wa->window_timer = 0;
  }
  wa->window_timer_at = 0;
}

void
wabiz_window_update(WabizAccount *wa, PurpleBuddy *buddy, gint64 timestamp)
{
  gint64 current = last_inbound(buddy);
  gint64 newest = wa_window_newest(current, timestamp);

  if (newest != current) {
    g_autofree char *value = g_strdup_printf("%" G_GINT64_FORMAT, newest);

    purple_blist_node_set_string(&buddy->node, WABIZ_NODE_LAST_INBOUND, value);
  }
  set_presence(wa->account, buddy, wabiz_now());
  reschedule(wa);
}

WaWindowState
wabiz_window_state(PurpleAccount *account, const char *customer, gint64 *left)
{
  PurpleBuddy *buddy = purple_find_buddy(account, customer);

  if (left != NULL)
    *left = 0;
  if (buddy == NULL)
    return WA_WINDOW_UNKNOWN;
  return wa_window_state(last_inbound(buddy), wabiz_now(), left);
}

char *
wabiz_status_text(PurpleBuddy *buddy)
{
  char *text = wa_window_describe(last_inbound(buddy), wabiz_now());
  char *escaped;

  if (text == NULL)
    return NULL;
  escaped = g_markup_escape_text(text, -1);
  g_free(text);
  return escaped;
}

void
wabiz_tooltip_text(PurpleBuddy *buddy, PurpleNotifyUserInfo *info, gboolean full)
{
  g_autofree char *window = wa_window_describe(last_inbound(buddy), wabiz_now());
  const char *bsuid = purple_blist_node_get_string(&buddy->node, WABIZ_NODE_BSUID);

  purple_notify_user_info_add_pair_plaintext(info, _("Service window"),
                                             window != NULL ? window : _("No message from this customer yet"));
  if (full && bsuid != NULL && !g_str_equal(bsuid, purple_buddy_get_name(buddy)))
    purple_notify_user_info_add_pair_plaintext(info, _("WhatsApp user ID"), bsuid);
}

/* ---- test hook ------------------------------------------------------------
 * With WABIZ_TEST_HOOKS=1 in the environment the plugin offers the IPC call
 * "clock-advance" (one string argument: seconds, may be negative), which
 * moves the plugin's wall clock for every connected account, so tests can
 * close a window without waiting a day. Never registered otherwise. */

static void
ipc_clock_advance(const char *seconds)
{
  GList *conns;

  clock_offset_s += g_ascii_strtoll(seconds != NULL ? seconds : "0", NULL, 10);
  for (conns = purple_connections_get_all(); conns != NULL; conns = conns->next) {
    PurpleConnection *gc = conns->data;
    PurpleAccount *account = purple_connection_get_account(gc);

    if (g_strcmp0(purple_account_get_protocol_id(account), WABIZ_PRPL_ID) == 0 &&
        purple_connection_get_state(gc) == PURPLE_CONNECTED && purple_connection_get_protocol_data(gc) != NULL)
      wabiz_window_start(purple_connection_get_protocol_data(gc));
  }
}

void
wabiz_test_hooks_register(PurplePlugin *plugin)
{
  if (g_strcmp0(g_getenv("WABIZ_TEST_HOOKS"), "1") != 0)
    return;
  purple_plugin_ipc_register(plugin, "clock-advance", PURPLE_CALLBACK(ipc_clock_advance),
                             purple_marshal_VOID__POINTER, NULL, 1, purple_value_new(PURPLE_TYPE_STRING));
}
