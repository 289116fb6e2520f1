//! Where mail goes: the configured [`MailTransport`], and the [`Mailer`] that formats a
//! queued [`Email`] as an RFC 5322 message and hands it to an SMTP server or writes it to a
//! folder. There is deliberately no "log it" transport: mail carries sign-in links.

use super::Email;
use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// `MAIL_FROM` when it is not set.
pub const DEFAULT_FROM: &str = "Paranimo <no-reply@paranimo.test>";

/// Where development runs keep mail when `MAIL_TRANSPORT` is not set, relative to the working
/// directory: beside the private PostgreSQL and Redis of `scripts/run.sh`.
pub const DEVELOPMENT_MAIL_FOLDER: &str = ".data/mail";

/// How long one SMTP command may take. lettre's default is a minute; the sender holds row
/// locks while it sends, so a stuck server should cost less than that.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

/// How a connection to the SMTP server is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// None: only for a relay on the same machine or a test sink (`smtp://host:port`).
    Off,
    /// STARTTLS, required (`smtp://…:587?tls=starttls`), the usual submission port.
    StartTls,
    /// TLS from the first byte (`smtps://…:465`).
    Implicit,
}

/// A user name and password for the SMTP server. Both stay out of `Debug` and `Display`: the
/// user name of many providers is an API key id.
#[derive(Clone)]
pub struct SmtpCredentials {
    pub user: String,
    pub password: SecretString,
}

impl fmt::Debug for SmtpCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SmtpCredentials([redacted])")
    }
}

/// Where transactional mail goes (`MAIL_TRANSPORT`), parsed once at start-up:
///
/// - `smtp://host:port`: plain SMTP, for a relay on this machine or a test sink;
/// - `smtp://user:password@host:587?tls=starttls`: submission with STARTTLS;
/// - `smtps://user:password@host:465`: submission over TLS;
/// - `folder:/path`: one `.eml` file per mail, nothing sent (the development default).
///
/// User and password are percent-decoded, so `%40` stands for `@`. `Display` hides them.
#[derive(Clone, Debug)]
pub enum MailTransport {
    Smtp {
        host: String,
        port: u16,
        tls: SmtpTls,
        credentials: Option<SmtpCredentials>,
    },
    Folder(PathBuf),
}

impl MailTransport {
    /// The transport of a development run without `MAIL_TRANSPORT`.
    pub fn development_default() -> Self {
        Self::Folder(PathBuf::from(DEVELOPMENT_MAIL_FOLDER))
    }
}

fn percent_decoded(part: &str) -> anyhow::Result<String> {
    Ok(percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .context("MAIL_TRANSPORT credentials are not UTF-8 once percent-decoded")?
        .into_owned())
}

impl FromStr for MailTransport {
    type Err = anyhow::Error;

    /// Errors never repeat the value: it may hold a password.
    fn from_str(value: &str) -> anyhow::Result<Self> {
        if let Some(path) = value.strip_prefix("folder:") {
            if path.is_empty() {
                bail!("MAIL_TRANSPORT=folder: needs a path, as in folder:/var/mail/paranimo");
            }
            return Ok(Self::Folder(PathBuf::from(path)));
        }

        let url = url::Url::parse(value).map_err(|e| {
            anyhow::anyhow!(
                "MAIL_TRANSPORT is not a URL ({e}); expected smtp://host:port, \
                 smtps://user:password@host:port or folder:/path"
            )
        })?;
        let tls_param = url
            .query_pairs()
            .find(|(key, _)| key == "tls")
            .map(|(_, v)| v.into_owned());
        let tls = match (url.scheme(), tls_param.as_deref()) {
            ("smtp", None) => SmtpTls::Off,
            ("smtp", Some("starttls" | "required")) => SmtpTls::StartTls,
            ("smtps", None) => SmtpTls::Implicit,
            _ => bail!(
                "MAIL_TRANSPORT must start smtp:// (optionally with ?tls=starttls), smtps:// \
                 or folder:"
            ),
        };

        // lettre resolves the host itself; an IPv6 literal must lose its URL brackets.
        let host = match url.host() {
            Some(url::Host::Domain(name)) if !name.is_empty() => name.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => bail!("MAIL_TRANSPORT names no SMTP host"),
        };
        let port = url.port().unwrap_or(match tls {
            SmtpTls::Off => 25,
            SmtpTls::StartTls => 587,
            SmtpTls::Implicit => 465,
        });

        let credentials = match url.password() {
            Some(password) => Some(SmtpCredentials {
                user: percent_decoded(url.username())?,
                password: percent_decoded(password)?.into(),
            }),
            None if !url.username().is_empty() => {
                bail!("MAIL_TRANSPORT names an SMTP user but no password")
            }
            None => None,
        };
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if credentials.is_some() && tls == SmtpTls::Off && !loopback {
            bail!(
                "MAIL_TRANSPORT would send the SMTP password unencrypted: use smtps:// or \
                 ?tls=starttls"
            );
        }

        Ok(Self::Smtp {
            host,
            port,
            tls,
            credentials,
        })
    }
}

