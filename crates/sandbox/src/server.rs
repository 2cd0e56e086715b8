//! Binding, serving and stopping a simulator, independent of the provider.
//!
//! Connections are accepted through [`SandboxListener`], which gives each one a
//! [`Hangup`] switch that handlers reach through axum's `ConnectInfo`. Flipping it
//! makes the connection fail its next write, so hyper drops it without sending a
//! byte of the answer: the client sees a connection closed mid-request, which is what
//! a crashed load balancer or a cut network looks like from outside. No other layer
//! can do that: a handler only ever produces answers.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a graceful shutdown waits for in-flight requests (e.g. ones held by a
/// `Delay` fault) before the server task is cut off.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running server. Dropping it aborts the server task; [`ServerHandle::shutdown`]
/// lets in-flight requests finish first.
pub(crate) struct ServerHandle {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Binds first, so the provider can build absolute URLs (pagination links, action
/// hrefs) from the real port before its router exists.
pub(crate) async fn bind(addr: SocketAddr) -> io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

impl ServerHandle {
    pub(crate) fn serve(listener: TcpListener, addr: SocketAddr, router: Router) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<Hangup>();
            let served = axum::serve(SandboxListener(listener), service)
                .with_graceful_shutdown(async {
                    // A dropped sender also means "stop".
                    let _ = stopped.await;
                })
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, "sandbox server stopped with an error");
            }
        });
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `http://HOST:PORT`, no trailing slash. A wildcard bind is reported as loopback,
    /// since that is where a local client can reach it.
    pub(crate) fn base_url(&self) -> String {
        base_url(self.addr)
    }

    pub(crate) async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(mut task) = self.task.take() else {
            return;
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Closes one connection instead of answering on it. Every connection has its own;
/// the front door finds it in the request's extensions as `ConnectInfo<Hangup>`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Hangup(Arc<AtomicBool>);

impl Hangup {
    /// From now on the connection fails every write and reads as closed, so hyper
    /// gives up on it before any of the pending answer goes out.
    pub(crate) fn hang_up(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn is_hung_up(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

impl Connected<IncomingStream<'_, SandboxListener>> for Hangup {
    fn connect_info(stream: IncomingStream<'_, SandboxListener>) -> Self {
        stream.io().hangup.clone()
    }
}

/// A TCP listener whose connections can be hung up on (see [`Hangup`]).
pub(crate) struct SandboxListener(TcpListener);

impl Listener for SandboxListener {
    type Io = Line;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Line, SocketAddr) {
        let (stream, addr) = Listener::accept(&mut self.0).await;
        let line = Line {
            stream,
            hangup: Hangup::default(),
        };
        (line, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// One accepted connection and its [`Hangup`] switch.
pub(crate) struct Line {
    stream: TcpStream,
    hangup: Hangup,
}

fn hung_up() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the sandbox hung up on purpose",
    )
}

impl AsyncRead for Line {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.hangup.is_hung_up() {
            // End of stream: nothing more will be read from this connection.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Line {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.hangup.is_hung_up() {
            return Poll::Ready(Err(hung_up()));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.hangup.is_hung_up() {
            return Poll::Ready(Err(hung_up()));
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.hangup.is_hung_up() {
            return Poll::Ready(Err(hung_up()));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

pub(crate) fn base_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        let v4: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(base_url(v4), "http://127.0.0.1:8080");
        let v6: SocketAddr = "[::]:81".parse().unwrap();
        assert_eq!(base_url(v6), "http://[::1]:81");
    }
}
