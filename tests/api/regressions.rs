//! Behaviour a first review found wrong, kept right.

use crate::helpers::{TEST_PASSWORD, TestApp};
use serde_json::json;
use std::time::Duration;

/// Confirmation links are not password-less logins: once the address is confirmed, every
/// other confirmation link is refused, even one mailed before.
#[actix_web::test]
async fn leftover_confirmation_links_do_not_sign_in() {
    let app = TestApp::spawn().await;
    let email = format!("{}@example.test", uuid::Uuid::new_v4());
    let client = app.client();
    let form =
        json!({ "email": email, "password": TEST_PASSWORD, "role": "client", "adult": true });
    client
        .post_json("/api/auth/register", &form)
        .await
        .expect_status(202);
    let first = client.mailed_token(&email).await;
    // A second link, as an early sign-in attempt would send (the 10-minute resend window
    // is stepped over by ageing the first link).
    sqlx::query("UPDATE email_tokens SET created_at = now() - interval '1 hour'")
        .execute(&app.pool)
        .await
        .unwrap();
    let login = json!({ "email": email, "password": TEST_PASSWORD });
    client
        .post_json("/api/auth/login", &login)
        .await
        .expect_error(403, "email_unverified");
    let second = client.mailed_token(&email).await;
    assert_ne!(first, second);

    client
        .post_json("/api/auth/verify-email", &json!({ "token": first }))
        .await
        .expect_status(200);
    let reuse = client
        .post_json("/api/auth/verify-email", &json!({ "token": second }))
        .await;
    assert!(reuse.set_cookie.is_none());
    reuse.expect_error(400, "invalid_token");
}

/// A client who has been away for hundreds of events catches up without being closed as a
/// slow reader.
#[actix_web::test]
async fn a_long_catch_up_is_not_taken_for_a_slow_client() {
    let app = TestApp::spawn().await;
    let (therapist, client, booking) = app.booked_pair(0).await;
    post_messages(&client, &booking, 300).await;
    let mut back = therapist.websocket().await;
    back.send(
        json!({ "type": "subscribe", "topic": format!("user:{}", therapist.id()), "since": 0 }),
    )
    .await;
    let done = back
        .expect("subscribed", |f| {
            f["type"] == "subscribed" || f["type"] == "closing"
        })
        .await;
    assert_eq!(done["type"], "subscribed", "{done}");
    assert!(done["seq"].as_u64().unwrap() >= 300);
}

/// The conversation endpoint returns the newest messages, and pages back from there.
#[actix_web::test]
async fn the_newest_messages_are_shown_and_older_ones_page_back() {
    let app = TestApp::spawn().await;
    let (_therapist, client, booking) = app.booked_pair(0).await;
    post_messages(&client, &booking, 205).await;
    let path = format!("/api/bookings/{booking}/messages");
    let newest = client.get(&path).await.expect_status(200);
    let newest = newest.as_array().unwrap();
    assert_eq!(newest.len(), 200);
    assert_eq!(newest.last().unwrap()["body"], "message 204");
    let before = newest[0]["created_at"].as_str().unwrap();
    let older = client
        .get(&format!("{path}?before={}", before.replace('+', "%2B")))
        .await
        .expect_status(200);
    let bodies: Vec<_> = older
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].clone())
        .collect();
    assert_eq!(bodies.first(), Some(&json!("message 0")));
    assert_eq!(bodies.len(), 5);
}

/// Posts `count` messages "message 0", "message 1"… in order, spread over sockets so each
/// stays within its per-connection frame rate.
async fn post_messages(client: &crate::helpers::Client, booking: &str, count: usize) {
    let mut sockets = Vec::new();
    for i in 0..count {
        if i % 35 == 0 {
            sockets.push(client.websocket().await);
        }
        let ws = sockets.last_mut().expect("a socket");
        let frame = json!({
            "type": "message.send", "id": format!("m{i}"), "booking_id": booking,
            "body": format!("message {i}")
        });
        assert_eq!(ws.command(frame).await["type"], "ack");
    }
}

/// One client cannot hold more than 8 upcoming sessions.
#[actix_web::test]
async fn one_client_cannot_empty_a_calendar() {
    let app = TestApp::spawn().await;
    let therapist = app.new_therapist().await;
    let client = app.new_client().await;
    let (slots, _) = client.slots(&therapist.id()).await;
    for slot in &slots[..8] {
        client
            .book(&therapist.id(), &slot["start"])
            .await
            .expect_status(201);
    }
    client
        .book(&therapist.id(), &slots[8]["start"])
        .await
        .expect_error(422, "validation");
    let (left, _) = client.slots(&therapist.id()).await;
    assert_eq!(left.len(), slots.len() - 8);
}

/// Changing the name or registration a badge was given for takes the badge away.
#[actix_web::test]
async fn identity_changes_clear_the_verified_badge() {
    let app = TestApp::spawn().await;
    let therapist = app.new_therapist().await;
    sqlx::query("UPDATE therapist_profiles SET verified = true")
        .execute(&app.pool)
        .await
        .unwrap();
    let mut profile = crate::helpers::sample_profile();
    profile["bio"] = json!("A new bio keeps the badge.");
    let kept = therapist
        .put_json("/api/therapists/me/profile", &profile)
        .await
        .expect_status(200);
    assert_eq!(kept["verified"], true);
    profile["membership_number"] = json!("BACP-999999");
    let cleared = therapist
        .put_json("/api/therapists/me/profile", &profile)
        .await
        .expect_status(200);
    assert_eq!(cleared["verified"], false);
}

/// Someone outside a booking who keeps trying to join its room never receives its
/// signalling, even while the two parties are negotiating.
#[actix_web::test]
async fn a_stranger_trying_to_join_hears_no_signalling() {
    let app = TestApp::spawn_with(|s| s.room_opens_minutes_before = 100_000).await;
    let (therapist, client, booking) = app.booked_pair(-1).await;
    let mut t = therapist.websocket().await;
    let mut c = client.websocket().await;
    t.command(json!({ "type": "room.join", "booking_id": booking }))
        .await;
    c.command(json!({ "type": "room.join", "booking_id": booking }))
        .await;
    let stranger = app.new_client().await;
    let mut s = stranger.websocket().await;

    let offer = json!({ "description": { "type": "offer", "sdp": "v=0" } });
    for _ in 0..30 {
        s.send(json!({ "type": "room.join", "id": "x", "booking_id": booking }))
            .await;
        t.send(
            json!({ "type": "room.signal", "id": "s", "booking_id": booking, "payload": offer }),
        )
        .await;
    }
    let leaked = !s.no_event("room.signal", Duration::from_millis(800)).await;
    assert!(!leaked, "a stranger received room signalling");
    c.event("room.signal").await;
}

/// NUL characters are refused as bad input, never reaching the database as a 500.
#[actix_web::test]
async fn control_characters_are_refused_cleanly() {
    let app = TestApp::spawn().await;
    let anonymous = app.client();
    let form = json!({ "email": "a\u{0}@example.test", "password": TEST_PASSWORD, "role": "client", "adult": true });
    anonymous
        .post_json("/api/auth/register", &form)
        .await
        .expect_error(422, "validation");
    let login = json!({ "email": "a\u{0}@example.test", "password": TEST_PASSWORD });
    anonymous
        .post_json("/api/auth/login", &login)
        .await
        .expect_error(401, "invalid_credentials");
    let therapist = app.new_therapist().await;
    let mut profile = crate::helpers::sample_profile();
    profile["bio"] = json!("bad\u{0}bio");
    therapist
        .put_json("/api/therapists/me/profile", &profile)
        .await
        .expect_error(422, "validation");
}
