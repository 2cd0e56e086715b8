//! Scenario e: live updates at scale. The `stackdock` binary with its sandbox docks, a
//! thousand clients following `GET /api/v1/events`, and one state change at a time: how long
//! from the request that makes the change until each client has the event.
//!
//! A round sends `POST /api/v1/servers` (its answer comes after the new row, in state
//! `provisioning`, is written) and waits until every client has read the event that carries
//! the new server's name; the time of each is taken when the client reads it. The next round
//! starts once every client has read the event that settled that server, so no round's
//! deliveries overlap the last one's (the settled state fans out to every client too).

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::binary::{Up, build, deadline};
use crate::report::{Bound, Check, Measured};
use crate::{BenchError, Options};

/// How long every client may take to connect, and a round to be delivered.
const ROUND_DEADLINE: Duration = Duration::from_secs(60);
/// The sandbox dock the rounds provision on.
const DOCK: &str = "sandbox-digitalocean";

pub(crate) async fn run(o: &Options) -> Result<Measured, BenchError> {
    let bin = match &o.stackdock_bin {
        Some(path) => path.clone(),
        None => build().await?,
    };
    raise_open_files_limit();
    let dir = tempfile::tempdir().map_err(BenchError::io("making a temporary directory"))?;
    let log = dir.path().join("stackdock.log");
    let result = measure(o, &bin, &dir.path().join("data"), &log).await;
    result.map_err(|e| match std::fs::read_to_string(&log) {
        Ok(text) if !text.trim().is_empty() => {
            let tail: Vec<&str> = text.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            BenchError::Other(format!("{e}; stackdock's log ends:\n{}", tail.join("\n")))
        }
        _ => e,
    })
}

async fn measure(o: &Options, bin: &Path, data: &Path, log: &Path) -> Result<Measured, BenchError> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(BenchError::http("building the HTTP client"))?;
    let mut up = Up::start(bin, data, log, &http, &["--sandbox"]).await?;
    let measured = follow_rounds(o, &http, &up, &up).await;
    up.stop().await?;
    let (figures, p99) = measured?;
    let (n, rounds) = (o.sizes.subscribers, o.sizes.rounds);
    Ok(Measured {
        title: format!(
            "`stackdock up --sandbox`: {n} clients following the event stream, {rounds} state \
             changes one at a time"
        ),
        figures,
        checks: vec![Check::new(
            format!("p99 from request to delivery, {n} subscribers"),
            p99,
            "ms",
            Bound::AtMost(10.0),
        )],
    })
}

/// Scenario e2: e across two nodes on one PostgreSQL database. The clients follow node A (an
/// API node); the changes are asked of node B (which runs the workers and the sandbox docks):
/// each event reaches A through the database's `NOTIFY`.
pub(crate) async fn run_across_nodes(o: &Options) -> Result<Measured, BenchError> {
    let bin = match &o.stackdock_bin {
        Some(path) => path.clone(),
        None => build().await?,
    };
    raise_open_files_limit();
    let dir = tempfile::tempdir().map_err(BenchError::io("making a temporary directory"))?;
    let pg_dir = dir.path().join("postgres");
    let admin = crate::nodes::postgres(&["start"], &pg_dir).await?;
    let result = across_nodes(o, &bin, dir.path(), &admin).await;
    let _ = crate::nodes::postgres(&["stop"], &pg_dir).await;
    result
}

async fn across_nodes(
    o: &Options,
    bin: &Path,
    dir: &Path,
    admin: &str,
) -> Result<Measured, BenchError> {
    let url = crate::nodes::database(admin, &format!("bench_e2_{}", std::process::id())).await?;
    let key = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
    let env = [
        ("STACKDOCK_DATABASE_URL", url.as_str()),
        ("STACKDOCK_MASTER_KEY", key),
    ];
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(BenchError::http("building the HTTP client"))?;
    let log = dir.join("stackdock.log");
    let mut b =
        Up::start_with(bin, &dir.join("b"), &log, &http, &["--sandbox"], &env, None).await?;
    let token = b.token.clone();
    let mut a = Up::start_with(
        bin,
        &dir.join("a"),
        &log,
        &http,
        &["--role", "api"],
        &env,
        Some(&token),
    )
    .await?;
    let measured = follow_rounds(o, &http, &a, &b).await;
    a.stop().await?;
    b.stop().await?;
    let (figures, p99) = measured?;
    let (n, rounds) = (o.sizes.subscribers, o.sizes.rounds);
    Ok(Measured {
        title: format!(
            "two `stackdock up` nodes on one PostgreSQL database: {n} clients following node A's \
             event stream, {rounds} state changes asked of node B one at a time"
        ),
        figures,
        checks: vec![Check::new(
            format!("p99 from request on node B to delivery by node A, {n} subscribers"),
            p99,
            "ms",
            Bound::AtMost(10.0),
        )],
    })
}

