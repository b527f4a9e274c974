/** Hash algorithms a digest may name, with the length of their lowercase-hex encoding. */
export const ENCODED_LENGTH = {
  sha256: 64,
  sha384: 96,
  sha512: 128,
} as const;

export type Algorithm = keyof typeof ENCODED_LENGTH;

/** What a Go binary linking crypto/sha256 and crypto/sha512 accepts (containerd, the kubelet). */
export const DEFAULT_ALGORITHMS: readonly Algorithm[] = ['sha256', 'sha384', 'sha512'];

/**
 * Whether `name` is a hash algorithm kimg can verify (and so may appear in a digest).
 */
export function isKnownAlgorithm(name: string): name is Algorithm {
  return Object.hasOwn(ENCODED_LENGTH, name);
}
