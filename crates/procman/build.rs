//! Links the code the manager runs side by side (`hot-symbols.txt`).
//!
//! The kernel maps a binary's code in blocks of 64 KiB around each page
//! the program touches (fault-around), and every mapped page counts in the
//! manager's resident memory. Left to the compiler, the functions a
//! running manager calls are spread over nearly every block of the 5 MB of
//! code. `hot-symbols.txt` lists them (made by `benches/hot_symbols.py`
//! from a manager running 500 processes), and the linker places them
//! first, in that order: they fill a few blocks and the rest of the code
//! is never mapped. A symbol the list names that the build does not have
//! (renamed, inlined, another compiler) is skipped; a stale list only
//! costs memory, never correctness.
//!
//! The segments are aligned to 64 KiB (`-z max-page-size=65536`): the
//! kernel then loads the binary at an address that is a multiple of 64 KiB,
//! and its blocks of fault-around fall on the same 64 KiB of the file in
//! every run. At 4 KiB, where they fell changed with each load address,
//! and so did the code mapped around the listed functions: 2.23–2.33 MiB
//! of the binary resident with 500 processes, against 2.08 MiB every time
//! aligned. The file does not grow: only the addresses leave gaps.
//!
//! Also packs the binary's relative relocations (`-z pack-relative-relocs`,
//! DT_RELR) when the C library this builds against (glibc 2.36 on)
//! applies them: the loader then reads some 3 KiB of them at start where it
//! read 290 KiB, which stayed mapped. A binary so linked does not start on
//! an older glibc ("GLIBC_ABI_DT_RELR not found"), so it is built only for
//! the glibc of the machine that builds it.
//!
//! Only for release builds with LLD, the linker of `x86_64-unknown-linux-gnu`
//! from Rust 1.90 on (GNU ld has no such option); `PROCMAN_NO_SYMBOL_ORDER=1`
//! turns it off (another linker set by hand).

use std::path::Path;
use std::process::Command;

const LIST: &str = "hot-symbols.txt";

fn main() {
    println!("cargo:rerun-if-changed={LIST}");
    println!("cargo:rerun-if-env-changed=PROCMAN_NO_SYMBOL_ORDER");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let target = std::env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu");
    let off = std::env::var_os("PROCMAN_NO_SYMBOL_ORDER").is_some_and(|v| v == "1");
    if !release || !target || off || !lld_by_default() {
        return;
    }
    let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") else {
        return;
    };
    let list = Path::new(&dir).join(LIST);
    println!("cargo:rustc-link-arg-bin=procman=-Wl,-z,max-page-size=65536");
    if relr_supported() {
        println!("cargo:rustc-link-arg-bin=procman=-Wl,-z,pack-relative-relocs");
    }
    if list.is_file() {
        println!(
            "cargo:rustc-link-arg-bin=procman=-Wl,--symbol-ordering-file={}",
            list.display()
        );
        println!("cargo:rustc-link-arg-bin=procman=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether rustc links this target with its own LLD by default (1.90 on).
fn lld_by_default() -> bool {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("-V").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    version(text.split_whitespace().nth(1).unwrap_or("")) >= (1, 90)
}

/// Whether the build machine's glibc applies packed relative relocations
/// (2.36 on): `getconf GNU_LIBC_VERSION` says "glibc 2.36".
fn relr_supported() -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(number) = text.trim().strip_prefix("glibc ") else {
        return false;
    };
    version(number) >= (2, 36)
}

/// The major and minor numbers of a version "1.95.0" (0 for what is not one).
fn version(text: &str) -> (u32, u32) {
    let mut parts = text.split('.').map(|n| n.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}
