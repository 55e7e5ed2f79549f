/* msg_ctl.c - the messaging commands of the control API (CONTROL.md
 * "Messaging commands"): arguments checked, one reply line on error. */
#include "node/msg/msg_int.h"

#include "proto/crypto.h"
#include "proto/file.h"
#include "proto/hex.h"
#include "proto/id.h"
#include "proto/manifest.h"
#include "node/common/i18n.h"
#include "node/common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUTBOX_PREVIEW 60 /* bytes of each message's text in `outbox` */

/* ---- control commands (CONTROL.md "Messaging commands") ---- */

struct req {
    chp_msg *m;
    int nargs;
    const uint8_t *const *args;
    const size_t *lens;
    struct msg_buf out;
    int ok;
    int wiped; /* the identity was wiped: the host must exit */
};

static int fail(struct req *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct req *q, const char *fmt, ...)
{
    char b[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    q->out.b.len = 0;
    chp_msgi_bput(&q->out, b, strlen(b));
    q->ok = 0;
    return 0;
}

/* Argument i as a C string (NUL-free, at most cap - 1 bytes), or NULL. */
static const char *arg(struct req *q, int i, char *buf, size_t cap)
{
    if (i >= q->nargs || q->lens[i] >= cap || memchr(q->args[i], 0, q->lens[i]))
        return NULL;
    memcpy(buf, q->args[i], q->lens[i]);
    buf[q->lens[i]] = '\0';
    return buf;
}

#define BAD_NICK                                                                                   \
    N_("bad nick: 1 to %d bytes of UTF-8, no control, invisible or direction-changing "            \
       "characters, "                                                                              \
       "no space at either end, not starting with '~' or '*'")

/* A contact name: a nick's rules (no invisible or bidi look-alikes, so
 * two contacts cannot show the same; no leading '~' or '*', which mark
 * strangers and notices), not a room or an ID. */
static int name_check(const char *s)
{
    size_t l = strlen(s);
    if (chp_nick_check(s, l) != CHP_OK || s[0] == '#' || !strncmp(s, "chp1", 4) ||
        strchr(s, ' ') == s || (l && s[l - 1] == ' '))
        return CHP_E_ARG;
    return CHP_OK;
}

/* A contact by name or ID; requests only when with_requests. NULL after
 * an error was set. */
static struct contact *who(struct req *q, const char *w, int with_requests)
{
    chp_msg *m = q->m;
    struct contact *c = NULL;
    if (!strncmp(w, "chp1", 4) || !strncmp(w, "CHP1", 4)) {
        uint8_t pk[32];
        int rc = chp_id_parse(w, strlen(w), pk);
        if (rc != CHP_OK) {
            fail(q, N_("malformed ID '%.70s': %s"), w, chp_strerror(rc));
            return NULL;
        }
        c = chp_msgi_contact_by_pk(m, pk);
        if (c && c->state == CS_REQUEST && !with_requests)
            c = NULL;
    } else {
        c = chp_msgi_contact_by_name(m, w);
        for (size_t i = 0; !c && with_requests && i < m->nc; i++)
            if (m->c[i].state == CS_REQUEST && !strcmp(m->c[i].nick, w)) {
                for (size_t k = i + 1; k < m->nc; k++)
                    if (m->c[k].state == CS_REQUEST && !strcmp(m->c[k].nick, w)) {
                        fail(q, N_("more than one request from '%s': use the ID"), w);
                        return NULL;
                    }
                c = &m->c[i];
            }
    }
    if (!c)
        fail(q, N_("unknown contact '%.70s'"), w);
    return c;
}

static const char *state_name(int st)
{
    return st == CS_PENDING       ? "pending"
           : st == CS_ESTABLISHED ? "established"
           : st == CS_BLOCKED     ? "blocked"
                                  : "request";
}

static int cmd_init(struct req *q)
{
    chp_msg *m = q->m;
    char nick[CHP_NICK_MAX + 1], mode[16], pass[CHP_PASS_MAX + 1];
    if (m->state != CHP_MSG_NO_IDENTITY || chp_account_exists(m->home))
        return fail(q, N_("an identity already exists in %s"), m->home);
    if (!arg(q, 0, nick, sizeof nick) || chp_nick_check(nick, strlen(nick)) != CHP_OK)
        return fail(q, BAD_NICK, CHP_NICK_MAX);
    if (!arg(q, 1, mode, sizeof mode) || (strcmp(mode, "none") && strcmp(mode, "passphrase")))
        return fail(q, N_("mode must be passphrase or none"));
    int with_pass = !strcmp(mode, "passphrase");
    if (with_pass && (!arg(q, 2, pass, sizeof pass) || !pass[0]))
        return fail(q, N_("a passphrase is needed (or mode none)"));
    chp_identity *id = NULL;
    int rc =
        chp_account_create(m->home, with_pass ? pass : NULL, with_pass ? strlen(pass) : 0, &id);
    chp_memzero(pass, sizeof pass);
    if (rc != CHP_OK)
        return fail(q, N_("cannot create the identity: %s"), chp_strerror(rc));
    if ((rc = chp_msg_unlock(m, id)) != CHP_OK)
        return fail(q, N_("cannot open the new identity: %s"), chp_strerror(rc));
    if ((rc = chp_account_set_nick(m->store, nick, strlen(nick))) != CHP_OK)
        return fail(q, N_("cannot store the nick: %s"), chp_strerror(rc));
    snprintf(m->nick, sizeof m->nick, "%s", nick);
    char ids[CHP_ID_STR_LEN + 1];
    chp_id_encode(chp_identity_pk(m->me), ids);
    chp_msgi_bput(&q->out, ids, strlen(ids));
    chp_info("identity created");
    return 0;
}

static int cmd_unlock(struct req *q)
{
    chp_msg *m = q->m;
    char pass[CHP_PASS_MAX + 1];
    if (m->state == CHP_MSG_NO_IDENTITY)
        return fail(q, N_("no identity in %s: run chapar init"), m->home);
    if (m->state == CHP_MSG_READY)
        return fail(q, N_("the identity is already unlocked"));
    if (!arg(q, 0, pass, sizeof pass))
        return fail(q, N_("unknown command or wrong arguments"));
    chp_identity *id = NULL;
    int rc = chp_account_load(m->home, pass, strlen(pass), &id);
    chp_memzero(pass, sizeof pass);
    if (rc == CHP_E_PASSPHRASE)
        return fail(q, N_("wrong passphrase (or a damaged identity file)"));
    if (rc != CHP_OK || (rc = chp_msg_unlock(m, id)) != CHP_OK)
        return fail(q, N_("cannot unlock: %s"), chp_strerror(rc));
    char ids[CHP_ID_STR_LEN + 1];
    chp_id_encode(chp_identity_pk(m->me), ids);
    chp_msgi_bput(&q->out, ids, strlen(ids));
    return 0;
}

static int cmd_id(struct req *q)
{
    chp_msg *m = q->m;
    char ids[CHP_ID_STR_LEN + 1], fpr[CHP_FPR_STR_LEN + 1];
    chp_id_encode(chp_identity_pk(m->me), ids);
    chp_id_fingerprint(chp_identity_pk(m->me), fpr);
    chp_msgi_bprintf(&q->out, "%s\t%s\t%s", ids, m->nick, fpr);
    return 0;
}

static int cmd_nick(struct req *q)
{
    char nick[CHP_NICK_MAX + 1];
    if (!arg(q, 0, nick, sizeof nick) || chp_nick_check(nick, strlen(nick)) != CHP_OK)
        return fail(q, BAD_NICK, CHP_NICK_MAX);
    int rc = chp_account_set_nick(q->m->store, nick, strlen(nick));
    if (rc != CHP_OK)
        return fail(q, N_("cannot store the nick: %s"), chp_strerror(rc));
    snprintf(q->m->nick, sizeof q->m->nick, "%s", nick);
    chp_msgi_emit(q->m, "nick", "%s", nick);
    return 0;
}

/* Our answer to their introduction: our key, the contact is live. */
static int accept_request(struct req *q, struct contact *c, const char *name)
{
    snprintf(c->name, sizeof c->name, "%s", name);
    chp_msgi_new_handshake_key(q->m, c);
    int rc = chp_msgi_establish(q->m, c, 1);
    return rc == CHP_OK ? 0 : fail(q, N_("cannot accept: %s"), chp_strerror(rc));
}

/* contact add, once the ID and the name are checked: the contact, or NULL
 * after an error was set. */
static struct contact *add_contact(struct req *q, const uint8_t pk[32], const char *name)
{
    chp_msg *m = q->m;
    struct contact *c = chp_msgi_contact_by_pk(m, pk), *other = chp_msgi_contact_by_name(m, name);
    if (other && other != c) {
        fail(q, N_("the name '%s' is taken by another contact"), name);
        return NULL;
    }
    if (c && c->state == CS_ESTABLISHED) {
        fail(q, N_("already a contact (as %s)"), c->name);
        return NULL;
    }
    if (c && c->state == CS_REQUEST) {
        (void)accept_request(q, c, name);
        return q->ok ? c : NULL;
    }
    if (!c && !(c = chp_msgi_contact_add(m, pk))) {
        fail(q, N_("out of memory"));
        return NULL;
    }
    snprintf(c->name, sizeof c->name, "%s", name);
    if (c->state != CS_PENDING)
        chp_msgi_new_handshake_key(m, c);
    c->state = CS_PENDING;
    int rc = chp_msgi_contact_save(m, c);
    if (rc == CHP_OK)
        rc = chp_msgi_queue_intro(m, c, CHP_CT_INTRO);
    if (rc != CHP_OK) {
        fail(q, N_("cannot add the contact: %s"), chp_strerror(rc));
        return NULL;
    }
    return c;
}

static int cmd_contact_add(struct req *q)
{
    chp_msg *m = q->m;
    char ids[128], name[NAME_MAX_ + 1];
    uint8_t pk[32];
    if (!arg(q, 0, ids, sizeof ids))
        return fail(q, N_("malformed ID"));
    int rc = chp_id_parse(ids, strlen(ids), pk);
    if (rc != CHP_OK)
        return fail(q, N_("malformed ID '%.70s': %s"), ids, chp_strerror(rc));
    if (!memcmp(pk, chp_identity_pk(m->me), 32))
        return fail(q, N_("that is your own ID"));
    if (!arg(q, 1, name, sizeof name) || name_check(name) != CHP_OK)
        return fail(q,
                    N_("bad name: 1 to %u bytes of UTF-8, no control, invisible or "
                       "direction-changing characters, not starting with '#', '~', '*' or 'chp1'"),
                    NAME_MAX_);
    (void)add_contact(q, pk, name);
    return 0;
}

static int cmd_contact_accept(struct req *q)
{
    char w[128], name[NAME_MAX_ + 1];
    if (!arg(q, 0, w, sizeof w))
        return fail(q, N_("unknown command or wrong arguments"));
    struct contact *c = who(q, w, 1);
    if (!c)
        return 0;
    if (c->state != CS_REQUEST)
        return fail(q, N_("no pending request from '%.70s'"), w);
    int given = q->nargs > 1;
    const char *nm = given ? arg(q, 1, name, sizeof name) : c->nick;
    if (!nm || !nm[0] || name_check(nm) != CHP_OK)
        return fail(q, N_("give a name: contact accept %.70s NAME"), w);
    if (chp_msgi_contact_by_name(q->m, nm)) {
        char ids[CHP_ID_STR_LEN + 1];
        chp_id_encode(c->pk, ids);
        if (!given) /* their nick is a name we already use: ask, never guess */
            return fail(q,
                        N_("their nick '%s' is the name of another contact: give a name: "
                           "contact accept %s NAME"),
                        nm, ids);
        return fail(q, N_("the name '%s' is taken by another contact"), nm);
    }
    return accept_request(q, c, nm);
}

static int cmd_contact_block(struct req *q)
{
    chp_msg *m = q->m;
    char w[128];
    if (!arg(q, 0, w, sizeof w))
        return fail(q, N_("unknown command or wrong arguments"));
    uint8_t pk[32];
    struct contact *c = NULL;
    if (!strncmp(w, "chp1", 4) && chp_id_parse(w, strlen(w), pk) == CHP_OK &&
        !chp_msgi_contact_by_pk(m, pk))
        c = chp_msgi_contact_add(m, pk); /* block someone before they write */
    else
        c = who(q, w, 1);
    if (!c)
        return q->ok ? fail(q, N_("out of memory")) : 0;
    if (!c->name[0]) {
        /* a request or a stranger: list them under their nick when it is
         * free, else under their fingerprint */
        if (c->nick[0] && name_check(c->nick) == CHP_OK && !chp_msgi_contact_by_name(m, c->nick))
            snprintf(c->name, sizeof c->name, "%s", c->nick);
        else
            chp_id_fingerprint(c->pk, c->name);
    }
    c->state = CS_BLOCKED;
    chp_memzero(c->my_esk, 32);
    chp_memzero(c->base_key, 32);
    int rc = chp_msgi_contact_save(m, c);
    chp_msgi_tags_rebuild(m);
    chp_msgi_emit(m, "contact", "%s\tblocked", c->name);
    return rc == CHP_OK ? 0 : fail(q, N_("cannot block: %s"), chp_strerror(rc));
}

static int cmd_contact_remove(struct req *q)
{
    chp_msg *m = q->m;
    char w[128];
    if (!arg(q, 0, w, sizeof w))
        return fail(q, N_("unknown command or wrong arguments"));
    struct contact *c = who(q, w, 1);
    if (!c)
        return 0;
    int rc = chp_store_local_del(m->store, CHP_TABLE_CONTACTS, c->pk, 32);
    if (rc != CHP_OK && rc != CHP_E_NOT_FOUND)
        return fail(q, N_("cannot remove: %s"), chp_strerror(rc));
    chp_msgi_emit(m, "contact", "%s\tremoved", c->name);
    chp_msgi_jobs_drop(m, c->pk); /* a request still queued must not follow */
    chp_memzero(c, sizeof *c);
    size_t i = (size_t)(c - m->c);
    memmove(&m->c[i], &m->c[i + 1], (m->nc - i - 1) * sizeof *m->c);
    m->nc--;
    chp_msgi_tags_rebuild(m);
    return 0;
}

static int list_contacts(struct req *q, int requests)
{
    for (size_t i = 0; i < q->m->nc; i++) {
        const struct contact *c = &q->m->c[i];
        if ((c->state == CS_REQUEST) != requests)
            continue;
        char ids[CHP_ID_STR_LEN + 1], fpr[CHP_FPR_STR_LEN + 1];
        chp_id_encode(c->pk, ids);
        chp_id_fingerprint(c->pk, fpr);
        if (requests) {
            chp_msgi_bput(&q->out, ids, strlen(ids));
            chp_msgi_bput(&q->out, "\t", 1);
            chp_msgi_bescaped(&q->out, c->nick, strlen(c->nick));
            chp_msgi_bprintf(&q->out, "\t%s\t%llu\n", fpr, (unsigned long long)c->added);
        } else {
            chp_msgi_bescaped(&q->out, c->name, strlen(c->name));
            chp_msgi_bprintf(&q->out, "\t%s\t%s\t%s\n", ids, state_name(c->state), fpr);
        }
    }
    return 0;
}

static int cmd_contact_list(struct req *q)
{
    return list_contacts(q, 0);
}

static int cmd_contact_requests(struct req *q)
{
    return list_contacts(q, 1);
}

static int cmd_contact_show(struct req *q)
{
    char w[128];
    if (!arg(q, 0, w, sizeof w))
        return fail(q, N_("unknown command or wrong arguments"));
    const struct contact *c = who(q, w, 1);
    if (!c)
        return 0;
    char ids[CHP_ID_STR_LEN + 1], fpr[CHP_FPR_STR_LEN + 1], sn[CHP_SAFETY_STR_LEN + 1];
    chp_id_encode(c->pk, ids);
    chp_id_fingerprint(c->pk, fpr);
    chp_safety_number(chp_identity_pk(q->m->me), c->pk, sn);
    chp_msgi_bprintf(&q->out,
                     "name: %s\nnick: %s\nid: %s\nfingerprint: %s\nstate: %s\nsafety number: %s\n",
                     c->state == CS_REQUEST ? "-" : c->name, c->nick[0] ? c->nick : "-", ids, fpr,
                     state_name(c->state), sn);
    return 0;
}

static int room_arg(struct req *q, int i, char canon[CHP_ROOM_NAME_MAX + 1])
{
    char raw[256];
    size_t cl = 0;
    if (!arg(q, i, raw, sizeof raw))
        return fail(q, N_("bad room name")), -1;
    int rc = chp_room_canon(raw, strlen(raw), canon, &cl);
    if (rc != CHP_OK)
        return fail(q, N_("bad room name '%.70s': %s"), raw, chp_strerror(rc)), -1;
    return 0;
}

/* The contact a text or a file to `to` (a name or an ID) goes to; an ID
 * that is no contact yet is added, named by its fingerprint, and what is
 * sent waits for the handshake. NULL: failed, and said so. */
static const struct contact *send_to(struct req *q, const char *to)
{
    chp_msg *m = q->m;
    struct contact *c;
    uint8_t pk[32];
    if ((!strncmp(to, "chp1", 4) || !strncmp(to, "CHP1", 4)) &&
        chp_id_parse(to, strlen(to), pk) == CHP_OK && !chp_msgi_contact_by_pk(m, pk)) {
        char fpr[CHP_FPR_STR_LEN + 1];
        if (!memcmp(pk, chp_identity_pk(m->me), 32))
            return fail(q, N_("that is your own ID")), NULL;
        chp_id_fingerprint(pk, fpr);
        if (!(c = add_contact(q, pk, fpr)))
            return NULL;
    } else if (!(c = who(q, to, 1))) {
        return NULL;
    }
    if (c->state == CS_BLOCKED)
        return fail(q, N_("'%.70s' is blocked"), to), NULL;
    if (c->state == CS_REQUEST)
        return fail(q, N_("'%.70s' asked to be your contact: contact accept first"), to), NULL;
    return c;
}

static int cmd_send(struct req *q)
{
    chp_msg *m = q->m;
    char to[256];
    if (!arg(q, 0, to, sizeof to) || q->nargs != 2)
        return fail(q, N_("unknown command or wrong arguments"));
    const char *text = (const char *)q->args[1];
    size_t tl = q->lens[1];
    if (tl == 0)
        return fail(q, N_("empty message"));
    if (tl > TEXT_MAX)
        return fail(q, N_("message too long: %zu bytes (at most %u)"), tl, TEXT_MAX);
    if (!chp_utf8_valid(text, tl) || memchr(text, 0, tl))
        return fail(q, N_("message is not valid UTF-8 text"));
    struct hmsg tmp = {0};
    const struct contact *c = NULL;
    if (to[0] == '#') {
        if (room_arg(q, 0, tmp.room))
            return 0;
        const struct room *rm = chp_msgi_room_by_name(m, tmp.room);
        if (!rm)
            return fail(q, N_("not in room %s: join it first"), tmp.room);
        memcpy(tmp.rfpr, rm->fpr, sizeof tmp.rfpr);
        tmp.kind = CONV_ROOM;
    } else {
        if (!(c = send_to(q, to)))
            return 0;
        tmp.kind = CONV_DM;
        memcpy(tmp.peer, c->pk, 32);
    }
    struct hmsg *h = chp_msgi_hmsg_add(m);
    if (!h || !(h->text = malloc(tl + 1))) {
        if (h)
            m->nh--;
        return fail(q, N_("out of memory"));
    }
    char *t = h->text;
    uint64_t seq = h->seq;
    *h = tmp;
    h->text = t;
    h->seq = seq;
    memcpy(h->text, text, tl);
    h->text[tl] = '\0';
    h->textlen = tl;
    h->dir_out = 1;
    h->state = MS_QUEUED;
    h->read = 1;
    h->time = chp_msgi_now(m);
    chp_rng_fill(chp_rng_system(), h->msgid, MSGID_BYTES);
    memcpy(h->sender, chp_identity_pk(m->me), 32);
    snprintf(h->nick, sizeof h->nick, "%s", m->nick);
    int rc = chp_msgi_hmsg_save(m, h);
    if (rc != CHP_OK) {
        free(h->text);
        m->nh--;
        return fail(q, N_("cannot queue the message: %s"), chp_strerror(rc));
    }
    (void)chp_msgi_hindex_put(m, (size_t)(h - m->h));
    if (h->kind == CONV_ROOM || c->state == CS_ESTABLISHED)
        (void)chp_msgi_queue_hmsg(m, h);
    char id[2 * MSGID_BYTES + 1];
    chp_hex_encode(h->msgid, MSGID_BYTES, id);
    chp_msgi_bput(&q->out, id, strlen(id));
    chp_msgi_emit_queued(m, h);
    return 0;
}

/* join of a room name we are in already: the same key again, or a
 * refusal naming both fingerprints. A mistyped passphrase must never
 * become a second room under the name of the first, which nobody reads. */
static int join_again(struct req *q, const struct room *r, int with_pass, const uint8_t key[32])
{
    if (chp_memeq(r->key, key, 32))
        return fail(q, N_("already in %s"), r->name);
    char fpr[CHP_FPR_STR_LEN + 1];
    chp_ks_room_fingerprint(key, fpr);
    if (r->passphrase && with_pass)
        return fail(q,
                    N_("already in %s (fingerprint %s) with another passphrase (this one gives "
                       "fingerprint %s); leave it first, or check the passphrase"),
                    r->name, r->fpr, fpr);
    if (r->passphrase)
        return fail(q,
                    N_("already in %s as a passphrase room (fingerprint %s), not the public room "
                       "(fingerprint %s); leave it first, or give the passphrase"),
                    r->name, r->fpr, fpr);
    return fail(q,
                N_("already in %s as a public room (fingerprint %s), not a passphrase room "
                   "(this passphrase gives fingerprint %s); leave it first"),
                r->name, r->fpr, fpr);
}

static int cmd_join(struct req *q)
{
    char canon[CHP_ROOM_NAME_MAX + 1], pass[CHP_PASS_MAX + 1];
    if (room_arg(q, 0, canon))
        return 0;
    uint8_t key[32];
    int with_pass = q->nargs > 1, rc;
    if (with_pass) {
        if (!arg(q, 1, pass, sizeof pass) || !pass[0])
            return fail(q, N_("bad passphrase"));
        rc = chp_ks_room_passphrase(canon, strlen(canon), pass, strlen(pass), key);
        chp_memzero(pass, sizeof pass);
    } else {
        rc = chp_ks_room_public(canon, strlen(canon), key);
    }
    const struct room *old = chp_msgi_room_by_name(q->m, canon);
    if (rc == CHP_OK && old) {
        join_again(q, old, with_pass, key);
        chp_memzero(key, sizeof key);
        return 0;
    }
    if (rc == CHP_OK)
        rc = chp_msgi_room_join(q->m, canon, with_pass, key);
    chp_memzero(key, sizeof key);
    if (rc != CHP_OK)
        return fail(q, N_("cannot join %s: %s"), canon, chp_strerror(rc));
    const struct room *r = chp_msgi_room_by_name(q->m, canon);
    chp_msgi_bput(&q->out, r->fpr, strlen(r->fpr));
    chp_msgi_emit(q->m, "room", "%s\tjoined\t%s", canon, r->fpr);
    return 0;
}

static int cmd_leave(struct req *q)
{
    chp_msg *m = q->m;
    char canon[CHP_ROOM_NAME_MAX + 1];
    if (room_arg(q, 0, canon))
        return 0;
    struct room *r = chp_msgi_room_by_name(m, canon);
    if (!r)
        return fail(q, N_("not in room %s"), canon);
    int rc = chp_store_local_del(m->store, CHP_TABLE_ROOMS, canon, strlen(canon));
    if (rc != CHP_OK && rc != CHP_E_NOT_FOUND)
        return fail(q, N_("cannot leave: %s"), chp_strerror(rc));
    size_t i = (size_t)(r - m->r);
    chp_memzero(r, sizeof *r);
    memmove(&m->r[i], &m->r[i + 1], (m->nr - i - 1) * sizeof *m->r);
    m->nr--;
    chp_msgi_tags_rebuild(m);
    chp_msgi_emit(m, "room", "%s\tleft", canon);
    return 0;
}

static int cmd_rooms(struct req *q)
{
    for (size_t i = 0; i < q->m->nr; i++)
        chp_msgi_bprintf(&q->out, "%s\t%s\t%s\n", q->m->r[i].name,
                         q->m->r[i].passphrase ? "passphrase" : "public", q->m->r[i].fpr);
    return 0;
}

/* Whether h belongs to the conversation of contact c or room name. A
 * room is its key, the name only a label: once #kitchen was left and
 * joined again with another passphrase, the old room's messages (another
 * fingerprint) are not this one's. */
static int in_conv(chp_msg *m, const struct hmsg *h, const struct contact *c, const char *room)
{
    if (!room)
        return h->kind == CONV_DM && c && !memcmp(h->peer, c->pk, 32);
    if (h->kind != CONV_ROOM || strcmp(h->room, room))
        return 0;
    const struct room *rm = h->rfpr[0] ? chp_msgi_room_by_name(m, room) : NULL;
    return !rm || !strcmp(rm->fpr, h->rfpr);
}

static void conv_line(struct req *q, const char *label, const char *kind, const struct contact *c,
                      const char *room)
{
    size_t unread = 0;
    uint64_t last = 0;
    for (size_t i = 0; i < q->m->nh; i++) {
        const struct hmsg *h = &q->m->h[i];
        if (!in_conv(q->m, h, c, room))
            continue;
        unread += !h->dir_out && !h->read;
        if (h->time > last)
            last = h->time;
    }
    chp_msgi_bescaped(&q->out, label, strlen(label));
    chp_msgi_bprintf(&q->out, "\t%s\t%zu\t%llu\n", kind, unread, (unsigned long long)last);
}

static int cmd_conversations(struct req *q)
{
    for (size_t i = 0; i < q->m->nr; i++)
        conv_line(q, q->m->r[i].name, "room", NULL, q->m->r[i].name);
    for (size_t i = 0; i < q->m->nc; i++) {
        const struct contact *c = &q->m->c[i];
        if (c->state == CS_PENDING || c->state == CS_ESTABLISHED)
            conv_line(q, c->name, "contact", c, NULL);
    }
    return 0;
}

/* CONV as a contact or a room; 0 on success, else the error is set. */
static int conv_arg(struct req *q, int i, const struct contact **c,
                    char room[CHP_ROOM_NAME_MAX + 1])
{
    char w[256];
    *c = NULL;
    room[0] = '\0';
    if (!arg(q, i, w, sizeof w))
        return fail(q, N_("unknown command or wrong arguments")), -1;
    if (w[0] == '#') {
        if (room_arg(q, i, room))
            return -1;
        if (!chp_msgi_room_by_name(q->m, room))
            return fail(q, N_("not in room %s"), room), -1;
        return 0;
    }
    return (*c = who(q, w, 0)) ? 0 : -1;
}

static const char *out_state(int st)
{
    return st == MS_DELIVERED ? "delivered" : st == MS_SENT ? "sent" : "queued";
}

#define HISTORY_LIMIT_MAX 100000u /* messages one `history` answer lists at most */

static int cmd_history(struct req *q)
{
    chp_msg *m = q->m;
    const struct contact *c;
    char room[CHP_ROOM_NAME_MAX + 1], lim[16];
    if (conv_arg(q, 0, &c, room))
        return 0;
    unsigned long limit = HISTORY_LIMIT;
    if (q->nargs > 1) {
        char *end = NULL;
        if (!arg(q, 1, lim, sizeof lim) || lim[0] < '1' || lim[0] > '9' ||
            !(limit = strtoul(lim, &end, 10)) || *end || limit > HISTORY_LIMIT_MAX)
            return fail(q, N_("LIMIT must be a number from 1 to %u"), HISTORY_LIMIT_MAX);
    }
    size_t total = 0, skip;
    for (size_t i = 0; i < m->nh; i++)
        total += in_conv(m, &m->h[i], c, room[0] ? room : NULL);
    skip = total > limit ? total - limit : 0;
    for (size_t i = 0; i < m->nh; i++) {
        const struct hmsg *h = &m->h[i];
        if (!in_conv(q->m, h, c, room[0] ? room : NULL) || (skip && skip--))
            continue;
        char who_[CHP_NICK_MAX + 32], id[33];
        chp_msgi_hmsg_sender(m, h, who_, sizeof who_);
        chp_hex_encode(h->msgid, MSGID_BYTES, id);
        chp_msgi_bprintf(&q->out, "%llu\t%s\t", (unsigned long long)h->time,
                         h->dir_out ? "out" : "in");
        chp_msgi_bescaped(&q->out, who_, strlen(who_));
        chp_msgi_bprintf(&q->out, "\t%s\t%s\t", h->dir_out ? out_state(h->state) : "-", id);
        chp_msgi_bescaped(&q->out, h->text, h->textlen);
        chp_msgi_bput(&q->out, "\n", 1);
    }
    return 0;
}

static int cmd_read(struct req *q)
{
    const struct contact *c;
    char room[CHP_ROOM_NAME_MAX + 1];
    if (conv_arg(q, 0, &c, room))
        return 0;
    for (size_t i = 0; i < q->m->nh; i++) {
        struct hmsg *h = &q->m->h[i];
        if (!h->dir_out && !h->read && in_conv(q->m, h, c, room[0] ? room : NULL)) {
            h->read = 1;
            (void)chp_msgi_hmsg_save(q->m, h);
        }
    }
    return 0;
}

/* inbox [WHICH [SINCE]]: WHICH `all` (the default) marks what it returns
 * for the NEW column, `new` returns only what no earlier `new` returned
 * and marks that, a mark of its own; SINCE (unix seconds, 0 = all) keeps
 * what arrived here at or after it. In order of arrival. */
static int cmd_inbox(struct req *q)
{
    chp_msg *m = q->m;
    char which[8] = "all", since_s[24] = "0", *end = NULL;
    if ((q->nargs > 0 && !arg(q, 0, which, sizeof which)) ||
        (q->nargs > 1 && !arg(q, 1, since_s, sizeof since_s)))
        return fail(q, N_("unknown command or wrong arguments"));
    int only_new = !strcmp(which, "new");
    if (!only_new && strcmp(which, "all"))
        return fail(q, N_("inbox: WHICH must be all or new"));
    unsigned long long since = strtoull(since_s, &end, 10);
    if (!since_s[0] || *end || since_s[0] == '-')
        return fail(q, N_("inbox: SINCE must be unix seconds"));
    for (size_t i = 0; i < m->nh; i++) {
        struct hmsg *h = &m->h[i];
        uint64_t arrived = h->arrived ? h->arrived : h->time;
        if (h->dir_out || arrived < since || (only_new && h->shown_new))
            continue;
        char conv[CHP_ROOM_NAME_MAX + CHP_ID_STR_LEN + 2], who_[CHP_NICK_MAX + 32];
        chp_msgi_conv_label(m, h, conv, sizeof conv);
        chp_msgi_hmsg_sender(m, h, who_, sizeof who_);
        chp_msgi_bprintf(&q->out, "%llu\t", (unsigned long long)h->time);
        chp_msgi_bescaped(&q->out, conv, strlen(conv));
        chp_msgi_bput(&q->out, "\t", 1);
        chp_msgi_bescaped(&q->out, who_, strlen(who_));
        chp_msgi_bput(&q->out, "\t", 1);
        chp_msgi_bescaped(&q->out, h->text, h->textlen);
        chp_msgi_bprintf(&q->out, "\t%d\t%llu\n", only_new || !h->listed,
                         (unsigned long long)arrived);
        int *mark = only_new ? &h->shown_new : &h->listed;
        if (!*mark) {
            *mark = 1;
            (void)chp_msgi_hmsg_save(m, h);
        }
    }
    return 0;
}

/* Bytes of text that the outbox shows: the first OUTBOX_PREVIEW bytes,
 * cut before a character that does not fit whole. */
static size_t preview_len(const char *t, size_t len)
{
    if (len <= OUTBOX_PREVIEW)
        return len;
    size_t n = OUTBOX_PREVIEW;
    while (n > 0 && ((unsigned char)t[n] & 0xc0) == 0x80)
        n--;
    return n;
}

/* A file's outbox text: "[file] NAME (SIZE) N/M": N of its M pieces
 * out and held by a neighbour (its manifest goes first, not counted). */
static void file_progress(struct req *q, const struct xfile *x, const struct hmsg *h)
{
    uint32_t total = x->count, unconfirmed = 0;
    for (size_t i = 0; i < q->m->nout; i++)
        unconfirmed += !memcmp(q->m->out[i].msgid, h->msgid, MSGID_BYTES);
    uint32_t out = x->sent ? x->sent - 1 : 0;
    uint32_t sent = out > unconfirmed ? out - unconfirmed : 0;
    if (h->state >= MS_SENT)
        sent = total;
    const char *sp = strstr(h->text, " (");
    const char *end = sp ? strchr(sp, ')') : NULL;
    size_t tl = end ? (size_t)(end + 1 - h->text) : h->textlen;
    chp_msgi_bescaped(&q->out, h->text, tl);
    chp_msgi_bprintf(&q->out, " %u/%u\n", sent, total);
}

static int cmd_outbox(struct req *q)
{
    chp_msg *m = q->m;
    for (size_t i = 0; i < m->nh; i++) {
        const struct hmsg *h = &m->h[i];
        if (!h->dir_out)
            continue;
        char conv[CHP_ROOM_NAME_MAX + CHP_ID_STR_LEN + 2], id[33];
        chp_msgi_conv_label(m, h, conv, sizeof conv);
        chp_hex_encode(h->msgid, MSGID_BYTES, id);
        chp_msgi_bprintf(&q->out, "%s\t", id);
        chp_msgi_bescaped(&q->out, conv, strlen(conv));
        const struct xfile *x = chp_msgi_file_out(m, h->msgid);
        /* a file whose manifest or pieces went out: "sending" until all did */
        const char *st = x && h->state == MS_QUEUED && x->sent ? "sending" : out_state(h->state);
        chp_msgi_bprintf(&q->out, "\t%s\t%llu\t", st, (unsigned long long)h->time);
        if (x) {
            file_progress(q, x, h);
            continue;
        }
        size_t pl = preview_len(h->text, h->textlen);
        chp_msgi_bescaped(&q->out, h->text, pl);
        chp_msgi_bprintf(&q->out, "%s\n", pl < h->textlen ? "\xe2\x80\xa6" : "");
    }
    return 0;
}

/* send-file TO PATH [CAPTION]: TO a contact, a user ID or #room; PATH absolute. */
static int cmd_send_file(struct req *q)
{
    const struct contact *c = NULL;
    char room[CHP_ROOM_NAME_MAX + 1], path[4096], cap[CHP_FILE_CAPTION_MAX + 1] = "", err[512],
                                                                             to[256];
    if (!arg(q, 0, to, sizeof to))
        return fail(q, N_("unknown command or wrong arguments"));
    if (!arg(q, 1, path, sizeof path) || path[0] != '/')
        return fail(q, N_("send-file: PATH must be an absolute file name"));
    if (q->nargs > 2 && (!arg(q, 2, cap, sizeof cap) || !chp_utf8_valid(cap, strlen(cap))))
        return fail(q, N_("send-file: the caption must be UTF-8 of at most %u bytes"),
                    CHP_FILE_CAPTION_MAX);
    room[0] = '\0'; /* an ID that is no contact yet is added, as `send` does */
    if (to[0] == '#' && conv_arg(q, 0, &c, room))
        return 0;
    if (to[0] != '#' && !(c = send_to(q, to)))
        return 0;
    if (c && c->state != CS_ESTABLISHED && c->state != CS_PENDING)
        return fail(q, N_("cannot send to %s: not an established contact"), c->name);
    uint8_t id[16];
    if (chp_msgi_file_send(q->m, c, room[0] ? room : NULL, path, cap, id, err, sizeof err))
        return fail(q, "%s", err);
    char hex[33];
    chp_hex_encode(id, 16, hex);
    chp_msgi_bput(&q->out, hex, 32);
    return 0;
}

static int cmd_files(struct req *q)
{
    chp_msgi_files_list(q->m, &q->out);
    return 0;
}

/* file-save ID PATH */
static int cmd_file_save(struct req *q)
{
    char id[40], path[4096], err[512];
    if (!arg(q, 0, id, sizeof id) || !arg(q, 1, path, sizeof path) || path[0] != '/')
        return fail(q, N_("file-save: ID and an absolute PATH"));
    if (chp_msgi_file_save(q->m, id, path, err, sizeof err) != CHP_OK)
        return fail(q, "%s", err);
    chp_msgi_bput(&q->out, path, strlen(path));
    return 0;
}

static int cmd_wipe(struct req *q)
{
    char yes[8];
    if (!arg(q, 0, yes, sizeof yes) || strcmp(yes, "yes"))
        return fail(q, N_("wipe needs the argument yes"));
    chp_msgi_forget_all(q->m);
    q->m->state = CHP_MSG_NO_IDENTITY;
    q->wiped = 1;
    chp_info("wipe requested: destroying the identity and all data");
    return 0;
}

/* app-sign BODY: the app manifest body (proto/manifest.h, no signature
 * line) signed with the identity key, returned whole. Only a well-formed
 * body naming this user as signer is signed, behind the manifest's own
 * context: the command signs manifests and nothing else. */
static int cmd_app_sign(struct req *q)
{
    chp_manifest mf;
    int rc = chp_manifest_parse(q->args[0], q->lens[0], 0, &mf);
    if (rc != CHP_OK)
        return fail(q, N_("not an unsigned app manifest: %s"), chp_strerror(rc));
    if (memcmp(mf.signer, chp_identity_pk(q->m->me), 32))
        return fail(q, N_("the manifest names another signer than this identity"));
    chp_buf msg = {0};
    uint8_t sig[64];
    char hex[129];
    if (chp_manifest_sig_msg(q->args[0], q->lens[0], &msg) != CHP_OK) {
        chp_buf_free(&msg);
        return fail(q, N_("out of memory"));
    }
    chp_identity_sign(q->m->me, msg.p, msg.len, sig);
    chp_buf_free(&msg);
    chp_hex_encode(sig, 64, hex);
    chp_msgi_bput(&q->out, (const char *)q->args[0], q->lens[0]);
    chp_msgi_bprintf(&q->out, "# signature %s\n", hex);
    return 0;
}

/* A messaging command, as tmux's cmd_entry: its name, how many arguments
 * it takes, whether it needs an unlocked identity, and the function that
 * runs it (which answers through q). Adding a command is one row here and
 * one function above; the order is that of chp_msg_command. */
struct cmd_entry {
    const char *name;
    int min, max; /* arguments */
    int need_ready;
    int (*exec)(struct req *q);
};

static const struct cmd_entry cmds[] = {
    {"init", 2, 3, 0, cmd_init},
    {"unlock", 1, 1, 0, cmd_unlock},
    {"id", 0, 0, 1, cmd_id},
    {"nick", 1, 1, 1, cmd_nick},
    {"contact-add", 2, 2, 1, cmd_contact_add},
    {"contact-accept", 1, 2, 1, cmd_contact_accept},
    {"contact-block", 1, 1, 1, cmd_contact_block},
    {"contact-remove", 1, 1, 1, cmd_contact_remove},
    {"contact-list", 0, 0, 1, cmd_contact_list},
    {"contact-requests", 0, 0, 1, cmd_contact_requests},
    {"contact-show", 1, 1, 1, cmd_contact_show},
    {"send", 2, 2, 1, cmd_send},
    {"join", 1, 2, 1, cmd_join},
    {"leave", 1, 1, 1, cmd_leave},
    {"rooms", 0, 0, 1, cmd_rooms},
    {"conversations", 0, 0, 1, cmd_conversations},
    {"history", 1, 2, 1, cmd_history},
    {"read", 1, 1, 1, cmd_read},
    {"inbox", 0, 2, 1, cmd_inbox},
    {"outbox", 0, 0, 1, cmd_outbox},
    {"send-file", 2, 3, 1, cmd_send_file},
    {"files", 0, 0, 1, cmd_files},
    {"file-save", 2, 2, 1, cmd_file_save},
    {"wipe", 1, 1, 0, cmd_wipe},
    {"app-sign", 1, 1, 1, cmd_app_sign},
};

const char *chp_msg_command(size_t i)
{
    return i < sizeof cmds / sizeof *cmds ? cmds[i].name : NULL;
}

static const struct cmd_entry *cmd_find(const char *name)
{
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++)
        if (!strcmp(name, cmds[i].name))
            return &cmds[i];
    return NULL;
}

int chp_msg_control(chp_msg *m, const char *cmd, int nargs, const uint8_t *const *args,
                    const size_t *arglens, int *ok, char **out, size_t *outlen, int *wiped)
{
    const struct cmd_entry *c = cmd_find(cmd);
    if (!c)
        return 0;
    struct req q = {.m = m, .nargs = nargs, .args = args, .lens = arglens, .ok = 1};
    chp_msgi_bput(&q.out, "", 0);
    if (nargs < c->min || nargs > c->max)
        fail(&q, "unknown command or wrong arguments");
    else if (c->need_ready && m->state == CHP_MSG_NO_IDENTITY)
        fail(&q, "no identity in %s: run chapar init", m->home);
    else if (c->need_ready && m->state == CHP_MSG_LOCKED)
        fail(&q, "identity locked: run chapar unlock");
    else
        c->exec(&q);
    *wiped = q.wiped;
    if (q.out.oom) {
        chp_buf_free(&q.out.b);
        *out = NULL;
        *outlen = 0;
        *ok = 0;
        return 1;
    }
    *ok = q.ok;
    *out = (char *)q.out.b.p;
    *outlen = q.out.b.len;
    return 1;
}