/// The rounds of e: `n` clients follow `subscribed`'s event stream, and each change is asked
/// of `writer`. Answers the figures and the p99 in milliseconds.
async fn follow_rounds(
    o: &Options,
    http: &reqwest::Client,
    subscribed: &Up,
    writer: &Up,
) -> Result<(Value, f64), BenchError> {
    let n = o.sizes.subscribers;
    let rounds = o.sizes.rounds;
    let up = subscribed;

    // Every client reports, for each round in turn, when it read that round's first event
    // and when it read the one that settled it.
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Read)>();
    let (connected_tx, mut connected_rx) = mpsc::unbounded_channel::<()>();
    let mut clients = Vec::with_capacity(n);
    let addr = up
        .base_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    for _ in 0..n {
        clients.push(tokio::spawn(follow(
            addr.clone(),
            up.token.clone(),
            rounds,
            tx.clone(),
            connected_tx.clone(),
        )));
    }
    drop(tx);
    let until = Instant::now() + ROUND_DEADLINE;
    for i in 0..n {
        tokio::time::timeout_at(until, connected_rx.recv())
            .await
            .map_err(|_| deadline(&format!("{i} of {n} clients connected to the event stream")))?;
    }

    let mut latencies_ms: Vec<f64> = Vec::with_capacity(n * rounds);
    let mut per_round = Vec::new();
    for round in 0..rounds {
        let name = round_name(round);
        let sent = Instant::now();
        let answer = http
            .post(format!("{}/api/v1/servers", writer.base_url))
            .bearer_auth(&writer.token)
            .json(&json!({
                "dock": DOCK,
                "name": name,
                "region": "nyc3",
                "size": "s-1vcpu-1gb",
                "image": "ubuntu-24-04-x64",
            }))
            .send()
            .await
            .map_err(BenchError::http("POST /api/v1/servers"))?;
        let status = answer.status();
        let body: Value = answer
            .json()
            .await
            .map_err(BenchError::http("reading the provision's answer"))?;
        if !status.is_success() {
            return Err(BenchError::Other(format!(
                "POST /api/v1/servers answered {status}: {body}"
            )));
        }
        // One deadline for the whole round, not a timer per delivery: the collecting task
        // shares the cores with the server it measures.
        let mut this_round = Vec::with_capacity(n);
        let mut settled = 0;
        let collect = async {
            while this_round.len() < n {
                match next_read(&mut rx, round).await? {
                    Read::First(at) => this_round.push((at - sent).as_secs_f64() * 1000.0),
                    Read::Settled => settled += 1,
                }
            }
            Ok::<_, BenchError>(())
        };
        let collected = tokio::time::timeout(ROUND_DEADLINE, collect).await;
        collected.map_err(|_| {
            deadline(&format!(
                "round {round}: {} of {n} clients had the event",
                this_round.len()
            ))
        })??;
        this_round.sort_by(f64::total_cmp);
        per_round.push(json!({
            "first_ms": this_round.first().copied().unwrap_or(0.0),
            "p50_ms": percentile(&this_round, 0.50),
            "p99_ms": percentile(&this_round, 0.99),
            "max_ms": this_round.last().copied().unwrap_or(0.0),
        }));
        latencies_ms.extend(this_round);
        // The next round starts once every client has read the event that settled this
        // round's server, so no round's deliveries queue behind the last one's.
        let until = Instant::now() + ROUND_DEADLINE;
        while settled < n {
            let read = tokio::time::timeout_at(until, next_read(&mut rx, round))
                .await
                .map_err(|_| {
                    let id = body["id"].as_str().unwrap_or_default();
                    deadline(&format!(
                        "round {round}: {settled} of {n} clients saw server {id} settle"
                    ))
                })??;
            if let Read::Settled = read {
                settled += 1;
            }
        }
    }
    for c in &clients {
        c.abort();
    }

    latencies_ms.sort_by(f64::total_cmp);
    let p50 = percentile(&latencies_ms, 0.50);
    let p99 = percentile(&latencies_ms, 0.99);
    let max = latencies_ms.last().copied().unwrap_or(0.0);
    let figures = json!({
        "subscribers": n,
        "rounds": rounds,
        "deliveries": latencies_ms.len(),
        "p50_ms": p50,
        "p99_ms": p99,
        "max_ms": max,
        "rounds_detail": per_round,
        "notes": [
            "from sending the POST that writes the change until a client has read its event; \
             the clients run in the benchmark's process, on the same two cores as the server"
        ],
    });
    Ok((figures, p99))
}

