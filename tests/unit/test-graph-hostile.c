/* test-graph-hostile.c: Graph API answers that are not what the Cloud API
 * sends (an HTML page, no JSON, truncated JSON, a 200 carrying an error, a
 * redirect, a slow drip, garbage instead of HTTP) from an in-process libsoup
 * server on loopback (test-server.h).
 *
 * For each: how wa_graph classifies it (class, reached, HTTP status), that
 * wa_graph_error_describe() gives a short readable text without the page in
 * it, and, through WaSender with a real store, that the message is not lost:
 * retried only when it provably did not reach Meta (or Meta refused it with a
 * rate limit), UNCERTAIN when it may have been accepted, and never sent
 * twice. A redirect is never followed, so the token never reaches another
 * server. */
#include <string.h>

#include "wa-graph.h"
#include "wa-json.h"
#include "wa-sender.h"
#include "test-server.h"

#define TOKEN "SECRET-TOKEN-1"
#define MARKER "PAGE-MARKER-7731"
#define DESCRIBE_MAX_CHARS 800

static const char html_page[] = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>"
                                "<h1>Bad Gateway</h1><p>" MARKER "</p><script>alert(1)</script></body></html>";

/* ---- one Graph call ------------------------------------------------------------ */

typedef struct {
  guint done;
  gboolean failed;
  WaErrorClass klass;
  gboolean reached;
  int http_status; /* the error's */
  long status;     /* the response's */
  gint64 code;
  char *describe;
  gint64 elapsed_us;
  gint64 started;
} Outcome;

static void
outcome_clear(Outcome *o)
{
  g_free(o->describe);
  memset(o, 0, sizeof *o);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Outcome, outcome_clear)

static void
outcome_cb(WaGraphReply *reply, gpointer data)
{
  Outcome *o = data;

  o->done++;
  o->elapsed_us = g_get_monotonic_time() - o->started;
  o->status = reply->response->status;
  if (reply->error != NULL) {
    o->failed = TRUE;
    o->klass = reply->error->klass;
    o->reached = reply->error->reached;
    o->http_status = reply->error->http_status;
    o->code = reply->error->code;
    o->describe = wa_graph_error_describe(reply->error);
  }
}

typedef struct {
  Server *srv;
  WaHttp *http;
  WaGraph *graph;
} Env;

static void
env_init(Env *env)
{
  g_autoptr(GError) error = NULL;

  env->srv = server_new();
  env->http = wa_http_new(wa_loop_glib(), "purple-wabiz/test");
  env->graph = wa_graph_new(env->http, env->srv->base, TOKEN, &error);
  g_assert_no_error(error);
}

