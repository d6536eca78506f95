use http_body_util::BodyExt as _;
use hyper::Method;

use super::*;
use crate::{
    recorder::{document::Listing, fixture, store::Limits},
    serve::{
        http::{Asked, respond as respond_http},
        metrics::Format,
    },
};

/// 2026-12-03T03:12:00.123456789Z
const T0: u64 = 1_796_267_520_123_456_789;

struct TestPages {
    store: Option<Store>,
}

impl Pages for TestPages {
    fn metrics(&self, _: Format) -> String {
        "# metrics\n".to_owned()
    }

    fn captures(&self) -> Option<&Store> {
        self.store.as_ref()
    }
}

struct Served {
    status: StatusCode,
    content_type: String,
    body: Vec<u8>,
}

impl Served {
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

fn get(pages: &Arc<dyn Pages>, renders: &Arc<Renders>, path: &str) -> Served {
    request(pages, renders, &Method::GET, path)
}

fn request(pages: &Arc<dyn Pages>, renders: &Arc<Renders>, method: &Method, path: &str) -> Served {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let asked = Asked {
            method,
            path,
            accept: None,
        };
        let r = respond_http(asked, Arc::clone(pages), Arc::clone(renders)).await;
        let status = r.status();
        let content_type = r
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = r.into_body().collect().await.unwrap().to_bytes().to_vec();
        Served {
            status,
            content_type,
            body,
        }
    })
}

struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn with_store(
    name: &str,
) -> (
    Scratch,
    Arc<dyn Pages>,
    Vec<crate::recorder::document::Capture>,
) {
    let dir = std::env::temp_dir().join(format!("netlat-pages-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(
        &dir,
        Limits {
            max_files: 10,
            max_bytes: 1 << 30,
        },
    )
    .unwrap();
    let mut captures = vec![
        fixture::capture(T0, 2),
        fixture::capture(T0 + 60_000_000_000, 1),
    ];
    captures[1].stacks.slow.clear();
    for c in &captures {
        store.write(c).unwrap();
    }
    let pages: Arc<dyn Pages> = Arc::new(TestPages { store: Some(store) });
    (Scratch(dir), pages, captures)
}

#[test]
fn paths_map_to_pages() {
    assert_eq!(Route::parse("/captures"), Some(Ok(Route::List)));
    assert_eq!(Route::parse("/captures/"), Some(Ok(Route::List)));
    assert_eq!(Route::parse("/captures/a"), Some(Ok(Route::Document("a"))));
    assert_eq!(
        Route::parse("/captures/a/flamegraph.svg"),
        Some(Ok(Route::FlameGraph("a")))
    );
    assert_eq!(Route::parse("/captures/a/b"), Some(Err(())));
    assert_eq!(Route::parse("/capturesx"), None);
    assert_eq!(Route::parse("/metrics"), None);
}

#[test]
fn listing_document_and_flame_graph() {
    let (_scratch, pages, captures) = with_store("serve");
    let renders = Renders::new();
    let list = get(&pages, &renders, "/captures");
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.content_type, "application/json");
    let listed: Vec<Listing> = serde_json::from_slice(&list.body).unwrap();
    assert_eq!(listed, [captures[1].listing(), captures[0].listing()]);

    let doc = get(&pages, &renders, &format!("/captures/{}", captures[0].id));
    assert_eq!(
        (doc.status, doc.content_type.as_str()),
        (StatusCode::OK, "application/json")
    );
    let back: crate::recorder::document::Capture = serde_json::from_slice(&doc.body).unwrap();
    assert_eq!(back, captures[0]);

    let path = format!("/captures/{}/flamegraph.svg", captures[0].id);
    let svg = get(&pages, &renders, &path);
    assert_eq!(
        (svg.status, svg.content_type.as_str()),
        (StatusCode::OK, "image/svg+xml")
    );
    let text = svg.text();
    assert_eq!(fixture::svg_root(&text), "svg");
    assert!(text.contains("net_rx_action calls slower than 5ms"));
    // Drawn once: the second answer is the kept one, even with the file gone.
    std::fs::remove_file(_scratch.0.join(format!("{}.json", captures[0].id))).unwrap();
    assert_eq!(get(&pages, &renders, &path).body, svg.body);
    let gone = get(&pages, &renders, &format!("/captures/{}", captures[0].id));
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    let head = request(&pages, &renders, &Method::HEAD, "/captures");
    assert_eq!(head.status, StatusCode::OK);
    let post = request(&pages, &renders, &Method::POST, "/captures");
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[test]
fn no_samples_unknown_and_hostile_ids_are_404() {
    let (_scratch, pages, captures) = with_store("missing");
    let renders = Renders::new();
    let empty = get(
        &pages,
        &renders,
        &format!("/captures/{}/flamegraph.svg", captures[1].id),
    );
    assert_eq!(empty.status, StatusCode::NOT_FOUND);
    assert!(
        empty.text().contains("no stack samples"),
        "{}",
        empty.text()
    );
    assert_eq!(empty.text().lines().count(), 1);
    for path in [
        "/captures/19700101T000000.000000Z-none",
        "/captures/..",
        "/captures/..%2f..%2fetc%2fpasswd",
        "/captures/.hidden",
        "/captures/%2e%2e/flamegraph.svg",
        "/captures/x/other.svg",
    ] {
        let r = get(&pages, &renders, path);
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.text().lines().count(), 1, "{path}: {}", r.text());
        assert!(!r.text().contains("%2"), "{path}: {}", r.text());
    }
}

