//! Writing the imported configuration as TOML text: tables in the order of docs/design.md §4's
//! example, keys in the order the operator is used to, values quoted by the toml crate.

/// One TOML table: its header and `key = value` lines in output order.
pub(super) struct Table {
    pub(super) header: String,
    /// `[[header]]` (an element of an array of tables) instead of `[header]`.
    pub(super) array: bool,
    /// Nested tables are indented two spaces, like packaging/examples/maglev.toml.
    pub(super) nested: bool,
    pub(super) lines: Vec<(String, String)>,
}

impl Table {
    pub(super) fn new(path: &[&str]) -> Self {
        Table {
            header: path.iter().map(|s| key(s)).collect::<Vec<_>>().join("."),
            array: false,
            nested: false,
            lines: Vec::new(),
        }
    }

    pub(super) fn nested(mut self) -> Self {
        self.nested = true;
        self
    }

    pub(super) fn array(mut self) -> Self {
        self.array = true;
        self
    }

    pub(super) fn set(&mut self, key: &str, value: String) {
        self.lines.push((self::key(key), value));
    }
}

/// A bare key when TOML allows one, else a quoted one.
fn key(k: &str) -> String {
    if !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        k.to_string()
    } else {
        let mut out = String::from("\"");
        for c in k.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }
}

pub(super) fn string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

pub(super) fn strings(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| string(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// `{ a = {}, b = { weight = 50 } }`: the pool members of one pool.
pub(super) fn members(items: &[(String, Option<i64>)]) -> String {
    if items.is_empty() {
        return "{}".to_string();
    }
    let parts: Vec<String> = items
        .iter()
        .map(|(name, weight)| match weight {
            Some(w) => format!("{} = {{ weight = {w} }}", key(name)),
            None => format!("{} = {{}}", key(name)),
        })
        .collect();
    format!("{{ {} }}", parts.join(", "))
}

pub(super) fn render(header_comment: &str, tables: &[Table]) -> String {
    let mut out = String::new();
    for line in header_comment.lines() {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    for t in tables {
        let indent = if t.nested { "  " } else { "" };
        out.push('\n');
        if t.array {
            out.push_str(&format!("{indent}[[{}]]\n", t.header));
        } else {
            out.push_str(&format!("{indent}[{}]\n", t.header));
        }
        for (k, v) in &t.lines {
            out.push_str(&format!("{indent}{k} = {v}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_and_escaped_as_toml() {
        for s in ["plain", "a\"b\\c", "it's \"both\"", "tab\there", "é ü"] {
            let doc = format!("x = {}\n{} = 1\n", string(s), key(s));
            let parsed: toml::Table = match toml::from_str(&doc) {
                Ok(t) => t,
                Err(e) => panic!("{doc}: {e}"),
            };
            assert_eq!(parsed.get("x").and_then(|v| v.as_str()), Some(s), "{doc}");
            assert!(parsed.contains_key(s), "{doc}");
        }
        assert_eq!(
            strings(&["200".into(), "300-399".into()]),
            r#"["200", "300-399"]"#
        );
    }

    #[test]
    fn members_are_an_inline_table() {
        assert_eq!(members(&[]), "{}");
        assert_eq!(
            members(&[("a".into(), None), ("b c".into(), Some(50))]),
            r#"{ a = {}, "b c" = { weight = 50 } }"#
        );
    }

    #[test]
    fn tables_render_with_headers_and_nesting() {
        let mut t = Table::new(&["frontends", "web", "pools"]).array().nested();
        t.set("name", string("primary"));
        let out = render("hello", &[t]);
        assert_eq!(
            out,
            "# hello\n\n  [[frontends.web.pools]]\n  name = \"primary\"\n"
        );
    }
}
