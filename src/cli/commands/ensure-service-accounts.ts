/**
 * Service accounts for `kimg ensure` when a credential provider plugin runs in service-account
 * token mode (KEP-4412): the kubelet asks the apiserver for the ServiceAccount and a pod-bound
 * token; kimg reads the ServiceAccount objects among the manifests and the tokens from files
 * the user names (`--service-account-token NAMESPACE/NAME=FILE`, or `--service-account-token-file
 * FILE` for every account), re-read at each use since projected tokens rotate.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { ServiceAccountAccess, ServiceAccountInfo } from '../../credentials/index.ts';
import { KimgError } from '../../errors/index.ts';

/** A ServiceAccount found in the manifests. */
export interface ServiceAccountEntry {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly annotations: Readonly<Record<string, string>>;
}

/** The flags' token files: by `namespace/name`, and one for every other account. */
export interface ServiceAccountTokenFiles {
  readonly byAccount: ReadonlyMap<string, string>;
  readonly fallback?: string;
}

/** Parses the repeated `--service-account-token NAMESPACE/NAME=FILE` values. */
export function parseServiceAccountTokenFlags(values: readonly string[], fallback?: string): ServiceAccountTokenFiles {
  const byAccount = new Map<string, string>();
  for (const value of values) {
    const match = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-.a-z0-9]*[a-z0-9])?)=(.+)$/.exec(value);
    if (match === null)
      throw new KimgError(
        'ErrInvalidFlag',
        `--service-account-token: expected NAMESPACE/NAME=FILE, got ${JSON.stringify(value)}`,
      );
    byAccount.set(`${match[1]}/${match[3]}`, match[5] ?? '');
  }
  return { byAccount, ...(fallback !== undefined && { fallback }) };
}

/** A stable UID for an account without one (as `ensure` makes pod UIDs). */
export function syntheticUid(namespace: string, name: string): string {
  return `kimg-${createHash('sha256').update(`ServiceAccount/${namespace}/${name}`).digest('hex').slice(0, 32)}`;
}

/**
 * The accounts of the manifests, and tokens from files. An account named by a token flag but
 * absent from the manifests gets a stable synthetic UID and no annotations; an account with
 * neither is not found (the plugin is then not run for its pods, as the kubelet skips it).
 */
export function serviceAccountAccess(
  accounts: readonly ServiceAccountEntry[],
  files: ServiceAccountTokenFiles,
): ServiceAccountAccess {
  const fileFor = (namespace: string, name: string) => files.byAccount.get(`${namespace}/${name}`) ?? files.fallback;
  return {
    async getServiceAccount(namespace, name): Promise<ServiceAccountInfo | undefined> {
      const found = accounts.find((a) => a.namespace === namespace && a.name === name);
      if (found !== undefined) return { uid: found.uid, annotations: found.annotations };
      return files.byAccount.has(`${namespace}/${name}`)
        ? { uid: syntheticUid(namespace, name), annotations: {} }
        : undefined;
    },
    async getServiceAccountToken(request) {
      const file = fileFor(request.namespace, request.serviceAccountName);
      if (file === undefined)
        throw new Error(
          `no token for service account ${request.namespace}/${request.serviceAccountName} (--service-account-token ${request.namespace}/${request.serviceAccountName}=FILE)`,
        );
      let token: string;
      try {
        token = (await readFile(file, 'utf8')).trim();
      } catch (err) {
        throw new Error(`cannot read the token file ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      if (token === '') throw new Error(`the token file ${file} is empty`);
      return token;
    },
  };
}
