//! The status bulletin keeps the contract of tokio's watch channel.

use std::time::Duration;

use super::{bulletin, Closed};

const DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn changed_resolves_for_each_new_value_then_fails_once_the_sender_is_gone() {
    let (tx, mut rx) = bulletin(0u32);
    assert_eq!(*rx.borrow(), 0);
    tx.send_modify(|v| *v = 1);
    assert_eq!(rx.changed().await, Ok(()));
    assert_eq!(*rx.borrow(), 1);
    // Two values sent while nobody looked: one change, the latest value.
    tx.send_modify(|v| *v = 2);
    tx.send_modify(|v| *v = 3);
    let later = rx.clone();
    assert_eq!(rx.changed().await, Ok(()));
    assert_eq!(*rx.borrow(), 3);
    // A value sent just before the sender goes is still seen first.
    tx.send_modify(|v| *v = 4);
    drop(tx);
    assert_eq!(rx.changed().await, Ok(()));
    assert_eq!(rx.changed().await, Err(Closed));
    assert_eq!(*rx.borrow(), 4);
    // A clone keeps what its original had seen.
    let mut later = later;
    assert_eq!(later.changed().await, Ok(()));
    assert_eq!(later.changed().await, Err(Closed));
}

#[tokio::test]
async fn borrow_and_update_marks_the_value_seen() {
    let (tx, mut rx) = bulletin(0u32);
    tx.send_modify(|v| *v = 1);
    assert_eq!(*rx.borrow_and_update(), 1);
    let pending = tokio::time::timeout(Duration::from_millis(50), rx.changed()).await;
    assert!(
        pending.is_err(),
        "no change after the value was marked seen"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_wake_for_a_value_sent_from_another_thread() {
    let (tx, rx) = bulletin(0u32);
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let mut rx = rx.clone();
            tokio::spawn(async move { rx.wait_for(|v| *v >= 100).await.map(|v| *v) })
        })
        .collect();
    let sender = std::thread::spawn(move || {
        for n in 1..=100 {
            tx.send_modify(|v| *v = n);
        }
        tx
    });
    for w in waiters {
        let got = tokio::time::timeout(DEADLINE, w)
            .await
            .expect("the waiter woke")
            .expect("no panic");
        assert_eq!(got, Ok(100));
    }
    // With the sender gone and the value never ready: an error, not a hang.
    drop(sender.join().expect("sender"));
    let mut rx = rx;
    let never = tokio::time::timeout(DEADLINE, rx.wait_for(|v| *v > 100)).await;
    assert!(matches!(never, Ok(Err(Closed))));
}
