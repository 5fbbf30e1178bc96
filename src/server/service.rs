//! `maglev.v1.Maglev` against the running daemon: reads go through `Checker::read` and the
//! pure mapping in `convert`; actions go through the checker's operator API; reload is the
//! same reload SIGHUP uses (`ConfigControl::reload`).

use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;
use tonic::{Request, Response, Status};

use super::Handles;
use super::{convert, vpp, watch as events};
use crate::checker::{CheckerError, OperatorAction};
use crate::health::{ActionError, BackendHealth};
use crate::proto::{self, maglev_server::Maglev};

pub struct MaglevService {
    handles: Arc<Handles>,
    /// Turns true when the daemon shuts down: ends every WatchEvents stream.
    shutdown: watch::Receiver<bool>,
}

impl MaglevService {
    pub fn new(handles: Arc<Handles>, shutdown: watch::Receiver<bool>) -> Self {
        MaglevService { handles, shutdown }
    }

    fn backend(&self, name: &str) -> Result<proto::Backend, Status> {
        self.handles.checker.read(|st| match st.backends.get(name) {
            Some(e) => Ok(convert::backend(&st.config, name, e)),
            None => Err(not_found("backend", name, st.backends.keys())),
        })
    }

    fn frontend(&self, name: &str) -> Result<proto::Frontend, Status> {
        self.handles.checker.read(|st| match st.frontend(name) {
            Some(view) => Ok(convert::frontend(st, view)),
            None => Err(not_found("frontend", name, st.config.frontends.keys())),
        })
    }

    /// Runs an operator action and answers with the backend's new state, read under the
    /// same lock.
    fn act(
        &self,
        request: Request<proto::BackendActionRequest>,
        action: OperatorAction,
    ) -> Result<Response<proto::Backend>, Status> {
        let name = request.into_inner().name;
        non_empty("backend name", &name)?;
        self.handles
            .checker
            .act(&name, action, |config, e| {
                convert::backend(config, &name, e)
            })
            .map(Response::new)
            .map_err(checker_status)
    }
}

fn non_empty(what: &str, value: &str) -> Result<(), Status> {
    if value.is_empty() {
        Err(Status::invalid_argument(format!("{what} is empty")))
    } else {
        Ok(())
    }
}

/// NOT_FOUND for an unknown `name`, listing the `known` ones; bounded like every message
/// that quotes a request.
pub(super) fn not_found<'a>(
    kind: &str,
    name: &str,
    known: impl Iterator<Item = &'a String>,
) -> Status {
    let known: Vec<String> = known.cloned().collect();
    Status::not_found(bounded(format!(
        "unknown {kind} {name:?} (known: {})",
        convert::known_list(&known)
    )))
}

/// Longest status message sent. Messages quote names from the request, and the message
/// travels in an HTTP/2 trailer: a 1 MiB name echoed back overflowed the client's header
/// limit and took the whole connection down.
const MAX_STATUS_MESSAGE: usize = 1024;

/// `message`, cut at a char boundary to at most [`MAX_STATUS_MESSAGE`] bytes.
fn bounded(mut message: String) -> String {
    if message.len() > MAX_STATUS_MESSAGE {
        let mut end = MAX_STATUS_MESSAGE - 3;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("...");
    }
    message
}

