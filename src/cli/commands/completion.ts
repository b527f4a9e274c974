/**
 * `kimg completion bash|zsh|fish`: shell completion scripts made from the command tree itself,
 * so that every command and flag any part of kimg registers completes without a list to keep.
 */
import type { Command, Option } from 'commander';
import { choiceFlag, writeRaw, type Io } from '../io.ts';

const SHELLS = ['bash', 'zsh', 'fish'] as const;
type Shell = (typeof SHELLS)[number];

/** Values worth offering for flags whose values are a closed set. */
const FLAG_VALUES: Readonly<Record<string, readonly string[]>> = {
  '--output': ['text', 'json', 'yaml'],
  '--progress': ['auto', 'tty', 'plain', 'json', 'quiet'],
  '--failure-policy': ['Fail', 'Ignore'],
  '--existing-digest': ['keep', 'verify-warn', 'verify-deny'],
  '--output-format': ['preserve', 'canonical', 'digest-only'],
};

interface Node {
  /** `pull`, `webhook serve`; empty for kimg itself. */
  readonly path: string;
  readonly command: Command;
}

function visibleCommands(command: Command): Command[] {
  return command.commands.filter((c) => c.name() !== 'help');
}

function walk(command: Command, path = ''): Node[] {
  return [
    { path, command },
    ...visibleCommands(command).flatMap((c) => walk(c, path === '' ? c.name() : `${path} ${c.name()}`)),
  ];
}

function flagWords(option: Option): string[] {
  return [option.short, option.long].filter((f): f is string => f !== undefined);
}

/** Single-quoted for a shell; descriptions are one line. */
function quote(text: string): string {
  return `'${text.replace(/\n/g, ' ').replace(/'/g, `'\\''`)}'`;
}

function bash(root: Command): string {
  const nodes = walk(root);
  const globals = root.options.flatMap(flagWords);
  const valued = [
    ...new Set(nodes.flatMap((n) => n.command.options.filter((o) => o.required || o.optional).flatMap(flagWords))),
  ];
  const cases = nodes
    .map((n) => {
      const words = [
        ...visibleCommands(n.command).map((c) => c.name()),
        ...n.command.options.flatMap(flagWords),
        ...(n.path === '' ? [] : globals),
        '--help',
      ];
      return `    ${quote(n.path)}) words=${quote(words.join(' '))} ;;`;
    })
    .join('\n');
  const values = Object.entries(FLAG_VALUES)
    .map(
      ([flag, list]) =>
        `    ${flag}${flag === '--output' ? '|-o' : ''}) COMPREPLY=($(compgen -W ${quote(list.join(' '))} -- "$cur")); return ;;`,
    )
    .join('\n');
  const children = nodes
    .filter((n) => visibleCommands(n.command).length > 0)
    .map(
      (n) =>
        `    ${quote(n.path)}) subs=${quote(
          visibleCommands(n.command)
            .map((c) => c.name())
            .join(' '),
        )} ;;`,
    )
    .join('\n');
  return `# kimg completion for bash: source <(kimg completion bash)
_kimg() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  case "$prev" in
${values}
  esac
  case " ${valued.join(' ')} " in
    *" $prev "*) return ;;
  esac
  local path="" i w subs skip=0
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    if ((skip)); then skip=0; continue; fi
    case " ${valued.join(' ')} " in *" $w "*) skip=1; continue ;; esac
    subs=""
    case "$path" in
${children}
    esac
    case " $subs " in *" $w "*) path="\${path:+$path }$w" ;; esac
  done
  local words=""
  case "$path" in
${cases}
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _kimg kimg
`;
}

function zsh(root: Command): string {
  // zsh runs the bash function through bashcompinit: one description of the tree, two shells.
  return `#compdef kimg
# kimg completion for zsh: source <(kimg completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bash(root).replace(/^# kimg completion for bash.*\n/, '')}`;
}

function fish(root: Command): string {
  const lines = ['# kimg completion for fish: kimg completion fish | source', 'complete -c kimg -f'];
  const topNames = visibleCommands(root).map((c) => c.name());
  for (const n of walk(root)) {
    const children = visibleCommands(n.command);
    const parts = n.path === '' ? [] : n.path.split(' ');
    const condition =
      parts.length === 0
        ? `not __fish_seen_subcommand_from ${topNames.join(' ')}`
        : [
            ...parts.map((p) => `__fish_seen_subcommand_from ${p}`),
            ...(children.length > 0
              ? [`not __fish_seen_subcommand_from ${children.map((c) => c.name()).join(' ')}`]
              : []),
          ].join('; and ');
    for (const child of children)
      lines.push(`complete -c kimg -n ${quote(condition)} -a ${child.name()} -d ${quote(child.description())}`);
    const options = n.path === '' ? n.command.options : n.command.options;
    for (const option of options) {
      const flags = [
        option.short === undefined ? '' : ` -s ${option.short.slice(1)}`,
        option.long === undefined ? '' : ` -l ${option.long.slice(2)}`,
      ].join('');
      const takes = option.required || option.optional;
      const values = option.long === undefined ? undefined : FLAG_VALUES[option.long];
      const arg = values !== undefined ? ` -x -a ${quote(values.join(' '))}` : takes ? ' -r -F' : '';
      lines.push(
        `complete -c kimg${parts.length === 0 ? '' : ` -n ${quote(condition)}`}${flags}${arg} -d ${quote(option.description)}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

export function registerCompletion(program: Command, io: Io): void {
  program
    .command('completion')
    .description('print a shell completion script: bash, zsh or fish (e.g. source <(kimg completion bash))')
    .argument('<shell>', 'bash, zsh or fish')
    .action((shell: string) => {
      const chosen: Shell = choiceFlag('shell', shell, SHELLS);
      writeRaw(io.stdout, chosen === 'bash' ? bash(program) : chosen === 'zsh' ? zsh(program) : fish(program));
    });
}
