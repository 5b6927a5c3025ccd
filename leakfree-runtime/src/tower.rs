//! [`LeakCheckLayer`]: a leakfree [`Scope`] around every call of a tower
//! [`Service`] (feature `tower`, off by default).
//!
//! Each call runs in a scope of its own, from [`Service::call`] until its
//! response future completes *or is dropped*: a client that disconnects, a
//! timeout layer that gives up, a losing `select!` branch. Either way the
//! scope ends the same way: the tasks the request spawned through leakfree
//! (and their children) get the grace period to finish, survivors are
//! reported by the [`Policy`] and cancelled. Concurrent requests never see
//! each other's tasks.
//!
//! The layer works wherever tower layers do: `axum::Router::layer`,
//! `tower::ServiceBuilder::layer`, a hyper server (through hyper-util's
//! `TowerToHyperService`), tonic's `Server::builder().layer(..)`.
//!
//! ```
//! use std::convert::Infallible;
//! use std::future::{Ready, ready};
//! use std::task::{Context, Poll};
//!
//! use http::{Request, Response};
//! use leakfree_runtime::tower::LeakCheckLayer;
//! use tower_layer::Layer;
//! use tower_service::Service;
//!
//! /// A service that leaks a task on `/leaky`.
//! #[derive(Clone)]
//! struct App;
//!
//! impl Service<Request<()>> for App {
//!     type Response = Response<&'static str>;
//!     type Error = Infallible;
//!     type Future = std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;
//!
//!     fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
//!         Poll::Ready(Ok(()))
//!     }
//!
//!     fn call(&mut self, request: Request<()>) -> Self::Future {
//!         Box::pin(async move {
//!             if request.uri().path() == "/leaky" {
//!                 // Nothing ever stops this task: it outlives the request.
//!                 leakfree_runtime::spawn(std::future::pending::<()>());
//!             }
//!             Ok(Response::new("ok"))
//!         })
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (reports, mut reported) = tokio::sync::mpsc::unbounded_channel();
//! let layer = LeakCheckLayer::builder()
//!     .grace(std::time::Duration::from_millis(20))
//!     .handler(move |report| drop(reports.send(report.to_string())))
//!     .build()?;
//! let mut app = layer.layer(App);
//!
//! std::future::poll_fn(|cx| app.poll_ready(cx)).await?;
//! app.call(Request::get("/fine").body(())?).await?;
//! std::future::poll_fn(|cx| app.poll_ready(cx)).await?;
//! app.call(Request::get("/leaky").body(())?).await?;
//!
//! // The verdict is reached off the request path, after the grace; only
//! // the leaky request is reported, named by its method and path.
//! let report = reported.recv().await.unwrap();
//! assert!(report.starts_with("leakfree: 1 task leaked from `GET /leaky`"), "{report}");
//! # Ok(()) }
//! ```
//!
//! # Defaults, and why
//! - **The verdict is reached off the request path**
//!   ([`ScopeBuilder::detach_verdict`]`(true)`): the response goes out as
//!   soon as the inner service answers; the grace period, the verdict and
//!   the cancellation run in a task of their own, so a leak never adds the
//!   grace to a request's latency.
//! - **[`Policy::Log`]** in every build: a `tracing` warning (target
//!   `leakfree`) per leaky request, with the report. A panic has nobody to
//!   fail in a server (under hyper it would only drop the connection), so
//!   the layer does not choose one for you; a test that wants the panic
//!   sets [`Policy::Panic`] with `detach_verdict(false)`, and a service that
//!   wants the reports as values sets [`LeakCheckLayerBuilder::handler`].
//!   `LEAKFREE_POLICY` and `LEAKFREE_GRACE` override every scope at run time,
//!   these included.
//! - Grace [`DEFAULT_GRACE`] and abort timeout
//!   [`DEFAULT_ABORT_TIMEOUT`], as for any
//!   scope; no task dumps (a dump re-polls every task of the runtime).
//!
//! # Naming
//! A scope is named by a [`NameRequest`]: by default [`MethodAndPath`]
//! (`GET /leaky`; the query is left out, it may carry secrets), for any
//! `http::Request<B>`. For other request types, or another name, give a
//! closure to [`LeakCheckLayer::name_with`]; as with tower-http's
//! `make_span_with`, annotate its argument's type:
//!
//! ```
//! # use leakfree_runtime::tower::LeakCheckLayer;
//! let layer = LeakCheckLayer::new().name_with(|request: &http::Request<String>| {
//!     let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok());
//!     format!("{} {} id={}", request.method(), request.uri().path(), id.unwrap_or("-"))
//! });
//! # let _ = layer;
//! ```
//!
//! # Options and bad input
//! Every option the `#[leak_checked]` attribute takes as text is typed here:
//! `grace` and `abort_timeout` are [`Duration`]s and the policy a [`Policy`],
//! so a layer cannot be built with a grace that does not parse, and none is
//! checked at run time. Globs are text: [`LeakCheckLayerBuilder::build`]
//! rejects an empty one, or one with spaces at either end (it would never
//! match what was meant), with a [`ConfigError`] naming the option and the
//! accepted forms.
//!
//! # Limits
//! - Work a service does in [`Service::call`] itself, before returning its
//!   future, runs outside the scope: tasks it spawns are not the request's.
//!   axum handlers, `tower::service_fn` closures that return an `async`
//!   block, and tonic methods do their work in the future, which is inside.
//! - The response future is boxed, so the inner service's future, response
//!   and error must be `Send + 'static` (as axum, hyper and tonic require
//!   anyway).

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tower_layer::Layer;
use tower_service::Service;

