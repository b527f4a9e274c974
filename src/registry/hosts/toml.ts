/** Reading registry configuration files: bounded reads, TOML with typed errors, typed fields. */
import { readFile } from 'node:fs/promises';
import { TomlError, parse, type TomlTableWithoutBigInt } from 'smol-toml';
import { HostsConfigError } from './errors.ts';

/** Configuration files are small; anything larger is a mistake (or not a config file). */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

export type TomlTable = TomlTableWithoutBigInt;
type TomlValue = TomlTable[string];

/** The file's text, or undefined when it does not exist (and `optional`). */
export async function readConfigFile(file: string, optional: boolean): Promise<string | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (optional && (code === 'ENOENT' || code === 'ENOTDIR')) return undefined;
    throw new HostsConfigError(file, `cannot read: ${code ?? (err as Error).message}`, { cause: err });
  }
  if (bytes.length > MAX_CONFIG_FILE_BYTES) {
    throw new HostsConfigError(file, `larger than ${MAX_CONFIG_FILE_BYTES} bytes`);
  }
  return bytes.toString('utf8');
}

export function parseTomlFile(text: string, file: string): TomlTable {
  try {
    return parse(text, { unsafeKeyBehaviour: 'throw', maxDepth: 32 });
  } catch (err) {
    if (err instanceof TomlError) {
      const problem = (err.message.split('\n')[0] ?? err.message).replace(/^Invalid TOML document: /, '');
      throw new HostsConfigError(file, `not valid TOML: ${problem}`, {
        line: err.line,
        column: err.column,
        cause: err,
      });
    }
    throw new HostsConfigError(file, `not valid TOML: ${(err as Error).message}`, { cause: err });
  }
}

/** Typed access to one table, naming `file` and the key path in errors. */
export class TableReader {
  constructor(
    readonly file: string,
    readonly table: TomlTable,
    /** Dotted path of this table, e.g. `host."https://mirror"`; '' at the top. */
    readonly where: string,
  ) {}

  private fail(key: string, problem: string): never {
    throw new HostsConfigError(this.file, `${this.name(key)} ${problem}`);
  }

  name(key: string): string {
    const k = /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
    return this.where === '' ? k : `${this.where}.${k}`;
  }

  has(key: string): boolean {
    return Object.hasOwn(this.table, key);
  }

  raw(key: string): TomlValue | undefined {
    return this.has(key) ? this.table[key] : undefined;
  }

  string(key: string): string | undefined {
    const v = this.raw(key);
    if (v === undefined || typeof v === 'string') return v;
    return this.fail(key, `must be a string, not ${describe(v)}`);
  }

  boolean(key: string): boolean | undefined {
    const v = this.raw(key);
    if (v === undefined || typeof v === 'boolean') return v;
    return this.fail(key, `must be true or false, not ${describe(v)}`);
  }

  stringArray(key: string): string[] | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) {
      return this.fail(key, `must be an array of strings, not ${describe(v)}`);
    }
    return v as string[];
  }

  /** A string or an array of strings (hosts.toml `ca`, header values). */
  stringOrArray(key: string): string[] | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (typeof v === 'string') return [v];
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
    return this.fail(key, `must be a string or an array of strings, not ${describe(v)}`);
  }

  subtable(key: string): TableReader | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (!isTable(v)) return this.fail(key, `must be a table, not ${describe(v)}`);
    return new TableReader(this.file, v, this.name(key));
  }

  /** An array of tables (`[[registry]]`). */
  tableArray(key: string): TableReader[] | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || !v.every(isTable)) return this.fail(key, `must be an array of tables, not ${describe(v)}`);
    return (v as TomlTable[]).map((t, i) => new TableReader(this.file, t, `${this.name(key)}[${i}]`));
  }

  /** Raises a configuration error about this table itself. */
  errorHere(problem: string): never {
    throw new HostsConfigError(this.file, `${this.where} ${problem}`);
  }

  /** Raises a configuration error about `key` of this table. */
  error(key: string, problem: string): never {
    return this.fail(key, problem);
  }
}

export function isTable(v: unknown): v is TomlTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (isTable(v)) return 'a table';
  if (v instanceof Date) return 'a date';
  return `${typeof v} ${JSON.stringify(v)}`;
}
