// The console: hash routes (#/jobs, #/jobs/ID, #/templates, #/templates/NAME,
// #/nodes), the API key prompt and the role of the key.
import { api, getKey, setKey, onUnauthorized } from './api.js';
import { jobsPage } from './jobs.js';
import { jobPage } from './job.js';
import { templatesPage, templatePage } from './templates.js';
import { nodesPage } from './nodes.js';

const main = document.getElementById('main');
const dlg = document.getElementById('keydlg');
const keyform = document.getElementById('keyform');
const keyinput = document.getElementById('keyinput');
const keyerr = document.getElementById('keyerr');
const roleEl = document.getElementById('role');
const forget = document.getElementById('forget');

const ctx = { role: '', admin: false, auth: true };
let cleanup = () => {};

function route() {
  cleanup();
  cleanup = () => {};
  delete main.dataset.status;
  const hash = location.hash || '#/jobs';
  const [path, qs] = hash.slice(1).split('?');
  const params = new URLSearchParams(qs || '');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const section = parts[0] || 'jobs';
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.dataset.nav === section);
  let c;
  if (section === 'jobs' && parts[1]) c = jobPage(main, parts[1], ctx);
  else if (section === 'templates' && parts[1]) c = templatePage(main, parts[1], ctx);
  else if (section === 'templates') c = templatesPage(main, ctx);
  else if (section === 'nodes') c = nodesPage(main, ctx);
  else c = jobsPage(main, params, ctx);
  cleanup = c || (() => {});
  window.scrollTo(0, 0);
}

function askKey(message) {
  keyerr.textContent = message || '';
  keyerr.hidden = !message;
  keyinput.value = '';
  if (!dlg.open) dlg.showModal();
  keyinput.focus();
}

async function whoami() {
  try {
    const w = await api('v1/whoami', { noAuthPrompt: true });
    ctx.role = w.role;
    ctx.admin = w.role === 'admin';
    ctx.auth = w.auth;
    document.body.dataset.role = w.role;
    roleEl.textContent = w.auth ? w.role + ' key' : 'no authentication';
    roleEl.className = 'role ' + w.role;
    forget.hidden = !w.auth;
    for (const el of document.querySelectorAll('.admin-only')) el.hidden = !ctx.admin;
    return true;
  } catch (e) {
    if (e.status === 401) return false;
    throw e;
  }
}

keyform.addEventListener('submit', async (e) => {
  e.preventDefault();
  setKey(keyinput.value.trim());
  if (await whoami()) {
    dlg.close();
    route();
  } else {
    setKey('');
    askKey('That key is not valid here.');
  }
});
dlg.addEventListener('cancel', (e) => e.preventDefault());
forget.addEventListener('click', () => { setKey(''); location.reload(); });
onUnauthorized(() => { setKey(''); askKey('The key was refused; enter it again.'); });
window.addEventListener('hashchange', route);

(async () => {
  try {
    if (await whoami()) route();
    else askKey(getKey() ? 'The stored key was refused.' : '');
  } catch (e) {
    main.textContent = 'The API does not answer: ' + e.message;
  }
})();