#[test]
fn without_a_store_captures_are_404_and_metrics_still_served() {
    let pages: Arc<dyn Pages> = Arc::new(TestPages { store: None });
    let renders = Renders::new();
    for path in ["/captures", "/captures/x", "/captures/x/flamegraph.svg"] {
        let r = get(&pages, &renders, path);
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.text(), "serve was started without --capture\n");
    }
    let metrics = get(&pages, &renders, "/metrics");
    assert_eq!(
        (metrics.status, metrics.text().as_str()),
        (StatusCode::OK, "# metrics\n")
    );
    assert_eq!(get(&pages, &renders, "/nope").status, StatusCode::NOT_FOUND);
}

#[test]
fn served_over_a_socket_to_the_captures_client() {
    use crate::commands::captures::http_source::{self, Server};
    let (_scratch, pages, captures) = with_store("socket");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            super::super::serve(listener, pages).await;
        });
    });
    let server = Server::parse(&format!("http://{addr}")).unwrap();
    let listed: Vec<Listing> =
        serde_json::from_slice(&http_source::get(&server, "/captures", None).unwrap()).unwrap();
    assert_eq!(listed.len(), 2);
    let id = &captures[0].id;
    let doc = http_source::get(&server, &format!("/captures/{id}"), Some(id)).unwrap();
    assert_eq!(
        serde_json::from_slice::<crate::recorder::document::Capture>(&doc).unwrap(),
        captures[0]
    );
    let svg = http_source::get(&server, &format!("/captures/{id}/flamegraph.svg"), None).unwrap();
    assert_eq!(fixture::svg_root(std::str::from_utf8(&svg).unwrap()), "svg");
    let missing = "19700101T000000.000000Z-none";
    let e = http_source::get(&server, &format!("/captures/{missing}"), Some(missing)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "HTTP 404: no capture {missing} at http://{addr} (netlat captures --from http://{addr} lists them)"
        )
    );
    let e = http_source::get(
        &server,
        &format!("/captures/{}/flamegraph.svg", captures[1].id),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("HTTP 404: capture ") && e.contains("no stack samples"),
        "{e}"
    );
    // HEAD is answered with the headers only.
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(
        &mut stream,
        b"HEAD /captures HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n"), "a body followed: {answer}");
}
