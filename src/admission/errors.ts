import { KimgError } from '../errors/index.ts';

/**
 * A configuration that cannot be used: an unknown key or value, a wrong type, an entry that would
 * match differently from what it says. `key` is the dotted path of the offending setting
 * (`validate.allowedRepositories[2]`); the CLI exits 2 on it.
 */
export class AdmissionConfigError extends KimgError<'ErrInvalidConfig'> {
  readonly key: string;

  constructor(key: string, problem: string) {
    super('ErrInvalidConfig', `invalid admission configuration: ${key}: ${problem}`);
    this.key = key;
  }
}

/**
 * Why an image could not be resolved. `reason` is the keyword of docs/semantics.md admission §4.5: `not found`, `auth`,
 * `timeout`, `platform not found`, or else the HTTP status or network error (`HTTP 500`,
 * `ECONNREFUSED`); `detail` says more, without credentials.
 */
export class ResolveFailure extends KimgError<'ErrResolveFailed'> {
  /** The image as written. */
  readonly image: string;
  readonly reason: string;
  readonly detail: string;
  /** The platform asked for, when the failure is its absence from the index. */
  readonly platform?: string;

  constructor(image: string, reason: string, detail = '', options: { platform?: string; error?: unknown } = {}) {
    super('ErrResolveFailed', detail === '' ? `${image}: ${reason}` : `${image}: ${reason} (${detail})`, {
      cause: options.error,
    });
    this.image = image;
    this.reason = reason;
    this.detail = detail;
    if (options.platform !== undefined) this.platform = options.platform;
  }
}
