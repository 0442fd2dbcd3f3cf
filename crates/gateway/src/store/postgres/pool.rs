//! The PostgreSQL store's connections: the database URL and a small pool.
//!
//! Owns [`PostgresUrl`] (never shown with its password) and [`Pool`], a
//! mutex over a few idle synchronous clients rather than a pool crate:
//! every store call is short and blocking, takes one client for its
//! duration and gives it back; a client whose connection closed is dropped
//! and the next call connects again. Each new session sets
//! `synchronous_commit = on`. It never runs a query of the store itself.

use ::postgres::Client;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::backend;
use super::off_runtime::off_runtime;
use super::tls::Connector;
use crate::store::StoreError;

/// Idle clients kept for reuse; more may be open while calls overlap.
const MAX_IDLE: usize = 8;

/// The URL of a PostgreSQL database (`postgres://user@host:port/db`), as
/// `store = "…"` in `gateway.toml` gives it. Shown (Debug, Display) with
/// any password replaced, so that it can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(String);

impl PostgresUrl {
    /// The URL, if `setting` names a PostgreSQL database rather than a
    /// file.
    pub fn parse(setting: &str) -> Option<Self> {
        (setting.starts_with("postgres://") || setting.starts_with("postgresql://"))
            .then(|| PostgresUrl(setting.to_string()))
    }

    /// Checks the URL's TLS settings as a connection would (modes, the CA
    /// and client key files), without connecting; returns the
    /// certificate files it names.
    pub(crate) fn certificate_files(&self) -> Result<Vec<(&'static str, PathBuf)>, StoreError> {
        Connector::new(&self.0, &self.redacted()).map(|c| c.certificate_files())
    }

    /// The URL with a password, if any, replaced by `***`.
    pub(super) fn redacted(&self) -> String {
        let Some((scheme, rest)) = self.0.split_once("://") else {
            return self.0.clone();
        };
        let (before_query, query) = match rest.split_once('?') {
            Some((before, query)) => (before, Some(query)),
            None => (rest, None),
        };
        let (authority, path) =
            before_query.split_at(before_query.find('/').unwrap_or(before_query.len()));
        let authority = match authority.rsplit_once('@') {
            Some((userinfo, host)) if userinfo.contains(':') => {
                let user = userinfo.split(':').next().unwrap_or_default();
                format!("{user}:***@{host}")
            }
            _ => authority.to_string(),
        };
        // The client also takes the password as a query parameter.
        let query = query.map(|q| {
            q.split('&')
                .map(|pair| match pair.split_once('=') {
                    Some(("password", _)) => "password=***",
                    _ => pair,
                })
                .collect::<Vec<_>>()
                .join("&")
        });
        match query {
            Some(q) => format!("{scheme}://{authority}{path}?{q}"),
            None => format!("{scheme}://{authority}{path}"),
        }
    }
}

impl std::fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PostgresUrl({})", self.redacted())
    }
}

impl std::fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// A few idle clients behind a mutex.
pub(super) struct Pool {
    connector: Connector,
    idle: Mutex<Vec<Client>>,
}

/// A client taken from the pool, given back on drop unless its connection
/// closed (a broken client is dropped, the next call connects again).
pub(super) struct Conn<'a> {
    pool: &'a Pool,
    client: Option<Client>,
}

impl std::ops::Deref for Conn<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client
            .as_ref()
            .expect("a pooled client is present until dropped")
    }
}

impl std::ops::DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client
            .as_mut()
            .expect("a pooled client is present until dropped")
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            if !client.is_closed() {
                let mut idle = lock(&self.pool.idle);
                if idle.len() < MAX_IDLE {
                    idle.push(client);
                }
            }
        }
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing guarded here is left half-changed by a panic: the idle list
    // only gains or loses whole clients, and the edge is replaced only
    // after a commit.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for Pool {
    fn drop(&mut self) {
        // A client closes its connection (and its runtime) when dropped,
        // which must not happen on an async thread either.
        let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|p| p.into_inner()));
        off_runtime(move || drop(idle));
    }
}

impl Pool {
    pub(super) fn new(url: &PostgresUrl) -> Result<Self, StoreError> {
        let mut connector = Connector::new(&url.0, &url.redacted())?;
        let config = connector.config_mut();
        // A server that does not answer must not hang a blocking thread
        // for ever.
        config.connect_timeout(Duration::from_secs(10));
        if config.get_application_name().is_none() {
            config.application_name("passerelle");
        }
        Ok(Pool {
            connector,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Where and how to connect, for a connection outside the pool.
    pub(super) fn connector(&self) -> &Connector {
        &self.connector
    }

    pub(super) fn get(&self) -> Result<Conn<'_>, StoreError> {
        let idle = lock(&self.idle).pop();
        let client = match idle {
            Some(c) if !c.is_closed() => c,
            _ => {
                let mut c = self.connector.connect().map_err(backend)?;
                // "Durable before answered": a commit returns once the WAL
                // is flushed, even on a server whose default is otherwise.
                c.batch_execute("SET synchronous_commit TO on")
                    .map_err(backend)?;
                c
            }
        };
        Ok(Conn {
            pool: self,
            client: Some(client),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::PostgresUrl;

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        let url = PostgresUrl::parse("postgres://gw:s3cret@db.example:5432/passerelle")
            .expect("a postgres URL");
        assert_eq!(
            url.to_string(),
            "postgres://gw:***@db.example:5432/passerelle"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
        let plain = PostgresUrl::parse("postgres://gw@127.0.0.1:5432/p").expect("a URL");
        assert_eq!(plain.to_string(), "postgres://gw@127.0.0.1:5432/p");
        assert!(PostgresUrl::parse("/var/lib/passerelle/store.db").is_none());
        // Nor in the query, where the client takes it too.
        let query = PostgresUrl::parse(
            "postgres://gw@db.example/passerelle?sslmode=disable&password=s3cret&connect_timeout=5",
        )
        .expect("a URL");
        assert_eq!(
            query.to_string(),
            "postgres://gw@db.example/passerelle?sslmode=disable&password=***&connect_timeout=5"
        );
    }
}
