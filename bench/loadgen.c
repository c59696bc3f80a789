/* loadgen.c: the ingest load generator of bench/ingest.py (bench/README.md,
 * "Ingest").
 *
 * POSTs signed webhooks shaped as Meta sends them (text messages of about
 * 1.5 KB and statuses; the body serialised compactly with "/" written as "\/"
 * and non-ASCII as lowercase \uXXXX, the signature over those bytes, as
 * tests/sim/sim-webhook.c does) over N kept-alive HTTP/1.1 connections
 * (libcurl multi), each with a unique message or status id. At a fixed
 * offered rate (open loop: request i is due at start + i / rate; its latency
 * runs from when it was due, so waiting for a free connection counts) or, with
 * rate 0, as fast as the connections go (closed loop). Prints one line of
 * key=value figures: sent, accepted (answered 200), errors, accepted per
 * second, p50, p99 and max latency in milliseconds, and connections opened.
 *
 * A bench program: never installed, never a test. Must not: reuse an id
 * within a run (each run's ids start from a random prefix). */
#include <curl/curl.h>
#include <glib.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  CURL *easy;
  struct curl_slist *headers;
  GString *body;
  gint64 due; /* monotonic microseconds the request was due (its latency's start) */
  gboolean busy;
} Slot;

typedef struct {
  const char *url;
  const char *secret;
  const char *pnid;
  const char *waba;
  int conns;
  double rate;
  double seconds;
  int text_size;
  int status_percent;
} Options;

static char run_prefix[17];
static guint64 next_id;

/* Appends @text as a JSON string the way Meta writes it. */
static void
append_meta_string(GString *out, const char *text)
{
  g_string_append_c(out, '"');
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);

    if (c == '"' || c == '\\')
      g_string_append_printf(out, "\\%c", (char) c);
    else if (c == '/')
      g_string_append(out, "\\/");
    else if (c == '\n')
      g_string_append(out, "\\n");
    else if (c < 0x20)
      g_string_append_printf(out, "\\u%04x", c);
    else if (c < 0x80)
      g_string_append_c(out, (char) c);
    else if (c < 0x10000)
      g_string_append_printf(out, "\\u%04x", c);
    else
      g_string_append_printf(out, "\\u%04x\\u%04x", 0xd800 + ((c - 0x10000) >> 10), 0xdc00 + ((c - 0x10000) & 0x3ff));
  }
  g_string_append_c(out, '"');
}

/* A customer's text of about @size bytes on the wire: words, a URL, umlauts
 * and an emoji, as people write. */
static char *
message_text(int size, guint64 id)
{
  static const char *const words[] = {"Hallo", "ich",        "möchte",
                                      "meine", "Bestellung", "ändern,",
                                      "bitte", "siehe",      "https://example.com/o/42",
                                      "danke", "😀",          "für",
                                      "die",   "Hilfe."};
  GString *text = g_string_new(NULL);
  guint i = (guint) id;

  while ((int) text->len < size) {
    g_string_append(text, words[i % G_N_ELEMENTS(words)]);
    g_string_append_c(text, ' ');
    i = i * 7 + 3;
  }
  return g_string_free(text, FALSE);
}

