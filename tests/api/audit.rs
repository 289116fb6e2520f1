use crate::helpers::TestApp;

/// Registration, profile, availability, booking and cancelling each leave an audit event,
/// and the hash chain detects a row edited afterwards.
#[actix_web::test]
async fn every_step_is_audited_and_tampering_is_detected() {
    let app = TestApp::spawn().await;
    let therapist = app.new_therapist().await;
    let client = app.new_client().await;
    let (slots, _) = client.slots(&therapist.id()).await;
    let booking = client
        .book(&therapist.id(), &slots[0]["start"])
        .await
        .expect_status(201);
    let path = format!("/api/bookings/{}/cancel", booking["id"].as_str().unwrap());
    client
        .post_json(&path, &serde_json::json!({}))
        .await
        .expect_status(200);

    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_events ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    for expected in [
        "user.registered",
        "therapist.profile_updated",
        "availability.updated",
        "booking.created",
        "booking.cancelled",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "no {expected} in {actions:?}"
        );
    }
    let booked_by: uuid::Uuid =
        sqlx::query_scalar("SELECT actor_id FROM audit_events WHERE action = 'booking.created'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(booked_by.to_string(), client.id());

    assert_eq!(
        paranimo::store::audit::verify_chain(&app.pool)
            .await
            .unwrap(),
        None
    );
    sqlx::query("UPDATE audit_events SET actor_id = NULL WHERE action = 'booking.created'")
        .execute(&app.pool)
        .await
        .unwrap();
    assert!(
        paranimo::store::audit::verify_chain(&app.pool)
            .await
            .unwrap()
            .is_some()
    );
}
