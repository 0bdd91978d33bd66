//! Who may use the API: over TCP only a request with the token (except
//! `/healthz`); on the socket (mode 0600) anyone who can open it. Where the
//! token comes from; `port: 0`; a port in use.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

use procman_core::outcome::ProcessEnd;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tcp_only_the_right_bearer_token_passes() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (a, _) = runner(&t, "a", "");
        let port = free_port();
        let api = Api::start(&t, &(header(&t, port, "") + &a), port).await;

        // The generated token: 64 hex digits in a 0600 file.
        let file = api.state.join(procman_api::TOKEN_NAME);
        let meta = std::fs::symlink_metadata(&file).expect("the token file");
        assert!(meta.is_file());
        assert_eq!(meta.mode() & 0o777, 0o600);
        let token = api.token();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        // It is never logged.
        assert!(!api.m.log_text().contains(&token), "{}", api.m.log_text());

        let path = "/api/v1/processes";
        let refused = [
            vec![],
            vec![("authorization", "Bearer wrong".to_string())],
            vec![("authorization", format!("Bearer {token}x"))],
            vec![("authorization", format!("Basic {token}"))],
            vec![("authorization", token.clone())],
            vec![("authorization", "Bearer".to_string())],
        ];
        for headers in &refused {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = request(&api.tcp(), "GET", path, &h, None).await;
            assert_eq!(r.status, 401, "{headers:?}: {}", r.text());
            assert_eq!(r.error_code(), "unauthorized");
            assert_eq!(r.header("www-authenticate"), "Bearer");
            assert!(!r.text().contains(&token));
        }
        for scheme in ["Bearer", "bearer"] {
            let auth = format!("{scheme} {token}");
            let r = request(&api.tcp(), "GET", path, &[("authorization", &auth)], None).await;
            assert_eq!(r.status, 200, "{scheme}: {}", r.text());
            assert_eq!(r.json()[0]["id"], "a");
        }
        // An unknown route is not told apart from a known one without it.
        let r = request(&api.tcp(), "GET", "/api/v1/nope", &[], None).await;
        assert_eq!(r.status, 401, "{}", r.text());

        // Open to all: /healthz over TCP, anything over the socket.
        let r = request(&api.tcp(), "GET", "/healthz", &[], None).await;
        assert_eq!((r.status, r.text().as_str()), (200, "ok"));
        let r = request(&api.unix(), "GET", path, &[], None).await;
        assert_eq!(r.status, 200, "{}", r.text());

        // The socket: 0600, a socket, ours.
        let meta = std::fs::symlink_metadata(api.socket()).expect("the socket");
        assert_eq!(meta.mode() & 0o170000, 0o140000, "not a socket");
        assert_eq!(meta.mode() & 0o777, 0o600);

        api.stop().await;
    })
    .await
    .expect("watchdog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_from_the_config_or_a_private_file() {
    tokio::time::timeout(WATCHDOG, async {
        // api_token: that one, and no generated file.
        let t = Scratch::new();
        let (a, _) = runner(&t, "a", "");
        let port = free_port();
        let yaml = header(&t, port, "  api_token: \"configured-secret\"\n") + &a;
        let api = Api::start(&t, &yaml, port).await;
        assert!(!api.state.join(procman_api::TOKEN_NAME).exists());
        let ok = [("authorization", "Bearer configured-secret")];
        let r = request(&api.tcp(), "GET", "/api/v1/manager", &ok, None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        api.stop().await;

        // api_token_file (0600, trailing newline): its first line.
        let t = Scratch::new();
        let (a, _) = runner(&t, "a", "");
        let file = t.path("token");
        std::fs::write(&file, "from-a-file\n").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let port = free_port();
        let extra = format!("  api_token_file: \"{}\"\n", file.display());
        let api = Api::start(&t, &(header(&t, port, &extra) + &a), port).await;
        let ok = [("authorization", "Bearer from-a-file")];
        let r = request(&api.tcp(), "GET", "/api/v1/manager", &ok, None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        api.stop().await;
    })
    .await
    .expect("watchdog");
}

/// `procman run` on `yaml` must fail at start with exit 1, saying
/// `needle`, with nothing started and no socket left.
async fn refused_at_start(t: &Scratch, yaml: &str, needle: &str) {
    let _cleanup = KillOnDrop(t.dir.path().display().to_string());
    let config = config_file(t, yaml);
    let mut m = Running::run_logged(&config, &t.path("manager.log"), &[]);
    let end = m.ended(LONG).await;
    let log = m.log_text();
    assert_eq!(end, ProcessEnd::Exited(1), "{log}");
    assert!(log.contains(needle), "{needle:?} not in:\n{log}");
    assert!(!log.contains("procman started"), "{log}");
    assert!(!t.path("a.pid").exists(), "a process started");
    assert!(!t.path("state").join(procman_api::SOCKET_NAME).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_or_a_readable_token_file_is_a_clear_startup_error() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (a, _) = runner(&t, "a", "");
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = taken.local_addr().expect("addr").port();
        let needle = format!("cannot listen for the API on 127.0.0.1:{port}");
        refused_at_start(&t, &(header(&t, port, "") + &a), &needle).await;
        let log = std::fs::read_to_string(t.path("manager.log")).unwrap_or_default();
        assert!(log.contains("set process_manager.port"), "{log}");
        drop(taken);

        let t = Scratch::new();
        let (a, _) = runner(&t, "a", "");
        let file = t.path("token");
        std::fs::write(&file, "secret\n").expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let extra = format!("  api_token_file: \"{}\"\n", file.display());
        let yaml = header(&t, free_port(), &extra) + &a;
        refused_at_start(&t, &yaml, "is readable by every user").await;
        let log = std::fs::read_to_string(t.path("manager.log")).unwrap_or_default();
        assert!(!log.contains("secret"), "{log}");
    })
    .await
    .expect("watchdog");
}

/// Socket inodes the process `pid` listens on over TCP.
fn tcp_listening(pid: u32) -> Vec<String> {
    let mut listening = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{}", &table[10..]))
            .unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.get(3) == Some(&"0A") {
                if let Some(inode) = f.get(9) {
                    listening.push(format!("socket:[{inode}]"));
                }
            }
        }
    }
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("fds");
    fds.flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|l| l.display().to_string())
        .filter(|l| listening.contains(l))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_0_means_no_tcp_listener_and_only_the_socket() {
    tokio::time::timeout(WATCHDOG, async {
        let t = Scratch::new();
        let (a, _) = runner(&t, "a", "");
        let api = Api::start(&t, &(header(&t, 0, "") + &a), 0).await;
        assert_eq!(tcp_listening(api.m.pid), Vec::<String>::new());
        assert!(!api.state.join(procman_api::TOKEN_NAME).exists());
        let r = api.local("GET", "/api/v1/processes", None).await;
        assert_eq!(r.status, 200);
        api.stop().await;

        // With a port, exactly one listener.
        let t = Scratch::new();
        let (a, _) = runner(&t, "a", "");
        let port = free_port();
        let api = Api::start(&t, &(header(&t, port, "") + &a), port).await;
        assert_eq!(tcp_listening(api.m.pid).len(), 1);
        api.stop().await;
    })
    .await
    .expect("watchdog");
}
