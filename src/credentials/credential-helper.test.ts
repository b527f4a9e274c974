import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inspect } from 'node:util';
import { BasicCredential, CredentialHelperError, HostCredentialResolver, IdentityTokenCredential } from './index.ts';
import { getFromCredentialHelper, parseHelperOutput } from './credential-helper.ts';
import { parseDockerConfigFile } from './docker-config.ts';

const SECRET = 'helper-s3cret-value';

/** A real docker-credential-test program: answers by server URL, logs what it was asked. */
const HELPER = `#!/bin/sh
[ "$1" = "get" ] || { echo "unexpected action $1" >&2; exit 2; }
url=$(cat)
printf '%s\\n' "$url" >> "$HELPER_LOG"
case "$url" in
  reg.example.com) printf '{"ServerURL":"%s","Username":"alice","Secret":"${SECRET}"}\\n' "$url" ;;
  lower.example.com) printf '{"serverurl":"%s","username":"bob","secret":"${SECRET}"}' "$url" ;;
  https://index.docker.io/v1/) printf '{"ServerURL":"%s","Username":"<token>","Secret":"${SECRET}"}\\n' "$url" ;;
  empty.example.com) printf '{"ServerURL":"%s","Username":"","Secret":""}' "$url" ;;
  broken.example.com) printf 'fatal: ${SECRET} exposed\\n'; printf 'stderr ${SECRET}\\n' >&2; exit 1 ;;
  garbage.example.com) printf '${SECRET} is not json' ;;
  typed.example.com) printf '{"Username":"u","Secret":["${SECRET}"]}' ;;
  slow.example.com) exec sleep 30 ;;
  grandchild.example.com) sleep 30 & wait ;;
  stderr-notfound.example.com) echo "credentials not found in native keychain" >&2; exit 1 ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`;

let dir: string;
let env: Record<string, string | undefined>;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kimg-helper-'));
  await writeFile(join(dir, 'docker-credential-test'), HELPER);
  await chmod(join(dir, 'docker-credential-test'), 0o755);
  env = { PATH: `${dir}${delimiter}${process.env['PATH'] ?? ''}`, HELPER_LOG: join(dir, 'log') };
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function assertHelperError(err: unknown, reason: string, serverURL: string): true {
  assert.ok(err instanceof CredentialHelperError, String(err));
  assert.equal(err.code, 'credentials.ErrCredentialHelper');
  assert.equal(err.reason, reason);
  assert.equal(err.helper, 'test');
  assert.equal(err.serverURL, serverURL);
  assert.match(err.message, /docker-credential-test/);
  assert.ok(err.message.includes(serverURL));
  for (const rendering of [err.message, err.stack ?? '', inspect(err), JSON.stringify(err)]) {
    assert.ok(!rendering.includes(SECRET), `secret leaked: ${rendering}`);
  }
  return true;
}

