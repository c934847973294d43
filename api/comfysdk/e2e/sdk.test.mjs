// The official Comfy TypeScript SDK, unchanged from npm, against comfyq: every call
// goes through the SDK's public API with COMFY_BASE_URL pointing at the stack.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startStack, repoRoot } from './stack.mjs';

let stack;
let sdk;
let client;

const txt2img = () => JSON.parse(readFileSync(join(repoRoot, 'cmd/comfyq/examples/txt2img.json'), 'utf8'));

before(async () => {
  stack = await startStack();
  // The SDK reads its target from the environment when a client is made.
  process.env.COMFY_BASE_URL = stack.base;
  sdk = await import('@comfyorg/sdk');
  client = new sdk.Comfy({ apiKey: stack.userKey });
});

after(async () => {
  if (stack) await stack.stop();
});

// withLogs adds the stack's logs to a failure.
async function withLogs(fn) {
  try {
    await fn();
  } catch (e) {
    e.message += '\n' + stack.logs();
    throw e;
  }
}

let firstOutput; // the PNG of the first job, the input of a later one

test('run a workflow, download the output whole and by range, rehydrate the job by id', () => withLogs(async () => {
  const job = await client.run(client.workflows.fromJson(txt2img()));
  assert.equal(job.status, 'succeeded');
  const outs = job.getOutputs('9');
  assert.equal(outs.length, 1);
  assert.equal(outs[0].type, 'image');
  assert.equal(outs[0].contentType, 'image/png');

  const whole = await outs[0].toBytes();
  assert.equal(whole.length, Number(outs[0].sizeBytes));
  assert.deepEqual([...whole.subarray(1, 4)].map((c) => String.fromCharCode(c)).join(''), 'PNG');
  const part = await outs[0].toBytes({ range: [8, 39] });
  assert.deepEqual(Buffer.from(part), Buffer.from(whole.subarray(8, 40)), 'the range is those bytes of the whole');
  firstOutput = whole;

  const again = await client.jobs.get(job.id);
  assert.equal(again.id, job.id);
  assert.equal(again.status, 'succeeded');
  assert.equal(again.outputs[0].id, outs[0].id, 'the output is the same asset');

  // The same job through comfyq's own /v1.
  const v1 = await stack.v1('/v1/jobs/' + job.id);
  assert.equal(v1.status, 'succeeded');
  assert.equal(v1.outputs.length, 1);
}));

test('upload an asset into a LoadImage and download what the job made of it', () => withLogs(async () => {
  assert.ok(firstOutput, 'the first test made an image');
  const wf = client.workflows.fromJson({
    1: { class_type: 'LoadImage', inputs: { image: 'placeholder.png' } },
    2: { class_type: 'ImageInvert', inputs: { image: ['1', 0] } },
    3: { class_type: 'SaveImage', inputs: { images: ['2', 0], filename_prefix: 'sdk-inv' } },
  });
  const asset = client.assets.fromBytes(firstOutput, { filename: 'fox.png', contentType: 'image/png' });
  wf.setInput('1', 'image', asset);
  const job = await client.run(wf);
  assert.equal(job.status, 'succeeded');
  assert.ok(asset.id, 'the SDK uploaded the asset');
  assert.equal(asset.createdNew, true);
  const out = job.getOutputs('3')[0];
  const bytes = await out.toBytes();
  assert.ok(bytes.length > 0);

  // The same bytes again: deduplicated onto the stored blob.
  const twin = client.assets.fromBytes(firstOutput, { filename: 'fox-again.png', contentType: 'image/png' });
  await twin.commit();
  assert.notEqual(twin.id, asset.id);
  const fetched = await client.assets.get(twin.id);
  assert.equal(await fetched.hash(), await asset.hash(), 'one blob, two assets');
}));

test('iterate live events to the terminal status', () => withLogs(async () => {
  const wf = txt2img();
  wf['3'].inputs.seed = 1234; // not the first test's prompt: the node samples again (and previews)
  const job = await client.submit(client.workflows.fromJson(wf));
  const kinds = [];
  let last;
  for await (const ev of job.events()) {
    kinds.push(ev.kind);
    last = ev;
    if (ev.kind === 'preview') {
      assert.equal(ev.contentType, 'image/jpeg');
      assert.deepEqual([...ev.data.subarray(0, 2)], [0xff, 0xd8], 'a JPEG');
    }
  }
  assert.equal(kinds[0], 'statusChange', 'the stream starts with the status');
  assert.equal(last.kind, 'statusChange');
  assert.equal(last.status, 'succeeded');
  assert.ok(kinds.includes('progress'), 'progress: ' + kinds.join(' '));
  assert.ok(kinds.includes('outputReady'), 'output: ' + kinds.join(' '));
  assert.ok(kinds.includes('preview'), 'preview: ' + kinds.join(' '));
}));

