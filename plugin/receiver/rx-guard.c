/* rx-guard.c: the request head check in front of libsoup (see rx-guard.h).
 *
 * The check mirrors how libsoup 3.2.3 reads a head (soup-headers.c and
 * soup-message-headers.c): lines end at '\n' ('\r' is trailing whitespace),
 * the head ends at an empty line or at the end of the input, a line whose name
 * holds whitespace is ignored, a line starting with a space or tab continues
 * the previous header, names are compared without case, values are trimmed.
 * It is stricter where that is simpler (a NUL anywhere in the head, which
 * libsoup would delete, and a continued Content-Length or Transfer-Encoding
 * are refused), never laxer: every value it lets through is one libsoup
 * recognises. */
#include "rx-guard.h"

#include <string.h>

#define VALUE_MAX 64
#define NAME_MAX_LEN 32

static const char bad_length[] = "HTTP/1.1 400 Bad Request\r\n"
                                 "Content-Type: text/plain\r\n"
                                 "Content-Length: 24\r\n"
                                 "Connection: close\r\n"
                                 "\r\n"
                                 "invalid Content-Length\r\n";
static const char bad_head[] = "HTTP/1.1 400 Bad Request\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 22\r\n"
                               "Connection: close\r\n"
                               "\r\n"
                               "invalid request head\r\n";
static const char bad_coding[] = "HTTP/1.1 501 Not Implemented\r\n"
                                 "Content-Type: text/plain\r\n"
                                 "Content-Length: 27\r\n"
                                 "Connection: close\r\n"
                                 "\r\n"
                                 "unknown Transfer-Encoding\r\n";

typedef enum {
  HEAD_REQUEST_LINE,
  HEAD_LINE_START,
  HEAD_LINE_CR, /* a line that started with '\r' */
  HEAD_NAME,
  HEAD_VALUE, /* of Content-Length or Transfer-Encoding */
  HEAD_SKIP,  /* the rest of a line nobody needs */
  HEAD_DONE,  /* the head's last byte was read: head_end() decides what follows */
  HEAD_BODY,  /* a Content-Length body: passed unread, then the next head */
  HEAD_PASS,  /* a body whose end the check does not follow (chunked): everything passed unread */
} HeadState;

typedef enum {
  WATCH_NONE,
  WATCH_LENGTH,
  WATCH_CODING,
} Watch;

typedef enum {
  REFUSE_LENGTH, /* 400 */
  REFUSE_CODING, /* 501 */
  REFUSE_HEAD,   /* 400: a NUL byte */
} Refusal;

/* ---- the check: a pass-through GConverter -------------------------------- */

#define RX_TYPE_HEAD_CHECK (rx_head_check_get_type())
G_DECLARE_FINAL_TYPE(RxHeadCheck, rx_head_check, RX, HEAD_CHECK, GObject)

struct _RxHeadCheck {
  GObject parent;
  GOutputStream *answer_to; /* the connection's output, for the refusal */
  HeadState state;
  gboolean refused;   /* once refused, every later read fails too */
  guint64 bytes;      /* bytes passed on so far */
  gboolean head_open; /* a head's first byte was read, its end not yet */
  guint heads;        /* heads read to their end */
  gboolean ended;     /* the line end after the client's end was handed out */
  guint length_lines; /* Content-Length lines in this head */
  gboolean coding;    /* a Transfer-Encoding line in this head */
  guint64 length;     /* the Content-Length read */
  guint64 body_left;  /* HEAD_BODY: body bytes still to pass */
  RxGuardFunc on_event;
  gpointer on_event_data;
  Watch watch;        /* the header whose value is being read */
  gboolean continued; /* the last header line was a watched one */
  char name[NAME_MAX_LEN];
  gsize name_len;
  char value[VALUE_MAX];
  gsize value_len;
};

static void rx_head_check_converter_init(GConverterIface *iface);

G_DEFINE_TYPE_WITH_CODE(RxHeadCheck, rx_head_check, G_TYPE_OBJECT,
                        G_IMPLEMENT_INTERFACE(G_TYPE_CONVERTER, rx_head_check_converter_init))

