/**
 * The slice of Go's `net/url` and `net` that the kubelet keyring depends on. Keyring keys and
 * image names are matched after `url.Parse("https://" + s)`, and a WHATWG `URL` differs from Go
 * on exactly the details that decide matches (case, default ports, IDNA, percent-decoding), so
 * this reproduces Go rather than approximating it with `new URL()`.
 */
import { isIPv6 } from 'node:net';

/** What the keyring reads from a parsed URL: Go's `URL.Host` (verbatim) and decoded `URL.Path`. */
export interface GoUrl {
  readonly host: string;
  readonly path: string;
}

type Mode = 'host' | 'zone' | 'path' | 'userinfo' | 'fragment';

/** Go's `url.Parse(raw)` for absolute `scheme://` URLs; undefined where Go returns an error. */
export function parseGoUrl(raw: string): GoUrl | undefined {
  const hash = raw.indexOf('#');
  const beforeFragment = hash < 0 ? raw : raw.slice(0, hash);
  if (hash >= 0 && unescape(raw.slice(hash + 1), 'fragment') === undefined) return undefined;
  if (containsControlByte(beforeFragment)) return undefined;

  const schemeEnd = schemeLength(beforeFragment);
  if (schemeEnd === undefined) return undefined;
  let rest = beforeFragment.slice(schemeEnd + 1);

  const question = rest.indexOf('?');
  if (question >= 0) rest = rest.slice(0, question);
  if (!rest.startsWith('//')) return undefined; // opaque or host-less: never a registry key

  let authority = rest.slice(2);
  let path = '';
  const slash = authority.indexOf('/');
  if (slash >= 0) {
    path = authority.slice(slash);
    authority = authority.slice(0, slash);
  }
  const host = parseAuthority(authority);
  if (host === undefined) return undefined;
  const decodedPath = unescape(path, 'path');
  if (decodedPath === undefined) return undefined;
  return { host, path: decodedPath };
}

/** `url.Parse("https://" + s)`, which is how the kubelet reads keys and images alike. */
export function parseSchemelessUrl(s: string): GoUrl | undefined {
  return parseGoUrl(`https://${s}`);
}

/** Go's `net.SplitHostPort`; undefined where Go returns an error. */
export function splitHostPort(hostport: string): { host: string; port: string } | undefined {
  const colon = hostport.lastIndexOf(':');
  if (colon < 0) return undefined;
  let host: string;
  let openFrom = 0;
  let closeFrom = 0;
  if (hostport.startsWith('[')) {
    const end = hostport.indexOf(']');
    if (end < 0) return undefined;
    if (end + 1 === hostport.length || end + 1 !== colon) return undefined;
    host = hostport.slice(1, end);
    openFrom = 1;
    closeFrom = end + 1;
  } else {
    host = hostport.slice(0, colon);
    if (host.includes(':')) return undefined;
  }
  if (hostport.slice(openFrom).includes('[')) return undefined;
  if (hostport.slice(closeFrom).includes(']')) return undefined;
  return { host, port: hostport.slice(colon + 1) };
}

function schemeLength(raw: string): number | undefined {
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    const letter = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
    const later = (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2d || c === 0x2e;
    if (letter || (i > 0 && later)) continue;
    if (c === 0x3a && i > 0) return i;
    return undefined;
  }
  return undefined;
}

function containsControlByte(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

function parseAuthority(authority: string): string | undefined {
  const at = authority.lastIndexOf('@');
  const host = parseHost(at < 0 ? authority : authority.slice(at + 1));
  if (host === undefined || at < 0) return host;
  const userinfo = authority.slice(0, at);
  if (!/^[A-Za-z0-9\-._:~!$&'()*+,;=%@]*$/.test(userinfo)) return undefined;
  const colon = userinfo.indexOf(':');
  const parts = colon < 0 ? [userinfo] : [userinfo.slice(0, colon), userinfo.slice(colon + 1)];
  return parts.every((part) => unescape(part, 'userinfo') !== undefined) ? host : undefined;
}

function parseHost(host: string): string | undefined {
  if (host.startsWith('[')) {
    const close = host.lastIndexOf(']');
    if (close < 0 || !validOptionalPort(host.slice(close + 1))) return undefined;
    const zone = host.slice(0, close).indexOf('%25');
    let literal: string | undefined;
    let result: string | undefined;
    if (zone >= 0) {
      const address = unescape(host.slice(0, zone), 'host');
      const zoneId = unescape(host.slice(zone, close), 'zone');
      const tail = unescape(host.slice(close), 'host');
      if (address === undefined || zoneId === undefined || tail === undefined) return undefined;
      literal = address.slice(1) + zoneId;
      result = address + zoneId + tail;
    } else {
      result = unescape(host, 'host');
      if (result === undefined) return undefined;
      literal = result.slice(1, result.lastIndexOf(']'));
    }
    // Go ≥ 1.25.2 (CVE-2025-47912): only an IPv6 address may sit inside brackets.
    return isIPv6(literal) ? result : undefined;
  }
  const colon = host.lastIndexOf(':');
  if (colon >= 0 && !validOptionalPort(host.slice(colon))) return undefined;
  return unescape(host, 'host');
}

function validOptionalPort(port: string): boolean {
  return port === '' || /^:[0-9]*$/.test(port);
}

/** Go's `shouldEscape` for the host and zone modes: the ASCII a host may carry unescaped. */
function allowedInHost(c: number): boolean {
  if ((c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39)) return true;
  return `-_.~!$&'()*+,;=:[]<>"`.includes(String.fromCharCode(c));
}

const HEX = /^[0-9A-Fa-f]{2}$/;

/**
 * Go's `unescape`: validates every `%XX` (and, for hosts, the characters allowed) and decodes.
 * Decoded bytes are read back as UTF-8; invalid sequences become U+FFFD.
 */
function unescape(s: string, mode: Mode): string | undefined {
  if (!s.includes('%')) {
    if (mode === 'host' || mode === 'zone') {
      for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c < 0x80 && !allowedInHost(c)) return undefined;
      }
    }
    return s;
  }
  const bytes: number[] = [];
  const encoder = new TextEncoder();
  for (let i = 0; i < s.length;) {
    const c = s.charCodeAt(i);
    if (c === 0x25) {
      const hex = s.slice(i + 1, i + 3);
      if (!HEX.test(hex)) return undefined;
      const value = Number.parseInt(hex, 16);
      if (mode === 'host' && value < 0x80 && hex !== '25') return undefined;
      // Go lets a zone escape only what it could also write plainly (and spaces, for Windows).
      if (mode === 'zone' && hex !== '25' && value !== 0x20 && !(value < 0x80 && allowedInHost(value))) {
        return undefined;
      }
      bytes.push(value);
      i += 3;
      continue;
    }
    if ((mode === 'host' || mode === 'zone') && c < 0x80 && !allowedInHost(c)) return undefined;
    const codePoint = s.codePointAt(i) ?? c;
    const char = String.fromCodePoint(codePoint);
    bytes.push(...encoder.encode(char));
    i += char.length;
  }
  return Buffer.from(bytes).toString('utf8');
}
