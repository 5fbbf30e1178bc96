//! Configuration: TOML schema (serde), validation with file:line:column errors, and the
//! diff used by reload. `model` is the validated form the rest of the daemon uses.
//!
//! Loading has two stages: `schema` (TOML syntax, value types, unknown or missing keys;
//! exit code 1) and `validate` (the semantic rules of docs/design.md §4; exit code 2). Both
//! report every problem they find as a `Diagnostic` with file, line, column and key path.

pub mod diff;
pub mod duration;
pub mod error;
pub mod import;
mod load;
pub mod model;
pub mod schema;
mod validate;

pub use diff::{ConfigDiff, diff};
pub use duration::{DurationError, format_duration, parse_duration};
pub use error::{ConfigError, Diagnostic};
pub(crate) use load::read_source;
pub use load::{LoadOptions, Loaded, load_file, load_file_with, load_str, load_str_with};
pub use model::*;
