//! Running one parsed command against the daemon and printing its result (text or JSON).
//! Shared by the one-shot runner and the shell.

use std::future::Future;
use std::io::Write;

use serde::Serialize;
use serde_json::{Value, json};

use super::client::{Client, CtlError};
use super::grammar::{BackendAction, Command, WatchSpec, usage_lines};
use super::{json as j, render};
use crate::proto::{
    BackendActionRequest, CheckConfigRequest, GetBackendRequest, GetFrontendRequest,
    GetHealthCheckRequest, GetVersionRequest, GetVppInfoRequest, GetVpplbCountersRequest,
    GetVpplbStateRequest, ListBackendsRequest, ListFrontendsRequest, ListHealthChecksRequest,
    LogLevel as ProtoLevel, ReloadConfigRequest, SetFrontendPoolBackendWeightRequest,
    SyncVpplbStateRequest, VpplbCounters, WatchEventsRequest, event,
};

/// How a command ended, when the daemon answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// The answer says "no" (an invalid config): printed, and exit 1.
    Failed,
    Quit,
}

/// Output settings and what the shell remembers between commands.
#[derive(Debug, Clone)]
pub struct Session {
    pub json: bool,
    pub color: bool,
    /// The last counters sample, for rates on the next `show vpp lb counters`.
    pub last_counters: Option<VpplbCounters>,
}

impl Session {
    pub fn new(json: bool, color: bool) -> Session {
        Session {
            json,
            color,
            last_counters: None,
        }
    }

    fn look(&self) -> render::Look {
        render::Look {
            color: self.color,
            now: std::time::SystemTime::now(),
        }
    }

    fn emit(&self, out: &mut dyn Write, text: &str, doc: Value) -> Result<(), CtlError> {
        if self.json {
            self.emit_with(out, String::new, || doc)
        } else {
            write_all(out, text.as_bytes())
        }
    }

    /// Like `emit`, but builds only the form the session prints: for long lists the other
    /// one is not free.
    fn emit_with<D: Serialize>(
        &self,
        out: &mut dyn Write,
        text: impl FnOnce() -> String,
        doc: impl FnOnce() -> D,
    ) -> Result<(), CtlError> {
        if self.json {
            // Straight to the output through a buffer: a whole document of 10,000
            // backends is 9 MB.
            let mut w = std::io::BufWriter::with_capacity(64 * 1024, &mut *out);
            serde_json::to_writer_pretty(&mut w, &doc())
                .map_err(std::io::Error::from)
                .and_then(|()| w.write_all(b"\n"))
                .and_then(|()| w.flush())
                .map_err(output_error)
        } else {
            write_all(out, text().as_bytes())
        }
    }

