// A credential provider plugin in service-account token mode (KEP-4412) with `kimg ensure` on
// one node (store and kubelet root dir kept between runs) against a real registry that needs
// Basic auth: the plugin (a shell script recording what it got) answers only for the right
// service account token; the pull's KEP-2535 record carries the service account, so the next pod
// of that account uses the image without pulling, and a pod of another account must pull.
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { main } from '../../src/cli/index.ts';
import {
  buildImage,
  makeTempDir,
  pushImage,
  requireTools,
  startRegistry,
  type BuiltImage,
  type RunningRegistry,
  type TempDir,
} from '../harness/index.ts';
import type { CliResult } from '../cli/run-cli.ts';

const skip = requireTools(['docker-registry', 'skopeo']);
const alice = { user: 'alice', password: 's3cret' };
const TOKEN = 'eyJ-builder-token';

/** Records each request; answers alice's credentials only for the expected token. */
const PLUGIN = `#!/bin/sh
request=$(cat)
printf '%s\\n' "$request" >> "$STATE/requests"
case "$request" in
  *'"serviceAccountToken":"${TOKEN}"'*) password="$REGISTRY_PASSWORD" ;;
  *) password=wrong ;;
esac
printf '{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","cacheKeyType":"Image","cacheDuration":"0s","auth":{"%s":{"username":"alice","password":"%s"}}}' "$REGISTRY_HOST" "$password"
`;

async function runInProcess(args: readonly string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (s: string) => void) =>
    new Writable({ write: (chunk: Buffer, _enc, done) => (append(chunk.toString('utf8')), done()) });
  const io = { stdout: sink((s) => (stdout += s)), stderr: sink((s) => (stderr += s)), stdin: Readable.from([]), env };
  const status = await main(args, io);
  return { status, stdout, stderr };
}

describe('kimg ensure with a service-account-mode credential provider plugin', { skip }, () => {
  let registry: RunningRegistry;
  let tmp: TempDir;
  let app: BuiltImage;
  let image: string;
  let files: { accounts: string; config: string; token: string; pod: (name: string, sa: string) => Promise<string> };
  const state = () => join(tmp.path, 'plugin-state');
  const env = () => ({
    ...process.env,
    HOME: tmp.path,
    XDG_DATA_HOME: join(tmp.path, 'xdg-data'),
    XDG_STATE_HOME: join(tmp.path, 'xdg-state'),
    KIMG_STORE: '',
    KIMG_KUBELET_ROOT_DIR: '',
    DOCKER_CONFIG: join(tmp.path, 'no-docker-config'),
    REGISTRY_AUTH_FILE: join(tmp.path, 'no-auth.json'),
  });
  const ensure = (pod: string) =>
    runInProcess(
      [
        'ensure',
        '--store',
        join(tmp.path, 'node', 'store'),
        '--root-dir',
        join(tmp.path, 'node', 'root'),
        '--no-node-credentials',
        '--image-credential-provider-config',
        files.config,
        '--image-credential-provider-bin-dir',
        join(tmp.path, 'bin'),
        '--service-account-token',
        `team/builder=${files.token}`,
        '-f',
        files.accounts,
        '-f',
        pod,
      ],
      env(),
    );
  const requests = async () =>
    (await readFile(join(state(), 'requests'), 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);

  before(async () => {
    tmp = await makeTempDir('kimg-sa-plugin-');
    registry = await startRegistry({ htpasswd: [alice] });
    app = await buildImage({ layers: [1_500], seed: 'sa-plugin' });
    await pushImage(app, registry, 'team/private:v1', { creds: `${alice.user}:${alice.password}` });
    image = `${registry.host}/team/private:v1`;
    await mkdir(join(tmp.path, 'bin'));
    await mkdir(state());
    await writeFile(join(tmp.path, 'bin', 'sa-plugin'), PLUGIN);
    await chmod(join(tmp.path, 'bin', 'sa-plugin'), 0o755);
    files = {
      accounts: join(tmp.path, 'accounts.yaml'),
      config: join(tmp.path, 'providers.yaml'),
      token: join(tmp.path, 'builder.token'),
      pod: async (name, sa) => {
        const file = join(tmp.path, `${name}.yaml`);
        await writeFile(
          file,
          `apiVersion: v1\nkind: Pod\nmetadata: {name: ${name}, namespace: team, uid: uid-${name}}\nspec:\n  serviceAccountName: ${sa}\n  containers: [{name: app, image: "${image}", imagePullPolicy: IfNotPresent}]\n`,
        );
        return file;
      },
    };
    await writeFile(
      files.accounts,
      `apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: builder\n  namespace: team\n  uid: sa-uid-builder\n  annotations: {example.com/role: puller, unrelated: x}\n`,
    );
    await writeFile(files.token, `${TOKEN}\n`);
    await writeFile(
      files.config,
      `apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
- name: sa-plugin
  matchImages: ["${registry.host}"]
  defaultCacheDuration: 0s
  apiVersion: credentialprovider.kubelet.k8s.io/v1
  env:
  - {name: STATE, value: ${state()}}
  - {name: REGISTRY_HOST, value: "${registry.host}"}
  - {name: REGISTRY_PASSWORD, value: ${alice.password}}
  tokenAttributes:
    serviceAccountTokenAudience: registry.example.com
    requireServiceAccount: true
    optionalServiceAccountAnnotationKeys: [example.com/role]
`,
    );
  });
  after(async () => {
    await registry?.stop();
    await Promise.all([app?.remove(), tmp?.remove()]);
  });

  test('pulls with the service account token; the plugin got the token and the selected annotation', async () => {
    const result = await ensure(await files.pod('web-0', 'builder'));
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, new RegExp(`Successfully pulled image "${image.replace(/[.]/g, '\\.')}"`));
    const [request] = await requests();
    assert.deepEqual(request, {
      apiVersion: 'credentialprovider.kubelet.k8s.io/v1',
      kind: 'CredentialProviderRequest',
      image: `${registry.host}/team/private`,
      serviceAccountToken: TOKEN,
      serviceAccountAnnotations: { 'example.com/role': 'puller' },
    });
    // The KEP-2535 record names the service account, not the node.
    const pulledDir = join(tmp.path, 'node', 'root', 'image_manager', 'pulled');
    const [recordFile] = await readdir(pulledDir);
    const record = JSON.parse(await readFile(join(pulledDir, recordFile ?? ''), 'utf8')) as {
      credentialMapping: Record<string, { kubernetesServiceAccounts?: unknown; nodePodsAccessible?: boolean }>;
    };
    assert.deepEqual(record.credentialMapping[`${registry.host}/team/private`], {
      kubernetesServiceAccounts: [{ uid: 'sa-uid-builder', namespace: 'team', name: 'builder' }],
    });
  });

  test('the next pod of that service account uses the image without pulling it again', async () => {
    const result = await ensure(await files.pod('web-1', 'builder'));
    assert.equal(result.status, 0, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /already present on machine and can be accessed by the pod/);
    assert.doesNotMatch(result.stdout, /Successfully pulled/);
  });

  test('a pod of another service account (no token, plugin not run) must pull, and cannot', async () => {
    const before = (await requests()).length;
    const result = await ensure(await files.pod('intruder', 'other'));
    assert.equal(result.status, 1, result.stdout);
    assert.doesNotMatch(result.stdout, /can be accessed by the pod/);
    assert.match(result.stdout, /ErrImagePull|Failed to pull image/);
    assert.equal((await requests()).length, before, 'the plugin is not run for an unknown service account');
  });
});
