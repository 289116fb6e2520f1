//! Throttling of guesses, kept in Redis so it holds across every node. Failures are counted
//! under several keys at once; past each key's free allowance every further failure doubles
//! the wait before the next attempt is even considered, up to that key's cap:
//!
//! - account and address together: the common case of one attacker guessing one password;
//! - the address alone: one attacker guessing at many accounts;
//! - the account alone, with a higher allowance and a short cap: many addresses guessing at
//!   one account. Its cap is short on purpose, so nobody can lock an owner out of their own
//!   account for long by failing on purpose from elsewhere.
//!
//! Accounts are keyed by a hash of the email, so unknown emails are throttled exactly like
//! known ones, and Redis never holds an address.

use crate::config::Settings;
use actix_web::HttpRequest;
use paranimo_actors::ids::UserId;
use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// How long failures are remembered after the last one.
pub const WINDOW_SECONDS: i64 = 60 * 60;

/// One kind of counter: how many failures are free, and the longest wait it imposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scope {
    pub free_failures: u32,
    pub max_delay_ms: i64,
}

/// One account from one address.
pub const ACCOUNT_AT_ADDRESS: Scope = Scope {
    free_failures: 5,
    max_delay_ms: 15 * 60_000,
};

/// One address, whatever accounts it tries: higher than per account, because one address
/// (an office, a household) can hold several honest users.
pub const ADDRESS: Scope = Scope {
    free_failures: 10,
    max_delay_ms: 15 * 60_000,
};

/// One account, from any number of addresses.
pub const ACCOUNT: Scope = Scope {
    free_failures: 20,
    max_delay_ms: 60_000,
};

/// Signed-in re-authentication (password change, second-factor changes) per account.
pub const REAUTHENTICATION: Scope = Scope {
    free_failures: 5,
    max_delay_ms: 15 * 60_000,
};

