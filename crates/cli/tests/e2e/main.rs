//! End-to-end tests: the real `stackdock` binary, serving on loopback with its own SQLite
//! database, against the DigitalOcean sandbox (a real HTTP server in the test process, so
//! tests can inject faults and read its inventory).
//!
//! Every test ends with [`support::TestApp::finish`], which searches everything the test
//! saw and everything the server wrote — database files, logs, every API response and CLI
//! output — for the dock's plaintext API key, byte by byte.

mod bad_input;
mod chaos;
mod cli;
mod contract;
mod crash;
mod events;
mod provisioning;
mod support;
mod sync;
mod turso;
mod up;
mod vultr;
