/**
 * Answering AdmissionRequests (docs/semantics.md admission §4.4, §4.10–§4.15): the request gates, then per slot the
 * pinning rules (mutating) or the image policy (validating), within the request's budget.
 * Always a well-formed response: a bad image, a registry failure or an odd object never throws.
 */
import { defaultMutateConfig, type MutateConfig } from './config.ts';
import { podCredentials, type ClusterObjectSource, type CredentialLookup } from './pod-credentials.ts';
import type { ResolveFailure } from './errors.ts';
import { BudgetExpired } from './failures.ts';
import { showImage } from './images.ts';
import { imageWarning, prefixedImage, WARNING_LIMIT } from './messages.ts';
import { findImages, isCoveredKind, podSpecsOf, type GroupKind, type ImageSlot } from './pod-specs.ts';
import type { PinResult, Pinner } from './pinner.ts';
import { ImagePolicy } from './policy.ts';
import type { PolicyConfig } from './config.ts';
import { DEFAULT_TIMEOUT_MS, requestBudgetMs, type AdmissionRequest, type AdmissionResponse } from './review.ts';

export type DecisionReason =
  /** Mutating: at least one image pinned. */
  | 'Patched'
  /** Mutating: nothing to change. */
  | 'NotPatched'
  /** DELETE, CONNECT (or no operation). */
  | 'NoMutationForOperation'
  /** The webhook's own namespace. */
  | 'NoSelfManagement'
  /** `status`, `scale`, … (every subresource but `ephemeralcontainers`). */
  | 'NoMutationForSubresource'
  /** A kind without pod specs, or no object to look at. */
  | 'KindNotCovered'
  /** `skipControllerOwned`: e.g. a Deployment's ReplicaSet. */
  | 'ControllerOwned'
  /** Lookups failed under `onResolveError: allow`: allowed with warnings. */
  | 'ErrorIgnored'
  /** Lookups failed under `onResolveError: deny`. */
  | 'ResolveFailed'
  /** `verify-deny` and a digest its tag no longer points at. */
  | 'DigestMismatch'
  /** `invalidReference: deny` and an image that does not parse. */
  | 'InvalidReference'
  /** A bug: denied with HTTP-level detail in the message. */
  | 'InternalError'
  /** Validating: no violation. */
  | 'PolicyAllowed'
  /** Validating: violations under `enforcement: deny`. */
  | 'PolicyViolation'
  /** Validating: violations under `enforcement: warn`. */
  | 'PolicyWarning';

export interface PatchOperation {
  readonly op: 'replace';
  readonly path: string;
  readonly value: string;
}

export interface Decision {
  readonly response: AdmissionResponse;
  readonly reason: DecisionReason;
  /** The patch carried (base64) in the response, as operations. */
  readonly patch?: readonly PatchOperation[];
}

export interface AdmissionHandlerOptions {
  /** The `mutate` section; default the defaults of docs/semantics.md admission §3.1. */
  readonly mutate?: MutateConfig;
  /** The `validate` section; default neutral (nothing checked). */
  readonly policy?: ImagePolicy | Partial<PolicyConfig>;
  /** Needed for mutating. */
  readonly pinner?: Pinner;
  /** Secrets and ServiceAccounts for pull credentials. */
  readonly objects?: ClusterObjectSource;
  /** The last credential source (the mounted Docker config). */
  readonly dockerCredentials?: CredentialLookup;
  /** Request budget (docs/semantics.md admission §4.10): min(budgetFraction × timeout, maxBudgetMs). */
  readonly budgetFraction?: number;
  readonly maxBudgetMs?: number;
}

export interface MutateCallOptions {
  /** The apiserver's `?timeout=`; default 10 s. */
  readonly timeoutMs?: number;
  /** Called for each registry lookup this review starts (the review log's count). */
  readonly onLookup?: () => void;
}

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function allowed(uid: string, reason: DecisionReason, warnings: readonly string[] = []): Decision {
  return { response: { uid, allowed: true, ...(warnings.length > 0 && { warnings: [...new Set(warnings)] }) }, reason };
}

function denied(
  uid: string,
  reason: DecisionReason,
  message: string,
  warnings: readonly string[] = [],
  code = 403,
): Decision {
  return {
    response: {
      uid,
      allowed: false,
      status: { code, message, reason: code === 403 ? 'Forbidden' : 'InternalError' },
      ...(warnings.length > 0 && { warnings: [...new Set(warnings)] }),
    },
    reason,
  };
}

interface ControllerRule {
  readonly apiVersion: string;
  readonly kind: string;
  readonly ownerApiVersion: string;
  readonly ownerKind: string;
}

