//! `login`: signs one existing account in over and over from C concurrent clients for D
//! seconds: the cost of the chosen Argon2id parameters on the whole HTTP path.

use super::Ctx;
use crate::stats::{Latency, Report, round3};
use serde_json::json;
use std::time::{Duration, Instant};

/// Longest run accepted, in seconds.
const MAX_SECONDS: u64 = 120;

pub async fn run(
    ctx: &Ctx,
    email: &str,
    password: &str,
    concurrency: usize,
    seconds: u64,
) -> anyhow::Result<Report> {
    let seconds = seconds.min(MAX_SECONDS);
    let api = ctx.api().clone();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let body = json!({ "email": email, "password": password });

    let workers = (0..concurrency.max(1)).map(|_| {
        let (api, body) = (api.clone(), body.clone());
        tokio::spawn(async move {
            let (mut ok, mut failed, mut latencies) = (0_u64, 0_u64, Vec::new());
            while Instant::now() < deadline {
                let started = Instant::now();
                let reply = api
                    .call(
                        reqwest::Method::POST,
                        "/api/auth/login",
                        None,
                        None,
                        Some(&body),
                    )
                    .await;
                latencies.push(started.elapsed());
                match reply {
                    Ok(r) if r.status == 200 && r.cookie.is_some() => ok += 1,
                    _ => failed += 1,
                }
            }
            (ok, failed, latencies)
        })
    });

    let started = Instant::now();
    let (mut ok, mut failed, mut latencies) = (0, 0, Vec::new());
    for worker in workers.collect::<Vec<_>>() {
        let (o, f, l) = worker.await?;
        ok += o;
        failed += f;
        latencies.extend(l);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let latency = Latency::of(latencies);

    let mut report = ctx.report("login");
    report
        .both("concurrency", concurrency)
        .both("seconds", round3(elapsed))
        .both("logins", ok)
        .both("failed", failed)
        .both("logins_per_second", round3(ok as f64 / elapsed))
        .row("latency p50 / p99 / max", latency.cell());
    latency.put(&mut report, "latency");
    if failed > 0 {
        report.row(
            "note",
            "sign-ins failed: wrong credentials, throttling, or a second factor?",
        );
    }
    report.both("ok", failed == 0);
    Ok(report)
}