static void
env_clear(Env *env)
{
  g_clear_pointer(&env->graph, wa_graph_free);
  g_clear_pointer(&env->http, wa_http_free);
  g_clear_pointer(&env->srv, server_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Env, env_clear)

/* A send through wa_graph with whatever was scripted; waits for its end. */
static void
send_one(Env *env, Outcome *o)
{
  g_autoptr(JsonNode) message = wa_message_text_new("491701234567", "hello", FALSE, "wabiz:1");

  outcome_clear(o);
  o->started = g_get_monotonic_time();
  wa_graph_send_message(env->graph, "555", message, outcome_cb, o);
  test_wait_count(o->done, 1, WAIT_S);
}

/* The text an agent reads: present, UTF-8, short, without control characters,
 * and none of the page (or anything else the test names) in it. */
static void
assert_readable(const char *text, const char *forbidden)
{
  g_assert_nonnull(text);
  g_assert_true(g_utf8_validate(text, -1, NULL));
  g_assert_cmpuint(g_utf8_strlen(text, -1), >, 10);
  g_assert_cmpuint(g_utf8_strlen(text, -1), <=, DESCRIBE_MAX_CHARS);
  for (const char *p = text; *p != '\0'; p++)
    g_assert_cmpint((guchar) *p, >=, 0x20);
  g_assert_null(strstr(text, MARKER));
  g_assert_null(g_strstr_len(text, -1, "<html"));
  g_assert_null(g_strstr_len(text, -1, "<!DOCTYPE"));
  g_assert_null(g_strstr_len(text, -1, "<script"));
  if (forbidden != NULL)
    g_assert_null(strstr(text, forbidden));
}

static void
assert_outcome(const Outcome *o, WaErrorClass klass, gboolean reached, int http_status)
{
  g_assert_cmpuint(o->done, ==, 1);
  g_assert_true(o->failed);
  g_assert_cmpstr(wa_error_class_name(o->klass), ==, wa_error_class_name(klass));
  g_assert_cmpint(o->reached, ==, reached);
  g_assert_cmpint(o->http_status, ==, http_status);
}

/* ---- answers that are not JSON ---------------------------------------------------- */

static void
test_html_200(void)
{
  g_auto(Env) env = {0};
  g_auto(Outcome) o = {0};

  env_init(&env);
  server_script(env.srv, 200, html_page)->content_type = g_strdup("text/html");
  send_one(&env, &o);
  /* 200 says the API took it; the body says nothing: it may have been sent */
  assert_outcome(&o, WA_ERROR_CLASS_RETRYABLE, TRUE, 200);
  g_assert_cmpint(o.code, ==, 0);
  assert_readable(o.describe, "Bad Gateway");
  g_assert_cmpstr(seen(env.srv, 0)->auth, ==, "Bearer " TOKEN);
}

static void
test_not_json_200(void)
{
  static const char *const bodies[] = {
    "",
    "OK",
    "null",
    "[]",
    "[{\"messages\":[{\"id\":\"wamid.X\"}]}]",
    "\"wamid.X\"",
    "42",
    "{\"messaging_product\":\"whatsapp\",\"messages\":[{\"id\":\"wamid.HBgL", /* truncated */
    "{\"messaging_product\":\"whatsapp\"",
    "\xff\xfe{}",
    "<?xml version=\"1.0\"?><error/>",
  };
  g_auto(Env) env = {0};

  env_init(&env);
  for (guint i = 0; i < G_N_ELEMENTS(bodies); i++) {
    g_auto(Outcome) o = {0};

    server_script(env.srv, 200, bodies[i]);
    send_one(&env, &o);
    g_test_message("body %u: %s", i, o.describe);
    assert_outcome(&o, WA_ERROR_CLASS_RETRYABLE, TRUE, 200);
    assert_readable(o.describe, "wamid");
  }
}

static void
test_html_error_pages(void)
{
  /* 401, 403 and 407 without the API's error come from something in front
   * of it (a proxy's login page): not a refused token, nothing reached the
   * API (see test_sender_html_401_waits) */
  static const struct {
    guint status;
    WaErrorClass klass;
    gboolean reached;
  } cases[] = {
    {400, WA_ERROR_CLASS_PERMANENT, TRUE},    {401, WA_ERROR_CLASS_NETWORK, FALSE},
    {403, WA_ERROR_CLASS_NETWORK, FALSE},     {404, WA_ERROR_CLASS_NOT_FOUND, TRUE},
    {407, WA_ERROR_CLASS_NETWORK, FALSE},     {408, WA_ERROR_CLASS_RETRYABLE, TRUE},
    {429, WA_ERROR_CLASS_RATE_LIMITED, TRUE}, {500, WA_ERROR_CLASS_RETRYABLE, TRUE},
    {502, WA_ERROR_CLASS_RETRYABLE, TRUE},    {503, WA_ERROR_CLASS_RETRYABLE, TRUE},
    {504, WA_ERROR_CLASS_RETRYABLE, TRUE},    {418, WA_ERROR_CLASS_PERMANENT, TRUE},
  };
  g_auto(Env) env = {0};
  g_autoptr(GString) big = g_string_new("<html><body>");

  env_init(&env);
  for (guint i = 0; i < 2000; i++)
    g_string_append(big, "<p>" MARKER " lorem ipsum dolor sit amet</p>");
  g_string_append(big, "</body></html>");
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_auto(Outcome) o = {0};

    server_script(env.srv, cases[i].status, i % 2 == 0 ? html_page : big->str)->content_type =
      g_strdup("text/html; charset=utf-8");
    send_one(&env, &o);
    g_test_message("HTTP %u: %s", cases[i].status, o.describe);
    assert_outcome(&o, cases[i].klass, cases[i].reached, (int) cases[i].status);
    assert_readable(o.describe, "lorem");
    if (!cases[i].reached)
      g_assert_nonnull(strstr(o.describe, "not the WhatsApp API"));
    /* it says what happened */
    {
      g_autofree char *number = g_strdup_printf("%u", cases[i].status);
      g_assert_nonnull(strstr(o.describe, number));
    }
  }
}

