/* wabiz-template.c: the account's message templates. The catalogue is
 * fetched (GET /{waba-id}/message_templates, cursor paging, one fetch shared
 * by the accounts of one WABA and API), kept in the store as account
 * settings ("template/NAME/LANGUAGE", the object as given; sealed) and
 * refreshed on first use, on template webhooks and daily, within what
 * x-business-use-case-usage allows. /template sends one (checked by
 * wa-template.c, header media uploaded first, queued through the outbox by
 * wabiz_command_queue); /templates and the account action list them.
 * Must not: send anything Meta would refuse for a reason known here, or put
 * API text into markup unescaped. */
#include "wabiz.h"

#include <string.h>

#include "wa-json.h"
#include "wa-template.h"

#define SETTING_PREFIX "template/"
#define SETTING_SYNCED "templates.synced"
#define FIELDS "name,status,category,language,components,parameter_format,quality_score,rejected_reason,id"
#define PAGE_LIMIT "250"
#define MAX_PAGES 200
#define DAY_S (24 * 3600)
#define CHECK_S 3600      /* how often the daily refresh looks at the clock */
#define WEBHOOK_DELAY_S 5 /* template webhooks come in bursts: one fetch after them */
#define RATE_LIMITED_S 3600

typedef void (*ReadyFunc)(WabizAccount *wa, const char *error, gpointer data);

typedef struct {
  ReadyFunc func;
  gpointer data;
  GDestroyNotify free_data;
} Waiting;

struct _WabizTemplates {
  WabizAccount *wa;
  GPtrArray *catalogue; /* WaTemplate* */
  gboolean loaded;      /* read from the store */
  gint64 synced;        /* unix seconds of the last fetch; 0: never */
  gboolean stale;       /* fetch before the next use (/templates refresh) */
  gboolean fetching;
  GList *waiting; /* Waiting*: need the catalogue */
  guint timer;    /* the daily refresh */
  guint webhook_timer;
  GList *uploads;      /* TemplateSend*: header files uploading */
  GHashTable *offered; /* customers with an offered dialog open: offered once */
};

/* ---- the shared fetch ------------------------------------------------------ */

typedef struct {
  char *key; /* WABA id, newline, base URL */
  char *waba;
  GList *accounts; /* WabizAccount*: waiting for it */
  WabizAccount *owner;
  WaGraphCall *call;
  GPtrArray *templates;
  guint pages;
} Fetch;

static GHashTable *fetches;  /* key -> Fetch* */
static GHashTable *backoffs; /* key -> gint64*: no fetch before (unix seconds) */

static void fetch_page(Fetch *f, const char *after);
static void fetched(WabizAccount *wa, GPtrArray *templates, const char *error);

static char *
fetch_key(WabizAccount *wa)
{
  return g_strdup_printf("%s\n%s", wabiz_account_string(wa->account, WABIZ_OPT_WABA_ID),
                         wa_graph_get_base_url(wa->graph));
}

static void
fetch_free(Fetch *f)
{
  g_free(f->key);
  g_free(f->waba);
  g_list_free(f->accounts);
  g_clear_pointer(&f->templates, g_ptr_array_unref);
  g_free(f);
}

static void
backoff_set(const char *key, gint64 seconds)
{
  gint64 *until;

  if (seconds <= 0)
    return;
  if (backoffs == NULL)
    backoffs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  until = g_new(gint64, 1);
  *until = wabiz_now() + seconds;
  g_hash_table_replace(backoffs, g_strdup(key), until);
  purple_debug_info("wabiz", "template catalogue: no fetch for %" G_GINT64_FORMAT " s (usage limits)\n", seconds);
}

/* Seconds to wait before fetching for @key; 0: now. */
static gint64
backoff_left(const char *key)
{
  gint64 *until = backoffs != NULL ? g_hash_table_lookup(backoffs, key) : NULL;

  return until != NULL && *until > wabiz_now() ? *until - wabiz_now() : 0;
}

/* The fetch ends (@error or the templates): each account gets its copy. */
static void
fetch_finish(Fetch *f, const char *error)
{
  GList *accounts = g_steal_pointer(&f->accounts);

  g_hash_table_remove(fetches, f->key);
  for (GList *l = accounts; l != NULL; l = l->next) {
    g_autoptr(GPtrArray) copy = NULL;

    if (error == NULL) {
      copy = g_ptr_array_new_with_free_func((GDestroyNotify) wa_template_free);
      for (guint i = 0; i < f->templates->len; i++) {
        WaTemplate *t = wa_template_from_json(((WaTemplate *) g_ptr_array_index(f->templates, i))->json, NULL);

        if (t != NULL)
          g_ptr_array_add(copy, t);
      }
    }
    fetched(l->data, copy, error);
  }
  g_list_free(accounts);
  fetch_free(f);
}

static void
page_cb(WaGraphReply *reply, gpointer data)
{
  Fetch *f = data;
  g_autofree char *after = NULL;
  g_autoptr(GError) local = NULL;
  const char *usage =
    reply->response != NULL ? g_hash_table_lookup(reply->response->headers, "x-business-use-case-usage") : NULL;

  f->call = NULL;
  backoff_set(f->key, wa_template_usage_backoff(usage));
  if (reply->error != NULL) {
    g_autofree char *reason = wa_graph_error_describe(reply->error);

    if (reply->error->code == 4 || reply->error->code == 80007 || reply->error->code == 80008 ||
        reply->error->code == 80004)
      backoff_set(f->key, RATE_LIMITED_S);
    fetch_finish(f, reason);
    return;
  }
  if (!wa_template_page_parse(reply->object, f->templates, &after, &local)) {
    fetch_finish(f, local->message);
    return;
  }
  if (after != NULL && ++f->pages < MAX_PAGES)
    fetch_page(f, after);
  else
    fetch_finish(f, NULL);
}

