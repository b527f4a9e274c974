import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManifestSource } from './document.ts';
import { checkSlots, findingRecords, formatFindingsText, lintSlots } from './findings.ts';
import { findImageSlots } from './slots.ts';

const D = `sha256:${'d'.repeat(64)}`;

const APP = `# app.yaml
apiVersion: v1
kind: ConfigMap
data: {image: nginx}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      initContainers:
      - name: init
        image: busybox@${D}
      containers:
      - name: cache
        image: redis:7.2 # cache
      - name: bad
        image: Redis
      - name: blank
        image: " "
      - name: mine
        image: internal.example.com/app:1
`;

describe('check and lint findings', () => {
  const slots = findImageSlots(ManifestSource.parse('app.yaml', APP));

  it('check: missing-digest for what pinning would resolve, invalid-reference for what it cannot parse', () => {
    const findings = checkSlots(slots, { skipPrefixes: ['internal.example.com/'] });
    assert.equal(
      formatFindingsText(findings),
      'app.yaml:17:16: spec.template.spec.containers[0].image: missing-digest: redis:7.2\n' +
        'app.yaml:19:16: spec.template.spec.containers[1].image: invalid-reference: Redis\n',
    );
    assert.deepEqual(findingRecords(findings)[0], {
      file: 'app.yaml',
      doc: 1,
      path: 'spec.template.spec.containers[0].image',
      image: 'redis:7.2',
      rule: 'missing-digest',
      container: 'cache',
      line: 17,
      column: 16,
    });
  });

  it('lint: one finding per violation the policy reports, in slot order', () => {
    const policy = {
      evaluate: (image: string) => ({
        violations: image.includes('@')
          ? []
          : [
              { rule: 'missing-digest', message: 'no digest' },
              ...(image.startsWith('internal') ? [] : [{ rule: 'registry-not-allowed' }]),
            ],
      }),
    };
    const findings = lintSlots(slots, policy);
    assert.deepEqual(
      findings.map((f) => [f.slot.container, f.rule]),
      [
        ['cache', 'missing-digest'],
        ['cache', 'registry-not-allowed'],
        ['bad', 'missing-digest'],
        ['bad', 'registry-not-allowed'],
        ['blank', 'missing-digest'],
        ['blank', 'registry-not-allowed'],
        ['mine', 'missing-digest'],
      ],
    );
  });
});
