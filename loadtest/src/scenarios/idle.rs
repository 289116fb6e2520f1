//! `idle`: N authenticated websockets held open with heartbeats, spread round-robin over the
//! nodes when there are several. Reports the servers' resident memory before and after (so
//! memory per connection, summed over the nodes), the connect rate, and how many
//! connections the server dropped while they were held.

use super::{Ctx, MAX_CONNECTIONS, accounts_for, ping_frame};
use crate::net::{self, Sources, Tuning, Ws};
use crate::stats::{Latency, Report, round3, rss_kib};
use futures_util::{StreamExt, stream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Longest hold accepted, in seconds.
const MAX_HOLD_SECONDS: u64 = 600;

/// Pause after the last connect before memory is read, so the server has settled.
const SETTLE: Duration = Duration::from_secs(2);

#[derive(clap::Args)]
pub struct Args {
    /// Connections to hold open.
    #[arg(long, default_value_t = 2000)]
    connections: usize,
    /// Distinct accounts the connections sign in as (round-robin; a person with many tabs);
    /// raised to one per 16 connections, the server's cap per session.
    #[arg(long, default_value_t = 500)]
    users: usize,
    /// How long to hold them after the last one opened, in seconds.
    #[arg(long, default_value_t = 20)]
    hold_seconds: u64,
    /// Each connection sends an application `ping` this often (and answers the server's
    /// websocket pings as it reads).
    #[arg(long, default_value_t = 15)]
    heartbeat_seconds: u64,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<Report> {
    let n = args.connections.clamp(1, MAX_CONNECTIONS);
    let hold = Duration::from_secs(args.hold_seconds.min(MAX_HOLD_SECONDS));
    let heartbeat = Duration::from_secs(args.heartbeat_seconds.max(1));
    let accounts = match ctx.target {
        crate::Target::Paranimo => ctx.setup.clients(accounts_for(n, args.users)).await?,
        crate::Target::Generic => Vec::new(),
    };
    ctx.check_server_fds(n);
    let sources = Sources::new(ctx.source_addresses, n);

    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = ctx.server_rss();
    let own_before = rss_kib(std::process::id());
    let (stop, stopped) = watch::channel(false);
    let dropped = Arc::new(AtomicU64::new(0));

    // Connect everything, each socket handed to its own holder task as soon as it is open.
    let started = Instant::now();
    let results: Vec<anyhow::Result<Duration>> = stream::iter(0..n)
        .map(|i| {
            let account = accounts.get(i % accounts.len().max(1));
            let (stopped, dropped, sources) = (stopped.clone(), dropped.clone(), &sources);
            async move {
                let begun = Instant::now();
                let ws = ctx
                    .open(i, account, sources.next(), Tuning::default())
                    .await?;
                let took = begun.elapsed();
                tokio::spawn(hold_open(ws, i as u64, heartbeat, stopped, dropped));
                Ok(took)
            }
        })
        .buffer_unordered(ctx.connect_concurrency)
        .collect()
        .await;
    let connect_time = started.elapsed();
    let mut handshakes = Vec::with_capacity(n);
    let mut failed = 0;
    let mut first_error = None;
    for result in results {
        match result {
            Ok(took) => handshakes.push(took),
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    let connected = handshakes.len();
    let handshake = Latency::of(handshakes);

    tokio::time::sleep(SETTLE).await;
    let rss_after = ctx.server_rss();
    let own_after = rss_kib(std::process::id());
    tokio::time::sleep(hold.saturating_sub(SETTLE)).await;
    let rss_end = ctx.server_rss();
    let dropped_during_hold = dropped.load(Ordering::Relaxed);
    let _ = stop.send(true);

    let mut report = ctx.report("idle");
    report
        .both("connections", connected as u64)
        .both("failed", failed as u64)
        .row("source addresses", sources.count())
        .json("source_addresses", sources.count() as u64)
        .both("users", accounts.len() as u64)
        .row(
            "connect time",
            format!("{:.2} s", connect_time.as_secs_f64()),
        )
        .json("connect_seconds", round3(connect_time.as_secs_f64()))
        .both(
            "connects_per_second",
            round3(connected as f64 / connect_time.as_secs_f64()),
        )
        .row("handshake p50 / p99 / max", handshake.cell());
    handshake.put(&mut report, "handshake");
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        let per = (after as f64 - before as f64) / connected.max(1) as f64;
        report
            .both("server_rss_before_kib", before)
            .both("server_rss_after_kib", after)
            .json("server_rss_end_kib", rss_end.unwrap_or(0))
            .row(
                "server RSS at the end of the hold",
                format!("{} KiB", rss_end.unwrap_or(0)),
            )
            .both("server_kib_per_connection", (per * 100.0).round() / 100.0);
    } else {
        report.row("server memory", "not measured (give --server-pid)");
    }
    if let (Some(before), Some(after)) = (own_before, own_after) {
        let per = (after as f64 - before as f64) / connected.max(1) as f64;
        report.both(
            "generator_kib_per_connection",
            (per * 100.0).round() / 100.0,
        );
    }
    report
        .row(
            "held for",
            format!("{:.0} s after the last connect", hold.as_secs_f64()),
        )
        .both("dropped_during_hold", dropped_during_hold);
    if let Some(error) = first_error {
        report.row("first error", error);
    }
    report.both("ok", failed == 0 && dropped_during_hold == 0);
    Ok(report)
}

/// Keeps one socket open: reads (so tungstenite answers the server's pings), sends an
/// application ping every `heartbeat` (staggered by `i`), and counts a close by the server.
async fn hold_open(
    mut ws: Ws,
    i: u64,
    heartbeat: Duration,
    mut stop: watch::Receiver<bool>,
    dropped: Arc<AtomicU64>,
) {
    let stagger = Duration::from_millis(i * 7919 % heartbeat.as_millis().max(1) as u64);
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + stagger, heartbeat);
    let mut beat = 0;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = ticks.tick() => {
                beat += 1;
                if net::send(&mut ws, &ping_frame(beat)).await.is_err() {
                    dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            message = ws.next() => match message {
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            },
        }
    }
    let _ = ws.close(None).await;
}
