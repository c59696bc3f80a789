/* sim.h: the shared state of wabiz-sim, the Cloud API simulator that tests run
 * in place of graph.facebook.com. It never links plugin/core: its JSON, phone
 * and signature handling are its own, so one bug cannot cancel itself out. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "sim-clock.h"

typedef struct _SimWebhook SimWebhook;

/* A phone number of the business account: the first from --pnid and
 * --display-number, more from --number (all share the WABA, its token, its
 * templates and its portfolio; windows, rate limits and webhooks' metadata
 * are each number's own). */
typedef struct
{
  char *pnid;
  char *display_number;
} SimNumber;

/* Knobs a test may change through POST /_sim/config; reset restores them. */
typedef struct
{
  double throughput_mps;         /* per-number token bucket, messages per second */
  double pair_burst;             /* per (number, customer) bucket capacity */
  double pair_refill_s;          /* seconds per refilled pair token */
  GPtrArray *auto_statuses;      /* char*: statuses emitted after an accepted send */
  guint status_delay_ms;         /* pause before each automatic status */
  GHashTable *wa_id_rewrite;     /* normalised input digits -> wa_id */
  GHashTable *templates_missing; /* template name -> unused (a set) */
  GHashTable *templates;         /* "name" or "name:lang" -> category; empty = accept all */
  GHashTable *expired_tokens;    /* token -> unused (a set) */
  GHashTable *groups;            /* group ids the number is in (a set): sends to others fail */

  /* GET calls per hour before GET message_templates answers 80008; or refused at once */
  gint64 management_calls_per_hour;
  gboolean management_exhausted;
  /* marketing: 131063 for marketing templates on /messages; customers (wa_id
   * sets) whose marketing templates fail with 131050 / 131049 */
  gboolean marketing_disabled;
  GHashTable *marketing_opted_out;
  GHashTable *marketing_limited;
  /* sends answer 131057; unique customers reached by templates outside a
   * window in 24 h (0 = unlimited; over it 131048); delay of send answers */
  gboolean maintenance;
  gint64 portfolio_limit;
  guint latency_ms;
} SimKnobs;

/* One accepted send, kept for status webhooks and the /_sim/sent log. */
typedef struct
{
  char *wamid;
  char *pnid;
  char *recipient_id; /* wa_id, or NULL for a send to a BSUID */
  char *user_id;      /* BSUID when sent with "recipient" */
  char *type;
  char *biz_opaque;   /* biz_opaque_callback_data, or NULL */
  char *category;     /* pricing category */
  char *pricing_type; /* "regular" | "free_customer_service" */
  gboolean priced_dr; /* pricing already sent on delivered/read */
  gboolean failed;    /* a failed status was emitted */
} SimSent;

/* A fault rule appended by POST /_sim/fault. */
typedef struct
{
  char *path;                    /* substring of the request path, or NULL */
  char *method;                  /* exact method, or NULL */
  guint status;                  /* HTTP status to answer, 0 = answer normally */
  gint64 code;                   /* Graph error code for an envelope body, 0 = none */
  gint64 subcode;                /* error_subcode override, -1 = the code's usual one */
  char *message;                 /* error.message override, or NULL */
  char *details;                 /* error_data.details override, or NULL */
  char *body;                    /* raw body, or NULL */
  char *content_type;            /* for body */
  gint64 count;                  /* remaining matches; -1 = until cleared */
  gboolean reset;                /* close the connection without an answer */
  guint delay_ms;                /* answer after a delay */
  gboolean process;              /* run the request first, then apply status/reset */
  gboolean process_before_delay; /* with delay_ms: run it on arrival, answer later */
  double probability;            /* chance that a matching request triggers it (1 = always) */
  gint64 seed;                   /* seeds rand */
  GRand *rand;                   /* the rule's own draws (NULL when probability is 1) */
  guint duration_ms;             /* 0, or the rule's lifetime from when it was added */
  gint64 until_us;               /* monotonic end of that lifetime, 0 = none */
} SimFault;

typedef struct
{
  /* identity, from the command line; fixed for the process */
  char *bind;
  char *pnid;
  char *display_number;
  char *verified_name;
  char *waba_id;
  char *token;
  char *token_noperm;
  char *app_secret;
  char *webhook_url;
  char *base_url;
  GPtrArray *numbers; /* SimNumber*: [0] is pnid / display_number */

  SimClock clock;
  SimKnobs knobs;
  GPtrArray *faults; /* SimFault* */

  /* logs, each a JsonNode object with a "seq" member */
  GPtrArray *sent_log;
  GPtrArray *reads_log;
  GPtrArray *requests_log;
  /* gint64: the time of each logged management call (a header counts them
   * on every answer; the log itself grows with every send) */
  GArray *management_times;
  gint64 sent_seq;
  gint64 reads_seq;
  gint64 requests_seq;

  GHashTable *sent;         /* wamid -> SimSent* */
  GHashTable *inbound;      /* inbound wamid -> gint64* (its unix time) */
  GHashTable *windows;      /* "pnid:customer" (wa_id or BSUID) -> gint64* newest inbound */
  GHashTable *buckets;      /* key -> SimBucket* */
  GHashTable *portfolio;    /* customer -> gint64* when a template outside a window reached them */
  GPtrArray *status_timers; /* pending automatic statuses (SimStatusTimer*) */
  GPtrArray *paused;        /* Graph requests held by a fault (sim-graph.c owns them) */

  /* the smallest time in portfolio (G_MAXINT64: none): nothing expires before it */
  gint64 portfolio_oldest;

  /* the Graph port: a second listener whose connections a "refuse" fault
   * refuses (sim-main.c); the main port and /_sim/ are never refused */
  GSocketAddress *graph_address; /* where it listens (the port read back) */
  char *graph_url;
  GSocket *graph_socket;  /* listening, or NULL while refusing */
  GSocket *graph_holder;  /* bound, never listening: keeps the port ours */
  GSource *graph_source;  /* accepts on graph_socket */
  GPtrArray *graph_conns; /* GSocketConnection* accepted on the Graph port */
  guint refuse_timer;     /* ends the refusal */
  gint64 refuse_until_us; /* monotonic; 0 = not refusing */

  SimWebhook *webhook;
  SoupServer *server;
  GMainLoop *loop;
} Sim;