/// The transport as an operator would write it, with any user name and password replaced
/// by `***`: safe for logs.
impl fmt::Display for MailTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Folder(path) => write!(f, "folder:{}", path.display()),
            Self::Smtp {
                host,
                port,
                tls,
                credentials,
            } => {
                let scheme = if *tls == SmtpTls::Implicit {
                    "smtps"
                } else {
                    "smtp"
                };
                let auth = if credentials.is_some() { "***@" } else { "" };
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                let query = if *tls == SmtpTls::StartTls {
                    "?tls=starttls"
                } else {
                    ""
                };
                write!(f, "{scheme}://{auth}{host}:{port}{query}")
            }
        }
    }
}

/// Why one mail was not delivered. Its `Display` is [`SendError::kind`] alone, and only that
/// may be logged: lettre's own messages (and so this type's `Debug`) can quote the server's
/// reply, which often repeats the recipient's address.
#[derive(Debug)]
pub enum SendError {
    /// The recipient does not parse as an address.
    Address(lettre::address::AddressError),
    /// lettre refused to build the message.
    Message(lettre::error::Error),
    /// The SMTP server could not be reached or refused the mail.
    Smtp(lettre::transport::smtp::Error),
    /// The mail folder could not be written.
    Folder(std::io::Error),
}

impl SendError {
    /// A short, stable code for logs and `email_outbox.last_error`: `smtp_550`, `timeout`,
    /// `connection`, … Never an address or a server's free text.
    pub fn kind(&self) -> String {
        match self {
            Self::Address(_) => "address".into(),
            Self::Message(_) => "message".into(),
            Self::Folder(e) => format!("folder_{:?}", e.kind()).to_lowercase(),
            Self::Smtp(e) => match e.status() {
                Some(code) => format!("smtp_{code}"),
                None if e.is_timeout() => "timeout".into(),
                None if e.is_tls() => "tls".into(),
                None if e.is_response() => "smtp_response".into(),
                None if e.is_client() => "smtp_client".into(),
                None => "connection".into(),
            },
        }
    }

    /// True when trying again cannot help because the mail itself is at fault. SMTP
    /// refusals, even 5xx ones, are retried: a wrong password or a full quota is fixed by an
    /// operator, and giving up at once would lose every mail queued meanwhile.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Address(_) | Self::Message(_))
    }

    /// True when no SMTP server answered at all (refused, timed out, TLS failed): the next
    /// mail would fare no better now, so the sender ends its round rather than let each mail
    /// wait out the timeout.
    pub fn is_server_unreachable(&self) -> bool {
        matches!(self, Self::Smtp(e) if e.status().is_none())
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind())
    }
}

impl std::error::Error for SendError {}

#[derive(Clone)]
enum Route {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Folder(PathBuf),
}

/// Delivers formatted mail through the configured transport. Cheap to clone: SMTP
/// connections live in lettre's pool, shared by the clones.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    route: Route,
    transport: MailTransport,
}

impl Mailer {
    /// Builds the SMTP client (no connection is made until the first mail) or remembers the
    /// folder. Must run inside a Tokio runtime: lettre's pool starts a clean-up task.
    pub fn new(transport: &MailTransport, from: Mailbox) -> anyhow::Result<Self> {
        let route = match transport {
            MailTransport::Folder(path) => Route::Folder(path.clone()),
            MailTransport::Smtp {
                host,
                port,
                tls,
                credentials,
            } => {
                let builder = match tls {
                    SmtpTls::Off => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
                    SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                        .context("MAIL_TRANSPORT: SMTP host")?,
                    SmtpTls::Implicit => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
                        .context("MAIL_TRANSPORT: SMTP host")?,
                };
                let mut builder = builder.port(*port).timeout(Some(SMTP_TIMEOUT));
                if let Some(c) = credentials {
                    let password = c.password.expose_secret().to_owned();
                    builder = builder.credentials(Credentials::new(c.user.clone(), password));
                }
                Route::Smtp(builder.build())
            }
        };
        Ok(Self {
            from,
            route,
            transport: transport.clone(),
        })
    }

    /// The transport this mailer delivers through, printable without secrets.
    pub fn transport(&self) -> &MailTransport {
        &self.transport
    }

    /// Formats and delivers one queued mail. `outbox_id` names the file in folder mode, and
    /// with `queued_at` makes a `Message-ID` that stays the same on every attempt.
    pub async fn send(
        &self,
        outbox_id: i64,
        queued_at: DateTime<Utc>,
        email: &Email,
    ) -> Result<(), SendError> {
        let to: Mailbox = email.to.parse().map_err(SendError::Address)?;
        let id = message_id(outbox_id, queued_at, self.from.email.domain());

        let body = match &self.route {
            Route::Smtp(_) => Body::new(email.body_text.clone()),
            Route::Folder(_) => readable_body(&email.body_text),
        };
        let message = Message::builder()
            .message_id(Some(id))
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.as_str())
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(SendError::Message)?;

        match &self.route {
            Route::Smtp(smtp) => {
                smtp.send(message).await.map_err(SendError::Smtp)?;
            }
            Route::Folder(dir) => {
                write_eml(dir, outbox_id, &message.formatted())
                    .await
                    .map_err(SendError::Folder)?;
            }
        }
        Ok(())
    }
}

