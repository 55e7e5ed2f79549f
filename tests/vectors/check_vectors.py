#!/usr/bin/env python3
"""Independent check of tests/vectors/proto.exp against docs/PROTOCOL.md.

Written from the document, not from the C code, with other libraries
(hashlib's BLAKE2b, OpenSSL's Ed25519/X25519/ChaCha20-Poly1305 through
python3-cryptography, HChaCha20 by hand): if it agrees with the C library
byte for byte, the document is enough to build a compatible implementation.
Argon2id is not in these libraries, so passphrase-derived vectors are
checked by the C test only."""
import hashlib
import struct
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey, Ed25519PublicKey)
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey, X25519PublicKey)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives import serialization

RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def b2b(data, n=32, key=b""):
    return hashlib.blake2b(data, digest_size=n, key=key).digest()


def kdf(key, label, data=b"", n=32):
    return b2b(label.encode() + b"\0" + data, n, key)


def ed_pub(seed):
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(*RAW)


def ed_to_x(pk):
    p = 2**255 - 19
    y = int.from_bytes(pk, "little") & ((1 << 255) - 1)
    u = (1 + y) * pow(1 - y, p - 2, p) % p
    return u.to_bytes(32, "little")


def x_sk_from_seed(seed):
    return hashlib.sha512(seed).digest()[:32]  # X25519 clamps it


def x25519(sk, pk):
    return X25519PrivateKey.from_private_bytes(sk).exchange(
        X25519PublicKey.from_public_bytes(pk))


def x_pub(sk):
    return X25519PrivateKey.from_private_bytes(sk).public_key().public_bytes(*RAW)


CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def polymod(values):
    gen = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3]
    chk = 1
    for v in values:
        b = chk >> 25
        chk = (chk & 0x1ffffff) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (b >> i) & 1 else 0
    return chk


def bech32m_id(pk):
    hrp = "chp"
    bits = int.from_bytes(pk, "big") << 4  # 256 bits + 4 zero bits = 52 groups
    data = [(bits >> (5 * (51 - i))) & 31 for i in range(52)]
    exp = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    pm = polymod(exp + data + [0] * 6) ^ 0x2bc830a3
    chk = [(pm >> (5 * (5 - i))) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[d] for d in data + chk)


def fingerprint(pk):
    v = int.from_bytes(b2b(pk, 32, b"chapar-fingerprint-v1")[:5], "big")
    return "".join(CHARSET[(v >> (5 * (7 - i))) & 31] for i in range(8))


def safety(a, b):
    h = b2b(min(a, b) + max(a, b), 32, b"chapar-safety-number-v1")
    return " ".join("%05d" % (int.from_bytes(h[5 * g:5 * g + 5], "big") % 100000)
                    for g in range(6))


def rotl(v, c):
    return ((v << c) & 0xffffffff) | (v >> (32 - c))


