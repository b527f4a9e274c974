/**
 * `kimg webhook manifests` (docs/semantics.md admission §4.17): the Namespace, ServiceAccount (and RBAC when Secrets
 * come from an informer), TLS Secret, ConfigMap, Deployment (two replicas, probes, spread), a
 * PodDisruptionBudget, the Service, a NetworkPolicy, and the Mutating and Validating
 * WebhookConfigurations with their caBundle. Certificates are made with the openssl CLI
 * (node:crypto cannot issue X.509), or by cert-manager: then a Certificate (and a self-signed
 * Issuer) replace the Secret, and cert-manager's CA injector fills in the caBundle, so no
 * private key is ever printed.
 */
import { execFile } from 'node:child_process';
import { isIP } from 'node:net';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KimgError } from '../errors/index.ts';
import type { AdmissionConfig } from './config.ts';
import { podSpecPaths } from './pod-specs.ts';
import { stringifyAll } from './yaml.ts';

const run = promisify(execFile);

export const OPT_IN_LABEL = 'kimg.dev/digest-pinning';

export interface WebhookCertificates {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface WebhookManifestOptions {
  /** The webhook's image (pin it by digest). */
  readonly image: string;
  /** The webhook's namespace (`mutate.ownNamespace`); default from the config, else `kimg-system`. */
  readonly namespace?: string;
  /** Name of the Deployment, Service, … ; default `kimg-webhook`. */
  readonly name?: string;
  readonly replicas?: number;
  /** Container port; default 8443. */
  readonly port?: number;
  /** 1–30; default 10. */
  readonly timeoutSeconds?: number;
  /** Default `Fail` (see the README for the trade-off). */
  readonly failurePolicy?: 'Fail' | 'Ignore';
  /** Default both. */
  readonly mutating?: boolean;
  readonly validating?: boolean;
  /** Add matchConditions so the mutating webhook is not called for objects whose images all carry a digest. */
  readonly matchConditions?: boolean;
  /** The configuration mounted into the pods (its ownNamespace is set to `namespace`). */
  readonly config: AdmissionConfig;
  /** Serving certificates made beforehand (a Secret with the key is printed); exactly one of
   * `certificates` and `certManager`. */
  readonly certificates?: WebhookCertificates;
  /** Let cert-manager issue the serving certificate: a Certificate for the Service's names, from
   * `issuerRef` or else a self-signed Issuer printed with it, and the webhook configurations get
   * `cert-manager.io/inject-ca-from` instead of a caBundle. */
  readonly certManager?: { readonly issuerRef?: { readonly kind: 'Issuer' | 'ClusterIssuer'; readonly name: string } };
  /** PEM CA bundle mounted for `--client-ca-file`: only callers with a client certificate it
   * signed (the apiserver, through its admission kubeconfig) may ask for reviews. */
  readonly clientCaPem?: string;
  /** The NetworkPolicy (default printed): ingress only to the HTTPS port, and only from these
   * CIDRs (the apiserver's addresses) when given. */
  readonly networkPolicy?: { readonly allowFrom?: readonly string[] } | false;
}

/** cert-manager's CA injector reads this annotation (cert-manager.io docs, "CA Injector"). */
export const INJECT_CA_ANNOTATION = 'cert-manager.io/inject-ca-from';

/** `10.0.0.0/8`, `fd00::/8`, `192.0.2.10/32`: what a NetworkPolicy `ipBlock.cidr` takes. */
function isCidr(value: string): boolean {
  const slash = value.indexOf('/');
  if (slash < 0) return false;
  const family = isIP(value.slice(0, slash));
  const bits = value.slice(slash + 1);
  return family !== 0 && /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

type Obj = Record<string, unknown>;

function plural(kind: string): string {
  const lower = kind.toLowerCase();
  if (/(s|x|z|ch|sh)$/.test(lower)) return `${lower}es`;
  if (/[^aeiou]y$/.test(lower)) return `${lower.slice(0, -1)}ies`;
  return `${lower}s`;
}

const BUILT_IN_RULES: readonly { apiGroups: string[]; apiVersions: string[]; resources: string[] }[] = [
  {
    apiGroups: [''],
    apiVersions: ['v1'],
    resources: ['pods', 'pods/ephemeralcontainers', 'podtemplates', 'replicationcontrollers'],
  },
  { apiGroups: ['apps'], apiVersions: ['v1'], resources: ['deployments', 'replicasets', 'statefulsets', 'daemonsets'] },
  { apiGroups: ['batch'], apiVersions: ['v1'], resources: ['jobs', 'cronjobs'] },
];

function rules(config: AdmissionConfig): Obj[] {
  const out: Obj[] = BUILT_IN_RULES.map((r) => ({ operations: ['CREATE', 'UPDATE'], ...r, scope: '*' }));
  const byGroup = new Map<string, Set<string>>();
  for (const key of Object.keys(config.mutate.extraPodSpecPaths)) {
    const slash = key.lastIndexOf('/');
    const group = key.slice(0, slash);
    const set = byGroup.get(group) ?? new Set<string>();
    set.add(plural(key.slice(slash + 1)));
    byGroup.set(group, set);
  }
  for (const [group, resources] of byGroup)
    out.push({
      operations: ['CREATE', 'UPDATE'],
      apiGroups: [group],
      apiVersions: ['*'],
      resources: [...resources].sort(),
      scope: '*',
    });
  return out;
}

/** CEL: every image slot of the pod spec at `base` carries a digest (absent lists count as pinned). */
function allPinnedCel(base: string): string {
  const list = (field: string, item: string) => `(!has(${base}.${field}) || ${base}.${field}.all(x, ${item}))`;
  const image = "!has(x.image) || x.image.contains('@')";
  return [
    list('containers', image),
    list('initContainers', image),
    list('ephemeralContainers', image),
    list('volumes', "!has(x.image) || !has(x.image.reference) || x.image.reference.contains('@')"),
  ].join(' && ');
}

/** matchConditions (docs/semantics.md admission §4.17): call the mutating webhook only when some image lacks a digest. */
function matchConditions(config: AdmissionConfig): Obj[] {
  const kinds: [string, string, string][] = [
    ['', 'Pod', ''],
    ['', 'PodTemplate', ''],
    ['', 'ReplicationController', ''],
    ['apps', 'ReplicaSet', ''],
    ['apps', 'Deployment', ''],
    ['apps', 'StatefulSet', ''],
    ['apps', 'DaemonSet', ''],
    ['batch', 'Job', ''],
    ['batch', 'CronJob', ''],
  ];
  const branches: string[] = [];
  const seen = new Set<string>();
  const add = (group: string, kind: string) => {
    const key = `${group}/${kind}`;
    if (seen.has(key)) return;
    seen.add(key);
    const specs = podSpecPaths({ group, kind }, config.mutate.extraPodSpecPaths);
    if (specs.length === 0) return;
    // A path step may be absent: has() on each prefix.
    const pinned = specs
      .map((loc) => {
        const guards: string[] = [];
        for (let i = 1; i <= loc.segments.length; i++) guards.push(`has(object.${loc.segments.slice(0, i).join('.')})`);
        return `(!(${guards.join(' && ')}) || (${allPinnedCel(`object.${loc.path}`)}))`;
      })
      .join(' && ');
    branches.push(`(request.kind.group == '${group}' && request.kind.kind == '${kind}') ? !(${pinned})`);
  };
  for (const [group, kind] of kinds) add(group, kind);
  for (const key of Object.keys(config.mutate.extraPodSpecPaths)) {
    const slash = key.lastIndexOf('/');
    add(key.slice(0, slash), key.slice(slash + 1));
  }
  const expression = `${branches.join(' : ')} : true`;
  const conditions: Obj[] = [{ name: 'some-image-not-pinned', expression }];
  return conditions;
}

function yamlConfig(config: AdmissionConfig, namespace: string): string {
  const withNamespace: AdmissionConfig = { ...config, mutate: { ...config.mutate, ownNamespace: namespace } };
  return stringifyAll([withNamespace]);
}

/** The manifests as objects, in apply order. */
export function webhookManifestObjects(options: WebhookManifestOptions): Obj[] {
  const namespace = options.namespace ?? options.config.mutate.ownNamespace;
  const name = options.name ?? 'kimg-webhook';
  const port = options.port ?? 8443;
  const timeoutSeconds = options.timeoutSeconds ?? 10;
  if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > 30)
    throw new KimgError(
      'ErrInvalidArgument',
      `timeoutSeconds must be a whole number from 1 to 30, got ${timeoutSeconds}`,
    );
  const replicas = options.replicas ?? 2;
  const labels = { 'app.kubernetes.io/name': 'kimg-webhook', 'app.kubernetes.io/instance': name };
  const informer = options.config.resolver.secretSource === 'informer';
  const certificates = options.certificates;
  const certManager = options.certManager;
  if ((certificates === undefined) === (certManager === undefined))
    throw new KimgError(
      'ErrInvalidArgument',
      'give either the serving certificates or certManager, not both or neither',
    );
  const allowFrom = options.networkPolicy === false ? [] : (options.networkPolicy?.allowFrom ?? []);
  const badCidr = allowFrom.find((cidr) => !isCidr(cidr));
  if (badCidr !== undefined)
    throw new KimgError(
      'ErrInvalidArgument',
      `a NetworkPolicy source must be a CIDR such as 10.0.0.0/24, got ${JSON.stringify(badCidr)}`,
    );
  const tlsSecret = `${name}-tls`;
  const caInjection =
    certificates === undefined
      ? { metadata: { annotations: { [INJECT_CA_ANNOTATION]: `${namespace}/${tlsSecret}` } }, clientConfig: {} }
      : { metadata: {}, clientConfig: { caBundle: Buffer.from(certificates.caPem).toString('base64') } };
  const serviceNames = [
    name,
    `${name}.${namespace}`,
    `${name}.${namespace}.svc`,
    `${name}.${namespace}.svc.cluster.local`,
  ];
  const clientCa = options.clientCaPem;
  const namespaceSelector = {
    matchExpressions: [
      { key: OPT_IN_LABEL, operator: 'In', values: ['enabled'] },
      { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [...new Set(['kube-system', namespace])] },
    ],
  };
  const webhookBase = (path: string) => ({
    clientConfig: { service: { namespace, name, path, port: 443 }, ...caInjection.clientConfig },
    rules: rules(options.config),
    failurePolicy: options.failurePolicy ?? 'Fail',
    matchPolicy: 'Equivalent',
    namespaceSelector,
    sideEffects: 'None',
    timeoutSeconds,
    admissionReviewVersions: ['v1'],
  });

  const objects: Obj[] = [
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: namespace, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } },
    },
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name, namespace, labels },
      automountServiceAccountToken: informer,
    },
  ];
  if (informer) {
    objects.push(
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name, labels },
        rules: [{ apiGroups: [''], resources: ['secrets', 'serviceaccounts'], verbs: ['get', 'list', 'watch'] }],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name, labels },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
        subjects: [{ kind: 'ServiceAccount', name, namespace }],
      },
    );
  }
  if (certificates !== undefined) {
    objects.push({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: { name: tlsSecret, namespace, labels },
      stringData: { 'tls.crt': certificates.certPem, 'tls.key': certificates.keyPem, 'ca.crt': certificates.caPem },
    });
  } else {
    const issuerRef = certManager?.issuerRef ?? { kind: 'Issuer', name: `${name}-selfsigned` };
    if (certManager?.issuerRef === undefined)
      objects.push({
        apiVersion: 'cert-manager.io/v1',
        kind: 'Issuer',
        metadata: { name: issuerRef.name, namespace, labels },
        spec: { selfSigned: {} },
      });
    // The Secret cert-manager writes holds tls.crt, tls.key and ca.crt, as the printed one does;
    // the server re-reads the files when cert-manager renews them.
    objects.push({
      apiVersion: 'cert-manager.io/v1',
      kind: 'Certificate',
      metadata: { name: tlsSecret, namespace, labels },
      spec: {
        secretName: tlsSecret,
        commonName: `${name}.${namespace}.svc`,
        dnsNames: serviceNames,
        duration: '8760h',
        renewBefore: '720h',
        privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
        usages: ['digital signature', 'server auth'],
        issuerRef: { group: 'cert-manager.io', kind: issuerRef.kind, name: issuerRef.name },
      },
    });
  }
  if (clientCa !== undefined)
    objects.push({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: `${name}-client-ca`, namespace, labels },
      data: { 'ca.crt': clientCa },
    });
  objects.push(
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: `${name}-config`, namespace, labels },
      data: { 'config.yaml': yamlConfig(options.config, namespace) },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace, labels },
      spec: {
        replicas,
        selector: { matchLabels: labels },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: name,
            automountServiceAccountToken: informer,
            securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
            topologySpreadConstraints: [
              {
                maxSkew: 1,
                topologyKey: 'kubernetes.io/hostname',
                whenUnsatisfiable: 'ScheduleAnyway',
                labelSelector: { matchLabels: labels },
              },
            ],
            containers: [
              {
                name: 'webhook',
                image: options.image,
                args: [
                  'webhook',
                  'serve',
                  '--config',
                  '/etc/kimg/config/config.yaml',
                  '--tls-cert-file',
                  '/etc/kimg/tls/tls.crt',
                  '--tls-key-file',
                  '/etc/kimg/tls/tls.key',
                  '--port',
                  String(port),
                  ...(clientCa === undefined ? [] : ['--client-ca-file', '/etc/kimg/client-ca/ca.crt']),
                ],
                env: [{ name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } }],
                ports: [{ name: 'https', containerPort: port, protocol: 'TCP' }],
                readinessProbe: {
                  httpGet: { path: '/readyz', port: 'https', scheme: 'HTTPS' },
                  periodSeconds: 5,
                  failureThreshold: 3,
                },
                livenessProbe: {
                  httpGet: { path: '/healthz', port: 'https', scheme: 'HTTPS' },
                  periodSeconds: 10,
                  failureThreshold: 6,
                },
                resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '256Mi' } },
                securityContext: {
                  allowPrivilegeEscalation: false,
                  readOnlyRootFilesystem: true,
                  runAsNonRoot: true,
                  capabilities: { drop: ['ALL'] },
                },
                volumeMounts: [
                  { name: 'tls', mountPath: '/etc/kimg/tls', readOnly: true },
                  { name: 'config', mountPath: '/etc/kimg/config', readOnly: true },
                  ...(clientCa === undefined
                    ? []
                    : [{ name: 'client-ca', mountPath: '/etc/kimg/client-ca', readOnly: true }]),
                ],
              },
            ],
            volumes: [
              { name: 'tls', secret: { secretName: tlsSecret } },
              { name: 'config', configMap: { name: `${name}-config` } },
              ...(clientCa === undefined ? [] : [{ name: 'client-ca', configMap: { name: `${name}-client-ca` } }]),
            ],
          },
        },
      },
    },
    {
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: { name, namespace, labels },
      spec: { minAvailable: 1, selector: { matchLabels: labels } },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace, labels },
      spec: { selector: labels, ports: [{ name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' }] },
    },
  );
  if (options.networkPolicy !== false) {
    // The apiserver usually runs on the host network of control-plane nodes, which pod and
    // namespace selectors cannot name: its addresses are given as CIDRs.
    const from = allowFrom.map((cidr) => ({ ipBlock: { cidr } }));
    objects.push({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name, namespace, labels },
      spec: {
        podSelector: { matchLabels: labels },
        policyTypes: ['Ingress'],
        ingress: [{ ...(from.length > 0 && { from }), ports: [{ protocol: 'TCP', port }] }],
      },
    });
  }
  if (options.mutating ?? true) {
    objects.push({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name, labels, ...caInjection.metadata },
      webhooks: [
        {
          name: 'pin.kimg.dev',
          ...webhookBase('/mutate'),
          reinvocationPolicy: 'IfNeeded',
          ...(options.matchConditions === true && { matchConditions: matchConditions(options.config) }),
        },
      ],
    });
  }
  if (options.validating ?? true) {
    objects.push({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: { name, labels, ...caInjection.metadata },
      webhooks: [{ name: 'policy.kimg.dev', ...webhookBase('/validate') }],
    });
  }
  return objects;
}

