/* wabiz-gdpr.c: a customer's data on request (GDPR): /export writes
 * everything the store holds about the customer of the conversation to a
 * file the agent names; /erase, after a confirmation, deletes it (messages,
 * outbox, consent, settings, the customer's key) and removes the buddy,
 * keeping only a suppression entry so the number is not contacted again by an
 * import or a campaign. Both are audited by the store.
 * Must not: write the export anywhere but the named file (0600, written
 * beside it and renamed over it; never through a symbolic link or into
 * another user's file), or erase without the agent's confirmation. */
#include "wabiz.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  WabizAccount *wa;
  char *conv_name;
  char *path;
  char *customer; /* export: whose attachments follow the JSON */
} GdprRequest;

static void
gdpr_request_free(GdprRequest *req)
{
  g_free(req->conv_name);
  g_free(req->path);
  g_free(req->customer);
  g_free(req);
}

static void
say(WabizAccount *wa, const char *conv_name, const char *text, PurpleMessageFlags flags)
{
  wabiz_conv_write_plain(wabiz_conv_im(wa->account, conv_name, TRUE), text, flags, 0);
}

static void
set_file_error(GError **error, int err, const char *path)
{
  g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(err), "%s: %s", path, g_strerror(err));
}

/* An existing @path may only be replaced when it is a regular file of ours:
 * not a symbolic link (its target would be someone else's file) nor a file
 * another user owns (they would find our customer's data in it). */
static gboolean
target_replaceable(const char *path, GError **error)
{
  struct stat st;

  if (lstat(path, &st) != 0) {
    if (errno == ENOENT)
      return TRUE;
    set_file_error(error, errno, path);
    return FALSE;
  }
  if (S_ISLNK(st.st_mode)) {
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_PERM, _("%s is a symbolic link: name the file itself, or a new file"),
                path);
    return FALSE;
  }
  if (!S_ISREG(st.st_mode)) {
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_PERM, _("%s exists and is not a regular file"), path);
    return FALSE;
  }
  if (st.st_uid != geteuid()) {
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_PERM,
                _("%s belongs to another user: it is not replaced; choose a file of your own"), path);
    return FALSE;
  }
  return TRUE;
}

static gboolean
write_all(int fd, const char *text, gsize len)
{
  gsize done = 0;

  while (done < len) {
    ssize_t n = write(fd, text + done, len - done);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return FALSE;
    done += (gsize) n;
  }
  return TRUE;
}

/* Writes @text to a new file readable only by us beside @path (created
 * 0600 with O_EXCL, so nobody else's file and no older mode is reused),
 * makes it durable, then renames it over @path: the target is never seen
 * half written or with a wider mode. */
static gboolean
write_private(const char *path, const char *text, GError **error)
{
  g_autofree char *dir = g_path_get_dirname(path);
  g_autofree char *base = g_path_get_basename(path);
  g_autofree char *tmp = g_strdup_printf("%s/.%s.XXXXXX", dir, base);
  int fd;
  int dir_fd;

  if (!target_replaceable(path, error))
    return FALSE;
  fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) {
    set_file_error(error, errno, dir);
    return FALSE;
  }
  if (!write_all(fd, text, strlen(text)) || fsync(fd) != 0) {
    int err = errno != 0 ? errno : EIO;

    close(fd);
    unlink(tmp);
    set_file_error(error, err, path);
    return FALSE;
  }
  if (close(fd) != 0 || rename(tmp, path) != 0) {
    int err = errno;

    unlink(tmp);
    set_file_error(error, err, path);
    return FALSE;
  }
  /* the rename itself survives a crash once the directory is synced */
  dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    (void) fsync(dir_fd);
    close(dir_fd);
  }
  return TRUE;
}

static void
exported_cb(const char *json, const GError *error, gpointer data)
{
  GdprRequest *req = data;
  g_autoptr(GError) local = NULL;
  g_autofree char *text = NULL;

  wabiz_store_release(req->wa, req);
  if (error == NULL && write_private(req->path, json, &local))
    text =
      g_strdup_printf(_("Exported everything stored about this customer to %s (readable only by you)."), req->path);
  else
    text = g_strdup_printf(_("The export failed: %s"), error != NULL ? error->message : local->message);
  say(req->wa, req->conv_name, text, error == NULL && local == NULL ? PURPLE_MESSAGE_SYSTEM : PURPLE_MESSAGE_ERROR);
  if (error == NULL && local == NULL) {
    /* the attachments beside it: FILE.attachments/N-name */
    g_autofree char *dir = g_strconcat(req->path, ".attachments", NULL);

    wabiz_media_export(req->wa, req->customer, dir, req->conv_name);
  }
  gdpr_request_free(req);
}

