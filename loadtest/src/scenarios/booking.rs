//! `booking`: C clients race for S free slots spread over T therapists through
//! `POST /api/bookings`, every client trying every slot once in its own random order, all
//! starting together. 201 is a booking, 409 an expected conflict (someone else was first, or
//! the client already holds that hour with another therapist), any 5xx a failure. Then
//! PostgreSQL is asked directly whether any two confirmed bookings overlap, per therapist
//! or per client, and whether it holds exactly the bookings that were answered 201. Finally
//! the bookings are cancelled (unless `--keep`) so the next run finds the slots free again.

use super::Ctx;
use crate::accounts::{Account, free_slots};
use crate::stats::{Latency, Report, Shuffler, round3};
use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, stream};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Barrier;

/// Largest race accepted: clients × slots requests in all.
const MAX_REQUESTS: usize = 200_000;

#[derive(clap::Args)]
pub struct Args {
    /// Clients racing.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Slots on offer in all (split evenly over the therapists).
    #[arg(long, default_value_t = 100)]
    slots: usize,
    /// Therapists whose slots are raced for.
    #[arg(long, default_value_t = 4)]
    therapists: usize,
    /// PostgreSQL of the server under test, to check for overlaps (loopback only).
    #[arg(long)]
    database_url: String,
    /// Leave the bookings in place (by default they are cancelled afterwards).
    #[arg(long)]
    keep: bool,
}

/// One slot to race for.
#[derive(Clone)]
struct Target {
    therapist: String,
    start: String,
}

