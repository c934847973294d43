// Jobs: newest first, filtered and paged, each a card with its first image or video,
// its status, live progress and timings.
import { h, set, clear, badge, fmtAgo, fmtMS, progressBar, terminal } from './dom.js';
import { api, follow } from './api.js';
import { mediaInto, firstVisual } from './outputs.js';

const statuses = ['', 'queued', 'running', 'uploading', 'succeeded', 'failed', 'canceled'];
const pageSize = 24;
// Browsers open at most six HTTP/1.1 connections per origin; live streams must leave
// room for the API calls and the images.
const maxStreams = 3;

export function jobsPage(main, params) {
  const ctl = new AbortController();
  const filters = { status: params.get('status') || '', queue: params.get('queue') || '', template: params.get('template') || '' };
  const cards = new Map(); // id → {el, update, job}
  const streams = new Map(); // id → AbortController
  const grid = h('div', { class: 'grid', id: 'jobgrid' });
  const more = h('button', { type: 'button', class: 'more', hidden: true }, 'Load more');
  const empty = h('p', { class: 'muted empty', hidden: true }, 'No jobs match. Submit one from ', h('a', { href: '#/templates' }, 'Templates'), '.');
  let cursor = '';

  const statusSel = h('select', { name: 'status', 'aria-label': 'status' }, statuses.map((s) => h('option', { value: s }, s || 'any status')));
  statusSel.value = filters.status;
  const queueIn = h('input', { name: 'queue', placeholder: 'queue', value: filters.queue, size: 10, 'aria-label': 'queue' });
  const tmplSel = h('select', { name: 'template', 'aria-label': 'template' }, h('option', { value: '' }, 'any template'));
  api('v1/templates', { signal: ctl.signal }).then((tl) => {
    for (const t of tl.templates) tmplSel.append(h('option', { value: t.name }, t.name));
    tmplSel.value = filters.template;
  }, () => {});
  const apply = () => {
    const q = new URLSearchParams();
    if (statusSel.value) q.set('status', statusSel.value);
    if (queueIn.value.trim()) q.set('queue', queueIn.value.trim());
    if (tmplSel.value) q.set('template', tmplSel.value);
    const s = q.toString();
    location.hash = '#/jobs' + (s ? '?' + s : '');
  };
  statusSel.addEventListener('change', apply);
  tmplSel.addEventListener('change', apply);
  const bar = h('form', { class: 'filters', onsubmit: (e) => { e.preventDefault(); apply(); } },
    statusSel, queueIn, tmplSel, h('button', { type: 'submit', class: 'ghost' }, 'Filter'));

  clear(main).append(h('div', { class: 'pagehead' }, h('h1', null, 'Jobs'), bar), grid, empty, more);

  function query(c) {
    const q = new URLSearchParams({ limit: String(pageSize) });
    for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
    if (c) q.set('cursor', c);
    return 'v1/jobs?' + q;
  }

  function card(j) {
    const thumb = h('div', { class: 'thumb' });
    const pb = progressBar();
    const statusEl = h('span');
    const times = h('div', { class: 'times' });
    const title = h('div', { class: 'ctitle' });
    const el = h('a', { class: 'card', href: '#/jobs/' + j.id, dataset: { id: j.id } }, thumb,
      h('div', { class: 'cbody' }, h('div', { class: 'crow' }, statusEl, title), pb.el, times));
    let shown = '';
    const update = (job) => {
      c.job = job;
      el.dataset.status = job.status;
      set(statusEl, badge(job.status));
      set(title, h('span', { class: 'tname' }, job.template || 'workflow'), h('span', { class: 'muted' }, ' · ', job.queue));
      pb.update(job);
      const t = job.timings;
      set(times, 
        h('span', { title: new Date(job.created_at).toLocaleString() }, fmtAgo(job.created_at)),
        t ? h('span', null, ' · ran ', fmtMS(t.execution_ms), ' · total ', fmtMS(t.total_ms)) : null,
        job.node_name ? h('span', { class: 'muted' }, ' · ', job.node_name) : null,
        job.error ? h('div', { class: 'cerr' }, job.error.code) : null);
      const v = firstVisual(job);
      if (v && v.key !== shown) {
        shown = v.key;
        const m = v.kind === 'image' ? h('img', { alt: '' }) : h('video', { muted: true, loop: true, autoplay: true, playsinline: true });
        set(thumb, mediaInto(m, v));
        thumb.classList.toggle('video', v.kind === 'video');
      } else if (!v && !shown) {
        set(thumb, h('span', { class: 'placeholder st-' + job.status }, job.status === 'failed' ? '!' : job.status === 'canceled' ? '×' : '…'));
      }
    };
    const c = { el, update, job: j };
    update(j);
    return c;
  }

  function stream(id) {
    if (streams.has(id) || streams.size >= maxStreams) return;
    const sc = new AbortController();
    ctl.signal.addEventListener('abort', () => sc.abort(), { once: true });
    streams.set(id, sc);
    follow(id, (job) => { const c = cards.get(id); if (c) c.update(job); }, sc.signal)
      .finally(() => { streams.delete(id); startStreams(); });
  }

  function startStreams() {
    if (ctl.signal.aborted) return;
    for (const [id, c] of cards) if (!terminal(c.job.status)) stream(id);
  }

  function add(jobs, atTop) {
    const fresh = [];
    for (const j of jobs) {
      const c = cards.get(j.id);
      if (c) { if (!streams.has(j.id)) c.update(j); continue; }
      const nc = card(j);
      cards.set(j.id, nc);
      fresh.push(nc.el);
    }
    if (atTop) grid.prepend(...fresh); else grid.append(...fresh);
    empty.hidden = cards.size > 0;
    startStreams();
  }

  async function load(c) {
    try {
      const page = await api(query(c), { signal: ctl.signal });
      add(page.jobs, false);
      cursor = page.next_cursor || '';
      more.hidden = !cursor;
    } catch (e) {
      if (!ctl.signal.aborted) grid.after(h('p', { class: 'error-text' }, e.message));
    }
  }
  more.addEventListener('click', () => load(cursor));
  load('');

  // New jobs appear at the top; cards that are not streamed get their state here.
  const poll = setInterval(async () => {
    try {
      const page = await api(query(''), { signal: ctl.signal });
      const known = page.jobs.filter((j) => cards.has(j.id));
      add(page.jobs.filter((j) => !cards.has(j.id)), true);
      add(known, false);
    } catch { /* the next poll tries again */ }
  }, 4000);

  return () => { clearInterval(poll); ctl.abort(); };
}
