/**
 * kimg: Kubernetes' container image handling as a library. Each area is also importable on its
 * own (`kimg/reference`, `kimg/digest`, …); this face re-exports the ones most callers need.
 */
export * from './errors/index.ts';
export * from './digest/index.ts';
export * from './reference/index.ts';
export * as oci from './oci/index.ts';
export { openStore, defaultStorePath, type Store } from './store/index.ts';
export * from './pull/index.ts';
export * as kubelet from './kubelet/index.ts';
