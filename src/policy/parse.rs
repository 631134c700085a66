//! Reading policy.toml into a `Policy`: every key checked against the keys its table accepts,
//! every value with its place in the file, all problems collected before any is reported.
use super::*;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// The keys each table accepts; anything else is a problem.
pub const TOP_KEYS: &[&str] = &[
    "user_prefix",
    "shared_group",
    "legacy_owner",
    "adopt",
    "pools",
    "stacks",
    "shares",
];
pub const POOL_KEYS: &[&str] = &[
    "uid_first",
    "uid_last",
    "subid_first",
    "subid_last",
    "subid_size",
];
/// The keys of `[stacks.NAME]` read here; `STACK_KEYS` adds each of `STACK_TABLES`.
const CORE_STACK_KEYS: &[&str] = &[
    "data",
    "migrate",
    "uid",
    "subid_start",
    "outside_hardlinks",
    "closed",
    "compose",
    "project",
    "env_files",
    "images",
    "service",
    "compose_command",
    "reaches",
    "quadlets",
];
pub const STACK_KEYS: &[&str] = &tables::with_table_keys::<
    { tables::count_keys(CORE_STACK_KEYS, STACK_TABLES) },
>(CORE_STACK_KEYS, STACK_TABLES);
pub const SHARE_KEYS: &[&str] = &["path", "read", "write", "mode"];

struct Reader<'a> {
    problems: Vec<Problem>,
    _text: &'a str,
}

type Entry<'i> = (
    &'i Spanned<std::borrow::Cow<'i, str>>,
    &'i Spanned<DeValue<'i>>,
);

impl<'a> Reader<'a> {
    fn problem(&mut self, span: Range<usize>, msg: impl Into<String>) {
        self.problems.push(Problem::new(span, msg));
    }

