//! Backtrace frames trimmed to the ones that matter: the user's own frames
//! (outside the cargo registry, the standard library and leakfree), root
//! first, then the one library call they wait in (e.g.
//! `tokio::sync::mpsc::bounded::Receiver<T>::recv`). Compiled where task
//! dumps are (and for its tests).

/// One resolved frame of a backtrace.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Frame {
    pub(crate) name: String,
    pub(crate) file: String,
    pub(crate) line: Option<u32>,
    pub(crate) column: Option<u32>,
}

/// The user's frames root first, then the library call the innermost one
/// waits in. `frames` come leaf first, as backtraces list them.
pub(crate) fn trim(frames: &[Frame], root: Option<&std::path::Path>) -> Vec<String> {
    let Some(innermost_user) = frames.iter().position(is_user_frame) else {
        return Vec::new();
    };
    let mut lines: Vec<String> = frames[innermost_user..]
        .iter()
        .rev()
        .filter(|frame| is_user_frame(frame))
        .map(|frame| {
            let file = match root.and_then(|root| frame.file.strip_prefix(root.to_str()?)) {
                Some(relative) => relative.trim_start_matches('/').to_owned(),
                None => frame.file.clone(),
            };
            let mut line = format!("{} at {file}", clean_name(&frame.name));
            if let Some(number) = frame.line {
                line.push_str(&format!(":{number}"));
                if let Some(column) = frame.column {
                    line.push_str(&format!(":{column}"));
                }
            }
            line
        })
        .collect();
    lines.dedup();
    // The library call the innermost user frame is suspended in: the
    // outermost library frame on the leaf side of it.
    if let Some(call) = frames[..innermost_user]
        .iter()
        .rev()
        .find(|f| !is_internal(&f.name))
    {
        lines.push(clean_name(&call.name));
    }
    lines
}

fn is_user_frame(frame: &Frame) -> bool {
    !frame.file.is_empty()
        && !frame.file.contains("/.cargo/registry/")
        && !frame.file.contains("/.cargo/git/")
        && !frame.file.starts_with("/rustc/")
        && !frame.file.contains("/library/core/")
        && !frame.file.contains("/library/std/")
        && !frame.file.contains("leakfree-runtime/src/")
}

/// Frames that are plumbing rather than an API a user called.
fn is_internal(name: &str) -> bool {
    name.starts_with('<') && (name.contains("core::future") || name.contains("PollFn"))
}

/// `tokio::sync::mpsc::bounded::Receiver<T>::recv::{{closure}}::h2a5f…` →
/// `tokio::sync::mpsc::bounded::Receiver<T>::recv`.
pub(crate) fn clean_name(name: &str) -> String {
    let mut name = name;
    if let Some((head, hash)) = name.rsplit_once("::h") {
        if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) {
            name = head;
        }
    }
    while let Some(head) = name.strip_suffix("::{{closure}}") {
        name = head;
    }
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str, file: &str, line: u32) -> Frame {
        Frame {
            name: name.to_owned(),
            file: file.to_owned(),
            line: Some(line),
            column: Some(9),
        }
    }

    #[test]
    fn keeps_user_frames_root_first_and_the_call_they_wait_in() {
        let registry = "/root/.cargo/registry/src/index/tokio-1.54.1/src/sync/mpsc";
        let frames = vec![
            frame(
                "tokio::sync::mpsc::chan::Rx<T,S>::recv::h8eb63932efc44822",
                &format!("{registry}/chan.rs"),
                308,
            ),
            frame(
                "tokio::sync::mpsc::bounded::Receiver<T>::recv::{{closure}}::{{closure}}::hae3e032f0655fa8e",
                &format!("{registry}/bounded.rs"),
                245,
            ),
            frame(
                "<core::future::poll_fn::PollFn<F> as core::future::future::Future>::poll::hb7b7cae4f3e2c752",
                "/rustc/abc/library/core/src/future/poll_fn.rs",
                151,
            ),
            frame(
                "tokio::sync::mpsc::bounded::Receiver<T>::recv::{{closure}}::h2a5f5cc90fcab1e0",
                &format!("{registry}/bounded.rs"),
                245,
            ),
            frame(
                "app::client::ping_loop::{{closure}}::h9c7c232b1654ca21",
                "/work/app/src/client.rs",
                57,
            ),
            frame(
                "app::client::run::{{closure}}::h9c7c232b1654ca22",
                "/work/app/src/client.rs",
                40,
            ),
            frame(
                "leakfree_runtime::tracked::Tracked<F>::poll::h9c7c232b1654ca23",
                "/work/leakfree-runtime/src/tracked.rs",
                80,
            ),
        ];
        let lines = trim(&frames, Some(std::path::Path::new("/work/app")));
        assert_eq!(
            lines,
            vec![
                "app::client::run at src/client.rs:40:9",
                "app::client::ping_loop at src/client.rs:57:9",
                "tokio::sync::mpsc::bounded::Receiver<T>::recv",
            ]
        );
    }

    #[test]
    fn no_user_frame_means_nothing_to_show() {
        let frames = vec![frame(
            "tokio::x::h8eb63932efc44822",
            "/root/.cargo/registry/x.rs",
            1,
        )];
        assert!(trim(&frames, None).is_empty());
    }

    #[test]
    fn names_lose_hashes_and_closures() {
        assert_eq!(
            clean_name("a::b::{{closure}}::{{closure}}::h8eb63932efc44822"),
            "a::b"
        );
        assert_eq!(clean_name("a::hash"), "a::hash");
    }
}
