//! Outbound HTTP, through `wasi:http`.
//!
//! The host sends a request only to a host the operator granted
//! (`paracle plugin grant NAME net:HOST`); anything else fails with
//! [`Error::Denied`], and the host reports the call as denied whatever the
//! plugin does next. Redirects are followed, each one checked by the host
//! like a new request.
//!
//! ```ignore
//! use paracle_sdk::http::Request;
//!
//! let reply = Request::post("https://api.example.com/v1/things")
//!     .header("authorization", format!("Bearer {key}"))
//!     .json(&serde_json::json!({"name": "x"}))
//!     .send()?;
//! let value = reply.error_for_status()?.json()?;
//! ```

use serde_json::Value;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method as WasiMethod, OutgoingBody, OutgoingRequest,
    Scheme as WasiScheme,
};
use wasip2::io::streams::StreamError;

use crate::Error;

/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// The host takes at most this much per write to a request body.
const WRITE_CHUNK: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

/// An HTTP request to send.
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Send `value` as the JSON body.
    pub fn json(self, value: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(value.to_string())
    }

    /// Send the request and read the whole response, following redirects.
    pub fn send(self) -> Result<Response, Error> {
        let mut request = self;
        for _ in 0..=MAX_REDIRECTS {
            let response = send_once(&request)?;
            let Some(location) = response
                .header("location")
                .filter(|_| (300..400).contains(&response.status))
            else {
                return Ok(response);
            };
            let next = resolve_location(&request.url, location)?;
            // 303, and 301/302 after a POST as browsers do, turn into a GET.
            let keeps_method = matches!(response.status, 307 | 308)
                || (request.method == Method::Get && response.status != 303);
            request = if keeps_method {
                Request {
                    url: next,
                    ..request
                }
            } else {
                Request {
                    method: Method::Get,
                    url: next,
                    headers: request
                        .headers
                        .into_iter()
                        .filter(|(name, _)| !name.eq_ignore_ascii_case("content-type"))
                        .collect(),
                    body: Vec::new(),
                }
            };
        }
        Err(Error::Unavailable(format!(
            "more than {MAX_REDIRECTS} redirects, the last to {}",
            request.url
        )))
    }
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Header names are lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Result<Value, Error> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::Unavailable(format!(
                "the server answered {} with a body that is not JSON ({e})",
                self.status
            ))
        })
    }

    /// The response itself when its status is 2xx, else an error carrying
    /// the status and the start of the body: `not-found` for 404,
    /// `denied` for 401 and 403, `unavailable` otherwise.
    pub fn error_for_status(self) -> Result<Self, Error> {
        if (200..300).contains(&self.status) {
            return Ok(self);
        }
        let text = self.text();
        let excerpt: String = text.chars().take(300).collect();
        let message = format!("the server answered {}: {excerpt}", self.status);
        Err(match self.status {
            401 | 403 => Error::Denied(message),
            404 => Error::NotFound(message),
            400 | 422 => Error::InvalidInput(message),
            _ => Error::Unavailable(message),
        })
    }
}

struct Url<'a> {
    https: bool,
    authority: &'a str,
    path_and_query: &'a str,
}

fn parse_url(url: &str) -> Result<Url<'_>, Error> {
    let bad = |why: &str| Error::InvalidInput(format!("bad URL `{url}`: {why}"));
    let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(bad("it must start with http:// or https://"));
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(split);
    if authority.is_empty() || authority.contains('@') {
        return Err(bad("it needs a host, without user info"));
    }
    Ok(Url {
        https,
        authority,
        path_and_query: if path_and_query.is_empty() {
            "/"
        } else {
            path_and_query
        },
    })
}

/// Where a `location` header points, relative to the request's URL.
fn resolve_location(base: &str, location: &str) -> Result<String, Error> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return Ok(location.to_string());
    }
    let base = parse_url(base)?;
    let scheme = if base.https { "https" } else { "http" };
    if let Some(rest) = location.strip_prefix("//") {
        return Ok(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Ok(format!("{scheme}://{}{location}", base.authority));
    }
    let path = base.path_and_query.split('?').next().unwrap_or("/");
    let directory = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    Ok(format!(
        "{scheme}://{}{directory}{location}",
        base.authority
    ))
}

