//! What the unit tests share.

/// A test that cannot run here says why and returns, unless `CI` is set:
/// there every test must run, so it fails instead.
pub(crate) fn skip_or_fail(why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("this test cannot run here, and CI is set: {why}");
    }
    eprintln!("skipped: {why}");
}
