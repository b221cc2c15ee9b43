/**
 * The status page every replica serves at `/`: plain HTML and a small script (no framework, no
 * external resources) that polls `/status` every 500 ms and shows who leads, the ballot, the
 * lease remaining, the executed slot, the membership (voters, learners, pending changes, a state
 * transfer in progress), each peer's health and lag, and recent events. All text
 * from the replica is inserted with `textContent`, never as HTML.
 *
 * The page itself holds no data. Unless the replica runs with `--public-status`, `/status` needs
 * a token with the read role: the page takes it from its address (`/#token=...`, which never
 * reaches a server) or from a form, keeps it in the tab's sessionStorage, and sends it as a
 * bearer token; other origins cannot read it.
 */

/** The page, as one self-contained HTML document. */
export function statusPageHtml(replica: number): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>paxos-lease replica ${replica}</title>
<style>
  :root { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2430; background: #f4f6f9; }
  body { margin: 0; padding: 24px; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  .sub { color: #5b6475; font-size: 13px; margin-bottom: 18px; }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 12px; margin-bottom: 20px; }
  .card { background: #fff; border-radius: 8px; padding: 12px 14px; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
  .card .k { font-size: 12px; color: #5b6475; text-transform: uppercase; letter-spacing: .04em; }
  .card .v { font-size: 22px; font-weight: 600; margin-top: 4px; font-variant-numeric: tabular-nums; }
  .role { display: inline-block; padding: 2px 10px; border-radius: 999px; font-size: 14px; font-weight: 600; }
  .role-leader { background: #d9f2e3; color: #136c3a; } .role-follower { background: #e6ecf7; color: #2c4a80; }
  .role-candidate { background: #fff1d6; color: #8a5a00; } .role-halted, .role-unreachable { background: #fde2e1; color: #a02020; }
  .role-starting { background: #eee; color: #555; } .role-removed { background: #fde2e1; color: #a02020; }
  #membership div { font-size: 14px; margin-top: 4px; }
  table { width: 100%; border-collapse: collapse; background: #fff; border-radius: 8px; overflow: hidden; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
  th, td { text-align: left; padding: 8px 12px; font-size: 14px; border-bottom: 1px solid #eef0f4; font-variant-numeric: tabular-nums; }
  th { background: #fafbfc; font-size: 12px; color: #5b6475; text-transform: uppercase; letter-spacing: .04em; }
  .ok { color: #136c3a; } .bad { color: #a02020; }
  h2 { font-size: 15px; margin: 22px 0 8px; }
  ul.events { list-style: none; padding: 0; margin: 0; background: #fff; border-radius: 8px; box-shadow: 0 1px 2px rgba(0,0,0,.08); max-height: 320px; overflow: auto; }
  ul.events li { padding: 6px 12px; border-bottom: 1px solid #eef0f4; font-size: 13px; }
  ul.events li .t { color: #5b6475; margin-right: 8px; font-variant-numeric: tabular-nums; }
  .level-warn { color: #8a5a00; } .level-error { color: #a02020; font-weight: 600; }
  #login { display: none; background: #fff; border-radius: 8px; padding: 12px 14px; margin-bottom: 12px; box-shadow: 0 1px 2px rgba(0,0,0,.08); font-size: 14px; }
  #login input { width: 28em; max-width: 100%; font-family: monospace; }
  #banner { display: none; background: #fde2e1; color: #a02020; padding: 8px 12px; border-radius: 6px; margin-bottom: 12px; }
  a { color: #2c4a80; }
</style>
</head>
<body>
<h1>paxos-lease &middot; replica <span id="replica">${replica}</span> <span id="role" class="role role-starting" data-testid="role">starting</span></h1>
<div class="sub">cluster <span id="cluster">?</span> &middot; client API <span id="http">?</span> &middot; updated <span id="updated">never</span></div>
<div id="banner"></div>
<form id="login" data-testid="login"><div id="login-why">This replica shows its status only to a token with the read role.</div>
<p>Paste one (<code>paxos-lease tokens create --role read</code>), or open this page as <code>/#token=&lt;token&gt;</code>:</p>
<input id="token" type="password" autocomplete="off" placeholder="plt_..."> <button type="submit">Show status</button></form>
<div class="grid">
  <div class="card"><div class="k">Leader</div><div class="v" id="leader" data-testid="leader">unknown</div></div>
  <div class="card"><div class="k">Ballot</div><div class="v" id="ballot">-</div></div>
  <div class="card"><div class="k">Lease remaining</div><div class="v" id="lease">-</div></div>
  <div class="card"><div class="k">Executed slot</div><div class="v" id="executed">0</div></div>
  <div class="card"><div class="k">Commit index</div><div class="v" id="commit">0</div></div>
  <div class="card"><div class="k">Pending / in flight</div><div class="v" id="pending">0 / 0</div></div>
</div>
<h2>Membership</h2>
<div class="card" id="membership" data-testid="membership"><div id="in-force">-</div><div id="pending-configs"></div><div id="transfer"></div></div>
<h2>Peers</h2>
<table>
  <thead><tr><th>Replica</th><th>Member</th><th>Peer address</th><th>Out</th><th>In</th><th>Last heard</th><th>Executed</th><th>Lag</th><th>Status page</th></tr></thead>
  <tbody id="peers"></tbody>
</table>
<h2>Recent events</h2>
<ul class="events" id="events"></ul>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
function cell(row, text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; row.appendChild(td); return td; }
function ms(value) { return value === null || value === undefined ? "-" : value < 1000 ? Math.round(value) + " ms" : (value / 1000).toFixed(1) + " s"; }
function configText(c) { return "voters " + c.voters.join(",") + (c.learners.length ? ", learners " + c.learners.join(",") : "") + " (chosen at slot " + c.epoch + ", governs from slot " + c.governsFrom + ")"; }
function memberOf(m, id) { const c = m.pending.length ? m.pending[m.pending.length - 1] : m.inForce; return c.voters.includes(id) ? "voter" : c.learners.includes(id) ? "learner" : "no"; }
function render(s) {
  const m = s.membership;
  $("in-force").textContent = "In force: " + configText(m.inForce) + "; this replica: " + (m.self === "none" ? "not a member" : m.self);
  $("in-force").dataset.voters = m.inForce.voters.join(",");
  $("pending-configs").textContent = m.pending.length ? "Pending: " + m.pending.map(configText).join("; ") : "No change pending (a change governs " + m.alpha + " slots after it is chosen)";
  $("transfer").textContent = m.transfer ? "State transfer from replica " + m.transfer.from + ": snapshot at slot " + m.transfer.slot + ", " + m.transfer.receivedBytes + " of " + m.transfer.totalBytes + " bytes" : "";
  $("cluster").textContent = s.clusterId;
  $("http").textContent = s.http;
  const role = s.halted ? "halted" : s.role;
  $("role").textContent = role;
  $("role").className = "role role-" + role;
  $("role").dataset.role = role;
  const leader = s.leader === null ? "unknown" : (s.leader === s.replica ? "replica " + s.leader + " (this one)" : "replica " + s.leader);
  $("leader").textContent = leader;
  $("leader").dataset.leader = s.leader === null ? "" : String(s.leader);
  $("ballot").textContent = s.ballot === null ? "promised " + s.promised : s.ballot;
  $("lease").textContent = s.leaseRemainingMs === null ? "not leader" : ms(s.leaseRemainingMs);
  $("executed").textContent = String(s.executedSlot);
  $("commit").textContent = String(s.commitIndex);
  $("pending").textContent = s.pendingCommands + " / " + s.inflightSlots;
  const banner = $("banner");
  const stopped = s.halted || s.retired;
  banner.style.display = stopped ? "block" : "none";
  banner.textContent = stopped ? "Stopped serving: " + stopped : "";
  const peers = $("peers");
  peers.replaceChildren();
  for (const p of s.peers) {
    const row = document.createElement("tr");
    row.dataset.peer = String(p.id);
    cell(row, "replica " + p.id + (p.id === s.leader ? " (leader)" : ""));
    cell(row, memberOf(m, p.id));
    cell(row, p.address);
    cell(row, p.outbound ? "up" : "down", p.outbound ? "ok" : "bad");
    cell(row, p.inbound ? "up" : "down", p.inbound ? "ok" : "bad");
    cell(row, p.lastHeardMsAgo === null ? "never" : ms(p.lastHeardMsAgo) + " ago");
    cell(row, p.executedSlot === null ? "-" : String(p.executedSlot));
    cell(row, p.lag === null ? "-" : String(p.lag), p.lag !== null && p.lag > 100 ? "bad" : "");
    const link = cell(row, "");
    if (p.http) { const a = document.createElement("a"); a.href = location.protocol + "//" + p.http + "/"; a.textContent = p.http; link.appendChild(a); }
    peers.appendChild(row);
  }
  const events = $("events");
  events.replaceChildren();
  for (const e of s.events) {
    const li = document.createElement("li");
    li.className = "level-" + e.level;
    const t = document.createElement("span");
    t.className = "t";
    t.textContent = e.time.slice(11, 23);
    li.appendChild(t);
    li.appendChild(document.createTextNode(e.text));
    events.appendChild(li);
  }
  $("updated").textContent = new Date().toLocaleTimeString();
}
const tokenKey = "paxos-lease-token";
function takeToken() {
  const fromAddress = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!fromAddress) return;
  sessionStorage.setItem(tokenKey, decodeURIComponent(fromAddress[1]));
  history.replaceState(null, "", location.pathname + location.search);
}
takeToken();
window.addEventListener("hashchange", takeToken);
$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(tokenKey, $("token").value.trim());
  $("login").style.display = "none";
});
async function poll() {
  try {
    const token = sessionStorage.getItem(tokenKey);
    const response = await fetch("/status", { cache: "no-store", headers: token ? { Authorization: "Bearer " + token } : {} });
    if (response.status === 401 || response.status === 403) {
      const refusal = await response.json();
      $("login-why").textContent = "This replica shows its status only to a token with the read role" + (token ? ": " + refusal.message : ".");
      $("login").style.display = "block";
    }
    if (!response.ok) throw new Error("HTTP " + response.status);
    $("login").style.display = "none";
    render(await response.json());
  } catch (error) {
    $("role").textContent = "unreachable";
    $("role").className = "role role-unreachable";
    $("role").dataset.role = "unreachable";
  } finally {
    setTimeout(poll, 500);
  }
}
poll();
</script>
</body>
</html>
`;
}
