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
/* A registration without "max_pending_bytes": 1 GiB of events may wait. */
#define RX_DEFAULT_MAX_PENDING_BYTES (G_GINT64_CONSTANT(1) << 30)
/* Free space the journal's file system keeps by default (--min-free-disk). */
#define RX_DEFAULT_MIN_FREE_BYTES (G_GINT64_CONSTANT(256) << 20)
/* The longest hub.challenge echoed in the GET handshake (Meta sends digits). */
#define RX_CHALLENGE_MAX 128
/* A listener that cannot be opened is tried again this often (seconds;
 * --listen-retry). */
#define RX_LISTEN_RETRY_S 10
/* A bind address naming a UNIX socket: "unix:/absolute/path". */
#define RX_UNIX_PREFIX "unix:"

typedef struct {
  char *dir;
  gboolean daemon;
  int max_connections;
  int max_per_address;    /* 0: no cap; never applies to 127.0.0.1 and ::1 */
  gint64 min_rate;        /* bytes per second a request must average; 0: off */
  int rate_grace_s;       /* from this many seconds after accept */
  gint64 max_body_memory; /* request body bytes held by all connections at most */
  int header_timeout_s;
  int idle_timeout_s;
  int body_timeout_s;
  gint64 max_body;
  gint64 max_pages;
  int dedupe_days;
  gint64 min_free; /* bytes the journal's file system keeps free (0 = no floor) */
  int listen_retry_s;
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
  char *bind;         /* an IP address literal, or RX_UNIX_PREFIX and an absolute path */
  int port;           /* the port wanted (0 = any) and, once bound, the port bound */
  int requested_port; /* the port the client asked for (0 = any) */
  char *path;
  guint8 public_key[WA_SEAL_PUBLIC_KEY_BYTES];
  char *public_key_b64;
  gboolean keep_running;
  char *tls_cert; /* PEM file, NULL for plain HTTP */
  char *tls_key;
  gboolean allow_public_http;
  gint64 max_pending_bytes; /* sealed events waiting at most, in bytes */
  char *socket_group;       /* UNIX socket only: its group (name or number), NULL for none */
} RxRegistration;

/* A registered account and what the receiver knows about it. */
typedef struct {
  RxRegistration *reg;
  RxListener *listener; /* a reference; NULL when its listener could not be opened */
  char *listen_error;   /* why not, while listener is NULL (tried again on a timer) */
  gboolean port_taken;  /* listen_error is "address in use": someone else holds it */
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
  GHashTable *peers;       /* remote address -> GINT_TO_POINTER(connections), capped ones */
  gint64 body_bytes;       /* request body bytes held (limit: opt.max_body_memory) */
  gint64 body_bytes_peak;
  int posts_in_flight; /* POSTs paused for a commit, or answered but not yet finished */
  gboolean stopping;
  int exit_status;
  guint quit_source;
  guint grace_source;
  guint expire_source;
  guint listen_retry_source; /* runs while an account's listener is down */
  /* totals for the log */
  guint64 requests;
  guint64 refused_connections;   /* closed at once: full of busy ones, or stopping */
  guint64 peer_refused;          /* closed at once: over --max-per-address */
  guint64 evicted_connections;   /* dropped to make room for a new one */
  guint64 slow_connections;      /* closed under --min-rate */
  guint64 body_memory_evictions; /* dropped to keep bodies under --max-body-memory */
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
/* The socket path of a "unix:PATH" bind address, else NULL. */
const char *rx_bind_unix_path(const char *bind);
void rx_account_free(RxAccount *account);
/* Opens (or shares) the listener @reg asks for. When the system refuses it
 * (the port is taken, the address or the socket's directory is not there)
 * NULL with *@down saying why (for RxAccount.listen_error) and *@taken for
 * "address in use": the account stays registered, down, and is tried again.
 * A wrong setting (TLS, a port or socket shared with other settings) fails
 * with @error and *@code only when @strict (a REGISTER); otherwise it too
 * leaves the account down. */
RxListener *rx_account_open_listener(RxReceiver *rx, RxRegistration *reg, gboolean strict, char **down, gboolean *taken,
                                     const char **code, GError **error);
/* Records @account's listener state (@listener taken, or NULL and @down
 * taken) and runs the retry timer while any account is down. */
void rx_account_set_listener(RxReceiver *rx, RxAccount *account, RxListener *listener, char *down, gboolean taken);
/* The account's listener state for OK, STATUS and LISTEN payloads:
 * "listening", and "listen_error" and "port_taken" while it is down. */
void rx_account_listen_state(RxAccount *account, JsonObject *obj);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(RxRegistration, rx_registration_free)

/* rx-unix.c */
/* A listening UNIX stream socket at @path for the webhook side: mode 0660
 * with @group (a name or number), or 0600 without one. Refuses a directory
 * that someone other than its owner (us or root) can write without a sticky
 * bit; removes a stale socket of ours; G_IO_ERROR_ADDRESS_IN_USE when a live
 * one answers at @path; G_IO_ERROR_INVALID_ARGUMENT for a wrong setting. */
GSocket *rx_unix_listen(const char *path, const char *group, GError **error);
/* Removes the socket file at @path if it is a socket of ours. */
void rx_unix_unlink(const char *path);

/* rx-http.c */
/* A listener for @reg's (bind, port): the existing one when the settings
 * agree, else a new one; @reg->port is updated to the port bound. Returns a
 * new reference, or NULL with @error and *@code ("bind" or "tls"). */
RxListener *rx_listener_get(RxReceiver *rx, RxRegistration *reg, const char **code, GError **error);
/* Drops a registration's hold; the last one closes the listening socket
 * (connections already accepted finish). */
void rx_listener_release(RxListener *listener);
/* How many registrations use @listener. */
int rx_listener_users(RxListener *listener);
/* STATUS's "listeners" entry. */
JsonObject *rx_listener_status(RxReceiver *rx, RxListener *listener);
void rx_http_init(RxReceiver *rx);
/* Reads every TLS listener's certificate and key files again (SIGHUP); a
 * file that cannot be used keeps the certificate in use, and is logged. */
void rx_http_reload_tls(RxReceiver *rx);
/* STATUS's "http" entry: connections, body memory and what the limits did. */
JsonObject *rx_http_status(RxReceiver *rx);
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
/* Sends LISTEN (the account's listener state) to @account's subscriber. */
void rx_control_listen_changed(RxReceiver *rx, RxAccount *account);
/* Number of connected clients that registered or subscribed an account. */
guint rx_control_messengers(RxReceiver *rx);

G_END_DECLS
