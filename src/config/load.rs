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

/// Largest config file read. Real ones are a few KiB; the cap keeps a path such as
/// `/dev/zero` (CheckConfig takes any path) from growing the daemon without bound.
pub const MAX_CONFIG_BYTES: u64 = 16 * 1024 * 1024;

/// How a config is checked: what the daemon that will run it has switched on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// VPP is on (`--vpp-api-addr` not empty): missing GRE source addresses are errors
    /// rather than warnings.
    pub vpp: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { vpp: true }
    }
}

/// A valid config and what is worth telling the operator about it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// Accepted, but probably not what was meant (each says what happens instead).
    pub warnings: Vec<Diagnostic>,
}

/// Reads and validates a config file (as for a daemon with VPP on; warnings dropped).
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    load_file_with(path, &LoadOptions::default()).map(|l| l.config)
}

/// Reads and validates a config file for a daemon run with `opts`.
pub fn load_file_with(path: &Path, opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let src = read_source(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    load_str_with(&src, path, opts)
}

/// Reads a regular file of at most [`MAX_CONFIG_BYTES`]. Devices, FIFOs and directories
/// are refused before they are opened (opening a FIFO would block).
pub(crate) fn read_source(path: &Path) -> std::io::Result<String> {
    use std::io::{Error, ErrorKind, Read};
    if !std::fs::metadata(path)?.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut src = String::new();
    std::fs::File::open(path)?
        .take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut src)?;
    if src.len() as u64 > MAX_CONFIG_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidData,
            format!("larger than {MAX_CONFIG_BYTES} bytes"),
        ));
    }
    Ok(src)
}

/// Validates config text; `path` is only used in messages and `Config::path`.
pub fn load_str(src: &str, path: &Path) -> Result<Config, ConfigError> {
    load_str_with(src, path, &LoadOptions::default()).map(|l| l.config)
}

/// Validates config text for a daemon run with `opts`.
pub fn load_str_with(src: &str, path: &Path, opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let map = SourceMap::new(src, path);

    let (doc, syntax_errors) = DeTable::parse_recoverable(src);
    let keys = KeyIndex::new(doc.get_ref());
    if !syntax_errors.is_empty() {
        let mut diags: Vec<Diagnostic> = syntax_errors
            .iter()
            .map(|e| parse_diagnostic(&map, &keys, src, e))
            .collect();
        // Error recovery can report one spot twice.
        diags.sort_by_key(|d| (d.line, d.column));
        diags.dedup();
        return Err(ConfigError::Parse(diags));
    }

    let raw = RawConfig::deserialize(toml::de::Deserializer::from(doc))
        .map_err(|e| ConfigError::Parse(vec![parse_diagnostic(&map, &keys, src, &e)]))?;

    validate(raw, &map, path.to_path_buf(), opts)
        .map(|(config, warnings)| Loaded { config, warnings })
        .map_err(ConfigError::Semantic)
}

fn parse_diagnostic(
    map: &SourceMap<'_>,
    keys: &KeyIndex,
    src: &str,
    err: &toml::de::Error,
) -> Diagnostic {
    let span = err.span().unwrap_or(0..0);
    // serde names Rust types; say what the operator writes instead.
    let mut message = err
        .message()
        .trim()
        .replace("expected i64", "expected an integer");
    if message == "duplicate key"
        && let Some(text) = src.get(span.clone()).filter(|t| !t.is_empty())
    {
        // Table names are the item names of each section: say which one repeats.
        message = format!("duplicate key `{text}` (names must be unique in their section)");
    }
    map.diagnostic(&span, keys.path_at(src, span.start), message)
}

/// Every key and value of the document with its dotted path, to name the key an error
/// span falls on. (toml's error keeps its key path private.)
struct KeyIndex {
    entries: Vec<(Range<usize>, String)>,
    /// Spans of the keys alone (a subset of `entries`).
    keys: Vec<(Range<usize>, String)>,
}

impl KeyIndex {
    fn new(root: &DeTable<'_>) -> Self {
        let mut index = KeyIndex {
            entries: Vec::new(),
            keys: Vec::new(),
        };
        index.table(root, "");
        index
    }

    /// The path of the narrowest key or value containing `offset`; else the last key
    /// before `offset` on the same line (a syntax error after `key =`); else "".
    fn path_at(&self, src: &str, offset: usize) -> String {
        let containing = self
            .entries
            .iter()
            .filter(|(span, _)| span.contains(&offset))
            .min_by_key(|(span, path)| (span.len(), std::cmp::Reverse(path.len())));
        let same_line_key = || {
            self.keys
                .iter()
                .filter(|(span, _)| {
                    span.end <= offset
                        && src.get(span.end..offset).is_some_and(|t| !t.contains('\n'))
                })
                .max_by_key(|(span, _)| span.start)
        };
        containing
            .or_else(same_line_key)
            .map(|(_, path)| path.clone())
            .unwrap_or_default()
    }

