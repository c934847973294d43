// A real comfyq stack for the browser tests: redis-server, a simulated ComfyUI node
// (comfyq sim), a worker and the API server (comfyq worker, comfyq api), each its own
// process on a free loopback port, with one user key and one admin key.
import { mkdtempSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, freePort, until, comfyqBinary, processes } from '../../e2e/processes.mjs';

export { repoRoot };

export async function startStack() {
  const dir = mkdtempSync(join(tmpdir(), 'comfyq-e2e-'));
  const bin = comfyqBinary(dir);
  const { procs, run, logs, stop } = processes(dir);
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
    logs,
    stop,
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
