//! `imdsguard serve`: a local web console over the store. The alert queue with filters (level,
//! rule, host, status, time, free text), incident pages with their timeline and each alert's
//! stored record, alert pages, the analysts' triage actions (`acknowledged`, `escalated`,
//! `closed`, with a note and who: the same actions `imdsguard triage` records, in the same
//! store), and a notice when `watch` stores new alerts while the page is open.
//!
//! Security: every request carries the access token (printed at start; a cookie once the
//! printed URL has been opened) unless the console was started without one on a loopback
//! address; a non-loopback address is refused without a token. Actions are POSTs that carry a
//! per-process CSRF token and, when the browser sends one, an `Origin` of this console. Nothing
//! from a log is rendered as markup (every value is escaped), and the pages are served with a
//! Content-Security-Policy that allows only this console's own script and style sheet.

mod pages;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use hyper::{Method, Request, Response, StatusCode};

/// What went wrong starting the console.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A non-loopback address without an access token.
    #[error("{0}: the console listens beyond this machine only with an access token (leave out --no-auth)")]
    Exposed(SocketAddr),
    /// No store at the path given.
    #[error("no store at {}: `imdsguard hunt` or `watch` writes one (--db PATH)", .0.display())]
    NoStore(PathBuf),
    /// The runtime or the random source failed.
    #[error("{0}")]
    Runtime(std::io::Error),
    /// The store cannot be opened.
    #[error(transparent)]
    Store(#[from] imdsguard_store::StoreError),
}

/// How the console runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it listens.
    pub listen: SocketAddr,
    /// The store.
    pub db: PathBuf,
    /// The access token; `None` only on loopback (`--no-auth`).
    pub token: Option<String>,
}

/// A random token: 32 hex digits from the kernel's random source.
pub fn random_token() -> Result<String, ConsoleError> {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(ConsoleError::Runtime)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Shared by every request.
pub(crate) struct State {
    pub(crate) db: PathBuf,
    token: Option<String>,
    /// The token every action's form carries.
    pub(crate) csrf: String,
}

/// Equal, in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

const COOKIE_NAME: &str = "imdsguard_session";

/// Runs until interrupted; `on_ready` gets the bound address.
pub fn serve(config: Config, on_ready: impl FnOnce(SocketAddr)) -> Result<(), ConsoleError> {
    if config.token.is_none() && !config.listen.ip().is_loopback() {
        return Err(ConsoleError::Exposed(config.listen));
    }
    // An existing store (a mistyped path must not show an empty console), opened (and
    // migrated) before the first page.
    if !imdsguard_store::exists(&config.db) {
        return Err(ConsoleError::NoStore(config.db));
    }
    // A database (whose name alone says nothing) must hold a store already.
    if imdsguard_store::is_url(&config.db) {
        imdsguard_store::Store::open_read(&config.db)?;
    }
    imdsguard_store::Store::open(&config.db)?;
    let state = Arc::new(State {
        db: config.db.clone(),
        token: config.token.clone(),
        csrf: random_token()?,
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ConsoleError::Runtime)?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ConsoleError::Bind {
                addr: config.listen,
                source,
            })?;
        on_ready(listener.local_addr().unwrap_or(config.listen));
        let accept = async {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // Out of descriptors, say: wait rather than spin.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let state = Arc::clone(&state);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(handle(req, &state).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(hyper_util::rt::TokioTimer::new())
                        .header_read_timeout(std::time::Duration::from_secs(10))
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        };
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(ConsoleError::Runtime)?;
        tokio::select! {
            _ = accept => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        Ok(())
    })
}

/// A response with the console's security headers.
pub(crate) fn respond(
    status: StatusCode,
    content_type: &str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    let h = r.headers_mut();
    let set = |h: &mut hyper::HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(CONTENT_TYPE, v);
    }
    set(
        h,
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    // `same-origin`, not `no-referrer`: with the latter a browser sends `Origin: null` on the
    // console's own forms, and the origin check refuses them.
    set(h, "referrer-policy", "same-origin");
    set(h, "cache-control", "no-store");
    set(h, "cross-origin-opener-policy", "same-origin");
    r
}

