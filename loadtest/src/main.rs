//! Paranimo's load generator. It speaks only the public HTTP and websocket protocol (the
//! wire types come from `paranimo-actors`), makes its own accounts and data through the API,
//! and runs named scenarios with bounded sizes and durations against loopback addresses
//! only. Each scenario prints a readable table and, as its last line, a one-line JSON
//! summary with stable keys, so results can be kept and compared.
//!
//! # Scenarios
//!
//! - `login`: sign-ins per second and their latency for one account (the cost of Argon2id).
//! - `idle`: N authenticated websockets held open with heartbeats; the server's memory per
//!   connection (resident set before and after) and the connect rate.
//! - `fanout`: N subscribers of one therapist's `availability:<id>` while the calendar changes
//!   K times; delivery latency p50/p99/max and any event missed (by `seq`).
//! - `booking`: C clients racing for S slots of T therapists; bookings per second and
//!   latency, then PostgreSQL is checked for overlapping bookings.
//! - `chat`: P booked pairs exchanging `message.send`; throughput, delivery latency, loss and
//!   duplicates by message id.
//! - `signalling`: R rooms, each with two `webrtc` 0.21 peers negotiating through
//!   `room.join`/`room.signal` and exchanging a data-channel message; rooms per second and
//!   offer to connected.
//! - `relay`: P pairs pinging each other through the server and echoing back (Paranimo:
//!   `room.signal` in booked rooms; peers: `message.send`); the relay's round trip p50/p99,
//!   to set beside the tokio-minimal peer's.
//! - `reconnect`: M subscribers dropped at once and resumed with `since`; time until all have
//!   caught up, and events replayed, missed and duplicated.
//! - `slow`: `fanout` twice, the second time with one subscriber that stops reading; the
//!   others' p99 in both runs and the server's memory over time.
//!
//! `--target generic` drives the reference peers (`loadtest/peers/`) through the minimal
//! protocol they share (no authentication, `ws://127.0.0.1:<port>/ws`); only `idle`,
//! `fanout`, `chat` and `relay` exist there.
//!
//! # Starting Paranimo for a load run
//!
//! A release build against a fresh database, mail written to a folder the generator reads,
//! and loopback trusted as a proxy so each made-up account may carry its own
//! `X-Forwarded-For` (otherwise sign-ups are throttled after 10 an hour per address):
//!
//! ```sh
//! cargo build --release
//! createdb -h 127.0.0.1 -U postgres paranimo_load
//! ulimit -n 200000   # as root; the server needs one descriptor per connection
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/paranimo_load \
//! REDIS_URL=redis://127.0.0.1:6379 REDIS_PREFIX=load: \
//! BIND=127.0.0.1:8080 PUBLIC_ORIGIN=http://127.0.0.1:8080 \
//! MAIL_TRANSPORT=folder:/tmp/paranimo-load-mail TRUSTED_PROXIES=127.0.0.1 \
//! RUST_LOG=warn ROOM_OPENS_MINUTES_BEFORE=100000 \
//!   target/release/paranimo serve &
//! ```
//!
//! Then, for example:
//!
//! ```sh
//! L="target/release/paranimo-loadtest --mail-dir /tmp/paranimo-load-mail \
//!    --accounts-cache /tmp/paranimo-load-accounts.json --server-pid $(pgrep -n paranimo)"
//! $L idle --connections 2000
//! $L fanout --subscribers 1000 --events 20
//! $L booking --clients 50 --slots 96 --therapists 12 \
//!    --database-url postgres://postgres@127.0.0.1:5432/paranimo_load
//! $L chat --pairs 50
//! $L signalling --rooms 20
//! $L relay --pairs 50
//! $L reconnect --connections 1000
//! $L slow --subscribers 1000
//! target/release/paranimo-loadtest --target generic --base ws://127.0.0.1:9001 fanout
//! ```
//!
//! `ROOM_OPENS_MINUTES_BEFORE=100000` lets the signalling and relay scenarios join rooms of
//! bookings made weeks ahead. Accounts made once are kept in `--accounts-cache` and reused
//! as long as the database is the same; the server allows 16 websockets per session, so
//! the connection scenarios sign in at least one account per 16 sockets.
//!
//! # Several nodes
//!
//! Paranimo nodes form a cluster by sharing the database and the Redis prefix: every
//! websocket event goes through Redis pub/sub, whichever node made it. Start a second node
//! like the first, on its own `BIND` but with the same `DATABASE_URL`, `REDIS_PREFIX` and
//! `PUBLIC_ORIGIN` (the origin browsers see, in front of both), and give both addresses:
//!
//! ```sh
//! target/release/paranimo-loadtest --mail-dir /tmp/paranimo-load-mail \
//!    --accounts-cache /tmp/paranimo-load-accounts.json \
//!    --base http://127.0.0.1:8080,http://127.0.0.1:8081 \
//!    --server-pid "$(pgrep -d, -x paranimo)" fanout --subscribers 1000
//! ```
//!
//! Sign-up, set-up, the publisher's calendar changes and every other HTTP request go to the
//! first address; the websockets of `idle`, `fanout`, `slow`, `chat`, `relay` and
//! `signalling` are spread over the nodes in turn (a pair's two sides on different nodes),
//! and `reconnect` resumes each client on the next node. The JSON summary records `nodes`,
//! and memory figures are summed over the `--server-pid`s.
//!
//! Reading the figures:
//! - Memory per connection is the growth of the server's resident set, so measure `idle`
//!   on a freshly started server with the accounts already cached: memory freed by earlier
//!   runs is reused without growing the resident set, and every sign-up's Argon2id hash
//!   (19 MiB) leaves memory behind in the allocator.
//! - The load generator raises its own open-files limit to the hard limit (printed on
//!   standard error); the server needs its own (`ulimit -n` before starting it, or
//!   `prlimit --pid`), where the machine allows it.
//! - Past about 25,000 connections the generator spreads its sockets over 127.0.0.2,
//!   127.0.0.3, … (one source address runs out of ports near 28,000).
//! - Keep `--connect-concurrency` below the server's listen backlog, or refused SYNs come
//!   back after a one-second retransmit and show as a 1 s handshake p99.
//!
//! Figures from a machine that also compiles or runs other work are smoke checks only.