/// The `Message-ID` of an outbox row: the same on every attempt, so a mail sent twice (a
/// crash between the server's acceptance and our commit) is recognisably one message to mail
/// clients that de-duplicate. A hash, so recipients cannot count our mail from the ids.
fn message_id(outbox_id: i64, queued_at: DateTime<Utc>, domain: &str) -> String {
    let digest = Sha256::new()
        .chain_update(outbox_id.to_be_bytes())
        .chain_update(queued_at.timestamp_micros().to_be_bytes())
        .finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("<{hex}@{domain}>")
}

/// The body of a folder mail: 8-bit text with whole lines when every line fits RFC 5322's
/// 998-octet limit, else lettre's own choice. For SMTP lettre picks an encoding every server
/// accepts, and it wraps lines longer than 76 columns with quoted-printable, which would
/// break the links a developer copies out of these files.
fn readable_body(text: &str) -> Body {
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let fits = crlf
        .split("\r\n")
        .all(|line| line.len() <= 998 && !line.contains(['\r', '\0']));
    if fits {
        Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::EightBit)
    } else {
        Body::new(text.to_owned())
    }
}

/// Writes `<unix millis>-<outbox id>.eml` through a hidden temporary name, so whoever reads
/// the folder never sees half a mail.
async fn write_eml(dir: &Path, outbox_id: i64, bytes: &[u8]) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let name = format!("{}-{outbox_id}.eml", chrono::Utc::now().timestamp_millis());
    let partial = dir.join(format!(".{name}.partial"));
    tokio::fs::write(&partial, bytes).await?;
    tokio::fs::rename(&partial, dir.join(name)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_smtp_for_a_local_sink() {
        let t: MailTransport = "smtp://127.0.0.1:2525".parse().unwrap();
        assert!(matches!(
            &t,
            MailTransport::Smtp { host, port: 2525, tls: SmtpTls::Off, credentials: None }
                if host == "127.0.0.1"
        ));
        assert_eq!(t.to_string(), "smtp://127.0.0.1:2525");
    }

    #[test]
    fn credentials_are_decoded_and_never_displayed() {
        let t: MailTransport = "smtps://apikey:p%40ss%3Aword@mail.example.com"
            .parse()
            .unwrap();
        let MailTransport::Smtp {
            port,
            tls,
            credentials: Some(c),
            ..
        } = &t
        else {
            panic!("smtps with credentials: {t:?}");
        };
        assert_eq!((*port, *tls), (465, SmtpTls::Implicit));
        assert_eq!(c.user, "apikey");
        assert_eq!(c.password.expose_secret(), "p@ss:word");

        let shown = format!("{t} {t:?}");
        assert!(!shown.contains("apikey") && !shown.contains("p@ss") && !shown.contains("p%40"));
        assert!(shown.starts_with("smtps://***@mail.example.com:465"));
    }

    #[test]
    fn starttls_uses_the_submission_port() {
        let t: MailTransport = "smtp://u:p@mail.example.com?tls=starttls".parse().unwrap();
        assert!(matches!(
            t,
            MailTransport::Smtp {
                port: 587,
                tls: SmtpTls::StartTls,
                ..
            }
        ));
        assert_eq!(
            t.to_string(),
            "smtp://***@mail.example.com:587?tls=starttls"
        );
    }

    #[test]
    fn a_password_in_clear_over_the_network_is_refused() {
        let refused = "smtp://u:secret@mail.example.com:25".parse::<MailTransport>();
        let message = format!("{:#}", refused.unwrap_err());
        assert!(message.contains("unencrypted") && !message.contains("secret"));
        // On the same machine nothing crosses a network.
        assert!(
            "smtp://u:secret@127.0.0.1:25"
                .parse::<MailTransport>()
                .is_ok()
        );
    }

    #[test]
    fn folders_and_nonsense() {
        let t: MailTransport = "folder:/tmp/mail".parse().unwrap();
        assert!(matches!(&t, MailTransport::Folder(p) if p == Path::new("/tmp/mail")));
        for bad in [
            "folder:",
            "http://example.com",
            "smtps://h?tls=starttls",
            "mail.example.com",
        ] {
            assert!(bad.parse::<MailTransport>().is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn a_mail_keeps_its_message_id_across_attempts() {
        let at = chrono::Utc::now();
        let id = message_id(7, at, "paranimo.test");
        assert_eq!(id, message_id(7, at, "paranimo.test"));
        assert_ne!(id, message_id(8, at, "paranimo.test"));
        assert!(id.starts_with('<') && id.ends_with("@paranimo.test>") && id.len() == 48);
    }

    #[test]
    fn error_kinds_carry_no_address() {
        let e = SendError::Address("not an address".parse::<Mailbox>().unwrap_err());
        assert_eq!(e.to_string(), "address");
        assert!(e.is_permanent());
        let e = SendError::Folder(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert_eq!(e.kind(), "folder_permissiondenied");
        assert!(!e.is_permanent());
    }
}
