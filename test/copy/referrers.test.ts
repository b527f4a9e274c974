// `kimg copy --referrers` against real registries: Distribution 2.8 (no referrers API: the
// `sha256-<hex>` tag schema) and `kimg registry serve --allow-push` (the referrers API, answering
// `OCI-Subject`) as source and destination; skopeo reads what landed. Hostile referrers answers
// come from the fault proxy in front of a real registry.
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { copyImage, openDestination, openSource, parseTransport, type CopyResult } from '../../src/copy/index.ts';
import { digestOf } from '../../src/digest/index.ts';
import { MediaType, type Descriptor } from '../../src/oci/index.ts';
import { RegistryClient, referrersTag, type RepositoryRef } from '../../src/registry/index.ts';
import { allowPush, type RegistryServer } from '../../src/server/index.ts';
import {
  Containerd,
  buildImage,
  copyImage as skopeoCopy,
  httpRequest,
  inspectRaw,
  makeTempDir,
  pushImage,
  requireTools,
  run,
  startFaultProxy,
  startRegistry,
  type BuiltImage,
  type FaultProxy,
  type RunningRegistry,
  type TempDir,
  which,
} from '../harness/index.ts';
import { runCli } from '../cli/run-cli.ts';
import { startServer } from '../server/helpers.ts';

const skip = requireTools(['docker-registry', 'skopeo']);

