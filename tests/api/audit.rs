use crate::helpers::{TestApp, TestDatabase, seal_and_verify};
use paranimo::store::audit::{self, AuditEvent};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::task::JoinSet;

/// An event about `object_id`, by nobody in particular.
fn event(action: &str, object_id: String) -> AuditEvent<'_> {
    AuditEvent {
        actor: None,
        action,
        object_type: "test",
        object_id,
        detail: json!({ "n": 1 }),
    }
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

/// Counts of rows, sealed rows, distinct chain places and the highest place: the chain is
/// contiguous and unforked when all four are equal.
async fn chain_shape(pool: &PgPool) -> (i64, i64, i64, i64) {
    sqlx::query_as(
        r#"
        SELECT count(*), count(chain_seq), count(DISTINCT chain_seq),
               coalesce(max(chain_seq), 0)
        FROM audit_events
        "#,
    )
    .fetch_one(pool)
    .await
    .unwrap()
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

/// Sealed rows cannot be edited or removed by an ordinary session, nor rows inserted already
/// sealed: the table only grows, and only the sealer fills in chain fields.
#[actix_web::test]
async fn the_database_refuses_to_change_or_remove_audit_rows() {
    let app = TestApp::spawn().await;
    audit::record_alone(&app.pool, event("test.kept", "1".into()))
        .await
        .unwrap();
    seal_and_verify(&app.pool).await;

    for sql in [
        "UPDATE audit_events SET detail = '{}'",
        "UPDATE audit_events SET chain_seq = chain_seq + 1",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "INSERT INTO audit_events (action, object_type, object_id, prev_hash, hash, chain_seq, \
         chain_version) VALUES ('test.forged', 'test', '2', '\\x00', '\\x01', 99, 2)",
    ] {
        let refused = sqlx::query(sql).execute(&app.pool).await.unwrap_err();
        // 42501, insufficient_privilege: the trigger's refusal, not some other failure.
        let code = refused.as_database_error().and_then(|e| e.code());
        assert_eq!(code.as_deref(), Some("42501"), "{sql}: {refused}");
    }

    let report = audit::verify_chain(&app.pool).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.sealed, report.unsealed), (1, 0));
}

/// A superuser who deletes a sealed row from the middle of the chain is caught at the row
/// after it, whose link no longer matches.
#[actix_web::test]
async fn a_deleted_row_breaks_the_chain_at_the_next_row() {
    let app = TestApp::spawn().await;
    for n in 0..5 {
        audit::record_alone(&app.pool, event("test.numbered", n.to_string()))
            .await
            .unwrap();
    }
    assert!(seal_and_verify(&app.pool).await.is_intact());
    let next: i64 = sqlx::query_scalar("SELECT id FROM audit_events WHERE chain_seq = 4")
        .fetch_one(&app.pool)
        .await
        .unwrap();

    tamper_as_superuser(&app.pool, "DELETE FROM audit_events WHERE chain_seq = 3").await;
    let report = audit::verify_chain(&app.pool).await.unwrap();
    assert_eq!(report.first_broken, Some(next));
}

/// Two hundred writers, each in its own transaction and committing in a shuffled order (a
/// lower id often commits later), while the server's own sealer runs: after a final seal
/// every row is sealed exactly once in one contiguous, verifying chain.
#[actix_web::test]
async fn concurrent_audited_writes_are_each_sealed_once() {
    const WRITERS: i64 = 200;
    let app = TestApp::spawn().await;
    let mut writers = JoinSet::new();
    for n in 0..WRITERS {
        let pool = app.pool.clone();
        writers.spawn(async move {
            let mut tx = pool.begin().await?;
            audit::record(&mut tx, event("test.concurrent", n.to_string())).await?;
            tokio::time::sleep(Duration::from_millis((n * 7 % 13) as u64)).await;
            tx.commit().await
        });
    }
    while let Some(written) = writers.join_next().await {
        written.unwrap().expect("the write commits");
    }

    let report = seal_and_verify(&app.pool).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.unsealed, 0);
    let (rows, sealed, places, highest) = chain_shape(&app.pool).await;
    assert_eq!(rows, WRITERS);
    assert_eq!((sealed, places, highest), (rows, rows, rows));
}

/// Two on-demand sealers looping side by side with the background sealer, while writers keep
/// writing, never give two rows one place, nor one row two places, nor fork the chain.
#[actix_web::test]
async fn sealers_running_at_once_never_fork_the_chain() {
    const WRITERS: i64 = 4;
    const ROWS_EACH: i64 = 100;
    let app = TestApp::spawn().await;
    let writing = Arc::new(AtomicBool::new(true));

    let mut sealers = JoinSet::new();
    for _ in 0..2 {
        let (pool, writing) = (app.pool.clone(), writing.clone());
        sealers.spawn(async move {
            let mut sealed = 0;
            while writing.load(Ordering::Relaxed) {
                sealed += audit::seal_pending(&pool).await?;
                tokio::task::yield_now().await;
            }
            Ok::<u64, sqlx::Error>(sealed)
        });
    }
    let mut writers = JoinSet::new();
    for w in 0..WRITERS {
        let pool = app.pool.clone();
        writers.spawn(async move {
            for n in 0..ROWS_EACH {
                let object_id = format!("{w}-{n}");
                audit::record_alone(&pool, event("test.raced", object_id)).await?;
            }
            Ok::<(), sqlx::Error>(())
        });
    }
    while let Some(written) = writers.join_next().await {
        written.unwrap().expect("the writes commit");
    }
    writing.store(false, Ordering::Relaxed);
    while let Some(sealer) = sealers.join_next().await {
        sealer.unwrap().expect("no sealer fails");
    }

    let report = seal_and_verify(&app.pool).await;
    assert!(report.is_intact(), "{report:?}");
    let (rows, sealed, places, highest) = chain_shape(&app.pool).await;
    assert_eq!(rows, WRITERS * ROWS_EACH);
    assert_eq!((sealed, places, highest), (rows, rows, rows));
}

