/** The media types of the OCI image spec and Docker's image manifest v2. */
export const MediaType = {
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayer: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OciEmpty: 'application/vnd.oci.empty.v1+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  DockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** Sent as `Accept` on every manifest request: Distribution 2.8 answers 404 to a HEAD for a
 * multi-platform tag when only the OCI manifest type is accepted. */
export const MANIFEST_ACCEPT = [
  MediaType.OciIndex,
  MediaType.DockerManifestList,
  MediaType.OciManifest,
  MediaType.DockerManifest,
].join(', ');

/**
 * Whether `mediaType` is an image index (OCI index or Docker manifest list).
 */
export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === MediaType.OciIndex || mediaType === MediaType.DockerManifestList;
}

/**
 * Whether `mediaType` is an image manifest (OCI or Docker schema 2).
 */
export function isManifestMediaType(mediaType: string): boolean {
  return mediaType === MediaType.OciManifest || mediaType === MediaType.DockerManifest;
}

/** Schema 1 (and `text/plain`, its old Red Hat quirk) is refused: containerd 2.0 dropped it. */
export function isSchema1MediaType(mediaType: string): boolean {
  return (
    mediaType === MediaType.DockerSchema1 || mediaType === MediaType.DockerSchema1Signed || mediaType === 'text/plain'
  );
}

/** `Content-Type` without parameters, lowercased: `application/json; charset=utf-8` → `application/json`. */
export function stripMediaTypeParameters(contentType: string): string {
  const semicolon = contentType.indexOf(';');
  return (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
}
