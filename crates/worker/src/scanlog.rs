//! The scan's log as its Logs tab shows it: a `tracing` layer that copies the worker's own
//! events (Picket's targets, `info` and up, whatever the terminal's filter) into a channel, and
//! a shipper that sends them to the control plane in batches (`POST /api/v1/worker/scan/logs`)
//! while the scan runs. A full channel drops lines (counted) rather than slow the scan; a failed
//! send is not retried (the log is a convenience, the trail and the results are the record).

use crate::client::ApiClient;
use picket_core::protocol::{LogBatch, LogLevel, LogLine, MAX_LOG_BATCH, MAX_LOG_LINE_CHARS};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// Lines waiting to be sent at most; more are dropped.
const QUEUE: usize = 10_000;
/// How often the shipper sends what it has.
const EVERY: Duration = Duration::from_secs(1);

/// The layer: install it in the worker process's subscriber.
#[derive(Debug, Clone)]
pub struct ScanLogLayer {
    tx: mpsc::Sender<LogLine>,
    dropped: Arc<AtomicU64>,
}

/// The other end: hand it to [`crate::run::run`].
#[derive(Debug)]
pub struct ScanLog {
    rx: mpsc::Receiver<LogLine>,
    dropped: Arc<AtomicU64>,
}

/// A connected layer and log.
pub fn channel() -> (ScanLogLayer, ScanLog) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    (
        ScanLogLayer {
            tx,
            dropped: Arc::clone(&dropped),
        },
        ScanLog { rx, dropped },
    )
}

/// The message and the fields of an event, as one line.
#[derive(Default)]
struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let fields = std::mem::take(&mut self.0);
            let _ = write!(self.0, "{value:?}");
            self.0.push_str(&fields);
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            let fields = std::mem::take(&mut self.0);
            self.0.push_str(value);
            self.0.push_str(&fields);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for ScanLogLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() > Level::INFO || !meta.target().starts_with("picket") {
            return;
        }
        let level = match *meta.level() {
            Level::ERROR => LogLevel::Error,
            Level::WARN => LogLevel::Warn,
            _ => LogLevel::Info,
        };
        let mut line = Line::default();
        event.record(&mut line);
        let mut message: String = line.0.trim().chars().take(MAX_LOG_LINE_CHARS).collect();
        message.retain(|c| c != '\0');
        if message.is_empty() {
            return;
        }
        let sent = self.tx.try_send(LogLine {
            at: time::OffsetDateTime::now_utc(),
            level,
            message,
        });
        if sent.is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The running shipper of one attempt; [`Shipper::finish`] sends what is left.
#[derive(Debug)]
pub struct Shipper {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl ScanLog {
    /// Starts sending this attempt's lines through `client`.
    pub fn ship(self, client: ApiClient, attempt: i32) -> Shipper {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let ScanLog { mut rx, dropped } = self;
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(EVERY);
            loop {
                let last = tokio::select! {
                    _ = tick.tick() => false,
                    _ = &mut stopped => true,
                };
                let mut lines = Vec::new();
                while let Ok(l) = rx.try_recv() {
                    lines.push(l);
                }
                for chunk in lines.chunks(MAX_LOG_BATCH) {
                    let batch = LogBatch {
                        attempt,
                        lines: chunk.to_vec(),
                    };
                    if client.logs(&batch).await.is_err() {
                        // The scan may have ended or lost its lease: the log is not worth more.
                        dropped.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    }
                }
                if last {
                    return;
                }
            }
        });
        Shipper { stop, task }
    }
}

impl Shipper {
    /// Sends the lines still queued, waiting at most 5 s.
    pub async fn finish(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn picket_events_at_info_and_up_become_lines_with_their_fields() {
        let (layer, mut log) = channel();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "picket_worker::clone", objects = 8, "fetched");
            tracing::debug!(target: "picket_worker::clone", "too chatty");
            tracing::warn!(target: "hyper", "not ours");
            tracing::error!(target: "picket_engine", path = "a b.py", "cannot parse");
        });
        let a = log.rx.try_recv().unwrap();
        assert_eq!(
            (a.level, a.message.as_str()),
            (LogLevel::Info, "fetched objects=8")
        );
        let b = log.rx.try_recv().unwrap();
        assert_eq!(
            (b.level, b.message.as_str()),
            (LogLevel::Error, "cannot parse path=a b.py")
        );
        assert!(log.rx.try_recv().is_err());
    }
}
