//! Paranimo's load generator. It speaks only the public HTTP and websocket protocol (the
//! wire types come from `paranimo-actors`) and runs named, bounded scenarios against
//! loopback addresses only.
//!
//! Scenarios so far:
//! - `login`: signs one existing account in over and over from C concurrent clients for D
//!   seconds and reports logins per second and latency percentiles: the cost of the chosen
//!   Argon2id parameters on the whole HTTP path.
//!
//! The realtime scenarios (idle, fanout, booking, chat, signalling, reconnect, slow) are
//! not written yet; they come with the load-testing work.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::json;
use std::time::{Duration, Instant};

/// Paranimo load generator (loopback targets only).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The server, e.g. http://127.0.0.1:8080. Must be a loopback address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: String,
    /// The Origin the server expects (its PUBLIC_ORIGIN); defaults to `base`.
    #[arg(long)]
    origin: Option<String>,
    #[command(subcommand)]
    scenario: Scenario,
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
}

/// Refuses anything but a loopback target: this tool must never load someone else's server.
fn require_loopback(base: &str) -> anyhow::Result<()> {
    let url = url::Url::parse(base).context("--base is not a URL")?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    if !loopback {
        bail!("{base} is not a loopback address; the load generator only targets this machine");
    }
    Ok(())
}

/// The value at fraction `q` of sorted samples.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index]
}

async fn login(
    base: &str,
    origin: &str,
    email: &str,
    password: &str,
    concurrency: usize,
    seconds: u64,
) -> anyhow::Result<()> {
    let seconds = seconds.min(120);
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let body = json!({ "email": email, "password": password });

    let workers = (0..concurrency.max(1)).map(|_| {
        let (http, body) = (http.clone(), body.clone());
        let (url, origin) = (format!("{base}/api/auth/login"), origin.to_owned());
        tokio::spawn(async move {
            let (mut ok, mut failed, mut latencies) = (0_u64, 0_u64, Vec::new());
            while Instant::now() < deadline {
                let started = Instant::now();
                let reply = http
                    .post(&url)
                    .header("Origin", &origin)
                    .json(&body)
                    .send()
                    .await;
                latencies.push(started.elapsed());
                match reply {
                    Ok(r) if r.status() == 200 && r.headers().contains_key("set-cookie") => ok += 1,
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
    latencies.sort();
    let per_second = ok as f64 / elapsed;
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));

    println!("scenario  concurrency  seconds  logins  failed  logins/s  p50 ms  p99 ms");
    println!(
        "login     {concurrency:>11}  {elapsed:>7.1}  {ok:>6}  {failed:>6}  {per_second:>8.1}  {:>6.1}  {:>6.1}",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    let summary = json!({
        "scenario": "login", "concurrency": concurrency, "seconds": elapsed, "logins": ok,
        "failed": failed, "logins_per_second": per_second,
        "p50_ms": p50.as_secs_f64() * 1e3, "p99_ms": p99.as_secs_f64() * 1e3,
        "protocol": paranimo_actors::protocol::PROTOCOL_VERSION,
    });
    println!("{summary}");
    if failed > 0 {
        bail!("{failed} sign-ins failed (wrong credentials, throttling, or a second factor?)");
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    require_loopback(&cli.base)?;
    let base = cli.base.trim_end_matches('/').to_owned();
    let origin = cli.origin.unwrap_or_else(|| base.clone());
    match cli.scenario {
        Scenario::Login {
            email,
            password,
            concurrency,
            seconds,
        } => login(&base, &origin, &email, &password, concurrency, seconds).await,
    }
}
