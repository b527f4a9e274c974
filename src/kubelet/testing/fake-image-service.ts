/**
 * An in-memory image service for tests and examples: a "registry" of images (some private), the
 * images "present on the node", scripted failures, and a log of every call. No network, no disk.
 */
import type { BasicCredential } from '../../credentials/index.ts';
import { KimgError } from '../../errors/index.ts';
import { parseDockerRef } from '../../reference/index.ts';
import type { ImageInfo, ImageResolver, ImageService, PullImageOptions, ResolvedImage } from '../image-service.ts';

export interface FakeRemoteImage {
  readonly digest: string;
  readonly size?: number;
  /** Platforms offered; default `['linux/amd64']`. */
  readonly platforms?: readonly string[];
  /** A private repository: only these username/password pairs may pull from it. */
  readonly auth?: readonly { readonly username: string; readonly password: string }[];
}

export interface FakeCall {
  readonly op: 'getImageRef' | 'pullImage' | 'getImageSize' | 'listImages' | 'removeImage' | 'resolveImage';
  readonly image: string;
  /** The username of the credential a pull or resolve used (never the password). */
  readonly username?: string;
}

function normalize(image: string): string {
  return parseDockerRef(image).toString();
}

/**
 * An in-memory image service for tests and examples: a "registry" of images (some private,
 * with the credentials that may pull them), the images present on the node, scripted failures
 * and a log of every call (`calls`). No network, no disk.
 */
export class FakeImageService implements ImageService, ImageResolver {
  readonly calls: FakeCall[] = [];
  readonly #remote = new Map<string, FakeRemoteImage>();
  readonly #private = new Map<string, FakeRemoteImage['auth'] & object>();
  readonly #local = new Map<string, { id: string; size: number }>();
  readonly #failures: (string | Error)[] = [];
  #inspectError: string | undefined;
  #hold: Promise<void> | undefined;
  readonly platform: string;

  constructor(options: { platform?: string } = {}) {
    this.platform = options.platform ?? 'linux/amd64';
  }

  /** Puts an image in the fake registry; `auth` makes its whole repository private. */
  addRemote(image: string, remote: FakeRemoteImage): this {
    const ref = parseDockerRef(image);
    this.#remote.set(ref.toString(), remote);
    if (remote.auth !== undefined) this.#private.set(`${ref.domain}/${ref.path}`, remote.auth);
    return this;
  }

  /** Puts an image on the "node", as if pre-loaded. */
  addLocal(image: string, id: string, size = 1000): this {
    this.#local.set(normalize(image), { id, size });
    return this;
  }

  /** The next pulls fail with these errors (text or Error), in order. */
  failNextPulls(...errors: (string | Error)[]): this {
    this.#failures.push(...errors);
    return this;
  }

  /** ImageStatus fails with this text until cleared. */
  failInspect(text: string | undefined): this {
    this.#inspectError = text;
    return this;
  }

  /** Pulls wait until the returned function is called. */
  holdPulls(): () => void {
    let release!: () => void;
    this.#hold = new Promise<void>((resolve) => (release = resolve));
    return () => {
      this.#hold = undefined;
      release();
    };
  }

  count(op: FakeCall['op']): number {
    return this.calls.filter((c) => c.op === op).length;
  }

  localIds(): string[] {
    return [...new Set([...this.#local.values()].map((v) => v.id))];
  }

  async getImageRef(image: string): Promise<string> {
    this.calls.push({ op: 'getImageRef', image });
    if (this.#inspectError !== undefined) throw new KimgError('ErrImageInspect', this.#inspectError);
    return this.#local.get(normalize(image))?.id ?? '';
  }

  async pullImage(
    image: string,
    credential: BasicCredential | undefined,
    _options: PullImageOptions = {},
  ): Promise<string> {
    this.calls.push({ op: 'pullImage', image, ...(credential !== undefined && { username: credential.username }) });
    if (this.#hold !== undefined) await this.#hold;
    const failure = this.#failures.shift();
    if (failure !== undefined) throw typeof failure === 'string' ? new KimgError('ErrPull', failure) : failure;
    const remote = this.#check(image, credential);
    if (!remote.platforms.includes(this.platform)) {
      throw new KimgError(
        'ErrPlatformNotFound',
        `${normalize(image)}: no image for ${this.platform}; available: ${remote.platforms.join(', ')}`,
      );
    }
    this.#local.set(normalize(image), { id: remote.digest, size: remote.size ?? 1000 });
    return remote.digest;
  }

  async resolveImage(
    image: string,
    credential: BasicCredential | undefined,
    options: { platform: string },
  ): Promise<ResolvedImage> {
    this.calls.push({ op: 'resolveImage', image, ...(credential !== undefined && { username: credential.username }) });
    const remote = this.#check(image, credential);
    const matches = remote.platforms.includes(options.platform);
    if (!matches && remote.platforms.length > 1) {
      throw new KimgError(
        'ErrPlatformNotFound',
        `${normalize(image)}: no image for ${options.platform}; available: ${remote.platforms.join(', ')}`,
      );
    }
    return {
      digest: remote.digest,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      platforms: remote.platforms,
      platformDigest: matches ? remote.digest : undefined,
      size: remote.size,
    };
  }

  #check(image: string, credential: BasicCredential | undefined): FakeRemoteImage & { platforms: readonly string[] } {
    const ref = parseDockerRef(image);
    const name = ref.toString();
    const allowed = this.#private.get(`${ref.domain}/${ref.path}`);
    if (
      allowed !== undefined &&
      !(
        credential !== undefined &&
        allowed.some((a) => a.username === credential.username && a.password === credential.password)
      )
    ) {
      throw new KimgError('ErrUnauthorized', `resolve ${name}: authentication required or refused (HTTP 401)`);
    }
    const remote = this.#remote.get(name);
    if (remote === undefined) throw new KimgError('ErrManifestUnknown', `resolve ${name}: manifest unknown (HTTP 404)`);
    return { ...remote, platforms: remote.platforms ?? ['linux/amd64'] };
  }

  async getImageSize(image: string): Promise<number> {
    this.calls.push({ op: 'getImageSize', image });
    return this.#local.get(normalize(image))?.size ?? 0;
  }

  async listImages(): Promise<ImageInfo[]> {
    this.calls.push({ op: 'listImages', image: '' });
    const byId = new Map<string, { tags: string[]; size: number }>();
    for (const [name, { id, size }] of this.#local) {
      const entry = byId.get(id) ?? { tags: [], size };
      entry.tags.push(name);
      byId.set(id, entry);
    }
    return [...byId].map(([id, { tags, size }]) => ({
      id,
      repoTags: tags.filter((t) => !t.includes('@')),
      repoDigests: tags.map((t) => `${t.replace(/[:@].*$/, '')}@${id}`),
      size,
    }));
  }

  async removeImage(imageRef: string): Promise<void> {
    this.calls.push({ op: 'removeImage', image: imageRef });
    for (const [name, { id }] of this.#local) if (id === imageRef) this.#local.delete(name);
  }
}
