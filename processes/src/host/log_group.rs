//! The body of a group record in a process log: several host records committed by one append
//! (one write, one fdatasync), so a host that takes a full mailbox in one step pays one sync
//! for all of it. The store's checksum covers the whole body; this framing only splits it.
//!
//! A body is the records one after another, each as its length (u32, little-endian) and its
//! bytes. The length is read only after the store has checked the checksum, so a length that
//! overruns the body is not a torn write but a body this code did not write: refused.

use acme_store::record::BODY_MAX;

const LEN_BYTES: usize = 4;

/// Packs `records` into bodies of at most `BODY_MAX` bytes, in order; each body is committed
/// by one append. A record too large for a body of its own is the caller's to refuse.
pub(super) fn pack(records: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    let mut body: Vec<u8> = Vec::new();
    for record in records {
        let framed = LEN_BYTES + record.len();
        assert!(
            framed <= BODY_MAX as usize,
            "a record over the limit reached pack"
        );
        if !body.is_empty() && body.len() + framed > BODY_MAX as usize {
            bodies.push(std::mem::take(&mut body));
        }
        let len = u32::try_from(record.len()).expect("a record under BODY_MAX fits a u32");
        body.extend_from_slice(&len.to_le_bytes());
        body.extend_from_slice(record);
    }
    if !body.is_empty() {
        bodies.push(body);
    }
    bodies
}

/// The records of one group body, in order.
pub(super) fn unpack(body: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut records = Vec::new();
    let mut at = 0usize;
    while at < body.len() {
        let Some(len_bytes) = body.get(at..at + LEN_BYTES) else {
            return Err(format!(
                "a group record's frame at byte {at} is cut short ({} bytes left)",
                body.len() - at
            ));
        };
        let len = u32::from_le_bytes(len_bytes.try_into().expect("4 bytes")) as usize;
        let start = at + LEN_BYTES;
        let Some(record) = start.checked_add(len).and_then(|end| body.get(start..end)) else {
            return Err(format!(
                "a group record's frame at byte {at} claims {len} bytes; {} are left",
                body.len() - start
            ));
        };
        records.push(record.to_vec());
        at = start + len;
    }
    if records.is_empty() {
        return Err("an empty group record".to_string());
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_as_they_went_in_and_bodies_stay_under_the_limit() {
        let big = vec![7u8; BODY_MAX as usize / 2];
        let records = vec![
            b"a".to_vec(),
            big.clone(),
            big.clone(),
            Vec::new(),
            b"z".to_vec(),
        ];
        let bodies = pack(&records);
        assert_eq!(
            bodies.len(),
            2,
            "two halves and their frames overflow one body"
        );
        assert!(bodies.iter().all(|b| b.len() <= BODY_MAX as usize));
        let back: Vec<Vec<u8>> = bodies.iter().flat_map(|b| unpack(b).unwrap()).collect();
        assert_eq!(back, records);
    }

    #[test]
    fn a_frame_that_overruns_its_body_is_refused_with_where() {
        let mut body = pack(&[b"hello".to_vec()]).remove(0);
        body.truncate(7);
        let e = unpack(&body).unwrap_err();
        assert!(e.contains("at byte 0 claims 5 bytes; 3 are left"), "{e}");
        assert!(unpack(&[1, 0]).unwrap_err().contains("cut short"));
        assert!(unpack(&[]).unwrap_err().contains("empty"));
    }
}
