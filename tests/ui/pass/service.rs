//! Service form: any other `async fn` — methods with every receiver, generic
//! fns, `impl Trait` arguments, `?` and early `return` in the body, borrowed
//! returns. The signature is untouched.

use std::fmt::Display;
use std::str::FromStr;

use leakfree_runtime::leak_checked;

struct Service {
    name: String,
    hits: u32,
}

impl Service {
    // `&String` coerces to `&str` at the tail and at `return`, as without
    // the attribute.
    #[leak_checked]
    async fn name(&self) -> &str {
        if self.name.is_empty() {
            return &self.name;
        }
        &self.name
    }

    #[leak_checked(grace = "20ms")]
    async fn hit(&mut self, by: u32) -> &mut u32 {
        self.hits += by;
        &mut self.hits
    }

    #[leak_checked(ignore_name = "worker-*")]
    async fn into_hits(self) -> u32 {
        self.hits
    }

    #[leak_checked]
    async fn new(name: impl Into<String>) -> Self {
        Service {
            name: name.into(),
            hits: 0,
        }
    }
}

#[leak_checked]
async fn parse_all<T>(inputs: &[impl AsRef<str>]) -> Result<Vec<T>, T::Err>
where
    T: FromStr,
{
    let mut out = Vec::new();
    for input in inputs {
        if input.as_ref().is_empty() {
            return Ok(out);
        }
        out.push(input.as_ref().parse::<T>()?);
    }
    Ok(out)
}

#[leak_checked]
async fn boxed_error(n: impl Display) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let parsed: i64 = n.to_string().parse()?;
    Ok(format!("{parsed}"))
}

#[leak_checked]
async fn mutable_params(mut total: u64, (a, b): (u64, u64)) -> u64 {
    total += a + b;
    total
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut service = Service::new("svc").await;
        assert_eq!(service.name().await, "svc");
        *service.hit(2).await += 1;
        assert_eq!(service.into_hits().await, 3);
        assert_eq!(parse_all::<u8>(&["1", "2", "", "x"]).await, Ok(vec![1, 2]));
        assert!(parse_all::<u8>(&["x"]).await.is_err());
        assert_eq!(boxed_error(12).await.unwrap(), "12");
        assert!(boxed_error("nope").await.is_err());
        assert_eq!(mutable_params(1, (2, 3)).await, 6);
    });
}
