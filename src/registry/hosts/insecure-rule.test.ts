import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_INSECURE_LOOPBACK, isInsecureByRule } from './address.ts';
import { resolveHosts } from './resolve.ts';

describe('isInsecureByRule: the one rule for registries reached without verified TLS', () => {
  it('covers loopback by default, as containerd does, and nothing else', () => {
    assert.equal(DEFAULT_INSECURE_LOOPBACK, true);
    assert.equal(isInsecureByRule('127.0.0.1:5000', '127.0.0.1:5000'), true);
    assert.equal(isInsecureByRule('localhost:5000', 'localhost:5000'), true);
    assert.equal(isInsecureByRule('[::1]:5000', '[::1]:5000'), true);
    assert.equal(isInsecureByRule('registry.lan:5000', 'registry.lan:5000'), false);
    assert.equal(isInsecureByRule('127.0.0.1:5000', '127.0.0.1:5000', { insecureLoopback: false }), false);
  });

  it('covers the hosts named as insecure registries, by host or by the name the reference uses', () => {
    const rule = { insecureLoopback: false, insecureRegistries: ['registry.lan:5000', 'docker.io'] };
    assert.equal(isInsecureByRule('registry.lan:5000', 'registry.lan:5000', rule), true);
    assert.equal(isInsecureByRule('registry.lan', 'registry.lan', rule), false);
    assert.equal(isInsecureByRule('registry-1.docker.io', 'docker.io', rule), true);
  });

  it('resolves a named insecure registry as a loopback one: HTTPS unverified with an HTTP fallback', () => {
    const [endpoint] = resolveHosts(
      { domain: 'registry.lan:5000', path: 'team/app' },
      { byDigest: false },
      { insecureRegistries: ['registry.lan:5000'] },
    );
    assert.equal(endpoint?.baseUrl, 'https://registry.lan:5000/v2');
    assert.equal(endpoint?.tls.skipVerify, true);
    assert.equal(endpoint?.httpFallback, true);
    const [verified] = resolveHosts({ domain: 'registry.lan:5000', path: 'team/app' }, { byDigest: false });
    assert.equal(verified?.tls.skipVerify, false);
    assert.equal(verified?.httpFallback, false);
  });
});
