/**
 * Errors of the credentials module. Each names the input (file and key, secret, helper and host,
 * provider and image) and the problem; none carries a secret, a helper's or plugin's output, or
 * the underlying parser error (Node's JSON errors quote the input text).
 */
import { KimgError } from '../errors/index.ts';

/** A Docker `config.json` or containers `auth.json` that cannot be used. */
export class DockerConfigError extends KimgError<'credentials.ErrInvalidDockerConfig'> {
  readonly path: string;
  /** The `auths`/`credHelpers` key concerned, when the problem is in one entry. */
  readonly key: string | undefined;
  readonly problem: string;

  constructor(path: string, problem: string, key?: string) {
    const where = key === undefined ? path : `${path}, key ${JSON.stringify(key)}`;
    super('credentials.ErrInvalidDockerConfig', `invalid credentials file ${where}: ${problem}`);
    this.path = path;
    this.key = key;
    this.problem = problem;
  }
}

/** A usable pull Secret (docker config type, non-empty data) whose content is malformed. */
export class PullSecretError extends KimgError<'credentials.ErrInvalidPullSecret'> {
  readonly namespace: string;
  /** The Secret's name (`name` itself stays the error class name, as for every Error). */
  readonly secretName: string;
  readonly problem: string;

  constructor(namespace: string, secretName: string, problem: string) {
    super('credentials.ErrInvalidPullSecret', `invalid pull secret ${namespace}/${secretName}: ${problem}`);
    this.namespace = namespace;
    this.secretName = secretName;
    this.problem = problem;
  }
}

/** A kubelet node config file (`config.json`/`.dockercfg`) that could not be decoded. */
export class NodeConfigError extends KimgError<'credentials.ErrInvalidNodeConfig'> {
  readonly path: string;
  readonly problem: string;

  constructor(path: string, problem: string) {
    super('credentials.ErrInvalidNodeConfig', `invalid node credentials file ${path}: ${problem}`);
    this.path = path;
    this.problem = problem;
  }
}

export type CredentialHelperFailure = 'invalid-name' | 'not-installed' | 'timeout' | 'failed' | 'invalid-output';

/** A `docker-credential-<name>` program that failed (other than "credentials not found"). */
export class CredentialHelperError extends KimgError<'credentials.ErrCredentialHelper'> {
  /** The helper's name, e.g. `desktop` for `docker-credential-desktop`. */
  readonly helper: string;
  readonly serverURL: string;
  readonly reason: CredentialHelperFailure;
  readonly exitCode: number | undefined;
  readonly signal: string | undefined;

  constructor(
    helper: string,
    serverURL: string,
    reason: CredentialHelperFailure,
    detail: { exitCode?: number; signal?: string; problem?: string } = {},
  ) {
    super(
      'credentials.ErrCredentialHelper',
      `credential helper docker-credential-${helper} for ${serverURL}: ${describe(reason, detail)}`,
    );
    this.helper = helper;
    this.serverURL = serverURL;
    this.reason = reason;
    this.exitCode = detail.exitCode;
    this.signal = detail.signal;
  }
}

/** A `CredentialProviderConfig` that fails the kubelet's validation; every problem is listed. */
export class ProviderConfigError extends KimgError<'credentials.ErrInvalidProviderConfig'> {
  readonly problems: readonly string[];
  readonly path: string | undefined;

  constructor(problems: readonly string[], path?: string) {
    const where = path === undefined ? 'credential provider config' : `credential provider config ${path}`;
    super('credentials.ErrInvalidProviderConfig', `invalid ${where}: ${problems.join('; ')}`);
    this.problems = problems;
    this.path = path;
  }
}

export type CredentialProviderFailure = 'not-installed' | 'timeout' | 'failed' | 'invalid-response' | 'unsupported';

/**
 * A credential provider plugin run that yielded no credentials. The kubelet logs these and pulls
 * on without the plugin's credentials; they reach callers through the `onError` hook.
 */
export class CredentialProviderError extends KimgError<'credentials.ErrCredentialProvider'> {
  readonly provider: string;
  readonly image: string;
  readonly reason: CredentialProviderFailure;
  readonly exitCode: number | undefined;
  readonly signal: string | undefined;

  constructor(
    provider: string,
    image: string,
    reason: CredentialProviderFailure,
    detail: { exitCode?: number; signal?: string; problem?: string } = {},
  ) {
    super(
      'credentials.ErrCredentialProvider',
      `credential provider ${provider} for image ${image}: ${describe(reason, detail)}`,
    );
    this.provider = provider;
    this.image = image;
    this.reason = reason;
    this.exitCode = detail.exitCode;
    this.signal = detail.signal;
  }
}

function describe(
  reason: CredentialHelperFailure | CredentialProviderFailure,
  detail: { exitCode?: number; signal?: string; problem?: string },
): string {
  const suffix = detail.problem === undefined ? '' : `: ${detail.problem}`;
  switch (reason) {
    case 'invalid-name':
      return `not a valid helper name${suffix}`;
    case 'not-installed':
      return `program not found${suffix}`;
    case 'timeout':
      return `timed out${suffix}`;
    case 'failed':
      if (detail.signal !== undefined) return `killed by ${detail.signal}${suffix}`;
      return `exited with code ${detail.exitCode ?? 'unknown'}${suffix}`;
    case 'invalid-output':
      return `unusable output (not shown: it may hold secrets)${suffix}`;
    case 'invalid-response':
      return `unusable response${suffix}`;
    case 'unsupported':
      return `not run${suffix}`;
  }
}
