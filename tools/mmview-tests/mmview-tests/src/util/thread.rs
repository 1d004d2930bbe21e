//! Running code on several threads at once.

use std::sync::{Condvar, Mutex};
use std::thread;

use crate::check::{Failure, TestResult};

/// Runs `f(0)`, ..., `f(n - 1)` on `n` threads that start together (all are
/// created before any runs) and returns their results in order. A thread that
/// cannot be created or that panics makes this fail.
pub fn run_concurrently<T, F>(n: usize, f: F) -> TestResult<Vec<T>>
where
    T: Send,
    F: Fn(usize) -> T + Sync,
{
    let gate = Gate::default();
    thread::scope(|scope| {
        let mut handles = Vec::with_capacity(n);
        for index in 0..n {
            let (gate, f) = (&gate, &f);
            let spawned = thread::Builder::new()
                .name(format!("worker-{index}"))
                .spawn_scoped(scope, move || gate.wait().then(|| f(index)));
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    gate.open(false);
                    return Err(Failure::new(format!("creating thread {index} of {n}: {e}")));
                }
            }
        }
        gate.open(true);
        handles
            .into_iter()
            .enumerate()
            .map(|(index, handle)| match handle.join() {
                Ok(Some(value)) => Ok(value),
                Ok(None) => Err(Failure::new(format!("thread {index} did not run"))),
                Err(_) => Err(Failure::new(format!("thread {index} panicked"))),
            })
            .collect()
    })
}

/// A one-shot start signal: threads wait until it opens, to run or to give up.
#[derive(Default)]
struct Gate {
    state: Mutex<Option<bool>>,
    opened: Condvar,
}

impl Gate {
    fn open(&self, go: bool) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Some(go);
        self.opened.notify_all();
    }

    /// Blocks until the gate opens; whether to run.
    fn wait(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(go) = *state {
                return go;
            }
            state = self.opened.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn results_come_back_in_order() -> TestResult {
        let running = AtomicUsize::new(0);
        let out = run_concurrently(4, |i| {
            running.fetch_add(1, Ordering::SeqCst);
            i * 10
        })?;
        assert_eq!(out, vec![0, 10, 20, 30]);
        assert_eq!(running.load(Ordering::SeqCst), 4);
        Ok(())
    }

    #[test]
    fn a_panicking_thread_fails_the_run() {
        let r = run_concurrently(3, |i| {
            if i == 1 {
                panic!("expected in this test");
            }
        });
        assert_eq!(
            r.err().map(|f| f.to_string()).as_deref(),
            Some("thread 1 panicked")
        );
    }
}
