/* wabiz-host: buddy list UI ops and signals, reported as "buddy" events.
 * libpurple calls the update op far more often than anything changes, so a
 * buddy is reported only when what a user would see of it changed. */
#include "host.h"

/* PurpleBuddy * -> signature (char *) of the last "buddy" event. */
static GHashTable *last_seen;

static const char *
status_message(PurpleStatus *status)
{
	return status != NULL ? purple_status_get_attr_string(status, "message") : NULL;
}

/* Marks NULL apart from "" in a signature. */
static const char *
or_null_mark(const char *s)
{
	return s != NULL ? s : "\x1e";
}

static char *
buddy_signature(PurpleBuddy *buddy)
{
	PurplePresence *presence = purple_buddy_get_presence(buddy);
	PurpleStatus *status = purple_presence_get_active_status(presence);
	PurpleGroup *group = purple_buddy_get_group(buddy);

	/* Unit separators keep fields apart; NULL and "" differ on purpose. */
	return g_strdup_printf(
	        "%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%d%d%d", purple_buddy_get_name(buddy),
	        purple_buddy_get_alias(buddy), or_null_mark(purple_buddy_get_server_alias(buddy)),
	        or_null_mark(purple_buddy_get_local_buddy_alias(buddy)),
	        or_null_mark(group != NULL ? purple_group_get_name(group) : NULL),
	        or_null_mark(status != NULL ? purple_status_get_id(status) : NULL),
	        or_null_mark(status_message(status)), purple_presence_is_available(presence),
	        PURPLE_BUDDY_IS_ONLINE(buddy),
	        purple_blist_node_get_bool(PURPLE_BLIST_NODE(buddy), "show_offline"));
}

void
host_blist_emit_buddy(PurpleBuddy *buddy, gboolean force)
{
	PurplePresence *presence = purple_buddy_get_presence(buddy);
	PurpleStatus *status = purple_presence_get_active_status(presence);
	PurpleGroup *group = purple_buddy_get_group(buddy);
	char *signature = buddy_signature(buddy);
	JsonBuilder *b;

	if (!force && g_strcmp0(g_hash_table_lookup(last_seen, buddy), signature) == 0) {
		g_free(signature);
		return;
	}
	g_hash_table_replace(last_seen, buddy, signature);

	b = host_event_new("buddy");
	host_add_string(b, "name", purple_buddy_get_name(buddy));
	host_add_string(b, "alias", purple_buddy_get_alias(buddy));
	host_add_string(b, "server_alias", purple_buddy_get_server_alias(buddy));
	host_add_string(b, "local_alias", purple_buddy_get_local_buddy_alias(buddy));
	host_add_string(b, "group", group != NULL ? purple_group_get_name(group) : NULL);
	host_add_string(b, "status_id", status != NULL ? purple_status_get_id(status) : NULL);
	host_add_string(b, "status_name", status != NULL ? purple_status_get_name(status) : NULL);
	host_add_string(b, "status_message", status_message(status));
	host_add_bool(b, "available", purple_presence_is_available(presence));
	host_add_bool(b, "online", PURPLE_BUDDY_IS_ONLINE(buddy));
	host_add_bool(b, "show_offline",
	              purple_blist_node_get_bool(PURPLE_BLIST_NODE(buddy), "show_offline"));
	host_event_emit(b);
}

guint
host_blist_dump(void)
{
	guint count = 0;

	for (PurpleBlistNode *node = purple_blist_get_root(); node != NULL;
	     node = purple_blist_node_next(node, TRUE)) {
		if (PURPLE_BLIST_NODE_IS_BUDDY(node)) {
			host_blist_emit_buddy(PURPLE_BUDDY(node), TRUE);
			count++;
		}
	}
	return count;
}

/* --- UI ops ------------------------------------------------------------ */

static void
blist_update(PurpleBuddyList *list, PurpleBlistNode *node)
{
	if (node != NULL && PURPLE_BLIST_NODE_IS_BUDDY(node))
		host_blist_emit_buddy(PURPLE_BUDDY(node), FALSE);
}

static void
blist_remove(PurpleBuddyList *list, PurpleBlistNode *node)
{
	if (node != NULL && last_seen != NULL)
		g_hash_table_remove(last_seen, node);
}

static void
request_add_buddy(PurpleAccount *account, const char *username, const char *group,
                  const char *alias)
{
	JsonBuilder *b = host_event_new("request-add-buddy");

	host_add_string(b, "name", username);
	host_add_string(b, "group", group);
	host_add_string(b, "alias", alias);
	host_event_emit(b);
}

static PurpleBlistUiOps blist_ops = {
	.update = blist_update,
	.remove = blist_remove,
	.request_add_buddy = request_add_buddy,
};

PurpleBlistUiOps *
host_blist_ui_ops(void)
{
	return &blist_ops;
}

/* --- signals ----------------------------------------------------------- */

static void
buddy_changed_cb(PurpleBuddy *buddy, gpointer data)
{
	host_blist_emit_buddy(buddy, FALSE);
}

static void
buddy_status_changed_cb(PurpleBuddy *buddy, PurpleStatus *old_status, PurpleStatus *new_status,
                        gpointer data)
{
	host_blist_emit_buddy(buddy, FALSE);
}

static void
buddy_removed_cb(PurpleBuddy *buddy, gpointer data)
{
	JsonBuilder *b = host_event_new("buddy-removed");

	g_hash_table_remove(last_seen, buddy);
	host_add_string(b, "name", purple_buddy_get_name(buddy));
	host_event_emit(b);
}

static void
node_aliased_cb(PurpleBlistNode *node, const char *old_alias, gpointer data)
{
	if (PURPLE_BLIST_NODE_IS_BUDDY(node)) {
		host_blist_emit_buddy(PURPLE_BUDDY(node), FALSE);
	} else if (PURPLE_BLIST_NODE_IS_CONTACT(node)) {
		for (PurpleBlistNode *child = purple_blist_node_get_first_child(node);
		     child != NULL; child = purple_blist_node_get_sibling_next(child)) {
			if (PURPLE_BLIST_NODE_IS_BUDDY(child))
				host_blist_emit_buddy(PURPLE_BUDDY(child), FALSE);
		}
	}
}

void
host_blist_init(void *handle)
{
	void *blist = purple_blist_get_handle();

	last_seen = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
	purple_signal_connect(blist, "buddy-added", handle, PURPLE_CALLBACK(buddy_changed_cb),
	                      NULL);
	purple_signal_connect(blist, "buddy-removed", handle, PURPLE_CALLBACK(buddy_removed_cb),
	                      NULL);
	purple_signal_connect(blist, "buddy-status-changed", handle,
	                      PURPLE_CALLBACK(buddy_status_changed_cb), NULL);
	purple_signal_connect(blist, "buddy-signed-on", handle, PURPLE_CALLBACK(buddy_changed_cb),
	                      NULL);
	purple_signal_connect(blist, "buddy-signed-off", handle, PURPLE_CALLBACK(buddy_changed_cb),
	                      NULL);
	purple_signal_connect(blist, "blist-node-aliased", handle, PURPLE_CALLBACK(node_aliased_cb),
	                      NULL);
}

void
host_blist_shutdown(void)
{
	g_clear_pointer(&last_seen, g_hash_table_destroy);
}