static WabizAccount *
conv_account(PurpleConversation *conv)
{
  WabizAccount *wa = wabiz_account_data(purple_conversation_get_account(conv));

  return wa != NULL && wa->store != NULL ? wa : NULL;
}

/* The store's customer of buddy @who, or NULL (and an error line). */
static const char *
buddy_customer(WabizAccount *wa, const char *who)
{
  PurpleBuddy *buddy = purple_find_buddy(wa->account, who);
  const char *customer = buddy != NULL ? purple_blist_node_get_string(&buddy->node, WABIZ_NODE_CUSTOMER_ID) : NULL;

  if (customer == NULL)
    say(wa, who, _("Nothing is stored about this customer."), PURPLE_MESSAGE_ERROR);
  return customer;
}

static void
start_export(WabizAccount *wa, const char *who, const char *path)
{
  const char *customer = buddy_customer(wa, who);
  GdprRequest *req;

  if (customer == NULL)
    return;
  req = g_new0(GdprRequest, 1);
  req->wa = wa;
  req->conv_name = g_strdup(who);
  req->path = g_strdup(path);
  req->customer = g_strdup(customer);
  wa_store_customer_export(wa->store, customer, exported_cb,
                           wabiz_store_hold(wa, req, (GDestroyNotify) gdpr_request_free));
}

PurpleCmdRet
wabiz_cmd_export(PurpleConversation *conv, const gchar *cmd, gchar **args, gchar **error, void *data)
{
  WabizAccount *wa = conv_account(conv);

  if (wa == NULL) {
    *error = g_strdup(_("The account is not signed in."));
    return PURPLE_CMD_RET_FAILED;
  }
  if (args[0] == NULL || *args[0] == '\0' || !g_path_is_absolute(args[0])) {
    *error = g_strdup(_("Usage: /export FILE (an absolute path, e.g. /home/me/customer.json)"));
    return PURPLE_CMD_RET_FAILED;
  }
  start_export(wa, purple_conversation_get_name(conv), args[0]);
  return PURPLE_CMD_RET_OK;
}

static void
erased_cb(const GError *error, gpointer data)
{
  GdprRequest *req = data;
  WabizAccount *wa = req->wa;
  PurpleBuddy *buddy;

  wabiz_store_release(wa, req);
  if (error != NULL) {
    g_autofree char *text = g_strdup_printf(_("Erasing failed, nothing was erased: %s"), error->message);

    say(wa, req->conv_name, text, PURPLE_MESSAGE_ERROR);
  } else {
    buddy = purple_find_buddy(wa->account, req->conv_name);
    if (buddy != NULL)
      purple_blist_remove_buddy(buddy);
    wabiz_receipts_forget(wa, req->conv_name);
    say(wa, req->conv_name,
        _("Everything stored about this customer was erased, and the buddy removed. The number is kept "
          "only as a keyed hash, so imports and campaigns will not contact it again. Close this window to "
          "clear what it still shows."),
        PURPLE_MESSAGE_SYSTEM);
  }
  gdpr_request_free(req);
}

static void
erase_confirmed(GdprRequest *req, int action)
{
  WabizAccount *wa = req->wa;
  PurpleBuddy *buddy;
  const char *customer;

  wabiz_store_release(wa, req);
  buddy = purple_find_buddy(wa->account, req->conv_name);
  customer = buddy != NULL ? purple_blist_node_get_string(&buddy->node, WABIZ_NODE_CUSTOMER_ID) : NULL;
  if (customer == NULL || wa->store == NULL) {
    gdpr_request_free(req);
    return;
  }
  wa_store_customer_erase(wa->store, customer, erased_cb,
                          wabiz_store_hold(wa, req, (GDestroyNotify) gdpr_request_free));
}

static void
erase_cancelled(GdprRequest *req, int action)
{
  wabiz_store_release(req->wa, req);
  gdpr_request_free(req);
}

