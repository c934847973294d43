// Rendering of a job's outputs and errors, shared by the job page and the template form.
import { h, fmtBytes } from './dom.js';
import { fetchBlob, download } from './api.js';

// mediaInto sets el's src (img, video, audio) to the output's blob: URL.
export function mediaInto(el, output) {
  el.classList.add('loading');
  fetchBlob(output.key).then((u) => {
    el.src = u;
    el.classList.remove('loading');
  }, () => {
    el.classList.remove('loading');
    el.classList.add('broken');
    el.title = 'could not load ' + (output.filename || output.key);
  });
  return el;
}

// firstVisual is the first image (else video) output of a job.
export function firstVisual(j) {
  const outs = (j.outputs || []).filter((o) => o.key);
  return outs.find((o) => o.kind === 'image') || outs.find((o) => o.kind === 'video');
}

function outputMedia(o) {
  if (!o.key) return null;
  switch (o.kind) {
    case 'image': return mediaInto(h('img', { class: 'media', alt: o.filename || 'image output' }), o);
    case 'video': return mediaInto(h('video', { class: 'media', controls: true, loop: true, muted: true, playsinline: true, preload: 'metadata' }), o);
    case 'audio': return mediaInto(h('audio', { class: 'audio', controls: true, preload: 'metadata' }), o);
  }
  return null;
}

export function renderOutput(o) {
  const media = o.kind === 'text' ? h('pre', { class: 'text-output' }, o.text || '') : outputMedia(o);
  const meta = h('div', { class: 'ometa' },
    h('div', { class: 'oname' }, h('span', { class: 'kind' }, o.kind), ' ', o.filename || (o.kind === 'text' ? 'text' : ''),
      h('span', { class: 'muted' }, ' · node ', o.node_id)),
    o.key ? h('div', { class: 'ofile' },
      h('span', null, fmtBytes(o.size)),
      o.content_type ? h('span', { class: 'muted' }, ' · ', o.content_type) : null,
      o.sha256 ? h('div', { class: 'sha', title: 'sha256 ' + o.sha256 }, 'sha256 ', h('code', null, o.sha256)) : null,
      h('button', { type: 'button', class: 'small', onclick: () => download(o) }, 'Download')) : null);
  return h('figure', { class: 'output kind-' + o.kind, dataset: { kind: o.kind } }, media, meta);
}

export function renderOutputs(j) {
  const outs = j.outputs || [];
  if (!outs.length) return h('p', { class: 'muted' }, j.status === 'succeeded' ? 'This job made no outputs.' : 'No outputs yet.');
  return h('div', { class: 'outputs' }, outs.map(renderOutput));
}

// renderError lays out a job's error: code and message, the failing node, ComfyUI's
// node_errors per node and input, and the traceback.
export function renderError(err) {
  if (!err) return null;
  let nodeErrors = err.node_errors;
  if (typeof nodeErrors === 'string') { try { nodeErrors = JSON.parse(nodeErrors); } catch { nodeErrors = null; } }
  const nodes = nodeErrors && typeof nodeErrors === 'object' ? Object.entries(nodeErrors) : [];
  return h('section', { class: 'error-box', dataset: { code: err.code } },
    h('div', { class: 'ehead' }, h('span', { class: 'ecode' }, err.code), err.retryable ? h('span', { class: 'muted' }, ' (retryable)') : null),
    h('p', { class: 'emsg' }, err.message),
    err.node_id ? h('p', { class: 'enode' }, 'at node ', h('b', null, err.node_id), err.node_class ? ' ' + err.node_class : '',
      err.exception_type ? h('span', null, ' · ', h('code', null, err.exception_type)) : null) : null,
    nodes.length ? h('div', { class: 'node-errors' }, nodes.map(([id, ne]) => h('div', { class: 'node-error', dataset: { node: id } },
      h('h4', null, 'Node ', id, ' ', h('span', { class: 'muted' }, ne.class_type || '')),
      h('table', { class: 'kv' },
        h('thead', null, h('tr', null, h('th', null, 'input'), h('th', null, 'error'), h('th', null, 'message'), h('th', null, 'received'))),
        h('tbody', null, (ne.errors || []).map((e) => {
          const info = e.extra_info || {};
          const received = info.received_value === undefined ? '' : JSON.stringify(info.received_value);
          return h('tr', null,
            h('td', null, h('code', null, info.input_name || e.details || '')),
            h('td', null, h('code', null, e.type || '')),
            h('td', null, e.message || ''),
            h('td', null, h('code', null, received)));
        }))),
      ne.dependent_outputs && ne.dependent_outputs.length ? h('p', { class: 'muted small' }, 'blocks output nodes ', ne.dependent_outputs.join(', ')) : null))) : null,
    err.traceback && err.traceback.length ? h('details', null, h('summary', null, 'Traceback'), h('pre', { class: 'code' }, err.traceback.join(''))) : null);
}
