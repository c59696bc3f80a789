/* rx-route.h: what wabiz-receiver makes of a webhook POST, without sockets:
 * the depth check, the X-Hub-Signature-256 check against each account on the
 * path, the envelope, and the routing of each change to the accounts whose
 * own app secret signed it and that claim its phone number ID (or WABA).
 * rx-http answers, notifies and journals from the result; fuzz/ feeds it
 * arbitrary bodies and headers.
 *
 * Must not: touch a socket, a SoupServerMessage or the journal, notify a
 * client, or log anything (the body, the header and the secrets included). */
#pragma once

#include "rx.h"

G_BEGIN_DECLS

typedef enum {
  RX_ROUTE_OK,          /* signed and a webhook: 200 once the routed changes are stored */
  RX_ROUTE_TOO_DEEP,    /* 400: JSON nested deeper than WA_JSON_MAX_DEPTH */
  RX_ROUTE_UNSIGNED,    /* 401: no account's app secret signed the body */
  RX_ROUTE_NOT_WEBHOOK, /* 400: signed, but not a WhatsApp Business webhook */
} RxRouteStatus;

typedef struct {
  GPtrArray *signed_by; /* RxAccount* (borrowed) whose app secret signed the body */
  GHashTable *routed;   /* account id (borrowed from its registration) -> GPtrArray of RxChange* */
  guint unclaimed;      /* changes that no account in signed_by claimed */
} RxRoute;

/* Checks and routes @len bytes of @body (need not be NUL-terminated) that
 * came with the X-Hub-Signature-256 value @signature (may be NULL) on a path
 * used by @accounts (RxAccount*; only their registrations are read). Each
 * distinct app secret is checked once, and every account's is checked (no
 * early exit). Fills @route whatever the status (clear it with
 * rx_route_clear, or declare it g_auto(RxRoute)); only RX_ROUTE_OK routes
 * anything. */
RxRouteStatus rx_route_post(const char *body, gsize len, const char *signature, GPtrArray *accounts, RxRoute *route);
void rx_route_clear(RxRoute *route);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(RxRoute, rx_route_clear)

G_END_DECLS
