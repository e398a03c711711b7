//! `moai`: the command-line client.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("moai CLI is not implemented yet")
}
