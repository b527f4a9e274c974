/**
 * skopeo 1.9 as a reference client: copy images between transports and read manifests exactly
 * as a registry stores them. Credentials never reach error messages.
 */
import { run } from './processes.ts';
import type { Credentials } from './registry.ts';
import { ensureTools } from './tools.ts';

/** How to talk to one side's registry. */
export interface SkopeoAuth {
  /** `{ user, password }` or `user:password`. */
  creds?: Credentials | string;
  /** Verify TLS; false also allows plain HTTP. Default false. */
  tlsVerify?: boolean;
  /** A dir holding only `ca.crt` (skopeo treats every `*.key` there as a client key). */
  certDir?: string;
}

export interface CopyOptions {
  /** Copy every instance of an index / manifest list. */
  all?: boolean;
  /** Push the exact manifest bytes (no conversion); digests stay as built. */
  preserveDigests?: boolean;
  /** Convert manifests: `v2s2` (Docker schema2) or `oci`; digests change. */
  format?: 'v2s2' | 'oci';
  src?: SkopeoAuth;
  dest?: SkopeoAuth;
  timeoutMs?: number;
}

function credsText(creds: Credentials | string): string {
  return typeof creds === 'string' ? creds : `${creds.user}:${creds.password}`;
}

/** skopeo flags for one side (`src`, `dest`, or '' for single-image commands like inspect). */
function authArgs(side: 'src' | 'dest' | '', auth: SkopeoAuth | undefined, secrets: string[]): string[] {
  const prefix = side ? `--${side}-` : '--';
  const args = [`${prefix}tls-verify=${auth?.tlsVerify ?? false}`];
  if (auth?.certDir) args.push(`${prefix}cert-dir`, auth.certDir);
  if (auth?.creds !== undefined) {
    const text = credsText(auth.creds);
    secrets.push(text, text.slice(text.indexOf(':') + 1));
    args.push(`${prefix}creds`, text);
  }
  return args;
}

/** Runs skopeo with `args`; rejects with the (redacted) command line and stderr. */
export async function skopeo(
  args: readonly string[],
  options: { secrets?: readonly string[]; timeoutMs?: number } = {},
): Promise<Buffer> {
  ensureTools(['skopeo']);
  const { stdout } = await run('skopeo', args, { secrets: options.secrets, timeoutMs: options.timeoutMs ?? 300_000 });
  return stdout;
}

/** `skopeo --insecure-policy copy …` from `src` to `dest` (transport:reference each). */
export async function copyImage(src: string, dest: string, options: CopyOptions = {}): Promise<void> {
  const secrets: string[] = [];
  const args = ['--insecure-policy', 'copy', '--quiet'];
  if (options.all) args.push('--all');
  if (options.preserveDigests) args.push('--preserve-digests');
  if (options.format) args.push('--format', options.format);
  if (src.startsWith('docker://')) args.push(...authArgs('src', options.src, secrets));
  if (dest.startsWith('docker://')) args.push(...authArgs('dest', options.dest, secrets));
  args.push(src, dest);
  await skopeo(args, { secrets, timeoutMs: options.timeoutMs });
}

/** The manifest bytes stored for `ref` (`HOST/REPO:TAG` or `HOST/REPO@DIGEST`), unmodified. */
export async function inspectRaw(ref: string, auth: SkopeoAuth = {}): Promise<Buffer> {
  const secrets: string[] = [];
  const target = ref.startsWith('docker://') ? ref : `docker://${ref}`;
  return skopeo(['--insecure-policy', 'inspect', '--raw', ...authArgs('', auth, secrets), target], { secrets });
}
