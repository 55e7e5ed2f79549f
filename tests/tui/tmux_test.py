#!/usr/bin/env python3
"""tmux_test.py - chapar-tui end to end, as a user sees it.

Two homes on loopback: chapar-tui starts A's chapard itself (CHAPARD_ARGS
keeps it off the LAN), B's chapard is started here and peers with A. Both
identities are created through the UI (A without a passphrase, B with
one), then lines typed in one UI must appear in the other's screen
(`tmux capture-pane`), Persian and CJK included; the delivery mark, the
unread count of a second room, Alt+digit switching, a resize and /quit are
checked too. Every wait polls the screen against a deadline; processes and
the private tmux server are cleaned up on every path.

usage: tmux_test.py CHAPAR-TUI CHAPARD CHAPAR
exit 0 pass, 1 fail, 77 skip (no tmux)
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

DEADLINE = 20.0  # seconds for anything that takes well under one when healthy


class Fail(Exception):
    pass


class Run:
    def __init__(self, tui, chapard, chapar):
        self.tui, self.chapard, self.chapar_bin = tui, chapard, chapar
        self.dir = tempfile.mkdtemp(prefix="chp-tui-")
        self.sock = "chp-tui-%d" % os.getpid()  # a private tmux server
        self.procs = []  # chapard processes we started (Popen)
        self.env = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8", TERM="xterm-256color")
        self.env.pop("TMUX", None)
        self.t0 = time.monotonic()

    def log(self, msg):
        print("[%5.1fs] %s" % (time.monotonic() - self.t0, msg), flush=True)

    def home(self, name):
        return os.path.join(self.dir, name)

    # ------------------------------------------------------------- tmux
    def tmux(self, *args, check=True):
        r = subprocess.run(["tmux", "-L", self.sock, "-f", "/dev/null", "-u"] + list(args),
                           env=self.env, capture_output=True, text=True, timeout=10)
        if check and r.returncode != 0:
            raise Fail("tmux %s: %s" % (" ".join(args), r.stderr.strip()))
        return r

    def open_tui(self, name, extra_env="", home=None, width=80):
        # A shell waits for chapar-tui and writes its exit status: tmux
        # 3.3 sometimes leaves a finished pane process unreaped for long.
        # --bidi terminal: these checks read text in the order it was typed
        # (tmux_fa_test.py checks the visual order of --bidi app).
        cmd = "env LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=xterm-256color %s %s --bidi terminal " \
              "--home %s; echo $? > %s" % (extra_env, self.tui, self.home(home or name),
                                os.path.join(self.dir, name + ".exit"))
        self.tmux("new-session", "-d", "-s", name, "-x", str(width), "-y", "24", cmd)
        # keep the pane after an exit, so a crash leaves its screen to read
        self.tmux("set-option", "-t", name, "remain-on-exit", "on")

    def screen(self, name):
        return self.tmux("capture-pane", "-p", "-t", name).stdout

    def keys(self, name, text, enter=True):
        if text:
            self.tmux("send-keys", "-t", name, "-l", text)
        if enter:
            self.tmux("send-keys", "-t", name, "Enter")

    def key(self, name, *keys):
        self.tmux("send-keys", "-t", name, *keys)

    def wait_screen(self, name, pred, what, deadline=DEADLINE):
        end = time.monotonic() + deadline
        while True:
            s = self.screen(name)
            if pred(s):
                self.log("%s: %s" % (name, what))
                return s
            if time.monotonic() > end:
                raise Fail("%s: timed out waiting for %s; screen:\n%s" % (name, what, s))
            time.sleep(0.05)

    def wait_text(self, name, text, deadline=DEADLINE):
        return self.wait_screen(name, lambda s: text in s, repr(text), deadline)

    def wait_exit(self, name):
        """Waits for chapar-tui in session name to exit, and wants 0."""
        end = time.monotonic() + DEADLINE
        status = os.path.join(self.dir, name + ".exit")
        while not os.path.exists(status) or not open(status).read().strip():
            if time.monotonic() > end:
                raise Fail("%s: chapar-tui did not exit after /quit" % name)
            time.sleep(0.05)
        with open(status) as f:
            code = f.read().strip()
        if code != "0":
            raise Fail("%s: chapar-tui exited with status %s after /quit" % (name, code))
        self.log("%s: exited 0" % name)

    # ------------------------------------------------------------- daemons
    def chapar(self, name, *args):
        return subprocess.run([self.chapar_bin, "--home", self.home(name)] + list(args),
                              capture_output=True, text=True, timeout=10)

    def wait_address(self, name):
        end = time.monotonic() + DEADLINE
        while True:
            r = self.chapar(name, "address")
            if r.returncode == 0 and r.stdout.strip():
                return r.stdout.strip()
            if time.monotonic() > end:
                raise Fail("%s: no address: %s" % (name, r.stderr.strip()))
            time.sleep(0.05)

    def start_chapard(self, name, *args):
        os.makedirs(self.home(name), mode=0o700, exist_ok=True)
        with open(os.path.join(self.home(name), "chapard.log"), "ab") as log:
            p = subprocess.Popen([self.chapard, "--home", self.home(name), "--no-discovery",
                                  "--listen", "127.0.0.1:0"] + list(args),
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        self.procs.append(p)
        return p

    def spawned_daemon_pids(self, home=None):
        """chapard processes chapar-tui started for our homes (they are not
        our children): found by their exact --home argument (one home, or
        any of ours)."""
        pids = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            for i, a in enumerate(argv[:-1]):
                h = argv[i + 1].decode(errors="replace")
                if a == b"--home" and (h == home if home else h.startswith(self.dir + "/")):
                    if os.path.basename(argv[0]) == b"chapard":
                        pids.append(int(pid))
        return pids

    def cleanup(self):
        self.tmux("kill-server", check=False)
        for pid in self.spawned_daemon_pids():
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        end = time.monotonic() + 5
        while time.monotonic() < end and (self.spawned_daemon_pids() or
                                          any(p.poll() is None for p in self.procs)):
            time.sleep(0.05)
        for pid in self.spawned_daemon_pids():
            os.kill(pid, signal.SIGKILL)
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        if os.environ.get("CHP_IT_KEEP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)

    def dump(self):
        for name in ("a", "b", "b2", "c1", "c2", "d", "e", "g"):
            try:
                print("---- screen %s ----\n%s" % (name, self.screen(name)))
            except Exception:
                pass
            try:
                with open(os.path.join(self.home(name), "chapard.log"), errors="replace") as f:
                    print("---- chapard.log %s (tail) ----\n%s" % (name, "".join(f.readlines()[-30:])))
            except OSError:
                pass


def kill_daemon(r, name):
    """kill -9 of the chapard that holds home name's lock (the pid is in
    DIR/chapard.lock, or found by its --home argument)."""
    pids = r.spawned_daemon_pids(r.home(name))
    if len(pids) != 1:
        raise Fail("%s: %d chapard running, wanted 1" % (name, len(pids)))
    os.kill(pids[0], signal.SIGKILL)
    r.log("%s: chapard %d killed" % (name, pids[0]))


def status_line(screen):
    lines = screen.rstrip("\n").split("\n")
    return lines[-2] if len(lines) >= 2 else ""


def ok(r, what):
    """A chapar run that must succeed; its result."""
    if r.returncode != 0:
        raise Fail("%s: %s" % (what, r.stderr.strip()))
    return r


def style_at(r, name, text):
    """The SGR parameters in force at the first character of text on the
    screen of name (tmux capture-pane -e), as a tuple; None if absent."""
    for line in r.tmux("capture-pane", "-p", "-e", "-t", name).stdout.split("\n"):
        plain, styles, cur = [], [], []
        for tok in re.findall(r"\x1b\[[0-9;]*m|\x1b[^\[]|[^\x1b]", line):
            if tok.startswith("\x1b["):
                for p in tok[2:-1].split(";"):
                    cur = [] if p in ("", "0") else cur + [p]
            elif not tok.startswith("\x1b"):
                plain.append(tok)
                styles.append(tuple(cur))
        i = "".join(plain).find(text)
        if i >= 0:
            return styles[i]
    return None


def pane_text(screen):
    """The conversation pane of an 80-column screen as one line of words
    (the list's 18 columns cut off), so a wrapped line reads whole."""
    return " ".join(" ".join(l[18:] for l in screen.split("\n")).split())


def send_a_file(r):
    """A sends B a photo from the DM with /file; B's /files lists it and
    /save 1 writes the same bytes."""
    src = os.path.join(r.dir, "photo.jpg")
    with open(src, "wb") as f:
        f.write(os.urandom(40000))
    # Tab with two names completes their common start and lists them in
    # the status line, until the next key
    for n in ("pa-one.txt", "pa-two.txt"):
        open(os.path.join(r.dir, n), "w").close()
    r.keys("a", "/file " + os.path.join(r.dir, "pa"), enter=False)
    r.key("a", "Tab")
    r.wait_text("a", "/file " + os.path.join(r.dir, "pa-"))
    r.wait_screen("a", lambda s: "pa-one.txt  pa-two.txt" in status_line(s),
                  "Tab: the names in the status line")
    r.key("a", "C-u")
    r.wait_screen("a", lambda s: "pa-one.txt" not in status_line(s), "the list gone")
    # Tab completes the path
    r.keys("a", "/file " + os.path.join(r.dir, "pho"), enter=False)
    r.key("a", "Tab")
    r.wait_text("a", "/file " + src)
    r.keys("a", "")
    r.wait_text("a", "file queued")
    r.wait_text("a", "\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588] 3/3")
    r.wait_text("b", "[file] photo.jpg (39.1 KiB) saved to")
    r.keys("b", "/files")
    r.wait_text("b", "1. photo.jpg (40000 B) from ali")
    dst = os.path.join(r.dir, "saved-photo.jpg")
    r.keys("b", "/save 1 " + dst)
    r.wait_screen("b", lambda s: "saved to " + dst in pane_text(s), "/save: where")
    with open(src, "rb") as a, open(dst, "rb") as b:
        if a.read() != b.read():
            raise Fail("b: /save wrote other bytes than a sent")


def ogg_crc(data):
    """The Ogg page CRC-32 (polynomial 0x04c11db7, not reflected)."""
    crc = 0
    for b in data:
        crc ^= b << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04c11db7) if crc & 0x80000000 else crc << 1
            crc &= 0xffffffff
    return crc


