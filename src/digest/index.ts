/** Content digests (`algorithm:encoded`) per the OCI image spec, and streaming verification. */
export { DEFAULT_ALGORITHMS, ENCODED_LENGTH, isKnownAlgorithm, type Algorithm } from './algorithms.ts';
export {
  DigestError,
  isValidDigest,
  parseDigest,
  tryParseDigest,
  type DigestErrorCode,
  type DigestOptions,
  type DigestResult,
  type ParsedDigest,
} from './digest.ts';
export { DigestVerifier, VerifyError, createVerifyStream, digestOf, type VerifyErrorCode } from './verify.ts';
