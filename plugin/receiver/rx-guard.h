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
 * Every byte passes unchanged. It reads a connection's first head only:
 * rx-http answers every request with "Connection: close", so there is no
 * second one on the same connection.
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

G_END_DECLS
