//! Prometheus metrics, in the OpenMetrics text format at `/metrics`.
//!
//! [`track`] wraps every route: it counts requests by method, matched route template (never the
//! raw path, which would make one series per object id) and status, and observes their duration.
//! The queue depth `picket_scans{state,kind}` is not kept in memory: each scrape runs one
//! `GROUP BY` over the unfinished scans and encodes the result from a registry built for that
//! scrape, so the gauge is exactly the database's state at scrape time, whichever process
//! changed it.

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use picket_core::{ScanKind, ScanState};
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Instant;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    method: &'static str,
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ScanLabels {
    state: &'static str,
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    provider: &'static str,
    outcome: &'static str,
}

type HistogramFamily = Family<DurationLabels, Histogram, fn() -> Histogram>;

/// The process's HTTP metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: HistogramFamily,
    webhook_deliveries: Family<WebhookLabels, Counter>,
}

impl Metrics {
    /// Counts one webhook delivery by provider and outcome (`picket_webhook_deliveries_total`).
    /// Outcomes are Picket's own codes, a fixed set, so no client can create series.
    pub fn webhook_delivery(&self, provider: &'static str, outcome: &'static str) {
        self.webhook_deliveries
            .get_or_create(&WebhookLabels { provider, outcome })
            .inc();
    }
}

fn duration_histogram() -> Histogram {
    // 5 ms to ~20 s, doubling.
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("picket");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, matched route and status",
            requests.clone(),
        );
        let durations: HistogramFamily = Family::new_with_constructor(duration_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to produce a response, by method and matched route",
            durations.clone(),
        );
        let webhook_deliveries = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries by provider and outcome (refused signatures included)",
            webhook_deliveries.clone(),
        );
        Metrics {
            registry,
            requests,
            durations,
            webhook_deliveries,
        }
    }
}

/// Method label values are a fixed set, so a client sending odd methods cannot create series.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware recording every request.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let method = method_label(req.method());
    // Requests that matched no route share one label value.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(req).await;
    metrics
        .durations
        .get_or_create(&DurationLabels {
            method,
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// The states counted by the queue-depth gauge: every unfinished one.
const QUEUE_STATES: [ScanState; 4] = [
    ScanState::Queued,
    ScanState::Claimed,
    ScanState::Running,
    ScanState::Reporting,
];

/// `GET /metrics`.
pub async fn scrape(State(state): State<AppState>) -> Response {
    let scans = Family::<ScanLabels, Gauge>::default();
    let mut scrape_registry = Registry::with_prefix("picket");
    match picket_db::scans::count_by_state(state.db().pool(), &QUEUE_STATES).await {
        Ok(counts) => {
            // Every combination is written, zeros included, so an emptied queue reads 0 rather
            // than vanishing from the graph.
            for s in QUEUE_STATES {
                for k in ScanKind::ALL {
                    let n = counts
                        .iter()
                        .find(|(cs, ck, _)| *cs == s && *ck == k)
                        .map_or(0, |(_, _, n)| *n);
                    scans
                        .get_or_create(&ScanLabels {
                            state: s.as_str(),
                            kind: k.as_str(),
                        })
                        .set(n);
                }
            }
            scrape_registry.register(
                "scans",
                "Unfinished scans by state and kind, read from the database at scrape time",
                scans,
            );
        }
        // The HTTP metrics are still worth serving while the database is down.
        Err(e) => tracing::warn!(error = %e, "queue depth unavailable for this scrape"),
    }
    let mut body = String::new();
    let encoded = encode_registry(&mut body, &state.metrics().registry)
        .and_then(|()| encode_registry(&mut body, &scrape_registry))
        .and_then(|()| encode_eof(&mut body));
    match encoded {
        Ok(()) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
            body,
        )
            .into_response(),
        Err(e) => crate::error::ApiError::internal(&e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_methods_share_a_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }

    #[test]
    fn registry_encodes_with_prefix() {
        let m = Metrics::default();
        m.requests
            .get_or_create(&RequestLabels {
                method: "GET",
                route: "/api/v1/org".into(),
                status: 200,
            })
            .inc();
        let mut out = String::new();
        encode_registry(&mut out, &m.registry).unwrap();
        assert!(
            out.contains(
                r#"picket_http_requests_total{method="GET",route="/api/v1/org",status="200"} 1"#
            ),
            "{out}"
        );
    }
}
