//! What every simulator lets a test or benchmark do beyond the provider's own API: queue
//! faults, read the request log and counts, turn chaos and rate limits on and off, and stop.
//! The same for every provider, so written once: a simulator with a `server` and a `door`
//! field gets these methods from [`sandbox_controls!`].

/// Adds the controls to a simulator struct with fields `server: ServerHandle` and
/// `door: Arc<FrontDoor<_>>`.
macro_rules! sandbox_controls {
    ($sandbox:ty) => {
        impl $sandbox {
            /// `http://127.0.0.1:PORT`, no trailing slash.
            pub fn base_url(&self) -> String {
                self.server.base_url()
            }

            /// Queues a fault; faults are matched in the order they were queued.
            pub fn inject(&self, fault: $crate::Fault) {
                self.door.inject(fault);
            }

            /// Every request received while the request log was on, in arrival order.
            pub fn requests(&self) -> Vec<$crate::RecordedRequest> {
                self.door.requests()
            }

            /// Totals by method and status and the number of 429s, since the start;
            /// counted whether or not the request log is on.
            pub fn request_counts(&self) -> $crate::RequestCounts {
                self.door.request_counts()
            }

            /// Turns the request log on or off; what it already holds is kept.
            pub fn set_request_log(&self, on: bool) {
                self.door.set_request_log(on);
            }

            /// Replaces the chaos profile (`None` stops it); the dice are reseeded from
            /// the new profile's seed.
            pub fn set_chaos(&self, chaos: Option<$crate::Chaos>) {
                self.door.set_chaos(chaos);
            }

            /// How many times chaos struck so far, by kind.
            pub fn chaos_counts(&self) -> $crate::ChaosCounts {
                self.door.chaos_counts()
            }

            /// Switches to a sliding window with this many requests per token, or lifts
            /// every limit with `None`.
            pub fn set_rate_limit(&self, limit: Option<u32>) {
                self.door.set_rate_limit(limit);
            }

            /// Switches to a token bucket per token, or lifts every limit with `None`.
            pub fn set_bucket(&self, bucket: Option<$crate::BucketLimit>) {
                self.door.set_bucket(bucket);
            }

            /// Stops accepting, lets in-flight requests finish (for a few seconds at
            /// most), then returns. Dropping the sandbox instead aborts the server at once.
            pub async fn shutdown(self) {
                self.server.shutdown().await;
            }
        }
    };
}

pub(crate) use sandbox_controls;
