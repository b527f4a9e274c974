/**
 * An apiserver-like harness for the webhook (docs/semantics.md testing §6.1): wraps AdmissionRequests
 * in AdmissionReviews, POSTs them over real HTTPS to the webhook with a CA bundle and TLS server
 * name `<svc>.<ns>.svc`, appends `?timeout=Ns` and enforces it, re-implements the apiserver's
 * response checks (uid echoed, apiVersion/kind, patch and patchType together, no patch from a
 * validating webhook), applies the JSON Patch with an RFC 6902 library and re-checks invariants
 * (only image slots replaced, with non-empty strings; nothing else changed).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import https from 'node:https';
import fastJsonPatch, { type Operation } from 'fast-json-patch';
import type { AdmissionRequest, AdmissionResponse, AdmissionReview } from '../../src/admission/review.ts';

const { applyPatch, compare, deepClone } = fastJsonPatch;

export const SERVICE_NAME = 'kimg-webhook.kimg-system.svc';

const PLURALS: Record<string, string> = {
  Pod: 'pods',
  PodTemplate: 'podtemplates',
  ReplicationController: 'replicationcontrollers',
  ReplicaSet: 'replicasets',
  Deployment: 'deployments',
  StatefulSet: 'statefulsets',
  DaemonSet: 'daemonsets',
  Job: 'jobs',
  CronJob: 'cronjobs',
  ConfigMap: 'configmaps',
};

export interface RequestSpec {
  readonly object?: unknown;
  readonly oldObject?: unknown;
  readonly operation?: 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
  readonly namespace?: string;
  readonly subResource?: string;
  readonly dryRun?: boolean;
  /** Default from the object's apiVersion and kind. */
  readonly kind?: { group: string; version: string; kind: string };
  readonly name?: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An AdmissionRequest as the apiserver would send it. */
export function admissionRequest(spec: RequestSpec): AdmissionRequest {
  const object = spec.object ?? spec.oldObject;
  const apiVersion = isRecord(object) && typeof object['apiVersion'] === 'string' ? object['apiVersion'] : 'v1';
  const kindName = isRecord(object) && typeof object['kind'] === 'string' ? object['kind'] : 'Pod';
  const slash = apiVersion.indexOf('/');
  const kind = spec.kind ?? {
    group: slash < 0 ? '' : apiVersion.slice(0, slash),
    version: slash < 0 ? apiVersion : apiVersion.slice(slash + 1),
    kind: kindName,
  };
  const metadata = isRecord(object) && isRecord(object['metadata']) ? object['metadata'] : {};
  const operation = spec.operation ?? 'CREATE';
  return {
    uid: randomUUID(),
    kind,
    resource: {
      group: kind.group,
      version: kind.version,
      resource: PLURALS[kind.kind] ?? `${kind.kind.toLowerCase()}s`,
    },
    ...(spec.subResource !== undefined && { subResource: spec.subResource }),
    requestKind: kind,
    name: spec.name ?? (typeof metadata['name'] === 'string' ? metadata['name'] : ''),
    namespace: spec.namespace ?? 'team',
    operation,
    userInfo: { username: 'alice', groups: ['system:authenticated'] },
    ...(operation !== 'DELETE' && spec.object !== undefined && { object: spec.object }),
    ...(spec.oldObject !== undefined && { oldObject: spec.oldObject }),
    dryRun: spec.dryRun ?? false,
    options:
      operation === 'CREATE'
        ? { apiVersion: 'meta.k8s.io/v1', kind: 'CreateOptions' }
        : { apiVersion: 'meta.k8s.io/v1', kind: 'UpdateOptions' },
  } as AdmissionRequest;
}

export interface CallResult {
  readonly status: number;
  readonly response: AdmissionResponse;
  /** The decoded patch, when there is one. */
  readonly patch?: Operation[];
  /** The request object with the patch applied (the object itself when there is no patch). */
  readonly patched: unknown;
  readonly elapsedMs: number;
}

export interface WebhookClientOptions {
  readonly port: number;
  readonly caPem: string;
  readonly servername?: string;
  /** The client certificate the apiserver presents (its admission kubeconfig's user). */
  readonly clientCert?: { readonly certPem: string; readonly keyPem: string };
}

const IMAGE_SLOT =
  /^(\/[^/]+)*\/(containers|initContainers|ephemeralContainers)\/\d+\/image$|^(\/[^/]+)*\/volumes\/\d+\/image\/reference$/;

