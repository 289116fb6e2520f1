//! Fan-out and subscriptions under pressure: bursts of events, a client that stops reading,
//! resuming, floods and subscriptions undone at once.

use crate::helpers::TestApp;
use chrono::Utc;
use paranimo_actors::ids::{BookingId, MessageId, TherapistId, UserId};
use paranimo_actors::ports::EventBus;
use paranimo_actors::protocol::{ChatMessage, Event, Topic};
use std::time::Duration;

/// Events published at once, from many tasks, reach a subscriber complete and in order.
#[actix_web::test]
async fn a_burst_of_events_arrives_complete_and_in_order() {
    let app = TestApp::spawn().await;
    let therapist = app.new_therapist().await;
    let therapist_id: TherapistId = therapist.id().parse().expect("therapist id");
    let mut ws = therapist.websocket().await;
    let start = ws
        .subscribe(&format!("availability:{therapist_id}"), None)
        .await;

    let burst = 300;
    let publishes = (0..burst).map(|_| {
        app.state.bus.publish(
            Topic::Availability(therapist_id),
            Event::AvailabilityChanged { therapist_id },
        )
    });
    for published in futures_util::future::join_all(publishes).await {
        published.expect("published");
    }

    for expected in start + 1..=start + burst {
        let frame = ws.expect("event", |f| f["type"] == "event").await;
        assert_eq!(frame["seq"], expected, "{frame}");
    }
}

/// A client that stops reading is told it is too slow and closed, and another connection
/// following the same topic receives every event meanwhile.
#[actix_web::test]
async fn a_client_that_stops_reading_is_closed_without_holding_up_others() {
    let app = TestApp::spawn().await;
    let (therapist, client, booking) = app.booked_pair(0).await;
    let topic = format!("user:{}", therapist.id());
    let mut stalled = therapist.websocket().await;
    stalled.subscribe(&topic, None).await;
    let mut reader = therapist.websocket().await;
    let start = reader.subscribe(&topic, None).await;

    // Large events fill the stalled socket's buffers (the kernel's, then the server's queue of
    // a couple of thousand frames) after a few thousand.
    let events = 5_000u64;
    let user: UserId = therapist.id().parse().expect("user id");
    let message = ChatMessage {
        id: MessageId::new_random(),
        booking_id: booking.parse::<BookingId>().expect("booking id"),
        sender_id: client.id().parse().expect("user id"),
        client_msg_id: "bulk".to_owned(),
        body: "x".repeat(8 * 1024),
        created_at: Utc::now(),
    };
    let bus = app.state.bus.clone();
    let publisher = actix_web::rt::spawn(async move {
        for _ in 0..events {
            let event = Event::MessageCreated {
                message: message.clone(),
            };
            bus.publish(Topic::User(user), event)
                .await
                .expect("published");
        }
    });

    for expected in start + 1..=start + events {
        let frame = reader.expect("event", |f| f["type"] == "event").await;
        assert_eq!(
            frame["seq"], expected,
            "the reading connection misses nothing"
        );
    }
    publisher.await.expect("publisher");

    // The stalled client finds, after what was already in flight, why it was closed.
    let mut last_seq = 0;
    let closing = loop {
        let frame = stalled
            .try_next(Duration::from_secs(10))
            .await
            .expect("a frame or the close");
        match frame["type"].as_str() {
            Some("event") => {
                let seq = frame["seq"].as_u64().expect("seq");
                assert!(seq > last_seq, "frames stay in order");
                last_seq = seq;
            }
            _ => break frame,
        }
    };
    assert_eq!(closing["type"], "closing", "{closing}");
    assert!(
        closing["reason"]
            .as_str()
            .unwrap_or("")
            .contains("too slow"),
        "{closing}"
    );
    assert!(
        last_seq < start + events,
        "the stalled client was closed before it got everything"
    );
    let closed = stalled.next().await;
    assert_eq!(closed["type"], "socket_closed", "{closed}");
}

