//! Typed settings, read once from the environment at start-up. Tests build a `Settings`
//! directly and vary what they need.

use crate::email::{DEFAULT_FROM, MailTransport, Mailbox};
use anyhow::{Context, bail};
use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything the server needs to start.
#[derive(Clone, Debug)]
pub struct Settings {
    /// PostgreSQL connection URL (`DATABASE_URL`).
    pub database_url: String,
    /// Redis connection URL (`REDIS_URL`).
    pub redis_url: String,
    /// Prefix for every Redis key and channel (`REDIS_PREFIX`), so tests and several
    /// deployments can share one Redis without seeing each other's events.
    pub redis_prefix: String,
    /// Address to listen on (`BIND`, default `127.0.0.1:8080`; port 0 picks a free port).
    pub bind: SocketAddr,
    /// The origin browsers load the app from (`PUBLIC_ORIGIN`). Websocket upgrades and
    /// cookie-authenticated writes from any other origin are refused.
    pub public_origin: String,
    /// Built web app to serve at `/` (`WEB_DIR`, default `web/dist`).
    pub web_dir: PathBuf,
    /// Production mode (`PARANIMO_ENV=production`): secure cookies, HSTS, and no defaults for
    /// secrets.
    pub production: bool,
    /// Minutes before a session's start that its room opens (`ROOM_OPENS_MINUTES_BEFORE`).
    pub room_opens_minutes_before: i64,
    /// STUN server URLs handed to browsers (`STUN_URLS`, comma-separated).
    pub stun_urls: Vec<String>,
    /// TURN server URLs (`TURN_URLS`, comma-separated); used only with `turn_secret`.
    pub turn_urls: Vec<String>,
    /// Shared secret of the TURN server's REST credential scheme (`TURN_SECRET`).
    pub turn_secret: Option<SecretString>,
    /// HTTP worker threads (`HTTP_WORKERS`, default: one per core).
    pub workers: usize,
    /// Where transactional mail goes (`MAIL_TRANSPORT`: `smtp://host:port`,
    /// `smtps://user:password@host:port` or `folder:/path`). Development runs default to the
    /// folder `.data/mail`, so mail is never sent by accident; production must set it.
    pub mail_transport: MailTransport,
    /// The sender of every mail (`MAIL_FROM`, default `Paranimo <no-reply@paranimo.test>`).
    pub mail_from: Mailbox,
    /// Reverse proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`, comma-separated
    /// IPs). Requests from anywhere else are attributed to their socket's peer address.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The key that wraps every user's data key (`MASTER_KEY`, base64 of 32 bytes; see
    /// [`crate::crypto`]). Development runs without it use a public development key and warn;
    /// production refuses to start.
    pub master_key: secrecy::SecretSlice<u8>,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Settings {
    /// Reads the environment. In production every secret-bearing setting must be given
    /// explicitly: a missing one is an error, never a silent default.
    pub fn from_env() -> anyhow::Result<Self> {
        let production = env_or("PARANIMO_ENV", "development") == "production";
        if production {
            for required in ["DATABASE_URL", "REDIS_URL", "PUBLIC_ORIGIN"] {
                if std::env::var(required)
                    .map(|v| v.is_empty())
                    .unwrap_or(true)
                {
                    bail!("{required} must be set when PARANIMO_ENV=production");
                }
            }
        }

        let bind = env_or("BIND", "127.0.0.1:8080");
        let bind: SocketAddr = bind
            .parse()
            .with_context(|| format!("BIND={bind} is not an address"))?;
        let default_origin = format!("http://{bind}");
        let public_origin = env_or("PUBLIC_ORIGIN", &default_origin)
            .trim_end_matches('/')
            .to_owned();
        if production && !public_origin.starts_with("https://") {
            bail!("PUBLIC_ORIGIN must be https:// in production");
        }

        let room_opens = env_or("ROOM_OPENS_MINUTES_BEFORE", "10");
        let room_opens_minutes_before = room_opens
            .parse()
            .with_context(|| format!("ROOM_OPENS_MINUTES_BEFORE={room_opens} is not a number"))?;
        let workers = match std::env::var("HTTP_WORKERS") {
            Ok(n) => n.parse().context("HTTP_WORKERS is not a number")?,
            Err(_) => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        };

        let mail_transport = match std::env::var("MAIL_TRANSPORT") {
            Ok(value) if !value.is_empty() => value.parse()?,
            _ if production => bail!(
                "MAIL_TRANSPORT must be set when PARANIMO_ENV=production \
                 (smtps://user:password@host:465, smtp://host:port or folder:/path)"
            ),
            _ => MailTransport::development_default(),
        };
        let mail_from = env_or("MAIL_FROM", DEFAULT_FROM);
        let mail_from: Mailbox = mail_from
            .parse()
            .with_context(|| format!("MAIL_FROM={mail_from} is not a mail address"))?;

        Ok(Self {
            database_url: env_or(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/paranimo",
            ),
            redis_url: env_or("REDIS_URL", "redis://127.0.0.1:6379"),
            redis_prefix: env_or("REDIS_PREFIX", "paranimo:"),
            bind,
            public_origin,
            web_dir: PathBuf::from(env_or("WEB_DIR", "web/dist")),
            production,
            room_opens_minutes_before,
            stun_urls: list(&env_or("STUN_URLS", "")),
            turn_urls: list(&env_or("TURN_URLS", "")),
            turn_secret: std::env::var("TURN_SECRET")
                .ok()
                .filter(|s| !s.is_empty())
                .map(Into::into),
            workers,
            mail_transport,
            mail_from,
            trusted_proxies: list(&env_or("TRUSTED_PROXIES", ""))
                .iter()
                .map(|ip| {
                    ip.parse()
                        .with_context(|| format!("TRUSTED_PROXIES: {ip} is not an IP"))
                })
                .collect::<anyhow::Result<_>>()?,
            master_key: crate::crypto::master_key_from(
                std::env::var(crate::crypto::MASTER_KEY_ENV).ok().as_deref(),
                production,
            )?,
        })
    }
}