fn round_name(round: usize) -> String {
    format!("bench-e-{round}")
}

/// What a client read, reported in the order it read it: a round's server first, then the
/// event that settled it.
enum Read {
    First(Instant),
    Settled,
}

/// The next client report, which must be of `round`.
async fn next_read(
    rx: &mut mpsc::UnboundedReceiver<(usize, Read)>,
    round: usize,
) -> Result<Read, BenchError> {
    match rx.recv().await {
        None => Err(BenchError::Other("every client stopped".into())),
        Some((r, _)) if r != round => Err(BenchError::Other(format!(
            "a client reported round {r} during round {round}"
        ))),
        Some((_, read)) => Ok(read),
    }
}

/// One client: reads the stream and reports when each round's server first appears in it,
/// and when it settles.
///
/// A plain HTTP/1.1 request over its own TCP connection, read as bytes: a thousand of these
/// share two cores with the server they measure, so each costs as little as a client can (a
/// full HTTP client per stream spent about as much per event as the server did).
async fn follow(
    addr: String,
    token: String,
    rounds: usize,
    report: mpsc::UnboundedSender<(usize, Read)>,
    connected: mpsc::UnboundedSender<()>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut conn) = tokio::net::TcpStream::connect(&addr).await else {
        return;
    };
    let request = format!(
        "GET /api/v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Accept: text/event-stream\r\n\r\n"
    );
    if conn.write_all(request.as_bytes()).await.is_err() {
        return;
    }
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    // The answer's head: it must be a 200.
    let head_end = loop {
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if let Some(at) = find(&buf, b"\r\n\r\n") {
            break at + 4;
        }
    };
    if !buf.starts_with(b"HTTP/1.1 200") {
        return;
    }
    buf.drain(..head_end);
    let _ = connected.send(());
    // For each round in turn: the server's name in quotes (so round 1 is not found in round
    // 10's event), then the state that settles it. One server is in flight at a time, so the
    // next settled state after a round's name is that server's.
    // The searchers are built once: building one per read cost this client more than the
    // search.
    use memchr::memmem::Finder;
    let settled = [
        Finder::new(b"\"provisioning_state\":\"provisioned\""),
        Finder::new(b"\"provisioning_state\":\"failed\""),
    ];
    let name =
        |round: usize| Finder::new(format!("\"{}\"", round_name(round)).as_bytes()).into_owned();
    let longest = settled.iter().map(|s| s.needle().len()).max().unwrap_or(0);
    let mut round = 0;
    let mut wanted = name(round);
    let mut named = false;
    while round < rounds {
        loop {
            let found = if named {
                settled
                    .iter()
                    .filter_map(|s| s.find(&buf).map(|at| at + s.needle().len()))
                    .min()
            } else {
                wanted.find(&buf).map(|at| at + wanted.needle().len())
            };
            let Some(end) = found else {
                break;
            };
            let read = if named {
                Read::Settled
            } else {
                Read::First(Instant::now())
            };
            if report.send((round, read)).is_err() {
                return;
            }
            buf.drain(..end);
            if named {
                round += 1;
                wanted = name(round);
            }
            named = !named;
        }
        // Keep only a tail that may hold the start of the next thing looked for.
        let keep = longest.max(wanted.needle().len());
        if buf.len() > keep {
            buf.drain(..buf.len() - keep);
        }
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// The value at rank `q` of sorted `xs` (nearest rank).
fn percentile(xs: &[f64], q: f64) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let rank = (q * xs.len() as f64).ceil() as usize;
    xs[rank.clamp(1, xs.len()) - 1]
}

/// A thousand clients and the server's thousand sockets need more files than a default soft
/// limit of 1,024 allows: raise it to the hard limit (the server, started after, inherits it).
fn raise_open_files_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit with a valid pointer to a local rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&xs, 0.50), 50.0);
        assert_eq!(percentile(&xs, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
