use crate::helpers::TestApp;
use serde_json::{Value, json};
use std::time::Duration;

fn send(id: &str, booking: &str, body: &str) -> Value {
    json!({ "type": "message.send", "id": id, "booking_id": booking, "body": body })
}

/// A message is acknowledged after it is stored, reaches the other party live, is not
/// delivered twice when resent, and is still there after a reload.
#[actix_web::test]
async fn a_message_reaches_the_other_party_once_and_survives_reload() {
    let app = TestApp::spawn().await;
    let (therapist, client, booking) = app.booked_pair(0).await;
    let mut therapist_ws = therapist.websocket().await;
    therapist_ws
        .subscribe(&format!("user:{}", therapist.id()), None)
        .await;
    let mut client_ws = client.websocket().await;

    let ack = client_ws
        .command(send("m-1", &booking, "Hello, looking forward to it"))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let stored_id = ack["message"]["id"].clone();

    let received = therapist_ws.event("message.created").await;
    assert_eq!(
        received["event"]["message"]["body"],
        "Hello, looking forward to it"
    );
    assert_eq!(
        received["event"]["message"]["sender_id"],
        client.id().as_str()
    );

    let resent = client_ws
        .command(send("m-1", &booking, "Hello, looking forward to it"))
        .await;
    assert_eq!(
        resent["message"]["id"], stored_id,
        "a resend returns the stored message"
    );
    assert!(
        therapist_ws
            .no_event("message.created", Duration::from_millis(500))
            .await
    );

    let reply = therapist_ws
        .command(send("t-1", &booking, "Likewise."))
        .await;
    assert_eq!(reply["type"], "ack");
    for party in [&client, &therapist] {
        let history = party
            .get(&format!("/api/bookings/{booking}/messages"))
            .await
            .expect_status(200);
        let bodies: Vec<_> = history
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["body"].clone())
            .collect();
        assert_eq!(
            bodies,
            vec![json!("Hello, looking forward to it"), json!("Likewise.")]
        );
    }
}

/// A socket that was away replays the messages it missed, in order, with no gap, when it
/// resubscribes from its last sequence number.
#[actix_web::test]
async fn a_reconnecting_socket_catches_up_on_missed_messages() {
    let app = TestApp::spawn().await;
    let (therapist, client, booking) = app.booked_pair(0).await;
    let topic = format!("user:{}", therapist.id());
    let mut therapist_ws = therapist.websocket().await;
    let start = therapist_ws.subscribe(&topic, None).await;
    let mut client_ws = client.websocket().await;

    client_ws.command(send("a", &booking, "first")).await;
    let first = therapist_ws.event("message.created").await;
    let last_seen = first["seq"].as_u64().unwrap();
    assert_eq!(last_seen, start + 1);
    drop(therapist_ws);

    for (id, body) in [("b", "second"), ("c", "third")] {
        assert_eq!(
            client_ws.command(send(id, &booking, body)).await["type"],
            "ack"
        );
    }

    let mut back = therapist.websocket().await;
    back.send(json!({ "type": "subscribe", "topic": topic, "since": last_seen }))
        .await;
    let second = back.event("message.created").await;
    let third = back.event("message.created").await;
    assert_eq!(second["event"]["message"]["body"], "second");
    assert_eq!(third["event"]["message"]["body"], "third");
    assert_eq!(second["seq"].as_u64().unwrap(), last_seen + 1);
    assert_eq!(third["seq"].as_u64().unwrap(), last_seen + 2);
    let confirmed = back
        .expect("subscribed", |f| f["type"] == "subscribed")
        .await;
    assert_eq!(confirmed["seq"].as_u64().unwrap(), last_seen + 2);

    // Live delivery continues after the replay.
    client_ws.command(send("d", &booking, "fourth")).await;
    let fourth = back.event("message.created").await;
    assert_eq!(fourth["seq"].as_u64().unwrap(), last_seen + 3);
}

/// A stranger can neither post in nor follow someone else's conversation.
#[actix_web::test]
async fn a_stranger_cannot_post_or_listen() {
    let app = TestApp::spawn().await;
    let (therapist, _client, booking) = app.booked_pair(0).await;
    let stranger = app.new_client().await;
    let mut ws = stranger.websocket().await;

    let refused = ws.command(send("x", &booking, "let me in")).await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["code"], "not_found");
    ws.send(json!({ "type": "subscribe", "topic": format!("user:{}", therapist.id()) }))
        .await;
    let error = ws.expect("error", |f| f["type"] == "error").await;
    assert_eq!(error["code"], "not_found");
    ws.send(json!({ "type": "subscribe", "topic": format!("room:{booking}") }))
        .await;
    let error = ws.expect("error", |f| f["type"] == "error").await;
    assert_eq!(error["code"], "not_found");

    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
}
