/* wa-rxclient.h: one account's connection to wabiz-receiver.
 *
 * Speaks plugin/receiver/PROTOCOL.md over the receiver's UNIX socket on the
 * injected WaLoop: HELLO, REGISTER (the account's registration), SUBSCRIBE,
 * then hands every EVENT and NOTICE to its owner and sends ACKs. It never
 * opens events (the owner holds the key) and never starts the receiver (the
 * owner decides when to spawn it and retries wa_rxclient_connect).
 *
 * Before anything is sent (REGISTER carries the app secret) the socket's peer
 * is checked: the socket's directory belongs to us and nobody else may enter
 * it, and the process at the other end (SO_PEERCRED) runs as our user.
 *
 * Must not: block (the socket is non-blocking; connect on a UNIX socket
 * completes or fails at once), log registrations (they hold the app secret),
 * send a line to a peer that failed the check, or include libpurple. */
#pragma once

#include <json-glib/json-glib.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "wa-loop.h"

G_BEGIN_DECLS

#define WA_RXCLIENT_ERROR (wa_rxclient_error_quark())
GQuark wa_rxclient_error_quark(void);

typedef enum {
  WA_RXCLIENT_ERROR_NOT_RUNNING, /* no receiver answers on the socket: start one */
  WA_RXCLIENT_ERROR_CONNECT,     /* the socket exists but cannot be used */
  WA_RXCLIENT_ERROR_REFUSED,     /* the receiver answered ERR (code in the message) */
  WA_RXCLIENT_ERROR_PROTOCOL,    /* an answer we cannot understand */
  WA_RXCLIENT_ERROR_LOST,        /* the connection closed */
  WA_RXCLIENT_ERROR_PEER,        /* the socket or its peer is not our own user's: nothing sent */
} WaRxclientError;

typedef struct _WaRxclient WaRxclient;

typedef struct {
  /* REGISTER and SUBSCRIBE were answered: @registered is REGISTER's OK payload
   * (url, port), @pending the events waiting. */
  void (*ready)(gpointer user, JsonObject *registered, gint64 pending);
  /* One journalled event; acknowledge it with wa_rxclient_ack once applied. */
  void (*event)(gpointer user, gint64 seq, gint64 received, GBytes *sealed);
  void (*notice)(gpointer user, const char *code, const char *message);
  /* The connection is over (@error says why; for REFUSED its message is the
   * receiver's, and the ERR code is in *@code). The client may be freed or
   * connected again. */
  void (*failed)(gpointer user, const GError *error, const char *code);
  /* LISTEN: the account's webhook listener opened or failed since (payload:
   * url, listening, and listen_error and port_taken while it is down). May be
   * NULL. */
  void (*listen)(gpointer user, JsonObject *state);
  /* Optional (may be NULL): the receiver confirmed an ACK, i.e. it deleted
   * the events up to @seq (-1 when its answer did not say). */
  void (*acked)(gpointer user, gint64 seq);
} WaRxclientEvents;

/* @registration is the REGISTER payload (copied). */
WaRxclient *wa_rxclient_new(WaLoop *loop, const char *socket_path, const char *client_name, JsonObject *registration,
                            const WaRxclientEvents *events, gpointer user);
void wa_rxclient_free(WaRxclient *client);

/* Connects and sends HELLO, REGISTER and SUBSCRIBE. FALSE with @error
 * (NOT_RUNNING when nobody listens, PEER when the socket's directory or its
 * peer is not only ours, CONNECT otherwise) when the socket cannot be reached
 * or trusted; after TRUE every later outcome comes through the events. */
gboolean wa_rxclient_connect(WaRxclient *client, GError **error);
gboolean wa_rxclient_is_connected(WaRxclient *client);
/* Closes the connection without calling failed(). */
void wa_rxclient_disconnect(WaRxclient *client);

/* The peer check on given facts: @dir is the stat of the socket's directory,
 * @peer_uid the uid SO_PEERCRED gave (-1 when unknown), @uid ours. FALSE with
 * a PEER error that says what is wrong. */
gboolean wa_rxclient_check_peer(const char *dir_name, const struct stat *dir, uid_t peer_uid, uid_t uid,
                                GError **error);

/* Acknowledges every event up to @seq (cumulative). */
void wa_rxclient_ack(WaRxclient *client, gint64 seq);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(WaRxclient, wa_rxclient_free)

G_END_DECLS