fn send_once(request: &Request) -> Result<Response, Error> {
    let url = parse_url(&request.url)?;
    let invalid = |what: &str| Error::InvalidInput(format!("{what} in request to {}", request.url));
    let mut headers: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone().into_bytes()))
        .collect();
    // A declared length lets the request go out in one piece rather than
    // chunked, which some small servers do not take.
    if !request.body.is_empty() && !headers.iter().any(|(n, _)| n == "content-length") {
        headers.push((
            "content-length".into(),
            request.body.len().to_string().into_bytes(),
        ));
    }
    let fields =
        Fields::from_list(&headers).map_err(|e| invalid(&format!("bad header ({e:?})")))?;
    let outgoing = OutgoingRequest::new(fields);
    outgoing
        .set_method(&match request.method {
            Method::Get => WasiMethod::Get,
            Method::Post => WasiMethod::Post,
            Method::Put => WasiMethod::Put,
            Method::Delete => WasiMethod::Delete,
        })
        .map_err(|()| invalid("bad method"))?;
    outgoing
        .set_scheme(Some(if url.https {
            &WasiScheme::Https
        } else {
            &WasiScheme::Http
        }))
        .map_err(|()| invalid("bad scheme"))?;
    outgoing
        .set_authority(Some(url.authority))
        .map_err(|()| invalid("bad host"))?;
    outgoing
        .set_path_with_query(Some(url.path_and_query))
        .map_err(|()| invalid("bad path"))?;
    let body = outgoing.body().map_err(|()| invalid("no body"))?;
    let pending =
        outgoing_handler::handle(outgoing, None).map_err(|code| from_code(code, &request.url))?;
    {
        let stream = body.write().map_err(|()| invalid("no body stream"))?;
        for chunk in request.body.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| stream_error(e, &request.url))?;
        }
    }
    OutgoingBody::finish(body, None).map_err(|code| from_code(code, &request.url))?;

    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(from_code(code, &request.url)),
        Some(Err(())) | None => {
            return Err(Error::Internal(format!(
                "the response to {} was already taken",
                request.url
            )))
        }
    };
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|()| invalid("no response body"))?;
    let mut body = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|()| invalid("no response stream"))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(error) => return Err(stream_error(error, &request.url)),
            }
        }
    }
    drop(IncomingBody::finish(incoming));
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn stream_error(error: StreamError, url: &str) -> Error {
    match error {
        StreamError::Closed => Error::Unavailable(format!("the connection to {url} closed early")),
        StreamError::LastOperationFailed(io) => match wasip2::http::types::http_error_code(&io) {
            Some(code) => from_code(code, url),
            None => Error::Unavailable(format!("{url}: {}", io.to_debug_string())),
        },
    }
}

fn from_code(code: ErrorCode, url: &str) -> Error {
    match code {
        ErrorCode::HttpRequestDenied => Error::Denied(format!(
            "the host refused the request to {url}: it is not granted to this plugin"
        )),
        ErrorCode::HttpResponseBodySize(limit) => Error::Unavailable(format!(
            "the response from {url} was larger than the host allows ({} bytes)",
            limit.unwrap_or_default()
        )),
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout
        | ErrorCode::DnsTimeout => Error::Timeout(format!("{url}: {code:?}")),
        ErrorCode::HttpRequestUriInvalid | ErrorCode::HttpRequestMethodInvalid => {
            Error::InvalidInput(format!("{url}: {code:?}"))
        }
        other => Error::Unavailable(format!("{url}: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_url, resolve_location};

    #[test]
    fn urls_split_into_scheme_host_and_path() {
        let url = parse_url("https://api.example.com:8443/v1/chat?x=1").unwrap();
        assert!(url.https);
        assert_eq!(url.authority, "api.example.com:8443");
        assert_eq!(url.path_and_query, "/v1/chat?x=1");
        assert_eq!(parse_url("http://h").unwrap().path_and_query, "/");
        assert!(parse_url("ftp://h/").is_err());
        assert!(parse_url("http://user@h/").is_err());
    }

    #[test]
    fn redirects_resolve_against_the_request() {
        let base = "http://a.org:81/v1/models?all";
        assert_eq!(
            resolve_location(base, "https://b.org/x").unwrap(),
            "https://b.org/x"
        );
        assert_eq!(resolve_location(base, "/y").unwrap(), "http://a.org:81/y");
        assert_eq!(
            resolve_location(base, "//c.org/z").unwrap(),
            "http://c.org/z"
        );
        assert_eq!(
            resolve_location(base, "other").unwrap(),
            "http://a.org:81/v1/other"
        );
    }
}
