//! Money is an integer count of nano-USD (1e-9 USD) in an `i64`.
//!
//! Why nano-USD: the cheapest models cost $0.01 per 1M tokens, which is exactly
//! 10 nano-USD per token, so per-token prices never need a fraction. An `i64`
//! holds ±9.2 billion USD, far beyond any balance.
//!
//! Rounding rule (the only one in the code base): a request's cost is computed
//! once from its token counts with exact integer arithmetic and rounded **up**
//! to the next whole nano-USD. Prices are parsed from decimal strings exactly;
//! more than 9 decimal places is an error, never a silent rounding.
//!
//! Bounds (why no sum can overflow): every amount that enters from outside (a price, a
//! credit, a quota, a balance) is at most [`MAX_AMOUNT`] ($1 billion) in magnitude, and
//! one request costs at most [`MAX_REQUEST_COST`] ($1 million). A ledger batch holds at
//! most a few hundred records, so a balance minus a batch's debits stays far inside
//! `i64`; the database refuses any balance or spend outside ±`MAX_AMOUNT` (migration
//! 0008), and the writer parks a record it refuses instead of corrupting the books.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An amount of money in nano-USD. May be negative (a debit, an overdraft).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Nanos(pub i64);

pub const NANOS_PER_USD: i64 = 1_000_000_000;

/// The largest magnitude of any stored amount: a balance, a key's spend or quota, a
/// credit, a price per 1M tokens. $1,000,000,000; the database enforces it too.
pub const MAX_AMOUNT: Nanos = Nanos(1_000_000_000 * NANOS_PER_USD);

/// The most a single request can cost: $1,000,000. A request priced above it (only an
/// absurd usage report could do that) is billed this much.
pub const MAX_REQUEST_COST: Nanos = Nanos(1_000_000 * NANOS_PER_USD);

impl Nanos {
    pub const ZERO: Nanos = Nanos(0);

    pub fn from_usd(usd: i64) -> Nanos {
        Nanos(usd * NANOS_PER_USD)
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Whether the amount may be stored (see [`MAX_AMOUNT`]).
    pub fn is_storable(self) -> bool {
        self.0.unsigned_abs() <= MAX_AMOUNT.0.unsigned_abs()
    }

    /// The exact sum of many amounts, or `None` if it leaves `i64`.
    pub fn checked_sum(amounts: impl IntoIterator<Item = Nanos>) -> Option<Nanos> {
        let total: i128 = amounts.into_iter().map(|n| i128::from(n.0)).sum();
        i64::try_from(total).ok().map(Nanos)
    }

    /// Renders as a decimal USD string with trailing zeros removed, e.g. `"0.000276"`.
    pub fn to_usd_string(self) -> String {
        self.usd().as_str().to_owned()
    }

    /// The decimal USD text of `to_usd_string`, rendered on the stack: a request's
    /// settlement renders its cost for the answer, the cost header and the log line.
    pub fn usd(self) -> UsdText {
        let mut text = UsdText {
            bytes: [0; USD_TEXT_CAPACITY],
            len: 0,
        };
        if self.0 < 0 {
            text.push(b"-");
        }
        let abs = self.0.unsigned_abs();
        let per_usd = NANOS_PER_USD.unsigned_abs();
        let mut digits = [0; 20];
        text.push(decimal_digits(abs / per_usd, &mut digits));
        let frac = abs % per_usd;
        if frac != 0 {
            let mut nine = [b'0'; 9];
            let written = decimal_digits(frac, &mut digits);
            nine[9 - written.len()..].copy_from_slice(written);
            let significant = 9 - nine.iter().rev().take_while(|d| **d == b'0').count();
            text.push(b".");
            text.push(&nine[..significant]);
        }
        text
    }

    /// For JSON responses that must show dollars as a number (OpenAI-legacy shapes).
    pub fn as_usd_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_USD as f64
    }
}

/// `-9223372036.854775808`, the longest amount, is 21 bytes.
const USD_TEXT_CAPACITY: usize = 24;

