//! An in-memory [`Recorder`]: the store's part of the contract, kept where a test can read it,
//! and able to stop an adapter at any step the way the store or a user would.

use std::sync::Mutex;

use async_trait::async_trait;
use stackdock_core::{ApiCall, Keyring, MasterKey, SealedSecret, SecretString, Step};
use stackdock_docks::{DockError, Recorder};

/// How the recorder answers the checkpoint it was told to stop at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The step is kept, then the adapter hears that progress could not be recorded: a store
    /// that committed but whose answer was lost, or a worker that lost its lease right after.
    FailAfterRecording,
    /// The step is refused and not kept: the store was down.
    Refuse,
    /// The step is kept, then the adapter hears that a user asked to stop.
    Cancel,
}

impl Stop {
    pub const ALL: [Stop; 3] = [Stop::FailAfterRecording, Stop::Refuse, Stop::Cancel];

    /// Whether the step the recorder stopped at stays recorded.
    pub fn keeps_the_step(self) -> bool {
        self != Stop::Refuse
    }

    /// What the adapter must answer once stopped this way.
    pub fn expected(self, err: &DockError) -> bool {
        match self {
            Stop::FailAfterRecording | Stop::Refuse => matches!(err, DockError::Checkpoint(_)),
            Stop::Cancel => matches!(err, DockError::Cancelled),
        }
    }
}

/// A step as the store would hold it: the record and the provider id it put on the resource.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub step: Step,
    pub tracks: Option<String>,
    /// How many calls were journaled before this step was recorded.
    pub after_calls: usize,
}

/// The key a test recorder seals minted secrets with, as the engine's keyring would.
pub struct SealingKey(Keyring);

impl Default for SealingKey {
    fn default() -> Self {
        Self(Keyring::new(MasterKey::generate()))
    }
}

/// Journal and steps kept in memory.
#[derive(Default)]
pub struct MemRecorder {
    sealing: SealingKey,
    calls: Mutex<Vec<ApiCall>>,
    steps: Mutex<Vec<Recorded>>,
    /// Stop at the n-th checkpoint this recorder is asked for (1 = the first), and how.
    stop_at: Option<(usize, Stop)>,
    checkpoints: Mutex<usize>,
    /// How many calls had been journaled when the recorder stopped the adapter.
    stopped_after_calls: Mutex<Option<usize>>,
    /// The deploy log, each line with how many steps were recorded before it.
    log: Mutex<Vec<(String, usize)>>,
}

impl MemRecorder {
    /// A store that refuses every step, as one that lost the worker's lease would.
    pub fn refusing() -> Self {
        Self::stopping_at(1, Stop::Refuse)
    }

    /// Stops the adapter at the `nth` checkpoint asked of this recorder (1-based).
    pub fn stopping_at(nth: usize, how: Stop) -> Self {
        Self {
            stop_at: Some((nth, how)),
            ..Self::default()
        }
    }

    /// A store that already holds these steps of the operation (a resumed run reads them).
    pub fn holding(recorded: &[Recorded]) -> Self {
        let recorder = Self::default();
        *recorder.steps.lock().unwrap() = recorded
            .iter()
            .map(|r| Recorded {
                after_calls: 0,
                ..r.clone()
            })
            .collect();
        recorder
    }

    pub fn calls(&self) -> Vec<ApiCall> {
        self.calls.lock().unwrap().clone()
    }

    /// The recorded steps, oldest first, as a resumed run or an unwind would read them.
    pub fn steps(&self) -> Vec<Step> {
        self.recorded().into_iter().map(|r| r.step).collect()
    }

    pub fn recorded(&self) -> Vec<Recorded> {
        self.steps.lock().unwrap().clone()
    }

    /// The provider id the steps wrote onto the resource row (the newest), if any.
    pub fn tracks(&self) -> Option<String> {
        self.recorded().into_iter().rev().find_map(|r| r.tracks)
    }

    /// Opens what [`Recorder::seal`] sealed, as only the engine could.
    pub fn open(&self, sealed: &str) -> SecretString {
        let sealed = SealedSecret::parse(sealed).expect("a sealed secret");
        self.sealing
            .0
            .open(&sealed, SEALED_FOR)
            .expect("sealed by this recorder")
    }

    /// The deploy log lines, oldest first, each with how many steps were recorded before it.
    pub fn log(&self) -> Vec<(String, usize)> {
        self.log.lock().unwrap().clone()
    }

    /// How many calls had been journaled when this recorder stopped the adapter, if it did.
    pub fn stopped_after_calls(&self) -> Option<usize> {
        *self.stopped_after_calls.lock().unwrap()
    }
}

/// What the recorder binds a sealed secret to (the engine binds it to the resource).
const SEALED_FOR: &str = "test-resource";

#[async_trait]
impl Recorder for MemRecorder {
    fn seal(&self, secret: &SecretString) -> Result<SealedSecret, DockError> {
        Ok(self.sealing.0.seal(secret, SEALED_FOR))
    }

    async fn journal(&self, call: ApiCall) {
        self.calls.lock().unwrap().push(call);
    }

    async fn log(&self, line: String) {
        let steps = self.steps.lock().unwrap().len();
        self.log.lock().unwrap().push((line, steps));
    }

    async fn checkpoint(&self, step: Step, tracks: Option<String>) -> Result<(), DockError> {
        let nth = {
            let mut n = self.checkpoints.lock().unwrap();
            *n += 1;
            *n
        };
        let stop = self
            .stop_at
            .and_then(|(at, how)| (at == nth).then_some(how));
        let after_calls = self.calls.lock().unwrap().len();
        if stop.is_none_or(Stop::keeps_the_step) {
            self.steps.lock().unwrap().push(Recorded {
                step,
                tracks,
                after_calls,
            });
        }
        let Some(how) = stop else {
            return Ok(());
        };
        *self.stopped_after_calls.lock().unwrap() = Some(after_calls);
        Err(match how {
            Stop::FailAfterRecording => {
                DockError::Checkpoint("the step was stored but its answer was lost".into())
            }
            Stop::Refuse => DockError::Checkpoint("the store refused the step".into()),
            Stop::Cancel => DockError::Cancelled,
        })
    }
}
