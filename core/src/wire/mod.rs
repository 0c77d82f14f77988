//! The DNS wire layer: zero-copy message views, a query builder, a response matcher and a
//! DNS-over-TCP framer.
//!
//! Nothing here allocates, panics or reads out of bounds, whatever the input. Every length
//! read off the wire is checked where it is read, and each guard has its own [`Error`]
//! variant.
//!
//! ```
//! use dnswarden_core::wire::{Message, RData, Rtype};
//! # let mut buf = [0u8; 512];
//! # let n = dnswarden_core::wire::QueryBuilder::new(7, "example.com", Rtype::A).write(&mut buf)?;
//! # let bytes = &buf[..n];
//! let msg = Message::parse(bytes)?;
//! for record in msg.answers() {
//!     let record = record?;
//!     if let RData::A(addr) = record.data()? {
//!         let _ = (record.name(), addr);
//!     }
//! }
//! # Ok::<(), dnswarden_core::wire::Error>(())
//! ```

mod build;
mod error;
mod framer;
mod matcher;
mod message;
mod name;
mod rdata;
mod summary;
mod types;

pub use build::{Edns, QueryBuilder};
pub use error::Error;
pub use framer::{FrameError, TcpFramer};
pub use matcher::{Mismatch, QueryKey, check_response};
pub use message::{HEADER_LEN, Header, Message, Question, Questions, Record, Records};
pub use name::{Labels, MAX_LABEL_LEN, MAX_NAME_LEN, MAX_POINTER_HOPS, Name, fingerprint_str};
pub use rdata::{
    EDNS_EDE, EdnsOption, EdnsOptions, ExtendedError, Mx, Opt, RData, Soa, Srv, Txt, TxtStrings,
};
pub use summary::{
    Asked, MAX_QUESTION_LEN, Summary, Unanswered, check_and_summarize, question_wire,
};
pub use types::{Class, Opcode, Rcode, Rtype, Section};
