import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EMPTY_SHA256, ManifestError, MediaType, parseManifestDocument, parseStrictJson } from './index.ts';

const D = (c: string) => `sha256:${c.repeat(64)}`;
const layer = { mediaType: MediaType.OciLayerGzip, digest: D('1'), size: 10 };
const config = { mediaType: MediaType.OciConfig, digest: D('2'), size: 20 };
const manifest = { schemaVersion: 2, mediaType: MediaType.OciManifest, config, layers: [layer] };
const index = {
  schemaVersion: 2,
  mediaType: MediaType.OciIndex,
  manifests: [
    { mediaType: MediaType.OciManifest, digest: D('3'), size: 30, platform: { os: 'linux', architecture: 'amd64' } },
  ],
};
const bytes = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));
const rejects = (v: unknown, pattern: RegExp, code = 'ErrManifestInvalid', options = {}) =>
  assert.throws(
    () => parseManifestDocument(bytes(v), options),
    (err: unknown) => {
      assert.ok(err instanceof ManifestError, String(err));
      assert.equal(err.code, code);
      assert.match(err.message, pattern);
      return true;
    },
  );

describe('parseManifestDocument', () => {
  it('reads an image manifest and an index', () => {
    const m = parseManifestDocument(bytes(manifest));
    assert.equal(m.kind, 'manifest');
    assert.equal(m.kind === 'manifest' && m.manifest.layers[0]?.digest, D('1'));
    const i = parseManifestDocument(bytes(index), { contentType: `${MediaType.OciIndex}; charset=utf-8` });
    assert.equal(i.kind, 'index');
    assert.deepEqual(i.kind === 'index' && i.index.manifests[0]?.platform, { os: 'linux', architecture: 'amd64' });
  });

  it('infers the type of a document without mediaType from its shape', () => {
    const { mediaType: _m, ...bare } = manifest;
    assert.equal(parseManifestDocument(bytes(bare)).mediaType, MediaType.OciManifest);
  });

  it('rejects a document that is both manifest and index (CVE-2021-41190)', () => {
    rejects({ ...index, layers: [layer] }, /both "manifests" and "layers"/);
    rejects({ ...index, config }, /both/);
  });

  it('rejects media types that disagree', () => {
    rejects(manifest, /media types disagree/, 'ErrManifestInvalid', { contentType: MediaType.DockerManifest });
    rejects(manifest, /media types disagree/, 'ErrManifestInvalid', { descriptorMediaType: MediaType.OciIndex });
  });

  it('rejects duplicate keys, even escaped ones', () => {
    rejects(`{"schemaVersion":2,"layers":[],"layers":[],"config":${JSON.stringify(config)}}`, /duplicate key "layers"/);
    rejects(
      `{"schemaVersion":2,"mediaType":"${MediaType.OciManifest}","config":${JSON.stringify(config)},"layers":[],"l\\u0061yers":[]}`,
      /duplicate key/,
    );
  });

  it('refuses schema 1', () => {
    rejects({ schemaVersion: 1, name: 'x', fsLayers: [] }, /schema 1/, 'ErrUnsupportedMediaType');
    rejects(manifest, /schema 1/, 'ErrUnsupportedMediaType', { contentType: 'text/plain' });
  });

  it('validates descriptors (S8, S9)', () => {
    const withLayer = (l: unknown) => ({ ...manifest, layers: [l] });
    rejects(withLayer({ ...layer, digest: 'sha256:../../etc/passwd' }), /layers\[0\]\.digest/);
    rejects(withLayer({ ...layer, digest: D('A') }), /not a valid digest/);
    rejects(
      withLayer({ ...layer, digest: `sha1024:${'a'.repeat(64)}` }),
      /unsupported algorithm/,
      'ErrUnsupportedDigestAlgorithm',
    );
    rejects(withLayer({ ...layer, size: -1 }), /size must be/);
    rejects(withLayer({ ...layer, size: 2 ** 53 }), /size must be/);
    rejects(withLayer({ ...layer, size: 1.5 }), /size must be/);
    rejects(withLayer({ ...layer, size: '10' }), /size must be/);
    rejects(withLayer({ ...layer, size: 0 }), /not the digest of empty content/);
    rejects(withLayer({ ...layer, mediaType: 7 }), /mediaType/);
    rejects(withLayer(null), /must be an object/);
    rejects({ ...manifest, config: undefined }, /config must be an object/);
    rejects({ ...manifest, layers: {} }, /"layers" must be an array/);
    rejects('[1,2]', /not a JSON object/);
    rejects('{', /not valid JSON|unterminated/);
    rejects(`${'['.repeat(100_000)}${']'.repeat(100_000)}`, /nested deeper/);
    assert.equal(parseManifestDocument(bytes(withLayer({ ...layer, digest: EMPTY_SHA256, size: 0 }))).kind, 'manifest');
  });

  it('caps descriptors per index and layers per manifest', () => {
    rejects({ ...manifest, layers: Array(3).fill(layer) }, /3 layers, more than the limit of 2/, 'ErrManifestInvalid', {
      maxLayers: 2,
    });
    rejects({ ...index, manifests: Array(3).fill(index.manifests[0]) }, /limit of 2/, 'ErrManifestInvalid', {
      maxManifests: 2,
    });
  });

  it('names the document in errors', () => {
    rejects({ ...index, layers: [] }, /^busybox@sha256:x: /, 'ErrManifestInvalid', { what: 'busybox@sha256:x' });
  });
});

describe('parseStrictJson', () => {
  it('accepts the same key in sibling objects and keys inside strings', () => {
    assert.deepEqual(parseStrictJson('[{"a":1},{"a":2}]'), [{ a: 1 }, { a: 2 }]);
    assert.deepEqual(parseStrictJson('{"a":"\\"a\\":","b":{"a":1}}'), { a: '"a":', b: { a: 1 } });
  });
});
