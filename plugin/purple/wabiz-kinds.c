/* wabiz-kinds.c: what the inbound message kinds beyond text need from the
 * plugin besides their line (wabiz-inbound.c writes that): contacts a
 * customer shared, numbered per conversation for /addcontact N; customers'
 * WhatsApp usernames for the tooltip and Get Info; voice calls (field
 * "calls") and other events about a customer, written into the customer's
 * conversation (calls are not answered here).
 * Must not: keep usernames or shared contacts anywhere but in memory and the
 * encrypted store, or pass customer text to libpurple except through
 * wabiz-conv.c. */
#include "wabiz.h"

#include <string.h>

#include "wa-describe.h"

/* The store setting (per customer) that keeps the username. */
#define SETTING_USERNAME "username"

typedef struct {
  char *name;  /* or NULL */
  char *wa_id; /* digits, or NULL when the card has no WhatsApp number */
} Card;

static void
card_free(Card *card)
{
  g_free(card->name);
  g_free(card->wa_id);
  g_free(card);
}

/* The WhatsApp number of @c: its wa_id, else the digits of its first phone. */
static char *
card_number(const WaSharedContact *c)
{
  GString *digits;
  const char *phone;

  if (c->wa_id != NULL && wa_id_phone_or_null(c->wa_id) != NULL)
    return g_strdup(c->wa_id);
  if (c->phones->len == 0)
    return NULL;
  phone = g_ptr_array_index(c->phones, 0);
  digits = g_string_new(NULL);
  for (const char *p = phone; *p != '\0'; p++)
    if (g_ascii_isdigit(*p))
      g_string_append_c(digits, *p);
  if (wa_id_phone_or_null(digits->str) == NULL) {
    g_string_free(digits, TRUE);
    return NULL;
  }
  return g_string_free(digits, FALSE);
}

guint
wabiz_kinds_add_cards(WabizAccount *wa, const char *who, const WaMessage *msg)
{
  GPtrArray *cards;
  guint first;

  if (msg->shared_contacts == NULL || msg->shared_contacts->len == 0)
    return 0;
  if (wa->cards == NULL)
    wa->cards = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_ptr_array_unref);
  cards = g_hash_table_lookup(wa->cards, who);
  if (cards == NULL) {
    cards = g_ptr_array_new_with_free_func((GDestroyNotify) card_free);
    g_hash_table_insert(wa->cards, g_strdup(who), cards);
  }
  first = cards->len + 1;
  for (guint i = 0; i < msg->shared_contacts->len; i++) {
    const WaSharedContact *c = g_ptr_array_index(msg->shared_contacts, i);
    Card *card = g_new0(Card, 1);

    card->name = g_strdup(c->name);
    card->wa_id = card_number(c);
    g_ptr_array_add(cards, card);
  }
  return first;
}

static WabizAccount *
conv_account(PurpleConversation *conv)
{
  return wabiz_account_data(purple_conversation_get_account(conv));
}

