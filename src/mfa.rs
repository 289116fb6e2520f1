//! Multi-factor authentication: time-based one-time codes (TOTP, RFC 6238) and one-time
//! recovery codes, with their SQL.
//!
//! A user enrols in two steps. [`begin_enrolment`] stores a fresh secret and returns it for
//! their authenticator app; [`confirm_enrolment`] checks a first code from the app, turns the
//! factor on and returns the recovery codes, the only time they are ever shown. From then on
//! [`verify_login_factor`] accepts a current code or an unused recovery code, each only once.
//!
//! Replay defence: `user_totp.last_used_step` is the highest time step ever accepted, and a
//! code is accepted only by an `UPDATE … WHERE last_used_step < step` that moves it forward.
//! PostgreSQL re-checks that condition after waiting for a concurrent update of the row, so
//! of two requests racing with the same code exactly one changes the row and passes.
//! Recovery codes are spent the same way, by `UPDATE … WHERE used_at IS NULL`.
//!
//! Every change and every check lands in the audit log in the same transaction; the details
//! hold method and reason codes, never a secret or a code.

use crate::store::audit::{self, AuditEvent};
use paranimo_actors::domain::Role;
use paranimo_actors::ids::UserId;
use rand::RngExt;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool, Row};
use std::time::{SystemTime, UNIX_EPOCH};
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// The issuer shown in authenticator apps.
pub const ISSUER: &str = "Paranimo";

/// Digits per code: 6 is what every authenticator app shows by default.
const DIGITS: u8 = 6;

/// Seconds per time step, RFC 6238's recommended value and every app's default.
const STEP_SECONDS: u64 = 30;

/// Steps of clock difference tolerated either way (RFC 6238 §5.2 recommends one): a code
/// typed just as it changes, or from a phone whose clock is a little off, still works.
const SKEW_STEPS: u16 = 1;

/// Bytes of secret: 160 bits, RFC 4226's recommended length.
const SECRET_BYTES: usize = 20;

/// Recovery codes handed out at a time.
pub const RECOVERY_CODE_COUNT: usize = 10;

/// Crockford's base-32 alphabet: no I, L, O or U, so a code read aloud or copied by hand
/// cannot be misread; on input, O is read as 0 and I or L as 1.
const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Characters per recovery code: 12 × 5 bits = 60 random bits, shown as `XXXX-XXXX-XXXX`.
const RECOVERY_CODE_CHARS: usize = 12;

/// Characters between the hyphens of a displayed recovery code.
const RECOVERY_GROUP_CHARS: usize = 4;

/// The outcome of checking a second factor at sign-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FactorCheck {
    /// A current code or an unused recovery code; it cannot be used again.
    Accepted,
    /// Wrong, too old, or already used.
    Rejected,
    /// The user has no confirmed second factor.
    NotEnrolled,
}

/// Why an MFA change was refused.
#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// The code is wrong, too old or already used.
    #[error("that code is wrong or has already been used")]
    InvalidCode,
    /// Enrolment asked for while a confirmed factor exists; disable it first.
    #[error("multi-factor authentication is already on")]
    AlreadyEnrolled,
    /// The user has no confirmed factor.
    #[error("multi-factor authentication is not on")]
    NotEnrolled,
    /// Confirmation asked for with no enrolment started.
    #[error("start enrolment first")]
    NoPendingEnrolment,
    /// Staff, admins and accounts marked by an operator cannot turn MFA off.
    #[error("this account must keep multi-factor authentication")]
    Required,
    /// The TOTP parameters were refused by the library (a bug on our side).
    #[error("TOTP set-up failed")]
    Totp(#[from] totp_rs::TotpError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A started enrolment: what the user's authenticator app needs. Secret material.
pub struct Enrolment {
    /// The shared secret, base32 without padding, for typing into an app.
    pub secret: String,
    /// The `otpauth://` URL, usually shown as a QR code.
    pub otpauth_url: String,
}

/// What a user's settings page shows about their second factor.
pub struct MfaStatus {
    pub enrolled: bool,
    pub recovery_codes_left: i64,
}

fn totp_for(secret: Secret) -> Result<Totp, totp_rs::TotpError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS)
        .with_step_duration(STEP_SECONDS)
        .with_skew(SKEW_STEPS)
        .with_secret(secret)
        .with_issuer(Some(ISSUER))
        .build()
}

