//! gRPC glue for the xDS services (ADS and the per-type CDS/EDS/LDS/RDS/SDS), in place of the
//! generated servers: the same services, methods and paths, with two differences that matter at
//! 10,000 streams.
//!
//! - Responses are written as the stream encoded them ([`Outbound`]): a small per-stream
//!   head and a body shared by every stream sending the same response (see [`super::wire`]),
//!   handed to HTTP/2 as they are. Nothing per stream grows with the response size: tonic's
//!   encoder would re-encode each response into a buffer of its own per stream, and keep it.
//! - A stream's requests are decoded as they arrive ([`Requests`]), holding bytes only while a
//!   message is incomplete: tonic's decoder keeps a buffer the size of the largest request for the
//!   stream's whole life. Unary fetches, rare, go through tonic with [`SmallCodec`], whose buffers
//!   start at 1 KiB instead of tonic's 8 KiB per direction.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

mod requests;
mod service;

pub use requests::Requests;
pub use service::{Outbound, ResponseBody, Source, XdsGrpc};

/// Initial size of a stream's codec buffers: room for a typical request or ACK.
const BUFFER: usize = 1024;

/// A prost codec whose buffers start at [`BUFFER`] bytes.
pub struct SmallCodec<E, D>(PhantomData<fn(E) -> D>);

impl<E, D> Default for SmallCodec<E, D> {
    fn default() -> Self {
        SmallCodec(PhantomData)
    }
}

pub struct SmallEncoder<E>(PhantomData<fn(E)>);
pub struct SmallDecoder<D>(PhantomData<fn() -> D>);

fn settings() -> BufferSettings {
    BufferSettings::new(BUFFER, 32 * 1024)
}

impl<E: Message + Send + 'static, D: Message + Default + Send + 'static> Codec
    for SmallCodec<E, D>
{
    type Encode = E;
    type Decode = D;
    type Encoder = SmallEncoder<E>;
    type Decoder = SmallDecoder<D>;

    fn encoder(&mut self) -> Self::Encoder {
        SmallEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        SmallDecoder(PhantomData)
    }
}

impl<E: Message> Encoder for SmallEncoder<E> {
    type Item = E;
    type Error = Status;

    fn encode(&mut self, item: E, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(buf)
            .map_err(|e| Status::internal(format!("encoding a response: {e}")))
    }

    fn buffer_settings(&self) -> BufferSettings {
        settings()
    }
}

impl<D: Message + Default> Decoder for SmallDecoder<D> {
    type Item = D;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<D>, Status> {
        D::decode(buf)
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("decoding a request: {e}")))
    }

    fn buffer_settings(&self) -> BufferSettings {
        settings()
    }
}
