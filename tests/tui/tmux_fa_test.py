#!/usr/bin/env python3
"""tmux_fa_test.py - chapar-tui in Persian, as a Persian reader sees it.

Under LANG=fa_IR.UTF-8 (made with localedef into a temporary LOCPATH when
the machine lacks it) and the catalogue of the build tree
(CHAPAR_LOCALEDIR), chapar-tui starts its chapard and runs the first-start
wizard: its questions and prompts are Persian, /help lists the commands in
Persian, the status bar is Persian and times have Persian digits. Then, with
/set bidi app, a Persian post to #lan shows in visual order, its letters
joined, right-aligned, the sender's Latin nick at its right end - the
expectation worked out by hand from the Unicode Bidirectional Algorithm
(UAX #9) and the Arabic joining rules, independently of FriBidi:
logical "ali: سلام دنیا" in a right-to-left paragraph (the text's first
strong letter is Arabic-script) is, left to right on the screen,
"دنیا" reversed and joined (alef final FE8E, Farsi yeh medial FBFF, noon
initial FEE7, dal isolated FEA9), a space, "سلام" (meem isolated FEE1,
lam-alef final ligature FEFC, seen initial FEB3), " :" and "ali".

usage: tmux_fa_test.py CHAPAR-TUI CHAPARD CHAPAR LOCALEDIR
exit 0 pass, 1 fail, 77 skip (no tmux, or no localedef / fa_IR source)
"""
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tmux_test import Fail, Run, status_line  # noqa: E402

VISUAL = "\uFE8E\uFBFF\uFEE7\uFEA9 \uFEE1\uFEFC\uFEB3 :ali"


def fa_locale(tmp):
    """The LOCPATH to use for fa_IR.UTF-8: "" when the system has it, else a
    directory localedef made it in; None when it cannot be made."""
    have = subprocess.run(["locale", "-a"], capture_output=True, text=True).stdout.lower()
    if "fa_ir.utf8" in have or "fa_ir.utf-8" in have:
        return ""
    if not shutil.which("localedef"):
        return None
    path = os.path.join(tmp, "locale")
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["localedef", "-i", "fa_IR", "-f", "UTF-8",
                        os.path.join(path, "fa_IR.UTF-8")], capture_output=True, text=True)
    if not os.path.isdir(os.path.join(path, "fa_IR.UTF-8")):
        print("localedef failed: %s" % r.stderr.strip())
        return None
    return path


def lsan_env(tmp):
    """LSAN_OPTIONS for a sanitizer build run with LOCPATH: libp11-kit's
    constructor (pulled in by GnuTLS under libmicrohttpd) calls newlocale(),
    which leaks its copy of LOCPATH in glibc 2.36 - not Chapar's memory."""
    supp = os.path.join(tmp, "lsan.supp")
    with open(supp, "w") as f:
        f.write("leak:libp11-kit.so\n")
    old = os.environ.get("LSAN_OPTIONS", "")
    # the full unwinder: the fast one stops inside glibc, before the library
    return (old + ":" if old else "") + "suppressions=%s:fast_unwind_on_malloc=0" % supp


class FaRun(Run):
    def __init__(self, tui, chapard, chapar, localedir, locpath):
        super().__init__(tui, chapard, chapar)
        self.fa_env = "LANG=fa_IR.UTF-8 LC_ALL= LANGUAGE= CHAPAR_LOCALEDIR=%s %s" % (
            localedir, "LOCPATH=%s LSAN_OPTIONS=%s" % (locpath, lsan_env(self.dir))
            if locpath else "")

    def open_fa(self, name, bidi, width=80):
        cmd = "env %s TERM=xterm-256color CHAPARD_ARGS='--no-discovery --listen 127.0.0.1:0' " \
              "%s --bidi %s --home %s; echo $? > %s" % (
                  self.fa_env, self.tui, bidi, self.home(name),
                  os.path.join(self.dir, name + ".exit"))
        self.tmux("new-session", "-d", "-s", name, "-x", str(width), "-y", "24", cmd)
        self.tmux("set-option", "-t", name, "remain-on-exit", "on")