/// The TOTP of a stored secret; an unreadable one is a decoding error of the row.
fn stored_totp(secret_base32: &str) -> Result<Totp, sqlx::Error> {
    let secret = Secret::try_from_base32(secret_base32)
        .map_err(|e| sqlx::Error::Decode(format!("stored TOTP secret: {e}").into()))?;
    totp_for(secret).map_err(|e| sqlx::Error::Decode(format!("stored TOTP secret: {e}").into()))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The time step `code` belongs to, if it is valid at `unix_time` give or take the skew.
fn matching_step(totp: &Totp, code: &str, unix_time: u64) -> Option<i64> {
    let step = totp.check(code, unix_time)?;
    i64::try_from(step).ok()
}

/// True when `input`, without spaces, has the shape of a TOTP code rather than a
/// recovery code.
fn totp_shaped(input: &str) -> bool {
    input.len() == usize::from(DIGITS) && input.bytes().all(|b| b.is_ascii_digit())
}

/// The canonical form of a typed recovery code: upper case, no hyphens or spaces, with
/// Crockford's look-alikes mapped. `None` when it cannot be a recovery code.
fn canonical_recovery_code(input: &str) -> Option<String> {
    let mut canonical = String::with_capacity(RECOVERY_CODE_CHARS);
    for c in input.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c if c.is_ascii() && RECOVERY_ALPHABET.contains(&(c as u8)) => c,
            _ => return None,
        };
        if canonical.len() == RECOVERY_CODE_CHARS {
            return None;
        }
        canonical.push(c);
    }
    (canonical.len() == RECOVERY_CODE_CHARS).then_some(canonical)
}

/// The stored form of a recovery code. The user id is hashed in so that one pass over all
/// possible codes cannot test every account's codes at once.
fn recovery_code_hash(user: UserId, canonical: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(user.0.as_bytes());
    h.update(canonical.as_bytes());
    h.finalize().to_vec()
}

/// A fresh recovery code in canonical form, 60 bits from the thread's CSPRNG.
fn new_recovery_code() -> String {
    let bits: u64 = rand::rng().random();
    // Five bits per character; 12 characters use 60 of the 64 bits.
    (0..RECOVERY_CODE_CHARS)
        .map(|i| char::from(RECOVERY_ALPHABET[((bits >> (5 * i)) & 0b1_1111) as usize]))
        .collect()
}

/// A canonical recovery code as shown to the user: `XXXX-XXXX-XXXX`.
fn display_recovery_code(canonical: &str) -> String {
    let mut shown = String::with_capacity(canonical.len() + 2);
    for (i, c) in canonical.chars().enumerate() {
        if i > 0 && i % RECOVERY_GROUP_CHARS == 0 {
            shown.push('-');
        }
        shown.push(c);
    }
    shown
}

fn audit_event(user: UserId, action: &'static str, detail: Value) -> AuditEvent<'static> {
    AuditEvent {
        actor: Some(user.0),
        action,
        object_type: "user",
        object_id: user.to_string(),
        detail,
    }
}

/// Replaces the user's recovery codes with a fresh set; returns them in plain text.
async fn replace_recovery_codes(
    tx: &mut PgConnection,
    user: UserId,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user.0)
        .execute(&mut *tx)
        .await?;
    let canonical: Vec<String> = (0..RECOVERY_CODE_COUNT)
        .map(|_| new_recovery_code())
        .collect();
    let hashes: Vec<Vec<u8>> = canonical
        .iter()
        .map(|c| recovery_code_hash(user, c))
        .collect();
    sqlx::query(
        r#"
        INSERT INTO recovery_codes (user_id, code_hash)
        SELECT $1, hash FROM unnest($2::bytea[]) AS hash
        "#,
    )
    .bind(user.0)
    .bind(&hashes)
    .execute(&mut *tx)
    .await?;
    Ok(canonical.iter().map(|c| display_recovery_code(c)).collect())
}

