/* err.c - names and descriptions for chp_err codes. */
#include "proto/err.h"

#include <stddef.h>

struct err_desc {
    int code;
    const char *name;
    const char *text;
};

static const struct err_desc descs[] = {
    {CHP_OK, "CHP_OK", "success"},
    {CHP_E_NOMEM, "CHP_E_NOMEM", "out of memory"},
    {CHP_E_ARG, "CHP_E_ARG", "invalid argument"},
    {CHP_E_CRYPTO_INIT, "CHP_E_CRYPTO_INIT", "crypto library failed to initialise"},
    {CHP_E_TRUNCATED, "CHP_E_TRUNCATED", "input truncated"},
    {CHP_E_TRAILING, "CHP_E_TRAILING", "trailing bytes after the last field"},
    {CHP_E_OVERFLOW, "CHP_E_OVERFLOW", "output buffer too small"},
    {CHP_E_MALFORMED, "CHP_E_MALFORMED", "malformed field"},
    {CHP_E_ENV_SIZE, "CHP_E_ENV_SIZE", "envelope size is not a valid bucket size"},
    {CHP_E_ENV_VERSION, "CHP_E_ENV_VERSION", "unknown envelope version"},
    {CHP_E_ENV_TTL, "CHP_E_ENV_TTL", "envelope lifetime invalid or over the maximum TTL"},
    {CHP_E_ENV_EXPIRED, "CHP_E_ENV_EXPIRED", "envelope expired"},
    {CHP_E_ENV_FUTURE, "CHP_E_ENV_FUTURE", "envelope created too far in the future"},
    {CHP_E_ENV_POW, "CHP_E_ENV_POW", "proof of work too weak"},
    {CHP_E_DECRYPT, "CHP_E_DECRYPT", "decryption failed (wrong key or tampered)"},
    {CHP_E_SIGNATURE, "CHP_E_SIGNATURE", "signature does not verify"},
    {CHP_E_PADDING, "CHP_E_PADDING", "non-zero padding"},
    {CHP_E_TOO_BIG, "CHP_E_TOO_BIG", "payload too large for one envelope"},
    {CHP_E_ID_CHARSET, "CHP_E_ID_CHARSET", "ID contains an invalid character"},
    {CHP_E_ID_CHECKSUM, "CHP_E_ID_CHECKSUM", "ID checksum mismatch (mistyped?)"},
    {CHP_E_ID_PREFIX, "CHP_E_ID_PREFIX", "ID must start with chp1"},
    {CHP_E_ID_LENGTH, "CHP_E_ID_LENGTH", "ID has the wrong length"},
    {CHP_E_ID_KEY, "CHP_E_ID_KEY", "ID does not hold a valid public key"},
    {CHP_E_KEYFILE, "CHP_E_KEYFILE", "key file is malformed"},
    {CHP_E_PASSPHRASE, "CHP_E_PASSPHRASE", "wrong passphrase"},
    {CHP_E_KDF, "CHP_E_KDF", "key derivation failed"},
    {CHP_E_DH, "CHP_E_DH", "key exchange produced a weak result"},
    {CHP_E_ROOM_NAME, "CHP_E_ROOM_NAME", "invalid room name"},
    {CHP_E_UTF8, "CHP_E_UTF8", "text is not valid UTF-8"},
    {CHP_E_VERSION, "CHP_E_VERSION", "unsupported protocol version"},
    {CHP_E_ADDR_FORMAT, "CHP_E_ADDR_FORMAT",
     "address must look like HOST:PORT/chpn1... or obfs4:HOST:PORT/chpn1...?cert=...&iat-mode=0"},
    {CHP_E_ADDR_HOST, "CHP_E_ADDR_HOST", "address host is not an IPv4, [IPv6] or host name"},
    {CHP_E_ADDR_PORT, "CHP_E_ADDR_PORT", "address port must be 1-65535"},
    {CHP_E_ADDR_KEY, "CHP_E_ADDR_KEY", "address node key is invalid or mistyped"},
    {CHP_E_ADDR_RESOLVE, "CHP_E_ADDR_RESOLVE", "address host name does not resolve"},
    {CHP_E_ADDR_CERT, "CHP_E_ADDR_CERT",
     "obfs4 address cert is missing or mistyped (?cert= then 70 base64 characters)"},
    {CHP_E_ADDR_IAT, "CHP_E_ADDR_IAT", "obfs4 address must end with &iat-mode=0, 1 or 2"},
    {CHP_E_ADDR_PROXY, "CHP_E_ADDR_PROXY",
     "address proxy must be socks5://HOST:PORT/ (and an .onion host needs one)"},
    {CHP_E_IO, "CHP_E_IO", "file system error"},
    {CHP_E_STORE, "CHP_E_STORE", "store (LMDB) error"},
    {CHP_E_STORE_SCHEMA, "CHP_E_STORE_SCHEMA", "store has an unsupported schema version"},
    {CHP_E_STORE_FULL, "CHP_E_STORE_FULL", "store full (quota or disk): envelope refused"},
    {CHP_E_DUP, "CHP_E_DUP", "already stored"},
    {CHP_E_NOT_FOUND, "CHP_E_NOT_FOUND", "not found"},
    {CHP_E_LOCKED, "CHP_E_LOCKED", "store is locked (no storage key)"},
    {CHP_E_CORRUPT, "CHP_E_CORRUPT", "stored record failed its integrity check"},
    {CHP_E_REFUSED, "CHP_E_REFUSED", "refused: its author posts over the rate"},
};

static const struct err_desc *find(int err)
{
    for (size_t i = 0; i < sizeof descs / sizeof descs[0]; i++)
        if (descs[i].code == err)
            return &descs[i];
    return NULL;
}

const char *chp_strerror(int err)
{
    const struct err_desc *d = find(err);
    return d ? d->text : "unknown error";
}

const char *chp_errname(int err)
{
    const struct err_desc *d = find(err);
    return d ? d->name : "CHP_E_UNKNOWN";
}
