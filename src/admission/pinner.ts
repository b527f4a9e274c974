/**
 * The pinning engine shared by the webhook and the offline CLI (docs/semantics.md admission §4.3–§4.9, §4.14): one
 * image as written in, the value to write and what to tell the user out. Lookups are cached per
 * (normalized reference, resolve mode, credentials) for a TTL, merged while in flight and
 * within one batch; images with a digest (under `keep`), skipped prefixes and invalid
 * references cost nothing. Optionally (stale-while-error, docs/semantics.md admission §7) a lookup that fails because
 * the registry could not answer is bridged with an answer that expired a bounded time ago.
 */
import { createHash } from 'node:crypto';
import { raceSignal } from '../signals/index.ts';
import { formatPlatform, isIndexMediaType, type Descriptor } from '../oci/index.ts';
import { SingleFlight } from '../signals/index.ts';
import { TtlCache } from './cache.ts';
import type { ExistingDigestMode, MutateConfig, OutputFormat, ResolverConfig } from './config.ts';
import { checkPlatform } from './config.ts';
import type { CredentialLookup } from './pod-credentials.ts';
import { ResolveFailure } from './errors.ts';
import { failureReason, isTransientFailure, toResolveFailure } from './failures.ts';
import { classifyImage, pinnedValue, type ImageClass } from './images.ts';
import { imageWarning } from './messages.ts';
import { selectPlatformManifest, type DigestResolver, type RegistryCredential } from './resolver.ts';

/** Image strings whose classification is kept (a few hundred bytes each). */
const CLASS_MEMO_ENTRIES = 4096;

export interface LookupEvent {
  /** The normalized reference looked up (`docker.io/library/nginx:1.25`). */
  readonly reference: string;
  readonly ms: number;
  readonly ok: boolean;
  /** The keyword (docs/semantics.md admission §4.5) when it failed. */
  readonly reason?: string;
}

/** A failed lookup answered from an expired cache entry (stale-while-error). */
export interface StaleServeEvent {
  /** The normalized reference (`docker.io/library/nginx:1.25`). */
  readonly reference: string;
  /** How long ago the digest served was looked up. */
  readonly ageMs: number;
  /** The keyword (docs/semantics.md admission §4.5) of the failure bridged (`timeout`, `HTTP 503`, `ECONNREFUSED`). */
  readonly reason: string;
}

export interface PinnerOptions {
  readonly resolver: DigestResolver;
  /** `preserve` (alias `tag+digest`, the default), `canonical`, `digest-only` (alias `digest`). */
  readonly output?: OutputFormat | 'tag+digest' | 'digest';
  /** `os/arch[/variant]`: pin that platform's manifest instead of the index. */
  readonly platform?: string;
  /** Images that already carry a digest: `keep` (default, no lookup), `verify-warn` (alias `warn`), `verify-deny` (alias `deny`). */
  readonly onMismatch?: ExistingDigestMode | 'warn' | 'deny';
  /** Tag → digest cache lifetime; default 60; 0 disables the cache (in-flight merging stays). */
  readonly cacheTtlSeconds?: number;
  /**
   * Stale-while-error: a lookup failing because the registry could not answer (timeout,
   * unreachable, 5xx, 429; never not found or auth) pins the cached digest if it expired less
   * than this long ago, with a warning. Default 0: off. With `cacheTtlSeconds` 0 it is the last
   * answer, up to this old.
   */
  readonly staleIfErrorSeconds?: number;
  /** Images starting with one of these (as written) are left alone, never looked up. */
  readonly skipPrefixes?: readonly string[];
  /** An image that does not parse: left alone with a warning (default), or denied. */
  readonly invalidReference?: 'warn-and-skip' | 'deny';
  /** Credentials for every pin without its own (e.g. the Docker config). */
  readonly credentials?: CredentialLookup;
  readonly maxCacheEntries?: number;
  readonly now?: () => number;
  /** Called after every registry lookup (metrics). */
  readonly onLookup?: (event: LookupEvent) => void;
  /** Called for every answer served stale (metrics). */
  readonly onStaleServe?: (event: StaleServeEvent) => void;
}

