/* test_relay.c - a relay node (no user identity) in this process, driven
 * over its real control socket: every node command of docs/CONTROL.md
 * with good and bad arguments, and the answer a relay gives to the
 * messaging commands. */
#include "dtest.h"
#include "node/client/ctl.h"
#include "harness.h"

#include "node/common/version.h"
#include "proto/addr.h"
#include "proto/crypto.h"
#include "proto/envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

/* docs/CONTROL.md, "status keys": always present, spelled exactly so. */
static const char *const status_keys[] = {
    "mode",
    "address",
    "peers connected",
    "relays connected",
    "links tcp",
    "links obfs4",
    "links socks5",
    "passive peers",
    "envelopes stored",
    "bytes stored",
    "quota",
    "store full",
    "accepted",
    "duplicates",
    "rejected",
    "rejected size",
    "rejected version",
    "rejected ttl",
    "rejected expired",
    "rejected future",
    "rejected pow",
    "rejected full",
    "rejected malformed",
    "rejected author rate",
    "rejected sync",
    "rejected rate",
    "rejected banned",
    "rejected not allowed",
    "rejected view full",
    "connections open",
    "rejected connections",
    "connections timed out",
    "evictions",
    "bans",
    "sync rounds",
    "syncs completed",
    "sync fetched",
    "bytes received",
    "bytes sent",
    "prunes",
    "grafts",
    "ids announced",
    "beacons received",
    "uptime",
    "obfs4 server",
    "obfs4 client",
    "obfs4 starts",
    "identity",
    "nick",
    "version",
};
#define NKEYS (sizeof status_keys / sizeof status_keys[0])
static const char *const text_keys[] = {"mode", "address", "store full",   "identity",
                                        "nick", "version", "obfs4 server", "obfs4 client"};

static int setup(void **state)
{
    if (chp_crypto_init() != CHP_OK)
        return -1;
    return h_setup(state);
}

static dt_node *start_relay(h_ctx *h, dt_node *t, const char *name)
{
    char home[300];
    dt_start(t, h_path(h, home, sizeof home, name), 1, NULL);
    return t;
}

static int is_text_key(const char *k)
{
    for (size_t i = 0; i < sizeof text_keys / sizeof text_keys[0]; i++)
        if (!strcmp(k, text_keys[i]))
            return 1;
    return 0;
}

/* Every documented key once, no other line, numbers where numbers go. */
static void test_status(void **state)
{
    h_ctx *h = *state;
    dt_node t;
    start_relay(h, &t, "r");
    char *s = dt_ok(&t, "status", DT_END);
    int seen[NKEYS] = {0};
    size_t lines = 0;
    for (char *line = s, *end; *line; line = end + 1) {
        assert_non_null(end = strchr(line, '\n')); /* every line ends in \n */
        *end = '\0';
        char *colon = strstr(line, ": ");
        if (!colon)
            fail_msg("status line '%s' is not 'key: value'", line);
        *colon = '\0';
        const char *v = colon + 2;
        size_t k = 0;
        while (k < NKEYS && strcmp(line, status_keys[k]) != 0)
            k++;
        if (k == NKEYS)
            fail_msg("status has key '%s', which docs/CONTROL.md does not list", line);
        else
            seen[k]++;
        lines++;
        if (!is_text_key(line) && (!*v || strspn(v, "0123456789") != strlen(v)))
            fail_msg("status '%s' is '%s', want a decimal integer", line, v);
    }
    for (size_t k = 0; k < NKEYS; k++)
        if (seen[k] != 1)
            fail_msg("status key '%s' appears %d times, want once", status_keys[k], seen[k]);
    assert_int_equal(lines, NKEYS);
    free(s);

    char *v;
    assert_string_equal(v = dt_status(&t, "mode"), "relay");
    free(v);
    assert_string_equal(v = dt_status(&t, "identity"), "none");
    free(v);
    assert_string_equal(v = dt_status(&t, "nick"), "-");
    free(v);
    assert_string_equal(v = dt_status(&t, "version"), CHP_VERSION);
    free(v);
    assert_string_equal(v = dt_status(&t, "store full"), "no");
    free(v);
    char *addr = dt_ok(&t, "address", DT_END);
    assert_string_equal(v = dt_status(&t, "address"), addr);
    free(v);
    free(addr);
    assert_int_equal(dt_status_num(&t, "quota"), CHP_NODE_QUOTA_RELAY);
    assert_int_equal(dt_status_num(&t, "envelopes stored"), 0);
    assert_int_equal(dt_status_num(&t, "peers connected"), 0);
    assert_int_equal(dt_status_num(&t, "beacons received"), 0);
    assert_true(dt_status_num(&t, "uptime") <= 5);
    assert_int_equal(dt_stop(&t), CHP_OK);
}

