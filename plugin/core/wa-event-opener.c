/* wa-event-opener.c: opening and parsing sealed events on a worker thread.
 *
 * Jobs go to the worker through an async queue and stay in the loop's own
 * queue (in push order) until taken; the worker marks each done when it is
 * opened, the last thing it touches, and wakes the loop through a pipe (one
 * byte until the loop has read it) for each WAKE_EVERY events or when it
 * has caught up. Must not: let the worker touch a job
 * after marking it done, or keep plaintext beyond the parse. */
#include "wa-event-opener.h"

#include <errno.h>
#include <glib-unix.h>
#include <sodium.h>
#include <unistd.h>

typedef enum {
  JOB_OPEN,
  JOB_DISPOSE,
  JOB_STOP,
} JobKind;

typedef struct {
  JobKind kind;
  GBytes *sealed;       /* JOB_OPEN, until opened */
  WaOpenedEvent opened; /* JOB_OPEN: the result; JOB_DISPOSE: the webhook to free */
  gint done;            /* atomic: opened, the worker does not touch it again */
} Job;

struct _WaEventOpener {
  WaLoop *loop;
  const WaKeyPair *pair; /* borrowed */
  WaEventOpenerReadyFunc ready;
  gpointer data;
  GAsyncQueue *jobs; /* Job*, to the worker */
  GQueue pending;    /* Job* of JOB_OPEN not taken yet, oldest first (the loop's) */
  GThread *worker;
  int pipe_read;
  int pipe_write;
  gint woken; /* atomic: a byte is in the pipe that the loop has not read */
  guint watch;
};

static void
job_free(Job *job)
{
  g_clear_pointer(&job->sealed, g_bytes_unref);
  g_clear_pointer(&job->opened.webhook, wa_webhook_free);
  g_clear_error(&job->opened.error);
  g_free(job);
}

void
wa_opened_event_free(WaOpenedEvent *event)
{
  if (event == NULL)
    return;
  g_clear_pointer(&event->webhook, wa_webhook_free);
  g_clear_error(&event->error);
  g_free(event);
}

/* On the worker: opens and parses @job; the plaintext is wiped after the parse. */
static void
open_job(WaSealOpener *seal, Job *job)
{
  gsize len = 0;
  const guint8 *sealed = g_bytes_get_data(job->sealed, &len);
  g_autoptr(GBytes) plain = seal != NULL ? wa_seal_opener_open(seal, sealed, len, &job->opened.error) : NULL;
  const char *text;

  g_clear_pointer(&job->sealed, g_bytes_unref);
  if (plain == NULL) {
    if (job->opened.error == NULL)
      g_set_error_literal(&job->opened.error, WA_SEAL_ERROR, WA_SEAL_ERROR_INIT, "no secure memory for the key");
    return;
  }
  job->opened.unsealed = TRUE;
  text = g_bytes_get_data(plain, &len);
  job->opened.webhook = wa_webhook_parse(text, len, &job->opened.error);
  sodium_memzero((void *) text, len);
  wa_webhook_prepare_stored(job->opened.webhook);
}

static void
wake(WaEventOpener *opener)
{
  if (!g_atomic_int_compare_and_exchange(&opener->woken, 0, 1))
    return;
  while (write(opener->pipe_write, "o", 1) < 0 && errno == EINTR)
    ;
}

/* The loop is told when this many more events are opened, or when the
 * worker has nothing left to do: not once per event (waking the loop's
 * thread for each would preempt the store's writer on a busy machine). */
#define WAKE_EVERY 32

static gpointer
worker_main(gpointer data)
{
  WaEventOpener *opener = data;
  WaSealOpener *seal = wa_seal_opener_new(opener->pair);
  guint untold = 0;
  Job *job;

  while ((job = g_async_queue_pop(opener->jobs))->kind != JOB_STOP) {
    if (job->kind == JOB_DISPOSE) {
      job_free(job);
    } else {
      open_job(seal, job);
      g_atomic_int_set(&job->done, 1);
      untold++;
    }
    if (untold > 0 && (untold >= WAKE_EVERY || g_async_queue_length(opener->jobs) <= 0)) {
      wake(opener);
      untold = 0;
    }
  }
  job_free(job);
  wa_seal_opener_free(seal); /* wipes the kept shared key */
  return NULL;
}

