/** Reading the configuration (docs/semantics.md admission §3) from a YAML or JSON file. */
import { readFile } from 'node:fs/promises';
import { KimgError } from '../errors/index.ts';
import { parseAdmissionConfig, type AdmissionConfig, type ConfigEnvironment } from './config.ts';
import { AdmissionConfigError } from './errors.ts';
import { parse } from './yaml.ts';

/** The one document of a YAML or JSON file (empty file = `{}`). */
export async function readConfigFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new AdmissionConfigError(path, `cannot read the file (${code})`);
  }
  let documents: unknown[];
  try {
    documents = parse(text, path);
  } catch (err) {
    throw new AdmissionConfigError(path, err instanceof KimgError ? err.message : String(err));
  }
  if (documents.length > 1) throw new AdmissionConfigError(path, `expected one document, found ${documents.length}`);
  return documents[0] ?? {};
}

/**
 * Reads an admission configuration file (YAML or JSON) and checks it with
 * `parseAdmissionConfig`; an unknown key or bad value is an `AdmissionConfigError` naming it.
 */
export async function loadAdmissionConfig(path: string, environment: ConfigEnvironment = {}): Promise<AdmissionConfig> {
  return parseAdmissionConfig(await readConfigFile(path), environment);
}
