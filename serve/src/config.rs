//! How the service is set up: where it listens, how much one request may ask, and how requests
//! are queued and batched for the model. Checked once, before anything binds.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The service's settings. Build with `ServeConfig { addr, ..ServeConfig::default() }`.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Where to listen; a loopback address unless `allow_non_loopback`.
    pub addr: SocketAddr,
    /// Most candidates in one `/v1/rank` request (more is a 422).
    pub max_candidates: usize,
    /// Largest request body in bytes (more is a 413).
    pub max_body_bytes: usize,
    /// Requests waiting for the model; one more is answered 503 at once.
    pub queue_capacity: usize,
    /// Most pairs the model is given in one call.
    pub max_batch_pairs: usize,
    /// How long the model thread waits for other clients' requests to fill a batch (it waits
    /// only while other requests are being read).
    pub batch_wait: Duration,
    /// Where to append one JSON line per scored pair (`docs/serving.md`).
    pub request_log: Option<PathBuf>,
    /// Listen on an address other hosts can reach.
    pub allow_non_loopback: bool,
    /// Async worker threads of the runtime [`crate::run`] builds; the model has its own thread.
    pub workers: usize,
    /// How long shutdown waits for requests in flight before giving up on them.
    pub shutdown_timeout: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_candidates: 1000,
            max_body_bytes: 4 * 1024 * 1024,
            queue_capacity: 64,
            max_batch_pairs: 256,
            batch_wait: Duration::from_millis(1),
            request_log: None,
            allow_non_loopback: false,
            workers: 2,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

impl ServeConfig {
    /// Every problem with the settings, one per line, or nothing.
    pub fn check(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if !self.allow_non_loopback && !is_loopback(self.addr.ip()) {
            problems.push(format!(
                "refusing to listen on `{}`: not a loopback address (other hosts could reach it); \
                 allow non-loopback addresses explicitly to serve them",
                self.addr
            ));
        }
        for (name, value) in [
            ("max_candidates", self.max_candidates),
            ("max_body_bytes", self.max_body_bytes),
            ("queue_capacity", self.queue_capacity),
            ("max_batch_pairs", self.max_batch_pairs),
            ("workers", self.workers),
        ] {
            if value == 0 {
                problems.push(format!("`{name}` must be at least 1"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

/// Loopback, counting IPv4 loopback written as an IPv6-mapped address (`::ffff:127.0.0.1`).
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_are_accepted_and_others_refused() {
        for addr in [
            "127.0.0.1:0",
            "127.8.9.10:80",
            "[::1]:0",
            "[::ffff:127.0.0.1]:0",
        ] {
            let config = ServeConfig {
                addr: addr.parse().unwrap(),
                ..ServeConfig::default()
            };
            assert_eq!(config.check(), Ok(()), "{addr}");
        }
        for addr in ["0.0.0.0:8080", "[::]:8080", "192.168.1.4:80"] {
            let config = ServeConfig {
                addr: addr.parse().unwrap(),
                ..ServeConfig::default()
            };
            let error = config.check().unwrap_err();
            assert!(error.contains(&format!("`{addr}`")), "{error}");
            let allowed = ServeConfig {
                allow_non_loopback: true,
                ..config
            };
            assert_eq!(allowed.check(), Ok(()));
        }
    }

    #[test]
    fn zero_limits_are_named() {
        let config = ServeConfig {
            queue_capacity: 0,
            max_batch_pairs: 0,
            ..ServeConfig::default()
        };
        assert_eq!(
            config.check(),
            Err("`queue_capacity` must be at least 1\n`max_batch_pairs` must be at least 1".into())
        );
    }
}