/// An audit row written by a transaction that rolls back is never stored, so never sealed:
/// the audit trail describes only changes that happened.
#[actix_web::test]
async fn a_rolled_back_write_leaves_no_audit_row() {
    let app = TestApp::spawn().await;
    let mut tx = app.pool.begin().await.unwrap();
    audit::record(&mut tx, event("test.rolled_back", "1".into()))
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    audit::record_alone(&app.pool, event("test.committed", "2".into()))
        .await
        .unwrap();

    let report = seal_and_verify(&app.pool).await;
    assert!(report.is_intact(), "{report:?}");
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_events")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(actions, ["test.committed"]);
}

/// While no sealer can run (another holds the chain's lock), verification reports the waiting
/// rows apart from the chain, so an operator can see a sealer that has stopped.
#[actix_web::test]
async fn rows_left_unsealed_are_reported_apart() {
    let app = TestApp::spawn().await;
    let mut holder = app.pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(hashtext('paranimo.audit_chain'))")
        .execute(&mut *holder)
        .await
        .unwrap();
    audit::record_alone(&app.pool, event("test.waiting", "1".into()))
        .await
        .unwrap();

    let report = audit::verify_chain(&app.pool).await.unwrap();
    assert!(report.is_intact());
    assert_eq!((report.sealed, report.unsealed), (0, 1));
    assert!(report.oldest_unsealed_at.is_some());

    sqlx::query("SELECT pg_advisory_unlock(hashtext('paranimo.audit_chain'))")
        .execute(&mut *holder)
        .await
        .unwrap();
    let report = seal_and_verify(&app.pool).await;
    assert_eq!((report.sealed, report.unsealed), (1, 0));
}

/// The last migration before batch sealing: databases at this version hold rows hashed by
/// their writers, under the old per-write lock.
const BEFORE_SEALING: i64 = 20261203400001;

/// Writes `objects` as `record` did before batch sealing: prev_hash is the hash of the row
/// before in id order, and hash is SHA-256 over prev_hash, the time in microseconds, the
/// actor's bytes (none without one), then action, object type, object id and serde_json's
/// text of the detail, each after its length as eight big-endian bytes.
async fn record_as_before_sealing(pool: &PgPool, objects: &[&str]) {
    let mut prev = vec![0u8; 32];
    for (n, object_id) in objects.iter().enumerate() {
        let actor = (n % 2 == 1).then(uuid::Uuid::new_v4);
        let at =
            chrono::DateTime::from_timestamp_micros(chrono::Utc::now().timestamp_micros()).unwrap();
        let detail = json!({ "n": 1, "object": object_id });
        let mut h = Sha256::new();
        h.update(&prev);
        h.update(at.timestamp_micros().to_be_bytes());
        h.update(actor.map(|a| a.as_bytes().to_vec()).unwrap_or_default());
        for part in ["test.old", "test", object_id, &detail.to_string()] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        let hash = h.finalize().to_vec();
        sqlx::query(
            r#"
            INSERT INTO audit_events (at, actor_id, action, object_type, object_id, detail,
                                      prev_hash, hash)
            VALUES ($1, $2, 'test.old', 'test', $3, $4, $5, $6)
            "#,
        )
        .bind(at)
        .bind(actor)
        .bind(object_id)
        .bind(&detail)
        .bind(&prev)
        .bind(&hash)
        .execute(pool)
        .await
        .unwrap();
        prev = hash;
    }
}

/// Rows hashed by their writers before batch sealing keep verifying after the migration
/// numbers them, the sealer chains new rows on from the last of them, and an old row altered
/// afterwards is still caught.
#[actix_web::test]
async fn rows_hashed_before_batch_sealing_still_verify() {
    let database = TestDatabase::create().await;
    let pool = PgPool::connect(&database.url).await.unwrap();
    let migrator = sqlx::migrate!("./migrations");
    migrator.run_to(BEFORE_SEALING, &pool).await.unwrap();
    record_as_before_sealing(&pool, &["a", "b", "c"]).await;

    migrator.run(&pool).await.unwrap();
    let report = audit::verify_chain(&pool).await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.sealed, report.unsealed), (3, 0));

    for n in 0..2 {
        audit::record_alone(&pool, event("test.new", n.to_string()))
            .await
            .unwrap();
    }
    let report = seal_and_verify(&pool).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!((report.sealed, report.unsealed), (5, 0));

    tamper_as_superuser(
        &pool,
        "UPDATE audit_events SET object_id = 'z' WHERE chain_seq = 2",
    )
    .await;
    let altered: i64 = sqlx::query_scalar("SELECT id FROM audit_events WHERE chain_seq = 2")
        .fetch_one(&pool)
        .await
        .unwrap();
    let report = audit::verify_chain(&pool).await.unwrap();
    assert_eq!(report.first_broken, Some(altered));
    pool.close().await;
}
