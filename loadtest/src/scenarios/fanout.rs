//! `fanout`: N subscribers of one topic (a therapist's `availability:<id>` on Paranimo, a
//! fresh topic on a generic peer); the publisher makes K events (calendar changes through
//! `PUT /api/therapists/me/availability`, or `publish` frames) at a fixed pace. Reports
//! delivery latency from the moment each change was sent to its arrival at every
//! subscriber, delivered events per second, and any event a subscriber missed (by `seq`).
//!
//! With several nodes (`--base a,b`) the subscribers are spread over them in turn and the
//! publisher talks to the first, so most deliveries cross between nodes through the
//! cluster's Redis: the rate to compare with one node's.
//!
//! The same run, with one subscriber that stops reading, is the `slow` scenario.

use super::{Ctx, FrameHead, MAX_CONNECTIONS, Publisher, accounts_for, open_subscribed};
use crate::net::{self, Incoming, Sources, Tuning, Ws};
use crate::stats::{Latency, Report, SeqCheck, round3};
use futures_util::StreamExt;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Most events one run may publish.
pub const MAX_EVENTS: usize = 10_000;

#[derive(clap::Args)]
pub struct Args {
    /// Subscribers of the topic.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Events published (calendar changes).
    #[arg(long, default_value_t = 20)]
    events: usize,
    /// Pause between the starts of two events, in milliseconds (0: back to back).
    #[arg(long, default_value_t = 100)]
    interval_ms: u64,
    /// Distinct accounts the subscribers sign in as (Paranimo).
    #[arg(long, default_value_t = 500)]
    users: usize,
    /// How long to wait for stragglers after the last event, in seconds.
    #[arg(long, default_value_t = 10)]
    drain_seconds: u64,
}

/// The knobs of one fanout run, shared with `slow`.
#[derive(Clone, Copy)]
pub struct Plan {
    pub subscribers: usize,
    pub events: usize,
    pub interval: Duration,
    pub users: usize,
    pub drain: Duration,
    /// Add one subscriber that never reads after subscribing.
    pub with_slow: bool,
}

/// What one run measured.
pub struct Outcome {
    pub connected: usize,
    pub failed: usize,
    pub first_error: Option<String>,
    pub connect_time: Duration,
    pub latency: Latency,
    pub publish: Latency,
    pub check: SeqCheck,
    pub deliveries: u64,
    /// From the first change sent to the last delivery.
    pub span: Duration,
    pub closed_early: usize,
    pub slow: Option<SlowEnd>,
}