/* ---- a 200 that carries an error ---------------------------------------------------- */

static void
test_error_body_with_200(void)
{
  static const struct {
    const char *body;
    WaErrorClass klass;
    gint64 code;
  } cases[] = {
    {"{\"error\":{\"message\":\"(#131056) (Business Account, Consumer Account) pair rate limit hit\","
     "\"type\":\"OAuthException\",\"code\":131056,\"fbtrace_id\":\"A1\"}}",
     WA_ERROR_CLASS_RATE_LIMITED, 131056},
    {"{\"error\":{\"message\":\"(#100) Invalid parameter\",\"type\":\"OAuthException\",\"code\":100}}",
     WA_ERROR_CLASS_PERMANENT, 100},
    {"{\"error\":{\"message\":\"Error validating access token\",\"type\":\"OAuthException\",\"code\":190,"
     "\"error_subcode\":463}}",
     WA_ERROR_CLASS_AUTH, 190},
    {"{\"error\":{\"message\":\"(#131047) Re-engagement message\",\"code\":131047}}", WA_ERROR_CLASS_WINDOW_CLOSED,
     131047},
    {"{\"error\":{\"message\":\"Service temporarily unavailable\",\"code\":2,\"is_transient\":true}}",
     WA_ERROR_CLASS_RETRYABLE, 2},
  };
  g_auto(Env) env = {0};

  env_init(&env);
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_auto(Outcome) o = {0};
    g_autofree char *bracket = g_strdup_printf("[error %" G_GINT64_FORMAT "]", cases[i].code);

    server_script(env.srv, 200, cases[i].body);
    send_one(&env, &o);
    g_test_message("%s", o.describe);
    assert_outcome(&o, cases[i].klass, TRUE, 200);
    g_assert_cmpint(o.code, ==, cases[i].code);
    assert_readable(o.describe, "fbtrace");
    g_assert_nonnull(strstr(o.describe, bracket));
  }
}

/* Meta's own 401 and 403 (with its error object) still say the token was
 * refused or lacks a permission, whatever the content type. */
static void
test_api_401_403_are_auth(void)
{
  static const struct {
    guint status;
    const char *body;
    WaErrorClass klass;
  } cases[] = {
    {401,
     "{\"error\":{\"message\":\"Invalid OAuth access token - Cannot parse access token\","
     "\"type\":\"OAuthException\",\"code\":190,\"fbtrace_id\":\"A1\"}}",
     WA_ERROR_CLASS_AUTH},
    {403,
     "{\"error\":{\"message\":\"(#200) Permissions error\",\"type\":\"OAuthException\","
     "\"code\":200}}",
     WA_ERROR_CLASS_PERMISSION},
    {403,
     "{\"error\":{\"message\":\"(#10) Application does not have permission for this action\","
     "\"code\":10}}",
     WA_ERROR_CLASS_PERMISSION},
  };
  g_auto(Env) env = {0};

  env_init(&env);
  for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
    g_auto(Outcome) o = {0};

    server_script(env.srv, cases[i].status, cases[i].body)->content_type = g_strdup("text/html");
    send_one(&env, &o);
    assert_outcome(&o, cases[i].klass, TRUE, (int) cases[i].status);
  }
}

/* A 200 with a message id and an error object next to it is a success (the
 * id wins: see wa_graph_error_from_reply()); without an id the error stands. */
static void
test_message_id_and_error_200(void)
{
  g_auto(Env) env = {0};
  g_auto(Outcome) o = {0};

  env_init(&env);
  server_script(env.srv, 200,
                "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"+491701234567\","
                "\"wa_id\":\"491701234567\"}],\"messages\":[{\"id\":\"wamid.BOTH\"}],"
                "\"error\":{\"message\":\"(#131000) Something went wrong\",\"code\":131000}}");
  send_one(&env, &o);
  g_assert_cmpuint(o.done, ==, 1);
  g_assert_false(o.failed);
  server_script(env.srv, 200,
                "{\"messages\":[],\"error\":{\"message\":\"(#131000) Something went wrong\","
                "\"code\":131000}}");
  send_one(&env, &o);
  assert_outcome(&o, WA_ERROR_CLASS_RETRYABLE, TRUE, 200);
  g_assert_cmpint(o.code, ==, 131000);
}

