/**
 * The kubelet's node credentials (docs/semantics.md kubelet §8.2): the first valid `config.json` in the kubelet
 * root dir, the working dir, `$HOME/.docker`, `/.docker`; else the first valid `.dockercfg` in
 * the root dir, the working dir, `$HOME`, `/`. Invalid files are skipped (reported to `onSkip`).
 * The answer, even "nothing", is kept for 5 minutes.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { readBoundedText } from './docker-config-files.ts';
import { DockerConfigError, NodeConfigError } from './errors.ts';
import { InputProblem, parseJsonQuietly } from './go-json.ts';
import { Keyring, type ImageName, type KeyringMatch } from './keyring.ts';
import { decodeDockercfg, decodeDockerConfigJson, type KubeletDockerConfig } from './kubelet-config.ts';
import type { TimeSource } from './provider-cache.ts';

export const NODE_CONFIG_LIFETIME_MS = 5 * 60 * 1000;

export interface NodeConfigLocations {
  /** The kubelet root directory (`--root-dir`), searched first. */
  readonly rootDir?: string;
  readonly workingDir?: string;
  readonly home?: string;
}

export interface NodeKeyringOptions extends NodeConfigLocations {
  readonly clock?: TimeSource;
  readonly lifetimeMs?: number;
  readonly onSkip?: (error: NodeConfigError) => void;
}

export function nodeConfigJsonPaths(locations: NodeConfigLocations = {}): string[] {
  const home = locations.home ?? homedir();
  return searchDirs(locations, [join(home, '.docker'), '/.docker']).map((dir) => resolve(dir, 'config.json'));
}

export function nodeDockercfgPaths(locations: NodeConfigLocations = {}): string[] {
  const home = locations.home ?? homedir();
  return searchDirs(locations, [home, '/']).map((dir) => resolve(dir, '.dockercfg'));
}

function searchDirs(locations: NodeConfigLocations, rest: string[]): string[] {
  const dirs = locations.rootDir === undefined ? [] : [locations.rootDir];
  return [...dirs, locations.workingDir ?? process.cwd(), ...rest];
}

/** The node's docker config and the file it came from, or undefined when there is none. */
export async function readNodeDockerConfig(
  options: NodeConfigLocations & { readonly onSkip?: (error: NodeConfigError) => void } = {},
): Promise<{ path: string; config: KubeletDockerConfig } | undefined> {
  const attempts: [string[], (document: unknown) => KubeletDockerConfig][] = [
    [nodeConfigJsonPaths(options), decodeDockerConfigJson],
    [nodeDockercfgPaths(options), decodeDockercfg],
  ];
  for (const [paths, decode] of attempts) {
    for (const path of paths) {
      try {
        const text = await readBoundedText(path);
        if (text === undefined) continue;
        return { path, config: decode(parseJsonQuietly(text, 'the file')) };
      } catch (err) {
        // The kubelet only logs 'error occurred while trying to unmarshal json' and moves on.
        if (err instanceof InputProblem) options.onSkip?.(new NodeConfigError(path, err.message));
        else if (err instanceof DockerConfigError) options.onSkip?.(new NodeConfigError(path, err.problem));
        else throw err;
      }
    }
  }
  return undefined;
}

/**
 * The node's own credentials as the kubelet finds them: the first valid `config.json`, else
 * the first valid `.dockercfg`, in the kubelet's search order. Invalid files are skipped and
 * reported to `onSkip`; the answer, even "nothing", is kept for 5 minutes and loaded once for
 * concurrent callers.
 */
export class NodeKeyring {
  readonly #options: NodeKeyringOptions;
  readonly #clock: TimeSource;
  #cached: { keyring: Keyring; expiresAt: number } | undefined;
  #loading: Promise<Keyring> | undefined;

  constructor(options: NodeKeyringOptions = {}) {
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
  }

  async keyring(): Promise<Keyring> {
    const cached = this.#cached;
    if (cached !== undefined && this.#clock() < cached.expiresAt) return cached.keyring;
    this.#loading ??= this.#load().finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }

  async lookup(image: ImageName): Promise<KeyringMatch[]> {
    return (await this.keyring()).lookup(image);
  }

  async #load(): Promise<Keyring> {
    const found = await readNodeDockerConfig(this.#options);
    const keyring = new Keyring();
    if (found !== undefined) keyring.add({ kind: 'node', path: found.path }, found.config);
    this.#cached = { keyring, expiresAt: this.#clock() + (this.#options.lifetimeMs ?? NODE_CONFIG_LIFETIME_MS) };
    return keyring;
  }
}
