//! `moai export [<DISCUSSION>] [--format md|json] [-o FILE]`.

use std::io::Write;
use std::path::PathBuf;

use moai_proto::v1::{ExportDiscussionRequest, ExportFormat};

use crate::args::{ExportArgs, ExportFormatArg};
use crate::errors::{CliError, ExitCode};
use crate::output::stdout_error;
use crate::resolve;
use crate::session::Session;

/// Writes the document to a file, a directory (with the server's file name),
/// or stdout.
///
/// # Errors
/// No discussion, the server's error, a file that cannot be written.
pub async fn run(session: &mut Session, args: ExportArgs) -> Result<ExitCode, CliError> {
    let discussion_id = resolve::discussion_id(session, args.discussion.as_deref()).await?;
    let client = session.client().await?;
    let format = match args.format {
        ExportFormatArg::Md => ExportFormat::Markdown,
        ExportFormatArg::Json => ExportFormat::Json,
    };
    let export = client
        .discussions
        .clone()
        .export_discussion(ExportDiscussionRequest {
            discussion_id: discussion_id.clone(),
            format: format as i32,
        })
        .await
        .map_err(client.error("ExportDiscussion"))?
        .into_inner();
    let mut content = export.content;
    if !content.ends_with('\n') {
        content.push('\n');
    }
    let path = match args.output {
        None => None,
        Some(p) if p.as_os_str() == "-" => None,
        Some(p) if p.is_dir() => {
            Some(p.join(file_name(&export.file_name, &discussion_id, args.format)))
        }
        Some(p) => Some(p),
    };
    match path {
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(content.as_bytes()).map_err(stdout_error)?;
            out.flush().map_err(stdout_error)?;
        }
        Some(path) => {
            std::fs::write(&path, &content)
                .map_err(|e| CliError::io(format!("cannot write {}", path.display()), e))?;
            session.out.done(&format!(
                "Wrote {} ({} bytes)",
                path.display(),
                content.len()
            ))?;
        }
    }
    Ok(ExitCode::Success)
}

/// The server's suggested name, made safe, or one from the id.
fn file_name(suggested: &str, id: &str, format: ExportFormatArg) -> PathBuf {
    let safe = PathBuf::from(suggested)
        .file_name()
        .map(PathBuf::from)
        .filter(|n| !n.as_os_str().is_empty());
    safe.unwrap_or_else(|| {
        let ext = if format == ExportFormatArg::Json {
            "json"
        } else {
            "md"
        };
        PathBuf::from(format!("discussion-{id}.{ext}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_stay_in_the_directory() {
        assert_eq!(
            file_name("../../etc/x.md", "d", ExportFormatArg::Md),
            PathBuf::from("x.md")
        );
        assert_eq!(
            file_name("", "d1", ExportFormatArg::Json),
            PathBuf::from("discussion-d1.json")
        );
    }
}
