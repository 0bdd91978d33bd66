//! Writing values the way systemd reads them back (`systemd.syntax(7)`,
//! "COMMAND LINES" in `systemd.service(5)`, `Environment=` in
//! `systemd.exec(5)`).
//!
//! - Every setting expands `%` specifiers, so a literal `%` is `%%`.
//! - `ExecStart=` is split into words: a word with a space, a quote, a
//!   backslash, a `;` or a control character is written in double quotes
//!   with C escapes (`\"`, `\\`, `\n`, `\xNN`); UTF-8 passes as it is.
//!   In the arguments `$` expands variables, so a literal `$` is `$$`.
//!   The executable is not expanded (`$$` would stay `$$`), and systemd
//!   refuses one holding a quote, a backslash or a control character.
//!   One starting with a prefix character (`-`, `@`, ...) cannot be
//!   written: systemd reads the prefix after unquoting.
//! - `Environment=` takes each `"NAME=value"` as a whole quoted word with
//!   the same escapes; `$` has no meaning there and stays `$`.
//! - Paths (`WorkingDirectory=`, `EnvironmentFile=`) and names are read
//!   as they are, up to the end of the line, without quotes or escapes:
//!   such a value cannot hold a control character, and cannot begin or
//!   end with white space (systemd strips it).
//! - Comments are whole lines: text from the config that goes into one
//!   is shown with Rust's escapes, so that no line break can end it.

use std::fmt::Write as _;

/// The characters systemd reads as prefixes at the start of an
/// `ExecStart=` command: `@`, `-`, `:`, `+`, `!` (`systemd.service(5)`),
/// and `|` (systemd 258).
const EXEC_PREFIXES: &str = "@-:+!|";

/// One argument of `ExecStart=` (after the executable).
pub fn exec_argument(word: &str) -> String {
    word_text(word, true)
}

/// The executable, the first word of `ExecStart=`; `Err` says why systemd
/// cannot run it.
pub fn exec_path(path: &str) -> Result<String, String> {
    if let Some(c) = path
        .chars()
        .find(|&c| matches!(c, '"' | '\'' | '\\') || c.is_control())
    {
        return Err(format!(
            "systemd refuses an executable whose name holds {}",
            shown_char(c)
        ));
    }
    // Read after unquoting, so no quote or escape keeps such a first
    // character from being a prefix.
    if let Some(c) = path.chars().next().filter(|c| EXEC_PREFIXES.contains(*c)) {
        return Err(format!(
            "systemd would read its first character, `{c}`, as a prefix of ExecStart= (which \
             changes how the command runs, or what runs) whatever the quoting: write the \
             executable's absolute path"
        ));
    }
    Ok(word_text(path, false))
}

/// One `Environment=` value: the assignment `NAME=value`, quoted whole.
pub fn environment(name: &str, value: &str) -> String {
    let mut out = String::from("\"");
    escape_into(&mut out, name, false);
    out.push('=');
    escape_into(&mut out, value, false);
    out.push('"');
    out
}

/// Whether systemd takes `name` as a variable name: ASCII letters, digits
/// and `_`, not starting with a digit (other names are ignored with a
/// warning when the unit loads).
pub fn environment_name_ok(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A value read as it is to the end of the line (a path, a user name, a
/// description): `%` doubled; `Err` when the line cannot hold it.
pub fn plain(value: &str) -> Result<String, String> {
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!("a unit file cannot hold {} here", shown_char(c)));
    }
    if value.trim() != value {
        return Err("systemd strips the white space at its start or end".to_string());
    }
    Ok(value.replace('%', "%%"))
}

/// Text from the config shown in a comment: quoted, with escapes.
pub fn shown(text: &str) -> String {
    format!("{text:?}")
}

/// A list of texts shown in a comment: `["a", "b c"]`.
pub fn shown_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| shown(s)).collect();
    format!("[{}]", inner.join(", "))
}

fn shown_char(c: char) -> String {
    match c {
        '"' => "a double quote".to_string(),
        '\'' => "a single quote".to_string(),
        '\\' => "a backslash".to_string(),
        _ => format!("the control character {:?}", c),
    }
}

/// A word of a command line, quoted when it must be.
fn word_text(word: &str, dollars: bool) -> String {
    let quoted = word.is_empty()
        || word
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\' | ';'));
    let mut out = String::new();
    if quoted {
        out.push('"');
    }
    escape_into(&mut out, word, dollars);
    if quoted {
        out.push('"');
    }
    out
}

/// `text` with systemd's C escapes, `%` doubled, and `$` doubled when
/// `dollars` (command lines).
fn escape_into(out: &mut String, text: &str, dollars: bool) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '%' => out.push_str("%%"),
            '$' if dollars => out.push_str("$$"),
            c if c.is_control() && c.is_ascii() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}
