//! Dynamic SQL with bound parameters for both backends. `sqlx::QueryBuilder<Any>` writes
//! `?` placeholders, which PostgreSQL rejects; this builder writes `$1, $2, …` like every
//! static statement in the store. Only fixed SQL text is pushed; values are always bound.

use std::fmt::Write;

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, AnyPool, Arguments, Encode, Type};

pub(super) struct Sql<'q> {
    text: String,
    args: AnyArguments<'q>,
    count: usize,
    error: Option<String>,
}

impl<'q> Sql<'q> {
    pub fn new(text: impl Into<String>) -> Sql<'q> {
        Sql {
            text: text.into(),
            args: AnyArguments::default(),
            count: 0,
            error: None,
        }
    }

    /// Appends fixed SQL text (never user input).
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Makes the statement a part of a larger one: fixed text before and after it (with
    /// no placeholders of their own).
    pub fn wrap(&mut self, before: &str, after: &str) -> &mut Self {
        self.text.insert_str(0, before);
        self.text.push_str(after);
        self
    }

    /// Appends the next placeholder and binds `value` to it.
    pub fn bind<T>(&mut self, value: T) -> &mut Self
    where
        T: 'q + Encode<'q, Any> + Type<Any>,
    {
        self.count += 1;
        let _ = write!(self.text, "${}", self.count);
        if let Err(e) = self.args.add(value) {
            self.error.get_or_insert(e.to_string());
        }
        self
    }

    fn checked(self) -> Result<(String, AnyArguments<'q>), sqlx::Error> {
        match self.error {
            Some(e) => Err(sqlx::Error::Encode(e.into())),
            None => Ok((self.text, self.args)),
        }
    }

    pub async fn fetch_all(self, pool: &AnyPool) -> Result<Vec<AnyRow>, sqlx::Error> {
        let (text, args) = self.checked()?;
        sqlx::query_with(&text, args).fetch_all(pool).await
    }

    pub async fn fetch_i64(self, pool: &AnyPool) -> Result<i64, sqlx::Error> {
        let (text, args) = self.checked()?;
        sqlx::query_scalar_with(&text, args).fetch_one(pool).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_placeholders_in_order() {
        let mut sql = Sql::new("SELECT 1 WHERE a = ");
        sql.bind(1_i64).push(" AND b = ").bind("x".to_string());
        assert_eq!(sql.text, "SELECT 1 WHERE a = $1 AND b = $2");
        assert_eq!(sql.count, 2);
    }
}
