//! Domain values: roles, weekly availability, slots and bookings, and the slot arithmetic that
//! turns a therapist's weekly rules into concrete, time-zone-correct sessions.

use crate::ids::{BookingId, TherapistId, UserId};
use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// What an account is. Staff and admin are created by the operator, never by public sign-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    Client,
    Therapist,
    Staff,
    Admin,
}

impl Role {
    /// The lower-case name stored in the database and sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Therapist => "therapist",
            Role::Staff => "staff",
            Role::Admin => "admin",
        }
    }

    /// Parses the stored name; `None` for anything unknown.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "client" => Some(Role::Client),
            "therapist" => Some(Role::Therapist),
            "staff" => Some(Role::Staff),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Gap left after every session before the next may start, so a therapist can write notes.
pub const BREAK_BETWEEN_SESSIONS: Duration = Duration::minutes(10);

/// How far ahead clients may book; slots beyond it are neither listed nor accepted.
pub const BOOKING_HORIZON: Duration = Duration::days(56);

/// Session lengths a therapist may choose, in minutes.
pub const SESSION_MINUTES_RANGE: std::ops::RangeInclusive<i32> = 15..=180;

/// One weekly window in the therapist's own time zone, e.g. Monday 09:00–17:00.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AvailabilityRule {
    /// ISO weekday: 1 is Monday, 7 is Sunday.
    pub weekday: u8,
    /// Local start time, "HH:MM".
    #[serde(with = "hhmm")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "09:00"))]
    pub start: NaiveTime,
    /// Local end time, "HH:MM"; "24:00" is not accepted, use "23:59" for end of day.
    #[serde(with = "hhmm")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "17:00"))]
    pub end: NaiveTime,
}

/// A therapist's whole weekly pattern and the zone it is written in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WeeklyAvailability {
    /// IANA zone name, e.g. "Europe/London".
    pub timezone: String,
    pub rules: Vec<AvailabilityRule>,
}

/// Why a weekly pattern was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AvailabilityError {
    #[error("unknown time zone")]
    UnknownTimeZone,
    #[error("weekday must be 1 (Monday) to 7 (Sunday)")]
    BadWeekday,
    #[error("each window must end after it starts")]
    EmptyWindow,
    #[error("windows on the same day overlap")]
    Overlap,
    #[error("too many windows (at most 50)")]
    TooMany,
}

impl WeeklyAvailability {
    /// Checks the pattern and returns its zone, so callers never hold an invalid one.
    pub fn validate(&self) -> Result<Tz, AvailabilityError> {
        let tz: Tz = self
            .timezone
            .parse()
            .map_err(|_| AvailabilityError::UnknownTimeZone)?;
        if self.rules.len() > 50 {
            return Err(AvailabilityError::TooMany);
        }
        for rule in &self.rules {
            if !(1..=7).contains(&rule.weekday) {
                return Err(AvailabilityError::BadWeekday);
            }
            if rule.end <= rule.start {
                return Err(AvailabilityError::EmptyWindow);
            }
        }
        for (i, a) in self.rules.iter().enumerate() {
            for b in &self.rules[i + 1..] {
                if a.weekday == b.weekday && a.start < b.end && b.start < a.end {
                    return Err(AvailabilityError::Overlap);
                }
            }
        }
        Ok(tz)
    }
}

/// A bookable interval in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Slot {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Slot {
    /// True when the two half-open intervals share any instant.
    pub fn overlaps(&self, other: &Slot) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// Where a booking stands. Only confirmed bookings hold time in a calendar.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum BookingStatus {
    Confirmed,
    Cancelled,
}

impl BookingStatus {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            BookingStatus::Confirmed => "confirmed",
            BookingStatus::Cancelled => "cancelled",
        }
    }
}

/// One session between a client and a therapist, as both of them see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Booking {
    pub id: BookingId,
    pub therapist_id: TherapistId,
    pub client_id: UserId,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub status: BookingStatus,
    /// The therapist's public name.
    pub therapist_name: String,
    /// The client's chosen display name (may be a pseudonym).
    pub client_name: String,
}

