/**
 * The per-plugin response cache (docs/semantics.md kubelet §9): keyed by image, registry (text before the first
 * `/`) or `global` as the response's `cacheKeyType` says; looked up image → registry → global.
 * An entry is valid until the clock passes its expiry (Go's `After`: valid at the exact instant);
 * expired entries go lazily on lookup, and a full sweep runs at most every 15 minutes.
 */
import type { KubeletDockerConfig } from './kubelet-config.ts';
import type { CacheKeyType } from './provider-response.ts';

/** Milliseconds since the epoch; injectable so expiry is tested without waiting. */
export type TimeSource = () => number;

export const CACHE_PURGE_INTERVAL_MS = 15 * 60 * 1000;
export const GLOBAL_CACHE_KEY = 'global';

export function registryOf(image: string): string {
  const slash = image.indexOf('/');
  return slash < 0 ? image : image.slice(0, slash);
}

export function cacheKeyFor(type: CacheKeyType, image: string): string {
  switch (type) {
    case 'Image':
      return image;
    case 'Registry':
      return registryOf(image);
    case 'Global':
      return GLOBAL_CACHE_KEY;
  }
}

/** Plain keys stay as they are; scoped ones cannot collide with them or with each other. */
function scopedKey(base: string, scope: string): string {
  return scope === '' ? base : JSON.stringify([base, scope]);
}

interface Entry {
  readonly config: KubeletDockerConfig;
  readonly expiresAt: number;
}

export class ProviderCache {
  readonly #clock: TimeSource;
  readonly #entries = new Map<string, Entry>();
  #lastPurge: number;

  constructor(clock: TimeSource) {
    this.#clock = clock;
    this.#lastPurge = clock();
  }

  /** `scope` (a service-account cache key, or `''`) is part of every key, as upstream's
   * `generateCacheKey(base, serviceAccountCacheKey)`. */
  get(image: string, scope = ''): KubeletDockerConfig | undefined {
    const now = this.#clock();
    if (now > this.#lastPurge + CACHE_PURGE_INTERVAL_MS) {
      for (const [key, entry] of this.#entries) if (now > entry.expiresAt) this.#entries.delete(key);
      this.#lastPurge = now;
    }
    for (const base of [image, registryOf(image), GLOBAL_CACHE_KEY]) {
      const key = scopedKey(base, scope);
      const entry = this.#entries.get(key);
      if (entry === undefined) continue;
      if (now > entry.expiresAt) {
        this.#entries.delete(key);
        continue;
      }
      return entry.config;
    }
    return undefined;
  }

  set(key: string, config: KubeletDockerConfig, expiresAt: number, scope = ''): void {
    this.#entries.set(scopedKey(key, scope), { config, expiresAt });
  }

  /** Entries held, expired or not (for tests and metrics). */
  get size(): number {
    return this.#entries.size;
  }
}
