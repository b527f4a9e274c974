/**
 * The grammar pieces upstream exports as regular expressions (DomainRegexp, anchored name,
 * ReferenceRegexp, IdentifierRegexp), as linear-time validators with RE2's group boundaries.
 * A group that did not participate is "" as in Go.
 */
import { isDomainAndPort, scanReference, splitAnchoredName } from './scanner.ts';

export { isIdentifier } from './scanner.ts';

/** Whether `s` is wholly `domainAndPort`: a host name, IPv4 or bracketed IPv6, optional port. */
export function matchDomain(s: string): boolean {
  return isDomainAndPort(s, 0, s.length);
}

/** `^(?:(domainAndPort)/)?(remote-name)$` as [domain, path]; a domain-shaped first component wins. */
export function matchAnchoredName(s: string): [domain: string, path: string] | undefined {
  return splitAnchoredName(s);
}

/** `^(name)(?::(tag))?(?:@(digest))?$` as [name, tag, digest], by the grammar only. */
export function matchReference(s: string): [name: string, tag: string, digest: string] | undefined {
  const scan = scanReference(s);
  if (!scan.ok) return undefined;
  const tagEnd = scan.digestStart < 0 ? s.length : scan.digestStart - 1;
  return [
    s.slice(0, scan.nameEnd),
    scan.tagStart < 0 ? '' : s.slice(scan.tagStart, tagEnd),
    scan.digestStart < 0 ? '' : s.slice(scan.digestStart),
  ];
}