function parseControllerRules(entries: readonly string[]): ControllerRule[] {
  const out: ControllerRule[] = [];
  for (const entry of entries) {
    const m = /^(\S+) (\S+) owned by (\S+) (\S+)$/.exec(entry);
    if (m?.[1] !== undefined && m[2] !== undefined && m[3] !== undefined && m[4] !== undefined) {
      out.push({ apiVersion: m[1], kind: m[2], ownerApiVersion: m[3], ownerKind: m[4] });
    }
  }
  return out;
}

/** What the request's gates let through: the kind and object to look at. */
type Gate =
  | { readonly pass: false; readonly decision: Decision }
  | { readonly pass: true; readonly kind: GroupKind; readonly object: Readonly<Record<string, unknown>> };

/**
 * Answers one AdmissionRequest: the request gates (kind, namespace, operation, opt-in), then
 * per image slot the pinning rules (mutating: a JSON Patch) or the image policy (validating), all
 * within the request's time budget. Contract: it always returns a well-formed response; a bad
 * image, a registry failure or an odd object becomes a denial, a warning or an allowed response
 * according to the configured failure policy, never an exception.
 */
export class AdmissionHandler {
  readonly config: MutateConfig;
  readonly policy: ImagePolicy;
  private readonly pinner: Pinner | undefined;
  private readonly objects: ClusterObjectSource | undefined;
  private readonly dockerCredentials: CredentialLookup | undefined;
  private readonly budgetFraction: number;
  private readonly maxBudgetMs: number;
  private readonly controllerRules: readonly ControllerRule[];

  constructor(options: AdmissionHandlerOptions = {}) {
    this.config = options.mutate ?? defaultMutateConfig();
    this.policy = options.policy instanceof ImagePolicy ? options.policy : new ImagePolicy(options.policy ?? {});
    this.pinner = options.pinner;
    this.objects = options.objects;
    this.dockerCredentials = options.dockerCredentials;
    this.budgetFraction = options.budgetFraction ?? 0.8;
    this.maxBudgetMs = options.maxBudgetMs ?? 8000;
    this.controllerRules = parseControllerRules(this.config.skipControllerOwned);
  }

  /** The request gates of docs/semantics.md admission §4.4 (1–4), shared by both webhooks. */
  private gate(request: AdmissionRequest): Gate {
    const uid = request.uid;
    const operation = request.operation;
    if (operation !== 'CREATE' && operation !== 'UPDATE')
      return { pass: false, decision: allowed(uid, 'NoMutationForOperation') };
    if (request.namespace !== undefined && request.namespace === this.config.ownNamespace)
      return { pass: false, decision: allowed(uid, 'NoSelfManagement') };
    if (
      request.subResource !== undefined &&
      request.subResource !== '' &&
      request.subResource !== 'ephemeralcontainers'
    ) {
      return { pass: false, decision: allowed(uid, 'NoMutationForSubresource') };
    }
    const kind = request.kind;
    const object = request.object;
    if (kind === undefined || !isRecord(object)) return { pass: false, decision: allowed(uid, 'KindNotCovered') };
    const groupKind = { group: kind.group, kind: kind.kind };
    if (!isCoveredKind(groupKind, this.config.extraPodSpecPaths))
      return { pass: false, decision: allowed(uid, 'KindNotCovered') };
    return { pass: true, kind: groupKind, object };
  }

  /** docs/semantics.md admission §4.4 gate 5: the owner that makes this object someone else's to pin, if any. */
  private controllerOwner(request: AdmissionRequest, object: Readonly<Record<string, unknown>>): string | undefined {
    if (this.controllerRules.length === 0) return undefined;
    const kind = request.kind;
    const apiVersion =
      typeof object['apiVersion'] === 'string'
        ? object['apiVersion']
        : kind === undefined
          ? ''
          : kind.group === ''
            ? kind.version
            : `${kind.group}/${kind.version}`;
    const objectKind = typeof object['kind'] === 'string' ? object['kind'] : (kind?.kind ?? '');
    const metadata = isRecord(object['metadata']) ? object['metadata'] : {};
    const owners = Array.isArray(metadata['ownerReferences']) ? (metadata['ownerReferences'] as unknown[]) : [];
    for (const rule of this.controllerRules) {
      if (rule.apiVersion !== apiVersion || rule.kind !== objectKind) continue;
      for (const owner of owners) {
        if (!isRecord(owner) || owner['controller'] !== true) continue;
        if (owner['apiVersion'] === rule.ownerApiVersion && owner['kind'] === rule.ownerKind) {
          const ownerName = typeof owner['name'] === 'string' ? owner['name'] : '';
          const name =
            typeof metadata['name'] === 'string' && metadata['name'] !== '' ? metadata['name'] : (request.name ?? '');
          return `${objectKind} ${name}: not pinned: owned by ${rule.ownerKind} ${ownerName}, whose template is pinned instead`.slice(
            0,
            WARNING_LIMIT,
          );
        }
      }
    }
    return undefined;
  }