/* `address` is HOST:PORT/chpn1... with the port the kernel picked, and
 * stays the same across a restart (the transport key is kept). */
static void test_address(void **state)
{
    h_ctx *h = *state;
    dt_node t;
    start_relay(h, &t, "r");
    char *a = dt_ok(&t, "address", DT_END);
    chp_addr ad;
    assert_int_equal(chp_addr_parse(a, strlen(a), &ad), CHP_OK);
    assert_string_equal(ad.host, "127.0.0.1");
    assert_true(ad.port > 0);
    assert_int_equal(strncmp(a, "127.0.0.1:", 10), 0);
    assert_non_null(strstr(a, "/chpn1"));
    assert_int_equal(dt_stop(&t), CHP_OK);

    start_relay(h, &t, "r");
    char *b = dt_ok(&t, "address", DT_END);
    chp_addr bd;
    assert_int_equal(chp_addr_parse(b, strlen(b), &bd), CHP_OK);
    assert_memory_equal(ad.key, bd.key, 32);
    free(a);
    free(b);
    assert_int_equal(dt_stop(&t), CHP_OK);
}

/* Finds the `peers` line of key; NULL if none (a pointer into peers). */
static char *peer_line(char *peers, const char *key)
{
    char *p = strstr(peers, key);
    return p && (p == peers || p[-1] == '\n') ? p : NULL;
}

