//! Every user's keys in one listing, for the admin panel: searched by the owner's name,
//! the key's name or its prefix; revoked keys are never listed.

use sqlx::Row;

use super::keys::{KEY_COLUMNS_OF_K, key_from_row};
use super::limits::{KeyLimits, key_limits_from_row};
use super::sql::Sql;
use super::{KeyRow, Store, StoreResult};

/// Which keys a listing returns.
#[derive(Clone, Debug, Default)]
pub struct KeyQuery {
    /// Substring of the owner's name, the key's name or its prefix, case-insensitive.
    pub search: Option<String>,
    /// `active` or `disabled`.
    pub status: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// One listed key with its limits and its owner's name.
#[derive(Clone, Debug)]
pub struct ListedKey {
    pub key: KeyRow,
    pub limits: KeyLimits,
    pub owner: String,
}

fn push_key_filters(builder: &mut Sql<'_>, query: &KeyQuery) {
    builder.push(" FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.status <> 'revoked'");
    if let Some(search) = &query.search {
        let pattern = format!("%{}%", search.to_lowercase());
        builder
            .push(" AND (LOWER(u.name) LIKE ")
            .bind(pattern.clone())
            .push(" OR LOWER(k.name) LIKE ")
            .bind(pattern.clone())
            .push(" OR LOWER(k.key_prefix) LIKE ")
            .bind(pattern)
            .push(")");
    }
    if let Some(status) = &query.status {
        builder.push(" AND k.status = ").bind(status.clone());
    }
}

impl Store {
    /// One page of keys, newest first, and the total matching the filters.
    pub async fn search_keys(&self, query: &KeyQuery) -> StoreResult<(Vec<ListedKey>, i64)> {
        let mut count = Sql::new("SELECT COUNT(*)");
        push_key_filters(&mut count, query);
        let total = count.fetch_i64(&self.pool).await?;
        let mut select = Sql::new(format!(
            "SELECT {KEY_COLUMNS_OF_K}, k.allowed_ips, k.rpm_limit, k.tpm_limit, u.name AS owner_name"
        ));
        push_key_filters(&mut select, query);
        select
            .push(" ORDER BY k.id DESC LIMIT ")
            .bind(query.limit)
            .push(" OFFSET ")
            .bind(query.offset);
        let rows = select.fetch_all(&self.pool).await?;
        let keys = rows
            .iter()
            .map(|row| {
                Ok(ListedKey {
                    key: key_from_row(row)?,
                    limits: key_limits_from_row(row)?,
                    owner: row.try_get("owner_name")?,
                })
            })
            .collect::<StoreResult<_>>()?;
        Ok((keys, total))
    }
}
