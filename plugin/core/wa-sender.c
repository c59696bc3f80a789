/* wa-sender.c: per-customer FIFO queues over the Graph client, backed by
 * the store's outbox, with the rules of wa-sender.h.
 *
 * Each queue's head goes through: recording SENDING (a store request) ->
 * the HTTP request -> recording the outcome (a store request nobody waits
 * for: the store runs requests in order, so the next entry's SENDING is
 * committed after it). Store requests carry a StoreJob that the sender
 * tracks, so detaching the store (which then answers no more) frees them. */
#include "wa-sender.h"

#include <string.h>

typedef struct {
  guint64 id;
  char *customer_id;
  char *body;
  char *payload; /* a composed message (wa-compose.h), or NULL for text */
  gboolean preview_url;
  gboolean marked; /* already SENDING in the store (a campaign's, begun with start): not recorded again */
} Outgoing;

typedef struct {
  WaSender *sender;
  char *to;
  GQueue items;      /* Outgoing* in order */
  gboolean marking;  /* the head's SENDING is being recorded */
  WaGraphCall *call; /* the one request in flight */
  guint retry_timer;
  guint attempts; /* consecutive retries of the head item */
} CustomerQueue;

/* A customer's read receipt: one in flight, one waiting. */
typedef struct {
  WaSender *sender;
  char *to;
  WaGraphCall *call;
  char *call_wamid;
  gboolean call_typing;
  char *wamid; /* waiting, or NULL */
  gboolean typing;
} ReadSlot;

static void
read_slot_free(gpointer data)
{
  ReadSlot *slot = data;

  wa_graph_cancel(slot->call);
  g_free(slot->call_wamid);
  g_free(slot->wamid);
  g_free(slot->to);
  g_free(slot);
}

typedef enum {
  JOB_ENQUEUE,
  JOB_MARK,
  JOB_RECORD,
  JOB_RESTORE_LIST,
  JOB_RESTORE_CUSTOMERS,
} JobKind;

typedef struct {
  WaSender *sender;
  JobKind kind;
  char *to;
  char *customer_id;
  char *body;
  gboolean preview_url;
  guint64 id;
  WaSenderQueuedFunc queued;
  WaSenderRestoredFunc restored;
  gpointer data;
  GPtrArray *entries; /* restore: WaStoreOutbox* (owned) */
} StoreJob;

struct _WaSender {
  WaGraph *graph;
  WaStore *store; /* NULL once detached */
  WaLoop *loop;
  char *pnid;
  WaSenderEvents events;
  gpointer user;
  WaSenderConfig config;
  GHashTable *queues;         /* to -> CustomerQueue* */
  GHashTable *jobs;           /* StoreJob* waiting for the store */
  WaSenderIdFunc not_started; /* after detaching: entries provably not sent */
  gpointer not_started_data;
  GHashTable *reads; /* to -> ReadSlot*: read receipts */
  guint store_retry; /* timer after store_failed */
  gboolean paused;
  gboolean restoring;
};

static void
outgoing_free(Outgoing *o)
{
  if (o == NULL)
    return;
  g_free(o->customer_id);
  if (o->body != NULL) {
    memset(o->body, 0, strlen(o->body));
    g_free(o->body);
  }
  if (o->payload != NULL) {
    memset(o->payload, 0, strlen(o->payload));
    g_free(o->payload);
  }
  g_free(o);
}

static void
queue_free(gpointer data)
{
  CustomerQueue *q = data;

  wa_graph_cancel(q->call);
  wa_loop_timeout_clear(q->sender->loop, &q->retry_timer);
  g_queue_clear_full(&q->items, (GDestroyNotify) outgoing_free);
  g_free(q->to);
  g_free(q);
}

static void
job_free(StoreJob *job)
{
  g_free(job->to);
  g_free(job->customer_id);
  if (job->body != NULL) {
    memset(job->body, 0, strlen(job->body));
    g_free(job->body);
  }
  g_clear_pointer(&job->entries, g_ptr_array_unref);
  g_free(job);
}

static StoreJob *
job_new(WaSender *sender, JobKind kind)
{
  StoreJob *job = g_new0(StoreJob, 1);

  job->sender = sender;
  job->kind = kind;
  g_hash_table_add(sender->jobs, job);
  return job;
}

/* The store answered @job: it is no longer tracked (the caller frees it). */
static void
job_answered(StoreJob *job)
{
  g_hash_table_steal(job->sender->jobs, job);
}

