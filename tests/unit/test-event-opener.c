/* test-event-opener.c: events opened and parsed on the opener's thread come
 * back on the loop in the order they were pushed, each with what it is. */
#include <string.h>

#include "test-util.h"
#include "wa-event-opener.h"

/* Two customers' messages in one change: each keeps only its own contact. */
static const char *TWO =
  "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290129340398\",\"time\":1700000000,"
  "\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
  "\"metadata\":{\"display_phone_number\":\"15550783881\",\"phone_number_id\":\"106540352242922\"},"
  "\"contacts\":[{\"profile\":{\"name\":\"Ada\"},\"wa_id\":\"4917612345678\"},"
  "{\"profile\":{\"name\":\"Bo\"},\"wa_id\":\"4917698765432\"}],"
  "\"messages\":[{\"from\":\"4917612345678\",\"id\":\"wamid.A\",\"timestamp\":\"1700000000\",\"type\":\"text\","
  "\"text\":{\"body\":\"first words\"}},"
  "{\"from\":\"4917698765432\",\"id\":\"wamid.B\",\"timestamp\":\"1700000001\",\"type\":\"text\","
  "\"text\":{\"body\":\"second words\"}}]}}]}]}";

static const char *ECHO =
  "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{\"field\":"
  "\"smb_message_echoes\",\"value\":{\"messaging_product\":\"whatsapp\",\"message_echoes\":[{\"from\":"
  "\"15550783881\",\"to\":\"4917612345678\",\"id\":\"wamid.E\",\"timestamp\":\"1700000002\",\"type\":\"text\","
  "\"text\":{\"body\":\"from the phone\"}}]}}]}]}";

typedef struct {
  guint ready; /* calls of the ready callback */
} Fixture;

static void
ready_cb(gpointer data)
{
  ((Fixture *) data)->ready++;
}

static void
test_order_and_results(void)
{
  g_autoptr(WaKeyPair) pair = wa_keypair_new(NULL);
  g_autoptr(WaKeyPair) other = wa_keypair_new(NULL);
  g_autoptr(WaSealer) sealer = wa_sealer_new(pair->public_key);
  g_autoptr(WaSealer) foreign = wa_sealer_new(other->public_key);
  Fixture fx = {0};
  g_autoptr(WaEventOpener) opener = wa_event_opener_new(wa_loop_glib(), pair, ready_cb, &fx, NULL);
  g_autoptr(GBytes) two = wa_sealer_seal(sealer, TWO, strlen(TWO));
  g_autoptr(GBytes) wrong_key = wa_sealer_seal(foreign, TWO, strlen(TWO));
  g_autoptr(GBytes) not_json = wa_sealer_seal(sealer, "{not json", 9);
  g_autoptr(GBytes) echo = wa_seal(pair->public_key, ECHO, strlen(ECHO)); /* crypto_box_seal, one per event */
  WaOpenedEvent *event;
  const WaChange *change;
  const WaMessage *msg;

  g_assert_nonnull(opener);
  g_assert_null(wa_event_opener_peek(opener));
  wa_event_opener_push(opener, 7, two);
  wa_event_opener_push(opener, 8, wrong_key);
  wa_event_opener_push(opener, 9, not_json);
  wa_event_opener_push(opener, 10, echo);
  g_assert_cmpuint(wa_event_opener_length(opener), ==, 4);
  test_wait_until(fx.ready > 0 && wa_event_opener_peek(opener) != NULL, 30);

  event = wa_event_opener_pop(opener);
  g_assert_cmpint(event->seq, ==, 7);
  g_assert_true(event->unsealed);
  g_assert_no_error(event->error);
  g_assert_nonnull(event->webhook);
  change = g_ptr_array_index(event->webhook->changes, 0);
  g_assert_cmpuint(change->messages->len, ==, 2);
  /* each message's stored event names its own customer and words only */
  msg = g_ptr_array_index(change->messages, 0);
  g_assert_nonnull(msg->stored);
  g_assert_nonnull(strstr(msg->stored, "first words"));
  g_assert_nonnull(strstr(msg->stored, "\"Ada\""));
  g_assert_null(strstr(msg->stored, "second words"));
  g_assert_null(strstr(msg->stored, "4917698765432"));
  g_assert_nonnull(strstr(msg->stored, "106540352242922"));
  msg = g_ptr_array_index(change->messages, 1);
  g_assert_nonnull(strstr(msg->stored, "second words"));
  g_assert_null(strstr(msg->stored, "first words"));
  g_assert_null(strstr(msg->stored, "\"Ada\""));
  wa_event_opener_dispose(opener, g_steal_pointer(&event->webhook)); /* freed on the worker */
  wa_opened_event_free(event);

  test_wait_until(wa_event_opener_peek(opener) != NULL, 30);
  event = wa_event_opener_pop(opener);
  g_assert_cmpint(event->seq, ==, 8);
  g_assert_false(event->unsealed);
  g_assert_null(event->webhook);
  g_assert_error(event->error, WA_SEAL_ERROR, WA_SEAL_ERROR_OPEN);
  wa_opened_event_free(event);

  test_wait_until(wa_event_opener_peek(opener) != NULL, 30);
  event = wa_event_opener_pop(opener);
  g_assert_cmpint(event->seq, ==, 9);
  g_assert_true(event->unsealed);
  g_assert_null(event->webhook);
  g_assert_nonnull(event->error);
  wa_opened_event_free(event);

  test_wait_until(wa_event_opener_peek(opener) != NULL, 30);
  event = wa_event_opener_pop(opener);
  g_assert_cmpint(event->seq, ==, 10);
  change = g_ptr_array_index(event->webhook->changes, 0);
  g_assert_cmpuint(change->echoes->len, ==, 1);
  g_assert_nonnull(strstr(((const WaEcho *) g_ptr_array_index(change->echoes, 0))->stored, "from the phone"));
  g_assert_nonnull(strstr(((const WaEcho *) g_ptr_array_index(change->echoes, 0))->stored, "message_echoes"));
  wa_opened_event_free(event);

  g_assert_null(wa_event_opener_pop(opener));
  g_assert_cmpuint(wa_event_opener_length(opener), ==, 0);
}

