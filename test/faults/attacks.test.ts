// The pull engine against hostile registries, storage servers and token realms: each behaviour
// of the must-pass list (docs/semantics.md registry §13) at the level of a whole pull (Puller or
// `kimg pull`), with the store checked afterwards. What the registry client's own tests already
// prove request by request (test/registry/) is not repeated; test/faults/COVERAGE.md maps each
// item to its tests. Real registries throughout; the fault proxy plays the hostile parts.
import assert from 'node:assert/strict';
import { createGzip } from 'node:zlib';
import { mkdir, readdir, readFile, symlink, writeFile, lstat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import fc from 'fast-check';
import { isKimgError } from '../../src/errors/index.ts';
import { parseManifestDocument } from '../../src/oci/index.ts';
import { PullError, Puller, type PullerOptions, type PullEvent, type PullResult } from '../../src/pull/index.ts';
import { RegistryClient, type BlobSink, type Credential } from '../../src/registry/index.ts';
import { loadHostsConfig } from '../../src/registry/hosts/index.ts';
import { SMALL_INGEST_BYTES, openStore } from '../../src/store/index.ts';
import {
  buildImage,
  fault,
  makeTempDir,
  pushImage,
  requireTools,
  startFaultProxy,
  startRegistry,
  startTokenServer,
  type BuiltImage,
  type BuiltLayer,
  type Descriptor,
  type FaultProxy,
  type RunningRegistry,
  type TempDir,
  type TokenServer,
} from '../harness/index.ts';
import { runCli } from '../cli/run-cli.ts';
import {
  FakeClock,
  assertClearFailure,
  assertStoreSound,
  captureEvents,
  dumpError,
  isolatedEnv,
  kimgInProcess,
  knownBlobs,
  sha256,
  type KnownBlobs,
} from './helpers.ts';
import {
  DOCKER_MANIFEST,
  HostileDocuments,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_LAYER,
  OCI_MANIFEST,
  endlessBody,
  putManifest,
  startServer,
  testLookup,
  uploadBlob,
  type TestServer,
} from './hostile.ts';

const skip = requireTools(['docker-registry', 'skopeo', 'htpasswd', 'openssl']);
const MiB = 1024 * 1024;
const alice = { user: 'alice', password: 'Alice-Basic-S3cret-42' };
const bob = { user: 'bob', password: 'Bob-Token-S3cret-77' };
const mirrorUser = { user: 'mirror', password: 'Mirror-S3cret-19' };
const basic = (c: { user: string; password: string }): Credential => ({
  kind: 'basic',
  username: c.user,
  password: c.password,
});
const basicHeader = (c: { user: string; password: string }) =>
  `Basic ${Buffer.from(`${c.user}:${c.password}`).toString('base64')}`;
/** The only digests that may become a URL or a path. */
const VALID_DIGEST = /^(sha256:[a-f0-9]{64}|sha384:[a-f0-9]{96}|sha512:[a-f0-9]{128})$/;

/** No secret, nor its base64 or URL-encoded form, anywhere in `text`. */
function assertNoSecrets(text: string, secrets: readonly string[]): void {
  for (const secret of secrets) {
    for (const form of [secret, Buffer.from(secret).toString('base64'), encodeURIComponent(secret)]) {
      assert.ok(
        !text.includes(form),
        `a secret leaked: …${secret.slice(0, 5)}… in ${text.slice(Math.max(0, text.indexOf(form) - 80), text.indexOf(form) + 20)}`,
      );
    }
  }
}

/** Every file under `dir` (relative paths), for "nothing was written outside the store". */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (at: string): Promise<void> => {
    for (const entry of await readdir(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) await walk(path);
      else out.push(relative(dir, path));
    }
  };
  await walk(dir);
  return out.sort();
}

