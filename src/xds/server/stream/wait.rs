//! What a stream waits for between events: a request, or (one future, [`Wait`]) the server
//! stopping, the stream's age, a new snapshot of its node, a change among its Envoy's other
//! streams, the hold on them running out.
//!
//! The future owns clones of the stream's receivers, made from the stream's own (which remember
//! what it has seen), so it can live across polls of the body, keep its place in the channels'
//! wait lists (a dropped `changed()` would lose its wake-up), and be made anew after each event
//! without missing a change.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::watch;
use tokio::time::Instant;
use tonic::Status;
use tracing::debug;

use super::{Event, Stream, PEER_HOLD_MAX};
use crate::xds::cache::SnapshotRx;
use crate::xds::metrics::StreamRefusal;
use crate::xds::server::{stopped, Protocol};

/// The wait of a stream whose requests are `R`: it ends in an event other than a request.
pub(super) type Wait<R> = Pin<Box<dyn Future<Output = Event<R>> + Send>>;

/// Sleeps until `t`, or forever. The timer is boxed: most streams have neither an age nor a hold,
/// and an inline timer would make every waiting stream's future larger by its size.
async fn until(t: Option<Instant>) {
    match t {
        Some(t) => Box::pin(tokio::time::sleep_until(t)).await,
        None => std::future::pending().await,
    }
}

impl<P: Protocol> Stream<P> {
    /// The next event, if one is ready; the body's task is woken when one comes.
    pub(super) fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Event<P::Req>> {
        let wait = match self.wait.take() {
            Some(w) => w,
            None => self.waits(),
        };
        let wait = self.wait.insert(wait);
        if let Poll::Ready(event) = wait.as_mut().poll(cx) {
            return Poll::Ready(event);
        }
        if let Some(t) = self.first_request.as_mut() {
            if t.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Refuse(
                    Status::deadline_exceeded("no request within the handshake timeout"),
                    Some(StreamRefusal::NoFirstRequest),
                ));
            }
        }
        self.inbound.poll_message(cx).map(|msg| match msg {
            Ok(Some(req)) => Event::Request(Box::new(req)),
            Ok(None) => Event::End,
            Err(e) => {
                debug!(error = %e, "stream error");
                match crate::xds::limits::refusal_of(e) {
                    Some((status, why)) => Event::Refuse(status, why),
                    None => Event::End,
                }
            }
        })
    }

    /// The wait for everything but requests, as the stream stands now.
    fn waits(&self) -> Wait<P::Req> {
        Box::pin(wait(
            self.shutdown.clone(),
            self.snapshots.as_ref().map(|s| (**s).clone()),
            self.peer_changes.clone(),
            self.held_since.map(|t| t + PEER_HOLD_MAX),
            self.end_of_life,
        ))
    }
}

/// Whichever comes first: shutdown, the stream's age, a change of its peers or the end of their
/// hold on it, a new snapshot of its node.
async fn wait<R>(
    mut shutdown: watch::Receiver<bool>,
    mut snapshots: Option<SnapshotRx>,
    mut peers: Option<watch::Receiver<u64>>,
    hold: Option<Instant>,
    aged: Option<Instant>,
) -> Event<R> {
    tokio::select! {
        _ = stopped(&mut shutdown) => Event::End,
        _ = until(aged) => Event::Aged,
        _ = async {
            match peers.as_mut() {
                Some(rx) => { let _ = rx.changed().await; }
                None => std::future::pending().await,
            }
        } => Event::Snapshot,
        _ = until(hold) => Event::Snapshot,
        changed = async {
            match snapshots.as_mut() {
                Some(rx) => rx.changed().await,
                None => std::future::pending().await,
            }
        } => match changed {
            Ok(()) => Event::Snapshot,
            Err(_) => Event::End,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every idle stream holds one for its whole life: 648 bytes with the timers boxed, 856
    /// with them inline (Rust 1.95).
    #[test]
    fn a_waiting_stream_holds_a_small_future() {
        let (_stop, shutdown) = watch::channel(false);
        let (_snap, snapshots) = watch::channel(None);
        let f = wait::<()>(shutdown, Some(snapshots), None, None, None);
        let size = std::mem::size_of_val(&f);
        assert!(size <= 768, "the wait future grew to {size} bytes");
    }
}