WaSender *
wa_sender_new(WaGraph *graph, WaStore *store, WaLoop *loop, const char *phone_number_id, const WaSenderEvents *events,
              gpointer user)
{
  WaSender *sender = g_new0(WaSender, 1);

  sender->graph = graph;
  sender->store = store;
  sender->loop = loop;
  sender->pnid = g_strdup(phone_number_id);
  sender->events = *events;
  sender->user = user;
  sender->config.backoff_base_ms = 1000;
  sender->config.backoff_max_ms = 60000;
  sender->queues = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, queue_free);
  sender->jobs = g_hash_table_new_full(NULL, NULL, (GDestroyNotify) job_free, NULL);
  sender->reads = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, read_slot_free);
  return sender;
}

void
wa_sender_set_config(WaSender *sender, const WaSenderConfig *config)
{
  sender->config = *config;
  if (sender->config.backoff_base_ms == 0)
    sender->config.backoff_base_ms = 1;
  if (sender->config.backoff_max_ms < sender->config.backoff_base_ms)
    sender->config.backoff_max_ms = sender->config.backoff_base_ms;
}

void
wa_sender_free(WaSender *sender)
{
  if (sender == NULL)
    return;
  /* the store answers no more once closed; jobs of a store still open
   * would call back into freed memory, so they are detached first */
  g_warn_if_fail(sender->store == NULL || g_hash_table_size(sender->jobs) == 0);
  wa_loop_timeout_clear(sender->loop, &sender->store_retry);
  g_hash_table_destroy(sender->queues);
  g_hash_table_destroy(sender->jobs);
  g_hash_table_destroy(sender->reads);
  g_free(sender->pnid);
  g_free(sender);
}

char *
wa_sender_callback_data(guint64 id)
{
  return g_strdup_printf("wabiz:%" G_GUINT64_FORMAT, id);
}

guint64
wa_sender_parse_callback_data(const char *data)
{
  guint64 id = 0;

  if (data == NULL || !g_str_has_prefix(data, "wabiz:"))
    return 0;
  if (!g_ascii_string_to_unsigned(data + 6, 10, 1, G_MAXUINT64, &id, NULL))
    return 0;
  return id;
}

static CustomerQueue *
queue_get(WaSender *sender, const char *to)
{
  CustomerQueue *q = g_hash_table_lookup(sender->queues, to);

  if (q == NULL) {
    q = g_new0(CustomerQueue, 1);
    q->sender = sender;
    q->to = g_strdup(to);
    g_queue_init(&q->items);
    g_hash_table_insert(sender->queues, q->to, q);
  }
  return q;
}

static gboolean
queue_has(CustomerQueue *q, guint64 id)
{
  for (GList *l = q->items.head; l != NULL; l = l->next)
    if (((Outgoing *) l->data)->id == id)
      return TRUE;
  return FALSE;
}

static Outgoing *
outgoing_new(const WaStoreOutbox *entry)
{
  Outgoing *o = g_new0(Outgoing, 1);

  o->id = entry->id;
  o->customer_id = g_strdup(entry->customer_id);
  o->body = g_strdup(entry->body);
  o->payload = g_strdup(entry->payload);
  o->preview_url = entry->preview_url;
  o->marked = entry->state == WA_STORE_OUTBOX_SENDING;
  return o;
}

static void pump(CustomerQueue *q);
static void pump_reads(WaSender *sender);

/* The values of @table, to walk while their callbacks may change it. */
static GPtrArray *
values_of(GHashTable *table)
{
  GHashTableIter iter;
  gpointer value;
  GPtrArray *all = g_ptr_array_new();

  g_hash_table_iter_init(&iter, table);
  while (g_hash_table_iter_next(&iter, NULL, &value))
    g_ptr_array_add(all, value);
  return all;
}

static void
pump_all(WaSender *sender)
{
  g_autoptr(GPtrArray) all = values_of(sender->queues);

  for (guint i = 0; i < all->len; i++)
    pump(g_ptr_array_index(all, i));
  pump_reads(sender);
}

/* ---- recording outcomes --------------------------------------------------- */

