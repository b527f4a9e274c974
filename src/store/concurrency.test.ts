import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { isKimgError } from '../errors/index.ts';
import { openStore } from './index.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const storeModule = fileURLToPath(new URL('./index.ts', import.meta.url));

/** Deterministic content both processes can produce: block i is sha256(seed, i) repeated. */
const CHILD_PRELUDE = `
const { createHash } = await import('node:crypto');
const { openStore } = await import(${JSON.stringify(storeModule)});
function block(seed, i) {
  const h = createHash('sha256').update(seed + ':' + i).digest();
  return Buffer.concat(Array(2048).fill(h)); // 64 KiB
}
function blobDigest(seed, blocks) {
  const h = createHash('sha256');
  for (let i = 0; i < blocks; i++) h.update(block(seed, i));
  return 'sha256:' + h.digest('hex');
}
const env = process.env;
`;

function runChild(code: string, env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD_PRELUDE + code], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function finished(
  child: ChildProcess,
): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolvePromise) =>
    child.on('close', (code, signal) => resolvePromise({ code, signal, stdout, stderr })),
  );
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    let buffered = '';
    const onData = (c: Buffer): void => {
      buffered += c.toString();
      const newline = buffered.indexOf('\n');
      if (newline !== -1) {
        child.stdout?.off('data', onData);
        resolvePromise(buffered.slice(0, newline));
      }
    };
    child.stdout?.on('data', onData);
    child.on('close', (code) => reject(new Error(`child exited (${code}) before writing a line`)));
  });
}

function blockOf(seed: string, i: number): Buffer {
  const h = createHash('sha256').update(`${seed}:${i}`).digest();
  return Buffer.concat(Array<Buffer>(2048).fill(h));
}

function digestOfBlocks(seed: string, blocks: number): string {
  const h = createHash('sha256');
  for (let i = 0; i < blocks; i++) h.update(blockOf(seed, i));
  return `sha256:${h.digest('hex')}`;
}

