//! Detaching a parsed message from the buffer it borrows (the TCP
//! reassembler's, which moves on): every borrowed field copied.

use std::borrow::Cow;

use super::sip::{Media, Message, NameAddr, StartLine};

fn own(c: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(c.into_owned())
}

impl NameAddr<'_> {
    pub fn into_owned(self) -> NameAddr<'static> {
        NameAddr {
            uri: own(self.uri),
            tag: self.tag.map(own),
            expires: self.expires,
        }
    }
}

impl Media<'_> {
    pub fn into_owned(self) -> Media<'static> {
        Media {
            kind: own(self.kind),
            port: self.port,
            proto: own(self.proto),
            codecs: self.codecs.into_iter().map(own).collect(),
            bandwidth_kbps: self.bandwidth_kbps,
            address: self.address,
        }
    }
}

impl Message<'_> {
    /// The message detached from the buffer it was parsed from.
    pub fn into_owned(self) -> Message<'static> {
        let start = match self.start {
            StartLine::Request { method, uri } => StartLine::Request {
                method: own(method),
                uri: own(uri),
            },
            StartLine::Response { status, reason } => StartLine::Response {
                status,
                reason: own(reason),
            },
        };
        Message {
            start,
            call_id: own(self.call_id),
            from: self.from.into_owned(),
            to: self.to.into_owned(),
            cseq: self.cseq,
            cseq_method: own(self.cseq_method),
            via_branch: self.via_branch.map(own),
            contact: self.contact.map(NameAddr::into_owned),
            expires: self.expires,
            content_length: self.content_length,
            session_expires: self.session_expires,
            content_type: self.content_type.map(own),
            etag: self.etag.map(own),
            if_match: self.if_match.map(own),
            event: self.event.map(own),
            media: self.media.into_iter().map(Media::into_owned).collect(),
            body: Cow::Owned(self.body.into_owned()),
        }
    }
}
