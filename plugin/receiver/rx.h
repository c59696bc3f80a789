/* rx.h: wabiz-receiver's shared state: the options, the registered accounts,
 * the HTTP listeners, the control clients and the journal, and the functions
 * the receiver's parts (rx-account, rx-http, rx-control, rx-main) call on
 * each other.
 *
 * Everything here lives on the main thread's GMainContext; only the journal
 * has a thread of its own, and it calls back on the main context.
 *
 * Must not: include libpurple, hold an account's secret key (the receiver only
 * ever has public keys), or put a secret, a body, a phone number or a message
 * id in a log line (rx_log is for start/stop, listeners and counts). */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "rx-journal.h"
#include "wa-seal.h"

G_BEGIN_DECLS

#define RX_PROGRAM "wabiz-receiver"
#define RX_SOCKET_NAME "rx.sock"
#define RX_LOG_NAME "receiver.log"
/* At most this many EVENT lines wait for an ACK per subscription. */
#define RX_MAX_UNACKED 64
/* Notices of one code for one account: at most one per this many seconds. */
#define RX_NOTICE_INTERVAL_S 60
/* A 413 answer is followed by reading (and discarding) at most this much of
 * the refused body for at most RX_DRAIN_SECONDS, so the client sees the
 * answer instead of a connection reset. */
#define RX_DRAIN_SECONDS 5

typedef struct {
  char *dir;
  gboolean daemon;
  int max_connections;
  int header_timeout_s;
  int idle_timeout_s;
  int body_timeout_s;
  gint64 max_body;
  gint64 max_pages;
  int dedupe_days;
} RxOptions;

typedef struct _RxListener RxListener;
typedef struct _RxClient RxClient;
typedef struct _RxSub RxSub;

/* One account's registration (the REGISTER payload, validated). */
typedef struct {
  char *account;      /* phone number ID (digits) */
  char *waba_id;      /* NULL when no check is wanted */
  char *app_secret;   /* never logged; wiped on free */
  char *verify_token; /* may be NULL; never logged; wiped on free */
  char *bind;         /* an IP address literal, as given */
  int port;           /* the port wanted (0 = any) and, once bound, the port bound */
  int requested_port; /* the port the client asked for (0 = any) */
  char *path;
  guint8 public_key[WA_SEAL_PUBLIC_KEY_BYTES];
  char *public_key_b64;
  gboolean keep_running;
  char *tls_cert; /* PEM file, NULL for plain HTTP */
  char *tls_key;
  gboolean allow_public_http;
} RxRegistration;

/* A registered account and what the receiver knows about it. */
typedef struct {
  RxRegistration *reg;
  RxListener *listener; /* a reference; NULL when its listener could not be opened */
  guint64 received;     /* changes journalled since start */
  guint64 duplicates;   /* changes dropped as already journalled */
  guint64 unclaimed;    /* signed changes on its path that no account claimed */
  RxSub *sub;           /* the subscription, if a client holds one */
} RxAccount;

typedef struct {
  RxOptions opt;
  GMainLoop *loop;
  RxJournal *journal;
  SoupServer *server;
  char *socket_path;
  GSocketService *control; /* the UNIX socket */
  gboolean socket_created; /* rx.sock is ours to unlink at exit */
  GHashTable *accounts;    /* account id -> RxAccount* */
  GPtrArray *listeners;    /* RxListener* (each also referenced by its accounts) */
  GList *clients;          /* RxClient* */
  GHashTable *notices;     /* "code\naccount" -> GINT64 monotonic seconds of the last one */
  GHashTable *conns;       /* the HTTP connections (rx-http's) */
  int connections;         /* HTTP connections open (limit: opt.max_connections) */
  int posts_in_flight;     /* POSTs paused for a commit, or answered but not yet finished */
  gboolean stopping;
  int exit_status;
  guint quit_source;
  guint grace_source;
  guint expire_source;
  /* totals for the log */
  guint64 requests;
  guint64 refused_connections;
} RxReceiver;

