//! Optional email verification at sign-up (the `email_verification` site setting, off by
//! default). A new account gives an address and gets a one-use link, valid for a day,
//! built from `public_url` only. Until it follows the link it may log in but not create
//! keys, and its trial credit waits: it is credited when the address is confirmed.
//! Accounts made before the setting was turned on, or by admins, are never asked.

use std::sync::Arc;

use super::mail::{Mailer, valid_email};
use super::{AccountError, api_key, session, validate_user_name};
use crate::ledger::money::Nanos;
use crate::store::{Credit, LedgerKind, MailedLink, Store, StoreError, UserRow, now_ms};

/// How long a confirmation link works.
pub const VERIFY_TTL_MS: i64 = 24 * 60 * 60 * 1000;
/// The shortest time between two links mailed to one account.
pub const RESEND_AFTER_MS: i64 = 60 * 1000;

/// What an unconfirmed account is told when it tries to create a key.
pub const UNCONFIRMED: &str = "confirm your email address first: open the link we mailed \
     you, or ask for a new one on your account page";

/// Creates an account whose address must be confirmed and mails it the link. `site` is
/// the URL links start with (`public_url`).
pub async fn sign_up(
    store: &Store,
    mailer: Arc<Mailer>,
    site: &str,
    name: &str,
    password: &str,
    email: &str,
) -> Result<UserRow, AccountError> {
    validate_user_name(name)?;
    session::validate_password(password)?;
    let email = checked_email(email)?;
    let hash = session::hash_password(password).await?;
    let user = match store.create_unverified_user(name, &hash, &email).await {
        Ok(user) => user,
        Err(StoreError::Conflict(message)) => return Err(AccountError::Conflict(message)),
        Err(error) => return Err(error.into()),
    };
    mail_link(store, mailer, site, user.id, email).await?;
    Ok(user)
}

/// Mails a new link to an account still unconfirmed, at most once per `RESEND_AFTER_MS`.
pub async fn resend(
    store: &Store,
    mailer: Arc<Mailer>,
    site: &str,
    user_id: i64,
) -> Result<(), AccountError> {
    if !store.verification_pending(user_id).await? {
        return Err(AccountError::Conflict(
            "your email address is already confirmed".into(),
        ));
    }
    if let Some(last) = store.last_email_verification_at(user_id).await? {
        let wait_ms = last.saturating_add(RESEND_AFTER_MS) - now_ms();
        if wait_ms > 0 {
            return Err(AccountError::RateLimited {
                retry_after_secs: (wait_ms as u64).div_ceil(1000),
            });
        }
    }
    let Some(email) = store.user_email(user_id).await? else {
        return Err(AccountError::Invalid(
            "this account has no email address to confirm".into(),
        ));
    };
    mail_link(store, mailer, site, user_id, email).await
}

/// Confirms the address a link was mailed to (once, within a day) and credits the trial
/// (`trial_credit`, the setting in force now) on the first confirmation.
pub async fn confirm(store: &Store, token: &str, trial_credit: Nanos) -> Result<(), AccountError> {
    let trial = Credit {
        amount: trial_credit.max(Nanos::ZERO),
        kind: LedgerKind::Trial,
        reason: "sign-up trial credit",
    };
    match store
        .confirm_email_verification(&api_key::hash(token.trim()), trial)
        .await?
    {
        Some(_) => Ok(()),
        None => Err(AccountError::Invalid(
            "this confirmation link is invalid, used or expired: log in and ask for a new one"
                .into(),
        )),
    }
}

/// Refuses what an unconfirmed account may not do yet (create keys).
pub async fn require_confirmed(store: &Store, user_id: i64) -> Result<(), AccountError> {
    if store.verification_pending(user_id).await? {
        return Err(AccountError::Forbidden(UNCONFIRMED.into()));
    }
    Ok(())
}

fn checked_email(email: &str) -> Result<String, AccountError> {
    let email = email.trim().to_lowercase();
    if email.is_empty() {
        return Err(AccountError::Invalid(
            "an email address is required to sign up on this gateway".into(),
        ));
    }
    if !valid_email(&email) {
        return Err(AccountError::Invalid("this is not an email address".into()));
    }
    Ok(email)
}

/// Stores a new link and mails it in the background (a failure is logged; the account
/// asks again after `RESEND_AFTER_MS`).
async fn mail_link(
    store: &Store,
    mailer: Arc<Mailer>,
    site: &str,
    user_id: i64,
    email: String,
) -> Result<(), AccountError> {
    let token = api_key::random_token("thv_", 32);
    store
        .create_link(
            MailedLink::AddressConfirmation,
            &api_key::hash(&token),
            user_id,
            now_ms() + VERIFY_TTL_MS,
        )
        .await?;
    let body = mail_body(site, &token);
    tokio::spawn(async move {
        if let Err(e) = mailer
            .send(&email, "Confirm your TokenHub email address", body)
            .await
        {
            tracing::warn!(error = %e, "the address confirmation mail was not sent");
        }
    });
    Ok(())
}

fn mail_body(site: &str, token: &str) -> String {
    format!(
        "Welcome to TokenHub. Confirm your email address within 24 hours\n\
         to create API keys and receive your trial credit:\n\n\
         {}/token/#verify={token}\n\n\
         If you did not sign up, ignore this mail.\n",
        site.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    fn mailer() -> Arc<Mailer> {
        // Nothing listens there: the background send fails and is only logged.
        Arc::new(Mailer::new("smtp://127.0.0.1:9", "TokenHub <noreply@example.com>").unwrap())
    }

    #[tokio::test]
    async fn an_unconfirmed_account_is_refused_keys_and_resending_is_throttled() {
        let (store, _dir) = temp_store().await;
        let site = "https://gateway.example";
        let missing = sign_up(&store, mailer(), site, "eve", "long enough", " ").await;
        assert!(matches!(missing, Err(AccountError::Invalid(_))));
        let eve = sign_up(
            &store,
            mailer(),
            site,
            "eve",
            "long enough",
            "eve@example.com",
        )
        .await
        .unwrap();
        assert!(matches!(
            require_confirmed(&store, eve.id).await,
            Err(AccountError::Forbidden(_))
        ));
        assert!(matches!(
            resend(&store, mailer(), site, eve.id).await,
            Err(AccountError::RateLimited { retry_after_secs }) if (1..=60).contains(&retry_after_secs)
        ));
        assert!(
            confirm(&store, "thv_wrong", Nanos::from_usd(1))
                .await
                .is_err()
        );
        assert!(matches!(
            sign_up(
                &store,
                mailer(),
                site,
                "bob",
                "long enough",
                "EVE@example.com"
            )
            .await,
            Err(AccountError::Conflict(_))
        ));
    }

    #[test]
    fn the_link_starts_with_the_public_url() {
        let body = mail_body("https://gateway.example/", "thv_abc");
        assert!(body.contains("\nhttps://gateway.example/token/#verify=thv_abc\n"));
    }
}
