//! ctl (see DESIGN.md §9).

use std::process::ExitCode;

use crate::cli::CtlArgs;

pub mod grammar;

/// Entry point of the ctl role.
pub fn main(_args: CtlArgs) -> ExitCode {
    eprintln!("maglev ctl: not implemented yet");
    ExitCode::FAILURE
}
