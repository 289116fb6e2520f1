//! Checks shared by every handler that takes free text, so each field is refused the same
//! way: a clear 422 naming the field, never a database error.

use crate::http::error::ApiError;

/// Control characters have no place in names or messages, and PostgreSQL refuses NUL in
/// text outright. Newlines and tabs are allowed where text may span lines.
fn has_control(value: &str, multi_line: bool) -> bool {
    value
        .chars()
        .any(|c| c.is_control() && !(multi_line && matches!(c, '\n' | '\r' | '\t')))
}

/// A one-line field: trimmed, 1 to `max` characters, no control characters.
pub fn single_line(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max || has_control(value, false) {
        return Err(ApiError::Validation(format!(
            "{field} must be 1 to {max} characters of ordinary text"
        )));
    }
    Ok(value.to_owned())
}

/// A free-text field that may be empty and span lines: trimmed, at most `max` characters.
pub fn multi_line(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    let value = value.trim();
    if value.chars().count() > max || has_control(value, true) {
        return Err(ApiError::Validation(format!(
            "{field} must be at most {max} characters of ordinary text"
        )));
    }
    Ok(value.to_owned())
}

/// An email address: one `@`, a dotted domain, no spaces, commas or control characters,
/// and valid by RFC 5322 as checked by the `email_address` crate.
pub fn email(value: &str) -> Result<String, ApiError> {
    let value = value.trim();
    let plain = value.len() <= 254
        && value.matches('@').count() == 1
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == '"')
        && value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.split('.').count() >= 2
                && domain.split('.').all(|label| !label.is_empty())
        });
    if !plain || !email_address::EmailAddress::is_valid(value) {
        return Err(ApiError::Validation("enter a valid email address".into()));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Addresses people really have pass; broken or smuggling ones do not.
    #[test]
    fn email_addresses() {
        for good in ["a@b.co", "first.last+tag@example.co.uk", "  x@y.org "] {
            assert!(email(good).is_ok(), "{good}");
        }
        for bad in [
            "a@@b.c",
            "a@b.",
            "a@b..c",
            "a@b.c,evil@x.com",
            "a b@c.d",
            "a@b",
            "@b.c",
            "a\0@b.c",
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }

    /// NUL and other control characters are refused; line breaks only where text spans lines.
    #[test]
    fn control_characters() {
        assert!(single_line("name", "Sam\0", 60).is_err());
        assert!(single_line("name", "Sam\nSmith", 60).is_err());
        assert!(multi_line("bio", "line one\nline two", 100).is_ok());
        assert!(multi_line("bio", "bad\u{7}", 100).is_err());
        assert!(multi_line("bio", &"x".repeat(101), 100).is_err());
    }
}
