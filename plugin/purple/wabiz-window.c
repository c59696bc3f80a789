/* wabiz-window.c: the 24-hour customer service window as buddy presence.
 *
 * available = open, away = under an hour left, offline = closed (kept visible
 * with the node's show_offline: these customers need a template). The window
 * runs from the newest customer message's own timestamp, kept by the
 * encrypted store (per customer) and mirrored here in memory, keyed by the
 * store's customer id that the buddy carries. One timer per account, for
 * the next change of any buddy. Status text and tooltip are computed when
 * libpurple asks, so they are never stale.
 * Must not: keep a timer per buddy, or move a window back. */
#include "wabiz.h"

#include <string.h>

typedef struct _WabizWindowLoad WabizWindowLoad;
static void window_load_free(WabizWindowLoad *load);

static gint64
last_inbound(PurpleBuddy *buddy)
{
  WabizAccount *wa = wabiz_account_data(purple_buddy_get_account(buddy));
  const char *customer = purple_blist_node_get_string(&buddy->node, WABIZ_NODE_CUSTOMER_ID);
  gint64 *newest;

  if (wa == NULL || wa->windows == NULL || customer == NULL)
    return 0;
  newest = g_hash_table_lookup(wa->windows, customer);
  return newest != NULL ? *newest : 0;
}

static void
remember_window(WabizAccount *wa, const char *customer, gint64 newest)
{
  gint64 *value = g_hash_table_lookup(wa->windows, customer);

  if (value == NULL) {
    value = g_new0(gint64, 1);
    g_hash_table_insert(wa->windows, g_strdup(customer), value);
  }
  *value = wa_window_newest(*value, newest);
}

/* In BitlBee the away message is all an IRC user sees of the window (as
 * the /whois away line): it says when the window closes, to the minute. */
static void
set_closing(PurpleAccount *account, PurpleBuddy *buddy, gint64 left)
{
  PurpleStatus *away = purple_presence_get_status(purple_buddy_get_presence(buddy), "away");
  gint64 minutes = MAX((left + 59) / 60, 1);
  g_autofree char *message = g_strdup_printf(ngettext("service window closes in %lld min",
                                                      "service window closes in %lld min", (gulong) minutes),
                                             (long long) minutes);

  if (!purple_status_is_active(away) || g_strcmp0(purple_status_get_attr_string(away, "message"), message) != 0)
    purple_prpl_got_user_status(account, purple_buddy_get_name(buddy), "away", "message", message, NULL);
}

