/**
 * Where a registry may send us for a token, and whether our credentials may go there (spec S4).
 * ggcr and oras-go sent Basic credentials to any realm a registry named: an attacker host, an
 * http URL, or a cloud metadata address. Pure: no I/O.
 */
import { isIP } from 'node:net';

export type AddressClass = 'loopback' | 'private' | 'link-local' | 'unspecified' | 'public';

/** Strips the brackets URL.hostname keeps around IPv6 literals. */
export function bareHostname(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

/**
 * Classifies an IP literal (or `localhost`); DNS names are `public` here, since only their
 * resolved address tells (strict mode checks that at connect time). Hostnames must come from
 * the WHATWG URL parser, which already turned `0x7f.1` and `2130706433` into `127.0.0.1`.
 */
export function classifyHost(hostname: string): AddressClass {
  const host = bareHostname(hostname).toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return 'loopback';
  const family = isIP(host);
  if (family === 4) return classifyIPv4(host);
  if (family === 6) return classifyIPv6(host);
  return 'public';
}

function classifyIPv4(ip: string): AddressClass {
  const [a = 0, b = 0] = ip.split('.').map(Number);
  if (a === 0) return 'unspecified';
  if (a === 127) return 'loopback';
  if (a === 169 && b === 254) return 'link-local';
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)) return 'private';
  if (a === 100 && b >= 64 && b <= 127) return 'private'; // carrier-grade NAT
  return 'public';
}

function classifyIPv6(ip: string): AddressClass {
  const words = expandIPv6(ip);
  if (words === undefined) return 'public';
  if (words.every((w) => w === 0)) return 'unspecified';
  if (words.slice(0, 7).every((w) => w === 0) && words[7] === 1) return 'loopback';
  // IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible forms classify as their IPv4 address.
  if (words.slice(0, 5).every((w) => w === 0) && (words[5] === 0xffff || words[5] === 0)) {
    const hi = words[6] ?? 0;
    const lo = words[7] ?? 0;
    return classifyIPv4(`${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`);
  }
  const first = words[0] ?? 0;
  if ((first & 0xffc0) === 0xfe80) return 'link-local';
  if ((first & 0xfe00) === 0xfc00 || (first & 0xffc0) === 0xfec0) return 'private';
  return 'public';
}

function expandIPv6(ip: string): number[] | undefined {
  let text = ip.split('%')[0] ?? ip;
  // A trailing dotted IPv4 part becomes two words.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [, a, b, c, d] = v4.map(Number) as [number, number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] === '' ? [] : (halves[0] ?? '').split(':');
  const tail = halves.length === 2 ? (halves[1] === '' ? [] : (halves[1] ?? '').split(':')) : [];
  const missing = 8 - head.length - tail.length;
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return undefined;
  const words = [...head, ...Array<string>(missing).fill('0'), ...tail].map((w) => parseInt(w, 16));
  return words.some((w) => Number.isNaN(w)) ? undefined : words;
}

/**
 * Public suffixes with two labels (`co.uk`): names under them belong to unrelated parties.
 * Not the whole Public Suffix List (no dependency for it): the common ccTLD registries. A
 * missing entry would make two strangers under it look like one domain, so anything outside
 * this list and the common single-label TLDs is better handled with the realm allow-list.
 */
const MULTI_LABEL_SUFFIXES = new Set([
  'co.uk',
  'org.uk',
  'ac.uk',
  'gov.uk',
  'me.uk',
  'net.uk',
  'ltd.uk',
  'plc.uk',
  'com.au',
  'net.au',
  'org.au',
  'edu.au',
  'gov.au',
  'co.nz',
  'org.nz',
  'net.nz',
  'co.jp',
  'ne.jp',
  'or.jp',
  'ac.jp',
  'go.jp',
  'co.kr',
  'or.kr',
  'com.cn',
  'net.cn',
  'org.cn',
  'com.tw',
  'com.hk',
  'com.sg',
  'com.my',
  'co.in',
  'net.in',
  'org.in',
  'co.id',
  'co.th',
  'com.br',
  'net.br',
  'org.br',
  'com.ar',
  'com.mx',
  'com.tr',
  'co.za',
  'co.il',
  'com.ua',
  'com.pl',
]);

