//! `procman export --format systemd|kubernetes|nomad -c FILE [-o DIR]`:
//! the config as another engine's units, manifests or job. Files go to
//! stdout, or into DIR (with a README.md of how to install them); each
//! key the target cannot express is a warning on stderr, and a one-line
//! summary of what was written ends the output on stderr.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use procman_core::config::{collapse, Shown};

use super::ConfigArg;
use crate::console;
use crate::exit::Failure;
use crate::export::{ExportError, Format, Options, Rendered};

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// What to write.
    #[arg(long, value_enum)]
    format: Format,
    /// Write one file per unit, manifest or job into this directory
    /// (created if missing), with a README.md; stdout when absent.
    #[arg(short, long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// The container image of every process without `export.image`
    /// (Kubernetes; Nomad's docker driver).
    #[arg(long)]
    image: Option<String>,
    /// The name of the whole (systemd target and unit prefix, Kubernetes
    /// `part-of` label, Nomad job); default: the config file's stem.
    #[arg(long)]
    name: Option<String>,
}

pub fn export(args: ExportArgs) -> Result<(), Failure> {
    let file = &args.config.config;
    // For another host: its accounts and limits are not this one's.
    let mut config = procman_core::config::load_file_elsewhere(file)
        .map_err(|e| Failure::Config(e.to_string()))?;
    for line in procman_core::config::warning_lines(&std::mem::take(&mut config.warnings), file) {
        console::write(format!("{line}\n").as_bytes());
    }
    let opts = Options {
        name: args.name.clone().unwrap_or_else(|| stem(file)),
        image: args.image.clone(),
    };
    let rendered = args
        .format
        .render(&config, &opts)
        .map_err(|ExportError::Incomplete(m)| {
            Failure::Config(format!("{}: {m}", file.display()))
        })?;
    // A warning about each of many processes is shown twice, then
    // counted, as the config's own warnings are.
    for shown in collapse(&rendered.warnings, |w| {
        (w.path.as_str(), w.message.as_str())
    }) {
        let line = match shown {
            Shown::One(w) => format!("{}: {}: warning: {}\n", file.display(), w.path, w.message),
            Shown::More { kind, count, last } => format!(
                "{}: {kind}: warning: {count} more like it, the last at {}\n",
                file.display(),
                last.path
            ),
        };
        console::write(line.as_bytes());
    }
    let mut left_over = 0;
    let written = match &args.output {
        Some(dir) => {
            let left = write_dir(dir, &rendered).map_err(Failure::Runtime)?;
            left_over = left.len();
            for name in left {
                console::write(
                    format!(
                        "procman export: warning: {} was not written by this export (left from an earlier one?); remove it before installing the directory\n",
                        dir.join(name).display()
                    )
                    .as_bytes(),
                );
            }
            format!("{}/", dir.display())
        }
        None => {
            write_stdout(&rendered)?;
            "stdout".to_string()
        }
    };
    let warnings = match rendered.warnings.len() + left_over {
        0 => String::new(),
        1 => ", 1 warning".to_string(),
        n => format!(", {n} warnings"),
    };
    console::write(
        format!(
            "procman export: {} for {} to {written}{warnings}\n",
            rendered.summary,
            args.format.as_str()
        )
        .as_bytes(),
    );
    Ok(())
}

/// The config file's name without its extension (`procman.yaml` →
/// `procman`).
fn stem(file: &Path) -> String {
    file.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "procman".to_string())
}

/// Every file on stdout, in order; a closed stdout is not an error.
fn write_stdout(rendered: &Rendered) -> Result<(), Failure> {
    // The standard library takes writes to a closed stdout (`>&-`) as done:
    // nothing would be written and the summary would say it was.
    if rustix::io::fcntl_getfd(std::io::stdout()).is_err() {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "stdout is closed: nothing was written (pass -o DIR to write files)"
        )));
    }
    let mut out = std::io::stdout().lock();
    let all: String = rendered.files.iter().map(|f| f.text.as_str()).collect();
    match out.write_all(all.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Failure::OutputClosed),
        Err(e) => Err(Failure::Runtime(
            anyhow::Error::new(e).context("cannot write to stdout"),
        )),
    }
}

/// Each file into `dir`, and the README; returns the names of the other
/// files `dir` holds, sorted: an earlier export's, which installing the
/// whole directory would install too.
fn write_dir(dir: &Path, rendered: &Rendered) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    let readme = rendered.readme.as_ref().map(|text| ("README.md", text));
    let files = rendered.files.iter().map(|f| (f.name.as_str(), &f.text));
    let mut written = Vec::new();
    for (name, text) in files.chain(readme) {
        let path = dir.join(name);
        write_file(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(name);
    }
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list the directory {}", dir.display()))?;
    let mut left: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !written.contains(&name.as_str()))
        .collect();
    left.sort();
    Ok(left)
}

/// `text` as the whole of the file at `path`, never through a symbolic
/// link there (it is refused: whatever it points to is left alone).
fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)?;
    file.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::File;

    fn rendered(names: &[&str]) -> Rendered {
        Rendered {
            files: names
                .iter()
                .map(|n| File {
                    name: n.to_string(),
                    text: format!("{n}\n"),
                })
                .collect(),
            readme: Some("how\n".into()),
            ..Rendered::default()
        }
    }

    #[test]
    fn a_symbolic_link_in_the_directory_is_not_written_through() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("precious");
        std::fs::write(&target, "keep\n").expect("write");
        let out = dir.path().join("out");
        std::fs::create_dir(&out).expect("mkdir");
        std::os::unix::fs::symlink(&target, out.join("a.yaml")).expect("symlink");
        let err = write_dir(&out, &rendered(&["a.yaml"])).expect_err("refused");
        assert!(err.to_string().contains("a.yaml"), "{err:#}");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "keep\n");
    }

    #[test]
    fn files_left_by_an_earlier_export_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("units");
        assert!(write_dir(&out, &rendered(&["a.yaml", "gone.yaml"]))
            .expect("write")
            .is_empty());
        let left = write_dir(&out, &rendered(&["a.yaml"])).expect("write");
        assert_eq!(left, ["gone.yaml"]);
        assert_eq!(
            std::fs::read_to_string(out.join("a.yaml")).expect("read"),
            "a.yaml\n"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("README.md")).expect("read"),
            "how\n"
        );
    }
}
