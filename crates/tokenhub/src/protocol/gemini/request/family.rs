//! What a Gemini model accepts depends on its generation, read from its id
//! (`gemini-<major>.<minor>-<variant>…`). Sources, read 2026-12-05:
//! - penalties: "Penalty is not enabled for models/gemini-2.5-flash" from 2.5 on
//!   (2nd-hand: vercel/ai#8943, PublicAffairs/openai-gemini#63);
//! - thinking: https://ai.google.dev/gemini-api/docs/thinking — 2.5 takes
//!   `thinkingBudget` (0 turns thinking off, except on 2.5 Pro), Gemini 3 takes
//!   `thinkingLevel` (Pro: low, high, plus medium from 3.1; Flash: minimal, low, medium,
//!   high) and cannot turn thinking off.

/// A model's generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Family {
    /// Major × 10 + minor: 20 for 2.0, 25 for 2.5, 30 for 3, 31 for 3.1.
    version: u32,
    pro: bool,
}

/// The thinking setting a reasoning effort becomes on a family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Thinking {
    Budget(u64),
    Level(&'static str),
}

/// The smallest budget 2.5 Pro takes: it cannot think less.
const PRO_MIN_BUDGET: u64 = 128;

impl Family {
    /// Ids that do not follow the pattern (tuned or experimental models) get the
    /// newest rules: a model that came later follows the API as it is now.
    pub fn of(model: &str) -> Family {
        let model = model.strip_prefix("models/").unwrap_or(model);
        Self::parse(model).unwrap_or(Family {
            version: u32::MAX,
            pro: false,
        })
    }

    fn parse(model: &str) -> Option<Family> {
        let (version, variant) = model.strip_prefix("gemini-")?.split_once('-')?;
        let (major, minor) = version.split_once('.').unwrap_or((version, "0"));
        Some(Family {
            version: major.parse::<u32>().ok()?.checked_mul(10)? + minor.parse::<u32>().ok()?,
            pro: variant.starts_with("pro"),
        })
    }

    pub fn takes_penalties(self) -> bool {
        self.version < 25
    }

    /// `reasoning_effort` (already validated) → the family's thinking setting. Budgets
    /// for 2.5 follow Google's OpenAI-compatible endpoint (low 1024, medium 8192, high
    /// 24576); `none` is 0 where thinking can be turned off and the least thinking
    /// otherwise.
    pub fn thinking(self, effort: &str) -> Thinking {
        if self.version < 30 {
            let budget = match effort {
                "none" if self.pro => PRO_MIN_BUDGET,
                "none" => 0,
                "minimal" => 512,
                "low" => 1024,
                "medium" => 8192,
                _ => 24_576,
            };
            return Thinking::Budget(budget);
        }
        let has_medium = !self.pro || self.version >= 31;
        Thinking::Level(match effort {
            "none" | "minimal" if !self.pro => "minimal",
            "none" | "minimal" | "low" => "low",
            "medium" if has_medium => "medium",
            _ => "high",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_gets_what_it_accepts() {
        let flash_25 = Family::of("gemini-2.5-flash-lite");
        assert!(!flash_25.takes_penalties());
        assert_eq!(flash_25.thinking("none"), Thinking::Budget(0));
        assert_eq!(
            Family::of("models/gemini-2.5-pro").thinking("none"),
            Thinking::Budget(128)
        );
        assert!(Family::of("gemini-2.0-flash").takes_penalties());
        let flash_3 = Family::of("gemini-3.5-flash");
        assert_eq!(flash_3.thinking("none"), Thinking::Level("minimal"));
        assert_eq!(flash_3.thinking("medium"), Thinking::Level("medium"));
        assert_eq!(flash_3.thinking("xhigh"), Thinking::Level("high"));
        assert_eq!(
            Family::of("gemini-3-pro-preview").thinking("medium"),
            Thinking::Level("high")
        );
        assert_eq!(
            Family::of("gemini-3.1-pro-preview").thinking("none"),
            Thinking::Level("low")
        );
        let unknown = Family::of("tuned-model-42");
        assert!(!unknown.takes_penalties());
        assert_eq!(unknown.thinking("low"), Thinking::Level("low"));
    }
}
