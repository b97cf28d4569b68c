//! The one background thread that runs the async API for every blocking handle of the
//! process, and the rule that refuses to block inside an async runtime.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The name of the background thread.
const THREAD_NAME: &str = "sciauth-blocking";

/// The name of its runtime's blocking-pool threads (reading token files, resolving names).
const POOL_THREAD_NAME: &str = "sciauth-pool";

/// How long the background thread waits, when the last handle is gone, for blocking-pool
/// work under way (a token file being read) before it leaves it behind: ending never hangs.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// The background runtime, shared by every blocking handle alive at the same time, so that
/// connection pools, the token manager's background refreshes and the tasks of a login all
/// live on one runtime (a reqwest client used from two runtimes loses its pooled
/// connections when one of them ends). Started by the first handle, ended when the last one
/// is dropped.
static SHARED: Mutex<Weak<Background>> = Mutex::new(Weak::new());

/// A handle on the background runtime; clones share it.
#[derive(Clone)]
pub(crate) struct Runtime {
    background: Arc<Background>,
}

struct Background {
    handle: Handle,
    /// Dropping it tells the thread to end.
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Runtime {
    /// The background runtime of this process, started now if no handle holds it.
    ///
    /// Panics if the operating system refuses a thread or the runtime's I/O driver (the
    /// limits on threads or open files are reached), as `std::thread::spawn` does.
    pub(crate) fn shared() -> Runtime {
        let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(background) = shared.upgrade() {
            return Runtime { background };
        }
        let background = Arc::new(Background::start());
        *shared = Arc::downgrade(&background);
        Runtime { background }
    }

    /// Runs `future` on the background runtime and waits for its output on this thread.
    ///
    /// `what` names the blocking call and `instead` its async counterpart, for the panic
    /// that refuses a call made inside an async runtime. A panic of `future` is resumed here.
    pub(crate) fn block_on<F>(&self, what: &str, instead: &str, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        refuse_inside_async(what, instead);
        let (sender, receiver) = oneshot::channel();
        let task = self.background.handle.spawn(future);
        // A second task so that a panic of the first reaches the caller (as a JoinError)
        // instead of leaving it waiting.
        self.background.handle.spawn(async move {
            let _ = sender.send(task.await);
        });
        match receiver.blocking_recv() {
            Ok(Ok(output)) => output,
            Ok(Err(error)) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // The runtime lives while this handle does, so its tasks are never cancelled.
            _ => panic!("{what}: the sciauth-blocking runtime ended while the call ran"),
        }
    }
}

/// Panics, saying what to do instead, when the calling thread runs inside an async runtime:
/// blocking there would stall the runtime's tasks (or deadlock it), and dropping a runtime
/// there panics inside tokio with a message that names neither sciauth nor the fix.
pub(crate) fn refuse_inside_async(what: &str, instead: &str) {
    if Handle::try_current().is_ok() {
        panic!(
            "{what} was called inside an async runtime, where blocking would stall the \
             runtime's tasks: use the async API instead ({instead}.await), or call the \
             blocking API from a thread of your own (std::thread::spawn)"
        );
    }
}

impl Background {
    fn start() -> Background {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name(POOL_THREAD_NAME)
            .build()
            .unwrap_or_else(|error| panic!("sciauth-blocking cannot start its runtime: {error}"));
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(move || {
                // Runs every task spawned through `handle` until the last handle is gone.
                runtime.block_on(async {
                    let _ = stopped.await;
                });
                runtime.shutdown_timeout(SHUTDOWN_WAIT);
            })
            .unwrap_or_else(|error| panic!("sciauth-blocking cannot start its thread: {error}"));
        Background {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        drop(self.stop.take());
        let Some(thread) = self.thread.take() else {
            return;
        };
        // Waiting is right on a thread of the caller's own; on the background thread itself
        // it would wait forever, and inside an async runtime it would stall it: there the
        // thread ends on its own, unwaited.
        if thread.thread().id() != thread::current().id() && Handle::try_current().is_err() {
            let _ = thread.join();
        }
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("thread", &THREAD_NAME)
            .finish_non_exhaustive()
    }
}