static void
set_presence(PurpleAccount *account, PurpleBuddy *buddy, gint64 now)
{
  const char *status;
  gint64 left = 0;

  switch (wa_window_state(last_inbound(buddy), now, &left)) {
  case WA_WINDOW_OPEN:
    status = "available";
    break;
  case WA_WINDOW_CLOSING:
    if (wabiz_bitlbee()) {
      set_closing(account, buddy, left);
      return;
    }
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

/* The window timer never waits longer than this: the wall clock can jump
 * (a suspend and resume, or a corrected clock) while a timeout, which runs
 * on the monotonic clock, would wait on. Each tick rechecks presence. */
#define WINDOW_TICK_S 60

static gint64
window_tick_s(void)
{
  static gint64 tick;

  if (tick == 0) {
    const char *test = wabiz_test_env("WABIZ_TEST_WINDOW_TICK_S");
    guint64 value = 0;

    tick = test != NULL && g_ascii_string_to_unsigned(test, 10, 1, WINDOW_TICK_S, &value, NULL) ? (gint64) value
                                                                                                : WINDOW_TICK_S;
  }
  return tick;
}

/* The window timer fires at @next (0: no timer), or at the next tick when
 * that comes first. */
static void
set_timer(WabizAccount *wa, gint64 now, gint64 next)
{
  gint64 wait;

  if (wa->window_timer != 0) {
    purple_timeout_remove(wa->window_timer);
    wa->window_timer = 0;
  }
  if (next == 0)
    return;
  wait = CLAMP(next - now, 1, window_tick_s());
  wa->window_at = now + wait;
  wa->window_timer = purple_timeout_add((guint) (wait * 1000), window_timer_cb, wa);
}

/* One timer for the earliest next change among the account's buddies, or
 * the next tick when that comes first. */
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
  set_timer(wa, now, next);
}

/* Presence is set for at most this long in one turn of the loop: at
 * sign-on thousands of buddies change at once (each a signal the UI
 * redraws a row for), the rest waits for the next turns. */
#define PRESENCE_SLICE_US 5000

static gboolean
presence_slice_cb(gpointer data)
{
  WabizAccount *wa = data;
  gint64 until = g_get_monotonic_time() + PRESENCE_SLICE_US;
  gint64 now = wabiz_now();
  char *name;

  while (g_get_monotonic_time() < until && (name = g_queue_pop_head(&wa->presence_todo)) != NULL) {
    /* by name: a buddy may have gone meanwhile */
    PurpleBuddy *buddy = purple_find_buddy(wa->account, name);

    if (buddy != NULL)
      set_presence(wa->account, buddy, now);
    g_free(name);
  }
  if (!g_queue_is_empty(&wa->presence_todo))
    return G_SOURCE_CONTINUE;
  wa->presence_slice = 0;
  reschedule(wa);
  return G_SOURCE_REMOVE;
}

/* Every buddy's presence (in slices), then the timer. */
void
wabiz_window_start(WabizAccount *wa)
{
  GSList *buddies = purple_find_buddies(wa->account, NULL);

  g_queue_clear_full(&wa->presence_todo, g_free);
  for (GSList *l = buddies; l != NULL; l = l->next)
    g_queue_push_tail(&wa->presence_todo, g_strdup(purple_buddy_get_name(l->data)));
  g_slist_free(buddies);
  if (presence_slice_cb(wa) && wa->presence_slice == 0)
    wa->presence_slice = purple_timeout_add(0, presence_slice_cb, wa);
}

void
wabiz_window_stop(WabizAccount *wa)
{
  g_clear_pointer(&wa->window_load, window_load_free);
  g_clear_pointer(&wa->windows, g_hash_table_destroy);
  g_clear_pointer(&wa->names, g_hash_table_destroy);
  if (wa->window_timer != 0) {
    purple_timeout_remove(wa->window_timer);
    wa->window_timer = 0;
  }
  if (wa->presence_slice != 0) {
    purple_timeout_remove(wa->presence_slice);
    wa->presence_slice = 0;
  }
  g_queue_clear_full(&wa->presence_todo, g_free);
}

/* @buddy's customer wrote at @timestamp (the store has recorded it). Only
 * this buddy is looked at: a message moves its window later, so the timer
 * is moved only when this buddy's next change comes before it (a timer
 * that fires early finds nothing to change and sets the next one). */
void
wabiz_window_update(WabizAccount *wa, PurpleBuddy *buddy, gint64 timestamp)
{
  const char *customer = purple_blist_node_get_string(&buddy->node, WABIZ_NODE_CUSTOMER_ID);
  gint64 now = wabiz_now();
  gint64 at;

  if (customer != NULL && wa->windows != NULL)
    remember_window(wa, customer, timestamp);
  set_presence(wa->account, buddy, now);
  at = wa_window_next_change(last_inbound(buddy), now);
  if (at > 0 && (wa->window_timer == 0 || at < wa->window_at))
    set_timer(wa, now, at);
}

/* Buddies of an older version kept the window in their node settings: it
 * moves into the store (the customer is found or created by the buddy's
 * name) and the setting leaves blist.xml. */
typedef struct {
  WabizAccount *wa;
  gint64 newest;
} Migration;

static void
migrated_cb(const WaStoreCustomerUpdate *update, const GError *error, gpointer data)
{
  Migration *m = data;
  WabizAccount *wa = m->wa;
  PurpleBuddy *buddy;

  wabiz_store_release(wa, m);
  if (error != NULL || update->customer == NULL) {
    purple_debug_warning("wabiz", "a buddy's window could not be moved into the store: %s\n",
                         error != NULL ? error->message : "?");
  } else if ((buddy = wabiz_customer_buddy(wa, update->customer->wa_id, update->customer->bsuid, NULL, FALSE)) !=
             NULL) {
    wa_store_customer_set_newest_inbound(wa->store, update->customer->id, m->newest, NULL, NULL);
    wabiz_customer_identify(wa, buddy, update->customer->id, NULL);
    purple_blist_node_remove_setting(&buddy->node, WABIZ_NODE_LAST_INBOUND);
    wabiz_window_update(wa, buddy, m->newest);
  }
  g_free(m);
}

static void
migrate_node_windows(WabizAccount *wa)
{
  GSList *buddies = purple_find_buddies(wa->account, NULL);

  for (GSList *l = buddies; l != NULL; l = l->next) {
    PurpleBuddy *buddy = l->data;
    const char *old = purple_blist_node_get_string(&buddy->node, WABIZ_NODE_LAST_INBOUND);
    Migration *m;

    if (old == NULL)
      continue;
    m = g_new0(Migration, 1);
    m->wa = wa;
    m->newest = g_ascii_strtoll(old, NULL, 10);
    wabiz_store_ensure_address(wa, purple_buddy_get_name(buddy), migrated_cb, wabiz_store_hold(wa, m, g_free));
  }
  g_slist_free(buddies);
}

/* The customers' windows read at sign-on, taken in slices (a hundred
 * thousand customers would hold the loop for tens of milliseconds). */
struct _WabizWindowLoad {
  GPtrArray *customers;   /* WaStoreCustomer*: each freed once taken */
  GHashTable *with_buddy; /* customer ids that have a buddy */
  guint next;
  gint64 now;
  guint slice;
};

static void
window_load_free(WabizWindowLoad *load)
{
  if (load == NULL)
    return;
  if (load->slice != 0)
    purple_timeout_remove(load->slice);
  g_ptr_array_unref(load->customers);
  g_hash_table_destroy(load->with_buddy);
  g_free(load);
}

static gboolean
load_slice_cb(gpointer data)
{
  WabizAccount *wa = data;
  WabizWindowLoad *load = wa->window_load;
  gint64 until = g_get_monotonic_time() + PRESENCE_SLICE_US;

  /* a window is looked up through a buddy: those of customers without one
   * are kept while open (a buddy may come for them), closed ones are not
   * (a message brings theirs back) */
  while (load->next < load->customers->len && g_get_monotonic_time() < until) {
    WaStoreCustomer *customer = g_ptr_array_index(load->customers, load->next);

    if (wa_window_state(customer->newest_inbound, load->now, NULL) != WA_WINDOW_CLOSED ||
        g_hash_table_contains(load->with_buddy, customer->id))
      remember_window(wa, customer->id, customer->newest_inbound);
    wa_store_customer_free(customer);
    load->customers->pdata[load->next++] = NULL;
  }
  if (load->next < load->customers->len)
    return G_SOURCE_CONTINUE;
  load->slice = 0;
  g_clear_pointer(&wa->window_load, window_load_free);
  wabiz_customer_names_load(wa);
  migrate_node_windows(wa);
  wabiz_window_start(wa);
  return G_SOURCE_REMOVE;
}

static void
customers_cb(GPtrArray *customers, const GError *error, gpointer data)
{
  WabizAccount *wa = data;
  WabizWindowLoad *load;
  GSList *buddies;

  if (error != NULL) {
    g_autofree char *text = g_strdup_printf(_("The customers' service windows could not be read: %s"), error->message);

    wabiz_notice(wa, text);
  }
  g_clear_pointer(&wa->window_load, window_load_free);
  load = g_new0(WabizWindowLoad, 1);
  load->customers = customers != NULL ? g_ptr_array_ref(customers) : g_ptr_array_new();
  load->with_buddy = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  load->now = wabiz_now();
  buddies = purple_find_buddies(wa->account, NULL);
  for (GSList *l = buddies; l != NULL; l = l->next) {
    const char *id = purple_blist_node_get_string(&((PurpleBuddy *) l->data)->node, WABIZ_NODE_CUSTOMER_ID);

    if (id != NULL)
      g_hash_table_add(load->with_buddy, g_strdup(id));
  }
  g_slist_free(buddies);
  wa->window_load = load;
  if (load_slice_cb(wa))
    load->slice = purple_timeout_add(0, load_slice_cb, wa);
}

/* At sign-on: every customer's window from the store, then presence. */
void
wabiz_window_load(WabizAccount *wa)
{
  if (wa->windows == NULL)
    wa->windows = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  wa_store_customers_windows(wa->store, customers_cb, wa);
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

#define NO_WINDOW_YET _("No service window yet: no message from this customer")

/* The tooltip's lines; @alias_as_profile: the alias (WhatsApp's profile name
 * unless aliases are pseudonymous) is shown as the profile name when the
 * name is not kept apart. */
static void
add_customer_info(PurpleBuddy *buddy, PurpleNotifyUserInfo *info, gboolean full, gboolean alias_as_profile)
{
  g_autofree char *window = wa_window_describe(last_inbound(buddy), wabiz_now());
  const char *bsuid = purple_blist_node_get_string(&buddy->node, WABIZ_NODE_BSUID);
  const char *customer = purple_blist_node_get_string(&buddy->node, WABIZ_NODE_CUSTOMER_ID);
  WabizAccount *wa = wabiz_account_data(purple_buddy_get_account(buddy));
  /* with pseudonymous aliases the profile name is only in memory */
  const char *profile =
    wa != NULL && wa->names != NULL && customer != NULL ? g_hash_table_lookup(wa->names, customer) : NULL;

  if (profile == NULL && alias_as_profile)
    profile = purple_buddy_get_server_alias(buddy);
  /* the text names the window itself: no label */
  purple_notify_user_info_add_pair_plaintext(info, NULL, window != NULL ? window : NO_WINDOW_YET);
  if (profile != NULL)
    purple_notify_user_info_add_pair_plaintext(info, _("Profile name"), profile);
  if (full && bsuid != NULL && !g_str_equal(bsuid, purple_buddy_get_name(buddy)))
    purple_notify_user_info_add_pair_plaintext(info, _("WhatsApp user ID"), bsuid);
  if (wabiz_kinds_username(wa, buddy) != NULL)
    purple_notify_user_info_add_pair_plaintext(info, _("WhatsApp username"), wabiz_kinds_username(wa, buddy));
  wabiz_receipts_info(buddy, info);
}

void
wabiz_tooltip_text(PurpleBuddy *buddy, PurpleNotifyUserInfo *info, gboolean full)
{
  add_customer_info(buddy, info, full, FALSE);
}

/* "Get Info": the customer's address, then what the tooltip shows. Every
 * value is added as plain text (libpurple escapes it): profile names come
 * from customers. */
static void get_info_loaded(WabizAccount *wa, const char *who);

void
wabiz_get_info(PurpleConnection *gc, const char *who)
{
  PurpleAccount *account = purple_connection_get_account(gc);
  WabizAccount *wa = wabiz_account_data(account);

  /* after a restart the username is in the store only */
  if (wa != NULL && wabiz_kinds_username_load(wa, who, get_info_loaded))
    return;
  PurpleBuddy *buddy = purple_find_buddy(account, who);
  PurpleNotifyUserInfo *info = purple_notify_user_info_new();

  if (wa_id_is_phone(who)) {
    g_autofree char *number = g_strdup_printf("+%s", who);

    purple_notify_user_info_add_pair_plaintext(info, _("WhatsApp number"), number);
  } else {
    purple_notify_user_info_add_pair_plaintext(info, _("WhatsApp user ID"), who);
  }
  if (buddy != NULL)
    add_customer_info(buddy, info, TRUE, TRUE);
  else
    purple_notify_user_info_add_pair_plaintext(info, NULL, NO_WINDOW_YET);
  purple_notify_userinfo(gc, who, info, NULL, NULL);
  purple_notify_user_info_destroy(info);
}

static void
get_info_loaded(WabizAccount *wa, const char *who)
{
  wabiz_get_info(wa->gc, who);
}