static void
test_truncated_error_body(void)
{
  g_auto(Env) env = {0};
  g_auto(Outcome) o = {0};

  env_init(&env);
  /* the code cannot be read, so neither can "rate limited": refused for good */
  server_script(env.srv, 400, "{\"error\":{\"message\":\"(#130429) Rate limit hit\",\"code\":1304");
  send_one(&env, &o);
  assert_outcome(&o, WA_ERROR_CLASS_PERMANENT, TRUE, 400);
  g_assert_cmpint(o.code, ==, 0);
  assert_readable(o.describe, "{");
}

static void
test_long_and_odd_api_messages(void)
{
  g_auto(Env) env = {0};
  g_autoptr(GString) huge = g_string_new("{\"error\":{\"code\":987654,\"message\":\"");
  g_autoptr(GString) details = g_string_new(NULL);

  env_init(&env);
  for (guint i = 0; i < 20000; i++)
    g_string_append(huge, "Way too long. ");
  g_string_append(huge, "\",\"error_data\":{\"details\":\"");
  for (guint i = 0; i < 20000; i++)
    g_string_append(details, "d\\u00e9tail ");
  g_string_append(huge, details->str);
  g_string_append(huge, "\"}}}");
  {
    g_auto(Outcome) o = {0};

    server_script(env.srv, 400, huge->str);
    send_one(&env, &o);
    assert_outcome(&o, WA_ERROR_CLASS_PERMANENT, TRUE, 400);
    g_test_message("%s", o.describe);
    assert_readable(o.describe, NULL);
    g_assert_true(g_str_has_prefix(o.describe, "Way too long."));
    g_assert_nonnull(strstr(o.describe, "[error 987654]"));
  }
  {
    g_auto(Outcome) o = {0};

    /* control characters (an escape sequence, line breaks) in the API's text */
    server_script(env.srv, 400,
                  "{\"error\":{\"code\":987654,\"message\":\"bad\\u001b[31m red\\r\\nline\\ttab\","
                  "\"title\":\"t\"}}");
    send_one(&env, &o);
    g_test_message("%s", o.describe);
    assert_readable(o.describe, NULL);
    g_assert_true(g_str_has_prefix(o.describe, "bad"));
  }
}

/* ---- redirects ------------------------------------------------------------------------ */

static void
test_redirect_not_followed(void)
{
  static const guint codes[] = {301, 302, 303, 307, 308};
  g_auto(Env) env = {0};
  Server *other = server_new();

  env_init(&env);
  for (guint i = 0; i < G_N_ELEMENTS(codes); i++) {
    g_auto(Outcome) o = {0};
    g_autofree char *location = g_strdup_printf("%s/steal?n=%u", other->base, i);

    server_script(env.srv, codes[i], "<html><body>Moved</body></html>")->location = g_strdup(location);
    send_one(&env, &o);
    g_test_message("HTTP %u: %s", codes[i], o.describe);
    assert_outcome(&o, WA_ERROR_CLASS_PERMANENT, TRUE, (int) codes[i]);
    g_assert_cmpint(o.status, ==, codes[i]);
    assert_readable(o.describe, "steal");
  }
  /* a relative one, to the same server, is not followed either */
  {
    g_auto(Outcome) o = {0};

    server_script(env.srv, 307, "")->location = g_strdup("/v25.0/555/elsewhere");
    send_one(&env, &o);
    assert_outcome(&o, WA_ERROR_CLASS_PERMANENT, TRUE, 307);
  }
  /* the token went to the API host only, once per call; nothing reached the other server */
  g_assert_cmpuint(env.srv->seen->len, ==, G_N_ELEMENTS(codes) + 1);
  for (guint i = 0; i < env.srv->seen->len; i++) {
    g_assert_cmpstr(seen(env.srv, i)->auth, ==, "Bearer " TOKEN);
    g_assert_cmpstr(seen(env.srv, i)->path, ==, "/v25.0/555/messages");
  }
  g_assert_cmpuint(other->seen->len, ==, 0);
  server_free(other);
}

/* ---- answers that end badly ------------------------------------------------------------- */

