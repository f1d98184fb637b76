CREATE TABLE server_info (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
