// Small DOM helpers. Everything is built with createElement and text nodes: no HTML
// string from data ever reaches the page.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'muted') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function fmtBytes(n) {
  if (n === undefined || n === null) return '';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
}

export function fmtMS(ms) {
  if (ms === undefined || ms === null) return '–';
  if (ms < 1000) return ms + ' ms';
  const s = ms / 1000;
  if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + ' s';
  const m = Math.floor(s / 60);
  if (m < 60) return m + ' min ' + Math.round(s % 60) + ' s';
  return Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
}

export function fmtAgo(iso) {
  if (!iso) return '';
  const d = (Date.now() - new Date(iso).getTime()) / 1000;
  if (d < 5) return 'just now';
  if (d < 60) return Math.round(d) + ' s ago';
  if (d < 3600) return Math.round(d / 60) + ' min ago';
  if (d < 86400) return Math.round(d / 3600) + ' h ago';
  return new Date(iso).toLocaleDateString();
}

export function fmtTime(iso) {
  return iso ? new Date(iso).toLocaleString() : '';
}

export const terminal = (st) => st === 'succeeded' || st === 'failed' || st === 'canceled';

export function badge(status) {
  return h('span', { class: 'badge st-' + status, dataset: { status } }, status);
}

// progressBar returns a bar and an update function taking a job.
export function progressBar() {
  const fill = h('span', { class: 'fill' });
  const label = h('span', { class: 'plabel' });
  const bar = h('div', { class: 'progress', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100' }, fill);
  const wrap = h('div', { class: 'pwrap' }, bar, label);
  const update = (j) => {
    const p = j.progress;
    let f = p ? p.fraction : 0;
    if (j.status === 'succeeded') f = 1;
    const pct = Math.round(f * 100);
    fill.style.width = pct + '%';
    bar.setAttribute('aria-valuenow', String(pct));
    bar.dataset.fraction = String(f);
    wrap.dataset.status = j.status;
    let text = '';
    if (j.status === 'running' && p) {
      text = pct + '%';
      if (p.node) text += ' · node ' + p.node + (p.node_class ? ' ' + p.node_class : '');
      if (p.steps) text += ' · step ' + p.step + '/' + p.steps;
    } else if (j.status === 'uploading') text = 'uploading outputs';
    else if (j.status === 'queued') text = j.cancel_requested ? 'cancel requested' : 'waiting for a node';
    label.textContent = text;
    wrap.hidden = terminal(j.status);
  };
  return { el: wrap, update };
}

// set replaces el's children, skipping null, undefined and false (replaceChildren
// would write them out as text).
export function set(el, ...children) {
  return append(clear(el), children);
}
