/** YAML streams in and out (the `yaml` package), with errors that name the file and line. */
import { parseYamlValues } from '../yaml/index.ts';

export { stringifyAll } from '../yaml/index.ts';

/** Every document of a YAML (or JSON) stream as plain data; empty documents are skipped.
 * Throws YamlError (`ErrInvalidYaml`, `ErrYamlTooComplex`) as `<name>:<line>:<column>: …`. */
export function parse(text: string, name: string): unknown[] {
  return parseYamlValues(text, name);
}
