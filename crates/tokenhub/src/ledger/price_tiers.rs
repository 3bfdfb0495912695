//! A model's alternative prices and when each applies.
//!
//! A price tier is applied either because the upstream's answer says it served the
//! request in a service tier (OpenAI `service_tier`: `priority`, `flex`), or because the
//! request started inside a UTC time window (DeepSeek's peak hours). Its prices are the
//! model's standard prices times a `multiplier`, with any class given explicitly taking
//! its own value. A derived price is rounded up to a whole nano-USD per 1M tokens when
//! the catalogue is built; the cost of a request is still one exact sum, rounded once.
//!
//! The same type is read from the TOML file, the admin API and the catalogue's stored
//! JSON, through `PriceTierSpec` (decimal USD strings, `"HH:MM-HH:MM"` windows), and is
//! validated on the way in.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::money::{Nanos, PerMillion, Prices};

/// The label of a usage record billed at the model's own prices.
pub const STANDARD: &str = "standard";

const MINUTES_PER_DAY: u32 = 24 * 60;
const MINUTES_PER_WEEK: u32 = 7 * MINUTES_PER_DAY;
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const ALL_DAYS: u8 = 0b111_1111;
/// 1 as a multiplier, in billionths.
const ONE: i64 = 1_000_000_000;

/// One alternative set of prices for a model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PriceTierSpec", into = "PriceTierSpec")]
pub struct PriceTier {
    /// What the usage record says was applied (e.g. `priority`, `peak`).
    pub name: String,
    pub applies: Applies,
    /// Billionths: `ONE` keeps the standard prices.
    multiplier: i64,
    overrides: ClassPrices,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applies {
    /// The upstream's answer reports this `service_tier`.
    ServiceTier(String),
    /// The request started inside this window.
    Window(UtcWindow),
}

/// Ranges of minutes of the day `[start, end)` in UTC on some days of the week; `end <
/// start` crosses midnight (the day is the one the range opens on); `end` = 1440 is 24:00.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UtcWindow {
    ranges: Vec<(u32, u32)>,
    /// Bit 0 = Monday.
    days: u8,
}

/// Prices given explicitly for some classes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ClassPrices {
    input: Option<Nanos>,
    cached_input: Option<Nanos>,
    explicit_cached_input: Option<Nanos>,
    cache_write: Option<Nanos>,
    cache_write_1h: Option<Nanos>,
    output: Option<Nanos>,
}

/// A price tier as written by an operator.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceTierSpec {
    /// The label written on usage records billed at this tier: lowercase letters, digits,
    /// `_` or `-`, and not `standard`.
    #[schema(example = "priority")]
    pub name: String,
    /// Applies when the upstream's answer reports this `service_tier`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "priority")]
    pub service_tier: Option<String>,
    /// Applies to requests started in this UTC window: `"HH:MM-HH:MM"` ranges separated
    /// by commas; a range may cross midnight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "01:00-04:00,06:00-10:00")]
    pub utc: Option<String>,
    /// With `utc`: the days the window opens on (`mon` … `sun`); absent = every day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<Vec<String>>,
    /// Applied to each of the model's prices not given below; absent = 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "2")]
    pub multiplier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_usd_per_mtok: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_usd_per_mtok: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input_usd_per_mtok: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explicit_cached_input_usd_per_mtok: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_usd_per_mtok: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_1h_usd_per_mtok: Option<String>,
}

impl TryFrom<PriceTierSpec> for PriceTier {
    type Error = String;

