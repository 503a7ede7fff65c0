//! What stops a long-running command: Ctrl-C (SIGINT); SIGTERM, which is what `kill`, systemd
//! and container runtimes send; and SIGHUP, when its terminal closes.

/// Completes when the process is asked to stop, naming the signal. Must be polled inside a
/// Tokio runtime (the handlers are registered on first poll). If a handler cannot be
/// registered, that signal is left to its default action rather than stopping at once.
pub async fn shutdown() -> &'static str {
    let interrupt = async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "SIGINT",
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let on = |kind: SignalKind, name: &'static str| async move {
            match signal(kind) {
                Ok(mut received) => {
                    received.recv().await;
                    name
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            name = interrupt => name,
            name = on(SignalKind::terminate(), "SIGTERM") => name,
            name = on(SignalKind::hangup(), "SIGHUP") => name,
        }
    }
    #[cfg(not(unix))]
    interrupt.await
}

/// The exit status of a command that stopped because of `signal` (128 plus its number, as
/// shells report it).
pub fn exit_status(signal: &str) -> i32 {
    match signal {
        "SIGHUP" => 129,
        "SIGTERM" => 143,
        _ => 130,
    }
}
