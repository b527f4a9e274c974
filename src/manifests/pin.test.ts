import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tryParseNormalizedNamed } from '../reference/index.ts';
import { ManifestSource } from './document.ts';
import { pinManifests, type PinEngine, type PinOutcome } from './pin.ts';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const D3 = `sha256:${'3'.repeat(64)}`;

/** Stands in for the admission engine's Pinner: `preserve` output, existing digests kept. */
class StubEngine implements PinEngine {
  readonly lookups: string[] = [];
  constructor(
    private readonly digests: Readonly<Record<string, string>>,
    private readonly skipPrefixes: readonly string[] = [],
  ) {}

  async pin(image: string): Promise<PinOutcome> {
    if (image.trim() === '' || this.skipPrefixes.some((p) => image.startsWith(p)))
      return { image, changed: false, warnings: [] };
    const parsed = tryParseNormalizedNamed(image);
    if (!parsed.ok) return { image, changed: false, warnings: [`${image}: invalid reference`] };
    if (parsed.value.digest !== undefined) return { image, changed: false, warnings: [] };
    this.lookups.push(image);
    const digest = this.digests[image];
    if (digest === undefined)
      return { image, changed: false, warnings: [], failure: { reason: 'not found', message: `${image}: not found` } };
    return { image: `${image}@${digest}`, changed: true, digest, warnings: [] };
  }
}

const DIGESTS = { 'nginx:1.25': D1, 'redis:7': D2, busybox: D3, 'busybox:1.36': D3, 'quay.io/team/tool:3': D2 };

async function pinText(text: string, options: Parameters<typeof pinManifests>[2] = {}, skipPrefixes: string[] = []) {
  const engine = new StubEngine(DIGESTS, skipPrefixes);
  const report = await pinManifests([ManifestSource.parse('in.yaml', text)], engine, options);
  return { report, engine, text: report.files[0]?.text };
}

/** The input with each `[from, to]` replaced once, in order: the only bytes allowed to change. */
function expectEdits(input: string, edits: readonly (readonly [string, string])[]): string {
  let out = input;
  let from = 0;
  for (const [a, b] of edits) {
    const at = out.indexOf(a, from);
    assert.notEqual(at, -1, `fixture lacks ${a}`);
    out = out.slice(0, at) + b + out.slice(at + a.length);
    from = at + b.length;
  }
  return out;
}