static void
record_done(const WaStoreOutbox *entry, const GError *error, gpointer data)
{
  StoreJob *job = data;

  job_answered(job);
  /* INVALID: a status webhook resolved the entry first (e.g. failed before
   * the send's answer came); what it recorded stands */
  if (error != NULL && !g_error_matches(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID) &&
      !g_error_matches(error, WA_STORE_ERROR, WA_STORE_ERROR_NOT_FOUND) && job->sender->events.store_failed != NULL)
    job->sender->events.store_failed(job->sender->user, error);
  job_free(job);
}

/* Records the head's outcome; nobody waits for it. */
static void
record(WaSender *sender, guint64 id, WaStoreOutboxState state, const char *wamid, const char *error_text,
       gint64 next_attempt)
{
  WaStoreOutboxChange change = {
    .state = state,
    .wamid = wamid,
    .error_text = error_text,
    .next_attempt = next_attempt,
  };
  StoreJob *job;

  if (sender->store == NULL) {
    /* detached: only "provably not sent" needs telling, so that it goes
     * out after the next opening (other outcomes reach the events) */
    if (state == WA_STORE_OUTBOX_QUEUED && sender->not_started != NULL)
      sender->not_started(id, sender->not_started_data);
    return;
  }
  job = job_new(sender, JOB_RECORD);
  job->id = id;
  wa_store_outbox_update(sender->store, id, &change, record_done, job);
}

/* ---- sending ---------------------------------------------------------------- */

/* Finishes the head item and moves on. Removes the queue when it is empty;
 * returns FALSE then (q is gone). */
static gboolean
advance(CustomerQueue *q)
{
  outgoing_free(g_queue_pop_head(&q->items));
  q->attempts = 0;
  if (g_queue_is_empty(&q->items)) {
    g_hash_table_remove(q->sender->queues, q->to);
    return FALSE;
  }
  return TRUE;
}

static guint
retry_delay(CustomerQueue *q, const WaGraphError *error)
{
  WaSenderConfig *c = &q->sender->config;
  guint64 delay;

  if (error != NULL && error->code == 131056) {
    /* pair rate limit: Meta asks for 4^X seconds */
    delay = (guint64) c->backoff_base_ms;
    for (guint i = 0; i < q->attempts && delay < c->backoff_max_ms; i++)
      delay *= 4;
  } else {
    delay = (guint64) c->backoff_base_ms << MIN(q->attempts, 20u);
  }
  return (guint) MIN(delay, (guint64) c->backoff_max_ms);
}

static gboolean
retry_fired(gpointer data)
{
  CustomerQueue *q = data;

  WaSender *sender = q->sender;

  q->retry_timer = 0;
  pump(q);
  pump_reads(sender);
  return G_SOURCE_REMOVE;
}

/* The head was provably not sent: back to QUEUED, tried again later. */
static void
retry_later(CustomerQueue *q, const WaGraphError *error)
{
  WaSender *sender = q->sender;
  Outgoing *head = g_queue_peek_head(&q->items);
  guint delay = retry_delay(q, error);

  record(sender, head->id, WA_STORE_OUTBOX_QUEUED, NULL, NULL, 0);
  q->attempts++;
  q->retry_timer = wa_loop_timeout_add(sender->loop, delay, retry_fired, q);
  sender->events.waiting(sender->user, q->to, g_queue_get_length(&q->items), delay, error);
}

/* Ends the head with @state and reports it through @report (after the
 * queue moved on, so a handler sees the new counts). */
static void
finish_head(CustomerQueue *q, WaStoreOutboxState state, const WaGraphError *error,
            void (*report)(gpointer, const char *, guint64, const WaGraphError *))
{
  WaSender *sender = q->sender;
  Outgoing *head = g_queue_peek_head(&q->items);
  g_autofree char *to = g_strdup(q->to);
  g_autofree char *reason = wa_graph_error_describe(error);
  guint64 id = head->id;
  gboolean more;

  record(sender, id, state, NULL, reason, 0);
  more = advance(q);
  report(sender->user, to, id, error);
  if (more)
    pump(g_hash_table_lookup(sender->queues, to));
}

