/* wabiz-keys.c: the account's X25519 key pair, to which wabiz-receiver seals
 * every event. Until the encrypted store exists the secret key is a 0600 file
 * in a 0700 directory under the purple user dir (wabiz/keys/<pnid>.key); the
 * receiver only ever gets the public key.
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
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), _("Cannot read the key file %s: %s"),
                path, g_strerror(errno));
    return FALSE;
  }
  n = read(fd, out, WA_SEAL_SECRET_KEY_BYTES);
  if (n != WA_SEAL_SECRET_KEY_BYTES || read(fd, &extra, 1) != 0) {
    close(fd);
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                _("The key file %s is damaged (wrong size). Events already waiting in the receiver "
                  "cannot be opened without it."), path);
    return FALSE;
  }
  close(fd);
  return TRUE;
}

static gboolean
write_key(const char *path, const guint8 *key, GError **error)
{
  g_autofree char *tmp = g_strconcat(path, ".new", NULL);
  int fd;

  g_unlink(tmp);
  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 || write(fd, key, WA_SEAL_SECRET_KEY_BYTES) != WA_SEAL_SECRET_KEY_BYTES || fsync(fd) != 0) {
    int err = errno;

    if (fd >= 0)
      close(fd);
    g_unlink(tmp);
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(err), _("Cannot write the key file %s: %s"),
                path, g_strerror(err));
    return FALSE;
  }
  close(fd);
  if (g_rename(tmp, path) != 0) {
    int err = errno;

    g_unlink(tmp);
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(err), _("Cannot write the key file %s: %s"),
                path, g_strerror(err));
    return FALSE;
  }
  return TRUE;
}

WaKeyPair *
wabiz_keys_load(PurpleAccount *account, const char *pnid, GError **error)
{
  g_autofree char *dir = wabiz_data_dir("keys", error);
  g_autofree char *name = NULL;
  g_autofree char *path = NULL;
  guint8 *secret;
  WaKeyPair *pair;

  if (dir == NULL || !wa_sodium_init(error))
    return NULL;
  name = g_strconcat(pnid, ".key", NULL);
  path = g_build_filename(dir, name, NULL);
  if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
    pair = wa_keypair_new(error);
    if (pair != NULL && !write_key(path, pair->secret_key, error))
      g_clear_pointer(&pair, wa_keypair_free);
    return pair;
  }
  secret = sodium_malloc(WA_SEAL_SECRET_KEY_BYTES);
  if (secret == NULL) {
    g_set_error_literal(error, G_FILE_ERROR, G_FILE_ERROR_NOMEM, _("No secure memory for a key"));
    return NULL;
  }
  pair = read_key(path, secret, error) ? wa_keypair_from_secret(secret, WA_SEAL_SECRET_KEY_BYTES, error) : NULL;
  sodium_free(secret);
  return pair;
}
