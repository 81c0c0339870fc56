//! What each command prints: aligned tables and short sentences for people, the
//! daemon's answer as JSON with `--json`. Answers come typed ([`cnspr_runtime::api`]);
//! every device is shown by one label ([`PeerLabel`]).

use std::io::Write;
use std::time::Duration;

use cnspr_runtime::api::handlers::{HandlerList, HandlerRun, TestResult};
use cnspr_runtime::api::members::{
    Identity, InterfacesResult, MembersResult, Nat, PingParams, RelayStatus, RemoveResult, StatusResult,
};
use cnspr_runtime::api::messaging::{QueryParams, QueryResult, SendParams, SendResult};
use cnspr_runtime::api::netcheck::{NetcheckResult, PortMappingState, PortMappingView};
use cnspr_runtime::api::pairing::{InviteResult, JoinResult};
use cnspr_runtime::api::store::{Entry, ListResult, WatchParams};
use cnspr_runtime::api::{KvWatch, Monitor, NoParams, Notice, PeerLabel, PeerPath, Ping, Query, Send};
use cnspr_runtime::clock::unix_now;
use serde::Serialize;

use crate::client::Client;
use crate::table::Table;
use crate::CliError;

/// Prints `value` as one line of JSON (object keys in order, as the daemon writes them).
fn print_json(value: &impl Serialize) -> Result<(), CliError> {
    outln!("{}", serde_json::to_value(value)?);
    Ok(())
}

/// A one-sentence result.
pub fn sentence(json: bool, value: &impl Serialize, sentence: &str) -> Result<(), CliError> {
    if json {
        return print_json(value);
    }
    outln!("{sentence}");
    Ok(())
}

/// `init` and `id`.
pub fn identity(json: bool, identity: &Identity, intro: &str) -> Result<(), CliError> {
    if json {
        return print_json(identity);
    }
    if !intro.is_empty() {
        outln!("{intro}");
    }
    outln!("name  {}\nid    {}", identity.name, identity.id);
    Ok(())
}

/// `invite`.
pub fn invite(json: bool, qr: bool, result: &InviteResult) -> Result<(), CliError> {
    if json {
        return print_json(result);
    }
    outln!("{}", result.token);
    if qr {
        let code = qrcode::QrCode::new(result.token.as_bytes())?;
        let drawing = code
            .render::<qrcode::render::unicode::Dense1x2>()
            .quiet_zone(true)
            .build();
        eprintln!("{drawing}");
    }
    let minutes = result.expires_unix_secs.saturating_sub(unix_now()).div_ceil(60);
    eprintln!("On the other device run: cnspr join <token>   (valid once, for {minutes} min)");
    Ok(())
}

/// `join`.
pub fn joined(json: bool, result: &JoinResult) -> Result<(), CliError> {
    let inviter = PeerLabel::new(&result.inviter, None);
    sentence(json, result, &format!("Paired with {inviter}."))
}

fn millis_text(ms: Option<f64>) -> String {
    match ms {
        Some(ms) if ms < 10.0 => format!("{ms:.2} ms"),
        Some(ms) => format!("{ms:.0} ms"),
        None => "-".into(),
    }
}

fn ago_text(secs: Option<u64>) -> String {
    match secs {
        Some(0) => "now".into(),
        Some(secs) if secs < 120 => format!("{secs} s ago"),
        Some(secs) if secs < 7200 => format!("{:.0} min ago", secs as f64 / 60.0),
        Some(secs) => format!("{:.0} h ago", secs as f64 / 3600.0),
        None => "never".into(),
    }
}

