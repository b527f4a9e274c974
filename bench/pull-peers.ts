// The peers kimg's pull is measured against, run for real on the same loopback registry:
// skopeo 1.9 (`copy docker:// → oci:`) and containerd 1.6 (`ctr content fetch`, no unpack), the
// daemon started by hand in a temp dir with its own root and state (test-environment.md §5).
import { copyImage } from '../test/harness/index.ts';

export { Containerd } from '../test/harness/index.ts';

/** `skopeo copy --src-tls-verify=false docker://REF oci:DIR:TAG`; DIR must not exist yet. */
export async function skopeoPull(ref: string, dir: string, tag: string): Promise<void> {
  await copyImage(`docker://${ref}`, `oci:${dir}:${tag}`, { src: { tlsVerify: false }, timeoutMs: 600_000 });
}
