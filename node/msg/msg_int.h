/* msg_int.h - the messaging layer's shared internals: its records,
 * limits and the functions its files call across. Each file calls only
 * the ones listed before its own (msg.c says the order); nothing calls
 * upward, so no two files call each other. Nothing outside node/msg/
 * includes it but the tests and fuzzers of the layer. Its functions are
 * chp_msgi_* (chp_msg_* is the public API of msg.h), the sealer's
 * chp_sealer_*. */
#ifndef CHP_MSG_INT_H
#define CHP_MSG_INT_H

#include "node/msg/account.h"
#include "proto/buf.h"
#include "proto/envelope.h"
#include "proto/id.h"
#include "proto/keys.h"
#include "node/msg/msg.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TEXT_MAX    65536u
#define NAME_MAX_   32u
#define MSGID_BYTES 16u
/* One lifetime for every envelope a user node makes (DM, receipt, room
 * post, contact request, chunk): a relay must not tell them apart by it
 * (THREATS.md). A pending contact request is renewed at half of it. */
#define TTL_ENV       (3u * 86400u)
#define TAG_WINDOW    64u /* tags per contact and epoch computed ahead */
#define CHUNK_HDR     (MSGID_BYTES + 1u + 2u + 2u)
#define CHUNK_DATA    (CHP_PAYLOAD_MAX - CHUNK_HDR)
#define CHUNKS_MAX    ((TEXT_MAX + NAME_MAX_ + 1u + CHUNK_DATA - 1u) / CHUNK_DATA)
#define RECEIPT_MAX   64u
#define REC_VERSION   2u /* 2: messages keep their arrival order */
#define HISTORY_LIMIT 200u
/* Room lines of others kept per room (own lines and DMs are never
 * evicted): at most ROOM_KEEP_LINES, and at most 1/16 of the quota
 * (ROOM_KEEP_MIN at least) counting each as its text + HREC_COST; beyond
 * that the oldest lines of strangers go first, then those of contacts. */
#define ROOM_KEEP_LINES 1000u
#define ROOM_KEEP_MIN   (64u << 10)
#define HREC_COST       160u /* a history record's bytes beside its text */
#define REQUESTS_MAX    256u
/* Senders as replies show them (CONTROL.md): anyone who is not a contact
 * is "~nick (fingerprint)", a line of the node's own (a nick change) has
 * sender "*"; no contact name or nick may start with either. */
#define STRANGER_MARK '~'
#define NOTICE_SENDER "*"

enum contact_state { CS_PENDING = 1, CS_ESTABLISHED = 2, CS_BLOCKED = 3, CS_REQUEST = 4 };
enum conv_kind { CONV_DM = 1, CONV_ROOM = 2 };
enum msg_state { MS_NONE = 0, MS_QUEUED = 1, MS_SENT = 2, MS_DELIVERED = 3 };
enum tag_kind { TK_INTRO = 1, TK_CONTACT = 2, TK_ROOM = 3 };
enum job_kind { JOB_DM = 1, JOB_ROOM = 2, JOB_INTRO = 3 };

/* Epochs a contact's envelopes may come from (the table's lo .. now + 1):
 * one slot each, e % RECV_SLOTS, for the highest seq seen in it. */
#define RECV_SLOTS (CHP_EPOCH_KEEP + 1u)
#define RECV_MAX   (1u << 24) /* a seq past this is not believed from disk */

struct contact {
    uint8_t pk[32];
    int state;
    char name[NAME_MAX_ + 1];
    char nick[CHP_NICK_MAX + 1]; /* the nick they gave */
    uint8_t my_esk[32], my_epk[32];
    uint64_t my_time; /* when our handshake key was made */
    uint8_t their_epk[32];
    uint64_t their_time;  /* created time of their handshake envelope */
    uint64_t base_epoch;  /* oldest epoch whose key we still hold */
    uint8_t base_key[32]; /* its chain key; earlier ones are deleted */
    uint64_t send_epoch;
    uint32_t send_seq;
    uint64_t added;
    /* What the tag table must hold of theirs after a rebuild (restart,
     * unlock, a room or contact change, the epoch's turn): 1 + the highest
     * seq seen in epoch recv_epoch[s] (0: none), so their next envelopes
     * are recognised after more than TAG_WINDOW (a file) came. Saved with
     * the record; recv_dirty until then. */
    uint64_t recv_epoch[RECV_SLOTS];
    uint32_t recv_next[RECV_SLOTS];
    int recv_dirty;
};

