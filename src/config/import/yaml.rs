//! Reading the Go tool's YAML with positions: a thin layer over saphyr's `MarkedYaml` that
//! turns every shape or key problem into a located `Diagnostic` and records which uncertain
//! spellings were mapped to which TOML key.

use std::path::Path;

use saphyr::{MarkedYaml, Marker, Scalar, YamlData};

use crate::config::error::Diagnostic;
use crate::config::parse_duration;

/// Collects errors and mapping notes while one file is read.
pub(super) struct Reader<'f> {
    file: &'f Path,
    pub(super) errors: Vec<Diagnostic>,
    /// "yaml.path.key -> toml-key" for every spelling that was not the TOML key itself.
    pub(super) mapped: Vec<String>,
}

/// The entries of a YAML mapping, taken out one key at a time; what is left at the end
/// is unknown.
pub(super) struct Fields<'n, 'i> {
    path: String,
    at: Marker,
    entries: Vec<Entry<'n, 'i>>,
}

struct Entry<'n, 'i> {
    key: String,
    at: Marker,
    value: &'n MarkedYaml<'i>,
}

/// A value taken from a mapping: where it is, its YAML path and the node.
pub(super) struct Field<'n, 'i> {
    pub(super) path: String,
    pub(super) value: &'n MarkedYaml<'i>,
}

impl<'f> Reader<'f> {
    pub(super) fn new(file: &'f Path) -> Self {
        Reader {
            file,
            errors: Vec::new(),
            mapped: Vec::new(),
        }
    }

    pub(super) fn error(&mut self, at: Marker, key: &str, message: impl Into<String>) {
        self.errors.push(Diagnostic {
            file: self.file.to_path_buf(),
            line: to_u32(at.line()),
            column: to_u32(at.col() + 1),
            key: key.to_string(),
            message: message.into(),
        });
    }

    /// The entries of a mapping node (a null node is an empty mapping: `name: {}` and
    /// `name:` mean the same in the Go tool).
    pub(super) fn fields<'n, 'i>(
        &mut self,
        node: &'n MarkedYaml<'i>,
        path: &str,
    ) -> Option<Fields<'n, 'i>> {
        let node = untag(node);
        let map = match &node.data {
            YamlData::Mapping(m) => m,
            YamlData::Value(Scalar::Null) => {
                return Some(Fields {
                    path: path.to_string(),
                    at: node.span.start,
                    entries: Vec::new(),
                });
            }
            _ => {
                self.error(
                    node.span.start,
                    path,
                    format!("expected a mapping, found {}", describe(node)),
                );
                return None;
            }
        };
        let mut entries = Vec::new();
        for (k, v) in map {
            match scalar_text(untag(k)) {
                Some(key) => entries.push(Entry {
                    key,
                    at: k.span.start,
                    value: v,
                }),
                None => self.error(
                    k.span.start,
                    path,
                    format!("expected a name as key, found {}", describe(k)),
                ),
            }
        }
        Some(Fields {
            path: path.to_string(),
            at: node.span.start,
            entries,
        })
    }

    /// Every key left in `fields` is unknown: one error each, at the key.
    pub(super) fn no_more(&mut self, fields: Fields<'_, '_>, known: &[&str]) {
        for e in fields.entries {
            let path = join(&fields.path, &e.key);
            self.error(
                e.at,
                &path,
                format!("unknown key \"{}\" (known: {})", e.key, known.join(", ")),
            );
        }
    }

    /// Takes `name` or one of its other spellings; notes the mapping when another spelling
    /// was used, and refuses two spellings of one key.
    pub(super) fn take_any<'n, 'i>(
        &mut self,
        fields: &mut Fields<'n, 'i>,
        spellings: &[&str],
        toml_key: &str,
    ) -> Option<Field<'n, 'i>> {
        let mut found: Option<(String, Field<'n, 'i>)> = None;
        while let Some(i) = fields
            .entries
            .iter()
            .position(|e| spellings.contains(&e.key.as_str()))
        {
            let e = fields.entries.remove(i);
            let path = join(&fields.path, &e.key);
            if let Some((first, _)) = &found {
                self.error(
                    e.at,
                    &path,
                    format!(
                        "\"{}\" and \"{first}\" both set {toml_key}; keep one",
                        e.key
                    ),
                );
                continue;
            }
            if e.key != toml_key {
                self.mapped.push(format!("{path} -> {toml_key}"));
            }
            found = Some((
                e.key,
                Field {
                    path,
                    value: e.value,
                },
            ));
        }
        found.map(|(_, f)| f)
    }

    pub(super) fn take<'n, 'i>(
        &mut self,
        fields: &mut Fields<'n, 'i>,
        key: &str,
    ) -> Option<Field<'n, 'i>> {
        self.take_any(fields, &[key], key)
    }

