import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { format, inspect } from 'node:util';
import {
  BasicCredential,
  IdentityTokenCredential,
  RegistryTokenCredential,
  keyringFromPullSecrets,
  type Credential,
} from './index.ts';
import { REDACTED, isCredential, redact } from './credential.ts';
import { parseDockerConfigFile } from './docker-config.ts';
import { parsePullSecret } from './secrets.ts';
import { parseProviderResponse } from './provider-response.ts';

const PASSWORD = 'pa55-w0rd-xyz';
const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.refresh.token';
const REGISTRY_TOKEN = 'reg-bearer-token-123';

const credentials: [string, Credential, string][] = [
  ['basic', new BasicCredential('alice', PASSWORD, 'alice@example.com'), PASSWORD],
  ['identity token', new IdentityTokenCredential(TOKEN, 'alice'), TOKEN],
  ['registry token', new RegistryTokenCredential(REGISTRY_TOKEN), REGISTRY_TOKEN],
];

describe('credentials never print their secrets', () => {
  for (const [kind, credential, secret] of credentials) {
    describe(kind, () => {
      const renderings: [string, () => string][] = [
        ['JSON.stringify', () => JSON.stringify(credential)],
        ['JSON.stringify nested', () => JSON.stringify({ auth: { credential } })],
        ['String()', () => String(credential)],
        ['template literal', () => `${credential}`],
        ['util.inspect', () => inspect(credential)],
        ['util.inspect nested, showHidden', () => inspect({ deep: [credential] }, { showHidden: true, depth: 10 })],
        ['util.format %o', () => format('%o', credential)],
        ['util.format %j', () => format('%j', credential)],
        ['object spread', () => JSON.stringify({ ...credential }) + inspect({ ...credential })],
        ['structuredClone', () => inspect(structuredClone(credential))],
        ['Object.entries', () => JSON.stringify(Object.entries(credential))],
      ];
      for (const [how, render] of renderings) {
        it(`${how} hides the secret`, () => {
          const text = render();
          assert.ok(!text.includes(secret), `${how} leaked: ${text}`);
        });
      }

      it('shows <redacted> where the secret would be', () => {
        assert.match(JSON.stringify(credential), /<redacted>/);
        assert.match(inspect(credential), /<redacted>/);
        assert.match(String(credential), /<redacted>/);
      });

      it('still hands the secret to code that asks for it', () => {
        const value =
          credential.kind === 'basic'
            ? credential.password
            : credential.kind === 'identityToken'
              ? credential.identityToken
              : credential.registryToken;
        assert.equal(value, secret);
        assert.ok(isCredential(credential));
      });

      it('is immutable', () => {
        assert.ok(Object.isFrozen(credential));
      });
    });
  }

  it('shows the username, which is not secret, for debugging', () => {
    assert.match(inspect(new BasicCredential('alice', PASSWORD)), /alice/);
    assert.deepEqual(JSON.parse(JSON.stringify(new BasicCredential('alice', PASSWORD))), {
      kind: 'basic',
      username: 'alice',
      password: REDACTED,
    });
  });

  it('isCredential rejects look-alikes', () => {
    assert.equal(isCredential({ kind: 'basic', username: 'a', password: 'b' }), false);
  });
});

describe('redact(text, secrets)', () => {
  it('replaces every occurrence of every string secret', () => {
    assert.equal(redact('a=s3cret b=s3cret c=t0ken', ['s3cret', 't0ken']), `a=${REDACTED} b=${REDACTED} c=${REDACTED}`);
  });

  it('ignores empty secrets and leaves other text alone', () => {
    assert.equal(redact('nothing to see', ['']), 'nothing to see');
  });

  it('replaces longer secrets first so no fragment survives', () => {
    assert.equal(redact('key=abcdef', ['abc', 'abcdef']), `key=${REDACTED}`);
  });

  it("covers a credential's password, Basic header payload and encoded forms", () => {
    const credential = new BasicCredential('bob', 'p@ss word/+');
    const header = `Authorization: Basic ${Buffer.from('bob:p@ss word/+').toString('base64')}`;
    const form = `grant_type=password&username=bob&password=${new URLSearchParams({ p: 'p@ss word/+' }).toString().slice(2)}`;
    const url = `https://x/?pw=${encodeURIComponent('p@ss word/+')}`;
    for (const text of [header, form, url, 'raw p@ss word/+ here']) {
      const redacted = redact(text, [credential]);
      assert.ok(!redacted.includes('p@ss word/+'), redacted);
      assert.ok(!redacted.includes(Buffer.from('bob:p@ss word/+').toString('base64')), redacted);
      assert.ok(redacted.includes(REDACTED), redacted);
    }
  });

  it('covers token credentials', () => {
    const text = `refresh_token=${TOKEN}&x=1 Bearer ${REGISTRY_TOKEN}`;
    const redacted = redact(text, [new IdentityTokenCredential(TOKEN), new RegistryTokenCredential(REGISTRY_TOKEN)]);
    assert.equal(redacted, `refresh_token=${REDACTED}&x=1 Bearer ${REDACTED}`);
  });
});

describe('structures that hold credentials print them redacted', () => {
  const b64 = (text: string) => Buffer.from(text).toString('base64');
  const secret = {
    metadata: { name: 'regcred', namespace: 'default' },
    type: 'kubernetes.io/dockerconfigjson',
    stringData: {
      '.dockerconfigjson': JSON.stringify({ auths: { 'reg.example.com': { auth: b64(`user:${PASSWORD}`) } } }),
    },
  };
  const structures: [string, () => unknown][] = [
    ['a parsed pull secret', () => parsePullSecret(secret)],
    ['keyring lookup results', () => keyringFromPullSecrets([secret]).lookup('reg.example.com/app')],
    [
      'a parsed docker config file',
      () => parseDockerConfigFile(JSON.stringify({ auths: { r: { auth: b64(`user:${PASSWORD}`) } } }), '/c.json'),
    ],
    [
      'a parsed provider response',
      () =>
        parseProviderResponse(
          JSON.stringify({
            apiVersion: 'v',
            kind: 'CredentialProviderResponse',
            cacheKeyType: 'Image',
            auth: { r: { username: 'u', password: PASSWORD } },
          }),
          'v',
        ),
    ],
  ];
  for (const [what, make] of structures) {
    it(`${what}`, () => {
      const value = make();
      for (const text of [inspect(value, { depth: 20 }), JSON.stringify(value), format('%o', value)]) {
        assert.ok(!text.includes(PASSWORD), text);
        assert.ok(!text.includes(b64(`user:${PASSWORD}`)), text);
      }
    });
  }
});