/// An amount's decimal USD text (`Nanos::usd`), held inline: copying it allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct UsdText {
    bytes: [u8; USD_TEXT_CAPACITY],
    len: usize,
}

impl UsdText {
    pub fn as_str(&self) -> &str {
        // Only ASCII digits, '-' and '.' are ever pushed.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }

    fn push(&mut self, bytes: &[u8]) {
        self.bytes[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }
}

impl fmt::Display for UsdText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for UsdText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// `n` in decimal, written at the end of `buffer`; returns the digits.
fn decimal_digits(mut n: u64, buffer: &mut [u8; 20]) -> &[u8] {
    let mut start = buffer.len();
    loop {
        start -= 1;
        buffer[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buffer[start..];
        }
    }
}

impl std::ops::Add for Nanos {
    type Output = Nanos;
    fn add(self, rhs: Nanos) -> Nanos {
        Nanos(self.0.saturating_add(rhs.0))
    }
}

impl std::ops::Sub for Nanos {
    type Output = Nanos;
    fn sub(self, rhs: Nanos) -> Nanos {
        Nanos(self.0.saturating_sub(rhs.0))
    }
}

impl std::ops::AddAssign for Nanos {
    fn add_assign(&mut self, rhs: Nanos) {
        *self = *self + rhs;
    }
}

impl std::ops::SubAssign for Nanos {
    fn sub_assign(&mut self, rhs: Nanos) {
        *self = *self - rhs;
    }
}

impl std::iter::Sum for Nanos {
    fn sum<I: Iterator<Item = Nanos>>(iter: I) -> Nanos {
        iter.fold(Nanos::ZERO, |a, b| a + b)
    }
}

impl fmt::Display for Nanos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}", self.usd())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MoneyError {
    #[error("'{0}' is not a decimal USD amount (e.g. \"0.27\")")]
    NotDecimal(String),
    #[error("'{0}' has more than 9 decimal places; the smallest unit is 1e-9 USD")]
    TooPrecise(String),
    #[error("'{0}' is too large (the limit is $1,000,000,000)")]
    TooLarge(String),
}

impl FromStr for Nanos {
    type Err = MoneyError;

    /// Parses a decimal USD amount such as `"0.27"`, `"-1"`, `"3.000000001"` exactly.
    fn from_str(text: &str) -> Result<Nanos, MoneyError> {
        let trimmed = text.trim().trim_start_matches('$');
        let (negative, digits) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && frac.is_empty()) || !all_digits(whole) || !all_digits(frac) {
            return Err(MoneyError::NotDecimal(text.to_string()));
        }
        if frac.len() > 9 {
            return Err(MoneyError::TooPrecise(text.to_string()));
        }
        let too_large = || MoneyError::TooLarge(text.to_string());
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| too_large())?
        };
        let frac_nanos: i64 = format!("{frac:0<9}").parse().map_err(|_| too_large())?;
        let nanos = whole
            .checked_mul(NANOS_PER_USD)
            .and_then(|n| n.checked_add(frac_nanos))
            .map(|n| Nanos(if negative { -n } else { n }))
            .filter(|n| n.is_storable())
            .ok_or_else(too_large)?;
        Ok(nanos)
    }
}

/// Price of one million tokens, in nano-USD. `$0.27 / 1M` is `PerMillion(270_000_000)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PerMillion(pub Nanos);

impl PerMillion {
    /// `tokens × price` in nano-USD × 1e6: dividing by 1e6 gives nano-USD. Kept undivided so
    /// the token classes of one request are summed exactly before the single rounding.
    fn numerator(self, tokens: u64) -> i128 {
        i128::from(tokens).saturating_mul(i128::from(self.0.0))
    }
}