/// `members`.
pub fn members(json: bool, result: &MembersResult) -> Result<(), CliError> {
    if json {
        return print_json(result);
    }
    let mut table = Table::new(&["NAME", "ID", "STATE", "PATH", "ADDRESS", "RTT", "LAST SEEN"]);
    for member in &result.members {
        let name = member.name.as_deref().filter(|n| !n.is_empty());
        table.row(vec![
            name.unwrap_or("?").to_owned(),
            member.short_id.clone(),
            match member.protocol_version {
                _ if member.is_self => "self".into(),
                Some(version) => format!("{} (speaks protocol {version}: upgrade)", member.state),
                None => member.state.to_string(),
            },
            match (member.path, &member.via) {
                (Some(PeerPath::Indirect), Some(via)) => format!(
                    "via {}",
                    member.via_name.clone().unwrap_or_else(|| via.short().to_string())
                ),
                (path, _) => path.map_or("-", PeerPath::as_str).to_owned(),
            },
            member.address.map_or_else(|| "-".to_owned(), |a| a.to_string()),
            millis_text(member.rtt_ms),
            if member.is_self {
                "-".into()
            } else {
                ago_text(member.last_seen_secs)
            },
        ]);
    }
    out!("{}", table.render());
    Ok(())
}

/// What `ping --json` prints for a round trip that failed.
#[derive(Serialize)]
struct PingFailure<'a> {
    error: &'a str,
    peer: &'a str,
}