static void
fetch_page(Fetch *f, const char *after)
{
  g_autofree char *path = g_strconcat(f->waba, "/message_templates", NULL);
  g_autofree char *cursor = after != NULL ? g_uri_escape_string(after, NULL, FALSE) : NULL;
  g_autofree char *query = g_strdup_printf("fields=%s&limit=%s%s%s", FIELDS, PAGE_LIMIT,
                                           cursor != NULL ? "&after=" : "", cursor != NULL ? cursor : "");

  f->owner = f->accounts->data;
  f->call = wa_graph_get(f->owner->graph, path, query, page_cb, f);
  if (f->call == NULL)
    fetch_finish(f, _("the request could not be started"));
}

/* @wa wants the catalogue fetched: it joins the fetch of its WABA in flight
 * or starts one. */
static void
fetch_join(WabizAccount *wa)
{
  g_autofree char *key = fetch_key(wa);
  Fetch *f;
  gint64 wait = backoff_left(key);

  if (wa->templates->fetching)
    return;
  if (wait > 0) {
    g_autofree char *why = g_strdup_printf(
      _("Meta's usage limit for template requests is reached; the catalogue is fetched again in %d minutes"),
      (int) ((wait + 59) / 60));

    fetched(wa, NULL, why);
    return;
  }
  if (fetches == NULL)
    fetches = g_hash_table_new(g_str_hash, g_str_equal);
  wa->templates->fetching = TRUE;
  f = g_hash_table_lookup(fetches, key);
  if (f != NULL) {
    f->accounts = g_list_append(f->accounts, wa);
    return;
  }
  f = g_new0(Fetch, 1);
  f->key = g_steal_pointer(&key);
  f->waba = g_strdup(wabiz_account_string(wa->account, WABIZ_OPT_WABA_ID));
  f->accounts = g_list_append(NULL, wa);
  f->templates = g_ptr_array_new_with_free_func((GDestroyNotify) wa_template_free);
  g_hash_table_insert(fetches, f->key, f);
  fetch_page(f, NULL);
}

/* @wa signs off: it leaves its fetch; a fetch it was making starts over with
 * the next account waiting (its graph client goes away). */
static void
fetch_leave(WabizAccount *wa)
{
  GHashTableIter iter;
  gpointer value;

  if (fetches == NULL)
    return;
  g_hash_table_iter_init(&iter, fetches);
  while (g_hash_table_iter_next(&iter, NULL, &value)) {
    Fetch *f = value;

    if (g_list_find(f->accounts, wa) == NULL)
      continue;
    f->accounts = g_list_remove(f->accounts, wa);
    if (f->owner != wa)
      return;
    g_clear_pointer(&f->call, wa_graph_cancel);
    f->owner = NULL;
    if (f->accounts == NULL) {
      g_hash_table_iter_remove(&iter);
      fetch_free(f);
    } else {
      g_ptr_array_set_size(f->templates, 0);
      f->pages = 0;
      fetch_page(f, NULL);
    }
    return;
  }
}

/* ---- the catalogue in the store ------------------------------------------- */

static char *
setting_name(const WaTemplate *t)
{
  return g_strdup_printf(SETTING_PREFIX "%s/%s", t->name, t->language);
}

static WaTemplate *
find(GPtrArray *catalogue, const char *name, const char *language)
{
  for (guint i = 0; catalogue != NULL && i < catalogue->len; i++) {
    WaTemplate *t = g_ptr_array_index(catalogue, i);

    if (g_strcmp0(t->name, name) == 0 && g_strcmp0(t->language, language) == 0)
      return t;
  }
  return NULL;
}

static void
run_waiting(WabizAccount *wa, WabizTemplates *ts, const char *error)
{
  GList *waiting = g_steal_pointer(&ts->waiting);

  for (GList *l = waiting; l != NULL; l = l->next) {
    Waiting *w = l->data;

    w->func(wa, error, w->data);
    if (w->free_data != NULL)
      w->free_data(w->data);
    g_free(w);
  }
  g_list_free(waiting);
}

/* "Template "x" (en) is now PAUSED: why" */
static char *
status_notice(const char *name, const char *language, const char *status)
{
  WaTemplate told = {.status = (char *) status};
  g_autofree char *why = NULL;

  name = name != NULL ? name : "?";
  language = language != NULL ? language : "?";
  if (wa_template_sendable(&told, &why))
    return g_strdup_printf(_("Template \"%s\" (%s) is now %s and can be sent."), name, language, status);
  return g_strdup_printf(_("Template \"%s\" (%s) is now %s: %s"), name, language, status, why);
}

/* Changes that no webhook told (the catalogue fetched after a while), to the
 * notices; the store takes what changed. */
