//! The listener: one task per store that turns other processes' commits into moves of its
//! `change_signal` and `deploy_log_signal`.
//!
//! Writers send `pg_notify` with their newest seq inside their transaction, so it is delivered
//! at commit, to every session that listens. The task listens on its own connection and moves
//! the watch channels forward only (a notification may arrive after a newer one; a process's
//! own commits also move them directly).
//!
//! Notifications sent while the listener's connection is down are lost. So whenever it
//! (re)subscribes, it reads the counters afterwards: anything committed before the `LISTEN`
//! is in that read, anything after arrives as a notification. Failures to connect are retried
//! with a growing pause, for as long as the store lives.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{connect, deploy_log, feed, signal};
use crate::Result;

/// Pauses between attempts to get the listener back: short at first, as a lost connection is
/// usually back at once, then at most this long.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LONGEST_PAUSE: Duration = Duration::from_secs(5);

/// The listener task; stops when the last handle of its store is dropped.
#[derive(Debug)]
pub(crate) struct Listener(JoinHandle<()>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Listener {
    pub(crate) fn stop(&self) {
        self.0.abort();
    }
}

/// The watch channels the listener moves.
#[derive(Clone, Debug)]
pub(crate) struct Signals {
    pub(crate) changes: Arc<watch::Sender<i64>>,
    pub(crate) logs: Arc<watch::Sender<i64>>,
}

/// Subscribes once (so that the store is known to hear others from the moment it is
/// returned), then keeps listening in a task.
pub(crate) async fn start(
    options: PgConnectOptions,
    pool: PgPool,
    signals: Signals,
) -> Result<Listener> {
    let first = subscribe(&options).await?;
    catch_up(&pool, &signals).await?;
    Ok(Listener(tokio::spawn(run(first, options, pool, signals))))
}

async fn subscribe(options: &PgConnectOptions) -> Result<PgListener> {
    let own = connect::listener_pool(options).await?;
    let mut listener = PgListener::connect_with(&own).await?;
    listener
        .listen_all([feed::CHANNEL, deploy_log::CHANNEL])
        .await?;
    Ok(listener)
}

/// Reads what was committed while nobody listened.
async fn catch_up(pool: &PgPool, signals: &Signals) -> Result<()> {
    let mut c = pool.acquire().await?;
    signal(&signals.changes, feed::latest(&mut c).await?);
    signal(&signals.logs, deploy_log::latest(&mut c).await?);
    Ok(())
}

async fn run(first: PgListener, options: PgConnectOptions, pool: PgPool, signals: Signals) {
    let mut listener = Some(first);
    let mut pause = FIRST_PAUSE;
    loop {
        let mut current = match listener.take() {
            Some(l) => l,
            None => match subscribe(&options).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for other nodes' changes; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(LONGEST_PAUSE);
                    continue;
                }
            },
        };
        if let Err(e) = catch_up(&pool, &signals).await {
            tracing::warn!(error = %e, "cannot read the newest changes after subscribing");
        }
        pause = FIRST_PAUSE;
        loop {
            match current.try_recv().await {
                Ok(Some(n)) => {
                    let target = match n.channel() {
                        feed::CHANNEL => &signals.changes,
                        deploy_log::CHANNEL => &signals.logs,
                        _ => continue,
                    };
                    match n.payload().parse::<i64>() {
                        Ok(seq) => signal(target, seq),
                        // Not ours to parse; the counters say where things are.
                        Err(_) => {
                            let _ = catch_up(&pool, &signals).await;
                        }
                    }
                }
                // The connection was lost and is back, subscribed again: what was sent
                // meanwhile is lost, the counters have it.
                Ok(None) => {
                    tracing::info!("listener reconnected");
                    if let Err(e) = catch_up(&pool, &signals).await {
                        tracing::warn!(error = %e, "cannot read the newest changes after reconnecting");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "listener lost its connection; connecting again");
                    break;
                }
            }
        }
        tokio::time::sleep(pause).await;
    }
}