  /** The mutating webhook. Resolves within min(budgetFraction × timeout, maxBudgetMs). */
  async mutate(request: AdmissionRequest, options: MutateCallOptions = {}): Promise<Decision> {
    try {
      return await this.mutateUnsafe(request, options);
    } catch (err) {
      return denied(
        request.uid,
        'InternalError',
        `kimg: internal error while pinning images: ${err instanceof Error ? err.message.slice(0, 300) : String(err)}`,
        [],
        500,
      );
    }
  }

  private async mutateUnsafe(request: AdmissionRequest, options: MutateCallOptions): Promise<Decision> {
    const uid = request.uid;
    const gate = this.gate(request);
    if (!gate.pass) return gate.decision;
    const { kind, object } = gate;
    const owner = this.controllerOwner(request, object);
    if (owner !== undefined) return allowed(uid, 'ControllerOwned', [owner]);
    const pinner = this.pinner;
    if (pinner === undefined) return allowed(uid, 'NotPatched');

    const extra = this.config.extraPodSpecPaths;
    let slots = findImages(object, { kind, extraPodSpecPaths: extra });
    const warnings: string[] = [];
    if (request.operation === 'UPDATE' || request.subResource === 'ephemeralcontainers') {
      const old = findImages(request.oldObject, { kind, extraPodSpecPaths: extra });
      const counterpart = (slot: ImageSlot): ImageSlot | undefined =>
        slot.name === undefined
          ? undefined
          : old.find((o) => o.podSpec.path === slot.podSpec.path && o.list === slot.list && o.name === slot.name);
      if (request.subResource === 'ephemeralcontainers') {
        // Only ephemeral containers added by this call; everything else is untouched and silent.
        slots = slots.filter((slot) => slot.list === 'ephemeralContainers' && counterpart(slot) === undefined);
      } else if (this.config.onUpdate === 'changed-only') {
        slots = slots.filter((slot) => {
          const before = counterpart(slot);
          if (before === undefined || before.image !== slot.image) return true;
          // Unchanged: a tag-only image stays (no surprise rollout on a label change).
          if (pinner.classify(slot.image).kind !== 'tag') return true;
          warnings.push(imageWarning(slot.image, 'unchanged tag, not pinned on update'));
          return false;
        });
      }
    }
    if (slots.length === 0) return allowed(uid, 'NotPatched', warnings);

    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const budgetMs = requestBudgetMs(timeoutMs, this.budgetFraction, this.maxBudgetMs);
    const deadline = performance.now() + budgetMs;
    // The budget's timer starts only when a lookup has to wait for a registry.
    let controller: AbortController | undefined;
    let timer: NodeJS.Timeout | undefined;
    const signal = (): AbortSignal => {
      if (controller === undefined) {
        const created = new AbortController();
        controller = created;
        timer = setTimeout(() => created.abort(new BudgetExpired(budgetMs)), Math.max(0, deadline - performance.now()));
      }
      return controller.signal;
    };
    let results: PinResult[];
    try {
      results = await this.pinSlots(request, object, kind, slots, { signal, onLookup: options.onLookup });
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }

    const patch: PatchOperation[] = [];
    let denials: string[] | undefined;
    let failures: ResolveFailure[] | undefined;
    let denialReason: DecisionReason = 'InvalidReference';
    for (let i = 0; i < slots.length; i++) {
      const result = results[i];
      const slot = slots[i];
      if (result === undefined || slot === undefined) continue;
      if (result.changed) patch.push({ op: 'replace', path: slot.pointer, value: result.image });
      for (const w of result.warnings) warnings.push(w);
      if (result.denied !== undefined) {
        (denials ??= []).push(result.denied);
        if (result.status === 'mismatch') denialReason = 'DigestMismatch';
      }
      if (result.failure !== undefined) (failures ??= []).push(result.failure);
    }
    const failedOnce =
      failures === undefined ? [] : [...new Map(failures.map((f) => [`${f.image}\u0000${f.reason}`, f])).values()];

    if (denials !== undefined) return denied(uid, denialReason, `kimg: ${[...new Set(denials)].join('; ')}`, warnings);
    if (failedOnce.length > 0 && this.config.onResolveError === 'deny') {
      const listed = failedOnce
        .map((f) => `${showImage(f.image)}: ${f.reason}${f.detail !== '' ? ` (${f.detail})` : ''}`)
        .join('; ');
      return denied(
        uid,
        'ResolveFailed',
        `kimg: cannot pin ${failedOnce.length === 1 ? 'an image' : `${failedOnce.length} images`} to a digest: ${listed}`,
        warnings,
      );
    }
    for (const f of failedOnce) warnings.push(imageWarning(f.image, `not pinned: ${f.reason}`, f.detail));
    const reason: DecisionReason = failedOnce.length > 0 ? 'ErrorIgnored' : patch.length > 0 ? 'Patched' : 'NotPatched';
    if (patch.length === 0) return allowed(uid, reason, warnings);
    const response: AdmissionResponse = {
      uid,
      allowed: true,
      ...(warnings.length > 0 && { warnings: [...new Set(warnings)] }),
      patchType: 'JSONPatch',
      patch: Buffer.from(JSON.stringify(patch)).toString('base64'),
    };
    return { response, reason, patch };
  }

