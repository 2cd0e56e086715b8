//! End-to-end tests: the real `stackdock` binary, serving on loopback with its own SQLite
//! database, against the DigitalOcean sandbox (a real HTTP server in the test process, so
//! tests can inject faults and read its inventory).
//!
//! Every test ends with [`support::TestApp::finish`], which searches everything the test
//! saw and everything the server wrote — database files, logs, every API response and CLI
//! output — for the dock's plaintext API key and the secret inside every server's
//! cloud-init `user_data`, byte by byte and in their encoded forms.

mod access;
mod audit;
mod bad_input;
mod browser;
mod chaos;
mod cli;
mod cloudflare;
mod contract;
mod crash;
mod docker;
mod domains_databases;
mod events;
mod keys;
mod nodes;
mod openapi;
mod paging;
mod provisioning;
mod sealed;
mod sessions;
mod support;
mod sync;
mod turso;
mod up;
mod vultr;
mod web_services;
mod web_ui;
