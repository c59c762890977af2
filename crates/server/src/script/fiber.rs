//! The script stack: every script runs on a stack of its own (a stackful
//! coroutine on the executor's thread), so that once it is busy its count hook
//! can hand the thread back to the executor and let the core's other tasks
//! run (Redis's `processEventsWhileBlocked`).
//!
//! Why a separate stack rather than Lua coroutines: the hook may fire anywhere
//! in the script, inside `pcall`, a `table.sort` comparator or a metamethod,
//! where Lua 5.1 cannot yield; with its own stack the whole C stack of the run
//! (Lua, mlua, the hook) simply stays where it is while the executor runs
//! other tasks. Entering and leaving the stack is two register switches, and
//! the stack is allocated once per executor and reused, so a short EVALSHA pays
//! nothing that shows (no thread hand-off, no allocation).
//!
//! What keeps a pause sound (docs/architecture.md "Busy scripts"): a script
//! pauses only between two Lua instructions, never inside `redis.call`; it
//! holds its shards (`lock_all`) while paused, so nothing else touches its
//! data; commands of other clients get `-BUSY` (`busy::reject`), and the cron
//! leaves expiry and eviction alone while a script is paused on its core.
//!
//! The one suspension inside `redis.call` is [`wait`]: MIGRATE's transfer
//! runs as a task of the executor while the script, holding every shard,
//! waits on its stack. No shard borrow is open across it (the transfer's own
//! jobs borrow as any job does), and script commands on this core wait for it
//! to end ([`waited`]) instead of finding the interpreter in use.

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

/// Room for a script's C stack: Lua, the libraries, and whatever a
/// `redis.call` runs. Only the pages a run touches are ever committed.
const STACK_SIZE: usize = 8 << 20;