static void
test_slow_drip(void)
{
  static const char *const drip[] = {
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n",
    "{",
    "\"",
    "m",
    "e",
    "s",
    "s",
    "a",
    "g",
    "e",
    "s",
    "\"",
    ":",
    "[",
    "{",
    "\"",
    "i",
    "d",
    "\"",
    ":",
    "\"",
    "w",
    "a",
    "m",
    "i",
    "d",
    ".",
    "D",
    "R",
    "I",
    "P",
    NULL,
  };
  g_auto(Env) env = {0};
  g_auto(Outcome) o = {0};

  env_init(&env);
  wa_http_set_timeouts(env.http, 2000, 500);
  /* one byte every 100 ms: always some progress, never the end */
  server_script_raw(env.srv, 100, drip);
  send_one(&env, &o);
  g_test_message("%s after %" G_GINT64_FORMAT " ms", o.describe, o.elapsed_us / 1000);
  assert_outcome(&o, WA_ERROR_CLASS_NETWORK, TRUE, 0);
  g_assert_cmpint(o.elapsed_us, >=, 450 * 1000);
  g_assert_cmpint(o.elapsed_us, <, 5 * G_USEC_PER_SEC);
  assert_readable(o.describe, "wamid");
}

static void
test_no_answer(void)
{
  static const char *const nothing[] = {"", "HTTP/1.1 200 OK\r\n\r\n{}", NULL};
  g_auto(Env) env = {0};
  g_auto(Outcome) o = {0};

  env_init(&env);
  wa_http_set_timeouts(env.http, 2000, 300);
  /* the request is read, the answer comes far too late */
  server_script_raw(env.srv, 8000, nothing);
  send_one(&env, &o);
  assert_outcome(&o, WA_ERROR_CLASS_NETWORK, TRUE, 0);
  g_assert_cmpint(o.elapsed_us, <, 5 * G_USEC_PER_SEC);
  assert_readable(o.describe, NULL);
}

static void
test_truncated_transfer(void)
{
  static const char *const cut[] = {
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
    "{\"messaging_product\":\"whatsapp\",\"messages\":[{\"id\":\"wamid.CUT",
    NULL,
  };
  static const char *const cut_chunked[] = {
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    "40\r\n{\"messaging_product\":\"whatsapp\",\"messages\":[{\"id\":\"wamid.CUT",
    NULL,
  };
  g_auto(Env) env = {0};

  env_init(&env);
  for (guint i = 0; i < 2; i++) {
    g_auto(Outcome) o = {0};

    server_script_raw(env.srv, 10, i == 0 ? cut : cut_chunked);
    send_one(&env, &o);
    g_test_message("%s", o.describe);
    assert_outcome(&o, WA_ERROR_CLASS_NETWORK, TRUE, 0);
    assert_readable(o.describe, "wamid");
  }
}

static void
test_garbage_instead_of_http(void)
{
  static const char *const ssh[] = {"SSH-2.0-OpenSSH_9.2p1\r\n", NULL};
  static const char *const html09[] = {"<html><body>" MARKER "</body></html>\r\n", NULL};
  static const char *const bad_status[] = {"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\n{}", NULL};
  static const char *const bad_gzip[] = {
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
    "Content-Length: 16\r\n\r\nnot gzip at all!",
    NULL,
  };
  const char *const *answers[] = {ssh, html09, bad_status, bad_gzip};
  g_auto(Env) env = {0};

  env_init(&env);
  for (guint i = 0; i < G_N_ELEMENTS(answers); i++) {
    g_auto(Outcome) o = {0};

    server_script_raw(env.srv, 10, answers[i]);
    send_one(&env, &o);
    g_test_message("answer %u: %s", i, o.describe);
    /* the request went out: whatever came back, it may have been taken */
    assert_outcome(&o, WA_ERROR_CLASS_NETWORK, TRUE, 0);
    assert_readable(o.describe, "OpenSSH");
  }
}

static void
test_answer_too_large(void)
{
  g_auto(Env) env = {0};
  g_auto(Outcome) o = {0};
  g_autoptr(GString) body = g_string_new("{\"messages\":[{\"id\":\"wamid.BIG\"}],\"pad\":\"");

  env_init(&env);
  wa_http_set_max_body(env.http, 4096);
  for (guint i = 0; i < 1000; i++)
    g_string_append(body, "0123456789");
  g_string_append(body, "\"}");
  server_script(env.srv, 200, body->str);
  send_one(&env, &o);
  assert_outcome(&o, WA_ERROR_CLASS_NETWORK, TRUE, 0);
  assert_readable(o.describe, "0123456789");
}

