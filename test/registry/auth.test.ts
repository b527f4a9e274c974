// Authentication against real registries: htpasswd (Basic) and token auth with a real token
// server; token single-flight and bounded re-auth (R1), POST → GET fallback, identity tokens,
// the realm policy (S4), credentials per contacted host (S13), no credentials across origins on
// redirect (S5) and no secrets in errors or events (S12).
import assert from 'node:assert/strict';
import { lookup as dnsLookup } from 'node:dns';
import http from 'node:http';
import type { AddressInfo, LookupFunction } from 'node:net';
import { after, before, beforeEach, describe, test } from 'node:test';
import { isKimgError } from '../../src/errors/index.ts';
import {
  RegistryClient,
  RegistryError,
  type Credential,
  type RegistryClientOptions,
} from '../../src/registry/index.ts';
import {
  basicAuth,
  buildImage,
  fault,
  httpRequest,
  pushImage,
  requireTools,
  startFaultProxy,
  startRegistry,
  startTokenServer,
  type BuiltImage,
  type BuiltLayer,
  type FaultProxy,
  type RunningRegistry,
  type TokenServer,
} from '../harness/index.ts';
import { FakeClock, MemorySink, captureEvents, dumpError, readBlob } from './helpers.ts';

const skip = requireTools(['docker-registry', 'skopeo', 'htpasswd']);
const PATH = 'test/auth';

/** Resolves `*.test` names to 127.0.0.1 (the client's resolver hook), others normally. */
const testLookup: LookupFunction = (hostname, options, callback) => {
  if (hostname.endsWith('.test')) {
    if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
    else callback(null, '127.0.0.1', 4);
    return;
  }
  dnsLookup(hostname, options, callback);
};

function assertNoSecrets(text: string, secrets: readonly string[]): void {
  for (const secret of secrets) {
    assert.ok(!text.includes(secret), `a secret leaked: …${secret.slice(0, 6)}…`);
    assert.ok(!text.includes(Buffer.from(secret).toString('base64')), 'a base64 secret leaked');
  }
}