/// The wait owed after `failures` failures, in milliseconds: none within the allowance,
/// then 1 s, 2 s, 4 s… up to the scope's cap.
pub fn delay_after(failures: u32, scope: Scope) -> i64 {
    if failures < scope.free_failures {
        return 0;
    }
    let doublings = (failures - scope.free_failures).min(20);
    (1_000_i64 << doublings).min(scope.max_delay_ms)
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The counters one attempt is checked against.
pub struct Throttle {
    redis: ConnectionManager,
    keys: Vec<(String, Scope)>,
}

impl Throttle {
    /// Counters for a sign-in with this email from this address.
    pub fn for_login(
        redis: ConnectionManager,
        prefix: &str,
        email: &str,
        address: Option<IpAddr>,
    ) -> Self {
        let account = hex(&Sha256::digest(email.trim().to_lowercase().as_bytes()));
        let mut keys = vec![(format!("{prefix}throttle:account:{account}"), ACCOUNT)];
        if let Some(address) = address {
            keys.push((
                format!("{prefix}throttle:pair:{account}:{address}"),
                ACCOUNT_AT_ADDRESS,
            ));
            keys.push((format!("{prefix}throttle:address:{address}"), ADDRESS));
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
            .map(|a| vec![(format!("{prefix}throttle:{kind}:{a}"), ADDRESS)])
            .unwrap_or_default();
        Self { redis, keys }
    }

    /// A counter of wrong second-factor codes for one account, however many password
    /// successes (challenges) they are spread over.
    pub fn for_second_factor(redis: ConnectionManager, prefix: &str, user: UserId) -> Self {
        let keys = vec![(format!("{prefix}throttle:mfa:{user}"), ACCOUNT_AT_ADDRESS)];
        Self { redis, keys }
    }

    /// A counter of wrong passwords or codes given by a signed-in user (changing the
    /// password or the second factor), so a stolen session cannot guess either.
    pub fn for_reauthentication(redis: ConnectionManager, prefix: &str, user: UserId) -> Self {
        let keys = vec![(format!("{prefix}throttle:reauth:{user}"), REAUTHENTICATION)];
        Self { redis, keys }
    }

    /// Seconds (rounded up) to wait before this attempt may be considered; 0 to go ahead.
    pub async fn wait_seconds(&self) -> Result<i64, redis::RedisError> {
        let mut conn = self.redis.clone();
        let now = chrono::Utc::now().timestamp_millis();
        let mut wait_ms = 0;
        for (key, scope) in &self.keys {
            let (failures, last): (Option<u32>, Option<i64>) = redis::cmd("HMGET")
                .arg(key)
                .arg("failures")
                .arg("last_ms")
                .query_async(&mut conn)
                .await?;
            let (Some(failures), Some(last)) = (failures, last) else {
                continue;
            };
            wait_ms = wait_ms.max(last + delay_after(failures, *scope) - now);
        }
        Ok((wait_ms.max(0) + 999) / 1000)
    }

    /// Counts a failed attempt against every counter.
    pub async fn record_failure(&self) -> Result<(), redis::RedisError> {
        self.count(|_| true).await
    }

    /// Counts an attempt refused for being too early against the address counters only: a
    /// hammering attacker lengthens their own wait, not the account owner's.
    pub async fn record_refused(&self) -> Result<(), redis::RedisError> {
        self.count(|scope| scope == ADDRESS).await
    }

    async fn count(&self, which: impl Fn(Scope) -> bool) -> Result<(), redis::RedisError> {
        let mut conn = self.redis.clone();
        let now = chrono::Utc::now().timestamp_millis();
        let mut pipe = redis::pipe();
        for (key, _) in self.keys.iter().filter(|(_, scope)| which(*scope)) {
            pipe.hincr(key, "failures", 1).ignore();
            pipe.hset(key, "last_ms", now).ignore();
            pipe.expire(key, WINDOW_SECONDS).ignore();
        }
        pipe.query_async::<()>(&mut conn).await
    }

    /// Clears the account's counters after a success. The address keeps its count, so one
    /// valid account cannot be used to reset an address that is guessing at others.
    pub async fn record_success(&self) -> Result<(), redis::RedisError> {
        let mut conn = self.redis.clone();
        let cleared: Vec<&String> = self
            .keys
            .iter()
            .filter(|(_, s)| *s != ADDRESS)
            .map(|(k, _)| k)
            .collect();
        if cleared.is_empty() {
            return Ok(());
        }
        redis::cmd("DEL")
            .arg(cleared)
            .query_async::<()>(&mut conn)
            .await
    }
}

/// Runs a signed-in user's re-authentication `check` (a password or a code) under the
/// [`REAUTHENTICATION`] throttle: refused with a wait while one is owed, counted when it
/// fails, cleared when it passes. `failed` says which errors of `check` count as a guess.
pub async fn reauthenticate<T, E>(
    state: &crate::state::AppState,
    user: UserId,
    check: impl Future<Output = Result<T, E>>,
    failed: impl Fn(&E) -> bool,
) -> Result<T, crate::http::error::ApiError>
where
    E: Into<crate::http::error::ApiError>,
{
    use crate::http::error::ApiError;
    let internal = |e: redis::RedisError| ApiError::Internal(e.into());
    let prefix = &state.settings.redis_prefix;
    let counter = Throttle::for_reauthentication(state.bus.connection(), prefix, user);
    let wait = counter.wait_seconds().await.map_err(internal)?;
    if wait > 0 {
        return Err(ApiError::RateLimited {
            retry_after_seconds: wait,
        });
    }
    match check.await {
        Ok(value) => {
            counter.record_success().await.map_err(internal)?;
            Ok(value)
        }
        Err(e) => {
            if failed(&e) {
                counter.record_failure().await.map_err(internal)?;
            }
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The allowance is free; after it each failure doubles the wait, up to the cap.
    #[test]
    fn the_wait_doubles_after_the_allowance_and_is_capped() {
        assert_eq!(delay_after(4, ACCOUNT_AT_ADDRESS), 0);
        assert_eq!(delay_after(5, ACCOUNT_AT_ADDRESS), 1_000);
        assert_eq!(delay_after(8, ACCOUNT_AT_ADDRESS), 8_000);
        assert_eq!(delay_after(40, ACCOUNT_AT_ADDRESS), 15 * 60_000);
        assert_eq!(delay_after(9, ADDRESS), 0);
        assert_eq!(delay_after(11, ADDRESS), 2_000);
        assert_eq!(delay_after(19, ACCOUNT), 0);
        assert_eq!(
            delay_after(30, ACCOUNT),
            60_000,
            "an owner is never locked out for long"
        );
    }
}
