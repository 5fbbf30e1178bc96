//! argv[0] / subcommand dispatch only: `maglevd` = `maglev daemon`, `maglevc` = `maglev ctl`,
//! `maglevt` = `maglev tester`, `maglevd-frontend` = `maglev web`.

use std::process::ExitCode;

use clap::Parser;
use maglev::cli::{Cli, Command, Role, normalize_go_flags, role_from_argv0};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    let argv0 = args
        .first()
        .cloned()
        .unwrap_or_else(|| "maglev".to_string());
    match role_from_argv0(&argv0) {
        Role::Daemon => args.insert(1, "daemon".to_string()),
        Role::Ctl => args.insert(1, "ctl".to_string()),
        Role::Tester => args.insert(1, "tester".to_string()),
        Role::Web => args.insert(1, "web".to_string()),
        Role::Maglev => {}
    }
    let cli = Cli::parse_from(normalize_go_flags(args));
    match cli.command {
        Command::Daemon(a) => {
            tune_malloc();
            maglev::daemon::main(a)
        }
        Command::Ctl(a) => maglev::ctl::main(a),
        Command::Web(a) => maglev::web::main(a),
        Command::Tester(a) => maglev::tester::main(a),
        Command::Completions { shell, command } => {
            match maglev::cli::render_completions(shell, &command, &mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("maglev completions: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Config {
            command: maglev::cli::ConfigCommand::Import(a),
        } => maglev::config::import::main(a),
        Command::Man { page } => match maglev::cli::render_man(&page, &mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("maglev man: {e}");
                ExitCode::from(2)
            }
        },
    }
}

/// glibc's malloc, tuned for a daemon that holds a large steady heap and renders large
/// transient buffers (`/metrics` for 10,000 backends is megabytes of text):
/// - two arenas instead of up to 8 per core: every thread that allocates got its own,
///   each keeping the free memory of its own peaks (10,000 TCP backends, standalone:
///   53.4 -> 44.2 MiB RSS);
/// - a fixed mmap threshold of 128 KiB: glibc raises it after the first large free (up to
///   32 MiB), after which every render's buffers come from the arenas and their pages
///   stay resident; fixed, they are mapped and unmapped (same run beside HAProxy, polled
///   for `/metrics`: 92 -> 70 MiB).
///
/// Set before any thread starts; `MALLOC_ARENA_MAX` / `MALLOC_MMAP_THRESHOLD_` in the
/// environment still win (docs/performance.md, issue 14).
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, 2);
            }
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
            }
        }
    }
}