/// The prices that apply to one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prices {
    pub input: PerMillion,
    pub cached_input: PerMillion,
    /// Cache hits of an explicit (client-marked) cache where the provider prices them apart
    /// from automatic ones (DashScope: 10 % of input, against 20 % for implicit hits).
    pub explicit_cached_input: PerMillion,
    /// Prompt tokens written to the provider's cache (Anthropic bills them above plain
    /// input: 1.25× for 5-minute writes). Equal to `input` unless a model sets its own.
    pub cache_write_input: PerMillion,
    /// Prompt tokens written to a 1-hour cache (Anthropic: 2× input).
    pub cache_write_1h_input: PerMillion,
    pub output: PerMillion,
}

/// Token counts of one request. `prompt` includes `cached` and `cache_write` (OpenAI
/// convention: the prompt total, with the cache classes as a breakdown); `explicit_cached`
/// is the part of `cached` read from an explicit cache, `cache_write_1h` the part of
/// `cache_write` written with a 1-hour lifetime.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCounts {
    pub prompt: u64,
    pub cached: u64,
    /// Prompt tokens written to the provider's cache by this request.
    #[serde(default)]
    pub cache_write: u64,
    pub completion: u64,
    #[serde(default)]
    pub explicit_cached: u64,
    #[serde(default)]
    pub cache_write_1h: u64,
}

impl TokenCounts {
    /// The counts with every breakdown capped by what contains it: a report claiming more
    /// cache tokens than the prompt (or more 1-hour writes than writes) is not believed.
    pub fn capped(self) -> TokenCounts {
        let cached = self.cached.min(self.prompt);
        let cache_write = self.cache_write.min(self.prompt - cached);
        TokenCounts {
            cached,
            cache_write,
            explicit_cached: self.explicit_cached.min(cached),
            cache_write_1h: self.cache_write_1h.min(cache_write),
            ..self
        }
    }
}

/// The most tokens of each class one request can be billed for. Upstream usage reports
/// are clamped to it, so one absurd figure cannot bill a fortune or overflow a sum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenCeiling {
    pub prompt: u64,
    pub completion: u64,
}

impl TokenCeiling {
    pub const UNBOUNDED: TokenCeiling = TokenCeiling {
        prompt: u64::MAX,
        completion: u64::MAX,
    };
}

impl Default for TokenCeiling {
    fn default() -> Self {
        TokenCeiling::UNBOUNDED
    }
}

impl TokenCounts {
    /// The counts within `ceiling` (the cache classes stay parts of the prompt), and
    /// whether anything had to be cut.
    pub fn clamped(self, ceiling: TokenCeiling) -> (TokenCounts, bool) {
        let clamped = TokenCounts {
            prompt: self.prompt.min(ceiling.prompt),
            completion: self.completion.min(ceiling.completion),
            ..self
        }
        .capped();
        (clamped, clamped != self)
    }
}

impl Prices {
    /// One price for every token class (tests and flat-priced models).
    pub const fn uniform(price: PerMillion) -> Prices {
        Prices {
            input: price,
            cached_input: price,
            explicit_cached_input: price,
            cache_write_input: price,
            cache_write_1h_input: price,
            output: price,
        }
    }

    pub fn is_free(&self) -> bool {
        self.classes().iter().all(|price| price.0.is_zero())
    }

    fn classes(&self) -> [PerMillion; 6] {
        [
            self.input,
            self.cached_input,
            self.explicit_cached_input,
            self.cache_write_input,
            self.cache_write_1h_input,
            self.output,
        ]
    }

    /// The cost of a request: one exact sum, rounded up once to whole nano-USD, at most
    /// [`MAX_REQUEST_COST`]. The cache classes are parts of `prompt`; a report claiming
    /// more than the prompt is capped. Every step saturates, so no count or price, however
    /// absurd, can wrap around.
    pub fn cost(&self, tokens: TokenCounts) -> Nanos {
        let t = tokens.capped();
        round_up(sum(&[
            self.input.numerator(t.prompt - t.cached - t.cache_write),
            self.cached_input.numerator(t.cached - t.explicit_cached),
            self.explicit_cached_input.numerator(t.explicit_cached),
            self.cache_write_input
                .numerator(t.cache_write - t.cache_write_1h),
            self.cache_write_1h_input.numerator(t.cache_write_1h),
            self.output.numerator(t.completion),
        ]))
    }

