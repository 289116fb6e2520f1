//! `reconnect`: M subscribers of one therapist's availability receive a few events, all drop
//! at once, more events happen while they are away, and they all reconnect together, each
//! subscribing with `since` = the last `seq` it saw, while further events keep coming.
//! Reports the time until every connection has resumed and caught up, and per event whether
//! it was replayed, missed or duplicated (and any `resync`, which means history did not
//! reach back far enough).
//!
//! With several nodes (`--base a,b`) connection i first opens on node i and resumes on node
//! i + 1, so the replay after the drop is served by a node the client was never on.

use super::{Ctx, FrameHead, MAX_CONNECTIONS, Publisher, accounts_for, open_subscribed};
use crate::net::{self, Sources, Tuning, Ws};
use crate::stats::{Latency, Report, SeqCheck, round3};
use futures_util::StreamExt;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

/// How long the reconnecting clients get to catch up before the run gives up.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(60);

#[derive(clap::Args)]
pub struct Args {
    /// Connections dropped and resumed.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Distinct accounts they sign in as.
    #[arg(long, default_value_t = 500)]
    users: usize,
    /// Events delivered live before the drop.
    #[arg(long, default_value_t = 5)]
    before: usize,
    /// Events published while everyone is away (to be replayed).
    #[arg(long, default_value_t = 10)]
    away: usize,
    /// Events published while everyone is reconnecting.
    #[arg(long, default_value_t = 5)]
    during: usize,
    /// Pause between events, in milliseconds.
    #[arg(long, default_value_t = 100)]
    interval_ms: u64,
}