static void
send_done(WaGraphReply *reply, gpointer data)
{
  CustomerQueue *q = data;
  WaSender *sender = q->sender;
  Outgoing *head = g_queue_peek_head(&q->items);
  const WaGraphError *error = reply->error;

  q->call = NULL;
  if (error == NULL) {
    g_autoptr(GError) local = NULL;
    g_autoptr(WaSendResult) result = wa_send_result_from_json(reply->object, &local);
    g_autofree char *to = NULL;
    guint64 id = head->id;
    gboolean more;

    if (result == NULL) {
      /* accepted, but the answer cannot be read: it may well have gone out */
      g_autoptr(WaGraphError) odd = wa_graph_error_new();

      odd->message = g_strdup(local->message);
      finish_head(q, WA_STORE_OUTBOX_UNCERTAIN, odd, sender->events.uncertain);
      return;
    }
    to = g_strdup(q->to);
    record(sender, id, WA_STORE_OUTBOX_SENT, result->wamid, NULL, 0);
    more = advance(q);
    sender->events.sent(sender->user, to, id, result);
    if (more)
      pump(g_hash_table_lookup(sender->queues, to));
    return;
  }

  switch (error->klass) {
  case WA_ERROR_CLASS_NETWORK:
    if (!error->reached) {
      retry_later(q, error);
      return;
    }
    /* the request may have reached Meta: never repeat it automatically */
    finish_head(q, WA_STORE_OUTBOX_UNCERTAIN, error, sender->events.uncertain);
    return;
  case WA_ERROR_CLASS_RATE_LIMITED:
    retry_later(q, error);
    return;
  case WA_ERROR_CLASS_AUTH:
    /* refused before anything was sent: queued again, the outbox pauses */
    record(sender, head->id, WA_STORE_OUTBOX_QUEUED, NULL, NULL, 0);
    sender->paused = TRUE;
    sender->events.auth_failed(sender->user, error);
    return;
  case WA_ERROR_CLASS_RETRYABLE:
    if (error->http_status >= 500 || error->http_status == 0 || error->code == 0) {
      /* a server error may come after the message was accepted */
      finish_head(q, WA_STORE_OUTBOX_UNCERTAIN, error, sender->events.uncertain);
      return;
    }
    /* an explicit "temporarily unavailable" error body: Meta did not take it */
    retry_later(q, error);
    return;
  default:
    finish_head(q, WA_STORE_OUTBOX_FAILED, error, sender->events.failed);
    return;
  }
}

static void
start_request(CustomerQueue *q)
{
  Outgoing *head = g_queue_peek_head(&q->items);
  g_autofree char *callback_data = wa_sender_callback_data(head->id);
  g_autoptr(JsonNode) message = NULL;
  g_autoptr(GError) local = NULL;

  if (head->payload != NULL)
    message = wa_message_payload_new(q->to, head->payload, callback_data, &local);
  else
    message = wa_message_text_new(q->to, head->body, head->preview_url, callback_data);
  if (message == NULL) {
    /* a stored payload that does not read: never sent */
    g_autoptr(WaGraphError) bad = wa_graph_error_new();

    bad->message = g_strdup(local->message);
    finish_head(q, WA_STORE_OUTBOX_FAILED, bad, q->sender->events.failed);
    return;
  }
  q->call = wa_graph_send_message_to(q->sender->graph, q->sender->pnid, wa_message_payload_endpoint(head->payload),
                                     message, send_done, q);
}

static gboolean
store_retry_fired(gpointer data)
{
  WaSender *sender = data;

  sender->store_retry = 0;
  pump_all(sender);
  return G_SOURCE_REMOVE;
}

static void
marked_cb(const WaStoreOutbox *entry, const GError *error, gpointer data)
{
  StoreJob *job = data;
  WaSender *sender = job->sender;
  CustomerQueue *q = g_hash_table_lookup(sender->queues, job->to);
  Outgoing *head = q != NULL ? g_queue_peek_head(&q->items) : NULL;

  job_answered(job);
  if (q == NULL || head == NULL || head->id != job->id || !q->marking) {
    job_free(job);
    return;
  }
  q->marking = FALSE;
  if (error != NULL && (g_error_matches(error, WA_STORE_ERROR, WA_STORE_ERROR_NOT_FOUND) ||
                        g_error_matches(error, WA_STORE_ERROR, WA_STORE_ERROR_INVALID))) {
    /* erased with its customer, or resolved meanwhile: nothing to send */
    g_autofree char *to = g_strdup(q->to);

    if (advance(q))
      pump(q);
    if (sender->events.skipped != NULL)
      sender->events.skipped(sender->user, to, job->id);
  } else if (error != NULL) {
    /* not recorded: not sent; everything waits for the store */
    if (sender->store_retry == 0)
      sender->store_retry =
        wa_loop_timeout_add(sender->loop, sender->config.backoff_base_ms, store_retry_fired, sender);
    if (sender->events.store_failed != NULL)
      sender->events.store_failed(sender->user, error);
  } else if (sender->paused) {
    /* paused meanwhile (a refused token): not started, so queued again */
    record(sender, head->id, WA_STORE_OUTBOX_QUEUED, NULL, NULL, 0);
  } else {
    start_request(q);
  }
  job_free(job);
}