/// How the subscriber that stopped reading ended up.
pub struct SlowEnd {
    /// Events it found when it finally read.
    pub events_read: u64,
    /// The server's `closing` reason, if it was told.
    pub closing: Option<String>,
    /// "closed (code N)", "closed without a close frame", "open and answering", or
    /// "open but silent" (no `pong` to a `ping` once its backlog was read).
    pub state: String,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<Report> {
    let plan = Plan {
        subscribers: args.subscribers.clamp(1, MAX_CONNECTIONS),
        events: args.events.clamp(1, MAX_EVENTS),
        interval: Duration::from_millis(args.interval_ms.min(60_000)),
        users: args.users,
        drain: Duration::from_secs(args.drain_seconds.min(120)),
        with_slow: false,
    };
    let outcome = fan_out(ctx, plan).await?;
    let mut report = ctx.report("fanout");
    describe(&mut report, &plan, &outcome);
    let ok = outcome.failed == 0 && outcome.check.missing == 0 && outcome.check.duplicates == 0;
    report.both("ok", ok);
    Ok(report)
}

/// Adds one run's figures to a report.
pub fn describe(report: &mut Report, plan: &Plan, o: &Outcome) {
    report
        .both("subscribers", o.connected as u64)
        .both("failed", o.failed as u64)
        .both("events", plan.events as u64)
        .both("interval_ms", plan.interval.as_millis() as u64)
        .row(
            "subscribe time",
            format!("{:.2} s", o.connect_time.as_secs_f64()),
        )
        .json("subscribe_seconds", round3(o.connect_time.as_secs_f64()))
        .both("deliveries", o.deliveries)
        .both(
            "deliveries_per_second",
            round3(o.deliveries as f64 / o.span.as_secs_f64().max(1e-9)),
        )
        .row("delivery p50 / p99 / max", o.latency.cell())
        .row("publish answer p50 / p99 / max", o.publish.cell())
        .both("missed", o.check.missing)
        .both("duplicated", o.check.duplicates)
        .both("out_of_order", o.check.out_of_order)
        .both("closed_early", o.closed_early as u64);
    o.latency.put(report, "latency");
    o.publish.put(report, "publish");
    if let Some(error) = &o.first_error {
        report.row("first error", error);
    }
}

/// One fanout run.
pub async fn fan_out(ctx: &Ctx, plan: Plan) -> anyhow::Result<Outcome> {
    let accounts = match ctx.target {
        crate::Target::Paranimo => {
            ctx.setup
                .clients(accounts_for(plan.subscribers + 1, plan.users))
                .await?
        }
        crate::Target::Generic => Vec::new(),
    };
    let (topic, mut publisher) = Publisher::new(ctx).await?;
    let total = plan.subscribers + usize::from(plan.with_slow);
    ctx.check_server_fds(total);
    let sources = Sources::new(ctx.source_addresses, total);

    let opened = open_subscribed(
        ctx,
        &accounts,
        plan.subscribers,
        &topic,
        &sources,
        Tuning::default(),
    )
    .await;
    let mut slow = None;
    if plan.with_slow {
        // A tiny kernel receive buffer so the server's queue, not the kernel, fills first.
        let tuning = Tuning {
            read_buffer: 1024,
            recv_buffer: Some(4096),
        };
        // The next node in turn after the readers, so it shares a node with some of them.
        let node = plan.subscribers;
        let mut ws = ctx
            .open(node, accounts.last(), sources.next(), tuning)
            .await?;
        super::subscribe(&mut ws, &topic, None).await?;
        slow = Some(ws);
    }
    let base = opened
        .sockets
        .iter()
        .map(|(_, seq)| *seq)
        .max()
        .unwrap_or(0);
    let last = base + plan.events as u64;

    let (stop, stopped) = watch::channel(());
    let readers: Vec<_> = opened
        .sockets
        .into_iter()
        .map(|(ws, _)| tokio::spawn(read_events(ws, last, stopped.clone())))
        .collect();

    // Publish at a fixed pace: event i starts at `i * interval`, or when the previous ends.
    let mut sent = Vec::with_capacity(plan.events);
    let mut answers = Vec::with_capacity(plan.events);
    let started = Instant::now();
    for i in 0..plan.events {
        let due = started + plan.interval * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        let at = Instant::now();
        sent.push(at);
        publisher.publish(i as u64 + 1).await?;
        answers.push(at.elapsed());
    }

    // Wait for every reader to have the last event, or for the drain time to pass (dropping
    // `stop` tells the readers to give up).
    let timer = tokio::spawn(async move {
        tokio::time::sleep(plan.drain).await;
        drop(stop);
    });
    let records: Vec<Record> = futures_util::future::join_all(readers)
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    timer.abort();

    let mut latencies = Vec::new();
    let mut check = SeqCheck::default();
    let mut deliveries = 0;
    let mut last_arrival = started;
    let mut closed_early = 0;
    for record in &records {
        let seqs: Vec<u64> = record.events.iter().map(|(seq, _)| *seq).collect();
        check.add(SeqCheck::of(&seqs, base + 1, last));
        for (seq, at) in &record.events {
            if *seq > base && *seq <= last {
                let index = (*seq - base - 1) as usize;
                latencies.push(at.saturating_duration_since(sent[index]));
                deliveries += 1;
                last_arrival = last_arrival.max(*at);
            }
        }
        if record.closed {
            closed_early += 1;
        }
    }
    let slow_end = match slow {
        Some(ws) => Some(read_what_is_left(ws).await),
        None => None,
    };
    Ok(Outcome {
        connected: records.len(),
        failed: opened.failed,
        first_error: opened.first_error,
        connect_time: opened.elapsed,
        latency: Latency::of(latencies),
        publish: Latency::of(answers),
        check,
        deliveries,
        span: last_arrival.saturating_duration_since(started),
        closed_early,
        slow: slow_end,
    })
}

/// What one subscriber received: `(seq, arrival)` per event, in order.
struct Record {
    events: Vec<(u64, Instant)>,
    closed: bool,
}

/// Reads events until the one numbered `last`, a close, or the stop signal.
async fn read_events(mut ws: Ws, last: u64, mut stop: watch::Receiver<()>) -> Record {
    let mut record = Record {
        events: Vec::new(),
        closed: false,
    };
    loop {
        let message = tokio::select! {
            _ = stop.changed() => break,
            message = ws.next() => message,
        };
        let text = match message {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => text,
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => {
                record.closed = true;
                break;
            }
        };
        let at = Instant::now();
        let Some(head) = FrameHead::parse(&text) else {
            continue;
        };
        if head.kind == "event"
            && let Some(seq) = head.seq
        {
            record.events.push((seq, at));
            if seq >= last {
                break;
            }
        }
    }
    let _ = ws.close(None).await;
    record
}

/// Reads whatever the non-reading subscriber was sent, then checks whether the server
/// still answers it: a `ping` goes out, and everything up to its `pong` is counted. (With a
/// tiny receive window the kernel sends the backlog slowly, by zero-window probes, so the
/// wait is generous.)
async fn read_what_is_left(mut ws: Ws) -> SlowEnd {
    let mut end = SlowEnd {
        events_read: 0,
        closing: None,
        state: "open but silent".into(),
    };
    let probe = serde_json::json!({ "type": "ping", "id": "probe" });
    if net::send(&mut ws, &probe).await.is_err() {
        end.state = "closed without a close frame".into();
        return end;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match net::next_text(&mut ws, left).await {
            Incoming::Text(text) => match FrameHead::parse(&text) {
                Some(head) if head.kind == "event" => end.events_read += 1,
                Some(head) if head.kind == "closing" => end.closing = head.reason,
                Some(head) if head.kind == "pong" => {
                    end.state = "open and answering".into();
                    return end;
                }
                _ => {}
            },
            Incoming::Closed(Some(code)) => {
                end.state = format!("closed (code {code})");
                return end;
            }
            Incoming::Closed(None) => {
                end.state = "closed without a close frame".into();
                return end;
            }
            Incoming::Timeout => return end,
        }
    }
}
