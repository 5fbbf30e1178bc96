//! Socket creation, optionally inside a named network namespace.
//!
//! A socket belongs to the namespace of the thread that created it and keeps that namespace
//! for life. So for each namespace one dedicated std thread enters it (`setns`) once and then
//! creates sockets on request; the async runtime uses them like any other socket. Threads
//! start lazily on the first socket asked for in their namespace.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::mpsc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::{Mutex, oneshot};

use super::errors::errno_text;

/// Where `ip netns add` puts namespace handles.
const NETNS_DIR: &str = "/run/netns";

/// Why no socket could be had.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("cannot open network namespace {name} ({path}): {}", errno_text(.source))]
    OpenNamespace {
        name: String,
        path: String,
        source: io::Error,
    },
    #[error("cannot enter network namespace {name}: {}{}", errno_text(.source), cap_hint(.source))]
    EnterNamespace { name: String, source: io::Error },
    #[error("network namespace name {0:?} is not a plain name")]
    BadNamespaceName(String),
    #[error("namespace thread for {0} is gone")]
    ThreadGone(String),
    #[error("cannot create socket: {}", errno_text(.0))]
    Create(io::Error),
}

impl SocketError {
    /// The OS error behind this, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            SocketError::OpenNamespace { source, .. }
            | SocketError::EnterNamespace { source, .. } => source.raw_os_error(),
            SocketError::Create(e) => e.raw_os_error(),
            _ => None,
        }
    }
}

fn cap_hint(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EPERM) => " (needs CAP_SYS_ADMIN)",
        _ => "",
    }
}

/// What a socket request asks for.
#[derive(Debug, Clone, Copy)]
pub struct SocketKind {
    pub domain: Domain,
    pub ty: Type,
    pub protocol: Option<Protocol>,
}

struct SocketRequest {
    kind: SocketKind,
    reply: oneshot::Sender<io::Result<Socket>>,
}

/// Makes sockets in the daemon's own namespace or in named ones.
#[derive(Default)]
pub struct SocketFactory {
    threads: Mutex<HashMap<String, mpsc::Sender<SocketRequest>>>,
}

impl SocketFactory {
    /// A new socket of `kind`, created in `netns` (None = our own namespace).
    pub async fn socket(
        &self,
        netns: Option<&str>,
        kind: SocketKind,
    ) -> Result<Socket, SocketError> {
        let Some(name) = netns else {
            return Socket::new(kind.domain, kind.ty, kind.protocol).map_err(SocketError::Create);
        };
        let sender = self.thread_for(name).await?;
        let (reply, rx) = oneshot::channel();
        if sender.send(SocketRequest { kind, reply }).is_err() {
            self.threads.lock().await.remove(name);
            return Err(SocketError::ThreadGone(name.to_string()));
        }
        match rx.await {
            Ok(res) => res.map_err(SocketError::Create),
            Err(_) => Err(SocketError::ThreadGone(name.to_string())),
        }
    }

    /// The request channel of the namespace's thread, starting it if needed. A namespace that
    /// cannot be entered is not remembered, so a later probe tries again.
    async fn thread_for(&self, name: &str) -> Result<mpsc::Sender<SocketRequest>, SocketError> {
        let mut threads = self.threads.lock().await;
        if let Some(tx) = threads.get(name) {
            return Ok(tx.clone());
        }
        let tx = start_thread(name).await?;
        threads.insert(name.to_string(), tx.clone());
        Ok(tx)
    }
}

fn namespace_path(name: &str) -> Result<PathBuf, SocketError> {
    let plain = !name.is_empty() && name != "." && name != ".." && !name.contains('/');
    if !plain {
        return Err(SocketError::BadNamespaceName(name.to_string()));
    }
    Ok(PathBuf::from(NETNS_DIR).join(name))
}

async fn start_thread(name: &str) -> Result<mpsc::Sender<SocketRequest>, SocketError> {
    let path = namespace_path(name)?;
    let file = File::open(&path).map_err(|source| SocketError::OpenNamespace {
        name: name.to_string(),
        path: path.display().to_string(),
        source,
    })?;
    let (tx, rx) = mpsc::channel::<SocketRequest>();
    let (ready_tx, ready_rx) = oneshot::channel::<io::Result<()>>();
    let spawned = std::thread::Builder::new()
        .name(format!("netns-{name}"))
        .spawn(move || namespace_thread(file, ready_tx, rx));
    if let Err(e) = spawned {
        return Err(SocketError::EnterNamespace {
            name: name.to_string(),
            source: e,
        });
    }
    match ready_rx.await {
        Ok(Ok(())) => Ok(tx),
        Ok(Err(source)) => Err(SocketError::EnterNamespace {
            name: name.to_string(),
            source,
        }),
        Err(_) => Err(SocketError::ThreadGone(name.to_string())),
    }
}

/// Body of a namespace thread: enter, report, then serve requests until the factory is gone.
fn namespace_thread(
    ns: File,
    ready: oneshot::Sender<io::Result<()>>,
    requests: mpsc::Receiver<SocketRequest>,
) {
    // SAFETY: setns only reads the fd, which `ns` keeps open for the call; it changes the
    // network namespace of this thread alone.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    drop(ns);
    if rc != 0 {
        let _ = ready.send(Err(io::Error::last_os_error()));
        return;
    }
    if ready.send(Ok(())).is_err() {
        return;
    }
    while let Ok(req) = requests.recv() {
        let k = req.kind;
        let _ = req.reply.send(Socket::new(k.domain, k.ty, k.protocol));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_must_be_plain() {
        assert_eq!(
            namespace_path("blue").unwrap(),
            PathBuf::from("/run/netns/blue")
        );
        for bad in ["", ".", "..", "a/b", "../etc"] {
            assert!(
                matches!(namespace_path(bad), Err(SocketError::BadNamespaceName(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn enter_error_names_the_capability() {
        let e = SocketError::EnterNamespace {
            name: "blue".into(),
            source: io::Error::from_raw_os_error(libc::EPERM),
        };
        assert_eq!(
            e.to_string(),
            "cannot enter network namespace blue: Operation not permitted (needs CAP_SYS_ADMIN)"
        );
    }

    #[tokio::test]
    async fn missing_namespace_is_an_error() {
        let f = SocketFactory::default();
        let kind = SocketKind {
            domain: Domain::IPV4,
            ty: Type::STREAM,
            protocol: None,
        };
        let name = format!("maglev-missing-{}", std::process::id());
        let err = f.socket(Some(&name), kind).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&name), "{text}");
        assert!(text.contains("No such file or directory"), "{text}");
    }

    #[tokio::test]
    async fn own_namespace_socket() {
        let f = SocketFactory::default();
        let kind = SocketKind {
            domain: Domain::IPV4,
            ty: Type::STREAM,
            protocol: Some(Protocol::TCP),
        };
        let s = f.socket(None, kind).await.unwrap();
        assert_eq!(s.r#type().unwrap(), Type::STREAM);
    }
}
