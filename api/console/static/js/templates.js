// Templates: the list, and for each a form generated from its parameter JSON Schema
// that submits a job and shows its result as it arrives.
import { h, set, clear, badge, progressBar, terminal } from './dom.js';
import { api, follow } from './api.js';
import { renderOutputs, renderError } from './outputs.js';

export function templatesPage(main) {
  const ctl = new AbortController();
  const list = h('div', { class: 'tgrid' });
  clear(main).append(h('div', { class: 'pagehead' }, h('h1', null, 'Templates')), list);
  api('v1/templates', { signal: ctl.signal }).then((tl) => {
    if (!tl.templates.length) {
      set(list, h('p', { class: 'muted' }, 'No templates yet. An admin registers them with POST /v1/templates or comfyq template add.'));
      return;
    }
    set(list, ...tl.templates.map((t) => h('a', { class: 'tcard', href: '#/templates/' + encodeURIComponent(t.name) },
      h('h3', null, t.name, h('span', { class: 'muted small' }, ' v', t.version)),
      h('p', null, t.description || ''),
      h('div', { class: 'chips' }, (t.params || []).map((p) => h('span', { class: 'chip' }, p.name, h('span', { class: 'muted' }, ' ', p.type)))))));
  }, (e) => { if (!ctl.signal.aborted) set(list, h('p', { class: 'error-text' }, e.message)); });
  return () => ctl.abort();
}

const maxSafe = Number.MAX_SAFE_INTEGER;

// field builds the control of one parameter and returns {el, read, name}; read
// returns the value to send, or undefined to leave the template's default.
function field(name, schema, required, isImage) {
  const id = 'p-' + name;
  const label = h('label', { for: id }, name, required ? h('span', { class: 'req', title: 'required' }, ' *') : null);
  const help = schema.description ? h('p', { class: 'help' }, schema.description) : null;
  let control; let read; const extra = [];
  if (isImage) {
    const preview = h('img', { class: 'preview', alt: '', hidden: true });
    control = h('input', { id, name, type: 'file', accept: 'image/*' });
    control.addEventListener('change', () => {
      const f = control.files[0];
      if (preview.src) URL.revokeObjectURL(preview.src);
      preview.hidden = !f;
      if (f) preview.src = URL.createObjectURL(f);
    });
    extra.push(preview);
    read = () => new Promise((resolve, reject) => {
      const f = control.files[0];
      if (!f) { resolve(undefined); return; }
      const r = new FileReader();
      r.onload = () => resolve({ base64: r.result, filename: f.name });
      r.onerror = () => reject(r.error);
      r.readAsDataURL(f);
    });
  } else if (Array.isArray(schema.enum)) {
    control = h('select', { id, name }, schema.enum.map((v) => h('option', { value: JSON.stringify(v) }, String(v))));
    if (schema.default !== undefined) control.value = JSON.stringify(schema.default);
    read = () => JSON.parse(control.value);
  } else if (schema.type === 'integer' || schema.type === 'number') {
    const int = schema.type === 'integer';
    control = h('input', { id, name, type: 'number', step: int ? '1' : 'any', inputmode: int ? 'numeric' : 'decimal' });
    if (schema.minimum !== undefined) control.min = String(schema.minimum);
    if (schema.maximum !== undefined && schema.maximum <= maxSafe) control.max = String(schema.maximum);
    if (schema.default !== undefined) control.value = String(schema.default);
    // A bound past 2^53 (a 64-bit seed) has no exact JavaScript number: not shown.
    const shown = (v) => v !== undefined && Math.abs(v) <= maxSafe;
    const bounds = [shown(schema.minimum) ? 'min ' + schema.minimum : '', shown(schema.maximum) ? 'max ' + schema.maximum : ''].filter(Boolean).join(', ');
    if (bounds) label.append(h('span', { class: 'muted small' }, ' (' + bounds + ')'));
    if (int && /seed/i.test(name)) {
      extra.push(h('button', { type: 'button', class: 'small ghost seed', onclick: () => {
        const lo = Math.max(schema.minimum || 0, 0);
        const hi = Math.min(schema.maximum === undefined ? 2 ** 48 : schema.maximum, 2 ** 48);
        control.value = String(lo + Math.floor(Math.random() * (hi - lo + 1)));
      } }, 'Random'));
    }
    read = () => {
      if (control.value === '') return undefined;
      const v = Number(control.value);
      if (!Number.isFinite(v) || (int && !Number.isSafeInteger(v))) throw new Error(name + ': not a usable ' + schema.type);
      return v;
    };
  } else if (schema.type === 'boolean') {
    control = h('input', { id, name, type: 'checkbox', checked: schema.default === true });
    read = () => control.checked;
  } else {
    const long = schema['x-multiline'] || /prompt|text/i.test(name);
    control = long ? h('textarea', { id, name, rows: 3 }) : h('input', { id, name, type: 'text' });
    if (schema.default !== undefined) control.value = String(schema.default);
    read = () => control.value;
  }
  if (required && !isImage) control.required = true;
  const el = h('div', { class: 'field', dataset: { param: name } }, label, h('div', { class: 'control' }, control, extra), help);
  return { el, read, name, isImage };
}

