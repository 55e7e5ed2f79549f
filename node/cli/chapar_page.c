/* chapar_page.c - the page `chapar share-app` serves: Persian first
 * (right to left), then English; how to check the files against the
 * sharer's user ID and how to install them. Every value put in is from
 * a fixed alphabet (user ID, file names chp_manifest_name_ok accepts,
 * numbers), so nothing needs HTML escaping. */
#include "node/cli/chapar_int.h"

#include <stdio.h>

static const char style[] =
    "body{font-family:'Vazirmatn','Noto Sans Arabic','DejaVu Sans',sans-serif;max-width:46em;"
    "margin:1em auto;padding:0 1em;line-height:1.7;color:#222}"
    "pre,code,.id{font-family:'DejaVu Sans Mono',monospace;direction:ltr;unicode-bidi:embed}"
    "pre{background:#f4f4f4;padding:.5em;white-space:pre-wrap;word-break:break-all;text-align:left}"
    ".id{font-size:1.1em;background:#ffe;padding:.3em;border:1px solid #cc9;word-break:break-all}"
    "a.dl{display:block;margin:.4em 0;font-size:1.1em}"
    "section[lang=en]{border-top:1px solid #ccc;margin-top:2em;text-align:left}";

int cli_share_page(chp_buf *out, const char *id, const char *deb, uint64_t debsize, const char *src,
                   uint64_t srcsize, const char *manifest, const char *arch)
{
    unsigned long long ds = (unsigned long long)debsize, ss = (unsigned long long)srcsize;
    int rc = chp_buf_printf(
        out,
        "<!DOCTYPE html>\n<html lang=\"fa\" dir=\"rtl\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<title>چاپار — Chapar</title>\n<style>%s</style>\n</head>\n<body>\n",
        style);
    rc |= chp_buf_printf(
        out,
        "<main id=\"fa\">\n<h1>چاپار: پیام‌رسان بدون اینترنت</h1>\n"
        "<p>این نسخه از چاپار را این کاربر با شما به اشتراک گذاشته است:</p>\n"
        "<p class=\"id\" id=\"sharer\">%s</p>\n"
        "<p><strong>این شناسه را با شناسه‌ای که از پیش از این "
        "شخص "
        "دارید "
        "مقایسه "
        "کنید."
        " اگر یکی نیست، چیزی نصب نکنید.</strong></p>\n"
        "<h2>دریافت</h2>\n"
        "<a class=\"dl\" href=\"%s\">بستهٔ دبیان و اوبونتو (<bdi>%s</bdi>): "
        "<bdi dir=\"ltr\">%s</bdi>، %llu بایت</a>\n"
        "<a class=\"dl\" href=\"%s\">کد منبع: <bdi dir=\"ltr\">%s</bdi>، %llu بایت</a>\n"
        "<a class=\"dl\" href=\"%s\">فهرست امضاشدهٔ فایل‌ها (SHA-256): "
        "<bdi dir=\"ltr\">%s</bdi></a>\n",
        id, deb, arch, deb, ds, src, src, ss, manifest, manifest);
    rc |= chp_buf_printf(
        out,
        "<h2>بررسی</h2>\n<p>اگر چاپار دارید، پیش از نصب بررسی کنید که "
        "فایل‌ها "
        "همان‌اند"
        " که این کاربر امضا کرده است:</p>\n"
        "<pre>chapar verify-app %s %s %s --from %s</pre>\n"
        "<p>بدون چاپار، دست‌کم درستی دریافت را بسنجید (این "
        "امضا "
        "را "
        "بررسی "
        "نمی‌کند):</p>\n"
        "<pre>sha256sum -c --ignore-missing %s</pre>\n"
        "<h2>نصب</h2>\n<p>در دبیان ۱۲ یا اوبونتو، در پوشه‌ای که "
        "فایل‌ها "
        "در "
        "آن "
        "است:</p>\n"
        "<pre>sudo apt install ./%s</pre>\n"
        "<p>سپس <code>chapar-tui</code> را اجرا کنید.</p>\n</main>\n",
        manifest, deb, src, id, manifest, deb);
    rc |= chp_buf_printf(
        out,
        "<section lang=\"en\" dir=\"ltr\" id=\"en\">\n<h1>Chapar: a messenger that works "
        "without the internet</h1>\n"
        "<p>This copy of Chapar is shared by the user:</p>\n<p class=\"id\">%s</p>\n"
        "<p><strong>Compare this ID with the one you already know for this person. If they "
        "differ, install nothing.</strong></p>\n<h2>Download</h2>\n"
        "<a class=\"dl\" href=\"%s\">Debian/Ubuntu package (%s): %s (%llu bytes)</a>\n"
        "<a class=\"dl\" href=\"%s\">Source: %s (%llu bytes)</a>\n"
        "<a class=\"dl\" href=\"%s\">Signed list of SHA-256 sums: %s</a>\n"
        "<h2>Check</h2>\n<p>With Chapar, check that the files are the ones this user signed:"
        "</p>\n<pre>chapar verify-app %s %s %s --from %s</pre>\n"
        "<p>Without it, at least check the download (this does not check the signature):"
        "</p>\n<pre>sha256sum -c --ignore-missing %s</pre>\n"
        "<h2>Install</h2>\n<p>On Debian 12 or Ubuntu, in the folder with the files:</p>\n"
        "<pre>sudo apt install ./%s</pre>\n<p>Then run <code>chapar-tui</code>.</p>\n"
        "</section>\n</body>\n</html>\n",
        id, deb, arch, deb, ds, src, src, ss, manifest, manifest, manifest, deb, src, id, manifest,
        deb);
    return rc ? cli_fail(1, _("out of memory")) : 0;
}