/* Whether libsoup recognises @value (trimmed) as the value of @watch. */
static gboolean
value_recognised(Watch watch, const char *value)
{
  const char *digits = value;

  if (watch == WATCH_CODING)
    return g_ascii_strcasecmp(value, "chunked") == 0 || g_ascii_strcasecmp(value, "identity") == 0;
  /* libsoup takes whatever g_ascii_strtoull() reads to the end: a sign and
   * digits, or nothing; rx-http refuses all but digits, with its own 400 */
  if (*digits == '+' || *digits == '-') {
    digits++;
    if (*digits == '\0')
      return FALSE;
  }
  return strspn(digits, "0123456789") == strlen(digits);
}

/* The value read for the watched header, trimmed as libsoup trims it. */
static gboolean
check_value(RxHeadCheck *check)
{
  gsize start = 0;
  gsize end = check->value_len;

  while (start < end && strchr(" \t\r", check->value[start]) != NULL)
    start++;
  while (end > start && strchr(" \t\r", check->value[end - 1]) != NULL)
    end--;
  check->value[end] = '\0';
  if (!value_recognised(check->watch, check->value + start))
    return FALSE;
  if (check->watch == WATCH_CODING) {
    check->coding = TRUE;
  } else {
    check->length_lines++;
    /* a sign, or a value past 2^64: rx-http refuses it and closes; the
     * check stops following this connection's requests */
    if (!g_ascii_string_to_unsigned(check->value + start, 10, 0, G_MAXUINT64, &check->length, NULL))
      check->coding = TRUE;
  }
  return TRUE;
}

/* The head is complete: where its body ends, as libsoup reads it. A body
 * with a single Content-Length (or none: no body) is followed, and the next
 * head on the connection is checked like the first; any other framing
 * (chunked, or what rx-http refuses) is passed unread to the end, and rx-http
 * closes the connection after that request (rx_guard_stream_follows). */
static void
head_end(RxHeadCheck *check)
{
  check->head_open = FALSE;
  check->continued = FALSE;
  check->watch = WATCH_NONE;
  check->heads++;
  if (check->coding || check->length_lines > 1) {
    check->state = HEAD_PASS;
    return;
  }
  check->body_left = check->length_lines == 1 ? check->length : 0;
  check->state = check->body_left > 0 ? HEAD_BODY : HEAD_REQUEST_LINE;
  check->length_lines = 0;
  check->length = 0;
}

static Watch
watched_name(const RxHeadCheck *check)
{
  if (check->name_len == strlen("content-length") &&
      g_ascii_strncasecmp(check->name, "content-length", check->name_len) == 0)
    return WATCH_LENGTH;
  if (check->name_len == strlen("transfer-encoding") &&
      g_ascii_strncasecmp(check->name, "transfer-encoding", check->name_len) == 0)
    return WATCH_CODING;
  return WATCH_NONE;
}

static Refusal
refusal_of(Watch watch)
{
  return watch == WATCH_CODING ? REFUSE_CODING : REFUSE_LENGTH;
}

/* Feeds one byte of the head; FALSE when the head must be refused, for the
 * reason put in *@why. */