use pin_project_lite::pin_project;

use crate::detached_run::DetachedRun;
use crate::{DEFAULT_ABORT_TIMEOUT, DEFAULT_GRACE, LeakReport, Policy, Scope, ScopeBuilder};

/// Names the scope of one request.
///
/// Implemented by [`MethodAndPath`] for `http::Request<B>`, and by every
/// `Fn(&Request) -> impl Into<Cow<'static, str>>` (a `String` or a
/// `&'static str`).
pub trait NameRequest<Request> {
    /// The name of the scope `request` runs in.
    fn name(&self, request: &Request) -> Cow<'static, str>;
}

/// The default [`NameRequest`]: an `http::Request`'s method and path
/// (`GET /leaky`), without the query.
#[derive(Debug, Clone, Copy, Default)]
pub struct MethodAndPath;

impl<B> NameRequest<http::Request<B>> for MethodAndPath {
    fn name(&self, request: &http::Request<B>) -> Cow<'static, str> {
        // Pushed rather than `format!`ed: this runs for every request.
        let (method, path) = (request.method().as_str(), request.uri().path());
        let mut name = String::with_capacity(method.len() + 1 + path.len());
        name.push_str(method);
        name.push(' ');
        name.push_str(path);
        Cow::Owned(name)
    }
}

impl<F, Request, N> NameRequest<Request> for F
where
    F: Fn(&Request) -> N,
    N: Into<Cow<'static, str>>,
{
    fn name(&self, request: &Request) -> Cow<'static, str> {
        self(request).into()
    }
}

/// A layer that runs each call of the service it wraps in a leakfree
/// [`Scope`] named after the request; see the [module docs](self).
///
/// Cheap to clone (the settings are shared), `Send` and `Sync` when its
/// [`NameRequest`] is.
#[derive(Clone)]
pub struct LeakCheckLayer<N = MethodAndPath> {
    settings: Arc<Settings>,
    name: N,
}

/// The settings a [`LeakCheckLayer`] gives each request's scope.
#[derive(Clone)]
struct Settings {
    policy: Policy,
    grace: Duration,
    abort_timeout: Duration,
    detach_verdict: bool,
    ignore_names: Vec<Cow<'static, str>>,
    ignore_locations: Vec<Cow<'static, str>>,
    /// The scope builder all of the above make, made at the first request
    /// (the settings no longer change once a layer has them) and cloned for
    /// each one.
    template: OnceLock<ScopeBuilder>,
}

