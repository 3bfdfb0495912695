//! Usage listings and aggregates for the management API. Filters are bound parameters of
//! `sql::Sql`; only fixed column expressions chosen from enums are pushed as SQL.

use std::collections::BTreeMap;

use sqlx::Row;

use super::sql::Sql;

use super::rollups::{
    DAY_MS, HOUR_MS, LATENCY_BUCKETS, histogram_percentile, hour_of, latency_bucket_count,
    latency_column,
};
use super::usage::{RECORD_COLUMNS, record_from_row};
use super::{Backend, Store, StoreResult, UsageRecord};
use crate::ledger::money::Nanos;

/// Which records a query covers. Every field narrows; `None` means any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageFilter {
    pub user_id: Option<i64>,
    pub key_id: Option<i64>,
    pub model: Option<String>,
    pub channel_id: Option<i64>,
    pub status: Option<StatusFilter>,
    /// Unix ms, inclusive.
    pub from: Option<i64>,
    /// Unix ms, exclusive.
    pub to: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    /// HTTP status below 400.
    Ok,
    /// HTTP status 400 or above.
    Error,
    Code(u16),
}

/// What aggregates are grouped by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// UTC day (the key is `YYYY-MM-DD`).
    Day,
    Model,
    User,
    Key,
}

/// The summed columns an aggregate reads, before the latency buckets (`Summed`'s order).
const AGGREGATED_COLUMNS: [&str; 5] = [
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "cost_nano",
];

/// Where aggregates are read from: rollups for whole hours, records for the parts of
/// hours at the edges of a range that does not start or end on the hour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// Per user and key (`usage_rollups`).
    OwnerRollups,
    /// Everyone together (`usage_rollups_global`): no user or key filter or group.
    GlobalRollups,
    /// Running totals per key (`usage_rollups_key_running`, listed by
    /// `usage_rollups_key_totals`): grouped by key over whole days, with no other filter;
    /// at most two rows per key whatever the range.
    KeyRunningTotals,
    /// Per user and day (`usage_rollups_user_daily`): grouped by user, or one user's days,
    /// over whole days with no other filter.
    UserDailyRollups,
    Records,
}

impl Source {
    fn table(self) -> &'static str {
        match self {
            Source::OwnerRollups => "usage_rollups",
            Source::GlobalRollups => "usage_rollups_global",
            Source::KeyRunningTotals => "usage_rollups_key_running",
            Source::UserDailyRollups => "usage_rollups_user_daily",
            Source::Records => "usage_records",
        }
    }

    fn time_column(self) -> &'static str {
        match self {
            Source::Records => "created_at",
            Source::KeyRunningTotals | Source::UserDailyRollups => "day",
            Source::OwnerRollups | Source::GlobalRollups => "hour",
        }
    }

    fn group_expression(self, group: GroupBy) -> String {
        match group {
            GroupBy::Day => format!("{} / 86400000", self.time_column()),
            GroupBy::Model => "model".into(),
            GroupBy::User => "user_id".into(),
            GroupBy::Key => "key_id".into(),
        }
    }

    /// The aggregate columns: requests, errors, prompt and completion tokens, cost, then
    /// the latency histogram's buckets.
    fn aggregates(self) -> Vec<String> {
        let (requests, errors) = match self {
            Source::Records => ("COUNT(*)", "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END)"),
            _ => ("SUM(requests)", "SUM(errors)"),
        };
        let latency = (0..LATENCY_BUCKETS).map(|bucket| match self {
            Source::Records => latency_bucket_count(bucket),
            _ => format!("SUM({})", latency_column(bucket)),
        });
        [requests, errors]
            .into_iter()
            .map(String::from)
            .chain(AGGREGATED_COLUMNS[2..].iter().map(|c| format!("SUM({c})")))
            .chain(latency)
            .enumerate()
            .map(|(column, sum)| {
                format!(
                    "CAST(COALESCE({sum}, 0) AS BIGINT) AS {}",
                    aggregate_alias(column)
                )
            })
            .collect()
    }
}

/// Where requests and cost stand among the aggregate columns (`AGGREGATED_COLUMNS`), the
/// two a summary's groups are ranked by.
const REQUESTS: usize = 0;
const COST: usize = 4;

/// How many aggregate columns follow the group key (`Summed`).
const AGGREGATE_COLUMNS: usize = AGGREGATED_COLUMNS.len() + LATENCY_BUCKETS;

