//! Clients' private profiles and their consents to therapists. Plain text goes in and out of
//! this module; only ciphertext reaches PostgreSQL. Each field is sealed under its owner's data
//! key (see [`crate::crypto`]), and that key is kept wrapped by the master key.
//!
//! Field values have no `Debug` here, so they cannot be logged by accident.

use crate::crypto::{CryptoError, DataKey, WrappedKey};
use chrono::{DateTime, Utc};
use paranimo_actors::ids::{TherapistId, UserId};
use secrecy::SecretSlice;
use sqlx::{PgConnection, PgPool, Row};

/// Why a profile could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A key or a field did not open: a wrong master key, or altered or moved data.
    #[error("client profile encryption: {0}")]
    Crypto(#[from] CryptoError),
}

/// The optional fields a client may fill in (policy 3.8.4), in plain text. `None` is "not
/// given". Each field's name is also its column and is bound into its ciphertext.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProfileFields {
    pub bio: Option<String>,
    pub goals: Option<String>,
    pub frustrations: Option<String>,
    pub health_notes: Option<String>,
}

/// A profile as stored: its fields and when the client last saved it (`None`: never).
#[derive(Default)]
pub struct StoredProfile {
    pub fields: ProfileFields,
    pub updated_at: Option<DateTime<Utc>>,
}

/// An active consent, with the therapist's name for the client's list.
pub struct Consent {
    pub therapist_id: TherapistId,
    pub therapist_name: String,
    pub granted_at: DateTime<Utc>,
}

impl ProfileFields {
    /// Field names, in the order of [`Self::values`]; the same as the columns.
    pub const NAMES: [&'static str; 4] = ["bio", "goals", "frustrations", "health_notes"];

    fn values(&self) -> [&Option<String>; 4] {
        [
            &self.bio,
            &self.goals,
            &self.frustrations,
            &self.health_notes,
        ]
    }

    fn from_values([bio, goals, frustrations, health_notes]: [Option<String>; 4]) -> Self {
        Self {
            bio,
            goals,
            frustrations,
            health_notes,
        }
    }
}

/// The user's data key, unwrapped, if they have one.
async fn data_key(
    conn: &mut PgConnection,
    master: &SecretSlice<u8>,
    user: UserId,
) -> Result<Option<DataKey>, ProfileError> {
    let row = sqlx::query("SELECT wrapped_key, key_version FROM user_data_keys WHERE user_id = $1")
        .bind(user.0)
        .fetch_optional(conn)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let version: i16 = row.try_get("key_version")?;
    let wrapped = WrappedKey {
        bytes: row.try_get("wrapped_key")?,
        // The column's CHECK keeps the version within a byte.
        key_version: u8::try_from(version).map_err(|_| CryptoError::Rejected)?,
    };
    Ok(Some(DataKey::unwrap(master, user, &wrapped)?))
}

/// The user's data key, made and stored first if they have none. Two requests racing to make
/// one both end up with the one that was stored first.
async fn data_key_or_new(
    conn: &mut PgConnection,
    master: &SecretSlice<u8>,
    user: UserId,
) -> Result<DataKey, ProfileError> {
    if let Some(key) = data_key(&mut *conn, master, user).await? {
        return Ok(key);
    }
    let fresh = DataKey::generate(user);
    let wrapped = fresh.wrap(master)?;
    sqlx::query(
        r#"
        INSERT INTO user_data_keys (user_id, wrapped_key, key_version)
        VALUES ($1, $2, $3)
        ON CONFLICT (user_id) DO NOTHING
        "#,
    )
    .bind(user.0)
    .bind(&wrapped.bytes)
    .bind(i16::from(wrapped.key_version))
    .execute(&mut *conn)
    .await?;
    // Read back rather than use `fresh`: if another request stored a key first, that one is
    // the key, and data sealed with ours would never open again.
    let stored = data_key(conn, master, user).await?;
    stored.ok_or(ProfileError::Database(sqlx::Error::RowNotFound))
}

/// The client's profile in plain text; empty fields if they never wrote one.
pub async fn read(
    conn: &mut PgConnection,
    master: &SecretSlice<u8>,
    client: UserId,
) -> Result<StoredProfile, ProfileError> {
    let row = sqlx::query(
        r#"
        SELECT bio, goals, frustrations, health_notes, updated_at
        FROM client_profiles
        WHERE user_id = $1
        "#,
    )
    .bind(client.0)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(StoredProfile::default());
    };

    let mut sealed: [Option<Vec<u8>>; 4] = Default::default();
    for (slot, name) in sealed.iter_mut().zip(ProfileFields::NAMES) {
        *slot = row.try_get(name)?;
    }
    let key = if sealed.iter().any(Option::is_some) {
        // Ciphertext without a key cannot be read by anyone: report it as unopenable.
        Some(
            data_key(conn, master, client)
                .await?
                .ok_or(CryptoError::Rejected)?,
        )
    } else {
        None
    };

    let mut values: [Option<String>; 4] = Default::default();
    for ((value, blob), name) in values.iter_mut().zip(sealed).zip(ProfileFields::NAMES) {
        let (Some(blob), Some(key)) = (blob, key.as_ref()) else {
            continue;
        };
        let plain = key.open(name, &blob)?;
        *value = Some(String::from_utf8(plain).map_err(|_| CryptoError::Rejected)?);
    }
    Ok(StoredProfile {
        fields: ProfileFields::from_values(values),
        updated_at: row.try_get("updated_at")?,
    })
}

