//! Failures on the control socket carry their kind: a code of their own and a `data`
//! object a program can act on; the CLI decides by the code (a ping that timed out is
//! tried again, any other refusal ends it), and prints the same sentences as ever.

mod support;

use serde_json::{json, Value};
use support::{mesh, stderr, Connection, Device, Root};

/// The `error` of the answer to `request`, which must be one.
fn refused(connection: &mut Connection, request: Value) -> Value {
    let answer = connection.ask(&request.to_string());
    assert_eq!(answer["id"], request["id"], "{answer}");
    answer
        .get("error")
        .cloned()
        .unwrap_or_else(|| panic!("{request} was not refused: {answer}"))
}

fn request(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

#[test]
fn each_refusal_has_its_code_and_data() {
    let root = Root::new();
    let desk = Device::started(&root, "desk");
    let mut client = Connection::open(&desk);

    let unknown = refused(&mut client, request(1, "ping", json!({"peer": "phone"})));
    assert_eq!(unknown["code"], 10);
    assert_eq!(unknown["data"], json!({"kind": "unknown_peer", "given": "phone"}));
    assert_eq!(
        unknown["message"],
        "no device of the mesh is called or starts with \"phone\""
    );

    let missing = refused(&mut client, request(2, "kv.get", json!({"key": "blob"})));
    assert_eq!(
        (missing["code"].clone(), missing["data"].clone()),
        (json!(30), json!({"kind": "no_key", "key": "blob"}))
    );

    let roster = refused(
        &mut client,
        request(3, "kv.put", json!({"key": "_roster/x", "value": "v"})),
    );
    assert_eq!(roster["code"], 31);
    assert_eq!(
        roster["data"],
        json!({"kind": "key_reserved", "key": "_roster/x"})
    );

    let long_key = "k".repeat(1025);
    let too_long = refused(&mut client, request(4, "kv.delete", json!({ "key": long_key })));
    assert_eq!(
        too_long["data"],
        json!({"kind": "key_length", "bytes": 1025, "limit": 1024})
    );
    assert_eq!(too_long["code"], 32);

    let tag = refused(&mut client, request(5, "event", json!({"tag": "a..b"})));
    assert_eq!(tag["code"], 21);
    assert_eq!(tag["data"]["kind"], "invalid_tag");
    assert_eq!(tag["data"]["tag"], "a..b");

    let damaged = refused(&mut client, request(6, "join", json!({"token": "CNSPR1AAAA"})));
    assert_eq!(
        (damaged["code"].clone(), damaged["data"]["kind"].clone()),
        (json!(1), json!("invalid_token"))
    );

    let token = desk.json(&["invite"])["token"].clone();
    let own = refused(&mut client, request(7, "join", json!({ "token": token })));
    assert_eq!(own["code"], 3);
    assert_eq!(own["data"], json!({"kind": "own_invite"}));

    // JSON-RPC's own codes carry no data; a method that takes no parameters refuses
    // unknown ones like every other method, and the connection goes on.
    let typo = refused(&mut client, request(8, "status", json!({"verbose": true})));
    assert_eq!(typo["code"], -32602);
    assert!(typo.get("data").is_none(), "{typo}");
    let monitor_typo = refused(&mut client, request(9, "monitor", json!({"from": 0})));
    assert_eq!(monitor_typo["code"], -32602);
    let status = client.ask(&request(10, "status", json!({})).to_string());
    assert_eq!(status["result"]["name"], "desk");

    // The CLI still says it in one sentence and exits 1.
    let output = desk.run(&["kv", "get", "blob"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stderr(&output), "cnspr: no key \"blob\"\n");
}

#[test]
fn a_ping_that_times_out_says_so_and_the_cli_tries_again() {
    let root = Root::new();
    let devices = mesh(&root, &["desk", "laptop"]);
    devices[1].signal("STOP");
    let mut client = Connection::open(&devices[0]);
    let timeout = refused(
        &mut client,
        request(1, "ping", json!({"peer": "laptop", "timeout_ms": 300})),
    );
    assert_eq!(timeout["code"], 15);
    assert_eq!(timeout["data"], json!({"kind": "timeout", "timeout_ms": 300}));
    assert_eq!(timeout["message"], "no answer within 300 ms");
    // A timeout is not the end of `cnspr ping`: every round is tried, then it fails.
    let output = devices[0].run(&["ping", "laptop", "--count", "2"]);
    devices[1].signal("CONT");
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        text.matches("laptop: no answer within 2000 ms").count(),
        2,
        "{text}"
    );
    assert!(text.contains("2 sent, 0 answered"), "{text}");
    assert_eq!(stderr(&output), "cnspr: laptop did not answer\n");
}
