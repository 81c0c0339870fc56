//! What each command prints: aligned tables and short sentences for people, the
//! daemon's JSON as is with `--json`.

use std::time::Duration;

use cnspr_runtime::clock::unix_now;
use serde_json::{json, Value};

use crate::client::Client;
use crate::table::Table;
use crate::CliError;

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

fn print_json(value: &Value) {
    println!("{value}");
}

/// A one-sentence result.
pub fn sentence(json: bool, value: Value, sentence: &str) {
    if json {
        print_json(&value);
    } else {
        println!("{sentence}");
    }
}

/// `init` and `id`.
pub fn identity(json: bool, id: &str, name: &str, intro: &str) {
    if json {
        print_json(&json!({"id": id, "name": name}));
        return;
    }
    if !intro.is_empty() {
        println!("{intro}");
    }
    println!("name  {name}\nid    {id}");
}

/// `invite`.
pub fn invite(json: bool, qr: bool, result: &Value) -> Result<(), CliError> {
    let token = text(result, "token");
    if json {
        print_json(result);
        return Ok(());
    }
    println!("{token}");
    if qr {
        let code = qrcode::QrCode::new(token.as_bytes())?;
        let drawing = code
            .render::<qrcode::render::unicode::Dense1x2>()
            .quiet_zone(true)
            .build();
        eprintln!("{drawing}");
    }
    let minutes = result
        .get("expires_unix_secs")
        .and_then(Value::as_u64)
        .map(|expires| expires.saturating_sub(unix_now()).div_ceil(60));
    if let Some(minutes) = minutes {
        eprintln!("On the other device run: cnspr join <token>   (valid once, for {minutes} min)");
    }
    Ok(())
}

/// `join`.
pub fn joined(json: bool, result: &Value) {
    let sentence_text = format!("Paired with {}.", text(result, "inviter"));
    sentence(json, result.clone(), &sentence_text);
}

fn millis_text(value: Option<&Value>) -> String {
    match value.and_then(Value::as_f64) {
        Some(ms) if ms < 10.0 => format!("{ms:.2} ms"),
        Some(ms) => format!("{ms:.0} ms"),
        None => "-".into(),
    }
}

fn ago_text(value: Option<&Value>) -> String {
    match value.and_then(Value::as_f64) {
        Some(secs) if secs < 1.0 => "now".into(),
        Some(secs) if secs < 120.0 => format!("{secs:.0} s ago"),
        Some(secs) if secs < 7200.0 => format!("{:.0} min ago", secs / 60.0),
        Some(secs) => format!("{:.0} h ago", secs / 3600.0),
        None => "never".into(),
    }
}

/// `members`.
pub fn members(json: bool, result: &Value) {
    if json {
        print_json(result);
        return;
    }
    let mut table = Table::new(&["NAME", "ID", "STATE", "ADDRESS", "RTT", "LAST SEEN"]);
    for member in result
        .get("members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let is_self = member.get("self").and_then(Value::as_bool) == Some(true);
        let name = member
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty());
        table.row(vec![
            name.unwrap_or("?").to_owned(),
            text(member, "short_id").to_owned(),
            if is_self {
                "self".into()
            } else {
                text(member, "state").to_owned()
            },
            member
                .get("address")
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_owned(),
            millis_text(member.get("rtt_ms")),
            if is_self {
                "-".into()
            } else {
                ago_text(member.get("last_seen_secs"))
            },
        ]);
    }
    print!("{}", table.render());
}