    /// The most `prompt` + `completion` tokens can cost, whatever classes the upstream
    /// later reports the prompt in: every prompt token at the dearest prompt class.
    pub fn worst_case_cost(&self, prompt: u64, completion: u64) -> Nanos {
        let dearest = [
            self.input,
            self.cached_input,
            self.explicit_cached_input,
            self.cache_write_input,
            self.cache_write_1h_input,
        ]
        .into_iter()
        .max_by_key(|price| price.0)
        .unwrap_or_default();
        round_up(sum(&[
            dearest.numerator(prompt),
            self.output.numerator(completion),
        ]))
    }

    /// The same classes, each repriced by `price`.
    pub fn map(&self, mut price: impl FnMut(PerMillion) -> PerMillion) -> Prices {
        Prices {
            input: price(self.input),
            cached_input: price(self.cached_input),
            explicit_cached_input: price(self.explicit_cached_input),
            cache_write_input: price(self.cache_write_input),
            cache_write_1h_input: price(self.cache_write_1h_input),
            output: price(self.output),
        }
    }
}

/// nano-USD × 1e6 → nano-USD, rounded up: the one rounding of a cost.
/// Token-price products summed without wrapping, however absurd a count or a price.
fn sum(numerators: &[i128]) -> i128 {
    numerators.iter().copied().fold(0, i128::saturating_add)
}