/// The name of an aggregate column, so a query can rank and sum what a part answers.
fn aggregate_alias(column: usize) -> String {
    format!("a{column:02}")
}

impl Source {
    /// The smallest rollup table that answers `filter` grouped by `group` and reads only
    /// the rows it needs through an index: the daily tables carry no model, channel or
    /// status and split no day; one key's rows are found through the hourly table's
    /// `(key_id, hour)` index (the per-key daily table is indexed by day first).
    fn rollups_for(filter: &UsageFilter, group: GroupBy) -> Source {
        let other_filter =
            filter.model.is_some() || filter.channel_id.is_some() || filter.status.is_some();
        let whole_days = [filter.from, filter.to]
            .iter()
            .all(|bound| bound.is_none_or(|ms| ms % DAY_MS == 0));
        let daily = !other_filter && whole_days && group != GroupBy::Model;
        match (filter.user_id, filter.key_id, group) {
            (None, None, GroupBy::User) if daily => Source::UserDailyRollups,
            (None, None, GroupBy::Key) if daily => Source::KeyRunningTotals,
            (Some(_), None, GroupBy::Day | GroupBy::User) if daily => Source::UserDailyRollups,
            (None, None, GroupBy::Day | GroupBy::Model) => Source::GlobalRollups,
            _ => Source::OwnerRollups,
        }
    }
}

/// The parts of `[from, to)` read from rollups (whole hours) and from records (the parts
/// of hours at either edge).
#[derive(Debug, PartialEq, Eq)]
struct Spans {
    hours: Option<(Option<i64>, Option<i64>)>,
    edges: Vec<(i64, i64)>,
}

impl Spans {
    fn of(from: Option<i64>, to: Option<i64>) -> Spans {
        let first_hour = from.map(|from| hour_of(from + HOUR_MS - 1));
        let end_hour = to.map(hour_of);
        if let (Some(from), Some(to), Some(first), Some(end)) = (from, to, first_hour, end_hour)
            && first >= end
        {
            // Within one hour, or across one hour boundary with no whole hour between.
            return Spans {
                hours: None,
                edges: (from < to).then_some((from, to)).into_iter().collect(),
            };
        }
        let head = from.zip(first_hour).filter(|(from, first)| from < first);
        let tail = end_hour.zip(to).filter(|(end, to)| end < to);
        Spans {
            hours: Some((first_hour, end_hour)),
            edges: head.into_iter().chain(tail).collect(),
        }
    }
}

/// A group's key before it is written out: numbers order as numbers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum GroupKey {
    Number(i64),
    Text(String),
}

/// The number of records matching a filter, up to a cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CappedCount {
    /// Every match when not `capped`, else the cap.
    pub total: i64,
    /// More records match than `total`.
    pub capped: bool,
}

/// Totals of one group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageAggregate {
    pub group: String,
    pub requests: i64,
    pub errors: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost: Nanos,
    pub latency_p50_ms: Option<i64>,
    pub latency_p95_ms: Option<i64>,
}

/// The filter's conditions except its time range, which `Spans` splits.
fn push_dimensions(builder: &mut Sql<'_>, filter: &UsageFilter) {
    builder.push(" WHERE 1 = 1");
    if let Some(user_id) = filter.user_id {
        builder.push(" AND user_id = ").bind(user_id);
    }
    if let Some(key_id) = filter.key_id {
        builder.push(" AND key_id = ").bind(key_id);
    }
    if let Some(model) = &filter.model {
        builder.push(" AND model = ").bind(model.clone());
    }
    if let Some(channel_id) = filter.channel_id {
        builder.push(" AND channel_id = ").bind(channel_id);
    }
    match filter.status {
        Some(StatusFilter::Ok) => {
            builder.push(" AND status < 400");
        }
        Some(StatusFilter::Error) => {
            builder.push(" AND status >= 400");
        }
        Some(StatusFilter::Code(code)) => {
            builder.push(" AND status = ").bind(i64::from(code));
        }
        None => {}
    }
}

fn push_time(builder: &mut Sql<'_>, column: &str, from: Option<i64>, to: Option<i64>) {
    if let Some(from) = from {
        builder.push(&format!(" AND {column} >= ")).bind(from);
    }
    if let Some(to) = to {
        builder.push(&format!(" AND {column} < ")).bind(to);
    }
}

fn push_filters(builder: &mut Sql<'_>, filter: &UsageFilter) {
    push_dimensions(builder, filter);
    push_time(builder, "created_at", filter.from, filter.to);
}