/* Asks before erasing the customer of buddy @who. */
static void
ask_erase(WabizAccount *wa, const char *who, PurpleConversation *conv)
{
  GdprRequest *req;
  g_autofree char *primary = NULL;

  if (buddy_customer(wa, who) == NULL)
    return;
  req = g_new0(GdprRequest, 1);
  req->wa = wa;
  req->conv_name = g_strdup(who);
  primary = g_strdup_printf(_("Erase everything stored about %s?"), req->conv_name);
  /* a dialog closed at sign-off calls neither button: the request is then
   * freed with the store's pending requests */
  wabiz_store_hold(wa, req, (GDestroyNotify) gdpr_request_free);
  purple_request_action(wa->gc, _("Erase customer data"), primary,
                        _("Messages, queued messages, consent records and settings of this customer are deleted "
                          "for good, and the buddy is removed. Export first if the customer asked for a copy."),
                        1, wa->account, req->conv_name, conv, req, 2, wabiz_caption_yes(_("Erase")),
                        PURPLE_CALLBACK(erase_confirmed), wabiz_caption_no(), PURPLE_CALLBACK(erase_cancelled));
}

PurpleCmdRet
wabiz_cmd_erase(PurpleConversation *conv, const gchar *cmd, gchar **args, gchar **error, void *data)
{
  WabizAccount *wa = conv_account(conv);

  if (wa == NULL) {
    *error = g_strdup(_("The account is not signed in."));
    return PURPLE_CMD_RET_FAILED;
  }
  ask_erase(wa, purple_conversation_get_name(conv), conv);
  return PURPLE_CMD_RET_OK;
}

/* ---- the buddy menu --------------------------------------------------------- */

typedef struct {
  WabizAccount *wa;
  char *who;
} MenuExport;

static void
menu_export_free(MenuExport *m)
{
  g_free(m->who);
  g_free(m);
}

static void
menu_export_file(MenuExport *m, const char *path)
{
  wabiz_store_release(m->wa, m);
  if (path != NULL && g_path_is_absolute(path))
    start_export(m->wa, m->who, path);
  menu_export_free(m);
}

static void
menu_export_cancel(MenuExport *m, const char *path)
{
  wabiz_store_release(m->wa, m);
  menu_export_free(m);
}

static WabizAccount *
buddy_account(PurpleBuddy *buddy)
{
  WabizAccount *wa = wabiz_account_data(purple_buddy_get_account(buddy));

  return wa != NULL && wa->store != NULL ? wa : NULL;
}

static void
menu_export(PurpleBlistNode *node, gpointer data)
{
  PurpleBuddy *buddy = (PurpleBuddy *) node;
  WabizAccount *wa = buddy_account(buddy);
  MenuExport *m;
  g_autofree char *name = NULL;

  if (wa == NULL)
    return;
  m = g_new0(MenuExport, 1);
  m->wa = wa;
  m->who = g_strdup(purple_buddy_get_name(buddy));
  name = g_strdup_printf("customer-%s.json", m->who);
  /* freed with the store's pending requests if the dialog closes at sign-off */
  wabiz_store_hold(wa, m, (GDestroyNotify) menu_export_free);
  purple_request_file(wa->gc, _("Export customer data to"), name, TRUE, PURPLE_CALLBACK(menu_export_file),
                      PURPLE_CALLBACK(menu_export_cancel), wa->account, m->who, NULL, m);
}

static void
menu_erase(PurpleBlistNode *node, gpointer data)
{
  PurpleBuddy *buddy = (PurpleBuddy *) node;
  WabizAccount *wa = buddy_account(buddy);

  if (wa != NULL)
    ask_erase(wa, purple_buddy_get_name(buddy), NULL);
}

GList *
wabiz_blist_node_menu(PurpleBlistNode *node)
{
  GList *menu = NULL;
  PurpleMenuAction *template;

  if (!PURPLE_BLIST_NODE_IS_BUDDY(node) || buddy_account((PurpleBuddy *) node) == NULL)
    return NULL;
  menu =
    g_list_append(menu, purple_menu_action_new(_("Export customer data..."), PURPLE_CALLBACK(menu_export), NULL, NULL));
  menu =
    g_list_append(menu, purple_menu_action_new(_("Erase customer data..."), PURPLE_CALLBACK(menu_erase), NULL, NULL));
  menu = g_list_append(menu, wabiz_receipts_menu((PurpleBuddy *) node));
  menu = g_list_append(menu, wabiz_consent_menu((PurpleBuddy *) node));
  template = wabiz_template_menu((PurpleBuddy *) node);
  if (template != NULL)
    menu = g_list_append(menu, template);
  return menu;
}
