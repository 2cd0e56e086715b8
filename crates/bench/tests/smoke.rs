//! The benchmark's smoke run, in process: every in-process scenario (a, b, b2, c) finishes at
//! tiny sizes with no failures and leaves nothing at the sandbox. Scenario d needs the release
//! binary and is left to `cargo run -p stackdock-bench -- --smoke`.

use serde_json::Value;
use stackdock_bench::{Options, Scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_run_completes_with_no_failures_and_an_empty_inventory() {
    let options = Options {
        only: vec![Scenario::A, Scenario::B, Scenario::B2, Scenario::C],
        print: false,
        ..Options::smoke()
    };
    let report = stackdock_bench::run(options).await;
    print!("{}", report.table());

    for s in &report.scenarios {
        assert!(
            s.completed(),
            "{} did not finish: {:?}",
            s.scenario.id(),
            s.error
        );
        assert_eq!(
            s.figure("/failures"),
            Some(&Value::from(0)),
            "{} had failures",
            s.scenario.id()
        );
        assert!(
            !s.checks.is_empty(),
            "{} reported no checks",
            s.scenario.id()
        );
    }
    for id in [Scenario::A, Scenario::B, Scenario::B2] {
        let s = report.scenario(id).expect("the scenario ran");
        assert_eq!(
            s.figure("/inventory_left"),
            Some(&Value::from(0)),
            "{} left droplets at the sandbox",
            id.id()
        );
    }
    let c = report.scenario(Scenario::C).expect("c ran");
    assert!(
        c.figure("/raw/requests_per_s")
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
            > 0.0
    );
    assert!(
        report.json()["scenarios"]
            .as_array()
            .is_some_and(|a| a.len() == 4)
    );
}
