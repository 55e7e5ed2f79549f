/* replay_main.c - stands in for libFuzzer's main when the fuzzers are not
 * built: runs LLVMFuzzerTestOneInput once on every file named on the
 * command line or found (not recursively) in a named directory, so the
 * corpora replay as ordinary ctest cases under gcc and any sanitizer. */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Reads path and hands it to the target in an exactly sized heap buffer,
 * so a sanitizer sees any read past the input's end. */
static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL, *exact = NULL;
    size_t len = 0, cap = 0;
    int rc = -1;
    if (!f)
        goto out;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *nb = realloc(buf, cap);
            if (!nb)
                goto out;
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        if (n == 0)
            break;
        len += n;
    }
    if (ferror(f))
        goto out;
    /* malloc(0) may return NULL, and the targets take a real pointer. */
    if (!(exact = malloc(len ? len : 1)))
        goto out;
    if (len)
        memcpy(exact, buf, len);
    /* Named before it runs: on a crash the last line says which input. */
    printf("%s (%zu bytes)\n", path, len);
    fflush(stdout);
    (void)LLVMFuzzerTestOneInput(exact, len);
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
    free(exact);
    free(buf);
    if (f)
        fclose(f);
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays the regular files of dir in name order (a stable order makes a
 * failing run repeatable); *count gets how many ran. */
static int replay_dir(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **nn = realloc(names, ncap * sizeof *nn);
            if (!nn)
                goto out;
            names = nn;
            cap = ncap;
        }
        size_t plen = strlen(dir) + 1 + strlen(e->d_name) + 1;
        if (!(names[n] = malloc(plen)))
            goto out;
        snprintf(names[n], plen, "%s/%s", dir, e->d_name);
        n++;
    }
    if (n)
        qsort(names, n, sizeof *names, cmp_names);
    rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct stat st;
        if (stat(names[i], &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        rc = replay_file(names[i]);
        if (rc == 0)
            (*count)++;
    }
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    size_t count = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        int rc;
        if (S_ISDIR(st.st_mode)) {
            rc = replay_dir(argv[i], &count);
        } else {
            rc = replay_file(argv[i]);
            if (rc == 0)
                count++;
        }
        if (rc != 0)
            return 1;
    }
    /* An empty corpus would pass silently and test nothing. */
    if (count == 0) {
        fprintf(stderr, "replay: no inputs found\n");
        return 1;
    }
    printf("replayed %zu inputs\n", count);
    return 0;
}
