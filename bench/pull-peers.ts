// The peers kimg's pull is measured against, run for real on the same loopback registry:
// skopeo 1.9 (`copy docker:// → oci:`) and containerd 1.6 (`ctr content fetch`, no unpack), the
// daemon started by hand in a temp dir with its own root and state (docs/semantics.md testing §5).
import { copyImage } from '../test/harness/index.ts';

export { Containerd } from '../test/harness/index.ts';

/** `skopeo copy docker://REF oci:DIR:TAG`; DIR must not exist yet. With `certDir` (a dir holding
 * the registry's `ca.crt`) over verified TLS, else `--src-tls-verify=false` (plain HTTP allowed). */
export async function skopeoPull(ref: string, dir: string, tag: string, certDir?: string): Promise<void> {
  const src = certDir === undefined ? { tlsVerify: false } : { tlsVerify: true, certDir };
  await copyImage(`docker://${ref}`, `oci:${dir}:${tag}`, { src, timeoutMs: 600_000 });
}
