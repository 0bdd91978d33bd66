//! The command queue keeps the contract of tokio's unbounded channel.

use std::time::Duration;

use tokio::sync::oneshot;

use super::inbox;

const DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn values_arrive_in_order_then_none_once_every_sender_is_gone() {
    let (tx, mut rx) = inbox::<u32>();
    let tx2 = tx.clone();
    assert!(tx.send(1));
    assert!(tx2.send(2));
    drop(tx);
    assert!(tx2.send(3));
    drop(tx2);
    assert_eq!(rx.recv().await, Some(1));
    assert_eq!(rx.recv().await, Some(2));
    assert_eq!(rx.recv().await, Some(3));
    assert_eq!(rx.recv().await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_receiver_wakes_for_a_send_and_for_the_last_sender_going() {
    let (tx, mut rx) = inbox::<u32>();
    let got = tokio::spawn(async move {
        let first = rx.recv().await;
        let second = rx.recv().await;
        (first, second)
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(tx.send(7));
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(tx);
    let got = tokio::time::timeout(DEADLINE, got)
        .await
        .expect("the receiver woke")
        .expect("no panic");
    assert_eq!(got, (Some(7), None));
}

#[tokio::test]
async fn once_the_receiver_is_gone_sends_fail_and_queued_replies_resolve() {
    let (tx, rx) = inbox::<oneshot::Sender<()>>();
    let (queued, ticket) = oneshot::channel();
    assert!(tx.send(queued));
    drop(rx);
    // The queued reply sender was dropped with the receiver.
    let answer = tokio::time::timeout(DEADLINE, ticket)
        .await
        .expect("the ticket resolved");
    assert!(
        answer.is_err(),
        "no reply was sent: the ticket sees its sender gone"
    );
    let (late, late_ticket) = oneshot::channel();
    assert!(!tx.send(late), "a send after the receiver went fails");
    assert!(late_ticket.await.is_err(), "and drops what it carried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_senders_on_other_threads_lose_nothing() {
    let (tx, mut rx) = inbox::<u32>();
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..1000 {
                    assert!(tx.send(t * 1000 + i));
                }
            })
        })
        .collect();
    drop(tx);
    let mut seen = Vec::new();
    let all = async {
        while let Some(v) = rx.recv().await {
            seen.push(v);
        }
    };
    tokio::time::timeout(DEADLINE, all)
        .await
        .expect("every value, then None");
    for s in senders {
        s.join().expect("sender thread");
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..4000).collect::<Vec<_>>());
}