async fn recovery_codes_left(tx: &mut PgConnection, user: UserId) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
        .bind(user.0)
        .fetch_one(tx)
        .await
}

/// The secret of the user's confirmed factor, if there is one.
async fn confirmed_secret(
    tx: &mut PgConnection,
    user: UserId,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT secret FROM user_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL",
    )
    .bind(user.0)
    .fetch_optional(tx)
    .await
}

/// How a second factor was accepted.
enum Used {
    Totp,
    RecoveryCode { left: i64 },
}

/// Why a second factor was refused; recorded in the audit log.
#[derive(Clone, Copy)]
enum Refusal {
    Wrong,
    Replayed,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::Wrong => "wrong_code",
            Refusal::Replayed => "already_used",
        }
    }
}

/// Checks `code` against the user's confirmed factor and spends it: a TOTP code moves
/// `last_used_step` past its step, a recovery code is marked used. Both updates are
/// conditional, so a code that a concurrent transaction has just spent is refused here.
async fn spend_factor(
    tx: &mut PgConnection,
    user: UserId,
    secret: &str,
    code: &str,
) -> Result<Result<Used, Refusal>, sqlx::Error> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();

    if totp_shaped(&code) {
        let totp = stored_totp(secret)?;
        let Some(step) = matching_step(&totp, &code, unix_now()) else {
            return Ok(Err(Refusal::Wrong));
        };
        let moved = sqlx::query(
            r#"
            UPDATE user_totp
            SET last_used_step = $2
            WHERE user_id = $1 AND confirmed_at IS NOT NULL AND last_used_step < $2
            "#,
        )
        .bind(user.0)
        .bind(step)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        return Ok(if moved == 1 {
            Ok(Used::Totp)
        } else {
            Err(Refusal::Replayed)
        });
    }

    let Some(canonical) = canonical_recovery_code(&code) else {
        return Ok(Err(Refusal::Wrong));
    };
    let hash = recovery_code_hash(user, &canonical);
    let spent = sqlx::query(
        r#"
        UPDATE recovery_codes
        SET used_at = now()
        WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL
        "#,
    )
    .bind(user.0)
    .bind(&hash)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if spent == 1 {
        let left = recovery_codes_left(tx, user).await?;
        return Ok(Ok(Used::RecoveryCode { left }));
    }
    let known: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM recovery_codes WHERE user_id = $1 AND code_hash = $2)",
    )
    .bind(user.0)
    .bind(&hash)
    .fetch_one(&mut *tx)
    .await?;
    Ok(Err(if known {
        Refusal::Replayed
    } else {
        Refusal::Wrong
    }))
}

/// Audits a refused code for `context` (what the user was trying to do).
async fn record_failure(
    tx: &mut PgConnection,
    user: UserId,
    context: &str,
    refusal: Refusal,
) -> Result<(), sqlx::Error> {
    let detail = json!({ "context": context, "reason": refusal.as_str() });
    audit::record(tx, audit_event(user, "mfa.failed", detail)).await
}

