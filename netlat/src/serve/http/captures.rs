//! The flight recorder's pages: `/captures` (the listing, newest first),
//! `/captures/ID` (the document) and `/captures/ID/flamegraph.svg` (drawn
//! on request). File reads and drawing run on tokio's blocking pool, so a
//! big capture never holds up a scrape; drawing is one at a time, and the
//! last few drawings are kept, so repeated requests for one SVG cost one
//! render and a flood of distinct ones costs one core at most.

use std::{collections::VecDeque, sync::Arc, sync::Mutex};

use http_body_util::Full;
use hyper::{Response, StatusCode, body::Bytes, header};
use tokio::sync::Semaphore;

use super::{Pages, text};
use crate::recorder::{
    flame::{self, FlameError},
    store::{Store, StoreError, valid_id},
};

/// SVGs kept after drawing (each is some hundreds of KiB at most).
const KEPT_SVGS: usize = 4;

/// What a `/captures...` path asks for; None: not one of these pages.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<'a> {
    List,
    Document(&'a str),
    FlameGraph(&'a str),
}

impl<'a> Route<'a> {
    /// Some(Err(())) for a path under /captures/ that is no page.
    pub fn parse(path: &'a str) -> Option<Result<Route<'a>, ()>> {
        if path == "/captures" || path == "/captures/" {
            return Some(Ok(Route::List));
        }
        let rest = path.strip_prefix("/captures/")?;
        Some(match rest.split_once('/') {
            None => Ok(Route::Document(rest)),
            Some((id, "flamegraph.svg")) => Ok(Route::FlameGraph(id)),
            Some(_) => Err(()),
        })
    }
}

/// Drawing one SVG at a time, and the last few drawn.
pub struct Renders {
    permit: Semaphore,
    kept: Mutex<VecDeque<(String, Bytes)>>,
}

impl Renders {
    pub fn new() -> Arc<Renders> {
        Arc::new(Renders {
            permit: Semaphore::new(1),
            kept: Mutex::new(VecDeque::new()),
        })
    }

    fn kept(&self, id: &str) -> Option<Bytes> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.iter()
            .find(|(k, _)| k == id)
            .map(|(_, svg)| svg.clone())
    }

    fn keep(&self, id: &str, svg: Bytes) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.retain(|(k, _)| k != id);
        if kept.len() >= KEPT_SVGS {
            kept.pop_front();
        }
        kept.push_back((id.to_owned(), svg));
    }
}

pub async fn respond(
    route: Route<'_>,
    pages: Arc<dyn Pages>,
    renders: Arc<Renders>,
) -> Response<Full<Bytes>> {
    if pages.captures().is_none() {
        return text(
            StatusCode::NOT_FOUND,
            "serve was started without --capture\n".to_owned(),
        );
    }
    let id = match route {
        Route::List => {
            let listing = pages.captures().map(Store::list).unwrap_or_default();
            let json = serde_json::to_vec(&listing).expect("a listing serializes");
            return typed(json.into(), "application/json");
        }
        Route::Document(id) | Route::FlameGraph(id) => id,
    };
    // Never a path lookup before the id is known to be one.
    if !valid_id(id) {
        return not_found(id);
    }
    let id = id.to_owned();
    match route {
        Route::Document(_) => {
            let read = blocking(pages, move |store| store.read(&id).map_err(Failure::Store));
            match read.await {
                Ok(bytes) => typed(bytes.into(), "application/json"),
                Err(f) => f.response(),
            }
        }
        _ => flame_graph(id, pages, renders).await,
    }
}

async fn flame_graph(
    id: String,
    pages: Arc<dyn Pages>,
    renders: Arc<Renders>,
) -> Response<Full<Bytes>> {
    // Only fails once closed, which it never is.
    let Ok(_permit) = renders.permit.acquire().await else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down\n".to_owned(),
        );
    };
    // Checked under the permit: a burst of requests for one SVG draws once.
    if let Some(svg) = renders.kept(&id) {
        return typed(svg, "image/svg+xml");
    }
    let key = id.clone();
    let drawn = blocking(pages, move |store| {
        let capture = store.capture(&id).map_err(Failure::Store)?;
        flame::render(&capture).map_err(Failure::Flame)
    });
    match drawn.await {
        Ok(svg) => {
            let svg = Bytes::from(svg);
            renders.keep(&key, svg.clone());
            typed(svg, "image/svg+xml")
        }
        Err(f) => f.response(),
    }
}

enum Failure {
    Store(StoreError),
    Flame(FlameError),
    Gone,
}

impl Failure {
    fn response(self) -> Response<Full<Bytes>> {
        match self {
            Failure::Store(StoreError::NotFound { id } | StoreError::InvalidId { id }) => {
                not_found(&id)
            }
            Failure::Flame(e @ FlameError::NoSamples { .. }) => {
                text(StatusCode::NOT_FOUND, format!("{e}\n"))
            }
            Failure::Store(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
            Failure::Flame(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
            Failure::Gone => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the capture could not be read\n".to_owned(),
            ),
        }
    }
}

/// Runs `work` on the store off the async threads.
async fn blocking<T: Send + 'static>(
    pages: Arc<dyn Pages>,
    work: impl FnOnce(&Store) -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    let joined = tokio::task::spawn_blocking(move || match pages.captures() {
        Some(store) => work(store),
        None => Err(Failure::Gone),
    });
    joined.await.unwrap_or(Err(Failure::Gone))
}

fn not_found(id: &str) -> Response<Full<Bytes>> {
    // The id is the client's: shown only when it is a plain id.
    let shown = if valid_id(id) { id } else { "with that id" };
    text(
        StatusCode::NOT_FOUND,
        format!("no capture {shown}: see /captures\n"),
    )
}

fn typed(body: Bytes, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    r
}

#[cfg(test)]
#[path = "captures_tests.rs"]
mod tests;
