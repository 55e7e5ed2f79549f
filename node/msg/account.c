/* account.c - identity files of a data dir (account.h). */
#include "node/msg/account.h"

#include "proto/crypto.h"
#include "node/common/home.h"
#include "node/common/i18n.h"
#include "proto/keys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

static void path_of(const char *home, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", home, name);
}

/* Reads a small file completely; CHP_E_NOT_FOUND if it does not exist. */
static int read_small(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? CHP_E_NOT_FOUND : CHP_E_IO;
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            close(fd);
            return CHP_E_IO;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (got == cap) {
            uint8_t extra;
            r = read(fd, &extra, 1);
            close(fd);
            return r == 0 ? (*len = got, CHP_OK) : CHP_E_KEYFILE;
        }
    }
    close(fd);
    *len = got;
    return CHP_OK;
}

/* Writes path atomically with mode 0600: temp file, fsync, rename, fsync dir. */
static int write_atomic(const char *home, const char *name, const void *buf, size_t len)
{
    char tmp[4200], dst[4200];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", home, name);
    path_of(home, name, dst, sizeof dst);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return CHP_E_IO;
    const uint8_t *p = buf;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            unlink(tmp);
            return CHP_E_IO;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, dst) != 0) {
        unlink(tmp);
        return CHP_E_IO;
    }
    int dfd = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return CHP_OK;
}

/* The sealed identity file and its mode. */
static int read_identity(const char *home, uint8_t buf[CHP_KEYFILE_BYTES], size_t *len, int *mode)
{
    char p[4200];
    path_of(home, CHP_ACCOUNT_FILE, p, sizeof p);
    int rc = read_small(p, buf, CHP_KEYFILE_BYTES, len);
    return rc != CHP_OK ? rc : chp_keyfile_mode(buf, *len, mode);
}

int chp_account_exists(const char *home)
{
    char p[4200];
    struct stat st;
    path_of(home, CHP_ACCOUNT_FILE, p, sizeof p);
    return stat(p, &st) == 0;
}

int chp_account_needs_passphrase(const char *home)
{
    uint8_t buf[CHP_KEYFILE_BYTES];
    size_t len = 0;
    int mode = 0;
    int rc = read_identity(home, buf, &len, &mode);
    return rc != CHP_OK ? rc : mode == CHP_KEYFILE_MODE_PASSPHRASE;
}

int chp_nick_check(const char *nick, size_t len)
{
    if (!nick || len == 0 || len > CHP_NICK_MAX)
        return CHP_E_ARG;
    if (!chp_utf8_valid(nick, len))
        return CHP_E_UTF8;
    /* '~' marks strangers and '*' the node's own lines where senders are
     * shown (CONTROL.md): a nick, and so a contact name, never starts so */
    if (nick[0] == '~' || nick[0] == '*')
        return CHP_E_ARG;
    /* no controls, nothing invisible or bidi: "sara" + U+200B must not
     * pass for "sara" (ZWNJ stays allowed inside Persian words) */
    return chp_text_name_ok(nick, len) ? CHP_OK : CHP_E_ARG;
}

int chp_account_create(const char *home, const char *pass, size_t passlen, chp_identity **out)
{
    if (out)
        *out = NULL;
    if (chp_account_exists(home))
        return CHP_E_ARG;
    if (pass && (passlen == 0 || passlen > CHP_PASS_MAX))
        return CHP_E_ARG;
    chp_identity *id = NULL;
    uint8_t sealed[CHP_KEYFILE_BYTES], key[32];
    int rc = chp_identity_generate(chp_rng_system(), &id);
    if (rc != CHP_OK)
        return rc;
    if (pass) {
        rc = chp_identity_seal_passphrase(id, pass, passlen, CHP_KEYFILE_OPS_DEFAULT,
                                          CHP_KEYFILE_MEM_DEFAULT_KIB, chp_rng_system(), sealed);
    } else {
        chp_rng_fill(chp_rng_system(), key, sizeof key);
        rc = chp_identity_seal_key(id, key, chp_rng_system(), sealed);
        if (rc == CHP_OK)
            rc = write_atomic(home, CHP_ACCOUNT_KEYFILE, key, sizeof key);
        chp_memzero(key, sizeof key);
    }
    if (rc == CHP_OK)
        rc = write_atomic(home, CHP_ACCOUNT_FILE, sealed, sizeof sealed);
    if (rc != CHP_OK || !out)
        chp_identity_destroy(&id);
    else
        *out = id;
    return rc;
}

