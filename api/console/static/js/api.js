// The console's use of the comfyq API: the key, JSON calls, event streams and media.

const KEY = 'comfyq.apiKey';

// The API lives beside the console: /console/ → /. Relative, so that a proxy mounting
// comfyq under a path prefix keeps working.
export const apiBase = new URL('../', location.href);

export function getKey() { return sessionStorage.getItem(KEY) || ''; }
export function setKey(k) { if (k) sessionStorage.setItem(KEY, k); else sessionStorage.removeItem(KEY); }

let unauthorizedHandler = () => {};
export function onUnauthorized(fn) { unauthorizedHandler = fn; }

export class APIError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || ('HTTP ' + status));
    this.status = status;
    this.code = e.code || '';
    this.field = e.field || '';
    this.details = e.details;
  }
}

function authHeaders(extra) {
  const h = Object.assign({}, extra);
  const k = getKey();
  if (k) h.Authorization = 'Bearer ' + k;
  return h;
}

export async function api(path, opts = {}) {
  const headers = authHeaders({ Accept: 'application/json' });
  let body;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  const r = await fetch(new URL(path, apiBase), { method: opts.method || 'GET', headers, body, signal: opts.signal, cache: 'no-store' });
  const text = await r.text();
  let data = null;
  if (text) { try { data = JSON.parse(text); } catch { data = null; } }
  if (!r.ok) {
    if (r.status === 401 && !opts.noAuthPrompt) unauthorizedHandler();
    throw new APIError(r.status, data);
  }
  return data;
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

// follow reads GET /v1/jobs/{id}/events and calls onJob(job, eventType) for each
// event, until the job ends or signal aborts. EventSource cannot send the
// Authorization header, so the stream is read with fetch and parsed here; a dropped
// stream is opened again after the server's retry delay.
export async function follow(id, onJob, signal) {
  const url = new URL('v1/jobs/' + encodeURIComponent(id) + '/events', apiBase);
  let retry = 3000;
  while (!signal.aborted) {
    try {
      const r = await fetch(url, { headers: authHeaders({ Accept: 'text/event-stream' }), signal, cache: 'no-store' });
      if (r.status === 404 || r.status === 401 || r.status === 403) return;
      if (!r.ok || !r.body) throw new Error('HTTP ' + r.status);
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, '\n');
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = 'message';
          const data = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const c = line.indexOf(':');
            const field = c < 0 ? line : line.slice(0, c);
            const val = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
            if (field === 'event') event = val;
            else if (field === 'data') data.push(val);
            else if (field === 'retry' && /^\d+$/.test(val)) retry = Number(val);
          }
          if (!data.length) continue;
          let job;
          try { job = JSON.parse(data.join('\n')); } catch { continue; }
          onJob(job, event);
          if (['succeeded', 'failed', 'canceled'].includes(job.status)) {
            reader.cancel().catch(() => {});
            return;
          }
        }
      }
    } catch (e) {
      if (signal.aborted) return;
    }
    await sleep(retry, signal);
  }
}

// Output files are read from the API's /v1/files/{key} with the key in the header and
// shown through blob: URLs, kept for the tab's life (bounded).
const blobs = new Map();
const maxBlobs = 300;

function fileURL(key) {
  return new URL('v1/files/' + key.split('/').map(encodeURIComponent).join('/'), apiBase);
}

export function fetchBlob(key) {
  let p = blobs.get(key);
  if (p) return p;
  p = (async () => {
    const r = await fetch(fileURL(key), { headers: authHeaders() });
    if (!r.ok) throw new APIError(r.status, null);
    return URL.createObjectURL(await r.blob());
  })();
  p.catch(() => blobs.delete(key));
  blobs.set(key, p);
  if (blobs.size > maxBlobs) {
    const [oldKey, oldP] = blobs.entries().next().value;
    blobs.delete(oldKey);
    oldP.then((u) => URL.revokeObjectURL(u), () => {});
  }
  return p;
}

// download saves an output under its file name.
export async function download(output) {
  const u = await fetchBlob(output.key);
  const a = document.createElement('a');
  a.href = u;
  a.download = output.filename || output.key.split('/').pop();
  document.body.append(a);
  a.click();
  a.remove();
}