    /// Runs every command but `watch events` (see `watch`).
    pub async fn execute(
        &mut self,
        client: &Client,
        command: &Command,
        out: &mut dyn Write,
    ) -> Result<Outcome, CtlError> {
        let look = self.look();
        let mut rpc = client.rpc.clone();
        match command {
            Command::ShowVersion => {
                let v = client.call(rpc.get_version(GetVersionRequest {})).await?;
                let ctl = crate::version::long();
                self.emit(out, &render::version(&ctl, &v, &look), j::version(&ctl, &v))?;
            }
            Command::ShowFrontends(None) => {
                let r = client
                    .call(rpc.list_frontends(ListFrontendsRequest {}))
                    .await?;
                let doc =
                    json!({ "frontends": r.frontends.iter().map(j::frontend).collect::<Vec<_>>() });
                self.emit(out, &render::frontends(&r.frontends, &look), doc)?;
            }
            Command::ShowFrontends(Some(name)) => {
                let req = GetFrontendRequest { name: name.clone() };
                let f = client.call(rpc.get_frontend(req)).await?;
                self.emit(out, &render::frontend_detail(&f, &look), j::frontend(&f))?;
            }
            Command::ShowBackends(None) => {
                let r = client
                    .call(rpc.list_backends(ListBackendsRequest {}))
                    .await?;
                self.emit_with(
                    out,
                    || render::backends(&r.backends, &look),
                    || j::BackendsDoc(&r.backends),
                )?;
            }
            Command::ShowBackends(Some(name)) => {
                let req = GetBackendRequest { name: name.clone() };
                let b = client.call(rpc.get_backend(req)).await?;
                self.emit(out, &render::backend_detail(&b, &look), j::backend(&b))?;
            }
            Command::ShowHealthChecks(None) => {
                let r = client
                    .call(rpc.list_health_checks(ListHealthChecksRequest {}))
                    .await?;
                let doc = json!({ "healthchecks": r.healthchecks.iter().map(j::healthcheck).collect::<Vec<_>>() });
                self.emit(out, &render::healthchecks(&r.healthchecks, &look), doc)?;
            }
            Command::ShowHealthChecks(Some(name)) => {
                let req = GetHealthCheckRequest { name: name.clone() };
                let h = client.call(rpc.get_health_check(req)).await?;
                self.emit(
                    out,
                    &render::healthcheck_detail(&h, &look),
                    j::healthcheck(&h),
                )?;
            }
            Command::ShowVppInfo => {
                let v = client.call(rpc.get_vpp_info(GetVppInfoRequest {})).await?;
                self.emit(out, &render::vpp_info(&v, &look), j::vpp_info(&v))?;
            }
            Command::ShowVppLbState => {
                let s = client
                    .call(rpc.get_vpplb_state(GetVpplbStateRequest {}))
                    .await?;
                self.emit(out, &render::vpp_lb_state(&s, &look), j::vpp_lb_state(&s))?;
            }
            Command::ShowVppLbCounters => {
                let c = client
                    .call(rpc.get_vpplb_counters(GetVpplbCountersRequest {}))
                    .await?;
                let text = render::vpp_lb_counters(&c, self.last_counters.as_ref(), &look);
                self.emit(out, &text, j::vpp_lb_counters(&c))?;
                self.last_counters = Some(c);
            }
            Command::SyncVppLbState(frontend) => {
                let req = SyncVpplbStateRequest {
                    frontend: frontend.clone().unwrap_or_default(),
                };
                let r = client.call(rpc.sync_vpplb_state(req)).await?;
                self.emit(out, &render::sync_result(&r), j::sync_result(&r))?;
            }
            Command::SetBackend { name, action } => {
                let req = BackendActionRequest { name: name.clone() };
                let b = match action {
                    BackendAction::Pause => client.call(rpc.pause_backend(req)).await?,
                    BackendAction::Resume => client.call(rpc.resume_backend(req)).await?,
                    BackendAction::Enable => client.call(rpc.enable_backend(req)).await?,
                    BackendAction::Disable => client.call(rpc.disable_backend(req)).await?,
                };
                let text = render::backends(std::slice::from_ref(&b), &look);
                self.emit(out, &text, j::backend(&b))?;
            }
            Command::SetWeight {
                frontend,
                pool,
                backend,
                weight,
            } => {
                let req = SetFrontendPoolBackendWeightRequest {
                    frontend: frontend.clone(),
                    pool: pool.clone(),
                    backend: backend.clone(),
                    weight: *weight,
                };
                let f = client
                    .call(rpc.set_frontend_pool_backend_weight(req))
                    .await?;
                self.emit(out, &render::frontend_detail(&f, &look), j::frontend(&f))?;
            }
            Command::ConfigCheck | Command::ConfigReload => {
                let reload = matches!(command, Command::ConfigReload);
                let r = if reload {
                    client
                        .call(rpc.reload_config(ReloadConfigRequest {}))
                        .await?
                } else {
                    let req = CheckConfigRequest {
                        path: String::new(),
                    };
                    client.call(rpc.check_config(req)).await?
                };
                let text = render::config_result(&r, reload, &look);
                self.emit(out, &text, j::config_result(&r))?;
                if !r.ok {
                    return Ok(Outcome::Failed);
                }
            }
            Command::Help => self.help(out)?,
            Command::Quit => return Ok(Outcome::Quit),
            Command::WatchEvents(_) => {
                return Err(CtlError::Local(
                    "watch events needs a stop signal: use Session::watch".to_string(),
                ));
            }
        }
        Ok(Outcome::Done)
    }

    /// The `help` listing (needs no daemon).
    pub fn help(&self, out: &mut dyn Write) -> Result<(), CtlError> {
        let lines = usage_lines();
        let width = lines.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        let mut text = String::new();
        for (syntax, help) in &lines {
            text.push_str(&format!("{syntax:<width$}  {help}\n"));
        }
        text.push_str(
            "\nAny unique prefix of a keyword works (sh ba = show backends); \
             ? lists what may come next, TAB completes.\n",
        );
        let doc = json!({
            "commands": lines
                .iter()
                .map(|(syntax, help)| json!({ "syntax": syntax, "help": help }))
                .collect::<Vec<_>>()
        });
        self.emit(out, &text, doc)
    }