/** The manifests as one YAML stream. */
export function renderWebhookManifests(options: WebhookManifestOptions): string {
  return stringifyAll(webhookManifestObjects(options));
}

export interface CertificateRequest {
  /** Service name and namespace: the certificate is for `<service>.<namespace>.svc` (and its short and long forms). */
  readonly service: string;
  readonly namespace: string;
  /** Keep the files here and reuse them on the next run (the leaf is re-issued 30 days before it expires); default a temporary directory. */
  readonly dir?: string;
  /** Leaf lifetime in days; default 365 (the CA: 10 years). */
  readonly days?: number;
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd, timeout: 60_000 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT')
      throw new KimgError(
        'ErrToolMissing',
        'certificate generation needs the openssl command (Debian: apt-get install openssl)',
      );
    throw new KimgError(
      'ErrCertificate',
      `openssl ${args[0] ?? ''} failed: ${(e.stderr ?? e.message).trim().split('\n').slice(-2).join(' ')}`,
    );
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * A CA and a serving certificate for the webhook's Service, with the openssl CLI: ECDSA P-256,
 * SANs `<svc>`, `<svc>.<ns>`, `<svc>.<ns>.svc`, `<svc>.<ns>.svc.cluster.local`.
 */
export async function generateWebhookCertificates(request: CertificateRequest): Promise<WebhookCertificates> {
  const { service, namespace } = request;
  if (!DNS_LABEL.test(service) || !DNS_LABEL.test(namespace))
    throw new KimgError(
      'ErrInvalidArgument',
      `service ${JSON.stringify(service)} and namespace ${JSON.stringify(namespace)} must be DNS labels`,
    );
  const dir = request.dir ?? (await mkdtemp(join(tmpdir(), 'kimg-webhook-certs-')));
  await mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    const ca = { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
    const leaf = { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') };
    if (!(await exists(ca.cert)) || !(await exists(ca.key))) {
      await openssl(
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-days',
          '3650',
          '-subj',
          '/CN=kimg webhook CA',
          '-addext',
          'basicConstraints=critical,CA:TRUE',
          '-addext',
          'keyUsage=critical,keyCertSign,cRLSign',
          '-keyout',
          ca.key,
          '-out',
          ca.cert,
        ],
        dir,
      );
    }
    let reuse = (await exists(leaf.cert)) && (await exists(leaf.key));
    if (reuse) {
      // Still valid for 30 days, and issued by this CA?
      reuse = await openssl(['x509', '-checkend', String(30 * 86400), '-noout', '-in', leaf.cert], dir).then(
        () => true,
        () => false,
      );
      if (reuse)
        reuse = await openssl(['verify', '-CAfile', ca.cert, leaf.cert], dir).then(
          () => true,
          () => false,
        );
    }
    if (!reuse) {
      const host = `${service}.${namespace}.svc`;
      const ext = join(dir, 'tls.ext');
      const csr = join(dir, 'tls.csr');
      await writeFile(
        ext,
        [
          'basicConstraints=critical,CA:FALSE',
          'keyUsage=critical,digitalSignature',
          'extendedKeyUsage=serverAuth',
          `subjectAltName=DNS:${service},DNS:${service}.${namespace},DNS:${host},DNS:${host}.cluster.local`,
          '',
        ].join('\n'),
      );
      await openssl(
        [
          'req',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-subj',
          `/CN=${host}`,
          '-keyout',
          leaf.key,
          '-out',
          csr,
        ],
        dir,
      );
      await openssl(
        [
          'x509',
          '-req',
          '-in',
          csr,
          '-CA',
          ca.cert,
          '-CAkey',
          ca.key,
          '-set_serial',
          `0x${randomBytes(12).toString('hex')}`,
          '-sha256',
          '-days',
          String(request.days ?? 365),
          '-extfile',
          ext,
          '-out',
          leaf.cert,
        ],
        dir,
      );
      await Promise.all([rm(ext, { force: true }), rm(csr, { force: true })]);
    }
    const [caPem, certPem, keyPem] = await Promise.all([
      readFile(ca.cert, 'utf8'),
      readFile(leaf.cert, 'utf8'),
      readFile(leaf.key, 'utf8'),
    ]);
    return { caPem, certPem, keyPem };
  } finally {
    if (request.dir === undefined) await rm(dir, { recursive: true, force: true });
  }
}
