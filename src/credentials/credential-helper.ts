/**
 * Docker credential helpers (docs/semantics.md registry §7): `docker-credential-<name> get`, the server
 * URL on stdin, `{ServerURL, Username, Secret}` on stdout. `Username` `<token>` makes `Secret` an
 * identity token; "credentials not found" means anonymous. Failures name the helper and server,
 * never the output (a misbehaving helper may print the secret anywhere).
 */
import { BasicCredential, IdentityTokenCredential, type Credential } from './credential.ts';
import { CredentialHelperError } from './errors.ts';
import { InputProblem, isJsonObject, parseJsonQuietly, readStringFields } from './go-json.ts';
import { runProgram, type ProgramRunner } from './run-program.ts';

export const HELPER_TIMEOUT_MS = 30_000;
const NOT_FOUND = /credentials not found/i;

export interface CredentialHelperOptions {
  /** Environment of the helper; its PATH locates `docker-credential-<name>`. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly timeoutMs?: number;
  readonly run?: ProgramRunner;
}

/** A helper name that is a plain program-name suffix, so config cannot point at arbitrary paths. */
export function isValidHelperName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name);
}

/** Runs `docker-credential-<helper> get`; undefined when the helper has no credentials. */
export async function getFromCredentialHelper(
  helper: string,
  serverURL: string,
  options: CredentialHelperOptions,
): Promise<Credential | undefined> {
  if (!isValidHelperName(helper)) throw new CredentialHelperError(helper, serverURL, 'invalid-name');
  const run = options.run ?? runProgram;
  const outcome = await run(`docker-credential-${helper}`, ['get'], {
    input: serverURL,
    env: options.env,
    timeoutMs: options.timeoutMs ?? HELPER_TIMEOUT_MS,
    maxOutputBytes: 1024 * 1024,
  });
  switch (outcome.kind) {
    case 'not-found':
      throw new CredentialHelperError(helper, serverURL, 'not-installed');
    case 'not-executable':
      throw new CredentialHelperError(helper, serverURL, 'not-installed', {
        problem: `cannot execute (${outcome.code})`,
      });
    case 'timeout':
      throw new CredentialHelperError(helper, serverURL, 'timeout');
    case 'output-too-large':
      throw new CredentialHelperError(helper, serverURL, 'invalid-output', { problem: 'more than 1 MiB' });
    case 'signalled':
      throw new CredentialHelperError(helper, serverURL, 'failed', { signal: outcome.signal });
    case 'exited':
      if (outcome.exitCode !== 0) {
        if (isNotFoundMessage(outcome.stdout) || isNotFoundMessage(outcome.stderr)) return undefined;
        throw new CredentialHelperError(helper, serverURL, 'failed', { exitCode: outcome.exitCode });
      }
      return parseHelperOutput(outcome.stdout.toString('utf8'), helper, serverURL);
  }
}

function isNotFoundMessage(output: Buffer): boolean {
  // Helpers print the message alone; a bounded look avoids scanning megabytes of noise.
  return output.length < 4096 && NOT_FOUND.test(output.toString('utf8'));
}

/** The credential in a helper's `get` output (Go JSON rules: field names case-insensitive). */
export function parseHelperOutput(stdout: string, helper: string, serverURL: string): Credential | undefined {
  try {
    const document = parseJsonQuietly(stdout, 'output');
    if (!isJsonObject(document)) throw new InputProblem('output is not a JSON object');
    const fields = readStringFields(document, ['ServerURL', 'Username', 'Secret'], '');
    const username = fields.Username ?? '';
    const secret = fields.Secret ?? '';
    if (username === '<token>') return secret === '' ? undefined : new IdentityTokenCredential(secret);
    if (username === '' && secret === '') return undefined;
    return new BasicCredential(username, secret);
  } catch (err) {
    if (err instanceof InputProblem) {
      // The problem text names fields and JSON types only, never values.
      throw new CredentialHelperError(helper, serverURL, 'invalid-output', { problem: err.message });
    }
    throw err;
  }
}
