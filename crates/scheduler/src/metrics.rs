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

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    /// A provider error's stable code (`provider_forbidden`, `provider_rate_limited`, ...).
    code: &'static str,
}

/// What the dispatch loop, the reaper and the reconcile sweep count.
#[derive(Debug)]
pub struct SchedulerMetrics {
    registry: Registry,
    launched: Counter,
    ended: Family<EndLabels, Counter>,
    running: Gauge,
    launch_seconds: Histogram,
    reaped: Counter,
    sweeps: Counter,
    sweep_api_calls: Counter,
    last_sweep_api_calls: Gauge,
    sweep_scans_queued: Counter,
    sweep_budgets_exhausted: Counter,
    sweep_errors: Family<CodeLabels, Counter>,
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
        let sweeps = Counter::default();
        let sweep_api_calls = Counter::default();
        let last_sweep_api_calls = Gauge::default();
        let sweep_scans_queued = Counter::default();
        let sweep_budgets_exhausted = Counter::default();
        let sweep_errors = Family::<CodeLabels, Counter>::default();
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
        registry.register(
            "reconcile_sweeps",
            "Reconcile sweeps finished",
            sweeps.clone(),
        );
        registry.register(
            "reconcile_api_calls",
            "Provider API calls the reconcile sweeps made",
            sweep_api_calls.clone(),
        );
        registry.register(
            "reconcile_last_sweep_api_calls",
            "Provider API calls the last reconcile sweep made",
            last_sweep_api_calls.clone(),
        );
        registry.register(
            "reconcile_scans_queued",
            "Pull request heads the reconcile sweeps found unscanned and queued",
            sweep_scans_queued.clone(),
        );
        registry.register(
            "reconcile_budgets_exhausted",
            "Installations whose API budget ran out within a reconcile sweep",
            sweep_budgets_exhausted.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Provider errors that ended an installation's part of a reconcile sweep, by code",
            sweep_errors.clone(),
        );
        SchedulerMetrics {
            registry,
            launched,
            ended,
            running,
            launch_seconds,
            reaped,
            sweeps,
            sweep_api_calls,
            last_sweep_api_calls,
            sweep_scans_queued,
            sweep_budgets_exhausted,
            sweep_errors,
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

    /// Counts one finished reconcile sweep.
    pub fn swept(&self, report: &crate::reconcile::SweepReport) {
        self.sweeps.inc();
        self.sweep_api_calls.inc_by(report.api_calls);
        self.last_sweep_api_calls
            .set(i64::try_from(report.api_calls).unwrap_or(i64::MAX));
        self.sweep_scans_queued.inc_by(report.scans_queued as u64);
        self.sweep_budgets_exhausted
            .inc_by(report.budgets_exhausted as u64);
        for (code, n) in &report.errors {
            self.sweep_errors
                .get_or_create(&CodeLabels { code })
                .inc_by(*n);
        }
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

    #[test]
    fn a_sweep_shows_up_in_the_text_format() {
        let m = SchedulerMetrics::default();
        let report = crate::reconcile::SweepReport {
            api_calls: 7,
            scans_queued: 2,
            budgets_exhausted: 1,
            errors: [("provider_forbidden", 1)].into(),
            ..Default::default()
        };
        m.swept(&report);
        m.swept(&crate::reconcile::SweepReport {
            api_calls: 3,
            ..Default::default()
        });
        let text = m.encode();
        for line in [
            "picket_scheduler_reconcile_sweeps_total 2",
            "picket_scheduler_reconcile_api_calls_total 10",
            "picket_scheduler_reconcile_last_sweep_api_calls 3",
            "picket_scheduler_reconcile_scans_queued_total 2",
            "picket_scheduler_reconcile_budgets_exhausted_total 1",
            "picket_scheduler_reconcile_errors_total{code=\"provider_forbidden\"} 1",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