/// The status code of a refused operator action.
pub fn checker_status(e: CheckerError) -> Status {
    let message = bounded(e.to_string());
    match e {
        CheckerError::NotFound { .. } => Status::not_found(message),
        CheckerError::InvalidArgument(_)
        | CheckerError::Action {
            source: ActionError::InvalidWeight { .. },
            ..
        } => Status::invalid_argument(message),
        CheckerError::Action { .. } => Status::failed_precondition(message),
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Maglev for MaglevService {
    async fn list_frontends(
        &self,
        _: Request<proto::ListFrontendsRequest>,
    ) -> Reply<proto::ListFrontendsResponse> {
        let frontends = self.handles.checker.read(convert::frontends);
        Ok(Response::new(proto::ListFrontendsResponse { frontends }))
    }

    async fn get_frontend(
        &self,
        request: Request<proto::GetFrontendRequest>,
    ) -> Reply<proto::Frontend> {
        let name = request.into_inner().name;
        non_empty("frontend name", &name)?;
        self.frontend(&name).map(Response::new)
    }

    async fn list_backends(
        &self,
        _: Request<proto::ListBackendsRequest>,
    ) -> Reply<proto::ListBackendsResponse> {
        let backends = self.handles.checker.read(convert::backends);
        Ok(Response::new(proto::ListBackendsResponse { backends }))
    }

    async fn get_backend(
        &self,
        request: Request<proto::GetBackendRequest>,
    ) -> Reply<proto::Backend> {
        let name = request.into_inner().name;
        non_empty("backend name", &name)?;
        self.backend(&name).map(Response::new)
    }

    async fn pause_backend(
        &self,
        request: Request<proto::BackendActionRequest>,
    ) -> Reply<proto::Backend> {
        self.act(request, BackendHealth::pause)
    }

    async fn resume_backend(
        &self,
        request: Request<proto::BackendActionRequest>,
    ) -> Reply<proto::Backend> {
        self.act(request, BackendHealth::resume)
    }

    async fn enable_backend(
        &self,
        request: Request<proto::BackendActionRequest>,
    ) -> Reply<proto::Backend> {
        self.act(request, BackendHealth::enable)
    }

    async fn disable_backend(
        &self,
        request: Request<proto::BackendActionRequest>,
    ) -> Reply<proto::Backend> {
        self.act(request, BackendHealth::disable)
    }

    async fn list_health_checks(
        &self,
        _: Request<proto::ListHealthChecksRequest>,
    ) -> Reply<proto::ListHealthChecksResponse> {
        let config = self.handles.control.config();
        Ok(Response::new(proto::ListHealthChecksResponse {
            healthchecks: convert::healthchecks(&config),
        }))
    }

    async fn get_health_check(
        &self,
        request: Request<proto::GetHealthCheckRequest>,
    ) -> Reply<proto::HealthCheck> {
        let name = request.into_inner().name;
        non_empty("healthcheck name", &name)?;
        let config = self.handles.control.config();
        match config.healthchecks.get(&name) {
            Some(hc) => Ok(Response::new(convert::healthcheck(&config, hc))),
            None => Err(not_found("healthcheck", &name, config.healthchecks.keys())),
        }
    }

    async fn set_frontend_pool_backend_weight(
        &self,
        request: Request<proto::SetFrontendPoolBackendWeightRequest>,
    ) -> Reply<proto::Frontend> {
        let r = request.into_inner();
        non_empty("frontend name", &r.frontend)?;
        non_empty("pool name", &r.pool)?;
        non_empty("backend name", &r.backend)?;
        self.handles
            .checker
            .set_weight(&r.frontend, &r.pool, &r.backend, r.weight)
            .map_err(checker_status)?;
        self.frontend(&r.frontend).map(Response::new)
    }

    type WatchEventsStream = events::EventStream;

    async fn watch_events(
        &self,
        request: Request<proto::WatchEventsRequest>,
    ) -> Reply<Self::WatchEventsStream> {
        let filter = events::Filter::from_request(request.get_ref());
        // Subscribe first, then take the replay: nothing can fall in between.
        let rx = self.handles.bus.subscribe();
        let replay = events::initial_events(&self.handles.checker, &filter);
        Ok(Response::new(events::spawn(
            rx,
            replay,
            filter,
            self.shutdown.clone(),
        )))
    }

    async fn check_config(
        &self,
        request: Request<proto::CheckConfigRequest>,
    ) -> Reply<proto::ConfigResult> {
        let path = request.into_inner().path;
        let path = if path.is_empty() {
            self.handles.control.config_path().to_path_buf()
        } else {
            path.into()
        };
        let result = match self.handles.control.check_config(Some(Path::new(&path))) {
            Ok((_, diff)) => convert::config_ok(&path, &diff, false),
            Err(e) => convert::config_error(&path, &e),
        };
        Ok(Response::new(result))
    }

    async fn reload_config(
        &self,
        _: Request<proto::ReloadConfigRequest>,
    ) -> Reply<proto::ConfigResult> {
        let path = self.handles.control.config_path().to_path_buf();
        tracing::info!("ReloadConfig RPC: reloading {}", path.display());
        let result = match self.handles.control.reload().await {
            Ok(diff) => convert::config_ok(&path, &diff, true),
            Err(e) => convert::config_error(&path, &e),
        };
        Ok(Response::new(result))
    }

    async fn get_vpp_info(&self, _: Request<proto::GetVppInfoRequest>) -> Reply<proto::VppInfo> {
        vpp::info(&self.handles).map(Response::new)
    }

    async fn get_vpplb_state(
        &self,
        _: Request<proto::GetVpplbStateRequest>,
    ) -> Reply<proto::VpplbState> {
        vpp::lb_state(&self.handles).await.map(Response::new)
    }

    async fn sync_vpplb_state(
        &self,
        request: Request<proto::SyncVpplbStateRequest>,
    ) -> Reply<proto::SyncVpplbStateResponse> {
        vpp::sync(&self.handles, &request.into_inner().frontend)
            .await
            .map(Response::new)
    }

    async fn get_vpplb_counters(
        &self,
        _: Request<proto::GetVpplbCountersRequest>,
    ) -> Reply<proto::VpplbCounters> {
        vpp::counters(&self.handles).map(Response::new)
    }

    async fn get_version(&self, _: Request<proto::GetVersionRequest>) -> Reply<proto::VersionInfo> {
        Ok(Response::new(convert::version()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_the_documented_codes() {
        let nf = checker_status(CheckerError::NotFound {
            kind: "backend",
            name: "x".into(),
            known: "a, b".into(),
        });
        assert_eq!(nf.code(), tonic::Code::NotFound);
        assert!(nf.message().contains("known: a, b"));
        let disabled = checker_status(CheckerError::Action {
            name: "a".into(),
            source: ActionError::Disabled,
        });
        assert_eq!(disabled.code(), tonic::Code::FailedPrecondition);
        let removed = checker_status(CheckerError::Action {
            name: "a".into(),
            source: ActionError::Removed,
        });
        assert_eq!(removed.code(), tonic::Code::FailedPrecondition);
        let weight = checker_status(CheckerError::Action {
            name: "a".into(),
            source: ActionError::InvalidWeight { weight: 101 },
        });
        assert_eq!(weight.code(), tonic::Code::InvalidArgument);
        let bad = checker_status(CheckerError::InvalidArgument("weight 101".into()));
        assert_eq!(bad.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            non_empty("backend name", "").map_err(|s| s.code()),
            Err(tonic::Code::InvalidArgument)
        );
    }

    #[test]
    fn huge_names_are_not_echoed_whole() {
        let name = "\u{e9}".repeat(600_000);
        let s = not_found("backend", &name, std::iter::empty());
        assert!(
            s.message().len() <= MAX_STATUS_MESSAGE,
            "{}",
            s.message().len()
        );
        assert!(s.message().starts_with("unknown backend"));
        let s = checker_status(CheckerError::NotFound {
            kind: "backend",
            name,
            known: String::new(),
        });
        assert!(s.message().len() <= MAX_STATUS_MESSAGE);
        assert_eq!(bounded("short".into()), "short");
    }
}