struct room {
    char name[CHP_ROOM_NAME_MAX + 1]; /* canonical, with '#' */
    int passphrase;
    uint8_t key[32];
    char fpr[CHP_FPR_STR_LEN + 1]; /* chp_ks_room_fingerprint of key */
};

/* One message, in or out. conv: a contact's key or a room name. */
struct hmsg {
    uint8_t msgid[MSGID_BYTES];
    int dir_out;
    int state;     /* out: enum msg_state */
    int published; /* out: every envelope handed to the node */
    int listed;    /* in: returned by `inbox` */
    int shown_new; /* in: returned by `inbox new` (a mark of its own) */
    int read;
    int notice;       /* in, room: a line of ours, not a post (a nick change) */
    uint64_t time;    /* the sender's (out: when written) */
    uint64_t arrived; /* unix time it arrived or was written here; 0: unknown */
    int kind;         /* enum conv_kind */
    uint8_t peer[32];
    char room[CHP_ROOM_NAME_MAX + 1];
    char rfpr[CHP_FPR_STR_LEN + 1]; /* room: fingerprint of its key then ("" = unknown) */
    uint8_t sender[32];
    char nick[CHP_NICK_MAX + 1];
    char *text;
    size_t textlen;
    uint64_t seq; /* order of arrival here: ties of time keep it */
};

struct tagent {
    uint8_t tag[16];
    uint8_t kind; /* 0 = empty */
    uint32_t idx; /* contact or room index */
    uint64_t epoch;
    uint32_t seq;
};

/* An envelope to build, one per chp_msg_take (proof of work is costly). */
struct job {
    int kind;
    uint8_t to[32];                   /* contact key (DM, intro) */
    char room[CHP_ROOM_NAME_MAX + 1]; /* JOB_ROOM */
    uint8_t type;                     /* content type */
    uint8_t *payload;
    size_t len;
    uint8_t msgid[MSGID_BYTES]; /* message whose state follows, or zero */
    int last;                   /* the message's last envelope */
    uint64_t created;           /* envelope time; 0: when it is sealed */
    int paced;                  /* own room post let through by msg_flood.c */
    int has_hash;               /* hash is BLAKE2b-256(payload), made already */
    uint8_t hash[32];           /* (a file piece's digest, msg_file.c) */
    struct job *next;
};

/* The nick a sender last posted under in a room (its post's time), to
 * announce a change. Rebuilt from the history at unlock. */
struct seen {
    int used; /* a slot of the hash table (chp_msg.seen) in use */
    uint8_t pk[32];
    char room[CHP_ROOM_NAME_MAX + 1];
    char nick[CHP_NICK_MAX + 1];
    uint64_t time;
};

/* An own envelope no neighbour has confirmed holding yet (QUERY/HELD,
 * PROTOCOL.md §15): its message is "sent" once none of its envelopes is
 * left here. Persisted in CHP_TABLE_OUTBOX, so a restart forgets none. */
struct outenv {
    uint8_t id[32];
    uint8_t msgid[MSGID_BYTES];
    uint64_t added; /* when it was sealed (or loaded): pruned only long after */
};

/* Pieces of a chunked message waiting for the rest. */
struct partial {
    uint8_t msgid[MSGID_BYTES];
    uint8_t sender[32];
    uint8_t type;
    uint16_t count, have;
    uint64_t created;
    int kind;
    uint32_t idx;
    uint8_t *data[CHUNKS_MAX];
    size_t len[CHUNKS_MAX];
};

/* One envelope being sealed: prepared on the loop's thread (keys, tag,
 * header), sealed on the worker's (msg_seal.c). */
struct seal {
    chp_env_seal_args a; /* points into this struct and into job */
    uint8_t tag[16], key[32], epk[32];
    const chp_identity *me;
    struct job *job; /* owns the payload; says which message this is */
    uint8_t *out;
    size_t cap, outlen;
    uint8_t id[32]; /* the sealed envelope's id (chp_envelope_seal_id) */
    int rc;
    struct seal *next;
};

