/* clock.c - the monotonic and wall clocks (see clock.h). */
#include "node/common/clock.h"

#include <time.h>

uint64_t chp_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t chp_unix_s(void)
{
    return (uint64_t)time(NULL);
}

uint64_t chp_clock_ms(const chp_clock *c)
{
    return c && c->mono_ms ? c->mono_ms(c->ctx) : chp_mono_ms();
}

uint64_t chp_clock_unix(const chp_clock *c)
{
    return c && c->unix_s ? c->unix_s(c->ctx) : chp_unix_s();
}
