/**
 * A real CNCF Distribution registry (Debian `docker-registry` 2.8) on a loopback port picked by
 * the kernel, for integration tests: plain HTTP or TLS with a throwaway CA, htpasswd (Basic) or
 * token auth, or a pull-through cache of another registry. The bound port is read from /proc;
 * the process is stopped by its PID and killed if the test process exits first.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { makeServerCertificates } from './certs.ts';
import { httpRequest } from './http-client.ts';
import { removeAtExit, run, stopChild, trackChild } from './processes.ts';
import { ensureTools } from './tools.ts';

export interface Credentials {
  user: string;
  password: string;
}

/** What a registry needs to trust a token server; a `TokenServer` fits. */
export interface TokenAuth {
  /** Sent to clients in the `Bearer realm="…"` challenge (point it at a fault proxy if needed). */
  realm: string;
  /** Must equal the token's `aud`. */
  service: string;
  /** Must equal the token's `iss`. */
  issuer: string;
  /** PEM certificate(s) of the signing key. */
  certFile: string;
}

export interface PullThroughOptions {
  /** The upstream registry, e.g. `http://127.0.0.1:5000`. */
  remoteUrl: string;
  /** Upstream credentials; 2.8 only uses them against a *token* upstream (see docs/semantics.md testing §3.4). */
  username?: string;
  password?: string;
  /** CA the registry trusts for an https upstream or realm (passed as SSL_CERT_FILE). */
  caFile?: string;
}

export interface RegistryOptions {
  /** Serve HTTPS with a fresh CA (SAN IP:127.0.0.1, DNS:localhost). */
  tls?: boolean;
  /** Require Basic auth for these users (bcrypt htpasswd file). */
  htpasswd?: readonly Credentials[];
  /** Require bearer tokens from this token server. */
  token?: TokenAuth;
  /** Run as a pull-through cache of another registry. */
  proxy?: PullThroughOptions;
  /** State dir (config, storage, log, certs); default a temp dir that `stop()` removes. A given dir is kept. */
  dir?: string;
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
  /** `http.relativeurls`: Location headers without scheme and host. */
  relativeUrls?: boolean;
  /** `storage.delete.enabled`; default true. */
  deleteEnabled?: boolean;
  /** Extra environment overrides, e.g. `{ REGISTRY_STORAGE_MAINTENANCE_READONLY: '{"enabled": true}' }`. */
  env?: Record<string, string>;
  /** How long to wait for `GET /v2/` to answer; default 20 s. */
  readyTimeoutMs?: number;
}

export interface RunningRegistry {
  /** `http://127.0.0.1:PORT` or `https://…`. */
  url: string;
  /** `127.0.0.1:PORT`, for image references. */
  host: string;
  port: number;
  scheme: 'http' | 'https';
  dir: string;
  storageDir: string;
  configFile: string;
  logFile: string;
  /** (tls) The CA certificate file and its PEM text. */
  caFile?: string;
  caPem?: string;
  /** (tls) A dir holding only `ca.crt`, for skopeo `--cert-dir`. */
  certDir?: string;
  /** (htpasswd) The first user. */
  credentials?: Credentials;
  pid: number;
  /** The last `lines` lines of the registry's log. */
  logTail(lines?: number): Promise<string>;
  /** SIGTERM, up to 5 s, SIGKILL; then removes the state dir if the harness made it. */
  stop(): Promise<void>;
}

/** A YAML scalar: JSON strings are valid YAML double-quoted strings. */
const yaml = (value: string): string => JSON.stringify(value);

function configYaml(dir: string, options: RegistryOptions, tls: { cert: string; key: string } | undefined): string {
  const lines = [
    'version: 0.1',
    'log:',
    `  level: ${options.logLevel ?? 'info'}`,
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${yaml(join(dir, 'storage'))}`,
    '  delete:',
    `    enabled: ${options.deleteEnabled ?? true}`,
    '  cache:',
    '    blobdescriptor: inmemory',
    'http:',
    '  addr: 127.0.0.1:0',
    `  secret: ${yaml(randomBytes(16).toString('hex'))}`,
    `  relativeurls: ${options.relativeUrls ?? false}`,
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
  ];
  if (tls) lines.push('  tls:', `    certificate: ${yaml(tls.cert)}`, `    key: ${yaml(tls.key)}`);
  if (options.htpasswd) {
    lines.push('auth:', '  htpasswd:', '    realm: kimg-test-registry', `    path: ${yaml(join(dir, 'htpasswd'))}`);
  } else if (options.token) {
    const { realm, service, issuer, certFile } = options.token;
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${yaml(realm)}`,
      `    service: ${yaml(service)}`,
      `    issuer: ${yaml(issuer)}`,
      `    rootcertbundle: ${yaml(resolve(certFile))}`,
    );
  }
  if (options.proxy) {
    lines.push('proxy:', `  remoteurl: ${yaml(options.proxy.remoteUrl)}`);
    if (options.proxy.username !== undefined) lines.push(`  username: ${yaml(options.proxy.username)}`);
    if (options.proxy.password !== undefined) lines.push(`  password: ${yaml(options.proxy.password)}`);
  }
  return `${lines.join('\n')}\n`;
}

