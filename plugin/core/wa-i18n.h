/* wa-i18n.h: gettext for purple-wabiz (our own domain, GETTEXT_PACKAGE).
 * Core and plugin both mark user-facing strings with _() and N_(). */
#pragma once

#include <glib/gi18n-lib.h>