fn group_key(row: &sqlx::any::AnyRow, group: GroupBy) -> StoreResult<GroupKey> {
    let key = ranked_group_key(row, group)?;
    Ok(key.ok_or_else(|| sqlx::Error::Decode("a usage group without its key".into()))?)
}

/// The key of a ranked row; none for the row summing the groups after the leading ones.
fn ranked_group_key(row: &sqlx::any::AnyRow, group: GroupBy) -> StoreResult<Option<GroupKey>> {
    Ok(match group {
        GroupBy::Model => row.try_get::<Option<String>, _>("k")?.map(GroupKey::Text),
        GroupBy::User | GroupBy::Key | GroupBy::Day => {
            row.try_get::<Option<i64>, _>("k")?.map(GroupKey::Number)
        }
    })
}

fn group_name(key: GroupKey, group: GroupBy) -> String {
    match (key, group) {
        (GroupKey::Number(days), GroupBy::Day) => day_string(days),
        (GroupKey::Number(n), _) => n.to_string(),
        (GroupKey::Text(text), _) => text,
    }
}

fn day_string(days_since_epoch: i64) -> String {
    let date = time::OffsetDateTime::from_unix_timestamp(days_since_epoch * 86_400)
        .map(|t| t.date())
        .unwrap_or(time::Date::MIN);
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// `SELECT group AS k, aggregates FROM source WHERE filter GROUP BY group`.
fn grouped_sums<'q>(
    source: Source,
    filter: &UsageFilter,
    group: GroupBy,
    from: Option<i64>,
    to: Option<i64>,
) -> Sql<'q> {
    let expression = source.group_expression(group);
    let mut select = Sql::new(format!(
        "SELECT {expression} AS k, {} FROM {}",
        source.aggregates().join(", "),
        source.table()
    ));
    push_dimensions(&mut select, filter);
    push_time(&mut select, source.time_column(), from, to);
    select.push(&format!(" GROUP BY {expression}"));
    select
}

/// Totals per key over the whole days `[from, to)`, from the running totals: each key's
/// last row before `to` minus its last row before `from` (none: zero), for the keys used
/// in the range, in the columns of `Source::aggregates`. The keys come from their totals
/// of all time (`usage_rollups_key_totals`, one row each), which are also the end of a
/// range that runs to now; each other bound is one index seek per key (neither database
/// skips along an index by itself: walking the running totals' index key by key was half
/// of this query on PostgreSQL).
fn key_running_totals<'q>(backend: Backend, from: Option<i64>, to: Option<i64>) -> Sql<'q> {
    let ending = if to.is_some() { "ending" } else { "totals" };
    let differences: Vec<String> = AGGREGATED_COLUMNS
        .iter()
        .map(|c| (*c).to_owned())
        .chain((0..LATENCY_BUCKETS).map(latency_column))
        .enumerate()
        .map(|(column, c)| {
            let alias = aggregate_alias(column);
            let start = if from.is_some() {
                format!(" - COALESCE(starting.{c}, 0)")
            } else {
                String::new()
            };
            format!("CAST({ending}.{c}{start} AS BIGINT) AS {alias}")
        })
        .collect();
    let mut select = Sql::new(format!(
        "SELECT totals.key_id AS k, {} FROM usage_rollups_key_totals AS totals",
        differences.join(", ")
    ));
    if let Some(to) = to {
        join_last_row_before(&mut select, backend, "JOIN", "ending", to);
    }
    if let Some(from) = from {
        join_last_row_before(&mut select, backend, "LEFT JOIN", "starting", from);
        select.push(&format!(
            " WHERE {ending}.requests > COALESCE(starting.requests, 0)"
        ));
    } else {
        select.push(&format!(" WHERE {ending}.requests > 0"));
    }
    select
}

/// Joins each key's last running row before `before` as `alias`, one index seek per key.
/// PostgreSQL's planner hashes the whole running table for the join SQLite runs as a
/// seek per key (10,000 keys: 280 ms against 35 ms), so it gets a lateral subquery.
fn join_last_row_before(
    select: &mut Sql<'_>,
    backend: Backend,
    join: &str,
    alias: &str,
    before: i64,
) {
    let running = Source::KeyRunningTotals.table();
    match backend {
        Backend::Postgres => select.push(&format!(
            " {join} LATERAL (SELECT * FROM {running} AS r WHERE r.key_id = totals.key_id \
             AND r.day < "
        )),
        Backend::Sqlite => select.push(&format!(
            " {join} {running} AS {alias} ON {alias}.key_id = totals.key_id AND {alias}.day = \
             (SELECT MAX(r.day) FROM {running} AS r WHERE r.key_id = totals.key_id AND r.day < "
        )),
    };
    select.bind(before);
    match backend {
        Backend::Postgres => {
            select.push(&format!(" ORDER BY r.day DESC LIMIT 1) AS {alias} ON TRUE"))
        }
        Backend::Sqlite => select.push(")"),
    };
}