    fn unknown_keys(&mut self, table: &DeTable<'_>, allowed: &[&str], what: &str) {
        for (k, _) in table.iter() {
            if !allowed.contains(&k.get_ref().as_ref()) {
                self.problem(
                    k.span(),
                    format!(
                        "unknown key `{}` in {}; expected one of: {}",
                        k.get_ref(),
                        what,
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    fn string(&mut self, (k, v): Entry<'_>) -> Option<Located<String>> {
        match v.get_ref() {
            DeValue::String(s) => Some(Located {
                value: s.to_string(),
                span: v.span(),
            }),
            other => {
                self.problem(
                    v.span(),
                    format!("`{}` must be a string, found {}", k.get_ref(), kind(other)),
                );
                None
            }
        }
    }

    fn id(&mut self, (k, v): Entry<'_>) -> Option<Located<u32>> {
        match v.get_ref() {
            DeValue::Integer(i) => match u32::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => Some(Located {
                    value: n,
                    span: v.span(),
                }),
                Err(_) => {
                    self.problem(
                        v.span(),
                        format!(
                            "`{}` must be a whole number from 0 to 4294967295",
                            k.get_ref()
                        ),
                    );
                    None
                }
            },
            other => {
                self.problem(
                    v.span(),
                    format!(
                        "`{}` must be a whole number, found {}",
                        k.get_ref(),
                        kind(other)
                    ),
                );
                None
            }
        }
    }

    fn strings(&mut self, (k, v): Entry<'_>) -> Vec<Located<String>> {
        match v.get_ref() {
            DeValue::Array(items) => items
                .iter()
                .filter_map(|item| match item.get_ref() {
                    DeValue::String(s) => Some(Located {
                        value: s.to_string(),
                        span: item.span(),
                    }),
                    other => {
                        self.problem(
                            item.span(),
                            format!(
                                "`{}` entries must be strings, found {}",
                                k.get_ref(),
                                kind(other)
                            ),
                        );
                        None
                    }
                })
                .collect(),
            other => {
                self.problem(
                    v.span(),
                    format!(
                        "`{}` must be a list of strings, found {}",
                        k.get_ref(),
                        kind(other)
                    ),
                );
                Vec::new()
            }
        }
    }

    fn boolean(&mut self, (k, v): Entry<'_>) -> Option<bool> {
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.problem(
                    v.span(),
                    format!(
                        "`{}` must be true or false, found {}",
                        k.get_ref(),
                        kind(other)
                    ),
                );
                None
            }
        }
    }

    fn table<'t>(&mut self, (k, v): Entry<'t>) -> Option<&'t DeTable<'t>> {
        match v.get_ref() {
            DeValue::Table(t) => Some(t),
            other => {
                self.problem(
                    v.span(),
                    format!("`{}` must be a table, found {}", k.get_ref(), kind(other)),
                );
                None
            }
        }
    }
}

fn paths(strings: Vec<Located<String>>) -> Vec<Located<PathBuf>> {
    strings
        .into_iter()
        .map(|s| Located {
            value: PathBuf::from(s.value),
            span: s.span,
        })
        .collect()
}

fn kind(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

pub(super) fn parse_tree(file: &Path, text: &str) -> (Option<Policy>, Vec<Problem>) {
    let (doc, syntax) = DeTable::parse_recoverable(text);
    let mut r = Reader {
        problems: Vec::new(),
        _text: text,
    };
    for e in &syntax {
        let span = e.span().unwrap_or(0..0);
        r.problem(span, format!("TOML syntax: {}", e.message().trim_end()));
    }
    if !syntax.is_empty() {
        return (None, r.problems);
    }
    let top = doc.get_ref();
    r.unknown_keys(top, TOP_KEYS, "the policy's top level");

    let whole = 0..0;
    let mut policy = Policy {
        file: file.to_path_buf(),
        text: text.to_string(),
        user_prefix: Located {
            value: "stk-".into(),
            span: whole.clone(),
        },
        shared_group: Located {
            value: "stk-shared".into(),
            span: whole.clone(),
        },
        legacy_owner: None,
        adopt: Vec::new(),
        pools: Pools::default(),
        pools_span: whole.clone(),
        stacks: BTreeMap::new(),
        shares: BTreeMap::new(),
    };

    for entry @ (k, _) in top.iter() {
        match k.get_ref().as_ref() {
            "user_prefix" => {
                if let Some(s) = r.string(entry) {
                    policy.user_prefix = s;
                }
            }
            "shared_group" => {
                if let Some(s) = r.string(entry) {
                    policy.shared_group = s;
                }
            }
            "legacy_owner" => policy.legacy_owner = r.string(entry),
            "adopt" => policy.adopt = r.strings(entry),
            "pools" => {
                if let Some(t) = r.table(entry) {
                    policy.pools_span = k.span();
                    r.unknown_keys(t, POOL_KEYS, "[pools]");
                    for pe @ (pk, _) in t.iter() {
                        let Some(n) = r.id(pe) else { continue };
                        let slot = match pk.get_ref().as_ref() {
                            "uid_first" => &mut policy.pools.uid_first,
                            "uid_last" => &mut policy.pools.uid_last,
                            "subid_first" => &mut policy.pools.subid_first,
                            "subid_last" => &mut policy.pools.subid_last,
                            "subid_size" => &mut policy.pools.subid_size,
                            _ => continue,
                        };
                        *slot = n.value;
                    }
                }
            }
            "stacks" => {
                if let Some(t) = r.table(entry) {
                    for se @ (sk, _) in t.iter() {
                        if let Some(st) = r.table(se) {
                            policy
                                .stacks
                                .insert(sk.get_ref().to_string(), read_stack(&mut r, sk, st));
                        }
                    }
                }
            }
            "shares" => {
                if let Some(t) = r.table(entry) {
                    for se @ (sk, _) in t.iter() {
                        if let Some(st) = r.table(se) {
                            if let Some(share) = read_share(&mut r, sk, st) {
                                policy.shares.insert(sk.get_ref().to_string(), share);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let taking_part: Vec<String> = policy
        .stacks
        .keys()
        .filter(|n| reach::takes_part(&policy, n))
        .cloned()
        .collect();
    for n in taking_part {
        if let Some(s) = policy.stacks.get_mut(&n) {
            s.reach_override = true;
        }
    }
    (Some(policy), r.problems)
}

fn read_stack(
    r: &mut Reader<'_>,
    key: &Spanned<std::borrow::Cow<'_, str>>,
    t: &DeTable<'_>,
) -> StackPolicy {
    let name = key.get_ref().to_string();
    r.unknown_keys(t, STACK_KEYS, &format!("[stacks.{name}]"));
    let mut stack = StackPolicy::new(name.clone(), key.span());
    let mut has_data = false;
    for e @ (k, _) in t.iter() {
        match k.get_ref().as_ref() {
            "data" => {
                has_data = true;
                stack.data = r
                    .strings(e)
                    .into_iter()
                    .map(|s| Located {
                        value: PathBuf::from(s.value),
                        span: s.span,
                    })
                    .collect();
            }
            "migrate" => {
                if let Some(s) = r.string(e) {
                    match s.value.as_str() {
                        "shift" => {
                            stack.migrate = Located {
                                value: MigrateMode::Shift,
                                span: s.span,
                            }
                        }
                        "reown" => {
                            stack.migrate = Located {
                                value: MigrateMode::Reown,
                                span: s.span,
                            }
                        }
                        "auto" => {
                            stack.migrate = Located {
                                value: MigrateMode::Auto,
                                span: s.span,
                            }
                        }
                        other => r.problem(
                            s.span,
                            format!(
                                "`migrate` must be \"shift\", \"reown\" or \"auto\", not {other:?}"
                            ),
                        ),
                    }
                }
            }
            "uid" => stack.uid = r.id(e),
            "subid_start" => stack.subid_start = r.id(e),
            "compose" => stack.handoff.compose = paths(r.strings(e)),
            "env_files" => stack.handoff.env_files = paths(r.strings(e)),
            "images" => stack.handoff.images = r.strings(e),
            "project" => stack.handoff.project = r.string(e),
            "compose_command" => stack.handoff.compose_command = r.strings(e),
            "quadlets" => stack.handoff.quadlets = paths(r.strings(e)),
            "reaches" => {
                for s in r.strings(e) {
                    match reach::Reach::parse(&s.value) {
                        Ok(value) => stack.reaches.push(Located {
                            value,
                            span: s.span,
                        }),
                        Err(why) => r.problem(s.span, format!("`reaches` entry {why}")),
                    }
                }
            }
            "service" => {
                stack.handoff.service = r.boolean(e).map(|value| Located {
                    value,
                    span: e.1.span(),
                })
            }
            "outside_hardlinks" => {
                if let Some(s) = r.string(e) {
                    match s.value.as_str() {
                        "refuse" => stack.outside_hardlinks = OutsideLinks::Refuse,
                        "skip" => stack.outside_hardlinks = OutsideLinks::Skip,
                        other => r.problem(
                            s.span,
                            format!(
                                "`outside_hardlinks` must be \"refuse\" or \"skip\", not {other:?}"
                            ),
                        ),
                    }
                }
            }
            "closed" => {
                if let Some(b) = r.boolean(e) {
                    stack.closed = b;
                }
            }
            other => {
                if let Some(table) = STACK_TABLES.iter().find(|t| t.key == other) {
                    (table.read)(&mut stack, e.0, e.1, &mut r.problems);
                }
            }
        }
    }
    if !has_data {
        r.problem(
            key.span(),
            format!("stack `{name}` has no `data` list: name the directories its containers mount"),
        );
    }
    stack
}

fn read_share(
    r: &mut Reader<'_>,
    key: &Spanned<std::borrow::Cow<'_, str>>,
    t: &DeTable<'_>,
) -> Option<SharePolicy> {
    let name = key.get_ref().to_string();
    r.unknown_keys(t, SHARE_KEYS, &format!("[shares.{name}]"));
    let mut path = None;
    let mut read = Vec::new();
    let mut write = Vec::new();
    let mut mode = ShareMode::Acl;
    for e @ (k, _) in t.iter() {
        match k.get_ref().as_ref() {
            "mode" => {
                if let Some(s) = r.string(e) {
                    match s.value.as_str() {
                        "acl" => mode = ShareMode::Acl,
                        "group" => mode = ShareMode::Group,
                        other => r.problem(
                            s.span,
                            format!("`mode` must be \"acl\" or \"group\", not {other:?}"),
                        ),
                    }
                }
            }
            "path" => {
                path = r.string(e).map(|s| Located {
                    value: PathBuf::from(s.value),
                    span: s.span,
                })
            }
            "read" | "write" => {
                let mut grants = Vec::new();
                for s in r.strings(e) {
                    match parse_grant(&s.value) {
                        Ok(g) => grants.push(Located {
                            value: g,
                            span: s.span,
                        }),
                        Err(why) => r.problem(s.span, why),
                    }
                }
                if k.get_ref() == "read" {
                    read = grants;
                } else {
                    write = grants;
                }
            }
            _ => {}
        }
    }
    let Some(path) = path else {
        r.problem(key.span(), format!("share `{name}` has no `path`"));
        return None;
    };
    Some(SharePolicy {
        name,
        span: key.span(),
        path,
        read,
        write,
        mode,
    })
}

/// `stack` or `stack:container_uid`.
fn parse_grant(s: &str) -> std::result::Result<Grant, String> {
    match s.split_once(':') {
        None => Ok(Grant {
            stack: s.to_string(),
            container_uid: None,
        }),
        Some((stack, uid)) => match uid.parse::<u32>() {
            Ok(n) => Ok(Grant {
                stack: stack.to_string(),
                container_uid: Some(n),
            }),
            Err(_) => Err(format!(
                "{s:?}: expected `stack` or `stack:container_uid` with a numeric uid"
            )),
        },
    }
}