  /** Pins the slots, each pod spec with its own credentials (pull secrets, service account, Docker config). */
  private async pinSlots(
    request: AdmissionRequest,
    object: Readonly<Record<string, unknown>>,
    kind: GroupKind,
    slots: readonly ImageSlot[],
    call: { readonly signal: () => AbortSignal; readonly onLookup: (() => void) | undefined },
  ): Promise<PinResult[]> {
    const { signal, onLookup } = call;
    const pinner = this.pinner;
    if (pinner === undefined) return [];
    const metadata = isRecord(object['metadata']) ? object['metadata'] : {};
    const namespace =
      request.namespace !== undefined && request.namespace !== ''
        ? request.namespace
        : typeof metadata['namespace'] === 'string' && metadata['namespace'] !== ''
          ? metadata['namespace']
          : 'default';
    const specs = podSpecsOf(object, kind, this.config.extraPodSpecPaths);
    if (specs.length === 1 && specs[0] !== undefined) {
      // The usual case: one pod spec, one credential lookup for every slot.
      const credentials = podCredentials(specs[0].spec, namespace, this.objects, this.dockerCredentials);
      return pinner.pinAll(
        slots.map((slot) => slot.image),
        { signal, ...(onLookup !== undefined && { onLookup }), ...(credentials !== undefined && { credentials }) },
      );
    }
    const results: (PinResult | undefined)[] = new Array<PinResult | undefined>(slots.length);
    await Promise.all(
      specs.map(async ({ location, spec }) => {
        const indexes: number[] = [];
        slots.forEach((slot, i) => {
          if (slot.podSpec.path === location.path) indexes.push(i);
        });
        if (indexes.length === 0) return;
        const credentials = podCredentials(spec, namespace, this.objects, this.dockerCredentials);
        const pinned = await pinner.pinAll(
          indexes.map((i) => slots[i]?.image ?? ''),
          { signal, ...(onLookup !== undefined && { onLookup }), ...(credentials !== undefined && { credentials }) },
        );
        indexes.forEach((slotIndex, j) => {
          results[slotIndex] = pinned[j];
        });
      }),
    );
    return results.map(
      (r, i) =>
        r ?? {
          input: slots[i]?.image ?? '',
          image: slots[i]?.image ?? '',
          changed: false,
          status: 'blank',
          warnings: [],
        },
    );
  }

  /** The validating webhook: the image policy on every slot of the new object. Never contacts a registry. */
  validate(request: AdmissionRequest): Decision {
    try {
      return this.validateUnsafe(request);
    } catch (err) {
      return denied(
        request.uid,
        'InternalError',
        `kimg: internal error while checking images: ${err instanceof Error ? err.message.slice(0, 300) : String(err)}`,
        [],
        500,
      );
    }
  }

  private validateUnsafe(request: AdmissionRequest): Decision {
    const uid = request.uid;
    const gate = this.gate(request);
    if (!gate.pass) return gate.decision;
    const records = this.policy.validate(gate.object, {
      kind: gate.kind,
      extraPodSpecPaths: this.config.extraPodSpecPaths,
    });
    if (records.length === 0) return allowed(uid, 'PolicyAllowed');
    const auditAnnotations = { violations: JSON.stringify(records) };
    const lines = records.map((r) => `${r.path}: ${r.rule}: ${showImage(r.image)}`);
    if (this.policy.config.enforcement === 'warn') {
      const warnings = records.map((r) => prefixedImage(`${r.path}: ${r.rule}: `, r.image));
      return {
        response: { uid, allowed: true, warnings: [...new Set(warnings)], auditAnnotations },
        reason: 'PolicyWarning',
      };
    }
    const decision = denied(uid, 'PolicyViolation', `kimg image policy: ${lines.join('; ')}`);
    return { ...decision, response: { ...decision.response, auditAnnotations } };
  }
}