static void test_peer_add_remove(void **state)
{
    h_ctx *h = *state;
    dt_node t;
    start_relay(h, &t, "r");
    char *peers = dt_ok(&t, "peers", DT_END);
    assert_string_equal(peers, ""); /* no neighbour yet */
    free(peers);

    /* Malformed: the reason, as chp_strerror says it. */
    char *e = dt_error(&t, "peer-add", "nonsense", DT_END);
    assert_string_equal(e, chp_strerror(CHP_E_ADDR_FORMAT));
    free(e);
    char key[80], addr[200], other[200];
    dt_random_key(key);
    snprintf(addr, sizeof addr, "127.0.0.1:0/%s", key);
    e = dt_error(&t, "peer-add", addr, DT_END);
    assert_string_equal(e, chp_strerror(CHP_E_ADDR_PORT));
    free(e);
    /* Its own address. */
    char *own = dt_ok(&t, "address", DT_END);
    e = dt_error(&t, "peer-add", own, DT_END);
    assert_string_equal(e, "that is this node's own address");
    free(e);
    free(own);
    /* A host name that does not resolve is refused and not remembered. */
    snprintf(addr, sizeof addr, "no-such-host.invalid:7667/%s", key);
    e = dt_error(&t, "peer-add", addr, DT_END);
    assert_string_equal(e, "host no-such-host.invalid does not resolve (a typo, or no name "
                           "service here?)");
    free(e);
    peers = dt_ok(&t, "peers", DT_END);
    assert_string_equal(peers, "");
    free(peers);

    /* A good address where nothing listens: ok, listed, dialled. */
    snprintf(addr, sizeof addr, "127.0.0.1:9/%s", key);
    e = dt_ok(&t, "peer-add", addr, DT_END);
    assert_string_equal(e, "");
    free(e);
    peers = dt_ok(&t, "peers", DT_END);
    char *line = peer_line(peers, key);
    if (!line)
        fail_msg("peers after peer-add: '%s'", peers);
    char st[40], dir[10], pa[200], reason[200];
    unsigned long long rx, tx;
    assert_int_equal(sscanf(line + strlen(key),
                            "\t%39[^\t]\t%9[^\t]\t%199[^\t]\t%llu\t%llu\t%199[^\n]", st, dir, pa,
                            &rx, &tx, reason),
                     6);
    assert_true(!strcmp(st, "connecting") || !strcmp(st, "unreachable"));
    assert_string_equal(dir, "out");
    assert_string_equal(pa, addr); /* the ADDRESS it is dialled at */
    assert_int_equal(rx, 0);
    assert_int_equal(tx, 0);
    free(peers);
    assert_int_equal(dt_status_num(&t, "peers connected"), 0);

    /* Adding it again is fine; its address elsewhere re-addresses it
     * while no link lives. */
    free(dt_ok(&t, "peer-add", addr, DT_END));
    snprintf(other, sizeof other, "127.0.0.1:10/%s", key);
    free(dt_ok(&t, "peer-add", other, DT_END));
    /* peer-remove wants the address it is known at now. */
    e = dt_error(&t, "peer-remove", addr, DT_END);
    assert_string_equal(e, "no such peer");
    free(e);
    e = dt_error(&t, "peer-remove", "nonsense", DT_END);
    assert_string_equal(e, chp_strerror(CHP_E_ADDR_FORMAT));
    free(e);

    /* Remembered across a restart... */
    assert_int_equal(dt_stop(&t), CHP_OK);
    start_relay(h, &t, "r");
    peers = dt_ok(&t, "peers", DT_END);
    char tabbed[220];
    snprintf(tabbed, sizeof tabbed, "\t%s\t", other);
    if (!(line = peer_line(peers, key)) || !strstr(line, tabbed))
        fail_msg("peers after a restart: '%s'", peers);
    free(peers);
    /* ...until removed: then gone, and gone after a restart too. */
    e = dt_ok(&t, "peer-remove", other, DT_END);
    assert_string_equal(e, "");
    free(e);
    peers = dt_ok(&t, "peers", DT_END);
    assert_null(peer_line(peers, key));
    free(peers);
    e = dt_error(&t, "peer-remove", other, DT_END);
    assert_string_equal(e, "no such peer");
    free(e);
    assert_int_equal(dt_stop(&t), CHP_OK);
    start_relay(h, &t, "r");
    peers = dt_ok(&t, "peers", DT_END);
    assert_string_equal(peers, "");
    free(peers);
    assert_int_equal(dt_stop(&t), CHP_OK);
}

/* A valid envelope: its id back, stored, an `envelope` event; again: the
 * same id, stored once. Bytes that are no envelope: the reason. */