int chp_account_load(const char *home, const char *pass, size_t passlen, chp_identity **out)
{
    char p[4200];
    uint8_t buf[CHP_KEYFILE_BYTES], key[32];
    size_t len = 0, klen = 0;
    int mode = 0;
    *out = NULL;
    int rc = read_identity(home, buf, &len, &mode);
    if (rc != CHP_OK)
        return rc;
    if (mode == CHP_KEYFILE_MODE_PASSPHRASE) {
        if (!pass)
            return CHP_E_LOCKED;
        return chp_identity_unseal_passphrase(buf, len, pass, passlen, out);
    }
    path_of(home, CHP_ACCOUNT_KEYFILE, p, sizeof p);
    rc = read_small(p, key, sizeof key, &klen);
    if (rc == CHP_OK && klen != sizeof key)
        rc = CHP_E_KEYFILE;
    if (rc == CHP_E_NOT_FOUND)
        rc = CHP_E_KEYFILE; /* the identity is there, its key is not */
    if (rc == CHP_OK)
        rc = chp_identity_unseal_key(buf, len, key, out);
    chp_memzero(key, sizeof key);
    return rc;
}

int chp_account_set_nick(chp_store *s, const char *nick, size_t len)
{
    int rc = chp_nick_check(nick, len);
    if (rc != CHP_OK)
        return rc;
    return chp_store_local_put(s, CHP_TABLE_CONFIG, "nick", 4, nick, len);
}

int chp_account_get_nick(chp_store *s, char out[CHP_NICK_MAX + 1])
{
    uint8_t *v = NULL;
    size_t vl = 0;
    out[0] = '\0';
    int rc = chp_store_local_get(s, CHP_TABLE_CONFIG, "nick", 4, &v, &vl);
    if (rc != CHP_OK)
        return rc;
    if (vl > CHP_NICK_MAX)
        vl = CHP_NICK_MAX;
    memcpy(out, v, vl);
    out[vl] = '\0';
    chp_store_local_free(v, vl);
    return CHP_OK;
}

/* Overwrites a small file with zeros before unlinking it (best effort: a
 * copy-on-write file system may keep the old blocks; the identity file is
 * sealed anyway). */
static void shred(const char *path)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        struct stat st;
        if (fstat(fd, &st) == 0 && st.st_size > 0 && st.st_size <= (1 << 20)) {
            uint8_t z[4096] = {0};
            off_t left = st.st_size;
            while (left > 0) {
                size_t k = left > (off_t)sizeof z ? sizeof z : (size_t)left;
                if (write(fd, z, k) <= 0)
                    break;
                left -= (off_t)k;
            }
            (void)fsync(fd);
        }
        close(fd);
    }
    unlink(path);
}

int chp_account_wipe(const char *home)
{
    struct stat st;
    if (stat(home, &st) != 0)
        return errno == ENOENT ? CHP_OK : CHP_E_IO;
    if (!S_ISDIR(st.st_mode) || !chp_home_is_data_dir(home))
        return CHP_E_NOT_FOUND; /* not a Chapar data dir: touch nothing */
    char p[4200];
    path_of(home, CHP_ACCOUNT_KEYFILE, p, sizeof p);
    shred(p);
    path_of(home, CHP_ACCOUNT_FILE, p, sizeof p);
    shred(p);
    int rc = CHP_OK;
    DIR *d = opendir(home);
    if (!d)
        return CHP_E_IO;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!chp_home_owns(e->d_name))
            continue; /* not ours: it stays */
        path_of(home, e->d_name, p, sizeof p);
        if (unlink(p) != 0 && errno != ENOENT)
            rc = CHP_E_IO;
    }
    closedir(d);
    (void)rmdir(home); /* only if nothing else lives there */
    return rc;
}