    /// Like `take`, but the key must be there.
    pub(super) fn require<'n, 'i>(
        &mut self,
        fields: &mut Fields<'n, 'i>,
        key: &str,
    ) -> Option<Field<'n, 'i>> {
        let f = self.take(fields, key);
        if f.is_none() {
            let (at, path) = (fields.at, fields.path.clone());
            self.error(at, &path, format!("missing key \"{key}\""));
        }
        f
    }

    pub(super) fn string(&mut self, f: &Field<'_, '_>) -> Option<String> {
        match &untag(f.value).data {
            YamlData::Value(Scalar::String(s)) => Some(s.to_string()),
            _ => self.wrong(f, "a string"),
        }
    }

    /// A string, or a number written without quotes (an address such as `10.0.0.1` is a
    /// string in YAML anyway; a port-like name is not).
    pub(super) fn text(&mut self, f: &Field<'_, '_>) -> Option<String> {
        match &untag(f.value).data {
            YamlData::Value(Scalar::Null | Scalar::Boolean(_)) => self.wrong(f, "a string"),
            YamlData::Value(_) => scalar_text(untag(f.value)),
            _ => self.wrong(f, "a string"),
        }
    }

    pub(super) fn int(&mut self, f: &Field<'_, '_>) -> Option<i64> {
        match &untag(f.value).data {
            YamlData::Value(Scalar::Integer(n)) => Some(*n),
            _ => self.wrong(f, "an integer"),
        }
    }

    pub(super) fn bool(&mut self, f: &Field<'_, '_>) -> Option<bool> {
        match &untag(f.value).data {
            YamlData::Value(Scalar::Boolean(b)) => Some(*b),
            _ => self.wrong(f, "true or false"),
        }
    }

    /// A Go duration string; checked here so the error points into the YAML.
    pub(super) fn duration(&mut self, f: &Field<'_, '_>) -> Option<String> {
        let text = match &untag(f.value).data {
            YamlData::Value(Scalar::String(s)) => s.to_string(),
            _ => return self.wrong(f, "a duration such as \"2s\", \"500ms\" or \"1m30s\""),
        };
        match parse_duration(&text) {
            Ok(_) => Some(text.trim().to_string()),
            Err(e) => {
                self.error(f.value.span.start, &f.path, e.to_string());
                None
            }
        }
    }

    pub(super) fn sequence<'n, 'i>(&mut self, f: &Field<'n, 'i>) -> Option<Vec<Field<'n, 'i>>> {
        match &untag(f.value).data {
            YamlData::Sequence(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, value)| Field {
                        path: format!("{}[{i}]", f.path),
                        value,
                    })
                    .collect(),
            ),
            _ => self.wrong(f, "a list"),
        }
    }

    fn wrong<T>(&mut self, f: &Field<'_, '_>, expected: &str) -> Option<T> {
        self.error(
            f.value.span.start,
            &f.path,
            format!("expected {expected}, found {}", describe(f.value)),
        );
        None
    }
}

impl<'n, 'i> Fields<'n, 'i> {
    /// The entries in file order, for maps of named items (backends, healthchecks, ...).
    pub(super) fn named(self) -> Vec<(String, Field<'n, 'i>)> {
        self.entries
            .into_iter()
            .map(|e| {
                let path = join(&self.path, &e.key);
                (
                    e.key,
                    Field {
                        path,
                        value: e.value,
                    },
                )
            })
            .collect()
    }
}

impl Field<'_, '_> {
    pub(super) fn at(&self) -> Marker {
        self.value.span.start
    }
}

fn untag<'n, 'i>(node: &'n MarkedYaml<'i>) -> &'n MarkedYaml<'i> {
    match &node.data {
        YamlData::Tagged(_, inner) => untag(inner),
        _ => node,
    }
}

fn scalar_text(node: &MarkedYaml<'_>) -> Option<String> {
    match &node.data {
        YamlData::Value(Scalar::String(s)) => Some(s.to_string()),
        YamlData::Value(Scalar::Integer(n)) => Some(n.to_string()),
        YamlData::Value(Scalar::FloatingPoint(x)) => Some(x.to_string()),
        YamlData::Value(Scalar::Boolean(b)) => Some(b.to_string()),
        YamlData::Representation(s, _, _) => Some(s.to_string()),
        _ => None,
    }
}

fn describe(node: &MarkedYaml<'_>) -> String {
    match &untag(node).data {
        YamlData::Value(Scalar::Null) => "nothing (null)".to_string(),
        YamlData::Value(Scalar::Boolean(b)) => format!("the boolean {b}"),
        YamlData::Value(Scalar::Integer(n)) => format!("the integer {n}"),
        YamlData::Value(Scalar::FloatingPoint(x)) => format!("the number {x}"),
        YamlData::Value(Scalar::String(s)) => format!("the string \"{s}\""),
        YamlData::Sequence(_) => "a list".to_string(),
        YamlData::Mapping(_) => "a mapping".to_string(),
        _ => "an unreadable value".to_string(),
    }
}

/// `parent.key` for messages (YAML paths use the same dotted form as the TOML ones).
pub(super) fn join(parent: &str, key: &str) -> String {
    crate::config::validate::join(parent, key)
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
