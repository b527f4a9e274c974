import { KimgError } from '../../errors/index.ts';

/**
 * A registry configuration file kimg cannot use: unreadable, not TOML, or a value of the wrong
 * type or meaning. `file` is the path, `line`/`column` are set when the TOML parser knows them,
 * `problem` is the reason alone.
 */
export class HostsConfigError extends KimgError<'ErrHostsConfig'> {
  readonly file: string;
  readonly problem: string;
  readonly line?: number;
  readonly column?: number;

  constructor(file: string, problem: string, options?: { line?: number; column?: number; cause?: unknown }) {
    const where = options?.line !== undefined ? `${file}:${options.line}` : file;
    super(
      'ErrHostsConfig',
      `${where}: ${problem}`,
      options?.cause !== undefined ? { cause: options.cause } : undefined,
    );
    this.file = file;
    this.problem = problem;
    if (options?.line !== undefined) this.line = options.line;
    if (options?.column !== undefined) this.column = options.column;
  }
}

/** registries.conf marks the repository's registry `blocked = true`. */
export class RegistryBlockedError extends KimgError<'ErrRegistryBlocked'> {
  /** `domain/path` of the repository that was asked for. */
  readonly repository: string;
  /** The `[[registry]]` prefix that blocks it. */
  readonly prefix: string;
  readonly file: string;

  constructor(repository: string, prefix: string, file: string) {
    super(
      'ErrRegistryBlocked',
      `pulling ${repository} is blocked: [[registry]] prefix ${JSON.stringify(prefix)} has blocked = true in ${file}`,
    );
    this.repository = repository;
    this.prefix = prefix;
    this.file = file;
  }
}
