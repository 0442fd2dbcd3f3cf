//! The `[agent]` table of a station's `client.toml`: where the vault and
//! the agent's control socket are, how long the key may stay in memory
//! unused, how long received items are kept, how the agent waits. Every
//! field has a default, so a `client.toml` without the table runs an agent.
//! Plain data; read with the rest of the file.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// `[agent]` in `client.toml`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSettings {
    /// The vault's directory (relative to `client.toml`).
    pub vault: PathBuf,
    /// The directory of the agent's control socket (made with mode 0700;
    /// whoever can enter it can lock, unlock and read through the agent).
    pub control: PathBuf,
    /// The agent forgets the vault's key after this many seconds without
    /// the officer using it (`list`, `read`, `send`, `unlock`); 0: never.
    /// Locked, the agent fetches nothing: items wait at the gateway.
    pub lock_after_idle_seconds: u64,
    /// Received items are deleted from the station this many days after
    /// they arrived, unless `retention` names their level.
    pub retention_days: u32,
    /// Days kept per classification level, as the item's label writes it
    /// (the station has no scheme, so `SECRET` and `GEHEIM` are two
    /// keys), e.g. `{ SECRET = 30, GEHEIM = 30 }`.
    pub retention: BTreeMap<String, u32>,
    /// How long one inbox long-poll waits, seconds.
    pub poll_seconds: u64,
    /// The first pause after a failure, milliseconds; each failure in a
    /// row doubles it, up to `reconnect_max_seconds`, each pause drawn at
    /// random between its half and itself so that stations cut off
    /// together do not come back together.
    pub reconnect_min_millis: u64,
    /// The longest pause between two attempts, seconds.
    pub reconnect_max_seconds: u64,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            vault: PathBuf::from("vault"),
            control: PathBuf::from("control"),
            lock_after_idle_seconds: 4 * 3600,
            retention_days: 90,
            retention: BTreeMap::new(),
            poll_seconds: 10,
            reconnect_min_millis: 500,
            reconnect_max_seconds: 60,
        }
    }
}

impl AgentSettings {
    /// How long a received item of `level` stays on the station, seconds.
    pub fn retention_seconds(&self, level: &str) -> i64 {
        let days = self
            .retention
            .get(level)
            .copied()
            .unwrap_or(self.retention_days);
        i64::from(days) * 86_400
    }

    /// How long the key may stay unused, if it is ever forgotten.
    pub fn idle_lock(&self) -> Option<Duration> {
        (self.lock_after_idle_seconds > 0)
            .then(|| Duration::from_secs(self.lock_after_idle_seconds))
    }

    /// The control socket's path.
    pub fn socket(&self) -> PathBuf {
        self.control.join("agent.sock")
    }
}

#[cfg(test)]
mod tests {
    use super::AgentSettings;

    #[test]
    fn retention_by_level_and_otherwise_the_default() {
        let s: AgentSettings =
            toml::from_str("retention_days = 10\nretention = { SECRET = 2 }\n").unwrap();
        assert_eq!(s.retention_seconds("SECRET"), 2 * 86_400);
        assert_eq!(s.retention_seconds("RESTREINT"), 10 * 86_400);
        assert_eq!(s.poll_seconds, AgentSettings::default().poll_seconds);
        assert!(toml::from_str::<AgentSettings>("retention_dayz = 1").is_err());
        let never: AgentSettings = toml::from_str("lock_after_idle_seconds = 0").unwrap();
        assert!(never.idle_lock().is_none());
    }
}
