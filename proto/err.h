/* err.h - the one error enum of Chapar, shared by every module. */
#ifndef CHP_ERR_H
#define CHP_ERR_H

#define CHP_WUR __attribute__((warn_unused_result))

/* 0 is success; every error is negative. Codes are stable: they appear in
 * logs, counters and control-API replies, so never renumber one. */
typedef enum chp_err {
    CHP_OK = 0,
    CHP_E_NOMEM = -1,         /* allocation failed */
    CHP_E_ARG = -2,           /* invalid argument (caller's mistake in data, not a NULL) */
    CHP_E_CRYPTO_INIT = -3,   /* libsodium could not initialise */
    CHP_E_TRUNCATED = -4,     /* input ended before a field did */
    CHP_E_TRAILING = -5,      /* bytes left after the last field */
    CHP_E_OVERFLOW = -6,      /* output buffer too small */
    CHP_E_MALFORMED = -7,     /* a field holds a value the format forbids */
    CHP_E_ENV_SIZE = -10,     /* envelope length is not one of the bucket sizes */
    CHP_E_ENV_VERSION = -11,  /* unknown envelope version */
    CHP_E_ENV_TTL = -12,      /* expiry not after created, or lifetime over max TTL */
    CHP_E_ENV_EXPIRED = -13,  /* envelope expiry is in the past */
    CHP_E_ENV_FUTURE = -14,   /* created beyond the allowed clock skew */
    CHP_E_ENV_POW = -15,      /* proof of work too weak */
    CHP_E_DECRYPT = -16,      /* AEAD authentication failed (wrong key or tampered) */
    CHP_E_SIGNATURE = -17,    /* inner Ed25519 signature does not verify */
    CHP_E_PADDING = -18,      /* padding bytes are not all zero */
    CHP_E_TOO_BIG = -19,      /* payload larger than the largest bucket */
    CHP_E_ID_CHARSET = -20,   /* ID string has a character outside its alphabet */
    CHP_E_ID_CHECKSUM = -21,  /* ID string checksum mismatch (a typo) */
    CHP_E_ID_PREFIX = -22,    /* ID string does not start with "chp1" */
    CHP_E_ID_LENGTH = -23,    /* ID string has the wrong length */
    CHP_E_ID_KEY = -24,       /* ID decodes to bytes that are not a valid public key */
    CHP_E_KEYFILE = -25,      /* sealed key file is malformed */
    CHP_E_PASSPHRASE = -26,   /* wrong passphrase (or wrong key file) */
    CHP_E_KDF = -27,          /* Argon2id failed (out of memory or bad limits) */
    CHP_E_DH = -28,           /* X25519 produced an all-zero (low-order) result */
    CHP_E_ROOM_NAME = -29,    /* room name invalid */
    CHP_E_UTF8 = -30,         /* text is not valid UTF-8 */
    CHP_E_VERSION = -31,      /* peer speaks an unsupported protocol version */
    CHP_E_ADDR_FORMAT = -32,  /* address is not HOST:PORT/KEY */
    CHP_E_ADDR_HOST = -33,    /* address host invalid */
    CHP_E_ADDR_PORT = -34,    /* address port not in 1..65535 */
    CHP_E_ADDR_KEY = -35,     /* address node key invalid or mistyped */
    CHP_E_ADDR_RESOLVE = -36, /* address host name does not resolve */
    CHP_E_ADDR_CERT = -37,    /* obfs4 address cert missing or mistyped */
    CHP_E_ADDR_IAT = -38,     /* obfs4 address iat-mode missing or not 0-2 */
    CHP_E_ADDR_PROXY = -39,   /* socks5:// proxy invalid, or needed (.onion) */
    CHP_E_IO = -40,           /* file system error (see errno in the log) */
    CHP_E_STORE = -41,        /* LMDB failed unexpectedly */
    CHP_E_STORE_SCHEMA = -42, /* store written by another schema version */
    CHP_E_STORE_FULL = -43,   /* quota or disk full: foreign envelopes refused */
    CHP_E_DUP = -44,          /* already stored */
    CHP_E_NOT_FOUND = -45,    /* no such record */
    CHP_E_LOCKED = -46,       /* local tables need the storage key first */
    CHP_E_CORRUPT = -47,      /* a stored record failed its integrity check */
    CHP_E_REFUSED = -48,      /* not kept: the layer above refused it (a poster over its rate) */
} chp_err;

/* A short, constant, human-readable description; never NULL. */
const char *chp_strerror(int err);

/* The enum value name ("CHP_E_ENV_POW"), stable for logs and counters. */
const char *chp_errname(int err);

#endif