impl Settings {
    fn scope(&self, name: Cow<'static, str>) -> Scope {
        let template = self.template.get_or_init(|| {
            let mut builder: ScopeBuilder = Scope::builder("")
                .policy(self.policy.clone())
                .grace(self.grace)
                .abort_timeout(self.abort_timeout)
                .detach_verdict(self.detach_verdict);
            for glob in &self.ignore_names {
                builder = builder.ignore_name(glob.clone());
            }
            for glob in &self.ignore_locations {
                builder = builder.ignore_location(glob.clone());
            }
            builder
        });
        template.clone().named(name).build()
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("policy", &self.policy)
            .field("grace", &self.grace)
            .field("abort_timeout", &self.abort_timeout)
            .field("detach_verdict", &self.detach_verdict)
            .field("ignore_names", &self.ignore_names)
            .field("ignore_locations", &self.ignore_locations)
            .finish()
    }
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            policy: Policy::Log,
            grace: DEFAULT_GRACE,
            abort_timeout: DEFAULT_ABORT_TIMEOUT,
            detach_verdict: true,
            ignore_names: Vec::new(),
            ignore_locations: Vec::new(),
            template: OnceLock::new(),
        }
    }
}

impl LeakCheckLayer {
    /// A layer with the service defaults: verdict off the request path,
    /// [`Policy::Log`], grace [`DEFAULT_GRACE`], scopes named
    /// [`MethodAndPath`].
    pub fn new() -> LeakCheckLayer {
        LeakCheckLayer {
            settings: Arc::default(),
            name: MethodAndPath,
        }
    }

    /// Starts configuring a layer.
    pub fn builder() -> LeakCheckLayerBuilder {
        LeakCheckLayerBuilder {
            settings: Settings::default(),
            error: None,
        }
    }
}

impl Default for LeakCheckLayer {
    fn default() -> LeakCheckLayer {
        LeakCheckLayer::new()
    }
}

impl<N> LeakCheckLayer<N> {
    /// Names each request's scope with `name` instead: a closure
    /// `Fn(&Request) -> impl Into<Cow<'static, str>>` or any
    /// [`NameRequest`].
    pub fn name_with<M>(self, name: M) -> LeakCheckLayer<M> {
        LeakCheckLayer {
            settings: self.settings,
            name,
        }
    }
}

impl<S, N: Clone> Layer<S> for LeakCheckLayer<N> {
    type Service = LeakCheckService<S, N>;

    fn layer(&self, inner: S) -> LeakCheckService<S, N> {
        LeakCheckService {
            inner,
            settings: self.settings.clone(),
            name: self.name.clone(),
        }
    }
}

impl<N> fmt::Debug for LeakCheckLayer<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeakCheckLayer")
            .field("settings", &self.settings)
            .field("name", &std::any::type_name::<N>())
            .finish()
    }
}

/// Settings for a [`LeakCheckLayer`]; see [`LeakCheckLayer::builder`].
///
/// Setters take typed values; the one thing that can be wrong, a glob, is
/// reported by [`LeakCheckLayerBuilder::build`].
#[derive(Clone)]
#[must_use = "call .build() to get a LeakCheckLayer"]
pub struct LeakCheckLayerBuilder {
    settings: Settings,
    error: Option<ConfigError>,
}

