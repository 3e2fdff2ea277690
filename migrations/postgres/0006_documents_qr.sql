-- The photos a filing carries to review (metadata; the bytes are in the document store,
-- `data_dir/documents/` by default), and the owner's QR token a `method: "qr"` filing was
-- submitted with (checked by intake against the submission time).
CREATE TABLE documents (
    id           TEXT    NOT NULL PRIMARY KEY,
    filing_id    TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    size_bytes   BIGINT  NOT NULL,
    sha256       TEXT    NOT NULL,
    uploaded_by  TEXT    NOT NULL,
    uploaded_at  BIGINT  NOT NULL
);
CREATE INDEX documents_filing ON documents (filing_id, uploaded_at);

CREATE TABLE filing_qr_tokens (
    filing_id TEXT NOT NULL PRIMARY KEY,
    qr_token  TEXT NOT NULL
);
