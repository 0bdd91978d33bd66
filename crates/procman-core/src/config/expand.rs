//! `${VAR}` expansion in string values.
//!
//! - `${NAME}` is the variable's value; unset is an error (a config that
//!   silently runs with an empty value is worse than one that does not load).
//! - `${NAME:-default}` is the default when `NAME` is unset or empty, as in
//!   the shell; the default may itself contain `${...}`.
//! - `$$` is a literal `$`; any other `$` is kept as written.
//! - Defaults nest at most [`MAX_NESTING`] deep: expansion recurses into
//!   each default, and a hostile value must not exhaust the stack.
//!
//! Expansion runs on the scalar text before it is parsed as a number,
//! duration or bool, so `max_attempts: ${N:-3}` works.

use super::error::cut;

/// How deep `${A:-${B:-...}}` may nest: far more than any real default
/// needs, and a bound on the recursion.
pub(super) const MAX_NESTING: usize = 16;

/// Why a value could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum ExpandError {
    #[error("environment variable {} is not set and has no default (`${{NAME:-default}}`)", cut(.0))]
    Unset(String),
    #[error("unterminated `${{` (a `}}` is missing)")]
    Unterminated,
    #[error("invalid variable name `{}`; write ${{NAME}} or ${{NAME:-default}}", cut(.0))]
    BadName(String),
    #[error("`${{...}}` defaults nested more than {MAX_NESTING} levels deep")]
    TooDeep,
}

/// Expands `text` with variables from `env`.
pub(super) fn expand(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    expand_nested(text, env, 0)
}

/// [`expand`] inside `depth` defaults.
fn expand_nested(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<String, ExpandError> {
    if depth > MAX_NESTING {
        return Err(ExpandError::TooDeep);
    }
    // The common case, a value with no `$`, costs one scan and one copy.
    if !text.contains('$') {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = closing_brace(body).ok_or(ExpandError::Unterminated)?;
            out.push_str(&substitute(&body[..end], env, depth)?);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The value of one `${...}` body (the text between the braces).
fn substitute(
    body: &str,
    env: &dyn Fn(&str) -> Option<String>,
    depth: usize,
) -> Result<String, ExpandError> {
    let (name, default) = match body.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (body, None),
    };
    if !is_var_name(name) {
        return Err(ExpandError::BadName(name.to_string()));
    }
    match (env(name), default) {
        (Some(value), None) => Ok(value),
        (Some(value), Some(_)) if !value.is_empty() => Ok(value),
        (_, Some(default)) => expand_nested(default, env, depth + 1),
        (None, None) => Err(ExpandError::Unset(name.to_string())),
    }
}

/// Index in `body` of the `}` that closes the `${` just before it,
/// counting nested `{ }` pairs (a default may hold `${OTHER}`).
fn closing_brace(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}
