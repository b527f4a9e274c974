// `kimg webhook manifests` for a deployable webhook (issue 14 item 11, issue 11 item 8):
// `--cert-manager` prints a Certificate and an Issuer and the CA-injection annotation instead of
// a private key, `--client-ca-file` mounts the apiserver's client CA and turns verification on,
// and the NetworkPolicy admits only the HTTPS port (and only `--allow-from` sources). kubectl is
// not installed here, so the objects are checked by parsing them against the fields the API
// requires.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseYamlValues } from '../../src/yaml/index.ts';
import { createCertificateAuthority, makeTempDir, requireTools, type TempDir } from '../harness/index.ts';
import { runCli } from '../cli/run-cli.ts';

const skip = requireTools(['openssl']);
const IMAGE = `registry.example.com/kimg@sha256:${'e'.repeat(64)}`;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'MutatingWebhookConfiguration',
  'ValidatingWebhookConfiguration',
]);

type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  [k: string]: unknown;
};

/** Parses the stream and checks what every object needs to be applied. */
function objectsOf(stdout: string): Obj[] {
  const docs = parseYamlValues(stdout, 'manifests') as Obj[];
  for (const o of docs) {
    assert.match(o.apiVersion, /^([a-z0-9.-]+\/)?v\d+((alpha|beta)\d+)?$/, JSON.stringify(o));
    assert.match(o.kind, /^[A-Z][A-Za-z]+$/);
    assert.match(o.metadata.name, DNS_SUBDOMAIN, `${o.kind} name`);
    assert.equal(o.metadata.namespace === undefined, CLUSTER_SCOPED.has(o.kind), `${o.kind} namespace`);
  }
  return docs;
}

const byKind = (docs: readonly Obj[], kind: string): Obj => {
  const found = docs.find((d) => d.kind === kind);
  assert.ok(found, `no ${kind}`);
  return found;
};

type Deployment = {
  spec: {
    template: {
      spec: {
        containers: { args: string[]; volumeMounts: { name: string; mountPath: string }[] }[];
        volumes: { name: string; secret?: { secretName: string }; configMap?: { name: string } }[];
      };
    };
  };
};