/* rx-main.c */
void rx_log(const char *format, ...) G_GNUC_PRINTF(1, 2);
/* Stops accepting, waits for pending commits and answers, then quits the
 * loop. Safe to call more than once. */
void rx_receiver_stop(RxReceiver *rx, const char *why);

/* rx-confine.c */
/* A worker's exit status that makes its monitor start it again (with the
 * same arguments), so that its confinement covers new TLS directories. */
#define RX_EXIT_RESTART 75
/* Left in the state directory when the confinement stopped the receiver
 * (SIGSYS); the plugin reports it and removes it. */
#define RX_CONFINE_STOPPED_NAME "stopped-by-confinement"
/* FALSE without -Dconfine (or with WABIZ_RECEIVER_CONFINE=off). */
gboolean rx_confine_enabled(void);
/* Before anything is opened: forks; the parent becomes a monitor that
 * waits for the confined worker, reports a SIGSYS, restarts on
 * RX_EXIT_RESTART and exits as the worker did (it never returns). Returns in
 * the worker, or at once when confinement is off. @args: the command line as
 * started. */
void rx_confine_supervise(RxReceiver *rx, char **args, int *ready_fd);
/* In the worker, still single-threaded: no new privileges, Landlock. */
void rx_confine_start(RxReceiver *rx);
/* Once started: the seccomp filter (after loading the TLS backend). */
gboolean rx_confine_apply(RxReceiver *rx, GError **error);
/* TRUE when Landlock lets the receiver read @reg's TLS files; otherwise it
 * remembers their directories, tells every client, stops with
 * RX_EXIT_RESTART (its monitor starts it again) and returns FALSE. */
gboolean rx_confine_covers(RxReceiver *rx, const RxRegistration *reg);

/* rx-account.c */
/* Validates a REGISTER payload (or a saved registration). On failure
 * @code is set to the protocol's error code ("invalid" or "tls"). */
RxRegistration *rx_registration_from_json(JsonObject *obj, const char **code, GError **error);
void rx_registration_free(RxRegistration *reg);
/* The registration as saved in the journal: the REGISTER payload with the
 * bound port (and the port originally asked for). Holds the app secret. */
char *rx_registration_to_json(const RxRegistration *reg);
/* The URL Meta should call, e.g. http://127.0.0.1:8090/webhook. */
char *rx_registration_url(const RxRegistration *reg);
gboolean rx_bind_is_loopback(const char *bind);
void rx_account_free(RxAccount *account);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(RxRegistration, rx_registration_free)

/* rx-http.c */
/* A listener for @reg's (bind, port): the existing one when the settings
 * agree, else a new one; @reg->port is updated to the port bound. Returns a
 * new reference, or NULL with @error and *@code ("bind" or "tls"). */
RxListener *rx_listener_get(RxReceiver *rx, RxRegistration *reg, const char **code,
                            GError **error);
/* Drops a registration's hold; the last one closes the listening socket
 * (connections already accepted finish). */
void rx_listener_release(RxListener *listener);
/* How many registrations use @listener. */
int rx_listener_users(RxListener *listener);
/* STATUS's "listeners" entry. */
JsonObject *rx_listener_status(RxReceiver *rx, RxListener *listener);
void rx_http_init(RxReceiver *rx);
/* Closes every listening socket (accepted connections finish). */
void rx_http_stop_listening(RxReceiver *rx);
void rx_http_shutdown(RxReceiver *rx);

/* rx-control.c */
gboolean rx_control_start(RxReceiver *rx, GError **error);
void rx_control_stop(RxReceiver *rx);
/* Sends NOTICE @code to the subscriber of @account (every client when
 * @account is NULL), at most once per code and account per minute. */
void rx_notice(RxReceiver *rx, const char *account, const char *code, const char *message);
/* The journal stored events for @account up to @last_seq. */
void rx_control_new_events(const char *account, gint64 last_seq, gpointer data);
/* Number of connected clients that registered or subscribed an account. */
guint rx_control_messengers(RxReceiver *rx);

G_END_DECLS