    fn try_from(spec: PriceTierSpec) -> Result<PriceTier, String> {
        let name = spec.name;
        let valid_name = !name.is_empty()
            && name.len() <= 32
            && name != STANDARD
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !valid_name {
            return Err(format!(
                "price tier name '{name}' must be 1-32 lowercase letters, digits, '_' or '-', and not '{STANDARD}'"
            ));
        }
        let context = |e: String| format!("price tier '{name}': {e}");
        let applies = match (spec.service_tier, spec.utc) {
            (Some(tier), None) if spec.days.is_none() && !tier.trim().is_empty() => {
                Applies::ServiceTier(tier)
            }
            (None, Some(utc)) => {
                Applies::Window(UtcWindow::parse(&utc, spec.days.as_deref()).map_err(context)?)
            }
            _ => {
                return Err(context(
                    "give exactly one of service_tier or utc (days go with utc)".into(),
                ));
            }
        };
        let multiplier = match spec.multiplier.as_deref() {
            None => ONE,
            Some(text) => match text.parse::<Nanos>() {
                Ok(Nanos(billionths)) if billionths >= 0 => billionths,
                _ => {
                    return Err(context(format!(
                        "multiplier '{text}' must be a non-negative decimal with at most 9 places"
                    )));
                }
            },
        };
        let price = |field: &str, text: Option<String>| -> Result<Option<Nanos>, String> {
            let Some(text) = text else { return Ok(None) };
            match text.parse::<Nanos>() {
                Ok(price) if price >= Nanos::ZERO => Ok(Some(price)),
                Ok(_) => Err(context(format!("{field} must not be negative"))),
                Err(e) => Err(context(format!("{field}: {e}"))),
            }
        };
        let overrides = ClassPrices {
            input: price("input_usd_per_mtok", spec.input_usd_per_mtok)?,
            output: price("output_usd_per_mtok", spec.output_usd_per_mtok)?,
            cached_input: price("cached_input_usd_per_mtok", spec.cached_input_usd_per_mtok)?,
            explicit_cached_input: price(
                "explicit_cached_input_usd_per_mtok",
                spec.explicit_cached_input_usd_per_mtok,
            )?,
            cache_write: price("cache_write_usd_per_mtok", spec.cache_write_usd_per_mtok)?,
            cache_write_1h: price(
                "cache_write_1h_usd_per_mtok",
                spec.cache_write_1h_usd_per_mtok,
            )?,
        };
        Ok(PriceTier {
            name,
            applies,
            multiplier,
            overrides,
        })
    }
}

impl From<PriceTier> for PriceTierSpec {
    fn from(tier: PriceTier) -> PriceTierSpec {
        let usd = |price: Option<Nanos>| price.map(Nanos::to_usd_string);
        let (service_tier, utc, days) = match tier.applies {
            Applies::ServiceTier(service_tier) => (Some(service_tier), None, None),
            Applies::Window(window) => (None, Some(window.range_text()), window.day_names()),
        };
        PriceTierSpec {
            name: tier.name,
            service_tier,
            utc,
            days,
            multiplier: (tier.multiplier != ONE).then(|| Nanos(tier.multiplier).to_usd_string()),
            input_usd_per_mtok: usd(tier.overrides.input),
            output_usd_per_mtok: usd(tier.overrides.output),
            cached_input_usd_per_mtok: usd(tier.overrides.cached_input),
            explicit_cached_input_usd_per_mtok: usd(tier.overrides.explicit_cached_input),
            cache_write_usd_per_mtok: usd(tier.overrides.cache_write),
            cache_write_1h_usd_per_mtok: usd(tier.overrides.cache_write_1h),
        }
    }
}

impl UtcWindow {
    fn parse(text: &str, days: Option<&[String]>) -> Result<UtcWindow, String> {
        let ranges = text
            .split(',')
            .map(parse_range)
            .collect::<Result<Vec<_>, _>>()?;
        let days = match days {
            None => ALL_DAYS,
            Some([]) => return Err("days must name at least one day".into()),
            Some(names) => names.iter().try_fold(0u8, |set, name| {
                DAY_NAMES
                    .iter()
                    .position(|day| name.eq_ignore_ascii_case(day))
                    .map(|index| set | 1 << index)
                    .ok_or_else(|| format!("'{name}' is not a day (mon … sun)"))
            })?,
        };
        let window = UtcWindow { ranges, days };
        let spans = window.spans();
        for (index, (a, b)) in spans.iter().enumerate() {
            if spans[..index].iter().any(|(c, d)| a < d && c < b) {
                return Err(format!("utc '{text}' has overlapping ranges"));
            }
        }
        Ok(window)
    }

    fn range_text(&self) -> String {
        let text = |at: u32| format!("{:02}:{:02}", at / 60, at % 60);
        let ranges: Vec<String> = self
            .ranges
            .iter()
            .map(|(start, end)| format!("{}-{}", text(*start), text(*end)))
            .collect();
        ranges.join(",")
    }

