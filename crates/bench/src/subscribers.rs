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
    let measured = follow_rounds(
        o,
        &up.base_url,
        &up.token,
        &Posts {
            http: &http,
            writer: &up,
        },
    )
    .await;
    up.stop().await?;
    let (mut figures, p99) = measured?;
    // The same clients and rounds against a fan-out with nothing but tokio, once the server
    // has stopped: what this machine allows, for the figure above to be read against.
    let bare = Bare::start()?;
    let floor = follow_rounds(o, &bare.base_url, "-", &bare).await;
    bare.stop();
    let (floor, _) = floor?;
    figures["bare_fan_out"] = json!({
        "p50_ms": floor["p50_ms"],
        "p99_ms": floor["p99_ms"],
        "max_ms": floor["max_ms"],
    });
    figures["notes"]
        .as_array_mut()
        .expect("notes are a list")
        .push(json!(format!(
            "the same clients and rounds served by a bare fan-out in the benchmark's process \
             (tokio only: no HTTP framework, no store, one broadcast channel, the same bytes \
             an event takes): p50 {:.1} ms, p99 {:.1} ms; this machine's floor for {} \
             deliveries of one event",
            floor["p50_ms"].as_f64().unwrap_or(0.0),
            floor["p99_ms"].as_f64().unwrap_or(0.0),
            o.sizes.subscribers
        )));
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
    let measured = follow_rounds(
        o,
        &a.base_url,
        &a.token,
        &Posts {
            http: &http,
            writer: &b,
        },
    )
    .await;
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

/// What makes each round's change.
trait Changes {
    /// Makes round `round`'s change, a new server named `round_name(round)`; answers once
    /// it has been asked for.
    async fn make(&self, round: usize) -> Result<(), BenchError>;
    /// Once every client has the round's first event: settles the server, where nothing
    /// else will.
    fn settle(&self, round: usize);
}

/// Changes asked of a `stackdock` node: `POST /api/v1/servers`, settled by its workers.
struct Posts<'a> {
    http: &'a reqwest::Client,
    writer: &'a Up,
}

impl Changes for Posts<'_> {
    async fn make(&self, round: usize) -> Result<(), BenchError> {
        let answer = self
            .http
            .post(format!("{}/api/v1/servers", self.writer.base_url))
            .bearer_auth(&self.writer.token)
            .json(&json!({
                "dock": DOCK,
                "name": round_name(round),
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
        Ok(())
    }

    fn settle(&self, _round: usize) {}
}

/// The rounds of e: `n` clients follow the event stream at `base_url`, and `changes` makes
/// each round's change. Answers the figures and the p99 in milliseconds.
async fn follow_rounds(
    o: &Options,
    base_url: &str,
    token: &str,
    changes: &impl Changes,
) -> Result<(Value, f64), BenchError> {
    let n = o.sizes.subscribers;
    let rounds = o.sizes.rounds;

    // Every client reports, for each round in turn, when it read that round's first event
    // and when it read the one that settled it.
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Read)>();
    let (connected_tx, mut connected_rx) = mpsc::unbounded_channel::<()>();
    let mut clients = Vec::with_capacity(n);
    let addr = base_url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    for _ in 0..n {
        clients.push(tokio::spawn(follow(
            addr.clone(),
            token.to_string(),
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
        let sent = Instant::now();
        changes.make(round).await?;
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
        changes.settle(round);
        // The next round starts once every client has read the event that settled this
        // round's server, so no round's deliveries queue behind the last one's.
        let settle = async {
            while settled < n {
                if let Read::Settled = next_read(&mut rx, round).await? {
                    settled += 1;
                }
            }
            Ok::<_, BenchError>(())
        };
        let all_settled = tokio::time::timeout(ROUND_DEADLINE, settle).await;
        all_settled.map_err(|_| {
            deadline(&format!(
                "round {round}: {settled} of {n} clients saw its server settle"
            ))
        })??;
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

/// A fan-out with nothing but tokio, for the floor beside e: it answers any request on a
/// connection with a `200` head and then writes every frame sent to it, from one broadcast
/// channel, one task a connection, on a runtime of its own with two workers (as the server's).
struct Bare {
    base_url: String,
    frames: tokio::sync::broadcast::Sender<bytes::Bytes>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Bare {
    fn start() -> Result<Self, BenchError> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(BenchError::io("binding the bare fan-out"))?;
        listener
            .set_nonblocking(true)
            .map_err(BenchError::io("binding the bare fan-out"))?;
        let addr = listener
            .local_addr()
            .map_err(BenchError::io("binding the bare fan-out"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(BenchError::io("starting the bare fan-out's runtime"))?;
        let (frames, _) = tokio::sync::broadcast::channel(16);
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let sender = frames.clone();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                tokio::select! {
                    _ = stopped => {}
                    _ = accept(listener, sender) => {}
                }
            });
        });
        Ok(Self {
            base_url: format!("http://{addr}"),
            frames,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// One event as the server frames it, about as long as a new server's.
    fn send(&self, round: usize, state: &str) {
        let data = json!({
            "seq": round,
            "resource": {
                "name": round_name(round),
                "provisioning_state": state,
                "full_api_data": "x".repeat(520),
            },
        });
        let frame = format!("event: resource\nid: {round}\ndata: {data}\n\n");
        let _ = self.frames.send(frame.into());
    }
}

impl Changes for Bare {
    async fn make(&self, round: usize) -> Result<(), BenchError> {
        self.send(round, "provisioning");
        Ok(())
    }

    fn settle(&self, round: usize) {
        self.send(round, "provisioned");
    }
}

async fn accept(
    listener: tokio::net::TcpListener,
    frames: tokio::sync::broadcast::Sender<bytes::Bytes>,
) {
    while let Ok((conn, _)) = listener.accept().await {
        let _ = conn.set_nodelay(true);
        tokio::spawn(serve(conn, frames.subscribe()));
    }
}

async fn serve(
    mut conn: tokio::net::TcpStream,
    mut frames: tokio::sync::broadcast::Receiver<bytes::Bytes>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while find(&head, b"\r\n\r\n").is_none() {
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    let answer = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n";
    if conn.write_all(answer).await.is_err() {
        return;
    }
    while let Ok(frame) = frames.recv().await {
        if conn.write_all(&frame).await.is_err() {
            return;
        }
    }
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
