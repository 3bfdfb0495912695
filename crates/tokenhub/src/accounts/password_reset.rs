//! Password reset by email: a one-use link, valid for an hour, mailed to the address on
//! the account. Asking never tells whether an address has an account (the answer is the
//! same either way); only the token's SHA-256 is stored.

use std::sync::Arc;

use super::mail::{Mailer, valid_email};
use super::{AccountError, api_key, session};
use crate::store::{MailedLink, Store};

/// How long a reset link works.
pub const RESET_TTL_MS: i64 = 60 * 60 * 1000;

/// Mails a reset link for the account with `email`, if there is one. `site` is the URL
/// the link starts with (`https://gateway.example`). The mail is sent in the background
/// and its failure only logged: the answer (and its timing) must not tell whether the
/// address has an account.
pub async fn request(
    store: &Store,
    mailer: Arc<Mailer>,
    email: &str,
    site: &str,
) -> Result<(), AccountError> {
    let email = email.trim().to_lowercase();
    if !valid_email(&email) {
        return Err(AccountError::Invalid("this is not an email address".into()));
    }
    let Some(user_id) = store.active_user_by_email(&email).await? else {
        return Ok(());
    };
    let token = api_key::random_token("thr_", 32);
    let expires_at = crate::store::now_ms() + RESET_TTL_MS;
    store
        .create_link(
            MailedLink::PasswordReset,
            &api_key::hash(&token),
            user_id,
            expires_at,
        )
        .await?;
    let body = reset_mail_body(site, &token);
    tokio::spawn(async move {
        if let Err(e) = mailer
            .send(&email, "Reset your TokenHub password", body)
            .await
        {
            tracing::warn!(error = %e, "the password reset mail was not sent");
        }
    });
    Ok(())
}

fn reset_mail_body(site: &str, token: &str) -> String {
    format!(
        "Someone, hopefully you, asked to reset the password of\n\
         your TokenHub account. Choose a new one within an hour:\n\n\
         {}/token/#reset={token}\n\n\
         If it was not you, ignore this mail: your password stays.\n",
        site.trim_end_matches('/')
    )
}

/// Sets the new password of the account a reset link was issued for; the link works
/// once. Every session of the account ends.
pub async fn confirm(store: &Store, token: &str, new_password: &str) -> Result<(), AccountError> {
    // Checked first: a too-short password must not use the link up.
    session::validate_password(new_password)?;
    let Some(user_id) = store
        .take_link(MailedLink::PasswordReset, &api_key::hash(token.trim()))
        .await?
    else {
        return Err(AccountError::Invalid(
            "this reset link is invalid, used or expired: ask for a new one".into(),
        ));
    };
    session::set_password(store, user_id, new_password).await
}
