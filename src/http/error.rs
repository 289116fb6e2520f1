//! The one error type of the HTTP boundary and its mapping to status codes. Users get a short
//! message and a stable code; the log gets the cause.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use paranimo_actors::calendar::CalendarError;
use paranimo_actors::ports::PortError;
use serde::Serialize;
use utoipa::ToSchema;

/// Every way an API request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request could not be read.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid session.
    #[error("sign in first")]
    Unauthenticated,
    /// 401: wrong email or password (never says which).
    #[error("wrong email or password")]
    InvalidCredentials,
    /// 403: a write from another origin.
    #[error("request from another site refused")]
    CrossOrigin,
    /// 403: signed in, but not allowed.
    #[error("not allowed")]
    Forbidden,
    /// 404: missing, or someone else's.
    #[error("not found")]
    NotFound,
    /// 409: someone else holds the slot.
    #[error("that slot has just been taken")]
    SlotTaken,
    /// 409: the session has started.
    #[error("the session has already started")]
    AlreadyStarted,
    /// 422: a field is not acceptable.
    #[error("{0}")]
    Validation(String),
    /// 422: not an offered slot.
    #[error("that time is not an available slot")]
    SlotUnavailable,
    /// 422: in the past.
    #[error("that time is in the past")]
    InPast,
    /// 422: a one-time code (TOTP or recovery) that is wrong, too old or already used.
    #[error("that code is wrong or has already been used")]
    InvalidCode,
    /// 403: right password, but the address has not been confirmed yet.
    #[error("confirm your email address first: we have sent you a new link")]
    EmailUnverified,
    /// 400: a link that is unknown, used or expired (never told apart).
    #[error("this link is invalid or has expired")]
    InvalidToken,
    /// 429: too many attempts; `Retry-After` says when to try again.
    #[error("too many attempts; try again later")]
    RateLimited { retry_after_seconds: i64 },
    /// 500: our fault; the cause is logged, never sent.
    #[error("something went wrong on our side")]
    Internal(#[source] anyhow::Error),
}

/// The body of every error response.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// A stable code for programs and a short message for people.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::CrossOrigin => "cross_origin",
            ApiError::Forbidden => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::SlotTaken => "slot_taken",
            ApiError::AlreadyStarted => "already_started",
            ApiError::Validation(_) => "validation",
            ApiError::SlotUnavailable => "slot_unavailable",
            ApiError::InPast => "in_past",
            ApiError::InvalidCode => "invalid_code",
            ApiError::EmailUnverified => "email_unverified",
            ApiError::InvalidToken => "invalid_token",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidToken => StatusCode::BAD_REQUEST,
            ApiError::EmailUnverified => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unauthenticated | ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::CrossOrigin | ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::SlotTaken | ApiError::AlreadyStarted => StatusCode::CONFLICT,
            ApiError::Validation(_) | ApiError::SlotUnavailable | ApiError::InPast => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::InvalidCode => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if let ApiError::Internal(cause) = self {
            tracing::error!(error = ?cause, "request failed");
        } else {
            tracing::info!(code = self.code(), "refusal reason");
        }
        let detail = ErrorDetail {
            code: self.code(),
            message: self.to_string(),
        };
        let mut response = HttpResponse::build(status);
        if let ApiError::RateLimited {
            retry_after_seconds,
        } = self
        {
            response.insert_header(("Retry-After", retry_after_seconds.to_string()));
        }
        response.json(ErrorBody { error: detail })
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(e.into())
    }
}

impl From<PortError> for ApiError {
    fn from(e: PortError) -> Self {
        match e {
            PortError::NotFound => ApiError::NotFound,
            PortError::LimitReached => ApiError::Validation("limit reached".into()),
            PortError::Conflict => ApiError::SlotTaken,
            PortError::Unavailable(cause) => ApiError::Internal(anyhow::anyhow!(cause)),
        }
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(e: actix::MailboxError) -> Self {
        ApiError::Internal(e.into())
    }
}

impl From<CalendarError> for ApiError {
    fn from(e: CalendarError) -> Self {
        match e {
            CalendarError::TherapistNotFound | CalendarError::BookingNotFound => ApiError::NotFound,
            CalendarError::Forbidden => ApiError::Forbidden,
            CalendarError::NotOffered => ApiError::SlotUnavailable,
            CalendarError::InPast => ApiError::InPast,
            CalendarError::SlotTaken => ApiError::SlotTaken,
            CalendarError::AlreadyStarted => ApiError::AlreadyStarted,
            CalendarError::KeyReused => ApiError::Validation(e.to_string()),
            CalendarError::TooManyBookings => ApiError::Validation(format!(
                "you can hold at most {} upcoming sessions; cancel one to book another",
                crate::store::bookings::MAX_UPCOMING_PER_CLIENT
            )),
            CalendarError::InvalidAvailability(e) => ApiError::Validation(e.to_string()),
            CalendarError::Port(e) => e.into(),
        }
    }
}

impl From<crate::mfa::MfaError> for ApiError {
    fn from(e: crate::mfa::MfaError) -> Self {
        use crate::mfa::MfaError;
        match e {
            MfaError::InvalidCode => ApiError::InvalidCode,
            MfaError::AlreadyEnrolled | MfaError::NotEnrolled | MfaError::NoPendingEnrolment => {
                ApiError::Validation(e.to_string())
            }
            MfaError::Required => ApiError::Forbidden,
            MfaError::Totp(e) => ApiError::Internal(e.into()),
            MfaError::Database(e) => e.into(),
        }
    }
}

impl From<crate::store::client_profiles::ProfileError> for ApiError {
    /// Always our fault: the log gets the cause (never a field's value), the user a 500.
    fn from(e: crate::store::client_profiles::ProfileError) -> Self {
        ApiError::Internal(e.into())
    }
}

/// Turns JSON and query parsing failures into the same `bad_request` body as other errors.
pub fn json_config() -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default()
        .limit(64 * 1024)
        .error_handler(|err, _req| ApiError::BadRequest(format!("invalid JSON body: {err}")).into())
}

/// Query-string counterpart of [`json_config`].
pub fn query_config() -> actix_web::web::QueryConfig {
    actix_web::web::QueryConfig::default()
        .error_handler(|err, _req| ApiError::BadRequest(format!("invalid query: {err}")).into())
}

/// Path counterpart of [`json_config`]: a malformed id is simply not found.
pub fn path_config() -> actix_web::web::PathConfig {
    actix_web::web::PathConfig::default().error_handler(|_err, _req| ApiError::NotFound.into())
}
