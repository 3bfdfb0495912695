//! Account mail (password resets) over SMTP with `lettre`: TLS by rustls, as the URL
//! says (`smtps://…`, `smtp://…?tls=required`, or plain `smtp://host:port` for a local
//! relay).

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Sends account mail from one sender.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
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
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        let from = from
            .parse()
            .map_err(|e| MailError(format!("smtp_from '{from}' is not a mailbox: {e}")))?;
        Ok(Mailer { transport, from })
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
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| MailError(e.to_string()))
    }
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
}