describe('two processes sharing one store (R5)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kimg-store-procs-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('pulling the same image concurrently: both succeed, the blob is written once, index.json stays valid', async () => {
    const root = join(dir, 'race');
    const startAt = String(Date.now() + 2500);
    const code = `
      const store = await openStore(env.STORE);
      while (Date.now() < Number(env.START_AT)) await new Promise((r) => setTimeout(r, 1));
      const blocks = 256; // 16 MiB
      const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: blobDigest('layer', blocks), size: blocks * 65536 };
      const ingest = await store.openIngest(layer, { source: 'child ' + env.ID });
      let inode;
      if (!ingest.alreadyPresent) {
        for (let i = ingest.offset / 65536; i < blocks; i++) {
          await ingest.write(block('layer', i));
          if (i % 16 === 0) await new Promise((r) => setImmediate(r));
        }
        await ingest.commit();
        inode = (await import('node:fs')).statSync(store.blobPath(layer.digest)).ino;
      }
      const configBytes = Buffer.from('{"rootfs":{"type":"layers","diff_ids":[]}}');
      const config = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: 'sha256:' + createHash('sha256').update(configBytes).digest('hex'), size: configBytes.length };
      await store.putBlob(config, configBytes);
      const manifestBytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [layer] }));
      const manifest = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:' + createHash('sha256').update(manifestBytes).digest('hex'), size: manifestBytes.length };
      await store.putBlob(manifest, manifestBytes);
      await store.setImage('docker.io/library/race:1', manifest);
      for (let i = 0; i < 15; i++) await store.setImage('docker.io/library/race:' + env.ID + '-' + i, manifest);
      console.log(JSON.stringify({ committed: !ingest.alreadyPresent, inode }));
    `;
    const children = ['a', 'b'].map((id) => finished(runChild(code, { STORE: root, START_AT: startAt, ID: id })));
    const results = await Promise.all(children);
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const outputs = results.map((r) => JSON.parse(r.stdout.trim()) as { committed: boolean; inode?: number });
    const committers = outputs.filter((o) => o.committed);
    assert.equal(committers.length, 1, `exactly one process wrote the layer: ${JSON.stringify(outputs)}`);

    const store = await openStore(root, { create: false });
    const layerDigest = digestOfBlocks('layer', 256);
    assert.equal(
      (await stat(store.blobPath(layerDigest))).ino,
      committers[0]?.inode,
      'the blob was not replaced by the second process',
    );
    const index = JSON.parse(await readFile(join(root, 'index.json'), 'utf8')) as {
      manifests: { annotations: Record<string, string> }[];
    };
    const names = index.manifests.map((m) => m.annotations['io.containerd.image.name']);
    assert.equal(names.length, 31, 'one entry per reference, no lost update');
    assert.equal(new Set(names).size, 31);
    assert.equal((await store.fsck()).ok, true);
    assert.deepEqual(
      (await readdir(join(root, 'ingest'))).filter((n) => !n.startsWith('claims-')),
      [],
    );
  });

  it('a download killed with SIGKILL resumes in the next process from where it was', async () => {
    const root = join(dir, 'killed');
    const blocks = 512; // 32 MiB
    const code = `
      const store = await openStore(env.STORE);
      const layer = { mediaType: 'application/octet-stream', digest: blobDigest('big', ${blocks}), size: ${blocks} * 65536 };
      const ingest = await store.openIngest(layer);
      for (let i = 0; i < ${blocks / 2}; i++) await ingest.write(block('big', i));
      console.log('half');
      await new Promise(() => setInterval(() => {}, 1000)); // hang until killed
    `;
    const child = runChild(code, { STORE: root });
    const done = finished(child);
    assert.equal(await firstLine(child), 'half');
    child.kill('SIGKILL');
    assert.equal((await done).signal, 'SIGKILL');

    const store = await openStore(root);
    const descriptor = {
      mediaType: 'application/octet-stream',
      digest: digestOfBlocks('big', blocks),
      size: blocks * 65536,
    };
    const ingest = await store.openIngest(descriptor, { timeoutMs: 10_000 }); // the dead process's lock is taken over
    assert.equal(ingest.resumed, true);
    // At most the two unflushed write buffers (2 MiB) are lost.
    assert.ok(ingest.offset >= (blocks / 2) * 65536 - 2 * 1024 * 1024, `offset ${ingest.offset}`);
    assert.equal(ingest.offset % 65536, 0);
    for (let i = ingest.offset / 65536; i < blocks; i++) await ingest.write(blockOf('big', i));
    await ingest.commit();
    assert.equal(await store.hasBlob(descriptor.digest), true);
    assert.equal((await store.fsck()).ok, true);
  });

  it('index.json updates wait for a live holder (ErrStoreLocked on timeout) and take over a dead one', async () => {
    const root = join(dir, 'locked');
    const store = await openStore(root, { lockTimeoutMs: 300 });
    const manifest = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: digestOfBlocks('m', 1),
      size: 65536,
    };
    const child = runChild(
      `
      const store = await openStore(env.STORE);
      await store.lock(async () => {
        console.log('locked');
        await new Promise(() => setInterval(() => {}, 1000));
      });
    `,
      { STORE: root },
    );
    const done = finished(child);
    assert.equal(await firstLine(child), 'locked');
    await assert.rejects(store.setImage('docker.io/library/x:1', manifest), (err: unknown) => {
      assert.ok(isKimgError(err, 'ErrStoreLocked'));
      assert.ok(err.message.includes(root));
      assert.equal((err as { holderPid?: number }).holderPid, child.pid);
      return true;
    });
    child.kill('SIGKILL');
    await done;
    await store.setImage('docker.io/library/x:1', manifest);
    assert.equal((await store.getImage('docker.io/library/x:1'))?.descriptor.digest, manifest.digest);
  });

  it('an ingest waiting on another process returns alreadyPresent once that process commits', async () => {
    const root = join(dir, 'wait');
    const blocks = 64;
    const descriptor = {
      mediaType: 'application/octet-stream',
      digest: digestOfBlocks('w', blocks),
      size: blocks * 65536,
    };
    const child = runChild(
      `
      const store = await openStore(env.STORE);
      const layer = { mediaType: 'application/octet-stream', digest: blobDigest('w', ${blocks}), size: ${blocks} * 65536 };
      const ingest = await store.openIngest(layer);
      console.log('open');
      await new Promise((r) => setTimeout(r, 300));
      for (let i = 0; i < ${blocks}; i++) await ingest.write(block('w', i));
      await ingest.commit();
    `,
      { STORE: root },
    );
    const done = finished(child);
    assert.equal(await firstLine(child), 'open');
    const store = await openStore(root);
    const ingest = await store.openIngest(descriptor, { timeoutMs: 20_000 });
    assert.equal(ingest.alreadyPresent, true);
    assert.equal((await done).code, 0);
  });
});