/* ---- the outbox: nothing lost, nothing twice -------------------------------------------- */

typedef SenderFixture Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
  sender_fixture_setup(f, TOKEN, 50);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
  sender_fixture_teardown(f);
}

static void
enqueue(Fixture *f, const char *body)
{
  wa_sender_enqueue_text(f->sender, test_customer(&f->ts, "491"), "491", body, FALSE, NULL, NULL);
}

/* How many requests carried the message whose text is @text. */
static guint
times_sent(Server *srv, const char *text)
{
  g_autofree char *needle = g_strdup_printf("\"body\":\"%s\"", text);
  guint n = 0;

  for (guint i = 0; i < srv->seen->len; i++)
    if (strstr(seen(srv, i)->body, needle) != NULL)
      n++;
  return n;
}

/* "first" meets the scripted answer, "second" a good one after it: the
 * outcome of "first" is @expected in the store, and each went out as often
 * as @first_times / once. */
static void
run_pair(Fixture *f, WaStoreOutboxState expected, guint first_times)
{
  enqueue(f, "first");
  enqueue(f, "second");
  test_wait_count(f->log.sent, expected == WA_STORE_OUTBOX_SENT ? 2 : 1, WAIT_S);
  store_settle(&f->ts);
  g_assert_cmpint(test_state_of(&f->ts, "first"), ==, expected);
  g_assert_cmpint(test_state_of(&f->ts, "second"), ==, WA_STORE_OUTBOX_SENT);
  g_assert_cmpuint(times_sent(f->srv, "first"), ==, first_times);
  g_assert_cmpuint(times_sent(f->srv, "second"), ==, 1);
  g_assert_cmpuint(wa_sender_total_waiting(f->sender), ==, 0);
  for (guint i = 0; i < f->srv->seen->len; i++)
    g_assert_cmpstr(seen(f->srv, i)->auth, ==, "Bearer " TOKEN);
}

static void
test_sender_html_200_uncertain(Fixture *f, gconstpointer data)
{
  server_script(f->srv, 200, html_page)->content_type = g_strdup("text/html");
  run_pair(f, WA_STORE_OUTBOX_UNCERTAIN, 1);
  g_assert_cmpstr(f->log.log->str, ==, "uncertain:491 sent:491 ");
}

static void
test_sender_truncated_200_uncertain(Fixture *f, gconstpointer data)
{
  server_script(f->srv, 200, "{\"messaging_product\":\"whatsapp\",\"messages\":[{\"id\":\"wamid.HBg");
  run_pair(f, WA_STORE_OUTBOX_UNCERTAIN, 1);
  g_assert_cmpuint(f->log.uncertain, ==, 1);
}

static void
test_sender_no_message_id_uncertain(Fixture *f, gconstpointer data)
{
  server_script(f->srv, 200, "{\"messaging_product\":\"whatsapp\",\"messages\":[{\"id\":12345}]}");
  run_pair(f, WA_STORE_OUTBOX_UNCERTAIN, 1);
}

static void
test_sender_html_502_uncertain(Fixture *f, gconstpointer data)
{
  /* a gateway error may come after the API took the message */
  server_script(f->srv, 502, html_page)->content_type = g_strdup("text/html");
  run_pair(f, WA_STORE_OUTBOX_UNCERTAIN, 1);
}

static void
test_sender_error_200_rate_limited_retried(Fixture *f, gconstpointer data)
{
  /* Meta refused it in so many words: sending it again is no duplicate */
  server_script(f->srv, 200, "{\"error\":{\"message\":\"(#131056) pair rate limit hit\",\"code\":131056}}");
  run_pair(f, WA_STORE_OUTBOX_SENT, 2);
  g_assert_cmpuint(f->log.waiting, ==, 1);
  g_assert_cmpstr(f->log.log->str, ==, "waiting:2 sent:491 sent:491 ");
}

static void
test_sender_error_200_refused(Fixture *f, gconstpointer data)
{
  server_script(f->srv, 200, "{\"error\":{\"message\":\"(#100) Invalid parameter\",\"code\":100}}");
  run_pair(f, WA_STORE_OUTBOX_FAILED, 1);
  g_assert_cmpstr(f->log.log->str, ==, "failed:100 sent:491 ");
}