/// One connection after it came back.
struct Resumed {
    last_before: u64,
    /// Events received after the reconnect, in order.
    seqs: Vec<u64>,
    resyncs: u64,
    /// When it had everything published before the reconnect began.
    caught_up: Option<Instant>,
    failed: Option<String>,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<Report> {
    let m = args.connections.clamp(1, MAX_CONNECTIONS);
    let interval = Duration::from_millis(args.interval_ms.min(10_000));
    let (before, away, during) = (
        args.before.min(1000) as u64,
        args.away.min(900) as u64,
        args.during.min(1000) as u64,
    );
    let accounts = ctx
        .setup
        // Twice the share: the server may still count a dropped socket for a moment.
        .clients(accounts_for(2 * m, args.users).min(m))
        .await?;
    let (topic, mut publisher) = Publisher::new(ctx).await?;
    ctx.check_server_fds(m);
    let sources = Sources::new(ctx.source_addresses, m);

    // 1. Everyone subscribed and receiving.
    let opened = open_subscribed(ctx, &accounts, m, &topic, &sources, Tuning::default()).await;
    if opened.failed > 0 {
        anyhow::bail!(
            "{} of {m} connections failed: {}",
            opened.failed,
            opened.first_error.unwrap_or_default()
        );
    }
    let base = opened.sockets.iter().map(|(_, s)| *s).max().unwrap_or(0);
    let live_until = base + before;
    let readers: Vec<_> = opened
        .sockets
        .into_iter()
        .map(|(ws, _)| tokio::spawn(read_until(ws, live_until)))
        .collect();
    for i in 0..before {
        publisher.publish(i + 1).await?;
        tokio::time::sleep(interval).await;
    }
    let mut last_seen = Vec::with_capacity(m);
    let mut sockets = Vec::with_capacity(m);
    for reader in readers {
        let (ws, last) = reader.await?;
        last_seen.push(last);
        sockets.push(ws);
    }

    // 2. All drop at once; events happen while they are away.
    drop(sockets);
    for i in 0..away {
        publisher.publish(before + i + 1).await?;
        tokio::time::sleep(interval / 4).await;
    }
    let caught_up_at = base + before + away;
    let last = caught_up_at + during;

    // 3. All come back together while more events are published.
    let permits = Arc::new(Semaphore::new(ctx.connect_concurrency));
    let (stop, stopped) = watch::channel(());
    let reconnect_started = Instant::now();
    let returning: Vec<_> = last_seen
        .iter()
        .enumerate()
        .map(|(i, &since)| {
            let account = accounts[i % accounts.len()].clone();
            let (permits, stopped, topic) = (permits.clone(), stopped.clone(), topic.clone());
            let source = sources.next();
            let opening = async move {
                let permit = permits.acquire_owned().await.ok();
                // The next node: with several, every client resumes on another node than
                // the one it dropped from, as after a node restart behind a load balancer.
                let ws = ctx
                    .open(i + 1, Some(&account), source, Tuning::default())
                    .await;
                (ws, permit)
            };
            async move {
                let (ws, permit) = opening.await;
                resume(ws, permit, &topic, since, caught_up_at, last, stopped).await
            }
        })
        .collect();
    let returning = futures_util::future::join_all(returning);
    let publishing = async {
        for i in 0..during {
            tokio::time::sleep(interval).await;
            publisher.publish(before + away + i + 1).await?;
        }
        anyhow::Ok(())
    };
    let timer = async {
        tokio::time::sleep(CATCH_UP_LIMIT).await;
        drop(stop);
    };
    let (resumed, published) = tokio::select! {
        both = async { tokio::join!(returning, publishing) } => both,
        _ = timer => anyhow::bail!("the run did not finish within {CATCH_UP_LIMIT:?}"),
    };
    published?;

    // 4. Tally.
    let mut check = SeqCheck::default();
    let (mut replayed, mut live, mut resyncs, mut failed, mut not_caught_up) = (0, 0, 0, 0, 0);
    let mut catch_up_times = Vec::new();
    let mut first_error = None;
    for r in &resumed {
        if let Some(e) = &r.failed {
            failed += 1;
            first_error.get_or_insert_with(|| e.clone());
            continue;
        }
        // Anything at or below what it had already seen is a duplicate too.
        let mut seqs = vec![r.last_before];
        seqs.extend(r.seqs.iter().copied());
        let mut c = SeqCheck::of(&seqs, r.last_before + 1, last);
        c.duplicates += r.seqs.iter().filter(|&&s| s < r.last_before).count() as u64;
        check.add(c);
        replayed += r
            .seqs
            .iter()
            .filter(|&&s| s > r.last_before && s <= caught_up_at)
            .count() as u64;
        live += r.seqs.iter().filter(|&&s| s > caught_up_at).count() as u64;
        resyncs += r.resyncs;
        match r.caught_up {
            Some(at) => catch_up_times.push(at.saturating_duration_since(reconnect_started)),
            None => not_caught_up += 1,
        }
    }
    let all_caught_up = catch_up_times.iter().max().copied().unwrap_or_default();
    let catch_up = Latency::of(catch_up_times);

    let mut report = ctx.report("reconnect");
    report
        .both("connections", m as u64)
        .both("events_before", before)
        .both("events_away", away)
        .both("events_during", during)
        .row(
            "all resumed and caught up after",
            format!("{:.3} s", all_caught_up.as_secs_f64()),
        )
        .json("all_caught_up_seconds", round3(all_caught_up.as_secs_f64()))
        .row("per-connection catch-up p50 / p99 / max", catch_up.cell())
        .both("replayed", replayed)
        .both("live_after_resume", live)
        .both("missed", check.missing)
        .both("duplicated", check.duplicates)
        .both("out_of_order", check.out_of_order)
        .both("resyncs", resyncs)
        .both("reconnect_failures", failed)
        .both("not_caught_up", not_caught_up);
    catch_up.put(&mut report, "catch_up");
    if let Some(error) = first_error {
        report.row("first error", error);
    }
    let expected_replays = (m as u64) * away;
    report.both(
        "ok",
        failed == 0
            && not_caught_up == 0
            && check.missing == 0
            && check.duplicates == 0
            && resyncs == 0
            && replayed >= expected_replays,
    );
    Ok(report)
}

/// Reads events until `last`; returns the socket and the last `seq` seen.
async fn read_until(mut ws: Ws, last: u64) -> (Ws, u64) {
    let mut seen = 0;
    let deadline = Instant::now() + CATCH_UP_LIMIT;
    while seen < last {
        let left = deadline.saturating_duration_since(Instant::now());
        match net::next_text(&mut ws, left).await {
            net::Incoming::Text(text) => {
                if let Some(FrameHead {
                    kind,
                    seq: Some(seq),
                    ..
                }) = FrameHead::parse(&text)
                    && kind == "event"
                {
                    seen = seen.max(seq);
                }
            }
            _ => break,
        }
    }
    (ws, seen)
}

/// Subscribes again from `since` and reads until event `last` (or the stop signal),
/// noting when everything up to `caught_up_at` had arrived. The connect permit is given back
/// once subscribed, so at most `--connect-concurrency` handshakes are in flight.
async fn resume(
    ws: anyhow::Result<Ws>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    topic: &str,
    since: u64,
    caught_up_at: u64,
    last: u64,
    mut stop: watch::Receiver<()>,
) -> Resumed {
    let mut out = Resumed {
        last_before: since,
        seqs: Vec::new(),
        resyncs: 0,
        caught_up: None,
        failed: None,
    };
    let mut ws = match ws {
        Ok(ws) => ws,
        Err(e) => {
            out.failed = Some(format!("{e:#}"));
            return out;
        }
    };
    let frame = json!({ "type": "subscribe", "topic": topic, "since": since });
    if let Err(e) = net::send(&mut ws, &frame).await {
        out.failed = Some(format!("{e:#}"));
        return out;
    }
    let mut permit = permit;
    let mut highest = since;
    if highest >= caught_up_at {
        out.caught_up = Some(Instant::now());
    }
    while highest < last {
        let message = tokio::select! {
            _ = stop.changed() => break,
            message = ws.next() => message,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => {
                out.failed = Some("closed while catching up".into());
                break;
            }
        };
        let Some(head) = FrameHead::parse(&text) else {
            continue;
        };
        match (head.kind.as_str(), head.seq) {
            ("event", Some(seq)) => {
                out.seqs.push(seq);
                highest = highest.max(seq);
                if out.caught_up.is_none() && contiguous(since, &out.seqs, caught_up_at) {
                    out.caught_up = Some(Instant::now());
                }
            }
            ("subscribed", _) => drop(permit.take()),
            ("resync", Some(seq)) => {
                out.resyncs += 1;
                highest = highest.max(seq);
            }
            _ => {}
        }
    }
    let _ = ws.close(None).await;
    out
}

/// True when every number in `since+1..=upto` is among `seqs`.
fn contiguous(since: u64, seqs: &[u64], upto: u64) -> bool {
    let have: std::collections::HashSet<u64> = seqs.iter().copied().collect();
    (since + 1..=upto).all(|s| have.contains(&s))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Caught up means nothing is missing up to the mark, whatever the order.
    #[test]
    fn caught_up_means_no_gap_up_to_the_mark() {
        assert!(contiguous(5, &[6, 7, 8], 8));
        assert!(contiguous(5, &[8, 6, 7, 9], 8));
        assert!(!contiguous(5, &[6, 8], 8));
        assert!(contiguous(8, &[], 8));
    }
}