def cli_in_persian(r, chapar, locpath):
    """chapar under the same Persian locale: help and errors in Persian,
    human dates Jalali with Persian digits, but `status` keys, TSV and
    numbers exactly as under C."""
    env = dict(r.env, LANG="fa_IR.UTF-8", LC_ALL="", CHAPAR_LOCALEDIR=sys.argv[4])
    if locpath:
        env["LOCPATH"] = locpath
        env["LSAN_OPTIONS"] = lsan_env(r.dir)
    env_c = dict(r.env, LANG="C.UTF-8", LC_ALL="C.UTF-8")

    def run(e, *a):
        return subprocess.run([chapar, "--home", r.home("p")] + list(a), env=e,
                              capture_output=True, text=True, timeout=10)
    h = run(env, "send", "--help")
    if "استفاده: chapar send TO TEXT" not in h.stdout:
        raise Fail("chapar send --help is not Persian:\n" + h.stdout)
    e = run(env, "leave")
    if e.returncode != 2 or "استفاده: chapar leave ROOM" not in e.stderr:
        raise Fail("chapar leave (bad usage) is not one Persian line: %r" % e.stderr)
    fa, c = run(env, "status"), run(env_c, "status")
    keys = lambda out: [l.split(":")[0] for l in out.splitlines()]
    if fa.returncode or keys(fa.stdout) != keys(c.stdout) or "peers connected: " not in fa.stdout:
        raise Fail("status keys change with the locale:\n%s\n%s" % (fa.stdout, c.stdout))
    tsv = run(env, "history", "#lan", "--tsv")
    if tsv.returncode or not re.search(r"^[0-9]+\tout\tali\t", tsv.stdout, re.M) or \
            tsv.stdout != run(env_c, "history", "#lan", "--tsv").stdout:
        raise Fail("history --tsv differs under the Persian locale:\n" + tsv.stdout)
    hum = run(env, "history", "#lan")
    if not re.search("[\u06f0-\u06f9]{4}/[\u06f0-\u06f9]{2}/[\u06f0-\u06f9]{2} "
                     "[\u06f0-\u06f9]{2}:[\u06f0-\u06f9]{2}  ali", hum.stdout) or \
            "سلام دنیا" not in hum.stdout:
        raise Fail("history for people: no Jalali date in Persian digits, or the text "
                   "not in logical order:\n" + hum.stdout)
    # chapard's error reply: Persian under fa_IR, byte for byte English under C
    # (the first line: a sanitizer build may add its report of suppressions)
    fa, c = run(env, "send", "nobody", "hi"), run(env_c, "send", "nobody", "hi")
    if fa.returncode != 1 or fa.stderr.split("\n")[0] != "chapar: مخاطب ناشناخته 'nobody'":
        raise Fail("chapard's error is not Persian: %r" % fa.stderr)
    if c.returncode != 1 or c.stderr.split("\n")[0] != "chapar: unknown contact 'nobody'":
        raise Fail("chapard's error changed under C: %r" % c.stderr)
    r.log("p: chapar speaks Persian; status keys and TSV unchanged")


def main():
    if len(sys.argv) != 5:
        print(__doc__)
        return 2
    if not shutil.which("tmux"):
        print("tmux is not installed (scripts/install-deps --test installs it): skipped")
        return 77
    args = [os.path.abspath(a) for a in sys.argv[1:]]
    r = FaRun(*args, locpath="")
    try:
        locpath = fa_locale(r.dir)
        if locpath is None:
            print("cannot make the fa_IR.UTF-8 locale (Debian package locales): skipped")
            return 77
        r.fa_env = FaRun(*args, locpath=locpath).fa_env
        # The wizard, in logical order (--bidi terminal) so the text reads as written.
        r.open_fa("p", "terminal")
        r.wait_text("p", "chapard در پس‌زمینه")
        r.wait_text("p", "یک نام مستعار انتخاب کنید")
        r.wait_text("p", "نام مستعار:")
        r.keys("p", "ali")
        r.wait_text("p", "حالا یک عبارت عبور")
        r.wait_text("p", "عبارت عبور (Enter: بدون آن):")
        r.keys("p", "")
        r.wait_text("p", "برای تأیید none بنویسید:")
        r.keys("p", "none")
        s = r.wait_screen("p", lambda s: "ali (" in status_line(s) and "همتاها:" in status_line(s),
                          "identity made; the status bar in Persian")
        r.wait_text("p", "هویت شما آماده است")
        if not re.search("[\u06f0-\u06f9]{2}:[\u06f0-\u06f9]{2}", s):
            raise Fail("p: no time in Persian digits:\n" + s)
        # /help: the commands explained in Persian
        r.keys("p", "/help")
        r.wait_text("p", "بیرون رفتن از chapar-tui")
        r.wait_text("p", "عوض کردن نام مستعار")
        r.wait_text("p", "کلیدها: Alt+1..9")
        # /set: the settings, then Chapar's own right-to-left display
        r.keys("p", "/set calendar jalali")
        r.wait_text("p", "تنظیم‌ها: bidi terminal, calendar jalali,")
        # an error chapard sends (English on the wire) is shown in Persian
        r.keys("p", "/msg nobody hi")
        r.wait_text("p", "به nobody فرستاده نشد: مخاطب ناشناخته 'nobody'")
        r.keys("p", "/set bidi app")
        r.wait_text("p", "bidi app, calendar jalali, digits persian :")  # the Persian word left of it
        # typed, not sent yet: the input line shows it joined, right-aligned
        r.keys("p", "سلام دنیا", enter=False)
        s = r.wait_screen("p", lambda s: s.rstrip("\n").split("\n")[-1].endswith(VISUAL[:8]),
                          "the Persian input line in visual order, at the right")
        r.key("p", "Enter")
        s = r.wait_screen("p", lambda s: VISUAL in s, "the Persian post in visual order")
        row = next(l for l in s.split("\n") if VISUAL in l)
        if not row.rstrip().endswith(VISUAL) or len(row.rstrip()) != 80:
            raise Fail("p: the right-to-left post is not right-aligned:\n%r" % row)
        if "سلام دنیا" in s:
            raise Fail("p: the post still shows in logical order:\n" + s)
        cli_in_persian(r, args[2], locpath)
        r.keys("p", "/quit")
        r.wait_exit("p")
        r.log("pass")
        return 0
    except (Fail, OSError, subprocess.SubprocessError, StopIteration) as e:
        print("FAIL:", e, flush=True)
        for name in ("p",):
            try:
                print("---- screen %s ----\n%s" % (name, r.screen(name)))
            except Exception:
                pass
        return 1
    finally:
        r.cleanup()


if __name__ == "__main__":
    sys.exit(main())
