//! Outbound network for plugins.
//!
//! A plugin reaches the network through `wasi:http`, and only hosts it was
//! granted. Paracle resolves a granted name itself, checks every address the
//! name resolves to, and connects to an address it checked, so a name cannot
//! be pointed elsewhere between the check and the connection. Loopback,
//! private, link-local and cloud-metadata addresses are refused unless that
//! address itself is granted. A redirect is a new request from the plugin and
//! goes through the same check. `wasi:sockets` may only connect to granted IP
//! addresses.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime::component::Resource;
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, IpAddressFamily};
use wasmtime_wasi::p2::bindings::sockets::{tcp_create_socket, udp_create_socket};
use wasmtime_wasi::p2::{self, SocketError, SocketResult};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsCtxView};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use paracle_policy::{restricted, Grant, Limit, NetGrant};

use crate::descriptors::Held;
use crate::incident::{Incident, Incidents};
use crate::person::{Answer, AtHand, PermissionRequest, Wanted};

/// What one plugin may reach, and how much it may receive.
#[derive(Debug)]
pub(crate) struct NetPolicy {
    grants: Vec<NetGrant>,
    /// Granted while the plugin ran, by a person who allowed it for this
    /// plugin from then on.
    added: RwLock<Vec<NetGrant>>,
    response_limit: u64,
}

/// Hosts a person allowed for the current call only, and the questions the
/// call has asked; both start over as each call begins. An answer to a
/// question of an earlier call (a request the guest left pending across
/// calls) is not applied to a later one.
#[derive(Debug, Clone, Default)]
pub(crate) struct AllowedOnce(Arc<OnceShared>);

#[derive(Debug, Default)]
struct OnceShared {
    /// Which call of the instance is under way.
    call: AtomicU64,
    /// Whether the call asked anything: only then is there anything to
    /// forget as the next begins, and every call begins here.
    asked: AtomicBool,
    state: Mutex<OnceState>,
}

#[derive(Debug, Default)]
struct OnceState {
    grants: Vec<NetGrant>,
    questions: usize,
}

/// Questions one call may ask about the network: a plugin that fires
/// requests at many hosts is refused the rest without a question.
const MOST_QUESTIONS_PER_CALL: usize = 4;

impl AllowedOnce {
    pub(crate) fn clear(&self) {
        self.0.call.fetch_add(1, Ordering::AcqRel);
        // Read first: a swap is a locked write even when nothing was asked.
        if self.0.asked.load(Ordering::Acquire) && self.0.asked.swap(false, Ordering::AcqRel) {
            let mut state = self.0.state.lock().unwrap();
            state.grants.clear();
            state.questions = 0;
        }
    }

    /// Take a question from the call's allowance; the call it belongs to.
    fn take_question(&self) -> Option<u64> {
        let mut state = self.0.state.lock().unwrap();
        self.0.asked.store(true, Ordering::Release);
        if state.questions >= MOST_QUESTIONS_PER_CALL {
            return None;
        }
        state.questions += 1;
        Some(self.0.call.load(Ordering::Acquire))
    }

    fn add(&self, call: u64, grant: NetGrant) -> bool {
        let mut state = self.0.state.lock().unwrap();
        if self.0.call.load(Ordering::Acquire) != call {
            return false;
        }
        state.grants.push(grant);
        true
    }

    fn snapshot(&self) -> Vec<NetGrant> {
        if !self.0.asked.load(Ordering::Acquire) {
            return Vec::new();
        }
        self.0.state.lock().unwrap().grants.clone()
    }
}

/// Who is asking, for the person's question.
#[derive(Debug, Clone)]
pub(crate) struct Asker {
    pub(crate) plugin: Arc<str>,
    pub(crate) digest: Arc<str>,
    pub(crate) signer: Option<String>,
}

impl Asker {
    /// Ask the person at hand for the network grant a denial names, and
    /// apply the answer. Whether the denied request may go ahead.
    async fn ask(
        &self,
        person: &AtHand,
        denial: &Incident,
        policy: &NetPolicy,
        once: &AllowedOnce,
    ) -> bool {
        let Incident::Denied {
            grant: Some(grant), ..
        } = denial
        else {
            return false;
        };
        let Some(asked) = grant
            .strip_prefix("net:")
            .and_then(|g| NetGrant::parse(g).ok())
        else {
            return false;
        };
        let Some(call) = once.take_question() else {
            return false;
        };
        let request = PermissionRequest {
            plugin: self.plugin.to_string(),
            digest: self.digest.to_string(),
            signer: self.signer.clone(),
            wanted: Wanted::Net {
                grant: asked.clone(),
            },
            reason: None,
        };
        match person.permit(request).await {
            Answer::Once(Grant::Net(grant)) if grant == asked => once.add(call, grant),
            Answer::Always(Grant::Net(grant)) if grant == asked => {
                policy.add(grant);
                true
            }
            _ => false,
        }
    }
}

