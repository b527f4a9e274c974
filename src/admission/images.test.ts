import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseNormalizedNamed } from '../reference/index.ts';
import { classifyImage, pinnedValue, showImage } from './images.ts';
import { imageWarning, prefixedImage, WARNING_LIMIT } from './messages.ts';

const D = `sha256:${'d'.repeat(64)}`;

describe('image slot rules and output forms (docs/semantics.md admission §4.3, §4.4)', () => {
  test('classification in rule order', () => {
    assert.equal(classifyImage('').kind, 'blank');
    assert.equal(classifyImage('   ').kind, 'blank');
    assert.equal(classifyImage('registry.example.com/mesh/proxy:1', ['registry.example.com/mesh/']).kind, 'skipped');
    assert.equal(classifyImage('Bad/Name', ['Bad/']).kind, 'skipped', 'skip prefixes come before parsing');
    for (const bad of ['x@sha256:abc', 'Nginx', 'nginx:', 'a b']) assert.equal(classifyImage(bad).kind, 'invalid', bad);
    const digest = classifyImage(`redis:7@${D}`);
    assert.ok(digest.kind === 'digest' && digest.tag === '7' && digest.digest === D);
    const tag = classifyImage('redis');
    assert.ok(tag.kind === 'tag' && tag.lookup === 'docker.io/library/redis:latest' && tag.implicitLatest);
    const port = classifyImage('reg:5000/app');
    assert.ok(port.kind === 'tag' && port.lookup === 'reg:5000/app:latest' && port.implicitLatest);
  });

  test('preserve, canonical and digest-only', () => {
    const cases: [string, string, string, string][] = [
      ['redis', `redis@${D}`, `docker.io/library/redis:latest@${D}`, `docker.io/library/redis@${D}`],
      ['redis:7', `redis:7@${D}`, `docker.io/library/redis:7@${D}`, `docker.io/library/redis@${D}`],
      ['reg:5000/app', `reg:5000/app@${D}`, `reg:5000/app:latest@${D}`, `reg:5000/app@${D}`],
      [
        'index.docker.io/library/nginx:1',
        `index.docker.io/library/nginx:1@${D}`,
        `docker.io/library/nginx:1@${D}`,
        `docker.io/library/nginx@${D}`,
      ],
    ];
    for (const [image, preserve, canonical, digestOnly] of cases) {
      const named = parseNormalizedNamed(image);
      assert.equal(pinnedValue(image, named, D, 'preserve'), preserve);
      assert.equal(pinnedValue(image, named, D, 'canonical'), canonical);
      assert.equal(pinnedValue(image, named, D, 'digest-only'), digestOnly);
    }
  });

  test('warnings stay within 256 characters and never cut an image of up to 200 characters or a digest', () => {
    const image = `registry.example.com/${'a'.repeat(170)}:v1`;
    assert.ok(image.length < 200);
    const w = imageWarning(image, `digest does not match the tag, which points at ${D}`);
    assert.ok(w.length <= WARNING_LIMIT, String(w.length));
    assert.ok(w.includes(D), 'the digest is whole');
    const short = imageWarning('redis:7', 'not pinned: not found', 'x'.repeat(400));
    assert.ok(short.startsWith('redis:7: not pinned: not found (') && short.length <= WARNING_LIMIT);
    const huge = `registry.example.com/${'b'.repeat(300)}:v1`;
    assert.ok(showImage(huge).includes('…') && showImage(huge).length === 200);
    assert.ok(imageWarning(huge, 'invalid').length <= WARNING_LIMIT);
    assert.equal(showImage('redis:7'), 'redis:7');
    assert.ok(prefixedImage('spec.containers[0].image: missing-digest: ', huge).length <= WARNING_LIMIT);
  });
});
