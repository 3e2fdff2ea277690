//! The photos a filing carries to review (证件照, 手持证件照): which kinds there are and
//! which image formats are taken. The format is read from the bytes, never the file name.

/// The two photos a review needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    /// The ID card or driving licence.
    IdDocument,
    /// The filer holding that document.
    HoldingPhoto,
}

impl DocumentKind {
    pub const ALL: [DocumentKind; 2] = [DocumentKind::IdDocument, DocumentKind::HoldingPhoto];

    /// The multipart field name and the stored kind.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::IdDocument => "id_document",
            DocumentKind::HoldingPhoto => "holding_photo",
        }
    }

    pub fn parse(s: &str) -> Option<DocumentKind> {
        DocumentKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// An image format the service accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Jpeg,
}

impl ImageFormat {
    pub fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
        }
    }

    pub fn parse_content_type(s: &str) -> Option<ImageFormat> {
        match s {
            "image/png" => Some(ImageFormat::Png),
            "image/jpeg" => Some(ImageFormat::Jpeg),
            _ => None,
        }
    }

    /// The format the bytes are in, by their signature: PNG's eight-byte signature, or
    /// JPEG's start-of-image marker followed by another marker.
    pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
        const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
        if bytes.starts_with(PNG) && bytes.len() > PNG.len() {
            Some(ImageFormat::Png)
        } else if bytes.len() > 3 && bytes[..3] == [0xFF, 0xD8, 0xFF] {
            Some(ImageFormat::Jpeg)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_come_from_the_bytes() {
        assert_eq!(
            ImageFormat::sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some(ImageFormat::Png)
        );
        assert_eq!(
            ImageFormat::sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(ImageFormat::sniff(b"GIF89a...."), None);
        assert_eq!(ImageFormat::sniff(b"%PDF-1.7"), None);
        assert_eq!(ImageFormat::sniff(b"\x89PNG\r\n\x1a\n"), None);
        assert_eq!(ImageFormat::sniff(b""), None);
    }

    #[test]
    fn kinds_round_trip() {
        for k in DocumentKind::ALL {
            assert_eq!(DocumentKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(DocumentKind::parse("selfie"), None);
    }
}
