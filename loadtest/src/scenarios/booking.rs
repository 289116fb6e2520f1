//! `booking`: C clients race for S free slots spread over T therapists through
//! `POST /api/bookings`, every client trying every slot once in its own random order, all
//! starting together. 201 is a booking; two refusals are expected in a race and counted
//! apart: 409 `slot_taken` (someone else was first, or the client already holds that hour
//! with another therapist) and 422 `validation` for the per-client limit of upcoming
//! sessions (8, `MAX_UPCOMING_PER_CLIENT` in `src/store/bookings.rs`). Every other answer,
//! a 5xx above all, and every request that got no answer is an error surfaced to a client:
//! the target is none, deadlocks included (the store retries them). Then PostgreSQL is
//! asked directly whether any two confirmed bookings overlap, per therapist or per client,
//! and whether it holds exactly the bookings that were answered 201. Finally the bookings
//! are cancelled (unless `--keep`) so the next run finds the slots free again.
//!
//! With `--spread` there is no race: each slot is offered to one client only, every client
//! holding at most one slot per hour, so every request should be a booking. That is the
//! confirmed-booking rate of the whole path without contention, to set against pgbench's
//! spread run of the same SQL.
//!
//! The slots are the first S / T free hours of each therapist, the same hours for all of
//! them on a fresh database, and a client can hold one session per hour: with at most 8
//! hours (the default, 96 slots over 12 therapists) no client can reach the limit, so a 422
//! there means leftover bookings of an earlier run. Larger races may reach it; the report
//! says when they can.

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

/// Most upcoming sessions one client may hold (`MAX_UPCOMING_PER_CLIENT` on the server).
const UPCOMING_LIMIT: usize = 8;

#[derive(clap::Args)]
pub struct Args {
    /// Clients racing.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Slots on offer in all (split evenly over the therapists). At most 8 per therapist
    /// keeps every client below the limit of 8 upcoming sessions.
    #[arg(long, default_value_t = 96)]
    slots: usize,
    /// Therapists whose slots are raced for.
    #[arg(long, default_value_t = 12)]
    therapists: usize,
    /// PostgreSQL of the server under test, to check for overlaps (loopback only).
    #[arg(long)]
    database_url: String,
    /// Leave the bookings in place (by default they are cancelled afterwards).
    #[arg(long)]
    keep: bool,
    /// No race: each slot goes to one client only (at most one per hour per client), for
    /// the booking rate without contention. Keep slots ÷ clients at most 8, the limit.
    #[arg(long)]
    spread: bool,
}

/// One slot to race for.
#[derive(Clone)]
struct Target {
    therapist: String,
    start: String,
}

/// How the server answered one booking attempt.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// 201: the slot is the client's.
    Booked,
    /// 409 `slot_taken`: someone else was first, or the client holds that hour elsewhere.
    Conflict,
    /// 422 `validation` naming the upcoming-sessions limit: the client holds 8 already.
    AtLimit,
    /// Anything else: a 5xx, or a 4xx the race should never cause.
    Unexpected,
}

/// Sorts one answer by status and error code. The limit has no code of its own on the
/// server (it shares `validation` with other bad input), so its message is checked too: a
/// reworded message makes these answers show as errors, never hides an error as a refusal.
fn classify(status: u16, body: &serde_json::Value) -> Answer {
    let code = body["error"]["code"].as_str();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    match (status, code) {
        (201, _) => Answer::Booked,
        (409, Some("slot_taken")) => Answer::Conflict,
        (422, Some("validation")) if message.contains("upcoming sessions") => Answer::AtLimit,
        _ => Answer::Unexpected,
    }
}

/// What one client's attempts came to.
#[derive(Default)]
struct Tally {
    booked: Vec<String>,
    /// When the last booking was made, after the start.
    last_booked: Duration,
    conflicts: u64,
    at_limit: u64,
    server_errors: u64,
    other: BTreeMap<u16, u64>,
    transport_errors: u64,
    latencies: Vec<Duration>,
    first_problem: Option<String>,
}

impl Tally {
    /// Answers a client saw as errors: 5xx, unexpected statuses, and no answer at all.
    fn surfaced(&self) -> u64 {
        self.server_errors + self.other.values().sum::<u64>() + self.transport_errors
    }
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
    let mut targets = pick_slots(ctx, &therapists, &clients[0], s).await?;
    if args.spread {
        // Hour by hour, consecutive slots go to consecutive clients, so no client gets two
        // slots at the same hour while there are at least as many clients as therapists.
        targets.sort_by(|a, b| (&a.start, &a.therapist).cmp(&(&b.start, &b.therapist)));
        if t > c || s.div_ceil(c) > UPCOMING_LIMIT {
            eprintln!(
                "note: with {c} clients, {t} therapists and {s} slots some clients get two \
                 slots at one hour or more than {UPCOMING_LIMIT} (409/422 refusals)"
            );
        }
    }
    // A client holds at most one session per hour, so the limit is out of reach when the
    // race offers no more distinct hours than it.
    let hours = distinct_starts(&targets);
    if hours > UPCOMING_LIMIT {
        eprintln!(
            "note: the race offers {hours} distinct hours, so a client may reach the limit of \
             {UPCOMING_LIMIT} upcoming sessions (422, counted as refusals); at most \
             {UPCOMING_LIMIT} slots per therapist avoids it"
        );
    }