fn redirect(to: &str) -> Response<Full<Bytes>> {
    let mut r = respond(StatusCode::SEE_OTHER, "text/plain", "");
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

/// The query string's parameters.
pub(crate) fn query(req: &Request<Incoming>) -> Vec<(String, String)> {
    req.uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the request carries the access token (or none is needed).
fn authorized(req: &Request<Incoming>, state: &State) -> bool {
    let Some(token) = &state.token else {
        return true;
    };
    let bearer = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer.is_some_and(|b| same(b.trim(), token)) {
        return true;
    }
    req.headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .any(|(k, v)| k == COOKIE_NAME && same(v, token))
}

async fn handle(req: Request<Incoming>, state: &State) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    // Static parts need no token: they hold nothing from the store.
    match (req.method(), path.as_str()) {
        (&Method::GET, "/style.css") => {
            return respond(StatusCode::OK, "text/css; charset=utf-8", pages::STYLE)
        }
        (&Method::GET, "/app.js") => {
            return respond(
                StatusCode::OK,
                "text/javascript; charset=utf-8",
                pages::SCRIPT,
            )
        }
        _ => {}
    }
    if !authorized(&req, state) {
        // The printed URL: the token becomes a cookie, and the address bar loses it.
        if let (Some(token), &Method::GET) = (&state.token, req.method()) {
            let given = query(&req)
                .into_iter()
                .find(|(k, _)| k == "token")
                .map(|(_, v)| v);
            if given.is_some_and(|g| same(&g, token)) {
                let mut r = redirect(&path);
                if let Ok(v) = HeaderValue::from_str(&format!(
                    "{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Strict"
                )) {
                    r.headers_mut().insert(SET_COOKIE, v);
                }
                return r;
            }
        }
        return respond(
            StatusCode::UNAUTHORIZED,
            "text/html; charset=utf-8",
            pages::page(
                "Access token needed",
                "<p>Open the address <code>imdsguard serve</code> printed when it started (it carries the access token).</p>",
                None,
            ),
        );
    }
    let result = match (req.method().clone(), path.as_str()) {
        (Method::GET, "/") => pages::queue(state, &query(&req)),
        (Method::GET, "/incidents") => pages::incidents(state),
        (Method::GET, "/api/latest") => pages::latest(state),
        (Method::GET, p) if p.starts_with("/incident/") => {
            pages::incident(state, &p["/incident/".len()..])
        }
        (Method::GET, p) if p.starts_with("/alert/") => pages::alert(state, &p["/alert/".len()..]),
        (Method::POST, "/act") => act(req, state).await,
        _ => Ok(respond(
            StatusCode::NOT_FOUND,
            "text/html; charset=utf-8",
            pages::page("Not found", "<p>No such page.</p>", None),
        )),
    };
    result.unwrap_or_else(|e| {
        respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/html; charset=utf-8",
            pages::page(
                "The store failed",
                &format!("<p>{}</p>", imdsguard_report::esc(&e.to_string())),
                None,
            ),
        )
    })
}

/// A triage action from a form: checked (CSRF token, origin, status, target), recorded, and
/// the browser sent back to the page it came from.
async fn act(
    req: Request<Incoming>,
    state: &State,
) -> Result<Response<Full<Bytes>>, imdsguard_store::StoreError> {
    let host = req
        .headers()
        .get(hyper::header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let origin = req
        .headers()
        .get(hyper::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let forbidden = |why: &str| {
        Ok(respond(
            StatusCode::FORBIDDEN,
            "text/html; charset=utf-8",
            pages::page(
                "Refused",
                &format!("<p>{}</p>", imdsguard_report::esc(why)),
                None,
            ),
        ))
    };
    if let Some(o) = &origin {
        if o != &format!("http://{host}") {
            return forbidden("the form came from another site");
        }
    }
    let body = match Limited::new(req.into_body(), 64 * 1024).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return forbidden("the form is too large"),
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.trim().to_owned())
    };
    if !field("csrf").is_some_and(|c| same(&c, &state.csrf)) {
        return forbidden("the form's token does not match this console (reload the page)");
    }
    let Some(target) = field("target").filter(|t| !t.is_empty()) else {
        return forbidden("no alert or incident named");
    };
    let Some(status) = field("status").filter(|s| imdsguard_store::STATUSES.contains(&s.as_str()))
    else {
        return forbidden("the status is none of acknowledged, escalated, closed");
    };
    let who = field("who")
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "console".to_owned());
    let note = field("note").filter(|n| !n.is_empty());
    let mut store = imdsguard_store::Store::open(&state.db)?;
    store.act(&target, &status, note.as_deref(), &who)?;
    let back = if target.starts_with("INC-") {
        format!("/incident/{}", pages::path_part(&target))
    } else {
        format!("/alert/{}", pages::path_part(&target))
    };
    Ok(redirect(&back))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        let t = random_token().unwrap();
        assert_eq!(t.len(), 32);
        assert_ne!(t, random_token().unwrap());
    }

    #[test]
    fn a_console_needs_a_store_and_beyond_loopback_a_token() {
        let missing = std::env::temp_dir().join("imdsguard-no-such-store.db");
        let c = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            db: missing.clone(),
            token: None,
        };
        assert!(matches!(serve(c, |_| {}), Err(ConsoleError::NoStore(_))));
        assert!(!missing.exists(), "a missing store is not created");
        let c = Config {
            listen: "0.0.0.0:0".parse().unwrap(),
            db: std::env::temp_dir().join("never-opened.db"),
            token: None,
        };
        assert!(matches!(serve(c, |_| {}), Err(ConsoleError::Exposed(_))));
    }
}
