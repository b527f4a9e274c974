import { readFile } from 'node:fs/promises';
import { connect } from 'node:tls';
import { isPlainHttpAnswer, type Endpoint as ClientEndpoint } from '../registry/index.ts';
import {
  resolveHosts,
  type Endpoint as HostEndpoint,
  type HostsConfig,
  type PullKind,
  type RepositoryName,
} from '../registry/hosts/index.ts';

/**
 * Turns host configuration (containerd hosts.toml, registries.conf, the loopback default) into
 * the endpoints the registry client contacts, reading CA files and deciding, once per host,
 * whether a host marked `httpFallback` speaks TLS at all.
 */
export class EndpointResolver {
  private readonly speaksTls = new Map<string, Promise<boolean>>();
  private readonly caCache = new Map<string, Promise<string>>();

  constructor(
    private readonly config: HostsConfig,
    private readonly extraCaPems: readonly string[] = [],
  ) {}

  /** The configured endpoints for a repository, in the order to try them. */
  configured(repository: RepositoryName, pull: PullKind): HostEndpoint[] {
    return resolveHosts(repository, pull, this.config);
  }

  async forRegistry(repository: RepositoryName, pull: PullKind): Promise<ClientEndpoint[]> {
    const hosts = this.configured(repository, pull);
    return Promise.all(hosts.map((host) => this.toClientEndpoint(host)));
  }

  private async toClientEndpoint(host: HostEndpoint): Promise<ClientEndpoint> {
    const url = new URL(host.baseUrl);
    let plainHttp = url.protocol === 'http:';
    if (!plainHttp && host.httpFallback) plainHttp = !(await this.probeTls(url));
    if (plainHttp) url.protocol = 'http:';
    const ca = [...this.extraCaPems, ...(await Promise.all(host.tls.caFiles.map((f) => this.readCa(f))))];
    const capabilities = host.capabilities.filter((c): c is 'pull' | 'resolve' => c === 'pull' || c === 'resolve');
    return {
      baseUrl: url.toString().replace(/\/$/, ''),
      overridePath: true,
      insecure: plainHttp,
      mirror: host.mirror,
      capabilities,
      ...(host.repository !== '' && { repository: host.repository }),
      tls: { ca, skipVerify: host.tls.skipVerify },
      ...(host.namespace !== undefined && { query: { ns: host.namespace } }),
    };
  }

  private readCa(file: string): Promise<string> {
    let pem = this.caCache.get(file);
    if (pem === undefined) {
      pem = readFile(file, 'utf8');
      this.caCache.set(file, pem);
    }
    return pem;
  }

  /** containerd's HTTP fallback, decided up front: a server that answers a TLS ClientHello
   * with plain HTTP does not speak TLS. Any other outcome keeps HTTPS (and its errors). */
  private probeTls(url: URL): Promise<boolean> {
    const key = url.host;
    let answer = this.speaksTls.get(key);
    if (answer === undefined) {
      answer = new Promise<boolean>((resolve) => {
        const socket = connect({
          host: url.hostname.replace(/^\[|\]$/g, ''),
          port: Number(url.port || 443),
          rejectUnauthorized: false,
          ALPNProtocols: ['http/1.1'],
          timeout: 10_000,
        });
        const done = (tls: boolean) => {
          socket.destroy();
          resolve(tls);
        };
        socket.once('secureConnect', () => done(true));
        socket.once('timeout', () => done(true));
        socket.once('error', (err: NodeJS.ErrnoException) => done(!isPlainHttpAnswer(err)));
      });
      this.speaksTls.set(key, answer);
    }
    return answer;
  }
}