static void
fetched(WabizAccount *wa, GPtrArray *templates, const char *error)
{
  WabizTemplates *ts = wa->templates;
  g_autofree char *now = NULL;

  ts->fetching = FALSE;
  if (error != NULL) {
    purple_debug_warning("wabiz", "template catalogue not fetched: %s\n", error);
    /* what was fetched before serves meanwhile (the next use tries again) */
    ts->stale = FALSE;
    run_waiting(wa, ts, ts->synced != 0 ? NULL : error);
    return;
  }
  for (guint i = 0; i < templates->len; i++) {
    WaTemplate *t = g_ptr_array_index(templates, i);
    WaTemplate *old = find(ts->catalogue, t->name, t->language);
    g_autofree char *name = setting_name(t);

    if (old != NULL && g_strcmp0(old->status, t->status) != 0) {
      g_autofree char *text = status_notice(t->name, t->language, t->status);

      wabiz_notice(wa, text);
    }
    if (old != NULL && g_strcmp0(old->category, t->category) != 0) {
      g_autofree char *text =
        g_strdup_printf(_("Template \"%s\" (%s) is now in category %s (was %s)."), t->name, t->language,
                        t->category != NULL ? t->category : "?", old->category != NULL ? old->category : "?");

      wabiz_notice(wa, text);
    }
    if (old == NULL || g_strcmp0(old->json, t->json) != 0)
      wa_store_setting_set(wa->store, NULL, name, t->json, NULL, NULL);
  }
  for (guint i = 0; ts->catalogue != NULL && i < ts->catalogue->len; i++) {
    WaTemplate *old = g_ptr_array_index(ts->catalogue, i);

    if (find(templates, old->name, old->language) == NULL) {
      g_autofree char *name = setting_name(old);

      wa_store_setting_set(wa->store, NULL, name, NULL, NULL, NULL);
    }
  }
  ts->synced = wabiz_now();
  ts->stale = FALSE;
  now = g_strdup_printf("%" G_GINT64_FORMAT, ts->synced);
  wa_store_setting_set(wa->store, NULL, SETTING_SYNCED, now, NULL, NULL);
  g_clear_pointer(&ts->catalogue, g_ptr_array_unref);
  ts->catalogue = g_ptr_array_ref(templates);
  run_waiting(wa, ts, NULL);
}

static void
sync_now(WabizAccount *wa)
{
  const char *waba = wabiz_account_string(wa->account, WABIZ_OPT_WABA_ID);

  if (waba == NULL || *waba == '\0') {
    fetched(wa, NULL,
            _("the account has no WhatsApp Business Account ID (set it in the account's options: "
              "waba_id)"));
    return;
  }
  fetch_join(wa);
}

static void
loaded_cb(GHashTable *settings, const GError *error, gpointer data)
{
  WabizTemplates *ts = data;
  WabizAccount *wa = ts->wa;
  GHashTableIter iter;
  gpointer key, value;

  wabiz_store_release(wa, ts);
  ts->loaded = TRUE;
  if (error != NULL) {
    purple_debug_warning("wabiz", "stored templates not read: %s\n", error->message);
    sync_now(wa);
    return;
  }
  g_hash_table_iter_init(&iter, settings);
  while (g_hash_table_iter_next(&iter, &key, &value)) {
    if (g_str_has_prefix(key, SETTING_PREFIX) && value != NULL) {
      WaTemplate *t = wa_template_from_json(value, NULL);

      if (t != NULL)
        g_ptr_array_add(ts->catalogue, t);
    } else if (g_str_equal(key, SETTING_SYNCED) && value != NULL) {
      ts->synced = g_ascii_strtoll(value, NULL, 10);
    }
  }
  /* fetched on first use, then daily */
  if ((ts->synced == 0 && ts->waiting != NULL) || (ts->synced != 0 && wabiz_now() - ts->synced >= DAY_S))
    sync_now(wa);
  else
    run_waiting(wa, ts, NULL);
}

/* Calls @func once the catalogue is there (read from the store, fetched at
 * least once); @error when it could not be had. */
static void
with_catalogue(WabizAccount *wa, ReadyFunc func, gpointer data, GDestroyNotify free_data)
{
  WabizTemplates *ts = wa->templates;
  Waiting *w;

  if (ts == NULL || wa->store == NULL) {
    func(wa, _("the account is offline"), data);
    if (free_data != NULL)
      free_data(data);
    return;
  }
  if (ts->loaded && ts->synced != 0 && !ts->stale && !ts->fetching) {
    func(wa, NULL, data);
    if (free_data != NULL)
      free_data(data);
    return;
  }
  w = g_new0(Waiting, 1);
  w->func = func;
  w->data = data;
  w->free_data = free_data;
  ts->waiting = g_list_append(ts->waiting, w);
  if (ts->loaded && !ts->fetching)
    sync_now(wa);
}

void
wabiz_templates_with(WabizAccount *wa, WabizTemplatesReadyFunc func, gpointer data, GDestroyNotify free_data)
{
  with_catalogue(wa, func, data, free_data);
}

GPtrArray *
wabiz_templates_catalogue(WabizAccount *wa)
{
  return wa->templates != NULL ? wa->templates->catalogue : NULL;
}

static gboolean
daily_cb(gpointer data)
{
  WabizAccount *wa = data;

  if (wa->templates->loaded && !wa->templates->fetching && wa->templates->synced != 0 &&
      wabiz_now() - wa->templates->synced >= DAY_S)
    sync_now(wa);
  return G_SOURCE_CONTINUE;
}

static gboolean
webhook_cb(gpointer data)
{
  WabizAccount *wa = data;

  wa->templates->webhook_timer = 0;
  /* a catalogue never used is fetched on first use */
  if (wa->templates->loaded && !wa->templates->fetching && wa->templates->synced != 0)
    sync_now(wa);
  return G_SOURCE_REMOVE;
}

