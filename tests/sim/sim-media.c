/* sim-media.c: inbound media in the simulator: a registry of media (id ->
 * bytes, or bytes made up on the fly from a seed so that a 100 MiB file is
 * never held), the lookup GET /{version}/{media-id} (url, mime_type, sha256
 * as hex, file_size, as Meta answers), and the download route GET
 * /_media/{id}?exp=..&sig=.. on the host the lookup came to: an expiring
 * (5 minutes of the sim clock) signed URL that also needs the Bearer token.
 * Faults per media: lookups or downloads failing with 500 for the next N
 * requests, downloads answering 404, a lookup that gives another digest,
 * slow bodies; media older than 7 days are unknown, as Meta's are.
 *
 * Control: POST /_sim/media creates (or, with "id", changes) one; GET
 * /_sim/media lists them with their request counts.
 *
 * Must not: link plugin/core (its own hashing and JSON), hold a generated
 * body in memory. */
#include "sim.h"

#include <string.h>

#include "sim-json.h"

#define MEDIA_URL_TTL_S (5 * 60)
#define MEDIA_ID_TTL_S (7 * 86400)
#define GEN_CHUNK (64 * 1024)
#define MAX_GENERATED (G_GINT64_CONSTANT (1) << 31)

typedef struct
{
  char *id;
  char *mime_type;
  GBytes *bytes; /* or NULL: generated from seed */
  gint64 size;
  guint32 seed;
  char *sha256_hex;
  char *sha256_b64;
  gint64 created; /* sim clock */
  gboolean wrong_digest;
  gint64 lookup_fail_next;
  gint64 download_fail_next;
  gboolean gone;
  gboolean foreign_url; /* the lookup's URL names "localhost" instead of the host asked */
  guint chunk_delay_ms;
  gint64 lookups;
  gint64 downloads;
} SimMedia;

static GHashTable *registry; /* id -> SimMedia* */
static char *url_secret;
static guint64 next_id = 4490000000000001;

static void
sim_media_free (SimMedia *m)
{
  g_free (m->id);
  g_free (m->mime_type);
  if (m->bytes != NULL)
    g_bytes_unref (m->bytes);
  g_free (m->sha256_hex);
  g_free (m->sha256_b64);
  g_free (m);
}

static void
ensure_registry (void)
{
  if (registry == NULL)
    {
      registry
          = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify)sim_media_free);
      url_secret = sim_random_token (32);
    }
}

void
sim_media_reset (void)
{
  if (registry != NULL)
    g_hash_table_remove_all (registry);
}

/* Generated content: byte i of a media made from @seed. */
static void
generate (guint32 seed, gint64 offset, guint8 *buf, gsize len)
{
  for (gsize i = 0; i < len; i++)
    {
      guint64 x = (guint64)(offset + (gint64)i) * 2654435761u + seed;

      buf[i] = (guint8)((x >> 11) ^ (x >> 3));
    }
}