export interface PinContext {
  /** Candidate credentials for this pin (a pod's pull secrets…); replaces the Pinner's own. */
  readonly credentials?: CredentialLookup;
  /**
   * Ends the wait (the request budget): unresolved images fail with `timeout`. A function is
   * called only when a lookup has to wait for a registry (so a request answered from the cache
   * never sets up a timer).
   */
  readonly signal?: AbortSignal | (() => AbortSignal);
  /**
   * Called each time this call starts a registry lookup (not when it joins one in flight or is
   * answered from the cache): the webhook's per-review count, without async-context tracking.
   */
  readonly onLookup?: () => void;
}

export type PinStatus =
  /** A digest was looked up and appended. */
  | 'pinned'
  /** Empty or whitespace only. */
  | 'blank'
  /** Matched a skip prefix. */
  | 'skipped'
  /** Does not parse. */
  | 'invalid'
  /** Already has a digest; kept without a lookup. */
  | 'kept'
  /** Has a digest that agrees with its tag now. */
  | 'verified'
  /** Has a digest its tag no longer points at. */
  | 'mismatch'
  /** The lookup failed (`failure` says why). */
  | 'failed';

export interface PinResult {
  /** The image as written. */
  readonly input: string;
  /** The value to write: the pinned image, or `input` unchanged. */
  readonly image: string;
  readonly changed: boolean;
  readonly status: PinStatus;
  /** The digest written, or for `verified`/`mismatch` the digest the tag points at now. */
  readonly digest?: string;
  /** The normalized reference looked up. */
  readonly reference?: string;
  readonly warnings: readonly string[];
  /** Set when this image must deny the request (`verify-deny` mismatch, `invalidReference: deny`). */
  readonly denied?: string;
  /** Set when the lookup failed; the caller decides (webhook: `onResolveError`; CLI: fatal). */
  readonly failure?: ResolveFailure;
  /** Set when the digest came from an expired cache entry because the lookup failed (stale-while-error). */
  readonly stale?: StaleServeEvent;
}

export interface PinnerStats {
  /** Registry lookups started. */
  lookups: number;
  lookupFailures: number;
  /** Answers from the cache (or an earlier image of the same batch). */
  cacheHits: number;
  /** Answers that needed the registry (a new lookup or one already in flight). */
  cacheMisses: number;
  /** Of the misses, those that joined a lookup already in flight. */
  coalesced: number;
  /** Of the misses, those whose lookup failed and were answered from an expired entry (stale-while-error). */
  staleServes: number;
}

interface LookupOutcome {
  /** The digest to pin: the top-level one, or the platform's manifest. */
  readonly digest: string;
  readonly top: Descriptor;
  readonly credential: RegistryCredential | undefined;
  /** Set when this answer is an expired one, served because the lookup failed. */
  readonly stale?: StaleServeEvent;
}

/** A per-call memo, so one request looks each reference up once whatever the cache does. */
type Memo = Map<string, LookupOutcome | Promise<LookupOutcome>>;

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | undefined)?.then === 'function';
}

function signalOf(context: PinContext): AbortSignal | undefined {
  return typeof context.signal === 'function' ? context.signal() : context.signal;
}

