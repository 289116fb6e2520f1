//! `signalling`: R rooms at once. In each, the booking's client and therapist join over the
//! websocket (`room.join`); the therapist, the offerer, builds a real `webrtc` 0.21 peer
//! with a data channel, gathers its candidates on 127.0.0.1 and sends the whole offer in one
//! `room.signal` (no trickle: simpler, and the server relays either kind alike); the client
//! answers the same way; then the therapist sends one data-channel message and the client
//! must receive it. Reports rooms per second, offer to connected (offerer's view) and offer
//! to message p50/p99, and the server's one-way relay time of each signal.

use super::{Ctx, join_room};
use crate::accounts::Pair;
use crate::net::{self, Tuning, Ws};
use crate::stats::{Latency, Report, round3};
use anyhow::{Context, bail};
use futures_util::{StreamExt, stream};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::peer_connection::SettingEngineBuilder;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState,
    RTCPeerConnectionState, RTCSessionDescription,
};
use webrtc::runtime::Runtime;

/// Longest a peer may take to gather, connect, or see its message.
const PEER_TIMEOUT: Duration = Duration::from_secs(20);

/// What the offerer sends over the data channel.
const GREETING: &str = "hello from the therapist";

#[derive(clap::Args)]
pub struct Args {
    /// Rooms negotiated.
    #[arg(long, default_value_t = 20)]
    rooms: usize,
    /// Rooms negotiating at once (0: all of them).
    #[arg(long, default_value_t = 0)]
    concurrency: usize,
}

/// One room's timings.
struct Timings {
    offer_to_connected: Duration,
    offer_to_message: Duration,
    relays: Vec<Duration>,
}