/// Starts enrolment: stores a fresh secret, replacing any unconfirmed one, and returns what
/// the authenticator app needs. Refused while a confirmed factor exists: disable it first.
/// `email` only labels the entry in the app.
pub async fn begin_enrolment(
    pool: &PgPool,
    user: UserId,
    email: &str,
) -> Result<Enrolment, MfaError> {
    let bytes: [u8; SECRET_BYTES] = rand::rng().random();
    let totp = totp_for(Secret::from(bytes))?;
    let secret = totp.secret().to_base32();
    let otpauth_url = otpauth_url(&totp, email)?;

    let mut tx = pool.begin().await?;
    // The upsert leaves a confirmed row alone, so a confirmed factor is never replaced.
    let stored = sqlx::query(
        r#"
        INSERT INTO user_totp (user_id, secret)
        VALUES ($1, $2)
        ON CONFLICT (user_id) DO UPDATE
        SET secret = excluded.secret, last_used_step = -1, created_at = now()
        WHERE user_totp.confirmed_at IS NULL
        "#,
    )
    .bind(user.0)
    .bind(&secret)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if stored == 0 {
        return Err(MfaError::AlreadyEnrolled);
    }
    audit::record(
        &mut tx,
        audit_event(user, "mfa.enrolment_started", json!({})),
    )
    .await?;
    tx.commit().await?;
    Ok(Enrolment {
        secret,
        otpauth_url,
    })
}

/// The `otpauth://` URL labelled `Paranimo:<email>`. The URI format forbids a colon in the
/// account name, so one in an email address becomes an underscore (it only labels the entry).
fn otpauth_url(totp: &Totp, email: &str) -> Result<String, totp_rs::TotpError> {
    let labelled = Builder::new()
        .with_algorithm(totp.algorithm())
        .with_digits(totp.digits())
        .with_step_duration(totp.step())
        .with_skew(totp.skew())
        .with_secret(totp.secret().clone())
        .with_issuer(Some(ISSUER))
        .with_account_name(email.replace(':', "_"))
        .build()?;
    labelled.to_url()
}

/// Turns on a factor begun with [`begin_enrolment`] without a first code, and returns the
/// recovery codes. Only for accounts an operator creates (staff, admins): they must have a
/// factor before their first sign-in, so the operator hands over the secret and the codes,
/// once, with the new account.
pub async fn confirm_by_operator(pool: &PgPool, user: UserId) -> Result<Vec<String>, MfaError> {
    let mut tx = pool.begin().await?;
    let confirmed = sqlx::query(
        "UPDATE user_totp SET confirmed_at = now() WHERE user_id = $1 AND confirmed_at IS NULL",
    )
    .bind(user.0)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if confirmed == 0 {
        return Err(MfaError::NoPendingEnrolment);
    }
    let codes = replace_recovery_codes(&mut tx, user).await?;
    let detail = json!({ "recovery_codes": codes.len(), "by": "operator" });
    audit::record(&mut tx, audit_event(user, "mfa.enabled", detail)).await?;
    tx.commit().await?;
    Ok(codes)
}

/// Finishes enrolment with a first code from the app: turns the factor on, spends that code,
/// and returns the recovery codes in plain text. They are stored only hashed, so this is the
/// only time anyone sees them.
pub async fn confirm_enrolment(
    pool: &PgPool,
    user: UserId,
    code: &str,
) -> Result<Vec<String>, MfaError> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        r#"
        SELECT secret, confirmed_at IS NOT NULL AS confirmed
        FROM user_totp
        WHERE user_id = $1
        FOR UPDATE
        "#,
    )
    .bind(user.0)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Err(MfaError::NoPendingEnrolment);
    };
    if row.try_get::<bool, _>("confirmed")? {
        return Err(MfaError::AlreadyEnrolled);
    }
    let totp = stored_totp(row.try_get("secret")?)?;

    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(step) = matching_step(&totp, &code, unix_now()) else {
        record_failure(&mut tx, user, "confirm", Refusal::Wrong).await?;
        tx.commit().await?;
        return Err(MfaError::InvalidCode);
    };

    // The confirming code counts as used: it cannot then be replayed at sign-in.
    sqlx::query(
        "UPDATE user_totp SET confirmed_at = now(), last_used_step = $2 WHERE user_id = $1",
    )
    .bind(user.0)
    .bind(step)
    .execute(&mut *tx)
    .await?;
    let codes = replace_recovery_codes(&mut tx, user).await?;
    let detail = json!({ "recovery_codes": codes.len() });
    audit::record(&mut tx, audit_event(user, "mfa.enabled", detail)).await?;
    tx.commit().await?;
    Ok(codes)
}

