import type { Command } from 'commander';
import { ImagePolicy, parsePolicyConfig, readConfigFile, type PolicyConfig } from '../../admission/index.ts';
import {
  findImageSlots,
  lintSlots,
  parseFieldPath,
  readResourceList,
  slotResult,
  withResults,
  type SlotOptions,
} from '../../manifests/index.ts';
import type { Io } from '../io.ts';
import { addSlotFlags, loadConfig, podSpecPathFlags, type ManifestFlags } from './pin-engine.ts';
import { readAll, readManifests, UsageError } from './pin-input.ts';
import { failWith, outputFormat, printFindings } from './pin-report.ts';

interface LintFlags extends ManifestFlags {
  readonly policy?: string;
}

/** Without `--policy`: no `latest` (written or implied), every image a valid reference. */
export const DEFAULT_LINT_POLICY: Partial<PolicyConfig> = {
  disallowedTags: ['latest'],
  implicitLatestIsLatest: true,
  rejectInvalidReferences: true,
};

export function registerLint(program: Command, io: Io, setExit: (code: number) => void): void {
  addSlotFlags(program.command('lint'), 'check')
    .description(
      "check the images of Kubernetes manifests against an image policy, offline (the validating webhook's rules)",
    )
    .option(
      '-f, --filename <file...>',
      'manifest files or directories (YAML or JSON, multi-document); - reads standard input',
    )
    .option(
      '--policy <file>',
      'the policy (YAML or JSON): enforcement, disallowedTags, implicitLatestIsLatest, digestSatisfiesTagRules, requireDigest, digestMustBeValid, rejectInvalidReferences, allowedRepositories, exemptImages (default: no latest tag, valid references)',
    )
    .option('--config <file>', 'admission configuration: its validate section is the policy unless --policy is given')
    .option(
      '-o, --output <format>',
      'text (<file>:<line>:<column>: <path>: <rule>: <image>), json (one finding per line) or yaml',
      'text',
    )
    .option(
      '--krm',
      'run as a KRM function: a ResourceList on standard input, the same with results on standard output',
    )
    .action(async (flags: LintFlags) => {
      setExit(await runLint(flags, io));
    });
}

async function loadPolicy(flags: LintFlags): Promise<PolicyConfig> {
  if (flags.policy !== undefined) {
    const raw = await readConfigFile(flags.policy);
    // A whole admission configuration is accepted too: its validate section is the policy.
    const isWhole =
      typeof raw === 'object' &&
      raw !== null &&
      'validate' in raw &&
      Object.keys(raw).every((k) => ['mutate', 'validate', 'resolver'].includes(k));
    return parsePolicyConfig(
      isWhole ? (raw as { validate: unknown }).validate : raw,
      isWhole ? 'validate' : flags.policy,
    );
  }
  if (flags.config !== undefined) {
    const raw = await readConfigFile(flags.config);
    if (typeof raw === 'object' && raw !== null && 'validate' in raw)
      return parsePolicyConfig((raw as { validate: unknown }).validate);
  }
  return parsePolicyConfig(DEFAULT_LINT_POLICY);
}

/** `kimg lint`; returns the exit status. */
export async function runLint(flags: LintFlags, io: Io): Promise<number> {
  try {
    const krm = flags.krm === true;
    if (krm && (flags.filename ?? []).length > 0)
      throw new UsageError('--krm reads a ResourceList from standard input: no -f');
    const format = outputFormat(flags.output);
    const config = await loadConfig(flags.config, io);
    const policy = new ImagePolicy(await loadPolicy(flags));
    const extra = podSpecPathFlags(flags.podSpecPath);
    const extraPodSpecPaths: Record<string, readonly string[]> = { ...config.mutate.extraPodSpecPaths };
    for (const [kind, paths] of Object.entries(extra))
      extraPodSpecPaths[kind] = [...(extraPodSpecPaths[kind] ?? []), ...paths];
    const slotOptions: SlotOptions = { extraPodSpecPaths, extraPaths: flags.extraPath ?? [] };
    for (const path of slotOptions.extraPaths ?? []) parseFieldPath(path, '--extra-path');

    const sources = krm
      ? [readResourceList((await readAll(io.stdin)).toString('utf8'))]
      : await readManifests(flags.filename ?? [], io);
    const findings = lintSlots(
      sources.flatMap((source) => findImageSlots(source, slotOptions)),
      policy,
    );
    const deny = policy.config.enforcement === 'deny';
    if (krm) {
      const severity = deny ? 'error' : 'warning';
      const results = findings.map((f) =>
        slotResult(f.slot, `${f.slot.image}: ${f.rule}: ${f.message}`, severity, f.rule),
      );
      io.stdout.write(withResults(sources[0]?.text ?? '', results));
    } else {
      await printFindings(io, findings, format);
    }
    return deny && findings.length > 0 ? 1 : 0;
  } catch (err) {
    return failWith(io, err);
  }
}
