#!/usr/bin/env python3
"""Independent check of tests/vectors/bundle.exp against docs/PROTOCOL.md
§19, written from the document with hashlib only: the record layer
(keyed BLAKE2b chain, END count) and the want summary (ranges with §14
fingerprints, the IBLT of 8-byte prefixes). The sealed vectors need
Argon2id and XChaCha20-Poly1305, which hashlib lacks: the C test checks
them."""
import hashlib
import struct
import sys


def b2b(data, n, key=b""):
    return hashlib.blake2b(data, digest_size=n, key=key).digest()


def records(kind, recs):
    out = b"CHPBNDL" + bytes([kind])
    chain = bytes([kind]) + bytes(15)
    for typ, payload in recs + [(3, struct.pack(">Q", len(recs)))]:
        head = bytes([typ]) + struct.pack(">I", len(payload)) + payload
        chain = b2b(head, 16, chain)
        out += head + chain
    return out


def varint(n):
    digits = [n & 0x7F]
    n >>= 7
    while n:
        digits.append(n & 0x7F)
        n >>= 7
    digits.reverse()
    return bytes(d | (0x80 if i + 1 < len(digits) else 0) for i, d in enumerate(digits))


def fingerprint(ids):
    s = sum(int.from_bytes(i, "little") for i in ids) % (1 << 256)
    return hashlib.sha256(s.to_bytes(32, "little") + varint(len(ids))).digest()[:16]


def want(items, salt):
    """items: sorted (created, id). The §19.3 payload."""
    n = len(items)
    r_count = min(max(n // 64, 1), 256)
    # range starts: item floor(r * n / R), moved on past equal prefixes
    bounds, start = [], 0
    for r in range(1, r_count):
        j = max(r * n // r_count, start + 1)
        while j < n and (items[j][0], items[j][1][:8]) <= (items[j - 1][0], items[j - 1][1][:8]):
            j += 1
        if j >= n:
            break
        bounds.append((items[j][0], items[j][1][:8]))
        start = j
    ranges = []
    lo = None
    for hi in bounds + [(2**64 - 1, b"\xff" * 8)]:
        ids = [i for (c, i) in items if (lo is None or (c, i) >= (lo[0], lo[1] + bytes(24)))
               and (c, i) < (hi[0], hi[1] + bytes(24))]
        ranges.append(struct.pack(">Q", hi[0]) + hi[1] + struct.pack(">I", len(ids)) +
                      fingerprint(ids))
        lo = hi
    m = min(max(n // 4, 96), 3840)
    m -= m % 3
    cells = [[0, 0, 0] for _ in range(m)]
    for (_, i) in items:
        key = int.from_bytes(i[:8], "big")
        h = b2b(i[:8], 16, salt)
        check = int.from_bytes(h[:4], "big")
        for j in range(3):
            c = cells[int.from_bytes(h[4 + 4 * j:8 + 4 * j], "big") % (m // 3) + j * (m // 3)]
            c[0] = (c[0] + 1) % 65536
            c[1] ^= key
            c[2] ^= check
    return (salt + struct.pack(">QH", n, len(ranges)) + b"".join(ranges) + struct.pack(">I", m) +
            b"".join(struct.pack(">HQI", *c) for c in cells))


def main(path):
    exp = {}
    for line in open(path):
        if line.strip() and not line.startswith("#"):
            name, hexv = line.split()
            exp[name] = bytes.fromhex(hexv)
    bad = 0
    got = {
        "bundle.open": records(1, [(1, bytes(range(100))),
                                   (1, bytes((100 + i) % 256 for i in range(200)))]),
        "want.4": want([(1800000000 + i, b2b(bytes([i]), 32)) for i in range(4)],
                       bytes(range(0x10, 0x20))),
        "want.200": want(sorted((1800000000 + i // 50, b2b(struct.pack(">H", i), 32))
                                for i in range(200)), bytes(range(0x20, 0x30))),
    }
    for name, value in got.items():
        if exp.get(name) != value:
            print(f"MISMATCH {name}", file=sys.stderr)
            bad = 1
        else:
            print(f"ok {name}")
    return bad


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