describe('pull engine against hostile registries (docs/semantics.md registry §13)', { skip, timeout: 300_000 }, () => {
  let tmp: TempDir;
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let base: BuiltImage;
  let layers: BuiltLayer[];
  let config: Descriptor;
  let known: KnownBlobs;
  const hostile = new HostileDocuments();
  const pullers: Puller[] = [];
  let stores = 0;
  const DOC = 'attack/doc';
  const ref = (repo: string, tag: string, host = proxy.host) => `${host}/${repo}:${tag}`;

  const newPuller = (options: Omit<PullerOptions, 'store'> = {}): { puller: Puller; dir: string } => {
    const dir = join(tmp.path, 'stores', `store-${++stores}`);
    const puller = new Puller({
      ...options,
      store: dir,
      client: { clock: new FakeClock(), random: () => 0.5, ...options.client },
    });
    pullers.push(puller);
    return { puller, dir };
  };
  const failing = async (pulling: Promise<PullResult>): Promise<PullError> => {
    const err = await pulling.then(
      () => assert.fail('the pull succeeded'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof PullError, `not a PullError: ${String(err)}`);
    return err;
  };
  const manifestOf = (layerList: readonly unknown[], extra: Record<string, unknown> = {}) => ({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config,
    layers: layerList,
    ...extra,
  });

  before(async () => {
    tmp = await makeTempDir('kimg-attacks-');
    await mkdir(join(tmp.path, 'stores'));
    registry = await startRegistry();
    proxy = await startFaultProxy({ upstream: registry.url });
    base = await buildImage({ layers: [60_000, 20_000], seed: 'attacks-base' });
    layers = base.images[0]?.layers ?? assert.fail();
    config = base.images[0]?.config ?? assert.fail();
    known = knownBlobs(base);
    // The hostile documents name base's blobs, which the registry holds under both names.
    await Promise.all([pushImage(base, registry, 'attack/base:v1'), pushImage(base, registry, `${DOC}:base`)]);
  });
  beforeEach(() => {
    proxy.reset();
    hostile.fallback = undefined;
    proxy.setRule(hostile.rule);
  });
  after(async () => {
    await Promise.all(pullers.map((p) => p.close()));
    await proxy?.stop();
    await registry?.stop();
    await base?.remove();
    await tmp?.remove();
  });

  describe('S3: foreign urls are never contacted', () => {
    let evil: TestServer;
    before(async () => {
      // What CVE-2020-15157's attacker server did: ask for credentials.
      evil = await startServer((_req, res, self) =>
        res.writeHead(401, { 'www-authenticate': `Bearer realm="${self.url}/token"` }).end(),
      );
    });
    after(async () => evil?.stop());

    test('layers listing urls are fetched from the registry, by a pull holding credentials; the urls get nothing', async () => {
      const doc = manifestOf(
        layers.map((l) => ({ ...l, urls: [`${evil.url}/${l.digest}`, 'https://evil.test/layer'] })),
      );
      hostile.serve(DOC, 's3-urls', doc);
      const { puller, dir } = newPuller({ credentials: async () => basic(alice) });
      await puller.pull(ref(DOC, 's3-urls'));
      assert.equal(evil.requests.length, 0);
      const { blobs } = await assertStoreSound(dir, { known, image: { name: ref(DOC, 's3-urls'), recorded: true } });
      for (const l of layers) assert.ok(blobs.includes(l.digest));
    });

    test('a non-distributable layer only its urls have: ErrBlobUnknown naming it; the urls get nothing', async () => {
      const foreign = {
        mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
        digest: sha256('only at the foreign url'),
        size: 23,
        urls: [`${evil.url}/foreign`],
      };
      hostile.serve(DOC, 's3-foreign', manifestOf([foreign]));
      const { puller, dir } = newPuller({ credentials: async () => basic(alice) });
      const err = await failing(puller.pull(ref(DOC, 's3-foreign')));
      assertClearFailure(err, {
        code: 'ErrBlobUnknown',
        image: ref(DOC, 's3-foreign'),
        says: [new RegExp(foreign.digest)],
      });
      assert.equal(evil.requests.length, 0);
      const content = join(tmp.path, 'foreign-layer');
      await writeFile(content, 'only at the foreign url');
      const { partials } = await assertStoreSound(dir, {
        known: new Map([...known, [foreign.digest, content]]),
        image: { name: ref(DOC, 's3-foreign'), recorded: false },
      });
      assert.equal(partials.get(foreign.digest) ?? 0, 0);
    });
  });

  describe('S4, R1: token realms and tokens', () => {
    let tokens: TokenServer;
    let tokenRegistry: RunningRegistry;
    let named: FaultProxy;
    let many: BuiltImage;
    let realm = '';
    let hostsDir = '';
    const REPO = 'attack/tok';
    const namedRef = () => `registry.test:${named.port}/${REPO}:v1`;
    /** A Puller for the registry named `registry.test` (plain HTTP per its hosts.toml), with bob's credentials for it. */
    const namedPuller = async (client: PullerOptions['client'] = {}) => {
      const hosts = await loadHostsConfig({ hostsDir });
      return newPuller({
        hosts,
        credentials: async (host) => (host === `registry.test:${named.port}` ? basic(bob) : undefined),
        client: { lookup: testLookup, ...client },
      });
    };

    before(async () => {
      tokens = await startTokenServer({ users: { [bob.user]: bob.password }, allowAnonymous: false });
      tokenRegistry = await startRegistry({ token: tokens });
      named = await startFaultProxy({ upstream: tokenRegistry.url, rewriteRealm: () => realm });
      many = await buildImage({ layers: Array.from({ length: 12 }, () => 3_000), seed: 'attacks-many' });
      await Promise.all([
        pushImage(base, tokenRegistry, `${REPO}:v1`, { creds: bob }),
        pushImage(many, tokenRegistry, 'attack/many:v1', { creds: bob }),
      ]);
      hostsDir = join(tmp.path, 'hosts-s4');
      await mkdir(join(hostsDir, `registry.test:${named.port}`), { recursive: true });
      await writeFile(
        join(hostsDir, `registry.test:${named.port}`, 'hosts.toml'),
        `server = "http://registry.test:${named.port}"\n`,
      );
    });
    beforeEach(() => {
      tokens.requests.length = 0;
      named.reset();
    });
    after(async () => {
      await named?.stop();
      await tokenRegistry?.stop();
      await tokens?.stop();
      await many?.remove();
    });

    test('a realm on another domain gets no credentials: the pull fails saying they were withheld', async () => {
      realm = `http://auth.test:${tokens.host.split(':')[1]}/token`;
      const { puller, dir } = await namedPuller();
      const err = await failing(puller.pull(namedRef()));
      assertClearFailure(err, {
        code: 'ErrUnauthorized',
        image: namedRef(),
        says: [/credentials for registry\.test were not sent to the realm host auth\.test/],
      });
      assert.ok(tokens.requests.length >= 1);
      for (const r of tokens.requests) {
        assert.equal(r.headers.authorization, undefined);
        assert.equal(r.form?.password, undefined);
      }
      await assertStoreSound(dir, { known, image: { name: namedRef(), recorded: false } });
    });

    test("… unless the realm host is allow-listed; a realm under the registry's own domain gets them too", async () => {
      realm = `http://auth.test:${tokens.host.split(':')[1]}/token`;
      const allowed = await namedPuller({ realmAllowList: ['auth.test'] });
      await allowed.puller.pull(namedRef());
      assert.equal(tokens.requests[0]?.user, bob.user);
      tokens.requests.length = 0;
      realm = `http://auth.registry.test:${tokens.host.split(':')[1]}/token`;
      const sibling = await namedPuller();
      await sibling.puller.pull(namedRef());
      assert.equal(tokens.requests[0]?.user, bob.user);
      await assertStoreSound(sibling.dir, { known, image: { name: namedRef(), recorded: true } });
    });

    for (const hostileRealm of [
      'http://127.0.0.1:{port}/token',
      'http://169.254.169.254/latest/api/token',
      'http://10.0.0.1/token',
      'http://[::1]:{port}/token',
    ]) {
      test(`a registry named by DNS naming the realm ${hostileRealm.replace(':{port}', '')}: ErrRealmRefused, nothing sent there`, async () => {
        realm = hostileRealm.replace('{port}', tokens.host.split(':')[1] ?? '');
        const { puller, dir } = await namedPuller();
        const { events, onEvent } = captureEvents();
        const err = await failing(puller.pull(namedRef(), { onEvent }));
        assertClearFailure(err, { code: 'ErrRealmRefused', image: namedRef(), says: [/refused/] });
        assert.equal(tokens.requests.length, 0);
        assertNoSecrets(dumpError(err) + JSON.stringify(events), [bob.password]);
        await assertStoreSound(dir, { known, image: { name: namedRef(), recorded: false } });
      });
    }

    test('a pull of 12 layers, 8 at a time, on a fresh Puller asks for one token (R1)', async () => {
      const { puller, dir } = newPuller({ concurrency: 8, credentials: async () => basic(bob) });
      await puller.pull(`${tokenRegistry.host}/attack/many:v1`);
      assert.equal(tokens.requests.length, 1);
      assert.equal(tokens.requests[0]?.user, bob.user);
      await assertStoreSound(dir, {
        known: knownBlobs(many),
        image: { name: `${tokenRegistry.host}/attack/many:v1`, recorded: true },
      });
    });

    test('a registry that rejects every token for blobs: ErrUnauthorized after at most 2 token requests (R1)', async () => {
      realm = tokens.url;
      named.setRule((r) =>
        r.path.includes('/blobs/')
          ? fault.unauthorized(
              `Bearer realm="${tokens.url}",service="${tokens.service}",scope="repository:attack/many:pull",error="invalid_token"`,
            )
          : undefined,
      );
      const { puller } = newPuller({ credentials: async () => basic(bob) });
      const { events, onEvent } = captureEvents();
      const err = await failing(puller.pull(`${named.host}/attack/many:v1`, { onEvent }));
      assertClearFailure(err, { code: 'ErrUnauthorized', image: `${named.host}/attack/many:v1` });
      assert.ok(tokens.requests.length <= 2, `${tokens.requests.length} token requests`);
      assertNoSecrets(dumpError(err) + JSON.stringify(events), [bob.password, ...tokens.issued.map((t) => t.token)]);
    });
  });

  describe('S5, S12: redirects to storage, and what errors may show', () => {
    let basicRegistry: RunningRegistry;
    let front: FaultProxy;
    let otherPort: FaultProxy;
    let storage: TestServer;
    const SIGNATURE = 'Sig-0f1e2d3c4b5a-Secret';
    const KEY_ID = 'AKIAQUERYSECRET77';
    const presigned = (host: string, digest: string) =>
      `http://${host}:${storage.port}/bucket/${digest}?X-Amz-Credential=${KEY_ID}&X-Amz-Signature=${SIGNATURE}`;
    const REPO = 'attack/basic';

    before(async () => {
      basicRegistry = await startRegistry({ htpasswd: [alice] });
      front = await startFaultProxy({ upstream: basicRegistry.url });
      otherPort = await startFaultProxy({ upstream: basicRegistry.url });
      await pushImage(base, basicRegistry, `${REPO}:v1`, { creds: alice });
      const blobs = new Map(
        await Promise.all(
          [config, ...layers].map(async (d) => [d.digest, await readFile(base.blobPath(d.digest))] as const),
        ),
      );
      storage = await startServer((req, res) => {
        const url = new URL(req.url ?? '/', 'http://storage.invalid');
        const bytes = blobs.get(url.pathname.slice('/bucket/'.length));
        if (
          url.searchParams.get('X-Amz-Signature') !== SIGNATURE ||
          bytes === undefined ||
          url.searchParams.has('fail')
        ) {
          // Storage services echo the request in their errors.
          const status = url.searchParams.has('fail') ? 500 : 403;
          res
            .writeHead(status, { 'content-type': 'application/json' })
            .end(
              JSON.stringify({ errors: [{ code: 'DENIED', message: `denied ${req.url}`, detail: { url: req.url } }] }),
            );
          return;
        }
        res.writeHead(200, { 'content-length': String(bytes.length) }).end(bytes);
      });
    });
    beforeEach(() => {
      front.reset();
      otherPort.reset();
      storage.requests.length = 0;
    });
    after(async () => {
      await storage?.stop();
      await front?.stop();
      await otherPort?.stop();
      await basicRegistry?.stop();
    });
    const alicePuller = () =>
      newPuller({ credentials: async (host) => (host === front.host ? basic(alice) : undefined) });

    for (const host of ['127.0.0.1', 'localhost']) {
      test(`blobs redirected to presigned URLs on ${host}:<other port>: no Authorization or cookie there, query intact, pull verified`, async () => {
        front.setRule((r) =>
          r.path.includes('/blobs/')
            ? fault.redirect(presigned(host, r.path.slice(r.path.lastIndexOf('/') + 1)))
            : undefined,
        );
        const { puller, dir } = alicePuller();
        await puller.pull(ref(REPO, 'v1', front.host));
        assert.equal(storage.requests.length, 3);
        for (const r of storage.requests) {
          assert.equal(r.headers.authorization, undefined);
          assert.equal(r.headers.cookie, undefined);
          assert.ok(r.url.includes(`X-Amz-Signature=${SIGNATURE}`));
        }
        assert.ok(
          front.requests.some((r) => r.headers.authorization === basicHeader(alice)),
          'the registry itself got the credentials',
        );
        await assertStoreSound(dir, { known, image: { name: ref(REPO, 'v1', front.host), recorded: true } });
      });
    }

    test("a 401 from the redirect target is not answered with the registry's credentials: ErrUnauthorized naming that host", async () => {
      front.setRule((r) => (r.path.includes('/blobs/') ? fault.redirect(`${otherPort.url}${r.url}`) : undefined));
      const { puller, dir } = alicePuller();
      const err = await failing(puller.pull(ref(REPO, 'v1', front.host)));
      assertClearFailure(err, {
        code: 'ErrUnauthorized',
        image: ref(REPO, 'v1', front.host),
        says: [new RegExp(otherPort.host), /never sent to another origin/],
      });
      assert.ok(otherPort.requests.length >= 1);
      for (const r of otherPort.requests) assert.equal(r.headers.authorization, undefined);
      await assertStoreSound(dir, { known, image: { name: ref(REPO, 'v1', front.host), recorded: false } });
    });

    test('S12: failing pulls show no password, Authorization value, presigned query or token — in errors, events or kimg output', async () => {
      const secrets = [alice.password, basicHeader(alice), `${alice.user}:${alice.password}`, SIGNATURE, KEY_ID];
      const texts: string[] = [];
      const record = (err: unknown, events: readonly PullEvent[]) => texts.push(dumpError(err), JSON.stringify(events));

      // 1. A registry that echoes the Authorization header in its error body.
      front.setRule((r) =>
        r.method === 'GET' && r.path.includes('/manifests/') && r.headers.authorization !== undefined
          ? fault.status(
              403,
              {},
              JSON.stringify({
                errors: [
                  {
                    code: 'DENIED',
                    message: `no access for ${r.headers.authorization}`,
                    detail: { authorization: r.headers.authorization },
                  },
                ],
              }),
            )
          : r.method === 'HEAD'
            ? fault.methodNotAllowed()
            : undefined,
      );
      let run = captureEvents();
      let err = await failing(alicePuller().puller.pull(ref(REPO, 'v1', front.host), { onEvent: run.onEvent }));
      assert.equal(err.code, 'ErrDenied');
      assert.match(err.message, /no access for/);
      record(err, run.events);

      // 2. Presigned storage that refuses, echoing the URL; 3. one that fails with 500 every time (retried).
      for (const extra of ['&deny=1', '&fail=1']) {
        front.reset();
        front.setRule((r) =>
          r.path.includes('/blobs/')
            ? fault.redirect(
                `${presigned('127.0.0.1', r.path.slice(r.path.lastIndexOf('/') + 1)).replace(SIGNATURE, extra === '&deny=1' ? 'wrong' + SIGNATURE : SIGNATURE)}${extra}`,
              )
            : undefined,
        );
        run = captureEvents();
        err = await failing(alicePuller().puller.pull(ref(REPO, 'v1', front.host), { onEvent: run.onEvent }));
        assert.ok(['ErrDenied', 'ErrRegistryUnavailable'].includes(err.code), err.message);
        assert.match(err.message, /\?<redacted>/);
        record(err, run.events);
      }

      // 4. A wrong password, through kimg pull with progress as JSON lines and the error on stderr.
      front.reset();
      const wrong = 'Wrong-Password-Secret-5';
      const cli = await runCli(
        [
          'pull',
          '--progress',
          'json',
          '--creds',
          `${alice.user}:${wrong}`,
          '--store',
          join(tmp.path, 'stores', 's12-cli'),
          ref(REPO, 'v1', front.host),
        ],
        {
          env: isolatedEnv(tmp.path),
        },
      );
      assert.equal(cli.status, 1);
      assert.match(cli.stderr, /\(ErrUnauthorized\)$/m);
      texts.push(cli.stdout, cli.stderr);
      assertNoSecrets(texts.join('\n'), [...secrets, wrong, `${alice.user}:${wrong}`]);
    });
  });

  describe('S5, S6: TLS registries', () => {
    let tlsRegistry: RunningRegistry;
    let tlsFront: FaultProxy;
    let plain: TestServer;
    before(async () => {
      tlsRegistry = await startRegistry({ tls: true });
      const [certPem, keyPem] = await Promise.all([
        readFile(join(tlsRegistry.dir, 'tls', 'server.crt'), 'utf8'),
        readFile(join(tlsRegistry.dir, 'tls', 'server.key'), 'utf8'),
      ]);
      tlsFront = await startFaultProxy({ upstream: tlsRegistry.url, ca: tlsRegistry.caPem, tls: { certPem, keyPem } });
      plain = await startServer((_req, res) => res.writeHead(500).end());
      await pushImage(base, tlsRegistry, 'attack/base:v1');
    });
    after(async () => {
      await plain?.stop();
      await tlsFront?.stop();
      await tlsRegistry?.stop();
    });

    test('an https registry redirecting a blob to plain http: ErrInsecureRedirect; nothing, credentials least of all, reaches the http URL', async () => {
      tlsFront.setRule((r) => (r.path.includes('/blobs/') ? fault.redirect(`${plain.url}${r.url}`) : undefined));
      const hosts = await loadHostsConfig({ insecureLoopback: false });
      const { puller, dir } = newPuller({
        hosts,
        caPems: [tlsRegistry.caPem ?? ''],
        credentials: async () => basic(alice),
      });
      const image = `${tlsFront.host}/attack/base:v1`;
      const err = await failing(puller.pull(image));
      assertClearFailure(err, { code: 'ErrInsecureRedirect', image, says: [/from https to plain http/, /refused/] });
      assert.equal(plain.requests.length, 0);
      await assertStoreSound(dir, { known, image: { name: image, recorded: false } });
    });

    test('a registry that does not speak TLS, named by DNS: ErrTLS, no plain-http request (no fall-back)', async () => {
      const image = `registry.test:${proxy.port}/attack/base:v1`;
      const { puller, dir } = newPuller({ client: { lookup: testLookup } });
      const err = await failing(puller.pull(image));
      assertClearFailure(err, { code: 'ErrTLS', image, says: [/nothing was sent over plain http/i] });
      assert.equal(proxy.requests.length, 0, 'a plain-http request reached the server');
      await assertStoreSound(dir, { known, image: { name: image, recorded: false } });
    });
  });

  describe('S7, S9: documents with one meaning, malformed documents', () => {
    const expectRefused = async (tag: string, code: string, says: RegExp) => {
      const { puller, dir } = newPuller();
      const err = await failing(puller.pull(ref(DOC, tag)));
      assertClearFailure(err, { code, image: ref(DOC, tag), says: [says] });
      assert.equal(
        proxy.requests.filter((r) => r.path.includes('/blobs/')).length,
        0,
        'blobs were fetched for a refused document',
      );
      return assertStoreSound(dir, { known, image: { name: ref(DOC, tag), recorded: false } });
    };

    test('a document that is both a manifest and an index is refused and never stored (CVE-2021-41190)', async () => {
      hostile.serve(DOC, 's7-both', manifestOf(layers, { manifests: [] }));
      hostile.serve(DOC, 's7-both-index', { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [], layers }, OCI_INDEX);
      for (const tag of ['s7-both', 's7-both-index']) {
        const { blobs } = await expectRefused(tag, 'ErrManifestInvalid', /both "manifests" and "layers"/);
        assert.deepEqual(blobs, []);
      }
    });

    test('a mediaType that disagrees with Content-Type, or with the parent descriptor, is refused', async () => {
      hostile.serve(DOC, 's7-type', manifestOf(layers), DOCKER_MANIFEST);
      assert.deepEqual((await expectRefused('s7-type', 'ErrManifestInvalid', /media types disagree/)).blobs, []);

      // An index whose child descriptor says "manifest" for what is an index.
      const child = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] };
      const childDigest = hostile.serve(DOC, undefined, child, OCI_INDEX);
      const parent = {
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [
          { ...hostile.descriptor(child), mediaType: OCI_MANIFEST, platform: { os: 'linux', architecture: 'amd64' } },
        ],
      };
      hostile.serve(DOC, 's7-parent', parent, OCI_INDEX);
      const { blobs } = await expectRefused('s7-parent', 'ErrManifestInvalid', /media types disagree/);
      assert.ok(!blobs.includes(childDigest), 'the child that lied was stored');
    });

    test('duplicate keys are refused (the bytes could mean two things)', async () => {
      const text = JSON.stringify(manifestOf(layers)).replace('"layers":', `"layers":[],"layers":`);
      hostile.serve(DOC, 's7-dup', text);
      assert.deepEqual((await expectRefused('s7-dup', 'ErrManifestInvalid', /duplicate key "layers"/)).blobs, []);
    });

    test('malformed documents of every kind fail with a typed error, never an unhandled rejection or crash (S9)', async () => {
      const layer = layers[0] ?? assert.fail();
      const withLayer = (l: unknown) => JSON.stringify(manifestOf([l]));
      const documents: Record<string, string | Buffer> = {
        'not JSON': '{"schemaVersion": 2,',
        'JSON null': 'null',
        'an array': '[]',
        'a string': '"manifest"',
        'not UTF-8': Buffer.from([0xff, 0xfe, 0x7b, 0x00, 0x80]),
        'schemaVersion as a string': JSON.stringify({ ...manifestOf(layers), schemaVersion: '2' }),
        'layers as an object': JSON.stringify({ ...manifestOf(layers), layers: {} }),
        'a null layer': withLayer(null),
        'config as an array': JSON.stringify({ ...manifestOf(layers), config: [] }),
        'no config': JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, layers }),
        'no layers': JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config }),
        'a size as a string': withLayer({ ...layer, size: '60000' }),
        'a negative size': withLayer({ ...layer, size: -1 }),
        'a fractional size': withLayer({ ...layer, size: 1.5 }),
        'a size beyond 2^53': withLayer({ ...layer, size: 2 ** 53 + 2 }),
        'an infinite size': withLayer({ ...layer, size: 1 }).replace('"size":1', '"size":1e400'),
        'a size of 0 for content': withLayer({ ...layer, size: 0 }),
        'a numeric digest': withLayer({ ...layer, digest: 42 }),
        'a numeric mediaType': withLayer({ ...layer, mediaType: 7 }),
        'an unknown digest algorithm': withLayer({ ...layer, digest: `blake3:${'a'.repeat(64)}` }),
        'annotations of the wrong type': JSON.stringify({ ...manifestOf(layers), annotations: { a: 1 } }),
        '1025 layers': JSON.stringify(manifestOf(Array.from({ length: 1025 }, () => layer))),
        'arrays nested 100000 deep': `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
        'objects nested 100000 deep': `${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`,
        'a manifest nested 100000 deep': JSON.stringify(manifestOf(layers))
          .replace('"annotations"', '"x"')
          .replace(/}$/, `,"deep":${'['.repeat(100_000)}${']'.repeat(100_000)}}`),
        'an index of 8 nested indexes': '',
        'schema 1': JSON.stringify({ schemaVersion: 1, name: 'x', tag: 'y', fsLayers: [] }),
      };
      // Nine indexes, each pointing at the next: one level more than allowed.
      let inner: unknown = manifestOf(layers);
      let innerType = OCI_MANIFEST;
      for (let i = 0; i < 9; i++) {
        hostile.serve(DOC, undefined, inner, innerType);
        inner = {
          schemaVersion: 2,
          mediaType: OCI_INDEX,
          manifests: [{ ...hostile.descriptor(inner, innerType), platform: { os: 'linux', architecture: 'amd64' } }],
        };
        innerType = OCI_INDEX;
      }
      documents['an index of 8 nested indexes'] = JSON.stringify(inner);

      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown) => unhandled.push(reason);
      process.on('unhandledRejection', onUnhandled);
      process.on('uncaughtException', onUnhandled);
      try {
        for (const [i, [what, body]] of Object.entries(documents).entries()) {
          const tag = `s9-${i}`;
          hostile.serve(DOC, tag, body, what === 'an index of 8 nested indexes' ? OCI_INDEX : OCI_MANIFEST);
          const { puller, dir } = newPuller();
          const err = await puller.pull(ref(DOC, tag)).then(
            () => undefined,
            (e: unknown) => e,
          );
          assert.ok(
            err instanceof PullError,
            `${what}: ${err === undefined ? 'the pull succeeded' : `not a PullError: ${String(err)}`}`,
          );
          assert.ok(
            ['ErrManifestInvalid', 'ErrUnsupportedMediaType', 'ErrUnsupportedDigestAlgorithm'].includes(err.code),
            `${what}: ${err.code}: ${err.message}`,
          );
          assert.ok(err.message.includes(ref(DOC, tag)), `${what}: ${err.message}`);
          assert.ok(err.message.length < 2000, `${what}: a message of ${err.message.length} characters`);
          await assertStoreSound(dir, { known, image: { name: ref(DOC, tag), recorded: false } });
        }
        await new Promise((resolve) => setImmediate(resolve));
      } finally {
        process.off('unhandledRejection', onUnhandled);
        process.off('uncaughtException', onUnhandled);
      }
      assert.deepEqual(unhandled, []);
    });
  });

  describe('S8, S11: digests and paths', () => {
    const BAD_DIGESTS = [
      'sha256:../../../../etc/passwd',
      `sha256:${'A'.repeat(64)}`,
      `sha256:${'a'.repeat(63)}`,
      `sha256:${'a'.repeat(65)}`,
      `sha256:${'a'.repeat(61)}%2F`,
      `sha256:${'a'.repeat(63)}?`,
      `sha256:${'a'.repeat(63)}#`,
      `sha256:${'a'.repeat(62)}/x`,
      `SHA256:${'a'.repeat(64)}`,
      `sha256:${'a'.repeat(64)}\n`,
    ];

    test('invalid digests in a manifest or an index never become a URL or a path: refused before any blob request, nothing written outside the store', async () => {
      const before = await filesUnder(tmp.path);
      const dirs: string[] = [];
      for (const [i, digest] of BAD_DIGESTS.entries()) {
        const layer = { ...layers[0], digest };
        hostile.serve(DOC, `s8-layer-${i}`, manifestOf([layer]));
        hostile.serve(DOC, `s8-config-${i}`, { ...manifestOf(layers), config: { ...config, digest } });
        hostile.serve(
          DOC,
          `s8-index-${i}`,
          {
            schemaVersion: 2,
            mediaType: OCI_INDEX,
            manifests: [
              { mediaType: OCI_MANIFEST, digest, size: 500, platform: { os: 'linux', architecture: 'amd64' } },
            ],
          },
          OCI_INDEX,
        );
        for (const kind of ['layer', 'config', 'index']) {
          const tag = `s8-${kind}-${i}`;
          const { puller, dir } = newPuller();
          dirs.push(dir);
          const err = await failing(puller.pull(ref(DOC, tag)));
          assert.ok(
            ['ErrManifestInvalid', 'ErrUnsupportedDigestAlgorithm'].includes(err.code),
            `${JSON.stringify(digest)} in ${kind}: ${err.code}: ${err.message}`,
          );
          await assertStoreSound(dir, { known, image: { name: ref(DOC, tag), recorded: false } });
        }
      }
      for (const r of proxy.requests)
        assert.match(
          r.path,
          /^\/v2\/attack\/doc\/manifests\/(s8-[a-z]+-\d+|sha256:[a-f0-9]{64})$/,
          `requested ${r.path}`,
        );
      const added = (await filesUnder(tmp.path)).filter((f) => !before.includes(f));
      const outside = added.filter((f) => !dirs.some((d) => join(tmp.path, f).startsWith(`${d}/`)));
      assert.deepEqual(outside, [], 'files written outside the stores');
    });

    test('an invalid Docker-Content-Digest header is ignored, never used: the bytes are hashed instead', async () => {
      proxy.setRule((r) =>
        r.path === '/v2/attack/base/manifests/v1'
          ? fault.forgeHeader('docker-content-digest', 'sha256:../../../../etc/passwd')
          : undefined,
      );
      const { puller, dir } = newPuller();
      const result = await puller.pull(ref('attack/base', 'v1'));
      assert.equal(result.descriptor.digest, base.digest);
      for (const r of proxy.requests)
        assert.match(r.path, /^\/v2\/attack\/base\/(manifests\/v1|blobs\/sha256:[a-f0-9]{64})$/);
      await assertStoreSound(dir, { known, image: { name: ref('attack/base', 'v1'), recorded: true } });
    });

    test('10,000 fuzzed digest strings: only valid ones ever reach a URL (/v2/<name>/blobs/<digest>) or a path inside blobs/', async () => {
      const requested: string[] = [];
      const server = await startServer((req, res) => {
        requested.push(req.url ?? '');
        res
          .writeHead(404, { 'content-type': 'application/json' })
          .end('{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}');
      });
      const client = new RegistryClient({
        endpoints: () => [{ baseUrl: server.url, insecure: true }],
        retry: { maxAttempts: 1 },
      });
      const store = await openStore(join(tmp.path, 'stores', 'fuzz'));
      const sink: BlobSink = { offset: 0, write: async () => undefined, reset: async () => undefined };
      const HEX = [...'0123456789abcdef'];
      const HOSTILE = [
        ...'0123456789abcdefABCDEFgz/.%?#:@\\ \n\t+-_=~',
        '..',
        '%2F',
        '%2e',
        '\u0000',
        'é',
        '\u202e',
        '／',
      ];
      const valid256 = fc
        .string({ unit: fc.constantFrom(...HEX), minLength: 64, maxLength: 64 })
        .map((h) => `sha256:${h}`);
      const valid384 = fc
        .string({ unit: fc.constantFrom(...HEX), minLength: 96, maxLength: 96 })
        .map((h) => `sha384:${h}`);
      const valid512 = fc
        .string({ unit: fc.constantFrom(...HEX), minLength: 128, maxLength: 128 })
        .map((h) => `sha512:${h}`);
      const mutated = fc
        .tuple(valid256, fc.nat(70), fc.constantFrom(...HOSTILE), fc.boolean())
        .map(([d, at, c, insert]) =>
          insert ? d.slice(0, at) + c + d.slice(at) : d.slice(0, at) + c + d.slice(at + 1),
        );
      const algorithms = fc.constantFrom(
        'sha256',
        'sha512',
        'sha384',
        'SHA256',
        'md5',
        'sha256+b64',
        'blake3',
        '',
        '..',
        'sha256/..',
      );
      const composed = fc
        .tuple(
          algorithms,
          fc.constantFrom(':', '::', '', '%3A', '/'),
          fc.string({ unit: fc.constantFrom(...HOSTILE), maxLength: 140 }),
        )
        .map(([a, sep, rest]) => `${a}${sep}${rest}`);
      // Mostly hostile strings; a few valid ones show the request and path they do get.
      const digests = fc.oneof(
        { arbitrary: mutated, weight: 6 },
        { arbitrary: composed, weight: 6 },
        { arbitrary: valid256, weight: 1 },
        { arbitrary: fc.oneof(valid384, valid512), weight: 1 },
      );
      let validSeen = 0;
      try {
        await fc.assert(
          fc.asyncProperty(digests, async (digest) => {
            const valid = VALID_DIGEST.test(digest);
            if (valid) validSeen++;
            // As a descriptor in a manifest.
            let parsedDigest: string | undefined;
            try {
              const doc = parseManifestDocument(
                Buffer.from(JSON.stringify(manifestOf([{ mediaType: OCI_LAYER, digest, size: 10 }]))),
              );
              parsedDigest = doc.kind === 'manifest' ? doc.manifest.layers[0]?.digest : undefined;
            } catch (err) {
              assert.ok(isKimgError(err), String(err));
            }
            if (parsedDigest !== undefined)
              assert.ok(valid && parsedDigest === digest, `accepted ${JSON.stringify(digest)}`);
            // As a URL.
            const before = requested.length;
            const fetched = await client
              .fetchBlob(
                { registry: 'fuzz.test', path: 'attack/fuzz' },
                { mediaType: OCI_LAYER, digest, size: 10 },
                sink,
              )
              .then(
                () => undefined,
                (e: unknown) => e,
              );
            assert.ok(isKimgError(fetched), String(fetched));
            const sent = requested.slice(before);
            if (valid) assert.deepEqual(sent, [`/v2/attack/fuzz/blobs/${digest}`]);
            else assert.deepEqual(sent, [], `requested ${JSON.stringify(sent)} for ${JSON.stringify(digest)}`);
            // As a path.
            let path: string | undefined;
            try {
              path = store.blobPath(digest);
            } catch (err) {
              assert.ok(isKimgError(err), String(err));
            }
            if (path !== undefined) {
              assert.ok(valid, `a path for ${JSON.stringify(digest)}`);
              assert.equal(
                path,
                join(store.root, 'blobs', digest.slice(0, digest.indexOf(':')), digest.slice(digest.indexOf(':') + 1)),
              );
            }
          }),
          { numRuns: 10_000 },
        );
      } finally {
        await client.close();
        await server.stop();
      }
      assert.ok(validSeen > 300, `only ${validSeen} valid digests generated`);
    });

    test('a symlink planted at blobs/sha256/<hex> is replaced, never written through', async () => {
      const { puller, dir } = newPuller();
      const store = await puller.store();
      const victim = join(tmp.path, 'victim-blob');
      await writeFile(victim, 'precious');
      const layer = layers[0] ?? assert.fail();
      await symlink(victim, store.blobPath(layer.digest));
      await puller.pull(ref('attack/base', 'v1'));
      assert.equal(await readFile(victim, 'utf8'), 'precious');
      assert.ok((await lstat(store.blobPath(layer.digest))).isFile());
      await assertStoreSound(dir, { known, image: { name: ref('attack/base', 'v1'), recorded: true } });
    });

    test('a symlink planted as a partial download in ingest/ is refused, never written through', async () => {
      // Only blobs over SMALL_INGEST_BYTES go through a partial file; smaller ones are gathered in
      // memory and never open it (checked below with the small base layer).
      const large = await buildImage({ layers: [SMALL_INGEST_BYTES + 1], seed: 'attacks-partial' });
      try {
        await pushImage(large, registry, 'attack/large:v1');
        const { puller } = newPuller();
        const store = await puller.store();
        const victim = join(tmp.path, 'victim-ingest');
        await writeFile(victim, 'precious');
        const layer = large.images[0]?.layers[0] ?? assert.fail();
        const small = layers[0] ?? assert.fail();
        for (const planted of [layer, small])
          await symlink(victim, join(store.root, 'ingest', `sha256-${planted.digest.slice(7)}.data`));
        const err = await failing(puller.pull(ref('attack/large', 'v1')));
        assertClearFailure(err, { code: 'ErrStoreCorrupt', image: ref('attack/large', 'v1'), says: [/symlink/] });
        assert.ok(!(await store.hasBlob(layer.digest)));
        await puller.pull(ref('attack/base', 'v1'));
        assert.ok((await lstat(store.blobPath(small.digest))).isFile());
        assert.equal(await readFile(victim, 'utf8'), 'precious');
        assert.deepEqual((await store.fsck()).problems, []);
      } finally {
        await large.remove();
      }
    });

    test('hostile ref.name and title annotations never become paths; index.json names the image as pulled', async () => {
      const evilNames = ['../../../../evil-ref', '/tmp/evil-abs', '..\\..\\evil-win'];
      const annotations = {
        'org.opencontainers.image.ref.name': evilNames[0],
        'org.opencontainers.image.title': evilNames[1],
        'io.containerd.image.name': evilNames[2],
      };
      const doc = manifestOf(
        layers.map((l) => ({ ...l, annotations: { 'org.opencontainers.image.title': '../../evil-layer' } })),
        { annotations },
      );
      hostile.serve(DOC, 's11-annotations', doc);
      const before = await filesUnder(tmp.path);
      const { puller, dir } = newPuller();
      await puller.pull(ref(DOC, 's11-annotations'));
      const added = (await filesUnder(tmp.path)).filter((f) => !before.includes(f));
      assert.ok(
        added.every((f) => join(tmp.path, f).startsWith(`${dir}/`)),
        JSON.stringify(added),
      );
      assert.ok(
        added.every((f) => !f.includes('evil')),
        JSON.stringify(added),
      );
      const record = await (await puller.store()).getImage(ref(DOC, 's11-annotations'));
      assert.equal(record?.name, ref(DOC, 's11-annotations'));
      assert.equal(record?.refName, ref(DOC, 's11-annotations'));
      await assertStoreSound(dir, { known, image: { name: ref(DOC, 's11-annotations'), recorded: true } });
    });
  });

  describe('S10: every body read is capped', () => {
    let endless: TestServer;
    let endlessError: TestServer;
    let hugeToken: TestServer;
    before(async () => {
      endless = await startServer(endlessBody(200));
      endlessError = await startServer(endlessBody(404));
      hugeToken = await startServer((_req, res, self) => {
        const body = Buffer.alloc(10 * MiB, 0x20);
        self.bytesWritten += body.length;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) }).end(body);
      });
    });
    after(async () => Promise.all([endless?.stop(), endlessError?.stop(), hugeToken?.stop()]));
    beforeEach(() => {
      for (const s of [endless, endlessError, hugeToken]) s.bytesWritten = 0;
    });
    /** The server stopped being read long before the end: far less than what it would send. */
    const assertAbandoned = (server: TestServer) =>
      assert.ok(server.bytesWritten > 0 && server.bytesWritten < 64 * MiB, `${server.bytesWritten} bytes written`);

    test('an endless manifest: ErrManifestTooLarge at the 4 MiB cap', async () => {
      proxy.setRule((r) =>
        r.method === 'HEAD'
          ? fault.methodNotAllowed()
          : r.path.includes('/manifests/')
            ? fault.redirect(`${endless.url}/manifest`)
            : undefined,
      );
      const { puller, dir } = newPuller();
      const err = await failing(puller.pull(ref('attack/base', 'v1')));
      assertClearFailure(err, {
        code: 'ErrManifestTooLarge',
        image: ref('attack/base', 'v1'),
        says: [/limit of 4194304 bytes/],
      });
      assertAbandoned(endless);
      await assertStoreSound(dir, { known, image: { name: ref('attack/base', 'v1'), recorded: false } });
    });

    test('an endless error body: read to 64 KiB for the message, then dropped', async () => {
      proxy.setRule((r) => (r.path.includes('/blobs/') ? fault.redirect(`${endlessError.url}/blob`) : undefined));
      const { puller, dir } = newPuller();
      const err = await failing(puller.pull(ref('attack/base', 'v1')));
      assertClearFailure(err, { code: 'ErrBlobUnknown', image: ref('attack/base', 'v1') });
      assert.ok(err.message.length < 2000, `a ${err.message.length}-character message`);
      assertAbandoned(endlessError);
      await assertStoreSound(dir, { known, image: { name: ref('attack/base', 'v1'), recorded: false } });
    });

    test('an endless token response, and a 10 MB one: ErrBodyTooLarge at the 1 MiB cap', async () => {
      for (const server of [endless, hugeToken]) {
        proxy.reset();
        proxy.setRule((r) =>
          r.headers.authorization === undefined && r.path.startsWith('/v2/attack/base/')
            ? fault.unauthorized(`Bearer realm="${server.url}/token",service="hostile"`)
            : undefined,
        );
        const { puller, dir } = newPuller();
        const err = await failing(puller.pull(ref('attack/base', 'v1')));
        assertClearFailure(err, {
          code: 'ErrBodyTooLarge',
          image: ref('attack/base', 'v1'),
          says: [/token response/, /larger than 1048576 bytes/],
        });
        assert.ok(server.bytesWritten < 64 * MiB);
        await assertStoreSound(dir, { known, image: { name: ref('attack/base', 'v1'), recorded: false } });
      }
    });

    test('a 10 MB error body with a Content-Length: the message stays short', async () => {
      proxy.setRule((r) => (r.method === 'HEAD' ? fault.notFound() : undefined));
      proxy.setRule((r) =>
        r.path.includes('/manifests/')
          ? fault.status(
              404,
              {},
              JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'x'.repeat(10 * MiB) }] }),
            )
          : undefined,
      );
      const { puller } = newPuller();
      const err = await failing(puller.pull(ref('attack/base', 'v1')));
      assertClearFailure(err, { code: 'ErrManifestUnknown', image: ref('attack/base', 'v1') });
      assert.ok(err.message.length < 2000, `a ${err.message.length}-character message`);
    });

    test('a manifest in the store over the cap is not read whole: a digest pull fails with ErrBlobTooLarge, no request', async () => {
      const { puller } = newPuller();
      const store = await puller.store();
      const big = Buffer.from(JSON.stringify(manifestOf(layers, { padding: ' '.repeat(5 * MiB) })));
      const descriptor = { mediaType: OCI_MANIFEST, digest: sha256(big), size: big.length };
      await store.putBlob(descriptor, big);
      const image = `${proxy.host}/attack/base@${descriptor.digest}`;
      const err = await failing(puller.pull(image));
      assertClearFailure(err, { code: 'ErrBlobTooLarge', image, says: [/limit of 4194304/] });
      assert.equal(proxy.requests.length, 0);
    });
  });

  describe('S13: credentials per contacted host, through kimg pull with mirrors', () => {
    let mirror: RunningRegistry;
    let mirrorFront: FaultProxy;
    let upstream: RunningRegistry;
    let upstreamFront: FaultProxy;
    before(async () => {
      [mirror, upstream] = await Promise.all([
        startRegistry({ htpasswd: [mirrorUser] }),
        startRegistry({ htpasswd: [alice] }),
      ]);
      mirrorFront = await startFaultProxy({ upstream: mirror.url });
      upstreamFront = await startFaultProxy({ upstream: upstream.url });
      await Promise.all(
        ['attack/mirrored', 'attack/fallback'].flatMap((repo) => [
          pushImage(base, mirror, `${repo}:v1`, { creds: mirrorUser }),
          pushImage(base, upstream, `${repo}:v1`, { creds: alice }),
        ]),
      );
    });
    after(async () => {
      await mirrorFront?.stop();
      await upstreamFront?.stop();
      await mirror?.stop();
      await upstream?.stop();
    });

    test('a mirror and its upstream each see only their own credentials, when the mirror serves and when it fails', async () => {
      const hostsDir = join(tmp.path, 'hosts-s13');
      const hostDir = join(hostsDir, upstreamFront.host);
      await mkdir(hostDir, { recursive: true });
      await writeFile(
        join(hostDir, 'hosts.toml'),
        `server = "http://${upstreamFront.host}"\n\n[host."http://${mirrorFront.host}"]\n  capabilities = ["pull", "resolve"]\n`,
      );
      const authfile = join(tmp.path, 's13-auth.json');
      const auth = (c: { user: string; password: string }) => ({
        auth: Buffer.from(`${c.user}:${c.password}`).toString('base64'),
      });
      await writeFile(
        authfile,
        JSON.stringify({ auths: { [mirrorFront.host]: auth(mirrorUser), [upstreamFront.host]: auth(alice) } }),
      );
      // The mirror has no blobs of attack/fallback for an authenticated client.
      mirrorFront.setRule((r) =>
        r.path.startsWith('/v2/attack/fallback/blobs/') && r.headers.authorization !== undefined
          ? fault.notFound()
          : undefined,
      );
      // kimg pull's own flags and credential files (its `main`, in this process).
      const pull = (repo: string) =>
        kimgInProcess(
          [
            'pull',
            '-q',
            '--hosts-dir',
            hostsDir,
            '--authfile',
            authfile,
            '--store',
            join(tmp.path, 'stores', `s13-${repo.slice(7)}`),
            `${upstreamFront.host}/${repo}:v1`,
          ],
          isolatedEnv(tmp.path),
        );
      const [served, fellBack] = await Promise.all([pull('attack/mirrored'), pull('attack/fallback')]);
      assert.equal(served.status, 0, served.stderr);
      assert.equal(fellBack.status, 0, fellBack.stderr);
      const authorizations = (p: FaultProxy, repo: string) => [
        ...new Set(
          p.requests
            .filter((r) => r.path.startsWith(`/v2/${repo}/`))
            .map((r) => r.headers.authorization)
            .filter((a) => a !== undefined),
        ),
      ];
      assert.deepEqual(authorizations(mirrorFront, 'attack/mirrored'), [basicHeader(mirrorUser)]);
      assert.equal(
        upstreamFront.requests.filter((r) => r.path.startsWith('/v2/attack/mirrored/')).length,
        0,
        'the upstream was asked although the mirror served',
      );
      assert.deepEqual(authorizations(mirrorFront, 'attack/fallback'), [basicHeader(mirrorUser)]);
      assert.deepEqual(authorizations(upstreamFront, 'attack/fallback'), [basicHeader(alice)]);
      assert.ok(
        upstreamFront.requests.some((r) => r.path.startsWith('/v2/attack/fallback/blobs/')),
        'the blobs came from the upstream',
      );
      for (const repo of ['mirrored', 'fallback']) {
        await assertStoreSound(join(tmp.path, 'stores', `s13-${repo}`), {
          known,
          image: { name: `${upstreamFront.host}/attack/${repo}:v1`, recorded: true },
        });
      }
    });
  });

  describe('S14, S15: layer and config content is data', () => {
    test(
      'a gzip bomb layer (16 MB inflating to 16 GiB) is stored as it came, never inflated',
      { timeout: 120_000 },
      async () => {
        // One gzip member of 256 MiB of zeros, repeated: a valid stream 64 × larger inflated.
        const member = await new Promise<Buffer>((resolve, reject) => {
          const gzip = createGzip({ level: 9 });
          const chunks: Buffer[] = [];
          gzip
            .on('data', (c: Buffer) => chunks.push(c))
            .on('end', () => resolve(Buffer.concat(chunks)))
            .on('error', reject);
          const zeros = Buffer.alloc(MiB);
          let left = 256;
          const write = (): void => {
            while (left > 0) {
              left--;
              if (!gzip.write(zeros)) {
                gzip.once('drain', write);
                return;
              }
            }
            gzip.end();
          };
          write();
        });
        const bomb = Buffer.concat(Array.from({ length: 64 }, () => member));
        const bombLayer = { mediaType: OCI_LAYER, ...(await uploadBlob(registry.url, 'attack/bomb', bomb)) };
        // The config claims a diff_id the layer cannot be checked against without inflating it.
        const bombConfig = {
          mediaType: OCI_CONFIG,
          ...(await uploadBlob(
            registry.url,
            'attack/bomb',
            Buffer.from(
              JSON.stringify({
                architecture: 'amd64',
                os: 'linux',
                rootfs: { type: 'layers', diff_ids: [sha256('not checked')] },
              }),
            ),
          )),
        };
        await putManifest(registry.url, 'attack/bomb', 'v1', {
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: bombConfig,
          layers: [bombLayer],
        });
        const { puller, dir } = newPuller();
        await puller.pull(ref('attack/bomb', 'v1'));
        const store = await puller.store();
        assert.deepEqual(await readFile(store.blobPath(bombLayer.digest)), bomb);
        assert.equal((await store.fsck()).ok, true);
        const inspected = await kimgInProcess(
          ['inspect', '--store', dir, ref('attack/bomb', 'v1')],
          isolatedEnv(tmp.path),
        );
        assert.equal(inspected.status, 0, inspected.stderr);
      },
    );

    test('a hostile config is stored and shown as data: no prototype pollution, no command run, capped when read', async () => {
      const hostileConfig = `{"architecture":"amd64","os":"linux","__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted2":"yes"}},"config":{"Entrypoint":["/bin/sh","-c","touch ${join(tmp.path, 'pwned')}"],"Env":["LD_PRELOAD=/evil.so"],"User":"0"},"rootfs":{"type":"layers","diff_ids":"not-an-array"},"history":"x"}`;
      const cfg = {
        mediaType: OCI_CONFIG,
        ...(await uploadBlob(registry.url, 'attack/config', Buffer.from(hostileConfig))),
      };
      const oversized = {
        mediaType: OCI_CONFIG,
        ...(await uploadBlob(registry.url, 'attack/config', Buffer.from(`{"padding":"${' '.repeat(8 * MiB)}"}`))),
      };
      const realLayers = await Promise.all(
        layers.map(async (l) => ({
          mediaType: l.mediaType,
          ...(await uploadBlob(registry.url, 'attack/config', await readFile(base.blobPath(l.digest)))),
        })),
      );
      await putManifest(registry.url, 'attack/config', 'v1', {
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: cfg,
        layers: realLayers,
      });
      await putManifest(registry.url, 'attack/config', 'big', {
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: oversized,
        layers: realLayers,
      });
      const { puller, dir } = newPuller();
      await puller.pull(ref('attack/config', 'v1'));
      await puller.pull(ref('attack/config', 'big'));
      const shown = await kimgInProcess(
        ['inspect', '-o', 'json', '--store', dir, ref('attack/config', 'v1')],
        isolatedEnv(tmp.path),
      );
      assert.equal(shown.status, 0, shown.stderr);
      const output = JSON.parse(shown.stdout) as { config: Record<string, unknown> };
      assert.deepEqual(output.config.config, {
        Entrypoint: ['/bin/sh', '-c', `touch ${join(tmp.path, 'pwned')}`],
        Env: ['LD_PRELOAD=/evil.so'],
        User: '0',
      });
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
      assert.equal(({} as Record<string, unknown>).polluted2, undefined);
      assert.ok(!(await filesUnder(tmp.path)).includes('pwned'));
      const capped = await kimgInProcess(
        ['inspect', '--store', dir, ref('attack/config', 'big')],
        isolatedEnv(tmp.path),
      );
      assert.equal(capped.status, 1);
      assert.match(capped.stderr, /more than the limit of 8388608 \(ErrBlobTooLarge\)/);
      assert.equal((await (await puller.store()).fsck()).ok, true);
    });
  });

  describe('R6: a registry with every known quirk', () => {
    test('HEAD 405, a Content-Type with parameters, relative redirects for blobs: the pull succeeds verified', async () => {
      proxy.setRule((r) => {
        if (!r.path.startsWith('/v2/attack/base/')) return undefined;
        if (r.method === 'HEAD') return fault.methodNotAllowed();
        if (r.path.includes('/manifests/'))
          return fault.forgeHeader('content-type', `${base.mediaType}; charset=utf-8`);
        if (r.count === 1) return fault.redirect(`./${r.path.slice(r.path.lastIndexOf('/') + 1)}?hop=1`);
        return undefined;
      });
      const { puller, dir } = newPuller();
      const result = await puller.pull(ref('attack/base', 'v1'));
      assert.equal(result.descriptor.digest, base.digest);
      assert.equal(proxy.requests.filter((r) => r.url.endsWith('?hop=1')).length, 3);
      await assertStoreSound(dir, { known, image: { name: ref('attack/base', 'v1'), recorded: true } });
    });
  });
});