/// Checks the second factor at sign-in: a TOTP code valid now (give or take one step) and
/// later than any accepted before, or an unused recovery code. An accepted code is spent in
/// the same transaction, so it can never be accepted again, even by a concurrent request.
/// Every outcome but `NotEnrolled` is audited.
pub async fn verify_login_factor(
    pool: &PgPool,
    user: UserId,
    code: &str,
) -> Result<FactorCheck, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let Some(secret) = confirmed_secret(&mut tx, user).await? else {
        return Ok(FactorCheck::NotEnrolled);
    };
    let outcome = match spend_factor(&mut tx, user, &secret, code).await? {
        Ok(Used::Totp) => {
            let detail = json!({ "method": "totp" });
            audit::record(&mut tx, audit_event(user, "mfa.verified", detail)).await?;
            FactorCheck::Accepted
        }
        Ok(Used::RecoveryCode { left }) => {
            let detail = json!({ "recovery_codes_left": left });
            let event = audit_event(user, "mfa.recovery_code_used", detail);
            audit::record(&mut tx, event).await?;
            FactorCheck::Accepted
        }
        Err(refusal) => {
            record_failure(&mut tx, user, "login", refusal).await?;
            FactorCheck::Rejected
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Whether the user has a confirmed second factor.
pub async fn is_enrolled(pool: &PgPool, user: UserId) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        r#"
        SELECT EXISTS (
            SELECT 1 FROM user_totp WHERE user_id = $1 AND confirmed_at IS NOT NULL
        )
        "#,
    )
    .bind(user.0)
    .fetch_one(pool)
    .await
}

/// Whether the user must have a second factor: always for staff and admins, and for any
/// account an operator has marked. Others may choose.
pub async fn mfa_required(pool: &PgPool, user: UserId, role: Role) -> Result<bool, sqlx::Error> {
    if matches!(role, Role::Staff | Role::Admin) {
        return Ok(true);
    }
    let marked: Option<bool> = sqlx::query_scalar("SELECT mfa_required FROM users WHERE id = $1")
        .bind(user.0)
        .fetch_optional(pool)
        .await?;
    Ok(marked.unwrap_or(false))
}

/// Marks an account as having to use a second factor whatever its role.
pub async fn mark_required(tx: &mut PgConnection, user: UserId) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET mfa_required = true WHERE id = $1")
        .bind(user.0)
        .execute(tx)
        .await?;
    Ok(())
}

/// Whether the factor is on, and how many recovery codes are unused.
pub async fn status(pool: &PgPool, user: UserId) -> Result<MfaStatus, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let enrolled = confirmed_secret(&mut conn, user).await?.is_some();
    let recovery_codes_left = if enrolled {
        recovery_codes_left(&mut conn, user).await?
    } else {
        0
    };
    Ok(MfaStatus {
        enrolled,
        recovery_codes_left,
    })
}

/// Turns the factor off after checking a current code (or a recovery code), and deletes the
/// secret and the recovery codes. Refused for accounts that must keep MFA.
pub async fn disable(pool: &PgPool, user: UserId, role: Role, code: &str) -> Result<(), MfaError> {
    if mfa_required(pool, user, role).await? {
        return Err(MfaError::Required);
    }
    let mut tx = pool.begin().await?;
    let Some(secret) = confirmed_secret(&mut tx, user).await? else {
        return Err(MfaError::NotEnrolled);
    };
    if let Err(refusal) = spend_factor(&mut tx, user, &secret, code).await? {
        record_failure(&mut tx, user, "disable", refusal).await?;
        tx.commit().await?;
        return Err(MfaError::InvalidCode);
    }

    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user.0)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM user_totp WHERE user_id = $1")
        .bind(user.0)
        .execute(&mut *tx)
        .await?;
    audit::record(&mut tx, audit_event(user, "mfa.disabled", json!({}))).await?;
    tx.commit().await?;
    Ok(())
}

