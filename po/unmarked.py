#!/usr/bin/env python3
"""unmarked.py SRCDIR: fails when a string people read is printed without
_() in the programs' user-facing files: the format or text argument of
printf, fprintf, fputs, cli_fail and chp_app_notice that is a string
literal holding a word. What is printed for machines (TSV, versions, the
URL share-app prints first, log keys) is listed in ALLOWED with the reason.
"""
import glob
import os
import re
import sys

# every source of chapar and chapar-tui, and chapard's main: found, not
# listed, so a new file is checked from its first commit
SOURCES = ("node/cli/*.c", "ui-tui/*.c", "node/daemon/chapard.c")
# argument index (0-based) of the text each call prints
CALLS = {"cli_fail": 1, "fprintf": 1, "printf": 0, "chp_app_notice": 1, "fputs": 0, "puts": 0}
ALLOWED = {
    "chapar %s\\n",            # --version: scripts read it
    "chapard %s\\n",
    "chapar-tui %s\\n",
    "http://%s/\\n",           # share-app's first line: the TUI and scripts read the URL
    "chapar-tui: %s\\n",       # a message translated where it was made
    "chapard: %s\\n",
    "chapard: %s/%s: %s\\n",   # a path and chp_strerror
    "\\xef\\xbf\\xbd",         # U+FFFD for a bad byte
}


def skip_arg(s, i):
    depth = 0
    while i < len(s):
        c = s[i]
        if c in "\"'":
            q = c
            i += 1
            while s[i] != q:
                i += 2 if s[i] == "\\" else 1
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                return i
            depth -= 1
        elif c == "," and depth == 0:
            return i
        i += 1
    return i


def literal_at(s, i):
    text = ""
    while i < len(s) and s[i] == '"':
        k = i + 1
        while s[k] != '"':
            k += 2 if s[k] == "\\" else 1
        text += s[i + 1:k]
        i = k + 1
        while i < len(s) and s[i] in " \t\n":
            i += 1
    return text


def has_words(text):
    t = re.sub(r"%[-+ #0-9.*]*(?:hh|h|ll|l|z|j|t)?[a-zA-Z%]", "", text)
    t = re.sub(r"\\[ntr]", " ", t)
    return re.search(r"[A-Za-z]{2,}", t) is not None


def main():
    src = sys.argv[1]
    bad = 0
    files = [os.path.relpath(f, src) for pat in SOURCES
             for f in sorted(glob.glob(os.path.join(src, pat)))]
    for f in files:
        s = open(f"{src}/{f}", encoding="utf-8").read()
        for m in re.finditer(r"\b(" + "|".join(CALLS) + r")\s*\(", s):
            i = m.end()
            for _ in range(CALLS[m.group(1)]):
                i = skip_arg(s, i)
                if i >= len(s) or s[i] != ",":
                    break
                i += 1
            else:
                while i < len(s) and s[i] in " \t\n":
                    i += 1
                if i < len(s) and s[i] == '"':
                    text = literal_at(s, i)
                    if has_words(text) and text not in ALLOWED:
                        line = s.count("\n", 0, i) + 1
                        print(f"{f}:{line}: not marked for translation: \"{text[:70]}\"")
                        bad += 1
    if bad:
        print(f"{bad} string(s) people read are not in _() (node/common/i18n.h, docs/I18N.md)")
        return 1
    print("every printed string with words is marked for translation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
