/* rx-guard.h: the stream wabiz-receiver hands to libsoup for each accepted
 * connection: the connection's own (TCP or TLS) stream, with a check of the
 * request head on the way in.
 *
 * libsoup 3.2.3 leaks the request path of every request whose body framing it
 * does not recognise (a Content-Length that is not a number, a
 * Transfer-Encoding other than chunked or identity): parse_headers() in
 * soup-server-message-io-http1.c returns without freeing it (fixed upstream
 * in 3.5.2, commit 450d43c4). Such a request of 60 KB costs 60 KB for good, so
 * anyone who can connect could exhaust the receiver's memory. The guard reads
 * every Content-Length and Transfer-Encoding header line before libsoup does;
 * on one libsoup would not recognise (or a NUL byte in the head) it writes the
 * answer itself (400, or 501 for an unknown transfer coding) and fails the
 * read, so libsoup closes the connection without ever parsing that head.
 * Every byte passes unchanged (one exception below).
 *
 * Kept-alive connections: the check follows each request's body by its
 * Content-Length (none: no body) and checks the next head on the connection
 * like the first, so every request of a kept-alive (or pipelined) connection
 * is checked before libsoup parses it. A read never passes bytes beyond the
 * end of the current request's body, so the next head is checked (and, when
 * refused, answered) only once libsoup reads for the next request, after it
 * wrote its answer to this one. A body it does not follow (chunked, or a
 * Content-Length rx-http refuses) ends the checking: everything after it
 * passes unread, and rx-http closes the connection after that request
 * (rx_guard_stream_follows()). When a later head is refused, or the client
 * ends the connection between requests, libsoup gets one line end before the
 * failure (libsoup 3.2.3 forgets a kept-alive connection whose read fails
 * before a byte: rx-guard.c, line_end_first).
 *
 * It also counts the bytes that come in, for the receiver's minimum transfer
 * rate.
 *
 * Must not: change a byte, buffer beyond what GConverterInputStream does, or
 * look at anything after the head. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* A new stream reading @base's input through the head check and writing to
 * @base's output; closing it closes @base. Holds a reference to @base. */
GIOStream *rx_guard_stream_new(GIOStream *base);
/* How many bytes have come in through @stream's input so far (head and body,
 * after TLS): what rx-http measures a client's transfer rate by. */
guint64 rx_guard_stream_bytes_read(GIOStream *stream);

typedef enum {
  RX_GUARD_HEAD,    /* the first byte of a request head was read */
  RX_GUARD_REFUSED, /* a head was refused, its answer written: end the connection */
} RxGuardEvent;
typedef void (*RxGuardFunc)(RxGuardEvent event, gpointer data);
/* Calls @func for each request head of the connection (the first included)
 * and for a refusal, from inside libsoup's read. */
void rx_guard_stream_on_event(GIOStream *stream, RxGuardFunc func, gpointer data);
/* FALSE once a request's body framing is one the check does not follow: the
 * connection must close after that request's answer. */
gboolean rx_guard_stream_follows(GIOStream *stream);

G_END_DECLS