const deployment = (image: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: web
        image: ${image}
`;

describe('pinManifests: only the image scalars change', () => {
  const cases: { name: string; input: string; edits: [string, string][] }[] = [
    {
      name: 'comments everywhere, including after the image',
      input: `# leading comment
apiVersion: apps/v1 # api
kind: Deployment
metadata:
  name: web   # name
spec:
  template:
    spec:
      containers:
        # before the container
        - name: web
          image: nginx:1.25 # the web server
          # after the image
        - name: cache
          image: redis:7#not-a-comment-without-space
`,
      edits: [['nginx:1.25 #', `nginx:1.25@${D1} #`]],
    },
    {
      name: 'plain, single and double quotes keep their style',
      input: `apiVersion: v1
kind: Pod
spec:
  containers:
  - {name: a, image: nginx:1.25}
  - name: b
    image: 'redis:7'
  - name: c
    image: "busybox:1.36"
  - name: d
    image: "quay.io/team/tool:3"   # double
`,
      edits: [
        ['image: nginx:1.25}', `image: nginx:1.25@${D1}}`],
        ["'redis:7'", `'redis:7@${D2}'`],
        ['"busybox:1.36"', `"busybox:1.36@${D3}"`],
        ['"quay.io/team/tool:3"   # double', `"quay.io/team/tool:3@${D2}"   # double`],
      ],
    },
    {
      name: 'an anchor is rewritten once for all its aliases; the anchor stays',
      input: `apiVersion: v1
kind: Pod
spec:
  containers:
  - name: a
    image: &img nginx:1.25
  - name: b
    image: *img
  initContainers:
  - name: c
    image: *img
`,
      edits: [['&img nginx:1.25', `&img nginx:1.25@${D1}`]],
    },
    {
      name: 'merge keys supply the image from a shared map',
      input: `apiVersion: v1
kind: Pod
x-base: &base
  image: redis:7
  imagePullPolicy: IfNotPresent
spec:
  containers:
  - <<: *base
    name: a
`,
      edits: [['image: redis:7\n', `image: redis:7@${D2}\n`]],
    },
    {
      name: 'document separators, end markers, empty documents and directives',
      input: `%YAML 1.2
---
apiVersion: v1
kind: Pod
spec:
  containers: [{name: a, image: nginx:1.25}]
...
---
---
# only a comment
---   # a comment on the separator
apiVersion: batch/v1
kind: Job
spec:
  template:
    spec:
      containers:
      - name: b
        image: redis:7
...
`,
      edits: [
        ['image: nginx:1.25}', `image: nginx:1.25@${D1}}`],
        ['image: redis:7\n', `image: redis:7@${D2}\n`],
      ],
    },
    {
      name: 'CRLF line endings',
      input: deployment('nginx:1.25 # c').replaceAll('\n', '\r\n'),
      edits: [['nginx:1.25 # c\r\n', `nginx:1.25@${D1} # c\r\n`]],
    },
    {
      name: 'no final newline',
      input: deployment('nginx:1.25').trimEnd(),
      edits: [['nginx:1.25', `nginx:1.25@${D1}`]],
    },
    {
      name: 'a byte-order mark',
      input: `\uFEFF${deployment('nginx:1.25')}`,
      edits: [['nginx:1.25', `nginx:1.25@${D1}`]],
    },
    {
      name: 'JSON, pretty-printed with tabs',
      input:
        '{\n\t"apiVersion": "v1",\n\t"kind": "Pod",\n\t"spec": {\n\t\t"containers": [\n\t\t\t{"name": "a", "image": "nginx:1.25"}\n\t\t]\n\t}\n}\n',
      edits: [['"nginx:1.25"', `"nginx:1.25@${D1}"`]],
    },
    {
      name: 'JSON on one line',
      input: '{"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"name":"a","image":"redis:7"}]}}',
      edits: [['"redis:7"', `"redis:7@${D2}"`]],
    },
    {
      name: 'block scalars keep header, indentation and chomping',
      input: `apiVersion: v1
kind: Pod
spec:
  containers:
  - name: a
    image: |-   # literal
      nginx:1.25
  - name: b
    image: >-
        redis:7
    command: [sleep]
`,
      edits: [
        ['      nginx:1.25\n', `      nginx:1.25@${D1}\n`],
        ['        redis:7\n', `        redis:7@${D2}\n`],
      ],
    },
    {
      name: 'tags and odd indentation',
      input: `apiVersion: v1
kind: Pod
spec:
    containers:
        -   name: a
            image: !!str nginx:1.25
`,
      edits: [['!!str nginx:1.25', `!!str nginx:1.25@${D1}`]],
    },
    {
      name: 'a double-quoted image written with an escaped line break',
      input: 'apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: a\n    image: "nginx:\\\n      1.25"\n',
      edits: [['"nginx:\\\n      1.25"', `"nginx:1.25@${D1}"`]],
    },
  ];
  for (const { name, input, edits } of cases) {
    it(name, async () => {
      const { text, report } = await pinText(input);
      assert.deepEqual(report.failures, []);
      assert.equal(text, expectEdits(input, edits));
    });
  }

  it('leaves text without a slot byte for byte identical (and reports unchanged)', async () => {
    const input = '# nothing here\nfoo: [1, 2]   \n\n\n---\nbar: baz\n';
    const { report } = await pinText(input);
    assert.equal(report.files[0]?.text, input);
    assert.equal(report.files[0]?.changed, false);
  });
});