static gboolean
check_byte(RxHeadCheck *check, char c, Refusal *why)
{
  if (c == '\0') {
    /* libsoup deletes NULs from header lines, which could join a name
     * together only after this check read it */
    *why = REFUSE_HEAD;
    return FALSE;
  }
  switch (check->state) {
  case HEAD_REQUEST_LINE:
    if (c == '\n')
      check->state = HEAD_LINE_START;
    break;
  case HEAD_LINE_START:
    if (c == '\n') {
      check->state = HEAD_DONE;
    } else if (c == '\r') {
      check->state = HEAD_LINE_CR;
    } else if (c == ' ' || c == '\t') {
      /* a continuation line: it would extend a watched value */
      if (check->continued) {
        *why = refusal_of(check->watch);
        return FALSE;
      }
      check->state = HEAD_SKIP;
    } else {
      check->state = HEAD_NAME;
      check->name_len = 0;
      check->name[check->name_len++] = c;
    }
    break;
  case HEAD_LINE_CR:
    check->continued = FALSE;
    check->state = c == '\n' ? HEAD_DONE : HEAD_SKIP;
    break;
  case HEAD_NAME:
    check->continued = FALSE;
    if (c == ':') {
      check->watch = watched_name(check);
      check->value_len = 0;
      check->state = check->watch != WATCH_NONE ? HEAD_VALUE : HEAD_SKIP;
    } else if (c == '\n') {
      check->state = HEAD_LINE_START; /* no colon: libsoup ignores the line */
    } else if (c == ' ' || c == '\t' || c == '\r' || check->name_len == sizeof check->name) {
      check->state = HEAD_SKIP; /* not a header libsoup reads, or not ours */
    } else {
      check->name[check->name_len++] = c;
    }
    break;
  case HEAD_VALUE:
    if (c == '\n') {
      if (!check_value(check)) {
        *why = refusal_of(check->watch);
        return FALSE;
      }
      check->continued = TRUE;
      check->state = HEAD_LINE_START;
    } else if (check->value_len == sizeof check->value - 1) {
      *why = refusal_of(check->watch);
      return FALSE; /* longer than any value libsoup would recognise here */
    } else {
      check->value[check->value_len++] = c;
    }
    break;
  case HEAD_SKIP:
    if (c == '\n') {
      check->continued = FALSE;
      check->state = HEAD_LINE_START;
    }
    break;
  case HEAD_DONE:
  case HEAD_BODY:
  case HEAD_PASS:
    break;
  }
  return TRUE;
}

static void
refuse(RxHeadCheck *check, Refusal why, GError **error)
{
  const char *answer = why == REFUSE_CODING ? bad_coding : why == REFUSE_HEAD ? bad_head : bad_length;
  gsize len = strlen(answer);

  check->refused = TRUE;
  /* best effort: a few bytes into an idle connection's send buffer */
  if (G_IS_POLLABLE_OUTPUT_STREAM(check->answer_to) &&
      g_pollable_output_stream_can_poll(G_POLLABLE_OUTPUT_STREAM(check->answer_to)))
    g_pollable_output_stream_write_nonblocking(G_POLLABLE_OUTPUT_STREAM(check->answer_to), answer, len, NULL, NULL);
  /* libsoup may take a failed read of a later request on a kept-alive
   * connection for an idle client and keep waiting: the connection ends here */
  if (check->on_event != NULL)
    check->on_event(RX_GUARD_REFUSED, check->on_event_data);
  g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "request head refused");
}

/* libsoup 3.2.3 forgets a kept-alive connection whose read of the next
 * request fails before a byte of it was read: it emits no "request-started",
 * so nothing calls its request_finished(), which alone disconnects (the
 * connection, its stream and rx-http's slot would stay for good). So when
 * the client ends a kept-alive connection between requests, or a later
 * head is refused, libsoup is handed one line end first: the read of that
 * request has then begun, and its failure at the next read ends the
 * connection. libsoup never parses it (a head needs an empty line after the
 * request line). */
static GConverterResult
line_end_first(void *outbuf, gsize *bytes_written)
{
  ((char *) outbuf)[0] = '\n';
  *bytes_written = 1;
  return G_CONVERTER_CONVERTED;
}

