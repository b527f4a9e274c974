import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_KUBELET_IMAGE_CONFIG,
  KubeletConfigError,
  parseFeatureGates,
  readKubeletConfigDocument,
  resolveKubeletImageConfig,
} from './config.ts';

function problems(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof KubeletConfigError) return err.problems;
    throw err;
  }
  assert.fail('expected a KubeletConfigError');
}

describe('kubelet image configuration (docs/semantics.md kubelet §7, §10, §11)', () => {
  it('has the kubelet defaults', () => {
    const config = resolveKubeletImageConfig();
    assert.deepEqual(config, DEFAULT_KUBELET_IMAGE_CONFIG);
    assert.equal(config.serializeImagePulls, true);
    assert.equal(config.maxParallelImagePulls, undefined);
    assert.equal(config.registryPullQPS, 5);
    assert.equal(config.registryBurst, 10);
    assert.equal(config.imageGCHighThresholdPercent, 85);
    assert.equal(config.imageGCLowThresholdPercent, 80);
    assert.equal(config.imageMinimumGCAgeMs, 120_000);
    assert.equal(config.imageMaximumGCAgeMs, 0);
    assert.equal(config.imagePullCredentialsVerificationPolicy, 'NeverVerifyPreloadedImages');
    assert.equal(config.ensureSecretPulledImages, true);
  });

  it('defaults serializeImagePulls from maxParallelImagePulls', () => {
    assert.equal(resolveKubeletImageConfig({ maxParallelImagePulls: 1 }).serializeImagePulls, true);
    assert.equal(resolveKubeletImageConfig({ maxParallelImagePulls: 2 }).serializeImagePulls, false);
    assert.equal(
      resolveKubeletImageConfig({ serializeImagePulls: false }).maxParallelImagePulls,
      undefined,
      'unset = unlimited',
    );
  });

  it('validates with the kubelet messages', () => {
    assert.ok(
      problems(() => resolveKubeletImageConfig({ serializeImagePulls: true, maxParallelImagePulls: 3 })).includes(
        'maxParallelImagePulls cannot be larger than 1 unless SerializeImagePulls (--serialize-image-pulls) is set to false',
      ),
    );
    assert.ok(
      problems(() => resolveKubeletImageConfig({ serializeImagePulls: false, maxParallelImagePulls: 0 })).includes(
        'maxParallelImagePulls 0 must be a positive number',
      ),
    );
    assert.ok(
      problems(() =>
        resolveKubeletImageConfig({ imageGCHighThresholdPercent: 80, imageGCLowThresholdPercent: 80 }),
      ).includes(
        'imageGCLowThresholdPercent (--image-gc-low-threshold) 80 must be less than imageGCHighThresholdPercent (--image-gc-high-threshold) 80',
      ),
    );
    assert.ok(
      problems(() => resolveKubeletImageConfig({ imageGCHighThresholdPercent: 101 })).some((p) =>
        p.includes('between 0 and 100'),
      ),
    );
    assert.ok(
      problems(() => resolveKubeletImageConfig({ registryPullQPS: -1 })).some((p) =>
        p.includes('must not be a negative number'),
      ),
    );
    assert.ok(
      problems(() => resolveKubeletImageConfig({ registryBurst: -1 })).some((p) =>
        p.includes('must not be a negative number'),
      ),
    );
    assert.ok(
      problems(() => resolveKubeletImageConfig({ imageMaximumGCAge: '1m' })).some((p) =>
        p.includes('must be greater than imageMinimumGCAge'),
      ),
    );
    assert.ok(
      problems(() => resolveKubeletImageConfig({ imagePullCredentialsVerificationPolicy: 'Sometimes' })).some((p) =>
        p.includes('unsupported value'),
      ),
    );
    assert.ok(
      problems(() =>
        resolveKubeletImageConfig({
          imagePullCredentialsVerificationPolicy: 'NeverVerifyAllowlistedImages',
          preloadedImagesVerificationAllowlist: ['alpine'],
        }),
      ).some((p) => p.includes('normalized repository')),
    );
  });

  it('reads a KubeletConfiguration document and lets flags win', () => {
    const file = readKubeletConfigDocument({
      apiVersion: 'kubelet.config.k8s.io/v1beta1',
      kind: 'KubeletConfiguration',
      serializeImagePulls: false,
      maxParallelImagePulls: 4,
      registryPullQPS: 2,
      imageMinimumGCAge: '5m0s',
      featureGates: { KubeletEnsureSecretPulledImages: false },
      cgroupDriver: 'systemd',
    });
    const config = resolveKubeletImageConfig(file, { registryPullQPS: 0 });
    assert.equal(config.serializeImagePulls, false);
    assert.equal(config.maxParallelImagePulls, 4);
    assert.equal(config.registryPullQPS, 0);
    assert.equal(config.imageMinimumGCAgeMs, 300_000);
    assert.equal(config.ensureSecretPulledImages, false);
    assert.ok(
      problems(() => readKubeletConfigDocument({ kind: 'Pod' })).some((p) => p.includes('KubeletConfiguration')),
    );
    assert.ok(
      problems(() => readKubeletConfigDocument({ registryBurst: 'ten' })).some((p) => p.includes('registryBurst')),
    );
    assert.deepEqual(parseFeatureGates('KubeletEnsureSecretPulledImages=false, Other=true'), {
      KubeletEnsureSecretPulledImages: false,
      Other: true,
    });
  });
});