/// Why a request was not sent.
enum Refusal {
    /// The grants do not allow it: the call is denied.
    Denied(Incident),
    /// A granted name that does not resolve: the plugin's problem to report.
    Unresolved(String),
}

impl NetPolicy {
    pub(crate) fn new(grants: Vec<NetGrant>, response_limit: u64) -> Self {
        NetPolicy {
            grants,
            added: RwLock::default(),
            response_limit,
        }
    }

    /// Allow `grant` from now on, for every instance.
    pub(crate) fn add(&self, grant: NetGrant) {
        let mut added = self.added.write().unwrap();
        if !self.grants.contains(&grant) && !added.contains(&grant) {
            added.push(grant);
        }
    }

    /// The grants in force for a call: the plugin's, those added since it
    /// was loaded, and those allowed for this call.
    fn in_force(&self, once: &[NetGrant]) -> Vec<NetGrant> {
        let added = self.added.read().unwrap();
        self.grants
            .iter()
            .chain(added.iter())
            .chain(once)
            .cloned()
            .collect()
    }

    /// Check a request for `host:port` against the grants in force, and
    /// resolve it to addresses that may be reached.
    async fn admit(
        &self,
        host: &str,
        port: u16,
        once: &[NetGrant],
    ) -> Result<Vec<SocketAddr>, Refusal> {
        let grants = if once.is_empty() && self.added.read().unwrap().is_empty() {
            std::borrow::Cow::Borrowed(&self.grants)
        } else {
            std::borrow::Cow::Owned(self.in_force(once))
        };
        let denied = |reason: String, grant: String| {
            Refusal::Denied(Incident::Denied {
                capability: format!("network access to {}", display_host_port(host, port)),
                reason,
                grant: Some(format!("net:{grant}")),
            })
        };
        if !grants.iter().any(|g| g.admits(host, port)) {
            return Err(denied(
                "it was not granted".into(),
                display_host_port(host, port),
            ));
        }
        let addresses: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| Refusal::Unresolved(format!("`{host}` does not resolve: {e}")))?
                .collect(),
        };
        if addresses.is_empty() {
            return Err(Refusal::Unresolved(format!(
                "`{host}` resolves to no address"
            )));
        }
        for address in &addresses {
            let Some(why) = restricted(address.ip()) else {
                continue;
            };
            if !grants.iter().any(|g| g.admits_address(*address)) {
                let resolved = if host.parse::<IpAddr>().is_ok() {
                    String::new()
                } else {
                    format!("`{host}` resolves to {}, ", address.ip())
                };
                return Err(denied(
                    format!(
                        "{resolved}a {why} address, which is refused unless that address itself is granted"
                    ),
                    display_host_port(&address.ip().to_string(), port),
                ));
            }
        }
        Ok(addresses)
    }

    /// The `wasi:sockets` gate: TCP connections to granted addresses only.
    fn admit_socket(
        &self,
        address: SocketAddr,
        usage: SocketAddrUse,
        once: &[NetGrant],
    ) -> Result<(), Incident> {
        let allowed = match usage {
            SocketAddrUse::TcpConnect => self
                .in_force(once)
                .iter()
                .any(|g| g.admits_address(address)),
            // The implicit bind before a connect: it reaches nothing by
            // itself, and refusing it would hide which connection was denied.
            SocketAddrUse::TcpBind => address.ip().is_unspecified() && address.port() == 0,
            _ => false,
        };
        if allowed {
            return Ok(());
        }
        let what = match usage {
            SocketAddrUse::TcpConnect => "a TCP connection to",
            SocketAddrUse::TcpBind => "a TCP socket bound to",
            SocketAddrUse::TcpListen => "a TCP listener on",
            SocketAddrUse::TcpAccept => "a TCP connection accepted from",
            _ => "a UDP socket to",
        };
        let (reason, grant) = match usage {
            SocketAddrUse::TcpConnect => (
                "sockets reach only granted IP addresses",
                Some(format!(
                    "net:{}",
                    display_host_port(&address.ip().to_string(), address.port())
                )),
            ),
            _ => (
                "plugins may only open outgoing TCP connections to granted addresses",
                None,
            ),
        };
        Err(Incident::Denied {
            capability: format!("{what} {address}"),
            reason: reason.into(),
            grant,
        })
    }
}