def hchacha20(key, nonce16):
    s = list(struct.unpack("<4I", b"expand 32-byte k")) + \
        list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))

    def qr(a, b, c, d):
        s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = rotl(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = rotl(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & 0xffffffff; s[d] = rotl(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & 0xffffffff; s[b] = rotl(s[b] ^ s[c], 7)
    for _ in range(10):
        qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15)
        qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def xchacha_decrypt(key, nonce24, ct, ad):
    sub = hchacha20(key, nonce24[:16])
    return ChaCha20Poly1305(sub).decrypt(b"\0" * 4 + nonce24[16:], ct, ad)


def pow_target(length, ttl, ntpb):
    w = length + 1000
    return (2**64 - 1) // (ntpb * (w + ttl * w // 65536))


def pow_trial(initial, nonce):
    return int.from_bytes(b2b(struct.pack(">Q", nonce) + initial)[:8], "big")


def main(path):
    vec = {}
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        name, hexval = line.rstrip("\n").rsplit(" ", 1)
        vec[name] = bytes.fromhex(hexval)
    got = {}
    sa, sb = vec["alice.seed"], vec["bob.seed"]
    pa, pb = ed_pub(sa), ed_pub(sb)
    got["alice.pk"], got["bob.pk"] = pa, pb
    got["alice.xpk"], got["bob.xpk"] = ed_to_x(pa), ed_to_x(pb)
    assert x_pub(x_sk_from_seed(sa)) == ed_to_x(pa)
    got["alice.id"], got["bob.id"] = bech32m_id(pa).encode(), bech32m_id(pb).encode()
    got["alice.fingerprint"] = fingerprint(pa).encode()
    got["safety_number.alice_bob"] = safety(pa, pb).encode()
    got["kdf.chapar-example-v1.abc"] = kdf(vec["kdf.key"], "chapar-example-v1", b"abc")

    ea_sk, eb_sk = vec["contact.alice_eph_sk"], vec["contact.bob_eph_sk"]
    ea, eb = x_pub(ea_sk), x_pub(eb_sk)
    got["contact.alice_eph_pk"], got["contact.bob_eph_pk"] = ea, eb
    pairs = sorted([(pa, ea), (pb, eb)])
    root = kdf(x25519(ea_sk, eb), "chapar-root-v1",
               pairs[0][0] + pairs[1][0] + pairs[0][1] + pairs[1][1])
    assert root == kdf(x25519(eb_sk, ea), "chapar-root-v1",
                       pairs[0][0] + pairs[1][0] + pairs[0][1] + pairs[1][1])
    got["contact.root"] = root
    e0 = kdf(root, "chapar-epoch-first-v1")
    got["contact.epoch0"] = e0
    got["contact.epoch0.msg_key_from_alice"] = kdf(e0, "chapar-msg-key-v1", pa)
    for seq in (0, 1):
        got["contact.epoch0.tag_to_bob.seq%d" % seq] = kdf(
            e0, "chapar-tag-v1", pb + struct.pack(">I", seq), 16)
    e1 = kdf(e0, "chapar-epoch-next-v1")
    got["contact.epoch1"], got["contact.epoch2"] = e1, kdf(e1, "chapar-epoch-next-v1")

    epoch = 1800000000 // 86400
    got["intro.epoch"] = struct.pack(">Q", epoch)
    got["intro.tag_to_bob"] = kdf(pb, "chapar-intro-tag-v1", struct.pack(">Q", epoch), 16)
    got["intro.key_alice_eph_to_bob"] = kdf(x25519(ea_sk, ed_to_x(pb)),
                                            "chapar-intro-key-v1", ea + pb)
    assert x25519(x_sk_from_seed(sb), ea) == x25519(ea_sk, ed_to_x(pb))

    room = kdf(b"\0" * 32, "chapar-room-public-v1", b"#lan")
    got["room.#lan.key"] = room
    got["room.#lan.tag"] = kdf(room, "chapar-room-tag-v1", struct.pack(">Q", epoch), 16)
    got["room.#lan.msg_key"] = kdf(room, "chapar-room-msg-v1", struct.pack(">Q", epoch))
    got["room.#lan.fingerprint"] = fingerprint(kdf(room, "chapar-room-fingerprint-v1")).encode()
    # the passphrase room's key needs Argon2id: its fingerprint from the file's key
    got["room.#secret.hunter2.fingerprint"] = fingerprint(
        kdf(vec["room.#secret.hunter2.key"], "chapar-room-fingerprint-v1")).encode()

    got["pow.target.1113.86400.16"] = struct.pack(">Q", pow_target(1113, 86400, 16))
    got["pow.trial.zero.0"] = struct.pack(">Q", pow_trial(b"\0" * 32, 0))

    # The envelope: parse, check, decrypt and verify from the document alone.
    env = vec["envelope.bytes"]
    got["envelope.id"] = b2b(env)
    got["wire.pushes.envelope"] = bytes([14, 1]) + struct.pack(">H", len(env)) + env
    hdr, ct, nonce = env[:65], env[65:-8], struct.unpack(">Q", env[-8:])[0]
    version, created, expiry = hdr[0], *struct.unpack(">QQ", hdr[1:17])
    assert version == 1 and len(env) - 89 in (256, 1024, 4096, 16384)
    assert pow_trial(b2b(env[:-8]), nonce) <= pow_target(len(env), expiry - created, 32)
    pt = xchacha_decrypt(vec["envelope.key"], b2b(hdr, 24, b"chapar-env-nonce-v1"), ct, hdr)
    sender, sig, ctype = pt[:32], pt[32:96], pt[96]
    plen = struct.unpack(">I", pt[97:101])[0]
    payload = pt[101:101 + plen]
    assert sender == pa and ctype == 2 and not any(pt[101 + plen:])
    msg = b"chapar-inner-sig-v1" + hdr + bytes([ctype]) + struct.pack(">I", plen) + b2b(payload)
    Ed25519PublicKey.from_public_bytes(sender).verify(sig, msg)
    assert payload.decode("utf-8") == "salam \u0633\u0644\u0627\u0645"

    kf = vec["keyfile.alice.key_mode"]
    assert kf[:8] == b"CHAPARK1" and kf[8] == 2 and len(kf) == 105
    assert xchacha_decrypt(vec["keyfile.key"], kf[33:57], kf[57:], kf[:57]) == sa
    kf = vec["keyfile.alice.passphrase_mode.correct horse"]
    assert kf[:8] == b"CHAPARK1" and kf[8] == 1 and struct.unpack(">II", kf[9:17]) == (1, 8)

    bad = [k for k in got if got[k] != vec.get(k)]
    for k in bad:
        print("MISMATCH %s\n  file: %s\n  here: %s" % (k, vec.get(k, b"").hex(), got[k].hex()))
    print("%d vectors checked independently, %d mismatches" % (len(got), len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
