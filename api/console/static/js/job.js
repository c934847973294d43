// A job: status and live progress, every output as what it is, the error with
// ComfyUI's node_errors, the workflow, webhook deliveries, cancel and replay.
import { h, set, clear, badge, fmtMS, fmtTime, progressBar, terminal } from './dom.js';
import { api, follow } from './api.js';
import { renderOutputs, renderError } from './outputs.js';

export function jobPage(main, id, ctx) {
  const ctl = new AbortController();
  const head = h('div', { class: 'pagehead' });
  const pb = progressBar();
  const facts = h('dl', { class: 'facts' });
  const actions = h('div', { class: 'actions' });
  const outputs = h('section', { class: 'panel', id: 'outputs' });
  const error = h('div', { id: 'error' });
  const hooks = h('section', { class: 'panel', id: 'webhooks', hidden: true });
  const workflow = h('section', { class: 'panel', id: 'workflow' });
  const notice = h('p', { class: 'error-text', hidden: true });
  clear(main).append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/jobs' }, '← Jobs')),
    head, pb.el, actions, notice, error,
    h('div', { class: 'cols' }, h('div', { class: 'colmain' }, h('h2', null, 'Outputs'), outputs), h('aside', { class: 'colside' }, facts)),
    hooks, workflow);

  let last = null;
  let outputsShown = -1;
  const render = (j) => {
    last = j;
    main.dataset.status = j.status;
    set(head, h('h1', null, j.template ? j.template : 'Job', ' ', badge(j.status)), h('code', { class: 'jobid' }, j.id));
    pb.update(j);
    const t = j.timings || {};
    const fact = (k, v) => (v === undefined || v === null || v === '' ? null : [h('dt', null, k), h('dd', null, v)]);
    set(facts, ...[
      fact('template', j.template ? h('a', { href: '#/templates/' + encodeURIComponent(j.template) }, j.template, ' v', j.template_version) : null),
      fact('queue', j.queue),
      fact('attempt', j.attempt + ' of ' + j.max_attempts),
      fact('node', j.node_name && j.node ? j.node_name + ' (' + j.node + ')' : j.node_name || j.node),
      fact('created', fmtTime(j.created_at)),
      fact('started', fmtTime(j.started_at)),
      fact('finished', fmtTime(j.finished_at)),
      fact('queued for', j.timings ? fmtMS(t.queued_ms) : null),
      fact('executed in', j.timings ? fmtMS(t.execution_ms) : null),
      fact('uploaded in', j.timings ? fmtMS(t.upload_ms) : null),
      fact('total', j.timings ? fmtMS(t.total_ms) : null),
      fact('metadata', j.metadata ? h('pre', { class: 'code small' }, JSON.stringify(j.metadata, null, 2)) : null),
    ].flat().filter(Boolean));
    const cancelable = !terminal(j.status) && !j.cancel_requested;
    set(actions, 
      cancelable ? h('button', { type: 'button', class: 'danger', id: 'cancel', onclick: cancel }, 'Cancel job') : null,
      j.cancel_requested && !terminal(j.status) ? h('span', { class: 'muted' }, 'Cancel requested…') : null);
    const n = (j.outputs || []).length;
    if (n !== outputsShown || terminal(j.status)) {
      if (n !== outputsShown || outputs.dataset.final !== 'yes') {
        set(outputs, renderOutputs(j));
        outputsShown = n;
        outputs.dataset.final = terminal(j.status) ? 'yes' : 'no';
      }
    }
    set(error, renderError(j.error) || '');
    renderHooks(j);
  };

  async function cancel(e) {
    e.target.disabled = true;
    try {
      render(await api('v1/jobs/' + id + '/cancel', { method: 'POST' }));
    } catch (err) {
      showNotice(err.message);
      e.target.disabled = false;
    }
  }

  function showNotice(msg) { notice.textContent = msg; notice.hidden = !msg; }

  function renderHooks(j) {
    const ds = j.webhooks || [];
    if (!ds.length && !j.webhook) { hooks.hidden = true; return; }
    hooks.hidden = false;
    const replay = ctx.admin && terminal(j.status)
      ? h('button', { type: 'button', class: 'small', id: 'replay', onclick: async (e) => {
        e.target.disabled = true;
        try {
          await api('v1/jobs/' + id + '/webhooks/replay', { method: 'POST' });
          showNotice('');
          setTimeout(refresh, 800);
        } catch (err) { showNotice('Replay: ' + err.message); }
        e.target.disabled = false;
      } }, 'Replay webhook') : null;
    set(hooks, h('div', { class: 'panelhead' }, h('h2', null, 'Webhook deliveries'), replay),
      ds.length ? h('table', { class: 'kv wide' },
        h('thead', null, h('tr', null, ['event', 'url', 'attempts', 'status', 'last error', 'delivered'].map((c) => h('th', null, c)))),
        h('tbody', null, ds.map((d) => h('tr', { class: d.delivered_at ? 'ok' : 'pending' },
          h('td', null, h('code', null, d.event)), h('td', { class: 'url' }, d.url), h('td', null, d.attempts),
          h('td', null, d.status_code || ''), h('td', null, d.last_error || ''), h('td', null, d.delivered_at ? fmtTime(d.delivered_at) : 'not yet')))))
        : h('p', { class: 'muted' }, 'No deliveries yet (to ', j.webhook.url, ').'));
  }

  async function refresh() {
    try { render(await api('v1/jobs/' + id, { signal: ctl.signal })); } catch { /* keep what is shown */ }
  }

  async function loadWorkflow() {
    try {
      const wf = await api('v1/jobs/' + id + '/workflow', { signal: ctl.signal });
      const nodes = Object.entries(wf.prompt || {});
      set(workflow, h('details', null,
        h('summary', null, h('h2', { class: 'inline' }, 'Workflow'), h('span', { class: 'muted' }, ' ', nodes.length, ' nodes · task ', wf.task_state)),
        h('table', { class: 'kv wide wf' }, h('tbody', null, nodes.map(([nid, n]) => h('tr', null,
          h('td', null, h('b', null, nid)), h('td', null, n.class_type, n._meta && n._meta.title && n._meta.title !== n.class_type ? h('div', { class: 'muted small' }, n._meta.title) : null),
          h('td', null, h('code', { class: 'inputs' }, Object.entries(n.inputs || {}).map(([k, v]) => k + ': ' + JSON.stringify(v)).join('\n'))))))),
        h('pre', { class: 'code' }, JSON.stringify(wf.prompt, null, 2))));
    } catch (e) {
      set(workflow, h('h2', null, 'Workflow'), h('p', { class: 'muted' }, e.status === 404 ? e.message : 'Workflow unavailable: ' + e.message));
    }
  }

  (async () => {
    try {
      render(await api('v1/jobs/' + id, { signal: ctl.signal }));
    } catch (e) {
      if (!ctl.signal.aborted) set(main, h('p', { class: 'error-text' }, e.status === 404 ? 'No such job (wrong id, or expired).' : e.message));
      return;
    }
    loadWorkflow();
    if (!terminal(last.status)) {
      await follow(id, render, ctl.signal);
      if (!ctl.signal.aborted) { refresh(); loadWorkflow(); }
    }
  })();
  return () => ctl.abort();
}
