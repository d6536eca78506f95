//! The HTTP side of `netlat serve`, on hyper. GET /metrics and /healthz,
//! nothing else. Each connection is its own task with bounded buffers and
//! deadlines, and the number of connections is capped, so a slow or hostile
//! client costs at most one slot and cannot hold up a scrape.

use std::{convert::Infallible, sync::Arc, time::Duration};

use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode,
    body::{Bytes, Incoming},
    header,
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{net::TcpListener, sync::Semaphore};

use super::metrics::Format;

/// Connections served at once; more are closed on accept. Each costs at
/// most `MAX_BUF` plus a task, so this bounds memory (~8 MiB worst case).
pub const MAX_CONNECTIONS: usize = 256;
/// hyper's smallest allowed read buffer: headers beyond it get a 431.
const MAX_BUF: usize = 8192;
/// A client must send its request headers within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// No connection lives longer, whatever it does: Prometheus reconnects.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// What the server needs from the rest of netlat.
pub trait Pages: Send + Sync + 'static {
    /// The /metrics page.
    fn metrics(&self, format: Format) -> String;
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, pages: Arc<dyn Pages>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                eprintln!("netlat: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let pages = Arc::clone(&pages);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let pages = Arc::clone(&pages);
                async move { Ok::<_, Infallible>(respond(&req, pages.as_ref())) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_BUF)
                .serve_connection(TokioIo::new(stream), service);
            // Errors here are the client's (reset, timeout, bad request).
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
            drop(slot);
        });
    }
}

fn respond(req: &Request<Incoming>, pages: &dyn Pages) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if !matches!(path, "/metrics" | "/healthz" | "/") {
        return plain(StatusCode::NOT_FOUND, "not found: try /metrics\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match path {
        "/metrics" => {
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok());
            let format = Format::from_accept(accept);
            let mut r = Response::new(Full::new(Bytes::from(pages.metrics(format))));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(format.content_type()),
            );
            r
        }
        "/healthz" => plain(StatusCode::OK, "ok\n"),
        _ => plain(
            StatusCode::OK,
            "netlat: kernel function latency for Prometheus at /metrics\n",
        ),
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
