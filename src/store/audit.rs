//! The append-only, hash-chained audit trail.
//!
//! Writing and chaining are separate steps, so that audited writes do not queue behind one
//! lock. [`record`] inserts an unsealed row inside the caller's transaction: it commits or
//! rolls back with the change it describes, and takes no lock. A sealer ([`seal_pending`],
//! run in the background on every node by [`spawn_sealer`]) then chains committed rows in
//! batches: under a cluster-wide advisory lock it gives each the next `chain_seq`, the
//! previous row's hash and a hash of its own covering both. The chain's order is
//! `chain_seq`; a row whose transaction commits late is sealed late, whatever its id.
//!
//! [`verify_chain`] walks the chain and finds the first sealed row that was altered, removed
//! or moved, and counts the rows not sealed yet. The database refuses updates other than
//! sealing, and all deletes (see the `audit_sealing` migration); the chain catches what a
//! superuser does round that.

mod sealer;

pub use sealer::{AuditSealer, SEAL_INTERVAL, spawn_sealer};

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

/// One audit event about to be written. `detail` holds ids and codes, never personal data.
pub struct AuditEvent<'a> {
    pub actor: Option<Uuid>,
    pub action: &'a str,
    pub object_type: &'a str,
    pub object_id: String,
    pub detail: Value,
}

/// The chain's starting point, before any row exists.
const GENESIS: [u8; 32] = [0; 32];

/// The advisory lock whose holder may extend the chain. One name for the whole cluster, so
/// sealers on two nodes never both append after the same row.
const CHAIN_LOCK: &str = "paranimo.audit_chain";

/// Rows sealed per round. Bounds one round's transaction (its row locks, and the hashes held
/// in memory); a full round is followed at once by another.
pub const SEAL_BATCH: i64 = 1000;

/// The formula of rows written before batch sealing: their writers hashed them under the
/// old per-write lock, in id order. Kept so those hashes still prove what they proved.
const FORMULA_WRITER: i16 = 1;

/// The sealer's formula, which also covers the row's id and place in the chain.
const FORMULA_SEALER: i16 = 2;

/// Hash formula 1, as writers computed it before batch sealing. Only [`verify_chain`] uses
/// it now, for the rows sealed that way.
fn writer_hash(prev: &[u8], at: DateTime<Utc>, e: &AuditEvent<'_>) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(at.timestamp_micros().to_be_bytes());
    h.update(e.actor.map(|a| a.as_bytes().to_vec()).unwrap_or_default());
    for part in [e.action, e.object_type, &e.object_id, &e.detail.to_string()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().to_vec()
}

/// A row's content as the sealer hashes it. `detail` is PostgreSQL's own text for the JSONB
/// value, so the hash does not depend on how a serde_json build orders keys.
struct Content {
    id: i64,
    at: DateTime<Utc>,
    actor: Option<Uuid>,
    action: String,
    object_type: String,
    object_id: String,
    detail_text: String,
}

impl Content {
    /// Reads the columns every query here names alike (`detail_text` is `detail::text`).
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            at: row.try_get("at")?,
            actor: row.try_get("actor_id")?,
            action: row.try_get("action")?,
            object_type: row.try_get("object_type")?,
            object_id: row.try_get("object_id")?,
            detail_text: row.try_get("detail_text")?,
        })
    }
}

/// Hash formula 2: a tag naming the formula, the previous hash, the row's place in the chain
/// and its id (so renumbering or reordering shows), then its content. Variable parts are
/// length-prefixed and the actor has a presence byte, so no two rows hash the same bytes.
fn sealed_hash(prev: &[u8], chain_seq: i64, c: &Content) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"paranimo.audit.v2");
    h.update(prev);
    h.update(chain_seq.to_be_bytes());
    h.update(c.id.to_be_bytes());
    h.update(c.at.timestamp_micros().to_be_bytes());
    match c.actor {
        Some(actor) => {
            h.update([1]);
            h.update(actor.as_bytes());
        }
        None => h.update([0]),
    }
    for part in [&c.action, &c.object_type, &c.object_id, &c.detail_text] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().to_vec()
}

