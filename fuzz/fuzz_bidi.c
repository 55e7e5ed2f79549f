/* fuzz_bidi.c - right-to-left layout of text from anyone (ui-tui/bidi.c):
 * byte 0 is the width (2..257), byte 1 the mode (app, reorder without
 * joining, terminal), the rest a message as it could arrive (any bytes,
 * decoded and sanitized as chapar-tui does). The layout never crashes and
 * keeps its promises: at least one row; each row fits the width with its
 * pad; every character maps into the line and shows at most once (a
 * lam-alef ligature drops its alef); terminal mode keeps the logical
 * order unpadded; the cursor column stays inside the row. */
#include "fuzz.h"

#include "ui-tui/bidi.h"
#include "ui-tui/wtext.h"

#include <locale.h>
#include <string.h>

static void check_rows(const chp_bidi_para *p, size_t n, int width, chp_bidi_mode mode)
{
    unsigned char *seen = calloc(n + 1, 1);
    FUZZ_CHECK(seen != NULL);
    FUZZ_CHECK(p->nrows >= 1);
    for (size_t r = 0; r < p->nrows; r++) {
        const chp_bidi_row *row = &p->rows[r];
        FUZZ_CHECK(row->pad >= 0 && row->cells >= 0 && row->pad + row->cells <= width);
        FUZZ_CHECK((size_t)row->cells == chp_wt_width(row->vis, row->n));
        for (size_t i = 0; i < row->n; i++) {
            FUZZ_CHECK(row->map[i] < n);
            FUZZ_CHECK(!seen[row->map[i]]);
            seen[row->map[i]] = 1;
            if (mode == CHP_BIDI_TERMINAL)
                FUZZ_CHECK(i == 0 || row->map[i] == row->map[i - 1] + 1);
        }
        if (mode == CHP_BIDI_TERMINAL)
            FUZZ_CHECK(row->pad == 0);
    }
    free(seen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        ready = setlocale(LC_ALL, "C.UTF-8") != NULL;
        FUZZ_CHECK(ready);
    }
    if (size < 2)
        return 0;
    int width = 2 + data[0];
    static const chp_bidi_mode modes[] = {CHP_BIDI_APP, CHP_BIDI_REORDER, CHP_BIDI_TERMINAL};
    chp_bidi_mode mode = modes[data[1] % 3];
    size_t n;
    wchar_t *w = chp_wt_decode((const char *)data + 2, size - 2, &n);
    FUZZ_CHECK(w != NULL);
    chp_wt_sanitize(w, n);
    chp_bidi_para p;
    size_t from = n ? data[1] % (n + 1) : 0;
    if (chp_bidi_layout(w, n, from, n, width, mode, &p) == 0) {
        check_rows(&p, n ? n : 1, width, mode);
        int col = chp_bidi_cursor_col(&p, n / 2, n);
        FUZZ_CHECK(col >= 0 && col <= width + 2);
        chp_bidi_para_fini(&p);
    }
    free(w);
    return 0;
}