/// Replaces the client's profile with `fields`, sealed; returns when it was saved. Call it
/// inside a transaction, so the data key and the profile are stored together.
pub async fn write(
    tx: &mut PgConnection,
    master: &SecretSlice<u8>,
    client: UserId,
    fields: &ProfileFields,
) -> Result<DateTime<Utc>, ProfileError> {
    let key = data_key_or_new(&mut *tx, master, client).await?;
    let mut sealed: [Option<Vec<u8>>; 4] = Default::default();
    for ((slot, value), name) in sealed
        .iter_mut()
        .zip(fields.values())
        .zip(ProfileFields::NAMES)
    {
        if let Some(value) = value {
            *slot = Some(key.seal(name, value.as_bytes())?);
        }
    }
    let [bio, goals, frustrations, health_notes] = sealed;

    let updated_at = sqlx::query_scalar(
        r#"
        INSERT INTO client_profiles (user_id, bio, goals, frustrations, health_notes, updated_at)
        VALUES ($1, $2, $3, $4, $5, now())
        ON CONFLICT (user_id) DO UPDATE
        SET bio = EXCLUDED.bio,
            goals = EXCLUDED.goals,
            frustrations = EXCLUDED.frustrations,
            health_notes = EXCLUDED.health_notes,
            updated_at = EXCLUDED.updated_at
        RETURNING updated_at
        "#,
    )
    .bind(client.0)
    .bind(bio)
    .bind(goals)
    .bind(frustrations)
    .bind(health_notes)
    .fetch_one(&mut *tx)
    .await?;
    Ok(updated_at)
}

/// True if `id` is a therapist's account.
pub async fn is_therapist(conn: &mut PgConnection, id: TherapistId) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND role = 'therapist')")
        .bind(id.0)
        .fetch_one(conn)
        .await
}

/// True if `client`'s consent to `therapist` is active. The row stays share-locked until the
/// caller's transaction ends, so a revocation waits for a read already under way and every
/// read that starts after the revocation commits sees it.
pub async fn holds_consent(
    conn: &mut PgConnection,
    client: UserId,
    therapist: TherapistId,
) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = sqlx::query_scalar(
        r#"
        SELECT id
        FROM client_consents
        WHERE client_id = $1 AND therapist_id = $2 AND revoked_at IS NULL
        FOR SHARE
        "#,
    )
    .bind(client.0)
    .bind(therapist.0)
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

/// Records `client`'s consent to `therapist`. Returns when it was granted and whether it is
/// new (`false`: it was already active, and nothing changed).
pub async fn grant(
    conn: &mut PgConnection,
    client: UserId,
    therapist: TherapistId,
) -> Result<(DateTime<Utc>, bool), sqlx::Error> {
    let inserted: Option<DateTime<Utc>> = sqlx::query_scalar(
        r#"
        INSERT INTO client_consents (client_id, therapist_id)
        VALUES ($1, $2)
        ON CONFLICT (client_id, therapist_id) WHERE revoked_at IS NULL DO NOTHING
        RETURNING granted_at
        "#,
    )
    .bind(client.0)
    .bind(therapist.0)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(granted_at) = inserted {
        return Ok((granted_at, true));
    }
    let granted_at = sqlx::query_scalar(
        r#"
        SELECT granted_at
        FROM client_consents
        WHERE client_id = $1 AND therapist_id = $2 AND revoked_at IS NULL
        "#,
    )
    .bind(client.0)
    .bind(therapist.0)
    .fetch_one(conn)
    .await?;
    Ok((granted_at, false))
}

/// Ends `client`'s active consent to `therapist`; false if there was none.
pub async fn revoke(
    conn: &mut PgConnection,
    client: UserId,
    therapist: TherapistId,
) -> Result<bool, sqlx::Error> {
    let ended = sqlx::query(
        r#"
        UPDATE client_consents
        SET revoked_at = now()
        WHERE client_id = $1 AND therapist_id = $2 AND revoked_at IS NULL
        "#,
    )
    .bind(client.0)
    .bind(therapist.0)
    .execute(conn)
    .await?;
    Ok(ended.rows_affected() > 0)
}

/// The therapists `client` currently lets read their profile, most recent first. The name is
/// the public profile's, or the account's display name before there is a profile.
pub async fn active_consents(pool: &PgPool, client: UserId) -> Result<Vec<Consent>, sqlx::Error> {
    let rows = sqlx::query(
        r#"
        SELECT c.therapist_id, c.granted_at,
               COALESCE(p.full_name, u.display_name) AS therapist_name
        FROM client_consents c
        JOIN users u ON u.id = c.therapist_id
        LEFT JOIN therapist_profiles p ON p.user_id = c.therapist_id
        WHERE c.client_id = $1 AND c.revoked_at IS NULL
        ORDER BY c.granted_at DESC, c.id DESC
        "#,
    )
    .bind(client.0)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Consent {
                therapist_id: TherapistId(row.try_get("therapist_id")?),
                therapist_name: row.try_get("therapist_name")?,
                granted_at: row.try_get("granted_at")?,
            })
        })
        .collect()
}