async function writeHtpasswd(file: string, users: readonly Credentials[]): Promise<void> {
  const entries: string[] = [];
  for (const { user, password } of users) {
    if (!user || user.includes(':'))
      throw new Error(`htpasswd user name ${JSON.stringify(user)} is empty or has a ':'`);
    const { stdout } = await run('htpasswd', ['-Bbn', user, password], { secrets: [password] });
    entries.push(stdout.toString('utf8').trim());
  }
  await writeFile(file, `${entries.join('\n')}\n`, { mode: 0o600 });
}

/** TCP ports in LISTEN state on sockets that process `pid` holds (from /proc). */
export async function listeningPorts(pid: number): Promise<number[]> {
  const inodes = new Set<string>();
  const fdDir = `/proc/${pid}/fd`;
  for (const fd of await readdir(fdDir).catch(() => [] as string[])) {
    const target = await readlink(join(fdDir, fd)).catch(() => '');
    const match = /^socket:\[(\d+)\]$/.exec(target);
    if (match?.[1]) inodes.add(match[1]);
  }
  if (inodes.size === 0) return [];
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    for (const row of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const fields = row.trim().split(/\s+/);
      const [local, state, inode] = [fields[1], fields[3], fields[9]];
      if (state === '0A' && inode && inodes.has(inode) && local) {
        ports.push(Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16));
      }
    }
  }
  return ports;
}

async function tail(file: string, lines: number): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Starts a registry and resolves once `GET /v2/` answers (200, or 401 with auth). */
export async function startRegistry(options: RegistryOptions = {}): Promise<RunningRegistry> {
  if (options.htpasswd && options.token) throw new Error('startRegistry: choose htpasswd or token auth, not both');
  ensureTools(['docker-registry', ...(options.tls ? ['openssl'] : []), ...(options.htpasswd ? ['htpasswd'] : [])]);
  const ownDir = options.dir === undefined;
  const dir = resolve(options.dir ?? (await mkdtemp(join(tmpdir(), 'kimg-registry-'))));
  const forgetDir = ownDir ? removeAtExit(dir) : () => undefined;
  const removeOwnDir = async (): Promise<void> => {
    if (!ownDir) return;
    await rm(dir, { recursive: true, force: true });
    forgetDir();
  };

  let registry: RunningRegistry | undefined;
  try {
    await mkdir(join(dir, 'storage'), { recursive: true });
    const certs = options.tls ? await makeServerCertificates(join(dir, 'tls')) : undefined;
    if (options.htpasswd) await writeHtpasswd(join(dir, 'htpasswd'), options.htpasswd);
    const configFile = join(dir, 'config.yml');
    const logFile = join(dir, 'registry.log');
    await writeFile(configFile, configYaml(dir, options, certs && { cert: certs.certFile, key: certs.keyFile }), {
      mode: 0o600,
    });

    // Inherited REGISTRY_* variables would silently override the config.
    const env: NodeJS.ProcessEnv = Object.fromEntries(
      Object.entries(process.env).filter(([key]) => !key.startsWith('REGISTRY_')),
    );
    if (options.proxy?.caFile) env.SSL_CERT_FILE = resolve(options.proxy.caFile);
    Object.assign(env, options.env);

    const logFd = openSync(logFile, 'a');
    const child = spawn('docker-registry', ['serve', configFile], { cwd: dir, env, stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    trackChild(child);
    child.unref(); // a forgotten registry must not keep the test process alive; the exit hook kills it
    const spawnError = new Promise<Error>((resolveError) => child.once('error', resolveError));
    const pid = child.pid;
    if (pid === undefined) throw await spawnError;

    const scheme = certs ? 'https' : 'http';
    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> => {
      stopping ??= (async () => {
        await stopChild(child, 5000);
        await removeOwnDir();
      })();
      return stopping;
    };

    const deadline = Date.now() + (options.readyTimeoutMs ?? 20_000);
    let port: number | undefined;
    let lastProblem = 'no listening socket yet';
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `docker-registry exited at start (${child.exitCode ?? child.signalCode}); log:\n${await tail(logFile, 20)}`,
        );
      }
      port ??= (await listeningPorts(pid))[0];
      if (port !== undefined) {
        try {
          const res = await httpRequest(`${scheme}://127.0.0.1:${port}/v2/`, { ca: certs?.caPem, timeoutMs: 2000 });
          if ((res.status === 200 || res.status === 401) && res.headers['docker-distribution-api-version']) break;
          lastProblem = `GET /v2/ answered ${res.status}`;
        } catch (err) {
          lastProblem = `GET /v2/ failed: ${(err as Error).message}`;
        }
      }
      if (Date.now() > deadline) {
        const log = await tail(logFile, 20);
        await stop();
        throw new Error(
          `docker-registry (pid ${pid}) not ready within ${options.readyTimeoutMs ?? 20_000} ms: ${lastProblem}; log:\n${log}`,
        );
      }
      await sleep(50);
    }

    registry = {
      url: `${scheme}://127.0.0.1:${port}`,
      host: `127.0.0.1:${port}`,
      port,
      scheme,
      dir,
      storageDir: join(dir, 'storage'),
      configFile,
      logFile,
      caFile: certs?.certDir && join(certs.certDir, 'ca.crt'),
      caPem: certs?.caPem,
      certDir: certs?.certDir,
      credentials: options.htpasswd?.[0],
      pid,
      logTail: (lines = 30) => tail(logFile, lines),
      stop,
    };
    return registry;
  } finally {
    if (!registry) await removeOwnDir();
  }
}
