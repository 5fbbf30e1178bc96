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
            limit_malloc_arenas();
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

/// glibc gives every thread that allocates its own arena (up to 8 per core), and each keeps
/// the free memory of its own peaks: with 10,000 backends that was 10–15 % of the daemon's
/// RSS for nothing (docs/performance.md, issue 14). The daemon's threads (the checker's
/// runtime, the API's workers, the signal thread) share two arenas instead, before any of
/// them starts. `MALLOC_ARENA_MAX` in the environment still wins.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