/// What one client's attempts came to.
#[derive(Default)]
struct Tally {
    booked: Vec<String>,
    /// When the last booking was made, after the start.
    last_booked: Duration,
    conflicts: u64,
    server_errors: u64,
    other: BTreeMap<u16, u64>,
    transport_errors: u64,
    latencies: Vec<Duration>,
    first_problem: Option<String>,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<Report> {
    // The url crate reads hosts of unknown schemes as names: check it as if it were http.
    let (_, rest) = args
        .database_url
        .split_once("://")
        .context("--database-url is not a URL")?;
    crate::net::require_loopback(&format!("http://{rest}"))
        .context("--database-url must be on loopback")?;
    let t = args.therapists.clamp(1, 1000);
    let c = args.clients.clamp(1, 10_000);
    let s = args.slots.clamp(t, MAX_REQUESTS / c);

    // The therapists after the first (the first is the fanout scenarios' publisher).
    let therapists: Vec<Account> = ctx
        .setup
        .therapists(t + 1)
        .await?
        .into_iter()
        .skip(1)
        .collect();
    let clients = ctx.setup.clients(c).await?;
    let targets = pick_slots(ctx, &therapists, &clients[0], s).await?;

    let barrier = Arc::new(Barrier::new(c));
    let seed = u64::from_str_radix(&ctx.nonce, 16).unwrap_or(1);
    let started = Instant::now();
    let workers: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, client)| {
            let mut order = targets.clone();
            Shuffler::new(seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9)).shuffle(&mut order);
            let (api, barrier, cookie) =
                (ctx.api().clone(), barrier.clone(), client.cookie.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let mut tally = Tally::default();
                for target in order {
                    let body = json!({ "therapist_id": target.therapist, "start": target.start });
                    let begun = Instant::now();
                    let reply = api.post("/api/bookings", &cookie, &body).await;
                    tally.latencies.push(begun.elapsed());
                    match reply {
                        Ok(r) if r.status == 201 => {
                            if let Some(id) = r.body["id"].as_str() {
                                tally.booked.push(id.to_owned());
                            }
                            tally.last_booked = started.elapsed();
                        }
                        Ok(r) if r.status == 409 => tally.conflicts += 1,
                        Ok(r) => {
                            if r.status >= 500 {
                                tally.server_errors += 1;
                            } else {
                                *tally.other.entry(r.status).or_default() += 1;
                            }
                            tally
                                .first_problem
                                .get_or_insert_with(|| format!("{} {}", r.status, r.body));
                        }
                        Err(e) => {
                            tally.transport_errors += 1;
                            tally.first_problem.get_or_insert_with(|| format!("{e:#}"));
                        }
                    }
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    let mut booked_by: Vec<(usize, String)> = Vec::new();
    for (i, worker) in workers.into_iter().enumerate() {
        let tally = worker.await?;
        booked_by.extend(tally.booked.iter().map(|id| (i, id.clone())));
        total.conflicts += tally.conflicts;
        total.server_errors += tally.server_errors;
        total.transport_errors += tally.transport_errors;
        for (status, n) in tally.other {
            *total.other.entry(status).or_default() += n;
        }
        total.latencies.extend(tally.latencies);
        total.last_booked = total.last_booked.max(tally.last_booked);
        if total.first_problem.is_none() {
            total.first_problem = tally.first_problem;
        }
    }
    let elapsed = started.elapsed();
    let requests = total.latencies.len();
    let latency = Latency::of(total.latencies);

    let verdict = verify(&args.database_url, &therapists, &targets).await?;
    let cancelled = if args.keep {
        0
    } else {
        cancel(ctx, &clients, &booked_by).await
    };

    let booked = booked_by.len() as u64;
    let mut report = ctx.report("booking");
    report
        .both("clients", c as u64)
        .both("therapists", t as u64)
        .both("slots", s as u64)
        .both("requests", requests as u64)
        .row("race time", format!("{:.2} s", elapsed.as_secs_f64()))
        .json("seconds", round3(elapsed.as_secs_f64()))
        .both("booked", booked)
        .row(
            "last booking made after",
            format!("{:.3} s", total.last_booked.as_secs_f64()),
        )
        .json(
            "last_booking_seconds",
            round3(total.last_booked.as_secs_f64()),
        )
        .both(
            "bookings_per_second",
            round3(booked as f64 / total.last_booked.as_secs_f64().max(1e-9)),
        )
        .both(
            "requests_per_second",
            round3(requests as f64 / elapsed.as_secs_f64()),
        )
        .row("request p50 / p99 / max", latency.cell())
        .both("conflicts_409", total.conflicts)
        .both("server_errors_5xx", total.server_errors)
        .both("transport_errors", total.transport_errors)
        .both(
            "other_statuses",
            format!("{:?}", total.other).replace(' ', ""),
        )
        .both("db_confirmed_in_race", verdict.confirmed)
        .both("db_therapist_overlaps", verdict.therapist_overlaps)
        .both("db_client_overlaps", verdict.client_overlaps)
        .both("cancelled_afterwards", cancelled);
    latency.put(&mut report, "latency");
    if let Some(problem) = &total.first_problem {
        report.row("first problem", problem);
    }
    let ok = total.server_errors == 0
        && total.transport_errors == 0
        && total.other.is_empty()
        && verdict.therapist_overlaps == 0
        && verdict.client_overlaps == 0
        && verdict.confirmed == booked
        && booked as usize <= s;
    report.both("ok", ok);
    Ok(report)
}

/// `count` free slots at least two hours ahead, split evenly over the therapists.
async fn pick_slots(
    ctx: &Ctx,
    therapists: &[Account],
    viewer: &Account,
    count: usize,
) -> anyhow::Result<Vec<Target>> {
    let from = Utc::now() + chrono::Duration::hours(2);
    let per = count.div_ceil(therapists.len());
    let mut targets = Vec::with_capacity(count);
    for therapist in therapists {
        let slots = free_slots(ctx.api(), &viewer.cookie, &therapist.user_id, from, 55).await?;
        if slots.len() < per {
            bail!(
                "therapist {} has only {} free slots; run with --keep off or a fresh database",
                therapist.user_id,
                slots.len()
            );
        }
        targets.extend(slots.into_iter().take(per).map(|start| Target {
            therapist: therapist.user_id.clone(),
            start,
        }));
    }
    targets.truncate(count);
    Ok(targets)
}

/// What PostgreSQL holds after the race.
struct Verdict {
    confirmed: u64,
    therapist_overlaps: u64,
    client_overlaps: u64,
}

/// Asks the database itself: the exclusion constraints should make both overlap counts
/// zero whatever the server did; the confirmed count should match the 201 answers.
async fn verify(url: &str, therapists: &[Account], targets: &[Target]) -> anyhow::Result<Verdict> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .context("connect to --database-url")?;
    let overlaps = |column: &str| {
        format!(
            "SELECT count(*) FROM bookings a JOIN bookings b \
               ON a.{column} = b.{column} AND a.id < b.id AND a.during && b.during \
             WHERE a.status = 'confirmed' AND b.status = 'confirmed'"
        )
    };
    let therapist_overlaps: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(overlaps("therapist_id")))
        .fetch_one(&pool)
        .await?;
    let client_overlaps: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(overlaps("client_id")))
        .fetch_one(&pool)
        .await?;

    let ids: Vec<uuid::Uuid> = therapists
        .iter()
        .filter_map(|t| t.user_id.parse().ok())
        .collect();
    let starts: Vec<DateTime<Utc>> = targets
        .iter()
        .filter_map(|t| t.start.parse().ok())
        .collect();
    let confirmed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM bookings \
         WHERE status = 'confirmed' AND therapist_id = ANY($1) AND lower(during) = ANY($2)",
    )
    .bind(&ids)
    .bind(&starts)
    .fetch_one(&pool)
    .await?;
    pool.close().await;
    Ok(Verdict {
        confirmed: confirmed as u64,
        therapist_overlaps: therapist_overlaps as u64,
        client_overlaps: client_overlaps as u64,
    })
}

/// Cancels the race's bookings through the API, as their clients; returns how many.
async fn cancel(ctx: &Ctx, clients: &[Account], booked: &[(usize, String)]) -> u64 {
    let results: Vec<bool> = stream::iter(booked)
        .map(|(client, id)| async move {
            let path = format!("/api/bookings/{id}/cancel");
            let reply = ctx
                .api()
                .post(&path, &clients[*client].cookie, &json!({}))
                .await;
            matches!(reply, Ok(r) if r.status == 200)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().filter(|ok| *ok).count() as u64
}
