//! Therapist profiles and their weekly availability.

use chrono::NaiveTime;
use paranimo_actors::domain::{AvailabilityRule, WeeklyAvailability};
use paranimo_actors::ids::TherapistId;
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool, Row};
use utoipa::ToSchema;

/// A therapist's public profile.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TherapistProfile {
    pub id: TherapistId,
    pub full_name: String,
    /// e.g. "BACP", "UKCP".
    pub professional_body: String,
    pub membership_number: String,
    pub bio: String,
    /// Fee per session in pence.
    pub fee_pence: i32,
    pub session_minutes: i32,
    /// IANA zone the availability is written in.
    pub timezone: String,
    /// Checked by staff against the professional body's register.
    pub verified: bool,
}

fn profile_from_row(row: &sqlx::postgres::PgRow) -> Result<TherapistProfile, sqlx::Error> {
    Ok(TherapistProfile {
        id: TherapistId(row.try_get("user_id")?),
        full_name: row.try_get("full_name")?,
        professional_body: row.try_get("professional_body")?,
        membership_number: row.try_get("membership_number")?,
        bio: row.try_get("bio")?,
        fee_pence: row.try_get("fee_pence")?,
        session_minutes: row.try_get("session_minutes")?,
        timezone: row.try_get("timezone")?,
        verified: row.try_get("verified")?,
    })
}

/// The columns every profile query returns, in `profile_from_row`'s terms.
macro_rules! profile_columns {
    () => {
        "user_id, full_name, professional_body, membership_number, bio, fee_pence, \
         session_minutes, timezone, verified"
    };
}

/// Creates or replaces the profile. `verified` is kept only while the name, professional
/// body and membership number stay the same: only staff may set it.
pub async fn upsert_profile(
    tx: &mut PgConnection,
    p: &TherapistProfile,
) -> Result<TherapistProfile, sqlx::Error> {
    let sql = concat!(
        r#"
        INSERT INTO therapist_profiles (user_id, full_name, professional_body,
            membership_number, bio, fee_pence, session_minutes, timezone, verified)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (user_id) DO UPDATE SET
            full_name = EXCLUDED.full_name,
            professional_body = EXCLUDED.professional_body,
            membership_number = EXCLUDED.membership_number,
            bio = EXCLUDED.bio,
            fee_pence = EXCLUDED.fee_pence,
            session_minutes = EXCLUDED.session_minutes,
            timezone = EXCLUDED.timezone,
            -- Staff verified a name, body and number together: a change to any of them
            -- needs checking again.
            verified = therapist_profiles.verified
                AND therapist_profiles.full_name = EXCLUDED.full_name
                AND therapist_profiles.professional_body = EXCLUDED.professional_body
                AND therapist_profiles.membership_number = EXCLUDED.membership_number,
            updated_at = now()
        RETURNING "#,
        profile_columns!()
    );
    let row = sqlx::query(sql)
        .bind(p.id.0)
        .bind(&p.full_name)
        .bind(&p.professional_body)
        .bind(&p.membership_number)
        .bind(&p.bio)
        .bind(p.fee_pence)
        .bind(p.session_minutes)
        .bind(&p.timezone)
        .bind(p.verified)
        .fetch_one(tx)
        .await?;
    profile_from_row(&row)
}

/// One therapist's profile.
pub async fn profile(
    pool: &PgPool,
    id: TherapistId,
) -> Result<Option<TherapistProfile>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        profile_columns!(),
        " FROM therapist_profiles WHERE user_id = $1"
    );
    let row = sqlx::query(sql).bind(id.0).fetch_optional(pool).await?;
    row.as_ref().map(profile_from_row).transpose()
}

/// Every public profile, verified therapists first, then by name.
pub async fn list_profiles(pool: &PgPool) -> Result<Vec<TherapistProfile>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        profile_columns!(),
        " FROM therapist_profiles ORDER BY verified DESC, full_name, user_id"
    );
    let rows = sqlx::query(sql).fetch_all(pool).await?;
    rows.iter().map(profile_from_row).collect()
}

/// The weekly pattern, in the profile's zone.
pub async fn availability(
    pool: &PgPool,
    id: TherapistId,
) -> Result<Option<WeeklyAvailability>, sqlx::Error> {
    let Some(profile) = profile(pool, id).await? else {
        return Ok(None);
    };
    let rows = sqlx::query(
        r#"
        SELECT weekday, start_time, end_time
        FROM availability_rules
        WHERE therapist_id = $1
        ORDER BY weekday, start_time
        "#,
    )
    .bind(id.0)
    .fetch_all(pool)
    .await?;

    let mut rules = Vec::with_capacity(rows.len());
    for row in rows {
        let weekday: i16 = row.try_get("weekday")?;
        rules.push(AvailabilityRule {
            weekday: weekday as u8,
            start: row.try_get::<NaiveTime, _>("start_time")?,
            end: row.try_get::<NaiveTime, _>("end_time")?,
        });
    }
    Ok(Some(WeeklyAvailability {
        timezone: profile.timezone,
        rules,
    }))
}

/// Replaces the weekly pattern and the profile's zone.
pub async fn replace_availability(
    tx: &mut PgConnection,
    id: TherapistId,
    availability: &WeeklyAvailability,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE therapist_profiles SET timezone = $2, updated_at = now() WHERE user_id = $1",
    )
    .bind(id.0)
    .bind(&availability.timezone)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM availability_rules WHERE therapist_id = $1")
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
    for rule in &availability.rules {
        sqlx::query(
            r#"
            INSERT INTO availability_rules (therapist_id, weekday, start_time, end_time)
            VALUES ($1, $2, $3, $4)
            "#,
        )
        .bind(id.0)
        .bind(i16::from(rule.weekday))
        .bind(rule.start)
        .bind(rule.end)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}
