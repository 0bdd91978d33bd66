//! Parsers for the text of one scalar: durations, numbers, fractions,
//! endpoints. Pure functions; the message of an `Err` names the value and
//! reads well after the key path.

use std::time::Duration;

use super::error::cut;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// The longest duration accepted: 100 years of 365 days. Far beyond any
/// real timeout, and small enough that nothing downstream can overflow
/// (an `Instant` plus it, a backoff delay grown from it).
pub(super) const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400);

/// A duration: `300ms`, `1.5s`, `2m`, `1h30m`, `1h 30m`; a bare number is
/// seconds (`5`, `0.25`). Decimals are allowed in every segment (humantime
/// rejects `1.5s`, so this is our own parser). At most [`MAX_DURATION`].
pub(super) fn duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let shown = cut(t);
    if t.starts_with('-') {
        return Err(format!("duration `{shown}` must not be negative"));
    }
    let bad = || {
        format!(
            "invalid duration `{shown}`; expected a number with a unit, like 300ms, 1.5s, 2m or 1h30m"
        )
    };
    let too_long = || format!("duration `{shown}` is too long (at most 100 years, 36500d)");
    if t.is_empty() {
        return Err(bad());
    }
    if let Some(secs) = decimal(t) {
        return secs
            .nanos(NANOS_PER_SEC)
            .and_then(to_duration)
            .ok_or_else(too_long);
    }
    let mut total: u128 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = decimal(&rest[..digits]).ok_or_else(bad)?;
        rest = rest[digits..].trim_start();
        let letters = rest
            .find(|c: char| c.is_ascii_digit() || c == '.' || c.is_whitespace())
            .unwrap_or(rest.len());
        let unit = &rest[..letters];
        if unit.is_empty() {
            return Err(format!(
                "missing unit after `{}` in duration `{shown}`",
                cut(number.text)
            ));
        }
        let per_unit = unit_nanos(unit).ok_or_else(|| {
            format!(
                "unknown unit `{}` in duration `{shown}`; use ns, us, ms, s, m, h or d",
                cut(unit)
            )
        })?;
        total = number
            .nanos(per_unit)
            .and_then(|n| total.checked_add(n))
            .ok_or_else(too_long)?;
        rest = rest[letters..].trim_start();
    }
    to_duration(total).ok_or_else(too_long)
}

/// `None` past [`MAX_DURATION`].
fn to_duration(nanos: u128) -> Option<Duration> {
    let secs = u64::try_from(nanos / NANOS_PER_SEC).ok()?;
    // The remainder is below 10^9, so it fits.
    let sub = u32::try_from(nanos % NANOS_PER_SEC).ok()?;
    Some(Duration::new(secs, sub)).filter(|d| *d <= MAX_DURATION)
}

fn unit_nanos(unit: &str) -> Option<u128> {
    let n = match unit {
        "ns" | "nsec" | "nanos" => 1,
        "us" | "µs" | "usec" | "micros" => 1_000,
        "ms" | "msec" | "millis" => 1_000_000,
        "s" | "sec" | "secs" | "second" | "seconds" => NANOS_PER_SEC,
        "m" | "min" | "mins" | "minute" | "minutes" => 60 * NANOS_PER_SEC,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600 * NANOS_PER_SEC,
        "d" | "day" | "days" => 86_400 * NANOS_PER_SEC,
        _ => return None,
    };
    Some(n)
}

/// A non-negative decimal number kept exact: `12.345` is 12 and 345/1000.
struct Decimal<'a> {
    text: &'a str,
    whole: u128,
    frac: u128,
    frac_scale: u128,
}

impl Decimal<'_> {
    /// `self` units of `per_unit` nanoseconds, rounded down.
    fn nanos(&self, per_unit: u128) -> Option<u128> {
        let whole = self.whole.checked_mul(per_unit)?;
        whole.checked_add(self.frac.checked_mul(per_unit)? / self.frac_scale)
    }
}