/// `ping`: one round trip a second, like ping(8); fails if none came back. Only a round
/// trip that timed out is worth another try; any other refusal on the first ends it.
pub fn ping(json: bool, client: &mut Client, peer: &str, count: u32) -> Result<(), CliError> {
    let mut rtts = Vec::new();
    let params = PingParams {
        peer: peer.to_owned(),
        timeout_ms: None,
    };
    for round in 0..count {
        if round > 0 {
            std::thread::sleep(Duration::from_secs(1));
        }
        match client.try_call::<Ping>(&params)? {
            Ok(result) => {
                rtts.push(result.rtt_ms);
                if json {
                    print_json(&result)?;
                } else {
                    outln!("answer from {peer}: {}", millis_text(Some(result.rtt_ms)));
                }
            }
            Err(error) if rtts.is_empty() && round == 0 && !error.is_timeout() => return Err(error.into()),
            Err(error) if json => print_json(&PingFailure {
                error: &error.message,
                peer,
            })?,
            Err(error) => outln!("{peer}: {error}"),
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
        outln!("{count} sent, {} answered{stats}", rtts.len());
    }
    if rtts.is_empty() {
        return Err(CliError::new(format!("{peer} did not answer")));
    }
    Ok(())
}

/// `status`.
pub fn status(json: bool, result: &StatusResult) -> Result<(), CliError> {
    if json {
        return print_json(result);
    }
    let peers: Vec<String> = result
        .peers
        .iter()
        .map(|(state, n)| format!("{n} {state}"))
        .collect();
    let peers = if peers.is_empty() {
        "none".to_owned()
    } else {
        peers.join(", ")
    };
    let uptime = result.uptime_secs;
    let datagrams = &result.datagrams;
    let mut table = Table::new(&["name", &result.name]);
    table.row(vec!["id".into(), result.id.to_string()]);
    table.row(vec![
        "version".into(),
        format!("{} (protocol {})", result.version, result.protocol_version),
    ]);
    table.row(vec![
        "uptime".into(),
        format!("{}h {:02}m {:02}s", uptime / 3600, uptime / 60 % 60, uptime % 60),
    ]);
    table.row(vec!["devices".into(), result.devices.to_string()]);
    table.row(vec!["peers".into(), peers]);
    table.row(vec![
        "datagrams".into(),
        format!(
            "{} sent, {} received, {} rejected, {} beacons answered",
            datagrams.sent, datagrams.received, datagrams.rejected, datagrams.beacons_answered
        ),
    ]);
    let runs = &result.handler_runs;
    table.row(vec![
        "handler runs".into(),
        format!(
            "{} queued, {} running, {} refused for a full queue, {} interrupted at start",
            runs.queued, runs.running, runs.refused, runs.interrupted
        ),
    ]);
    let disk = match &result.disk.error {
        None => "ok".to_owned(),
        Some(error) => format!("FAILED: {error} (no writes until it works again; reads go on)"),
    };
    table.row(vec!["disk".into(), disk]);
    table.row(vec![
        "store".into(),
        format!(
            "{} keys, {} on disk",
            result.store.keys,
            human_bytes(result.store.bytes_on_disk)
        ),
    ]);
    table.row(vec!["nat".into(), nat_text(&result.nat)]);
    if result.health_multiplier > 1 {
        table.row(vec![
            "health".into(),
            format!(
                "probe interval and timeouts x{}, slower to accuse (missed answers, suspicions of this device, a wake)",
                result.health_multiplier
            ),
        ]);
    }
    if result.nat.kept_alive > 0 {
        table.row(vec![
            "keepalive".into(),
            format!(
                "every {} s on {} session(s) through the NAT",
                result.nat.keepalive_secs, result.nat.kept_alive
            ),
        ]);
    }
    if result.relay.pairs > 0 || result.relay.bytes > 0 || result.relay.unsent > 0 {
        table.row(vec!["relay".into(), relay_text(&result.relay)]);
    }
    for catch_up in &result.catching_up {
        table.row(vec![
            "catching up".into(),
            format!(
                "from {}: {} of {} parts, {} changes",
                PeerLabel::new(&catch_up.peer, catch_up.name.as_deref()).brief(),
                catch_up.parts_received,
                catch_up.parts,
                catch_up.changes
            ),
        ]);
    }
    out!("{}", table.render());
    Ok(())
}

/// What a NAT's mapping does, and where peers see this device through it.
fn nat_text(nat: &Nat) -> String {
    let mapping = serde_json::to_value(nat.mapping)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let seen_at: Vec<String> = nat.translated.iter().map(ToString::to_string).collect();
    if seen_at.is_empty() {
        mapping
    } else {
        format!("{mapping}, seen at {}", seen_at.join(", "))
    }
}

/// What this device relays, and what it could not hand to its own relays, in a line.
fn relay_text(relay: &RelayStatus) -> String {
    format!(
        "{} pair(s) now, {} carried, {} refused; {} of its own not handed to a relay",
        relay.pairs,
        human_bytes(relay.bytes),
        relay.refused,
        relay.unsent
    )
}

/// What `netcheck` says of the router's port mapping, in a line.
fn port_mapping_text(view: &PortMappingView) -> String {
    let gateway = view
        .gateway
        .map_or_else(|| "no gateway".to_owned(), |g| format!("gateway {g}"));
    match view.state {
        PortMappingState::Off => "off (port_mapping = false)".into(),
        PortMappingState::Trying => "asking the gateway".into(),
        PortMappingState::Mapped => format!(
            "{} by {gateway} ({}, renewed every {} s)",
            view.external.map(|a| a.to_string()).unwrap_or_default(),
            view.protocol.as_deref().unwrap_or("?"),
            view.lifetime_secs.unwrap_or(0) / 2
        ),
        PortMappingState::Unavailable => match view.gateway {
            Some(_) => format!(
                "none from {gateway}: {} (asked again every minute)",
                view.detail.as_deref().unwrap_or("no answer")
            ),
            None => format!("none: {}", view.detail.as_deref().unwrap_or("no gateway")),
        },
    }
}

/// `netcheck`.
pub fn netcheck(json: bool, result: &NetcheckResult) -> Result<(), CliError> {
    if json {
        return print_json(result);
    }
    let addresses: Vec<String> = result.addresses.iter().map(ToString::to_string).collect();
    let mut table = Table::new(&["addresses", &addresses.join(", ")]);
    let ipv6 = if result.ipv6 {
        "yes (a global address)"
    } else {
        "no global address"
    };
    table.row(vec!["ipv6".into(), ipv6.into()]);
    for (interface, gateway) in &result.gateways {
        table.row(vec![format!("gateway {interface}"), gateway.clone()]);
    }
    table.row(vec!["nat".into(), nat_text(&result.nat)]);
    table.row(vec![
        "port mapping".into(),
        port_mapping_text(&result.port_mapping),
    ]);
    table.row(vec!["relaying".into(), relay_text(&result.relay)]);
    out!("{}", table.render());
    let mut peers = Table::new(&["PEER", "STATE", "PATH", "WHY"]);
    for peer in &result.peers {
        let path = match (&peer.relay, peer.path) {
            (Some(relay), _) => format!(
                "via {}",
                peer.relay_name
                    .clone()
                    .unwrap_or_else(|| relay.short().to_string())
            ),
            (None, path) => path.map_or("-", PeerPath::as_str).to_owned(),
        };
        peers.row(vec![
            PeerLabel::new(&peer.id, peer.name.as_deref()).brief(),
            peer.state.to_string(),
            path,
            peer.why.clone(),
        ]);
    }
    out!("\n{}", peers.render());
    Ok(())
}

/// `interfaces`.
pub fn interfaces(json: bool, result: &InterfacesResult) -> Result<(), CliError> {
    if json {
        return print_json(result);
    }
    let mut table = Table::new(&["LISTENING ON", "REACHABLE AT"]);
    let cell =
        |list: &[std::net::SocketAddr], i: usize| list.get(i).map(ToString::to_string).unwrap_or_default();
    for i in 0..result.listening.len().max(result.addresses.len()) {
        table.row(vec![cell(&result.listening, i), cell(&result.addresses, i)]);
    }
    out!("{}", table.render());
    if !result.gateways.is_empty() {
        let mut gateways = Table::new(&["INTERFACE", "GATEWAY (discovery.networks)"]);
        for (interface, gateway) in &result.gateways {
            gateways.row(vec![interface.clone(), gateway.clone()]);
        }
        out!("\n{}", gateways.render());
    }
    Ok(())
}

/// `remove`.
pub fn removed(json: bool, result: &RemoveResult) -> Result<(), CliError> {
    let who = PeerLabel::new(&result.removed, result.name.as_deref());
    sentence(
        json,
        result,
        &format!("Removed {who}: every device will refuse it from now on."),
    )
}

/// A notice in words.
fn notice_text(notice: &Notice) -> String {
    match notice {
        Notice::PeerState {
            peer,
            name,
            previous,
            state,
        } => format!("{}: {previous} -> {state}", PeerLabel::new(peer, name.as_deref())),
        Notice::PeerAddress { peer, name, address } => {
            format!("{}: now at {address}", PeerLabel::new(peer, name.as_deref()))
        }
        Notice::Paired { peer } => format!("{} joined the mesh", PeerLabel::new(peer, None)),
        Notice::RosterChanged { devices } => format!("roster changed: {devices} devices"),
        Notice::Message {
            from,
            name,
            tag,
            bytes,
        } => {
            format!(
                "message {tag} from {} ({bytes} bytes)",
                PeerLabel::new(from, name.as_deref())
            )
        }
        Notice::Event {
            origin,
            name,
            tag,
            bytes,
        } => format!(
            "event {tag} from {} ({bytes} bytes)",
            PeerLabel::new(origin, name.as_deref())
        ),
        Notice::Query { from, name, tag } => {
            format!("query {tag} from {}", PeerLabel::new(from, name.as_deref()))
        }
        Notice::HandlerRun(run) => format!(
            "handler {}: {} after {} ms",
            run.handler,
            ended(run),
            run.duration_ms
        ),
        Notice::HandlerInterrupted {
            handler,
            origin,
            name,
            tag,
        } => format!(
            "handler {handler}: interrupted by the daemon's stop, not run again ({tag} from {})",
            PeerLabel::new(origin, name.as_deref())
        ),
        Notice::StoreChanged { key, cursor } => format!("key {key} changed (cursor {cursor})"),
        Notice::DiskFailed { error } => {
            format!("the database failed ({error}): nothing that needs the disk is done until it works again")
        }
        Notice::DiskRecovered => "the database works again".to_owned(),
        Notice::Lagged { missed } => format!("{missed} notices missed: this monitor read too slowly"),
    }
}

/// `monitor`: one line per notice until the daemon stops.
pub fn monitor(json: bool, mut client: Client) -> Result<(), CliError> {
    client.subscribe::<Monitor>(&NoParams {})?;
    if !json {
        eprintln!("Watching the daemon; Ctrl-C to stop.");
    }
    loop {
        let notice = client.next::<Monitor>()?;
        if json {
            print_json(&notice)?;
        } else {
            outln!("{}", notice_text(&notice));
        }
    }
}

/// How a handler run ended, in words.
fn ended(run: &HandlerRun) -> String {
    match (run.exit_code, run.timed_out) {
        (_, true) => "killed at the timeout".to_owned(),
        (Some(code), _) => format!("exit {code}"),
        (None, _) => run
            .error
            .clone()
            .unwrap_or_else(|| "killed by a signal".to_owned()),
    }
}

/// `config`.
pub fn config(json: bool, config: &cnspr_runtime::config::Config) -> Result<(), CliError> {
    if json {
        let mut effective = config.clone();
        effective.name = Some(config.device_name());
        print_json(&effective)?;
    } else {
        out!("{}", config.to_toml());
    }
    Ok(())
}

/// `send`.
/// Calls `send`; with `progress`, redraws one line on stderr as the receiver takes the
/// message (a large one takes a while), and erases it before the answer.
pub fn send(client: &mut Client, params: &SendParams) -> Result<SendResult, CliError> {
    let mut drawn = false;
    let result = client.call_streaming::<Send>(params, |progress| {
        eprint!(
            "\r\x1b[Ksending: {} of {}",
            human_bytes(progress.bytes_acknowledged),
            human_bytes(progress.bytes)
        );
        drawn = true;
        Ok(())
    });
    if drawn {
        eprint!("\r\x1b[K");
    }
    result
}

pub fn sent(json: bool, result: &SendResult) -> Result<(), CliError> {
    let text = if result.delivered {
        "Delivered."
    } else {
        "Queued: it will be delivered when the device is reachable."
    };
    sentence(json, result, text)
}

/// Bytes as a table cell or a line: the text, or how many bytes of binary.
fn shown_payload(text: Option<&str>, base64: Option<&str>) -> String {
    match (text, base64) {
        (Some(text), _) => text.trim_end_matches('\n').to_owned(),
        (None, Some(b64)) => format!("({} bytes of binary, base64) {b64}", b64.len() / 4 * 3),
        (None, None) => String::new(),
    }
}

/// What `query --json` prints last.
#[derive(Serialize)]
struct QueryDone<'a> {
    done: &'a QueryResult,
}

