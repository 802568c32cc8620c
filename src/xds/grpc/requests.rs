//! A stream's requests, decoded from its HTTP/2 request body as they arrive.
//!
//! In place of tonic's `Streaming`, whose buffer grows to the largest request the stream ever
//! carried (an Envoy's first EDS request names every cluster: kilobytes) and keeps that size for
//! the stream's whole life. Here bytes are held only while a message is incomplete; once every
//! message received is decoded, the buffer is let go.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use prost::bytes::{Buf, BytesMut};
use prost::Message;
use tonic::body::Body;
use tonic::Status;

/// gRPC's message prefix: a compression flag and a big-endian length.
const PREFIX: usize = 5;

/// The requests of one stream, messages of type `T`.
pub struct Requests<T> {
    body: Body,
    buf: BytesMut,
    /// Largest message accepted.
    max: usize,
    /// The client closed its side.
    ended: bool,
    _t: PhantomData<fn() -> T>,
}

impl<T: Message + Default> Requests<T> {
    pub fn new(body: Body, max: usize) -> Requests<T> {
        Requests {
            body,
            buf: BytesMut::new(),
            max,
            ended: false,
            _t: PhantomData,
        }
    }

    /// The next request; `None` once the client closed its side of the stream. A message over
    /// the limit is RESOURCE_EXHAUSTED, one that does not decode INVALID_ARGUMENT.
    #[cfg(test)]
    pub async fn message(&mut self) -> Result<Option<T>, Status> {
        std::future::poll_fn(|cx| self.poll_message(cx)).await
    }

    /// [`Requests::message`] as a poll: what arrived stays buffered across polls, and the body
    /// wakes the caller when more does.
    pub fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<T>, Status>> {
        loop {
            if let Some(msg) = self.decode()? {
                return Poll::Ready(Ok(Some(msg)));
            }
            if self.ended {
                return Poll::Ready(match self.buf.is_empty() {
                    true => Ok(None),
                    false => Err(Status::invalid_argument(
                        "the stream ended inside a message",
                    )),
                });
            }
            match ready!(http_body::Body::poll_frame(Pin::new(&mut self.body), cx)) {
                Some(Ok(frame)) => {
                    // Trailers carry nothing for a request stream.
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(status)) => return Poll::Ready(Err(status)),
                None => self.ended = true,
            }
        }
    }

    /// The first complete message in the buffer, if there is one.
    fn decode(&mut self) -> Result<Option<T>, Status> {
        if self.buf.len() < PREFIX {
            return Ok(None);
        }
        if self.buf[0] != 0 {
            return Err(Status::invalid_argument(
                "compressed requests are not accepted (no grpc-encoding was offered)",
            ));
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > self.max {
            return Err(Status::resource_exhausted(format!(
                "a request of {len} bytes is over the limit of {} bytes",
                self.max
            )));
        }
        if self.buf.len() < PREFIX + len {
            self.buf.reserve(PREFIX + len - self.buf.len());
            return Ok(None);
        }
        let msg = T::decode(&self.buf[PREFIX..PREFIX + len])
            .map_err(|e| Status::invalid_argument(format!("decoding a request: {e}")))?;
        self.buf.advance(PREFIX + len);
        if self.buf.is_empty() {
            // Between requests a stream holds no buffer at all.
            self.buf = BytesMut::new();
        }
        Ok(Some(msg))
    }
}

#[cfg(test)]
mod tests {
    use envoy_types::pb::envoy::service::discovery::v3::DiscoveryRequest;
    use prost::bytes::Bytes;

    use super::*;

    fn framed(msgs: &[DiscoveryRequest]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in msgs {
            let b = m.encode_to_vec();
            out.push(0);
            out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            out.extend_from_slice(&b);
        }
        out
    }

    /// A body that yields `chunks` as data frames.
    fn body(chunks: Vec<Vec<u8>>) -> Body {
        let frames = chunks
            .into_iter()
            .map(|c| Ok::<_, Status>(http_body::Frame::data(Bytes::from(c))));
        Body::new(Frames(frames))
    }

    struct Frames<I>(I);
    impl<I: Iterator<Item = Result<http_body::Frame<Bytes>, Status>> + Unpin> http_body::Body
        for Frames<I>
    {
        type Data = Bytes;
        type Error = Status;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
            std::task::Poll::Ready(self.0.next())
        }
    }

    fn req(t: &str, names: usize) -> DiscoveryRequest {
        DiscoveryRequest {
            type_url: t.into(),
            resource_names: (0..names).map(|i| format!("cluster-{i}")).collect(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn messages_split_and_joined_across_frames_decode_in_order() {
        let (a, b) = (req("a", 50), req("b", 1));
        let bytes = framed(&[a.clone(), b.clone()]);
        // Cut mid-prefix, mid-message, and with the second message's start in the first's frame.
        let chunks = vec![
            bytes[..3].to_vec(),
            bytes[3..40].to_vec(),
            bytes[40..].to_vec(),
        ];
        let mut r = Requests::<DiscoveryRequest>::new(body(chunks), 1 << 20);
        assert_eq!(r.message().await.unwrap(), Some(a));
        assert_eq!(r.message().await.unwrap(), Some(b));
        assert_eq!(r.buf.capacity(), 0, "no buffer held between requests");
        assert_eq!(r.message().await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_request_over_the_limit_is_resource_exhausted() {
        let bytes = framed(&[req("a", 50)]);
        let mut r = Requests::<DiscoveryRequest>::new(body(vec![bytes]), 100);
        let e = r.message().await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
    }

    #[tokio::test]
    async fn garbage_and_truncation_are_invalid_arguments() {
        let mut r =
            Requests::<DiscoveryRequest>::new(body(vec![vec![0, 0, 0, 0, 2, 0xff, 0xff]]), 100);
        assert_eq!(
            r.message().await.unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        let mut bytes = framed(&[req("a", 2)]);
        bytes.truncate(bytes.len() - 1);
        let mut r = Requests::<DiscoveryRequest>::new(body(vec![bytes]), 1 << 20);
        assert_eq!(
            r.message().await.unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }
}