PurpleCmdRet
wabiz_cmd_addcontact(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data)
{
  WabizAccount *wa = conv_account(conv);
  GPtrArray *cards;
  const Card *card;
  PurpleBuddy *buddy;
  g_autofree char *line = NULL;
  guint64 n = 0;

  if (wa == NULL) {
    *error = g_strdup(_("The account is not signed in."));
    return PURPLE_CMD_RET_FAILED;
  }
  cards = wa->cards != NULL ? g_hash_table_lookup(wa->cards, purple_conversation_get_name(conv)) : NULL;
  if (args == NULL || args[0] == NULL || !g_ascii_string_to_unsigned(g_strstrip(args[0]), 10, 1, G_MAXUINT, &n, NULL)) {
    *error = g_strdup(_("addcontact N: N is the number of a contact shared in this conversation, as its line shows "
                        "([Contact N])."));
    return PURPLE_CMD_RET_FAILED;
  }
  if (cards == NULL || n > cards->len) {
    *error = g_strdup_printf(_("No contact %u was shared in this conversation since sign-on."), (guint) n);
    return PURPLE_CMD_RET_FAILED;
  }
  card = g_ptr_array_index(cards, n - 1);
  if (card->wa_id == NULL) {
    *error = g_strdup_printf(_("Contact %u has no phone number to add."), (guint) n);
    return PURPLE_CMD_RET_FAILED;
  }
  buddy = wabiz_customer_buddy(wa, card->wa_id, NULL, NULL, TRUE);
  if (buddy == NULL) {
    *error = g_strdup_printf(_("Contact %u has no valid WhatsApp number."), (guint) n);
    return PURPLE_CMD_RET_FAILED;
  }
  /* the agent's own alias for the buddy (a pseudonymous account keeps names
   * out of the buddy list) */
  if (card->name != NULL && *card->name != '\0' &&
      !purple_account_get_bool(wa->account, WABIZ_OPT_PSEUDONYMOUS, FALSE) &&
      purple_buddy_get_alias_only(buddy) == NULL)
    purple_blist_alias_buddy(buddy, card->name);
  line = g_strdup_printf(_("Contact %u is now the buddy +%s."), (guint) n, card->wa_id);
  wabiz_conv_write_plain(conv, line, PURPLE_MESSAGE_SYSTEM, 0);
  return PURPLE_CMD_RET_OK;
}

/* ---- usernames ----------------------------------------------------------- */

static void
username_stored_cb(const GError *error, gpointer data)
{
  if (error != NULL)
    purple_debug_warning("wabiz", "a username could not be stored: %s\n", error->message);
}

void
wabiz_kinds_username_seen(WabizAccount *wa, PurpleBuddy *buddy, const char *customer_id, const char *username)
{
  const char *name;

  if (buddy == NULL || username == NULL || *username == '\0')
    return;
  name = purple_buddy_get_name(buddy);
  if (wa->usernames == NULL)
    wa->usernames = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  if (g_strcmp0(g_hash_table_lookup(wa->usernames, name), username) == 0)
    return;
  g_hash_table_replace(wa->usernames, g_strdup(name), g_strdup(username));
  if (customer_id != NULL && wa->store != NULL)
    wa_store_setting_set(wa->store, customer_id, SETTING_USERNAME, username, username_stored_cb, NULL);
}

const char *
wabiz_kinds_username(WabizAccount *wa, PurpleBuddy *buddy)
{
  const char *username;

  if (wa == NULL || wa->usernames == NULL || buddy == NULL)
    return NULL;
  username = g_hash_table_lookup(wa->usernames, purple_buddy_get_name(buddy));
  return username != NULL && *username != '\0' ? username : NULL; /* "": looked up, none */
}

typedef struct {
  WabizAccount *wa;
  char *who;
  WabizKindsThen then;
} UsernameLoad;

static void
username_load_free(UsernameLoad *load)
{
  g_free(load->who);
  g_free(load);
}

static void
username_loaded_cb(const char *value, const GError *error, gpointer data)
{
  UsernameLoad *load = data;
  WabizAccount *wa = load->wa;

  wabiz_store_release(wa, load);
  if (error != NULL)
    purple_debug_warning("wabiz", "a username could not be read: %s\n", error->message);
  if (wa->usernames == NULL)
    wa->usernames = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  if (!g_hash_table_contains(wa->usernames, load->who))
    g_hash_table_insert(wa->usernames, g_strdup(load->who), g_strdup(value != NULL ? value : ""));
  load->then(wa, load->who);
  username_load_free(load);
}