describe('kimg copy --referrers', { skip }, () => {
  let a: RunningRegistry;
  let b: RunningRegistry;
  let k: { server: RegistryServer; host: string };
  let proxy: FaultProxy;
  let image: BuiltImage;
  let tmp: TempDir;
  let client: RegistryClient;
  let subject: Descriptor;
  let sig: Descriptor;
  let sbom: Descriptor;
  let sbomSig: Descriptor;
  /** Each artifact's manifest bytes and blobs, to write them into a layout as oras does. */
  const artifacts = new Map<string, { manifest: Buffer; blobs: [Descriptor, Buffer][] }>();

  /** Pushes an artifact whose `subject` is `of` to `host/repo`, keeping the fallback tag when the
   * registry does not answer `OCI-Subject`. */
  async function attach(repo: RepositoryRef, of: Descriptor, artifactType: string, payload: string) {
    const config = Buffer.from('{}');
    const layer = Buffer.from(payload);
    const configD = { mediaType: MediaType.OciEmpty, digest: digestOf(config), size: config.length };
    const layerD = { mediaType: 'application/vnd.example.payload', digest: digestOf(layer), size: layer.length };
    for (const [d, bytes] of [
      [configD, config],
      [layerD, layer],
    ] as const) {
      await client.pushBlob(repo, d, {
        async *open(offset: number) {
          yield bytes.subarray(offset);
        },
      });
    }
    const annotations = { 'org.example.payload': payload };
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        artifactType,
        config: configD,
        layers: [layerD],
        subject: { mediaType: of.mediaType, digest: of.digest, size: of.size },
        annotations,
      }),
    );
    const d: Descriptor = {
      mediaType: MediaType.OciManifest,
      digest: digestOf(manifest),
      size: manifest.length,
      artifactType,
      annotations,
    };
    artifacts.set(d.digest, {
      manifest,
      blobs: [
        [configD, config],
        [layerD, layer],
      ],
    });
    const put = await client.putManifest(repo, d.digest, manifest, d.mediaType);
    if (put.subject === undefined) await client.addToReferrersTag(repo, of.digest, d);
    return d;
  }

  const listed = async (host: string, repo: string, digest: string): Promise<string[]> => {
    const raw = await inspectRaw(`${host}/${repo}:${referrersTag(digest)}`, { tlsVerify: false });
    return (JSON.parse(raw.toString()) as { manifests: Descriptor[] }).manifests.map((m) => m.digest).sort();
  };
  const viaApi = async (host: string, repo: string, digest: string): Promise<string[]> => {
    const res = await httpRequest(`http://${host}/v2/${repo}/referrers/${digest}`);
    assert.equal(res.status, 200, res.body.toString());
    return (JSON.parse(res.body.toString()) as { manifests: Descriptor[] }).manifests.map((m) => m.digest).sort();
  };
  const kimg = (...args: string[]) => runCli([...args, '--store', join(tmp.path, 'store')], { killAfterMs: 120_000 });
  interface CopiedJson {
    upToDate: boolean;
    referrers: { digest: string; subject: string; via: string }[];
  }
  /** `kimg copy [--referrers] SRC DST -o json`, which must succeed. */
  const copyJson = async (src: string, dst: string, referrers = true): Promise<CopiedJson> => {
    const r = await kimg('copy', ...(referrers ? ['--referrers'] : []), src, dst, '-o', 'json');
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as CopiedJson;
  };
  const sorted = (...ds: Descriptor[]) => ds.map((d) => d.digest).sort();

  /** The library's copy, as the CLI wires it, for the hostile cases. */
  async function libraryCopy(src: string, dst: string): Promise<CopyResult> {
    const ctx = { registry: client, store: () => Promise.reject(new Error('no store')) };
    const source = await openSource(parseTransport(src), ctx);
    const destination = await openDestination(parseTransport(dst), ctx);
    try {
      return await copyImage(source, destination, { referrers: true, force: true });
    } finally {
      await destination.close();
      await source.close();
    }
  }

  before(async () => {
    [a, b, image, tmp] = await Promise.all([
      startRegistry(),
      startRegistry(),
      buildImage({ layers: [20_000], platforms: ['linux/amd64', 'linux/arm64'], seed: 'referrers' }),
      makeTempDir('kimg-referrers-test-'),
    ]);
    k = await startServer(join(tmp.path, 'served'), { writes: allowPush() });
    proxy = await startFaultProxy({ upstream: a.url });
    client = new RegistryClient({ endpoints: (registry) => [{ baseUrl: `http://${registry}`, insecure: true }] });
    const pushed = await pushImage(image, a, 'team/app:v1');
    subject = { mediaType: pushed.mediaType, digest: pushed.digest, size: image.size };
    const repo = { registry: a.host, path: 'team/app' };
    sig = await attach(repo, subject, 'application/vnd.example.signature', 'signature of the index');
    sbom = await attach(repo, subject, 'application/vnd.example.sbom', 'sbom of the index');
    sbomSig = await attach(repo, sbom, 'application/vnd.example.signature', 'signature of the sbom');
  });
  after(async () => {
    await client?.close();
    await Promise.all([a?.stop(), b?.stop(), k?.server.close(), proxy?.stop(), image?.remove()]);
    await tmp?.remove();
  });

  test('Distribution to Distribution: the signature, the SBOM and the SBOM’s signature land, in fallback tags', async () => {
    // The source holds them through its own fallback tags (Distribution 2.8 has no API).
    assert.deepEqual(await listed(a.host, 'team/app', subject.digest), sorted(sig, sbom));
    const result = await copyJson(`docker://${a.host}/team/app:v1`, `docker://${b.host}/mirror/app:v1`);
    assert.deepEqual(result.referrers.map((x) => x.digest).sort(), sorted(sig, sbom, sbomSig));
    assert.ok(result.referrers.every((x) => x.via === 'tag'));
    assert.deepEqual(await listed(b.host, 'mirror/app', subject.digest), sorted(sig, sbom));
    assert.deepEqual(await listed(b.host, 'mirror/app', sbom.digest), sorted(sbomSig));
    // The referrer's exact bytes, by digest.
    assert.equal(digestOf(await inspectRaw(`${b.host}/mirror/app@${sig.digest}`, { tlsVerify: false })), sig.digest);
    // Again: the image is up to date, the referrers are already listed (the tag is not rewritten).
    const again = await copyJson(`docker://${a.host}/team/app:v1`, `docker://${b.host}/mirror/app:v1`);
    assert.equal(again.upToDate, true);
    assert.equal(again.referrers.length, 3);
    assert.deepEqual(await listed(b.host, 'mirror/app', subject.digest), sorted(sig, sbom));
  });

  test('without --referrers nothing but the image is copied', async () => {
    const r = await copyJson(`docker://${a.host}/team/app:v1`, `docker://${b.host}/plain/app:v1`, false);
    assert.deepEqual(r.referrers, []);
    await assert.rejects(inspectRaw(`${b.host}/plain/app:${referrersTag(subject.digest)}`, { tlsVerify: false }));
    await assert.rejects(inspectRaw(`${b.host}/plain/app@${sig.digest}`, { tlsVerify: false }));
    // --dry-run --referrers finds them and writes nothing.
    const dry = await kimg(
      'copy',
      '--dry-run',
      '--referrers',
      `docker://${a.host}/team/app:v1`,
      `docker://${b.host}/dry/app:v1`,
      '-o',
      'json',
    );
    assert.equal(dry.status, 0, dry.stderr);
    const found = (JSON.parse(dry.stdout) as CopiedJson).referrers;
    assert.deepEqual(found.map((x) => x.digest).sort(), sorted(sig, sbom, sbomSig));
    assert.ok(found.every((x) => x.via === 'dry-run'));
    await assert.rejects(inspectRaw(`${b.host}/dry/app@${sig.digest}`, { tlsVerify: false }));
  });

  test('to kimg registry serve (referrers API, OCI-Subject): no fallback tag; back out to Distribution', async () => {
    const result = await copyJson(`docker://${a.host}/team/app:v1`, `docker://${k.host}/team/app:v1`);
    assert.equal(result.referrers.length, 3);
    assert.ok(
      result.referrers.every((x) => x.via === 'api'),
      JSON.stringify(result),
    );
    assert.deepEqual(await viaApi(k.host, 'team/app', subject.digest), sorted(sig, sbom));
    assert.deepEqual(await viaApi(k.host, 'team/app', sbom.digest), sorted(sbomSig));
    await assert.rejects(inspectRaw(`${k.host}/team/app:${referrersTag(subject.digest)}`, { tlsVerify: false }));
    // kimg serve as the source: discovered through its API, written to Distribution's tags.
    const out = await copyJson(`docker://${k.host}/team/app:v1`, `docker://${b.host}/fromk/app:v1`);
    assert.equal(out.referrers.length, 3);
    assert.deepEqual(await listed(b.host, 'fromk/app', subject.digest), sorted(sig, sbom));
    assert.deepEqual(await listed(b.host, 'fromk/app', sbom.digest), sorted(sbomSig));
  });

  test('hostile referrers answers: not an index, too large, too many are clear errors; a loop of pages ends', async () => {
    const path = `/v2/team/app/referrers/${subject.digest}`;
    const src = `docker://${proxy.host}/team/app:v1`;
    const answer = (body: string | Buffer, headers: Record<string, string> = {}) =>
      proxy.setRule((q) =>
        q.path === path
          ? { kind: 'status', status: 200, headers: { 'content-type': MediaType.OciIndex, ...headers }, body }
          : undefined,
      );
    answer(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, config: sig, layers: [] }));
    await assert.rejects(
      libraryCopy(src, `docker://${b.host}/hostile/app:v1`),
      /referrers response that is an image manifest, not an index/,
    );
    answer('<html>not json</html>');
    await assert.rejects(
      libraryCopy(src, `docker://${b.host}/hostile/app:v1`),
      /referrers response that cannot be read as an image index/,
    );
    answer(Buffer.alloc(5 << 20, 0x20));
    await assert.rejects(libraryCopy(src, `docker://${b.host}/hostile/app:v1`), /larger than the limit/);
    const fake = (from: number) =>
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: Array.from({ length: 600 }, (_, i) => ({
          mediaType: MediaType.OciManifest,
          digest: digestOf(`fake ${from + i}`),
          size: 10,
        })),
      });
    // Two pages of 600: past the bound of 1,024 referrers of one subject.
    proxy.setRule((q) =>
      q.path === path
        ? {
            kind: 'status',
            status: 200,
            headers: {
              'content-type': MediaType.OciIndex,
              ...(q.query.get('last') === null && { link: `<${path}?last=p1>; rel="next"` }),
            },
            body: fake(q.query.get('last') === null ? 0 : 600),
          }
        : undefined,
    );
    await assert.rejects(libraryCopy(src, `docker://${b.host}/hostile/app:v1`), /more than 1024 referrers/);
    // A listing naming a manifest whose own subject is another one.
    answer(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [sbomSig] }));
    await assert.rejects(
      libraryCopy(src, `docker://${b.host}/hostile/app:v1`),
      new RegExp(`lists ${sbomSig.digest} as a referrer of ${subject.digest}, but its subject is ${sbom.digest}`),
    );
    // Every page links to itself: read once, then the listing ends; the real referrers are copied.
    proxy.reset();
    answer(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [sig] }), {
      link: `<${path}?last=x>; rel="next"`,
    });
    const looped = await libraryCopy(src, `docker://${b.host}/looped/app:v1`);
    assert.deepEqual(
      looped.referrers.filter((x) => x.subject === subject.digest).map((x) => x.digest),
      [sig.digest],
    );
    assert.equal(proxy.requests.filter((q) => q.path === path).length, 2);
    proxy.setRule(undefined);
  });

  test('from an OCI layout and an oci-archive listing the artifacts in index.json (as oras writes them)', async () => {
    const dir = join(tmp.path, 'with-referrers');
    await skopeoCopy(`oci:${image.layout}:${image.tag}`, `oci:${dir}:v1`, { all: true });
    const indexPath = join(dir, 'index.json');
    const index = JSON.parse(await readFile(indexPath, 'utf8')) as { manifests: Descriptor[] };
    for (const d of [sig, sbom, sbomSig]) {
      const artifact = artifacts.get(d.digest);
      assert.ok(artifact);
      for (const [blob, bytes] of [...artifact.blobs, [d, artifact.manifest] as const])
        await writeFile(join(dir, 'blobs', 'sha256', blob.digest.slice(7)), bytes);
      index.manifests.push({ mediaType: d.mediaType, digest: d.digest, size: d.size });
    }
    await writeFile(indexPath, JSON.stringify(index));
    const archive = join(tmp.path, 'with-referrers.tar');
    await run('tar', ['-cf', archive, '-C', dir, '.']);
    for (const [src, repo] of [
      [`oci:${dir}:v1`, 'fromlayout/app'],
      [`oci-archive:${archive}:v1`, 'fromarchive/app'],
    ] as const) {
      const r = await copyJson(src, `docker://${b.host}/${repo}:v1`);
      assert.equal(r.referrers.length, 3, JSON.stringify(r));
      assert.deepEqual(await listed(b.host, repo, subject.digest), sorted(sig, sbom));
      assert.deepEqual(await listed(b.host, repo, sbom.digest), sorted(sbomSig));
    }
  });

  test('to an OCI layout and an oci-archive: referrers kept in index.json as REPOSITORY@DIGEST, and back out', async () => {
    const layout = join(tmp.path, 'to-layout');
    const archive = join(tmp.path, 'to-archive.tar');
    for (const dst of [`oci:${layout}:v1`, `oci-archive:${archive}:v1`]) {
      const r = await copyJson(`docker://${a.host}/team/app:v1`, dst);
      assert.equal(r.referrers.length, 3, JSON.stringify(r));
      assert.ok(r.referrers.every((x) => x.via === 'index'));
    }
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
    const names = index.manifests.map((m) => m.annotations?.['io.containerd.image.name']).sort();
    assert.deepEqual(
      names,
      [`${a.host}/team/app:v1`, ...[sig, sbom, sbomSig].map((d) => `${a.host}/team/app@${d.digest}`)].sort(),
    );
    // skopeo reads the archive's image by tag; kimg copies image and referrers back to a registry.
    await skopeoCopy(`oci-archive:${archive}:v1`, `oci:${join(tmp.path, 'skopeo-read')}:v1`, { all: true });
    // containerd imports it; the referrers, unnamed, are not taken for images.
    if (which('containerd') !== undefined && which('ctr') !== undefined) {
      const daemon = await Containerd.start(join(tmp.path, 'containerd'), 'kimg-referrers');
      try {
        await daemon.ctr(['images', 'import', '--all-platforms', archive]);
        const listed = await daemon.ctr(['images', 'ls', '-q']);
        assert.ok(listed.includes(`${a.host}/team/app:v1`), listed);
        assert.ok(!listed.includes(sig.digest), listed);
      } finally {
        await daemon.stop();
      }
    }
    for (const [src, repo] of [
      [`oci:${layout}:v1`, 'backfromlayout/app'],
      [`oci-archive:${archive}:v1`, 'backfromarchive/app'],
    ] as const) {
      const r = await copyJson(src, `docker://${b.host}/${repo}:v1`);
      assert.equal(r.referrers.length, 3, JSON.stringify(r));
      assert.deepEqual(await listed(b.host, repo, subject.digest), sorted(sig, sbom));
      assert.deepEqual(await listed(b.host, repo, sbom.digest), sorted(sbomSig));
    }
  });
});
