/* wabiz-host: shared state and helpers of the headless libpurple test host.
 *
 * The host loads a protocol plugin into a real libpurple core, reports what
 * a UI would see as one JSON object per line on stdout and takes commands as
 * one JSON object per line on stdin.  It is a test tool: it must never add
 * behaviour that Pidgin or Finch would not have, because end-to-end tests
 * judge the plugin by what this host reports.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <purple.h>

#define HOST_UI_ID "wabiz-host"
/* With --bitlbee: the UI id bitlbee-libpurple gives libpurple. */
#define HOST_BITLBEE_UI_ID "BitlBee"

typedef struct _HostCmd HostCmd;

typedef struct {
	/* Command line. */
	char *plugin_dir;
	char *user_dir;
	char *protocol;
	char *username;
	char *password;
	char **options;
	int reconnect_delay_ms;
	gboolean no_enable;
	gboolean debug;
	/* --bitlbee: the UI ops bitlbee-libpurple 3.6 has (and no others), and
	 * its UI id; every "write" event says whether BitlBee shows the line. */
	gboolean bitlbee;

	GMainLoop *loop;
	PurpleAccount *account;
	char *focused; /* the conversation the "focus" command focused, or NULL */
	int exit_code;
	gboolean quitting;
} Host;

/* The one host of this process (libpurple's UI ops carry no user data). */
Host *host_get(void);

/* HOST_UI_ID, or HOST_BITLBEE_UI_ID with --bitlbee. */
const char *host_ui_id(void);

/* Asks the main loop to stop; main() then shuts libpurple down. */
void host_request_quit(int exit_code);

/* --- host-emit.c: JSON lines on stdout ------------------------------- */

/* Starts an object with "event": @event.  Finish it with host_event_emit(). */
JsonBuilder *host_event_new(const char *event);
/* Ends the object, writes it as one line, flushes stdout and frees @b. */
void host_event_emit(JsonBuilder *b);
/* Members; a NULL string becomes JSON null, invalid UTF-8 is repaired. */
void host_add_string(JsonBuilder *b, const char *key, const char *value);
/* "account": the user name of @account (the host may run more than one). */
void host_add_account(JsonBuilder *b, PurpleAccount *account);
void host_add_int(JsonBuilder *b, const char *key, gint64 value);
void host_add_bool(JsonBuilder *b, const char *key, gboolean value);
void host_add_null(JsonBuilder *b, const char *key);
/* Adds the string value of an array element (NULL becomes null). */
void host_add_string_element(JsonBuilder *b, const char *value);

/* Names of libpurple enums as used in events.  Never NULL. */
const char *host_conv_type_name(PurpleConversationType type);
const char *host_error_name(PurpleConnectionError reason);
const char *host_cmd_status_name(PurpleCmdStatus status);
/* Adds "key": [flag names] for PurpleMessageFlags. */
void host_add_message_flags(JsonBuilder *b, const char *key, PurpleMessageFlags flags);

/* --- host-eventloop.c ------------------------------------------------ */
PurpleEventLoopUiOps *host_eventloop_ui_ops(void);

/* --- host-conn.c: connection, reconnect policy, account state ------- */
void host_conn_init(void *handle);
void host_conn_shutdown(void);
/* Cancels a pending automatic reconnect (explicit user action). */
void host_conn_cancel_reconnect(void);
/* Starts the "cycle" command; answers it when done or failed. */
void host_conn_start_cycle(HostCmd *cmd, int count, int timeout_ms);
PurpleConnectionUiOps *host_connection_ui_ops(void);
PurpleAccountUiOps *host_account_ui_ops(void);

/* --- host-conv.c: conversations -------------------------------------- */
void host_conv_init(void *handle);
void host_conv_shutdown(void);
PurpleConversationUiOps *host_conversation_ui_ops(void);
/* Adds the members describing @conv ("conv", "conv_type", "title", "logging"). */
void host_add_conv_members(JsonBuilder *b, PurpleConversation *conv);

/* --- host-blist.c: buddy list ---------------------------------------- */
void host_blist_init(void *handle);
void host_blist_shutdown(void);
PurpleBlistUiOps *host_blist_ui_ops(void);
/* Emits a "buddy" event for @buddy; @force ignores the on-change filter. */
void host_blist_emit_buddy(PurpleBuddy *buddy, gboolean force);
/* Emits every buddy of the list; returns how many. */
guint host_blist_dump(void);

/* --- host-notify.c --------------------------------------------------- */
PurpleNotifyUiOps *host_notify_ui_ops(void);
/* Closes (as the user would) every notification still shown. */
void host_notify_close_all(void);
/* Frees what is left after the core quit without calling back into it. */
void host_notify_shutdown(void);
gboolean host_notify_close_by_id(guint id, GError **error);
gboolean host_notify_search_button(guint id, guint button, guint row, GError **error);

/* --- host-request.c -------------------------------------------------- */
PurpleRequestUiOps *host_request_ui_ops(void);
/* Answers pending request @id from the "answer" command object @obj. */
gboolean host_request_answer(guint id, JsonObject *obj, GError **error);
/* Closes every request still pending (no callbacks are called). */
void host_request_close_all(void);

/* --- host-xfer.c: file transfers ("xfer" events) ------------------- */
PurpleXferUiOps *host_xfer_ui_ops(void);
/* The Cancel button on every transfer still running; returns how many. */
guint host_xfer_cancel_all(void);

/* --- host-commands.c: stdin ----------------------------------------- */
/* Watches fd 0 for command lines; EOF asks the host to quit. */
void host_commands_start(void);
void host_commands_stop(void);

/* A command being answered; asynchronous commands keep a copy. */
HostCmd *host_cmd_copy(const HostCmd *cmd);
void host_cmd_free(HostCmd *cmd);
const char *host_cmd_name(const HostCmd *cmd);
/* Starts {"event":"ok","cmd":name,"tag":tag}; finish with host_event_emit(). */
JsonBuilder *host_cmd_ok_begin(const HostCmd *cmd);
void host_cmd_ok(const HostCmd *cmd);
void host_cmd_error(const HostCmd *cmd, const char *format, ...) G_GNUC_PRINTF(2, 3);

/* --- host-account.c: accounts and their options ---------------------- */
/* Emits "account-added" for @account (@existing: found in the user dir). */
void host_account_added(PurpleAccount *account, gboolean existing);
/* Sets protocol option @key of @account from the text @value, typed by the
 * prpl's protocol_options (string, int, bool or list). */
gboolean host_account_set_option(PurpleAccount *account, const char *key, const char *value,
                                 GError **error);

#define HOST_ERROR (host_error_quark())
GQuark host_error_quark(void);
enum {
	HOST_ERROR_INVALID,
	HOST_ERROR_NOT_FOUND,
	HOST_ERROR_STATE,
};
