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

/// Names of the three `moai.v1` services, as reflection lists them.
pub const SERVICE_NAMES: [&str; 3] = [
    "moai.v1.ProjectService",
    "moai.v1.DiscussionService",
    "moai.v1.ModelService",
];

pub mod json;
