//! A local SMTP sink for the account mail tests: what the gateway sends arrives on a
//! channel the test reads.

/// What a sink received, one message (its DATA) per item.
pub type Mailbox = tokio::sync::mpsc::UnboundedReceiver<String>;

/// A minimal SMTP server on loopback that hands each received message (its DATA) to
/// the test: enough for lettre's plain `smtp://` transport.
pub async fn sink() -> (String, Mailbox) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let (sent, received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let sent = sent.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                let _ = write.write_all(b"220 sink ESMTP\r\n").await;
                let mut data: Option<String> = None;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(body) = data.as_mut() {
                        if line == "." {
                            let _ = sent.send(std::mem::take(body));
                            data = None;
                            let _ = write.write_all(b"250 queued\r\n").await;
                        } else {
                            body.push_str(line.strip_prefix('.').unwrap_or(&line));
                            body.push('\n');
                        }
                        continue;
                    }
                    let verb = line
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_ascii_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" => b"250-sink\r\n250 8BITMIME\r\n",
                        "DATA" => {
                            data = Some(String::new());
                            b"354 end with .\r\n"
                        }
                        "QUIT" => {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        }
                        _ => b"250 OK\r\n",
                    };
                    let _ = write.write_all(reply).await;
                }
            });
        }
    });
    (url, received)
}

/// The next mail the sink received, within 10 s.
pub async fn next_mail(mail: &mut Mailbox) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(10), mail.recv())
        .await
        .expect("a mail arrives")
        .expect("the sink runs")
}

/// The token of the first link in `message` that contains `marker` (`#reset=`, `#verify=`),
/// and the page it opens.
pub fn link_token(message: &str, marker: &str) -> (String, String) {
    let link = message
        .lines()
        .find(|line| line.contains(marker))
        .unwrap_or_else(|| panic!("no {marker} link in {message}"))
        .trim();
    let (page, token) = link.split_once(marker).expect("marker");
    (page.to_string(), token.to_string())
}
