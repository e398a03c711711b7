//! Canonical proto3 JSON for any `moai.v1` message, read off the descriptor set,
//! so exports and the CLI's `--json` follow the same mapping as every other
//! protobuf tool (camelCase names, enum names, RFC 3339 timestamps).

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET)
            .expect("the descriptor set compiled into this crate decodes")
    })
}

/// Why a message could not be rendered as JSON.
#[derive(Debug)]
pub struct JsonError(String);

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JsonError {}

/// Renders `msg`, whose full protobuf name is `full_name` (e.g. `moai.v1.Discussion`),
/// as proto3 JSON. `pretty` indents it; default values are left out unless `defaults`.
pub fn to_json<M: prost::Message>(
    msg: &M,
    full_name: &str,
    pretty: bool,
    defaults: bool,
) -> Result<String, JsonError> {
    let desc = pool()
        .get_message_by_name(full_name)
        .ok_or_else(|| JsonError(format!("unknown message {full_name}")))?;
    let dynamic = DynamicMessage::decode(desc, msg.encode_to_vec().as_slice())
        .map_err(|e| JsonError(e.to_string()))?;
    let options = SerializeOptions::new().skip_default_fields(!defaults);
    let mut out = Vec::new();
    let result = if pretty {
        let mut ser = serde_json::Serializer::pretty(&mut out);
        dynamic.serialize_with_options(&mut ser, &options)
    } else {
        let mut ser = serde_json::Serializer::new(&mut out);
        dynamic.serialize_with_options(&mut ser, &options)
    };
    result.map_err(|e| JsonError(e.to_string()))?;
    String::from_utf8(out).map_err(|e| JsonError(e.to_string()))
}

/// Trait form of [`to_json`] for the messages that are rendered most.
pub trait ToJson: prost::Message + Sized {
    /// The message's full protobuf name.
    const FULL_NAME: &'static str;

    /// Compact proto3 JSON without default values.
    fn to_json(&self) -> Result<String, JsonError> {
        to_json(self, Self::FULL_NAME, false, false)
    }

    /// Indented proto3 JSON without default values.
    fn to_json_pretty(&self) -> Result<String, JsonError> {
        to_json(self, Self::FULL_NAME, true, false)
    }
}

macro_rules! to_json_impl {
    ($($ty:ident),* $(,)?) => {
        $(impl ToJson for crate::v1::$ty {
            const FULL_NAME: &'static str = concat!("moai.v1.", stringify!($ty));
        })*
    };
}

to_json_impl!(
    Project,
    Discussion,
    DiscussionEvent,
    Message,
    Round,
    Model,
    Usage,
    PrincipalUsage
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1;

    #[test]
    fn discussion_renders_enum_names_and_camel_case() {
        let d = v1::Discussion {
            id: "d1".into(),
            project_id: "p1".into(),
            status: v1::DiscussionStatus::Idle as i32,
            ..Default::default()
        };
        let json = d.to_json().expect("renders");
        let value: serde_json::Value = serde_json::from_str(&json).expect("valid json");
        assert_eq!(value["projectId"], "p1");
        assert_eq!(value["status"], "DISCUSSION_STATUS_IDLE");
    }
}
