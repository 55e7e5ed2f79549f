#!/usr/bin/env python3
"""Independent check of tests/vectors/file.exp against docs/PROTOCOL.md
§18.8-18.9, written from the document with hashlib only: the manifest of
the 40000-byte file, its hash (BLAKE2b-256 over the pieces' digests, each
the BLAKE2b-256 of the piece payload fileid | index | data) and the
payload of its last piece. The cleaned names are the C test's."""
import hashlib
import struct
import sys

PIECE = 16256


def b2b(data):
    return hashlib.blake2b(data, digest_size=32).digest()


def piece(fid, i, data):
    return fid + struct.pack(">I", i) + data


def main(path):
    exp = {}
    for line in open(path):
        if line.strip() and not line.startswith("#"):
            name, hexv = line.split()
            exp[name] = bytes.fromhex(hexv)
    fid = bytes(range(16))
    data = bytes(i % 251 for i in range(40000))
    count = (len(data) + PIECE - 1) // PIECE
    pieces = [piece(fid, i, data[i * PIECE:(i + 1) * PIECE]) for i in range(count)]
    fhash = b2b(b"".join(b2b(p) for p in pieces))
    name, mime, caption = b"photo.jpg", b"image/jpeg", "سلام".encode()
    manifest = (fid + struct.pack(">QII", len(data), PIECE, count) + fhash +
                bytes([len(name)]) + name + bytes([len(mime)]) + mime +
                struct.pack(">H", len(caption)) + caption)
    got = {"file.hash": fhash, "file.manifest": manifest, "file.piece.2": pieces[2]}
    # the old definition (BLAKE2b-256 of the whole file) must not match
    assert b2b(data) != fhash
    bad = 0
    for key, value in got.items():
        if exp.get(key) != value:
            print(f"MISMATCH {key}", file=sys.stderr)
            bad = 1
        else:
            print(f"ok {key}")
    return bad


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
