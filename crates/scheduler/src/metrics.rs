//! The scheduler's Prometheus metrics, in the OpenMetrics text format (`picket scheduler`
//! serves them at `/metrics`).

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The content type of [`SchedulerMetrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndLabels {
    /// How the attempt ended for the scheduler: `exited`, `timed_out`, `lease_lost`,
    /// `stopped`, `lost`, `launch_failed`.
    outcome: &'static str,
}

/// What the dispatch loop and the reaper count.
#[derive(Debug)]
pub struct SchedulerMetrics {
    registry: Registry,
    launched: Counter,
    ended: Family<EndLabels, Counter>,
    running: Gauge,
    launch_seconds: Histogram,
    reaped: Counter,
}

impl Default for SchedulerMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("picket_scheduler");
        let launched = Counter::default();
        let ended = Family::<EndLabels, Counter>::default();
        let running = Gauge::default();
        // 1 ms to ~16 s, doubling.
        let launch_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        let reaped = Counter::default();
        registry.register(
            "environments_launched",
            "Scan environments started",
            launched.clone(),
        );
        registry.register(
            "attempts_ended",
            "Scan attempts this scheduler ended, by outcome",
            ended.clone(),
        );
        registry.register(
            "environments_running",
            "Scan environments running now",
            running.clone(),
        );
        registry.register(
            "launch_seconds",
            "From claim to the worker started",
            launch_seconds.clone(),
        );
        registry.register(
            "environments_reaped",
            "Leftover environments the reaper deleted",
            reaped.clone(),
        );
        SchedulerMetrics {
            registry,
            launched,
            ended,
            running,
            launch_seconds,
            reaped,
        }
    }
}

impl SchedulerMetrics {
    pub(crate) fn launched(&self, seconds: f64) {
        self.launched.inc();
        self.running.inc();
        self.launch_seconds.observe(seconds);
    }

    pub(crate) fn torn_down(&self) {
        self.running.dec();
    }

    pub(crate) fn ended(&self, outcome: &'static str) {
        self.ended.get_or_create(&EndLabels { outcome }).inc();
    }

    pub(crate) fn reaped(&self, n: usize) {
        self.reaped.inc_by(n as u64);
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_up_in_the_text_format() {
        let m = SchedulerMetrics::default();
        m.launched(0.02);
        m.ended("timed_out");
        m.reaped(3);
        let text = m.encode();
        assert!(
            text.contains("picket_scheduler_environments_launched_total 1"),
            "{text}"
        );
        assert!(
            text.contains("picket_scheduler_environments_running 1"),
            "{text}"
        );
        assert!(
            text.contains("picket_scheduler_attempts_ended_total{outcome=\"timed_out\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("picket_scheduler_environments_reaped_total 3"),
            "{text}"
        );
        m.torn_down();
        assert!(m
            .encode()
            .contains("picket_scheduler_environments_running 0"));
    }
}
