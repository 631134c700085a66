//! Compose's variable interpolation (`$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//! `${VAR:+alt}`, `${VAR+alt}`, `${VAR:?err}`, `${VAR?err}`, `$$`) and `.env` files, so data
//! paths are the host paths compose would mount. A variable that is not set and has no
//! default is reported, never guessed; so is one that `:?`/`?` requires (compose would stop
//! there; a draft says what to set instead).
use std::collections::BTreeMap;

/// Variables in force for one project, in compose's order of precedence (later files win).
pub type Vars = BTreeMap<String, String>;

/// The result of interpolating one string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interpolated {
    pub value: String,
    /// Variables that were not set and had no default (compose would use "").
    pub unresolved: Vec<String>,
}

/// Why a string cannot be interpolated at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    #[error("unterminated `${{` in {0:?}")]
    Unterminated(String),
    #[error("invalid variable reference in {0:?}")]
    Invalid(String),
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}
fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Interpolates `s` with `vars`.
pub fn interpolate(s: &str, vars: &Vars) -> Result<Interpolated, InterpolateError> {
    let chars: Vec<char> = s.chars().collect();
    let mut unresolved = Vec::new();
    let value = expand(&chars, vars, &mut unresolved, s)?;
    Ok(Interpolated { value, unresolved })
}

