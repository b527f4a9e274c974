/**
 * Writes on a server started without `--allow-push`: each request is validated as a real write
 * would be (a malformed manifest is still a 400 MANIFEST_INVALID, a bad digest a 400
 * DIGEST_INVALID), then refused with UNSUPPORTED (405), as the spec allows a read-only registry.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseManifestDocument } from '../oci/index.ts';
import { readBody } from './body.ts';
import { DistributionError } from './errors.ts';
import { ReadHandler } from './read.ts';

export async function refuseWrite(
  route: string,
  req: IncomingMessage,
  res: ServerResponse,
  query: URLSearchParams,
  maxManifestBytes: number,
): Promise<never> {
  const digest = query.get('digest');
  if (digest !== null) ReadHandler.digest(digest);
  const mount = query.get('mount');
  if (mount !== null) ReadHandler.digest(mount);
  if (route === 'manifest' && req.method === 'PUT') {
    const bytes = await readBody(req, maxManifestBytes, 'the manifest');
    const contentType = req.headers['content-type'];
    try {
      parseManifestDocument(bytes, {
        what: 'the manifest',
        ...(contentType !== undefined && { contentType }),
      });
    } catch (err) {
      throw new DistributionError('MANIFEST_INVALID', err instanceof Error ? err.message : 'manifest invalid', {
        cause: err,
      });
    }
  }
  // The body of an upload is not read: the connection closes after the answer.
  res.setHeader('connection', 'close');
  throw new DistributionError(
    'UNSUPPORTED',
    'this registry is read-only (start it with --allow-push to accept pushes)',
  );
}
