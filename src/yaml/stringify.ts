import { stringify } from 'yaml';

/** Documents as one YAML stream (`---` between them), lines never folded, no anchors: what
 * `kimg webhook manifests` and `kimg registry manifests` print. */
export function stringifyAll(documents: readonly unknown[]): string {
  return documents.map((d) => stringify(d, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n');
}