    let barrier = Arc::new(Barrier::new(c));
    let seed = u64::from_str_radix(&ctx.nonce, 16).unwrap_or(1);
    let started = Instant::now();
    let workers: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, client)| {
            let mut order: Vec<Target> = if args.spread {
                targets.iter().skip(i).step_by(c).cloned().collect()
            } else {
                targets.clone()
            };
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
                    match reply.as_ref().map(|r| (r, classify(r.status, &r.body))) {
                        Ok((r, Answer::Booked)) => {
                            if let Some(id) = r.body["id"].as_str() {
                                tally.booked.push(id.to_owned());
                            }
                            tally.last_booked = started.elapsed();
                        }
                        Ok((_, Answer::Conflict)) => tally.conflicts += 1,
                        Ok((_, Answer::AtLimit)) => tally.at_limit += 1,
                        Ok((r, Answer::Unexpected)) => {
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
        total.at_limit += tally.at_limit;
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
    let latency = Latency::of(std::mem::take(&mut total.latencies));

    let verdict = verify(&args.database_url, &therapists, &targets).await?;
    let cancelled = if args.keep {
        0
    } else {
        cancel(ctx, &clients, &booked_by).await
    };

    let booked = booked_by.len() as u64;
    let booking_rate = round3(booked as f64 / total.last_booked.as_secs_f64().max(1e-9));
    let mut report = ctx.report("booking");
    report
        .both("mode", if args.spread { "spread" } else { "race" })
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
        .both("bookings_per_second", booking_rate)
        // The name pgbench's runs use, so the comparison's tables line them up.
        .json("confirmed_per_second", booking_rate)
        .both(
            "requests_per_second",
            round3(requests as f64 / elapsed.as_secs_f64()),
        )
        .row("request p50 / p99 / max", latency.cell())
        .both("distinct_hours", hours as u64)
        .both("conflicts_409", total.conflicts)
        .both("refusals_limit_422", total.at_limit)
        .both("server_errors_5xx", total.server_errors)
        .both("transport_errors", total.transport_errors)
        .both(
            "other_statuses",
            format!("{:?}", total.other).replace(' ', ""),
        )
        .row("errors surfaced to clients", total.surfaced())
        .json("errors_surfaced", total.surfaced())
        .both("db_confirmed_in_race", verdict.confirmed)
        .both("db_therapist_overlaps", verdict.therapist_overlaps)
        .both("db_client_overlaps", verdict.client_overlaps)
        .both("cancelled_afterwards", cancelled);
    latency.put(&mut report, "latency");
    if let Some(problem) = &total.first_problem {
        report.row("first problem", problem);
    }
    let ok = total.surfaced() == 0
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

/// How many different start times the race offers.
fn distinct_starts(targets: &[Target]) -> usize {
    let starts: std::collections::BTreeSet<&str> =
        targets.iter().map(|t| t.start.as_str()).collect();
    starts.len()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Only the server's own refusals of a race are expected; the rest surfaces as errors.
    #[test]
    fn answers_are_sorted_by_status_and_code() {
        let error =
            |code: &str, message: &str| json!({ "error": { "code": code, "message": message } });
        assert_eq!(classify(201, &json!({ "id": "b" })), Answer::Booked);
        let taken = error("slot_taken", "that slot has just been taken");
        assert_eq!(classify(409, &taken), Answer::Conflict);
        let limit = error(
            "validation",
            "you can hold at most 8 upcoming sessions; cancel one to book another",
        );
        assert_eq!(classify(422, &limit), Answer::AtLimit);
        let other = error("validation", "that Idempotency-Key was already used");
        assert_eq!(classify(422, &other), Answer::Unexpected);
        let gone = error("slot_unavailable", "that time is not an available slot");
        assert_eq!(classify(422, &gone), Answer::Unexpected);
        assert_eq!(
            classify(409, &error("already_started", "")),
            Answer::Unexpected
        );
        assert_eq!(classify(500, &error("internal", "")), Answer::Unexpected);
        assert_eq!(classify(503, &json!("bad gateway")), Answer::Unexpected);
    }

    /// Hours are counted once however many therapists offer them.
    #[test]
    fn distinct_starts_count_hours_not_slots() {
        let slot = |t: &str, s: &str| Target {
            therapist: t.into(),
            start: s.into(),
        };
        let targets = [slot("a", "10:00"), slot("b", "10:00"), slot("a", "11:00")];
        assert_eq!(distinct_starts(&targets), 2);
    }
}