    fn table(&mut self, table: &DeTable<'_>, parent: &str) {
        for (key, value) in table.iter() {
            let path = join(parent, key.get_ref());
            self.keys.push((key.span(), path.clone()));
            self.entries.push((key.span(), path.clone()));
            self.value(value, path);
        }
    }

    fn value(&mut self, value: &Spanned<DeValue<'_>>, path: String) {
        match value.get_ref() {
            DeValue::Table(t) => self.table(t, &path),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.value(item, format!("{path}[{i}]"));
                }
            }
            _ => {}
        }
        self.entries.push((value.span(), path));
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn devices_directories_and_huge_files_are_refused() {
        for p in ["/dev/zero", "/dev/null", "/"] {
            let e = load_file(Path::new(p)).map(drop);
            assert!(matches!(e, Err(ConfigError::Io { .. })), "{p}: {e:?}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let big = dir.path().join("big.toml");
        let file = std::fs::File::create(&big).expect("create");
        file.set_len(MAX_CONFIG_BYTES + 1).expect("sparse file");
        let e = load_file(&big).map(drop);
        assert!(
            matches!(&e, Err(ConfigError::Io { source, .. }) if source.kind() == std::io::ErrorKind::InvalidData),
            "{e:?}"
        );
    }

    fn parse_errors(src: &str) -> Vec<String> {
        match load_str(src, Path::new("p.toml")) {
            Err(ConfigError::Parse(d)) => d.iter().map(Diagnostic::to_string).collect(),
            Err(e) => panic!("expected a parse error, got:\n{e}"),
            Ok(_) => panic!("expected a parse error, but the config loaded"),
        }
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let got = parse_errors("[vpp.lb]\nsync-interval = \"30s\"\nflow-timeout = \n");
        // toml's wording for a missing value; the position is the end of line 3.
        assert_eq!(
            got,
            vec![
                "p.toml:3:16: vpp.lb.flow-timeout: string values must be quoted, expected literal string"
            ]
        );
    }

    #[test]
    fn unknown_key_names_its_path() {
        let got = parse_errors(
            "[healthchecks.h]\ntype = \"icmp\"\n\n[backends.a]\naddress = \"192.0.2.1\"\nhealthcheck = \"h\"\ncolour = \"blue\"\n",
        );
        assert_eq!(
            got,
            vec![
                "p.toml:7:1: backends.a.colour: unknown field `colour`, expected one of `address`, `healthcheck`, `enabled`"
            ]
        );
    }

    #[test]
    fn unknown_key_in_an_inline_pool_member() {
        let got = parse_errors(
            "[frontends.f]\naddress = \"192.0.2.1\"\n[[frontends.f.pools]]\nname = \"p\"\nbackends = { a = { wieght = 5 } }\n",
        );
        assert_eq!(
            got,
            vec![
                "p.toml:5:20: frontends.f.pools[0].backends.a.wieght: unknown field `wieght`, expected `weight`"
            ]
        );
    }

    #[test]
    fn wrong_type_names_its_path() {
        let got = parse_errors("[healthchecks.h]\ntype = \"tcp\"\nport = \"80\"\n");
        assert_eq!(
            got,
            vec![
                "p.toml:3:8: healthchecks.h.port: invalid type: string \"80\", expected an integer"
            ]
        );
    }

    #[test]
    fn duration_must_be_a_string() {
        let got = parse_errors("[vpp.lb]\nsync-interval = 30\n");
        assert_eq!(
            got,
            vec![
                "p.toml:2:17: vpp.lb.sync-interval: invalid type: integer `30`, expected a duration string such as \"2s\", \"500ms\" or \"1m30s\""
            ]
        );
    }

    #[test]
    fn missing_required_key() {
        let got = parse_errors("[backends.a]\naddress = \"192.0.2.1\"\n");
        assert_eq!(
            got,
            vec!["p.toml:1:1: backends.a: missing field `healthcheck`"]
        );
    }

    #[test]
    fn duplicate_names_are_a_parse_error() {
        let got =
            parse_errors("[healthchecks.h]\ntype = \"icmp\"\n[healthchecks.h]\ntype = \"tcp\"\n");
        // The second table also repeats `type`, which toml reports as well.
        assert_eq!(
            got,
            vec![
                "p.toml:3:15: healthchecks.h: duplicate key `h` (names must be unique in their section)",
                "p.toml:4:1: duplicate key `type` (names must be unique in their section)",
            ]
        );
    }

    #[test]
    fn several_syntax_errors_are_all_reported() {
        let got = parse_errors("a = \nb = [1,\n[x\n");
        // Recovery yields one error per broken spot, in file order, without repeats.
        let positions: Vec<&str> = got.iter().filter_map(|l| l.split(": ").next()).collect();
        assert_eq!(positions, vec!["p.toml:1:5", "p.toml:3:2", "p.toml:3:3"]);
        assert!(got[0].starts_with("p.toml:1:5: a: "), "{}", got[0]);
        assert!(
            got[2].ends_with("unclosed array, expected `]`"),
            "{}",
            got[2]
        );
    }

    #[test]
    fn exit_codes_by_stage() {
        let parse = load_str("a = ", Path::new("x.toml")).err();
        assert_eq!(parse.as_ref().map(ConfigError::exit_code), Some(1));
        let semantic = load_str(
            "[healthchecker]\ntransition-history = 0\n",
            Path::new("x.toml"),
        )
        .err();
        assert_eq!(semantic.as_ref().map(ConfigError::exit_code), Some(2));
    }

    #[test]
    fn empty_file_is_a_valid_empty_config() {
        let c = load_str("", Path::new("empty.toml")).map_err(|e| e.to_string());
        let c = match c {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert!(c.backends.is_empty() && c.frontends.is_empty() && c.healthchecks.is_empty());
        assert_eq!(c.healthchecker.transition_history, 5);
    }

    #[test]
    fn load_file_reads_from_disk_and_reports_io_errors() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("maglev.toml");
        std::fs::write(&path, "[healthchecks.ping]\ntype = \"icmp\"\n")?;
        let c = load_file(&path)?;
        assert_eq!(c.path, path);
        assert_eq!(
            c.healthchecks["ping"].kind(),
            crate::config::CheckType::Icmp
        );

        let missing = dir.path().join("nope.toml");
        match load_file(&missing) {
            Err(e @ ConfigError::Io { .. }) => {
                assert_eq!(e.exit_code(), 1);
                assert!(
                    e.to_string()
                        .starts_with(&format!("{}: cannot read config", missing.display()))
                );
            }
            other => panic!("expected an I/O error, got {other:?}"),
        }

        std::fs::write(&path, "[backends.x]\naddress = 1\n")?;
        match load_file(&path) {
            Err(ConfigError::Parse(d)) => assert_eq!(d[0].file, path),
            other => panic!("expected a parse error, got {other:?}"),
        }
        Ok(())
    }

    fn example(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("packaging/examples")
            .join(name)
    }

    #[test]
    fn production_example_loads() -> Result<(), ConfigError> {
        let c = load_file(&example("maglev.toml"))?;
        assert!(c.frontends.len() >= 2);
        assert!(c.frontends.values().any(|f| f.address.addr.is_ipv4()));
        assert!(c.frontends.values().any(|f| f.address.addr.is_ipv6()));
        assert!(c.frontends.values().all(|f| f.pools.len() == 2));
        let kinds: std::collections::BTreeSet<&str> =
            c.healthchecks.values().map(|h| h.kind().as_str()).collect();
        for k in ["http", "https", "icmp", "tcp"] {
            assert!(kinds.contains(k), "example lacks a {k} check");
        }
        assert!(c.vpp.lb.ipv4_src_address.is_some() && c.vpp.lb.ipv6_src_address.is_some());
        Ok(())
    }

    #[test]
    fn local_example_loads_and_probes_only_loopback() -> Result<(), ConfigError> {
        let c = load_file(&example("local.toml"))?;
        for name in [
            "self-metrics",
            "self-grpc",
            "lo-icmp4",
            "lo-icmp6",
            "closed-port",
            "wrong-path",
        ] {
            let b = c
                .backends
                .get(name)
                .unwrap_or_else(|| panic!("local.toml lacks backend {name}"));
            assert!(b.address.is_loopback(), "{name} must be on loopback");
        }
        assert!(c.backends.values().all(|b| b.address.is_loopback()));
        let port_of = |b: &str| c.healthcheck_of(b).and_then(|h| h.port());
        assert_eq!(port_of("self-metrics"), Some(9091));
        assert_eq!(port_of("self-grpc"), Some(9090));
        assert_eq!(port_of("closed-port"), Some(9));
        let path_of = |b: &str| {
            c.healthcheck_of(b)
                .and_then(|h| h.http())
                .map(|p| p.path.clone())
        };
        assert_eq!(path_of("self-metrics").as_deref(), Some("/livez"));
        assert_eq!(path_of("wrong-path").as_deref(), Some("/nope"));
        Ok(())
    }
}