export function templatePage(main, name) {
  const ctl = new AbortController();
  const body = h('div');
  const result = h('section', { class: 'panel result', id: 'result', hidden: true });
  clear(main).append(h('p', { class: 'crumbs' }, h('a', { href: '#/templates' }, '← Templates')), body, result);
  let runCtl = null;
  ctl.signal.addEventListener('abort', () => runCtl && runCtl.abort());

  api('v1/templates/' + encodeURIComponent(name), { signal: ctl.signal }).then((t) => {
    const ps = t.params_schema || {};
    const is = t.images_schema || {};
    const req = new Set([...(ps.required || []), ...(is.required || [])]);
    // In the template's own order of parameters (the workflow's), not the schema's.
    const order = (t.params || []).map((p) => p.name);
    const rank = (n) => { const i = order.indexOf(n); return i < 0 ? order.length : i; };
    const byOrder = (props) => Object.entries(props || {}).sort(([a], [b]) => rank(a) - rank(b));
    const fields = [
      ...byOrder(is.properties).map(([n, s]) => field(n, s, req.has(n), true)),
      ...byOrder(ps.properties).map(([n, s]) => field(n, s, req.has(n), false)),
    ];
    const formErr = h('div', { class: 'error-text', hidden: true });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Run ', t.name);
    const form = h('form', { class: 'tform', id: 'tform', novalidate: false }, fields.map((f) => f.el), formErr, h('div', { class: 'actions' }, submit));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      for (const f of fields) f.el.classList.remove('invalid');
      formErr.hidden = true;
      const reqBody = { params: {}, images: {} };
      try {
        for (const f of fields) {
          const v = await f.read();
          if (v !== undefined) (f.isImage ? reqBody.images : reqBody.params)[f.name] = v;
        }
      } catch (err) { formErr.textContent = err.message; formErr.hidden = false; return; }
      submit.disabled = true;
      try {
        const acc = await api('v1/templates/' + encodeURIComponent(t.name) + '/jobs', { method: 'POST', body: reqBody });
        run(acc.id);
      } catch (err) {
        const lines = [err.message];
        const mark = (p) => { const f = fields.find((x) => x.name === p || 'params.' + x.name === p || 'images.' + x.name === p); if (f) f.el.classList.add('invalid'); };
        if (err.field) mark(err.field);
        if (Array.isArray(err.details)) for (const d of err.details) { if (d.param) { mark(d.param); lines.push(d.param + ': ' + d.message); } }
        set(formErr, ...lines.map((l) => h('div', null, l)));
        formErr.hidden = false;
      } finally { submit.disabled = false; }
    });
    set(body, h('div', { class: 'pagehead' }, h('h1', null, t.name, h('span', { class: 'muted small' }, ' version ', t.version))),
      t.description ? h('p', { class: 'lead' }, t.description) : null, form);
  }, (e) => { if (!ctl.signal.aborted) set(body, h('p', { class: 'error-text' }, e.status === 404 ? 'No such template.' : e.message)); });

  function run(id) {
    if (runCtl) runCtl.abort();
    runCtl = new AbortController();
    const pb = progressBar();
    const status = h('span');
    const outs = h('div');
    const err = h('div');
    result.hidden = false;
    result.dataset.job = id;
    set(result, h('div', { class: 'panelhead' }, h('h2', null, 'Result'), status, h('a', { href: '#/jobs/' + id, class: 'small' }, 'job page →')), pb.el, err, outs);
    let shown = -1;
    follow(id, (j) => {
      set(status, badge(j.status));
      result.dataset.status = j.status;
      pb.update(j);
      const n = (j.outputs || []).length;
      if (n !== shown || terminal(j.status)) { set(outs, n || terminal(j.status) ? renderOutputs(j) : ''); shown = n; }
      set(err, renderError(j.error) || '');
    }, runCtl.signal);
    result.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
  }
  return () => ctl.abort();
}