static void
pump(CustomerQueue *q)
{
  WaSender *sender;
  Outgoing *head;
  StoreJob *job;
  WaStoreOutboxChange change = {.state = WA_STORE_OUTBOX_SENDING};

  if (q == NULL || q->call != NULL || q->marking || q->retry_timer != 0)
    return;
  sender = q->sender;
  if (sender->paused || sender->restoring || sender->store == NULL || sender->store_retry != 0)
    return;
  head = g_queue_peek_head(&q->items);
  if (head == NULL)
    return;
  if (head->marked) {
    /* its SENDING was committed with its outbox entry; a retry records
     * QUEUED and then SENDING again, as for any other */
    head->marked = FALSE;
    start_request(q);
    return;
  }
  /* SENDING committed before the request: after a crash it is uncertain */
  job = job_new(sender, JOB_MARK);
  job->to = g_strdup(q->to);
  job->id = head->id;
  q->marking = TRUE;
  wa_store_outbox_update(sender->store, head->id, &change, marked_cb, job);
}

/* ---- queuing ---------------------------------------------------------------- */

static void
enqueued_cb(const WaStoreOutbox *entry, const GError *error, gpointer data)
{
  StoreJob *job = data;
  WaSender *sender = job->sender;

  job_answered(job);
  if (error == NULL) {
    CustomerQueue *q = queue_get(sender, job->to);

    if (!queue_has(q, entry->id))
      g_queue_push_tail(&q->items, outgoing_new(entry));
    pump(q);
  }
  if (job->queued != NULL)
    job->queued(entry, error, job->data);
  job_free(job);
}

/* Without a store nothing can be queued: @queued is told so. */
static gboolean
refused_detached(WaSender *sender, WaSenderQueuedFunc queued, gpointer data)
{
  g_autoptr(GError) error = NULL;

  if (sender->store != NULL)
    return FALSE;
  error = g_error_new_literal(WA_STORE_ERROR, WA_STORE_ERROR_LOCKED, "the account's store is closed");
  if (queued != NULL)
    queued(NULL, error, data);
  return TRUE;
}

static void
enqueue(WaSender *sender, const char *customer_id, const char *to, const char *type, const char *body,
        const char *payload, gboolean preview_url, WaSenderQueuedFunc queued, gpointer data)
{
  StoreJob *job;

  if (refused_detached(sender, queued, data))
    return;
  job = job_new(sender, JOB_ENQUEUE);
  job->to = g_strdup(to);
  job->queued = queued;
  job->data = data;
  wa_store_outbox_enqueue(sender->store, customer_id, type, body, payload, preview_url, enqueued_cb, job);
}

void
wa_sender_enqueue_text(WaSender *sender, const char *customer_id, const char *to, const char *body,
                       gboolean preview_url, WaSenderQueuedFunc queued, gpointer data)
{
  g_return_if_fail(customer_id != NULL && to != NULL && body != NULL);
  enqueue(sender, customer_id, to, "text", body, NULL, preview_url, queued, data);
}

void
wa_sender_enqueue(WaSender *sender, const char *customer_id, const char *to, const char *type, const char *line,
                  const char *payload, WaSenderQueuedFunc queued, gpointer data)
{
  g_return_if_fail(customer_id != NULL && to != NULL && type != NULL && payload != NULL);
  enqueue(sender, customer_id, to, type, line, payload, FALSE, queued, data);
}

void
wa_sender_submit(WaSender *sender, const WaStoreOutbox *entry, const char *to)
{
  CustomerQueue *q;

  g_return_if_fail(entry != NULL && to != NULL);
  q = queue_get(sender, to);
  if (!queue_has(q, entry->id))
    g_queue_push_tail(&q->items, outgoing_new(entry));
  pump(q);
}

void
wa_sender_resend(WaSender *sender, const WaStoreOutbox *entry, const char *to, WaSenderQueuedFunc queued, gpointer data)
{
  WaStoreOutboxChange change = {.state = WA_STORE_OUTBOX_QUEUED};
  StoreJob *job;

  g_return_if_fail(entry != NULL && to != NULL);
  if (refused_detached(sender, queued, data))
    return;
  job = job_new(sender, JOB_ENQUEUE);
  job->to = g_strdup(to);
  job->queued = queued;
  job->data = data;
  wa_store_outbox_update(sender->store, entry->id, &change, enqueued_cb, job);
}

