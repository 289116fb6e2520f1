//! Sign-in throttling, kept in Redis so it holds across every node. Failures are counted
//! per account (keyed by a hash of the email, so unknown emails are throttled exactly like
//! known ones) and per client address. Past a threshold each further failure doubles the
//! wait before the next attempt is even considered, up to a cap.

use crate::config::Settings;
use actix_web::HttpRequest;
use paranimo_actors::ids::UserId;
use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// Failures counted against an account before attempts are slowed.
pub const ACCOUNT_FREE_FAILURES: u32 = 5;

/// Failures counted against one address before attempts are slowed: higher than per
/// account, because one address (an office, a household) can hold several honest users.
pub const ADDRESS_FREE_FAILURES: u32 = 10;

/// The longest wait imposed, in seconds.
pub const MAX_DELAY_SECONDS: i64 = 15 * 60;

/// How long failures are remembered after the last one.
pub const WINDOW_SECONDS: i64 = 60 * 60;

/// Which counter a key belongs to.
#[derive(Clone, Copy)]
pub enum Scope {
    Account,
    Address,
}

impl Scope {
    fn free_failures(self) -> u32 {
        match self {
            Scope::Account => ACCOUNT_FREE_FAILURES,
            Scope::Address => ADDRESS_FREE_FAILURES,
        }
    }
}

/// The wait owed after `failures` failures: none up to the free allowance, then 1 s, 2 s,
/// 4 s… up to [`MAX_DELAY_SECONDS`].
pub fn delay_after(failures: u32, scope: Scope) -> i64 {
    let free = scope.free_failures();
    if failures < free {
        return 0;
    }
    let doublings = (failures - free).min(20);
    (1_i64 << doublings).min(MAX_DELAY_SECONDS)
}

/// The address a request comes from: the socket's peer, or, when that peer is a trusted
/// proxy, the last address it appended to `X-Forwarded-For`.
pub fn client_address(req: &HttpRequest, settings: &Settings) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip())?;
    if !settings.trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let last_hop = forwarded
        .and_then(|list| list.rsplit(',').next())
        .map(str::trim);
    Some(last_hop.and_then(|ip| ip.parse().ok()).unwrap_or(peer))
}

/// The counters one sign-in attempt is checked against.
pub struct Throttle {
    redis: ConnectionManager,
    keys: Vec<(String, Scope)>,
}

impl Throttle {
    /// Counters for this email and address. The email is hashed: Redis never holds it.
    pub fn for_login(
        redis: ConnectionManager,
        prefix: &str,
        email: &str,
        address: Option<IpAddr>,
    ) -> Self {
        let account = hex(&Sha256::digest(email.trim().to_lowercase().as_bytes()));
        let mut keys = vec![(
            format!("{prefix}throttle:account:{account}"),
            Scope::Account,
        )];
        if let Some(address) = address {
            keys.push((
                format!("{prefix}throttle:address:{address}"),
                Scope::Address,
            ));
        }
        Self { redis, keys }
    }

    /// A counter of requests of one `kind` (registrations, reset requests) per address.
    pub fn for_address(
        redis: ConnectionManager,
        prefix: &str,
        kind: &str,
        address: Option<IpAddr>,
    ) -> Self {
        let keys = address
            .map(|a| vec![(format!("{prefix}throttle:{kind}:{a}"), Scope::Address)])
            .unwrap_or_default();
        Self { redis, keys }
    }

    /// A counter of wrong second-factor codes for one account, however many password
    /// successes (challenges) they are spread over.
    pub fn for_second_factor(redis: ConnectionManager, prefix: &str, user: UserId) -> Self {
        Self {
            redis,
            keys: vec![(format!("{prefix}throttle:mfa:{user}"), Scope::Account)],
        }
    }

    /// Seconds to wait before this attempt may be considered, 0 when it may go ahead.
    pub async fn wait_seconds(&self) -> Result<i64, redis::RedisError> {
        let mut conn = self.redis.clone();
        let now = chrono::Utc::now().timestamp();
        let mut wait = 0;
        for (key, scope) in &self.keys {
            let (failures, last): (Option<u32>, Option<i64>) = redis::cmd("HMGET")
                .arg(key)
                .arg("failures")
                .arg("last")
                .query_async(&mut conn)
                .await?;
            let (Some(failures), Some(last)) = (failures, last) else {
                continue;
            };
            let allowed_at = last + delay_after(failures, *scope);
            wait = wait.max(allowed_at - now);
        }
        Ok(wait.max(0))
    }

    /// Counts a failed attempt against every counter.
    pub async fn record_failure(&self) -> Result<(), redis::RedisError> {
        let mut conn = self.redis.clone();
        let now = chrono::Utc::now().timestamp();
        let mut pipe = redis::pipe();
        for (key, _) in &self.keys {
            pipe.hincr(key, "failures", 1).ignore();
            pipe.hset(key, "last", now).ignore();
            pipe.expire(key, WINDOW_SECONDS).ignore();
        }
        pipe.query_async::<()>(&mut conn).await
    }

    /// Clears the account's counter after a success. The address keeps its count, so one
    /// valid account cannot be used to reset an address that is guessing at others.
    pub async fn record_success(&self) -> Result<(), redis::RedisError> {
        let mut conn = self.redis.clone();
        let accounts: Vec<&String> = self
            .keys
            .iter()
            .filter(|(_, s)| matches!(s, Scope::Account))
            .map(|(k, _)| k)
            .collect();
        redis::cmd("DEL")
            .arg(accounts)
            .query_async::<()>(&mut conn)
            .await
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The allowance is free; after it each failure doubles the wait, up to the cap.
    #[test]
    fn the_wait_doubles_after_the_allowance_and_is_capped() {
        assert_eq!(delay_after(4, Scope::Account), 0);
        assert_eq!(delay_after(5, Scope::Account), 1);
        assert_eq!(delay_after(8, Scope::Account), 8);
        assert_eq!(delay_after(40, Scope::Account), MAX_DELAY_SECONDS);
        assert_eq!(delay_after(9, Scope::Address), 0);
        assert_eq!(delay_after(11, Scope::Address), 2);
    }
}
