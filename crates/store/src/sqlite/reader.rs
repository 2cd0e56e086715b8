//! The readers: a few threads, each with a read-only connection, that run the store's reads.
//!
//! Under WAL a reader sees the last commit and never waits for the writer. A read is a closure
//! over a connection, run whole on a reader thread from statements that thread prepared once,
//! so only the job and its answer cross threads, however many statements and rows it has.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::{Result, StoreError};

/// Statements each reader keeps prepared: every read statement of the store, with room over.
const STATEMENT_CACHE: usize = 128;

type Job = Box<dyn FnOnce(&Connection) + Send>;

/// The handle reads are sent through. Cloning shares the threads; they stop when the last
/// clone is dropped or [`Readers::close`] is called.
#[derive(Clone, Debug)]
pub(crate) struct Readers {
    jobs: Arc<Mutex<Option<flume::Sender<Job>>>>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Readers {
    /// Opens `count` read-only connections on `path` (which must exist, schema and all) and
    /// starts a thread for each.
    pub(crate) fn start(path: &Path, count: usize, busy_timeout: Duration) -> Result<Self> {
        let (jobs, rx) = flume::unbounded::<Job>();
        let mut threads = Vec::new();
        for n in 0..count.max(1) {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            conn.busy_timeout(busy_timeout)?;
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
            let rx = rx.clone();
            let thread = std::thread::Builder::new()
                .name(format!("stackdock-read-{n}"))
                .spawn(move || {
                    for job in rx.iter() {
                        job(&conn);
                    }
                })
                .map_err(|e| StoreError::Database(Box::new(e)))?;
            threads.push(thread);
        }
        Ok(Self {
            jobs: Arc::new(Mutex::new(Some(jobs))),
            threads: Arc::new(Mutex::new(threads)),
        })
    }

    /// Lets the reads already queued finish, then stops the threads and closes their
    /// connections; later reads fail.
    pub(crate) async fn close(&self) {
        drop(lock(&self.jobs).take());
        let threads = std::mem::take(&mut *lock(&self.threads));
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }

    /// Runs `work` on a reader and returns what it read.
    pub(crate) async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            // A read that panics answers with an error and leaves its thread serving.
            let answer = catch_unwind(AssertUnwindSafe(|| work(conn)))
                .unwrap_or_else(|_| Err(StoreError::Database("a read panicked".into())));
            let _ = tx.send(answer);
        });
        submit(&self.jobs, job, stopped)?;
        rx.await.map_err(|_| stopped())?
    }
}

/// Queues `job` on a thread's channel, unless the thread was closed.
pub(crate) fn submit<J>(
    jobs: &Mutex<Option<flume::Sender<J>>>,
    job: J,
    stopped: fn() -> StoreError,
) -> Result<()> {
    lock(jobs)
        .as_ref()
        .ok_or_else(stopped)?
        .send(job)
        .map_err(|_| stopped())
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn stopped() -> StoreError {
    StoreError::Database("the read did not run: the store's readers have stopped".into())
}

/// Every row `sql` returns, each made by `read`, from a statement prepared once per connection.
pub(crate) fn rows<R>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    read: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<R>,
) -> Result<Vec<R>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt
        .query_map(params, read)?
        .collect::<rusqlite::Result<Vec<R>>>()?;
    Ok(rows)
}
