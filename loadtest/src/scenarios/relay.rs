//! `relay`: P pairs of websockets passing small messages through the server and back. Each
//! side sends M pings at a steady rate; the other side echoes each one the moment it
//! arrives; the sender times the round trip, two relays through the server. On Paranimo a
//! pair is a booking's therapist and client inside the session room (`room.join`, then
//! `room.signal` with a small `candidate` payload: the path WebRTC signalling takes, with no
//! WebRTC peer to slow it down); on the generic peers it is two subscribers of a `chat:<k>`
//! topic passing `message.send`, the relay they all share. Reports round-trip p50/p99/max
//! and any ping that never came back.
//!
//! Side i opens on node i in turn, so with two nodes every pair's relay crosses between
//! them. Paranimo limits a connection to 20 frames a second and a side sends its pings and
//! its echoes of the other's, so `--rate` stays at 10 or below.

use super::{ANSWER_TIMEOUT, Ctx, PairSide, join_room, pair_sides, subscribe};
use crate::Target;
use crate::net::{self, Tuning, Ws};
use crate::stats::{Latency, Report, round3};
use anyhow::bail;
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Highest pace accepted, pings per second per side: with the echoes of the other side's
/// pings that is 20 frames a second, Paranimo's limit per connection.
const MAX_RATE: f64 = 10.0;

#[derive(clap::Args)]
pub struct Args {
    /// Pairs relaying at once.
    #[arg(long, default_value_t = 50)]
    pairs: usize,
    /// Pings each side sends (each echoed by the other side).
    #[arg(long, default_value_t = 20)]
    messages: usize,
    /// Pings per second each side sends (at most 10: the echoes double the frames).
    #[arg(long, default_value_t = 5.0)]
    rate: f64,
    /// How long to wait for the last echoes after the last ping, in seconds.
    #[arg(long, default_value_t = 10)]
    drain_seconds: u64,
}

/// A relayed message: a ping, or the echo of one, with the key that names the ping.
#[derive(Debug, PartialEq, Eq)]
struct Relayed {
    echo: bool,
    key: String,
}

