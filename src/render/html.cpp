// The HTML report: one self-contained page (no network, nothing fetched) with the
// picture, whose tasks show their details when hovered or clicked, a timeline drawn by
// the page itself, and the summary with the critical path highlighted. The data sits
// in the page as one JSON object; the script only reads it and draws.

#include "render/views.hpp"
#include "trace/writer.hpp"

#include <algorithm>
#include <map>
#include <unordered_set>

namespace flowy {

namespace v = detail::views;

namespace {

std::string json(std::string_view s) {
    std::string out;
    detail::trace::append_json_string(out, v::printable(s));
    return out;
}

/// The last `n` bytes of `s`, from a line start where there is one.
std::string tail(const std::string& s, std::size_t n = 4096) {
    if (s.size() <= n) return s;
    std::size_t at = s.size() - n;
    std::size_t nl = s.find('\n', at);
    if (nl != std::string::npos && nl + 1 < s.size()) at = nl + 1;
    return "[... " + std::to_string(at) + " bytes before ...]\n" + s.substr(at);
}

const char* page_style = R"css(
body{font:14px/1.4 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#212121;background:#fafafa}
header{padding:14px 24px;background:#263238;color:#fff}
header h1{font-size:20px;margin:0 0 4px}
header .ok{color:#a5d6a7}header .bad{color:#ef9a9a}
main{display:grid;grid-template-columns:minmax(0,1fr) 360px;gap:16px;padding:16px 24px}
section{background:#fff;border:1px solid #e0e0e0;border-radius:6px;padding:12px 16px;margin-bottom:16px;overflow:auto}
h2{font-size:16px;margin:0 0 8px}
#picture svg{width:100%;height:auto;max-height:85vh}
#picture g.node{cursor:pointer}
#picture g.node.crit polygon,#picture g.node.crit ellipse,#picture g.node.crit path{stroke:#ef6c00;stroke-width:3px}
#picture g.node.sel polygon,#picture g.node.sel ellipse,#picture g.node.sel path{stroke:#1565c0;stroke-width:4px}
aside{position:sticky;top:12px;align-self:start}
#details dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 10px;margin:0}
#details dt{color:#757575}#details dd{margin:0;word-break:break-word}
pre{background:#f5f5f5;padding:8px;border-radius:4px;white-space:pre-wrap;word-break:break-word;max-height:320px;overflow:auto;font-size:12px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #eee;vertical-align:top}
tr.crit td{background:#fff3e0}tr.crit td:first-child{border-left:4px solid #ef6c00}
td.id,td.time{white-space:nowrap}
tr:hover td{background:#e3f2fd;cursor:pointer}
.state{display:inline-block;padding:0 6px;border-radius:3px;font-size:12px}
.s-finished{background:#d4edda}.s-failed,.s-worker-crashed{background:#f8d7da}.s-timed-out{background:#ffe0b2}.s-skipped{background:#eeeeee}
.s-other{background:#fff3cd}
#timeline svg text{font-size:11px}
.hint{color:#757575;font-size:12px}
)css";

// Reads the data, marks the critical path, wires the picture's nodes, draws the timeline
// and the table. Sets data-ready on <body> when it got to the end (the browser test reads it).
const char* page_script = R"js(
(function () {
  'use strict';
  const data = JSON.parse(document.getElementById('flowy-data').textContent);
  const byId = new Map(data.tasks.map(t => [t.id, t]));
  const crit = new Set(data.critical);
  const details = document.getElementById('details');
  const stateClass = s => 's-' + (['finished', 'failed', 'skipped', 'timed out', 'worker crashed'].includes(s) ? s.replace(' ', '-') : 'other');
  for (const t of data.tasks) if (!byId.has(t.last_id)) byId.set(t.last_id, t);
  const because = t => t.because ? 'skipped: ' + (byId.has(t.because) ? byId.get(t.because).title + ' (' + t.because + ')' : t.because) + ' failed' : '';
  const ms = us => us < 0 ? '' : us < 10000 ? (us / 1000).toFixed(1) + ' ms' : us < 1e6 ? Math.round(us / 1000) + ' ms' : (us / 1e6).toFixed(2) + ' s';
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  let pinned = null;
  function show(t) {
    details.textContent = '';
    if (!t) { details.appendChild(el('p', {class: 'hint'}, 'Hover over or click a task in the picture, the timeline or the table.')); return; }
    details.appendChild(el('h2', {}, t.title));
    const dl = el('dl', {id: 'task-details', 'data-task': t.id});
    const row = (k, val) => { if (val === undefined || val === '' || val === null) return; dl.appendChild(el('dt', {}, k)); dl.appendChild(el('dd', {}, String(val))); };
    row('task', t.last_id); row('activity', t.activity); row('state', t.state);
    row('run time', ms(t.run_us)); row('queued', ms(t.queue_us));
    row('attempts', t.attempts > 1 ? t.attempts : ''); row('worker', t.worker >= 0 ? t.worker + (t.host ? ' on ' + t.host : '') + (t.pid > 0 ? ' (pid ' + t.pid + ')' : '') : '');
    row('value', t.value); row('error', t.message); row('skipped', because(t));
    row('on the critical path', crit.has(t.id) ? 'yes' : '');
    details.appendChild(dl);
    if (t.command) { details.appendChild(el('h2', {}, 'command')); details.appendChild(el('pre', {class: 'cmd'}, t.command)); }
    if (t.out) { details.appendChild(el('h2', {}, 'standard output (tail)')); details.appendChild(el('pre', {class: 'out'}, t.out)); }
    if (t.err) { details.appendChild(el('h2', {}, 'standard error (tail)')); details.appendChild(el('pre', {class: 'err'}, t.err)); }
  }
  function select(t, pin) {
    if (pin) pinned = t;
    for (const g of document.querySelectorAll('#picture g.node.sel')) g.classList.remove('sel');
    if (t && nodeOf.has(t.id)) nodeOf.get(t.id).classList.add('sel');
    show(t);
  }
  const hover = t => { if (!pinned) show(t); };
  const unhover = () => { if (!pinned) show(null); };

  // the picture: Graphviz names each node's <g> with a <title> holding its first task's id
  const nodeOf = new Map();
  for (const g of document.querySelectorAll('#picture g.node')) {
    const title = g.querySelector('title');
    const t = title && byId.get(title.textContent);
    if (!t) continue;
    nodeOf.set(t.id, g);
    g.setAttribute('data-task', t.id);
    if (crit.has(t.id)) g.classList.add('crit');
    g.addEventListener('mouseenter', () => hover(t));
    g.addEventListener('mouseleave', unhover);
    g.addEventListener('click', () => select(t, true));
  }

  // the timeline: one row per worker, a bar per task where it ran
  const ran = data.tasks.filter(t => t.start >= 0 && t.run_us >= 0);
  const rows = [...new Set(ran.map(t => t.row))].sort((a, b) => a.localeCompare(b, undefined, {numeric: true}));
  const tl = document.getElementById('timeline-chart');
  const ns = 'http://www.w3.org/2000/svg';
  const W = 1000, left = 150, rowH = 22;
  const end = Math.max(1, ...ran.map(t => t.start + t.run_us));
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${rows.length * rowH + 30}`);
  svg.setAttribute('width', '100%');
  const colors = {'finished': '#81c784', 'failed': '#e57373', 'timed out': '#ffb74d', 'worker crashed': '#ba68c8'};
  rows.forEach((r, i) => {
    const label = document.createElementNS(ns, 'text');
    label.setAttribute('x', 4); label.setAttribute('y', i * rowH + 15); label.textContent = r;
    svg.appendChild(label);
  });
  for (let s = 0; s <= 4; ++s) {
    const x = left + (W - left - 10) * s / 4;
    const tick = document.createElementNS(ns, 'text');
    tick.setAttribute('x', x); tick.setAttribute('y', rows.length * rowH + 20); tick.textContent = ms(end * s / 4);
    tick.setAttribute('text-anchor', s === 0 ? 'start' : s === 4 ? 'end' : 'middle');
    svg.appendChild(tick);
  }
  for (const t of ran) {
    const i = rows.indexOf(t.row);
    const bar = document.createElementNS(ns, 'rect');
    const x = left + (W - left - 10) * t.start / end;
    bar.setAttribute('x', x); bar.setAttribute('y', i * rowH + 3);
    bar.setAttribute('width', Math.max(1.5, (W - left - 10) * t.run_us / end)); bar.setAttribute('height', rowH - 6);
    bar.setAttribute('fill', colors[t.state] || '#90a4ae');
    bar.setAttribute('class', 'bar' + (crit.has(t.id) ? ' crit' : ''));
    bar.setAttribute('data-task', t.id);
    if (crit.has(t.id)) { bar.setAttribute('stroke', '#ef6c00'); bar.setAttribute('stroke-width', '2'); }
    const tip = document.createElementNS(ns, 'title'); tip.textContent = t.title + ' (' + ms(t.run_us) + ')';
    bar.appendChild(tip);
    bar.addEventListener('mouseenter', () => hover(t));
    bar.addEventListener('mouseleave', unhover);
    bar.addEventListener('click', () => select(t, true));
    svg.appendChild(bar);
  }
  tl.appendChild(svg);
  if (!ran.length) tl.appendChild(el('p', {class: 'hint'}, 'No task ran in this trace.'));

  // the table of steps: failures first, the critical path highlighted
  const body = document.getElementById('steps');
  const bad = t => ['failed', 'timed out', 'worker crashed'].includes(t.state);
  const ordered = data.tasks.filter(bad).concat(data.tasks.filter(t => !bad(t)));
  for (const t of ordered.slice(0, 2000)) {
    const tr = el('tr', {'data-task': t.id, class: crit.has(t.id) ? 'crit' : ''});
    tr.appendChild(el('td', {}, t.title));
    tr.appendChild(el('td', {class: 'id'}, t.last_id));
    const st = el('td'); st.appendChild(el('span', {class: 'state ' + stateClass(t.state)}, t.state)); tr.appendChild(st);
    tr.appendChild(el('td', {class: 'time'}, ms(t.run_us)));
    tr.appendChild(el('td', {}, t.state === 'finished' ? t.value : t.because ? because(t) : t.message));
    tr.addEventListener('click', () => select(t, true));
    body.appendChild(tr);
  }
  if (ordered.length > 2000) document.getElementById('steps-more').textContent = `… and ${ordered.length - 2000} more (flowy summary lists them all)`;
  const path = document.getElementById('critical');
  path.textContent = data.critical.map(id => byId.get(id).title).join(' → ');
  document.addEventListener('keydown', e => { if (e.key === 'Escape') { pinned = null; select(null, false); } });
  // a link to one task: report.html#task=sh-3-0
  const wanted = location.hash.startsWith('#task=') && byId.get(decodeURIComponent(location.hash.slice(6)));
  if (wanted) select(wanted, true); else show(null);
  document.body.setAttribute('data-ready', '1');
})();
)js";

}  // namespace

std::string Trace::report_html() const {
    std::vector<const TraceTask*> path = critical_path();
    // the data, as JSON
    std::string d = "{\"tasks\":[";
    std::int64_t origin = runs_.empty() ? 0 : runs_.front().started_us;
    bool many_hosts = false;
    for (const TraceTask& t : tasks_) many_hosts = many_hosts || !t.host.empty();
    for (std::size_t i = 0; i < tasks_.size(); ++i) {
        const TraceTask& t = tasks_[i];
        if (i) d += ",";
        std::string row = t.worker >= 0 ? "worker " + std::to_string(t.worker) : "workflow";
        if (many_hosts && !t.host.empty()) row += " (" + t.host + ")";
        d += "{\"id\":" + json(t.id) + ",\"last_id\":" + json(t.last_id) + ",\"title\":" + json(t.title()) +
             ",\"activity\":" + json(t.activity) + ",\"state\":" + json(to_string(t.state)) +
             ",\"run_us\":" + std::to_string(t.run_us()) + ",\"queue_us\":" + std::to_string(t.queue_us()) +
             ",\"start\":" + std::to_string(t.run_us() >= 0 ? t.run_start() - origin : -1) + ",\"row\":" + json(row) +
             ",\"worker\":" + std::to_string(t.worker) + ",\"host\":" + json(t.host) +
             ",\"pid\":" + std::to_string(t.pid) + ",\"attempts\":" + std::to_string(t.attempts) +
             ",\"value\":" + json(t.short_value) + ",\"because\":" + json(t.because);
        d += ",\"message\":" + json(v::failure_line(*this, t));
        if (auto c = v::command_of(*this, t))
            d += ",\"command\":" + json(c->command) + ",\"out\":" + json(tail(c->out)) +
                 ",\"err\":" + json(tail(c->err));
        d += "}";
    }
    d += "],\"critical\":[";
    for (std::size_t i = 0; i < path.size(); ++i) d += (i ? "," : "") + json(path[i]->id);
    d += "]}";
    // inside <script>, "</script" would end it and "<!--" change how it is read: '<' is
    // found only inside JSON strings, where \u003c stands for it
    std::string safe;
    safe.reserve(d.size());
    for (char ch : d) {
        if (ch == '<')
            safe += "\\u003c";
        else
            safe += ch;
    }
    d = std::move(safe);

    std::string svg;
    if (!tasks_.empty() || !runs_.empty()) {
        svg = to_svg();
        if (std::size_t at = svg.find("<svg"); at != std::string::npos) svg.erase(0, at);  // no prolog or DOCTYPE
    }
    const TraceRun* last = runs_.empty() ? nullptr : &runs_.back();
    bool ok = last && last->outcome == TraceRun::Outcome::finished;
    v::Tally n = v::tally(*this);
    std::string title = last ? last->workflow : std::string("flowy trace");
    std::string outcome = !last                ? "empty trace"
                          : ok && n.failed > 0 ? "finished, " + std::to_string(n.failed) + " failed"
                                               : to_string(last->outcome);

    std::string h =
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>" + v::xml(title + ": " + outcome) +
        "</title>\n<meta name=\"viewport\" content=\"width=device-width\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n<style>" +
        page_style + "</style></head>\n<body>\n<header><h1>" + v::xml(title) + " <span class=\"" +
        (ok && n.failed == 0 ? "ok" : "bad") + "\" id=\"outcome\">" + v::xml(outcome) + "</span></h1>\n<div>" +
        std::to_string(tasks_.size()) + " tasks: " + std::to_string(n.passed) + " finished, " +
        std::to_string(n.failed) + " failed, " + std::to_string(n.skipped) + " skipped · " +
        v::xml(v::duration(n.wall_us)) + (runs_.size() > 1 ? " · " + std::to_string(runs_.size()) + " runs" : "") +
        (last && !last->message.empty() ? " · " + v::xml(last->message) : std::string()) +
        "</div></header>\n<main><div>\n"
        "<section id=\"picture\"><h2>Execution graph</h2>\n" +
        svg +
        "\n<p class=\"hint\">Orange outline: the critical path. Click a task to keep its details "
        "(Esc lets go); link to one with #task=ID.</p></section>\n"
        "<section id=\"timeline\"><h2>Timeline</h2><div id=\"timeline-chart\"></div></section>\n"
        "<section id=\"summary\"><h2>Steps</h2>\n<p>Critical path: <span id=\"critical\"></span></p>\n"
        "<table><thead><tr><th>step</th><th>task</th><th>state</th><th>time</th><th>outcome</th></tr>"
        "</thead><tbody id=\"steps\"></tbody></table><p id=\"steps-more\" class=\"hint\"></p>\n"
        "<h2>Summary</h2><pre id=\"summary-text\">" +
        v::xml(summary(false)) +
        "</pre></section>\n</div>\n<aside><section id=\"details\"></section></aside></main>\n"
        "<script type=\"application/json\" id=\"flowy-data\">" +
        d + "</script>\n<script>" + page_script + "</script>\n</body></html>\n";
    return h;
}

}  // namespace flowy