describe('pinManifests: kinds and slots', () => {
  const podSpec = `
        initContainers:
        - name: init
          image: busybox:1.36
        containers:
        - name: app
          image: nginx:1.25
        ephemeralContainers:
        - name: debug
          image: quay.io/team/tool:3
        volumes:
        - name: data
          image:
            reference: redis:7
            pullPolicy: IfNotPresent
        - name: empty
          emptyDir: {}`;
  const indent = (text: string, by: number) => text.replaceAll('\n        ', `\n${' '.repeat(by)}`);
  const kinds: { kind: string; apiVersion: string; body: string; prefix: string }[] = [
    { kind: 'Pod', apiVersion: 'v1', body: `spec:${indent(podSpec, 2)}`, prefix: 'spec' },
    { kind: 'PodTemplate', apiVersion: 'v1', body: `template:\n  spec:${indent(podSpec, 4)}`, prefix: 'template.spec' },
    ...[
      'ReplicationController:v1',
      'ReplicaSet:apps/v1',
      'Deployment:apps/v1',
      'StatefulSet:apps/v1',
      'DaemonSet:apps/v1',
      'Job:batch/v1',
    ].map((k) => {
      const [kind = '', apiVersion = ''] = k.split(':');
      return {
        kind,
        apiVersion,
        body: `spec:\n  template:\n    spec:${indent(podSpec, 6)}`,
        prefix: 'spec.template.spec',
      };
    }),
    {
      kind: 'CronJob',
      apiVersion: 'batch/v1',
      body: `spec:\n  schedule: "* * * * *"\n  jobTemplate:\n    spec:\n      template:\n        spec:${indent(podSpec, 10)}`,
      prefix: 'spec.jobTemplate.spec.template.spec',
    },
  ];
  for (const { kind, apiVersion, body, prefix } of kinds) {
    it(`${kind}: containers, initContainers, ephemeralContainers and image volumes`, async () => {
      const input = `apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata:\n  name: x\n${body}\n`;
      const { report, text } = await pinText(input);
      assert.deepEqual(
        report.slots.map((s) => [s.path, s.container, s.image]),
        [
          [`${prefix}.initContainers[0].image`, 'init', 'busybox:1.36'],
          [`${prefix}.containers[0].image`, 'app', 'nginx:1.25'],
          [`${prefix}.ephemeralContainers[0].image`, 'debug', 'quay.io/team/tool:3'],
          [`${prefix}.volumes[0].image.reference`, 'data', 'redis:7'],
        ],
      );
      assert.equal(
        text,
        input
          .replace('busybox:1.36', `busybox:1.36@${D3}`)
          .replace('nginx:1.25', `nginx:1.25@${D1}`)
          .replace('quay.io/team/tool:3', `quay.io/team/tool:3@${D2}`)
          .replace('redis:7', `redis:7@${D2}`),
      );
    });
  }

  it('any version of the group; not the same Kind in another group', async () => {
    const input = `${deployment('nginx:1.25').replace('apps/v1', 'apps/v1beta2')}---\n${deployment('redis:7').replace('apps/v1', 'example.com/v1')}`;
    const { report } = await pinText(input);
    assert.deepEqual(
      report.slots.map((s) => s.image),
      ['nginx:1.25'],
    );
  });

  it('never touches non-workload kinds, policies or values files', async () => {
    const input = `apiVersion: v1
kind: ConfigMap
data:
  image: nginx:1.25
  spec: |
    containers:
    - image: nginx:1.25
---
apiVersion: kyverno.io/v1
kind: ClusterPolicy
spec:
  rules:
  - validate:
      pattern:
        spec:
          containers:
          - image: "registry.example.com/* | quay.io/*"
---
apiVersion: example.com/v1
kind: Widget
spec:
  template:
    spec:
      containers:
      - image: nginx:1.25
---
# a Helm values file: no apiVersion and kind
image: nginx:1.25
spec:
  containers:
  - image: nginx:1.25
---
apiVersion: v1
kind: Service
spec: {selector: {app: web}}
`;
    const { report, engine } = await pinText(input);
    assert.equal(report.slots.length, 0);
    assert.equal(report.files[0]?.text, input);
    assert.equal(engine.lookups.length, 0);
  });

  it('walks List items (nested too) and prefixes their paths', async () => {
    const input = `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  data: {image: nginx:1.25}
- apiVersion: v1
  kind: Pod
  spec:
    containers: [{name: a, image: nginx:1.25}]
- apiVersion: apps/v1
  kind: DeploymentList
  items:
  - apiVersion: apps/v1
    kind: Deployment
    spec: {template: {spec: {containers: [{name: b, image: redis:7}]}}}
`;
    const { report, text } = await pinText(input);
    assert.deepEqual(
      report.slots.map((s) => [s.path, s.fieldPath]),
      [
        ['items[1].spec.containers[0].image', 'spec.containers[0].image'],
        ['items[2].items[0].spec.template.spec.containers[0].image', 'spec.template.spec.containers[0].image'],
      ],
    );
    assert.equal(
      text,
      input.replace('image: nginx:1.25}]', `image: nginx:1.25@${D1}}]`).replace('redis:7', `redis:7@${D2}`),
    );
  });

  it('custom pod-spec paths for custom resources (Argo Rollout, Knative Service)', async () => {
    const input = `apiVersion: argoproj.io/v1alpha1
kind: Rollout
spec:
  template:
    spec:
      containers: [{name: a, image: nginx:1.25}]
---
apiVersion: serving.knative.dev/v1
kind: Service
spec:
  template:
    spec:
      containers:
      - image: redis:7
`;
    const without = await pinText(input);
    assert.equal(without.report.slots.length, 0);
    const { report } = await pinText(input, {
      extraPodSpecPaths: {
        'argoproj.io/Rollout': ['spec.template.spec'],
        'serving.knative.dev/Service': ['spec.template.spec'],
      },
    });
    assert.deepEqual(
      report.slots.map((s) => [s.doc, s.path, s.container]),
      [
        [0, 'spec.template.spec.containers[0].image', 'a'],
        [1, 'spec.template.spec.containers[0].image', undefined],
      ],
    );
  });

  it('extra paths: strings opted in anywhere, maps never rewritten', async () => {
    const input = `# values.yaml
image:
  repository: nginx
  tag: "1.25"
sidecar:
  image: redis:7
jobs:
- image: busybox:1.36
- image: {repository: x}
- image: 3
`;
    const { report, text } = await pinText(input, { extraPaths: ['image', 'sidecar.image', 'jobs[*].image'] });
    assert.deepEqual(
      report.slots.map((s) => s.path),
      ['sidecar.image', 'jobs[0].image'],
    );
    assert.equal(text, input.replace('redis:7', `redis:7@${D2}`).replace('busybox:1.36', `busybox:1.36@${D3}`));
  });

  it('leaves empty, whitespace, skipped, pinned and unparseable images alone', async () => {
    const input = `apiVersion: v1
kind: Pod
spec:
  containers:
  - {name: a, image: ""}
  - {name: b, image: " "}
  - {name: c, image: internal.example.com/app:1}
  - {name: d, image: "nginx:1.25@${D1}"}
  - {name: e, image: Nginx:1.25}
  - {name: f, image: 42}
  - {name: g}
`;
    const { report, engine } = await pinText(input, {}, ['internal.example.com/']);
    assert.equal(report.files[0]?.text, input);
    assert.deepEqual(engine.lookups, []);
    assert.deepEqual(
      report.warnings.map((w) => [w.slot.path, w.message]),
      [['spec.containers[4].image', 'Nginx:1.25: invalid reference']],
    );
    assert.deepEqual(
      report.slots.map((s) => s.container),
      ['a', 'b', 'c', 'd', 'e'],
    );
  });

  it('is idempotent: a second run changes nothing and resolves nothing', async () => {
    const input = `${deployment('nginx:1.25')}---\n${deployment("'redis:7' # x")}`;
    const first = await pinText(input);
    assert.equal(first.engine.lookups.length, 2);
    const second = await pinText(first.text ?? '');
    assert.equal(second.text, first.text);
    assert.equal(second.report.files[0]?.changed, false);
    assert.deepEqual(second.engine.lookups, []);
  });

  it('looks each distinct image up once and records what it wrote', async () => {
    const input = `${deployment('nginx:1.25')}---\n${deployment('nginx:1.25')}---\n${deployment('redis:7')}`;
    const { report, engine } = await pinText(input);
    assert.deepEqual(engine.lookups.sort(), ['nginx:1.25', 'redis:7']);
    assert.deepEqual(report.resolutions, [
      { ref: 'nginx:1.25', digest: D1 },
      { ref: 'redis:7', digest: D2 },
    ]);
  });

  it('all or nothing: one failed image and no file is produced', async () => {
    const input = `${deployment('nginx:1.25')}---\n${deployment('ghcr.io/missing/app:1')}---\n${deployment('ghcr.io/missing/app:1')}`;
    const { report } = await pinText(input);
    assert.deepEqual(report.files, []);
    assert.deepEqual(report.resolutions, []);
    assert.deepEqual(
      report.failures.map((f) => [f.slot.doc, f.slot.path, f.slot.image, f.cause]),
      [[1, 'spec.template.spec.containers[0].image', 'ghcr.io/missing/app:1', 'not found']],
    );
  });

  it('reports an engine that throws as a failure of that image', async () => {
    const engine: PinEngine = {
      pin: async (image) => {
        throw new Error(`boom ${image}`);
      },
    };
    const report = await pinManifests([ManifestSource.parse('a.yaml', deployment('nginx:1.25'))], engine);
    assert.deepEqual(
      report.failures.map((f) => f.cause),
      ['boom nginx:1.25'],
    );
  });

  it('uses pinAll when the engine has it: one batch', async () => {
    const batches: string[][] = [];
    const engine: PinEngine = {
      pin: () => Promise.reject(new Error('pin() should not be called')),
      pinAll: async (images) => {
        batches.push([...images]);
        return images.map((image) => ({ image: `${image}@${D1}`, changed: true, digest: D1, warnings: [] }));
      },
    };
    const input = `${deployment('nginx:1.25')}---\n${deployment('redis:7')}---\n${deployment('nginx:1.25')}`;
    const report = await pinManifests([ManifestSource.parse('a.yaml', input)], engine);
    assert.deepEqual(batches, [['nginx:1.25', 'redis:7']]);
    assert.equal(
      report.files[0]?.text,
      input.replaceAll('nginx:1.25', `nginx:1.25@${D1}`).replace('redis:7', `redis:7@${D1}`),
    );
  });

  it('treats a denial as a failure', async () => {
    const engine: PinEngine = {
      pin: async (image) => ({ image, changed: false, warnings: [], denied: `${image}: digest does not match` }),
    };
    const report = await pinManifests(
      [ManifestSource.parse('a.yaml', deployment('nginx:1.25@sha256:' + 'a'.repeat(64)))],
      engine,
    );
    assert.equal(report.failures.length, 1);
    assert.match(report.failures[0]?.cause ?? '', /does not match/);
  });

  it('writes canonical and digest-only forms the engine returns', async () => {
    const engine: PinEngine = {
      pin: async (image) => ({ image: `docker.io/library/${image}@${D1}`, changed: true, digest: D1, warnings: [] }),
    };
    const input = deployment("'nginx:1.25'");
    const report = await pinManifests([ManifestSource.parse('a.yaml', input)], engine);
    assert.equal(report.files[0]?.text, input.replace("'nginx:1.25'", `'docker.io/library/nginx:1.25@${D1}'`));
  });
});