/// Replaces every recovery code with a fresh set after checking a current code (or one of
/// the old recovery codes); returns the new codes in plain text, the only time they are shown.
pub async fn regenerate_recovery_codes(
    pool: &PgPool,
    user: UserId,
    code: &str,
) -> Result<Vec<String>, MfaError> {
    let mut tx = pool.begin().await?;
    let Some(secret) = confirmed_secret(&mut tx, user).await? else {
        return Err(MfaError::NotEnrolled);
    };
    if let Err(refusal) = spend_factor(&mut tx, user, &secret, code).await? {
        record_failure(&mut tx, user, "recovery_codes", refusal).await?;
        tx.commit().await?;
        return Err(MfaError::InvalidCode);
    }

    let codes = replace_recovery_codes(&mut tx, user).await?;
    let detail = json!({ "recovery_codes": codes.len() });
    let event = audit_event(user, "mfa.recovery_codes_regenerated", detail);
    audit::record(&mut tx, event).await?;
    tx.commit().await?;
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_totp() -> Totp {
        totp_for(Secret::from([7u8; SECRET_BYTES])).expect("valid parameters")
    }

    /// A code is valid one step either side of its own and no further.
    #[test]
    fn codes_are_accepted_within_one_step_only() {
        let totp = sample_totp();
        let t = 1_800_000_000;
        let code = totp.generate(t).to_string();
        let step = (t / STEP_SECONDS) as i64;
        assert_eq!(matching_step(&totp, &code, t), Some(step));
        assert_eq!(matching_step(&totp, &code, t + STEP_SECONDS), Some(step));
        assert_eq!(matching_step(&totp, &code, t - STEP_SECONDS), Some(step));
        assert_eq!(matching_step(&totp, &code, t + 2 * STEP_SECONDS), None);
        assert_eq!(matching_step(&totp, &code, t + 3 * STEP_SECONDS), None);
    }

    /// RFC 6238 appendix B: the SHA-1 test vector at T = 59 s, truncated to six digits.
    #[test]
    fn matches_the_rfc_test_vector() {
        let totp = totp_for(Secret::from(*b"12345678901234567890")).expect("valid");
        assert_eq!(totp.generate(59).to_string(), "287082");
    }

    /// Recovery codes have the documented shape and read back to themselves, however typed.
    #[test]
    fn recovery_codes_round_trip_and_forgive_look_alikes() {
        let code = display_recovery_code(&new_recovery_code());
        assert_eq!(code.len(), 14);
        assert_eq!(code.matches('-').count(), 2);
        let canonical = canonical_recovery_code(&code).expect("own codes parse");
        assert_eq!(canonical, code.replace('-', ""));
        assert_eq!(
            canonical_recovery_code(&code.to_lowercase().replace('-', " ")),
            Some(canonical)
        );
        assert_eq!(
            canonical_recovery_code("oooo-iiii-llll"),
            Some("000011111111".into())
        );
        assert_eq!(canonical_recovery_code("UUUU-0000-0000"), None);
        assert_eq!(canonical_recovery_code("0000-0000-00000"), None);
        assert_eq!(canonical_recovery_code("0000-0000-000"), None);
        assert!(!totp_shaped("12345a"));
        assert!(totp_shaped("012345"));
    }

    /// Two codes drawn in a row differ (60 random bits each).
    #[test]
    fn recovery_codes_are_random() {
        let codes: std::collections::HashSet<String> =
            (0..100).map(|_| new_recovery_code()).collect();
        assert!(
            codes
                .iter()
                .all(|c| canonical_recovery_code(c).as_ref() == Some(c))
        );
        assert_eq!(codes.len(), 100);
    }
}
