//! The `maglev config import` command: read, convert, write, then validate the result as
//! `maglev daemon --check` does. Exit codes: 0 ok, 1 unreadable input or YAML that cannot
//! be imported (or an output that exists), 2 the TOML was written but does not validate.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::cli::ImportArgs;
use crate::config::{self, ConfigError};

pub fn main(args: ImportArgs) -> ExitCode {
    match run(&args) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("maglev config import: {msg}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &ImportArgs) -> Result<ExitCode, String> {
    if let Some(out) = &args.output
        && out.exists()
        && !args.force
    {
        return Err(format!(
            "{} exists; pass --force to overwrite it",
            out.display()
        ));
    }
    let src = config::read_source(&args.input)
        .map_err(|e| format!("{}: cannot read: {e}", args.input.display()))?;
    let imported = match super::import_str(&src, &args.input) {
        Ok(i) => i,
        Err(e) => {
            for d in &e.0 {
                eprintln!("{d}");
            }
            eprintln!(
                "maglev config import: {} problem(s) in {}; nothing written",
                e.0.len(),
                args.input.display()
            );
            return Ok(ExitCode::from(1));
        }
    };
    for m in &imported.mapped {
        eprintln!("mapped: {m}");
    }

    let shown: PathBuf = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("<stdout>"));
    match &args.output {
        Some(out) => std::fs::write(out, &imported.toml)
            .map_err(|e| format!("{}: cannot write: {e}", out.display()))?,
        None => std::io::stdout()
            .write_all(imported.toml.as_bytes())
            .map_err(|e| format!("cannot write to stdout: {e}"))?,
    }
    Ok(check(&imported.toml, &shown, args))
}

/// Validates the written TOML with the daemon's own loader, in the mode `--check` uses.
fn check(toml: &str, shown: &Path, args: &ImportArgs) -> ExitCode {
    let opts = config::LoadOptions { vpp: !args.no_vpp };
    match config::load_str_with(toml, shown, &opts) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            eprintln!(
                "{}: ok ({} healthchecks, {} backends, {} frontends)",
                shown.display(),
                loaded.config.healthchecks.len(),
                loaded.config.backends.len(),
                loaded.config.frontends.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            for line in e.lines() {
                eprintln!("{line}");
            }
            eprintln!(
                "maglev config import: {} was written but does not validate; fix the lines above",
                shown.display()
            );
            ExitCode::from(match e {
                ConfigError::Semantic(_) => 2,
                _ => 1,
            })
        }
    }
}
