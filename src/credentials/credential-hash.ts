/**
 * The kubelet's `credentialHash` (KEP-2535, docs/semantics.md kubelet §10): sha256 hex of the Go JSON of the
 * credential as `{username, password, auth, email, serveraddress, identitytoken, registrytoken}`,
 * empty fields omitted. A pulled-image record stores it so a later pod with the same secret
 * content is recognised without keeping the secret itself.
 */
import { createHash } from 'node:crypto';
import type { Credential } from './credential.ts';
import { goJsonString } from './go-json.ts';

export function credentialHash(credential: Credential): string {
  const fields: [string, string][] = [];
  switch (credential.kind) {
    case 'basic':
      fields.push(['username', credential.username], ['password', credential.password], ['email', credential.email]);
      break;
    case 'identityToken':
      fields.push(['username', credential.username], ['identitytoken', credential.identityToken]);
      break;
    case 'registryToken':
      fields.push(['registrytoken', credential.registryToken]);
      break;
  }
  const body = fields
    .filter(([, value]) => value !== '')
    .map(([name, value]) => `"${name}":${goJsonString(value)}`)
    .join(',');
  return createHash('sha256').update(`{${body}}`, 'utf8').digest('hex');
}
