/** `cairn completion bash|zsh|fish`: a completion script generated from the tables of spec.ts. */
import { UsageError } from './context.js';
import { COMMAND_SPECS, optionsOf } from './spec.js';

const names = COMMAND_SPECS.map((spec) => spec.name);

function flags(name: string): string[] {
  const spec = COMMAND_SPECS.find((candidate) => candidate.name === name)!;
  return optionsOf(spec).flatMap((option) => [`--${option.name}`, ...(option.short ? [`-${option.short}`] : [])]);
}

function bash(): string {
  const cases = names.map((name) => `    ${name}) opts=${JSON.stringify(flags(name).join(' '))} ;;`).join('\n');
  return `# cairn completion for bash: add \`source <(cairn completion bash)\` to ~/.bashrc
_cairn() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" opts
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${names.join(' ')} --help --version" -- "$cur"))
    return
  fi
  case "\${COMP_WORDS[1]}" in
${cases}
    *) opts="" ;;
  esac
  if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur")); else COMPREPLY=($(compgen -f -- "$cur")); fi
}
complete -o filenames -F _cairn cairn
`;
}

function zsh(): string {
  const cases = names.map((name) => `    ${name}) compadd -- ${flags(name).join(' ')} ;;`).join('\n');
  return `#compdef cairn
# cairn completion for zsh: add \`source <(cairn completion zsh)\` to ~/.zshrc (after compinit)
_cairn() {
  if (( CURRENT == 2 )); then
    compadd -- ${names.join(' ')} --help --version
    return
  fi
  if [[ "$PREFIX" == -* ]]; then
    case "$words[2]" in
${cases}
    esac
  else
    _files
  fi
}
compdef _cairn cairn
`;
}

function fish(): string {
  const lines = [`# cairn completion for fish: cairn completion fish > ~/.config/fish/completions/cairn.fish`, 'complete -c cairn -f'];
  for (const spec of COMMAND_SPECS) {
    lines.push(`complete -c cairn -n __fish_use_subcommand -a ${spec.name} -d ${JSON.stringify(spec.summary.replace(/`/g, ''))}`);
    for (const option of optionsOf(spec)) {
      const short = option.short ? ` -s ${option.short}` : '';
      const arg = option.arg ? ' -r -F' : '';
      lines.push(`complete -c cairn -n "__fish_seen_subcommand_from ${spec.name}" -l ${option.name}${short}${arg} -d ${JSON.stringify(option.description.replace(/`/g, ''))}`);
    }
  }
  return lines.join('\n') + '\n';
}

const SHELLS: Record<string, () => string> = { bash, zsh, fish };

export function completionScript(shell: string | undefined): string {
  const make = shell === undefined ? undefined : SHELLS[shell];
  if (!make) throw new UsageError(`usage: cairn completion <${Object.keys(SHELLS).join('|')}>${shell ? ` (not "${shell}")` : ''}`);
  return make();
}