/// `query`: answers as they arrive, then who did not answer.
pub fn query(json: bool, client: &mut Client, params: &QueryParams) -> Result<(), CliError> {
    let result = client.call_streaming::<Query>(params, |answer| {
        if json {
            return print_json(&answer);
        }
        let shown = shown_payload(answer.answer.text.as_deref(), answer.answer.base64.as_deref());
        outln!("{}: {shown}", answer.from.label().brief());
        Ok(())
    })?;
    if json {
        return print_json(&QueryDone { done: &result });
    }
    use cnspr_runtime::api::messaging::QueryFailureReason;
    for failed in &result.failed {
        let why = match failed.reason {
            QueryFailureReason::Restarted => "restarted before answering",
            QueryFailureReason::Unreachable => "became unreachable before answering",
        };
        outln!("{}: (failed: {why})", failed.peer.label().brief());
    }
    for (peers, what) in [
        (&result.unreachable, "not reachable"),
        (&result.no_answer, "no answer"),
    ] {
        for peer in peers {
            outln!("{}: ({what})", peer.label().brief());
        }
    }
    Ok(())
}

/// `handlers`.
pub fn handlers(json: bool, result: &HandlerList) -> Result<(), CliError> {
    use cnspr_runtime::api::handlers::Family;
    if json {
        return print_json(result);
    }
    outln!("Handler directory: {}", result.directory);
    let mut table = Table::new(&["HANDLER", "TAKES", "FROM"]);
    for handler in &result.handlers {
        let family = match handler.family {
            Family::User => "user",
            Family::Daemon => "daemon",
            Family::Peer => "peer",
        };
        let takes = match (family, handler.takes.as_deref()) {
            ("user", Some(tag)) => format!("tag {tag}"),
            (family, Some(which)) => format!("{family} {which}"),
            (family, None) => format!("every {family} event"),
        };
        let from = handler.device.clone().unwrap_or_else(|| "any".to_owned());
        table.row(vec![handler.handler.clone(), takes, from]);
    }
    out!("{}", table.render());
    for ignored in &result.ignored {
        outln!("ignored {}: {}", ignored.handler, ignored.reason);
    }
    Ok(())
}

