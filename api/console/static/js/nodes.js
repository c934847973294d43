// Nodes: each ComfyUI node with its health, version, depth, queue, busy fraction and
// the jobs it holds, from the workers' heartbeats (GET /v1/nodes).
import { h, set, clear, fmtAgo } from './dom.js';
import { api } from './api.js';

const span = (s) => (s < 60 ? s + ' s' : Math.round(s / 6) / 10 + ' min');

export function nodesPage(main) {
  const ctl = new AbortController();
  const list = h('div', { class: 'ngrid', id: 'nodes' });
  clear(main).append(h('div', { class: 'pagehead' }, h('h1', null, 'Nodes'),
    h('p', { class: 'muted' }, 'As their workers report them every 5 s.')), list);

  const card = (n) => {
    const pct = Math.round((n.busy || 0) * 100);
    const fill = h('span', { class: 'fill' });
    fill.style.width = pct + '%';
    return h('article', { class: 'ncard', dataset: { node: n.name, healthy: String(n.healthy) } },
      h('header', null, h('span', { class: 'dot ' + (n.healthy ? 'up' : 'down'), title: n.healthy ? 'healthy' : 'down' }),
        h('h3', null, n.name), h('span', { class: 'muted small' }, n.comfyui_version ? 'ComfyUI ' + n.comfyui_version : '')),
      h('div', { class: 'nurl muted small' }, n.url),
      h('dl', { class: 'nstats' },
        h('dt', null, 'health'), h('dd', null, n.healthy ? 'up' : 'down (takes no jobs)'),
        h('dt', null, 'depth'), h('dd', null, n.depth),
        h('dt', null, 'ComfyUI queue'), h('dd', null, n.queue_running, ' running · ', n.queue_pending, ' pending'),
        h('dt', null, 'busy'), h('dd', null, h('div', { class: 'busy' }, h('div', { class: 'progress' }, fill), h('span', null, pct + '% of the last ' + span(n.busy_window_s || 0)))),
        h('dt', null, 'jobs'), h('dd', { class: 'njobs' }, (n.jobs || []).length ? n.jobs.map((id) => h('a', { href: '#/jobs/' + id, class: 'jobid' }, id.slice(0, 13) + '…')) : h('span', { class: 'muted' }, 'idle')),
        h('dt', null, 'worker'), h('dd', { class: 'small' }, n.worker, h('span', { class: 'muted' }, ' · ', fmtAgo(n.updated_at)))));
  };

  async function load() {
    try {
      const nl = await api('v1/nodes', { signal: ctl.signal });
      set(list, ...(nl.nodes.length ? nl.nodes.map(card)
        : [h('p', { class: 'muted' }, 'No node reports in: no worker is running, or none could reach Redis in the last 30 s.')]));
    } catch (e) { if (!ctl.signal.aborted) set(list, h('p', { class: 'error-text' }, e.message)); }
  }
  load();
  const t = setInterval(load, 5000);
  return () => { clearInterval(t); ctl.abort(); };
}
