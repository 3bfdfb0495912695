//! The OpenAI endpoints the relay serves. They share one pipeline and differ in path,
//! in the field that carries the input, and in whether they stream.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `POST /v1/chat/completions`
    Chat,
    /// `POST /v1/completions` (legacy text completion)
    Completions,
    /// `POST /v1/embeddings`
    Embeddings,
    /// `POST /v1/responses` passed through to a channel that serves it natively
    /// (`Channel::serves`); elsewhere the Responses surface translates to `Chat`.
    Responses,
}

impl Operation {
    /// The path under an upstream's versioned base URL.
    pub fn path(self) -> &'static str {
        match self {
            Operation::Chat => "chat/completions",
            Operation::Completions => "completions",
            Operation::Embeddings => "embeddings",
            Operation::Responses => "responses",
        }
    }

    /// The request member that holds the input.
    pub fn input_field(self) -> &'static str {
        match self {
            Operation::Chat => "messages",
            Operation::Completions => "prompt",
            Operation::Embeddings | Operation::Responses => "input",
        }
    }

    pub fn can_stream(self) -> bool {
        !matches!(self, Operation::Embeddings)
    }

    /// Output tokens when the request sets no limit: legacy completions default to 16
    /// (OpenAI's documented default); embeddings produce none.
    pub fn default_output_tokens(self, configured: u64) -> u64 {
        match self {
            Operation::Chat | Operation::Responses => configured,
            Operation::Completions => 16,
            Operation::Embeddings => 0,
        }
    }

    /// The `object` of a streamed chunk, for chunks the gateway writes itself.
    pub fn chunk_object(self) -> &'static str {
        match self {
            Operation::Completions => "text_completion",
            Operation::Chat | Operation::Embeddings | Operation::Responses => {
                "chat.completion.chunk"
            }
        }
    }
}