impl Booking {
    /// The interval this booking occupies.
    pub fn slot(&self) -> Slot {
        Slot {
            start: self.start,
            end: self.end,
        }
    }

    /// True when `user` is the client or the therapist of this booking.
    pub fn is_participant(&self, user: UserId) -> bool {
        user == self.client_id || user == UserId::from(self.therapist_id)
    }
}

/// Every slot the weekly pattern offers that starts in `[from, to)`, in time order, without
/// looking at bookings. Local times that do not exist (the spring-forward gap) are skipped;
/// ambiguous ones (the autumn fold) take the earlier instant, so a slot is never offered twice.
pub fn offered_slots(
    availability: &WeeklyAvailability,
    tz: Tz,
    session: Duration,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Slot> {
    let step = session + BREAK_BETWEEN_SESSIONS;
    let first_day = from.with_timezone(&tz).date_naive() - Duration::days(1);
    let last_day = to.with_timezone(&tz).date_naive();
    let mut slots = Vec::new();

    let mut day = first_day;
    while day <= last_day {
        let weekday = day.weekday().number_from_monday() as u8;
        for rule in availability.rules.iter().filter(|r| r.weekday == weekday) {
            push_rule_slots(&mut slots, tz, day, rule, session, step, from, to);
        }
        day = day.succ_opt().unwrap_or(last_day + Duration::days(1));
    }

    slots.sort();
    slots.dedup();
    slots
}

#[allow(clippy::too_many_arguments)]
fn push_rule_slots(
    out: &mut Vec<Slot>,
    tz: Tz,
    day: NaiveDate,
    rule: &AvailabilityRule,
    session: Duration,
    step: Duration,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) {
    let window_end = local_instant(tz, day, rule.end);
    let mut local_start = day.and_time(rule.start);
    let day_end = day.and_time(rule.end);

    while local_start + session <= day_end {
        let start = match tz.from_local_datetime(&local_start) {
            LocalResult::Single(t) => Some(t),
            LocalResult::Ambiguous(earlier, _) => Some(earlier),
            LocalResult::None => None,
        };
        if let Some(start) = start.map(|t| t.with_timezone(&Utc)) {
            let end = start + session;
            let fits_window = window_end.is_none_or(|limit| end <= limit);
            if fits_window && start >= from && start < to {
                out.push(Slot { start, end });
            }
        }
        local_start += step;
    }
}

fn local_instant(tz: Tz, day: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    tz.from_local_datetime(&day.and_time(time))
        .latest()
        .map(|t| t.with_timezone(&Utc))
}

/// Offered slots minus those that overlap any of `taken`, starting no earlier than `not_before`.
pub fn free_slots<'a>(
    offered: Vec<Slot>,
    taken: impl Iterator<Item = &'a Slot> + Clone,
    not_before: DateTime<Utc>,
) -> Vec<Slot> {
    offered
        .into_iter()
        .filter(|slot| slot.start >= not_before)
        .filter(|slot| !taken.clone().any(|t| t.overlaps(slot)))
        .collect()
}

