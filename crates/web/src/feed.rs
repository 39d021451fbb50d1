//! What live pages wait on: one listener per process on
//! [`picket_db::overview::SCAN_CHANGED_CHANNEL`], fanned out to every open event stream. A tick
//! names the org whose scans changed, or, when no notification came for the fallback interval,
//! everyone (a notification can be lost: see `WebConfig::live_fallback`).

use picket_core::OrgId;
use picket_db::overview::SCAN_CHANGED_CHANNEL;
use picket_db::queue::Waker;
use picket_db::Db;
use std::time::Duration;
use tokio::sync::broadcast;

/// Something a live page may want to re-read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// A scan of this org was queued or moved.
    Org(OrgId),
    /// Re-read whatever you show.
    Everyone,
}

impl Tick {
    /// Whether a page of `org` should re-read.
    pub fn concerns(self, org: OrgId) -> bool {
        match self {
            Tick::Org(o) => o == org,
            Tick::Everyone => true,
        }
    }
}

/// The fan-out of ticks. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Feed {
    ticks: broadcast::Sender<Tick>,
}

impl Feed {
    /// Starts the listener task (it ends with the runtime).
    pub fn start(db: Db, fallback: Duration) -> Feed {
        let (ticks, _) = broadcast::channel(256);
        let sender = ticks.clone();
        tokio::spawn(async move {
            static CHANNELS: [&str; 1] = [SCAN_CHANGED_CHANNEL];
            let mut waker = Waker::on(db.pool(), &CHANNELS).await;
            loop {
                let payloads = waker.wait_payloads(fallback).await;
                if payloads.is_empty() {
                    let _ = sender.send(Tick::Everyone);
                    continue;
                }
                let mut orgs: Vec<OrgId> = payloads.iter().filter_map(|p| p.parse().ok()).collect();
                orgs.sort_unstable_by_key(|o| o.0);
                orgs.dedup();
                for org in orgs {
                    let _ = sender.send(Tick::Org(org));
                }
            }
        });
        Feed { ticks }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Tick> {
        self.ticks.subscribe()
    }
}