describe('registry client authentication', { skip }, () => {
  let image: BuiltImage;
  let layer: BuiltLayer;
  let layerBytes: Buffer;
  const clients: RegistryClient[] = [];
  const client = (options: RegistryClientOptions): RegistryClient => {
    const c = new RegistryClient({ clock: new FakeClock(), ...options });
    clients.push(c);
    return c;
  };
  const basicHeader = (user: string, password: string) =>
    `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

  before(async () => {
    image = await buildImage({ layers: [700_000], seed: 'auth' });
    const l = image.images[0]?.layers[0];
    assert.ok(l);
    layer = l;
    layerBytes = await readBlob(image.blobPath(layer.digest));
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await image?.remove();
  });

  describe('htpasswd (Basic)', () => {
    const alice = { user: 'alice', password: 'S3cret-Basic-Pass' };
    let registry: RunningRegistry;
    let proxy: FaultProxy;
    const creds = (credential: Credential | undefined) => async () => credential;
    const endpoints = () => [{ baseUrl: proxy.url, insecure: true }];

    before(async () => {
      registry = await startRegistry({ htpasswd: [alice] });
      proxy = await startFaultProxy({ upstream: registry.url });
      await pushImage(image, registry, `${PATH}:v1`, { creds: alice });
    });
    beforeEach(() => proxy.reset());
    after(async () => {
      await proxy?.stop();
      await registry?.stop();
    });

    test("pulls with the host's username and password", async () => {
      const hosts: string[] = [];
      const c = client({
        endpoints,
        credentials: async (host) => (
          hosts.push(host),
          { kind: 'basic', username: alice.user, password: alice.password }
        ),
      });
      const resolved = await c.resolve({ registry: 'basic.test', path: PATH }, 'v1');
      assert.equal(resolved.descriptor.digest, image.digest);
      const sink = new MemorySink();
      await c.fetchBlob({ registry: 'basic.test', path: PATH }, layer, sink);
      assert.deepEqual(sink.bytes(), layerBytes);
      assert.deepEqual([...new Set(hosts)], [proxy.host]);
      // Learned once, then sent up front.
      assert.deepEqual(
        proxy.requests.map((r) => r.status),
        [401, 200, 200],
      );
      assert.equal(proxy.requests[2]?.headers.authorization, basicHeader(alice.user, alice.password));
    });

    test('a wrong password → ErrUnauthorized after one retry, without the password anywhere', async () => {
      const wrong = 'Wrong-Password-123';
      const { onEvent, json } = captureEvents();
      const c = client({
        endpoints,
        onEvent,
        credentials: creds({ kind: 'basic', username: alice.user, password: wrong }),
      });
      const err = await c.resolve({ registry: 'basic.test', path: PATH }, 'v1').catch((e: unknown) => e);
      assert.ok(err instanceof RegistryError && err.code === 'ErrUnauthorized', String(err));
      assert.equal(proxy.requests.length, 2);
      assertNoSecrets(dumpError(err) + json(), [wrong, basicHeader(alice.user, wrong)]);
    });

    test('no credentials → ErrUnauthorized after a single request', async () => {
      await assert.rejects(
        client({ endpoints }).resolve({ registry: 'basic.test', path: PATH }, 'v1'),
        (err: unknown) => isKimgError(err, 'ErrUnauthorized'),
      );
      assert.equal(proxy.requests.length, 1);
    });

    describe('redirects (S5)', () => {
      let storage: http.Server;
      let storageRequests: http.IncomingHttpHeaders[];
      let storagePort: number;
      let otherPort: FaultProxy;

      before(async () => {
        storageRequests = [];
        storage = http.createServer((req, res) => {
          storageRequests.push(req.headers);
          if (!req.url?.includes('X-Amz-Signature=sig')) {
            res.writeHead(403).end();
            return;
          }
          res.writeHead(200, { 'content-length': String(layerBytes.length) }).end(layerBytes);
        });
        await new Promise<void>((resolve) => storage.listen(0, '127.0.0.1', resolve));
        storagePort = (storage.address() as AddressInfo).port;
        otherPort = await startFaultProxy({ upstream: registry.url });
      });
      after(async () => {
        await otherPort?.stop();
        await new Promise<void>((resolve) => storage.close(() => resolve()));
      });
      beforeEach(() => {
        storageRequests.length = 0;
        otherPort.reset();
      });
      const withCreds = () =>
        client({ endpoints, credentials: creds({ kind: 'basic', username: alice.user, password: alice.password }) });

      for (const host of ['127.0.0.1', 'localhost']) {
        test(`a presigned redirect to ${host}:<other port> gets no Authorization and its query intact`, async () => {
          proxy.setRule((r) =>
            r.path.includes('/blobs/')
              ? fault.redirect(
                  `http://${host}:${storagePort}/bucket/blob?X-Amz-Signature=sig&X-Amz-Credential=AKIAEXAMPLE`,
                )
              : undefined,
          );
          const sink = new MemorySink();
          await withCreds().fetchBlob({ registry: 'basic.test', path: PATH }, layer, sink);
          assert.deepEqual(sink.bytes(), layerBytes);
          assert.equal(storageRequests.length, 1);
          assert.equal(storageRequests[0]?.authorization, undefined);
          assert.equal(storageRequests[0]?.cookie, undefined);
        });
      }

      test('a 401 from the redirect target is not answered with the registry credentials', async () => {
        proxy.setRule((r) => (r.path.includes('/blobs/') ? fault.redirect(`${otherPort.url}${r.url}`) : undefined));
        const err = await withCreds()
          .fetchBlob({ registry: 'basic.test', path: PATH }, layer, new MemorySink())
          .catch((e: unknown) => e);
        assert.ok(err instanceof RegistryError && err.code === 'ErrUnauthorized', String(err));
        assert.equal(err.host, otherPort.host);
        assert.equal(otherPort.requests.length, 1);
        assert.equal(otherPort.requests[0]?.headers.authorization, undefined);
      });

      test("errors never show a presigned URL's query", async () => {
        proxy.setRule((r) =>
          r.path.includes('/blobs/')
            ? fault.redirect(`http://127.0.0.1:${storagePort}/bucket/blob?X-Amz-Credential=AKIAEXAMPLE`)
            : undefined,
        );
        const { onEvent, json } = captureEvents();
        const c = client({
          endpoints,
          onEvent,
          credentials: creds({ kind: 'basic', username: alice.user, password: alice.password }),
        });
        const err = await c
          .fetchBlob({ registry: 'basic.test', path: PATH }, layer, new MemorySink())
          .catch((e: unknown) => e);
        assert.ok(err instanceof RegistryError && err.code === 'ErrDenied', String(err));
        assertNoSecrets(dumpError(err) + json(), ['AKIAEXAMPLE', alice.password]);
      });
    });
  });

  describe('token auth', () => {
    const bob = { user: 'bob', password: 'T0ken-Server-Pass' };
    let tokens: TokenServer;
    let registry: RunningRegistry;
    let proxy: FaultProxy;
    let tokenProxy: FaultProxy;
    const endpoints = () => [{ baseUrl: proxy.url, insecure: true }];
    const bobCreds = async (): Promise<Credential> => ({ kind: 'basic', username: bob.user, password: bob.password });
    const REPO = { registry: 'token.test', path: PATH };

    before(async () => {
      tokens = await startTokenServer({ users: { [bob.user]: bob.password } });
      registry = await startRegistry({ token: tokens });
      proxy = await startFaultProxy({ upstream: registry.url });
      tokenProxy = await startFaultProxy({ upstream: tokens.url });
      await pushImage(image, registry, `${PATH}:v1`, { creds: bob });
    });
    beforeEach(() => {
      proxy.reset();
      tokenProxy.reset();
      tokens.requests.length = 0;
    });
    after(async () => {
      await proxy?.stop();
      await tokenProxy?.stop();
      await registry?.stop();
      await tokens?.stop();
    });

    test('anonymous pull: one token for resolve, manifest and blob', async () => {
      const { events, onEvent } = captureEvents();
      const c = client({ endpoints, onEvent });
      const resolved = await c.resolve(REPO, 'v1');
      await c.getManifest(REPO, resolved.descriptor.digest);
      const sink = new MemorySink();
      await c.fetchBlob(REPO, layer, sink);
      assert.deepEqual(sink.bytes(), layerBytes);
      assert.equal(tokens.requests.length, 1);
      assert.equal(tokens.requests[0]?.method, 'GET');
      assert.equal(tokens.requests[0]?.headers.authorization, undefined);
      assert.deepEqual(tokens.requests[0]?.query.scope, [`repository:${PATH}:pull`]);
      assert.deepEqual(tokens.requests[0]?.query.service, [tokens.service]);
      assert.equal(events.filter((e) => e.type === 'tokenFetched').length, 1);
    });

    test('16 parallel blob fetches on a fresh client → 1 token request (R1)', async () => {
      const c = client({ endpoints });
      const sinks = Array.from({ length: 16 }, () => new MemorySink());
      await Promise.all(sinks.map((sink) => c.fetchBlob(REPO, layer, sink)));
      assert.equal(tokens.requests.length, 1);
      for (const sink of sinks) assert.equal(sink.offset, layer.size);
    });

    test('a password goes by OAuth2 POST with client_id=kimg, never in a URL', async () => {
      await client({ endpoints, credentials: bobCreds }).resolve(REPO, 'v1');
      assert.equal(tokens.requests.length, 1);
      const request = tokens.requests[0];
      assert.equal(request?.method, 'POST');
      assert.equal(request?.form?.grant_type, 'password');
      assert.equal(request?.form?.client_id, 'kimg');
      assert.equal(request?.form?.scope, `repository:${PATH}:pull`);
      assert.equal(request?.user, bob.user);
      assert.ok(!request?.url.includes(bob.password));
    });

    test('POST refused (404) → GET with Basic, and GET directly from then on', async () => {
      proxy.reset();
      const viaProxy = await startFaultProxy({ upstream: registry.url, rewriteRealm: () => `${tokenProxy.url}/token` });
      try {
        tokenProxy.setRule((r) => (r.method === 'POST' ? fault.notFound() : undefined));
        const c = client({ endpoints: () => [{ baseUrl: viaProxy.url, insecure: true }], credentials: bobCreds });
        await c.resolve(REPO, 'v1');
        await c.resolve({ ...REPO, path: 'test/other' }, 'v1').catch(() => undefined); // another scope → another token
        assert.deepEqual(
          tokenProxy.requests.map((r) => r.method),
          ['POST', 'GET', 'GET'],
        );
        assert.equal(tokenProxy.requests[1]?.headers.authorization, basicHeader(bob.user, bob.password));
      } finally {
        await viaProxy.stop();
      }
    });

    test('an identity token is exchanged with grant_type=refresh_token', async () => {
      const offline = await httpRequest(
        `${tokens.url}?service=${tokens.service}&offline_token=true&scope=repository:${PATH}:pull`,
        {
          headers: { authorization: basicAuth(bob.user, bob.password) },
        },
      );
      const refresh = (JSON.parse(offline.body.toString('utf8')) as { refresh_token: string }).refresh_token;
      tokens.requests.length = 0;
      const c = client({ endpoints, credentials: async () => ({ kind: 'identityToken', token: refresh }) });
      const sink = new MemorySink();
      await c.fetchBlob(REPO, layer, sink);
      assert.equal(sink.offset, layer.size);
      assert.equal(tokens.requests[0]?.method, 'POST');
      assert.equal(tokens.requests[0]?.form?.grant_type, 'refresh_token');
      assert.equal(tokens.requests[0]?.user, bob.user);
    });

    test('wrong credentials at the token server → ErrUnauthorized with nothing secret in it', async () => {
      const wrong = 'Not-The-Password-9';
      const { onEvent, json } = captureEvents();
      const c = client({
        endpoints,
        onEvent,
        credentials: async () => ({ kind: 'basic', username: bob.user, password: wrong }),
      });
      const err = await c.resolve(REPO, 'v1').catch((e: unknown) => e);
      assert.ok(err instanceof RegistryError && err.code === 'ErrUnauthorized', String(err));
      assert.match(err.message, /token\.test\/test\/auth:v1/);
      assertNoSecrets(dumpError(err) + json(), [wrong, basicHeader(bob.user, wrong)]);
    });

    test('a registry that rejects every token → ≤ 2 token requests, then ErrUnauthorized (R1)', async () => {
      proxy.setRule((r) =>
        r.path.startsWith(`/v2/${PATH}/`)
          ? fault.unauthorized(
              `Bearer realm="${tokens.url}",service="${tokens.service}",scope="repository:${PATH}:pull",error="invalid_token"`,
            )
          : undefined,
      );
      const { onEvent, json } = captureEvents();
      const err = await client({ endpoints, onEvent })
        .fetchBlob(REPO, layer, new MemorySink())
        .catch((e: unknown) => e);
      assert.ok(err instanceof RegistryError && err.code === 'ErrUnauthorized', String(err));
      assert.ok(tokens.requests.length <= 2, `${tokens.requests.length} token requests`);
      assert.equal(proxy.requests.length, 3);
      assertNoSecrets(
        dumpError(err) + json(),
        tokens.issued.map((t) => t.token),
      );
    });

    test("insufficient_scope → the challenge's scope is merged into the next token request", async () => {
      proxy.setRule((r) =>
        r.method === 'HEAD' && r.count === 2
          ? fault.unauthorized(
              `Bearer realm="${tokens.url}",service="${tokens.service}",scope="repository:${PATH}:pull,push",error="insufficient_scope"`,
            )
          : undefined,
      );
      const c = client({ endpoints });
      await c.resolve(REPO, 'v1');
      assert.deepEqual(
        tokens.requests.map((r) => r.query.scope),
        [[`repository:${PATH}:pull`], [`repository:${PATH}:pull,push`]],
      );
    });

    test("a 401 without a challenge uses the ping's challenge (GCR quirk)", async () => {
      proxy.setRule((r) => (r.method === 'HEAD' && r.count === 1 ? fault.status(401) : undefined));
      // One slot per host: the 401 must not hold it while the ping runs.
      const resolved = await client({ endpoints, maxConcurrentPerHost: 1 }).resolve(REPO, 'v1');
      assert.equal(resolved.descriptor.digest, image.digest);
      assert.deepEqual(
        proxy.requests.map((r) => `${r.method} ${r.path} ${r.status}`),
        [`HEAD /v2/${PATH}/manifests/v1 401`, 'GET /v2/ 401', `HEAD /v2/${PATH}/manifests/v1 200`],
      );
    });

    describe('realm policy (S4)', () => {
      let named: FaultProxy | undefined;
      const namedRegistry = async (realm: string) => {
        await named?.stop();
        named = await startFaultProxy({ upstream: registry.url, rewriteRealm: () => realm });
        return [{ baseUrl: `http://registry.test:${named.port}`, insecure: true }];
      };
      after(async () => named?.stop());

      test('a registry named by DNS may not send us to a loopback realm', async () => {
        const eps = await namedRegistry(tokens.url);
        const err = await client({ endpoints: () => eps, lookup: testLookup, credentials: bobCreds })
          .resolve(REPO, 'v1')
          .catch((e: unknown) => e);
        assert.ok(err instanceof RegistryError && err.code === 'ErrRealmRefused', String(err));
        assert.equal(tokens.requests.length, 0);
      });

      for (const realm of [
        'http://169.254.169.254/latest/meta-data',
        'http://10.1.2.3/token',
        'http://[::1]:1/token',
        'http://0.0.0.0:1/token',
      ]) {
        test(`… nor to ${realm}`, async () => {
          const eps = await namedRegistry(realm);
          const { events, onEvent } = captureEvents();
          const err = await client({ endpoints: () => eps, lookup: testLookup, onEvent })
            .resolve(REPO, 'v1')
            .catch((e: unknown) => e);
          assert.ok(err instanceof RegistryError && err.code === 'ErrRealmRefused', String(err));
          assert.equal(events.filter((e) => e.type === 'tokenFetched').length, 0);
        });
      }

      test('a realm on another domain gets no credentials (anonymous token instead)', async () => {
        const eps = await namedRegistry(`http://auth.test:${tokens.host.split(':')[1]}/token`);
        await client({ endpoints: () => eps, lookup: testLookup, credentials: bobCreds }).resolve(REPO, 'v1');
        assert.equal(tokens.requests.length, 1);
        assert.equal(tokens.requests[0]?.method, 'GET');
        assert.equal(tokens.requests[0]?.headers.authorization, undefined);
      });

      test('strict mode refuses a realm name that resolves to loopback', async () => {
        const eps = await namedRegistry(`http://auth.test:${tokens.host.split(':')[1]}/token`);
        const err = await client({ endpoints: () => eps, lookup: testLookup, strictRealmAddresses: true })
          .resolve(REPO, 'v1')
          .catch((e: unknown) => e);
        assert.ok(err instanceof RegistryError && err.code === 'ErrRealmRefused', String(err));
        assert.equal(tokens.requests.length, 0);
      });

      test('an allow-listed realm is accepted and trusted with credentials', async () => {
        const eps = await namedRegistry(tokens.url);
        await client({
          endpoints: () => eps,
          lookup: testLookup,
          credentials: bobCreds,
          realmAllowList: ['127.0.0.1'],
        }).resolve(REPO, 'v1');
        assert.equal(tokens.requests[0]?.user, bob.user);
      });
    });
  });

  describe('credentials per contacted host (S13)', () => {
    const mirrorUser = { user: 'mirror-user', password: 'Mirror-Pass-1' };
    const upstreamUser = { user: 'upstream-user', password: 'Upstream-Pass-2' };
    let mirror: RunningRegistry;
    let upstream: RunningRegistry;
    let mirrorProxy: FaultProxy;
    let upstreamProxy: FaultProxy;
    let asked: string[];
    const options = (): RegistryClientOptions => ({
      endpoints: () => [
        { baseUrl: mirrorProxy.url, insecure: true, mirror: true },
        { baseUrl: upstreamProxy.url, insecure: true },
      ],
      credentials: async (host) => {
        asked.push(host);
        if (host === mirrorProxy.host)
          return { kind: 'basic', username: mirrorUser.user, password: mirrorUser.password };
        if (host === upstreamProxy.host)
          return { kind: 'basic', username: upstreamUser.user, password: upstreamUser.password };
        return undefined;
      },
    });

    before(async () => {
      [mirror, upstream] = await Promise.all([
        startRegistry({ htpasswd: [mirrorUser] }),
        startRegistry({ htpasswd: [upstreamUser] }),
      ]);
      mirrorProxy = await startFaultProxy({ upstream: mirror.url });
      upstreamProxy = await startFaultProxy({ upstream: upstream.url });
      await pushImage(image, mirror, `${PATH}:v1`, { creds: mirrorUser });
      await pushImage(image, upstream, `${PATH}:v1`, { creds: upstreamUser });
    });
    beforeEach(() => {
      asked = [];
      mirrorProxy.reset();
      upstreamProxy.reset();
    });
    after(async () => {
      await mirrorProxy?.stop();
      await upstreamProxy?.stop();
      await mirror?.stop();
      await upstream?.stop();
    });

    const authorizations = (p: FaultProxy) => [
      ...new Set(p.requests.map((r) => r.headers.authorization).filter((a) => a !== undefined)),
    ];

    test('a working mirror serves everything with its own credentials', async () => {
      const c = client(options());
      await c.resolve({ registry: 'docker.io', path: PATH }, 'v1');
      await c.fetchBlob({ registry: 'docker.io', path: PATH }, layer, new MemorySink());
      assert.deepEqual(authorizations(mirrorProxy), [basicHeader(mirrorUser.user, mirrorUser.password)]);
      assert.equal(upstreamProxy.requests.length, 0);
      assert.deepEqual([...new Set(asked)], [mirrorProxy.host]);
    });

    test('a failing mirror falls back to the upstream; each host sees only its own credentials', async () => {
      mirrorProxy.setRule((r) =>
        r.path.includes('/blobs/') && r.headers.authorization !== undefined ? fault.notFound() : undefined,
      );
      const { events, onEvent } = captureEvents();
      const c = client({ ...options(), onEvent });
      const sink = new MemorySink();
      const result = await c.fetchBlob({ registry: 'docker.io', path: PATH }, layer, sink);
      assert.equal(result.endpoint, upstreamProxy.url);
      assert.deepEqual(sink.bytes(), layerBytes);
      assert.deepEqual(authorizations(mirrorProxy), [basicHeader(mirrorUser.user, mirrorUser.password)]);
      assert.deepEqual(authorizations(upstreamProxy), [basicHeader(upstreamUser.user, upstreamUser.password)]);
      assert.deepEqual(
        events.filter((e) => e.type === 'endpointFailed').map((e) => (e.type === 'endpointFailed' ? e.code : '')),
        ['ErrBlobUnknown'],
      );
    });

    test('when every endpoint fails the error names the earlier ones', async () => {
      const c = client(options());
      await assert.rejects(c.resolve({ registry: 'docker.io', path: PATH }, 'nope'), (err: unknown) => {
        assert.ok(err instanceof RegistryError && err.code === 'ErrManifestUnknown');
        assert.deepEqual(err.previousEndpoints, [`${mirrorProxy.url}: ErrManifestUnknown`]);
        return true;
      });
    });
  });
});