fn display_host_port(host: &str, port: u16) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
        _ => format!("{host}:{port}"),
    }
}

/// Configure a store's `wasi:sockets` with the plugin's policy: no name
/// lookups, no UDP, and TCP connections only where granted. TCP and UDP are
/// switched on so that every use of a socket is checked here, and a refused
/// one reported as denied, rather than failing anonymously when the socket
/// is made.
pub(crate) fn gate_sockets(wasi: &mut wasmtime_wasi::WasiCtxBuilder, gate: &HttpGate) {
    wasi.allow_ip_name_lookup(false);
    wasi.allow_udp(true);
    wasi.allow_tcp(true);
    let HttpGate {
        policy,
        incidents,
        once,
        asker,
    } = gate.clone();
    wasi.socket_addr_check(move |address, usage| {
        let policy = policy.clone();
        let incidents = incidents.clone();
        let once = once.clone();
        let asker = asker.clone();
        // Taken now: the check runs in the call's task, where the person
        // at hand is known.
        let person = AtHand::current();
        Box::pin(async move {
            let denial = match policy.admit_socket(address, usage, &once.snapshot()) {
                Ok(()) => return true,
                Err(incident) => incident,
            };
            if let Some(person) = person {
                // On a task of its own: the check's future must be `Sync`,
                // and a question's need not be.
                let asked = {
                    let (policy, once, denial) = (policy.clone(), once.clone(), denial.clone());
                    tokio::spawn(async move { asker.ask(&person, &denial, &policy, &once).await })
                };
                if asked.await.unwrap_or(false)
                    && policy
                        .admit_socket(address, usage, &once.snapshot())
                        .is_ok()
                {
                    return true;
                }
            }
            incidents.record(denial);
            false
        })
    });
}

/// Sockets one instance may hold at once. Each is a descriptor of the host
/// process's own, and an instance with no grant at all can make them: the
/// grant is checked when a socket is used, not when it is made.
pub const MAX_SOCKETS: usize = 64;

/// `wasi:sockets`' two socket constructors, counted: past [`MAX_SOCKETS`]
/// live sockets a new one is refused with `new-socket-limit`, and the call
/// fails with the `open handles` limit.
pub(crate) struct CountedSockets;

impl wasmtime::component::HasData for CountedSockets {
    type Data<'a> = CountedSocketsView<'a>;
}

pub(crate) struct CountedSocketsView<'a> {
    pub(crate) sockets: WasiSocketsCtxView<'a>,
    /// The sockets this instance made, some perhaps dropped since.
    pub(crate) held: &'a mut Held,
    pub(crate) incidents: &'a Incidents,
}

impl CountedSocketsView<'_> {
    fn admit(&mut self) -> Result<(), SocketError> {
        self.held.admit(self.sockets.table).map_err(|incident| {
            self.incidents.record(incident);
            ErrorCode::NewSocketLimit.into()
        })
    }
}

/// The count of an instance's sockets, for [`MAX_SOCKETS`].
pub(crate) fn held_sockets() -> Held {
    Held::new(MAX_SOCKETS, "sockets", |entry| {
        entry.is::<p2::TcpSocket>() || entry.is::<p2::UdpSocket>()
    })
}

/// The constructors' interfaces use `network`'s error type; its conversions
/// are wasmtime's own.
impl network::Host for CountedSocketsView<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        network::Host::convert_error_code(&mut self.sockets, error)
    }

    fn network_error_code(
        &mut self,
        error: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        network::Host::network_error_code(&mut self.sockets, error)
    }
}

impl network::HostNetwork for CountedSocketsView<'_> {
    fn drop(&mut self, this: Resource<network::Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.sockets, this)
    }
}

impl tcp_create_socket::Host for CountedSocketsView<'_> {
    fn create_tcp_socket(
        &mut self,
        family: IpAddressFamily,
    ) -> SocketResult<Resource<p2::TcpSocket>> {
        self.admit()?;
        let socket = tcp_create_socket::Host::create_tcp_socket(&mut self.sockets, family)?;
        self.held.push(socket.rep());
        Ok(socket)
    }
}