/* ---- restoring at sign-on ----------------------------------------------------- */

static void
restore_customers_cb(GPtrArray *customers, const GError *error, gpointer data)
{
  StoreJob *job = data;
  WaSender *sender = job->sender;
  g_autoptr(GHashTable) address = g_hash_table_new(g_str_hash, g_str_equal);
  g_autoptr(GHashTable) fronts = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_queue_free);
  GHashTableIter iter;
  gpointer key, value;
  guint restored = 0;

  job_answered(job);
  sender->restoring = FALSE;
  for (guint i = 0; error == NULL && i < customers->len; i++) {
    const WaStoreCustomer *c = g_ptr_array_index(customers, i);
    const char *to = c->wa_id != NULL ? c->wa_id : c->bsuid;

    if (to != NULL)
      g_hash_table_insert(address, c->id, (gpointer) to);
  }
  /* the stored entries go before what was queued while they were read */
  for (guint i = 0; error == NULL && i < job->entries->len; i++) {
    const WaStoreOutbox *entry = g_ptr_array_index(job->entries, i);
    const char *to = g_hash_table_lookup(address, entry->customer_id);
    CustomerQueue *q;
    GQueue *front;

    if (to == NULL || entry->tampered)
      continue; /* erased, or unreadable: nothing to send it to */
    if (entry->campaign)
      continue; /* its campaign's runner submits it at its pace */
    q = queue_get(sender, to);
    if (queue_has(q, entry->id))
      continue;
    front = g_hash_table_lookup(fronts, to);
    if (front == NULL) {
      front = g_queue_new();
      g_hash_table_insert(fronts, g_strdup(to), front);
    }
    g_queue_push_tail(front, outgoing_new(entry));
    restored++;
  }
  g_hash_table_iter_init(&iter, fronts);
  while (g_hash_table_iter_next(&iter, &key, &value)) {
    CustomerQueue *q = queue_get(sender, key);
    GQueue *front = value;
    Outgoing *o;

    while ((o = g_queue_pop_tail(front)) != NULL)
      g_queue_push_head(&q->items, o);
  }
  if (job->restored != NULL)
    job->restored(restored, error, job->data);
  job_free(job);
  pump_all(sender);
}

static void
restore_list_cb(GPtrArray *entries, const GError *error, gpointer data)
{
  StoreJob *job = data;
  WaSender *sender = job->sender;

  job_answered(job);
  if (error != NULL || sender->store == NULL) {
    sender->restoring = FALSE;
    if (job->restored != NULL)
      job->restored(0, error, job->data);
    job_free(job);
    pump_all(sender);
    return;
  }
  job->entries = g_ptr_array_ref(entries);
  job->kind = JOB_RESTORE_CUSTOMERS;
  g_hash_table_add(sender->jobs, job);
  wa_store_customers_list(sender->store, restore_customers_cb, job);
}

void
wa_sender_restore(WaSender *sender, WaSenderRestoredFunc done, gpointer data)
{
  StoreJob *job;

  g_return_if_fail(sender->store != NULL);
  job = job_new(sender, JOB_RESTORE_LIST);
  job->restored = done;
  job->data = data;
  sender->restoring = TRUE;
  wa_store_outbox_list(sender->store, WA_STORE_OUTBOX_MASK(WA_STORE_OUTBOX_QUEUED), restore_list_cb, job);
}

/* ---- read receipts --------------------------------------------------------------- */

static void pump_read(ReadSlot *slot);

static void
read_done(WaGraphReply *reply, gpointer data)
{
  ReadSlot *slot = data;
  WaSender *sender = slot->sender;
  g_autofree char *to = g_strdup(slot->to);
  g_autofree char *wamid = g_steal_pointer(&slot->call_wamid);
  gboolean typing = slot->call_typing;

  slot->call = NULL;
  if (slot->wamid != NULL)
    pump_read(slot);
  else
    g_hash_table_remove(sender->reads, to);
  /* after the slot moved on: a handler may ask for another receipt */
  if (sender->events.read != NULL)
    sender->events.read(sender->user, to, wamid, typing, reply->error);
}