mod accounts;
mod net;
mod scenarios;
mod stats;

use anyhow::bail;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Paranimo load generator (loopback targets only).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The server: http://127.0.0.1:8080 for Paranimo, ws://127.0.0.1:<port> for a peer.
    /// Several nodes of one cluster are given comma-separated: set-up, HTTP and publishers
    /// use the first, and the websockets are spread over all of them in turn. Loopback only.
    #[arg(long, default_value = "http://127.0.0.1:8080", value_delimiter = ',')]
    base: Vec<String>,
    /// The Origin the servers expect (their PUBLIC_ORIGIN, one for the whole cluster);
    /// defaults to the first `base`.
    #[arg(long)]
    origin: Option<String>,
    /// Paranimo's own protocol, or the minimal one the reference peers speak.
    #[arg(long, value_enum, default_value_t = Target::Paranimo)]
    target: Target,
    /// The server's mail folder (`MAIL_TRANSPORT=folder:<dir>`), to confirm new accounts.
    #[arg(long)]
    mail_dir: Option<PathBuf>,
    /// A JSON file keeping the accounts made, so later runs skip the set-up.
    #[arg(long)]
    accounts_cache: Option<PathBuf>,
    /// The server's process id, to read its resident memory from /proc; for several nodes,
    /// their ids comma-separated (memory is then the sum).
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// Loopback source addresses to spread connections over (127.0.0.2, …); 0 = as needed.
    #[arg(long, default_value_t = 0)]
    source_addresses: usize,
    /// Websocket handshakes in flight at once. Paranimo's listen backlog is 128 today
    /// (std's default): far above that, SYNs overflow and wait a 1 s retransmit.
    #[arg(long, default_value_t = 100)]
    connect_concurrency: usize,
    /// Accounts being registered at once during set-up.
    #[arg(long, default_value_t = 8)]
    setup_concurrency: usize,
    #[command(subcommand)]
    scenario: Scenario,
}