static void
compute_digest (SimMedia *m)
{
  g_autoptr (GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
  guint8 digest[32];
  gsize digest_len = sizeof digest;

  if (m->bytes != NULL)
    g_checksum_update (sum, g_bytes_get_data (m->bytes, NULL), g_bytes_get_size (m->bytes));
  else
    {
      g_autofree guint8 *buf = g_malloc (GEN_CHUNK);

      for (gint64 off = 0; off < m->size; off += GEN_CHUNK)
        {
          gsize n = (gsize)MIN ((gint64)GEN_CHUNK, m->size - off);

          generate (m->seed, off, buf, n);
          g_checksum_update (sum, buf, n);
        }
    }
  g_checksum_get_digest (sum, digest, &digest_len);
  g_free (m->sha256_hex);
  g_free (m->sha256_b64);
  m->sha256_hex = g_strdup (g_checksum_get_string (sum));
  m->sha256_b64 = g_base64_encode (digest, sizeof digest);
}

static char *
url_signature (const char *id, gint64 exp)
{
  g_autofree char *text = g_strdup_printf ("%s|%" G_GINT64_FORMAT, id, exp);

  return g_compute_hmac_for_string (G_CHECKSUM_SHA256, (const guchar *)url_secret,
                                    strlen (url_secret), text, -1);
}

static SimMedia *
find_live (Sim *sim, const char *id)
{
  SimMedia *m;

  ensure_registry ();
  m = g_hash_table_lookup (registry, id);
  if (m == NULL || sim_clock_now (&sim->clock) - m->created > MEDIA_ID_TTL_S)
    return NULL;
  return m;
}

/* ---- the lookup (sim-graph.c routes it here) ---- */

SimMediaLookup
sim_media_lookup (Sim *sim, const char *id, SoupServerMessage *msg, JsonBuilder **answer)
{
  SimMedia *m = find_live (sim, id);
  GUri *uri = soup_server_message_get_uri (msg);
  g_autofree char *sig = NULL;
  g_autofree char *url = NULL;
  g_autofree char *size = NULL;
  const char *host;
  gint64 exp;

  if (m == NULL)
    return SIM_MEDIA_UNKNOWN;
  m->lookups++;
  if (m->lookup_fail_next > 0)
    {
      m->lookup_fail_next--;
      return SIM_MEDIA_LOOKUP_FAULT;
    }
  exp = sim_clock_now (&sim->clock) + MEDIA_URL_TTL_S;
  sig = url_signature (m->id, exp);
  host = m->foreign_url ? "localhost" : g_uri_get_host (uri);
  url = g_strdup_printf ("%s://%s%s%s:%d/_media/%s?exp=%" G_GINT64_FORMAT "&sig=%s",
                         g_uri_get_scheme (uri), strchr (host, ':') != NULL ? "[" : "", host,
                         strchr (host, ':') != NULL ? "]" : "", g_uri_get_port (uri), m->id, exp,
                         sig);
  size = g_strdup_printf ("%" G_GINT64_FORMAT, m->size);
  *answer = json_builder_new ();
  json_builder_begin_object (*answer);
  json_builder_set_member_name (*answer, "messaging_product");
  json_builder_add_string_value (*answer, "whatsapp");
  json_builder_set_member_name (*answer, "url");
  json_builder_add_string_value (*answer, url);
  json_builder_set_member_name (*answer, "mime_type");
  json_builder_add_string_value (*answer, m->mime_type);
  json_builder_set_member_name (*answer, "sha256");
  json_builder_add_string_value (
      *answer, m->wrong_digest ? "0000000000000000000000000000000000000000000000000000000000000000"
                               : m->sha256_hex);
  json_builder_set_member_name (*answer, "file_size");
  json_builder_add_string_value (*answer, size);
  json_builder_set_member_name (*answer, "id");
  json_builder_add_string_value (*answer, m->id);
  json_builder_end_object (*answer);
  return SIM_MEDIA_FOUND;
}

/* ---- the download ---- */

typedef struct
{
  char *id; /* looked up again for each piece (a reset may remove it) */
  SoupServerMessage *msg;
  gint64 offset;
  guint timer;
  gulong wrote_handler;
  gulong finished_handler;
  gboolean paused;
} Stream;

static void
stream_free (Stream *s)
{
  if (s->timer != 0)
    g_source_remove (s->timer);
  g_signal_handler_disconnect (s->msg, s->wrote_handler);
  g_signal_handler_disconnect (s->msg, s->finished_handler);
  g_object_unref (s->msg);
  g_free (s->id);
  g_free (s);
}

static void
append_next (Stream *s)
{
  SimMedia *m = g_hash_table_lookup (registry, s->id);
  SoupMessageBody *body = soup_server_message_get_response_body (s->msg);
  gsize n;
  guint8 *buf;

  if (m == NULL || s->offset >= m->size)
    {
      soup_message_body_complete (body);
      return;
    }
  n = (gsize)MIN ((gint64)GEN_CHUNK, m->size - s->offset);
  buf = g_malloc (n);
  generate (m->seed, s->offset, buf, n);
  s->offset += (gint64)n;
  soup_message_body_append_take (body, buf, n);
  if (s->offset >= m->size)
    soup_message_body_complete (body);
}

static gboolean
delayed_append (gpointer data)
{
  Stream *s = data;

  s->timer = 0;
  append_next (s);
  if (s->paused)
    {
      s->paused = FALSE;
      soup_server_message_unpause (s->msg);
    }
  return G_SOURCE_REMOVE;
}

static void
on_wrote_chunk (SoupServerMessage *msg, guint chunk_size, gpointer data)
{
  Stream *s = data;
  SimMedia *m = g_hash_table_lookup (registry, s->id);

  if (m != NULL && s->offset >= m->size)
    return;
  if (m != NULL && m->chunk_delay_ms > 0)
    {
      if (s->timer == 0)
        {
          s->paused = TRUE;
          soup_server_message_pause (msg);
          s->timer = g_timeout_add (m->chunk_delay_ms, delayed_append, s);
        }
      return;
    }
  append_next (s);
}

static void
on_finished (SoupServerMessage *msg, gpointer data)
{
  stream_free (data);
}

static void
download_error (SoupServerMessage *msg, guint status, const char *text)
{
  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_COPY, text, strlen (text));
}

