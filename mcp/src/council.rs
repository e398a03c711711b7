//! What the tools need from moai, in the API's own types and statuses.

use std::future::Future;

use futures::stream::BoxStream;
use moai_proto::v1;
use rmcp::model::Extensions;
use tonic::Status;

/// A discussion's events until its run ends.
pub type Events = BoxStream<'static, Result<v1::DiscussionEvent, Status>>;

/// moai's discussion calls, as the caller named by `ext` may make them
/// (`ext` holds the HTTP request's parts on `/mcp`, nothing on stdio).
pub trait Council: Send + Sync + 'static {
    /// The caller's projects, oldest first.
    fn list_projects(
        &self,
        ext: &Extensions,
    ) -> impl Future<Output = Result<Vec<v1::Project>, Status>> + Send;

    /// An open round: every model of the project answers `question` at once.
    fn open(
        &self,
        ext: &Extensions,
        project_id: &str,
        question: &str,
    ) -> impl Future<Output = Result<Events, Status>> + Send;

    /// A discussion in turns on `topic`; 0 rounds means the server's default.
    fn start(
        &self,
        ext: &Extensions,
        project_id: &str,
        topic: &str,
        rounds: u32,
    ) -> impl Future<Output = Result<Events, Status>> + Send;

    /// The consensus summary of a discussion.
    fn summarize(
        &self,
        ext: &Extensions,
        discussion_id: &str,
    ) -> impl Future<Output = Result<Events, Status>> + Send;

    /// A discussion with its rounds and messages.
    fn get_discussion(
        &self,
        ext: &Extensions,
        discussion_id: &str,
    ) -> impl Future<Output = Result<v1::Discussion, Status>> + Send;
}