/// `handlers test`.
pub fn handler_runs(json: bool, result: &TestResult) -> Result<(), CliError> {
    if json {
        return print_json(result);
    }
    if result.runs.is_empty() {
        outln!("No handler takes that tag.");
    }
    for test in &result.runs {
        let run = &test.run;
        outln!("{}: {} after {} ms", run.handler, ended(run), run.duration_ms);
        let stdout = shown_payload(test.stdout.text.as_deref(), test.stdout.base64.as_deref());
        if !stdout.is_empty() {
            outln!("  stdout: {stdout}");
        }
        let stderr = run.stderr_tail.trim_end();
        if !stderr.is_empty() {
            outln!("  stderr: {stderr}");
        }
    }
    Ok(())
}

/// `kv get`: the value as is (so it can be piped), or every concurrent value with `--all`.
pub fn kv_get(json: bool, raw: bool, result: &Entry) -> Result<(), CliError> {
    if json {
        return print_json(result);
    }
    match &result.values {
        Some(values) => {
            let mut table = Table::new(&["WRITTEN BY", "WHEN (UNIX µs)", "VALUE"]);
            for value in values {
                let shown = if value.deleted {
                    "(deleted)".to_owned()
                } else {
                    shown_payload(value.value.text.as_deref(), value.value.base64.as_deref())
                };
                table.row(vec![
                    PeerLabel::new(&value.device, value.name.as_deref()).to_string(),
                    value.written_unix_micros.to_string(),
                    shown,
                ]);
            }
            out!("{}", table.render());
        }
        None => {
            let bytes = result
                .value
                .bytes()
                .map_err(|e| CliError::new(format!("the daemon sent a bad value: {e}")))?
                .unwrap_or_default();
            std::io::stdout().write_all(&bytes)?;
            if !raw && std::io::IsTerminal::is_terminal(&std::io::stdout()) && !bytes.ends_with(b"\n") {
                outln!();
            }
        }
    }
    if result.conflict {
        eprintln!("cnspr: concurrent writes exist for this key; `cnspr kv get --all` shows them, a new put resolves them");
    }
    Ok(())
}

