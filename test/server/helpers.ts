/** Shared pieces of the registry server's integration tests: seeding a store, starting servers. */
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { openStore, type Store } from '../../src/store/index.ts';
import { RegistryServer, type RegistryServerOptions } from '../../src/server/index.ts';
import type { BuiltImage } from '../harness/index.ts';

/** Copies every blob of a built image's OCI layout into `store` (streamed, verified by the
 * store's ingest) and names the image `name` (a full reference with a tag). */
export async function seedStore(store: Store, image: BuiltImage, name: string): Promise<void> {
  const dir = join(image.layout, 'blobs', 'sha256');
  for (const hex of await readdir(dir)) {
    const digest = `sha256:${hex}`;
    const size = (await stat(join(dir, hex))).size;
    const ingest = await store.openIngest({ mediaType: 'application/octet-stream', digest, size });
    if (ingest.alreadyPresent) continue;
    for await (const chunk of createReadStream(join(dir, hex))) await ingest.write(chunk as Buffer);
    await ingest.commit();
  }
  await store.setImage(name, { mediaType: image.mediaType, digest: image.digest, size: image.size });
}

/** A server on a free loopback port over a store at `dir` (created). */
export async function startServer(
  dir: string,
  options: Partial<RegistryServerOptions> = {},
): Promise<{ server: RegistryServer; store: Store; host: string }> {
  const store = options.store ?? (await openStore(dir));
  const server = await RegistryServer.start({ port: 0, ...options, store });
  return { server, store, host: `127.0.0.1:${server.port}` };
}
