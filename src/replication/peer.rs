//! The one client of another lightrag-backup instance: everything one instance asks another
//! goes through [`Peer`], with one set of headers (`X-API-Key`, `X-Source-Epoch`), one TLS
//! setup (a private CA, or `SSL_CERT_FILE`), one retry policy and one way of reading an answer.
//! A push (`push.rs`) and the Python side (the conflict policy's `info`, validation's `verify`,
//! a switchover's `promote`, through `_native.peer_call`) are its callers.
//!
//! Failures come back typed: a refusal on purpose (409: `fenced`, `target_is_primary`,
//! `conflict`) is [`Error::Refused`] with its kind, never retried; a peer that cannot be
//! reached (connection refused or reset, timeout) is [`Error::PeerUnreachable`], retried here
//! and retryable by the caller; 429 and 5xx are retried, then a transient backend error; a
//! certificate this client does not trust fails at once.

use crate::error::{BackendFailure, Error, Result};
use bytes::Bytes;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Where an instance answers, defined once: the receive routes a primary pushes to (under
/// [`routes::RECEIVE`]) and a switchover's promote. The Python side mounts the receive routes
/// from the same table (`_native.peer_routes()`).
pub mod routes {
    /// The receive routes' prefix, from an instance's root.
    pub const RECEIVE: &str = "/replication/receive";
    pub const INFO: &str = "/info";
    pub const SNAPSHOTS: &str = "/graphs/{graph_id}/snapshots";
    pub const WANT: &str = "/graphs/{graph_id}/want";
    pub const PACKS: &str = "/packs";
    pub const GRAPH_KEY: &str = "/graphs/{graph_id}/key";
    pub const SHRED: &str = "/graphs/{graph_id}/shred";
    pub const VERIFY: &str = "/graphs/{graph_id}/snapshots/{snapshot_id}/verify";
    pub const RECOVERY_POINTS: &str = "/recovery-points";
    /// A switchover's candidate takes the primary role here (from the root, not under RECEIVE).
    pub const PROMOTE: &str = "/recovery/promote";

    /// Every route by name (what `_native.peer_routes()` returns).
    pub const ALL: &[(&str, &str)] = &[
        ("receive", RECEIVE),
        ("info", INFO),
        ("snapshots", SNAPSHOTS),
        ("want", WANT),
        ("packs", PACKS),
        ("graph_key", GRAPH_KEY),
        ("shred", SHRED),
        ("verify", VERIFY),
        ("recovery_points", RECOVERY_POINTS),
        ("promote", PROMOTE),
    ];

    /// A receive route with its `{name}` parameters filled in, from the instance's root.
    /// Graph and snapshot ids are checked names (`[A-Za-z0-9_.-]`): nothing to escape.
    pub fn receive(template: &str, params: &[(&str, &str)]) -> String {
        let mut path = format!("{RECEIVE}{template}");
        for (name, value) in params {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        path
    }
}

/// Another instance.
#[derive(Debug, Clone)]
pub struct InstanceTarget {
    /// `http(s)://host:port`, with the path LightRAG's server may be mounted under.
    pub base_url: String,
    pub api_key: Option<String>,
    /// A PEM file of the CA that signed the target's certificate (a private CA).
    pub ca_file: Option<PathBuf>,
    /// This instance's fencing epoch, sent with every request.
    pub epoch: u64,
    /// Tries of a request that failed in a way worth retrying.
    pub retries: u32,
    pub timeout: Duration,
}

/// A client of one other instance (see the module documentation).
pub struct Peer {
    http: reqwest::Client,
    base: String,
    pub(crate) target: InstanceTarget,
}

impl Peer {
    /// A client of `target`.
    ///
    /// # Errors
    /// `InvalidInput` when its CA file is not a PEM certificate; `Io` when it cannot be read.
    pub fn new(target: &InstanceTarget) -> Result<Peer> {
        let mut builder = reqwest::Client::builder().timeout(target.timeout);
        if let Some(ca) = target
            .ca_file
            .as_ref()
            .cloned()
            .or_else(|| std::env::var_os("SSL_CERT_FILE").map(PathBuf::from))
        {
            let pem = std::fs::read(&ca).map_err(|e| Error::io("read", &ca, e))?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| {
                Error::invalid(format!("{} is not a PEM certificate: {e}", ca.display()))
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder
            .build()
            .map_err(|e| Error::invalid(format!("cannot build the HTTP client: {e}")))?;
        Ok(Peer {
            http,
            base: target.base_url.trim_end_matches('/').to_string(),
            target: target.clone(),
        })
    }

    /// One request to `path` (from the instance's root, see [`routes`]), retried with
    /// backoff while the failure is worth retrying; the answer's body.
    ///
    /// # Errors
    /// As the module documentation says.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(Bytes, &'static str)>,
    ) -> Result<Vec<u8>> {
        let url = format!("{}{path}", self.base);
        let mut attempt = 0u32;
        loop {
            let mut request = self
                .http
                .request(method.clone(), &url)
                .header("X-Source-Epoch", self.target.epoch.to_string());
            if let Some(key) = &self.target.api_key {
                request = request.header("X-API-Key", key);
            }
            if let Some((bytes, content_type)) = &body {
                request = request
                    .header("content-type", *content_type)
                    .body(bytes.clone()); // a reference count, not a copy
            }
            let outcome = request.send().await;
            let failure = match outcome {
                Ok(response) => {
                    let status = response.status();
                    let bytes = match read_answer(response, MAX_ANSWER).await {
                        Ok(bytes) => bytes,
                        Err(too_long) if status.is_success() => return Err(too_long),
                        Err(_) => Vec::new(),
                    };
                    if status.is_success() {
                        return Ok(bytes);
                    }
                    let (kind, message) = error_of(&bytes);
                    let retry = status.as_u16() == 429 || status.is_server_error();
                    let failure = refused(&self.target.base_url, status.as_u16(), &kind, &message);
                    if !retry {
                        return Err(failure);
                    }
                    failure
                }
                Err(error) if error.is_builder() => {
                    // No request could be made of this URL: a mistake, not an outage.
                    return Err(Error::invalid(format!(
                        "{url} cannot be asked: {}",
                        without_url(error)
                    )));
                }
                Err(error) => {
                    let message = without_url(error);
                    // A certificate this client does not trust will not become trusted by
                    // retrying: say so at once.
                    if message.contains("certificate") {
                        return Err(Error::Backend {
                            operation: "peer",
                            path: url.clone(),
                            message: format!("cannot reach the target: {message}"),
                            failure: BackendFailure::Other,
                        });
                    }
                    Error::PeerUnreachable {
                        target: self.target.base_url.clone(),
                        message,
                    }
                }
            };
            attempt += 1;
            if attempt > self.target.retries {
                // A single try's failure is the caller's to report; a retried one is told here.
                if attempt > 1 {
                    log::warn!(
                        "{method} {path} to {}: giving up after {attempt} tries: {failure}",
                        self.target.base_url
                    );
                }
                return Err(failure);
            }
            let backoff =
                (0.2 * 2f64.powi(attempt as i32 - 1) * (0.5 + rand::random::<f64>())).min(10.0);
            log::warn!(
                "{method} {path} to {}: {failure}; retrying in {backoff:.1} s (try {} of {})",
                self.target.base_url,
                attempt + 1,
                self.target.retries + 1
            );
            tokio::time::sleep(Duration::from_secs_f64(backoff)).await;
        }
    }

    /// [`Peer::send`], the answer read as JSON.
    ///
    /// # Errors
    /// As [`Peer::send`]; `Backend` when the answer is not the JSON expected.
    pub async fn json<T: for<'de> Deserialize<'de>>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(Bytes, &'static str)>,
    ) -> Result<T> {
        let bytes = self.send(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Backend {
            operation: "peer",
            path: format!("{}{path}", self.base),
            message: format!("the target answered something else than expected: {e}"),
            failure: BackendFailure::Other,
        })
    }
}

/// One call to `target` from synchronous code (the Python side's questions): `method` `path`
/// (from the root) with an optional JSON `body`; the answer's JSON text.
///
/// # Errors
/// As [`Peer::send`]; `InvalidInput` for a method that is not GET or POST or a path not of
/// [`routes`].
pub fn call(
    target: &InstanceTarget,
    method: &str,
    path: &str,
    body: Option<String>,
) -> Result<String> {
    let method = match method {
        "GET" => reqwest::Method::GET,
        "POST" => reqwest::Method::POST,
        other => {
            return Err(Error::invalid(format!(
                "a peer is asked with GET or POST, not {other}"
            )))
        }
    };
    if !path.starts_with(routes::RECEIVE) && path != routes::PROMOTE {
        return Err(Error::invalid(format!(
            "{path} is not a route one instance asks another"
        )));
    }
    let peer = Peer::new(target)?;
    let body = body.map(|text| (Bytes::from(text), "application/json"));
    let answer = crate::runtime::block_on(peer.json::<serde_json::Value>(method, path, body))?;
    Ok(answer.to_string())
}

/// The most an answer of a peer may hold: its answers are JSON reports and lists, far below
/// the largest whole object the format reads ([`crate::backend::MAX_WHOLE_OBJECT`]).
const MAX_ANSWER: u64 = crate::backend::MAX_WHOLE_OBJECT;

/// The body of `response`, refused (`Integrity`) once it passes `limit` bytes: a peer's
/// announced length is checked before anything is read, and the bytes as they arrive (an
/// answer without a length, or one that lies about it, is cut off at the limit).
async fn read_answer(mut response: reqwest::Response, limit: u64) -> Result<Vec<u8>> {
    let too_long = || {
        Error::integrity(format!(
            "the target's answer is longer than any it sends ({limit} bytes): refused"
        ))
    };
    if response
        .content_length()
        .is_some_and(|length| length > limit)
    {
        return Err(too_long());
    }
    let mut body = Vec::with_capacity(response.content_length().unwrap_or(0) as usize);
    loop {
        match response.chunk().await {
            Ok(Some(piece)) => {
                if (body.len() + piece.len()) as u64 > limit {
                    return Err(too_long());
                }
                body.extend_from_slice(&piece);
            }
            Ok(None) => return Ok(body),
            // A body cut off part-way reads as what arrived (the caller's JSON check
            // then refuses it), as `bytes()` did.
            Err(_) => return Ok(body),
        }
    }
}

/// The `{"error": {"kind", "message"}}` of a refusal, when the body is one.
fn error_of(body: &[u8]) -> (String, String) {
    #[derive(Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        kind: String,
        message: String,
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(parsed) => (parsed.error.kind, parsed.error.message),
        Err(_) => (
            "http_error".into(),
            String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
        ),
    }
}

fn refused(target: &str, status: u16, kind: &str, message: &str) -> Error {
    let failure = match status {
        401 | 403 => BackendFailure::Auth,
        429 | 500..=599 => BackendFailure::Transient,
        404 => BackendFailure::NotFound,
        _ => BackendFailure::Other,
    };
    if status == 409 {
        return Error::Refused {
            target: target.to_string(),
            kind: kind.to_string(),
            message: message.to_string(),
        };
    }
    Error::Backend {
        operation: "peer",
        path: target.to_string(),
        message: format!("the target answered {status} ({kind}): {message}"),
        failure,
    }
}

/// A reqwest error without its URL (the caller names the target), with every cause under it
/// (a refused certificate is three levels down).
fn without_url(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receive_routes_fill_their_parameters() {
        assert_eq!(
            routes::receive(
                routes::VERIFY,
                &[("graph_id", "g1"), ("snapshot_id", "abc")]
            ),
            "/replication/receive/graphs/g1/snapshots/abc/verify"
        );
        assert_eq!(
            routes::receive(routes::INFO, &[]),
            "/replication/receive/info"
        );
    }

    #[test]
    fn an_instance_nobody_listens_on_is_unreachable_and_retryable() {
        let target = InstanceTarget {
            base_url: "http://127.0.0.1:9".into(),
            api_key: None,
            ca_file: None,
            epoch: 0,
            retries: 0,
            timeout: Duration::from_secs(5),
        };
        let error = call(&target, "GET", &routes::receive(routes::INFO, &[]), None).unwrap_err();
        assert!(matches!(error, Error::PeerUnreachable { .. }), "{error:?}");
        assert!(error.is_retryable() && error.kind() == "peer_unreachable");
        assert!(call(&target, "GET", "/backup/graphs", None).is_err());
    }

    /// A one-answer HTTP server on loopback sending `head` and then `body` to whatever asks.
    fn answering(head: &'static str, body: Vec<u8>) -> String {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        format!("http://{address}")
    }

    fn target_at(base_url: String) -> InstanceTarget {
        InstanceTarget {
            base_url,
            api_key: None,
            ca_file: None,
            epoch: 0,
            retries: 0,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn an_answer_announcing_more_than_any_the_peer_sends_is_refused_before_it_is_read() {
        let base = answering(
            "HTTP/1.1 200 OK\r\ncontent-length: 1099511627776\r\n\r\n",
            vec![b'x'; 1000],
        );
        let peer = Peer::new(&target_at(base)).unwrap();
        let error =
            crate::runtime::block_on(peer.send(reqwest::Method::GET, "/info", None)).unwrap_err();
        assert_eq!(error.kind(), "integrity", "{error:?}");
        assert!(error.to_string().contains("longer than any"), "{error}");
    }

    #[test]
    fn an_answer_without_a_length_is_cut_off_at_the_limit() {
        // Chunked transfer: no length up front, 64 pieces of 100 bytes.
        let mut body = Vec::new();
        for _ in 0..64 {
            body.extend_from_slice(b"64\r\n");
            body.extend_from_slice(&[b'x'; 100]);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"0\r\n\r\n");
        let base = answering(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            body.clone(),
        );
        let peer = Peer::new(&target_at(base)).unwrap();
        let error = crate::runtime::block_on(async {
            let response = peer
                .http
                .get(format!("{}/info", peer.base))
                .send()
                .await
                .map_err(|e| Error::invalid(e.to_string()))?;
            read_answer(response, 1000).await
        })
        .unwrap_err();
        assert_eq!(error.kind(), "integrity", "{error:?}");
        // Under the limit the same answer reads whole.
        let base = answering(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            body,
        );
        let peer = Peer::new(&target_at(base)).unwrap();
        let whole =
            crate::runtime::block_on(peer.send(reqwest::Method::GET, "/info", None)).unwrap();
        assert_eq!(whole, vec![b'x'; 6400]);
    }

    #[test]
    fn a_path_that_makes_no_url_is_a_mistake_not_an_outage() {
        let target = InstanceTarget {
            base_url: "http://127.0.0.1:9".into(),
            api_key: None,
            ca_file: None,
            epoch: 0,
            retries: 3,
            timeout: Duration::from_secs(5),
        };
        let peer = Peer::new(&target).unwrap();
        // A path without its leading slash runs into the port: "127.0.0.1:9graphs/...".
        let error =
            crate::runtime::block_on(peer.send(reqwest::Method::GET, "graphs/g/snapshots", None))
                .unwrap_err();
        assert_eq!(error.kind(), "invalid_input", "{error:?}");
        assert!(!error.is_retryable());
    }
}
