// Browser end-to-end tests of the console: Playwright drives Debian's Chromium headless
// against a real comfyq stack (stack.mjs). Run with `npm test` (node --test) after
// `npm ci`; scripts/test.sh does both after the Go tests.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startStack, repoRoot } from './stack.mjs';

const chromiumPath = process.env.COMFYQ_CHROMIUM || '/usr/bin/chromium';
let stack; let browser; let hookServer; let hookURL;
const hooks = [];

before(async () => {
  stack = await startStack();
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  hookServer = createServer((req, res) => { req.resume(); req.on('end', () => { hooks.push(req.url); res.end('ok'); }); });
  await new Promise((r) => hookServer.listen(0, '127.0.0.1', r));
  hookURL = `http://127.0.0.1:${hookServer.address().port}/hook`;
});

after(async () => {
  await browser?.close();
  hookServer?.close();
  await stack?.stop();
});

// page opens the console with key entered in the key dialog, failing the test on any
// page error or CSP violation.
async function open(t, key, hash = '#/jobs') {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1 });
  const page = await ctx.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error' && /Content Security Policy|Refused/i.test(m.text())) problems.push(m.text()); });
  page.on('request', (r) => { if (!r.url().startsWith(stack.base) && !/^(blob|data):/.test(r.url())) problems.push('request elsewhere: ' + r.url()); });
  t.after(async () => { await ctx.close(); assert.deepEqual(problems, [], 'no page errors, CSP violations or foreign requests'); });
  await page.goto(stack.base + '/console/' + hash);
  await page.locator('#keyinput').fill(key);
  await page.locator('#keyform button[type=submit]').click();
  await page.locator('#keydlg').waitFor({ state: 'hidden' });
  assert.equal(await page.evaluate(() => location.href.includes('key')), false, 'the key is not in the URL');
  return page;
}

test('submit through a template form: the progress bar moves and the image appears', async (t) => {
  const page = await open(t, stack.userKey, '#/templates');
  await page.locator('a.tcard', { hasText: 'txt2img' }).click();
  await page.locator('#tform').waitFor();
  // Bounds and widgets come from the parameter schema.
  assert.equal(await page.locator('#p-steps').getAttribute('min'), '1');
  assert.equal(await page.locator('#p-steps').getAttribute('max'), '10000');
  assert.equal(await page.locator('#p-prompt').evaluate((e) => e.tagName), 'TEXTAREA');
  const before = await page.locator('#p-seed').inputValue();
  await page.locator('[data-param=seed] button.seed').click();
  assert.notEqual(await page.locator('#p-seed').inputValue(), before, 'the random button draws a seed');
  await page.locator('#p-prompt').fill('a red fox in the console');
  await page.locator('#p-steps').fill('40');

  // Record every fraction the bar shows.
  await page.evaluate(() => {
    window.fractions = [];
    new MutationObserver(() => {
      const bar = document.querySelector('#result .progress');
      if (bar) window.fractions.push(Number(bar.dataset.fraction));
    }).observe(document.getElementById('result'), { subtree: true, attributes: true, childList: true });
  });
  await page.locator('#tform button[type=submit]').click();
  await page.locator('#result[data-status=succeeded]').waitFor({ timeout: 30000 });
  const img = page.locator('#result figure.output img');
  await img.waitFor();
  await page.waitForFunction(() => { const i = document.querySelector('#result figure.output img'); return i && i.complete && i.naturalWidth > 0; });
  assert.equal(await img.evaluate((i) => i.naturalWidth), 512);
  assert.match(await img.getAttribute('src'), /^blob:/, 'the image is fetched with the key and shown from a blob');
  const fr = await page.evaluate(() => window.fractions);
  assert.ok(fr.some((f) => f > 0 && f < 1), 'the bar showed a fraction between 0 and 1: ' + fr.join(','));
  assert.ok(new Set(fr).size >= 3, 'the bar moved: ' + fr.join(','));
  assert.match(await page.locator('#result .sha').textContent(), /sha256 [0-9a-f]{64}/);

  // The job is on the jobs list, with its thumbnail.
  const id = await page.locator('#result').getAttribute('data-job');
  await page.goto(stack.base + '/console/#/jobs?template=txt2img');
  const card = page.locator(`a.card[data-id="${id}"]`);
  await card.waitFor();
  await page.waitForFunction((i) => { const im = document.querySelector(`a.card[data-id="${i}"] .thumb img`); return im && im.naturalWidth > 0; }, id);
  assert.equal(await card.getAttribute('data-status'), 'succeeded');
});

