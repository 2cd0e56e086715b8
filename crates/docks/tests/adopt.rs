//! `create_or_adopt` on its own, with counting closures in place of a provider: when it looks
//! the marker up, when it creates again, how long it waits, and when it gives up. The
//! DigitalOcean tests show the same rules against the sandbox; these pin down the exact number
//! of calls.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use stackdock_core::Provider;
use stackdock_docks::DockError;
use stackdock_docks::adopt::{Created, create_or_adopt};
use support::{Run, canary, dock_at};

fn unavailable(retry_after: Option<Duration>) -> DockError {
    DockError::Unavailable {
        provider: Provider::DigitalOcean,
        detail: "503 service_unavailable".into(),
        retry_after,
    }
}

/// Drives `create_or_adopt` with a create that answers from `creates` in turn (then succeeds)
/// and a lookup that finds something from the `found_on_lookup`-th call on (0: never);
/// `sent_before` says an earlier run recorded that it sent the create.
/// Returns the outcome and how many times each closure ran.
async fn drive(
    run: &Run,
    sent_before: bool,
    creates: Vec<Result<&'static str, DockError>>,
    found_on_lookup: u32,
) -> (Result<Created<&'static str>, DockError>, u32, u32) {
    let created = AtomicU32::new(0);
    let looked = AtomicU32::new(0);
    let answers = std::sync::Mutex::new(creates.into_iter());
    let out = create_or_adopt(
        &run.ctx,
        sent_before,
        |attempt| {
            let n = created.fetch_add(1, Ordering::SeqCst) + 1;
            assert_eq!(attempt, n, "tries are numbered 1, 2, ...");
            let answer = answers.lock().unwrap().next().unwrap_or(Ok("new"));
            async move { answer }
        },
        || {
            let n = looked.fetch_add(1, Ordering::SeqCst) + 1;
            let found = (found_on_lookup != 0 && n >= found_on_lookup).then_some("found");
            async move { Ok(found) }
        },
    )
    .await;
    (out, created.into_inner(), looked.into_inner())
}

/// A run whose dock points nowhere: these tests never reach a provider.
fn run() -> Run {
    Run::new(&dock_at("http://127.0.0.1:1", &canary()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_run_creates_without_looking_first() {
    let run = run();
    let (out, creates, lookups) = drive(&run, false, vec![], 1).await;
    assert!(matches!(out, Ok(Created::New("new"))), "{out:?}");
    // Looking up before every create would double the calls of the common case for nothing.
    assert_eq!((creates, lookups), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_look_up_then_create_again_into_one_resource() {
    let run = run();
    let (out, creates, lookups) = drive(
        &run,
        false,
        vec![Err(unavailable(None)), Err(unavailable(None))],
        0,
    )
    .await;
    assert!(matches!(out, Ok(Created::New("new"))), "{out:?}");
    assert_eq!((creates, lookups), (3, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_try_that_created_anyway_is_adopted_not_repeated() {
    let run = run();
    let (out, creates, lookups) = drive(&run, false, vec![Err(unavailable(None))], 1).await;
    assert!(matches!(out, Ok(Created::Adopted("found"))), "{out:?}");
    assert_eq!((creates, lookups), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_sent_the_create_before_looks_first_and_adopts_or_creates() {
    let run = run();
    let (out, creates, lookups) = drive(&run, true, vec![], 1).await;
    assert!(matches!(out, Ok(Created::Adopted("found"))), "{out:?}");
    assert_eq!((creates, lookups), (0, 1));

    let (out, creates, lookups) = drive(&run, true, vec![], 0).await;
    assert!(matches!(out, Ok(Created::New("new"))), "{out:?}");
    assert_eq!((creates, lookups), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_refusal_is_returned_at_once() {
    let run = run();
    let refusal = DockError::Provider(stackdock_docks::ProviderError {
        provider: Provider::DigitalOcean,
        status: 422,
        code: "unprocessable_entity".into(),
        message: "bad size".into(),
        request_id: None,
    });
    let (out, creates, lookups) = drive(&run, false, vec![Err(refusal)], 1).await;
    assert!(matches!(out, Err(DockError::Provider(_))), "{out:?}");
    assert_eq!((creates, lookups), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_try_failing_is_unavailable_after_max_attempts() {
    let run = run();
    let max = run.ctx.retry.max_attempts;
    let failures = (0..10).map(|_| Err(unavailable(None))).collect();
    let (out, creates, lookups) = drive(&run, false, failures, 0).await;
    assert!(matches!(out, Err(DockError::Unavailable { .. })), "{out:?}");
    // The last failed try may have created it too, so it is looked up before giving up.
    assert_eq!((creates, lookups), (max, max));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ask_to_wait_past_max_wait_gives_up_without_waiting() {
    let run = run();
    let started = Instant::now();
    let (out, creates, lookups) = drive(
        &run,
        false,
        vec![Err(unavailable(Some(Duration::from_secs(3600))))],
        0,
    )
    .await;
    assert!(
        matches!(
            out,
            Err(DockError::Unavailable {
                retry_after: Some(_),
                ..
            })
        ),
        "{out:?}"
    );
    // The failed try may have created it, so it is looked up once; then the operation is
    // left to be rescheduled rather than hold a worker for an hour.
    assert_eq!((creates, lookups), (1, 1));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_the_provider_asks_for_is_honoured_before_the_next_create() {
    let run = run();
    let asked = Duration::from_millis(400);
    let tries = std::sync::Mutex::new(Vec::new());
    let looked = AtomicU32::new(0);
    let mut answers = vec![Err(unavailable(Some(asked)))].into_iter();
    let out = create_or_adopt(
        &run.ctx,
        false,
        |_| {
            tries.lock().unwrap().push(Instant::now());
            let answer = answers.next().unwrap_or(Ok("new"));
            async move { answer }
        },
        || {
            looked.fetch_add(1, Ordering::SeqCst);
            async { Ok(None) }
        },
    )
    .await;
    assert!(matches!(out, Ok(Created::New("new"))), "{out:?}");
    assert_eq!(looked.into_inner(), 1);
    let tries = tries.into_inner().unwrap();
    assert_eq!(tries.len(), 2);
    let waited = tries[1] - tries[0];
    // The backoff alone (20ms base) would try again far sooner.
    assert!(
        waited >= asked,
        "created again after {waited:?}, asked {asked:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_answer_is_looked_up_like_a_lost_one() {
    let run = run();
    let unreadable = DockError::Protocol {
        provider: Provider::DigitalOcean,
        detail: "the answer's body is not the JSON it should be".into(),
    };
    let (out, creates, lookups) = drive(&run, false, vec![Err(unreadable)], 1).await;
    assert!(matches!(out, Ok(Created::Adopted("found"))), "{out:?}");
    assert_eq!((creates, lookups), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_refusal_is_returned_without_a_lookup() {
    // A 429 says the provider did nothing: nothing to look for. The HTTP layer already sent
    // the create again as often as the retry policy allows.
    let run = run();
    let limited = DockError::RateLimited {
        provider: Provider::DigitalOcean,
        retry_after: Some(Duration::from_secs(1)),
    };
    let (out, creates, lookups) = drive(&run, false, vec![Err(limited)], 1).await;
    assert!(matches!(out, Err(DockError::RateLimited { .. })), "{out:?}");
    assert_eq!((creates, lookups), (1, 0));
}
