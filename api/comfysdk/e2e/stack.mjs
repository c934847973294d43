// A real comfyq stack for the SDK tests: redis-server, a simulated ComfyUI node
// (comfyq sim), a worker and the API (comfyq worker, comfyq api), each its own process
// on a free loopback port, outputs and assets in the S3 service of COMFYQ_TEST_S3_URL
// (scripts/test.sh starts versitygw), one user key and one seal key.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, sleep, until, freePort, comfyqBinary, processes } from '../../e2e/processes.mjs';

export { repoRoot, sleep, until };

// s3Storage gives the stack a prefix of its own in the S3 service of the test script.
function s3Storage() {
  const raw = process.env.COMFYQ_TEST_S3_URL;
  if (!raw) {
    throw new Error('COMFYQ_TEST_S3_URL is not set: run scripts/test.sh ./api/comfysdk/..., which starts versitygw, ' +
      'or set it (s3://bucket?endpoint=http://127.0.0.1:PORT&region=us-east-1&path_style=true) with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY');
  }
  const u = new URL(raw);
  u.pathname = (u.pathname.replace(/\/$/, '') || '') + '/sdk-e2e-' + randomBytes(4).toString('hex');
  u.searchParams.set('create_bucket', 'true');
  return u.toString();
}

export async function startStack() {
  const dir = mkdtempSync(join(tmpdir(), 'comfyq-sdk-e2e-'));
  const bin = comfyqBinary(dir);
  const { procs, run, logs, stop } = processes(dir);
  const userKey = 'user-' + randomBytes(12).toString('hex');
  const sealKey = randomBytes(32).toString('hex');
  const [redisPort, simPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const simURL = `http://127.0.0.1:${simPort}`;
  const base = `http://127.0.0.1:${apiPort}`;
  const common = {
    COMFYQ_REDIS_URL: `redis://127.0.0.1:${redisPort}/0`, COMFYQ_STORAGE_URL: s3Storage(),
    COMFYQ_SEAL_KEY: sealKey, COMFYQ_LOG_LEVEL: 'debug',
  };

  run('redis', 'redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no']);
  // 40 ms a sampler step: a 20-step image takes about a second, long enough to follow.
  run('sim', bin, ['sim', '--listen', `127.0.0.1:${simPort}`, '--step-delay', '40ms', '--dir', join(dir, 'sim'), '--model', 'sim-v1-5.safetensors', '--preview-method', 'auto']);
  await until('the simulator', async () => (await fetch(simURL + '/system_stats')).ok);
  run('worker', bin, ['worker', '--comfy', 'sim-1=' + simURL, '--health-interval', '500ms'], common);
  run('api', bin, ['api', '--listen', `127.0.0.1:${apiPort}`, '--object-info', simURL], { ...common, COMFYQ_API_KEYS: userKey });

  const stack = {
    dir, base, userKey, redisPort, procs,
    async v1(path) {
      const r = await fetch(base + path, { headers: { Authorization: 'Bearer ' + userKey } });
      if (!r.ok) throw new Error(`GET ${path}: ${r.status} ${await r.text()}`);
      return r.json();
    },
    // redisDump is every key of Redis and its value, whatever its type, read by one
    // script run through redis-cli.
    redisDump() {
      const script = `
        local out = {}
        for _, k in ipairs(redis.call('KEYS', '*')) do
          table.insert(out, k)
          local t = redis.call('TYPE', k).ok
          local v = {}
          if t == 'string' then v = {redis.call('GET', k)}
          elseif t == 'hash' then v = redis.call('HGETALL', k)
          elseif t == 'list' then v = redis.call('LRANGE', k, 0, -1)
          elseif t == 'set' then v = redis.call('SMEMBERS', k)
          elseif t == 'zset' then v = redis.call('ZRANGE', k, 0, -1)
          elseif t == 'stream' then
            for _, e in ipairs(redis.call('XRANGE', k, '-', '+')) do
              for _, f in ipairs(e[2]) do table.insert(v, f) end
            end
          end
          for _, x in ipairs(v) do table.insert(out, x) end
        end
        return table.concat(out, '\\n')`;
      const r = spawnSync('redis-cli', ['-p', String(redisPort), '--no-raw', 'EVAL', script, '0'], { encoding: 'utf8', maxBuffer: 256 << 20 });
      if (r.status !== 0) throw new Error('redis-cli: ' + r.stderr);
      const keys = spawnSync('redis-cli', ['-p', String(redisPort), '--scan'], { encoding: 'utf8', maxBuffer: 64 << 20 });
      return keys.stdout + '\n' + r.stdout;
    },
    logs,
    stop,
  };
  try {
    await until('the API', async () => (await fetch(base + '/healthz')).ok);
    await until('the node to report in', async () => {
      const nl = await stack.v1('/v1/nodes');
      return nl.nodes.length === 1 && nl.nodes[0].healthy;
    });
  } catch (e) {
    const logs = stack.logs();
    await stack.stop();
    throw new Error(e.message + '\n' + logs);
  }
  return stack;
}
