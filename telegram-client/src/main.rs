//! `moai-telegram`: the Telegram bot, a thin client of the moai gRPC API.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("moai-telegram is not implemented yet")
}
