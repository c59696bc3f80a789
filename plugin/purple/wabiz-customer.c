/* wabiz-customer.c: customers as buddies. Finds or creates a customer's
 * buddy by phone number or business-scoped user ID (BSUID), links a BSUID
 * to a phone number seen later, moves a buddy and its conversation to a new
 * name, and sets aliases (the profile name, or "Customer 1A2B3C" with
 * pseudonymous aliases, when the profile name stays in memory only).
 * Used by receiving, sending, the window and the GDPR commands.
 * Must not: name a buddy by anything that is not a phone number or BSUID,
 * or write a profile name into the buddy list in pseudonymous mode. */
#include "wabiz.h"

#include <string.h>

/* The customer's buddy and conversation move from @old_name to @new_name (a
 * phone number for a customer first known by BSUID, a changed number, the
 * number WhatsApp uses for what the agent typed). Neither takes a name that
 * another buddy or conversation already has. TRUE when the buddy moved. */
gboolean
wabiz_customer_rename(WabizAccount *wa, const char *old_name, const char *new_name)
{
  g_autofree char *old = g_strdup(old_name); /* may be the buddy's own name */
  PurpleBuddy *buddy = purple_find_buddy(wa->account, old);
  PurpleConversation *conv;
  gboolean moved = FALSE;

  if (g_str_equal(old, new_name))
    return FALSE;
  if (buddy != NULL && purple_find_buddy(wa->account, new_name) == NULL) {
    purple_blist_rename_buddy(buddy, new_name);
    wabiz_kinds_renamed(wa, old, new_name);
    moved = TRUE;
  }
  conv = wabiz_conv_im(wa->account, old, FALSE);
  if (conv != NULL && wabiz_conv_im(wa->account, new_name, FALSE) == NULL)
    purple_conversation_set_name(conv, new_name);
  return moved;
}

static PurpleBuddy *
find_by_bsuid(PurpleAccount *account, const char *bsuid)
{
  GSList *buddies = purple_find_buddies(account, NULL);
  PurpleBuddy *found = NULL;

  for (GSList *l = buddies; l != NULL && found == NULL; l = l->next) {
    PurpleBuddy *buddy = l->data;

    if (g_strcmp0(purple_buddy_get_name(buddy), bsuid) == 0 ||
        g_strcmp0(purple_blist_node_get_string(&buddy->node, WABIZ_NODE_BSUID), bsuid) == 0)
      found = buddy;
  }
  g_slist_free(buddies);
  return found;
}

/* A customer first known by BSUID now shows a phone number: the buddy and its
 * conversation take the number, the BSUID stays linked. */
static void
link_phone(WabizAccount *wa, PurpleBuddy *buddy, const char *wa_id)
{
  g_autofree char *text = NULL;

  if (!wa_id_is_bsuid(purple_buddy_get_name(buddy)) || !wabiz_customer_rename(wa, purple_buddy_get_name(buddy), wa_id))
    return;
  text = g_strdup_printf(_("This customer now shares the phone number +%s."), wa_id);
  wabiz_conv_write_plain(wabiz_conv_im(wa->account, wa_id, TRUE), text, PURPLE_MESSAGE_SYSTEM, 0);
}

static gboolean
pseudonymous(WabizAccount *wa)
{
  return purple_account_get_bool(wa->account, WABIZ_OPT_PSEUDONYMOUS, FALSE);
}

PurpleBuddy *
wabiz_customer_buddy(WabizAccount *wa, const char *wa_id, const char *bsuid, const char *profile_name, gboolean create)
{
  PurpleBuddy *buddy = NULL;

  wa_id = wa_id_phone_or_null(wa_id);
  bsuid = wa_id_bsuid_or_null(bsuid);
  if (wa_id != NULL)
    buddy = purple_find_buddy(wa->account, wa_id);
  if (buddy == NULL && bsuid != NULL) {
    buddy = find_by_bsuid(wa->account, bsuid);
    if (buddy != NULL && wa_id != NULL)
      link_phone(wa, buddy, wa_id);
  }
  if (buddy == NULL) {
    const char *group_name = _(WABIZ_GROUP_DEFAULT);
    PurpleGroup *group;

    if (!create || (wa_id == NULL && bsuid == NULL))
      return NULL;
    group = purple_find_group(group_name);
    if (group == NULL) {
      group = purple_group_new(group_name);
      purple_blist_add_group(group, NULL);
    }
    /* its customer id comes from the store, with the first stored message */
    buddy = purple_buddy_new(wa->account, wa_id != NULL ? wa_id : bsuid, NULL);
    purple_blist_add_buddy(buddy, NULL, group, NULL);
  }
  if (bsuid != NULL)
    purple_blist_node_set_string(&buddy->node, WABIZ_NODE_BSUID, bsuid);
  if (profile_name != NULL && *profile_name != '\0' && !pseudonymous(wa) &&
      g_strcmp0(purple_buddy_get_server_alias(buddy), profile_name) != 0)
    serv_got_alias(wa->gc, purple_buddy_get_name(buddy), profile_name);
  return buddy;
}

void
wabiz_customer_identify(WabizAccount *wa, PurpleBuddy *buddy, const char *customer_id, const char *profile_name)
{
  g_autofree char *tag = NULL;
  g_autofree char *alias = NULL;

  if (buddy == NULL || customer_id == NULL)
    return;
  purple_blist_node_set_string(&buddy->node, WABIZ_NODE_CUSTOMER_ID, customer_id);
  if (!pseudonymous(wa))
    return;
  tag = g_ascii_strup(customer_id, MIN(strlen(customer_id), 6));
  alias = g_strdup_printf(_("Customer %s"), tag);
  if (g_strcmp0(purple_buddy_get_server_alias(buddy), alias) != 0)
    serv_got_alias(wa->gc, purple_buddy_get_name(buddy), alias);
  if (profile_name != NULL && *profile_name != '\0') {
    if (wa->names == NULL)
      wa->names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_hash_table_replace(wa->names, g_strdup(customer_id), g_strdup(profile_name));
  }
}

static void
names_cb(GPtrArray *customers, const GError *error, gpointer data)
{
  WabizAccount *wa = data;
  g_autoptr(GHashTable) by_id = g_hash_table_new(g_str_hash, g_str_equal);
  GSList *buddies;

  if (error != NULL)
    purple_debug_warning("wabiz", "the customers' profile names could not be read: %s\n", error->message);
  if (customers == NULL)
    return;
  buddies = purple_find_buddies(wa->account, NULL);
  for (GSList *l = buddies; l != NULL; l = l->next) {
    const char *id = purple_blist_node_get_string(&((PurpleBuddy *) l->data)->node, WABIZ_NODE_CUSTOMER_ID);

    if (id != NULL)
      g_hash_table_insert(by_id, (gpointer) id, l->data);
  }
  /* buddies named before the option was set lose the profile name */
  for (guint i = 0; i < customers->len; i++) {
    const WaStoreCustomer *c = g_ptr_array_index(customers, i);

    wabiz_customer_identify(wa, g_hash_table_lookup(by_id, c->id), c->id, c->name);
  }
  g_slist_free(buddies);
}

/* At sign-on, with pseudonymous aliases: the profile names (kept only in
 * memory then) from the store. Nothing otherwise: the names are the
 * buddies' aliases already. */
void
wabiz_customer_names_load(WabizAccount *wa)
{
  if (pseudonymous(wa))
    wa_store_customers_list(wa->store, names_cb, wa);
}
