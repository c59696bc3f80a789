/* sim-upload.h: POST /{version}/{pnid}/media (multipart uploads) and the
 * checks of media sends that name an uploaded id. The uploads live in
 * sim-upload.c's own registry, emptied by a reset. */
#pragma once

#include "sim-validate.h"
#include "sim.h"

/* Parses and checks an upload; on success returns the new media id (owned). */
char *sim_upload_media (Sim *sim, const SimNumber *number, SoupServerMessage *msg, SimError *err);

/* A send of @type ("image", "audio", ...) with media object @media: an id
 * must name an upload of a type that kind takes (a sticker a WebP, a voice
 * note Ogg Opus), else 131053. Links are left to sim-validate.c. */
gboolean sim_upload_check_send (const char *type, JsonObject *media, SimError *err);

/* GET /_sim/uploads[?since=N]: {"uploads": [{seq, id, messaging_product,
 * type, content_type, filename, size, sha256}, ...]}. */
JsonNode *sim_uploads_log (gint64 since);
void sim_uploads_reset (void);
