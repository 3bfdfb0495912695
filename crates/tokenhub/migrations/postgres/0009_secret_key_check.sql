-- One value sealed with the secret key at the first start that had one (see
-- store/secret_box.rs): a later start with another key cannot open it and refuses to
-- run, instead of sending garbage upstream or sealing new channel keys under a second key.
CREATE TABLE secret_key_check (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