impl LeakCheckLayerBuilder {
    /// What to do with a request whose scope ends with leaks (default
    /// [`Policy::Log`]). With [`Policy::Off`] requests run without a scope.
    /// A [`Policy::Panic`] can only fail the request with
    /// `detach_verdict(false)`; off the path it logs and prints instead.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.settings.policy = policy;
        self
    }

    /// Calls `handler` with every report that is not clean (sugar for
    /// `policy(Policy::handler(handler))`). With the verdict off the path
    /// it runs in the scope's exit task, after the response went out.
    pub fn handler(self, handler: impl Fn(&LeakReport) + Send + Sync + 'static) -> Self {
        self.policy(Policy::handler(handler))
    }

    /// How long a request's tasks may take to finish after its response
    /// future ends (default [`DEFAULT_GRACE`]). Any `Duration` is valid:
    /// zero judges at once.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.settings.grace = grace;
        self
    }

    /// How long to wait for aborted tasks to go before calling them zombies
    /// (default [`DEFAULT_ABORT_TIMEOUT`]).
    pub fn abort_timeout(mut self, timeout: Duration) -> Self {
        self.settings.abort_timeout = timeout;
        self
    }

    /// `true` (the default): the response goes out as soon as the inner
    /// service answers and the verdict is reached in a task of its own.
    /// `false`: the response future waits for the verdict (up to the grace)
    /// and acts on it in place, so [`Policy::Panic`] panics the response
    /// future. See [`ScopeBuilder::detach_verdict`].
    pub fn detach_verdict(mut self, detach: bool) -> Self {
        self.settings.detach_verdict = detach;
        self
    }

    /// Lets tasks whose name matches `glob` (`*`, `?`) out of every
    /// request's scope; see [`ScopeBuilder::ignore_name`]. Can be given
    /// many times.
    pub fn ignore_name(mut self, glob: impl Into<Cow<'static, str>>) -> Self {
        let glob = glob.into();
        self.check_glob("ignore_name", &glob, NAME_GLOBS);
        self.settings.ignore_names.push(glob);
        self
    }

    /// Lets tasks spawned in files matching `glob` out of every request's
    /// scope; see [`ScopeBuilder::ignore_location`]. Can be given many
    /// times.
    pub fn ignore_location(mut self, glob: impl Into<Cow<'static, str>>) -> Self {
        let glob = glob.into();
        self.check_glob("ignore_location", &glob, LOCATION_GLOBS);
        self.settings.ignore_locations.push(glob);
        self
    }

    /// The layer, or the first option that was given a bad value.
    pub fn build(self) -> Result<LeakCheckLayer, ConfigError> {
        match self.error {
            Some(error) => Err(error),
            None => Ok(LeakCheckLayer {
                settings: Arc::new(self.settings),
                name: MethodAndPath,
            }),
        }
    }

    fn check_glob(&mut self, option: &'static str, glob: &str, expected: &'static str) {
        if self.error.is_some() {
            return;
        }
        let problem = if glob.is_empty() {
            Some("is empty")
        } else if glob.trim() != glob {
            Some("has spaces at an end")
        } else {
            None
        };
        if let Some(problem) = problem {
            self.error = Some(ConfigError {
                option,
                value: glob.to_owned(),
                problem,
                expected,
            });
        }
    }
}

const NAME_GLOBS: &str =
    "a task-name glob, `*` for any run of characters and `?` for one: \"metrics-*\"";
const LOCATION_GLOBS: &str = "a spawn-file glob, matched against the whole path or any suffix \
     after a `/`: \"src/pool.rs\", \"*/metrics/*\"";

impl fmt::Debug for LeakCheckLayerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeakCheckLayerBuilder")
            .field("settings", &self.settings)
            .field("error", &self.error)
            .finish()
    }
}

/// A [`LeakCheckLayerBuilder`] option given a value it does not accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    option: &'static str,
    value: String,
    problem: &'static str,
    expected: &'static str,
}

impl ConfigError {
    /// The option: `ignore_name` or `ignore_location`.
    pub fn option(&self) -> &'static str {
        self.option
    }

    /// The value it was given.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "leakfree: `{}` {:?} {}; expected {}",
            self.option, self.value, self.problem, self.expected
        )
    }
}

impl std::error::Error for ConfigError {}

/// The service [`LeakCheckLayer`] makes: each call in a scope of its own.
#[derive(Clone)]
pub struct LeakCheckService<S, N = MethodAndPath> {
    inner: S,
    settings: Arc<Settings>,
    name: N,
}

impl<S, N> LeakCheckService<S, N> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, N, Request> Service<Request> for LeakCheckService<S, N>
where
    S: Service<Request>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    N: NameRequest<Request>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let scope = self.settings.scope(self.name.name(&request));
        let response = self.inner.call(request);
        ResponseFuture::new(scope, response)
    }
}

