//! A detached scope's run as a named future: the body polled in place in the
//! scope's context, its panic caught, and the scope ended off the caller's
//! path when the body returns or panics.
//!
//! It is exactly what [`Scope::run`] does for a scope whose verdict is off
//! the path and that has no timeout ([`Scope::runs_detached_untimed`]), but
//! without `run`'s nested futures (each moved at every await of the caller)
//! and without a box: the tower layer's response future holds it, and a
//! release-build `#[leak_checked]` function awaits it.
//!
//! # Invariants
//! - The scope ends exactly once: when the body completes (here), or, if
//!   this is dropped first, through the scope's own drop, which ends it off
//!   the path as well. The body is dropped before the scope (field order),
//!   as when `run`'s future is dropped.
//! - A panic of the body continues to the caller after the scope ended.

use std::future::Future;
use std::panic::resume_unwind;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use crate::scope::Scope;
use crate::spawn::{CatchUnwind, Entered};

pin_project! {
    /// See the module docs.
    pub(crate) struct DetachedRun<F> {
        // `None` once it completed.
        #[pin]
        body: Option<CatchUnwind<Entered<F>>>,
        scope: Option<Scope>,
    }
}

impl<F: Future> DetachedRun<F> {
    /// Runs `body` in `scope`; the caller checked
    /// [`Scope::runs_detached_untimed`].
    pub(crate) fn new(scope: Scope, body: F) -> Self {
        debug_assert!(scope.runs_detached_untimed());
        DetachedRun {
            body: Some(CatchUnwind::new(scope.enter(body))),
            scope: Some(scope),
        }
    }
}

impl<F: Future> Future for DetachedRun<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        let body = this
            .body
            .as_mut()
            .as_pin_mut()
            .expect("a detached run is not polled after it completed");
        let outcome = ready!(body.poll(cx));
        this.body.set(None);
        if let Some(scope) = this.scope.take() {
            scope.end_off_path();
        }
        match outcome {
            Ok(value) => Poll::Ready(value),
            Err(payload) => resume_unwind(payload),
        }
    }
}