/**
 * Shared multi-tenant domains: a realm under these must be on the registry's exact host name.
 * (`evil.azurecr.io` is not `mine.azurecr.io`'s sibling.)
 */
const EXACT_HOST_SUFFIXES = [
  'amazonaws.com',
  'amazonaws.com.cn',
  'cloudfront.net',
  'azurecr.io',
  'azurecr.cn',
  'azurewebsites.net',
  'cloudapp.net',
  'cloudapp.azure.com',
  'windows.net',
  'pkg.dev',
  'appspot.com',
  'run.app',
  'googleusercontent.com',
  'herokuapp.com',
  'github.io',
  'githubusercontent.com',
  'gitlab.io',
  'netlify.app',
  'vercel.app',
  'pages.dev',
  'workers.dev',
  'fly.dev',
  'onrender.com',
  'ngrok.io',
  'ngrok-free.app',
  'ocir.io',
  'oraclecloud.com',
  'digitaloceanspaces.com',
  'r2.dev',
  'scw.cloud',
  'nip.io',
  'sslip.io',
  'localhost',
];

/**
 * The registrable domain (eTLD+1) of a DNS name, or undefined for IP literals, single-label
 * names and names under a shared multi-tenant domain (where only exact host equality counts).
 */
export function registrableDomain(hostname: string): string | undefined {
  const host = bareHostname(hostname).toLowerCase().replace(/\.$/, '');
  if (isIP(host) !== 0) return undefined;
  const labels = host.split('.');
  if (labels.length < 2 || labels.some((l) => l === '')) return undefined;
  if (EXACT_HOST_SUFFIXES.some((s) => host === s || host.endsWith(`.${s}`))) return undefined;
  const lastTwo = labels.slice(-2).join('.');
  if (MULTI_LABEL_SUFFIXES.has(lastTwo)) return labels.length >= 3 ? labels.slice(-3).join('.') : undefined;
  return lastTwo;
}

export interface RealmPolicyOptions {
  /** Realm host names (lowercase, without port) that are always acceptable and may receive credentials. */
  readonly allowList?: readonly string[];
}

export type RealmDecision =
  | { readonly ok: true; readonly sendCredentials: boolean; readonly withheldReason?: string }
  | { readonly ok: false; readonly reason: string };

/**
 * Decides whether a token realm named by a registry (`registryUrl` = the URL we sent the request
 * to) may be contacted, and whether credentials for that registry may be sent there.
 */
export function checkRealm(realm: URL, registryUrl: URL, options: RealmPolicyOptions = {}): RealmDecision {
  const realmHost = bareHostname(realm.hostname).toLowerCase();
  const registryHost = bareHostname(registryUrl.hostname).toLowerCase();
  const allowed = (options.allowList ?? []).some((h) => bareHostname(h).toLowerCase() === realmHost);

  if (realm.protocol !== 'https:' && realm.protocol !== 'http:') {
    return { ok: false, reason: `the realm's scheme ${realm.protocol} is not http(s)` };
  }
  if (realm.username !== '' || realm.password !== '') {
    return { ok: false, reason: 'the realm URL carries user information' };
  }
  if (registryUrl.protocol === 'https:' && realm.protocol !== 'https:' && !allowed) {
    return { ok: false, reason: 'an https registry named a plain-http realm' };
  }
  const realmClass = classifyHost(realmHost);
  if (realmClass !== 'public' && !allowed) {
    const registryClass = classifyHost(registryHost);
    if (registryClass !== realmClass) {
      return {
        ok: false,
        reason: `the realm is on a ${realmClass} address but the registry is not; allow-list the realm host if this is intended`,
      };
    }
  }

  if (allowed || realmHost === registryHost) return { ok: true, sendCredentials: true };
  const realmDomain = registrableDomain(realmHost);
  if (realmDomain !== undefined && realmDomain === registrableDomain(registryHost))
    return { ok: true, sendCredentials: true };
  return {
    ok: true,
    sendCredentials: false,
    withheldReason: `credentials for ${registryHost} were not sent to the realm host ${realmHost} (another domain); allow-list it to send them`,
  };
}