void
sim_media_download (Sim *sim, SoupServerMessage *msg, const char *path)
{
  const char *id = path + strlen ("/_media/");
  GUri *uri = soup_server_message_get_uri (msg);
  const char *auth = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                   "Authorization");
  g_autoptr (GHashTable) query = NULL;
  g_autofree char *want = NULL;
  const char *exp_text, *sig;
  SoupMessageHeaders *headers;
  SimMedia *m;
  gint64 exp;

  if (g_strcmp0 (soup_server_message_get_method (msg), "GET") != 0)
    {
      download_error (msg, 405, "GET only");
      return;
    }
  if (auth == NULL || g_ascii_strncasecmp (auth, "Bearer ", 7) != 0
      || g_strcmp0 (auth + 7, sim->token) != 0)
    {
      download_error (msg, 401, "a media download needs the access token");
      return;
    }
  query = g_uri_get_query (uri) != NULL
              ? g_uri_parse_params (g_uri_get_query (uri), -1, "&", G_URI_PARAMS_NONE, NULL)
              : NULL;
  exp_text = query != NULL ? g_hash_table_lookup (query, "exp") : NULL;
  sig = query != NULL ? g_hash_table_lookup (query, "sig") : NULL;
  exp = exp_text != NULL ? g_ascii_strtoll (exp_text, NULL, 10) : 0;
  want = url_signature (id, exp);
  if (sig == NULL || g_strcmp0 (sig, want) != 0)
    {
      download_error (msg, 403, "URL signature mismatch");
      return;
    }
  if (sim_clock_now (&sim->clock) > exp)
    {
      download_error (msg, 403, "URL signature expired");
      return;
    }
  m = find_live (sim, id);
  if (m == NULL)
    {
      download_error (msg, 404, "not found");
      return;
    }
  m->downloads++;
  if (m->gone)
    {
      download_error (msg, 404, "not found");
      return;
    }
  if (m->download_fail_next > 0)
    {
      m->download_fail_next--;
      download_error (msg, 500, "internal error");
      return;
    }
  soup_server_message_set_status (msg, 200, NULL);
  headers = soup_server_message_get_response_headers (msg);
  soup_message_headers_set_content_type (headers, m->mime_type, NULL);
  if (m->bytes != NULL)
    {
      soup_message_body_append_bytes (soup_server_message_get_response_body (msg), m->bytes);
      return;
    }
  {
    /* generated: one piece at a time, the next when the last was written */
    Stream *s = g_new0 (Stream, 1);

    soup_message_headers_set_content_length (headers, m->size);
    soup_message_body_set_accumulate (soup_server_message_get_response_body (msg), FALSE);
    s->id = g_strdup (m->id);
    s->msg = g_object_ref (msg);
    s->wrote_handler = g_signal_connect (msg, "wrote-chunk", G_CALLBACK (on_wrote_chunk), s);
    s->finished_handler = g_signal_connect (msg, "finished", G_CALLBACK (on_finished), s);
    append_next (s);
  }
}

/* ---- control ---- */

static void
media_json (JsonBuilder *b, SimMedia *m)
{
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "id");
  json_builder_add_string_value (b, m->id);
  json_builder_set_member_name (b, "mime_type");
  json_builder_add_string_value (b, m->mime_type);
  json_builder_set_member_name (b, "size");
  json_builder_add_int_value (b, m->size);
  json_builder_set_member_name (b, "sha256");
  json_builder_add_string_value (b, m->sha256_b64);
  json_builder_set_member_name (b, "sha256_hex");
  json_builder_add_string_value (b, m->sha256_hex);
  json_builder_set_member_name (b, "lookups");
  json_builder_add_int_value (b, m->lookups);
  json_builder_set_member_name (b, "downloads");
  json_builder_add_int_value (b, m->downloads);
  json_builder_end_object (b);
}

