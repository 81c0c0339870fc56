//! The control socket under bad input: every bad request gets a JSON-RPC error (or the
//! connection is cut for an overlong line), and every other client is served as before.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;

use serde_json::{json, Value};
use support::{pair, Connection, Device, Root};

fn error_code(answer: &Value) -> i64 {
    answer["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {answer}"))
}

#[test]
fn bad_requests_get_errors_and_nobody_else_notices() {
    let root = Root::new();
    let mut desk = Device::new(&root, "desk");
    std::fs::write(
        desk.home.join("config.toml"),
        "[limits]\nrequest_line_bytes_max = 65536\n",
    )
    .expect("config");
    desk.start();
    let mode = std::fs::metadata(desk.socket())
        .expect("socket exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the control socket is owner-only");

    let mut bystander = Connection::open(&desk);
    let mut client = Connection::open(&desk);
    assert_eq!(error_code(&client.ask("{not json")), -32700);
    assert_eq!(error_code(&client.ask("[1,2,3]")), -32600);
    assert_eq!(
        error_code(&client.ask(r#"{"jsonrpc":"1.0","id":1,"method":"status"}"#)),
        -32600
    );
    assert_eq!(
        error_code(&client.ask(r#"{"jsonrpc":"2.0","id":2,"method":"fly"}"#)),
        -32601
    );
    let wrong_type = client.ask(r#"{"jsonrpc":"2.0","id":3,"method":"ping","params":{"peer":5}}"#);
    assert_eq!(error_code(&wrong_type), -32602);
    assert_eq!(wrong_type["id"], 3);
    assert_eq!(
        error_code(&client.ask(r#"{"jsonrpc":"2.0","id":4,"method":"ping","params":[1]}"#)),
        -32602
    );
    assert_eq!(
        error_code(
            &client.ask(r#"{"jsonrpc":"2.0","id":5,"method":"join","params":{"token":"CNSPR1AAAA"}}"#)
        ),
        1
    );
    // A notification (no id) gets no answer; the next request is answered.
    client.send(r#"{"jsonrpc":"2.0","method":"status"}"#);
    let status = client.ask(r#"{"jsonrpc":"2.0","id":6,"method":"status"}"#);
    assert_eq!(status["id"], 6);
    assert_eq!(status["result"]["name"], "desk");

    // Overlong: an error, then the connection is closed.
    let mut greedy = Connection::open(&desk);
    let long = format!(
        r#"{{"jsonrpc":"2.0","id":7,"method":"status","params":{{"x":"{}"}}}}"#,
        "a".repeat(70_000)
    );
    // The daemon may cut the connection before the line is even finished: writing the
    // rest can then fail, which is the point.
    let _ = greedy.writer.write_all(long.as_bytes());
    let _ = greedy.writer.write_all(b"\n");
    assert_eq!(error_code(&greedy.read().expect("an error first")), -32600);
    assert!(greedy.read().is_none(), "then the connection is closed");

    // Clients that vanish mid-request.
    for partial in [
        r#"{"jsonrpc":"2.0","id":8,"meth"#,
        r#"{"jsonrpc":"2.0","id":9,"method":"invite"}"#,
    ] {
        let mut vanishing = UnixStream::connect(desk.socket()).expect("connects");
        vanishing.write_all(partial.as_bytes()).expect("writes");
        if !partial.ends_with('}') {
            drop(vanishing);
        } else {
            vanishing.write_all(b"\n").expect("writes");
            drop(vanishing);
        }
    }

    // A thousand clients at once.
    let clients: Vec<std::thread::JoinHandle<Value>> = (0..1000)
        .map(|i| {
            let socket = desk.socket();
            std::thread::spawn(move || {
                let mut stream = UnixStream::connect(socket).expect("connects");
                stream.set_read_timeout(Some(support::DEADLINE)).expect("timeout");
                let request = json!({"jsonrpc": "2.0", "id": i, "method": "members"});
                stream
                    .write_all(format!("{request}\n").as_bytes())
                    .expect("writes");
                let mut answer = String::new();
                BufReader::new(stream).read_line(&mut answer).expect("reads");
                serde_json::from_str(&answer).expect("JSON")
            })
        })
        .collect();
    for (i, client) in clients.into_iter().enumerate() {
        let answer = client.join().expect("client thread");
        assert_eq!(answer["id"], i);
        assert!(answer["result"]["members"].is_array());
    }

    // The first connection never noticed any of it.
    let answer = bystander.ask(r#"{"jsonrpc":"2.0","id":"still-here","method":"members"}"#);
    assert_eq!(answer["id"], "still-here");
    assert_eq!(answer["result"]["members"][0]["name"], "desk");
}

#[test]
fn monitor_streams_what_the_daemon_sees() {
    let root = Root::new();
    let desk = Device::started(&root, "desk");
    let mut monitor = Connection::open(&desk);
    let subscribed = monitor.ask(r#"{"jsonrpc":"2.0","id":1,"method":"monitor"}"#);
    assert_eq!(subscribed["result"]["subscribed"], true);
    let laptop = Device::started(&root, "laptop");
    pair(&desk, &laptop);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|n: &Value| n["event"] == "peer_state" && n["state"] == "active")
    {
        let notice = monitor.read().expect("a notification");
        assert_eq!(notice["method"], "monitor");
        seen.push(notice["params"].clone());
    }
    assert!(seen.iter().any(|n| n["event"] == "paired"), "{seen:?}");
    // Input on a monitoring connection is ignored, and hanging up ends it cleanly.
    monitor.send("garbage");
    drop(monitor);
    assert!(desk.run(&["status"]).status.success());
}
