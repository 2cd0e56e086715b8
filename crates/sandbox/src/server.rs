//! Binding, serving and stopping a simulator, independent of the provider.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
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
            let served = axum::serve(listener, router)
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
