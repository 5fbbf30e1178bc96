//! Typed configuration errors. Every diagnostic names the file, the 1-based line and
//! column, the key path and what was expected, so an operator can jump straight to it.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem in a config file, located at a key or value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based.
    pub line: u32,
    /// 1-based, counted in characters (not bytes).
    pub column: u32,
    /// Dotted key path, e.g. `frontends.web.pools[1].backends.nginx0`; empty when unknown.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read config: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax, a value of the wrong type, an unknown or missing key.
    #[error("{}", join_lines(.0))]
    Parse(Vec<Diagnostic>),
    /// Well-formed TOML that breaks a rule of docs/design.md §4 (every violation is listed).
    #[error("{}", join_lines(.0))]
    Semantic(Vec<Diagnostic>),
}

fn join_lines(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(Diagnostic::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl ConfigError {
    /// Exit code of `maglev daemon --check`: 1 for unreadable or unparsable, 2 for semantic.
    pub fn exit_code(&self) -> i32 {
        match self {
            ConfigError::Io { .. } | ConfigError::Parse(_) => 1,
            ConfigError::Semantic(_) => 2,
        }
    }

    /// The located diagnostics (empty for an I/O error).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ConfigError::Io { .. } => &[],
            ConfigError::Parse(d) | ConfigError::Semantic(d) => d,
        }
    }

    /// One human line per problem, `file:line:col: key: message`.
    pub fn lines(&self) -> Vec<String> {
        match self {
            ConfigError::Io { .. } => vec![self.to_string()],
            ConfigError::Parse(d) | ConfigError::Semantic(d) => {
                d.iter().map(Diagnostic::to_string).collect()
            }
        }
    }
}

/// Turns byte offsets of one source text into 1-based line/column positions.
#[derive(Debug, Clone)]
pub(crate) struct SourceMap<'a> {
    src: &'a str,
    file: &'a Path,
    /// Byte offset at which each line starts.
    line_starts: Vec<usize>,
}

impl<'a> SourceMap<'a> {
    pub(crate) fn new(src: &'a str, file: &'a Path) -> Self {
        let line_starts = std::iter::once(0)
            .chain(src.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        SourceMap {
            src,
            file,
            line_starts,
        }
    }

    /// 1-based (line, column) of a byte offset; offsets past the end clamp to the end.
    pub(crate) fn position(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.src.len());
        let line_idx = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts.get(line_idx).copied().unwrap_or(0);
        // Count characters, not bytes; a span never starts inside a UTF-8 sequence, but be
        // lenient if it does.
        let column = self
            .src
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (to_u32(line_idx + 1), to_u32(column + 1))
    }

    pub(crate) fn diagnostic(
        &self,
        span: &Range<usize>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Diagnostic {
        let (line, column) = self.position(span.start);
        Diagnostic {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.into(),
            message: message.into(),
        }
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(key: &str) -> Diagnostic {
        Diagnostic {
            file: PathBuf::from("maglev.toml"),
            line: 42,
            column: 9,
            key: key.to_string(),
            message: "unknown backend \"nginx0\" (known: nginx0-ams, nginx0-fra)".to_string(),
        }
    }

    #[test]
    fn diagnostic_display_matches_the_documented_format() {
        assert_eq!(
            diag("frontends.web.pools[1].backends.nginx0").to_string(),
            "maglev.toml:42:9: frontends.web.pools[1].backends.nginx0: unknown backend \"nginx0\" (known: nginx0-ams, nginx0-fra)"
        );
    }

    #[test]
    fn diagnostic_without_key_omits_the_key_part() {
        assert_eq!(
            diag("").to_string(),
            "maglev.toml:42:9: unknown backend \"nginx0\" (known: nginx0-ams, nginx0-fra)"
        );
    }

    #[test]
    fn exit_codes_and_lines() {
        let io = ConfigError::Io {
            path: PathBuf::from("/nope.toml"),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        assert_eq!(io.exit_code(), 1);
        assert!(io.diagnostics().is_empty());
        assert_eq!(io.lines().len(), 1);
        assert!(io.lines()[0].starts_with("/nope.toml: cannot read config"));

        let parse = ConfigError::Parse(vec![diag("a")]);
        assert_eq!(parse.exit_code(), 1);

        let sem = ConfigError::Semantic(vec![diag("a"), diag("b")]);
        assert_eq!(sem.exit_code(), 2);
        assert_eq!(sem.diagnostics().len(), 2);
        assert_eq!(sem.lines()[1], diag("b").to_string());
        assert_eq!(sem.to_string(), sem.lines().join("\n"));
    }

    #[test]
    fn source_map_positions_are_one_based_and_count_characters() {
        let src = "a = 1\nbé = 2\n\nc";
        let map = SourceMap::new(src, Path::new("x.toml"));
        assert_eq!(map.position(0), (1, 1));
        assert_eq!(map.position(4), (1, 5));
        assert_eq!(map.position(6), (2, 1));
        // 'é' is two bytes; the '=' after "bé " is the 4th character of line 2.
        let eq = src.find("= 2").unwrap_or_default();
        assert_eq!(map.position(eq), (2, 4));
        assert_eq!(map.position(src.len() - 1), (4, 1));
        assert_eq!(map.position(src.len() + 10), (4, 2));
    }
}