/* A login page from a proxy (401 without the API's error), or a bare 403:
 * the token was not refused, nothing reached the API; the outbox waits (no
 * "auth", the account stays connected) and sends it once the way is clear,
 * once. */
static void
test_sender_bare_refusal_waits(Fixture *f, gconstpointer data)
{
  guint status = GPOINTER_TO_UINT(data);

  server_script(f->srv, status, status == 401 ? html_page : "Forbidden")->content_type =
    g_strdup(status == 401 ? "text/html" : "text/plain");
  run_pair(f, WA_STORE_OUTBOX_SENT, 2);
  g_assert_cmpstr(f->log.log->str, ==, "waiting:2 sent:491 sent:491 ");
}

/* Meta took the message (its id came back) even though an error came along:
 * sent under that id, not retried, not failed. */
static void
test_sender_message_id_and_error_200_sent(Fixture *f, gconstpointer data)
{
  server_script(f->srv, 200,
                "{\"messages\":[{\"id\":\"wamid.BOTH\"}],"
                "\"error\":{\"message\":\"(#131000) Something went wrong\",\"code\":131000}}");
  run_pair(f, WA_STORE_OUTBOX_SENT, 1);
  g_assert_cmpstr(f->log.log->str, ==, "sent:491 sent:491 ");
  {
    g_autoptr(GPtrArray) all = test_outbox(&f->ts, ALL_STATES);
    const WaStoreOutbox *first = g_ptr_array_index(all, 0);

    g_assert_cmpstr(first->body, ==, "first");
    g_assert_cmpstr(first->wamid, ==, "wamid.BOTH");
  }
}

static void
test_sender_redirect_refused(Fixture *f, gconstpointer data)
{
  Server *other = server_new();
  g_autofree char *location = g_strdup_printf("%s/555/messages", other->base);

  server_script(f->srv, 307, "")->location = g_strdup(location);
  run_pair(f, WA_STORE_OUTBOX_FAILED, 1);
  g_assert_cmpuint(other->seen->len, ==, 0);
  server_free(other);
}

static void
test_sender_slow_drip_uncertain(Fixture *f, gconstpointer data)
{
  static const char *const drip[] = {
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
    "{",
    "\"",
    "m",
    "e",
    "s",
    "s",
    "a",
    "g",
    "e",
    "s",
    "\"",
    ":",
    "[",
    "{",
    "\"",
    "i",
    "d",
    NULL,
  };

  wa_http_set_timeouts(f->http, 2000, 500);
  server_script_raw(f->srv, 100, drip);
  run_pair(f, WA_STORE_OUTBOX_UNCERTAIN, 1);
}

