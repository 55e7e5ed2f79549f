/* life.c - the node's life as the TUI sees it (life.h). */
#include "ui-tui/life.h"

#include <string.h>

void chp_life_init(chp_life *l, int ours)
{
    memset(l, 0, sizeof *l);
    l->ours = ours;
    l->backoff_ms = CHP_LIFE_BACKOFF_MIN;
}

uint64_t chp_life_down(chp_life *l, uint64_t now)
{
    if (l->down)
        return 0;
    l->down = 1;
    l->restart_at = 0;
    if (!l->ours || !l->ever_answered) {
        l->answered = 0;
        return 0;
    }
    if (l->answered && now >= l->up_ms + CHP_LIFE_STABLE_MS)
        l->backoff_ms = CHP_LIFE_BACKOFF_MIN;
    l->answered = 0;
    uint64_t d = l->backoff_ms;
    l->backoff_ms = d * 2 > CHP_LIFE_BACKOFF_MAX ? CHP_LIFE_BACKOFF_MAX : d * 2;
    l->restart_at = now + d;
    return d;
}

int chp_life_restart_due(const chp_life *l, uint64_t now)
{
    return l->ours && l->down && l->restart_at && now >= l->restart_at;
}

void chp_life_started(chp_life *l, int ours)
{
    l->ours = ours;
    l->down = 0;
    l->answered = 0;
    l->restart_at = 0;
}

int chp_life_answered(chp_life *l, uint64_t now)
{
    int back = l->down || (!l->answered && l->ever_answered);
    if (!l->answered)
        l->up_ms = now;
    l->down = 0;
    l->restart_at = 0;
    l->answered = l->ever_answered = 1;
    return back;
}