// A 2×2 PNG (red, green, blue, white).
const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEklEQVR4nGP4z8DAAMIM/4EAAB/uBfsL2WiLAAAAAElFTkSuQmCC', 'base64');

test('an image parameter is a file picker; its file is sent with the job', async (t) => {
  const page = await open(t, stack.userKey, '#/templates/img2img');
  const picker = page.locator('input[type=file]#p-image');
  await picker.waitFor();
  await picker.setInputFiles({ name: 'in.png', mimeType: 'image/png', buffer: png });
  await page.waitForFunction(() => { const i = document.querySelector('[data-param=image] img.preview'); return i && i.naturalWidth === 2; });
  await page.locator('#p-width').fill('96');
  await page.locator('#p-height').fill('64');
  await page.locator('#tform button[type=submit]').click();
  await page.locator('#result[data-status=succeeded]').waitFor({ timeout: 30000 });
  await page.waitForFunction(() => { const i = document.querySelector('#result figure.output img'); return i && i.naturalWidth > 0; });
  const out = await page.locator('#result figure.output img').evaluate((i) => {
    const c = document.createElement('canvas');
    c.width = i.naturalWidth; c.height = i.naturalHeight;
    const g = c.getContext('2d');
    g.drawImage(i, 0, 0);
    return { size: [c.width, c.height], topLeft: [...g.getImageData(10, 10, 1, 1).data.slice(0, 3)] };
  });
  assert.deepEqual(out.size, [96, 64]);
  assert.deepEqual(out.topLeft, [0, 255, 255], 'the uploaded red corner, scaled and inverted');
});

test('choices are selects', async (t) => {
  const wf = JSON.parse((await import('node:fs')).readFileSync(join(repoRoot, 'cmd/comfyq/examples/txt2img.json'), 'utf8'));
  await stack.api('/v1/templates', { key: stack.adminKey, method: 'POST', body: {
    name: 'sampler', workflow: wf, params: [{ name: 'sampler', targets: ['3.inputs.sampler_name'] }, { name: 'steps', targets: ['3.inputs.steps'] }],
  } });
  const page = await open(t, stack.userKey, '#/templates/sampler');
  const sel = page.locator('select#p-sampler');
  await sel.waitFor();
  const options = await sel.locator('option').allTextContents();
  assert.ok(options.includes('euler') && options.length > 3, 'the sampler names of object_info: ' + options.join(','));
  assert.equal(await sel.inputValue(), '"euler"', 'the workflow value is the default');
  await sel.selectOption({ label: options.find((o) => o !== 'euler') });
  await page.locator('#p-steps').fill('3');
  await page.locator('#tform button[type=submit]').click();
  await page.locator('#result[data-status=succeeded]').waitFor({ timeout: 30000 });
});

test('a failed job shows its node errors per node and input', async (t) => {
  // The API refuses what it can judge (a width of 999999 gets a 400 at submission);
  // whether a file is on the node is the node's own check (LoadImage's
  // VALIDATE_INPUTS), so this job reaches the node and fails there.
  const wf = {
    1: { class_type: 'LoadImage', inputs: { image: 'missing.png' } },
    2: { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'bad' } },
  };
  const acc = await stack.api('/v1/jobs', { method: 'POST', body: { workflow: wf } });
  assert.equal((await stack.wait(acc.id)).status, 'failed');
  const page = await open(t, stack.userKey, '#/jobs/' + acc.id);
  const ne = page.locator('.node-error[data-node="1"]');
  await ne.waitFor();
  assert.match(await ne.locator('h4').textContent(), /Node 1\s+LoadImage/);
  const row = ne.locator('tbody tr').first();
  assert.equal(await row.locator('td').nth(0).textContent(), 'image');
  assert.equal(await row.locator('td').nth(1).textContent(), 'custom_validation_failed');
  assert.equal(await page.locator('.error-box').getAttribute('data-code'), 'validation_failed');
  // A failed job's task is in asynq's archive: the workflow is shown.
  await page.locator('#workflow details').waitFor();
  assert.match(await page.locator('#workflow summary').textContent(), /2 nodes/);
});

