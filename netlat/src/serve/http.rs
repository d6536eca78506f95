//! The HTTP side of `netlat serve`, on hyper. GET /metrics and /healthz,
//! and with `--capture` the flight recorder's /captures pages (`captures`). Each connection is its own task with bounded buffers and
//! deadlines, and the number of connections is capped. When every slot is
//! held, the newcomer takes the slot of the connection that has done least
//! (`slots`), and clients that have not made a request are given less time,
//! so idle floods and slowloris cannot shut a scrape out.

use std::{
    convert::Infallible,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode,
    body::{Bytes, Incoming},
    header,
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
};

use super::{
    metrics::Format,
    slots::{Conn, Slots},
};
use crate::recorder::store::Store;

mod captures;

/// Connections served at once; a newcomer beyond it evicts the connection
/// that has done least. Each costs at most `MAX_BUF` plus a task, so this
/// bounds memory (~8 MiB worst case).
pub const MAX_CONNECTIONS: usize = 256;
/// hyper's smallest allowed read buffer: headers beyond it get a 431.
const MAX_BUF: usize = 8192;
/// Request headers hyper parses; more get a 431. hyper's default (100)
/// refused ~1 KB requests of many short headers: as many as fit in
/// `MAX_BUF` (the shortest header line, "a:\r\n", is 4 bytes) leaves the
/// byte limit the only one. hyper then keeps them on the heap, per request.
const MAX_HEADERS: usize = MAX_BUF / 4;
/// A client must send its request headers within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// While more than half the slots are held, a connection must complete its
/// first request within this (a scraper sends it at once).
const PRESSED_FIRST_REQUEST: Duration = Duration::from_secs(1);
/// How often a connection checks its first-request deadline.
const DEADLINE_CHECK: Duration = Duration::from_millis(200);
/// No connection lives longer, whatever it does: Prometheus reconnects.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// What the server needs from the rest of netlat.
pub trait Pages: Send + Sync + 'static {
    /// The /metrics page.
    fn metrics(&self, format: Format) -> String;
    /// The flight recorder's store, when serve runs with `--capture`:
    /// /captures serves it.
    fn captures(&self) -> Option<&Store> {
        None
    }
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, pages: Arc<dyn Pages>) {
    let slots = Slots::new(MAX_CONNECTIONS);
    let renders = captures::Renders::new();
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
        let slot = slots.take();
        let pages = Arc::clone(&pages);
        let slots = Arc::clone(&slots);
        let renders = Arc::clone(&renders);
        tokio::spawn(async move {
            let conn = Arc::clone(&slot.conn);
            let served = Arc::clone(&conn);
            let service = service_fn(move |req: Request<Incoming>| {
                let pages = Arc::clone(&pages);
                let renders = Arc::clone(&renders);
                served.mark_served();
                async move {
                    let accept = req
                        .headers()
                        .get(header::ACCEPT)
                        .and_then(|v| v.to_str().ok());
                    let asked = Asked {
                        method: req.method(),
                        path: req.uri().path(),
                        accept,
                    };
                    Ok::<_, Infallible>(respond(asked, pages, renders).await)
                }
            });
            let io = Watched {
                stream,
                conn: Arc::clone(&conn),
            };
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_BUF)
                .max_headers(MAX_HEADERS)
                .serve_connection(TokioIo::new(io), service);
            // Errors here are the client's (reset, timeout, bad request).
            tokio::select! {
                _ = tokio::time::timeout(CONNECTION_LIFETIME, connection) => {}
                () = conn.evicted() => {}
                () = first_request_deadline(&slots, &conn) => {}
            }
            drop(slot);
        });
    }
}

/// Resolves when `conn` has taken too long to complete its first request:
/// `HEADER_TIMEOUT` normally, `PRESSED_FIRST_REQUEST` while slots are short.
/// (hyper's header timeout alone does not cover a client that sends nothing.)
async fn first_request_deadline(slots: &Slots, conn: &Conn) {
    loop {
        tokio::time::sleep(DEADLINE_CHECK).await;
        if conn.served() > 0 {
            return std::future::pending().await;
        }
        let limit = if slots.under_pressure() {
            PRESSED_FIRST_REQUEST
        } else {
            HEADER_TIMEOUT
        };
        if conn.accepted.elapsed() >= limit {
            return;
        }
    }
}

/// The client's socket, noting in its slot when the client sends anything.
struct Watched {
    stream: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.conn.mark_sent();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The parts of a request a page depends on.
struct Asked<'a> {
    method: &'a Method,
    path: &'a str,
    accept: Option<&'a str>,
}

async fn respond(
    asked: Asked<'_>,
    pages: Arc<dyn Pages>,
    renders: Arc<captures::Renders>,
) -> Response<Full<Bytes>> {
    let path = asked.path;
    let route = captures::Route::parse(path);
    if route.is_none() && !matches!(path, "/metrics" | "/healthz" | "/") {
        return plain(StatusCode::NOT_FOUND, "not found: try /metrics\n");
    }
    if asked.method != Method::GET && asked.method != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
        r.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    match (route, path) {
        (Some(Ok(route)), _) => captures::respond(route, pages, renders).await,
        (Some(Err(())), _) => plain(StatusCode::NOT_FOUND, "not found: see /captures\n"),
        (None, "/metrics") => {
            let format = Format::from_accept(asked.accept);
            let mut r = Response::new(Full::new(Bytes::from(pages.metrics(format))));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(format.content_type()),
            );
            r
        }
        (None, "/healthz") => plain(StatusCode::OK, "ok\n"),
        (None, _) => plain(
            StatusCode::OK,
            "netlat: kernel function latency for Prometheus at /metrics\n",
        ),
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    self::text(status, text.to_owned())
}

fn text(status: StatusCode, text: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(text)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
