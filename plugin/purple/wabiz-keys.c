/* wabiz-keys.c: the account's X25519 key pair, to which wabiz-receiver seals
 * every event. The secret key is kept sealed in the account's encrypted store
 * (older versions kept it in wabiz/keys/<pnid>.key: it moves into the store
 * and the file is deleted); the receiver only ever gets the public key. Also
 * the 0700 data directories under the purple user dir.
 * Must not: log key bytes, or create files with the process umask's modes. */
#include "wabiz.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <sys/stat.h>
#include <unistd.h>

/* <purple user dir>/wabiz[/sub], created 0700 (and fixed to 0700). */
char *
wabiz_data_dir(const char *sub, GError **error)
{
  g_autofree char *base = g_build_filename(purple_user_dir(), "wabiz", NULL);
  g_autofree char *dir = sub != NULL ? g_build_filename(base, sub, NULL) : g_strdup(base);
  const char *dirs[] = {base, dir};

  for (guint i = 0; i < G_N_ELEMENTS(dirs); i++) {
    if (g_mkdir_with_parents(dirs[i], 0700) != 0 || g_chmod(dirs[i], 0700) != 0) {
      g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), _("Cannot create %s: %s"), dirs[i],
                  g_strerror(errno));
      return NULL;
    }
  }
  return g_steal_pointer(&dir);
}

static gboolean
read_key(const char *path, guint8 *out, GError **error)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  ssize_t n;
  guint8 extra;

  if (fd < 0) {
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), _("Cannot read the key file %s: %s"), path,
                g_strerror(errno));
    return FALSE;
  }
  n = read(fd, out, WA_SEAL_SECRET_KEY_BYTES);
  if (n != WA_SEAL_SECRET_KEY_BYTES || read(fd, &extra, 1) != 0) {
    close(fd);
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                _("The key file %s is damaged (wrong size). Events already waiting in the receiver "
                  "cannot be opened without it."),
                path);
    return FALSE;
  }
  close(fd);
  return TRUE;
}

#define RECEIVER_KEY_SETTING "receiver_secret_key"

typedef struct {
  WabizAccount *wa;
  WabizKeysFunc done;
  WaKeyPair *pair;
  char *legacy_path; /* the key file of older versions, deleted once the store has the key */
} KeysLoad;

static void
keys_load_free(KeysLoad *load)
{
  g_clear_pointer(&load->pair, wa_keypair_free);
  g_free(load->legacy_path);
  g_free(load);
}

static void
stored_cb(const GError *error, gpointer data)
{
  KeysLoad *load = data;

  wabiz_store_release(load->wa, load);
  if (error == NULL && load->legacy_path != NULL)
    g_unlink(load->legacy_path);
  load->done(load->wa, error == NULL ? g_steal_pointer(&load->pair) : NULL, error);
  keys_load_free(load);
}

/* A key pair from an older version's key file, or a new one; kept sealed in
 * the store. */
static void
create_key(KeysLoad *load)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = wabiz_data_dir("keys", &error);
  g_autofree char *name = g_strconcat(load->wa->pnid, ".key", NULL);
  g_autofree char *b64 = NULL;

  if (dir != NULL && wa_sodium_init(&error)) {
    char *path = g_build_filename(dir, name, NULL);

    if (g_file_test(path, G_FILE_TEST_EXISTS)) {
      guint8 *secret = sodium_malloc(WA_SEAL_SECRET_KEY_BYTES);

      if (secret != NULL && read_key(path, secret, &error))
        load->pair = wa_keypair_from_secret(secret, WA_SEAL_SECRET_KEY_BYTES, &error);
      sodium_free(secret);
      load->legacy_path = path;
    } else {
      g_free(path);
      load->pair = wa_keypair_new(&error);
    }
  }
  if (load->pair == NULL) {
    load->done(load->wa, NULL, error);
    keys_load_free(load);
    return;
  }
  b64 = g_base64_encode(load->pair->secret_key, WA_SEAL_SECRET_KEY_BYTES);
  wa_store_setting_set(load->wa->store, NULL, RECEIVER_KEY_SETTING, b64, stored_cb,
                       wabiz_store_hold(load->wa, load, (GDestroyNotify) keys_load_free));
  sodium_memzero(b64, strlen(b64));
}

static void
setting_cb(const char *value, const GError *error, gpointer data)
{
  KeysLoad *load = data;
  g_autoptr(GError) local = NULL;
  guint8 secret[WA_SEAL_SECRET_KEY_BYTES];
  gsize len = 0;

  wabiz_store_release(load->wa, load);
  if (error != NULL) {
    load->done(load->wa, NULL, error);
    keys_load_free(load);
    return;
  }
  if (value == NULL) {
    create_key(load);
    return;
  }
  if (sodium_base642bin(secret, sizeof secret, value, strlen(value), NULL, &len, NULL,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      len != sizeof secret)
    g_set_error_literal(&local, WA_SEAL_ERROR, WA_SEAL_ERROR_KEY, _("the stored receiver key is damaged"));
  else
    load->pair = wa_keypair_from_secret(secret, sizeof secret, &local);
  sodium_memzero(secret, sizeof secret);
  load->done(load->wa, g_steal_pointer(&load->pair), local);
  keys_load_free(load);
}

/* The account's X25519 key pair for the receiver, kept sealed in the store
 * (moved there from an older version's key file). @done gets the pair (to
 * free) or an error. */
void
wabiz_keys_load(WabizAccount *wa, WabizKeysFunc done)
{
  KeysLoad *load = g_new0(KeysLoad, 1);

  load->wa = wa;
  load->done = done;
  wa_store_setting_get(wa->store, NULL, RECEIVER_KEY_SETTING, setting_cb,
                       wabiz_store_hold(wa, load, (GDestroyNotify) keys_load_free));
}
