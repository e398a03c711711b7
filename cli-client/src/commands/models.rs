//! `moai models [FILTER]`: what the server's providers offer.

use moai_proto::v1::ListModelsRequest;

use crate::args::ModelsArgs;
use crate::errors::{CliError, ExitCode};
use crate::output::Mode;
use crate::render::format::thousands;
use crate::render::table::Table;
use crate::session::Session;

/// Lists the models, optionally filtered.
///
/// # Errors
/// The server's error.
pub async fn run(session: &mut Session, args: ModelsArgs) -> Result<ExitCode, CliError> {
    let client = session.client().await?;
    let mut models = client
        .models
        .clone()
        .list_models(ListModelsRequest {})
        .await
        .map_err(client.error("ListModels"))?
        .into_inner()
        .models;
    if let Some(filter) = args.filter.map(|f| f.to_lowercase()) {
        models.retain(|m| {
            m.id.to_lowercase().contains(&filter) || m.name.to_lowercase().contains(&filter)
        });
    }
    if session.out.mode == Mode::Json {
        for model in &models {
            session.out.json(model)?;
        }
        return Ok(ExitCode::Success);
    }
    if models.is_empty() {
        session
            .out
            .note("No models found (is a provider configured and reachable from the server?)");
        return Ok(ExitCode::Success);
    }
    let mut table = Table::new(&["ID", "PROVIDER", "CONTEXT", "NAME"]);
    for m in &models {
        let context = if m.context_length > 0 {
            thousands(m.context_length)
        } else {
            "-".into()
        };
        table.row(vec![
            m.id.clone(),
            m.provider.clone(),
            context,
            m.name.clone(),
        ]);
    }
    session
        .out
        .lines(&table.render(session.out.theme, session.out.width()))?;
    Ok(ExitCode::Success)
}
