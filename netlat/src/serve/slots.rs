//! Who holds one of serve's connection slots, and who gives theirs up when
//! a new client needs one. Refusing new connections when full would let
//! anyone who can reach the port shut Prometheus out by holding every slot
//! idle; instead the connection that has shown least sign of being a real
//! client (nothing sent, oldest first) makes room.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::Notify;

/// A new connection counts as silent only after this: its request may be
/// in the socket, not yet read by its task.
const GRACE: Duration = Duration::from_millis(100);

/// One connection's progress, updated by its task as bytes and requests come.
pub struct Conn {
    pub accepted: Instant,
    sent: AtomicBool,
    served: AtomicU64,
    evicted: Notify,
}

impl Conn {
    /// The client sent at least one byte.
    pub fn mark_sent(&self) {
        self.sent.store(true, Ordering::Relaxed);
    }

    /// A request was read in full and answered.
    pub fn mark_served(&self) {
        self.served.fetch_add(1, Ordering::Relaxed);
    }

    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Resolves once the slot was given to a newer client.
    pub async fn evicted(&self) {
        self.evicted.notified().await;
    }

    fn standing(&self) -> Standing {
        if self.served() > 0 {
            Standing::Served
        } else if self.sent.load(Ordering::Relaxed) || self.accepted.elapsed() < GRACE {
            Standing::Pending
        } else {
            Standing::Silent
        }
    }
}

/// How much a connection has done, least first: the order of eviction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    /// Connected a while ago, sent nothing.
    Silent,
    /// Sent part of a first request (slowloris looks like this), or only
    /// just connected.
    Pending,
    /// Completed a request (a keep-alive scraper between scrapes).
    Served,
}

/// Picks the connection to close: the lowest standing, oldest (smallest id)
/// among equals.
pub fn victim(held: impl IntoIterator<Item = (u64, Standing)>) -> Option<u64> {
    held.into_iter()
        .min_by_key(|&(id, standing)| (standing, id))
        .map(|(id, _)| id)
}

pub struct Slots {
    capacity: usize,
    held: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    next_id: u64,
    conns: BTreeMap<u64, Arc<Conn>>,
}

/// A held slot; dropping it frees the slot.
pub struct Slot {
    id: u64,
    slots: Arc<Slots>,
    pub conn: Arc<Conn>,
}

impl Slots {
    pub fn new(capacity: usize) -> Arc<Slots> {
        Arc::new(Slots {
            capacity,
            held: Mutex::new(Held::default()),
        })
    }

    /// A slot for a new connection, evicting one if all are held.
    pub fn take(self: &Arc<Self>) -> Slot {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        while held.conns.len() >= self.capacity {
            let standings = held.conns.iter().map(|(&id, c)| (id, c.standing()));
            let Some(id) = victim(standings) else { break };
            if let Some(conn) = held.conns.remove(&id) {
                // notify_one keeps the wake-up if the task is not waiting yet.
                conn.evicted.notify_one();
            }
        }
        let id = held.next_id;
        held.next_id += 1;
        let conn = Arc::new(Conn {
            accepted: Instant::now(),
            sent: AtomicBool::new(false),
            served: AtomicU64::new(0),
            evicted: Notify::new(),
        });
        held.conns.insert(id, Arc::clone(&conn));
        Slot {
            id,
            slots: Arc::clone(self),
            conn,
        }
    }

    /// More than half the slots are held: time to be strict with clients
    /// that have not made a request yet.
    pub fn under_pressure(&self) -> bool {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.conns.len() * 2 > self.capacity
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|p| p.into_inner());
        held.conns.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silent_before_pending_before_served_oldest_first() {
        use Standing::*;
        assert_eq!(victim([(3, Served), (5, Pending), (4, Silent)]), Some(4));
        assert_eq!(victim([(3, Served), (7, Pending), (5, Pending)]), Some(5));
        assert_eq!(victim([(9, Served), (2, Served)]), Some(2));
        assert_eq!(victim([]), None);
    }

    #[test]
    fn a_full_table_evicts_instead_of_refusing() {
        let slots = Slots::new(2);
        let a = slots.take();
        let b = slots.take();
        a.conn.mark_served();
        b.conn.mark_sent();
        let c = slots.take();
        // b (pending) made room; a (served) kept its slot.
        let held: Vec<u64> = slots.held.lock().unwrap().conns.keys().copied().collect();
        assert_eq!(held, [a.id, c.id]);
        assert!(slots.under_pressure());
        drop(b);
        drop(c);
        assert!(!slots.under_pressure(), "one of two held is not pressure");
    }
}