/// What one side saw.
#[derive(Default)]
struct Seen {
    sent: u64,
    echoed: u64,
    round_trips: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
    connect_failed: bool,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<Report> {
    let p = args.pairs.clamp(1, 50_000);
    let m = args.messages.clamp(1, 10_000);
    if !(args.rate > 0.0 && args.rate <= MAX_RATE) {
        bail!("--rate must be above 0 and at most {MAX_RATE} (Paranimo's frame limit)");
    }
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let drain = Duration::from_secs(args.drain_seconds.min(120));

    // A side's `me` is the prefix of its pings' keys.
    let sides = pair_sides(ctx, p, "relay-").await?;

    // Everyone is in the room (or on the topic) before anyone pings: neither keeps history.
    let opened: Vec<(PairSide, anyhow::Result<Ws>)> = stream::iter(sides.into_iter().enumerate())
        .map(|(i, side)| async move {
            let ws = async {
                let mut ws = ctx
                    .open(i, side.account.as_ref(), None, Tuning::default())
                    .await?;
                enter(&mut ws, &side, ctx.target).await?;
                anyhow::Ok(ws)
            }
            .await;
            (side, ws)
        })
        .buffered(ctx.connect_concurrency)
        .collect()
        .await;

    let started = Instant::now();
    let count = opened.len().max(1) as u32;
    let tasks: Vec<_> = opened
        .into_iter()
        .enumerate()
        .map(|(i, (side, ws))| {
            let plan = Pace {
                // Spread the first pings over one interval rather than all at once.
                offset: interval * i as u32 / count,
                messages: m,
                interval,
                drain,
                target: ctx.target,
            };
            tokio::spawn(async move {
                match ws {
                    Ok(ws) => converse(ws, side, plan).await,
                    Err(e) => Seen {
                        connect_failed: true,
                        first_error: Some(format!("{e:#}")),
                        ..Seen::default()
                    },
                }
            })
        })
        .collect();
    let mut all = Vec::with_capacity(tasks.len());
    for task in tasks {
        all.push(task.await?);
    }
    let elapsed = started.elapsed();

    let (mut sent, mut echoed, mut errors, mut failed) = (0, 0, 0, 0);
    let mut first_error = None;
    let mut round_trips = Vec::new();
    for seen in all {
        sent += seen.sent;
        echoed += seen.echoed;
        errors += seen.errors;
        failed += u64::from(seen.connect_failed);
        round_trips.extend(seen.round_trips);
        if first_error.is_none() {
            first_error = seen.first_error;
        }
    }
    let completed = round_trips.len() as u64;
    let missing = sent.saturating_sub(completed);
    let round_trip = Latency::of(round_trips);

    let mut report = ctx.report("relay");
    report
        .both("pairs", p as u64)
        .both("messages_per_side", m as u64)
        .both("rate_per_side", args.rate)
        .both("connect_failures", failed)
        .both("sent", sent)
        .both("echoed", echoed)
        .both("round_trips", completed)
        .row("total time", format!("{:.2} s", elapsed.as_secs_f64()))
        .json("seconds", round3(elapsed.as_secs_f64()))
        .row("round trip p50 / p99 / max", round_trip.cell())
        .both("missing", missing)
        .both("error_frames", errors);
    round_trip.put(&mut report, "round_trip");
    if let Some(error) = first_error {
        report.row("first error", error);
    }
    let expected = 2 * p as u64 * m as u64;
    report.both(
        "ok",
        failed == 0 && sent == expected && missing == 0 && errors == 0,
    );
    Ok(report)
}

/// Puts one side where its pair's messages arrive: the booking's room, or the topic.
async fn enter(ws: &mut Ws, side: &PairSide, target: Target) -> anyhow::Result<()> {
    if target == Target::Generic {
        tokio::time::timeout(ANSWER_TIMEOUT, subscribe(ws, &side.conversation, None)).await??;
        return Ok(());
    }
    join_room(ws, &side.conversation).await?;
    Ok(())
}

/// The frame that sends a ping (or the echo of one) to the other side.
fn relay_frame(target: Target, conversation: &str, message: &Relayed) -> Value {
    let (kind, prefix) = if message.echo {
        ("echo", "e")
    } else {
        ("ping", "p")
    };
    let id = format!("{prefix}-{}", message.key);
    match target {
        // The server relays any object with a `candidate` (or `description`) untouched.
        Target::Paranimo => json!({
            "type": "room.signal", "id": id, "booking_id": conversation,
            "payload": { "candidate": { "relay": kind, "key": message.key } },
        }),
        Target::Generic => json!({
            "type": "message.send", "id": id, "topic": conversation,
            "body": format!("{kind} {}", message.key),
        }),
    }
}

/// The ping or echo an incoming frame carries, if it is one from the other side. Paranimo
/// sends a room's signals to both participants, so the sender's own are skipped by `from`.
fn relayed(frame: &Value, target: Target, my_user_id: Option<&str>) -> Option<Relayed> {
    if frame["type"] != "event" {
        return None;
    }
    let event = &frame["event"];
    let (kind, key) = match target {
        Target::Paranimo => {
            if event["kind"] != "room.signal" || event["from"].as_str() == my_user_id {
                return None;
            }
            let candidate = &event["payload"]["candidate"];
            (candidate["relay"].as_str()?, candidate["key"].as_str()?)
        }
        Target::Generic => {
            if event["kind"] != "message.created" {
                return None;
            }
            event["message"]["body"].as_str()?.split_once(' ')?
        }
    };
    let echo = match kind {
        "ping" => false,
        "echo" => true,
        _ => return None,
    };
    Some(Relayed {
        echo,
        key: key.to_owned(),
    })
}

/// The pace of one side.
struct Pace {
    offset: Duration,
    messages: usize,
    interval: Duration,
    drain: Duration,
    target: Target,
}

/// Pings at the pace and echoes the other side's pings, until every ping has come back,
/// every one of the other side's has been echoed and the server has acknowledged every
/// frame sent, or the drain time after the last ping has passed. (Closing before the last
/// acknowledgement can lose that frame: Paranimo drops a relay still in flight when its
/// sender's connection ends.)
async fn converse(mut ws: Ws, side: PairSide, plan: Pace) -> Seen {
    let mut seen = Seen::default();
    let mut pending: HashMap<String, Instant> = HashMap::new();
    let mut unacked: HashSet<String> = HashSet::new();
    let mut ticks =
        tokio::time::interval_at(tokio::time::Instant::now() + plan.offset, plan.interval);
    let mut give_up = tokio::time::Instant::now()
        + plan.offset
        + plan.interval * plan.messages as u32
        + plan.drain;
    let my_user_id = side.account.as_ref().map(|a| a.user_id.as_str());
    let mine = format!("{}-", side.me);
    loop {
        let done_sending = seen.sent as usize >= plan.messages;
        if done_sending
            && pending.is_empty()
            && unacked.is_empty()
            && seen.echoed as usize >= plan.messages
        {
            break;
        }
        tokio::select! {
            _ = ticks.tick(), if !done_sending => {
                let ping = Relayed { echo: false, key: format!("{mine}{}", seen.sent) };
                let frame = relay_frame(plan.target, &side.conversation, &ping);
                unacked.insert(frame["id"].as_str().unwrap_or_default().to_owned());
                pending.insert(ping.key, Instant::now());
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
                        unacked.remove(frame["id"].as_str().unwrap_or_default());
                        continue;
                    }
                    Some("error") => {
                        unacked.remove(frame["id"].as_str().unwrap_or_default());
                        seen.errors += 1;
                        seen.first_error.get_or_insert_with(|| frame.to_string());
                        continue;
                    }
                    _ => {}
                }
                match relayed(&frame, plan.target, my_user_id) {
                    Some(Relayed { echo: true, key }) => {
                        if let Some(sent) = pending.remove(&key) {
                            seen.round_trips.push(now - sent);
                        }
                    }
                    Some(Relayed { echo: false, key }) if !key.starts_with(&mine) => {
                        let echo = Relayed { echo: true, key };
                        let frame = relay_frame(plan.target, &side.conversation, &echo);
                        unacked.insert(frame["id"].as_str().unwrap_or_default().to_owned());
                        if net::send(&mut ws, &frame).await.is_err() {
                            break;
                        }
                        seen.echoed += 1;
                    }
                    _ => {}
                }
            }
        }
    }
    let _ = ws.close(None).await;
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What one side sends, shaped as the server hands it to the other, reads back the same.
    #[test]
    fn relayed_messages_survive_the_server_shape() {
        let ping = Relayed {
            echo: false,
            key: "ab12-3t-7".into(),
        };
        let sent = relay_frame(Target::Paranimo, "b-1", &ping);
        assert_eq!(sent["type"], "room.signal");
        assert!(sent["id"].as_str().unwrap().len() <= 64);
        let event = json!({
            "type": "event", "topic": "room:b-1", "seq": 4,
            "event": { "kind": "room.signal", "booking_id": "b-1", "from": "u-therapist",
                       "payload": sent["payload"] },
        });
        assert_eq!(
            relayed(&event, Target::Paranimo, Some("u-client")),
            Some(ping)
        );
        // The sender's own signal comes back to it too, and is not for it.
        assert_eq!(relayed(&event, Target::Paranimo, Some("u-therapist")), None);

        let echo = Relayed {
            echo: true,
            key: "ab12-3t-7".into(),
        };
        let sent = relay_frame(Target::Generic, "chat:x", &echo);
        assert_eq!(sent["type"], "message.send");
        let event = json!({
            "type": "event", "topic": "chat:x", "seq": 9,
            "event": { "kind": "message.created",
                       "message": { "id": sent["id"], "body": sent["body"] } },
        });
        assert_eq!(relayed(&event, Target::Generic, None), Some(echo));
    }

    /// Presence, acknowledgements and other events are not relayed messages.
    #[test]
    fn other_frames_are_not_relayed_messages() {
        let presence = json!({
            "type": "event", "topic": "room:b", "seq": 1,
            "event": { "kind": "room.presence", "room": { "present": [] } },
        });
        assert_eq!(relayed(&presence, Target::Paranimo, Some("u")), None);
        let ack = json!({ "type": "ack", "id": "p-k" });
        assert_eq!(relayed(&ack, Target::Generic, None), None);
        let chat = json!({
            "type": "event",
            "event": { "kind": "message.created", "message": { "body": "hello there" } },
        });
        assert_eq!(relayed(&chat, Target::Generic, None), None);
    }
}
