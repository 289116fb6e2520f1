//! `slow`: the `fanout` run twice on the same topic, first as is, then with one more
//! subscriber that stops reading after it subscribed (with a 4 KiB kernel receive buffer, so
//! it backs up quickly). Reports the other subscribers' latency in both runs, how the server
//! treated the stalled one (the protocol says: told `closing` and closed), and the server's
//! resident memory sampled over both runs (summed over the nodes when there are several).

use super::{Ctx, MAX_CONNECTIONS};
use crate::scenarios::fanout::{self, MAX_EVENTS, Plan};
use crate::stats::{Report, ms, round3};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the server's memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

#[derive(clap::Args)]
pub struct Args {
    /// Subscribers that keep reading.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Events per run. The stalled client's backlog is what the server queues (2,064 frames)
    /// plus what actix and the kernel buffer; 1,000 calendar events (about 130 KiB) did not
    /// fill that on loopback in our smoke runs, so the server kept the client open.
    #[arg(long, default_value_t = 1000)]
    events: usize,
    /// Pause between the starts of two events, in milliseconds.
    #[arg(long, default_value_t = 10)]
    interval_ms: u64,
    /// Distinct accounts the subscribers sign in as.
    #[arg(long, default_value_t = 500)]
    users: usize,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<Report> {
    let plan = Plan {
        subscribers: args.subscribers.clamp(1, MAX_CONNECTIONS),
        events: args.events.clamp(1, MAX_EVENTS),
        interval: Duration::from_millis(args.interval_ms.min(60_000)),
        users: args.users,
        drain: Duration::from_secs(10),
        with_slow: false,
    };

    let samples = Arc::new(Mutex::new(Vec::<(f64, u64)>::new()));
    let pids = ctx.server_pids.clone();
    let sampler = (!pids.is_empty()).then(|| {
        let samples = samples.clone();
        let started = Instant::now();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(SAMPLE_EVERY);
            loop {
                ticks.tick().await;
                let sum: Option<u64> = pids.iter().map(|&pid| crate::stats::rss_kib(pid)).sum();
                if let Some(kib) = sum {
                    let mut samples = samples.lock().unwrap_or_else(|e| e.into_inner());
                    samples.push((started.elapsed().as_secs_f64(), kib));
                }
            }
        })
    });

    eprintln!("run 1 of 2: every subscriber reads");
    let baseline = fanout::fan_out(ctx, plan).await?;
    let boundary = samples.lock().unwrap_or_else(|e| e.into_inner()).len();
    eprintln!("run 2 of 2: one more subscriber stops reading");
    let stalled = fanout::fan_out(
        ctx,
        Plan {
            with_slow: true,
            ..plan
        },
    )
    .await?;
    if let Some(sampler) = sampler {
        sampler.abort();
    }

    let mut report = ctx.report("slow");
    report
        .both("subscribers", baseline.connected as u64)
        .both("events", plan.events as u64)
        .both("interval_ms", plan.interval.as_millis() as u64)
        .row("baseline delivery p50 / p99 / max", baseline.latency.cell())
        .row("with a stalled reader", stalled.latency.cell());
    baseline.latency.put(&mut report, "baseline");
    stalled.latency.put(&mut report, "stalled");
    let change = (ms(stalled.latency.p99) / ms(baseline.latency.p99).max(1e-9) - 1.0) * 100.0;
    report
        .both("p99_change_percent", round3(change))
        .both("baseline_missed", baseline.check.missing)
        .both("stalled_run_missed", stalled.check.missing);

    let slow = stalled.slow.as_ref();
    let closing = slow.and_then(|s| s.closing.clone());
    report
        .both(
            "stalled_reader_events_buffered",
            slow.map(|s| s.events_read).unwrap_or(0),
        )
        .both(
            "stalled_reader_told_closing",
            closing.clone().unwrap_or_else(|| "no".into()),
        )
        .both(
            "stalled_reader_state",
            slow.map(|s| s.state.clone()).unwrap_or_default(),
        );

    let samples = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if samples.is_empty() {
        report.row("server memory", "not measured (give --server-pid)");
    } else {
        let (first, second) = samples.split_at(boundary.min(samples.len()));
        let peak = |s: &[(f64, u64)]| s.iter().map(|(_, k)| *k).max().unwrap_or(0);
        let start = samples.first().map(|(_, k)| *k).unwrap_or(0);
        let end = samples.last().map(|(_, k)| *k).unwrap_or(0);
        report
            .both("server_rss_start_kib", start)
            .both("server_rss_peak_baseline_kib", peak(first))
            .both("server_rss_peak_stalled_kib", peak(second))
            .both("server_rss_end_kib", end)
            .json(
                "server_rss_series_kib",
                samples
                    .iter()
                    .map(|(t, k)| serde_json::json!([round3(*t), k]))
                    .collect::<Vec<_>>(),
            );
    }
    // The target: the stalled reader moves the others' p99 by no more than 10%.
    let ok = baseline.failed == 0
        && stalled.failed == 0
        && baseline.check.missing == 0
        && stalled.check.missing == 0;
    report
        .both("p99_within_10_percent", change <= 10.0)
        .both("ok", ok);
    Ok(report)
}
