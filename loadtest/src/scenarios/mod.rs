//! The scenarios, and what they share: the run context, opening a client connection in
//! either protocol, subscribing, joining a room, the two sides of talking pairs, and
//! publishing numbered events on one topic.

pub mod booking;
pub mod chat;
pub mod fanout;
pub mod idle;
pub mod login;
pub mod reconnect;
pub mod relay;
pub mod signalling;
pub mod slow;

use crate::accounts::{Account, Api, Setup, all_week};
use crate::net::{self, FdLimit, Sources, Tuning, Ws};
use crate::stats::Report;
use crate::{Cli, Target};
use anyhow::{Context, bail};
use futures_util::{StreamExt, stream};
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// How long one handshake or one expected answer may take before it counts as failed.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest connection count any scenario accepts: the target is 100,000 on this machine.
pub const MAX_CONNECTIONS: usize = 200_000;

/// Paranimo refuses a 17th websocket on one session on one node (`MAX_SOCKETS_PER_SESSION`
/// in `src/ws/mod.rs`), so many connections need many signed-in accounts.
pub const SOCKETS_PER_SESSION: usize = 16;

/// Accounts for `connections` sockets: at least `wanted`, enough that no session holds more
/// than [`SOCKETS_PER_SESSION`], and never more than the sockets.
pub fn accounts_for(connections: usize, wanted: usize) -> usize {
    wanted
        .max(connections.div_ceil(SOCKETS_PER_SESSION))
        .clamp(1, connections.max(1))
}

/// What every scenario gets.
pub struct Ctx {
    pub target: Target,
    /// The websocket of each node, in the order of `--base`; the first also serves HTTP.
    pub ws_urls: Vec<url::Url>,
    pub setup: Setup,
    /// The server processes (one per node), for their memory and open-files limits.
    pub server_pids: Vec<u32>,
    pub source_addresses: usize,
    pub connect_concurrency: usize,
    pub fd: FdLimit,
    /// Makes topics, message ids and the like unique to this run.
    pub nonce: String,
}

impl Ctx {
    /// `bases` holds at least one address; HTTP (set-up, publishing) goes to the first.
    pub fn new(cli: &Cli, bases: &[String], origin: &str, fd: FdLimit) -> anyhow::Result<Self> {
        let api = Api::new(&bases[0], origin)?;
        let setup = Setup::new(
            api,
            cli.mail_dir.as_deref(),
            cli.accounts_cache.as_deref(),
            cli.setup_concurrency,
        )?;
        Ok(Self {
            target: cli.target,
            ws_urls: bases
                .iter()
                .map(|b| net::websocket_url(b))
                .collect::<anyhow::Result<_>>()?,
            setup,
            server_pids: cli.server_pid.clone(),
            source_addresses: cli.source_addresses,
            connect_concurrency: cli.connect_concurrency.max(1),
            fd,
            nonce: format!("{:08x}", uuid::Uuid::new_v4().as_u128() as u32),
        })
    }

    pub fn api(&self) -> &Api {
        self.setup.api()
    }

    /// How many server nodes the websockets are spread over.
    pub fn nodes(&self) -> usize {
        self.ws_urls.len()
    }

    /// A report with the run's common rows.
    pub fn report(&self, scenario: &str) -> Report {
        let mut report = Report::new(scenario, self.target.name());
        report
            .both("nodes", self.nodes() as u64)
            .row(
                "open-files limit",
                format!("{} (hard {})", self.fd.soft, self.fd.hard),
            )
            .json("fd_limit", self.fd.soft);
        report
    }

    /// The servers' resident memory now, in KiB, summed over the nodes, when `--server-pid`
    /// was given (`None` if any of them cannot be read: a partial sum would mislead).
    pub fn server_rss(&self) -> Option<u64> {
        if self.server_pids.is_empty() {
            return None;
        }
        self.server_pids
            .iter()
            .map(|&pid| crate::stats::rss_kib(pid))
            .sum()
    }

    /// Warns when a node will run out of descriptors before its share of `connections`.
    pub fn check_server_fds(&self, connections: usize) {
        let share = connections.div_ceil(self.nodes());
        for &pid in &self.server_pids {
            let limit = std::fs::read_to_string(format!("/proc/{pid}/limits"))
                .ok()
                .and_then(|text| crate::stats::parse_open_files_limit(&text));
            if let Some(limit) = limit
                && (limit as usize) < share + 100
            {
                eprintln!(
                    "warning: server {pid}'s open-files limit is {limit}, below {share} \
                     connections; raise it (as root: prlimit --pid {pid} --nofile=200000:200000)"
                );
            }
        }
    }

