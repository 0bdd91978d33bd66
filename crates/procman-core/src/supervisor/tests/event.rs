//! Events are numbered and sent in one order.

use std::sync::Arc;
use std::time::SystemTime;

use super::Events;
use crate::supervisor::state::{Cause, Phase, Transition};

/// Publishers on several threads at once: a listener receives the events
/// in the order of their numbers, with none missing.
#[test]
fn events_published_at_once_arrive_in_the_order_of_their_numbers() {
    let events = Events::default();
    let mut rx = events.subscribe();
    const THREADS: usize = 4;
    const EACH: usize = 500;
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let events = &events;
            scope.spawn(move || {
                let id: Arc<str> = format!("p{t}").into();
                for _ in 0..EACH {
                    let transition = Transition {
                        from: Phase::Running,
                        to: Phase::Stopping,
                        cause: Cause::StartRequested,
                        at: SystemTime::now(),
                    };
                    events.publish(&id, transition, None, 1);
                }
            });
        }
    });
    // The backlog holds them all (4,096): nothing was missed.
    let mut seen = Vec::new();
    while let Ok(event) = rx.try_recv() {
        seen.push(event.seq);
    }
    let expected: Vec<u64> = (1..=(THREADS * EACH) as u64).collect();
    assert_eq!(seen, expected);
}