describe('credential helpers (real programs on PATH)', () => {
  it('returns username and secret as a basic credential, sending the server URL on stdin with "get"', async () => {
    const credential = await getFromCredentialHelper('test', 'reg.example.com', { env });
    assert.ok(credential instanceof BasicCredential);
    assert.equal(credential.username, 'alice');
    assert.equal(credential.password, SECRET);
    assert.match(await readFile(join(dir, 'log'), 'utf8'), /^reg\.example\.com$/m);
  });

  it('reads field names case-insensitively (Go JSON)', async () => {
    const credential = await getFromCredentialHelper('test', 'lower.example.com', { env });
    assert.ok(credential instanceof BasicCredential);
    assert.equal(credential.username, 'bob');
  });

  it('turns Username "<token>" into an identity token', async () => {
    const credential = await getFromCredentialHelper('test', 'https://index.docker.io/v1/', { env });
    assert.ok(credential instanceof IdentityTokenCredential);
    assert.equal(credential.identityToken, SECRET);
  });

  it('treats "credentials not found" (stdout or stderr) and empty answers as anonymous', async () => {
    assert.equal(await getFromCredentialHelper('test', 'unknown.example.com', { env }), undefined);
    assert.equal(await getFromCredentialHelper('test', 'stderr-notfound.example.com', { env }), undefined);
    assert.equal(await getFromCredentialHelper('test', 'empty.example.com', { env }), undefined);
  });

  it('fails with a typed error naming helper and host, without its output', async () => {
    await assert.rejects(getFromCredentialHelper('test', 'broken.example.com', { env }), (err) => {
      assertHelperError(err, 'failed', 'broken.example.com');
      assert.equal((err as CredentialHelperError).exitCode, 1);
      return true;
    });
  });

  it('rejects output that is not the expected JSON without echoing it', async () => {
    await assert.rejects(getFromCredentialHelper('test', 'garbage.example.com', { env }), (err) =>
      assertHelperError(err, 'invalid-output', 'garbage.example.com'),
    );
    await assert.rejects(getFromCredentialHelper('test', 'typed.example.com', { env }), (err) => {
      assertHelperError(err, 'invalid-output', 'typed.example.com');
      assert.match((err as Error).message, /Secret: expected a string, found array/);
      return true;
    });
  });

  it('kills a helper that does not answer in time', async () => {
    await assert.rejects(getFromCredentialHelper('test', 'slow.example.com', { env, timeoutMs: 300 }), (err) =>
      assertHelperError(err, 'timeout', 'slow.example.com'),
    );
  });

  it('kills a helper and what it started, even when a grandchild holds its output open', async () => {
    await assert.rejects(getFromCredentialHelper('test', 'grandchild.example.com', { env, timeoutMs: 300 }), (err) =>
      assertHelperError(err, 'timeout', 'grandchild.example.com'),
    );
  });

  it('reports a helper that is not installed', async () => {
    await assert.rejects(getFromCredentialHelper('missing', 'reg.example.com', { env }), (err: unknown) => {
      assert.ok(err instanceof CredentialHelperError);
      assert.equal(err.reason, 'not-installed');
      assert.match(err.message, /docker-credential-missing for reg\.example\.com: program not found/);
      return true;
    });
  });

  it('refuses helper names that are paths or options', async () => {
    for (const name of ['../evil', '/bin/sh', '-rf', 'a b', '']) {
      await assert.rejects(getFromCredentialHelper(name, 'reg.example.com', { env }), (err: unknown) => {
        assert.ok(err instanceof CredentialHelperError);
        assert.equal(err.reason, 'invalid-name');
        return true;
      });
    }
  });
});

describe('parseHelperOutput', () => {
  it('needs a JSON object', () => {
    assert.throws(() => parseHelperOutput('[]', 'h', 's'), CredentialHelperError);
    assert.throws(() => parseHelperOutput('', 'h', 's'), CredentialHelperError);
  });

  it('keeps a username with an empty secret', () => {
    const credential = parseHelperOutput('{"Username":"u","Secret":""}', 'h', 's');
    assert.ok(credential instanceof BasicCredential);
    assert.equal(credential.password, '');
  });
});

describe('HostCredentialResolver helper answers', () => {
  const config = parseDockerConfigFile(JSON.stringify({ credHelpers: { 'reg.example.com': 'test' } }), 'config.json');
  const asked = async () =>
    (await readFile(join(dir, 'log'), 'utf8').catch(() => '')).split('\n').filter((l) => l === 'reg.example.com')
      .length;

  it('share one run among concurrent requests, and are kept for helperCacheMs, then asked again', async () => {
    let t = 0;
    const resolver = new HostCredentialResolver([config], { env, helperCacheMs: 60_000, now: () => t });
    const before = await asked();
    const target = { host: 'reg.example.com', repository: 'team/app' };
    const [a, b] = await Promise.all([resolver.resolve(target), resolver.resolve(target)]);
    assert.ok(a?.credential instanceof BasicCredential && b?.credential === a.credential);
    t = 59_999;
    await resolver.resolve(target);
    assert.equal((await asked()) - before, 1);
    t = 60_000;
    await resolver.resolve(target);
    assert.equal((await asked()) - before, 2);
  });

  it('are kept for the resolver’s life without helperCacheMs', async () => {
    let t = 0;
    const resolver = new HostCredentialResolver([config], { env, now: () => t });
    const before = await asked();
    await resolver.resolve({ host: 'reg.example.com', repository: 'x' });
    t = 10 * 24 * 3_600_000;
    await resolver.resolve({ host: 'reg.example.com', repository: 'x' });
    assert.equal((await asked()) - before, 1);
  });
});
