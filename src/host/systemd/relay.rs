//! systemd stamps every message on a private socket with the sender `org.freedesktop.systemd1`
//! (sd_bus_set_sender), and zbus 6 drops any message whose sender is not a unique name (the
//! connection's reader errors out). This relay authenticates to the manager itself, plays the
//! server side of the handshake towards zbus over a socketpair, and rewrites that sender in
//! place to a unique name of the same length; every other byte passes unchanged.
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Returns the stream to hand to zbus (p2p, EXTERNAL auth as usual).
pub fn start(manager: UnixStream, timeout: Duration) -> io::Result<UnixStream> {
    manager.set_read_timeout(Some(timeout))?;
    manager.set_write_timeout(Some(timeout))?;
    let uid_hex: String = rustix::process::geteuid()
        .as_raw()
        .to_string()
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    (&manager).write_all(format!("\0AUTH EXTERNAL {uid_hex}\r\nBEGIN\r\n").as_bytes())?;
    let mut from_manager = BufReader::new(manager.try_clone()?);
    let mut line = String::new();
    from_manager.read_line(&mut line)?;
    let Some(guid) = line.strip_prefix("OK ").map(|g| g.trim_end().to_string()) else {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("authentication refused: {:?}", line.trim_end()),
        ));
    };
    manager.set_read_timeout(None)?;
    manager.set_write_timeout(None)?;

    let (for_zbus, relay) = UnixStream::pair()?;
    let to_manager = manager.try_clone()?;
    std::thread::spawn(move || {
        let result = (|| -> io::Result<()> {
            let mut from_zbus = BufReader::new(relay.try_clone()?);
            serve_handshake(&mut from_zbus, &relay, &guid)?;
            let relay_out = relay.try_clone()?;
            let forward = std::thread::spawn(move || {
                let mut to_manager = to_manager;
                let _ = io::copy(&mut from_zbus, &mut to_manager);
                let _ = to_manager.shutdown(Shutdown::Both);
            });
            let back = relay_messages(&mut from_manager, relay_out);
            let _ = relay.shutdown(Shutdown::Both);
            let _ = forward.join();
            back
        })();
        let _ = result;
    });
    Ok(for_zbus)
}

/// The server half of the SASL exchange, as far as a zbus client takes it.
fn serve_handshake(
    from_zbus: &mut BufReader<UnixStream>,
    mut to_zbus: &UnixStream,
    guid: &str,
) -> io::Result<()> {
    let mut nul = [0u8; 1];
    from_zbus.read_exact(&mut nul)?;
    loop {
        let mut line = String::new();
        if from_zbus.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let command = line.trim_end();
        if command.starts_with("AUTH") {
            to_zbus.write_all(format!("OK {guid}\r\n").as_bytes())?;
        } else if command == "BEGIN" {
            return Ok(());
        } else {
            // NEGOTIATE_UNIX_FD included: no descriptors cross this relay.
            to_zbus.write_all(b"ERROR\r\n")?;
        }
    }
}

fn relay_messages(from_manager: &mut impl Read, mut to_zbus: UnixStream) -> io::Result<()> {
    loop {
        let mut message = vec![0u8; 16];
        from_manager.read_exact(&mut message)?;
        let total = message_len(&message)?;
        message.resize(total, 0);
        from_manager.read_exact(&mut message[16..])?;
        patch_sender(&mut message);
        to_zbus.write_all(&message)?;
    }
}

fn u32_at(message: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = message.get(at..at + 4)?.try_into().ok()?;
    Some(match message[0] {
        b'B' => u32::from_be_bytes(bytes),
        _ => u32::from_le_bytes(bytes),
    })
}

fn align8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Whole length of the message whose 16-byte fixed header is at the start of `header`.
pub fn message_len(header: &[u8]) -> io::Result<usize> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    if !matches!(header.first(), Some(b'l' | b'B')) {
        return Err(bad("not a D-Bus message"));
    }
    let body = u32_at(header, 4).ok_or_else(|| bad("short header"))? as usize;
    let fields = u32_at(header, 12).ok_or_else(|| bad("short header"))? as usize;
    let total = align8(16 + fields) + body;
    if total > 128 * 1024 * 1024 {
        return Err(bad("message larger than D-Bus allows"));
    }
    Ok(total)
}

