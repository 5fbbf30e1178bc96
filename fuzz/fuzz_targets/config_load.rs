//! Config loading on arbitrary text: never panics; a config that loads is identical to
//! itself under `diff`; errors render (file:line:column) without panicking.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use maglev::config;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match config::load_str(&text, Path::new("fuzz.toml")) {
        Ok(c) => {
            let d = config::diff(&c, &c);
            assert!(d.is_empty(), "a config differs from itself: {d:?}");
        }
        Err(e) => {
            let _ = e.exit_code();
            for line in e.lines() {
                assert!(!line.is_empty());
            }
        }
    }
});
