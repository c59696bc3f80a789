/* sim-templates.h: the simulator's message template catalogue of the WABA:
 * GET /{version}/{waba-id}/message_templates with fields, filters and cursor
 * paging as Graph answers it, the /_sim/templates control routes that add,
 * replace, delete and change templates (emitting Meta's template webhooks),
 * and the send-time checks of template messages against the catalogue. The
 * catalogue lives in sim-templates.c's own registry, emptied by a reset. */
#pragma once

#include "sim-validate.h"
#include "sim.h"

void sim_templates_reset (void);

/* GET /{version}/{waba}/message_templates: TRUE with *answer, else FALSE with
 * err set (100 for a bad field, limit or cursor). @uri is the request's URI:
 * paging.next names its host and port. */
gboolean sim_templates_list (Sim *sim, GUri *uri, const char *version, JsonBuilder **answer,
                             SimError *err);

typedef enum
{
  SIM_TEMPLATE_UNKNOWN, /* no template has that id */
  SIM_TEMPLATE_FOUND,   /* *answer holds the template object */
  SIM_TEMPLATE_ERROR,   /* err is set (an unknown field) */
} SimTemplateLookup;

/* GET /{version}/{template-id}[?fields=...]. */
SimTemplateLookup sim_templates_get (GUri *uri, const char *id, JsonBuilder **answer,
                                     SimError *err);

/* /_sim/templates[/update]: @what is the path after /_sim/. */
void sim_templates_control (Sim *sim, SoupServerMessage *msg, const char *method, const char *what,
                            JsonObject *req);

/* What an accepted template send rendered to (owned strings, NULL when the
 * template lacks the part). */
typedef struct
{
  char *category; /* as the catalogue has it: MARKETING, UTILITY, AUTHENTICATION */
  char *header;
  char *body;
  char *footer;
  char *text; /* header, body and footer joined by newlines */
} SimTemplateRender;

void sim_template_render_clear (SimTemplateRender *r);

/* TRUE when the catalogue holds no template: sends then follow the older
 * `templates` / `templates_missing` knobs. */
gboolean sim_templates_empty (void);

/* Checks the "template" object of a send against the catalogue (name and
 * language, status, parameter counts, formats and names, lengths, header
 * media, buttons, a carousel's cards, a limited-time offer's end) with Meta's
 * codes; @version is the path's ("v25.0"): format errors are 132018 from v23
 * on, 132012 before. @now_ms is the simulator's clock in milliseconds (an
 * offer must end after it). Fills @out. */
gboolean sim_templates_check_send (JsonObject *tpl, const char *version, gint64 now_ms,
                                   SimTemplateRender *out, SimError *err);
