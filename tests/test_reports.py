#!/usr/bin/env python3
"""The reports a CI job publishes, from a pipeline that fails in every way
(tests/ci_pipeline.cpp): the trace's step names and control edges, `flowy junit`
checked against tests/junit.xsd by xmllint, `flowy summary --format markdown`, and
`flowy report` loaded from disk by headless Chromium (no console message, the DOM its
script builds, a screenshot that is not blank).

    test_reports.py CI_PIPELINE FLOWY JUNIT_XSD
"""
import fcntl
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
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
    base = [exe] + browser_flags(tmp) + ["--enable-logging=stderr", "--v=0"]
    return subprocess.run(base + args, capture_output=True, text=True, timeout=120)


def browser_flags(tmp):
    """Headless, no network of its own, a fresh profile, one window size."""
    return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--user-data-dir=" + tempfile.mkdtemp(dir=tmp), "--window-size=1400,1100"]


class DevTools:
    """Chromium driven the way a person drives it: real mouse and key events through the
    DevTools protocol, over the pipe that --remote-debugging-pipe opens (descriptors 3 and
    4, messages of JSON ended by a NUL byte), so no network and no client library."""

    def __init__(self, tmp):
        exe = shutil.which("chromium")
        if not exe:
            sys.exit("test_reports: chromium is not installed (tools/dev deps installs it)")
        to_r, self.to_w = os.pipe()
        self.from_r, from_w = os.pipe()

        def plumb():  # in the child: the pipe ends at 3 (commands) and 4 (replies)
            a = fcntl.fcntl(to_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [exe] + browser_flags(tmp) + ["--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=plumb)
        os.close(to_r)
        os.close(from_w)
        self.buf, self.next_id, self.events = b"", 0, []
        self.session = None

    def _read_message(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.from_r], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.from_r, 1 << 16)
            if not chunk:
                raise EOFError("Chromium closed its end of the pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, timeout=30, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if self.session and not method.startswith(("Target.", "Browser.")):
            msg["sessionId"] = self.session
        os.write(self.to_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method, timeout=30):
        deadline = time.monotonic() + timeout
        for i, m in enumerate(self.events):
            if m.get("method") == method:
                return self.events.pop(i)
        while True:
            m = self._read_message(deadline)
            if m.get("method") == method:
                return m
            self.events.append(m)

    def open(self, url):
        page = next(t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
        self.call("Runtime.enable")
        self.call("Log.enable")
        self.call("Page.enable")
        self.call("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def js(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError("script failed: %s" % r["exceptionDetails"])
        return r["result"].get("value")

    def centre(self, selector):
        """Scrolls the element into view; its centre in the viewport, or None."""
        return self.js("(() => { const e = document.querySelector(%s); if (!e) return null; "
                       "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect(); "
                       "return [r.x + r.width / 2, r.y + r.height / 2]; })()" % json.dumps(selector))

    def mouse(self, kind, x, y, **more):
        self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, **more)

    def click(self, x, y):
        self.mouse("mouseMoved", x, y)
        self.mouse("mousePressed", x, y, button="left", clickCount=1)
        self.mouse("mouseReleased", x, y, button="left", clickCount=1)

    def key(self, name):
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=name, code=name, windowsVirtualKeyCode=27)

    def screenshot(self, path):
        import base64
        open(path, "wb").write(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))

    def complaints(self):
        """Console messages, log entries and uncaught exceptions seen so far."""
        kinds = ("Runtime.consoleAPICalled", "Runtime.exceptionThrown", "Log.entryAdded")
        return [m for m in self.events if m.get("method") in kinds]

    def close(self):
        try:
            self.call("Browser.close", timeout=10)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self.to_w)
        os.close(self.from_r)


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
        trace = os.path.join(tmp, "ci.trace")
        r = run([pipeline, trace])
        check(r.returncode == 0 and "3 failed" in r.stdout, "the pipeline ran: 3 steps failed (" + r.stdout[-200:] + ")")

        # the trace (a journal; its export, JSON Lines): names and control edges
        exported = os.path.join(tmp, "ci.jsonl")
        r = run([flowy, "export", trace, "-o", exported])
        check(r.returncode == 0, "flowy export writes the journal as JSON Lines (" + r.stderr[-200:] + ")")
        sched = {}
        for line in open(exported):
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
        check(f is not None and f.get("type") == "flowy::CommandFailed" and
              f.get("message") == "exit 2: assertion failed: тест 1 != 2 <&>",
              "the failed step: a failure whose message is the exit code and the last line of stderr")
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

        # the picture's labels: what happened, not the command line again
        dot = os.path.join(tmp, "ci.dot")
        r = run([flowy, "render", trace, "-o", dot])
        labels = open(dot, encoding="utf-8").read() if r.returncode == 0 else ""
        check("unit tests\nsh #3\n" in labels and " ms\nexit 2: assertion failed: тест 1 ..." in labels,
              "the failed command's node: its name, then its exit code and the last line of stderr")
        check("\n2 attempts\ntimed out after 300 ms\"" in labels, "the timed-out node: attempts, then the timeout")
        check(labels.count(" -> result") == 8 and "input -> result" not in labels,
              "the result hangs off the eight results the body read to compute it")

        # Markdown
        r = run([flowy, "summary", "--format", "markdown", trace])
        md = r.stdout
        check(r.returncode == 0 and md.startswith("## ❌ Pipeline: finished"), "markdown: a heading with the outcome")
        rows = [l for l in md.splitlines() if l.startswith("| ")]
        check(len(rows) == 9 and rows[1].startswith("| ❌ | unit tests | `sh-3-0` | failed |"),
              "markdown: a table of the steps, failures first")
        check("| exit 2: assertion failed: тест 1 != 2 &lt;&> |" in rows[1],
              "markdown: the failed step's row: its exit code and the last line of stderr")
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

        # HTML, driven by real mouse and key events
        browser = DevTools(tmp)
        try:
            browser.open(url)
            details = "(() => { const d = document.getElementById('task-details'); " \
                      "return d ? [d.dataset.task, document.getElementById('details').innerText] : null; })()"
            check(browser.js("document.body.dataset.ready") == "1", "events: the page is ready")
            check(browser.js(details) is None, "events: no task is shown before a hover")
            node = browser.centre('#picture g.node[data-task="sh-3-0"]')
            check(node is not None, "events: the failed step's node is in the picture")
            if node:
                browser.mouse("mouseMoved", *node)
                shown = browser.js(details)
                check(shown is not None and shown[0] == "sh-3-0", "hovering the node shows its task: %s" % (shown[0] if shown else None))
                text = shown[1] if shown else ""
                check("exit 2: assertion failed: тест 1 != 2 <&>\n" in text and text.count("case_30") == 1,
                      "its error is the exit code and the last line of stderr (the tails are shown once, below)")
                check(all(w in text for w in ("unit tests", "failed", "exit 2", "/bin/sh -c 'for i in",
                                              "case_30 ... ok", "assertion failed")),
                      "its name, state, error, command line and both streams' tails")
                hover_shot = os.path.join(tmp, "hover.png")
                browser.screenshot(hover_shot)
                keep = os.environ.get("FLOWY_KEEP_HOVER_SCREENSHOT")
                if keep:
                    shutil.copy(hover_shot, keep)
                browser.mouse("mouseMoved", 2, 2)
                check(browser.js(details) is None, "moving off the node hides it again")
            bar = browser.centre('#timeline-chart rect.bar[data-task="sh-5-0"]')
            check(bar is not None, "events: the docs step has a bar in the timeline")
            if bar:
                browser.click(*bar)
                browser.mouse("mouseMoved", 2, 2)
                shown = browser.js(details)
                check(shown is not None and shown[0] == "sh-5-0" and "\n500" in shown[1],
                      "a click on a bar pins its task, with its output's tail: %s" % (shown[0] if shown else None))
                check(browser.js("document.querySelector('#picture g.node.sel')?.dataset.task") == "sh-5-0",
                      "and marks its node in the picture")
                browser.key("Escape")
                check(browser.js(details) is None and browser.js("document.querySelector('#picture g.node.sel')") is None,
                      "Escape unpins it")
            row = browser.centre('#steps tr[data-task="slow-0-0"]')
            if row:
                browser.click(*row)
            shown = browser.js(details)
            check(shown is not None and shown[0] == "slow-0-0" and "attempt 2 of 2" in shown[1],
                  "a click on a table row shows that step (the timed-out one, with its attempt)")
            bad = browser.complaints()
            check(not bad, "no console message or exception while it is used: %s" % bad[:2])
            browser.js("console.error('probe')")  # reported before the answer to this call
            check(len(browser.complaints()) == 1, "(the check sees a console message when there is one)")
        finally:
            browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