static void
answer (SoupServerMessage *msg, guint status, JsonBuilder *b)
{
  g_autofree char *body = sim_json_serialize_builder (b);

  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "application/json", SOUP_MEMORY_COPY, body, strlen (body));
}

static void
answer_problem (SoupServerMessage *msg, const char *text)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();

  json_builder_begin_object (b);
  json_builder_set_member_name (b, "error");
  json_builder_add_string_value (b, text);
  json_builder_end_object (b);
  answer (msg, 400, b);
}

/* Members: id (change an existing one), mime_type, content_base64 or size
 * (+ seed: generated bytes), age_s (made that long ago), wrong_digest,
 * lookup_fail_next, download_fail_next, gone, foreign_url, chunk_delay_ms (a pause
 * before each 64 KiB piece of a generated body). */
static void
post_media (Sim *sim, SoupServerMessage *msg, JsonObject *req)
{
  const char *id = sim_json_string (req, "id");
  const char *content = sim_json_string (req, "content_base64");
  const char *mime = sim_json_string (req, "mime_type");
  g_autoptr (JsonBuilder) b = json_builder_new ();
  gint64 value;
  gboolean flag;
  SimMedia *m;

  ensure_registry ();
  if (id != NULL)
    {
      m = g_hash_table_lookup (registry, id);
      if (m == NULL)
        {
          answer_problem (msg, "no such media");
          return;
        }
    }
  else
    {
      m = g_new0 (SimMedia, 1);
      m->id = g_strdup_printf ("%" G_GUINT64_FORMAT, next_id++);
      m->mime_type = g_strdup ("image/jpeg");
      m->created = sim_clock_now (&sim->clock);
      if (content != NULL)
        {
          gsize len = 0;
          guchar *raw = g_base64_decode (content, &len);

          m->bytes = g_bytes_new_take (raw, len);
          m->size = (gint64)len;
        }
      else if (sim_json_int (req, "size", &value) && value >= 0 && value <= MAX_GENERATED)
        {
          m->size = value;
          m->seed = sim_json_int (req, "seed", &value) ? (guint32)value : 7;
        }
      else
        {
          sim_media_free (m);
          answer_problem (msg, "a new media needs content_base64 or a size up to 2 GiB");
          return;
        }
      compute_digest (m);
      g_hash_table_insert (registry, m->id, m);
    }
  if (mime != NULL)
    {
      g_free (m->mime_type);
      m->mime_type = g_strdup (mime);
    }
  if (sim_json_int (req, "age_s", &value))
    m->created = sim_clock_now (&sim->clock) - value;
  if (sim_json_bool (req, "wrong_digest", &flag))
    m->wrong_digest = flag;
  if (sim_json_bool (req, "gone", &flag))
    m->gone = flag;
  if (sim_json_bool (req, "foreign_url", &flag))
    m->foreign_url = flag;
  if (sim_json_int (req, "lookup_fail_next", &value))
    m->lookup_fail_next = value;
  if (sim_json_int (req, "download_fail_next", &value))
    m->download_fail_next = value;
  if (sim_json_int (req, "chunk_delay_ms", &value))
    m->chunk_delay_ms = (guint)CLAMP (value, 0, 10000);
  media_json (b, m);
  answer (msg, 200, b);
}

static void
list_media (SoupServerMessage *msg)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  GHashTableIter iter;
  gpointer value;

  ensure_registry ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "media");
  json_builder_begin_array (b);
  g_hash_table_iter_init (&iter, registry);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    media_json (b, value);
  json_builder_end_array (b);
  json_builder_end_object (b);
  answer (msg, 200, b);
}

void
sim_media_control (Sim *sim, SoupServerMessage *msg, const char *method, JsonObject *req)
{
  if (g_strcmp0 (method, "POST") == 0 && req != NULL)
    post_media (sim, msg, req);
  else if (g_strcmp0 (method, "GET") == 0)
    list_media (msg);
  else
    answer_problem (msg, "GET or POST /_sim/media");
}