struct sealer {
    int inline_only, running, stop, busy, efd;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct seal *todo, *todo_tail, *done, *done_tail;
};

/* A file in or out (msg_file.c, PROTOCOL.md §18.8). Outgoing: its
 * pieces wait in CHP_TABLE_PIECES and are fed to the job queue a few at
 * a time. Incoming: pieces are kept there until the file is complete,
 * verified and saved. */
enum file_state { FS_INCOMING = 1, FS_COMPLETE = 2, FS_SAVED = 3, FS_REFUSED = 4 };
struct xfile {
    uint8_t id[16];
    int out;
    uint8_t sender[32];
    int kind; /* enum conv_kind */
    uint8_t peer[32];
    char room[CHP_ROOM_NAME_MAX + 1];
    int state;
    int have_manifest; /* in: its manifest arrived */
    uint64_t size;
    uint32_t count;
    uint8_t hash[32];
    char name[128]; /* sanitised */
    char mime[128];
    char *caption;
    char *path; /* FS_SAVED: where */
    uint64_t time;
    uint32_t next, sent, inflight; /* out: fed, published (manifest first), in the queue */
    uint32_t have, nbits;          /* in: pieces held; bits[] covers nbits pieces */
    int unsaved;                   /* in, from a contact: its save directory failed */
    uint8_t *bits;
    /* in: the held pieces' digests (32 bytes each, ndg pieces' room), as
     * their signatures were verified, and their data bytes (got): the
     * file's hash is checked from them, without reading it back. dg_off:
     * not all known (a restart, a failed write, pieces far ahead of the
     * manifest), so the file is read back instead. */
    uint8_t *dg;
    uint32_t ndg;
    uint32_t dg_short; /* the index + 1 of the one piece shorter than CHP_FILE_PIECE */
    int dg_off;
    uint64_t got;
};

/* What msg_out.c asks of msg_file.c (set at chp_msg_new). feed: before
 * jobs are prepared; published: j went out; requeue: h is a file (1)
 * and was handled. */
struct file_hooks {
    void (*feed)(chp_msg *m);
    void (*published)(chp_msg *m, const struct job *j);
    int (*requeue)(chp_msg *m, const struct hmsg *h);
};

/* An envelope not recognised when it came (msg_in.c). */
#define MISS_MAX 4096u
struct miss {
    uint8_t id[32], tag[16];
    int used;
};

/* Room posts the refuse hook opened and found signed (msg_in.c), in the
 * order it saw them, which is the order they are stored and examined in:
 * when one is examined after the store commit it is opened again without
 * its signature being verified again. A ring of OPENED_MAX: what a store
 * batch and the next hold at most (1024 pieces, 16 MiB). */
#define OPENED_MAX 1024u
struct opened {
    uint8_t id[32];     /* the envelope's id: BLAKE2b of all its bytes */
    uint8_t digest[32]; /* its payload's, which the signature commits to */
    uint8_t kfp[16];    /* BLAKE2b of the key it was opened with */
    uint8_t live;       /* not examined yet */
};

struct chp_msg {
    chp_store *store;
    chp_msg_host host;
    char home[4096];
    chp_identity *me;
    int state;
    char nick[CHP_NICK_MAX + 1];
    struct contact *c;
    size_t nc, capc;
    struct room *r;
    size_t nr, capr;
    struct hmsg *h;
    size_t nh, caph;
    struct seen *seen;       /* hash table, capseen a power of two */
    struct msg_flood *flood; /* msg_flood.c: posters' rates, NULL until a post */
    size_t nseen, capseen;
    struct tagent *tags;
    size_t tagcap, ntags;
    uint64_t tags_epoch; /* epoch the table was built for */
    struct job *jobs, *jobs_tail;
    struct job *paced, *paced_tail; /* own room posts waiting for their rate */
    struct outenv *out;             /* own envelopes not yet held by a neighbour */
    size_t nout, capout;
    size_t out_rot;          /* where the next chp_msg_unconfirmed starts */
    uint64_t out_pruned;     /* when out[] was last checked against the store */
    uint64_t examined;       /* store sequence of the last envelope examined */
    uint64_t examined_saved; /* the value last written to CHP_TABLE_CONFIG */
    struct partial *parts[16];
    uint64_t next_seq; /* for the next struct hmsg */
    uint32_t *hidx;    /* history index by message id: position + 1, 0 = free */
    size_t hidxcap, nhidx;
    uint8_t hidx_key[32]; /* keys the index hash: senders choose message ids */
    uint64_t hs_time;     /* time of our newest handshake key: each new one is later */
    struct sealer sealer;
    struct xfile *files;
    size_t nfiles, capfiles;
    struct file_hooks fh;
    struct fpend *pend; /* received pieces not yet written (msg_file.c) */
    size_t npend;
    struct miss *miss; /* ring of MISS_MAX */
    size_t miss_pos;
    struct opened *opened;        /* ring of OPENED_MAX, NULL until a room post */
    size_t opened_head, opened_n; /* next slot written; live ones before it */
    int tags_grew;                /* a contact's tag window moved: look at misses again */
    int save_dir_warned;          /* the save directory could not be made: logged once */
    int files_only;               /* msg_in.c: examine only file manifests and pieces */
};

