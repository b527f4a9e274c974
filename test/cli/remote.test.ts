// Remote look-ups without pulling, against a real Distribution registry behind a recording proxy:
// `kimg tags` (pages followed through `Link`, bounded), `kimg manifest` (the exact bytes, or
// JSON; a platform's manifest), `kimg config`, `kimg resolve --platform` and `kimg resolve -`.
// Nothing is written to disk: no store is created. The registry client's `listTags` is driven
// directly for paging and hostile answers.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { main } from '../../src/cli/index.ts';
import { RegistryClient } from '../../src/registry/index.ts';
import {
  buildImage,
  fault,
  makeTempDir,
  pushImage,
  requireTools,
  startFaultProxy,
  startRegistry,
  type BuiltImage,
  type FaultProxy,
  type RunningRegistry,
  type TempDir,
} from '../harness/index.ts';
import { seedStore, startServer } from '../server/helpers.ts';
import { runCli, type CliResult } from './run-cli.ts';

const skip = requireTools(['docker-registry', 'skopeo']);

describe('kimg tags, manifest, config, resolve: remote look-ups', { skip }, () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let tmp: TempDir;
  let app: BuiltImage;
  let multi: BuiltImage;
  const ref = (repoTag: string) => `${proxy.host}/${repoTag}`;
  const env = () => ({
    HOME: tmp.path,
    XDG_DATA_HOME: join(tmp.path, 'xdg-data'),
    KIMG_STORE: '',
    DOCKER_CONFIG: join(tmp.path, 'no-docker-config'),
    REGISTRY_AUTH_FILE: join(tmp.path, 'no-auth.json'),
    XDG_RUNTIME_DIR: tmp.path,
  });
  const kimg = async (args: readonly string[], stdin = ''): Promise<CliResult & { bytes: Buffer }> => {
    const [stdout, stderr] = [new PassThrough(), new PassThrough()];
    const out: Buffer[] = [];
    const err: string[] = [];
    stdout.on('data', (b: Buffer) => out.push(Buffer.from(b)));
    stderr.setEncoding('utf8').on('data', (s: string) => err.push(s));
    const status = await main(args, {
      stdout,
      stderr,
      stdin: Readable.from([stdin]),
      env: { ...process.env, ...env() },
    });
    const bytes = Buffer.concat(out);
    return { status, stdout: bytes.toString('utf8'), stderr: err.join(''), bytes };
  };
  const tags = ['1.0', '1.1', '2.0', 'latest', 'v3'];

  before(async () => {
    tmp = await makeTempDir('kimg-cli-remote-');
    registry = await startRegistry();
    proxy = await startFaultProxy({ upstream: registry.url });
    [app, multi] = await Promise.all([
      buildImage({ layers: [2_000], seed: 'remote-app' }),
      buildImage({ layers: [3_000], platforms: ['linux/amd64', 'linux/arm64/v8'], seed: 'remote-multi' }),
    ]);
    for (const tag of tags) await pushImage(app, registry, `remote/app:${tag}`);
    await pushImage(multi, registry, 'remote/multi:v1');
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    await Promise.all([app?.remove(), multi?.remove()]);
    await tmp?.remove();
  });

  test('tags lists every tag, one per line, and creates no store', async () => {
    const { status, stdout, stderr } = await kimg(['tags', ref('remote/app')]);
    assert.equal(status, 0, stderr);
    // In the registry's order (Distribution 2.8 lists its storage order, not sorted).
    assert.deepEqual(stdout.trimEnd().split('\n').sort(), tags);
    assert.equal(existsSync(join(tmp.path, 'xdg-data')), false, 'a store was created');
  });

  test('tags -o json is one object; --limit cuts the list and says so on stderr', async () => {
    const json = await kimg(['tags', '-o', 'json', ref('remote/app')]);
    assert.equal(json.status, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { name: string; tags: string[]; truncated: boolean };
    assert.deepEqual({ ...parsed, tags: [...parsed.tags].sort() }, { name: ref('remote/app'), tags, truncated: false });
    const cut = await kimg(['tags', '--limit', '2', ref('remote/app')]);
    assert.equal(cut.status, 0, cut.stderr);
    assert.deepEqual(cut.stdout.trimEnd().split('\n'), parsed.tags.slice(0, 2));
    assert.match(cut.stderr, /listed the first 2 tags; the registry has more/);
  });

  test('tags refuses a tagged reference and names an unknown repository', async () => {
    const tagged = await kimg(['tags', ref('remote/app:1.0')]);
    assert.equal(tagged.status, 2);
    assert.match(tagged.stderr, /takes a repository, not an image.*\(ErrUsage\)/);
    const limit = await kimg(['tags', '--limit', '0', ref('remote/app')]);
    assert.equal(limit.status, 2);
    assert.match(limit.stderr, /--limit must be a whole number of at least 1/);
    const unknown = await kimg(['tags', ref('remote/nothing-here')]);
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /remote\/nothing-here/);
    assert.match(unknown.stderr, /ErrNameUnknown/);
  });

  test('listTags follows Link pages of the requested size, in order, and stops at its bounds', async () => {
    // Distribution 2.8 ignores `n` and `last` on tags/list (paging came with 3.0): the proxy pages
    // the real answer as Distribution 3 and Docker Hub do, `Link: <…?n=2&last=…>; rel="next"`.
    proxy.reset();
    proxy.setRule((r) => {
      if (!r.path.endsWith('/tags/list')) return undefined;
      const n = Number(r.query.get('n') ?? 1000);
      const last = r.query.get('last');
      const from = last === null ? 0 : tags.indexOf(last) + 1;
      const page = tags.slice(from, from + n);
      const faults = [fault.replaceBody(JSON.stringify({ name: 'remote/app', tags: page }))];
      if (from + n < tags.length)
        faults.push(fault.forgeHeader('link', `</v2/remote/app/tags/list?n=${n}&last=${page.at(-1)}>; rel="next"`));
      return faults;
    });
    const client = new RegistryClient({ endpoints: () => [{ baseUrl: proxy.url, insecure: true }] });
    try {
      const list = await client.listTags(`${proxy.host}/remote/app`, { pageSize: 2 });
      assert.deepEqual(list.tags, tags);
      assert.equal(list.pages, 3);
      assert.equal(list.truncated, false);
      const pages = proxy.requests.filter((r) => r.path.endsWith('/tags/list'));
      assert.equal(pages.length, 3);
      assert.ok(pages.every((r) => r.url.includes('n=2')));
      const bounded = await client.listTags(`${proxy.host}/remote/app`, { pageSize: 2, maxPages: 2 });
      assert.deepEqual(bounded.tags, tags.slice(0, 4));
      assert.equal(bounded.truncated, true);
      const few = await client.listTags(`${proxy.host}/remote/app`, { pageSize: 2, maxTags: 3 });
      assert.deepEqual(few.tags, tags.slice(0, 3));
      assert.equal(few.truncated, true);
    } finally {
      proxy.reset();
      await client.close();
    }
  });

  test("next pages keep a mirror endpoint's ns= that the registry's Link dropped, for tags and referrers", async () => {
    const subject = `sha256:${'a'.repeat(64)}`;
    const referrer = (i: number) => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: `sha256:${String(i).repeat(64)}`,
      size: 100 + i,
      artifactType: 'application/example',
    });
    proxy.reset();
    proxy.setRule((r) => {
      const second = r.query.has('last');
      if (r.path.endsWith('/tags/list')) {
        const page = second ? tags.slice(2) : tags.slice(0, 2);
        const faults = [fault.replaceBody(JSON.stringify({ name: 'remote/app', tags: page }))];
        if (!second)
          faults.push(fault.forgeHeader('link', `</v2/remote/app/tags/list?n=2&last=${page[1]}>; rel="next"`));
        return faults;
      }
      if (r.path.endsWith(`/referrers/${subject}`)) {
        const index = {
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: [referrer(second ? 2 : 1)],
        };
        return fault.status(
          200,
          {
            'content-type': 'application/vnd.oci.image.index.v1+json',
            ...(!second && { link: `</v2/remote/app/referrers/${subject}?last=x>; rel="next"` }),
          },
          JSON.stringify(index),
        );
      }
      return undefined;
    });
    const client = new RegistryClient({
      endpoints: () => [{ baseUrl: proxy.url, insecure: true, query: { ns: 'docker.io' } }],
    });
    try {
      const list = await client.listTags(`${proxy.host}/remote/app`, { pageSize: 2 });
      assert.deepEqual(list.tags, tags);
      const referrers = await client.listReferrers(`${proxy.host}/remote/app`, subject);
      assert.deepEqual(
        referrers.manifests.map((m) => m.digest),
        [referrer(1).digest, referrer(2).digest],
      );
      const pages = proxy.requests.filter((r) => r.path.endsWith('/tags/list') || r.path.includes('/referrers/'));
      assert.equal(pages.length, 4);
      for (const page of pages) assert.match(page.url, /[?&]ns=docker\.io(&|$)/, page.url);
    } finally {
      proxy.reset();
      await client.close();
    }
  });

  test("listTags pages through kimg's own registry server, which sends real Link headers", async () => {
    const { server, store, host } = await startServer(join(tmp.path, 'served-store'));
    const client = new RegistryClient({ endpoints: () => [{ baseUrl: `http://${host}`, insecure: true }] });
    try {
      const many = Array.from({ length: 7 }, (_, i) => `t${i}`);
      for (const tag of many) await seedStore(store, app, `docker.io/library/paged:${tag}`);
      const list = await client.listTags(`${host}/library/paged`, { pageSize: 3 });
      assert.deepEqual(list.tags, many);
      assert.equal(list.pages, 3);
      assert.equal(list.truncated, false);
      // The CLI's first page holds them all.
      const cli = await kimg(['tags', `${host}/library/paged`]);
      assert.equal(cli.status, 0, cli.stderr);
      assert.deepEqual(cli.stdout.trimEnd().split('\n'), many);
    } finally {
      await client.close();
      await server.close();
    }
  });

  test('listTags refuses a next link to another origin, invalid tags and an oversized page', async () => {
    const client = new RegistryClient({
      endpoints: () => [{ baseUrl: proxy.url, insecure: true }],
      retry: { maxAttempts: 1 },
    });
    try {
      proxy.setRule((r) =>
        r.path.endsWith('/tags/list')
          ? fault.forgeHeader('link', '<https://elsewhere.example/v2/remote/app/tags/list?last=1.1>; rel="next"')
          : undefined,
      );
      await assert.rejects(client.listTags(`${proxy.host}/remote/app`, { pageSize: 2 }), /away from its tag list/);
      proxy.setRule((r) =>
        r.path.endsWith('/tags/list')
          ? fault.replaceBody(JSON.stringify({ name: 'remote/app', tags: ['ok', '../../etc'] }))
          : undefined,
      );
      await assert.rejects(client.listTags(`${proxy.host}/remote/app`), /invalid tag "..\/..\/etc"/);
      proxy.setRule((r) =>
        r.path.endsWith('/tags/list')
          ? fault.replaceBody(JSON.stringify({ tags: Array.from({ length: 5000 }, (_, i) => `t${i}`) }))
          : undefined,
      );
      await assert.rejects(
        client.listTags(`${proxy.host}/remote/app`, { maxPageBytes: 1024 }),
        (err: Error & { code?: string }) => err.code === 'ErrBodyTooLarge',
      );
      // A registry that sends the same page forever with a next link: stops after one page.
      proxy.reset();
      proxy.setRule((r) =>
        r.path.endsWith('/tags/list')
          ? [
              fault.replaceBody(JSON.stringify({ tags: ['a', 'b'] })),
              fault.forgeHeader('link', '</v2/remote/app/tags/list?n=2&last=b>; rel="next"'),
            ]
          : undefined,
      );
      const looped = await client.listTags(`${proxy.host}/remote/app`, { pageSize: 2 });
      assert.deepEqual(looped.tags, ['a', 'b']);
      assert.equal(proxy.requests.filter((r) => r.path.endsWith('/tags/list')).length, 2);
    } finally {
      proxy.reset();
      await client.close();
    }
  });

  test('manifest prints the exact bytes the registry serves, nothing added', async () => {
    const { status, bytes, stderr } = await kimg(['manifest', ref('remote/multi:v1')]);
    assert.equal(status, 0, stderr);
    assert.deepEqual(bytes, await readFile(multi.blobPath(multi.digest)));
    // The same, through a real process and pipe.
    const child = await runCli(['manifest', ref('remote/app:1.0')], { env: env() });
    assert.equal(child.status, 0, child.stderr);
    assert.equal(child.stdout, (await readFile(app.blobPath(app.digest))).toString('utf8'));
  });

  test("manifest --platform prints that platform's manifest; -o json wraps it with its descriptor", async () => {
    const arm = multi.images.find((i) => i.platformString === 'linux/arm64/v8');
    assert.ok(arm);
    const raw = await kimg(['manifest', '--platform', 'linux/arm64', ref('remote/multi:v1')]);
    assert.equal(raw.status, 0, raw.stderr);
    assert.deepEqual(raw.bytes, await readFile(multi.blobPath(arm.manifest.digest)));
    const json = await kimg(['manifest', '-o', 'json', '--platform', 'linux/arm64', ref('remote/multi:v1')]);
    assert.equal(json.status, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as Record<string, unknown>;
    assert.equal(parsed.digest, arm.manifest.digest);
    assert.equal(parsed.size, arm.manifest.size);
    assert.equal(parsed.platform, 'linux/arm64/v8');
    assert.deepEqual(parsed.manifest, JSON.parse((await readFile(multi.blobPath(arm.manifest.digest))).toString()));
    const yaml = await kimg(['manifest', '-o', 'yaml', '--platform', 'linux/arm64', ref('remote/multi:v1')]);
    assert.equal(yaml.status, 0, yaml.stderr);
    assert.match(yaml.stdout, new RegExp(`^digest: "?${arm.manifest.digest}"?$`, 'm'));
    const bad = await kimg(['manifest', '-o', 'xml', ref('remote/multi:v1')]);
    assert.equal(bad.status, 2);
    const missing = await kimg(['manifest', '--platform', 'linux/s390x', ref('remote/multi:v1')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /no manifest for platform linux\/s390x .*available: linux\/amd64, linux\/arm64\/v8/);
  });

  test('config prints the config blob byte for byte, for the asked platform', async () => {
    const amd = multi.images.find((i) => i.platformString === 'linux/amd64');
    assert.ok(amd);
    const raw = await kimg(['config', '--platform', 'linux/amd64', ref('remote/multi:v1')]);
    assert.equal(raw.status, 0, raw.stderr);
    assert.deepEqual(raw.bytes, await readFile(multi.blobPath(amd.config.digest)));
    const json = await kimg(['config', '-o', 'json', ref('remote/app:2.0')]);
    assert.equal(json.status, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { digest: string; manifest: string; config: { os: string } };
    assert.equal(parsed.digest, app.images[0]?.config.digest);
    assert.equal(parsed.manifest, app.digest);
    assert.equal(typeof parsed.config.os, 'string');
  });

  test('config refuses a config blob whose bytes do not match its digest', async () => {
    const config = app.images[0]?.config;
    assert.ok(config);
    proxy.setRule((r) => (r.path.endsWith(`/blobs/${config.digest}`) ? fault.flipByte(5) : undefined));
    try {
      const { status, stdout, stderr } = await kimg(['config', ref('remote/app:2.0')]);
      assert.equal(status, 1);
      assert.equal(stdout, '');
      assert.match(stderr, /ErrDigestMismatch/);
    } finally {
      proxy.reset();
    }
  });

  test('resolve --platform prints the digest of that platform manifest; -o json names the index too', async () => {
    const arm = multi.images.find((i) => i.platformString === 'linux/arm64/v8');
    assert.ok(arm);
    const text = await kimg(['resolve', '--platform', 'linux/arm64/v8', ref('remote/multi:v1')]);
    assert.equal(text.status, 0, text.stderr);
    assert.equal(text.stdout, `${ref('remote/multi:v1')}@${arm.manifest.digest}\n`);
    const json = await kimg(['resolve', '-o', 'json', '--platform', 'linux/arm64', ref('remote/multi:v1')]);
    const parsed = JSON.parse(json.stdout) as Record<string, unknown>;
    assert.equal(parsed.digest, arm.manifest.digest);
    assert.equal(parsed.platform, 'linux/arm64/v8');
    assert.deepEqual(parsed.index, { digest: multi.digest, mediaType: multi.mediaType, size: multi.size });
  });

  test('resolve - reads references from stdin and answers in input order; failures exit 1 and keep lines aligned', async () => {
    const input = [ref('remote/app:1.0'), ref('remote/multi:v1'), ref('remote/app:nope'), ref('remote/app:v3')];
    const text = await kimg(['resolve', '-'], `${input.join('\n')}\n# a comment\n`);
    assert.equal(text.status, 1);
    assert.deepEqual(text.stdout.trimEnd().split('\n'), [
      `${input[0]}@${app.digest}`,
      `${input[1]}@${multi.digest}`,
      `${input[3]}@${app.digest}`,
    ]);
    assert.match(text.stderr, /remote\/app:nope/);
    const json = await kimg(['resolve', '-o', 'json', '-'], input.join('\n'));
    // One line per input, in order: an answer names the image, a failure the input.
    const lines = json.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { name?: string; input?: string; digest?: string; error?: { code: string } });
    assert.deepEqual(
      lines.map((l) => l.name ?? l.input),
      input,
    );
    assert.equal(lines[2]?.error?.code, 'ErrManifestUnknown');
    assert.equal(lines[3]?.digest, app.digest);
  });
});
