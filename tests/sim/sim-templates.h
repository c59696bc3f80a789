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

/* /_sim/templates[/update]: @what is the path after /_sim/. */
void sim_templates_control (Sim *sim, SoupServerMessage *msg, const char *method, const char *what,
                            JsonObject *req);
