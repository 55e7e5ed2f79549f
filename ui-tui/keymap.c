/* keymap.c - chapar-tui's key bindings (keymap.h). */
#include "ui-tui/wcurses.h" /* first: it sets feature macros */

#include "ui-tui/keymap.h"

void chp_keymap_setup(void)
{
    keypad(stdscr, TRUE);
    /* Home/End as other terminals send them: TERM is often wrong (xterm
     * inside tmux or screen), and a key typed as "[4~" confuses people. */
    static const struct {
        const char *seq;
        int key;
    } extra[] = {{"\033[1~", KEY_HOME},  {"\033[7~", KEY_HOME}, {"\033[H", KEY_HOME},
                 {"\033OH", KEY_HOME},   {"\033[4~", KEY_END},  {"\033[8~", KEY_END},
                 {"\033[F", KEY_END},    {"\033OF", KEY_END},   {"\033[3~", KEY_DC},
                 {"\033[5~", KEY_PPAGE}, {"\033[6~", KEY_NPAGE}};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
        if (key_defined(extra[i].seq) == 0)
            define_key(extra[i].seq, extra[i].key);
    nodelay(stdscr, TRUE);
}

/* A function key (KEY_ code). */
static void on_code(chp_keymap *ks, chp_app *a, wint_t k)
{
    switch (k) {
    case KEY_LEFT:
        chp_input_left(a->in);
        break;
    case KEY_RIGHT:
        chp_input_right(a->in);
        break;
    case KEY_HOME:
        chp_input_home(a->in);
        break;
    case KEY_END:
        chp_input_end(a->in);
        break;
    case KEY_BACKSPACE:
        chp_input_backspace(a->in);
        break;
    case KEY_DC:
        chp_input_delete(a->in);
        break;
    case KEY_UP:
        chp_input_history_prev(a->in);
        break;
    case KEY_DOWN:
        chp_input_history_next(a->in);
        break;
    case KEY_PPAGE:
        chp_model_scroll(a->m, LINES / 2, (size_t)1 << 20);
        break;
    case KEY_NPAGE:
        chp_model_scroll(a->m, -(LINES / 2), (size_t)1 << 20);
        break;
    case KEY_ENTER:
        chp_app_submit(a);
        break;
    case KEY_RESIZE:
        ks->resized = 1;
        break;
    default:
        break;
    }
}

/* Ctrl keys that edit the input line; 0 when k is none of them. */
static int on_edit(chp_app *a, wint_t k)
{
    switch (k) {
    case 127:
    case 8:
        chp_input_backspace(a->in);
        return 1;
    case 1:
        chp_input_home(a->in);
        return 1;
    case 5:
        chp_input_end(a->in);
        return 1;
    case 2:
        chp_input_left(a->in);
        return 1;
    case 6:
        chp_input_right(a->in);
        return 1;
    case 4:
        chp_input_delete(a->in);
        return 1;
    case 23:
        chp_input_word_delete(a->in);
        return 1;
    case 21:
        chp_input_kill_start(a->in);
        return 1;
    case 11:
        chp_input_kill_end(a->in);
        return 1;
    default:
        return 0;
    }
}

/* A character: a control key, or text typed. */
static void on_char(chp_keymap *ks, chp_app *a, wint_t k)
{
    if (on_edit(a, k))
        return;
    switch (k) {
    case 27:
        ks->meta = 1;
        return;
    case L'\r':
    case L'\n':
        chp_app_submit(a);
        return;
    case L'\t':
        chp_app_complete(a);
        return;
    case 14: /* Ctrl-N */
        chp_app_cycle(a, 1);
        return;
    case 16: /* Ctrl-P */
        chp_app_cycle(a, -1);
        return;
    case 12: /* Ctrl-L */
        clearok(curscr, TRUE);
        return;
    case 3: /* Ctrl-C */
        a->quit = 1;
        return;
    default:
        chp_app_type(a, (wchar_t)k);
    }
}

void chp_keymap_on(chp_keymap *ks, chp_app *a, int type, wint_t k)
{
    int meta = ks->meta;
    ks->meta = 0;
    a->dirty = 1;
    if (type == KEY_CODE_YES || k != L'\t')
        a->hint[0] = '\0'; /* Tab's list of names stays until the next key */
    if (type == KEY_CODE_YES)
        on_code(ks, a, k);
    else if (meta && k >= L'0' && k <= L'9')
        chp_app_select(a, k == L'0' ? 9 : (int)(k - L'1'));
    else
        on_char(ks, a, k);
}