/// `ping`: one round trip a second, like ping(8); fails if none came back.
pub fn ping(json: bool, client: &mut Client, peer: &str, count: u32) -> Result<(), CliError> {
    let mut rtts = Vec::new();
    for round in 0..count {
        if round > 0 {
            std::thread::sleep(Duration::from_secs(1));
        }
        match client.call("ping", json!({ "peer": peer })) {
            Ok(result) => {
                let rtt = result.get("rtt_ms").and_then(Value::as_f64).unwrap_or(f64::NAN);
                rtts.push(rtt);
                if json {
                    print_json(&result);
                } else {
                    println!("answer from {peer}: {}", millis_text(result.get("rtt_ms")));
                }
            }
            Err(CliError(message)) if rtts.is_empty() && round == 0 && !message.contains("no answer") => {
                return Err(CliError(message));
            }
            Err(CliError(message)) if json => print_json(&json!({"peer": peer, "error": message})),
            Err(CliError(message)) => println!("{peer}: {message}"),
        }
    }
    if !json {
        let (min, max) = rtts
            .iter()
            .fold((f64::MAX, 0f64), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
        let avg = rtts.iter().sum::<f64>() / rtts.len().max(1) as f64;
        let stats = if rtts.is_empty() {
            String::new()
        } else {
            format!(", rtt min/avg/max {min:.2}/{avg:.2}/{max:.2} ms")
        };
        println!("{count} sent, {} answered{stats}", rtts.len());
    }
    if rtts.is_empty() {
        return Err(CliError::new(format!("{peer} did not answer")));
    }
    Ok(())
}

/// `status`.
pub fn status(json: bool, result: &Value) {
    if json {
        print_json(result);
        return;
    }
    let peers = result
        .get("peers")
        .and_then(Value::as_object)
        .map(|states| {
            states
                .iter()
                .map(|(state, n)| format!("{n} {state}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "none".into());
    let uptime = result.get("uptime_secs").and_then(Value::as_u64).unwrap_or(0);
    let datagrams = result.get("datagrams").cloned().unwrap_or_default();
    let number = |v: &Value, k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    let mut table = Table::new(&["name", text(result, "name")]);
    table.row(vec!["id".into(), text(result, "id").into()]);
    table.row(vec!["version".into(), text(result, "version").into()]);
    table.row(vec![
        "uptime".into(),
        format!("{}h {:02}m {:02}s", uptime / 3600, uptime / 60 % 60, uptime % 60),
    ]);
    table.row(vec!["devices".into(), number(result, "devices").to_string()]);
    table.row(vec!["peers".into(), peers]);
    table.row(vec![
        "datagrams".into(),
        format!(
            "{} sent, {} received, {} rejected",
            number(&datagrams, "sent"),
            number(&datagrams, "received"),
            number(&datagrams, "rejected")
        ),
    ]);
    print!("{}", table.render());
}

/// `interfaces`.
pub fn interfaces(json: bool, result: &Value) {
    if json {
        print_json(result);
        return;
    }
    let list = |key: &str| -> Vec<String> {
        result
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let mut table = Table::new(&["LISTENING ON", "REACHABLE AT"]);
    let (bound, reachable) = (list("listening"), list("addresses"));
    for i in 0..bound.len().max(reachable.len()) {
        table.row(vec![
            bound.get(i).cloned().unwrap_or_default(),
            reachable.get(i).cloned().unwrap_or_default(),
        ]);
    }
    print!("{}", table.render());
}

/// `remove`.
pub fn removed(json: bool, result: &Value) {
    let who = match result.get("name").and_then(Value::as_str) {
        Some(name) => format!("{name} ({})", text(result, "removed")),
        None => text(result, "removed").to_owned(),
    };
    sentence(
        json,
        result.clone(),
        &format!("Removed {who}: every device will refuse it from now on."),
    );
}

/// `monitor`: one line per notice until the daemon stops.
pub fn monitor(json: bool, mut client: Client) -> Result<(), CliError> {
    client.subscribe("monitor")?;
    if !json {
        eprintln!("Watching the daemon; Ctrl-C to stop.");
    }
    loop {
        let message = client.read()?;
        let Some(notice) = message.get("params") else {
            continue;
        };
        if json {
            print_json(notice);
            continue;
        }
        let who = |n: &Value| match n.get("name").and_then(Value::as_str) {
            Some(name) => format!("{name} ({})", &text(n, "peer")[..7.min(text(n, "peer").len())]),
            None => text(n, "peer").to_owned(),
        };
        let line = match text(notice, "event") {
            "peer_state" => format!(
                "{}: {} -> {}",
                who(notice),
                text(notice, "previous"),
                text(notice, "state")
            ),
            "peer_address" => format!("{}: now at {}", who(notice), text(notice, "address")),
            "paired" => format!("{} joined the mesh", text(notice, "peer")),
            "roster_changed" => format!(
                "roster changed: {} devices",
                notice.get("devices").unwrap_or(&Value::Null)
            ),
            "message" => format!(
                "message {} from {} ({} bytes)",
                text(notice, "tag"),
                who_from(notice, "from"),
                notice["bytes"]
            ),
            "event" => format!(
                "event {} from {} ({} bytes)",
                text(notice, "tag"),
                who_from(notice, "origin"),
                notice["bytes"]
            ),
            "query" => format!("query {} from {}", text(notice, "tag"), who_from(notice, "from")),
            "handler_run" => {
                let ended = ended_text(notice);
                format!(
                    "handler {}: {ended} after {} ms",
                    text(notice, "handler"),
                    notice["duration_ms"]
                )
            }
            other => format!("{other}: {notice}"),
        };
        println!("{line}");
    }
}

fn who_from(notice: &Value, key: &str) -> String {
    match notice.get("name").and_then(Value::as_str) {
        Some(name) => name.to_owned(),
        None => text(notice, key).get(..7).unwrap_or_default().to_owned(),
    }
}

/// How a handler run ended, in words.
fn ended_text(run: &Value) -> String {
    match (
        run.get("exit_code").and_then(Value::as_i64),
        run["timed_out"] == true,
    ) {
        (_, true) => "killed at the timeout".to_owned(),
        (Some(code), _) => format!("exit {code}"),
        (None, _) => run
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("killed by a signal")
            .to_owned(),
    }
}

/// `config`.
pub fn config(json: bool, config: &cnspr_runtime::config::Config) -> Result<(), CliError> {
    if json {
        let mut effective = config.clone();
        effective.name = Some(config.device_name());
        print_json(&serde_json::to_value(&effective)?);
    } else {
        print!("{}", config.to_toml());
    }
    Ok(())
}

/// `send`.
pub fn sent(json: bool, result: &Value) {
    let text = if result.get("delivered").and_then(Value::as_bool) == Some(true) {
        "Delivered."
    } else {
        "Queued: it will be delivered when the device is reachable."
    };
    sentence(json, result.clone(), text);
}

fn shown_payload(value: &Value, text_key: &str, b64_key: &str) -> String {
    match (
        value.get(text_key).and_then(Value::as_str),
        value.get(b64_key).and_then(Value::as_str),
    ) {
        (Some(text), _) => text.trim_end_matches('\n').to_owned(),
        (None, Some(b64)) => format!("({} bytes of binary, base64) {b64}", b64.len() / 4 * 3),
        (None, None) => String::new(),
    }
}

fn who(value: &Value) -> String {
    let peer = text(value, "peer");
    match value.get("name").and_then(Value::as_str) {
        Some(name) => name.to_owned(),
        None => peer.get(..7).unwrap_or(peer).to_owned(),
    }
}

/// `query`: answers as they arrive, then who did not answer.
pub fn query(json: bool, client: &mut Client, params: Value) -> Result<(), CliError> {
    let result = client.call_streaming("query", params, |notification| {
        let answer = notification.get("params").cloned().unwrap_or_default();
        if json {
            print_json(&answer);
        } else {
            println!(
                "{}: {}",
                who(&answer),
                shown_payload(&answer, "message", "message_b64")
            );
        }
    })?;
    if json {
        print_json(&json!({"done": result}));
        return Ok(());
    }
    for (key, what) in [("unreachable", "not reachable"), ("no_answer", "no answer")] {
        for peer in result.get(key).and_then(Value::as_array).into_iter().flatten() {
            println!("{}: ({what})", who(peer));
        }
    }
    Ok(())
}

/// `handlers`.
pub fn handlers(json: bool, result: &Value) {
    if json {
        print_json(result);
        return;
    }
    println!("Handler directory: {}", text(result, "directory"));
    let mut table = Table::new(&["HANDLER", "TAKES", "FROM"]);
    for handler in result
        .get("handlers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let family = text(handler, "family");
        let takes = match (family, handler.get("takes").and_then(Value::as_str)) {
            ("user", Some(tag)) => format!("tag {tag}"),
            (family, Some(which)) => format!("{family} {which}"),
            (family, None) => format!("every {family} event"),
        };
        let from = handler
            .get("device")
            .and_then(Value::as_str)
            .unwrap_or("any")
            .to_owned();
        table.row(vec![text(handler, "handler").to_owned(), takes, from]);
    }
    print!("{}", table.render());
    for ignored in result
        .get("ignored")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        println!(
            "ignored {}: {}",
            text(ignored, "handler"),
            text(ignored, "reason")
        );
    }
}

/// `handlers test`.
pub fn handler_runs(json: bool, result: &Value) -> Result<(), CliError> {
    if json {
        print_json(result);
        return Ok(());
    }
    let runs = result
        .get("runs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if runs.is_empty() {
        println!("No handler takes that tag.");
    }
    for run in &runs {
        let ended = ended_text(run);
        let duration = run.get("duration_ms").and_then(Value::as_u64).unwrap_or(0);
        println!("{}: {ended} after {duration} ms", text(run, "handler"));
        let stdout = shown_payload(run, "stdout", "stdout_b64");
        if !stdout.is_empty() {
            println!("  stdout: {stdout}");
        }
        let stderr = text(run, "stderr_tail").trim_end();
        if !stderr.is_empty() {
            println!("  stderr: {stderr}");
        }
    }
    Ok(())
}

/// `kv get`: the value as is (so it can be piped), or every concurrent value with `--all`.
pub fn kv_get(json: bool, result: &Value) -> Result<(), CliError> {
    if json {
        print_json(result);
        return Ok(());
    }
    let values = result.get("values").and_then(Value::as_array);
    match values {
        Some(values) => {
            let mut table = Table::new(&["WRITTEN BY", "WHEN (UNIX µs)", "VALUE"]);
            for value in values {
                let shown = if value["deleted"] == true {
                    "(deleted)".to_owned()
                } else {
                    shown_payload(value, "value", "value_b64")
                };
                table.row(vec![
                    who_from(value, "device"),
                    value["written_unix_micros"].to_string(),
                    shown,
                ]);
            }
            print!("{}", table.render());
        }
        None => {
            use std::io::Write;
            let bytes = match (
                result.get("value").and_then(Value::as_str),
                result.get("value_b64").and_then(Value::as_str),
            ) {
                (Some(text), _) => text.as_bytes().to_vec(),
                (None, Some(b64)) => data_encoding::BASE64
                    .decode(b64.as_bytes())
                    .map_err(|e| CliError::new(format!("the daemon sent bad base64: {e}")))?,
                (None, None) => Vec::new(),
            };
            std::io::stdout().write_all(&bytes)?;
            if std::io::IsTerminal::is_terminal(&std::io::stdout()) && !bytes.ends_with(b"\n") {
                println!();
            }
        }
    }
    if result["conflict"] == true {
        eprintln!("cnspr: concurrent writes exist for this key; `cnspr kv get --all` shows them, a new put resolves them");
    }
    Ok(())
}

/// `kv ls`.
pub fn kv_list(json: bool, result: &Value) {
    if json {
        print_json(result);
        return;
    }
    let mut table = Table::new(&["KEY", "VALUE"]);
    for entry in result.get("keys").and_then(Value::as_array).into_iter().flatten() {
        let mut value = shown_payload(entry, "value", "value_b64");
        if entry["conflict"] == true {
            value.push_str("  (conflict)");
        }
        table.row(vec![text(entry, "key").to_owned(), value]);
    }
    print!("{}", table.render());
}

/// `kv watch`: one line per change (`CURSOR KEY VALUE`), until the daemon stops.
pub fn kv_watch(json: bool, client: &mut Client) -> Result<(), CliError> {
    loop {
        let message = client.read()?;
        let Some(change) = message.get("params") else {
            continue;
        };
        if json {
            print_json(change);
            continue;
        }
        let value = if change["deleted"] == true {
            "(deleted)".to_owned()
        } else {
            shown_payload(change, "value", "value_b64")
        };
        let conflict = if change["conflict"] == true {
            "  (conflict)"
        } else {
            ""
        };
        println!("{} {} {value}{conflict}", change["cursor"], text(change, "key"));
    }
}