impl Store {
    /// How many records match `filter`, counting no further than `cap`: a count of every
    /// match reads every matching record (333 ms at 1 M on SQLite), a capped one at most
    /// `cap` + 1 of them.
    pub async fn usage_count_capped(
        &self,
        filter: &UsageFilter,
        cap: i64,
    ) -> StoreResult<CappedCount> {
        let mut count = Sql::new("SELECT COUNT(*) FROM (SELECT 1 FROM usage_records");
        push_filters(&mut count, filter);
        count
            .push(" LIMIT ")
            .bind(cap.saturating_add(1))
            .push(") AS matching");
        let counted = count.fetch_i64(&self.pool).await?;
        Ok(CappedCount {
            total: counted.min(cap),
            capped: counted > cap,
        })
    }

    /// One page of records matching `filter`, newest first. Ordered by time (then id):
    /// the `(user_id, created_at)`, `(key_id, created_at)` and `(created_at)` indexes hand
    /// a page over in that order, where ordering by id alone sorted every record of the
    /// user or key first (43 ms for a user with 10,000 records on SQLite).
    pub async fn usage_page(
        &self,
        filter: &UsageFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<(i64, UsageRecord)>> {
        let mut select = Sql::new(format!("SELECT id, {RECORD_COLUMNS} FROM usage_records"));
        push_filters(&mut select, filter);
        select
            .push(" ORDER BY created_at DESC, id DESC LIMIT ")
            .bind(limit)
            .push(" OFFSET ")
            .bind(offset);
        let rows = select.fetch_all(&self.pool).await?;
        let records = rows
            .iter()
            .map(|row| Ok((row.try_get("id")?, record_from_row(row)?)))
            .collect::<StoreResult<_>>()?;
        Ok(records)
    }

    /// Totals per group, exact over every matching record, read from the hourly rollups
    /// (and from records for the parts of hours at the edges of the range); latency
    /// percentiles from the rollups' histograms (bucket bounds, see `store/rollups.rs`).
    pub async fn usage_aggregates(
        &self,
        filter: &UsageFilter,
        group: GroupBy,
    ) -> StoreResult<Vec<UsageAggregate>> {
        let groups = self.summed_groups(filter, group).await?;
        Ok(groups
            .into_iter()
            .map(|(key, summed)| summed.aggregate(group_name(key, group)))
            .collect())
    }

    /// `usage_aggregates` cut to the `top` groups with the most requests (then the
    /// highest cost), in that order; the other groups are summed in `others`, so the
    /// totals stay exact however many groups there are (a summary by key of a service
    /// with a million keys is otherwise a million rows). A summary read from one table
    /// is ranked and summed by the database, which then answers `top` + 1 rows: turning
    /// 10,000 rows of 22 columns into `AnyRow`s cost the gateway more than the query.
    pub async fn top_usage_aggregates(
        &self,
        filter: &UsageFilter,
        group: GroupBy,
        top: usize,
    ) -> StoreResult<TopAggregates> {
        if let [(source, from, to)] = parts(filter, group)[..] {
            return self
                .ranked_by_the_database(
                    part_select(self.backend, source, filter, group, from, to),
                    group,
                    top,
                )
                .await;
        }
        let mut groups: Vec<(GroupKey, Summed)> = self
            .summed_groups(filter, group)
            .await?
            .into_iter()
            .collect();
        let total_groups = groups.len();
        // BTreeMap order (the key) breaks ties, so the answer does not vary between calls.
        groups.sort_by(|(_, a), (_, b)| a.rank().cmp(&b.rank()));
        let rest = groups.split_off(top.min(groups.len()));
        let others = (!rest.is_empty()).then(|| {
            let mut sum = Summed::default();
            for (_, summed) in &rest {
                sum.add(summed);
            }
            sum
        });
        Ok(TopAggregates::of(groups, others, total_groups, group))
    }

    /// `select`'s groups ranked as `Summed::rank` orders them: the first `top` as they
    /// are, the rest summed in one row whose key is null, each row with the number of
    /// groups it sums.
    async fn ranked_by_the_database(
        &self,
        mut select: Sql<'_>,
        group: GroupBy,
        top: usize,
    ) -> StoreResult<TopAggregates> {
        let sums: Vec<String> = (0..AGGREGATE_COLUMNS)
            .map(|column| format!("CAST(SUM({0}) AS BIGINT) AS {0}", aggregate_alias(column)))
            .collect();
        let (requests, cost) = (aggregate_alias(REQUESTS), aggregate_alias(COST));
        select.wrap(
            &format!(
                "SELECT CASE WHEN ranked.place <= {top} THEN ranked.k END AS k, {}, \
                 COUNT(*) AS group_count FROM (SELECT g.*, ROW_NUMBER() OVER \
                 (ORDER BY g.{requests} DESC, g.{cost} DESC, g.k) AS place FROM (",
                sums.join(", ")
            ),
            ") AS g) AS ranked GROUP BY 1",
        );
        let mut groups = Vec::new();
        let (mut others, mut total_groups) = (None, 0);
        for row in select.fetch_all(&self.pool).await? {
            let summed = Summed::from_row(&row)?;
            let count: i64 = row.try_get(AGGREGATE_COLUMNS + 1)?;
            total_groups += usize::try_from(count).unwrap_or_default();
            match ranked_group_key(&row, group)? {
                Some(key) => groups.push((key, summed)),
                None => others = Some(summed),
            }
        }
        groups.sort_by(|(a_key, a), (b_key, b)| a.rank().cmp(&b.rank()).then(a_key.cmp(b_key)));
        Ok(TopAggregates::of(groups, others, total_groups, group))
    }

    async fn summed_groups(
        &self,
        filter: &UsageFilter,
        group: GroupBy,
    ) -> StoreResult<BTreeMap<GroupKey, Summed>> {
        let mut groups: BTreeMap<GroupKey, Summed> = BTreeMap::new();
        for (source, from, to) in parts(filter, group) {
            let select = part_select(self.backend, source, filter, group, from, to);
            for row in select.fetch_all(&self.pool).await? {
                groups
                    .entry(group_key(&row, group)?)
                    .or_default()
                    .add(&Summed::from_row(&row)?);
            }
        }
        Ok(groups)
    }
}

/// Where a summary's totals are read from: the rollups for the whole hours of the range,
/// records for the parts of hours at its edges.
fn parts(filter: &UsageFilter, group: GroupBy) -> Vec<(Source, Option<i64>, Option<i64>)> {
    let spans = Spans::of(filter.from, filter.to);
    spans
        .hours
        .map(|(from, to)| (Source::rollups_for(filter, group), from, to))
        .into_iter()
        .chain(
            spans
                .edges
                .iter()
                .map(|(from, to)| (Source::Records, Some(*from), Some(*to))),
        )
        .collect()
}

fn part_select<'q>(
    backend: Backend,
    source: Source,
    filter: &UsageFilter,
    group: GroupBy,
    from: Option<i64>,
    to: Option<i64>,
) -> Sql<'q> {
    match source {
        Source::KeyRunningTotals => key_running_totals(backend, from, to),
        _ => grouped_sums(source, filter, group, from, to),
    }
}