/// `kv ls`.
pub fn kv_list(json: bool, result: &ListResult) -> Result<(), CliError> {
    if json {
        return print_json(result);
    }
    let mut table = Table::new(&["KEY", "VALUE"]);
    for entry in &result.keys {
        let mut value = shown_payload(entry.value.text.as_deref(), entry.value.base64.as_deref());
        if entry.conflict {
            value.push_str("  (conflict)");
        }
        table.row(vec![entry.key.clone(), value]);
    }
    out!("{}", table.render());
    Ok(())
}

/// `kv watch`: one line per change (`CURSOR KEY VALUE`), until the daemon stops.
pub fn kv_watch(json: bool, client: &mut Client, params: &WatchParams) -> Result<(), CliError> {
    client.subscribe::<KvWatch>(params)?;
    loop {
        let change = client.next::<KvWatch>()?;
        if json {
            print_json(&change)?;
            continue;
        }
        let entry = &change.entry;
        let value = if entry.deleted {
            "(deleted)".to_owned()
        } else {
            shown_payload(entry.value.text.as_deref(), entry.value.base64.as_deref())
        };
        let conflict = if entry.conflict { "  (conflict)" } else { "" };
        outln!("{} {} {value}{conflict}", change.cursor, entry.key);
    }
}

/// A byte count in the largest unit that keeps it at least 1 (B, KiB, MiB, GiB).
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
