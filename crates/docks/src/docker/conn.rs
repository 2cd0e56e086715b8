//! HTTP/1.1 to a Docker Engine over its unix socket or TCP: one connection per request
//! (hyper's client connection on a tokio stream), answers read whole or line by line.
//!
//! The engine's API is local and unmetered, so there is no pool to keep warm: a build or a
//! push holds its connection for as long as its progress streams, and the engine cancels
//! either when the connection closes.

use std::path::PathBuf;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// Where the engine listens: `unix:///var/run/docker.sock` or `tcp://host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

/// The engine on this machine, where Docker puts its socket.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

impl Endpoint {
    /// Parses a host as `docker --host` takes it. The error says what was expected.
    pub fn parse(host: &str) -> Result<Self, String> {
        if let Some(path) = host.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(format!(
                    "{host:?}: a unix socket is named by its absolute path, unix:///path"
                ));
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if let Some(addr) = host.strip_prefix("tcp://") {
            let addr = addr.trim_end_matches('/');
            let port_ok = addr
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
            if !port_ok {
                return Err(format!("{host:?}: expected tcp://host:port"));
            }
            return Ok(Self::Tcp(addr.to_string()));
        }
        Err(format!(
            "{host:?}: expected unix:///path/to/docker.sock or tcp://host:port"
        ))
    }

    /// The host the engine's published ports are reached on from here.
    pub fn published_host(&self) -> String {
        match self {
            Self::Unix(_) => "127.0.0.1".into(),
            Self::Tcp(addr) => addr
                .rsplit_once(':')
                .map(|(h, _)| h.trim_matches(['[', ']']).to_string())
                .unwrap_or_else(|| "127.0.0.1".into()),
        }
    }

    /// The address a container's port is published on (`HostIp`). An engine on this machine
    /// (its socket, or TCP on loopback) publishes on loopback, where StackDock reaches it and
    /// nothing else does; a remote engine on every interface (`""`, the engine's own
    /// default), since on its loopback neither StackDock's readiness check nor the service's
    /// users could reach the port.
    pub fn publish_ip(&self) -> &'static str {
        let host = self.published_host();
        let local = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.is_loopback(),
            Err(_) => host.eq_ignore_ascii_case("localhost"),
        };
        if local { "127.0.0.1" } else { "" }
    }

    /// The `Host` header: the engine ignores it, HTTP/1.1 requires one.
    fn authority(&self) -> &str {
        match self {
            Self::Unix(_) => "docker",
            Self::Tcp(addr) => addr,
        }
    }

    async fn open(&self) -> std::io::Result<SendRequest<Full<Bytes>>> {
        match self {
            Self::Unix(path) => handshake(tokio::net::UnixStream::connect(path).await?).await,
            Self::Tcp(addr) => handshake(tokio::net::TcpStream::connect(addr).await?).await,
        }
    }

    /// Sends one request on a fresh connection and answers the response head; the body is
    /// read by the caller. `timeout` bounds the connection and the head, not the body.
    pub async fn send(
        &self,
        mut request: Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<Response<Incoming>, String> {
        let host = self
            .authority()
            .parse()
            .map_err(|_| "the engine's address is not a valid Host header".to_string())?;
        request.headers_mut().insert(hyper::header::HOST, host);
        let exchange = async {
            let mut sender = self
                .open()
                .await
                .map_err(|e| format!("cannot reach the Docker Engine at {self}: {e}"))?;
            sender
                .send_request(request)
                .await
                .map_err(|e| format!("the Docker Engine did not answer: {e}"))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| format!("the Docker Engine did not answer within {timeout:?}"))?
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix://{}", path.display()),
            Self::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

async fn handshake<S>(stream: S) -> std::io::Result<SendRequest<Full<Bytes>>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    // Drives the connection until the exchange is over; its error surfaces on the request.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Reads a whole body, within `timeout`.
pub async fn read_all(body: Incoming, timeout: Duration) -> Result<Bytes, String> {
    match tokio::time::timeout(timeout, body.collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) => Err(format!("the answer was cut off: {e}")),
        Err(_) => Err(format!("the answer did not finish within {timeout:?}")),
    }
}

/// A body read one line at a time, as the engine streams build and push progress.
pub struct Lines {
    body: Incoming,
    buffer: BytesMut,
    done: bool,
}

/// The longest line kept whole; a longer one is cut (progress lines are short).
const MAX_LINE: usize = 1 << 20;

impl Lines {
    pub fn new(body: Incoming) -> Self {
        Self {
            body,
            buffer: BytesMut::new(),
            done: false,
        }
    }

    /// The next non-empty line, or `None` at the end of the body.
    pub async fn next(&mut self) -> Result<Option<String>, String> {
        loop {
            if let Some(at) = self.buffer.iter().position(|b| *b == b'\n') {
                let line = self.buffer.split_to(at + 1);
                let text = String::from_utf8_lossy(&line[..at]).trim().to_string();
                if text.is_empty() {
                    continue;
                }
                return Ok(Some(text));
            }
            if self.done {
                if self.buffer.is_empty() {
                    return Ok(None);
                }
                let rest = self.buffer.split();
                let text = String::from_utf8_lossy(&rest).trim().to_string();
                return Ok((!text.is_empty()).then_some(text));
            }
            match self.body.frame().await {
                None => self.done = true,
                Some(Err(e)) => return Err(format!("the progress stream was cut off: {e}")),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer.extend_from_slice(&data);
                        if self.buffer.len() > MAX_LINE && !self.buffer.contains(&b'\n') {
                            self.buffer.truncate(MAX_LINE);
                            self.buffer.extend_from_slice(b"\n");
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_parse_as_docker_takes_them_and_bad_ones_are_named() {
        assert_eq!(
            Endpoint::parse("unix:///var/run/docker.sock"),
            Ok(Endpoint::Unix("/var/run/docker.sock".into()))
        );
        assert_eq!(
            Endpoint::parse("tcp://10.0.0.2:2375"),
            Ok(Endpoint::Tcp("10.0.0.2:2375".into()))
        );
        assert_eq!(
            Endpoint::parse("tcp://10.0.0.2:2375")
                .map(|e| e.published_host())
                .as_deref(),
            Ok("10.0.0.2")
        );
        // Published where the host they are reached on can reach them.
        for (host, ip) in [
            ("unix:///var/run/docker.sock", "127.0.0.1"),
            ("tcp://127.0.0.1:2375", "127.0.0.1"),
            ("tcp://localhost:2375", "127.0.0.1"),
            ("tcp://[::1]:2375", "127.0.0.1"),
            ("tcp://10.0.0.2:2375", ""),
            ("tcp://docker.example.com:2376", ""),
        ] {
            assert_eq!(
                Endpoint::parse(host).map(|e| e.publish_ip()),
                Ok(ip),
                "{host}"
            );
        }
        for bad in [
            "unix://relative.sock",
            "tcp://nohost",
            "tcp://:2375",
            "http://x:1",
            "",
        ] {
            let err = Endpoint::parse(bad).expect_err(bad);
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }
}
