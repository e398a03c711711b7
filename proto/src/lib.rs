//! The `moai.v1` API: messages, tonic clients and servers, and the encoded file
//! descriptor set that server reflection and JSON rendering read.

/// Generated code of package `moai.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("moai.v1");
}

/// The encoded `FileDescriptorSet` of `moai/v1/*.proto` (with its imports).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/moai_descriptor.bin"));

/// Names of the `moai.v1` services, as reflection lists them.
pub const SERVICE_NAMES: [&str; 4] = [
    "moai.v1.ProjectService",
    "moai.v1.DiscussionService",
    "moai.v1.ModelService",
    "moai.v1.UsageService",
];

pub mod json;
pub mod tls;

/// A response message of a streaming RPC, each of which wraps one
/// discussion event: lets a client follow any of them the same way.
pub trait EventResponse {
    /// The event inside.
    fn into_event(self) -> Option<v1::DiscussionEvent>;
}

macro_rules! event_response {
    ($($ty:ident),* $(,)?) => {
        $(impl EventResponse for v1::$ty {
            fn into_event(self) -> Option<v1::DiscussionEvent> {
                self.event
            }
        })*
    };
}

event_response!(
    OpenDiscussionResponse,
    StartDiscussionResponse,
    NextRoundResponse,
    MentionResponse,
    SummarizeDiscussionResponse,
    WatchDiscussionResponse,
    ReviewDiscussionResponse,
);
