//! A heap of peer-connection deadlines, so the shard loop never asks every connection for its
//! next timeout (`rtc` leaves that to the caller; with thousands of connections a scan per
//! loop turn would dominate).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

use super::link::ConnKey;

/// Deadlines by connection. Rescheduling pushes a fresh entry and leaves the old one in the
/// heap; popping skips entries that no longer match the connection's current deadline, so
/// every operation stays O(log n) with no search.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, ConnKey)>>,
    current: HashMap<ConnKey, Instant>,
}

impl Timers {
    /// Sets (or clears, with `None`) the deadline of `conn`.
    pub fn schedule(&mut self, conn: ConnKey, at: Option<Instant>) {
        match at {
            Some(at) => {
                if self.current.insert(conn, at) != Some(at) {
                    self.heap.push(Reverse((at, conn)));
                }
            }
            None => {
                self.current.remove(&conn);
            }
        }
        // Stale entries are dropped lazily; bound them so a churn of reschedules cannot
        // grow the heap without limit.
        if self.heap.len() > 4 * self.current.len() + 64 {
            self.heap = self
                .current
                .iter()
                .map(|(&conn, &at)| Reverse((at, conn)))
                .collect();
        }
    }

    pub fn remove(&mut self, conn: ConnKey) {
        self.current.remove(&conn);
    }

    /// The earliest live deadline.
    pub fn next(&mut self) -> Option<Instant> {
        while let Some(&Reverse((at, conn))) = self.heap.peek() {
            if self.current.get(&conn) == Some(&at) {
                return Some(at);
            }
            self.heap.pop();
        }
        None
    }

    /// Takes one connection whose deadline is at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<ConnKey> {
        let at = self.next()?;
        if at > now {
            return None;
        }
        let Reverse((_, conn)) = self.heap.pop()?;
        self.current.remove(&conn);
        Some(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_and_skips_rescheduled_entries() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut timers = Timers::default();
        timers.schedule(ConnKey(1), Some(t0 + ms(30)));
        timers.schedule(ConnKey(2), Some(t0 + ms(10)));
        timers.schedule(ConnKey(3), Some(t0 + ms(20)));
        timers.schedule(ConnKey(2), Some(t0 + ms(40))); // moved later
        timers.remove(ConnKey(3));
        assert_eq!(timers.next(), Some(t0 + ms(30)));
        assert_eq!(timers.pop_due(t0 + ms(35)), Some(ConnKey(1)));
        assert_eq!(timers.pop_due(t0 + ms(35)), None);
        assert_eq!(timers.pop_due(t0 + ms(40)), Some(ConnKey(2)));
        assert_eq!(timers.next(), None);
    }

    #[test]
    fn heap_stays_bounded_under_churn() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        for i in 0..10_000u64 {
            timers.schedule(ConnKey(i % 3), Some(t0 + Duration::from_micros(i)));
        }
        assert!(timers.heap.len() <= 4 * 3 + 64);
        assert_eq!(timers.next(), Some(t0 + Duration::from_micros(9_997)));
    }
}