describe('kimg webhook manifests: cert-manager, client CA, NetworkPolicy', { skip }, () => {
  let tmp: TempDir;
  before(async () => {
    tmp = await makeTempDir('kimg-deploy-manifests-');
  });
  after(() => tmp?.remove());

  test('--cert-manager: Certificate and self-signed Issuer, inject-ca-from, no private key', async () => {
    const result = await runCli(['webhook', 'manifests', '--image', IMAGE, '--cert-manager', '--namespace', 'pin']);
    assert.equal(result.status, 0, result.stderr);
    assert.doesNotMatch(result.stdout, /PRIVATE KEY/);
    const docs = objectsOf(result.stdout);
    assert.ok(!docs.some((d) => d.kind === 'Secret'), 'no Secret: cert-manager writes it');
    const issuer = byKind(docs, 'Issuer') as Obj & { spec: unknown };
    assert.equal(issuer.apiVersion, 'cert-manager.io/v1');
    assert.deepEqual(issuer.spec, { selfSigned: {} });
    const certificate = byKind(docs, 'Certificate') as Obj & {
      spec: { secretName: string; dnsNames: string[]; issuerRef: { kind: string; name: string; group: string } };
    };
    assert.equal(certificate.apiVersion, 'cert-manager.io/v1');
    assert.equal(certificate.metadata.namespace, 'pin');
    assert.deepEqual(certificate.spec.dnsNames, [
      'kimg-webhook',
      'kimg-webhook.pin',
      'kimg-webhook.pin.svc',
      'kimg-webhook.pin.svc.cluster.local',
    ]);
    assert.deepEqual(certificate.spec.issuerRef, {
      group: 'cert-manager.io',
      kind: 'Issuer',
      name: issuer.metadata.name,
    });
    // The Deployment mounts the Secret cert-manager writes.
    const deployment = byKind(docs, 'Deployment') as unknown as Deployment;
    assert.ok(deployment.spec.template.spec.volumes.some((v) => v.secret?.secretName === certificate.spec.secretName));
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      const config = byKind(docs, kind) as Obj & { webhooks: { clientConfig: Record<string, unknown> }[] };
      assert.equal(config.metadata.annotations?.['cert-manager.io/inject-ca-from'], `pin/${certificate.metadata.name}`);
      assert.equal(config.webhooks[0]?.clientConfig['caBundle'], undefined, 'the injector fills caBundle in');
    }

    const existing = await runCli([
      'webhook',
      'manifests',
      '--image',
      IMAGE,
      '--cert-manager',
      '--cert-manager-issuer',
      'ClusterIssuer/corp-ca',
    ]);
    assert.equal(existing.status, 0, existing.stderr);
    const withIssuer = objectsOf(existing.stdout);
    assert.ok(!withIssuer.some((d) => d.kind === 'Issuer'));
    assert.deepEqual(
      (byKind(withIssuer, 'Certificate') as unknown as { spec: { issuerRef: unknown } }).spec.issuerRef,
      {
        group: 'cert-manager.io',
        kind: 'ClusterIssuer',
        name: 'corp-ca',
      },
    );
  });

  test('--client-ca-file mounts the CA and serves with it; --allow-from narrows the NetworkPolicy', async () => {
    const ca = await createCertificateAuthority(join(tmp.path, 'client-ca'), { commonName: 'apiserver client CA' });
    const result = await runCli([
      'webhook',
      'manifests',
      '--image',
      IMAGE,
      '--cert-manager',
      '--client-ca-file',
      ca.certFile,
      '--allow-from',
      '10.0.0.0/24',
      '192.0.2.10/32',
    ]);
    assert.equal(result.status, 0, result.stderr);
    const docs = objectsOf(result.stdout);
    const configMap = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === 'kimg-webhook-client-ca') as
      (Obj & { data: Record<string, string> }) | undefined;
    assert.equal(configMap?.data['ca.crt'], ca.certPem);
    const container = (byKind(docs, 'Deployment') as unknown as Deployment).spec.template.spec.containers[0];
    assert.ok(container);
    const flag = container.args.indexOf('--client-ca-file');
    assert.ok(flag > 0);
    const mount = container.volumeMounts.find((m) => m.name === 'client-ca');
    assert.equal(container.args[flag + 1], `${mount?.mountPath}/ca.crt`);
    const policy = byKind(docs, 'NetworkPolicy') as Obj & { spec: Record<string, unknown> };
    assert.equal(policy.apiVersion, 'networking.k8s.io/v1');
    assert.deepEqual(policy.spec, {
      podSelector: {
        matchLabels: { 'app.kubernetes.io/name': 'kimg-webhook', 'app.kubernetes.io/instance': 'kimg-webhook' },
      },
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [{ ipBlock: { cidr: '10.0.0.0/24' } }, { ipBlock: { cidr: '192.0.2.10/32' } }],
          ports: [{ protocol: 'TCP', port: 8443 }],
        },
      ],
    });
  });

  test('the default NetworkPolicy opens only the HTTPS port; --no-network-policy leaves it out; bad values exit 2', async () => {
    const plain = await runCli(['webhook', 'manifests', '--image', IMAGE, '--cert-manager']);
    const policy = byKind(objectsOf(plain.stdout), 'NetworkPolicy') as Obj & { spec: { ingress: unknown } };
    assert.deepEqual(policy.spec.ingress, [{ ports: [{ protocol: 'TCP', port: 8443 }] }]);
    const none = await runCli(['webhook', 'manifests', '--image', IMAGE, '--cert-manager', '--no-network-policy']);
    assert.ok(!objectsOf(none.stdout).some((d) => d.kind === 'NetworkPolicy'));

    const notCa = join(tmp.path, 'not-ca.pem');
    await writeFile(notCa, 'nothing here\n');
    for (const [args, reason] of [
      [['--cert-manager', '--allow-from', '10.0.0.0/33'], /CIDR/],
      [['--cert-manager', '--allow-from', 'apiserver'], /CIDR/],
      [['--cert-manager-issuer', 'Issuer/x'], /needs --cert-manager/],
      [['--cert-manager', '--cert-manager-issuer', 'Vault/x'], /Issuer\/NAME or ClusterIssuer\/NAME/],
      [['--cert-manager', '--client-ca-file', notCa], /no PEM certificate/],
    ] as const) {
      const r = await runCli(['webhook', 'manifests', '--image', IMAGE, ...args]);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, reason);
      assert.equal(r.stdout, '');
    }
  });
});