/// A client resuming with `since` gets exactly what it missed, in order; one that has been
/// away longer than history reaches back is told to resync instead.
#[actix_web::test]
async fn resuming_replays_the_missed_tail_or_asks_for_a_resync() {
    let app = TestApp::spawn().await;
    let therapist = app.new_therapist().await;
    let therapist_id: TherapistId = therapist.id().parse().expect("therapist id");
    let topic = Topic::Availability(therapist_id);
    let publish = |count: u64| {
        let bus = app.state.bus.clone();
        async move {
            let mut last = 0;
            for _ in 0..count {
                let event = Event::AvailabilityChanged { therapist_id };
                last = bus.publish(topic, event).await.expect("published");
            }
            last
        }
    };

    let current = publish(20).await;
    let mut ws = therapist.websocket().await;
    ws.send(serde_json::json!({
        "type": "subscribe", "topic": topic.to_string(), "since": current - 5,
    }))
    .await;
    for expected in current - 4..=current {
        let frame = ws.expect("event", |f| f["type"] == "event").await;
        assert_eq!(frame["seq"], expected, "{frame}");
    }
    let subscribed = ws.expect("subscribed", |f| f["type"] == "subscribed").await;
    assert_eq!(subscribed["seq"], current, "{subscribed}");

    // More than the history keeps (1,000 events) happen while another client is away.
    let current = publish(1_010).await;
    let mut away = therapist.websocket().await;
    away.send(serde_json::json!({ "type": "subscribe", "topic": topic.to_string(), "since": 3 }))
        .await;
    let answer = away
        .expect("resync", |f| f["type"] == "resync" || f["type"] == "event")
        .await;
    assert_eq!(answer["type"], "resync", "no partial replay: {answer}");
    assert_eq!(answer["seq"], current, "{answer}");

    // A client that has seen more than the topic holds (Redis lost its data and numbering
    // restarted) cannot be replayed to either: it must refetch, or it would drop what comes.
    let mut ahead = therapist.websocket().await;
    ahead
        .send(serde_json::json!({
            "type": "subscribe", "topic": topic.to_string(), "since": current + 500,
        }))
        .await;
    let answer = ahead
        .expect("resync", |f| {
            f["type"] == "resync" || f["type"] == "subscribed"
        })
        .await;
    assert_eq!(answer["type"], "resync", "{answer}");
    assert_eq!(answer["seq"], current, "{answer}");
}

/// Websocket pings past the frame budget go unanswered, so a client flooding pings while not
/// reading cannot make the server queue pongs; the connection works again once it slows.
#[actix_web::test]
async fn a_ping_flood_is_not_answered_past_the_frame_budget() {
    let app = TestApp::spawn().await;
    let client = app.new_client().await;
    let mut ws = client.websocket().await;
    for _ in 0..2_000 {
        ws.ping_socket(vec![7; 125]).await;
    }
    let pongs = ws.count_pongs(Duration::from_secs(1)).await;
    assert!(pongs >= 1, "pings within the budget are answered");
    assert!(
        pongs <= 100,
        "{pongs} pongs for 2,000 pings: the flood was answered"
    );

    tokio::time::sleep(Duration::from_secs(2)).await;
    ws.send(serde_json::json!({ "type": "ping", "id": "after" }))
        .await;
    let pong = ws.expect("pong", |f| f["type"] == "pong").await;
    assert_eq!(pong["id"], "after", "{pong}");
}

/// Subscribing and unsubscribing in the same breath leaves no subscription behind in the
/// event bus, where it would be sent every event of the topic for nothing.
#[actix_web::test]
async fn unsubscribing_at_once_leaves_nothing_behind() {
    let app = TestApp::spawn().await;
    let client = app.new_client().await;
    let mut ws = client.websocket().await;
    let topics: Vec<Topic> = (0..15)
        .map(|_| Topic::Availability(TherapistId::new_random()))
        .collect();
    let frames = topics
        .iter()
        .flat_map(|topic| {
            let name = topic.to_string();
            [
                serde_json::json!({ "type": "subscribe", "topic": name }),
                serde_json::json!({ "type": "unsubscribe", "topic": name }),
            ]
        })
        .collect();
    ws.send_together(frames).await;

    // Let every subscription's registration finish, then look at the bus.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for topic in &topics {
        assert_eq!(
            app.state.bus.local_subscribers(*topic),
            0,
            "{topic} still followed"
        );
    }
    ws.send(serde_json::json!({ "type": "ping", "id": "alive" }))
        .await;
    ws.expect("pong", |f| f["type"] == "pong").await;
}
