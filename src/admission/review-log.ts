/**
 * One log line per admission review (`kimg webhook serve`): who asked (uid, kind, namespace,
 * operation), what was answered (allowed or denied, the reason), how many registry look-ups the
 * review started, and how long it took. The look-ups are counted through the review's own
 * `onLookup` callback (no async-context tracking: Node 20's AsyncLocalStorage costs a promise
 * hook on every promise), so concurrent reviews do not count each other's.
 */
import type { Decision } from './handler.ts';
import type { AdmissionRequest } from './review.ts';

/** A value as logfmt writes it: bare when it is a plain token, else quoted. */
function value(text: string): string {
  return /^[\w./:@-]+$/.test(text) ? text : JSON.stringify(text);
}

/** `review webhook=mutate uid=… kind=apps/v1/Deployment namespace=… op=CREATE allowed=true reason=Patched lookups=1 ms=12`. */
export function formatReview(
  webhook: 'mutate' | 'validate',
  request: AdmissionRequest,
  decision: Decision,
  lookups: number,
  ms: number,
): string {
  const kind =
    request.kind === undefined
      ? ''
      : [request.kind.group, request.kind.version, request.kind.kind].filter((p) => p !== '').join('/');
  const fields: [string, string][] = [
    ['webhook', webhook],
    ['uid', request.uid],
    ['kind', kind],
    ['namespace', request.namespace ?? ''],
    ['name', request.name ?? ''],
    ['op', request.operation ?? ''],
    ['allowed', String(decision.response.allowed)],
    ['reason', decision.reason],
    ['lookups', String(lookups)],
    ['ms', String(Math.round(ms))],
  ];
  return `review ${fields.map(([k, v]) => `${k}=${value(v.slice(0, 256))}`).join(' ')}`;
}
