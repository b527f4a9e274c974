/**
 * What `-v` and `--log-level` show, on standard error (standard output stays the command's
 * answer): `info` says which configuration was read, `debug` (`-v`) adds one line per HTTP
 * exchange with a registry, from the registry client's own events.
 */
import type { RegistryEvent } from '../registry/index.ts';
import { formatBytes } from './format.ts';
import { UsageError, writeLine, type Io } from './io.ts';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

const LEVELS: readonly LogLevel[] = ['error', 'warn', 'info', 'debug'];

export interface LogFlags {
  readonly verbose?: boolean;
  readonly logLevel?: string;
}

export interface Logger {
  readonly level: LogLevel;
  info(line: string): void;
  debug(line: string): void;
  /** A sink for the registry client's events: `http` exchanges at debug; nothing else (warnings
   * and retries are the command's own to report). */
  readonly registryEvents: ((event: RegistryEvent) => void) | undefined;
}

export function parseLogLevel(value: string): LogLevel {
  if ((LEVELS as readonly string[]).includes(value)) return value as LogLevel;
  throw new UsageError(`--log-level must be one of ${LEVELS.join(', ')}, got ${JSON.stringify(value)}`);
}

/** One trace line: `GET https://host/v2/…/manifests/v1 200 1.2kB 12ms` (the URL without its query). */
export function formatExchange(event: Extract<RegistryEvent, { type: 'http' }>): string {
  const outcome =
    event.status === 0
      ? `failed (${event.error ?? 'no response'})`
      : `${event.status}${event.bytes === undefined ? '' : ` ${formatBytes(event.bytes)}`}`;
  const retry = event.attempt > 1 ? ` (attempt ${event.attempt})` : '';
  return `${event.method} ${event.url} ${outcome} ${Math.round(event.ms)}ms${retry}`;
}

/** The logger the global flags ask for: `-v` is `--log-level debug`; default `warn`. */
export function loggerFrom(flags: LogFlags, io: Io): Logger {
  const level: LogLevel =
    flags.logLevel !== undefined ? parseLogLevel(flags.logLevel) : flags.verbose === true ? 'debug' : 'warn';
  const at = (wanted: LogLevel) => LEVELS.indexOf(level) >= LEVELS.indexOf(wanted);
  const write = (line: string) => writeLine(io.stderr, `kimg: ${line}`);
  return {
    level,
    info: (line) => {
      if (at('info')) write(line);
    },
    debug: (line) => {
      if (at('debug')) write(line);
    },
    registryEvents: at('debug')
      ? (event) => {
          if (event.type === 'http') write(formatExchange(event));
        }
      : undefined,
  };
}