/* ---- the webhooks ---------------------------------------------------------- */

gboolean
wabiz_templates_webhook(WabizAccount *wa, const WaChange *change)
{
  static const char *const fields[] = {"message_template_status_update", "message_template_quality_update",
                                       "template_category_update", "message_template_components_update"};
  JsonObject *v =
    change->value != NULL && JSON_NODE_HOLDS_OBJECT(change->value) ? json_node_get_object(change->value) : NULL;
  const char *name, *language;
  WaTemplate *t;
  gboolean ours = FALSE;

  for (guint i = 0; i < G_N_ELEMENTS(fields); i++)
    ours = ours || g_strcmp0(change->field, fields[i]) == 0;
  if (!ours || wa->templates == NULL)
    return ours;
  name = v != NULL ? wa_json_get_string(v, "message_template_name") : NULL;
  language = v != NULL ? wa_json_get_string(v, "message_template_language") : NULL;
  t = name != NULL ? find(wa->templates->catalogue, name, language) : NULL;
  if (g_str_equal(change->field, "message_template_status_update") && v != NULL &&
      wa_json_get_string(v, "event") != NULL) {
    const char *event = wa_json_get_string(v, "event");
    const char *reason = wa_json_get_string(v, "reason");
    g_autofree char *text = NULL;

    text = status_notice(name, language, event);
    if (reason != NULL && g_ascii_strcasecmp(reason, "NONE") != 0) {
      g_autofree char *with = g_strdup_printf(_("%s (reason: %s)"), text, reason);

      g_free(text);
      text = g_steal_pointer(&with);
    }
    wabiz_notice(wa, text);
    if (t != NULL) {
      /* the fetch that follows does not tell it again */
      g_free(t->status);
      t->status = g_strdup(event);
    }
  } else if (g_str_equal(change->field, "template_category_update") && v != NULL &&
             wa_json_get_string(v, "new_category") != NULL) {
    const char *category = wa_json_get_string(v, "new_category");
    g_autofree char *text = g_strdup_printf(_("Template \"%s\" (%s) is now in category %s."), name != NULL ? name : "?",
                                            language != NULL ? language : "?", category);

    wabiz_notice(wa, text);
    if (t != NULL) {
      g_free(t->category);
      t->category = g_strdup(category);
    }
  } else if (g_str_equal(change->field, "message_template_quality_update") && v != NULL && t != NULL) {
    g_free(t->quality);
    t->quality = g_strdup(wa_json_get_string(v, "new_quality_score"));
  }
  if (wa->templates->webhook_timer == 0)
    wa->templates->webhook_timer = purple_timeout_add_seconds(WEBHOOK_DELAY_S, webhook_cb, wa);
  return TRUE;
}

/* ---- start and stop -------------------------------------------------------- */

typedef struct {
  WabizAccount *wa;
  char *to;
  WaTemplate *tpl;
  GPtrArray *values;
  guint media; /* the slot being uploaded */
  char *line;  /* the rendered text, naming the header files */
  WaGraphCall *upload;
} TemplateSend;

static void
template_send_free(TemplateSend *ts)
{
  g_free(ts->to);
  g_free(ts->line);
  g_clear_pointer(&ts->tpl, wa_template_free);
  g_clear_pointer(&ts->values, g_ptr_array_unref);
  g_free(ts);
}

static void template_refused(WabizAccount *wa, const char *to, const char *reason);

/* The state is freed by wabiz_templates_stop(), not by the store. */
static void
keep(gpointer data)
{
}

void
wabiz_templates_start(WabizAccount *wa)
{
  WabizTemplates *ts = g_new0(WabizTemplates, 1);

  ts->wa = wa;
  ts->catalogue = g_ptr_array_new_with_free_func((GDestroyNotify) wa_template_free);
  ts->offered = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  wa->templates = ts;
  {
    /* the test build can look more often (the clock is moved by a hook) */
    const char *check = wabiz_test_env("WABIZ_TEST_TEMPLATE_CHECK_S");
    guint every =
      check != NULL && g_ascii_strtoull(check, NULL, 10) > 0 ? (guint) g_ascii_strtoull(check, NULL, 10) : CHECK_S;

    ts->timer = purple_timeout_add_seconds(every, daily_cb, wa);
  }
  wa_store_settings_all(wa->store, NULL, loaded_cb, wabiz_store_hold(wa, ts, keep));
}

void
wabiz_templates_stop(WabizAccount *wa)
{
  WabizTemplates *ts = wa->templates;

  if (ts == NULL)
    return;
  wabiz_store_release(wa, ts);
  fetch_leave(wa);
  ts->fetching = FALSE;
  /* what waits is told, with the account already without templates */
  wa->templates = NULL;
  run_waiting(wa, ts, _("the account went offline"));
  for (GList *l = ts->uploads; l != NULL; l = l->next) {
    TemplateSend *s = l->data;

    g_clear_pointer(&s->upload, wa_graph_cancel);
    template_refused(wa, s->to, _("the account went offline while the header file was uploading."));
    template_send_free(s);
  }
  g_list_free(ts->uploads);
  if (ts->timer != 0)
    purple_timeout_remove(ts->timer);
  if (ts->webhook_timer != 0)
    purple_timeout_remove(ts->webhook_timer);
  g_clear_pointer(&ts->catalogue, g_ptr_array_unref);
  g_clear_pointer(&ts->offered, g_hash_table_destroy);
  g_free(ts);
}