/// Which protocol the target speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    Paranimo,
    Generic,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Paranimo => "paranimo",
            Target::Generic => "generic",
        }
    }
}

#[derive(Subcommand)]
enum Scenario {
    /// Repeated sign-ins of one confirmed account without a second factor.
    Login {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        /// Clients signing in at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// How long to run, in seconds (at most 120).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    Idle(scenarios::idle::Args),
    Fanout(scenarios::fanout::Args),
    Booking(scenarios::booking::Args),
    Chat(scenarios::chat::Args),
    Signalling(scenarios::signalling::Args),
    Reconnect(scenarios::reconnect::Args),
    Slow(scenarios::slow::Args),
    Relay(scenarios::relay::Args),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let bases: Vec<String> = cli
        .base
        .iter()
        .map(|b| b.trim().trim_end_matches('/').to_owned())
        .filter(|b| !b.is_empty())
        .collect();
    if bases.is_empty() {
        bail!("--base needs at least one address");
    }
    for base in &bases {
        net::require_loopback(base)?;
    }
    let origin = cli.origin.clone().unwrap_or_else(|| bases[0].clone());

    let fd = net::raise_fd_limit(1 << 20);
    eprintln!(
        "open-files limit: {} before, now soft {} / hard {}",
        fd.before, fd.soft, fd.hard
    );

    let generic_only = |name: &str| -> anyhow::Result<()> {
        if cli.target == Target::Generic {
            bail!(
                "`{name}` needs Paranimo's HTTP API; the generic peers run idle, fanout, chat \
                 and relay"
            );
        }
        Ok(())
    };
    let ctx = scenarios::Ctx::new(&cli, &bases, &origin, fd)?;
    let report = match cli.scenario {
        Scenario::Login {
            email,
            password,
            concurrency,
            seconds,
        } => {
            generic_only("login")?;
            scenarios::login::run(&ctx, &email, &password, concurrency, seconds).await?
        }
        Scenario::Idle(args) => scenarios::idle::run(&ctx, args).await?,
        Scenario::Fanout(args) => scenarios::fanout::run(&ctx, args).await?,
        Scenario::Booking(args) => {
            generic_only("booking")?;
            scenarios::booking::run(&ctx, args).await?
        }
        Scenario::Chat(args) => scenarios::chat::run(&ctx, args).await?,
        Scenario::Signalling(args) => {
            generic_only("signalling")?;
            scenarios::signalling::run(&ctx, args).await?
        }
        Scenario::Reconnect(args) => {
            generic_only("reconnect")?;
            scenarios::reconnect::run(&ctx, args).await?
        }
        Scenario::Slow(args) => {
            generic_only("slow")?;
            scenarios::slow::run(&ctx, args).await?
        }
        Scenario::Relay(args) => scenarios::relay::run(&ctx, args).await?,
    };
    println!("{}", report.render());
    match report.get("ok") {
        Some(serde_json::Value::Bool(false)) => bail!("the scenario found a failure (see above)"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nodes and their processes are given comma-separated; one of each stays the default.
    #[test]
    fn several_nodes_are_read_from_comma_separated_lists() {
        let cli = Cli::try_parse_from([
            "paranimo-loadtest",
            "--base",
            "http://127.0.0.1:8080,http://127.0.0.1:8081",
            "--server-pid",
            "11,12",
            "fanout",
        ])
        .unwrap();
        assert_eq!(cli.base.len(), 2);
        assert_eq!(cli.server_pid, vec![11, 12]);
        let one = Cli::try_parse_from(["paranimo-loadtest", "idle"]).unwrap();
        assert_eq!(one.base, vec!["http://127.0.0.1:8080".to_owned()]);
        assert!(one.server_pid.is_empty());
    }
}
