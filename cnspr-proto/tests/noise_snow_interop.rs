//! Our Noise handshake against the `snow` crate playing the other side, for both patterns
//! and both roles, followed by transport messages in both directions.

use cnspr_proto::crypto::aead::CipherKey;
use cnspr_proto::identity::StaticKeypair;
use cnspr_proto::noise::{Handshake, Pattern, Role};

const PROLOGUE: &[u8] = b"cnspr interop test";
const PSK: [u8; 32] = [0x42; 32];

fn snow_side(pattern: Pattern, initiator: bool, secret: &[u8; 32]) -> snow::HandshakeState {
    let builder = snow::Builder::new(pattern.protocol_name().parse().expect("snow knows the pattern"))
        .local_private_key(secret)
        .prologue(PROLOGUE);
    let builder = match pattern {
        Pattern::XX => builder,
        Pattern::XXpsk3 => builder.psk(3, &PSK),
    };
    if initiator {
        builder.build_initiator().expect("snow initiator")
    } else {
        builder.build_responder().expect("snow responder")
    }
}

fn run(pattern: Pattern, ours_role: Role) {
    let ours_static = StaticKeypair::from_secret_bytes([1; 32]);
    let snow_secret = [2u8; 32];
    let snow_public = StaticKeypair::from_secret_bytes(snow_secret).public().0;
    let mut ours = Handshake::new(
        pattern,
        ours_role,
        PROLOGUE,
        ours_static.clone(),
        [3; 32],
        Some(PSK),
    );
    let mut theirs = snow_side(pattern, ours_role == Role::Responder, &snow_secret);
    let mut buffer = vec![0u8; 65535];

    for step in 0..3 {
        let payload = format!("handshake payload {step}").into_bytes();
        if ours.is_my_turn() {
            let mut sent = Vec::new();
            ours.write_message(&payload, &mut sent).expect("we write");
            let len = theirs
                .read_message(&sent, &mut buffer)
                .expect("snow reads our message");
            assert_eq!(&buffer[..len], &payload[..]);
        } else {
            let len = theirs.write_message(&payload, &mut buffer).expect("snow writes");
            assert_eq!(
                ours.read_message(&buffer[..len]).expect("we read snow's message"),
                payload
            );
        }
    }
    assert!(ours.is_finished() && theirs.is_handshake_finished());
    assert_eq!(
        ours.remote_static().map(|k| k.0.to_vec()),
        Some(snow_public.to_vec())
    );
    assert_eq!(theirs.get_remote_static(), Some(&ours_static.public().0[..]));
    assert_eq!(
        ours.handshake_hash().to_vec(),
        theirs.get_handshake_hash().to_vec()
    );

    let secrets = ours.into_transport().expect("finished");
    let send = CipherKey::new(&secrets.send_key);
    let receive = CipherKey::new(&secrets.receive_key);
    let mut theirs = theirs.into_transport_mode().expect("snow transport");
    for counter in 0..5u64 {
        let message = format!("to snow {counter}").into_bytes();
        let mut sealed = Vec::new();
        send.seal(counter, &[], &message, &mut sealed);
        let len = theirs
            .read_message(&sealed, &mut buffer)
            .expect("snow opens our transport message");
        assert_eq!(&buffer[..len], &message[..]);

        let reply = format!("from snow {counter}").into_bytes();
        let len = theirs.write_message(&reply, &mut buffer).expect("snow seals");
        assert_eq!(
            receive
                .open(counter, &[], &buffer[..len])
                .expect("we open snow's message"),
            reply
        );
    }
}

#[test]
fn xx_with_snow_as_responder() {
    run(Pattern::XX, Role::Initiator);
}

#[test]
fn xx_with_snow_as_initiator() {
    run(Pattern::XX, Role::Responder);
}

#[test]
fn xxpsk3_with_snow_as_responder() {
    run(Pattern::XXpsk3, Role::Initiator);
}

#[test]
fn xxpsk3_with_snow_as_initiator() {
    run(Pattern::XXpsk3, Role::Responder);
}

#[test]
fn xxpsk3_with_a_wrong_psk_fails_and_changes_nothing() {
    let mut ours = Handshake::new(
        Pattern::XXpsk3,
        Role::Responder,
        PROLOGUE,
        StaticKeypair::from_secret_bytes([1; 32]),
        [3; 32],
        Some([0x41; 32]),
    );
    let mut theirs = snow_side(Pattern::XXpsk3, true, &[2; 32]);
    let mut buffer = vec![0u8; 65535];
    let len = theirs.write_message(&[], &mut buffer).expect("snow writes e");
    ours.read_message(&buffer[..len])
        .expect("first message has no psk yet");
    let mut sent = Vec::new();
    ours.write_message(&[], &mut sent).expect("we answer");
    theirs.read_message(&sent, &mut buffer).expect("snow reads");
    let len = theirs
        .write_message(b"secret", &mut buffer)
        .expect("snow writes s, se, psk");
    let before = ours.handshake_hash();
    assert!(ours.read_message(&buffer[..len]).is_err());
    assert_eq!(
        ours.handshake_hash(),
        before,
        "a failed read leaves the state untouched"
    );
    assert!(!ours.is_finished());
}