/// The one rounding: up to the next whole nano-USD, within `0..=MAX_REQUEST_COST`.
fn round_up(numerator: i128) -> Nanos {
    let nanos = numerator.saturating_add(999_999).div_euclid(1_000_000);
    Nanos(i64::try_from(nanos.clamp(0, i128::from(MAX_REQUEST_COST.0))).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(s: &str) -> Nanos {
        s.parse().unwrap()
    }

    #[test]
    fn parses_decimal_usd_exactly() {
        assert_eq!(usd("0.27"), Nanos(270_000_000));
        assert_eq!(usd("1"), Nanos(1_000_000_000));
        assert_eq!(usd("$2.5"), Nanos(2_500_000_000));
        assert_eq!(usd("-0.000000001"), Nanos(-1));
        assert_eq!(usd(".5"), Nanos(500_000_000));
    }

    #[test]
    fn rejects_what_it_cannot_represent() {
        assert!(matches!(
            "0.0000000001".parse::<Nanos>(),
            Err(MoneyError::TooPrecise(_))
        ));
        assert!(matches!(
            "abc".parse::<Nanos>(),
            Err(MoneyError::NotDecimal(_))
        ));
        assert!(matches!(
            "".parse::<Nanos>(),
            Err(MoneyError::NotDecimal(_))
        ));
        assert!(matches!(
            "1.2.3".parse::<Nanos>(),
            Err(MoneyError::NotDecimal(_))
        ));
        assert!(matches!(
            "99999999999".parse::<Nanos>(),
            Err(MoneyError::TooLarge(_))
        ));
    }

    #[test]
    fn renders_without_trailing_zeros() {
        assert_eq!(Nanos(270_000_000).to_usd_string(), "0.27");
        assert_eq!(Nanos(-1).to_usd_string(), "-0.000000001");
        assert_eq!(Nanos(5 * NANOS_PER_USD).to_usd_string(), "5");
        assert_eq!(Nanos(276_480).to_string(), "$0.00027648");
        assert_eq!(Nanos(0).to_usd_string(), "0");
        assert_eq!(Nanos(12_345).to_usd_string(), "0.000012345");
        assert_eq!(Nanos(4_999_987_655).to_usd_string(), "4.999987655");
        assert_eq!(Nanos(-1_500_000_000).to_usd_string(), "-1.5");
        assert_eq!(Nanos(i64::MAX).to_usd_string(), "9223372036.854775807");
        assert_eq!(Nanos(i64::MIN).to_usd_string(), "-9223372036.854775808");
        assert_eq!(format!("{}", Nanos(10_000_000_000).usd()), "10");
        assert_eq!(format!("{:?}", Nanos(1).usd()), "\"0.000000001\"");
    }

    #[test]
    fn the_usd_text_is_the_exact_decimal_of_every_amount_tried() {
        // Against the arithmetic spelled out with formatting, over amounts of every length
        // and with every count of trailing zeros.
        let spelled = |n: i64| {
            let sign = if n < 0 { "-" } else { "" };
            let (whole, frac) = (
                n.unsigned_abs() / 1_000_000_000,
                n.unsigned_abs() % 1_000_000_000,
            );
            let frac = format!("{frac:09}");
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                format!("{sign}{whole}")
            } else {
                format!("{sign}{whole}.{frac}")
            }
        };
        let mut n: i64 = 1;
        while let Some(next) = n.checked_mul(7) {
            for amount in [n, -n, n + 1, n * 10 / 7, n - 1] {
                assert_eq!(Nanos(amount).to_usd_string(), spelled(amount), "{amount}");
            }
            n = next;
        }
        for zeros in 0..18 {
            let power = 10_i64.pow(zeros);
            for amount in [power, 3 * power, -7 * power, power / 10 * 123] {
                assert_eq!(Nanos(amount).to_usd_string(), spelled(amount), "{amount}");
            }
        }
    }

    #[test]
    fn cost_is_one_exact_sum_rounded_up() {
        let prices = Prices {
            input: PerMillion(usd("0.27")),
            cached_input: PerMillion(usd("0.07")),
            cache_write_input: PerMillion(usd("0.27")),
            output: PerMillion(usd("1.10")),
            ..Prices::default()
        };
        // 1000 prompt (200 cached) + 500 completion:
        // 800*0.27 + 200*0.07 + 500*1.10 = 216 + 14 + 550 = 780 micro-USD... per 1M → 780e-6 USD.
        let tokens = TokenCounts {
            prompt: 1000,
            cached: 200,
            completion: 500,
            ..Default::default()
        };
        assert_eq!(prices.cost(tokens), Nanos(780_000));
        // 1 token at $0.27/1M = 270 nano exactly; 1 token at $0.0000001/1M rounds up to 1 nano.
        let tiny = Prices {
            input: PerMillion(Nanos(100)),
            ..Prices::default()
        };
        assert_eq!(
            tiny.cost(TokenCounts {
                prompt: 1,
                ..Default::default()
            }),
            Nanos(1)
        );
        assert_eq!(tiny.cost(TokenCounts::default()), Nanos::ZERO);
    }

    #[test]
    fn cached_tokens_never_exceed_prompt() {
        let prices = Prices {
            input: PerMillion(usd("1")),
            cached_input: PerMillion(usd("0")),
            ..Default::default()
        };
        let tokens = TokenCounts {
            prompt: 10,
            cached: 50,
            completion: 0,
            ..Default::default()
        };
        assert_eq!(prices.cost(tokens), Nanos::ZERO);
    }

    #[test]
    fn cache_writes_have_their_own_price_in_the_same_single_rounding() {
        // Anthropic-style prices: $3 input, $0.30 cache read, $3.75 cache write, $15 output.
        let prices = Prices {
            input: PerMillion(usd("3")),
            cached_input: PerMillion(usd("0.30")),
            cache_write_input: PerMillion(usd("3.75")),
            output: PerMillion(usd("15")),
            ..Prices::default()
        };
        // 1000 prompt = 100 plain + 300 read + 600 written; 7 completion:
        // 100·3000 + 300·300 + 600·3750 + 7·15000 = 300000 + 90000 + 2250000 + 105000 nano.
        let tokens = TokenCounts {
            prompt: 1000,
            cached: 300,
            cache_write: 600,
            completion: 7,
            ..Default::default()
        };
        assert_eq!(prices.cost(tokens), Nanos(2_745_000));
        // One written token at $3.75/1M is 3750 nano; at $0.0000015/1M it rounds up to 1 nano,
        // and the rounding happens once for the whole request, not per class.
        let odd = Prices {
            input: PerMillion(Nanos(1_500)),
            cache_write_input: PerMillion(Nanos(1_500)),
            ..Prices::default()
        };
        let one_each = TokenCounts {
            prompt: 2,
            cache_write: 1,
            ..Default::default()
        };
        assert_eq!(odd.cost(one_each), Nanos(1), "3000/1e6 rounds up once to 1");
    }

    #[test]
    fn cache_writes_are_capped_by_what_is_left_of_the_prompt() {
        let prices = Prices {
            input: PerMillion(usd("1")),
            cached_input: PerMillion(usd("0")),
            cache_write_input: PerMillion(usd("2")),
            ..Default::default()
        };
        // 10 prompt, 4 read: at most 6 can have been written.
        let tokens = TokenCounts {
            prompt: 10,
            cached: 4,
            cache_write: 50,
            completion: 0,
            ..Default::default()
        };
        assert_eq!(prices.cost(tokens), Nanos(12_000));
        // Without a cache price set apart, writes cost exactly what plain input costs.
        let same = Prices {
            cache_write_input: PerMillion(usd("1")),
            ..prices
        };
        assert_eq!(
            same.cost(tokens),
            same.cost(TokenCounts {
                cache_write: 0,
                ..tokens
            })
        );
    }

    #[test]
    fn amounts_beyond_the_storable_bound_are_refused_when_parsed() {
        assert_eq!(usd("1000000000"), MAX_AMOUNT);
        assert_eq!(usd("-1000000000"), Nanos(-MAX_AMOUNT.0));
        for text in [
            "1000000000.000000001",
            "9223372036.854775807",
            "-9223372036.854775808",
            "99999999999999999999",
        ] {
            assert!(
                matches!(text.parse::<Nanos>(), Err(MoneyError::TooLarge(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn cost_is_capped_and_never_wraps_at_the_i64_edges() {
        let absurd = Prices {
            input: PerMillion(Nanos(i64::MAX)),
            cached_input: PerMillion(Nanos(i64::MAX)),
            cache_write_input: PerMillion(Nanos(i64::MAX)),
            cache_write_1h_input: PerMillion(Nanos(i64::MAX)),
            explicit_cached_input: PerMillion(Nanos(i64::MAX)),
            output: PerMillion(Nanos(i64::MAX)),
        };
        let every_class_full = TokenCounts {
            prompt: u64::MAX,
            cached: u64::MAX / 3,
            cache_write: u64::MAX / 3,
            completion: u64::MAX,
            ..Default::default()
        };
        assert_eq!(absurd.cost(every_class_full), MAX_REQUEST_COST);
        // The report in the issue: 10 + 10^15 tokens at $100/M is $10^11: capped.
        let hundred = Prices {
            input: PerMillion(usd("100")),
            output: PerMillion(usd("100")),
            ..Prices::default()
        };
        let report = TokenCounts {
            prompt: 10,
            completion: 1_000_000_000_000_000,
            ..Default::default()
        };
        assert_eq!(hundred.cost(report), MAX_REQUEST_COST);
        let negative = Prices {
            input: PerMillion(Nanos(i64::MIN)),
            ..Prices::default()
        };
        let one = TokenCounts {
            prompt: u64::MAX,
            ..Default::default()
        };
        assert_eq!(negative.cost(one), Nanos::ZERO, "never a negative cost");
    }

    #[test]
    fn sums_are_exact_or_refused() {
        let max = Nanos(i64::MAX);
        assert_eq!(Nanos::checked_sum([max, Nanos(-1), Nanos(1)]), Some(max));
        assert_eq!(Nanos::checked_sum([max, Nanos(1)]), None);
        assert_eq!(Nanos::checked_sum([Nanos(i64::MIN), Nanos(-1)]), None);
        // A batch of the largest requests stays far inside the bound.
        let batch = std::iter::repeat_n(MAX_REQUEST_COST, 1024);
        let total = Nanos::checked_sum(batch).unwrap();
        assert!((MAX_AMOUNT - total).is_storable());
        assert!((Nanos(-MAX_AMOUNT.0) - total).0 > i64::MIN / 2);
    }

    #[test]
    fn clamping_keeps_the_cache_classes_inside_the_prompt() {
        let ceiling = TokenCeiling {
            prompt: 100,
            completion: 50,
        };
        let report = TokenCounts {
            prompt: 1_000,
            cached: 80,
            cache_write: 900,
            completion: u64::MAX,
            ..Default::default()
        };
        let (clamped, cut) = report.clamped(ceiling);
        assert!(cut);
        assert_eq!(
            clamped,
            TokenCounts {
                prompt: 100,
                cached: 80,
                cache_write: 20,
                completion: 50,
                ..Default::default()
            }
        );
        let honest = TokenCounts {
            prompt: 10,
            cached: 2,
            cache_write: 3,
            completion: 5,
            ..Default::default()
        };
        assert_eq!(honest.clamped(ceiling), (honest, false));
    }

    #[test]
    fn one_hour_writes_and_explicit_hits_are_classes_of_their_own() {
        // Anthropic: $3 input, $0.30 read, $3.75 5-minute write, $6 1-hour write, $15 output.
        let claude = Prices {
            input: PerMillion(usd("3")),
            cached_input: PerMillion(usd("0.30")),
            cache_write_input: PerMillion(usd("3.75")),
            cache_write_1h_input: PerMillion(usd("6")),
            output: PerMillion(usd("15")),
            ..Prices::default()
        };
        // 1000 prompt = 100 plain + 300 read + 400 written for 5 min + 200 for 1 h; 7 out:
        // 100·3000 + 300·300 + 400·3750 + 200·6000 + 7·15000 nano.
        let tokens = TokenCounts {
            prompt: 1000,
            cached: 300,
            cache_write: 600,
            cache_write_1h: 200,
            completion: 7,
            ..Default::default()
        };
        assert_eq!(claude.cost(tokens), Nanos(3_195_000));
        // DashScope qwen-plus at $0.40 input: implicit hits 20 %, explicit hits 10 %.
        let qwen = Prices {
            input: PerMillion(usd("0.40")),
            cached_input: PerMillion(usd("0.08")),
            explicit_cached_input: PerMillion(usd("0.04")),
            cache_write_input: PerMillion(usd("0.50")),
            output: PerMillion(usd("1.20")),
            ..Prices::default()
        };
        let explicit_hit = TokenCounts {
            prompt: 2000,
            cached: 1000,
            explicit_cached: 1000,
            completion: 10,
            ..Default::default()
        };
        // 1000·400 + 1000·40 + 10·1200.
        assert_eq!(qwen.cost(explicit_hit), Nanos(452_000));
        let overclaimed = TokenCounts {
            explicit_cached: 5000,
            cache_write_1h: 9,
            ..explicit_hit
        };
        assert_eq!(
            qwen.cost(overclaimed),
            Nanos(452_000),
            "breakdowns are capped by what contains them"
        );
    }

    #[test]
    fn the_worst_case_prices_every_prompt_token_at_the_dearest_prompt_class() {
        let claude = Prices {
            input: PerMillion(usd("3")),
            cached_input: PerMillion(usd("0.30")),
            cache_write_input: PerMillion(usd("3.75")),
            cache_write_1h_input: PerMillion(usd("6")),
            output: PerMillion(usd("15")),
            ..Prices::default()
        };
        assert_eq!(claude.worst_case_cost(1000, 10), Nanos(6_150_000));
        let all_written_for_an_hour = TokenCounts {
            prompt: 1000,
            cache_write: 1000,
            cache_write_1h: 1000,
            completion: 10,
            ..Default::default()
        };
        assert_eq!(
            claude.cost(all_written_for_an_hour),
            claude.worst_case_cost(1000, 10)
        );
    }
}