/// The leading groups of a summary, how many there were, and the rest summed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopAggregates {
    pub groups: Vec<UsageAggregate>,
    pub total_groups: usize,
    /// Every group after the leading ones, summed (group `others`); none if there are none.
    pub others: Option<UsageAggregate>,
}

impl TopAggregates {
    fn of(
        groups: Vec<(GroupKey, Summed)>,
        others: Option<Summed>,
        total_groups: usize,
        group: GroupBy,
    ) -> TopAggregates {
        TopAggregates {
            groups: groups
                .into_iter()
                .map(|(key, summed)| summed.aggregate(group_name(key, group)))
                .collect(),
            total_groups,
            others: others.map(|summed| summed.aggregate(String::from("others"))),
        }
    }
}

/// The columns of `Source::aggregates` of one group: requests, errors, prompt tokens,
/// completion tokens, cost; then the latency histogram.
#[derive(Default)]
struct Summed {
    totals: [i64; 5],
    latency: [i64; LATENCY_BUCKETS],
}

impl Summed {
    /// Reads the columns after the group key.
    fn from_row(row: &sqlx::any::AnyRow) -> StoreResult<Summed> {
        let mut summed = Summed::default();
        let columns = summed.totals.iter_mut().chain(summed.latency.iter_mut());
        for (index, value) in columns.enumerate() {
            *value = row.try_get(index + 1)?;
        }
        Ok(summed)
    }

