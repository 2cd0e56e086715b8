//! A timeline of a scenario, for finding where its time goes: every [`EVERY`], the provider
//! calls made so far by method, the 429s, how many resources have settled, and how busy this
//! process was since the last sample. On with `--timeline`; it costs a little CPU.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use stackdock_sandbox::DigitalOceanSandbox;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::BenchError;
use crate::report::Measured;

const EVERY: Duration = Duration::from_millis(250);

/// Samples until `stop` turns true; the samples as rows of a JSON table.
pub(crate) async fn sample(
    sandbox: &DigitalOceanSandbox,
    settled: Arc<AtomicUsize>,
    mut stop: watch::Receiver<bool>,
) -> Value {
    let start = Instant::now();
    let ticks = clock_ticks();
    let mut rows = Vec::new();
    let mut last_cpu = cpu_ticks();
    let mut last_at = start;
    loop {
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => {}
        }
        let now = Instant::now();
        let cpu = cpu_ticks();
        let busy = match (cpu, last_cpu) {
            (Some(c), Some(l)) => {
                let wall = (now - last_at).as_secs_f64();
                Some(100.0 * (c - l) as f64 / ticks / wall)
            }
            _ => None,
        };
        last_cpu = cpu;
        last_at = now;
        let c = sandbox.request_counts();
        rows.push(json!([
            (now - start).as_millis() as u64,
            c.method("POST"),
            c.method("GET"),
            c.method("DELETE"),
            c.rate_limited,
            settled.load(Ordering::Relaxed),
            busy.map(|b| (b * 10.0).round() / 10.0),
        ]));
        if *stop.borrow() {
            break;
        }
    }
    json!({
        "columns": ["ms", "POST", "GET", "DELETE", "429", "settled", "cpu_percent"],
        "rows": rows,
    })
}

/// User plus system time of this process so far, in clock ticks.
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// Runs `measure`, sampling alongside it when `on`, and adds the timeline to its figures.
pub(crate) async fn alongside(
    sandbox: &DigitalOceanSandbox,
    settled: Arc<AtomicUsize>,
    on: bool,
    measure: impl Future<Output = Result<Measured, BenchError>>,
) -> Result<Measured, BenchError> {
    if !on {
        return measure.await;
    }
    let (stop, stop_rx) = watch::channel(false);
    let measuring = async {
        let result = measure.await;
        let _ = stop.send(true);
        result
    };
    let (result, samples) = tokio::join!(measuring, sample(sandbox, settled, stop_rx));
    result.map(|mut m| {
        m.figures["timeline"] = samples;
        m
    })
}