/* Starts the waiting receipt unless one is in flight or sending is held
 * back (paused, or the customer's queue backs off after a rate limit). */
static void
pump_read(ReadSlot *slot)
{
  WaSender *sender = slot->sender;
  CustomerQueue *q = g_hash_table_lookup(sender->queues, slot->to);
  g_autoptr(JsonNode) message = NULL;

  if (slot->call != NULL || slot->wamid == NULL || sender->paused || (q != NULL && q->retry_timer != 0))
    return;
  slot->call_wamid = g_steal_pointer(&slot->wamid);
  slot->call_typing = slot->typing;
  slot->typing = FALSE;
  message = wa_message_read_new(slot->call_wamid, slot->call_typing);
  slot->call = wa_graph_send_message(sender->graph, sender->pnid, message, read_done, slot);
}

static void
pump_reads(WaSender *sender)
{
  g_autoptr(GPtrArray) all = values_of(sender->reads);

  for (guint i = 0; i < all->len; i++)
    pump_read(g_ptr_array_index(all, i));
}

void
wa_sender_mark_read(WaSender *sender, const char *to, const char *wamid, gboolean typing)
{
  ReadSlot *slot;

  g_return_if_fail(to != NULL && wamid != NULL);
  slot = g_hash_table_lookup(sender->reads, to);
  if (slot == NULL) {
    slot = g_new0(ReadSlot, 1);
    slot->sender = sender;
    slot->to = g_strdup(to);
    g_hash_table_insert(sender->reads, slot->to, slot);
  }
  if (g_strcmp0(slot->wamid, wamid) != 0) {
    g_free(slot->wamid);
    slot->wamid = g_strdup(wamid);
  }
  slot->typing = slot->typing || typing;
  pump_read(slot);
}

gboolean
wa_sender_read_waiting(WaSender *sender, const char *to)
{
  ReadSlot *slot = g_hash_table_lookup(sender->reads, to);

  return slot != NULL && slot->wamid != NULL;
}

/* ---- the rest --------------------------------------------------------------------- */

void
wa_sender_detach_store(WaSender *sender, WaSenderIdFunc not_started, gpointer data)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init(&iter, sender->jobs);
  while (g_hash_table_iter_next(&iter, &value, NULL)) {
    StoreJob *job = value;

    if (job->kind == JOB_MARK && not_started != NULL)
      not_started(job->id, data);
  }
  g_hash_table_remove_all(sender->jobs);
  g_hash_table_iter_init(&iter, sender->queues);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    CustomerQueue *q = value;

    q->marking = FALSE;
    /* SENDING in the store, but their request never started */
    for (GList *l = q->items.head; l != NULL && not_started != NULL; l = l->next) {
      if (((Outgoing *) l->data)->marked)
        not_started(((Outgoing *) l->data)->id, data);
    }
  }
  sender->store = NULL;
  sender->restoring = FALSE;
  sender->not_started = not_started;
  sender->not_started_data = data;
}

void
wa_sender_set_events(WaSender *sender, const WaSenderEvents *events, gpointer user)
{
  sender->events = *events;
  sender->user = user;
}

void
wa_sender_foreach(WaSender *sender, WaSenderForeachFunc func, gpointer data)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init(&iter, sender->queues);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    CustomerQueue *q = value;
    func(q->to, g_queue_get_length(&q->items), q->call != NULL, data);
  }
}

static void
count_in_flight(const char *to, guint waiting, gboolean in_flight, gpointer data)
{
  *(guint *) data += in_flight ? 1 : 0;
}

static void
count_waiting(const char *to, guint waiting, gboolean in_flight, gpointer data)
{
  *(guint *) data += waiting;
}

guint
wa_sender_in_flight(WaSender *sender)
{
  guint n = 0;

  wa_sender_foreach(sender, count_in_flight, &n);
  return n;
}

void
wa_sender_pause(WaSender *sender)
{
  sender->paused = TRUE;
}

guint
wa_sender_waiting(WaSender *sender, const char *to)
{
  CustomerQueue *q = g_hash_table_lookup(sender->queues, to);
  return q != NULL ? g_queue_get_length(&q->items) : 0;
}

guint
wa_sender_total_waiting(WaSender *sender)
{
  guint total = 0;

  wa_sender_foreach(sender, count_waiting, &total);
  return total;
}

void
wa_sender_resume(WaSender *sender)
{
  sender->paused = FALSE;
  pump_all(sender);
}
