/* msg_voice.h - what msg_file.c asks of msg_voice.c: the duration of a
 * voice note from the bytes this node holds, and the progress events of
 * incoming files. Internal to node/msg (msg_int.h's rules). */
#ifndef CHP_MSG_VOICE_H
#define CHP_MSG_VOICE_H

#include "node/msg/msg_int.h"

/* 1 with *ms when x is audio (.opus/.ogg/.oga/.m4a or an audio type in
 * its manifest) and its container says how long it plays, read from its
 * pieces in the store or from the file it was saved to; never from
 * anything the sender states. Reads at most a few bounded ranges
 * (proto/audio.h), so it is cheap enough to ask on demand. */
int chp_msgi_voice_ms(chp_msg *m, const struct xfile *x, uint32_t *ms);

/* " voice note M:SS" for x, or "" when it is none or says no duration. */
void chp_msgi_voice_text(chp_msg *m, const struct xfile *x, char *out, size_t cap);

/* The `file` event of incoming x (CONTROL.md): ID HAVE COUNT "in" CONV
 * SENDER NAME SIZE, once its manifest is here, every 8 pieces and at the
 * last one (always when force). */
void chp_msgi_voice_in_progress(chp_msg *m, const struct xfile *x, int force);

#endif