    fn day_names(&self) -> Option<Vec<String>> {
        (self.days != ALL_DAYS).then(|| {
            (0..7)
                .filter(|day| self.days & (1 << day) != 0)
                .map(|day| DAY_NAMES[day].to_string())
                .collect()
        })
    }

    /// The window as minutes of the week (Monday 00:00 UTC = 0), `[from, to)`, split where
    /// it wraps past the end of Sunday.
    fn spans(&self) -> Vec<(u32, u32)> {
        let mut spans = Vec::new();
        let days = (0..7u32).filter(|day| self.days & (1 << day) != 0);
        for (day, (start, end)) in days.flat_map(|day| self.ranges.iter().map(move |r| (day, r))) {
            let length = if end > start {
                end - start
            } else {
                end + MINUTES_PER_DAY - start
            };
            let from = day * MINUTES_PER_DAY + start;
            let to = from + length;
            if to <= MINUTES_PER_WEEK {
                spans.push((from, to));
            } else {
                spans.push((from, MINUTES_PER_WEEK));
                spans.push((0, to - MINUTES_PER_WEEK));
            }
        }
        spans
    }

    pub fn contains(&self, unix_ms: i64) -> bool {
        let at = minute_of_week(unix_ms);
        self.spans()
            .iter()
            .any(|(from, to)| (*from..*to).contains(&at))
    }

    fn overlaps(&self, other: &UtcWindow) -> bool {
        let theirs = other.spans();
        self.spans()
            .iter()
            .any(|(a, b)| theirs.iter().any(|(c, d)| a < d && c < b))
    }
}

/// `"HH:MM-HH:MM"` as minutes of the day; `"24:00"` closes a range at the end of the day.
fn parse_range(range: &str) -> Result<(u32, u32), String> {
    let malformed = || format!("utc range '{}' is not \"HH:MM-HH:MM\"", range.trim());
    let (start, end) = range.split_once('-').ok_or_else(malformed)?;
    let minute = |text: &str, latest: u32| -> Option<u32> {
        let (hours, minutes) = text.trim().split_once(':')?;
        let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !two_digits(hours) || !two_digits(minutes) {
            return None;
        }
        let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
        let at = hours * 60 + minutes;
        (minutes < 60 && at <= latest).then_some(at)
    };
    let start = minute(start, MINUTES_PER_DAY - 1).ok_or_else(malformed)?;
    let end = minute(end, MINUTES_PER_DAY).ok_or_else(malformed)?;
    if start == end {
        return Err(format!("utc range '{}' is empty", range.trim()));
    }
    Ok((start, end))
}

/// Minutes since Monday 00:00 UTC. 1970-01-01 was a Thursday (day 3 of the week).
fn minute_of_week(unix_ms: i64) -> u32 {
    let minutes = unix_ms.div_euclid(60_000);
    let since_monday = minutes + 3 * i64::from(MINUTES_PER_DAY);
    u32::try_from(since_monday.rem_euclid(i64::from(MINUTES_PER_WEEK))).unwrap_or(0)
}

impl PriceTier {
    /// This tier's prices, from the model's standard prices.
    pub fn prices(&self, standard: &Prices) -> Prices {
        let scaled = standard.map(|price| {
            let numerator = i128::from(price.0.0) * i128::from(self.multiplier);
            let rounded_up = (numerator + i128::from(ONE) - 1).div_euclid(i128::from(ONE));
            PerMillion(Nanos(i64::try_from(rounded_up).unwrap_or(i64::MAX)))
        });
        let own = |given: Option<Nanos>, derived: PerMillion| given.map_or(derived, PerMillion);
        let o = &self.overrides;
        Prices {
            input: own(o.input, scaled.input),
            cached_input: own(o.cached_input, scaled.cached_input),
            explicit_cached_input: own(o.explicit_cached_input, scaled.explicit_cached_input),
            cache_write_input: own(o.cache_write, scaled.cache_write_input),
            cache_write_1h_input: own(o.cache_write_1h, scaled.cache_write_1h_input),
            output: own(o.output, scaled.output),
        }
    }
}