/// Appends `event`, unsealed, inside the caller's transaction, so it commits or rolls back
/// with the change it describes. It takes no lock and reads nothing: the sealer chains the
/// row after the commit, usually within [`SEAL_INTERVAL`].
pub async fn record(tx: &mut PgConnection, event: AuditEvent<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        r#"
        INSERT INTO audit_events (at, actor_id, action, object_type, object_id, detail)
        VALUES ($1, $2, $3, $4, $5, $6)
        "#,
    )
    .bind(Utc::now())
    .bind(event.actor)
    .bind(event.action)
    .bind(event.object_type)
    .bind(&event.object_id)
    .bind(&event.detail)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Writes one event in its own transaction, for events with no other change to join.
pub async fn record_alone(pool: &PgPool, event: AuditEvent<'_>) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    record(&mut tx, event).await?;
    tx.commit().await
}

/// Whether a sealing round waits for the chain's lock or gives up when another holds it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum LockWait {
    Wait,
    Skip,
}

/// Seals every row committed before the call and returns how many rows it sealed. For tests
/// and operators who need the chain complete now: it waits while another sealer finishes its
/// round, where the background sealer would skip its turn.
pub async fn seal_pending(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let sealed = seal_round(pool, LockWait::Wait).await?.unwrap_or(0);
        total += sealed;
        if sealed < SEAL_BATCH as u64 {
            return Ok(total);
        }
    }
}

/// One round in one transaction: take the chain's lock, read the chain's head, seal up to
/// [`SEAL_BATCH`] unsealed rows in id order after it, commit. `None` when `lock` is
/// [`LockWait::Skip`] and another sealer holds the lock. The commit releases the lock only
/// after the new head is visible, so the next holder always starts from it.
#[tracing::instrument(
    name = "audit_seal_round",
    level = "debug",
    skip_all,
    fields(sealed = tracing::field::Empty)
)]
async fn seal_round(pool: &PgPool, lock: LockWait) -> Result<Option<u64>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let locked = match lock {
        LockWait::Wait => {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(CHAIN_LOCK)
                .execute(&mut *tx)
                .await?;
            true
        }
        LockWait::Skip => {
            sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext($1))")
                .bind(CHAIN_LOCK)
                .fetch_one(&mut *tx)
                .await?
        }
    };
    if !locked {
        tracing::debug!("another sealer holds the chain; this round skipped");
        return Ok(None);
    }

    let head: Option<(i64, Vec<u8>)> = sqlx::query_as(
        r#"
        SELECT chain_seq, hash
        FROM audit_events
        WHERE chain_seq IS NOT NULL
        ORDER BY chain_seq DESC
        LIMIT 1
        "#,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let (mut seq, mut prev) = head.unwrap_or((0, GENESIS.to_vec()));

    // Only committed rows are visible here; a row whose transaction is still open, even with
    // a lower id, waits for a later round.
    let rows = sqlx::query(
        r#"
        SELECT id, at, actor_id, action, object_type, object_id, detail::text AS detail_text
        FROM audit_events
        WHERE chain_seq IS NULL
        ORDER BY id
        LIMIT $1
        "#,
    )
    .bind(SEAL_BATCH)
    .fetch_all(&mut *tx)
    .await?;

    let mut ids = Vec::with_capacity(rows.len());
    let mut seqs = Vec::with_capacity(rows.len());
    let mut prevs = Vec::with_capacity(rows.len());
    let mut hashes = Vec::with_capacity(rows.len());
    for row in &rows {
        let content = Content::from_row(row)?;
        seq += 1;
        let hash = sealed_hash(&prev, seq, &content);
        ids.push(content.id);
        seqs.push(seq);
        prevs.push(std::mem::replace(&mut prev, hash.clone()));
        hashes.push(hash);
    }

    if !ids.is_empty() {
        // The append-only trigger refuses to seal a row twice and chain_seq is unique, so a
        // sealer that somehow ran without the lock would fail here rather than fork the chain.
        sqlx::query(
            r#"
            UPDATE audit_events AS a
            SET chain_seq = s.chain_seq, chain_version = $5, prev_hash = s.prev_hash,
                hash = s.hash
            FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[])
                 AS s (id, chain_seq, prev_hash, hash)
            WHERE a.id = s.id
            "#,
        )
        .bind(&ids)
        .bind(&seqs)
        .bind(&prevs)
        .bind(&hashes)
        .bind(FORMULA_SEALER)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;

    let sealed = ids.len() as u64;
    tracing::Span::current().record("sealed", sealed);
    if sealed > 0 {
        tracing::debug!(sealed, "audit rows sealed");
    }
    Ok(Some(sealed))
}