    /// Opens one client connection to node `node` (taken modulo the node count, so callers
    /// pass a connection's index to spread connections round-robin) as `account`
    /// (Paranimo; waits for `hello`) or anonymously (generic peers).
    pub async fn open(
        &self,
        node: usize,
        account: Option<&Account>,
        source: Option<Ipv4Addr>,
        tuning: Tuning,
    ) -> anyhow::Result<Ws> {
        let origin = self.api().origin.clone();
        let mut headers: Vec<(&str, &str)> = vec![("Origin", origin.as_str())];
        if let Some(account) = account {
            headers.push(("Cookie", account.cookie.as_str()));
        }
        let url = &self.ws_urls[node % self.nodes()];
        let mut ws = net::connect(url, &headers, source, tuning).await?;
        if self.target == Target::Paranimo {
            net::expect(&mut ws, "hello", ANSWER_TIMEOUT, |f| f["type"] == "hello").await?;
        }
        Ok(ws)
    }
}

/// Subscribes and returns the topic's sequence number at that moment.
pub async fn subscribe(ws: &mut Ws, topic: &str, since: Option<u64>) -> anyhow::Result<u64> {
    let mut frame = json!({ "type": "subscribe", "topic": topic });
    if let Some(since) = since {
        frame["since"] = json!(since);
    }
    net::send(ws, &frame).await?;
    let confirmed = net::expect(ws, "subscribed", ANSWER_TIMEOUT, |f| {
        f["type"] == "subscribed" && f["topic"] == topic
    })
    .await?;
    Ok(confirmed["seq"].as_u64().unwrap_or(0))
}

/// Opens `count` connections, each subscribed to `topic`, with bounded concurrency. The
/// accounts and the nodes are used round-robin; failures are counted, not fatal.
pub struct Subscribed {
    pub sockets: Vec<(Ws, u64)>,
    pub failed: usize,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub handshakes: Vec<Duration>,
}

