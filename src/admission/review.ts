/**
 * The AdmissionReview v1 contract (docs/semantics.md admission §1): reading a review strictly enough to answer it
 * (apiVersion, kind, `request.uid`), leniently about everything else (an odd `object` gets an
 * allowed answer, not an error), and the request budget from `?timeout=` (docs/semantics.md admission §4.10).
 */
import { parseGoDuration } from '../credentials/index.ts';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export interface GroupVersionKind {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
}

export interface AdmissionRequest {
  readonly uid: string;
  readonly kind?: GroupVersionKind;
  readonly resource?: { readonly group: string; readonly version: string; readonly resource: string };
  readonly subResource?: string;
  readonly requestKind?: GroupVersionKind;
  readonly name?: string;
  readonly namespace?: string;
  readonly operation?: string;
  readonly object?: unknown;
  readonly oldObject?: unknown;
  readonly dryRun?: boolean;
  readonly userInfo?: unknown;
  readonly options?: unknown;
}

export interface AdmissionStatus {
  readonly code: number;
  readonly message: string;
  readonly reason?: string;
}

export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: boolean;
  readonly status?: AdmissionStatus;
  readonly patchType?: 'JSONPatch';
  /** base64 of a JSON array of RFC 6902 operations. */
  readonly patch?: string;
  readonly warnings?: readonly string[];
  readonly auditAnnotations?: Readonly<Record<string, string>>;
}

export interface AdmissionReview {
  readonly apiVersion: typeof ADMISSION_API_VERSION;
  readonly kind: 'AdmissionReview';
  readonly request?: AdmissionRequest;
  readonly response?: AdmissionResponse;
}

export type ReviewParseResult =
  { readonly ok: true; readonly request: AdmissionRequest } | { readonly ok: false; readonly reason: string };

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function gvk(value: unknown): GroupVersionKind | undefined {
  if (!isRecord(value)) return undefined;
  const { group, version, kind } = value;
  if (typeof kind !== 'string' || kind === '') return undefined;
  return { group: typeof group === 'string' ? group : '', version: typeof version === 'string' ? version : '', kind };
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/**
 * Reads an AdmissionReview v1 from a request body. Refused (HTTP 400) only when the body is not
 * JSON, not an `admission.k8s.io/v1` `AdmissionReview`, or has no `request.uid`.
 */
export function parseAdmissionReview(body: string | Uint8Array): ReviewParseResult {
  const text =
    typeof body === 'string' ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return {
      ok: false,
      reason: `the body is not JSON: ${err instanceof Error ? err.message.slice(0, 200) : 'parse error'}`,
    };
  }
  if (!isRecord(value)) return { ok: false, reason: 'the body is not a JSON object' };
  if (value['apiVersion'] !== ADMISSION_API_VERSION || value['kind'] !== 'AdmissionReview') {
    return {
      ok: false,
      reason: `expected apiVersion ${ADMISSION_API_VERSION} and kind AdmissionReview, found ${JSON.stringify(value['apiVersion'])?.slice(0, 80)} ${JSON.stringify(value['kind'])?.slice(0, 80)}`,
    };
  }
  const request = value['request'];
  if (!isRecord(request)) return { ok: false, reason: 'the AdmissionReview has no request' };
  const uid = request['uid'];
  if (typeof uid !== 'string' || uid === '') return { ok: false, reason: 'the AdmissionReview request has no uid' };
  // Built field by field (this runs once per admission): only well-typed fields are kept.
  const out: { -readonly [K in keyof AdmissionRequest]: AdmissionRequest[K] } = { uid };
  const kind = gvk(request['kind']);
  if (kind !== undefined) out.kind = kind;
  const requestKind = gvk(request['requestKind']);
  if (requestKind !== undefined) out.requestKind = requestKind;
  const resource = request['resource'];
  if (isRecord(resource) && typeof resource['resource'] === 'string') {
    out.resource = {
      group: optionalString(resource['group']) ?? '',
      version: optionalString(resource['version']) ?? '',
      resource: resource['resource'],
    };
  }
  const subResource = optionalString(request['subResource']);
  if (subResource !== undefined) out.subResource = subResource;
  const name = optionalString(request['name']);
  if (name !== undefined) out.name = name;
  const namespace = optionalString(request['namespace']);
  if (namespace !== undefined) out.namespace = namespace;
  const operation = optionalString(request['operation']);
  if (operation !== undefined) out.operation = operation;
  if (request['object'] !== undefined) out.object = request['object'];
  if (request['oldObject'] !== undefined) out.oldObject = request['oldObject'];
  if (request['dryRun'] === true) out.dryRun = true;
  return { ok: true, request: out };
}

export const DEFAULT_TIMEOUT_MS = 10_000;

/** `?timeout=` as the apiserver sends it: a Go duration (`10s`, `1.5s`, `500ms`); missing or invalid → 10 s. */
export function parseTimeoutParameter(value: string | null | undefined): number {
  if (value === null || value === undefined || value === '') return DEFAULT_TIMEOUT_MS;
  // The apiserver sends one value per webhook configuration: parse it once.
  if (value === lastTimeout.value) return lastTimeout.ms;
  const nanoseconds = parseGoDuration(value);
  const ms = nanoseconds === undefined || nanoseconds <= 0n ? DEFAULT_TIMEOUT_MS : Number(nanoseconds / 1000n) / 1000;
  lastTimeout = { value, ms };
  return ms;
}

let lastTimeout = { value: '', ms: DEFAULT_TIMEOUT_MS };

/** The time the webhook gives registries: min(fraction × timeout, max). */
export function requestBudgetMs(timeoutMs: number, budgetFraction: number, maxBudgetMs: number): number {
  return Math.max(1, Math.min(budgetFraction * timeoutMs, maxBudgetMs));
}

/** The review wrapped around a response: apiVersion and kind exactly as the apiserver checks them. */
export function reviewOf(response: AdmissionResponse): AdmissionReview {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}