pub async fn run(ctx: &Ctx, args: Args) -> anyhow::Result<Report> {
    let r = args.rooms.clamp(1, 5000);
    let concurrency = match args.concurrency {
        0 => r,
        n => n.min(r),
    };
    let pairs = ctx.setup.pairs(r).await?;
    let runtime = webrtc::runtime::default_runtime().context("no webrtc runtime")?;

    let started = Instant::now();
    let results: Vec<anyhow::Result<Timings>> = stream::iter(pairs.into_iter().enumerate())
        .map(|(k, pair)| {
            let runtime = runtime.clone();
            async move {
                tokio::time::timeout(PEER_TIMEOUT * 3, room(ctx, k, pair, runtime))
                    .await
                    .unwrap_or_else(|_| bail!("room did not finish in time"))
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();

    let (mut connected, mut relays, mut messages) = (Vec::new(), Vec::new(), Vec::new());
    let mut failed = 0;
    let mut first_error = None;
    for result in results {
        match result {
            Ok(t) => {
                connected.push(t.offer_to_connected);
                messages.push(t.offer_to_message);
                relays.extend(t.relays);
            }
            Err(e) => {
                failed += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    let done = connected.len();
    let (connected, messages, relays) = (
        Latency::of(connected),
        Latency::of(messages),
        Latency::of(relays),
    );

    let mut report = ctx.report("signalling");
    report
        .both("rooms", r as u64)
        .both("concurrency", concurrency as u64)
        .both("connected", done as u64)
        .both("failed", failed as u64)
        .row("total time", format!("{:.2} s", elapsed.as_secs_f64()))
        .json("seconds", round3(elapsed.as_secs_f64()))
        .both(
            "rooms_per_second",
            round3(done as f64 / elapsed.as_secs_f64()),
        )
        .row("offer to connected p50 / p99 / max", connected.cell())
        .row("offer to data-channel message", messages.cell())
        .row("signal relay (one way) p50 / p99 / max", relays.cell());
    connected.put(&mut report, "offer_to_connected");
    messages.put(&mut report, "offer_to_message");
    relays.put(&mut report, "relay");
    if let Some(error) = first_error {
        report.row("first error", error);
    }
    report.both("ok", failed == 0);
    Ok(report)
}

/// Joins both parties of room `k` and negotiates one peer connection through the server.
/// The client goes to node 2k and the therapist to node 2k + 1 (modulo the node count), so
/// with two nodes every room's signalling crosses between them.
async fn room(
    ctx: &Ctx,
    k: usize,
    pair: Pair,
    runtime: Arc<dyn Runtime>,
) -> anyhow::Result<Timings> {
    let booking = pair.booking_id.clone();
    let mut client = ctx
        .open(2 * k, Some(&pair.client), None, Tuning::default())
        .await?;
    let mut therapist = ctx
        .open(2 * k + 1, Some(&pair.therapist), None, Tuning::default())
        .await?;
    join_room(&mut client, &booking).await?;
    let joined = join_room(&mut therapist, &booking).await?;
    if joined["room"]["offerer"] != pair.therapist.user_id.as_str() {
        bail!("the therapist is not the offerer: {joined}");
    }

    // When each signal left its sender, for the one-way relay time.
    let sent_at: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let offered = Arc::new(std::sync::OnceLock::<Instant>::new());
    let (offer_side, answer_side) = tokio::join!(
        offer(
            &mut therapist,
            &booking,
            &pair.therapist.user_id,
            runtime.clone(),
            sent_at.clone(),
            offered.clone(),
        ),
        answer(
            &mut client,
            &booking,
            &pair.client.user_id,
            runtime,
            sent_at,
        ),
    );
    let (offer_to_connected, answer_relay) = offer_side?;
    let (message_at, offer_relay) = answer_side?;
    let offered = *offered.get().context("no offer was sent")?;

    for ws in [&mut therapist, &mut client] {
        let leave = json!({ "type": "room.leave", "id": "leave", "booking_id": booking });
        let _ = net::send(ws, &leave).await;
        let _ = ws.close(None).await;
    }
    Ok(Timings {
        offer_to_connected,
        offer_to_message: message_at.saturating_duration_since(offered),
        relays: vec![offer_relay, answer_relay],
    })
}

/// Watches a peer connection: gathering done, connected, failed.
struct Watcher {
    gathered: mpsc::Sender<()>,
    connected: mpsc::Sender<bool>,
    channels: mpsc::Sender<Arc<dyn DataChannel>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Watcher {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.try_send(());
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        match state {
            RTCPeerConnectionState::Connected => {
                let _ = self.connected.try_send(true);
            }
            RTCPeerConnectionState::Failed => {
                let _ = self.connected.try_send(false);
            }
            _ => {}
        }
    }

    async fn on_data_channel(&self, channel: Arc<dyn DataChannel>) {
        let _ = self.channels.try_send(channel);
    }
}

/// A peer on 127.0.0.1 and the receivers of its events.
struct Peer {
    pc: Arc<dyn PeerConnection>,
    gathered: mpsc::Receiver<()>,
    connected: mpsc::Receiver<bool>,
    channels: mpsc::Receiver<Arc<dyn DataChannel>>,
}

/// Time between two ICE connectivity checks, as browsers pace them.
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(50);

async fn peer(runtime: Arc<dyn Runtime>) -> anyhow::Result<Peer> {
    let (gathered_tx, gathered) = mpsc::channel(1);
    let (connected_tx, connected) = mpsc::channel(2);
    let (channels_tx, channels) = mpsc::channel(2);
    let watcher = Arc::new(Watcher {
        gathered: gathered_tx,
        connected: connected_tx,
        channels: channels_tx,
    });
    // Browsers pace their ICE checks at about 50 ms; webrtc-rs defaults to 200 ms, which
    // would put a 200 ms floor under offer-to-connected that says nothing about the server.
    let settings = SettingEngineBuilder::new()
        .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), None)
        .build();
    let pc = PeerConnectionBuilder::new()
        .with_setting_engine(settings)
        .with_handler(watcher)
        .with_runtime(runtime)
        .with_udp_addrs(vec!["127.0.0.1:0".to_owned()])
        .build()
        .await
        .context("build a peer connection")?;
    Ok(Peer {
        pc: Arc::new(pc),
        gathered,
        connected,
        channels,
    })
}

/// Sets `description` as local, waits for every candidate, returns the full description.
async fn complete_local(
    peer: &mut Peer,
    description: RTCSessionDescription,
) -> anyhow::Result<RTCSessionDescription> {
    peer.pc.set_local_description(description).await?;
    tokio::time::timeout(PEER_TIMEOUT, peer.gathered.recv())
        .await
        .context("ICE gathering did not complete")?;
    peer.pc
        .local_description()
        .await
        .context("no local description")
}

async fn send_signal(
    ws: &mut Ws,
    booking: &str,
    id: &str,
    description: &RTCSessionDescription,
) -> anyhow::Result<()> {
    let frame = json!({
        "type": "room.signal", "id": id, "booking_id": booking,
        "payload": { "description": description },
    });
    net::send(ws, &frame).await
}

/// Waits for the other party's description of type `kind`; returns it and when it came.
async fn wait_signal(
    ws: &mut Ws,
    me: &str,
    kind: &str,
) -> anyhow::Result<(RTCSessionDescription, Instant)> {
    let frame = net::expect(ws, kind, PEER_TIMEOUT, |f| {
        f["type"] == "event"
            && f["event"]["kind"] == "room.signal"
            && f["event"]["from"] != me
            && f["event"]["payload"]["description"]["type"] == kind
    })
    .await?;
    let at = Instant::now();
    let description = serde_json::from_value(frame["event"]["payload"]["description"].clone())?;
    Ok((description, at))
}

/// The therapist's side: offer, take the answer, connect, send the greeting. Returns the
/// time from offer to connected, and the relay time of the answer.
async fn offer(
    ws: &mut Ws,
    booking: &str,
    me: &str,
    runtime: Arc<dyn Runtime>,
    sent_at: Arc<Mutex<Vec<Instant>>>,
    offered: Arc<std::sync::OnceLock<Instant>>,
) -> anyhow::Result<(Duration, Duration)> {
    let mut peer = peer(runtime).await?;
    let channel = peer.pc.create_data_channel("load", None).await?;
    let offer = peer.pc.create_offer(None).await?;
    let offer = complete_local(&mut peer, offer).await?;

    let at = Instant::now();
    offered.get_or_init(|| at);
    lock(&sent_at).push(at);
    send_signal(ws, booking, "offer", &offer).await?;

    let (answer, arrived) = wait_signal(ws, me, "answer").await?;
    let answer_sent = lock(&sent_at).get(1).copied().unwrap_or(arrived);
    let answer_relay = arrived.saturating_duration_since(answer_sent);
    peer.pc.set_remote_description(answer).await?;
    let up = tokio::time::timeout(PEER_TIMEOUT, peer.connected.recv()).await;
    if !matches!(up, Ok(Some(true))) {
        bail!("the offerer did not connect");
    }
    let offer_to_connected = at.elapsed();

    // Send the greeting once the channel is open.
    let opened = tokio::time::timeout(PEER_TIMEOUT, async {
        while let Some(event) = channel.poll().await {
            if matches!(event, DataChannelEvent::OnOpen) {
                return true;
            }
        }
        false
    })
    .await;
    if !matches!(opened, Ok(true)) {
        bail!("the data channel did not open");
    }
    channel.send_text(GREETING).await?;
    // Keep the connection until the answerer has read the greeting (it closes its side).
    let _ = tokio::time::timeout(PEER_TIMEOUT, async {
        while let Some(event) = channel.poll().await {
            if matches!(event, DataChannelEvent::OnClose) {
                break;
            }
        }
    })
    .await;
    let _ = peer.pc.close().await;
    Ok((offer_to_connected, answer_relay))
}

/// The client's side: take the offer, answer, wait for the greeting. Returns when the
/// greeting arrived and the relay time of the offer.
async fn answer(
    ws: &mut Ws,
    booking: &str,
    me: &str,
    runtime: Arc<dyn Runtime>,
    sent_at: Arc<Mutex<Vec<Instant>>>,
) -> anyhow::Result<(Instant, Duration)> {
    let (offer, arrived) = wait_signal(ws, me, "offer").await?;
    let offer_sent = lock(&sent_at).first().copied().unwrap_or(arrived);
    let offer_relay = arrived.saturating_duration_since(offer_sent);

    let mut peer = peer(runtime).await?;
    peer.pc.set_remote_description(offer).await?;
    let answer = peer.pc.create_answer(None).await?;
    let answer = complete_local(&mut peer, answer).await?;
    lock(&sent_at).push(Instant::now());
    send_signal(ws, booking, "answer", &answer).await?;

    let channel = tokio::time::timeout(PEER_TIMEOUT, peer.channels.recv())
        .await
        .context("no data channel arrived")?
        .context("no data channel arrived")?;
    let greeting = tokio::time::timeout(PEER_TIMEOUT, async {
        while let Some(event) = channel.poll().await {
            if let DataChannelEvent::OnMessage(message) = event {
                return Some((message.data.to_vec(), Instant::now()));
            }
        }
        None
    })
    .await
    .context("no greeting within the time")?
    .context("the data channel closed without a greeting")?;
    if greeting.0 != GREETING.as_bytes() {
        bail!("the greeting arrived altered");
    }
    let _ = channel.close().await;
    let _ = peer.pc.close().await;
    Ok((greeting.1, offer_relay))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
