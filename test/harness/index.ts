/**
 * The integration-test harness: real peers on loopback (a Distribution registry, a token
 * server, skopeo), reproducible test images, and a fault-injecting proxy. Tests import from here.
 */
export {
  createCertificateAuthority,
  createSelfSigned,
  issueCertificate,
  makeServerCertificates,
  toSubjectAltName,
  type CertificateAuthority,
  type CertificateOptions,
  type IssuedCertificate,
  type KeyPairFiles,
  type KeyType,
  type LeafOptions,
  type ServerCertificates,
} from './certs.ts';
export { Containerd } from './containerd.ts';
export {
  fault,
  startFaultProxy,
  type Fault,
  type FaultProxy,
  type FaultProxyOptions,
  type FaultRequest,
  type FaultRule,
  type RecordedRequest,
} from './fault-proxy.ts';
export { basicAuth, httpRequest, type HttpRequestOptions, type HttpResponse } from './http-client.ts';
export {
  MEDIA_TYPES,
  buildImage,
  parsePlatform,
  parseSize,
  pushImage,
  type BuiltImage,
  type BuiltLayer,
  type BuiltPlatformImage,
  type Compression,
  type ContentKind,
  type Descriptor,
  type ImageFormat,
  type ImageSpec,
  type LayerSpec,
  type LayoutImage,
  type Platform,
  type PushOptions,
  type PushedImage,
  type RegistryEndpoint,
} from './images.ts';
export { onExit, redact, run, stopChild, trackChild, type RunOptions, type RunResult } from './processes.ts';
export {
  listeningPorts,
  startRegistry,
  type Credentials,
  type PullThroughOptions,
  type RegistryOptions,
  type RunningRegistry,
  type TokenAuth,
} from './registry.ts';
export { copyImage, inspectRaw, skopeo, type CopyOptions, type SkopeoAuth } from './skopeo.ts';
export { freePort, makeTempDir, withTempDir, type TempDir } from './temp.ts';
export {
  libtrustKeyId,
  parseScope,
  startTokenServer,
  type GrantContext,
  type IssuedToken,
  type ResourceScope,
  type TokenClaims,
  type TokenRequest,
  type TokenServer,
  type TokenServerOptions,
} from './token-server.ts';
export { ensureTools, requireTools, which } from './tools.ts';

/** sha256 digest (`sha256:hex`) of bytes; handy to cross-check what registries return. */
export { sha256Digest, sha256File, snapshotTree } from './digests.ts';