def ogg_page(kind, granule, serial, seq, body):
    """One Ogg page holding one packet (RFC 3533), its CRC filled in."""
    segs = [255] * (len(body) // 255) + [len(body) % 255]
    hdr = b"OggS" + bytes([0, kind]) + granule.to_bytes(8, "little") + \
        serial.to_bytes(4, "little") + seq.to_bytes(4, "little") + b"\0\0\0\0" + \
        bytes([len(segs)]) + bytes(segs)
    page = bytearray(hdr + body)
    page[22:26] = ogg_crc(page).to_bytes(4, "little")
    return bytes(page)


def opus_file(seconds, pages, page_bytes):
    """An Ogg Opus file of seconds (pre-skip 312): OpusHead, OpusTags, then
    pages of audio bytes."""
    head = b"OpusHead" + bytes([1, 1]) + (312).to_bytes(2, "little") + \
        (48000).to_bytes(4, "little") + b"\0\0\0"
    out = ogg_page(2, 0, 77, 0, head) + ogg_page(0, 0, 77, 1, b"OpusTags\0\0\0\0\0\0\0\0")
    audio = bytes((i * 131 + 7) & 255 for i in range(page_bytes))
    end = int(seconds * 48000) + 312
    for p in range(1, pages + 1):
        out += ogg_page(4 if p == pages else 0, end * p // pages, 77, 1 + p, audio)
    return out


def send_a_voice_note(r):
    """A sends B a 42.5 s voice note of 20 pieces: B's line shows a bar that
    moves while the pieces come (0/20 at the manifest, every 8 pieces) and
    completes, then the node's duration; /files says it too."""
    src = os.path.join(r.dir, "voice.opus")
    with open(src, "wb") as f:
        f.write(opus_file(42.5, 60, 5400))
    size = os.path.getsize(src)
    count = (size + 16255) // 16256
    r.keys("a", "/file " + src)
    r.wait_text("a", "file queued")
    bar = re.compile(r"\[file\] \[voice note\] voice\.opus \([0-9.]+ KiB\) "
                     r"\[[\u2588\u2591]{10}\] (\d+)/%d" % count)
    partial = r.wait_screen(
        "b", lambda s: any(int(m) < count for m in bar.findall(pane_text(s))),
        "the incoming bar before the file is complete")
    r.log("b: %s" % bar.search(pane_text(partial)).group(0))
    r.wait_screen("b", lambda s: "voice note 0:42 saved to" in pane_text(s) and
                  "\u2588" * 10 + "] %d/%d" % (count, count) in pane_text(s),
                  "the voice note complete, 0:42, a full bar")
    r.keys("b", "/files")
    r.wait_screen("b", lambda s: "2. [voice note 0:42] voice.opus (%d B) from ali" % size
                  in pane_text(s), "/files: the voice note with its duration")
    # /open plays it: no xdg-open in B's PATH, so the fake mpv, detached
    saved = os.path.join(r.home("b"), "files", "ali", "voice.opus")
    r.keys("b", "/open 2")
    r.wait_screen("b", lambda s: "playing %s with mpv" % saved in pane_text(s), "/open: mpv")
    played = os.path.join(r.dir, "played.tmp")
    end = time.monotonic() + DEADLINE
    while not (os.path.exists(played) and open(played).read() == "--no-video\n%s\n" % saved):
        if time.monotonic() > end:
            raise Fail("b: the player did not get [--no-video, %s]" % saved)
        time.sleep(0.05)
    r.log("b: mpv got --no-video %s" % saved)


def stranger_takes_a_nick(r, idb):
    """E, a stranger to B, posts to #lan as "ali", the nick of B's contact
    ali: B's window shows E as ~ali with E's fingerprint, in another colour
    than the contact. E changes nick: B sees a notice saying so, not a
    post from someone called "*". E asks to be B's contact: Tab completes
    the stranger to what /accept takes, and the accepted E shows by name."""
    r.start_chapard("e")
    r.wait_address("e")
    ok(r.chapar("e", "init", "--nick", "ali", "--no-passphrase"), "e: init")
    ok(r.chapar("e", "peer", "add", r.wait_address("b")), "e: peer add")
    r.key("b", "M-1")
    r.wait_text("b", "[#lan]")
    ok(r.chapar("e", "send", "#lan", "i am ali too"), "e: send")
    s = r.wait_screen("b", lambda s: re.search(r"~ali \([a-z0-9]{8}\): i am ali too", s),
                      "the stranger as ~ali (fingerprint)")
    fpr = re.search(r"~ali \(([a-z0-9]{8})\): i am ali too", s).group(1)
    if "ali: hello from ali" not in s:
        raise Fail("b: the contact ali no longer shows as ali:\n" + s)
    contact, stranger = style_at(r, "b", "ali: hello"), style_at(r, "b", "~ali (")
    if contact is None or stranger is None or contact == stranger:
        raise Fail("b: stranger and contact drawn alike (%r, %r)" % (stranger, contact))

    # The CLI has no nick command: E's own window changes it.
    r.open_tui("e")
    r.wait_text("e", "[#lan]")
    r.keys("e", "/nick bob")
    r.wait_text("e", "you are now bob")
    r.keys("e", "/quit")
    r.wait_exit("e")
    ok(r.chapar("e", "send", "#lan", "bob here"), "e: send")
    s = r.wait_text("b", "~bob (%s): bob here" % fpr)
    said = "-- ~ali (%s) is now known as ~bob (%s)" % (fpr, fpr)
    if said not in s or "*:" in s:
        raise Fail("b: the nick change is not a notice:\n" + s)
    if style_at(r, "b", said[3:]) in (style_at(r, "b", "bob here"), None):
        raise Fail("b: the nick change is drawn as a post")

    # E's request: Tab turns the stranger into what /accept takes.
    ok(r.chapar("e", "contact", "add", idb, "sara"), "e: contact add")
    r.wait_text("b", "contact request from ~bob")
    r.keys("b", "/accept ~b", enter=False)
    r.key("b", "Tab")
    r.wait_screen("b", lambda s: "/accept ~bob " in s.rstrip("\n").split("\n")[-1] + " ",
                  "/accept ~bob completed")
    r.key("b", "Enter")
    r.wait_text("b", "bob is now a contact")
    r.wait_text("b", "bob: bob here")  # a contact now: by name, no ~
    r.procs[-1].terminate()
    r.procs[-1].wait(timeout=10)


def rooms_of_one_name(r):
    """A room joined by another client (the CLI) shows in the window with
    its fingerprint in the title; /join of that name with another
    passphrase is refused, and the whole reason (both fingerprints) shows."""
    pf = os.path.join(r.dir, "kitchen.pass")
    with open(pf, "w") as f:
        f.write("stew and rice\n")
    j = ok(r.chapar("b", "join", "#kitchen", "--passphrase-file", pf), "b: join")
    fp = re.search(r"fingerprint ([a-z0-9]+)", j.stdout).group(1)
    r.wait_screen("b", lambda s: any("#kitchen" in l[:18] for l in s.split("\n")),
                  "#kitchen listed")
    r.keys("b", "/msg #kitchen")
    r.wait_screen("b", lambda s: "#kitchen \u00b7 passphrase \u00b7 " + fp in s.split("\n")[0],
                  "#kitchen title with its fingerprint")
    r.keys("b", "/join #kitchen not the stew")
    s = r.wait_text("b", "cannot join #kitchen")
    t = pane_text(s)
    m = re.search(r"already in #kitchen \(fingerprint %s\) with another passphrase "
                  r"\(this one gives fingerprint ([a-z0-9]+)\); leave it first, or check the "
                  r"passphrase" % fp, t)
    if not m or m.group(1) == fp:
        raise Fail("b: the refusal is not shown whole:\n" + s)
    r.keys("b", "/msg ali")
    r.wait_text("b", "[ali]")


def share_app(r):
    """/share-app runs `chapar share-app` as a child: without a .deb its one
    line says what to do; with files (CHAPAR_DIST) the page's address shows
    in the status bar, the page answers, and /share-app stop ends it."""
    # a second window on B's node, whose children look in dist (empty yet)
    dist = os.path.join(r.dir, "dist")
    os.makedirs(dist, exist_ok=True)
    r.open_tui("s", "CHAPAR_DIST=%s" % dist, home="b", width=120)
    r.wait_text("s", "[#lan]")
    r.keys("s", "/share-app 127.0.0.1:0")
    r.wait_text("s", "make deb")
    r.wait_text("s", "share-app stopped (exit 1)")
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True,
                          text=True).stdout.strip()
    for name, size in (("chapar_0.1.0_%s.deb" % arch, 3000), ("chapar-0.1.0.tar.xz", 2000)):
        with open(os.path.join(dist, name), "wb") as f:
            f.write(os.urandom(size))
    r.keys("s", "/share-app 127.0.0.1:0")
    s = r.wait_screen("s", lambda s: "sharing http://127.0.0.1:" in status_line(s),
                      "the page's address in the status bar")
    url = re.search(r"sharing (http://127\.0\.0\.1:\d+/)", status_line(s)).group(1)
    import urllib.request
    page = urllib.request.urlopen(url, timeout=10).read().decode()
    if 'dir="rtl"' not in page or "MANIFEST" not in page:
        raise Fail("s: the shared page is not the page:\n" + page[:500])
    r.keys("s", "/share-app stop")
    r.wait_text("s", "share-app stopped (exit 0)")
    r.wait_screen("s", lambda s: "sharing" not in status_line(s), "status bar without sharing")
    r.keys("s", "/quit")
    r.wait_exit("s")


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    if not shutil.which("tmux"):
        print("tmux is not installed (scripts/install-deps --test installs it): skipped")
        return 77
    r = Run(*[os.path.abspath(a) for a in sys.argv[1:]])
    try:
        # A: chapar-tui finds no daemon, starts one and says so; the wizard
        # creates an identity with (explicitly) no passphrase.
        r.open_tui("a", "CHAPARD_ARGS='--no-discovery --listen 127.0.0.1:0'")
        r.wait_text("a", "started chapard in the background")
        r.wait_text("a", "nickname:")
        r.keys("a", "ali")
        r.wait_text("a", "passphrase (Enter: none):")
        r.keys("a", "")
        r.wait_text("a", "type none to confirm:")
        r.keys("a", "none")
        s = r.wait_screen("a", lambda s: "ali (" in status_line(s) and "[#lan]" in s,
                          "identity made, in #lan")
        if "1 #lan" not in s:
            raise Fail("a: #lan is not in the conversation list:\n" + s)
        addr_a = r.wait_address("a")

        # B: a daemon of our own, peered with A; the UI must not start another.
        r.start_chapard("b")
        r.wait_address("b")
        pr = r.chapar("b", "peer", "add", addr_a)
        if pr.returncode != 0:
            raise Fail("peer add: " + pr.stderr)
        # B's PATH holds only a fake mpv (no xdg-open): /open of a voice
        # note must fall through the players to it, path as one argument.
        fakebin = os.path.join(r.dir, "fakebin")
        os.mkdir(fakebin)
        with open(os.path.join(fakebin, "mpv"), "w") as f:
            f.write("#!/bin/sh\nprintf '%%s\\n' \"$@\" > %s\n" % os.path.join(r.dir, "played.tmp"))
        os.chmod(os.path.join(fakebin, "mpv"), 0o755)
        r.open_tui("b", "PATH=%s" % fakebin)
        r.wait_text("b", "nickname:")
        if "started chapard" in r.screen("b"):
            raise Fail("b: started a second chapard although one was running")
        r.keys("b", "sara")
        r.wait_text("b", "passphrase (Enter: none):")
        secret = "correct-horse-42"
        r.keys("b", secret)
        s = r.wait_text("b", "passphrase again:")
        r.keys("b", secret)
        r.wait_screen("b", lambda s: "sara (" in status_line(s) and "[#lan]" in s,
                      "identity made, in #lan")

        # Both see the link.
        r.wait_screen("a", lambda s: "peers: 1" in status_line(s), "peers: 1")
        r.wait_screen("b", lambda s: "peers: 1" in status_line(s), "peers: 1")

        # Lines typed in one UI show in the other, Persian and CJK too.
        r.keys("a", "hello from ali")
        r.wait_text("b", "ali")
        r.wait_text("b", "hello from ali")
        r.keys("a", "سلام دنیا")
        r.wait_text("b", "سلام دنیا")
        r.keys("b", "世界 ni hao")
        r.wait_text("a", "世界 ni hao")
        # The sender's own line gets a delivery mark beyond "queued".
        r.wait_screen("a", lambda s: any("hello from ali \u2713" in l for l in s.split("\n")),
                      "sent mark on own line")

        # Editing on the input line: type, move left over Persian, fix.
        r.keys("a", "سلم", enter=False)
        r.key("a", "Left")
        r.keys("a", "ا", enter=False)
        r.key("a", "End")
        r.keys("a", " world!", enter=False)
        r.key("a", "C-w")
        r.keys("a", "دنیا")
        r.wait_text("b", "سلام دنیا")  # already there; check the edited one below
        r.wait_screen("b", lambda s: s.count("سلام دنیا") >= 2, "edited Persian line")

        # A second room: unread count in B's list, Alt+digit switches.
        r.keys("a", "/join tea")
        r.wait_text("a", "[#tea]")
        r.wait_text("a", "joined #tea")
        # the room's title names its kind (and fingerprint, when the node gives one)
        r.wait_screen("a", lambda s: "#tea \u00b7 public" in s.split("\n")[0], "#tea title")
        r.keys("b", "/join #tea")
        r.wait_text("b", "[#tea]")
        r.key("b", "M-1")
        r.wait_text("b", "[#lan]")
        r.keys("a", "chai?")
        r.wait_screen("b", lambda s: any("#tea 1" in l for l in s.split("\n")), "unread 1 on #tea")
        r.key("b", "M-2")
        r.wait_text("b", "chai?")
        r.wait_screen("b", lambda s: "#tea 1" not in s, "unread cleared")

        # A contact: A adds B by ID, B sees the request and accepts it
        # (Tab completes the command), then a Persian DM is delivered.
        idb = r.chapar("b", "id").stdout.split()[0]
        r.keys("a", "/add %s sara" % idb)
        r.wait_text("b", "contact request from ~ali")
        r.keys("b", "/acc", enter=False)
        r.key("b", "Tab")
        r.wait_text("b", "/accept ")
        r.keys("b", "ali")
        r.wait_text("a", "sara is now a contact")
        r.keys("a", "/msg sara درود سارا")
        r.wait_text("a", "[sara]")
        r.wait_screen("b", lambda s: any(l.startswith("3 ali 1") for l in s.split("\n")),
                      "unread DM from ali")
        r.wait_screen("a", lambda s: "درود سارا \u2713\u2713" in s, "delivered mark")
        r.key("b", "M-3")
        r.wait_text("b", "ali: درود سارا")

        send_a_file(r)
        send_a_voice_note(r)
        stranger_takes_a_nick(r, idb)
        rooms_of_one_name(r)
        share_app(r)

        # A's chapard (started by the UI) dies: the status bar says so at
        # once instead of showing the dead node's peers, the UI restarts it
        # and says so, and a line typed afterwards reaches B.
        kill_daemon(r, "a")
        s = r.wait_screen("a", lambda s: "node down" in status_line(s), "node down", 3.0)
        if "peers:" in status_line(s):
            raise Fail("a: the status bar still counts peers of a dead node:\n" + s)
        r.wait_text("a", "restarting in 1 s", 3.0)
        s = r.wait_text("a", "node restarted")
        if "not answering" in s:
            raise Fail("a: a restarted node was called not answering:\n" + s)
        r.wait_screen("a", lambda s: "node down" not in status_line(s), "node up again")
        # port 0: the new chapard listens elsewhere; A dials B again
        r.chapar("a", "peer", "add", r.wait_address("b"))
        r.wait_screen("a", lambda s: "peers: 1" in status_line(s), "peers: 1 after restart")
        r.keys("a", "after the restart")
        r.wait_text("b", "after the restart")
        # A second death soon after: the next restart waits longer.
        kill_daemon(r, "a")
        r.wait_text("a", "restarting in 2 s", 3.0)
        r.wait_screen("a", lambda s: s.count("node restarted") >= 2, "restarted again")

        # Resize: the layout follows.
        r.tmux("resize-window", "-t", "b", "-x", "100", "-y", "30")
        r.wait_screen("b", lambda s: len(s.rstrip("\n").split("\n")) >= 29 and
                      "peers:" in status_line(s) and "ali: درود سارا" in s,
                      "redrawn at 100x30")

        # The passphrase never shows, on screen or in the daemon's log.
        for name in ("a", "b"):
            with open(os.path.join(r.home(name), "chapard.log"), errors="replace") as f:
                if secret in f.read():
                    raise Fail("passphrase in %s's chapard.log" % name)
        if secret in r.screen("b"):
            raise Fail("passphrase on screen")

        # /quit leaves the UI; the daemon keeps running.
        r.keys("a", "/quit")
        r.wait_exit("a")
        st = r.chapar("a", "status")
        if st.returncode != 0:
            raise Fail("a's chapard stopped with the UI: " + st.stderr)

        # B's daemon restarts locked: the UI asks for the passphrase,
        # refuses a wrong one and opens with the right one.
        # B's chapard was started by hand: when it dies the UI says so at
        # once, says how to start it, and does not start one itself; when
        # it is back (locked: B has a passphrase) the UI asks for it.
        r.procs[0].kill()
        r.procs[0].wait(timeout=10)
        s = r.wait_screen("b", lambda s: "node down" in status_line(s), "node down", 3.0)
        if "peers:" in status_line(s):
            raise Fail("b: the status bar still counts peers of a dead node:\n" + s)
        r.wait_text("b", "node down: start chapard --home")
        time.sleep(1.5)
        if r.spawned_daemon_pids(r.home("b")):
            raise Fail("b: the UI started a chapard for a node it had not started")
        r.start_chapard("b")
        r.wait_address("b")
        r.wait_text("b", "node is back")
        r.wait_text("b", "identity is locked")
        r.key("b", "C-c")
        r.wait_exit("b")
        if not r.spawned_daemon_pids(r.home("b")):
            raise Fail("b: quitting stopped a chapard the UI had not started")
        r.procs[-1].terminate()
        r.procs[-1].wait(timeout=10)
        r.start_chapard("b")
        r.wait_address("b")
        r.open_tui("b2", home="b")
        r.wait_text("b2", "identity is locked")
        r.keys("b2", "not-it")
        r.wait_text("b2", "Not unlocked")
        r.keys("b2", secret)
        r.wait_screen("b2", lambda s: "sara (" in status_line(s) and "[#lan]" in s,
                      "unlocked, in #lan")
        r.wait_text("b2", "世界 ni hao")  # the history is back
        if secret in r.screen("b2") or "not-it" in r.screen("b2"):
            raise Fail("a passphrase on screen")
        r.keys("b2", "/quit")
        r.wait_exit("b2")

        # Two windows opened at once on a new home: one chapard runs (the
        # second one started says so in the log and leaves), both windows
        # ask for a nickname; the one that answers second uses the
        # identity the first just made instead of looping on an error.
        env = "CHAPARD_ARGS='--no-discovery --listen 127.0.0.1:0'"
        r.open_tui("c1", env, home="c")
        r.open_tui("c2", env, home="c")
        r.wait_text("c1", "nickname:")
        r.wait_text("c2", "nickname:")
        end = time.monotonic() + DEADLINE
        while len(r.spawned_daemon_pids(r.home("c"))) != 1:
            if time.monotonic() > end:
                raise Fail("c: %d chapard for one home" % len(r.spawned_daemon_pids(r.home("c"))))
            time.sleep(0.05)
        r.log("c: one chapard for two windows")
        for name, nick in (("c1", "cara"), ("c2", "other")):
            r.keys(name, nick)
            r.wait_text(name, "passphrase (Enter: none):")
            r.keys(name, "")
            r.wait_text(name, "type none to confirm:")
            r.keys(name, "none")
            r.wait_screen(name, lambda s: "cara (" in status_line(s) and "[#lan]" in s,
                          "in #lan as cara")
        r.wait_text("c2", "An identity was just created")
        # Both windows are one user: a line typed in one shows in the other.
        r.keys("c1", "typed in the first window")
        r.wait_text("c2", "typed in the first window")
        # chapard stops answering (frozen): a line typed meanwhile is not
        # lost silently; it is reported and put back on the input line.
        pid = r.spawned_daemon_pids(r.home("c"))[0]
        os.kill(pid, signal.SIGSTOP)
        try:
            r.keys("c1", "while chapard sleeps")
            s = r.wait_text("c1", "chapard did not confirm this line")
            if "while chapard sleeps" not in s.rstrip("\n").split("\n")[-1]:
                raise Fail("c1: the unconfirmed line is not back on the input line:\n" + s)
        finally:
            os.kill(pid, signal.SIGCONT)
        r.key("c1", "C-u")
        # A /msg to nobody: an error, and no empty conversation left over.
        r.keys("c2", "/msg nobody hello?")
        s = r.wait_text("c2", "not sent to nobody")
        if any(l.split()[1:2] == ["nobody"] for l in s.split("\n") if l[:1].isdigit()):
            raise Fail("c2: a conversation for nobody:\n" + s)
        r.keys("c2", "/quit")
        r.wait_exit("c2")

        # A home whose identity file is damaged: the chapard the UI starts
        # exits at once, and the UI says why (not just "not answering").
        os.makedirs(r.home("g"), mode=0o700)
        with open(os.path.join(r.home("g"), "identity"), "wb") as f:
            f.write(b"\x00garbage, not a sealed identity\xff" * 3)
        r.open_tui("g", env)
        r.wait_text("g", "chapard stopped at once:")
        r.keys("g", "/quit")
        r.wait_exit("g")
        r.keys("c1", "/quit")
        r.wait_exit("c1")

        # D: a first start. The wizard says whether the node can be seen on
        # the local network and how to change it; /discovery works at the
        # nickname prompt (it is not taken for a nickname) and is saved in
        # chapard.conf. Quitting before an identity exists stops the
        # chapard the UI started: nothing is left running (or beaconing).
        os.makedirs(r.home("d"), mode=0o700)
        with open(os.path.join(r.home("d"), "chapard.conf"), "w") as f:
            f.write("# my settings\nlog-level = info\n")
        r.open_tui("d", env, width=200)
        r.wait_text("d", "nickname:")
        s = r.wait_text("d", "on the local network")
        if "/discovery on" not in s:
            raise Fail("d: the wizard does not say how to change visibility:\n" + s)
        r.keys("d", "/discovery")
        r.wait_text("d", "LAN discovery is off")
        r.keys("d", "/discovery off")
        s = r.wait_text("d", "invisible on the local network now")
        if not status_line(s) or "nickname:" not in s.rstrip("\n").split("\n")[-1]:
            raise Fail("d: the wizard did not stay at the nickname prompt:\n" + s)
        with open(os.path.join(r.home("d"), "chapard.conf")) as f:
            conf = f.read()
        if conf != "# my settings\nlog-level = info\ndiscovery = no\n":
            raise Fail("d: chapard.conf after /discovery off:\n" + conf)
        if len(r.spawned_daemon_pids(r.home("d"))) != 1:
            raise Fail("d: no chapard started")
        r.key("d", "C-c")
        r.wait_exit("d")
        end = time.monotonic() + 5
        while r.spawned_daemon_pids(r.home("d")):
            if time.monotonic() > end:
                raise Fail("d: chapard still runs after the wizard was abandoned")
            time.sleep(0.05)
        r.log("d: no chapard left behind")
        r.log("pass")
        return 0
    except (Fail, OSError, subprocess.SubprocessError) as e:
        print("FAIL:", e, flush=True)
        r.dump()
        return 1
    finally:
        r.cleanup()


if __name__ == "__main__":
    sys.exit(main())