/* ---- /template ------------------------------------------------------------- */

static void
template_refused(WabizAccount *wa, const char *to, const char *reason)
{
  g_autofree char *text = g_strdup_printf(_("Not sent: %s"), reason);

  wabiz_conv_write_plain(wabiz_conv_im(wa->account, to, TRUE), text, PURPLE_MESSAGE_ERROR, 0);
}

static void upload_next(TemplateSend *s);

/* Every value is in place: the payload goes to the outbox. */
static void
template_queue(TemplateSend *s)
{
  WabizAccount *wa = s->wa;
  g_autoptr(GError) local = NULL;
  gboolean marketing = g_strcmp0(s->tpl->category, "MARKETING") == 0 &&
                       purple_account_get_bool(wa->account, WABIZ_OPT_MARKETING_ENDPOINT, FALSE);
  g_autofree char *payload = wa_template_payload(s->tpl, s->values, marketing, wabiz_now() * 1000, &local);
  WaComposed *composed;

  if (payload == NULL) {
    template_refused(wa, s->to, local->message);
    return;
  }
  composed = g_new0(WaComposed, 1);
  composed->type = g_strdup("template");
  composed->payload = g_steal_pointer(&payload);
  composed->line = g_strdup(s->line);
  /* a template without a category is checked as an unknown one (as marketing) */
  wabiz_command_queue(wa, s->to, composed, s->tpl->category != NULL ? s->tpl->category : "UNKNOWN");
}

static void
uploaded_cb(WaGraphReply *reply, gpointer data)
{
  TemplateSend *s = data;
  WabizAccount *wa = s->wa;
  g_autoptr(GError) local = NULL;
  char *media_id;

  s->upload = NULL;
  wa->templates->uploads = g_list_remove(wa->templates->uploads, s);
  if (reply->error != NULL) {
    g_autofree char *reason = wa_graph_error_describe(reply->error);
    g_autofree char *text = g_strdup_printf(_("the header file could not be uploaded: %s"), reason);

    template_refused(wa, s->to, text);
    template_send_free(s);
    return;
  }
  media_id = wa_media_id_from_json(reply->object, &local);
  if (media_id == NULL) {
    template_refused(wa, s->to, local->message);
    template_send_free(s);
    return;
  }
  /* the line shows the file's name; the payload takes the id */
  g_free(s->values->pdata[s->media]);
  s->values->pdata[s->media] = media_id;
  s->media++;
  upload_next(s);
}

/* Header files are uploaded one after the other, then it is queued. */
static void
upload_next(TemplateSend *s)
{
  WabizAccount *wa = s->wa;

  for (; s->media < s->tpl->slots->len; s->media++) {
    const WaTemplateSlot *slot = g_ptr_array_index(s->tpl->slots, s->media);
    const char *value = g_ptr_array_index(s->values, s->media);
    g_autoptr(WaMediaInfo) info = NULL;
    g_autoptr(GError) local = NULL;
    g_autofree char *kind = NULL;

    if (slot->kind != WA_TEMPLATE_SLOT_HEADER_MEDIA || !wa_template_media_is_file(value))
      continue;
    info = wa_media_classify_file(value, &local);
    if (info == NULL) {
      template_refused(wa, s->to, local->message);
      template_send_free(s);
      return;
    }
    kind = g_ascii_strup(wa_media_kind_name(info->kind), -1);
    if (!g_str_equal(slot->format, "DOCUMENT") && !g_str_equal(kind, slot->format)) {
      g_autofree char *text =
        g_strdup_printf(_("%s needs an %s file; %s is %s."), slot->key, slot->format, info->filename, info->mime);

      template_refused(wa, s->to, text);
      template_send_free(s);
      return;
    }
    s->upload =
      wa_graph_upload_media(wa->graph, wa->pnid, value, info->mime, info->filename, NULL, NULL, uploaded_cb, s);
    wa->templates->uploads = g_list_append(wa->templates->uploads, s);
    return;
  }
  template_queue(s);
  template_send_free(s);
}

typedef struct {
  char *to;
  char *text;
} TemplateCommand;

static void
template_command_free(TemplateCommand *c)
{
  g_free(c->to);
  g_free(c->text);
  g_free(c);
}

static void
template_ready(WabizAccount *wa, const char *error, gpointer data)
{
  TemplateCommand *c = data;
  g_autoptr(GError) local = NULL;
  g_autoptr(WaTemplateArgs) args = NULL;
  g_autoptr(WaTemplate) tpl = NULL;
  GPtrArray *values;
  TemplateSend *s;

  if (error != NULL) {
    g_autofree char *text = g_strdup_printf(_("the template catalogue could not be read (%s)."), error);

    template_refused(wa, c->to, text);
    return;
  }
  args = wa_template_args_parse(c->text, wa->templates->catalogue, &local);
  if (args != NULL)
    tpl = wa_template_pick(wa->templates->catalogue, args->name, args->language,
                           purple_account_get_string(wa->account, WABIZ_OPT_TEMPLATE_LANGUAGE, NULL), &local);
  values = tpl != NULL ? wa_template_fill(tpl, args, &local) : NULL;
  if (values == NULL) {
    template_refused(wa, c->to, local->message);
    return;
  }
  s = g_new0(TemplateSend, 1);
  s->wa = wa;
  s->to = g_strdup(c->to);
  s->tpl = g_steal_pointer(&tpl);
  s->values = values;
  s->line = wa_template_render(s->tpl, values);
  upload_next(s);
}

