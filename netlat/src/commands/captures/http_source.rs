//! Reading captures from a running `netlat serve` over plain HTTP/1.1, on
//! hyper's client: one connection per request, everything within
//! `TIMEOUT`, answers over `MAX_BODY` refused, so a wrong address or a
//! hostile server cannot hang or exhaust `netlat captures`.

use std::{fmt, time::Duration};

use anyhow::{Result, bail};
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::{Request, StatusCode, body::Bytes, header};
use hyper_util::rt::TokioIo;

/// Connecting, sending and reading the whole answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Larger than any capture serve keeps by default.
const MAX_BODY: usize = 64 << 20;

/// `http://HOST:PORT`, nothing after it.
#[derive(Debug, PartialEq, Eq)]
pub struct Server {
    /// HOST:PORT, as given.
    authority: String,
}

impl Server {
    pub fn parse(url: &str) -> Result<Server> {
        let rest = url.strip_prefix("http://").unwrap_or(url);
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        let port_ok = authority
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok
            || authority.contains(['/', '?', '#', '@'])
            || authority.contains(char::is_whitespace)
        {
            bail!("--from {url}: give http://HOST:PORT, e.g. http://127.0.0.1:9435");
        }
        Ok(Server {
            authority: authority.to_owned(),
        })
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}", self.authority)
    }
}

/// The body of GET `path`; `id` names the capture asked for, for the 404.
pub fn get(server: &Server, path: &str, id: Option<&str>) -> Result<Vec<u8>> {
    crate::commands::stop::runtime()?.block_on(async {
        match tokio::time::timeout(TIMEOUT, fetch(server, path, id)).await {
            Ok(fetched) => fetched,
            Err(_) => bail!(
                "{server}{path} did not answer within {} s",
                TIMEOUT.as_secs()
            ),
        }
    })
}

async fn fetch(server: &Server, path: &str, id: Option<&str>) -> Result<Vec<u8>> {
    let stream = tokio::net::TcpStream::connect(&server.authority)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach {server}: {}", crate::oneline::io_text(&e)))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| anyhow::anyhow!("cannot talk HTTP to {server}: {e}"))?;
    // Drives the connection; it ends with the request or the timeout.
    let driver = tokio::spawn(connection);
    let request = Request::get(path)
        .header(header::HOST, &server.authority)
        .body(Empty::<Bytes>::new())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| anyhow::anyhow!("{server}{path}: {e}"))?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                anyhow::anyhow!("{server}{path}: the answer is over {} MiB", MAX_BODY >> 20)
            } else {
                anyhow::anyhow!("{server}{path}: {e}")
            }
        })?
        .to_bytes();
    driver.abort();
    if status == StatusCode::OK {
        return Ok(body.to_vec());
    }
    // serve's error pages are one line of text; anything else is not shown.
    let said = std::str::from_utf8(&body)
        .ok()
        .and_then(|t| t.lines().next())
        .filter(|l| !l.is_empty() && l.len() < 200)
        .map(|l| crate::render::printable(l).into_owned());
    match (status, id, said) {
        (StatusCode::NOT_FOUND, Some(id), _) => {
            bail!(
                "HTTP 404: no capture {id} at {server} (netlat captures --from {server} lists them)"
            )
        }
        (status, _, Some(said)) => bail!("HTTP {}: {said} ({server}{path})", status.as_u16()),
        (status, _, None) => bail!("HTTP {} from {server}{path}", status.as_u16()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_host_and_port() {
        assert_eq!(
            Server::parse("http://127.0.0.1:9435/").unwrap().to_string(),
            "http://127.0.0.1:9435"
        );
        assert_eq!(
            Server::parse("http://[::1]:9435").unwrap().authority,
            "[::1]:9435"
        );
        for bad in [
            "http://host",
            "http://:9435",
            "http://h:99999",
            "http://h:1/captures",
            "http://u@h:1",
        ] {
            let e = Server::parse(bad).unwrap_err().to_string();
            assert!(e.contains("give http://HOST:PORT"), "{bad}: {e}");
        }
    }
}
