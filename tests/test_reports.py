#!/usr/bin/env python3
"""The reports a CI job publishes, from a pipeline that fails in every way
(tests/ci_pipeline.cpp): the trace's step names and control edges, `flowy junit`
checked against tests/junit.xsd by xmllint, `flowy summary --format markdown`, and
`flowy report` loaded from disk by headless Chromium (no console message, the DOM its
script builds, a screenshot that is not blank).

    test_reports.py CI_PIPELINE FLOWY JUNIT_XSD
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=120, **kw)


def chromium(args, tmp):
    """Headless Chromium as this machine allows it: no network of its own, a fresh profile."""
    exe = shutil.which("chromium")
    if not exe:
        sys.exit("test_reports: chromium is not installed (tools/dev deps installs it)")
    profile = tempfile.mkdtemp(dir=tmp)
    base = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--enable-logging=stderr", "--v=0", "--user-data-dir=" + profile, "--window-size=1400,1100"]
    return subprocess.run(base + args, capture_output=True, text=True, timeout=120)


def png_pixels(path):
    """Decodes an 8-bit RGB or RGBA PNG (what Chromium writes): (width, height, rows of bytes, bytes per pixel)."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    at, idat, width = 8, b"", 0
    while at < len(data):
        n, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + n]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6), "unexpected PNG format"
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        at += 12 + n
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp


def main():
    pipeline, flowy, xsd = sys.argv[1:4]
    tmp = tempfile.mkdtemp(prefix="flowy-reports-")
    try:
        trace = os.path.join(tmp, "ci.jsonl")
        r = run([pipeline, trace])
        check(r.returncode == 0 and "3 failed" in r.stdout, "the pipeline ran: 3 steps failed (" + r.stdout[-200:] + ")")

        # the trace: names and control edges
        sched = {}
        for line in open(trace):
            e = json.loads(line)
            if e["event"] == "task_scheduled":
                sched[e["id"]] = e
        check(sched["sh-3-0"].get("name") == "unit tests", "a call's name is recorded")
        check(sched["sh-3-0"].get("after") == ["sh-1-0", "sh-2-0"], "after(lib, app) is recorded as control edges")
        check(sched["sh-3-0"]["args"] == [], "after() results are not arguments")
        check(sched["sh-0-0"].get("name") == "configure", "a Command's name names its step")
        check(sched["sh-1-0"].get("name", "").startswith("echo compiling lib"),
              "an unnamed shell step is named by its script")
        check("name" not in sched["lines-0-0"], "a plain activity call has no name")

        # JUnit
        xml_path = os.path.join(tmp, "report.xml")
        r = run([flowy, "junit", trace, "-o", xml_path])
        check(r.returncode == 0, "flowy junit exits 0: " + r.stderr)
        r = run(["xmllint", "--noout", "--schema", xsd, xml_path])
        check(r.returncode == 0, "the JUnit report is valid against the schema: " + r.stderr.strip())
        text = open(xml_path, encoding="utf-8").read()
        check("\x1b" not in text, "no escape codes in the XML")
        root = ET.fromstring(text)
        cases = {c.get("name"): c for c in root.iter("testcase")}
        check(len(cases) == 8, "one testcase per task: %d" % len(cases))
        suite = root.find("testsuite")
        check((suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) ==
              ("8", "1", "1", "1"), "the suite counts: %s" % dict(suite.attrib))
        unit = cases.get("unit tests (sh-3-0)")
        f = unit.find("failure") if unit is not None else None
        check(f is not None and f.get("type") == "flowy::CommandFailed" and f.get("message", "").startswith("exit 2: "),
              "the failed step: a failure leading with the exit code")
        check(f is not None and "test_b ... FAILED" in f.text and "тест 1 != 2 <&>" in f.text,
              "the failure carries the tails of both streams, non-ASCII and markup intact")
        check(f is not None and "case_01" not in f.text, "the failure's message keeps only the tails")
        out = unit.find("system-out").text if unit is not None and unit.find("system-out") is not None else ""
        check(out.startswith("$ /bin/sh -c 'for i in") and "case_01 ... ok\ncase_02 ... ok\n" in out and
              out.endswith("test_b ... FAILED\n"), "the failed command's whole output is in system-out")
        err = unit.find("system-err") if unit is not None else None
        check(err is not None and err.text == "assertion failed: тест 1 != 2 <&>\n", "and its stderr in system-err")
        integ = cases.get("integration (slow-0-0)")
        err = integ.find("error") if integ is not None else None
        check(err is not None and err.get("type") == "timed out" and "attempt 2 of 2" in err.get("message", ""),
              "the timed-out step is an error naming the attempt")
        pkg = cases.get("package (sh-4-0)")
        check(pkg is not None and pkg.find("skipped") is not None and "sh-3-0" in pkg.find("skipped").get("message"),
              "the dependent step is skipped, saying which step failed")
        docs = cases.get("docs (sh-5-0)")
        out = docs.find("system-out").text if docs is not None else ""
        check(out.startswith("$ /bin/sh -c 'seq 1 500'\n1\n2\n") and out.endswith("500\n"),
              "a command's output is in system-out")
        lib = cases.get(sched["sh-1-0"]["name"] + " (sh-1-0)")
        check(lib is not None and lib.find("system-err").text == "lib: warning: unused\n", "and its stderr in system-err")
        check(lib is not None and "bytes \ufffd\ufffd\n" in lib.find("system-out").text,
              "invalid UTF-8 in an output is replaced, one U+FFFD per bad byte")
        # the checker is strict: a report without a required attribute fails it
        broken = os.path.join(tmp, "broken.xml")
        open(broken, "w", encoding="utf-8").write(text.replace(' classname="sh"', "", 1))
        r = run(["xmllint", "--noout", "--schema", xsd, broken])
        check(r.returncode != 0, "the schema rejects a testcase without classname")

        # Markdown
        r = run([flowy, "summary", "--format", "markdown", trace])
        md = r.stdout
        check(r.returncode == 0 and md.startswith("## ❌ Pipeline: finished"), "markdown: a heading with the outcome")
        rows = [l for l in md.splitlines() if l.startswith("| ")]
        check(len(rows) == 9 and rows[1].startswith("| ❌ | unit tests | `sh-3-0` | failed |"),
              "markdown: a table of the steps, failures first")
        check("| exit 2: `/bin/sh -c " in rows[1], "markdown: the failed step's row leads with its exit code")
        check("**Critical path**" in md and "→ integration" in md, "markdown: the critical path by step names")
        check("### Failures" in md and "attempt 2 of 2" in md, "markdown: each failure's message")

        # HTML, in a real browser
        html = os.path.join(tmp, "report.html")
        r = run([flowy, "report", trace, "-o", html])
        check(r.returncode == 0, "flowy report exits 0: " + r.stderr)
        page = open(html, encoding="utf-8").read()
        check(all(bad not in page for bad in ('src="http', "href=\"http", "<link", "@import", "url(http")),
              "the page fetches nothing")
        url = "file://" + html
        r = chromium(["--dump-dom", url + "#task=sh-5-0"], tmp)
        console = [l for l in r.stderr.splitlines() if ":CONSOLE(" in l or "Uncaught" in l]
        check(r.returncode == 0 and not console, "Chromium loads it with no console message: %s" % console[:3])
        dom = r.stdout
        check('data-ready="1"' in dom, "the page's script ran to its end")
        check(dom.count('class="bar') >= 7, "the timeline has a bar per task that ran (%d)" % dom.count('class="bar'))
        check(dom.count('data-task="') >= 3 * 8, "picture nodes, bars and rows are tied to their tasks")
        check('class="node crit"' in dom or "node crit" in dom, "the critical path is marked in the picture")
        check('<tr data-task="sh-3-0" class="">' in dom or '<tr data-task="sh-3-0"' in dom, "the table lists the failed step")
        check('id="task-details" data-task="sh-5-0"' in dom, "#task=ID shows that task's details")
        check("<pre class=\"cmd\">/bin/sh -c 'seq 1 500'</pre>" in dom and "\n500\n" in dom,
              "the details show the command line and its output's tail")
        shot = os.path.join(tmp, "report.png")
        r = chromium(["--screenshot=" + shot, url], tmp)
        check(r.returncode == 0 and os.path.exists(shot), "Chromium takes a screenshot")
        if os.path.exists(shot):
            w, h, rows_px, bpp = png_pixels(shot)
            colours = set()
            ink = 0
            for y in range(0, h, 4):
                row = rows_px[y]
                for x in range(0, w, 4):
                    px = row[x * bpp:x * bpp + 3]
                    colours.add(px)
                    ink += px != b"\xff\xff\xff" and px != b"\xfa\xfa\xfa"
            share = ink / ((h // 4 + 1) * (w // 4 + 1))
            check(w == 1400 and len(colours) > 50 and share > 0.1,
                  "the screenshot is not blank: %d colours, %.0f%% ink" % (len(colours), 100 * share))
            keep = os.environ.get("FLOWY_KEEP_SCREENSHOT")
            if keep:
                shutil.copy(shot, keep)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
