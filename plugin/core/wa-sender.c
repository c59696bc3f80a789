/* wa-sender.c: per-customer FIFO queues over the Graph client, with the retry
 * rules of wa-sender.h. */
#include "wa-sender.h"

#include <stdlib.h>

typedef struct {
  guint64 id;
  char *body;
  gboolean preview_url;
} Outgoing;

typedef struct {
  WaSender *sender;
  char *customer;
  GQueue items;       /* Outgoing* in order */
  WaGraphCall *call;  /* the one request in flight */
  guint retry_timer;
  guint attempts;     /* consecutive retries of the head item */
} CustomerQueue;

struct _WaSender {
  WaGraph *graph;
  WaLoop *loop;
  char *pnid;
  WaSenderEvents events;
  gpointer user;
  WaSenderConfig config;
  GHashTable *queues; /* customer -> CustomerQueue* */
  guint64 next_id;
  gboolean paused;
};

static void outgoing_free(Outgoing *o)
{
  g_free(o->body);
  g_free(o);
}

static void
queue_free(gpointer data)
{
  CustomerQueue *q = data;

  wa_graph_cancel(q->call);
  wa_loop_timeout_clear(q->sender->loop, &q->retry_timer);
  g_queue_clear_full(&q->items, (GDestroyNotify) outgoing_free);
  g_free(q->customer);
  g_free(q);
}

WaSender *
wa_sender_new(WaGraph *graph, WaLoop *loop, const char *phone_number_id,
              const WaSenderEvents *events, gpointer user)
{
  WaSender *sender = g_new0(WaSender, 1);

  sender->graph = graph;
  sender->loop = loop;
  sender->pnid = g_strdup(phone_number_id);
  sender->events = *events;
  sender->user = user;
  sender->config.backoff_base_ms = 1000;
  sender->config.backoff_max_ms = 60000;
  sender->queues = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, queue_free);
  sender->next_id = 1;
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
  g_hash_table_destroy(sender->queues);
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

static void pump(CustomerQueue *q);

/* Finishes the head item and moves on. Removes the queue when it is empty;
 * returns FALSE then (q is gone). */
static gboolean
advance(CustomerQueue *q)
{
  Outgoing *head = g_queue_pop_head(&q->items);

  outgoing_free(head);
  q->attempts = 0;
  if (g_queue_is_empty(&q->items)) {
    g_hash_table_remove(q->sender->queues, q->customer);
    return FALSE;
  }
  return TRUE;
}

static guint
retry_delay(CustomerQueue *q, const WaGraphError *error)
{
  WaSenderConfig *c = &q->sender->config;
  guint64 delay;

  if (error->code == 131056) {
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

  q->retry_timer = 0;
  pump(q);
  return G_SOURCE_REMOVE;
}

static void
send_done(WaGraphReply *reply, gpointer data)
{
  CustomerQueue *q = data;
  WaSender *sender = q->sender;
  Outgoing *head = g_queue_peek_head(&q->items);
  g_autofree char *customer = g_strdup(q->customer);
  guint64 id = head->id;
  const WaGraphError *error = reply->error;

  q->call = NULL;
  if (error == NULL) {
    g_autoptr(GError) local = NULL;
    g_autoptr(WaSendResult) result = wa_send_result_from_json(reply->object, &local);
    gboolean more = advance(q);

    if (result != NULL) {
      sender->events.sent(sender->user, customer, id, result);
    } else {
      g_autoptr(WaGraphError) odd = wa_graph_error_new();
      odd->message = g_strdup(local->message);
      sender->events.uncertain(sender->user, customer, id, odd);
    }
    if (more)
      pump(g_hash_table_lookup(sender->queues, customer));
    return;
  }

  switch (error->klass) {
  case WA_ERROR_CLASS_NETWORK:
    if (!error->reached)
      goto retry;
    /* the request may have reached Meta: never repeat it automatically */
    if (advance(q)) {
      sender->events.uncertain(sender->user, customer, id, error);
      pump(g_hash_table_lookup(sender->queues, customer));
    } else {
      sender->events.uncertain(sender->user, customer, id, error);
    }
    return;
  case WA_ERROR_CLASS_RATE_LIMITED:
    goto retry;
  case WA_ERROR_CLASS_AUTH:
    sender->paused = TRUE;
    sender->events.auth_failed(sender->user, error);
    return;
  case WA_ERROR_CLASS_RETRYABLE:
    if (error->http_status >= 500 || error->http_status == 0 || error->code == 0) {
      /* a server error may come after the message was accepted */
      gboolean more = advance(q);
      sender->events.uncertain(sender->user, customer, id, error);
      if (more)
        pump(g_hash_table_lookup(sender->queues, customer));
      return;
    }
    /* an explicit "temporarily unavailable" error body: Meta did not take it */
    goto retry;
  default: {
    gboolean more = advance(q);
    sender->events.failed(sender->user, customer, id, error);
    if (more)
      pump(g_hash_table_lookup(sender->queues, customer));
    return;
  }
  }

retry: {
    guint delay = retry_delay(q, error);
    q->attempts++;
    q->retry_timer = wa_loop_timeout_add(sender->loop, delay, retry_fired, q);
    sender->events.waiting(sender->user, customer, g_queue_get_length(&q->items), delay, error);
  }
}

static void
pump(CustomerQueue *q)
{
  WaSender *sender;
  Outgoing *head;
  g_autoptr(JsonNode) message = NULL;
  g_autofree char *callback_data = NULL;

  if (q == NULL || q->call != NULL || q->retry_timer != 0)
    return;
  sender = q->sender;
  if (sender->paused)
    return;
  head = g_queue_peek_head(&q->items);
  if (head == NULL)
    return;
  callback_data = wa_sender_callback_data(head->id);
  message = wa_message_text_new(q->customer, head->body, head->preview_url, callback_data);
  q->call = wa_graph_send_message(sender->graph, sender->pnid, message, send_done, q);
}

guint64
wa_sender_enqueue_text(WaSender *sender, const char *customer, const char *body, gboolean preview_url)
{
  CustomerQueue *q = g_hash_table_lookup(sender->queues, customer);
  Outgoing *o = g_new0(Outgoing, 1);

  o->id = sender->next_id++;
  o->body = g_strdup(body);
  o->preview_url = preview_url;
  if (q == NULL) {
    q = g_new0(CustomerQueue, 1);
    q->sender = sender;
    q->customer = g_strdup(customer);
    g_queue_init(&q->items);
    g_hash_table_insert(sender->queues, q->customer, q);
  }
  g_queue_push_tail(&q->items, o);
  pump(q);
  return o->id;
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
    func(q->customer, g_queue_get_length(&q->items), q->call != NULL, data);
  }
}

static void
count_in_flight(const char *customer, guint waiting, gboolean in_flight, gpointer data)
{
  *(guint *) data += in_flight ? 1 : 0;
}

static void
count_waiting(const char *customer, guint waiting, gboolean in_flight, gpointer data)
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
wa_sender_waiting(WaSender *sender, const char *customer)
{
  CustomerQueue *q = g_hash_table_lookup(sender->queues, customer);
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
  GHashTableIter iter;
  gpointer value;
  g_autoptr(GPtrArray) all = g_ptr_array_new();

  sender->paused = FALSE;
  g_hash_table_iter_init(&iter, sender->queues);
  while (g_hash_table_iter_next(&iter, NULL, &value))
    g_ptr_array_add(all, value);
  for (guint i = 0; i < all->len; i++)
    pump(g_ptr_array_index(all, i));
}
