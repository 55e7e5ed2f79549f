/* chapar_verify.c - `chapar verify-app MANIFEST FILE... --from USER-ID`:
 * whether downloaded files are the ones a known user shared (their
 * SHA-256 in a manifest that user signed, proto/manifest.h). Needs no
 * daemon and no data dir. Also the file hashing share-app uses. */
#include "node/cli/chapar_int.h"
#include "proto/crypto.h"
#include "proto/id.h"
#include "proto/manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_hash_fd(int fd, uint8_t out[32], uint64_t *size)
{
    static uint8_t block[1 << 16];
    chp_sha256_ctx c;
    chp_sha256_init(&c);
    uint64_t total = 0;
    for (;;) {
        ssize_t k = read(fd, block, sizeof block);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        if (k == 0)
            break;
        chp_sha256_update(&c, block, (size_t)k);
        total += (uint64_t)k;
    }
    chp_sha256_final(&c, out);
    *size = total;
    return 0;
}

/* The manifest file: read whole (it is small), parsed, signature checked
 * against the signer it names, which must be want. 0 or 1 after a line. */
static int load_manifest(const char *path, const uint8_t want[32], const char *from,
                         chp_manifest *m)
{
    static uint8_t buf[CHP_MANIFEST_BYTES_MAX + 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cli_fail(1, "%s: %s", path, strerror(errno));
    size_t len = 0;
    ssize_t k;
    while (len < sizeof buf && (k = read(fd, buf + len, sizeof buf - len)) != 0) {
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            close(fd);
            return cli_fail(1, "%s: %s", path, strerror(errno));
        }
        len += (size_t)k;
    }
    close(fd);
    int rc = chp_manifest_parse(buf, len, 1, m);
    if (rc != CHP_OK)
        return cli_fail(1, _("%s: not a signed chapar app manifest (%s)"), path, chp_strerror(rc));
    if (memcmp(m->signer, want, 32)) {
        char id[CHP_ID_STR_LEN + 1];
        chp_id_encode(m->signer, id);
        return cli_fail(1, _("%s: signature by %s, not by %s: refused"), path, id, from);
    }
    if (chp_manifest_verify(buf, len, m) != CHP_OK)
        return cli_fail(1, _("%s: bad signature: the manifest was altered or forged"), path);
    return 0;
}

/* One file against the manifest: its SHA-256 must be listed (under any
 * name: a browser may have renamed the download). 0, or 1 after the line
 * naming it. */
static int check_file(const char *path, const chp_manifest *m, const char *mpath)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cli_fail(1, "%s: %s", path, strerror(errno));
    uint8_t h[32];
    uint64_t size;
    int rc = cli_hash_fd(fd, h, &size);
    close(fd);
    if (rc != 0)
        return cli_fail(1, "%s: %s", path, strerror(errno));
    for (size_t i = 0; i < m->nfiles; i++)
        if (!memcmp(h, m->files[i].sha256, 32))
            return 0;
    if (chp_manifest_find(m, base))
        return cli_fail(
            1, _("%s: SHA-256 differs from the signed manifest: a damaged or altered copy"), path);
    return cli_fail(1, _("%s: not in %s (no file listed there has its SHA-256)"), path, mpath);
}

int cli_cmd_verify_app(int argc, char **argv)
{
    static const char use[] = "verify-app MANIFEST FILE... --from USER-ID";
    char *pos[1 + CHP_MANIFEST_FILES_MAX];
    const char *from = NULL;
    int npos;
    cli_opt o[] = {{"--from", &from, NULL}};
    int rc = cli_parse_opts(argc, argv, o, 1, pos, 1 + CHP_MANIFEST_FILES_MAX, &npos, use);
    if (rc)
        return rc;
    if (npos < 2 || !from)
        return cli_fail(2, _("usage: chapar %s"), use);
    uint8_t want[32];
    rc = chp_id_parse(from, strlen(from), want);
    if (rc != CHP_OK)
        return cli_fail(1, _("--from %s: not a user ID (%s): no signature can match"), from,
                        chp_strerror(rc));
    chp_manifest m;
    if ((rc = load_manifest(pos[0], want, from, &m)) != 0)
        return rc;
    for (int i = 1; i < npos; i++)
        if ((rc = check_file(pos[i], &m, pos[0])) != 0)
            return rc;
    printf(ngettext("verified: %d file signed by %s\n", "verified: %d files signed by %s\n",
                    (unsigned long)(npos - 1)),
           npos - 1, from);
    return 0;
}