/** `95 s`, `12 min`, `3 h`: the age of a stale digest, for warnings. */
function formatAge(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 3600)} h`;
}

function staleWarning(image: string, stale: StaleServeEvent, what: string): string {
  return imageWarning(
    image,
    `${what} a stale digest, looked up ${formatAge(stale.ageMs)} ago (registry lookup failed: ${stale.reason})`,
  );
}

function credentialIdentity(c: RegistryCredential): string {
  switch (c.kind) {
    case 'basic':
      return `basic\u0000${c.username}\u0000${c.password}`;
    case 'identityToken':
      return `identity\u0000${c.username ?? ''}\u0000${c.token}`;
    case 'registryToken':
      return `registry\u0000${c.token}`;
  }
}

/** Stands for a credential list in cache keys without holding the secrets. */
function fingerprint(credentials: readonly RegistryCredential[]): string {
  if (credentials.length === 0) return 'anonymous';
  return createHash('sha256').update(credentials.map(credentialIdentity).join('\u0001')).digest('base64url');
}

function normalizeOutput(output: PinnerOptions['output']): OutputFormat {
  if (output === undefined || output === 'tag+digest') return 'preserve';
  if (output === 'digest') return 'digest-only';
  return output;
}

function normalizeMismatch(mode: PinnerOptions['onMismatch']): ExistingDigestMode {
  if (mode === undefined) return 'keep';
  if (mode === 'warn') return 'verify-warn';
  if (mode === 'deny') return 'verify-deny';
  return mode;
}

/**
 * The pinning engine shared by the webhook and `kimg pin`: `pin(image)` turns an image as
 * written into the value to write (a digest-pinned reference, or the input unchanged) and what to
 * tell the user (status, warnings, a denial or failure). Lookups go through a `DigestResolver`,
 * cached per (normalized reference, resolve mode, credentials) for a TTL and shared while in
 * flight; images already pinned, skipped prefixes and invalid references cost no lookup. It never
 * throws for a bad image or a registry failure: those are in the result.
 */
export class Pinner {
  readonly output: OutputFormat;
  readonly platform: string | undefined;
  readonly existingDigest: ExistingDigestMode;
  readonly skipPrefixes: readonly string[];
  readonly invalidReference: 'warn-and-skip' | 'deny';
  readonly stats: PinnerStats = {
    lookups: 0,
    lookupFailures: 0,
    cacheHits: 0,
    cacheMisses: 0,
    coalesced: 0,
    staleServes: 0,
  };
  private readonly resolver: DigestResolver;
  private readonly credentials: CredentialLookup | undefined;
  private readonly cache: TtlCache<LookupOutcome>;
  private readonly flights = new SingleFlight<LookupOutcome>();
  private readonly childrenCache: TtlCache<readonly Descriptor[]>;
  private readonly childFlights = new SingleFlight<readonly Descriptor[]>();
  private readonly now: () => number;
  private readonly onLookup: ((event: LookupEvent) => void) | undefined;
  private readonly onStaleServe: ((event: StaleServeEvent) => void) | undefined;
  private readonly staleIfError: boolean;
  private readonly modeKey: string;
  private readonly anonymousSuffix: string;

  constructor(options: PinnerOptions) {
    this.resolver = options.resolver;
    this.output = normalizeOutput(options.output);
    this.platform = options.platform === undefined ? undefined : checkPlatform(options.platform, 'platform');
    this.existingDigest = normalizeMismatch(options.onMismatch);
    this.skipPrefixes = options.skipPrefixes ?? [];
    this.invalidReference = options.invalidReference ?? 'warn-and-skip';
    this.credentials = options.credentials;
    this.now = options.now ?? Date.now;
    this.onLookup = options.onLookup;
    this.onStaleServe = options.onStaleServe;
    const ttlMs = Math.max(0, options.cacheTtlSeconds ?? 60) * 1000;
    const staleMs = Math.max(0, options.staleIfErrorSeconds ?? 0) * 1000;
    this.staleIfError = staleMs > 0;
    this.cache = new TtlCache(ttlMs, options.maxCacheEntries ?? 10_000, this.now, staleMs);
    // An index's content never changes for its digest: keep its children longer than tags.
    this.childrenCache = new TtlCache(ttlMs > 0 ? Math.max(ttlMs, 3_600_000) : 0, 1000, this.now);
    this.modeKey = this.platform === undefined ? 'index' : `platform=${this.platform}`;
    this.anonymousSuffix = `\u0000${this.modeKey}\u0000anonymous`;
  }

  /** A Pinner configured by the `mutate` and `resolver` sections (docs/semantics.md admission §3). */
  static fromConfig(
    mutate: MutateConfig,
    resolver: Pick<ResolverConfig, 'cacheTtlSeconds'> & Partial<Pick<ResolverConfig, 'staleIfErrorSeconds'>>,
    imageResolver: DigestResolver,
    extra: Partial<PinnerOptions> = {},
  ): Pinner {
    return new Pinner({
      resolver: imageResolver,
      output: mutate.outputFormat,
      ...(mutate.resolve !== 'index' && { platform: mutate.resolve.platform }),
      onMismatch: mutate.existingDigest,
      cacheTtlSeconds: resolver.cacheTtlSeconds,
      ...(resolver.staleIfErrorSeconds !== undefined && { staleIfErrorSeconds: resolver.staleIfErrorSeconds }),
      skipPrefixes: mutate.skipPrefixes,
      invalidReference: mutate.invalidReference,
      ...extra,
    });
  }

  /** The resolve mode as the lock file and messages name it: `index` or the platform. */
  get resolveMode(): string {
    return this.platform ?? 'index';
  }

  /** The slot rules 1–4 of docs/semantics.md admission §4.4 for an image as written, without any lookup. */
  classify(image: string): ImageClass {
    // A cluster admits the same few hundred image strings over and over: parse each once.
    let known = this.classes.get(image);
    if (known === undefined) {
      if (this.classes.size >= CLASS_MEMO_ENTRIES) this.classes.clear();
      known = classifyImage(image, this.skipPrefixes);
      this.classes.set(image, known);
    }
    return known;
  }

  private readonly classes = new Map<string, ImageClass>();

  /** Pins one image. Never throws for a bad image or a registry failure: see `status`. */
  async pin(image: string, context: PinContext = {}): Promise<PinResult> {
    return this.pinWith(image, context, new Map());
  }

  /** Pins many images as one request: each distinct reference is looked up once. Results in input order. */
  async pinAll(images: readonly string[], context: PinContext = {}): Promise<PinResult[]> {
    const memo: Memo = new Map();
    let pending = false;
    const results: (PinResult | Promise<PinResult>)[] = new Array<PinResult | Promise<PinResult>>(images.length);
    for (let i = 0; i < images.length; i++) {
      const result = this.pinWith(images[i] ?? '', context, memo);
      if (isPromise(result)) pending = true;
      results[i] = result;
    }
    // Everything answered from the cache: no promise to wait for.
    return pending ? Promise.all(results) : (results as PinResult[]);
  }

  /** Forgets every cached digest. */
  clearCache(): void {
    this.cache.clear();
    this.childrenCache.clear();
  }

  get cacheSize(): number {
    return this.cache.size;
  }

  private unchanged(image: string, status: PinStatus, extra?: Partial<PinResult>): PinResult {
    return extra === undefined
      ? { input: image, image, changed: false, status, warnings: [] }
      : { input: image, image, changed: false, status, warnings: [], ...extra };
  }

  private pinned(image: string, c: Extract<ImageClass, { kind: 'tag' }>, outcome: LookupOutcome): PinResult {
    const value = pinnedValue(image, c.named, outcome.digest, this.output);
    const warnings =
      c.implicitLatest && this.output === 'preserve'
        ? [imageWarning(image, 'no tag, pinned the implicit latest tag')]
        : [];
    if (outcome.stale === undefined)
      return {
        input: image,
        image: value,
        changed: value !== image,
        status: 'pinned',
        digest: outcome.digest,
        reference: c.lookup,
        warnings,
      };
    warnings.push(staleWarning(image, outcome.stale, 'pinned'));
    return {
      input: image,
      image: value,
      changed: value !== image,
      status: 'pinned',
      digest: outcome.digest,
      reference: c.lookup,
      warnings,
      stale: outcome.stale,
    };
  }

  private failed(image: string, reference: string, err: unknown): PinResult {
    return this.unchanged(image, 'failed', { reference, failure: toResolveFailure(image, err, this.platform) });
  }

  // The hot path of a warm webhook: no closures, and no promise when the cache answers.
  private pinWith(image: string, context: PinContext, memo: Memo): PinResult | Promise<PinResult> {
    const c = this.classify(image);
    switch (c.kind) {
      case 'blank':
        return this.unchanged(image, 'blank');
      case 'skipped':
        return this.unchanged(image, 'skipped');
      case 'invalid': {
        const text =
          this.invalidReference === 'deny' ? 'invalid image reference' : 'invalid image reference, not pinned';
        const message = imageWarning(image, text, c.reason.replace(/^invalid reference format: /, ''));
        return this.invalidReference === 'deny'
          ? this.unchanged(image, 'invalid', { denied: message })
          : this.unchanged(image, 'invalid', { warnings: [message] });
      }
      case 'digest':
        return this.existing(image, c, context, memo);
      case 'tag':
        break;
    }
    let found: LookupOutcome | Promise<LookupOutcome>;
    try {
      found = this.lookup(c.lookup, c.named.domain, c.named.name, context, memo);
    } catch (err) {
      return this.failed(image, c.lookup, err);
    }
    if (!isPromise(found)) return this.pinned(image, c, found);
    return found.then(
      (outcome) => this.pinned(image, c, outcome),
      (err: unknown) => this.failed(image, c.lookup, err),
    );
  }

  /** docs/semantics.md admission §4.14: a digest is kept as is, or (`verify-*`, with a tag) checked against what the tag points at now. */
  private async existing(
    image: string,
    c: Extract<ImageClass, { kind: 'digest' }>,
    context: PinContext,
    memo: Memo,
  ): Promise<PinResult> {
    const kept: PinResult = { input: image, image, changed: false, status: 'kept', digest: c.digest, warnings: [] };
    if (this.existingDigest === 'keep' || c.tag === undefined) return kept;
    const reference = `${c.named.name}:${c.tag}`;
    const deny = this.existingDigest === 'verify-deny';
    let current: string;
    // Checked against an expired answer: say so, whatever the verdict.
    let staleNote: readonly string[] = [];
    try {
      const outcome = await this.lookup(reference, c.named.domain, c.named.name, context, memo);
      current = outcome.digest;
      if (outcome.stale !== undefined) staleNote = [staleWarning(image, outcome.stale, 'verified against')];
      let equal = current === c.digest;
      if (!equal && this.platform === undefined && isIndexMediaType(outcome.top.mediaType)) {
        const children = await this.children(c.named.name, outcome.top, outcome.credential, signalOf(context));
        equal = children.some((child) => child.digest === c.digest);
      }
      if (equal) return { ...kept, status: 'verified', digest: current, reference, warnings: staleNote };
    } catch (err) {
      const failure = toResolveFailure(image, err, this.platform);
      if (deny) return { ...kept, status: 'failed', reference, failure };
      return { ...kept, reference, warnings: [imageWarning(image, `digest not verified: ${failure.reason}`)] };
    }
    const text = `digest does not match the tag, which points at ${current}`;
    const message = imageWarning(image, text);
    return deny
      ? { ...kept, status: 'mismatch', digest: current, reference, denied: message, warnings: staleNote }
      : { ...kept, status: 'mismatch', digest: current, reference, warnings: [message, ...staleNote] };
  }

  private candidates(
    context: PinContext,
    registry: string,
    repository: string,
  ): readonly RegistryCredential[] | Promise<readonly RegistryCredential[]> {
    const lookup = context.credentials ?? this.credentials;
    if (lookup === undefined) return [];
    return lookup(registry, repository);
  }

  /** The cached answer (synchronously), or the lookup joined or started. Throws only for bugs. */
  private lookup(
    reference: string,
    registry: string,
    repository: string,
    context: PinContext,
    memo: Memo,
  ): LookupOutcome | Promise<LookupOutcome> {
    const credentials = this.candidates(context, registry, repository);
    if (isPromise(credentials)) {
      // Only a credential lookup that has to wait (a helper program) sets up the budget's timer.
      // Credential helpers take no signal: the request stops waiting at its budget, whatever
      // becomes of the program (docs/semantics.md admission §4.10).
      const signal = signalOf(context);
      const bounded = raceSignal(credentials, signal).catch((err: unknown) => {
        if (signal?.aborted !== true || err !== signal.reason) throw err;
        throw new ResolveFailure(
          reference,
          'timeout',
          'no pull credentials within the request budget (a credential helper did not answer)',
          { error: err },
        );
      });
      return bounded.then((list) => this.lookupWith(reference, repository, list, context, memo));
    }
    return this.lookupWith(reference, repository, credentials, context, memo);
  }

  private lookupWith(
    reference: string,
    repository: string,
    credentials: readonly RegistryCredential[],
    context: PinContext,
    memo: Memo,
  ): LookupOutcome | Promise<LookupOutcome> {
    const key =
      credentials.length === 0
        ? reference + this.anonymousSuffix
        : `${reference}\u0000${this.modeKey}\u0000${fingerprint(credentials)}`;
    // The cache first; the per-request memo only holds lookups in flight (it matters when the
    // cache is off or the answer is still coming).
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      this.stats.cacheHits++;
      return cached;
    }
    const memoized = memo.get(key);
    if (memoized !== undefined) {
      this.stats.cacheHits++;
      return memoized;
    }
    this.stats.cacheMisses++;
    const { result, joined } = this.flights.run(
      key,
      (signal) => this.fetch(reference, repository, credentials, signal),
      signalOf(context),
    );
    if (joined) this.stats.coalesced++;
    else context.onLookup?.();
    const stored = result.then(
      (outcome) => {
        this.cache.set(key, outcome);
        return outcome;
      },
      (err: unknown) => this.staleOrThrow(key, reference, err),
    );
    memo.set(key, stored);
    return stored;
  }

  /**
   * Stale-while-error: the expired answer for `key` when the failure says the registry could not
   * answer and the answer is inside the stale window; otherwise the failure stands.
   */
  private staleOrThrow(key: string, reference: string, err: unknown): LookupOutcome {
    if (!this.staleIfError || !isTransientFailure(err)) throw err;
    // Another request may have refreshed it meanwhile: then it is no stale answer.
    const fresh = this.cache.get(key);
    if (fresh !== undefined) return fresh;
    const entry = this.cache.stale(key);
    if (entry === undefined) throw err;
    const stale: StaleServeEvent = { reference, ageMs: entry.ageMs, reason: failureReason(err) };
    this.stats.staleServes++;
    this.onStaleServe?.(stale);
    return { ...entry.value, stale };
  }

  /** One lookup: HEAD (or GET) of the reference, trying each candidate credential on auth failures; in platform mode also the index. */
  private async fetch(
    reference: string,
    repository: string,
    credentials: readonly RegistryCredential[],
    signal: AbortSignal,
  ): Promise<LookupOutcome> {
    this.stats.lookups++;
    const started = this.now();
    try {
      const list: (RegistryCredential | undefined)[] = credentials.length > 0 ? [...credentials] : [undefined];
      let top: Descriptor | undefined;
      let used: RegistryCredential | undefined;
      for (let i = 0; i < list.length && top === undefined; i++) {
        used = list[i];
        try {
          top = await this.resolver.resolve(reference, { ...(used !== undefined && { credential: used }), signal });
        } catch (err) {
          if (i < list.length - 1 && failureReason(err) === 'auth') continue;
          throw err;
        }
      }
      if (top === undefined) throw new ResolveFailure(reference, 'error', 'no answer');
      let digest = top.digest;
      if (this.platform !== undefined && isIndexMediaType(top.mediaType)) {
        const children = await this.children(repository, top, used, signal);
        const child = selectPlatformManifest(children, this.platform);
        if (child === undefined) {
          const available = children
            .filter((m) => m.platform !== undefined)
            .map((m) => formatPlatform(m.platform ?? { os: '', architecture: '' }));
          throw new ResolveFailure(
            reference,
            'platform not found',
            `no ${this.platform} manifest in the index${available.length > 0 ? `; it has ${available.slice(0, 6).join(', ')}` : ''}`,
            { platform: this.platform },
          );
        }
        digest = child.digest;
      }
      this.onLookup?.({ reference, ms: this.now() - started, ok: true });
      return { digest, top, credential: used };
    } catch (err) {
      this.stats.lookupFailures++;
      this.onLookup?.({ reference, ms: this.now() - started, ok: false, reason: failureReason(err) });
      throw err;
    }
  }

  private async children(
    repository: string,
    index: Descriptor,
    credential: RegistryCredential | undefined,
    signal: AbortSignal | undefined,
  ): Promise<readonly Descriptor[]> {
    const cached = this.childrenCache.get(index.digest);
    if (cached !== undefined) return cached;
    const { result } = this.childFlights.run(
      `${repository}@${index.digest}`,
      (s) =>
        this.resolver.indexManifests(repository, index, { ...(credential !== undefined && { credential }), signal: s }),
      signal,
    );
    const children = await result;
    this.childrenCache.set(index.digest, children);
    return children;
  }
}