    /// Streams events until `spec.num` events (the initial replay of frontend states does
    /// not count), the daemon ends the stream, or `stop` resolves. `line_end` is "\r\n"
    /// while the terminal is in raw mode.
    pub async fn watch(
        &self,
        client: &Client,
        spec: &WatchSpec,
        out: &mut dyn Write,
        line_end: &str,
        stop: impl Future<Output = ()>,
    ) -> Result<Outcome, CtlError> {
        let spec = spec.effective();
        let request = WatchEventsRequest {
            log: spec.log,
            log_level: watch_level(&spec) as i32,
            backend: spec.backend,
            frontend: spec.frontend,
            backend_names: Vec::new(),
            frontend_names: Vec::new(),
        };
        let mut rpc = client.rpc.clone();
        let look = self.look();
        tokio::pin!(stop);
        let mut stream = tokio::select! {
            s = client.call(rpc.watch_events(request)) => s?,
            () = &mut stop => return Ok(Outcome::Done),
        };
        let mut seen = 0u64;
        loop {
            let next = tokio::select! {
                m = stream.message() => m,
                () = &mut stop => return Ok(Outcome::Done),
            };
            let event = match next {
                Ok(Some(e)) => e,
                Ok(None) => return Ok(Outcome::Done),
                Err(status) => return Err(CtlError::from_status(&client.server, &status)),
            };
            let line = if self.json {
                serde_json::to_string(&j::event(&event))
                    .map_err(|e| CtlError::Local(e.to_string()))?
            } else {
                render::event(&event, &look)
            };
            write!(out, "{line}{line_end}")
                .and_then(|()| out.flush())
                .map_err(output_error)?;
            let replay = matches!(&event.kind, Some(event::Kind::Frontend(f)) if f.initial);
            if !replay {
                seen += 1;
            }
            if spec.num.is_some_and(|n| seen >= n) {
                return Ok(Outcome::Done);
            }
        }
    }
}

fn watch_level(spec: &WatchSpec) -> ProtoLevel {
    crate::server::convert::log_level(spec.log_level.unwrap_or(crate::events::LogLevel::Info))
}

/// One write of the whole output, then a flush.
fn write_all(out: &mut dyn Write, bytes: &[u8]) -> Result<(), CtlError> {
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(output_error)
}

