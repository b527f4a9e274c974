// Reading YAML with bounded work: the one parse function every YAML input goes through; and the
// one way kimg writes a YAML stream.
export { YamlError, type YamlErrorCode } from './errors.ts';
export {
  aliasTarget,
  parseYaml,
  parseYamlValue,
  parseYamlValues,
  type YamlPosition,
  type YamlStream,
} from './parse.ts';
export { stringifyAll } from './stringify.ts';
