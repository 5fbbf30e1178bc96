//! daemon (see DESIGN.md §3).

use std::process::ExitCode;

use crate::cli::DaemonArgs;

/// Entry point of the daemon role.
pub fn main(_args: DaemonArgs) -> ExitCode {
    eprintln!("maglev daemon: not implemented yet");
    ExitCode::FAILURE
}
