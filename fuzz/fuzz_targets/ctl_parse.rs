//! The ctl command grammar on arbitrary lines: `parse`, `help_at` and `complete` never
//! panic, a complete line never lacks a slot value, and every byte position they report is
//! inside the line on a char boundary.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maglev::ctl::grammar::{
    NameKind, NameSource, ParseError, Scope, complete, help_at, parse, tokenize,
};

/// A few names of each kind, including ones that share prefixes and odd characters.
struct Names;

impl NameSource for Names {
    fn names(&self, kind: NameKind, _scope: Scope<'_>) -> Vec<String> {
        let base: &[&str] = match kind {
            NameKind::Backend => &["web1", "web10", "db-ü"],
            NameKind::Frontend => &["vip4", "vip6"],
            NameKind::Pool => &["primary", "backup"],
            NameKind::HealthCheck => &["livez", "tcp"],
        };
        base.iter().map(|s| (*s).to_string()).collect()
    }
}

fn assert_position(line: &str, pos: usize, what: &str) {
    assert!(
        pos <= line.len(),
        "{what}: position {pos} past the end of {line:?}"
    );
    assert!(
        line.is_char_boundary(pos),
        "{what}: position {pos} inside a character of {line:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    let line = line.as_ref();

    for token in tokenize(line) {
        assert_position(line, token.pos, "token");
        assert_eq!(
            line.get(token.pos..token.pos + token.text.len()),
            Some(token.text)
        );
    }
    if let Err(e) = parse(line) {
        // A line the tree accepts always carries every value its action needs.
        assert!(!matches!(e, ParseError::Internal { .. }), "{e:?} for {line:?}");
        // An incomplete command points where the missing word would go, which may be one
        // past the end of the line; every other position is inside it.
        if e.pos() > line.len() {
            assert!(
                matches!(e, ParseError::Incomplete { .. }),
                "{e:?} past the end"
            );
            assert_eq!(e.pos(), line.len() + 1, "{e:?}");
        } else {
            assert_position(line, e.pos(), "parse error");
        }
        let _ = e.pointed(line);
        let _ = e.to_string();
    }
    if let Err(e) = help_at(line) {
        assert_position(line, e.pos(), "help error");
    }
    // TAB at the end, at up to 16 char boundaries, and at a few positions that need not be
    // boundaries (the caller passes the cursor; it must not be trusted blindly).
    let boundaries: Vec<usize> = line.char_indices().map(|(i, _)| i).collect();
    let step = boundaries.len().div_ceil(16).max(1);
    let mut cursors: Vec<usize> = boundaries.into_iter().step_by(step).collect();
    cursors.extend([line.len(), 1, 2, 3, line.len() + 1, usize::MAX]);
    for pos in cursors {
        let (start, candidates) = complete(line, pos, &Names);
        assert_position(line, start, "completion start");
        if pos <= line.len() && line.is_char_boundary(pos) {
            assert!(
                start <= pos,
                "completion starts at {start}, after the cursor {pos}"
            );
        }
        for c in &candidates {
            assert!(!c.text.is_empty(), "empty completion candidate");
        }
    }
});
