use crate::helpers::TestApp;
use chrono::{DateTime, Duration, Utc};
use paranimo::store::bookings;
use paranimo_actors::domain::Slot;
use paranimo_actors::ids::{TherapistId, UserId};
use paranimo_actors::ports::{NewBooking, PortError};
use serde_json::json;

/// Booking reaches the therapist's open calendar and every viewer's slot list over real
/// websockets; cancelling frees the slot everywhere.
#[actix_web::test]
async fn booking_and_cancelling_reach_every_open_socket() {
    let app = TestApp::spawn().await;
    let therapist = app.new_therapist().await;
    let client = app.new_client().await;
    let onlooker = app.new_client().await;

    let mut calendar = therapist.websocket().await;
    calendar
        .subscribe(&format!("calendar:{}", therapist.id()), None)
        .await;
    let (slots, seq) = onlooker.slots(&therapist.id()).await;
    let mut viewer = onlooker.websocket().await;
    viewer
        .subscribe(&format!("availability:{}", therapist.id()), Some(seq))
        .await;

    let slot = slots[0].clone();
    let booking = client
        .book(&therapist.id(), &slot["start"])
        .await
        .expect_status(201);
    assert_eq!(booking["status"], "confirmed");
    assert_eq!(booking["client_id"], client.id().as_str());

    let created = calendar.event("booking.created").await;
    assert_eq!(created["event"]["booking"]["id"], booking["id"]);
    let taken = viewer.event("slot.taken").await;
    assert_eq!(taken["event"]["slot"], slot);
    let (after, _) = onlooker.slots(&therapist.id()).await;
    assert!(
        !after.contains(&slot),
        "the booked slot is no longer listed"
    );

    let cancel = format!("/api/bookings/{}/cancel", booking["id"].as_str().unwrap());
    client
        .post_json(&cancel, &json!({}))
        .await
        .expect_status(200);
    let cancelled = calendar.event("booking.cancelled").await;
    assert_eq!(cancelled["event"]["booking"]["status"], "cancelled");
    let freed = viewer.event("slot.freed").await;
    assert_eq!(freed["event"]["slot"], slot);
    assert!(freed["seq"].as_u64() > taken["seq"].as_u64());
    let (again, _) = onlooker.slots(&therapist.id()).await;
    assert!(again.contains(&slot), "the cancelled slot is offered again");
}

/// Fifty clients racing for one slot: exactly one booking, forty-nine clear conflicts.
#[actix_web::test]
async fn fifty_clients_racing_for_one_slot_make_exactly_one_booking() {
    let app = TestApp::spawn().await;
    let therapist = app.new_therapist().await;
    let mut clients = Vec::new();
    for _ in 0..50 {
        clients.push(app.new_client().await);
    }
    let (slots, _) = clients[0].slots(&therapist.id()).await;
    let start = slots[3]["start"].clone();

    let therapist_id = therapist.id();
    let attempts = clients.iter().map(|c| c.book(&therapist_id, &start));
    let replies = futures_util::future::join_all(attempts).await;

    let won: Vec<_> = replies.iter().filter(|r| r.status == 201).collect();
    let lost: Vec<_> = replies.iter().filter(|r| r.status == 409).collect();
    assert_eq!(won.len(), 1, "exactly one winner");
    assert_eq!(lost.len(), 49, "everyone else gets a conflict");
    assert!(lost.iter().all(|r| r.body["error"]["code"] == "slot_taken"));
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 1);
}

/// Even bypassing the calendar actor (as two nodes would), PostgreSQL's exclusion
/// constraint lets only one of many concurrent overlapping inserts through.
#[actix_web::test]
async fn the_database_refuses_overlaps_from_concurrent_writers() {
    let app = TestApp::spawn().await;
    let therapist = app.new_therapist().await;
    let mut clients = Vec::new();
    for _ in 0..10 {
        clients.push(app.new_client().await);
    }
    let start: DateTime<Utc> = Utc::now() + Duration::days(3);
    let attempts = clients.iter().enumerate().map(|(i, c)| {
        // Overlapping but not identical intervals, so only the constraint can catch them.
        let slot_start = start + Duration::minutes(i as i64 * 3);
        let new = NewBooking {
            therapist_id: TherapistId(therapist.id().parse().unwrap()),
            client_id: UserId(c.id().parse().unwrap()),
            slot: Slot {
                start: slot_start,
                end: slot_start + Duration::minutes(50),
            },
            idempotency_key: None,
        };
        let pool = app.pool.clone();
        async move { bookings::insert(&pool, &new).await }
    });
    let results = futures_util::future::join_all(attempts).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    let errors: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        errors.iter().all(|e| matches!(e, PortError::Conflict)),
        "{errors:?}"
    );
}

/// Retrying a booking with the same Idempotency-Key returns the same booking, once.
#[actix_web::test]
async fn a_retried_booking_with_the_same_key_is_made_once() {
    let app = TestApp::spawn().await;
    let therapist = app.new_therapist().await;
    let client = app.new_client().await;
    let (slots, _) = client.slots(&therapist.id()).await;
    let body = json!({ "therapist_id": therapist.id(), "start": slots[1]["start"] });
    let request = || {
        client
            .http
            .post(format!("{}/api/bookings", client.base))
            .header("Idempotency-Key", "k-1")
            .json(&body)
    };

    let first = client.send(request()).await.expect_status(201);
    let second = client.send(request()).await.expect_status(200);
    assert_eq!(first["id"], second["id"]);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 1);
}

/// A therapist cannot book, a client cannot double-book themselves, and strangers cannot
/// see or cancel someone else's booking (they are told it does not exist).
#[actix_web::test]
async fn bookings_belong_to_their_two_parties() {
    let app = TestApp::spawn().await;
    let therapist = app.new_therapist().await;
    let other_therapist = app.new_therapist().await;
    let client = app.new_client().await;
    let stranger = app.new_client().await;
    let (slots, _) = client.slots(&therapist.id()).await;

    therapist
        .book(&therapist.id(), &slots[0]["start"])
        .await
        .expect_error(403, "forbidden");
    let booking = client
        .book(&therapist.id(), &slots[0]["start"])
        .await
        .expect_status(201);
    // Same time with another therapist: the client cannot be in two sessions at once.
    let (other_slots, _) = client.slots(&other_therapist.id()).await;
    let same_time = other_slots
        .iter()
        .find(|s| s["start"] == slots[0]["start"])
        .expect("same slot");
    client
        .book(&other_therapist.id(), &same_time["start"])
        .await
        .expect_error(409, "slot_taken");

    let path = format!("/api/bookings/{}", booking["id"].as_str().unwrap());
    client.get(&path).await.expect_status(200);
    therapist.get(&path).await.expect_status(200);
    stranger.get(&path).await.expect_error(404, "not_found");
    other_therapist
        .get(&path)
        .await
        .expect_error(404, "not_found");
    stranger
        .post_json(&format!("{path}/cancel"), &json!({}))
        .await
        .expect_error(404, "not_found");
    stranger
        .get(&format!("{path}/messages"))
        .await
        .expect_error(404, "not_found");
    app.client()
        .get(&path)
        .await
        .expect_error(401, "unauthenticated");

    let mine = client.get("/api/bookings").await.expect_status(200);
    assert_eq!(mine.as_array().unwrap().len(), 1);
    let theirs = stranger.get("/api/bookings").await.expect_status(200);
    assert!(theirs.as_array().unwrap().is_empty());
}