/// A closed pipe (`maglev ctl show backends | head -1`) is not worth a message.
fn output_error(e: std::io::Error) -> CtlError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        CtlError::Local(String::new())
    } else {
        CtlError::Local(format!("cannot write output: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_command_in_text_and_json() {
        let mut text = Vec::new();
        Session::new(false, false).help(&mut text).expect("help");
        let text = String::from_utf8(text).unwrap_or_default();
        assert!(text.contains("set backend <backend> pause|resume|enable|disable"));
        assert!(text.contains("watch events [num <n>]"));
        let mut doc = Vec::new();
        Session::new(true, false).help(&mut doc).expect("help");
        let v: Value = serde_json::from_slice(&doc).unwrap_or_default();
        let commands = v["commands"].as_array().map_or(0, Vec::len);
        assert_eq!(commands, usage_lines().len());
        assert_eq!(v["commands"][0]["syntax"], "show version");
    }

    #[test]
    fn watch_level_defaults_to_info() {
        assert_eq!(watch_level(&WatchSpec::default()), ProtoLevel::Info);
        let spec = WatchSpec {
            log_level: Some(crate::events::LogLevel::Trace),
            ..WatchSpec::default()
        };
        assert_eq!(watch_level(&spec), ProtoLevel::Trace);
    }
}

#[cfg(test)]
mod golden {
    //! Pins the exact bytes of `show backends` (text, colour, JSON) for a small state, so
    //! that speed work on the renderers cannot change what the user sees.
    use super::*;
    use crate::proto::{Backend, BackendState, ProbeResult, ResultCode, Transition};
    use prost_types::{Duration, Timestamp};
    use std::time::{Duration as StdDuration, SystemTime};

    fn ts(seconds: i64, nanos: i32) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos })
    }

    fn result(code: ResultCode, ok: bool, detail: &str, at: i64) -> ProbeResult {
        ProbeResult {
            code: code as i32,
            ok,
            detail: detail.into(),
            at: ts(at, 250_000_000),
            duration: Some(Duration {
                seconds: 0,
                nanos: 1_500_000,
            }),
        }
    }

    pub(super) fn sample() -> Vec<Backend> {
        vec![
            Backend {
                name: "web1".into(),
                address: "192.0.2.1".into(),
                healthcheck: "http".into(),
                enabled: true,
                state: BackendState::Up as i32,
                health: 4,
                rise: 2,
                fall: 3,
                last_result: Some(result(ResultCode::L7ok, true, "", 990)),
                history: vec![Transition {
                    from: BackendState::Unknown as i32,
                    to: BackendState::Up as i32,
                    at: ts(700, 0),
                    result: Some(result(ResultCode::L7ok, true, "HTTP 200", 700)),
                    reason: "probe".into(),
                }],
                frontends: vec!["web".into(), "web-v6".into()],
                state_since: ts(700, 0),
                next_interval: Some(Duration {
                    seconds: 2,
                    nanos: 0,
                }),
            },
            Backend {
                name: "db-zürich-long-name".into(),
                address: "2001:db8::10".into(),
                healthcheck: "tcp".into(),
                enabled: true,
                state: BackendState::Down as i32,
                health: 0,
                rise: 3,
                fall: 2,
                last_result: Some(result(
                    ResultCode::L4con,
                    false,
                    "connection \"refused\"\tnow",
                    999,
                )),
                history: vec![
                    Transition {
                        from: BackendState::Unknown as i32,
                        to: BackendState::Up as i32,
                        at: ts(100, 5),
                        result: None,
                        reason: "resume".into(),
                    },
                    Transition {
                        from: BackendState::Up as i32,
                        to: BackendState::Down as i32,
                        at: ts(998, 0),
                        result: Some(result(ResultCode::L4con, false, "refused", 998)),
                        reason: "probe".into(),
                    },
                ],
                frontends: Vec::new(),
                state_since: ts(998, 0),
                next_interval: Some(Duration {
                    seconds: 0,
                    nanos: 500_000_000,
                }),
            },
            Backend {
                name: "spare".into(),
                address: "192.0.2.3".into(),
                healthcheck: "icmp".into(),
                enabled: false,
                state: BackendState::Disabled as i32,
                health: 0,
                rise: 1,
                fall: 1,
                last_result: None,
                history: Vec::new(),
                frontends: Vec::new(),
                state_since: None,
                next_interval: None,
            },
            Backend {
                name: "odd".into(),
                state: 99,
                state_since: ts(4_000, 0),
                ..Backend::default()
            },
        ]
    }

    fn output(json: bool, color: bool) -> String {
        let look = render::Look {
            color,
            now: SystemTime::UNIX_EPOCH + StdDuration::from_secs(1_000),
        };
        let list = sample();
        let mut out = Vec::new();
        let session = Session::new(json, color);
        session
            .emit_with(
                &mut out,
                || render::backends(&list, &look),
                || j::BackendsDoc(&list),
            )
            .expect("emit");
        String::from_utf8(out).expect("utf-8")
    }

    const TEXT: &str = "NAME                 ADDRESS       STATE        HEALTH  CHECK  LAST RESULT                       SINCE\nweb1                 192.0.2.1     up           4/4     http   L7OK                              5m ago\ndb-zürich-long-name  2001:db8::10  down         0/4     tcp    L4CON (connection \"refused\"\tnow)  2s ago\nspare                192.0.2.3     disabled     0/1     icmp   -                                 -\nodd                                unspecified  0/0            -                                 just now\n";

    const TEXT_COLOUR: &str = "\u{1b}[1mNAME\u{1b}[0m                 \u{1b}[1mADDRESS\u{1b}[0m       \u{1b}[1mSTATE\u{1b}[0m        \u{1b}[1mHEALTH\u{1b}[0m  \u{1b}[1mCHECK\u{1b}[0m  \u{1b}[1mLAST RESULT\u{1b}[0m                       \u{1b}[1mSINCE\u{1b}[0m\nweb1                 192.0.2.1     \u{1b}[32mup\u{1b}[0m           4/4     http   L7OK                              5m ago\ndb-zürich-long-name  2001:db8::10  \u{1b}[31mdown\u{1b}[0m         0/4     tcp    L4CON (connection \"refused\"\tnow)  2s ago\nspare                192.0.2.3     \u{1b}[2mdisabled\u{1b}[0m     0/1     icmp   -                                 -\nodd                                unspecified  0/0            -                                 just now\n";

    const JSON: &str = "{\n  \"backends\": [\n    {\n      \"address\": \"192.0.2.1\",\n      \"enabled\": true,\n      \"fall\": 3,\n      \"frontends\": [\n        \"web\",\n        \"web-v6\"\n      ],\n      \"health\": 4,\n      \"healthcheck\": \"http\",\n      \"history\": [\n        {\n          \"at\": \"1970-01-01T00:11:40Z\",\n          \"from\": \"unknown\",\n          \"reason\": \"probe\",\n          \"result\": {\n            \"at\": \"1970-01-01T00:11:40.250Z\",\n            \"code\": \"L7OK\",\n            \"detail\": \"HTTP 200\",\n            \"duration\": 0.0015,\n            \"ok\": true\n          },\n          \"to\": \"up\"\n        }\n      ],\n      \"last_result\": {\n        \"at\": \"1970-01-01T00:16:30.250Z\",\n        \"code\": \"L7OK\",\n        \"detail\": \"\",\n        \"duration\": 0.0015,\n        \"ok\": true\n      },\n      \"name\": \"web1\",\n      \"next_interval\": 2.0,\n      \"rise\": 2,\n      \"state\": \"up\",\n      \"state_since\": \"1970-01-01T00:11:40Z\"\n    },\n    {\n      \"address\": \"2001:db8::10\",\n      \"enabled\": true,\n      \"fall\": 2,\n      \"frontends\": [],\n      \"health\": 0,\n      \"healthcheck\": \"tcp\",\n      \"history\": [\n        {\n          \"at\": \"1970-01-01T00:01:40.000000005Z\",\n          \"from\": \"unknown\",\n          \"reason\": \"resume\",\n          \"result\": null,\n          \"to\": \"up\"\n        },\n        {\n          \"at\": \"1970-01-01T00:16:38Z\",\n          \"from\": \"up\",\n          \"reason\": \"probe\",\n          \"result\": {\n            \"at\": \"1970-01-01T00:16:38.250Z\",\n            \"code\": \"L4CON\",\n            \"detail\": \"refused\",\n            \"duration\": 0.0015,\n            \"ok\": false\n          },\n          \"to\": \"down\"\n        }\n      ],\n      \"last_result\": {\n        \"at\": \"1970-01-01T00:16:39.250Z\",\n        \"code\": \"L4CON\",\n        \"detail\": \"connection \\\"refused\\\"\\tnow\",\n        \"duration\": 0.0015,\n        \"ok\": false\n      },\n      \"name\": \"db-zürich-long-name\",\n      \"next_interval\": 0.5,\n      \"rise\": 3,\n      \"state\": \"down\",\n      \"state_since\": \"1970-01-01T00:16:38Z\"\n    },\n    {\n      \"address\": \"192.0.2.3\",\n      \"enabled\": false,\n      \"fall\": 1,\n      \"frontends\": [],\n      \"health\": 0,\n      \"healthcheck\": \"icmp\",\n      \"history\": [],\n      \"last_result\": null,\n      \"name\": \"spare\",\n      \"next_interval\": null,\n      \"rise\": 1,\n      \"state\": \"disabled\",\n      \"state_since\": null\n    },\n    {\n      \"address\": \"\",\n      \"enabled\": false,\n      \"fall\": 0,\n      \"frontends\": [],\n      \"health\": 0,\n      \"healthcheck\": \"\",\n      \"history\": [],\n      \"last_result\": null,\n      \"name\": \"odd\",\n      \"next_interval\": null,\n      \"rise\": 0,\n      \"state\": \"unspecified\",\n      \"state_since\": \"1970-01-01T01:06:40Z\"\n    }\n  ]\n}\n";

    /// Takes `room` bytes, then fails like a pipe whose reader went away.
    struct ClosedAfter {
        room: usize,
    }

    impl Write for ClosedAfter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_pipe_ends_quietly_in_both_forms() {
        // `maglev ctl --json show backends | head -1`: the streamed JSON meets the closed
        // pipe half-way and must still end as the silent error, not "cannot write output".
        let list: Vec<Backend> = std::iter::repeat_n(sample(), 400).flatten().collect();
        let look = render::Look::plain();
        for json in [false, true] {
            let mut out = ClosedAfter { room: 1_000 };
            let result = Session::new(json, false).emit_with(
                &mut out,
                || render::backends(&list, &look),
                || j::BackendsDoc(&list),
            );
            match result {
                Err(CtlError::Local(msg)) => assert!(msg.is_empty(), "json={json}: {msg}"),
                other => panic!("json={json}: {other:?}"),
            }
        }
    }

    #[test]
    fn text_is_pinned() {
        assert_eq!(output(false, false), TEXT);
    }

    #[test]
    fn colour_text_is_pinned() {
        assert_eq!(output(false, true), TEXT_COLOUR);
    }

    #[test]
    fn json_is_pinned() {
        assert_eq!(output(true, false), JSON);
        // Colour never reaches JSON.
        assert_eq!(output(true, true), JSON);
    }
}
