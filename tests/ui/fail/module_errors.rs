use leakfree_runtime::leak_checked;

#[leak_checked(grace = "1s")]
mod tests {
    use super::leak_checked;

    #[leak_checked(skip)]
    #[tokio::test]
    async fn skipped() {}

    #[leak_checked(flavor = "multi_thread")]
    #[tokio::test]
    async fn flavor_in_wrapping_form() {}

    #[leak_checked(grace = 5)]
    #[test]
    async fn bad_grace() {}
}

fn main() {}
