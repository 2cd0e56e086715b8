//! Where an adapter's progress goes while a worker runs an operation: provider calls into the
//! journal, completed steps into `operation_steps` (fenced by the worker's lease), the
//! provider id a step establishes onto the resource row in the same transaction, and what the
//! provider printed (a build's output) into the resource's deploy log.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use stackdock_core::{
    ApiCall, Keyring, OrgId, Resource, ResourceId, ResourceKind, SealedSecret, SecretString, Step,
};
use stackdock_docks::{DockError, Recorder};
use stackdock_store::{Batch, DeployLogLine, Lease, Store, Write};

use crate::failpoint::{CRASH_BEFORE_CREATE_CHECKPOINT, Failpoints};

pub(crate) struct StoreRecorder {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) lease: Lease,
    pub(crate) org_id: OrgId,
    /// The resource the operation acts on, whose row learns the provider id at once.
    pub(crate) resource_id: Option<ResourceId>,
    pub(crate) resource_kind: Option<ResourceKind>,
    pub(crate) failpoints: Failpoints,
    /// The resource row as the last checkpoint wrote it, if one did.
    pub(crate) written: Mutex<Option<Resource>>,
    /// Seals what a provider mints for the resource, as dock keys are sealed.
    pub(crate) keyring: Keyring,
    /// The run's deploy log: what it keeps out of it and how much it wrote.
    pub(crate) log: Mutex<RunLog>,
}

/// The most deploy log lines one run keeps; what follows is left out, and said so once.
pub(crate) const MAX_LOG_LINES: usize = 5000;

/// What a run's deploy log needs beside the store.
#[derive(Default)]
pub(crate) struct RunLog {
    /// The run's secrets (the dock key, the opened sensitive config), scrubbed from each line
    /// in every encoded form, whatever the adapter already scrubbed.
    secrets: Vec<SecretString>,
    lines: usize,
}

impl RunLog {
    /// What of `line` is kept: scrubbed of the run's secrets, or the one notice that the run
    /// reached [`MAX_LOG_LINES`], or nothing after it.
    fn admit(&mut self, line: &str) -> Option<String> {
        self.lines += 1;
        if self.lines > MAX_LOG_LINES + 1 {
            return None;
        }
        if self.lines == MAX_LOG_LINES + 1 {
            return Some(format!(
                "[the deploy log keeps {MAX_LOG_LINES} lines a run; the rest is left out]"
            ));
        }
        let secrets: Vec<&str> = self.secrets.iter().map(SecretString::expose).collect();
        Some(stackdock_core::redact::scrub(line, &secrets))
    }
}

impl StoreRecorder {
    /// Keeps `secrets` out of every deploy log line this run writes from now on.
    pub(crate) fn keep_out_of_log(&self, secrets: impl IntoIterator<Item = SecretString>) {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .secrets
            .extend(secrets);
    }

    /// The row as this run's last checkpoint wrote it: current for as long as the run holds
    /// its lease, since only the lease holder writes the row of a resource being worked on.
    pub(crate) fn written_row(&self) -> Option<Resource> {
        self.written
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Writes one provider call to the journal. The call was made whatever happens here; losing
/// its journal line must not undo the work, so a failure is logged and not raised.
async fn journal(store: &dyn Store, call: ApiCall) {
    if let Err(e) = store.record_api_call(call).await {
        tracing::warn!(error = %e, "could not journal a provider call");
    }
}

/// What a secret minted for a resource is sealed to: opening it takes the same resource id.
pub(crate) fn sealed_for(resource_id: ResourceId) -> String {
    format!("resource:{resource_id}")
}

#[async_trait]
impl Recorder for StoreRecorder {
    fn seal(&self, secret: &SecretString) -> Result<SealedSecret, DockError> {
        let resource_id = self.resource_id.ok_or_else(|| {
            DockError::Checkpoint("a secret can only be kept for a resource".into())
        })?;
        Ok(self.keyring.seal(secret, &sealed_for(resource_id)))
    }

    async fn journal(&self, call: ApiCall) {
        let call = ApiCall {
            worker: Some(self.lease.owner.clone()),
            ..call
        };
        journal(&*self.store, call).await;
    }

    async fn log(&self, line: String) {
        let Some(resource_id) = self.resource_id else {
            return;
        };
        let admitted = self
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit(&line);
        let Some(line) = admitted else {
            return;
        };
        let entry = DeployLogLine {
            seq: 0,
            org_id: self.org_id,
            resource_id,
            operation_id: self.lease.operation_id,
            line,
            at: chrono::Utc::now(),
        };
        if let Err(e) = self.store.append_deploy_log(vec![entry]).await {
            tracing::warn!(error = %e, "could not keep a deploy log line");
        }
    }

    async fn checkpoint(&self, step: Step, tracks: Option<String>) -> Result<(), DockError> {
        let checkpoint_failed = |e| DockError::Checkpoint(Box::new(e));
        if tracks.is_some() {
            self.failpoints.crash_if_set(CRASH_BEFORE_CREATE_CHECKPOINT);
        }
        let mut batch = Batch::fenced(&self.lease);
        if let (Some(pid), Some(rid), Some(kind)) = (tracks, self.resource_id, self.resource_kind) {
            batch = batch.push(Write::SetProviderId {
                org_id: self.org_id,
                kind,
                resource_id: rid,
                provider_resource_id: pid,
            });
        }
        // The step is recorded and, in the same write, the store says whether a cancel came:
        // a step boundary is where stopping loses nothing.
        let done = self
            .store
            .apply_fenced(self.org_id, batch.push(Write::RecordStep(step)))
            .await
            .map_err(checkpoint_failed)?;
        if let Some(row) = done.resources.into_iter().last() {
            *self.written.lock().unwrap_or_else(PoisonError::into_inner) = Some(row);
        }
        if done.cancel_requested {
            return Err(DockError::Cancelled);
        }
        Ok(())
    }
}

/// The recorder of a call made while a dock is being connected (its key checked): the call is
/// journaled like any other, and there is no operation to record steps in.
pub(crate) struct ConnectRecorder {
    pub(crate) store: Arc<dyn Store>,
}

#[async_trait]
impl Recorder for ConnectRecorder {
    async fn journal(&self, call: ApiCall) {
        journal(&*self.store, call).await;
    }

    async fn checkpoint(&self, _step: Step, _tracks: Option<String>) -> Result<(), DockError> {
        Err(DockError::Checkpoint(
            "checking a key records no steps".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_log_is_scrubbed_of_its_secrets_and_bounded() {
        let mut log = RunLog {
            secrets: vec![SecretString::new("hunter2-secret")],
            lines: 0,
        };
        let kept = log
            .admit("token hunter2-secret, base64 aHVudGVyMi1zZWNyZXQ=, hex 68756e746572322d736563726574")
            .expect("kept");
        assert!(
            !kept.contains("hunter2-secret")
                && !kept.contains("aHVudGVyMi1zZWNyZXQ")
                && !kept.contains("68756e746572322d736563726574"),
            "{kept}"
        );
        for _ in 1..MAX_LOG_LINES {
            assert!(log.admit("Step 1/3 : FROM scratch").is_some());
        }
        let notice = log.admit("one too many").expect("the notice");
        assert!(notice.contains("5000 lines"), "{notice}");
        assert_eq!(log.admit("and more"), None, "nothing after the notice");
    }
}