/// Rewrites a SENDER header field that is not a unique name to `:1.000...` of the same length.
pub fn patch_sender(message: &mut [u8]) {
    let Some(fields_len) = u32_at(message, 12) else {
        return;
    };
    let end = (16 + fields_len as usize).min(message.len());
    let mut at = 16;
    while at + 4 <= end {
        let code = message[at];
        let sig_len = message[at + 1] as usize;
        let sig_start = at + 2;
        let Some(sig) = message.get(sig_start..sig_start + sig_len) else {
            return;
        };
        let sig = sig.to_vec();
        let mut value = sig_start + sig_len + 1;
        let value_end = match sig.as_slice() {
            b"s" | b"o" => {
                value = value.div_ceil(4) * 4;
                let Some(len) = u32_at(message, value) else {
                    return;
                };
                let (start, stop) = (value + 4, value + 4 + len as usize);
                if code == 7 && stop <= end && len >= 4 && message[start] != b':' {
                    message[start..start + 3].copy_from_slice(b":1.");
                    message[start + 3..stop].fill(b'0');
                }
                stop + 1
            }
            b"g" => {
                let len = message.get(value).copied().unwrap_or(0) as usize;
                value + 1 + len + 1
            }
            b"u" => value.div_ceil(4) * 4 + 4,
            _ => return,
        };
        at = align8(value_end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A reply as systemd's private socket sends it: sender "org.freedesktop.systemd1".
    fn systemd_reply() -> Vec<u8> {
        let sender = "org.freedesktop.systemd1";
        let mut fields = Vec::new();
        // REPLY_SERIAL (5), "u", 1
        fields.extend_from_slice(&[5, 1, b'u', 0, 1, 0, 0, 0]);
        // SENDER (7), "s", string
        fields.extend_from_slice(&[7, 1, b's', 0]);
        fields.extend_from_slice(&(sender.len() as u32).to_le_bytes());
        fields.extend_from_slice(sender.as_bytes());
        fields.push(0);
        while fields.len() % 8 != 0 {
            fields.push(0);
        }
        // SIGNATURE (8), "g", "s"
        fields.extend_from_slice(&[8, 1, b'g', 0, 1, b's', 0]);
        let fields_len = fields.len();
        while fields.len() % 8 != 0 {
            fields.push(0);
        }
        let body = [2u8, 0, 0, 0, b'O', b'K', 0];
        let mut message = vec![b'l', 2, 1, 1];
        message.extend_from_slice(&(body.len() as u32).to_le_bytes());
        message.extend_from_slice(&7u32.to_le_bytes());
        message.extend_from_slice(&(fields_len as u32).to_le_bytes());
        message.extend_from_slice(&fields);
        message.extend_from_slice(&body);
        message
    }

    #[test]
    fn relay_rewrites_only_a_well_known_sender() {
        let mut message = systemd_reply();
        assert_eq!(message_len(&message).unwrap(), message.len());
        let before = message.clone();
        patch_sender(&mut message);
        let text = String::from_utf8_lossy(&message).into_owned();
        assert!(text.contains(":1.000000000000000000000\0"), "{text:?}");
        assert!(!text.contains("org.freedesktop.systemd1"));
        assert_eq!(message.len(), before.len());
        let changed = before.iter().zip(&message).filter(|(a, b)| a != b).count();
        assert!(changed <= 24, "{changed} bytes changed");
        // A unique name is left alone.
        let mut again = message.clone();
        patch_sender(&mut again);
        assert_eq!(again, message);
    }

    #[test]
    fn relay_lets_zbus_talk_to_a_manager_that_stamps_its_sender() {
        use std::io::{BufRead, BufReader, Read, Write};
        // A fake user manager: accepts EXTERNAL, answers any one call with "OK" from
        // "org.freedesktop.systemd1", like systemd's private socket.
        let (ours, theirs) = UnixStream::pair().unwrap();
        let manager = std::thread::spawn(move || {
            let mut reader = BufReader::new(theirs.try_clone().unwrap());
            let mut nul = [0u8; 1];
            reader.read_exact(&mut nul).unwrap();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert!(line.starts_with("AUTH EXTERNAL "), "{line:?}");
            (&theirs)
                .write_all(b"OK 0123456789abcdef0123456789abcdef\r\n")
                .unwrap();
            line.clear();
            reader.read_line(&mut line).unwrap();
            assert_eq!(line, "BEGIN\r\n");
            let mut head = vec![0u8; 16];
            reader.read_exact(&mut head).unwrap();
            let total = message_len(&head).unwrap();
            head.resize(total, 0);
            reader.read_exact(&mut head[16..]).unwrap();
            let mut reply = systemd_reply();
            let serial = u32::from_le_bytes(head[8..12].try_into().unwrap());
            reply[20..24].copy_from_slice(&serial.to_le_bytes());
            (&theirs).write_all(&reply).unwrap();
        });
        let stream = start(ours, Duration::from_secs(5)).unwrap();
        let answer: String = zbus::block_on(async {
            let conn = zbus::connection::Builder::unix_stream(stream)
                .p2p()
                .build()
                .await
                .unwrap();
            let reply = conn
                .call_method(
                    Some("org.freedesktop.systemd1"),
                    "/org/freedesktop/systemd1",
                    Some("org.freedesktop.DBus.Peer"),
                    "Ping",
                    &(),
                )
                .await
                .unwrap();
            reply.body().deserialize().unwrap()
        });
        assert_eq!(answer, "OK");
        manager.join().unwrap();
    }
}
