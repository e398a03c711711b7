//! The Bot API methods the fake implements, on its state.

use std::time::Instant;

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use super::{
    BOT_ID, ChatMessage, Inner, MAX_TEXT, Params,
    objects::{telegram_len, user_json},
    visible_text,
};

/// A Bot API error answer.
pub(super) struct Failure {
    pub(super) code: u16,
    pub(super) description: String,
    pub(super) retry_after: Option<u64>,
}

impl Failure {
    pub(super) fn bad_request(description: impl Into<String>) -> Self {
        Failure {
            code: 400,
            description: description.into(),
            retry_after: None,
        }
    }
}

impl Inner {
    pub(super) fn new_message(
        &mut self,
        chat: i64,
        from_bot: bool,
        text: String,
        raw: String,
        parse_mode: Option<String>,
    ) -> ChatMessage {
        let next = self.next_message_id.entry(chat).or_insert(0);
        *next += 1;
        ChatMessage {
            id: *next,
            chat_id: chat,
            from_bot,
            text,
            raw,
            parse_mode,
            edits: 0,
            sent_at: Instant::now(),
            edit_times: Vec::new(),
            reply_markup: None,
            document: None,
            caption: None,
        }
    }

    /// The text a call asks to show, checked as Telegram checks it.
    fn checked_text(
        &mut self,
        params: &Params,
        field: &str,
    ) -> Result<(String, String, Option<String>), Failure> {
        let raw = params.str(field).unwrap_or_default();
        let parse_mode = params.str("parse_mode").filter(|m| !m.is_empty());
        let text = match parse_mode.as_deref() {
            Some(mode) if mode.eq_ignore_ascii_case("html") => {
                if self.reject_formatting > 0 {
                    self.reject_formatting -= 1;
                    return Err(Failure::bad_request(
                        "Bad Request: can't parse entities: Can't find end of the entity starting at byte offset 0",
                    ));
                }
                visible_text(&raw).map_err(Failure::bad_request)?
            }
            Some(mode) => {
                return Err(Failure::bad_request(format!(
                    "Bad Request: unsupported parse_mode \"{mode}\""
                )));
            }
            None => raw.clone(),
        };
        if text.trim().is_empty() {
            return Err(Failure::bad_request("Bad Request: message text is empty"));
        }
        if telegram_len(&text) > MAX_TEXT {
            return Err(Failure::bad_request("Bad Request: message is too long"));
        }
        Ok((text, raw, parse_mode))
    }

    fn message_mut(&mut self, params: &Params) -> Result<&mut ChatMessage, Failure> {
        let chat = params
            .int("chat_id")
            .ok_or_else(|| Failure::bad_request("Bad Request: chat not found"))?;
        let id = params.int("message_id").unwrap_or(0);
        self.messages
            .iter_mut()
            .find(|m| m.chat_id == chat && m.id == id)
            .ok_or_else(|| Failure::bad_request("Bad Request: message to edit not found"))
    }

    pub(super) fn call(&mut self, method: &str, params: &Params) -> Result<Value, Failure> {
        match method {
            "getMe" => {
                let mut me = user_json(BOT_ID);
                me["can_join_groups"] = json!(true);
                me["can_read_all_group_messages"] = json!(false);
                me["supports_inline_queries"] = json!(false);
                me["can_connect_to_business"] = json!(false);
                me["has_main_web_app"] = json!(false);
                Ok(me)
            }
            "deleteWebhook"
            | "setWebhook"
            | "deleteMyCommands"
            | "sendChatAction"
            | "answerCallbackQuery"
            | "setMyDescription"
            | "setMyShortDescription"
            | "setChatMenuButton" => Ok(json!(true)),
            "setMyCommands" => {
                self.commands = params
                    .json("commands")
                    .and_then(|c| c.as_array().cloned())
                    .unwrap_or_default();
                Ok(json!(true))
            }
            "getWebhookInfo" => Ok(
                json!({ "url": "", "has_custom_certificate": false, "pending_update_count": self.updates.len() }),
            ),
            "sendMessage" => {
                let chat = params
                    .int("chat_id")
                    .ok_or_else(|| Failure::bad_request("Bad Request: chat not found"))?;
                let (text, raw, parse_mode) = self.checked_text(params, "text")?;
                let mut message = self.new_message(chat, true, text, raw, parse_mode);
                message.reply_markup = params.json("reply_markup");
                let json = message.to_json(chat);
                self.messages.push(message);
                Ok(json)
            }
            "editMessageText" => {
                let (text, raw, parse_mode) = self.checked_text(params, "text")?;
                let markup = params.json("reply_markup");
                let message = self.message_mut(params)?;
                if message.raw == raw
                    && message.parse_mode == parse_mode
                    && message.reply_markup == markup
                {
                    return Err(Failure::bad_request(
                        "Bad Request: message is not modified: specified new message content and reply markup are \
                         exactly the same as a current content and reply markup of the message",
                    ));
                }
                message.text = text;
                message.raw = raw;
                message.parse_mode = parse_mode;
                message.reply_markup = markup;
                message.edits += 1;
                message.edit_times.push(Instant::now());
                let chat = message.chat_id;
                Ok(message.to_json(chat))
            }
            "editMessageReplyMarkup" => {
                let markup = params.json("reply_markup");
                let message = self.message_mut(params)?;
                message.reply_markup = markup;
                message.edits += 1;
                message.edit_times.push(Instant::now());
                let chat = message.chat_id;
                Ok(message.to_json(chat))
            }
            "deleteMessage" => {
                let chat = params.int("chat_id").unwrap_or(0);
                let id = params.int("message_id").unwrap_or(0);
                let before = self.messages.len();
                self.messages.retain(|m| !(m.chat_id == chat && m.id == id));
                if self.messages.len() == before {
                    return Err(Failure::bad_request(
                        "Bad Request: message to delete not found",
                    ));
                }
                Ok(json!(true))
            }
            "sendDocument" => {
                let chat = params
                    .int("chat_id")
                    .ok_or_else(|| Failure::bad_request("Bad Request: chat not found"))?;
                let Some(upload) = params
                    .uploads
                    .iter()
                    .find(|u| u.field == "document")
                    .or_else(|| {
                        // `document=attach://<part>` names the part holding the file.
                        let attached = params.str("document")?;
                        let part = attached.strip_prefix("attach://")?;
                        params.uploads.iter().find(|u| u.field == part)
                    })
                    .cloned()
                else {
                    return Err(Failure::bad_request(
                        "Bad Request: there is no document in the request",
                    ));
                };
                if upload.content.is_empty() {
                    return Err(Failure::bad_request("Bad Request: file must be non-empty"));
                }
                let mut message = self.new_message(chat, true, String::new(), String::new(), None);
                message.caption = params.str("caption");
                message.document = Some(upload);
                let json = message.to_json(chat);
                self.messages.push(message);
                Ok(json)
            }
            _ => Err(Failure {
                code: 404,
                description: "Not Found: method not found".into(),
                retry_after: None,
            }),
        }
    }
}

/// The error envelope, with `parameters.retry_after` for a 429.
pub(super) fn failure(fail: &Failure) -> Response {
    let mut body = json!({ "ok": false, "error_code": fail.code, "description": fail.description });
    if let Some(secs) = fail.retry_after {
        body["parameters"] = json!({ "retry_after": secs });
    }
    let status = StatusCode::from_u16(fail.code).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(body)).into_response()
}
