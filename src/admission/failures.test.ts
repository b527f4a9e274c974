import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CredentialHelperError } from '../credentials/index.ts';
import { RegistryBlockedError } from '../registry/hosts/index.ts';
import { RegistryError } from '../registry/index.ts';
import { ResolveFailure } from './errors.ts';
import { BudgetExpired, failureReason, isTransientFailure } from './failures.ts';

describe('lookup failures', () => {
  test('only a registry that could not answer is transient (stale-while-error may bridge it)', () => {
    const transient: unknown[] = [
      new BudgetExpired(1600),
      new RegistryError('ErrRegistryUnavailable', 'HTTP 503 from 127.0.0.1:5000', { status: 503 }),
      new RegistryError('ErrTooManyRequests', 'HTTP 429 from registry-1.docker.io', { status: 429 }),
      new RegistryError('ErrConnection', 'connect ECONNREFUSED 127.0.0.1:5000'),
      new RegistryError('ErrConnection', 'getaddrinfo ENOTFOUND registry.example'),
      new ResolveFailure('x', 'timeout'),
    ];
    const answers: unknown[] = [
      new RegistryError('ErrManifestUnknown', 'manifest unknown', { status: 404 }),
      new RegistryError('ErrUnauthorized', 'authentication required', { status: 401 }),
      new RegistryError('ErrDenied', 'denied', { status: 403 }),
      new RegistryError('ErrTLS', 'certificate has expired'),
      new RegistryError('ErrDigestMismatch', 'digest mismatch'),
      new RegistryBlockedError('example.com/app', 'example.com', '/etc/containers/registries.conf'),
      new ResolveFailure('x', 'platform not found'),
      new CredentialHelperError('ecr-login', 'https://example.com', 'failed', { exitCode: 1 }),
      new Error('something else'),
    ];
    for (const err of transient) assert.equal(isTransientFailure(err), true, String(err));
    for (const err of answers) assert.equal(isTransientFailure(err), false, String(err));
  });

  test('cause keywords for credential helpers and blocked registries', () => {
    assert.equal(failureReason(new CredentialHelperError('hang', 'https://r.example', 'timeout')), 'timeout');
    assert.equal(
      failureReason(new CredentialHelperError('gone', 'https://r.example', 'not-installed')),
      'credential helper',
    );
    assert.equal(failureReason(new RegistryBlockedError('example.com/app', 'example.com', '/r.conf')), 'blocked');
  });
});