gboolean
wabiz_kinds_username_load(WabizAccount *wa, const char *who, WabizKindsThen then)
{
  PurpleBuddy *buddy = purple_find_buddy(wa->account, who);
  const char *customer = buddy != NULL ? purple_blist_node_get_string(&buddy->node, WABIZ_NODE_CUSTOMER_ID) : NULL;
  UsernameLoad *load;

  if (customer == NULL || wa->store == NULL || (wa->usernames != NULL && g_hash_table_contains(wa->usernames, who)))
    return FALSE;
  load = g_new0(UsernameLoad, 1);
  load->wa = wa;
  load->who = g_strdup(who);
  load->then = then;
  wa_store_setting_get(wa->store, customer, SETTING_USERNAME, username_loaded_cb,
                       wabiz_store_hold(wa, load, (GDestroyNotify) username_load_free));
  return TRUE;
}

/* A buddy moved to a new name: its username goes with it. */
void
wabiz_kinds_renamed(WabizAccount *wa, const char *old_name, const char *new_name)
{
  char *username;

  if (wa->usernames != NULL && (username = g_hash_table_lookup(wa->usernames, old_name)) != NULL) {
    g_hash_table_insert(wa->usernames, g_strdup(new_name), g_strdup(username));
    g_hash_table_remove(wa->usernames, old_name);
  }
}

void
wabiz_kinds_stop(WabizAccount *wa)
{
  g_clear_pointer(&wa->cards, g_hash_table_destroy);
  g_clear_pointer(&wa->usernames, g_hash_table_destroy);
}

/* ---- calls and other events about a customer ------------------------------ */

/* The buddy of the customer @contact names (created), or NULL. */
static PurpleBuddy *
event_buddy(WabizAccount *wa, const char *wa_id, const char *bsuid, const WaContact *contact)
{
  if (wa_id == NULL && contact != NULL)
    wa_id = contact->wa_id;
  if (bsuid == NULL && contact != NULL)
    bsuid = contact->user_id;
  return wabiz_customer_buddy(wa, wa_id, bsuid, contact != NULL ? contact->profile_name : NULL, TRUE);
}

void
wabiz_kinds_calls(WabizAccount *wa, const WaChange *change)
{
  for (guint i = 0; i < change->calls->len; i++) {
    const WaCall *call = g_ptr_array_index(change->calls, i);
    gboolean ours = g_strcmp0(call->direction, "BUSINESS_INITIATED") == 0;
    const WaContact *contact = ours ? NULL : wa_change_find_call_contact(change, call);
    PurpleBuddy *buddy;
    g_autofree char *line = NULL;

    /* the business's own calls (made elsewhere) go to the customer called */
    if (ours && change->contacts->len == 1)
      contact = g_ptr_array_index(change->contacts, 0);
    buddy = event_buddy(wa, ours ? call->to : call->from, ours ? NULL : call->from_user_id, contact);
    if (buddy == NULL) {
      wabiz_notice(wa, _("A WhatsApp call came from someone who is not a valid WhatsApp number or user ID."));
      continue;
    }
    line = wa_call_describe(call);
    wabiz_conv_write_plain(wabiz_conv_im(wa->account, purple_buddy_get_name(buddy), TRUE), line, PURPLE_MESSAGE_SYSTEM,
                           (time_t) call->timestamp);
  }
}

gboolean
wabiz_kinds_customer_event(WabizAccount *wa, const WaChange *change)
{
  gboolean shown = FALSE;

  for (guint i = 0; i < change->contacts->len; i++) {
    const WaContact *contact = g_ptr_array_index(change->contacts, i);
    PurpleBuddy *buddy = event_buddy(wa, NULL, NULL, contact);
    g_autofree char *line = NULL;

    if (buddy == NULL)
      continue;
    if (g_strcmp0(change->field, "call_permission_update") == 0)
      line = g_strdup(_("The customer changed whether this business may call them. Calls are not answered here."));
    else
      line = g_strdup_printf(_("WhatsApp sent an event of a kind this version does not show (\"%s\") about this "
                               "customer."),
                             change->field != NULL ? change->field : "?");
    wabiz_conv_write_plain(wabiz_conv_im(wa->account, purple_buddy_get_name(buddy), TRUE), line, PURPLE_MESSAGE_SYSTEM,
                           (time_t) change->entry_time);
    shown = TRUE;
  }
  return shown;
}
