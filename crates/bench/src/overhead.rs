//! Scenario c: what the engine costs per provision when the provider costs nothing, beside what
//! a plain HTTP client gets from the same sandbox.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use serde_json::json;
use stackdock_core::ProvisioningState;
use stackdock_sandbox::DoSandboxConfig;

use crate::fleet::secs;
use crate::follow::Follower;
use crate::report::{Bound, Check, Measured};
use crate::rig::Rig;
use crate::timeline;
use crate::{BenchError, Options};

pub(crate) async fn run(o: &Options) -> Result<Measured, BenchError> {
    let rig = Rig::start(
        DoSandboxConfig {
            latency: Duration::ZERO,
            ready_after: Duration::ZERO,
            ..DoSandboxConfig::default()
        },
        "none",
    )
    .await?;
    let result = match Follower::new(rig.store.clone(), rig.actor.org_id).await {
        Ok(follower) => {
            let settled = follower.settled.clone();
            timeline::alongside(
                &rig.sandbox,
                settled,
                o.timeline,
                measure(&rig, o, follower),
            )
            .await
        }
        Err(e) => Err(e),
    };
    rig.stop().await;
    result
}

async fn measure(rig: &Rig, o: &Options, mut follower: Follower) -> Result<Measured, BenchError> {
    let n = o.sizes.overhead;
    let start = chrono::Utc::now();
    let ids = crate::fleet::request_provisions(rig, "c", n).await?;
    let requested = chrono::Utc::now();
    let up = follower
        .settle(
            &ids,
            ProvisioningState::Provisioned,
            Duration::from_secs(300),
        )
        .await?;
    let provision_s = secs(start, up.last_at);
    let calls = rig.sandbox.request_counts();
    let per_provision = calls.total as f64 / n as f64;
    let provisions_per_s = n as f64 / provision_s;

    // The workers are idle now (everything settled), so the plain client has the cores.
    let droplet = rig
        .sandbox
        .droplets()
        .first()
        .and_then(|d| d["id"].as_u64())
        .ok_or_else(|| BenchError::Other("the sandbox holds no droplet to read".into()))?;
    let raw = raw_rate(
        &rig.sandbox.base_url(),
        droplet,
        o.sizes.raw_requests,
        o.sizes.raw_concurrency,
    )
    .await?;
    let target = 0.5 * raw.per_s / per_provision;

    let figures = json!({
        "n": n,
        "provision_s": provision_s,
        "requests_recorded_s": secs(start, requested),
        "provisions_per_s": provisions_per_s,
        "calls": {
            "total": calls.total,
            "per_provision": per_provision,
            "by_method": calls.by_method,
        },
        "failures": up.failed,
        "raw": {
            "path": "/v2/droplets/{id}",
            "requests": o.sizes.raw_requests,
            "concurrency": o.sizes.raw_concurrency,
            "seconds": raw.seconds,
            "requests_per_s": raw.per_s,
            "non_200": raw.non_200,
        },
        "target_provisions_per_s": target,
        "notes": [
            format!(
                "{} calls for {n} provisions: {} creates and {} listings checking waiting droplets",
                calls.total,
                calls.method("POST"),
                calls.method("GET")
            ),
            format!(
                "recording the {n} requests took {:.2} s ({:.2} ms each) while the engine worked",
                secs(start, requested),
                1000.0 * secs(start, requested) / n as f64
            ),
        ],
    });
    let checks = vec![
        Check::new(
            format!(
                "provisions/s vs ½ × {:.0} raw rps / {per_provision:.2} calls",
                raw.per_s
            ),
            provisions_per_s,
            "/s",
            Bound::AtLeast(target),
        ),
        Check::new("failures", up.failed as f64, "", Bound::AtMost(0.0)),
    ];
    Ok(Measured {
        title: format!(
            "{n} provisions at zero latency, droplets ready at once; raw client: {} GETs, {} at once",
            o.sizes.raw_requests, o.sizes.raw_concurrency
        ),
        figures,
        checks,
    })
}

struct Raw {
    seconds: f64,
    per_s: f64,
    non_200: usize,
}

/// `requests` GETs of one droplet, `concurrency` at a time, from a plain client.
async fn raw_rate(
    base_url: &str,
    droplet: u64,
    requests: usize,
    concurrency: usize,
) -> Result<Raw, BenchError> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .map_err(BenchError::http("building the plain client"))?;
    let url = format!("{base_url}/v2/droplets/{droplet}");
    let started = tokio::time::Instant::now();
    let statuses = futures::stream::iter(0..requests)
        .map(|_| {
            let req = client.get(&url).bearer_auth(crate::rig::KEY).send();
            async move {
                let resp = req.await?;
                let status = resp.status().as_u16();
                // Read the body, as a client of the API would.
                resp.bytes().await?;
                Ok::<u16, reqwest::Error>(status)
            }
        })
        .buffer_unordered(concurrency)
        .try_collect::<Vec<u16>>()
        .await
        .map_err(BenchError::http(format!("GET {url}")))?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(Raw {
        seconds,
        per_s: requests as f64 / seconds,
        non_200: statuses.iter().filter(|s| **s != 200).count(),
    })
}
