//! Sockets: the loopback-only rule, the file-descriptor limit, spreading connections over
//! several loopback source addresses, and websocket clients with small buffers.

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

/// A websocket over plain TCP (loopback only, so never TLS).
pub type Ws = WebSocketStream<TcpStream>;

/// Connections per source address before the next one is used. The kernel's ephemeral port
/// range (32768–60999 by default) gives about 28,000 per (source, destination) pair.
pub const CONNECTIONS_PER_SOURCE: usize = 25_000;

/// Read buffer of each load-generator websocket. tokio-tungstenite's default is 128 KiB per
/// connection, which at 100,000 sockets would make the generator measure itself.
pub const READ_BUFFER_BYTES: usize = 4096;

/// Refuses anything but a loopback target: this tool must never load someone else's server.
pub fn require_loopback(base: &str) -> anyhow::Result<()> {
    let url = url::Url::parse(base).with_context(|| format!("{base} is not a URL"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    if !loopback {
        bail!("{base} is not a loopback address; the load generator only targets this machine");
    }
    Ok(())
}

/// Where the websocket lives: `http://h:p` becomes `ws://h:p/ws`; a `ws://` base is taken as
/// is, with `/ws` added when it has no path.
pub fn websocket_url(base: &str) -> anyhow::Result<url::Url> {
    let mut url = url::Url::parse(base)?;
    let scheme = match url.scheme() {
        "http" | "ws" => "ws",
        other => bail!("unsupported scheme {other}: use http:// or ws:// on loopback"),
    };
    url.set_scheme(scheme)
        .map_err(|()| anyhow::anyhow!("cannot use {scheme} for {base}"))?;
    if url.path().is_empty() || url.path() == "/" {
        url.set_path("/ws");
    }
    Ok(url)
}

/// The socket address behind a URL (loopback, resolved without DNS).
pub fn socket_addr(url: &url::Url) -> anyhow::Result<SocketAddr> {
    let host = match url.host() {
        Some(url::Host::Domain("localhost")) => "127.0.0.1".to_owned(),
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        Some(host) => host.to_string(),
        None => bail!("{url} has no host"),
    };
    let port = url.port_or_known_default().context("no port")?;
    format!("{host}:{port}")
        .parse()
        .with_context(|| format!("{url} is not an address"))
}

/// The open-files limit before and after [`raise_fd_limit`].
#[derive(Clone, Copy, Debug)]
pub struct FdLimit {
    pub before: u64,
    pub soft: u64,
    pub hard: u64,
}

/// Raises this process's open-files limit: the hard limit to `wanted` when allowed (root),
/// and the soft limit to the hard one. Returns what it got.
pub fn raise_fd_limit(wanted: u64) -> FdLimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read or write the struct we pass.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    let before = limit.rlim_cur;
    if wanted > limit.rlim_max {
        let higher = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: wanted,
        };
        // SAFETY: as above; failure (not root, above fs.nr_open) leaves the limit unchanged.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &higher) } == 0 {
            limit = higher;
        }
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: as above.
        unsafe {
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
        // SAFETY: as above.
        unsafe {
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        }
    }
    FdLimit {
        before,
        soft: limit.rlim_cur,
        hard: limit.rlim_max,
    }
}

/// Hands out loopback source addresses: connection `i` of `total` uses 127.0.0.(2 + i / 25000)
/// when more than one address is needed, and the kernel's choice (127.0.0.1) otherwise.
pub struct Sources {
    count: usize,
    next: AtomicUsize,
}

impl Sources {
    /// `requested` addresses, or 0 for "as many as `expected` connections need".
    pub fn new(requested: usize, expected: usize) -> Self {
        let count = match requested {
            0 => expected.div_ceil(CONNECTIONS_PER_SOURCE).max(1),
            n => n,
        };
        Self {
            count,
            next: AtomicUsize::new(0),
        }
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// The address for the next connection; `None` means "let the kernel choose".
    pub fn next(&self) -> Option<Ipv4Addr> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        source_for(i, self.count)
    }
}

/// Round-robin over 127.0.0.2, 127.0.0.3, … (pure, for the test).
pub fn source_for(i: usize, count: usize) -> Option<Ipv4Addr> {
    if count <= 1 {
        return None;
    }
    let n = (i % count) as u32 + 2;
    Some(Ipv4Addr::from(0x7f00_0000 | n))
}

/// Socket options of one load-generator connection.
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    pub read_buffer: usize,
    /// A small kernel receive buffer, to make a client that stops reading fill up quickly.
    pub recv_buffer: Option<u32>,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            read_buffer: READ_BUFFER_BYTES,
            recv_buffer: None,
        }
    }
}

