/* ctl_errtext.h - chapard's error replies in the reader's language.
 *
 * The control API's error lines stay English on the wire (docs/CONTROL.md:
 * scripts and tests match them); chapar and chapar-tui translate them
 * where they show them. The daemon marks each error text N_() where it
 * makes it, so the catalogue holds them; a text made by printf has its
 * format as the msgid. chp_ctl_error_text finds the catalogue entry a
 * reply came from: the whole line as a msgid, else the daemon's format
 * (the table in ctl_errtext.c, kept equal to the daemon's by the test
 * i18n_ctl_errors) the line was printed from, whose details (names, IDs,
 * numbers, the reason after ": ") are put unchanged into the translated
 * format. A line that matches nothing comes out as it came. */
#ifndef CHP_CTL_ERRTEXT_H
#define CHP_CTL_ERRTEXT_H

#include <stddef.h>

/* The first line of english (up to '\n' or its end), translated into out
 * (cap > 0 bytes, NUL-terminated, cut at a character boundary). Returns out. Under a locale
 * without a catalogue out is the line itself, byte for byte. */
char *chp_ctl_error_text(const char *english, char *out, size_t cap);

#endif