PurpleCmdRet
wabiz_cmd_template(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data)
{
  WabizAccount *wa = NULL;
  g_autofree char *to = wabiz_command_customer(conv, cmd, TRUE, &wa, error);
  TemplateCommand *c;

  if (to == NULL)
    return PURPLE_CMD_RET_FAILED;
  c = g_new0(TemplateCommand, 1);
  c->to = g_steal_pointer(&to);
  c->text = g_strdup(args != NULL && args[0] != NULL ? args[0] : "");
  with_catalogue(wa, template_ready, c, (GDestroyNotify) template_command_free);
  return PURPLE_CMD_RET_OK;
}

/* ---- /templates and the account action ------------------------------------ */

/* The catalogue as lines (only @name's templates when not NULL): status,
 * category, quality, language, what it takes or why it cannot be sent. */
static char *
catalogue_text(WabizAccount *wa, const char *name)
{
  GString *s = g_string_new(NULL);
  GPtrArray *catalogue = wa->templates->catalogue;
  guint shown = 0;

  for (guint i = 0; i < catalogue->len; i++) {
    const WaTemplate *t = g_ptr_array_index(catalogue, i);
    g_autofree char *why = NULL;

    if (name != NULL && !g_str_equal(t->name, name))
      continue;
    shown++;
    g_string_append_printf(s, "%s%s (%s): %s, %s, %s %s", s->len > 0 ? "\n" : "", t->name, t->language, t->status,
                           t->category != NULL ? t->category : "?", _("quality"),
                           t->quality != NULL ? t->quality : "?");
    if (!wa_template_sendable(t, &why)) {
      g_string_append_printf(s, _(" - cannot be sent: %s"), why);
    } else {
      g_autofree char *slots = wa_template_describe_slots(t);

      g_string_append_printf(s, _(" - takes: %s"), slots);
    }
    if (name != NULL) {
      g_autoptr(GPtrArray) examples = g_ptr_array_new_with_free_func(g_free);
      g_autofree char *line = NULL;

      /* the text with its placeholders as they stand */
      for (guint k = 0; k < t->slots->len; k++)
        g_ptr_array_add(examples, NULL);
      line = wa_template_render(t, examples);
      g_string_append_printf(s, "\n%s", line);
    }
  }
  if (shown == 0 && name != NULL)
    g_string_printf(s, _("There is no template named \"%s\"."), name);
  else if (shown == 0)
    g_string_printf(s, _("The account has no message templates."));
  return g_string_free(s, FALSE);
}

typedef struct {
  PurpleAccount *account;
  char *conv_name; /* NULL: the account action's window */
  PurpleConversationType type;
  char *name;
} ListRequest;

static void
list_request_free(ListRequest *r)
{
  g_free(r->conv_name);
  g_free(r->name);
  g_free(r);
}

static void
list_ready(WabizAccount *wa, const char *error, gpointer data)
{
  ListRequest *r = data;
  g_autofree char *text = NULL;
  char *stamp;

  if (wa->templates == NULL)
    return;
  if (error != NULL) {
    text = g_strdup_printf(_("The template catalogue could not be read (%s)."), error);
  } else {
    g_autofree char *list = catalogue_text(wa, r->name);

    stamp = purple_str_seconds_to_string((guint) MAX(0, wabiz_now() - wa->templates->synced));
    text = g_strdup_printf(_("Message templates (fetched %s ago; only APPROVED ones can be sent):\n%s"), stamp, list);
    g_free(stamp);
  }
  if (r->conv_name != NULL) {
    PurpleConversation *conv = purple_find_conversation_with_account(r->type, r->conv_name, r->account);

    wabiz_conv_write_plain(conv, text, PURPLE_MESSAGE_SYSTEM | PURPLE_MESSAGE_NO_LOG, 0);
  } else {
    g_autofree char *html = g_markup_escape_text(text, -1);
    g_autofree char *br = purple_strreplace(html, "\n", "<br>");

    purple_notify_formatted(wa->gc, _("WhatsApp Business: message templates"), _("Message templates"), NULL, br, NULL,
                            NULL);
  }
}

PurpleCmdRet
wabiz_cmd_templates(PurpleConversation *conv, const char *cmd, char **args, char **error, void *data)
{
  PurpleConnection *gc = purple_conversation_get_gc(conv);
  WabizAccount *wa = gc != NULL ? purple_connection_get_protocol_data(gc) : NULL;
  g_autofree char *word = g_strstrip(g_strdup(args != NULL && args[0] != NULL ? args[0] : ""));
  ListRequest *r;

  if (wa == NULL || wa->templates == NULL) {
    *error = g_strdup(_("The account is not connected."));
    return PURPLE_CMD_RET_FAILED;
  }
  r = g_new0(ListRequest, 1);
  r->account = wa->account;
  r->conv_name = g_strdup(purple_conversation_get_name(conv));
  r->type = purple_conversation_get_type(conv);
  if (g_str_equal(word, "refresh")) {
    /* fetched again, then listed (what was fetched before serves if it fails) */
    wa->templates->stale = TRUE;
  } else if (*word != '\0') {
    r->name = g_strdup(word);
  }
  with_catalogue(wa, list_ready, r, (GDestroyNotify) list_request_free);
  return PURPLE_CMD_RET_OK;
}