/// What [`verify_chain`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Sealed rows checked.
    pub sealed: u64,
    /// The id of the first sealed row, in chain order, that does not follow from the row
    /// before it: its own content, its place or the row before it was altered or removed.
    pub first_broken: Option<i64>,
    /// Rows not sealed yet. A few are normal (committed since the sealer's last round); many,
    /// or an old [`ChainReport::oldest_unsealed_at`], mean no sealer has been running.
    pub unsealed: u64,
    /// When the oldest unsealed row was written.
    pub oldest_unsealed_at: Option<DateTime<Utc>>,
}

impl ChainReport {
    /// True when every sealed row checks out. Unsealed rows are not counted against it: they
    /// are not in the chain yet, so nothing about them can be checked.
    pub fn is_intact(&self) -> bool {
        self.first_broken.is_none()
    }
}

/// Recomputes the chain in `chain_seq` order from the genesis hash and reports the first row
/// that does not match, with a count of rows not yet sealed. Reads one snapshot, so rows
/// sealed meanwhile cannot be counted twice or missed.
pub async fn verify_chain(pool: &PgPool) -> Result<ChainReport, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;

    let mut report = ChainReport {
        sealed: 0,
        first_broken: None,
        unsealed: 0,
        oldest_unsealed_at: None,
    };
    let mut rows = sqlx::query(
        r#"
        SELECT id, chain_seq, chain_version, at, actor_id, action, object_type, object_id,
               detail, detail::text AS detail_text, prev_hash, hash
        FROM audit_events
        WHERE chain_seq IS NOT NULL
        ORDER BY chain_seq
        "#,
    )
    .fetch(&mut *tx);
    let mut prev = GENESIS.to_vec();
    let mut expected_seq = 0;
    let mut formula = FORMULA_WRITER;
    while let Some(row) = rows.try_next().await? {
        expected_seq += 1;
        let seq: i64 = row.try_get("chain_seq")?;
        let row_formula: i16 = row.try_get("chain_version")?;
        let stored_prev: Vec<u8> = row.try_get("prev_hash")?;
        let stored: Vec<u8> = row.try_get("hash")?;
        let content = Content::from_row(&row)?;

        // Formula 1 rows all come before formula 2 rows: the migration numbered the old rows
        // first, and the sealer only ever uses formula 2.
        let in_order = row_formula == formula || row_formula == FORMULA_SEALER;
        formula = row_formula;
        let expected = match row_formula {
            FORMULA_WRITER => {
                let event = AuditEvent {
                    actor: content.actor,
                    action: &content.action,
                    object_type: &content.object_type,
                    object_id: content.object_id.clone(),
                    detail: row.try_get("detail")?,
                };
                Some(writer_hash(&prev, content.at, &event))
            }
            FORMULA_SEALER => Some(sealed_hash(&prev, expected_seq, &content)),
            _ => None,
        };
        let matches = expected.as_deref() == Some(stored.as_slice());
        if !(in_order && matches && seq == expected_seq && stored_prev == prev) {
            report.first_broken = Some(content.id);
            break;
        }
        prev = stored;
    }
    drop(rows);

    // Count what the walk did not reach, so the totals still describe the whole table.
    let (sealed, unsealed, oldest): (i64, i64, Option<DateTime<Utc>>) = sqlx::query_as(
        r#"
        SELECT count(chain_seq), count(*) FILTER (WHERE chain_seq IS NULL),
               min(at) FILTER (WHERE chain_seq IS NULL)
        FROM audit_events
        "#,
    )
    .fetch_one(&mut *tx)
    .await?;
    report.sealed = sealed as u64;
    report.unsealed = unsealed as u64;
    report.oldest_unsealed_at = oldest;
    tx.commit().await?;
    Ok(report)
}
