// The live page (system.observe): one static HTML document with its script, no build step. It reads
// Server-Sent Events from /events (a snapshot every interval, lifecycle events as they happen) and
// renders the tree: pipelines, their stages with state, inbox depth, throughput, restarts, breaker and
// throttle; dead letters with their error history and a replay button (confirmed; sent with the
// per-process token, which the server puts in the page).
export const OBSERVE_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Baton: live</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.2em; } h2 { font-size: 1.05em; margin: 1.2em 0 .3em; }
table { border-collapse: collapse; } td, th { padding: .2em .7em; border-bottom: 1px solid #ddd; text-align: right; }
td:first-child, th:first-child { text-align: left; }
.open { color: #b00; font-weight: bold; } .held { color: #a60; } .bar { display: inline-block; height: .7em; background: #69c; }
#events { font: 12px monospace; max-height: 12em; overflow: auto; background: #f6f6f6; padding: .5em; }
button { font-size: 12px; }
</style></head>
<body>
<h1>Baton <small id="status">connecting</small></h1>
<div id="tree"></div>
<h2>Dead letters</h2><div id="dead">none</div>
<h2>Events</h2><div id="events"></div>
<script>
const TOKEN = '__TOKEN__';
const READONLY = __READONLY__;
const last = new Map();
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
function render(snap) {
  let html = '';
  for (const p of snap.pipelines) {
    html += '<h2 data-pipeline="' + esc(p.name) + '">' + esc(p.name) + ' <small>' + esc(p.status) + ': ' + p.completed + ' completed, ' + p.deadLettered + ' dead-lettered, ' + p.pending + ' pending</small></h2>';
    html += '<table><tr><th>stage</th><th>status</th><th>inbox</th><th></th><th>in flight</th><th>done/s</th><th>completed</th><th>failed</th><th>retried</th><th>restarts</th><th>dead</th><th>breaker</th><th>throttle</th></tr>';
    for (const s of p.stages) {
      const key = p.name + '/' + s.name;
      const prev = last.get(key);
      const rate = prev ? Math.max(0, (s.completed - prev.completed) / Math.max(0.001, (snap.at - prev.at) / 1000)) : 0;
      last.set(key, { completed: s.completed, at: snap.at });
      const width = Math.min(120, Math.round((120 * s.queued) / Math.max(1, s.capacity)));
      html += '<tr data-stage="' + esc(key) + '"><td>' + esc(s.name) + '</td><td>' + esc(s.status) + '</td><td class="inbox">' + s.inbox + '</td><td><span class="bar" style="width:' + width + 'px"></span></td><td>' + s.inFlight + '</td><td>' + rate.toFixed(0) + '</td><td class="completed">' + s.completed + '</td><td>' + s.failed + '</td><td>' + s.retried + '</td><td>' + s.restarts + '</td><td>' + s.deadLettered + '</td><td class="' + (s.breaker === 'closed' ? '' : 'open') + '">' + esc(s.breaker) + '</td><td class="' + (s.throttle === 'open' ? '' : 'held') + '">' + esc(s.throttle) + '</td></tr>';
    }
    html += '</table>';
  }
  document.getElementById('tree').innerHTML = html || 'no pipelines';
}
async function loadDead(snap) {
  const parts = [];
  for (const p of snap.pipelines.filter((p) => p.deadLettered > 0)) {
    const res = await fetch('/dead-letters?pipeline=' + encodeURIComponent(p.name));
    if (!res.ok) continue;
    for (const d of await res.json()) {
      const history = (d.errors || []).map((e) => e.stage + '#' + e.attempt + ': ' + (e.error && e.error.message)).join(' | ');
      parts.push('<tr data-dead="' + esc(d.id) + '"><td>' + esc(p.name) + '</td><td>' + esc(d.id) + '</td><td>' + esc(d.stage) + '</td><td>' + esc(d.error && d.error.code) + '</td><td title="' + esc(history) + '">' + esc(d.error && d.error.message) + '</td><td>' + (READONLY ? '' : '<button data-replay="' + esc(d.id) + '" data-pipeline="' + esc(p.name) + '">replay</button>') + '</td></tr>');
    }
  }
  document.getElementById('dead').innerHTML = parts.length ? '<table><tr><th>pipeline</th><th>id</th><th>stage</th><th>code</th><th>last error</th><th></th></tr>' + parts.join('') + '</table>' : 'none';
}
document.addEventListener('click', async (e) => {
  const b = e.target.closest('button[data-replay]');
  if (!b || !confirm('Replay ' + b.dataset.replay + ' in ' + b.dataset.pipeline + '?')) return;
  const res = await fetch('/replay?pipeline=' + encodeURIComponent(b.dataset.pipeline) + '&id=' + encodeURIComponent(b.dataset.replay), { method: 'POST', headers: { 'x-baton-token': TOKEN } });
  const body = await res.json();
  log(res.ok ? 'replayed ' + body.replayed + ' (' + b.dataset.replay + ')' : 'replay refused: ' + body.error);
});
function log(line) {
  const el = document.getElementById('events');
  el.insertAdjacentHTML('afterbegin', '<div>' + esc(new Date().toISOString().slice(11, 23) + ' ' + line) + '</div>');
  while (el.childNodes.length > 200) el.removeChild(el.lastChild);
}
let deadShown = -1;
const source = new EventSource('/events');
source.addEventListener('snapshot', (m) => {
  const snap = JSON.parse(m.data);
  document.getElementById('status').textContent = 'live';
  render(snap);
  const dead = snap.pipelines.reduce((n, p) => n + p.deadLettered, 0);
  if (dead !== deadShown) { deadShown = dead; loadDead(snap); }
});
source.addEventListener('event', (m) => { const e = JSON.parse(m.data); log(e.type + ' ' + e.path + (e.taskId ? ' ' + e.taskId : '') + (e.error ? ': ' + e.error.message : '')); });
source.addEventListener('action', (m) => { const a = JSON.parse(m.data); log(a.action + ' ' + a.pipeline + ' ' + a.ids.join(',') + ': ' + a.replayed); deadShown = -1; });
source.onerror = () => { document.getElementById('status').textContent = 'disconnected'; };
</script>
</body></html>`;
