//! The admin side's security: the users file (`user:$argon2id$...` lines), sessions held in
//! memory behind an HttpOnly SameSite=Strict cookie, a CSRF token per session that every POST
//! must echo, and a per-address limit on failed logins.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;

pub const COOKIE: &str = "maglev_session";
/// Failed logins allowed per client address per `FAILURE_WINDOW`; then 429 until the
/// oldest failure leaves the window.
pub const MAX_FAILURES: usize = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read users file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("users file {}, line {line}: {why}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        why: String,
    },
    #[error("users file {}: no users", .0.display())]
    Empty(PathBuf),
    #[error("cannot hash: {0}")]
    Hash(String),
}

/// User name -> PHC hash string.
#[derive(Debug, Clone)]
pub struct Users(HashMap<String, String>);

impl Users {
    pub fn load(path: &Path) -> Result<Users, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
            .map_err(|(line, why)| AuthError::Line {
                path: path.to_path_buf(),
                line,
                why,
            })?
            .ok_or_else(|| AuthError::Empty(path.to_path_buf()))
    }

    /// Ok(None) when the file has no users; Err((line, why)) on a bad line.
    pub fn parse(text: &str) -> Result<Option<Users>, (usize, String)> {
        let mut users = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, hash)) = line.split_once(':') else {
                return Err((i + 1, "expected user:$argon2id$...".to_string()));
            };
            if user.is_empty() {
                return Err((i + 1, "empty user name".to_string()));
            }
            PasswordHash::new(hash).map_err(|e| {
                (
                    i + 1,
                    format!("not a password hash ({e}); make one with `maglev web hash-password`"),
                )
            })?;
            if users.insert(user.to_string(), hash.to_string()).is_some() {
                return Err((i + 1, format!("user {user:?} twice")));
            }
        }
        Ok((!users.is_empty()).then_some(Users(users)))
    }
}

/// An argon2id hash (PHC string) of `password` with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

fn verify(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A signed-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token: String,
    pub user: String,
    pub csrf: String,
    expires: Instant,
}

#[derive(Debug, PartialEq, Eq)]
pub enum LoginError {
    /// Wrong user or password.
    Denied,
    /// Too many failures from this address: retry after this long.
    RateLimited(Duration),
}

#[derive(Debug)]
pub struct Auth {
    users: Arc<Users>,
    /// Verified against when the user does not exist, so that the answer takes as long.
    dummy_hash: String,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Equal strings, compared in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Auth {
    pub fn new(users: Users) -> Auth {
        Auth {
            users: Arc::new(users),
            dummy_hash: hash_password("not a password").unwrap_or_default(),
            sessions: Mutex::default(),
            failures: Mutex::default(),
        }
    }

    /// Checks the password (off the async threads: argon2 is slow on purpose).
    pub async fn login(
        &self,
        from: IpAddr,
        user: &str,
        password: &str,
    ) -> Result<Session, LoginError> {
        if let Some(wait) = self.limited(from, Instant::now()) {
            tracing::warn!(%from, user = ?user, "login refused: too many failures");
            return Err(LoginError::RateLimited(wait));
        }
        let hash = self.users.0.get(user).cloned();
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy_hash.clone());
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || verify(&hash, &password))
            .await
            .unwrap_or(false)
            && known;
        if !ok {
            self.record_failure(from, Instant::now());
            tracing::warn!(%from, user = ?user, "login failed");
            return Err(LoginError::Denied);
        }
        tracing::info!(%from, user, "login");
        let session = Session {
            token: random_token(),
            user: user.to_string(),
            csrf: random_token(),
            expires: Instant::now() + SESSION_LIFETIME,
        };
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        sessions.insert(session.token.clone(), session.clone());
        Ok(session)
    }

    /// How long `from` must wait, if it is over the limit.
    fn limited(&self, from: IpAddr, now: Instant) -> Option<Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let list = failures.get_mut(&from)?;
        while list
            .front()
            .is_some_and(|t| now.duration_since(*t) >= FAILURE_WINDOW)
        {
            list.pop_front();
        }
        if list.len() >= MAX_FAILURES {
            list.front()
                .map(|t| FAILURE_WINDOW.saturating_sub(now.duration_since(*t)))
        } else {
            None
        }
    }

    fn record_failure(&self, from: IpAddr, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        // Bounded memory under a spray of addresses: forget the stale ones.
        if failures.len() > 10_000 {
            failures.retain(|_, l| {
                l.back()
                    .is_some_and(|t| now.duration_since(*t) < FAILURE_WINDOW)
            });
        }
        failures.entry(from).or_default().push_back(now);
    }

    /// The session of a `Cookie:` header, if valid.
    pub fn session(&self, cookie_header: Option<&str>) -> Option<Session> {
        let token = cookie_value(cookie_header?, COOKIE)?;
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let s = sessions.get(token)?;
        (s.expires > Instant::now()).then(|| s.clone())
    }

    pub fn logout(&self, token: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(token);
    }
}

/// The value of cookie `name` in a `Cookie:` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_file_lines() {
        let hash = hash_password("s3cret").expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        let text = format!("# admins\n\nalice:{hash}\n");
        let users = Users::parse(&text).expect("parse").expect("users");
        assert!(verify(&users.0["alice"], "s3cret"));
        assert!(!verify(&users.0["alice"], "wrong"));
        assert!(matches!(Users::parse("# nobody\n"), Ok(None)));
        assert_eq!(Users::parse("bob:plaintext").err().map(|e| e.0), Some(1));
        assert_eq!(Users::parse("nocolon").err().map(|e| e.0), Some(1));
        assert_eq!(
            Users::parse(&format!("a:{hash}\na:{hash}"))
                .err()
                .map(|e| e.0),
            Some(2)
        );
    }

    #[test]
    fn cookies_and_comparison() {
        assert_eq!(
            cookie_value("a=1; maglev_session=xyz; b=2", COOKIE),
            Some("xyz")
        );
        assert_eq!(cookie_value("a=1", COOKIE), None);
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }

    #[tokio::test]
    async fn login_session_and_rate_limit() {
        let hash = hash_password("pw").expect("hash");
        let users = Users::parse(&format!("ops:{hash}"))
            .expect("parse")
            .expect("users");
        let auth = Auth::new(users);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let s = auth.login(ip, "ops", "pw").await.expect("login");
        let header = format!("{COOKIE}={}", s.token);
        assert_eq!(
            auth.session(Some(&header)).map(|s| s.user),
            Some("ops".into())
        );
        auth.logout(&s.token);
        assert_eq!(auth.session(Some(&header)), None);
        for _ in 0..MAX_FAILURES {
            assert_eq!(auth.login(ip, "ops", "bad").await, Err(LoginError::Denied));
        }
        // Over the limit even the right password is refused; another address is not.
        assert!(matches!(
            auth.login(ip, "ops", "pw").await,
            Err(LoginError::RateLimited(_))
        ));
        assert!(auth.login([127, 0, 0, 2].into(), "ops", "pw").await.is_ok());
        assert_eq!(
            auth.login([127, 0, 0, 2].into(), "nobody", "pw").await,
            Err(LoginError::Denied)
        );
    }
}
