//! Two async helpers zbus's own executor lacks: a timeout around a future, and a sleep that
//! does not block the thread `zbus::block_on` drives connections on.
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// Awaits `fut`, or fails with a timed-out error once `timeout` has passed.
pub async fn within<T, E, F>(timeout: Duration, fut: F) -> std::result::Result<T, E>
where
    F: Future<Output = std::result::Result<T, E>>,
    E: From<zbus::Error>,
{
    let mut fut = pin!(fut);
    let mut timer = pin!(sleep(timeout));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(out);
        }
        timer.as_mut().poll(cx).map(|()| {
            Err(E::from(zbus::Error::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {timeout:?}"),
            ))))
        })
    })
    .await
}

/// A sleep that does not block the thread `zbus::block_on` drives connections on: a helper
/// thread wakes the task once the time is up.
pub async fn sleep(duration: Duration) {
    let deadline = Instant::now() + duration;
    let fired = Arc::new(AtomicBool::new(false));
    let waker: Arc<Mutex<Option<Waker>>> = Arc::new(Mutex::new(None));
    let mut spawned = false;
    std::future::poll_fn(|cx| {
        if fired.load(Ordering::Acquire) || Instant::now() >= deadline {
            return Poll::Ready(());
        }
        *waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
        if !spawned {
            spawned = true;
            let (fired, waker) = (fired.clone(), waker.clone());
            std::thread::spawn(move || {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                fired.store(true, Ordering::Release);
                if let Some(w) = waker.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    w.wake();
                }
            });
        }
        Poll::Pending
    })
    .await
}
