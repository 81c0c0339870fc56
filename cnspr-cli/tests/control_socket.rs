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
    let three = client.ask("[1,2,3]");
    let codes: Vec<i64> = three
        .as_array()
        .expect("a batch's answers")
        .iter()
        .map(error_code)
        .collect();
    assert_eq!(codes, [-32600, -32600, -32600], "{three}");
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

/// The examples of the JSON-RPC 2.0 specification, section 7, with this daemon's methods
/// in place of `subtract`, `sum` and `notify_hello`.
#[test]
fn batches_null_ids_and_positional_params_follow_the_specification() {
    let root = Root::new();
    let desk = Device::started(&root, "desk");
    let mut client = Connection::open(&desk);
    // Parameters by position, and by name.
    let put = client.ask(r#"{"jsonrpc":"2.0","method":"kv.put","params":["colour","blue"],"id":1}"#);
    assert_eq!(put["id"], 1, "{put}");
    assert_eq!(put["result"]["key"], "colour", "{put}");
    let got = client.ask(r#"{"jsonrpc":"2.0","method":"kv.get","params":{"key":"colour"},"id":2}"#);
    assert_eq!(got["result"]["value"], "blue", "{got}");
    let too_many = client.ask(r#"{"jsonrpc":"2.0","method":"kv.delete","params":["a","b"],"id":3}"#);
    assert_eq!(error_code(&too_many), -32602);
    // `id: null` is a request, answered with `id: null`.
    let null_id = client.ask(r#"{"jsonrpc":"2.0","method":"id","id":null}"#);
    assert!(null_id["result"]["id"].is_string(), "{null_id}");
    assert!(null_id.get("id").is_some_and(Value::is_null), "{null_id}");
    // A notification is carried out and not answered: the next line answers the next
    // request.
    client.send(r#"{"jsonrpc":"2.0","method":"kv.put","params":["shape","round"]}"#);
    let next = client.ask(r#"{"jsonrpc":"2.0","method":"kv.get","params":["shape"],"id":"after"}"#);
    assert_eq!(
        (next["id"].as_str(), next["result"]["value"].as_str()),
        (Some("after"), Some("round"))
    );
    // A batch that is not valid JSON, and an empty one: one error each.
    let broken = client.ask(r#"[{"jsonrpc":"2.0","method":"status","id":"1"},{"jsonrpc":"2.0","method"]"#);
    assert_eq!(error_code(&broken), -32700);
    assert!(broken["id"].is_null());
    assert_eq!(error_code(&client.ask("[]")), -32600);
    assert_eq!(error_code(&client.ask("[1]")[0]), -32600);
    // A mixed batch: answers for the requests, in order, none for the notifications.
    let mixed = client.ask(
        r#"[{"jsonrpc":"2.0","method":"kv.get","params":["colour"],"id":"1"},{"jsonrpc":"2.0","method":"kv.put","params":["size","7"]},{"jsonrpc":"2.0","method":"kv.list","params":[""],"id":"2"},{"foo":"boo"},{"jsonrpc":"2.0","method":"foo.get","params":{"name":"myself"},"id":"5"},{"jsonrpc":"2.0","method":"monitor","id":"9"}]"#,
    );
    let answers = mixed.as_array().unwrap_or_else(|| panic!("an array: {mixed}"));
    assert_eq!(answers.len(), 5, "{mixed}");
    assert_eq!(
        (answers[0]["id"].as_str(), answers[0]["result"]["value"].as_str()),
        (Some("1"), Some("blue"))
    );
    let keys: Vec<&str> = answers[1]["result"]["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("kv.list's keys: {}", answers[1]))
        .iter()
        .filter_map(|e| e["key"].as_str())
        .collect();
    assert!(
        keys.contains(&"size"),
        "the notification before it was carried out: {keys:?}"
    );
    assert_eq!(
        (error_code(&answers[2]), answers[2]["id"].is_null()),
        (-32600, true)
    );
    assert_eq!(
        (error_code(&answers[3]), answers[3]["id"].as_str()),
        (-32601, Some("5"))
    );
    assert_eq!(
        (error_code(&answers[4]), answers[4]["id"].as_str()),
        (-32600, Some("9")),
        "no subscription in a batch"
    );
    // A batch of notifications only: no answer at all.
    client.send(r#"[{"jsonrpc":"2.0","method":"kv.put","params":["a","1"]},{"jsonrpc":"2.0","method":"kv.put","params":["b","2"]}]"#);
    let after = client.ask(r#"{"jsonrpc":"2.0","method":"kv.get","params":["b"],"id":7}"#);
    assert_eq!(
        (after["id"].as_i64(), after["result"]["value"].as_str()),
        (Some(7), Some("2"))
    );
    // Too large a batch.
    let many = format!(
        "[{}]",
        vec![r#"{"jsonrpc":"2.0","method":"id","id":1}"#; 101].join(",")
    );
    assert_eq!(error_code(&client.ask(&many)), -32600);
}

#[test]
fn idle_clients_are_let_go_and_a_directory_others_may_write_is_refused() {
    let root = Root::new();
    let mut desk = Device::new(&root, "desk");
    // Others may write to the socket's directory (the home here): they could put a
    // socket of their own in the daemon's place, so the daemon does not start.
    std::fs::set_permissions(&desk.home, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let refused = desk.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert!(!refused.status.success());
    assert!(
        support::stderr(&refused).contains("chmod go-w"),
        "{}",
        support::stderr(&refused)
    );
    std::fs::set_permissions(&desk.home, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::write(desk.home.join("config.toml"), "[limits]\ncontrol_idle_secs = 1\n").expect("config");
    desk.start();
    // A client that sends nothing is disconnected: its read ends.
    let silent = UnixStream::connect(desk.socket()).expect("connects");
    silent.set_read_timeout(Some(support::DEADLINE)).expect("timeout");
    let mut rest = Vec::new();
    let read = std::io::Read::read_to_end(&mut &silent, &mut rest);
    assert!(
        read.is_ok_and(|n| n == 0),
        "the daemon closed the idle connection"
    );
    // One that keeps asking is served throughout.
    let mut busy = Connection::open(&desk);
    for _ in 0..3 {
        std::thread::sleep(std::time::Duration::from_millis(600));
        assert!(busy.ask(r#"{"jsonrpc":"2.0","id":1,"method":"status"}"#)["result"].is_object());
    }
}
