//! Configuration: TOML schema (serde), validation with file:line:column errors, and the
//! diff used by reload. `model` is the validated form the rest of the daemon uses.

pub mod model;

pub use model::*;
