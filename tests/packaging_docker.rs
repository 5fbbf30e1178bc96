//! The container files, checked without Docker: the Dockerfile cross-compiles in a stage
//! on the build platform and its final stage runs nothing (so no emulation is needed for
//! either architecture); every Compose service is opt-in through a profile; and
//! `.env.example` documents exactly the variables the Compose file reads.

use std::collections::BTreeSet;
use std::path::Path;

use saphyr::{LoadableYamlNode, Yaml};

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Dockerfile instructions (continuation lines joined), upper-cased keyword first.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if current.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        current.push_str(t.trim_end_matches('\\'));
        current.push(' ');
        if !t.ends_with('\\') {
            let (kw, rest) = current
                .trim()
                .split_once(' ')
                .unwrap_or((current.trim(), ""));
            out.push((kw.to_uppercase(), rest.to_string()));
            current.clear();
        }
    }
    out
}

#[test]
fn dockerfile_cross_compiles_and_the_final_stage_runs_nothing() {
    let ins = instructions(&read("packaging/docker/Dockerfile"));
    let froms: Vec<usize> = ins
        .iter()
        .enumerate()
        .filter(|(_, (k, _))| k == "FROM")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(froms.len(), 2, "a build stage and a final stage");
    let (build, last) = (froms[0], froms[1]);
    assert!(
        ins[build].1.starts_with("--platform=$BUILDPLATFORM "),
        "the build stage runs natively: {:?}",
        ins[build]
    );
    let build_stage = &ins[build..last];
    assert!(
        build_stage
            .iter()
            .any(|(k, v)| k == "ARG" && v == "TARGETARCH")
    );
    let runs: String = build_stage
        .iter()
        .filter(|(k, _)| k == "RUN")
        .map(|(_, v)| v.as_str())
        .collect();
    for needle in [
        "$TARGETARCH",
        "rustup target add",
        "--target \"$triple\"",
        "setcap cap_net_raw+ep",
    ] {
        assert!(runs.contains(needle), "build stage lacks {needle}");
    }
    let final_stage = &ins[last..];
    assert!(
        !final_stage.iter().any(|(k, _)| k == "RUN"),
        "a RUN in the final stage would need emulation for a foreign architecture"
    );
    assert!(
        final_stage
            .iter()
            .any(|(k, v)| k == "USER" && v == "10001:10001")
    );
}

fn compose() -> Yaml<'static> {
    let text: &'static str =
        Box::leak(read("packaging/docker/docker-compose.yaml").into_boxed_str());
    let mut docs = Yaml::load_from_str(text).expect("docker-compose.yaml is YAML");
    assert_eq!(docs.len(), 1);
    docs.remove(0)
}

#[test]
fn every_compose_service_is_behind_a_profile() {
    let doc = compose();
    let services = doc["services"].as_mapping().expect("services");
    let mut profiles = BTreeSet::new();
    for (name, svc) in services {
        let name = name.as_str().unwrap_or("?");
        let list = svc["profiles"]
            .as_sequence()
            .unwrap_or_else(|| panic!("service {name} has no profiles: it would always start"));
        for p in list {
            profiles.insert(p.as_str().unwrap_or_default().to_string());
        }
    }
    assert_eq!(
        profiles,
        BTreeSet::from(["daemon".to_string(), "web".to_string()])
    );
}

/// `${NAME}` / `${NAME:-default}` references.
fn variables(text: &str) -> BTreeSet<String> {
    text.match_indices("${")
        .filter_map(|(i, _)| {
            let rest = &text[i + 2..];
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
            Some(rest[..end].to_string())
        })
        .collect()
}

#[test]
fn env_example_documents_the_compose_variables() {
    let used = variables(&read("packaging/docker/docker-compose.yaml"));
    let documented: BTreeSet<String> = read("packaging/docker/.env.example")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_string()))
        .collect();
    let missing: Vec<_> = used.difference(&documented).collect();
    assert!(missing.is_empty(), "not in .env.example: {missing:?}");
    // Extra entries are fine only if the daemon reads them (MAGLEV_* flags).
    for extra in documented.difference(&used) {
        assert!(extra.starts_with("MAGLEV_"), "{extra} is read by nothing");
    }
}

/// `packaging/docker/build-local.sh` (a build without Docker Hub) makes the Dockerfile's base
/// images locally under the names the Dockerfile asks for, which it reads from the FROM lines.
#[test]
fn build_local_makes_the_base_images_the_dockerfile_names() {
    let from: Vec<String> = instructions(&read("packaging/docker/Dockerfile"))
        .into_iter()
        .filter(|(k, _)| k == "FROM")
        .filter_map(|(_, v)| {
            v.split_whitespace()
                .find(|w| !w.starts_with("--"))
                .map(str::to_string)
        })
        .collect();
    let out = std::process::Command::new("sh")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/docker/build-local.sh"))
        .arg("--print-bases")
        .output()
        .expect("run build-local.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), from.join(" "));
}
