//! The page's files, embedded in the binary (no build step, no network), each with an ETag.

use std::sync::OnceLock;

pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("assets/index.html"),
    },
    Asset {
        name: "login.html",
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("assets/login.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/app.js"),
    },
    Asset {
        name: "render.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/render.js"),
    },
    Asset {
        name: "format.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/format.js"),
    },
    Asset {
        name: "login.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/login.js"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("assets/style.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("assets/favicon.svg"),
    },
];

/// The asset called `name` and its ETag.
pub fn get(name: &str) -> Option<(&'static Asset, &'static str)> {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| ASSETS.iter().map(|a| etag(a.body)).collect());
    let i = ASSETS.iter().position(|a| a.name == name)?;
    Some((&ASSETS[i], tags.get(i)?.as_str()))
}

/// A strong ETag: FNV-1a of the bytes (content-addressed, stable across runs).
fn etag(body: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_distinct_etag() {
        let tags: std::collections::HashSet<_> = ASSETS
            .iter()
            .filter_map(|a| get(a.name))
            .map(|(_, t)| t)
            .collect();
        assert_eq!(tags.len(), ASSETS.len());
        assert!(get("nope.js").is_none());
        assert_ne!(etag(b"a"), etag(b"b"));
    }

    #[test]
    fn pages_have_no_inline_script_and_no_external_origin() {
        let handler = regex::Regex::new(r"\son[a-z]+\s*=").expect("regex");
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".html")) {
            let text = String::from_utf8_lossy(a.body);
            for tag in text.split("<script").skip(1) {
                assert!(
                    tag.trim_start()
                        .starts_with("type=\"module\" src=\"/assets/"),
                    "{}: {tag}",
                    a.name
                );
            }
            assert!(
                !text.contains("http://") && !text.contains("https://"),
                "{}",
                a.name
            );
            assert!(
                !text.contains("style=\"") && !handler.is_match(&text),
                "{}",
                a.name
            );
        }
    }
}
