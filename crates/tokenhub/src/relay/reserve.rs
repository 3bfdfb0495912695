//! One request's reservation of its worst-case cost: in this instance's books, or with
//! shared state (Redis) across instances. The relay and the ledger simulation both
//! reserve through here, so the simulation drives the path requests take.

use crate::catalog::KeyEntry;
use crate::catalog::accounts::AccountCache;
use crate::ledger::books::{Books, Reservation};
use crate::ledger::money::Nanos;
use crate::relay::RelayError;
use crate::shared::money::{Admission, Reading, Request};

/// Reserves `amount` for a request of `key`.
pub(crate) async fn reserve(
    books: &Books,
    accounts: &AccountCache,
    key: &KeyEntry,
    amount: Nanos,
) -> Result<Reservation, RelayError> {
    if books.shared().is_none() {
        return books
            .reserve(key.user_id, key.id, key.quota, amount)
            .map_err(RelayError::Insufficient);
    }
    let request = Request {
        user_id: key.user_id,
        key_id: key.id,
        key_quota: key.quota,
        rpm: None,
        tpm: None,
        tokens: 0,
        amount,
    };
    admit_across(books, accounts, request).await
}

/// Asks the shared state, reading an amount Redis does not hold from the database
/// first (first use, or after Redis lost its data), and books what it admitted.
pub(crate) async fn admit_across(
    books: &Books,
    accounts: &AccountCache,
    request: Request,
) -> Result<Reservation, RelayError> {
    let Some(shared) = books.shared() else {
        return Err(RelayError::SharedStateUnavailable);
    };
    let (user, key) = (request.user_id, request.key_id);
    if request.amount <= Nanos::ZERO && request.rpm.is_none() && request.tpm.is_none() {
        // Nothing to decide: served even while Redis is down.
        return Ok(books.reserved_elsewhere(user, key, Nanos::ZERO));
    }
    for _ in 0..3 {
        // Redis's take and the books' with no rebuild of the holds in between.
        let booked = shared
            .in_order(async {
                Ok::<_, crate::shared::SharedError>(match shared.admit_request(request).await? {
                    Admission::Admitted => Ok(books.reserved_elsewhere(user, key, request.amount)),
                    other => Err(other),
                })
            })
            .await
            .map_err(shared_unavailable)?;
        match booked {
            Ok(reservation) => return Ok(reservation),
            Err(Admission::Limited(limited)) => return Err(RelayError::RateLimited(limited)),
            Err(Admission::Refused(refusal)) => return Err(RelayError::Insufficient(refusal)),
            Err(Admission::Rebuilding | Admission::Admitted) => {
                return Err(RelayError::SharedStateUnavailable);
            }
            Err(Admission::Missing(account)) => {
                let reading = Reading::from_result(accounts.money_reading(account).await);
                shared
                    .load_money(account, reading)
                    .await
                    .map_err(shared_unavailable)?;
            }
        }
    }
    Err(RelayError::SharedStateUnavailable)
}

pub(super) fn shared_unavailable(error: crate::shared::SharedError) -> RelayError {
    tracing::warn!(%error, "shared state unavailable; refusing the request");
    metrics::counter!("tokenhub_shared_state_failures_total").increment(1);
    RelayError::SharedStateUnavailable
}
