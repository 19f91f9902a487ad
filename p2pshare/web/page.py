"""The dashboard's one page: HTML, CSS and JavaScript inline, nothing fetched from elsewhere.

Strategy: the page is static; its script polls ``/api/state`` once a second and redraws
its tables from the JSON (docs/dashboard.md). Every text that came from the network (a
title, a host name, a file name) is put in the page with ``textContent``, never as HTML,
so a peer cannot inject markup or script into an operator's browser. No CDN, no fonts, no
framework: the page works on a machine with no access beyond the server it watches.
"""

from __future__ import annotations

__all__ = ["PAGE"]

_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>p2pshare dashboard</title>
<style>
  :root { --fg: #1d2430; --muted: #667085; --line: #e4e7ec; --accent: #2f6fdb; }
  body { font: 14px/1.45 system-ui, sans-serif; color: var(--fg); margin: 0;
         background: #f6f7f9; }
  header { background: #1d2430; color: #fff; padding: 12px 24px; display: flex;
           align-items: baseline; gap: 24px; flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; }
  #status { color: #b8c2d3; font-size: 12px; }
  #status.down { color: #ff8a80; }
  .cards { display: flex; gap: 12px; padding: 16px 24px 0; flex-wrap: wrap; }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 8px;
          padding: 10px 16px; min-width: 110px; }
  .card b { display: block; font-size: 22px; }
  .card span { color: var(--muted); font-size: 12px; }
  main { display: grid; grid-template-columns: minmax(260px, 1fr) minmax(380px, 2fr);
         gap: 16px; padding: 16px 24px 24px; }
  @media (max-width: 760px) { main { grid-template-columns: 1fr; } }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
            padding: 8px 16px 12px; overflow: auto; }
  section.wide { grid-column: 1 / -1; }
  h2 { font-size: 15px; margin: 6px 0 8px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 4px 8px 4px 0; border-bottom: 1px solid var(--line);
           vertical-align: top; }
  th { color: var(--muted); font-weight: 600; font-size: 12px; }
  td.num { font-variant-numeric: tabular-nums; }
  .empty { color: var(--muted); font-style: italic; }
  .strip { display: flex; height: 12px; width: 256px; border-radius: 2px; overflow: hidden; }
  .strip i { flex: 1; }
  .bar { background: var(--line); border-radius: 3px; height: 8px; width: 120px;
         display: inline-block; vertical-align: middle; }
  .bar i { display: block; height: 100%; background: var(--accent); border-radius: 3px; }
  code { font-size: 12px; }
</style>
</head>
<body>
<header><h1>p2pshare</h1><span id="status">connecting&hellip;</span></header>
<div class="cards">
  <div class="card"><b id="n-conn">-</b><span>connections</span></div>
  <div class="card"><b id="n-peers">-</b><span>peers</span></div>
  <div class="card"><b id="n-rfcs">-</b><span>RFCs</span></div>
  <div class="card"><b id="n-records">-</b><span>records</span></div>
  <div class="card"><b id="n-swarms">-</b><span>swarms</span></div>
  <div class="card"><b id="n-rate">-</b><span>swarm transfer rate</span></div>
  <div class="card"><b id="n-torrents">-</b><span>torrents</span></div>