test('cancel a running job', () => withLogs(async () => {
  const wf = txt2img();
  wf['3'].inputs.steps = 400; // 16 s on the simulator: long enough to cancel
  const job = await client.submit(client.workflows.fromJson(wf));
  for await (const ev of job.events()) {
    if (ev.kind === 'statusChange' && ev.status === 'running') break;
  }
  await job.cancel();
  assert.ok(['canceling', 'canceled'].includes(job.status), job.status);
  await job.cancel(); // idempotent
  await job.wait();
  assert.equal(job.status, 'canceled');
  await assert.rejects(job.result(), sdk.JobFailed);
}));

test('a bad graph is a typed InvalidWorkflow with per-node details', () => withLogs(async () => {
  const bad = client.workflows.fromJson({
    1: { class_type: 'SaveImage', inputs: { images: ['7', 0], filename_prefix: 'x' } },
    2: { class_type: 'NoSuchNode', inputs: {} },
  });
  await assert.rejects(client.submit(bad), (e) => {
    assert.ok(e instanceof sdk.InvalidWorkflow, `an InvalidWorkflow, not ${e.constructor.name}: ${e.message}`);
    assert.equal(e.code, 'invalid_workflow');
    assert.ok(e.details.node_errors['1'] && e.details.node_errors['2'], JSON.stringify(e.details));
    return true;
  });
}));

test('an idempotent submit returns the same job', () => withLogs(async () => {
  const key = 'sdk-' + randomBytes(8).toString('hex');
  const wf = client.workflows.fromJson(txt2img());
  const a = await client.submit(wf, { idempotencyKey: key });
  const b = await client.submit(wf, { idempotencyKey: key });
  assert.equal(b.id, a.id);
  const other = txt2img();
  other['3'].inputs.seed = 7;
  await assert.rejects(client.submit(client.workflows.fromJson(other), { idempotencyKey: key }), sdk.IdempotencyKeyReuse);
  await a.wait();
}));

// That the key reaches the node's extra_data is checked by the Go test TestV2JobLifecycle
// (a proxy records the prompts the node receives).
test('a partner-node key is nowhere in Redis, the logs or a response', () => withLogs(async () => {
  const partnerKey = 'comfyui-partner-' + randomBytes(16).toString('hex');
  const job = await client.submit(client.workflows.fromJson(txt2img()), { apiKey: partnerKey });
  await job.wait();
  assert.equal(job.status, 'succeeded');
  assert.ok(!JSON.stringify(job.outputs).includes(partnerKey));
  const dump = stack.redisDump();
  assert.ok(dump.includes(job.id), 'the dump holds the job');
  assert.ok(!dump.includes(partnerKey), 'the partner key is in Redis');
  assert.ok(!stack.logs(true).includes(partnerKey), 'the partner key is in a log');
}));

test('every answer parses with the SDK\'s own schemas of the contract', () => withLogs(async () => {
  const { ComfyLow, schemas } = await import('@comfyorg/sdk/low');
  const low = new ComfyLow(stack.base, stack.userKey);
  const created = await low.postJobs(txt2img(), { idempotencyKey: 'schemas-' + randomBytes(6).toString('hex') });
  schemas.zJob.parse(created);
  let job = created;
  while (!['succeeded', 'failed', 'canceled'].includes(job.status)) {
    job = await low.getJob(job.urls.self);
    schemas.zJob.parse(job);
  }
  assert.equal(job.status, 'succeeded');
  assert.ok(job.metrics.execution_ms >= 0);
  for (const o of job.outputs) schemas.zOutput.parse(o);
  schemas.zAsset.parse(await low.getAsset(job.outputs[0].id));
  schemas.zJobWorkflowResponse.parse(await low.getJobWorkflow(job.id));
  schemas.zJob.parse(await low.cancelJob(job.urls.cancel));
  const asset = await low.postAssets(new Blob([randomBytes(64)]), 'application/octet-stream', 'noise.bin');
  schemas.zAsset.parse(asset);
  schemas.zAsset.parse(await low.assetFromHash(asset.hash, { filePath: 'noise-again.bin' }));
  assert.equal(await low.headAssetByHash(asset.hash), true);
  await low.deleteAsset(asset.id);
  const r = await low.request('GET', '/jobs/' + '0190a5a4-0000-7000-8000-000000000000');
  assert.equal(r.status, 404);
  schemas.zErrorEnvelope.parse(await r.json());
  // A finished job's stream: its last progress, then the terminal status, then the end.
  const frames = [];
  for await (const ev of low.getJobEvents(job.urls.events)) frames.push(ev);
  assert.deepEqual(frames.map((f) => f.event), ['progress', 'status']);
  schemas.zProgress.parse(frames[0].data);
  assert.equal(frames[1].data.status, 'succeeded');
}));
