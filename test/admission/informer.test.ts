// `secretSource: informer`: list + watch of pull Secrets and ServiceAccounts. No kube-apiserver
// can run here (docs/semantics.md testing §6), so a small HTTPS server speaks the list/watch protocol:
// paged lists with resourceVersion, watch streams of ADDED/MODIFIED/DELETED/BOOKMARK events, and
// a 410 Gone that forces a relist. It checks the bearer token on every call.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SecretInformer } from '../../src/admission/index.ts';
import {
  createCertificateAuthority,
  issueCertificate,
  makeTempDir,
  requireTools,
  type TempDir,
} from '../harness/index.ts';

const skip = requireTools(['openssl']);

type Obj = {
  kind: string;
  type?: string;
  metadata: { namespace: string; name: string; resourceVersion?: string };
  [k: string]: unknown;
};

class FakeApiServer {
  server!: Server;
  objects = new Map<string, Obj>();
  watchers = new Set<{ kind: string; type?: string; res: ServerResponse }>();
  lists = 0;
  unauthorized = 0;
  rv = 10;

  key(o: Obj): string {
    return `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`;
  }

  async start(cert: string, key: string, token: string): Promise<number> {
    this.server = createServer({ cert, key }, (req, res) => {
      if (req.headers.authorization !== `Bearer ${token}`) {
        this.unauthorized++;
        res.writeHead(401).end();
        return;
      }
      const url = new URL(req.url ?? '/', 'https://x');
      const kind =
        url.pathname === '/api/v1/secrets'
          ? 'Secret'
          : url.pathname === '/api/v1/serviceaccounts'
            ? 'ServiceAccount'
            : undefined;
      if (kind === undefined) {
        res.writeHead(404).end();
        return;
      }
      const type = url.searchParams.get('fieldSelector')?.replace(/^type=/, '');
      if (url.searchParams.get('watch') === '1') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(
          `${JSON.stringify({ type: 'BOOKMARK', object: { kind, metadata: { resourceVersion: String(this.rv) } } })}\n`,
        );
        const watcher = { kind, ...(type !== undefined && { type }), res };
        this.watchers.add(watcher);
        res.on('close', () => this.watchers.delete(watcher));
        return;
      }
      this.lists++;
      const items = [...this.objects.values()]
        .filter((o) => o.kind === kind && (type === undefined || o.type === type))
        .map(({ kind: _kind, ...rest }) => rest);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          kind: `${kind}List`,
          apiVersion: 'v1',
          metadata: { resourceVersion: String(this.rv) },
          items,
        }),
      );
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  emit(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: Obj): void {
    this.rv++;
    object.metadata.resourceVersion = String(this.rv);
    if (type === 'DELETED') this.objects.delete(this.key(object));
    else this.objects.set(this.key(object), object);
    for (const w of this.watchers) {
      if (w.kind === object.kind && (w.type === undefined || w.type === object.type))
        w.res.write(`${JSON.stringify({ type, object })}\n`);
    }
  }

  gone(): void {
    for (const w of this.watchers)
      w.res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } })}\n`);
  }

  async stop(): Promise<void> {
    for (const w of this.watchers) w.res.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function secret(namespace: string, name: string, type = 'kubernetes.io/dockerconfigjson'): Obj {
  return {
    kind: 'Secret',
    type,
    metadata: { namespace, name },
    data: { '.dockerconfigjson': Buffer.from('{"auths":{"r.example":{"auth":"dTpw"}}}').toString('base64') },
  };
}

async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('Secret informer (list + watch)', { skip }, () => {
  let temp: TempDir;
  let api: FakeApiServer;
  let informer: SecretInformer;

  before(async () => {
    temp = await makeTempDir('kimg-informer-');
    const ca = await createCertificateAuthority(temp.path);
    const leaf = await issueCertificate(ca, { sans: ['127.0.0.1'] });
    await writeFile(join(temp.path, 'token'), 'sa-token\n');
    api = new FakeApiServer();
    api.objects.set('Secret/team/regcred', secret('team', 'regcred'));
    api.objects.set('Secret/team/old', secret('team', 'old', 'kubernetes.io/dockercfg'));
    api.objects.set('ServiceAccount/team/default', {
      kind: 'ServiceAccount',
      metadata: { namespace: 'team', name: 'default' },
      imagePullSecrets: [{ name: 'regcred' }],
    });
    const port = await api.start(leaf.certPem, leaf.keyPem, 'sa-token');
    informer = await SecretInformer.start({
      server: `https://127.0.0.1:${port}`,
      tokenFile: join(temp.path, 'token'),
      caPem: ca.certPem,
      backoffMs: 20,
    });
  });

  after(async () => {
    await informer?.close();
    await api?.stop();
    await temp?.remove();
  });

  test('lists both pull-secret types and service accounts, then reports synced', async () => {
    await eventually(() => informer.synced, 'the first listing');
    assert.ok(informer.getSecret('team', 'regcred'));
    assert.ok(informer.getSecret('team', 'old'));
    assert.deepEqual(informer.getServiceAccount('team', 'default')?.imagePullSecrets, [{ name: 'regcred' }]);
    assert.equal(informer.keyringOf('team', 'regcred')?.lookup('r.example/app').length, 1);
    assert.equal(api.unauthorized, 0);
  });

  test('follows watch events: added, modified, deleted', async () => {
    await eventually(() => api.watchers.size === 3, 'three watches');
    api.emit('ADDED', secret('team', 'new'));
    await eventually(() => informer.getSecret('team', 'new') !== undefined, 'the added Secret');
    api.emit('MODIFIED', {
      kind: 'ServiceAccount',
      metadata: { namespace: 'team', name: 'default' },
      imagePullSecrets: [{ name: 'new' }],
    });
    await eventually(
      () => informer.getServiceAccount('team', 'default')?.imagePullSecrets?.[0]?.name === 'new',
      'the modified ServiceAccount',
    );
    api.emit('DELETED', secret('team', 'regcred'));
    await eventually(() => informer.getSecret('team', 'regcred') === undefined, 'the deleted Secret');
  });

  test('relists after 410 Gone, dropping what disappeared meanwhile', async () => {
    await eventually(() => api.watchers.size === 3, 'three watches');
    const lists = api.lists;
    api.objects.delete('Secret/team/new');
    api.objects.set('Secret/team/later', secret('team', 'later'));
    api.gone();
    await eventually(() => api.lists >= lists + 3, 'relists');
    await eventually(
      () => informer.getSecret('team', 'later') !== undefined && informer.getSecret('team', 'new') === undefined,
      'the relisted state',
    );
    assert.ok(informer.getSecret('team', 'old'), 'the other stream keeps its objects');
  });
});
