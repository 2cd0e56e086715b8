//! Scenarios a, b and b2: a fleet of droplets provisioned, then deprovisioned, through the
//! engine against the sandbox, with or without a rate limit on either side.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use stackdock_core::{ProvisioningState, ResourceId, ResourceKind, Timestamp};
use stackdock_sandbox::{BucketLimit, DoSandboxConfig, RequestCounts};

use crate::follow::Follower;
use crate::report::{Bound, Check, Measured};
use crate::rig::{Rig, server_config};
use crate::timeline;
use crate::{BenchError, Options, Scenario};

/// Requests recorded at once, as that many API clients would.
const CLIENTS: usize = 16;

/// One fleet run.
pub(crate) struct Spec {
    scenario: Scenario,
    n: usize,
    latency: Duration,
    ready_after: Duration,
    /// The sandbox's limit; `None` for none.
    bucket: Option<BucketLimit>,
    /// The dock's `settings.rate_limit`.
    dock_limit: String,
    /// For each of the two phases.
    deadline: Duration,
    timeline: bool,
}

impl Spec {
    /// (a): no limit anywhere.
    pub(crate) fn unlimited(o: &Options) -> Self {
        let (latency, ready_after) = if o.smoke {
            (Duration::from_millis(5), Duration::from_millis(100))
        } else {
            (Duration::from_millis(100), Duration::from_secs(2))
        };
        Self {
            scenario: Scenario::A,
            n: o.sizes.fleet,
            latency,
            ready_after,
            bucket: None,
            dock_limit: "none".into(),
            deadline: Duration::from_secs(120),
            timeline: o.timeline,
        }
    }

    /// (b) with the dock's budget matching the sandbox's bucket, (b2) with it `none`.
    pub(crate) fn limited(o: &Options, matched: bool) -> Self {
        let (latency, ready_after, per_minute) = if o.smoke {
            (Duration::from_millis(5), Duration::from_millis(100), 6000)
        } else {
            (Duration::from_millis(100), Duration::from_secs(2), 600)
        };
        let bucket = BucketLimit {
            per_minute,
            burst: 10,
        };
        let dock_limit = if matched {
            format!("{}/s,{per_minute}/min", per_minute / 60)
        } else {
            "none".into()
        };
        let n = o.sizes.limited;
        let floor = floor(n, bucket);
        Self {
            scenario: if matched { Scenario::B } else { Scenario::B2 },
            n,
            latency,
            ready_after,
            bucket: Some(bucket),
            dock_limit,
            deadline: floor.saturating_mul(10).max(Duration::from_secs(60)),
            timeline: o.timeline,
        }
    }

    fn title(&self) -> String {
        let limit = match self.bucket {
            Some(b) => format!(
                "sandbox bucket {}/min burst {}, dock budget `{}`",
                b.per_minute, b.burst, self.dock_limit
            ),
            None => format!("no sandbox limit, dock budget `{}`", self.dock_limit),
        };
        format!(
            "{} droplets provisioned then deprovisioned; {} ms a call, ready {} ms after create; {limit}",
            self.n,
            self.latency.as_millis(),
            self.ready_after.as_millis()
        )
    }
}

/// The least time the bucket needs to let 3 calls per droplet through: the burst goes at
/// once, the rest at the refill rate.
fn floor(n: usize, bucket: BucketLimit) -> Duration {
    let rate = f64::from(bucket.per_minute) / 60.0;
    let calls = (3 * n) as f64 - f64::from(bucket.burst);
    Duration::from_secs_f64((calls / rate).max(0.0))
}

pub(crate) async fn run(spec: Spec) -> Result<Measured, BenchError> {
    let rig = Rig::start(
        DoSandboxConfig {
            latency: spec.latency,
            ready_after: spec.ready_after,
            bucket: spec.bucket,
            ..DoSandboxConfig::default()
        },
        &spec.dock_limit,
    )
    .await?;
    let result = match Follower::new(rig.store.clone(), rig.actor.org_id).await {
        Ok(follower) => {
            let settled = follower.settled.clone();
            timeline::alongside(
                &rig.sandbox,
                settled,
                spec.timeline,
                measure(&rig, &spec, follower),
            )
            .await
        }
        Err(e) => Err(e),
    };
    rig.stop().await;
    result
}