/* Reads one line from a terminal in non-canonical mode, so that the
 * interrupt key is a byte we see: the user's Ctrl-C (or Ctrl-\\, or Ctrl-D
 * on an empty line) cancels at once instead of waiting for a line that
 * would then be taken as the passphrase. Erase and kill edit the line
 * (erase takes a whole UTF-8 character). A signal that interrupts the read
 * (the daemon's SIGTERM, SIGINT from another process) cancels too.
 * Returns 1 when cancelled, else 0 with the line (without its end). */
static int read_line(int fd, const struct termios *tc, char *dst, size_t cap, size_t *len)
{
    size_t l = 0;
    for (;;) {
        unsigned char c;
        ssize_t r = read(fd, &c, 1);
        if (r < 0 && errno == EINTR)
            return 1;
        if (r <= 0 || c == '\n' || c == '\r')
            break;
        if (tc && (c == tc->c_cc[VINTR] || c == tc->c_cc[VQUIT] || (c == tc->c_cc[VEOF] && !l)))
            return 1;
        if (tc && (c == tc->c_cc[VERASE] || c == 0x7f || c == 0x08)) {
            while (l > 0 && ((unsigned char)dst[l - 1] & 0xc0) == 0x80)
                l--;
            l -= l > 0;
        } else if (tc && c == tc->c_cc[VKILL]) {
            l = 0;
        } else if (tc && c == tc->c_cc[VEOF]) {
            /* Ctrl-D inside a line: nothing */
        } else if (l + 1 < cap) {
            dst[l++] = (char)c;
        }
    }
    *len = l;
    return 0;
}

int chp_passphrase_read(const char *file, const char *prompt, int confirm, char *buf, size_t cap,
                        size_t *len)
{
    *len = 0;
    if (file) {
        FILE *f = fopen(file, "r");
        if (!f)
            return CHP_E_IO;
        int ok = fgets(buf, (int)cap, f) != NULL;
        fclose(f);
        if (!ok)
            return CHP_E_ARG;
        size_t l = strcspn(buf, "\r\n");
        buf[l] = '\0';
        *len = l;
        return l ? CHP_OK : CHP_E_ARG;
    }
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return CHP_E_IO;
    struct termios old, quiet;
    int have_tc = tcgetattr(fd, &old) == 0;
    int rc = CHP_OK, cancelled = 0;
    char again[CHP_PASS_MAX + 2];
    for (int round = 0; round < (confirm ? 2 : 1) && rc == CHP_OK; round++) {
        char *dst = round ? again : buf;
        size_t dcap = round ? sizeof again : cap;
        const char *pr = round ? _("again: ") : prompt;
        /* quiet before the prompt shows: what is typed after it is never
         * echoed nor flushed */
        if (have_tc) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)(ECHO | ICANON | ISIG);
            quiet.c_cc[VMIN] = 1;
            quiet.c_cc[VTIME] = 0;
            tcsetattr(fd, TCSAFLUSH, &quiet);
        }
        if (write(fd, pr, strlen(pr)) < 0)
            rc = CHP_E_IO;
        size_t l = 0;
        int cancel = rc != CHP_OK ? 0 : read_line(fd, have_tc ? &old : NULL, dst, dcap, &l);
        (void)!write(fd, "\n", 1);
        dst[l] = '\0';
        if (have_tc)
            tcsetattr(fd, TCSAFLUSH, &old);
        if (cancel) {
            rc = CHP_E_IO;
            cancelled = 1;
            l = 0;
        } else if (!l) {
            rc = CHP_E_ARG;
        }
        if (!round)
            *len = l;
    }
    if (rc == CHP_OK && confirm && strcmp(buf, again) != 0)
        rc = CHP_E_ARG;
    chp_memzero(again, sizeof again);
    close(fd);
    if (rc != CHP_OK) {
        chp_memzero(buf, cap);
        *len = 0;
    }
    if (cancelled)
        errno = ECANCELED;
    return rc;
}