thread_local! {
    /// This executor's idle script stack.
    static STACK: Cell<Option<DefaultStack>> = const { Cell::new(None) };
    /// The yielder of the run executing right now (null when none is, or when
    /// it runs where it cannot pause).
    static YIELDER: Cell<*const Yielder<(), ()>> = const { Cell::new(std::ptr::null()) };
    /// A script is paused on this executor.
    static PAUSED: Cell<bool> = const { Cell::new(false) };
    /// What a run suspended by [`wait`] waits for; `run` awaits it.
    static AWAITED: RefCell<Option<Pin<Box<dyn Future<Output = ()>>>>> = const { RefCell::new(None) };
    /// A run is suspended in [`wait`]; tasks in [`waited`] wake when it resumes.
    static WAITING: Cell<bool> = const { Cell::new(false) };
    static WAITERS: RefCell<Vec<std::task::Waker>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this executor's script stack. Whenever `f` calls [`pause`], the
/// executor runs its other tasks once before `f` goes on.
pub async fn run<R>(f: impl FnOnce() -> R) -> R {
    run_then(|| {}, f).await
}

/// [`run`], calling `before_first_suspend` once, right before the run first
/// lets the executor's other tasks run (a pause or a [`wait`]); until then
/// the run is one synchronous stretch that nothing else interleaves with.
pub async fn run_then<R>(before_first_suspend: impl FnOnce(), f: impl FnOnce() -> R) -> R {
    let mut before_first_suspend = Some(before_first_suspend);
    let stack = match STACK.with(|s| s.take()) {
        Some(s) => s,
        None => match DefaultStack::new(STACK_SIZE) {
            Ok(s) => s,
            // No memory for a stack: run in place, without pauses.
            Err(_) => return f(),
        },
    };
    // SAFETY: what `f` borrows outlives the coroutine: it is resumed only in
    // this function, and if this future is dropped while the coroutine is
    // suspended (the executor ending at shutdown) the coroutine is leaked,
    // never resumed or unwound (`ManuallyDrop`), so its borrows are never used
    // again. Unwinding it would run through Lua's C frames.
    let mut co = ManuallyDrop::new(unsafe {
        Coroutine::with_stack_unchecked(stack, move |y: &Yielder<(), ()>, ()| {
            YIELDER.with(|c| c.set(y));
            // Cleared on the way out, a panic included.
            let _out = Unyield;
            f()
        })
    });
    loop {
        match co.resume(()) {
            CoroutineResult::Return(r) => {
                let co = ManuallyDrop::into_inner(co);
                STACK.with(|s| s.set(Some(co.into_stack())));
                return r;
            }
            CoroutineResult::Yield(()) => {
                if let Some(hold) = before_first_suspend.take() {
                    hold();
                }
                PAUSED.with(|p| p.set(true));
                let _resumed = Unpause;
                match AWAITED.with(|a| a.borrow_mut().take()) {
                    Some(work) => {
                        WAITING.with(|w| w.set(true));
                        let _done = Unwait;
                        work.await
                    }
                    // A timer rather than a yield: the executor drains its run
                    // queue and polls io_uring (new requests, accepts) before the
                    // script goes on.
                    None => glommio::timer::sleep(Duration::from_micros(1)).await,
                }
            }
        }
    }
}

/// Clears `YIELDER` when a run leaves its stack.
struct Unyield;

impl Drop for Unyield {
    fn drop(&mut self) {
        YIELDER.with(|c| c.set(std::ptr::null()));
    }
}

/// Clears `WAITING` and wakes [`waited`]'s tasks when a [`wait`] ends.
struct Unwait;

impl Drop for Unwait {
    fn drop(&mut self) {
        WAITING.with(|w| w.set(false));
        for w in WAITERS.with(|w| std::mem::take(&mut *w.borrow_mut())) {
            w.wake();
        }
    }
}

/// Clears `PAUSED` when the pause ends (or the future is dropped).
struct Unpause;

impl Drop for Unpause {
    fn drop(&mut self) {
        PAUSED.with(|p| p.set(false));
    }
}

/// Called from the count hook of a busy script: lets the executor serve its
/// other tasks, then returns. A no-op where the run cannot pause.
pub fn pause() {
    let y = YIELDER.with(|c| c.replace(std::ptr::null()));
    if y.is_null() {
        return;
    }
    // SAFETY: `y` is the yielder of the coroutine running this code (set by
    // `run` on entry, cleared while suspended), so it is alive and current.
    unsafe { (*y).suspend(()) };
    YIELDER.with(|c| c.set(y));
}

/// Suspends the run until `work` is done on the executor, which serves its
/// other tasks meanwhile (as during a pause), and returns its output: how a
/// `redis.call` waits on the network (MIGRATE) without blocking the core. None
/// where the run cannot suspend (no script stack); `work` is then not run.
pub fn wait<T: 'static>(work: impl Future<Output = T> + 'static) -> Option<T> {
    let y = YIELDER.with(|c| c.replace(std::ptr::null()));
    if y.is_null() {
        return None;
    }
    let out = Rc::new(RefCell::new(None));
    let slot = out.clone();
    AWAITED.with(|a| {
        *a.borrow_mut() = Some(Box::pin(async move {
            let v = work.await;
            *slot.borrow_mut() = Some(v);
        }))
    });
    // SAFETY: as in `pause`: `y` is the yielder of the coroutine running this code.
    unsafe { (*y).suspend(()) };
    YIELDER.with(|c| c.set(y));
    let v = out.borrow_mut().take();
    v
}

/// Returns once no run on this executor is suspended in [`wait`]. Script
/// commands call it first: the suspended run holds this executor's
/// interpreter, and in Redis they would wait for it (its whole server waits
/// on MIGRATE) rather than get `-BUSY`.
pub async fn waited() {
    std::future::poll_fn(|cx| {
        if WAITING.with(|w| w.get()) {
            WAITERS.with(|w| w.borrow_mut().push(cx.waker().clone()));
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await
}

/// A script is paused on this executor (its shards are held mid-run).
pub fn paused() -> bool {
    PAUSED.with(|p| p.get())
}
