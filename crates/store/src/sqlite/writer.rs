//! The writer: one thread that owns this process's one write connection and runs every write,
//! many to a transaction (group commit).
//!
//! SQLite has one writer per file, so every write of this process queues here. A write is a
//! closure over the connection; the writer takes whatever is queued (up to [`MAX_GROUP`]),
//! runs each inside a savepoint of one `BEGIN IMMEDIATE` transaction — so a write that fails
//! (a fence, a version conflict) is rolled back alone — and commits once. Every caller hears
//! its answer only after that commit, so `Ok` means the write is in the database, exactly as
//! with a transaction of its own.
//!
//! Why a thread of its own rather than an async pool: a write is several statements, and on
//! an async driver each statement is a hand-off between threads. Here the statements of a
//! whole group run back to back on the thread that owns the connection, from statements it
//! prepared once, and only the job and its answer cross threads.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::reader::{lock, submit};
use crate::{Result, StoreError};

/// The most jobs one transaction takes; bounds how long a commit holds the file's write lock.
const MAX_GROUP: usize = 512;

/// Statements the writer keeps prepared: every write statement of the store, with room over.
const STATEMENT_CACHE: usize = 128;

/// What a job's work leaves for after the commit: whether it succeeded (so its savepoint is
/// kept), the newest feed seq it wrote, and how to answer its caller once the commit's fate
/// is known.
struct Ran {
    ok: bool,
    seq: Option<i64>,
    answer: Box<dyn FnOnce(Result<()>) + Send>,
}

type Job = Box<dyn FnOnce(&Connection) -> Ran + Send>;

/// The handle writers send their jobs to. Cloning shares the one thread, which stops when the
/// last clone is dropped or [`Writer::close`] is called.
#[derive(Clone, Debug)]
pub(crate) struct Writer {
    jobs: Arc<Mutex<Option<flume::Sender<Job>>>>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Writer {
    /// Opens the write connection on `path` and starts the thread. `committed` is told the
    /// newest feed seq after each commit that wrote one.
    pub(crate) fn start(
        path: &Path,
        busy_timeout: Duration,
        committed: impl Fn(i64) + Send + 'static,
    ) -> Result<Self> {
        let conn = Connection::open(path)?;
        // WAL is a property of the file (set when it was opened first); the rest are per
        // connection. NORMAL under WAL loses at most the last commits on power loss, never
        // consistency.
        // The savepoint of each job journals the pages it changes first. That sub-journal is
        // left where SQLite puts it by default (memory up to 64 KiB in one chunk, then a
        // temporary file): under `temp_store = MEMORY` it is a list of 1 KiB chunks that each
        // statement's end walks from the start, a walk that grows with the job (43% of this
        // thread's time in bench c at 5,000 provisions).
        // The page cache holds the hot indexes of a busy store.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;
             PRAGMA cache_size = -16384;",
        )?;
        conn.busy_timeout(busy_timeout)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let (jobs, rx) = flume::unbounded();
        let thread = std::thread::Builder::new()
            .name("stackdock-writer".into())
            .spawn(move || run(conn, rx, committed))
            .map_err(|e| StoreError::Database(Box::new(e)))?;
        Ok(Self {
            jobs: Arc::new(Mutex::new(Some(jobs))),
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// Lets the writes already queued finish, then stops the thread and closes the
    /// connection; later writes fail.
    pub(crate) async fn close(&self) {
        drop(lock(&self.jobs).take());
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// Runs `work` in the next group's transaction and answers once it is committed. `work`
    /// returns its value and the newest feed seq it wrote, if any.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<(T, Option<i64>)> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn| {
            let outcome = catch_unwind(AssertUnwindSafe(|| work(conn))).unwrap_or_else(|_| {
                Err(StoreError::Database(
                    "a write panicked; it was rolled back".into(),
                ))
            });
            let ok = outcome.is_ok();
            let seq = outcome.as_ref().ok().and_then(|(_, seq)| *seq);
            Ran {
                ok,
                seq,
                answer: Box::new(move |committed| {
                    let answer = match (outcome, committed) {
                        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
                        (Ok((value, _)), Ok(())) => Ok(value),
                    };
                    let _ = tx.send(answer);
                }),
            }
        });
        submit(&self.jobs, job, stopped)?;
        rx.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Database(
        "the write did not run: the store's writer has stopped or could not begin a transaction \
         (see the log)"
            .into(),
    )
}

fn run(conn: Connection, rx: flume::Receiver<Job>, committed: impl Fn(i64) + Send + 'static) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        if let Some(seq) = commit_group(&conn, jobs) {
            committed(seq);
        }
    }
}

/// Runs one statement the writer keeps prepared: a savepoint's statements run for every job of
/// a group, and parsing them each time was a measurable share of the writer's time.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Runs `jobs` in one transaction and answers each; the newest feed seq committed, if any.
fn commit_group(conn: &Connection, jobs: Vec<Job>) -> Option<i64> {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Dropping a job drops its reply: each caller hears that its write did not run.
        tracing::error!(error = %e, writes = jobs.len(), "cannot begin a write transaction");
        return None;
    }
    let alone = jobs.len() == 1;
    let mut ran = Vec::with_capacity(jobs.len());
    let mut last_seq = None;
    let mut broken: Option<String> = None;
    for job in jobs {
        // A lone job needs no savepoint: if it fails, the whole transaction is rolled back.
        if !alone && let Err(e) = run_cached(conn, "SAVEPOINT job") {
            broken.get_or_insert(e.to_string());
        }
        let r = job(conn);
        if !alone {
            let end = if r.ok {
                run_cached(conn, "RELEASE job")
            } else {
                run_cached(conn, "ROLLBACK TO job").and_then(|()| run_cached(conn, "RELEASE job"))
            };
            if let Err(e) = end {
                broken.get_or_insert(e.to_string());
            }
        }
        if r.ok && r.seq.is_some() {
            last_seq = r.seq;
        }
        ran.push(r);
    }
    let fate = match broken {
        Some(why) => Err(why),
        None if alone && !ran[0].ok => conn.execute_batch("ROLLBACK").map_err(|e| e.to_string()),
        None => conn.execute_batch("COMMIT").map_err(|e| e.to_string()),
    };
    let fate = match fate {
        Ok(()) => Ok(()),
        Err(why) => {
            // Leave no transaction open for the next group, whatever failed.
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Err(why)
        }
    };
    let seq = fate.is_ok().then_some(last_seq).flatten();
    for r in ran {
        let committed = match &fate {
            Ok(()) => Ok(()),
            // Nothing of the group was committed: every job hears why.
            Err(why) => Err(StoreError::Database(why.clone().into())),
        };
        (r.answer)(committed);
    }
    seq
}