void
wabiz_templates_action(PurplePluginAction *action)
{
  PurpleConnection *gc = action->context;
  WabizAccount *wa = gc != NULL ? purple_connection_get_protocol_data(gc) : NULL;
  ListRequest *r;

  if (wa == NULL || wa->templates == NULL)
    return;
  r = g_new0(ListRequest, 1);
  r->account = wa->account;
  with_catalogue(wa, list_ready, r, (GDestroyNotify) list_request_free);
}

/* ---- the dialog: "Send template..." ----------------------------------------
 * Finch cannot change a dialog's fields when a choice changes: step 1 picks
 * the template, step 2 asks one field per placeholder, step 3 shows the
 * rendered message and asks. Not offered in BitlBee (no request fields):
 * /template is the form there. */

typedef struct {
  WabizAccount *wa;
  char *to;
  gboolean offered;   /* opened because text went into a closed window */
  GPtrArray *choices; /* WaTemplate* (borrowed copies of the catalogue's JSON, owned here) */
  WaTemplate *tpl;    /* the one chosen */
  GPtrArray *values;
  char *problem; /* why step 2 is asked again */
} Dialog;

static void
dialog_free(Dialog *d)
{
  /* (after sign-off the account has no templates and nothing to forget) */
  if (d->offered && d->wa->templates != NULL)
    g_hash_table_remove(d->wa->templates->offered, d->to);
  g_free(d->to);
  g_clear_pointer(&d->choices, g_ptr_array_unref);
  g_clear_pointer(&d->tpl, wa_template_free);
  g_clear_pointer(&d->values, g_ptr_array_unref);
  g_free(d->problem);
  g_free(d);
}

/* The dialog's callbacks end here: it is no longer the store's to free. */
static void
dialog_end(Dialog *d)
{
  wabiz_store_release(d->wa, d);
  dialog_free(d);
}

static void dialog_values(Dialog *d);

static void
dialog_cancel(Dialog *d, PurpleRequestFields *fields)
{
  dialog_end(d);
}

static void
dialog_send(Dialog *d, int action)
{
  TemplateSend *s = g_new0(TemplateSend, 1);

  s->wa = d->wa;
  s->to = g_strdup(d->to);
  s->tpl = g_steal_pointer(&d->tpl);
  s->values = g_steal_pointer(&d->values);
  s->line = wa_template_render(s->tpl, s->values);
  dialog_end(d);
  upload_next(s);
}

static void
dialog_no(Dialog *d, int action)
{
  dialog_end(d);
}

/* Step 3: the rendered message, then OK to send. */
static void
dialog_confirm(Dialog *d)
{
  g_autofree char *line = wa_template_render(d->tpl, d->values);
  g_autofree char *primary = g_strdup_printf(_("Send this template to %s?"), d->to);
  PurpleAccount *account = d->wa->account;

  purple_request_action(d->wa->gc, _("Send template"), primary, line, 0, account, d->to, NULL, d, 2,
                        wabiz_caption_yes(_("_Send")), G_CALLBACK(dialog_send), wabiz_caption_no(),
                        G_CALLBACK(dialog_no));
}

static void
dialog_values_ok(Dialog *d, PurpleRequestFields *fields)
{
  g_autoptr(WaTemplateArgs) args = g_new0(WaTemplateArgs, 1);
  g_autoptr(GError) local = NULL;

  args->positional = g_ptr_array_new_with_free_func(g_free);
  args->keys = g_ptr_array_new_with_free_func(g_free);
  args->values = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < d->tpl->slots->len; i++) {
    const WaTemplateSlot *slot = g_ptr_array_index(d->tpl->slots, i);
    const char *value = purple_request_fields_get_string(fields, slot->key);

    if (value != NULL && *value != '\0') {
      g_ptr_array_add(args->keys, g_strdup(slot->key));
      g_ptr_array_add(args->values, g_strstrip(g_strdup(value)));
    }
  }
  g_clear_pointer(&d->values, g_ptr_array_unref);
  d->values = wa_template_fill(d->tpl, args, &local);
  if (d->values == NULL) {
    /* asked again, with what was typed and why */
    g_free(d->problem);
    d->problem = g_strdup(local->message);
    d->values = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < d->tpl->slots->len; i++)
      g_ptr_array_add(d->values, g_strdup(purple_request_fields_get_string(
                                   fields, ((WaTemplateSlot *) g_ptr_array_index(d->tpl->slots, i))->key)));
    dialog_values(d);
    return;
  }
  dialog_confirm(d);
}

/* Step 2: one field per placeholder (a template without any goes straight
 * to step 3). */
