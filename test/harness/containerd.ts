/**
 * A containerd 1.6 daemon of our own for tests and benches: its own root, state, sockets and
 * config in a temp dir (no CRI plugin), stopped by its PID. `ctr` calls go to its socket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, stopChild, trackChild } from './processes.ts';
import { which } from './tools.ts';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A containerd daemon of our own; every `ctr` call goes to its socket, in namespace `namespace`. */
export class Containerd {
  private constructor(
    private readonly child: ChildProcess,
    readonly dir: string,
    readonly socket: string,
    readonly namespace: string,
  ) {}

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Starts containerd in `dir` (created); throws with the log tail when it does not serve within 20 s. */
  static async start(dir: string, namespace = 'bench'): Promise<Containerd> {
    if (!which('containerd') || !which('ctr'))
      throw new Error('containerd or ctr is not installed (apt-get install -y containerd)');
    await mkdir(dir, { recursive: true });
    const socket = join(dir, 'containerd.sock');
    const config = [
      'version = 2',
      `root = ${JSON.stringify(join(dir, 'root'))}`,
      `state = ${JSON.stringify(join(dir, 'state'))}`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = ${JSON.stringify(socket)}`,
      '[ttrpc]',
      `  address = ${JSON.stringify(`${socket}.ttrpc`)}`,
      '[debug]',
      `  address = ${JSON.stringify(join(dir, 'debug.sock'))}`,
      '  level = "warn"',
      '[metrics]',
      '  address = ""',
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = ${JSON.stringify(join(dir, 'opt'))}`,
    ].join('\n');
    const configFile = join(dir, 'config.toml');
    await writeFile(configFile, `${config}\n`);
    const logFile = join(dir, 'containerd.log');
    const logFd = openSync(logFile, 'a');
    const child = spawn('containerd', ['--config', configFile], { stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    trackChild(child);
    child.unref();
    const daemon = new Containerd(child, dir, socket, namespace);
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) break;
      const ready = await stat(socket).then(
        () => daemon.ctr(['version'], 5000).then(() => true),
        () => false,
      );
      if (ready) return daemon;
      if (Date.now() > deadline) break;
      await sleep(100);
    }
    const log = await readFile(logFile, 'utf8').catch(() => '');
    await daemon.stop();
    throw new Error(`containerd did not start: ${log.trim().split('\n').slice(-5).join(' | ')}`);
  }

  ctr(args: readonly string[], timeoutMs = 600_000): Promise<string> {
    return run('ctr', ['-a', this.socket, '-n', this.namespace, ...args], { timeoutMs }).then((r) =>
      r.stdout.toString('utf8'),
    );
  }

  /** `ctr content fetch REF`: download and verify every blob, no unpack; over TLS trusting
   * `caFile` when given, else plain HTTP. */
  async fetch(ref: string, options: { caFile?: string } = {}): Promise<void> {
    if (options.caFile === undefined) {
      await this.ctr(['content', 'fetch', '--plain-http', ref]);
      return;
    }
    // ctr speaks plain HTTP to a loopback registry unless a hosts.toml says https.
    const host = ref.slice(0, ref.indexOf('/'));
    const hostsDir = join(this.dir, 'hosts');
    await mkdir(join(hostsDir, host), { recursive: true });
    const toml = [
      `server = "https://${host}"`,
      `[host."https://${host}"]`,
      '  capabilities = ["pull", "resolve"]',
      `  ca = ${JSON.stringify(options.caFile)}`,
    ];
    await writeFile(join(hostsDir, host, 'hosts.toml'), `${toml.join('\n')}\n`);
    await this.ctr(['content', 'fetch', '--hosts-dir', hostsDir, ref]);
  }

  /** Removes images, leases and content, so that the next fetch downloads everything again. */
  async clean(): Promise<void> {
    const list = async (what: string[]): Promise<string[]> =>
      (await this.ctr([...what, 'ls', '-q'])).split('\n').filter(Boolean);
    for (const image of await list(['images'])) await this.ctr(['images', 'rm', '--sync', image]);
    for (const lease of await list(['leases'])) await this.ctr(['leases', 'rm', '--sync', lease]);
    const left = await list(['content']);
    if (left.length > 0) await this.ctr(['content', 'rm', ...left]);
  }

  /** Stops the daemon by its PID (SIGTERM, then SIGKILL after 5 s) and removes its dir. */
  async stop(): Promise<void> {
    await stopChild(this.child, 5000);
    await rm(this.dir, { recursive: true, force: true });
  }
}
