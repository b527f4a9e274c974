/**
 * Throwaway X.509 material made with the openssl CLI: a test CA, server (or client) certificates
 * it signs for arbitrary subject alternative names (`127.0.0.1`, `localhost`,
 * `webhook.kimg.svc`, …), and self-signed key pairs (e.g. a token signing key). Every call writes
 * files into a directory and returns both the paths and the PEM text.
 */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { run } from './processes.ts';
import { ensureTools } from './tools.ts';

export type KeyType = 'ec' | 'rsa';

export interface KeyPairFiles {
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
}

export type CertificateAuthority = KeyPairFiles;

export interface IssuedCertificate extends KeyPairFiles {
  /** The CA that signed it. */
  caFile: string;
  caPem: string;
  /** Subject alternative names in openssl syntax (`IP:127.0.0.1`, `DNS:localhost`). */
  subjectAltNames: string[];
}

export interface ServerCertificates extends IssuedCertificate {
  ca: CertificateAuthority;
  /** A directory holding only `ca.crt` (skopeo `--cert-dir`, docker `certs.d` style). */
  certDir: string;
}

export interface CertificateOptions {
  /** File name stem: `<name>.crt` and `<name>.key`. */
  name?: string;
  commonName?: string;
  keyType?: KeyType;
  days?: number;
}

export interface LeafOptions extends CertificateOptions {
  /** Host names and IP addresses (or `DNS:`/`IP:`-prefixed entries); default 127.0.0.1 and localhost. */
  sans?: readonly string[];
  /** Extended key usage; default `server`. */
  usage?: 'server' | 'client' | 'both';
  /** Output directory; default the CA's directory. */
  dir?: string;
}

const SAFE_NAME = /^[\w.*-]+$/;
const SAFE_COMMON_NAME = /^[\w .*:-]+$/;

function check(value: string, pattern: RegExp, what: string): string {
  if (!pattern.test(value))
    throw new Error(`unsupported ${what} ${JSON.stringify(value)} (allowed: ${pattern.source})`);
  return value;
}

/** `127.0.0.1` → `IP:127.0.0.1`, `localhost` → `DNS:localhost`; prefixed entries pass through. */
export function toSubjectAltName(entry: string): string {
  if (/^(IP|DNS|URI|email):/.test(entry)) return entry;
  return isIP(entry) ? `IP:${entry}` : `DNS:${check(entry, SAFE_NAME, 'DNS name')}`;
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  ensureTools(['openssl']);
  await run('openssl', args, { cwd });
}

async function generateKey(keyFile: string, keyType: KeyType, cwd: string): Promise<void> {
  const algorithm =
    keyType === 'ec'
      ? ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']
      : ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'];
  await openssl(['genpkey', ...algorithm, '-out', keyFile], cwd);
}

async function readPair(certFile: string, keyFile: string): Promise<KeyPairFiles> {
  const [certPem, keyPem] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  return { certFile, keyFile, certPem, keyPem };
}

/**
 * A self-signed certificate and its key. With `ca: true` (the default) it can sign others
 * (basicConstraints CA:TRUE, keyCertSign); a token signing key wants `ca: false`.
 */
export async function createSelfSigned(
  dirPath: string,
  options: CertificateOptions & { ca?: boolean } = {},
): Promise<KeyPairFiles> {
  const { name = 'ca', commonName = 'kimg test CA', keyType = 'ec', days = 3650, ca = true } = options;
  const dir = resolve(dirPath);
  await mkdir(dir, { recursive: true });
  check(name, SAFE_NAME, 'file name');
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  const configFile = join(dir, `${name}.cnf`);
  const extensions = ca
    ? ['basicConstraints = critical, CA:TRUE', 'keyUsage = critical, keyCertSign, cRLSign']
    : ['basicConstraints = critical, CA:FALSE', 'keyUsage = critical, digitalSignature'];
  await writeFile(
    configFile,
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      '[dn]',
      `CN = ${check(commonName, SAFE_COMMON_NAME, 'common name')}`,
      '[ext]',
      ...extensions,
      'subjectKeyIdentifier = hash',
      '',
    ].join('\n'),
  );
  await generateKey(keyFile, keyType, dir);
  await openssl(
    [
      'req',
      '-x509',
      '-new',
      '-config',
      configFile,
      '-extensions',
      'ext',
      '-key',
      keyFile,
      '-sha256',
      '-days',
      String(days),
      '-set_serial',
      `0x${randomBytes(8).toString('hex')}`,
      '-out',
      certFile,
    ],
    dir,
  );
  await rm(configFile, { force: true });
  return readPair(certFile, keyFile);
}