static void test_publish(void **state)
{
    h_ctx *h = *state;
    dt_node t;
    start_relay(h, &t, "r");
    uint8_t env[CHP_ENV_MAX_BYTES];
    size_t len = dt_envelope(env, sizeof env);
    char want[65];
    dt_envelope_hex(env, len, want);
    const void *args[] = {env};
    size_t lens[] = {len};
    char *id = NULL;
    size_t idlen = 0;
    assert_true(dt_call(&t, &id, &idlen, "publish", 1, args, lens));
    assert_int_equal(idlen, 64);
    assert_string_equal(id, want);
    free(id);
    char *ev = dt_event(&t, "envelope", want, DT_WAIT_MS);
    if (!ev)
        fail_msg("no `envelope` event for %s", want);
    assert_string_equal(ev, want);
    free(ev);
    assert_int_equal(dt_await_status(&t, "envelopes stored", 1), 1);
    assert_int_equal(dt_status_num(&t, "bytes stored"), (long long)len);

    /* Published again: a duplicate, still ok with the id. */
    assert_true(dt_call(&t, &id, NULL, "publish", 1, args, lens));
    assert_string_equal(id, want);
    free(id);
    assert_int_equal(dt_status_num(&t, "envelopes stored"), 1);

    /* Not an envelope, and one with a broken proof of work. */
    static const uint8_t junk[10] = {1, 2, 3};
    args[0] = junk;
    lens[0] = sizeof junk;
    assert_false(dt_call(&t, &id, NULL, "publish", 1, args, lens));
    assert_string_equal(id, chp_strerror(CHP_E_ENV_SIZE));
    free(id);
    env[len - 1] ^= 0xff; /* the nonce: almost surely too weak now */
    args[0] = env;
    lens[0] = len;
    assert_false(dt_call(&t, &id, NULL, "publish", 1, args, lens));
    assert_string_equal(id, chp_strerror(CHP_E_ENV_POW));
    free(id);
    assert_int_equal(dt_status_num(&t, "envelopes stored"), 1);

    /* Kept across a restart. */
    assert_int_equal(dt_stop(&t), CHP_OK);
    start_relay(h, &t, "r");
    assert_int_equal(dt_status_num(&t, "envelopes stored"), 1);
    assert_int_equal(dt_stop(&t), CHP_OK);
}

/* `discovery` asks; `discovery off` answers and saves discovery = no in
 * chapard.conf, keeping the other lines. (Never `on` here: its beacons
 * would leave this machine.) */