/// Opens a TCP connection from `source` (when given) and performs the websocket handshake
/// with these extra headers.
pub async fn connect(
    url: &url::Url,
    headers: &[(&str, &str)],
    source: Option<Ipv4Addr>,
    tuning: Tuning,
) -> anyhow::Result<Ws> {
    let addr = socket_addr(url)?;
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(bytes) = tuning.recv_buffer {
        socket.set_recv_buffer_size(bytes)?;
    }
    if let Some(ip) = source {
        bind_without_port(&socket)?;
        socket
            .bind(SocketAddr::from((ip, 0)))
            .with_context(|| format!("bind {ip}"))?;
    }
    let stream = socket.connect(addr).await.context("TCP connect")?;
    stream.set_nodelay(true)?;

    let mut request = url.as_str().into_client_request()?;
    for (name, value) in headers {
        request.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(name.as_bytes())?,
            value.parse()?,
        );
    }
    let config = WebSocketConfig::default()
        .read_buffer_size(tuning.read_buffer)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20));
    match tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await {
        Ok((ws, _)) => Ok(ws),
        Err(tungstenite::Error::Http(response)) => {
            bail!("websocket refused with HTTP {}", response.status())
        }
        Err(e) => Err(e).context("websocket handshake"),
    }
}

/// Asks the kernel to pick the source port at connect time rather than at bind time, so
/// ports are unique per destination and one source address really gives ~28,000 sockets.
fn bind_without_port(socket: &TcpSocket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: a plain setsockopt on a socket we own, with a correctly sized int.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Something read from a websocket.
pub enum Incoming {
    /// A text frame.
    Text(String),
    /// The socket closed (with the close code when the server sent one).
    Closed(Option<u16>),
    /// Nothing within the wait.
    Timeout,
}

/// Reads until a text frame, a close, or the deadline. Pings are answered by tungstenite
/// itself while we read.
pub async fn next_text(ws: &mut Ws, wait: Duration) -> Incoming {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Incoming::Timeout,
            Ok(None) | Ok(Some(Err(_))) => return Incoming::Closed(None),
            Ok(Some(Ok(Message::Text(text)))) => {
                return Incoming::Text(text.as_str().to_owned());
            }
            Ok(Some(Ok(Message::Close(frame)))) => {
                return Incoming::Closed(frame.map(|f| u16::from(f.code)));
            }
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// Reads frames until one satisfies `wanted` (returned parsed) or `wait` passes.
pub async fn expect(
    ws: &mut Ws,
    what: &str,
    wait: Duration,
    wanted: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match next_text(ws, left).await {
            Incoming::Text(text) => {
                let frame: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if wanted(&frame) {
                    return Ok(frame);
                }
                if frame["type"] == "error" && frame["id"].is_null() {
                    bail!("server error while waiting for {what}: {frame}");
                }
            }
            Incoming::Closed(code) => bail!("socket closed ({code:?}) waiting for {what}"),
            Incoming::Timeout => bail!("no {what} within {wait:?}"),
        }
    }
}

/// Sends one JSON frame.
pub async fn send(ws: &mut Ws, frame: &Value) -> anyhow::Result<()> {
    ws.send(Message::text(frame.to_string()))
        .await
        .context("send a frame")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only loopback targets pass.
    #[test]
    fn only_loopback_targets_are_allowed() {
        assert!(require_loopback("http://127.0.0.1:8080").is_ok());
        assert!(require_loopback("ws://127.0.0.5:9000/ws").is_ok());
        assert!(require_loopback("http://localhost:8080").is_ok());
        assert!(require_loopback("http://[::1]:8080").is_ok());
        assert!(require_loopback("http://10.0.0.1:8080").is_err());
        assert!(require_loopback("http://example.com").is_err());
        assert!(require_loopback("not a url").is_err());
    }

    /// HTTP bases map to their websocket; a ws base keeps its path or gets `/ws`.
    #[test]
    fn websocket_urls_follow_the_base() {
        let ws = |b: &str| websocket_url(b).unwrap().to_string();
        assert_eq!(ws("http://127.0.0.1:8080"), "ws://127.0.0.1:8080/ws");
        assert_eq!(ws("ws://127.0.0.1:9001"), "ws://127.0.0.1:9001/ws");
        assert_eq!(
            ws("ws://127.0.0.1:9001/socket"),
            "ws://127.0.0.1:9001/socket"
        );
        assert!(websocket_url("https://127.0.0.1").is_err());
        let url = websocket_url("http://localhost:8080").unwrap();
        assert_eq!(socket_addr(&url).unwrap().to_string(), "127.0.0.1:8080");
    }

    /// Source addresses rotate from 127.0.0.2 once more than one is needed.
    #[test]
    fn sources_rotate_past_the_first_address() {
        assert_eq!(source_for(5, 1), None);
        assert_eq!(source_for(0, 3), Some(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(source_for(4, 3), Some(Ipv4Addr::new(127, 0, 0, 3)));
        assert_eq!(Sources::new(0, 10_000).count(), 1);
        assert_eq!(Sources::new(0, 100_000).count(), 4);
        assert_eq!(Sources::new(2, 10).count(), 2);
    }
}