async fn measure(rig: &Rig, spec: &Spec, mut follower: Follower) -> Result<Measured, BenchError> {
    let start = chrono::Utc::now();
    let ids = request_provisions(rig, spec.scenario.id(), spec.n).await?;
    let requested = chrono::Utc::now();
    let up = follower
        .settle(&ids, ProvisioningState::Provisioned, spec.deadline)
        .await?;
    let calls_up = rig.sandbox.request_counts();

    let down_start = chrono::Utc::now();
    futures::stream::iter(ids.iter().copied())
        .map(|id| rig.engine.request_deprovision(rig.actor, id))
        .buffer_unordered(CLIENTS)
        .try_collect::<Vec<_>>()
        .await?;
    let down_requested = chrono::Utc::now();
    let down = follower
        .settle(&ids, ProvisioningState::Deprovisioned, spec.deadline)
        .await?;
    let calls = rig.sandbox.request_counts();
    let left = rig.sandbox.droplets().len();

    let n = spec.n as f64;
    let wall = secs(start, down.last_at);
    let failures = up.failed + down.failed;
    let per_droplet = calls.total as f64 / n;
    let share = 100.0 * calls.rate_limited_share();
    let mut figures = json!({
        "n": spec.n,
        "latency_ms": spec.latency.as_millis() as u64,
        "ready_after_ms": spec.ready_after.as_millis() as u64,
        "sandbox_bucket": spec.bucket.map(|b| json!({"per_minute": b.per_minute, "burst": b.burst})),
        "dock_rate_limit": spec.dock_limit,
        "wall_s": wall,
        "requests_recorded_s": secs(start, requested),
        "provision_phase_s": secs(start, up.last_at),
        "deprovision_requests_recorded_s": secs(down_start, down_requested),
        "deprovision_phase_s": secs(down_start, down.last_at),
        "calls": {
            "total": calls.total,
            "per_droplet": per_droplet,
            "by_method": calls.by_method,
            "by_status": calls.by_status,
            "provision_phase": phase(&calls_up, None),
            "deprovision_phase": phase(&calls, Some(&calls_up)),
        },
        "rate_limited": calls.rate_limited,
        "rate_limited_percent": share,
        "failures": failures,
        "inventory_left": left,
    });

    let mut notes = vec![
        format!(
            "{} calls: {} creates, {} deletes, {} listings checking waiting droplets, {} refused (429)",
            calls.total,
            calls.method("POST"),
            calls.method("DELETE"),
            calls.method("GET"),
            calls.rate_limited
        ),
        format!(
            "recording the {} provision requests took {:.2} s ({:.2} ms each) while the engine \
             worked, the {} deprovision requests {:.2} s; the last provisioned {:.2} s after the \
             first request, the last deprovisioned {:.2} s after the deprovisions were requested",
            spec.n,
            secs(start, requested),
            1000.0 * secs(start, requested) / n,
            spec.n,
            secs(down_start, down_requested),
            secs(start, up.last_at),
            secs(down_start, down.last_at)
        ),
    ];
    if let Some(bucket) = spec.bucket {
        let rate = f64::from(bucket.per_minute) / 60.0;
        let needed = (calls.total as f64 - f64::from(bucket.burst)).max(0.0) / rate;
        notes.push(format!(
            "at the bucket's {rate:.0} calls/s, these {} calls need {needed:.1} s by themselves",
            calls.total
        ));
    }
    figures["notes"] = json!(notes);

    let mut checks = Vec::new();
    match spec.bucket {
        None => {
            let critical = 3.0 * spec.latency.as_secs_f64() + spec.ready_after.as_secs_f64();
            figures["critical_path_s"] = json!(critical);
            figures["wall_over_critical_path"] = json!(wall / critical);
            checks.push(Check::new(
                format!("wall / critical path ({wall:.2} s / {critical:.2} s)"),
                wall / critical,
                "",
                Bound::AtMost(1.5),
            ));
            checks.push(Check::new(
                "provider calls per droplet",
                per_droplet,
                "",
                Bound::AtMost(3.0),
            ));
        }
        Some(bucket) => {
            let floor = floor(spec.n, bucket).as_secs_f64();
            let (slack, share_max) = if spec.scenario == Scenario::B {
                (1.0, 2.0)
            } else {
                (1.25, 10.0)
            };
            figures["floor_s"] = json!(floor);
            figures["wall_over_floor"] = json!(wall / floor);
            let target = if slack == 1.0 {
                format!("wall vs floor {floor:.1} s")
            } else {
                format!("wall vs {slack} × floor {floor:.1} s")
            };
            checks.push(Check::new(target, wall, "s", Bound::AtMost(slack * floor)));
            checks.push(Check::new(
                format!(
                    "429s, share of {} calls ({})",
                    calls.total, calls.rate_limited
                ),
                share,
                "%",
                Bound::AtMost(share_max),
            ));
            checks.push(Check::new(
                "provider calls per droplet (the floor assumes 3)",
                per_droplet,
                "",
                Bound::AtMost(3.0),
            ));
        }
    }
    checks.push(Check::new(
        "failures",
        failures as f64,
        "",
        Bound::AtMost(0.0),
    ));
    checks.push(Check::new(
        "droplets left at the sandbox",
        left as f64,
        "",
        Bound::AtMost(0.0),
    ));
    Ok(Measured {
        title: spec.title(),
        figures,
        checks,
    })
}

/// Records `n` provisions named after `scenario`, [`CLIENTS`] at a time, as that many API
/// clients would.
pub(crate) async fn request_provisions(
    rig: &Rig,
    scenario: &str,
    n: usize,
) -> Result<Vec<ResourceId>, BenchError> {
    let made = futures::stream::iter(0..n)
        .map(|i| {
            let config = server_config(&format!("bench-{scenario}-{i:05}"));
            rig.engine
                .request_provision(rig.actor, &rig.dock, ResourceKind::Server, config)
        })
        .buffer_unordered(CLIENTS)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(made.into_iter().map(|(row, _)| row.id).collect())
}

/// Calls made during one phase: the counts at its end less those at its start.
fn phase(end: &RequestCounts, start: Option<&RequestCounts>) -> Value {
    let before = |m: &str| start.map_or(0, |s| s.method(m));
    let by_method: serde_json::Map<String, Value> = end
        .by_method
        .iter()
        .map(|(m, n)| (m.clone(), json!(n - before(m))))
        .collect();
    json!({
        "total": end.total - start.map_or(0, |s| s.total),
        "rate_limited": end.rate_limited - start.map_or(0, |s| s.rate_limited),
        "by_method": by_method,
    })
}

pub(crate) fn secs(from: Timestamp, to: Timestamp) -> f64 {
    (to - from).to_std().unwrap_or_default().as_secs_f64()
}