/* sim-state.c */
void sim_knobs_init (SimKnobs *knobs);
void sim_knobs_clear (SimKnobs *knobs);
void sim_state_init (Sim *sim);
void sim_state_clear (Sim *sim);
void sim_state_reset (Sim *sim);
void sim_fault_free (SimFault *fault);
void sim_sent_free (SimSent *sent);
char *sim_new_wamid (const char *customer, gboolean inbound);
char *sim_random_token (gsize len);
char *sim_wa_id_for (Sim *sim, const char *digits);
char *sim_digits_only (const char *s);
const SimNumber *sim_number (Sim *sim, const char *pnid);
gboolean sim_rate_check (Sim *sim, const SimNumber *number, const char *customer, gint64 *code,
                         gint64 *subcode);
gboolean sim_window_open (Sim *sim, const SimNumber *number, const char *customer);
gboolean sim_portfolio_reach (Sim *sim, const char *customer);
JsonNode *sim_portfolio_describe (Sim *sim);
void sim_window_touch (Sim *sim, const SimNumber *number, const char *customer, gint64 ts);
void sim_inbound_record (Sim *sim, const char *wamid, gint64 ts);
gboolean sim_inbound_known (Sim *sim, const char *wamid, gint64 *ts);
JsonBuilder *sim_log_entry_begin (gint64 *seq);
gint64 sim_log_entry_end (GPtrArray *log, JsonBuilder *entry);
JsonNode *sim_log_since (GPtrArray *log, const char *member, gint64 since);

/* sim-events.c: build webhook bodies and emit automatic statuses */
typedef enum
{
  SIM_FAIL_NONE,            /* the automatic statuses */
  SIM_FAIL_REENGAGEMENT,    /* 131047: free-form with the window closed */
  SIM_FAIL_SPAM_RATE,       /* 131048: over the portfolio's messaging limit */
  SIM_FAIL_MARKETING_LIMIT, /* 131049: per-user marketing limit */
  SIM_FAIL_OPTED_OUT,       /* 131050: the customer stopped marketing messages */
} SimFailure;
char *sim_status_body (Sim *sim, SimSent *sent, const char *status, gint64 ts, JsonNode *errors);
void sim_schedule_statuses (Sim *sim, SimSent *sent, gboolean window_open);
void sim_schedule_outcome (Sim *sim, SimSent *sent, SimFailure failure);
char *sim_user_preferences_body (Sim *sim, JsonObject *req, GError **error);
void sim_status_timers_cancel (Sim *sim);
char *sim_inbound_body (Sim *sim, JsonObject *req, char **wamid_out, GError **error);
char *sim_call_body (Sim *sim, JsonObject *req, char **id_out, GError **error);
char *sim_inbound_batch_body (Sim *sim, const char *const *senders, guint n_senders,
                              const char *name, const char *tmpl, gint64 first, guint count,
                              gint64 ts);

/* sim-graph.c */
void sim_graph_handle (Sim *sim, SoupServerMessage *msg, const char *path);
void sim_graph_shutdown (Sim *sim);

/* sim-main.c: connection refusals on the Graph port */
void sim_refuse_start (Sim *sim, guint duration_ms);
void sim_refuse_stop (Sim *sim);
guint sim_refuse_remaining_ms (Sim *sim);

/* sim-media.c: media registry, lookup and download */
typedef enum
{
  SIM_MEDIA_UNKNOWN,      /* no such media id (or older than 7 days) */
  SIM_MEDIA_FOUND,        /* *answer holds the lookup's JSON */
  SIM_MEDIA_LOOKUP_FAULT, /* a fault: answer with a transient server error */
} SimMediaLookup;
SimMediaLookup sim_media_lookup (Sim *sim, const char *id, SoupServerMessage *msg,
                                 JsonBuilder **answer);
void sim_media_download (Sim *sim, SoupServerMessage *msg, const char *path);
void sim_media_control (Sim *sim, SoupServerMessage *msg, const char *method, JsonObject *req);
void sim_media_reset (void);

/* sim-control.c */
void sim_control_handle (Sim *sim, SoupServerMessage *msg, const char *path);
void sim_control_answer (SoupServerMessage *msg, guint status, JsonBuilder *b);
void sim_control_error (SoupServerMessage *msg, guint status, const char *format, ...)
    G_GNUC_PRINTF (3, 4);