static GConverterResult
rx_head_check_convert(GConverter *converter, const void *inbuf, gsize inbuf_size, void *outbuf, gsize outbuf_size,
                      GConverterFlags flags, gsize *bytes_read, gsize *bytes_written, GError **error)
{
  RxHeadCheck *check = RX_HEAD_CHECK(converter);
  const char *in = inbuf;
  gsize n = MIN(inbuf_size, outbuf_size);
  gboolean at_end;
  Refusal why = REFUSE_HEAD;

  *bytes_read = *bytes_written = 0;
  if (check->refused) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "request head refused");
    return G_CONVERTER_ERROR;
  }
  if (inbuf_size > 0 && outbuf_size == 0) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "no room");
    return G_CONVERTER_ERROR;
  }
  if ((flags & G_CONVERTER_INPUT_AT_END) != 0 && inbuf_size == 0 && outbuf_size > 0 && check->heads > 0 &&
      check->state == HEAD_REQUEST_LINE && !check->head_open && !check->ended) {
    check->ended = TRUE;
    return line_end_first(outbuf, bytes_written);
  }
  /* one request at a time: a call passes bytes up to the end of the current
   * request's body and stops there, so the next head is read (and perhaps
   * refused, its answer written) only when libsoup reads the next request,
   * after it answered this one */
  for (gsize i = 0; i < n; i++) {
    if (check->state == HEAD_PASS)
      break;
    if (check->state == HEAD_BODY) {
      gsize take = (gsize) MIN(check->body_left, (guint64) (n - i));

      check->body_left -= take;
      if (check->body_left == 0) {
        check->state = HEAD_REQUEST_LINE;
        n = i + take;
      }
      break;
    }
    if (!check->head_open) {
      check->head_open = TRUE;
      if (check->on_event != NULL)
        check->on_event(RX_GUARD_HEAD, check->on_event_data);
    }
    if (!check_byte(check, in[i], &why)) {
      GError *refused = NULL;

      refuse(check, why, &refused);
      if (check->heads > 0) {
        g_error_free(refused);
        return line_end_first(outbuf, bytes_written);
      }
      g_propagate_error(error, refused);
      return G_CONVERTER_ERROR;
    }
    if (check->state == HEAD_DONE) {
      head_end(check);
      if (check->state == HEAD_REQUEST_LINE) {
        n = i + 1; /* no body: the next head is the next request's */
        break;
      }
    }
  }
  at_end = (flags & G_CONVERTER_INPUT_AT_END) != 0 && n == inbuf_size;
  /* libsoup parses a head cut short by the end of the input as it is */
  if (at_end && check->state == HEAD_VALUE && !check_value(check)) {
    refuse(check, refusal_of(check->watch), error);
    return G_CONVERTER_ERROR;
  }
  if (n > 0)
    memcpy(outbuf, inbuf, n);
  check->bytes += n;
  *bytes_read = *bytes_written = n;
  if (at_end)
    return G_CONVERTER_FINISHED;
  if ((flags & G_CONVERTER_FLUSH) != 0 && n == inbuf_size)
    return G_CONVERTER_FLUSHED;
  if (n == 0) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT, "more input needed");
    return G_CONVERTER_ERROR;
  }
  return G_CONVERTER_CONVERTED;
}

static void
rx_head_check_reset(GConverter *converter)
{
  RxHeadCheck *check = RX_HEAD_CHECK(converter);

  check->state = HEAD_REQUEST_LINE;
  check->refused = FALSE;
  check->watch = WATCH_NONE;
  check->continued = FALSE;
  check->head_open = FALSE;
  check->length_lines = 0;
  check->coding = FALSE;
  check->length = 0;
  check->body_left = 0;
}

static void
rx_head_check_converter_init(GConverterIface *iface)
{
  iface->convert = rx_head_check_convert;
  iface->reset = rx_head_check_reset;
}

static void
rx_head_check_finalize(GObject *object)
{
  RxHeadCheck *check = RX_HEAD_CHECK(object);

  g_clear_object(&check->answer_to);
  G_OBJECT_CLASS(rx_head_check_parent_class)->finalize(object);
}

static void
rx_head_check_class_init(RxHeadCheckClass *klass)
{
  G_OBJECT_CLASS(klass)->finalize = rx_head_check_finalize;
}

static void
rx_head_check_init(RxHeadCheck *check)
{
  check->state = HEAD_REQUEST_LINE;
}

/* ---- the stream: the check's input, the connection's output -------------- */

#define RX_TYPE_GUARD_STREAM (rx_guard_stream_get_type())
G_DECLARE_FINAL_TYPE(RxGuardStream, rx_guard_stream, RX, GUARD_STREAM, GIOStream)

