//! The signal that ends every open stream once a graceful shutdown's grace period is over.
//!
//! A stream checks it on every read the upstream has nothing for, which is once an event.
//! `CancellationToken`'s future took two mutexes on each such poll (~380 instructions an
//! event; bench/RESULTS.md, addendum 29). Here a check is an atomic load and a waker
//! comparison; a stream takes the lock only to register its waker, once, and to leave.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Waker};

use crate::fast_map::FastMap;

/// Cheap to clone: every clone ends the same streams.
#[derive(Clone, Default)]
pub struct StreamsEnd {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    ended: AtomicBool,
    waiting: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    next_id: u64,
    wakers: FastMap<u64, Waker>,
}

impl Shared {
    fn waiting(&self) -> MutexGuard<'_, Waiting> {
        // A waker map is valid whatever a panicking holder left undone.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl StreamsEnd {
    /// Ends every stream watching, now and from now on.
    pub fn end(&self) {
        self.shared.ended.store(true, Ordering::SeqCst);
        let wakers = std::mem::take(&mut self.shared.waiting().wakers);
        wakers.into_values().for_each(Waker::wake);
    }

    /// A watch for one stream.
    pub fn watch(&self) -> EndWatch {
        EndWatch {
            shared: Arc::clone(&self.shared),
            registered: None,
        }
    }
}

impl std::fmt::Debug for StreamsEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ended = self.shared.ended.load(Ordering::Relaxed);
        f.debug_struct("StreamsEnd").field("ended", &ended).finish()
    }
}

/// One stream's view of the signal.
pub struct EndWatch {
    shared: Arc<Shared>,
    /// The id this watch's waker is kept under, and that waker.
    registered: Option<(u64, Waker)>,
}

impl EndWatch {
    /// Whether the streams have been ended; if not, `cx`'s task is woken when they are.
    pub fn poll_ended(&mut self, cx: &mut Context<'_>) -> bool {
        if self.shared.ended.load(Ordering::SeqCst) {
            return true;
        }
        if !matches!(&self.registered, Some((_, waker)) if waker.will_wake(cx.waker())) {
            self.register(cx.waker());
            // `end` sets the flag before it takes the lock to wake: a registration made
            // after its wake-ups sees the flag here.
            return self.shared.ended.load(Ordering::SeqCst);
        }
        false
    }

    #[cold]
    fn register(&mut self, waker: &Waker) {
        let mut waiting = self.shared.waiting();
        let id = match &self.registered {
            Some((id, _)) => *id,
            None => {
                waiting.next_id += 1;
                waiting.next_id
            }
        };
        waiting.wakers.insert(id, waker.clone());
        self.registered = Some((id, waker.clone()));
    }
}

impl Drop for EndWatch {
    fn drop(&mut self) {
        if let Some((id, _)) = self.registered.take() {
            self.shared.waiting().wakers.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;

    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Arc<CountingWaker>, Waker) {
        let counter = Arc::new(CountingWaker::default());
        (counter.clone(), Waker::from(counter))
    }

    #[test]
    fn a_watch_is_woken_once_when_the_streams_end_and_sees_it_from_then_on() {
        let streams_end = StreamsEnd::default();
        let (woken, waker) = waker();
        let mut cx = Context::from_waker(&waker);
        let mut watch = streams_end.watch();
        assert!(!watch.poll_ended(&mut cx));
        assert!(
            !watch.poll_ended(&mut cx),
            "the same waker is kept, not added"
        );
        assert_eq!(streams_end.shared.waiting().wakers.len(), 1);
        streams_end.clone().end();
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        assert!(watch.poll_ended(&mut cx));
        assert!(streams_end.watch().poll_ended(&mut cx), "a later watch too");
    }

    #[test]
    fn a_new_waker_replaces_the_old_and_a_dropped_watch_leaves_nothing_behind() {
        let streams_end = StreamsEnd::default();
        let (first, first_waker) = waker();
        let (second, second_waker) = waker();
        let mut watch = streams_end.watch();
        assert!(!watch.poll_ended(&mut Context::from_waker(&first_waker)));
        assert!(!watch.poll_ended(&mut Context::from_waker(&second_waker)));
        assert_eq!(streams_end.shared.waiting().wakers.len(), 1);
        let mut other = streams_end.watch();
        assert!(!other.poll_ended(&mut Context::from_waker(&first_waker)));
        drop(other);
        assert_eq!(streams_end.shared.waiting().wakers.len(), 1);
        streams_end.end();
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
        drop(watch);
        assert!(streams_end.shared.waiting().wakers.is_empty());
    }
}