/// The rules a model's tiers must keep together: distinct names, one tier per service
/// tier, and windows that never overlap (so one price is in force at any time).
pub fn validate(tiers: &[PriceTier]) -> Result<(), String> {
    for (index, tier) in tiers.iter().enumerate() {
        for earlier in &tiers[..index] {
            if earlier.name == tier.name {
                return Err(format!("two price tiers are named '{}'", tier.name));
            }
            match (&earlier.applies, &tier.applies) {
                (Applies::ServiceTier(a), Applies::ServiceTier(b)) if a == b => {
                    return Err(format!(
                        "price tiers '{}' and '{}' both apply to service_tier '{a}'",
                        earlier.name, tier.name
                    ));
                }
                (Applies::Window(a), Applies::Window(b)) if a.overlaps(b) => {
                    return Err(format!(
                        "the windows of price tiers '{}' and '{}' overlap",
                        earlier.name, tier.name
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// A model's prices beyond input, output, cache reads and 5-minute cache writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PriceRules {
    /// 1-hour cache writes; `None` = 2× input for a model an Anthropic channel serves
    /// (Anthropic's rule; no other provider reports them), else the cache-write price.
    pub cache_write_1h: Option<Nanos>,
    /// Hits of an explicit cache (DashScope); `None` = the cache-read price.
    pub explicit_cached_input: Option<Nanos>,
    pub tiers: Vec<PriceTier>,
}

impl PriceRules {
    pub fn any_negative(&self) -> bool {
        [self.cache_write_1h, self.explicit_cached_input]
            .into_iter()
            .flatten()
            .any(|price| price < Nanos::ZERO)
    }

    /// The tiers as stored in the catalogue's `price_tiers` column.
    pub fn tiers_json(&self) -> String {
        serde_json::to_string(&self.tiers).unwrap_or_else(|_| "[]".into())
    }

    /// Reads the `price_tiers` column; rows written by this code always parse.
    pub fn tiers_from_json(json: Option<&str>) -> Result<Vec<PriceTier>, String> {
        match json.filter(|text| !text.trim().is_empty()) {
            None => Ok(Vec::new()),
            Some(text) => serde_json::from_str(text).map_err(|e| e.to_string()),
        }
    }
}

/// Prices chosen for a request, and the label its usage record carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PriceChoice {
    pub tier: String,
    pub prices: Prices,
}

/// A model's standard prices and its tiers, resolved once per catalogue snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pricing {
    pub standard: Prices,
    tiers: Vec<(Applies, PriceChoice)>,
}

impl Pricing {
    pub fn new(standard: Prices, tiers: &[PriceTier]) -> Pricing {
        let tiers = tiers
            .iter()
            .map(|tier| {
                let choice = PriceChoice {
                    tier: tier.name.clone(),
                    prices: tier.prices(&standard),
                };
                (tier.applies.clone(), choice)
            })
            .collect();
        Pricing { standard, tiers }
    }

    /// The prices in force when a request starts (`unix_ms`): a window's, or the standard.
    pub fn at_start(&self, unix_ms: i64) -> PriceChoice {
        self.tiers
            .iter()
            .find(|(applies, _)| matches!(applies, Applies::Window(w) if w.contains(unix_ms)))
            .map(|(_, choice)| choice.clone())
            .unwrap_or_else(|| PriceChoice {
                tier: STANDARD.to_string(),
                prices: self.standard,
            })
    }

    /// The prices of the service tier an upstream reported, if the model prices it apart.
    pub fn for_service_tier(&self, service_tier: &str) -> Option<&PriceChoice> {
        self.tiers
            .iter()
            .find(|(applies, _)| matches!(applies, Applies::ServiceTier(t) if t == service_tier))
            .map(|(_, choice)| choice)
    }

    /// The most a request may cost: the prices in force at its start, or any service
    /// tier's, since the upstream decides the tier only when it answers.
    pub fn worst_case_cost(&self, at_start: &Prices, prompt: u64, completion: u64) -> Nanos {
        self.tiers
            .iter()
            .filter(|(applies, _)| matches!(applies, Applies::ServiceTier(_)))
            .map(|(_, choice)| &choice.prices)
            .chain([at_start])
            .map(|prices| prices.worst_case_cost(prompt, completion))
            .max()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: i64 = 3_600_000;
    const DAY_MS: i64 = 24 * HOUR_MS;
    /// 1970-01-01 was a Thursday.
    const THURSDAY: i64 = 0;
    const SATURDAY: i64 = 2 * DAY_MS;
    const MONDAY: i64 = 4 * DAY_MS;

    fn tier(json: serde_json::Value) -> Result<PriceTier, String> {
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    fn window(utc: &str, days: Option<&[&str]>) -> UtcWindow {
        let days: Option<Vec<String>> = days.map(|d| d.iter().map(|s| s.to_string()).collect());
        UtcWindow::parse(utc, days.as_deref()).unwrap()
    }

    fn usd(text: &str) -> PerMillion {
        PerMillion(text.parse().unwrap())
    }

    #[test]
    fn a_window_may_cross_midnight_and_the_end_of_the_week() {
        let evening = window("16:30-00:30", None);
        assert!(evening.contains(THURSDAY + 17 * HOUR_MS));
        assert!(
            evening.contains(THURSDAY + 15 * 60_000),
            "00:15 is in Wednesday's window"
        );
        assert!(
            evening.contains(THURSDAY + 16 * HOUR_MS + 30 * 60_000),
            "opens at 16:30"
        );
        assert!(!evening.contains(THURSDAY + 30 * 60_000), "closes at 00:30");
        assert!(!evening.contains(THURSDAY + 12 * HOUR_MS));
        let weekdays = window("01:00-04:00", Some(&["mon", "tue", "wed", "thu", "fri"]));
        assert!(weekdays.contains(THURSDAY + 2 * HOUR_MS));
        assert!(!weekdays.contains(SATURDAY + 2 * HOUR_MS));
        let sunday_night = window("23:00-01:00", Some(&["sun"]));
        assert!(sunday_night.contains(MONDAY + 30 * 60_000));
        assert!(!sunday_night.contains(MONDAY + 2 * HOUR_MS));
        assert!(window("00:00-24:00", Some(&["sat"])).contains(SATURDAY + 23 * HOUR_MS));
        let two = window("01:00-04:00, 06:00-10:00", None);
        assert!(two.contains(THURSDAY + 7 * HOUR_MS) && !two.contains(THURSDAY + 5 * HOUR_MS));
    }

    #[test]
    fn tiers_round_trip_through_their_written_form() {
        let written = serde_json::json!({
            "name": "peak", "utc": "01:00-04:00", "days": ["mon", "fri"],
            "multiplier": "2", "output_usd_per_mtok": "1.5"
        });
        let peak = tier(written.clone()).unwrap();
        assert_eq!(serde_json::to_value(&peak).unwrap(), written);
        let priority =
            tier(serde_json::json!({"name": "priority", "service_tier": "priority"})).unwrap();
        assert_eq!(priority.applies, Applies::ServiceTier("priority".into()));
        let toml_text = "name = \"off_peak\"\nutc = \"16:30-24:00\"\nmultiplier = \"0.5\"\n";
        let from_toml: PriceTier = toml::from_str(toml_text).unwrap();
        assert_eq!(toml::to_string(&from_toml).unwrap(), toml_text);
    }

    #[test]
    fn malformed_tiers_are_refused_with_a_reason() {
        let refused = [
            serde_json::json!({"name": "standard", "service_tier": "priority"}),
            serde_json::json!({"name": "Peak", "utc": "01:00-02:00"}),
            serde_json::json!({"name": "x", "service_tier": "priority", "utc": "01:00-02:00"}),
            serde_json::json!({"name": "x"}),
            serde_json::json!({"name": "x", "service_tier": "flex", "days": ["mon"]}),
            serde_json::json!({"name": "x", "utc": "25:00-01:00"}),
            serde_json::json!({"name": "x", "utc": "1:00-2:00"}),
            serde_json::json!({"name": "x", "utc": "02:00-02:00"}),
            serde_json::json!({"name": "x", "utc": "01:00-04:00,03:00-05:00"}),
            serde_json::json!({"name": "x", "utc": "01:00-02:00", "days": ["funday"]}),
            serde_json::json!({"name": "x", "utc": "01:00-02:00", "days": []}),
            serde_json::json!({"name": "x", "service_tier": "flex", "multiplier": "-1"}),
            serde_json::json!({"name": "x", "service_tier": "flex", "input_usd_per_mtok": "-1"}),
            serde_json::json!({"name": "x", "service_tier": "flex", "bogus": 1}),
        ];
        for json in refused {
            assert!(tier(json.clone()).is_err(), "{json}");
        }
    }

    #[test]
    fn a_model_has_one_price_at_any_time_and_one_tier_per_service_tier() {
        let t = |json| tier(json).unwrap();
        let peak_am = t(serde_json::json!({"name": "peak", "utc": "01:00-04:00"}));
        let peak_pm = t(serde_json::json!({"name": "peak2", "utc": "06:00-10:00"}));
        let evening = t(serde_json::json!({"name": "off_peak", "utc": "16:30-01:30"}));
        let weekend =
            t(serde_json::json!({"name": "weekend", "utc": "03:00-05:00", "days": ["sat"]}));
        let weekday =
            t(serde_json::json!({"name": "weekday", "utc": "03:00-05:00", "days": ["fri"]}));
        assert!(validate(&[peak_am.clone(), peak_pm.clone()]).is_ok());
        assert!(
            validate(&[weekend, weekday]).is_ok(),
            "same hours, other days"
        );
        assert!(
            validate(&[peak_am.clone(), evening])
                .unwrap_err()
                .contains("overlap")
        );
        assert!(validate(&[peak_am.clone(), peak_am.clone()]).is_err());
        let flex = t(serde_json::json!({"name": "flex", "service_tier": "flex"}));
        let flex_again = t(serde_json::json!({"name": "cheap", "service_tier": "flex"}));
        assert!(validate(&[flex.clone(), peak_am]).is_ok());
        assert!(validate(&[flex, flex_again]).is_err());
    }

    #[test]
    fn tier_prices_derive_from_the_standard_ones_unless_given() {
        let standard = Prices {
            input: usd("0.27"),
            cached_input: usd("0.07"),
            output: usd("1.10"),
            ..Prices::default()
        };
        let half = tier(serde_json::json!({
            "name": "off_peak", "utc": "16:30-00:30", "multiplier": "0.5",
            "output_usd_per_mtok": "0.5"
        }))
        .unwrap();
        let prices = half.prices(&standard);
        assert_eq!(prices.input, usd("0.135"));
        assert_eq!(prices.cached_input, usd("0.035"));
        assert_eq!(prices.output, usd("0.5"), "a class given explicitly wins");
        let odd = Prices {
            input: PerMillion(Nanos(3)),
            ..Prices::default()
        };
        assert_eq!(
            half.prices(&odd).input,
            PerMillion(Nanos(2)),
            "1.5 rounds up"
        );
    }

    #[test]
    fn the_start_picks_the_window_and_the_worst_case_covers_every_service_tier() {
        let standard = Prices {
            input: usd("1"),
            output: usd("2"),
            ..Prices::default()
        };
        let tiers: Vec<PriceTier> = [
            serde_json::json!({"name": "peak", "utc": "01:00-04:00", "multiplier": "2"}),
            serde_json::json!({"name": "priority", "service_tier": "priority", "multiplier": "3"}),
            serde_json::json!({"name": "flex", "service_tier": "flex", "multiplier": "0.5"}),
        ]
        .into_iter()
        .map(|json| tier(json).unwrap())
        .collect();
        let pricing = Pricing::new(standard, &tiers);
        let peak = pricing.at_start(THURSDAY + 2 * HOUR_MS);
        assert_eq!((peak.tier.as_str(), peak.prices.input), ("peak", usd("2")));
        let quiet = pricing.at_start(THURSDAY + 5 * HOUR_MS);
        assert_eq!((quiet.tier.as_str(), quiet.prices), (STANDARD, standard));
        assert_eq!(
            pricing.for_service_tier("flex").unwrap().prices.output,
            usd("1")
        );
        assert!(pricing.for_service_tier("default").is_none());
        // 1000 prompt + 100 output at priority (3× of $1/$2): 3000 + 600 nano-USD... per token
        assert_eq!(
            pricing.worst_case_cost(&quiet.prices, 1000, 100),
            Nanos(1000 * 3000 + 100 * 6000)
        );
    }
}
