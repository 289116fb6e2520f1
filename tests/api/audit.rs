use crate::helpers::TestApp;
use paranimo::store::audit::{self, ChainReport};
use sqlx::PgPool;

/// Seals whatever is pending, then verifies the whole chain.
async fn seal_and_verify(pool: &PgPool) -> ChainReport {
    audit::seal_pending(pool).await.expect("sealing works");
    audit::verify_chain(pool).await.expect("verification runs")
}

/// Runs `sql` with the audit table's triggers switched off for this transaction only, as a
/// superuser could: then the hash chain, not the trigger, has to notice.
async fn tamper_as_superuser(pool: &PgPool, sql: &'static str) {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(sql).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

/// Registration, profile, availability, booking and cancelling each leave an audit event,
/// the sealed chain verifies, and the chain detects a row a superuser edited afterwards.
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
    let (booked_by, booking_row): (uuid::Uuid, i64) =
        sqlx::query_as("SELECT actor_id, id FROM audit_events WHERE action = 'booking.created'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(booked_by.to_string(), client.id());

    let report = seal_and_verify(&app.pool).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.unsealed, 0);
    assert_eq!(report.sealed as usize, actions.len());

    tamper_as_superuser(
        &app.pool,
        "UPDATE audit_events SET actor_id = NULL WHERE action = 'booking.created'",
    )
    .await;
    let report = audit::verify_chain(&app.pool).await.unwrap();
    assert_eq!(report.first_broken, Some(booking_row));
}