/** A fresh test CA (`ca.crt`, `ca.key`) in `dir`. */
export function createCertificateAuthority(
  dir: string,
  options: CertificateOptions = {},
): Promise<CertificateAuthority> {
  return createSelfSigned(dir, { ...options, ca: true });
}

/** A certificate signed by `ca` for the given names (default: a server cert for 127.0.0.1 and localhost). */
export async function issueCertificate(
  ca: CertificateAuthority,
  options: LeafOptions = {},
): Promise<IssuedCertificate> {
  const { name = 'server', sans = ['127.0.0.1', 'localhost'], keyType = 'ec', days = 3650, usage = 'server' } = options;
  const dir = resolve(options.dir ?? join(ca.certFile, '..'));
  await mkdir(dir, { recursive: true });
  check(name, SAFE_NAME, 'file name');
  const subjectAltNames = sans.map(toSubjectAltName);
  const commonName = options.commonName ?? sans[0] ?? name;
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  const csrFile = join(dir, `${name}.csr`);
  const extFile = join(dir, `${name}.ext`);
  const extendedKeyUsage = { server: 'serverAuth', client: 'clientAuth', both: 'serverAuth, clientAuth' }[usage];
  await writeFile(
    extFile,
    [
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature, keyEncipherment',
      `extendedKeyUsage = ${extendedKeyUsage}`,
      ...(subjectAltNames.length ? [`subjectAltName = ${subjectAltNames.join(', ')}`] : []),
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
      '',
    ].join('\n'),
  );
  await generateKey(keyFile, keyType, dir);
  await openssl(
    [
      'req',
      '-new',
      '-key',
      keyFile,
      '-subj',
      `/CN=${check(commonName, SAFE_COMMON_NAME, 'common name')}`,
      '-out',
      csrFile,
    ],
    dir,
  );
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      csrFile,
      '-CA',
      ca.certFile,
      '-CAkey',
      ca.keyFile,
      '-set_serial',
      `0x${randomBytes(8).toString('hex')}`,
      '-sha256',
      '-days',
      String(days),
      '-extfile',
      extFile,
      '-out',
      certFile,
    ],
    dir,
  );
  await Promise.all([rm(csrFile, { force: true }), rm(extFile, { force: true })]);
  return { ...(await readPair(certFile, keyFile)), caFile: ca.certFile, caPem: ca.certPem, subjectAltNames };
}

/**
 * A new CA plus one server certificate for `sans` in `dir` (`ca.crt`, `ca.key`, `server.crt`,
 * `server.key`), and `dir/ca/ca.crt` alone for tools that treat every file in a dir as trust
 * material (skopeo `--cert-dir`).
 */
export async function makeServerCertificates(
  dir: string,
  options: Omit<LeafOptions, 'dir' | 'usage'> & { caCommonName?: string } = {},
): Promise<ServerCertificates> {
  const ca = await createCertificateAuthority(dir, { keyType: options.keyType, commonName: options.caCommonName });
  const leaf = await issueCertificate(ca, { ...options, dir: resolve(dir), usage: 'server' });
  const certDir = join(resolve(dir), 'ca');
  await mkdir(certDir, { recursive: true });
  await copyFile(ca.certFile, join(certDir, 'ca.crt'));
  return { ...leaf, ca, certDir };
}
