#!/usr/bin/env python3
"""ctl_errors.py SRCDIR: fails when an error format that chapard sends over
the control API (a N_("...") with a printf directive in the daemon files
of DAEMON_FILES) is missing from the table chapar and chapar-tui match
replies against (node/client/ctl_errtext.c), or the table holds one the
daemon no longer sends. Exact texts need no table: the clients look them
up in the catalogue as they are (docs/I18N.md)."""
import re
import sys

DAEMON_FILES = ["node/msg/msg_ctl.c", "node/daemon/control.c", "node/daemon/bundle_ctl.c",
                "node/daemon/bundle.c", "node/daemon/bundle_io.c"]
TABLE = "node/client/ctl_errtext.c"
LIT = r'"(?:[^"\\\n]|\\.)*"'
MARKED = re.compile(r"N_\(((?:\s*" + LIT + r")+)\s*\)")
DIRECTIVE = re.compile(r"%[-+ #0]*[0-9]*(?:\.[0-9]+)?(?:hh|h|ll|l|z|j|t)?[diouxXsc]")


def formats(path):
    text = open(path, encoding="utf-8").read().replace("\\\n", " ")
    out = set()
    for m in MARKED.finditer(text):
        s = "".join(p[1:-1] for p in re.findall(LIT, m.group(1)))
        if DIRECTIVE.search(s.replace("%%", "")):
            out.add(s)
    return out


def main():
    src = sys.argv[1]
    sent = set()
    for f in DAEMON_FILES:
        sent |= formats(f"{src}/{f}")
    table = formats(f"{src}/{TABLE}")
    bad = 0
    for s in sorted(sent - table):
        print(f"{TABLE} lacks the daemon's error format: {s}", file=sys.stderr)
        bad = 1
    for s in sorted(table - sent):
        print(f"{TABLE} has a format the daemon no longer sends: {s}", file=sys.stderr)
        bad = 1
    if not sent:
        print("no error formats found in the daemon files", file=sys.stderr)
        bad = 1
    if not bad:
        print(f"{len(sent)} error formats of the daemon, all in {TABLE}")
    return bad


sys.exit(main())