mod hhmm {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.format("%H:%M").to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let text = String::deserialize(d)?;
        NaiveTime::parse_from_str(&text, "%H:%M").map_err(|_| D::Error::custom("expected HH:MM"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weekdays_nine_to_five() -> WeeklyAvailability {
        let rule = |weekday| AvailabilityRule {
            weekday,
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(17, 0, 0).unwrap(),
        };
        WeeklyAvailability {
            timezone: "Europe/London".into(),
            rules: (1..=5).map(rule).collect(),
        }
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// A 50-minute session with a 10-minute break gives eight hourly slots in a 9-to-5 day.
    #[test]
    fn a_working_day_in_winter_has_eight_hourly_slots_in_utc() {
        let a = weekdays_nine_to_five();
        let tz = a.validate().unwrap();
        let from = utc("2026-12-07T00:00:00Z"); // a Monday, London on GMT
        let slots = offered_slots(
            &a,
            tz,
            Duration::minutes(50),
            from,
            from + Duration::days(1),
        );
        assert_eq!(slots.len(), 8);
        assert_eq!(slots[0].start, utc("2026-12-07T09:00:00Z"));
        assert_eq!(slots[7].end, utc("2026-12-07T16:50:00Z"));
    }

    /// In British Summer Time 09:00 London is 08:00 UTC.
    #[test]
    fn summer_time_shifts_slots_by_an_hour() {
        let a = weekdays_nine_to_five();
        let tz = a.validate().unwrap();
        let from = utc("2026-07-06T00:00:00Z");
        let slots = offered_slots(
            &a,
            tz,
            Duration::minutes(50),
            from,
            from + Duration::days(1),
        );
        assert_eq!(slots[0].start, utc("2026-07-06T08:00:00Z"));
    }

    /// On the spring-forward night 01:00–02:00 London does not exist and is not offered.
    #[test]
    fn the_missing_hour_is_skipped_and_the_folded_hour_offered_once() {
        let rule = |weekday| AvailabilityRule {
            weekday,
            start: NaiveTime::from_hms_opt(0, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(4, 0, 0).unwrap(),
        };
        let a = WeeklyAvailability {
            timezone: "Europe/London".into(),
            rules: vec![rule(7)],
        };
        let tz = a.validate().unwrap();
        let session = Duration::minutes(50);

        let spring = utc("2027-03-28T00:00:00Z");
        let slots = offered_slots(
            &a,
            tz,
            session,
            spring - Duration::hours(1),
            spring + Duration::days(1),
        );
        let starts: Vec<_> = slots.iter().map(|s| s.start).collect();
        assert_eq!(
            starts,
            vec![
                utc("2027-03-28T00:00:00Z"),
                utc("2027-03-28T01:00:00Z"),
                utc("2027-03-28T02:00:00Z")
            ]
        );

        let autumn = utc("2026-10-25T00:00:00Z");
        let slots = offered_slots(
            &a,
            tz,
            session,
            autumn - Duration::hours(2),
            autumn + Duration::days(1),
        );
        let mut starts: Vec<_> = slots.iter().map(|s| s.start).collect();
        starts.dedup();
        assert_eq!(starts.len(), slots.len(), "no slot offered twice");
        assert_eq!(slots[0].start, utc("2026-10-24T23:00:00Z"));
    }

    /// A booked hour disappears from the free list and nothing else does.
    #[test]
    fn booked_and_past_slots_are_not_free() {
        let a = weekdays_nine_to_five();
        let tz = a.validate().unwrap();
        let from = utc("2026-12-07T00:00:00Z");
        let offered = offered_slots(
            &a,
            tz,
            Duration::minutes(50),
            from,
            from + Duration::days(1),
        );
        let taken = [Slot {
            start: utc("2026-12-07T10:00:00Z"),
            end: utc("2026-12-07T10:50:00Z"),
        }];
        let free = free_slots(offered, taken.iter(), utc("2026-12-07T09:30:00Z"));
        assert_eq!(free.len(), 6);
        assert!(free.iter().all(|s| s.start != taken[0].start));
    }

    /// Impossible patterns are refused with a reason.
    #[test]
    fn invalid_patterns_are_refused() {
        let mut a = weekdays_nine_to_five();
        a.timezone = "Mars/Olympus".into();
        assert_eq!(a.validate(), Err(AvailabilityError::UnknownTimeZone));

        let mut a = weekdays_nine_to_five();
        a.rules[0].weekday = 8;
        assert_eq!(a.validate(), Err(AvailabilityError::BadWeekday));

        let mut a = weekdays_nine_to_five();
        a.rules[0].end = a.rules[0].start;
        assert_eq!(a.validate(), Err(AvailabilityError::EmptyWindow));

        let mut a = weekdays_nine_to_five();
        let extra = a.rules[0].clone();
        a.rules.push(extra);
        assert_eq!(a.validate(), Err(AvailabilityError::Overlap));
    }
}
