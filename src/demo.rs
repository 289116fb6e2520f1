//! Demo data for local runs (`serve --demo`): three verified therapists with availability, a
//! client, and a booking starting soon, loaded only into an empty database.

use crate::auth;
use crate::state::AppState;
use crate::store::therapists::{self, TherapistProfile};
use crate::store::users::{self, UserRecord};
use chrono::{Duration, DurationRound, NaiveTime, Utc};
use paranimo_actors::domain::{AvailabilityRule, Role, Slot, WeeklyAvailability};
use paranimo_actors::ids::{TherapistId, UserId};
use paranimo_actors::ports::NewBooking;

/// The password of every demo account. Demo data is never loaded in production.
pub const DEMO_PASSWORD: &str = "paranimo-demo-2026";

/// Printed at start-up when demo data is on.
pub const LOGIN_HELP: &str = "Demo logins (password: paranimo-demo-2026):\n  \
    client:    client@demo.paranimo.test\n  \
    therapist: amara@demo.paranimo.test (has a booking with the client starting soon)\n  \
    therapist: ben@demo.paranimo.test, chloe@demo.paranimo.test\n";

struct DemoTherapist {
    email: &'static str,
    name: &'static str,
    body: &'static str,
    bio: &'static str,
    fee_pence: i32,
    /// ISO weekdays and local hours.
    days: std::ops::RangeInclusive<u8>,
    hours: (u32, u32),
}

const THERAPISTS: [DemoTherapist; 3] = [
    DemoTherapist {
        email: "amara@demo.paranimo.test",
        name: "Amara Okafor",
        body: "BACP",
        bio: "Integrative counsellor working with anxiety, low mood and life transitions.",
        fee_pence: 6000,
        days: 1..=7,
        hours: (0, 23),
    },
    DemoTherapist {
        email: "ben@demo.paranimo.test",
        name: "Ben Hughes",
        body: "UKCP",
        bio: "Psychotherapist; relationships, grief and work stress.",
        fee_pence: 7500,
        days: 1..=5,
        hours: (9, 17),
    },
    DemoTherapist {
        email: "chloe@demo.paranimo.test",
        name: "Chloe Martin",
        body: "BPS",
        bio: "Counselling psychologist using CBT for anxiety and panic.",
        fee_pence: 8000,
        days: 1..=4,
        hours: (12, 20),
    },
];

/// Loads the demo data when no account exists yet; otherwise does nothing.
pub async fn load_if_empty(state: &AppState) -> anyhow::Result<()> {
    let empty: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM users)")
        .fetch_one(&state.pool)
        .await?;
    if !empty {
        tracing::info!("database already has accounts; demo data not loaded");
        return Ok(());
    }

    let hash = auth::hash_password(DEMO_PASSWORD.to_owned()).await?;
    let mut tx = state.pool.begin().await?;
    let mut first_therapist = None;
    for (i, t) in THERAPISTS.iter().enumerate() {
        let user = UserRecord {
            id: UserId::new_random(),
            email: t.email.into(),
            role: Role::Therapist,
            display_name: t.name.into(),
        };
        users::insert(&mut tx, &user, &hash).await?;
        let id = TherapistId(user.id.0);
        let profile = TherapistProfile {
            id,
            full_name: t.name.into(),
            professional_body: t.body.into(),
            membership_number: format!("{}-{:06}", t.body, 100_231 + i * 7919),
            bio: t.bio.into(),
            fee_pence: t.fee_pence,
            session_minutes: 50,
            timezone: "Europe/London".into(),
            verified: true,
        };
        therapists::upsert_profile(&mut tx, &profile).await?;
        sqlx::query("UPDATE therapist_profiles SET verified = true WHERE user_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        let rules = t
            .days
            .clone()
            .map(|weekday| AvailabilityRule {
                weekday,
                start: NaiveTime::from_hms_opt(t.hours.0, 0, 0).unwrap_or_default(),
                end: NaiveTime::from_hms_opt(t.hours.1, 59, 0).unwrap_or_default(),
            })
            .collect();
        let availability = WeeklyAvailability {
            timezone: "Europe/London".into(),
            rules,
        };
        therapists::replace_availability(&mut tx, id, &availability).await?;
        first_therapist.get_or_insert(id);
    }

    let client = UserRecord {
        id: UserId::new_random(),
        email: "client@demo.paranimo.test".into(),
        role: Role::Client,
        display_name: "Sam (demo client)".into(),
    };
    users::insert(&mut tx, &client, &hash).await?;
    // Demo addresses cannot receive mail: treat them as confirmed.
    sqlx::query("UPDATE users SET email_verified_at = now()")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;

    // A session starting at the next quarter hour: its room opens at once or within minutes.
    if let Some(therapist) = first_therapist {
        let start = (Utc::now() + Duration::minutes(15)).duration_trunc(Duration::minutes(15))?;
        let booking = NewBooking {
            therapist_id: therapist,
            client_id: client.id,
            slot: Slot {
                start,
                end: start + Duration::minutes(50),
            },
            idempotency_key: None,
        };
        crate::store::bookings::insert(&state.pool, &booking).await?;
    }
    tracing::info!("demo data loaded");
    Ok(())
}