/* A control reply or an event body being written: text in b.p[0..b.len),
 * NUL-terminated once anything was put; zero-initialise it. oom: an append
 * failed, the text is incomplete (and later appends are dropped). */
struct msg_buf {
    chp_buf b;
    int oom;
};

/* msg_rec.c: the clock, events, small helpers. */
uint64_t chp_msgi_now(const chp_msg *m);
void chp_msgi_emit(chp_msg *m, const char *topic, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void chp_msgi_copy_str(char *dst, size_t cap, const void *src, size_t len);
void chp_msgi_bput(struct msg_buf *b, const char *s, size_t n);
void chp_msgi_bprintf(struct msg_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void chp_msgi_bescaped(struct msg_buf *b, const char *s, size_t n);
/* msg_rec.c: records in the encrypted local tables (write-through). */
/* A number kept under name in CHP_TABLE_CONFIG (8 bytes, big-endian); 0
 * when there is none (or it is damaged). */
uint64_t chp_msgi_config_u64(chp_msg *m, const char *name);
int chp_msgi_config_put_u64(chp_msg *m, const char *name, uint64_t x);
int chp_msgi_contact_save(chp_msg *m, const struct contact *c);
int chp_msgi_contact_load(struct contact *c, const uint8_t *key, const uint8_t *v, size_t vl);
int chp_msgi_room_save(chp_msg *m, const struct room *rm);
int chp_msgi_hmsg_key(const struct hmsg *h, uint8_t key[MSGID_BYTES + 33]);
int chp_msgi_hmsg_save(chp_msg *m, const struct hmsg *h);
int chp_msgi_hmsg_load(struct hmsg *h, const uint8_t *key, size_t kl_, const uint8_t *v, size_t vl);
/* msg_rec.c: lookups (NULL when absent) and display labels. */
struct contact *chp_msgi_contact_by_pk(chp_msg *m, const uint8_t pk[32]);
/* 1 if pk posted in room before (the nick table of msg_rec.c). */
int chp_msgi_seen_has(chp_msg *m, const char *room, const uint8_t pk[32]);
/* The nick pk last posted under in room ("" when none is known); valid
 * until the next post is noted. */
const char *chp_msgi_seen_nick(chp_msg *m, const char *room, const uint8_t pk[32]);
/* msg_flood.c: 1 if a post (or chunk, or file manifest) of type by sender
 * in room is over the poster's rate, or a new poster beyond what src may
 * bring (chp_msg_refuse), charging it otherwise; 0 for contacts, us and
 * other types. */
int chp_msgi_flood_refuse(chp_msg *m, const char *room, const uint8_t sender[32], uint8_t type,
                          const uint8_t *src);
void chp_msgi_flood_free(chp_msg *m);
/* Own room posts are paced a little under what strangers' nodes allow, so
 * that a fast typist's posts come late rather than refused: 1 when job j
 * must wait (then it is on m->paced); chp_msgi_pace_release moves what may
 * go now back to m->jobs (from the tick). */
int chp_msgi_pace_hold(chp_msg *m, struct job *j);
void chp_msgi_pace_release(chp_msg *m);
/* msg_out.c */
void chp_msgi_job_free(struct job *j);
struct contact *chp_msgi_contact_by_name(chp_msg *m, const char *name);
struct room *chp_msgi_room_by_name(chp_msg *m, const char *canon);
/* Adds history entry pos to the message-id index (after it is saved);
 * rebuild after reordering or loading. */
int chp_msgi_hindex_put(chp_msg *m, size_t pos);
void chp_msgi_hindex_rebuild(chp_msg *m);
struct hmsg *chp_msgi_hmsg_find(chp_msg *m, const uint8_t msgid[MSGID_BYTES], int dir_out,
                                const uint8_t sender[32]);
/* The contact pk shows as (by its name), or NULL: pk is a stranger. */
const struct contact *chp_msgi_named_contact(chp_msg *m, const uint8_t pk[32]);
void chp_msgi_sender_label(chp_msg *m, const uint8_t pk[32], const char *nick, char *out,
                           size_t cap);
/* The SENDER of history entry h: chp_msgi_sender_label, or "*" for a notice. */
void chp_msgi_hmsg_sender(chp_msg *m, const struct hmsg *h, char *out, size_t cap);
/* msg_rec.c: the last nick seen per (room, sender). Records that pk
 * posted in room as nick at time t; returns 1 when this is a newer post
 * under another nick than the last one seen (old gets that nick), else 0.
 * Posts arrive in any order (sync fills gaps late): only a later post
 * changes the nick. Rebuild after the history is loaded. */
int chp_msgi_seen_note(chp_msg *m, const char *room, const uint8_t pk[32], const char *nick,
                       uint64_t t, char old[CHP_NICK_MAX + 1]);
void chp_msgi_seen_rebuild(chp_msg *m);
void chp_msgi_conv_label(chp_msg *m, const struct hmsg *h, char *out, size_t cap);
/* x's conversation (`files`' CONVERSATION) into conv and, when who is not
 * NULL, its sender as `files` shows it (a stranger in a room under the nick
 * of their posts) into who. */
void chp_msgi_file_labels(chp_msg *m, const struct xfile *x, char *conv, size_t ccap, char *who,
                          size_t wcap);
/* msg_rec.c: the "message" event of history entry h: the whole line, so
 * a client need not reload the conversation (CONTROL.md, Events). */
void chp_msgi_emit_message(chp_msg *m, const struct hmsg *h);
/* The "queued" event of own history entry h, so every client of this
 * node (a second window) shows it. */
void chp_msgi_emit_queued(chp_msg *m, const struct hmsg *h);
/* msg_rec.c: a new, zeroed history entry at the end of m->h (its seq
 * and arrival time set), or NULL without memory. m->h may move. */
struct hmsg *chp_msgi_hmsg_add(chp_msg *m);

/* msg_tags.c: the table of the tags we may receive. */
/* Rebuilds the whole table: after unlock, contact and room changes, and
 * when the epoch turns. */
void chp_msgi_tags_rebuild(chp_msg *m);
/* The entry of tag, or NULL; valid until the table changes. Inline: every
 * envelope a node stores asks it, and nearly all are not ours. */
static inline const struct tagent *chp_msgi_tag_find(const chp_msg *m, const uint8_t tag[16])
{
    if (!m->tagcap)
        return NULL;
    uint64_t v;
    memcpy(&v, tag, 8); /* tags are pseudorandom */
    for (size_t i = (size_t)v & (m->tagcap - 1), k = 0; k < m->tagcap;
         k++, i = (i + 1) & (m->tagcap - 1)) {
        if (!m->tags[i].kind)
            return NULL;
        if (!memcmp(m->tags[i].tag, tag, 16))
            return &m->tags[i];
    }
    return NULL;
}
/* Contact idx's tag of epoch e at seq was used: the next TAG_WINDOW tags
 * go into the table, and the contact remembers seq for the next rebuild. */
void chp_msgi_tags_extend(chp_msg *m, uint32_t idx, uint64_t e, uint32_t seq);
/* The same for the next `ahead` tags (at least TAG_WINDOW): a file's
 * manifest at seq announces its pieces after it, and sync may bring
 * them in any order (msg_file.c). */
void chp_msgi_tags_extend_by(chp_msg *m, uint32_t idx, uint64_t e, uint32_t seq, uint32_t ahead);
/* 1 + the highest seq seen from c in epoch e (0: none seen). */
uint32_t chp_msgi_recv_next(const struct contact *c, uint64_t e);
/* Saves every contact whose recv_next moved since its last save; before
 * the layer saves how far it examined the store, so a crash re-examines
 * whatever the saved windows lack. */
void chp_msgi_tags_save(chp_msg *m);
/* The oldest epoch whose envelopes may still arrive in epoch now_e (the
 * max TTL back; the table also holds the next epoch, for clock skew). */
uint64_t chp_msgi_epoch_lo(uint64_t now_e);
/* Contact c's chain key of epoch e (>= c->base_epoch); wipe it after use. */
void chp_msgi_epoch_key(const struct contact *c, uint64_t e, uint8_t key[32]);

/* msg_out.c: jobs (one envelope each) and the own envelopes not yet held
 * by a neighbour. */
/* Puts j at the end of the list head..tail (a job list of chp_msg). */
static inline void chp_msgi_job_append(struct job **head, struct job **tail, struct job *j)
{
    j->next = NULL;
    if (*tail)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}
/* Queues one envelope of content type `type`: to a contact (JOB_DM,
 * JOB_INTRO: to is its key) or a room (JOB_ROOM), payload copied; msgid
 * (or NULL) is the message whose state it moves, last its last envelope.
 * CHP_OK or CHP_E_NOMEM. */
int chp_msgi_job_add(chp_msg *m, int kind, const uint8_t *to, const char *room, uint8_t type,
                     const uint8_t *payload, size_t len, const uint8_t *msgid, int last);
/* Queues own history entry h as it goes on the wire (new envelopes: any
 * earlier ones of it no longer count for its "sent" state). */
int chp_msgi_queue_hmsg(chp_msg *m, const struct hmsg *h);
/* Queues our request (CHP_CT_INTRO) or answer (CHP_CT_ACCEPT, naming
 * the key of theirs it answers) to c, dated c->my_time. */
int chp_msgi_queue_intro(chp_msg *m, const struct contact *c, uint8_t type);
/* Drops the envelopes still queued for contact pk (it was removed). */
void chp_msgi_jobs_drop(chp_msg *m, const uint8_t pk[32]);
/* Moves own message h forward to state st (MS_SENT, MS_DELIVERED): saved,
 * and a "state" event. Never backwards. */
void chp_msgi_set_state(chp_msg *m, struct hmsg *h, int st);
/* Forgets the envelopes of message msgid (it goes out again as new ones). */
void chp_msgi_out_forget_msg(chp_msg *m, const uint8_t msgid[MSGID_BYTES]);
/* Own envelopes that left the store unconfirmed will never be confirmed:
 * forgets them, at most once a minute. */
void chp_msgi_out_prune(chp_msg *m);
/* Loads the unconfirmed own envelopes (CHP_TABLE_OUTBOX) at the unlock. */
int chp_msgi_out_load(chp_msg *m);
/* Drops every job and sealed envelope and forgets the unconfirmed ones
 * (in memory): first when the identity goes, the sealer reads it. */
void chp_msgi_out_clear(chp_msg *m);

/* msg_contact.c: contacts, their handshake and their keys over time. */
/* A new contact of key pk at the end of m->c (zeroed but for its key and
 * when it was added; its state is the caller's), or NULL without memory.
 * m->c may move. */
struct contact *chp_msgi_contact_add(chp_msg *m, const uint8_t pk[32]);
/* A fresh handshake key for c, its time strictly later than any key made
 * before (PROTOCOL.md §18.2: the newest request wins). */
void chp_msgi_new_handshake_key(chp_msg *m, struct contact *c);
/* Loads the handshake clock (chp_msgi_new_handshake_key) at the unlock: the
 * one stored, never behind a key we hold. */
void chp_msgi_hs_time_load(chp_msg *m);
/* Root and first chain key of c from both handshake keys; answer: also
 * queue our answer (5), ahead of the waiting messages. */
int chp_msgi_establish(chp_msg *m, struct contact *c, int answer);
/* A request (4) or an answer (5) that arrived under our intro tag. */
void chp_msgi_handle_intro(chp_msg *m, const chp_inner *in, uint64_t created);
/* Deletes chain keys older than the max TTL (epoch now_e). */
void chp_msgi_forget_old_keys(chp_msg *m, uint64_t now_e);
/* Renews our pending requests past half their lifetime; all: queues
 * every pending request (at the unlock). */
void chp_msgi_renew_requests(chp_msg *m, int all);

/* msg_file.c: files (PROTOCOL.md §18.8). */
void chp_msgi_files_init(chp_msg *m);
/* Loads the file records at the unlock; frees them all. */
int chp_msgi_files_load(chp_msg *m);
void chp_msgi_files_free(chp_msg *m);
/* 1 while some incoming file is incomplete (a restart reads its pieces again). */
int chp_msgi_files_incomplete(const chp_msg *m);
/* Hands the received pieces held in memory to the store, to be written
 * with its next batch; sync: writes them all now (before the layer saves
 * how far it examined the store). */
void chp_msgi_files_flush(chp_msg *m);
void chp_msgi_files_sync(chp_msg *m);
/* A manifest (7) or piece (8) that arrived under tag te. */
void chp_msgi_file_in(chp_msg *m, const struct tagent *te, const chp_inner *in, uint64_t created,
                      const uint8_t digest[32]);
/* Queues the file at path to contact c or room (one NULL): copied into
 * the encrypted tables, an outgoing history entry made. CHP_OK with the
 * id, else an error with a line for the user in err. */
int chp_msgi_file_send(chp_msg *m, const struct contact *c, const char *room, const char *path,
                       const char *caption, uint8_t id[16], char *err, size_t errcap);
/* The outgoing file of message msgid (NULL: not a file). */
const struct xfile *chp_msgi_file_out(const chp_msg *m, const uint8_t msgid[16]);
/* What msg_filectl.c asks of msg_file.c: x's record saved; pieces 0..n-1
 * of x deleted; complete x written to a temporary file in dir, checked,
 * then given its name (exact: that path; else a free name in dir), the
 * path in *final (malloc'ed). */
int chp_msgi_file_save_rec(chp_msg *m, const struct xfile *x);
void chp_msgi_pieces_drop(chp_msg *m, const struct xfile *x, uint32_t n);
int chp_msgi_file_write_out(chp_msg *m, const struct xfile *x, const char *dir, const char *exact,
                            char **final);

/* msg_filectl.c: `files` lines (CONTROL.md); `file-save`: CHP_OK or an
 * error line. */
void chp_msgi_files_list(chp_msg *m, struct msg_buf *out);
int chp_msgi_file_save(chp_msg *m, const char *idhex, const char *path, char *err, size_t errcap);

/* msg_in.c: envelopes in. */
/* Keeps every room's history within its bounds (at the unlock). */
void chp_msgi_rooms_trim_all(chp_msg *m);
/* Drops the pieces of chunked messages waiting for the rest. */
void chp_msgi_partials_free(chp_msg *m);
/* Saves how far stored envelopes were examined, if it moved. */
void chp_msgi_examined_save(chp_msg *m);
/* At the unlock: loads how far stored envelopes were examined, and
 * examines every one stored since. */
void chp_msgi_examine_stored(chp_msg *m);

/* msg.c: the lifecycle. */
/* Forgets the identity and everything unlocked with it (memory wiped). */
void chp_msgi_forget_all(chp_msg *m);
/* Joins room canon (its key given): saved, its tags in the table. */
int chp_msgi_room_join(chp_msg *m, const char *canon, int passphrase, const uint8_t key[32]);

/* msg_seal.c: the sealing worker; it calls nothing of the layer's and
 * owns nothing it is handed. start: inline_only seals in push. push hands
 * it an envelope to seal; pop returns sealed ones in order; cancel waits
 * for the envelope being sealed (call before the identity goes) and
 * returns every envelope it still held, sealed or not, as a list for the
 * caller to free. stop ends the thread of a cancelled sealer. */
int chp_sealer_start(struct sealer *w, int inline_only);
struct seal *chp_sealer_cancel(struct sealer *w);
void chp_sealer_stop(struct sealer *w);
void chp_sealer_push(struct sealer *w, struct seal *s);
struct seal *chp_sealer_pop(struct sealer *w);
int chp_sealer_has_done(struct sealer *w);
int chp_sealer_pending(struct sealer *w);

#endif
