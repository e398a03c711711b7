//! Stored states, with the text form kept in the database.

macro_rules! stored_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),* }

        impl $name {
            /// The form kept in the store.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),* }
            }

            /// Reads the stored form.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)* _ => None }
            }
        }
    };
}

stored_enum!(
    /// How a discussion began.
    DiscussionKind { Open = "open", Sequential = "sequential" }
);
stored_enum!(
    /// Where a discussion stands.
    DiscussionStatus { Running = "running", Idle = "idle", Stopped = "stopped", Interrupted = "interrupted" }
);
stored_enum!(
    /// How a round's messages were produced.
    RoundMode { Parallel = "parallel", Sequential = "sequential", Mention = "mention", Summary = "summary" }
);
stored_enum!(
    /// Who wrote a message.
    MessageRole { User = "user", Model = "model", Summary = "summary" }
);
stored_enum!(
    /// How a message ended (or that it is still being written).
    MessageStatus { Streaming = "streaming", Complete = "complete", Failed = "failed", Interrupted = "interrupted" }
);
stored_enum!(
    /// Why a model call failed, for programs to act on (the human text is
    /// kept beside it).
    FailureReason {
        Timeout = "timeout",
        RateLimited = "rate_limited",
        UpstreamError = "upstream_error",
        BadApiKey = "bad_api_key",
        OutOfCredits = "out_of_credits",
        UnknownModel = "unknown_model",
        ContextTooLong = "context_too_long",
        BrokenStream = "broken_stream",
        EmptyAnswer = "empty_answer",
        BudgetExceeded = "budget_exceeded",
        StoreError = "store_error",
    }
);
