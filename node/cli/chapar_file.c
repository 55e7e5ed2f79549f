/* chapar_file.c - files (PROTOCOL.md §18.8): `send-file TO PATH
 * [--caption TEXT]` and `file save ID PATH`. The daemon reads and writes
 * the files (it runs as the same user), so both paths go to it absolute. */
#define _DEFAULT_SOURCE /* realpath */
#include "node/cli/chapar_int.h"

#include "node/common/i18n.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEND_FILE_TIMEOUT_MS 300000 /* a large file read, hashed and stored on a slow disk */

int cli_cmd_send_file(const char *home, int argc, char **argv)
{
    static const char use[] = "send-file TO PATH [--caption TEXT]";
    const char *caption = NULL;
    char *pos[2], abs[PATH_MAX];
    int npos;
    cli_opt o[] = {{"--caption", &caption, NULL}};
    int rc = cli_parse_opts(argc, argv, o, 1, pos, 2, &npos, use);
    if (rc)
        return rc;
    if (npos != 2)
        return cli_fail(2, _("usage: chapar %s (TO: contact name, user ID or #room)"), use);
    rc = pos[0][0] == '#' ? cli_check_room(pos[0]) : cli_check_who(pos[0]);
    if (rc)
        return rc;
    if (!realpath(pos[1], abs))
        return cli_fail(1, _("cannot read %s: %s"), pos[1], strerror(errno));
    cli_set_reply_timeout(SEND_FILE_TIMEOUT_MS); /* the daemon copies the file first */
    const char *a[3] = {pos[0], abs, caption};
    size_t l[3] = {strlen(pos[0]), strlen(abs), caption ? strlen(caption) : 0};
    return cli_run(home, "send-file", caption ? 3 : 2, a, l);
}

/* file save ID PATH */
int cli_cmd_file(const char *home, int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[0], "save"))
        return cli_fail(2, _("usage: chapar file save ID PATH"));
    char abs[PATH_MAX + 256], dir[PATH_MAX];
    const char *p = argv[2];
    if (p[0] != '/') {
        if (!getcwd(dir, sizeof dir))
            return cli_fail(1, _("cannot find the current directory: %s"), strerror(errno));
        snprintf(abs, sizeof abs, "%s/%s", dir, p);
        p = abs;
    }
    return cli_run_str(home, "file-save", 2, argv[1], p);
}