    /// Most requests first, then the highest cost.
    fn rank(&self) -> impl Ord {
        std::cmp::Reverse((self.totals[REQUESTS], self.totals[COST]))
    }

    fn aggregate(&self, group: String) -> UsageAggregate {
        UsageAggregate {
            group,
            requests: self.totals[REQUESTS],
            errors: self.totals[1],
            prompt_tokens: self.totals[2],
            completion_tokens: self.totals[3],
            cost: Nanos(self.totals[COST]),
            latency_p50_ms: histogram_percentile(&self.latency, 0.50),
            latency_p95_ms: histogram_percentile(&self.latency, 0.95),
        }
    }

    fn add(&mut self, other: &Summed) {
        let mine = self.totals.iter_mut().chain(self.latency.iter_mut());
        let theirs = other.totals.iter().chain(&other.latency);
        for (value, more) in mine.zip(theirs) {
            *value += more;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_read_the_smallest_rollup_table_that_answers_them() {
        let days = UsageFilter {
            from: Some(3 * DAY_MS),
            to: Some(5 * DAY_MS),
            ..UsageFilter::default()
        };
        let user = UsageFilter {
            user_id: Some(7),
            ..days.clone()
        };
        let key = UsageFilter {
            key_id: Some(9),
            ..days.clone()
        };
        let hours = UsageFilter {
            from: Some(3 * DAY_MS + HOUR_MS),
            ..days.clone()
        };
        let model = UsageFilter {
            model: Some("m".into()),
            ..days.clone()
        };
        let cases = [
            (&days, GroupBy::User, Source::UserDailyRollups),
            (&days, GroupBy::Key, Source::KeyRunningTotals),
            (&days, GroupBy::Day, Source::GlobalRollups),
            (&days, GroupBy::Model, Source::GlobalRollups),
            (&user, GroupBy::Day, Source::UserDailyRollups),
            (&user, GroupBy::User, Source::UserDailyRollups),
            (&user, GroupBy::Key, Source::OwnerRollups),
            (&user, GroupBy::Model, Source::OwnerRollups),
            (&key, GroupBy::Day, Source::OwnerRollups),
            (&hours, GroupBy::User, Source::OwnerRollups),
            (&hours, GroupBy::Day, Source::GlobalRollups),
            (&model, GroupBy::User, Source::OwnerRollups),
            (&model, GroupBy::Day, Source::GlobalRollups),
        ];
        for (filter, group, source) in cases {
            assert_eq!(
                Source::rollups_for(filter, group),
                source,
                "{filter:?} {group:?}"
            );
        }
    }

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(day_string(0), "1970-01-01");
        assert_eq!(day_string(20_000), "2024-10-04");
    }

    #[test]
    fn ranges_read_whole_hours_from_rollups_and_their_edges_from_records() {
        let h = HOUR_MS;
        assert_eq!(
            Spans::of(None, None),
            Spans {
                hours: Some((None, None)),
                edges: vec![]
            }
        );
        assert_eq!(
            Spans::of(Some(2 * h), Some(5 * h)),
            Spans {
                hours: Some((Some(2 * h), Some(5 * h))),
                edges: vec![]
            }
        );
        assert_eq!(
            Spans::of(Some(2 * h - 10), Some(5 * h + 7)),
            Spans {
                hours: Some((Some(2 * h), Some(5 * h))),
                edges: vec![(2 * h - 10, 2 * h), (5 * h, 5 * h + 7)]
            }
        );
        assert_eq!(
            Spans::of(Some(2 * h + 1), None),
            Spans {
                hours: Some((Some(3 * h), None)),
                edges: vec![(2 * h + 1, 3 * h)]
            }
        );
        // No whole hour inside: records only.
        assert_eq!(
            Spans::of(Some(2 * h + 1), Some(3 * h + 5)),
            Spans {
                hours: None,
                edges: vec![(2 * h + 1, 3 * h + 5)]
            }
        );
        assert_eq!(
            Spans::of(Some(5), Some(5)),
            Spans {
                hours: None,
                edges: vec![]
            }
        );
    }
}
