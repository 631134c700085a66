//! Shell completions (bash, zsh, fish) from the clap definition, plus the code that completes
//! stack names from the policy through `isolate __complete-stacks`.
use clap::Command;
use clap_complete::Shell;

/// Shell code that completes stack names from the policy (`isolate __complete-stacks`).
const BASH_STACKS: &str = r#"
# Stack names for `--stack NAME` and the STACK of map, logs and exec, read from the policy by
# the binary itself.
_isolate_stacks() {
    local i policy=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --policy) policy=(--policy "${COMP_WORDS[i + 1]}") ;;
            --policy=*) policy=(--policy "${COMP_WORDS[i]#--policy=}") ;;
        esac
    done
    "${COMP_WORDS[0]}" "${policy[@]}" __complete-stacks 2>/dev/null
}

_isolate_with_stacks() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local i sub="" positional=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --root | --policy | --stack | --host) ((i++)) ;;
            -*) ;;
            *) if [[ -z $sub ]]; then sub=${COMP_WORDS[i]}; else ((positional++)); fi ;;
        esac
    done
    if [[ $prev == --stack ]] || [[ $sub =~ ^(map|logs|exec)$ && $positional == 0 && $cur != -* ]]; then
        COMPREPLY=($(compgen -W "$(_isolate_stacks)" -- "$cur"))
        return 0
    fi
    _isolate "$@"
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _isolate_with_stacks -o nosort -o bashdefault -o default isolate
else
    complete -F _isolate_with_stacks -o bashdefault -o default isolate
fi
"#;

const ZSH_STACKS: &str = r#"
# Stack names for `--stack NAME` and `map STACK`, read from the policy (the command line's
# --policy, if given) by the binary itself.
(( $+functions[_isolate_stacks] )) ||
_isolate_stacks() {
    local -a stacks policy
    local i=${words[(i)--policy]}
    (( i < CURRENT - 1 )) && policy=(--policy "${words[i+1]}")
    stacks=(${(f)"$(${words[1]} $policy __complete-stacks 2>/dev/null)"})
    _describe -t stacks 'stack' stacks
}
"#;

const FISH_MAP_STACK: &str = r#"
# Stack names, read from the policy (the command line's --policy, if given) by the binary itself.
function __fish_isolate_stacks
    set -l tokens (commandline -opc)
    set -l policy
    if set -l i (contains -i -- --policy $tokens)
        set policy --policy $tokens[(math $i + 1)]
    end
    $tokens[1] $policy __complete-stacks 2>/dev/null
end

# `map STACK ID`, `logs STACK`, `exec STACK`: the first word after the command is a stack name.
function __fish_isolate_map_wants_stack
    set -l tokens (commandline -opc)
    for sub in map logs exec
        if set -l at (contains -i -- $sub $tokens)
            test (count $tokens) -eq $at
            return
        end
    end
    return 1
end
complete -c isolate -n "__fish_isolate_map_wants_stack" "#;

pub(super) const FISH_STACKS: &str = r#"-f -a "(__fish_isolate_stacks)""#;

/// A shell's completion script: clap_complete's, with stack names completed from the policy.
pub fn completion(shell: Shell, cmd: Command) -> String {
    // clap_complete offers hidden subcommands too: complete a copy without them.
    let mut cmd = Command::new("isolate")
        .version(env!("CARGO_PKG_VERSION"))
        .args(cmd.get_arguments().cloned())
        .subcommands(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "isolate", &mut buf);
    let script = String::from_utf8_lossy(&buf).into_owned();
    match shell {
        Shell::Bash => format!("{script}{BASH_STACKS}"),
        Shell::Zsh => {
            // clap_complete leaves the values of --stack and map's STACK to _default.
            let script: String = script
                .lines()
                .map(|l| {
                    if l.contains("--stack=[")
                        || l.starts_with("'::stack -- ")
                        || l.starts_with("':stack -- ")
                    {
                        format!("{}\n", l.replace(":_default'", ":_isolate_stacks'"))
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect();
            match script.rfind("if [ \"$funcstack[1]\" = \"_isolate\" ]") {
                Some(at) => format!("{}{ZSH_STACKS}\n{}", &script[..at], &script[at..]),
                None => format!("{script}{ZSH_STACKS}"),
            }
        }
        Shell::Fish => {
            let script: String = script
                .lines()
                .map(|l| {
                    if l.contains(" -l stack ") {
                        format!("{l} {FISH_STACKS}\n")
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect();
            format!("{script}{FISH_MAP_STACK}{FISH_STACKS}\n")
        }
        _ => script,
    }
}