test('cancel a running job from its page', async (t) => {
  const acc = await stack.api('/v1/templates/txt2img/jobs', { method: 'POST', body: { params: { steps: 1000 } } });
  const page = await open(t, stack.userKey, '#/jobs/' + acc.id);
  await page.locator('main[data-status=running]').waitFor({ timeout: 20000 });
  await page.locator('#cancel').click();
  await page.locator('main[data-status=canceled]').waitFor({ timeout: 20000 });
  assert.equal(await page.locator('#cancel').count(), 0, 'no cancel button once canceled');
  assert.equal((await stack.api('/v1/jobs/' + acc.id)).status, 'canceled');
});

test('admin actions only for admin keys; nodes and screenshots', async (t) => {
  const acc = await stack.api('/v1/templates/txt2img/jobs', { method: 'POST', body: {
    params: { prompt: 'a lighthouse at dusk', steps: 8 }, webhook: { url: hookURL },
  } });
  await stack.wait(acc.id);
  await new Promise((r) => setTimeout(r, 1000)); // the delivery is recorded after the job ends

  const user = await open(t, stack.userKey, '#/jobs/' + acc.id);
  await user.locator('#webhooks table').waitFor();
  assert.equal(await user.locator('#replay').count(), 0, 'no replay button for a user key');
  assert.equal(await user.locator('.admin-only').isVisible(), false, 'no dashboard link for a user key');
  assert.equal(await user.locator('#role').textContent(), 'user key');

  const admin = await open(t, stack.adminKey, '#/jobs/' + acc.id);
  await admin.locator('#replay').waitFor();
  assert.equal(await admin.locator('.admin-only').isVisible(), true);
  const rows = await admin.locator('#webhooks tbody tr').count();
  const sent = hooks.length;
  assert.ok(rows >= 2 && sent >= 2, `job.started and job.succeeded were delivered (${rows} rows, ${sent} requests)`);
  await admin.locator('#replay').click();
  await admin.waitForFunction((n) => document.querySelectorAll('#webhooks tbody tr').length > n, rows, { timeout: 15000 });
  // The new row is logged when the replay is enqueued (0 attempts), before
  // it is sent: wait for the receiver to see it.
  for (let i = 0; i < 150 && hooks.length <= sent; i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(hooks.length > sent, 'the replay reached the receiver within 15 s');

  await admin.goto(stack.base + '/console/#/nodes');
  const node = admin.locator('.ncard[data-node="sim-1"]');
  await node.waitFor();
  assert.equal(await node.getAttribute('data-healthy'), 'true');
  assert.match(await node.textContent(), /depth2/);

  // Screenshots for the README: a few more jobs in the list, then the list and a job.
  await Promise.all(['a fox in the snow', 'a city at night', 'a bowl of fruit'].map((prompt, i) =>
    stack.api('/v1/templates/txt2img/jobs', { method: 'POST', body: { params: { prompt, steps: 10 + i * 5, width: 512 + i * 64 } } })));
  const slow = await stack.api('/v1/templates/txt2img/jobs', { method: 'POST', body: { params: { prompt: 'slow', steps: 400 } } });
  const dir = process.env.COMFYQ_E2E_SCREENSHOTS || join(stack.dir, 'screenshots');
  mkdirSync(dir, { recursive: true });
  await admin.goto(stack.base + '/console/#/jobs');
  await admin.locator(`a.card[data-id="${slow.id}"][data-status=running]`).waitFor({ timeout: 20000 });
  await admin.waitForFunction(() => [...document.querySelectorAll('a.card[data-status=succeeded] .thumb img')].every((i) => i.naturalWidth > 0));
  await admin.waitForTimeout(800);
  await admin.screenshot({ path: join(dir, 'console-jobs.png') });
  await admin.goto(stack.base + '/console/#/jobs/' + acc.id);
  await admin.waitForFunction(() => { const i = document.querySelector('#outputs img'); return i && i.naturalWidth > 0; });
  await admin.screenshot({ path: join(dir, 'console-job.png') });
  await stack.api('/v1/jobs/' + slow.id + '/cancel', { method: 'POST' });
});
