import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { digestOf } from '../digest/index.ts';
import { openStore } from '../store/index.ts';
import { IndexView } from './view.ts';

const descriptor = {
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: digestOf(Buffer.from('x')),
  size: 1,
};

describe('IndexView', () => {
  for (const watch of [true, false]) {
    test(`sees a tag another store object adds or removes (${watch ? 'watching' : 'stat each time'})`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'kimg-view-'));
      const view = new IndexView(await openStore(dir), { watch });
      try {
        assert.equal((await view.snapshot()).repositories.size, 0);
        const other = await openStore(dir);
        await other.setImage('docker.io/library/app:1', descriptor);
        // A request follows the write through the event loop, as one over HTTP would.
        await new Promise((resolve) => setImmediate(resolve));
        const tags = (await view.snapshot()).repositories.get('docker.io/library/app')?.tags;
        assert.equal(tags?.get('1')?.digest, descriptor.digest);
        await other.removeImage('docker.io/library/app:1');
        await new Promise((resolve) => setImmediate(resolve));
        assert.equal((await view.snapshot()).repositories.size, 0);
      } finally {
        view.close();
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});
