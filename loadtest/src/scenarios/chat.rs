//! `chat`: P therapist–client pairs, each with a booking (Paranimo) or a `chat:<k>` topic
//! (generic peers), both sides sending M messages with `message.send` at a steady rate while
//! reading. Reports messages delivered per second, delivery latency (send to the other
//! side's `message.created`) and acknowledgement latency, and checks that every message
//! arrived exactly once by its id.
//!
//! Paranimo limits a connection to 20 frames a second (bursts of 40), so the default rate
//! stays well below that.

use super::{ANSWER_TIMEOUT, Ctx, PairSide, pair_sides, subscribe};
use crate::Target;
use crate::net::{self, Tuning, Ws};
use crate::stats::{Latency, Report, round3};
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args)]
pub struct Args {
    /// Pairs talking at once.
    #[arg(long, default_value_t = 50)]
    pairs: usize,
    /// Messages each side sends.
    #[arg(long, default_value_t = 20)]
    messages: usize,
    /// Messages per second each side sends (Paranimo refuses more than 20 frames a second).
    #[arg(long, default_value_t = 5.0)]
    rate: f64,
    /// How long to wait for stragglers after the last send, in seconds.
    #[arg(long, default_value_t = 10)]
    drain_seconds: u64,
}

/// What one side saw.
#[derive(Default)]
struct Seen {
    sent: u64,
    acks: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
    /// Client ids of the peer's messages received, with their latency.
    received: Vec<(String, Duration)>,
    /// Server message ids received (Paranimo), for the duplicate check.
    server_ids: Vec<String>,
    last_arrival: Option<Instant>,
    connect_failed: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<Report> {
    let p = args.pairs.clamp(1, 50_000);
    let m = args.messages.clamp(1, 10_000);
    let interval = Duration::from_secs_f64(1.0 / args.rate.clamp(0.1, 1000.0));
    let drain = Duration::from_secs(args.drain_seconds.min(120));

    let sides = pair_sides(ctx, p, "").await?;

    // Everyone listens before anyone speaks (the generic peers keep no history).
    // Side i goes to node i in turn: with two nodes, each pair's two sides are on
    // different nodes, so every message crosses between them.
    let opened: Vec<(PairSide, Option<Ws>)> = stream::iter(sides.into_iter().enumerate())
        .map(|(i, side)| async move {
            let ws = match ctx
                .open(i, side.account.as_ref(), None, Tuning::default())
                .await
            {
                Ok(mut ws) => subscribe_side(&mut ws, &side, ctx.target)
                    .await
                    .ok()
                    .map(|()| ws),
                Err(_) => None,
            };
            (side, ws)
        })
        .buffered(ctx.connect_concurrency)
        .collect()
        .await;
    let epoch = Instant::now();
    let started = epoch;
    let sides = opened.len().max(1) as u32;
    let tasks: Vec<_> = opened
        .into_iter()
        .enumerate()
        .map(|(i, (side, ws))| {
            let plan = Talk {
                // Spread the senders over one interval rather than all sending at once.
                offset: interval * i as u32 / sides,
                messages: m,
                interval,
                drain,
                epoch,
                target: ctx.target,
            };
            tokio::spawn(async move {
                match ws {
                    Some(ws) => talk(ws, side, plan).await,
                    None => Seen {
                        connect_failed: true,
                        ..Seen::default()
                    },
                }
            })
        })
        .collect();

    let mut all = Vec::new();
    for task in tasks {
        all.push(task.await?);
    }

    // Every side should have received each of its peer's messages exactly once.
    let mut delivered = 0;
    let mut missing = 0;
    let mut duplicates = 0;
    let mut latencies = Vec::new();
    let mut acks = Vec::new();
    let (mut sent, mut errors, mut failed) = (0, 0, 0);
    let mut first_error = None;
    let mut last_arrival = started;
    for pair in all.chunks(2) {
        let [a, b] = pair else { continue };
        for (receiver, sender) in [(a, b), (b, a)] {
            let mut counts: HashMap<&str, u32> = HashMap::new();
            for (id, latency) in &receiver.received {
                *counts.entry(id.as_str()).or_default() += 1;
                latencies.push(*latency);
            }
            delivered += counts.len() as u64;
            duplicates += counts.values().map(|n| u64::from(n - 1)).sum::<u64>();
            missing += sender.sent.saturating_sub(counts.len() as u64);
            let unique: HashSet<&String> = receiver.server_ids.iter().collect();
            duplicates += (receiver.server_ids.len() - unique.len()) as u64;
        }
    }
    for seen in &all {
        sent += seen.sent;
        errors += seen.errors;
        failed += u64::from(seen.connect_failed);
        acks.extend(seen.acks.iter().copied());
        if let Some(at) = seen.last_arrival {
            last_arrival = last_arrival.max(at);
        }
        if first_error.is_none() {
            first_error = seen.first_error.clone();
        }
    }
    let span = last_arrival.saturating_duration_since(started);
    let delivery = Latency::of(latencies);
    let ack = Latency::of(acks);

    let mut report = ctx.report("chat");
    report
        .both("pairs", p as u64)
        .both("messages_per_side", m as u64)
        .both("rate_per_side", args.rate)
        .both("connect_failures", failed)
        .both("sent", sent)
        .both("delivered", delivered)
        .both(
            "delivered_per_second",
            round3(delivered as f64 / span.as_secs_f64().max(1e-9)),
        )
        .row("delivery p50 / p99 / max", delivery.cell())
        .row("ack p50 / p99 / max", ack.cell())
        .both("missing", missing)
        .both("duplicated", duplicates)
        .both("error_frames", errors);
    delivery.put(&mut report, "latency");
    ack.put(&mut report, "ack");
    if let Some(error) = first_error {
        report.row("first error", error);
    }
    let expected = 2 * p as u64 * m as u64;
    report.both(
        "ok",
        failed == 0 && sent == expected && missing == 0 && duplicates == 0 && errors == 0,
    );
    Ok(report)
}

/// Follows the topic the side's messages arrive on.
async fn subscribe_side(ws: &mut Ws, side: &PairSide, target: Target) -> anyhow::Result<()> {
    let topic = match (target, &side.account) {
        (Target::Paranimo, Some(account)) => format!("user:{}", account.user_id),
        _ => side.conversation.clone(),
    };
    tokio::time::timeout(ANSWER_TIMEOUT, subscribe(ws, &topic, None)).await??;
    Ok(())
}

/// The pace and identity of one side's talk.
struct Talk {
    offset: Duration,
    messages: usize,
    interval: Duration,
    drain: Duration,
    epoch: Instant,
    target: Target,
}

/// Sends `messages` at the pace while reading, until everything expected has arrived or
/// the drain time after the last send has passed.
async fn talk(mut ws: Ws, side: PairSide, plan: Talk) -> Seen {
    let mut seen = Seen::default();
    let mut pending_acks: HashMap<String, Instant> = HashMap::new();
    let mut ticks =
        tokio::time::interval_at(tokio::time::Instant::now() + plan.offset, plan.interval);
    let mut from_peer = 0;
    let mut give_up =
        tokio::time::Instant::now() + plan.interval * plan.messages as u32 + plan.drain;
    let my_id = side.account.as_ref().map(|a| a.user_id.clone());
    loop {
        let done_sending = seen.sent as usize >= plan.messages;
        if done_sending && pending_acks.is_empty() && from_peer >= plan.messages {
            break;
        }
        tokio::select! {
            _ = ticks.tick(), if !done_sending => {
                let id = format!("{}-{}", side.me, seen.sent);
                let micros = plan.epoch.elapsed().as_micros();
                let body = format!("load test message, sent at {micros}");
                let frame = match plan.target {
                    Target::Paranimo => json!({
                        "type": "message.send", "id": id,
                        "booking_id": side.conversation, "body": body,
                    }),
                    Target::Generic => json!({
                        "type": "message.send", "id": id,
                        "topic": side.conversation, "body": body,
                    }),
                };
                pending_acks.insert(id, Instant::now());
                if net::send(&mut ws, &frame).await.is_err() {
                    break;
                }
                seen.sent += 1;
                if seen.sent as usize == plan.messages {
                    give_up = tokio::time::Instant::now() + plan.drain;
                }
            }
            _ = tokio::time::sleep_until(give_up) => break,
            message = ws.next() => {
                let text = match message {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => break,
                };
                let now = Instant::now();
                let Ok(frame) = serde_json::from_str::<Value>(&text) else { continue };
                match frame["type"].as_str() {
                    Some("ack") => {
                        let id = frame["id"].as_str();
                        if let Some(sent) = id.and_then(|id| pending_acks.remove(id)) {
                            seen.acks.push(now - sent);
                        }
                    }
                    Some("error") => {
                        seen.errors += 1;
                        seen.first_error.get_or_insert_with(|| frame.to_string());
                        if let Some(id) = frame["id"].as_str() {
                            pending_acks.remove(id);
                        }
                    }
                    Some("event") if frame["event"]["kind"] == "message.created" => {
                        let message = &frame["event"]["message"];
                        // Paranimo echoes our own messages on our user topic: skip them.
                        if my_id.is_some() && message["sender_id"].as_str() == my_id.as_deref() {
                            continue;
                        }
                        let client_id = match plan.target {
                            Target::Paranimo => message["client_msg_id"].as_str(),
                            Target::Generic => message["id"].as_str(),
                        };
                        let Some(client_id) = client_id else { continue };
                        if !client_id.starts_with(&format!("{}-", side.peer)) {
                            continue;
                        }
                        let latency = message["body"]
                            .as_str()
                            .and_then(|b| b.rsplit(' ').next())
                            .and_then(|t| t.parse::<u64>().ok())
                            .map(|micros| {
                                (now - plan.epoch).saturating_sub(Duration::from_micros(micros))
                            })
                            .unwrap_or_default();
                        seen.received.push((client_id.to_owned(), latency));
                        let server_id = message["id"].as_str();
                        if let (Target::Paranimo, Some(id)) = (plan.target, server_id) {
                            seen.server_ids.push(id.to_owned());
                        }
                        seen.last_arrival = Some(now);
                        from_peer += 1;
                    }
                    _ => {}
                }
            }
        }
    }
    let _ = ws.close(None).await;
    seen
}
