//! Admin actions: the JSON a page POSTs, and the gRPC call each one makes.

use serde::{Deserialize, Serialize};

use crate::ctl::client::{Client, CtlError};
use crate::proto;

/// `{"daemon": "lb1", "action": "disable", "backend": "web1"}` and friends.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Action {
    Pause {
        daemon: String,
        backend: String,
    },
    Resume {
        daemon: String,
        backend: String,
    },
    Enable {
        daemon: String,
        backend: String,
    },
    Disable {
        daemon: String,
        backend: String,
    },
    SetWeight {
        daemon: String,
        frontend: String,
        pool: String,
        backend: String,
        weight: u32,
    },
    /// All frontends when `frontend` is absent or empty.
    Sync {
        daemon: String,
        #[serde(default)]
        frontend: String,
    },
}

/// The answer to the page.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub ok: bool,
    /// One line for the event panel: what the daemon said, or its error.
    pub message: String,
}

impl Action {
    pub fn daemon(&self) -> &str {
        match self {
            Action::Pause { daemon, .. }
            | Action::Resume { daemon, .. }
            | Action::Enable { daemon, .. }
            | Action::Disable { daemon, .. }
            | Action::SetWeight { daemon, .. }
            | Action::Sync { daemon, .. } => daemon,
        }
    }

    /// What the operator asked for, in words.
    pub fn describe(&self) -> String {
        match self {
            Action::Pause { backend, .. } => format!("pause backend {backend}"),
            Action::Resume { backend, .. } => format!("resume backend {backend}"),
            Action::Enable { backend, .. } => format!("enable backend {backend}"),
            Action::Disable { backend, .. } => format!("disable backend {backend}"),
            Action::SetWeight {
                frontend,
                pool,
                backend,
                weight,
                ..
            } => {
                format!("set frontend {frontend} pool {pool} backend {backend} weight {weight}")
            }
            Action::Sync { frontend, .. } if frontend.is_empty() => "sync vpp lb state".to_string(),
            Action::Sync { frontend, .. } => format!("sync vpp lb state {frontend}"),
        }
    }

    /// Runs the action; Ok is the daemon's reply in words, Err its error.
    pub async fn run(&self, client: &Client) -> Result<String, CtlError> {
        let mut rpc = client.rpc.clone();
        let req = |name: &String| proto::BackendActionRequest { name: name.clone() };
        let state = |b: proto::Backend| {
            let word = proto::BackendState::try_from(b.state)
                .map(|s| super::view::enum_word(s.as_str_name(), "BACKEND_STATE_"))
                .unwrap_or_default();
            // A paused backend can also be disabled; "disabled (disabled)" says nothing.
            let note = if b.enabled || word == "disabled" {
                ""
            } else {
                " (disabled)"
            };
            format!("backend {} is now {word}{note}", b.name)
        };
        match self {
            Action::Pause { backend, .. } => client
                .call(rpc.pause_backend(req(backend)))
                .await
                .map(state),
            Action::Resume { backend, .. } => client
                .call(rpc.resume_backend(req(backend)))
                .await
                .map(state),
            Action::Enable { backend, .. } => client
                .call(rpc.enable_backend(req(backend)))
                .await
                .map(state),
            Action::Disable { backend, .. } => client
                .call(rpc.disable_backend(req(backend)))
                .await
                .map(state),
            Action::SetWeight {
                frontend,
                pool,
                backend,
                weight,
                ..
            } => {
                let f = client
                    .call(rpc.set_frontend_pool_backend_weight(
                        proto::SetFrontendPoolBackendWeightRequest {
                            frontend: frontend.clone(),
                            pool: pool.clone(),
                            backend: backend.clone(),
                            weight: *weight,
                        },
                    ))
                    .await?;
                let effective = f
                    .pools
                    .iter()
                    .filter(|p| &p.name == pool)
                    .flat_map(|p| &p.backends)
                    .find(|b| &b.name == backend)
                    .map(|b| format!(" (effective {})", b.effective_weight))
                    .unwrap_or_default();
                Ok(format!(
                    "frontend {frontend} pool {pool} backend {backend} weight {weight}{effective}"
                ))
            }
            Action::Sync { frontend, .. } => {
                let r = client
                    .call(rpc.sync_vpplb_state(proto::SyncVpplbStateRequest {
                        frontend: frontend.clone(),
                    }))
                    .await?;
                let what = if frontend.is_empty() {
                    "all frontends".to_string()
                } else {
                    frontend.clone()
                };
                Ok(format!(
                    "synced {what}: {} operation{}{}",
                    r.operations.len(),
                    if r.operations.len() == 1 { "" } else { "s" },
                    if r.dry_run { " (dry run)" } else { "" }
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_page_json() {
        let a: Action =
            serde_json::from_str(r#"{"action":"disable","daemon":"lb1","backend":"web1"}"#)
                .expect("disable");
        assert_eq!(
            a,
            Action::Disable {
                daemon: "lb1".into(),
                backend: "web1".into()
            }
        );
        assert_eq!(a.describe(), "disable backend web1");
        let w: Action = serde_json::from_str(
            r#"{"action":"set-weight","daemon":"lb1","frontend":"web","pool":"primary","backend":"b","weight":30}"#,
        )
        .expect("weight");
        assert_eq!(w.daemon(), "lb1");
        let s: Action = serde_json::from_str(r#"{"action":"sync","daemon":"lb1"}"#).expect("sync");
        assert_eq!(s.describe(), "sync vpp lb state");
        assert!(serde_json::from_str::<Action>(r#"{"action":"reboot","daemon":"lb1"}"#).is_err());
        assert!(serde_json::from_str::<Action>(r#"{"action":"pause","daemon":"lb1"}"#).is_err());
    }
}