static void
dialog_values(Dialog *d)
{
  PurpleRequestFields *fields;
  PurpleRequestFieldGroup *group;
  g_autofree char *primary = NULL;

  if (d->tpl->slots->len == 0) {
    d->values = g_ptr_array_new_with_free_func(g_free);
    dialog_confirm(d);
    return;
  }
  fields = purple_request_fields_new();
  group = purple_request_field_group_new(NULL);
  purple_request_fields_add_group(fields, group);
  for (guint i = 0; i < d->tpl->slots->len; i++) {
    const WaTemplateSlot *slot = g_ptr_array_index(d->tpl->slots, i);
    g_autofree char *label = NULL;
    const char *old = d->values != NULL ? g_ptr_array_index(d->values, i) : NULL;
    PurpleRequestField *field;

    if (slot->kind == WA_TEMPLATE_SLOT_HEADER_MEDIA)
      label = g_strdup_printf(_("%s (%s: a file or a media id)"), slot->key, slot->format);
    else if (slot->example != NULL)
      label = g_strdup_printf(_("%s (e.g. %s)"), slot->key, slot->example);
    else
      label = g_strdup(slot->key);
    field = purple_request_field_string_new(slot->key, label, old, FALSE);
    purple_request_field_set_required(field, !slot->optional);
    purple_request_field_group_add_field(group, field);
  }
  primary = g_strdup_printf(_("%s (%s, %s)"), d->tpl->name, d->tpl->language,
                            d->tpl->category != NULL ? d->tpl->category : "?");
  purple_request_fields(d->wa->gc, _("Send template"), primary, d->problem != NULL ? d->problem : d->tpl->main.body,
                        fields, _("_Next"), G_CALLBACK(dialog_values_ok), _("_Cancel"), G_CALLBACK(dialog_cancel),
                        d->wa->account, d->to, NULL, d);
}

static void
dialog_choice_ok(Dialog *d, PurpleRequestFields *fields)
{
  int index = purple_request_fields_get_choice(fields, "template");

  if (index < 0 || (guint) index >= d->choices->len) {
    dialog_end(d);
    return;
  }
  d->tpl = wa_template_from_json(((WaTemplate *) g_ptr_array_index(d->choices, index))->json, NULL);
  if (d->tpl == NULL) {
    dialog_end(d);
    return;
  }
  dialog_values(d);
}

/* Step 1: the approved templates and languages. */
static void
dialog_ready(WabizAccount *wa, const char *error, gpointer data)
{
  Dialog *d = data;
  PurpleRequestFields *fields;
  PurpleRequestFieldGroup *group;
  PurpleRequestField *field;
  const char *secondary;

  if (wa->templates == NULL) {
    dialog_free(d);
    return;
  }
  d->choices = g_ptr_array_new_with_free_func((GDestroyNotify) wa_template_free);
  for (guint i = 0; error == NULL && i < wa->templates->catalogue->len; i++) {
    const WaTemplate *t = g_ptr_array_index(wa->templates->catalogue, i);

    if (wa_template_sendable(t, NULL))
      g_ptr_array_add(d->choices, wa_template_from_json(t->json, NULL));
  }
  if (d->choices->len == 0) {
    /* an offer with nothing to offer stays unsaid: the refusal line names /template */
    if (!d->offered) {
      g_autofree char *text = error != NULL
                                ? g_strdup_printf(_("The template catalogue could not be read (%s)."), error)
                                : g_strdup(_("The account has no approved message templates."));

      purple_notify_error(wa->gc, _("Send template"), _("No template can be sent"), text);
    }
    dialog_free(d);
    return;
  }
  fields = purple_request_fields_new();
  group = purple_request_field_group_new(NULL);
  purple_request_fields_add_group(fields, group);
  field = purple_request_field_choice_new("template", _("Template"), 0);
  for (guint i = 0; i < d->choices->len; i++) {
    const WaTemplate *t = g_ptr_array_index(d->choices, i);
    g_autofree char *label =
      g_strdup_printf("%s (%s, %s)", t->name, t->language, t->category != NULL ? t->category : "?");

    purple_request_field_choice_add(field, label);
  }
  purple_request_field_group_add_field(group, field);
  secondary = d->offered ? _("The 24-hour service window with this customer has closed: only an approved message "
                             "template can be sent until the customer writes again.")
                         : NULL;
  wabiz_store_hold(wa, d, (GDestroyNotify) dialog_free);
  purple_request_fields(wa->gc, _("Send template"), _("Choose a template and language"), secondary, fields, _("_Next"),
                        G_CALLBACK(dialog_choice_ok), _("_Cancel"), G_CALLBACK(dialog_cancel), wa->account, d->to, NULL,
                        d);
}

void
wabiz_template_dialog(WabizAccount *wa, const char *to, gboolean offered)
{
  Dialog *d;

  if (wabiz_bitlbee() || wa->templates == NULL)
    return;
  if (offered && g_hash_table_contains(wa->templates->offered, to))
    return;
  if (offered)
    g_hash_table_add(wa->templates->offered, g_strdup(to));
  d = g_new0(Dialog, 1);
  d->wa = wa;
  d->to = g_strdup(to);
  d->offered = offered;
  with_catalogue(wa, dialog_ready, d, NULL);
}

static void
menu_template(PurpleBlistNode *node, gpointer data)
{
  PurpleBuddy *buddy = (PurpleBuddy *) node;
  WabizAccount *wa = wabiz_account_data(purple_buddy_get_account(buddy));
  g_autofree char *to = NULL;

  if (wa == NULL || wa->templates == NULL)
    return;
  to = wa_customer_id_normalize(purple_buddy_get_name(buddy),
                                purple_account_get_string(wa->account, WABIZ_OPT_DEFAULT_CC, NULL), NULL);
  if (to != NULL)
    wabiz_template_dialog(wa, to, FALSE);
}

PurpleMenuAction *
wabiz_template_menu(PurpleBuddy *buddy)
{
  if (wabiz_bitlbee() || wabiz_is_notices(purple_buddy_get_name(buddy)))
    return NULL;
  return purple_menu_action_new(_("Send template..."), PURPLE_CALLBACK(menu_template), NULL, NULL);
}