fn expand(
    chars: &[char],
    vars: &Vars,
    unresolved: &mut Vec<String>,
    whole: &str,
) -> Result<String, InterpolateError> {
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                // Find the matching brace (defaults may hold nested `${...}`).
                let mut depth = 1;
                let mut j = i + 2;
                while j < chars.len() && depth > 0 {
                    match chars[j] {
                        '{' if chars[j - 1] == '$' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    j += 1;
                }
                if depth != 0 {
                    return Err(InterpolateError::Unterminated(whole.to_string()));
                }
                let inner = &chars[i + 2..j - 1];
                out.push_str(&braced(inner, vars, unresolved, whole)?);
                i = j;
            }
            Some(&n) if is_name_start(n) => {
                let mut j = i + 1;
                while j < chars.len() && is_name(chars[j]) {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                match vars.get(&name) {
                    Some(v) => out.push_str(v),
                    None => unresolved.push(name),
                }
                i = j;
            }
            // A lone `$` stays as it is, as compose does.
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    Ok(out)
}

fn braced(
    inner: &[char],
    vars: &Vars,
    unresolved: &mut Vec<String>,
    whole: &str,
) -> Result<String, InterpolateError> {
    let name_end = inner
        .iter()
        .position(|c| !is_name(*c))
        .unwrap_or(inner.len());
    let name: String = inner[..name_end].iter().collect();
    if name.is_empty() || !is_name_start(inner[0]) {
        return Err(InterpolateError::Invalid(whole.to_string()));
    }
    let rest = &inner[name_end..];
    let value = vars.get(&name);
    let set_nonempty = value.is_some_and(|v| !v.is_empty());
    if rest.is_empty() {
        return Ok(match value {
            Some(v) => v.clone(),
            None => {
                unresolved.push(name);
                String::new()
            }
        });
    }
    let (colon, op, arg) = match rest {
        [':', op, arg @ ..] => (true, *op, arg),
        [op, arg @ ..] => (false, *op, arg),
        [] => unreachable!("checked above"),
    };
    // With `:` an empty value counts as unset.
    let present = if colon { set_nonempty } else { value.is_some() };
    match op {
        '-' => {
            if present {
                Ok(value.cloned().unwrap_or_default())
            } else {
                expand(arg, vars, unresolved, whole)
            }
        }
        '+' => {
            if present {
                expand(arg, vars, unresolved, whole)
            } else {
                Ok(String::new())
            }
        }
        '?' => {
            if present {
                Ok(value.cloned().unwrap_or_default())
            } else {
                unresolved.push(name);
                Ok(String::new())
            }
        }
        _ => Err(InterpolateError::Invalid(whole.to_string())),
    }
}

/// Parses a `.env` file as compose does: `KEY=VALUE` lines, optional `export `, `#`
/// comments, single quotes literal, double quotes with `\n` escapes; unquoted and
/// double-quoted values are interpolated with what is set so far (`vars`, then earlier lines).
pub fn parse_env_file(text: &str, vars: &mut Vars) -> Result<(), String> {
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {}: expected KEY=VALUE, found {raw:?}", n + 1));
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(is_name) {
            return Err(format!("line {}: {key:?} is not a variable name", n + 1));
        }
        let value = value.trim();
        let parsed = if let Some(v) = value.strip_prefix('\'') {
            match v.find('\'') {
                Some(end) => v[..end].to_string(),
                None => return Err(format!("line {}: unterminated single quote", n + 1)),
            }
        } else if let Some(v) = value.strip_prefix('"') {
            let mut s = String::new();
            let mut it = v.chars();
            let mut closed = false;
            while let Some(c) = it.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match it.next() {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some(o) => s.push(o),
                        None => s.push('\\'),
                    },
                    o => s.push(o),
                }
            }
            if !closed {
                return Err(format!("line {}: unterminated double quote", n + 1));
            }
            interpolate(&s, vars)
                .map_err(|e| format!("line {}: {e}", n + 1))?
                .value
        } else {
            // An unquoted value ends at ` #` (an inline comment).
            let v = match value.find(" #") {
                Some(i) => value[..i].trim_end(),
                None => value,
            };
            interpolate(v, vars)
                .map_err(|e| format!("line {}: {e}", n + 1))?
                .value
        };
        vars.insert(key.to_string(), parsed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn i(s: &str, v: &Vars) -> (String, Vec<String>) {
        let r = interpolate(s, v).unwrap();
        (r.value, r.unresolved)
    }

    #[test]
    fn compose_forms_expand_like_compose() {
        let v = vars(&[("DATA_ROOT", "/srv/data"), ("EMPTY", "")]);
        assert_eq!(i("${DATA_ROOT}/immich", &v).0, "/srv/data/immich");
        assert_eq!(i("$DATA_ROOT/x", &v).0, "/srv/data/x");
        assert_eq!(i("${MEDIA_ROOT:-/mnt/data}/tv", &v).0, "/mnt/data/tv");
        assert_eq!(i("${MEDIA_ROOT-/mnt/data}/tv", &v).0, "/mnt/data/tv");
        // `:-` treats empty as unset, `-` does not.
        assert_eq!(i("${EMPTY:-/d}", &v).0, "/d");
        assert_eq!(i("${EMPTY-/d}", &v).0, "");
        assert_eq!(i("${DATA_ROOT:+set}", &v).0, "set");
        assert_eq!(i("${NOPE+set}", &v).0, "");
        assert_eq!(i("${NOPE:-${DATA_ROOT}/n}", &v).0, "/srv/data/n");
        assert_eq!(i("$$HOME and $ alone", &v).0, "$HOME and $ alone");
        assert_eq!(
            i("${NOPE}/x/$ALSO", &v),
            (
                "/x/".to_string(),
                vec!["NOPE".to_string(), "ALSO".to_string()]
            )
        );
        assert_eq!(
            i("${NOPE:?set NOPE}/x", &v),
            ("/x".to_string(), vec!["NOPE".to_string()])
        );
        assert_eq!(i("${DATA_ROOT?set it}", &v).0, "/srv/data");
        assert!(matches!(
            interpolate("${BROKEN", &v),
            Err(InterpolateError::Unterminated(_))
        ));
        assert!(matches!(
            interpolate("${1x}", &v),
            Err(InterpolateError::Invalid(_))
        ));
    }

    #[test]
    fn env_files_parse_like_compose() {
        let mut v = vars(&[("BASE", "/srv")]);
        parse_env_file(
            "# comment\n\nexport A=1\nB = two words # note\nC='${BASE} literal'\nD=\"${BASE}/d\\n\"\nE=${A}x\n",
            &mut v,
        )
        .unwrap();
        assert_eq!(v["A"], "1");
        assert_eq!(v["B"], "two words");
        assert_eq!(v["C"], "${BASE} literal");
        assert_eq!(v["D"], "/srv/d\n");
        assert_eq!(v["E"], "1x");
        assert_eq!(
            parse_env_file("novalue\n", &mut v),
            Err("line 1: expected KEY=VALUE, found \"novalue\"".to_string())
        );
    }
}
