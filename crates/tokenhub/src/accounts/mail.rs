//! Account mail (password resets, address confirmations) over SMTP with `lettre`: TLS by
//! rustls, as the URL says (`smtps://…`, `smtp://…?tls=required`, or plain
//! `smtp://host:port` for a local relay), or as the admin panel's SMTP settings say
//! (`mail_settings.rs`).

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::mail_settings::{SmtpSettings, TlsMode};

/// How long one SMTP exchange may take.
const SMTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Sends account mail from one sender.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `host:port` (never credentials), for the errors an admin reads.
    server: String,
}

/// Why a mail could not be sent (the SMTP server's answer, without credentials).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MailError(String);

impl Mailer {
    /// The mailer of `smtp_url`, sending as `from` (`Name <address>` or an address).
    pub fn new(smtp_url: &str, from: &str) -> Result<Mailer, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url)
            .map_err(|e| MailError(format!("smtp_url is not a usable SMTP URL: {e}")))?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(Mailer {
            transport,
            from: sender(from)?,
            server: server_of_url(smtp_url),
        })
    }

    /// The mailer of an admin's SMTP settings.
    pub fn from_settings(settings: &SmtpSettings) -> Result<Mailer, MailError> {
        type Transport = AsyncSmtpTransport<Tokio1Executor>;
        let host = settings.host.as_str();
        let unusable = |e: lettre::transport::smtp::Error| {
            MailError(format!("'{host}' is not a usable SMTP host: {e}"))
        };
        let mut builder = match settings.tls {
            TlsMode::Tls => Transport::relay(host).map_err(unusable)?,
            TlsMode::StartTls => Transport::starttls_relay(host).map_err(unusable)?,
            TlsMode::None => Transport::builder_dangerous(host),
        }
        .port(settings.port)
        .timeout(Some(SMTP_TIMEOUT));
        if !settings.username.is_empty() {
            let password = settings.password.clone().unwrap_or_default();
            builder = builder.credentials(Credentials::new(settings.username.clone(), password));
        }
        Ok(Mailer {
            transport: builder.build(),
            from: sender(&settings.from)?,
            server: format!("{host}:{}", settings.port),
        })
    }

    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), MailError> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| MailError(format!("'{to}' is not an email address: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| MailError(e.to_string()))?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| {
            let server = &self.server;
            if e.is_timeout() {
                MailError(format!(
                    "the SMTP server {server} did not answer within {} s",
                    SMTP_TIMEOUT.as_secs()
                ))
            } else {
                MailError(format!("cannot send through the SMTP server {server}: {e}"))
            }
        })
    }
}

/// `host[:port]` of an SMTP URL, without its credentials.
fn server_of_url(smtp_url: &str) -> String {
    smtp_url
        .parse::<http::Uri>()
        .ok()
        .and_then(|uri| {
            let host = uri.host()?.to_string();
            Some(match uri.port_u16() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        })
        .unwrap_or_else(|| "of smtp_url".into())
}

fn sender(from: &str) -> Result<Mailbox, MailError> {
    from.parse()
        .map_err(|e| MailError(format!("smtp_from '{from}' is not a mailbox: {e}")))
}

/// A plausible address: one `@`, something on both sides, a dot in the domain, no
/// spaces, at most 254 bytes. The mail itself is the real test.
pub fn valid_email(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    address.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !address.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_named_in_errors_has_no_credentials() {
        assert_eq!(
            server_of_url("smtps://mailer:secret@mail.example.com:465?tls=required"),
            "mail.example.com:465"
        );
        assert_eq!(server_of_url("smtp://127.0.0.1"), "127.0.0.1");
    }

    #[test]
    fn addresses_are_checked_for_shape_only() {
        assert!(valid_email("ada@example.com"));
        assert!(valid_email("a.b+tag@mail.example.cn"));
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "a da@example.com",
            "a@b@c.d",
            "ada@.com",
        ] {
            assert!(!valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn a_bad_url_or_sender_is_refused_at_start() {
        assert!(Mailer::new("http://example.com", "a@example.com").is_err());
        assert!(Mailer::new("smtp://127.0.0.1:2525", "not a mailbox").is_err());
        assert!(Mailer::new("smtp://127.0.0.1:2525", "TokenHub <noreply@example.com>").is_ok());
    }

    #[test]
    fn admin_settings_build_a_mailer_for_each_tls_mode() {
        let mut settings = SmtpSettings {
            host: "smtp.example.com".into(),
            port: 587,
            username: "mailer".into(),
            password: Some("secret".into()),
            from: "TokenHub <noreply@example.com>".into(),
            tls: TlsMode::StartTls,
        };
        for tls in [TlsMode::Tls, TlsMode::StartTls, TlsMode::None] {
            settings.tls = tls;
            assert!(Mailer::from_settings(&settings).is_ok(), "{tls:?}");
        }
        settings.from = "nobody".into();
        assert!(Mailer::from_settings(&settings).is_err());
    }
}