</div>
<main>
  <section><h2>Peers</h2><table id="peers"><thead><tr><th>peer</th><th>records</th></tr>
  </thead><tbody></tbody></table></section>
  <section><h2>RFCs</h2><table id="rfcs"><thead><tr><th>RFC</th><th>title</th>
  <th>holders</th></tr></thead><tbody></tbody></table></section>
  <section class="wide"><h2>Swarms</h2><table id="swarms"><thead><tr><th>name</th>
  <th>size</th><th>seeders / leechers</th><th>copies</th><th>rate</th>
  <th>piece availability</th><th>peers</th></tr></thead><tbody></tbody></table></section>
  <section class="wide" id="torrents-section" hidden><h2>BitTorrent tracker</h2>
  <table id="torrents"><thead><tr><th>info-hash</th><th>seeds / leeches</th>
  <th>completed</th><th>peers (most recent)</th></tr></thead><tbody></tbody></table>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(Math.round(n))) + " " + units[i];
}
const rate = (n) => bytes(n) + "/s";
const hostport = (h, p) => (h.includes(":") ? "[" + h + "]" : h) + ":" + p;
function fill(table, rows, columns, empty) {
  const body = table.tBodies[0];
  body.replaceChildren();
  if (!rows.length) {
    const td = el("td", empty, "empty");
    td.colSpan = table.tHead.rows[0].cells.length;
    body.append(el("tr")); body.rows[0].append(td);
    return;
  }
  for (const row of rows) {
    const tr = el("tr");
    for (const column of columns) {
      const cell = column(row);
      tr.append(cell instanceof Node ? cell : el("td", cell));
    }
    body.append(tr);
  }
}
function strip(counts) {
  const s = el("div", undefined, "strip");
  const most = Math.max(1, ...counts);
  for (const c of counts) {
    const i = el("i");
    i.style.background = c === 0 ? "#e5484d" : "hsl(140, 55%, " + (80 - 45 * c / most) + "%)";
    i.title = c + " holder(s)";
    s.append(i);
  }
  const td = el("td"); td.append(s); return td;
}
function members(swarm) {
  const td = el("td");
  for (const p of swarm.peers) {
    const line = el("div");
    const bar = el("span", undefined, "bar"), fillBar = el("i");
    fillBar.style.width = (swarm.pieces ? 100 * p.have / swarm.pieces : 100) + "%";
    bar.append(fillBar);
    line.append(el("code", hostport(p.host, p.port) + " "), bar,
                el("span", " " + p.have + "/" + swarm.pieces + " " + rate(p.rate || 0)));
    td.append(line);
  }
  return td;
}
function announced(torrent) {
  const td = el("td");
  for (const p of torrent.peers) {
    const state = p.seed ? "seed" : p.left === null ? "leech" : bytes(p.left) + " left";
    td.append(el("div", hostport(p.host, p.port) + " " + state));
  }
  return td;
}
function showTorrents(torrents) {
  $("torrents-section").hidden = !torrents;
  if (!torrents) return;
  $("n-torrents").textContent = torrents.total;
  fill($("torrents"), torrents.rows,
       [(t) => { const td = el("td"); td.append(el("code", t.info_hash)); return td; },
        (t) => t.seeds + " / " + t.leeches, (t) => el("td", t.completed, "num"), announced],
       "no torrent");
}
function show(state) {
  $("n-conn").textContent = state.connections;
  $("n-peers").textContent = state.peers.total ?? state.peers.rows.length;
  $("n-rfcs").textContent = state.rfcs.total ?? state.rfcs.rows.length;
  $("n-records").textContent = state.rfcs.records ?? "-";
  $("n-swarms").textContent = state.swarms.total;
  $("n-rate").textContent = rate(state.swarms.rows.reduce((a, s) => a + (s.rate || 0), 0));
  fill($("peers"), state.peers.rows,
       [(p) => el("td", hostport(p.host, p.port)), (p) => el("td", p.records, "num")],
       "no peer connected");
  fill($("rfcs"), state.rfcs.rows,
       [(r) => el("td", r.rfc, "num"), (r) => r.title, (r) => r.holders.join(", ")],
       "no RFC registered");
  fill($("swarms"), state.swarms.rows,
       [(s) => { const td = el("td", s.name); td.title = s.id; return td; },
        (s) => el("td", bytes(s.size), "num"), (s) => s.seeders + " / " + s.leechers,
        (s) => el("td", s.copies, "num"), (s) => el("td", rate(s.rate || 0), "num"),
        (s) => strip(s.availability), members],
       "no swarm");
  showTorrents(state.torrents);
}
async function poll() {
  try {
    const answer = await fetch("api/state", {cache: "no-store"});
    if (!answer.ok) throw new Error("HTTP " + answer.status);
    show(await answer.json());
    $("status").textContent = "live, updated " + new Date().toLocaleTimeString();
    $("status").className = "";
  } catch (err) {
    $("status").textContent = "server unreachable (" + err.message + "), retrying";
    $("status").className = "down";
  }
  setTimeout(poll, 1000);
}
poll();
</script>
</body>
</html>
"""

PAGE = _HTML.encode("utf-8")
