//! How many tokens a request may use: the worst case it reserves money and TPM for, and
//! the most it can be billed for whatever the upstream reports.
//!
//! Policy (docs/api/openai.md, "Billing"): a request is billed for at most the output its client
//! allowed (`max_tokens`/`max_completion_tokens`, capped by the model's context window
//! when the catalogue gives one) for each of its `n` choices, so an upstream that writes
//! past the limit costs the user nothing extra and the reservation covers the output in
//! full. Without a limit, the reservation holds the configured
//! default output per choice, and the bill is bounded by twice the context window per
//! choice. The prompt is bounded by twice the context window (times 2,048 inputs for the
//! batched operations). Twice: catalogue windows are a guide and an upstream may serve a
//! larger one; the bound stops absurd reports, it does not second-guess plausible ones.

use crate::catalog::Model;
use crate::ledger::money::{TokenCeiling, TokenCounts};
use crate::protocol::openai::operation::Operation;
use crate::protocol::openai::request::RequestFacts;

/// The window assumed for a model whose catalogue entry gives none (the largest served
/// today is about 2M tokens).
const UNKNOWN_CONTEXT_WINDOW: u64 = 2_000_000;

/// OpenAI's most inputs in one embeddings request; legacy completions batch prompts too.
const MAX_BATCHED_INPUTS: u64 = 2_048;

/// The most tokens this request is expected to use, for reservations and TPM: the prompt
/// estimated from the body size (≥ the real count for typical text: about 3 bytes per
/// token), plus the output the client allows, or the configured default, capped by the
/// context window, for each choice.
pub fn worst_case_tokens(
    model: &Model,
    facts: &RequestFacts,
    body_len: usize,
    default_output: u64,
) -> TokenCounts {
    let prompt = (body_len as u64).div_ceil(3);
    let output = within_window(
        model,
        facts
            .max_output_tokens
            .unwrap_or(facts.operation.default_output_tokens(default_output)),
    );
    // The prompt's class is priced by `Pricing::worst_case_cost`, at the dearest one: a
    // prompt reported as written to the cache costs more than plain input (found by the
    // ledger simulation, seed 7).
    TokenCounts {
        prompt,
        completion: output.saturating_mul(facts.choices),
        ..Default::default()
    }
}

/// The most tokens of each class this request can be billed for (see the module's policy).
pub fn token_ceiling(model: &Model, facts: &RequestFacts) -> TokenCeiling {
    let window = match model.context {
        0 => UNKNOWN_CONTEXT_WINDOW,
        context => context.saturating_mul(2),
    };
    let inputs = match facts.operation {
        Operation::Chat => 1,
        // A native Response may run OpenAI's hosted tools: several model calls, each
        // re-reading the context, billed as one usage.
        Operation::Completions | Operation::Embeddings | Operation::Responses => MAX_BATCHED_INPUTS,
    };
    TokenCeiling {
        prompt: window.saturating_mul(inputs),
        completion: facts
            .max_output_tokens
            .map_or(window, |limit| within_window(model, limit))
            .saturating_mul(facts.choices),
    }
}

/// A client's output limit capped by the model's window, the same way for the
/// reservation and the bill: otherwise a `max_tokens` above the window reserved the
/// window and billed up to `max_tokens` (found by the ledger simulation, seed 1).
fn within_window(model: &Model, output: u64) -> u64 {
    match model.context {
        0 => output,
        context => output.min(context),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::money::Prices;

    fn model(context: u64) -> Model {
        Model {
            id: "m".into(),
            provider: "p".into(),
            context,
            prices: Prices::default(),
            pricing: Default::default(),
            created: 0,
        }
    }

    fn facts(operation: Operation, max_output_tokens: Option<u64>, choices: u64) -> RequestFacts {
        RequestFacts {
            operation,
            model: "m".into(),
            stream: false,
            client_wants_usage: false,
            max_output_tokens,
            choices,
            pinned_channel: None,
        }
    }

    #[test]
    fn the_reservation_counts_every_choice() {
        let worst = worst_case_tokens(
            &model(8_192),
            &facts(Operation::Chat, Some(100), 128),
            30,
            1024,
        );
        assert_eq!(worst.prompt, 10);
        assert_eq!(worst.completion, 12_800);
        let default = worst_case_tokens(&model(8_192), &facts(Operation::Chat, None, 3), 3, 1024);
        assert_eq!(default.completion, 3 * 1024);
        let capped = worst_case_tokens(
            &model(500),
            &facts(Operation::Chat, Some(9_999), 2),
            3,
            1024,
        );
        assert_eq!(capped.completion, 1_000, "the window caps each choice");
    }

    #[test]
    fn the_bill_never_exceeds_the_output_the_client_allowed() {
        let ceiling = token_ceiling(&model(8_192), &facts(Operation::Chat, Some(100), 4));
        assert_eq!(ceiling.completion, 400);
        assert_eq!(ceiling.prompt, 16_384);
        let beyond_window = facts(Operation::Chat, Some(100_000), 2);
        let ceiling = token_ceiling(&model(8_192), &beyond_window);
        let worst = worst_case_tokens(&model(8_192), &beyond_window, 3, 1024);
        assert_eq!(ceiling.completion, 2 * 8_192);
        assert_eq!(
            worst.completion, ceiling.completion,
            "the reservation covers the bill"
        );
        let unlimited = token_ceiling(&model(8_192), &facts(Operation::Chat, None, 1));
        assert_eq!(unlimited.completion, 16_384);
        let unknown = token_ceiling(&model(0), &facts(Operation::Chat, None, 1));
        assert_eq!(unknown.prompt, UNKNOWN_CONTEXT_WINDOW);
        let batch = token_ceiling(&model(8_192), &facts(Operation::Embeddings, None, 1));
        assert_eq!(batch.prompt, 16_384 * 2_048);
    }
}
