import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evalPullError, messages } from './events.ts';

describe('evalPullError: reason and message by prefix of the runtime error (docs/semantics.md kubelet §3)', () => {
  it('RegistryUnavailable…', () => {
    assert.deepEqual(evalPullError('nginx', 'RegistryUnavailable: foo'), {
      reason: 'RegistryUnavailable',
      message: 'image pull failed for nginx because the registry is unavailable: foo',
    });
    assert.deepEqual(evalPullError('nginx', 'RegistryUnavailable'), {
      reason: 'RegistryUnavailable',
      message: 'image pull failed for nginx because the registry is unavailable',
    });
  });
  it('SignatureValidationFailed…', () => {
    assert.deepEqual(evalPullError('reg/app:v1', 'SignatureValidationFailed: bad sig'), {
      reason: 'SignatureValidationFailed',
      message: 'image pull failed for reg/app:v1 because the signature validation failed: bad sig',
    });
  });
  it('anything else is ErrImagePull with the raw text, also when the word is not a prefix', () => {
    assert.deepEqual(evalPullError('nginx', 'rpc error: RegistryUnavailable'), {
      reason: 'ErrImagePull',
      message: 'rpc error: RegistryUnavailable',
    });
    assert.deepEqual(evalPullError('nginx', 'pull QPS exceeded'), {
      reason: 'ErrImagePull',
      message: 'pull QPS exceeded',
    });
  });
});

describe('event texts (docs/semantics.md kubelet §4)', () => {
  it('has the kubelet wording', () => {
    assert.equal(messages.pulling('nginx'), 'Pulling image "nginx"');
    assert.equal(messages.failedToPull('nginx', 'boom'), 'Failed to pull image "nginx": boom');
    assert.equal(messages.backOff('nginx'), 'Back-off pulling image "nginx"');
    assert.equal(messages.neverPull('nginx'), 'Container image "nginx" is not present with pull policy of Never');
    assert.equal(messages.alreadyPresent('nginx'), 'Container image "nginx" already present on machine');
    assert.equal(
      messages.alreadyPresentAndAccessible('nginx'),
      'Container image "nginx" already present on machine and can be accessed by the pod',
    );
    assert.equal(messages.containerError('ErrImagePull'), 'Error: ErrImagePull');
    assert.equal(
      messages.secretsMissing(['a', 'b']),
      'Unable to retrieve some image pull secrets (a, b); attempting to pull the image may not succeed.',
    );
    assert.equal(messages.invalidDiskCapacity(), 'invalid capacity 0 on image filesystem');
    assert.equal(
      messages.freeDiskSpaceFailed(100, 40),
      'Failed to garbage collect required amount of images. Attempted to free 100 bytes, but only found 40 bytes eligible to free.',
    );
    assert.equal(messages.inspectFailed('boom'), 'Failed to inspect image "": boom');
    assert.equal(
      messages.logsWaiting('app', 'web'),
      'container "app" in pod "web" is waiting to start: image can\'t be pulled',
    );
  });
  it('prints Pulled with Go durations truncated to ms and the size in bytes', () => {
    assert.equal(
      messages.pulled('nginx:1.25', 2266.7, 3390.2, 12345),
      'Successfully pulled image "nginx:1.25" in 2.266s (3.39s including waiting). Image size: 12345 bytes.',
    );
    assert.equal(
      messages.pulled('a', 0, 62_500, 0),
      'Successfully pulled image "a" in 0s (1m2.5s including waiting). Image size: 0 bytes.',
    );
  });
});
