//! The fixtures are what they claim, and decoding is zero-copy.

use super::*;

fn block_of(message: &GossipMessage) -> &Bytes {
    match &message.content {
        Some(Content::DataMsg(DataMessage { payload: Some(p) })) => &p.data,
        other => panic!("not a data message: {other:?}"),
    }
}

#[test]
fn decode_of_a_100_kib_data_message_slices_the_received_buffer() {
    let wire: Bytes = noop_sign(data_message(5, 100 * KIB).encode_to_vec().into())
        .encode_to_vec()
        .into();
    let (envelope, message) = decode_like_engine(&wire).expect("decodes");
    let block = block_of(&message);
    assert_eq!(block.len(), 100 * KIB);
    assert_eq!(block, &filler(100 * KIB, 5));
    let range = wire.as_ptr_range();
    assert!(
        range.contains(&envelope.payload.as_ptr()),
        "envelope payload copied"
    );
    assert!(
        range.contains(&block.as_ptr()),
        "Payload.data copied out of the received buffer"
    );
    assert!(range.contains(&block[block.len() - 1..].as_ptr()));
}

#[test]
fn decoding_from_a_slice_copies_which_is_what_the_test_above_rules_out() {
    let wire = noop_sign(data_message(5, KIB).encode_to_vec().into()).encode_to_vec();
    let envelope = Envelope::decode(&wire[..]).expect("decodes");
    assert!(!wire.as_ptr_range().contains(&envelope.payload.as_ptr()));
}

#[test]
fn every_codec_case_round_trips_and_has_its_size() {
    let fx = Fixture::new();
    let cases = codec_cases(&fx);
    assert_eq!(cases.len(), 12);
    for case in &cases {
        let (envelope, message) = decode_like_engine(&case.wire).expect("decodes");
        assert_eq!(message, case.message, "{}", case.name);
        assert_eq!(envelope, case.envelope, "{}", case.name);
        assert_eq!(case.encode(), case.wire[..], "{}", case.name);
    }
    let wire_len = |name: &str| {
        cases
            .iter()
            .find(|c| c.name == name)
            .expect(name)
            .wire
            .len()
    };
    assert!((100 * KIB..100 * KIB + 64).contains(&wire_len("data_msg/100KiB")));
    assert!((MIB..MIB + 64).contains(&wire_len("data_msg/1MiB")));
    assert!(wire_len("data_update/10x100KiB") > 10 * 100 * KIB);
    assert!(wire_len("state_response/10x100KiB") > 10 * 100 * KIB);
    assert!(wire_len("mem_res/10_alive") > 10 * wire_len("alive_signed_with_secret") - 100);
}

#[test]
fn signed_fixtures_verify() {
    let fx = Fixture::new();
    let signer = fx.signer();
    let key = signer.identity().public_key();
    gossip_engine::crypto::envelope::verify_envelope(&signed_alive(signer).unwrap(), key)
        .expect("alive verifies");
    fx.msp
        .validate(signer.identity(), NOW_UNIX_S)
        .expect("signer identity validates");
    let payload = alive_payload_of_len(signer, 300);
    assert!((300..=302).contains(&payload.len()), "{}", payload.len());
    key.verify(&payload, &signer.sign(&payload).unwrap())
        .expect("verifies");
}
