import { HostCredentialResolver, type Credential as StoredCredential } from '../credentials/index.ts';
import type { Credential as ClientCredential, CredentialSource } from '../registry/index.ts';

/** The registry client's view of a credential; secrets stay behind the credentials' getters
 * until the moment a request needs them. */
export function toClientCredential(credential: StoredCredential): ClientCredential {
  switch (credential.kind) {
    case 'basic':
      return credential;
    case 'identityToken':
      return {
        kind: 'identityToken',
        get token() {
          return credential.identityToken;
        },
        ...(credential.username !== '' && { username: credential.username }),
      };
    case 'registryToken':
      return {
        kind: 'registryToken',
        get token() {
          return credential.registryToken;
        },
      };
  }
}

export interface CredentialOptions {
  /** Credentials by registry key (`host[:port]` or `host/namespace`), before any file. */
  readonly explicit?: Readonly<Record<string, StoredCredential>>;
  /** Credential files to read instead of the default Docker config and containers auth.json. */
  readonly authFiles?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly home?: string;
}

/** Credentials per host contacted, from explicit ones and the user's Docker/containers files. */
export async function loadCredentialSource(options: CredentialOptions = {}): Promise<CredentialSource> {
  const resolver = await HostCredentialResolver.load({
    ...(options.explicit !== undefined && { explicit: options.explicit }),
    ...(options.authFiles !== undefined && { paths: options.authFiles }),
    ...(options.env !== undefined && { env: options.env }),
    ...(options.home !== undefined && { home: options.home }),
  });
  return async (host) => {
    const found = await resolver.resolve({ host });
    return found === undefined ? undefined : toClientCredential(found.credential);
  };
}
