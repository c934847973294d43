// A real comfyq stack for the browser tests: redis-server, a simulated ComfyUI node
// (comfyq sim), a worker and the API server (comfyq worker, comfyq api), each its own
// process on a free loopback port, with one user key and one admin key.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, readFileSync, openSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '../../..');

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(what, fn, ms = 30000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try { if (await fn()) return; } catch (e) { last = e; }
    await sleep(100);
  }
  throw new Error('timed out waiting for ' + what + (last ? ': ' + last.message : ''));
}

export async function startStack() {
  const dir = mkdtempSync(join(tmpdir(), 'comfyq-e2e-'));
  const procs = [];
  let bin = process.env.COMFYQ_BIN;
  if (!bin) {
    bin = join(dir, 'comfyq');
    const b = spawnSync('go', ['build', '-o', bin, './cmd/comfyq'], { cwd: repoRoot, stdio: 'inherit' });
    if (b.status !== 0) throw new Error('go build ./cmd/comfyq failed');
  }
  const run = (name, cmd, args, env) => {
    const log = openSync(join(dir, name + '.log'), 'a');
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', log, log] });
    p.name = name;
    procs.push(p);
    return p;
  };
  const userKey = 'user-' + randomBytes(12).toString('hex');
  const adminKey = 'admin-' + randomBytes(12).toString('hex');
  const webhookSecret = 'whsec_' + randomBytes(24).toString('base64');
  const [redisPort, simPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const redisURL = `redis://127.0.0.1:${redisPort}/0`;
  const storage = 'file://' + join(dir, 'outputs');
  const simURL = `http://127.0.0.1:${simPort}`;
  const base = `http://127.0.0.1:${apiPort}`;

  run('redis', 'redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no']);
  // 40 ms per sampler step: a 30-step image takes over a second, long enough to watch.
  run('sim', bin, ['sim', '--listen', `127.0.0.1:${simPort}`, '--step-delay', '40ms', '--dir', join(dir, 'sim'), '--model', 'sim-v1-5.safetensors']);
  const common = { COMFYQ_REDIS_URL: redisURL, COMFYQ_STORAGE_URL: storage, COMFYQ_WEBHOOK_SECRET: webhookSecret, COMFYQ_ALLOW_PRIVATE_URLS: 'true' };
  await until('the simulator', async () => (await fetch(simURL + '/system_stats')).ok);
  run('worker', bin, ['worker', '--comfy', 'sim-1=' + simURL, '--health-interval', '500ms'], common);
  run('api', bin, ['api', '--listen', `127.0.0.1:${apiPort}`, '--object-info', simURL], {
    ...common, COMFYQ_API_KEYS: userKey, COMFYQ_ADMIN_KEYS: adminKey,
  });

  const stack = {
    dir, base, userKey, adminKey, procs,
    async api(path, { key = userKey, method = 'GET', body } = {}) {
      const r = await fetch(base + path, {
        method, body: body === undefined ? undefined : JSON.stringify(body),
        headers: { Authorization: 'Bearer ' + key, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      });
      const data = await r.json().catch(() => null);
      if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(data)}`);
      return data;
    },
    async wait(id, ms = 30000) {
      let j;
      await until('job ' + id + ' to end', async () => {
        j = await stack.api('/v1/jobs/' + id);
        return ['succeeded', 'failed', 'canceled'].includes(j.status);
      }, ms);
      return j;
    },
    logs() {
      return procs.map((p) => {
        const f = join(dir, p.name + '.log');
        return existsSync(f) ? `--- ${p.name}\n` + readFileSync(f, 'utf8').split('\n').slice(-30).join('\n') : '';
      }).join('\n');
    },
    async stop() {
      // The API and the worker first, Redis last, so that none of them logs a lost Redis.
      const stopAll = (ps) => Promise.all(ps.map((p) => {
        if (p.exitCode !== null) return null;
        p.kill('SIGTERM');
        return Promise.race([new Promise((r) => p.once('exit', r)), sleep(5000).then(() => p.kill('SIGKILL'))]);
      }));
      await stopAll(procs.filter((p) => p.name !== 'redis'));
      await stopAll(procs.filter((p) => p.name === 'redis'));
      if (!process.env.COMFYQ_E2E_KEEP) rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await until('the API', async () => (await fetch(base + '/healthz')).ok);
    await until('the node to report in', async () => {
      const nl = await stack.api('/v1/nodes');
      return nl.nodes.length === 1 && nl.nodes[0].healthy;
    });
    // The example templates of comfyq dev (cmd/comfyq/dev.go).
    const example = (name) => JSON.parse(readFileSync(join(repoRoot, 'cmd/comfyq/examples', name + '.json'), 'utf8'));
    await stack.api('/v1/templates', { key: adminKey, method: 'POST', body: {
      name: 'txt2img', description: 'Text to image: a prompt, a negative prompt, a seed, steps and size.', workflow: example('txt2img'),
    } });
    await stack.api('/v1/templates', { key: adminKey, method: 'POST', body: {
      name: 'img2img', description: 'Image to image: an input image, scaled and inverted.', workflow: example('img2img'),
      params: [
        { name: 'image', targets: ['1.inputs.image'], type: 'image', description: 'the input image' },
        { name: 'width', targets: ['2.inputs.width'], description: 'output width' },
        { name: 'height', targets: ['2.inputs.height'], description: 'output height' },
      ],
    } });
  } catch (e) {
    const logs = stack.logs();
    await stack.stop();
    throw new Error(e.message + '\n' + logs);
  }
  return stack;
}