static void
test_sender_truncated_transfer_uncertain(Fixture *f, gconstpointer data)
{
  static const char *const cut[] = {
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 300\r\n\r\n{\"messages\":[{\"id\":\"wamid.",
    NULL,
  };

  server_script_raw(f->srv, 10, cut);
  run_pair(f, WA_STORE_OUTBOX_UNCERTAIN, 1);
}

static void
test_sender_garbage_uncertain(Fixture *f, gconstpointer data)
{
  static const char *const garbage[] = {"<html><body>" MARKER "</body></html>\r\n", NULL};

  /* the request was written before the garbage came back: not provably unsent */
  server_script_raw(f->srv, 10, garbage);
  run_pair(f, WA_STORE_OUTBOX_UNCERTAIN, 1);
}

/* Connection refused: provably never sent, so it waits and goes out once the
 * API listens again, exactly once. */
static void
test_sender_refused_then_sent_once(void)
{
  guint16 port;
  GSocket *sock = refusing_socket(&port);
  g_autofree char *base = g_strdup_printf("http://127.0.0.1:%u/v25.0", port);
  WaHttp *http = wa_http_new(wa_loop_glib(), "purple-wabiz/test");
  WaGraph *graph = wa_graph_new(http, base, TOKEN, NULL);
  WaSenderConfig config = {.backoff_base_ms = 10, .backoff_max_ms = 50};
  SenderLog log = {0};
  TestStore ts = {0};
  Server *srv = g_new0(Server, 1);
  g_autoptr(GError) error = NULL;
  WaSender *sender;

  log.log = g_string_new(NULL);
  test_store_open(&ts);
  sender = wa_sender_new(graph, ts.store, wa_loop_glib(), "555", &events, &log);
  wa_sender_set_config(sender, &config);
  wa_sender_enqueue_text(sender, test_customer(&ts, "491"), "491", "first", FALSE, NULL, NULL);
  test_wait_count(log.waiting, 2, WAIT_S);
  g_assert_cmpuint(log.events, ==, 0);
  /* the API comes back on the same port */
  srv->server = soup_server_new(NULL, NULL);
  srv->seen = g_ptr_array_new_with_free_func(seen_free);
  srv->base = g_strdup(base);
  g_queue_init(&srv->script);
  soup_server_add_handler(srv->server, NULL, handler, srv, NULL);
  g_assert_true(g_socket_listen(sock, &error));
  g_assert_no_error(error);
  g_assert_true(soup_server_listen_socket(srv->server, sock, 0, &error));
  g_assert_no_error(error);
  test_wait_count(log.sent, 1, WAIT_S);
  store_settle(&ts);
  g_assert_cmpuint(srv->seen->len, ==, 1);
  g_assert_cmpint(test_state_of(&ts, "first"), ==, WA_STORE_OUTBOX_SENT);
  g_assert_cmpuint(log.uncertain + log.failed, ==, 0);

  wa_sender_detach_store(sender, NULL, NULL);
  test_store_free(&ts);
  wa_sender_free(sender);
  wa_graph_free(graph);
  wa_http_free(http);
  server_free(srv);
  g_object_unref(sock);
  g_string_free(log.log, TRUE);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/graph-hostile/html-200", test_html_200);
  g_test_add_func("/graph-hostile/not-json-200", test_not_json_200);
  g_test_add_func("/graph-hostile/html-error-pages", test_html_error_pages);
  g_test_add_func("/graph-hostile/error-body-with-200", test_error_body_with_200);
  g_test_add_func("/graph-hostile/api-401-403-are-auth", test_api_401_403_are_auth);
  g_test_add_func("/graph-hostile/message-id-and-error-200", test_message_id_and_error_200);
  g_test_add_func("/graph-hostile/truncated-error-body", test_truncated_error_body);
  g_test_add_func("/graph-hostile/long-and-odd-api-messages", test_long_and_odd_api_messages);
  g_test_add_func("/graph-hostile/redirect-not-followed", test_redirect_not_followed);
  g_test_add_func("/graph-hostile/slow-drip", test_slow_drip);
  g_test_add_func("/graph-hostile/no-answer", test_no_answer);
  g_test_add_func("/graph-hostile/truncated-transfer", test_truncated_transfer);
  g_test_add_func("/graph-hostile/garbage-instead-of-http", test_garbage_instead_of_http);
  g_test_add_func("/graph-hostile/answer-too-large", test_answer_too_large);
  g_test_add_func("/sender-hostile/refused-then-sent-once", test_sender_refused_then_sent_once);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD("/sender-hostile/html-200-uncertain", test_sender_html_200_uncertain);
  ADD("/sender-hostile/truncated-200-uncertain", test_sender_truncated_200_uncertain);
  ADD("/sender-hostile/no-message-id-uncertain", test_sender_no_message_id_uncertain);
  ADD("/sender-hostile/html-502-uncertain", test_sender_html_502_uncertain);
  ADD("/sender-hostile/error-200-rate-limited-retried", test_sender_error_200_rate_limited_retried);
  ADD("/sender-hostile/error-200-refused", test_sender_error_200_refused);
  g_test_add("/sender-hostile/html-401-waits", Fixture, GUINT_TO_POINTER(401), fixture_setup,
             test_sender_bare_refusal_waits, fixture_teardown);
  g_test_add("/sender-hostile/bare-403-waits", Fixture, GUINT_TO_POINTER(403), fixture_setup,
             test_sender_bare_refusal_waits, fixture_teardown);
  ADD("/sender-hostile/message-id-and-error-200-sent", test_sender_message_id_and_error_200_sent);
  ADD("/sender-hostile/redirect-refused", test_sender_redirect_refused);
  ADD("/sender-hostile/slow-drip-uncertain", test_sender_slow_drip_uncertain);
  ADD("/sender-hostile/truncated-transfer-uncertain", test_sender_truncated_transfer_uncertain);
  ADD("/sender-hostile/garbage-uncertain", test_sender_garbage_uncertain);
  return g_test_run();
}