static void test_discovery(void **state)
{
    h_ctx *h = *state;
    char home[300], conf[400];
    h_path(h, home, sizeof home, "r");
    assert_int_equal(mkdir(home, 0700), 0);
    snprintf(conf, sizeof conf, "%s/chapard.conf", home);
    static const char before[] = "# mine\nquota = 8M\n  discovery = yes\nrelay = yes";
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    assert_int_equal(fputs(before, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);

    dt_node t;
    dt_start(&t, home, 1, NULL);
    char *a = dt_ok(&t, "discovery", DT_END);
    assert_string_equal(a, "off");
    free(a);
    a = dt_ok(&t, "discovery", "off", DT_END);
    char want[600];
    snprintf(want, sizeof want, "discovery off, saved in %s/chapard.conf", home);
    assert_string_equal(a, want);
    free(a);
    size_t n = 0;
    char *after = (char *)h_read_file(conf, &n);
    assert_string_equal(after, "# mine\nquota = 8M\nrelay = yes\ndiscovery = no\n");
    free(after);
    a = dt_ok(&t, "discovery", DT_END);
    assert_string_equal(a, "off");
    free(a);
    /* Again: one discovery line still. */
    free(dt_ok(&t, "discovery", "off", DT_END));
    after = (char *)h_read_file(conf, &n);
    assert_string_equal(after, "# mine\nquota = 8M\nrelay = yes\ndiscovery = no\n");
    free(after);

    /* Bad arguments. */
    a = dt_error(&t, "discovery", "maybe", DT_END);
    assert_string_equal(a, "usage: discovery [on|off]");
    free(a);
    a = dt_error(&t, "discovery", "onn", DT_END);
    assert_string_equal(a, "usage: discovery [on|off]");
    free(a);
    a = dt_error(&t, "discovery", "off", "now", DT_END);
    assert_string_equal(a, "unknown command or wrong arguments");
    free(a);

    /* chapard.conf cannot be written (a directory there): off for now,
     * and the answer says so. */
    assert_int_equal(unlink(conf), 0);
    assert_int_equal(mkdir(conf, 0700), 0);
    a = dt_ok(&t, "discovery", "off", DT_END);
    snprintf(want, sizeof want,
             "discovery off until chapard stops (cannot write %s/chapard.conf:", home);
    if (strncmp(a, want, strlen(want)) != 0)
        fail_msg("discovery off with no writable chapard.conf: '%s'", a);
    free(a);
    struct stat sb;
    assert_int_equal(stat(conf, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(rmdir(conf), 0);

    /* chapard.conf that cannot be opened (a symlink loop), and a temp
     * file that cannot be made: the same. */
    assert_int_equal(symlink(conf, conf), 0);
    a = dt_ok(&t, "discovery", "off", DT_END);
    if (strncmp(a, want, strlen(want)) != 0)
        fail_msg("discovery off with chapard.conf a symlink loop: '%s'", a);
    free(a);
    assert_int_equal(unlink(conf), 0);
    char tmp[400];
    snprintf(tmp, sizeof tmp, "%s/.chapard.conf.tmp", home);
    assert_int_equal(mkdir(tmp, 0700), 0);
    f = fopen(conf, "w");
    assert_non_null(f);
    assert_true(fputs("quota = 8M\n", f) >= 0);
    assert_int_equal(fclose(f), 0);
    a = dt_ok(&t, "discovery", "off", DT_END);
    if (strncmp(a, want, strlen(want)) != 0)
        fail_msg("discovery off with no temp file: '%s'", a);
    free(a);
    after = (char *)h_read_file(conf, &n);
    assert_string_equal(after, "quota = 8M\n"); /* untouched */
    free(after);
    assert_int_equal(rmdir(tmp), 0);
    assert_int_equal(unlink(conf), 0);

    /* No chapard.conf at all: one is made. */
    free(dt_ok(&t, "discovery", "off", DT_END));
    after = (char *)h_read_file(conf, &n);
    assert_string_equal(after, "discovery = no\n");
    free(after);
    assert_int_equal(dt_status_num(&t, "beacons received"), 0);
    assert_int_equal(dt_stop(&t), CHP_OK);
}

/* Unknown commands and wrong argument counts get one answer; messaging
 * commands get the relay's. */
static void test_unknown_and_messaging(void **state)
{
    h_ctx *h = *state;
    dt_node t;
    start_relay(h, &t, "r");
    static const char *const unknown[][3] = {
        {"frobnicate", NULL, NULL}, {"status", "now", NULL},
        {"address", "x", NULL},     {"peers", "x", NULL},
        {"stop", "now", NULL},      {"peer-add", NULL, NULL},
        {"peer-remove", "a", "b"},  {"publish", NULL, NULL},
        {"", NULL, NULL},           {"a-command-name-longer-than-31-bytes", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        char *e = dt_error(&t, unknown[i][0], unknown[i][1], unknown[i][2], DT_END);
        if (strcmp(e, "unknown command or wrong arguments") != 0)
            fail_msg("'%s': '%s'", unknown[i][0], e);
        free(e);
    }
    static const char *const msg[][3] = {
        {"id", NULL, NULL},           {"send", "#lan", "hello"}, {"init", "ali", "none"},
        {"unlock", "pw", NULL},       {"rooms", NULL, NULL},     {"inbox", NULL, NULL},
        {"contact-list", NULL, NULL}, {"wipe", "yes", NULL},
    };
    for (size_t i = 0; i < sizeof msg / sizeof msg[0]; i++) {
        char *e = dt_error(&t, msg[i][0], msg[i][1], msg[i][2], DT_END);
        if (strcmp(e, "relay nodes have no user identity") != 0)
            fail_msg("'%s' on a relay: '%s'", msg[i][0], e);
        free(e);
    }
    /* Still serving, and no identity appeared. */
    char *v = dt_status(&t, "identity");
    assert_string_equal(v, "none");
    free(v);
    assert_int_equal(access(h_path(h, (char[300]){0}, 300, "r/identity"), F_OK), -1);
    assert_int_equal(dt_stop(&t), CHP_OK);
}

/* A request frame over 1 MiB closes that client's connection, unread;
 * the node and other clients go on. */
static void test_oversized_request(void **state)
{
    h_ctx *h = *state;
    dt_node t;
    start_relay(h, &t, "r");
    size_t big = (1u << 20) + 1;
    char *junk = calloc(1, big);
    assert_non_null(junk);
    assert_int_equal(zmq_send(chp_ctl_req_socket(t.ctl), "publish", 7, ZMQ_SNDMORE), 7);
    assert_int_equal(zmq_send(chp_ctl_req_socket(t.ctl), junk, big, 0), (int)big);
    free(junk);
    zmq_pollitem_t it = {chp_ctl_req_socket(t.ctl), 0, ZMQ_POLLIN, 0};
    assert_int_equal(zmq_poll(&it, 1, 500), 0); /* no answer */
    /* The client's socket connects again and is served. */
    char *v = dt_status(&t, "mode");
    assert_string_equal(v, "relay");
    free(v);
    assert_int_equal(dt_status_num(&t, "envelopes stored"), 0);
    assert_int_equal(dt_stop(&t), CHP_OK);
}

/* `stop`: an empty ok, then the loop ends by itself with CHP_OK. */
static void test_stop(void **state)
{
    h_ctx *h = *state;
    dt_node t;
    start_relay(h, &t, "r");
    char *a = dt_ok(&t, "stop", DT_END);
    assert_string_equal(a, "");
    free(a);
    if (!dt_ended(&t, DT_WAIT_MS))
        fail_msg("the loop still runs %d ms after `stop`", DT_WAIT_MS);
    assert_int_equal(t.stop, 0); /* it was not the flag */
    assert_int_equal(dt_stop(&t), CHP_OK);
    assert_int_equal(t.wiped, 0);
    /* The store was closed cleanly: the node starts again. */
    start_relay(h, &t, "r");
    assert_int_equal(dt_stop(&t), CHP_OK);
}

/* What keeps a node from starting is an error code (and a log line), and
 * nothing is left behind: the same dir starts once the cause is gone. */
static void test_cannot_start(void **state)
{
    h_ctx *h = *state;
    char home[300], path[400];
    chp_node_opts o;
    dt_node t;
    /* A data dir whose parent does not exist. */
    h_path(h, home, sizeof home, "no/such/dir");
    dt_opts(&o, home, 1);
    assert_int_equal(dt_open(&t, &o), CHP_E_IO);
    assert_null(t.node);
    /* A data dir that is a file: the store cannot open. */
    h_write_file(h, "plain", "x", 1);
    dt_opts(&o, h_path(h, home, sizeof home, "plain"), 1);
    assert_int_not_equal(dt_open(&t, &o), CHP_OK);
    assert_null(t.node);
    /* Something that is no socket where the control socket goes, then
     * where the event socket goes. */
    static const char *const sockets[] = {"control", "events"};
    h_path(h, home, sizeof home, "r");
    assert_int_equal(mkdir(home, 0700), 0);
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", home, sockets[i]);
        assert_int_equal(mkdir(path, 0700), 0);
        snprintf(path, sizeof path, "%s/%s/keep", home, sockets[i]);
        assert_int_equal(mkdir(path, 0700), 0);
        dt_opts(&o, home, 1);
        assert_int_equal(dt_open(&t, &o), CHP_E_IO);
        assert_null(t.node);
        assert_int_equal(rmdir(path), 0);
        snprintf(path, sizeof path, "%s/%s", home, sockets[i]);
        assert_int_equal(rmdir(path), 0);
    }
    start_relay(h, &t, "r");
    assert_int_equal(dt_status_num(&t, "envelopes stored"), 0);
    assert_int_equal(dt_stop(&t), CHP_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_status, setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_address, setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_peer_add_remove, setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_publish, setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_discovery, setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_and_messaging, setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_oversized_request, setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_stop, setup, h_teardown),
        cmocka_unit_test_setup_teardown(test_cannot_start, setup, h_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
