// Shared by the browser tests (api/console/e2e) and the Comfy SDK tests
// (api/comfysdk/e2e): the comfyq binary, free loopback ports, waiting, and the
// stack's processes with their logs. Node's standard library only.
import { spawn, spawnSync } from 'node:child_process';
import { rmSync, readFileSync, openSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => res(port)); });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function until(what, fn, ms = 30000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try { if (await fn()) return; } catch (e) { last = e; }
    await sleep(100);
  }
  throw new Error('timed out waiting for ' + what + (last ? ': ' + last.message : ''));
}

// comfyqBinary returns COMFYQ_BIN, or builds ./cmd/comfyq into dir.
export function comfyqBinary(dir) {
  if (process.env.COMFYQ_BIN) return process.env.COMFYQ_BIN;
  const bin = join(dir, 'comfyq');
  const b = spawnSync('go', ['build', '-o', bin, './cmd/comfyq'], { cwd: repoRoot, stdio: 'inherit' });
  if (b.status !== 0) throw new Error('go build ./cmd/comfyq failed');
  return bin;
}

// processes runs a stack's processes, each logging to dir/NAME.log; stop ends them
// (Redis last, so that none logs a lost Redis) and removes dir unless COMFYQ_E2E_KEEP.
export function processes(dir) {
  const procs = [];
  return {
    procs,
    run(name, cmd, args, env) {
      const log = openSync(join(dir, name + '.log'), 'a');
      const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', log, log] });
      p.name = name;
      procs.push(p);
      return p;
    },
    // logs is each process's log: its last 30 lines, or all of it.
    logs(all = false) {
      return procs.map((p) => {
        const f = join(dir, p.name + '.log');
        if (!existsSync(f)) return '';
        const text = readFileSync(f, 'utf8');
        return `--- ${p.name}\n` + (all ? text : text.split('\n').slice(-30).join('\n'));
      }).join('\n');
    },
    async stop() {
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
}