pub async fn open_subscribed(
    ctx: &Ctx,
    accounts: &[Account],
    count: usize,
    topic: &str,
    sources: &Sources,
    tuning: Tuning,
) -> Subscribed {
    let started = Instant::now();
    let results: Vec<anyhow::Result<(Ws, u64, Duration)>> = stream::iter(0..count)
        .map(|i| async move {
            let begun = Instant::now();
            let account = (!accounts.is_empty()).then(|| &accounts[i % accounts.len()]);
            let mut ws = ctx.open(i, account, sources.next(), tuning).await?;
            let seq = subscribe(&mut ws, topic, None).await?;
            Ok((ws, seq, begun.elapsed()))
        })
        .buffer_unordered(ctx.connect_concurrency)
        .collect()
        .await;
    let mut out = Subscribed {
        sockets: Vec::with_capacity(count),
        failed: 0,
        first_error: None,
        elapsed: started.elapsed(),
        handshakes: Vec::with_capacity(count),
    };
    for result in results {
        match result {
            Ok((ws, seq, took)) => {
                out.sockets.push((ws, seq));
                out.handshakes.push(took);
            }
            Err(e) => {
                out.failed += 1;
                out.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    out
}

/// Makes numbered events on one topic: a therapist's calendar change over HTTP (Paranimo),
/// or a `publish` frame (generic peers). Each call waits for the server's answer, so the
/// i-th call makes the topic's event number `base + i`. It always talks to the first node,
/// so with several nodes every event crosses between them to reach the others'
/// subscribers.
pub enum Publisher {
    Calendar {
        api: Api,
        therapist: Account,
        flips: u64,
    },
    Frame {
        ws: Box<Ws>,
        topic: String,
    },
}

impl Publisher {
    /// The topic events appear on, and the publisher for it.
    pub async fn new(ctx: &Ctx) -> anyhow::Result<(String, Publisher)> {
        match ctx.target {
            Target::Paranimo => {
                let therapist = ctx
                    .setup
                    .therapists(1)
                    .await?
                    .pop()
                    .context("no therapist")?;
                let topic = format!("availability:{}", therapist.user_id);
                let publisher = Publisher::Calendar {
                    api: ctx.api().clone(),
                    therapist,
                    flips: 0,
                };
                Ok((topic, publisher))
            }
            Target::Generic => {
                let topic = format!("fanout-{}", ctx.nonce);
                let ws = ctx.open(0, None, None, Tuning::default()).await?;
                let publisher = Publisher::Frame {
                    ws: Box::new(ws),
                    topic: topic.clone(),
                };
                Ok((topic, publisher))
            }
        }
    }

    /// Publishes one event and waits until the server has taken it.
    pub async fn publish(&mut self, n: u64) -> anyhow::Result<()> {
        match self {
            Publisher::Calendar {
                api,
                therapist,
                flips,
            } => {
                *flips += 1;
                let body = all_week(*flips % 2 == 1);
                let reply = api
                    .put("/api/therapists/me/availability", &therapist.cookie, &body)
                    .await?;
                if reply.status != 200 {
                    bail!("calendar change answered {} {}", reply.status, reply.body);
                }
                Ok(())
            }
            Publisher::Frame { ws, topic } => {
                let frame = json!({
                    "type": "publish", "topic": topic,
                    "event": { "kind": "availability.changed", "n": n },
                });
                net::send(ws, &frame).await?;
                net::expect(ws, "ack", ANSWER_TIMEOUT, |f| f["type"] == "ack").await?;
                Ok(())
            }
        }
    }
}

/// The parts of a server frame the readers look at; everything else is skipped unparsed.
#[derive(serde::Deserialize)]
pub struct FrameHead {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub seq: Option<u64>,
    #[serde(default)]
    pub reason: Option<String>,
}

impl FrameHead {
    pub fn parse(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }
}

/// An app-level heartbeat in either protocol.
pub fn ping_frame(id: u64) -> Value {
    json!({ "type": "ping", "id": format!("hb-{id}") })
}

/// Joins a booking's room and returns the ack, or fails with the server's refusal.
pub async fn join_room(ws: &mut Ws, booking: &str) -> anyhow::Result<Value> {
    let frame = json!({ "type": "room.join", "id": "join", "booking_id": booking });
    net::send(ws, &frame).await?;
    let answer = net::expect(ws, "room.join ack", ANSWER_TIMEOUT, |f| {
        (f["type"] == "ack" || f["type"] == "error") && f["id"] == "join"
    })
    .await?;
    if answer["type"] == "error" {
        bail!("room.join refused: {answer} (is ROOM_OPENS_MINUTES_BEFORE=100000 set?)");
    }
    Ok(answer)
}

/// One side of a talking pair (the chat and relay scenarios).
pub struct PairSide {
    /// Who signs in (Paranimo), or nobody (the reference peers).
    pub account: Option<Account>,
    /// Where the pair meets: the booking (Paranimo) or a `chat:` topic (generic).
    pub conversation: String,
    /// Labels unique in this run, this side's and the other's, for message ids.
    pub me: String,
    pub peer: String,
}

/// Both sides of `pairs` pairs, in pair order: booked therapist and client on Paranimo, two
/// anonymous sides of a `chat:<nonce>-<topic_label><k>` topic on the reference peers.
pub async fn pair_sides(
    ctx: &Ctx,
    pairs: usize,
    topic_label: &str,
) -> anyhow::Result<Vec<PairSide>> {
    let meetings: Vec<(Option<Account>, Option<Account>, String)> = match ctx.target {
        Target::Paranimo => ctx
            .setup
            .pairs(pairs)
            .await?
            .into_iter()
            .map(|pair| (Some(pair.therapist), Some(pair.client), pair.booking_id))
            .collect(),
        Target::Generic => (0..pairs)
            .map(|k| (None, None, format!("chat:{}-{topic_label}{k}", ctx.nonce)))
            .collect(),
    };
    let mut sides = Vec::with_capacity(2 * pairs);
    for (k, (therapist, client, conversation)) in meetings.into_iter().enumerate() {
        let (t, c) = (format!("{}-{k}t", ctx.nonce), format!("{}-{k}c", ctx.nonce));
        sides.push(PairSide {
            account: therapist,
            conversation: conversation.clone(),
            me: t.clone(),
            peer: c.clone(),
        });
        sides.push(PairSide {
            account: client,
            conversation,
            me: c,
            peer: t,
        });
    }
    Ok(sides)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Never more than sixteen sockets per account, never more accounts than sockets.
    #[test]
    fn accounts_cover_the_per_session_socket_cap() {
        assert_eq!(accounts_for(2000, 500), 500);
        assert_eq!(accounts_for(100_000, 500), 6250);
        assert_eq!(accounts_for(10, 500), 10);
        assert_eq!(accounts_for(0, 5), 1);
    }

    /// The reader skips payloads it does not need and tolerates missing fields.
    #[test]
    fn frame_heads_read_what_the_readers_need() {
        let event = r#"{"type":"event","topic":"t","seq":7,"event":{"kind":"x","a":[1,2]}}"#;
        let head = FrameHead::parse(event).unwrap();
        assert_eq!((head.kind.as_str(), head.seq), ("event", Some(7)));
        let ack = FrameHead::parse(r#"{"type":"ack"}"#).unwrap();
        assert_eq!(ack.kind, "ack");
        assert!(ack.seq.is_none() && ack.reason.is_none());
        assert!(FrameHead::parse("nope").is_none());
    }
}