static void
build_body(const Options *opt, GString *body, gboolean status)
{
  guint64 id = next_id++;
  g_autofree char *wamid = g_strdup_printf("wamid.HBgL%s%012" G_GINT64_MODIFIER "x", run_prefix, id);
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;

  g_string_truncate(body, 0);
  g_string_append(body, "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":");
  append_meta_string(body, opt->waba);
  g_string_append(body, ",\"changes\":[{\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":"
                        "{\"display_phone_number\":\"15551234567\",\"phone_number_id\":");
  append_meta_string(body, opt->pnid);
  g_string_append(body, "},");
  if (status) {
    g_string_append(body, "\"statuses\":[{\"id\":");
    append_meta_string(body, wamid);
    g_string_append_printf(body,
                           ",\"status\":\"delivered\",\"timestamp\":\"%" G_GINT64_FORMAT
                           "\",\"recipient_id\":\"4917012345678\",\"conversation\":{\"id\":\"c%s\","
                           "\"origin\":{\"type\":\"service\"}},\"pricing\":{\"billable\":true,"
                           "\"pricing_model\":\"PMP\",\"category\":\"service\"}}]",
                           now, run_prefix);
  } else {
    g_autofree char *text = message_text(opt->text_size, id);

    g_string_append(body, "\"contacts\":[{\"profile\":{\"name\":\"Jürgen Müller\"},\"wa_id\":\"4917012345678\"}],"
                          "\"messages\":[{\"from\":\"4917012345678\",\"id\":");
    append_meta_string(body, wamid);
    g_string_append_printf(body, ",\"timestamp\":\"%" G_GINT64_FORMAT "\",\"text\":{\"body\":", now);
    append_meta_string(body, text);
    g_string_append(body, "},\"type\":\"text\"}]");
  }
  g_string_append(body, "},\"field\":\"messages\"}]}]}");
}

static void
slot_prepare(const Options *opt, Slot *slot, gboolean status)
{
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  char hex[sizeof mac * 2 + 1];
  crypto_auth_hmacsha256_state state;
  g_autofree char *header = NULL;

  build_body(opt, slot->body, status);
  crypto_auth_hmacsha256_init(&state, (const unsigned char *) opt->secret, strlen(opt->secret));
  crypto_auth_hmacsha256_update(&state, (const unsigned char *) slot->body->str, slot->body->len);
  crypto_auth_hmacsha256_final(&state, mac);
  sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
  header = g_strdup_printf("X-Hub-Signature-256: sha256=%s", hex);
  curl_slist_free_all(slot->headers);
  slot->headers = curl_slist_append(NULL, "Content-Type: application/json");
  slot->headers = curl_slist_append(slot->headers, "Expect:");
  slot->headers = curl_slist_append(slot->headers, header);
  curl_easy_setopt(slot->easy, CURLOPT_HTTPHEADER, slot->headers);
  curl_easy_setopt(slot->easy, CURLOPT_POSTFIELDS, slot->body->str);
  curl_easy_setopt(slot->easy, CURLOPT_POSTFIELDSIZE, (long) slot->body->len);
}

static size_t
discard(char *ptr, size_t size, size_t nmemb, void *data)
{
  return size * nmemb;
}

static int
compare_gint64(gconstpointer a, gconstpointer b)
{
  gint64 x = *(const gint64 *) a;
  gint64 y = *(const gint64 *) b;

  return x < y ? -1 : x > y;
}

static double
percentile_ms(GArray *latencies, double p)
{
  guint index;

  if (latencies->len == 0)
    return 0;
  index = (guint) MIN((double) (latencies->len - 1), p * (double) latencies->len);
  return (double) g_array_index(latencies, gint64, index) / 1000.0;
}

int
main(int argc, char **argv)
{
  Options opt = {
    .pnid = "106540352242922",
    .waba = "102290129340398",
    .conns = 16,
    .rate = 0,
    .seconds = 10,
    .text_size = 820,
    .status_percent = 0,
  };
  GOptionEntry entries[] = {
    {"url", 0, 0, G_OPTION_ARG_STRING, &opt.url, "webhook URL", "URL"},
    {"secret", 0, 0, G_OPTION_ARG_STRING, &opt.secret, "app secret", "S"},
    {"pnid", 0, 0, G_OPTION_ARG_STRING, &opt.pnid, "phone number ID", "ID"},
    {"waba", 0, 0, G_OPTION_ARG_STRING, &opt.waba, "WABA id", "ID"},
    {"connections", 'c', 0, G_OPTION_ARG_INT, &opt.conns, "connections [16]", "N"},
    {"rate", 'r', 0, G_OPTION_ARG_DOUBLE, &opt.rate, "offered requests per second; 0: as fast as possible", "R"},
    {"seconds", 's', 0, G_OPTION_ARG_DOUBLE, &opt.seconds, "duration [10]", "S"},
    {"text-size", 0, 0, G_OPTION_ARG_INT, &opt.text_size, "text characters of a message [820: bodies of about 1.5 KB]",
     "N"},
    {"statuses", 0, 0, G_OPTION_ARG_INT, &opt.status_percent, "percent of requests that are statuses [0]", "P"},
    {NULL},
  };
  g_autoptr(GOptionContext) context = g_option_context_new("- POST signed webhooks");
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) latencies = g_array_new(FALSE, FALSE, sizeof(gint64));
  g_autofree Slot *slots = NULL;
  guint8 prefix_bytes[8];
  CURLM *multi;
  gint64 start, end, now;
  guint64 sent = 0, accepted = 0, errors = 0;
  long connects = 0;
  int running = 0;

  g_option_context_add_main_entries(context, entries, NULL);
  if (!g_option_context_parse(context, &argc, &argv, &error) || opt.url == NULL || opt.secret == NULL ||
      opt.conns < 1) {
    fprintf(stderr, "loadgen: %s\n", error != NULL ? error->message : "--url and --secret are needed");
    return 2;
  }
  if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return 1;
  randombytes_buf(prefix_bytes, sizeof prefix_bytes);
  sodium_bin2hex(run_prefix, sizeof run_prefix, prefix_bytes, sizeof prefix_bytes);

  multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) opt.conns);
  slots = g_new0(Slot, opt.conns);
  for (int i = 0; i < opt.conns; i++) {
    slots[i].easy = curl_easy_init();
    slots[i].body = g_string_new(NULL);
    curl_easy_setopt(slots[i].easy, CURLOPT_URL, opt.url);
    curl_easy_setopt(slots[i].easy, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(slots[i].easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(slots[i].easy, CURLOPT_PRIVATE, &slots[i]);
    curl_easy_setopt(slots[i].easy, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(slots[i].easy, CURLOPT_NOSIGNAL, 1L);
  }

  start = g_get_monotonic_time();
  end = start + (gint64) (opt.seconds * G_USEC_PER_SEC);
  for (;;) {
    CURLMsg *msg;
    int left;

    now = g_get_monotonic_time();
    /* start what is due on free connections */
    for (int i = 0; i < opt.conns && now < end; i++) {
      Slot *slot = &slots[i];
      gint64 due = opt.rate > 0 ? start + (gint64) ((double) sent * G_USEC_PER_SEC / opt.rate) : now;

      if (slot->busy)
        continue;
      if (due > now)
        break;
      slot_prepare(&opt, slot, opt.status_percent > 0 && (int) (sent % 100) < opt.status_percent);
      slot->due = due;
      slot->busy = TRUE;
      sent++;
      curl_multi_add_handle(multi, slot->easy);
    }
    if (running == 0 && now >= end) {
      gboolean any = FALSE;

      for (int i = 0; i < opt.conns; i++)
        any |= slots[i].busy;
      if (!any)
        break;
    }
    curl_multi_perform(multi, &running);
    while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
      Slot *slot = NULL;
      long code = 0, opened = 0;
      gint64 latency;

      if (msg->msg != CURLMSG_DONE)
        continue;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &slot);
      curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
      curl_easy_getinfo(msg->easy_handle, CURLINFO_NUM_CONNECTS, &opened);
      connects += opened;
      latency = g_get_monotonic_time() - slot->due;
      g_array_append_val(latencies, latency);
      if (msg->data.result == CURLE_OK && code == 200) {
        accepted++;
      } else {
        if (errors < 5)
          fprintf(stderr, "loadgen: %s, HTTP status %ld\n", curl_easy_strerror(msg->data.result), code);
        errors++;
      }
      curl_multi_remove_handle(multi, msg->easy_handle);
      slot->busy = FALSE;
    }
    {
      /* wake for the next due request, or for I/O */
      int wait_ms = 50;

      if (opt.rate > 0 && now < end) {
        gint64 next_due = start + (gint64) ((double) sent * G_USEC_PER_SEC / opt.rate);

        wait_ms = (int) CLAMP((next_due - g_get_monotonic_time()) / 1000, 0, 50);
      } else if (opt.rate <= 0 && now < end) {
        wait_ms = running < opt.conns ? 0 : 50;
      }
      curl_multi_poll(multi, NULL, 0, wait_ms, NULL);
    }
  }
  now = g_get_monotonic_time();
  g_array_sort(latencies, compare_gint64);
  printf("sent=%" G_GUINT64_FORMAT " accepted=%" G_GUINT64_FORMAT " errors=%" G_GUINT64_FORMAT
         " seconds=%.2f accepted_per_s=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f connects=%ld body_bytes=%u\n",
         sent, accepted, errors, (double) (now - start) / G_USEC_PER_SEC,
         (double) accepted * G_USEC_PER_SEC / (double) MAX(now - start, 1), percentile_ms(latencies, 0.50),
         percentile_ms(latencies, 0.99), latencies->len > 0 ? percentile_ms(latencies, 1.0) : 0.0, connects,
         (guint) slots[0].body->len);
  for (int i = 0; i < opt.conns; i++) {
    curl_easy_cleanup(slots[i].easy);
    curl_slist_free_all(slots[i].headers);
    g_string_free(slots[i].body, TRUE);
  }
  curl_multi_cleanup(multi);
  curl_global_cleanup();
  return errors > 0 ? 1 : 0;
}
