/**
 * `kimg registry manifests`: the node-local mirror as a DaemonSet. Each node runs the server on
 * its own loopback (hostNetwork, so containerd on the node reaches 127.0.0.1 and no TLS is
 * needed), with the store on a hostPath, probes on `/healthz` and `/readyz`, resource limits,
 * and an init container that writes containerd's hosts.toml for each mirrored registry.
 */
import { KimgError } from '../errors/index.ts';
import { matchDomain } from '../reference/index.ts';

export interface DaemonSetOptions {
  /** kimg's image (pin it by digest). */
  readonly image: string;
  readonly namespace?: string;
  readonly name?: string;
  /** Loopback port on each node; default 5000. */
  readonly port?: number;
  /** Registries containerd mirrors through the server; default docker.io and registry.k8s.io. */
  readonly registries?: readonly string[];
  /** Where the store lives on each node; default /var/lib/kimg/store. */
  readonly storePath?: string;
  /** containerd's config_path on the nodes; default /etc/containerd/certs.d. */
  readonly certsDir?: string;
  /** Pull what the store lacks from upstream (default true). */
  readonly pullThrough?: boolean;
  /** Memory limit; default 256Mi (the server streams blobs; measured RSS stays far below). */
  readonly memoryLimit?: string;
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function check(condition: boolean, message: string): void {
  if (!condition) throw new KimgError('ErrInvalidArgument', message);
}

/** The Namespace and DaemonSet, as plain objects (print them with a YAML stringifier). */
export function renderDaemonSet(options: DaemonSetOptions): Record<string, unknown>[] {
  const namespace = options.namespace ?? 'kimg-system';
  const name = options.name ?? 'kimg-registry';
  const port = options.port ?? 5000;
  const registries = options.registries ?? ['docker.io', 'registry.k8s.io'];
  const storePath = options.storePath ?? '/var/lib/kimg/store';
  const certsDir = options.certsDir ?? '/etc/containerd/certs.d';
  check(options.image.trim() !== '', '--image is required');
  check(NAME.test(namespace) && namespace.length <= 63, `invalid namespace ${JSON.stringify(namespace)}`);
  check(NAME.test(name) && name.length <= 63, `invalid name ${JSON.stringify(name)}`);
  check(Number.isInteger(port) && port > 0 && port < 65536, `invalid port ${port}`);
  for (const host of registries) check(matchDomain(host), `${JSON.stringify(host)} is not a registry host`);
  check(storePath.startsWith('/') && certsDir.startsWith('/'), 'host paths must be absolute');
  const mirror = `http://127.0.0.1:${port}`;
  const labels = { 'app.kubernetes.io/name': name, 'app.kubernetes.io/part-of': 'kimg' };
  const probe = (path: string, period: number) => ({
    httpGet: { host: '127.0.0.1', port, path, scheme: 'HTTP' },
    periodSeconds: period,
    timeoutSeconds: 2,
    failureThreshold: 3,
  });
  const restricted = {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
  };
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace, labels } },
    {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name, namespace, labels },
      spec: {
        selector: { matchLabels: labels },
        updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '10%' } },
        template: {
          metadata: { labels },
          spec: {
            hostNetwork: true,
            dnsPolicy: 'ClusterFirstWithHostNet',
            priorityClassName: 'system-node-critical',
            tolerations: [{ operator: 'Exists' }],
            terminationGracePeriodSeconds: 10,
            initContainers: [
              {
                name: 'hosts-toml',
                image: options.image,
                args: [
                  'registry',
                  'hosts-toml',
                  '--mirror',
                  mirror,
                  '--for',
                  registries.join(','),
                  '--dir',
                  '/certs.d',
                ],
                securityContext: restricted,
                resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } },
                volumeMounts: [{ name: 'certs-d', mountPath: '/certs.d' }],
              },
            ],
            containers: [
              {
                name: 'registry',
                image: options.image,
                args: [
                  'registry',
                  'serve',
                  '--store',
                  '/store',
                  '--listen',
                  `127.0.0.1:${port}`,
                  ...(options.pullThrough === false ? [] : ['--pull-through']),
                ],
                env: [{ name: 'HOME', value: '/tmp' }],
                ports: [{ name: 'registry', containerPort: port, hostPort: port, protocol: 'TCP' }],
                livenessProbe: probe('/healthz', 20),
                readinessProbe: probe('/readyz', 5),
                securityContext: restricted,
                resources: {
                  requests: { cpu: '50m', memory: '64Mi' },
                  limits: { memory: options.memoryLimit ?? '256Mi' },
                },
                volumeMounts: [
                  { name: 'store', mountPath: '/store' },
                  { name: 'tmp', mountPath: '/tmp' },
                ],
              },
            ],
            volumes: [
              { name: 'store', hostPath: { path: storePath, type: 'DirectoryOrCreate' } },
              { name: 'certs-d', hostPath: { path: certsDir, type: 'DirectoryOrCreate' } },
              { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } },
            ],
          },
        },
      },
    },
  ];
}