impl<S: fmt::Debug, N> fmt::Debug for LeakCheckService<S, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeakCheckService")
            .field("inner", &self.inner)
            .field("settings", &self.settings)
            .field("name", &std::any::type_name::<N>())
            .finish()
    }
}

pin_project! {
    /// The response future of a [`LeakCheckService`]: the inner service's
    /// future `F`, run in the request's scope. Dropping it ends the scope
    /// (its tasks are judged and cancelled off the caller's path).
    ///
    /// With the layer's defaults (verdict off the path, no timeout) the
    /// inner future sits in place, polled in the scope, and the scope ends
    /// when it completes; any other settings run [`Scope::run`]'s own
    /// future, boxed.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F: Future> {
        // The in-place case.
        #[pin]
        in_place: Option<DetachedRun<F>>,
        // Every other case.
        boxed: Option<Pin<Box<dyn Future<Output = F::Output> + Send>>>,
    }
}

impl<F> ResponseFuture<F>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn new(scope: Scope, response: F) -> Self {
        if scope.runs_detached_untimed() {
            ResponseFuture {
                in_place: Some(DetachedRun::new(scope, response)),
                boxed: None,
            }
        } else {
            ResponseFuture {
                in_place: None,
                boxed: Some(Box::pin(scope.run(response))),
            }
        }
    }
}

impl<F: Future> Future for ResponseFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        match (this.in_place.as_pin_mut(), this.boxed.as_mut()) {
            (Some(in_place), _) => in_place.poll(cx),
            (None, Some(boxed)) => boxed.as_mut().poll(cx),
            (None, None) => unreachable!("one of the two is always set"),
        }
    }
}

impl<F: Future> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("in_place", &self.boxed.is_none())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_globs_are_errors_at_build_naming_the_option() {
        let error = LeakCheckLayer::builder()
            .ignore_name("metrics-*")
            .ignore_location("")
            .ignore_name(" x")
            .build()
            .unwrap_err();
        assert_eq!(error.option(), "ignore_location");
        assert_eq!(
            error.to_string(),
            "leakfree: `ignore_location` \"\" is empty; expected a spawn-file glob, matched \
             against the whole path or any suffix after a `/`: \"src/pool.rs\", \"*/metrics/*\""
        );
        let error = LeakCheckLayer::builder()
            .ignore_name("pool ")
            .build()
            .unwrap_err();
        assert_eq!(error.option(), "ignore_name");
        assert_eq!(error.value(), "pool ");
        assert!(
            error.to_string().contains("has spaces at an end"),
            "{error}"
        );
        assert!(error.to_string().contains("\"metrics-*\""), "{error}");
        assert!(
            LeakCheckLayer::builder()
                .ignore_name("metrics-*")
                .ignore_location("*/pool.rs")
                .grace(Duration::ZERO)
                .build()
                .is_ok()
        );
    }

    #[test]
    fn scopes_are_named_by_method_and_path_or_by_the_closure() {
        let request = http::Request::post("/orders/7?token=secret")
            .header("x-request-id", "r-1")
            .body(())
            .unwrap();
        assert_eq!(MethodAndPath.name(&request), "POST /orders/7");
        let by_id = |request: &http::Request<()>| {
            request
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .map_or(Cow::Borrowed("no id"), |id| Cow::Owned(id.to_owned()))
        };
        assert_eq!(by_id.name(&request), "r-1");
        let fixed = |_: &u32| "rpc";
        assert_eq!(fixed.name(&7), "rpc");
    }

    #[test]
    fn layers_and_services_are_send_sync_and_clone() {
        fn assert_traits<T: Send + Sync + Clone + 'static>(_: &T) {}
        let layer = LeakCheckLayer::new();
        assert_traits(&layer);
        let named = layer.name_with(|_: &http::Request<()>| "x");
        assert_traits(&named);
        assert_traits(&named.layer(()));
        let debug = format!("{:?}", LeakCheckLayer::new());
        assert!(debug.contains("policy: Log"), "{debug}");
        assert!(debug.contains("detach_verdict: true"), "{debug}");
    }
}
