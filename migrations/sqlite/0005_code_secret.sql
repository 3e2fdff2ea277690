-- The key that derived owner codes is no longer kept in the database: it comes from the
-- secret `filing.code_secret` (or `filing.code_secret_file`), and code hashes are keyed with
-- a key drawn from that secret. The old plaintext key is deleted; codes issued under it stop
-- verifying (they live five minutes; the filer asks for a new one).
DELETE FROM service_keys WHERE name = 'filing_code';
