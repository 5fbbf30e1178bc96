//! Loading: read the file, parse TOML with spans (stage 1: syntax, types, unknown keys),
//! then validate the semantics (stage 2). Each stage reports every problem it finds.

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::error::{ConfigError, Diagnostic, SourceMap};
use super::model::Config;
use super::schema::RawConfig;
use super::validate::{join, validate};

/// Reads and validates a config file.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let src = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    load_str(&src, path)
}

/// Validates config text; `path` is only used in messages and `Config::path`.
pub fn load_str(src: &str, path: &Path) -> Result<Config, ConfigError> {
    let map = SourceMap::new(src, path);

    let (doc, syntax_errors) = DeTable::parse_recoverable(src);
    let keys = KeyIndex::new(doc.get_ref());
    if !syntax_errors.is_empty() {
        let diags = syntax_errors
            .iter()
            .map(|e| parse_diagnostic(&map, &keys, src, e))
            .collect();
        return Err(ConfigError::Parse(diags));
    }

    let raw = RawConfig::deserialize(toml::de::Deserializer::from(doc))
        .map_err(|e| ConfigError::Parse(vec![parse_diagnostic(&map, &keys, src, &e)]))?;

    validate(raw, &map, path.to_path_buf()).map_err(ConfigError::Semantic)
}

fn parse_diagnostic(
    map: &SourceMap<'_>,
    keys: &KeyIndex,
    src: &str,
    err: &toml::de::Error,
) -> Diagnostic {
    let span = err.span().unwrap_or(0..0);
    let mut message = err.message().trim().to_string();
    if message == "duplicate key"
        && let Some(text) = src.get(span.clone()).filter(|t| !t.is_empty())
    {
        // Table names are the item names of each section: say which one repeats.
        message = format!("duplicate key `{text}` (names must be unique in their section)");
    }
    map.diagnostic(&span, keys.path_at(span.start), message)
}

/// Every key and value of the document with its dotted path, to name the key an error
/// span falls on. (toml's error keeps its key path private.)
struct KeyIndex {
    entries: Vec<(Range<usize>, String)>,
}

impl KeyIndex {
    fn new(root: &DeTable<'_>) -> Self {
        let mut entries = Vec::new();
        index_table(root, "", &mut entries);
        KeyIndex { entries }
    }

    /// The path of the narrowest key or value containing `offset`; "" when none does.
    fn path_at(&self, offset: usize) -> String {
        self.entries
            .iter()
            .filter(|(span, _)| span.contains(&offset))
            .min_by_key(|(span, path)| (span.len(), std::cmp::Reverse(path.len())))
            .map(|(_, path)| path.clone())
            .unwrap_or_default()
    }
}

fn index_table(table: &DeTable<'_>, parent: &str, out: &mut Vec<(Range<usize>, String)>) {
    for (key, value) in table.iter() {
        let path = join(parent, key.get_ref());
        out.push((key.span(), path.clone()));
        index_value(value, path, out);
    }
}

fn index_value(value: &Spanned<DeValue<'_>>, path: String, out: &mut Vec<(Range<usize>, String)>) {
    match value.get_ref() {
        DeValue::Table(t) => index_table(t, &path, out),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                index_value(item, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
    out.push((value.span(), path));
}
