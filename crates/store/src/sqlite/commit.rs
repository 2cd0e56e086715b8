//! Group commit: the batches and journal entries that many tasks write at once share one
//! transaction.
//!
//! SQLite has one writer per file, so every write of this process queues for the one write
//! connection; a transaction each would make hundreds of operations in flight wait on each
//! other's `BEGIN`/`COMMIT`. Instead one committer task takes whatever is queued (up to
//! [`MAX_GROUP`] jobs), applies each job inside a savepoint of one `BEGIN IMMEDIATE`
//! transaction — so a job that fails (a fence, a version conflict) is rolled back alone — and
//! commits once. Every job is answered only after that commit, so a caller that got `Ok` knows
//! its write is in the database, exactly as with a transaction of its own.

use sqlx::{Acquire, SqlitePool};
use stackdock_core::ApiCall;
use tokio::sync::{mpsc, oneshot};

use super::batch::{self, Applied};
use super::journal;
use crate::{Batch, Result, StoreError};

/// The most jobs one transaction takes; bounds how long a commit holds the writer.
const MAX_GROUP: usize = 512;

pub(crate) enum Job {
    Apply(Batch, oneshot::Sender<Result<Applied>>),
    Journal(Vec<ApiCall>, oneshot::Sender<Result<()>>),
}

/// The handle writers send their jobs to.
#[derive(Clone, Debug)]
pub(crate) struct Committer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Committer {
    /// Starts the committer task on `write`, the pool of the one write connection.
    /// `committed` is told the newest feed seq after each commit that wrote one.
    pub(crate) fn start(write: SqlitePool, committed: impl Fn(i64) + Send + 'static) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(write, rx, committed));
        Self { jobs }
    }

    pub(crate) async fn apply(&self, batch: Batch) -> Result<Applied> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Apply(batch, tx))?;
        rx.await.map_err(|_| stopped())?
    }

    pub(crate) async fn journal(&self, calls: Vec<ApiCall>) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.send(Job::Journal(calls, tx))?;
        rx.await.map_err(|_| stopped())?
    }

    fn send(&self, job: Job) -> Result<()> {
        self.jobs.send(job).map_err(|_| stopped())
    }
}

fn stopped() -> StoreError {
    StoreError::Database("the store's writer has stopped".into())
}

async fn run(
    write: SqlitePool,
    mut rx: mpsc::UnboundedReceiver<Job>,
    committed: impl Fn(i64) + Send + 'static,
) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let last_seq = commit_group(&write, jobs).await;
        if let Some(seq) = last_seq {
            committed(seq);
        }
    }
}

/// Applies `jobs` in one transaction and answers each; the newest feed seq written, if any.
async fn commit_group(write: &SqlitePool, jobs: Vec<Job>) -> Option<i64> {
    let mut results: Vec<Result<Option<Applied>>> = Vec::with_capacity(jobs.len());
    let outcome: Result<Option<i64>> = async {
        let mut tx = write.begin_with("BEGIN IMMEDIATE").await?;
        let mut last_seq = None;
        for job in &jobs {
            let mut sub = tx.begin().await?;
            let done = match job {
                Job::Apply(batch, _) => batch::apply(&mut sub, batch).await.map(Some),
                Job::Journal(calls, _) => journal_all(&mut sub, calls).await.map(|()| None),
            };
            match done {
                Ok(applied) => {
                    sub.commit().await?;
                    if let Some(seq) = applied.as_ref().and_then(|a| a.last_seq) {
                        last_seq = Some(seq);
                    }
                    results.push(Ok(applied));
                }
                Err(e) => {
                    sub.rollback().await?;
                    results.push(Err(e));
                }
            }
        }
        tx.commit().await?;
        Ok(last_seq)
    }
    .await;
    let (last_seq, failed) = match outcome {
        Ok(seq) => (seq, None),
        // Nothing of the group was committed: every job hears why.
        Err(e) => (None, Some(e.to_string())),
    };
    let mut results = results.into_iter();
    for job in jobs {
        let result = match &failed {
            Some(why) => Err(StoreError::Database(why.clone().into())),
            None => results
                .next()
                .unwrap_or_else(|| Err(StoreError::Database("no result for a write".into()))),
        };
        match job {
            Job::Apply(_, reply) => {
                let _ = reply.send(result.and_then(|a| {
                    a.ok_or_else(|| StoreError::Corrupt("a batch wrote nothing".into()))
                }));
            }
            Job::Journal(_, reply) => {
                let _ = reply.send(result.map(drop));
            }
        }
    }
    last_seq
}

async fn journal_all(conn: &mut sqlx::SqliteConnection, calls: &[ApiCall]) -> Result<()> {
    match calls {
        [one] => journal::record(conn, one).await,
        many => journal::record_many(conn, many).await,
    }
}