static void
on_readable(gpointer data, int fd, WaIoCondition cond)
{
  WaEventOpener *opener = data;
  char buf[64];

  while (read(fd, buf, sizeof buf) > 0)
    ;
  g_atomic_int_set(&opener->woken, 0);
  opener->ready(opener->data);
}

WaEventOpener *
wa_event_opener_new(WaLoop *loop, const WaKeyPair *pair, WaEventOpenerReadyFunc ready, gpointer data, GError **error)
{
  WaEventOpener *opener;
  int fds[2];

  g_return_val_if_fail(loop != NULL && pair != NULL && ready != NULL, NULL);
  if (!g_unix_open_pipe(fds, FD_CLOEXEC, error))
    return NULL;
  if (!g_unix_set_fd_nonblocking(fds[0], TRUE, error) || !g_unix_set_fd_nonblocking(fds[1], TRUE, error)) {
    close(fds[0]);
    close(fds[1]);
    return NULL;
  }
  opener = g_new0(WaEventOpener, 1);
  opener->loop = loop;
  opener->pair = pair;
  opener->ready = ready;
  opener->data = data;
  opener->pipe_read = fds[0];
  opener->pipe_write = fds[1];
  opener->jobs = g_async_queue_new();
  g_queue_init(&opener->pending);
  opener->worker = g_thread_try_new("wa-open", worker_main, opener, error);
  if (opener->worker == NULL) {
    g_async_queue_unref(opener->jobs);
    close(fds[0]);
    close(fds[1]);
    g_free(opener);
    return NULL;
  }
  opener->watch = wa_loop_input_add(loop, opener->pipe_read, WA_IO_READ, on_readable, opener);
  return opener;
}

void
wa_event_opener_push(WaEventOpener *opener, gint64 seq, GBytes *sealed)
{
  Job *job = g_new0(Job, 1);

  job->kind = JOB_OPEN;
  job->sealed = g_bytes_ref(sealed);
  job->opened.seq = seq;
  g_queue_push_tail(&opener->pending, job);
  g_async_queue_push(opener->jobs, job);
}

const WaOpenedEvent *
wa_event_opener_peek(WaEventOpener *opener)
{
  Job *job = g_queue_peek_head(&opener->pending);

  return job != NULL && g_atomic_int_get(&job->done) ? &job->opened : NULL;
}

WaOpenedEvent *
wa_event_opener_pop(WaEventOpener *opener)
{
  Job *job;
  WaOpenedEvent *event;

  if (wa_event_opener_peek(opener) == NULL)
    return NULL;
  job = g_queue_pop_head(&opener->pending);
  event = g_new(WaOpenedEvent, 1);
  *event = job->opened;
  job->opened = (WaOpenedEvent){0};
  job_free(job);
  return event;
}

guint
wa_event_opener_ready(WaEventOpener *opener, guint at_most)
{
  guint n = 0;

  for (GList *l = opener->pending.head; l != NULL && n < at_most && g_atomic_int_get(&((Job *) l->data)->done);
       l = l->next)
    n++;
  return n;
}

guint
wa_event_opener_length(WaEventOpener *opener)
{
  return opener->pending.length;
}

void
wa_event_opener_dispose(WaEventOpener *opener, WaWebhook *webhook)
{
  Job *job;

  if (webhook == NULL)
    return;
  job = g_new0(Job, 1);
  job->kind = JOB_DISPOSE;
  job->opened.webhook = webhook;
  g_async_queue_push(opener->jobs, job);
}

void
wa_event_opener_free(WaEventOpener *opener)
{
  Job *stop;
  Job *job;

  if (opener == NULL)
    return;
  stop = g_new0(Job, 1);
  stop->kind = JOB_STOP;
  g_async_queue_push_front(opener->jobs, stop);
  g_thread_join(opener->worker);
  wa_loop_input_clear(opener->loop, &opener->watch);
  /* the worker is gone: what it did not take is freed here (events still to
   * open are in pending too, and freed with it) */
  while ((job = g_async_queue_try_pop(opener->jobs)) != NULL) {
    if (job->kind != JOB_OPEN)
      job_free(job);
  }
  g_queue_clear_full(&opener->pending, (GDestroyNotify) job_free);
  g_async_queue_unref(opener->jobs);
  close(opener->pipe_read);
  close(opener->pipe_write);
  g_free(opener);
}