impl udp_create_socket::Host for CountedSocketsView<'_> {
    async fn create_udp_socket(
        &mut self,
        family: IpAddressFamily,
    ) -> SocketResult<Resource<p2::UdpSocket>> {
        self.admit()?;
        let socket = udp_create_socket::Host::create_udp_socket(&mut self.sockets, family).await?;
        self.held.push(socket.rep());
        Ok(socket)
    }
}

/// The `wasi:http` hooks of one store: every request is checked against the
/// policy, then sent by paracle to the checked address.
#[derive(Clone)]
pub(crate) struct HttpGate {
    pub(crate) policy: Arc<NetPolicy>,
    pub(crate) incidents: Incidents,
    pub(crate) once: AllowedOnce,
    pub(crate) asker: Asker,
}

/// A name, then the address it resolves to, may each need a person's yes.
const MOST_QUESTIONS_PER_REQUEST: usize = 2;

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for HttpGate {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        let HttpGate {
            policy,
            incidents,
            once,
            asker,
        } = self.clone();
        // The request is sent from a task of its own: the person at hand is
        // known only here, in the call's.
        let person = AtHand::current();
        Box::new(async move {
            let target = Target::of(request.uri())?;
            let mut questions = 0;
            let addresses = loop {
                match policy
                    .admit(&target.host, target.port, &once.snapshot())
                    .await
                {
                    Ok(addresses) => break addresses,
                    Err(Refusal::Denied(incident)) => {
                        if let Some(person) = person.as_ref() {
                            if questions < MOST_QUESTIONS_PER_REQUEST {
                                questions += 1;
                                if asker.ask(person, &incident, &policy, &once).await {
                                    continue;
                                }
                            }
                        }
                        incidents.record(incident);
                        return Err(HttpError::HttpRequestDenied);
                    }
                    Err(Refusal::Unresolved(reason)) => {
                        return Err(HttpError::DnsError {
                            rcode: Some(reason),
                            info_code: None,
                        })
                    }
                }
            };
            let (response, connection) = send(request, &target, &addresses, options).await?;
            let limit = policy.response_limit;
            let host = display_host_port(&target.host, target.port);
            let response = response.map(|incoming| {
                CappedBody {
                    incoming,
                    received: 0,
                    limit,
                    host,
                    incidents,
                }
                .boxed_unsync()
            });
            Ok((
                response,
                Box::new(connection) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

/// Where a request goes.
struct Target {
    tls: bool,
    /// A name, or an address without brackets.
    host: String,
    port: u16,
}

impl Target {
    fn of(uri: &http::Uri) -> Result<Target, HttpError> {
        let authority = uri.authority().ok_or(HttpError::HttpRequestUriInvalid)?;
        let tls = uri.scheme() == Some(&Scheme::HTTPS);
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Target { tls, host, port })
    }
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// Connect to the first checked address that answers, speak TLS when asked,
/// and send the request over HTTP/1.1. Returns the response and the future
/// that carries the rest of the connection.
async fn send(
    mut request: http::Request<WasiBody>,
    target: &Target,
    addresses: &[SocketAddr],
    options: Option<RequestOptions>,
) -> Result<
    (
        http::Response<hyper::body::Incoming>,
        impl Future<Output = Result<(), HttpError>> + Send,
    ),
    HttpError,
> {
    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .unwrap_or(Duration::from_secs(30));
    let mut last_error = None;
    let mut stream = None;
    for address in addresses {
        match tokio::time::timeout(connect_timeout, TcpStream::connect(address)).await {
            Ok(Ok(tcp)) => {
                stream = Some(tcp);
                break;
            }
            Ok(Err(e)) => last_error = Some(HttpError::Connect(e)),
            Err(_) => last_error = Some(HttpError::ConnectionTimeout),
        }
    }
    let tcp = stream.ok_or_else(|| last_error.unwrap_or(HttpError::ConnectionRefused))?;
    let stream: Box<dyn Stream> = if target.tls {
        let name = match target.host.parse::<IpAddr>() {
            Ok(ip) => rustls::pki_types::ServerName::from(ip),
            Err(_) => rustls::pki_types::ServerName::try_from(target.host.clone())
                .map_err(HttpError::InvalidDnsNameError)?,
        };
        let tls = tokio_rustls::TlsConnector::from(tls_config())
            .connect(name, tcp)
            .await
            .map_err(HttpError::Tls)?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(HttpError::from)?;
    // The request line carries only the path: the authority went into the
    // `host` header, as for any server that is not a proxy.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    *request.uri_mut() = http::Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;

    // The connection must be driven while the response is awaited.
    let mut connection = Box::pin(connection);
    let mut response = Box::pin(sender.send_request(request));
    let mut finished = None;
    let response = tokio::select! {
        biased;
        response = &mut response => response,
        done = &mut connection => {
            finished = Some(done);
            (&mut response).await
        }
    };
    let response = match response {
        Ok(response) => response,
        Err(e) => {
            return Err(match finished {
                Some(Err(connection_error)) => connection_error.into(),
                _ => e.into(),
            })
        }
    };
    let rest = async move {
        match finished {
            Some(done) => done.map_err(HttpError::from),
            None => connection.await.map_err(HttpError::from),
        }
    };
    Ok((response, rest))
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            Arc::new(
                rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
            )
        })
        .clone()
}

/// A response body that stops with an error once it has delivered more than
/// the plugin's response limit.
struct CappedBody {
    incoming: hyper::body::Incoming,
    received: u64,
    limit: u64,
    host: String,
    incidents: Incidents,
}

impl Body for CappedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        if self.received > self.limit {
            return Poll::Ready(None);
        }
        let frame = match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref() {
            self.received = self.received.saturating_add(data.len() as u64);
            if self.received > self.limit {
                let detail = format!(
                    "the response from {} was cut off after {} KiB",
                    self.host,
                    self.limit / 1024
                );
                self.incidents.record(Incident::Limit {
                    limit: Limit::Response,
                    detail,
                });
                return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(self.limit)))));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(grants: &[&str]) -> NetPolicy {
        NetPolicy::new(
            grants.iter().map(|g| NetGrant::parse(g).unwrap()).collect(),
            1024,
        )
    }

    impl NetPolicy {
        async fn admit_none(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refusal> {
            self.admit(host, port, &[]).await
        }
    }

    fn denial(result: Result<Vec<SocketAddr>, Refusal>) -> String {
        match result {
            Err(Refusal::Denied(Incident::Denied {
                capability,
                reason,
                grant,
            })) => format!("{capability}: {reason} ({})", grant.unwrap_or_default()),
            Err(Refusal::Unresolved(reason)) => panic!("expected a denial, got: {reason}"),
            Err(Refusal::Denied(other)) => panic!("expected a denial, got {other:?}"),
            Ok(addresses) => panic!("expected a denial, got {addresses:?}"),
        }
    }

    #[tokio::test]
    async fn requests_are_checked_by_name_port_and_resolved_address() {
        let open = policy(&["93.184.216.34:443", "localhost", "127.0.0.1:8080"]);
        assert!(open.admit_none("93.184.216.34", 443).await.is_ok());
        assert!(denial(open.admit_none("93.184.216.34", 80).await).contains("not granted"));
        assert!(denial(open.admit_none("example.org", 443).await).contains("net:example.org:443"));
        // A granted name that resolves to loopback is refused unless the
        // address it resolves to is granted, port included.
        let message = denial(open.admit_none("localhost", 9000).await);
        assert!(message.contains("resolves to"), "{message}");
        assert!(message.contains("loopback"), "{message}");
        assert!(open.admit_none("127.0.0.1", 8080).await.is_ok());
        let metadata = policy(&["169.254.169.254"]);
        assert!(metadata.admit_none("169.254.169.254", 80).await.is_ok());
        assert!(denial(policy(&[]).admit_none("169.254.169.254", 80).await).contains("not granted"));
    }

    #[test]
    fn sockets_connect_only_to_granted_addresses() {
        let open = policy(&["127.0.0.1:9000", "api.example.com"]);
        let granted: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let other: SocketAddr = "127.0.0.1:9001".parse().unwrap();
        let wildcard: SocketAddr = "0.0.0.0:0".parse().unwrap();
        assert!(open
            .admit_socket(granted, SocketAddrUse::TcpConnect, &[])
            .is_ok());
        assert!(open
            .admit_socket(wildcard, SocketAddrUse::TcpBind, &[])
            .is_ok());
        assert!(open
            .admit_socket(other, SocketAddrUse::TcpConnect, &[])
            .is_err());
        assert!(open
            .admit_socket(granted, SocketAddrUse::TcpListen, &[])
            .is_err());
        assert!(open
            .admit_socket(granted, SocketAddrUse::UdpSend, &[])
            .is_err());
        assert!(open
            .admit_socket(granted, SocketAddrUse::TcpBind, &[])
            .is_err());
    }
}
