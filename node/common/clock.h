/* clock.h - time, in one place: the monotonic clock that timers use, the
 * wall clock that envelopes carry, and a chp_clock that carries both so a
 * test or a simulation can drive time (pass NULL fields for the real ones). */
#ifndef CHP_CLOCK_H
#define CHP_CLOCK_H

#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC (never goes back, arbitrary origin). */
uint64_t chp_mono_ms(void);
/* Seconds since the Unix epoch (CLOCK_REALTIME). */
uint64_t chp_unix_s(void);

/* A clock handed to constructors; the owner keeps it alive as long as the
 * object that uses it. A NULL function means the real clock. */
typedef struct chp_clock {
    void *ctx;
    uint64_t (*mono_ms)(void *ctx);
    uint64_t (*unix_s)(void *ctx);
} chp_clock;

/* What clock c (NULL = the real one) says now. */
uint64_t chp_clock_ms(const chp_clock *c);
uint64_t chp_clock_unix(const chp_clock *c);

#endif