/* Many events: each comes back once, in push order, whatever the worker's
 * pace; the loop is told rather than asked each time. */
static void
test_many_in_order(void)
{
  g_autoptr(WaKeyPair) pair = wa_keypair_new(NULL);
  g_autoptr(WaSealer) sealer = wa_sealer_new(pair->public_key);
  Fixture fx = {0};
  g_autoptr(WaEventOpener) opener = wa_event_opener_new(wa_loop_glib(), pair, ready_cb, &fx, NULL);
  const gint64 n = 500;
  gint64 next = 1;

  for (gint64 seq = 1; seq <= n; seq++) {
    g_autoptr(GBytes) sealed = wa_sealer_seal(sealer, TWO, strlen(TWO));

    wa_event_opener_push(opener, seq, sealed);
  }
  while (next <= n) {
    WaOpenedEvent *event;

    test_wait_until(wa_event_opener_peek(opener) != NULL, 60);
    while ((event = wa_event_opener_pop(opener)) != NULL) {
      g_assert_cmpint(event->seq, ==, next);
      g_assert_nonnull(event->webhook);
      next++;
      wa_opened_event_free(event);
    }
  }
  /* told about once per 32 (a wake per event would preempt the store's
   * writer): pushing is far quicker than opening, so the worker catches up
   * only at the end */
  g_assert_cmpuint(fx.ready, >, 0);
  g_assert_cmpuint(fx.ready, <=, (guint) n / 8);
}

/* Freed with events still queued (sign-off during a backlog): it stops at
 * once, nothing is called back, nothing leaks (valgrind, ASan). */
static void
test_free_with_events_queued(void)
{
  g_autoptr(WaKeyPair) pair = wa_keypair_new(NULL);
  g_autoptr(WaSealer) sealer = wa_sealer_new(pair->public_key);
  Fixture fx = {0};
  WaEventOpener *opener = wa_event_opener_new(wa_loop_glib(), pair, ready_cb, &fx, NULL);
  g_autoptr(GBytes) sealed = wa_sealer_seal(sealer, TWO, strlen(TWO));

  for (gint64 seq = 1; seq <= 2000; seq++)
    wa_event_opener_push(opener, seq, sealed);
  wa_event_opener_dispose(opener, wa_webhook_parse(TWO, strlen(TWO), NULL));
  wa_event_opener_free(opener);
  while (g_main_context_iteration(NULL, FALSE))
    ;
  g_assert_cmpuint(fx.ready, ==, 0);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/event-opener/order-and-results", test_order_and_results);
  g_test_add_func("/event-opener/many-in-order", test_many_in_order);
  g_test_add_func("/event-opener/free-with-events-queued", test_free_with_events_queued);
  return g_test_run();
}