/** The raw HTTPS exchange, with a deadline. */
export function post(
  options: WebhookClientOptions,
  path: string,
  body: string | Buffer,
  timeoutMs = 10_000,
): Promise<{ status: number; body: string; elapsedMs: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: options.port,
        path,
        method: 'POST',
        servername: options.servername ?? SERVICE_NAME,
        ca: options.caPem,
        ...(options.clientCert !== undefined && { cert: options.clientCert.certPem, key: options.clientCert.keyPem }),
        agent: false,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          'content-length': Buffer.byteLength(body),
          host: `${options.servername ?? SERVICE_NAME}:443`,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            elapsedMs: performance.now() - started,
          });
        });
      },
    );
    const timer = setTimeout(
      () =>
        req.destroy(new Error(`the webhook did not answer ${path} within ${timeoutMs} ms (the apiserver's deadline)`)),
      timeoutMs,
    );
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}

/**
 * Sends a request to `/mutate` or `/validate` as the apiserver does and checks the answer as
 * it does (`VerifyAdmissionResponse`), then applies the patch and checks what it changed.
 */
export async function callWebhook(
  options: WebhookClientOptions,
  path: '/mutate' | '/validate',
  request: AdmissionRequest,
  timeoutSeconds = 10,
): Promise<CallResult> {
  const review: AdmissionReview = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request };
  const answer = await post(
    options,
    `${path}?timeout=${timeoutSeconds}s`,
    JSON.stringify(review),
    timeoutSeconds * 1000,
  );
  assert.equal(answer.status, 200, `HTTP ${answer.status}: ${answer.body}`);
  const parsed = JSON.parse(answer.body) as Record<string, unknown>;
  assert.equal(parsed['apiVersion'], 'admission.k8s.io/v1');
  assert.equal(parsed['kind'], 'AdmissionReview');
  const response = parsed['response'] as AdmissionResponse;
  assert.ok(isRecord(response), 'the review has a response');
  assert.equal(response.uid, request.uid, 'uid echoed');
  assert.equal(typeof response.allowed, 'boolean');
  assert.equal(
    response.patch === undefined,
    response.patchType === undefined,
    'patch and patchType together or neither',
  );
  if (path === '/validate') assert.equal(response.patch, undefined, 'a validating webhook sends no patch');
  if (!response.allowed) {
    assert.equal(response.patch, undefined, 'a denial carries no patch');
    assert.ok(
      isRecord(response.status) && typeof response.status.message === 'string' && response.status.message !== '',
      'a denial has a status message',
    );
  }
  for (const warning of response.warnings ?? []) {
    assert.equal(typeof warning, 'string');
    assert.ok(warning.length <= 256, `warning over 256 characters: ${warning}`);
  }
  if (response.auditAnnotations !== undefined)
    for (const value of Object.values(response.auditAnnotations)) assert.equal(typeof value, 'string');
  if (response.patch === undefined)
    return { status: answer.status, response, patched: request.object, elapsedMs: answer.elapsedMs };

  assert.equal(response.patchType, 'JSONPatch');
  const operations = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as Operation[];
  assert.ok(Array.isArray(operations) && operations.length > 0, 'a patch is a non-empty array');
  for (const op of operations) {
    assert.deepEqual(Object.keys(op).sort(), ['op', 'path', 'value']);
    assert.equal(op.op, 'replace', `only replace operations: ${JSON.stringify(op)}`);
    assert.match(op.path, IMAGE_SLOT, `only image slots: ${op.path}`);
    assert.ok(
      'value' in op && typeof op.value === 'string' && op.value.trim() !== '',
      'replacement images are non-empty strings',
    );
  }
  const original = deepClone(request.object) as object;
  const patched = applyPatch(deepClone(request.object) as object, operations, true, false).newDocument;
  const changes = compare(original, patched);
  assert.deepEqual(
    changes.map((c) => c.path).sort(),
    operations.map((o) => o.path).sort(),
    'the patch changes exactly the replaced image slots',
  );
  return { status: answer.status, response, patch: operations, patched, elapsedMs: answer.elapsedMs };
}

/** A patch as `{path: value}`, for order-insensitive comparisons. */
export function patchMap(patch: readonly Operation[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const op of patch ?? []) out[op.path] = 'value' in op ? op.value : undefined;
  return out;
}