/// `12`, `12.5`, `.5`, `12.`; `None` for anything else.
fn decimal(text: &str) -> Option<Decimal<'_>> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !all_digits(whole) || !all_digits(frac) {
        return None;
    }
    // Digits past nanosecond precision of a day cannot matter.
    let frac = &frac[..frac.len().min(15)];
    Some(Decimal {
        text,
        // Only digits, so a failed parse is an overflow: too long, which
        // the caller reports as such.
        whole: if whole.is_empty() {
            0
        } else {
            whole.parse().unwrap_or(u128::MAX)
        },
        frac: if frac.is_empty() {
            0
        } else {
            frac.parse().ok()?
        },
        frac_scale: 10u128.checked_pow(u32::try_from(frac.len()).ok()?)?,
    })
}

/// A whole number in `min..=max`.
pub(super) fn uint(text: &str, min: u64, max: u64) -> Result<u64, String> {
    let t = text.trim();
    let shown = cut(t);
    let n: u64 = match t.strip_prefix('+').unwrap_or(t).parse() {
        Ok(n) => n,
        Err(_) if t.starts_with('-') && t[1..].bytes().all(|b| b.is_ascii_digit()) => {
            return Err(format!("`{shown}` must not be negative"));
        }
        Err(_) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(format!("`{shown}` is too large (at most {max})"));
        }
        Err(_) => return Err(format!("expected a whole number, found `{shown}`")),
    };
    if n < min {
        return Err(format!("must be at least {min}, found {n}"));
    }
    if n > max {
        return Err(format!("must be at most {max}, found {n}"));
    }
    Ok(n)
}

/// A finite number: `1.5`, `80`, `2e3`.
pub(super) fn float(text: &str) -> Result<f64, String> {
    let t = text.trim();
    match t.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(format!("expected a number, found `{}`", cut(t))),
    }
}

/// A number that may be written as a percentage: `10%` is `0.1`.
pub(super) fn fraction(text: &str) -> Result<f64, String> {
    let t = text.trim();
    match t.strip_suffix('%') {
        Some(pct) => float(pct)
            .map(|x| x / 100.0)
            .map_err(|_| format!("expected a number or a percentage, found `{}`", cut(t))),
        None => float(t),
    }
}

/// A percentage that may carry a `%` sign: `80`, `80.0`, `80%` are all 80.
pub(super) fn percent(text: &str) -> Result<f64, String> {
    let t = text.trim();
    float(t.strip_suffix('%').unwrap_or(t))
}

/// `true` or `false` (also capitalised); YAML 1.1's `yes`/`on` are not
/// booleans here, they are mistakes worth reporting.
pub(super) fn boolean(text: &str) -> Result<bool, String> {
    match text.trim() {
        "true" | "True" | "TRUE" => Ok(true),
        "false" | "False" | "FALSE" => Ok(false),
        t => Err(format!("expected true or false, found `{}`", cut(t))),
    }
}

/// `host:port`, with IPv6 hosts in brackets (`[::1]:8080`), port 1–65535.
pub(super) fn host_port(text: &str) -> Result<(), String> {
    let t = text.trim();
    let bad = |why: &str| format!("invalid endpoint `{}`: {why}; expected host:port", cut(t));
    let (host, port) = t.rsplit_once(':').ok_or_else(|| bad("no port"))?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if host.contains(|c: char| c.is_whitespace() || c == '/' || c == '@') {
        return Err(bad("the host is not a host name or address"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(bad("the port must be 1 to 65535")),
    }
}

/// An `http://` or `https://` URL with a host.
pub(super) fn http_url(text: &str) -> Result<(), String> {
    let t = text.trim();
    let bad = |why: &str| format!("invalid URL `{}`: {why}", cut(t));
    let lower = t.to_ascii_lowercase();
    let rest = if lower.starts_with("http://") {
        &t[7..]
    } else if lower.starts_with("https://") {
        &t[8..]
    } else {
        return Err(bad("expected an http:// or https:// URL"));
    };
    if t.contains(char::is_whitespace) {
        return Err(bad("it contains whitespace"));
    }
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    // A bracketed IPv6 host holds colons of its own.
    let (host, port) = match host_port.rfind(':') {
        Some(i) if !host_port[i..].contains(']') => (&host_port[..i], Some(&host_port[i + 1..])),
        _ => (host_port, None),
    };
    if host.is_empty() || host == "[]" {
        return Err(bad("no host"));
    }
    if let Some(port) = port {
        if port.parse::<u16>().is_err() {
            return Err(bad("the port must be 0 to 65535"));
        }
    }
    Ok(())
}
