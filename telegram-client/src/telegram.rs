//! Talking to the Telegram Bot API: formatted messages with a plain-text
//! fallback, and `RetryAfter` waited out instead of dropping a message.

use std::time::Duration;

use teloxide::{
    ApiError, Bot, RequestError,
    payloads::{EditMessageTextSetters, SendMessageSetters},
    prelude::Requester,
    types::{ChatId, InlineKeyboardMarkup, LinkPreviewOptions, Message, MessageId, ParseMode},
};

use crate::render::html::to_plain_text;

/// How often a call is retried after `RetryAfter` before giving up.
const MAX_RETRIES: usize = 8;

/// The bot as the rest of the crate uses it.
pub type Tg = Bot;

fn no_preview() -> LinkPreviewOptions {
    LinkPreviewOptions {
        is_disabled: true,
        url: None,
        prefer_small_media: false,
        prefer_large_media: false,
        show_above_text: false,
    }
}

/// The wait Telegram asked for, if the error is a `RetryAfter`.
#[must_use]
pub fn retry_after(error: &RequestError) -> Option<Duration> {
    match error {
        RequestError::RetryAfter(seconds) => Some(seconds.duration()),
        _ => None,
    }
}

fn cant_parse(error: &RequestError) -> bool {
    matches!(error, RequestError::Api(ApiError::CantParseEntities(_)))
}

/// Sends one HTML message once; if Telegram rejects the formatting, sends
/// the same text as plain text instead.
///
/// # Errors
/// The Bot API call failed (including `RetryAfter`, which is not waited out here).
pub async fn try_send(
    bot: &Tg,
    chat: ChatId,
    html: &str,
    markup: Option<InlineKeyboardMarkup>,
) -> Result<Message, RequestError> {
    let mut request = bot
        .send_message(chat, html)
        .parse_mode(ParseMode::Html)
        .link_preview_options(no_preview());
    if let Some(markup) = markup.clone() {
        request = request.reply_markup(markup);
    }
    match request.await {
        Err(e) if cant_parse(&e) => {
            tracing::warn!(chat = chat.0, error = %e, "Telegram rejected formatted text; sending it plain");
            let mut plain = bot
                .send_message(chat, to_plain_text(html))
                .link_preview_options(no_preview());
            if let Some(markup) = markup {
                plain = plain.reply_markup(markup);
            }
            plain.await
        }
        other => other,
    }
}

/// Edits one message to this HTML (and inline keyboard: none removes it)
/// once, falling back to plain text like [`try_send`]. An edit that changes
/// nothing counts as done.
///
/// # Errors
/// The Bot API call failed (including `RetryAfter`).
pub async fn try_edit(
    bot: &Tg,
    chat: ChatId,
    id: MessageId,
    html: &str,
    markup: Option<InlineKeyboardMarkup>,
) -> Result<(), RequestError> {
    let mut request = bot
        .edit_message_text(chat, id, html)
        .parse_mode(ParseMode::Html)
        .link_preview_options(no_preview());
    if let Some(markup) = markup.clone() {
        request = request.reply_markup(markup);
    }
    let result = match request.await {
        Err(e) if cant_parse(&e) => {
            tracing::warn!(chat = chat.0, error = %e, "Telegram rejected formatted text; editing it plain");
            let mut plain = bot
                .edit_message_text(chat, id, to_plain_text(html))
                .link_preview_options(no_preview());
            if let Some(markup) = markup {
                plain = plain.reply_markup(markup);
            }
            plain.await
        }
        other => other,
    };
    match result {
        Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Runs `call` until it succeeds, waiting out every `RetryAfter`.
async fn retrying<T, F, Fut>(mut call: F) -> Result<T, RequestError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RequestError>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Err(e) if attempt < MAX_RETRIES => match retry_after(&e) {
                Some(wait) => {
                    attempt += 1;
                    tracing::info!(?wait, "Telegram asked to slow down; waiting");
                    tokio::time::sleep(wait).await;
                }
                None => return Err(e),
            },
            other => return other,
        }
    }
}

/// Sends an HTML message, waiting out `RetryAfter` and falling back to plain text.
///
/// # Errors
/// The Bot API call failed for another reason, or kept asking to wait.
pub async fn send(bot: &Tg, chat: ChatId, html: &str) -> Result<Message, RequestError> {
    retrying(|| try_send(bot, chat, html, None)).await
}

/// [`send`] with an inline keyboard.
///
/// # Errors
/// As [`send`].
pub async fn send_with_markup(
    bot: &Tg,
    chat: ChatId,
    html: &str,
    markup: InlineKeyboardMarkup,
) -> Result<Message, RequestError> {
    retrying(|| try_send(bot, chat, html, Some(markup.clone()))).await
}

/// Edits a message to this HTML, waiting out `RetryAfter`.
///
/// # Errors
/// As [`send`].
pub async fn edit(bot: &Tg, chat: ChatId, id: MessageId, html: &str) -> Result<(), RequestError> {
    retrying(|| try_edit(bot, chat, id, html, None)).await
}

/// Sends a long HTML text as as many messages as it needs.
///
/// # Errors
/// As [`send`].
pub async fn send_long(bot: &Tg, chat: ChatId, html: &str) -> Result<(), RequestError> {
    for part in crate::render::split::split_html(html, crate::render::split::TELEGRAM_LIMIT) {
        send(bot, chat, &part).await?;
    }
    Ok(())
}
