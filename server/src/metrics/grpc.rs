//! A tower layer counting finished gRPC calls by method and code. The code
//! of a call is in its trailers (or, for an error before any message, its
//! headers), so the response body is watched to its end.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http_body::{Body, Frame, SizeHint};

use super::GRPC_REQUESTS;

/// Wraps a gRPC service with [`GrpcMetrics`].
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcMetricsLayer;

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics { inner }
    }
}

/// Counts each call into `moai_grpc_requests_total{method, code}`.
#[derive(Clone, Debug)]
pub struct GrpcMetrics<S> {
    inner: S,
}

impl<S, B, RB> tower::Service<http::Request<B>> for GrpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    RB: Body + Unpin,
{
    type Response = http::Response<CountedBody<RB>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = req.uri().path().trim_start_matches('/').to_owned();
        let called = self.inner.call(req);
        Box::pin(async move {
            let response = called.await?;
            let code = status_code(response.headers());
            Ok(response.map(|inner| CountedBody {
                inner,
                method: Some(method),
                code,
            }))
        })
    }
}

/// A response body that counts its call once, when it ends or is dropped.
pub struct CountedBody<B> {
    inner: B,
    /// `None` once counted.
    method: Option<String>,
    code: Option<i32>,
}

impl<B> CountedBody<B> {
    fn count(&mut self) {
        let Some(method) = self.method.take() else {
            return;
        };
        // No status at all: the client left before the call ended.
        let code = self.code.unwrap_or(tonic::Code::Cancelled as i32);
        // Any path answers UNIMPLEMENTED when nothing serves it: one label
        // for all of those keeps the label set bounded.
        let method = if code == tonic::Code::Unimplemented as i32 {
            "unknown".to_owned()
        } else {
            method
        };
        metrics::counter!(GRPC_REQUESTS, "method" => method, "code" => code_name(code))
            .increment(1);
    }
}

impl<B: Body + Unpin> Body for CountedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status_code) {
                    this.code = Some(code);
                    this.count();
                }
            }
            Poll::Ready(Some(Err(_))) => {
                this.code.get_or_insert(tonic::Code::Internal as i32);
                this.count();
            }
            Poll::Ready(None) => this.count(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for CountedBody<B> {
    fn drop(&mut self) {
        self.count();
    }
}

fn status_code(headers: &http::HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// The canonical name of a gRPC status code, such as `NOT_FOUND`.
fn code_name(code: i32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i).copied())
        .unwrap_or("UNKNOWN")
}

#[cfg(test)]
mod tests {
    use super::code_name;

    #[test]
    fn codes_have_their_canonical_names() {
        assert_eq!(code_name(0), "OK");
        assert_eq!(code_name(5), "NOT_FOUND");
        assert_eq!(code_name(16), "UNAUTHENTICATED");
        assert_eq!(code_name(99), "UNKNOWN");
        assert_eq!(code_name(-1), "UNKNOWN");
    }
}