struct _RxGuardStream {
  GIOStream parent;
  GIOStream *base;
  GInputStream *input;
  RxHeadCheck *check;
};

G_DEFINE_TYPE(RxGuardStream, rx_guard_stream, G_TYPE_IO_STREAM)

static GInputStream *
rx_guard_stream_get_input_stream(GIOStream *stream)
{
  return RX_GUARD_STREAM(stream)->input;
}

static GOutputStream *
rx_guard_stream_get_output_stream(GIOStream *stream)
{
  return g_io_stream_get_output_stream(RX_GUARD_STREAM(stream)->base);
}

static gboolean
rx_guard_stream_close(GIOStream *stream, GCancellable *cancellable, GError **error)
{
  return g_io_stream_close(RX_GUARD_STREAM(stream)->base, cancellable, error);
}

static void
on_base_closed(GObject *source, GAsyncResult *result, gpointer data)
{
  GTask *task = data;
  GError *error = NULL;

  if (g_io_stream_close_finish(G_IO_STREAM(source), result, &error))
    g_task_return_boolean(task, TRUE);
  else
    g_task_return_error(task, error);
  g_object_unref(task);
}

/* Not GIOStream's default, which would run close() in another thread. */
static void
rx_guard_stream_close_async(GIOStream *stream, int io_priority, GCancellable *cancellable, GAsyncReadyCallback callback,
                            gpointer data)
{
  GTask *task = g_task_new(stream, cancellable, callback, data);

  g_io_stream_close_async(RX_GUARD_STREAM(stream)->base, io_priority, cancellable, on_base_closed, task);
}

static gboolean
rx_guard_stream_close_finish(GIOStream *stream, GAsyncResult *result, GError **error)
{
  return g_task_propagate_boolean(G_TASK(result), error);
}

static void
rx_guard_stream_finalize(GObject *object)
{
  RxGuardStream *guard = RX_GUARD_STREAM(object);

  g_clear_object(&guard->input);
  g_clear_object(&guard->check);
  g_clear_object(&guard->base);
  G_OBJECT_CLASS(rx_guard_stream_parent_class)->finalize(object);
}

static void
rx_guard_stream_class_init(RxGuardStreamClass *klass)
{
  GIOStreamClass *stream_class = G_IO_STREAM_CLASS(klass);

  G_OBJECT_CLASS(klass)->finalize = rx_guard_stream_finalize;
  stream_class->get_input_stream = rx_guard_stream_get_input_stream;
  stream_class->get_output_stream = rx_guard_stream_get_output_stream;
  stream_class->close_fn = rx_guard_stream_close;
  stream_class->close_async = rx_guard_stream_close_async;
  stream_class->close_finish = rx_guard_stream_close_finish;
}

static void
rx_guard_stream_init(RxGuardStream *guard)
{
}

GIOStream *
rx_guard_stream_new(GIOStream *base)
{
  RxGuardStream *guard = g_object_new(RX_TYPE_GUARD_STREAM, NULL);
  RxHeadCheck *check = g_object_new(RX_TYPE_HEAD_CHECK, NULL);

  check->answer_to = g_object_ref(g_io_stream_get_output_stream(base));
  guard->base = g_object_ref(base);
  guard->input = g_converter_input_stream_new(g_io_stream_get_input_stream(base), G_CONVERTER(check));
  guard->check = check;
  return G_IO_STREAM(guard);
}

guint64
rx_guard_stream_bytes_read(GIOStream *stream)
{
  return RX_GUARD_STREAM(stream)->check->bytes;
}

void
rx_guard_stream_on_event(GIOStream *stream, RxGuardFunc func, gpointer data)
{
  RX_GUARD_STREAM(stream)->check->on_event = func;
  RX_GUARD_STREAM(stream)->check->on_event_data = data;
}

gboolean
rx_guard_stream_follows(GIOStream *stream)
{
  return RX_GUARD_STREAM(stream)->check->state != HEAD_PASS;
}
