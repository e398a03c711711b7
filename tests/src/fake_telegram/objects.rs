//! The JSON objects the fake returns: users, chats and complete messages,
//! as strictly shaped as teloxide expects them.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::{BOT_ID, BOT_USERNAME, ChatMessage};

pub(super) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub(super) fn user_json(id: i64) -> Value {
    if id == BOT_ID {
        return json!({ "id": BOT_ID, "is_bot": true, "first_name": "moai", "username": BOT_USERNAME });
    }
    json!({ "id": id, "is_bot": false, "first_name": format!("User {id}"), "username": format!("user{id}"), "language_code": "en" })
}

/// Supergroup (and channel) ids are below this; other negative ids are groups.
const SUPERGROUP_IDS_BELOW: i64 = -1_000_000_000_000;

pub(super) fn chat_json(id: i64) -> Value {
    if id > 0 {
        json!({ "id": id, "type": "private", "first_name": format!("User {id}"), "username": format!("user{id}") })
    } else if id <= SUPERGROUP_IDS_BELOW {
        json!({ "id": id, "type": "supergroup", "title": "Test supergroup" })
    } else {
        json!({ "id": id, "type": "group", "title": "Test group" })
    }
}

pub(super) fn telegram_len(text: &str) -> usize {
    text.encode_utf16().count()
}

impl ChatMessage {
    /// The message as the Bot API returns it.
    pub(super) fn to_json(&self, user: i64) -> Value {
        let from = if self.from_bot {
            user_json(BOT_ID)
        } else {
            user_json(user)
        };
        let mut message = json!({
            "message_id": self.id,
            "from": from,
            "chat": chat_json(self.chat_id),
            "date": unix_now(),
        });
        if let Some(document) = &self.document {
            message["document"] = json!({
                "file_id": format!("doc-{}-{}", self.chat_id, self.id),
                "file_unique_id": format!("u{}-{}", self.chat_id, self.id),
                "file_name": document.file_name,
                "mime_type": document.media_type.clone().unwrap_or_else(|| "application/octet-stream".into()),
                "file_size": document.content.len(),
            });
            if let Some(caption) = &self.caption {
                message["caption"] = json!(caption);
            }
        } else {
            message["text"] = json!(self.text);
            if !self.from_bot && self.text.starts_with('/') {
                let command_len = self.text.split_whitespace().next().map_or(0, telegram_len);
                message["entities"] =
                    json!([{ "type": "bot_command", "offset": 0, "length": command_len }]);
            }
        }
        if self.edits > 0 {
            message["edit_date"] = json!(unix_now());
        }
        if let Some(markup) = &self.reply_markup {
            message["reply_markup"] = markup.clone();
        }
        message
    }
}
